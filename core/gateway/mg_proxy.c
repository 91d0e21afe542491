/*
 * mg_proxy.c -- the LLM routes: /chat/completions, /completions, /embeddings.
 *
 * A request pins the snapshot current at its start.  It resolves the model
 * to a group (exact name, alias, deployment id, wildcard, litellm model,
 * default fallback), orders the group's deployments (mg_route.c), and tries
 * them: retries inside the group, then fallback groups, as LiteLLM does.
 * The body is forwarded as the client sent it, re-spliced from spans of the
 * original buffer: model replaced, LiteLLM-only fields and nulls dropped,
 * deployment defaults added.  Streams are relayed event by event.
 */
#include "mg_gw.h"
#include "mg_route.h"

#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void mg_proxy_attempt(mg_request_t *r);
static void mg_proxy_fail(mg_request_t *r, mg_uperr_t *e);

/* ---- fields never forwarded upstream (LiteLLM's own parameters) ---- */

static const char *const mg_proxy_litellm_only[] = {
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
    NULL,
};

static mg_map_t mg_proxy_drop_set;
static bool mg_proxy_drop_ready;

static bool
mg_proxy_is_litellm_only(const mg_json_member_t *m)
{
    if (!mg_proxy_drop_ready) {
        mg_map_init(&mg_proxy_drop_set);
        for (const char *const *k = mg_proxy_litellm_only; *k; k++) {
            mg_map_put(&mg_proxy_drop_set, *k, strlen(*k), (void *) 1);
        }
        mg_proxy_drop_ready = true;
    }
    if (m->key_escaped) {
        char buf[256];
        if (m->key_len + 2 > sizeof(buf)) {
            return false;
        }
        long n = mg_json_str_decode(m->key - 1, m->key_len + 2, buf);
        return n >= 0 && ((n > 13 && memcmp(buf, "mock_testing_", 13) == 0) ||
                          mg_map_get(&mg_proxy_drop_set, buf, (size_t) n) != NULL);
    }
    if (m->key_len > 13 && memcmp(m->key, "mock_testing_", 13) == 0) {
        return true;
    }
    return mg_map_get(&mg_proxy_drop_set, m->key, m->key_len) != NULL;
}

/* ---- small helpers ---- */

static const mg_json_member_t *
mg_proxy_member(const mg_request_t *r, const char *key)
{
    /* the last occurrence, as Python's json (and the upstream) reads duplicate keys */
    for (int i = r->nmembers - 1; i >= 0; i--) {
        if (mg_json_key_is(&r->members[i], key)) {
            return &r->members[i];
        }
    }
    return NULL;
}

static char *
mg_proxy_member_str(mg_request_t *r, const mg_json_member_t *m)
{
    if (m == NULL || m->type != MG_JSON_STRING) {
        return NULL;
    }
    char *out = mg_arena_alloc(r->arena, m->val_len + 1);
    if (mg_json_str_decode(m->val, m->val_len, out) < 0) {
        return NULL;
    }
    return out;
}

static double
mg_proxy_member_num(const mg_json_member_t *m, double dflt)
{
    double d;
    if (m == NULL || m->type != MG_JSON_NUMBER || mg_json_num(m->val, m->val_len, &d) != MG_OK) {
        return dflt;
    }
    return d;
}

static void
mg_proxy_timer_set(mg_request_t *r, int64_t ms, event_callback_fn cb)
{
    if (r->timer_on) {
        evtimer_del(&r->timer);
    }
    evtimer_assign(&r->timer, r->gw->base, cb, r);
    struct timeval tv = {(time_t) (ms / 1000), (suseconds_t) ((ms % 1000) * 1000)};
    evtimer_add(&r->timer, &tv);
    r->timer_on = true;
}

/* ---- errors to the client ---- */

/* LiteLLM's x-litellm-attempted-fallbacks: set last by the outermost level, so the
 * position reached in the primary group's own fallback list */
static int
mg_proxy_attempted_fallbacks(const mg_request_t *r)
{
    const mg_fb_frame_t *f = r->fb_top;
    while (f != NULL && f->up != NULL) {
        f = f->up;
    }
    return f != NULL ? f->depth : 0;
}

static void
mg_proxy_error_headers(mg_request_t *r, mg_buf_t *h)
{
    mg_buf_append_str(h, "x-litellm-response-cost: 0\r\nx-litellm-key-spend: 0.0\r\n");
    if (r->dep != NULL) {
        mg_buf_printf(h, "x-litellm-model-id: %s\r\n", r->dep->id);
    }
}

static void
mg_proxy_simple_error(mg_request_t *r, int status, const char *msg, const char *type_json,
                      const char *param_json)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_proxy_error_headers(r, &h);
    r->state = MG_ATT_DONE;
    mg_gw_error_raw(r, status, msg, type_json, param_json, mg_buf_cstr(&h));
    mg_buf_free(&h);
}

/* ---- request parsing ---- */

static bool
mg_proxy_parse(mg_request_t *r, const char *pm, size_t pml)
{
    const char *body = r->hr->body;
    size_t len = r->hr->body_len;
    static const char empty[] = "{}";
    if (len == 0 || body == NULL) {
        body = empty;
        len = 2;
    }
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, body, len) != MG_OK) {
        char *msg = mg_arena_printf(r->arena, "Invalid JSON payload: %s", it.errmsg);
        mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", "\"request_body\"");
        return false;
    }
    mg_json_member_t m;
    int rc;
    while ((rc = mg_json_obj_next(&it, &m)) == 1) {
        if (r->nmembers >= MG_GW_MAX_MEMBERS) {
            r->members_overflow = true;
            continue;
        }
        r->members[r->nmembers++] = m;
    }
    if (rc < 0) {
        char *msg = mg_arena_printf(r->arena, "Invalid JSON payload: %s", it.errmsg);
        mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", "\"request_body\"");
        return false;
    }
    /* trailing garbage after the object */
    const char *tail = it.p;
    while (tail < body + len && (*tail == ' ' || *tail == '\n' || *tail == '\r' || *tail == '\t')) {
        tail++;
    }
    if (tail != body + len) {
        char *msg = mg_arena_printf(r->arena, "Invalid JSON payload: Extra data: char %ld",
                                    (long) (tail - body));
        mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", "\"request_body\"");
        return false;
    }
    if (r->members_overflow) {
        mg_proxy_simple_error(r, 400, "Invalid JSON payload: more than 96 top-level fields",
                              "\"invalid_request_error\"", "\"request_body\"");
        return false;
    }
    if (pm != NULL) {
        r->path_model = mg_arena_strndup(r->arena, pm, pml);
        r->model = r->path_model;
    } else {
        const mg_json_member_t *mm = mg_proxy_member(r, "model");
        r->model = mg_proxy_member_str(r, mm);
        if (mm != NULL && mm->type != MG_JSON_STRING && mm->type != MG_JSON_NULL) {
            char *msg = mg_arena_printf(r->arena, "%s: model must be a string", r->route_path);
            mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", "\"model\"");
            return false;
        }
    }
    const mg_json_member_t *sm = mg_proxy_member(r, "stream");
    r->stream = sm != NULL && sm->type == MG_JSON_TRUE;
    const mg_json_member_t *so = mg_proxy_member(r, "stream_options");
    if (so != NULL && so->type == MG_JSON_OBJECT) {
        mg_json_member_t iu;
        if (mg_json_obj_find(so->val, so->val_len, "include_usage", &iu) == 1) {
            r->include_usage = iu.type == MG_JSON_TRUE;
        }
    }
    const mg_json_member_t *nr = mg_proxy_member(r, "num_retries");
    if (nr != NULL && nr->type == MG_JSON_NUMBER) {
        r->req_num_retries = mg_clamp_int(mg_proxy_member_num(nr, -1));
        if (r->req_num_retries > 100) {
            r->req_num_retries = 100; /* a client cannot make us loop */
        }
    }
    const mg_json_member_t *df = mg_proxy_member(r, "disable_fallbacks");
    r->disable_fallbacks = df != NULL && df->type == MG_JSON_TRUE;
    const mg_json_member_t *md = mg_proxy_member(r, "metadata");
    if (md != NULL && md->type == MG_JSON_OBJECT) {
        mg_json_member_t x;
        if (mg_json_obj_find(md->val, md->val_len, "disable_fallbacks", &x) == 1 &&
            x.type == MG_JSON_TRUE) {
            r->disable_fallbacks = true;
        }
    }
    r->req_timeout = mg_proxy_member_num(mg_proxy_member(r, "timeout"), 0);
    if (r->req_timeout <= 0) {
        r->req_timeout = mg_proxy_member_num(mg_proxy_member(r, "request_timeout"), 0);
    }
    r->req_stream_timeout = mg_proxy_member_num(mg_proxy_member(r, "stream_timeout"), 0);
    const mg_json_member_t *fb = mg_proxy_member(r, "fallbacks");
    if (fb != NULL && fb->type == MG_JSON_ARRAY) {
        r->req_fallbacks = json_loadb(fb->val, fb->val_len, 0, NULL);
    }
    const mg_json_member_t *mr = mg_proxy_member(r, "mock_response");
    if (mr != NULL && mr->type != MG_JSON_NULL) {
        r->req_mock = json_loadb(mr->val, mr->val_len, JSON_DECODE_ANY, NULL);
    }

    /* required parameters, as LiteLLM checks them before routing */
    const char *need = r->route == MG_ROUTE_CHAT          ? "messages"
                       : r->route == MG_ROUTE_COMPLETIONS ? "prompt"
                                                          : "input";
    if (r->model == NULL || r->model[0] == '\0') {
        char *msg = mg_arena_printf(r->arena, "%s: Missing required parameter: 'model'.",
                                    r->route_path);
        mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", "\"model\"");
        return false;
    }
    const mg_json_member_t *nm = mg_proxy_member(r, need);
    if (nm == NULL || (nm->type == MG_JSON_NULL && r->route != MG_ROUTE_COMPLETIONS)) {
        char *msg = mg_arena_printf(r->arena, "%s: Missing required parameter: '%s'.",
                                    r->route_path, need);
        char *param = mg_arena_printf(r->arena, "\"%s\"", need);
        mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", param);
        return false;
    }
    if (r->route == MG_ROUTE_CHAT && nm->type != MG_JSON_ARRAY) {
        char *msg = mg_arena_printf(r->arena, "%s: 'messages' must be a list of message objects.",
                                    r->route_path);
        mg_proxy_simple_error(r, 400, msg, "\"invalid_request_error\"", "\"messages\"");
        return false;
    }
    return true;
}

