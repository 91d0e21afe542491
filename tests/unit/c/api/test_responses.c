/*
 * test_responses.c -- core/api/mg_api_responses.c through the public API (mg_api.h):
 *
 *   ids:       the response ids LiteLLM hands out ("resp_" + base64 naming the deployment),
 *              byte for byte what Python's base64 gives, and decoded back;
 *   requests:  validation of Responses bodies, and the translation to the neutral chat
 *              request (instructions, input items, function calls and their outputs,
 *              reasoning items, tools, tool_choice, text.format, reasoning.effort), also on
 *              to an Anthropic body; what only a stored response can give is refused;
 *   responses: the encoder from neutral events to a Responses object and to the response.*
 *              event sequence of a stream (order, sequence numbers, items, usage, status);
 *   relay:     the native pass-through: ids encoded, model restamped, usage read;
 *   splice:    the client's body with previous_response_id and metadata substituted.
 */
#include "mg_test.h"

#include "api/mg_api.h"
#include "base/mg_arena.h"
#include "base/mg_buf.h"

#include <jansson.h>

static mg_arena_t t_arena;

/* Parses body as a Responses request into q (arena t_arena); the parse's return code. */
static int
t_parse(const char *body, mg_api_req_t *q, mg_api_err_t *err)
{
    memset(q, 0, sizeof(*q));
    return mg_api_parse(mg_api_get(MG_API_OPENAI_RESPONSES), &t_arena, body, strlen(body), NULL,
                        q, err);
}

/* The neutral request of body (new reference) or NULL with err. */
static json_t *
t_neutral(const char *body, mg_api_err_t *err)
{
    mg_api_req_t q;
    if (t_parse(body, &q, err) != MG_OK) {
        return NULL;
    }
    json_t *n = mg_api_neutral(&q, err);
    json_incref(n);
    mg_api_req_free(&q);
    return n;
}

static const char *
t_str(json_t *o, const char *path)
{
    /* "a.b.0.c": object keys and array indexes */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, ".")) {
        if (tok[0] >= '0' && tok[0] <= '9') {
            cur = json_array_get(cur, (size_t) atoi(tok));
        } else {
            cur = json_object_get(cur, tok);
        }
    }
    return json_string_value(cur);
}

static json_t *
t_get(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, ".")) {
        if (tok[0] >= '0' && tok[0] <= '9') {
            cur = json_array_get(cur, (size_t) atoi(tok));
        } else {
            cur = json_object_get(cur, tok);
        }
    }
    return cur;
}

/* ---- ids ---- */

static void
test_ids(void)
{
    MG_T_CASE("ids");
    mg_buf_t b = MG_BUF_INIT;
    mg_api_resp_id_encode("openai", "abc123", "resp_xyz", 8, &b);
    /* Python: "resp_" + base64.b64encode(b"litellm:custom_llm_provider:openai;model_id:abc123;
     * response_id:resp_xyz") */
    CHECK_STR(mg_buf_cstr(&b), "resp_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOm9wZW5haTttb2RlbF9pZDph"
                               "YmMxMjM7cmVzcG9uc2VfaWQ6cmVzcF94eXo=");
    mg_resp_id_t id;
    CHECK_INT(mg_api_resp_id_decode(mg_buf_head(&b), mg_buf_len(&b), &t_arena, &id), MG_OK);
    CHECK_STR(id.provider, "openai");
    CHECK_STR(id.model_id, "abc123");
    CHECK_STR(id.response_id, "resp_xyz");
    /* the padding dropped in transit, and the URL-safe alphabet, still decode */
    CHECK_INT(mg_api_resp_id_decode(mg_buf_head(&b), mg_buf_len(&b) - 1, &t_arena, &id), MG_OK);
    CHECK_STR(id.response_id, "resp_xyz");
    mg_buf_free(&b);

    /* LiteLLM writes None for a missing model id */
    const char *none = "resp_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOmF6dXJlO21vZGVsX2lkOk5vbmU7cmVzcG9u"
                       "c2VfaWQ6cmVzcF9x";
    CHECK_INT(mg_api_resp_id_decode(none, strlen(none), &t_arena, &id), MG_OK);
    CHECK_STR(id.provider, "azure");
    CHECK(id.model_id == NULL);
    CHECK_STR(id.response_id, "resp_q");

    /* an upstream's own id is not ours: it comes back as it is */
    CHECK_INT(mg_api_resp_id_decode("resp_67c9fdcecf488190", 21, &t_arena, &id), MG_DECLINED);
    CHECK_STR(id.response_id, "resp_67c9fdcecf488190");
    CHECK(id.model_id == NULL);
    CHECK_INT(mg_api_resp_id_decode("resp_!!!", 8, &t_arena, &id), MG_DECLINED);
    CHECK_INT(mg_api_resp_id_decode("chatcmpl-1", 10, &t_arena, &id), MG_DECLINED);

    /* an upstream id with separators in it survives the round trip */
    mg_buf_t c = MG_BUF_INIT;
    mg_api_resp_id_encode("anthropic", "dep-1", "msg;a:b", 7, &c);
    CHECK_INT(mg_api_resp_id_decode(mg_buf_head(&c), mg_buf_len(&c), &t_arena, &id), MG_OK);
    CHECK_STR(id.model_id, "dep-1");
    CHECK_STR(id.response_id, "msg;a:b");
    mg_buf_free(&c);
}

/* ---- validation ---- */

