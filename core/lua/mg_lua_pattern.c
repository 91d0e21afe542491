/*
 * Budgeted Lua patterns: see mg_lua_pattern.h.
 *
 * Semantics follow LuaJIT 2.1's string library (checked against the luajit binary):
 * a start position past the end is clamped to the end, "%" before a non-digit in a
 * gsub replacement stands for that character, "^" is literal in gmatch, %z and %g
 * are classes, and a find whose pattern has no special character is a plain search.
 */
#include "mg_lua_pattern.h"

#include <ctype.h>
#include <string.h>

#include <lauxlib.h>

#define MG_PAT_MAXCAP 32
#define MG_PAT_MAXDEPTH 200
#define MG_PAT_UNFINISHED (-1)
#define MG_PAT_POSITION (-2)
#define MG_PAT_SPECIALS "^$*+?.([%-"

typedef struct {
    const char *src;
    const char *src_end;
    const char *p_end;
    lua_State *L;
    mg_lua_steps_t *steps;
    int depth;
    int level;
    struct {
        const char *init;
        ptrdiff_t len;
    } cap[MG_PAT_MAXCAP];
} mg_pat_t;

static const char *mg_pat_match(mg_pat_t *ms, const char *s, const char *p);

static void
mg_pat_step(mg_pat_t *ms)
{
    if (--ms->steps->left < 0) {
        ms->steps->exceeded = true;
        luaL_error(ms->L, "policy exceeded its budget (%lld pattern-matching steps)",
                   (long long) ms->steps->budget);
    }
}

static const char *
mg_pat_class_end(mg_pat_t *ms, const char *p)
{
    char c = *p++;
    if (c == '%') {
        if (p >= ms->p_end) {
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        }
        return p + 1;
    }
    if (c == '[') {
        if (p < ms->p_end && *p == '^') {
            p++;
        }
        do { /* the first character of a set is part of it, even ']' */
            if (p >= ms->p_end) {
                luaL_error(ms->L, "malformed pattern (missing ']')");
            }
            c = *p++;
            if (c == '%' && p < ms->p_end) {
                p++;
            }
        } while (p >= ms->p_end || *p != ']');
        return p + 1;
    }
    return p;
}

static bool
mg_pat_class(int c, int cl)
{
    bool res;
    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    case 'z': res = c == 0; break;
    default: return cl == c;
    }
    return isupper(cl) ? !res : res;
}

/* p at '[', ec at the closing ']' */
static bool
mg_pat_set(int c, const char *p, const char *ec)
{
    bool sig = true;
    if (p[1] == '^') {
        sig = false;
        p++;
    }
    while (++p < ec) {
        if (*p == '%') {
            p++;
            if (mg_pat_class(c, (unsigned char) *p)) {
                return sig;
            }
        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char) p[-2] <= c && c <= (unsigned char) *p) {
                return sig;
            }
        } else if ((unsigned char) *p == c) {
            return sig;
        }
    }
    return !sig;
}

static bool
mg_pat_single(mg_pat_t *ms, const char *s, const char *p, const char *ep)
{
    if (s >= ms->src_end) {
        return false;
    }
    int c = (unsigned char) *s;
    switch (*p) {
    case '.': return true;
    case '%': return mg_pat_class(c, (unsigned char) p[1]);
    case '[': return mg_pat_set(c, p, ep - 1);
    default: return (unsigned char) *p == c;
    }
}

static const char *
mg_pat_balance(mg_pat_t *ms, const char *s, const char *p)
{
    if (p + 1 >= ms->p_end) {
        luaL_error(ms->L, "unbalanced pattern");
    }
    if (s >= ms->src_end || *s != *p) {
        return NULL;
    }
    char b = p[0], e = p[1];
    int cont = 1;
    while (++s < ms->src_end) {
        mg_pat_step(ms);
        if (*s == e) {
            if (--cont == 0) {
                return s + 1;
            }
        } else if (*s == b) {
            cont++;
        }
    }
    return NULL;
}

