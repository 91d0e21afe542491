/*
 * mg_api_openai.c -- OpenAI's wire format: chat completions, completions and
 * embeddings, in both directions.
 *
 * Client side: validation of the three bodies, the neutral request (the chat
 * body itself), the encoder (chat.completion / chat.completion.chunk /
 * text_completion) and the error envelope LiteLLM uses.  Upstream side: the
 * body from a neutral request, the decoder of chunks and bodies into neutral
 * events, the error body reader, and the same-wire relay (the fast path:
 * bytes through, "model" restamped, usage and error events read in one scan).
 */
#include "mg_api_int.h"

#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- usage ---- */

static void
mg_oa_usage_members(const char *p, size_t n, mg_usage_t *u, int depth)
{
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, p, n) != MG_OK) {
        return;
    }
    mg_json_member_t m;
    while (mg_json_obj_next(&it, &m) == 1) {
        if (m.type == MG_JSON_OBJECT && depth == 0) {
            if (mg_json_key_is(&m, "prompt_tokens_details") ||
                mg_json_key_is(&m, "completion_tokens_details")) {
                mg_oa_usage_members(m.val, m.val_len, u, 1);
            }
            continue;
        }
        double d;
        if (m.type != MG_JSON_NUMBER || mg_json_num(m.val, m.val_len, &d) != MG_OK) {
            continue;
        }
        int64_t v = mg_clamp_i64(d);
        if (depth == 0) {
            if (mg_json_key_is(&m, "prompt_tokens")) {
                u->prompt_tokens = v;
            } else if (mg_json_key_is(&m, "completion_tokens")) {
                u->completion_tokens = v;
            } else if (mg_json_key_is(&m, "total_tokens")) {
                u->total_tokens = v;
            } else if (mg_json_key_is(&m, "cache_creation_input_tokens")) {
                u->cache_creation_tokens = v; /* LiteLLM's field when it proxies Anthropic */
            } else if (mg_json_key_is(&m, "cache_read_input_tokens")) {
                u->cache_read_tokens = v;
            }
        } else if (mg_json_key_is(&m, "cached_tokens")) {
            u->cache_read_tokens = v;
        } else if (mg_json_key_is(&m, "reasoning_tokens")) {
            u->reasoning_tokens = v;
        }
    }
}

/* Reads an OpenAI usage object (text) into u. */
static void
mg_oa_read_usage(const mg_json_member_t *m, mg_usage_t *u)
{
    if (m->type != MG_JSON_OBJECT) {
        return;
    }
    mg_oa_usage_members(m->val, m->val_len, u, 0);
    u->seen = true;
}

/* ---- client requests ---- */

static int
mg_oa_validate(mg_api_req_t *q, mg_arena_t *a, mg_api_err_t *err)
{
    (void) a;
    const mg_api_t *api = q->api;
    if (q->model == NULL || q->model[0] == '\0') {
        return mg_api_err(err, 400, "invalid_request_error", "model",
                          "%s: Missing required parameter: 'model'.", api->route_path);
    }
    const mg_json_member_t *nm = mg_api_member(q, api->required);
    if (nm == NULL || (nm->type == MG_JSON_NULL && api->op != MG_OP_COMPLETION)) {
        return mg_api_err(err, 400, "invalid_request_error", api->required,
                          "%s: Missing required parameter: '%s'.", api->route_path, api->required);
    }
    if (api->op == MG_OP_CHAT && nm->type != MG_JSON_ARRAY) {
        return mg_api_err(err, 400, "invalid_request_error", "messages",
                          "%s: 'messages' must be a list of message objects.", api->route_path);
    }
    if (api->op == MG_OP_CHAT) {
        /* "[" then only whitespace and "]" */
        const char *p = nm->val + 1;
        while (p < nm->val + nm->val_len && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
            p++;
        }
        if (*p == ']') {
            /* refused once the model is known to exist (mg_api_check_late) */
            mg_api_err(&q->late, 400, "invalid_request_error", "messages",
                       "%s: Invalid 'messages': empty array. Expected an array with minimum "
                       "length 1, but got an empty array instead.", api->route_path);
        }
    }
    /* limits a client may not bend: OpenAI's own bounds */
    if (mg_api_check_int(q, "max_tokens", 1, 2147483647.0, err) != MG_OK ||
        mg_api_check_int(q, "max_completion_tokens", 1, 2147483647.0, err) != MG_OK ||
        mg_api_check_int(q, "n", 1, 128, err) != MG_OK) {
        return MG_ERROR;
    }
    return MG_OK;
}

