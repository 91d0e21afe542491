/*
 * test_bedrock.c -- core/api/mg_api_bedrock.c and the bedrock/ provider
 * (core/providers/bedrock/mg_provider_bedrock.c), through their public APIs.
 *
 *   requests:  neutral (OpenAI chat) -> Converse body (mg_api_build, LiteLLM's
 *              AmazonConverseConfig): messages and merging, system, inferenceConfig,
 *              toolConfig, images and documents, thinking, response_format, the
 *              UnsupportedParamsError refusals and drop_params; an Anthropic client body
 *              -> neutral -> Converse; neutral -> InvokeModel body;
 *   responses: Converse bodies and ConverseStream event-streams (fixtures from AWS's
 *              documented shapes, framed with mg_eventstream_encode) -> neutral events ->
 *              the OpenAI encoder; the same stream split at every byte offset and fed one
 *              byte at a time gives the same events; a stream exception is one error event;
 *              InvokeModel answers and chunk streams through the Anthropic decoder;
 *   errors:    tests/fixtures/providers/bedrock/errors.json through mg_api_bedrock_error;
 *   provider:  the request line (model id as one URI label), endpoint, region and
 *              credential resolution, the SigV4 header recomputed from its parts, bearer
 *              keys, refusals, the credential fingerprint.
 */
#include "mg_test.h"

#include "api/mg_api.h"
#include "base/mg_arena.h"
#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "providers/bedrock/mg_eventstream.h"
#include "providers/bedrock/mg_sigv4.h"
#include "providers/mg_provider.h"

#include <jansson.h>
#include <time.h>

/* ---- fixtures and JSON comparison ---- */

static char *
t_fixture(const char *rel)
{
    const char *src = getenv("MG_TEST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/providers/bedrock/%s",
             src != NULL && src[0] != '\0' ? src : ".", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        MG_T_FAIL_AT("cannot open fixture %s (set MG_TEST_SOURCE_DIR)", path);
        return NULL;
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

/* got equals want (objects: want's keys only when subset), numbers by value. */
static bool
t_json_cmp(json_t *got, json_t *want, bool subset, const char *path, char *why, size_t whylen)
{
    if (json_is_number(got) && json_is_number(want) &&
        json_number_value(got) == json_number_value(want)) {
        return true;
    }
    if (json_is_object(want) && json_is_object(got)) {
        if (!subset && json_object_size(got) != json_object_size(want)) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            snprintf(why, whylen, "at %s: keys differ: got %.2000s", path[0] ? path : "$", g);
            free(g);
            return false;
        }
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            json_t *gv = json_object_get(got, k);
            if (gv == NULL) {
                snprintf(why, whylen, "at %s: missing", sub);
                return false;
            }
            if (!t_json_cmp(gv, v, subset, sub, why, whylen)) {
                return false;
            }
        }
        return true;
    }
    if (json_is_array(want) && json_is_array(got) && json_array_size(got) == json_array_size(want)) {
        size_t i;
        json_t *v;
        json_array_foreach(want, i, v) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            if (!t_json_cmp(json_array_get(got, i), v, subset, sub, why, whylen)) {
                return false;
            }
        }
        return true;
    }
    if (got != NULL && json_equal(got, want)) {
        return true;
    }
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                  : mg_xstrdup("(nothing)");
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    snprintf(why, whylen, "at %s: got %.1800s, expected %.1800s", path[0] ? path : "$", g, w);
    free(g);
    free(w);
    return false;
}

static bool
t_json_match(json_t *got, const char *want_text, bool subset, char *why, size_t whylen)
{
    json_error_t je;
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, &je);
    if (want == NULL) {
        snprintf(why, whylen, "the expectation is not JSON (%s): %s", je.text, want_text);
        return false;
    }
    bool ok = t_json_cmp(got, want, subset, "", why, whylen);
    json_decref(want);
    return ok;
}

#define CHECK_JSON(got, want) T_CHECK_JSON_AT(got, want, false)
#define CHECK_JSON_SUB(got, want) T_CHECK_JSON_AT(got, want, true)
#define T_CHECK_JSON_AT(got, want, subset)                                                         \
    do {                                                                                           \
        char mg_t_why[4096];                                                                       \
        if (t_json_match((got), (want), (subset), mg_t_why, sizeof(mg_t_why))) {                   \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s: %s", #got, mg_t_why);                                                \
        }                                                                                          \
    } while (0)

/* ---- building bodies ---- */

static mg_body_opts_t
t_opts(const char *model)
{
    mg_body_opts_t o;
    memset(&o, 0, sizeof(o));
    o.model = model;
    o.provider = "bedrock";
    return o;
}

/* neutral JSON text -> the wire's body (NULL on a refusal; err filled). */
static json_t *
t_build(mg_wire_t w, const char *neutral, const mg_body_opts_t *o, mg_api_err_t *err)
{
    json_error_t je;
    json_t *n = json_loads(neutral, 0, &je);
    if (n == NULL) {
        MG_T_FAIL_AT("bad neutral JSON in the test: %s", je.text);
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    memset(err, 0, sizeof(*err));
    int rc = mg_api_build(w, MG_OP_CHAT, n, o, &b, err);
    json_decref(n);
    json_t *body = rc == MG_OK ? json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, NULL) : NULL;
    mg_buf_free(&b);
    return body;
}

#define HAIKU "anthropic.claude-3-haiku-20240307-v1:0"

static void
test_converse_basic(void)
{
    MG_T_CASE("converse: messages, system, inferenceConfig");
    mg_body_opts_t o = t_opts(HAIKU);
    mg_api_err_t err;
    json_t *b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                        "{\"model\":\"m\",\"messages\":["
                        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No emoji.\","
                        "\"cache_control\":{\"type\":\"ephemeral\"}}]},"
                        "{\"role\":\"user\",\"content\":\"Hi\"},"
                        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"there\"}]},"
                        "{\"role\":\"assistant\",\"content\":\"Hello!\"},"
                        "{\"role\":\"user\",\"content\":\"Bye\"}],"
                        "\"max_tokens\":100,\"temperature\":0.2,\"top_p\":0.9,\"stop\":\"END\","
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"top_k\":5}",
                        &o, &err);
    CHECK(b != NULL, "refused: %s", err.msg);
    CHECK_JSON(b, "{\"messages\":["
                  "{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"},{\"text\":\"there\"}]},"
                  "{\"role\":\"assistant\",\"content\":[{\"text\":\"Hello!\"}]},"
                  "{\"role\":\"user\",\"content\":[{\"text\":\"Bye\"}]}],"
                  "\"system\":[{\"text\":\"Be brief.\"},{\"text\":\"No emoji.\"},"
                  "{\"cachePoint\":{\"type\":\"default\"}}],"
                  "\"inferenceConfig\":{\"maxTokens\":100,\"temperature\":0.2,\"topP\":0.9,"
                  "\"stopSequences\":[\"END\"]},"
                  "\"additionalModelRequestFields\":{\"top_k\":5}}");
    json_decref(b);

    MG_T_CASE("converse: max_completion_tokens wins, defaults fill in, additional_drop drops");
    json_t *defaults = json_pack("{s:i,s:f}", "max_tokens", 512, "temperature", 0.7);
    json_t *drop = json_pack("[s]", "temperature");
    o.defaults = defaults;
    o.additional_drop = drop;
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":7,"
                "\"temperature\":1}", &o, &err);
    CHECK_JSON_SUB(b, "{\"inferenceConfig\":{\"maxTokens\":7}}");
    CHECK(json_object_get(json_object_get(b, "inferenceConfig"), "temperature") == NULL,
          "additional_drop_params drops temperature");
    json_decref(b);
    o.additional_drop = NULL;
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                &o, &err);
    CHECK_JSON_SUB(b, "{\"inferenceConfig\":{\"maxTokens\":512,\"temperature\":0.7}}");
    json_decref(b);
    json_decref(defaults);
    json_decref(drop);

    MG_T_CASE("converse: provider-specific params, config blocks, service_tier");
    o = t_opts("amazon.nova-pro-v1:0");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_k\":3,"
                "\"guardrailConfig\":{\"guardrailIdentifier\":\"gr-1\",\"guardrailVersion\":\"1\"},"
                "\"requestMetadata\":{\"team\":\"a\"},\"service_tier\":\"auto\","
                "\"metadata\":{\"x\":1},\"customField\":{\"a\":1}}", &o, &err);
    CHECK(b != NULL, "refused: %s", err.msg);
    CHECK_JSON_SUB(b, "{\"guardrailConfig\":{\"guardrailIdentifier\":\"gr-1\"},"
                      "\"requestMetadata\":{\"team\":\"a\"},\"serviceTier\":{\"type\":\"default\"},"
                      "\"additionalModelRequestFields\":{\"inferenceConfig\":{\"topK\":3},"
                      "\"customField\":{\"a\":1}}}");
    CHECK(json_object_get(json_object_get(b, "additionalModelRequestFields"), "metadata") == NULL,
          "LiteLLM's metadata never reaches Bedrock");
    json_decref(b);
}

