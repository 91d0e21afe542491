/*
 * mg_config.c -- config.yaml loading and validation (see mg_config.h).
 */
#include "mg_config.h"
#include "mg_registry.h"
#include "mg_settings.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_otel.h"
#include "../base/mg_util.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

/* ---- validation context ---- */

typedef struct {
    const mg_marks_t *marks;
    const char *file;           /* for messages when no mark is known */
    mg_err_t *err;
    bool quiet;
    int warnings;
} mg_cfg_ctx_t;

static void
mg_cfg_where(const mg_cfg_ctx_t *c, const char *path, char *out, size_t outlen)
{
    const mg_mark_t *m = mg_marks_get(c->marks, path);
    if (m != NULL) {
        snprintf(out, outlen, "%s:%d:%d: ", m->file, m->line, m->col);
    } else if (c->file != NULL && c->file[0] != '\0') {
        snprintf(out, outlen, "%s: ", c->file);
    } else {
        out[0] = '\0';
    }
}

static int mg_cfg_fail(mg_cfg_ctx_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
mg_cfg_fail(mg_cfg_ctx_t *c, const char *path, const char *fmt, ...)
{
    char where[PATH_MAX + 64];
    char what[768];
    mg_cfg_where(c, path, where, sizeof(where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return mg_err_set(c->err, MG_ERR_CONFIG, "%s%s", where, what);
}

static void mg_cfg_warn(mg_cfg_ctx_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
mg_cfg_warn(mg_cfg_ctx_t *c, const char *path, const char *fmt, ...)
{
    c->warnings++;
    if (c->quiet) {
        return;
    }
    char where[PATH_MAX + 64];
    char what[768];
    mg_cfg_where(c, path, where, sizeof(where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    mg_log(MG_LOG_WARN, NULL, "%s%s", where, what);
}

static const char *
mg_cfg_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* ---- env resolution ---- */

json_t *
mg_config_resolve_env(json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL || strncmp(s, "os.environ/", 11) != 0) {
        return json_incref(v);
    }
    const char *val = getenv(s + 11);
    return val != NULL ? json_string(val) : json_null();
}

/* Resolves os.environ/ in the top-level values of an object, in place. */
static void
mg_cfg_resolve_obj(json_t *obj)
{
    if (!json_is_object(obj)) {
        return;
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v) {
        if (json_is_string(v) && strncmp(json_string_value(v), "os.environ/", 11) == 0) {
            json_object_set_new(obj, k, mg_config_resolve_env(v));
        }
    }
}

/* ---- typed getters with coercion ---- */

static int
mg_cfg_number(mg_cfg_ctx_t *c, json_t *obj, const char *key, const char *path, double *out,
              bool *present)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    char p[512];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (json_is_number(v)) {
        *out = json_number_value(v);
        *present = true;
        return MG_OK;
    }
    if (json_is_string(v)) {
        /* pydantic coerces numeric strings; os.environ/ values are strings */
        const char *s = json_string_value(v);
        char *e;
        errno = 0;
        double d = strtod(s, &e);
        if (s[0] != '\0' && *e == '\0' && errno == 0 && isfinite(d)) {
            json_object_set_new(obj, key, fmod(d, 1.0) == 0.0 && fabs(d) < 9e15
                                              ? json_integer((json_int_t) d)
                                              : json_real(d));
            *out = d;
            *present = true;
            return MG_OK;
        }
    }
    return mg_cfg_fail(c, p, "%s must be a number, got %s", key, mg_cfg_type_name(v));
}

static int
mg_cfg_string(mg_cfg_ctx_t *c, json_t *obj, const char *key, const char *path, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    if (json_is_string(v)) {
        *out = json_string_value(v);
        return MG_OK;
    }
    if (json_is_number(v)) {
        /* YAML turns api_version: 2024-02-01 into a string, but 1.0 into a number */
        char buf[64];
        if (json_is_integer(v)) {
            snprintf(buf, sizeof(buf), "%lld", (long long) json_integer_value(v));
        } else {
            mg_fmt_pyfloat(json_real_value(v), buf, sizeof(buf));
        }
        json_object_set_new(obj, key, json_string(buf));
        *out = json_string_value(json_object_get(obj, key));
        return MG_OK;
    }
    char p[512];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    return mg_cfg_fail(c, p, "%s must be a string, got %s", key, mg_cfg_type_name(v));
}

static int
mg_cfg_bool(mg_cfg_ctx_t *c, json_t *obj, const char *key, const char *path, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return MG_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0) {
            *out = true;
            return MG_OK;
        }
        if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0) {
            *out = false;
            return MG_OK;
        }
    }
    char p[512];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    return mg_cfg_fail(c, p, "%s must be true or false, got %s", key, mg_cfg_type_name(v));
}

static int
mg_cfg_section(mg_cfg_ctx_t *c, json_t *root, const char *key, json_t **out)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    if (!json_is_object(v)) {
        return mg_cfg_fail(c, key, "%s must be a mapping, got %s", key, mg_cfg_type_name(v));
    }
    *out = v;
    return MG_OK;
}

static bool
mg_cfg_in(const char *k, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(k, *list) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- model entries ---- */

static const char *const mg_cfg_number_params[] = {
    "rpm", "tpm", "weight", "order", "timeout", "stream_timeout", "request_timeout",
    "max_retries", "num_retries", "cooldown_time", "input_cost_per_token",
    "output_cost_per_token", "cache_read_input_token_cost", "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token", "input_cost_per_second", "output_cost_per_second",
    "max_input_tokens", "max_parallel_requests", NULL,
};

static const char *const mg_cfg_string_params[] = {
    "api_base", "api_key", "api_version", "custom_llm_provider", "region_name",
    "litellm_credential_name", "base_model", NULL,
};

/* litellm_params that reach a request line, a header or a URL (besides every secret). */
static const char *const mg_cfg_header_params[] = {
    "model", "api_base", "api_key", "api_version", "custom_llm_provider", "region_name",
    "aws_region_name", "aws_bedrock_runtime_endpoint", "vertex_project", "vertex_location",
    "tenant_id", "client_id", "azure_scope", "litellm_credential_name", "base_model",
    "azure_username", NULL,
};

/*
 * A value that reaches a header, a request line or a URL: no CR, LF, NUL or other
 * control byte (issue 15: "inj\r\nX-Injected: yes" from /model/new went out raw).
 * The message names the field and the offset, never the value (it may be a secret).
 */
static int
mg_cfg_header_safe(mg_cfg_ctx_t *c, const char *path, const char *field, json_t *v)
{
    if (!json_is_string(v)) {
        return MG_OK;
    }
    const unsigned char *s = (const unsigned char *) json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            const char *what = s[i] == '\r' ? "a CR" : s[i] == '\n' ? "a LF" : s[i] == 0 ? "a NUL"
                                                                                        : "a control";
            return mg_cfg_fail(c, path, "%s must not contain control characters: %s byte at "
                                        "offset %zu", field, what, i);
        }
    }
    return MG_OK;
}

/* An RFC 9110 token (header names). */
static bool
mg_cfg_token(const char *s)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p) != NULL)) {
            return false;
        }
    }
    return true;
}

/*
 * api_base as a URL: http(s), a host, an optional port, a path and a query (kept and
 * sent after the route); user:password@ is refused (it is a credential in a URL:
 * use api_key), and so is a fragment.
 */
static int
mg_cfg_check_api_base(mg_cfg_ctx_t *c, const char *path, const char *base)
{
    if (base == NULL || base[0] == '\0') {
        return MG_OK;
    }
    if (strncasecmp(base, "http://", 7) != 0 && strncasecmp(base, "https://", 8) != 0) {
        return mg_cfg_fail(c, path, "api_base \"%s\" must start with http:// or https://", base);
    }
    const char *hp = strstr(base, "://") + 3;
    size_t authority = strcspn(hp, "/?#");
    const char *at = memchr(hp, '@', authority);
    if (at != NULL) {
        return mg_cfg_fail(c, path, "api_base must not carry credentials (user:password@host): "
                                    "put the key in api_key");
    }
    if (authority == 0) {
        return mg_cfg_fail(c, path, "api_base has no host");
    }
    for (size_t i = 0; i < authority; i++) {
        unsigned char ch = (unsigned char) hp[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("-._~:[]%", ch) != NULL)) {
            return mg_cfg_fail(c, path, "api_base host has an invalid character at offset %zu",
                               (size_t) (hp - base) + i);
        }
    }
    const char *colon = NULL;
    for (size_t i = 0; i < authority; i++) {
        if (hp[i] == ']') {
            colon = NULL; /* an IPv6 literal's colons are not the port */
        } else if (hp[i] == ':') {
            colon = hp + i;
        }
    }
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || end != hp + authority || port < 1 || port > 65535) {
            return mg_cfg_fail(c, path, "api_base has an invalid port");
        }
    }
    if (strchr(base, '#') != NULL) {
        return mg_cfg_fail(c, path, "api_base must not have a #fragment");
    }
    for (const unsigned char *q = (const unsigned char *) hp + authority; *q; q++) {
        if (*q <= 0x20 || *q == 0x7f) {
            return mg_cfg_fail(c, path, "api_base must not contain spaces or control characters "
                                        "(offset %zu)", (size_t) ((const char *) q - base));
        }
    }
    return MG_OK;
}