/* The client's body as the neutral request: the same object without LiteLLM's own
 * parameters and without nulls (never forwarded, the vLLM encoding_format seed). */
static json_t *
mg_oa_neutral(mg_api_req_t *q, mg_api_err_t *err)
{
    json_error_t je;
    json_t *j = json_loadb(q->body, q->body_len, 0, &je);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        mg_api_err(err, 400, "invalid_request_error", "request_body", "Invalid JSON payload: %s",
                   je.text);
        return NULL;
    }
    const char *k;
    json_t *v;
    void *it;
    json_object_foreach_safe(j, it, k, v) {
        if (json_is_null(v) || (strcmp(k, "model") != 0 && mg_api_is_litellm_param_str(k))) {
            json_object_del(j, k);
        }
    }
    if (q->model != NULL) {
        json_object_set_new(j, "model", json_string(q->model));
    }
    return j;
}

/* Neutral-request extensions no OpenAI-format upstream takes. */
static void
mg_oa_strip_extensions(json_t *j)
{
    /* LiteLLM's _translate_thinking_to_openai: a thinking budget becomes an effort */
    json_t *th = json_object_get(j, "thinking");
    const char *tt = json_string_value(json_object_get(th, "type"));
    if (tt != NULL && json_object_get(j, "reasoning_effort") == NULL) {
        const char *effort = NULL;
        if (strcmp(tt, "enabled") == 0) {
            json_t *bt = json_object_get(th, "budget_tokens");
            double b = json_is_number(bt) ? json_number_value(bt) : 0;
            effort = b <= 0      ? "minimal"
                     : b >= 16384 ? "max"
                     : b >= 8192  ? "xhigh"
                     : b >= 4096  ? "high"
                     : b >= 2048  ? "medium"
                     : b >= 1024  ? "low"
                                  : "minimal";
        } else if (strcmp(tt, "adaptive") == 0) {
            effort = "medium";
        }
        if (effort != NULL) {
            json_object_set_new(j, "reasoning_effort", json_string(effort));
        }
    }
    json_object_del(j, "thinking");
    json_t *msgs = json_object_get(j, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_object_del(m, "thinking_blocks");
        json_object_del(m, "cache_control");
        json_t *c = json_object_get(m, "content");
        size_t k;
        json_t *part;
        json_array_foreach(c, k, part) {
            json_object_del(part, "cache_control");
        }
    }
    json_t *tools = json_object_get(j, "tools");
    json_array_foreach(tools, i, m) {
        json_object_del(m, "cache_control");
    }
}

