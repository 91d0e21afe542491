/*
 * mg_config.h -- config.yaml: load, resolve, validate.
 *
 * Owns: the resolved JSON tree (includes merged, os.environ/ values resolved)
 * and the typed settings read from it.  A config is immutable once loaded and
 * reference counted: the master holds the current one, a registry snapshot
 * holds the one it was built from.  Anything LiteLLM accepts but moongate does
 * not use is kept in the tree and reported once as a warning.
 */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include "../base/mg_err.h"
#include "../base/mg_types.h"
#include "mg_costmap.h"
#include "mg_yaml.h"

#include <jansson.h>
#include <stdbool.h>

struct mg_config_s {
    int refs;
    char *path;                 /* owned: config file ("" when none) */
    json_t *root;               /* owned: resolved tree (secrets inside) */
    char hash[65];              /* sha256 of the canonical resolved tree */

    /* model_list after validation: array of {model_name, litellm_params, model_info} */
    json_t *models;             /* owned */
    size_t nmodels;

    /* general_settings */
    char *master_key;           /* owned, secret; NULL = open */
    char *database_url;         /* owned, secret; NULL = embedded store */
    bool store_model_in_db;
    int64_t max_request_size;   /* bytes; default 100 MiB */
    int64_t max_response_size;  /* bytes */

    /* litellm_settings / router_settings (router wins) */
    bool drop_params;
    bool otel;                  /* "otel" in callbacks / success_callback / failure_callback:
                                 * OpenTelemetry traces (settings from the OTEL_* environment) */
    double request_timeout;     /* seconds; LiteLLM default 6000 */
    double stream_timeout;      /* seconds; 0 = request_timeout */
    json_t *router;             /* owned: merged router settings object */
    json_t *litellm_settings;   /* borrowed from root (object or NULL) */
    json_t *general_settings;   /* borrowed from root */

    /* policies: {"routing"|"fallback"|"wildcard": {name, origin: builtin|file, path?, source?,
     * conf}}; file sources are read at load and carried in root["__moongate_policies"] */
    json_t *policies;           /* borrowed from root */

    /* the model cost map this config carries: parsed from root["__moongate_cost_map"]
     * ({source, text, loaded_ms}: the master read the bytes and sends them to every worker
     * inside the config, so all use the same bytes), or the built-in map when absent */
    mg_costmap_t *costmap;      /* ref, never NULL */

    /* redis (router_settings.redis_* or REDIS_* env) */
    char *redis_host;           /* owned; NULL = no redis */
    int redis_port;
    char *redis_password;       /* owned, secret */
    char *redis_username;       /* owned */
    int redis_db;

    /* moongate_settings (ours) */
    char *state_dir;            /* owned */
    int registry_poll_ms;
    int mutation_wait_ms;
    int upstream_connect_timeout_ms;
    int upstream_idle_timeout_ms;
    int upstream_max_idle;
    int keepalive_timeout_ms;
    int drain_timeout_ms;
    int drain_accept_ms;        /* after SIGTERM: keep accepting (readiness 503) this long */
    int header_timeout_ms;      /* a request head must arrive within this */
    int body_timeout_ms;        /* idle time allowed between request body reads */
    int policy_budget_ms;
    int policy_memory_mb;
    double cost_map_reload_hours;   /* cost_map_reload_interval_hours, 0 = no schedule */
    int cost_map_fetch_timeout_ms;  /* cost_map_fetch_timeout_seconds: one fetch, all of it */
    int limit_concurrency;
    bool pre_call_checks;       /* router enable_pre_call_checks */
    json_t *cp_fallbacks;       /* borrowed (router): content_policy_fallbacks array, or NULL */
    int default_max_parallel;   /* router default_max_parallel_requests, 0 = none */

    /* observability (litellm_settings) */
    double *latency_buckets;    /* owned: prometheus_latency_buckets, ascending; NULL = LiteLLM's */
    int nlatency_buckets;
    bool metrics_auth;          /* require_auth_for_metrics_endpoint */
    bool json_logs;             /* json_logs or JSON_LOGS */

    int nwarnings;
    json_t *unimplemented;      /* owned: [{setting, effect}] accepted but not implemented */
};

/* Options that come from the CLI / environment and shape loading. */
typedef struct {
    const char *state_dir;      /* --state_dir, overrides config */
    bool quiet;                 /* no warnings on stderr (for --validate_config tests) */
} mg_config_opts_t;

/*
 * Loads config.yaml (path may be NULL: an empty config).  Applies
 * environment_variables to this process, resolves os.environ/ references and
 * validates.  Errors name file:line:column.
 */
int mg_config_load(const char *path, const mg_config_opts_t *opts, mg_config_t **out,
                   mg_err_t *err);

/* Loads config YAML from memory (name is used in messages); includes resolve
 * relative to the current directory. */
int mg_config_load_text(const char *text, size_t len, const char *name,
                        const mg_config_opts_t *opts, mg_config_t **out, mg_err_t *err);

/* Builds a config from an already resolved tree (as sent between processes). */
int mg_config_from_json(const char *path, json_t *root, const mg_config_opts_t *opts,
                        mg_config_t **out, mg_err_t *err);

mg_config_t *mg_config_ref(mg_config_t *c);
void mg_config_unref(mg_config_t *c);

/*
 * A copy of cfg that carries another cost map.  node is {"source": name, "text": the
 * map's bytes, "loaded_ms": wall clock when they were read}, or NULL for the built-in map;
 * cfg's settings and warnings count are kept.  Fails (class config) if the map does not
 * parse: the caller validated it already, so that is an internal error.  New reference.
 */
int mg_config_with_costmap(const mg_config_t *cfg, json_t *node, mg_config_t **out,
                           mg_err_t *err);

/* The cost map node cfg carries (borrowed), or NULL when it uses the built-in map. */
json_t *mg_config_costmap_node(const mg_config_t *cfg);

/* Router setting by key (router_settings over litellm_settings), or NULL. */
json_t *mg_config_router_get(const mg_config_t *c, const char *key);

/*
 * Validates one model entry ({model_name, litellm_params, model_info}) as
 * found in config or sent to /model/new.  where (may be NULL) names the
 * source for messages; marks/path give file:line:column when known.
 * On success *out is a normalised copy (numbers coerced, os.environ/ resolved).
 */
int mg_config_check_model(json_t *entry, const char *where, const mg_marks_t *marks,
                          const char *path, json_t **out, mg_err_t *err);

/*
 * Where the embedded store lives: --state_dir / moongate_settings.state_dir, else
 * MOONGATE_STATE_DIR, else one directory per config file: /var/lib/moongate/<hash> as
 * root, $XDG_STATE_HOME/moongate/<hash> (~/.local/state/...) otherwise.
 */
void mg_config_state_dir(const mg_config_t *cfg, const char *config_path, char *out, size_t len);

/* Replaces "os.environ/NAME" strings with the environment value (or null). */
json_t *mg_config_resolve_env(json_t *v);

#endif