static int
mg_cfg_model_safe(mg_cfg_ctx_t *c, json_t *e, const char *path)
{
    char p[640];
    snprintf(p, sizeof(p), "%s.model_name", path);
    if (mg_cfg_header_safe(c, p, "model_name", json_object_get(e, "model_name")) != MG_OK) {
        return MG_ERROR;
    }
    json_t *id = json_object_get(json_object_get(e, "model_info"), "id");
    snprintf(p, sizeof(p), "%s.model_info.id", path);
    if (mg_cfg_header_safe(c, p, "model_info.id", id) != MG_OK) {
        return MG_ERROR;
    }
    json_t *lp = json_object_get(e, "litellm_params");
    const char *k;
    json_t *v;
    json_object_foreach(lp, k, v) {
        snprintf(p, sizeof(p), "%s.litellm_params.%s", path, k);
        bool bound = mg_registry_secret_key(k);
        for (const char *const *h = mg_cfg_header_params; !bound && *h; h++) {
            bound = strcmp(*h, k) == 0;
        }
        if (strcmp(k, "organization") == 0) {
            if (json_is_array(v)) {
                size_t i;
                json_t *o;
                json_array_foreach(v, i, o) {
                    if (mg_cfg_header_safe(c, p, "organization", o) != MG_OK) {
                        return MG_ERROR;
                    }
                }
                continue;
            }
            bound = true;
        }
        if (bound && mg_cfg_header_safe(c, p, k, v) != MG_OK) {
            return MG_ERROR;
        }
        if ((strcmp(k, "extra_headers") == 0 || strcmp(k, "headers") == 0) && json_is_object(v)) {
            const char *hn;
            json_t *hv;
            json_object_foreach(v, hn, hv) {
                char hp[768];
                snprintf(hp, sizeof(hp), "%s.%s", p, hn);
                if (!mg_cfg_token(hn)) {
                    return mg_cfg_fail(c, p, "%s: header name \"%s\" is not a valid token", k, hn);
                }
                if (mg_cfg_header_safe(c, hp, "a header value", hv) != MG_OK) {
                    return MG_ERROR;
                }
            }
        }
        if (strcmp(k, "forward_client_headers") == 0) {
            if (!json_is_array(v)) {
                return mg_cfg_fail(c, p, "forward_client_headers must be a list of header names");
            }
            size_t i;
            json_t *hn;
            json_array_foreach(v, i, hn) {
                if (!mg_cfg_token(json_string_value(hn))) {
                    return mg_cfg_fail(c, p, "forward_client_headers[%zu] is not a header name", i);
                }
            }
        }
    }
    return MG_OK;
}

/*
 * Azure credentials moongate cannot use yet: Entra ID client credentials, username and
 * password, and OIDC token exchange all need a token minted before the call.  A
 * deployment naming them is refused, so it never runs unauthenticated or on another
 * credential by surprise.
 */
static int
mg_cfg_azure_auth(mg_cfg_ctx_t *c, json_t *lp, const char *p)
{
    const char *model = json_string_value(json_object_get(lp, "model"));
    const char *clp = json_string_value(json_object_get(lp, "custom_llm_provider"));
    bool azure = (clp != NULL && (strcmp(clp, "azure") == 0 || strcmp(clp, "azure_ai") == 0)) ||
                 (clp == NULL && model != NULL &&
                  (strncmp(model, "azure/", 6) == 0 || strncmp(model, "azure_ai/", 9) == 0));
    if (!azure) {
        return MG_OK;
    }
    static const char *const keys[] = {"tenant_id", "client_id", "client_secret",
                                       "azure_username", "azure_password", NULL};
    char named[160] = "";
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(lp, *k);
        if (v != NULL && !json_is_null(v)) {
            size_t n = strlen(named);
            snprintf(named + n, sizeof(named) - n, "%s%s", n ? ", " : "", *k);
        }
    }
    if (named[0] != '\0') {
        return mg_cfg_fail(c, p, "litellm_params %s: Azure Entra ID token credentials are not "
                                 "supported by moongate yet (it would have to mint a token "
                                 "first); use api_key or azure_ad_token", named);
    }
    const char *tok = json_string_value(json_object_get(lp, "azure_ad_token"));
    if (tok != NULL && strncmp(tok, "oidc/", 5) == 0) {
        return mg_cfg_fail(c, p, "litellm_params azure_ad_token: an \"oidc/...\" token is "
                                 "exchanged for an Entra ID token first, which moongate does "
                                 "not support yet; give the token itself or an api_key");
    }
    return MG_OK;
}

static int
mg_cfg_model(mg_cfg_ctx_t *c, json_t *entry, const char *path, json_t **out)
{
    char p[512];
    int rc = MG_OK;
    if (!json_is_object(entry)) {
        return mg_cfg_fail(c, path, "each model_list entry must be a mapping with model_name and "
                                    "litellm_params, got %s", mg_cfg_type_name(entry));
    }
    json_t *e = json_deep_copy(entry);
    json_t *mn = json_object_get(e, "model_name");
    if (mn == NULL || json_is_null(mn)) {
                rc = mg_cfg_fail(c, path, "model_name is required");
        goto fail;
    }
    if (json_is_number(mn)) {
        const char *s;
        if (mg_cfg_string(c, e, "model_name", path, &s) != MG_OK) {
            rc = MG_ERROR;
            goto fail;
        }
        mn = json_object_get(e, "model_name");
    }
    snprintf(p, sizeof(p), "%s.model_name", path);
    if (!json_is_string(mn) || json_string_length(mn) == 0) {
                rc = mg_cfg_fail(c, p, "model_name must be a non-empty string, got %s",
                           json_is_string(mn) ? "an empty string" : mg_cfg_type_name(mn));
        goto fail;
    }
    json_t *lp = json_object_get(e, "litellm_params");
    snprintf(p, sizeof(p), "%s.litellm_params", path);
    if (lp == NULL || json_is_null(lp)) {
                rc = mg_cfg_fail(c, path, "litellm_params is required (with at least model)");
        goto fail;
    }
    if (!json_is_object(lp)) {
                rc = mg_cfg_fail(c, p, "litellm_params must be a mapping, got %s", mg_cfg_type_name(lp));
        goto fail;
    }
    mg_cfg_resolve_obj(lp);
    json_t *model = json_object_get(lp, "model");
    if (model == NULL || json_is_null(model)) {
                rc = mg_cfg_fail(c, p, "litellm_params.model is required (e.g. openai/gpt-4o)");
        goto fail;
    }
    char mp[600];
    snprintf(mp, sizeof(mp), "%s.model", p);
    if (!json_is_string(model) || json_string_length(model) == 0) {
                rc = mg_cfg_fail(c, mp, "litellm_params.model must be a non-empty string, got %s",
                           mg_cfg_type_name(model));
        goto fail;
    }
    for (const char *const *k = mg_cfg_number_params; *k != NULL; k++) {
        double d;
        bool present;
        if (mg_cfg_number(c, lp, *k, p, &d, &present) != MG_OK) {
            rc = MG_ERROR;
            goto fail;
        }
        if (present && d < 0) {
            snprintf(mp, sizeof(mp), "%s.%s", p, *k);
                        rc = mg_cfg_fail(c, mp, "%s must not be negative, got %g", *k, d);
            goto fail;
        }
    }
    for (const char *const *k = mg_cfg_string_params; *k != NULL; k++) {
        const char *s;
        if (mg_cfg_string(c, lp, *k, p, &s) != MG_OK) {
            rc = MG_ERROR;
            goto fail;
        }
    }
    if (mg_cfg_azure_auth(c, lp, p) != MG_OK) {
        rc = MG_ERROR;
        goto fail;
    }
    const char *base = json_string_value(json_object_get(lp, "api_base"));
    snprintf(mp, sizeof(mp), "%s.api_base", p);
    if (mg_cfg_header_safe(c, mp, "api_base", json_object_get(lp, "api_base")) != MG_OK ||
        mg_cfg_check_api_base(c, mp, base) != MG_OK) {
        rc = MG_ERROR;
        goto fail;
    }
    bool b;
    if (mg_cfg_bool(c, lp, "drop_params", p, &b) != MG_OK) {
        rc = MG_ERROR;
        goto fail;
    }
    json_t *org = json_object_get(lp, "organization");
    if (org != NULL && !json_is_null(org) && !json_is_string(org) && !json_is_array(org)) {
        snprintf(mp, sizeof(mp), "%s.organization", p);
                rc = mg_cfg_fail(c, mp, "organization must be a string or a list of strings");
        goto fail;
    }
    const char *hk[] = {"extra_headers", "headers"};
    for (int i = 0; i < 2; i++) {
        json_t *h = json_object_get(lp, hk[i]);
        if (h == NULL || json_is_null(h)) {
            continue;
        }
        snprintf(mp, sizeof(mp), "%s.%s", p, hk[i]);
        if (!json_is_object(h)) {
                        rc = mg_cfg_fail(c, mp, "%s must be a mapping of header names to strings", hk[i]);
            goto fail;
        }
        const char *hn;
        json_t *hv;
        json_object_foreach(h, hn, hv) {
            if (!json_is_string(hv)) {
                                rc = mg_cfg_fail(c, mp, "%s.%s must be a string, got %s", hk[i], hn,
                                   mg_cfg_type_name(hv));
                goto fail;
            }
            for (const char *q = json_string_value(hv); *q; q++) {
                if (*q == '\r' || *q == '\n') {
                                        rc = mg_cfg_fail(c, mp, "%s.%s must not contain line breaks", hk[i], hn);
                    goto fail;
                }
            }
        }
    }
    json_t *mi = json_object_get(e, "model_info");
    snprintf(p, sizeof(p), "%s.model_info", path);
    if (mi != NULL && !json_is_null(mi)) {
        if (!json_is_object(mi)) {
                        rc = mg_cfg_fail(c, p, "model_info must be a mapping, got %s", mg_cfg_type_name(mi));
            goto fail;
        }
        json_t *id = json_object_get(mi, "id");
        if (id != NULL && !json_is_null(id)) {
            const char *s;
            if (mg_cfg_string(c, mi, "id", p, &s) != MG_OK) {
                rc = MG_ERROR;
                goto fail;
            }
            if (s[0] == '\0') {
                                rc = mg_cfg_fail(c, p, "model_info.id must not be empty");
                goto fail;
            }
        }
        for (const char *const *k = mg_cfg_number_params; *k != NULL; k++) {
            double d;
            bool present;
            if (mg_cfg_number(c, mi, *k, p, &d, &present) != MG_OK) {
                rc = MG_ERROR;
                goto fail;
            }
        }
    } else {
        json_object_set_new(e, "model_info", json_object());
    }
    /* prices that could not be used are refused here, not priced at 0 on every call */
    mg_costmap_prices_t prices;
    mg_err_t perr;
    if (mg_costmap_prices_from_json(lp, json_object_get(e, "model_info"), &prices, &perr) !=
        MG_OK) {
        rc = mg_cfg_fail(c, path, "%s", perr.msg);
        goto fail;
    }
    if (mg_cfg_model_safe(c, e, path) != MG_OK) {
        rc = MG_ERROR;
        goto fail;
    }
    /* LiteLLM also accepts rpm/tpm at the deployment's top level */
    const char *top[] = {"rpm", "tpm"};
    for (int i = 0; i < 2; i++) {
        double d;
        bool present;
        if (mg_cfg_number(c, e, top[i], path, &d, &present) != MG_OK) {
            rc = MG_ERROR;
            goto fail;
        }
        if (present && json_object_get(lp, top[i]) == NULL) {
            json_object_set(lp, top[i], json_object_get(e, top[i]));
        }
    }
    *out = e;
    return MG_OK;
fail:
    /* the message is formatted before e (which it may quote) is released */
    json_decref(e);
    return rc;
}

