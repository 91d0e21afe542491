/*
 * mg_provider_gemini.c -- gemini/: the Gemini API (Google AI Studio,
 * generativelanguage.googleapis.com/v1beta), and the Google error mapping both Google
 * providers share (mg_google.h).
 *
 * Speaks the Gemini wire (core/api/mg_api_gemini.c) for chat and embeddings:
 * POST <base>/models/<model>:generateContent, :streamGenerateContent?alt=sse,
 * :batchEmbedContents, with base https://generativelanguage.googleapis.com/v1beta, or
 * api_base / GEMINI_API_BASE (LiteLLM appends /models/<model>:<method> to a custom base).
 * The key (api_key, GEMINI_API_KEY, GOOGLE_API_KEY) goes in the x-goog-api-key header and
 * never in the URL, which logs, errors and x-litellm-model-api-base show.  Count tokens is
 * estimated (no countTokens call); legacy completions are not offered.
 */
#include "mg_google.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the shared Google error mapping (LiteLLM's _map_vertex_exception) ---- */

static bool
mg_google_icontains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, nl) == 0) {
            return true;
        }
    }
    return false;
}

/* resource[\s_]exhausted, case-insensitively */
static bool
mg_google_resource_exhausted(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (strncasecmp(p, "resource", 8) == 0 && (p[8] == '_' || isspace((unsigned char) p[8])) &&
            strncasecmp(p + 9, "exhausted", 9) == 0) {
            return true;
        }
    }
    return false;
}

/* ExceptionCheckers.is_error_str_context_window_exceeded */
static bool
mg_google_context_window(const char *s)
{
    static const char *const pats[] = {
        "exceed context limit", "this model's maximum context length is",
        "string too long. expected a string with maximum length", "model's maximum context limit",
        "is longer than the model's context length", "input tokens exceed the configured limit",
        "`inputs` tokens + `max_new_tokens` must be", "exceeds the available context size",
        "exceeds the maximum number of tokens allowed", NULL,
    };
    if (mg_google_icontains(s, "string_above_max_length")) {
        return false;
    }
    for (const char *const *p = pats; *p; p++) {
        if (mg_google_icontains(s, *p)) {
            return true;
        }
    }
    return (mg_google_icontains(s, "current length is") && mg_google_icontains(s, "while limit is")) ||
           (mg_google_icontains(s, "maximum input length is") && mg_google_icontains(s, "tokens"));
}

/* The body's error.code (Google's envelope), or 0. */
static int
mg_google_body_code(const char *body, size_t len)
{
    json_t *j = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, NULL);
    json_t *root = json_is_array(j) ? json_array_get(j, 0) : j;
    json_t *c = json_object_get(json_object_get(root, "error"), "code");
    int code = json_is_integer(c) ? (int) json_integer_value(c) : 0;
    json_decref(j);
    return code;
}

