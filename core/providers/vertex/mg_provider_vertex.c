/*
 * mg_provider_vertex.c -- vertex_ai/: Gemini models on Vertex AI (generateContent,
 * streamGenerateContent?alt=sse, :predict for embeddings) and Anthropic's models on Vertex
 * (vertex_ai/claude-*: rawPredict / streamRawPredict with Anthropic's Messages body, no
 * "model" member and anthropic_version vertex-2023-10-16).
 *
 * Credentials, as LiteLLM reads them: vertex_credentials (or vertex_ai_credentials, or the
 * environment's VERTEXAI_CREDENTIALS or VERTEX_CREDENTIALS) holding a service-account key
 * as JSON text, a JSON object, or a file path; else the file GOOGLE_APPLICATION_CREDENTIALS
 * names.  They are read once per snapshot (ops->attach) into the deployment's state, which the
 * fingerprint covers: a rotated key file is a new upstream client and a new token cache key
 * after the reload that reads it.  Requests carry a Bearer access token minted from the key
 * (an RS256 JWT for the key's own token_uri, which is also how tests point it at a mock):
 * ops->prepare asks the worker's token cache for it (mg_token.h).  Project: vertex_project
 * (vertex_ai_project, VERTEXAI_PROJECT) else the key's project_id; location: vertex_location
 * (vertex_ai_location, VERTEXAI_LOCATION, VERTEX_LOCATION) else us-central1; "global" is
 * served by aiplatform.googleapis.com.  An api_base is used as LiteLLM does: the request
 * goes to <api_base>:<method> (the base names the model's whole path).
 *
 * Secrets: the key JSON and its private key stay in the state (never in a message); the
 * snapshot's secret list has them (mg_registry_secrets reads a key file too); minted tokens
 * are the cache's (scrubbed at run time).
 */
#include "../mg_provider.h"
#include "mg_google.h"
#include "mg_google_auth.h"

#include "../../base/mg_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_VERTEX_ANTHROPIC_VERSION "vertex-2023-10-16"
#define MG_VERTEX_MAX_KEY_FILE (1024 * 1024)

/* Per-deployment state (d->pstate), immutable once attached. */
typedef struct {
    char *key_json;             /* malloc, secret: the key as loaded (NULL: none) */
    mg_google_sa_t *sa;         /* owned: the parsed key, NULL when error */
    char *error;                /* malloc: why no token can be minted (never a secret) */
    char *project;              /* malloc or NULL */
    char *location;             /* malloc */
    char *base;                 /* malloc: the endpoint base (api_base or the region's host) */
    char *what;                 /* malloc: "service account <email>" for messages */
} mg_vertex_state_t;

static const char *
mg_vertex_param(const mg_deployment_t *d, const char *k)
{
    const char *v = json_string_value(json_object_get(d->litellm_params, k));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char *
mg_vertex_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char *
mg_vertex_location_of(const mg_deployment_t *d)
{
    const char *l = mg_vertex_param(d, "vertex_location");
    l = l ? l : mg_vertex_param(d, "vertex_ai_location");
    l = l ? l : mg_vertex_env("VERTEXAI_LOCATION");
    l = l ? l : mg_vertex_env("VERTEX_LOCATION");
    return l ? l : "us-central1";
}

/* Anthropic's models on Vertex (LiteLLM: "claude" in the model name). */
static bool
mg_vertex_is_claude(const char *model)
{
    if (model == NULL) {
        return false;
    }
    for (const char *p = model; *p; p++) {
        if (strncasecmp(p, "claude", 6) == 0) {
            return true;
        }
    }
    return false;
}

static char *
mg_vertex_read_file(const char *path, char **error)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (asprintf(error, "cannot read the service-account key file \"%.300s\" (%s)", path,
                     strerror(errno)) < 0) {
            abort();
        }
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        mg_buf_append(&b, chunk, n);
        if (mg_buf_len(&b) > MG_VERTEX_MAX_KEY_FILE) {
            break;
        }
    }
    fclose(f);
    if (mg_buf_len(&b) > MG_VERTEX_MAX_KEY_FILE) {
        memset(b.data, 0, b.cap);
        mg_buf_free(&b);
        if (asprintf(error, "the service-account key file \"%.300s\" is larger than 1 MiB", path) <
            0) {
            abort();
        }
        return NULL;
    }
    char *s = mg_xstrndup(b.data ? mg_buf_head(&b) : "", mg_buf_len(&b));
    if (b.data != NULL) {
        memset(b.data, 0, b.cap);
    }
    mg_buf_free(&b);
    return s;
}