void
mg_config_state_dir(const mg_config_t *cfg, const char *config_path, char *out, size_t len)
{
    if (cfg->state_dir != NULL) {
        snprintf(out, len, "%s", cfg->state_dir);
        return;
    }
    const char *env = getenv("MOONGATE_STATE_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, len, "%s", env);
        return;
    }
    /* one directory per config file, outside the source tree and the config's own
     * directory (which may be read-only, shared, or a checkout) */
    char real[PATH_MAX];
    const char *id = "no-config";
    if (config_path != NULL && config_path[0] != '\0') {
        id = realpath(config_path, real) != NULL ? real : config_path;
    }
    char h[65];
    mg_sha256_hex(id, strlen(id), h);
    if (geteuid() == 0) {
        snprintf(out, len, "/var/lib/moongate/%.16s", h);
        return;
    }
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/') {
        snprintf(out, len, "%s/moongate/%.16s", xdg, h);
    } else if (home != NULL && home[0] == '/') {
        snprintf(out, len, "%s/.local/state/moongate/%.16s", home, h);
    } else {
        snprintf(out, len, "/tmp/moongate-%d/%.16s", (int) geteuid(), h);
    }
}

int
mg_config_check_model(json_t *entry, const char *where, const mg_marks_t *marks, const char *path,
                      json_t **out, mg_err_t *err)
{
    mg_cfg_ctx_t c = {marks, where, err, true, 0};
    return mg_cfg_model(&c, entry, path != NULL ? path : "", out);
}

/* ---- includes ---- */

static void
mg_cfg_remap_marks(mg_marks_t *dst, const mg_marks_t *src, const char *key, size_t offset)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < src->by_path.cap; i++) {
        const char *p = src->by_path.slots[i].key;
        if (p == NULL || strncmp(p, key, kl) != 0 || (p[kl] != '\0' && p[kl] != '.' && p[kl] != '[')) {
            continue;
        }
        mg_buf_t nb = MG_BUF_INIT;
        if (offset > 0 && p[kl] == '[') {
            char *end;
            unsigned long idx = strtoul(p + kl + 1, &end, 10);
            mg_buf_printf(&nb, "%s[%lu%s", key, idx + offset, end);
        } else {
            mg_buf_append_str(&nb, p);
        }
        const mg_mark_t *sm = src->by_path.slots[i].val;
        /* intern the file name in dst */
        const char *fname = NULL;
        for (size_t f = 0; f < dst->nfiles; f++) {
            if (strcmp(dst->files[f], sm->file) == 0) {
                fname = dst->files[f];
            }
        }
        if (fname == NULL) {
            dst->files = mg_xrealloc(dst->files, (dst->nfiles + 1) * sizeof(char *));
            dst->files[dst->nfiles] = mg_xstrdup(sm->file);
            fname = dst->files[dst->nfiles++];
        }
        mg_mark_t *m = mg_xmalloc(sizeof(*m));
        *m = *sm;
        m->file = fname;
        free(mg_map_put(&dst->by_path, mg_buf_cstr(&nb), mg_buf_len(&nb), m));
        mg_buf_free(&nb);
    }
}

static int
mg_cfg_includes(mg_cfg_ctx_t *c, const char *path, json_t *root, mg_marks_t *marks, int depth)
{
    json_t *inc = json_object_get(root, "include");
    if (inc == NULL || json_is_null(inc)) {
        json_object_del(root, "include");
        return MG_OK;
    }
    if (depth > 8) {
        return mg_cfg_fail(c, "include", "include nested more than 8 levels deep (a cycle?)");
    }
    if (json_is_string(inc)) {
        json_t *a = json_array();
        json_array_append(a, inc);
        json_object_set_new(root, "include", a);
        inc = a;
    }
    if (!json_is_array(inc)) {
        return mg_cfg_fail(c, "include", "include must be a list of file paths, got %s",
                           mg_cfg_type_name(inc));
    }
    json_incref(inc);
    json_object_del(root, "include");
    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    const char *dir = dirname(dirbuf);
    size_t i;
    json_t *item;
    int rc = MG_OK;
    json_array_foreach(inc, i, item) {
        char ip[64];
        snprintf(ip, sizeof(ip), "include[%zu]", i);
        if (!json_is_string(item)) {
            rc = mg_cfg_fail(c, ip, "include entries must be file paths, got %s",
                             mg_cfg_type_name(item));
            break;
        }
        const char *rel = json_string_value(item);
        char full[PATH_MAX * 2];
        if (rel[0] == '/') {
            snprintf(full, sizeof(full), "%s", rel);
        } else {
            snprintf(full, sizeof(full), "%s/%s", dir, rel);
        }
        mg_marks_t sub;
        mg_marks_init(&sub);
        json_t *child = NULL;
        mg_err_t e2;
        if (mg_yaml_load_file(full, &sub, &child, &e2) != MG_OK) {
            char where[PATH_MAX + 64];
            mg_cfg_where(c, ip, where, sizeof(where));
            rc = mg_err_set(c->err, MG_ERR_CONFIG, "%sincluded file \"%s\": %s", where, rel, e2.msg);
            mg_marks_free(&sub);
            break;
        }
        if (json_is_null(child)) {
            json_decref(child);
            mg_marks_free(&sub);
            continue;
        }
        if (!json_is_object(child)) {
            rc = mg_cfg_fail(c, ip, "included file \"%s\" must contain a mapping", rel);
            json_decref(child);
            mg_marks_free(&sub);
            break;
        }
        mg_cfg_ctx_t sc = {&sub, full, c->err, c->quiet, 0};
        if (mg_cfg_includes(&sc, full, child, &sub, depth + 1) != MG_OK) {
            rc = MG_ERROR;
            json_decref(child);
            mg_marks_free(&sub);
            break;
        }
        const char *k;
        json_t *v;
        json_object_foreach(child, k, v) {
            json_t *cur = json_object_get(root, k);
            size_t offset = 0;
            if (json_is_array(cur) && json_is_array(v)) {
                offset = json_array_size(cur);
                json_array_extend(cur, v);
            } else {
                json_object_set(root, k, v);
            }
            if (marks != NULL) {
                mg_cfg_remap_marks(marks, &sub, k, offset);
            }
        }
        json_decref(child);
        mg_marks_free(&sub);
    }
    json_decref(inc);
    return rc;
}

