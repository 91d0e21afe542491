/*
 * mg_api.c -- the client protocols, the parse every JSON body gets, the
 * same-wire splice, and dispatch to the wire modules.
 *
 * Owns nothing beyond what the header says (arena pieces, caller buffers).
 */
#include "mg_api_int.h"

#include "../base/mg_map.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the client protocols ---- */

static const mg_api_t mg_apis[MG_API__COUNT] = {
    {MG_API_OPENAI_CHAT, "openai_chat", MG_OP_CHAT, MG_WIRE_OPENAI, "/chat/completions",
     "messages"},
    {MG_API_OPENAI_COMPLETIONS, "openai_completions", MG_OP_COMPLETION, MG_WIRE_OPENAI,
     "/completions", "prompt"},
    {MG_API_OPENAI_EMBEDDINGS, "openai_embeddings", MG_OP_EMBEDDINGS, MG_WIRE_OPENAI,
     "/embeddings", "input"},
    {MG_API_ANTHROPIC_MESSAGES, "anthropic_messages", MG_OP_CHAT, MG_WIRE_ANTHROPIC,
     "anthropic_messages", "messages"},
    {MG_API_ANTHROPIC_COUNT_TOKENS, "anthropic_count_tokens", MG_OP_COUNT_TOKENS,
     MG_WIRE_ANTHROPIC, "anthropic_messages/count_tokens", "messages"},
    {MG_API_OPENAI_RESPONSES, "openai_responses", MG_OP_RESPONSES, MG_WIRE_OPENAI_RESPONSES,
     "/responses", "model"},
};

static const mg_wire_ops_t *const mg_wires[MG_WIRE__COUNT] = {
    NULL,
    &mg_wire_openai,
    &mg_wire_anthropic,
    &mg_wire_bedrock_converse,
    &mg_wire_bedrock_invoke,
    &mg_wire_responses,
    &mg_wire_gemini,
};

/* LiteLLM's get_optional_params defaults: the OpenAI parameters a provider's supported list
 * is checked against (anything else is provider-specific and passes as it is). */
const char *const mg_api_openai_params[] = {
    "functions", "function_call", "temperature", "top_p", "n", "stream", "stream_options", "stop",
    "max_tokens", "max_completion_tokens", "modalities", "prediction", "audio", "presence_penalty",
    "frequency_penalty", "logit_bias", "user", "response_format", "seed", "tools", "tool_choice",
    "max_retries", "logprobs", "top_logprobs", "extra_headers", "parallel_tool_calls",
    "reasoning_effort", "thinking", "web_search_options", "service_tier", "safety_identifier",
    "prompt_cache_key", "verbosity", "store", NULL,
};

const mg_api_t *
mg_api_get(mg_api_id_t id)
{
    return id < MG_API__COUNT ? &mg_apis[id] : NULL;
}

const char *
mg_wire_name(mg_wire_t w)
{
    switch (w) {
    case MG_WIRE_OPENAI: return "openai";
    case MG_WIRE_ANTHROPIC: return "anthropic";
    case MG_WIRE_BEDROCK_CONVERSE: return "bedrock_converse";
    case MG_WIRE_BEDROCK_INVOKE: return "bedrock_invoke";
    case MG_WIRE_OPENAI_RESPONSES: return "openai_responses";
    case MG_WIRE_GEMINI: return "gemini";
    default: return "none";
    }
}

static const mg_wire_ops_t *
mg_api_wire(mg_wire_t w)
{
    return w > MG_WIRE_NONE && w < MG_WIRE__COUNT ? mg_wires[w] : NULL;
}

