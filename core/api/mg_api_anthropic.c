/*
 * mg_api_anthropic.c -- Anthropic's Messages wire format, in both directions,
 * translated the way LiteLLM translates it (see /v1/messages and the
 * anthropic/ provider in the README).
 *
 * Client side (/v1/messages, /v1/messages/count_tokens): validation, the
 * neutral request (Anthropic body -> OpenAI chat, LiteLLM's adapter), the
 * encoder (neutral events -> Anthropic message / Anthropic SSE events) and
 * Anthropic's error envelope.  Upstream side: the body from a neutral request
 * (OpenAI chat -> Messages, LiteLLM's AnthropicConfig), the decoder of
 * Anthropic events and messages into neutral events, the error body reader,
 * and the same-wire relay (model restamped in message_start, usage read).
 *
 * Pure: jansson trees live only inside one call; nothing is kept.
 */
#include "mg_api_int.h"

#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_AN_DEFAULT_MAX_TOKENS 4096  /* LiteLLM's DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS */
#define MG_AN_JSON_TOOL "json_tool_call" /* LiteLLM's RESPONSE_FORMAT_TOOL_NAME */

static const char *
mg_an_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- status <-> Anthropic error type ---- */

static const char *
mg_an_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

static int
mg_an_error_status(const char *type)
{
    static const struct {
        const char *type;
        int status;
    } t[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401}, {"billing_error", 402},
        {"permission_error", 403}, {"not_found_error", 404}, {"request_too_large", 413},
        {"rate_limit_error", 429}, {"api_error", 500}, {"timeout_error", 504},
        {"overloaded_error", 529},
    };
    for (size_t i = 0; type != NULL && i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(t[i].type, type) == 0) {
            return t[i].status;
        }
    }
    return 500;
}

/* ---- finish reasons ---- */

static mg_finish_t
mg_an_finish_from(const char *s)
{
    if (s == NULL) {
        return MG_FIN_STOP;
    }
    if (strcmp(s, "max_tokens") == 0 || strcmp(s, "compaction") == 0) {
        return MG_FIN_LENGTH;
    }
    if (strcmp(s, "tool_use") == 0) {
        return MG_FIN_TOOL_CALLS;
    }
    if (strcmp(s, "refusal") == 0 || strcmp(s, "content_filtered") == 0) {
        return MG_FIN_CONTENT_FILTER;
    }
    return MG_FIN_STOP; /* end_turn, stop_sequence, pause_turn, anything new */
}

static const char *
mg_an_finish_to(mg_finish_t f)
{
    switch (f) {
    case MG_FIN_LENGTH: return "max_tokens";
    case MG_FIN_TOOL_CALLS:
    case MG_FIN_FUNCTION_CALL: return "tool_use";
    case MG_FIN_CONTENT_FILTER: return "refusal";
    default: return "end_turn";
    }
}

/* ---- usage ---- */

static int64_t
mg_an_int(json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? mg_clamp_i64(json_number_value(v)) : dflt;
}

/* Anthropic usage (input_tokens excludes the cache) into the neutral record, where
 * prompt_tokens includes it.  Fields absent from u keep their values (message_delta
 * carries only what changed in older API versions). */
static void
mg_an_read_usage(json_t *u, mg_usage_t *out)
{
    if (!json_is_object(u)) {
        return;
    }
    int64_t cr = mg_an_int(u, "cache_read_input_tokens", out->cache_read_tokens);
    int64_t cc = mg_an_int(u, "cache_creation_input_tokens", out->cache_creation_tokens);
    int64_t in_plain = out->prompt_tokens - out->cache_read_tokens - out->cache_creation_tokens;
    in_plain = mg_an_int(u, "input_tokens", in_plain < 0 ? 0 : in_plain);
    out->cache_read_tokens = cr;
    out->cache_creation_tokens = cc;
    out->prompt_tokens = in_plain + cr + cc;
    out->completion_tokens = mg_an_int(u, "output_tokens", out->completion_tokens);
    out->total_tokens = out->prompt_tokens + out->completion_tokens;
    out->seen = true;
}

/* The usage object an Anthropic client reads. */
static void
mg_an_usage(const mg_usage_t *u, mg_buf_t *out)
{
    int64_t in = u->prompt_tokens - u->cache_read_tokens - u->cache_creation_tokens;
    mg_buf_printf(out, "{\"input_tokens\":%lld,\"output_tokens\":%lld",
                  (long long) (in > 0 ? in : 0), (long long) u->completion_tokens);
    mg_buf_printf(out, ",\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld}",
                  (long long) u->cache_creation_tokens, (long long) u->cache_read_tokens);
}

/* ---- client requests: validation ---- */

static int
mg_an_validate(mg_api_req_t *q, mg_arena_t *a, mg_api_err_t *err)
{
    (void) a;
    const mg_api_t *api = q->api;
    if (q->model == NULL || q->model[0] == '\0') {
        return mg_api_err(err, 400, "invalid_request_error", "model", "model: Field required");
    }
    const mg_json_member_t *m = mg_api_member(q, "messages");
    if (m == NULL || m->type == MG_JSON_NULL) {
        return mg_api_err(err, 400, "invalid_request_error", "messages",
                          "messages: Field required");
    }
    if (m->type != MG_JSON_ARRAY) {
        return mg_api_err(err, 400, "invalid_request_error", "messages",
                          "messages: Input should be a valid list");
    }
    const char *e = m->val + 1;
    while (e < m->val + m->val_len && (*e == ' ' || *e == '\n' || *e == '\r' || *e == '\t')) {
        e++;
    }
    if (*e == ']') {
        mg_api_err(&q->late, 400, "invalid_request_error", "messages",
                   "messages: List should have at least 1 item after validation, not 0");
    }
    const mg_json_member_t *st = mg_api_member(q, "stream");
    if (st != NULL && st->type != MG_JSON_TRUE && st->type != MG_JSON_FALSE &&
        st->type != MG_JSON_NULL) {
        return mg_api_err(err, 400, "invalid_request_error", "stream",
                          "stream: Input should be a valid boolean");
    }
    if (api->op == MG_OP_COUNT_TOKENS) {
        return MG_OK;
    }
    const mg_json_member_t *mt = mg_api_member(q, "max_tokens");
    if (mt == NULL || mt->type == MG_JSON_NULL) {
        return mg_api_err(err, 400, "invalid_request_error", "max_tokens",
                          "max_tokens: Field required");
    }
    double v = mg_api_member_num(mt, -1);
    if (mt->type != MG_JSON_NUMBER || !isfinite(v) || v != floor(v)) {
        return mg_api_err(err, 400, "invalid_request_error", "max_tokens",
                          "max_tokens: Input should be a valid integer");
    }
    if (v < 1) {
        return mg_api_err(err, 400, "invalid_request_error", "max_tokens",
                          "max_tokens: Input should be greater than or equal to 1");
    }
    if (v > 2147483647.0) {
        return mg_api_err(err, 400, "invalid_request_error", "max_tokens",
                          "max_tokens: Input should be less than or equal to 2147483647");
    }
    return MG_OK;
}

/* ---- Anthropic body -> neutral (OpenAI chat), as LiteLLM's adapter ---- */

/* An image/document source as an OpenAI image_url part. */
static json_t *
mg_an_source_part(json_t *block)
{
    json_t *src = json_object_get(block, "source");
    const char *type = mg_an_str(src, "type");
    char *url = NULL;
    if (type != NULL && strcmp(type, "base64") == 0) {
        const char *mt = mg_an_str(src, "media_type");
        const char *data = mg_an_str(src, "data");
        if (asprintf(&url, "data:%s;base64,%s", mt ? mt : "image/jpeg", data ? data : "") < 0) {
            abort();
        }
    } else if (type != NULL && strcmp(type, "url") == 0 && mg_an_str(src, "url") != NULL) {
        url = mg_xstrdup(mg_an_str(src, "url"));
    } else {
        return NULL;
    }
    json_t *p = json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url);
    free(url);
    return p;
}

static json_t *
mg_an_text_part(json_t *block)
{
    json_t *p = json_pack("{s:s,s:O}", "type", "text", "text",
                          json_is_string(json_object_get(block, "text"))
                              ? json_object_get(block, "text")
                              : json_string(""));
    json_t *cc = json_object_get(block, "cache_control");
    if (cc != NULL) {
        json_object_set(p, "cache_control", cc);
    }
    return p;
}

/* tool_result content as OpenAI tool message content: a string, or parts */
static json_t *
mg_an_tool_result_content(json_t *c)
{
    if (json_is_string(c)) {
        return json_incref(c);
    }
    if (!json_is_array(c) || json_array_size(c) == 0) {
        return json_string("");
    }
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(c, i, b) {
        const char *t = mg_an_str(b, "type");
        if (t != NULL && strcmp(t, "text") == 0) {
            json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text",
                                                   mg_an_str(b, "text") ? mg_an_str(b, "text") : ""));
        } else if (t != NULL && (strcmp(t, "image") == 0 || strcmp(t, "document") == 0)) {
            json_t *p = mg_an_source_part(b);
            if (p != NULL) {
                json_array_append_new(parts, p);
            }
        }
    }
    if (json_array_size(parts) == 1 &&
        strcmp(mg_an_str(json_array_get(parts, 0), "type"), "text") == 0) {
        json_t *s = json_incref(json_object_get(json_array_get(parts, 0), "text"));
        json_decref(parts);
        return s;
    }
    return parts;
}

static void
mg_an_user_to_neutral(json_t *m, json_t *out)
{
    json_t *c = json_object_get(m, "content");
    if (json_is_string(c)) {
        json_array_append_new(out, json_pack("{s:s,s:O}", "role", "user", "content", c));
        return;
    }
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    /* LiteLLM's order: the turn's tool results first, then its other content */
    json_array_foreach(c, i, b) {
        const char *t = mg_an_str(b, "type");
        if (t != NULL && strcmp(t, "tool_result") == 0) {
            json_t *tm = json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id",
                                   mg_an_str(b, "tool_use_id") ? mg_an_str(b, "tool_use_id") : "",
                                   "content",
                                   mg_an_tool_result_content(json_object_get(b, "content")));
            json_array_append_new(out, tm);
        } else if (t != NULL && strcmp(t, "text") == 0) {
            json_array_append_new(parts, mg_an_text_part(b));
        } else if (t != NULL && (strcmp(t, "image") == 0 || strcmp(t, "document") == 0)) {
            json_t *p = mg_an_source_part(b);
            if (p != NULL) {
                json_array_append_new(parts, p);
            }
        }
    }
    if (json_array_size(parts) > 0) {
        json_array_append_new(out, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    } else {
        json_decref(parts);
    }
}

