/*
 * mg_provider_bedrock.c -- bedrock/: AWS Bedrock Runtime, as LiteLLM calls it.
 *
 * Routes (the model after "bedrock/"): "converse/<id>" and a bare "<id>" speak the
 * Converse API (POST /model/<id>/converse, /converse-stream); "invoke/<id>" speaks
 * InvokeModel for Anthropic models (/model/<id>/invoke, /invoke-with-response-stream,
 * an Anthropic Messages body with anthropic_version bedrock-2023-05-31).  The model id
 * (a foundation model, a cross-region inference profile "us.anthropic...", or an ARN;
 * litellm_params.model_id overrides it) goes in the path, percent-encoded as one URI
 * label; the body never names it.  Translation lives in core/api/mg_api_bedrock.c: no
 * client speaks Bedrock's wire, so every answer is decoded and re-encoded (streams arrive
 * in AWS event-stream framing, MG_FRAMING_EVENTSTREAM).
 *
 * Endpoint: api_base, else aws_bedrock_runtime_endpoint, else AWS_BEDROCK_RUNTIME_ENDPOINT,
 * else https://bedrock-runtime.<region>.amazonaws.com (LiteLLM's get_runtime_endpoint);
 * region: aws_region_name, else the model ARN's, else AWS_REGION_NAME, AWS_REGION,
 * AWS_DEFAULT_REGION, else us-west-2.  Credentials: api_key (a Bedrock API key, sent as a
 * bearer token), else aws_access_key_id + aws_secret_access_key (+ aws_session_token),
 * else AWS_BEARER_TOKEN_BEDROCK, else AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 * (+ AWS_SESSION_TOKEN).  Every request is signed with SigV4 (service "bedrock") over its
 * final body, last.  Every one of those inputs is in the credential fingerprint, so a
 * rotation gets a new upstream client; the secret values are in the registry's secret
 * list by their names (mg_registry_secret_key, mg_registry_secret_env).
 *
 * Errors: LiteLLM's BedrockException mapping (mg_api_bedrock_error) over the body and
 * the x-amzn-errortype header.  Not supported (refused with a message that says so):
 * aws_role_name / aws_profile_name / aws_web_identity_token (STS), invoke for
 * non-Anthropic models, embeddings.
 *
 * Owns nothing per request; the composed default endpoints are interned for the life of
 * the process (one string per region ever used).
 */
#include "../mg_provider.h"

#include "../../base/mg_map.h"
#include "../../base/mg_time.h"
#include "mg_sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_BR_DEFAULT_REGION "us-west-2"

typedef enum { MG_BR_CONVERSE = 0, MG_BR_INVOKE } mg_br_route_t;

