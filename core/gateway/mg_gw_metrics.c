/*
 * mg_gw_metrics.c -- the gateway's side of /metrics (see mg_gw_metrics.h).
 *
 * Where LiteLLM updates a family (prometheus.py), moongate updates it at the same event:
 *   client request answered  -> litellm_proxy_total_requests_metric{status_code}, and on
 *                               failure litellm_proxy_failed_requests_metric; on success the
 *                               total/overhead latencies, tokens and spend;
 *   upstream attempt         -> litellm_deployment_{success,failure}_responses,
 *                               litellm_deployment_total_requests, and on success
 *                               litellm_llm_api_latency_metric, _time_to_first_token_ (streams),
 *                               litellm_deployment_latency_per_output_token;
 *   cooldown, fallback       -> litellm_deployment_cooled_down, _successful/_failed_fallbacks.
 * Gauges about state (deployment state, registry versions, snapshot ages, pool connections,
 * store and hint health) are computed when a scrape arrives, from the shared stats and the
 * state every worker publishes in shared memory, so they cost nothing per request.
 *
 * The per-request cost is one tuple key (the label values concatenated), one hash, one
 * probe of a per-process cache of resolved series, and one atomic add per family.
 */
#include "mg_gw_metrics.h"
#include "mg_keys.h"

#include "../base/mg_log.h"
#include "../base/mg_metrics_litellm.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_limits.h"
#include "../registry/mg_stats.h"
#include "mg_trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the series cache ----
 *
 * Per deployment (and one for requests that reached none), the series of the last few
 * label tuples seen.  What is fixed for a deployment (its id, model, api_base, provider)
 * is not compared; the entry's key is only what varies between its requests: the event,
 * the status, the key hash, the requested model, the route, the exception class and, for
 * a wildcard, the model sent.  A deployment's cache dies with its snapshot, so it never
 * answers for a deployment that changed. */

#define MG_GWM_ENTRIES 8        /* tuples cached per deployment */
#define MG_GWM_KEY_MAX 512      /* the varying values together; longer ones are not cached */

typedef struct {
    uint32_t len;               /* 0: empty */
    char *key;                  /* malloc: the varying values, NUL-separated */
    mg_ml_values_t vals;        /* every label value; strings owned by blob */
    char *blob;                 /* malloc */
    mg_metric_t *m[MG_MF__COUNT]; /* resolved on first use */
} mg_gwm_entry_t;

typedef struct {
    mg_gwm_entry_t e[MG_GWM_ENTRIES];
    int next;                   /* round-robin replacement */
} mg_gwm_cache_t;

static mg_gwm_cache_t mg_gwm_nodep; /* requests refused before any deployment */

static void
mg_gwm_entry_clear(mg_gwm_entry_t *e)
{
    free(e->key);
    free(e->blob);
    memset(e, 0, sizeof(*e));
}

void
mg_gwm_release(mg_deployment_t *d)
{
    mg_gwm_cache_t *c = d->metrics;
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < MG_GWM_ENTRIES; i++) {
        mg_gwm_entry_clear(&c->e[i]);
    }
    free(c);
    d->metrics = NULL;
}

typedef struct {
    char buf[MG_GWM_KEY_MAX];
    size_t len;
    bool over;
} mg_gwm_key_t;

static void
mg_gwm_key_add(mg_gwm_key_t *k, const char *s, size_t n)
{
    if (k->over || k->len + n + 1 > sizeof(k->buf)) {
        k->over = true;
        return;
    }
    memcpy(k->buf + k->len, s, n);
    k->buf[k->len + n] = '\0';
    k->len += n + 1;
}