/* ---- sections ---- */

static const char *const mg_cfg_top_known[] = {
    "model_list", "litellm_settings", "router_settings", "general_settings",
    "environment_variables", "credential_list", "moongate_settings", "__moongate_policies",
    "__moongate_cost_map", NULL,
};


static const char *const mg_cfg_strategies[] = {
    "simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2",
    "latency-based-routing", "cost-based-routing", NULL,
};

/* Logging integrations moongate runs, by LiteLLM's callback name. */
static const char *const mg_cfg_callbacks_known[] = {"otel", "prometheus", NULL};

/*
 * litellm_settings.callbacks / success_callback / failure_callback: "otel" turns tracing
 * on (cfg->otel; the exporter reads its settings from the OTEL_* environment, and what it
 * cannot honour is warned about here, once per load); any other integration is named in a
 * warning and listed as not implemented.
 */
static int
mg_cfg_callbacks(mg_cfg_ctx_t *c, mg_config_t *cfg, json_t *ls)
{
    static const char *const keys[] = {"callbacks", "success_callback", "failure_callback",
                                       "service_callbacks"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        char p[64];
        snprintf(p, sizeof(p), "litellm_settings.%s", keys[k]);
        json_t *cb = json_object_get(ls, keys[k]);
        if (cb == NULL || json_is_null(cb)) {
            continue;
        }
        if (!json_is_array(cb) && !json_is_string(cb)) {
            return mg_cfg_fail(c, p, "%s must be a list", keys[k]);
        }
        size_t n = json_is_array(cb) ? json_array_size(cb) : 1;
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_is_array(cb) ? json_array_get(cb, i) : cb;
            const char *name = json_string_value(v);
            if (name == NULL) {
                return mg_cfg_fail(c, p, "%s[%zu] must be a string (an integration name)", keys[k],
                                   i);
            }
            if (strcmp(name, "otel") == 0) {
                cfg->otel = true;
            }
            if (mg_cfg_in(name, mg_cfg_callbacks_known)) {
                continue;
            }
            char what[300];
            snprintf(what, sizeof(what), "%s \"%s\"", p, name);
            mg_cfg_warn(c, p, "accepted, not implemented in moongate: the \"%s\" logging "
                              "integration; effect: it does not run", name);
            json_array_append_new(cfg->unimplemented,
                                  json_pack("{s:s,s:s}", "setting", what, "effect",
                                            "this logging integration does not run"));
        }
    }
    if (cfg->otel && !c->quiet) {
        mg_otel_conf_t oc;
        mg_otel_conf_from_env(&oc);
        for (size_t i = 0; i < oc.nwarnings; i++) {
            mg_cfg_warn(c, "litellm_settings.callbacks", "otel: %s", oc.warnings[i]);
        }
        if (oc.exporter == MG_OTEL_EXP_OTLP_HTTP) {
            mg_log(MG_LOG_NOTICE, NULL, "otel: traces go to %s (OTLP/HTTP, JSON), service.name "
                                        "\"%s\"", oc.endpoint, oc.resource[0].value);
        } else if (oc.exporter == MG_OTEL_EXP_CONSOLE) {
            mg_log(MG_LOG_NOTICE, NULL, "otel: spans are printed to the log (OTEL_EXPORTER=console; "
                                        "set OTEL_ENDPOINT to export them)");
        }
        mg_otel_conf_free(&oc);
    }
    return MG_OK;
}

/*
 * Every key of the LiteLLM sections against the one settings table (mg_settings.c):
 * accepted-not-implemented ones get one warning naming their effect and are listed in
 * cfg->unimplemented (/moongate/state); refused ones fail the load; unknown ones warn.
 */
static int
mg_cfg_settings_check(mg_cfg_ctx_t *c, mg_config_t *cfg, json_t *gs, json_t *ls, json_t *rs)
{
    struct {
        const char *section;
        json_t *obj;
    } secs[] = {
        {"top-level", cfg->root},
        {"general_settings", gs},
        {"litellm_settings", ls},
        {"router_settings", rs},
    };
    cfg->unimplemented = json_array();
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
        const char *k;
        json_t *v;
        json_object_foreach(secs[i].obj, k, v) {
            bool top = i == 0;
            if (top && mg_cfg_in(k, mg_cfg_top_known)) {
                continue;
            }
            if (json_is_null(v) || ((json_is_array(v) || json_is_object(v)) &&
                                    json_array_size(v) + json_object_size(v) == 0)) {
                continue; /* an empty setting asks for nothing */
            }
            char p[300];
            snprintf(p, sizeof(p), top ? "%s%s" : "%s.%s", top ? "" : secs[i].section, k);
            const mg_setting_t *st = mg_setting_find(secs[i].section, k);
            if (st == NULL) {
                mg_cfg_warn(c, p, "%s is not a setting moongate knows (LiteLLM's or its own); "
                                  "ignored", p);
                continue;
            }
            if (st->status == MG_SET_WARN) {
                mg_cfg_warn(c, p, "accepted, not implemented in moongate: %s; effect: %s", p,
                            st->effect);
                json_array_append_new(cfg->unimplemented,
                                      json_pack("{s:s,s:s}", "setting", p, "effect", st->effect));
            } else if (st->status == MG_SET_REFUSED) {
                return mg_cfg_fail(c, p, "%s is not implemented in moongate, and ignoring it would "
                                         "change what clients get (%s); remove it to run moongate",
                                   p, st->effect);
            }
        }
    }
    return MG_OK;
}

/* Metrics, logs: litellm_settings callbacks, prometheus_latency_buckets, json_logs,
 * require_auth_for_metrics_endpoint. */
static int
mg_cfg_observability(mg_cfg_ctx_t *c, mg_config_t *cfg, json_t *ls)
{
    if (mg_cfg_callbacks(c, cfg, ls) != MG_OK) {
        return MG_ERROR;
    }
    json_t *b = json_object_get(ls, "prometheus_latency_buckets");
    if (b != NULL && !json_is_null(b)) {
        const char *p = "litellm_settings.prometheus_latency_buckets";
        if (!json_is_array(b) || json_array_size(b) == 0 || json_array_size(b) > 60) {
            return mg_cfg_fail(c, p, "prometheus_latency_buckets must be a list of 1 to 60 "
                                     "ascending numbers of seconds");
        }
        cfg->latency_buckets = mg_xcalloc(json_array_size(b) + 1, sizeof(double));
        size_t i;
        json_t *it;
        json_array_foreach(b, i, it) {
            double v = json_is_number(it) ? json_number_value(it) : -1;
            if (json_is_string(it) && (strcmp(json_string_value(it), "inf") == 0 ||
                                       strcmp(json_string_value(it), "+Inf") == 0)) {
                v = INFINITY;
            }
            if (!(v > 0) || (i > 0 && !(v > cfg->latency_buckets[i - 1]))) {
                return mg_cfg_fail(c, p, "prometheus_latency_buckets[%zu] must be a number of "
                                         "seconds greater than the one before it", i);
            }
            cfg->latency_buckets[i] = v;
        }
        cfg->nlatency_buckets = (int) json_array_size(b);
    }
    json_t *ra = json_object_get(ls, "require_auth_for_metrics_endpoint");
    cfg->metrics_auth = json_is_true(ra);
    json_t *jl = json_object_get(ls, "json_logs");
    cfg->json_logs = json_is_true(jl);
    const char *env = getenv("JSON_LOGS");
    if (env != NULL && (strcasecmp(env, "true") == 0 || strcmp(env, "1") == 0)) {
        cfg->json_logs = true;
    }
    return MG_OK;
}

static int
mg_cfg_fallback_list(mg_cfg_ctx_t *c, json_t *router, const char *key, const char *section)
{
    json_t *v = json_object_get(router, key);
    char p[256];
    snprintf(p, sizeof(p), "%s.%s", section, key);
    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    if (!json_is_array(v)) {
        return mg_cfg_fail(c, p, "%s must be a list like [{\"group\": [\"fallback1\"]}], got %s",
                           key, mg_cfg_type_name(v));
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        char ip[300];
        snprintf(ip, sizeof(ip), "%s[%zu]", p, i);
        if (!json_is_object(item) || json_object_size(item) != 1) {
            return mg_cfg_fail(c, ip, "each %s entry must be a mapping with exactly one model "
                                      "group key, e.g. {\"gpt-4o\": [\"gpt-4o-mini\"]}", key);
        }
        const char *g;
        json_t *list;
        json_object_foreach(item, g, list) {
            if (json_is_string(list)) {
                json_t *a = json_array();
                json_array_append(a, list);
                json_object_set_new(item, g, a);
                list = a;
            }
            if (!json_is_array(list)) {
                return mg_cfg_fail(c, ip, "%s for \"%s\" must be a list of model groups", key, g);
            }
            size_t j;
            json_t *t;
            json_array_foreach(list, j, t) {
                if (!json_is_string(t) && !json_is_object(t)) {
                    return mg_cfg_fail(c, ip, "%s for \"%s\" must list model group names", key, g);
                }
            }
        }
    }
    return MG_OK;
}