static void
mg_an_assistant_to_neutral(json_t *m, json_t *out)
{
    json_t *c = json_object_get(m, "content");
    if (json_is_string(c)) {
        json_array_append_new(out, json_pack("{s:s,s:O}", "role", "assistant", "content", c));
        return;
    }
    mg_buf_t text = MG_BUF_INIT, reasoning = MG_BUF_INIT;
    json_t *calls = json_array(), *thinking = json_array();
    bool has_text = false;
    size_t i;
    json_t *b;
    json_array_foreach(c, i, b) {
        const char *t = mg_an_str(b, "type");
        if (t == NULL) {
            continue;
        }
        if (strcmp(t, "text") == 0 && mg_an_str(b, "text") != NULL) {
            mg_buf_append_str(&text, mg_an_str(b, "text"));
            has_text = true;
        } else if (strcmp(t, "tool_use") == 0 || strcmp(t, "server_tool_use") == 0) {
            json_t *in = json_object_get(b, "input");
            char *args = json_dumps(in != NULL ? in : json_object(), JSON_COMPACT | JSON_ENCODE_ANY);
            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id",
                                                   mg_an_str(b, "id") ? mg_an_str(b, "id") : "",
                                                   "type", "function", "function", "name",
                                                   mg_an_str(b, "name") ? mg_an_str(b, "name") : "",
                                                   "arguments", args ? args : "{}"));
            free(args);
        } else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) {
            json_array_append(thinking, b);
            if (mg_an_str(b, "thinking") != NULL) {
                mg_buf_append_str(&reasoning, mg_an_str(b, "thinking"));
            }
        }
    }
    if (!has_text && json_array_size(calls) == 0 && json_array_size(thinking) == 0) {
        mg_buf_free(&text);
        mg_buf_free(&reasoning);
        json_decref(calls);
        json_decref(thinking);
        return; /* nothing to say: LiteLLM drops the message */
    }
    json_t *am = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(am, "content", has_text ? json_string(mg_buf_cstr(&text)) : json_null());
    if (json_array_size(calls) > 0) {
        json_object_set(am, "tool_calls", calls);
    }
    if (json_array_size(thinking) > 0) {
        json_object_set(am, "thinking_blocks", thinking);
        json_object_set_new(am, "reasoning_content", json_string(mg_buf_cstr(&reasoning)));
    }
    json_decref(calls);
    json_decref(thinking);
    mg_buf_free(&text);
    mg_buf_free(&reasoning);
    json_array_append_new(out, am);
}

/* Anthropic-only top-level fields an OpenAI-format upstream would refuse. */
static bool
mg_an_anthropic_only(const char *k)
{
    static const char *const keys[] = {
        "system", "messages", "tools", "tool_choice", "thinking", "stop_sequences", "metadata",
        "output_format", "output_config", "container", "mcp_servers", "context_management",
        "inference_geo", "cache_control", "speed", "service_tier", NULL,
    };
    for (const char *const *p = keys; *p; p++) {
        if (strcmp(*p, k) == 0) {
            return true;
        }
    }
    return false;
}

static void
mg_an_openai_strict(json_t *s)
{
    if (json_is_object(s)) {
        const char *t = mg_an_str(s, "type");
        json_t *props = json_object_get(s, "properties");
        if ((t != NULL && strcmp(t, "object") == 0) || json_is_object(props)) {
            json_object_set_new(s, "additionalProperties", json_false());
            json_t *req = json_array();
            const char *pk;
            json_t *pv;
            json_object_foreach(props, pk, pv) {
                json_array_append_new(req, json_string(pk));
            }
            json_object_set_new(s, "required", req);
        }
        const char *k;
        json_t *v;
        json_object_foreach(s, k, v) {
            if (strcmp(k, "required") != 0) {
                mg_an_openai_strict(v);
            }
        }
    } else if (json_is_array(s)) {
        size_t i;
        json_t *v;
        json_array_foreach(s, i, v) {
            mg_an_openai_strict(v);
        }
    }
}

static json_t *
mg_an_neutral(mg_api_req_t *q, mg_api_err_t *err)
{
    json_error_t je;
    json_t *b = json_loadb(q->body, q->body_len, 0, &je);
    if (!json_is_object(b)) {
        json_decref(b);
        mg_api_err(err, 400, "invalid_request_error", "request_body", "Invalid JSON payload: %s",
                   je.text);
        return NULL;
    }
    json_t *n = json_object();
    json_t *msgs = json_array();
    json_t *sys = json_object_get(b, "system");
    if (json_is_string(sys) && json_string_length(sys) > 0) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", sys));
    } else if (json_is_array(sys) && json_array_size(sys) > 0) {
        json_t *parts = json_array();
        size_t i;
        json_t *blk;
        json_array_foreach(sys, i, blk) {
            if (mg_an_str(blk, "text") != NULL) {
                json_array_append_new(parts, mg_an_text_part(blk));
            }
        }
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "system", "content", parts));
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(b, "messages"), i, m) {
        const char *role = mg_an_str(m, "role");
        if (role != NULL && strcmp(role, "assistant") == 0) {
            mg_an_assistant_to_neutral(m, msgs);
        } else if (role != NULL && strcmp(role, "system") == 0) {
            json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content",
                                                  json_object_get(m, "content")));
        } else {
            mg_an_user_to_neutral(m, msgs);
        }
    }
    json_object_set_new(n, "model", json_string(q->model));
    json_object_set_new(n, "messages", msgs);
    json_t *tools = json_object_get(b, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        json_t *ot = json_array();
        size_t k;
        json_t *t;
        json_array_foreach(tools, k, t) {
            const char *name = mg_an_str(t, "name");
            json_t *schema = json_object_get(t, "input_schema");
            json_t *params = schema != NULL ? json_incref(schema)
                                            : json_pack("{s:s,s:{}}", "type", "object",
                                                        "properties");
            json_t *fn = json_pack("{s:s,s:o}", "name", name ? name : "litellm_unnamed_tool",
                                   "parameters", params);
            if (mg_an_str(t, "description") != NULL) {
                json_object_set(fn, "description", json_object_get(t, "description"));
            }
            json_t *tool = json_pack("{s:s,s:o}", "type", "function", "function", fn);
            if (json_object_get(t, "cache_control") != NULL) {
                json_object_set(tool, "cache_control", json_object_get(t, "cache_control"));
            }
            json_array_append_new(ot, tool);
        }
        json_object_set_new(n, "tools", ot);
    }
    json_t *tc = json_object_get(b, "tool_choice");
    const char *tct = mg_an_str(tc, "type");
    if (tct != NULL) {
        if (strcmp(tct, "any") == 0) {
            json_object_set_new(n, "tool_choice", json_string("required"));
        } else if (strcmp(tct, "tool") == 0 && mg_an_str(tc, "name") != NULL) {
            json_object_set_new(n, "tool_choice",
                                json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name",
                                          mg_an_str(tc, "name")));
        } else if (strcmp(tct, "none") == 0 || strcmp(tct, "auto") == 0) {
            json_object_set_new(n, "tool_choice", json_string(tct));
        }
        if (json_is_true(json_object_get(tc, "disable_parallel_tool_use"))) {
            json_object_set_new(n, "parallel_tool_calls", json_false());
        }
    }
    json_t *th = json_object_get(b, "thinking");
    if (json_is_object(th)) {
        json_object_set(n, "thinking", th); /* an extension: OpenAI-format upstreams get an effort */
    }
    json_t *ss = json_object_get(b, "stop_sequences");
    if (json_is_array(ss) && json_array_size(ss) > 0) {
        json_object_set(n, "stop", ss);
    }
    const char *uid = mg_an_str(json_object_get(b, "metadata"), "user_id");
    if (uid != NULL) {
        json_object_set_new(n, "user", json_string(uid));
    }
    json_t *of = json_object_get(b, "output_format");
    if (!json_is_object(of)) {
        of = json_object_get(json_object_get(b, "output_config"), "format");
    }
    if (json_is_object(of) && json_object_get(of, "schema") != NULL) {
        /* OpenAI's strict mode wants every object closed and every property required */
        json_t *sch = json_deep_copy(json_object_get(of, "schema"));
        mg_an_openai_strict(sch);
        json_object_set_new(n, "response_format",
                            json_pack("{s:s,s:{s:s,s:o,s:b}}", "type", "json_schema", "json_schema",
                                      "name", "structured_output", "schema", sch, "strict", 1));
    }
    /* max_tokens, temperature, top_p, top_k, stream and the rest are copied, as LiteLLM's
     * adapter copies what it does not translate; LiteLLM's own parameters and nulls never */
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        if (json_is_null(v) || strcmp(k, "model") == 0 || mg_an_anthropic_only(k) ||
            mg_api_is_litellm_param_str(k)) {
            continue;
        }
        json_object_set(n, k, v);
    }
    json_decref(b);
    return n;
}

/* ---- neutral (OpenAI chat) -> Anthropic body, as LiteLLM's AnthropicConfig ---- */

/* What the anthropic provider takes (plus what _check_valid_arg never checks). */
static const char *const mg_an_supported[] = {
    "stream", "stop", "temperature", "top_p", "max_tokens", "max_completion_tokens", "tools",
    "tool_choice", "extra_headers", "parallel_tool_calls", "response_format", "user",
    "reasoning_effort", "thinking", "web_search_options", "stream_options", "max_retries", NULL,
};

static bool
mg_an_in(const char *k, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(*list, k) == 0) {
            return true;
        }
    }
    return false;
}

/* LiteLLM's _valid_user_id: not an email, not a phone number. */
static bool
mg_an_valid_user_id(const char *u)
{
    const char *at = strchr(u, '@');
    if (at != NULL && strchr(at, '.') != NULL) {
        return false;
    }
    size_t digits = 0, other = 0;
    for (const char *p = u; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        } else if (strchr("+ ()-", *p) == NULL) {
            other++;
        }
    }
    return !(other == 0 && digits >= 7);
}