/* ---- model resolution ---- */

static bool
mg_proxy_resolve(mg_request_t *r)
{
    mg_snapshot_t *s = r->snap;
    const char *model = r->model;
    size_t ml = strlen(model);
    r->group_name = model;
    /* a deployment id targets that deployment alone */
    mg_deployment_t *byid = mg_registry_by_id(s, model);
    if (byid != NULL) {
        r->order[0] = byid;
        r->norder = 1;
        r->group = mg_registry_group(s, byid->model_name, strlen(byid->model_name));
        r->group_name = byid->model_name;
        return true;
    }
    mg_group_t *g = mg_registry_group(s, model, ml);
    if (g != NULL) {
        r->group = g;
        r->group_name = g->name;
        const char *alias_target = mg_map_get(&s->aliases, model, ml);
        if (alias_target != NULL) {
            r->group_name = model; /* LiteLLM reports the name the client used */
        }
        return true;
    }
    char matched[700];
    (void) ml;
    g = mg_route_wildcard(r, model, matched, sizeof(matched));
    if (g != NULL) {
        r->group = g;
        r->group_name = model;
        r->wild_matched = mg_arena_strdup(r->arena, matched);
        return true;
    }
    mg_deployment_t *bym = mg_map_get(&s->by_litellm_model, model, ml);
    if (bym != NULL) {
        r->order[0] = bym;
        r->norder = 1;
        r->group = mg_registry_group(s, bym->model_name, strlen(bym->model_name));
        r->group_name = model;
        return true;
    }
    json_t *dflt = mg_config_router_get(s->config, "default_fallbacks");
    if (json_is_array(dflt) && json_array_size(dflt) > 0) {
        const char *first = json_string_value(json_array_get(dflt, 0));
        if (first != NULL) {
            g = mg_registry_group(s, first, strlen(first));
            if (g != NULL) {
                r->group = g;
                r->group_name = g->name;
                return true;
            }
        }
    }
    const char *skipped = json_string_value(json_object_get(s->skipped, model));
    if (skipped != NULL) {
        /* known, but its stored row cannot be used: say so instead of "Invalid model name" */
        char *msg = mg_arena_printf(r->arena, "moongate: model \"%s\" is stored in the registry "
                                              "but cannot be loaded: %s", model, skipped);
        mg_proxy_simple_error(r, 503, msg, "\"service_unavailable\"", "null");
        return false;
    }
    if (s->nwildcards > 0) {
        char *msg = mg_arena_printf(r->arena,
                                    "litellm.BadRequestError: You passed in model=%s. There is no "
                                    "'model_name' with this string . Received Model Group=%s\n"
                                    "Available Model Group Fallbacks=None", model, model);
        mg_proxy_simple_error(r, 400, msg, "null", "null");
        return false;
    }
    char *inner = mg_arena_printf(r->arena,
                                  "%s: Invalid model name passed in model=%s. Call `/v1/models` to "
                                  "view available models for your key.", r->route_path, model);
    char *msg = mg_gw_pyrepr_dict_error(inner);
    mg_proxy_simple_error(r, 400, msg, "\"None\"", "\"None\"");
    free(msg);
    return false;
}

/* ---- the upstream request ---- */

static void
mg_proxy_iov_push(mg_request_t *r, int *cap, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (r->up_niov == *cap) {
        int ncap = *cap * 2;
        struct iovec *nv = mg_arena_alloc(r->arena, (size_t) ncap * sizeof(struct iovec));
        memcpy(nv, r->up_iov, (size_t) r->up_niov * sizeof(struct iovec));
        r->up_iov = nv;
        *cap = ncap;
    }
    r->up_iov[r->up_niov].iov_base = (void *) p;
    r->up_iov[r->up_niov].iov_len = n;
    r->up_niov++;
}

static bool
mg_proxy_in_array(json_t *arr, const mg_json_member_t *m)
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

