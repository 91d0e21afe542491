/*
 * mg_gw.c -- request dispatch, authentication and the response helpers
 * shared by the LLM routes (mg_proxy.c) and the admin routes (mg_admin.c).
 */
#include "mg_gw.h"
#include "mg_keys.h"
#include "mg_gw_metrics.h"
#include "mg_admit.h"
#include "mg_keyauth.h"
#include "mg_trace.h"
#include "mg_ui.h"

#include "../base/mg_log.h"
#include "../base/mg_scrub.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void mg_gw_on_request(mg_http_req_t *hr);
static void mg_gw_on_abort(mg_http_req_t *hr);
static void mg_gw_on_drain(mg_http_req_t *hr);
static void mg_gw_on_free(mg_http_req_t *hr);
static void mg_gw_on_complete(mg_http_req_t *hr, int status, const char *body, size_t len);

/* ---- snapshot attach hooks ---- */

static int
mg_gw_attach(void *ud, mg_snapshot_t *s, mg_deployment_t *d, mg_err_t *err)
{
    mg_gw_t *gw = ud;
    (void) s;
    d->prov = mg_provider_find(d->provider);
    d->stats_slot = mg_stats_slot(d->id);
    const mg_provider_t *p = d->prov;
    if (p != NULL && p->ops->attach != NULL && d->mock_response == NULL) {
        p->ops->attach(p, d); /* credentials read once per snapshot, before the fingerprint */
    }
    /* every credential the provider would use, the environment's too: a rotation is a new client */
    mg_provider_cred_hash(d->prov, d, d->cred_hash);
    if (d->prov == NULL || d->mock_response != NULL) {
        return MG_OK; /* answered offline, or refused at request time with a clear error */
    }
    const char *base = mg_provider_base(d->prov, d);
    if (base == NULL) {
        return MG_OK; /* refused at request time: "api_base is required" */
    }
    mg_err_t e2;
    mg_upstream_t *u = mg_upstream_get(gw->upool, d->provider, base, true, d->cred_hash, gw->gen + 1,
                                       &e2);
    if (u == NULL) {
        /* a bad api_base is the deployment's problem, not the whole snapshot's */
        mg_log(MG_LOG_WARN, NULL, "deployment \"%s\" (%s): %s", d->id, d->model_name, e2.msg);
        (void) err;
        return MG_OK;
    }
    d->upstream = u;
    return MG_OK;
}

static void
mg_gw_detach(void *ud, mg_snapshot_t *s, mg_deployment_t *d)
{
    (void) s;
    mg_gw_t *gw = ud;
    if (d->upstream != NULL) {
        mg_upstream_unref(d->upstream);
        d->upstream = NULL;
    }
    const mg_provider_t *p = d->prov;
    if (p != NULL && p->ops->release != NULL && d->pstate != NULL) {
        p->ops->release(p, d);
        d->pstate = NULL;
    }
    mg_gwm_release(d);
    (void) gw;
}

static void
mg_gw_snapshot_freed(void *ext)
{
    mg_gw_snapext_t *x = ext;
    x->gw->live_snapshots--;
    if (x->vm != NULL) {
        x->gw->live_vms--;
        mg_lua_vm_destroy(x->vm);
    }
    free(x);
}

const mg_registry_hooks_t *
mg_gw_registry_hooks(mg_gw_t *gw)
{
    static mg_registry_hooks_t hooks;
    hooks.attach = mg_gw_attach;
    hooks.detach = mg_gw_detach;
    hooks.ud = gw;
    return &hooks;
}

/* ---- lifecycle ---- */

static void
mg_gw_apply_root_path(mg_gw_t *gw)
{
    const char *rp = getenv("SERVER_ROOT_PATH");
    gw->root_path[0] = '\0';
    if (rp == NULL || rp[0] == '\0' || strcmp(rp, "/") == 0) {
        return;
    }
    snprintf(gw->root_path, sizeof(gw->root_path), "%s%s", rp[0] == '/' ? "" : "/", rp);
    size_t l = strlen(gw->root_path);
    while (l > 1 && gw->root_path[l - 1] == '/') {
        gw->root_path[--l] = '\0';
    }
}