/* An image_url part as an Anthropic block (base64 source from a data URL, else a url source). */
static json_t *
mg_an_image_block(json_t *part, mg_api_err_t *err)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : mg_an_str(iu, "url");
    if (url == NULL) {
        mg_api_err(err, 400, "invalid_request_error", "messages",
                   "litellm.BadRequestError: AnthropicException - image_url part without a url");
        return NULL;
    }
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        if (semi == NULL) {
            mg_api_err(err, 400, "invalid_request_error", "messages",
                       "Image url not in expected format. Example Expected input - \"image_url\": "
                       "\"data:image/jpeg;base64,{base64_image}\". Supported formats - "
                       "['image/jpeg', 'image/png', 'image/gif', 'image/webp'].");
            return NULL;
        }
        char *mt = mg_xstrndup(url + 5, (size_t) (semi - (url + 5)));
        const char *fmt = mg_an_str(iu, "format");
        bool pdf = strcmp(mt, "application/pdf") == 0;
        json_t *b = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", pdf ? "document" : "image", "source",
                              "type", "base64", "media_type", fmt ? fmt : mt, "data", semi + 8);
        free(mt);
        return b;
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
}

/* User-side content (string or parts) appended as blocks. */
static int
mg_an_user_blocks(json_t *content, json_t *cache_control, json_t *blocks, mg_api_err_t *err)
{
    if (json_is_string(content)) {
        json_t *b = json_pack("{s:s,s:O}", "type", "text", "text", content);
        if (cache_control != NULL) {
            json_object_set(b, "cache_control", cache_control);
        }
        json_array_append_new(blocks, b);
        return MG_OK;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *t = mg_an_str(part, "type");
        json_t *b = NULL;
        if (t == NULL) {
            continue;
        }
        if (strcmp(t, "text") == 0) {
            b = json_pack("{s:s,s:s}", "type", "text", "text",
                          mg_an_str(part, "text") ? mg_an_str(part, "text") : "");
        } else if (strcmp(t, "image_url") == 0) {
            if ((b = mg_an_image_block(part, err)) == NULL) {
                return MG_ERROR;
            }
        } else if (strcmp(t, "document") == 0 || strcmp(t, "image") == 0) {
            b = json_deep_copy(part);
        } else if (strcmp(t, "file") == 0) {
            json_t *f = json_object_get(part, "file");
            const char *fd = mg_an_str(f, "file_data");
            if (fd != NULL && strncmp(fd, "data:", 5) == 0 && strstr(fd, ";base64,") != NULL) {
                const char *semi = strstr(fd, ";base64,");
                char *mt = mg_xstrndup(fd + 5, (size_t) (semi - (fd + 5)));
                b = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "document", "source", "type",
                              "base64", "media_type", mt, "data", semi + 8);
                free(mt);
            }
        }
        if (b == NULL) {
            continue;
        }
        json_t *cc = json_object_get(part, "cache_control");
        if (cc != NULL) {
            json_object_set(b, "cache_control", cc);
        }
        json_array_append_new(blocks, b);
    }
    return MG_OK;
}

static int
mg_an_tool_use_blocks(json_t *calls, json_t *blocks, mg_api_err_t *err)
{
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        const char *type = mg_an_str(tc, "type");
        if (type != NULL && strcmp(type, "function") != 0) {
            continue;
        }
        json_t *fn = json_object_get(tc, "function");
        const char *args = mg_an_str(fn, "arguments");
        json_error_t je;
        json_t *in = json_loads(args ? args : "", JSON_DECODE_ANY, &je);
        if (in == NULL) {
            /* LiteLLM refuses arguments that are not JSON (json.loads raises) */
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: AnthropicException - tool call %s: "
                              "arguments are not valid JSON (%s)",
                              mg_an_str(tc, "id") ? mg_an_str(tc, "id") : "", je.text);
        }
        json_t *b = json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                              mg_an_str(tc, "id") ? mg_an_str(tc, "id") : "", "name",
                              mg_an_str(fn, "name") ? mg_an_str(fn, "name") : "", "input", in);
        json_t *cc = json_object_get(tc, "cache_control");
        if (cc != NULL) {
            json_object_set(b, "cache_control", cc);
        }
        json_array_append_new(blocks, b);
    }
    return MG_OK;
}

static json_t *
mg_an_tool_result(json_t *m, mg_api_err_t *err)
{
    json_t *c = json_object_get(m, "content");
    json_t *content;
    if (json_is_array(c)) {
        content = json_array();
        if (mg_an_user_blocks(c, NULL, content, err) != MG_OK) {
            json_decref(content);
            return NULL;
        }
    } else if (json_is_string(c)) {
        content = json_incref(c);
    } else {
        content = json_string("");
    }
    const char *id = mg_an_str(m, "tool_call_id");
    char uuid[37];
    if (id == NULL) {
        mg_uuid4(uuid);
        id = uuid;
    }
    json_t *b = json_pack("{s:s,s:s,s:o}", "type", "tool_result", "tool_use_id", id, "content",
                          content);
    json_t *cc = json_object_get(m, "cache_control");
    if (cc != NULL) {
        json_object_set(b, "cache_control", cc);
    }
    return b;
}

/* messages -> (system blocks, Anthropic messages), consecutive same-side turns merged */
static int
mg_an_messages(json_t *msgs, json_t *system, json_t *out, bool *has_tools_in_history,
               mg_api_err_t *err)
{
    json_t *cur = NULL;         /* the message being merged into, borrowed from out */
    bool cur_user = false;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = mg_an_str(m, "role");
        if (role == NULL) {
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: Invalid Message passed in messages[%zu]: "
                              "no role", i);
        }
        json_t *content = json_object_get(m, "content");
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (json_is_string(content)) {
                if (json_string_length(content) > 0) {
                    json_t *b = json_pack("{s:s,s:O}", "type", "text", "text", content);
                    if (json_object_get(m, "cache_control") != NULL) {
                        json_object_set(b, "cache_control", json_object_get(m, "cache_control"));
                    }
                    json_array_append_new(system, b);
                }
            } else {
                size_t k;
                json_t *part;
                json_array_foreach(content, k, part) {
                    const char *t = mg_an_str(part, "text");
                    if (t == NULL || t[0] == '\0') {
                        continue;
                    }
                    json_t *b = json_pack("{s:s,s:s}", "type", "text", "text", t);
                    if (json_object_get(part, "cache_control") != NULL) {
                        json_object_set(b, "cache_control", json_object_get(part, "cache_control"));
                    }
                    json_array_append_new(system, b);
                }
            }
            continue;
        }
        bool user_side = strcmp(role, "user") == 0 || strcmp(role, "tool") == 0 ||
                         strcmp(role, "function") == 0;
        if (!user_side && strcmp(role, "assistant") != 0) {
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: Invalid Message passed in messages[%zu]: "
                              "role \"%s\"", i, role);
        }
        if (cur == NULL || cur_user != user_side) {
            cur = json_pack("{s:s,s:[]}", "role", user_side ? "user" : "assistant", "content");
            json_array_append_new(out, cur);
            cur_user = user_side;
        }
        json_t *blocks = json_object_get(cur, "content");
        if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
            json_t *b = mg_an_tool_result(m, err);
            if (b == NULL) {
                return MG_ERROR;
            }
            json_array_append_new(blocks, b);
            *has_tools_in_history = true;
            continue;
        }
        if (user_side) {
            if (mg_an_user_blocks(content, json_object_get(m, "cache_control"), blocks, err) !=
                MG_OK) {
                return MG_ERROR;
            }
            continue;
        }
        /* assistant: thinking blocks first, then text, then tool calls */
        size_t k;
        json_t *tb;
        json_array_foreach(json_object_get(m, "thinking_blocks"), k, tb) {
            json_array_append(blocks, tb);
        }
        if (json_is_string(content) && json_string_length(content) > 0) {
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content));
        } else if (json_is_array(content)) {
            json_t *part;
            json_array_foreach(content, k, part) {
                const char *t = mg_an_str(part, "type");
                if (t != NULL && strcmp(t, "text") == 0 && mg_an_str(part, "text") != NULL &&
                    mg_an_str(part, "text")[0] != '\0') {
                    json_t *b = json_pack("{s:s,s:s}", "type", "text", "text",
                                          mg_an_str(part, "text"));
                    if (json_object_get(part, "cache_control") != NULL) {
                        json_object_set(b, "cache_control", json_object_get(part, "cache_control"));
                    }
                    json_array_append_new(blocks, b);
                } else if (t != NULL && strcmp(t, "thinking") == 0) {
                    json_array_append(blocks, part);
                }
            }
        }
        json_t *calls = json_object_get(m, "tool_calls");
        if (json_array_size(calls) > 0) {
            *has_tools_in_history = true;
            if (mg_an_tool_use_blocks(calls, blocks, err) != MG_OK) {
                return MG_ERROR;
            }
        }
        json_t *fc = json_object_get(m, "function_call");
        if (json_is_object(fc)) {
            json_t *wrap = json_pack("[{s:s,s:s,s:O}]", "id", "toolu_function_call", "type",
                                     "function", "function", fc);
            int rc = mg_an_tool_use_blocks(wrap, blocks, err);
            json_decref(wrap);
            if (rc != MG_OK) {
                return MG_ERROR;
            }
            *has_tools_in_history = true;
        }
    }
    /* a final assistant turn cannot end in whitespace */
    json_t *last = json_array_get(out, json_array_size(out) - 1);
    if (last != NULL && strcmp(mg_an_str(last, "role"), "assistant") == 0) {
        json_t *b;
        json_array_foreach(json_object_get(last, "content"), i, b) {
            const char *t = mg_an_str(b, "text");
            if (t != NULL && strcmp(mg_an_str(b, "type"), "text") == 0) {
                size_t l = strlen(t);
                while (l > 0 && (t[l - 1] == ' ' || t[l - 1] == '\n' || t[l - 1] == '\t' ||
                                 t[l - 1] == '\r')) {
                    l--;
                }
                json_object_set_new(b, "text", json_stringn(t, l));
            }
        }
    }
    return MG_OK;
}

/* A JSON schema as Anthropic's input_schema: an object, LiteLLM's kept keys only. */
static json_t *
mg_an_input_schema(json_t *params)
{
    static const char *const keep[] = {"type", "properties", "additionalProperties", "required",
                                       "$defs", "strict", NULL};
    json_t *s = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) {
        if (mg_an_in(k, keep)) {
            json_object_set(s, k, v);
        }
    }
    json_object_set_new(s, "type", json_string("object"));
    if (json_object_get(s, "properties") == NULL) {
        json_object_set_new(s, "properties", json_object());
    }
    return s;
}