/* Builds r->up_iov: head (with content-length) + spliced body. */
static int
mg_proxy_build_request(mg_request_t *r, const mg_provider_t *p, mg_err_t *err)
{
    mg_deployment_t *d = r->dep;
    mg_buf_reset(&r->up_head);
    if (mg_provider_request_head(p, d, r->route, r->upstream_model, &r->up_head, err) != MG_OK) {
        return MG_ERROR;
    }
    int cap = 16 + r->nmembers * 2;
    r->up_iov = mg_arena_alloc(r->arena, (size_t) cap * sizeof(struct iovec));
    r->up_niov = 1; /* [0] = head, set below */
    size_t body_len = 0;
    bool first = true;
    bool have_model = false;
    mg_proxy_iov_push(r, &cap, "{", 1);
    body_len++;
    for (int i = 0; i < r->nmembers; i++) {
        const mg_json_member_t *m = &r->members[i];
        if (m->type == MG_JSON_NULL || mg_proxy_in_array(d->additional_drop_params, m)) {
            continue;
        }
        bool is_model = mg_json_key_is(m, "model");
        if (!is_model && mg_proxy_is_litellm_only(m)) {
            continue;
        }
        if (!first) {
            mg_proxy_iov_push(r, &cap, ",", 1);
            body_len++;
        }
        first = false;
        if (is_model) {
            mg_buf_t mb = MG_BUF_INIT;
            mg_buf_append_str(&mb, "\"model\":");
            mg_buf_json_str(&mb, r->upstream_model, strlen(r->upstream_model));
            char *s = mg_arena_strndup(r->arena, mg_buf_head(&mb), mg_buf_len(&mb));
            mg_proxy_iov_push(r, &cap, s, mg_buf_len(&mb));
            body_len += mg_buf_len(&mb);
            mg_buf_free(&mb);
            have_model = true;
            continue;
        }
        size_t n = (size_t) (m->end - m->start);
        mg_proxy_iov_push(r, &cap, m->start, n);
        body_len += n;
    }
    mg_buf_t extra = MG_BUF_INIT;
    if (!have_model) {
        mg_buf_printf(&extra, "%s\"model\":", first ? "" : ",");
        mg_buf_json_str(&extra, r->upstream_model, strlen(r->upstream_model));
        first = false;
    }
    /* deployment defaults the client did not set */
    const char *k;
    json_t *v;
    json_object_foreach(d->defaults, k, v) {
        if (mg_proxy_member(r, k) != NULL) {
            continue;
        }
        char *js = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        mg_buf_printf(&extra, "%s", first ? "" : ",");
        mg_buf_json_str(&extra, k, strlen(k));
        mg_buf_printf(&extra, ":%s", js);
        free(js);
        first = false;
    }
    mg_buf_append(&extra, "}", 1);
    char *es = mg_arena_strndup(r->arena, mg_buf_head(&extra), mg_buf_len(&extra));
    mg_proxy_iov_push(r, &cap, es, mg_buf_len(&extra));
    body_len += mg_buf_len(&extra);
    mg_buf_free(&extra);
    mg_buf_printf(&r->up_head, "content-length: %zu\r\n\r\n", body_len);
    r->up_iov[0].iov_base = mg_buf_head(&r->up_head);
    r->up_iov[0].iov_len = mg_buf_len(&r->up_head);
    return MG_OK;
}

/* ---- timeouts (LiteLLM precedence) ---- */

static double
mg_proxy_timeout_s(mg_request_t *r)
{
    mg_deployment_t *d = r->dep;
    mg_config_t *c = r->snap->config;
    if (r->stream) {
        if (r->req_stream_timeout > 0) return r->req_stream_timeout;
        if (d->stream_timeout > 0) return d->stream_timeout;
        if (c->stream_timeout > 0) return c->stream_timeout;
    }
    if (r->req_timeout > 0) return r->req_timeout;
    if (d->timeout > 0) return d->timeout;
    return c->request_timeout > 0 ? c->request_timeout : 6000;
}

/* ---- response rewriting ---- */

/* Reads usage numbers from a JSON object text (the "usage" member of a response). */
/* The top-level members a response or stream chunk is read for, found in one pass
 * (each was a pass of its own, three per stream event). */
typedef struct {
    mg_json_member_t error, usage, model;
    bool has_error, has_usage, has_model;
} mg_proxy_top_t;

static void
mg_proxy_scan_top(const char *p, size_t n, mg_proxy_top_t *t)
{
    memset(t, 0, sizeof(*t));
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, p, n) != MG_OK) {
        return;
    }
    mg_json_member_t m;
    while (mg_json_obj_next(&it, &m) == 1) {
        if (!t->has_model && mg_json_key_is(&m, "model")) {
            t->model = m;
            t->has_model = true;
        } else if (!t->has_usage && mg_json_key_is(&m, "usage")) {
            t->usage = m;
            t->has_usage = true;
        } else if (!t->has_error && mg_json_key_is(&m, "error")) {
            t->error = m;
            t->has_error = true;
        }
    }
}

static void
mg_proxy_read_usage(mg_request_t *r, const mg_proxy_top_t *t)
{
    if (!t->has_usage || t->usage.type != MG_JSON_OBJECT) {
        return;
    }
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, t->usage.val, t->usage.val_len) != MG_OK) {
        return;
    }
    mg_json_member_t m;
    while (mg_json_obj_next(&it, &m) == 1) {
        double d;
        if (m.type != MG_JSON_NUMBER || mg_json_num(m.val, m.val_len, &d) != MG_OK) {
            continue;
        }
        if (mg_json_key_is(&m, "prompt_tokens")) {
            r->prompt_tokens = (int64_t) d;
        } else if (mg_json_key_is(&m, "completion_tokens")) {
            r->completion_tokens = (int64_t) d;
        } else if (mg_json_key_is(&m, "total_tokens")) {
            r->total_tokens = (int64_t) d;
        }
    }
    r->usage_seen = true;
}

/* Copies JSON object text into out with "model" set to the requested name. */
static bool
mg_proxy_restamp(mg_request_t *r, const char *p, size_t n, const mg_proxy_top_t *t, mg_buf_t *out)
{
    if (!t->has_model || t->model.type != MG_JSON_STRING) {
        return false;
    }
    mg_buf_append(out, p, (size_t) (t->model.val - p));
    mg_buf_json_str(out, r->model, strlen(r->model));
    mg_buf_append(out, t->model.end, (size_t) (p + n - t->model.end));
    return true;
}

/* ---- success ---- */

static void
mg_proxy_success_headers(mg_request_t *r, mg_buf_t *h)
{
    mg_deployment_t *d = r->dep;
    int64_t now = mg_time_mono_us();
    double total_ms = (double) (now - r->hr->start_us) / 1000.0;
    double up_ms = (double) r->upstream_us_total / 1000.0;
    mg_buf_printf(h, "x-litellm-model-id: %s\r\nx-litellm-model-group: %s\r\n", d->id,
                  d->model_name);
    const char *base = d->prov ? mg_provider_base(d->prov, d) : d->api_base;
    if (base != NULL) {
        size_t bl = strcspn(base, "?");
        mg_buf_printf(h, "x-litellm-model-api-base: %.*s\r\n", (int) bl, base);
    }
    mg_buf_printf(h, "x-litellm-response-duration-ms: %.3f\r\nx-litellm-overhead-duration-ms: %.4f\r\n"
                     "x-litellm-attempted-retries: %d\r\nx-litellm-attempted-fallbacks: %d\r\n"
                     "x-litellm-key-spend: 0.0\r\n",
                  total_ms, total_ms - up_ms > 0 ? total_ms - up_ms : 0, r->retries_done,
                  mg_proxy_attempted_fallbacks(r));
    if (r->retries_done > 0) {
        mg_buf_printf(h, "x-litellm-max-retries: %d\r\n", r->max_retries);
    }
    if (d->input_cost >= 0 && d->output_cost >= 0 && r->usage_seen) {
        char c[64];
        mg_fmt_pyfloat((double) r->prompt_tokens * d->input_cost +
                           (double) r->completion_tokens * d->output_cost, c, sizeof(c));
        mg_buf_printf(h, "x-litellm-response-cost: %s\r\n", c);
    }
}

static void
mg_proxy_stats_end(mg_request_t *r, bool ok, bool timeout)
{
    if (!r->stats_begun || r->dep == NULL) {
        return;
    }
    r->stats_begun = false;
    int slot = r->dep->stats_slot;
    mg_stats_end(slot);
    if (ok) {
        double secs = (double) (mg_time_mono_us() - r->t_upstream_us) / 1e6;
        double ttft = r->stream && r->t_first_byte_us > 0
                          ? (double) (r->t_first_byte_us - r->t_upstream_us) / 1e6
                          : -1;
        mg_stats_success(slot, secs, r->completion_tokens, ttft);
        mg_stats_usage(slot, r->prompt_tokens, r->completion_tokens);
        mg_stats_add_tokens(slot, r->total_tokens > 0 ? r->total_tokens
                                                      : r->prompt_tokens + r->completion_tokens);
    } else {
        mg_stats_failure(slot, timeout);
    }
}

