-- policies/routing/latency_based.lua
-- LiteLLM's latency-based-routing.  Score = average of the last samples of
-- seconds per output token (time to first token per token for streams, when
-- known); a deployment with no samples scores 0 and is tried first; timeouts
-- add a 1000 s sample.  Deployments over their rpm/tpm for this minute are
-- skipped.  Picks at random among those within lowest * (1 + buffer)
-- (routing_strategy_args.lowest_latency_buffer, default 0).  O(n).
local _M = { name = "latency_based", kind = "routing", version = 2 }

local floor = math.floor

function _M.validate(conf)
    local b = conf.lowest_latency_buffer
    if b ~= nil and (type(b) ~= "number" or b < 0) then
        return nil, "lowest_latency_buffer must be a number >= 0"
    end
    return true
end

function _M.select(ctx, candidates, conf)
    local n = #candidates
    if n == 0 then
        return candidates
    end
    local tokens = ctx.tokens or 0
    local stream = ctx.stream
    local buffer = conf.lowest_latency_buffer or 0
    local ok, scores, m = {}, {}, 0
    local lowest
    for i = 1, n do
        local d = candidates[i]
        local s = d.stats
        local rpm, tpm = d.rpm, d.tpm
        if not ((rpm ~= nil and s.rpm + 1 > rpm) or (tpm ~= nil and s.tpm + tokens > tpm)) then
            local score = 0
            if s.latency_n > 0 then
                score = (stream and s.ttft_n > 0) and s.ttft or s.latency
            end
            m = m + 1
            ok[m] = d
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
    return { near[r] }
end

return _M
