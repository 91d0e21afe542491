/*
 * mg_provider_anthropic.c -- anthropic/: the Messages API (api.anthropic.com
 * or any api_base speaking it).
 *
 * Speaks the Anthropic wire for chat (and completions and count_tokens);
 * OpenAI-format clients are translated by core/api/mg_api_anthropic.c, and
 * Anthropic-format clients (/v1/messages) are passed through with only the
 * model changed.  Auth is x-api-key (ANTHROPIC_API_KEY), or a Bearer token
 * (ANTHROPIC_AUTH_TOKEN, sk-ant-oat keys).  The client's anthropic-beta
 * reaches Anthropic, merged with what the translated body needs; its
 * anthropic-version too when the body is the client's own.  Errors map to
 * LiteLLM's AnthropicException classes (exception_mapping_utils).
 */
#include "mg_provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_ANTH_VERSION "2023-06-01"

static mg_wire_t
mg_anth_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) p;
    (void) d;
    return op == MG_OP_EMBEDDINGS ? MG_WIRE_NONE : MG_WIRE_ANTHROPIC;
}

static void
mg_anth_fingerprint(const mg_provider_t *p, const mg_deployment_t *d, mg_buf_t *fp)
{
    (void) p;
    (void) d;
    const char *t = getenv("ANTHROPIC_AUTH_TOKEN");
    mg_buf_append_str(fp, t ? t : "");
}

/* The path after the base: LiteLLM appends /v1/messages unless the base already ends so. */
static void
mg_anth_path(const char *base, mg_op_t op, mg_buf_t *out)
{
    size_t bl = strcspn(base, "?#");
    while (bl > 0 && base[bl - 1] == '/') {
        bl--;
    }
    bool full = bl >= 12 && strncmp(base + bl - 12, "/v1/messages", 12) == 0;
    bool v1 = bl >= 3 && strncmp(base + bl - 3, "/v1", 3) == 0;
    if (!full) {
        mg_buf_append_str(out, v1 ? "/messages" : "/v1/messages");
    }
    if (op == MG_OP_COUNT_TOKENS) {
        mg_buf_append_str(out, "/count_tokens");
    }
}

/* anthropic-beta: the client's (or the deployment's) values and the body's, once each. */
static void
mg_anth_betas(const mg_call_t *c, mg_buf_t *h)
{
    mg_buf_t v = MG_BUF_INIT;
    const char *own = json_string_value(json_object_get(c->dep->extra_headers, "anthropic-beta"));
    size_t cl = 0;
    const char *cb = c->client_http ? mg_http_req_header(c->client_http, "anthropic-beta", &cl)
                                    : NULL;
    if (own != NULL) {
        mg_buf_append_str(&v, own);
    } else if (cb != NULL) {
        mg_buf_append(&v, cb, cl);
    }
    if (c->betas != NULL) {
        const char *cur = mg_buf_cstr(&v);
        if (strstr(cur, c->betas) == NULL) {
            if (mg_buf_len(&v) > 0) {
                mg_buf_append(&v, ",", 1);
            }
            mg_buf_append_str(&v, c->betas);
        }
    }
    if (mg_buf_len(&v) > 0) {
        mg_buf_printf(h, "anthropic-beta: %s\r\n", mg_buf_cstr(&v));
    }
    mg_buf_free(&v);
}

/* metadata.user_id is Anthropic's; LiteLLM's own metadata never reaches it. */
static char *
mg_anth_native_members(const mg_call_t *c)
{
    const mg_json_member_t *md = mg_api_member(c->client, "metadata");
    mg_json_member_t uid;
    if (md == NULL || md->type != MG_JSON_OBJECT ||
        mg_json_obj_find(md->val, md->val_len, "user_id", &uid) != 1 ||
        uid.type != MG_JSON_STRING) {
        return NULL;
    }
    return mg_arena_printf(c->arena, ",\"metadata\":{\"user_id\":%.*s}", (int) uid.val_len,
                           uid.val);
}

