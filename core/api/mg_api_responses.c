/*
 * mg_api_responses.c -- OpenAI's Responses API (/v1/responses) as a client
 * protocol: validation, the neutral request (Responses body -> OpenAI chat, the
 * way LiteLLM's completion bridge translates it), the encoder (neutral events
 * -> a Responses object, or the response.* event sequence of a stream), the
 * same-wire relay for deployments that speak it natively (OpenAI, Azure), and
 * the response ids LiteLLM hands out ("resp_" + base64 naming the deployment).
 *
 * Upstream side: no provider is asked to build a Responses body from a chat
 * request, so build and the decoders refuse; a Responses upstream is only ever
 * reached by a Responses client, through the relay.
 *
 * Owns: the encoder's state (struct mg_resp_enc_s, malloc, freed with the
 * encoder).  jansson trees live only inside one call.  Pure: no I/O.
 */
#include "mg_api_int.h"

#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_RS_PREFIX "litellm:custom_llm_provider:"

/* ---- ids ---- */

static const char mg_rs_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
mg_rs_b64_encode(const unsigned char *p, size_t n, mg_buf_t *out)
{
    char q[4];
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        q[0] = mg_rs_b64[v >> 18];
        q[1] = mg_rs_b64[(v >> 12) & 63];
        q[2] = mg_rs_b64[(v >> 6) & 63];
        q[3] = mg_rs_b64[v & 63];
        mg_buf_append(out, q, 4);
    }
    if (i < n) {
        uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0);
        q[0] = mg_rs_b64[v >> 18];
        q[1] = mg_rs_b64[(v >> 12) & 63];
        q[2] = i + 1 < n ? mg_rs_b64[(v >> 6) & 63] : '=';
        q[3] = '=';
        mg_buf_append(out, q, 4);
    }
}

static int
mg_rs_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* the URL-safe alphabet too */
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes base64 (padding optional) into out (n/4*3+3 bytes); -1 on a bad character. */
static long
mg_rs_b64_decode(const char *s, size_t n, unsigned char *out)
{
    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = mg_rs_b64_val((unsigned char) s[i]);
        if (v < 0) {
            return -1;
        }
        acc = acc << 6 | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (acc >> bits);
        }
    }
    return o;
}

void
mg_api_resp_id_encode(const char *provider, const char *model_id, const char *id, size_t id_len,
                      mg_buf_t *out)
{
    mg_buf_t plain = MG_BUF_INIT;
    mg_buf_printf(&plain, MG_RS_PREFIX "%s;model_id:%s;response_id:", provider ? provider : "None",
                  model_id ? model_id : "None");
    mg_buf_append(&plain, id, id_len);
    mg_buf_append_str(out, "resp_");
    mg_rs_b64_encode((const unsigned char *) mg_buf_head(&plain), mg_buf_len(&plain), out);
    mg_buf_free(&plain);
}

/* Whether s is "resp_" + base64 of LiteLLM's prefix (decodes only the first 40 chars). */
static bool
mg_rs_is_encoded(const char *s, size_t n)
{
    static const char pre[] = MG_RS_PREFIX; /* 28 bytes: 40 base64 characters */
    unsigned char d[32];
    if (n < 45 || memcmp(s, "resp_", 5) != 0) {
        return false;
    }
    long dl = mg_rs_b64_decode(s + 5, 40, d);
    return dl >= (long) sizeof(pre) - 1 && memcmp(d, pre, sizeof(pre) - 1) == 0;
}

static const char *
mg_rs_none(mg_arena_t *a, const char *p, size_t n)
{
    if (n == 0 || (n == 4 && memcmp(p, "None", 4) == 0)) {
        return NULL;
    }
    return mg_arena_strndup(a, p, n);
}

int
mg_api_resp_id_decode(const char *id, size_t n, mg_arena_t *a, mg_resp_id_t *out)
{
    out->provider = NULL;
    out->model_id = NULL;
    out->response_id = mg_arena_strndup(a, id, n);
    if (n <= 5 || memcmp(id, "resp_", 5) != 0 || n > 8192) {
        return MG_DECLINED;
    }
    unsigned char *dec = mg_arena_alloc(a, n);
    long dl = mg_rs_b64_decode(id + 5, n - 5, dec);
    static const char pre[] = MG_RS_PREFIX;
    if (dl < (long) sizeof(pre) - 1 || memcmp(dec, pre, sizeof(pre) - 1) != 0) {
        return MG_DECLINED;
    }
    /* "<provider>;model_id:<id>;response_id:<id>" after the prefix; the upstream id is the
     * rest, whatever it holds */
    const char *p = (const char *) dec + sizeof(pre) - 1;
    const char *end = (const char *) dec + dl;
    const char *s1 = memchr(p, ';', (size_t) (end - p));
    if (s1 == NULL || (size_t) (end - s1) < 10 || memcmp(s1 + 1, "model_id:", 9) != 0) {
        return MG_DECLINED;
    }
    const char *m = s1 + 10;
    const char *s2 = memchr(m, ';', (size_t) (end - m));
    if (s2 == NULL || (size_t) (end - s2) < 13 || memcmp(s2 + 1, "response_id:", 12) != 0) {
        return MG_DECLINED;
    }
    const char *r = s2 + 13;
    out->provider = mg_rs_none(a, p, (size_t) (s1 - p));
    out->model_id = mg_rs_none(a, m, (size_t) (s2 - m));
    out->response_id = mg_arena_strndup(a, r, (size_t) (end - r));
    return MG_OK;
}

/* ---- usage ---- */

static void
mg_rs_read_usage(json_t *u, mg_usage_t *out)
{
    if (!json_is_object(u)) {
        return;
    }
    json_t *v;
    if (json_is_integer(v = json_object_get(u, "input_tokens"))) {
        out->prompt_tokens = json_integer_value(v);
    }
    if (json_is_integer(v = json_object_get(u, "output_tokens"))) {
        out->completion_tokens = json_integer_value(v);
    }
    if (json_is_integer(v = json_object_get(u, "total_tokens"))) {
        out->total_tokens = json_integer_value(v);
    }
    v = json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens");
    if (json_is_integer(v)) {
        out->cache_read_tokens = json_integer_value(v);
    }
    v = json_object_get(json_object_get(u, "output_tokens_details"), "reasoning_tokens");
    if (json_is_integer(v)) {
        out->reasoning_tokens = json_integer_value(v);
    }
    out->seen = true;
}

static void
mg_rs_usage_json(const mg_usage_t *u, mg_buf_t *o)
{
    mg_buf_printf(o, "{\"input_tokens\":%lld,\"input_tokens_details\":{\"cached_tokens\":%lld},"
                     "\"output_tokens\":%lld,\"output_tokens_details\":{\"reasoning_tokens\":%lld},"
                     "\"total_tokens\":%lld}",
                  (long long) u->prompt_tokens, (long long) u->cache_read_tokens,
                  (long long) u->completion_tokens, (long long) u->reasoning_tokens,
                  (long long) mg_usage_total(u));
}

/* ---- client requests: validation ---- */

static const char *
mg_rs_type_name(mg_json_type_t t)
{
    switch (t) {
    case MG_JSON_OBJECT: return "an object";
    case MG_JSON_ARRAY: return "an array";
    case MG_JSON_STRING: return "a string";
    case MG_JSON_NUMBER: return "a number";
    case MG_JSON_TRUE:
    case MG_JSON_FALSE: return "a boolean";
    case MG_JSON_NULL: return "null";
    default: return "an invalid value";
    }
}

