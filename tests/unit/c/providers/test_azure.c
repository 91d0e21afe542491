/*
 * test_azure.c -- core/providers/mg_provider_azure.c through the provider table
 * (mg_provider_find): the URLs, query and auth headers of Azure OpenAI and Azure AI
 * requests, the bodies Azure wants reshaped, the credential fingerprint, and Azure's error
 * mapping (content-filter refusals as LiteLLM's ContentPolicyViolationError).  Also the
 * Responses API rows of the OpenAI table.
 */
#include "mg_test.h"

#include "api/mg_api.h"
#include "base/mg_arena.h"
#include "providers/mg_provider.h"
#include "registry/mg_registry.h"

#include <jansson.h>

static mg_arena_t t_arena;

typedef struct {
    mg_deployment_t d;
    mg_api_req_t q;
    mg_buf_t head;
    mg_call_t c;
    mg_err_t err;
    mg_api_err_t aerr;
    int rc;
    char body[4096];
} t_call_t;

/* A deployment from litellm_params JSON text (model "azure/<dep>" or "azure_ai/<m>"). */
static void
t_dep(mg_deployment_t *d, const char *params)
{
    memset(d, 0, sizeof(*d));
    d->litellm_params = json_loads(params, 0, NULL);
    const char *model = json_string_value(json_object_get(d->litellm_params, "model"));
    const char *slash = strchr(model, '/');
    d->id = mg_xstrdup("dep-id-1");
    d->model_name = mg_xstrdup("group");
    d->litellm_model = mg_xstrdup(model);
    d->provider = mg_xstrndup(model, (size_t) (slash - model));
    d->upstream_model = mg_xstrdup(slash + 1);
    d->api_base = json_string_value(json_object_get(d->litellm_params, "api_base"));
    d->api_key = json_string_value(json_object_get(d->litellm_params, "api_key"));
    d->api_version = json_string_value(json_object_get(d->litellm_params, "api_version"));
    d->drop_params = -1;
}

static void
t_dep_free(mg_deployment_t *d)
{
    json_decref(d->litellm_params);
    free(d->id);
    free(d->model_name);
    free(d->litellm_model);
    free(d->provider);
    free(d->upstream_model);
}

/* Builds op with the client body (a chat or Responses body, spliced) on the deployment. */
static void
t_build(t_call_t *t, const char *params, mg_op_t op, mg_api_id_t api, const char *client_body,
        mg_resp_action_t action, const char *resp_id, const char *query)
{
    memset(t, 0, sizeof(*t));
    t_dep(&t->d, params);
    const mg_provider_t *p = mg_provider_find(t->d.provider);
    CHECK(p != NULL, "no provider %s", t->d.provider);
    mg_api_err_t perr;
    if (client_body != NULL) {
        CHECK_INT(mg_api_parse(mg_api_get(api), &t_arena, client_body, strlen(client_body), NULL,
                               &t->q, &perr), MG_OK);
    }
    mg_call_t c = {
        .dep = &t->d,
        .op = op,
        .wire = p->ops->wire(p, &t->d, op),
        .upstream_model = t->d.upstream_model,
        .client = client_body ? &t->q : NULL,
        .native = client_body != NULL,
        .arena = &t_arena,
        .head = &t->head,
        .resp_action = action,
        .resp_id = resp_id,
        .resp_query = query,
    };
    t->c = c;
    t->rc = p->ops->build(p, &t->c, &t->err, &t->aerr);
    if (t->rc == MG_OK) {
        size_t n = 0;
        for (int i = 1; i < t->c.body.niov && n < sizeof(t->body) - 1; i++) {
            size_t k = t->c.body.iov[i].iov_len;
            if (n + k >= sizeof(t->body)) {
                k = sizeof(t->body) - 1 - n;
            }
            memcpy(t->body + n, t->c.body.iov[i].iov_base, k);
            n += k;
        }
        t->body[n] = '\0';
    }
}

static void
t_free(t_call_t *t)
{
    mg_buf_free(&t->head);
    mg_api_req_free(&t->q);
    t_dep_free(&t->d);
}

/* The request line of the head ("POST /x HTTP/1.1"). */
static const char *
t_line(t_call_t *t)
{
    static char line[1024];
    const char *h = mg_buf_cstr(&t->head);
    size_t n = strcspn(h, "\r");
    snprintf(line, sizeof(line), "%.*s", (int) n, h);
    return line;
}