static void
test_converse_tools(void)
{
    MG_T_CASE("converse: tools, tool_choice, a tool round trip merged into alternating turns");
    mg_body_opts_t o = t_opts("us." HAIKU);
    mg_api_err_t err;
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                        "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\","
                        "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
                        "{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}]";
    char body[4096];
    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
             "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
             "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
             "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\","
             "\"text\":\"21C\"}]},"
             "{\"role\":\"user\",\"content\":\"And tomorrow?\"}],%s,\"tool_choice\":\"required\"}",
             tools);
    json_t *b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK(b != NULL, "refused: %s", err.msg);
    CHECK_JSON(json_object_get(b, "messages"),
               "[{\"role\":\"user\",\"content\":[{\"text\":\"Weather in Paris and Rome?\"}]},"
               "{\"role\":\"assistant\",\"content\":[{\"text\":\"Checking.\"},"
               "{\"toolUse\":{\"toolUseId\":\"call_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}},"
               "{\"toolUse\":{\"toolUseId\":\"call_2\",\"name\":\"get_weather\",\"input\":{\"city\":\"Rome\"}}}]},"
               "{\"role\":\"user\",\"content\":["
               "{\"toolResult\":{\"toolUseId\":\"call_1\",\"content\":[{\"text\":\"18C\"}]}},"
               "{\"toolResult\":{\"toolUseId\":\"call_2\",\"content\":[{\"text\":\"21C\"}]}},"
               "{\"text\":\"And tomorrow?\"}]}]");
    CHECK_JSON(json_object_get(b, "toolConfig"),
               "{\"tools\":[{\"toolSpec\":{\"name\":\"get_weather\",\"description\":\"Weather\","
               "\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
               "\"string\"}},\"required\":[\"city\"]}}}},"
               "{\"toolSpec\":{\"name\":\"noargs\",\"description\":\"noargs\",\"inputSchema\":"
               "{\"json\":{\"type\":\"object\",\"properties\":{}}}}}],"
               "\"toolChoice\":{\"any\":{}}}");
    json_decref(b);

    MG_T_CASE("converse: tool_choice auto / named; none refused unless drop_params");
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}}", tools);
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK_JSON_SUB(b, "{\"toolConfig\":{\"toolChoice\":{\"tool\":{\"name\":\"noargs\"}}}}");
    json_decref(b);
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":\"none\"}", tools);
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK(b == NULL);
    CHECK_INT(err.status, 400);
    CHECK_CONTAINS(err.msg, "Bedrock doesn't support tool_choice=none");
    o.drop_params = true;
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK(b != NULL && json_object_get(json_object_get(b, "toolConfig"), "toolChoice") == NULL,
          "tool_choice none dropped");
    json_decref(b);
    o.drop_params = false;

    MG_T_CASE("converse: tool blocks without tools get LiteLLM's dummy tool");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
                "\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":"
                "{\"name\":\"f\",\"arguments\":\"\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c\","
                "\"content\":\"ok\"}]}", &o, &err);
    CHECK_JSON_SUB(b, "{\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"dummy_tool\"}}]},"
                      "\"messages\":[{},{\"content\":[{\"toolUse\":{\"input\":{}}}]},{}]}");
    json_decref(b);

    MG_T_CASE("converse: arguments that are not JSON are refused");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
                "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                "\"arguments\":\"{oops\"}}]}]}", &o, &err);
    CHECK(b == NULL);
    CHECK_INT(err.status, 400);

    MG_T_CASE("converse: tools refused for a family without them, toolChoice for one without it");
    o = t_opts("amazon.titan-text-express-v1");
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}", tools);
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "litellm.UnsupportedParamsError: bedrock does not support parameters: "
                            "['tools'], for model=amazon.titan-text-express-v1");
    o = t_opts("meta.llama3-1-70b-instruct-v1:0");
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":\"auto\"}", tools);
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "['tool_choice']");
    o.drop_params = true;
    b = t_build(MG_WIRE_BEDROCK_CONVERSE, body, &o, &err);
    CHECK_JSON_SUB(b, "{\"toolConfig\":{\"tools\":[{},{}]}}");
    CHECK(json_object_get(json_object_get(b, "toolConfig"), "toolChoice") == NULL);
    json_decref(b);
}

static void
test_converse_params(void)
{
    mg_body_opts_t o = t_opts(HAIKU);
    mg_api_err_t err;
    MG_T_CASE("converse: OpenAI params Bedrock does not take -> UnsupportedParamsError");
    json_t *b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2,\"user\":\"u1\","
                        "\"presence_penalty\":0.1,\"seed\":3}", &o, &err);
    CHECK(b == NULL);
    CHECK_INT(err.status, 400);
    CHECK_CONTAINS(err.msg, "litellm.UnsupportedParamsError: bedrock does not support parameters: "
                            "['n', 'user', 'presence_penalty', 'seed'], for model=" HAIKU);
    CHECK_CONTAINS(err.msg, "allowed_openai_params=['n', 'user', 'presence_penalty', 'seed']");
    MG_T_CASE("converse: n=1 is not a refusal; drop_params drops the rest");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1}", &o, &err);
    CHECK(b != NULL, "n=1 refused: %s", err.msg);
    json_decref(b);
    o.drop_params = true;
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2,\"user\":\"u1\","
                "\"seed\":3}", &o, &err);
    CHECK_JSON(b, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}");
    json_decref(b);
    o.drop_params = false;

    MG_T_CASE("converse: thinking only where the model has it");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"high\"}",
                &o, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "['reasoning_effort']");
    o = t_opts("us.anthropic.claude-3-7-sonnet-20250219-v1:0");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"high\","
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                "\"tool_choice\":\"required\"}", &o, &err);
    CHECK(b != NULL, "refused: %s", err.msg);
    CHECK_JSON_SUB(b, "{\"additionalModelRequestFields\":{\"thinking\":{\"type\":\"enabled\","
                      "\"budget_tokens\":4096}},\"inferenceConfig\":{\"maxTokens\":8192},"
                      "\"toolConfig\":{\"toolChoice\":{\"auto\":{}}}}");
    json_decref(b);
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3000,"
                "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":200}}", &o, &err);
    CHECK_JSON_SUB(b, "{\"additionalModelRequestFields\":{\"thinking\":{\"type\":\"enabled\","
                      "\"budget_tokens\":1024}},\"inferenceConfig\":{\"maxTokens\":3000}}");
    json_decref(b);
    o = t_opts("openai.gpt-oss-120b-1:0");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"low\"}",
                &o, &err);
    CHECK_JSON_SUB(b, "{\"additionalModelRequestFields\":{\"reasoning_effort\":\"low\"}}");
    json_decref(b);

    MG_T_CASE("converse: assistant thinking blocks become reasoningContent");
    o = t_opts("anthropic.claude-sonnet-4-20250514-v1:0");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
                "\"content\":\"four\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"2+2\","
                "\"signature\":\"sig1\"},{\"type\":\"redacted_thinking\",\"data\":\"cmVk\"}]},"
                "{\"role\":\"user\",\"content\":\"ok\"}]}", &o, &err);
    CHECK_JSON(json_object_get(json_array_get(json_object_get(b, "messages"), 1), "content"),
               "[{\"reasoningContent\":{\"reasoningText\":{\"text\":\"2+2\",\"signature\":\"sig1\"}}},"
               "{\"reasoningContent\":{\"redactedContent\":\"cmVk\"}},{\"text\":\"four\"}]");
    json_decref(b);

    MG_T_CASE("converse: response_format is a forced json_tool_call, and json mode");
    o = t_opts(HAIKU);
    bool json_mode = false;
    o.json_mode = &json_mode;
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
                "\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":{\"type\":\"object\","
                "\"properties\":{\"a\":{\"type\":\"integer\"}}}}}}", &o, &err);
    CHECK_JSON_SUB(b, "{\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"json_tool_call\","
                      "\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"a\":"
                      "{\"type\":\"integer\"}}}}}}],\"toolChoice\":{\"tool\":{\"name\":"
                      "\"json_tool_call\"}}}}");
    CHECK(json_mode, "json mode set");
    json_decref(b);
}

