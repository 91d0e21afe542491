/*
 * mg_lua_vm.c -- policy states: creation, the sandbox bridge, calls, checks.
 * See mg_lua.h for what this module guarantees.
 */
#include "mg_lua.h"
#include "mg_lua_pattern.h"

#include "../base/mg_metrics_litellm.h"
#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_stats.h"

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *path;
    const char *source;
} mg_lua_embedded_t;
extern const mg_lua_embedded_t mg_lua_embedded[];

#define MG_LUA_HOOK_COUNT 1000

/* Small blocks (tables, strings, closures of a policy call) are recycled per size
 * class instead of going through malloc/free each time: a policy call allocates a
 * few of them, and libc's allocator was a quarter of the call's cost. */
#define MG_LUA_SMALL_STEP 16
#define MG_LUA_SMALL_CLASSES 32 /* up to 512 bytes */
#define MG_LUA_SMALL_KEEP 2048  /* blocks kept per class (the GC frees in bursts) */

typedef struct {
    bool ok;
    int ref_select;
    int ref_conf;
    char name[128];
    char origin[16];
    char hash[65];
    char load_error[768];
    uint64_t calls;
    uint64_t errors;
    uint64_t consecutive;
    uint64_t budget_hits;           /* errors that were the instruction, step or memory budget */
    char last_error[768];
} mg_lua_pol_t;

struct mg_lua_vm_s {
    lua_State *L;                   /* owned */
    mg_snapshot_t *snap;            /* borrowed: the VM lives inside its snapshot's lifetime */
    size_t mem_used;
    size_t mem_cap;
    bool mem_exceeded;
    bool budget_exceeded;
    int64_t deadline_ns;            /* wall-clock backstop (10x the budget) */
    int64_t instr_left;             /* VM instructions left in this call (units of the hook count) */
    int64_t instr_budget;
    int budget_ms;
    bool trusted;                   /* only built-in policies: JIT on, no hook */
    mg_lua_steps_t steps;           /* pattern-matching steps left in this call */
    void *free_small[MG_LUA_SMALL_CLASSES]; /* freed small blocks per size class (linked) */
    int nfree_small[MG_LUA_SMALL_CLASSES];
    uint64_t rng;
    int ref_views;
    int ref_index_of;
    int ref_ctx_proxy;
    int ref_call;                   /* bridge.call */
    int ref_traceback;
    const mg_lua_ctx_t *cur;        /* the call's ctx, for the lazy ctx.__index */
    mg_policy_kind_t cur_kind;
    mg_lua_pol_t pol[MG_POLICY__COUNT];
    int32_t *stamp;                 /* owned: per deployment index, for subset checks */
    int32_t *cand_idx;              /* owned: a call's candidates (deployment indices) */
    int32_t *out_idx;               /* owned: the order the policy returned */
    int32_t seq;
    char version[16];
    bool quiet;                     /* a scratch state for checks: errors are returned, not logged */
};

static mg_lua_vm_t *mg_lua_current; /* the state running a call (single-threaded) */

const char *
mg_policy_kind_name(mg_policy_kind_t k)
{
    static const char *names[] = {"routing", "fallback", "wildcard", "filter"};
    return (int) k >= 0 && k < MG_POLICY__COUNT ? names[k] : "?";
}

static const char *
mg_lua_embedded_source(const char *path)
{
    for (const mg_lua_embedded_t *e = mg_lua_embedded; e->path != NULL; e++) {
        if (strcmp(e->path, path) == 0) {
            return e->source;
        }
    }
    return NULL;
}

const char *
mg_lua_builtin(mg_policy_kind_t kind, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "policies/%s/%s.lua", mg_policy_kind_name(kind), name);
    return mg_lua_embedded_source(path);
}

static int64_t
mg_lua_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- allocator with a cap, hook with a deadline ---- */

static size_t
mg_lua_small_class(size_t size)
{
    return (size - 1) / MG_LUA_SMALL_STEP; /* size > 0 */
}

static void *
mg_lua_small_get(mg_lua_vm_t *vm, size_t size)
{
    size_t k = mg_lua_small_class(size);
    void *p = vm->free_small[k];
    if (p != NULL) {
        vm->free_small[k] = *(void **) p;
        vm->nfree_small[k]--;
        return p;
    }
    return malloc((k + 1) * MG_LUA_SMALL_STEP);
}

static void
mg_lua_small_put(mg_lua_vm_t *vm, void *p, size_t size)
{
    size_t k = mg_lua_small_class(size);
    if (vm->nfree_small[k] >= MG_LUA_SMALL_KEEP) {
        free(p);
        return;
    }
    *(void **) p = vm->free_small[k];
    vm->free_small[k] = p;
    vm->nfree_small[k]++;
}

static bool
mg_lua_is_small(size_t size)
{
    return size > 0 && size <= MG_LUA_SMALL_STEP * MG_LUA_SMALL_CLASSES;
}

static void *
mg_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mg_lua_vm_t *vm = ud;
    if (ptr == NULL) {
        osize = 0; /* for a new block Lua passes a type tag here */
    }
    if (nsize == 0) {
        if (ptr != NULL) {
            if (mg_lua_is_small(osize)) {
                mg_lua_small_put(vm, ptr, osize);
            } else {
                free(ptr);
            }
            vm->mem_used -= osize;
        }
        return NULL;
    }
    if (nsize > osize && vm->mem_used + (nsize - osize) > vm->mem_cap) {
        vm->mem_exceeded = true;
        return NULL;
    }
    void *p;
    if (mg_lua_is_small(nsize)) {
        if (ptr != NULL && mg_lua_is_small(osize) &&
            mg_lua_small_class(osize) == mg_lua_small_class(nsize)) {
            p = ptr; /* the block already has room */
        } else {
            p = mg_lua_small_get(vm, nsize);
            if (p != NULL && ptr != NULL) {
                memcpy(p, ptr, osize < nsize ? osize : nsize);
                if (mg_lua_is_small(osize)) {
                    mg_lua_small_put(vm, ptr, osize);
                } else {
                    free(ptr);
                }
            }
        }
    } else if (ptr != NULL && mg_lua_is_small(osize)) {
        p = malloc(nsize);
        if (p != NULL) {
            memcpy(p, ptr, osize);
            mg_lua_small_put(vm, ptr, osize);
        }
    } else {
        p = realloc(ptr, nsize);
    }
    if (p != NULL) {
        vm->mem_used = vm->mem_used - osize + nsize;
    }
    return p;
}

