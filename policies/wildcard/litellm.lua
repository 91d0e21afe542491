-- policies/wildcard/litellm.lua
-- LiteLLM's pattern router: a pattern deployment matches when its model_name,
-- with each '*' as a capture, matches the start of ctx.model.  Candidates
-- arrive most specific first (longest pattern, then fewest '*'); the matches
-- are returned in that order.  The gateway uses the first match's group and
-- substitutes the captures into litellm_params.model.
local wildcard = require "moongate.wildcard"

local _M = { name = "litellm", kind = "wildcard", version = 1 }

function _M.select(ctx, candidates, conf)
    local model = ctx.model
    local out, k = {}, 0
    for i = 1, #candidates do
        local d = candidates[i]
        if wildcard.match(d, model) then
            k = k + 1
            out[k] = d
        end
    end
    return out
end

return _M