static void
test_converse_media(void)
{
    mg_body_opts_t o = t_opts(HAIKU);
    mg_api_err_t err;
    MG_T_CASE("converse: images and documents from data URLs, s3 images, cache points");
    json_t *b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                        "{\"messages\":[{\"role\":\"user\",\"content\":["
                        "{\"type\":\"text\",\"text\":\"What is this?\"},"
                        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpg;base64,/9j/4AAQ\"}},"
                        "{\"type\":\"image_url\",\"image_url\":\"data:image/png;base64,iVBORw0K\","
                        "\"cache_control\":{\"type\":\"ephemeral\"}},"
                        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"s3://bucket/cat.webp\"}},"
                        "{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,JVBERi0x\"}},"
                        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:text/plain;base64,aGk=\"}}]}]}",
                        &o, &err);
    CHECK(b != NULL, "refused: %s", err.msg);
    CHECK_JSON(json_object_get(json_array_get(json_object_get(b, "messages"), 0), "content"),
               "[{\"text\":\"What is this?\"},"
               "{\"image\":{\"format\":\"jpeg\",\"source\":{\"bytes\":\"/9j/4AAQ\"}}},"
               "{\"image\":{\"format\":\"png\",\"source\":{\"bytes\":\"iVBORw0K\"}}},"
               "{\"cachePoint\":{\"type\":\"default\"}},"
               "{\"image\":{\"format\":\"webp\",\"source\":{\"s3Location\":{\"uri\":\"s3://bucket/cat.webp\"}}}},"
               "{\"document\":{\"format\":\"pdf\",\"name\":\"Document 1\",\"source\":{\"bytes\":\"JVBERi0x\"}}},"
               "{\"document\":{\"format\":\"txt\",\"name\":\"Document 2\",\"source\":{\"bytes\":\"aGk=\"}}}]");
    json_decref(b);
    MG_T_CASE("converse: an image moongate would have to download, or an unknown format, is refused");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                "{\"url\":\"https://example.com/cat.png\"}}]}]}", &o, &err);
    CHECK(b == NULL);
    CHECK_INT(err.status, 400);
    CHECK_CONTAINS(err.msg, "data: URL");
    b = t_build(MG_WIRE_BEDROCK_CONVERSE,
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                "{\"url\":\"data:image/tiff;base64,AAAA\"}}]}]}", &o, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "Unsupported image format: tiff");
}

static void
test_anthropic_client(void)
{
    MG_T_CASE("an Anthropic client body -> neutral -> Converse");
    const char *body = "{\"model\":\"claude\",\"max_tokens\":256,\"system\":\"You are terse.\","
                       "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
                       "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
                       "\"data\":\"iVBORw0K\"}}]},"
                       "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\","
                       "\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}}]},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
                       "\"content\":\"-3C\"}]}],"
                       "\"tools\":[{\"name\":\"get_weather\",\"description\":\"w\",\"input_schema\":"
                       "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],"
                       "\"tool_choice\":{\"type\":\"auto\"},\"stop_sequences\":[\"##\"],\"top_k\":10}";
    mg_arena_t a;
    mg_arena_init(&a, 4096);
    mg_api_req_t q;
    mg_api_err_t err;
    int rc = mg_api_parse(mg_api_get(MG_API_ANTHROPIC_MESSAGES), &a, body, strlen(body), NULL, &q,
                          &err);
    CHECK_INT(rc, MG_OK);
    json_t *n = rc == MG_OK ? mg_api_neutral(&q, &err) : NULL;
    CHECK(n != NULL, "neutral: %s", err.msg);
    mg_body_opts_t o = t_opts(HAIKU);
    mg_buf_t out = MG_BUF_INIT;
    rc = n != NULL ? mg_api_build(MG_WIRE_BEDROCK_CONVERSE, MG_OP_CHAT, n, &o, &out, &err)
                   : MG_ERROR;
    CHECK_INT(rc, MG_OK);
    json_t *b = json_loadb(mg_buf_head(&out), mg_buf_len(&out), 0, NULL);
    CHECK_JSON(b, "{\"messages\":["
                  "{\"role\":\"user\",\"content\":[{\"text\":\"Weather?\"},{\"image\":{\"format\":"
                  "\"png\",\"source\":{\"bytes\":\"iVBORw0K\"}}}]},"
                  "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"toolu_1\","
                  "\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}}}]},"
                  "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"toolu_1\","
                  "\"content\":[{\"text\":\"-3C\"}]}}]}],"
                  "\"system\":[{\"text\":\"You are terse.\"}],"
                  "\"inferenceConfig\":{\"maxTokens\":256,\"stopSequences\":[\"##\"]},"
                  "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"get_weather\",\"description\":"
                  "\"w\",\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"city\":"
                  "{\"type\":\"string\"}}}}}}],\"toolChoice\":{\"auto\":{}}},"
                  "\"additionalModelRequestFields\":{\"top_k\":10}}");
    json_decref(b);
    mg_buf_free(&out);
    mg_api_req_free(&q);
    mg_arena_destroy(&a);
}

static void
test_invoke_build(void)
{
    MG_T_CASE("invoke: the Anthropic body without model/stream, with anthropic_version");
    mg_body_opts_t o = t_opts(HAIKU);
    o.stream = true;
    mg_api_err_t err;
    json_t *b = t_build(MG_WIRE_BEDROCK_INVOKE,
                        "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\","
                        "\"content\":\"Hi\"}],\"max_tokens\":50,\"temperature\":0.5,\"stream\":true}",
                        &o, &err);
    CHECK(b != NULL, "refused: %s", err.msg);
    CHECK_JSON(b, "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":50,"
                  "\"temperature\":0.5,\"system\":[{\"type\":\"text\",\"text\":\"S\"}],"
                  "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}]}");
    json_decref(b);
    MG_T_CASE("invoke: Anthropic's refusals apply (n=2)");
    b = t_build(MG_WIRE_BEDROCK_INVOKE,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"n\":2}", &o, &err);
    CHECK(b == NULL);
    CHECK_CONTAINS(err.msg, "bedrock does not support parameters: ['n']");
}

/* ---- decoding ---- */

typedef struct {
    mg_buf_t log;               /* one line per event, canonical */
    int errors;
    int last_status;
    char last_error[1024];
} t_sink_t;

static void
t_sink(void *ud, const mg_ev_t *ev)
{
    t_sink_t *s = ud;
    if (ev->kind == MG_EV_START) {
        mg_buf_append_str(&s->log, "start\n");
        return;
    }
    mg_buf_printf(&s->log, "%d|%d|%d|%.*s|%.*s|%.*s|%.*s|%d|%d\n", (int) ev->kind, ev->index,
                  ev->tool, (int) ev->id_len, ev->id ? ev->id : "", (int) ev->name_len,
                  ev->name ? ev->name : "", (int) ev->text_len, ev->text ? ev->text : "",
                  (int) ev->sig_len, ev->sig ? ev->sig : "", (int) ev->finish, ev->status);
    if (ev->kind == MG_EV_ERROR) {
        s->errors++;
        s->last_status = ev->status;
        snprintf(s->last_error, sizeof(s->last_error), "%.*s", (int) ev->text_len, ev->text);
    }
}