static const char *const CHAT = "{\"model\":\"group\",\"messages\":[{\"role\":\"user\","
                                "\"content\":\"hi\"}]}";

static void
test_azure_urls(void)
{
    MG_T_CASE("azure urls");
    unsetenv("AZURE_API_VERSION");
    t_call_t t;
    t_build(&t, "{\"model\":\"azure/my-dep\",\"api_base\":\"https://res.openai.azure.com/\","
                "\"api_key\":\"k1\"}", MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_INT(t.rc, MG_OK);
    CHECK_STR(t_line(&t), "POST /openai/deployments/my-dep/chat/completions"
                          "?api-version=2025-02-01-preview HTTP/1.1");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\nhost: res.openai.azure.com\r\n");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\napi-key: k1\r\n");
    CHECK(strstr(mg_buf_cstr(&t.head), "authorization") == NULL);
    CHECK_CONTAINS(t.body, "\"model\":\"my-dep\"");
    t_free(&t);

    /* the environment's version, then the deployment's */
    setenv("AZURE_API_VERSION", "2024-06-01", 1);
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\","
                "\"api_key\":\"k\"}", MG_OP_EMBEDDINGS, MG_API_OPENAI_EMBEDDINGS,
            "{\"model\":\"g\",\"input\":\"x\"}", 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /openai/deployments/d/embeddings?api-version=2024-06-01 HTTP/1.1");
    t_free(&t);
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\","
                "\"api_key\":\"k\",\"api_version\":\"2024-10-21\"}", MG_OP_COMPLETION,
            MG_API_OPENAI_COMPLETIONS, "{\"model\":\"g\",\"prompt\":\"x\"}", 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /openai/deployments/d/completions?api-version=2024-10-21 HTTP/1.1");
    t_free(&t);
    unsetenv("AZURE_API_VERSION");

    /* the v1 API: named by api_base or by the version; the deployment is the body's model */
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com/openai/v1/\","
                "\"api_key\":\"k\"}", MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /openai/v1/chat/completions HTTP/1.1");
    CHECK_CONTAINS(t.body, "\"model\":\"d\"");
    t_free(&t);
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\","
                "\"api_key\":\"k\",\"api_version\":\"preview\"}", MG_OP_EMBEDDINGS,
            MG_API_OPENAI_EMBEDDINGS, "{\"model\":\"g\",\"input\":\"x\"}", 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /openai/v1/embeddings HTTP/1.1");
    t_free(&t);

    /* a full deployment URL as api_base, and an api-version already in it */
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com/openai/"
                "deployments/other?api-version=2023-05-15\",\"api_key\":\"k\"}", MG_OP_CHAT,
            MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /openai/deployments/other/chat/completions?api-version=2023-05-15 "
                          "HTTP/1.1");
    t_free(&t);
    /* a resource path prefix (an APIM gateway) stays in front */
    t_build(&t, "{\"model\":\"azure/d e\",\"api_base\":\"https://gw.example/team-a/openai\","
                "\"api_key\":\"k\"}", MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /team-a/openai/deployments/d%20e/chat/completions"
                          "?api-version=2025-02-01-preview HTTP/1.1");
    t_free(&t);
}

