/*
 * mg_openapi.c -- every route moongate serves, and the OpenAPI 3.1 document
 * built from that table (see mg_openapi.h).
 *
 * Owns: the static table and the component schemas (JSON text, parsed per
 * document).  Does not dispatch: mg_gw.c, mg_admin.c and mg_ui.c do, and
 * tests/e2e/openapi.test.mjs checks that they and this table agree.
 */
#include "mg_openapi.h"

#include "../base/mg_types.h"

#include <stdio.h>
#include <string.h>

/* ---- the route table ---- */

#define MG_OA_LLM_CHAT "OpenAI chat completions: any model group, any provider (translated when "  \
                       "the provider speaks another format)"
#define MG_OA_LLM_COMP "OpenAI legacy completions"
#define MG_OA_LLM_EMB "OpenAI embeddings"
#define MG_OA_LLM_RESP "OpenAI Responses API: native to OpenAI/Azure, translated to chat elsewhere"

static const mg_openapi_op_t mg_openapi_table[] = {
    /* LLM routes (mg_gw_llm_route) */
    {"post", "/v1/responses", "llm", MG_OA_STREAM, MG_OA_LLM_RESP, NULL, NULL, NULL},
    {"post", "/responses", "llm", MG_OA_STREAM, MG_OA_LLM_RESP, NULL, NULL, NULL},
    {"post", "/openai/v1/responses", "llm", MG_OA_STREAM, MG_OA_LLM_RESP, NULL, NULL, NULL},
    {"post", "/openai/responses", "llm", MG_OA_STREAM, MG_OA_LLM_RESP, NULL, NULL, NULL},
    {"get", "/v1/responses/{response_id}", "llm", 0,
     "A stored response, from the deployment that made it", NULL, NULL, NULL},
    {"delete", "/v1/responses/{response_id}", "llm", 0, "Deletes a stored response", NULL, NULL,
     NULL},
    {"get", "/v1/responses/{response_id}/input_items", "llm", 0,
     "The input items of a stored response", NULL, NULL, NULL},
    {"post", "/v1/responses/{response_id}/cancel", "llm", 0, "Cancels a background response",
     NULL, NULL, NULL},
    {"get", "/responses/{response_id}", "llm", 0, "A stored response (without /v1)", NULL, NULL,
     NULL},
    {"get", "/openai/v1/responses/{response_id}", "llm", 0, "A stored response (Azure-style path)",
     NULL, NULL, NULL},
    {"get", "/openai/responses/{response_id}", "llm", 0, "A stored response (Azure-style path)",
     NULL, NULL, NULL},
    {"post", "/v1/chat/completions", "llm", MG_OA_STREAM, MG_OA_LLM_CHAT, NULL, "ChatRequest", NULL},
    {"post", "/chat/completions", "llm", MG_OA_STREAM, MG_OA_LLM_CHAT, NULL, "ChatRequest", NULL},
    {"post", "/openai/deployments/{model}/chat/completions", "llm", MG_OA_STREAM,
     "Azure-style chat completions (the model in the path)", NULL, "ChatRequest", NULL},
    {"post", "/engines/{model}/chat/completions", "llm", MG_OA_STREAM,
     "Chat completions with the model in the path", NULL, "ChatRequest", NULL},
    {"post", "/v1/engines/{model}/chat/completions", "llm", MG_OA_STREAM,
     "Chat completions with the model in the path", NULL, "ChatRequest", NULL},
    {"post", "/v1/completions", "llm", MG_OA_STREAM, MG_OA_LLM_COMP, NULL, "CompletionRequest", NULL},
    {"post", "/completions", "llm", MG_OA_STREAM, MG_OA_LLM_COMP, NULL, "CompletionRequest", NULL},
    {"post", "/openai/deployments/{model}/completions", "llm", MG_OA_STREAM,
     "Azure-style completions (the model in the path)", NULL, "CompletionRequest", NULL},
    {"post", "/engines/{model}/completions", "llm", MG_OA_STREAM,
     "Completions with the model in the path", NULL, "CompletionRequest", NULL},
    {"post", "/v1/engines/{model}/completions", "llm", MG_OA_STREAM,
     "Completions with the model in the path", NULL, "CompletionRequest", NULL},
    {"post", "/v1/embeddings", "llm", 0, MG_OA_LLM_EMB, NULL, "EmbeddingRequest", NULL},
    {"post", "/embeddings", "llm", 0, MG_OA_LLM_EMB, NULL, "EmbeddingRequest", NULL},
    {"post", "/openai/deployments/{model}/embeddings", "llm", 0,
     "Azure-style embeddings (the model in the path)", NULL, "EmbeddingRequest", NULL},
    {"post", "/engines/{model}/embeddings", "llm", 0, "Embeddings with the model in the path",
     NULL, "EmbeddingRequest", NULL},
    {"post", "/v1/engines/{model}/embeddings", "llm", 0, "Embeddings with the model in the path",
     NULL, "EmbeddingRequest", NULL},
    {"post", "/v1/messages", "llm", MG_OA_STREAM,
     "Anthropic Messages API, to any deployment (auth: x-api-key or Bearer)", NULL,
     "MessagesRequest", NULL},
    {"post", "/anthropic/v1/messages", "llm", MG_OA_STREAM, "Anthropic Messages API", NULL,
     "MessagesRequest", NULL},
    {"post", "/v1/messages/count_tokens", "llm", 0,
     "Anthropic token count (forwarded to Anthropic deployments, else an estimate)", NULL,
     "MessagesRequest", NULL},
    {"post", "/anthropic/v1/messages/count_tokens", "llm", 0, "Anthropic token count", NULL,
     "MessagesRequest", NULL},

    /* model listings and management (mg_admin.c) */
    {"get", "/v1/models", "models", 0, "The model groups (OpenAI list format)", NULL, NULL, "ModelList"},
    {"get", "/models", "models", 0, "The model groups (OpenAI list format)", NULL, NULL, "ModelList"},
    {"get", "/v1/models/{model}", "models", 0, "One model group", NULL, NULL, NULL},
    {"get", "/models/{model}", "models", 0, "One model group", NULL, NULL, NULL},
    {"get", "/model/info", "models", 0, "Every deployment, credentials redacted",
     "litellm_model_id", NULL, "ModelInfo"},
    {"get", "/v1/model/info", "models", 0, "Every deployment, credentials redacted",
     "litellm_model_id", NULL, "ModelInfo"},
    {"get", "/v2/model/info", "models", 0, "Every deployment, credentials redacted",
     "litellm_model_id", NULL, "ModelInfo"},
    {"get", "/model_group/info", "models", 0, "Every model group: providers, mode, limits",
     "model_group", NULL, NULL},
    {"post", "/model/new", "models", MG_OA_MASTER,
     "Adds a deployment; answers once every local worker serves it", NULL, "ModelNew", NULL},
    {"post", "/model/update", "models", MG_OA_MASTER, "Updates a stored deployment", NULL,
     "ModelUpdate", NULL},
    {"patch", "/model/{model_id}/update", "models", MG_OA_MASTER,
     "Patches a stored deployment (null clears a field)", NULL, "ModelUpdate", NULL},
    {"post", "/model/delete", "models", MG_OA_MASTER, "Deletes a stored deployment", NULL,
     "ModelDelete", NULL},

    /* health */
    {"get", "/health", "health", 0, "Probes every deployment (one small request each)",
     "model,model_id", NULL, NULL},
    {"get", "/health/readiness", "health", MG_OA_PUBLIC,
     "Ready when every worker has loaded the registry (503 otherwise)", NULL, NULL, NULL},
    {"get", "/health/liveliness", "health", MG_OA_PUBLIC, "Liveness probe", NULL, NULL, NULL},
    {"get", "/health/liveness", "health", MG_OA_PUBLIC, "Liveness probe", NULL, NULL, NULL},
    {"get", "/metrics", "health", MG_OA_PUBLIC,
     "Prometheus metrics of the whole instance (master key with require_auth_for_metrics_endpoint)",
     NULL, NULL, NULL},

    /* policies */
    {"get", "/policy/info", "policies", 0, "The policies in force (source with ?source=1)",
     "source", NULL, NULL},
    {"post", "/policy/update", "policies", MG_OA_MASTER,
     "Stores a policy for the fleet (refused unless it compiles)", NULL, "PolicyUpdate", NULL},
    {"post", "/policy/delete", "policies", MG_OA_MASTER,
     "Removes a stored policy (the configured one is back)", NULL, "PolicyDelete", NULL},

    /* operations */
    {"post", "/config/reload", "admin", MG_OA_MASTER,
     "Re-reads config.yaml; answers once every worker serves it", NULL, NULL, NULL},
    {"post", "/reload/model_cost_map", "admin", MG_OA_MASTER,
     "Reloads the cost map from its source; answers once every worker uses it", NULL, NULL, NULL},
    {"post", "/schedule/model_cost_map_reload", "admin", MG_OA_MASTER,
     "Reloads the cost map every N hours (?hours=N)", "hours", NULL, NULL},
    {"delete", "/schedule/model_cost_map_reload", "admin", MG_OA_MASTER,
     "Stops the scheduled cost map reloads", NULL, NULL, NULL},
    {"get", "/schedule/model_cost_map_reload/status", "admin", MG_OA_MASTER,
     "The cost map reload schedule", NULL, NULL, NULL},
    {"get", "/model/cost_map/source", "admin", MG_OA_MASTER,
     "Where the cost map in use came from, and any refused reload", NULL, NULL, NULL},
    {"get", "/get/litellm_model_cost_map", "admin", MG_OA_MASTER, "The cost map in use",
     NULL, NULL, NULL},
    {"get", "/moongate/state", "admin", MG_OA_MASTER,
     "Every worker's registry and policy versions, snapshots, store, pool; deployment stats",
     NULL, NULL, NULL},
    {"post", "/moongate/pool/evict", "admin", MG_OA_MASTER,
     "Closes this worker's idle upstream connections", NULL, NULL, NULL},
    {"get", "/moongate/requests", "admin", MG_OA_MASTER,
     "The last LLM requests of every worker (ids, statuses, times, tokens; never content)",
     "limit", NULL, "RecentRequests"},
    {"get", "/moongate/traffic", "admin", MG_OA_MASTER,
     "Requests, failures, latency and tokens per deployment in 10 s buckets (5 minutes)", NULL,
     NULL, NULL},

    /* virtual keys, teams, users, end users and budgets (mg_keys.c, LiteLLM's roles) */
    {"post", "/key/generate", "keys", 0,
     "Creates a virtual key (LiteLLM /key/generate)", NULL, NULL, NULL},
    {"post", "/key/service-account/generate", "keys", 0,
     "Creates a service-account key (no user)", NULL, NULL, NULL},
    {"post", "/key/update", "keys", 0, "Updates a virtual key", NULL, NULL, NULL},
    {"post", "/key/delete", "keys", 0, "Deletes a virtual key", NULL, NULL, NULL},
    {"get", "/key/info", "keys", 0, "A virtual key and its spend", "key", NULL, NULL},
    {"get", "/key/list", "keys", 0,
     "Lists the keys the caller may see",
     "page,size,user_id,team_id,key_alias,return_full_object", NULL, NULL},
    {"post", "/key/regenerate", "keys", 0,
     "Replaces a key with a new secret (same row)", NULL, NULL, NULL},
    {"post", "/key/block", "keys", 0, "Blocks a virtual key", NULL, NULL, NULL},
    {"post", "/key/unblock", "keys", 0, "Unblocks a virtual key", NULL, NULL, NULL},
    {"post", "/key/health", "keys", 0,
     "Checks the calling key (LiteLLM /key/health)", NULL, NULL, NULL},
    {"post", "/team/new", "keys", MG_OA_MASTER, "Creates a team", NULL, NULL, NULL},
    {"post", "/team/update", "keys", MG_OA_MASTER, "Updates a team", NULL, NULL, NULL},
    {"post", "/team/delete", "keys", MG_OA_MASTER, "Deletes a team", NULL, NULL, NULL},
    {"get", "/team/info", "keys", 0, "A team and its spend", "team_id", NULL, NULL},
    {"get", "/team/list", "keys", 0,
     "Lists the teams the caller may see", "user_id,organization_id", NULL, NULL},
    {"post", "/team/member_add", "keys", 0, "Adds members to a team", NULL, NULL, NULL},
    {"post", "/team/member_delete", "keys", 0, "Removes members from a team", NULL, NULL, NULL},
    {"post", "/team/block", "keys", MG_OA_MASTER, "Blocks a team", NULL, NULL, NULL},
    {"post", "/team/unblock", "keys", MG_OA_MASTER, "Unblocks a team", NULL, NULL, NULL},
    {"post", "/user/new", "keys", MG_OA_MASTER, "Creates a user", NULL, NULL, NULL},
    {"post", "/user/update", "keys", MG_OA_MASTER, "Updates a user", NULL, NULL, NULL},
    {"post", "/user/delete", "keys", MG_OA_MASTER, "Deletes a user", NULL, NULL, NULL},
    {"get", "/user/info", "keys", 0, "A user and its spend", "user_id", NULL, NULL},
    {"get", "/user/list", "keys", MG_OA_MASTER,
     "Lists the users the caller may see", "page,page_size,role,user_ids", NULL, NULL},
    {"post", "/customer/new", "keys", MG_OA_MASTER,
     "Creates an end user (customer)", NULL, NULL, NULL},
    {"post", "/customer/update", "keys", MG_OA_MASTER,
     "Updates an end user (customer)", NULL, NULL, NULL},
    {"post", "/customer/delete", "keys", MG_OA_MASTER,
     "Deletes an end user (customer)", NULL, NULL, NULL},
    {"get", "/customer/info", "keys", MG_OA_MASTER,
     "An end user (customer) and its spend", "end_user_id", NULL, NULL},
    {"get", "/customer/list", "keys", MG_OA_MASTER,
     "Lists the end users the caller may see", NULL, NULL, NULL},
    {"post", "/customer/block", "keys", MG_OA_MASTER,
     "Blocks an end user (customer)", NULL, NULL, NULL},
    {"post", "/customer/unblock", "keys", MG_OA_MASTER,
     "Unblocks an end user (customer)", NULL, NULL, NULL},
    {"post", "/end_user/new", "keys", MG_OA_MASTER, "Creates an end user", NULL, NULL, NULL},
    {"post", "/end_user/update", "keys", MG_OA_MASTER, "Updates an end user", NULL, NULL, NULL},
    {"post", "/end_user/delete", "keys", MG_OA_MASTER, "Deletes an end user", NULL, NULL, NULL},
    {"get", "/end_user/info", "keys", MG_OA_MASTER,
     "An end user and its spend", "end_user_id", NULL, NULL},
    {"get", "/end_user/list", "keys", MG_OA_MASTER,
     "Lists the end users the caller may see", NULL, NULL, NULL},
    {"post", "/end_user/block", "keys", MG_OA_MASTER, "Blocks an end user", NULL, NULL, NULL},
    {"post", "/end_user/unblock", "keys", MG_OA_MASTER, "Unblocks an end user", NULL, NULL, NULL},
    {"post", "/budget/new", "keys", MG_OA_MASTER, "Creates a budget row", NULL, NULL, NULL},
    {"post", "/budget/update", "keys", MG_OA_MASTER, "Updates a budget row", NULL, NULL, NULL},
    {"post", "/budget/delete", "keys", MG_OA_MASTER, "Deletes a budget row", NULL, NULL, NULL},
    {"post", "/budget/info", "keys", MG_OA_MASTER, "A budget row and its spend", NULL, NULL, NULL},
    {"get", "/budget/list", "keys", MG_OA_MASTER,
     "Lists the budget rows the caller may see", NULL, NULL, NULL},
    {"post", "/key/{key}/regenerate", "keys", 0,
     "Replaces a key with a new secret (the key in the path)", NULL, NULL, NULL},

    /* spend logs (mg_spend_routes.c; LiteLLM's read routes) */
    {"get", "/spend/logs", "spend", MG_OA_MASTER,
     "Spend log rows (by api_key, request_id, user_id) or daily totals (start_date, end_date)",
     "api_key,request_id,user_id,start_date,end_date,summarize", NULL, NULL},
    {"get", "/global/spend", "spend", MG_OA_MASTER, "Spend since the first of this month",
     NULL, NULL, NULL},
    {"get", "/global/spend/report", "spend", MG_OA_MASTER,
     "Spend per day, grouped by team, customer or api_key",
     "start_date,end_date,group_by,api_key,internal_user_id,team_id,customer_id", NULL, NULL},
    {"get", "/global/spend/keys", "spend", MG_OA_MASTER, "The keys that spent most (30 days)",
     "limit", NULL, NULL},
    {"get", "/global/spend/models", "spend", MG_OA_MASTER,
     "The models that spent most (30 days)", "limit", NULL, NULL},

    /* LiteLLM's cache routes: moongate keeps no cache */
    {"post", "/cache/flushall", "cache", 0, "Nothing to flush (answers why)", NULL, NULL, NULL},
    {"post", "/cache/purge", "cache", 0, "Nothing to purge (answers why)", NULL, NULL, NULL},
    {"post", "/cache/delete", "cache", 0, "Nothing to delete (answers why)", NULL, NULL, NULL},
    {"get", "/cache/ping", "cache", 0, "503: no cache configured (as LiteLLM without one)", NULL,
     NULL, NULL},

    /* the page, its assets and this document (mg_ui.c) */
    {"get", "/", "ui", MG_OA_PUBLIC, "What this server is", NULL, NULL, NULL},
    {"get", "/ui", "ui", MG_OA_PUBLIC | MG_OA_REDIRECT, "Redirects to /ui/", NULL, NULL, NULL},
    {"get", "/ui/", "ui", MG_OA_PUBLIC | MG_OA_HTML,
     "The admin page (its data comes from the authenticated routes above)", NULL, NULL, NULL},
    {"get", "/ui/{asset}", "ui", MG_OA_PUBLIC | MG_OA_ASSET,
     "The admin page's scripts, styles and icon", NULL, NULL, NULL},
    {"get", "/docs", "ui", MG_OA_PUBLIC | MG_OA_HTML, "This API, as a page", NULL, NULL, NULL},
    {"get", "/openapi.json", "ui", MG_OA_PUBLIC, "This document", NULL, NULL, NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

const mg_openapi_op_t *
mg_openapi_ops(void)
{
    return mg_openapi_table;
}

/* ---- components ---- */

static const char mg_openapi_components[] =
    "{"
    "\"securitySchemes\":{"
    "  \"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\",\"description\":"
    "    \"The master key (general_settings.master_key / LITELLM_MASTER_KEY) or, once virtual "
    "keys exist, a key; also accepted as x-litellm-api-key, api-key, x-api-key.\"},"
    "  \"x-api-key\":{\"type\":\"apiKey\",\"in\":\"header\",\"name\":\"x-api-key\"}"
    "},"
    "\"schemas\":{"
    "  \"Error\":{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":{"
    "    \"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"},"
    "    \"type\":{\"type\":[\"string\",\"null\"]},\"param\":{\"type\":[\"string\",\"null\"]},"
    "    \"code\":{\"type\":[\"string\",\"null\"],\"description\":\"the HTTP status as a string\"}}}}},"
    "  \"Message\":{\"type\":\"object\",\"required\":[\"role\"],\"properties\":{"
    "    \"role\":{\"type\":\"string\"},\"content\":{}}},"
    "  \"ChatRequest\":{\"type\":\"object\",\"required\":[\"model\",\"messages\"],\"properties\":{"
    "    \"model\":{\"type\":\"string\",\"description\":\"a model group, alias or wildcard match\"},"
    "    \"messages\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Message\"}},"
    "    \"stream\":{\"type\":\"boolean\"},\"max_tokens\":{\"type\":\"integer\"},"
    "    \"temperature\":{\"type\":\"number\"},\"tools\":{\"type\":\"array\"},"
    "    \"num_retries\":{\"type\":\"integer\"},\"fallbacks\":{\"type\":\"array\"},"
    "    \"mock_response\":{},\"metadata\":{\"type\":\"object\"}},"
    "    \"additionalProperties\":true},"
    "  \"CompletionRequest\":{\"type\":\"object\",\"required\":[\"model\",\"prompt\"],\"properties\":{"
    "    \"model\":{\"type\":\"string\"},\"prompt\":{},\"stream\":{\"type\":\"boolean\"},"
    "    \"max_tokens\":{\"type\":\"integer\"}},\"additionalProperties\":true},"
    "  \"EmbeddingRequest\":{\"type\":\"object\",\"required\":[\"model\",\"input\"],\"properties\":{"
    "    \"model\":{\"type\":\"string\"},\"input\":{}},\"additionalProperties\":true},"
    "  \"MessagesRequest\":{\"type\":\"object\",\"required\":[\"model\",\"messages\"],\"properties\":{"
    "    \"model\":{\"type\":\"string\"},\"messages\":{\"type\":\"array\"},"
    "    \"max_tokens\":{\"type\":\"integer\"},\"system\":{},\"stream\":{\"type\":\"boolean\"}},"
    "    \"additionalProperties\":true},"
    "  \"ModelList\":{\"type\":\"object\",\"properties\":{\"object\":{\"const\":\"list\"},"
    "    \"data\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "    \"id\":{\"type\":\"string\"},\"object\":{\"const\":\"model\"},"
    "    \"created\":{\"type\":\"integer\"},\"owned_by\":{\"type\":\"string\"}}}}}},"
    "  \"Deployment\":{\"type\":\"object\",\"required\":[\"model_name\",\"litellm_params\"],"
    "    \"properties\":{\"model_name\":{\"type\":\"string\"},"
    "    \"litellm_params\":{\"type\":\"object\",\"required\":[\"model\"],\"properties\":{"
    "      \"model\":{\"type\":\"string\",\"description\":\"provider/model\"},"
    "      \"api_base\":{\"type\":\"string\"},\"api_key\":{\"type\":\"string\",\"writeOnly\":true,"
    "      \"description\":\"never returned: listings redact every credential\"},"
    "      \"mock_response\":{},\"rpm\":{\"type\":\"integer\"},\"tpm\":{\"type\":\"integer\"}},"
    "      \"additionalProperties\":true},"
    "    \"model_info\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},"
    "      \"additionalProperties\":true}}},"
    "  \"ModelInfo\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "    \"items\":{\"$ref\":\"#/components/schemas/Deployment\"}}}},"
    "  \"ModelNew\":{\"$ref\":\"#/components/schemas/Deployment\"},"
    "  \"ModelUpdate\":{\"type\":\"object\",\"properties\":{\"model_name\":{\"type\":\"string\"},"
    "    \"litellm_params\":{\"type\":\"object\"},\"model_info\":{\"type\":\"object\","
    "    \"properties\":{\"id\":{\"type\":\"string\"}}}}},"
    "  \"ModelDelete\":{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{"
    "    \"id\":{\"type\":\"string\"}}},"
    "  \"PolicyUpdate\":{\"type\":\"object\",\"required\":[\"kind\",\"source\"],\"properties\":{"
    "    \"kind\":{\"enum\":[\"routing\",\"fallback\",\"wildcard\",\"filter\"]},"
    "    \"source\":{\"type\":\"string\",\"description\":\"the policy's Lua source\"}}},"
    "  \"PolicyDelete\":{\"type\":\"object\",\"required\":[\"kind\"],\"properties\":{"
    "    \"kind\":{\"enum\":[\"routing\",\"fallback\",\"wildcard\",\"filter\"]}}},"
    "  \"RecentRequests\":{\"type\":\"object\",\"properties\":{\"enabled\":{\"type\":\"boolean\"},"
    "    \"capacity\":{\"type\":\"integer\"},\"requests\":{\"type\":\"array\",\"items\":{"
    "    \"type\":\"object\",\"properties\":{\"call_id\":{\"type\":\"string\"},"
    "    \"time_ms\":{\"type\":\"integer\"},\"worker\":{\"type\":\"integer\"},"
    "    \"route\":{\"type\":\"string\"},\"model\":{\"type\":\"string\"},"
    "    \"model_group\":{\"type\":[\"string\",\"null\"]},"
    "    \"deployment_id\":{\"type\":[\"string\",\"null\"]},"
    "    \"provider\":{\"type\":[\"string\",\"null\"]},\"status\":{\"type\":\"integer\"},"
    "    \"latency_ms\":{\"type\":\"number\"},\"prompt_tokens\":{\"type\":\"integer\"},"
    "    \"completion_tokens\":{\"type\":\"integer\"},\"total_tokens\":{\"type\":\"integer\"},"
    "    \"retries\":{\"type\":\"integer\"},\"fallbacks\":{\"type\":\"integer\"},"
    "    \"stream\":{\"type\":\"boolean\"}}}}}}"
    "}"
    "}";

/* ---- the document ---- */

static json_t *
mg_openapi_json_content(const char *schema)
{
    char ref[128];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s", schema != NULL ? schema : "");
    json_t *s = schema != NULL ? json_pack("{s:s}", "$ref", ref)
                               : json_pack("{s:s}", "type", "object");
    return json_pack("{s:{s:o}}", "application/json", "schema", s);
}

static json_t *
mg_openapi_error_response(const char *what)
{
    return json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", what, "content", "application/json",
                     "schema", "$ref", "#/components/schemas/Error");
}

static json_t *
mg_openapi_ok_response(const mg_openapi_op_t *op)
{
    if (op->flags & MG_OA_REDIRECT) {
        return json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "redirect", "headers",
                         "location", "schema", "type", "string");
    }
    if (op->flags & MG_OA_HTML) {
        return json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "the page", "content",
                         "text/html", "schema", "type", "string");
    }
    if (op->flags & MG_OA_ASSET) {
        return json_pack("{s:s,s:{s:{s:{s:s}},s:{s:{s:s}},s:{s:{s:s}}}}", "description",
                         "the asset (with an ETag; If-None-Match answers 304)", "content",
                         "text/javascript", "schema", "type", "string", "text/css", "schema",
                         "type", "string", "image/svg+xml", "schema", "type", "string");
    }
    json_t *content = mg_openapi_json_content(op->ok);
    if (op->flags & MG_OA_STREAM) {
        json_object_set_new(content, "text/event-stream",
                            json_pack("{s:{s:s}}", "schema", "type", "string"));
    }
    return json_pack("{s:s,s:o}", "description", "success", "content", content);
}