int
mg_api_err(mg_api_err_t *e, int status, const char *type, const char *param, const char *fmt, ...)
{
    e->status = status;
    if (type != NULL) {
        snprintf(e->type_json, sizeof(e->type_json), "\"%s\"", type);
    } else {
        snprintf(e->type_json, sizeof(e->type_json), "null");
    }
    if (param != NULL && strlen(param) < sizeof(e->param_json) - 2 && strchr(param, '"') == NULL &&
        strchr(param, '\\') == NULL) {
        snprintf(e->param_json, sizeof(e->param_json), "\"%s\"", param);
    } else {
        snprintf(e->param_json, sizeof(e->param_json), "null");
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return MG_ERROR;
}

/* ---- LiteLLM's own parameters: read by the gateway, never forwarded ---- */

static const char *const mg_api_litellm_only[] = {
    "metadata", "litellm_metadata", "litellm_trace_id", "litellm_request_debug", "guardrails",
    "tags", "acompletion", "aimg_generation", "atext_completion", "text_completion", "caching",
    "mock_response", "mock_timeout", "mock_delay", "mock_tool_calls",
    "disable_add_transform_inline_image_block", "litellm_proxy_rate_limit_response", "api_key",
    "api_version", "prompt_id", "provider_specific_header", "prompt_variables", "prompt_version",
    "api_base", "base_url", "force_timeout", "logger_fn", "verbose", "custom_llm_provider",
    "model_file_id_mapping", "litellm_logging_obj", "litellm_call_id", "use_client", "id",
    "fallbacks", "azure", "headers", "model_list", "num_retries", "context_window_fallback_dict",
    "retry_policy", "retry_strategy", "roles", "final_prompt_value", "bos_token", "eos_token",
    "request_timeout", "timeout", "complete_response", "self", "client", "rpm", "tpm",
    "max_parallel_requests", "input_cost_per_token", "output_cost_per_token",
    "input_cost_per_second", "output_cost_per_second", "hf_model_name", "model_info",
    "proxy_server_request", "secret_fields", "preset_cache_key", "caching_groups", "ttl", "cache",
    "no-log", "base_model", "stream_timeout", "supports_system_message", "region_name",
    "allowed_model_region", "model_config", "fastest_response", "cooldown_time", "cache_key",
    "max_retries", "azure_ad_token_provider", "tenant_id", "client_id", "azure_username",
    "azure_password", "azure_scope", "client_secret", "user_continue_message",
    "configurable_clientside_auth_params", "weight", "ensure_alternating_roles",
    "assistant_continue_message", "fallback_depth", "max_fallbacks", "max_budget",
    "budget_duration", "use_in_pass_through", "merge_reasoning_content_in_choices",
    "litellm_credential_name", "allowed_openai_params", "litellm_session_id", "use_litellm_proxy",
    "prompt_label", "shared_session", "context_window_fallbacks", "content_policy_fallbacks",
    "original_function", "specific_deployment", "disable_fallbacks", "drop_params",
    "additional_drop_params", "mock_testing_fallbacks", "mock_testing_context_fallbacks",
    "mock_testing_content_policy_fallbacks", "mock_testing_rate_limit_error", "user_api_key",
    "user_api_key_alias", "user_api_key_team_id", "user_api_key_user_id", "deployment_id",
    "organization", "default_headers", "extra_headers", "turn_off_message_logging",
    "azure_ad_token", "aws_region_name", "vertex_project", "vertex_location",
    "vertex_credentials", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "aws_bedrock_runtime_endpoint", "aws_profile_name", "aws_role_name", "aws_session_name",
    "aws_web_identity_token", "aws_sts_endpoint", "aws_external_id", "aws_bearer_token",
    NULL,
};

static mg_map_t mg_api_drop_set;
static bool mg_api_drop_ready;

static bool
mg_api_litellm_param_n(const char *k, size_t n)
{
    if (!mg_api_drop_ready) {
        mg_map_init(&mg_api_drop_set);
        for (const char *const *p = mg_api_litellm_only; *p; p++) {
            mg_map_put(&mg_api_drop_set, *p, strlen(*p), (void *) 1);
        }
        mg_api_drop_ready = true;
    }
    if (n > 13 && memcmp(k, "mock_testing_", 13) == 0) {
        return true;
    }
    return mg_map_get(&mg_api_drop_set, k, n) != NULL;
}

bool
mg_api_is_litellm_param_str(const char *k)
{
    return mg_api_litellm_param_n(k, strlen(k));
}

bool
mg_api_is_litellm_param(const mg_json_member_t *m)
{
    if (m->key_escaped) {
        char buf[256];
        if (m->key_len + 2 > sizeof(buf)) {
            return false;
        }
        long n = mg_json_str_decode(m->key - 1, m->key_len + 2, buf);
        return n >= 0 && mg_api_litellm_param_n(buf, (size_t) n);
    }
    return mg_api_litellm_param_n(m->key, m->key_len);
}

/* ---- members ---- */

const mg_json_member_t *
mg_api_member(const mg_api_req_t *q, const char *key)
{
    /* the last occurrence, as Python's json (and the upstream) reads duplicate keys; the
     * length first: a request makes a dozen of these lookups */
    size_t n = strlen(key);
    for (int i = q->nmembers - 1; i >= 0; i--) {
        const mg_json_member_t *m = &q->members[i];
        if (m->key_escaped ? mg_json_key_is(m, key)
                           : m->key_len == n && m->key[0] == key[0] && memcmp(m->key, key, n) == 0) {
            return m;
        }
    }
    return NULL;
}

char *
mg_api_member_str(mg_arena_t *a, const mg_json_member_t *m)
{
    if (m == NULL || m->type != MG_JSON_STRING) {
        return NULL;
    }
    char *out = mg_arena_alloc(a, m->val_len + 1);
    if (mg_json_str_decode(m->val, m->val_len, out) < 0) {
        return NULL;
    }
    return out;
}

double
mg_api_member_num(const mg_json_member_t *m, double dflt)
{
    double d;
    if (m == NULL || m->type != MG_JSON_NUMBER || mg_json_num(m->val, m->val_len, &d) != MG_OK) {
        return dflt;
    }
    return d;
}

/* ---- parsing ---- */

bool
mg_api_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n) {
            return false; /* truncated */
        }
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}

