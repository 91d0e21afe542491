-- moongate.deployments -- helpers for policies working on candidate lists.
-- Candidates are read-only deployment views: id, name (model group), model
-- (upstream model), provider, litellm_model, weight, rpm, tpm, order, region,
-- tags, input_cost, output_cost, max_input_tokens (the deployment's own, else
-- the snapshot's cost map), wildcard, pattern, and stats (live numbers shared by
-- the workers: inflight, latency, ttft, rpm, tpm, fails, successes,
-- cooldown_until_ms).  Helpers never modify their input.
local _M = { _VERSION = 1 }

local floor = math.floor

-- A shallow copy of an array (so a policy can reorder it).
function _M.copy(list)
    local out = {}
    for i = 1, #list do
        out[i] = list[i]
    end
    return out
end

-- Stable sort (merge sort): equal elements keep their configured order.
-- Returns a new array.
function _M.stable_sort(list, less)
    local n = #list
    local a = _M.copy(list)
    if n < 2 then
        return a
    end
    local b = {}
    local width = 1
    while width < n do
        local i = 1
        while i <= n do
            local mid = i + width
            local hi = i + 2 * width
            if mid > n + 1 then mid = n + 1 end
            if hi > n + 1 then hi = n + 1 end
            local l, r, k = i, mid, i
            while l < mid and r < hi do
                if less(a[r], a[l]) then
                    b[k] = a[r]; r = r + 1
                else
                    b[k] = a[l]; l = l + 1
                end
                k = k + 1
            end
            while l < mid do b[k] = a[l]; l = l + 1; k = k + 1 end
            while r < hi do b[k] = a[r]; r = r + 1; k = k + 1 end
            i = hi
        end
        a, b = b, a
        width = width * 2
    end
    return a
end

-- The elements for which pred(d) is true, in order.
function _M.filter(list, pred)
    local out, k = {}, 0
    for i = 1, #list do
        local d = list[i]
        if pred(d) then
            k = k + 1
            out[k] = d
        end
    end
    return out
end

-- Index of a weighted random pick: weight(d) >= 0 for each element;
-- r is a number in [0, 1) (use ctx.rand()).  Returns nil when every weight is 0.
function _M.weighted_index(list, weight, r)
    local total = 0
    for i = 1, #list do
        local w = weight(list[i]) or 0
        if w > 0 then total = total + w end
    end
    if total <= 0 then
        return nil
    end
    local x = r * total
    local last
    for i = 1, #list do
        local w = weight(list[i]) or 0
        if w > 0 then
            last = i
            if x < w then
                return i
            end
            x = x - w
        end
    end
    return last
end

-- The list with element i moved to the front (the rest keep their order).
function _M.front(list, i)
    local out = { list[i] }
    local k = 1
    for j = 1, #list do
        if j ~= i then
            k = k + 1
            out[k] = list[j]
        end
    end
    return out
end

-- Uniform integer in [1, n] from r in [0, 1).
function _M.pick(n, r)
    local i = floor(r * n) + 1
    if i > n then i = n end
    return i
end

return _M
