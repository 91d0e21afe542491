/*
 * mg_store.h -- the registry store: the truth that snapshots are built from.
 *
 * Two implementations: the embedded journal (mg_store_journal.c, the default,
 * no server needed) and PostgreSQL (mg_store_pg.c).  One store object per
 * worker process, driven by the worker's event loop; a slow store never
 * blocks request handling (PostgreSQL is used asynchronously).
 *
 * The store holds models added through the API (not config.yaml models),
 * policies stored for the fleet, and one monotonically increasing version
 * that every mutation bumps in the same transaction as the change.
 *
 * Callbacks may run synchronously (journal) or later (PostgreSQL); callers
 * must not assume either.  JSON arguments are borrowed; JSON passed to
 * callbacks is borrowed for the duration of the callback (incref to keep).
 */
#ifndef MG_STORE_H
#define MG_STORE_H

#include "../base/mg_err.h"
#include "../base/mg_types.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct mg_store_s mg_store_t;

/*
 * Full state at one version.
 * models: array of rows {model_id, model_name, litellm_params, model_info,
 *         created_at, updated_at, created_by, updated_by}, litellm_params
 *         decrypted, in creation order.
 * policies: object name -> {name, kind, source, hash, updated_at}.
 * idents: object table -> (object id -> row) for the identity tables (virtual keys, teams,
 *         users, end users, budgets, organizations; see MG_STORE_IDENT_TABLES), rows in
 *         LiteLLM's column names (LiteLLM_VerificationToken, LiteLLM_TeamTable, ...) as JSON,
 *         timestamps as ISO-8601 strings; every table is present (maybe empty).
 */
typedef void (*mg_store_load_cb)(void *ud, int rc, int64_t version, json_t *models,
                                 json_t *policies, json_t *idents, const mg_err_t *err);
typedef void (*mg_store_version_cb)(void *ud, int rc, int64_t version, const mg_err_t *err);
/* row: the resulting row for model_new/model_update/policy_update, NULL otherwise. */
typedef void (*mg_store_mutate_cb)(void *ud, int rc, int64_t version, json_t *row,
                                   const mg_err_t *err);
/* A hint that the store moved to version (may be stale or duplicated: never the truth). */
typedef void (*mg_store_hint_cb)(void *ud, int64_t version);
/* The store's connection was (re)established: the caller must resync in full. */
typedef void (*mg_store_reconnect_cb)(void *ud);

/*
 * Mutations (JSON objects), all bump the version by one:
 *   {"op":"model_new", "model_id":ID, "model_name":N, "litellm_params":{..}, "model_info":{..},
 *    "user":"admin"}                         -> err class bad_request if ID exists
 *   {"op":"model_update", "model_id":ID, "model_name":N|null, "litellm_params":{..}|null,
 *    "model_info":{..}|null, "clear":["litellm_params.x", ...], "user":..}
 *        merges non-null values over the stored row (litellm_params and model_info key by
 *        key, model_name replaced); "clear" removes keys named "litellm_params.<key>" or
 *        "model_info.<key>".  err class no_route if ID unknown.
 *   {"op":"model_delete", "model_id":ID}     -> err class no_route if ID unknown
 *   {"op":"policy_update", "name":N, "kind":K, "source":S, "hash":H}
 *   {"op":"policy_delete", "name":N}
 *   {"op":"bump", "reason":"config_reload", "detail":..}   (version only)
 *
 * Identity mutations (the tables below; rows in LiteLLM's column names):
 *   {"op":"ident_put", "table":T, "id":ID, "row":{..}, "create":bool}
 *        stores the row under ID (its id column is set to ID); with create, err class
 *        bad_request when ID exists.  The result row is what was stored.
 *   {"op":"ident_patch", "table":T, "id":ID, "set":{col:val,..}, "clear":[col,..]}
 *        merges columns over the stored row; err class no_route when ID is unknown.
 *   {"op":"ident_delete", "table":T, "ids":[ID,..]}
 *        err class no_route (naming the first) when any ID is unknown; nothing is deleted then.
 *        The result is {"deleted":[ID,..]}.
 * A row's "spend" column is the persisted spend at load time: the spend pipeline updates it
 * without a registry version bump (it is not a right), so it is only a starting point.
 * In PostgreSQL (LiteLLM's own tables, mg_store_pg_litellm.c): every key of a row must be a
 * column of the table as it exists (else bad_request naming it; created_at / updated_at are
 * ignored where the table has no such column); ident_put over an existing row resets the
 * columns it does not name to their defaults but keeps created_at, created_by and last_active,
 * and never changes spend / model_spend (the spend pipeline's; ident_patch sets them when
 * asked); "clear" sets a column to its default; created_by / updated_by
 * default to "default_user_id"; the foreign keys LiteLLM's schema has between these tables hold
 * (bad_request); ident_delete also deletes the rows of other tables that a RESTRICT foreign key
 * ties to the deleted ones (LiteLLM_JWTKeyMapping, LiteLLM_OrganizationMembership, ...).
 */

/* table name -> id column: key (LiteLLM_VerificationToken.token, the SHA-256 hex of the key),
 * team (team_id), user (user_id), end_user (LiteLLM_EndUserTable.user_id), budget
 * (budget_id), org (organization_id). */
#define MG_STORE_IDENT_TABLES {"key", "team", "user", "end_user", "budget", "org"}
#define MG_STORE_IDENT_NTABLES 6
/* The id column of an identity table, or NULL when t is not one. */
const char *mg_store_ident_id_column(const char *t);
/* The i-th identity table's name (0 .. MG_STORE_IDENT_NTABLES-1), or NULL. */
const char *mg_store_ident_table(int i);
/* {"key":{}, "team":{}, ...}: every identity table, empty.  New reference. */
json_t *mg_store_idents_new(void);

typedef struct {
    const char *name;   /* "journal" or "postgres" */
    /* Loads everything at the newest version. */
    void (*load)(mg_store_t *s, mg_store_load_cb cb, void *ud);
    /* Reads only the current version (cheap; used by the poll). */
    void (*get_version)(mg_store_t *s, mg_store_version_cb cb, void *ud);
    /* Applies one mutation atomically with the version bump. */
    void (*mutate)(mg_store_t *s, json_t *mutation, mg_store_mutate_cb cb, void *ud);
    /* Starts delivering hints (LISTEN/NOTIFY) and reconnect events. */
    void (*watch)(mg_store_t *s, mg_store_hint_cb on_hint, mg_store_reconnect_cb on_reconnect,
                  void *ud);
    /* {"type":..., "connected":bool, "last_error":..., ...} new reference. */
    json_t *(*status)(mg_store_t *s);
    /* Cancels pending operations without calling their callbacks, frees. */
    void (*destroy)(mg_store_t *s);
} mg_store_ops_t;

struct mg_store_s {
    const mg_store_ops_t *ops;
    void *impl;
};

typedef struct {
    struct event_base *base;
    const char *state_dir;      /* journal */
    const char *database_url;   /* postgres (secret) */
    const char *secret;         /* key material for encrypting credentials at rest, or NULL */
    int worker_id;
} mg_store_conf_t;

/* Creates the journal store (state_dir) or the postgres store (database_url). */
mg_store_t *mg_store_journal_create(const mg_store_conf_t *conf, mg_err_t *err);
mg_store_t *mg_store_pg_create(const mg_store_conf_t *conf, mg_err_t *err);

#endif
