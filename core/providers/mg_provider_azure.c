/*
 * mg_provider_azure.c -- Azure OpenAI (azure/) and Azure AI Foundry model
 * inference (azure_ai/): OpenAI's wire with Azure's URLs and auth, and Azure's
 * error mapping (LiteLLM's _map_azure_exception: content-filter refusals are
 * its ContentPolicyViolationError, so content_policy_fallbacks fire).
 *
 * Azure OpenAI URLs, as LiteLLM (through the AzureOpenAI SDK) builds them:
 *   <api_base>/openai/deployments/<deployment>/{chat/completions,completions,embeddings}
 *       ?api-version=<api_version | AZURE_API_VERSION | 2025-02-01-preview>
 *   <api_base>/openai/responses?api-version=<api_version | preview>   (Responses API)
 *   the v1 API, when api_version is v1/latest/preview or api_base ends in /openai/v1:
 *   <resource>/openai/v1/{chat/completions,...}, the deployment in the body's model.
 * Auth: litellm_params.azure_ad_token as "Authorization: Bearer", else the key
 * (api_key, AZURE_OPENAI_API_KEY, AZURE_API_KEY) as "api-key", else the
 * AZURE_AD_TOKEN environment variable as a bearer.  Entra ID client
 * credentials (tenant_id/client_id/client_secret) are refused when the config
 * loads (mg_config.c) until the token step exists.
 *
 * Azure AI (LiteLLM's AzureAIStudioConfig): <api_base>/models/chat/completions
 * on *.services.ai.azure.com, else <api_base>/chat/completions; api-version
 * only when configured; "api-key" on Azure hosts, else a bearer; text-only
 * content lists sent as one string.
 *
 * Stateless: everything is read from the deployment (and the environment) per
 * call; secrets never enter an error message.
 */
#include "mg_provider.h"

#include "../base/mg_scrub.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_AZURE_DEFAULT_API_VERSION "2025-02-01-preview" /* litellm.AZURE_DEFAULT_API_VERSION */
#define MG_AZURE_DEFAULT_RESPONSES_API_VERSION "preview"  /* AZURE_DEFAULT_RESPONSES_API_VERSION */