/* A member that, when present and not null, must have type t. */
static int
mg_rs_check_type(const mg_api_req_t *q, const char *key, mg_json_type_t t, const char *want,
                 mg_api_err_t *err)
{
    const mg_json_member_t *m = mg_api_member(q, key);
    if (m == NULL || m->type == MG_JSON_NULL) {
        return MG_OK;
    }
    bool ok = m->type == t || (t == MG_JSON_TRUE && m->type == MG_JSON_FALSE);
    if (!ok) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid type for '%s': expected %s, but got %s instead.",
                          q->api->route_path, key, want, mg_rs_type_name(m->type));
    }
    return MG_OK;
}

static int
mg_rs_check_range(const mg_api_req_t *q, const char *key, double lo, double hi,
                  mg_api_err_t *err)
{
    const mg_json_member_t *m = mg_api_member(q, key);
    if (m == NULL || m->type == MG_JSON_NULL) {
        return MG_OK;
    }
    double v;
    if (m->type != MG_JSON_NUMBER || mg_json_num(m->val, m->val_len, &v) != MG_OK ||
        !isfinite(v)) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid type for '%s': expected a decimal, but got %s instead.",
                          q->api->route_path, key, mg_rs_type_name(m->type));
    }
    if (v < lo) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid '%s': decimal below minimum value. Expected a value >= %g, "
                          "but got %g instead.", q->api->route_path, key, lo, v);
    }
    if (v > hi) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid '%s': decimal above maximum value. Expected a value <= %g, "
                          "but got %g instead.", q->api->route_path, key, hi, v);
    }
    return MG_OK;
}

/* The members of the object value m that matter, checked with jansson (small). */
static int
mg_rs_check_objects(const mg_api_req_t *q, mg_api_err_t *err)
{
    const char *rp = q->api->route_path;
    const mg_json_member_t *m = mg_api_member(q, "input");
    if (m != NULL && m->type == MG_JSON_ARRAY) {
        json_t *a = json_loadb(m->val, m->val_len, 0, NULL);
        size_t i;
        json_t *it;
        json_array_foreach(a, i, it) {
            if (!json_is_object(it)) {
                const char *got = json_is_string(it) ? "a string" : "another value";
                json_decref(a);
                return mg_api_err(err, 400, "invalid_request_error", "input",
                                  "%s: Invalid type for 'input[%zu]': expected an input item "
                                  "object, but got %s instead.", rp, i, got);
            }
        }
        json_decref(a);
    }
    m = mg_api_member(q, "tools");
    if (m != NULL && m->type == MG_JSON_ARRAY) {
        json_t *a = json_loadb(m->val, m->val_len, 0, NULL);
        size_t i;
        json_t *t;
        json_array_foreach(a, i, t) {
            const char *tt = json_string_value(json_object_get(t, "type"));
            if (tt == NULL) {
                json_decref(a);
                return mg_api_err(err, 400, "invalid_request_error", "tools",
                                  "%s: Missing required parameter: 'tools[%zu].type'.", rp, i);
            }
            if (strcmp(tt, "function") == 0 && !json_is_string(json_object_get(t, "name")) &&
                !json_is_string(json_object_get(json_object_get(t, "function"), "name"))) {
                /* (chat's nested {"function": {"name"}} is taken too, as LiteLLM takes it) */
                json_decref(a);
                return mg_api_err(err, 400, "invalid_request_error", "tools",
                                  "%s: Missing required parameter: 'tools[%zu].name'.", rp, i);
            }
        }
        json_decref(a);
    }
    m = mg_api_member(q, "tool_choice");
    if (m != NULL && m->type == MG_JSON_STRING) {
        char buf[16];
        long n = m->val_len < sizeof(buf) ? mg_json_str_decode(m->val, m->val_len, buf) : -1;
        if (n < 0 || (strcmp(buf, "none") != 0 && strcmp(buf, "auto") != 0 &&
                      strcmp(buf, "required") != 0)) {
            return mg_api_err(err, 400, "invalid_request_error", "tool_choice",
                              "%s: Invalid value for 'tool_choice': expected one of 'none', "
                              "'auto' or 'required', or a tool choice object.", rp);
        }
    } else if (m != NULL && m->type != MG_JSON_OBJECT && m->type != MG_JSON_NULL) {
        return mg_api_err(err, 400, "invalid_request_error", "tool_choice",
                          "%s: Invalid type for 'tool_choice': expected a string or an object, "
                          "but got %s instead.", rp, mg_rs_type_name(m->type));
    }
    m = mg_api_member(q, "text");
    if (m != NULL && m->type == MG_JSON_OBJECT) {
        json_t *t = json_loadb(m->val, m->val_len, 0, NULL);
        json_t *f = json_object_get(t, "format");
        int rc = MG_OK;
        if (f != NULL && !json_is_null(f)) {
            const char *ft = json_string_value(json_object_get(f, "type"));
            if (!json_is_object(f) || ft == NULL) {
                rc = mg_api_err(err, 400, "invalid_request_error", "text.format",
                                "%s: Missing required parameter: 'text.format.type'.", rp);
            } else if (strcmp(ft, "json_schema") == 0 &&
                       (!json_is_string(json_object_get(f, "name")) ||
                        !json_is_object(json_object_get(f, "schema")))) {
                rc = mg_api_err(err, 400, "invalid_request_error", "text.format",
                                "%s: Missing required parameter: 'text.format.%s'.", rp,
                                json_is_string(json_object_get(f, "name")) ? "schema" : "name");
            } else if (strcmp(ft, "text") != 0 && strcmp(ft, "json_object") != 0 &&
                       strcmp(ft, "json_schema") != 0) {
                rc = mg_api_err(err, 400, "invalid_request_error", "text.format.type",
                                "%s: Invalid value for 'text.format.type': expected one of "
                                "'text', 'json_object' or 'json_schema'.", rp);
            }
        }
        json_decref(t);
        if (rc != MG_OK) {
            return rc;
        }
    }
    m = mg_api_member(q, "reasoning");
    if (m != NULL && m->type == MG_JSON_OBJECT) {
        mg_json_member_t e;
        if (mg_json_obj_find(m->val, m->val_len, "effort", &e) == 1 &&
            e.type != MG_JSON_STRING && e.type != MG_JSON_NULL) {
            return mg_api_err(err, 400, "invalid_request_error", "reasoning.effort",
                              "%s: Invalid type for 'reasoning.effort': expected a string, but got "
                              "%s instead.", rp, mg_rs_type_name(e.type));
        }
    }
    return MG_OK;
}

static int
mg_rs_validate(mg_api_req_t *q, mg_arena_t *a, mg_api_err_t *err)
{
    (void) a;
    const char *rp = q->api->route_path;
    if (q->model == NULL || q->model[0] == '\0') {
        return mg_api_err(err, 400, "invalid_request_error", "model",
                          "%s: Missing required parameter: 'model'.", rp);
    }
    const mg_json_member_t *in = mg_api_member(q, "input");
    if (in != NULL && in->type != MG_JSON_STRING && in->type != MG_JSON_ARRAY &&
        in->type != MG_JSON_NULL) {
        return mg_api_err(err, 400, "invalid_request_error", "input",
                          "%s: Invalid type for 'input': expected one of a string or array of "
                          "input items, but got %s instead.", rp, mg_rs_type_name(in->type));
    }
    if (mg_rs_check_type(q, "instructions", MG_JSON_STRING, "a string", err) != MG_OK ||
        mg_rs_check_type(q, "previous_response_id", MG_JSON_STRING, "a string", err) != MG_OK ||
        mg_rs_check_type(q, "tools", MG_JSON_ARRAY, "an array", err) != MG_OK ||
        mg_rs_check_type(q, "text", MG_JSON_OBJECT, "an object", err) != MG_OK ||
        mg_rs_check_type(q, "reasoning", MG_JSON_OBJECT, "an object", err) != MG_OK ||
        mg_rs_check_type(q, "store", MG_JSON_TRUE, "a boolean", err) != MG_OK ||
        mg_rs_check_type(q, "background", MG_JSON_TRUE, "a boolean", err) != MG_OK ||
        mg_rs_check_type(q, "parallel_tool_calls", MG_JSON_TRUE, "a boolean", err) != MG_OK ||
        mg_rs_check_range(q, "temperature", 0, 2, err) != MG_OK ||
        mg_rs_check_range(q, "top_p", 0, 1, err) != MG_OK ||
        mg_api_check_int(q, "max_output_tokens", 1, 2147483647.0, err) != MG_OK) {
        return MG_ERROR;
    }
    return mg_rs_check_objects(q, err);
}

