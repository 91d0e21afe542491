/*
 * core/lua/mg_lua_pattern.c against LuaJIT's own string library.
 *
 * Two states: one with LuaJIT's find/match/gmatch/gsub, one with the budgeted
 * replacements.  The same calls (a table of edge cases, then generated patterns and
 * subjects) must give the same results or the same error message in both.  Then the
 * budget: a backtracking bomb is stopped, and the counter is shared by all calls.
 */
#include "mg_test.h"

#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/mg_lua_pattern.h"

/* Runs fn(args) under pcall and describes the outcome as one string. */
static const char *const harness =
    "local fn, a = ...\n"
    "local f\n"
    "if fn == 'gmatch' then\n"
    "  f = function(s, p) local out = {} local n = 0\n"
    "    for x, y in string.gmatch(s, p) do n = n + 1 if n > 50 then break end\n"
    "      out[#out + 1] = tostring(x) .. '/' .. tostring(y) end\n"
    "    return table.concat(out, ',') end\n"
    "elseif fn == 'gsub_fn' then\n"
    "  f = function(s, p) return string.gsub(s, p, function(x, y) if x == 'b' then return nil end\n"
    "    return '<' .. tostring(x) .. tostring(y) .. '>' end) end\n"
    "elseif fn == 'gsub_tab' then\n"
    "  f = function(s, p) return string.gsub(s, p, {a = 'A', [' '] = false, ['1'] = 7}) end\n"
    "elseif fn == 'method' then\n"
    "  f = function(s, p) return s:find(p) end\n"
    "else f = string[fn] end\n"
    "local r = {pcall(f, unpack(a, 1, a.n))}\n"
    "for i = 1, #r do r[i] = type(r[i]) .. ':' .. tostring(r[i]) end\n"
    "local s = table.concat(r, '|')\n"
    /* the function name in argument errors differs ('?' or the C name) */
    "return (s:gsub(\"to '[^']*'\", 'to F'))\n";

typedef struct {
    lua_State *L;
    int ref;
} pt_state_t;

static mg_lua_steps_t pt_steps;

static pt_state_t
pt_state(bool ours)
{
    pt_state_t st;
    st.L = luaL_newstate();
    luaL_openlibs(st.L);
    if (luaL_loadbuffer(st.L, harness, strlen(harness), "=harness") != 0) {
        fprintf(stderr, "harness: %s\n", lua_tostring(st.L, -1));
        exit(2);
    }
    st.ref = luaL_ref(st.L, LUA_REGISTRYINDEX);
    if (ours) {
        mg_lua_pattern_open(st.L, &pt_steps);
    }
    return st;
}