static void
t_refused(const char *body, int status, const char *param, const char *needle)
{
    mg_api_req_t q;
    mg_api_err_t err;
    int rc = t_parse(body, &q, &err);
    CHECK(rc == MG_ERROR, "accepted: %s", body);
    if (rc == MG_ERROR) {
        CHECK_INT(err.status, status);
        char pj[128];
        snprintf(pj, sizeof(pj), "\"%s\"", param);
        CHECK_STR(err.param_json, pj);
        CHECK_CONTAINS(err.msg, needle);
    }
    mg_api_req_free(&q);
}

static void
test_validate(void)
{
    MG_T_CASE("validate");
    mg_api_req_t q;
    mg_api_err_t err;
    CHECK_INT(t_parse("{\"model\":\"m\",\"input\":\"hi\",\"stream\":true,\"store\":false,"
                      "\"temperature\":0.5,\"top_p\":1,\"max_output_tokens\":64,"
                      "\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],\"tool_choice\":\"auto\","
                      "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"x\","
                      "\"schema\":{\"type\":\"object\"}}},\"reasoning\":{\"effort\":\"low\"},"
                      "\"instructions\":\"be brief\",\"previous_response_id\":\"resp_1\"}",
                      &q, &err), MG_OK);
    CHECK(q.stream);
    CHECK_STR(q.model, "m");
    mg_api_req_free(&q);
    t_refused("{\"input\":\"hi\"}", 400, "model", "Missing required parameter: 'model'");
    t_refused("{\"model\":\"m\",\"input\":3}", 400, "input",
              "expected one of a string or array of input items, but got a number");
    t_refused("{\"model\":\"m\",\"input\":[\"hi\"]}", 400, "input", "'input[0]'");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"temperature\":3}", 400, "temperature",
              "Expected a value <= 2");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"top_p\":\"1\"}", 400, "top_p",
              "expected a decimal");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", 400,
              "max_output_tokens", "Expected a value >= 1");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"instructions\":[1]}", 400, "instructions",
              "expected a string");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"name\":\"f\"}]}", 400, "tools",
              "'tools[0].type'");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}", 400, "tools",
              "'tools[0].name'");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"always\"}", 400, "tool_choice",
              "'none', 'auto' or 'required'");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\","
              "\"schema\":{}}}}", 400, "text.format", "'text.format.name'");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}", 400,
              "text.format.type", "'json_schema'");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"reasoning\":{\"effort\":1}}", 400,
              "reasoning.effort", "expected a string");
    t_refused("{\"model\":\"m\",\"input\":\"x\",\"store\":\"yes\"}", 400, "store",
              "expected a boolean");
}

/* ---- request translation ---- */

static void
test_neutral_basic(void)
{
    MG_T_CASE("neutral basic");
    mg_api_err_t err;
    json_t *n = t_neutral("{\"model\":\"m\",\"instructions\":\"be brief\",\"input\":\"hello\","
                          "\"max_output_tokens\":50,\"temperature\":0.2,\"top_p\":0.9,"
                          "\"user\":\"u1\",\"store\":true,\"truncation\":\"disabled\","
                          "\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},"
                          "\"metadata\":{\"a\":\"b\"},\"stream\":true}", &err);
    CHECK(n != NULL, "%s", err.msg);
    if (n == NULL) {
        return;
    }
    CHECK_STR(t_str(n, "model"), "m");
    CHECK_INT(json_array_size(json_object_get(n, "messages")), 2);
    CHECK_STR(t_str(n, "messages.0.role"), "system");
    CHECK_STR(t_str(n, "messages.0.content"), "be brief");
    CHECK_STR(t_str(n, "messages.1.role"), "user");
    CHECK_STR(t_str(n, "messages.1.content"), "hello");
    CHECK_INT(json_integer_value(json_object_get(n, "max_tokens")), 50);
    CHECK(json_number_value(json_object_get(n, "temperature")) == 0.2);
    CHECK(json_number_value(json_object_get(n, "top_p")) == 0.9);
    CHECK_STR(t_str(n, "user"), "u1");
    CHECK_STR(t_str(n, "reasoning_effort"), "high");
    /* Responses-only parameters with no chat meaning are not carried */
    CHECK(json_object_get(n, "store") == NULL);
    CHECK(json_object_get(n, "truncation") == NULL);
    CHECK(json_object_get(n, "max_output_tokens") == NULL);
    CHECK(json_object_get(n, "input") == NULL);
    CHECK(json_object_get(n, "metadata") == NULL);
    json_decref(n);
}

