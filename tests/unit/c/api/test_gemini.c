/*
 * test_gemini.c -- core/api/mg_api_gemini.c (the Gemini wire) and the Google providers'
 * error mapping (core/providers/vertex/mg_google.h), through the public API.
 *
 *   requests:  neutral OpenAI chat / embeddings -> generateContent, batchEmbedContents and
 *              Vertex :predict bodies (mg_api_build), as LiteLLM's VertexGeminiConfig maps
 *              them: roles, merging, system instruction, images, tool calls and results,
 *              generationConfig, response_format schemas, thinking, tools and tool_choice,
 *              refused and dropped parameters;
 *   responses: the fixture bodies and streams (tests/fixtures/providers/{gemini,vertex}/)
 *              decoded to neutral events, and through the OpenAI encoder to what a client
 *              receives (finish reasons, usage, embeddings as floats and as base64);
 *   errors:    Google error bodies in LiteLLM's exception classes and messages.
 */
#include "mg_test.h"

#include "api/mg_api.h"
#include "base/mg_buf.h"
#include "http/mg_sse.h"
#include "providers/vertex/mg_google.h"

#include <jansson.h>
#include <math.h>

/* ---- fixtures ---- */

static char *
t_fixture(const char *rel)
{
    const char *src = getenv("MG_TEST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/providers/%s",
             src != NULL && src[0] != '\0' ? src : ".", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        MG_T_FAIL_AT("cannot open fixture %s (set MG_TEST_SOURCE_DIR)", path);
        return mg_xstrdup("{}");
    }
    mg_buf_t b = MG_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        mg_buf_append(&b, chunk, n);
    }
    fclose(f);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* ---- building ---- */

/* Builds the body for the neutral request text; NULL on a refusal (err filled). */
static json_t *
t_build(mg_op_t op, const char *neutral, const char *model, const char *provider,
        bool drop, mg_api_err_t *err)
{
    json_t *n = json_loads(neutral, 0, NULL);
    if (n == NULL) {
        MG_T_FAIL_AT("bad neutral JSON in test: %s", neutral);
        return NULL;
    }
    mg_body_opts_t o = {.model = model, .provider = provider, .drop_params = drop};
    mg_buf_t out = MG_BUF_INIT;
    int rc = mg_api_build(MG_WIRE_GEMINI, op, n, &o, &out, err);
    json_decref(n);
    json_t *b = NULL;
    if (rc == MG_OK) {
        b = json_loadb(mg_buf_head(&out), mg_buf_len(&out), 0, NULL);
        CHECK(b != NULL, "the built body is JSON: %s", mg_buf_cstr(&out));
    }
    mg_buf_free(&out);
    return b;
}

static json_t *
t_chat(const char *neutral)
{
    mg_api_err_t err;
    json_t *b = t_build(MG_OP_CHAT, neutral, "gemini-2.0-flash", "gemini", false, &err);
    CHECK(b != NULL, "build refused: %s", b == NULL ? err.msg : "");
    return b;
}

/* A path like "contents.1.parts.0.text" into j. */
static json_t *
t_at(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, ".")) {
        if (json_is_array(cur)) {
            cur = json_array_get(cur, (size_t) atoi(tok));
        } else {
            cur = json_object_get(cur, tok);
        }
    }
    return cur;
}

#define CHECK_JSTR(j, path, want)                                                                  \
    do {                                                                                           \
        json_t *mg_t_v = t_at((j), (path));                                                        \
        CHECK_STR(json_is_string(mg_t_v) ? json_string_value(mg_t_v) : "(not a string)", (want));  \
    } while (0)

#define CHECK_JNUM(j, path, want)                                                                  \
    do {                                                                                           \
        json_t *mg_t_v = t_at((j), (path));                                                        \
        CHECK(json_is_number(mg_t_v) && json_number_value(mg_t_v) == (double) (want),              \
              "%s is %g, expected %g", (path), json_is_number(mg_t_v) ? json_number_value(mg_t_v) \
                                                                       : NAN, (double) (want));    \
    } while (0)

#define CHECK_ABSENT(j, path) CHECK(t_at((j), (path)) == NULL, "%s is present", (path))