static void
mg_gw_server_conf(mg_gw_t *gw, mg_http_server_conf_t *hc)
{
    memset(hc, 0, sizeof(*hc));
    hc->on_request = mg_gw_on_request;
    hc->on_abort = mg_gw_on_abort;
    hc->on_drain = mg_gw_on_drain;
    hc->on_free = mg_gw_on_free;
    hc->on_complete = mg_gw_on_complete;
    hc->ud_size = sizeof(mg_request_t);
    hc->max_body = gw->config->max_request_size;
    hc->keepalive_timeout_ms = gw->config->keepalive_timeout_ms;
    hc->header_timeout_ms = gw->config->header_timeout_ms;
    hc->body_timeout_ms = gw->config->body_timeout_ms;
    hc->data = gw;
}

static void
mg_gw_pool_conf(mg_gw_t *gw, mg_upool_conf_t *pc)
{
    pc->connect_timeout_ms = gw->config->upstream_connect_timeout_ms;
    pc->idle_timeout_ms = gw->config->upstream_idle_timeout_ms;
    pc->max_idle = gw->config->upstream_max_idle;
}

/* Tracing follows the config: the exporter is made the first time a config asks for "otel"
 * and kept (with its counters) when a later one does not; only new requests see the change. */
static void
mg_gw_apply_otel(mg_gw_t *gw)
{
    if (gw->config->otel && gw->otel_exp == NULL) {
        gw->otel_exp = mg_trace_create(gw->base, gw->worker_id);
    }
    gw->otel = gw->config->otel ? gw->otel_exp : NULL;
}

mg_gw_t *
mg_gw_create(struct event_base *base, int worker_id, mg_config_t *cfg, const mg_gw_host_t *host)
{
    mg_gw_t *gw = mg_xcalloc(1, sizeof(*gw));
    gw->base = base;
    gw->worker_id = worker_id;
    gw->config = mg_config_ref(cfg);
    mg_log_set_json(cfg->json_logs);
    gw->host = *host;
    gw->started_ms = mg_time_real_ms();
    mg_map_init(&gw->unpriced_said);
    snprintf(gw->not_ready_reason, sizeof(gw->not_ready_reason), "the registry is loading");
    mg_gw_apply_root_path(gw);
    mg_http_server_conf_t hc;
    mg_gw_server_conf(gw, &hc);
    gw->http = mg_http_server_create(base, &hc);
    gw->http->conf.data = gw;
    mg_upool_conf_t pc;
    mg_gw_pool_conf(gw, &pc);
    gw->upool = mg_upool_create(base, &pc);
    mg_token_conf_t tc = {.io = mg_gw_token_io(gw)};
    gw->tokens = mg_token_cache_create(&tc);
    mg_gw_apply_otel(gw);
    return gw;
}

void
mg_gw_destroy(mg_gw_t *gw)
{
    mg_http_server_destroy(gw->http); /* finalises what is left: their spans are queued */
    mg_token_cache_destroy(gw->tokens); /* after the requests that could wait on it */
    gw->tokens = NULL;
    mg_trace_destroy(gw->otel_exp);
    gw->otel_exp = NULL;
    gw->otel = NULL;
    mg_snapshot_unref(gw->snap);
    gw->snap = NULL;
    mg_upool_destroy(gw->upool);
    mg_config_unref(gw->config);
    mg_map_free(&gw->unpriced_said);
    free(gw);
}

void
mg_gw_set_config(mg_gw_t *gw, mg_config_t *cfg)
{
    mg_config_t *old = gw->config;
    gw->config = mg_config_ref(cfg);
    mg_config_unref(old);
    gw->http->conf.max_body = cfg->max_request_size;
    mg_log_set_json(cfg->json_logs); /* json_logs, or JSON_LOGS (read by the config) */
    gw->http->conf.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
    gw->http->conf.header_timeout_ms = cfg->header_timeout_ms;
    gw->http->conf.body_timeout_ms = cfg->body_timeout_ms;
    mg_upool_conf_t pc;
    mg_gw_pool_conf(gw, &pc);
    mg_upool_set_conf(gw->upool, &pc);
    mg_gw_apply_otel(gw);
}

/* Whether a deployment of snapshot ud has the token cache key (its credential fingerprint). */
static bool
mg_gw_token_key_used(void *ud, const char *key)
{
    const mg_snapshot_t *s = ud;
    for (size_t i = 0; i < s->ndeps; i++) {
        const mg_provider_t *p = s->deps[i].prov;
        if (p != NULL && p->ops->prepare != NULL && strcmp(s->deps[i].cred_hash, key) == 0) {
            return true;
        }
    }
    return false;
}