static int
mg_an_tools(json_t *tools, json_t *body, mg_api_err_t *err)
{
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        if (json_object_get(t, "input_schema") != NULL) {
            json_array_append(out, t); /* already Anthropic's shape */
            continue;
        }
        const char *type = mg_an_str(t, "type");
        if (type != NULL && strcmp(type, "function") != 0 && strcmp(type, "custom") != 0) {
            if (strncmp(type, "web_search", 10) == 0 || strncmp(type, "computer_", 9) == 0 ||
                strncmp(type, "bash", 4) == 0 || strncmp(type, "text_editor", 11) == 0 ||
                strncmp(type, "code_execution", 14) == 0) {
                json_array_append(out, t); /* hosted tools pass as they are */
                continue;
            }
            json_decref(out);
            return mg_api_err(err, 400, "invalid_request_error", "tools",
                              "litellm.BadRequestError: AnthropicException - Unsupported tool type: "
                              "%s", type);
        }
        json_t *fn = json_object_get(t, "function");
        json_t *params = json_object_get(fn, "parameters");
        json_t *at = json_pack("{s:s,s:o}", "name",
                               mg_an_str(fn, "name") ? mg_an_str(fn, "name") : "", "input_schema",
                               mg_an_input_schema(params));
        if (mg_an_str(fn, "description") != NULL) {
            json_object_set(at, "description", json_object_get(fn, "description"));
        }
        json_t *cc = json_object_get(t, "cache_control");
        if (cc == NULL) {
            cc = json_object_get(fn, "cache_control");
        }
        if (cc != NULL) {
            json_object_set(at, "cache_control", cc);
        }
        json_array_append_new(out, at);
    }
    json_object_set_new(body, "tools", out);
    return MG_OK;
}

static json_t *
mg_an_tool_choice(json_t *tc)
{
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "required") == 0) {
            return json_pack("{s:s}", "type", "any");
        }
        if (strcmp(s, "none") == 0 || strcmp(s, "auto") == 0) {
            return json_pack("{s:s}", "type", s);
        }
        return NULL;
    }
    const char *name = mg_an_str(json_object_get(tc, "function"), "name");
    if (name != NULL) {
        return json_pack("{s:s,s:s}", "type", "tool", "name", name);
    }
    const char *type = mg_an_str(tc, "type");
    if (type != NULL) {
        if (strcmp(type, "required") == 0 || strcmp(type, "any") == 0) {
            return json_pack("{s:s}", "type", "any");
        }
        if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0) {
            return json_pack("{s:s}", "type", type);
        }
    }
    return NULL;
}

/* Models with native structured outputs (LiteLLM's substring list). */
static bool
mg_an_native_output_format(const char *model)
{
    static const char *const names[] = {"sonnet-4.5", "sonnet-4-5", "opus-4.1", "opus-4-1",
                                        "opus-4.5", "opus-4-5", "opus-4.6", "opus-4-6",
                                        "opus-4.7", "opus-4-7", "sonnet-4.6", "sonnet-4-6",
                                        "sonnet_4.6", "sonnet_4_6", NULL};
    for (const char *const *p = names; model != NULL && *p; p++) {
        if (strstr(model, *p) != NULL) {
            return true;
        }
    }
    return false;
}

/* LiteLLM's filter_anthropic_output_schema: constraint keywords Anthropic's structured
 * outputs refuse are removed and said in the description instead. */
static void
mg_an_filter_constraints(json_t *s)
{
    static const struct {
        const char *key;
        const char *label;
    } t[] = {
        {"minItems", "minimum number of items"}, {"maxItems", "maximum number of items"},
        {"minimum", "minimum value"}, {"maximum", "maximum value"},
        {"exclusiveMinimum", "exclusive minimum value"},
        {"exclusiveMaximum", "exclusive maximum value"}, {"minLength", "minimum length"},
        {"maxLength", "maximum length"},
    };
    if (json_is_object(s)) {
        mg_buf_t note = MG_BUF_INIT;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
            json_t *v = json_object_get(s, t[i].key);
            if (v == NULL || !json_is_number(v)) {
                continue;
            }
            char num[64];
            mg_fmt_pyfloat(json_number_value(v), num, sizeof(num));
            if (json_is_integer(v)) {
                snprintf(num, sizeof(num), "%lld", (long long) json_integer_value(v));
            }
            mg_buf_printf(&note, "%s%s: %s", mg_buf_len(&note) ? ", " : "", t[i].label, num);
            json_object_del(s, t[i].key);
        }
        if (mg_buf_len(&note) > 0) {
            const char *d = mg_an_str(s, "description");
            mg_buf_t desc = MG_BUF_INIT;
            if (d != NULL && d[0] != '\0') {
                mg_buf_printf(&desc, "%s ", d);
            }
            mg_buf_printf(&desc, "Note: %s.", mg_buf_cstr(&note));
            json_object_set_new(s, "description", json_string(mg_buf_cstr(&desc)));
            mg_buf_free(&desc);
        }
        mg_buf_free(&note);
        const char *k;
        json_t *v;
        json_object_foreach(s, k, v) {
            mg_an_filter_constraints(v);
        }
    } else if (json_is_array(s)) {
        size_t i;
        json_t *v;
        json_array_foreach(s, i, v) {
            mg_an_filter_constraints(v);
        }
    }
}

static void
mg_an_strict_objects(json_t *s)
{
    if (json_is_object(s)) {
        const char *t = mg_an_str(s, "type");
        if (t != NULL && strcmp(t, "object") == 0 &&
            json_object_get(s, "additionalProperties") == NULL) {
            json_object_set_new(s, "additionalProperties", json_false());
        }
        const char *k;
        json_t *v;
        json_object_foreach(s, k, v) {
            mg_an_strict_objects(v);
        }
    } else if (json_is_array(s)) {
        size_t i;
        json_t *v;
        json_array_foreach(s, i, v) {
            mg_an_strict_objects(v);
        }
    }
}

int
mg_an_thinking_budget(const char *effort, mg_api_err_t *err)
{
    static const struct {
        const char *name;
        int budget;
    } t[] = {{"minimal", 1024}, {"low", 1024}, {"medium", 2048}, {"high", 4096},
             {"xhigh", 8192}, {"max", 16384}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(t[i].name, effort) == 0) {
            return t[i].budget;
        }
    }
    if (strcmp(effort, "none") == 0) {
        return 0;
    }
    mg_api_err(err, 400, "invalid_request_error", "reasoning_effort",
               "litellm.BadRequestError: Unmapped reasoning effort: '%s'. Must be one of: "
               "'minimal', 'low', 'medium', 'high', 'xhigh', 'max', 'none'.", effort);
    return -1;
}