static void
test_azure_responses(void)
{
    MG_T_CASE("azure responses");
    unsetenv("AZURE_DEFAULT_RESPONSES_API_VERSION");
    const char *body = "{\"model\":\"group\",\"input\":[{\"type\":\"message\",\"role\":\"user\","
                       "\"status\":\"completed\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
                       "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]}";
    t_call_t t;
    /* LiteLLM's default for the Responses API is "preview", which is the v1 API */
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\","
                "\"api_key\":\"k\"}", MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES, body,
            MG_RESP_CREATE, NULL, NULL);
    CHECK_INT(t.rc, MG_OK);
    CHECK_STR(t_line(&t), "POST /openai/v1/responses?api-version=preview HTTP/1.1");
    json_t *j = json_loads(t.body, 0, NULL);
    CHECK(j != NULL, "%s", t.body);
    /* Azure refuses status on input messages and wants function tools flat */
    CHECK(json_object_get(json_array_get(json_object_get(j, "input"), 0), "status") == NULL);
    json_t *tool = json_array_get(json_object_get(j, "tools"), 0);
    CHECK(json_object_get(tool, "function") == NULL);
    CHECK_STR(json_string_value(json_object_get(tool, "name")), "f");
    CHECK_STR(json_string_value(json_object_get(j, "model")), "d");
    json_decref(j);
    t_free(&t);

    /* a dated version: /openai/responses; a stored response: its own path and method */
    const char *dated = "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\","
                        "\"api_key\":\"k\",\"api_version\":\"2025-04-01-preview\"}";
    t_build(&t, dated, MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES,
            "{\"model\":\"g\",\"input\":\"x\"}", MG_RESP_CREATE, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /openai/responses?api-version=2025-04-01-preview HTTP/1.1");
    t_free(&t);
    t_build(&t, dated, MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES, NULL, MG_RESP_GET, "resp_1",
            NULL);
    CHECK_STR(t_line(&t), "GET /openai/responses/resp_1?api-version=2025-04-01-preview HTTP/1.1");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "content-length: 0\r\n");
    t_free(&t);
    t_build(&t, dated, MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES, NULL, MG_RESP_DELETE, "resp_1",
            NULL);
    CHECK_STR(t_line(&t), "DELETE /openai/responses/resp_1?api-version=2025-04-01-preview "
                          "HTTP/1.1");
    t_free(&t);
    t_build(&t, dated, MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES, NULL, MG_RESP_INPUT_ITEMS,
            "resp_1", "limit=5&order=asc");
    CHECK_STR(t_line(&t), "GET /openai/responses/resp_1/input_items?limit=5&order=asc"
                          "&api-version=2025-04-01-preview HTTP/1.1");
    t_free(&t);
    t_build(&t, dated, MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES, NULL, MG_RESP_CANCEL, "resp_1",
            NULL);
    CHECK_STR(t_line(&t), "POST /openai/responses/resp_1/cancel?api-version=2025-04-01-preview "
                          "HTTP/1.1");
    t_free(&t);
}