static void
mg_proxy_respond_ok(mg_request_t *r, const char *body, size_t len)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: application/json\r\n");
    mg_gw_common_headers(r, &h);
    mg_proxy_success_headers(r, &h);
    r->state = MG_ATT_DONE;
    mg_http_respond(r->hr, 200, mg_buf_head(&h), mg_buf_len(&h), body, len);
    mg_buf_free(&h);
}

/* ---- streaming relay ---- */

static void
mg_proxy_stream_begin(mg_request_t *r, int status)
{
    mg_buf_t h = MG_BUF_INIT;
    mg_buf_append_str(&h, "content-type: text/event-stream\r\ncache-control: no-cache\r\n");
    mg_gw_common_headers(r, &h);
    mg_proxy_success_headers(r, &h);
    r->state = MG_ATT_STREAMING;
    mg_http_stream_begin(r->hr, status, mg_buf_head(&h), mg_buf_len(&h));
    mg_buf_free(&h);
}

static void
mg_proxy_stream_write(mg_request_t *r, const char *p, size_t n)
{
    if (mg_http_stream_write(r->hr, p, n) && r->client != NULL && !r->stream_paused) {
        r->stream_paused = true;
        mg_client_pause(r->client);
    }
}

/* Ends a started stream with an error frame and no [DONE]. */
static void
mg_proxy_stream_error(mg_request_t *r, int status, const char *msg, const char *type_json)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append_str(&b, "data: {\"error\":{\"message\":");
    mg_buf_json_str(&b, msg, strlen(msg));
    mg_buf_printf(&b, ",\"type\":%s,\"param\":null,\"code\":\"%d\"}}\n\n", type_json, status);
    mg_http_stream_write(r->hr, mg_buf_head(&b), mg_buf_len(&b));
    mg_buf_free(&b);
    r->state = MG_ATT_DONE;
    mg_http_stream_end(r->hr);
}

static bool
mg_proxy_on_event(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    mg_request_t *r = ud;
    if (data == NULL) {
        mg_proxy_stream_write(r, raw, raw_len); /* comments, keep-alives */
        return true;
    }
    if (data_len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        if (r->stream_errored) {
            return true;
        }
        r->done_seen = true;
        mg_proxy_stream_write(r, "data: [DONE]\n\n", 14);
        return true;
    }
    if (r->done_seen || r->stream_errored) {
        return true; /* nothing after [DONE] or after an error event */
    }
    /* JSON chunk: usage, errors, and the model restamp */
    mg_proxy_top_t top;
    mg_proxy_scan_top(data, data_len, &top);
    if (top.has_error && top.error.type == MG_JSON_OBJECT) {
        /* an upstream error event: relay it as the last frame, and no [DONE] */
        r->stream_errored = true;
        mg_buf_t eb = MG_BUF_INIT;
        mg_buf_append_str(&eb, "data: ");
        mg_buf_append(&eb, data, data_len);
        mg_buf_append_str(&eb, "\n\n");
        mg_proxy_stream_write(r, mg_buf_head(&eb), mg_buf_len(&eb));
        mg_buf_free(&eb);
        return true;
    }
    mg_proxy_read_usage(r, &top);
    mg_buf_t out = MG_BUF_INIT;
    mg_buf_append_str(&out, "data: ");
    if (!mg_proxy_restamp(r, data, data_len, &top, &out)) {
        mg_buf_append(&out, data, data_len);
    }
    mg_buf_append_str(&out, "\n\n");
    mg_proxy_stream_write(r, mg_buf_head(&out), mg_buf_len(&out));
    mg_buf_free(&out);
    return true;
}

/* ---- upstream callbacks ---- */

static void
mg_proxy_on_head(void *ud, const mg_http_head_t *head)
{
    mg_request_t *r = ud;
    r->up_status = head->status;
    r->t_first_byte_us = mg_time_mono_us();
    const mg_http_header_t *ra = mg_http_header_find(head, "retry-after");
    r->up_retry_after[0] = '\0';
    if (ra != NULL && ra->value_len < sizeof(r->up_retry_after)) {
        memcpy(r->up_retry_after, ra->value, ra->value_len);
        r->up_retry_after[ra->value_len] = '\0';
    }
    const mg_http_header_t *ct = mg_http_header_find(head, "content-type");
    r->up_stream = ct != NULL && ct->value_len >= 17 &&
                   strncasecmp(ct->value, "text/event-stream", 17) == 0;
    if (r->stream && r->up_stream && head->status >= 200 && head->status < 300) {
        mg_proxy_stream_begin(r, 200);
    }
}

static void
mg_proxy_on_body(void *ud, const char *data, size_t len)
{
    mg_request_t *r = ud;
    if (r->state == MG_ATT_STREAMING) {
        if (mg_sse_feed(&r->sse, data, len, mg_proxy_on_event, r) != MG_OK) {
            mg_client_free(r->client);
            r->client = NULL;
            mg_proxy_stats_end(r, false, false);
            mg_proxy_stream_error(r, 502, "moongate: upstream sent an event larger than 4 MiB",
                                  "\"None\"");
        }
        return;
    }
    if ((int64_t) (mg_buf_len(&r->up_body) + len) > r->snap->config->max_response_size) {
        mg_client_free(r->client);
        r->client = NULL;
        mg_proxy_stats_end(r, false, false);
        char *msg = mg_arena_printf(r->arena, "moongate: the upstream response is larger than "
                                              "max_response_size_mb");
        mg_proxy_simple_error(r, 502, msg, "\"None\"", "\"None\"");
        return;
    }
    mg_buf_append(&r->up_body, data, len);
}

static void
mg_proxy_finish_stream(mg_request_t *r, int rc, const mg_err_t *err)
{
    if (rc == MG_OK && mg_sse_pending(&r->sse) == 0) {
        mg_proxy_stats_end(r, !r->stream_errored, false);
        if (!r->done_seen && !r->stream_errored) {
            /* upstream ended cleanly without [DONE]: LiteLLM always sends one on success */
            mg_http_stream_write(r->hr, "data: [DONE]\n\n", 14);
        }
        r->state = MG_ATT_DONE;
        mg_http_stream_end(r->hr);
        return;
    }
    mg_proxy_stats_end(r, false, err != NULL && err->cls == MG_ERR_UPSTREAM_TIMEOUT);
    mg_uperr_t e;
    if (rc == MG_OK) {
        mg_err_t e2;
        mg_err_set(&e2, MG_ERR_UPSTREAM_CONNECT, "upstream ended the stream in the middle of an event");
        mg_errmap_transport(r->dep->prov, r->dep->provider, &e2, r->dep, &e);
    } else {
        mg_errmap_transport(r->dep->prov, r->dep->provider, err, r->dep, &e);
    }
    mg_log_ctx_t lc = {r->call_id, r->dep->id, "relaying a stream"};
    mg_log(MG_LOG_WARN, &lc, "stream failed mid-way: %s", e.message);
    char *msg = mg_arena_printf(r->arena, "%s. Received Model Group=%s\nAvailable Model Group "
                                          "Fallbacks=None", e.message, r->group_name);
    int st = e.status;
    const char *tj = e.type_json;
    mg_uperr_free(&e);
    mg_proxy_stream_error(r, st, msg, tj);
}