static void
test_roles_and_parts(void)
{
    MG_T_CASE("messages: system instruction, roles user/model, merging, media parts");
    json_t *b = t_chat(
        "{\"model\":\"m\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look:\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
        "{\"type\":\"image_url\",\"image_url\":\"https://example.com/cat.JPG\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"gs://bucket/doc.pdf\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Nice.\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Really.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/jpeg;base64,/9j/4AAQ\"}}]}]}");
    if (b == NULL) {
        return;
    }
    CHECK_JSTR(b, "systemInstruction.parts.0.text", "Be brief.");
    CHECK_INT(json_array_size(json_object_get(b, "contents")), 3);
    CHECK_JSTR(b, "contents.0.role", "user");
    CHECK_JSTR(b, "contents.0.parts.0.text", "Hi");
    CHECK_JSTR(b, "contents.0.parts.1.text", "Look:");
    CHECK_JSTR(b, "contents.0.parts.2.inlineData.mimeType", "image/png");
    CHECK_JSTR(b, "contents.0.parts.2.inlineData.data", "iVBORw0KGgo=");
    CHECK_JSTR(b, "contents.0.parts.3.fileData.mimeType", "image/jpeg");
    CHECK_JSTR(b, "contents.0.parts.3.fileData.fileUri", "https://example.com/cat.JPG");
    CHECK_JSTR(b, "contents.0.parts.4.fileData.mimeType", "application/pdf");
    CHECK_JSTR(b, "contents.1.role", "model");
    CHECK_JSTR(b, "contents.1.parts.0.text", "Nice.");
    CHECK_JSTR(b, "contents.1.parts.1.text", "Really.");
    /* an image alone gets a blank text part (Vertex refuses a turn without text) */
    CHECK_JSTR(b, "contents.2.parts.0.inlineData.mimeType", "image/jpeg");
    CHECK_JSTR(b, "contents.2.parts.1.text", " ");
    CHECK_ABSENT(b, "generationConfig");
    CHECK_ABSENT(b, "model");
    json_decref(b);

    MG_T_CASE("messages: no contents at all still sends one");
    b = t_chat("{\"messages\":[{\"role\":\"system\",\"content\":\"only a system\"}]}");
    CHECK_JSTR(b, "contents.0.parts.0.text", " ");
    json_decref(b);

    MG_T_CASE("messages: a URL moongate would have to download is refused");
    mg_api_err_t err;
    b = t_build(MG_OP_CHAT,
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                "\"image_url\":{\"url\":\"http://example.com/picture\"}}]}]}",
                "gemini-2.0-flash", "gemini", false, &err);
    CHECK(b == NULL);
    CHECK_INT(err.status, 400);
    CHECK_CONTAINS(err.msg, "does not download");
}

static void
test_tools_roundtrip(void)
{
    MG_T_CASE("tools: declarations, calls and results named after their call");
    json_t *b = t_chat(
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
        "\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\","
        "\"text\":\"noon\"}]},"
        "{\"role\":\"user\",\"content\":\"thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Weather\",\"strict\":true,\"parameters\":{\"type\":\"object\","
        "\"additionalProperties\":false,\"$schema\":\"http://json-schema.org/draft-07/schema#\","
        "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"anyOf\":["
        "{\"type\":\"string\",\"enum\":[\"c\",\"\"]},{\"type\":\"null\"}]},"
        "\"where\":{\"$ref\":\"#/$defs/Place\"}},\"required\":[\"city\"],"
        "\"$defs\":{\"Place\":{\"properties\":{\"lat\":{\"type\":\"number\"}}}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},"
        "{\"googleSearch\":{}}],"
        "\"tool_choice\":\"required\"}");
    if (b == NULL) {
        return;
    }
    CHECK_JSTR(b, "contents.1.role", "model");
    CHECK_JSTR(b, "contents.1.parts.0.functionCall.name", "get_weather");
    CHECK_JSTR(b, "contents.1.parts.0.functionCall.args.city", "Paris");
    CHECK(json_is_object(t_at(b, "contents.1.parts.1.functionCall.args")), "empty args -> {}");
    CHECK_JSTR(b, "contents.2.role", "user");
    CHECK_JSTR(b, "contents.2.parts.0.functionResponse.name", "get_weather");
    CHECK_JSTR(b, "contents.2.parts.0.functionResponse.response.content", "18C");
    CHECK_JSTR(b, "contents.2.parts.1.functionResponse.name", "get_time");
    CHECK_JSTR(b, "contents.2.parts.1.functionResponse.response.content", "noon");
    CHECK_JSTR(b, "contents.3.parts.0.text", "thanks");
    CHECK_INT(json_array_size(json_object_get(b, "tools")), 1);
    CHECK_JSTR(b, "tools.0.functionDeclarations.0.name", "get_weather");
    CHECK_JSTR(b, "tools.0.functionDeclarations.0.description", "Weather");
    json_t *params = t_at(b, "tools.0.functionDeclarations.0.parameters");
    CHECK(params != NULL);
    CHECK_ABSENT(params, "additionalProperties");
    CHECK_ABSENT(params, "$schema");
    CHECK_ABSENT(params, "$defs");
    CHECK_ABSENT(params, "strict");
    CHECK_JSTR(params, "properties.unit.type", "string");
    CHECK(json_is_true(t_at(params, "properties.unit.nullable")), "anyOf null -> nullable");
    CHECK(json_is_null(t_at(params, "properties.unit.enum.1")), "\"\" enum -> null");
    CHECK_JSTR(params, "properties.where.type", "object"); /* $ref expanded, type added */
    CHECK_JSTR(params, "properties.where.properties.lat.type", "number");
    CHECK_ABSENT(params, "propertyOrdering"); /* only response schemas get it */
    CHECK_JSTR(b, "tools.0.functionDeclarations.1.name", "get_time");
    CHECK(json_is_object(t_at(b, "tools.0.googleSearch")));
    CHECK_JSTR(b, "toolConfig.functionCallingConfig.mode", "ANY");
    json_decref(b);

    MG_T_CASE("tool_choice: none, auto, a named function; an unknown value refused");
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"none\"}");
    CHECK_JSTR(b, "toolConfig.functionCallingConfig.mode", "NONE");
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"}");
    CHECK_JSTR(b, "toolConfig.functionCallingConfig.mode", "AUTO");
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":"
               "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}");
    CHECK_JSTR(b, "toolConfig.functionCallingConfig.mode", "ANY");
    CHECK_JSTR(b, "toolConfig.functionCallingConfig.allowedFunctionNames.0", "get_weather");
    json_decref(b);
    mg_api_err_t err;
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"tool_choice\":\"sometimes\"}",
                "gemini-2.0-flash", "gemini", false, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "VertexAI doesn't support tool_choice=\"sometimes\"");
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"tool_choice\":\"sometimes\"}",
                "gemini-2.0-flash", "gemini", true, &err);
    CHECK(b != NULL && t_at(b, "toolConfig") == NULL, "dropped with drop_params");
    json_decref(b);

    MG_T_CASE("a tool result with no matching call is refused");
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                            "{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"r\"}]}",
                "gemini-2.0-flash", "gemini", false, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "Missing corresponding tool call");
}