static const char *
mg_azure_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char *
mg_azure_param(const mg_deployment_t *d, const char *k)
{
    const char *v = json_string_value(json_object_get(d->litellm_params, k));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* ---- api-version and the URL form ---- */

/* api_version, else the environment's, else LiteLLM's default for the operation. */
static const char *
mg_azure_version(const mg_deployment_t *d, mg_op_t op)
{
    if (d->api_version != NULL && d->api_version[0] != '\0') {
        return d->api_version;
    }
    if (op == MG_OP_RESPONSES) {
        const char *e = mg_azure_env("AZURE_DEFAULT_RESPONSES_API_VERSION");
        return e != NULL ? e : MG_AZURE_DEFAULT_RESPONSES_API_VERSION;
    }
    const char *e = mg_azure_env("AZURE_API_VERSION");
    return e != NULL ? e : MG_AZURE_DEFAULT_API_VERSION;
}

/* LiteLLM's _is_azure_v1_api_version. */
static bool
mg_azure_v1_version(const char *v)
{
    return strcmp(v, "v1") == 0 || strcmp(v, "latest") == 0 || strcmp(v, "preview") == 0;
}

typedef enum {
    MG_AZ_RESOURCE = 0,         /* https://<resource>.openai.azure.com[/prefix] */
    MG_AZ_V1,                   /* .../openai/v1 */
    MG_AZ_DEPLOYMENT,           /* .../openai/deployments/<dep> (a full base_url) */
} mg_az_form_t;

typedef struct {
    mg_az_form_t form;
    const char *root;           /* arena: scheme, authority, leading path and query of api_base */
    const char *dep_path;       /* arena: "/openai/deployments/<dep>" (MG_AZ_DEPLOYMENT) */
    bool has_version;           /* api_base's own query sets api-version */
} mg_az_base_t;

static bool
mg_azure_ends(const char *p, size_t n, const char *suffix, size_t *at)
{
    size_t sl = strlen(suffix);
    if (n >= sl && strncasecmp(p + n - sl, suffix, sl) == 0) {
        *at = n - sl;
        return true;
    }
    return false;
}

static void
mg_azure_split(mg_arena_t *a, const char *base, mg_az_base_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *hp = strstr(base, "://");
    hp = hp ? hp + 3 : base;
    const char *path = hp + strcspn(hp, "/?#");
    size_t plen = strcspn(path, "?#");
    const char *query = path + plen; /* "" or "?..." */
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    out->has_version = strstr(query, "api-version=") != NULL;
    size_t keep = plen, at;
    const char *dep = NULL;
    for (size_t i = 0; i + 20 <= plen; i++) {
        if (strncasecmp(path + i, "/openai/deployments/", 20) == 0) {
            dep = path + i;
            break;
        }
    }
    if (dep != NULL) {
        out->form = MG_AZ_DEPLOYMENT;
        keep = (size_t) (dep - path);
        out->dep_path = mg_arena_strndup(a, dep, plen - keep);
    } else if (mg_azure_ends(path, plen, "/openai/v1", &at)) {
        out->form = MG_AZ_V1;
        keep = at;
    } else if (mg_azure_ends(path, plen, "/openai", &at)) {
        keep = at; /* the SDK's azure_endpoint is the resource; "/openai" is ours to add */
    }
    out->root = mg_arena_printf(a, "%.*s%s", (int) (path - base + (ptrdiff_t) keep), base, query);
}

/* ---- credentials ---- */

typedef struct {
    const char *token;          /* bearer (azure_ad_token), or NULL */
    const char *key;            /* api-key, or NULL */
} mg_az_auth_t;

static int
mg_azure_auth(const mg_provider_t *p, const mg_deployment_t *d, mg_az_auth_t *au, mg_err_t *err)
{
    au->token = mg_azure_param(d, "azure_ad_token");
    au->key = au->token == NULL ? mg_provider_key(p, d) : NULL;
    if (au->token == NULL && au->key == NULL) {
        au->token = mg_azure_env("AZURE_AD_TOKEN");
    }
    if (au->token != NULL || au->key != NULL) {
        return MG_OK;
    }
    bool entra = mg_azure_env("AZURE_TENANT_ID") != NULL && mg_azure_env("AZURE_CLIENT_ID") != NULL &&
                 mg_azure_env("AZURE_CLIENT_SECRET") != NULL;
    mg_err_set(err, MG_ERR_AUTH,
               "AuthenticationError: %s - Missing credentials. Please pass one of `api_key` or "
               "`azure_ad_token` in litellm_params, or set the AZURE_OPENAI_API_KEY, "
               "AZURE_API_KEY or AZURE_AD_TOKEN environment variables%s", p->exception_name,
               entra ? " (AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are set, but "
                       "moongate does not obtain Entra ID tokens yet)" : "");
    err->status = 401;
    return MG_ERROR;
}

static void
mg_azure_fingerprint(const mg_provider_t *p, const mg_deployment_t *d, mg_buf_t *fp)
{
    (void) p;
    (void) d;
    /* what the environment adds to the parameters and key the shared hash already has */
    static const char *const env[] = {"AZURE_AD_TOKEN", "AZURE_API_VERSION",
                                      "AZURE_DEFAULT_RESPONSES_API_VERSION", NULL};
    for (const char *const *e = env; *e; e++) {
        const char *v = mg_azure_env(*e);
        mg_buf_printf(fp, "%s=%s|", *e, v ? v : "");
    }
}

/* ---- bodies Azure wants in another shape ---- */

/* The body as one string (the iovs after the head slot), new reference, or NULL. */
static json_t *
mg_azure_body_json(const mg_call_t *c)
{
    mg_buf_t b = MG_BUF_INIT;
    for (int i = 1; i < c->body.niov; i++) {
        mg_buf_append(&b, c->body.iov[i].iov_base, c->body.iov[i].iov_len);
    }
    json_t *j = mg_buf_len(&b) > 0 ? json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, NULL) : NULL;
    mg_buf_free(&b);
    return j;
}

static void
mg_azure_body_replace(mg_call_t *c, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    c->body.niov = 0;
    c->body.len = 0;
    mg_iovs_push(&c->body, c->arena, "", 1);
    c->body.len = 0;
    size_t n = strlen(s);
    mg_iovs_push(&c->body, c->arena, mg_arena_strndup(c->arena, s, n), n);
    free(s);
}

/* LiteLLM's AzureOpenAIResponsesAPIConfig: no "status" on input messages and reasoning
 * items (Azure refuses it), function tools flattened (no nested "function"). */