void
mg_gw_set_snapshot(mg_gw_t *gw, mg_snapshot_t *snap)
{
    mg_snapshot_t *old = gw->snap;
    gw->snap = mg_snapshot_ref(snap);
    if (snap->ext == NULL) {
        mg_gw_snapext_t *x = mg_xcalloc(1, sizeof(*x));
        x->gw = gw;
        mg_lua_limits_t lim = {snap->config->policy_budget_ms, snap->config->policy_memory_mb};
        mg_err_t err;
        x->vm = mg_lua_vm_create(snap, &lim, &err);
        if (x->vm == NULL) {
            mg_log(MG_LOG_ERROR, NULL, "registry version %lld: no policy state (%s); requests use "
                                       "the configured order", (long long) snap->version, err.msg);
        } else {
            gw->live_vms++;
        }
        snap->ext = x;
        snap->ext_free = mg_gw_snapshot_freed;
        gw->live_snapshots++;
    }
    mg_scrub_set_global(snap->scrub); /* every log line of this worker hides its secrets */
    static size_t short_said;
    size_t short_n = mg_scrub_set_ignored(snap->scrub);
    if (short_n > short_said) {
        short_said = short_n;
        mg_log(MG_LOG_WARN, NULL, "%zu configured secret(s) are shorter than 6 characters: they "
                                  "cannot be told apart from ordinary text, so logs and errors do "
                                  "not hide them", short_n);
    }
    gw->gen++;
    gw->ready = true;
    gw->not_ready_reason[0] = '\0';
    mg_snapshot_unref(old);
    /* upstreams the new snapshot does not use start draining now */
    mg_upool_sweep(gw->upool, gw->gen);
    /* and tokens of credentials it does not use are never served again */
    mg_token_cache_retain(gw->tokens, mg_gw_token_key_used, snap);
}

void
mg_gw_set_not_ready(mg_gw_t *gw, const char *reason)
{
    snprintf(gw->not_ready_reason, sizeof(gw->not_ready_reason), "%s", reason);
}

void
mg_gw_drain(mg_gw_t *gw, bool close_idle)
{
    gw->draining = true;
    mg_http_server_drain(gw->http);
    if (close_idle) {
        mg_http_server_close_idle(gw->http);
    }
}

mg_snapshot_t *
mg_gw_snapshot(mg_gw_t *gw)
{
    return gw->snap;
}

/* ---- response helpers ---- */

void
mg_gw_common_headers(mg_request_t *r, mg_buf_t *h)
{
    mg_buf_printf(h, "x-litellm-call-id: %s\r\nx-litellm-version: %s\r\nx-moongate-worker: %d\r\n",
                  r->call_id, MG_VERSION, r->gw->worker_id);
    mg_snapshot_t *s = r->snap != NULL ? r->snap : r->gw->snap;
    if (s != NULL) {
        mg_buf_printf(h, "x-moongate-registry-version: %lld\r\n", (long long) s->version);
        mg_admit_headers(r, h);
        mg_lua_vm_t *vm = mg_gw_vm(s);
        if (vm != NULL) {
            mg_buf_printf(h, "x-moongate-policy-version: %s\r\n", mg_lua_vm_version(vm));
        }
    }
    size_t ol;
    const char *origin = mg_http_req_header(r->hr, "origin", &ol);
    if (origin != NULL) {
        mg_buf_printf(h, "access-control-allow-origin: %.*s\r\naccess-control-allow-credentials: "
                         "true\r\nvary: Origin\r\n", (int) ol, origin);
    }
}

static void
mg_gw_send_json_text(mg_request_t *r, int status, const char *body, size_t len,
                     const char *extra_headers)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: application/json\r\n");
    mg_gw_common_headers(r, &h);
    if (extra_headers != NULL) {
        mg_buf_append_str(&h, extra_headers);
    }
    mg_http_respond(r->hr, status, mg_buf_head(&h), mg_buf_len(&h), body, len);
    mg_buf_free(&h);
}

void
mg_gw_send_body(mg_request_t *r, int status, const char *body, size_t len,
                const char *extra_headers)
{
    mg_admit_settle(r);
    mg_gw_send_json_text(r, status, body, len, extra_headers);
}

