-- moongate.bridge -- the privileged glue between the C core and policies.
-- Loaded by core/lua/mg_lua_vm.c into every policy state before any policy;
-- never reachable from a policy (policies get a sandbox with only the
-- moongate.* modules below).  Builds the read-only deployment views whose
-- stats are const FFI references into the shared statistics table.
local ffi = require "ffi"

local _M = {}

-- must match MG_FFI_ABI and struct mg_stat_t in core/registry/mg_stats.h; the arrays
-- there are declared here as structs of named scalars: a const reference to a
-- scalar field cannot be written, and there is no array to index out of bounds
local ABI = 3
ffi.cdef [[
typedef struct { uint64_t w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11; } mg_stat_id96_t;
typedef struct { double s0, s1, s2, s3, s4, s5, s6, s7, s8, s9; } mg_stat_samples_t;
typedef struct {
    uint32_t state;
    int32_t lock;
    uint64_t id_hash;
    mg_stat_id96_t id_bytes;
    int32_t inflight;
    int32_t cooldown_status;
    int64_t cooldown_until_ms;
    int64_t cooldown_time_ms;
    int64_t minute;
    int32_t rpm;
    int32_t tpm;
    int32_t fails;
    int32_t successes;
    int64_t total_requests;
    int64_t total_failures;
    double latency;
    double ttft;
    int32_t latency_n, latency_pos;
    int32_t ttft_n, ttft_pos;
    mg_stat_samples_t latency_samples;
    mg_stat_samples_t ttft_samples;
    int64_t last_used_ms;
    int64_t prompt_tokens;
    int64_t completion_tokens;
} mg_stat_t;
]]

local C          -- C functions: log(level, msg), rand(), budget_exceeded(), wildcard_match(index, model)
local stats_base -- const mg_stat_t *
local zero_store = ffi.new("mg_stat_t[1]")
local zero_stats = ffi.cast("const mg_stat_t *", zero_store)[0]

local function ro_error(t, k)
    error("policies may not modify their inputs (tried to set " .. tostring(k) .. ")", 2)
end

local ro_mt = { __newindex = ro_error, __metatable = "read-only" }
local shadow_of = setmetatable({}, { __mode = "k" }) -- proxy -> the table it shows

