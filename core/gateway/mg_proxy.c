/*
 * mg_proxy.c -- the LLM routes: resolve -> order -> attempt -> retry/fallback.
 *
 * A request pins the snapshot current at its start.  It resolves the model
 * to a group (exact name, alias, deployment id, wildcard, litellm model,
 * default fallback), orders the group's deployments (mg_route.c), and tries
 * them: retries inside the group, then fallback groups, as LiteLLM does.
 *
 * What a request looks like on the wire is not known here: the client's
 * protocol (core/api/) parses the body and writes the answer back; the
 * deployment's provider (core/providers/) builds the upstream request and
 * reads its errors.  When the upstream speaks the client's wire, its bytes
 * are relayed (the fast path: only "model" restamped); otherwise its answer
 * is decoded into neutral events and encoded in the client's format.  Either
 * way usage lands in r->usage, which spend and limits will read.
 */
#include "mg_gw.h"
#include "mg_gw_metrics.h"
#include "mg_admit.h"
#include "mg_keyauth.h"
#include "mg_reqlog.h"
#include "mg_route.h"
#include "mg_trace.h"

#include "../base/mg_log.h"
#include "../base/mg_map.h"
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

static void mg_proxy_attempt(mg_request_t *r);
static void mg_proxy_fail(mg_request_t *r, mg_uperr_t *e);

/* ---- small helpers ---- */

static void
mg_proxy_timer_set(mg_request_t *r, int64_t ms, event_callback_fn cb)
{
    if (r->timer_on) {
        evtimer_del(&r->timer);
    }
    evtimer_assign(&r->timer, r->gw->base, cb, r);
    struct timeval tv = {(time_t) (ms / 1000), (suseconds_t) ((ms % 1000) * 1000)};
    evtimer_add(&r->timer, &tv);
    r->timer_on = true;
}

static void
mg_proxy_wipe_token(mg_request_t *r)
{
    if (r->prep_token != NULL) {
        memset(r->prep_token, 0, strlen(r->prep_token));
        free(r->prep_token);
        r->prep_token = NULL;
    }
}

/* ---- errors to the client ---- */

/* LiteLLM's x-litellm-attempted-fallbacks: set last by the outermost level, so the
 * position reached in the primary group's own fallback list */
static int
mg_proxy_attempted_fallbacks(const mg_request_t *r)
{
    const mg_fb_frame_t *f = r->fb_top;
    while (f != NULL && f->up != NULL) {
        f = f->up;
    }
    return f != NULL ? f->depth : 0;
}

static void
mg_proxy_error_headers(mg_request_t *r, mg_buf_t *h)
{
    /* no x-litellm-key-spend: a header carries a true value or is absent */
    mg_buf_append_str(h, "x-litellm-response-cost: 0\r\n");
    if (r->dep != NULL) {
        mg_buf_printf(h, "x-litellm-model-id: %s\r\n", r->dep->id);
    }
}

static void
mg_proxy_simple_error(mg_request_t *r, int status, const char *msg, const char *type_json,
                      const char *param_json)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_proxy_error_headers(r, &h);
    r->state = MG_ATT_DONE;
    mg_gw_error_raw(r, status, msg, type_json, param_json, mg_buf_cstr(&h));
    mg_buf_free(&h);
}

/* ---- request parsing ---- */

/* Whether a JSON array or object text is empty ("[ ]" too). */
static bool
mg_proxy_json_empty(const char *v, size_t n)
{
    for (size_t i = 1; i + 1 < n; i++) {
        if (v[i] != ' ' && v[i] != '\t' && v[i] != '\n' && v[i] != '\r') {
            return false;
        }
    }
    return true;
}

static bool
mg_proxy_parse(mg_request_t *r, const char *pm, size_t pml)
{
    mg_api_err_t err;
    const char *path_model = pm != NULL ? mg_arena_strndup(r->arena, pm, pml) : NULL;
    if (mg_api_parse(r->api, r->arena, r->hr->body, r->hr->body_len, path_model, &r->q, &err) !=
        MG_OK) {
        mg_proxy_simple_error(r, err.status, err.msg, err.type_json, err.param_json);
        return false;
    }
    mg_api_req_t *q = &r->q;
    r->model = q->model;
    r->stream = q->stream;
    /* LiteLLM's own parameters, whatever the client's protocol */
    const mg_json_member_t *nr = mg_api_member(q, "num_retries");
    if (nr != NULL && nr->type == MG_JSON_NUMBER) {
        r->req_num_retries = mg_clamp_int(mg_api_member_num(nr, -1));
        if (r->req_num_retries > 100) {
            r->req_num_retries = 100; /* a client cannot make us loop */
        }
    }
    const mg_json_member_t *df = mg_api_member(q, "disable_fallbacks");
    r->disable_fallbacks = df != NULL && df->type == MG_JSON_TRUE;
    const mg_json_member_t *md = mg_api_member(q, "metadata");
    if (md != NULL && md->type == MG_JSON_OBJECT) {
        mg_json_member_t x;
        if (mg_json_obj_find(md->val, md->val_len, "disable_fallbacks", &x) == 1 &&
            x.type == MG_JSON_TRUE) {
            r->disable_fallbacks = true;
        }
    }
    r->req_timeout = mg_api_member_num(mg_api_member(q, "timeout"), 0);
    if (r->req_timeout <= 0) {
        r->req_timeout = mg_api_member_num(mg_api_member(q, "request_timeout"), 0);
    }
    r->req_stream_timeout = mg_api_member_num(mg_api_member(q, "stream_timeout"), 0);
    const mg_json_member_t *fb = mg_api_member(q, "fallbacks");
    if (fb != NULL && fb->type == MG_JSON_ARRAY) {
        r->req_fallbacks = json_loadb(fb->val, fb->val_len, 0, NULL);
    }
    /* tags (LiteLLM moves body tags into metadata.tags): what tag routing reads */
    json_t *tags = NULL;
    const mg_json_member_t *tm = mg_api_member(q, "tags");
    if (tm != NULL && tm->type == MG_JSON_ARRAY) {
        tags = json_loadb(tm->val, tm->val_len, 0, NULL);
    } else if (md != NULL && md->type == MG_JSON_OBJECT) {
        mg_json_member_t x;
        if (mg_json_obj_find(md->val, md->val_len, "tags", &x) == 1 && x.type == MG_JSON_ARRAY) {
            tags = json_loadb(x.val, x.val_len, 0, NULL);
        }
    }
    if (json_array_size(tags) > 0) {
        r->tags = mg_arena_alloc(r->arena, json_array_size(tags) * sizeof(char *));
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t) {
            if (json_is_string(t)) {
                r->tags[r->ntags++] = mg_arena_strdup(r->arena, json_string_value(t));
            }
        }
    }
    json_decref(tags);
    /* LiteLLM request settings moongate does not implement (the settings table) */
    const mg_json_member_t *gr = mg_api_member(q, "guardrails");
    mg_json_member_t mgr;
    const mg_json_member_t *md0 = mg_api_member(q, "metadata");
    if ((gr == NULL || gr->type == MG_JSON_NULL) && md0 != NULL && md0->type == MG_JSON_OBJECT &&
        mg_json_obj_find(md0->val, md0->val_len, "guardrails", &mgr) == 1) {
        gr = &mgr; /* LiteLLM reads the guardrails a request names from metadata too */
    }
    if (gr != NULL && !(gr->type == MG_JSON_NULL ||
                        (gr->type == MG_JSON_ARRAY && mg_proxy_json_empty(gr->val, gr->val_len)))) {
        mg_proxy_simple_error(r, 400, "moongate does not implement guardrails: a request naming "
                                      "guardrails is refused rather than answered unchecked",
                              "\"invalid_request_error\"", "\"guardrails\"");
        return false;
    }
    const mg_json_member_t *cm = mg_api_member(q, "caching");
    if (cm == NULL) {
        cm = mg_api_member(q, "cache");
    }
    if (cm != NULL && cm->type != MG_JSON_NULL && cm->type != MG_JSON_FALSE) {
        if (mg_shm != NULL) {
            __atomic_fetch_add(&mg_shm->ignored_caching, 1, __ATOMIC_RELAXED); /* the instance's */
        }
        if (r->gw->ignored_caching++ == 0) {
            mg_log_ctx_t lc = {r->call_id, NULL, NULL};
            mg_log(MG_LOG_WARN, &lc, "a request asked for caching (\"caching\"/\"cache\"): "
                                     "moongate does not cache responses; every request goes "
                                     "upstream (counted in /moongate/state)");
        }
    }
    const mg_json_member_t *ad = mg_api_member(q, "additional_drop_params");
    if (ad != NULL && ad->type == MG_JSON_ARRAY) {
        r->req_drop = json_loadb(ad->val, ad->val_len, 0, NULL);
    }
    const mg_json_member_t *mr = mg_api_member(q, "mock_response");
    if (mr != NULL && mr->type != MG_JSON_NULL) {
        r->req_mock = json_loadb(mr->val, mr->val_len, JSON_DECODE_ANY, NULL);
    }
    return true;
}

/* ---- model resolution ---- */

