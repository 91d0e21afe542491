-- examples/policies/prefer_region.lua
-- A custom routing policy: deployments in conf.prefer_region first (least busy
-- first among them), the others after, so retries can still leave the region.
-- Load it with router_settings.routing_policy (see ../custom-policy.yaml) and
-- check it offline with: moongate policy check examples/policies/prefer_region.lua
local deployments = require "moongate.deployments"

local _M = { name = "prefer_region", kind = "routing", version = 1 }

function _M.validate(conf)
    if conf.prefer_region ~= nil and type(conf.prefer_region) ~= "string" then
        return nil, "prefer_region must be a string such as \"eu\""
    end
    return true
end

local function less_busy(a, b)
    return a.stats.inflight < b.stats.inflight
end

function _M.select(ctx, candidates, conf)
    local want = conf.prefer_region
    if want == nil then
        return deployments.stable_sort(candidates, less_busy)
    end
    local inside = deployments.filter(candidates, function(d) return d.region == want end)
    local outside = deployments.filter(candidates, function(d) return d.region ~= want end)
    local out = deployments.stable_sort(inside, less_busy)
    for i = 1, #outside do
        out[#out + 1] = outside[i]
    end
    return out
end

return _M