int
mg_api_check_int(const mg_api_req_t *q, const char *key, double min, double max,
                 mg_api_err_t *err)
{
    const mg_json_member_t *m = mg_api_member(q, key);
    if (m == NULL || m->type == MG_JSON_NULL) {
        return MG_OK;
    }
    double v;
    if (m->type != MG_JSON_NUMBER || mg_json_num(m->val, m->val_len, &v) != MG_OK ||
        !isfinite(v) || v != floor(v)) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid type for '%s': expected an integer", q->api->route_path,
                          key);
    }
    if (v < min) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid '%s': integer below minimum value. Expected a value >= %.0f, "
                          "but got %.0f instead.", q->api->route_path, key, min, v);
    }
    if (v > max) {
        return mg_api_err(err, 400, "invalid_request_error", key,
                          "%s: Invalid '%s': integer above maximum value. Expected a value <= "
                          "%.0f, but got %.17g instead.", q->api->route_path, key, max, v);
    }
    return MG_OK;
}

int
mg_api_parse(const mg_api_t *api, mg_arena_t *a, const char *body, size_t len,
             const char *path_model, mg_api_req_t *q, mg_api_err_t *err)
{
    static const char empty[] = "{}";
    /* members[] is written before it is read: zeroing its 6 KB per request is not needed */
    q->api = api;
    q->nmembers = 0;
    q->model = NULL;
    q->stream = false;
    q->include_usage = false;
    q->neutral = NULL;
    q->late.status = 0;
    if (len == 0 || body == NULL) {
        body = empty;
        len = 2;
    }
    q->body = body;
    q->body_len = len;
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, body, len) != MG_OK) {
        return mg_api_err(err, 400, "invalid_request_error", "request_body",
                          "Invalid JSON payload: %s", it.errmsg);
    }
    mg_json_member_t m;
    int rc;
    bool overflow = false;
    while ((rc = mg_json_obj_next(&it, &m)) == 1) {
        if (q->nmembers >= MG_API_MAX_MEMBERS) {
            overflow = true;
            continue;
        }
        q->members[q->nmembers++] = m;
    }
    if (rc < 0) {
        return mg_api_err(err, 400, "invalid_request_error", "request_body",
                          "Invalid JSON payload: %s", it.errmsg);
    }
    /* trailing garbage after the object */
    const char *tail = it.p;
    while (tail < body + len && (*tail == ' ' || *tail == '\n' || *tail == '\r' || *tail == '\t')) {
        tail++;
    }
    if (tail != body + len) {
        return mg_api_err(err, 400, "invalid_request_error", "request_body",
                          "Invalid JSON payload: Extra data: char %ld", (long) (tail - body));
    }
    if (overflow) {
        return mg_api_err(err, 400, "invalid_request_error", "request_body",
                          "Invalid JSON payload: more than %d top-level fields",
                          MG_API_MAX_MEMBERS);
    }
    if (path_model != NULL) {
        q->model = path_model;
    } else {
        const mg_json_member_t *mm = mg_api_member(q, "model");
        if (mm != NULL && mm->type != MG_JSON_STRING && mm->type != MG_JSON_NULL) {
            return mg_api_err(err, 400, "invalid_request_error", "model",
                              "%s: model must be a string", api->route_path);
        }
        if (mm != NULL && mm->type == MG_JSON_STRING) {
            char *name = mg_arena_alloc(a, mm->val_len + 1);
            long n = mg_json_str_decode(mm->val, mm->val_len, name);
            /* names are compared byte for byte with their length: a NUL would cut one short */
            if (n < 0 || (size_t) n != strlen(name)) {
                return mg_api_err(err, 400, "invalid_request_error", "model",
                                  "%s: model must not contain a NUL character", api->route_path);
            }
            if (!mg_api_utf8_valid(name, (size_t) n)) {
                return mg_api_err(err, 400, "invalid_request_error", "model",
                                  "%s: model must be valid UTF-8", api->route_path);
            }
            q->model = name;
        }
    }
    if (path_model != NULL && (strlen(path_model) == 0 ||
                               !mg_api_utf8_valid(path_model, strlen(path_model)))) {
        return mg_api_err(err, 400, "invalid_request_error", "model",
                          "%s: model must be valid UTF-8", api->route_path);
    }
    const mg_json_member_t *sm = mg_api_member(q, "stream");
    if (sm != NULL && sm->type != MG_JSON_TRUE && sm->type != MG_JSON_FALSE &&
        sm->type != MG_JSON_NULL) {
        if (api->wire == MG_WIRE_ANTHROPIC) {
            return mg_api_err(err, 400, "invalid_request_error", "stream",
                              "stream: Input should be a valid boolean");
        }
        return mg_api_err(err, 400, "invalid_request_error", "stream",
                          "%s: Invalid type for 'stream': expected a boolean", api->route_path);
    }
    q->stream = sm != NULL && sm->type == MG_JSON_TRUE;
    const mg_json_member_t *so = mg_api_member(q, "stream_options");
    if (so != NULL && so->type == MG_JSON_OBJECT) {
        mg_json_member_t iu;
        if (mg_json_obj_find(so->val, so->val_len, "include_usage", &iu) == 1) {
            q->include_usage = iu.type == MG_JSON_TRUE;
        }
    }
    const mg_wire_ops_t *w = mg_api_wire(api->wire);
    return w->validate(q, a, err);
}