static bool
mg_proxy_resolve(mg_request_t *r)
{
    mg_snapshot_t *s = r->snap;
    const char *model = r->model;
    size_t ml = strlen(model);
    r->group_name = model;
    /* a deployment id targets that deployment alone */
    mg_deployment_t *byid = mg_registry_by_id(s, model);
    if (byid != NULL) {
        r->order[0] = byid;
        r->norder = 1;
        r->group = mg_registry_group(s, byid->model_name, strlen(byid->model_name));
        r->group_name = byid->model_name;
        return true;
    }
    mg_group_t *g = mg_registry_group(s, model, ml);
    if (g != NULL) {
        r->group = g;
        r->group_name = g->name;
        const char *alias_target = mg_map_get(&s->aliases, model, ml);
        if (alias_target != NULL) {
            r->group_name = model; /* LiteLLM reports the name the client used */
        }
        return true;
    }
    char matched[700];
    (void) ml;
    g = mg_route_wildcard(r, model, matched, sizeof(matched));
    if (g != NULL) {
        r->group = g;
        r->group_name = model;
        r->wild_matched = mg_arena_strdup(r->arena, matched);
        return true;
    }
    mg_deployment_t *bym = mg_map_get(&s->by_litellm_model, model, ml);
    if (bym != NULL) {
        r->order[0] = bym;
        r->norder = 1;
        r->group = mg_registry_group(s, bym->model_name, strlen(bym->model_name));
        r->group_name = model;
        return true;
    }
    json_t *dflt = mg_config_router_get(s->config, "default_fallbacks");
    if (json_is_array(dflt) && json_array_size(dflt) > 0) {
        const char *first = json_string_value(json_array_get(dflt, 0));
        if (first != NULL) {
            g = mg_registry_group(s, first, strlen(first));
            if (g != NULL) {
                r->group = g;
                r->group_name = g->name;
                return true;
            }
        }
    }
    const char *skipped = json_string_value(json_object_get(s->skipped, model));
    if (skipped != NULL) {
        /* known, but its stored row cannot be used: say so instead of "Invalid model name" */
        char *msg = mg_arena_printf(r->arena, "moongate: model \"%s\" is stored in the registry "
                                              "but cannot be loaded: %s", model, skipped);
        mg_proxy_simple_error(r, 503, msg, "\"service_unavailable\"", "null");
        return false;
    }
    if (s->nwildcards > 0) {
        char *msg = mg_arena_printf(r->arena,
                                    "litellm.BadRequestError: You passed in model=%s. There is no "
                                    "'model_name' with this string . Received Model Group=%s\n"
                                    "Available Model Group Fallbacks=None", model, model);
        mg_proxy_simple_error(r, 400, msg, "null", "null");
        return false;
    }
    char *inner = mg_arena_printf(r->arena,
                                  "%s: Invalid model name passed in model=%s. Call `/v1/models` to "
                                  "view available models for your key.", r->route_path, model);
    char *msg = mg_gw_pyrepr_dict_error(inner);
    mg_proxy_simple_error(r, 400, msg, "\"None\"", "\"None\"");
    free(msg);
    return false;
}
/* ---- timeouts (LiteLLM precedence) ---- */

static double
mg_proxy_timeout_s(mg_request_t *r)
{
    mg_deployment_t *d = r->dep;
    mg_config_t *c = r->snap->config;
    if (r->stream) {
        if (r->req_stream_timeout > 0) return r->req_stream_timeout;
        if (d->stream_timeout > 0) return d->stream_timeout;
        if (c->stream_timeout > 0) return c->stream_timeout;
    }
    if (r->req_timeout > 0) return r->req_timeout;
    if (d->timeout > 0) return d->timeout;
    return c->request_timeout > 0 ? c->request_timeout : 6000;
}
/* ---- success ---- */

static void
mg_proxy_success_headers(mg_request_t *r, mg_buf_t *h)
{
    mg_deployment_t *d = r->dep;
    int64_t now = mg_time_mono_us();
    double total_ms = (double) (now - r->hr->start_us) / 1000.0;
    double up_ms = (double) r->upstream_us_total / 1000.0;
    mg_buf_printf(h, "x-litellm-model-id: %s\r\nx-litellm-model-group: %s\r\n", d->id,
                  d->model_name);
    const char *base = d->prov ? mg_provider_base(d->prov, d) : d->api_base;
    if (base != NULL) {
        size_t bl = strcspn(base, "?");
        mg_buf_printf(h, "x-litellm-model-api-base: %.*s\r\n", (int) bl, base);
    }
    mg_buf_printf(h, "x-litellm-response-duration-ms: %.3f\r\nx-litellm-overhead-duration-ms: %.4f\r\n"
                     "x-litellm-attempted-retries: %d\r\nx-litellm-attempted-fallbacks: %d\r\n",
                  total_ms, total_ms - up_ms > 0 ? total_ms - up_ms : 0, r->retries_done,
                  mg_proxy_attempted_fallbacks(r));
    if (r->retries_done > 0) {
        mg_buf_printf(h, "x-litellm-max-retries: %d\r\n", r->max_retries);
    }
    if (r->cost_known) {
        /* known when the usage is (non-stream answers); a stream's comes with its end, after
         * the headers: then the header is absent rather than false */
        char c[64];
        mg_fmt_pyfloat(r->cost_usd, c, sizeof(c));
        mg_buf_printf(h, "x-litellm-response-cost: %s\r\n", c);
    }
}

/* Most (deployment, model) pairs "no price" is logged for, per worker: a client asking a
 * wildcard for endless names cannot grow the set without end. */
#define MG_PROXY_UNPRICED_MAX 4096

/*
 * The answering call's cost (LiteLLM's completion_cost): the cost map entry of the model
 * that answered, the deployment's own prices over it, and the usage that came back.
 * Called once the usage is final (the answer's end), before the success is counted.
 */
static void
mg_proxy_cost(mg_request_t *r)
{
    mg_deployment_t *d = r->dep;
    if (d == NULL || r->cost_known || !r->usage.seen) {
        return; /* no usage came back (a stream without include_usage): the cost is unknown */
    }
    /* the snapshot the deployment is from: a retry may have taken it from a newer one */
    const mg_snapshot_t *ds = r->snap;
    const mg_snapshot_t *as = r->att_snap;
    if (as != NULL && d >= as->deps && d < as->deps + as->ndeps) {
        ds = as;
    }
    const mg_costmap_entry_t *e = mg_registry_cost_entry(ds, d, r->upstream_model);
    mg_costmap_call_t call = r->api != NULL && r->api->op == MG_OP_EMBEDDINGS
                                 ? MG_COSTMAP_CALL_EMBEDDING
                                 : MG_COSTMAP_CALL_CHAT;
    int64_t dur_ms = (mg_time_mono_us() - r->t_upstream_us) / 1000;
    mg_costmap_cost_t cc;
    r->cost_usd = mg_costmap_cost(e, &d->prices, &r->usage, dur_ms, call, &cc);
    r->cost_known = true;
    if (!cc.unpriced || (!d->wildcard && d->unpriced_said)) {
        return;
    }
    if (!d->wildcard) {
        d->unpriced_said = true; /* this snapshot's deployment: the map below decides once */
    }
    /* once per worker and deployment (and model, for a wildcard), never per request */
    char key[600];
    int kl = d->wildcard ? snprintf(key, sizeof(key), "%s\n%s", d->id,
                                    r->upstream_model ? r->upstream_model : "")
                         : snprintf(key, sizeof(key), "%s", d->id);
    if (kl < 0 || (size_t) kl >= sizeof(key)) {
        kl = (int) strlen(key);
    }
    mg_map_t *said = &r->gw->unpriced_said;
    if (mg_map_get(said, key, (size_t) kl) != NULL || said->count >= MG_PROXY_UNPRICED_MAX) {
        return;
    }
    mg_map_put(said, key, (size_t) kl, (void *) 1);
    mg_log_ctx_t lc = {r->call_id, d->id, "pricing a call"};
    mg_log(MG_LOG_WARN, &lc, "model \"%s\" (deployment \"%s\" of group \"%s\") has no price in "
                             "the cost map \"%s\" nor in its litellm_params/model_info: its calls "
                             "cost 0 (said once per worker)",
           d->wildcard && r->upstream_model ? r->upstream_model : d->litellm_model, d->id,
           d->model_name, ds->costmap->source);
}

static void
mg_proxy_stats_end(mg_request_t *r, bool ok, bool timeout)
{
    if (ok) {
        mg_proxy_cost(r); /* the usage is final here: spend and metrics read r->cost_usd */
    }
    if (ok && !r->attempt_metered && r->dep != NULL) {
        /* LiteLLM's deployment success (local mock_response answers included) */
        r->attempt_metered = true;
        mg_admit_settle(r); /* before the answer's last byte: the next request sees the spend */
        mg_gwm_attempt_end(r, true, NULL);
        if (r->fb_groups_tried > 0) {
            mg_gwm_fallback(r, r->group_name, true);
        }
    }
    if (!r->stats_begun || r->dep == NULL) {
        return;
    }
    r->stats_begun = false;
    int slot = r->dep->stats_slot;
    mg_stats_end(slot);
    if (ok) {
        double secs = (double) (mg_time_mono_us() - r->t_upstream_us) / 1e6;
        double ttft = r->stream && r->t_first_byte_us > 0
                          ? (double) (r->t_first_byte_us - r->t_upstream_us) / 1e6
                          : -1;
        mg_stats_success(slot, secs, r->usage.completion_tokens, ttft);
        mg_stats_usage(slot, r->usage.prompt_tokens, r->usage.completion_tokens);
        mg_stats_add_tokens(slot, mg_usage_total(&r->usage));
    } else {
        mg_stats_failure(slot, timeout);
    }
}