static void
test_generation_config(void)
{
    MG_T_CASE("generationConfig from OpenAI's parameters");
    json_t *b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"temperature\":0.3,\"top_p\":0.9,\"top_k\":20,\"max_tokens\":77,"
                       "\"stop\":\"END\",\"n\":2,\"seed\":7,\"presence_penalty\":0.5,"
                       "\"frequency_penalty\":0.25,\"logprobs\":true,\"top_logprobs\":3,"
                       "\"modalities\":[\"text\",\"image\"],\"user\":\"u-1\","
                       "\"stream_options\":{\"include_usage\":true}}");
    if (b == NULL) {
        return;
    }
    json_t *gc = json_object_get(b, "generationConfig");
    CHECK_JNUM(gc, "temperature", 0.3);
    CHECK_JNUM(gc, "topP", 0.9);
    CHECK_JNUM(gc, "topK", 20);
    CHECK_JNUM(gc, "maxOutputTokens", 77);
    CHECK_JSTR(gc, "stopSequences.0", "END");
    CHECK_JNUM(gc, "candidateCount", 2);
    CHECK_JNUM(gc, "seed", 7);
    CHECK_JNUM(gc, "presencePenalty", 0.5);
    CHECK_JNUM(gc, "frequencyPenalty", 0.25);
    CHECK(json_is_true(json_object_get(gc, "responseLogprobs")));
    CHECK_JNUM(gc, "logprobs", 3);
    CHECK_JSTR(gc, "responseModalities.1", "IMAGE");
    CHECK_ABSENT(b, "user");
    CHECK_ABSENT(b, "stream_options");
    CHECK_ABSENT(b, "temperature");
    json_decref(b);

    MG_T_CASE("max_completion_tokens wins; stop as a list");
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,"
               "\"max_completion_tokens\":9,\"stop\":[\"a\",\"b\"]}");
    CHECK_JNUM(b, "generationConfig.maxOutputTokens", 9);
    CHECK_JSTR(b, "generationConfig.stopSequences.1", "b");
    json_decref(b);

    MG_T_CASE("response_format: json_object, json_schema (with property ordering), text");
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"response_format\":{\"type\":\"json_object\"}}");
    CHECK_JSTR(b, "generationConfig.responseMimeType", "application/json");
    CHECK_ABSENT(b, "generationConfig.responseSchema");
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\","
               "\"strict\":true,\"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
               "\"properties\":{\"b\":{\"type\":\"integer\"},\"a\":{\"type\":[\"string\","
               "\"null\"]}},\"required\":[\"b\"]}}}}");
    CHECK_JSTR(b, "generationConfig.responseMimeType", "application/json");
    json_t *rs = t_at(b, "generationConfig.responseSchema");
    CHECK_JSTR(rs, "type", "object");
    CHECK_ABSENT(rs, "additionalProperties");
    CHECK_JSTR(rs, "propertyOrdering.0", "b");
    CHECK_JSTR(rs, "propertyOrdering.1", "a");
    CHECK_JSTR(rs, "properties.a.type", "string");
    CHECK(json_is_true(t_at(rs, "properties.a.nullable")));
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"response_format\":{\"type\":\"text\"}}");
    CHECK_JSTR(b, "generationConfig.responseMimeType", "text/plain");
    json_decref(b);

    MG_T_CASE("thinking: reasoning_effort and thinking as LiteLLM maps them");
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"low\"}");
    CHECK_JNUM(b, "generationConfig.thinkingConfig.thinkingBudget", 1024);
    CHECK(json_is_true(t_at(b, "generationConfig.thinkingConfig.includeThoughts")));
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"high\"}");
    CHECK_JNUM(b, "generationConfig.thinkingConfig.thinkingBudget", 4096);
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"none\"}");
    CHECK_JNUM(b, "generationConfig.thinkingConfig.thinkingBudget", 0);
    CHECK(json_is_false(t_at(b, "generationConfig.thinkingConfig.includeThoughts")));
    json_decref(b);
    mg_api_err_t err;
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"reasoning_effort\":\"minimal\"}",
                "gemini-2.5-flash", "gemini", false, &err);
    CHECK_JNUM(b, "generationConfig.thinkingConfig.thinkingBudget", 1);
    json_decref(b);
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"reasoning_effort\":\"medium\"}",
                "gemini-3-pro-preview", "gemini", false, &err);
    CHECK_JSTR(b, "generationConfig.thinkingConfig.thinkingLevel", "high");
    CHECK_JNUM(b, "generationConfig.temperature", 1.0); /* Gemini 3's default */
    json_decref(b);
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                "gemini-3-pro-preview", "gemini", false, &err);
    CHECK_JSTR(b, "generationConfig.thinkingConfig.thinkingLevel", "low");
    json_decref(b);
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":"
               "{\"type\":\"enabled\",\"budget_tokens\":2048}}");
    CHECK_JNUM(b, "generationConfig.thinkingConfig.thinkingBudget", 2048);
    CHECK(json_is_true(t_at(b, "generationConfig.thinkingConfig.includeThoughts")));
    json_decref(b);
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"reasoning_effort\":\"extreme\"}",
                "gemini-2.5-pro", "gemini", false, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "Invalid reasoning effort: extreme");

    MG_T_CASE("assistant reasoning goes back as thought parts");
    b = t_chat("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
               "\"content\":\"a\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
               "\"signature\":\"c2ln\"}]},{\"role\":\"user\",\"content\":\"q2\"}]}");
    CHECK(json_is_true(t_at(b, "contents.1.parts.0.thought")));
    CHECK_JSTR(b, "contents.1.parts.0.thoughtSignature", "c2ln");
    CHECK_JSTR(b, "contents.1.parts.1.text", "a");
    json_decref(b);
}

