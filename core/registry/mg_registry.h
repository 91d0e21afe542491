/*
 * mg_registry.h -- the versioned registry snapshot.
 *
 * Owns: deployments, groups and every derived index (group map, id map,
 * wildcard table), all built together from one config plus the store's rows
 * at one version.  A snapshot is immutable once built and reference counted:
 * the worker holds the current one, each request holds the one it started
 * with (fallbacks included).  Nothing is ever patched in place; a change is
 * a new snapshot.  Single-threaded (one worker).
 *
 * Upper layers attach per-deployment data (provider descriptor, upstream
 * client reference, stats slot) through the attach hooks so that this layer
 * stays below them.
 */
#ifndef MG_REGISTRY_H
#define MG_REGISTRY_H

#include "mg_auth.h"
#include "../base/mg_err.h"
#include "../base/mg_map.h"
#include "../base/mg_scrub.h"
#include "../base/mg_types.h"
#include "mg_config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>

typedef enum {
    MG_DEP_CONFIG = 0,      /* from config.yaml */
    MG_DEP_STORE = 1,       /* from the store (/model/new) */
} mg_dep_source_t;

struct mg_deployment_s {
    size_t index;                   /* position in snapshot->deps */
    char *id;                       /* owned: model_info.id (given or generated) */
    char *model_name;               /* owned: public group name, may contain '*' */
    char *litellm_model;            /* owned: litellm_params.model */
    char *provider;                 /* owned: "openai", "azure", ... */
    char *upstream_model;           /* owned: model name sent upstream (may contain '*') */
    const char *api_base;           /* borrowed: litellm_params (may be NULL) */
    const char *api_key;            /* borrowed: litellm_params, secret (may be NULL) */
    const char *api_version;        /* borrowed */
    const char *organization;       /* borrowed */
    json_t *litellm_params;         /* owned: resolved, secrets inside */
    json_t *model_info;             /* owned: with id and db_model */
    json_t *extra_headers;          /* borrowed: object or NULL */
    json_t *defaults;               /* owned: params added to requests that lack them */
    json_t *mock_response;          /* borrowed: litellm_params.mock_response or NULL */
    json_t *additional_drop_params; /* borrowed: array or NULL */
    double rpm, tpm, weight;        /* < 0 = unset */
    int order;                      /* 0 = unset */
    double timeout;                 /* seconds, 0 = unset */
    double stream_timeout;
    int num_retries;                /* -1 = unset */
    double cooldown_time;           /* < 0 = unset */
    int drop_params;                /* -1 unset, 0, 1 */
    /* prices and model facts, derived with the snapshot from its cost map */
    double input_cost, output_cost; /* per token: the deployment's own, else the cost map's;
                                     * < 0 = unknown (cost_based routing's 5.0 default) */
    mg_costmap_prices_t prices;     /* the deployment's own (litellm_params, then model_info) */
    const char *base_model;         /* borrowed: model_info.base_model, else litellm_params' */
    const mg_costmap_entry_t *cost_entry; /* borrowed: snapshot->costmap; NULL = unpriced, or a
                                     * wildcard (its entry is looked up per request) */
    int64_t max_input_tokens;       /* model_info, litellm_params, else the map's; 0 = unknown */
    int max_parallel_requests;      /* 0 = unlimited */
    mg_dep_source_t source;
    bool wildcard;                  /* model_name contains '*' */
    pcre2_code *re;                 /* owned: anchored pattern when wildcard */
    char cred_hash[65];             /* sha256 over credentials + endpoint */

    /* attached by upper layers, released through the snapshot's detach hook */
    const void *prov;               /* borrowed: const mg_provider_t * */
    void *upstream;                 /* ref: mg_upstream_t *, dropped in detach */
    int stats_slot;                 /* index into shared stats, -1 none */
    void *pstate;                   /* owned by the provider: ops->attach, freed by ops->release */
    void *metrics;                  /* owned by the gateway: resolved metric series, freed in detach */
    bool unpriced_said;             /* gateway memo: "no price" was logged for this deployment */
};

struct mg_group_s {
    char *name;                     /* owned */
    mg_deployment_t **deps;         /* owned array of borrowed pointers */
    size_t ndeps;
    bool wildcard;
    pcre2_code *re;                 /* borrowed: from the first deployment */
    size_t pattern_len;             /* LiteLLM's sort key: length of the escaped regex */
    int pattern_stars;              /* then the count of regex special characters in it */
    size_t seq;                     /* then configured order (Python's sort is stable) */
};

typedef struct {
    /* called once per deployment after build; may set prov/upstream/stats_slot */
    int (*attach)(void *ud, mg_snapshot_t *s, mg_deployment_t *d, mg_err_t *err);
    /* called once per deployment when the snapshot is freed */
    void (*detach)(void *ud, mg_snapshot_t *s, mg_deployment_t *d);
    void *ud;
} mg_registry_hooks_t;

