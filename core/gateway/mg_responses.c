/*
 * mg_responses.c -- the Responses API's routing: which deployment a request
 * about a stored response goes to.
 *
 * Response ids moongate returns name the deployment that made them, as
 * LiteLLM encodes them (mg_api_resp_id_encode).  POST /v1/responses with a
 * previous_response_id is pinned to that deployment (the stored response lives
 * there) whatever the routing policy would pick, with no fallback to another;
 * GET and DELETE of /v1/responses/{id}, its input_items and cancel go to the
 * deployment the id names, in one upstream exchange.  A deployment deleted
 * since, or one moongate reaches through chat completions (which stores
 * nothing), is a clear error, never another deployment.
 *
 * Owns: per request, an arena struct (r->xl->resp).  The upstream exchange of a
 * stored-response route uses the request's own client, head and body buffers
 * (freed by mg_proxy_abort / mg_proxy_cleanup like a proxied request's).
 */
#include "mg_gw.h"

#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mg_resp_req_s {
    mg_resp_action_t action;    /* stored-response routes */
    const char *id;             /* arena: the id as the client sent it (percent-decoded) */
    mg_resp_id_t rid;           /* arena: what it names */
    const char *query;          /* arena: the client's query string, api-version dropped */
    const char *prev_json;      /* arena: the decoded previous_response_id as JSON text */
    const char *metadata_json;  /* arena: metadata as OpenAI takes it (string values) */
    mg_api_subst_t subst;       /* what a native attempt's spliced body carries instead */
};

static struct mg_resp_req_s *
mg_responses_state(mg_request_t *r)
{
    if (r->xl == NULL) {
        r->xl = mg_xcalloc(1, sizeof(*r->xl)); /* freed in mg_proxy_cleanup() */
    }
    if (r->xl->resp == NULL) {
        r->xl->resp = mg_arena_calloc(r->arena, sizeof(*r->xl->resp));
    }
    return r->xl->resp;
}

/* Whether d answers the Responses API itself (and so stores what it answers). */
static bool
mg_responses_native(const mg_deployment_t *d)
{
    const mg_provider_t *p = d->prov;
    return p != NULL && d->mock_response == NULL &&
           p->ops->wire(p, d, MG_OP_RESPONSES) == MG_WIRE_OPENAI_RESPONSES;
}

static char *
mg_responses_json_str(mg_arena_t *a, const char *s)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_json_str(&b, s, strlen(s));
    char *out = mg_arena_strndup(a, mg_buf_head(&b), mg_buf_len(&b));
    mg_buf_free(&b);
    return out;
}

static void
mg_responses_error(mg_request_t *r, int status, const char *param, const char *msg)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "x-litellm-response-cost: 0\r\n");
    char pj[64] = "null";
    if (param != NULL) {
        snprintf(pj, sizeof(pj), "\"%s\"", param);
    }
    r->state = MG_ATT_DONE;
    mg_gw_error_raw(r, status, msg, "\"invalid_request_error\"", pj, mg_buf_cstr(&h));
    mg_buf_free(&h);
}

/* ---- POST /v1/responses: previous_response_id ---- */

bool
mg_responses_pin(mg_request_t *r)
{
    const mg_json_member_t *m = mg_api_member(&r->q, "previous_response_id");
    if (m == NULL || m->type != MG_JSON_STRING) {
        return true;
    }
    char *id = mg_api_member_str(r->arena, m);
    if (id == NULL) {
        return true;
    }
    struct mg_resp_req_s *x = mg_responses_state(r);
    if (mg_api_resp_id_decode(id, strlen(id), r->arena, &x->rid) != MG_OK) {
        return true; /* an id moongate did not issue: routed as usual, sent as it is */
    }
    x->prev_json = mg_responses_json_str(r->arena, x->rid.response_id);
    if (x->rid.model_id == NULL) {
        return true; /* it names no deployment: routed as usual, sent decoded */
    }
    mg_deployment_t *d = mg_registry_by_id(r->snap, x->rid.model_id);
    if (d == NULL) {
        char *msg = mg_arena_printf(r->arena,
                                    "moongate: previous_response_id \"%s\" was made by deployment "
                                    "\"%s\" (provider %s), which is no longer in the registry "
                                    "(deleted, or its litellm_params changed its id: set "
                                    "model_info.id to keep it stable); the stored response cannot "
                                    "be reached through another deployment", id, x->rid.model_id,
                                    x->rid.provider ? x->rid.provider : "None");
        mg_responses_error(r, 404, "previous_response_id", msg);
        return false;
    }
    bool member = false;
    if (r->group != NULL) {
        for (size_t i = 0; i < r->group->ndeps && !member; i++) {
            member = r->group->deps[i] == d;
        }
    } else {
        member = r->norder == 1 && r->order[0] == d;
    }
    if (!member) {
        char *msg = mg_arena_printf(r->arena,
                                    "moongate: previous_response_id \"%s\" was made by deployment "
                                    "\"%s\" of model group \"%s\", not of the requested model "
                                    "\"%s\"", id, d->id, d->model_name, r->model);
        mg_responses_error(r, 400, "previous_response_id", msg);
        return false;
    }
    if (!mg_responses_native(d)) {
        char *msg = mg_arena_printf(r->arena,
                                    "moongate: previous_response_id \"%s\" was made by deployment "
                                    "\"%s\" (provider %s) through chat completions, and moongate "
                                    "stores no responses (only OpenAI and Azure deployments "
                                    "do); send the whole conversation in 'input' instead", id,
                                    d->id, d->provider);
        mg_responses_error(r, 400, "previous_response_id", msg);
        return false;
    }
    /* the one deployment that has it: no routing choice, no fallback elsewhere */
    r->group = NULL;
    r->order[0] = d;
    r->norder = 1;
    r->order_pos = 0;
    r->disable_fallbacks = true;
    return true;
}