static void
mg_proxy_on_done(void *ud, int rc, const mg_err_t *err)
{
    mg_request_t *r = ud;
    r->upstream_us_total += mg_time_mono_us() - r->t_upstream_us;
    mg_client_free(r->client); /* deferred by the client until we return */
    r->client = NULL;
    if (r->state == MG_ATT_DONE) {
        return;
    }
    if (r->state == MG_ATT_STREAMING) {
        mg_proxy_finish_stream(r, rc, err);
        return;
    }
    mg_uperr_t e;
    if (rc != MG_OK) {
        mg_proxy_stats_end(r, false, err->cls == MG_ERR_UPSTREAM_TIMEOUT);
        mg_errmap_transport(r->dep->prov, r->dep->provider, err, r->dep, &e);
        mg_log_ctx_t lc = {r->call_id, r->dep->id, "calling upstream"};
        mg_log(MG_LOG_INFO, &lc, "upstream exchange failed: %s", err->msg);
        mg_proxy_fail(r, &e);
        return;
    }
    if (r->up_status < 200 || r->up_status >= 300) {
        mg_proxy_stats_end(r, false, false);
        mg_errmap_http(r->dep->prov, r->dep->provider, r->up_status, mg_buf_head(&r->up_body),
                       mg_buf_len(&r->up_body), &e);
        mg_proxy_fail(r, &e);
        return;
    }
    /* success: read usage, restamp the model, answer */
    const char *b = r->up_body.data ? mg_buf_head(&r->up_body) : "";
    size_t bl = mg_buf_len(&r->up_body);
    mg_proxy_top_t top;
    mg_proxy_scan_top(b, bl, &top);
    mg_proxy_read_usage(r, &top);
    mg_proxy_stats_end(r, true, false);
    mg_buf_t out = MG_BUF_INIT;
    if (r->route != MG_ROUTE_EMBEDDINGS && mg_proxy_restamp(r, b, bl, &top, &out)) {
        mg_proxy_respond_ok(r, mg_buf_head(&out), mg_buf_len(&out));
    } else {
        mg_proxy_respond_ok(r, b, bl);
    }
    mg_buf_free(&out);
}

/* ---- mock responses (mock_response, as LiteLLM answers offline) ---- */

static void
mg_proxy_mock_error(mg_request_t *r, const char *s)
{
    mg_uperr_t e;
    memset(&e, 0, sizeof(e));
    e.type_json = "null";
    e.param_json = "null";
    if (strcmp(s, "litellm.RateLimitError") == 0) {
        e.status = 429;
        e.cls = MG_ERR_RATE_LIMITED;
        e.rate_limit = true;
        e.type_json = "\"throttling_error\"";
        e.message = mg_xstrdup("litellm.RateLimitError: this is a mock rate limit error");
    } else if (strcmp(s, "litellm.ContextWindowExceededError") == 0) {
        e.status = 400;
        e.cls = MG_ERR_CONTEXT_WINDOW;
        e.context_window = true;
        e.message = mg_xstrdup("litellm.ContextWindowExceededError: this is a mock context "
                               "window exceeded error");
    } else {
        e.status = 500;
        e.cls = MG_ERR_UPSTREAM_5XX;
        e.message = mg_xstrdup("litellm.InternalServerError: this is a mock internal server error");
    }
    mg_proxy_fail(r, &e);
}

static void
mg_proxy_mock_stream_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_request_t *r = arg;
    r->timer_on = false;
    mg_buf_t b = MG_BUF_INIT;
    /* all slices at once: LiteLLM's mock stream does not pace them */
    while (r->mock_pos < r->mock_len) {
        size_t n = r->mock_len - r->mock_pos < 3 ? r->mock_len - r->mock_pos : 3;
        mg_buf_printf(&b, "data: {\"id\":\"%s\",\"created\":%lld,\"model\":", r->mock_id,
                      (long long) r->mock_created);
        mg_buf_json_str(&b, r->model, strlen(r->model));
        if (r->route == MG_ROUTE_COMPLETIONS) {
            mg_buf_append_str(&b, ",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":");
            mg_buf_json_str(&b, r->mock_text + r->mock_pos, n);
            mg_buf_append_str(&b, "}]}\n\n");
        } else {
            mg_buf_append_str(&b, ",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                                  "\"delta\":{\"content\":");
            mg_buf_json_str(&b, r->mock_text + r->mock_pos, n);
            mg_buf_append_str(&b, r->mock_role_sent ? "}}]}\n\n" : ",\"role\":\"assistant\"}}]}\n\n");
        }
        r->mock_role_sent = true;
        r->mock_pos += n;
    }
    mg_buf_printf(&b, "data: {\"id\":\"%s\",\"created\":%lld,\"model\":", r->mock_id,
                  (long long) r->mock_created);
    mg_buf_json_str(&b, r->model, strlen(r->model));
    if (r->route == MG_ROUTE_COMPLETIONS) {
        mg_buf_append_str(&b, ",\"object\":\"text_completion\",\"choices\":[{\"finish_reason\":\"stop\","
                              "\"index\":0,\"text\":\"\"}]}\n\n");
    } else {
        mg_buf_append_str(&b, ",\"object\":\"chat.completion.chunk\",\"choices\":[{\"finish_reason\":"
                              "\"stop\",\"index\":0,\"delta\":{}}]}\n\n");
    }
    if (r->include_usage) {
        mg_buf_printf(&b, "data: {\"id\":\"%s\",\"created\":%lld,\"model\":", r->mock_id,
                      (long long) r->mock_created);
        mg_buf_json_str(&b, r->model, strlen(r->model));
        mg_buf_append_str(&b, ",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
                              "{\"completion_tokens\":20,\"prompt_tokens\":10,\"total_tokens\":30}}\n\n");
    }
    mg_buf_append_str(&b, "data: [DONE]\n\n");
    mg_http_stream_write(r->hr, mg_buf_head(&b), mg_buf_len(&b));
    mg_buf_free(&b);
    r->state = MG_ATT_DONE;
    mg_http_stream_end(r->hr);
}

static void
mg_proxy_mock(mg_request_t *r, json_t *mock)
{
    r->prompt_tokens = 10;
    r->completion_tokens = 20;
    r->total_tokens = 30;
    r->usage_seen = true;
    const char *s = json_string_value(mock);
    if (s != NULL && (strcmp(s, "litellm.RateLimitError") == 0 ||
                      strcmp(s, "litellm.ContextWindowExceededError") == 0 ||
                      strcmp(s, "litellm.InternalServerError") == 0)) {
        mg_proxy_mock_error(r, s);
        return;
    }
    char uuid[37];
    mg_uuid4(uuid);
    int64_t created = mg_time_real_ms() / 1000;
    if (r->route == MG_ROUTE_EMBEDDINGS) {
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_append_str(&b, "{\"object\":\"list\",\"data\":[{\"embedding\":");
        if (json_is_array(mock)) {
            char *d = json_dumps(mock, JSON_COMPACT);
            mg_buf_append_str(&b, d);
            free(d);
        } else {
            mg_buf_append(&b, "[", 1);
            for (int i = 0; i < 1536; i++) {
                mg_buf_append_str(&b, i ? ",0.0" : "0.0");
            }
            mg_buf_append(&b, "]", 1);
        }
        mg_buf_append_str(&b, ",\"index\":0,\"object\":\"embedding\"}],\"model\":");
        mg_buf_json_str(&b, r->model, strlen(r->model));
        mg_buf_append_str(&b, ",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":0,"
                              "\"total_tokens\":0}}");
        r->total_tokens = 10;
        mg_proxy_respond_ok(r, mg_buf_head(&b), mg_buf_len(&b));
        mg_buf_free(&b);
        return;
    }
    if (json_is_object(mock)) {
        char *d = json_dumps(mock, JSON_COMPACT);
        mg_proxy_respond_ok(r, d, strlen(d));
        free(d);
        return;
    }
    char *text;
    if (s != NULL) {
        text = mg_arena_strdup(r->arena, s);
    } else if (json_is_null(mock) || mock == NULL) {
        text = mg_arena_strdup(r->arena, "This is a mock request");
    } else {
        char *d = json_dumps(mock, JSON_COMPACT | JSON_ENCODE_ANY);
        text = mg_arena_strdup(r->arena, d);
        free(d);
    }
    if (r->stream) {
        snprintf(r->mock_id, sizeof(r->mock_id), "%s-%s",
                 r->route == MG_ROUTE_COMPLETIONS ? "cmpl" : "chatcmpl", uuid);
        r->mock_created = created;
        r->mock_text = text;
        r->mock_len = strlen(text);
        r->mock_pos = 0;
        mg_proxy_stream_begin(r, 200);
        mg_proxy_timer_set(r, 0, mg_proxy_mock_stream_tick);
        return;
    }
    /* n choices, all the same text (LiteLLM's mock_completion) */
    int nchoices = mg_clamp_int(mg_proxy_member_num(mg_proxy_member(r, "n"), 1));
    if (nchoices < 1 || nchoices > 128) {
        nchoices = 1;
    }
    mg_buf_t b = MG_BUF_INIT;
    bool chat = r->route != MG_ROUTE_COMPLETIONS;
    mg_buf_printf(&b, "{\"id\":\"%s-%s\",\"created\":%lld,\"model\":", chat ? "chatcmpl" : "cmpl",
                  uuid, (long long) created);
    mg_buf_json_str(&b, r->model, strlen(r->model));
    mg_buf_append_str(&b, chat ? ",\"object\":\"chat.completion\",\"choices\":["
                               : ",\"object\":\"text_completion\",\"choices\":[");
    for (int i = 0; i < nchoices; i++) {
        mg_buf_printf(&b, "%s{\"finish_reason\":\"stop\",\"index\":%d,", i ? "," : "", i);
        if (chat) {
            mg_buf_append_str(&b, "\"message\":{\"content\":");
            mg_buf_json_str(&b, text, strlen(text));
            mg_buf_append_str(&b, ",\"role\":\"assistant\"}}");
        } else {
            mg_buf_append_str(&b, "\"text\":");
            mg_buf_json_str(&b, text, strlen(text));
            mg_buf_append_str(&b, "}");
        }
    }
    mg_buf_append_str(&b, "],\"usage\":{\"completion_tokens\":20,\"prompt_tokens\":10,"
                          "\"total_tokens\":30}}");
    mg_proxy_respond_ok(r, mg_buf_head(&b), mg_buf_len(&b));
    mg_buf_free(&b);
}