static void
test_refused_params(void)
{
    MG_T_CASE("parameters Gemini has no place for: refused, or dropped with drop_params");
    mg_api_err_t err;
    json_t *b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                    "\"logit_bias\":{\"1\":2},\"service_tier\":\"auto\"}",
                        "gemini-2.0-flash", "vertex_ai", false, &err);
    CHECK(b == NULL);
    CHECK_INT(err.status, 400);
    CHECK_CONTAINS(err.msg, "litellm.UnsupportedParamsError: vertex_ai does not support "
                            "parameters: ['logit_bias', 'service_tier'], for model=gemini-2.0-flash");
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"logit_bias\":{\"1\":2}}",
                "gemini-2.0-flash", "vertex_ai", true, &err);
    CHECK(b != NULL && t_at(b, "logit_bias") == NULL);
    json_decref(b);
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"presence_penalty\":0.1}",
                "gemini-3-pro-preview", "gemini", false, &err);
    CHECK(b == NULL, "Gemini 3 takes no penalties");
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"parallel_tool_calls\":false,\"tools\":["
                            "{\"type\":\"function\",\"function\":{\"name\":\"a\"}},"
                            "{\"type\":\"function\",\"function\":{\"name\":\"b\"}}]}",
                "gemini-2.0-flash", "gemini", false, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "`parallel_tool_calls=False` is not supported by Gemini");
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"labels\":{\"team\":\"a\"},\"safety_settings\":[{\"category\":"
                            "\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"BLOCK_NONE\"}]}",
                "gemini-2.0-flash", "vertex_ai", false, &err);
    CHECK_JSTR(b, "labels.team", "a");
    CHECK_JSTR(b, "safetySettings.0.threshold", "BLOCK_NONE");
    json_decref(b);
    b = t_build(MG_OP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                            "\"labels\":{\"team\":\"a\"}}",
                "gemini-2.0-flash", "gemini", false, &err);
    CHECK_ABSENT(b, "labels"); /* Vertex's only */
    json_decref(b);
}

static void
test_embeddings_build(void)
{
    MG_T_CASE("embeddings: batchEmbedContents (Gemini API) and :predict (Vertex)");
    mg_api_err_t err;
    json_t *b = t_build(MG_OP_EMBEDDINGS, "{\"model\":\"x\",\"input\":[\"a\",\"b\"],"
                                          "\"dimensions\":256,\"encoding_format\":\"base64\"}",
                        "text-embedding-004", "gemini", false, &err);
    CHECK_INT(json_array_size(json_object_get(b, "requests")), 2);
    CHECK_JSTR(b, "requests.0.model", "models/text-embedding-004");
    CHECK_JSTR(b, "requests.1.content.parts.0.text", "b");
    CHECK_JNUM(b, "requests.0.outputDimensionality", 256);
    CHECK_ABSENT(b, "encoding_format");
    json_decref(b);
    b = t_build(MG_OP_EMBEDDINGS, "{\"input\":\"one\"}", "text-embedding-005", "vertex_ai",
                false, &err);
    CHECK_JSTR(b, "instances.0.content", "one");
    CHECK_ABSENT(b, "parameters");
    json_decref(b);
    b = t_build(MG_OP_EMBEDDINGS, "{\"input\":[[1,2,3]]}", "text-embedding-004", "gemini", false,
                &err);
    CHECK(b == NULL, "token arrays refused");
    CHECK_INT(err.status, 400);
}

/* ---- decoding ---- */

typedef struct {
    mg_buf_t log;
    mg_usage_t usage;
} t_sink_t;

