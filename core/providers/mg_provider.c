/*
 * mg_provider.c -- the provider table, credentials from params and the
 * environment, the credential fingerprint, and the pieces of an upstream
 * request every provider builds the same way.
 */
#include "mg_provider.h"

#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const mg_provider_t mg_provider_openai_rows[];
extern const size_t mg_provider_openai_nrows;
extern const mg_provider_t mg_provider_anthropic_row;
extern const mg_provider_t mg_provider_mock_row;
extern const mg_provider_t mg_provider_gemini_row;
extern const mg_provider_t mg_provider_vertex_row;
extern const mg_provider_t mg_provider_bedrock_row;
extern const mg_provider_t mg_provider_azure_rows[];
extern const size_t mg_provider_azure_nrows;

const mg_provider_t *
mg_provider_find(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < mg_provider_openai_nrows; i++) {
        if (strcmp(mg_provider_openai_rows[i].name, name) == 0) {
            return &mg_provider_openai_rows[i];
        }
    }
    if (strcmp(mg_provider_anthropic_row.name, name) == 0) {
        return &mg_provider_anthropic_row;
    }
    if (strcmp(mg_provider_gemini_row.name, name) == 0) {
        return &mg_provider_gemini_row;
    }
    if (strcmp(mg_provider_vertex_row.name, name) == 0) {
        return &mg_provider_vertex_row;
    }
    if (strcmp(mg_provider_bedrock_row.name, name) == 0) {
        return &mg_provider_bedrock_row;
    }
    for (size_t i = 0; i < mg_provider_azure_nrows; i++) {
        if (strcmp(mg_provider_azure_rows[i].name, name) == 0) {
            return &mg_provider_azure_rows[i];
        }
    }
    return NULL;
}

const mg_provider_t *
mg_provider_mock(void)
{
    return &mg_provider_mock_row;
}

static const char *
mg_provider_env(const char *const names[3])
{
    for (int i = 0; i < 3 && names[i] != NULL; i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && v[0] != '\0') {
            return v;
        }
    }
    return NULL;
}

const char *
mg_provider_base(const mg_provider_t *p, const mg_deployment_t *d)
{
    if (p->ops->base != NULL) {
        return p->ops->base(p, d);
    }
    if (d->api_base != NULL && d->api_base[0] != '\0') {
        return d->api_base;
    }
    const char *e = mg_provider_env(p->env_base);
    return e != NULL ? e : p->default_base;
}

const char *
mg_provider_key(const mg_provider_t *p, const mg_deployment_t *d)
{
    if (d->api_key != NULL && d->api_key[0] != '\0') {
        return d->api_key;
    }
    return mg_provider_env(p->env_key);
}

/* litellm_params that do not change who we talk to or as whom (routing, pricing,
 * request defaults): everything else, unknown keys included, is fingerprinted. */
static const char *const mg_provider_not_credentials[] = {
    "rpm", "tpm", "weight", "order", "timeout", "stream_timeout", "request_timeout",
    "num_retries", "max_retries", "cooldown_time", "tags", "max_parallel_requests",
    "mock_response", "input_cost_per_token", "output_cost_per_token", "input_cost_per_second",
    "output_cost_per_second", "drop_params", "additional_drop_params", "temperature",
    "max_tokens", "top_p", "seed", NULL,
};

void
mg_provider_cred_hash(const mg_provider_t *p, const mg_deployment_t *d, char out[65])
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_printf(&b, "%s|", d->provider);
    json_t *lp = json_copy(d->litellm_params);
    for (const char *const *k = mg_provider_not_credentials; *k; k++) {
        json_object_del(lp, *k);
    }
    char *s = json_dumps(lp, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(lp);
    if (s != NULL) {
        mg_buf_append_str(&b, s);
        free(s);
    }
    if (p != NULL) {
        /* what the provider takes from the environment counts too */
        mg_buf_append(&b, "|", 1);
        const char *base = mg_provider_base(p, d);
        mg_buf_append_str(&b, base ? base : "");
        mg_buf_append(&b, "|", 1);
        const char *key = mg_provider_key(p, d);
        mg_buf_append_str(&b, key ? key : "");
        if (p->ops->fingerprint != NULL) {
            mg_buf_append(&b, "|", 1);
            p->ops->fingerprint(p, d, &b);
        }
    }
    mg_sha256_hex(mg_buf_head(&b), mg_buf_len(&b), out);
    mg_buf_free(&b);
}

