-- policies/routing/cost_based.lua
-- LiteLLM's cost-based-routing: cost = input + output cost per token (from
-- litellm_params / model_info; 5.0 each when unknown); deployments over their
-- rpm/tpm for this minute are skipped; cheapest first, ties in configured order.
local deployments = require "moongate.deployments"

local _M = { name = "cost_based", kind = "routing", version = 1 }

local DEFAULT_COST = 5.0

local function cost(d)
    return (d.input_cost or DEFAULT_COST) + (d.output_cost or DEFAULT_COST)
end

function _M.select(ctx, candidates, conf)
    local tokens = ctx.tokens or 0
    local ok = deployments.filter(candidates, function(d)
        local s = d.stats
        if d.tpm ~= nil and s.tpm + tokens > d.tpm then return false end
        if d.rpm ~= nil and s.rpm + 1 > d.rpm then return false end
        return true
    end)
    if #ok == 0 then
        return {}, "No deployments available for selected model: every deployment is over its rpm/tpm limit"
    end
    return deployments.stable_sort(ok, function(a, b) return cost(a) < cost(b) end)
end

return _M
