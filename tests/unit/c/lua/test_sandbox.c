/*
 * test_sandbox.c -- what a policy may not do, through mg_lua_check() (the
 * check behind config loading, POST /policy/update and `moongate policy
 * check`) and through a policy state (mg_lua_vm_create/select): no io, os,
 * debug, ffi, jit, load*, dofile, set/getfenv, string.dump or require of
 * anything but moongate.*; no globals; the instruction budget (pcall and
 * xpcall cannot swallow it); the memory cap; results that are not a subset of
 * the candidates; read-only ctx and views; no bytecode; validate(conf);
 * file:line in errors; JIT only for built-in-only states.
 *
 * Checks that could hang or crash the test (C functions the count hook cannot
 * interrupt, raw memory reads through FFI views) run in a forked child with a
 * deadline.
 */
#include "policy_fixture.h"

#include <signal.h>
#include <sys/wait.h>

#define ROUTING MG_POLICY_ROUTING

/* a policy whose select() is BODY (ctx, c, conf in scope) */
#define POLICY(body)                                                                               \
    "local _M = { name = 'sbx', kind = 'routing' }\n"                                              \
    "function _M.select(ctx, c, conf)\n" body "\nend\nreturn _M\n"

static const char *const GROUP_YAML =
    "model_list:\n"
    "  - {model_name: sb, litellm_params: {model: openai/sb-a, api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: sb-a}}\n"
    "  - {model_name: sb, litellm_params: {model: openai/sb-b, api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: sb-b}}\n"
    "  - {model_name: sb, litellm_params: {model: openai/sb-c, api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: sb-c}}\n";

typedef struct {
    mg_snapshot_t *s;
    mg_lua_vm_t *vm;
    mg_group_t *g;
} sb_t;

/* A state whose routing policy is src (from the store: a user policy). */
static sb_t
sb_new(const char *src, int budget_ms, int memory_mb)
{
    sb_t t;
    json_t *st = pf_store1("routing", src);
    t.s = pf_snap(GROUP_YAML, st);
    json_decref(st);
    t.vm = pf_vm(t.s, budget_ms, memory_mb);
    t.g = pf_group(t.s, "sb");
    return t;
}

static void
sb_free(sb_t *t)
{
    mg_lua_vm_destroy(t->vm);
    mg_snapshot_unref(t->s);
}

static mg_deployment_t *sb_out[16];
static int sb_nout;

/* One routing call with ctx.model = model on the whole group. */
static int
sb_call(sb_t *t, const char *model)
{
    mg_lua_ctx_t c = {model, "sb", false, 1, 10, NULL, 0, NULL, NULL, 0};
    return pf_select(t->vm, ROUTING, &c, t->g->deps, (int) t->g->ndeps, sb_out, &sb_nout);
}

static int
check_src(const char *src, const char *chunk, json_t *conf, bool exercise, mg_err_t *err)
{
    err->msg[0] = '\0';
    return mg_lua_check(ROUTING, src, chunk, conf, exercise, err);
}

/* ---- forked runs ---- */

typedef int (*iso_fn)(void *arg);

/*
 * Runs fn in a child; returns its exit code (0..255), or -SIG when it died of
 * a signal, or -1000 when it was still running at the deadline (then killed).
 */
static int
run_isolated(iso_fn fn, void *arg, int timeout_ms, int64_t *elapsed_ms)
{
    fflush(stdout);
    fflush(stderr);
    int64_t t0 = pf_now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        _exit(fn(arg) & 0xff);
    }
    int status = 0;
    int res = -1000;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            res = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
            break;
        }
        if ((pf_now_ns() - t0) / 1000000 > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            res = -1000;
            break;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    *elapsed_ms = (pf_now_ns() - t0) / 1000000;
    return res;
}

/* ---- capabilities ---- */