static int
mg_anth_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    const char *base = mg_provider_base(p, d);
    const char *key = mg_provider_key(p, d);
    const char *token = getenv("ANTHROPIC_AUTH_TOKEN");
    bool has_auth_header = false;
    if (d->extra_headers != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(d->extra_headers, k, v) {
            has_auth_header = has_auth_header || strcasecmp(k, "x-api-key") == 0 ||
                              strcasecmp(k, "authorization") == 0;
        }
    }
    if ((key == NULL || key[0] == '\0') && (token == NULL || token[0] == '\0') &&
        !has_auth_header) {
        mg_err_set(err, MG_ERR_AUTH,
                   "AuthenticationError: Missing Anthropic API Key - A call is being made to "
                   "anthropic but no key is set either in the environment variables or via "
                   "params. Please set `ANTHROPIC_API_KEY` or `ANTHROPIC_AUTH_TOKEN` in your "
                   "environment vars");
        err->status = 401;
        return MG_ERROR;
    }
    const char *extra = c->native && c->op != MG_OP_COUNT_TOKENS ? mg_anth_native_members(c)
                                                                 : NULL;
    if (mg_provider_body(c, c->upstream_model, extra, aerr) != MG_OK) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s", aerr->msg);
        err->status = aerr->status;
        return MG_ERROR;
    }
    mg_buf_t path = MG_BUF_INIT;
    mg_anth_path(base, c->op, &path);
    mg_buf_t *h = c->head;
    mg_provider_head_start(h, base, mg_buf_cstr(&path), NULL);
    mg_buf_free(&path);
    if (mg_provider_value_ok("x-api-key", key, err) != MG_OK ||
        mg_provider_value_ok("authorization", token, err) != MG_OK) {
        return MG_ERROR;
    }
    if (!has_auth_header) {
        if (key != NULL && key[0] != '\0' && strncmp(key, "sk-ant-oat", 10) != 0) {
            mg_buf_printf(h, "x-api-key: %s\r\n", key);
        } else {
            mg_buf_printf(h, "authorization: Bearer %s\r\n",
                          key != NULL && key[0] != '\0' ? key : token);
        }
    }
    /* the version the body is written for: the client's own on a pass-through */
    bool own_version = json_object_get(d->extra_headers, "anthropic-version") != NULL;
    size_t vl = 0;
    const char *cv = c->native && c->client_http
                         ? mg_http_req_header(c->client_http, "anthropic-version", &vl)
                         : NULL;
    if (!own_version) {
        if (cv != NULL && vl > 0) {
            mg_buf_printf(h, "anthropic-version: %.*s\r\n", (int) vl, cv);
        } else {
            mg_buf_append_str(h, "anthropic-version: " MG_ANTH_VERSION "\r\n");
        }
    }
    mg_anth_betas(c, h);
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

static mg_framing_t
mg_anth_framing(const mg_provider_t *p, const mg_call_t *c, const char *ctype)
{
    (void) p;
    (void) c;
    return ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0 ? MG_FRAMING_SSE
                                                                            : MG_FRAMING_JSON;
}