/*
 * The budget is counted in VM instructions (deterministic, blind to preemption
 * on a busy machine), with a wall-clock backstop at ten times the budget.
 */
static void
mg_lua_hook(lua_State *L, lua_Debug *ar)
{
    (void) ar;
    mg_lua_vm_t *vm = mg_lua_current;
    if (vm == NULL || vm->L != L) {
        return;
    }
    if (--vm->instr_left < 0 || mg_lua_now_ns() > vm->deadline_ns) {
        vm->budget_exceeded = true;
        luaL_error(L, "policy exceeded its budget (%d thousand VM instructions, about %dms)",
                   (int) vm->instr_budget, vm->budget_ms);
    }
}

/* Arms the budget for one call (scale: 1 for a request, more for loading). */
static void
mg_lua_arm(mg_lua_vm_t *vm, int scale)
{
    vm->budget_exceeded = false;
    vm->mem_exceeded = false;
    vm->instr_left = vm->instr_budget * scale;
    vm->steps.exceeded = false;
    vm->steps.left = vm->steps.budget * scale;
    vm->deadline_ns = mg_lua_now_ns() + (int64_t) vm->budget_ms * 10 * scale * 1000000;
}

static int
mg_lua_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        msg = "(error object is not a string)";
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* ---- C functions given to the bridge ---- */