static void
t_sink(void *ud, const mg_ev_t *ev)
{
    t_sink_t *s = ud;
    mg_buf_t *l = &s->log;
    switch (ev->kind) {
    case MG_EV_START:
        mg_buf_printf(l, "START(%.*s,%.*s) ", (int) ev->id_len, ev->id ? ev->id : "",
                      (int) ev->name_len, ev->name ? ev->name : "");
        break;
    case MG_EV_TEXT:
        mg_buf_printf(l, "TEXT%d[%.*s] ", ev->index, (int) ev->text_len, ev->text);
        break;
    case MG_EV_REASONING:
        mg_buf_printf(l, "THINK%d[%.*s] ", ev->index, (int) ev->text_len, ev->text);
        break;
    case MG_EV_TOOL:
        mg_buf_printf(l, "TOOL%d.%d(%s,%.*s,%.*s) ", ev->index, ev->tool,
                      ev->id && strncmp(ev->id, "call_", 5) == 0 ? "call_" : "?",
                      (int) ev->name_len, ev->name, (int) ev->text_len, ev->text);
        break;
    case MG_EV_FINISH:
        mg_buf_printf(l, "FINISH%d(%s) ", ev->index, mg_finish_openai(ev->finish));
        break;
    case MG_EV_USAGE:
        mg_buf_append_str(l, "USAGE ");
        break;
    case MG_EV_ERROR:
        mg_buf_printf(l, "ERROR(%d,%s,%.*s) ", ev->status, ev->etype ? ev->etype : "",
                      (int) ev->text_len, ev->text);
        break;
    case MG_EV_EMBEDDING:
        mg_buf_printf(l, "EMB%d%.*s ", ev->tool, (int) ev->text_len, ev->text);
        break;
    case MG_EV_END:
        mg_buf_append_str(l, "END");
        break;
    default:
        break;
    }
}

/* Decodes a whole body; returns the event log (static buffer rotation). */
static const char *
t_decode(mg_op_t op, const char *body, t_sink_t *s)
{
    memset(s, 0, sizeof(*s));
    mg_dec_t d;
    memset(&d, 0, sizeof(d));
    mg_dec_init(&d, MG_WIRE_GEMINI, op, &s->usage, t_sink, s);
    mg_api_err_t err;
    int rc = mg_dec_body(&d, body, strlen(body), &err);
    CHECK_INT(rc, MG_OK);
    mg_dec_free(&d);
    return mg_buf_cstr(&s->log);
}

static void
test_decode_bodies(void)
{
    t_sink_t s;
    MG_T_CASE("response: text, id from responseId, model from modelVersion, usage");
    char *f = t_fixture("gemini/generateContent/responses/text.json");
    CHECK_STR(t_decode(MG_OP_CHAT, f, &s),
              "START(chatcmpl-mAitaLmkHPPlz7IPvtfUqQ4,gemini-2.0-flash-001) "
              "TEXT0[The capital of France is Paris.] FINISH0(stop) USAGE END");
    CHECK_INT(s.usage.prompt_tokens, 11);
    CHECK_INT(s.usage.completion_tokens, 8);
    CHECK_INT(s.usage.total_tokens, 19);
    mg_buf_free(&s.log);
    free(f);

    MG_T_CASE("response: a function call is a tool call with an id, finish tool_calls");
    f = t_fixture("gemini/generateContent/responses/function_call.json");
    CHECK_STR(t_decode(MG_OP_CHAT, f, &s),
              "START(chatcmpl-fc-7Qm2bZs9T0Ab3kPmVkw,gemini-2.0-flash-001) "
              "TOOL0.0(call_,get_weather,{\"city\":\"Paris\",\"unit\":\"celsius\"}) "
              "FINISH0(tool_calls) USAGE END");
    mg_buf_free(&s.log);
    free(f);

    MG_T_CASE("response: thought parts are reasoning; exclusive thoughts count as output");
    f = t_fixture("gemini/generateContent/responses/thinking.json");
    CHECK_STR(t_decode(MG_OP_CHAT, f, &s),
              "START(chatcmpl-th-1b3c,gemini-2.5-flash) THINK0[**Adding the numbers**\n\n2 plus "
              "2 is 4.] TEXT0[4] FINISH0(stop) USAGE END");
    CHECK_INT(s.usage.prompt_tokens, 9);
    CHECK_INT(s.usage.completion_tokens, 321);
    CHECK_INT(s.usage.reasoning_tokens, 320);
    CHECK_INT(s.usage.cache_read_tokens, 4);
    CHECK_INT(s.usage.total_tokens, 330);
    mg_buf_free(&s.log);
    free(f);

    MG_T_CASE("response: SAFETY -> content_filter, the cut content dropped");
    f = t_fixture("gemini/generateContent/responses/safety.json");
    CHECK_STR(t_decode(MG_OP_CHAT, f, &s),
              "START(,gemini-2.0-flash-001) FINISH0(content_filter) USAGE END");
    mg_buf_free(&s.log);
    free(f);

    MG_T_CASE("response: a blocked prompt -> content_filter, no candidates");
    f = t_fixture("gemini/generateContent/responses/blocked_prompt.json");
    CHECK_STR(t_decode(MG_OP_CHAT, f, &s),
              "START(,gemini-2.0-flash-001) FINISH0(content_filter) USAGE END");
    CHECK_INT(s.usage.prompt_tokens, 7);
    mg_buf_free(&s.log);
    free(f);

    MG_T_CASE("response: MAX_TOKENS -> length");
    f = t_fixture("gemini/generateContent/responses/max_tokens.json");
    CHECK_STR(t_decode(MG_OP_CHAT, f, &s),
              "START(,gemini-2.0-flash-001) TEXT0[Once upon a] FINISH0(length) USAGE END");
    mg_buf_free(&s.log);
    free(f);

    MG_T_CASE("response: other finish reasons (RECITATION and the rest, LiteLLM's table)");
    struct {
        const char *reason;
        const char *want;
    } fr[] = {{"RECITATION", "content_filter"}, {"BLOCKLIST", "content_filter"},
              {"OTHER", "content_filter"}, {"LANGUAGE", "content_filter"},
              {"MALFORMED_FUNCTION_CALL", "stop"}, {"FINISH_REASON_UNSPECIFIED", "stop"},
              {"IMAGE_SAFETY", "content_filter"}, {"TOO_MANY_TOOL_CALLS", "stop"}};
    for (size_t i = 0; i < sizeof(fr) / sizeof(fr[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}],\"role\":\"model\"},"
                 "\"finishReason\":\"%s\"}]}", fr[i].reason);
        const char *log = t_decode(MG_OP_CHAT, body, &s);
        char want[64];
        snprintf(want, sizeof(want), "FINISH0(%s)", fr[i].want);
        CHECK(strstr(log, want) != NULL, "%s: %s", fr[i].reason, log);
        mg_buf_free(&s.log);
    }

    MG_T_CASE("response: two candidates are two choices");
    const char *two = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"index\":0,"
                      "\"finishReason\":\"STOP\"},{\"content\":{\"parts\":[{\"text\":\"b\"}]},"
                      "\"index\":1,\"finishReason\":\"MAX_TOKENS\"}]}";
    CHECK_STR(t_decode(MG_OP_CHAT, two, &s),
              "START(,) TEXT0[a] FINISH0(stop) TEXT1[b] FINISH1(length) END");
    mg_buf_free(&s.log);
}