static int
mg_oa_build(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out, mg_api_err_t *err)
{
    (void) err;
    json_t *j = json_deep_copy(n);
    if (op != MG_OP_EMBEDDINGS) {
        mg_oa_strip_extensions(j);
    }
    if (o->model != NULL) {
        json_object_set_new(j, "model", json_string(o->model));
    } else {
        json_object_del(j, "model");
    }
    if (op == MG_OP_CHAT || op == MG_OP_COMPLETION) {
        if (o->stream) {
            json_object_set_new(j, "stream", json_true());
            /* usage is what spend and limits settle on: ask for it */
            json_t *so = json_object_get(j, "stream_options");
            if (!json_is_object(so)) {
                json_object_set_new(j, "stream_options", json_pack("{s:b}", "include_usage", 1));
            } else {
                json_object_set_new(so, "include_usage", json_true());
            }
        } else {
            json_object_del(j, "stream");
            json_object_del(j, "stream_options");
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(o->additional_drop, i, v) {
        if (json_is_string(v)) {
            json_object_del(j, json_string_value(v));
        }
    }
    const char *k;
    json_object_foreach(o->defaults, k, v) {
        if (json_object_get(j, k) == NULL) {
            json_object_set(j, k, v);
        }
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(j);
    mg_buf_append_str(out, s);
    free(s);
    if (o->extra_members != NULL && o->extra_members[0] != '\0' && mg_buf_len(out) > 1) {
        /* before the closing brace */
        out->end--;
        mg_buf_append_str(out, o->extra_members);
        mg_buf_append(out, "}", 1);
    }
    return MG_OK;
}

/* ---- decoder: OpenAI chunks and bodies -> neutral events ---- */

static void
mg_oa_emit(mg_dec_t *d, mg_ev_t *ev)
{
    d->sink(d->ud, ev);
}

static void
mg_oa_emit_str(mg_dec_t *d, mg_ev_kind_t kind, int index, json_t *s)
{
    if (!json_is_string(s) || json_string_length(s) == 0) {
        return;
    }
    mg_ev_t ev = {.kind = kind, .index = index};
    ev.text = json_string_value(s);
    ev.text_len = json_string_length(s);
    mg_oa_emit(d, &ev);
}

static void
mg_oa_dec_start(mg_dec_t *d, json_t *j)
{
    if (d->started) {
        return;
    }
    d->started = true;
    mg_ev_t ev = {.kind = MG_EV_START};
    json_t *id = json_object_get(j, "id");
    json_t *model = json_object_get(j, "model");
    if (json_is_string(id)) {
        ev.id = json_string_value(id);
        ev.id_len = json_string_length(id);
    }
    if (json_is_string(model)) {
        ev.name = json_string_value(model);
        ev.name_len = json_string_length(model);
    }
    json_t *c = json_object_get(j, "created");
    ev.created = json_is_integer(c) ? json_integer_value(c) : mg_time_real_ms() / 1000;
    mg_oa_emit(d, &ev);
}

static void
mg_oa_dec_usage(mg_dec_t *d, json_t *u)
{
    if (!json_is_object(u)) {
        return;
    }
    char *s = json_dumps(u, JSON_COMPACT);
    mg_json_member_t m = {0};
    m.type = MG_JSON_OBJECT;
    m.val = s;
    m.val_len = strlen(s);
    mg_oa_read_usage(&m, d->usage);
    free(s);
    mg_ev_t ev = {.kind = MG_EV_USAGE};
    mg_oa_emit(d, &ev);
}

static void
mg_oa_dec_tool(mg_dec_t *d, int index, json_t *tc, int dflt_tool)
{
    json_t *ti = json_object_get(tc, "index");
    int tool = json_is_integer(ti) ? (int) json_integer_value(ti) : dflt_tool;
    json_t *fn = json_object_get(tc, "function");
    json_t *id = json_object_get(tc, "id");
    json_t *name = json_object_get(fn, "name");
    json_t *args = json_object_get(fn, "arguments");
    mg_ev_t ev = {.kind = MG_EV_TOOL, .index = index, .tool = tool};
    if (json_is_string(id)) {
        ev.id = json_string_value(id);
        ev.id_len = json_string_length(id);
    }
    if (json_is_string(name)) {
        ev.name = json_string_value(name);
        ev.name_len = json_string_length(name);
    }
    if (json_is_string(args)) {
        ev.text = json_string_value(args);
        ev.text_len = json_string_length(args);
    } else if (json_is_object(args)) {
        /* some OpenAI-compatible servers send an object: JSON text is what clients expect */
        char *s = json_dumps(args, JSON_COMPACT);
        mg_buf_reset(&d->scratch);
        mg_buf_append_str(&d->scratch, s);
        free(s);
        ev.text = mg_buf_head(&d->scratch);
        ev.text_len = mg_buf_len(&d->scratch);
    }
    mg_oa_emit(d, &ev);
}

/* One choice of a chunk (delta) or of a body (message). */
static void
mg_oa_dec_choice(mg_dec_t *d, json_t *ch, bool whole)
{
    json_t *ix = json_object_get(ch, "index");
    int index = json_is_integer(ix) ? (int) json_integer_value(ix) : 0;
    json_t *msg = json_object_get(ch, whole ? "message" : "delta");
    if (d->op == MG_OP_COMPLETION || json_object_get(ch, "text") != NULL) {
        mg_oa_emit_str(d, MG_EV_TEXT, index, json_object_get(ch, "text"));
    }
    if (json_is_object(msg)) {
        json_t *rc = json_object_get(msg, "reasoning_content");
        if (!json_is_string(rc)) {
            rc = json_object_get(msg, "reasoning");
        }
        mg_oa_emit_str(d, MG_EV_REASONING, index, rc);
        json_t *c = json_object_get(msg, "content");
        if (json_is_array(c)) {
            size_t i;
            json_t *part;
            json_array_foreach(c, i, part) {
                mg_oa_emit_str(d, MG_EV_TEXT, index, json_object_get(part, "text"));
            }
        } else {
            mg_oa_emit_str(d, MG_EV_TEXT, index, c);
        }
        mg_oa_emit_str(d, MG_EV_TEXT, index, json_object_get(msg, "refusal"));
        json_t *tcs = json_object_get(msg, "tool_calls");
        size_t i;
        json_t *tc;
        json_array_foreach(tcs, i, tc) {
            mg_oa_dec_tool(d, index, tc, (int) i);
        }
        json_t *fc = json_object_get(msg, "function_call");
        if (json_is_object(fc)) {
            json_t *wrap = json_pack("{s:O}", "function", fc);
            mg_oa_dec_tool(d, index, wrap, 0);
            json_decref(wrap);
        }
    }
    json_t *fr = json_object_get(ch, "finish_reason");
    if (json_is_string(fr)) {
        mg_ev_t ev = {.kind = MG_EV_FINISH, .index = index};
        ev.finish = mg_finish_from_openai(json_string_value(fr), json_string_length(fr));
        mg_oa_emit(d, &ev);
    }
}

static int
mg_oa_dec_error(mg_dec_t *d, json_t *e)
{
    mg_ev_t ev = {.kind = MG_EV_ERROR, .status = 500};
    json_t *code = json_object_get(e, "code");
    if (json_is_integer(code)) {
        ev.status = (int) json_integer_value(code);
    } else if (json_is_string(code) && atoi(json_string_value(code)) >= 400) {
        ev.status = atoi(json_string_value(code));
    }
    json_t *msg = json_object_get(e, "message");
    if (json_is_string(msg)) {
        ev.text = json_string_value(msg);
        ev.text_len = json_string_length(msg);
    }
    ev.etype = json_string_value(json_object_get(e, "type"));
    mg_oa_emit(d, &ev);
    d->ended = true;
    return MG_OK;
}

static int
mg_oa_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    if (d->ended) {
        return MG_OK;
    }
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        mg_ev_t ev = {.kind = MG_EV_END};
        d->ended = true;
        mg_oa_emit(d, &ev);
        return MG_OK;
    }
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return mg_api_err(err, 502, NULL, NULL, "the upstream sent an unreadable stream event: %s",
                          je.text);
    }
    json_t *e = json_object_get(j, "error");
    if (json_is_object(e)) {
        mg_oa_dec_error(d, e);
        json_decref(j);
        return MG_OK;
    }
    mg_oa_dec_start(d, j);
    json_t *chs = json_object_get(j, "choices");
    size_t i;
    json_t *ch;
    json_array_foreach(chs, i, ch) {
        mg_oa_dec_choice(d, ch, false);
    }
    mg_oa_dec_usage(d, json_object_get(j, "usage"));
    json_decref(j);
    return MG_OK;
}