static void
mg_proxy_respond_ok(mg_request_t *r, const char *body, size_t len)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: application/json\r\n");
    mg_gw_common_headers(r, &h);
    mg_proxy_success_headers(r, &h);
    r->state = MG_ATT_DONE;
    mg_http_respond(r->hr, 200, mg_buf_head(&h), mg_buf_len(&h), body, len);
    mg_buf_free(&h);
}

/* ---- streaming ---- */

static void
mg_proxy_stream_begin(mg_request_t *r, int status)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: text/event-stream\r\ncache-control: no-cache\r\n");
    mg_gw_common_headers(r, &h);
    mg_proxy_success_headers(r, &h);
    r->state = MG_ATT_STREAMING;
    mg_http_stream_begin(r->hr, status, mg_buf_head(&h), mg_buf_len(&h));
    mg_buf_free(&h);
}

static void
mg_proxy_stream_write(mg_request_t *r, const char *p, size_t n)
{
    if (mg_http_stream_write(r->hr, p, n) && r->client != NULL && !r->stream_paused) {
        r->stream_paused = true;
        mg_client_pause(r->client);
    }
}

/* Sends what one upstream read produced for the client, in one write. */
static void
mg_proxy_flush(mg_request_t *r)
{
    if (mg_buf_len(&r->out) > 0) {
        mg_proxy_stream_write(r, mg_buf_head(&r->out), mg_buf_len(&r->out));
        mg_buf_reset(&r->out);
    }
}

/* Ends a started stream with an error frame in the client's format (no success end). */
static void
mg_proxy_stream_error(mg_request_t *r, int status, const char *msg, const char *type_json)
{
    mg_proxy_flush(r);
    mg_buf_t b = MG_BUF_INIT;
    char *clean = mg_scrub_global_cstr(msg);
    mg_api_stream_error(r->api, status, clean, type_json, &b);
    free(clean);
    mg_http_stream_write(r->hr, mg_buf_head(&b), mg_buf_len(&b));
    mg_buf_free(&b);
    r->state = MG_ATT_DONE;
    r->answer_error = true; /* the spend row says failure */
    mg_http_stream_end(r->hr);
}

/* ---- the answer, relayed or translated ---- */

static void
mg_proxy_on_nev(void *ud, const mg_ev_t *ev)
{
    mg_request_t *r = ud;
    if (ev->kind == MG_EV_ERROR) {
        r->stream_errored = true;
        /* the upstream's words reach the client: without its secrets */
        mg_buf_t clean = MG_BUF_INIT;
        mg_scrub_global_buf(ev->text ? ev->text : "", ev->text ? ev->text_len : 0, &clean);
        mg_ev_t e2 = *ev;
        e2.text = clean.data ? mg_buf_head(&clean) : "";
        e2.text_len = mg_buf_len(&clean);
        mg_enc_event(&r->xl->enc, &e2);
        mg_buf_free(&clean);
        return;
    }
    mg_enc_event(&r->xl->enc, ev);
}

static bool
mg_proxy_on_sse(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    mg_request_t *r = ud;
    if (!r->translate) {
        size_t at = mg_buf_len(&r->out);
        bool was = r->relay.errored;
        mg_relay_event(&r->relay, raw, raw_len, data, data_len, &r->out);
        r->stream_errored = r->relay.errored;
        if (r->relay.errored && !was && mg_buf_len(&r->out) > at) {
            /* the upstream's error event, relayed: without the secrets it may echo */
            mg_buf_t clean = MG_BUF_INIT;
            mg_scrub_global_buf(mg_buf_head(&r->out) + at, mg_buf_len(&r->out) - at, &clean);
            r->out.end = r->out.start + at;
            mg_buf_append(&r->out, clean.data ? mg_buf_head(&clean) : "", mg_buf_len(&clean));
            mg_buf_free(&clean);
        }
        return true;
    }
    if (data == NULL) {
        return true; /* comments and keep-alives of the upstream's protocol */
    }
    mg_api_err_t err;
    if (mg_dec_event(&r->xl->dec, data, data_len, &err) != MG_OK) {
        free(r->decode_error);
        r->decode_error = mg_xstrdup(err.msg);
        return false;
    }
    return true;
}

/* ---- AWS event-stream framing (Bedrock): each message to the decoder by its name ---- */

static int
mg_proxy_on_es_message(void *ud, const mg_eventstream_message_t *m, mg_err_t *err)
{
    mg_request_t *r = ud;
    const mg_eventstream_str_t *mt = &m->message_type;
    bool is_error = mt->p != NULL && mt->len == 5 && memcmp(mt->p, "error", 5) == 0;
    bool is_exc = mt->p != NULL && mt->len == 9 && memcmp(mt->p, "exception", 9) == 0;
    const mg_eventstream_str_t *name = is_error ? &m->error_code
                                       : is_exc ? &m->exception_type
                                                : &m->event_type;
    const char *data = (const char *) m->payload;
    size_t len = m->payload_len;
    if (is_error) {
        data = m->error_message.p;
        len = m->error_message.len;
    }
    mg_api_err_t aerr;
    if (mg_dec_event_named(&r->xl->dec, mt->p != NULL ? mt->p : "event", mt->p != NULL ? mt->len : 5,
                           name->p, name->len, data != NULL ? data : "", len, &aerr) != MG_OK) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "%s", aerr.msg);
        return MG_ERROR;
    }
    return MG_OK;
}

/* Feeds a translated stream in AWS event-stream framing; MG_ERROR sets r->decode_error. */
static int
mg_proxy_feed_eventstream(mg_request_t *r, const char *data, size_t len)
{
    mg_err_t err;
    if (r->xl == NULL || !r->translate) {
        mg_err_set(&err, MG_ERR_UPSTREAM_5XX, "an AWS event-stream answer can only be translated");
    } else if (mg_eventstream_feed(&r->xl->es, data, len, &err) == MG_OK) {
        return MG_OK;
    }
    free(r->decode_error);
    r->decode_error = mg_xstrdup(err.msg);
    return MG_ERROR;
}

/* Whether a stream's framing ended on a boundary (no partial event or message pending). */
static bool
mg_proxy_stream_tail_ok(mg_request_t *r)
{
    if (r->up_framing == MG_FRAMING_EVENTSTREAM && r->xl != NULL) {
        mg_err_t err;
        return mg_eventstream_finish(&r->xl->es, &err) == MG_OK;
    }
    return mg_sse_pending(&r->sse) == 0;
}

static void
mg_proxy_uperr_from_api(const mg_api_err_t *a, mg_uperr_t *e)
{
    mg_uperr_set(e, a->status, a->status >= 500 ? MG_ERR_INTERNAL : MG_ERR_BAD_REQUEST, "%s",
                 a->msg);
    snprintf(e->type_buf, sizeof(e->type_buf), "%s", a->type_json);
    snprintf(e->param_buf, sizeof(e->param_buf), "%s", a->param_json);
    e->type_json = e->type_buf;
    e->param_json = e->param_buf;
}

/* An upstream answer that cannot be read: LiteLLM's APIError, retried like a 5xx. */
static void
mg_proxy_unreadable(mg_request_t *r, const char *what)
{
    mg_uperr_t e;
    mg_uperr_set(&e, 502, MG_ERR_UPSTREAM_5XX, "litellm.APIError: APIError: %s - %s",
                 r->prov ? r->prov->exception_name : "UpstreamException", what);
    mg_proxy_fail(r, &e);
}

static void
mg_proxy_up_head(mg_request_t *r, int status, const char *ctype)
{
    r->up_status = status;
    r->t_first_byte_us = mg_time_mono_us();
    mg_framing_t f = MG_FRAMING_JSON;
    if (r->prov != NULL && r->prov->ops->framing != NULL) {
        f = r->prov->ops->framing(r->prov, NULL, ctype);
    } else if (ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0) {
        f = MG_FRAMING_SSE;
    }
    r->up_stream = f != MG_FRAMING_JSON;
    r->up_framing = f;
    if (r->stream && r->up_stream && status >= 200 && status < 300) {
        mg_proxy_stream_begin(r, 200);
    }
}

static void
mg_proxy_on_head(void *ud, const mg_http_head_t *head)
{
    mg_request_t *r = ud;
    const mg_http_header_t *ra = mg_http_header_find(head, "retry-after");
    r->up_retry_after[0] = '\0';
    if (ra != NULL && ra->value_len < sizeof(r->up_retry_after)) {
        memcpy(r->up_retry_after, ra->value, ra->value_len);
        r->up_retry_after[ra->value_len] = '\0';
    }
    const mg_http_header_t *ct = mg_http_header_find(head, "content-type");
    char ctype[64] = "";
    if (ct != NULL) {
        size_t n = ct->value_len < sizeof(ctype) - 1 ? ct->value_len : sizeof(ctype) - 1;
        memcpy(ctype, ct->value, n);
        ctype[n] = '\0';
    }
    if (r->xl != NULL) {
        /* a provider whose error type is a header (Bedrock) always translates: r->xl */
        r->xl->up_error_hdr[0] = '\0';
        const char *ehn = r->prov != NULL ? r->prov->ops->error_header : NULL;
        const mg_http_header_t *eh = head->status >= 300 && ehn != NULL
                                         ? mg_http_header_find(head, ehn)
                                         : NULL;
        if (eh != NULL && eh->value_len < sizeof(r->xl->up_error_hdr)) {
            memcpy(r->xl->up_error_hdr, eh->value, eh->value_len);
            r->xl->up_error_hdr[eh->value_len] = '\0';
        }
    }
    mg_proxy_up_head(r, head->status, ct != NULL ? ctype : NULL);
}