/* ---- attempts, retries, fallbacks ---- */

static int
mg_proxy_group_retries(mg_request_t *r)
{
    mg_config_t *c = r->snap->config;
    if (r->req_num_retries >= 0) {
        return r->req_num_retries;
    }
    json_t *nr = mg_config_router_get(c, "num_retries");
    if (json_is_number(nr)) {
        int n = mg_clamp_int(json_number_value(nr));
        return n > 100 ? 100 : n;
    }
    return 2;
}

/* Orders the current group's candidates; false when none is available (response sent). */
static bool
mg_proxy_route_group(mg_request_t *r, bool respond_if_empty)
{
    if (r->norder == 1 && r->order[0] != NULL && r->group == NULL) {
        return true;
    }
    mg_route_result_t rr;
    mg_route_order(r, &rr);
    if (rr.n == 0) {
        if (!respond_if_empty) {
            return false;
        }
        char *msg = mg_route_no_deployments_message(r, &rr);
        mg_proxy_simple_error(r, 429, msg, "\"None\"", "\"None\"");
        free(msg);
        return false;
    }
    return true;
}

static void
mg_proxy_backoff_done(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_request_t *r = arg;
    r->timer_on = false;
    mg_proxy_attempt(r);
}

/*
 * The deployment an attempt uses.  The request keeps routing on the snapshot it
 * pinned, but a retry or fallback that starts after a newer snapshot was installed
 * takes the deployment's credentials and endpoint from the newer one: a rotated key
 * or moved api_base applies to every upstream request started after the change.
 * The deployment is found by id; a config reload that rotated a key also changed
 * the id (it hashes the parameters, as LiteLLM's does), so then by its position in
 * its model group.  NULL when it has been deleted since.
 */
static mg_deployment_t *
mg_proxy_current_deployment(mg_request_t *r, mg_deployment_t *d)
{
    mg_snapshot_t *cur = r->gw->snap;
    if (cur == NULL || cur == r->snap) {
        return d;
    }
    if (r->att_snap != cur) {
        if (r->att_snap != NULL) {
            mg_snapshot_unref(r->att_snap);
        }
        r->att_snap = mg_snapshot_ref(cur);
    }
    mg_deployment_t *now = mg_registry_by_id(cur, d->id);
    if (now != NULL) {
        return now;
    }
    size_t nl = strlen(d->model_name);
    mg_group_t *was = mg_registry_group(r->snap, d->model_name, nl);
    mg_group_t *is = mg_registry_group(cur, d->model_name, nl);
    if (was == NULL || is == NULL || was->ndeps != is->ndeps) {
        return NULL;
    }
    for (size_t i = 0; i < was->ndeps; i++) {
        if (was->deps[i] == d) {
            /* same place, same model: the same deployment with new parameters */
            now = is->deps[i];
            return strcmp(now->litellm_model, d->litellm_model) == 0 ? now : NULL;
        }
    }
    return NULL;
}

/* Starts the attempt on r->order[r->order_pos]. */
static void
mg_proxy_attempt(mg_request_t *r)
{
    mg_deployment_t *d = mg_proxy_current_deployment(r, r->order[r->order_pos % r->norder]);
    if (d == NULL) {
        mg_deployment_t *gone = r->order[r->order_pos % r->norder];
        r->dep = NULL; /* nothing to cool down: it no longer exists */
        r->attempts_in_group++;
        mg_uperr_t e;
        memset(&e, 0, sizeof(e));
        e.status = 503;
        e.cls = MG_ERR_UPSTREAM_5XX;
        e.type_json = "null";
        e.param_json = "null";
        if (asprintf(&e.message, "litellm.ServiceUnavailableError: deployment %s of model group %s "
                                 "was deleted while this request was being retried",
                     gone->id, r->group_name) < 0) {
            abort();
        }
        mg_proxy_fail(r, &e);
        return;
    }
    r->dep = d;
    r->attempts_in_group++;
    json_t *mock = r->req_mock != NULL ? r->req_mock : d->mock_response;
    if (mock != NULL) {
        r->upstream_model = d->upstream_model;
        mg_proxy_mock(r, mock);
        return;
    }
    /* the upstream model: wildcard captures substituted, else the deployment's */
    if (d->wildcard && r->wild_matched != NULL) {
        char *lm = mg_registry_wildcard_model(d, r->wild_matched);
        char *prov, *um;
        mg_registry_split_model(lm, json_string_value(json_object_get(d->litellm_params,
                                                                      "custom_llm_provider")),
                                &prov, &um);
        r->upstream_model = mg_arena_strdup(r->arena, um);
        free(lm);
        free(prov);
        free(um);
    } else {
        r->upstream_model = d->upstream_model;
    }
    const mg_provider_t *p = d->prov;
    mg_err_t err;
    mg_uperr_t e;
    if (p == NULL) {
        memset(&e, 0, sizeof(e));
        e.status = 400;
        e.cls = MG_ERR_BAD_REQUEST;
        e.type_json = "null";
        e.param_json = "null";
        if (d->provider[0] == '\0') {
            e.message = mg_xstrdup("litellm.BadRequestError: LLM Provider NOT provided. Pass in the "
                                   "LLM provider you are trying to call.");
            char *m2 = NULL;
            if (asprintf(&m2, "%s You passed model=%s", e.message, d->litellm_model) > 0) {
                free(e.message);
                e.message = m2;
            }
        } else if (asprintf(&e.message, "litellm.BadRequestError: moongate does not support "
                                        "provider \"%s\" yet (deployment %s, model=%s)",
                            d->provider, d->id, d->litellm_model) < 0) {
            abort();
        }
        mg_proxy_fail(r, &e);
        return;
    }
    if (!p->routes[r->route]) {
        memset(&e, 0, sizeof(e));
        e.status = 400;
        e.cls = MG_ERR_BAD_REQUEST;
        e.type_json = "null";
        e.param_json = "null";
        if (asprintf(&e.message, "litellm.BadRequestError: %s does not support %s",
                     p->name, r->route_path) < 0) {
            abort();
        }
        mg_proxy_fail(r, &e);
        return;
    }
    if (mg_proxy_build_request(r, p, &err) != MG_OK) {
        mg_errmap_transport(p, d->provider, &err, d, &e);
        mg_proxy_fail(r, &e);
        return;
    }
    if (d->upstream == NULL) {
        mg_err_set(&err, MG_ERR_BAD_REQUEST, "deployment \"%s\": invalid api_base \"%s\"", d->id,
                   mg_provider_base(p, d) ? mg_provider_base(p, d) : "");
        mg_errmap_transport(p, d->provider, &err, d, &e);
        mg_proxy_fail(r, &e);
        return;
    }
    double tos = mg_proxy_timeout_s(r);
    int64_t tms = mg_clamp_i64(tos * 1000);
    if (tms > INT32_MAX) {
        tms = INT32_MAX;
    }
    mg_client_timeouts_t to = {0, (int) tms, (int) tms};
    mg_client_cbs_t cbs = {mg_proxy_on_head, mg_proxy_on_body, mg_proxy_on_done};
    mg_buf_reset(&r->up_body);
    mg_sse_free(&r->sse);
    r->done_seen = false;
    r->stream_errored = false;
    r->up_status = 0;
    r->t_upstream_us = mg_time_mono_us();
    r->t_first_byte_us = 0;
    mg_stats_begin(d->stats_slot);
    r->stats_begun = true;
    r->state = MG_ATT_UPSTREAM;
    r->client = mg_client_start(d->upstream, r->up_iov, r->up_niov, &to, &cbs, r, &err);
    if (r->client == NULL) {
        mg_proxy_stats_end(r, false, false);
        mg_errmap_transport(p, d->provider, &err, d, &e);
        mg_proxy_fail(r, &e);
    }
}