/* The key's JSON text from params, the environment or the default credentials file. */
static char *
mg_vertex_key_json(const mg_deployment_t *d, char **error)
{
    json_t *v = json_object_get(d->litellm_params, "vertex_credentials");
    if (v == NULL || json_is_null(v)) {
        v = json_object_get(d->litellm_params, "vertex_ai_credentials");
    }
    if (json_is_object(v)) {
        return json_dumps(v, JSON_COMPACT);
    }
    const char *s = json_string_value(v);
    const char *from = "vertex_credentials";
    if (s == NULL || s[0] == '\0') {
        s = mg_vertex_env("VERTEXAI_CREDENTIALS");
        from = "VERTEXAI_CREDENTIALS";
    }
    if (s == NULL) {
        s = mg_vertex_env("VERTEX_CREDENTIALS");
        from = "VERTEX_CREDENTIALS";
    }
    if (s != NULL) {
        const char *p = s;
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
            p++;
        }
        if (*p == '{') {
            return mg_xstrdup(s);
        }
        char *err2 = NULL;
        char *text = mg_vertex_read_file(s, &err2);
        if (text == NULL) {
            if (asprintf(error, "%s: %s", from, err2) < 0) {
                abort();
            }
            free(err2);
        }
        return text;
    }
    const char *gac = mg_vertex_env("GOOGLE_APPLICATION_CREDENTIALS");
    if (gac != NULL) {
        char *err2 = NULL;
        char *text = mg_vertex_read_file(gac, &err2);
        if (text == NULL) {
            if (asprintf(error, "GOOGLE_APPLICATION_CREDENTIALS: %s", err2) < 0) {
                abort();
            }
            free(err2);
        }
        return text;
    }
    *error = mg_xstrdup("no credentials: set vertex_credentials (a service-account key as JSON, "
                        "a file path, or os.environ/NAME) or GOOGLE_APPLICATION_CREDENTIALS "
                        "(moongate does not use the metadata server or gcloud's user login)");
    return NULL;
}

static void
mg_vertex_attach(const mg_provider_t *p, mg_deployment_t *d)
{
    (void) p;
    mg_vertex_state_t *st = mg_xcalloc(1, sizeof(*st));
    st->location = mg_xstrdup(mg_vertex_location_of(d));
    const char *api_base = d->api_base != NULL && d->api_base[0] != '\0' ? d->api_base : NULL;
    if (api_base != NULL) {
        st->base = mg_xstrdup(api_base);
    } else if (strcmp(st->location, "global") == 0) {
        st->base = mg_xstrdup("https://aiplatform.googleapis.com");
    } else if (asprintf(&st->base, "https://%s-aiplatform.googleapis.com", st->location) < 0) {
        abort();
    }
    st->key_json = mg_vertex_key_json(d, &st->error);
    if (st->key_json != NULL) {
        mg_err_t err;
        st->sa = mg_google_auth_sa_parse(st->key_json, strlen(st->key_json), &err);
        if (st->sa == NULL) {
            st->error = mg_xstrdup(err.msg);
        }
    }
    const char *proj = mg_vertex_param(d, "vertex_project");
    proj = proj ? proj : mg_vertex_param(d, "vertex_ai_project");
    proj = proj ? proj : mg_vertex_env("VERTEXAI_PROJECT");
    proj = proj ? proj : (st->sa != NULL ? st->sa->project_id : NULL);
    st->project = proj != NULL ? mg_xstrdup(proj) : NULL;
    if (asprintf(&st->what, "service account %.200s",
                 st->sa != NULL ? st->sa->client_email : "(unusable)") < 0) {
        abort();
    }
    d->pstate = st;
}

static void
mg_vertex_release(const mg_provider_t *p, mg_deployment_t *d)
{
    (void) p;
    mg_vertex_state_t *st = d->pstate;
    if (st == NULL) {
        return;
    }
    if (st->key_json != NULL) {
        memset(st->key_json, 0, strlen(st->key_json));
        free(st->key_json);
    }
    mg_google_auth_sa_destroy(st->sa);
    free(st->error);
    free(st->project);
    free(st->location);
    free(st->base);
    free(st->what);
    free(st);
}

static mg_wire_t
mg_vertex_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) p;
    if (mg_vertex_is_claude(d->upstream_model)) {
        return op == MG_OP_CHAT ? MG_WIRE_ANTHROPIC : MG_WIRE_NONE;
    }
    return op == MG_OP_CHAT || op == MG_OP_EMBEDDINGS ? MG_WIRE_GEMINI : MG_WIRE_NONE;
}

static const char *
mg_vertex_base(const mg_provider_t *p, const mg_deployment_t *d)
{
    (void) p;
    const mg_vertex_state_t *st = d->pstate;
    if (st != NULL) {
        return st->base;
    }
    /* not attached (a mock_response deployment): what it would call */
    return d->api_base != NULL && d->api_base[0] != '\0' ? d->api_base
                                                          : "https://us-central1-aiplatform.googleapis.com";
}

static void
mg_vertex_fingerprint(const mg_provider_t *p, const mg_deployment_t *d, mg_buf_t *fp)
{
    (void) p;
    const mg_vertex_state_t *st = d->pstate;
    if (st == NULL) {
        return;
    }
    /* the key as read (a file's or the environment's content too), project and location */
    mg_buf_printf(fp, "%s|%s|%s", st->key_json ? st->key_json : "", st->project ? st->project : "",
                  st->location);
}