static int
mg_oa_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return mg_api_err(err, 502, NULL, NULL, "the upstream sent an unreadable response: %s",
                          je.text);
    }
    mg_oa_dec_start(d, j);
    json_t *chs = json_object_get(j, "choices");
    size_t i;
    json_t *ch;
    json_array_foreach(chs, i, ch) {
        mg_oa_dec_choice(d, ch, true);
    }
    mg_oa_dec_usage(d, json_object_get(j, "usage"));
    json_decref(j);
    mg_ev_t ev = {.kind = MG_EV_END};
    d->ended = true;
    mg_oa_emit(d, &ev);
    return MG_OK;
}

/* ---- encoder: neutral events -> OpenAI chat / completions ---- */

static bool
mg_oa_completions(const mg_enc_t *e)
{
    return e->api->op == MG_OP_COMPLETION;
}

static void
mg_oa_enc_ensure_id(mg_enc_t *e)
{
    if (e->id[0] != '\0') {
        return;
    }
    char uuid[37];
    mg_uuid4(uuid);
    snprintf(e->id, sizeof(e->id), "%s-%s", mg_oa_completions(e) ? "cmpl" : "chatcmpl", uuid);
    if (e->created == 0) {
        e->created = mg_time_real_ms() / 1000;
    }
}

/* "data: {"id":..,"created":..,"model":..,"object":..,"choices":[" */
static void
mg_oa_chunk_open(mg_enc_t *e)
{
    mg_oa_enc_ensure_id(e);
    mg_buf_t *o = e->out;
    mg_buf_append_str(o, "data: {\"id\":");
    mg_buf_json_str(o, e->id, strlen(e->id));
    mg_buf_printf(o, ",\"created\":%lld,\"model\":", (long long) e->created);
    mg_buf_json_str(o, e->model, strlen(e->model));
    mg_buf_append_str(o, mg_oa_completions(e) ? ",\"object\":\"text_completion\",\"choices\":["
                                              : ",\"object\":\"chat.completion.chunk\","
                                                "\"choices\":[");
}

static void
mg_oa_chunk_close(mg_enc_t *e)
{
    mg_buf_append_str(e->out, "]}\n\n");
}

static void
mg_oa_delta_open(mg_enc_t *e, int index)
{
    mg_oa_chunk_open(e);
    mg_buf_printf(e->out, "{\"index\":%d,\"delta\":{", index);
    if (!e->role_sent) {
        mg_buf_append_str(e->out, "\"role\":\"assistant\",");
        e->role_sent = true;
    }
}

static void
mg_oa_delta_close(mg_enc_t *e)
{
    mg_buf_append_str(e->out, "}}");
    mg_oa_chunk_close(e);
}