static char *
mg_proxy_fallback_repr(json_t *list)
{
    if (list == NULL) {
        return mg_xstrdup("None");
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, "[", 1);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (i > 0) {
            mg_buf_append_str(&b, ", ");
        }
        if (json_is_string(v)) {
            mg_buf_printf(&b, "'%s'", json_string_value(v));
        } else {
            char *d = json_dumps(v, JSON_COMPACT);
            mg_buf_append_str(&b, d);
            free(d);
        }
    }
    mg_buf_append(&b, "]", 1);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* The final error: the first failure plus LiteLLM's fallback suffix. */
static void
mg_proxy_final_error(mg_request_t *r)
{
    mg_buf_t m = MG_BUF_INIT;
    mg_buf_append_str(&m, r->first_error);
    if (!r->disable_fallbacks && !r->first_no_suffix) {
        char *repr = mg_proxy_fallback_repr(r->fallback_list_repr);
        const char *g = r->primary_group != NULL ? r->primary_group : r->group_name;
        mg_buf_printf(&m, ". Received Model Group=%s\nAvailable Model Group Fallbacks=%s", g, repr);
        free(repr);
        if (r->last_fb_error != NULL) {
            mg_buf_printf(&m, "\nError doing the fallback: %s", r->last_fb_error);
        }
    }
    mg_buf_t h = MG_BUF_INIT;
    mg_proxy_error_headers(r, &h);
    if (r->first_status == 429 && r->up_retry_after[0] != '\0') {
        mg_buf_printf(&h, "retry-after: %s\r\n", r->up_retry_after);
    }
    r->state = MG_ATT_DONE;
    mg_gw_error_raw(r, r->first_status, mg_buf_cstr(&m), r->first_type, r->first_param,
                    mg_buf_cstr(&h));
    mg_buf_free(&m);
    mg_buf_free(&h);
}

/* "<msg>. Received Model Group=<g>\nAvailable Model Group Fallbacks=<list>" (malloc) */
static char *
mg_proxy_group_message(const char *msg, const char *group, json_t *repr)
{
    char *list = mg_proxy_fallback_repr(repr);
    char *out = NULL;
    if (asprintf(&out, "%s. Received Model Group=%s\nAvailable Model Group Fallbacks=%s", msg, group,
                 list) < 0) {
        abort();
    }
    free(list);
    return out;
}

/* Records the full message of a fallback group that failed for good at the current level. */
static void
mg_proxy_fb_child_failed(mg_request_t *r, char *msg)
{
    if (r->fb_top == NULL) {
        free(msg);
        return;
    }
    free(r->fb_top->last_child);
    r->fb_top->last_child = msg;
}

static void
mg_proxy_fb_free(mg_fb_frame_t *f)
{
    json_decref(f->groups);
    free(f->error);
    free(f->last_child);
    free(f);
}

/* LiteLLM bounds the walk by depth only; a list that names itself round in circles
 * multiplies the tries, so moongate also stops after this many fallback groups. */
#define MG_PROXY_MAX_FALLBACK_GROUPS 64

/*
 * Moves to the next fallback group, depth first: the innermost level's next group,
 * else that level is done and its group's failure (with the last child's error)
 * goes one level up.  False when every level is done.
 */
static bool
mg_proxy_next_fallback(mg_request_t *r)
{
    mg_snapshot_t *s = r->snap;
    while (r->fb_top != NULL) {
        mg_fb_frame_t *f = r->fb_top;
        while (f->pos < json_array_size(f->groups) && r->fb_groups_tried < MG_PROXY_MAX_FALLBACK_GROUPS) {
            json_t *next = json_array_get(f->groups, f->pos++);
            const char *name = json_string_value(next);
            if (name == NULL && json_is_object(next)) {
                name = json_string_value(json_object_get(next, "model"));
            }
            if (name == NULL) {
                continue;
            }
            f->depth++;
            r->fb_groups_tried++;
            r->fallback_depth = f->depth;
            mg_group_t *g = mg_registry_group(s, name, strlen(name));
            mg_deployment_t *byid = g == NULL ? mg_registry_by_id(s, name) : NULL;
            char matched[700];
            const char *wm = NULL;
            if (g == NULL && byid == NULL) {
                g = mg_route_wildcard(r, name, matched, sizeof(matched));
                wm = g ? matched : NULL;
            }
            if (g == NULL && byid == NULL) {
                char *m = NULL;
                if (asprintf(&m, "litellm.BadRequestError: You passed in model=%s. There is no "
                                 "'model_name' with this string ", name) < 0) {
                    abort();
                }
                mg_proxy_fb_child_failed(r, mg_proxy_group_message(m, name, NULL));
                free(m);
                continue;
            }
            r->group = g;
            r->group_name = mg_arena_strdup(r->arena, name);
            r->wild_matched = wm ? mg_arena_strdup(r->arena, wm) : NULL;
            r->fallback_allowed = f->allowed;
            r->norder = 0;
            r->order_pos = 0;
            r->attempts_in_group = 0;
            free(r->grp_error);
            r->grp_error = NULL;
            if (byid != NULL) {
                r->group = NULL;
                r->order[0] = byid;
                r->norder = 1;
            } else if (!mg_proxy_route_group(r, false)) {
                mg_proxy_fb_child_failed(r, mg_route_no_deployments_message(r, NULL));
                continue;
            }
            r->max_retries = mg_proxy_group_retries(r);
            r->retries_left = r->max_retries;
            return true;
        }
        /* this level is done: its group failed, with the last child's error */
        r->fb_top = f->up;
        if (r->fb_top == NULL) {
            free(r->last_fb_error);
            r->last_fb_error = f->last_child;
            f->last_child = NULL;
        } else {
            char *m = NULL;
            if (f->last_child != NULL) {
                if (asprintf(&m, "%s\nError doing the fallback: %s", f->error, f->last_child) < 0) {
                    abort();
                }
            } else {
                m = f->error;
                f->error = NULL;
            }
            mg_proxy_fb_child_failed(r, m);
        }
        mg_proxy_fb_free(f);
    }
    return false;
}