/* A decoder feeding the OpenAI encoder (stream or not) and the canonical sink. */
typedef struct {
    mg_dec_t dec;
    mg_enc_t enc;
    mg_usage_t usage;
    mg_buf_t out;
    t_sink_t sink;
    bool stream;
} t_xl_t;

static void
t_xl_sink(void *ud, const mg_ev_t *ev)
{
    t_xl_t *x = ud;
    t_sink(&x->sink, ev);
    mg_enc_event(&x->enc, ev);
}

static void
t_xl_init(t_xl_t *x, mg_wire_t w, bool stream)
{
    memset(x, 0, sizeof(*x));
    x->stream = stream;
    mg_dec_init(&x->dec, w, MG_OP_CHAT, &x->usage, t_xl_sink, x);
    mg_enc_init(&x->enc, mg_api_get(MG_API_OPENAI_CHAT), stream, true, "claude-alias", &x->usage,
                &x->out);
}

static void
t_xl_free(t_xl_t *x)
{
    mg_dec_free(&x->dec);
    mg_enc_free(&x->enc);
    mg_buf_free(&x->out);
    mg_buf_free(&x->sink.log);
}

static json_t *
t_xl_body(t_xl_t *x)
{
    mg_enc_finish(&x->enc);
    return json_loadb(mg_buf_head(&x->out), mg_buf_len(&x->out), 0, NULL);
}

static void
test_decode_converse_bodies(void)
{
    MG_T_CASE("converse body: text, usage -> OpenAI completion");
    char *f = t_fixture("converse/text.json");
    t_xl_t x;
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
    mg_api_err_t err;
    CHECK_INT(mg_dec_body(&x.dec, f, f ? strlen(f) : 0, &err), MG_OK);
    json_t *b = t_xl_body(&x);
    CHECK_JSON_SUB(b, "{\"object\":\"chat.completion\",\"model\":\"claude-alias\",\"choices\":"
                      "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                      "\"Hello! How can I help you today?\"},\"finish_reason\":\"stop\"}],"
                      "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":9,\"total_tokens\":21}}");
    json_decref(b);
    t_xl_free(&x);
    free(f);

    MG_T_CASE("converse body: toolUse -> tool_calls, tool_use -> tool_calls");
    f = t_fixture("converse/tool_use.json");
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
    CHECK_INT(mg_dec_body(&x.dec, f, f ? strlen(f) : 0, &err), MG_OK);
    b = t_xl_body(&x);
    CHECK_JSON_SUB(b, "{\"choices\":[{\"message\":{\"content\":\"I'll look up the most popular "
                      "song on WZPZ.\",\"tool_calls\":[{\"id\":\"tooluse_hbTgdi0CSLq_hM4P8csZJA\","
                      "\"type\":\"function\",\"function\":{\"name\":\"top_song\",\"arguments\":"
                      "\"{\\\"sign\\\":\\\"WZPZ\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],"
                      "\"usage\":{\"prompt_tokens\":375,\"completion_tokens\":66}}");
    json_decref(b);
    t_xl_free(&x);
    free(f);

    MG_T_CASE("converse body: reasoningContent -> reasoning_content and thinking blocks");
    f = t_fixture("converse/reasoning.json");
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
    CHECK_INT(mg_dec_body(&x.dec, f, f ? strlen(f) : 0, &err), MG_OK);
    b = t_xl_body(&x);
    CHECK_JSON_SUB(b, "{\"choices\":[{\"message\":{\"content\":\"2 + 2 = 4.\","
                      "\"reasoning_content\":\"The user asks for 2+2. That is 4.\"}}]}");
    json_t *msg = json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message");
    CHECK_JSON(json_object_get(msg, "thinking_blocks"),
               "[{\"type\":\"thinking\",\"thinking\":\"The user asks for 2+2. That is 4.\","
               "\"signature\":\"EqoBCkgIARABGAIiQL2sig\"},{\"type\":\"redacted_thinking\","
               "\"data\":\"RXFvQkNrZ0lBUkFCR0FJ\"}]");
    json_decref(b);
    t_xl_free(&x);
    free(f);

    MG_T_CASE("converse body: cache read/write in prompt_tokens, max_tokens -> length");
    f = t_fixture("converse/cache.json");
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
    CHECK_INT(mg_dec_body(&x.dec, f, f ? strlen(f) : 0, &err), MG_OK);
    CHECK_INT(x.usage.prompt_tokens, 2210);
    CHECK_INT(x.usage.cache_read_tokens, 1500);
    CHECK_INT(x.usage.cache_creation_tokens, 700);
    CHECK_INT(x.usage.completion_tokens, 3);
    CHECK_INT(x.usage.total_tokens, 2213);
    b = t_xl_body(&x);
    CHECK_JSON_SUB(b, "{\"choices\":[{\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":"
                      "2210,\"prompt_tokens_details\":{\"cached_tokens\":1500}}}");
    json_decref(b);
    t_xl_free(&x);
    free(f);

    MG_T_CASE("converse body: every stopReason");
    static const struct {
        const char *reason, *finish;
    } sr[] = {{"end_turn", "stop"}, {"stop_sequence", "stop"}, {"tool_use", "tool_calls"},
              {"max_tokens", "length"}, {"guardrail_intervened", "content_filter"},
              {"content_filtered", "content_filter"}, {"model_context_window_exceeded", "length"},
              {"malformed_model_output", "stop"}};
    for (size_t i = 0; i < sizeof(sr) / sizeof(sr[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body), "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":"
                 "[{\"text\":\"x\"}]}},\"stopReason\":\"%s\",\"usage\":{\"inputTokens\":1,"
                 "\"outputTokens\":1,\"totalTokens\":2}}", sr[i].reason);
        t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
        CHECK_INT(mg_dec_body(&x.dec, body, strlen(body), &err), MG_OK);
        b = t_xl_body(&x);
        const char *got = json_string_value(json_object_get(
            json_array_get(json_object_get(b, "choices"), 0), "finish_reason"));
        CHECK(got != NULL && strcmp(got, sr[i].finish) == 0, "%s -> %s, expected %s", sr[i].reason,
              got ? got : "(none)", sr[i].finish);
        json_decref(b);
        t_xl_free(&x);
    }

    MG_T_CASE("converse body: json mode reads json_tool_call's input as the content");
    const char *jb = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"toolUse\":"
                     "{\"toolUseId\":\"t1\",\"name\":\"json_tool_call\",\"input\":{\"properties\":"
                     "{\"a\":1}}}}]}},\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":1,"
                     "\"outputTokens\":1,\"totalTokens\":2}}";
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
    x.dec.json_mode = true;
    CHECK_INT(mg_dec_body(&x.dec, jb, strlen(jb), &err), MG_OK);
    b = t_xl_body(&x);
    CHECK_JSON_SUB(b, "{\"choices\":[{\"message\":{\"content\":\"{\\\"a\\\":1}\"},"
                      "\"finish_reason\":\"stop\"}]}");
    json_decref(b);
    t_xl_free(&x);

    MG_T_CASE("converse body: not JSON is an error");
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, false);
    CHECK_INT(mg_dec_body(&x.dec, "<html>", 6, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "Error converting to valid response block");
    t_xl_free(&x);
}

