-- policies/routing/cost_based.lua
-- LiteLLM's cost-based-routing: cost = input + output cost per token (from
-- litellm_params / model_info, else the snapshot's cost map; 5.0 each when
-- unknown); deployments over their rpm/tpm for this minute are skipped; the
-- cheapest wins, ties go to the one configured first.  O(n).
local _M = { name = "cost_based", kind = "routing", version = 2 }

local DEFAULT_COST = 5.0

function _M.select(ctx, candidates, conf)
    local tokens = ctx.tokens or 0
    local best, best_cost
    for i = 1, #candidates do
        local d = candidates[i]
        local s = d.stats
        local rpm, tpm = d.rpm, d.tpm
        if not ((tpm ~= nil and s.tpm + tokens > tpm) or (rpm ~= nil and s.rpm + 1 > rpm)) then
            local cost = (d.input_cost or DEFAULT_COST) + (d.output_cost or DEFAULT_COST)
            if best_cost == nil or cost < best_cost then
                best, best_cost = d, cost
            end
        end
    end
    if best == nil then
        return {}, "No deployments available for selected model: every deployment is over its rpm/tpm limit"
    end
    return { best }
end

return _M