static void
mg_oa_enc_stream(mg_enc_t *e, const mg_ev_t *ev)
{
    mg_buf_t *o = e->out;
    switch (ev->kind) {
    case MG_EV_START:
        if (ev->id != NULL && ev->id_len > 0 && ev->id_len < sizeof(e->id)) {
            memcpy(e->id, ev->id, ev->id_len);
            e->id[ev->id_len] = '\0';
        }
        e->created = ev->created;
        break;
    case MG_EV_TEXT:
        if (mg_oa_completions(e)) {
            mg_oa_chunk_open(e);
            mg_buf_printf(o, "{\"index\":%d,\"text\":", ev->index);
            mg_buf_json_str(o, ev->text, ev->text_len);
            mg_buf_append_str(o, ",\"finish_reason\":null}");
            mg_oa_chunk_close(e);
            break;
        }
        mg_oa_delta_open(e, ev->index);
        mg_buf_append_str(o, "\"content\":");
        mg_buf_json_str(o, ev->text, ev->text_len);
        mg_oa_delta_close(e);
        break;
    case MG_EV_REASONING:
        if (mg_oa_completions(e)) {
            break;
        }
        mg_oa_delta_open(e, ev->index);
        mg_buf_append_str(o, "\"reasoning_content\":");
        mg_buf_json_str(o, ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
        if (ev->sig != NULL && ev->sig_len > 0) {
            mg_buf_append_str(o, ",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"\","
                                 "\"signature\":");
            mg_buf_json_str(o, ev->sig, ev->sig_len);
            mg_buf_append_str(o, "}]");
        }
        mg_oa_delta_close(e);
        break;
    case MG_EV_TOOL:
        if (mg_oa_completions(e)) {
            break;
        }
        mg_oa_delta_open(e, ev->index);
        mg_buf_printf(o, "\"tool_calls\":[{\"index\":%d", ev->tool);
        if (ev->id != NULL) {
            mg_buf_append_str(o, ",\"id\":");
            mg_buf_json_str(o, ev->id, ev->id_len);
            mg_buf_append_str(o, ",\"type\":\"function\"");
        }
        mg_buf_append_str(o, ",\"function\":{");
        if (ev->name != NULL) {
            mg_buf_append_str(o, "\"name\":");
            mg_buf_json_str(o, ev->name, ev->name_len);
            mg_buf_append(o, ",", 1);
        }
        mg_buf_append_str(o, "\"arguments\":");
        mg_buf_json_str(o, ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
        mg_buf_append_str(o, "}}]");
        mg_oa_delta_close(e);
        break;
    case MG_EV_FINISH: {
        const char *f = mg_finish_openai(ev->finish != MG_FIN_NONE ? ev->finish : MG_FIN_STOP);
        mg_oa_chunk_open(e);
        if (mg_oa_completions(e)) {
            mg_buf_printf(o, "{\"index\":%d,\"text\":\"\",\"finish_reason\":\"%s\"}", ev->index, f);
        } else {
            mg_buf_printf(o, "{\"index\":%d,\"delta\":{},\"finish_reason\":\"%s\"}", ev->index, f);
        }
        mg_oa_chunk_close(e);
        e->finished = true;
        break;
    }
    case MG_EV_REDACTED:
    case MG_EV_USAGE:
        break;
    case MG_EV_ERROR:
        if (!e->errored) {
            e->errored = true;
            char tj[96];
            if (ev->etype != NULL && strlen(ev->etype) < 80 && strchr(ev->etype, '"') == NULL) {
                snprintf(tj, sizeof(tj), "\"%s\"", ev->etype);
            } else {
                snprintf(tj, sizeof(tj), "null");
            }
            char *msg = mg_xstrndup(ev->text ? ev->text : "", ev->text ? ev->text_len : 0);
            mg_wire_openai.stream_error(ev->status, msg, tj, o);
            free(msg);
        }
        break;
    case MG_EV_END:
    case MG_EV_EMBEDDING:
        break;
    }
}

/* Standard base64 of n bytes. */
static void
mg_oa_base64(const unsigned char *p, size_t n, mg_buf_t *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t) p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < n ? tbl[v & 63] : '='};
        mg_buf_append(out, q, 4);
    }
}

/* One translated embedding as an item of OpenAI's data list: the numbers as they came,
 * or little-endian float32 in base64 when the client asked for encoding_format base64. */