/* LiteLLM's add_openai_metadata: OpenAI's metadata takes string values only, 16 at most. */
static const char *
mg_responses_metadata(mg_request_t *r)
{
    const mg_json_member_t *m = mg_api_member(&r->q, "metadata");
    if (m == NULL || m->type != MG_JSON_OBJECT) {
        return NULL;
    }
    json_t *in = json_loadb(m->val, m->val_len, 0, NULL);
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v) {
        if (json_is_string(v) && strcmp(k, "hidden_params") != 0 && json_object_size(out) < 16) {
            json_object_set(out, k, v);
        }
    }
    char *s = json_dumps(out, JSON_COMPACT);
    const char *res = mg_arena_strdup(r->arena, s);
    free(s);
    json_decref(in);
    json_decref(out);
    return res;
}

void
mg_responses_attempt(mg_request_t *r, mg_deployment_t *d, bool native, mg_call_t *c)
{
    if (!native) {
        mg_enc_set_origin(&r->xl->enc, &r->q, d->provider, d->id);
        return;
    }
    mg_relay_set_origin(&r->relay, d->provider, d->id);
    struct mg_resp_req_s *x = mg_responses_state(r);
    /* 4 slots, at most 2 used: the returns need no check */
    if (x->prev_json != NULL) {
        /* the upstream knows its own id, not the one moongate handed out */
        (void) mg_api_subst_set(&x->subst, "previous_response_id", x->prev_json);
    }
    if (x->metadata_json == NULL) {
        x->metadata_json = mg_responses_metadata(r);
    }
    if (x->metadata_json != NULL) {
        (void) mg_api_subst_set(&x->subst, "metadata", x->metadata_json);
    }
    c->subst = &x->subst;
}

/* ---- GET / DELETE /v1/responses/{id}, input_items, cancel ---- */

static const char *const mg_responses_prefixes[] = {
    "/v1/responses/", "/responses/", "/openai/v1/responses/", "/openai/responses/", NULL,
};

/* The id part of the path and the action its suffix names; NULL when not such a route. */
static const char *
mg_responses_split(const mg_request_t *r, size_t *idlen, mg_resp_action_t *action)
{
    for (const char *const *p = mg_responses_prefixes; *p; p++) {
        size_t pl = strlen(*p);
        if (r->path_len <= pl || memcmp(r->path, *p, pl) != 0) {
            continue;
        }
        const char *id = r->path + pl;
        size_t n = r->path_len - pl;
        *action = MG_RESP_GET;
        if (n > 12 && memcmp(id + n - 12, "/input_items", 12) == 0) {
            n -= 12;
            *action = MG_RESP_INPUT_ITEMS;
        } else if (n > 7 && memcmp(id + n - 7, "/cancel", 7) == 0) {
            n -= 7;
            *action = MG_RESP_CANCEL;
        }
        *idlen = n;
        return n > 0 ? id : NULL;
    }
    return NULL;
}

bool
mg_responses_route(const mg_request_t *r)
{
    size_t n;
    mg_resp_action_t a;
    return mg_responses_split(r, &n, &a) != NULL;
}