void
mg_gw_error_raw(mg_request_t *r, int status, const char *message, const char *type_json,
                const char *param_json, const char *extra_headers)
{
    mg_admit_settle(r); /* a refused or failed request releases what it reserved, first */
    /* in the envelope of the client's protocol (OpenAI's for everything but LLM routes);
     * never with a secret in it: upstream errors echo keys (issue 10) */
    mg_buf_t b = MG_BUF_INIT;
    char *clean = mg_scrub_global_cstr(message);
    mg_api_error_body(r->api != NULL ? r->api : mg_api_get(MG_API_OPENAI_CHAT), status, clean,
                      type_json, param_json, &b);
    free(clean);
    r->gw->failures++;
    mg_gw_send_json_text(r, status, mg_buf_head(&b), mg_buf_len(&b), extra_headers);
    mg_buf_free(&b);
}

void
mg_gw_error(mg_request_t *r, int status, const char *message, const char *type, const char *param,
            const char *extra_headers)
{
    mg_buf_t t = MG_BUF_INIT, p = MG_BUF_INIT;
    if (type != NULL) {
        mg_buf_json_str(&t, type, strlen(type));
    } else {
        mg_buf_append_str(&t, "null");
    }
    if (param != NULL) {
        mg_buf_json_str(&p, param, strlen(param));
    } else {
        mg_buf_append_str(&p, "null");
    }
    mg_gw_error_raw(r, status, message, mg_buf_cstr(&t), mg_buf_cstr(&p), extra_headers);
    mg_buf_free(&t);
    mg_buf_free(&p);
}

void
mg_gw_detail(mg_request_t *r, int status, json_t *detail)
{
    json_t *body = json_pack("{s:o}", "detail", detail);
    char *s = json_dumps(body, JSON_COMPACT);
    mg_gw_send_json_text(r, status, s, strlen(s), NULL);
    free(s);
    json_decref(body);
}

void
mg_gw_json_scrubbed(mg_request_t *r, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    mg_buf_t b = MG_BUF_INIT;
    mg_scrub_global_buf(s, strlen(s), &b);
    free(s);
    mg_gw_send_json_text(r, status, mg_buf_head(&b), mg_buf_len(&b), NULL);
    mg_buf_free(&b);
}

void
mg_gw_json(mg_request_t *r, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    mg_gw_send_json_text(r, status, s, strlen(s), NULL);
    free(s);
}