static void
mg_azure_responses_body(mg_call_t *c)
{
    const mg_api_req_t *q = c->client;
    if (q == NULL || (!memmem(q->body, q->body_len, "\"status\"", 8) &&
                      !memmem(q->body, q->body_len, "\"function\"", 10))) {
        return; /* nothing to change: the spliced body goes as it is */
    }
    json_t *j = mg_azure_body_json(c);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(j, "input"), i, it) {
        const char *t = json_string_value(json_object_get(it, "type"));
        if (t != NULL && (strcmp(t, "message") == 0 || strcmp(t, "reasoning") == 0)) {
            json_object_del(it, "status");
        }
    }
    json_array_foreach(json_object_get(j, "tools"), i, it) {
        json_t *fn = json_object_get(it, "function");
        if (json_is_object(fn)) {
            json_incref(fn);
            json_object_del(it, "function");
            json_object_update(it, fn);
            json_decref(fn);
        }
    }
    mg_azure_body_replace(c, j);
    json_decref(j);
}

/* ---- Azure OpenAI ---- */

static mg_wire_t
mg_azure_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) d;
    if (!p->ops_supported[op]) {
        return MG_WIRE_NONE;
    }
    return op == MG_OP_RESPONSES ? MG_WIRE_OPENAI_RESPONSES : MG_WIRE_OPENAI;
}

static void
mg_azure_query_version(mg_buf_t *q, const char *ver)
{
    mg_buf_append_str(q, mg_buf_len(q) > 0 ? "&api-version=" : "?api-version=");
    mg_provider_path_segment(q, ver);
}

static int
mg_azure_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    const char *base;
    mg_az_auth_t au;
    if (mg_provider_openai_base(p, d, &base, err) != MG_OK || mg_azure_auth(p, d, &au, err) != MG_OK) {
        return MG_ERROR;
    }
    mg_az_base_t ab;
    mg_azure_split(c->arena, base, &ab);
    const char *ver = mg_azure_version(d, c->op);
    bool v1 = ab.form == MG_AZ_V1 || mg_azure_v1_version(ver);
    bool stored = c->op == MG_OP_RESPONSES && c->resp_action != MG_RESP_CREATE;
    mg_buf_t path = MG_BUF_INIT, query = MG_BUF_INIT;
    if (c->op == MG_OP_RESPONSES) {
        /* not per deployment: the deployment is the body's model */
        mg_buf_append_str(&path, v1 ? "/openai/v1" : "/openai");
        mg_provider_responses_path(c, &path);
        if (stored && c->resp_query != NULL && c->resp_query[0] != '\0') {
            mg_buf_printf(&query, "?%s", c->resp_query);
        }
        if (!ab.has_version && strcmp(ver, "v1") != 0) {
            mg_azure_query_version(&query, ver);
        }
    } else if (ab.form == MG_AZ_DEPLOYMENT) {
        mg_buf_append_str(&path, ab.dep_path);
        mg_buf_append_str(&path, mg_provider_openai_path(c->op));
        if (!ab.has_version) {
            mg_azure_query_version(&query, ver);
        }
    } else if (v1) {
        /* the v1 API is OpenAI's: no api-version, the deployment in the body */
        mg_buf_append_str(&path, "/openai/v1");
        mg_buf_append_str(&path, mg_provider_openai_path(c->op));
    } else {
        mg_buf_append_str(&path, "/openai/deployments/");
        mg_provider_path_segment(&path, c->upstream_model);
        mg_buf_append_str(&path, mg_provider_openai_path(c->op));
        if (!ab.has_version) {
            mg_azure_query_version(&query, ver);
        }
    }
    if (stored) {
        mg_provider_no_body(c);
    } else if (mg_provider_openai_body(c, err, aerr) != MG_OK) {
        mg_buf_free(&path);
        mg_buf_free(&query);
        return MG_ERROR;
    } else if (c->op == MG_OP_RESPONSES && c->native) {
        mg_azure_responses_body(c);
    }
    mg_buf_t *h = c->head;
    mg_provider_head_method(h, stored ? mg_provider_responses_method(c) : "POST", ab.root,
                            mg_buf_cstr(&path), mg_buf_cstr(&query));
    mg_buf_free(&path);
    mg_buf_free(&query);
    if (mg_provider_value_ok(au.token != NULL ? "authorization" : "api-key",
                             au.token != NULL ? au.token : au.key, err) != MG_OK) {
        return MG_ERROR;
    }
    if (au.token != NULL) {
        mg_buf_printf(h, "authorization: Bearer %s\r\n", au.token);
    } else {
        mg_buf_printf(h, "api-key: %s\r\n", au.key);
    }
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