static const char *
mg_br_param(const mg_deployment_t *d, const char *k)
{
    const char *v = json_string_value(json_object_get(d->litellm_params, k));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char *
mg_br_env(const char *k)
{
    const char *v = getenv(k);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The route and the model id of an upstream model ("converse/x", "invoke/x" or "x"). */
static mg_br_route_t
mg_br_route(const char *m, const char **id)
{
    if (m != NULL && strncmp(m, "invoke/", 7) == 0) {
        *id = m + 7;
        return MG_BR_INVOKE;
    }
    if (m != NULL && strncmp(m, "converse/", 9) == 0) {
        *id = m + 9;
        return MG_BR_CONVERSE;
    }
    *id = m != NULL ? m : "";
    return MG_BR_CONVERSE;
}

/* Whether InvokeModel with an Anthropic body suits the model id: anthropic.* (after a
 * cross-region prefix such as "us."), or an ARN, which names no family (provisioned
 * throughput, application inference profiles): the deployment chose invoke for it. */
static bool
mg_br_invoke_ok(const char *id)
{
    if (strncmp(id, "arn:", 4) == 0) {
        return true;
    }
    const char *dot = strchr(id, '.');
    if (dot != NULL && strncmp(id, "anthropic.", 10) != 0 && (size_t) (dot - id) <= 7) {
        id = dot + 1; /* us., eu., apac., global., us-gov. ... */
    }
    return strncmp(id, "anthropic.", 10) == 0;
}

/* The region of an ARN ("arn:aws:bedrock:<region>:..."), copied into out; false if none. */
static bool
mg_br_arn_region(const char *arn, char *out, size_t n)
{
    if (arn == NULL || strncmp(arn, "arn:", 4) != 0) {
        return false;
    }
    const char *p = arn;
    for (int i = 0; i < 3 && p != NULL; i++) {
        p = strchr(p, ':');
        p = p != NULL ? p + 1 : NULL;
    }
    if (p == NULL) {
        return false;
    }
    size_t l = strcspn(p, ":");
    if (l == 0 || l >= n) {
        return false;
    }
    memcpy(out, p, l);
    out[l] = '\0';
    return true;
}

/* The deployment's region (LiteLLM's _get_aws_region_name). */
static const char *
mg_br_region(const mg_deployment_t *d, char *buf, size_t n)
{
    const char *r = mg_br_param(d, "aws_region_name");
    if (r != NULL) {
        return r;
    }
    const char *id;
    mg_br_route(d->upstream_model, &id);
    const char *mid = mg_br_param(d, "model_id");
    if (mg_br_arn_region(mid != NULL ? mid : id, buf, n)) {
        return buf;
    }
    if ((r = mg_br_env("AWS_REGION_NAME")) != NULL || (r = mg_br_env("AWS_REGION")) != NULL ||
        (r = mg_br_env("AWS_DEFAULT_REGION")) != NULL) {
        return r;
    }
    return MG_BR_DEFAULT_REGION;
}

static mg_wire_t
mg_br_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) p;
    if (op != MG_OP_CHAT && op != MG_OP_COMPLETION) {
        return MG_WIRE_NONE; /* embeddings, count_tokens (answered by the estimate) */
    }
    const char *id;
    return mg_br_route(d->upstream_model, &id) == MG_BR_INVOKE ? MG_WIRE_BEDROCK_INVOKE
                                                                : MG_WIRE_BEDROCK_CONVERSE;
}

/* Default endpoints, interned: the registry keeps a deployment's base only while it
 * looks at it, and the set of regions is small. */
static mg_map_t mg_br_endpoints;
static bool mg_br_endpoints_ready;

static const char *
mg_br_base(const mg_provider_t *p, const mg_deployment_t *d)
{
    (void) p;
    const char *b;
    if ((b = d->api_base) != NULL && b[0] != '\0') {
        return b;
    }
    if ((b = mg_br_param(d, "aws_bedrock_runtime_endpoint")) != NULL ||
        (b = mg_br_env("AWS_BEDROCK_RUNTIME_ENDPOINT")) != NULL) {
        return b;
    }
    char rb[64];
    const char *region = mg_br_region(d, rb, sizeof(rb));
    if (!mg_br_endpoints_ready) {
        mg_map_init(&mg_br_endpoints);
        mg_br_endpoints_ready = true;
    }
    const char *hit = mg_map_get(&mg_br_endpoints, region, strlen(region));
    if (hit != NULL) {
        return hit;
    }
    char *url = NULL;
    if (asprintf(&url, "https://bedrock-runtime.%s.amazonaws.com", region) < 0) {
        abort();
    }
    mg_map_put(&mg_br_endpoints, region, strlen(region), url); /* lives as long as the process */
    return url;
}

/* Which credentials a call uses. */
typedef struct {
    const char *bearer;             /* a Bedrock API key, or NULL: SigV4 */
    const char *akid, *secret, *token;
} mg_br_creds_t;

