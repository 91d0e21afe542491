/*
 * mg_registry.c -- building, querying and freeing registry snapshots.
 */
#include "mg_registry.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_otel.h"
#include "../base/mg_scrub.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- providers known by name (LiteLLM's prefixes) ---- */

static const char *const mg_registry_providers[] = {
    "openai", "azure", "azure_ai", "anthropic", "hosted_vllm", "vllm", "openrouter", "groq",
    "deepseek", "mistral", "together_ai", "fireworks_ai", "xai", "lm_studio", "ollama",
    "ollama_chat", "gemini", "vertex_ai", "bedrock", "cohere", "cohere_chat", "huggingface",
    "text-completion-openai", "perplexity", "deepinfra", "anyscale", "cerebras", "sambanova",
    "nvidia_nim", "databricks", "watsonx", "replicate", "sagemaker", "cloudflare", "voyage",
    "jina_ai", "friendliai", "github", "litellm_proxy", "custom_openai", "openai_like",
    "dashscope", "moonshot", "novita", "nebius", "lambda_ai", "hyperbolic", "featherless_ai",
    "llamafile", "infinity", "triton", "predibase", "baseten", "ai21", "nlp_cloud", "aleph_alpha",
    "petals", "palm", "clarifai", "empower", "codestral", "text-completion-codestral", NULL,
};

static bool
mg_registry_known_provider(const char *p, size_t n)
{
    for (const char *const *k = mg_registry_providers; *k; k++) {
        if (strlen(*k) == n && memcmp(*k, p, n) == 0) {
            return true;
        }
    }
    return false;
}

/* Provider of a bare model name, as LiteLLM infers it from its model list. */
static const char *
mg_registry_infer_provider(const char *m)
{
    static const struct {
        const char *prefix;
        const char *provider;
    } rules[] = {
        {"gpt-", "openai"}, {"o1", "openai"}, {"o3", "openai"}, {"o4", "openai"},
        {"chatgpt-", "openai"}, {"text-embedding-", "openai"}, {"davinci", "openai"},
        {"babbage", "openai"}, {"dall-e", "openai"}, {"whisper", "openai"}, {"tts-", "openai"},
        {"omni-moderation", "openai"}, {"text-moderation", "openai"}, {"ft:gpt", "openai"},
        {"gpt-3.5-turbo-instruct", "text-completion-openai"},
        {"claude", "anthropic"}, {"gemini", "gemini"}, {"command", "cohere_chat"},
        {"mistral-", "mistral"}, {"codestral", "mistral"}, {"deepseek-", "deepseek"},
        {"grok-", "xai"},
    };
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        size_t l = strlen(rules[i].prefix);
        if (strncmp(m, rules[i].prefix, l) == 0 && l > best_len) {
            best = rules[i].provider;
            best_len = l;
        }
    }
    return best;
}

/* A cost map's litellm_provider as the provider a deployment would name (its sets are
 * finer: "vertex_ai-anthropic_models", "bedrock_converse", "azure_text" ...). */
static const char *
mg_registry_map_provider(const char *p)
{
    if (p == NULL || p[0] == '\0') {
        return NULL;
    }
    if (mg_registry_known_provider(p, strlen(p))) {
        return p;
    }
    static const char *const families[] = {"vertex_ai", "bedrock", "azure", "fireworks_ai",
                                           "sambanova", "nebius", "ovhcloud", NULL};
    for (const char *const *f = families; *f != NULL; f++) {
        if (strncmp(p, *f, strlen(*f)) == 0) {
            return *f;
        }
    }
    return p;
}

const char *
mg_registry_bare_provider(const mg_snapshot_t *s, const char *name)
{
    const char *slash = strchr(name, '/');
    if (slash != NULL && mg_registry_known_provider(name, (size_t) (slash - name))) {
        return NULL;
    }
    if (s != NULL && s->costmap != NULL) {
        /* get_llm_provider: "model in litellm.<provider>_models", sets built from the map */
        const mg_costmap_entry_t *e = mg_costmap_get(s->costmap, name);
        const char *p = e != NULL ? mg_registry_map_provider(e->provider) : NULL;
        if (p != NULL) {
            return p;
        }
    }
    return mg_registry_infer_provider(name);
}

void
mg_registry_split_model(const char *litellm_model, const char *custom_provider, char **provider,
                        char **model)
{
    const char *slash = strchr(litellm_model, '/');
    if (custom_provider != NULL && custom_provider[0] != '\0') {
        *provider = mg_xstrdup(custom_provider);
        size_t cl = strlen(custom_provider);
        if (slash != NULL && (size_t) (slash - litellm_model) == cl &&
            strncmp(litellm_model, custom_provider, cl) == 0) {
            *model = mg_xstrdup(slash + 1);
        } else {
            *model = mg_xstrdup(litellm_model);
        }
        return;
    }
    if (slash != NULL && mg_registry_known_provider(litellm_model, (size_t) (slash - litellm_model))) {
        *provider = mg_xstrndup(litellm_model, (size_t) (slash - litellm_model));
        *model = mg_xstrdup(slash + 1);
        return;
    }
    const char *p = mg_registry_infer_provider(litellm_model);
    *provider = mg_xstrdup(p != NULL ? p : "");
    *model = mg_xstrdup(litellm_model);
}

/* ---- LiteLLM-compatible deployment id ---- */

static void mg_registry_pyrepr(mg_buf_t *b, json_t *v, bool top);

/*
 * Python's json.dumps(v) with its defaults: ", " and ": " separators, floats as
 * repr(), ensure_ascii (\uXXXX escapes, surrogate pairs above the BMP).  With
 * s != NULL, dumps that string instead of v.
 */