static void
mg_proxy_up_body(mg_request_t *r, const char *data, size_t len)
{
    if (r->state == MG_ATT_STREAMING) {
        int rc = r->up_framing == MG_FRAMING_EVENTSTREAM
                     ? mg_proxy_feed_eventstream(r, data, len)
                     : mg_sse_feed(&r->sse, data, len, mg_proxy_on_sse, r);
        mg_proxy_flush(r);
        if (rc != MG_OK || r->decode_error != NULL) {
            if (r->client != NULL) {
                mg_client_free(r->client);
                r->client = NULL;
            }
            mg_proxy_stats_end(r, false, false);
            if (r->decode_error != NULL) {
                char *msg = mg_arena_printf(r->arena, "moongate: %s", r->decode_error);
                mg_proxy_stream_error(r, 502, msg, "\"None\"");
            } else {
                mg_proxy_stream_error(r, 502, "moongate: upstream sent an event larger than 4 MiB",
                                      "\"None\"");
            }
        }
        return;
    }
    if ((int64_t) (mg_buf_len(&r->up_body) + len) > r->snap->config->max_response_size) {
        if (r->client != NULL) {
            mg_client_free(r->client);
            r->client = NULL;
        }
        mg_proxy_stats_end(r, false, false);
        char *msg = mg_arena_printf(r->arena, "moongate: the upstream response is larger than "
                                              "max_response_size_mb");
        mg_proxy_simple_error(r, 502, msg, "\"None\"", "\"None\"");
        return;
    }
    mg_buf_append(&r->up_body, data, len);
}

static void
mg_proxy_on_body(void *ud, const char *data, size_t len)
{
    mg_proxy_up_body(ud, data, len);
}

static void
mg_proxy_finish_stream(mg_request_t *r, int rc, const mg_err_t *err)
{
    if (rc == MG_OK && mg_proxy_stream_tail_ok(r)) {
        mg_proxy_stats_end(r, !r->stream_errored, false);
        if (r->translate) {
            if (!r->xl->dec.ended) {
                mg_ev_t end = {.kind = MG_EV_END};
                mg_enc_event(&r->xl->enc, &end);
            }
            mg_enc_finish(&r->xl->enc);
        } else {
            mg_relay_end(&r->relay, &r->out);
        }
        mg_proxy_flush(r);
        r->state = MG_ATT_DONE;
        mg_http_stream_end(r->hr);
        return;
    }
    mg_proxy_stats_end(r, false, err != NULL && err->cls == MG_ERR_UPSTREAM_TIMEOUT);
    mg_uperr_t e;
    if (rc == MG_OK) {
        mg_err_t e2;
        mg_err_set(&e2, MG_ERR_UPSTREAM_CONNECT, "upstream ended the stream in the middle of an event");
        mg_provider_error_transport(r->prov, r->dep->provider, &e2, r->dep, &e);
    } else {
        mg_provider_error_transport(r->prov, r->dep->provider, err, r->dep, &e);
    }
    mg_log_ctx_t lc = {r->call_id, r->dep->id, "relaying a stream"};
    mg_log(MG_LOG_WARN, &lc, "stream failed mid-way: %s", e.message);
    char *msg = mg_arena_printf(r->arena, "%s. Received Model Group=%s\nAvailable Model Group "
                                          "Fallbacks=None", e.message, r->group_name);
    int st = e.status;
    char tj[128];
    snprintf(tj, sizeof(tj), "%s", e.type_json);
    mg_uperr_free(&e);
    mg_proxy_stream_error(r, st, msg, tj);
}

/*
 * LiteLLM's router turns a non-stream chat answer whose first choice finished with
 * content_filter (Azure's filtered completions) into ContentPolicyViolationError("Response
 * output was blocked.") when the group has content_policy_fallbacks, so that they run;
 * without one the answer goes to the client as it is.  An answer with no choices counts
 * (LiteLLM's check only looks past an empty list).  Fills e when blocked.
 */
static bool
mg_proxy_blocked(mg_request_t *r, const char *b, size_t bl, mg_uperr_t *e)
{
    json_t *cp = r->snap->config->cp_fallbacks; /* NULL on nearly every config: one load */
    if (cp == NULL || r->api->id != MG_API_OPENAI_CHAT || r->stream) {
        return false;
    }
    bool listed = false;
    size_t i;
    json_t *it;
    json_array_foreach(cp, i, it) {
        listed = listed || json_object_get(it, r->group_name) != NULL;
    }
    if (!listed) {
        return false;
    }
    bool blocked;
    if (r->translate) {
        blocked = r->xl->enc.nchoices == 0 || r->xl->enc.finish[0] == MG_FIN_CONTENT_FILTER;
    } else {
        json_t *j = json_loadb(b, bl, 0, NULL);
        json_t *ch = json_object_get(j, "choices");
        const char *fr = json_string_value(json_object_get(json_array_get(ch, 0),
                                                           "finish_reason"));
        blocked = json_is_array(ch) && (json_array_size(ch) == 0 ||
                                        (fr != NULL && strcmp(fr, "content_filter") == 0));
        json_decref(j);
    }
    if (!blocked) {
        return false;
    }
    mg_uperr_set(e, 400, MG_ERR_CONTENT_POLICY,
                 "litellm.ContentPolicyViolationError: Response output was blocked.");
    e->content_policy = true;
    e->local = true; /* the deployment answered: nothing to cool down */
    return true;
}

/* A complete non-stream answer. */
static void
mg_proxy_answer(mg_request_t *r, const char *b, size_t bl)
{
    mg_uperr_t blocked;
    if (!r->translate) {
        if (mg_proxy_blocked(r, b, bl, &blocked)) {
            mg_proxy_stats_end(r, true, false);
            mg_proxy_fail(r, &blocked);
            return;
        }
        bool restamp = r->restamp && r->api->op != MG_OP_EMBEDDINGS;
        bool rewritten = mg_relay_body(&r->relay, b, bl, restamp, &r->out);
        mg_proxy_stats_end(r, true, false);
        if (rewritten) {
            mg_proxy_respond_ok(r, mg_buf_head(&r->out), mg_buf_len(&r->out));
        } else {
            mg_proxy_respond_ok(r, b, bl);
        }
        return;
    }
    mg_api_err_t aerr;
    if (mg_dec_body(&r->xl->dec, b, bl, &aerr) != MG_OK) {
        mg_proxy_stats_end(r, false, false);
        mg_proxy_unreadable(r, aerr.msg);
        return;
    }
    mg_proxy_stats_end(r, true, false);
    if (mg_proxy_blocked(r, b, bl, &blocked)) {
        mg_proxy_fail(r, &blocked);
        return;
    }
    if (r->stream) {
        /* the client asked for a stream and the upstream answered in one piece */
        mg_proxy_stream_begin(r, 200);
        mg_enc_finish(&r->xl->enc);
        mg_proxy_flush(r);
        r->state = MG_ATT_DONE;
        mg_http_stream_end(r->hr);
        return;
    }
    mg_enc_finish(&r->xl->enc);
    mg_proxy_respond_ok(r, mg_buf_head(&r->out), mg_buf_len(&r->out));
}

static void
mg_proxy_up_done(mg_request_t *r, int rc, const mg_err_t *err)
{
    r->upstream_us_total += mg_time_mono_us() - r->t_upstream_us;
    if (r->client != NULL) {
        mg_client_free(r->client); /* deferred by the client until we return */
        r->client = NULL;
    }
    if (r->state == MG_ATT_DONE) {
        return;
    }
    if (r->state == MG_ATT_STREAMING) {
        mg_proxy_finish_stream(r, rc, err);
        return;
    }
    mg_uperr_t e;
    if (rc != MG_OK) {
        mg_proxy_stats_end(r, false, err->cls == MG_ERR_UPSTREAM_TIMEOUT);
        mg_provider_error_transport(r->prov, r->dep->provider, err, r->dep, &e);
        mg_log_ctx_t lc = {r->call_id, r->dep->id, "calling upstream"};
        mg_log(MG_LOG_INFO, &lc, "upstream exchange failed: %s", err->msg);
        mg_proxy_fail(r, &e);
        return;
    }
    if (r->up_status < 200 || r->up_status >= 300) {
        mg_proxy_stats_end(r, false, false);
        mg_provider_error_http_hdr(r->prov, r->dep->provider, r->up_wire, r->up_status,
                                   r->xl != NULL && r->xl->up_error_hdr[0] != '\0'
                                       ? r->xl->up_error_hdr
                                       : NULL,
                                   mg_buf_head(&r->up_body), mg_buf_len(&r->up_body), &e);
        mg_proxy_fail(r, &e);
        return;
    }
    const char *b = r->up_body.data ? mg_buf_head(&r->up_body) : "";
    mg_proxy_answer(r, b, mg_buf_len(&r->up_body));
}