static int
mg_br_creds(const mg_provider_t *p, const mg_deployment_t *d, mg_br_creds_t *c, mg_err_t *err)
{
    memset(c, 0, sizeof(*c));
    if (d->api_key != NULL && d->api_key[0] != '\0') {
        c->bearer = d->api_key;
        return MG_OK;
    }
    c->akid = mg_br_param(d, "aws_access_key_id");
    c->secret = mg_br_param(d, "aws_secret_access_key");
    if (c->akid != NULL && c->secret != NULL) {
        c->token = mg_br_param(d, "aws_session_token");
        return MG_OK;
    }
    static const char *const sts[] = {"aws_role_name", "aws_profile_name",
                                      "aws_web_identity_token", NULL};
    for (const char *const *k = sts; *k; k++) {
        if (mg_br_param(d, *k) != NULL) {
            mg_err_set(err, MG_ERR_CONFIG, "BadRequestError: BedrockException - moongate does not "
                       "support %s (STS / profile credentials) yet: give the deployment "
                       "aws_access_key_id and aws_secret_access_key (and aws_session_token)", *k);
            err->status = 400;
            return MG_ERROR;
        }
    }
    if ((c->bearer = mg_provider_key(p, d)) != NULL) {
        return MG_OK; /* AWS_BEARER_TOKEN_BEDROCK */
    }
    c->akid = mg_br_env("AWS_ACCESS_KEY_ID");
    c->secret = mg_br_env("AWS_SECRET_ACCESS_KEY");
    if (c->akid != NULL && c->secret != NULL) {
        c->token = mg_br_env("AWS_SESSION_TOKEN");
        return MG_OK;
    }
    /* botocore's NoCredentialsError, as LiteLLM maps it */
    mg_err_set(err, MG_ERR_AUTH, "AuthenticationError: BedrockException Invalid Authentication - "
               "Unable to locate credentials");
    err->status = 401;
    return MG_ERROR;
}

static void
mg_br_fingerprint(const mg_provider_t *p, const mg_deployment_t *d, mg_buf_t *fp)
{
    (void) p;
    /* what the environment adds; the litellm_params are hashed by mg_provider_cred_hash */
    static const char *const env[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_SESSION_TOKEN", "AWS_REGION_NAME", "AWS_REGION",
                                      "AWS_DEFAULT_REGION", "AWS_BEDROCK_RUNTIME_ENDPOINT", NULL};
    for (const char *const *k = env; *k; k++) {
        const char *v = mg_br_env(*k);
        mg_buf_printf(fp, "%s=%s|", *k, v != NULL ? v : "");
    }
    char rb[64];
    mg_buf_printf(fp, "region=%s", mg_br_region(d, rb, sizeof(rb)));
}

/* A model id as one URI label: everything but A-Z a-z 0-9 - . _ ~ percent-encoded
 * (botocore's percent_encode for a non-greedy label; LiteLLM quotes with safe=""). */
static void
mg_br_label(mg_buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            mg_buf_append(out, (const char *) p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            mg_buf_append(out, e, 3);
        }
    }
}

/* Splits a base URL into host (authority), path (no trailing '/') and query (no '?'). */
static void
mg_br_url(const char *base, mg_arena_t *a, const char **host, const char **path,
          const char **query)
{
    const char *hp = strstr(base, "://");
    hp = hp != NULL ? hp + 3 : base;
    const char *pp = hp + strcspn(hp, "/?#");
    *host = mg_arena_strndup(a, hp, (size_t) (pp - hp));
    size_t pl = strcspn(pp, "?#");
    const char *q = pp[pl] == '?' ? pp + pl + 1 : NULL;
    size_t ql = q != NULL ? strcspn(q, "#") : 0;
    while (pl > 0 && pp[pl - 1] == '/') {
        pl--;
    }
    *path = mg_arena_strndup(a, pp, pl);
    *query = q != NULL && ql > 0 ? mg_arena_strndup(a, q, ql) : NULL;
}

/* The client's anthropic-beta (or the deployment's) as the body's list, NULL: none. */
static const char *
mg_br_client_betas(const mg_call_t *c)
{
    const char *own = json_string_value(json_object_get(c->dep->extra_headers, "anthropic-beta"));
    if (own != NULL) {
        return own;
    }
    size_t n = 0;
    const char *v = c->client_http != NULL ? mg_http_req_header(c->client_http, "anthropic-beta",
                                                                &n)
                                           : NULL;
    return v != NULL && n > 0 ? mg_arena_strndup(c->arena, v, n) : NULL;
}

