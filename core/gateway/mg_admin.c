/*
 * mg_admin.c -- the non-LLM routes: model management (/model/...), model
 * listings (/v1/models, /model/info), health (/health, /health/readiness),
 * /config/reload, /moongate/state and the LiteLLM cache endpoints.
 *
 * Mutations go through the worker's host (store commit, then wait until every
 * local worker has applied the new version).  While one is in flight the
 * request holds an mg_pending_t; if the client goes away the pending object
 * outlives it and the late callback only frees it.
 */
#include "mg_gw.h"
#include "mg_keys.h"
#include "mg_reqlog.h"

#include "../base/mg_metrics_litellm.h"
#include "../base/mg_log.h"
#include "../base/mg_scrub.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_stats.h"
#include "../spend/mg_spend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct mg_health_run_s mg_health_run_t;

struct mg_pending_s {
    mg_request_t *r;            /* NULL once the request is gone */
    mg_health_run_t *run;       /* a /health run in progress, or NULL */
    int kind;                   /* 1 new, 2 update, 3 patch, 4 delete, 5 reload, 6 cost map */
    char *model_id;
};

static mg_pending_t *
mg_admin_pending(mg_request_t *r, int kind, const char *id)
{
    mg_pending_t *p = mg_xcalloc(1, sizeof(*p));
    p->r = r;
    p->kind = kind;
    p->model_id = id ? mg_xstrdup(id) : NULL;
    r->pending = p;
    r->state = MG_ATT_ASYNC;
    return p;
}

static void
mg_admin_pending_free(mg_pending_t *p)
{
    free(p->model_id);
    free(p);
}

static void mg_health_detach(mg_health_run_t *run);

void
mg_admin_abort(mg_request_t *r)
{
    mg_keys_abort(r); /* a management change in flight finishes without its client */
    mg_spend_routes_abort(r);
    if (r->pending != NULL) {
        mg_pending_t *p = r->pending;
        r->pending = NULL;
        p->r = NULL;
        if (p->run != NULL) {
            mg_health_detach(p->run);
            mg_admin_pending_free(p);
        }
    }
}

/* ---- helpers ---- */

static bool
mg_admin_path_is(const mg_request_t *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static bool
mg_admin_method(const char *m, size_t ml, const char *want)
{
    size_t n = strlen(want);
    return ml == n && memcmp(m, want, n) == 0;
}

/* Query parameter value (arena, percent-decoded), or NULL. */
static char *
mg_admin_query(mg_request_t *r, const char *name)
{
    const char *t = r->hr->head.target;
    size_t tl = r->hr->head.target_len;
    const char *q = memchr(t, '?', tl);
    if (q == NULL) {
        return NULL;
    }
    q++;
    const char *end = t + tl;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t) (end - q));
        const char *e = amp ? amp : end;
        if ((size_t) (e - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            const char *v = q + nl + 1;
            char *out = mg_arena_alloc(r->arena, (size_t) (e - v) + 1);
            size_t o = 0;
            for (const char *p = v; p < e; p++) {
                if (*p == '%' && p + 2 < e) {
                    char hex[3] = {p[1], p[2], 0};
                    out[o++] = (char) strtol(hex, NULL, 16);
                    p += 2;
                } else if (*p == '+') {
                    out[o++] = ' ';
                } else {
                    out[o++] = *p;
                }
            }
            out[o] = '\0';
            return out;
        }
        q = e + 1;
    }
    return NULL;
}

static bool
mg_admin_require_admin(mg_request_t *r)
{
    if (r->is_admin) {
        return true;
    }
    char *msg = mg_arena_printf(r->arena, "Authentication Error, Tried to access route=%.*s, "
                                          "which is only for MASTER KEY",
                                (int) r->path_len, r->path);
    mg_gw_error_raw(r, 401, msg, "\"auth_error\"", "\"None\"", NULL);
    return false;
}

/* Parses the request body as a JSON object; answers 400 and returns NULL if it is not. */
static json_t *
mg_admin_body(mg_request_t *r)
{
    if (r->hr->body_len == 0) {
        return json_object();
    }
    json_error_t je;
    json_t *j = json_loadb(r->hr->body, r->hr->body_len, 0, &je);
    if (j == NULL || !json_is_object(j)) {
        char *msg = mg_arena_printf(r->arena, "Invalid JSON payload: %s",
                                    j == NULL ? je.text : "expected a JSON object");
        json_decref(j);
        mg_gw_error(r, 400, msg, "invalid_request_error", "request_body", NULL);
        return NULL;
    }
    return j;
}

static void
mg_admin_repr_error(mg_request_t *r, int status, const char *inner, const char *type_json)
{
    char *m = mg_gw_pyrepr_dict_error(inner);
    mg_gw_error_raw(r, status, m, type_json, "\"None\"", NULL);
    free(m);
}

static const char *
mg_admin_provider_of(const mg_deployment_t *d)
{
    return d->provider[0] ? d->provider : "openai";
}

/* ---- / and readiness ---- */

static void
mg_admin_root(mg_request_t *r)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "message", "moongate: an LLM gateway compatible with "
                                                      "the LiteLLM proxy API",
                          "version", MG_VERSION, "docs", "https://github.com/ (see README.md)");
    mg_gw_json(r, 200, b);
    json_decref(b);
}

static void
mg_admin_readiness(mg_request_t *r)
{
    mg_gw_t *gw = r->gw;
    int n = mg_shm != NULL ? mg_shm->nworkers : 1;
    int ready = 0;
    bool draining = gw->draining || (mg_shm != NULL && mg_atomic_load32(&mg_shm->draining));
    json_t *workers = json_array();
    for (int i = 0; i < n && mg_shm != NULL; i++) {
        mg_shm_worker_t *w = &mg_shm->workers[i];
        int st = mg_atomic_load32(&w->state);
        int loaded = mg_atomic_load32(&w->loaded_once);
        /* a worker that drains on its own (a recycle) is replaced; only this worker's own
         * drain or the instance's shutdown make the answer 503 */
        if (loaded && (st == MG_WSTATE_READY || (st == MG_WSTATE_DRAINING && i != gw->worker_id))) {
            ready++;
        }
        json_array_append_new(workers, json_pack("{s:i,s:i,s:s,s:I}", "worker", i, "pid",
                                                 mg_atomic_load32(&w->pid), "state",
                                                 st == MG_WSTATE_READY      ? "ready"
                                                 : st == MG_WSTATE_STARTING ? "loading"
                                                 : st == MG_WSTATE_DRAINING ? "draining"
                                                                            : "down",
                                                 "registry_version",
                                                 (json_int_t) mg_atomic_load64(&w->version)));
    }
    if (mg_shm == NULL) {
        ready = gw->ready ? 1 : 0;
    }
    json_t *store = gw->host.store_status != NULL ? gw->host.store_status(gw->host.host) : NULL;
    const char *db = "Not connected";
    if (gw->config->database_url != NULL) {
        db = json_is_true(json_object_get(store, "connected")) ? "connected" : "disconnected";
    }
    bool ok = ready == n && !draining;
    json_t *mg = json_pack("{s:i,s:i,s:b,s:o}", "workers", n, "workers_ready", ready, "draining",
                           draining, "worker_states", workers);
    if (gw->snap != NULL) {
        json_object_set_new(mg, "registry_version", json_integer(gw->snap->version));
        json_object_set_new(mg, "snapshot_age_seconds",
                            json_real((double) (mg_time_mono_ms() - gw->snap->created_mono_ms) / 1000.0));
    }
    if (!gw->ready) {
        char *reason = mg_scrub_global_cstr(gw->not_ready_reason); /* e.g. a store URL */
        json_object_set_new(mg, "reason", json_string(reason));
        free(reason);
    } else if (!ok) {
        json_object_set_new(mg, "reason", json_string(draining ? "shutting down"
                                                               : "not every worker has loaded "
                                                                 "the registry yet"));
    }
    if (store != NULL) {
        json_object_set_new(mg, "store", store);
    }
    const char *lvl = mg_log_level == MG_LOG_DEBUG ? "DEBUG"
                      : mg_log_level == MG_LOG_INFO ? "INFO"
                                                    : "WARNING";
    json_t *b = json_pack("{s:s,s:s,s:n,s:s,s:[],s:b,s:s,s:b,s:o}", "status",
                          ok ? "healthy" : "unhealthy", "db", db, "cache", "litellm_version",
                          MG_VERSION, "success_callbacks", "use_aiohttp_transport", 0, "log_level",
                          lvl, "is_detailed_debug", mg_log_level == MG_LOG_DEBUG, "moongate", mg);
    if (ok) {
        mg_gw_json(r, 200, b);
    } else {
        char *s = json_dumps(b, JSON_COMPACT);
        mg_buf_t h = MG_BUF_INIT;
        mg_buf_append_str(&h, "content-type: application/json\r\nretry-after: 1\r\n");
        mg_gw_common_headers(r, &h);
        mg_http_respond(r->hr, 503, mg_buf_head(&h), mg_buf_len(&h), s, strlen(s));
        mg_buf_free(&h);
        free(s);
    }
    json_decref(b);
}