static int
mg_lua_c_log(lua_State *L)
{
    int level = (int) luaL_checkinteger(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    if (level < MG_LOG_ERROR) {
        level = MG_LOG_ERROR;
    }
    if (level > MG_LOG_DEBUG) {
        level = MG_LOG_DEBUG;
    }
    mg_log((mg_log_level_t) level, NULL, "policy: %s", msg);
    return 0;
}

static int
mg_lua_c_rand(lua_State *L)
{
    mg_lua_vm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
    uint64_t x = vm->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    vm->rng = x;
    lua_pushnumber(L, (double) ((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0);
    return 1;
}

static int
mg_lua_c_now_ms(lua_State *L)
{
    lua_pushnumber(L, (double) mg_time_real_ms());
    return 1;
}

static int
mg_lua_c_budget_exceeded(lua_State *L)
{
    mg_lua_vm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushboolean(L, vm->budget_exceeded || vm->mem_exceeded || vm->steps.exceeded);
    return 1;
}

static int
mg_lua_c_wildcard_match(lua_State *L)
{
    mg_lua_vm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
    lua_Integer idx = luaL_checkinteger(L, 1);
    size_t ml;
    const char *model = luaL_checklstring(L, 2, &ml);
    if (vm->snap == NULL || idx < 0 || (size_t) idx >= vm->snap->ndeps) {
        lua_pushboolean(L, 0);
        return 1;
    }
    const mg_deployment_t *d = &vm->snap->deps[idx];
    if (d->re == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = pcre2_match(d->re, (PCRE2_SPTR) model, ml, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    lua_pushboolean(L, rc >= 0);
    return 1;
}

/* ctx.__index: request fields are produced only when a policy reads them */
static int
mg_lua_c_ctx_index(lua_State *L)
{
    mg_lua_vm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
    const mg_lua_ctx_t *c = vm->cur;
    size_t kl;
    const char *k = lua_tolstring(L, 2, &kl);
    if (k == NULL) {
        return 0;
    }
    switch (k[0]) {
    case 'r':
        if (strcmp(k, "rand") == 0) {
            lua_pushvalue(L, lua_upvalueindex(2));
            return 1;
        }
        break;
    case 'n':
        if (strcmp(k, "now_ms") == 0) {
            lua_pushcfunction(L, mg_lua_c_now_ms);
            return 1;
        }
        break;
    case 'm':
        if (c != NULL && strcmp(k, "model") == 0) {
            lua_pushstring(L, c->model ? c->model : "");
            return 1;
        }
        break;
    case 'g':
        if (c != NULL && strcmp(k, "group") == 0) {
            lua_pushstring(L, c->group ? c->group : "");
            return 1;
        }
        break;
    case 's':
        if (c != NULL && strcmp(k, "stream") == 0) {
            lua_pushboolean(L, c->stream);
            return 1;
        }
        break;
    case 'a':
        if (c != NULL && strcmp(k, "attempt") == 0) {
            lua_pushinteger(L, c->attempt);
            return 1;
        }
        break;
    case 't':
        if (c != NULL && strcmp(k, "tokens") == 0) {
            lua_pushnumber(L, (lua_Number) c->tokens);
            return 1;
        }
        if (c != NULL && strcmp(k, "tags") == 0) {
            lua_createtable(L, c->ntags, 0);
            for (int i = 0; i < c->ntags; i++) {
                lua_pushstring(L, c->tags[i]);
                lua_rawseti(L, -2, i + 1);
            }
            return 1;
        }
        break;
    case 'k':
        if (strcmp(k, "kind") == 0) {
            lua_pushstring(L, mg_policy_kind_name(vm->cur_kind));
            return 1;
        }
        break;
    case 'f':
        if (c != NULL && strcmp(k, "failure") == 0 && c->failure_class != NULL) {
            lua_createtable(L, 0, 3);
            lua_pushstring(L, c->failure_class);
            lua_setfield(L, -2, "class");
            lua_pushinteger(L, c->failure_status);
            lua_setfield(L, -2, "status");
            if (c->failure_deployment != NULL) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_views);
                lua_rawgeti(L, -1, (int) c->failure_deployment->index + 1);
                lua_remove(L, -2);
                lua_setfield(L, -2, "deployment");
            }
            return 1;
        }
        break;
    }
    return 0;
}

static int
mg_lua_c_ro(lua_State *L)
{
    return luaL_error(L, "policies may not modify ctx (tried to set %s)", lua_tostring(L, 2));
}

/* The ctx object: an empty table whose reads go to mg_lua_c_ctx_index. */
static int
mg_lua_make_ctx(mg_lua_vm_t *vm)
{
    lua_State *L = vm->L;
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushlightuserdata(L, vm);
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, mg_lua_c_rand, 1);
    lua_pushcclosure(L, mg_lua_c_ctx_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, mg_lua_c_ro);
    lua_setfield(L, -2, "__newindex");
    lua_pushstring(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- JSON -> Lua ---- */

static void
mg_lua_push_json(lua_State *L, json_t *v, int depth)
{
    if (depth > 32) {
        lua_pushnil(L);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int) json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            mg_lua_push_json(L, x, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int) json_array_size(v), 0);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            mg_lua_push_json(L, x, depth + 1);
            lua_rawseti(L, -2, (int) i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushnumber(L, (lua_Number) json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
    }
}

/* ---- state setup ---- */

/* Calls bridge[fn] with nargs arguments already pushed above it; nres results. */
static int
mg_lua_bridge_call(mg_lua_vm_t *vm, int nargs, int nres, char *errbuf, size_t errlen)
{
    lua_State *L = vm->L;
    int base = lua_gettop(L) - nargs; /* the function */
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_traceback);
    lua_insert(L, base);
    mg_lua_arm(vm, 20); /* loading (views for many deployments) may take longer than a call */
    mg_lua_current = vm;
    int rc = lua_pcall(L, nargs, nres, base);
    mg_lua_current = NULL;
    if (rc != 0) {
        snprintf(errbuf, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_pop(L, 1);
    }
    lua_remove(L, base);
    return rc == 0 ? MG_OK : MG_ERROR;
}

static void
mg_lua_push_bridge_fn(mg_lua_vm_t *vm, int bridge_ref, const char *name)
{
    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, bridge_ref);
    lua_getfield(vm->L, -1, name);
    lua_remove(vm->L, -2);
}

static void
mg_lua_open_lib(lua_State *L, lua_CFunction f, const char *name)
{
    lua_pushcfunction(L, f);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

/* A bare state with the bridge loaded; returns the bridge's registry ref or LUA_NOREF. */
static int
mg_lua_state_new(mg_lua_vm_t *vm, const mg_lua_limits_t *lim, mg_err_t *err)
{
    vm->mem_cap = (size_t) (lim != NULL && lim->memory_mb > 0 ? lim->memory_mb : 64) * 1024 * 1024;
    vm->budget_ms = lim != NULL && lim->budget_ms > 0 ? lim->budget_ms : 5;
    /* ~200k interpreted instructions per millisecond, measured on this class of machine */
    vm->instr_budget = (int64_t) vm->budget_ms * 200000 / MG_LUA_HOOK_COUNT;
    /* a matching step costs about what an interpreted instruction does */
    vm->steps.budget = (int64_t) vm->budget_ms * 200000;
    mg_random_bytes(&vm->rng, sizeof(vm->rng));
    vm->rng |= 1;
    lua_State *L = lua_newstate(mg_lua_alloc, vm);
    if (L == NULL) {
        mg_err_set(err, MG_ERR_POLICY, "lua_newstate() failed");
        return LUA_NOREF;
    }
    vm->L = L;
    /* no io, os, debug or jit for anyone; ffi only through the bridge */
    mg_lua_open_lib(L, luaopen_base, "");
    mg_lua_open_lib(L, luaopen_package, LUA_LOADLIBNAME);
    mg_lua_open_lib(L, luaopen_table, LUA_TABLIBNAME);
    mg_lua_open_lib(L, luaopen_string, LUA_STRLIBNAME);
    mg_lua_pattern_open(L, &vm->steps);
    mg_lua_open_lib(L, luaopen_math, LUA_MATHLIBNAME);
    mg_lua_open_lib(L, luaopen_bit, LUA_BITLIBNAME);
    /* luaopen_jit also initialises the compiler (CPU detection, default optimisations and
     * parameters): without it no trace is ever compiled.  The module itself stays hidden. */
    mg_lua_open_lib(L, luaopen_jit, LUA_JITLIBNAME);
    lua_pushnil(L);
    lua_setglobal(L, LUA_JITLIBNAME);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_ffi);
    lua_setfield(L, -2, "ffi");
    lua_pop(L, 1);
    /* no loading of C modules or files through require */
    lua_pushstring(L, "");
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_getfield(L, -1, "loaders");
    if (lua_istable(L, -1)) {
        for (int i = (int) lua_objlen(L, -1); i >= 2; i--) {
            lua_pushnil(L);
            lua_rawseti(L, -2, i);
        }
    }
    lua_pop(L, 2);
    /* JIT off: the count hook must fire everywhere (LuaJIT skips hooks in traces) */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_sethook(L, mg_lua_hook, LUA_MASKCOUNT, MG_LUA_HOOK_COUNT);

    lua_pushcfunction(L, mg_lua_traceback);
    vm->ref_traceback = luaL_ref(L, LUA_REGISTRYINDEX);

    const char *src = mg_lua_embedded_source("lua/moongate/bridge.lua");
    if (src == NULL || luaL_loadbuffer(L, src, strlen(src), "=moongate.bridge") != 0) {
        mg_err_set(err, MG_ERR_POLICY, "cannot load moongate.bridge: %s",
                   src ? lua_tostring(L, -1) : "not embedded");
        return LUA_NOREF;
    }
    char eb[768];
    if (mg_lua_bridge_call(vm, 0, 1, eb, sizeof(eb)) != MG_OK) {
        mg_err_set(err, MG_ERR_POLICY, "moongate.bridge: %s", eb);
        return LUA_NOREF;
    }
    int bref = luaL_ref(L, LUA_REGISTRYINDEX);

    /* bridge.init(abi, stats base, sizeof(mg_stat_t), C functions) */
    mg_lua_push_bridge_fn(vm, bref, "init");
    lua_pushinteger(L, MG_FFI_ABI);
    if (mg_stats != NULL) {
        lua_pushlightuserdata(L, mg_stats->slots);
    } else {
        lua_pushnil(L);
    }
    lua_pushinteger(L, (lua_Integer) sizeof(mg_stat_t));
    lua_createtable(L, 0, 5);
    lua_pushcfunction(L, mg_lua_c_log);
    lua_setfield(L, -2, "log");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, mg_lua_c_rand, 1);
    lua_setfield(L, -2, "rand");
    lua_pushcfunction(L, mg_lua_c_now_ms);
    lua_setfield(L, -2, "now_ms");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, mg_lua_c_budget_exceeded, 1);
    lua_setfield(L, -2, "budget_exceeded");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, mg_lua_c_wildcard_match, 1);
    lua_setfield(L, -2, "wildcard_match");
    if (mg_lua_bridge_call(vm, 4, 2, eb, sizeof(eb)) != MG_OK) {
        mg_err_set(err, MG_ERR_POLICY, "moongate.bridge.init: %s", eb);
        return LUA_NOREF;
    }
    if (!lua_toboolean(L, -2)) {
        mg_err_set(err, MG_ERR_POLICY, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "bridge init failed");
        lua_pop(L, 2);
        return LUA_NOREF;
    }
    lua_pop(L, 2);

    /* library modules policies may require */
    static const char *const libs[][2] = {
        {"moongate.deployments", "lua/moongate/deployments.lua"},
        {"moongate.log", "lua/moongate/log.lua"},
    };
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        const char *ls = mg_lua_embedded_source(libs[i][1]);
        mg_lua_push_bridge_fn(vm, bref, "add_module");
        lua_pushstring(L, libs[i][0]);
        lua_pushstring(L, ls ? ls : "");
        int nargs = 2;
        if (strcmp(libs[i][0], "moongate.log") == 0) {
            lua_pushcfunction(L, mg_lua_c_log);
            nargs = 3;
        }
        if (mg_lua_bridge_call(vm, nargs, 2, eb, sizeof(eb)) != MG_OK || !lua_toboolean(L, -2)) {
            mg_err_set(err, MG_ERR_POLICY, "library %s: %s", libs[i][0],
                       lua_tostring(L, -1) ? lua_tostring(L, -1) : eb);
            return LUA_NOREF;
        }
        lua_pop(L, 2);
    }
    mg_lua_push_bridge_fn(vm, bref, "add_wildcard_module");
    if (mg_lua_bridge_call(vm, 0, 1, eb, sizeof(eb)) != MG_OK) {
        mg_err_set(err, MG_ERR_POLICY, "moongate.wildcard: %s", eb);
        return LUA_NOREF;
    }
    lua_pop(L, 1);
    return bref;
}