static int
mg_cfg_router(mg_cfg_ctx_t *c, mg_config_t *cfg, json_t *ls, json_t *rs)
{
    /* litellm_settings router defaults, overridden by router_settings */
    json_t *router = json_object();
    static const char *const from_litellm[] = {
        "num_retries", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks",
        "default_fallbacks", "allowed_fails", "cooldown_time", "retry_policy", "request_timeout",
        "disable_cooldowns", "max_fallbacks", NULL,
    };
    if (ls != NULL) {
        /* numbers are checked where they are written, so errors keep file:line:column */
        static const char *const nums[] = {"num_retries", "allowed_fails", "cooldown_time",
                                           "request_timeout", "max_fallbacks", NULL};
        for (const char *const *k = nums; *k; k++) {
            double d;
            bool present;
            if (mg_cfg_number(c, ls, *k, "litellm_settings", &d, &present) != MG_OK) {
                json_decref(router);
                return MG_ERROR;
            }
        }
        for (const char *const *k = from_litellm; *k; k++) {
            json_t *v = json_object_get(ls, *k);
            if (v != NULL && !json_is_null(v)) {
                json_object_set(router, strcmp(*k, "request_timeout") == 0 ? "timeout" : *k, v);
            }
        }
    }
    if (rs != NULL) {
        mg_cfg_resolve_obj(rs);
        const char *k;
        json_t *v;
        json_object_foreach(rs, k, v) {
            if (!json_is_null(v)) {
                json_object_set(router, k, v);
            }
        }
    }
    cfg->router = router;
    const char *rsp = "router_settings";
    const char *s;
    if (mg_cfg_string(c, router, "routing_strategy", rsp, &s) != MG_OK) {
        return MG_ERROR;
    }
    if (s != NULL && !mg_cfg_in(s, mg_cfg_strategies)) {
        return mg_cfg_fail(c, "router_settings.routing_strategy",
                           "routing_strategy \"%s\" is not supported; use one of simple-shuffle, "
                           "least-busy, usage-based-routing-v2, latency-based-routing, "
                           "cost-based-routing (or routing_policy: ./file.lua)", s);
    }
    static const char *const nums[] = {"num_retries", "retry_after", "allowed_fails",
                                       "cooldown_time", "max_fallbacks", "timeout",
                                       "stream_timeout", NULL};
    for (const char *const *k = nums; *k; k++) {
        double d;
        bool present;
        if (mg_cfg_number(c, router, *k, rsp, &d, &present) != MG_OK) {
            return MG_ERROR;
        }
        if (present && d < 0) {
            char p[256];
            snprintf(p, sizeof(p), "router_settings.%s", *k);
            return mg_cfg_fail(c, p, "%s must not be negative", *k);
        }
    }
    cfg->pre_call_checks = json_is_true(json_object_get(router, "enable_pre_call_checks"));
    json_t *cpf = json_object_get(router, "content_policy_fallbacks");
    cfg->cp_fallbacks = json_is_array(cpf) && json_array_size(cpf) > 0 ? cpf : NULL;
    json_t *dmp = json_object_get(router, "default_max_parallel_requests");
    cfg->default_max_parallel = json_is_number(dmp) && json_number_value(dmp) >= 1
                                    ? mg_clamp_int(json_number_value(dmp))
                                    : 0;
    bool b;
    if (mg_cfg_bool(c, router, "disable_cooldowns", rsp, &b) != MG_OK ||
        mg_cfg_bool(c, router, "enable_pre_call_checks", rsp, &b) != MG_OK ||
        mg_cfg_bool(c, router, "enable_tag_filtering", rsp, &b) != MG_OK ||
        mg_cfg_bool(c, router, "tag_filtering_match_any", rsp, &b) != MG_OK) {
        return MG_ERROR;
    }
    static const char *const fb[] = {"fallbacks", "context_window_fallbacks",
                                     "content_policy_fallbacks", NULL};
    for (const char *const *k = fb; *k; k++) {
        /* name the section the user wrote it in, so the error carries its location */
        const char *sec = (rs != NULL && json_object_get(rs, *k) != NULL) ? "router_settings"
                                                                          : "litellm_settings";
        if (mg_cfg_fallback_list(c, router, *k, sec) != MG_OK) {
            return MG_ERROR;
        }
    }
    json_t *df = json_object_get(router, "default_fallbacks");
    if (df != NULL && !json_is_null(df)) {
        if (json_is_string(df)) {
            json_t *a = json_array();
            json_array_append(a, df);
            json_object_set_new(router, "default_fallbacks", a);
        } else if (!json_is_array(df)) {
            return mg_cfg_fail(c, "router_settings.default_fallbacks",
                               "default_fallbacks must be a list of model groups");
        }
    }
    static const char *const objs[] = {"retry_policy", "allowed_fails_policy", "model_group_alias",
                                       "routing_strategy_args", "policy_args", NULL};
    for (const char *const *k = objs; *k; k++) {
        json_t *v = json_object_get(router, *k);
        if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
            char p[256];
            snprintf(p, sizeof(p), "router_settings.%s", *k);
            return mg_cfg_fail(c, p, "%s must be a mapping, got %s", *k, mg_cfg_type_name(v));
        }
    }
    json_t *alias = json_object_get(router, "model_group_alias");
    if (json_is_object(alias)) {
        const char *an;
        json_t *av;
        json_object_foreach(alias, an, av) {
            if (!json_is_string(av) &&
                !(json_is_object(av) && json_is_string(json_object_get(av, "model")))) {
                return mg_cfg_fail(c, "router_settings.model_group_alias",
                                   "model_group_alias.%s must be a group name or "
                                   "{model: group, hidden: bool}", an);
            }
        }
    }
    static const char *const pol[] = {"routing_policy", "fallback_policy", "wildcard_policy",
                                      "filter_policy", NULL};
    for (const char *const *k = pol; *k; k++) {
        if (mg_cfg_string(c, router, *k, rsp, &s) != MG_OK) {
            return MG_ERROR;
        }
    }
    return MG_OK;
}

static int
mg_cfg_redis(mg_cfg_ctx_t *c, mg_config_t *cfg)
{
    json_t *r = cfg->router;
    const char *host = json_string_value(json_object_get(r, "redis_host"));
    const char *url = json_string_value(json_object_get(r, "redis_url"));
    const char *pw = json_string_value(json_object_get(r, "redis_password"));
    const char *user = json_string_value(json_object_get(r, "redis_username"));
    json_t *portv = json_object_get(r, "redis_port");
    int port = 6379;
    if (portv != NULL && !json_is_null(portv)) {
        double d;
        bool present;
        if (mg_cfg_number(c, r, "redis_port", "router_settings", &d, &present) != MG_OK) {
            return MG_ERROR;
        }
        if (present && (d < 1 || d > 65535)) {
            return mg_cfg_fail(c, "router_settings.redis_port", "redis_port must be 1-65535, got %g", d);
        }
        port = present ? (int) d : port;
    }
    if (host == NULL && url == NULL) {
        host = getenv("REDIS_HOST");
        url = getenv("REDIS_URL");
        if (pw == NULL) {
            pw = getenv("REDIS_PASSWORD");
        }
        if (user == NULL) {
            user = getenv("REDIS_USERNAME");
        }
        const char *ep = getenv("REDIS_PORT");
        if (host != NULL && ep != NULL) {
            port = atoi(ep);
        }
    }
    cfg->redis_db = 0;
    if (url != NULL && url[0] != '\0' && (host == NULL || host[0] == '\0')) {
        /* redis://[user:pass@]host[:port][/db] */
        const char *p = url;
        if (strncmp(p, "redis://", 8) == 0) {
            p += 8;
        } else if (strncmp(p, "rediss://", 9) == 0) {
            return mg_cfg_fail(c, "router_settings.redis_url",
                               "rediss:// (TLS to Redis) is not supported yet; use redis://");
        } else {
            return mg_cfg_fail(c, "router_settings.redis_url",
                               "redis_url must start with redis://");
        }
        const char *at = strrchr(p, '@');
        if (at != NULL) {
            const char *colon = memchr(p, ':', (size_t) (at - p));
            if (colon != NULL) {
                if (colon > p) {
                    cfg->redis_username = mg_xstrndup(p, (size_t) (colon - p));
                }
                cfg->redis_password = mg_xstrndup(colon + 1, (size_t) (at - colon - 1));
            } else {
                cfg->redis_password = mg_xstrndup(p, (size_t) (at - p));
            }
            p = at + 1;
        }
        const char *slash = strchr(p, '/');
        const char *hend = slash ? slash : p + strlen(p);
        const char *colon = memchr(p, ':', (size_t) (hend - p));
        if (colon != NULL) {
            cfg->redis_host = mg_xstrndup(p, (size_t) (colon - p));
            port = atoi(colon + 1);
        } else {
            cfg->redis_host = mg_xstrndup(p, (size_t) (hend - p));
        }
        if (slash != NULL && slash[1] != '\0') {
            cfg->redis_db = atoi(slash + 1);
        }
        cfg->redis_port = port;
        return MG_OK;
    }
    if (host != NULL && host[0] != '\0') {
        cfg->redis_host = mg_xstrdup(host);
        cfg->redis_port = port > 0 ? port : 6379;
        if (pw != NULL && pw[0] != '\0' && cfg->redis_password == NULL) {
            cfg->redis_password = mg_xstrdup(pw);
        }
        if (user != NULL && user[0] != '\0' && cfg->redis_username == NULL) {
            cfg->redis_username = mg_xstrdup(user);
        }
        json_t *db = json_object_get(r, "redis_db");
        if (json_is_integer(db)) {
            cfg->redis_db = (int) json_integer_value(db);
        }
    }
    return MG_OK;
}

