/*
 * Lua pattern matching with a step budget, for policy states.
 *
 * LuaJIT's string.find/match/gmatch/gsub backtrack inside one C call, where the
 * instruction-count hook never fires: "a?a?...a?aaa...b" against "aaa..." takes
 * 2^n steps and would block the worker.  These replacements implement the same
 * pattern language (Lua 5.1 as LuaJIT has it, plus %g) and count every matching
 * step against the policy call's budget; past it they raise the budget error.
 */
#ifndef MG_LUA_PATTERN_H
#define MG_LUA_PATTERN_H

#include <stdbool.h>
#include <stdint.h>

#include <lua.h>

typedef struct {
    int64_t left;   /* steps left in this policy call */
    int64_t budget; /* steps per call at scale 1 (for the message) */
    bool exceeded;  /* set when a call ran out: the bridge's pcall rethrows */
} mg_lua_steps_t;

/* Replaces find, match, gmatch and gsub in the global string table (and so in
 * string methods).  steps must outlive the state. */
void mg_lua_pattern_open(lua_State *L, mg_lua_steps_t *steps);

#endif