static void
mg_lua_desc_num(lua_State *L, const char *k, double v)
{
    if (v >= 0) {
        lua_pushnumber(L, v);
        lua_setfield(L, -2, k);
    }
}

static void
mg_lua_push_descs(lua_State *L, const mg_snapshot_t *s)
{
    lua_createtable(L, (int) s->ndeps, 0);
    for (size_t i = 0; i < s->ndeps; i++) {
        const mg_deployment_t *d = &s->deps[i];
        lua_createtable(L, 0, 16);
        lua_pushinteger(L, (lua_Integer) i);
        lua_setfield(L, -2, "index");
        lua_pushinteger(L, d->stats_slot);
        lua_setfield(L, -2, "slot");
        lua_pushstring(L, d->id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, d->model_name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, d->upstream_model);
        lua_setfield(L, -2, "model");
        lua_pushstring(L, d->litellm_model);
        lua_setfield(L, -2, "litellm_model");
        lua_pushstring(L, d->provider);
        lua_setfield(L, -2, "provider");
        mg_lua_desc_num(L, "weight", d->weight);
        mg_lua_desc_num(L, "rpm", d->rpm);
        mg_lua_desc_num(L, "tpm", d->tpm);
        mg_lua_desc_num(L, "input_cost", d->input_cost);
        mg_lua_desc_num(L, "output_cost", d->output_cost);
        if (d->order > 0) {
            lua_pushinteger(L, d->order);
            lua_setfield(L, -2, "order");
        }
        if (d->max_input_tokens > 0) {
            /* model_info's, else the snapshot's cost map's */
            lua_pushnumber(L, (lua_Number) d->max_input_tokens);
            lua_setfield(L, -2, "max_input_tokens");
        }
        const char *region = json_string_value(json_object_get(d->litellm_params, "region_name"));
        if (region != NULL) {
            lua_pushstring(L, region);
            lua_setfield(L, -2, "region");
        }
        json_t *tags = json_object_get(d->litellm_params, "tags");
        if (json_is_array(tags)) {
            mg_lua_push_json(L, tags, 0);
            lua_setfield(L, -2, "tags");
        }
        lua_pushboolean(L, d->wildcard);
        lua_setfield(L, -2, "wildcard");
        if (d->wildcard) {
            lua_pushstring(L, d->model_name);
            lua_setfield(L, -2, "pattern");
        }
        lua_rawseti(L, -2, (int) i + 1);
    }
}

static const char *
mg_lua_chunk(const mg_lua_spec_t *sp)
{
    return sp->chunkname;
}