static const char *
mg_pat_max_expand(mg_pat_t *ms, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (mg_pat_single(ms, s + i, p, ep)) {
        mg_pat_step(ms);
        i++;
    }
    while (i >= 0) { /* try the rest with the longest run first */
        const char *res = mg_pat_match(ms, s + i, ep + 1);
        if (res != NULL) {
            return res;
        }
        i--;
    }
    return NULL;
}

static const char *
mg_pat_min_expand(mg_pat_t *ms, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *res = mg_pat_match(ms, s, ep + 1);
        if (res != NULL) {
            return res;
        }
        if (!mg_pat_single(ms, s, p, ep)) {
            return NULL;
        }
        s++;
    }
}

static const char *
mg_pat_start_capture(mg_pat_t *ms, const char *s, const char *p, ptrdiff_t what)
{
    if (ms->level >= MG_PAT_MAXCAP) {
        luaL_error(ms->L, "too many captures");
    }
    ms->cap[ms->level].init = s;
    ms->cap[ms->level].len = what;
    ms->level++;
    const char *res = mg_pat_match(ms, s, p);
    if (res == NULL) {
        ms->level--;
    }
    return res;
}

static const char *
mg_pat_end_capture(mg_pat_t *ms, const char *s, const char *p)
{
    int l = ms->level - 1;
    while (l >= 0 && ms->cap[l].len != MG_PAT_UNFINISHED) {
        l--;
    }
    if (l < 0) {
        luaL_error(ms->L, "invalid pattern capture");
    }
    ms->cap[l].len = s - ms->cap[l].init;
    const char *res = mg_pat_match(ms, s, p);
    if (res == NULL) {
        ms->cap[l].len = MG_PAT_UNFINISHED;
    }
    return res;
}

static const char *
mg_pat_back_reference(mg_pat_t *ms, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= ms->level || ms->cap[l].len == MG_PAT_UNFINISHED) {
        luaL_error(ms->L, "invalid capture index");
    }
    if (ms->cap[l].len < 0) {
        return NULL; /* a position capture never matches as text, as in LuaJIT */
    }
    size_t len = (size_t) ms->cap[l].len;
    if ((size_t) (ms->src_end - s) >= len && memcmp(ms->cap[l].init, s, len) == 0) {
        return s + len;
    }
    return NULL;
}