static void
test_neutral_items(void)
{
    MG_T_CASE("neutral items");
    mg_api_err_t err;
    json_t *n = t_neutral(
        "{\"model\":\"m\",\"input\":["
        "{\"role\":\"developer\",\"content\":\"rules\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":["
        "{\"type\":\"input_text\",\"text\":\"look\"},"
        "{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,AAA\",\"detail\":\"low\"}]},"
        "{\"type\":\"message\",\"role\":\"assistant\",\"status\":\"completed\",\"content\":["
        "{\"type\":\"output_text\",\"text\":\"let me \",\"annotations\":[]},"
        "{\"type\":\"output_text\",\"text\":\"check\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get\",\"arguments\":\"{\\\"a\\\":1}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_2\",\"name\":\"put\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"one\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":["
        "{\"type\":\"input_text\",\"text\":\"two\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\","
        "\"text\":\"thought\"}],\"encrypted_content\":\"sig-1\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_3\",\"name\":\"get\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_3\",\"output\":\"three\"},"
        "{\"role\":\"user\",\"content\":\"thanks\"}]}", &err);
    CHECK(n != NULL, "%s", err.msg);
    if (n == NULL) {
        return;
    }
    json_t *m = json_object_get(n, "messages");
    CHECK_INT(json_array_size(m), 8);
    CHECK_STR(t_str(m, "0.role"), "developer");
    CHECK_STR(t_str(m, "0.content"), "rules");
    CHECK_STR(t_str(m, "1.role"), "user");
    CHECK_STR(t_str(m, "1.content.0.type"), "text");
    CHECK_STR(t_str(m, "1.content.0.text"), "look");
    CHECK_STR(t_str(m, "1.content.1.type"), "image_url");
    CHECK_STR(t_str(m, "1.content.1.image_url.url"), "data:image/png;base64,AAA");
    CHECK_STR(t_str(m, "1.content.1.image_url.detail"), "low");
    /* the assistant's text and the calls after it are one assistant turn */
    CHECK_STR(t_str(m, "2.role"), "assistant");
    CHECK_STR(t_str(m, "2.content"), "let me check");
    CHECK_INT(json_array_size(t_get(m, "2.tool_calls")), 2);
    CHECK_STR(t_str(m, "2.tool_calls.0.id"), "call_1");
    CHECK_STR(t_str(m, "2.tool_calls.0.type"), "function");
    CHECK_STR(t_str(m, "2.tool_calls.0.function.name"), "get");
    CHECK_STR(t_str(m, "2.tool_calls.0.function.arguments"), "{\"a\":1}");
    CHECK_STR(t_str(m, "2.tool_calls.1.id"), "call_2");
    CHECK_STR(t_str(m, "3.role"), "tool");
    CHECK_STR(t_str(m, "3.tool_call_id"), "call_1");
    CHECK_STR(t_str(m, "3.content"), "one");
    CHECK_STR(t_str(m, "4.tool_call_id"), "call_2");
    CHECK_STR(t_str(m, "4.content.0.text"), "two");
    /* a reasoning item with a signature is the next assistant turn's thinking block */
    CHECK_STR(t_str(m, "5.role"), "assistant");
    CHECK(json_is_null(t_get(m, "5.content")));
    CHECK_STR(t_str(m, "5.thinking_blocks.0.type"), "thinking");
    CHECK_STR(t_str(m, "5.thinking_blocks.0.thinking"), "thought");
    CHECK_STR(t_str(m, "5.thinking_blocks.0.signature"), "sig-1");
    CHECK_STR(t_str(m, "5.tool_calls.0.id"), "call_3");
    CHECK_STR(t_str(m, "6.role"), "tool");
    CHECK_STR(t_str(m, "7.role"), "user");
    CHECK_STR(t_str(m, "7.content"), "thanks");
    json_decref(n);
}

static void
test_neutral_tools(void)
{
    MG_T_CASE("neutral tools");
    mg_api_err_t err;
    json_t *n = t_neutral("{\"model\":\"m\",\"input\":\"x\",\"tools\":["
                          "{\"type\":\"function\",\"name\":\"get\",\"description\":\"d\","
                          "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
                          "\"string\"}}},\"strict\":true},"
                          "{\"type\":\"function\",\"name\":\"bare\"},"
                          "{\"type\":\"web_search_preview\",\"search_context_size\":\"low\"}],"
                          "\"tool_choice\":{\"type\":\"function\",\"name\":\"get\"},"
                          "\"parallel_tool_calls\":false,"
                          "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"out\","
                          "\"schema\":{\"type\":\"object\"},\"strict\":true}}}", &err);
    CHECK(n != NULL, "%s", err.msg);
    if (n == NULL) {
        return;
    }
    CHECK_INT(json_array_size(json_object_get(n, "tools")), 2);
    CHECK_STR(t_str(n, "tools.0.type"), "function");
    CHECK_STR(t_str(n, "tools.0.function.name"), "get");
    CHECK_STR(t_str(n, "tools.0.function.description"), "d");
    CHECK_STR(t_str(n, "tools.0.function.parameters.properties.a.type"), "string");
    CHECK(json_is_true(t_get(n, "tools.0.function.strict")));
    CHECK_STR(t_str(n, "tools.1.function.parameters.type"), "object");
    CHECK_STR(t_str(n, "web_search_options.search_context_size"), "low");
    CHECK_STR(t_str(n, "tool_choice.type"), "function");
    CHECK_STR(t_str(n, "tool_choice.function.name"), "get");
    CHECK(json_is_false(json_object_get(n, "parallel_tool_calls")));
    CHECK_STR(t_str(n, "response_format.type"), "json_schema");
    CHECK_STR(t_str(n, "response_format.json_schema.name"), "out");
    CHECK_STR(t_str(n, "response_format.json_schema.schema.type"), "object");
    CHECK(json_is_true(t_get(n, "response_format.json_schema.strict")));
    json_decref(n);

    n = t_neutral("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"required\","
                  "\"text\":{\"format\":{\"type\":\"json_object\"}}}", &err);
    CHECK(n != NULL);
    CHECK_STR(t_str(n, "tool_choice"), "required");
    CHECK_STR(t_str(n, "response_format.type"), "json_object");
    json_decref(n);
}

static void
t_neutral_refused(const char *body, const char *param, const char *needle)
{
    mg_api_err_t err;
    json_t *n = t_neutral(body, &err);
    CHECK(n == NULL, "translated: %s", body);
    if (n == NULL) {
        CHECK_INT(err.status, 400);
        char pj[128];
        snprintf(pj, sizeof(pj), "\"%s\"", param);
        CHECK_STR(err.param_json, pj);
        CHECK_CONTAINS(err.msg, needle);
    }
    json_decref(n);
}

static void
test_neutral_refused(void)
{
    MG_T_CASE("neutral refused");
    /* only a provider that stores responses can answer these */
    t_neutral_refused("{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
                      "previous_response_id", "send the whole conversation in 'input'");
    t_neutral_refused("{\"model\":\"m\",\"input\":\"x\",\"conversation\":\"conv_1\"}",
                      "conversation", "stored by the provider");
    t_neutral_refused("{\"model\":\"m\",\"input\":\"x\",\"background\":true}", "background",
                      "background responses");
    t_neutral_refused("{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"i\"}]}",
                      "input", "item_reference");
    t_neutral_refused("{\"model\":\"m\",\"input\":[{\"type\":\"computer_call\"}]}", "input",
                      "'computer_call'");
    t_neutral_refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"input_image\",\"file_id\":\"f\"}]}]}", "input", "file_id");
    t_neutral_refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"file_search\"}]}",
                      "tools", "'file_search'");
    t_neutral_refused("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"allowed_tools\"}}",
                      "tool_choice", "'allowed_tools'");
    t_neutral_refused("{\"model\":\"m\"}", "input", "Missing required parameter: 'input'");
}