/* Reads a policy file relative to the config's directory. */
static char *
mg_cfg_read_file(const char *cfg_path, const char *rel, char *full, size_t full_len, mg_err_t *err)
{
    if (rel[0] == '/' || cfg_path == NULL || cfg_path[0] == '\0') {
        snprintf(full, full_len, "%s", rel);
    } else {
        char dirbuf[PATH_MAX];
        snprintf(dirbuf, sizeof(dirbuf), "%s", cfg_path);
        snprintf(full, full_len, "%s/%s", dirname(dirbuf), rel);
    }
    FILE *f = fopen(full, "rb");
    if (f == NULL) {
        mg_err_set(err, MG_ERR_CONFIG, "cannot open policy file \"%s\" (%d: %s)", full, errno,
                   strerror(errno));
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    char tmp[8192];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        mg_buf_append(&b, tmp, n);
        if (mg_buf_len(&b) > 4 * 1024 * 1024) {
            fclose(f);
            mg_buf_free(&b);
            mg_err_set(err, MG_ERR_CONFIG, "policy file \"%s\" is larger than 4 MiB", full);
            return NULL;
        }
    }
    fclose(f);
    char *s = mg_xstrdup(b.data ? mg_buf_cstr(&b) : "");
    mg_buf_free(&b);
    return s;
}

/* routing_strategy / routing_policy / fallback_policy / wildcard_policy -> cfg->policies */
static int
mg_cfg_policies(mg_cfg_ctx_t *c, mg_config_t *cfg)
{
    json_t *root = cfg->root;
    json_t *have = json_object_get(root, "__moongate_policies");
    if (json_is_object(have)) {
        cfg->policies = have; /* already resolved (sent by the master) */
        return MG_OK;
    }
    static const struct {
        const char *strategy;
        const char *builtin;
    } strat[] = {
        {"simple-shuffle", "simple_shuffle"},        {"least-busy", "least_busy"},
        {"latency-based-routing", "latency_based"},  {"usage-based-routing", "usage_based_v2"},
        {"usage-based-routing-v2", "usage_based_v2"}, {"cost-based-routing", "cost_based"},
    };
    json_t *pol = json_object();
    json_t *args = mg_config_router_get(cfg, "policy_args");
    const char *kinds[] = {"routing", "fallback", "wildcard", "filter"};
    const char *keys[] = {"routing_policy", "fallback_policy", "wildcard_policy", "filter_policy"};
    const char *dflt[] = {"simple_shuffle", "ordered", "litellm", NULL};
    for (int k = 0; k < 4; k++) {
        const char *name = dflt[k];
        if (k == 3) {
            /* the filter runs only when asked for: LiteLLM's enable_tag_filtering is ours */
            if (json_is_true(mg_config_router_get(cfg, "enable_tag_filtering"))) {
                name = "tags";
            }
            if (name == NULL && mg_config_router_get(cfg, keys[k]) == NULL) {
                continue;
            }
        }
        if (k == 0) {
            const char *st = json_string_value(mg_config_router_get(cfg, "routing_strategy"));
            for (size_t i = 0; st != NULL && i < sizeof(strat) / sizeof(strat[0]); i++) {
                if (strcmp(st, strat[i].strategy) == 0) {
                    name = strat[i].builtin;
                }
            }
        }
        const char *given = json_string_value(mg_config_router_get(cfg, keys[k]));
        json_t *conf = json_object();
        json_t *tma = mg_config_router_get(cfg, "tag_filtering_match_any");
        if (k == 3 && json_is_boolean(tma)) {
            json_object_set(conf, "match_any", tma);
        }
        if (k == 0 && json_is_object(mg_config_router_get(cfg, "routing_strategy_args"))) {
            json_object_update(conf, mg_config_router_get(cfg, "routing_strategy_args"));
        }
        if (json_is_object(json_object_get(args, kinds[k]))) {
            json_object_update(conf, json_object_get(args, kinds[k]));
        }
        json_t *e;
        if (given != NULL && (strchr(given, '/') != NULL || strstr(given, ".lua") != NULL)) {
            char full[PATH_MAX * 2];
            mg_err_t e2;
            char *src = mg_cfg_read_file(cfg->path, given, full, sizeof(full), &e2);
            if (src == NULL) {
                char p[64];
                snprintf(p, sizeof(p), "router_settings.%s", keys[k]);
                json_decref(conf);
                json_decref(pol);
                return mg_cfg_fail(c, p, "%s", e2.msg);
            }
            const char *base = strrchr(full, '/');
            char pname[256];
            snprintf(pname, sizeof(pname), "%s", base ? base + 1 : full);
            char *dot = strstr(pname, ".lua");
            if (dot != NULL) {
                *dot = '\0';
            }
            e = json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", pname, "origin", "file", "path", full,
                          "source", src, "conf", conf);
            free(src);
        } else {
            e = json_pack("{s:s,s:s,s:o}", "name", given != NULL ? given : name, "origin",
                          "builtin", "conf", conf);
        }
        json_object_set_new(pol, kinds[k], e);
    }
    json_object_set_new(root, "__moongate_policies", pol);
    cfg->policies = pol;
    return MG_OK;
}

/* root["__moongate_cost_map"] (sent by the master) -> cfg->costmap; else the built-in map */
static int
mg_cfg_costmap(mg_cfg_ctx_t *c, mg_config_t *cfg)
{
    json_t *node = json_object_get(cfg->root, "__moongate_cost_map");
    json_t *text = json_object_get(node, "text");
    if (node == NULL || json_is_null(node) || text == NULL) {
        return mg_costmap_default(&cfg->costmap, c->err);
    }
    const char *src = json_string_value(json_object_get(node, "source"));
    if (!json_is_string(text) ||
        mg_costmap_parse(json_string_value(text), json_string_length(text),
                         src != NULL ? src : "(carried)", &cfg->costmap, c->err) != MG_OK) {
        if (!json_is_string(text)) {
            mg_err_set(c->err, MG_ERR_CONFIG, "__moongate_cost_map.text must be a string");
        }
        return MG_ERROR;
    }
    json_t *at = json_object_get(node, "loaded_ms");
    if (json_is_integer(at)) {
        cfg->costmap->loaded_real_ms = json_integer_value(at); /* when the master read it */
    }
    return MG_OK;
}

static int
mg_cfg_int_setting(mg_cfg_ctx_t *c, json_t *obj, const char *key, const char *path, double scale,
                   int *out)
{
    double d;
    bool present;
    if (mg_cfg_number(c, obj, key, path, &d, &present) != MG_OK) {
        return MG_ERROR;
    }
    if (present) {
        if (d < 0 || d * scale > INT_MAX) {
            char p[256];
            snprintf(p, sizeof(p), "%s.%s", path, key);
            return mg_cfg_fail(c, p, "%s is out of range", key);
        }
        *out = (int) (d * scale);
    }
    return MG_OK;
}