/* ---- listings ---- */

static bool
mg_admin_need_snapshot(mg_request_t *r)
{
    if (r->gw->snap == NULL) {
        char *msg = mg_arena_printf(r->arena, "moongate: the model registry is not loaded on this "
                                              "worker yet (%s); retry shortly",
                                    r->gw->not_ready_reason);
        mg_gw_error_raw(r, 503, msg, "\"service_unavailable\"", "null", "retry-after: 1\r\n");
        return false;
    }
    if (r->snap == NULL) {
        r->snap = mg_snapshot_ref(r->gw->snap);
    }
    return true;
}

static void
mg_admin_model_entry(json_t *data, json_t *seen, const char *id)
{
    if (json_object_get(seen, id) == NULL) {
        json_object_set_new(seen, id, json_true());
        json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model",
                                              "created", 1677610602, "owned_by", "openai"));
    }
}

/*
 * LiteLLM's get_known_models_from_wildcard for one wildcard group: for each deployment,
 * the provider its litellm_params.model names ("anthropic/..." -> anthropic), that provider's
 * models in the cost map, filtered by the pattern's text after "provider/" when some start
 * with it ("gemini/gemini-" then a star), else prefixed with it; each shown as
 * "provider/name" unless it starts with the provider already.  A pattern without "/"
 * (a lone star) expands to nothing.
 */
static void
mg_admin_wildcard_expand(const mg_snapshot_t *s, const mg_group_t *g, json_t *data, json_t *seen)
{
    const char *slash = strchr(g->name, '/');
    if (slash == NULL) {
        return;
    }
    size_t wpl = (size_t) (slash - g->name);
    const char *suffix = slash + 1;
    bool all = strcmp(suffix, "*") == 0;
    mg_buf_t prefix = MG_BUF_INIT;
    for (const char *p = suffix; *p; p++) {
        if (*p != '*') {
            mg_buf_append(&prefix, p, 1);
        }
    }
    const char *pre = mg_buf_cstr(&prefix);
    size_t prel = strlen(pre);
    mg_buf_t id = MG_BUF_INIT;
    for (size_t j = 0; j < g->ndeps; j++) {
        const char *lm = g->deps[j]->litellm_model;
        const char *ls = strchr(lm, '/');
        char prov[128];
        snprintf(prov, sizeof(prov), "%.*s", (int) (ls != NULL ? (size_t) (ls - lm) : strlen(lm)),
                 lm);
        const char *const *names;
        size_t n = mg_costmap_provider_models(s->costmap, prov, &names);
        bool partial = false;
        for (size_t k = 0; !all && k < n && !partial; k++) {
            partial = strncmp(names[k], pre, prel) == 0;
        }
        for (size_t k = 0; k < n; k++) {
            mg_buf_reset(&id);
            if (!all && partial && strncmp(names[k], pre, prel) != 0) {
                continue;
            }
            if (!all && !partial) {
                mg_buf_append_str(&id, pre);
            }
            mg_buf_append_str(&id, names[k]);
            if (strncmp(mg_buf_cstr(&id), g->name, wpl) != 0) {
                mg_buf_t full = MG_BUF_INIT;
                mg_buf_printf(&full, "%.*s/%s", (int) wpl, g->name, mg_buf_cstr(&id));
                mg_admin_model_entry(data, seen, mg_buf_cstr(&full));
                mg_buf_free(&full);
            } else {
                mg_admin_model_entry(data, seen, mg_buf_cstr(&id));
            }
        }
    }
    mg_buf_free(&id);
    mg_buf_free(&prefix);
}

static void
mg_admin_models(mg_request_t *r, const char *one, size_t one_len)
{
    if (!mg_admin_need_snapshot(r)) {
        return;
    }
    mg_snapshot_t *s = r->snap;
    json_t *data = json_array();
    json_t *seen = json_object();
    for (size_t i = 0; i < s->ngroups; i++) {
        const char *name = s->groups[i].name;
        if (!mg_keys_model_visible(r, name)) {
            continue; /* a virtual key sees the models it may call (LiteLLM) */
        }
        if (json_object_get(seen, name) == NULL) {
            json_object_set_new(seen, name, json_true());
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", name, "object",
                                                  "model", "created", 1677610602, "owned_by",
                                                  "openai"));
        }
    }
    json_t *alias = mg_config_router_get(s->config, "model_group_alias");
    const char *an;
    json_t *av;
    json_object_foreach(alias, an, av) {
        if (json_is_object(av) && json_is_true(json_object_get(av, "hidden"))) {
            continue;
        }
        if (!mg_keys_model_visible(r, an)) {
            continue;
        }
        if (json_object_get(seen, an) == NULL) {
            json_object_set_new(seen, an, json_true());
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", an, "object", "model",
                                                  "created", 1677610602, "owned_by", "openai"));
        }
    }
    /* wildcard groups are listed by name (return_wildcard_routes changes nothing) and
     * expanded into the snapshot's cost map models for their provider, as LiteLLM does */
    for (size_t i = 0; i < s->ngroups; i++) {
        if (s->groups[i].wildcard) {
            mg_admin_wildcard_expand(s, &s->groups[i], data, seen);
        }
    }
    if (one != NULL) {
        size_t i;
        json_t *m;
        json_array_foreach(data, i, m) {
            const char *id = json_string_value(json_object_get(m, "id"));
            if (strlen(id) == one_len && memcmp(id, one, one_len) == 0) {
                mg_gw_json(r, 200, m);
                json_decref(data);
                json_decref(seen);
                return;
            }
        }
        char *msg = mg_arena_printf(r->arena, "The model `%.*s` does not exist", (int) one_len, one);
        mg_gw_error(r, 404, msg, "invalid_request_error", "model", NULL);
    } else {
        json_t *b = json_pack("{s:o,s:s}", "data", data, "object", "list");
        mg_gw_json(r, 200, b);
        json_decref(b);
        data = NULL;
    }
    json_decref(data);
    json_decref(seen);
}

/* The deployment's own price fields LiteLLM registers as custom pricing. */
static const char *const mg_admin_price_fields[] = {
    "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
    "cache_creation_input_token_cost", "output_cost_per_reasoning_token", "input_cost_per_second",
    "output_cost_per_second", NULL,
};

/*
 * A deployment for /model/info: its model_info as given, then what it does not set: its own
 * litellm_params prices, then every field of its cost map entry (max_input_tokens, prices,
 * mode, litellm_provider, supports_*, ...; "key" names the entry).  What the user set is
 * never overwritten (LiteLLM #35491).  A copy: the snapshot's model_info is not touched.
 */