void
mg_google_map_error(const char *provider, int status, const char *body, size_t len,
                    mg_uperr_t *out)
{
    size_t n = len > 4000 ? 4000 : len;
    char *raw = mg_xstrndup(body ? body : "", n);
    char cap[32];   /* str.capitalize(): "Vertex_ai", "Gemini" */
    snprintf(cap, sizeof(cap), "%s", provider);
    cap[0] = (char) toupper((unsigned char) cap[0]);
    for (size_t i = 1; cap[i]; i++) {
        cap[i] = (char) tolower((unsigned char) cap[i]);
    }
    if (strstr(raw, "Vertex AI API has not been used in project") ||
        strstr(raw, "Unable to find your project")) {
        mg_uperr_set(out, 400, MG_ERR_BAD_REQUEST,
                     "litellm.BadRequestError: litellm.BadRequestError: %sException - %s",
                     provider, raw);
    } else if (strstr(raw, "400 Request payload size exceeds")) {
        mg_uperr_set(out, 400, MG_ERR_CONTEXT_WINDOW,
                     "litellm.ContextWindowExceededError: %sException - %s", cap, raw);
        out->context_window = true;
    } else if (mg_google_context_window(raw)) {
        mg_uperr_set(out, 400, MG_ERR_CONTEXT_WINDOW,
                     "litellm.ContextWindowExceededError: ContextWindowExceededError: "
                     "%sException - %s", cap, raw);
        out->context_window = true;
    } else if (strstr(raw, "None Unknown Error.") || strstr(raw, "Content has no parts.")) {
        mg_uperr_set(out, 500, MG_ERR_UPSTREAM_5XX,
                     "litellm.InternalServerError: litellm.InternalServerError: %sException - %s",
                     provider, raw);
    } else if (strstr(raw, "API key not valid.")) {
        mg_uperr_set(out, 401, MG_ERR_AUTH, "litellm.AuthenticationError: %sException - %s", cap,
                     raw);
        out->auth = true;
    } else if (status == 403) {
        /* LiteLLM raises BadRequestError for a 403 (status 400 to the client) */
        mg_uperr_set(out, 400, MG_ERR_BAD_REQUEST,
                     "litellm.BadRequestError: %sException BadRequestError - %s", cap, raw);
    } else if (strstr(raw, "The response was blocked.") ||
               strstr(raw, "Output blocked by content filtering policy")) {
        mg_uperr_set(out, 400, MG_ERR_CONTENT_POLICY,
                     "litellm.ContentPolicyViolationError: %sException "
                     "ContentPolicyViolationError - %s", cap, raw);
        out->content_policy = true;
    } else if (strstr(raw, "429 Quota exceeded") || strstr(raw, "Quota exceeded for") ||
               mg_google_resource_exhausted(raw) ||
               strstr(raw, "IndexError: list index out of range") ||
               strstr(raw, "429 Unable to submit request because the service is temporarily out "
                           "of capacity.") ||
               (status >= 500 && status < 600 && mg_google_body_code(body, len) == 429)) {
        mg_uperr_set(out, 429, MG_ERR_RATE_LIMITED,
                     "litellm.RateLimitError: litellm.RateLimitError: %sException - %s", provider,
                     raw);
        out->rate_limit = true;
        out->type_json = "\"throttling_error\"";
    } else if (strstr(raw, "500 Internal Server Error") || strstr(raw, "The model is overloaded.")) {
        mg_uperr_set(out, 500, MG_ERR_UPSTREAM_5XX,
                     "litellm.InternalServerError: litellm.InternalServerError: %sException - %s",
                     provider, raw);
    } else {
        switch (status) {
        case 400:
            mg_uperr_set(out, 400, MG_ERR_BAD_REQUEST,
                         "litellm.BadRequestError: %sException BadRequestError - %s", cap, raw);
            break;
        case 401:
            mg_uperr_set(out, 401, MG_ERR_AUTH, "litellm.AuthenticationError: %sException - %s",
                         cap, raw);
            out->auth = true;
            break;
        case 404:
            mg_uperr_set(out, 404, MG_ERR_UPSTREAM_4XX, "litellm.NotFoundError: %sException - %s",
                         cap, raw);
            out->not_found = true;
            break;
        case 408:
            mg_uperr_set(out, 408, MG_ERR_UPSTREAM_TIMEOUT, "litellm.Timeout: %sException - %s",
                         cap, raw);
            out->timeout = true;
            break;
        case 429:
            mg_uperr_set(out, 429, MG_ERR_RATE_LIMITED,
                         "litellm.RateLimitError: litellm.RateLimitError: %sException - %s", cap,
                         raw);
            out->rate_limit = true;
            out->type_json = "\"throttling_error\"";
            break;
        case 500:
            mg_uperr_set(out, 500, MG_ERR_UPSTREAM_5XX,
                         "litellm.InternalServerError: %sException InternalServerError - %s", cap,
                         raw);
            break;
        case 502:
            mg_uperr_set(out, 500, MG_ERR_UPSTREAM_5XX,
                         "litellm.APIConnectionError: %sException - %s", cap, raw);
            out->connection = true;
            break;
        case 503:
            mg_uperr_set(out, 503, MG_ERR_UPSTREAM_5XX,
                         "litellm.ServiceUnavailableError: %sException - %s", cap, raw);
            break;
        default:
            mg_uperr_set(out, status >= 500 ? 500 : (status >= 400 ? status : 500),
                         status >= 500 ? MG_ERR_UPSTREAM_5XX : MG_ERR_UPSTREAM_4XX,
                         "litellm.APIConnectionError: %sException - %s", cap, raw);
            break;
        }
    }
    /* Claude on Vertex answers in Anthropic's envelope: its own clients get it as it was */
    json_t *j = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, NULL);
    const char *top = json_string_value(json_object_get(j, "type"));
    if (top != NULL && strcmp(top, "error") == 0) {
        mg_wire_err_t we;
        mg_api_wire_error(MG_WIRE_ANTHROPIC, status, body, len, &we);
        if (we.type != NULL) {
            out->up_status = status;
            snprintf(out->up_type, sizeof(out->up_type), "%s", we.type);
            out->up_message = mg_xstrdup(we.message);
            out->up_body = mg_xstrndup(body, len);
        }
        mg_wire_err_free(&we);
    }
    json_decref(j);
    free(raw);
}

