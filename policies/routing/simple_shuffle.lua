-- policies/routing/simple_shuffle.lua
-- LiteLLM's default: look at the FIRST candidate only; if it has a weight, pick
-- at random weighted by weight (missing = 0); else by rpm; else by tpm; else
-- uniformly.  The pick goes first; the rest keep their configured order (what
-- retries try next).  O(n).
local _M = { name = "simple_shuffle", kind = "routing", version = 1 }

local floor = math.floor

function _M.select(ctx, candidates, conf)
    local n = #candidates
    if n <= 1 then
        return candidates
    end
    local first = candidates[1]
    local key
    if first.weight ~= nil then
        key = "weight"
    elseif first.rpm ~= nil then
        key = "rpm"
    elseif first.tpm ~= nil then
        key = "tpm"
    end
    local pick
    if key ~= nil then
        local total = 0
        for i = 1, n do
            local w = candidates[i][key]
            if w ~= nil and w > 0 then
                total = total + w
            end
        end
        if total > 0 then
            local x = ctx.rand() * total
            for i = 1, n do
                local w = candidates[i][key]
                if w ~= nil and w > 0 then
                    pick = i
                    if x < w then
                        break
                    end
                    x = x - w
                end
            end
        end
    end
    if pick == nil then
        pick = floor(ctx.rand() * n) + 1
        if pick > n then pick = n end
    end
    if pick == 1 then
        return candidates
    end
    local out = { candidates[pick] }
    local k = 1
    for i = 1, n do
        if i ~= pick then
            k = k + 1
            out[k] = candidates[i]
        end
    end
    return out
end

return _M