int
mg_api_check_late(const mg_api_req_t *q, mg_api_err_t *err)
{
    if (q->late.status == 0) {
        return MG_OK;
    }
    *err = q->late;
    return MG_ERROR;
}

bool
mg_api_subst_set(mg_api_subst_t *s, const char *key, const char *json)
{
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->m[i].key, key) == 0) {
            s->m[i].json = json;
            return true;
        }
    }
    if (s->n >= (int) (sizeof(s->m) / sizeof(s->m[0]))) {
        return false;
    }
    s->m[s->n].key = key;
    s->m[s->n].json = json;
    s->n++;
    return true;
}

json_t *
mg_api_neutral(mg_api_req_t *q, mg_api_err_t *err)
{
    if (q->neutral == NULL) {
        q->neutral = mg_api_wire(q->api->wire)->neutral(q, err);
    }
    return q->neutral;
}

void
mg_api_req_free(mg_api_req_t *q)
{
    json_decref(q->neutral);
    q->neutral = NULL;
    q->late.status = 0;
}

/* ---- the same-wire body ---- */

void
mg_iovs_push(mg_iovs_t *v, mg_arena_t *a, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (v->niov == v->cap) {
        int ncap = v->cap > 0 ? v->cap * 2 : 16;
        struct iovec *nv = mg_arena_alloc(a, (size_t) ncap * sizeof(struct iovec));
        if (v->niov > 0) {
            memcpy(nv, v->iov, (size_t) v->niov * sizeof(struct iovec));
        }
        v->iov = nv;
        v->cap = ncap;
    }
    v->iov[v->niov].iov_base = (void *) p;
    v->iov[v->niov].iov_len = n;
    v->niov++;
    v->len += n;
}