static json_t *
mg_admin_dep_info(const mg_deployment_t *d)
{
    json_t *j = mg_registry_deployment_json(d, false);
    json_t *mi = json_deep_copy(d->model_info);
    json_object_set_new(j, "model_info", mi);
    for (const char *const *k = mg_admin_price_fields; *k != NULL; k++) {
        json_t *v = json_object_get(d->litellm_params, *k);
        if (v != NULL && !json_is_null(v) && json_object_get(mi, *k) == NULL) {
            json_object_set(mi, *k, v);
        }
    }
    const mg_costmap_entry_t *e = d->cost_entry;
    if (e != NULL) {
        if (json_object_get(mi, "key") == NULL) {
            json_object_set_new(mi, "key", json_string(e->name));
        }
        const char *k;
        json_t *v;
        json_object_foreach(e->info, k, v) {
            if (json_object_get(mi, k) == NULL) {
                json_object_set_new(mi, k, json_deep_copy(v));
            }
        }
    }
    if (json_object_get(mi, "mode") == NULL) {
        json_object_set_new(mi, "mode", json_string("chat"));
    }
    if (json_object_get(mi, "litellm_provider") == NULL) {
        json_object_set_new(mi, "litellm_provider", json_string(mg_admin_provider_of(d)));
    }
    if (d->input_cost >= 0 && json_object_get(mi, "input_cost_per_token") == NULL) {
        json_object_set_new(mi, "input_cost_per_token", json_real(d->input_cost));
    }
    if (d->output_cost >= 0 && json_object_get(mi, "output_cost_per_token") == NULL) {
        json_object_set_new(mi, "output_cost_per_token", json_real(d->output_cost));
    }
    return j;
}

static void
mg_admin_model_info(mg_request_t *r)
{
    if (!mg_admin_need_snapshot(r)) {
        return;
    }
    mg_snapshot_t *s = r->snap;
    char *id = mg_admin_query(r, "litellm_model_id");
    if (id != NULL) {
        mg_deployment_t *d = mg_registry_by_id(s, id);
        if (d == NULL || !mg_keys_model_visible(r, d->model_name)) {
            char *m = mg_arena_printf(r->arena, "Model id = %s not found on litellm proxy", id);
            mg_gw_detail(r, 400, json_pack("{s:s}", "error", m));
            return;
        }
        json_t *b = json_pack("{s:[o]}", "data", mg_admin_dep_info(d));
        mg_gw_json_scrubbed(r, 200, b);
        json_decref(b);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < s->ndeps; i++) {
        if (mg_keys_model_visible(r, s->deps[i].model_name)) {
            json_array_append_new(data, mg_admin_dep_info(&s->deps[i]));
        }
    }
    json_t *b = json_pack("{s:o}", "data", data);
    mg_gw_json_scrubbed(r, 200, b);
    json_decref(b);
}

/* The supports_* flags /model_group/info shows (LiteLLM's ModelGroupInfo). */
static const char *const mg_admin_group_flags[] = {
    "supports_function_calling", "supports_vision", "supports_parallel_function_calling",
    "supports_reasoning", "supports_web_search", NULL,
};

/*
 * A group's model facts as LiteLLM's router sets them: the largest context window, output
 * limit and prices of its deployments (each deployment's model_info first, else its cost
 * map entry), the first mode any of them gives (else "chat"), a supports_* flag when any
 * deployment has it.  Unknown numbers are null.
 */