char *
mg_gw_pyrepr_dict_error(const char *msg)
{
    /* {'error': '...'} with Python's quoting: double quotes when the text has ' and no " */
    bool dq = strchr(msg, '\'') != NULL && strchr(msg, '"') == NULL;
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append_str(&b, "{'error': ");
    char q = dq ? '"' : '\'';
    mg_buf_append(&b, &q, 1);
    for (const char *p = msg; *p; p++) {
        if (*p == q || *p == '\\') {
            mg_buf_append(&b, "\\", 1);
        }
        if (*p == '\n') {
            mg_buf_append_str(&b, "\\n");
            continue;
        }
        mg_buf_append(&b, p, 1);
    }
    mg_buf_append(&b, &q, 1);
    mg_buf_append(&b, "}", 1);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* ---- authentication ---- */

typedef enum {
    MG_AUTH_OK = 0,
    MG_AUTH_FAILED,     /* response sent */
} mg_auth_rc_t;

static const char *
mg_gw_strip_bearer(const char *v, size_t *len)
{
    if (*len >= 7 && strncasecmp(v, "bearer ", 7) == 0) {
        *len -= 7;
        return v + 7;
    }
    return v;
}

static mg_auth_rc_t
mg_gw_auth(mg_request_t *r)
{
    mg_config_t *cfg = r->gw->config;
    if (cfg->master_key == NULL) {
        mg_ka_master(r); /* no master key: every route is open, as in LiteLLM */
        return MG_AUTH_OK;
    }
    const char *key = NULL;
    size_t klen = 0;
    const char *custom = json_string_value(json_object_get(cfg->general_settings, "litellm_key_header_name"));
    if (custom != NULL) {
        char lower[128];
        size_t n = strlen(custom);
        if (n < sizeof(lower)) {
            for (size_t i = 0; i <= n; i++) {
                lower[i] = (char) (custom[i] >= 'A' && custom[i] <= 'Z' ? custom[i] + 32 : custom[i]);
            }
            key = mg_http_req_header(r->hr, lower, &klen);
            if (key != NULL) {
                key = mg_gw_strip_bearer(key, &klen);
            }
        }
    }
    static const char *const plain[] = {"x-litellm-api-key", "api-key", "x-api-key",
                                        "x-goog-api-key", "ocp-apim-subscription-key", NULL};
    if (key == NULL) {
        size_t al;
        const char *auth = mg_http_req_header(r->hr, "authorization", &al);
        if (auth != NULL) {
            if (al >= 7 && strncasecmp(auth, "bearer ", 7) == 0) {
                key = auth + 7;
                klen = al - 7;
            } else if (al >= 6 && strncasecmp(auth, "basic ", 6) == 0) {
                key = auth + 6;
                klen = al - 6;
            } else {
                /* x-api-key style clients may still send a bare Authorization */
                for (const char *const *h = plain; *h && key == NULL; h++) {
                    key = mg_http_req_header(r->hr, *h, &klen);
                }
                if (key == NULL) {
                    mg_gw_error_raw(r, 401, "Authentication Error, Malformed API Key passed in. "
                                            "Ensure Key has `Bearer ` prefix.",
                                    "\"auth_error\"", "\"None\"", NULL);
                    return MG_AUTH_FAILED;
                }
                key = mg_gw_strip_bearer(key, &klen);
            }
        }
    }
    for (const char *const *h = plain; *h && key == NULL; h++) {
        key = mg_http_req_header(r->hr, *h, &klen);
        if (key != NULL) {
            key = mg_gw_strip_bearer(key, &klen);
        }
    }
    while (klen > 0 && (key[klen - 1] == ' ' || key[klen - 1] == '\t')) {
        klen--;
    }
    if (key == NULL || klen == 0) {
        mg_gw_error_raw(r, 401, "Authentication Error, No api key passed in.", "\"auth_error\"",
                        "\"None\"", NULL);
        return MG_AUTH_FAILED;
    }
    char *k = mg_arena_strndup(r->arena, key, klen);
    if (mg_ct_streq(k, cfg->master_key)) {
        mg_ka_master(r);
        return MG_AUTH_OK;
    }
    /* a virtual key: its rights come from the snapshot the request pins */
    return mg_ka_authenticate(r, key, klen) ? MG_AUTH_OK : MG_AUTH_FAILED;
}

/* ---- dispatch ---- */

static bool
mg_gw_path_is(const mg_request_t *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static bool
mg_gw_method_is(const char *m, size_t ml, const char *want)
{
    size_t n = strlen(want);
    return ml == n && memcmp(m, want, n) == 0;
}

/* Matches "<prefix>{model}<suffix>" where model may contain '/'. */
static bool
mg_gw_match_model_path(const mg_request_t *r, const char *prefix, const char *suffix,
                       const char **model, size_t *mlen)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (r->path_len <= pl + sl || memcmp(r->path, prefix, pl) != 0 ||
        memcmp(r->path + r->path_len - sl, suffix, sl) != 0) {
        return false;
    }
    *model = r->path + pl;
    *mlen = r->path_len - pl - sl;
    return *mlen > 0;
}

static void
mg_gw_not_found(mg_request_t *r)
{
    /* the OpenAI envelope for SDK clients, plus FastAPI's "detail" that LiteLLM returns */
    const char *body = "{\"error\":{\"message\":\"Not Found\",\"type\":\"invalid_request_error\","
                       "\"param\":null,\"code\":\"404\"},\"detail\":\"Not Found\"}";
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: application/json\r\n");
    mg_gw_common_headers(r, &h);
    mg_http_respond(r->hr, 404, mg_buf_head(&h), mg_buf_len(&h), body, strlen(body));
    mg_buf_free(&h);
}

static bool
mg_gw_llm_route(mg_request_t *r, mg_api_id_t *api, const char **pm, size_t *pml)
{
    static const struct {
        const char *suffix;
        mg_api_id_t api;
    } routes[] = {
        {"/chat/completions", MG_API_OPENAI_CHAT},
        {"/completions", MG_API_OPENAI_COMPLETIONS},
        {"/embeddings", MG_API_OPENAI_EMBEDDINGS},
    };
    static const struct {
        const char *path;
        mg_api_id_t api;
    } anthropic[] = {
        {"/v1/messages", MG_API_ANTHROPIC_MESSAGES},
        {"/anthropic/v1/messages", MG_API_ANTHROPIC_MESSAGES},
        {"/v1/messages/count_tokens", MG_API_ANTHROPIC_COUNT_TOKENS},
        {"/anthropic/v1/messages/count_tokens", MG_API_ANTHROPIC_COUNT_TOKENS},
    };
    static const char *const responses[] = {"/v1/responses", "/responses", "/openai/v1/responses",
                                            "/openai/responses", NULL};
    *pm = NULL;
    *pml = 0;
    for (size_t i = 0; i < sizeof(anthropic) / sizeof(anthropic[0]); i++) {
        if (mg_gw_path_is(r, anthropic[i].path)) {
            *api = anthropic[i].api;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        char v1[64];
        snprintf(v1, sizeof(v1), "/v1%s", routes[i].suffix);
        if (mg_gw_path_is(r, routes[i].suffix) || mg_gw_path_is(r, v1)) {
            *api = routes[i].api;
            return true;
        }
        if (mg_gw_match_model_path(r, "/openai/deployments/", routes[i].suffix, pm, pml) ||
            mg_gw_match_model_path(r, "/engines/", routes[i].suffix, pm, pml) ||
            mg_gw_match_model_path(r, "/v1/engines/", routes[i].suffix, pm, pml)) {
            /* "/completions" also ends "/chat/completions": keep the longest */
            if (routes[i].api == MG_API_OPENAI_COMPLETIONS && *pml > 5 &&
                memcmp(*pm + *pml - 5, "/chat", 5) == 0) {
                continue;
            }
            *api = routes[i].api;
            return true;
        }
    }
    for (const char *const *p = responses; *p; p++) {
        if (mg_gw_path_is(r, *p)) {
            *api = MG_API_OPENAI_RESPONSES;
            return true;
        }
    }
    return false;
}

/*
 * A UUID4-shaped call id: unique per process (seeded once from the CSPRNG, then
 * a counter through a 64-bit mixer), with no lock and no syscall per request.
 * Call ids are identifiers, not secrets.
 */
static void
mg_gw_call_id(char out[37])
{
    static uint64_t seed[2];
    static uint64_t counter;
    if (seed[0] == 0) {
        mg_random_bytes(seed, sizeof(seed));
        seed[0] |= 1;
    }
    uint64_t x = seed[0] + ++counter * 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    uint64_t y = seed[1] ^ counter;
    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned) (x >> 32),
             (unsigned) ((x >> 16) & 0xffff), (unsigned) (x & 0xfff),
             (unsigned) (0x8000 | ((y >> 48) & 0x3fff)), (unsigned long long) (y & 0xffffffffffffULL));
}