static void
mg_proxy_on_done(void *ud, int rc, const mg_err_t *err)
{
    mg_proxy_up_done(ud, rc, err);
}

/* A local answer (mock_response), delivered like an upstream's from the event loop. */
static void
mg_proxy_local_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_request_t *r = arg;
    r->timer_on = false;
    mg_buf_t body = r->xl->mock.body;
    r->xl->mock.body = (mg_buf_t) MG_BUF_INIT;
    mg_proxy_up_head(r, r->xl->mock.status, r->xl->mock.ctype);
    if (r->state != MG_ATT_DONE) {
        mg_proxy_up_body(r, body.data ? mg_buf_head(&body) : "", mg_buf_len(&body));
    }
    if (r->state != MG_ATT_DONE) {
        mg_proxy_up_done(r, MG_OK, NULL);
    }
    mg_buf_free(&body);
}

/* ---- attempts, retries, fallbacks ---- */

static int
mg_proxy_group_retries(mg_request_t *r)
{
    mg_config_t *c = r->snap->config;
    if (r->req_num_retries >= 0) {
        return r->req_num_retries;
    }
    json_t *nr = mg_config_router_get(c, "num_retries");
    if (json_is_number(nr)) {
        int n = mg_clamp_int(json_number_value(nr));
        return n > 100 ? 100 : n;
    }
    return 2;
}

/* Orders the current group's candidates; false when none is available (response sent). */
static bool
mg_proxy_route_group(mg_request_t *r, bool respond_if_empty)
{
    if (r->norder == 1 && r->order[0] != NULL && r->group == NULL) {
        return true;
    }
    mg_route_result_t rr;
    mg_route_order(r, &rr);
    if (rr.n == 0) {
        if (!respond_if_empty) {
            return false;
        }
        char *msg = mg_route_no_deployments_message(r, &rr);
        mg_proxy_simple_error(r, 429, msg, "\"None\"", "\"None\"");
        free(msg);
        return false;
    }
    return true;
}

static void
mg_proxy_backoff_done(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_request_t *r = arg;
    r->timer_on = false;
    mg_proxy_attempt(r);
}

/*
 * The deployment an attempt uses.  The request keeps routing on the snapshot it
 * pinned, but a retry or fallback that starts after a newer snapshot was installed
 * takes the deployment's credentials and endpoint from the newer one: a rotated key
 * or moved api_base applies to every upstream request started after the change.
 * The deployment is found by id; a config reload that rotated a key also changed
 * the id (it hashes the parameters, as LiteLLM's does), so then by its position in
 * its model group.  NULL when it has been deleted since.
 */
static mg_deployment_t *
mg_proxy_current_deployment(mg_request_t *r, mg_deployment_t *d)
{
    mg_snapshot_t *cur = r->gw->snap;
    if (cur == NULL || cur == r->snap) {
        return d;
    }
    if (r->att_snap != cur) {
        if (r->att_snap != NULL) {
            mg_snapshot_unref(r->att_snap);
        }
        r->att_snap = mg_snapshot_ref(cur);
    }
    mg_deployment_t *now = mg_registry_by_id(cur, d->id);
    if (now != NULL) {
        return now;
    }
    size_t nl = strlen(d->model_name);
    mg_group_t *was = mg_registry_group(r->snap, d->model_name, nl);
    mg_group_t *is = mg_registry_group(cur, d->model_name, nl);
    if (was == NULL || is == NULL || was->ndeps != is->ndeps) {
        return NULL;
    }
    for (size_t i = 0; i < was->ndeps; i++) {
        if (was->deps[i] == d) {
            /* same place, same model: the same deployment with new parameters */
            now = is->deps[i];
            return strcmp(now->litellm_model, d->litellm_model) == 0 ? now : NULL;
        }
    }
    return NULL;
}

/* LiteLLM's drop_params for this call: the request's, else the deployment's, else global. */
static bool
mg_proxy_drop_params(mg_request_t *r, const mg_deployment_t *d)
{
    const mg_json_member_t *m = mg_api_member(&r->q, "drop_params");
    if (m != NULL && (m->type == MG_JSON_TRUE || m->type == MG_JSON_FALSE)) {
        return m->type == MG_JSON_TRUE;
    }
    if (d->drop_params >= 0) {
        return d->drop_params == 1;
    }
    return r->snap->config->drop_params;
}

/* count_tokens for a deployment whose provider has no counting endpoint: an estimate. */
static void
mg_proxy_count_tokens(mg_request_t *r)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"input_tokens\":%lld}",
                     (long long) mg_api_estimate_input_tokens(&r->q));
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: application/json\r\nx-moongate-token-count: estimate\r\n");
    mg_gw_common_headers(r, &h);
    mg_proxy_success_headers(r, &h);
    r->state = MG_ATT_DONE;
    mg_http_respond(r->hr, 200, mg_buf_head(&h), mg_buf_len(&h), body, (size_t) n);
    mg_buf_free(&h);
}

/* LiteLLM's additional_drop_params: the request's and the deployment's lists together
 * (NULL: the deployment's alone). */
static json_t *
mg_proxy_additional_drop(mg_request_t *r, const mg_deployment_t *d)
{
    if (r->req_drop == NULL) {
        return NULL;
    }
    if (r->req_drop_for != d) {
        json_decref(r->req_drop_all);
        r->req_drop_all = json_copy(r->req_drop);
        json_array_extend(r->req_drop_all, d->additional_drop_params);
        r->req_drop_for = d;
    }
    return r->req_drop_all;
}

/* The error for a deployment whose provider moongate cannot call. */
static void
mg_proxy_no_provider(mg_request_t *r, const mg_deployment_t *d)
{
    mg_uperr_t e;
    if (d->provider[0] == '\0') {
        mg_uperr_set(&e, 400, MG_ERR_BAD_REQUEST,
                     "litellm.BadRequestError: LLM Provider NOT provided. Pass in the LLM provider "
                     "you are trying to call. You passed model=%s", d->litellm_model);
    } else {
        mg_uperr_set(&e, 400, MG_ERR_BAD_REQUEST,
                     "litellm.BadRequestError: moongate does not support provider \"%s\" yet "
                     "(deployment %s, model=%s)", d->provider, d->id, d->litellm_model);
    }
    mg_proxy_fail(r, &e);
}

/* A translated embeddings answer: the vectors in the encoding the client asked for, and the
 * prompt's estimated tokens as usage unless the upstream counts them (Gemini's
 * batchEmbedContents does not; LiteLLM counts them locally). */
static void
mg_proxy_embeddings_init(mg_request_t *r)
{
    const mg_json_member_t *ef = mg_api_member(&r->q, "encoding_format");
    r->xl->enc.embed_base64 = ef != NULL && ef->type == MG_JSON_STRING && ef->val_len == 8 &&
                              memcmp(ef->val, "\"base64\"", 8) == 0;
    int64_t est = mg_api_estimate_input_tokens(&r->q);
    r->usage.prompt_tokens = est;
    r->usage.total_tokens = est;
    r->usage.seen = true;
}

/* ---- the credential step (ops->prepare) ---- */

/*
 * A provider that needs a token minted from its credential (Vertex, Entra) says so from
 * ops->prepare; the token comes from the worker's cache (core/providers/mg_token.h), or
 * the attempt parks behind the one fetch in flight for that credential.  When the token
 * arrives the attempt runs again from the top: the deployment is looked up anew (a
 * rotation during the wait applies) and prepare is asked again; the token the wait
 * delivered is used when it is for the same credential, else the cache is asked again.
 * A client that goes away while parked is unlinked by mg_proxy_abort().
 */
static void
mg_proxy_token_uperr(mg_request_t *r, const mg_provider_t *p, int rc, mg_err_t *err,
                     mg_uperr_t *e)
{
    const char *exc = p->exception_name;
    if (rc == MG_BUSY) {
        mg_uperr_set(e, 503, MG_ERR_UPSTREAM_5XX, "litellm.ServiceUnavailableError: %s - %s", exc,
                     err->msg);
        return;
    }
    if (err->cls == MG_ERR_AUTH || err->cls == MG_ERR_CONFIG) {
        /* a credential that cannot be used: LiteLLM's AuthenticationError, never retried */
        err->cls = MG_ERR_AUTH;
        mg_err_prefix(err, "AuthenticationError: %s - ", exc);
    }
    mg_provider_error_transport(p, r->dep->provider, err, r->dep, e);
}

static void
mg_proxy_token_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_request_t *r = arg;
    r->timer_on = false;
    mg_token_cancel(&r->token_wait);
    mg_err_t err;
    mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "no access token for deployment %s within the "
               "request timeout", r->dep->id);
    mg_uperr_t e;
    mg_proxy_token_uperr(r, r->prov, MG_ERROR, &err, &e);
    mg_proxy_fail(r, &e);
}

static void
mg_proxy_token_ready(void *ud, int rc, const char *token, const mg_err_t *err)
{
    mg_request_t *r = ud;
    if (r->timer_on) {
        evtimer_del(&r->timer);
        r->timer_on = false;
    }
    if (rc == MG_OK) {
        mg_proxy_wipe_token(r);
        r->prep_token = mg_xstrdup(token);
        r->resumed = true;
        mg_proxy_attempt(r);
        return;
    }
    mg_err_t e2 = *err;
    mg_uperr_t e;
    mg_proxy_token_uperr(r, r->prov, rc, &e2, &e);
    mg_proxy_fail(r, &e);
}

