/*
 * mg_provider_openai.c -- OpenAI and the providers that speak its wire format
 * and differ only in base URL and auth (hosted_vllm, openrouter, groq, ...):
 * data rows sharing one set of operations.  OpenAI itself also serves the
 * Responses API natively (create, and GET/DELETE/input_items/cancel of a
 * stored response).  Azure OpenAI and Azure AI are in mg_provider_azure.c and
 * reuse the helpers exported here.
 */
#include "mg_provider.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- OpenAI-compatible ---- */

static mg_wire_t
mg_oai_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) d;
    if (!p->ops_supported[op]) {
        return MG_WIRE_NONE;
    }
    return op == MG_OP_RESPONSES ? MG_WIRE_OPENAI_RESPONSES : MG_WIRE_OPENAI;
}

const char *
mg_provider_openai_path(mg_op_t op)
{
    switch (op) {
    case MG_OP_CHAT: return "/chat/completions";
    case MG_OP_COMPLETION: return "/completions";
    case MG_OP_EMBEDDINGS: return "/embeddings";
    case MG_OP_RESPONSES: return "/responses";
    default: return "/";
    }
}

/* The key, or the error LiteLLM's OpenAI client raises without one. */
static int
mg_oai_key(const mg_provider_t *p, const mg_deployment_t *d, const char **key, mg_err_t *err)
{
    *key = mg_provider_key(p, d);
    if (*key == NULL && p->key_required) {
        mg_err_set(err, MG_ERR_AUTH,
                   "AuthenticationError: %s - The api_key client option must be set either by "
                   "passing api_key to the client or by setting the %s environment variable",
                   p->exception_name, p->env_key[0] ? p->env_key[0] : "API key");
        err->status = 401;
        return MG_ERROR;
    }
    return MG_OK;
}

int
mg_provider_openai_base(const mg_provider_t *p, const mg_deployment_t *d, const char **base,
                        mg_err_t *err)
{
    *base = mg_provider_base(p, d);
    if (*base == NULL) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST,
                          "deployment \"%s\": api_base is required for provider %s (set "
                          "litellm_params.api_base or %s)", d->id, p->name,
                          p->env_base[0] ? p->env_base[0] : "api_base");
    }
    return MG_OK;
}

int
mg_provider_openai_body(mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    if (mg_provider_body(c, c->upstream_model, NULL, aerr) != MG_OK) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s", aerr->msg);
        err->status = aerr->status;
        return MG_ERROR;
    }
    return MG_OK;
}

static int
mg_oai_build(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr)
{
    const mg_deployment_t *d = c->dep;
    const char *base, *key;
    if (mg_provider_openai_base(p, d, &base, err) != MG_OK ||
        mg_oai_key(p, d, &key, err) != MG_OK) {
        return MG_ERROR;
    }
    mg_buf_t *h = c->head;
    if (c->op == MG_OP_RESPONSES && c->resp_action != MG_RESP_CREATE) {
        /* a stored response: no body; the client's query (input_items paging) goes along */
        mg_provider_no_body(c);
        mg_buf_t path = MG_BUF_INIT, query = MG_BUF_INIT;
        mg_provider_responses_path(c, &path);
        if (c->resp_query != NULL && c->resp_query[0] != '\0') {
            mg_buf_printf(&query, "?%s", c->resp_query);
        }
        mg_provider_head_method(h, mg_provider_responses_method(c), base, mg_buf_cstr(&path),
                                mg_buf_cstr(&query));
        mg_buf_free(&path);
        mg_buf_free(&query);
    } else {
        if (mg_provider_openai_body(c, err, aerr) != MG_OK) {
            return MG_ERROR;
        }
        mg_provider_head_start(h, base, mg_provider_openai_path(c->op), NULL);
    }
    if (mg_provider_value_ok("authorization", key, err) != MG_OK ||
        mg_provider_value_ok("openai-organization", d->organization, err) != MG_OK) {
        return MG_ERROR;
    }
    if (key != NULL && key[0] != '\0') {
        mg_buf_printf(h, "authorization: Bearer %s\r\n", key);
    }
    if (d->organization != NULL && d->organization[0] != '\0') {
        mg_buf_printf(h, "openai-organization: %s\r\n", d->organization);
    }
    mg_provider_extra_headers(d, h);
    mg_provider_client_headers(p, c, h);
    mg_provider_head_end(c);
    return MG_OK;
}