static json_t *
mg_admin_group_facts(const mg_group_t *g)
{
    int64_t max_in = 0, max_out = 0;
    double in_cost = -1, out_cost = -1;
    const char *mode = NULL;
    bool flags[8] = {false};
    for (size_t j = 0; j < g->ndeps; j++) {
        const mg_deployment_t *d = g->deps[j];
        const mg_costmap_entry_t *e = d->cost_entry;
        json_t *mi = d->model_info;
        if (d->max_input_tokens > max_in) {
            max_in = d->max_input_tokens;
        }
        json_t *mo = json_object_get(mi, "max_output_tokens");
        int64_t out = json_is_number(mo) ? mg_clamp_i64(json_number_value(mo))
                      : e != NULL        ? e->max_output_tokens
                                         : 0;
        if (out > max_out) {
            max_out = out;
        }
        if (d->input_cost > in_cost) {
            in_cost = d->input_cost;
        }
        if (d->output_cost > out_cost) {
            out_cost = d->output_cost;
        }
        if (mode == NULL) {
            mode = json_string_value(json_object_get(mi, "mode"));
        }
        if (mode == NULL && e != NULL) {
            mode = e->mode;
        }
        for (int f = 0; mg_admin_group_flags[f] != NULL; f++) {
            json_t *v = json_object_get(mi, mg_admin_group_flags[f]);
            if (json_is_boolean(v) ? json_is_true(v)
                                   : mg_costmap_supports(e, mg_admin_group_flags[f]) == 1) {
                flags[f] = true;
            }
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "max_input_tokens", max_in > 0 ? json_integer(max_in) : json_null());
    json_object_set_new(o, "max_output_tokens", max_out > 0 ? json_integer(max_out) : json_null());
    json_object_set_new(o, "input_cost_per_token", in_cost >= 0 ? json_real(in_cost) : json_null());
    json_object_set_new(o, "output_cost_per_token",
                        out_cost >= 0 ? json_real(out_cost) : json_null());
    json_object_set_new(o, "mode", json_string(mode != NULL ? mode : "chat"));
    for (int f = 0; mg_admin_group_flags[f] != NULL; f++) {
        json_object_set_new(o, mg_admin_group_flags[f], json_boolean(flags[f]));
    }
    return o;
}

static void
mg_admin_model_group_info(mg_request_t *r)
{
    if (!mg_admin_need_snapshot(r)) {
        return;
    }
    mg_snapshot_t *s = r->snap;
    char *only = mg_admin_query(r, "model_group");
    json_t *data = json_array();
    for (size_t i = 0; i < s->ngroups; i++) {
        mg_group_t *g = &s->groups[i];
        if (only != NULL && strcmp(only, g->name) != 0) {
            continue;
        }
        json_t *prov = json_array();
        json_t *seen = json_object();
        double rpm = 0, tpm = 0;
        bool has_rpm = false, has_tpm = false;
        for (size_t j = 0; j < g->ndeps; j++) {
            const char *p = mg_admin_provider_of(g->deps[j]);
            if (json_object_get(seen, p) == NULL) {
                json_object_set_new(seen, p, json_true());
                json_array_append_new(prov, json_string(p));
            }
            if (g->deps[j]->rpm >= 0) {
                rpm += g->deps[j]->rpm;
                has_rpm = true;
            }
            if (g->deps[j]->tpm >= 0) {
                tpm += g->deps[j]->tpm;
                has_tpm = true;
            }
        }
        json_decref(seen);
        json_t *e = mg_admin_group_facts(g);
        json_object_set_new(e, "model_group", json_string(g->name));
        json_object_set_new(e, "providers", prov);
        json_object_set_new(e, "rpm", has_rpm ? json_integer((json_int_t) rpm) : json_null());
        json_object_set_new(e, "tpm", has_tpm ? json_integer((json_int_t) tpm) : json_null());
        json_array_append_new(data, e);
    }
    json_t *b = json_pack("{s:o}", "data", data);
    mg_gw_json_scrubbed(r, 200, b);
    json_decref(b);
}

/* ---- model management ---- */

static bool
mg_admin_store_enabled(mg_request_t *r)
{
    mg_config_t *c = r->gw->config;
    if (c->database_url != NULL && !c->store_model_in_db) {
        mg_admin_repr_error(r, 500, "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this "
                                    "feature.", "\"auth_error\"");
        return false;
    }
    return true;
}

static void
mg_admin_commit_done(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    mg_pending_t *p = ud;
    mg_request_t *r = p->r;
    if (r == NULL) {
        mg_admin_pending_free(p);
        return;
    }
    r->pending = NULL;
    r->state = MG_ATT_DONE;
    if (rc != MG_OK) {
        int st = err->status ? err->status : 500;
        if (p->kind == 4 && err->cls == MG_ERR_NO_ROUTE) {
            char *inner = mg_arena_printf(r->arena, "Model with id=%s not found in db", p->model_id);
            mg_admin_pending_free(p);
            mg_admin_repr_error(r, 400, inner, "\"auth_error\"");
            return;
        }
        if (err->cls == MG_ERR_NO_ROUTE) {
            st = (p->kind == 3 || p->kind == 8) ? 404 : 400;
        } else if (err->cls == MG_ERR_BAD_REQUEST) {
            st = 400;
        } else if (err->cls == MG_ERR_NOT_READY) {
            st = 503;
        }
        mg_log(MG_LOG_WARN, NULL, "model %s failed: %s", p->model_id ? p->model_id : "change", err->msg);
        mg_admin_pending_free(p);
        mg_gw_error(r, st, err->msg, st == 503 ? "service_unavailable" : st == 504 ? "registry_lag"
                                     : "invalid_request_error", NULL, st == 503 ? "retry-after: 1\r\n" : NULL);
        return;
    }
    char vh[64];
    snprintf(vh, sizeof(vh), "x-moongate-applied-version: %lld\r\n", (long long) version);
    json_t *body;
    if (p->kind == 4) {
        char *m = mg_arena_printf(r->arena, "Model: %s deleted successfully", p->model_id);
        body = json_pack("{s:s,s:I}", "message", m, "version", (json_int_t) version);
    } else if (p->kind == 7 || p->kind == 8) {
        body = json_pack("{s:s,s:s,s:I}", "message",
                         p->kind == 7 ? "policy stored; every worker now uses it"
                                      : "stored policy removed; the configured policy is back",
                         "kind", p->model_id, "version", (json_int_t) version);
        if (row != NULL && json_is_string(json_object_get(row, "hash"))) {
            json_object_set(body, "sha256", json_object_get(row, "hash"));
        }
    } else {
        body = json_deep_copy(row);
        /* never echo credentials: the one secret list, the one redaction */
        mg_registry_public_params(json_object_get(body, "litellm_params"));
        json_object_set_new(body, "version", json_integer(version));
    }
    mg_admin_pending_free(p);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: application/json\r\n");
    mg_buf_printf(&h, "x-litellm-call-id: %s\r\nx-litellm-version: %s\r\nx-moongate-worker: %d\r\n"
                      "x-moongate-registry-version: %lld\r\n%s",
                  r->call_id, MG_VERSION, r->gw->worker_id, (long long) version, vh);
    mg_http_respond(r->hr, 200, mg_buf_head(&h), mg_buf_len(&h), s, strlen(s));
    mg_buf_free(&h);
    free(s);
}

static void
mg_admin_model_new(mg_request_t *r)
{
    if (!mg_admin_require_admin(r) || !mg_admin_store_enabled(r) || !mg_admin_need_snapshot(r)) {
        return;
    }
    json_t *b = mg_admin_body(r);
    if (b == NULL) {
        return;
    }
    json_t *norm = NULL;
    mg_err_t err;
    if (mg_config_check_model(b, "request body", NULL, NULL, &norm, &err) != MG_OK) {
        json_decref(b);
        mg_gw_error(r, 422, err.msg, "invalid_request_error", NULL, NULL);
        return;
    }
    json_t *mi = json_object_get(norm, "model_info");
    const char *id = json_string_value(json_object_get(mi, "id"));
    char uuid[37];
    if (id == NULL) {
        mg_uuid4(uuid);
        id = uuid;
        json_object_set_new(mi, "id", json_string(uuid));
    }
    mg_deployment_t *existing = mg_registry_by_id(r->snap, id);
    if (existing != NULL) {
        char *m = mg_arena_printf(r->arena, "Model with id=%s already exists%s", id,
                                  existing->source == MG_DEP_CONFIG ? " (in config.yaml)" : "");
        json_decref(b);
        json_decref(norm);
        mg_gw_error(r, 400, m, "invalid_request_error", "model_info.id", NULL);
        return;
    }
    /* the raw litellm_params (os.environ/ references kept unresolved in the store) */
    json_t *mut = json_pack("{s:s,s:s,s:s,s:O,s:O,s:s}", "op", "model_new", "model_id", id,
                            "model_name", json_string_value(json_object_get(norm, "model_name")),
                            "litellm_params", json_object_get(b, "litellm_params"), "model_info",
                            mi, "user", "default_user_id");
    mg_pending_t *p = mg_admin_pending(r, 1, id); /* copies id, which may point into norm */
    json_decref(b);
    json_decref(norm);
    r->gw->host.commit(r->gw->host.host, mut, mg_admin_commit_done, p);
    json_decref(mut);
}

/* Applies a patch to a copy of the stored entry and validates the result. */
static bool
mg_admin_check_merged(mg_request_t *r, mg_deployment_t *d, json_t *name, json_t *lp, json_t *mi)
{
    json_t *cur = mg_registry_deployment_json(d, true);
    if (json_is_string(name) && json_string_length(name) > 0) {
        json_object_set(cur, "model_name", name);
    }
    json_t *clp = json_object_get(cur, "litellm_params");
    const char *k;
    json_t *v;
    json_object_foreach(lp, k, v) {
        if (json_is_null(v)) {
            json_object_del(clp, k);
        } else {
            json_object_set(clp, k, v);
        }
    }
    json_t *cmi = json_object_get(cur, "model_info");
    json_object_foreach(mi, k, v) {
        if (!json_is_null(v)) {
            json_object_set(cmi, k, v);
        }
    }
    json_t *norm = NULL;
    mg_err_t err;
    int rc = mg_config_check_model(cur, "updated model", NULL, NULL, &norm, &err);
    json_decref(cur);
    json_decref(norm);
    if (rc != MG_OK) {
        mg_gw_error(r, 422, err.msg, "invalid_request_error", NULL, NULL);
        return false;
    }
    return true;
}

static void
mg_admin_model_update(mg_request_t *r, const char *patch_id)
{
    if (!mg_admin_require_admin(r) || !mg_admin_store_enabled(r) || !mg_admin_need_snapshot(r)) {
        return;
    }
    json_t *b = mg_admin_body(r);
    if (b == NULL) {
        return;
    }
    json_t *mi = json_object_get(b, "model_info");
    const char *id = patch_id;
    if (id == NULL) {
        if (!json_is_object(mi)) {
            json_decref(b);
            mg_gw_error_raw(r, 400, "Authentication Error, model_info not provided",
                            "\"auth_error\"", "\"None\"", NULL);
            return;
        }
        id = json_string_value(json_object_get(mi, "id"));
        if (id == NULL) {
            json_decref(b);
            mg_gw_error_raw(r, 400, "Authentication Error, model_info.id not provided",
                            "\"auth_error\"", "\"None\"", NULL);
            return;
        }
    }
    mg_deployment_t *d = mg_registry_by_id(r->snap, id);
    if (d != NULL && d->source == MG_DEP_CONFIG) {
        json_decref(b);
        if (patch_id != NULL) {
            mg_gw_error(r, 400, "Cannot edit config-based model. Store model in DB via /model/new "
                                "first.", "validation_error", NULL, NULL);
        } else {
            mg_admin_repr_error(r, 400, "Can't edit model. Model in config. Store model in db via "
                                        "`/model/new`. to edit.", "\"auth_error\"");
        }
        return;
    }
    if (d == NULL) {
        json_decref(b);
        if (patch_id != NULL) {
            char *m = mg_arena_printf(r->arena, "Model %s not found on proxy.", id);
            mg_gw_error(r, 404, m, "not_found_error", NULL, NULL);
        } else {
            mg_gw_error_raw(r, 400, "Authentication Error, model not found", "\"auth_error\"",
                            "\"None\"", NULL);
        }
        return;
    }
    json_t *lp = json_object_get(b, "litellm_params");
    if (lp != NULL && !json_is_null(lp) && !json_is_object(lp)) {
        json_decref(b);
        mg_gw_error(r, 422, "litellm_params must be an object", "invalid_request_error",
                    "litellm_params", NULL);
        return;
    }
    if (patch_id == NULL && !json_is_object(lp) && !json_is_string(json_object_get(b, "model_name"))) {
        json_decref(b);
        mg_gw_error_raw(r, 400, "Authentication Error, litellm_params not provided",
                        "\"auth_error\"", "\"None\"", NULL);
        return;
    }
    json_t *name = json_object_get(b, "model_name");
    json_t *set_lp = json_object();
    json_t *clear = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(lp, k, v) {
        if (json_is_null(v)) {
            /* /model/update keeps fields sent as null; PATCH clears them */
            if (patch_id != NULL) {
                char ck[256];
                snprintf(ck, sizeof(ck), "litellm_params.%s", k);
                json_array_append_new(clear, json_string(ck));
            }
        } else {
            json_object_set(set_lp, k, v);
        }
    }
    json_t *set_mi = json_object();
    json_object_foreach(mi, k, v) {
        if (!json_is_null(v) && strcmp(k, "id") != 0 && strcmp(k, "db_model") != 0) {
            json_object_set(set_mi, k, v);
        }
    }
    json_t *check_lp = json_deep_copy(set_lp);
    for (size_t i = 0; i < json_array_size(clear); i++) {
        /* "litellm_params.<key>" */
        json_object_set_new(check_lp, json_string_value(json_array_get(clear, i)) + 15, json_null());
    }
    bool ok = mg_admin_check_merged(r, d, name, check_lp, set_mi);
    json_decref(check_lp);
    if (!ok) {
        json_decref(b);
        json_decref(set_lp);
        json_decref(set_mi);
        json_decref(clear);
        return;
    }
    json_t *mut = json_pack("{s:s,s:s,s:O,s:o,s:o,s:o,s:s}", "op", "model_update", "model_id", id,
                            "model_name", json_is_string(name) && json_string_length(name) ? name
                                                                                            : json_null(),
                            "litellm_params", set_lp, "model_info", set_mi, "clear", clear, "user",
                            "default_user_id");
    mg_pending_t *p = mg_admin_pending(r, patch_id ? 3 : 2, id); /* copies id (may be in b) */
    json_decref(b);
    r->gw->host.commit(r->gw->host.host, mut, mg_admin_commit_done, p);
    json_decref(mut);
}

static void
mg_admin_model_delete(mg_request_t *r)
{
    if (!mg_admin_require_admin(r) || !mg_admin_store_enabled(r) || !mg_admin_need_snapshot(r)) {
        return;
    }
    json_t *b = mg_admin_body(r);
    if (b == NULL) {
        return;
    }
    const char *id = json_string_value(json_object_get(b, "id"));
    if (id == NULL) {
        json_decref(b);
        mg_gw_error(r, 422, "id is required: {\"id\": \"<model_id>\"}", "invalid_request_error",
                    "id", NULL);
        return;
    }
    mg_deployment_t *d = mg_registry_by_id(r->snap, id);
    if (d == NULL || d->source == MG_DEP_CONFIG) {
        char *inner = mg_arena_printf(r->arena, "Model with id=%s not found in db", id);
        json_decref(b);
        mg_admin_repr_error(r, 400, inner, "\"auth_error\"");
        return;
    }
    json_t *mut = json_pack("{s:s,s:s}", "op", "model_delete", "model_id", id);
    mg_pending_t *p = mg_admin_pending(r, 4, id);
    json_decref(b);
    r->gw->host.commit(r->gw->host.host, mut, mg_admin_commit_done, p);
    json_decref(mut);
}

/* ---- reload, state, cache ---- */

static void
mg_admin_reload_done(void *ud, int rc, json_t *result, const mg_err_t *err)
{
    mg_pending_t *p = ud;
    mg_request_t *r = p->r;
    mg_admin_pending_free(p);
    if (r == NULL) {
        return;
    }
    r->pending = NULL;
    r->state = MG_ATT_DONE;
    if (rc != MG_OK) {
        int st = err->status ? err->status : 400;
        mg_gw_error(r, st, err->msg, st == 504 ? "registry_lag" : "config_error", NULL, NULL);
        return;
    }
    mg_gw_json(r, 200, result);
}

static json_t *mg_admin_costmap_state(mg_request_t *r);

static void
mg_admin_state(mg_request_t *r)
{
    json_t *workers = json_array();
    int n = mg_shm != NULL ? mg_shm->nworkers : 0;
    char *buf = mg_xmalloc(MG_SHM_STATE_BLOB + 1);
    for (int i = 0; i < n; i++) {
        if (i == r->gw->worker_id) {
            json_array_append_new(workers, r->gw->host.state(r->gw->host.host));
            continue;
        }
        mg_shm_worker_t *w = &mg_shm->workers[i];
        size_t len = mg_shm_read_blob(w, buf);
        json_t *j = len > 0 ? json_loadb(buf, len, 0, NULL) : NULL;
        if (j == NULL) {
            j = json_pack("{s:i,s:i,s:s}", "worker", i, "pid", mg_atomic_load32(&w->pid), "state",
                          "unknown");
        }
        json_array_append_new(workers, j);
    }
    free(buf);
    if (n == 0) {
        json_array_append_new(workers, r->gw->host.state(r->gw->host.host));
    }
    json_t *b = json_pack("{s:s,s:s,s:I,s:o,s:o}", "instance", mg_shm ? mg_shm->instance_id : "",
                          "version", MG_VERSION, "started_ms",
                          (json_int_t) (mg_shm ? mg_shm->started_ms : r->gw->started_ms),
                          "workers", workers, "deployments", mg_stats_json());
    json_object_set(b, "settings_not_implemented",
                    r->gw->config->unimplemented ? r->gw->config->unimplemented : json_array());
    json_object_set_new(b, "spend", mg_spend_state_json());
    json_object_set_new(b, "request_settings_ignored",
                        json_pack("{s:I}", "caching",
                                  (json_int_t) (mg_shm != NULL
                                                    ? __atomic_load_n(&mg_shm->ignored_caching,
                                                                      __ATOMIC_RELAXED)
                                                    : r->gw->ignored_caching)));
    json_object_set_new(b, "cost_map", mg_admin_costmap_state(r));
    mg_gw_json_scrubbed(r, 200, b);
    json_decref(b);
}

/* GET /moongate/requests (?limit=N, default 100) and GET /moongate/traffic (mg_reqlog.h). */
static void
mg_admin_recent(mg_request_t *r, bool traffic)
{
    json_t *b;
    if (traffic) {
        b = mg_reqlog_traffic_json();
    } else {
        char *lim = mg_admin_query(r, "limit");
        long n = lim != NULL ? strtol(lim, NULL, 10) : 100;
        b = mg_reqlog_requests_json(n > 0 && n < 100000 ? (int) n : 100);
    }
    if (!mg_reqlog_enabled()) {
        json_object_set_new(b, "reason", json_string("no shared memory was set up for the request "
                                                     "log (see the log at startup)"));
    }
    mg_gw_json_scrubbed(r, 200, b); /* ids only; scrubbed all the same, as every state answer */
    json_decref(b);
}

/* ---- the cost map: reload, schedule, source ---- */

/* The master's state JSON (its cost map, refusals, schedule), or an empty object. */
static json_t *
mg_admin_master_state(void)
{
    char *buf = mg_xmalloc(MG_SHM_MASTER_BLOB + 1);
    size_t len = mg_shm_read_master(buf);
    json_t *j = len > 0 ? json_loadb(buf, len, 0, NULL) : NULL;
    free(buf);
    return json_is_object(j) ? j : (json_decref(j), json_object());
}

/* The cost map part of /moongate/state: the master's record with the map's age now. */
static json_t *
mg_admin_costmap_state(mg_request_t *r)
{
    json_t *ms = mg_admin_master_state();
    json_t *cm = json_incref(json_object_get(ms, "cost_map"));
    json_decref(ms);
    if (!json_is_object(cm)) {
        json_decref(cm);
        /* no master (a test harness): what this worker's snapshot uses */
        const mg_costmap_t *m = r->gw->snap != NULL ? r->gw->snap->costmap : r->gw->config->costmap;
        cm = json_pack("{s:s,s:s,s:I,s:I,s:I}", "source", m->source, "sha256", m->sha256, "models",
                       (json_int_t) m->count, "bytes", (json_int_t) m->bytes, "loaded_ms",
                       (json_int_t) m->loaded_real_ms);
    }
    json_t *at = json_object_get(cm, "loaded_ms");
    if (json_is_integer(at)) {
        double age = (double) (mg_time_real_ms() - json_integer_value(at)) / 1000.0;
        json_object_set_new(cm, "age_seconds", json_real(age));
    }
    return cm;
}

static void
mg_admin_costmap_done(void *ud, int rc, json_t *result, const mg_err_t *err)
{
    mg_pending_t *p = ud;
    mg_request_t *r = p->r;
    mg_admin_pending_free(p);
    if (r == NULL) {
        return;
    }
    r->pending = NULL;
    r->state = MG_ATT_DONE;
    if (rc != MG_OK) {
        /* LiteLLM's HTTPException(detail=...) shape; the reason names line and column, or
         * the entry, or what the fetch got */
        char *clean = mg_scrub_global_cstr(err->msg);
        mg_gw_detail(r, err->status ? err->status : 500, json_string(clean));
        free(clean);
        return;
    }
    if (result == NULL) {
        mg_gw_detail(r, 503, json_string("moongate: the master did not answer"));
        return;
    }
    mg_gw_json_scrubbed(r, 200, result);
}

static void
mg_admin_costmap_call(mg_request_t *r, const char *action, double hours)
{
    if (r->gw->host.costmap == NULL) {
        mg_gw_detail(r, 503, json_string("moongate: cost map operations need the master process"));
        return;
    }
    mg_pending_t *p = mg_admin_pending(r, 6, NULL);
    r->gw->host.costmap(r->gw->host.host, action, hours, mg_admin_costmap_done, p);
}

/* POST /schedule/model_cost_map_reload?hours=N */
static void
mg_admin_costmap_schedule(mg_request_t *r)
{
    char *hs = mg_admin_query(r, "hours");
    if (hs == NULL || hs[0] == '\0') {
        /* FastAPI's answer for a missing required query parameter */
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s,s:n}]", "type", "missing", "loc",
                                       "query", "hours", "msg", "Field required", "input"));
        return;
    }
    char *end;
    double h = strtod(hs, &end);
    if (*end != '\0' || h != h) {
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s,s:s}]", "type", "int_parsing", "loc",
                                       "query", "hours", "msg", "Input should be a valid integer, "
                                       "unable to parse string as an integer", "input", hs));
        return;
    }
    if (h <= 0) {
        mg_gw_detail(r, 400, json_string("Hours must be greater than 0"));
        return;
    }
    if (h > 24 * 365) {
        mg_gw_detail(r, 400, json_string("moongate: hours must be at most 8760 (a year)"));
        return;
    }
    mg_admin_costmap_call(r, "schedule", h);
}

