-- policies/routing/latency_based.lua
-- LiteLLM's latency-based-routing.  Score = average of the last samples of
-- seconds per output token (time to first token per token for streams, when
-- known); a deployment with no samples scores 0 and is tried first; timeouts
-- add a 1000 s sample.  Deployments over their rpm/tpm for this minute are
-- skipped.  Pick at random among those within lowest * (1 + buffer)
-- (routing_strategy_args.lowest_latency_buffer, default 0).  O(n).
local _M = { name = "latency_based", kind = "routing", version = 1 }

local floor = math.floor

function _M.validate(conf)
    local b = conf.lowest_latency_buffer
    if b ~= nil and (type(b) ~= "number" or b < 0) then
        return nil, "lowest_latency_buffer must be a number >= 0"
    end
    return true
end

local function over_limit(d, tokens)
    local s = d.stats
    if d.rpm ~= nil and s.rpm + 1 > d.rpm then
        return true
    end
    if d.tpm ~= nil and s.tpm + tokens > d.tpm then
        return true
    end
    return false
end

function _M.select(ctx, candidates, conf)
    local n = #candidates
    if n == 0 then
        return candidates
    end
    local tokens = ctx.tokens or 0
    local buffer = conf.lowest_latency_buffer or 0
    local scores, ok, m = {}, {}, 0
    local lowest
    for i = 1, n do
        local d = candidates[i]
        if not over_limit(d, tokens) then
            local s = d.stats
            local score
            if s.latency_n == 0 then
                score = 0
            elseif ctx.stream and s.ttft_n > 0 then
                score = s.ttft
            else
                score = s.latency
            end
            m = m + 1
            ok[m] = i
            scores[m] = score
            if lowest == nil or score < lowest then
                lowest = score
            end
        end
    end
    if m == 0 then
        return {}, "No deployments available for selected model: every deployment is over its rpm/tpm limit"
    end
    local limit = lowest + lowest * buffer
    local near, k = {}, 0
    for j = 1, m do
        if scores[j] <= limit then
            k = k + 1
            near[k] = ok[j]
        end
    end
    local r = floor(ctx.rand() * k) + 1
    if r > k then r = k end
    local pick = near[r]
    local out = { candidates[pick] }
    local c = 1
    for j = 1, m do
        local i = ok[j]
        if i ~= pick then
            c = c + 1
            out[c] = candidates[i]
        end
    end
    return out
end

return _M