static bool
mg_api_in_array(json_t *arr, const mg_json_member_t *m)
{
    if (arr == NULL) {
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (s != NULL && mg_json_key_is(m, s)) {
            return true;
        }
    }
    return false;
}

void
mg_api_splice(const mg_api_req_t *q, const mg_body_opts_t *o, mg_arena_t *a, mg_iovs_t *out)
{
    bool first = true;
    bool have_model = false;
    mg_iovs_push(out, a, "{", 1);
    for (int i = 0; i < q->nmembers; i++) {
        const mg_json_member_t *m = &q->members[i];
        if (m->type == MG_JSON_NULL || mg_api_in_array(o->additional_drop, m)) {
            continue;
        }
        /* a substituted member goes up even when its name is also one of LiteLLM's own
         * (the Responses API's metadata) */
        const char *subst = NULL;
        for (int k = 0; o->subst != NULL && k < o->subst->n && subst == NULL; k++) {
            if (mg_json_key_is(m, o->subst->m[k].key)) {
                subst = o->subst->m[k].json;
            }
        }
        bool is_model = subst == NULL && mg_json_key_is(m, "model");
        if (subst == NULL && (is_model ? o->model == NULL : mg_api_is_litellm_param(m))) {
            continue;
        }
        if (!first) {
            mg_iovs_push(out, a, ",", 1);
        }
        first = false;
        if (subst != NULL) {
            /* the member's key as the client wrote it, then the new value */
            mg_iovs_push(out, a, m->start, (size_t) (m->val - m->start));
            mg_iovs_push(out, a, subst, strlen(subst));
            continue;
        }
        if (is_model) {
            mg_buf_t mb = MG_BUF_INIT;
            mg_buf_append_str(&mb, "\"model\":");
            mg_buf_json_str(&mb, o->model, strlen(o->model));
            char *s = mg_arena_strndup(a, mg_buf_head(&mb), mg_buf_len(&mb));
            mg_iovs_push(out, a, s, mg_buf_len(&mb));
            mg_buf_free(&mb);
            have_model = true;
            continue;
        }
        mg_iovs_push(out, a, m->start, (size_t) (m->end - m->start));
    }
    mg_buf_t extra = MG_BUF_INIT;
    if (!have_model && o->model != NULL) {
        mg_buf_printf(&extra, "%s\"model\":", first ? "" : ",");
        mg_buf_json_str(&extra, o->model, strlen(o->model));
        first = false;
    }
    /* deployment defaults the client did not set */
    const char *k;
    json_t *v;
    json_object_foreach(o->defaults, k, v) {
        if (mg_api_member(q, k) != NULL) {
            continue;
        }
        char *js = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        mg_buf_printf(&extra, "%s", first ? "" : ",");
        mg_buf_json_str(&extra, k, strlen(k));
        mg_buf_printf(&extra, ":%s", js);
        free(js);
        first = false;
    }
    if (o->extra_members != NULL && o->extra_members[0] != '\0') {
        /* given with a leading comma */
        const char *em = o->extra_members;
        if (first && em[0] == ',') {
            em++;
        }
        mg_buf_append_str(&extra, em);
    }
    mg_buf_append(&extra, "}", 1);
    char *es = mg_arena_strndup(a, mg_buf_head(&extra), mg_buf_len(&extra));
    mg_iovs_push(out, a, es, mg_buf_len(&extra));
    mg_buf_free(&extra);
}

