-- policies/routing/least_busy.lua
-- LiteLLM's least-busy: the deployment with the fewest requests in flight
-- (counted by every worker of this instance) goes first; ties keep the
-- configured order; the rest follow in configured order.  O(n).
local _M = { name = "least_busy", kind = "routing", version = 1 }

function _M.select(ctx, candidates, conf)
    local n = #candidates
    if n <= 1 then
        return candidates
    end
    local best, best_busy = 1, candidates[1].stats.inflight
    for i = 2, n do
        local b = candidates[i].stats.inflight
        if b < best_busy then
            best, best_busy = i, b
        end
    end
    if best == 1 then
        return candidates
    end
    local out = { candidates[best] }
    local k = 1
    for i = 1, n do
        if i ~= best then
            k = k + 1
            out[k] = candidates[i]
        end
    end
    return out
end

return _M