static void
mg_registry_pyjson(mg_buf_t *b, const char *s, size_t n, json_t *v)
{
    char num[64];
    if (s == NULL && json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    }
    if (s != NULL) {
        static const char hex[] = "0123456789abcdef";
        mg_buf_append(b, "\"", 1);
        for (size_t i = 0; i < n;) {
            unsigned char c = (unsigned char) s[i];
            if (c < 0x80) {
                if (c == '"' || c == '\\') {
                    char e[2] = {'\\', (char) c};
                    mg_buf_append(b, e, 2);
                } else if (c == '\n') {
                    mg_buf_append_str(b, "\\n");
                } else if (c == '\r') {
                    mg_buf_append_str(b, "\\r");
                } else if (c == '\t') {
                    mg_buf_append_str(b, "\\t");
                } else if (c == '\b') {
                    mg_buf_append_str(b, "\\b");
                } else if (c == '\f') {
                    mg_buf_append_str(b, "\\f");
                } else if (c < 0x20) {
                    char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                    mg_buf_append(b, e, 6);
                } else {
                    mg_buf_append(b, (const char *) &c, 1);
                }
                i++;
                continue;
            }
            /* decode one UTF-8 sequence (jansson strings are valid UTF-8) */
            unsigned cp;
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            cp = c & (0x3F >> (len - 1));
            for (size_t k = 1; k < len && i + k < n; k++) {
                cp = (cp << 6) | ((unsigned char) s[i + k] & 0x3F);
            }
            i += len;
            unsigned units[2];
            int nu = 0;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[nu++] = 0xD800 | (cp >> 10);
                units[nu++] = 0xDC00 | (cp & 0x3FF);
            } else {
                units[nu++] = cp;
            }
            for (int u = 0; u < nu; u++) {
                mg_buf_printf(b, "\\u%04x", units[u]);
            }
        }
        mg_buf_append(b, "\"", 1);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        mg_buf_printf(b, "%lld", (long long) json_integer_value(v));
        break;
    case JSON_REAL:
        mg_fmt_pyfloat(json_real_value(v), num, sizeof(num));
        mg_buf_append_str(b, strcmp(num, "nan") == 0 ? "NaN" : strcmp(num, "inf") == 0 ? "Infinity"
                                 : strcmp(num, "-inf") == 0 ? "-Infinity" : num);
        break;
    case JSON_TRUE:
        mg_buf_append_str(b, "true");
        break;
    case JSON_FALSE:
        mg_buf_append_str(b, "false");
        break;
    case JSON_NULL:
        mg_buf_append_str(b, "null");
        break;
    case JSON_ARRAY: {
        mg_buf_append(b, "[", 1);
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) {
            if (i > 0) {
                mg_buf_append(b, ", ", 2);
            }
            mg_registry_pyjson(b, NULL, 0, it);
        }
        mg_buf_append(b, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        mg_buf_append(b, "{", 1);
        const char *k;
        json_t *it;
        bool first = true;
        json_object_foreach(v, k, it) {
            if (!first) {
                mg_buf_append(b, ", ", 2);
            }
            first = false;
            mg_registry_pyjson(b, k, strlen(k), NULL);
            mg_buf_append(b, ": ", 2);
            mg_registry_pyjson(b, NULL, 0, it);
        }
        mg_buf_append(b, "}", 1);
        break;
    }
    default:
        break;
    }
}

static void
mg_registry_pystr_repr(mg_buf_t *b, const char *s)
{
    /* Python repr of a str: single quotes unless it contains ' and no " */
    bool sq = strchr(s, '\'') != NULL && strchr(s, '"') == NULL;
    char q = sq ? '"' : '\'';
    mg_buf_append(b, &q, 1);
    for (const char *p = s; *p; p++) {
        if (*p == q || *p == '\\') {
            mg_buf_append(b, "\\", 1);
        }
        if (*p == '\n') {
            mg_buf_append_str(b, "\\n");
        } else {
            mg_buf_append(b, p, 1);
        }
    }
    mg_buf_append(b, &q, 1);
}

static void
mg_registry_pyrepr(mg_buf_t *b, json_t *v, bool top)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (top) {
            mg_buf_append(b, json_string_value(v), json_string_length(v));
        } else {
            mg_registry_pystr_repr(b, json_string_value(v));
        }
        break;
    case JSON_INTEGER:
        mg_buf_printf(b, "%lld", (long long) json_integer_value(v));
        break;
    case JSON_REAL:
        mg_fmt_pyfloat(json_real_value(v), num, sizeof(num));
        mg_buf_append_str(b, num);
        break;
    case JSON_TRUE:
        mg_buf_append_str(b, "True");
        break;
    case JSON_FALSE:
        mg_buf_append_str(b, "False");
        break;
    case JSON_NULL:
        mg_buf_append_str(b, "None");
        break;
    case JSON_ARRAY: {
        mg_buf_append(b, "[", 1);
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) {
            if (i > 0) {
                mg_buf_append(b, ", ", 2);
            }
            mg_registry_pyrepr(b, it, false);
        }
        mg_buf_append(b, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        /* top level: json.dumps (double quotes, ", " and ": "); nested: repr */
        mg_buf_append(b, "{", 1);
        const char *k;
        json_t *it;
        bool first = true;
        json_object_foreach(v, k, it) {
            if (!first) {
                mg_buf_append(b, ", ", 2);
            }
            first = false;
            if (top) {
                mg_registry_pyjson(b, k, strlen(k), NULL);
                mg_buf_append(b, ": ", 2);
                mg_registry_pyjson(b, NULL, 0, it);
            } else {
                mg_registry_pystr_repr(b, k);
                mg_buf_append(b, ": ", 2);
                mg_registry_pyrepr(b, it, false);
            }
        }
        mg_buf_append(b, "}", 1);
        break;
    }
    }
}

void
mg_registry_model_id(const char *model_name, json_t *litellm_params, char out[65])
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append_str(&b, model_name);
    const char *k;
    json_t *v;
    json_object_foreach(litellm_params, k, v) {
        mg_buf_append_str(&b, k);
        mg_registry_pyrepr(&b, v, true);
    }
    mg_sha256_hex(b.data ? mg_buf_head(&b) : "", mg_buf_len(&b), out);
    mg_buf_free(&b);
}