int
mg_api_build(mg_wire_t w, mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out,
             mg_api_err_t *err)
{
    const mg_wire_ops_t *ops = mg_api_wire(w);
    if (ops == NULL || n == NULL) {
        return mg_api_err(err, 500, NULL, NULL, "moongate: no request body for wire %s",
                          mg_wire_name(w));
    }
    return ops->build(op, n, o, out, err);
}

/* ---- decoders, encoders, relays ---- */

void
mg_dec_init(mg_dec_t *d, mg_wire_t w, mg_op_t op, mg_usage_t *usage, mg_ev_sink_fn sink, void *ud)
{
    mg_buf_free(&d->scratch);
    memset(d, 0, sizeof(*d));
    d->wire = w;
    d->op = op;
    d->usage = usage;
    d->sink = sink;
    d->ud = ud;
    for (size_t i = 0; i < sizeof(d->block_kind) / sizeof(d->block_kind[0]); i++) {
        d->block_kind[i] = -1;
        d->block_tool[i] = -1;
    }
}

int
mg_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    return mg_api_wire(d->wire)->dec_event(d, data, len, err);
}

int
mg_dec_event_named(mg_dec_t *d, const char *mtype, size_t mtype_len, const char *name,
                   size_t name_len, const char *data, size_t len, mg_api_err_t *err)
{
    const mg_wire_ops_t *w = mg_api_wire(d->wire);
    if (w == NULL || w->dec_named == NULL) {
        return mg_api_err(err, 502, NULL, NULL, "the %s wire has no named stream events",
                          mg_wire_name(d->wire));
    }
    return w->dec_named(d, mtype, mtype_len, name, name_len, data, len, err);
}

int
mg_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    return mg_api_wire(d->wire)->dec_body(d, body, len, err);
}

void
mg_dec_free(mg_dec_t *d)
{
    mg_buf_free(&d->scratch);
}

void
mg_enc_init(mg_enc_t *e, const mg_api_t *api, bool stream, bool include_usage, const char *model,
            mg_usage_t *usage, mg_buf_t *out)
{
    mg_enc_free(e);
    memset(e, 0, sizeof(*e));
    e->api = api;
    e->stream = stream;
    e->include_usage = include_usage;
    e->model = model;
    e->usage = usage;
    e->out = out;
    e->block = -1;
    e->open_tool = -1;
}

void
mg_enc_event(mg_enc_t *e, const mg_ev_t *ev)
{
    if (ev->index >= (int) (sizeof(e->text) / sizeof(e->text[0])) || ev->index < 0) {
        return; /* more choices than a client protocol carries here: not relayed */
    }
    if (ev->index + 1 > e->nchoices && ev->kind != MG_EV_USAGE && ev->kind != MG_EV_END &&
        ev->kind != MG_EV_ERROR && ev->kind != MG_EV_START) {
        e->nchoices = ev->index + 1;
    }
    mg_api_wire(e->api->wire)->enc_event(e, ev);
}

