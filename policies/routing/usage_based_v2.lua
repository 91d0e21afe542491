-- policies/routing/usage_based_v2.lua
-- LiteLLM's usage-based-routing-v2: tokens and requests per deployment in the
-- current minute (shared by the workers of this instance).  Deployments that
-- this request would push over tpm (used + estimated prompt tokens) or rpm are
-- skipped; the lowest tpm goes first (ties at random).  O(n).
local _M = { name = "usage_based_v2", kind = "routing", version = 1 }

local floor = math.floor

function _M.select(ctx, candidates, conf)
    local n = #candidates
    local tokens = ctx.tokens or 0
    local ok, m = {}, 0
    local low
    for i = 1, n do
        local d = candidates[i]
        local s = d.stats
        local over = (d.tpm ~= nil and s.tpm + tokens > d.tpm) or (d.rpm ~= nil and s.rpm + 1 > d.rpm)
        if not over then
            m = m + 1
            ok[m] = i
            if low == nil or s.tpm < low then
                low = s.tpm
            end
        end
    end
    if m == 0 then
        return {}, "No deployments available for selected model: every deployment is over its rpm/tpm limit for this minute"
    end
    local ties, k = {}, 0
    for j = 1, m do
        if candidates[ok[j]].stats.tpm == low then
            k = k + 1
            ties[k] = ok[j]
        end
    end
    local r = floor(ctx.rand() * k) + 1
    if r > k then r = k end
    local pick = ties[r]
    local out = { candidates[pick] }
    local c = 1
    for j = 1, m do
        if ok[j] ~= pick then
            c = c + 1
            out[c] = candidates[ok[j]]
        end
    end
    return out
end

return _M
