-- policies/filter/tags.lua
-- LiteLLM's tag-based routing (router_settings.enable_tag_filtering): a request
-- with tags goes to the deployments whose litellm_params.tags share one of them
-- (all of them with tag_filtering_match_any: false), else to the "default"
-- tagged ones; none left declines (LiteLLM's 401).  A request without tags goes
-- to the "default" deployments when there are any, else to all.  O(n * tags).
local _M = { name = "tags", kind = "filter", version = 1 }

local function has(list, tag)
    if list == nil then
        return false
    end
    for i = 1, #list do
        if list[i] == tag then
            return true
        end
    end
    return false
end

local function matches(dtags, rtags, match_any)
    if dtags == nil then
        return false
    end
    if match_any then
        for i = 1, #rtags do
            if has(dtags, rtags[i]) then
                return true
            end
        end
        return false
    end
    for i = 1, #rtags do
        if not has(dtags, rtags[i]) then
            return false
        end
    end
    return true
end

function _M.validate(conf)
    if conf.match_any ~= nil and type(conf.match_any) ~= "boolean" then
        return nil, "match_any must be a boolean"
    end
    return true
end

function _M.select(ctx, candidates, conf)
    local rtags = ctx.tags
    local match_any = conf.match_any ~= false
    local picked, defaults = {}, {}
    for i = 1, #candidates do
        local d = candidates[i]
        if #rtags > 0 and matches(d.tags, rtags, match_any) then
            picked[#picked + 1] = d
        end
        if has(d.tags, "default") then
            defaults[#defaults + 1] = d
        end
    end
    if #rtags == 0 then
        if #defaults > 0 then
            return defaults
        end
        return candidates
    end
    if #picked > 0 then
        return picked
    end
    if #defaults > 0 then
        return defaults
    end
    local t = {}
    for i = 1, #rtags do
        t[i] = "'" .. tostring(rtags[i]) .. "'"
    end
    return {}, "Not allowed to access model due to tags configuration. Passed model=" .. ctx.model
        .. " and tags=[" .. table.concat(t, ", ") .. "]"
end

return _M