/* GET /metrics: the whole instance in Prometheus' text format 0.0.4. */
static void
mg_gw_metrics(mg_request_t *r)
{
    mg_buf_t body = MG_BUF_INIT;
    mg_gwm_scrape(r->gw, &body);
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: text/plain; version=0.0.4; charset=utf-8\r\n");
    mg_gw_common_headers(r, &h);
    mg_http_respond(r->hr, 200, mg_buf_head(&h), mg_buf_len(&h),
                    body.data != NULL ? mg_buf_head(&body) : "", mg_buf_len(&body));
    mg_buf_free(&h);
    mg_buf_free(&body);
}

static void
mg_gw_on_request(mg_http_req_t *hr)
{
    mg_gw_t *gw = hr->server->conf.data;
    mg_request_t *r = hr->ud; /* zeroed by the server */
    r->hr = hr;
    r->gw = gw;
    r->arena = &hr->arena;
    r->req_num_retries = -1;
    gw->requests++;
    mg_gwm_in_flight(gw, ++gw->in_flight);
    size_t cl;
    const char *cid = mg_http_req_header(hr, "x-litellm-call-id", &cl);
    if (cid != NULL && cl > 0 && cl < sizeof(r->call_id)) {
        memcpy(r->call_id, cid, cl);
        r->call_id[cl] = '\0';
        for (char *p = r->call_id; *p; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                *p = '_';
            }
        }
    } else {
        mg_gw_call_id(r->call_id);
    }
    /* path without query, under SERVER_ROOT_PATH */
    const char *t = hr->head.target;
    size_t tl = hr->head.target_len;
    if (tl > 7 && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
        /* absolute-form: drop scheme and authority */
        const char *s = memchr(t + 8, '/', tl - 8);
        if (s == NULL) {
            t = "/";
            tl = 1;
        } else {
            tl -= (size_t) (s - t);
            t = s;
        }
    }
    const char *q = memchr(t, '?', tl);
    size_t pl = q ? (size_t) (q - t) : tl;
    size_t rl = strlen(gw->root_path);
    if (rl > 0) {
        if (pl < rl || memcmp(t, gw->root_path, rl) != 0 || (pl > rl && t[rl] != '/')) {
            mg_gw_not_found(r);
            return;
        }
        t += rl;
        pl -= rl;
        if (pl == 0) {
            t = "/";
            pl = 1;
        }
    }
    while (pl > 1 && t[pl - 1] == '/') {
        pl--;
    }
    r->path = t;
    r->path_len = pl;

    const char *m = hr->head.method;
    size_t ml = hr->head.method_len;
    int lim = gw->config->limit_concurrency;
    if (lim > 0 && mg_shm != NULL && strncmp(r->path, "/health", 7) != 0) {
        /* LiteLLM's --limit_concurrency (uvicorn): 503 past N requests in flight, counted for
         * the whole instance; health probes are never refused */
        int32_t now = __atomic_add_fetch(&mg_shm->requests_inflight, 1, __ATOMIC_ACQ_REL);
        r->counted = true;
        if (now > lim) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Service Unavailable: more than %d requests in flight "
                                       "(--limit_concurrency)", lim);
            mg_gw_error_raw(r, 503, msg, "\"service_unavailable\"", "null", NULL);
            return;
        }
    }
    if (mg_gw_method_is(m, ml, "OPTIONS")) {
        mg_buf_t h = MG_BUF_INIT;
        mg_gw_common_headers(r, &h);
        mg_buf_append_str(&h, "access-control-allow-methods: *\r\naccess-control-allow-headers: *\r\n"
                              "allow: GET, POST, PATCH, DELETE, OPTIONS\r\n");
        mg_http_respond(hr, 200, mg_buf_head(&h), mg_buf_len(&h), "", 0);
        mg_buf_free(&h);
        return;
    }
    bool get = mg_gw_method_is(m, ml, "GET") || mg_gw_method_is(m, ml, "HEAD");
    /* public routes */
    if (mg_gw_path_is(r, "/health/liveliness") || mg_gw_path_is(r, "/health/liveness")) {
        if (!get) {
            mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
            return;
        }
        static const char alive[] = "\"I'm alive!\"";
        mg_gw_send_json_text(r, 200, alive, sizeof(alive) - 1, NULL);
        return;
    }
    if (mg_gw_path_is(r, "/health/readiness") || mg_gw_path_is(r, "/")) {
        (void) mg_admin_handle(r, m, ml);
        return;
    }
    if (mg_ui_handle(r, m, ml)) {
        return; /* the admin page, its assets, /docs and /openapi.json: public, as in LiteLLM */
    }
    if (mg_gw_path_is(r, "/metrics")) {
        /* open unless litellm_settings.require_auth_for_metrics_endpoint, as LiteLLM's */
        if (!get) {
            mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
            return;
        }
        if (gw->config->metrics_auth && mg_gw_auth(r) != MG_AUTH_OK) {
            return;
        }
        mg_gw_metrics(r);
        return;
    }
    mg_api_id_t api = MG_API_OPENAI_CHAT;
    const char *pm;
    size_t pml;
    bool llm = mg_gw_llm_route(r, &api, &pm, &pml);
    bool stored = !llm && mg_responses_route(r); /* /v1/responses/{id}... */
    if (llm || stored) {
        r->api = mg_api_get(stored ? MG_API_OPENAI_RESPONSES : api); /* errors from here on,
                                                                      * auth's too, in its envelope */
    }
    if (llm && !mg_gw_method_is(m, ml, "POST")) {
        mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
        return;
    }
    if (!llm && !stored && !mg_admin_route_known(r)) {
        mg_gw_not_found(r); /* routing comes before authentication, as in LiteLLM */
        return;
    }
    if (mg_gw_auth(r) != MG_AUTH_OK || !mg_keys_check_key_route(r)) {
        return; /* a key's allowed_routes (mg_keys.c) hold on every route */
    }
    if (llm) {
        r->spend_armed = true; /* authenticated: this call gets its spend row */
        mg_proxy_handle(r, pm, pml);
        return;
    }
    if (stored) {
        mg_responses_handle(r, m, ml);
        return;
    }
    if (mg_admin_handle(r, m, ml)) {
        return;
    }
    mg_gw_not_found(r);
}