/* args: strings; a NULL-named "%n" is pushed as a number (for init and max) */
static char *
pt_run(pt_state_t *st, const char *fn, int nargs, const char *const *args, const size_t *lens)
{
    lua_State *L = st->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref);
    lua_pushstring(L, fn);
    lua_createtable(L, nargs, 1);
    for (int i = 0; i < nargs; i++) {
        if (args[i] == NULL) {
            lua_pushnil(L);
        } else if (args[i][0] == '#') {
            lua_pushnumber(L, strtod(args[i] + 1, NULL));
        } else if (strcmp(args[i], "!true") == 0) {
            lua_pushboolean(L, 1);
        } else {
            lua_pushlstring(L, args[i], lens != NULL ? lens[i] : strlen(args[i]));
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushinteger(L, nargs);
    lua_setfield(L, -2, "n");
    if (lua_pcall(L, 2, 1, 0) != 0) {
        char *r = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        return r;
    }
    char *r = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return r;
}

static pt_state_t pt_ref, pt_ours;
static int pt_diffs;

static void
pt_same(const char *fn, int nargs, const char *const *args)
{
    pt_steps.left = INT64_MAX / 2;
    char *a = pt_run(&pt_ref, fn, nargs, args, NULL);
    char *b = pt_run(&pt_ours, fn, nargs, args, NULL);
    if (strcmp(a, b) != 0 && pt_diffs++ < 30) {
        MG_T_FAIL_AT("%s(\"%s\", \"%s\"%s%s): luajit %s, moongate %s", fn, args[0] ? args[0] : "nil",
                     nargs > 1 && args[1] ? args[1] : "nil", nargs > 2 ? ", ..." : "", "", a, b);
    } else if (strcmp(a, b) == 0) {
        mg_t_passed++;
    } else {
        mg_t_failed++;
    }
    free(a);
    free(b);
}

#define SAME(fn, ...)                                                                              \
    do {                                                                                           \
        const char *const a_[] = {__VA_ARGS__};                                                    \
        pt_same(fn, (int) (sizeof(a_) / sizeof(a_[0])), a_);                                      \
    } while (0)

static void
test_table(void)
{
    MG_T_CASE("edge cases agree with LuaJIT");
    SAME("find", "abc", "", "#10");
    SAME("find", "abc", "", "#4");
    SAME("find", "abc", "", "#5");
    SAME("find", "abc", "b", "#-1");
    SAME("find", "abc", "b", "#-10");
    SAME("find", "abc", "b", "#2.7");
    SAME("find", "", "");
    SAME("find", "abg", "%g");
    SAME("find", "a", "%");
    SAME("find", "a", "[a");
    SAME("find", "a", "[]");
    SAME("find", "a]", "[]]");
    SAME("find", "a", "(a");
    SAME("find", "a", "a)");
    SAME("find", "a", "a%)");
    SAME("find", "a", "%1");
    SAME("find", "a", "%b");
    SAME("find", "a", "%fa");
    SAME("find", "a+b", "+", "#1", "!true");
    SAME("find", "a.b", ".", "#1", "!true");
    SAME("find", "a$", "$");
    SAME("find", "a$b", "a$b");
    SAME("find", "THE (quick) fox", "%((%a+)%)");
    SAME("find", "THE (quick) fox", "%f[%a]%a+", "#5");
    SAME("find", "x", "^");
    SAME("find", "abc", "^b");
    SAME("find", "abc", "c$");
    SAME("find", "abc", "^abc$");
    SAME("find", "hello", "l+");
    SAME("find", "hello", "()ll()");
    SAME("match", "key = value", "(%w+)%s*=%s*(%w+)");
    SAME("match", "[[x]]", "%[(%b[])%]");
    SAME("match", "  x  ", "^%s*(.-)%s*$");
    SAME("match", "abc", "()b()");
    SAME("match", "abc", "(b");
    SAME("match", "aXb", "[%u]");
    SAME("match", "a-b", "[a%-]+");
    SAME("match", "a^b", "[a^]+");
    SAME("match", "a-z", "[z-]+");
    SAME("match", "a-z", "[^-a]+");
    SAME("match", "az", "[a-]");
    SAME("match", "abcabc", "(abc)%1");
    SAME("match", "abab", "()a%1");
    SAME("match", "x = 10, y = 20", "(%a)%s*=%s*(%d+)", "#5");
    SAME("match", "%x", "%%x");
    SAME("match", "\t\n", "%c+");
    SAME("match", "2a-F", "%x+");
    SAME("match", "Hello!", "%p");
    SAME("match", "a.b", "%.");
    SAME("match", "abc", "%W*");
    SAME("match", "abc", "[%A]");
    SAME("match", "THE END", "%f[%w]%w+$");
    SAME("match", "(((a)))", "%b()");
    SAME("match", "((a)", "%b()");
    SAME("match", "abc", "a-c");
    SAME("match", "aaab", "a-b");
    SAME("match", "", ".-");
    SAME("match", "abc", ".?.?.?.?c");
    SAME("match", NULL, "x");
    SAME("match", "x");
    SAME("gmatch", "abc", "%a*");
    SAME("gmatch", "^abc", "^a");
    SAME("gmatch", "one two  three", "%a+");
    SAME("gmatch", "k=v, a=b", "(%w+)=(%w+)");
    SAME("gmatch", "abc", "");
    SAME("gmatch", "abc", "()");
    SAME("gsub", "abc", "b", "%");
    SAME("gsub", "abc", "b", "%x");
    SAME("gsub", "abc", "b", "%2");
    SAME("gsub", "abc", "(b)", "%2");
    SAME("gsub", "abc", "(b)", "%1%0%%");
    SAME("gsub", "abc", "", "-");
    SAME("gsub", "abc", "x*", "-");
    SAME("gsub", "abc", "(", "x");
    SAME("gsub", "abc", "%w", "#1");
    SAME("gsub", "abc", "%w", NULL);
    SAME("gsub", "abc def", "%w+", "%0 %0", "#-1");
    SAME("gsub", "abc def", "%w+", "%0 %0", "#1.5");
    SAME("gsub", "hello world", "(o)", "[%1%0]", "#1");
    SAME("gsub", "hello world", "^h", "H");
    SAME("gsub", "hello world", "^o", "H");
    SAME("gsub", "hello", "l*", "x");
    SAME("gsub_fn", "abc", "%w");
    SAME("gsub_fn", "abc", "(%w)()");
    SAME("gsub_tab", "a b 1 c", "%w");
    SAME("gsub_tab", "a b 1 c", "%s");
    SAME("method", "hello", "l+");
    {
        const char *const args[] = {"a\0b", "%z"};
        size_t lens[] = {3, 2};
        pt_steps.left = INT64_MAX / 2;
        char *a = pt_run(&pt_ref, "find", 2, args, lens);
        char *b = pt_run(&pt_ours, "find", 2, args, lens);
        CHECK(strcmp(a, b) == 0, "%%z: luajit %s, moongate %s", a, b);
        free(a);
        free(b);
    }
}

/* a deterministic generator, so a failure is reproducible */
static uint64_t pt_rng = 0x9E3779B97F4A7C15ULL;

static unsigned
pt_rand(unsigned n)
{
    pt_rng ^= pt_rng << 13;
    pt_rng ^= pt_rng >> 7;
    pt_rng ^= pt_rng << 17;
    return (unsigned) (pt_rng % n);
}

static void
test_generated(void)
{
    MG_T_CASE("generated patterns agree with LuaJIT");
    static const char *const items[] = {"a", "b", ".", "%a", "%d", "%s", "[ab]", "[^a]", "[a-c]", "(",
                                        ")", "()", "%1", "%2", "%bab", "%f[a]", "%f[%s]", "1", " ",
                                        "%", "[", "%w", "x"};
    static const char *const quant[] = {"", "", "", "*", "+", "-", "?"};
    static const char *const fns[] = {"find", "match", "gmatch", "gsub", "gsub_fn", "gsub_tab"};
    static const char subj_chars[] = "ab1 (x";
    int before = mg_t_failed;
    for (int n = 0; n < 20000; n++) {
        char pat[128] = "", subj[32] = "";
        if (pt_rand(5) == 0) {
            strcat(pat, "^");
        }
        int k = 1 + (int) pt_rand(5);
        for (int i = 0; i < k; i++) {
            strcat(pat, items[pt_rand(sizeof(items) / sizeof(items[0]))]);
            strcat(pat, quant[pt_rand(sizeof(quant) / sizeof(quant[0]))]);
        }
        if (pt_rand(6) == 0) {
            strcat(pat, "$");
        }
        int ls = (int) pt_rand(12);
        for (int i = 0; i < ls; i++) {
            subj[i] = subj_chars[pt_rand(sizeof(subj_chars) - 1)];
        }
        subj[ls] = '\0';
        const char *fn = fns[pt_rand(sizeof(fns) / sizeof(fns[0]))];
        if (strcmp(fn, "gsub") == 0) {
            static const char *const repl[] = {"<%0>", "%1-", "x%%"};
            SAME(fn, subj, pat, repl[pt_rand(3)]);
        } else {
            SAME(fn, subj, pat);
        }
    }
    printf("  20000 generated calls, %d differences\n", mg_t_failed - before);
}

static void
test_budget(void)
{
    MG_T_CASE("budget: a backtracking bomb is stopped");
    lua_State *L = pt_ours.L;
    pt_steps.budget = 1000000;
    pt_steps.left = pt_steps.budget;
    pt_steps.exceeded = false;
    const char *bomb = "local s = string.rep('a', 32)\n"
                       "return string.find(s, string.rep('a?', 32) .. string.rep('a', 32) .. 'b')";
    CHECK(luaL_loadstring(L, bomb) == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = lua_pcall(L, 0, 1, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(rc != 0, "the bomb returned");
    CHECK_CONTAINS(lua_tostring(L, -1), "exceeded its budget");
    CHECK(pt_steps.exceeded);
    printf("  2^32-step pattern stopped after %.2f ms (1M steps)\n",
           (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6);
    lua_pop(L, 1);

    MG_T_CASE("budget: shared by every call until re-armed");
    pt_steps.left = 5000;
    pt_steps.exceeded = false;
    CHECK(luaL_loadstring(L, "local n = 0\n"
                             "for i = 1, 10000 do if ('aaaaaaaaaa'):find('a-b') == nil then n = n + 1 end end\n"
                             "return n") == 0);
    rc = lua_pcall(L, 0, 1, 0);
    CHECK(rc != 0, "10000 failing finds fit in 5000 steps?");
    CHECK(pt_steps.exceeded);
    lua_pop(L, 1);
    /* re-armed, the same call is fine */
    pt_steps.left = INT64_MAX / 2;
    pt_steps.exceeded = false;
    CHECK(luaL_loadstring(L, "return ('x = 1'):match('(%w+)%s*=%s*(%d+)')") == 0);
    rc = lua_pcall(L, 0, 2, 0);
    CHECK(rc == 0 && strcmp(lua_tostring(L, -2), "x") == 0 && strcmp(lua_tostring(L, -1), "1") == 0);
    lua_pop(L, 2);
    CHECK(!pt_steps.exceeded);

    MG_T_CASE("deep recursion is refused, not a C stack overflow");
    char pat[1024] = "", subj[512] = "";
    for (int i = 0; i < 300; i++) {
        strcat(pat, "a?"); /* each matching a? nests one call */
        strcat(subj, "a");
    }
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "find");
    lua_pushstring(L, subj);
    lua_pushstring(L, pat);
    rc = lua_pcall(L, 2, 1, 0);
    CHECK(rc != 0);
    CHECK_CONTAINS(lua_tostring(L, -1), "pattern too complex");
    lua_pop(L, 2);
}

int
main(void)
{
    pt_ref = pt_state(false);
    pt_ours = pt_state(true);
    test_table();
    test_generated();
    test_budget();
    lua_close(pt_ref.L);
    lua_close(pt_ours.L);
    return mg_test_done();
}