void
mg_enc_finish(mg_enc_t *e)
{
    mg_api_wire(e->api->wire)->enc_finish(e);
}

mg_enc_tool_t *
mg_enc_tool(mg_enc_t *e, int index, int tool)
{
    for (int i = 0; i < e->ntools; i++) {
        if (e->tools[i].index == index && e->tools[i].tool == tool) {
            return &e->tools[i];
        }
    }
    if (e->ntools == e->tools_cap) {
        e->tools_cap = e->tools_cap ? e->tools_cap * 2 : 4;
        e->tools = mg_xrealloc(e->tools, (size_t) e->tools_cap * sizeof(*e->tools));
    }
    mg_enc_tool_t *t = &e->tools[e->ntools++];
    memset(t, 0, sizeof(*t));
    t->index = index;
    t->tool = tool;
    return t;
}

void
mg_enc_set_origin(mg_enc_t *e, const mg_api_req_t *q, const char *provider, const char *model_id)
{
    e->req = q;
    e->origin_provider = provider;
    e->origin_model_id = model_id;
}

void
mg_enc_free(mg_enc_t *e)
{
    mg_api_responses_enc_free(e);
    for (size_t i = 0; i < sizeof(e->text) / sizeof(e->text[0]); i++) {
        mg_buf_free(&e->text[i]);
    }
    mg_buf_free(&e->reasoning);
    mg_buf_free(&e->signature);
    mg_buf_free(&e->redacted);
    for (int i = 0; i < e->ntools; i++) {
        mg_buf_free(&e->tools[i].id);
        mg_buf_free(&e->tools[i].name);
        mg_buf_free(&e->tools[i].args);
    }
    free(e->tools);
    e->tools = NULL;
    e->ntools = e->tools_cap = 0;
    mg_buf_free(&e->embed);
    e->nembed = 0;
}

void
mg_relay_init(mg_relay_t *rl, const mg_api_t *api, const char *model, mg_usage_t *usage)
{
    memset(rl, 0, sizeof(*rl));
    rl->api = api;
    rl->model = model;
    rl->usage = usage;
}

void
mg_relay_set_origin(mg_relay_t *rl, const char *provider, const char *model_id)
{
    rl->origin_provider = provider;
    rl->origin_model_id = model_id;
}

void
mg_relay_event(mg_relay_t *rl, const char *raw, size_t raw_len, const char *data, size_t data_len,
               mg_buf_t *out)
{
    mg_api_wire(rl->api->wire)->relay_event(rl, raw, raw_len, data, data_len, out);
}

void
mg_relay_end(mg_relay_t *rl, mg_buf_t *out)
{
    mg_api_wire(rl->api->wire)->relay_end(rl, out);
}

bool
mg_relay_body(mg_relay_t *rl, const char *body, size_t len, bool restamp, mg_buf_t *out)
{
    return mg_api_wire(rl->api->wire)->relay_body(rl, body, len, restamp, out);
}

/* ---- errors ---- */

void
mg_api_error_body(const mg_api_t *api, int status, const char *msg, const char *type_json,
                  const char *param_json, mg_buf_t *out)
{
    mg_api_wire(api->wire)->error_body(status, msg, type_json, param_json, out);
}

void
mg_api_stream_error(const mg_api_t *api, int status, const char *msg, const char *type_json,
                    mg_buf_t *out)
{
    mg_api_wire(api->wire)->stream_error(status, msg, type_json, out);
}

void
mg_api_wire_error(mg_wire_t w, int status, const char *body, size_t len, mg_wire_err_t *out)
{
    memset(out, 0, sizeof(*out));
    const mg_wire_ops_t *ops = mg_api_wire(w);
    if (ops == NULL) {
        ops = &mg_wire_openai;
    }
    ops->wire_error(status, body, len, out);
    if (out->message == NULL) {
        out->message = mg_xstrdup("");
    }
}