/* ---- request pieces ---- */

void
mg_provider_path_segment(mg_buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~:@!$&'()*+,;=", *p) != NULL) {
            mg_buf_append(out, (const char *) p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            mg_buf_append(out, e, 3);
        }
    }
}

/* method_sp: the method with its trailing space ("POST "). */
static void
mg_provider_head_line(mg_buf_t *out, const char *method_sp, const char *base, const char *suffix,
                      const char *query)
{
    /* base as a URL: authority, path, query (the config loader refused userinfo and
     * fragments); the route goes after the path, the query after the route */
    const char *hp = strstr(base, "://");
    hp = hp ? hp + 3 : base;
    const char *path = hp + strcspn(hp, "/?#");
    size_t hostlen = (size_t) (path - hp);
    size_t plen = strcspn(path, "?#");
    const char *bq = path[plen] == '?' ? path + plen + 1 : NULL;
    size_t bql = bq != NULL ? strcspn(bq, "#") : 0;
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    mg_buf_append_str(out, method_sp);
    mg_buf_append(out, path, plen);
    mg_buf_append_str(out, suffix);
    bool q = false;
    if (query != NULL && query[0] != '\0') {
        mg_buf_append_str(out, query); /* given with its '?' */
        q = true;
    }
    if (bql > 0) {
        mg_buf_append(out, q ? "&" : "?", 1);
        mg_buf_append(out, bq, bql);
    }
    mg_buf_append_str(out, " HTTP/1.1\r\nhost: ");
    mg_buf_append(out, hp, hostlen);
    mg_buf_append_str(out, "\r\ncontent-type: application/json\r\naccept: application/json\r\n"
                           "user-agent: moongate/" MG_VERSION "\r\n");
}

void
mg_provider_head_start(mg_buf_t *out, const char *base, const char *suffix, const char *query)
{
    mg_provider_head_line(out, "POST ", base, suffix, query);
}

void
mg_provider_head_method(mg_buf_t *out, const char *method, const char *base, const char *suffix,
                        const char *query)
{
    char m[16];
    snprintf(m, sizeof(m), "%s ", method);
    mg_provider_head_line(out, m, base, suffix, query);
}

void
mg_provider_extra_headers(const mg_deployment_t *d, mg_buf_t *out)
{
    if (d->extra_headers == NULL) {
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(d->extra_headers, k, v) {
        if (!json_is_string(v) || strcasecmp(k, "host") == 0 ||
            strcasecmp(k, "content-length") == 0 || strcasecmp(k, "transfer-encoding") == 0 ||
            strcasecmp(k, "connection") == 0) {
            continue;
        }
        mg_buf_printf(out, "%s: %s\r\n", k, json_string_value(v));
    }
}

/* Client headers never forwarded, whatever a list says: framing, and our own credentials. */
static bool
mg_provider_never_forwarded(const char *h)
{
    static const char *const deny[] = {
        "host", "content-length", "transfer-encoding", "connection", "authorization",
        "proxy-authorization", "x-api-key", "api-key", "x-litellm-api-key", "x-goog-api-key",
        "ocp-apim-subscription-key", "cookie", "upgrade", "te", "keep-alive", NULL,
    };
    for (const char *const *d = deny; *d; d++) {
        if (strcasecmp(*d, h) == 0) {
            return true;
        }
    }
    return false;
}

static void
mg_provider_forward_one(const mg_call_t *c, const char *h, mg_buf_t *out)
{
    if (mg_provider_never_forwarded(h)) {
        return;
    }
    if (c->trace_headers != NULL &&
        (strcasecmp(h, "traceparent") == 0 || strcasecmp(h, "tracestate") == 0)) {
        return; /* tracing sends the attempt's own trace context */
    }
    /* the deployment's own extra_headers win over the client's */
    if (c->dep->extra_headers != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(c->dep->extra_headers, k, v) {
            if (strcasecmp(k, h) == 0) {
                return;
            }
        }
    }
    char lower[128];
    size_t n = strlen(h);
    if (n >= sizeof(lower)) {
        return;
    }
    for (size_t i = 0; i <= n; i++) {
        lower[i] = (char) (h[i] >= 'A' && h[i] <= 'Z' ? h[i] + 32 : h[i]);
    }
    size_t vl;
    const char *v = mg_http_req_header(c->client_http, lower, &vl);
    if (v != NULL) {
        mg_buf_printf(out, "%s: %.*s\r\n", lower, (int) vl, v);
    }
}

void
mg_provider_client_headers(const mg_provider_t *p, const mg_call_t *c, mg_buf_t *out)
{
    if (c->client_http == NULL) {
        return;
    }
    for (const char *const *h = p->forward_headers; h != NULL && *h; h++) {
        mg_provider_forward_one(c, *h, out);
    }
    /* what the deployment adds to its provider's list (litellm_params.forward_client_headers) */
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c->dep->litellm_params, "forward_client_headers"), i, v) {
        const char *h = json_string_value(v);
        bool listed = false;
        for (const char *const *ph = p->forward_headers; h && ph && *ph; ph++) {
            listed = listed || strcasecmp(*ph, h) == 0;
        }
        if (h != NULL && !listed) {
            mg_provider_forward_one(c, h, out);
        }
    }
}