static int
mg_an_build_chat(json_t *n, const mg_body_opts_t *o, json_t *body, mg_api_err_t *err)
{
    /* 1. LiteLLM's _check_valid_arg: OpenAI parameters the provider does not take */
    mg_buf_t bad = MG_BUF_INIT;
    int nbad = 0;
    const char *k;
    json_t *v;
    json_object_foreach(n, k, v) {
        if (json_is_null(v) || !mg_an_in(k, mg_api_openai_params) || mg_an_in(k, mg_an_supported)) {
            continue;
        }
        if (strcmp(k, "n") == 0 && json_is_number(v) && json_number_value(v) == 1) {
            continue;
        }
        bool listed = false;
        size_t ai;
        json_t *av;
        json_array_foreach(o->additional_drop, ai, av) {
            listed = listed || (json_is_string(av) && strcmp(json_string_value(av), k) == 0);
        }
        if (o->drop_params || listed) {
            continue;
        }
        mg_buf_printf(&bad, "%s'%s'", nbad++ ? ", " : "", k);
    }
    if (nbad > 0) {
        const char *model = o->model ? o->model : (o->client_model ? o->client_model : "");
        mg_api_err(err, 400, NULL, NULL,
                   "litellm.UnsupportedParamsError: %s does not support parameters: [%s], for "
                   "model=%s. To drop these, set `litellm.drop_params=True` or for proxy:\n\n"
                   "`litellm_settings:\n drop_params: true`\n. \n If you want to use these params "
                   "dynamically send allowed_openai_params=[%s] in your request.",
                   o->provider ? o->provider : "anthropic", mg_buf_cstr(&bad), model,
                   mg_buf_cstr(&bad));
        mg_buf_free(&bad);
        return MG_ERROR;
    }
    mg_buf_free(&bad);
    /* 2. messages and system */
    json_t *system = json_array();
    json_t *msgs = json_array();
    bool tools_in_history = false;
    if (mg_an_messages(json_object_get(n, "messages"), system, msgs, &tools_in_history, err) !=
        MG_OK) {
        json_decref(system);
        json_decref(msgs);
        return MG_ERROR;
    }
    if (json_array_size(msgs) == 0) {
        json_decref(system);
        json_decref(msgs);
        return mg_api_err(err, 400, "invalid_request_error", "messages",
                          "litellm.BadRequestError: AnthropicException - Anthropic requires at "
                          "least one non-system message.");
    }
    json_object_set_new(body, "messages", msgs);
    if (json_array_size(system) > 0) {
        json_object_set_new(body, "system", system);
    } else {
        json_decref(system);
    }
    /* 3. sampling and limits */
    json_t *mt = json_object_get(n, "max_completion_tokens");
    if (!json_is_number(mt)) {
        mt = json_object_get(n, "max_tokens");
    }
    json_t *thinking = json_object_get(n, "thinking");
    const char *effort = mg_an_str(n, "reasoning_effort");
    int budget = 0;
    if (json_is_object(thinking)) {
        json_object_set(body, "thinking", thinking);
        const char *tt = mg_an_str(thinking, "type");
        if (tt != NULL && strcmp(tt, "enabled") == 0) {
            budget = (int) mg_an_int(thinking, "budget_tokens", 0);
        }
    } else if (effort != NULL) {
        budget = mg_an_thinking_budget(effort, err);
        if (budget < 0) {
            return MG_ERROR;
        }
        if (budget > 0) {
            json_object_set_new(body, "thinking", json_pack("{s:s,s:i}", "type", "enabled",
                                                            "budget_tokens", budget));
        }
    }
    if (json_is_number(mt)) {
        double d = json_number_value(mt);
        long long t = (long long) llround(d);
        json_object_set_new(body, "max_tokens", json_integer(t < 1 ? 1 : t));
    } else {
        json_object_set_new(body, "max_tokens",
                            json_integer(MG_AN_DEFAULT_MAX_TOKENS + (budget > 0 ? budget : 0)));
    }
    json_t *stop = json_object_get(n, "stop");
    if (json_is_string(stop)) {
        json_object_set_new(body, "stop_sequences", json_pack("[O]", stop));
    } else if (json_is_array(stop) && json_array_size(stop) > 0) {
        json_object_set(body, "stop_sequences", stop);
    }
    static const char *const copy[] = {"temperature", "top_p", NULL};
    for (const char *const *c = copy; *c; c++) {
        if (json_object_get(n, *c) != NULL) {
            json_object_set(body, *c, json_object_get(n, *c));
        }
    }
    const char *user = mg_an_str(n, "user");
    if (user != NULL && mg_an_valid_user_id(user)) {
        json_object_set_new(body, "metadata", json_pack("{s:s}", "user_id", user));
    }
    /* 4. tools and tool_choice */
    json_t *tools = json_object_get(n, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0 &&
        mg_an_tools(tools, body, err) != MG_OK) {
        return MG_ERROR;
    }
    json_t *wso = json_object_get(n, "web_search_options");
    if (json_is_object(wso)) {
        if (json_object_get(body, "tools") == NULL) {
            json_object_set_new(body, "tools", json_array());
        }
        json_array_append_new(json_object_get(body, "tools"),
                              json_pack("{s:s,s:s}", "type", "web_search_20250305", "name",
                                        "web_search"));
    }
    json_t *choice = NULL;
    json_t *tc = json_object_get(n, "tool_choice");
    if (tc != NULL) {
        choice = mg_an_tool_choice(tc);
    }
    json_t *ptc = json_object_get(n, "parallel_tool_calls");
    if (json_is_boolean(ptc)) {
        if (choice == NULL) {
            choice = json_pack("{s:s}", "type", "auto");
        }
        if (strcmp(mg_an_str(choice, "type"), "none") != 0) {
            json_object_set_new(choice, "disable_parallel_tool_use", json_boolean(!json_is_true(ptc)));
        }
    }
    /* 5. response_format */
    json_t *rf = json_object_get(n, "response_format");
    const char *rft = mg_an_str(rf, "type");
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (schema == NULL) {
        schema = json_object_get(rf, "response_schema");
    }
    if (rft != NULL && strcmp(rft, "text") != 0 && json_is_object(schema)) {
        if (mg_an_native_output_format(o->model)) {
            json_t *s = json_deep_copy(schema);
            mg_an_filter_constraints(s);
            mg_an_strict_objects(s);
            json_object_set_new(body, "output_format",
                                json_pack("{s:s,s:o}", "type", "json_schema", "schema", s));
            if (o->betas != NULL) {
                *o->betas = "structured-outputs-2025-11-13";
            }
        } else {
            if (json_object_get(body, "tools") == NULL) {
                json_object_set_new(body, "tools", json_array());
            }
            json_array_append_new(json_object_get(body, "tools"),
                                  json_pack("{s:s,s:o}", "name", MG_AN_JSON_TOOL, "input_schema",
                                            mg_an_input_schema(schema)));
            if (budget <= 0) {
                json_decref(choice);
                choice = json_pack("{s:s,s:s}", "type", "tool", "name", MG_AN_JSON_TOOL);
            }
            if (o->json_mode != NULL) {
                *o->json_mode = true;
            }
        }
    }
    if (choice != NULL) {
        json_object_set_new(body, "tool_choice", choice);
    }
    if (tools_in_history && json_object_get(body, "tools") == NULL) {
        /* Anthropic refuses tool blocks without tools: LiteLLM's add_dummy_tool */
        json_object_set_new(body, "tools",
                            json_pack("[{s:s,s:s,s:{s:s,s:{}}}]", "name", "dummy_tool",
                                      "description", "This is a dummy tool call", "input_schema",
                                      "type", "object", "properties"));
    }
    /* 6. provider-specific parameters (top_k, ...) go into the body as they are */
    json_object_foreach(n, k, v) {
        if (json_is_null(v) || mg_an_in(k, mg_api_openai_params) || strcmp(k, "model") == 0 ||
            strcmp(k, "messages") == 0 || json_object_get(body, k) != NULL ||
            mg_api_is_litellm_param_str(k)) {
            continue;
        }
        json_object_set(body, k, v);
    }
    return MG_OK;
}

static int
mg_an_build(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out, mg_api_err_t *err)
{
    json_t *body = json_object();
    if (o->model != NULL) {
        json_object_set_new(body, "model", json_string(o->model));
    }
    /* deployment defaults are call arguments (LiteLLM passes litellm_params to the call):
     * they go in before translation, so max_tokens: 512 is Anthropic's max_tokens */
    json_t *nn = n;
    if (json_object_size(o->defaults) > 0) {
        nn = json_copy(n);
        const char *dk;
        json_t *dv;
        json_object_foreach(o->defaults, dk, dv) {
            if (json_object_get(nn, dk) == NULL) {
                json_object_set(nn, dk, dv);
            }
        }
    }
    if (op == MG_OP_COMPLETION) {
        /* a completion prompt as one user turn */
        json_t *p = json_object_get(n, "prompt");
        mg_buf_t text = MG_BUF_INIT;
        if (json_is_string(p)) {
            mg_buf_append_str(&text, json_string_value(p));
        } else {
            size_t i;
            json_t *v;
            json_array_foreach(p, i, v) {
                if (json_is_string(v)) {
                    mg_buf_append_str(&text, json_string_value(v));
                }
            }
        }
        json_t *base = nn;
        nn = json_copy(base);
        if (base != n) {
            json_decref(base);
        }
        json_object_del(nn, "prompt");
        json_object_del(nn, "echo");
        json_object_del(nn, "suffix");
        json_object_del(nn, "best_of");
        json_object_set_new(nn, "messages", json_pack("[{s:s,s:s}]", "role", "user", "content",
                                                      mg_buf_len(&text) ? mg_buf_cstr(&text) : ""));
        mg_buf_free(&text);
    } else if (op != MG_OP_CHAT) {
        json_decref(body);
        return mg_api_err(err, 400, "invalid_request_error", NULL,
                          "litellm.BadRequestError: anthropic does not support this operation");
    }
    int rc = mg_an_build_chat(nn, o, body, err);
    if (nn != n) {
        json_decref(nn);
    }
    if (rc != MG_OK) {
        json_decref(body);
        return MG_ERROR;
    }
    if (o->stream) {
        json_object_set_new(body, "stream", json_true());
    }
    size_t i;
    json_t *v;
    json_array_foreach(o->additional_drop, i, v) {
        if (json_is_string(v)) {
            json_object_del(body, json_string_value(v));
        }
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    mg_buf_append_str(out, s);
    free(s);
    if (o->extra_members != NULL && o->extra_members[0] != '\0' && mg_buf_len(out) > 2) {
        /* what the provider adds (Vertex's and Bedrock's anthropic_version), before the '}' */
        out->end--;
        mg_buf_append_str(out, o->extra_members);
        mg_buf_append(out, "}", 1);
    }
    return MG_OK;
}

/* ---- decoder: Anthropic events and messages -> neutral events ---- */

enum { MG_AN_BLK_TEXT = 1, MG_AN_BLK_TOOL, MG_AN_BLK_TOOL_ARGS, MG_AN_BLK_THINKING,
       MG_AN_BLK_JSON, MG_AN_BLK_OTHER };

static void
mg_an_emit(mg_dec_t *d, mg_ev_t *ev)
{
    d->sink(d->ud, ev);
}

static void
mg_an_emit_text(mg_dec_t *d, mg_ev_kind_t kind, json_t *s)
{
    if (!json_is_string(s) || json_string_length(s) == 0) {
        return;
    }
    mg_ev_t ev = {.kind = kind};
    ev.text = json_string_value(s);
    ev.text_len = json_string_length(s);
    mg_an_emit(d, &ev);
}

static void
mg_an_dec_start(mg_dec_t *d, json_t *msg)
{
    if (d->started) {
        return;
    }
    d->started = true;
    mg_ev_t ev = {.kind = MG_EV_START};
    json_t *id = json_object_get(msg, "id");
    json_t *model = json_object_get(msg, "model");
    if (json_is_string(id)) {
        ev.id = json_string_value(id);
        ev.id_len = json_string_length(id);
    }
    if (json_is_string(model)) {
        ev.name = json_string_value(model);
        ev.name_len = json_string_length(model);
    }
    ev.created = mg_time_real_ms() / 1000;
    mg_an_emit(d, &ev);
}

static void
mg_an_dec_usage(mg_dec_t *d, json_t *u)
{
    if (!json_is_object(u)) {
        return;
    }
    mg_an_read_usage(u, d->usage);
    mg_ev_t ev = {.kind = MG_EV_USAGE};
    mg_an_emit(d, &ev);
}

static void
mg_an_dec_tool_start(mg_dec_t *d, int blk, json_t *cb, json_t *input)
{
    const char *name = mg_an_str(cb, "name");
    if (d->json_mode && name != NULL && strcmp(name, MG_AN_JSON_TOOL) == 0) {
        if (blk >= 0) {
            d->block_kind[blk] = MG_AN_BLK_JSON;
        }
        if (json_is_object(input) && json_object_size(input) > 0) {
            /* LiteLLM's json mode: the tool's arguments are the content ("values" unwrapped) */
            json_t *val = json_object_get(input, "values");
            char *s = json_dumps(val != NULL ? val : input, JSON_COMPACT | JSON_ENCODE_ANY);
            mg_ev_t ev = {.kind = MG_EV_TEXT, .text = s, .text_len = strlen(s)};
            mg_an_emit(d, &ev);
            free(s);
        }
        return;
    }
    int tool = d->ntools++;
    if (blk >= 0) {
        d->block_kind[blk] = MG_AN_BLK_TOOL;
        d->block_tool[blk] = tool;
    }
    mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = tool};
    json_t *id = json_object_get(cb, "id");
    if (json_is_string(id)) {
        ev.id = json_string_value(id);
        ev.id_len = json_string_length(id);
    }
    ev.name = name ? name : "";
    ev.name_len = strlen(ev.name);
    char *args = NULL;
    if (json_is_object(input) && json_object_size(input) > 0) {
        args = json_dumps(input, JSON_COMPACT);
        ev.text = args;
        ev.text_len = strlen(args);
        if (blk >= 0) {
            d->block_kind[blk] = MG_AN_BLK_TOOL_ARGS;
        }
    } else if (blk < 0) {
        ev.text = "{}"; /* a whole message's tool without arguments */
        ev.text_len = 2;
    } else {
        ev.text = "";
        ev.text_len = 0;
    }
    mg_an_emit(d, &ev);
    free(args);
}