/* An events fixture as event-stream bytes (invoke chunks base64-wrapped). */
static bool
t_frames(const char *rel, mg_buf_t *out)
{
    char *f = t_fixture(rel);
    json_t *list = f ? json_loads(f, 0, NULL) : NULL;
    free(f);
    if (!json_is_array(list)) {
        MG_T_FAIL_AT("fixture %s is not a JSON list", rel);
        json_decref(list);
        return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *ev = json_string_value(json_object_get(e, "event"));
        const char *ex = json_string_value(json_object_get(e, "exception"));
        json_t *pl = json_object_get(e, "payload");
        char *payload;
        if (json_object_get(e, "anthropic") != NULL) {
            char *inner = json_dumps(json_object_get(e, "anthropic"), JSON_COMPACT);
            /* base64 by hand: the test must not share the decoder's code */
            static const char tab[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            size_t n = strlen(inner);
            mg_buf_t b64 = MG_BUF_INIT;
            for (size_t k = 0; k < n; k += 3) {
                unsigned v = (unsigned char) inner[k] << 16;
                if (k + 1 < n) {
                    v |= (unsigned char) inner[k + 1] << 8;
                }
                if (k + 2 < n) {
                    v |= (unsigned char) inner[k + 2];
                }
                char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                             k + 1 < n ? tab[(v >> 6) & 63] : '=', k + 2 < n ? tab[v & 63] : '='};
                mg_buf_append(&b64, q, 4);
            }
            free(inner);
            json_t *w = json_pack("{s:s,s:s}", "bytes", mg_buf_cstr(&b64), "p", "abcdefgh");
            payload = json_dumps(w, JSON_COMPACT);
            json_decref(w);
            mg_buf_free(&b64);
        } else {
            payload = json_dumps(pl, JSON_COMPACT);
        }
        mg_eventstream_header_t h[3];
        memset(h, 0, sizeof(h));
        h[0].name = ":message-type";
        h[0].name_len = 13;
        h[0].type = MG_EVENTSTREAM_STRING;
        h[0].p = (const uint8_t *) (ex != NULL ? "exception" : "event");
        h[0].len = strlen((const char *) h[0].p);
        h[1].name = ex != NULL ? ":exception-type" : ":event-type";
        h[1].name_len = strlen(h[1].name);
        h[1].type = MG_EVENTSTREAM_STRING;
        h[1].p = (const uint8_t *) (ex != NULL ? ex : ev);
        h[1].len = strlen((const char *) h[1].p);
        h[2].name = ":content-type";
        h[2].name_len = 13;
        h[2].type = MG_EVENTSTREAM_STRING;
        h[2].p = (const uint8_t *) "application/json";
        h[2].len = 16;
        mg_err_t err;
        if (mg_eventstream_encode(out, h, 3, payload, strlen(payload), &err) != MG_OK) {
            MG_T_FAIL_AT("encode: %s", err.msg);
        }
        free(payload);
    }
    json_decref(list);
    return true;
}

/* Feeds the framed stream split into pieces of the given sizes (0 ends the list; the rest
 * goes in one piece) to a fresh decoder; returns its canonical event log (malloc). */
typedef struct {
    t_xl_t *x;
    mg_api_err_t err;
    int rc;
} t_es_ctx_t;

static int
t_es_cb(void *ud, const mg_eventstream_message_t *m, mg_err_t *err)
{
    t_es_ctx_t *c = ud;
    const mg_eventstream_str_t *name = m->exception_type.p != NULL ? &m->exception_type
                                                                   : &m->event_type;
    if (mg_dec_event_named(&c->x->dec, m->message_type.p, m->message_type.len, name->p, name->len,
                           (const char *) m->payload, m->payload_len, &c->err) != MG_OK) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "%s", c->err.msg);
        c->rc = MG_ERROR;
        return MG_ERROR;
    }
    return MG_OK;
}

static char *
t_stream(mg_wire_t w, const mg_buf_t *bytes, size_t split_at, bool bytewise, t_xl_t *keep)
{
    t_xl_t local;
    t_xl_t *x = keep != NULL ? keep : &local;
    t_xl_init(x, w, true);
    t_es_ctx_t c = {.x = x};
    mg_eventstream_decoder_t d;
    mg_eventstream_decoder_init(&d, 0, t_es_cb, &c);
    const char *p = mg_buf_head(bytes);
    size_t n = mg_buf_len(bytes);
    mg_err_t err;
    int rc = MG_OK;
    if (bytewise) {
        for (size_t i = 0; i < n && rc == MG_OK; i++) {
            rc = mg_eventstream_feed(&d, p + i, 1, &err);
        }
    } else {
        rc = mg_eventstream_feed(&d, p, split_at, &err);
        if (rc == MG_OK) {
            rc = mg_eventstream_feed(&d, p + split_at, n - split_at, &err);
        }
    }
    if (rc == MG_OK) {
        rc = mg_eventstream_finish(&d, &err);
    }
    if (rc != MG_OK) {
        MG_T_FAIL_AT("split at %zu: %s", split_at, err.msg);
    }
    mg_eventstream_decoder_free(&d);
    char *log = mg_xstrdup(mg_buf_cstr(&x->sink.log));
    if (keep == NULL) {
        t_xl_free(x);
    }
    return log;
}

static void
test_decode_converse_stream(void)
{
    MG_T_CASE("converse stream: text and a tool call -> OpenAI chunks");
    mg_buf_t bytes = MG_BUF_INIT;
    t_frames("converse/text_tool.events.json", &bytes);
    t_xl_t x;
    char *whole = t_stream(MG_WIRE_BEDROCK_CONVERSE, &bytes, mg_buf_len(&bytes), false, &x);
    mg_enc_finish(&x.enc);
    const char *o = mg_buf_cstr(&x.out);
    CHECK_CONTAINS(o, "\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"}");
    CHECK_CONTAINS(o, "\"delta\":{\"content\":\"weather.\"}");
    CHECK_CONTAINS(o, "\"tool_calls\":[{\"index\":0,\"id\":\"tooluse_Gq6dSgq2TKO3vIbCUB2ASw\","
                      "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                      "\"arguments\":\"\"}}]");
    CHECK_CONTAINS(o, "\"function\":{\"arguments\":\"{\\\"location\\\": \\\"Par\"}");
    CHECK_CONTAINS(o, "\"finish_reason\":\"tool_calls\"");
    CHECK_CONTAINS(o, "\"usage\":{\"completion_tokens\":77,\"prompt_tokens\":421,"
                      "\"total_tokens\":498}");
    CHECK(strstr(o, "data: [DONE]") != NULL, "ends with [DONE]");
    t_xl_free(&x);

    MG_T_CASE("converse stream: split at every byte offset, and one byte at a time, decodes the same");
    size_t n = mg_buf_len(&bytes);
    int bad = 0;
    for (size_t at = 0; at <= n; at++) {
        char *log = t_stream(MG_WIRE_BEDROCK_CONVERSE, &bytes, at, false, NULL);
        if (strcmp(log, whole) != 0 && bad++ < 3) {
            MG_T_FAIL_AT("split at %zu of %zu differs:\n%s\nvs\n%s", at, n, log, whole);
        }
        free(log);
    }
    CHECK_INT(bad, 0);
    char *bw = t_stream(MG_WIRE_BEDROCK_CONVERSE, &bytes, 0, true, NULL);
    CHECK_STR(bw, whole);
    free(bw);
    free(whole);
    mg_buf_free(&bytes);

    MG_T_CASE("converse stream: reasoning deltas and the signature");
    mg_buf_t rb = MG_BUF_INIT;
    t_frames("converse/reasoning.events.json", &rb);
    whole = t_stream(MG_WIRE_BEDROCK_CONVERSE, &rb, mg_buf_len(&rb), false, &x);
    mg_enc_finish(&x.enc);
    o = mg_buf_cstr(&x.out);
    CHECK_CONTAINS(o, "\"reasoning_content\":\"Two plus two \"");
    CHECK_CONTAINS(o, "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":"
                      "\"EqoBCkgIARABGAIiQL2sig\"}]");
    CHECK_CONTAINS(o, "\"content\":\"4\"");
    t_xl_free(&x);
    free(whole);
    mg_buf_free(&rb);

    MG_T_CASE("converse stream: an exception inside the stream is one error event (429)");
    mg_buf_t tb = MG_BUF_INIT;
    t_frames("converse/throttled.events.json", &tb);
    whole = t_stream(MG_WIRE_BEDROCK_CONVERSE, &tb, mg_buf_len(&tb), false, &x);
    CHECK_INT(x.sink.errors, 1);
    CHECK_INT(x.sink.last_status, 429);
    CHECK_STR(x.sink.last_error, "litellm.RateLimitError: BedrockException: Rate Limit Error - "
                                 "throttlingException {\"message\":\"Too many tokens, please wait "
                                 "before trying again.\"}");
    mg_enc_finish(&x.enc);
    o = mg_buf_cstr(&x.out);
    CHECK_CONTAINS(o, "\"content\":\"Partial \"");
    CHECK_CONTAINS(o, "data: {\"error\":");
    CHECK_CONTAINS(o, "Rate Limit Error");
    t_xl_free(&x);
    free(whole);
    mg_buf_free(&tb);

    MG_T_CASE("converse stream: other exception types keep their status");
    static const struct {
        const char *type;
        int status;
        const char *prefix;
    } ex[] = {
        {"validationException", 400, "litellm.BadRequestError: BedrockException - "},
        {"modelStreamErrorException", 424, "litellm.APIConnectionError: BedrockException - "},
        {"internalServerException", 503, "litellm.ServiceUnavailableError: BedrockException - "},
        {"serviceUnavailableException", 503, "litellm.ServiceUnavailableError: BedrockException"},
        {"modelTimeoutException", 408, "litellm.Timeout: BedrockException - "},
    };
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, true);
        mg_api_err_t err;
        const char *pl = "{\"message\":\"boom\"}";
        CHECK_INT(mg_dec_event_named(&x.dec, "exception", 9, ex[i].type, strlen(ex[i].type), pl,
                                     strlen(pl), &err), MG_OK);
        CHECK_INT(x.sink.errors, 1);
        int want = ex[i].status == 424 ? 500 : ex[i].status;
        CHECK(x.sink.last_status == want, "%s: status %d, expected %d", ex[i].type,
              x.sink.last_status, want);
        CHECK(strncmp(x.sink.last_error, ex[i].prefix, strlen(ex[i].prefix)) == 0, "%s: %s",
              ex[i].type, x.sink.last_error);
        /* nothing after the error */
        CHECK_INT(mg_dec_event_named(&x.dec, "event", 5, "contentBlockDelta", 17,
                                     "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"late\"}}", 46,
                                     &err), MG_OK);
        CHECK(strstr(mg_buf_cstr(&x.sink.log), "late") == NULL, "events after an exception are dropped");
        t_xl_free(&x);
    }

    MG_T_CASE("converse stream: an unreadable payload is an error, a bare SSE event too");
    t_xl_init(&x, MG_WIRE_BEDROCK_CONVERSE, true);
    mg_api_err_t err;
    CHECK_INT(mg_dec_event_named(&x.dec, "event", 5, "contentBlockDelta", 17, "{oops", 5, &err),
              MG_ERROR);
    CHECK_INT(mg_dec_event(&x.dec, "{}", 2, &err), MG_ERROR);
    t_xl_free(&x);
}