/* On to Anthropic: the system prompt, and each tool call paired with its result. */
static void
test_to_anthropic(void)
{
    MG_T_CASE("to anthropic");
    mg_api_err_t err;
    json_t *n = t_neutral("{\"model\":\"claude\",\"instructions\":\"sys\",\"input\":["
                          "{\"role\":\"user\",\"content\":\"weather?\"},"
                          "{\"type\":\"function_call\",\"call_id\":\"toolu_1\",\"name\":\"w\","
                          "\"arguments\":\"{\\\"c\\\":\\\"Paris\\\"}\"},"
                          "{\"type\":\"function_call_output\",\"call_id\":\"toolu_1\","
                          "\"output\":\"sunny\"}],"
                          "\"tools\":[{\"type\":\"function\",\"name\":\"w\",\"parameters\":"
                          "{\"type\":\"object\"}}],\"max_output_tokens\":100}", &err);
    CHECK(n != NULL, "%s", err.msg);
    if (n == NULL) {
        return;
    }
    mg_body_opts_t o = {.model = "claude-sonnet-4-5", .provider = "anthropic"};
    mg_buf_t b = MG_BUF_INIT;
    CHECK_INT(mg_api_build(MG_WIRE_ANTHROPIC, MG_OP_CHAT, n, &o, &b, &err), MG_OK);
    json_t *a = json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, NULL);
    CHECK(a != NULL);
    /* the system prompt as Anthropic's system blocks (or text) */
    CHECK_STR(json_is_string(json_object_get(a, "system")) ? t_str(a, "system")
                                                          : t_str(a, "system.0.text"), "sys");
    CHECK_INT(json_integer_value(json_object_get(a, "max_tokens")), 100);
    CHECK_STR(t_str(a, "messages.1.role"), "assistant");
    CHECK_STR(t_str(a, "messages.1.content.0.type"), "tool_use");
    CHECK_STR(t_str(a, "messages.1.content.0.id"), "toolu_1");
    CHECK_STR(t_str(a, "messages.1.content.0.input.c"), "Paris");
    CHECK_STR(t_str(a, "messages.2.role"), "user");
    CHECK_STR(t_str(a, "messages.2.content.0.type"), "tool_result");
    CHECK_STR(t_str(a, "messages.2.content.0.tool_use_id"), "toolu_1");
    CHECK_STR(t_str(a, "tools.0.name"), "w");
    json_decref(a);
    mg_buf_free(&b);
    json_decref(n);
}

/* ---- encoder ---- */

typedef struct {
    mg_enc_t enc;
    mg_usage_t usage;
    mg_buf_t out;
    mg_api_req_t q;
} t_enc_t;

static void
t_enc_start(t_enc_t *t, const char *body, bool stream)
{
    memset(t, 0, sizeof(*t));
    mg_api_err_t err;
    CHECK_INT(t_parse(body, &t->q, &err), MG_OK);
    mg_enc_init(&t->enc, mg_api_get(MG_API_OPENAI_RESPONSES), stream, false, "my-model", &t->usage,
                &t->out);
    mg_enc_set_origin(&t->enc, &t->q, "anthropic", "dep-7");
}

static void
t_ev(t_enc_t *t, mg_ev_kind_t kind, const char *id, const char *name, const char *text,
     int tool, mg_finish_t fin)
{
    mg_ev_t ev = {.kind = kind, .tool = tool, .finish = fin};
    if (id != NULL) {
        ev.id = id;
        ev.id_len = strlen(id);
    }
    if (name != NULL) {
        ev.name = name;
        ev.name_len = strlen(name);
    }
    if (text != NULL) {
        ev.text = text;
        ev.text_len = strlen(text);
    }
    if (kind == MG_EV_START) {
        ev.created = 1700000000;
    }
    mg_enc_event(&t->enc, &ev);
}

static void
t_enc_free(t_enc_t *t)
{
    mg_enc_free(&t->enc);
    mg_buf_free(&t->out);
    mg_api_req_free(&t->q);
}