static const char *
mg_pat_match(mg_pat_t *ms, const char *s, const char *p)
{
    if (++ms->depth > MG_PAT_MAXDEPTH) {
        luaL_error(ms->L, "pattern too complex");
    }
    const char *res = NULL;
    for (;;) {
        mg_pat_step(ms);
        if (p >= ms->p_end) {
            res = s;
            break;
        }
        if (*p == '(') {
            if (p + 1 < ms->p_end && p[1] == ')') {
                res = mg_pat_start_capture(ms, s, p + 2, MG_PAT_POSITION);
            } else {
                res = mg_pat_start_capture(ms, s, p + 1, MG_PAT_UNFINISHED);
            }
            break;
        }
        if (*p == ')') {
            res = mg_pat_end_capture(ms, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == ms->p_end) {
            res = s == ms->src_end ? s : NULL;
            break;
        }
        if (*p == '%' && p + 1 < ms->p_end) {
            if (p[1] == 'b') {
                s = mg_pat_balance(ms, s, p + 2);
                if (s == NULL) {
                    break;
                }
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (p >= ms->p_end || *p != '[') {
                    luaL_error(ms->L, "missing '[' after '%%f' in pattern");
                }
                const char *ep = mg_pat_class_end(ms, p);
                int prev = s == ms->src ? 0 : (unsigned char) s[-1];
                int cur = s < ms->src_end ? (unsigned char) *s : 0;
                if (!mg_pat_set(prev, p, ep - 1) && mg_pat_set(cur, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                break;
            }
            if (isdigit((unsigned char) p[1])) {
                s = mg_pat_back_reference(ms, s, (unsigned char) p[1]);
                if (s == NULL) {
                    break;
                }
                p += 2;
                continue;
            }
        }
        /* a single-character class, maybe with a quantifier */
        const char *ep = mg_pat_class_end(ms, p);
        bool m = mg_pat_single(ms, s, p, ep);
        char q = ep < ms->p_end ? *ep : '\0';
        if (q == '?') {
            if (m && (res = mg_pat_match(ms, s + 1, ep + 1)) != NULL) {
                break;
            }
            p = ep + 1;
            continue;
        }
        if (q == '*') {
            res = mg_pat_max_expand(ms, s, p, ep);
            break;
        }
        if (q == '+') {
            res = m ? mg_pat_max_expand(ms, s + 1, p, ep) : NULL;
            break;
        }
        if (q == '-') {
            res = mg_pat_min_expand(ms, s, p, ep);
            break;
        }
        if (!m) {
            break;
        }
        s++;
        p = ep;
    }
    ms->depth--;
    return res;
}

static void
mg_pat_push_one(mg_pat_t *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i != 0) {
            luaL_error(ms->L, "invalid capture index");
        }
        lua_pushlstring(ms->L, s, (size_t) (e - s));
        return;
    }
    ptrdiff_t l = ms->cap[i].len;
    if (l == MG_PAT_UNFINISHED) {
        luaL_error(ms->L, "unfinished capture");
    }
    if (l == MG_PAT_POSITION) {
        lua_pushinteger(ms->L, (lua_Integer) (ms->cap[i].init - ms->src + 1));
    } else {
        lua_pushlstring(ms->L, ms->cap[i].init, (size_t) l);
    }
}

/* s == NULL: only the captures (find's extra results) */
static int
mg_pat_push_captures(mg_pat_t *ms, const char *s, const char *e)
{
    int n = ms->level == 0 && s != NULL ? 1 : ms->level;
    luaL_checkstack(ms->L, n, "too many captures");
    for (int i = 0; i < n; i++) {
        mg_pat_push_one(ms, i, s, e);
    }
    return n;
}

static void
mg_pat_init(mg_pat_t *ms, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    ms->L = L;
    ms->steps = lua_touserdata(L, lua_upvalueindex(1));
    ms->src = s;
    ms->src_end = s + ls;
    ms->p_end = p + lp;
    ms->level = 0;
    ms->depth = 0;
}

/* 1-based, negative from the end; clamped to [0, len] as a 0-based offset */
static size_t
mg_pat_start(lua_State *L, int arg, size_t len)
{
    lua_Integer pos = luaL_optinteger(L, arg, 1);
    if (pos < 0) {
        pos += (lua_Integer) len + 1;
    }
    pos -= 1;
    if (pos < 0) {
        pos = 0;
    }
    return (size_t) pos > len ? len : (size_t) pos;
}

static const char *
mg_pat_memfind(const char *s, size_t ls, const char *p, size_t lp)
{
    if (lp == 0) {
        return s;
    }
    if (lp > ls) {
        return NULL;
    }
    return memmem(s, ls, p, lp);
}

static bool
mg_pat_has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++) {
        if (p[i] != '\0' && strchr(MG_PAT_SPECIALS, p[i]) != NULL) {
            return true;
        }
    }
    return false;
}

static int
mg_pat_find_aux(lua_State *L, bool find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = mg_pat_start(L, 3, ls);
    bool plain = find && (lua_toboolean(L, 4) || !mg_pat_has_specials(p, lp));
    if (plain) {
        const char *hit = mg_pat_memfind(s + init, ls - init, p, lp);
        if (hit == NULL) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer) (hit - s + 1));
        lua_pushinteger(L, (lua_Integer) (hit - s + (ptrdiff_t) lp));
        return 2;
    }
    mg_pat_t ms;
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++, lp--;
    }
    mg_pat_init(&ms, L, s, ls, p, lp);
    const char *s1 = s + init;
    do {
        ms.level = 0;
        ms.depth = 0;
        const char *e = mg_pat_match(&ms, s1, p);
        if (e != NULL) {
            if (find) {
                lua_pushinteger(L, (lua_Integer) (s1 - s + 1));
                lua_pushinteger(L, (lua_Integer) (e - s));
                return mg_pat_push_captures(&ms, NULL, NULL) + 2;
            }
            return mg_pat_push_captures(&ms, s1, e);
        }
    } while (s1++ < ms.src_end && !anchor);
    lua_pushnil(L);
    return 1;
}