/* One record per request at INFO (LITELLM_LOG=INFO): what was asked, what answered, how
 * long it took and what it used.  Never a secret: no query string, no header, no body. */
static void
mg_gw_access_log(mg_request_t *r)
{
    mg_http_req_t *hr = r->hr;
    char method[16], path[256];
    snprintf(method, sizeof(method), "%.*s", (int) hr->head.method_len, hr->head.method);
    size_t tl = strcspn(hr->head.target, "?");
    if (tl > hr->head.target_len) {
        tl = hr->head.target_len;
    }
    snprintf(path, sizeof(path), "%.*s", (int) tl, hr->head.target);
    double ms = (double) (mg_time_mono_us() - hr->start_us) / 1000.0;
    const mg_deployment_t *d = r->dep;
    double ttft = r->stream && r->t_first_byte_us > 0
                      ? (double) (r->t_first_byte_us - hr->start_us) / 1000.0
                      : NAN;
    double cost = d != NULL && r->cost_known ? r->cost_usd : NAN;
    bool llm = r->api != NULL;
    mg_log_kv_t kv[] = {
        {"method", MG_LOG_KV_STR, method, 0, 0},
        {"path", MG_LOG_KV_STR, path, 0, 0},
        {"status", MG_LOG_KV_INT, NULL, hr->status > 0 ? hr->status : 499, 0},
        {"latency_ms", MG_LOG_KV_DBL, NULL, 0, ms},
        {"model_group", MG_LOG_KV_STR, llm ? r->primary_group : NULL, 0, 0},
        {"model_id", MG_LOG_KV_STR, d != NULL ? d->id : NULL, 0, 0},
        {"provider", MG_LOG_KV_STR, d != NULL ? d->provider : NULL, 0, 0},
        {"attempts", MG_LOG_KV_INT, NULL, r->attempts, 0},
        {"fallbacks", MG_LOG_KV_INT, NULL, r->fb_groups_tried, 0},
        {"stream", MG_LOG_KV_BOOL, NULL, r->stream, 0},
        {"ttft_ms", MG_LOG_KV_DBL, NULL, 0, ttft},
        {"prompt_tokens", MG_LOG_KV_INT, NULL, r->usage.prompt_tokens, 0},
        {"completion_tokens", MG_LOG_KV_INT, NULL, r->usage.completion_tokens, 0},
        {"total_tokens", MG_LOG_KV_INT, NULL, mg_usage_total(&r->usage), 0},
        {"response_cost", MG_LOG_KV_DBL, NULL, 0, cost},
        {"key_alias", MG_LOG_KV_STR, NULL, 0, 0},
    };
    int n = (int) (sizeof(kv) / sizeof(kv[0]));
    if (!llm) {
        n = 4; /* admin and info routes: the request line, status and time */
    }
    mg_log_ctx_t lc = {r->call_id, NULL, NULL};
    mg_log_record(MG_LOG_INFO, &lc, "access", kv, n);
}