int
mg_provider_body(mg_call_t *c, const char *model, const char *extra_members, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    mg_body_opts_t o = {
        .model = model,
        .stream = c->stream,
        .drop_params = c->drop_params,
        .defaults = d->defaults,
        .additional_drop = c->additional_drop != NULL ? c->additional_drop
                                                      : d->additional_drop_params,
        .provider = d->provider,
        .extra_members = extra_members,
        .client_model = c->client != NULL ? c->client->model : NULL,
        .json_mode = &c->json_mode,
        .betas = &c->betas,
        .subst = c->subst,
    };
    /* [0] is the head, filled by mg_provider_head_end */
    mg_iovs_push(&c->body, c->arena, "", 1);
    c->body.len = 0;
    if (c->native) {
        mg_api_splice(c->client, &o, c->arena, &c->body);
        return MG_OK;
    }
    mg_buf_t b = MG_BUF_INIT;
    if (mg_api_build(c->wire, c->op, c->neutral, &o, &b, aerr) != MG_OK) {
        mg_buf_free(&b);
        return MG_ERROR;
    }
    char *s = mg_arena_strndup(c->arena, mg_buf_head(&b), mg_buf_len(&b));
    mg_iovs_push(&c->body, c->arena, s, mg_buf_len(&b));
    mg_buf_free(&b);
    return MG_OK;
}

void
mg_provider_responses_path(const mg_call_t *c, mg_buf_t *path)
{
    mg_buf_append_str(path, "/responses");
    if (c->resp_action == MG_RESP_CREATE || c->resp_id == NULL) {
        return;
    }
    mg_buf_append(path, "/", 1);
    mg_provider_path_segment(path, c->resp_id);
    if (c->resp_action == MG_RESP_INPUT_ITEMS) {
        mg_buf_append_str(path, "/input_items");
    } else if (c->resp_action == MG_RESP_CANCEL) {
        mg_buf_append_str(path, "/cancel");
    }
}

const char *
mg_provider_responses_method(const mg_call_t *c)
{
    switch (c->resp_action) {
    case MG_RESP_GET:
    case MG_RESP_INPUT_ITEMS: return "GET";
    case MG_RESP_DELETE: return "DELETE";
    default: return "POST";
    }
}

void
mg_provider_no_body(mg_call_t *c)
{
    mg_iovs_push(&c->body, c->arena, "", 1);
    c->body.len = 0;
}

void
mg_provider_head_end(mg_call_t *c)
{
    if (c->trace_headers != NULL) {
        mg_buf_append_str(c->head, c->trace_headers);
    }
    mg_buf_printf(c->head, "content-length: %zu\r\n\r\n", c->body.len);
    c->body.iov[0].iov_base = mg_buf_head(c->head);
    c->body.iov[0].iov_len = mg_buf_len(c->head);
}

int
mg_provider_value_ok(const char *header, const char *v, mg_err_t *err)
{
    if (v == NULL || strpbrk(v, "\r\n") == NULL) {
        return MG_OK; /* a NUL ends the C string: it cannot be written */
    }
    return mg_err_set(err, MG_ERR_INTERNAL, "refusing to send an upstream request head with a raw "
                                            "CR/LF/NUL in header \"%s\"", header);
}