static void
test_decode_stream(void)
{
    MG_T_CASE("stream: chunks -> fragments, one finish, usage from the last chunk");
    char *f = t_fixture("gemini/streamGenerateContent/responses/text.sse");
    t_sink_t s;
    memset(&s, 0, sizeof(s));
    mg_dec_t d;
    memset(&d, 0, sizeof(d));
    mg_dec_init(&d, MG_WIRE_GEMINI, MG_OP_CHAT, &s.usage, t_sink, &s);
    /* the SSE framing is the gateway's (mg_sse): split on blank lines here */
    const char *p = f;
    mg_api_err_t err;
    while ((p = strstr(p, "data: ")) != NULL) {
        p += 6;
        const char *e = strstr(p, "\r\n\r\n");
        CHECK_INT(mg_dec_event(&d, p, (size_t) (e - p), &err), MG_OK);
        p = e;
    }
    CHECK_STR(mg_buf_cstr(&s.log),
              "START(chatcmpl-st-9x,gemini-2.0-flash-001) TEXT0[The capital] USAGE "
              "TEXT0[ of France is] USAGE TEXT0[ Paris.] FINISH0(stop) USAGE ");
    CHECK_INT(s.usage.completion_tokens, 8);
    CHECK_INT(s.usage.total_tokens, 19);
    /* a repeated finishReason does not finish twice */
    const char *again = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}]},"
                        "\"finishReason\":\"STOP\"}]}";
    mg_buf_reset(&s.log);
    CHECK_INT(mg_dec_event(&d, again, strlen(again), &err), MG_OK);
    CHECK_STR(mg_buf_cstr(&s.log), "");
    /* an error chunk mid-stream */
    const char *bad = "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                      "\"status\":\"UNAVAILABLE\"}}";
    CHECK_INT(mg_dec_event(&d, bad, strlen(bad), &err), MG_OK);
    CHECK_STR(mg_buf_cstr(&s.log), "ERROR(503,UNAVAILABLE,The model is overloaded.) ");
    CHECK_INT(mg_dec_event(&d, "{not json", 9, &err), MG_ERROR);
    mg_dec_free(&d);
    mg_buf_free(&s.log);
    free(f);
}

/* Runs body through the Gemini decoder into the OpenAI encoder (non-stream). */
static json_t *
t_to_openai(mg_op_t op, const char *body, bool base64)
{
    mg_usage_t usage;
    memset(&usage, 0, sizeof(usage));
    mg_buf_t out = MG_BUF_INIT;
    mg_enc_t e;
    memset(&e, 0, sizeof(e));
    const mg_api_t *api = mg_api_get(op == MG_OP_EMBEDDINGS ? MG_API_OPENAI_EMBEDDINGS
                                                             : MG_API_OPENAI_CHAT);
    mg_enc_init(&e, api, false, false, "client-model", &usage, &out);
    e.embed_base64 = base64;
    mg_dec_t d;
    memset(&d, 0, sizeof(d));
    mg_dec_init(&d, MG_WIRE_GEMINI, op, &usage, (mg_ev_sink_fn) mg_enc_event, &e);
    mg_api_err_t err;
    CHECK_INT(mg_dec_body(&d, body, strlen(body), &err), MG_OK);
    mg_enc_finish(&e);
    json_t *j = json_loadb(mg_buf_head(&out), mg_buf_len(&out), 0, NULL);
    CHECK(j != NULL, "encoder output is JSON: %s", mg_buf_cstr(&out));
    mg_dec_free(&d);
    mg_enc_free(&e);
    mg_buf_free(&out);
    return j;
}