static int
mg_vertex_token_body(void *ud, int64_t now_s, mg_buf_t *out, mg_err_t *err)
{
    const mg_vertex_state_t *st = ud;
    return mg_google_auth_token_body(st->sa, MG_GOOGLE_SCOPE_CLOUD, NULL, now_s, out, err);
}

static int
mg_vertex_prepare(const mg_provider_t *p, mg_call_t *c, mg_token_src_t *need, mg_err_t *err)
{
    (void) p;
    const mg_deployment_t *d = c->dep;
    mg_vertex_state_t *st = d->pstate;
    if (st == NULL || st->sa == NULL) {
        mg_err_set(err, MG_ERR_AUTH, "vertex_ai deployment %s: %s", d->id,
                   st != NULL && st->error != NULL ? st->error : "no credentials");
        return MG_ERROR;
    }
    if (st->project == NULL) {
        mg_err_set(err, MG_ERR_AUTH, "vertex_ai deployment %s: Could not resolve project_id (set "
                                     "vertex_project or VERTEXAI_PROJECT, or use a key with a "
                                     "project_id)", d->id);
        return MG_ERROR;
    }
    /* the deployment's credential fingerprint keys the token: a rotation never finds it */
    memcpy(need->key, d->cred_hash, sizeof(need->key));
    need->url = st->sa->token_uri;
    need->what = st->what;
    need->body = mg_vertex_token_body;
    need->ud = st;
    return MG_AGAIN;
}

static int
mg_vertex_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    const mg_vertex_state_t *st = d->pstate;
    if (c->token == NULL || st == NULL || st->project == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "vertex_ai deployment %s: no access token", d->id);
    }
    bool claude = c->wire == MG_WIRE_ANTHROPIC;
    const char *extra = claude ? ",\"anthropic_version\":\"" MG_VERTEX_ANTHROPIC_VERSION "\""
                               : NULL;
    /* Claude's body has no model (it is in the URL); Gemini's builder reads it for rules */
    if (mg_provider_body(c, claude ? NULL : c->upstream_model, extra, aerr) != MG_OK) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s", aerr->msg);
        err->status = aerr->status;
        return MG_ERROR;
    }
    const char *method;
    if (claude) {
        method = c->stream ? "streamRawPredict" : "rawPredict";
    } else if (c->op == MG_OP_EMBEDDINGS) {
        method = "predict";
    } else {
        method = c->stream ? "streamGenerateContent" : "generateContent";
    }
    bool sse = c->stream && c->op == MG_OP_CHAT;
    mg_buf_t path = MG_BUF_INIT;
    bool custom = d->api_base != NULL && d->api_base[0] != '\0';
    if (!custom) {
        mg_buf_append_str(&path, "/v1/projects/");
        mg_provider_path_segment(&path, st->project);
        mg_buf_append_str(&path, "/locations/");
        mg_provider_path_segment(&path, st->location);
        mg_buf_append_str(&path, claude ? "/publishers/anthropic/models/"
                                        : "/publishers/google/models/");
        mg_provider_path_segment(&path, c->upstream_model);
    }
    mg_buf_printf(&path, ":%s", method);
    mg_buf_t *h = c->head;
    mg_provider_head_start(h, st->base, mg_buf_cstr(&path),
                           sse && (!claude || custom) ? "?alt=sse" : NULL);
    mg_buf_free(&path);
    mg_buf_printf(h, "authorization: Bearer %s\r\n", c->token);
    if (claude && c->betas != NULL) {
        mg_buf_printf(h, "anthropic-beta: %s\r\n", c->betas);
    }
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

static mg_framing_t
mg_vertex_framing(const mg_provider_t *p, const mg_call_t *c, const char *ctype)
{
    (void) p;
    (void) c;
    return ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0 ? MG_FRAMING_SSE
                                                                            : MG_FRAMING_JSON;
}

static void
mg_vertex_map_error(const mg_provider_t *p, int status, const char *body, size_t len,
                    mg_uperr_t *out)
{
    (void) p;
    mg_google_map_error("vertex_ai", status, body, len, out);
}

static const mg_provider_ops_t mg_vertex_ops = {
    .wire = mg_vertex_wire,
    .base = mg_vertex_base,
    .fingerprint = mg_vertex_fingerprint,
    .attach = mg_vertex_attach,
    .release = mg_vertex_release,
    .prepare = mg_vertex_prepare,
    .build = mg_vertex_build,
    .framing = mg_vertex_framing,
    .map_error = mg_vertex_map_error,
};

const mg_provider_t mg_provider_vertex_row = {
    "vertex_ai", "Vertex_aiException", &mg_vertex_ops, NULL, {NULL}, {NULL}, false,
    {true, false, true, false}, NULL,
};
