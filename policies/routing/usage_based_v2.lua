-- policies/routing/usage_based_v2.lua
-- LiteLLM's usage-based-routing-v2: tokens and requests per deployment in the
-- current minute (shared by the workers of this instance).  Deployments that
-- this request would push over tpm (used + estimated prompt tokens) or rpm are
-- skipped; the lowest tpm wins, ties at random.  O(n).
local _M = { name = "usage_based_v2", kind = "routing", version = 2 }

local floor = math.floor

function _M.select(ctx, candidates, conf)
    local n = #candidates
    local tokens = ctx.tokens or 0
    local ties, k = {}, 0
    local low
    for i = 1, n do
        local d = candidates[i]
        local s = d.stats
        local used = s.tpm
        local rpm, tpm = d.rpm, d.tpm
        if not ((tpm ~= nil and used + tokens > tpm) or (rpm ~= nil and s.rpm + 1 > rpm)) then
            if low == nil or used < low then
                low, k = used, 1
                ties[1] = d
            elseif used == low then
                k = k + 1
                ties[k] = d
            end
        end
    end
    if k == 0 then
        return {}, "No deployments available for selected model: every deployment is over its rpm/tpm limit for this minute"
    end
    local r = floor(ctx.rand() * k) + 1
    if r > k then r = k end
    return { ties[r] }
end

return _M