static void
test_to_openai(void)
{
    MG_T_CASE("a Gemini answer as an OpenAI chat completion");
    char *f = t_fixture("gemini/generateContent/responses/function_call.json");
    json_t *j = t_to_openai(MG_OP_CHAT, f, false);
    CHECK_JSTR(j, "object", "chat.completion");
    CHECK_JSTR(j, "model", "client-model");
    CHECK_JSTR(j, "choices.0.finish_reason", "tool_calls");
    CHECK_JSTR(j, "choices.0.message.tool_calls.0.function.name", "get_weather");
    CHECK_JSTR(j, "choices.0.message.tool_calls.0.function.arguments",
               "{\"city\":\"Paris\",\"unit\":\"celsius\"}");
    CHECK(json_is_null(t_at(j, "choices.0.message.content")));
    CHECK_JNUM(j, "usage.prompt_tokens", 40);
    CHECK_JNUM(j, "usage.completion_tokens", 9);
    json_decref(j);
    free(f);
    f = t_fixture("gemini/generateContent/responses/thinking.json");
    j = t_to_openai(MG_OP_CHAT, f, false);
    CHECK_JSTR(j, "choices.0.message.content", "4");
    CHECK_CONTAINS(json_string_value(t_at(j, "choices.0.message.reasoning_content")), "2 plus 2");
    CHECK_JNUM(j, "usage.completion_tokens_details.reasoning_tokens", 320);
    CHECK_JNUM(j, "usage.prompt_tokens_details.cached_tokens", 4);
    json_decref(j);
    free(f);

    MG_T_CASE("embeddings as OpenAI's list: floats, or base64 float32 when asked");
    f = t_fixture("gemini/batchEmbedContents/responses/two.json");
    j = t_to_openai(MG_OP_EMBEDDINGS, f, false);
    CHECK_JSTR(j, "object", "list");
    CHECK_JSTR(j, "model", "client-model");
    CHECK_INT(json_array_size(json_object_get(j, "data")), 2);
    CHECK_JSTR(j, "data.1.object", "embedding");
    CHECK_JNUM(j, "data.1.index", 1);
    CHECK_JNUM(j, "data.0.embedding.0", 0.013168517);
    json_decref(j);
    j = t_to_openai(MG_OP_EMBEDDINGS, f, true);
    const char *b64 = json_string_value(t_at(j, "data.0.embedding"));
    CHECK(b64 != NULL && strlen(b64) == 24, "4 float32 in base64: %s", b64 ? b64 : "(none)");
    /* struct.pack('<4f', *values) in base64 (what OpenAI sends, what its SDK decodes) */
    CHECK_STR(b64, "w8BXPHy8Drwwnz+9hWs3Og==");
    json_decref(j);
    free(f);
    f = t_fixture("vertex/predict/responses/embeddings.json");
    j = t_to_openai(MG_OP_EMBEDDINGS, f, false);
    CHECK_INT(json_array_size(json_object_get(j, "data")), 2);
    CHECK_JNUM(j, "data.1.embedding.3", 0.0389);
    CHECK_JNUM(j, "usage.prompt_tokens", 9); /* Vertex counts them */
    json_decref(j);
    free(f);
}

/* ---- errors ---- */

static void
t_map(const char *provider, int status, const char *fixture, mg_uperr_t *e)
{
    char *f = t_fixture(fixture);
    mg_google_map_error(provider, status, f, strlen(f), e);
    free(f);
}

