-- policies/wildcard/litellm.lua
-- LiteLLM's pattern router: a pattern deployment matches when its model_name,
-- with each '*' as a capture, matches the start of ctx.model.  Candidates
-- arrive most specific first (longest pattern, then fewest '*'); the matches
-- are returned in that order.  The gateway uses the first match's group and
-- substitutes the captures into litellm_params.model.
local deployments = require "moongate.deployments"
local wildcard = require "moongate.wildcard"

local _M = { name = "litellm", kind = "wildcard", version = 1 }

function _M.select(ctx, candidates, conf)
    local model = ctx.model
    return deployments.filter(candidates, function(d) return wildcard.match(d, model) end)
end

return _M