static void
test_decode_invoke(void)
{
    MG_T_CASE("invoke body: an Anthropic message");
    char *f = t_fixture("invoke/text.json");
    t_xl_t x;
    t_xl_init(&x, MG_WIRE_BEDROCK_INVOKE, false);
    mg_api_err_t err;
    CHECK_INT(mg_dec_body(&x.dec, f, f ? strlen(f) : 0, &err), MG_OK);
    json_t *b = t_xl_body(&x);
    CHECK_JSON_SUB(b, "{\"choices\":[{\"message\":{\"content\":\"Hello from Claude on Bedrock.\"},"
                      "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":14,"
                      "\"completion_tokens\":8}}");
    json_decref(b);
    t_xl_free(&x);
    free(f);

    MG_T_CASE("invoke stream: base64 chunks through the Anthropic decoder, every split");
    mg_buf_t bytes = MG_BUF_INIT;
    t_frames("invoke/text.events.json", &bytes);
    char *whole = t_stream(MG_WIRE_BEDROCK_INVOKE, &bytes, mg_buf_len(&bytes), false, &x);
    mg_enc_finish(&x.enc);
    const char *o = mg_buf_cstr(&x.out);
    CHECK_CONTAINS(o, "\"content\":\"Hello from \"");
    CHECK_CONTAINS(o, "\"content\":\"Claude on Bedrock.\"");
    CHECK_CONTAINS(o, "\"finish_reason\":\"stop\"");
    CHECK_CONTAINS(o, "\"prompt_tokens\":14");
    t_xl_free(&x);
    int bad = 0;
    for (size_t at = 0; at <= mg_buf_len(&bytes); at++) {
        char *log = t_stream(MG_WIRE_BEDROCK_INVOKE, &bytes, at, false, NULL);
        if (strcmp(log, whole) != 0 && bad++ < 3) {
            MG_T_FAIL_AT("split at %zu differs", at);
        }
        free(log);
    }
    CHECK_INT(bad, 0);
    free(whole);
    mg_buf_free(&bytes);

    MG_T_CASE("invoke stream: bytes that are not base64 are an error");
    t_xl_init(&x, MG_WIRE_BEDROCK_INVOKE, true);
    CHECK_INT(mg_dec_event_named(&x.dec, "event", 5, "chunk", 5, "{\"bytes\":\"!!\"}", 14, &err),
              MG_ERROR);
    t_xl_free(&x);
}

/* ---- errors ---- */

static void
test_errors(void)
{
    MG_T_CASE("HTTP errors: LiteLLM's BedrockException mapping (errors.json)");
    char *f = t_fixture("errors.json");
    json_t *list = f ? json_loads(f, 0, NULL) : NULL;
    free(f);
    CHECK(json_array_size(list) > 10);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        char *body = json_dumps(json_object_get(c, "body"), JSON_COMPACT);
        const char *type = json_string_value(json_object_get(c, "type"));
        int status = (int) json_integer_value(json_object_get(c, "status"));
        json_t *exp = json_object_get(c, "expect");
        int want = (int) json_integer_value(json_object_get(exp, "status"));
        const char *prefix = json_string_value(json_object_get(exp, "prefix"));
        mg_bedrock_err_t e;
        mg_api_bedrock_error(status, type, strlen(type), body, strlen(body), &e);
        CHECK(e.status == want, "%s (%d): status %d, expected %d", type, status, e.status, want);
        CHECK(strncmp(e.message, prefix, strlen(prefix)) == 0, "%s: %s", type, e.message);
        CHECK(strstr(e.message, body) != NULL, "%s: the body is in the message", type);
        free(e.message);
        free(body);
    }
    json_decref(list);
    MG_T_CASE("HTTP errors: the class follows the mapping");
    mg_bedrock_err_t e;
    mg_api_bedrock_error(429, "ThrottlingException", 19, "{}", 2, &e);
    CHECK(e.cls == MG_ERR_RATE_LIMITED && e.rate_limit);
    free(e.message);
    mg_api_bedrock_error(400, NULL, 0, "{\"message\":\"Input is too long for requested model.\"}", 52,
                         &e);
    CHECK(e.cls == MG_ERR_CONTEXT_WINDOW && e.context_window);
    free(e.message);
    mg_api_bedrock_error(403, "UnrecognizedClientException", 27, "{}", 2, &e);
    CHECK(e.cls == MG_ERR_AUTH && e.auth);
    free(e.message);
    mg_api_bedrock_error(503, NULL, 0, "{}", 2, &e);
    CHECK(e.cls == MG_ERR_UPSTREAM_5XX);
    free(e.message);
}

/* ---- the provider ---- */

typedef struct {
    mg_deployment_t d;
    mg_arena_t arena;
    mg_buf_t head;
    mg_call_t c;
    json_t *neutral;
    mg_err_t err;
    mg_api_err_t aerr;
    int rc;
    char *wire;                 /* the request as sent: head + body (malloc) */
} t_call_t;