static void
test_errors(void)
{
    mg_uperr_t e;
    MG_T_CASE("errors: RESOURCE_EXHAUSTED -> RateLimitError 429");
    t_map("vertex_ai", 429, "vertex/errors/429_resource_exhausted.json", &e);
    CHECK_INT(e.status, 429);
    CHECK_INT(e.cls, MG_ERR_RATE_LIMITED);
    CHECK(e.rate_limit);
    CHECK_CONTAINS(e.message, "litellm.RateLimitError: litellm.RateLimitError: vertex_aiException - {");
    CHECK_CONTAINS(e.message, "Resource exhausted. Please try again later.");
    mg_uperr_free(&e);
    t_map("gemini", 429, "gemini/errors/429_resource_exhausted.json", &e);
    CHECK_INT(e.status, 429);
    CHECK_CONTAINS(e.message, "geminiException - ");
    mg_uperr_free(&e);

    MG_T_CASE("errors: a context window message -> ContextWindowExceededError");
    t_map("gemini", 400, "gemini/errors/400_context_window.json", &e);
    CHECK_INT(e.status, 400);
    CHECK_INT(e.cls, MG_ERR_CONTEXT_WINDOW);
    CHECK(e.context_window);
    CHECK_CONTAINS(e.message, "litellm.ContextWindowExceededError: ContextWindowExceededError: "
                              "GeminiException - ");
    mg_uperr_free(&e);

    MG_T_CASE("errors: an invalid API key -> AuthenticationError 401");
    t_map("gemini", 400, "gemini/errors/400_api_key_invalid.json", &e);
    CHECK_INT(e.status, 401);
    CHECK_INT(e.cls, MG_ERR_AUTH);
    CHECK_CONTAINS(e.message, "litellm.AuthenticationError: GeminiException - ");
    mg_uperr_free(&e);
    t_map("vertex_ai", 401, "vertex/errors/401_unauthenticated.json", &e);
    CHECK_INT(e.status, 401);
    CHECK(e.auth);
    CHECK_CONTAINS(e.message, "litellm.AuthenticationError: Vertex_aiException - ");
    mg_uperr_free(&e);

    MG_T_CASE("errors: INVALID_ARGUMENT -> BadRequestError; 403 -> BadRequestError (LiteLLM)");
    t_map("vertex_ai", 400, "gemini/errors/400_invalid_argument.json", &e);
    CHECK_INT(e.status, 400);
    CHECK_INT(e.cls, MG_ERR_BAD_REQUEST);
    CHECK_CONTAINS(e.message, "litellm.BadRequestError: Vertex_aiException BadRequestError - ");
    mg_uperr_free(&e);
    t_map("vertex_ai", 403, "vertex/errors/403_permission_denied.json", &e);
    CHECK_INT(e.status, 400);
    CHECK_CONTAINS(e.message, "litellm.BadRequestError: Vertex_aiException BadRequestError - ");
    mg_uperr_free(&e);
    t_map("vertex_ai", 403, "vertex/errors/400_not_enabled.json", &e);
    CHECK_CONTAINS(e.message, "litellm.BadRequestError: litellm.BadRequestError: vertex_aiException");
    mg_uperr_free(&e);

    MG_T_CASE("errors: 404, 503, 500 and the overloaded text");
    t_map("gemini", 404, "gemini/errors/404_not_found.json", &e);
    CHECK_INT(e.status, 404);
    CHECK(e.not_found);
    CHECK_CONTAINS(e.message, "litellm.NotFoundError: GeminiException - ");
    mg_uperr_free(&e);
    t_map("vertex_ai", 503, "vertex/errors/503_unavailable.json", &e);
    CHECK_INT(e.status, 503);
    CHECK_INT(e.cls, MG_ERR_UPSTREAM_5XX);
    CHECK_CONTAINS(e.message, "litellm.ServiceUnavailableError: Vertex_aiException - ");
    mg_uperr_free(&e);
    t_map("gemini", 503, "gemini/errors/503_unavailable.json", &e);
    CHECK_INT(e.status, 500); /* "The model is overloaded." is an InternalServerError */
    CHECK_CONTAINS(e.message, "litellm.InternalServerError: litellm.InternalServerError: "
                              "geminiException - ");
    mg_uperr_free(&e);
    t_map("gemini", 500, "gemini/errors/500_internal.json", &e);
    CHECK_INT(e.status, 500);
    CHECK_CONTAINS(e.message, "litellm.InternalServerError: GeminiException InternalServerError");
    mg_uperr_free(&e);
    const char *wrapped = "{\"error\":{\"code\":429,\"message\":\"busy\",\"status\":\"X\"}}";
    mg_google_map_error("vertex_ai", 503, wrapped, strlen(wrapped), &e);
    CHECK_INT(e.status, 429); /* a 429 inside a 5xx envelope */
    mg_uperr_free(&e);

    MG_T_CASE("errors: a blocked response -> ContentPolicyViolationError");
    const char *blocked = "{\"error\":{\"code\":400,\"message\":\"The response was blocked.\"}}";
    mg_google_map_error("vertex_ai", 400, blocked, strlen(blocked), &e);
    CHECK_INT(e.cls, MG_ERR_CONTENT_POLICY);
    CHECK(e.content_policy);
    CHECK_CONTAINS(e.message, "litellm.ContentPolicyViolationError: Vertex_aiException "
                              "ContentPolicyViolationError - ");
    mg_uperr_free(&e);

    MG_T_CASE("errors: Claude on Vertex keeps Anthropic's envelope for its own clients");
    const char *anth = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                       "\"message\":\"Overloaded\"}}";
    mg_google_map_error("vertex_ai", 529, anth, strlen(anth), &e);
    CHECK_INT(e.up_status, 529);
    CHECK_STR(e.up_type, "overloaded_error");
    CHECK_STR(e.up_message, "Overloaded");
    CHECK_STR(e.up_body, anth);
    mg_uperr_free(&e);

    MG_T_CASE("errors: Google's envelope read by the wire (message, status, code)");
    char *f = t_fixture("gemini/errors/429_resource_exhausted.json");
    mg_wire_err_t we;
    mg_api_wire_error(MG_WIRE_GEMINI, 429, f, strlen(f), &we);
    CHECK_CONTAINS(we.message, "You exceeded your current quota");
    CHECK_STR(we.type, "RESOURCE_EXHAUSTED");
    CHECK_STR(we.code, "429");
    mg_wire_err_free(&we);
    free(f);
}

int
main(void)
{
    test_roles_and_parts();
    test_tools_roundtrip();
    test_generation_config();
    test_refused_params();
    test_embeddings_build();
    test_decode_bodies();
    test_decode_stream();
    test_to_openai();
    test_errors();
    return mg_test_done();
}
