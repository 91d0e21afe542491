-- policies/fallback/ordered.lua
-- LiteLLM's fallback order: the candidates arrive grouped by fallback group in
-- the order configured (fallbacks / context_window_fallbacks /
-- content_policy_fallbacks / default_fallbacks / request-level fallbacks, as
-- chosen for ctx.failure.class); keep that order.  A custom fallback policy can
-- reorder groups or drop deployments (e.g. skip the provider that just failed).
local _M = { name = "ordered", kind = "fallback", version = 1 }

function _M.select(ctx, candidates, conf)
    return candidates
end

return _M