/* LiteLLM's exception mapping for provider "anthropic": text first, then status. */
static void
mg_anth_map_error(const mg_provider_t *p, int status, const char *body, size_t len,
                  mg_uperr_t *out)
{
    (void) p;
    size_t n = len > 4000 ? 4000 : len;
    char *raw = mg_xstrndup(body ? body : "", n);
    mg_wire_err_t we;
    mg_api_wire_error(MG_WIRE_ANTHROPIC, status, body, len, &we);
    if (strstr(raw, "prompt is too long") || strstr(raw, "prompt: length")) {
        mg_uperr_set(out, 400, MG_ERR_CONTEXT_WINDOW,
                     "litellm.ContextWindowExceededError: AnthropicError - %s", raw);
        out->context_window = true;
    } else if (strstr(raw, "overloaded_error")) {
        mg_uperr_set(out, 500, MG_ERR_UPSTREAM_5XX,
                     "litellm.InternalServerError: AnthropicError - %s", raw);
    } else if (strstr(raw, "Invalid API Key")) {
        mg_uperr_set(out, 401, MG_ERR_AUTH, "litellm.AuthenticationError: AnthropicError - %s",
                     raw);
        out->auth = true;
    } else if (strstr(raw, "content filtering policy")) {
        mg_uperr_set(out, 400, MG_ERR_CONTENT_POLICY,
                     "litellm.ContentPolicyViolationError: AnthropicError - %s", raw);
        out->content_policy = true;
    } else {
        switch (status) {
        case 401:
            mg_uperr_set(out, 401, MG_ERR_AUTH,
                         "litellm.AuthenticationError: AnthropicException - %s", raw);
            out->auth = true;
            break;
        case 400:
        case 413:
            mg_uperr_set(out, 400, MG_ERR_BAD_REQUEST,
                         "litellm.BadRequestError: AnthropicException - %s", raw);
            break;
        case 403:
            mg_uperr_set(out, 403, MG_ERR_UPSTREAM_4XX,
                         "litellm.PermissionDeniedError: AnthropicException - %s", raw);
            break;
        case 404:
            mg_uperr_set(out, 404, MG_ERR_UPSTREAM_4XX,
                         "litellm.NotFoundError: AnthropicException - %s", raw);
            out->not_found = true;
            break;
        case 408:
        case 504:
            mg_uperr_set(out, 408, MG_ERR_UPSTREAM_TIMEOUT,
                         "litellm.Timeout: AnthropicException - %s", raw);
            out->timeout = true;
            break;
        case 429:
            mg_uperr_set(out, 429, MG_ERR_RATE_LIMITED,
                         "litellm.RateLimitError: AnthropicException - %s", raw);
            out->rate_limit = true;
            out->type_json = "\"throttling_error\"";
            break;
        case 503:
            mg_uperr_set(out, 503, MG_ERR_UPSTREAM_5XX,
                         "litellm.ServiceUnavailableError: AnthropicException - %s. Handle with "
                         "`litellm.ServiceUnavailableError`.", raw);
            break;
        case 500:
        case 529:
            mg_uperr_set(out, 500, MG_ERR_UPSTREAM_5XX,
                         "litellm.InternalServerError: AnthropicException - %s. Handle with "
                         "`litellm.InternalServerError`.", raw);
            break;
        default:
            mg_uperr_set(out, status >= 500 ? 500 : (status >= 400 ? status : 500),
                         status >= 500 ? MG_ERR_UPSTREAM_5XX : MG_ERR_UPSTREAM_4XX,
                         "litellm.APIConnectionError: AnthropicException - %s", raw);
            break;
        }
    }
    /* an Anthropic-format client gets the upstream's own error as it was */
    if (we.type != NULL) {
        out->up_status = status;
        snprintf(out->up_type, sizeof(out->up_type), "%s", we.type);
        out->up_message = mg_xstrdup(we.message);
        out->up_body = mg_xstrndup(body, len); /* Anthropic's envelope, request_id and all */
    }
    mg_wire_err_free(&we);
    free(raw);
}

static const mg_provider_ops_t mg_anth_ops = {
    .wire = mg_anth_wire,
    .fingerprint = mg_anth_fingerprint,
    .build = mg_anth_build,
    .framing = mg_anth_framing,
    .map_error = mg_anth_map_error,
};

const mg_provider_t mg_provider_anthropic_row = {
    "anthropic", "AnthropicException", &mg_anth_ops, "https://api.anthropic.com",
    {"ANTHROPIC_API_KEY"}, {"ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"}, false,
    {true, true, false, true}, NULL,
};