/* ---- Azure's error mapping (LiteLLM's _map_azure_exception) ---- */

static char *
mg_azure_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
mg_azure_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    return s;
}

static bool
mg_azure_icontains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, nl) == 0) {
            return true;
        }
    }
    return false;
}

/* ExceptionCheckers.is_azure_content_policy_violation_error, plus Azure's structured
 * signs: error.code content_filter / content_policy_violation, or an innererror (either
 * spelling) with code ResponsibleAIPolicyViolation. */
static bool
mg_azure_content_policy(const char *probe, json_t *body)
{
    static const char *const pats[] = {
        "content_policy_violation", "responsibleaipolicyviolation",
        "the response was filtered due to the prompt triggering azure openai's content management",
        "your task failed as a result of our safety system", "the model produced invalid content",
        "content_filter_policy", "your request was rejected as a result of our safety system",
        NULL,
    };
    for (const char *const *p = pats; *p; p++) {
        if (mg_azure_icontains(probe, *p)) {
            return true;
        }
    }
    json_t *e = json_object_get(body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    if (code != NULL && (strcmp(code, "content_filter") == 0 ||
                         strcmp(code, "content_policy_violation") == 0)) {
        return true;
    }
    json_t *inner = json_object_get(e, "innererror");
    if (inner == NULL) {
        inner = json_object_get(e, "inner_error");
    }
    code = json_string_value(json_object_get(inner, "code"));
    return code != NULL && strcmp(code, "ResponsibleAIPolicyViolation") == 0;
}

static void
mg_azure_map_error(const mg_provider_t *p, int status, const char *body, size_t len,
                   mg_uperr_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type_json = "null";
    out->param_json = "null";
    mg_wire_err_t we;
    mg_api_wire_error(MG_WIRE_OPENAI, status, body, len, &we);
    const char *msg = we.message;
    char *probe = mg_azure_fmt("Error code: %d - %.*s", status, (int) (len > 8000 ? 8000 : len),
                               body ? body : "");
    json_t *j = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *exc = p->exception_name;
    const char *ecode = we.code;
    if (strstr(probe, "Request timed out") || strstr(probe, "Request Timeout Error") ||
        strstr(probe, "Timed out generating response") ||
        strstr(probe, "The read operation timed out")) {
        out->status = 408;
        out->cls = MG_ERR_UPSTREAM_TIMEOUT;
        out->timeout = true;
        out->message = mg_azure_fmt("litellm.Timeout: APITimeoutError - Request timed out. "
                                    "Error_str: %s", msg);
    } else if (strstr(probe, "Internal server error")) {
        out->status = 500;
        out->cls = MG_ERR_UPSTREAM_5XX;
        out->message = mg_azure_fmt("litellm.InternalServerError: %s Internal server error - %s",
                                    exc, msg);
    } else if (strstr(probe, "This model's maximum context length is") ||
               (ecode != NULL && strcmp(ecode, "context_length_exceeded") == 0)) {
        out->status = 400;
        out->cls = MG_ERR_CONTEXT_WINDOW;
        out->context_window = true;
        out->message = mg_azure_fmt("litellm.ContextWindowExceededError: %s "
                                    "ContextWindowExceededError - %s", exc, msg);
    } else if (strstr(probe, "DeploymentNotFound")) {
        out->status = 404;
        out->cls = MG_ERR_UPSTREAM_4XX;
        out->not_found = true;
        out->message = mg_azure_fmt("litellm.NotFoundError: %s NotFoundError - %s", exc, msg);
    } else if (mg_azure_content_policy(probe, j)) {
        /* ContentPolicyViolationError adds its prefix to a message that has it already */
        out->status = 400;
        out->cls = MG_ERR_CONTENT_POLICY;
        out->content_policy = true;
        out->message = mg_azure_fmt("litellm.ContentPolicyViolationError: "
                                    "litellm.ContentPolicyViolationError: %s - %s", exc, msg);
    } else if ((ecode != NULL && strcmp(ecode, "invalid_encrypted_content") == 0) ||
               strstr(probe, "could not be verified")) {
        out->status = 400;
        out->cls = MG_ERR_BAD_REQUEST;
        out->message = mg_azure_fmt("litellm.BadRequestError: %s - %s\n\nThis error occurs when "
                                    "load balancing Responses API across deployments with "
                                    "different API keys: encrypted content is tied to the "
                                    "organization that created it. Send follow-up requests to "
                                    "the deployment that made the response.", exc, msg);
    } else if (strstr(probe, "invalid_request_error") && status == 400) {
        out->status = 400;
        out->cls = MG_ERR_BAD_REQUEST;
        out->message = mg_azure_fmt("litellm.BadRequestError: %s BadRequestError - %s", exc, msg);
    } else {
        static const struct {
            int status;
            mg_err_class_t cls;
            const char *cls_name;   /* LiteLLM's class prefix */
            const char *label;      /* the words after "AzureException" */
        } t[] = {
            {400, MG_ERR_BAD_REQUEST, "BadRequestError", ""},
            {401, MG_ERR_AUTH, "AuthenticationError", " AuthenticationError"},
            {404, MG_ERR_UPSTREAM_4XX, "NotFoundError", " NotFoundError"},
            {408, MG_ERR_UPSTREAM_TIMEOUT, "Timeout", " Timeout"},
            {422, MG_ERR_BAD_REQUEST, "BadRequestError", " BadRequestError"},
            {429, MG_ERR_RATE_LIMITED, "RateLimitError", " RateLimitError"},
            {502, MG_ERR_UPSTREAM_5XX, "BadGatewayError", " BadGatewayError"},
            {503, MG_ERR_UPSTREAM_5XX, "ServiceUnavailableError", " ServiceUnavailableError"},
            {504, MG_ERR_UPSTREAM_TIMEOUT, "Timeout", " Timeout"},
        };
        size_t k = 0;
        while (k < sizeof(t) / sizeof(t[0]) && t[k].status != status) {
            k++;
        }
        if (k < sizeof(t) / sizeof(t[0])) {
            out->status = status == 422 ? 400 : status;
            out->cls = t[k].cls;
            out->auth = status == 401;
            out->not_found = status == 404;
            out->rate_limit = status == 429;
            out->timeout = status == 408 || status == 504;
            out->message = mg_azure_fmt("litellm.%s: %s%s - %s", t[k].cls_name, exc, t[k].label,
                                        msg);
            if (status == 429) {
                out->type_json = "\"throttling_error\"";
            }
        } else {
            out->status = status >= 400 && status <= 599 ? status : 500;
            out->cls = status >= 500 ? MG_ERR_UPSTREAM_5XX : MG_ERR_UPSTREAM_4XX;
            out->message = mg_azure_fmt("litellm.APIError: %s APIError - %s", exc, msg);
        }
    }
    json_decref(j);
    free(probe);
    mg_wire_err_free(&we);
}

static const mg_provider_ops_t mg_azure_ops = {
    .wire = mg_azure_wire,
    .fingerprint = mg_azure_fingerprint,
    .build = mg_azure_build,
    .framing = mg_provider_openai_framing,
    .map_error = mg_azure_map_error,
};

/* ---- Azure AI (Foundry model inference) ---- */

static mg_wire_t
mg_azure_ai_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) d;
    return p->ops_supported[op] ? MG_WIRE_OPENAI : MG_WIRE_NONE;
}