/* ---- Responses body -> neutral (OpenAI chat), as LiteLLM's completion bridge ---- */

static const char *
mg_rs_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* One content part of an input message, as a chat content part (new reference), or NULL
 * with err set. */
static json_t *
mg_rs_part(json_t *p, mg_api_err_t *err)
{
    if (json_is_string(p)) {
        return json_pack("{s:s,s:O}", "type", "text", "text", p);
    }
    const char *t = mg_rs_str(p, "type");
    if (t == NULL) {
        mg_api_err(err, 400, "invalid_request_error", "input",
                   "/responses: a content part has no 'type'");
        return NULL;
    }
    if (strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0 ||
        strcmp(t, "text") == 0 || strcmp(t, "summary_text") == 0 || strcmp(t, "refusal") == 0) {
        const char *tx = mg_rs_str(p, strcmp(t, "refusal") == 0 ? "refusal" : "text");
        return json_pack("{s:s,s:s}", "type", "text", "text", tx ? tx : "");
    }
    if (strcmp(t, "input_image") == 0) {
        json_t *url = json_object_get(p, "image_url");
        if (json_is_object(url)) {
            url = json_object_get(url, "url");
        }
        if (!json_is_string(url)) {
            mg_api_err(err, 400, "invalid_request_error", "input",
                       "/responses: an input_image without image_url (a file_id image) cannot be "
                       "sent to a provider that is called through chat completions");
            return NULL;
        }
        json_t *iu = json_pack("{s:O}", "url", url);
        if (json_is_string(json_object_get(p, "detail"))) {
            json_object_set(iu, "detail", json_object_get(p, "detail"));
        }
        return json_pack("{s:s,s:o}", "type", "image_url", "image_url", iu);
    }
    if (strcmp(t, "input_file") == 0) {
        json_t *f = json_object();
        const char *keys[] = {"file_id", "file_data", "filename"};
        for (int i = 0; i < 3; i++) {
            if (json_is_string(json_object_get(p, keys[i]))) {
                json_object_set(f, keys[i], json_object_get(p, keys[i]));
            }
        }
        return json_pack("{s:s,s:o}", "type", "file", "file", f);
    }
    if (strcmp(t, "input_audio") == 0) {
        json_t *ia = json_object_get(p, "input_audio");
        return json_pack("{s:s,s:O}", "type", "input_audio", "input_audio",
                         json_is_object(ia) ? ia : p);
    }
    mg_api_err(err, 400, "invalid_request_error", "input",
               "/responses: content part type '%s' cannot be sent to a provider that is called "
               "through chat completions", t);
    return NULL;
}

/* Message content: a string stays one; parts become chat parts. */
static json_t *
mg_rs_content(json_t *c, mg_api_err_t *err)
{
    if (json_is_string(c)) {
        return json_incref(c);
    }
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        json_t *np = mg_rs_part(p, err);
        if (np == NULL) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, np);
    }
    return out;
}

/* The text of a content list (assistant turns: chat carries one string). */
static json_t *
mg_rs_text_of(json_t *c)
{
    if (json_is_string(c)) {
        return json_incref(c);
    }
    mg_buf_t b = MG_BUF_INIT;
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *t = mg_rs_str(p, "text");
        if (t == NULL) {
            t = mg_rs_str(p, "refusal");
        }
        if (t != NULL) {
            mg_buf_append_str(&b, t);
        }
    }
    json_t *s = json_stringn(mg_buf_len(&b) ? mg_buf_head(&b) : "", mg_buf_len(&b));
    mg_buf_free(&b);
    return s;
}

typedef struct {
    json_t *msgs;           /* borrowed: the chat messages being built */
    json_t *asst;           /* borrowed (in msgs): the assistant turn function calls join */
    json_t *thinking;       /* owned: reasoning items waiting for the next assistant turn */
} mg_rs_conv_t;

static json_t *
mg_rs_assistant(mg_rs_conv_t *cv)
{
    if (cv->asst == NULL) {
        cv->asst = json_pack("{s:s,s:n}", "role", "assistant", "content");
        json_array_append_new(cv->msgs, cv->asst);
    }
    if (cv->thinking != NULL) {
        json_object_set_new(cv->asst, "thinking_blocks", cv->thinking);
        cv->thinking = NULL;
    }
    return cv->asst;
}

static int
mg_rs_item(mg_rs_conv_t *cv, json_t *it, size_t idx, mg_api_err_t *err)
{
    const char *type = mg_rs_str(it, "type");
    const char *role = mg_rs_str(it, "role");
    if (type == NULL || strcmp(type, "message") == 0) {
        if (role == NULL) {
            return mg_api_err(err, 400, "invalid_request_error", "input",
                              "/responses: input[%zu] is neither a message (role) nor a typed "
                              "item", idx);
        }
        json_t *c = json_object_get(it, "content");
        if (strcmp(role, "assistant") == 0) {
            cv->asst = NULL;
            json_t *a = mg_rs_assistant(cv);
            json_object_set_new(a, "content", mg_rs_text_of(c));
            return MG_OK;
        }
        json_t *nc = mg_rs_content(c, err);
        if (nc == NULL) {
            return MG_ERROR;
        }
        cv->asst = NULL;
        json_array_append_new(cv->msgs, json_pack("{s:s,s:o}", "role", role, "content", nc));
        return MG_OK;
    }
    if (strcmp(type, "function_call") == 0) {
        json_t *a = mg_rs_assistant(cv);
        json_t *tcs = json_object_get(a, "tool_calls");
        if (tcs == NULL) {
            tcs = json_array();
            json_object_set_new(a, "tool_calls", tcs);
        }
        const char *args = mg_rs_str(it, "arguments");
        const char *cid = mg_rs_str(it, "call_id");
        json_array_append_new(tcs, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id",
                                             cid ? cid : "", "type", "function", "function",
                                             "name", mg_rs_str(it, "name") ? mg_rs_str(it, "name")
                                                                           : "",
                                             "arguments", args ? args : ""));
        return MG_OK;
    }
    if (strcmp(type, "function_call_output") == 0) {
        cv->asst = NULL;
        json_t *o = json_object_get(it, "output");
        json_t *c = json_is_string(o) ? json_incref(o)
                    : json_is_array(o) ? mg_rs_content(o, err)
                                       : json_string("");
        if (c == NULL) {
            return MG_ERROR;
        }
        const char *cid = mg_rs_str(it, "call_id");
        json_array_append_new(cv->msgs, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id",
                                                  cid ? cid : "", "content", c));
        return MG_OK;
    }
    if (strcmp(type, "reasoning") == 0) {
        /* a thinking block for the assistant turn that follows, when it carries the
         * signature moongate put in encrypted_content; summaries alone are dropped */
        const char *sig = mg_rs_str(it, "encrypted_content");
        if (sig == NULL) {
            return MG_OK;
        }
        json_t *txt = mg_rs_text_of(json_object_get(it, "summary"));
        if (cv->thinking == NULL) {
            cv->thinking = json_array();
        }
        json_array_append_new(cv->thinking, json_pack("{s:s,s:o,s:s}", "type", "thinking",
                                                      "thinking", txt, "signature", sig));
        cv->asst = NULL;
        return MG_OK;
    }
    if (strcmp(type, "item_reference") == 0) {
        return mg_api_err(err, 400, "invalid_request_error", "input",
                          "/responses: input[%zu] is an item_reference; moongate does not store "
                          "items of deployments it calls through chat completions, send the item "
                          "itself", idx);
    }
    return mg_api_err(err, 400, "invalid_request_error", "input",
                      "/responses: input item type '%s' cannot be sent to a provider that is "
                      "called through chat completions", type);
}

