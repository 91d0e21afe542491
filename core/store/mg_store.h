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
 */
typedef void (*mg_store_load_cb)(void *ud, int rc, int64_t version, json_t *models,
                                 json_t *policies, const mg_err_t *err);
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
 */

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