/* MG_OK: c->token is set (or not needed); MG_AGAIN: parked; MG_ERROR: e filled. */
static int
mg_proxy_prepare(mg_request_t *r, const mg_provider_t *p, mg_call_t *c, mg_uperr_t *e)
{
    mg_token_src_t need;
    memset(&need, 0, sizeof(need));
    mg_err_t err;
    int rc = p->ops->prepare(p, c, &need, &err);
    if (rc == MG_OK) {
        return MG_OK;
    }
    if (rc == MG_AGAIN && r->prep_token != NULL && strcmp(r->prep_key, need.key) == 0) {
        c->token = r->prep_token; /* what the wait delivered, for this very credential */
        return MG_OK;
    }
    const char *tok = NULL;
    if (rc == MG_AGAIN) {
        rc = mg_token_get(r->gw->tokens, &need, &tok, &r->token_wait, mg_proxy_token_ready, r,
                          &err);
    }
    if (rc == MG_OK) {
        c->token = tok; /* borrowed from the cache until its next call: build runs first */
        return MG_OK;
    }
    if (rc == MG_AGAIN) {
        snprintf(r->prep_key, sizeof(r->prep_key), "%s", need.key);
        r->state = MG_ATT_CREDENTIAL;
        int64_t tms = mg_clamp_i64(mg_proxy_timeout_s(r) * 1000);
        mg_proxy_timer_set(r, tms > INT32_MAX ? INT32_MAX : tms, mg_proxy_token_timeout);
        return MG_AGAIN;
    }
    mg_proxy_token_uperr(r, p, rc, &err, e);
    return MG_ERROR;
}

/* Starts the attempt on r->order[r->order_pos]. */
static void
mg_proxy_attempt(mg_request_t *r)
{
    mg_deployment_t *d = mg_proxy_current_deployment(r, r->order[r->order_pos % r->norder]);
    mg_uperr_t e;
    if (d == NULL) {
        mg_deployment_t *gone = r->order[r->order_pos % r->norder];
        r->dep = NULL; /* nothing to cool down: it no longer exists */
        r->attempts_in_group++;
        mg_uperr_set(&e, 503, MG_ERR_UPSTREAM_5XX,
                     "litellm.ServiceUnavailableError: deployment %s of model group %s was deleted "
                     "while this request was being retried", gone->id, r->group_name);
        mg_proxy_fail(r, &e);
        return;
    }
    r->dep = d;
    bool resumed = r->resumed; /* a re-run after a token wait is the same attempt */
    r->resumed = false;
    if (!resumed) {
        r->attempts_in_group++;
        r->attempts++;
    }
    json_t *mock = r->req_mock != NULL ? r->req_mock : d->mock_response;
    const mg_provider_t *p = mock != NULL ? mg_provider_mock() : d->prov;
    if (p == NULL) {
        r->prov = NULL;
        mg_proxy_no_provider(r, d);
        return;
    }
    r->prov = p;
    /* the upstream model: wildcard captures substituted, else the deployment's */
    if (mock == NULL && d->wildcard && r->wild_matched != NULL) {
        char *lm = mg_registry_wildcard_model(d, r->wild_matched);
        char *prov, *um;
        mg_registry_split_model(lm, json_string_value(json_object_get(d->litellm_params,
                                                                      "custom_llm_provider")),
                                &prov, &um);
        r->upstream_model = mg_arena_strdup(r->arena, um);
        free(lm);
        free(prov);
        free(um);
    } else {
        r->upstream_model = d->upstream_model;
    }
    if (!resumed) {
        mg_trace_attempt_begin(r); /* its span covers the token wait */
    }
    mg_op_t up_op = r->api->op;
    mg_wire_t w = p->ops->wire(p, d, up_op);
    if (up_op == MG_OP_RESPONSES && w != MG_WIRE_OPENAI_RESPONSES) {
        /* a provider without the Responses API: through its chat completions, as LiteLLM */
        up_op = MG_OP_CHAT;
        w = p->ops->wire(p, d, up_op);
    }
    if (w == MG_WIRE_NONE && r->api->op == MG_OP_COUNT_TOKENS) {
        mg_proxy_count_tokens(r);
        return;
    }
    if (w == MG_WIRE_NONE) {
        mg_uperr_set(&e, 400, MG_ERR_BAD_REQUEST, "litellm.BadRequestError: %s does not support %s",
                     p->name, r->route_path);
        mg_proxy_fail(r, &e);
        return;
    }
    r->up_wire = w;
    r->translate = w != r->api->wire;
    mg_api_err_t aerr;
    json_t *neutral = NULL;
    if (r->translate && (neutral = mg_api_neutral(&r->q, &aerr)) == NULL) {
        /* the client's body cannot be carried to this provider at all */
        mg_proxy_simple_error(r, aerr.status, aerr.msg, aerr.type_json, aerr.param_json);
        return;
    }
    mg_call_t c = {
        .dep = d,
        .op = up_op,
        .wire = w,
        .stream = r->stream,
        .upstream_model = r->upstream_model,
        .client = &r->q,
        .native = !r->translate,
        .neutral = neutral,
        .drop_params = mg_proxy_drop_params(r, d),
        .additional_drop = mg_proxy_additional_drop(r, d),
        .client_http = r->hr,
        .arena = r->arena,
        .trace_headers = mg_trace_headers(r),
        .head = &r->up_head,
    };
    /* the answer's state, fresh for each attempt */
    memset(&r->usage, 0, sizeof(r->usage));
    r->cost_usd = 0;
    r->cost_known = false;
    mg_buf_reset(&r->up_body);
    mg_buf_reset(&r->out);
    mg_sse_free(&r->sse);
    mg_relay_init(&r->relay, r->api, r->model, &r->usage);
    if ((r->translate || p->ops->local) && r->xl == NULL) {
        r->xl = mg_xcalloc(1, sizeof(*r->xl));
    }
    if (r->translate) {
        mg_eventstream_decoder_free(&r->xl->es);
        mg_eventstream_decoder_init(&r->xl->es, 0, mg_proxy_on_es_message, r);
        mg_dec_init(&r->xl->dec, w, up_op, &r->usage, mg_proxy_on_nev, r);
        mg_enc_init(&r->xl->enc, r->api, r->stream, r->q.include_usage, r->model, &r->usage,
                    &r->out);
        if (r->api->op == MG_OP_EMBEDDINGS) {
            mg_proxy_embeddings_init(r);
        }
    }
    if (r->api->op == MG_OP_RESPONSES) {
        mg_responses_attempt(r, d, !r->translate, &c);
    }
    r->stream_errored = false;
    r->attempt_metered = false;
    r->restamp = true;
    r->up_status = 0;
    r->up_framing = MG_FRAMING_JSON;
    r->up_retry_after[0] = '\0';
    r->t_upstream_us = mg_time_mono_us();
    r->t_first_byte_us = 0;
    if (p->ops->local) {
        mg_provider_mock_answer(&c, mock, &r->xl->mock);
        if (r->xl->mock.is_error) {
            r->xl->mock.is_error = false;
            mg_proxy_fail(r, &r->xl->mock.error); /* frees its message */
            return;
        }
        r->restamp = r->xl->mock.restamp;
        r->state = MG_ATT_UPSTREAM;
        mg_proxy_timer_set(r, 0, mg_proxy_local_tick);
        return;
    }
    if (p->ops->prepare != NULL) {
        int prc = mg_proxy_prepare(r, p, &c, &e);
        if (prc == MG_AGAIN) {
            return; /* parked: mg_proxy_token_ready() runs the attempt again */
        }
        if (prc != MG_OK) {
            mg_proxy_fail(r, &e);
            return;
        }
    }
    mg_err_t err;
    aerr.status = 0;
    mg_buf_reset(&r->up_head);
    if (p->ops->build(p, &c, &err, &aerr) != MG_OK) {
        if (aerr.status > 0) {
            mg_proxy_uperr_from_api(&aerr, &e);
        } else {
            mg_provider_error_transport(p, d->provider, &err, d, &e);
        }
        mg_proxy_fail(r, &e);
        return;
    }
    r->up_iov = c.body.iov;
    r->up_niov = c.body.niov;
    if (r->translate) {
        r->xl->dec.json_mode = c.json_mode;
    }
    if (d->upstream == NULL) {
        mg_err_set(&err, MG_ERR_BAD_REQUEST, "deployment \"%s\": invalid api_base \"%s\"", d->id,
                   mg_provider_base(p, d) ? mg_provider_base(p, d) : "");
        mg_provider_error_transport(p, d->provider, &err, d, &e);
        mg_proxy_fail(r, &e);
        return;
    }
    double tos = mg_proxy_timeout_s(r);
    int64_t tms = mg_clamp_i64(tos * 1000);
    if (tms > INT32_MAX) {
        tms = INT32_MAX;
    }
    mg_client_timeouts_t to = {0, (int) tms, (int) tms};
    mg_client_cbs_t cbs = {mg_proxy_on_head, mg_proxy_on_body, mg_proxy_on_done};
    int mp = mg_route_max_parallel(r->snap, d);
    if (!mg_stats_try_begin(d->stats_slot, mp)) {
        /* another worker took the last slot since the candidates were ordered */
        mg_uperr_set(&e, 429, MG_ERR_RATE_LIMITED,
                     "litellm.RateLimitError: deployment %s of model group %s is at its "
                     "max_parallel_requests (%d)", d->id, r->group_name, mp);
        e.rate_limit = true;
        e.local = true;
        mg_proxy_fail(r, &e);
        return;
    }
    r->stats_begun = true;
    r->state = MG_ATT_UPSTREAM;
    r->client = mg_client_start(d->upstream, r->up_iov, r->up_niov, &to, &cbs, r, &err);
    if (r->client == NULL) {
        mg_proxy_stats_end(r, false, false);
        mg_provider_error_transport(p, d->provider, &err, d, &e);
        mg_proxy_fail(r, &e);
    }
}