/* GET /schedule/model_cost_map_reload/status, from the master's record */
static void
mg_admin_costmap_status(mg_request_t *r)
{
    json_t *ms = mg_admin_master_state();
    json_t *sch = json_object_get(json_object_get(ms, "cost_map"), "schedule");
    json_t *b = json_object();
    bool on = json_is_true(json_object_get(sch, "scheduled"));
    json_object_set_new(b, "scheduled", json_boolean(on));
    const char *keys[] = {"interval_hours", "last_run", "next_run"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(sch, keys[i]);
        json_object_set(b, keys[i], v != NULL && (on || i == 1) ? v : json_null());
    }
    json_t *by = json_object_get(sch, "set_by");
    json_object_set(b, "set_by", by != NULL ? by : json_null());
    mg_gw_json(r, 200, b);
    json_decref(b);
    json_decref(ms);
}

/* GET /model/cost_map/source (LiteLLM's newer route): where the map in use came from */
static void
mg_admin_costmap_source(mg_request_t *r)
{
    json_t *cm = mg_admin_costmap_state(r);
    const char *origin = json_string_value(json_object_get(cm, "origin"));
    bool local = origin == NULL || strcmp(origin, "url") != 0;
    json_t *lr = json_object_get(cm, "last_refusal");
    json_t *b = json_pack("{s:s,s:O,s:b,s:O,s:O}", "source", local ? "local" : "remote", "url",
                          local ? json_null() : json_object_get(cm, "source"), "is_env_forced",
                          json_is_true(json_object_get(cm, "env_forced_local")), "fallback_reason",
                          json_is_object(lr) && json_is_true(json_object_get(cm, "fell_back"))
                              ? json_object_get(lr, "error")
                              : json_null(),
                          "model_count", json_object_get(cm, "models"));
    json_object_set_new(b, "moongate", cm);
    mg_gw_json_scrubbed(r, 200, b);
    json_decref(b);
}