static int
mg_an_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    if (d->ended) {
        return MG_OK;
    }
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return mg_api_err(err, 502, NULL, NULL, "the upstream sent an unreadable stream event: %s",
                          je.text);
    }
    const char *type = mg_an_str(j, "type");
    json_t *ix = json_object_get(j, "index");
    int blk = json_is_integer(ix) ? (int) json_integer_value(ix) : -1;
    if (blk >= (int) (sizeof(d->block_kind) / sizeof(d->block_kind[0]))) {
        blk = -1;
    }
    if (type == NULL) {
        /* not an event: ignored */
    } else if (strcmp(type, "message_start") == 0) {
        json_t *msg = json_object_get(j, "message");
        mg_an_dec_start(d, msg);
        mg_an_dec_usage(d, json_object_get(msg, "usage"));
    } else if (strcmp(type, "content_block_start") == 0) {
        json_t *cb = json_object_get(j, "content_block");
        const char *ct = mg_an_str(cb, "type");
        if (ct == NULL) {
        } else if (strcmp(ct, "text") == 0) {
            if (blk >= 0) {
                d->block_kind[blk] = MG_AN_BLK_TEXT;
            }
            mg_an_emit_text(d, MG_EV_TEXT, json_object_get(cb, "text"));
        } else if (strcmp(ct, "tool_use") == 0 || strcmp(ct, "server_tool_use") == 0) {
            mg_an_dec_tool_start(d, blk, cb, json_object_get(cb, "input"));
        } else if (strcmp(ct, "thinking") == 0) {
            if (blk >= 0) {
                d->block_kind[blk] = MG_AN_BLK_THINKING;
            }
            mg_an_emit_text(d, MG_EV_REASONING, json_object_get(cb, "thinking"));
        } else if (strcmp(ct, "redacted_thinking") == 0) {
            mg_an_emit_text(d, MG_EV_REDACTED, json_object_get(cb, "data"));
        } else if (blk >= 0) {
            d->block_kind[blk] = MG_AN_BLK_OTHER;
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *delta = json_object_get(j, "delta");
        const char *dt = mg_an_str(delta, "type");
        int kind = blk >= 0 ? d->block_kind[blk] : -1;
        if (dt == NULL) {
        } else if (strcmp(dt, "text_delta") == 0) {
            mg_an_emit_text(d, MG_EV_TEXT, json_object_get(delta, "text"));
        } else if (strcmp(dt, "input_json_delta") == 0) {
            json_t *pj = json_object_get(delta, "partial_json");
            if (kind == MG_AN_BLK_JSON) {
                mg_an_emit_text(d, MG_EV_TEXT, pj);
            } else if ((kind == MG_AN_BLK_TOOL || kind == MG_AN_BLK_TOOL_ARGS) &&
                       json_is_string(pj) && json_string_length(pj) > 0) {
                d->block_kind[blk] = MG_AN_BLK_TOOL_ARGS;
                mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = d->block_tool[blk]};
                ev.text = json_string_value(pj);
                ev.text_len = json_string_length(pj);
                mg_an_emit(d, &ev);
            }
        } else if (strcmp(dt, "thinking_delta") == 0) {
            mg_an_emit_text(d, MG_EV_REASONING, json_object_get(delta, "thinking"));
        } else if (strcmp(dt, "signature_delta") == 0) {
            json_t *sig = json_object_get(delta, "signature");
            if (json_is_string(sig)) {
                mg_ev_t ev = {.kind = MG_EV_REASONING};
                ev.sig = json_string_value(sig);
                ev.sig_len = json_string_length(sig);
                mg_an_emit(d, &ev);
            }
        }
    } else if (strcmp(type, "content_block_stop") == 0) {
        if (blk >= 0 && d->block_kind[blk] == MG_AN_BLK_TOOL) {
            /* a tool that sent no argument fragment: its arguments are {} */
            mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = d->block_tool[blk], .text = "{}",
                          .text_len = 2};
            mg_an_emit(d, &ev);
        }
    } else if (strcmp(type, "message_delta") == 0) {
        json_t *delta = json_object_get(j, "delta");
        mg_an_dec_usage(d, json_object_get(j, "usage"));
        if (json_object_get(delta, "stop_reason") != NULL) {
            mg_ev_t ev = {.kind = MG_EV_FINISH};
            ev.finish = d->json_mode ? MG_FIN_STOP : mg_an_finish_from(mg_an_str(delta,
                                                                                 "stop_reason"));
            mg_an_emit(d, &ev);
        }
    } else if (strcmp(type, "message_stop") == 0) {
        d->ended = true;
        mg_ev_t ev = {.kind = MG_EV_END};
        mg_an_emit(d, &ev);
    } else if (strcmp(type, "error") == 0) {
        /* LiteLLM: an error event is an AnthropicError with status 500 */
        json_t *e = json_object_get(j, "error");
        const char *m = mg_an_str(e, "message");
        char *msg = NULL;
        if (asprintf(&msg, "litellm.InternalServerError: AnthropicException - %s. Handle with "
                           "`litellm.InternalServerError`.", m ? m : "stream error") < 0) {
            abort();
        }
        mg_ev_t ev = {.kind = MG_EV_ERROR, .status = 500, .text = msg, .text_len = strlen(msg)};
        ev.etype = mg_an_str(e, "type");
        mg_an_emit(d, &ev);
        free(msg);
        d->ended = true;
    }
    json_decref(j);
    return MG_OK;
}

static int
mg_an_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return mg_api_err(err, 502, NULL, NULL, "Unable to get json response - %s", je.text);
    }
    mg_an_dec_start(d, j);
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(j, "content"), i, b) {
        const char *t = mg_an_str(b, "type");
        if (t == NULL) {
            continue;
        }
        if (strcmp(t, "text") == 0) {
            mg_an_emit_text(d, MG_EV_TEXT, json_object_get(b, "text"));
        } else if (strcmp(t, "tool_use") == 0 || strcmp(t, "server_tool_use") == 0) {
            mg_an_dec_tool_start(d, -1, b, json_object_get(b, "input"));
        } else if (strcmp(t, "thinking") == 0) {
            mg_ev_t ev = {.kind = MG_EV_REASONING};
            json_t *th = json_object_get(b, "thinking");
            json_t *sig = json_object_get(b, "signature");
            if (json_is_string(th)) {
                ev.text = json_string_value(th);
                ev.text_len = json_string_length(th);
            }
            if (json_is_string(sig)) {
                ev.sig = json_string_value(sig);
                ev.sig_len = json_string_length(sig);
            }
            mg_an_emit(d, &ev);
        } else if (strcmp(t, "redacted_thinking") == 0) {
            mg_an_emit_text(d, MG_EV_REDACTED, json_object_get(b, "data"));
        }
    }
    mg_ev_t fin = {.kind = MG_EV_FINISH};
    fin.finish = d->json_mode ? MG_FIN_STOP : mg_an_finish_from(mg_an_str(j, "stop_reason"));
    mg_an_emit(d, &fin);
    mg_an_dec_usage(d, json_object_get(j, "usage"));
    json_decref(j);
    mg_ev_t end = {.kind = MG_EV_END};
    d->ended = true;
    mg_an_emit(d, &end);
    return MG_OK;
}

/* ---- encoder: neutral events -> Anthropic message / SSE ---- */

enum { MG_AN_OPEN_NONE = 0, MG_AN_OPEN_TEXT, MG_AN_OPEN_THINKING, MG_AN_OPEN_TOOL };

static void
mg_an_sse(mg_buf_t *o, const char *type)
{
    mg_buf_printf(o, "event: %s\ndata: ", type);
}

static void
mg_an_enc_ensure_id(mg_enc_t *e)
{
    if (e->id[0] != '\0') {
        return;
    }
    char uuid[37];
    mg_uuid4(uuid);
    snprintf(e->id, sizeof(e->id), "msg_%s", uuid);
}