static char *
mg_proxy_fallback_repr(json_t *list)
{
    if (list == NULL) {
        return mg_xstrdup("None");
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, "[", 1);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (i > 0) {
            mg_buf_append_str(&b, ", ");
        }
        if (json_is_string(v)) {
            mg_buf_printf(&b, "'%s'", json_string_value(v));
        } else {
            char *d = json_dumps(v, JSON_COMPACT);
            mg_buf_append_str(&b, d);
            free(d);
        }
    }
    mg_buf_append(&b, "]", 1);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* The final error: the first failure plus LiteLLM's fallback suffix. */
static void
mg_proxy_final_error(mg_request_t *r)
{
    mg_buf_t m = MG_BUF_INIT;
    mg_buf_append_str(&m, r->first_error);
    if (!r->disable_fallbacks && !r->first_no_suffix) {
        char *repr = mg_proxy_fallback_repr(r->fallback_list_repr);
        const char *g = r->primary_group != NULL ? r->primary_group : r->group_name;
        mg_buf_printf(&m, ". Received Model Group=%s\nAvailable Model Group Fallbacks=%s", g, repr);
        free(repr);
        if (r->last_fb_error != NULL) {
            mg_buf_printf(&m, "\nError doing the fallback: %s", r->last_fb_error);
        }
    }
    mg_buf_t h = MG_BUF_INIT;
    mg_proxy_error_headers(r, &h);
    int status = r->first_status;
    if (r->first_up_status > 0) {
        status = r->first_up_status; /* e.g. Anthropic's 529 overloaded_error, unchanged */
    }
    if ((status == 429 || status == 529 || status == 503) && r->up_retry_after[0] != '\0') {
        mg_buf_printf(&h, "retry-after: %s\r\n", r->up_retry_after);
    }
    r->state = MG_ATT_DONE;
    if (r->first_up_body != NULL) {
        /* the upstream's own error body, as it sent it (scrubbed when it was read) */
        r->gw->failures++;
        mg_gw_send_body(r, status, r->first_up_body, strlen(r->first_up_body), mg_buf_cstr(&h));
    } else if (r->first_up_status > 0) {
        mg_gw_error_raw(r, status, r->first_up_message, r->first_up_type, "null",
                        mg_buf_cstr(&h));
    } else {
        mg_gw_error_raw(r, status, mg_buf_cstr(&m), r->first_type, r->first_param,
                        mg_buf_cstr(&h));
    }
    mg_buf_free(&m);
    mg_buf_free(&h);
}

/* "<msg>. Received Model Group=<g>\nAvailable Model Group Fallbacks=<list>" (malloc) */
static char *
mg_proxy_group_message(const char *msg, const char *group, json_t *repr)
{
    char *list = mg_proxy_fallback_repr(repr);
    char *out = NULL;
    if (asprintf(&out, "%s. Received Model Group=%s\nAvailable Model Group Fallbacks=%s", msg, group,
                 list) < 0) {
        abort();
    }
    free(list);
    return out;
}

/* Records the full message of a fallback group that failed for good at the current level. */
static void
mg_proxy_fb_child_failed(mg_request_t *r, char *msg)
{
    if (r->fb_top == NULL) {
        free(msg);
        return;
    }
    free(r->fb_top->last_child);
    r->fb_top->last_child = msg;
}

static void
mg_proxy_fb_free(mg_fb_frame_t *f)
{
    json_decref(f->groups);
    free(f->error);
    free(f->last_child);
    free(f);
}

/* LiteLLM bounds the walk by depth only; a list that names itself round in circles
 * multiplies the tries, so moongate also stops after this many fallback groups. */
#define MG_PROXY_MAX_FALLBACK_GROUPS 64

/*
 * Moves to the next fallback group, depth first: the innermost level's next group,
 * else that level is done and its group's failure (with the last child's error)
 * goes one level up.  False when every level is done.
 */
static bool
mg_proxy_next_fallback(mg_request_t *r)
{
    mg_snapshot_t *s = r->snap;
    while (r->fb_top != NULL) {
        mg_fb_frame_t *f = r->fb_top;
        while (f->pos < json_array_size(f->groups) && r->fb_groups_tried < MG_PROXY_MAX_FALLBACK_GROUPS) {
            json_t *next = json_array_get(f->groups, f->pos++);
            const char *name = json_string_value(next);
            if (name == NULL && json_is_object(next)) {
                name = json_string_value(json_object_get(next, "model"));
            }
            if (name == NULL) {
                continue;
            }
            f->depth++;
            r->fb_groups_tried++;
            r->fallback_depth = f->depth;
            mg_group_t *g = mg_registry_group(s, name, strlen(name));
            mg_deployment_t *byid = g == NULL ? mg_registry_by_id(s, name) : NULL;
            char matched[700];
            const char *wm = NULL;
            if (g == NULL && byid == NULL) {
                g = mg_route_wildcard(r, name, matched, sizeof(matched));
                wm = g ? matched : NULL;
            }
            if (g == NULL && byid == NULL) {
                char *m = NULL;
                if (asprintf(&m, "litellm.BadRequestError: You passed in model=%s. There is no "
                                 "'model_name' with this string ", name) < 0) {
                    abort();
                }
                mg_proxy_fb_child_failed(r, mg_proxy_group_message(m, name, NULL));
                free(m);
                continue;
            }
            r->group = g;
            r->group_name = mg_arena_strdup(r->arena, name);
            r->wild_matched = wm ? mg_arena_strdup(r->arena, wm) : NULL;
            r->fallback_allowed = f->allowed;
            r->norder = 0;
            r->order_pos = 0;
            r->attempts_in_group = 0;
            free(r->grp_error);
            r->grp_error = NULL;
            if (byid != NULL) {
                r->group = NULL;
                r->order[0] = byid;
                r->norder = 1;
            } else if (!mg_proxy_route_group(r, false)) {
                mg_proxy_fb_child_failed(r, mg_route_no_deployments_message(r, NULL));
                continue;
            }
            r->max_retries = mg_proxy_group_retries(r);
            r->retries_left = r->max_retries;
            return true;
        }
        /* this level is done: its group failed, with the last child's error */
        r->fb_top = f->up;
        if (r->fb_top == NULL) {
            free(r->last_fb_error);
            r->last_fb_error = f->last_child;
            f->last_child = NULL;
        } else {
            char *m = NULL;
            if (f->last_child != NULL) {
                if (asprintf(&m, "%s\nError doing the fallback: %s", f->error, f->last_child) < 0) {
                    abort();
                }
            } else {
                m = f->error;
                f->error = NULL;
            }
            mg_proxy_fb_child_failed(r, m);
        }
        mg_proxy_fb_free(f);
    }
    return false;
}

/*
 * The group being tried failed for good (its retries are spent) with e: find its
 * fallbacks and open a level for them when the depth allows (LiteLLM's
 * run_async_fallback: depth >= max_fallbacks raises the group's own error).
 */