/*
 * The group being tried failed for good (its retries are spent) with e: find its
 * fallbacks and open a level for them when the depth allows (LiteLLM's
 * run_async_fallback: depth >= max_fallbacks raises the group's own error).
 */
static void
mg_proxy_group_failed(mg_request_t *r, const mg_uperr_t *e)
{
    bool primary = r->fb_top == NULL;
    char **msgp = primary ? &r->first_error : &r->grp_error;
    if (*msgp == NULL) {
        *msgp = mg_xstrdup("(no error recorded)");
    }
    json_t *groups = NULL, *repr = NULL;
    uint8_t *allowed = NULL;
    bool raised = false;
    mg_route_fallbacks(r, e, msgp, &groups, &repr, &allowed, &raised);
    json_t *max = mg_config_router_get(r->snap->config, "max_fallbacks");
    int maxfb = json_is_number(max) ? mg_clamp_int(json_number_value(max)) : 5;
    bool open = groups != NULL && json_array_size(groups) > 0 && r->fallback_depth < maxfb;
    /* a list that was found but not walked (past max_fallbacks, or only the group
     * itself): LiteLLM raises the group's own error from inside its fallback block */
    raised = raised || (groups != NULL && !open);
    if (primary) {
        json_decref(r->fallback_list_repr);
        r->fallback_list_repr = json_incref(repr);
        if (raised) {
            free(r->last_fb_error);
            r->last_fb_error = mg_xstrdup(r->first_error);
        }
    }
    char *mine = NULL; /* a fallback group's message with its suffix */
    if (!primary) {
        mine = mg_proxy_group_message(r->grp_error, r->group_name, repr);
        if (raised) {
            char *m = NULL;
            if (asprintf(&m, "%s\nError doing the fallback: %s", mine, r->grp_error) < 0) {
                abort();
            }
            free(mine);
            mine = m;
        }
    }
    if (open) {
        mg_fb_frame_t *f = mg_xcalloc(1, sizeof(*f));
        f->up = r->fb_top;
        f->groups = groups;
        f->depth = r->fallback_depth;
        f->allowed = allowed;
        f->error = mine;
        r->fb_top = f;
    } else {
        json_decref(groups);
        if (mine != NULL) {
            mg_proxy_fb_child_failed(r, mine);
        }
    }
    json_decref(repr);
}

static void
mg_proxy_fail(mg_request_t *r, mg_uperr_t *e)
{
    mg_deployment_t *d = r->dep;
    mg_log_ctx_t lc = {r->call_id, d ? d->id : NULL, NULL};
    mg_log(MG_LOG_INFO, &lc, "attempt failed with %d: %s", e->status, e->message);
    /* cooldown bookkeeping (shared by all workers) */
    if (d != NULL) {
        mg_route_on_failure(r, d, e);
    }
    /* LiteLLM raises a group's first error once its retries are spent */
    if (r->fb_top == NULL && r->first_error == NULL) {
        r->first_error = mg_xstrdup(e->message);
        r->first_status = e->status;
        r->first_type = mg_arena_strdup(r->arena, e->type_json);
        r->first_param = mg_arena_strdup(r->arena, e->param_json);
    } else if (r->fb_top != NULL && r->grp_error == NULL) {
        r->grp_error = mg_xstrdup(e->message);
    }
    /* retry inside the group? */
    int64_t wait_ms = 0;
    if (r->retries_left > 0 && mg_route_should_retry(r, e, &wait_ms)) {
        r->retries_left--;
        r->retries_done++;
        r->order_pos++;
        /* re-run selection so cooled-down deployments are skipped */
        bool routed = true;
        if (r->group != NULL) {
            int keep = r->order_pos;
            routed = mg_proxy_route_group(r, false);
            if (routed) {
                r->order_pos = keep % (r->norder > 0 ? r->norder : 1);
            }
        }
        if (routed) {
            mg_uperr_free(e);
            if (wait_ms > 0) {
                r->state = MG_ATT_BACKOFF;
                mg_proxy_timer_set(r, wait_ms, mg_proxy_backoff_done);
            } else {
                mg_proxy_attempt(r);
            }
            return;
        }
    }
    mg_proxy_group_failed(r, e);
    mg_uperr_free(e);
    if (mg_proxy_next_fallback(r)) {
        mg_proxy_attempt(r);
        return;
    }
    mg_proxy_final_error(r);
}

/* ---- entry points ---- */

void
mg_proxy_handle(mg_request_t *r, mg_route_t route, const char *pm, size_t pml)
{
    mg_gw_t *gw = r->gw;
    r->route = route;
    r->route_path = mg_route_path(route);
    if (!gw->ready || gw->snap == NULL) {
        char *msg = mg_arena_printf(r->arena, "moongate: the model registry is not loaded on this "
                                              "worker yet (%s); retry shortly",
                                    gw->not_ready_reason[0] ? gw->not_ready_reason : "loading");
        mg_gw_error_raw(r, 503, msg, "\"service_unavailable\"", "null", "retry-after: 1\r\n");
        return;
    }
    r->snap = mg_snapshot_ref(gw->snap);
    if (!mg_proxy_parse(r, pm, pml)) {
        return;
    }
    if (!mg_proxy_resolve(r)) {
        return;
    }
    r->primary_group = r->group_name;
    r->max_retries = mg_proxy_group_retries(r);
    r->retries_left = r->max_retries;
    if (!mg_proxy_route_group(r, false)) {
        /* every deployment is cooling down: LiteLLM raises inside its fallback logic,
         * so configured fallbacks still apply; the message carries no group suffix */
        mg_route_result_t rr;
        mg_route_order(r, &rr);
        mg_uperr_t e;
        memset(&e, 0, sizeof(e));
        e.status = 429;
        e.cls = MG_ERR_RATE_LIMITED;
        e.rate_limit = true;
        e.type_json = "\"None\"";
        e.param_json = "\"None\"";
        e.message = mg_route_no_deployments_message(r, &rr);
        r->first_no_suffix = true;
        r->retries_left = 0;
        mg_proxy_fail(r, &e);
        return;
    }
    mg_proxy_attempt(r);
}

void
mg_proxy_abort(mg_request_t *r)
{
    if (r->client != NULL) {
        mg_client_free(r->client);
        r->client = NULL;
    }
    mg_proxy_stats_end(r, false, false);
    if (r->timer_on) {
        evtimer_del(&r->timer);
        r->timer_on = false;
    }
    r->state = MG_ATT_DONE;
}

void
mg_proxy_drain(mg_request_t *r)
{
    if (r->stream_paused && r->client != NULL) {
        r->stream_paused = false;
        mg_client_resume(r->client);
    }
}

void
mg_proxy_cleanup(mg_request_t *r)
{
    mg_proxy_abort(r);
    mg_buf_free(&r->up_head);
    mg_buf_free(&r->up_body);
    mg_sse_free(&r->sse);
    json_decref(r->req_fallbacks);
    r->req_fallbacks = NULL;
    json_decref(r->req_mock);
    r->req_mock = NULL;
    while (r->fb_top != NULL) {
        mg_fb_frame_t *f = r->fb_top;
        r->fb_top = f->up;
        mg_proxy_fb_free(f);
    }
    free(r->grp_error);
    r->grp_error = NULL;
    json_decref(r->fallback_list_repr);
    r->fallback_list_repr = NULL;
    free(r->first_error);
    r->first_error = NULL;
    free(r->last_fb_error);
    r->last_fb_error = NULL;
}
