/*
 * mg_lua.h -- routing, fallback and wildcard policies in LuaJIT.
 *
 * Owns: one policy state (lua_State) per registry snapshot per worker,
 * holding the snapshot's three policies, read-only deployment views whose
 * stats are const FFI references into the shared statistics table, and the
 * sandbox.  The state lives exactly as long as its snapshot, so a request,
 * which pins its snapshot, never sees two policy versions.
 *
 * Safety: JIT is off in policy states so the instruction-count hook always
 * fires; each call has a deadline (moongate_settings.policy_budget_ms) and the
 * state a memory cap (policy_memory_mb); a policy's pcall cannot swallow
 * either.  Policies get no io, os, debug, ffi, load or bytecode.  Any error,
 * overrun or result that is not a subset of the candidates makes the caller
 * use the configured order; the error is logged and counted.
 * Single-threaded: one worker.
 */
#ifndef MG_LUA_H
#define MG_LUA_H

#include "../base/mg_err.h"
#include "../registry/mg_registry.h"

#include <jansson.h>
#include <stdbool.h>

#define MG_FFI_ABI 3

typedef enum {
    MG_POLICY_ROUTING = 0,
    MG_POLICY_FALLBACK,
    MG_POLICY_WILDCARD,
    MG_POLICY_FILTER,           /* before routing, only when configured (tag filtering) */
    MG_POLICY__COUNT
} mg_policy_kind_t;

typedef struct mg_lua_vm_s mg_lua_vm_t;

/* One resolved policy: where its source came from and its configuration. */
typedef struct {
    mg_policy_kind_t kind;
    char name[128];
    char origin[16];            /* "builtin", "file", "store" */
    char chunkname[512];        /* shown in errors: file path or builtin:name */
    const char *source;         /* borrowed: embedded table, config or store JSON */
    json_t *conf;               /* borrowed */
    char hash[65];              /* sha256 of the source */
} mg_lua_spec_t;

/* Per-call request data a policy sees in ctx. */
typedef struct {
    const char *model;          /* as the client asked */
    const char *group;          /* model group being routed */
    bool stream;
    int attempt;                /* 1 for the first try */
    int64_t tokens;             /* estimated prompt tokens */
    /* fallback only */
    const char *failure_class;
    int failure_status;
    const mg_deployment_t *failure_deployment;
    const char *const *tags;    /* the request's tags (borrowed), ntags of them */
    int ntags;
} mg_lua_ctx_t;

typedef struct {
    int budget_ms;
    int memory_mb;
} mg_lua_limits_t;

const char *mg_policy_kind_name(mg_policy_kind_t k);

/* Source of a built-in policy or library module ("routing/least_busy"), or NULL. */
const char *mg_lua_builtin(mg_policy_kind_t kind, const char *name);

/* Resolves the snapshot's three policies (store overrides config, config overrides built-in). */
int mg_lua_specs(const mg_snapshot_t *s, mg_lua_spec_t specs[MG_POLICY__COUNT], mg_err_t *err);

/*
 * Builds the policy state for a snapshot.  A policy that fails to load is
 * recorded (the calls of that kind then use the configured order); only a
 * failure of the state itself returns NULL.
 */
mg_lua_vm_t *mg_lua_vm_create(mg_snapshot_t *snap, const mg_lua_limits_t *lim, mg_err_t *err);
void mg_lua_vm_destroy(mg_lua_vm_t *vm);

/*
 * Calls the policy of kind on cands[0..n).  MG_OK: out[0..*nout) is the
 * policy's order (a validated subset).  MG_DECLINED: the policy found nothing
 * acceptable; reason says why.  MG_ERROR: the policy failed (logged, counted):
 * use the configured order.
 */
int mg_lua_vm_select(mg_lua_vm_t *vm, mg_policy_kind_t kind, const mg_lua_ctx_t *ctx,
                     mg_deployment_t *const *cands, int n, mg_deployment_t **out, int *nout,
                     char *reason, size_t reason_len);

/* Whether the state has a usable policy of kind (the filter kind is optional). */
bool mg_lua_vm_has(const mg_lua_vm_t *vm, mg_policy_kind_t kind);
/* Whether the snapshot's config asks for a policy of kind (the filter kind is optional). */
bool mg_lua_configured(const mg_snapshot_t *s, mg_policy_kind_t kind);

/* Policy names, hashes, origins and error counts, for /moongate/state. */
json_t *mg_lua_vm_state(const mg_lua_vm_t *vm);
/* A short version of the policy set, for x-moongate-policy-version. */
const char *mg_lua_vm_version(const mg_lua_vm_t *vm);
/* Bytes the state uses. */
size_t mg_lua_vm_memory(const mg_lua_vm_t *vm);

/*
 * Compiles and validates one policy source in a scratch state (config loading,
 * POST /policy/update, `moongate policy check`): the Lua error with its line
 * on failure.  With exercise, also calls select() once on sample candidates
 * and checks the contract.
 */
int mg_lua_check(mg_policy_kind_t kind, const char *source, const char *chunkname, json_t *conf,
                 bool exercise, mg_err_t *err);
/* Checks every policy a config names (master: before accepting a config). */
int mg_lua_check_config(const mg_config_t *cfg, mg_err_t *err);

/* `moongate policy check FILE [--kind K] [--conf JSON]`. */
int mg_lua_cli(int argc, char **argv);

#endif
