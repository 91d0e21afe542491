-- policies/routing/least_busy.lua
-- LiteLLM's least-busy: the deployment with the fewest requests in flight,
-- counted by every worker of this instance; ties go to the one configured
-- first.  Returns that one (a retry selects again).  O(n).
local _M = { name = "least_busy", kind = "routing", version = 2 }

function _M.select(ctx, candidates, conf)
    local n = #candidates
    if n <= 1 then
        return candidates
    end
    local best = candidates[1]
    local best_busy = best.stats.inflight
    for i = 2, n do
        local d = candidates[i]
        local b = d.stats.inflight
        if b < best_busy then
            best, best_busy = d, b
        end
    end
    return { best }
end

return _M