/* ---- building ---- */

static const char *const mg_registry_reserved_params[] = {
    /* litellm_params that configure the deployment rather than the request */
    "model", "api_base", "api_key", "api_version", "organization", "custom_llm_provider",
    "rpm", "tpm", "weight", "order", "timeout", "stream_timeout", "request_timeout",
    "max_retries", "num_retries", "cooldown_time", "extra_headers", "headers", "drop_params",
    "additional_drop_params", "input_cost_per_token", "output_cost_per_token",
    "input_cost_per_second", "output_cost_per_second", "region_name", "aws_region_name",
    "vertex_project", "vertex_location", "vertex_credentials", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "max_parallel_requests", "tags",
    "use_in_pass_through", "litellm_credential_name", "merge_reasoning_content_in_choices",
    "mock_response", "azure_ad_token", "client_id", "client_secret", "tenant_id",
    "configurable_clientside_auth_params", "litellm_trace_id", "base_model", "model_info",
    "use_litellm_proxy", "supports_system_message", "allowed_fails", "access_groups",
    "forward_client_headers",
    /* AWS (bedrock/): credentials, endpoint and the model id the URL names */
    "aws_bedrock_runtime_endpoint", "aws_profile_name", "aws_role_name", "aws_session_name",
    "aws_web_identity_token", "aws_sts_endpoint", "aws_external_id", "aws_bearer_token",
    "model_id", NULL,
};

static bool mg_registry_in(const char *k, const char *const *list);

/* litellm_params that configure the deployment rather than the request: the list, and
 * every price (LiteLLM's custom pricing fields: "*_cost_per_*", "*_token_cost*") */
static bool
mg_registry_reserved(const char *k)
{
    return mg_registry_in(k, mg_registry_reserved_params) || strstr(k, "cost_per_") != NULL ||
           strstr(k, "_token_cost") != NULL || strcmp(k, "max_input_tokens") == 0;
}

static bool
mg_registry_in(const char *k, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(*list, k) == 0) {
            return true;
        }
    }
    return false;
}

static double
mg_registry_num(json_t *lp, json_t *mi, const char *key, double dflt)
{
    json_t *v = json_object_get(lp, key);
    if (!json_is_number(v) && mi != NULL) {
        v = json_object_get(mi, key);
    }
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static pcre2_code *
mg_registry_compile_pattern(const char *name, size_t *len, int *stars, mg_err_t *err)
{
    mg_buf_t re = MG_BUF_INIT;
    *stars = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '*') {
            mg_buf_append_str(&re, "(.*)");
            (*stars)++;
        } else if (strchr("\\^$.|?+()[]{}-#&~ ", *p) != NULL) {
            mg_buf_append(&re, "\\", 1);
            mg_buf_append(&re, p, 1);
        } else {
            mg_buf_append(&re, p, 1);
        }
    }
    *len = strlen(name);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR) mg_buf_cstr(&re), mg_buf_len(&re),
                                     PCRE2_ANCHORED | PCRE2_DOTALL, &ec, &eo, NULL);
    mg_buf_free(&re);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        mg_err_set(err, MG_ERR_CONFIG, "model_name \"%s\": cannot compile wildcard pattern: %s",
                   name, (const char *) msg);
        return NULL;
    }
    (void) pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return code;
}

static void
mg_registry_cred_hash(mg_deployment_t *d)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_printf(&b, "%s|%s|%s|%s|%s|", d->provider, d->api_base ? d->api_base : "",
                  d->api_key ? d->api_key : "", d->api_version ? d->api_version : "",
                  d->organization ? d->organization : "");
    if (d->extra_headers != NULL) {
        char *h = json_dumps(d->extra_headers, JSON_SORT_KEYS | JSON_COMPACT);
        mg_buf_append_str(&b, h);
        free(h);
    }
    mg_sha256_hex(mg_buf_head(&b), mg_buf_len(&b), d->cred_hash);
    mg_buf_free(&b);
}