-- Whether t is a non-empty sequence (keys exactly 1..#t).
local function is_array(t)
    local n = #t
    if n == 0 then
        return false
    end
    local count = 0
    for _ in pairs(t) do
        count = count + 1
    end
    return count == n
end

-- A read-only view of t (deep for nested tables).  A map is an empty proxy over a
-- shadow copy: every write is refused.  LuaJIT (Lua 5.1) ignores __len and __pairs on
-- tables, so an array is a guarded copy instead (new keys refused; # and ipairs work;
-- overwriting an element changes only this state's copy), and the sandbox's pairs, ipairs
-- and next see through proxies.
local function readonly(t)
    if type(t) ~= "table" then
        return t
    end
    local copy = {}
    for k, v in pairs(t) do
        copy[k] = readonly(v)
    end
    if is_array(t) then
        return setmetatable(copy, ro_mt)
    end
    local proxy = setmetatable({}, { __index = copy, __newindex = ro_error, __metatable = "read-only" })
    shadow_of[proxy] = copy
    return proxy
end

local function ro_next(t, k)
    return next(shadow_of[t] or t, k)
end

local function ro_pairs(t)
    return next, shadow_of[t] or t, nil
end

local function ro_ipairs(t)
    return ipairs(shadow_of[t] or t)
end

function _M.init(abi, base, size, cfuncs)
    if abi ~= ABI then
        return nil, "moongate.bridge: core FFI ABI " .. tostring(abi) .. " != bridge ABI " .. ABI
    end
    if size ~= ffi.sizeof("mg_stat_t") then
        return nil, "moongate.bridge: sizeof(mg_stat_t) is " .. tostring(size) .. " in the core but "
            .. ffi.sizeof("mg_stat_t") .. " here: rebuild both together"
    end
    C = cfuncs
    if base ~= nil then
        stats_base = ffi.cast("const mg_stat_t *", base)
    end
    -- policies must not reach the real string table through getmetatable(""), nor
    -- string.dump through ("").dump
    getmetatable("").__metatable = false
    string.dump = nil
    return true
end

-- ---- library modules policies may require ----

local modules = {}

-- Loads one of our library modules (trusted code, ordinary globals).
function _M.add_module(name, source, ...)
    local fn, err = loadstring(source, "=" .. name)
    if not fn then
        return nil, err
    end
    local ok, mod = pcall(fn, ...)
    if not ok then
        return nil, mod
    end
    modules[name] = readonly(mod)
    return true
end

function _M.add_wildcard_module()
    local match = C.wildcard_match
    modules["moongate.wildcard"] = readonly({
        -- true when the pattern deployment d matches model
        match = function(d, model)
            return match(d.index, model)
        end,
    })
    return true
end

local function sandbox_require(name)
    local m = modules[name]
    if m == nil then
        error("module '" .. tostring(name) .. "' is not available to policies (only moongate.deployments, moongate.log, moongate.wildcard)", 2)
    end
    return m
end

-- ---- the sandbox ----

local native_pcall, native_xpcall, unpack, select = pcall, xpcall, unpack, select

local function pack(...)
    return { n = select("#", ...), ... }
end

-- pcall that cannot swallow the time or memory budget
local function safe_pcall(f, ...)
    local r = pack(native_pcall(f, ...))
    if not r[1] and C.budget_exceeded() then
        error(r[2], 0)
    end
    return unpack(r, 1, r.n)
end

-- xpcall whose handler runs as ordinary code after the failed call returns: LuaJIT
-- runs a native xpcall handler with hooks suppressed, so a looping handler could
-- never be stopped (found by the sandbox tests)
local function safe_xpcall(f, handler, ...)
    local r = pack(native_pcall(f, ...))
    if r[1] then
        return unpack(r, 1, r.n)
    end
    if C.budget_exceeded() then
        error(r[2], 0)
    end
    return false, handler(r[2])
end

local function copy_lib(lib, drop)
    local t = {}
    for k, v in pairs(lib) do
        if not (drop and drop[k]) then
            t[k] = v
        end
    end
    return readonly(t)
end

local safe_string = copy_lib(string, { dump = true })
local safe_table = copy_lib(table)
local safe_math = copy_lib(math, { random = true, randomseed = true })

local function make_env(name)
    local env = {
        assert = assert, error = error, ipairs = ro_ipairs, next = ro_next, pairs = ro_pairs,
        pcall = safe_pcall, xpcall = safe_xpcall, select = select, tonumber = tonumber,
        tostring = tostring, type = type, unpack = unpack, setmetatable = setmetatable,
        getmetatable = getmetatable, rawequal = rawequal,
        string = safe_string, table = safe_table, math = safe_math,
        require = sandbox_require, _VERSION = _VERSION,
    }
    return setmetatable(env, {
        __newindex = function(_, k)
            error("policy " .. name .. " may not set global '" .. tostring(k) .. "' (use locals)", 2)
        end,
        __index = function(_, k)
            error("policy " .. name .. " used undefined global '" .. tostring(k) .. "'", 2)
        end,
        __metatable = "sandbox",
    })
end

-- Compiles a policy in its own sandbox; returns the module, or nil and the error.
function _M.load_policy(kind, source, chunkname, conf)
    if type(source) ~= "string" or source == "" then
        return nil, chunkname .. ": empty policy source"
    end
    if source:byte(1) == 27 then
        return nil, chunkname .. ": precompiled bytecode is not accepted; give the Lua source"
    end
    local fn, err = loadstring(source, "=" .. chunkname)
    if not fn then
        return nil, err
    end
    setfenv(fn, make_env(chunkname))
    local ok, mod = native_pcall(fn)
    if not ok then
        return nil, tostring(mod)
    end
    if type(mod) ~= "table" or type(mod.select) ~= "function" then
        return nil, chunkname .. ": a policy must return a table with select(ctx, candidates, conf)"
    end
    if mod.kind ~= nil and mod.kind ~= kind then
        return nil, chunkname .. ": policy kind is \"" .. tostring(mod.kind) .. "\" but it is configured as a " .. kind .. " policy"
    end
    local rconf = readonly(conf or {})
    if mod.validate ~= nil then
        if type(mod.validate) ~= "function" then
            return nil, chunkname .. ": validate must be a function"
        end
        local vok, v, verr = native_pcall(mod.validate, rconf)
        if not vok then
            return nil, tostring(v)
        end
        if not v then
            return nil, chunkname .. ": validate(conf) refused the configuration: " .. tostring(verr or "no reason given")
        end
    end
    return mod, rconf
end

-- ---- deployment views ----

local view_mt = { __newindex = ro_error, __metatable = "read-only" }
local views, index_of -- this state's snapshot: views by index + 1, view -> index

-- descs: array of plain tables from C; returns views (array, read-only proxies)
-- and index_of (view -> deployment index, 0-based as in the snapshot).
function _M.build_views(descs)
    views, index_of = {}, {}
    for i = 1, #descs do
        local d = descs[i]
        local slot = d.slot
        d.stats = (slot ~= nil and slot >= 0 and stats_base ~= nil) and stats_base[slot] or zero_stats
        local tags = d.tags
        if tags ~= nil then
            d.tags = readonly(tags)
        end
        -- plain tables for speed (the interpreter pays ~40 ns per proxied read); new
        -- fields are refused, overwriting an existing one is on the policy's author
        d.slot = nil
        local v = setmetatable(d, view_mt)
        views[i] = v
        index_of[v] = d.index
    end
    return views, index_of
end

-- ---- one policy call ----

local tnew = require "table.new"
local cand_idx, out_idx, stamp -- C buffers (deployment indices; per-index call stamps)

function _M.set_buffers(cand, out, st)
    cand_idx = ffi.cast("const int32_t *", cand)
    out_idx = ffi.cast("int32_t *", out)
    stamp = ffi.cast("int32_t *", st)
    return true
end

-- Calls select(ctx, candidates, conf) with a fresh candidates table of the views of
-- cand_idx[0 .. n-1] (stamped seq by C), checks that it returned an ordered subset,
-- and writes it to out_idx.  Returns the count (0 with the reason for a decline), or
-- nil and what is wrong with the result.  Built here rather than through the C API
-- so that the JIT compiles it: about a tenth of the cost for 50 candidates.
function _M.call(select_fn, ctx, n, conf, seq)
    local c = tnew(n, 0)
    for i = 1, n do
        c[i] = views[cand_idx[i - 1] + 1]
    end
    local order, why = select_fn(ctx, c, conf)
    if type(order) ~= "table" then
        return nil, "select() returned " .. type(order) .. " instead of a list of candidates"
            .. (type(why) == "string" and (": " .. why) or "")
    end
    local m = #order
    if m == 0 then
        return 0, type(why) == "string" and why or "the policy accepted no deployment"
    end
    for i = 1, m do
        local idx = index_of[rawget(order, i)]
        if idx == nil then
            return nil, "select() returned an element at position " .. i .. " that is not one of the candidate views"
        end
        local st = stamp[idx]
        if st ~= seq then
            return nil, "select() returned an element at position " .. i .. " that is "
                .. (st == -seq and "a duplicate" or "not among this call's candidates")
        end
        stamp[idx] = -seq
        out_idx[i - 1] = idx
    end
    return m
end

return _M