/* A text then a tool call, as Anthropic answers with tool use. */
static void
t_feed_text_tool(t_enc_t *t, mg_finish_t fin)
{
    t_ev(t, MG_EV_START, "msg_01", "claude-x", NULL, 0, 0);
    t_ev(t, MG_EV_TEXT, NULL, NULL, "Let me ", 0, 0);
    t_ev(t, MG_EV_TEXT, NULL, NULL, "look.", 0, 0);
    t_ev(t, MG_EV_TOOL, "toolu_9", "get_weather", NULL, 0, 0);
    t_ev(t, MG_EV_TOOL, NULL, NULL, "{\"city\":", 0, 0);
    t_ev(t, MG_EV_TOOL, NULL, NULL, "\"Paris\"}", 0, 0);
    t->usage.prompt_tokens = 30;
    t->usage.completion_tokens = 12;
    t->usage.cache_read_tokens = 5;
    t->usage.seen = true;
    t_ev(t, MG_EV_USAGE, NULL, NULL, NULL, 0, 0);
    t_ev(t, MG_EV_FINISH, NULL, NULL, NULL, 0, fin);
    t_ev(t, MG_EV_END, NULL, NULL, NULL, 0, 0);
}

static void
test_encode_body(void)
{
    MG_T_CASE("encode body");
    t_enc_t t;
    t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\",\"instructions\":\"sys\","
                    "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\"}],"
                    "\"temperature\":0.3}", false);
    t_feed_text_tool(&t, MG_FIN_TOOL_CALLS);
    mg_enc_finish(&t.enc);
    json_t *r = json_loadb(mg_buf_head(&t.out), mg_buf_len(&t.out), 0, NULL);
    CHECK(r != NULL, "not JSON: %s", mg_buf_cstr(&t.out));
    CHECK_STR(t_str(r, "object"), "response");
    CHECK_STR(t_str(r, "status"), "completed");
    CHECK(json_is_null(json_object_get(r, "incomplete_details")));
    CHECK_STR(t_str(r, "model"), "my-model");
    CHECK_INT(json_integer_value(json_object_get(r, "created_at")), 1700000000);
    mg_resp_id_t id;
    const char *rid = t_str(r, "id");
    CHECK(rid != NULL && mg_api_resp_id_decode(rid, strlen(rid), &t_arena, &id) == MG_OK);
    if (rid != NULL) {
        CHECK_STR(id.provider, "anthropic");
        CHECK_STR(id.model_id, "dep-7");
        CHECK_STR(id.response_id, "msg_01");
    }
    CHECK_INT(json_array_size(json_object_get(r, "output")), 2);
    CHECK_STR(t_str(r, "output.0.type"), "message");
    CHECK_STR(t_str(r, "output.0.role"), "assistant");
    CHECK_STR(t_str(r, "output.0.status"), "completed");
    CHECK_STR(t_str(r, "output.0.content.0.type"), "output_text");
    CHECK_STR(t_str(r, "output.0.content.0.text"), "Let me look.");
    CHECK_STR(t_str(r, "output.1.type"), "function_call");
    CHECK_STR(t_str(r, "output.1.call_id"), "toolu_9");
    CHECK_STR(t_str(r, "output.1.name"), "get_weather");
    CHECK_STR(t_str(r, "output.1.arguments"), "{\"city\":\"Paris\"}");
    CHECK(strncmp(t_str(r, "output.1.id") ? t_str(r, "output.1.id") : "", "fc_", 3) == 0);
    CHECK_INT(json_integer_value(t_get(r, "usage.input_tokens")), 30);
    CHECK_INT(json_integer_value(t_get(r, "usage.output_tokens")), 12);
    CHECK_INT(json_integer_value(t_get(r, "usage.total_tokens")), 42);
    CHECK_INT(json_integer_value(t_get(r, "usage.input_tokens_details.cached_tokens")), 5);
    /* the request's parameters echoed, LiteLLM's defaults where it set none */
    CHECK_STR(t_str(r, "instructions"), "sys");
    CHECK_STR(t_str(r, "tools.0.name"), "get_weather");
    CHECK(json_number_value(json_object_get(r, "temperature")) == 0.3);
    CHECK(json_number_value(json_object_get(r, "top_p")) == 1.0);
    CHECK_STR(t_str(r, "tool_choice"), "auto");
    CHECK_STR(t_str(r, "text.format.type"), "text");
    /* nothing is stored for a translated response */
    CHECK(json_is_false(json_object_get(r, "store")));
    json_decref(r);
    t_enc_free(&t);

    /* max tokens: incomplete, with the reason the Responses API gives */
    t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\"}", false);
    t_ev(&t, MG_EV_START, "m2", NULL, NULL, 0, 0);
    t_ev(&t, MG_EV_TEXT, NULL, NULL, "cut", 0, 0);
    t_ev(&t, MG_EV_FINISH, NULL, NULL, NULL, 0, MG_FIN_LENGTH);
    t_ev(&t, MG_EV_END, NULL, NULL, NULL, 0, 0);
    mg_enc_finish(&t.enc);
    r = json_loadb(mg_buf_head(&t.out), mg_buf_len(&t.out), 0, NULL);
    CHECK_STR(t_str(r, "status"), "incomplete");
    CHECK_STR(t_str(r, "incomplete_details.reason"), "max_output_tokens");
    json_decref(r);
    t_enc_free(&t);
}

/* The events of an SSE text, in order: [{"event":..,"data":{..}}]. */
static json_t *
t_events(const char *s)
{
    json_t *a = json_array();
    const char *p = s;
    while ((p = strstr(p, "event: ")) != NULL) {
        const char *nl = strchr(p, '\n');
        const char *d = nl ? strstr(nl, "data: ") : NULL;
        const char *end = d ? strstr(d, "\n\n") : NULL;
        if (nl == NULL || d == NULL || end == NULL) {
            break;
        }
        json_t *data = json_loadb(d + 6, (size_t) (end - d - 6), 0, NULL);
        json_array_append_new(a, json_pack("{s:s%,s:o}", "event", p + 7, (size_t) (nl - p - 7),
                                           "data", data ? data : json_null()));
        p = end;
    }
    return a;
}