int
mg_lua_specs(const mg_snapshot_t *s, mg_lua_spec_t specs[MG_POLICY__COUNT], mg_err_t *err)
{
    json_t *cp = s->config->policies;
    for (int k = 0; k < MG_POLICY__COUNT; k++) {
        mg_lua_spec_t *sp = &specs[k];
        memset(sp, 0, sizeof(*sp));
        sp->kind = (mg_policy_kind_t) k;
        const char *kn = mg_policy_kind_name((mg_policy_kind_t) k);
        json_t *st = s->store_policies != NULL ? json_object_get(s->store_policies, kn) : NULL;
        json_t *ce = json_object_get(cp, kn);
        if (k == MG_POLICY_FILTER && ce == NULL && st == NULL) {
            snprintf(sp->name, sizeof(sp->name), "none"); /* no filter: nothing runs */
            continue;
        }
        sp->conf = json_object_get(ce, "conf");
        if (st != NULL && json_is_string(json_object_get(st, "source"))) {
            const char *nm = json_string_value(json_object_get(st, "display_name"));
            snprintf(sp->name, sizeof(sp->name), "%s", nm ? nm : kn);
            snprintf(sp->origin, sizeof(sp->origin), "store");
            snprintf(sp->chunkname, sizeof(sp->chunkname), "store:%s", sp->name);
            sp->source = json_string_value(json_object_get(st, "source"));
        } else {
            const char *nm = json_string_value(json_object_get(ce, "name"));
            const char *origin = json_string_value(json_object_get(ce, "origin"));
            snprintf(sp->name, sizeof(sp->name), "%s", nm ? nm : "?");
            if (origin != NULL && strcmp(origin, "file") == 0) {
                snprintf(sp->origin, sizeof(sp->origin), "file");
                const char *path = json_string_value(json_object_get(ce, "path"));
                snprintf(sp->chunkname, sizeof(sp->chunkname), "%s", path ? path : sp->name);
                sp->source = json_string_value(json_object_get(ce, "source"));
            } else {
                snprintf(sp->origin, sizeof(sp->origin), "builtin");
                snprintf(sp->chunkname, sizeof(sp->chunkname), "policies/%s/%s.lua", kn, sp->name);
                sp->source = mg_lua_builtin((mg_policy_kind_t) k, sp->name);
                if (sp->source == NULL) {
                    return mg_err_set(err, MG_ERR_CONFIG, "there is no built-in %s policy \"%s\"", kn,
                                      sp->name);
                }
            }
        }
        if (sp->source == NULL) {
            return mg_err_set(err, MG_ERR_CONFIG, "%s policy \"%s\" has no source", kn, sp->name);
        }
        mg_sha256_hex(sp->source, strlen(sp->source), sp->hash);
    }
    return MG_OK;
}

