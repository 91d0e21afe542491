-- policies/routing/simple_shuffle.lua
-- LiteLLM's default: look at the FIRST candidate only; if it has a weight, pick
-- at random weighted by weight (missing = 0); else by rpm; else by tpm; else
-- uniformly.  Returns the pick (a retry runs the selection again, as in
-- LiteLLM).  Weights are static per snapshot, so their total is cached per
-- candidates list.  O(n).
local _M = { name = "simple_shuffle", kind = "routing", version = 2 }

local floor = math.floor

local cache = setmetatable({}, { __mode = "k" }) -- candidates -> { key, total }

local function weighting(candidates, n)
    local first = candidates[1]
    local key
    if first.weight ~= nil then
        key = "weight"
    elseif first.rpm ~= nil then
        key = "rpm"
    elseif first.tpm ~= nil then
        key = "tpm"
    else
        return false
    end
    local total = 0
    for i = 1, n do
        local w = candidates[i][key]
        if w ~= nil and w > 0 then
            total = total + w
        end
    end
    if total <= 0 then
        return false
    end
    return { key, total }
end

function _M.select(ctx, candidates, conf)
    local n = #candidates
    if n <= 1 then
        return candidates
    end
    local info = cache[candidates]
    if info == nil then
        info = weighting(candidates, n)
        cache[candidates] = info
    end
    if info then
        local key = info[1]
        local x = ctx.rand() * info[2]
        local last
        for i = 1, n do
            local d = candidates[i]
            local w = d[key]
            if w ~= nil and w > 0 then
                if x < w then
                    return { d }
                end
                x = x - w
                last = d
            end
        end
        return { last }
    end
    local pick = floor(ctx.rand() * n) + 1
    if pick > n then pick = n end
    return { candidates[pick] }
end

return _M