/*
 * /v1/messages to invoke: the client's own Anthropic body spliced (as LiteLLM passes an
 * Anthropic request to Bedrock's InvokeModel), without model and stream, with
 * anthropic_version and the anthropic-beta header as the body's anthropic_beta.
 */
static void
mg_br_invoke_splice(mg_call_t *c)
{
    const mg_deployment_t *d = c->dep;
    json_t *drop = json_array();
    json_t *ad = c->additional_drop != NULL ? c->additional_drop : d->additional_drop_params;
    if (ad != NULL) {
        json_array_extend(drop, ad);
    }
    json_array_append_new(drop, json_string("stream"));
    mg_buf_t extra = MG_BUF_INIT;
    if (mg_api_member(c->client, "anthropic_version") == NULL) {
        mg_buf_append_str(&extra, ",\"anthropic_version\":\"bedrock-2023-05-31\"");
    }
    const char *betas = mg_br_client_betas(c);
    if (betas != NULL && mg_api_member(c->client, "anthropic_beta") == NULL) {
        mg_buf_append_str(&extra, ",\"anthropic_beta\":[");
        bool first = true;
        const char *p = betas;
        while (*p) {
            size_t l = strcspn(p, ",");
            const char *s = p;
            size_t e = l;
            while (e > 0 && *s == ' ') {
                s++;
                e--;
            }
            while (e > 0 && s[e - 1] == ' ') {
                e--;
            }
            if (e > 0) {
                mg_buf_append_str(&extra, first ? "" : ",");
                mg_buf_json_str(&extra, s, e);
                first = false;
            }
            p += l;
            if (*p == ',') {
                p++;
            }
        }
        mg_buf_append_str(&extra, "]");
    }
    mg_body_opts_t o = {
        .model = NULL,
        .stream = false,
        .drop_params = c->drop_params,
        .defaults = d->defaults,
        .additional_drop = drop,
        .provider = d->provider,
        .extra_members = mg_arena_strndup(c->arena, mg_buf_head(&extra), mg_buf_len(&extra)),
        .client_model = c->client->model,
    };
    mg_iovs_push(&c->body, c->arena, "", 1);
    c->body.len = 0;
    mg_api_splice(c->client, &o, c->arena, &c->body);
    mg_buf_free(&extra);
    json_decref(drop);
}