static int
mg_registry_fill(mg_deployment_t *d, json_t *entry, mg_dep_source_t source, const char *store_id,
                 mg_err_t *err)
{
    const char *name = json_string_value(json_object_get(entry, "model_name"));
    json_t *lp = json_object_get(entry, "litellm_params");
    json_t *mi = json_object_get(entry, "model_info");
    d->model_name = mg_xstrdup(name);
    d->litellm_params = json_deep_copy(lp);
    d->model_info = json_is_object(mi) ? json_deep_copy(mi) : json_object();
    lp = d->litellm_params;
    mi = d->model_info;
    const char *id = store_id;
    if (id == NULL) {
        id = json_string_value(json_object_get(mi, "id"));
    }
    char gen[65];
    if (id == NULL || id[0] == '\0') {
        mg_registry_model_id(name, lp, gen);
        id = gen;
    }
    d->id = mg_xstrdup(id);
    json_object_set_new(mi, "id", json_string(d->id));
    json_object_set_new(mi, "db_model", json_boolean(source == MG_DEP_STORE));
    d->litellm_model = mg_xstrdup(json_string_value(json_object_get(lp, "model")));
    mg_registry_split_model(d->litellm_model,
                            json_string_value(json_object_get(lp, "custom_llm_provider")),
                            &d->provider, &d->upstream_model);
    d->api_base = json_string_value(json_object_get(lp, "api_base"));
    d->api_key = json_string_value(json_object_get(lp, "api_key"));
    d->api_version = json_string_value(json_object_get(lp, "api_version"));
    d->organization = json_string_value(json_object_get(lp, "organization"));
    json_t *eh = json_object_get(lp, "extra_headers");
    if (!json_is_object(eh)) {
        eh = json_object_get(lp, "headers");
    }
    d->extra_headers = json_is_object(eh) ? eh : NULL;
    json_t *mr = json_object_get(lp, "mock_response");
    d->mock_response = (mr != NULL && !json_is_null(mr)) ? mr : NULL;
    json_t *adp = json_object_get(lp, "additional_drop_params");
    d->additional_drop_params = json_is_array(adp) ? adp : NULL;
    d->rpm = mg_registry_num(lp, mi, "rpm", -1);
    d->tpm = mg_registry_num(lp, mi, "tpm", -1);
    d->weight = mg_registry_num(lp, NULL, "weight", -1);
    d->order = mg_clamp_int(mg_registry_num(lp, NULL, "order", 0));
    d->timeout = mg_registry_num(lp, NULL, "timeout", 0);
    if (d->timeout <= 0) {
        d->timeout = mg_registry_num(lp, NULL, "request_timeout", 0);
    }
    d->stream_timeout = mg_registry_num(lp, NULL, "stream_timeout", 0);
    d->num_retries = mg_clamp_int(mg_registry_num(lp, NULL, "num_retries", -1));
    d->cooldown_time = mg_registry_num(lp, mi, "cooldown_time", -1);
    json_t *dp = json_object_get(lp, "drop_params");
    d->drop_params = json_is_boolean(dp) ? json_is_true(dp) : -1;
    /* validated at load (mg_config_check_model): a bad price never gets here */
    if (mg_costmap_prices_from_json(lp, mi, &d->prices, err) != MG_OK) {
        return MG_ERROR;
    }
    d->base_model = json_string_value(json_object_get(mi, "base_model"));
    if (d->base_model == NULL || d->base_model[0] == '\0') {
        d->base_model = json_string_value(json_object_get(lp, "base_model"));
    }
    d->input_cost = d->prices.input_cost_per_token;
    d->output_cost = d->prices.output_cost_per_token;
    d->max_input_tokens = mg_clamp_i64(mg_registry_num(mi, lp, "max_input_tokens", 0));
    d->max_parallel_requests = mg_clamp_int(mg_registry_num(lp, NULL, "max_parallel_requests", 0));
    d->source = source;
    d->stats_slot = -1;
    d->defaults = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(lp, k, v) {
        if (!mg_registry_reserved(k) && !json_is_null(v)) {
            json_object_set(d->defaults, k, v);
        }
    }
    d->wildcard = strchr(d->model_name, '*') != NULL;
    if (d->wildcard) {
        size_t plen;
        int stars;
        d->re = mg_registry_compile_pattern(d->model_name, &plen, &stars, err);
        if (d->re == NULL) {
            return MG_ERROR;
        }
    }
    mg_registry_cred_hash(d);
    return MG_OK;
}

static void
mg_registry_free_dep(mg_deployment_t *d)
{
    free(d->id);
    free(d->model_name);
    free(d->litellm_model);
    free(d->provider);
    free(d->upstream_model);
    json_decref(d->litellm_params);
    json_decref(d->model_info);
    json_decref(d->defaults);
    if (d->re != NULL) {
        pcre2_code_free(d->re);
    }
}