static void
mg_proxy_group_failed(mg_request_t *r, const mg_uperr_t *e)
{
    bool primary = r->fb_top == NULL;
    char **msgp = primary ? &r->first_error : &r->grp_error;
    if (*msgp == NULL) {
        *msgp = mg_xstrdup("(no error recorded)");
    }
    json_t *groups = NULL, *repr = NULL;
    uint8_t *allowed = NULL;
    bool raised = false;
    mg_route_fallbacks(r, e, msgp, &groups, &repr, &allowed, &raised);
    json_t *max = mg_config_router_get(r->snap->config, "max_fallbacks");
    int maxfb = json_is_number(max) ? mg_clamp_int(json_number_value(max)) : 5;
    bool open = groups != NULL && json_array_size(groups) > 0 && r->fallback_depth < maxfb;
    /* a list that was found but not walked (past max_fallbacks, or only the group
     * itself): LiteLLM raises the group's own error from inside its fallback block */
    raised = raised || (groups != NULL && !open);
    if (primary) {
        json_decref(r->fallback_list_repr);
        r->fallback_list_repr = json_incref(repr);
        if (raised) {
            free(r->last_fb_error);
            r->last_fb_error = mg_xstrdup(r->first_error);
        }
    }
    char *mine = NULL; /* a fallback group's message with its suffix */
    if (!primary) {
        mg_gwm_fallback(r, r->group_name, false);
        mine = mg_proxy_group_message(r->grp_error, r->group_name, repr);
        if (raised) {
            char *m = NULL;
            if (asprintf(&m, "%s\nError doing the fallback: %s", mine, r->grp_error) < 0) {
                abort();
            }
            free(mine);
            mine = m;
        }
    }
    if (open) {
        mg_fb_frame_t *f = mg_xcalloc(1, sizeof(*f));
        f->up = r->fb_top;
        f->groups = groups;
        f->depth = r->fallback_depth;
        f->allowed = allowed;
        f->error = mine;
        r->fb_top = f;
    } else {
        json_decref(groups);
        if (mine != NULL) {
            mg_proxy_fb_child_failed(r, mine);
        }
    }
    json_decref(repr);
}
static void
mg_proxy_fail(mg_request_t *r, mg_uperr_t *e)
{
    mg_deployment_t *d = r->dep;
    mg_trace_attempt_failed(r, e);
    mg_log_ctx_t lc = {r->call_id, d ? d->id : NULL, NULL};
    /* our own refusals (a head we would not send) are errors; upstream failures are routine */
    mg_log(e->cls == MG_ERR_INTERNAL ? MG_LOG_ERROR : MG_LOG_INFO, &lc, "attempt failed with %d: %s",
           e->status, e->message);
    /* cooldown bookkeeping (shared by all workers) */
    if (d != NULL) {
        if (!e->local) {
            mg_gwm_attempt_end(r, false, e); /* an upstream call (or one built for it) failed */
        }
        mg_route_on_failure(r, d, e);
    }
    /* LiteLLM raises a group's first error once its retries are spent */
    if (r->fb_top == NULL && r->first_error == NULL) {
        r->first_error = mg_xstrdup(e->message);
        r->first_status = e->status;
        r->first_type = mg_arena_strdup(r->arena, e->type_json);
        r->first_param = mg_arena_strdup(r->arena, e->param_json);
        if (e->up_status > 0 && e->up_message != NULL && r->api->wire == r->up_wire) {
            /* a client of the upstream's own wire gets the upstream's error as it was */
            r->first_up_status = e->up_status;
            r->first_up_type = mg_arena_printf(r->arena, "\"%s\"", e->up_type);
            r->first_up_message = mg_arena_strdup(r->arena, e->up_message);
            r->first_up_body = e->up_body ? mg_arena_strdup(r->arena, e->up_body) : NULL;
        }
    } else if (r->fb_top != NULL && r->grp_error == NULL) {
        r->grp_error = mg_xstrdup(e->message);
    }
    /* retry inside the group? */
    int64_t wait_ms = 0;
    if (r->retries_left > 0 && mg_route_should_retry(r, e, &wait_ms)) {
        r->retries_left--;
        r->retries_done++;
        r->order_pos++;
        /* re-run selection so cooled-down deployments are skipped */
        bool routed = true;
        if (r->group != NULL) {
            int keep = r->order_pos;
            routed = mg_proxy_route_group(r, false);
            if (routed) {
                r->order_pos = keep % (r->norder > 0 ? r->norder : 1);
            }
        }
        if (routed) {
            mg_uperr_free(e);
            if (wait_ms > 0) {
                r->state = MG_ATT_BACKOFF;
                mg_proxy_timer_set(r, wait_ms, mg_proxy_backoff_done);
            } else {
                mg_proxy_attempt(r);
            }
            return;
        }
    }
    mg_proxy_group_failed(r, e);
    mg_uperr_free(e);
    if (mg_proxy_next_fallback(r)) {
        mg_proxy_attempt(r);
        return;
    }
    mg_proxy_final_error(r);
}
/* ---- entry points ---- */

static void mg_proxy_admitted(mg_request_t *r);

void
mg_proxy_handle(mg_request_t *r, const char *pm, size_t pml)
{
    mg_gw_t *gw = r->gw;
    r->route_path = r->api->route_path;
    if (!gw->ready || gw->snap == NULL) {
        char *msg = mg_arena_printf(r->arena, "moongate: the model registry is not loaded on this "
                                              "worker yet (%s); retry shortly",
                                    gw->not_ready_reason[0] ? gw->not_ready_reason : "loading");
        mg_gw_error_raw(r, 503, msg, "\"service_unavailable\"", "null", "retry-after: 1\r\n");
        return;
    }
    if (r->snap == NULL) {
        r->snap = mg_snapshot_ref(gw->snap); /* a virtual key pinned it already */
    }
    mg_trace_request_begin(r);
    if (!mg_proxy_parse(r, pm, pml)) {
        return;
    }
    if (!mg_ka_check_model(r)) {
        return;
    }
    if (!mg_proxy_resolve(r)) {
        return;
    }
    mg_api_err_t late;
    if (mg_api_check_late(&r->q, &late) != MG_OK) {
        mg_proxy_simple_error(r, late.status, late.msg, late.type_json, late.param_json);
        return;
    }
    if (r->api->op == MG_OP_RESPONSES && !mg_responses_pin(r)) {
        return; /* previous_response_id names a deployment that cannot answer: said why */
    }
    r->primary_group = r->group_name;
    if (mg_admit(r, mg_proxy_admitted) != MG_OK) {
        return; /* a budget spent or a limit reached (nothing goes upstream), or the limits
                 * are being checked in Redis: mg_proxy_admitted continues */
    }
    mg_proxy_admitted(r);
}

/* Routing, once the request is admitted (at once, or when Redis answered). */
static void
mg_proxy_admitted(mg_request_t *r)
{
    r->max_retries = mg_proxy_group_retries(r);
    r->retries_left = r->max_retries;
    if (!mg_proxy_route_group(r, false)) {
        if (r->filter_denied != NULL) {
            /* tag routing: LiteLLM forces its "no deployments with tag routing" to 401 */
            mg_proxy_simple_error(r, 401, r->filter_denied, "\"None\"", "\"None\"");
            return;
        }
        mg_route_result_t rr;
        mg_route_order(r, &rr);
        mg_uperr_t e;
        if (rr.too_long > 0 && rr.cooled == 0 && rr.busy == 0) {
            /* enable_pre_call_checks: no window fits the prompt; context_window_fallbacks apply */
            int64_t max = 0;
            for (size_t i = 0; r->group != NULL && i < r->group->ndeps; i++) {
                int64_t m = mg_route_max_input(r->group->deps[i]);
                max = m > max ? m : max;
            }
            mg_uperr_set(&e, 400, MG_ERR_CONTEXT_WINDOW,
                         "litellm.ContextWindowExceededError: ContextWindowExceededError: "
                         "Model=%s, Max Input Tokens=%lld, Got=%lld", r->group_name,
                         (long long) max, (long long) (r->est_tokens - 1));
            e.context_window = true;
            e.local = true;
            r->retries_left = 0;
            mg_proxy_fail(r, &e);
            return;
        }
        /* every deployment is cooling down: LiteLLM raises inside its fallback logic,
         * so configured fallbacks still apply; the message carries no group suffix */
        memset(&e, 0, sizeof(e));
        e.status = 429;
        e.cls = MG_ERR_RATE_LIMITED;
        e.rate_limit = true;
        e.type_json = "\"None\"";
        e.param_json = "\"None\"";
        e.message = mg_route_no_deployments_message(r, &rr);
        r->first_no_suffix = true;
        r->retries_left = 0;
        mg_proxy_fail(r, &e);
        return;
    }
    mg_proxy_attempt(r);
}

void
mg_proxy_abort(mg_request_t *r)
{
    mg_admit_abort(r); /* a Redis check still pending: cancelled */
    if (r->client != NULL) {
        mg_client_free(r->client);
        r->client = NULL;
    }
    mg_proxy_stats_end(r, false, false);
    if (r->timer_on) {
        evtimer_del(&r->timer);
        r->timer_on = false;
    }
    mg_token_cancel(&r->token_wait); /* parked on a token fetch: no wake-up follows */
    r->state = MG_ATT_DONE;
}

void
mg_proxy_drain(mg_request_t *r)
{
    if (r->stream_paused && r->client != NULL) {
        r->stream_paused = false;
        mg_client_resume(r->client);
    }
}

void
mg_proxy_cleanup(mg_request_t *r)
{
    mg_reqlog_record(r); /* the admin page's recent requests (LLM routes only) */
    mg_proxy_abort(r);
    mg_trace_request_end(r); /* before the buffers it reads are freed */
    mg_buf_free(&r->up_head);
    mg_buf_free(&r->up_body);
    mg_buf_free(&r->out);
    mg_sse_free(&r->sse);
    if (r->xl != NULL) {
        mg_buf_free(&r->xl->mock.body);
        mg_dec_free(&r->xl->dec);
        mg_enc_free(&r->xl->enc);
        mg_eventstream_decoder_free(&r->xl->es);
        free(r->xl);
        r->xl = NULL;
    }
    mg_api_req_free(&r->q);
    mg_proxy_wipe_token(r);
    free(r->decode_error);
    r->decode_error = NULL;
    json_decref(r->req_fallbacks);
    r->req_fallbacks = NULL;
    json_decref(r->req_mock);
    r->req_mock = NULL;
    json_decref(r->req_drop);
    r->req_drop = NULL;
    json_decref(r->req_drop_all);
    r->req_drop_all = NULL;
    while (r->fb_top != NULL) {
        mg_fb_frame_t *f = r->fb_top;
        r->fb_top = f->up;
        mg_proxy_fb_free(f);
    }
    free(r->grp_error);
    r->grp_error = NULL;
    json_decref(r->fallback_list_repr);
    r->fallback_list_repr = NULL;
    free(r->first_error);
    r->first_error = NULL;
    free(r->last_fb_error);
    r->last_fb_error = NULL;
}