static int
mg_rs_tools(json_t *b, json_t *n, mg_api_err_t *err)
{
    json_t *tools = json_object_get(b, "tools");
    if (!json_is_array(tools) || json_array_size(tools) == 0) {
        return MG_OK;
    }
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *tt = mg_rs_str(t, "type");
        if (tt != NULL && strcmp(tt, "function") == 0) {
            if (json_is_object(json_object_get(t, "function"))) {
                t = json_object_get(t, "function"); /* chat's nested shape */
            }
            json_t *fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
            const char *keys[] = {"description", "parameters", "strict"};
            for (int k = 0; k < 3; k++) {
                json_t *v = json_object_get(t, keys[k]);
                if (v != NULL && !json_is_null(v)) {
                    json_object_set(fn, keys[k], v);
                }
            }
            if (json_object_get(fn, "parameters") == NULL) {
                json_object_set_new(fn, "parameters",
                                    json_pack("{s:s,s:{}}", "type", "object", "properties"));
            }
            json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        } else if (tt != NULL && (strcmp(tt, "web_search_preview") == 0 ||
                                  strcmp(tt, "web_search") == 0)) {
            /* LiteLLM's mapping: a web search tool is chat's web_search_options */
            json_t *wso = json_object();
            if (json_is_string(json_object_get(t, "search_context_size"))) {
                json_object_set(wso, "search_context_size",
                                json_object_get(t, "search_context_size"));
            }
            if (json_is_object(json_object_get(t, "user_location"))) {
                json_object_set_new(wso, "user_location",
                                    json_pack("{s:s,s:O}", "type", "approximate", "approximate",
                                              json_object_get(t, "user_location")));
            }
            json_object_set_new(n, "web_search_options", wso);
        } else {
            json_decref(out);
            return mg_api_err(err, 400, "invalid_request_error", "tools",
                              "/responses: tool type '%s' cannot be sent to a provider that is "
                              "called through chat completions (only function and web_search "
                              "tools)", tt ? tt : "?");
        }
    }
    if (json_array_size(out) > 0) {
        json_object_set_new(n, "tools", out);
    } else {
        json_decref(out);
    }
    return MG_OK;
}

static int
mg_rs_tool_choice(json_t *b, json_t *n, mg_api_err_t *err)
{
    json_t *tc = json_object_get(b, "tool_choice");
    if (json_is_string(tc)) {
        json_object_set(n, "tool_choice", tc);
        return MG_OK;
    }
    if (!json_is_object(tc)) {
        return MG_OK;
    }
    const char *t = mg_rs_str(tc, "type");
    if (t != NULL && strcmp(t, "function") == 0 && mg_rs_str(tc, "name") != NULL) {
        json_object_set_new(n, "tool_choice",
                            json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name",
                                      mg_rs_str(tc, "name")));
        return MG_OK;
    }
    return mg_api_err(err, 400, "invalid_request_error", "tool_choice",
                      "/responses: tool_choice type '%s' cannot be sent to a provider that is "
                      "called through chat completions", t ? t : "?");
}