static void
test_encode_stream(void)
{
    MG_T_CASE("encode stream");
    t_enc_t t;
    t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\",\"stream\":true}", true);
    t_feed_text_tool(&t, MG_FIN_TOOL_CALLS);
    mg_enc_finish(&t.enc);
    json_t *evs = t_events(mg_buf_cstr(&t.out));
    static const char *const want[] = {
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed",
    };
    size_t nw = sizeof(want) / sizeof(want[0]);
    CHECK_INT(json_array_size(evs), nw);
    for (size_t i = 0; i < nw && i < json_array_size(evs); i++) {
        json_t *e = json_array_get(evs, i);
        CHECK_STR(t_str(e, "event"), want[i]);
        /* the data's type is the event's name; sequence numbers count from 0 */
        CHECK_STR(t_str(e, "data.type"), want[i]);
        CHECK_INT(json_integer_value(t_get(e, "data.sequence_number")), i);
    }
    json_t *created = json_array_get(evs, 0);
    CHECK_STR(t_str(created, "data.response.status"), "in_progress");
    CHECK_INT(json_array_size(t_get(created, "data.response.output")), 0);
    CHECK(json_is_null(t_get(created, "data.response.usage")));
    json_t *added = json_array_get(evs, 2);
    CHECK_INT(json_integer_value(t_get(added, "data.output_index")), 0);
    CHECK_STR(t_str(added, "data.item.type"), "message");
    CHECK_STR(t_str(added, "data.item.status"), "in_progress");
    const char *msg_id = t_str(added, "data.item.id");
    CHECK_STR(t_str(json_array_get(evs, 4), "data.item_id"), msg_id);
    CHECK_STR(t_str(json_array_get(evs, 4), "data.delta"), "Let me ");
    CHECK_STR(t_str(json_array_get(evs, 6), "data.text"), "Let me look.");
    json_t *call = json_array_get(evs, 9);
    CHECK_INT(json_integer_value(t_get(call, "data.output_index")), 1);
    CHECK_STR(t_str(call, "data.item.type"), "function_call");
    CHECK_STR(t_str(call, "data.item.call_id"), "toolu_9");
    CHECK_STR(t_str(call, "data.item.name"), "get_weather");
    CHECK_STR(t_str(call, "data.item.arguments"), "");
    CHECK_STR(t_str(json_array_get(evs, 12), "data.arguments"), "{\"city\":\"Paris\"}");
    json_t *done = json_array_get(evs, 14);
    CHECK_STR(t_str(done, "data.response.status"), "completed");
    CHECK_STR(t_str(done, "data.response.output.1.arguments"), "{\"city\":\"Paris\"}");
    CHECK_INT(json_integer_value(t_get(done, "data.response.usage.total_tokens")), 42);
    /* the same id from the first event to the last */
    CHECK_STR(t_str(done, "data.response.id"), t_str(created, "data.response.id"));
    json_decref(evs);
    t_enc_free(&t);

    /* reasoning streams as a reasoning item with summary events; length: incomplete */
    t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\",\"stream\":true}", true);
    t_ev(&t, MG_EV_START, "m3", NULL, NULL, 0, 0);
    mg_ev_t rv = {.kind = MG_EV_REASONING, .text = "hmm", .text_len = 3, .sig = "SIG",
                  .sig_len = 3};
    mg_enc_event(&t.enc, &rv);
    t_ev(&t, MG_EV_TEXT, NULL, NULL, "ok", 0, 0);
    t_ev(&t, MG_EV_FINISH, NULL, NULL, NULL, 0, MG_FIN_LENGTH);
    t_ev(&t, MG_EV_END, NULL, NULL, NULL, 0, 0);
    mg_enc_finish(&t.enc);
    evs = t_events(mg_buf_cstr(&t.out));
    CHECK_STR(t_str(json_array_get(evs, 2), "data.item.type"), "reasoning");
    CHECK_STR(t_str(json_array_get(evs, 3), "event"), "response.reasoning_summary_part.added");
    CHECK_STR(t_str(json_array_get(evs, 4), "event"), "response.reasoning_summary_text.delta");
    CHECK_STR(t_str(json_array_get(evs, 4), "data.delta"), "hmm");
    json_t *last = json_array_get(evs, json_array_size(evs) - 1);
    CHECK_STR(t_str(last, "event"), "response.incomplete");
    CHECK_STR(t_str(last, "data.response.incomplete_details.reason"), "max_output_tokens");
    CHECK_STR(t_str(last, "data.response.output.0.encrypted_content"), "SIG");
    CHECK_STR(t_str(last, "data.response.output.0.summary.0.text"), "hmm");
    CHECK_STR(t_str(last, "data.response.output.1.content.0.text"), "ok");
    json_decref(evs);
    t_enc_free(&t);

    /* an upstream error mid-stream: one error event that SDKs throw on, nothing after */
    t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\",\"stream\":true}", true);
    t_ev(&t, MG_EV_START, "m4", NULL, NULL, 0, 0);
    t_ev(&t, MG_EV_TEXT, NULL, NULL, "par", 0, 0);
    mg_ev_t er = {.kind = MG_EV_ERROR, .status = 529, .text = "Overloaded", .text_len = 10,
                  .etype = "overloaded_error"};
    mg_enc_event(&t.enc, &er);
    t_ev(&t, MG_EV_TEXT, NULL, NULL, "more", 0, 0);
    mg_enc_finish(&t.enc);
    evs = t_events(mg_buf_cstr(&t.out));
    last = json_array_get(evs, json_array_size(evs) - 1);
    CHECK_STR(t_str(last, "event"), "error");
    CHECK_STR(t_str(last, "data.code"), "529");
    CHECK_STR(t_str(last, "data.message"), "Overloaded");
    CHECK_STR(t_str(last, "data.error.type"), "overloaded_error");
    CHECK(strstr(mg_buf_cstr(&t.out), "more") == NULL);
    CHECK(strstr(mg_buf_cstr(&t.out), "response.completed") == NULL);
    json_decref(evs);
    t_enc_free(&t);
}