struct mg_snapshot_s {
    int refs;
    int64_t version;                /* store version these rows came from */
    int64_t created_real_ms;
    int64_t created_mono_ms;
    mg_config_t *config;            /* ref */
    mg_costmap_t *costmap;          /* ref: config->costmap; every price and model fact below
                                     * comes from it, rebuilt with the snapshot */
    mg_deployment_t *deps;          /* owned array */
    size_t ndeps;
    mg_group_t *groups;             /* owned array */
    size_t ngroups;
    mg_map_t by_group;              /* name -> mg_group_t* (exact names) */
    mg_map_t by_id;                 /* id -> mg_deployment_t* */
    mg_map_t by_litellm_model;      /* litellm_params.model -> first deployment */
    mg_map_t aliases;               /* model_group_alias: alias -> group name (owned char*) */
    mg_group_t **wildcards;         /* owned array, most specific first */
    size_t nwildcards;
    json_t *store_policies;         /* owned: policies from the store (object) or NULL */
    mg_auth_t *auth;                /* owned: virtual keys, teams, users, end users, budgets */
    json_t *warnings;               /* owned: array of strings found while building */
    json_t *skipped;                /* owned: model_name -> why a stored model was skipped */
    mg_registry_hooks_t hooks;
    mg_scrub_set_t *scrub;          /* ref: every secret this snapshot knows (logs, errors) */
    void *ext;                      /* upper layer per-snapshot data (Lua VM), see ext_free */
    void (*ext_free)(void *ext);
};

/*
 * Builds a snapshot from a config and the store's models (array of
 * {model_id, model_name, litellm_params, model_info}; may be NULL).
 * Returns one reference.  Store rows that fail validation are skipped with a
 * warning in snap->warnings (the store validated them on write); config models
 * were validated at load.
 */
int mg_registry_build(mg_config_t *cfg, json_t *store_models, json_t *store_policies,
                      int64_t version, const mg_registry_hooks_t *hooks, mg_snapshot_t **out,
                      mg_err_t *err);

/* The same, with the store's identity rows ({table: {id: row}}, see mg_store.h; NULL: none). */
int mg_registry_build_ex(mg_config_t *cfg, json_t *store_models, json_t *store_policies,
                         json_t *store_idents, int64_t version, const mg_registry_hooks_t *hooks,
                         mg_snapshot_t **out, mg_err_t *err);

mg_snapshot_t *mg_snapshot_ref(mg_snapshot_t *s);
void mg_snapshot_unref(mg_snapshot_t *s);

/* Exact group (after alias resolution); NULL if none.  Borrowed from s. */
mg_group_t *mg_registry_group(const mg_snapshot_t *s, const char *name, size_t len);
mg_deployment_t *mg_registry_by_id(const mg_snapshot_t *s, const char *id);

/*
 * Wildcard lookup in LiteLLM's order: tries name, then provider/name.
 * Fills ovec captures for substitution.  Returns the matching group or NULL.
 */
mg_group_t *mg_registry_wildcard(const mg_snapshot_t *s, const char *name, size_t len,
                                 char *matched, size_t matched_len);

/*
 * The provider LiteLLM infers for a bare model name (get_llm_provider): the cost map's
 * litellm_provider for that exact name (its provider model sets), else moongate's prefix
 * rules ("gpt-" -> openai, "claude" -> anthropic, ...).  NULL when the name already starts
 * with a known "provider/", or nothing matches.  Borrowed from s or static.
 */
const char *mg_registry_bare_provider(const mg_snapshot_t *s, const char *name);

/* The cost-map entry that prices a call on d for upstream model `model` (wildcards look it
 * up by the model asked for; others have d->cost_entry).  Borrowed from d's snapshot. */
const mg_costmap_entry_t *mg_registry_cost_entry(const mg_snapshot_t *s, const mg_deployment_t *d,
                                                 const char *model);

/* The upstream model for a wildcard deployment and a requested name (arena-free: malloc'd). */
char *mg_registry_wildcard_model(const mg_deployment_t *d, const char *requested);

/* LiteLLM's deployment id: sha256 of model_name + each litellm_params key and value. */
void mg_registry_model_id(const char *model_name, json_t *litellm_params, char out[65]);

/* Splits "provider/model" using LiteLLM's provider list and inference for bare names. */
void mg_registry_split_model(const char *litellm_model, const char *custom_provider,
                             char **provider, char **model);

/* The scrubber's set of every secret a snapshot knows: deployments' secret params and
 * auth headers, the master key, Redis and database passwords, credential_list, and the
 * environment's credentials.  New reference. */
mg_scrub_set_t *mg_registry_secrets(const mg_snapshot_t *s);
/* The same for a config alone (the master, before any snapshot). */
mg_scrub_set_t *mg_registry_config_secrets(const mg_config_t *c);

/* Whether a litellm_params key holds a secret: the one list the admin API, /model/info,
 * logs and errors redact by. */
bool mg_registry_secret_key(const char *k);

/* A deployment as the API shows it (credentials removed). New reference. */
json_t *mg_registry_deployment_json(const mg_deployment_t *d, bool with_secrets);
/* litellm_params as anyone may see them: secret-named params removed, credential headers and
 * api_base query values redacted (in place). */
void mg_registry_public_params(json_t *lp);

#endif