static json_t *
mg_rs_neutral(mg_api_req_t *q, mg_api_err_t *err)
{
    json_error_t je;
    json_t *b = json_loadb(q->body, q->body_len, 0, &je);
    if (!json_is_object(b)) {
        json_decref(b);
        mg_api_err(err, 400, "invalid_request_error", "request_body", "Invalid JSON payload: %s",
                   je.text);
        return NULL;
    }
    /* what only a stored response can give */
    static const char *const stored[] = {"previous_response_id", "conversation", "prompt", NULL};
    for (const char *const *k = stored; *k; k++) {
        json_t *v = json_object_get(b, *k);
        if (v != NULL && !json_is_null(v)) {
            mg_api_err(err, 400, "invalid_request_error", *k,
                       "/responses: '%s' needs a response stored by the provider, and this "
                       "deployment is called through chat completions, which store nothing "
                       "(only OpenAI and Azure deployments store responses); send the whole "
                       "conversation in 'input' instead", *k);
            json_decref(b);
            return NULL;
        }
    }
    if (json_is_true(json_object_get(b, "background"))) {
        mg_api_err(err, 400, "invalid_request_error", "background",
                   "/responses: background responses need a provider that runs them (OpenAI or "
                   "Azure); this deployment is called through chat completions");
        json_decref(b);
        return NULL;
    }
    json_t *n = json_object();
    json_t *msgs = json_array();
    json_object_set_new(n, "model", json_string(q->model));
    json_object_set_new(n, "messages", msgs);
    const char *ins = mg_rs_str(b, "instructions");
    if (ins != NULL && ins[0] != '\0') {
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", ins));
    }
    json_t *in = json_object_get(b, "input");
    int rc = MG_OK;
    if (json_is_string(in)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", in));
    } else if (json_is_array(in)) {
        mg_rs_conv_t cv = {msgs, NULL, NULL};
        size_t i;
        json_t *it;
        json_array_foreach(in, i, it) {
            if ((rc = mg_rs_item(&cv, it, i, err)) != MG_OK) {
                break;
            }
        }
        json_decref(cv.thinking); /* reasoning with no assistant turn after it */
    }
    if (rc == MG_OK && json_array_size(msgs) == 0) {
        rc = mg_api_err(err, 400, "invalid_request_error", "input",
                        "/responses: Missing required parameter: 'input'.");
    }
    if (rc == MG_OK) {
        rc = mg_rs_tools(b, n, err);
    }
    if (rc == MG_OK) {
        rc = mg_rs_tool_choice(b, n, err);
    }
    if (rc != MG_OK) {
        json_decref(b);
        json_decref(n);
        return NULL;
    }
    /* parameters chat carries under the same name */
    static const char *const same[] = {"temperature", "top_p", "user", "parallel_tool_calls",
                                       NULL};
    for (const char *const *k = same; *k; k++) {
        json_t *v = json_object_get(b, *k);
        if (v != NULL && !json_is_null(v)) {
            json_object_set(n, *k, v);
        }
    }
    json_t *mot = json_object_get(b, "max_output_tokens");
    if (json_is_integer(mot)) {
        json_object_set(n, "max_tokens", mot);
    }
    const char *effort = mg_rs_str(json_object_get(b, "reasoning"), "effort");
    if (effort != NULL) {
        json_object_set_new(n, "reasoning_effort", json_string(effort));
    }
    json_t *fmt = json_object_get(json_object_get(b, "text"), "format");
    const char *ft = mg_rs_str(fmt, "type");
    if (ft != NULL && strcmp(ft, "json_object") == 0) {
        json_object_set_new(n, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (ft != NULL && strcmp(ft, "json_schema") == 0) {
        json_t *js = json_pack("{s:O,s:O}", "name", json_object_get(fmt, "name"), "schema",
                               json_object_get(fmt, "schema"));
        if (json_is_boolean(json_object_get(fmt, "strict"))) {
            json_object_set(js, "strict", json_object_get(fmt, "strict"));
        }
        if (json_is_string(json_object_get(fmt, "description"))) {
            json_object_set(js, "description", json_object_get(fmt, "description"));
        }
        json_object_set_new(n, "response_format",
                            json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    }
    json_decref(b);
    return n;
}

static int
mg_rs_build(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out, mg_api_err_t *err)
{
    (void) op;
    (void) n;
    (void) o;
    (void) out;
    return mg_api_err(err, 500, NULL, NULL,
                      "moongate: a Responses API body is only ever sent as the client wrote it");
}

static int
mg_rs_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    (void) d;
    (void) data;
    (void) len;
    return mg_api_err(err, 502, NULL, NULL,
                      "moongate: Responses API events are relayed, never translated");
}

static int
mg_rs_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    return mg_rs_dec_event(d, body, len, err);
}

/* ---- encoder: neutral events -> Responses object / response.* events ---- */

enum { MG_RS_ITEM_MESSAGE = 1, MG_RS_ITEM_CALL, MG_RS_ITEM_REASONING };

typedef struct {
    int kind;
    int tool;               /* MG_RS_ITEM_CALL: the tool call index in choice 0 */
    char id[48];            /* msg_..., fc_..., rs_... */
    mg_buf_t text;          /* message text, call arguments, reasoning summary (owned) */
    mg_buf_t call_id;       /* owned */
    mg_buf_t name;          /* owned */
    mg_buf_t sig;           /* reasoning: signature fragments (owned) */
    bool done;              /* stream: its .done events went out */
} mg_rs_item_t;

struct mg_resp_enc_s {
    mg_rs_item_t *items;    /* malloc */
    int nitems, cap;
    int open;               /* stream: the item being streamed, -1 none */
    int64_t seq;            /* stream: the next sequence_number */
    char rid[768];          /* the response id the client sees */
    char tag[40];           /* random part of the item ids */
    json_t *echo;           /* owned: request parameters the response object repeats */
};

static struct mg_resp_enc_s *
mg_rs_x(mg_enc_t *e)
{
    if (e->rx == NULL) {
        e->rx = mg_xcalloc(1, sizeof(*e->rx));
        e->rx->open = -1;
        char u[37];
        mg_uuid4(u);
        size_t k = 0;
        for (size_t i = 0; u[i] != '\0' && k + 1 < sizeof(e->rx->tag); i++) {
            if (u[i] != '-') {
                e->rx->tag[k++] = u[i];
            }
        }
        e->rx->tag[k] = '\0';
    }
    return e->rx;
}

void
mg_api_responses_enc_free(mg_enc_t *e)
{
    struct mg_resp_enc_s *x = e->rx;
    if (x == NULL) {
        return;
    }
    for (int i = 0; i < x->nitems; i++) {
        mg_buf_free(&x->items[i].text);
        mg_buf_free(&x->items[i].call_id);
        mg_buf_free(&x->items[i].name);
        mg_buf_free(&x->items[i].sig);
    }
    free(x->items);
    json_decref(x->echo);
    free(x);
    e->rx = NULL;
}

/* The response id: the upstream's, encoded with the deployment, made once. */
static void
mg_rs_set_id(mg_enc_t *e, const char *id, size_t n)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    if (x->rid[0] != '\0') {
        return;
    }
    char gen[64];
    if (id == NULL || n == 0) {
        char u[37];
        mg_uuid4(u);
        n = (size_t) snprintf(gen, sizeof(gen), "resp_%s", u);
        id = gen;
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_api_resp_id_encode(e->origin_provider, e->origin_model_id, id, n, &b);
    snprintf(x->rid, sizeof(x->rid), "%.*s", (int) mg_buf_len(&b), mg_buf_head(&b));
    mg_buf_free(&b);
    if (e->created == 0) {
        e->created = mg_time_real_ms() / 1000;
    }
}

/* The request parameters a response object repeats, with LiteLLM's defaults. */
static json_t *
mg_rs_echo(mg_enc_t *e)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    if (x->echo != NULL) {
        return x->echo;
    }
    json_t *b = e->req != NULL ? json_loadb(e->req->body, e->req->body_len, 0, NULL) : NULL;
    json_t *o = json_object();
    static const struct {
        const char *key;
        const char *dflt;   /* JSON text when the request does not set it */
    } keys[] = {
        {"instructions", "null"}, {"max_output_tokens", "null"},
        {"parallel_tool_calls", "true"}, {"previous_response_id", "null"},
        {"reasoning", "{\"effort\":null,\"summary\":null}"}, {"temperature", "1.0"},
        {"text", "{\"format\":{\"type\":\"text\"}}"}, {"tool_choice", "\"auto\""},
        {"tools", "[]"}, {"top_p", "1.0"}, {"truncation", "\"disabled\""}, {"user", "null"},
        {"metadata", "{}"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(b, keys[i].key);
        if (v != NULL && !json_is_null(v)) {
            json_object_set(o, keys[i].key, v);
        } else {
            json_object_set_new(o, keys[i].key, json_loads(keys[i].dflt, JSON_DECODE_ANY, NULL));
        }
    }
    json_decref(b);
    x->echo = o;
    return o;
}

static mg_rs_item_t *
mg_rs_item_new(mg_enc_t *e, int kind, int tool)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    if (x->nitems == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 4;
        x->items = mg_xrealloc(x->items, (size_t) x->cap * sizeof(*x->items));
    }
    mg_rs_item_t *it = &x->items[x->nitems];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->tool = tool;
    static const char *const pre[] = {"", "msg", "fc", "rs"};
    snprintf(it->id, sizeof(it->id), "%s_%.24s%d", pre[kind], x->tag, x->nitems);
    x->nitems++;
    return it;
}

/* The item of kind (a call: of that tool) to append to: the last one of its kind. */
static mg_rs_item_t *
mg_rs_find(mg_enc_t *e, int kind, int tool)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    for (int i = x->nitems - 1; i >= 0; i--) {
        if (x->items[i].kind == kind && (kind != MG_RS_ITEM_CALL || x->items[i].tool == tool)) {
            return &x->items[i];
        }
    }
    return NULL;
}

static void
mg_rs_item_json(const mg_rs_item_t *it, bool done, mg_buf_t *o)
{
    const char *st = done ? "completed" : "in_progress";
    mg_buf_append_str(o, "{\"id\":");
    mg_buf_json_str(o, it->id, strlen(it->id));
    switch (it->kind) {
    case MG_RS_ITEM_MESSAGE:
        mg_buf_printf(o, ",\"type\":\"message\",\"status\":\"%s\",\"role\":\"assistant\","
                         "\"content\":[", st);
        if (done) {
            mg_buf_append_str(o, "{\"type\":\"output_text\",\"text\":");
            mg_buf_json_str(o, mg_buf_len(&it->text) ? mg_buf_head(&it->text) : "",
                            mg_buf_len(&it->text));
            mg_buf_append_str(o, ",\"annotations\":[],\"logprobs\":[]}");
        }
        mg_buf_append_str(o, "]}");
        break;
    case MG_RS_ITEM_CALL:
        mg_buf_printf(o, ",\"type\":\"function_call\",\"status\":\"%s\",\"arguments\":", st);
        if (done) {
            mg_buf_json_str(o, mg_buf_len(&it->text) ? mg_buf_head(&it->text) : "",
                            mg_buf_len(&it->text));
        } else {
            mg_buf_append_str(o, "\"\"");
        }
        mg_buf_append_str(o, ",\"call_id\":");
        mg_buf_json_str(o, mg_buf_len(&it->call_id) ? mg_buf_head(&it->call_id) : "",
                        mg_buf_len(&it->call_id));
        mg_buf_append_str(o, ",\"name\":");
        mg_buf_json_str(o, mg_buf_len(&it->name) ? mg_buf_head(&it->name) : "",
                        mg_buf_len(&it->name));
        mg_buf_append(o, "}", 1);
        break;
    case MG_RS_ITEM_REASONING:
        mg_buf_append_str(o, ",\"type\":\"reasoning\",\"summary\":[");
        if (done && mg_buf_len(&it->text) > 0) {
            mg_buf_append_str(o, "{\"type\":\"summary_text\",\"text\":");
            mg_buf_json_str(o, mg_buf_head(&it->text), mg_buf_len(&it->text));
            mg_buf_append(o, "}", 1);
        }
        mg_buf_append(o, "]", 1);
        if (done && mg_buf_len(&it->sig) > 0) {
            /* Anthropic's thinking signature, so the next turn can hand the block back */
            mg_buf_append_str(o, ",\"encrypted_content\":");
            mg_buf_json_str(o, mg_buf_head(&it->sig), mg_buf_len(&it->sig));
        }
        mg_buf_append(o, "}", 1);
        break;
    }
}