/* GET /get/litellm_model_cost_map: the map this worker's snapshot prices with */
static void
mg_admin_costmap_get(mg_request_t *r)
{
    if (!mg_admin_need_snapshot(r)) {
        return;
    }
    mg_gw_json(r, 200, r->snap->costmap->root);
}

static void
mg_admin_cache(mg_request_t *r)
{
    json_t *b = json_pack("{s:s,s:s}", "status", "success", "message",
                          "moongate keeps no cache of provider clients or credentials to flush: a "
                          "rotated key takes effect for every request that starts after the "
                          "/config/reload or /model/update call returns, and connections using the "
                          "old key are drained as their responses finish. Nothing was done.");
    json_object_set_new(b, "endpoint", json_stringn(r->path, r->path_len));
    mg_gw_json(r, 200, b);
    json_decref(b);
}

/* ---- /health: one probe per deployment ---- */

typedef struct {
    mg_health_run_t *run;
    mg_deployment_t *d;         /* borrowed: run->snap */
    mg_client_t *client;
    mg_buf_t head;
    mg_buf_t body;
    mg_buf_t resp;
    mg_arena_t arena;           /* the probe request's pieces */
    mg_wire_t wire;
    int status;
    bool done;
} mg_health_probe_t;

struct mg_health_run_s {
    mg_request_t *r;            /* NULL once the client is gone */
    mg_pending_t *pending;      /* owned while r is set */
    mg_snapshot_t *snap;        /* ref */
    mg_health_probe_t *probes;
    size_t n, left;
    json_t *healthy, *unhealthy;
};

static json_t *
mg_health_endpoint(const mg_deployment_t *d)
{
    json_t *j = mg_registry_deployment_json(d, false);
    json_t *lp = json_incref(json_object_get(j, "litellm_params"));
    json_decref(j);
    json_object_set_new(lp, "model_name", json_string(d->model_name));
    json_object_set_new(lp, "model_id", json_string(d->id));
    return lp;
}

static void
mg_health_detach(mg_health_run_t *run)
{
    run->r = NULL;
    run->pending = NULL;
}

static void
mg_health_finish(mg_health_run_t *run)
{
    mg_request_t *r = run->r;
    if (r != NULL) {
        r->pending = NULL;
        mg_admin_pending_free(run->pending);
        run->pending = NULL;
        r->state = MG_ATT_DONE;
        json_t *b = json_pack("{s:O,s:O,s:I,s:I}", "healthy_endpoints", run->healthy,
                              "unhealthy_endpoints", run->unhealthy, "healthy_count",
                              (json_int_t) json_array_size(run->healthy), "unhealthy_count",
                              (json_int_t) json_array_size(run->unhealthy));
        mg_gw_json_scrubbed(r, 200, b);
        json_decref(b);
    }
    for (size_t i = 0; i < run->n; i++) {
        mg_buf_free(&run->probes[i].head);
        mg_buf_free(&run->probes[i].body);
        mg_buf_free(&run->probes[i].resp);
        if (run->probes[i].wire != MG_WIRE_NONE) {
            mg_arena_destroy(&run->probes[i].arena);
        }
    }
    free(run->probes);
    json_decref(run->healthy);
    json_decref(run->unhealthy);
    mg_snapshot_unref(run->snap);
    free(run);
}

static void
mg_health_result(mg_health_probe_t *pr, const char *error)
{
    mg_health_run_t *run = pr->run;
    pr->done = true;
    json_t *e = mg_health_endpoint(pr->d);
    if (error != NULL) {
        char *clean = mg_scrub_global_cstr(error);
        json_object_set_new(e, "error", json_string(clean));
        free(clean);
        json_array_append_new(run->unhealthy, e);
    } else {
        json_array_append_new(run->healthy, e);
    }
    if (--run->left == 0) {
        mg_health_finish(run);
    }
}

static void
mg_health_on_head(void *ud, const mg_http_head_t *h)
{
    mg_health_probe_t *pr = ud;
    pr->status = h->status;
}

static void
mg_health_on_body(void *ud, const char *p, size_t n)
{
    mg_health_probe_t *pr = ud;
    if (mg_buf_len(&pr->resp) < 64 * 1024) {
        mg_buf_append(&pr->resp, p, n);
    }
}

static void
mg_health_on_done(void *ud, int rc, const mg_err_t *err)
{
    mg_health_probe_t *pr = ud;
    mg_client_free(pr->client);
    pr->client = NULL;
    if (rc != MG_OK) {
        mg_health_result(pr, err->msg);
        return;
    }
    if (pr->status < 200 || pr->status >= 300) {
        mg_uperr_t e;
        mg_provider_error_http(pr->d->prov, pr->d->provider, pr->wire, pr->status,
                               mg_buf_head(&pr->resp), mg_buf_len(&pr->resp), &e);
        mg_health_result(pr, e.message);
        mg_uperr_free(&e);
        return;
    }
    mg_health_result(pr, NULL);
}