/* Tool calls whose every fragment repeats the id (some OpenAI-compatible servers), and two
 * calls in a row: one item per call. */
static void
test_encode_tool_ids(void)
{
    MG_T_CASE("encode tool ids");
    t_enc_t t;
    t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\"}", false);
    t_ev(&t, MG_EV_START, "c1", NULL, NULL, 0, 0);
    t_ev(&t, MG_EV_TOOL, "call_a", "f", "{\"x\"", 0, 0);
    t_ev(&t, MG_EV_TOOL, "call_a", NULL, ":1}", 0, 0);
    t_ev(&t, MG_EV_TOOL, "call_b", "g", "{}", 1, 0);
    t_ev(&t, MG_EV_END, NULL, NULL, NULL, 0, 0);
    mg_enc_finish(&t.enc);
    json_t *r = json_loadb(mg_buf_head(&t.out), mg_buf_len(&t.out), 0, NULL);
    CHECK_INT(json_array_size(json_object_get(r, "output")), 2);
    CHECK_STR(t_str(r, "output.0.arguments"), "{\"x\":1}");
    CHECK_STR(t_str(r, "output.1.call_id"), "call_b");
    CHECK_STR(t_str(r, "output.1.name"), "g");
    json_decref(r);
    t_enc_free(&t);
}

/* Text after a function call is a new message item, in a body and in a stream alike. */
static void
test_encode_text_after_call(void)
{
    MG_T_CASE("encode text after call");
    for (int stream = 0; stream < 2; stream++) {
        t_enc_t t;
        t_enc_start(&t, "{\"model\":\"my-model\",\"input\":\"x\"}", stream);
        t_ev(&t, MG_EV_START, "c2", NULL, NULL, 0, 0);
        t_ev(&t, MG_EV_TEXT, NULL, NULL, "before", 0, 0);
        t_ev(&t, MG_EV_TOOL, "call_x", "f", "{}", 0, 0);
        t_ev(&t, MG_EV_TEXT, NULL, NULL, "after", 0, 0);
        t_ev(&t, MG_EV_END, NULL, NULL, NULL, 0, 0);
        mg_enc_finish(&t.enc);
        json_t *r;
        if (stream) {
            json_t *evs = t_events(mg_buf_cstr(&t.out));
            r = json_incref(t_get(json_array_get(evs, json_array_size(evs) - 1), "data.response"));
            /* every delta went out, the second text under the third item */
            int deltas = 0;
            size_t i;
            json_t *e;
            json_array_foreach(evs, i, e) {
                if (strcmp(t_str(e, "event"), "response.output_text.delta") == 0) {
                    deltas++;
                    if (strcmp(t_str(e, "data.delta"), "after") == 0) {
                        CHECK_INT(json_integer_value(t_get(e, "data.output_index")), 2);
                    }
                }
            }
            CHECK_INT(deltas, 2);
            json_decref(evs);
        } else {
            r = json_loadb(mg_buf_head(&t.out), mg_buf_len(&t.out), 0, NULL);
        }
        CHECK_INT(json_array_size(json_object_get(r, "output")), 3);
        CHECK_STR(t_str(r, "output.0.content.0.text"), "before");
        CHECK_STR(t_str(r, "output.1.type"), "function_call");
        CHECK_STR(t_str(r, "output.2.content.0.text"), "after");
        json_decref(r);
        t_enc_free(&t);
    }
}

/* ---- relay ---- */