static const char *
mg_rs_status(const mg_enc_t *e, const char **reason)
{
    *reason = NULL;
    switch (e->finish[0]) {
    case MG_FIN_LENGTH: *reason = "max_output_tokens"; return "incomplete";
    case MG_FIN_CONTENT_FILTER: *reason = "content_filter"; return "incomplete";
    default: return "completed";
    }
}

/* The whole response object; final: status, output and usage are filled in. */
static void
mg_rs_object(mg_enc_t *e, bool final, mg_buf_t *o)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    const char *reason = NULL;
    const char *status = final ? mg_rs_status(e, &reason) : "in_progress";
    mg_buf_append_str(o, "{\"id\":");
    mg_buf_json_str(o, x->rid, strlen(x->rid));
    mg_buf_printf(o, ",\"object\":\"response\",\"created_at\":%lld,\"status\":\"%s\","
                     "\"background\":false,\"error\":null,\"incomplete_details\":",
                  (long long) e->created, status);
    if (reason != NULL) {
        mg_buf_printf(o, "{\"reason\":\"%s\"}", reason);
    } else {
        mg_buf_append_str(o, "null");
    }
    mg_buf_append_str(o, ",\"model\":");
    mg_buf_json_str(o, e->model, strlen(e->model));
    mg_buf_append_str(o, ",\"output\":[");
    for (int i = 0; final && i < x->nitems; i++) {
        if (i > 0) {
            mg_buf_append(o, ",", 1);
        }
        mg_rs_item_json(&x->items[i], true, o);
    }
    mg_buf_append(o, "]", 1);
    json_t *echo = mg_rs_echo(e);
    const char *k;
    json_t *v;
    json_object_foreach(echo, k, v) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        mg_buf_append(o, ",", 1);
        mg_buf_json_str(o, k, strlen(k));
        mg_buf_printf(o, ":%s", s ? s : "null");
        free(s);
    }
    /* moongate keeps no copy of a translated response */
    mg_buf_append_str(o, ",\"store\":false,\"usage\":");
    if (final) {
        mg_rs_usage_json(e->usage, o);
    } else {
        mg_buf_append_str(o, "null");
    }
    mg_buf_append(o, "}", 1);
}

/* "event: <type>\ndata: {"type":"<type>","sequence_number":N" -- the caller closes it. */
static void
mg_rs_ev_open(mg_enc_t *e, const char *type)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    mg_buf_printf(e->out, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%lld", type, type,
                  (long long) x->seq++);
}

static void
mg_rs_ev_close(mg_enc_t *e)
{
    mg_buf_append_str(e->out, "}\n\n");
}

static void
mg_rs_ev_item_ref(mg_enc_t *e, const mg_rs_item_t *it, int index)
{
    mg_buf_append_str(e->out, ",\"item_id\":");
    mg_buf_json_str(e->out, it->id, strlen(it->id));
    mg_buf_printf(e->out, ",\"output_index\":%d", index);
}

static void
mg_rs_stream_start(mg_enc_t *e)
{
    if (e->started) {
        return;
    }
    e->started = true;
    mg_rs_set_id(e, NULL, 0);
    const char *types[] = {"response.created", "response.in_progress"};
    for (int i = 0; i < 2; i++) {
        mg_rs_ev_open(e, types[i]);
        mg_buf_append_str(e->out, ",\"response\":");
        mg_rs_object(e, false, e->out);
        mg_rs_ev_close(e);
    }
}

/* Ends the streamed item at index i: its .done events. */
static void
mg_rs_stream_close(mg_enc_t *e, int i)
{
    struct mg_resp_enc_s *x = e->rx;
    mg_rs_item_t *it = &x->items[i];
    if (it->done) {
        return;
    }
    it->done = true;
    const char *t = mg_buf_len(&it->text) ? mg_buf_head(&it->text) : "";
    size_t tl = mg_buf_len(&it->text);
    mg_buf_t *o = e->out;
    if (it->kind == MG_RS_ITEM_MESSAGE) {
        mg_rs_ev_open(e, "response.output_text.done");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"content_index\":0,\"text\":");
        mg_buf_json_str(o, t, tl);
        mg_buf_append_str(o, ",\"logprobs\":[]");
        mg_rs_ev_close(e);
        mg_rs_ev_open(e, "response.content_part.done");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":");
        mg_buf_json_str(o, t, tl);
        mg_buf_append_str(o, ",\"annotations\":[],\"logprobs\":[]}");
        mg_rs_ev_close(e);
    } else if (it->kind == MG_RS_ITEM_CALL) {
        mg_rs_ev_open(e, "response.function_call_arguments.done");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"arguments\":");
        mg_buf_json_str(o, t, tl);
        mg_rs_ev_close(e);
    } else {
        mg_rs_ev_open(e, "response.reasoning_summary_text.done");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"summary_index\":0,\"text\":");
        mg_buf_json_str(o, t, tl);
        mg_rs_ev_close(e);
        mg_rs_ev_open(e, "response.reasoning_summary_part.done");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":");
        mg_buf_json_str(o, t, tl);
        mg_buf_append_str(o, "}");
        mg_rs_ev_close(e);
    }
    mg_rs_ev_open(e, "response.output_item.done");
    mg_buf_printf(o, ",\"output_index\":%d,\"item\":", i);
    mg_rs_item_json(it, true, o);
    mg_rs_ev_close(e);
    if (x->open == i) {
        x->open = -1;
    }
}

/* Stream: the item a text or reasoning fragment goes to: the open item when it is of that
 * kind, else a new one, announced, after the open one is closed (output items stream one
 * after the other; text after a function call is a new message item). */
static mg_rs_item_t *
mg_rs_stream_item(mg_enc_t *e, int kind)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    if (x->open >= 0) {
        if (x->items[x->open].kind == kind) {
            return &x->items[x->open];
        }
        mg_rs_stream_close(e, x->open);
    }
    mg_rs_item_t *it = mg_rs_item_new(e, kind, 0);
    int i = x->nitems - 1;
    x->open = i;
    mg_buf_t *o = e->out;
    mg_rs_ev_open(e, "response.output_item.added");
    mg_buf_printf(o, ",\"output_index\":%d,\"item\":", i);
    mg_rs_item_json(it, false, o);
    mg_rs_ev_close(e);
    if (kind == MG_RS_ITEM_MESSAGE) {
        mg_rs_ev_open(e, "response.content_part.added");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
                             "\"annotations\":[],\"logprobs\":[]}");
        mg_rs_ev_close(e);
    } else {
        mg_rs_ev_open(e, "response.reasoning_summary_part.added");
        mg_rs_ev_item_ref(e, it, i);
        mg_buf_append_str(o, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\","
                             "\"text\":\"\"}");
        mg_rs_ev_close(e);
    }
    return it;
}