static int
mg_responses_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into the arena (a '+' stays: a path, not a form). */
static char *
mg_responses_unescape(mg_arena_t *a, const char *s, size_t n)
{
    char *out = mg_arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = mg_responses_hex(s[i + 1])) >= 0 &&
            (l = mg_responses_hex(s[i + 2])) >= 0) {
            out[o++] = (char) (h * 16 + l);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The client's query string without api-version (the provider sets its own). */
static const char *
mg_responses_query(mg_request_t *r)
{
    const char *t = r->hr->head.target;
    size_t tl = r->hr->head.target_len;
    const char *q = memchr(t, '?', tl);
    if (q == NULL) {
        return NULL;
    }
    q++;
    size_t ql = (size_t) (t + tl - q);
    mg_buf_t b = MG_BUF_INIT;
    while (ql > 0) {
        size_t n = 0;
        while (n < ql && q[n] != '&') {
            n++;
        }
        if (n > 0 && !(n >= 12 && memcmp(q, "api-version=", 12) == 0)) {
            if (mg_buf_len(&b) > 0) {
                mg_buf_append(&b, "&", 1);
            }
            mg_buf_append(&b, q, n);
        }
        q += n < ql ? n + 1 : n;
        ql -= n < ql ? n + 1 : n;
    }
    const char *res = mg_buf_len(&b) ? mg_arena_strndup(r->arena, mg_buf_head(&b), mg_buf_len(&b))
                                     : NULL;
    mg_buf_free(&b);
    return res;
}

static void
mg_responses_on_head(void *ud, const mg_http_head_t *head)
{
    mg_request_t *r = ud;
    r->up_status = head->status;
}

static void
mg_responses_on_body(void *ud, const char *data, size_t len)
{
    mg_request_t *r = ud;
    if ((int64_t) (mg_buf_len(&r->up_body) + len) <= r->snap->config->max_response_size) {
        mg_buf_append(&r->up_body, data, len);
    } else {
        r->stream_errored = true; /* too large: answered as an error when it ends */
    }
}

static void
mg_responses_on_done(void *ud, int rc, const mg_err_t *err)
{
    mg_request_t *r = ud;
    struct mg_resp_req_s *x = mg_responses_state(r);
    if (r->client != NULL) {
        mg_client_free(r->client); /* deferred by the client until we return */
        r->client = NULL;
    }
    if (r->state == MG_ATT_DONE) {
        return;
    }
    mg_uperr_t e;
    if (rc != MG_OK) {
        mg_provider_error_transport(r->prov, r->dep->provider, err, r->dep, &e);
    } else if (r->stream_errored) {
        mg_uperr_set(&e, 502, MG_ERR_UPSTREAM_5XX, "moongate: the upstream response is larger "
                                                   "than max_response_size_mb");
    } else if (r->up_status < 200 || r->up_status >= 300) {
        mg_provider_error_http(r->prov, r->dep->provider, MG_WIRE_OPENAI_RESPONSES, r->up_status,
                               mg_buf_head(&r->up_body), mg_buf_len(&r->up_body), &e);
    } else {
        const char *b = r->up_body.data ? mg_buf_head(&r->up_body) : "";
        size_t bl = mg_buf_len(&r->up_body);
        mg_buf_t h = MG_BUF_INIT;
        mg_buf_printf(&h, "x-litellm-model-id: %s\r\nx-litellm-model-group: %s\r\n", r->dep->id,
                      r->dep->model_name);
        r->state = MG_ATT_DONE;
        if (x->action != MG_RESP_INPUT_ITEMS) {
            /* the id the client knows, not the upstream's */
            mg_relay_init(&r->relay, r->api, NULL, &r->usage);
            mg_relay_set_origin(&r->relay, r->dep->provider, r->dep->id);
            if (mg_relay_body(&r->relay, b, bl, false, &r->out)) {
                b = mg_buf_head(&r->out);
                bl = mg_buf_len(&r->out);
            }
        }
        mg_gw_send_body(r, r->up_status, b, bl, mg_buf_cstr(&h));
        mg_buf_free(&h);
        return;
    }
    mg_log_ctx_t lc = {r->call_id, r->dep->id, "a stored response"};
    mg_log(MG_LOG_INFO, &lc, "upstream answered %d: %s", e.status, e.message);
    r->state = MG_ATT_DONE;
    mg_gw_error_raw(r, e.status, e.message, e.type_json, e.param_json, NULL);
    mg_uperr_free(&e);
}

void
mg_responses_handle(mg_request_t *r, const char *method, size_t mlen)
{
    mg_gw_t *gw = r->gw;
    struct mg_resp_req_s *x = mg_responses_state(r);
    size_t idlen;
    const char *raw = mg_responses_split(r, &idlen, &x->action);
    bool get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    bool del = mlen == 6 && memcmp(method, "DELETE", 6) == 0;
    bool post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    if (x->action == MG_RESP_GET && del) {
        x->action = MG_RESP_DELETE;
    }
    if ((x->action == MG_RESP_GET && !get) || (x->action == MG_RESP_INPUT_ITEMS && !get) ||
        (x->action == MG_RESP_CANCEL && !post)) {
        mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
        return;
    }
    if (!gw->ready || gw->snap == NULL) {
        mg_gw_error_raw(r, 503, "moongate: the model registry is not loaded on this worker yet; "
                                "retry shortly", "\"service_unavailable\"", "null",
                        "retry-after: 1\r\n");
        return;
    }
    r->snap = mg_snapshot_ref(gw->snap);
    x->id = mg_responses_unescape(r->arena, raw, idlen);
    if (mg_api_resp_id_decode(x->id, strlen(x->id), r->arena, &x->rid) != MG_OK ||
        x->rid.model_id == NULL) {
        char *msg = mg_arena_printf(r->arena, "moongate: response id \"%s\" was not issued by this "
                                              "gateway: it names no deployment to ask for it",
                                    x->id);
        mg_responses_error(r, 404, NULL, msg);
        return;
    }
    mg_deployment_t *d = mg_registry_by_id(r->snap, x->rid.model_id);
    if (d == NULL) {
        char *msg = mg_arena_printf(r->arena,
                                    "moongate: response \"%s\" was made by deployment \"%s\" "
                                    "(provider %s), which is no longer in the registry (deleted, "
                                    "or its litellm_params changed its id)", x->id,
                                    x->rid.model_id, x->rid.provider ? x->rid.provider : "None");
        mg_responses_error(r, 404, NULL, msg);
        return;
    }
    if (!mg_responses_native(d)) {
        char *msg = mg_arena_printf(r->arena,
                                    "moongate: response \"%s\" was made by deployment \"%s\" "
                                    "(provider %s) through chat completions; moongate stores no "
                                    "responses, only OpenAI and Azure deployments do", x->id,
                                    d->id, d->provider);
        mg_responses_error(r, 404, NULL, msg);
        return;
    }
    r->dep = d;
    r->prov = d->prov;
    x->query = x->action == MG_RESP_GET || x->action == MG_RESP_INPUT_ITEMS ? mg_responses_query(r)
                                                                            : NULL;
    if (x->query != NULL && (strstr(x->query, "stream=true") != NULL)) {
        mg_responses_error(r, 400, "stream", "moongate: streaming a stored response again "
                                             "(stream=true) is not supported; GET it whole");
        return;
    }
    mg_call_t c = {
        .dep = d,
        .op = MG_OP_RESPONSES,
        .wire = MG_WIRE_OPENAI_RESPONSES,
        .upstream_model = d->upstream_model,
        .client_http = r->hr,
        .arena = r->arena,
        .head = &r->up_head,
        .resp_action = x->action,
        .resp_id = x->rid.response_id,
        .resp_query = x->query,
    };
    mg_err_t err;
    mg_api_err_t aerr;
    aerr.status = 0;
    mg_uperr_t e;
    if (r->prov->ops->build(r->prov, &c, &err, &aerr) != MG_OK) {
        mg_provider_error_transport(r->prov, d->provider, &err, d, &e);
        r->state = MG_ATT_DONE;
        mg_gw_error_raw(r, e.status, e.message, e.type_json, e.param_json, NULL);
        mg_uperr_free(&e);
        return;
    }
    if (d->upstream == NULL) {
        mg_responses_error(r, 400, NULL, mg_arena_printf(r->arena, "deployment \"%s\": invalid "
                                                                   "api_base", d->id));
        return;
    }
    r->up_iov = c.body.iov;
    r->up_niov = c.body.niov;
    double tos = d->timeout > 0 ? d->timeout : r->snap->config->request_timeout;
    int64_t tms = tos > 0 ? (int64_t) (tos * 1000) : 600000;
    if (tms > INT32_MAX) {
        tms = INT32_MAX;
    }
    mg_client_timeouts_t to = {0, (int) tms, (int) tms};
    mg_client_cbs_t cbs = {mg_responses_on_head, mg_responses_on_body, mg_responses_on_done};
    r->state = MG_ATT_UPSTREAM;
    r->t_upstream_us = mg_time_mono_us();
    r->client = mg_client_start(d->upstream, r->up_iov, r->up_niov, &to, &cbs, r, &err);
    if (r->client == NULL) {
        mg_provider_error_transport(r->prov, d->provider, &err, d, &e);
        r->state = MG_ATT_DONE;
        mg_gw_error_raw(r, e.status, e.message, e.type_json, e.param_json, NULL);
        mg_uperr_free(&e);
    }
}