mg_framing_t
mg_provider_openai_framing(const mg_provider_t *p, const mg_call_t *c, const char *ctype)
{
    (void) p;
    (void) c;
    return ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0 ? MG_FRAMING_SSE
                                                                            : MG_FRAMING_JSON;
}

static const mg_provider_ops_t mg_oai_ops = {
    .wire = mg_oai_wire,
    .build = mg_oai_build,
    .framing = mg_provider_openai_framing,
};

/* ---- the rows ---- */

/* chat, completions, embeddings, count_tokens, responses (mg_op_t order) */
#define MG_ALL_OPS {true, true, true, false, false}
#define MG_CHAT_ONLY {true, true, false, false, false}
#define MG_ALL_OPS_RESPONSES {true, true, true, false, true}

const mg_provider_t mg_provider_openai_rows[] = {
    {"openai", "OpenAIException", &mg_oai_ops, "https://api.openai.com/v1", {"OPENAI_API_KEY"},
     {"OPENAI_API_BASE", "OPENAI_BASE_URL"}, true, MG_ALL_OPS_RESPONSES, NULL},
    {"text-completion-openai", "OpenAIException", &mg_oai_ops, "https://api.openai.com/v1",
     {"OPENAI_API_KEY"}, {"OPENAI_API_BASE", "OPENAI_BASE_URL"}, true, MG_ALL_OPS, NULL},
    {"custom_openai", "OpenAIException", &mg_oai_ops, NULL, {"OPENAI_API_KEY"},
     {"OPENAI_API_BASE"}, false, MG_ALL_OPS, NULL},
    {"openai_like", "OpenAIException", &mg_oai_ops, NULL, {NULL}, {NULL}, false, MG_ALL_OPS,
     NULL},
    {"hosted_vllm", "Hosted_vllmException", &mg_oai_ops, NULL, {"HOSTED_VLLM_API_KEY"},
     {"HOSTED_VLLM_API_BASE"}, false, MG_ALL_OPS, NULL},
    {"vllm", "VllmException", &mg_oai_ops, NULL, {"HOSTED_VLLM_API_KEY"},
     {"HOSTED_VLLM_API_BASE"}, false, MG_ALL_OPS, NULL},
    {"openrouter", "OpenrouterException", &mg_oai_ops, "https://openrouter.ai/api/v1",
     {"OPENROUTER_API_KEY", "OR_API_KEY"}, {"OPENROUTER_API_BASE"}, true, MG_CHAT_ONLY, NULL},
    {"groq", "GroqException", &mg_oai_ops, "https://api.groq.com/openai/v1", {"GROQ_API_KEY"},
     {"GROQ_API_BASE"}, true, MG_CHAT_ONLY, NULL},
    {"deepseek", "DeepseekException", &mg_oai_ops, "https://api.deepseek.com/v1",
     {"DEEPSEEK_API_KEY"}, {"DEEPSEEK_API_BASE"}, true, MG_CHAT_ONLY, NULL},
    {"mistral", "MistralException", &mg_oai_ops, "https://api.mistral.ai/v1",
     {"MISTRAL_API_KEY"}, {"MISTRAL_API_BASE"}, true, MG_ALL_OPS, NULL},
    {"together_ai", "Together_aiException", &mg_oai_ops, "https://api.together.xyz/v1",
     {"TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_TOKEN"}, {"TOGETHERAI_API_BASE"},
     true, MG_ALL_OPS, NULL},
    {"fireworks_ai", "Fireworks_aiException", &mg_oai_ops, "https://api.fireworks.ai/inference/v1",
     {"FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"},
     {"FIREWORKS_AI_API_BASE"}, true, MG_ALL_OPS, NULL},
    {"xai", "XaiException", &mg_oai_ops, "https://api.x.ai/v1", {"XAI_API_KEY"}, {"XAI_API_BASE"},
     true, MG_CHAT_ONLY, NULL},
    {"lm_studio", "Lm_studioException", &mg_oai_ops, "http://localhost:1234/v1",
     {"LM_STUDIO_API_KEY"}, {"LM_STUDIO_API_BASE"}, false, MG_ALL_OPS, NULL},
};

const size_t mg_provider_openai_nrows = sizeof(mg_provider_openai_rows) /
                                        sizeof(mg_provider_openai_rows[0]);