static void
mg_oa_enc_embedding(mg_enc_t *e, const mg_ev_t *ev)
{
    if (e->nembed++ > 0) {
        mg_buf_append(&e->embed, ",", 1);
    }
    mg_buf_append_str(&e->embed, "{\"embedding\":");
    if (e->embed_base64) {
        json_t *arr = json_loadb(ev->text, ev->text_len, 0, NULL);
        size_t n = json_array_size(arr);
        unsigned char *bytes = mg_xcalloc(n > 0 ? n : 1, 4);
        for (size_t i = 0; i < n; i++) {
            float f = (float) json_number_value(json_array_get(arr, i));
            uint32_t u;
            memcpy(&u, &f, 4);
            bytes[4 * i] = (unsigned char) u;
            bytes[4 * i + 1] = (unsigned char) (u >> 8);
            bytes[4 * i + 2] = (unsigned char) (u >> 16);
            bytes[4 * i + 3] = (unsigned char) (u >> 24);
        }
        mg_buf_append(&e->embed, "\"", 1);
        mg_oa_base64(bytes, 4 * n, &e->embed);
        mg_buf_append(&e->embed, "\"", 1);
        free(bytes);
        json_decref(arr);
    } else {
        mg_buf_append(&e->embed, ev->text, ev->text_len);
    }
    mg_buf_printf(&e->embed, ",\"index\":%d,\"object\":\"embedding\"}", ev->tool);
}

/* Aggregates into the encoder's buffers (non-stream). */
static void
mg_oa_enc_collect(mg_enc_t *e, const mg_ev_t *ev)
{
    switch (ev->kind) {
    case MG_EV_START:
        if (ev->id != NULL && ev->id_len > 0 && ev->id_len < sizeof(e->id)) {
            memcpy(e->id, ev->id, ev->id_len);
            e->id[ev->id_len] = '\0';
        }
        e->created = ev->created;
        break;
    case MG_EV_TEXT:
        mg_buf_append(&e->text[ev->index], ev->text, ev->text_len);
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
        mg_enc_tool_t *t = mg_enc_tool(e, ev->index, ev->tool);
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
        e->finish[ev->index] = ev->finish;
        break;
    case MG_EV_ERROR:
        e->errored = true;
        break;
    case MG_EV_EMBEDDING:
        mg_oa_enc_embedding(e, ev);
        break;
    case MG_EV_USAGE:
    case MG_EV_END:
        break;
    }
}

static void
mg_oa_enc_event(mg_enc_t *e, const mg_ev_t *ev)
{
    if (e->errored || e->ended) {
        return;
    }
    if (ev->kind == MG_EV_END) {
        e->ended = true;
    }
    if (e->stream) {
        mg_oa_enc_stream(e, ev);
    } else {
        mg_oa_enc_collect(e, ev);
    }
}