/* ---- gemini/ ---- */

static mg_wire_t
mg_gemini_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) p;
    (void) d;
    return op == MG_OP_CHAT || op == MG_OP_EMBEDDINGS ? MG_WIRE_GEMINI : MG_WIRE_NONE;
}

static bool
mg_gemini_own_header(const mg_deployment_t *d, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(d->extra_headers, k, v) {
        if (strcasecmp(k, name) == 0) {
            return true;
        }
    }
    return false;
}

static int
mg_gemini_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    const char *key = mg_provider_key(p, d);
    bool own_key = mg_gemini_own_header(d, "x-goog-api-key");
    if ((key == NULL || key[0] == '\0') && !own_key) {
        mg_err_set(err, MG_ERR_AUTH, "AuthenticationError: %s - Missing gemini_api_key, please "
                                     "set `GEMINI_API_KEY`", p->exception_name);
        err->status = 401;
        return MG_ERROR;
    }
    if (mg_provider_body(c, c->upstream_model, NULL, aerr) != MG_OK) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s", aerr->msg);
        err->status = aerr->status;
        return MG_ERROR;
    }
    const char *base = mg_provider_base(p, d);
    mg_buf_t path = MG_BUF_INIT;
    mg_buf_append_str(&path, "/models/");
    mg_provider_path_segment(&path, c->upstream_model);
    const char *query = NULL;
    if (c->op == MG_OP_EMBEDDINGS) {
        mg_buf_append_str(&path, ":batchEmbedContents");
    } else if (c->stream) {
        mg_buf_append_str(&path, ":streamGenerateContent");
        query = "?alt=sse";
    } else {
        mg_buf_append_str(&path, ":generateContent");
    }
    mg_buf_t *h = c->head;
    mg_provider_head_start(h, base, mg_buf_cstr(&path), query);
    mg_buf_free(&path);
    if (!own_key) {
        mg_buf_printf(h, "x-goog-api-key: %s\r\n", key);
    }
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

static mg_framing_t
mg_gemini_framing(const mg_provider_t *p, const mg_call_t *c, const char *ctype)
{
    (void) p;
    (void) c;
    return ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0 ? MG_FRAMING_SSE
                                                                            : MG_FRAMING_JSON;
}

static void
mg_gemini_map_error(const mg_provider_t *p, int status, const char *body, size_t len,
                    mg_uperr_t *out)
{
    (void) p;
    mg_google_map_error("gemini", status, body, len, out);
}

static const mg_provider_ops_t mg_gemini_ops = {
    .wire = mg_gemini_wire,
    .build = mg_gemini_build,
    .framing = mg_gemini_framing,
    .map_error = mg_gemini_map_error,
};

const mg_provider_t mg_provider_gemini_row = {
    "gemini", "GeminiException", &mg_gemini_ops,
    "https://generativelanguage.googleapis.com/v1beta", {"GEMINI_API_KEY", "GOOGLE_API_KEY"},
    {"GEMINI_API_BASE"}, false, {true, false, true, false}, NULL,
};