static void
mg_gwm_key_str(mg_gwm_key_t *k, const char *s)
{
    mg_gwm_key_add(k, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* The cached entry for key k of deployment d (NULL: requests without one), or NULL on a miss
 * (then *slot is where the caller fills it in, NULL when it cannot be cached). */
static mg_gwm_entry_t *
mg_gwm_find(mg_deployment_t *d, const mg_gwm_key_t *k, mg_gwm_entry_t **slot)
{
    *slot = NULL;
    if (k->over) {
        return NULL;
    }
    mg_gwm_cache_t *c = d != NULL ? d->metrics : &mg_gwm_nodep;
    if (c == NULL) {
        c = d->metrics = mg_xcalloc(1, sizeof(mg_gwm_cache_t));
    }
    for (int i = 0; i < MG_GWM_ENTRIES; i++) {
        mg_gwm_entry_t *e = &c->e[i];
        if (e->len == k->len && memcmp(e->key, k->buf, k->len) == 0) {
            return e;
        }
    }
    *slot = &c->e[c->next];
    c->next = (c->next + 1) % MG_GWM_ENTRIES;
    return NULL;
}

/* Fills a free slot with key k and copies of the label values v. */
static mg_gwm_entry_t *
mg_gwm_fill(mg_gwm_entry_t *e, const mg_gwm_key_t *k, const mg_ml_values_t *v)
{
    mg_gwm_entry_clear(e);
    size_t total = 0;
    for (int i = 0; i < MG_ML__COUNT; i++) {
        total += (v->v[i] != NULL ? strlen(v->v[i]) : 0) + 1;
    }
    e->blob = mg_xmalloc(total);
    char *p = e->blob;
    for (int i = 0; i < MG_ML__COUNT; i++) {
        const char *s = v->v[i] != NULL ? v->v[i] : "";
        size_t n = strlen(s);
        memcpy(p, s, n + 1);
        e->vals.v[i] = p;
        p += n + 1;
    }
    e->key = mg_xmalloc(k->len);
    memcpy(e->key, k->buf, k->len);
    e->len = (uint32_t) k->len;
    return e;
}

static mg_metric_t *
mg_gwm_get(mg_gwm_entry_t *e, const mg_ml_values_t *v, mg_mf_t f)
{
    if (e == NULL) {
        return mg_ml_series(f, v); /* not cacheable: resolve every time */
    }
    if (e->m[f] == NULL) {
        e->m[f] = mg_ml_series(f, &e->vals);
    }
    return e->m[f];
}

/* ---- label values ---- */

/* LiteLLM writes an absent value as str(None). */
#define MG_GWM_NONE "None"

/* hash_token(master key), computed once per config */
static const mg_config_t *mg_gwm_mk_cfg;
static char mg_gwm_mk_hash[65];

static const char *
mg_gwm_key_hash(const mg_request_t *r)
{
    const mg_config_t *c = r->gw->config;
    if (r->who.token != NULL) {
        return r->who.token; /* a virtual key's hash */
    }
    if (!r->who.master || c->master_key == NULL) {
        return MG_GWM_NONE;
    }
    if (mg_gwm_mk_cfg != c) {
        mg_sha256_hex(c->master_key, strlen(c->master_key), mg_gwm_mk_hash);
        mg_gwm_mk_cfg = c;
    }
    return mg_gwm_mk_hash;
}

/* The group the client asked for, once resolved ("None" before, or for a name that matched
 * nothing). */
static const char *
mg_gwm_requested(const mg_request_t *r)
{
    if (r->primary_group != NULL) {
        return r->primary_group;
    }
    return r->dep != NULL || r->group != NULL ? r->group_name : MG_GWM_NONE;
}

/* The values every family of a request may use (key, team and user ones once keys exist). */
static void
mg_gwm_base_values(const mg_request_t *r, mg_ml_values_t *v)
{
    for (int i = 0; i < MG_ML__COUNT; i++) {
        v->v[i] = MG_GWM_NONE;
    }
    v->v[MG_ML_HASHED_API_KEY] = mg_gwm_key_hash(r);
    const mg_vkey_t *k = r->who.key;
    if (k != NULL) {
        if (k->key_alias != NULL) {
            v->v[MG_ML_API_KEY_ALIAS] = k->key_alias;
        }
        if (k->team != NULL) {
            v->v[MG_ML_TEAM] = k->team->id;
            if (k->team->alias != NULL) {
                v->v[MG_ML_TEAM_ALIAS] = k->team->alias;
            }
        }
        if (k->user_id != NULL) {
            v->v[MG_ML_USER] = k->user_id;
        }
        if (k->user != NULL && k->user->email != NULL) {
            v->v[MG_ML_USER_EMAIL] = k->user->email;
        }
    }
    /* a name the client made up would be a new series per request: only resolved names */
    v->v[MG_ML_REQUESTED_MODEL] = mg_gwm_requested(r);
}

static void
mg_gwm_deployment_values(const mg_request_t *r, const mg_deployment_t *d, mg_ml_values_t *v,
                         char *base, size_t baselen)
{
    v->v[MG_ML_LITELLM_MODEL_NAME] = d->litellm_model;
    v->v[MG_ML_MODEL_ID] = d->id;
    v->v[MG_ML_MODEL_GROUP] = d->model_name;
    v->v[MG_ML_API_PROVIDER] = d->provider[0] != '\0' ? d->provider : MG_GWM_NONE;
    const char *b = d->prov != NULL ? mg_provider_base(d->prov, d) : d->api_base;
    if (b != NULL) {
        snprintf(base, baselen, "%.*s", (int) strcspn(b, "?"), b); /* never a query's key */
        v->v[MG_ML_API_BASE] = base;
    }
    v->v[MG_ML_MODEL] = r->upstream_model != NULL ? r->upstream_model : d->upstream_model;
}

/* LiteLLM's exception_class: "<Provider>.<ExceptionClass>" ("Openai.RateLimitError"), the class
 * read from the "litellm.<Class>:" its messages start with. */
static const char *
mg_gwm_exc_class(const char *msg, const char *provider, char *buf, size_t len)
{
    const char *cls = NULL;
    size_t cl = 0;
    if (msg != NULL && strncmp(msg, "litellm.", 8) == 0) {
        cls = msg + 8;
        cl = strcspn(cls, ": ");
    }
    if (cls == NULL || cl == 0) {
        return "ProxyException"; /* refused by the proxy itself, as LiteLLM's ProxyException */
    }
    if (provider != NULL && provider[0] != '\0') {
        snprintf(buf, len, "%c%s.%.*s", provider[0] >= 'a' && provider[0] <= 'z'
                                             ? provider[0] - 32 : provider[0],
                 provider + 1, (int) cl, cls);
    } else {
        snprintf(buf, len, "%.*s", (int) cl, cls);
    }
    return buf;
}

/* The route label: the path, or the route's canonical name when the path carries a model. */
static const char *
mg_gwm_route(const mg_request_t *r, char *buf, size_t len)
{
    if (r->path_len >= len || memmem(r->path, r->path_len, "/deployments/", 13) != NULL ||
        memmem(r->path, r->path_len, "/engines/", 9) != NULL ||
        memmem(r->path, r->path_len, "/models/", 8) != NULL) {
        return r->route_path != NULL ? r->route_path : r->api->route_path;
    }
    memcpy(buf, r->path, r->path_len);
    buf[r->path_len] = '\0';
    return buf;
}

/* The answer's cost (mg_proxy_cost: the cost map and the deployment's prices), -1 unknown. */
static double
mg_gwm_cost(const mg_request_t *r)
{
    return r->dep != NULL && r->cost_known ? r->cost_usd : -1;
}

/* ---- events ---- */

enum { MG_GWM_REQ_OK = 1, MG_GWM_REQ_FAIL, MG_GWM_ATT_OK, MG_GWM_ATT_FAIL };

/* The varying part of a tuple (see the cache above). */
static void
mg_gwm_key(mg_gwm_key_t *k, const mg_request_t *r, int event, int status, const char *cls)
{
    char head[3] = {(char) event, (char) (status >> 8), (char) (status & 0xff)};
    k->len = 0;
    k->over = false;
    mg_gwm_key_add(k, head, sizeof(head));
    mg_gwm_key_str(k, mg_gwm_key_hash(r));
    if (r->who.key != NULL) {
        /* alias, team and user follow the key, but may change with a new snapshot */
        const mg_vkey_t *vk = r->who.key;
        mg_gwm_key_str(k, vk->key_alias);
        mg_gwm_key_str(k, vk->team != NULL ? vk->team->id : NULL);
        mg_gwm_key_str(k, vk->team != NULL ? vk->team->alias : NULL);
        mg_gwm_key_str(k, vk->user_id);
        mg_gwm_key_str(k, vk->user != NULL ? vk->user->email : NULL);
    }
    mg_gwm_key_str(k, mg_gwm_requested(r));
    if (event == MG_GWM_REQ_OK || event == MG_GWM_REQ_FAIL) {
        mg_gwm_key_add(k, r->path, r->path_len);
    }
    if (cls != NULL) {
        mg_gwm_key_str(k, cls);
    }
    if (r->dep != NULL && r->dep->wildcard) {
        mg_gwm_key_str(k, r->upstream_model);
    }
}

void
mg_gwm_request_end(mg_request_t *r)
{
    if (r->api == NULL || r->hr == NULL) {
        return;
    }
    int status = r->hr->status > 0 ? r->hr->status : 499; /* closed before an answer */
    bool ok = status < 400 && !r->stream_errored;
    char cls[160];
    const char *ec = ok ? NULL
                        : mg_gwm_exc_class(r->first_error, r->dep != NULL ? r->dep->provider : NULL,
                                           cls, sizeof(cls));
    mg_gwm_key_t k;
    mg_gwm_key(&k, r, ok ? MG_GWM_REQ_OK : MG_GWM_REQ_FAIL, status, ec);
    mg_gwm_entry_t *slot;
    mg_gwm_entry_t *e = mg_gwm_find(r->dep, &k, &slot);
    mg_ml_values_t v;
    if (e == NULL) {
        mg_gwm_base_values(r, &v);
        char st[16], route[160], base[512];
        snprintf(st, sizeof(st), "%d", status);
        v.v[MG_ML_STATUS_CODE] = st;
        v.v[MG_ML_ROUTE] = mg_gwm_route(r, route, sizeof(route));
        if (r->dep != NULL) {
            mg_gwm_deployment_values(r, r->dep, &v, base, sizeof(base));
        }
        if (!ok) {
            v.v[MG_ML_EXCEPTION_STATUS] = st;
            v.v[MG_ML_EXCEPTION_CLASS] = ec;
        }
        if (slot != NULL) {
            e = mg_gwm_fill(slot, &k, &v);
        }
    }
    mg_metric_inc(mg_gwm_get(e, &v, MG_MF_PROXY_TOTAL_REQUESTS), 1);
    if (!ok) {
        mg_metric_inc(mg_gwm_get(e, &v, MG_MF_PROXY_FAILED_REQUESTS), 1);
        return;
    }
    double total = (double) (mg_time_mono_us() - r->hr->start_us) / 1e6;
    mg_metric_observe(mg_gwm_get(e, &v, MG_MF_REQUEST_TOTAL_LATENCY), total);
    if (r->dep != NULL) {
        double over = total - (double) r->upstream_us_total / 1e6;
        mg_metric_observe(mg_gwm_get(e, &v, MG_MF_OVERHEAD_LATENCY), over > 0 ? over : 0);
    }
    if (r->usage.seen) {
        mg_metric_inc(mg_gwm_get(e, &v, MG_MF_INPUT_TOKENS), (uint64_t) r->usage.prompt_tokens);
        mg_metric_inc(mg_gwm_get(e, &v, MG_MF_OUTPUT_TOKENS),
                      (uint64_t) r->usage.completion_tokens);
        mg_metric_inc(mg_gwm_get(e, &v, MG_MF_TOTAL_TOKENS), (uint64_t) mg_usage_total(&r->usage));
    }
    double cost = mg_gwm_cost(r);
    if (cost > 0) {
        mg_metric_add(mg_gwm_get(e, &v, MG_MF_SPEND), cost);
    }
}

void
mg_gwm_attempt_end(mg_request_t *r, bool ok, const mg_uperr_t *err)
{
    mg_deployment_t *d = r->dep;
    if (d == NULL) {
        return;
    }
    int status = ok ? 200 : err != NULL ? err->status : 500;
    char cls[160];
    const char *ec = ok ? NULL
                        : mg_gwm_exc_class(err != NULL ? err->message : NULL, d->provider, cls,
                                           sizeof(cls));
    mg_gwm_key_t k;
    mg_gwm_key(&k, r, ok ? MG_GWM_ATT_OK : MG_GWM_ATT_FAIL, status, ec);
    mg_gwm_entry_t *slot;
    mg_gwm_entry_t *e = mg_gwm_find(d, &k, &slot);
    mg_ml_values_t v;
    if (e == NULL) {
        mg_gwm_base_values(r, &v);
        char base[512], es[16];
        mg_gwm_deployment_values(r, d, &v, base, sizeof(base));
        if (!ok) {
            snprintf(es, sizeof(es), "%d", status);
            v.v[MG_ML_EXCEPTION_STATUS] = es;
            v.v[MG_ML_EXCEPTION_CLASS] = ec;
        }
        if (slot != NULL) {
            e = mg_gwm_fill(slot, &k, &v);
        }
    }
    mg_metric_inc(mg_gwm_get(e, &v, MG_MF_DEPLOYMENT_TOTAL_REQUESTS), 1);
    if (!ok) {
        mg_metric_inc(mg_gwm_get(e, &v, MG_MF_DEPLOYMENT_FAILURE_RESPONSES), 1);
        return;
    }
    mg_metric_inc(mg_gwm_get(e, &v, MG_MF_DEPLOYMENT_SUCCESS_RESPONSES), 1);
    double secs = (double) (mg_time_mono_us() - r->t_upstream_us) / 1e6;
    mg_metric_observe(mg_gwm_get(e, &v, MG_MF_LLM_API_LATENCY), secs);
    if (r->stream && r->t_first_byte_us > 0) {
        mg_metric_observe(mg_gwm_get(e, &v, MG_MF_LLM_API_TTFT),
                          (double) (r->t_first_byte_us - r->t_upstream_us) / 1e6);
    }
    if (r->usage.completion_tokens > 0) {
        mg_metric_observe(mg_gwm_get(e, &v, MG_MF_DEPLOYMENT_LATENCY_PER_OUTPUT_TOKEN),
                          secs / (double) r->usage.completion_tokens);
    }
}

void
mg_gwm_cooled_down(mg_request_t *r, const mg_deployment_t *d, int status)
{
    mg_ml_values_t v;
    mg_gwm_base_values(r, &v);
    char base[512], es[16];
    mg_gwm_deployment_values(r, d, &v, base, sizeof(base));
    snprintf(es, sizeof(es), "%d", status);
    v.v[MG_ML_EXCEPTION_STATUS] = es;
    mg_metric_inc(mg_ml_series(MG_MF_DEPLOYMENT_COOLED_DOWN, &v), 1);
}

void
mg_gwm_fallback(mg_request_t *r, const char *fallback_group, bool ok)
{
    mg_ml_values_t v;
    mg_gwm_base_values(r, &v);
    char es[16], cls[160];
    v.v[MG_ML_FALLBACK_MODEL] = fallback_group;
    snprintf(es, sizeof(es), "%d", r->first_status);
    v.v[MG_ML_EXCEPTION_STATUS] = es;
    v.v[MG_ML_EXCEPTION_CLASS] = mg_gwm_exc_class(r->first_error, NULL, cls, sizeof(cls));
    if (r->dep != NULL) {
        v.v[MG_ML_MODEL_ID] = r->dep->id;
    }
    mg_metric_inc(mg_ml_series(ok ? MG_MF_DEPLOYMENT_SUCCESSFUL_FALLBACKS
                                  : MG_MF_DEPLOYMENT_FAILED_FALLBACKS, &v), 1);
}

void
mg_gwm_in_flight(mg_gw_t *gw, int64_t n)
{
    static mg_metric_t *m; /* this process's series (a respawned worker resolves its own) */
    (void) gw;
    if (m == NULL) {
        m = mg_ml_series(MG_MF_IN_FLIGHT_REQUESTS, NULL);
    }
    mg_metric_set(m, (double) n);
}

/* ---- at scrape time ---- */

static void
mg_gwm_set_worker(mg_mf_t f, int worker, const char *label, double val)
{
    mg_ml_values_t v;
    memset(&v, 0, sizeof(v));
    v.v[MG_ML_STATE] = label;
    v.v[MG_ML_KIND] = label;
    mg_metric_set(mg_ml_series_worker(f, worker, &v), val);
}

/* From the state every live worker publishes: versions, snapshot ages, pool connections. */
static void
mg_gwm_workers(void)
{
    int64_t now = mg_time_real_ms();
    char *blob = mg_xmalloc(MG_SHM_STATE_BLOB + 1);
    bool master_ok = false, redis_seen = false, redis_ok = false;
    for (int i = 0; i < mg_shm->nworkers && i < MG_SHM_MAX_WORKERS; i++) {
        mg_shm_worker_t *s = &mg_shm->workers[i];
        int32_t state = mg_atomic_load32(&s->state);
        if (state == MG_WSTATE_NONE || state == MG_WSTATE_DEAD) {
            continue;
        }
        mg_gwm_set_worker(MG_MF_REGISTRY_VERSION, i, NULL,
                          (double) mg_atomic_load64(&s->version));
        size_t n = mg_shm_read_blob(s, blob);
        json_t *st = n > 0 ? json_loadb(blob, n, 0, NULL) : NULL;
        if (st == NULL) {
            continue;
        }
        /* the age when the worker published, plus the time since */
        json_t *age = json_object_get(st, "snapshot_age_seconds");
        if (json_is_number(age)) {
            double a = json_number_value(age) +
                       (double) (now - mg_atomic_load64(&s->heartbeat_ms)) / 1000.0;
            mg_gwm_set_worker(MG_MF_SNAPSHOT_AGE_SECONDS, i, NULL, a > 0 ? a : 0);
        }
        json_t *ls = json_object_get(st, "live_snapshots");
        if (json_is_integer(ls)) {
            mg_gwm_set_worker(MG_MF_LIVE_SNAPSHOTS, i, NULL, (double) json_integer_value(ls));
        }
        json_t *pool = json_object_get(st, "pool");
        mg_gwm_set_worker(MG_MF_UPSTREAM_CONNECTIONS, i, "idle",
                          (double) json_integer_value(json_object_get(pool, "connections_idle")));
        mg_gwm_set_worker(MG_MF_UPSTREAM_CONNECTIONS, i, "busy",
                          (double) json_integer_value(json_object_get(pool, "connections_busy")));
        json_t *hints = json_object_get(st, "hints");
        master_ok = master_ok || json_is_true(json_object_get(hints, "master_connected"));
        json_t *redis = json_object_get(hints, "redis");
        if (json_is_object(redis)) {
            redis_seen = true;
            redis_ok = redis_ok || json_is_true(json_object_get(redis, "connected"));
        }
        json_decref(st);
    }
    free(blob);
    mg_ml_values_t v;
    memset(&v, 0, sizeof(v));
    v.v[MG_ML_KIND] = "master";
    mg_metric_set(mg_ml_series(MG_MF_HINTS_UP, &v), master_ok ? 1 : 0);
    if (redis_seen) {
        v.v[MG_ML_KIND] = "redis";
        mg_metric_set(mg_ml_series(MG_MF_HINTS_UP, &v), redis_ok ? 1 : 0);
    }
}

/* litellm_deployment_state of every deployment served now: 2 when cooled down (or every call
 * failed this minute), 1 when some failed, else 0; deleted deployments disappear. */
static void
mg_gwm_deployments(mg_gw_t *gw)
{
    mg_snapshot_t *s = gw->snap;
    mg_metrics_hide_family(mg_mf[MG_MF_DEPLOYMENT_STATE]);
    if (s == NULL) {
        return;
    }
    mg_request_t fake; /* only what the label helpers read */
    memset(&fake, 0, sizeof(fake));
    for (size_t i = 0; i < s->ndeps; i++) {
        mg_deployment_t *d = &s->deps[i];
        if (d->stats_slot < 0) {
            continue;
        }
        int64_t rpm, tpm, fails, succ;
        mg_stats_minute(d->stats_slot, &rpm, &tpm, &fails, &succ);
        double state = mg_stats_cooldown_left(d->stats_slot) > 0 ? 2
                       : fails > 0 && succ == 0                 ? 2
                       : fails > 0                              ? 1
                                                                : 0;
        mg_ml_values_t v;
        memset(&v, 0, sizeof(v));
        char base[512];
        mg_gwm_deployment_values(&fake, d, &v, base, sizeof(base));
        mg_metric_set(mg_ml_series(MG_MF_DEPLOYMENT_STATE, &v), state);
    }
}

/* LiteLLM's budget gauges of every key and team with a max_budget (from the shared counters;
 * a deleted key's series disappear). */
static void
mg_gwm_budgets(mg_gw_t *gw)
{
    static const mg_mf_t fams[] = {MG_MF_REMAINING_API_KEY_BUDGET, MG_MF_API_KEY_MAX_BUDGET,
                                   MG_MF_API_KEY_BUDGET_REMAINING_HOURS, MG_MF_REMAINING_TEAM_BUDGET,
                                   MG_MF_TEAM_MAX_BUDGET, MG_MF_TEAM_BUDGET_REMAINING_HOURS};
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        mg_metrics_hide_family(mg_mf[fams[i]]);
    }
    const mg_auth_t *a = gw->snap != NULL ? gw->snap->auth : NULL;
    if (a == NULL) {
        return;
    }
    int64_t now = mg_time_real_ms();
    for (size_t i = 0; i < a->nkeys; i++) {
        const mg_vkey_t *k = &a->keys[i];
        if (k->lim.max_budget < 0) {
            continue;
        }
        double spend = mg_lim_spend_of(MG_ENT_KEY, k->token, k->spend,
                                       mg_keys_spend_epoch(k->row));
        mg_ml_values_t v;
        memset(&v, 0, sizeof(v));
        v.v[MG_ML_HASHED_API_KEY] = k->token;
        v.v[MG_ML_API_KEY_ALIAS] = k->key_alias != NULL ? k->key_alias : MG_GWM_NONE;
        mg_metric_set(mg_ml_series(MG_MF_REMAINING_API_KEY_BUDGET, &v), k->lim.max_budget - spend);
        mg_metric_set(mg_ml_series(MG_MF_API_KEY_MAX_BUDGET, &v), k->lim.max_budget);
        if (k->lim.reset_at_ms > 0) {
            double h = (double) (k->lim.reset_at_ms - now) / 3600000.0;
            mg_metric_set(mg_ml_series(MG_MF_API_KEY_BUDGET_REMAINING_HOURS, &v), h > 0 ? h : 0);
        }
    }
    for (size_t i = 0; i < a->nteams; i++) {
        const mg_team_t *t = &a->teams[i];
        if (t->lim.max_budget < 0) {
            continue;
        }
        double spend = mg_lim_spend_of(MG_ENT_TEAM, t->id, t->spend,
                                       mg_keys_spend_epoch(t->row));
        mg_ml_values_t v;
        memset(&v, 0, sizeof(v));
        v.v[MG_ML_TEAM] = t->id;
        v.v[MG_ML_TEAM_ALIAS] = t->alias != NULL ? t->alias : MG_GWM_NONE;
        mg_metric_set(mg_ml_series(MG_MF_REMAINING_TEAM_BUDGET, &v), t->lim.max_budget - spend);
        mg_metric_set(mg_ml_series(MG_MF_TEAM_MAX_BUDGET, &v), t->lim.max_budget);
        if (t->lim.reset_at_ms > 0) {
            double h = (double) (t->lim.reset_at_ms - now) / 3600000.0;
            mg_metric_set(mg_ml_series(MG_MF_TEAM_BUDGET_REMAINING_HOURS, &v), h > 0 ? h : 0);
        }
    }
}

void
mg_gwm_worker_tick(mg_gw_t *gw)
{
    static mg_metric_t *dropped;
    if (dropped == NULL) {
        dropped = mg_ml_series(MG_MF_OTEL_SPANS_DROPPED, NULL);
    }
    mg_metric_set(dropped, (double) mg_trace_dropped_spans(gw->otel_exp));
}

void
mg_gwm_scrape(mg_gw_t *gw, mg_buf_t *out)
{
    mg_gwm_workers();
    mg_gwm_deployments(gw);
    mg_gwm_budgets(gw);
    if (gw->host.store_status != NULL) {
        json_t *st = gw->host.store_status(gw->host.host);
        json_t *type = json_object_get(st, "type");
        bool none = json_is_string(type) && strcmp(json_string_value(type), "none") == 0;
        if (!none) {
            mg_metric_set(mg_ml_series(MG_MF_STORE_UP, NULL),
                          json_is_true(json_object_get(st, "connected")) ? 1 : 0);
        }
        json_decref(st);
    }
    mg_metrics_expose(out);
}