static void
test_azure_auth(void)
{
    MG_T_CASE("azure auth");
    unsetenv("AZURE_AD_TOKEN");
    unsetenv("AZURE_API_KEY");
    unsetenv("AZURE_OPENAI_API_KEY");
    unsetenv("AZURE_TENANT_ID");
    unsetenv("AZURE_CLIENT_ID");
    unsetenv("AZURE_CLIENT_SECRET");
    t_call_t t;
    /* a configured Entra token wins over a key */
    t_build(&t, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\","
                "\"api_key\":\"k\",\"azure_ad_token\":\"tok-1\"}", MG_OP_CHAT, MG_API_OPENAI_CHAT,
            CHAT, 0, NULL, NULL);
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\nauthorization: Bearer tok-1\r\n");
    CHECK(strstr(mg_buf_cstr(&t.head), "api-key:") == NULL);
    t_free(&t);
    /* the environment: AZURE_OPENAI_API_KEY before AZURE_API_KEY, a key before AZURE_AD_TOKEN */
    setenv("AZURE_API_KEY", "env-k2", 1);
    setenv("AZURE_OPENAI_API_KEY", "env-k1", 1);
    setenv("AZURE_AD_TOKEN", "env-tok", 1);
    const char *nokey = "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\"}";
    t_build(&t, nokey, MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\napi-key: env-k1\r\n");
    t_free(&t);
    unsetenv("AZURE_OPENAI_API_KEY");
    unsetenv("AZURE_API_KEY");
    t_build(&t, nokey, MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\nauthorization: Bearer env-tok\r\n");
    t_free(&t);
    unsetenv("AZURE_AD_TOKEN");
    /* nothing at all: LiteLLM's "Missing credentials", and a word on Entra when it is set up */
    t_build(&t, nokey, MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_INT(t.rc, MG_ERROR);
    CHECK_INT(t.err.cls, MG_ERR_AUTH);
    CHECK_INT(t.err.status, 401);
    CHECK_CONTAINS(t.err.msg, "AuthenticationError: AzureException - Missing credentials");
    CHECK(strstr(t.err.msg, "Entra") == NULL);
    t_free(&t);
    setenv("AZURE_TENANT_ID", "t", 1);
    setenv("AZURE_CLIENT_ID", "c", 1);
    setenv("AZURE_CLIENT_SECRET", "s3cr3t-value", 1);
    t_build(&t, nokey, MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_INT(t.rc, MG_ERROR);
    CHECK_CONTAINS(t.err.msg, "does not obtain Entra ID tokens yet");
    CHECK(strstr(t.err.msg, "s3cr3t-value") == NULL);
    t_free(&t);
    unsetenv("AZURE_TENANT_ID");
    unsetenv("AZURE_CLIENT_ID");
    unsetenv("AZURE_CLIENT_SECRET");
}

static void
test_azure_fingerprint(void)
{
    MG_T_CASE("azure fingerprint");
    const mg_provider_t *p = mg_provider_find("azure");
    mg_deployment_t d;
    t_dep(&d, "{\"model\":\"azure/d\",\"api_base\":\"https://r.openai.azure.com\"}");
    char h0[65], h1[65], h2[65], h3[65];
    unsetenv("AZURE_AD_TOKEN");
    mg_provider_cred_hash(p, &d, h0);
    setenv("AZURE_AD_TOKEN", "tok-a", 1);
    mg_provider_cred_hash(p, &d, h1);
    setenv("AZURE_AD_TOKEN", "tok-b", 1);
    mg_provider_cred_hash(p, &d, h2);
    unsetenv("AZURE_AD_TOKEN");
    setenv("AZURE_OPENAI_API_KEY", "k-env", 1);
    mg_provider_cred_hash(p, &d, h3);
    unsetenv("AZURE_OPENAI_API_KEY");
    CHECK(strcmp(h0, h1) != 0);
    CHECK(strcmp(h1, h2) != 0);
    CHECK(strcmp(h0, h3) != 0);
    t_dep_free(&d);
    /* a rotated key or token in litellm_params is a new client */
    mg_deployment_t a, b;
    t_dep(&a, "{\"model\":\"azure/d\",\"api_base\":\"https://r\",\"azure_ad_token\":\"t1\"}");
    t_dep(&b, "{\"model\":\"azure/d\",\"api_base\":\"https://r\",\"azure_ad_token\":\"t2\"}");
    mg_provider_cred_hash(p, &a, h0);
    mg_provider_cred_hash(p, &b, h1);
    CHECK(strcmp(h0, h1) != 0);
    t_dep_free(&a);
    t_dep_free(&b);
    /* every Azure credential is a secret: redacted, scrubbed, never shown */
    CHECK(mg_registry_secret_key("azure_ad_token"));
    CHECK(mg_registry_secret_key("client_secret"));
    CHECK(mg_registry_secret_key("api_key"));
    CHECK(mg_registry_secret_key("azure_password"));
}

/* ---- error mapping ---- */

static void
t_map(const char *name, int status, const char *body, mg_uperr_t *e)
{
    mg_provider_error_http(mg_provider_find(name), name, MG_WIRE_OPENAI, status, body,
                           strlen(body), e);
}

static void
test_azure_errors(void)
{
    MG_T_CASE("azure errors");
    mg_uperr_t e;
    const char *filtered =
        "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering Azure "
        "OpenAI's content management policy. Please modify your prompt and retry.\",\"type\":null,"
        "\"param\":\"prompt\",\"code\":\"content_filter\",\"status\":400,\"innererror\":{\"code\":"
        "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{\"violence\":{\"filtered\":"
        "true,\"severity\":\"medium\"}}}}}";
    t_map("azure", 400, filtered, &e);
    CHECK_INT(e.status, 400);
    CHECK(e.content_policy);
    CHECK_INT(e.cls, MG_ERR_CONTENT_POLICY);
    /* LiteLLM's class prefixes a message that already has the prefix */
    CHECK_STR(e.message, "litellm.ContentPolicyViolationError: litellm.ContentPolicyViolationError: "
                         "AzureException - The response was filtered due to the prompt triggering "
                         "Azure OpenAI's content management policy. Please modify your prompt and "
                         "retry.");
    mg_uperr_free(&e);
    /* the structured signs alone */
    t_map("azure", 400, "{\"error\":{\"message\":\"blocked\",\"code\":\"content_filter\"}}", &e);
    CHECK(e.content_policy);
    mg_uperr_free(&e);
    t_map("azure", 400, "{\"error\":{\"message\":\"no\",\"code\":\"invalid_request_error\","
                        "\"inner_error\":{\"code\":\"ResponsibleAIPolicyViolation\"}}}", &e);
    CHECK(e.content_policy);
    mg_uperr_free(&e);

    t_map("azure", 404, "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API "
                        "deployment for this resource does not exist.\"}}", &e);
    CHECK_INT(e.status, 404);
    CHECK(e.not_found);
    CHECK_STR(e.message, "litellm.NotFoundError: AzureException NotFoundError - The API deployment "
                         "for this resource does not exist.");
    mg_uperr_free(&e);
    t_map("azure", 429, "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the ChatCompletions"
                        " Operation have exceeded call rate limit.\"}}", &e);
    CHECK_INT(e.status, 429);
    CHECK(e.rate_limit);
    CHECK_INT(e.cls, MG_ERR_RATE_LIMITED);
    CHECK_STR(e.message, "litellm.RateLimitError: AzureException RateLimitError - Requests to the "
                         "ChatCompletions Operation have exceeded call rate limit.");
    mg_uperr_free(&e);
    t_map("azure", 401, "{\"error\":{\"code\":\"401\",\"message\":\"Access denied\"}}", &e);
    CHECK_INT(e.status, 401);
    CHECK(e.auth);
    CHECK_STR(e.message, "litellm.AuthenticationError: AzureException AuthenticationError - Access "
                         "denied");
    mg_uperr_free(&e);
    t_map("azure", 400, "{\"error\":{\"message\":\"This model's maximum context length is 8192 "
                        "tokens.\",\"type\":\"invalid_request_error\",\"code\":"
                        "\"context_length_exceeded\"}}", &e);
    CHECK(e.context_window);
    CHECK_CONTAINS(e.message, "litellm.ContextWindowExceededError: AzureException "
                              "ContextWindowExceededError - This model's maximum");
    mg_uperr_free(&e);
    t_map("azure", 400, "{\"error\":{\"message\":\"bad temperature\",\"type\":"
                        "\"invalid_request_error\"}}", &e);
    CHECK_INT(e.cls, MG_ERR_BAD_REQUEST);
    CHECK_STR(e.message, "litellm.BadRequestError: AzureException BadRequestError - bad temperature");
    mg_uperr_free(&e);
    t_map("azure", 503, "{\"error\":{\"message\":\"busy\"}}", &e);
    CHECK_STR(e.message, "litellm.ServiceUnavailableError: AzureException ServiceUnavailableError - "
                         "busy");
    mg_uperr_free(&e);
    t_map("azure", 500, "{\"error\":{\"message\":\"Internal server error\"}}", &e);
    CHECK_INT(e.status, 500);
    CHECK_STR(e.message, "litellm.InternalServerError: AzureException Internal server error - "
                         "Internal server error");
    mg_uperr_free(&e);
    /* Azure AI maps like OpenAI, under its own name */
    t_map("azure_ai", 429, "{\"error\":{\"message\":\"slow down\"}}", &e);
    CHECK_INT(e.status, 429);
    CHECK_CONTAINS(e.message, "Azure_aiException - slow down");
    mg_uperr_free(&e);
}

/* ---- Azure AI ---- */

static void
test_azure_ai(void)
{
    MG_T_CASE("azure_ai");
    t_call_t t;
    const char *listed = "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":["
                         "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
                         "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                         "{\"url\":\"http://x/i.png\"}}]}]}";
    t_build(&t, "{\"model\":\"azure_ai/mistral-large\",\"api_base\":\"https://proj.services.ai."
                "azure.com\",\"api_key\":\"ak\"}", MG_OP_CHAT, MG_API_OPENAI_CHAT, listed, 0, NULL,
            NULL);
    CHECK_INT(t.rc, MG_OK);
    CHECK_STR(t_line(&t), "POST /models/chat/completions HTTP/1.1");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\napi-key: ak\r\n");
    json_t *j = json_loads(t.body, 0, NULL);
    /* text-only lists become one string; a list with an image stays */
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "messages"), 0),
                                                "content")), "ab");
    CHECK(json_is_array(json_object_get(json_array_get(json_object_get(j, "messages"), 1),
                                        "content")));
    CHECK_STR(json_string_value(json_object_get(j, "model")), "mistral-large");
    json_decref(j);
    t_free(&t);
    /* another host: a bearer, /chat/completions, api-version only when configured */
    t_build(&t, "{\"model\":\"azure_ai/m\",\"api_base\":\"https://m.eastus.models.ai.example\","
                "\"api_key\":\"ak\",\"api_version\":\"2024-05-01-preview\"}", MG_OP_CHAT,
            MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /chat/completions?api-version=2024-05-01-preview HTTP/1.1");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\nauthorization: Bearer ak\r\n");
    t_free(&t);
    /* a base that already ends with the route keeps it once */
    t_build(&t, "{\"model\":\"azure_ai/m\",\"api_base\":\"https://x.services.ai.azure.com/models/"
                "chat/completions\",\"api_key\":\"ak\"}", MG_OP_CHAT, MG_API_OPENAI_CHAT, CHAT, 0,
            NULL, NULL);
    CHECK_STR(t_line(&t), "POST /models/chat/completions HTTP/1.1");
    t_free(&t);
    t_build(&t, "{\"model\":\"azure_ai/cohere-embed\",\"api_base\":\"https://x.services.ai.azure."
                "com\",\"api_key\":\"ak\"}", MG_OP_EMBEDDINGS, MG_API_OPENAI_EMBEDDINGS,
            "{\"model\":\"g\",\"input\":\"x\"}", 0, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /embeddings HTTP/1.1");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\nauthorization: Bearer ak\r\n");
    t_free(&t);
    unsetenv("AZURE_AI_API_KEY");
    t_build(&t, "{\"model\":\"azure_ai/m\",\"api_base\":\"https://x\"}", MG_OP_CHAT,
            MG_API_OPENAI_CHAT, CHAT, 0, NULL, NULL);
    CHECK_INT(t.rc, MG_ERROR);
    CHECK_INT(t.err.cls, MG_ERR_AUTH);
    CHECK_CONTAINS(t.err.msg, "AZURE_AI_API_KEY");
    t_free(&t);
}

static void
test_wires(void)
{
    MG_T_CASE("wires");
    mg_deployment_t d;
    t_dep(&d, "{\"model\":\"openai/gpt-4o\"}");
    /* the Responses API natively, or (the rest) through chat completions */
    struct {
        const char *name;
        bool native;
    } rows[] = {
        {"openai", true}, {"azure", true}, {"azure_ai", false}, {"groq", false},
        {"hosted_vllm", false}, {"anthropic", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const mg_provider_t *p = mg_provider_find(rows[i].name);
        CHECK(p != NULL, "%s", rows[i].name);
        if (p != NULL) {
            CHECK((p->ops->wire(p, &d, MG_OP_RESPONSES) == MG_WIRE_OPENAI_RESPONSES) ==
                      rows[i].native, "%s", rows[i].name);
            CHECK(p->ops->wire(p, &d, MG_OP_CHAT) != MG_WIRE_NONE, "%s", rows[i].name);
        }
    }
    t_dep_free(&d);
    /* OpenAI's own stored-response routes */
    t_call_t t;
    t_build(&t, "{\"model\":\"openai/gpt-4o\",\"api_base\":\"https://api.openai.com/v1\","
                "\"api_key\":\"sk-1\"}", MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES, NULL,
            MG_RESP_INPUT_ITEMS, "resp_a/b", "limit=2");
    CHECK_STR(t_line(&t), "GET /v1/responses/resp_a%2Fb/input_items?limit=2 HTTP/1.1");
    CHECK_CONTAINS(mg_buf_cstr(&t.head), "\r\nauthorization: Bearer sk-1\r\n");
    t_free(&t);
    t_build(&t, "{\"model\":\"openai/gpt-4o\",\"api_base\":\"https://api.openai.com/v1\","
                "\"api_key\":\"sk-1\"}", MG_OP_RESPONSES, MG_API_OPENAI_RESPONSES,
            "{\"model\":\"g\",\"input\":\"x\"}", MG_RESP_CREATE, NULL, NULL);
    CHECK_STR(t_line(&t), "POST /v1/responses HTTP/1.1");
    CHECK_CONTAINS(t.body, "\"model\":\"gpt-4o\"");
    t_free(&t);
}

int
main(void)
{
    mg_arena_init(&t_arena, 8192);
    test_azure_urls();
    test_azure_responses();
    test_azure_auth();
    test_azure_fingerprint();
    test_azure_errors();
    test_azure_ai();
    test_wires();
    mg_arena_destroy(&t_arena);
    return mg_test_done();
}