static int
mg_pat_find(lua_State *L)
{
    return mg_pat_find_aux(L, true);
}

static int
mg_pat_match_fn(lua_State *L)
{
    return mg_pat_find_aux(L, false);
}

/* upvalues: steps, subject, pattern, next offset */
static int
mg_pat_gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    mg_pat_t ms;
    mg_pat_init(&ms, L, s, ls, p, lp);
    for (const char *src = s + (size_t) lua_tointeger(L, lua_upvalueindex(4)); src <= ms.src_end; src++) {
        ms.level = 0;
        ms.depth = 0;
        const char *e = mg_pat_match(&ms, src, p);
        if (e != NULL) {
            lua_Integer next = (lua_Integer) (e - s);
            if (e == src) {
                next++; /* an empty match: move on */
            }
            lua_pushinteger(L, next);
            lua_replace(L, lua_upvalueindex(4));
            return mg_pat_push_captures(&ms, src, e);
        }
    }
    return 0;
}

static int
mg_pat_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, mg_pat_gmatch_next, 4);
    return 1;
}

static void
mg_pat_add_string(mg_pat_t *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *news = lua_tolstring(ms->L, 3, &l);
    for (size_t i = 0; i < l; i++) {
        if (news[i] != '%') {
            luaL_addchar(b, news[i]);
            continue;
        }
        i++; /* past the end this is the string's terminating NUL, as in LuaJIT */
        unsigned char c = (unsigned char) news[i];
        if (!isdigit(c)) {
            luaL_addchar(b, (char) c);
        } else if (c == '0') {
            luaL_addlstring(b, s, (size_t) (e - s));
        } else {
            mg_pat_push_one(ms, c - '1', s, e);
            luaL_addvalue(b);
        }
    }
}

static void
mg_pat_add_value(mg_pat_t *ms, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = ms->L;
    switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
        mg_pat_add_string(ms, b, s, e);
        return;
    case LUA_TFUNCTION: {
        lua_pushvalue(L, 3);
        int n = mg_pat_push_captures(ms, s, e);
        lua_call(L, n, 1);
        break;
    }
    default: /* a table */
        mg_pat_push_one(ms, 0, s, e);
        lua_gettable(L, 3);
        break;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t) (e - s)); /* keep the original text */
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int
mg_pat_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer) ls + 1);
    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                  "string/function/table expected");
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++, lp--;
    }
    mg_pat_t ms;
    mg_pat_init(&ms, L, src, ls, p, lp);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer n = 0;
    while (n < max_s) {
        ms.level = 0;
        ms.depth = 0;
        const char *e = mg_pat_match(&ms, src, p);
        if (e != NULL) {
            n++;
            mg_pat_add_value(&ms, &b, src, e);
        }
        if (e != NULL && e > src) {
            src = e;
        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor) {
            break;
        }
    }
    luaL_addlstring(&b, src, (size_t) (ms.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

void
mg_lua_pattern_open(lua_State *L, mg_lua_steps_t *steps)
{
    static const struct {
        const char *name;
        lua_CFunction fn;
    } fns[] = {
        {"find", mg_pat_find},
        {"match", mg_pat_match_fn},
        {"gmatch", mg_pat_gmatch},
        {"gsub", mg_pat_gsub},
    };
    lua_getglobal(L, "string");
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        lua_pushlightuserdata(L, steps);
        lua_pushcclosure(L, fns[i].fn, 1);
        lua_setfield(L, -2, fns[i].name);
    }
    lua_pop(L, 1);
}