static int
mg_registry_wildcard_cmp(const void *a, const void *b)
{
    const mg_group_t *x = *(mg_group_t *const *) a;
    const mg_group_t *y = *(mg_group_t *const *) b;
    /* LiteLLM: longest regex first, then most special characters, then configured order */
    if (x->pattern_len != y->pattern_len) {
        return x->pattern_len > y->pattern_len ? -1 : 1;
    }
    if (x->pattern_stars != y->pattern_stars) {
        return x->pattern_stars > y->pattern_stars ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
mg_registry_warn(mg_snapshot_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mg_registry_warn(mg_snapshot_t *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(s->warnings, json_string(buf));
}

static void mg_registry_free(mg_snapshot_t *s);

/*
 * What the snapshot's cost map says about d: its entry (model_info.base_model names it, as
 * in LiteLLM), its prices where the deployment sets none, its context window where
 * model_info sets none, and its provider when the model is a bare name moongate's rules do
 * not know.  Wildcards look their entry up per request (mg_registry_cost_entry).
 */
static void
mg_registry_cost_facts(mg_snapshot_t *s, mg_deployment_t *d)
{
    if (d->provider[0] == '\0') {
        const mg_costmap_entry_t *be = mg_costmap_get(s->costmap, d->litellm_model);
        const char *bp = be != NULL ? mg_registry_map_provider(be->provider) : NULL;
        if (bp != NULL) {
            free(d->provider);
            d->provider = mg_xstrdup(bp);
            mg_registry_cred_hash(d); /* the provider is part of the fingerprint */
        }
    }
    if (d->wildcard || strchr(d->litellm_model, '*') != NULL) {
        return;
    }
    const mg_costmap_entry_t *e = mg_costmap_lookup(s->costmap, d->provider, d->litellm_model,
                                                    d->base_model);
    d->cost_entry = e;
    if (e == NULL) {
        return;
    }
    if (d->input_cost < 0) {
        d->input_cost = e->input_cost_per_token;
    }
    if (d->output_cost < 0) {
        d->output_cost = e->output_cost_per_token;
    }
    if (d->max_input_tokens <= 0 && e->max_input_tokens > 0) {
        d->max_input_tokens = e->max_input_tokens;
    }
}

const mg_costmap_entry_t *
mg_registry_cost_entry(const mg_snapshot_t *s, const mg_deployment_t *d, const char *model)
{
    if (!d->wildcard && strchr(d->litellm_model, '*') == NULL) {
        return d->cost_entry;
    }
    return model != NULL ? mg_costmap_lookup(s->costmap, d->provider, model, d->base_model) : NULL;
}

int
mg_registry_build(mg_config_t *cfg, json_t *store_models, json_t *store_policies, int64_t version,
                  const mg_registry_hooks_t *hooks, mg_snapshot_t **out, mg_err_t *err)
{
    return mg_registry_build_ex(cfg, store_models, store_policies, NULL, version, hooks, out, err);
}

int
mg_registry_build_ex(mg_config_t *cfg, json_t *store_models, json_t *store_policies,
                     json_t *store_idents, int64_t version, const mg_registry_hooks_t *hooks,
                     mg_snapshot_t **out, mg_err_t *err)
{
    mg_snapshot_t *s = mg_xcalloc(1, sizeof(*s));
    s->refs = 1;
    s->version = version;
    s->created_real_ms = mg_time_real_ms();
    s->created_mono_ms = mg_time_mono_ms();
    s->config = mg_config_ref(cfg);
    s->costmap = mg_costmap_ref(cfg->costmap);
    s->warnings = json_array();
    s->skipped = json_object();
    s->store_policies = store_policies != NULL ? json_incref(store_policies) : NULL;
    s->auth = mg_auth_build(store_idents, s->warnings);
    if (hooks != NULL) {
        s->hooks = *hooks;
    }
    mg_map_init(&s->by_group);
    mg_map_init(&s->by_id);
    mg_map_init(&s->by_litellm_model);
    mg_map_init(&s->aliases);

    size_t ncfg = json_array_size(cfg->models);
    size_t nstore = store_models != NULL ? json_array_size(store_models) : 0;
    s->deps = mg_xcalloc(ncfg + nstore + 1, sizeof(mg_deployment_t));
    size_t n = 0;
    for (size_t i = 0; i < ncfg + nstore; i++) {
        bool from_store = i >= ncfg;
        json_t *entry = from_store ? json_array_get(store_models, i - ncfg)
                                   : json_array_get(cfg->models, i);
        const char *store_id = NULL;
        json_t *norm = NULL;
        if (from_store) {
            store_id = json_string_value(json_object_get(entry, "model_id"));
            const char *le = json_string_value(json_object_get(entry, "__load_error"));
            if (le != NULL) {
                mg_registry_warn(s, "stored model \"%s\" skipped: %s", store_id ? store_id : "?", le);
                const char *nm = json_string_value(json_object_get(entry, "model_name"));
                if (nm != NULL) {
                    json_object_set_new(s->skipped, nm, json_string(le));
                }
                continue;
            }
            mg_err_t e2;
            if (mg_config_check_model(entry, NULL, NULL, NULL, &norm, &e2) != MG_OK) {
                mg_registry_warn(s, "stored model \"%s\" skipped: %s", store_id ? store_id : "?",
                                 e2.msg);
                continue;
            }
            entry = norm;
        }
        mg_deployment_t *d = &s->deps[n];
        if (mg_registry_fill(d, entry, from_store ? MG_DEP_STORE : MG_DEP_CONFIG, store_id, err) != MG_OK) {
            mg_registry_free_dep(d);
            memset(d, 0, sizeof(*d));
            json_decref(norm);
            if (!from_store) {
                s->ndeps = n;
                mg_registry_free(s);
                return MG_ERROR;
            }
            mg_registry_warn(s, "stored model \"%s\" skipped: %s", store_id ? store_id : "?",
                             err != NULL ? err->msg : "");
            continue;
        }
        json_decref(norm);
        /* router_settings.default_litellm_params: defaults of every call, below the
         * deployment's own */
        const char *dk;
        json_t *dv;
        json_object_foreach(mg_config_router_get(cfg, "default_litellm_params"), dk, dv) {
            if (json_object_get(d->litellm_params, dk) == NULL &&
                json_object_get(d->defaults, dk) == NULL && !mg_registry_reserved(dk) &&
                !json_is_null(dv)) {
                json_object_set(d->defaults, dk, dv);
            }
        }
        if (mg_map_get(&s->by_id, d->id, strlen(d->id)) != NULL) {
            mg_registry_warn(s, "deployment id \"%s\" (model_name \"%s\") appears twice; the "
                                "first one is used", d->id, d->model_name);
            mg_registry_free_dep(d);
            memset(d, 0, sizeof(*d));
            continue;
        }
        d->index = n;
        mg_registry_cost_facts(s, d);
        mg_map_put(&s->by_id, d->id, strlen(d->id), d);
        n++;
    }
    s->ndeps = n;

    /* groups in order of first appearance */
    s->groups = mg_xcalloc(n + 1, sizeof(mg_group_t));
    for (size_t i = 0; i < n; i++) {
        mg_deployment_t *d = &s->deps[i];
        mg_group_t *g = mg_map_get(&s->by_group, d->model_name, strlen(d->model_name));
        if (g == NULL) {
            g = &s->groups[s->ngroups++];
            g->name = mg_xstrdup(d->model_name);
            g->wildcard = d->wildcard;
            if (d->wildcard) {
                g->re = d->re;
                /* the keys LiteLLM sorts by, on re.escape(name) with '*' -> "(.*)" */
                g->pattern_len = 0;
                g->pattern_stars = 0;
                for (const char *p = d->model_name; *p; p++) {
                    if (*p == '*') {
                        g->pattern_len += 4;       /* (.*) */
                        g->pattern_stars += 3;     /* ( * ) */
                    } else if (strchr("()[]{}?+-|^$\\.&~# \t\n\r\v\f", *p) != NULL) {
                        g->pattern_len += 2;       /* backslash + char */
                        g->pattern_stars += 1 + (strchr("+?^$|()", *p) != NULL);
                    } else {
                        g->pattern_len += 1;
                    }
                }
                g->seq = s->ngroups;
            }
            mg_map_put(&s->by_group, g->name, strlen(g->name), g);
        }
        g->deps = mg_xrealloc(g->deps, (g->ndeps + 1) * sizeof(mg_deployment_t *));
        g->deps[g->ndeps++] = d;
        if (mg_map_get(&s->by_litellm_model, d->litellm_model, strlen(d->litellm_model)) == NULL) {
            mg_map_put(&s->by_litellm_model, d->litellm_model, strlen(d->litellm_model), d);
        }
    }
    s->wildcards = mg_xcalloc(s->ngroups + 1, sizeof(mg_group_t *));
    for (size_t i = 0; i < s->ngroups; i++) {
        if (s->groups[i].wildcard) {
            s->wildcards[s->nwildcards++] = &s->groups[i];
        }
    }
    qsort(s->wildcards, s->nwildcards, sizeof(mg_group_t *), mg_registry_wildcard_cmp);

    /* litellm_settings.model_alias_map first: model_group_alias wins on a clash */
    json_t *amap = json_object_get(cfg->litellm_settings, "model_alias_map");
    if (json_is_object(amap)) {
        const char *an;
        json_t *av;
        json_object_foreach(amap, an, av) {
            if (json_is_string(av)) {
                free(mg_map_put(&s->aliases, an, strlen(an), mg_xstrdup(json_string_value(av))));
            }
        }
    }
    json_t *alias = mg_config_router_get(cfg, "model_group_alias");
    if (json_is_object(alias)) {
        const char *an;
        json_t *av;
        json_object_foreach(alias, an, av) {
            const char *target = json_is_string(av) ? json_string_value(av)
                                                    : json_string_value(json_object_get(av, "model"));
            if (target != NULL) {
                free(mg_map_put(&s->aliases, an, strlen(an), mg_xstrdup(target)));
            }
        }
    }

    s->scrub = mg_registry_secrets(s);

    if (s->hooks.attach != NULL) {
        for (size_t i = 0; i < s->ndeps; i++) {
            if (s->hooks.attach(s->hooks.ud, s, &s->deps[i], err) != MG_OK) {
                /* detach what was attached so far */
                for (size_t j = 0; j < i; j++) {
                    s->hooks.detach(s->hooks.ud, s, &s->deps[j]);
                }
                s->hooks.attach = NULL;
                s->hooks.detach = NULL;
                mg_registry_free(s);
                return MG_ERROR;
            }
        }
    }
    *out = s;
    return MG_OK;
}

static void mg_registry_secret_values(mg_scrub_builder_t *b, json_t *v, bool add_all);

/* A service-account key named by its file path (vertex_credentials, GOOGLE_APPLICATION_
 * CREDENTIALS): the file's text and its secret fields are secrets too.  Read at most 1 MiB;
 * a value that is not a readable file adds nothing. */
static void
mg_registry_secret_key_file(mg_scrub_builder_t *b, const char *path)
{
    while (*path == ' ' || *path == '\n' || *path == '\t' || *path == '\r') {
        path++;
    }
    if (*path == '\0' || *path == '{') {
        return; /* JSON text, added as it is */
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return;
    }
    char *buf = mg_xmalloc(1024 * 1024 + 1);
    size_t n = fread(buf, 1, 1024 * 1024, f);
    fclose(f);
    buf[n] = '\0';
    mg_scrub_builder_add(b, buf, n);
    json_t *inner = json_loadb(buf, n, 0, NULL);
    if (json_is_object(inner)) {
        mg_registry_secret_values(b, inner, false);
    }
    json_decref(inner);
    memset(buf, 0, n);
    free(buf);
}

/* Every value of v (recursively) under a secret key; add_all: v itself is secret. */
/* Every query value of an endpoint URL: /model/info shows them all redacted, so all are
 * secrets (values shorter than the scrubber's minimum are ignored by it). */
static void
mg_registry_secret_query(mg_scrub_builder_t *b, const char *url)
{
    const char *q = strchr(url, '?');
    if (q == NULL) {
        return;
    }
    const char *p = q + 1;
    while (*p != '\0' && *p != '#') {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        if (eq != NULL && (size_t) (p + n - eq - 1) > 0) {
            mg_scrub_builder_add(b, eq + 1, (size_t) (p + n - eq - 1));
        }
        p += n;
        if (*p == '&') {
            p++;
        }
    }
}

static void
mg_registry_secret_values(mg_scrub_builder_t *b, json_t *v, bool add_all)
{
    if (json_is_string(v)) {
        if (add_all) {
            mg_scrub_builder_add(b, json_string_value(v), json_string_length(v));
            /* a secret that is itself JSON (vertex_credentials as text): its fields too */
            json_t *inner = json_loads(json_string_value(v), 0, NULL);
            if (json_is_object(inner)) {
                mg_registry_secret_values(b, inner, false);
            }
            json_decref(inner);
        }
        return;
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (json_is_string(x) && (strcmp(k, "api_base") == 0 || strcmp(k, "base_url") == 0)) {
            mg_registry_secret_query(b, json_string_value(x)); /* ?key=... is shown redacted */
        }
        bool sec = add_all || mg_registry_secret_key(k) || strcasecmp(k, "authorization") == 0 ||
                   strcasecmp(k, "x-api-key") == 0 || strcasecmp(k, "api-key") == 0;
        if (json_is_string(x) && (strcmp(k, "vertex_credentials") == 0 ||
                                  strcmp(k, "vertex_ai_credentials") == 0)) {
            mg_registry_secret_key_file(b, json_string_value(x));
        }
        if (json_is_object(x) || json_is_array(x) || json_is_string(x)) {
            mg_registry_secret_values(b, x, sec);
        }
    }
    size_t i;
    json_array_foreach(v, i, x) {
        mg_registry_secret_values(b, x, add_all);
    }
}

/* Environment variables that hold credentials, by LiteLLM's naming. */
static bool
mg_registry_secret_env(const char *name, size_t n)
{
    static const char *const suffix[] = {"_API_KEY", "_AUTH_TOKEN", "_SECRET_ACCESS_KEY",
                                         "_SESSION_TOKEN", "_CLIENT_SECRET", "_PASSWORD",
                                         "_AD_TOKEN", "_BEARER_TOKEN", "_SALT_KEY", "_MASTER_KEY",
                                         "_ACCESS_KEY_ID", "_CREDENTIALS",
                                         "_BEARER_TOKEN_BEDROCK", NULL};
    for (const char *const *s = suffix; *s; s++) {
        size_t l = strlen(*s);
        if (n > l && strncmp(name + n - l, *s, l) == 0) {
            return true;
        }
    }
    return false;
}

extern char **environ;

/* Whether the "NAME=value" entry e is the variable name. */
static bool
mg_registry_env_is(const char *e, const char *name)
{
    size_t n = strlen(name);
    return strncmp(e, name, n) == 0 && e[n] == '=';
}

static void
mg_registry_secrets_config(mg_scrub_builder_t *bp, const mg_config_t *c)
{
    mg_scrub_builder_t b = *bp;
    size_t i;
    json_t *m;
    json_array_foreach(c->models, i, m) {
        mg_registry_secret_values(&b, json_object_get(m, "litellm_params"), false);
    }
    if (c->master_key != NULL) {
        mg_scrub_builder_add_str(&b, c->master_key);
    }
    if (c->redis_password != NULL) {
        mg_scrub_builder_add_str(&b, c->redis_password);
    }
    if (c->database_url != NULL) {
        mg_scrub_builder_add_url_password(&b, c->database_url);
    }
    const char *ru = json_string_value(mg_config_router_get(c, "redis_url"));
    if (ru != NULL) {
        mg_scrub_builder_add_url_password(&b, ru);
    }
    mg_registry_secret_values(&b, json_object_get(c->root, "credential_list"), false);
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq != NULL && mg_registry_secret_env(*e, (size_t) (eq - *e))) {
            mg_scrub_builder_add_str(&b, eq + 1);
        }
        if (eq != NULL && (strncmp(*e, "GOOGLE_APPLICATION_CREDENTIALS=", 31) == 0 ||
                           strncmp(*e, "VERTEXAI_CREDENTIALS=", 21) == 0 ||
                           strncmp(*e, "VERTEX_CREDENTIALS=", 19) == 0)) {
            mg_registry_secret_key_file(&b, eq + 1);
        }
        if (eq != NULL && (strncmp(*e, "DATABASE_URL=", 13) == 0 ||
                           strncmp(*e, "REDIS_URL=", 10) == 0)) {
            mg_scrub_builder_add_url_password(&b, eq + 1);
        }
        if (eq != NULL && strncmp(*e, "OTEL_", 5) == 0) {
            /* the OTLP exporter's headers carry the tracing backend's key */
            if (mg_registry_env_is(*e, "OTEL_HEADERS") ||
                mg_registry_env_is(*e, "OTEL_EXPORTER_OTLP_HEADERS") ||
                mg_registry_env_is(*e, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")) {
                mg_otel_headers_secrets(eq + 1, &b);
            } else if (strstr(*e, "ENDPOINT=") != NULL) {
                mg_scrub_builder_add_url_password(&b, eq + 1);
            }
        }
    }
    *bp = b;
}

mg_scrub_set_t *
mg_registry_config_secrets(const mg_config_t *c)
{
    mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
    mg_registry_secrets_config(&b, c);
    return mg_scrub_builder_finish(&b);
}

mg_scrub_set_t *
mg_registry_secrets(const mg_snapshot_t *s)
{
    mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
    for (size_t i = 0; i < s->ndeps; i++) {
        mg_registry_secret_values(&b, s->deps[i].litellm_params, false);
    }
    mg_registry_secrets_config(&b, s->config);
    return mg_scrub_builder_finish(&b);
}

static void
mg_registry_free(mg_snapshot_t *s)
{
    if (s->ext_free != NULL) {
        s->ext_free(s->ext);
    }
    for (size_t i = 0; i < s->ndeps; i++) {
        if (s->hooks.detach != NULL) {
            s->hooks.detach(s->hooks.ud, s, &s->deps[i]);
        }
        mg_registry_free_dep(&s->deps[i]);
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        free(s->groups[i].name);
        free(s->groups[i].deps);
    }
    for (size_t i = 0; i < s->aliases.cap; i++) {
        if (s->aliases.slots[i].key != NULL) {
            free(s->aliases.slots[i].val);
        }
    }
    mg_map_free(&s->aliases);
    mg_map_free(&s->by_group);
    mg_map_free(&s->by_id);
    mg_map_free(&s->by_litellm_model);
    free(s->groups);
    free(s->wildcards);
    free(s->deps);
    json_decref(s->store_policies);
    mg_auth_free(s->auth);
    json_decref(s->warnings);
    json_decref(s->skipped);
    mg_scrub_set_unref(s->scrub);
    mg_costmap_unref(s->costmap);
    mg_config_unref(s->config);
    free(s);
}

mg_snapshot_t *
mg_snapshot_ref(mg_snapshot_t *s)
{
    s->refs++;
    return s;
}

void
mg_snapshot_unref(mg_snapshot_t *s)
{
    if (s == NULL) {
        return;
    }
    if (s->refs <= 0) {
        mg_log_write(MG_LOG_ERROR, NULL, "mg_snapshot_unref() underflow on version %lld, aborting",
                     (long long) s->version);
        abort();
    }
    if (--s->refs == 0) {
        mg_registry_free(s);
    }
}

mg_group_t *
mg_registry_group(const mg_snapshot_t *s, const char *name, size_t len)
{
    mg_group_t *g = mg_map_get(&s->by_group, name, len);
    if (g != NULL && !g->wildcard) {
        return g;
    }
    const char *target = mg_map_get(&s->aliases, name, len);
    if (target != NULL) {
        g = mg_map_get(&s->by_group, target, strlen(target));
        if (g != NULL && !g->wildcard) {
            return g;
        }
    }
    return NULL;
}

mg_deployment_t *
mg_registry_by_id(const mg_snapshot_t *s, const char *id)
{
    return mg_map_get(&s->by_id, id, strlen(id));
}

static mg_group_t *
mg_registry_wildcard_try(const mg_snapshot_t *s, const char *name, size_t len)
{
    if (s->nwildcards == 0) {
        return NULL;
    }
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    mg_group_t *hit = NULL;
    for (size_t i = 0; i < s->nwildcards && hit == NULL; i++) {
        mg_group_t *g = s->wildcards[i];
        if (pcre2_match(g->re, (PCRE2_SPTR) name, len, 0, 0, md, NULL) >= 0) {
            hit = g;
        }
    }
    pcre2_match_data_free(md);
    return hit;
}

mg_group_t *
mg_registry_wildcard(const mg_snapshot_t *s, const char *name, size_t len, char *matched,
                     size_t matched_len)
{
    mg_group_t *g = mg_registry_wildcard_try(s, name, len);
    if (g != NULL) {
        snprintf(matched, matched_len, "%.*s", (int) len, name);
        return g;
    }
    /* second lookup: provider/name with the provider inferred from the bare name (the
     * snapshot's cost map first: a reload that adds a model reaches wildcard routing) */
    char bare[512];
    snprintf(bare, sizeof(bare), "%.*s", (int) len, name);
    const char *prov = mg_registry_bare_provider(s, bare);
    if (prov == NULL) {
        return NULL;
    }
    char full[600];
    int fl = snprintf(full, sizeof(full), "%s/%s", prov, bare);
    g = mg_registry_wildcard_try(s, full, (size_t) fl);
    if (g != NULL) {
        snprintf(matched, matched_len, "%s", full);
    }
    return g;
}

char *
mg_registry_wildcard_model(const mg_deployment_t *d, const char *requested)
{
    const char *target = d->litellm_model;
    int stars = 0;
    for (const char *p = target; *p; p++) {
        stars += *p == '*';
    }
    if (stars == 0) {
        return mg_xstrdup(target);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(d->re, NULL);
    int rc = pcre2_match(d->re, (PCRE2_SPTR) requested, strlen(requested), 0, 0, md, NULL);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return mg_xstrdup(requested);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int ncap = rc - 1;
    if (ncap > stars || ncap <= 0) {
        pcre2_match_data_free(md);
        return mg_xstrdup(requested);
    }
    mg_buf_t b = MG_BUF_INIT;
    int ci = 1;
    for (const char *p = target; *p; p++) {
        if (*p == '*' && ci <= ncap) {
            mg_buf_append(&b, requested + ov[2 * ci], ov[2 * ci + 1] - ov[2 * ci]);
            ci++;
        } else {
            mg_buf_append(&b, p, 1);
        }
    }
    pcre2_match_data_free(md);
    char *res = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return res;
}

bool
mg_registry_secret_key(const char *k)
{
    /* every provider's secret fields (tokens by name: "*_token" would catch
     * input_cost_per_token) */
    static const char *const exact[] = {
        "api_key", "azure_ad_token", "vertex_credentials", "vertex_ai_credentials",
        "aws_access_key_id",
        "aws_secret_access_key", "aws_session_token", "aws_bearer_token", "aws_web_identity_token",
        "client_secret", "credentials", "api_token", "access_token", "refresh_token", "id_token",
        "auth_token", "token", "password", "service_account_json", NULL};
    if (mg_registry_in(k, exact)) {
        return true;
    }
    size_t l = strlen(k);
    if (l > 4 && strcmp(k + l - 4, "_key") == 0) {
        return true;
    }
    return strstr(k, "secret") != NULL || strstr(k, "password") != NULL;
}

/* api_base with its query values hidden: a query can carry a key (?key=...). */
static json_t *
mg_registry_redact_query(const char *base)
{
    const char *q = strchr(base, '?');
    if (q == NULL) {
        return json_string(base);
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, base, (size_t) (q - base) + 1);
    const char *p = q + 1;
    while (*p != '\0' && *p != '#') {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        if (b.end > 0 && mg_buf_head(&b)[mg_buf_len(&b) - 1] != '?') {
            mg_buf_append(&b, "&", 1);
        }
        if (eq != NULL) {
            mg_buf_append(&b, p, (size_t) (eq - p));
            mg_buf_append_str(&b, "=<redacted>");
        } else {
            mg_buf_append(&b, p, n);
        }
        p += n;
        if (*p == '&') {
            p++;
        }
    }
    json_t *j = json_string(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return j;
}

json_t *
mg_registry_deployment_json(const mg_deployment_t *d, bool with_secrets)
{
    json_t *lp = json_deep_copy(d->litellm_params);
    if (!with_secrets) {
        mg_registry_public_params(lp);
    }
    return json_pack("{s:s,s:o,s:O}", "model_name", d->model_name, "litellm_params", lp,
                     "model_info", d->model_info);
}

void
mg_registry_public_params(json_t *lp)
{
    if (!json_is_object(lp)) {
        return;
    }
    {
        const char *ab = json_string_value(json_object_get(lp, "api_base"));
        if (ab != NULL) {
            json_object_set_new(lp, "api_base", mg_registry_redact_query(ab));
        }
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(lp, tmp, k, v) {
            if (mg_registry_secret_key(k)) {
                json_object_del(lp, k);
            }
        }
        const char *hk[] = {"extra_headers", "headers"};
        for (int i = 0; i < 2; i++) {
            json_t *h = json_object_get(lp, hk[i]);
            if (!json_is_object(h)) {
                continue;
            }
            json_object_foreach(h, k, v) {
                if (strcasecmp(k, "authorization") == 0 || strcasecmp(k, "api-key") == 0 ||
                    strcasecmp(k, "x-api-key") == 0 || mg_registry_secret_key(k)) {
                    json_object_set_new(h, k, json_string("<redacted>"));
                }
            }
        }
    }
}