/* Whole body: the same rule, so a stream and a body have the same items. */
static mg_rs_item_t *
mg_rs_collect_item(mg_enc_t *e, int kind)
{
    struct mg_resp_enc_s *x = mg_rs_x(e);
    if (x->nitems > 0 && x->items[x->nitems - 1].kind == kind) {
        return &x->items[x->nitems - 1];
    }
    return mg_rs_item_new(e, kind, 0);
}

static void
mg_rs_error_event(mg_enc_t *e, const mg_ev_t *ev)
{
    char *msg = mg_xstrndup(ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
    mg_buf_t *o = e->out;
    mg_rs_ev_open(e, "error");
    mg_buf_printf(o, ",\"code\":\"%d\",\"message\":", ev->status);
    mg_buf_json_str(o, msg, strlen(msg));
    mg_buf_append_str(o, ",\"param\":null,\"error\":{\"message\":");
    mg_buf_json_str(o, msg, strlen(msg));
    mg_buf_append_str(o, ",\"type\":");
    if (ev->etype != NULL) {
        mg_buf_json_str(o, ev->etype, strlen(ev->etype));
    } else {
        mg_buf_append_str(o, "null");
    }
    mg_buf_printf(o, ",\"param\":null,\"code\":\"%d\"}", ev->status);
    mg_rs_ev_close(e);
    free(msg);
}

static void
mg_rs_enc_event(mg_enc_t *e, const mg_ev_t *ev)
{
    if (e->errored || e->ended) {
        return;
    }
    if (ev->kind == MG_EV_END) {
        e->ended = true;
    }
    if (ev->index != 0 && ev->kind != MG_EV_START && ev->kind != MG_EV_USAGE &&
        ev->kind != MG_EV_END && ev->kind != MG_EV_ERROR) {
        return; /* one answer per response: choices beyond the first are not shown */
    }
    bool s = e->stream;
    mg_rs_item_t *it;
    switch (ev->kind) {
    case MG_EV_START:
        mg_rs_set_id(e, ev->id, ev->id_len);
        if (ev->created > 0) {
            e->created = ev->created;
        }
        if (s) {
            mg_rs_stream_start(e);
        }
        break;
    case MG_EV_TEXT:
        if (s) {
            mg_rs_stream_start(e);
            it = mg_rs_stream_item(e, MG_RS_ITEM_MESSAGE);
            if (!it->done) {
                mg_rs_ev_open(e, "response.output_text.delta");
                mg_rs_ev_item_ref(e, it, (int) (it - e->rx->items));
                mg_buf_append_str(e->out, ",\"content_index\":0,\"delta\":");
                mg_buf_json_str(e->out, ev->text, ev->text_len);
                mg_buf_append_str(e->out, ",\"logprobs\":[]");
                mg_rs_ev_close(e);
            }
        } else {
            it = mg_rs_collect_item(e, MG_RS_ITEM_MESSAGE);
        }
        mg_buf_append(&it->text, ev->text, ev->text_len);
        break;
    case MG_EV_REASONING:
        if (s) {
            mg_rs_stream_start(e);
            it = mg_rs_stream_item(e, MG_RS_ITEM_REASONING);
            if (!it->done && ev->text != NULL && ev->text_len > 0) {
                mg_rs_ev_open(e, "response.reasoning_summary_text.delta");
                mg_rs_ev_item_ref(e, it, (int) (it - e->rx->items));
                mg_buf_append_str(e->out, ",\"summary_index\":0,\"delta\":");
                mg_buf_json_str(e->out, ev->text, ev->text_len);
                mg_rs_ev_close(e);
            }
        } else {
            it = mg_rs_collect_item(e, MG_RS_ITEM_REASONING);
        }
        if (ev->text != NULL) {
            mg_buf_append(&it->text, ev->text, ev->text_len);
        }
        if (ev->sig != NULL) {
            mg_buf_append(&it->sig, ev->sig, ev->sig_len);
        }
        break;
    case MG_EV_REDACTED:
        break; /* an opaque block the Responses API has no item for */
    case MG_EV_TOOL: {
        /* a call begins with the first event of its index, or with a new call id there
         * (some servers repeat the id on every fragment: the same id continues the call) */
        struct mg_resp_enc_s *x = mg_rs_x(e);
        mg_rs_item_t *prev = mg_rs_find(e, MG_RS_ITEM_CALL, ev->tool);
        bool first = prev == NULL ||
                     (ev->id != NULL && ev->id_len > 0 &&
                      (mg_buf_len(&prev->call_id) != ev->id_len ||
                       memcmp(mg_buf_head(&prev->call_id), ev->id, ev->id_len) != 0));
        if (first) {
            if (s) {
                mg_rs_stream_start(e);
                if (x->open >= 0) {
                    mg_rs_stream_close(e, x->open); /* items stream one after the other */
                }
            }
            it = mg_rs_item_new(e, MG_RS_ITEM_CALL, ev->tool);
            mg_buf_append(&it->call_id, ev->id ? ev->id : "", ev->id ? ev->id_len : 0);
            mg_buf_append(&it->name, ev->name ? ev->name : "", ev->name ? ev->name_len : 0);
            if (mg_buf_len(&it->call_id) == 0) {
                mg_buf_printf(&it->call_id, "call_%s_%d", x->tag, ev->tool);
            }
            if (s) {
                /* announced once its call_id and name are known */
                int i = x->nitems - 1;
                x->open = i;
                mg_rs_ev_open(e, "response.output_item.added");
                mg_buf_printf(e->out, ",\"output_index\":%d,\"item\":", i);
                mg_rs_item_json(it, false, e->out);
                mg_rs_ev_close(e);
            }
        } else {
            /* the open item, or one already done (interleaved calls): then the fragment is
             * kept for the final object, with no delta after its .done events */
            it = prev;
        }
        if (ev->text != NULL && ev->text_len > 0) {
            if (s && !it->done) {
                mg_rs_ev_open(e, "response.function_call_arguments.delta");
                mg_rs_ev_item_ref(e, it, (int) (it - e->rx->items));
                mg_buf_append_str(e->out, ",\"delta\":");
                mg_buf_json_str(e->out, ev->text, ev->text_len);
                mg_rs_ev_close(e);
            }
            mg_buf_append(&it->text, ev->text, ev->text_len);
        }
        break;
    }
    case MG_EV_FINISH:
        e->finish[0] = ev->finish;
        break;
    case MG_EV_USAGE:
        break;
    case MG_EV_ERROR:
        e->errored = true;
        if (s) {
            mg_rs_stream_start(e);
            mg_rs_error_event(e, ev);
        }
        break;
    case MG_EV_END:
    case MG_EV_EMBEDDING: /* no Responses route carries embeddings */
        break;
    }
}

static void
mg_rs_enc_finish(mg_enc_t *e)
{
    if (!e->stream) {
        mg_rs_set_id(e, NULL, 0);
        mg_rs_object(e, true, e->out);
        return;
    }
    if (e->errored) {
        return;
    }
    mg_rs_stream_start(e);
    struct mg_resp_enc_s *x = e->rx;
    for (int i = 0; i < x->nitems; i++) {
        mg_rs_stream_close(e, i);
    }
    const char *reason;
    const char *st = mg_rs_status(e, &reason);
    mg_rs_ev_open(e, strcmp(st, "completed") == 0 ? "response.completed" : "response.incomplete");
    mg_buf_append_str(e->out, ",\"response\":");
    mg_rs_object(e, true, e->out);
    mg_rs_ev_close(e);
}

/* ---- same-wire relay: ids and model rewritten, usage read ---- */

/* Up to two string members of one object to rewrite, in text order. */
typedef struct {
    const mg_json_member_t *m;
    const char *with;       /* replacement JSON text */
    size_t with_len;
} mg_rs_edit_t;

static void
mg_rs_apply(const char *p, size_t n, mg_rs_edit_t *ed, int ned, mg_buf_t *out)
{
    if (ned == 2 && ed[1].m->val < ed[0].m->val) {
        mg_rs_edit_t t = ed[0];
        ed[0] = ed[1];
        ed[1] = t;
    }
    const char *at = p;
    for (int i = 0; i < ned; i++) {
        mg_buf_append(out, at, (size_t) (ed[i].m->val - at));
        mg_buf_append(out, ed[i].with, ed[i].with_len);
        at = ed[i].m->end;
    }
    mg_buf_append(out, at, (size_t) (p + n - at));
}

/*
 * Rewrites the response object at obj[0..n) (inside p): its id encoded with the
 * deployment, its model restamped; reads its usage.  Appends p with the edits to out and
 * returns true, or returns false when nothing changes.
 */
static bool
mg_rs_relay_object(mg_relay_t *rl, const char *p, size_t pn, const char *obj, size_t n,
                   bool restamp, mg_buf_t *out)
{
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, obj, n) != MG_OK) {
        return false;
    }
    mg_json_member_t m, id = {0}, model = {0};
    bool has_id = false, has_model = false;
    while (mg_json_obj_next(&it, &m) == 1) {
        if (!has_id && m.type == MG_JSON_STRING && mg_json_key_is(&m, "id")) {
            id = m;
            has_id = true;
        } else if (!has_model && m.type == MG_JSON_STRING && mg_json_key_is(&m, "model")) {
            model = m;
            has_model = true;
        } else if (m.type == MG_JSON_OBJECT && mg_json_key_is(&m, "usage")) {
            json_t *u = json_loadb(m.val, m.val_len, 0, NULL);
            mg_rs_read_usage(u, rl->usage);
            json_decref(u);
        }
    }
    mg_rs_edit_t ed[2];
    int ned = 0;
    mg_buf_t idb = MG_BUF_INIT, mb = MG_BUF_INIT;
    if (has_id && rl->origin_provider != NULL) {
        char dec[512];
        long dn = id.val_len < sizeof(dec) ? mg_json_str_decode(id.val, id.val_len, dec) : -1;
        /* an id that already names a deployment (a LiteLLM in front) is left as it is */
        if (dn >= 0 && !mg_rs_is_encoded(dec, (size_t) dn)) {
            mg_buf_t enc = MG_BUF_INIT;
            mg_api_resp_id_encode(rl->origin_provider, rl->origin_model_id, dec, (size_t) dn,
                                  &enc);
            mg_buf_json_str(&idb, mg_buf_head(&enc), mg_buf_len(&enc));
            mg_buf_free(&enc);
            ed[ned].m = &id;
            ed[ned].with = mg_buf_head(&idb);
            ed[ned].with_len = mg_buf_len(&idb);
            ned++;
        }
    }
    if (has_model && restamp && rl->model != NULL) {
        mg_buf_json_str(&mb, rl->model, strlen(rl->model));
        ed[ned].m = &model;
        ed[ned].with = mg_buf_head(&mb);
        ed[ned].with_len = mg_buf_len(&mb);
        ned++;
    }
    if (ned > 0) {
        mg_rs_apply(p, pn, ed, ned, out);
    }
    mg_buf_free(&idb);
    mg_buf_free(&mb);
    return ned > 0;
}