/* The host of base ends with one of Azure's own domains (LiteLLM's
 * _should_use_api_key_header). */
static bool
mg_azure_ai_azure_host(const char *base)
{
    const char *hp = strstr(base, "://");
    hp = hp ? hp + 3 : base;
    size_t hl = strcspn(hp, "/?#:");
    static const char *const dom[] = {".services.ai.azure.com", ".openai.azure.com", NULL};
    for (const char *const *d = dom; *d; d++) {
        size_t dl = strlen(*d);
        if (hl >= dl && strncasecmp(hp + hl - dl, *d, dl) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether base's path already ends with suffix (LiteLLM's _add_path_to_api_base). */
static bool
mg_azure_ai_has_path(const char *base, const char *suffix)
{
    const char *hp = strstr(base, "://");
    hp = hp ? hp + 3 : base;
    const char *path = hp + strcspn(hp, "/?#");
    size_t plen = strcspn(path, "?#");
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    size_t at;
    return mg_azure_ends(path, plen, suffix, &at);
}

/* LiteLLM's _transform_messages: a content list without images or audio becomes one
 * string (many Foundry models take no lists). */
static void
mg_azure_ai_flatten(mg_call_t *c)
{
    json_t *j = mg_azure_body_json(c);
    bool changed = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "messages"), i, m) {
        json_t *content = json_object_get(m, "content");
        if (!json_is_array(content) || json_array_size(content) == 0) {
            continue;
        }
        mg_buf_t b = MG_BUF_INIT;
        bool media = false;
        size_t k;
        json_t *part;
        json_array_foreach(content, k, part) {
            const char *t = json_string_value(json_object_get(part, "type"));
            if (t != NULL && (strcmp(t, "image_url") == 0 || strcmp(t, "input_audio") == 0 ||
                              strcmp(t, "audio_url") == 0 || strcmp(t, "file") == 0)) {
                media = true;
                break;
            }
            const char *tx = json_string_value(json_object_get(part, "text"));
            if (tx != NULL) {
                mg_buf_append_str(&b, tx);
            }
        }
        if (!media) {
            json_object_set_new(m, "content",
                                json_stringn(mg_buf_len(&b) ? mg_buf_head(&b) : "",
                                             mg_buf_len(&b)));
            changed = true;
        }
        mg_buf_free(&b);
    }
    if (changed) {
        mg_azure_body_replace(c, j);
    }
    json_decref(j);
}