/* Builds a call for model (bedrock/<model>) with params (JSON object text). */
static void
t_call(t_call_t *t, const char *model, const char *params, bool stream)
{
    memset(t, 0, sizeof(*t));
    t->d.litellm_params = json_loads(params, 0, NULL);
    t->d.provider = "bedrock";
    t->d.upstream_model = (char *) model;
    t->d.id = "dep-1";
    t->d.api_base = json_string_value(json_object_get(t->d.litellm_params, "api_base"));
    t->d.api_key = json_string_value(json_object_get(t->d.litellm_params, "api_key"));
    t->d.drop_params = -1;
    const mg_provider_t *p = mg_provider_find("bedrock");
    t->d.prov = p;
    mg_arena_init(&t->arena, 4096);
    t->neutral = json_pack("{s:[{s:s,s:s}],s:i}", "messages", "role", "user", "content", "Hi",
                           "max_tokens", 16);
    t->c.dep = &t->d;
    t->c.op = MG_OP_CHAT;
    t->c.wire = p->ops->wire(p, &t->d, MG_OP_CHAT);
    t->c.stream = stream;
    t->c.upstream_model = model;
    t->c.neutral = t->neutral;
    t->c.arena = &t->arena;
    t->c.head = &t->head;
    t->rc = p->ops->build(p, &t->c, &t->err, &t->aerr);
    if (t->rc == MG_OK) {
        mg_buf_t w = MG_BUF_INIT;
        for (int i = 0; i < t->c.body.niov; i++) {
            mg_buf_append(&w, t->c.body.iov[i].iov_base, t->c.body.iov[i].iov_len);
        }
        t->wire = mg_xstrdup(mg_buf_cstr(&w));
        mg_buf_free(&w);
    }
}

static void
t_call_free(t_call_t *t)
{
    free(t->wire);
    json_decref(t->neutral);
    json_decref(t->d.litellm_params);
    mg_buf_free(&t->head);
    mg_arena_destroy(&t->arena);
}

/* The value of header h in the request (malloc), or NULL. */
static char *
t_header(const char *wire, const char *h)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s: ", h);
    const char *p = strstr(wire, pat);
    if (p == NULL) {
        return NULL;
    }
    p += strlen(pat);
    return mg_xstrndup(p, strcspn(p, "\r"));
}

