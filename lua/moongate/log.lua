-- moongate.log -- policy logging into the gateway's log, at its levels.
-- Lines carry the policy name; never log prompts or keys from a policy.
local _M = { _VERSION = 1 }

local sink = ... -- set by the bridge: function(level, message)

local function make(level)
    return function(...)
        local n = select("#", ...)
        local parts = {}
        for i = 1, n do
            parts[i] = tostring((select(i, ...)))
        end
        sink(level, table.concat(parts, " "))
    end
end

_M.error = make(0)
_M.warn = make(1)
_M.notice = make(2)
_M.info = make(3)
_M.debug = make(4)

return _M