static json_t *
mg_openapi_parameters(const mg_openapi_op_t *op)
{
    json_t *params = json_array();
    for (const char *p = strchr(op->path, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (e == NULL) {
            break;
        }
        json_array_append_new(params, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", p + 1,
                                                (size_t) (e - p - 1), "in", "path", "required", 1,
                                                "schema", "type", "string"));
    }
    for (const char *q = op->query; q != NULL && *q;) {
        const char *c = strchr(q, ',');
        size_t n = c ? (size_t) (c - q) : strlen(q);
        json_array_append_new(params, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", q, n, "in",
                                                "query", "required", 0, "schema", "type",
                                                "string"));
        q = c ? c + 1 : q + n;
    }
    return params;
}

static json_t *
mg_openapi_operation(const mg_openapi_op_t *op)
{
    json_t *o = json_pack("{s:[s],s:s}", "tags", op->tag, "summary", op->summary);
    char id[256];
    size_t n = (size_t) snprintf(id, sizeof(id), "%s", op->method);
    for (const char *p = op->path; *p && n + 1 < sizeof(id); p++) {
        char ch = *p;
        id[n++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                      ? ch
                      : '_';
    }
    id[n] = '\0';
    json_object_set_new(o, "operationId", json_string(id));
    json_t *params = mg_openapi_parameters(op);
    if (json_array_size(params) > 0) {
        json_object_set_new(o, "parameters", params);
    } else {
        json_decref(params);
    }
    if (op->body != NULL) {
        json_object_set_new(o, "requestBody", json_pack("{s:b,s:o}", "required", 1, "content",
                                                        mg_openapi_json_content(op->body)));
    }
    json_t *resp = json_pack("{s:o}", (op->flags & MG_OA_REDIRECT) ? "302" : "200",
                             mg_openapi_ok_response(op));
    if (op->flags & MG_OA_PUBLIC) {
        json_object_set_new(o, "security", json_array());
    } else {
        json_object_set_new(o, "security", json_pack("[{s:[]},{s:[]}]", "bearer", "x-api-key"));
        json_object_set_new(resp, "401", mg_openapi_error_response(
                                             (op->flags & MG_OA_MASTER)
                                                 ? "no key, or not the master key"
                                                 : "no key, or an unknown one"));
    }
    if (op->flags & MG_OA_ASSET) {
        json_object_set_new(resp, "304", json_pack("{s:s}", "description", "not modified"));
        json_object_set_new(resp, "404", json_pack("{s:s}", "description", "no such asset"));
    } else {
        json_object_set_new(resp, "default", mg_openapi_error_response("an error"));
    }
    json_object_set_new(o, "responses", resp);
    json_object_set_new(o, "x-moongate-auth", json_string((op->flags & MG_OA_PUBLIC)   ? "none"
                                                          : (op->flags & MG_OA_MASTER) ? "master"
                                                                                       : "key"));
    return o;
}

json_t *
mg_openapi_document(const char *server_url)
{
    json_t *paths = json_object();
    for (const mg_openapi_op_t *op = mg_openapi_table; op->method != NULL; op++) {
        json_t *item = json_object_get(paths, op->path);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, op->path, item);
        }
        json_object_set_new(item, op->method, mg_openapi_operation(op));
    }
    json_error_t je;
    json_t *components = json_loads(mg_openapi_components, 0, &je);
    if (components == NULL) {
        /* a typo in the literal above: unit-tested, so it never ships */
        components = json_pack("{s:s}", "x-error", je.text);
    }
    json_t *tags = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},"
                             "{s:s,s:s},{s:s,s:s},{s:s,s:s}]",
                             "name", "llm", "description", "LLM calls, routed to deployments",
                             "name", "models", "description", "Model groups and deployments",
                             "name", "health", "description", "Probes",
                             "name", "policies", "description", "Routing, fallback, wildcard and "
                                                                "filter policies (Lua)",
                             "name", "admin", "description", "What every worker serves",
                             "name", "keys", "description", "Virtual keys, teams, users, end "
                                                            "users and budgets",
                             "name", "spend", "description", "Spend logs and totals",
                             "name", "cache", "description", "LiteLLM's cache routes",
                             "name", "ui", "description", "The admin page and this document");
    return json_pack("{s:s,s:{s:s,s:s,s:s},s:[{s:s}],s:o,s:o,s:o}", "openapi", "3.1.0", "info",
                     "title", "moongate", "version", MG_VERSION, "description",
                     "An LLM gateway compatible with the LiteLLM proxy API. Every path is under "
                     "the server URL (SERVER_ROOT_PATH).",
                     "servers", "url", server_url != NULL && server_url[0] ? server_url : "/",
                     "tags", tags, "paths", paths, "components", components);
}