static void
test_provider(void)
{
    setenv("AWS_ACCESS_KEY_ID", "", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "", 1);
    setenv("AWS_SESSION_TOKEN", "", 1);
    setenv("AWS_BEARER_TOKEN_BEDROCK", "", 1);
    setenv("AWS_REGION_NAME", "", 1);
    setenv("AWS_REGION", "", 1);
    setenv("AWS_DEFAULT_REGION", "", 1);
    setenv("AWS_BEDROCK_RUNTIME_ENDPOINT", "", 1);

    MG_T_CASE("provider: converse request line, host, SigV4 headers, the signature recomputed");
    t_call_t t;
    t_call(&t, "converse/" HAIKU, "{\"aws_access_key_id\":\"AKIDEXAMPLE\",\"aws_secret_access_key\":"
           "\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\",\"aws_region_name\":\"eu-central-1\"}", false);
    CHECK_INT(t.rc, MG_OK);
    CHECK(t.wire != NULL && strncmp(t.wire, "POST /model/anthropic.claude-3-haiku-20240307-v1%3A0"
                                            "/converse HTTP/1.1\r\n", 70) == 0,
          "request line: %.90s", t.wire ? t.wire : "");
    char *host = t.wire ? t_header(t.wire, "host") : NULL;
    CHECK_STR(host, "bedrock-runtime.eu-central-1.amazonaws.com");
    char *auth = t.wire ? t_header(t.wire, "authorization") : NULL;
    char *date = t.wire ? t_header(t.wire, "x-amz-date") : NULL;
    CHECK(auth != NULL && strncmp(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) == 0,
          "authorization: %s", auth ? auth : "(none)");
    CHECK_CONTAINS(auth ? auth : "", "/eu-central-1/bedrock/aws4_request, SignedHeaders="
                                     "accept;content-type;host;x-amz-date, Signature=");
    CHECK(t.wire == NULL || strstr(t.wire, "x-amz-security-token") == NULL);
    if (auth != NULL && date != NULL && t.wire != NULL) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        CHECK(strptime(date, "%Y%m%dT%H%M%SZ", &tm) != NULL, "x-amz-date %s", date);
        const char *body = strstr(t.wire, "\r\n\r\n") + 4;
        struct iovec iov = {(void *) body, strlen(body)};
        mg_sigv4_header_t sh[] = {{"host", host}, {"content-type", "application/json"},
                                  {"accept", "application/json"}};
        mg_sigv4_request_t sr = {
            .method = "POST", .path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            .headers = sh, .n_headers = 3, .payload = &iov, .n_payload = 1,
            .region = "eu-central-1", .service = "bedrock", .access_key_id = "AKIDEXAMPLE",
            .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            .timestamp = (int64_t) timegm(&tm),
        };
        mg_arena_t a;
        mg_arena_init(&a, 4096);
        mg_sigv4_out_t so;
        mg_err_t err;
        CHECK_INT(mg_sigv4_sign(&sr, &a, &so, &err), MG_OK);
        CHECK_STR(auth, so.authorization);
        mg_arena_destroy(&a);
        json_t *bj = json_loads(body, 0, NULL);
        CHECK_JSON(bj, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}],"
                       "\"inferenceConfig\":{\"maxTokens\":16}}");
        json_decref(bj);
        char *cl = t_header(t.wire, "content-length");
        CHECK(cl != NULL && (size_t) atoi(cl) == strlen(body), "content-length %s", cl ? cl : "");
        free(cl);
    }
    free(host);
    free(auth);
    free(date);
    t_call_free(&t);

    MG_T_CASE("provider: streams, invoke, ARNs and cross-region ids in the path, api_base, token");
    t_call(&t, "invoke/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
           "{\"aws_access_key_id\":\"AKID2\",\"aws_secret_access_key\":\"s2\",\"aws_session_token\":"
           "\"tok2\",\"api_base\":\"http://127.0.0.1:9/prefix/\"}", true);
    CHECK_INT(t.rc, MG_OK);
    CHECK(t.wire != NULL && strncmp(t.wire, "POST /prefix/model/us.anthropic.claude-3-5-sonnet-"
                                            "20241022-v2%3A0/invoke-with-response-stream HTTP/1.1",
                                    94) == 0, "request line: %.120s", t.wire ? t.wire : "");
    char *v = t.wire ? t_header(t.wire, "x-amz-security-token") : NULL;
    CHECK_STR(v, "tok2");
    free(v);
    v = t.wire ? t_header(t.wire, "accept") : NULL;
    CHECK_STR(v, "application/vnd.amazon.eventstream");
    free(v);
    v = t.wire ? t_header(t.wire, "authorization") : NULL;
    CHECK_CONTAINS(v ? v : "", "/us-west-2/bedrock/aws4_request, SignedHeaders=accept;content-type;"
                               "host;x-amz-date;x-amz-security-token,");
    free(v);
    const char *body = t.wire ? strstr(t.wire, "\r\n\r\n") : NULL;
    CHECK_CONTAINS(body ? body : "", "\"anthropic_version\":\"bedrock-2023-05-31\"");
    CHECK(body == NULL || (strstr(body, "\"model\"") == NULL && strstr(body, "\"stream\"") == NULL),
          "no model or stream in an invoke body");
    t_call_free(&t);

    t_call(&t, "arn:aws:bedrock:ap-south-1:123456789012:inference-profile/apac.anthropic.claude-3-haiku-20240307-v1:0",
           "{\"aws_access_key_id\":\"AKID3\",\"aws_secret_access_key\":\"s3\"}", false);
    CHECK_INT(t.rc, MG_OK);
    CHECK(t.wire != NULL && strncmp(t.wire, "POST /model/arn%3Aaws%3Abedrock%3Aap-south-1%3A1234567"
                                            "89012%3Ainference-profile%2Fapac.anthropic.claude-3-"
                                            "haiku-20240307-v1%3A0/converse HTTP/1.1", 140) == 0,
          "request line: %.160s", t.wire ? t.wire : "");
    v = t.wire ? t_header(t.wire, "host") : NULL;
    CHECK_STR(v, "bedrock-runtime.ap-south-1.amazonaws.com"); /* the ARN's region */
    free(v);
    t_call_free(&t);

    MG_T_CASE("provider: model_id overrides the path; aws_bedrock_runtime_endpoint; env region");
    setenv("AWS_REGION", "sa-east-1", 1);
    t_call(&t, HAIKU, "{\"aws_access_key_id\":\"A\",\"aws_secret_access_key\":\"S\",\"model_id\":"
           "\"provisioned-xyz\",\"aws_bedrock_runtime_endpoint\":\"https://vpce-1.bedrock-runtime."
           "example.com\"}", false);
    CHECK(t.wire != NULL && strncmp(t.wire, "POST /model/provisioned-xyz/converse ", 37) == 0,
          "%.60s", t.wire ? t.wire : "");
    v = t.wire ? t_header(t.wire, "host") : NULL;
    CHECK_STR(v, "vpce-1.bedrock-runtime.example.com");
    free(v);
    v = t.wire ? t_header(t.wire, "authorization") : NULL;
    CHECK_CONTAINS(v ? v : "", "/sa-east-1/bedrock/aws4_request");
    free(v);
    t_call_free(&t);
    setenv("AWS_REGION", "", 1);

    MG_T_CASE("provider: credentials from the environment; a Bedrock API key as a bearer");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    t_call(&t, HAIKU, "{}", false);
    CHECK_INT(t.rc, MG_OK);
    v = t.wire ? t_header(t.wire, "authorization") : NULL;
    CHECK_CONTAINS(v ? v : "", "Credential=AKIDENV/");
    free(v);
    v = t.wire ? t_header(t.wire, "x-amz-security-token") : NULL;
    CHECK_STR(v, "envtoken");
    free(v);
    t_call_free(&t);
    t_call(&t, HAIKU, "{\"aws_access_key_id\":\"AKIDP\",\"aws_secret_access_key\":\"ps\"}", false);
    v = t.wire ? t_header(t.wire, "x-amz-security-token") : NULL;
    CHECK(v == NULL, "explicit keys do not take the environment's session token");
    free(v);
    t_call_free(&t);
    t_call(&t, HAIKU, "{\"api_key\":\"bedrock-api-key-123\"}", false);
    v = t.wire ? t_header(t.wire, "authorization") : NULL;
    CHECK_STR(v, "Bearer bedrock-api-key-123");
    free(v);
    CHECK(t.wire == NULL || strstr(t.wire, "x-amz-date") == NULL);
    t_call_free(&t);
    MG_T_CASE("provider: AWS_BEARER_TOKEN_BEDROCK before the environment's keys, after the params'");
    setenv("AWS_BEARER_TOKEN_BEDROCK", "env-bedrock-key-9", 1);
    t_call(&t, HAIKU, "{}", false);
    v = t.wire ? t_header(t.wire, "authorization") : NULL;
    CHECK_STR(v, "Bearer env-bedrock-key-9");
    free(v);
    t_call_free(&t);
    t_call(&t, HAIKU, "{\"aws_access_key_id\":\"AKIDP\",\"aws_secret_access_key\":\"ps\"}", false);
    v = t.wire ? t_header(t.wire, "authorization") : NULL;
    CHECK_CONTAINS(v ? v : "", "Credential=AKIDP/");
    free(v);
    t_call_free(&t);
    setenv("AWS_BEARER_TOKEN_BEDROCK", "", 1);
    setenv("AWS_ACCESS_KEY_ID", "", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "", 1);
    setenv("AWS_SESSION_TOKEN", "", 1);

    MG_T_CASE("provider: refusals (no credentials, STS, invoke for a non-Anthropic model)");
    t_call(&t, HAIKU, "{}", false);
    CHECK_INT(t.rc, MG_ERROR);
    CHECK(t.err.cls == MG_ERR_AUTH && t.err.status == 401);
    CHECK_CONTAINS(t.err.msg, "Unable to locate credentials");
    t_call_free(&t);
    t_call(&t, HAIKU, "{\"aws_role_name\":\"arn:aws:iam::1:role/r\"}", false);
    CHECK_INT(t.rc, MG_ERROR);
    CHECK_CONTAINS(t.err.msg, "aws_role_name");
    t_call_free(&t);
    t_call(&t, "invoke/amazon.titan-text-express-v1",
           "{\"aws_access_key_id\":\"A\",\"aws_secret_access_key\":\"S\"}", false);
    CHECK_INT(t.rc, MG_ERROR);
    CHECK_CONTAINS(t.err.msg, "bedrock/converse/amazon.titan-text-express-v1");
    t_call_free(&t);

    MG_T_CASE("provider: wires per operation; framing by content type");
    const mg_provider_t *p = mg_provider_find("bedrock");
    CHECK(p != NULL && strcmp(p->exception_name, "BedrockException") == 0);
    mg_deployment_t d;
    memset(&d, 0, sizeof(d));
    d.upstream_model = "invoke/" HAIKU;
    CHECK(p->ops->wire(p, &d, MG_OP_CHAT) == MG_WIRE_BEDROCK_INVOKE);
    d.upstream_model = HAIKU;
    CHECK(p->ops->wire(p, &d, MG_OP_CHAT) == MG_WIRE_BEDROCK_CONVERSE);
    CHECK(p->ops->wire(p, &d, MG_OP_EMBEDDINGS) == MG_WIRE_NONE);
    CHECK(p->ops->wire(p, &d, MG_OP_COUNT_TOKENS) == MG_WIRE_NONE);
    CHECK(p->ops->framing(p, NULL, "application/vnd.amazon.eventstream") == MG_FRAMING_EVENTSTREAM);
    CHECK(p->ops->framing(p, NULL, "application/json") == MG_FRAMING_JSON);

    MG_T_CASE("provider: every credential is in the fingerprint");
    mg_deployment_t fd;
    memset(&fd, 0, sizeof(fd));
    fd.provider = "bedrock";
    fd.upstream_model = HAIKU;
    fd.litellm_params = json_pack("{s:s,s:s,s:s}", "aws_access_key_id", "A",
                                  "aws_secret_access_key", "S1", "aws_session_token", "T");
    char h1[65], h2[65], h3[65], h4[65];
    mg_provider_cred_hash(p, &fd, h1);
    json_object_set_new(fd.litellm_params, "aws_secret_access_key", json_string("S2"));
    mg_provider_cred_hash(p, &fd, h2);
    json_object_set_new(fd.litellm_params, "aws_session_token", json_string("T2"));
    mg_provider_cred_hash(p, &fd, h3);
    setenv("AWS_SECRET_ACCESS_KEY", "from-env", 1);
    mg_provider_cred_hash(p, &fd, h4);
    setenv("AWS_SECRET_ACCESS_KEY", "", 1);
    CHECK(strcmp(h1, h2) != 0, "a rotated secret key changes the fingerprint");
    CHECK(strcmp(h2, h3) != 0, "a rotated session token changes the fingerprint");
    CHECK(strcmp(h3, h4) != 0, "the environment's secret is in the fingerprint");
    json_decref(fd.litellm_params);

    MG_T_CASE("provider: map_error reads the x-amzn-errortype header");
    mg_uperr_t e;
    mg_provider_error_http_hdr(p, "bedrock", MG_WIRE_BEDROCK_CONVERSE, 429,
                               "ThrottlingException:http://internal.amazon.com/coral/",
                               "{\"message\":\"slow down\"}", 23, &e);
    CHECK_INT(e.status, 429);
    CHECK(e.rate_limit && e.cls == MG_ERR_RATE_LIMITED);
    CHECK_STR(e.message, "litellm.RateLimitError: BedrockException: Rate Limit Error - "
                         "{\"message\":\"slow down\"}");
    mg_uperr_free(&e);
    mg_provider_error_http(p, "bedrock", MG_WIRE_BEDROCK_CONVERSE, 403,
                           "{\"message\":\"The security token included in the request is invalid.\"}",
                           70, &e);
    CHECK_INT(e.status, 401);
    CHECK(e.auth);
    mg_uperr_free(&e);
}

int
main(void)
{
    test_converse_basic();
    test_converse_tools();
    test_converse_params();
    test_converse_media();
    test_anthropic_client();
    test_invoke_build();
    test_decode_converse_bodies();
    test_decode_converse_stream();
    test_decode_invoke();
    test_errors();
    test_provider();
    return mg_test_done();
}