static void
mg_rs_relay_event(mg_relay_t *rl, const char *raw, size_t raw_len, const char *data,
                  size_t data_len, mg_buf_t *out)
{
    if (data == NULL || (data_len == 6 && memcmp(data, "[DONE]", 6) == 0)) {
        mg_buf_append(out, raw, raw_len);
        return;
    }
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, data, data_len) != MG_OK) {
        mg_buf_append(out, raw, raw_len);
        return;
    }
    mg_json_member_t m, resp = {0}, type = {0};
    bool has_resp = false, has_type = false, has_error = false;
    while (mg_json_obj_next(&it, &m) == 1) {
        if (!has_type && m.type == MG_JSON_STRING && mg_json_key_is(&m, "type")) {
            type = m;
            has_type = true;
        } else if (!has_resp && m.type == MG_JSON_OBJECT && mg_json_key_is(&m, "response")) {
            resp = m;
            has_resp = true;
        } else if (m.type == MG_JSON_OBJECT && mg_json_key_is(&m, "error")) {
            has_error = true;
        }
    }
    const char *t = has_type ? type.val + 1 : "";
    size_t tl = has_type ? type.val_len - 2 : 0;
    if ((tl == 5 && memcmp(t, "error", 5) == 0) ||
        (tl == 15 && memcmp(t, "response.failed", 15) == 0) || (!has_type && has_error)) {
        rl->errored = true;
    }
    if (has_resp) {
        mg_buf_t ev = MG_BUF_INIT;
        if (mg_rs_relay_object(rl, data, data_len, resp.val, resp.val_len, true, &ev)) {
            mg_buf_append_str(out, "event: ");
            mg_buf_append(out, t, tl);
            mg_buf_append_str(out, "\ndata: ");
            mg_buf_append(out, mg_buf_head(&ev), mg_buf_len(&ev));
            mg_buf_append(out, "\n\n", 2);
            mg_buf_free(&ev);
            return;
        }
        mg_buf_free(&ev);
    }
    mg_buf_append(out, raw, raw_len);
}

static void
mg_rs_relay_end(mg_relay_t *rl, mg_buf_t *out)
{
    (void) rl;
    (void) out; /* Responses streams end with response.completed; no [DONE] */
}

static bool
mg_rs_relay_body(mg_relay_t *rl, const char *body, size_t len, bool restamp, mg_buf_t *out)
{
    return mg_rs_relay_object(rl, body, len, body, len, restamp, out);
}

/* ---- errors: OpenAI's envelope; mid-stream, Responses' error event ---- */

static void
mg_rs_error_body(int status, const char *msg, const char *type_json, const char *param_json,
                 mg_buf_t *out)
{
    mg_wire_openai.error_body(status, msg, type_json, param_json, out);
}

static void
mg_rs_stream_error(int status, const char *msg, const char *type_json, mg_buf_t *out)
{
    /* the Responses error event, with an "error" member as well so that SDKs that throw
     * on one (openai-node) do */
    mg_buf_printf(out, "event: error\ndata: {\"type\":\"error\",\"code\":\"%d\",\"message\":",
                  status);
    mg_buf_json_str(out, msg, strlen(msg));
    mg_buf_append_str(out, ",\"param\":null,\"error\":{\"message\":");
    mg_buf_json_str(out, msg, strlen(msg));
    mg_buf_printf(out, ",\"type\":%s,\"param\":null,\"code\":\"%d\"}}\n\n", type_json, status);
}

static void
mg_rs_wire_error(int status, const char *body, size_t len, mg_wire_err_t *out)
{
    mg_wire_openai.wire_error(status, body, len, out);
}

const mg_wire_ops_t mg_wire_responses = {
    .validate = mg_rs_validate,
    .neutral = mg_rs_neutral,
    .build = mg_rs_build,
    .dec_event = mg_rs_dec_event,
    .dec_body = mg_rs_dec_body,
    .enc_event = mg_rs_enc_event,
    .enc_finish = mg_rs_enc_finish,
    .relay_event = mg_rs_relay_event,
    .relay_end = mg_rs_relay_end,
    .relay_body = mg_rs_relay_body,
    .error_body = mg_rs_error_body,
    .stream_error = mg_rs_stream_error,
    .wire_error = mg_rs_wire_error,
};