static int
mg_azure_ai_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    const char *base;
    if (mg_provider_openai_base(p, d, &base, err) != MG_OK) {
        return MG_ERROR;
    }
    const char *key = mg_provider_key(p, d);
    if (key == NULL) {
        mg_err_set(err, MG_ERR_AUTH,
                   "AuthenticationError: %s - The api_key client option must be set either by "
                   "passing api_key to the client or by setting the AZURE_AI_API_KEY environment "
                   "variable", p->exception_name);
        err->status = 401;
        return MG_ERROR;
    }
    if (mg_provider_openai_body(c, err, aerr) != MG_OK) {
        return MG_ERROR;
    }
    const char *suffix = mg_provider_openai_path(c->op);
    if (c->op == MG_OP_CHAT) {
        mg_azure_ai_flatten(c);
        if (strstr(base, "services.ai.azure.com") != NULL) {
            suffix = "/models/chat/completions";
        }
    }
    if (mg_azure_ai_has_path(base, suffix)) {
        suffix = "";
    }
    mg_buf_t query = MG_BUF_INIT;
    if (d->api_version != NULL && d->api_version[0] != '\0' && strstr(base, "api-version=") == NULL) {
        mg_azure_query_version(&query, d->api_version);
    }
    mg_buf_t *h = c->head;
    mg_provider_head_start(h, base, suffix, mg_buf_cstr(&query));
    mg_buf_free(&query);
    if (mg_provider_value_ok("authorization", key, err) != MG_OK) {
        return MG_ERROR;
    }
    if (c->op == MG_OP_CHAT && mg_azure_ai_azure_host(base)) {
        mg_buf_printf(h, "api-key: %s\r\n", key);
    } else {
        mg_buf_printf(h, "authorization: Bearer %s\r\n", key);
    }
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

static const mg_provider_ops_t mg_azure_ai_ops = {
    .wire = mg_azure_ai_wire,
    .build = mg_azure_ai_build,
    .framing = mg_provider_openai_framing,
};

/* ---- the rows ---- */

const mg_provider_t mg_provider_azure_rows[] = {
    /* chat, completions, embeddings, count_tokens, responses; a key or a token */
    {"azure", "AzureException", &mg_azure_ops, NULL, {"AZURE_OPENAI_API_KEY", "AZURE_API_KEY"},
     {"AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"}, false, {true, true, true, false, true}, NULL},
    {"azure_ai", "Azure_aiException", &mg_azure_ai_ops, NULL, {"AZURE_AI_API_KEY"},
     {"AZURE_AI_API_BASE"}, true, {true, false, true, false, false}, NULL},
};

const size_t mg_provider_azure_nrows = sizeof(mg_provider_azure_rows) /
                                       sizeof(mg_provider_azure_rows[0]);