static void
mg_admin_health(mg_request_t *r)
{
    if (!mg_admin_need_snapshot(r)) {
        return;
    }
    mg_snapshot_t *s = r->snap;
    char *only = mg_admin_query(r, "model");
    char *only_id = mg_admin_query(r, "model_id");
    if (only_id != NULL && mg_registry_by_id(s, only_id) == NULL) {
        char *m = mg_arena_printf(r->arena, "Model with ID %s not found", only_id);
        mg_gw_detail(r, 404, json_pack("{s:s}", "error", m));
        return;
    }
    mg_health_run_t *run = mg_xcalloc(1, sizeof(*run));
    run->r = r;
    run->snap = mg_snapshot_ref(s);
    run->probes = mg_xcalloc(s->ndeps + 1, sizeof(mg_health_probe_t));
    run->healthy = json_array();
    run->unhealthy = json_array();
    for (size_t i = 0; i < s->ndeps; i++) {
        mg_deployment_t *d = &s->deps[i];
        if (only != NULL && strcmp(only, d->model_name) != 0 && strcmp(only, d->litellm_model) != 0) {
            continue;
        }
        if (only_id != NULL && strcmp(only_id, d->id) != 0) {
            continue;
        }
        mg_health_probe_t *pr = &run->probes[run->n++];
        pr->run = run;
        pr->d = d;
    }
    /* one extra count for this loop, so probes that finish at once cannot end the run early */
    run->left = run->n + 1;
    mg_pending_t *p = mg_admin_pending(r, 6, NULL);
    p->run = run;
    run->pending = p;
    size_t n = run->n;
    for (size_t i = 0; i < n; i++) {
        mg_health_probe_t *pr = &run->probes[i];
        mg_deployment_t *d = pr->d;
        if (d->mock_response != NULL) {
            mg_health_result(pr, NULL);
            continue;
        }
        if (d->prov == NULL) {
            mg_health_result(pr, d->provider[0] ? "moongate does not support this provider yet"
                                                : "LLM Provider NOT provided");
            continue;
        }
        if (d->upstream == NULL) {
            mg_health_result(pr, "invalid or missing api_base");
            continue;
        }
        const char *mode = json_string_value(json_object_get(d->model_info, "mode"));
        bool emb = mode != NULL && strcmp(mode, "embedding") == 0;
        const char *hm = json_string_value(json_object_get(d->model_info, "health_check_model"));
        const char *um = d->upstream_model;
        char *owned = NULL;
        if (hm != NULL) {
            char *prov;
            mg_registry_split_model(hm, NULL, &prov, &owned);
            free(prov);
            um = owned;
        }
        /* LiteLLM's probe, as a neutral request the provider writes in its own format */
        mg_op_t op = emb ? MG_OP_EMBEDDINGS : MG_OP_CHAT;
        const mg_provider_t *prov = d->prov;
        mg_wire_t w = prov->ops->wire(prov, d, op);
        if (w == MG_WIRE_NONE) {
            free(owned);
            mg_health_result(pr, emb ? "this provider has no embeddings" : "this provider has no chat");
            continue;
        }
        json_t *probe = emb ? json_pack("{s:[s]}", "input", "test from litellm")
                            : json_pack("{s:[{s:s,s:s}],s:i}", "messages", "role", "user",
                                        "content", "Hey how's it going?", "max_tokens", 1);
        mg_arena_init(&pr->arena, 4096);
        pr->wire = w;
        mg_call_t c = {
            .dep = d,
            .op = op,
            .wire = w,
            .upstream_model = mg_arena_strdup(&pr->arena, um),
            .neutral = probe,
            .drop_params = true,
            .arena = &pr->arena,
            .head = &pr->head,
        };
        free(owned);
        mg_err_t err;
        mg_api_err_t aerr;
        aerr.status = 0;
        int brc = prov->ops->build(prov, &c, &err, &aerr);
        json_decref(probe);
        if (brc != MG_OK) {
            mg_health_result(pr, aerr.status > 0 ? aerr.msg : err.msg);
            continue;
        }
        json_t *hto = json_object_get(d->model_info, "health_check_timeout");
        int tms = json_is_number(hto) ? (int) (json_number_value(hto) * 1000) : 60000;
        mg_client_timeouts_t to = {0, tms, tms};
        mg_client_cbs_t cbs = {mg_health_on_head, mg_health_on_body, mg_health_on_done};
        pr->client = mg_client_start(d->upstream, c.body.iov, c.body.niov, &to, &cbs, pr, &err);
        if (pr->client == NULL) {
            mg_health_result(pr, err.msg);
        }
    }
    if (--run->left == 0) {
        mg_health_finish(run);
    }
}

/* ---- policies stored for the fleet ---- */

static int
mg_admin_policy_kind(const char *k)
{
    for (int i = 0; i < MG_POLICY__COUNT; i++) {
        if (k != NULL && strcmp(k, mg_policy_kind_name((mg_policy_kind_t) i)) == 0) {
            return i;
        }
    }
    return -1;
}

static void
mg_admin_policy_info(mg_request_t *r)
{
    if (!mg_admin_need_snapshot(r)) {
        return;
    }
    mg_lua_spec_t specs[MG_POLICY__COUNT];
    mg_err_t err;
    if (mg_lua_specs(r->snap, specs, &err) != MG_OK) {
        mg_gw_error(r, 500, err.msg, "internal_error", NULL, NULL);
        return;
    }
    char *with_src = mg_admin_query(r, "source");
    json_t *data = json_array();
    for (int k = 0; k < MG_POLICY__COUNT; k++) {
        if (specs[k].source == NULL) {
            continue; /* an optional kind nobody configured */
        }
        json_t *e = json_pack("{s:s,s:s,s:s,s:s}", "kind", mg_policy_kind_name((mg_policy_kind_t) k),
                              "name", specs[k].name, "origin", specs[k].origin, "sha256", specs[k].hash);
        if (with_src != NULL) {
            json_object_set_new(e, "source", json_string(specs[k].source));
        }
        json_array_append_new(data, e);
    }
    mg_lua_vm_t *vm = mg_gw_vm(r->snap);
    json_t *b = json_pack("{s:o,s:s,s:I}", "data", data, "version", vm ? mg_lua_vm_version(vm) : "",
                          "registry_version", (json_int_t) r->snap->version);
    mg_gw_json(r, 200, b);
    json_decref(b);
}

static void
mg_admin_policy_update(mg_request_t *r, bool del)
{
    if (!mg_admin_require_admin(r) || !mg_admin_store_enabled(r) || !mg_admin_need_snapshot(r)) {
        return;
    }
    json_t *b = mg_admin_body(r);
    if (b == NULL) {
        return;
    }
    const char *kind = json_string_value(json_object_get(b, "kind"));
    int k = mg_admin_policy_kind(kind);
    if (k < 0) {
        json_decref(b);
        mg_gw_error(r, 422, "kind must be \"routing\", \"fallback\" or \"wildcard\"",
                    "invalid_request_error", "kind", NULL);
        return;
    }
    json_t *mut;
    if (del) {
        mut = json_pack("{s:s,s:s}", "op", "policy_delete", "name", kind);
    } else {
        const char *src = json_string_value(json_object_get(b, "source"));
        if (src == NULL || src[0] == '\0') {
            json_decref(b);
            mg_gw_error(r, 422, "source (the policy's Lua source) is required",
                        "invalid_request_error", "source", NULL);
            return;
        }
        /* refuse before committing: a policy that does not compile never reaches the fleet */
        json_t *conf = json_object_get(json_object_get(r->snap->config->policies, kind), "conf");
        char chunk[64];
        snprintf(chunk, sizeof(chunk), "store:%s", kind);
        mg_err_t err;
        if (mg_lua_check((mg_policy_kind_t) k, src, chunk, conf, true, &err) != MG_OK) {
            json_decref(b);
            mg_ml_refused("policy");
            char *m = mg_arena_printf(r->arena, "policy refused: %s", err.msg);
            mg_gw_error(r, 400, m, "policy_error", "source", NULL);
            return;
        }
        char hash[65];
        mg_sha256_hex(src, strlen(src), hash);
        mut = json_pack("{s:s,s:s,s:s,s:s,s:s}", "op", "policy_update", "name", kind, "kind", kind,
                        "source", src, "hash", hash);
    }
    json_decref(b); /* kind pointed into b: use the static name from here on */
    mg_pending_t *p = mg_admin_pending(r, del ? 8 : 7, mg_policy_kind_name((mg_policy_kind_t) k));
    r->gw->host.commit(r->gw->host.host, mut, mg_admin_commit_done, p);
    json_decref(mut);
}