static int
mg_cfg_build(mg_cfg_ctx_t *c, mg_config_t *cfg, const mg_config_opts_t *opts)
{
    json_t *root = cfg->root;
    const char *k;
    json_t *v;

    /* environment_variables first: os.environ/ references may use them */
    json_t *envs;
    if (mg_cfg_section(c, root, "environment_variables", &envs) != MG_OK) {
        return MG_ERROR;
    }
    if (envs != NULL) {
        json_object_foreach(envs, k, v) {
            json_t *r = mg_config_resolve_env(v);
            char buf[64];
            const char *val = NULL;
            if (json_is_string(r)) {
                val = json_string_value(r);
            } else if (json_is_integer(r)) {
                snprintf(buf, sizeof(buf), "%lld", (long long) json_integer_value(r));
                val = buf;
            } else if (json_is_real(r)) {
                mg_fmt_pyfloat(json_real_value(r), buf, sizeof(buf));
                val = buf;
            } else if (json_is_boolean(r)) {
                val = json_is_true(r) ? "True" : "False";
            }
            if (val != NULL) {
                setenv(k, val, 1);
            }
            json_decref(r);
        }
    }

    json_t *gs, *ls, *rs, *ms;
    if (mg_cfg_section(c, root, "general_settings", &gs) != MG_OK ||
        mg_cfg_section(c, root, "litellm_settings", &ls) != MG_OK ||
        mg_cfg_section(c, root, "router_settings", &rs) != MG_OK ||
        mg_cfg_section(c, root, "moongate_settings", &ms) != MG_OK) {
        return MG_ERROR;
    }
    cfg->general_settings = gs;
    cfg->litellm_settings = ls;
    if (mg_cfg_settings_check(c, cfg, gs, ls, rs) != MG_OK) {
        return MG_ERROR;
    }

    /* general_settings */
    const char *s;
    if (gs != NULL) {
        mg_cfg_resolve_obj(gs);
        if (mg_cfg_string(c, gs, "master_key", "general_settings", &s) != MG_OK) {
            return MG_ERROR;
        }
        if (s != NULL && s[0] != '\0') {
            cfg->master_key = mg_xstrdup(s);
        }
        if (mg_cfg_string(c, gs, "database_url", "general_settings", &s) != MG_OK) {
            return MG_ERROR;
        }
        if (s != NULL && s[0] != '\0') {
            cfg->database_url = mg_xstrdup(s);
        }
        if (mg_cfg_bool(c, gs, "store_model_in_db", "general_settings", &cfg->store_model_in_db) != MG_OK) {
            return MG_ERROR;
        }
        double d;
        bool present;
        if (mg_cfg_number(c, gs, "max_request_size_mb", "general_settings", &d, &present) != MG_OK) {
            return MG_ERROR;
        }
        if (present) {
            if (d <= 0 || d > 1024 * 1024) {
                return mg_cfg_fail(c, "general_settings.max_request_size_mb",
                                   "max_request_size_mb must be between 0 and 1048576, got %g", d);
            }
            cfg->max_request_size = (int64_t) (d * 1024 * 1024);
        }
        if (mg_cfg_number(c, gs, "max_response_size_mb", "general_settings", &d, &present) != MG_OK) {
            return MG_ERROR;
        }
        if (present && d > 0) {
            cfg->max_response_size = mg_clamp_i64(d * 1024 * 1024);
        }
    }
    if (cfg->master_key == NULL) {
        const char *e = getenv("LITELLM_MASTER_KEY");
        if (e != NULL && e[0] != '\0') {
            cfg->master_key = mg_xstrdup(e);
        }
    }
    if (cfg->database_url == NULL) {
        const char *e = getenv("DATABASE_URL");
        if (e != NULL && e[0] != '\0') {
            cfg->database_url = mg_xstrdup(e);
        }
    }
    const char *sm = getenv("STORE_MODEL_IN_DB");
    if (sm != NULL && (strcasecmp(sm, "true") == 0 || strcmp(sm, "1") == 0)) {
        cfg->store_model_in_db = true;
    }
    if (cfg->database_url != NULL && strncmp(cfg->database_url, "postgresql://", 13) != 0 &&
        strncmp(cfg->database_url, "postgres://", 11) != 0) {
        return mg_cfg_fail(c, "general_settings.database_url",
                           "database_url must be a postgresql:// or postgres:// URL");
    }

    /* litellm_settings */
    if (ls != NULL) {
        if (mg_cfg_bool(c, ls, "drop_params", "litellm_settings", &cfg->drop_params) != MG_OK) {
            return MG_ERROR;
        }
        double d;
        bool present;
        if (mg_cfg_number(c, ls, "request_timeout", "litellm_settings", &d, &present) != MG_OK) {
            return MG_ERROR;
        }
        if (present && d > 0) {
            cfg->request_timeout = d;
        }
        if (mg_cfg_number(c, ls, "num_retries", "litellm_settings", &d, &present) != MG_OK) {
            return MG_ERROR;
        }
    }
    if (mg_cfg_observability(c, cfg, ls) != MG_OK) {
        return MG_ERROR;
    }
    if (mg_cfg_router(c, cfg, ls, rs) != MG_OK) {
        return MG_ERROR;
    }
    json_t *to = json_object_get(cfg->router, "timeout");
    if (json_is_number(to) && json_number_value(to) > 0) {
        cfg->request_timeout = json_number_value(to);
    }
    json_t *sto = json_object_get(cfg->router, "stream_timeout");
    if (json_is_number(sto) && json_number_value(sto) > 0) {
        cfg->stream_timeout = json_number_value(sto);
    }
    if (mg_cfg_redis(c, cfg) != MG_OK) {
        return MG_ERROR;
    }
    if (mg_cfg_policies(c, cfg) != MG_OK || mg_cfg_costmap(c, cfg) != MG_OK) {
        return MG_ERROR;
    }

    /* moongate_settings */
    if (ms != NULL) {
        const char *mp = "moongate_settings";
        if (mg_cfg_string(c, ms, "state_dir", mp, &s) != MG_OK) {
            return MG_ERROR;
        }
        if (s != NULL) {
            cfg->state_dir = mg_xstrdup(s);
        }
        if (mg_cfg_int_setting(c, ms, "registry_poll_interval_seconds", mp, 1000, &cfg->registry_poll_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "mutation_wait_timeout_seconds", mp, 1000, &cfg->mutation_wait_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "upstream_connect_timeout_seconds", mp, 1000, &cfg->upstream_connect_timeout_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "upstream_idle_timeout_seconds", mp, 1000, &cfg->upstream_idle_timeout_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "upstream_max_idle_connections", mp, 1, &cfg->upstream_max_idle) != MG_OK ||
            mg_cfg_int_setting(c, ms, "keepalive_timeout_seconds", mp, 1000, &cfg->keepalive_timeout_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "drain_timeout_seconds", mp, 1000, &cfg->drain_timeout_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "drain_accept_seconds", mp, 1000, &cfg->drain_accept_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "header_timeout_seconds", mp, 1000, &cfg->header_timeout_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "body_timeout_seconds", mp, 1000, &cfg->body_timeout_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "policy_budget_ms", mp, 1, &cfg->policy_budget_ms) != MG_OK ||
            mg_cfg_int_setting(c, ms, "policy_memory_mb", mp, 1, &cfg->policy_memory_mb) != MG_OK ||
            mg_cfg_int_setting(c, ms, "cost_map_fetch_timeout_seconds", mp, 1000,
                               &cfg->cost_map_fetch_timeout_ms) != MG_OK) {
            return MG_ERROR;
        }
        double h;
        bool present;
        if (mg_cfg_number(c, ms, "cost_map_reload_interval_hours", mp, &h, &present) != MG_OK) {
            return MG_ERROR;
        }
        if (present && (h < 0 || h > 24 * 365)) {
            return mg_cfg_fail(c, "moongate_settings.cost_map_reload_interval_hours",
                               "cost_map_reload_interval_hours must be between 0 (no schedule) "
                               "and 8760, got %g", h);
        }
        cfg->cost_map_reload_hours = present ? h : 0;
        if (cfg->cost_map_fetch_timeout_ms < 100) {
            cfg->cost_map_fetch_timeout_ms = 100;
        }
        if (cfg->registry_poll_ms < 50) {
            cfg->registry_poll_ms = 50;
        }
    }
    if (opts != NULL && opts->state_dir != NULL) {
        free(cfg->state_dir);
        cfg->state_dir = mg_xstrdup(opts->state_dir);
    }
    /* LiteLLM's CLI/env settings: the environment reaches every process and every reload */
    const char *ka = getenv("KEEPALIVE_TIMEOUT");
    if (ka != NULL && atof(ka) > 0) {
        cfg->keepalive_timeout_ms = (int) (atof(ka) * 1000);
    }
    const char *lc = getenv("LIMIT_CONCURRENCY");
    if (lc != NULL && lc[0] != '\0') {
        char *end;
        long n = strtol(lc, &end, 10);
        if (*end != '\0' || n < 1 || n > 10000000) {
            return mg_cfg_fail(c, "LIMIT_CONCURRENCY", "--limit_concurrency must be a positive "
                                                       "integer, got \"%s\"", lc);
        }
        cfg->limit_concurrency = (int) n;
    }

    /* credentials: name -> values merged into deployments that reference them */
    json_t *creds = json_object_get(root, "credential_list");
    json_t *cred_map = json_object();
    if (creds != NULL && !json_is_null(creds)) {
        if (!json_is_array(creds)) {
            json_decref(cred_map);
            return mg_cfg_fail(c, "credential_list", "credential_list must be a list");
        }
        size_t i;
        json_t *cr;
        json_array_foreach(creds, i, cr) {
            char p[64];
            snprintf(p, sizeof(p), "credential_list[%zu]", i);
            const char *name = json_string_value(json_object_get(cr, "credential_name"));
            json_t *vals = json_object_get(cr, "credential_values");
            if (name == NULL || !json_is_object(vals)) {
                json_decref(cred_map);
                return mg_cfg_fail(c, p, "credential_list entries need credential_name and "
                                         "credential_values (a mapping)");
            }
            mg_cfg_resolve_obj(vals);
            /* every credential value may end up in a head, used or not */
            const char *vk;
            json_t *vv;
            json_object_foreach(vals, vk, vv) {
                char vp[256];
                snprintf(vp, sizeof(vp), "%s.credential_values.%s", p, vk);
                if (mg_cfg_header_safe(c, vp, vk, vv) != MG_OK) {
                    json_decref(cred_map);
                    return MG_ERROR;
                }
            }
            json_object_set(cred_map, name, vals);
        }
    }

    /* model_list */
    json_t *ml = json_object_get(root, "model_list");
    cfg->models = json_array();
    if (ml != NULL && !json_is_null(ml)) {
        if (!json_is_array(ml)) {
            json_decref(cred_map);
            return mg_cfg_fail(c, "model_list", "model_list must be a list, got %s",
                               mg_cfg_type_name(ml));
        }
        size_t i;
        json_t *entry;
        json_array_foreach(ml, i, entry) {
            char p[64];
            snprintf(p, sizeof(p), "model_list[%zu]", i);
            /* a credential's values join the deployment's before it is checked, so they pass
             * the same checks (header-safe fields, api_base) as values written inline */
            json_t *merged = NULL;
            json_t *lp0 = json_object_get(entry, "litellm_params");
            const char *cn = json_string_value(json_object_get(lp0, "litellm_credential_name"));
            if (cn != NULL) {
                json_t *vals = json_object_get(cred_map, cn);
                if (vals == NULL) {
                    char pp[128];
                    snprintf(pp, sizeof(pp), "%s.litellm_params.litellm_credential_name", p);
                    int rc = mg_cfg_fail(c, pp, "credential \"%s\" is not in credential_list", cn);
                    json_decref(cred_map);
                    return rc;
                }
                merged = json_deep_copy(entry);
                json_t *mlp = json_object_get(merged, "litellm_params");
                const char *ck;
                json_t *cv;
                json_object_foreach(vals, ck, cv) {
                    if (json_object_get(mlp, ck) == NULL) {
                        json_object_set(mlp, ck, cv);
                    }
                }
            }
            json_t *norm = NULL;
            int mrc = mg_cfg_model(c, merged != NULL ? merged : entry, p, &norm);
            json_decref(merged);
            if (mrc != MG_OK) {
                json_decref(cred_map);
                return MG_ERROR;
            }
            json_t *lp = json_object_get(norm, "litellm_params");
            /* organization: [a, b] -> one deployment per organization */
            json_t *org = json_object_get(lp, "organization");
            if (json_is_array(org)) {
                size_t j;
                json_t *o;
                json_array_foreach(org, j, o) {
                    if (!json_is_string(o)) {
                        json_decref(norm);
                        json_decref(cred_map);
                        char pp[128];
                        snprintf(pp, sizeof(pp), "%s.litellm_params.organization", p);
                        return mg_cfg_fail(c, pp, "organization list entries must be strings");
                    }
                    json_t *copy = json_deep_copy(norm);
                    json_object_set(json_object_get(copy, "litellm_params"), "organization", o);
                    json_array_append_new(cfg->models, copy);
                }
                json_decref(norm);
            } else {
                json_array_append_new(cfg->models, norm);
            }
        }
    }
    json_decref(cred_map);
    cfg->nmodels = json_array_size(cfg->models);
    return MG_OK;
}