static void
mg_an_enc_start(mg_enc_t *e)
{
    if (e->started) {
        return;
    }
    e->started = true;
    mg_an_enc_ensure_id(e);
    mg_buf_t *o = e->out;
    mg_an_sse(o, "message_start");
    mg_buf_append_str(o, "{\"type\":\"message_start\",\"message\":{\"id\":");
    mg_buf_json_str(o, e->id, strlen(e->id));
    mg_buf_append_str(o, ",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":");
    mg_buf_json_str(o, e->model, strlen(e->model));
    mg_buf_append_str(o, ",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    mg_an_usage(e->usage, o);
    mg_buf_append_str(o, "}}\n\n");
}

static void
mg_an_enc_close_block(mg_enc_t *e)
{
    if (e->block < 0) {
        return;
    }
    mg_an_sse(e->out, "content_block_stop");
    mg_buf_printf(e->out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", e->block);
    e->block = -1;
    e->block_kind = MG_AN_OPEN_NONE;
}

/* Opens a block of kind unless one is open (for tools: the same tool). */
static void
mg_an_enc_open(mg_enc_t *e, int kind, const mg_ev_t *ev)
{
    if (e->block >= 0 && e->block_kind == kind && (kind != MG_AN_OPEN_TOOL ||
                                                   (e->open_tool == ev->tool && ev->id == NULL))) {
        return;
    }
    mg_an_enc_close_block(e);
    e->block = e->nblocks++;
    e->block_kind = kind;
    mg_buf_t *o = e->out;
    mg_an_sse(o, "content_block_start");
    mg_buf_printf(o, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":",
                  e->block);
    if (kind == MG_AN_OPEN_TEXT) {
        mg_buf_append_str(o, "{\"type\":\"text\",\"text\":\"\"}");
    } else if (kind == MG_AN_OPEN_THINKING) {
        mg_buf_append_str(o, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
    } else {
        e->open_tool = ev->tool;
        mg_buf_append_str(o, "{\"type\":\"tool_use\",\"id\":");
        if (ev->id != NULL) {
            mg_buf_json_str(o, ev->id, ev->id_len);
        } else {
            mg_buf_printf(o, "\"toolu_%s_%d\"", e->id + 4, ev->tool);
        }
        mg_buf_append_str(o, ",\"name\":");
        mg_buf_json_str(o, ev->name ? ev->name : "", ev->name ? ev->name_len : 0);
        mg_buf_append_str(o, ",\"input\":{}}");
    }
    mg_buf_append_str(o, "}\n\n");
}

static void
mg_an_enc_delta(mg_enc_t *e, const char *type, const char *field, const char *p, size_t n)
{
    mg_buf_t *o = e->out;
    mg_an_sse(o, "content_block_delta");
    mg_buf_printf(o, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"%s\","
                     "\"%s\":", e->block, type, field);
    mg_buf_json_str(o, p, n);
    mg_buf_append_str(o, "}}\n\n");
}

static void
mg_an_enc_end(mg_enc_t *e)
{
    mg_an_enc_start(e);
    mg_an_enc_close_block(e);
    mg_buf_t *o = e->out;
    mg_an_sse(o, "message_delta");
    mg_buf_printf(o, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                     "\"stop_sequence\":null},\"usage\":", mg_an_finish_to(e->finish[0]));
    mg_an_usage(e->usage, o);
    mg_buf_append_str(o, "}\n\n");
    mg_an_sse(o, "message_stop");
    mg_buf_append_str(o, "{\"type\":\"message_stop\"}\n\n");
}

static void
mg_an_enc_stream(mg_enc_t *e, const mg_ev_t *ev)
{
    if (ev->index != 0 && ev->kind != MG_EV_END && ev->kind != MG_EV_ERROR &&
        ev->kind != MG_EV_USAGE && ev->kind != MG_EV_START) {
        return; /* Anthropic's format has one answer: choices beyond the first are not shown */
    }
    switch (ev->kind) {
    case MG_EV_START:
        if (ev->id != NULL && ev->id_len > 0 && ev->id_len + 4 < sizeof(e->id)) {
            if (ev->id_len > 4 && memcmp(ev->id, "msg_", 4) == 0) {
                snprintf(e->id, sizeof(e->id), "%.*s", (int) ev->id_len, ev->id);
            } else {
                snprintf(e->id, sizeof(e->id), "msg_%.*s", (int) ev->id_len, ev->id);
            }
        }
        break;
    case MG_EV_TEXT:
        mg_an_enc_start(e);
        mg_an_enc_open(e, MG_AN_OPEN_TEXT, ev);
        mg_an_enc_delta(e, "text_delta", "text", ev->text, ev->text_len);
        break;
    case MG_EV_REASONING:
        mg_an_enc_start(e);
        mg_an_enc_open(e, MG_AN_OPEN_THINKING, ev);
        if (ev->text != NULL && ev->text_len > 0) {
            mg_an_enc_delta(e, "thinking_delta", "thinking", ev->text, ev->text_len);
        }
        if (ev->sig != NULL && ev->sig_len > 0) {
            mg_an_enc_delta(e, "signature_delta", "signature", ev->sig, ev->sig_len);
        }
        break;
    case MG_EV_REDACTED: {
        mg_an_enc_start(e);
        mg_an_enc_close_block(e);
        int b = e->nblocks++;
        mg_an_sse(e->out, "content_block_start");
        mg_buf_printf(e->out, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                              "{\"type\":\"redacted_thinking\",\"data\":", b);
        mg_buf_json_str(e->out, ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
        mg_buf_append_str(e->out, "}}\n\n");
        mg_an_sse(e->out, "content_block_stop");
        mg_buf_printf(e->out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", b);
        break;
    }
    case MG_EV_TOOL:
        mg_an_enc_start(e);
        mg_an_enc_open(e, MG_AN_OPEN_TOOL, ev);
        if (ev->text != NULL && ev->text_len > 0) {
            mg_an_enc_delta(e, "input_json_delta", "partial_json", ev->text, ev->text_len);
        }
        break;
    case MG_EV_FINISH:
        e->finish[0] = ev->finish;
        mg_an_enc_start(e);
        mg_an_enc_close_block(e);
        break;
    case MG_EV_USAGE:
        break;
    case MG_EV_ERROR: {
        mg_an_enc_start(e);
        mg_an_enc_close_block(e);
        e->errored = true;
        char *msg = mg_xstrndup(ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
        char tj[96];
        snprintf(tj, sizeof(tj), "\"%s\"",
                 ev->etype != NULL && strlen(ev->etype) < 64 && strchr(ev->etype, '"') == NULL
                     ? ev->etype
                     : mg_an_error_type(ev->status));
        mg_wire_anthropic.stream_error(ev->status, msg, tj, e->out);
        free(msg);
        break;
    }
    case MG_EV_END:
        mg_an_enc_end(e);
        break;
    case MG_EV_EMBEDDING:
        break; /* no Anthropic route carries embeddings */
    }
}

static void
mg_an_enc_collect(mg_enc_t *e, const mg_ev_t *ev)
{
    if (ev->index != 0 && ev->kind != MG_EV_START && ev->kind != MG_EV_USAGE &&
        ev->kind != MG_EV_END && ev->kind != MG_EV_ERROR) {
        return;
    }
    switch (ev->kind) {
    case MG_EV_START:
        if (ev->id != NULL && ev->id_len > 0 && ev->id_len + 4 < sizeof(e->id)) {
            if (ev->id_len > 4 && memcmp(ev->id, "msg_", 4) == 0) {
                snprintf(e->id, sizeof(e->id), "%.*s", (int) ev->id_len, ev->id);
            } else {
                snprintf(e->id, sizeof(e->id), "msg_%.*s", (int) ev->id_len, ev->id);
            }
        }
        break;
    case MG_EV_TEXT:
        mg_buf_append(&e->text[0], ev->text, ev->text_len);
        break;
    case MG_EV_REASONING:
        if (ev->text != NULL) {
            mg_buf_append(&e->reasoning, ev->text, ev->text_len);
        }
        if (ev->sig != NULL) {
            mg_buf_append(&e->signature, ev->sig, ev->sig_len);
        }
        break;
    case MG_EV_REDACTED:
        if (mg_buf_len(&e->redacted) > 0) {
            mg_buf_append(&e->redacted, ",", 1);
        }
        mg_buf_append_str(&e->redacted, "{\"type\":\"redacted_thinking\",\"data\":");
        mg_buf_json_str(&e->redacted, ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
        mg_buf_append(&e->redacted, "}", 1);
        break;
    case MG_EV_TOOL: {
        mg_enc_tool_t *t = mg_enc_tool(e, 0, ev->tool);
        if (ev->id != NULL && mg_buf_len(&t->id) == 0) {
            mg_buf_append(&t->id, ev->id, ev->id_len);
        }
        if (ev->name != NULL && mg_buf_len(&t->name) == 0) {
            mg_buf_append(&t->name, ev->name, ev->name_len);
        }
        if (ev->text != NULL) {
            mg_buf_append(&t->args, ev->text, ev->text_len);
        }
        break;
    }
    case MG_EV_FINISH:
        e->finish[0] = ev->finish;
        break;
    case MG_EV_ERROR:
        e->errored = true;
        break;
    case MG_EV_USAGE:
    case MG_EV_END:
    case MG_EV_EMBEDDING:
        break;
    }
}

static void
mg_an_enc_event(mg_enc_t *e, const mg_ev_t *ev)
{
    if (e->errored || e->ended) {
        return;
    }
    if (ev->kind == MG_EV_END) {
        e->ended = true;
    }
    if (e->stream) {
        mg_an_enc_stream(e, ev);
    } else {
        mg_an_enc_collect(e, ev);
    }
}

static void
mg_an_enc_body(mg_enc_t *e)
{
    mg_buf_t *o = e->out;
    mg_an_enc_ensure_id(e);
    mg_buf_append_str(o, "{\"id\":");
    mg_buf_json_str(o, e->id, strlen(e->id));
    mg_buf_append_str(o, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    mg_buf_json_str(o, e->model, strlen(e->model));
    mg_buf_append_str(o, ",\"content\":[");
    bool first = true;
    if (mg_buf_len(&e->reasoning) > 0 || mg_buf_len(&e->signature) > 0) {
        mg_buf_append_str(o, "{\"type\":\"thinking\",\"thinking\":");
        mg_buf_json_str(o, mg_buf_len(&e->reasoning) ? mg_buf_head(&e->reasoning) : "",
                        mg_buf_len(&e->reasoning));
        mg_buf_append_str(o, ",\"signature\":");
        mg_buf_json_str(o, mg_buf_len(&e->signature) ? mg_buf_head(&e->signature) : "",
                        mg_buf_len(&e->signature));
        mg_buf_append(o, "}", 1);
        first = false;
    }
    if (mg_buf_len(&e->redacted) > 0) {
        mg_buf_append_str(o, first ? "" : ",");
        mg_buf_append(o, mg_buf_head(&e->redacted), mg_buf_len(&e->redacted));
        first = false;
    }
    if (mg_buf_len(&e->text[0]) > 0 || e->ntools == 0) {
        mg_buf_append_str(o, first ? "{\"type\":\"text\",\"text\":" : ",{\"type\":\"text\",\"text\":");
        mg_buf_json_str(o, mg_buf_len(&e->text[0]) ? mg_buf_head(&e->text[0]) : "",
                        mg_buf_len(&e->text[0]));
        mg_buf_append(o, "}", 1);
        first = false;
    }
    for (int i = 0; i < e->ntools; i++) {
        mg_enc_tool_t *t = &e->tools[i];
        if (t->index != 0) {
            continue;
        }
        mg_buf_append_str(o, first ? "{\"type\":\"tool_use\",\"id\":" : ",{\"type\":\"tool_use\",\"id\":");
        first = false;
        if (mg_buf_len(&t->id) > 0) {
            mg_buf_json_str(o, mg_buf_head(&t->id), mg_buf_len(&t->id));
        } else {
            mg_buf_printf(o, "\"toolu_%s_%d\"", e->id + 4, t->tool);
        }
        mg_buf_append_str(o, ",\"name\":");
        mg_buf_json_str(o, mg_buf_len(&t->name) ? mg_buf_head(&t->name) : "", mg_buf_len(&t->name));
        mg_buf_append_str(o, ",\"input\":");
        json_t *in = mg_buf_len(&t->args) > 0
                         ? json_loadb(mg_buf_head(&t->args), mg_buf_len(&t->args), 0, NULL)
                         : NULL;
        if (json_is_object(in)) {
            char *s = json_dumps(in, JSON_COMPACT);
            mg_buf_append_str(o, s);
            free(s);
        } else {
            mg_buf_append_str(o, "{}"); /* arguments that are not a JSON object cannot be input */
        }
        json_decref(in);
        mg_buf_append(o, "}", 1);
    }
    mg_finish_t f = e->finish[0];
    if (f == MG_FIN_NONE) {
        f = e->ntools > 0 ? MG_FIN_TOOL_CALLS : MG_FIN_STOP;
    }
    mg_buf_printf(o, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":",
                  mg_an_finish_to(f));
    mg_an_usage(e->usage, o);
    mg_buf_append(o, "}", 1);
}

static void
mg_an_enc_finish(mg_enc_t *e)
{
    if (!e->stream) {
        mg_an_enc_body(e);
        return;
    }
    if (e->errored) {
        return;
    }
    if (!e->ended) {
        e->ended = true;
        mg_an_enc_end(e);
    }
}

/* ---- same-wire relay ---- */

static void
mg_an_relay_event(mg_relay_t *rl, const char *raw, size_t raw_len, const char *data,
                  size_t data_len, mg_buf_t *out)
{
    if (rl->errored || rl->ended) {
        return; /* nothing after an error or message_stop */
    }
    if (data == NULL) {
        mg_buf_append(out, raw, raw_len);
        return;
    }
    mg_api_top_t top;
    mg_api_scan_top(data, data_len, &top);
    if (!top.has_type || top.type.type != MG_JSON_STRING) {
        mg_buf_append(out, raw, raw_len);
        return;
    }
    const char *t = top.type.val + 1;
    size_t tl = top.type.val_len - 2;
#define MG_AN_IS(s) (tl == sizeof(s) - 1 && memcmp(t, s, tl) == 0)
    if (MG_AN_IS("message_start") && top.has_message && top.message.type == MG_JSON_OBJECT) {
        /* restamp message.model, read the usage it starts with */
        mg_api_top_t mt;
        mg_api_scan_top(top.message.val, top.message.val_len, &mt);
        if (mt.has_usage) {
            json_t *u = json_loadb(mt.usage.val, mt.usage.val_len, 0, NULL);
            mg_an_read_usage(u, rl->usage);
            json_decref(u);
        }
        if (mt.has_model && mt.model.type == MG_JSON_STRING) {
            mg_buf_append_str(out, "event: message_start\ndata: ");
            mg_buf_append(out, data, (size_t) (mt.model.val - data));
            mg_buf_json_str(out, rl->model, strlen(rl->model));
            mg_buf_append(out, mt.model.end, (size_t) (data + data_len - mt.model.end));
            mg_buf_append(out, "\n\n", 2);
            return;
        }
    } else if (MG_AN_IS("message_delta") && top.has_usage) {
        json_t *u = json_loadb(top.usage.val, top.usage.val_len, 0, NULL);
        mg_an_read_usage(u, rl->usage);
        json_decref(u);
    } else if (MG_AN_IS("error")) {
        rl->errored = true;
    } else if (MG_AN_IS("message_stop")) {
        rl->ended = true;
    }
#undef MG_AN_IS
    mg_buf_append(out, raw, raw_len);
}

static void
mg_an_relay_end(mg_relay_t *rl, mg_buf_t *out)
{
    (void) rl;
    (void) out; /* Anthropic streams end with their own message_stop */
}

static bool
mg_an_relay_body(mg_relay_t *rl, const char *body, size_t len, bool restamp, mg_buf_t *out)
{
    mg_api_top_t top;
    mg_api_scan_top(body, len, &top);
    if (top.has_usage) {
        json_t *u = json_loadb(top.usage.val, top.usage.val_len, 0, NULL);
        mg_an_read_usage(u, rl->usage);
        json_decref(u);
    }
    if (!restamp || !top.has_model || top.model.type != MG_JSON_STRING) {
        return false;
    }
    mg_api_restamp(body, len, &top.model, rl->model, out);
    return true;
}

/* ---- errors ---- */

static void
mg_an_error_type_of(int status, const char *type_json, char *out, size_t n)
{
    /* a type that already is one of Anthropic's is kept; anything else follows the status */
    if (type_json != NULL && type_json[0] == '"') {
        size_t l = strlen(type_json);
        char t[64];
        if (l >= 2 && l - 2 < sizeof(t)) {
            memcpy(t, type_json + 1, l - 2);
            t[l - 2] = '\0';
            if (mg_an_error_status(t) != 500 || strcmp(t, "api_error") == 0) {
                snprintf(out, n, "%s", t);
                return;
            }
        }
    }
    snprintf(out, n, "%s", mg_an_error_type(status));
}

/* LiteLLM's transform_to_anthropic_error: an Anthropic client reads the message without
 * the stacked "litellm.XxxError: " prefixes and one "<Provider>Exception - ". */
static const char *
mg_an_strip_prefixes(const char *m)
{
    for (;;) {
        const char *p = m;
        if (strncmp(p, "litellm.", 8) == 0) {
            p += 8;
        }
        const char *q = p;
        while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z')) {
            q++;
        }
        if (q - p > 5 && strncmp(q - 5, "Error", 5) == 0 && q[0] == ':' && q[1] == ' ') {
            m = q + 2;
            continue;
        }
        break;
    }
    const char *q = m;
    while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || *q == '_') {
        q++;
    }
    if (q - m > 9 && strncmp(q - 9, "Exception", 9) == 0 && strncmp(q, " - ", 3) == 0) {
        m = q + 3;
    }
    return m;
}

static void
mg_an_error_body(int status, const char *msg, const char *type_json, const char *param_json,
                 mg_buf_t *out)
{
    (void) param_json;
    char t[64];
    mg_an_error_type_of(status, type_json, t, sizeof(t));
    msg = mg_an_strip_prefixes(msg);
    /* LiteLLM's OpenAI routes wrap some messages as a Python dict: an Anthropic client
     * reads the message inside */
    size_t ml = strlen(msg);
    if (ml > 14 && strncmp(msg, "{'error': ", 10) == 0 && (msg[10] == '\'' || msg[10] == '"') &&
        msg[ml - 1] == '}' && msg[ml - 2] == msg[10]) {
        char *inner = mg_xstrndup(msg + 11, ml - 13);
        mg_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", t);
        mg_buf_json_str(out, inner, strlen(inner));
        mg_buf_append_str(out, "}}");
        free(inner);
        return;
    }
    mg_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", t);
    mg_buf_json_str(out, msg, strlen(msg));
    mg_buf_append_str(out, "}}");
}

static void
mg_an_stream_error(int status, const char *msg, const char *type_json, mg_buf_t *out)
{
    mg_buf_append_str(out, "event: error\ndata: ");
    mg_an_error_body(status, msg, type_json, NULL, out);
    mg_buf_append(out, "\n\n", 2);
}

static void
mg_an_wire_error(int status, const char *body, size_t len, mg_wire_err_t *out)
{
    json_t *j = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    const char *m = mg_an_str(e, "message");
    if (m == NULL) {
        m = mg_an_str(j, "message");
    }
    if (m != NULL) {
        out->message = mg_xstrdup(m);
    } else {
        size_t n = len > 2000 ? 2000 : len;
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "Error code: %d - %.*s", status, (int) n, body ? body : "");
        out->message = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
    }
    const char *t = mg_an_str(e, "type");
    out->type = t ? mg_xstrdup(t) : NULL;
    json_decref(j);
}

/* ---- count_tokens without a tokenizer ---- */

#define MG_AN_IMAGE_TOKENS 1600 /* Anthropic's estimate for a ~1.15-megapixel image */

static void
mg_an_count_value(json_t *v, int64_t *bytes, int64_t *images)
{
    if (json_is_string(v)) {
        *bytes += (int64_t) json_string_length(v);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            mg_an_count_value(x, bytes, images);
        }
    } else if (json_is_object(v)) {
        const char *t = mg_an_str(v, "type");
        if (t != NULL && (strcmp(t, "image") == 0 || strcmp(t, "document") == 0)) {
            (*images)++;
            return;
        }
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (strcmp(k, "type") == 0 || strcmp(k, "cache_control") == 0 ||
                strcmp(k, "signature") == 0 || strcmp(k, "role") == 0) {
                continue;
            }
            mg_an_count_value(x, bytes, images);
        }
    } else if (json_is_number(v)) {
        *bytes += 2;
    }
}

int64_t
mg_api_estimate_input_tokens(const mg_api_req_t *q)
{
    json_t *b = json_loadb(q->body, q->body_len, 0, NULL);
    int64_t bytes = 0, images = 0, nmsgs = 0;
    mg_an_count_value(json_object_get(b, "system"), &bytes, &images);
    json_t *msgs = json_object_get(b, "messages");
    nmsgs = (int64_t) json_array_size(msgs);
    mg_an_count_value(msgs, &bytes, &images);
    /* OpenAI bodies: a completion prompt or embeddings input */
    mg_an_count_value(json_object_get(b, "prompt"), &bytes, &images);
    mg_an_count_value(json_object_get(b, "input"), &bytes, &images);
    json_t *tools = json_object_get(b, "tools");
    if (json_is_array(tools)) {
        char *s = json_dumps(tools, JSON_COMPACT);
        bytes += s ? (int64_t) strlen(s) : 0;
        free(s);
    }
    json_decref(b);
    return (bytes + 3) / 4 + 3 * nmsgs + MG_AN_IMAGE_TOKENS * images;
}

const mg_wire_ops_t mg_wire_anthropic = {
    .validate = mg_an_validate,
    .neutral = mg_an_neutral,
    .build = mg_an_build,
    .dec_event = mg_an_dec_event,
    .dec_body = mg_an_dec_body,
    .enc_event = mg_an_enc_event,
    .enc_finish = mg_an_enc_finish,
    .relay_event = mg_an_relay_event,
    .relay_end = mg_an_relay_end,
    .relay_body = mg_an_relay_body,
    .error_body = mg_an_error_body,
    .stream_error = mg_an_stream_error,
    .wire_error = mg_an_wire_error,
};
