/*
 * mg_provider_openai.c -- OpenAI and the providers that speak its wire format
 * and differ only in base URL and auth (hosted_vllm, openrouter, groq, ...),
 * plus Azure OpenAI (deployment in the path, api-version, api-key header).
 */
#include "mg_provider.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_ALL_ROUTES {true, true, true}
#define MG_CHAT_ONLY {true, true, false}

static const mg_provider_t mg_providers[] = {
    {"openai", "OpenAIException", "https://api.openai.com/v1", {"OPENAI_API_KEY"},
     {"OPENAI_API_BASE", "OPENAI_BASE_URL"}, true, false, MG_ALL_ROUTES},
    {"text-completion-openai", "OpenAIException", "https://api.openai.com/v1", {"OPENAI_API_KEY"},
     {"OPENAI_API_BASE", "OPENAI_BASE_URL"}, true, false, MG_ALL_ROUTES},
    {"custom_openai", "OpenAIException", NULL, {"OPENAI_API_KEY"}, {"OPENAI_API_BASE"}, false,
     false, MG_ALL_ROUTES},
    {"openai_like", "OpenAIException", NULL, {NULL}, {NULL}, false, false, MG_ALL_ROUTES},
    {"azure", "AzureException", NULL, {"AZURE_API_KEY", "AZURE_OPENAI_API_KEY"},
     {"AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"}, true, true, MG_ALL_ROUTES},
    {"hosted_vllm", "Hosted_vllmException", NULL, {"HOSTED_VLLM_API_KEY"},
     {"HOSTED_VLLM_API_BASE"}, false, false, MG_ALL_ROUTES},
    {"vllm", "VllmException", NULL, {"HOSTED_VLLM_API_KEY"}, {"HOSTED_VLLM_API_BASE"}, false,
     false, MG_ALL_ROUTES},
    {"openrouter", "OpenrouterException", "https://openrouter.ai/api/v1",
     {"OPENROUTER_API_KEY", "OR_API_KEY"}, {"OPENROUTER_API_BASE"}, true, false, MG_CHAT_ONLY},
    {"groq", "GroqException", "https://api.groq.com/openai/v1", {"GROQ_API_KEY"},
     {"GROQ_API_BASE"}, true, false, MG_CHAT_ONLY},
    {"deepseek", "DeepseekException", "https://api.deepseek.com/v1", {"DEEPSEEK_API_KEY"},
     {"DEEPSEEK_API_BASE"}, true, false, MG_CHAT_ONLY},
    {"mistral", "MistralException", "https://api.mistral.ai/v1", {"MISTRAL_API_KEY"},
     {"MISTRAL_API_BASE"}, true, false, MG_ALL_ROUTES},
    {"together_ai", "Together_aiException", "https://api.together.xyz/v1",
     {"TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_TOKEN"}, {"TOGETHERAI_API_BASE"},
     true, false, MG_ALL_ROUTES},
    {"fireworks_ai", "Fireworks_aiException", "https://api.fireworks.ai/inference/v1",
     {"FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"},
     {"FIREWORKS_AI_API_BASE"}, true, false, MG_ALL_ROUTES},
    {"xai", "XaiException", "https://api.x.ai/v1", {"XAI_API_KEY"}, {"XAI_API_BASE"}, true,
     false, MG_CHAT_ONLY},
    {"lm_studio", "Lm_studioException", "http://localhost:1234/v1", {"LM_STUDIO_API_KEY"},
     {"LM_STUDIO_API_BASE"}, false, false, MG_ALL_ROUTES},
};

const mg_provider_t *
mg_provider_find(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(mg_providers) / sizeof(mg_providers[0]); i++) {
        if (strcmp(mg_providers[i].name, name) == 0) {
            return &mg_providers[i];
        }
    }
    return NULL;
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

const char *
mg_route_path(mg_route_t r)
{
    switch (r) {
    case MG_ROUTE_CHAT: return "/chat/completions";
    case MG_ROUTE_COMPLETIONS: return "/completions";
    case MG_ROUTE_EMBEDDINGS: return "/embeddings";
    default: return "/";
    }
}

/* Percent-encodes characters that cannot appear raw in a path segment. */
static void
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

int
mg_provider_request_head(const mg_provider_t *p, const mg_deployment_t *d, mg_route_t route,
                         const char *upstream_model, mg_buf_t *out, mg_err_t *err)
{
    const char *base = mg_provider_base(p, d);
    if (base == NULL) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST,
                          "deployment \"%s\": api_base is required for provider %s (set "
                          "litellm_params.api_base or %s)", d->id, p->name,
                          p->env_base[0] ? p->env_base[0] : "api_base");
    }
    const char *key = mg_provider_key(p, d);
    if (key == NULL && p->key_required) {
        mg_err_set(err, MG_ERR_AUTH,
                   "AuthenticationError: %s - The api_key client option must be set either by "
                   "passing api_key to the client or by setting the %s environment variable",
                   p->exception_name, p->env_key[0] ? p->env_key[0] : "API key");
        err->status = 401;
        return MG_ERROR;
    }
    /* split base into host part and path prefix */
    const char *hp = strstr(base, "://");
    hp = hp ? hp + 3 : base;
    const char *path = hp + strcspn(hp, "/?#");
    size_t hostlen = (size_t) (path - hp);
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    mg_buf_append_str(out, "POST ");
    mg_buf_append(out, path, plen);
    if (p->azure) {
        mg_buf_append_str(out, "/openai/deployments/");
        mg_provider_path_segment(out, upstream_model);
        mg_buf_append_str(out, mg_route_path(route));
        const char *ver = d->api_version;
        if (ver == NULL || ver[0] == '\0') {
            ver = getenv("AZURE_API_VERSION");
        }
        if (ver == NULL || ver[0] == '\0') {
            ver = "2025-02-01-preview";
        }
        mg_buf_append_str(out, "?api-version=");
        mg_provider_path_segment(out, ver);
    } else {
        mg_buf_append_str(out, mg_route_path(route));
    }
    mg_buf_append_str(out, " HTTP/1.1\r\nhost: ");
    mg_buf_append(out, hp, hostlen);
    mg_buf_append_str(out, "\r\ncontent-type: application/json\r\naccept: application/json\r\n"
                           "user-agent: moongate/" MG_VERSION "\r\n");
    if (key != NULL && key[0] != '\0') {
        if (p->azure) {
            mg_buf_printf(out, "api-key: %s\r\n", key);
        } else {
            mg_buf_printf(out, "authorization: Bearer %s\r\n", key);
        }
    }
    if (d->organization != NULL && d->organization[0] != '\0' && !p->azure) {
        mg_buf_printf(out, "openai-organization: %s\r\n", d->organization);
    }
    if (d->extra_headers != NULL) {
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
    return MG_OK;
}