/* Loads one policy into the state; fills p. */
static void
mg_lua_load_one(mg_lua_vm_t *vm, int bref, const mg_lua_spec_t *sp, mg_lua_pol_t *p)
{
    lua_State *L = vm->L;
    snprintf(p->name, sizeof(p->name), "%s", sp->name);
    snprintf(p->origin, sizeof(p->origin), "%s", sp->origin);
    snprintf(p->hash, sizeof(p->hash), "%s", sp->hash);
    p->ref_select = LUA_NOREF;
    p->ref_conf = LUA_NOREF;
    mg_lua_push_bridge_fn(vm, bref, "load_policy");
    lua_pushstring(L, mg_policy_kind_name(sp->kind));
    lua_pushstring(L, sp->source);
    lua_pushstring(L, mg_lua_chunk(sp));
    if (sp->conf != NULL) {
        mg_lua_push_json(L, sp->conf, 0);
    } else {
        lua_newtable(L);
    }
    char eb[768];
    if (mg_lua_bridge_call(vm, 4, 2, eb, sizeof(eb)) != MG_OK) {
        snprintf(p->load_error, sizeof(p->load_error), "%s", eb);
        return;
    }
    if (lua_isnil(L, -2)) {
        snprintf(p->load_error, sizeof(p->load_error), "%s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "load failed");
        lua_pop(L, 2);
        return;
    }
    p->ref_conf = luaL_ref(L, LUA_REGISTRYINDEX); /* pops conf */
    if (strcmp(sp->origin, "store") == 0) {
        lua_getfield(L, -1, "name"); /* a stored policy is shown by its declared name */
        if (lua_isstring(L, -1)) {
            snprintf(p->name, sizeof(p->name), "%s", lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, -1, "select");
    p->ref_select = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    p->ok = true;
}

/* The snapshot's deployment views, the ctx proxy and the call buffers of a state. */
static int
mg_lua_attach_views(mg_lua_vm_t *vm, int bref, mg_snapshot_t *snap, char *eb, size_t ebl)
{
    lua_State *L = vm->L;
    mg_lua_push_bridge_fn(vm, bref, "build_views");
    mg_lua_push_descs(L, snap);
    if (mg_lua_bridge_call(vm, 1, 2, eb, ebl) != MG_OK) {
        return MG_ERROR;
    }
    vm->ref_index_of = luaL_ref(L, LUA_REGISTRYINDEX);
    vm->ref_views = luaL_ref(L, LUA_REGISTRYINDEX);
    vm->ref_ctx_proxy = mg_lua_make_ctx(vm);
    vm->snap = snap;
    vm->stamp = mg_xcalloc(snap->ndeps + 1, sizeof(int32_t));
    vm->cand_idx = mg_xcalloc(snap->ndeps + 1, sizeof(int32_t));
    vm->out_idx = mg_xcalloc(snap->ndeps + 1, sizeof(int32_t));
    mg_lua_push_bridge_fn(vm, bref, "set_buffers");
    lua_pushlightuserdata(L, vm->cand_idx);
    lua_pushlightuserdata(L, vm->out_idx);
    lua_pushlightuserdata(L, vm->stamp);
    if (mg_lua_bridge_call(vm, 3, 1, eb, ebl) != MG_OK) {
        return MG_ERROR;
    }
    lua_pop(L, 1);
    mg_lua_push_bridge_fn(vm, bref, "call");
    vm->ref_call = luaL_ref(L, LUA_REGISTRYINDEX);
    return MG_OK;
}

mg_lua_vm_t *
mg_lua_vm_create(mg_snapshot_t *snap, const mg_lua_limits_t *lim, mg_err_t *err)
{
    mg_lua_vm_t *vm = mg_xcalloc(1, sizeof(*vm));
    vm->snap = snap;
    int bref = mg_lua_state_new(vm, lim, err);
    if (bref == LUA_NOREF) {
        mg_lua_vm_destroy(vm);
        return NULL;
    }
    lua_State *L = vm->L;
    char eb[768];
    if (mg_lua_attach_views(vm, bref, snap, eb, sizeof(eb)) != MG_OK) {
        mg_err_set(err, MG_ERR_POLICY, "building deployment views: %s", eb);
        mg_lua_vm_destroy(vm);
        return NULL;
    }

    mg_lua_spec_t specs[MG_POLICY__COUNT];
    mg_err_t serr;
    bool specs_ok = mg_lua_specs(snap, specs, &serr) == MG_OK;
    mg_buf_t vb = MG_BUF_INIT;
    for (int k = 0; k < MG_POLICY__COUNT; k++) {
        mg_lua_pol_t *p = &vm->pol[k];
        p->ref_select = LUA_NOREF;
        p->ref_conf = LUA_NOREF;
        if (!specs_ok) {
            snprintf(p->load_error, sizeof(p->load_error), "%s", serr.msg);
            continue;
        }
        if (specs[k].source == NULL) {
            snprintf(p->name, sizeof(p->name), "none"); /* an optional kind, not configured */
            snprintf(p->origin, sizeof(p->origin), "none");
            continue;
        }
        mg_lua_load_one(vm, bref, &specs[k], p);
        mg_buf_append_str(&vb, p->hash);
        if (!p->ok) {
            mg_log(MG_LOG_ERROR, NULL, "%s policy \"%s\" (%s) cannot be used, requests use the "
                                       "configured order: %s", mg_policy_kind_name((mg_policy_kind_t) k),
                   p->name, p->origin, p->load_error);
        }
    }
    char h[65];
    mg_sha256_hex(vb.data ? mg_buf_head(&vb) : "", mg_buf_len(&vb), h);
    mg_buf_free(&vb);
    snprintf(vm->version, sizeof(vm->version), "%.12s", h);
    luaL_unref(L, LUA_REGISTRYINDEX, bref);
    /* built-in policies are the gateway's own reviewed O(n) code: JIT-compiled, no hook
     * (a count hook keeps LuaJIT from compiling traces).  Any user policy in the state
     * keeps it interpreted under the budget. */
    vm->trusted = specs_ok;
    for (int k = 0; k < MG_POLICY__COUNT && vm->trusted; k++) {
        vm->trusted = (vm->pol[k].ok && strcmp(vm->pol[k].origin, "builtin") == 0) ||
                      strcmp(vm->pol[k].origin, "none") == 0;
    }
    if (vm->trusted) {
        lua_sethook(L, NULL, 0, 0);
        luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON);
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    return vm;
}

void
mg_lua_vm_destroy(mg_lua_vm_t *vm)
{
    if (vm == NULL) {
        return;
    }
    if (vm->L != NULL) {
        lua_close(vm->L);
    }
    for (int k = 0; k < MG_LUA_SMALL_CLASSES; k++) {
        while (vm->free_small[k] != NULL) {
            void *p = vm->free_small[k];
            vm->free_small[k] = *(void **) p;
            free(p);
        }
    }
    free(vm->stamp);
    free(vm->cand_idx);
    free(vm->out_idx);
    free(vm);
}

/* ---- calls ---- */

static void
mg_lua_record_error(mg_lua_vm_t *vm, mg_lua_pol_t *p, mg_policy_kind_t kind, const char *msg)
{
    p->errors++;
    p->consecutive++;
    mg_ml_values_t mv = {{NULL}};
    mv.v[MG_ML_KIND] = mg_policy_kind_name(kind);
    mv.v[MG_ML_POLICY] = p->name;
    mg_metric_inc(mg_ml_series(MG_MF_POLICY_ERRORS, &mv), 1);
    if (vm->budget_exceeded || vm->mem_exceeded || vm->steps.exceeded) {
        p->budget_hits++;
        mg_metric_inc(mg_ml_series(MG_MF_POLICY_BUDGET_HITS, &mv), 1);
    }
    snprintf(p->last_error, sizeof(p->last_error), "%s", msg);
    if (!vm->quiet && (p->errors == 1 || p->errors % 1000 == 0)) {
        mg_log(MG_LOG_ERROR, NULL, "%s policy \"%s\" (registry version %lld) failed (%llu errors "
                                   "so far); using the configured order: %s",
               mg_policy_kind_name(kind), p->name, (long long) (vm->snap ? vm->snap->version : -1),
               (unsigned long long) p->errors, msg);
    }
}

int
mg_lua_vm_select(mg_lua_vm_t *vm, mg_policy_kind_t kind, const mg_lua_ctx_t *c,
                 mg_deployment_t *const *cands, int n, mg_deployment_t **out, int *nout,
                 char *reason, size_t reason_len)
{
    mg_lua_pol_t *p = &vm->pol[kind];
    *nout = 0;
    if (!p->ok) {
        return MG_ERROR;
    }
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    p->calls++;
    if (++vm->seq <= 0) {
        vm->seq = 1;
        memset(vm->stamp, 0, (vm->snap->ndeps + 1) * sizeof(int32_t));
    }
    int32_t seq = vm->seq;

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_traceback);   /* top+1 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_call);        /* bridge.call */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref_select);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_ctx_proxy);
    /* the candidates go by index; the bridge builds a fresh table of their views (a
     * policy that sorts its input in place must not change the next call's) */
    int64_t minute = mg_stats_this_minute();
    int nc = 0; /* distinct candidates: the buffers hold one entry per deployment */
    for (int i = 0; i < n; i++) {
        size_t di = cands[i]->index;
        if (vm->stamp[di] == seq) {
            continue;
        }
        vm->stamp[di] = seq;
        vm->cand_idx[nc++] = (int32_t) di;
        mg_stats_roll(cands[i]->stats_slot, minute); /* this minute's counters, even if idle */
    }
    lua_pushinteger(L, nc);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref_conf);
    lua_pushinteger(L, seq);

    mg_lua_arm(vm, 1);
    mg_lua_current = vm;
    vm->cur = c;
    vm->cur_kind = kind;
    int rc = lua_pcall(L, 5, 2, top + 1);
    vm->cur = NULL;
    mg_lua_current = NULL;
    if (rc != 0) {
        const char *m = lua_tostring(L, -1);
        char msg[768];
        snprintf(msg, sizeof(msg), "%s%s", rc == LUA_ERRMEM ? "memory cap reached: " : "",
                 m ? m : "error without a message");
        mg_lua_record_error(vm, p, kind, msg);
        lua_settop(L, top);
        if (rc == LUA_ERRMEM || vm->mem_exceeded) {
            lua_gc(L, LUA_GCCOLLECT, 0);
        }
        return MG_ERROR;
    }
    /* results at top+2 (count, or nil) and top+3 (reason or what is wrong) */
    if (!lua_isnumber(L, top + 2)) {
        const char *m = lua_tostring(L, top + 3);
        mg_lua_record_error(vm, p, kind, m ? m : "select() returned an invalid result");
        lua_settop(L, top);
        return MG_ERROR;
    }
    int m = (int) lua_tointeger(L, top + 2);
    if (m == 0) {
        const char *why = lua_tostring(L, top + 3);
        snprintf(reason, reason_len, "%s", why ? why : "the policy accepted no deployment");
        p->consecutive = 0;
        lua_settop(L, top);
        return MG_DECLINED;
    }
    for (int i = 0; i < m && i < nc; i++) {
        out[(*nout)++] = &vm->snap->deps[vm->out_idx[i]];
    }
    p->consecutive = 0;
    lua_settop(L, top);
    return MG_OK;
}