static int
mg_br_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    mg_br_creds_t cr;
    if (mg_br_creds(p, d, &cr, err) != MG_OK) {
        return MG_ERROR;
    }
    const char *id;
    mg_br_route(c->upstream_model, &id);
    const char *mid = mg_br_param(d, "model_id");
    if (mid != NULL) {
        id = mid; /* provisioned throughput / inference profile ARNs (LiteLLM's model_id) */
    }
    bool invoke = c->wire == MG_WIRE_BEDROCK_INVOKE;
    if (invoke && !mg_br_invoke_ok(id)) {
        mg_err_set(err, MG_ERR_CONFIG, "BadRequestError: BedrockException - moongate speaks "
                   "InvokeModel only for anthropic.* models; use bedrock/converse/%s (or "
                   "bedrock/%s) for this model", id, id);
        err->status = 400;
        return MG_ERROR;
    }
    /* the body */
    if (invoke && c->client != NULL && c->client->api->wire == MG_WIRE_ANTHROPIC &&
        c->op == MG_OP_CHAT) {
        mg_br_invoke_splice(c);
    } else if (mg_provider_body(c, id, NULL, aerr) != MG_OK) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s", aerr->msg);
        err->status = aerr->status;
        return MG_ERROR;
    }
    /* the head: request line, then the signed headers, then the rest */
    const char *host, *bpath, *query;
    mg_br_url(mg_provider_base(p, d), c->arena, &host, &bpath, &query);
    mg_buf_t path = MG_BUF_INIT;
    mg_buf_append_str(&path, bpath);
    mg_buf_append_str(&path, "/model/");
    mg_br_label(&path, id);
    mg_buf_append_str(&path, invoke ? (c->stream ? "/invoke-with-response-stream" : "/invoke")
                                    : (c->stream ? "/converse-stream" : "/converse"));
    const char *accept = c->stream ? "application/vnd.amazon.eventstream" : "application/json";
    mg_buf_t *h = c->head;
    mg_buf_printf(h, "POST %s%s%s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
                     "accept: %s\r\nuser-agent: moongate/" MG_VERSION "\r\n",
                  mg_buf_cstr(&path), query != NULL ? "?" : "", query != NULL ? query : "", host,
                  accept);
    if (cr.bearer != NULL) {
        mg_buf_printf(h, "authorization: Bearer %s\r\n", cr.bearer);
    } else {
        mg_sigv4_header_t sh[] = {
            {"host", host}, {"content-type", "application/json"}, {"accept", accept},
        };
        char rb[64];
        mg_sigv4_request_t sr = {
            .method = "POST",
            .path = mg_buf_cstr(&path),
            .query = query,
            .headers = sh,
            .n_headers = sizeof(sh) / sizeof(sh[0]),
            .payload = c->body.iov + 1,
            .n_payload = c->body.niov > 0 ? (size_t) c->body.niov - 1 : 0,
            .region = mg_br_region(d, rb, sizeof(rb)),
            .service = "bedrock",
            .access_key_id = cr.akid,
            .secret_access_key = cr.secret,
            .session_token = cr.token,
            .timestamp = mg_time_real_ms() / 1000,
        };
        mg_sigv4_out_t so;
        if (mg_sigv4_sign(&sr, c->arena, &so, err) != MG_OK) {
            mg_buf_free(&path);
            return MG_ERROR;
        }
        mg_buf_printf(h, "x-amz-date: %s\r\n", so.amz_date);
        if (so.security_token != NULL) {
            mg_buf_printf(h, "x-amz-security-token: %s\r\n", so.security_token);
        }
        mg_buf_printf(h, "authorization: %s\r\n", so.authorization);
    }
    mg_buf_free(&path);
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

static mg_framing_t
mg_br_framing(const mg_provider_t *p, const mg_call_t *c, const char *ctype)
{
    (void) p;
    (void) c;
    return ctype != NULL && strncasecmp(ctype, "application/vnd.amazon.eventstream", 34) == 0
               ? MG_FRAMING_EVENTSTREAM
               : MG_FRAMING_JSON;
}

static void
mg_br_map_error(const mg_provider_t *p, int status, const char *hdr, const char *body,
                size_t len, mg_uperr_t *out)
{
    (void) p;
    mg_bedrock_err_t be;
    mg_api_bedrock_error(status, hdr, hdr != NULL ? strlen(hdr) : 0, body, len, &be);
    memset(out, 0, sizeof(*out));
    out->status = be.status;
    out->cls = be.cls;
    out->message = be.message; /* ownership moves to out */
    out->type_json = be.rate_limit ? "\"throttling_error\"" : "null";
    out->param_json = "null";
    out->context_window = be.context_window;
    out->rate_limit = be.rate_limit;
    out->auth = be.auth;
    out->not_found = be.not_found;
    out->timeout = be.timeout;
}

static const mg_provider_ops_t mg_br_ops = {
    .wire = mg_br_wire,
    .base = mg_br_base,
    .fingerprint = mg_br_fingerprint,
    .build = mg_br_build,
    .framing = mg_br_framing,
    .error_header = "x-amzn-errortype",
    .map_error_hdr = mg_br_map_error,
};

const mg_provider_t mg_provider_bedrock_row = {
    "bedrock", "BedrockException", &mg_br_ops, NULL,
    {"AWS_BEARER_TOKEN_BEDROCK"}, {NULL}, false,
    {true, true, false, false}, NULL,
};