static void
test_capabilities(void)
{
    MG_T_CASE("sandbox: no io/os/debug/ffi/jit/load*/dofile/fenv/string.dump, require only moongate.*");
    /* each expression must be unreachable: an error, or nil */
    static const char *const exprs[] = {
        "io", "os", "debug", "ffi", "jit", "load", "loadstring", "loadfile", "dofile", "setfenv",
        "getfenv", "string.dump", "require('ffi')", "require('jit')", "require('io')", "require('os')",
        "require('debug')", "require('string')", "require('moongate.bridge')", "require('bit')",
        "require('table')", "package", "package.loaded", "_G", "collectgarbage", "coroutine", "module",
        "newproxy", "rawset", "rawget", "math.random", "math.randomseed", "print", "gcinfo",
        "getmetatable('').__index", "getmetatable(string).__index", "string.dump ~= nil and 1 or nil",
        "(''):dump(function() end)", "('').dump",
        "require('moongate.deployments').copy ~= nil and getmetatable(require('moongate.deployments')).__index",
    };
    for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        char src[1024];
        snprintf(src, sizeof(src),
                 "local ok, v = pcall(function() return %s end)\n"
                 "if ok and v ~= nil then error([==[REACHABLE: %s]==]) end\n"
                 "local _M = {}\nfunction _M.select(ctx, c) return c end\nreturn _M\n",
                 exprs[i], exprs[i]);
        mg_err_t err;
        int rc = check_src(src, "caps.lua", NULL, false, &err);
        bool bad = rc != MG_OK && strstr(err.msg, "REACHABLE") != NULL;
        CHECK(!bad, "%s is reachable from a policy", exprs[i]);
        CHECK(rc == MG_OK, "%s: unexpected refusal: %s", exprs[i], err.msg);
    }

    /* the library modules are there */
    mg_err_t err;
    int rc = check_src("local d = require 'moongate.deployments'\nlocal l = require 'moongate.log'\n"
                       "local w = require 'moongate.wildcard'\n"
                       "assert(type(d.stable_sort) == 'function' and type(l.info) == 'function' and "
                       "type(w.match) == 'function')\n"
                       "local _M = {}\nfunction _M.select(ctx, c) return c end\nreturn _M\n",
                       "libs.lua", NULL, true, &err);
    CHECK(rc == MG_OK, "moongate.* modules: %s", err.msg);

    /* using a forbidden global names it */
    rc = check_src("local f = io.open('/etc/passwd')\nlocal _M = {}\nfunction _M.select(ctx, c) return c end\nreturn _M\n",
                   "io.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "io.lua:1:");
    CHECK_CONTAINS(err.msg, "undefined global 'io'");
    rc = check_src("local ffi = require 'ffi'\nlocal _M = {}\nfunction _M.select(ctx, c) return c end\nreturn _M\n",
                   "ffi.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "not available to policies");
    rc = check_src("local _M = {}\nfunction _M.select(ctx, c)\n  os.execute('true')\n  return c\nend\nreturn _M\n",
                   "os_in_select.lua", NULL, true, &err);
    CHECK_INT(rc, MG_ERROR); /* exercised: select() runs once on sample candidates */
    CHECK_CONTAINS(err.msg, "os_in_select.lua:3:");

    /* the same through a state: the call fails and is counted, the state stays usable */
    sb_t t = sb_new(POLICY("if ctx.model == 'io' then return { io.open('/etc/passwd') } end\n"
                           "if ctx.model == 'ffi' then return { require('ffi') } end\n"
                           "if ctx.model == 'load' then return { loadstring('return 1') } end\n"
                           "return c"), 5, 64);
    CHECK(!pf_jit(t.vm), "a state with a user policy is interpreted");
    CHECK_INT(sb_call(&t, "io"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "undefined global 'io'");
    CHECK_INT(sb_call(&t, "ffi"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "not available to policies");
    CHECK_INT(sb_call(&t, "load"), MG_ERROR);
    CHECK_INT(pf_errors(t.vm, ROUTING), 3);
    CHECK(sb_call(&t, "ok") == MG_OK && sb_nout == 3);
    sb_free(&t);
}

static void
test_globals(void)
{
    MG_T_CASE("sandbox: globals refused");
    mg_err_t err;
    int rc = check_src("counter = 0\nlocal _M = {}\nfunction _M.select(ctx, c) return c end\nreturn _M\n",
                       "glob.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "may not set global 'counter'");
    CHECK_CONTAINS(err.msg, "glob.lua:1:");
    rc = check_src("local _M = {}\nfunction _M.select(ctx, c) return undefined_thing end\nreturn _M\n",
                   "undef.lua", NULL, true, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "undefined global 'undefined_thing'");
    /* state: a global write in select() fails every call, with the configured order used */
    sb_t t = sb_new(POLICY("last_pick = c[1]\nreturn c"), 5, 64);
    CHECK_INT(sb_call(&t, "x"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "may not set global 'last_pick'");
    CHECK_INT(sb_nout, 0);
    sb_free(&t);
    /* a module-level local keeps state between calls, legitimately */
    t = sb_new("local n = 0\nlocal _M = {}\nfunction _M.select(ctx, c)\n n = n + 1\n"
               " return { c[(n - 1) % #c + 1] }\nend\nreturn _M\n", 5, 64);
    CHECK(sb_call(&t, "x") == MG_OK && sb_out[0] == t.g->deps[0]);
    CHECK(sb_call(&t, "x") == MG_OK && sb_out[0] == t.g->deps[1]);
    sb_free(&t);
}

/* ---- budget ---- */

static void
budget_case(const char *what, const char *body, int budget_ms)
{
    char src[2048];
    snprintf(src, sizeof(src), POLICY("if ctx.model == 'spin' then\n%s\nend\nreturn c"), body);
    sb_t t = sb_new(src, budget_ms, 64);
    CHECK(!pf_jit(t.vm));
    int64_t t0 = pf_now_ns();
    int rc = sb_call(&t, "spin");
    int64_t us = (pf_now_ns() - t0) / 1000;
    CHECK(rc == MG_ERROR, "%s: rc %d", what, rc);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "exceeded its budget");
    CHECK_INT(sb_nout, 0);
    printf("  budget %d ms: \"%s\" stopped after %.2f ms\n", budget_ms, what, (double) us / 1000.0);
    /* the state is still usable, and the next overrun is stopped again */
    CHECK(sb_call(&t, "ok") == MG_OK && sb_nout == 3, "%s: state unusable after the overrun", what);
    t0 = pf_now_ns();
    CHECK_INT(sb_call(&t, "spin"), MG_ERROR);
    printf("  budget %d ms: \"%s\" again: %.2f ms\n", budget_ms, what,
           (double) (pf_now_ns() - t0) / 1e6);
    CHECK_INT(pf_errors(t.vm, ROUTING), 2);
    json_t *all;
    json_t *p = pf_pol(t.vm, ROUTING, &all);
    CHECK_INT(json_integer_value(json_object_get(p, "budget_hits")), 2); /* the admin page shows it */
    json_decref(all);
    sb_free(&t);
}

static int
iso_budget(void *arg)
{
    const char *body = arg;
    char src[2048];
    snprintf(src, sizeof(src), POLICY("%s\nreturn c"), body);
    sb_t t = sb_new(src, 5, 64);
    int rc = sb_call(&t, "x");
    return rc == MG_ERROR ? 0 : 1;
}

static void
test_budget(void)
{
    MG_T_CASE("budget: while true do end");
    budget_case("while true do end", "while true do end", 5);
    budget_case("while true do end (budget 1 ms)", "while true do end", 1);
    MG_T_CASE("budget: a hot numeric loop (would be a JIT trace)");
    budget_case("for i = 1, 1e15 do x = x + i end", "local x = 0\nfor i = 1, 1e15 do x = x + i end", 5);
    MG_T_CASE("budget: pcall cannot swallow it");
    budget_case("while true do pcall(function() while true do end end) end",
                "while true do pcall(function() while true do end end) end", 5);
    budget_case("pcall(error) in a loop, then spin",
                "for i = 1, 10 do pcall(error, 'x') end\nwhile true do pcall(function() while true do end end) end", 5);
    MG_T_CASE("budget: xpcall cannot swallow it");
    budget_case("xpcall(spin, handler)",
                "while true do xpcall(function() while true do end end, function(e) return e end) end", 5);
    /* the handler runs after the protected call has unwound, so a spinning
     * handler meets the budget like any other code */
    budget_case("xpcall(error, spinning handler)",
                "xpcall(function() error('x') end, function() while true do end end)", 5);
    {
        /* the budget error is raised from inside the count hook; LuaJIT runs the xpcall
         * message handler before unwinding, with the hook still marked active, so no
         * further hook fires inside the handler (forked, 5 s deadline) */
        int64_t ms = 0;
        int res = run_isolated(iso_budget,
                               (void *) "xpcall(function() while true do end end, function() while true do end end)",
                               5000, &ms);
        printf("  xpcall(spin, spinning handler): child %s after %lld ms\n",
               res == -1000 ? "still running (killed)" : res == 0 ? "stopped by the budget" : "ended",
               (long long) ms);
        CHECK(res == 0, "xpcall(spin, spin): result %d after %lld ms", res, (long long) ms);
    }
    MG_T_CASE("budget: loops inside callbacks from C functions");
    budget_case("string.gsub callback spins", "string.gsub('aaaa', 'a', function() while true do end end)", 5);
    budget_case("table.sort comparator spins",
                "local t = {3, 2, 1}\ntable.sort(t, function(a, b) while true do end end)", 5);
    budget_case("unbounded tail recursion", "local function f(n) return f(n + 1) end\nf(1)", 5);

    MG_T_CASE("budget: at load time");
    mg_err_t err;
    int64_t t0 = pf_now_ns();
    int rc = check_src("while true do end\nreturn {}\n", "spin_at_load.lua", NULL, false, &err);
    printf("  load-time spin refused after %.2f ms\n", (double) (pf_now_ns() - t0) / 1e6);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "exceeded its budget");
    /* exercised select() loops: refused by the check (so /policy/update refuses it) */
    rc = check_src(POLICY("while true do end"), "spin_in_select.lua", NULL, true, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "exceeded its budget");
    /* validate() loops */
    rc = check_src("local _M = {}\nfunction _M.validate(conf) while true do end end\n"
                   "function _M.select(ctx, c) return c end\nreturn _M\n",
                   "spin_in_validate.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "exceeded its budget");

    MG_T_CASE("budget: C functions the count hook cannot interrupt (forked, 5 s deadline)");
    {
        /* backtracking in Lua patterns is exponential in the number of optional items:
         * 2^32 steps inside one C call, no VM instruction for the hook to count */
        static const char *pat =
            "local s = string.rep('a', 32)\n"
            "local p = string.rep('a?', 32) .. string.rep('a', 32) .. 'b'\n"
            "string.find(s, p)";
        int64_t ms = 0;
        int res = run_isolated(iso_budget, (void *) pat, 5000, &ms);
        printf("  pathological string.find: child %s after %lld ms\n",
               res == -1000 ? "still running (killed)" : res == 0 ? "stopped by the budget" : "ended",
               (long long) ms);
        CHECK(res == 0, "pathological pattern: result %d after %lld ms", res, (long long) ms);
        /* big string operations are bounded by the memory cap instead */
        res = run_isolated(iso_budget, (void *) "local s = string.rep('x', 2^30)", 20000, &ms);
        CHECK(res == 0, "string.rep 2^30: result %d after %lld ms", res, (long long) ms);
    }
}

/* ---- memory ---- */

static void
test_memory(void)
{
    MG_T_CASE("memory cap (policy_memory_mb = 8)");
    sb_t t = sb_new(POLICY("if ctx.model == 'hog' then\n"
                           "  local keep, i = {}, 0\n"
                           "  while true do i = i + 1; keep[i] = string.rep('x', 65536) .. i end\n"
                           "end\nreturn c"),
                    1000 /* the memory cap, not the budget, must stop it */, 8);
    size_t before = mg_lua_vm_memory(t.vm);
    printf("  state memory before: %zu KiB\n", before / 1024);
    int64_t t0 = pf_now_ns();
    int rc = sb_call(&t, "hog");
    printf("  allocation loop stopped after %.2f ms\n", (double) (pf_now_ns() - t0) / 1e6);
    CHECK_INT(rc, MG_ERROR);
    const char *le = pf_last_error(t.vm, ROUTING);
    CHECK(strstr(le, "memory") != NULL, "last error: %s", le);
    CHECK(strstr(le, "budget") == NULL, "stopped by the budget instead: %s", le);
    CHECK(mg_lua_vm_memory(t.vm) <= (size_t) 8 * 1024 * 1024, "memory %zu", mg_lua_vm_memory(t.vm));
    /* usable afterwards, and the garbage is gone */
    CHECK(sb_call(&t, "ok") == MG_OK && sb_nout == 3);
    CHECK(mg_lua_vm_memory(t.vm) < (size_t) 4 * 1024 * 1024, "memory after: %zu", mg_lua_vm_memory(t.vm));
    /* again: same outcome */
    CHECK_INT(sb_call(&t, "hog"), MG_ERROR);
    CHECK(sb_call(&t, "ok") == MG_OK);
    /* pcall cannot swallow a memory error either */
    sb_free(&t);
    t = sb_new(POLICY("if ctx.model == 'hog' then\n"
                      "  local keep, i = {}, 0\n"
                      "  while true do\n"
                      "    pcall(function() i = i + 1; keep[i] = string.rep('y', 65536) .. i end)\n"
                      "  end\n"
                      "end\nreturn c"),
               1000, 8);
    t0 = pf_now_ns();
    rc = sb_call(&t, "hog");
    printf("  allocation loop under pcall stopped after %.2f ms\n", (double) (pf_now_ns() - t0) / 1e6);
    CHECK_INT(rc, MG_ERROR);
    le = pf_last_error(t.vm, ROUTING);
    CHECK(strstr(le, "memory") != NULL, "last error (pcall): %s", le);
    CHECK(sb_call(&t, "ok") == MG_OK);
    sb_free(&t);

    /* a huge single allocation */
    t = sb_new(POLICY("if ctx.model == 'big' then local s = string.rep('z', 64 * 1024 * 1024) end\nreturn c"), 5, 8);
    CHECK_INT(sb_call(&t, "big"), MG_ERROR);
    CHECK(strstr(pf_last_error(t.vm, ROUTING), "memory") != NULL, "%s", pf_last_error(t.vm, ROUTING));
    CHECK(sb_call(&t, "ok") == MG_OK);
    sb_free(&t);

    /* the limit reaches the state through mg_lua_limits_t: 64 MB lets the same call through */
    t = sb_new(POLICY("if ctx.model == 'big' then local s = string.rep('z', 16 * 1024 * 1024) end\nreturn c"), 50, 64);
    CHECK(sb_call(&t, "big") == MG_OK, "16 MiB under a 64 MiB cap: %s", pf_last_error(t.vm, ROUTING));
    sb_free(&t);
}

/* ---- contract: results ---- */

static void
test_results(void)
{
    MG_T_CASE("results: not a subset / duplicates / non-table -> MG_ERROR, counted");
    sb_t t = sb_new(POLICY("if ctx.model == 'alien' then return { { id = 'openai-default' } } end\n"
                           "if ctx.model == 'dup' then return { c[1], c[2], c[1] } end\n"
                           "if ctx.model == 'num' then return 42 end\n"
                           "if ctx.model == 'str' then return 'sb-a' end\n"
                           "if ctx.model == 'nilerr' then return nil, 'the policy gave up' end\n"
                           "if ctx.model == 'boom' then error('boom') end\n"
                           "if ctx.model == 'errtbl' then error({}) end\n"
                           "if ctx.model == 'none' then return {}, 'nothing fits' end\n"
                           "if ctx.model == 'holes' then return { c[1], nil, c[2] } end\n"
                           "if ctx.model == 'first' then return { c[1] } end\n"
                           "return c"), 5, 64);
    long long e0 = pf_errors(t.vm, ROUTING);
    CHECK_INT(sb_call(&t, "alien"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "not one of the candidate views");
    CHECK_INT(sb_nout, 0);
    CHECK_INT(sb_call(&t, "dup"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "duplicate");
    CHECK_INT(sb_nout, 0);
    CHECK_INT(sb_call(&t, "num"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "returned number");
    CHECK_INT(sb_call(&t, "str"), MG_ERROR);
    CHECK_INT(sb_call(&t, "nilerr"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "the policy gave up");
    CHECK_INT(sb_call(&t, "boom"), MG_ERROR);
    /* the chunk name and line of the error */
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "store:routing:8: boom");
    CHECK_INT(sb_call(&t, "errtbl"), MG_ERROR);
    CHECK_INT(pf_errors(t.vm, ROUTING), e0 + 7);
    /* {} + reason is a decline, not an error */
    CHECK_INT(sb_call(&t, "none"), MG_DECLINED);
    CHECK_STR(pf_reason, "nothing fits");
    CHECK_INT(pf_errors(t.vm, ROUTING), e0 + 7);
    /* a hole ends the list (Lua length): c[1] only, or an error -- never c[2] without c[1] */
    int rc = sb_call(&t, "holes");
    CHECK(rc == MG_ERROR || (rc == MG_OK && sb_nout >= 1 && sb_out[0] == t.g->deps[0]),
          "holes: rc %d nout %d", rc, sb_nout);
    CHECK(sb_call(&t, "first") == MG_OK && sb_nout == 1 && sb_out[0] == t.g->deps[0]);
    sb_free(&t);

    MG_T_CASE("results: a view kept from an earlier call is not a candidate now");
    t = sb_new("local saved\nlocal _M = {}\nfunction _M.select(ctx, c)\n"
               "  if saved == nil then saved = c[#c] end\n  return { saved }\nend\nreturn _M\n", 5, 64);
    CHECK(sb_call(&t, "x") == MG_OK && sb_out[0] == t.g->deps[2]);
    mg_lua_ctx_t c = {"x", "sb", false, 1, 10, NULL, 0, NULL, NULL, 0};
    rc = pf_select(t.vm, ROUTING, &c, t.g->deps, 2, sb_out, &sb_nout); /* sb-c not offered */
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "not among this call's candidates");
    sb_free(&t);

    MG_T_CASE("results: errors are counted, logged once with the policy name, failing after 10");
    t = sb_new(POLICY("if ctx.model == 'bad' then error('always wrong') end\nreturn c"), 5, 64);
    pf_capture_begin();
    CHECK_INT(sb_call(&t, "bad"), MG_ERROR);
    const char *log = pf_capture_end();
    CHECK_CONTAINS(log, "routing policy \"sbx\"");
    CHECK_CONTAINS(log, "always wrong");
    CHECK_CONTAINS(log, "using the configured order");
    for (int i = 0; i < 9; i++) {
        sb_call(&t, "bad");
    }
    json_t *all;
    json_t *p = pf_pol(t.vm, ROUTING, &all);
    CHECK_INT(json_integer_value(json_object_get(p, "errors")), 10);
    CHECK_INT(json_integer_value(json_object_get(p, "consecutive_errors")), 10);
    CHECK(json_is_true(json_object_get(p, "failing")), "failing after 10 consecutive errors");
    CHECK_STR(json_string_value(json_object_get(p, "name")), "sbx");
    CHECK_STR(json_string_value(json_object_get(p, "origin")), "store");
    CHECK(json_is_true(json_object_get(p, "loaded")));
    CHECK(json_integer_value(json_object_get(p, "calls")) >= 10);
    CHECK_INT(json_integer_value(json_object_get(p, "budget_hits")), 0); /* errors, not overruns */
    json_decref(all);
    CHECK(sb_call(&t, "good") == MG_OK);
    CHECK(!pf_state_bool(t.vm, ROUTING, "failing"), "a success clears failing");
    CHECK_INT(pf_errors(t.vm, ROUTING), 10);
    sb_free(&t);
}

/* ---- contract: inputs ---- */

static void
test_readonly(void)
{
    MG_T_CASE("ctx is read-only, views refuse new fields");
    sb_t t = sb_new(POLICY("if ctx.model == 'setctx' then ctx.model = 'other' end\n"
                           "if ctx.model == 'newctx' then ctx.extra = 1 end\n"
                           "if ctx.model == 'mtctx' then setmetatable(ctx, nil) end\n"
                           "if ctx.model == 'addview' then c[1].favourite = true end\n"
                           "if ctx.model == 'mtview' then setmetatable(c[1], nil) end\n"
                           "if ctx.model == 'stats' then c[1].stats.inflight = 99 end\n"
                           "if ctx.model == 'lib' then local d = require 'moongate.deployments'; d.copy = nil end\n"
                           "if ctx.model == 'strlib' then string.format = nil end\n"
                           "return c"), 5, 64);
    CHECK_INT(sb_call(&t, "setctx"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "may not modify ctx");
    CHECK_INT(sb_call(&t, "newctx"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "may not modify ctx");
    CHECK_INT(sb_call(&t, "mtctx"), MG_ERROR);
    CHECK_INT(sb_call(&t, "addview"), MG_ERROR);
    CHECK_CONTAINS(pf_last_error(t.vm, ROUTING), "may not modify their inputs");
    CHECK_INT(sb_call(&t, "mtview"), MG_ERROR);
    CHECK_INT(sb_call(&t, "stats"), MG_ERROR); /* const FFI struct */
    CHECK_INT(mg_stats_get(t.g->deps[0]->stats_slot)->inflight, 0);
    CHECK_INT(sb_call(&t, "lib"), MG_ERROR);
    CHECK_INT(sb_call(&t, "strlib"), MG_ERROR);
    CHECK(sb_call(&t, "ok") == MG_OK && sb_nout == 3);
    /* ctx fields a policy reads */
    sb_free(&t);
    t = sb_new(POLICY("assert(ctx.model == 'm1' and ctx.group == 'sb' and ctx.stream == true)\n"
                      "assert(ctx.attempt == 2 and ctx.tokens == 77 and ctx.kind == 'routing')\n"
                      "local r = ctx.rand(); assert(r >= 0 and r < 1)\n"
                      "assert(ctx.failure == nil)\n"
                      "return c"), 5, 64);
    mg_lua_ctx_t c = {"m1", "sb", true, 2, 77, NULL, 0, NULL, NULL, 0};
    int rc = pf_select(t.vm, ROUTING, &c, t.g->deps, 3, sb_out, &sb_nout);
    CHECK(rc == MG_OK, "ctx fields: %s", pf_last_error(t.vm, ROUTING));
    sb_free(&t);

    MG_T_CASE("the candidates array: an in-place sort must not leak into the next call");
    /* STYLE.md 7: candidates is read-only.  A policy that sorts it in place (a natural thing to
     * write) must either fail or leave the next call's candidates in the configured order. */
    t = sb_new(POLICY("if ctx.model == 'sort' then\n"
                      "  table.sort(c, function(a, b) return a.id > b.id end)\n"
                      "end\nreturn c"), 5, 64);
    rc = sb_call(&t, "sort");
    bool sort_errored = rc == MG_ERROR;
    rc = sb_call(&t, "plain");
    CHECK_INT(rc, MG_OK);
    bool configured = sb_nout == 3 && sb_out[0] == t.g->deps[0] && sb_out[1] == t.g->deps[1] &&
                      sb_out[2] == t.g->deps[2];
    CHECK(sort_errored || configured, "next call saw %s, %s, %s", sb_out[0]->id, sb_out[1]->id,
          sb_out[2]->id);
    sb_free(&t);
}

static int
iso_ffi_read(void *arg)
{
    (void) arg;
    sb_t t = sb_new(POLICY("local x = c[1].stats.id[-(2^40)]\nreturn c"), 5, 64);
    int rc = sb_call(&t, "x");
    return rc == MG_ERROR ? 0 : 1;
}

static int
iso_ffi_leak(void *arg)
{
    (void) arg;
    /* reading another slot's id through an out-of-range index of this slot's id array */
    sb_t t = sb_new(POLICY("local s = c[1].stats\n"
                           "local b = {}\n"
                           "for i = 0, 400 do local ch = s.id[i]; b[#b + 1] = ch end\n"
                           "return c"), 5, 64);
    int rc = sb_call(&t, "x");
    return rc == MG_ERROR ? 0 : 1;
}

static void
test_ffi_views(void)
{
    MG_T_CASE("FFI stats views: the arrays inside the stats are read-only too");
    {
        /* id is at offset 16 and 96 bytes long: id[96] is the first byte of inflight */
        sb_t t = sb_new(POLICY("if ctx.model == 'w-id' then c[1].stats.id[0] = 65 end\n"
                               "if ctx.model == 'w-next' then c[1].stats.id[96] = 42 end\n"
                               "if ctx.model == 'w-lat' then c[1].stats.latency_samples[0] = 0 end\n"
                               "return c"), 5, 64);
        mg_stat_t *st = mg_stats_get(t.g->deps[0]->stats_slot);
        char id_before[MG_STATS_ID_MAX];
        memcpy(id_before, st->id, sizeof(id_before));
        st->latency_samples[0] = 3.5;
        int r1 = sb_call(&t, "w-id");
        int r2 = sb_call(&t, "w-next");
        int r3 = sb_call(&t, "w-lat");
        bool id_same = memcmp(id_before, st->id, sizeof(id_before)) == 0;
        bool inflight_same = st->inflight == 0;
        bool lat_same = st->latency_samples[0] == 3.5;
        CHECK_INT(r1, MG_ERROR);
        CHECK_INT(r2, MG_ERROR);
        CHECK_INT(r3, MG_ERROR);
        CHECK(id_same, "stats id now \"%s\"", st->id);
        CHECK(inflight_same, "inflight now %d", st->inflight);
        CHECK(lat_same, "latency_samples[0] now %g", st->latency_samples[0]);
        memcpy(st->id, id_before, sizeof(id_before));
        st->inflight = 0;
        sb_free(&t);
    }

    MG_T_CASE("FFI stats views: no reads outside the deployment's stats (forked)");
    int64_t ms;
    int res = run_isolated(iso_ffi_read, NULL, 20000, &ms);
    printf("  policy reading stats.id[-2^40]: child %s\n",
           res == 0 ? "got an error (refused)" : res < 0 && res != -1000 ? "crashed" : "read it");
    CHECK(res == 0, "out-of-range FFI read: child result %d (negative = signal)", res);
    res = run_isolated(iso_ffi_leak, NULL, 20000, &ms);
    CHECK(res == 0, "stats.id[0..400]: child result %d", res);
}

/* ---- loading ---- */

static void
test_loading(void)
{
    MG_T_CASE("bytecode refused");
    mg_err_t err;
    int rc = check_src("\033LJ\002\000junk", "bc.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "bytecode");
    /* also through a state */
    sb_t t = sb_new("\033LJ\002\000junk", 5, 64);
    CHECK_INT(sb_call(&t, "x"), MG_ERROR);
    CHECK(!pf_state_bool(t.vm, ROUTING, "loaded"));
    CHECK(pf_state_bool(t.vm, ROUTING, "failing"));
    CHECK_CONTAINS(pf_load_error(t.vm, ROUTING), "bytecode");
    sb_free(&t);

    MG_T_CASE("syntax errors report file:line");
    rc = check_src("local _M = {}\n\nfunction _M.select(ctx, c)\n  return c +\nend\nreturn _M\n",
                   "my_router.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "my_router.lua:5:");
    rc = check_src("local x = = 1\n", "/etc/moongate/policies/broken.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "/etc/moongate/policies/broken.lua:1:");
    rc = check_src("", "empty.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    rc = check_src("return 42\n", "notable.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "select(ctx, candidates, conf)");
    rc = check_src("return { select = 1 }\n", "noselect.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    rc = check_src("return { kind = 'fallback', select = function(ctx, c) return c end }\n",
                   "wrongkind.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "kind");
    /* a runtime error at load time: with its line */
    rc = check_src("local _M = {}\nlocal t = nil\nlocal x = t.field\nreturn _M\n", "rt.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "rt.lua:3:");

    MG_T_CASE("validate(conf)");
    static const char *const vsrc =
        "local _M = { name = 'v', kind = 'routing' }\n"
        "function _M.validate(conf)\n"
        "  if type(conf.max) ~= 'number' then return nil, 'conf.max must be a number' end\n"
        "  return true\n"
        "end\n"
        "function _M.select(ctx, c, conf) assert(conf.max == 3) return c end\n"
        "return _M\n";
    json_t *good = json_pack("{s:i}", "max", 3);
    json_t *bad = json_pack("{s:s}", "max", "three");
    rc = check_src(vsrc, "v.lua", good, true, &err);
    CHECK(rc == MG_OK, "good conf: %s", err.msg);
    rc = check_src(vsrc, "v.lua", bad, true, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "conf.max must be a number");
    rc = check_src(vsrc, "v.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "conf.max must be a number");
    /* validate() that errors, and one that modifies its conf */
    rc = check_src("local _M = {}\nfunction _M.validate(conf)\n  error('validate exploded')\nend\n"
                   "function _M.select(ctx, c) return c end\nreturn _M\n", "ve.lua", NULL, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "ve.lua:3: validate exploded");
    rc = check_src("local _M = {}\nfunction _M.validate(conf) conf.max = 1 return true end\n"
                   "function _M.select(ctx, c) return c end\nreturn _M\n", "vm.lua", good, false, &err);
    CHECK_INT(rc, MG_ERROR);
    CHECK_CONTAINS(err.msg, "may not modify");
    /* through the config: routing_strategy_args / policy_args reach validate() */
    {
        const char *p = mg_t_write_file("v.lua", vsrc);
        char y[2048];
        snprintf(y, sizeof(y), "router_settings: {routing_policy: \"%s\", policy_args: {routing: {max: 3}}}\n%s",
                 p, GROUP_YAML);
        mg_snapshot_t *s = pf_snap(y, NULL);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        CHECK(pf_state_bool(vm, ROUTING, "loaded"), "file policy with good args: %s", pf_load_error(vm, ROUTING));
        json_t *all;
        json_t *pol = pf_pol(vm, ROUTING, &all);
        CHECK_STR(json_string_value(json_object_get(pol, "origin")), "file");
        CHECK_STR(json_string_value(json_object_get(pol, "name")), "v");
        json_decref(all);
        CHECK(!pf_jit(vm));
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
        mg_config_t *cfg = NULL;
        mg_config_opts_t o = {NULL, true};
        snprintf(y, sizeof(y), "router_settings: {routing_policy: \"%s\", policy_args: {routing: {max: x}}}\n%s",
                 p, GROUP_YAML);
        CHECK(mg_config_load_text(y, strlen(y), "<t>", &o, &cfg, &err) == MG_OK, "%s", err.msg);
        rc = mg_lua_check_config(cfg, &err);
        CHECK_INT(rc, MG_ERROR);
        CHECK_CONTAINS(err.msg, "conf.max must be a number");
        mg_config_unref(cfg);
    }
    /* in a state, a policy whose validate() fails is not loaded; its calls use the configured order */
    json_t *st = json_pack("{s:{s:s}}", "routing", "source", vsrc);
    mg_snapshot_t *s = pf_snap(GROUP_YAML, st);
    json_decref(st);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    CHECK(!pf_state_bool(vm, ROUTING, "loaded"));
    CHECK_CONTAINS(pf_load_error(vm, ROUTING), "conf.max must be a number");
    mg_group_t *g = pf_group(s, "sb");
    mg_lua_ctx_t c = pf_ctx("sb");
    int nout;
    CHECK_INT(pf_select(vm, ROUTING, &c, g->deps, 3, sb_out, &nout), MG_ERROR);
    /* the other kinds still work */
    json_t *all = mg_lua_vm_state(vm);
    json_t *fb = json_array_get(json_object_get(all, "policies"), 1);
    CHECK(json_is_true(json_object_get(fb, "loaded")));
    json_decref(all);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
    json_decref(good);
    json_decref(bad);
}

/* ---- JIT ---- */

static void
test_jit(void)
{
    MG_T_CASE("JIT: on for built-in-only states, off with any user policy (budget still enforced)");
    mg_snapshot_t *s = pf_snap(GROUP_YAML, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    CHECK(pf_jit(vm), "built-in-only state: jit");
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
    static const char *const kinds[] = {"routing", "fallback", "wildcard"};
    static const char *const srcs[] = {
        POLICY("if ctx.model == 'spin' then while true do end end return c"),
        "local _M = { kind = 'fallback' }\nfunction _M.select(ctx, c) return c end\nreturn _M\n",
        "local w = require 'moongate.wildcard'\nlocal _M = { kind = 'wildcard' }\n"
        "function _M.select(ctx, c) local o = {} for i = 1, #c do if w.match(c[i], ctx.model) then o[#o + 1] = c[i] end end return o end\nreturn _M\n",
    };
    for (int k = 0; k < 3; k++) {
        json_t *st = pf_store1(kinds[k], srcs[k]);
        s = pf_snap(GROUP_YAML, st);
        json_decref(st);
        vm = pf_vm(s, 5, 64);
        CHECK(!pf_jit(vm), "a user %s policy: jit must be off", kinds[k]);
        json_t *all = mg_lua_vm_state(vm);
        CHECK(json_is_false(json_object_get(all, "jit")), "state json has \"jit\": false");
        json_decref(all);
        if (k == 0) {
            mg_group_t *g = pf_group(s, "sb");
            mg_lua_ctx_t c = {"spin", "sb", false, 1, 10, NULL, 0, NULL, NULL, 0};
            int nout;
            int64_t t0 = pf_now_ns();
            CHECK_INT(pf_select(vm, ROUTING, &c, g->deps, 3, sb_out, &nout), MG_ERROR);
            printf("  user state, while true do end: stopped after %.2f ms\n", (double) (pf_now_ns() - t0) / 1e6);
            CHECK_CONTAINS(pf_last_error(vm, ROUTING), "exceeded its budget");
        }
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }
    /* a file policy from the config counts as a user policy too */
    const char *p = mg_t_write_file("j.lua", POLICY("return c"));
    char y[2048];
    snprintf(y, sizeof(y), "router_settings: {routing_policy: \"%s\"}\n%s", p, GROUP_YAML);
    s = pf_snap(y, NULL);
    vm = pf_vm(s, 5, 64);
    CHECK(!pf_jit(vm), "file policy: jit off");
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
    /* a built-in named as routing_policy (no path) stays a built-in */
    s = pf_snap("router_settings: {routing_policy: least_busy}\n"
                "model_list:\n  - {model_name: j, litellm_params: {model: openai/j, api_base: \"http://127.0.0.1:9/v1\", api_key: k}}\n",
                NULL);
    vm = pf_vm(s, 5, 64);
    CHECK(pf_jit(vm), "routing_policy: least_busy (built-in): jit on");
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pf_init();
    test_capabilities();
    test_globals();
    test_budget();
    test_memory();
    test_results();
    test_readonly();
    test_ffi_views();
    test_loading();
    test_jit();
    return mg_test_done();
}