json_t *
mg_lua_vm_state(const mg_lua_vm_t *vm)
{
    json_t *list = json_array();
    for (int k = 0; k < MG_POLICY__COUNT; k++) {
        const mg_lua_pol_t *p = &vm->pol[k];
        if (strcmp(p->origin, "none") == 0) {
            continue; /* an optional kind nobody configured */
        }
        json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:b}", "kind",
                              mg_policy_kind_name((mg_policy_kind_t) k), "name", p->name, "origin",
                              p->origin, "hash", p->hash, "loaded", p->ok, "calls",
                              (json_int_t) p->calls, "errors", (json_int_t) p->errors,
                              "consecutive_errors", (json_int_t) p->consecutive, "failing",
                              !p->ok || p->consecutive >= 10);
        json_object_set_new(e, "budget_hits", json_integer((json_int_t) p->budget_hits));
        json_object_set_new(e, "load_error", p->load_error[0] ? json_string(p->load_error) : json_null());
        json_object_set_new(e, "last_error", p->last_error[0] ? json_string(p->last_error) : json_null());
        json_array_append_new(list, e);
    }
    return json_pack("{s:s,s:b,s:I,s:I,s:o}", "version", vm->version, "jit", vm->trusted,
                     "memory_bytes", (json_int_t) vm->mem_used, "registry_version",
                     (json_int_t) (vm->snap ? vm->snap->version : -1), "policies", list);
}

bool
mg_lua_vm_has(const mg_lua_vm_t *vm, mg_policy_kind_t kind)
{
    return vm != NULL && vm->pol[kind].ok;
}

bool
mg_lua_configured(const mg_snapshot_t *s, mg_policy_kind_t kind)
{
    if (kind != MG_POLICY_FILTER) {
        return true;
    }
    const char *kn = mg_policy_kind_name(kind);
    return json_object_get(s->config->policies, kn) != NULL ||
           (s->store_policies != NULL && json_object_get(s->store_policies, kn) != NULL);
}

const char *
mg_lua_vm_version(const mg_lua_vm_t *vm)
{
    return vm->version;
}

size_t
mg_lua_vm_memory(const mg_lua_vm_t *vm)
{
    return vm->mem_used;
}

/* ---- checks ---- */