void
mg_wire_err_free(mg_wire_err_t *e)
{
    free(e->message);
    free(e->type);
    free(e->code);
    free(e->param);
    memset(e, 0, sizeof(*e));
}

/* ---- shared scanning ---- */

void
mg_api_scan_top(const char *p, size_t n, mg_api_top_t *t)
{
    memset(t, 0, sizeof(*t));
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, p, n) != MG_OK) {
        return;
    }
    mg_json_member_t m;
    while (mg_json_obj_next(&it, &m) == 1) {
        if (m.key_len == 5 && !m.key_escaped) {
            if (!t->has_model && memcmp(m.key, "model", 5) == 0) {
                t->model = m;
                t->has_model = true;
                continue;
            }
            if (!t->has_usage && memcmp(m.key, "usage", 5) == 0) {
                t->usage = m;
                t->has_usage = true;
                continue;
            }
            if (!t->has_error && memcmp(m.key, "error", 5) == 0) {
                t->error = m;
                t->has_error = true;
                continue;
            }
        } else if (m.key_len == 4 && !m.key_escaped && !t->has_type &&
                   memcmp(m.key, "type", 4) == 0) {
            t->type = m;
            t->has_type = true;
        } else if (m.key_len == 7 && !m.key_escaped && !t->has_message &&
                   memcmp(m.key, "message", 7) == 0) {
            t->message = m;
            t->has_message = true;
        }
    }
}

void
mg_api_restamp(const char *p, size_t n, const mg_json_member_t *m, const char *model,
               mg_buf_t *out)
{
    mg_buf_append(out, p, (size_t) (m->val - p));
    mg_buf_json_str(out, model, strlen(model));
    mg_buf_append(out, m->end, (size_t) (p + n - m->end));
}

void
mg_api_usage_openai(const mg_usage_t *u, mg_buf_t *out)
{
    mg_buf_printf(out, "{\"completion_tokens\":%lld,\"prompt_tokens\":%lld,\"total_tokens\":%lld",
                  (long long) u->completion_tokens, (long long) u->prompt_tokens,
                  (long long) mg_usage_total(u));
    if (u->reasoning_tokens > 0) {
        mg_buf_printf(out, ",\"completion_tokens_details\":{\"reasoning_tokens\":%lld}",
                      (long long) u->reasoning_tokens);
    }
    if (u->cache_read_tokens > 0 || u->cache_creation_tokens > 0) {
        mg_buf_printf(out, ",\"prompt_tokens_details\":{\"cached_tokens\":%lld}",
                      (long long) u->cache_read_tokens);
        mg_buf_printf(out, ",\"cache_read_input_tokens\":%lld,\"cache_creation_input_tokens\":%lld",
                      (long long) u->cache_read_tokens, (long long) u->cache_creation_tokens);
    }
    mg_buf_append(out, "}", 1);
}

/* ---- finish reasons ---- */

const char *
mg_finish_openai(mg_finish_t f)
{
    switch (f) {
    case MG_FIN_STOP: return "stop";
    case MG_FIN_LENGTH: return "length";
    case MG_FIN_TOOL_CALLS: return "tool_calls";
    case MG_FIN_CONTENT_FILTER: return "content_filter";
    case MG_FIN_FUNCTION_CALL: return "function_call";
    default: return NULL;
    }
}

mg_finish_t
mg_finish_from_openai(const char *s, size_t n)
{
    static const struct {
        const char *name;
        mg_finish_t f;
    } t[] = {
        {"stop", MG_FIN_STOP},
        {"length", MG_FIN_LENGTH},
        {"tool_calls", MG_FIN_TOOL_CALLS},
        {"content_filter", MG_FIN_CONTENT_FILTER},
        {"function_call", MG_FIN_FUNCTION_CALL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strlen(t[i].name) == n && memcmp(t[i].name, s, n) == 0) {
            return t[i].f;
        }
    }
    return s != NULL && n > 0 ? MG_FIN_STOP : MG_FIN_NONE;
}