/* ---- dispatch ---- */

bool
mg_admin_handle(mg_request_t *r, const char *m, size_t ml)
{
    bool get = mg_admin_method(m, ml, "GET") || mg_admin_method(m, ml, "HEAD");
    bool post = mg_admin_method(m, ml, "POST");
    /* virtual keys, teams, users, customers, budgets (mg_keys.c) */
    if (mg_keys_handle(r, m, ml)) {
        return true;
    }
    if (mg_admin_path_is(r, "/")) {
        mg_admin_root(r);
        return true;
    }
    if (mg_admin_path_is(r, "/health/readiness")) {
        mg_admin_readiness(r);
        return true;
    }
    if (get && (mg_admin_path_is(r, "/v1/models") || mg_admin_path_is(r, "/models"))) {
        mg_admin_models(r, NULL, 0);
        return true;
    }
    if (get && r->path_len > 11 && memcmp(r->path, "/v1/models/", 11) == 0) {
        mg_admin_models(r, r->path + 11, r->path_len - 11);
        return true;
    }
    if (get && r->path_len > 8 && memcmp(r->path, "/models/", 8) == 0) {
        mg_admin_models(r, r->path + 8, r->path_len - 8);
        return true;
    }
    if (get && (mg_admin_path_is(r, "/model/info") || mg_admin_path_is(r, "/v1/model/info") ||
                mg_admin_path_is(r, "/v2/model/info"))) {
        mg_admin_model_info(r);
        return true;
    }
    if (get && mg_admin_path_is(r, "/model_group/info")) {
        mg_admin_model_group_info(r);
        return true;
    }
    if (get && mg_admin_path_is(r, "/health")) {
        mg_admin_health(r);
        return true;
    }
    if (post && mg_admin_path_is(r, "/model/new")) {
        mg_admin_model_new(r);
        return true;
    }
    if (post && mg_admin_path_is(r, "/model/update")) {
        mg_admin_model_update(r, NULL);
        return true;
    }
    if (post && mg_admin_path_is(r, "/model/delete")) {
        mg_admin_model_delete(r);
        return true;
    }
    if (mg_admin_method(m, ml, "PATCH") && r->path_len > 14 && memcmp(r->path, "/model/", 7) == 0 &&
        memcmp(r->path + r->path_len - 7, "/update", 7) == 0) {
        char *id = mg_arena_strndup(r->arena, r->path + 7, r->path_len - 14);
        mg_admin_model_update(r, id);
        return true;
    }
    if (post && mg_admin_path_is(r, "/policy/update")) {
        mg_admin_policy_update(r, false);
        return true;
    }
    if (post && mg_admin_path_is(r, "/policy/delete")) {
        mg_admin_policy_update(r, true);
        return true;
    }
    if (get && mg_admin_path_is(r, "/policy/info")) {
        mg_admin_policy_info(r);
        return true;
    }
    if (post && mg_admin_path_is(r, "/config/reload")) {
        if (!mg_admin_require_admin(r)) {
            return true;
        }
        mg_pending_t *p = mg_admin_pending(r, 5, NULL);
        r->gw->host.reload(r->gw->host.host, mg_admin_reload_done, p);
        return true;
    }
    bool del = mg_admin_method(m, ml, "DELETE");
    if (post && mg_admin_path_is(r, "/reload/model_cost_map")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_costmap_call(r, "reload", 0);
        }
        return true;
    }
    if ((post || del) && mg_admin_path_is(r, "/schedule/model_cost_map_reload")) {
        if (mg_admin_require_admin(r)) {
            if (post) {
                mg_admin_costmap_schedule(r);
            } else {
                mg_admin_costmap_call(r, "unschedule", 0);
            }
        }
        return true;
    }
    if (get && mg_admin_path_is(r, "/schedule/model_cost_map_reload/status")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_costmap_status(r);
        }
        return true;
    }
    if (get && mg_admin_path_is(r, "/model/cost_map/source")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_costmap_source(r);
        }
        return true;
    }
    if (get && mg_admin_path_is(r, "/get/litellm_model_cost_map")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_costmap_get(r);
        }
        return true;
    }
    if (get && mg_admin_path_is(r, "/moongate/state")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_state(r);
        }
        return true;
    }
    if (get && mg_admin_path_is(r, "/moongate/requests")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_recent(r, false);
        }
        return true;
    }
    if (get && mg_admin_path_is(r, "/moongate/traffic")) {
        if (mg_admin_require_admin(r)) {
            mg_admin_recent(r, true);
        }
        return true;
    }
    if (mg_spend_routes_handle(r, m, ml)) {
        return true;
    }
    if (post && mg_admin_path_is(r, "/moongate/pool/evict")) {
        if (mg_admin_require_admin(r)) {
            mg_upool_evict_idle(r->gw->upool);
            if (r->gw->host.publish_state != NULL) {
                r->gw->host.publish_state(r->gw->host.host);
            }
            json_t *b = json_pack("{s:s,s:i}", "status", "success", "worker", r->gw->worker_id);
            mg_gw_json(r, 200, b);
            json_decref(b);
        }
        return true;
    }
    if (post && (mg_admin_path_is(r, "/cache/flushall") || mg_admin_path_is(r, "/cache/purge") ||
                 mg_admin_path_is(r, "/cache/delete"))) {
        mg_admin_cache(r);
        return true;
    }
    if (get && mg_admin_path_is(r, "/cache/ping")) {
        mg_gw_detail(r, 503, json_string("Service Unhealthy (503: Cache not initialized. "
                                         "litellm.cache is None)"));
        return true;
    }
    if (mg_admin_path_is(r, "/model/new") || mg_admin_path_is(r, "/model/update") ||
        mg_admin_path_is(r, "/model/delete") || mg_admin_path_is(r, "/config/reload") ||
        mg_admin_path_is(r, "/v1/models") || mg_admin_path_is(r, "/models") ||
        mg_admin_path_is(r, "/model/info") || mg_admin_path_is(r, "/health") ||
        mg_admin_path_is(r, "/moongate/state") || mg_admin_path_is(r, "/reload/model_cost_map") ||
        mg_admin_path_is(r, "/schedule/model_cost_map_reload") ||
        mg_admin_path_is(r, "/schedule/model_cost_map_reload/status") ||
        mg_admin_path_is(r, "/model/cost_map/source") ||
        mg_admin_path_is(r, "/get/litellm_model_cost_map")) {
        mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
        return true;
    }
    return false;
}

bool
mg_admin_route_known(const mg_request_t *r)
{
    static const char *const exact[] = {
        "/", "/health", "/health/readiness", "/v1/models", "/models", "/model/info",
        "/v1/model/info", "/v2/model/info", "/model_group/info", "/model/new", "/model/update",
        "/model/delete", "/config/reload", "/moongate/state", "/moongate/pool/evict",
        "/cache/flushall", "/cache/purge", "/cache/delete", "/cache/ping", "/policy/update",
        "/policy/delete", "/policy/info", "/moongate/requests", "/moongate/traffic",
        "/reload/model_cost_map",
        "/schedule/model_cost_map_reload", "/schedule/model_cost_map_reload/status",
        "/model/cost_map/source", "/get/litellm_model_cost_map", NULL,
    };
    for (const char *const *e = exact; *e; e++) {
        if (mg_admin_path_is(r, *e)) {
            return true;
        }
    }
    if (mg_keys_route_known(r) || mg_spend_routes_known(r)) {
        return true;
    }
    if ((r->path_len > 11 && memcmp(r->path, "/v1/models/", 11) == 0) ||
        (r->path_len > 8 && memcmp(r->path, "/models/", 8) == 0)) {
        return true;
    }
    return r->path_len > 14 && memcmp(r->path, "/model/", 7) == 0 &&
           memcmp(r->path + r->path_len - 7, "/update", 7) == 0;
}