static void
mg_oa_enc_body(mg_enc_t *e)
{
    mg_buf_t *o = e->out;
    mg_oa_enc_ensure_id(e);
    bool cmpl = mg_oa_completions(e);
    mg_buf_append_str(o, "{\"id\":");
    mg_buf_json_str(o, e->id, strlen(e->id));
    mg_buf_printf(o, ",\"created\":%lld,\"model\":", (long long) e->created);
    mg_buf_json_str(o, e->model, strlen(e->model));
    mg_buf_append_str(o, cmpl ? ",\"object\":\"text_completion\",\"choices\":["
                              : ",\"object\":\"chat.completion\",\"choices\":[");
    int n = e->nchoices > 0 ? e->nchoices : 1;
    for (int i = 0; i < n; i++) {
        mg_finish_t f = e->finish[i];
        bool has_tools = false;
        for (int t = 0; t < e->ntools; t++) {
            has_tools = has_tools || e->tools[t].index == i;
        }
        if (f == MG_FIN_NONE) {
            f = has_tools ? MG_FIN_TOOL_CALLS : MG_FIN_STOP;
        }
        mg_buf_printf(o, "%s{\"finish_reason\":\"%s\",\"index\":%d,", i ? "," : "",
                      mg_finish_openai(f), i);
        if (cmpl) {
            mg_buf_append_str(o, "\"text\":");
            mg_buf_json_str(o, mg_buf_len(&e->text[i]) ? mg_buf_head(&e->text[i]) : "",
                            mg_buf_len(&e->text[i]));
            mg_buf_append_str(o, ",\"logprobs\":null}");
            continue;
        }
        mg_buf_append_str(o, "\"message\":{\"content\":");
        if (mg_buf_len(&e->text[i]) == 0 && has_tools) {
            mg_buf_append_str(o, "null");
        } else {
            mg_buf_json_str(o, mg_buf_len(&e->text[i]) ? mg_buf_head(&e->text[i]) : "",
                            mg_buf_len(&e->text[i]));
        }
        mg_buf_append_str(o, ",\"role\":\"assistant\"");
        if (has_tools) {
            mg_buf_append_str(o, ",\"tool_calls\":[");
            bool first = true;
            for (int t = 0; t < e->ntools; t++) {
                mg_enc_tool_t *tc = &e->tools[t];
                if (tc->index != i) {
                    continue;
                }
                mg_buf_append_str(o, first ? "{\"id\":" : ",{\"id\":");
                first = false;
                mg_buf_json_str(o, mg_buf_len(&tc->id) ? mg_buf_head(&tc->id) : "",
                                mg_buf_len(&tc->id));
                mg_buf_append_str(o, ",\"type\":\"function\",\"function\":{\"name\":");
                mg_buf_json_str(o, mg_buf_len(&tc->name) ? mg_buf_head(&tc->name) : "",
                                mg_buf_len(&tc->name));
                mg_buf_append_str(o, ",\"arguments\":");
                mg_buf_json_str(o, mg_buf_len(&tc->args) ? mg_buf_head(&tc->args) : "",
                                mg_buf_len(&tc->args));
                mg_buf_append_str(o, "}}");
            }
            mg_buf_append(o, "]", 1);
        }
        if (i == 0 && (mg_buf_len(&e->reasoning) > 0 || mg_buf_len(&e->redacted) > 0)) {
            mg_buf_append_str(o, ",\"reasoning_content\":");
            mg_buf_json_str(o, mg_buf_len(&e->reasoning) ? mg_buf_head(&e->reasoning) : "",
                            mg_buf_len(&e->reasoning));
            mg_buf_append_str(o, ",\"thinking_blocks\":[");
            if (mg_buf_len(&e->reasoning) > 0 || mg_buf_len(&e->signature) > 0) {
                mg_buf_append_str(o, "{\"type\":\"thinking\",\"thinking\":");
                mg_buf_json_str(o, mg_buf_len(&e->reasoning) ? mg_buf_head(&e->reasoning) : "",
                                mg_buf_len(&e->reasoning));
                if (mg_buf_len(&e->signature) > 0) {
                    mg_buf_append_str(o, ",\"signature\":");
                    mg_buf_json_str(o, mg_buf_head(&e->signature), mg_buf_len(&e->signature));
                }
                mg_buf_append(o, "}", 1);
                if (mg_buf_len(&e->redacted) > 0) {
                    mg_buf_append(o, ",", 1);
                }
            }
            if (mg_buf_len(&e->redacted) > 0) {
                mg_buf_append(o, mg_buf_head(&e->redacted), mg_buf_len(&e->redacted));
            }
            mg_buf_append(o, "]", 1);
        }
        mg_buf_append_str(o, "}}");
    }
    mg_buf_append_str(o, "],\"usage\":");
    mg_api_usage_openai(e->usage, o);
    mg_buf_append(o, "}", 1);
}

static void
mg_oa_enc_finish(mg_enc_t *e)
{
    if (e->api->op == MG_OP_EMBEDDINGS) {
        /* a translated embeddings answer (the same wire is relayed as it is) */
        mg_buf_append_str(e->out, "{\"object\":\"list\",\"data\":[");
        if (mg_buf_len(&e->embed) > 0) {
            mg_buf_append(e->out, mg_buf_head(&e->embed), mg_buf_len(&e->embed));
        }
        mg_buf_append_str(e->out, "],\"model\":");
        mg_buf_json_str(e->out, e->model, strlen(e->model));
        mg_buf_printf(e->out, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                      (long long) e->usage->prompt_tokens, (long long) mg_usage_total(e->usage));
        return;
    }
    if (!e->stream) {
        mg_oa_enc_body(e);
        return;
    }
    if (e->errored) {
        return;
    }
    if (e->include_usage && e->usage != NULL && e->usage->seen) {
        mg_oa_chunk_open(e);
        mg_buf_append_str(e->out, "],\"usage\":");
        mg_api_usage_openai(e->usage, e->out);
        mg_buf_append_str(e->out, "}\n\n");
    }
    mg_buf_append_str(e->out, "data: [DONE]\n\n");
}

/* ---- same-wire relay ---- */