void
mg_gw_finalize(mg_request_t *r)
{
    if (r->gw != NULL && !r->finalized) {
        mg_gw_spend_record(r, 499, NULL, 0); /* abandoned by the client: the row is still due */
        r->finalized = true;
        if (r->api != NULL) {
            mg_admit_settle(r);
            mg_gwm_request_end(r);
        }
        if (mg_log_level >= MG_LOG_INFO) {
            mg_gw_access_log(r);
        }
        mg_gwm_in_flight(r->gw, --r->gw->in_flight);
    }
    if (r->counted) {
        r->counted = false;
        __atomic_sub_fetch(&mg_shm->requests_inflight, 1, __ATOMIC_ACQ_REL);
    }
    mg_proxy_cleanup(r);
    if (r->att_snap != NULL) {
        mg_snapshot_unref(r->att_snap);
        r->att_snap = NULL;
    }
    if (r->snap != NULL) {
        mg_snapshot_unref(r->snap);
        r->snap = NULL;
    }
}

/* The answer is about to be complete: its spend row goes first. */
static void
mg_gw_on_complete(mg_http_req_t *hr, int status, const char *body, size_t len)
{
    mg_request_t *r = hr->ud;
    if (r->gw != NULL) {
        mg_gw_spend_record(r, status, body, len);
    }
}

static void
mg_gw_on_abort(mg_http_req_t *hr)
{
    mg_request_t *r = hr->ud;
    mg_admin_abort(r);
    mg_proxy_abort(r);
}

static void
mg_gw_on_free(mg_http_req_t *hr)
{
    mg_request_t *r = hr->ud;
    if (r->gw == NULL) {
        return; /* freed before dispatch (413 etc.) */
    }
    mg_admin_abort(r);
    mg_gw_finalize(r);
}

static void
mg_gw_on_drain(mg_http_req_t *hr)
{
    mg_request_t *r = hr->ud;
    mg_proxy_drain(r);
}