int
mg_lua_check(mg_policy_kind_t kind, const char *source, const char *chunkname, json_t *conf,
             bool exercise, mg_err_t *err)
{
    mg_lua_vm_t *vm = mg_xcalloc(1, sizeof(*vm));
    vm->quiet = true;
    mg_lua_limits_t lim = {5, 64};
    int bref = mg_lua_state_new(vm, &lim, err);
    if (bref == LUA_NOREF) {
        mg_lua_vm_destroy(vm);
        return MG_ERROR;
    }
    mg_lua_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.kind = kind;
    snprintf(sp.name, sizeof(sp.name), "%s", chunkname);
    snprintf(sp.origin, sizeof(sp.origin), "check");
    snprintf(sp.chunkname, sizeof(sp.chunkname), "%s", chunkname);
    sp.source = source;
    sp.conf = conf;
    mg_lua_pol_t p;
    memset(&p, 0, sizeof(p));
    mg_lua_load_one(vm, bref, &sp, &p);
    int rc = MG_OK;
    if (!p.ok) {
        rc = mg_err_set(err, MG_ERR_POLICY, "%s", p.load_error);
    } else if (exercise) {
        /* three sample deployments through select(): the result must be a subset */
        static const char *sample =
            "model_list:\n"
            "  - {model_name: sample, litellm_params: {model: openai/a, rpm: 10, weight: 1}}\n"
            "  - {model_name: sample, litellm_params: {model: openai/b, tpm: 100}}\n"
            "  - {model_name: \"sample/*\", litellm_params: {model: \"openai/*\"}}\n";
        mg_config_opts_t o = {NULL, true};
        mg_config_t *cfg = NULL;
        mg_snapshot_t *snap = NULL;
        if (mg_config_load_text(sample, strlen(sample), "<sample>", &o, &cfg, err) != MG_OK ||
            mg_registry_build(cfg, NULL, NULL, 0, NULL, &snap, err) != MG_OK) {
            rc = MG_ERROR;
        } else {
            char eb[768];
            if (mg_lua_attach_views(vm, bref, snap, eb, sizeof(eb)) != MG_OK) {
                rc = mg_err_set(err, MG_ERR_POLICY, "%s", eb);
            } else {
                vm->pol[kind] = p;
                mg_deployment_t *cands[3];
                int nc = 0;
                for (size_t i = 0; i < snap->ndeps; i++) {
                    if ((kind == MG_POLICY_WILDCARD) == snap->deps[i].wildcard) {
                        cands[nc++] = &snap->deps[i];
                    }
                }
                mg_deployment_t *outv[3];
                int no;
                char why[256];
                mg_lua_ctx_t ctx = {"sample/x", "sample", false, 1, 10, "rate_limited", 429, NULL, NULL, 0};
                int r = mg_lua_vm_select(vm, kind, &ctx, cands, nc, outv, &no, why, sizeof(why));
                if (r == MG_ERROR) {
                    rc = mg_err_set(err, MG_ERR_POLICY, "%s", vm->pol[kind].last_error);
                }
            }
        }
        mg_snapshot_unref(snap);
        mg_config_unref(cfg);
    }
    mg_lua_vm_destroy(vm);
    return rc;
}

int
mg_lua_check_config(const mg_config_t *cfg, mg_err_t *err)
{
    json_t *pol = cfg->policies;
    for (int k = 0; k < MG_POLICY__COUNT; k++) {
        const char *kn = mg_policy_kind_name((mg_policy_kind_t) k);
        json_t *e = json_object_get(pol, kn);
        if (e == NULL && k == MG_POLICY_FILTER) {
            continue; /* optional */
        }
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *origin = json_string_value(json_object_get(e, "origin"));
        const char *src = NULL;
        char chunk[600];
        if (origin != NULL && strcmp(origin, "file") == 0) {
            src = json_string_value(json_object_get(e, "source"));
            snprintf(chunk, sizeof(chunk), "%s", json_string_value(json_object_get(e, "path")));
        } else {
            src = name ? mg_lua_builtin((mg_policy_kind_t) k, name) : NULL;
            snprintf(chunk, sizeof(chunk), "policies/%s/%s.lua", kn, name ? name : "?");
            if (src == NULL) {
                return mg_err_set(err, MG_ERR_CONFIG, "%s: router_settings.%s_policy: there is no "
                                                      "built-in %s policy \"%s\"",
                                  cfg->path, kn, kn, name ? name : "?");
            }
        }
        if (mg_lua_check((mg_policy_kind_t) k, src, chunk, json_object_get(e, "conf"), true, err) != MG_OK) {
            return mg_err_prefix(err, "%s policy refused: ", kn);
        }
    }
    return MG_OK;
}

/* ---- CLI ---- */

int
mg_lua_cli(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: moongate policy check FILE.lua [--kind routing|fallback|wildcard|filter] "
                        "[--conf JSON]\n");
        return 2;
    }
    const char *file = argv[2];
    const char *kind_s = NULL;
    const char *conf_s = NULL;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--kind") == 0) {
            kind_s = argv[i + 1];
        } else if (strcmp(argv[i], "--conf") == 0) {
            conf_s = argv[i + 1];
        } else {
            fprintf(stderr, "moongate policy check: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "moongate policy check: cannot open %s\n", file);
        return 1;
    }
    mg_buf_t b = MG_BUF_INIT;
    char tmp[8192];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        mg_buf_append(&b, tmp, n);
    }
    fclose(f);
    const char *src = b.data ? mg_buf_cstr(&b) : "";
    /* the kind: --kind, else the module's own "kind = ..." field */
    mg_policy_kind_t kind = MG_POLICY_ROUTING;
    const char *kn = kind_s;
    if (kn == NULL) {
        kn = strstr(src, "kind = \"fallback\"")   ? "fallback"
             : strstr(src, "kind = \"wildcard\"") ? "wildcard"
             : strstr(src, "kind = \"filter\"")   ? "filter"
                                                   : "routing";
    }
    if (strcmp(kn, "fallback") == 0) {
        kind = MG_POLICY_FALLBACK;
    } else if (strcmp(kn, "wildcard") == 0) {
        kind = MG_POLICY_WILDCARD;
    } else if (strcmp(kn, "filter") == 0) {
        kind = MG_POLICY_FILTER;
    } else if (strcmp(kn, "routing") != 0) {
        fprintf(stderr, "moongate policy check: --kind must be routing, fallback, wildcard or "
                        "filter\n");
        mg_buf_free(&b);
        return 2;
    }
    json_t *conf = NULL;
    if (conf_s != NULL) {
        json_error_t je;
        conf = json_loads(conf_s, 0, &je);
        if (!json_is_object(conf)) {
            fprintf(stderr, "moongate policy check: --conf must be a JSON object (%s)\n", je.text);
            json_decref(conf);
            mg_buf_free(&b);
            return 2;
        }
    }
    mg_err_t err;
    int rc = mg_lua_check(kind, src, file, conf, true, &err);
    char hash[65];
    mg_sha256_hex(src, strlen(src), hash);
    if (rc == MG_OK) {
        printf("moongate: %s policy %s OK (sha256 %.12s)\n", mg_policy_kind_name(kind), file, hash);
    } else {
        fprintf(stderr, "moongate: %s policy %s refused: %s\n", mg_policy_kind_name(kind), file,
                err.msg);
    }
    json_decref(conf);
    mg_buf_free(&b);
    return rc == MG_OK ? 0 : 1;
}