static void
mg_oa_relay_event(mg_relay_t *rl, const char *raw, size_t raw_len, const char *data,
                  size_t data_len, mg_buf_t *out)
{
    if (data == NULL) {
        mg_buf_append(out, raw, raw_len); /* comments, keep-alives */
        return;
    }
    if (data_len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        if (rl->errored) {
            return;
        }
        rl->done_seen = true;
        mg_buf_append(out, "data: [DONE]\n\n", 14);
        return;
    }
    if (rl->done_seen || rl->errored) {
        return; /* nothing after [DONE] or after an error event */
    }
    /* JSON chunk: usage, errors, and the model restamp */
    mg_api_top_t top;
    mg_api_scan_top(data, data_len, &top);
    if (top.has_error && top.error.type == MG_JSON_OBJECT) {
        /* an upstream error event: relay it as the last frame, and no [DONE] */
        rl->errored = true;
        mg_buf_append(out, "data: ", 6);
        mg_buf_append(out, data, data_len);
        mg_buf_append(out, "\n\n", 2);
        return;
    }
    if (top.has_usage) {
        mg_oa_read_usage(&top.usage, rl->usage);
    }
    mg_buf_append(out, "data: ", 6);
    if (top.has_model && top.model.type == MG_JSON_STRING) {
        mg_api_restamp(data, data_len, &top.model, rl->model, out);
    } else {
        mg_buf_append(out, data, data_len);
    }
    mg_buf_append(out, "\n\n", 2);
}

static void
mg_oa_relay_end(mg_relay_t *rl, mg_buf_t *out)
{
    if (!rl->done_seen && !rl->errored) {
        /* upstream ended cleanly without [DONE]: LiteLLM always sends one on success */
        mg_buf_append(out, "data: [DONE]\n\n", 14);
        rl->done_seen = true;
    }
}

static bool
mg_oa_relay_body(mg_relay_t *rl, const char *body, size_t len, bool restamp, mg_buf_t *out)
{
    mg_api_top_t top;
    mg_api_scan_top(body, len, &top);
    if (top.has_usage) {
        mg_oa_read_usage(&top.usage, rl->usage);
    }
    if (!restamp || !top.has_model || top.model.type != MG_JSON_STRING) {
        return false;
    }
    mg_api_restamp(body, len, &top.model, rl->model, out);
    return true;
}

/* ---- errors ---- */

static void
mg_oa_error_body(int status, const char *msg, const char *type_json, const char *param_json,
                 mg_buf_t *out)
{
    mg_buf_append_str(out, "{\"error\":{\"message\":");
    mg_buf_json_str(out, msg, strlen(msg));
    mg_buf_printf(out, ",\"type\":%s,\"param\":%s,\"code\":\"%d\"}}", type_json, param_json, status);
}

static void
mg_oa_stream_error(int status, const char *msg, const char *type_json, mg_buf_t *out)
{
    mg_buf_append_str(out, "data: {\"error\":{\"message\":");
    mg_buf_json_str(out, msg, strlen(msg));
    mg_buf_printf(out, ",\"type\":%s,\"param\":null,\"code\":\"%d\"}}\n\n", type_json, status);
}

static char *
mg_oa_dup(json_t *v)
{
    return json_is_string(v) ? mg_xstrdup(json_string_value(v)) : NULL;
}

static void
mg_oa_wire_error(int status, const char *body, size_t len, mg_wire_err_t *out)
{
    json_t *j = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *eobj = json_object_get(j, "error");
    if (json_is_object(eobj) && json_is_string(json_object_get(eobj, "message"))) {
        out->message = mg_oa_dup(json_object_get(eobj, "message"));
    } else if (json_is_string(eobj)) {
        out->message = mg_oa_dup(eobj);
    } else if (json_is_string(json_object_get(j, "message"))) {
        out->message = mg_oa_dup(json_object_get(j, "message"));
    } else if (json_is_string(json_object_get(j, "detail"))) {
        out->message = mg_oa_dup(json_object_get(j, "detail"));
    } else {
        size_t n = len > 2000 ? 2000 : len;
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "Error code: %d - %.*s", status, (int) n, body ? body : "");
        out->message = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
    }
    out->type = mg_oa_dup(json_object_get(eobj, "type"));
    out->code = mg_oa_dup(json_object_get(eobj, "code"));
    out->param = mg_oa_dup(json_object_get(eobj, "param"));
    json_decref(j);
}

const mg_wire_ops_t mg_wire_openai = {
    .validate = mg_oa_validate,
    .neutral = mg_oa_neutral,
    .build = mg_oa_build,
    .dec_event = mg_oa_dec_event,
    .dec_body = mg_oa_dec_body,
    .enc_event = mg_oa_enc_event,
    .enc_finish = mg_oa_enc_finish,
    .relay_event = mg_oa_relay_event,
    .relay_end = mg_oa_relay_end,
    .relay_body = mg_oa_relay_body,
    .error_body = mg_oa_error_body,
    .stream_error = mg_oa_stream_error,
    .wire_error = mg_oa_wire_error,
};