static mg_config_t *
mg_config_new(const char *path)
{
    mg_config_t *cfg = mg_xcalloc(1, sizeof(*cfg));
    cfg->refs = 1;
    cfg->path = mg_xstrdup(path != NULL ? path : "");
    cfg->max_request_size = 100LL * 1024 * 1024;
    cfg->max_response_size = 256LL * 1024 * 1024;
    cfg->request_timeout = 6000;
    cfg->registry_poll_ms = 1000;
    cfg->mutation_wait_ms = 10000;
    cfg->upstream_connect_timeout_ms = 10000;
    cfg->upstream_idle_timeout_ms = 60000;
    cfg->upstream_max_idle = 256;
    cfg->keepalive_timeout_ms = 60000;
    cfg->drain_timeout_ms = 30000;
    cfg->drain_accept_ms = 1000;
    cfg->header_timeout_ms = 60000;
    cfg->body_timeout_ms = 60000;
    cfg->policy_budget_ms = 5;
    cfg->policy_memory_mb = 64;
    cfg->cost_map_fetch_timeout_ms = 10000;
    cfg->redis_port = 6379;
    return cfg;
}

static void
mg_config_hash(mg_config_t *cfg)
{
    char *dump = json_dumps(cfg->root, JSON_SORT_KEYS | JSON_COMPACT);
    mg_sha256_hex(dump, strlen(dump), cfg->hash);
    free(dump);
}

int
mg_config_from_json(const char *path, json_t *root, const mg_config_opts_t *opts, mg_config_t **out,
                    mg_err_t *err)
{
    mg_config_t *cfg = mg_config_new(path);
    cfg->root = json_deep_copy(root);
    mg_cfg_ctx_t c = {NULL, path, err, true, 0};
    if (mg_cfg_build(&c, cfg, opts) != MG_OK) {
        mg_config_unref(cfg);
        return MG_ERROR;
    }
    mg_config_hash(cfg);
    *out = cfg;
    return MG_OK;
}

int
mg_config_with_costmap(const mg_config_t *cfg, json_t *node, mg_config_t **out, mg_err_t *err)
{
    json_t *root = json_copy(cfg->root); /* shallow: mg_config_from_json copies it deeply */
    if (node != NULL) {
        json_object_set(root, "__moongate_cost_map", node);
    } else {
        json_object_del(root, "__moongate_cost_map");
    }
    mg_config_opts_t opts = {cfg->state_dir, true};
    int rc = mg_config_from_json(cfg->path, root, &opts, out, err);
    json_decref(root);
    if (rc == MG_OK) {
        (*out)->nwarnings = cfg->nwarnings;
    }
    return rc;
}

json_t *
mg_config_costmap_node(const mg_config_t *cfg)
{
    json_t *n = json_object_get(cfg->root, "__moongate_cost_map");
    return json_is_object(n) && json_is_string(json_object_get(n, "text")) ? n : NULL;
}

static int mg_config_load_impl(const char *path, const char *text, size_t len,
                               const mg_config_opts_t *opts, mg_config_t **out, mg_err_t *err);

int
mg_config_load(const char *path, const mg_config_opts_t *opts, mg_config_t **out, mg_err_t *err)
{
    return mg_config_load_impl(path, NULL, 0, opts, out, err);
}

int
mg_config_load_text(const char *text, size_t len, const char *name, const mg_config_opts_t *opts,
                    mg_config_t **out, mg_err_t *err)
{
    return mg_config_load_impl(name, text, len, opts, out, err);
}

static int
mg_config_load_impl(const char *path, const char *text, size_t len, const mg_config_opts_t *opts,
                    mg_config_t **out, mg_err_t *err)
{
    mg_config_t *cfg = mg_config_new(path);
    mg_marks_t marks;
    mg_marks_init(&marks);
    mg_cfg_ctx_t c = {&marks, path, err, opts != NULL && opts->quiet, 0};
    if (text == NULL && (path == NULL || path[0] == '\0')) {
        cfg->root = json_object();
    } else {
        json_t *root = NULL;
        int lrc = text != NULL ? mg_yaml_parse(text, len, path ? path : "<config>", &marks, &root, err)
                               : mg_yaml_load_file(path, &marks, &root, err);
        if (lrc != MG_OK) {
            goto fail;
        }
        if (json_is_null(root)) {
            json_decref(root);
            mg_err_set(err, MG_ERR_CONFIG, "%s: the config file is empty (expected a mapping with "
                                           "model_list, router_settings, ...)", path);
            goto fail;
        }
        if (!json_is_object(root)) {
            json_decref(root);
            mg_err_set(err, MG_ERR_CONFIG, "%s:1:1: the config file must be a mapping (model_list, "
                                           "router_settings, ...)", path);
            goto fail;
        }
        cfg->root = root;
        if (mg_cfg_includes(&c, path, root, &marks, 0) != MG_OK) {
            goto fail;
        }
    }
    if (mg_cfg_build(&c, cfg, opts) != MG_OK) {
        goto fail;
    }
    cfg->nwarnings = c.warnings;
    mg_config_hash(cfg);
    mg_marks_free(&marks);
    *out = cfg;
    return MG_OK;
fail:
    mg_marks_free(&marks);
    mg_config_unref(cfg);
    return MG_ERROR;
}

mg_config_t *
mg_config_ref(mg_config_t *c)
{
    c->refs++;
    return c;
}

void
mg_config_unref(mg_config_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->refs <= 0) {
        mg_log_write(MG_LOG_ERROR, NULL, "mg_config_unref() underflow, aborting");
        abort();
    }
    if (--c->refs > 0) {
        return;
    }
    free(c->path);
    json_decref(c->root);
    json_decref(c->models);
    json_decref(c->router);
    json_decref(c->unimplemented);
    free(c->master_key);
    free(c->latency_buckets);
    free(c->database_url);
    free(c->redis_host);
    free(c->redis_password);
    free(c->redis_username);
    free(c->state_dir);
    mg_costmap_unref(c->costmap);
    free(c);
}

json_t *
mg_config_router_get(const mg_config_t *c, const char *key)
{
    json_t *v = json_object_get(c->router, key);
    return json_is_null(v) ? NULL : v;
}