static void
test_relay(void)
{
    MG_T_CASE("relay");
    mg_usage_t u = {0};
    mg_relay_t rl;
    mg_relay_init(&rl, mg_api_get(MG_API_OPENAI_RESPONSES), "alias", &u);
    mg_relay_set_origin(&rl, "openai", "dep-1");
    mg_buf_t out = MG_BUF_INIT;
    const char *created = "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":"
                          "{\"id\":\"resp_up1\",\"object\":\"response\",\"model\":\"gpt-4o-2024\","
                          "\"status\":\"in_progress\",\"usage\":null}}";
    char raw[1024];
    snprintf(raw, sizeof(raw), "event: response.created\ndata: %s\n\n", created);
    mg_relay_event(&rl, raw, strlen(raw), created, strlen(created), &out);
    json_t *evs = t_events(mg_buf_cstr(&out));
    CHECK_INT(json_array_size(evs), 1);
    const char *rid = t_str(json_array_get(evs, 0), "data.response.id");
    mg_resp_id_t id;
    CHECK(rid != NULL && mg_api_resp_id_decode(rid, strlen(rid), &t_arena, &id) == MG_OK);
    if (rid != NULL) {
        CHECK_STR(id.model_id, "dep-1");
        CHECK_STR(id.response_id, "resp_up1");
    }
    CHECK_STR(t_str(json_array_get(evs, 0), "data.response.model"), "alias");
    CHECK_INT(json_integer_value(t_get(json_array_get(evs, 0), "data.sequence_number")), 0);
    json_decref(evs);

    /* an event without a response object goes through byte for byte */
    mg_buf_reset(&out);
    const char *delta = "{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\","
                        "\"output_index\":0,\"content_index\":0,\"delta\":\"hi\"}";
    snprintf(raw, sizeof(raw), "event: response.output_text.delta\ndata: %s\n\n", delta);
    mg_relay_event(&rl, raw, strlen(raw), delta, strlen(delta), &out);
    CHECK_MEM(mg_buf_head(&out), mg_buf_len(&out), raw);

    /* usage from response.completed */
    mg_buf_reset(&out);
    const char *done = "{\"type\":\"response.completed\",\"response\":{\"id\":\"resp_up1\","
                       "\"model\":\"gpt-4o-2024\",\"status\":\"completed\",\"usage\":{"
                       "\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":3},"
                       "\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":2},"
                       "\"total_tokens\":18}}}";
    snprintf(raw, sizeof(raw), "event: response.completed\ndata: %s\n\n", done);
    mg_relay_event(&rl, raw, strlen(raw), done, strlen(done), &out);
    CHECK(u.seen);
    CHECK_INT(u.prompt_tokens, 11);
    CHECK_INT(u.completion_tokens, 7);
    CHECK_INT(u.total_tokens, 18);
    CHECK_INT(u.cache_read_tokens, 3);
    CHECK_INT(u.reasoning_tokens, 2);
    CHECK(!rl.errored);

    /* an error event marks the relay */
    mg_buf_reset(&out);
    const char *err = "{\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\"}";
    snprintf(raw, sizeof(raw), "event: error\ndata: %s\n\n", err);
    mg_relay_event(&rl, raw, strlen(raw), err, strlen(err), &out);
    CHECK(rl.errored);
    CHECK_MEM(mg_buf_head(&out), mg_buf_len(&out), raw);

    /* a whole body: id encoded, model kept unless restamped; an id that already names a
     * deployment (a LiteLLM in front) stays */
    mg_buf_reset(&out);
    const char *body = "{\"id\":\"resp_up2\",\"object\":\"response\",\"model\":\"gpt-4o\"}";
    CHECK(mg_relay_body(&rl, body, strlen(body), false, &out));
    json_t *j = json_loadb(mg_buf_head(&out), mg_buf_len(&out), 0, NULL);
    CHECK_STR(t_str(j, "model"), "gpt-4o");
    rid = t_str(j, "id");
    CHECK(rid != NULL && mg_api_resp_id_decode(rid, strlen(rid), &t_arena, &id) == MG_OK &&
          strcmp(id.response_id, "resp_up2") == 0);
    json_decref(j);
    mg_buf_t enc = MG_BUF_INIT, b2 = MG_BUF_INIT;
    mg_api_resp_id_encode("openai", "other", "resp_x", 6, &enc);
    mg_buf_printf(&b2, "{\"id\":\"%s\",\"model\":\"m\"}", mg_buf_cstr(&enc));
    mg_buf_reset(&out);
    CHECK(!mg_relay_body(&rl, mg_buf_head(&b2), mg_buf_len(&b2), false, &out));
    mg_buf_free(&enc);
    mg_buf_free(&b2);
    mg_buf_free(&out);
}

/* ---- splice with substitutions ---- */

static void
test_splice_subst(void)
{
    MG_T_CASE("splice subst");
    mg_api_req_t q;
    mg_api_err_t err;
    CHECK_INT(t_parse("{\"model\":\"alias\",\"input\":\"x\",\"previous_response_id\":\"resp_ENC\","
                      "\"metadata\":{\"a\":\"b\",\"n\":1},\"mock_response\":\"no\"}", &q, &err),
              MG_OK);
    mg_api_subst_t sub = {0};
    CHECK(mg_api_subst_set(&sub, "previous_response_id", "\"resp_x\""));
    CHECK(mg_api_subst_set(&sub, "previous_response_id", "\"resp_up\"")); /* replaced */
    CHECK(mg_api_subst_set(&sub, "metadata", "{\"a\":\"b\"}"));
    CHECK(mg_api_subst_set(&sub, "k3", "1"));
    CHECK(mg_api_subst_set(&sub, "k4", "1"));
    CHECK(!mg_api_subst_set(&sub, "k5", "1")); /* four slots */
    mg_body_opts_t o = {.model = "gpt-4o", .subst = &sub};
    mg_iovs_t iv = {0};
    mg_api_splice(&q, &o, &t_arena, &iv);
    mg_buf_t b = MG_BUF_INIT;
    for (int i = 0; i < iv.niov; i++) {
        mg_buf_append(&b, iv.iov[i].iov_base, iv.iov[i].iov_len);
    }
    json_t *j = json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, NULL);
    CHECK(j != NULL, "not JSON: %s", mg_buf_cstr(&b));
    CHECK_STR(t_str(j, "model"), "gpt-4o");
    CHECK_STR(t_str(j, "previous_response_id"), "resp_up");
    /* metadata is one of LiteLLM's own names, yet the substituted value goes up */
    CHECK_STR(t_str(j, "metadata.a"), "b");
    CHECK(t_get(j, "metadata.n") == NULL);
    CHECK(json_object_get(j, "mock_response") == NULL);
    json_decref(j);
    mg_buf_free(&b);
    mg_api_req_free(&q);
}

int
main(void)
{
    mg_arena_init(&t_arena, 8192);
    test_ids();
    test_validate();
    test_neutral_basic();
    test_neutral_items();
    test_neutral_tools();
    test_neutral_refused();
    test_to_anthropic();
    test_encode_body();
    test_encode_stream();
    test_encode_tool_ids();
    test_encode_text_after_call();
    test_relay();
    test_splice_subst();
    mg_arena_destroy(&t_arena);
    return mg_test_done();
}
