/*
 * mg_route.c -- LiteLLM router semantics: candidates, simple-shuffle,
 * retries, cooldowns and fallback groups (see mg_route.h).
 */
#include "mg_route.h"
#include "mg_gw_metrics.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mg_route_rng_state;

double
mg_route_rand(void)
{
    if (mg_route_rng_state == 0) {
        mg_random_bytes(&mg_route_rng_state, sizeof(mg_route_rng_state));
        mg_route_rng_state |= 1;
    }
    /* xorshift64* */
    uint64_t x = mg_route_rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    mg_route_rng_state = x;
    return (double) ((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static double
mg_route_cooldown_cfg_s(const mg_snapshot_t *s, const mg_deployment_t *d)
{
    if (d->cooldown_time >= 0) {
        return d->cooldown_time;
    }
    json_t *ct = mg_config_router_get(s->config, "cooldown_time");
    double v = json_is_number(ct) ? json_number_value(ct) : 0;
    return v > 0 ? v : 5; /* router-level 0 means the default, as in LiteLLM */
}

int64_t
mg_route_max_input(const mg_deployment_t *d)
{
    /* model_info.max_input_tokens wins, else the snapshot's cost map (mg_registry_build) */
    return d->max_input_tokens > 0 ? d->max_input_tokens : 0;
}

/* LiteLLM's pre-call check: a deployment whose max_input_tokens the prompt exceeds. */
static bool
mg_route_too_long(mg_request_t *r, const mg_deployment_t *d)
{
    if (!r->snap->config->pre_call_checks) {
        return false;
    }
    int64_t max = mg_route_max_input(d);
    if (max <= 0) {
        return false; /* unknown window: not filtered, as LiteLLM does */
    }
    if (r->est_tokens == 0) {
        r->est_tokens = mg_api_estimate_input_tokens(&r->q) + 1;
    }
    return r->est_tokens - 1 > max;
}

int
mg_route_max_parallel(const mg_snapshot_t *s, const mg_deployment_t *d)
{
    if (d->max_parallel_requests > 0) {
        return d->max_parallel_requests;
    }
    return s->config->default_max_parallel;
}

void
mg_route_order(mg_request_t *r, mg_route_result_t *rr)
{
    memset(rr, 0, sizeof(*rr));
    rr->min_cooldown_s = -1;
    mg_group_t *g = r->group;
    if (g == NULL) {
        rr->n = r->norder;
        return;
    }
    int n = 0;
    int min_order = 0;
    for (size_t i = 0; i < g->ndeps; i++) {
        mg_deployment_t *d = g->deps[i];
        if (d->order > 0 && (min_order == 0 || d->order < min_order)) {
            min_order = d->order;
        }
    }
    for (size_t i = 0; i < g->ndeps && n < (int) (sizeof(r->order) / sizeof(r->order[0])); i++) {
        mg_deployment_t *d = g->deps[i];
        if (!d->wildcard && mg_stats_cooldown_left(d->stats_slot) > 0) {
            rr->cooled++;
            double c = mg_route_cooldown_cfg_s(r->snap, d);
            mg_stat_t *st = mg_stats_get(d->stats_slot);
            if (st != NULL && st->cooldown_time_ms > 0) {
                c = (double) st->cooldown_time_ms / 1000.0;
            }
            if (rr->min_cooldown_s < 0 || c < rr->min_cooldown_s) {
                rr->min_cooldown_s = c;
            }
            continue;
        }
        if (min_order > 0 && d->order != min_order) {
            continue;
        }
        if (r->fallback_allowed != NULL && r->fallback_depth > 0 && !r->fallback_allowed[d->index]) {
            continue; /* the fallback policy dropped it */
        }
        if (mg_route_too_long(r, d)) {
            rr->too_long++;
            continue; /* enable_pre_call_checks: the prompt does not fit its window */
        }
        int mp = mg_route_max_parallel(r->snap, d);
        if (mp > 0) {
            mg_stat_t *st = mg_stats_get(d->stats_slot);
            if (st != NULL && __atomic_load_n(&st->inflight, __ATOMIC_RELAXED) >= mp) {
                rr->busy++;
                continue; /* at its max_parallel_requests: LiteLLM's semaphore is full */
            }
        }
        r->order[n++] = d;
    }
    r->norder = n;
    r->order_pos = 0;
    rr->n = n;
    mg_lua_vm_t *vm = mg_gw_vm(r->snap);
    mg_deployment_t *out[sizeof(r->order) / sizeof(r->order[0])];
    int nout = 0;
    mg_lua_ctx_t ctx = {r->model, g->name, r->stream, r->attempts_in_group + 1,
                        (int64_t) (r->hr->body_len / 4), NULL, 0, NULL, r->tags, r->ntags};
    if (n > 0 && mg_lua_configured(r->snap, MG_POLICY_FILTER)) {
        /* the filter (tag routing) decides who may serve at all: it fails closed */
        int frc = vm != NULL && mg_lua_vm_has(vm, MG_POLICY_FILTER)
                      ? mg_lua_vm_select(vm, MG_POLICY_FILTER, &ctx, r->order, n, out, &nout,
                                         rr->reason, sizeof(rr->reason))
                      : MG_ERROR;
        if (frc == MG_OK) {
            memcpy(r->order, out, (size_t) nout * sizeof(out[0]));
            n = r->norder = rr->n = nout;
        } else {
            if (frc == MG_ERROR) {
                r->gw->policy_errors++;
                snprintf(rr->reason, sizeof(rr->reason), "the filter policy failed: no deployment "
                                                         "may be chosen without it");
            }
            r->norder = rr->n = 0;
            rr->declined = true;
            rr->filtered = true;
            r->filter_denied = mg_arena_strdup(r->arena, rr->reason);
            return;
        }
    }
    if (vm == NULL || n == 0) {
        return; /* the configured order */
    }
    int rc = mg_lua_vm_select(vm, MG_POLICY_ROUTING, &ctx, r->order, n, out, &nout, rr->reason,
                              sizeof(rr->reason));
    if (rc == MG_OK) {
        memcpy(r->order, out, (size_t) nout * sizeof(out[0]));
        r->norder = nout;
        rr->n = nout;
    } else if (rc == MG_DECLINED) {
        r->norder = 0;
        rr->n = 0;
        rr->declined = true;
    } else {
        r->gw->policy_errors++;
    }
}

mg_group_t *
mg_route_wildcard(mg_request_t *r, const char *name, char *matched, size_t mlen)
{
    mg_snapshot_t *s = r->snap;
    mg_lua_vm_t *vm = mg_gw_vm(s);
    if (vm == NULL || s->nwildcards == 0) {
        return mg_registry_wildcard(s, name, strlen(name), matched, mlen);
    }
    /* every pattern deployment, most specific first */
    mg_deployment_t *cands[256];
    int n = 0;
    for (size_t i = 0; i < s->nwildcards && n < 256; i++) {
        for (size_t j = 0; j < s->wildcards[i]->ndeps && n < 256; j++) {
            cands[n++] = s->wildcards[i]->deps[j];
        }
    }
    mg_deployment_t *out[256];
    for (int attempt = 0; attempt < 2; attempt++) {
        char full[600];
        const char *try_name = name;
        if (attempt == 1) {
            /* LiteLLM's second lookup: provider/name, provider inferred from the bare name */
            const char *prov = mg_registry_bare_provider(s, name);
            if (prov == NULL) {
                break;
            }
            snprintf(full, sizeof(full), "%s/%s", prov, name);
            try_name = full;
        }
        int nout = 0;
        char why[256];
        mg_lua_ctx_t ctx = {try_name, NULL, r->stream, 1, (int64_t) (r->hr->body_len / 4),
                            NULL, 0, NULL, r->tags, r->ntags};
        int rc = mg_lua_vm_select(vm, MG_POLICY_WILDCARD, &ctx, cands, n, out, &nout, why, sizeof(why));
        if (rc == MG_ERROR) {
            r->gw->policy_errors++;
            return mg_registry_wildcard(s, name, strlen(name), matched, mlen);
        }
        if (rc == MG_OK && nout > 0) {
            snprintf(matched, mlen, "%s", try_name);
            return mg_map_get(&s->by_group, out[0]->model_name, strlen(out[0]->model_name));
        }
    }
    return NULL;
}

char *
mg_route_no_deployments_message(mg_request_t *r, const mg_route_result_t *rr)
{
    if (rr != NULL && rr->declined) {
        char *m = NULL;
        if (asprintf(&m, "%s. Passed model=%s", rr->reason, r->group_name) < 0) {
            abort();
        }
        return m;
    }
    mg_buf_t ids = MG_BUF_INIT;
    mg_buf_append(&ids, "[", 1);
    int k = 0;
    for (size_t i = 0; i < r->snap->ndeps; i++) {
        mg_deployment_t *d = &r->snap->deps[i];
        if (mg_stats_cooldown_left(d->stats_slot) > 0) {
            mg_buf_printf(&ids, "%s'%s'", k++ ? ", " : "", d->id);
        }
    }
    mg_buf_append(&ids, "]", 1);
    double c = rr != NULL && rr->min_cooldown_s >= 0 ? rr->min_cooldown_s : 5;
    char cs[32];
    if (fmod(c, 1.0) == 0) {
        snprintf(cs, sizeof(cs), "%lld", (long long) c);
    } else {
        mg_fmt_pyfloat(c, cs, sizeof(cs));
    }
    char *msg = NULL;
    if (asprintf(&msg, "No deployments available for selected model, Try again in %s seconds. "
                       "Passed model=%s. pre-call-checks=False, cooldown_list=%s",
                 cs, r->group_name, mg_buf_cstr(&ids)) < 0) {
        abort();
    }
    mg_buf_free(&ids);
    return msg;
}

static int
mg_route_healthy(mg_request_t *r)
{
    if (r->group == NULL) {
        return r->norder;
    }
    int n = 0;
    for (size_t i = 0; i < r->group->ndeps; i++) {
        if (mg_stats_cooldown_left(r->group->deps[i]->stats_slot) <= 0) {
            n++;
        }
    }
    return n;
}

static const char *
mg_route_policy_key(const mg_uperr_t *e)
{
    if (e->context_window || e->cls == MG_ERR_BAD_REQUEST) {
        return "BadRequestErrorRetries";
    }
    if (e->content_policy) {
        return "ContentPolicyViolationErrorRetries";
    }
    if (e->auth) {
        return "AuthenticationErrorRetries";
    }
    if (e->timeout) {
        return "TimeoutErrorRetries";
    }
    if (e->rate_limit) {
        return "RateLimitErrorRetries";
    }
    return "InternalServerErrorRetries";
}

static bool
mg_route_has_cfg(mg_request_t *r, const char *key)
{
    json_t *v = mg_config_router_get(r->snap->config, key);
    return v != NULL && !json_is_null(v);
}

bool
mg_route_should_retry(mg_request_t *r, const mg_uperr_t *e, int64_t *wait_ms)
{
    *wait_ms = 0;
    int healthy = mg_route_healthy(r);
    size_t gsize = r->group != NULL ? r->group->ndeps : (size_t) r->norder;
    if (e->context_window && mg_route_has_cfg(r, "context_window_fallbacks")) {
        return false;
    }
    if (e->content_policy && mg_route_has_cfg(r, "content_policy_fallbacks")) {
        return false;
    }
    if (e->not_found || e->cls == MG_ERR_INTERNAL) {
        return false; /* the same request would fail the same way (e.g. a refused head) */
    }
    bool have_fb = mg_route_has_cfg(r, "fallbacks") || r->req_fallbacks != NULL ||
                   mg_route_has_cfg(r, "default_fallbacks");
    if (e->rate_limit && healthy == 0 && have_fb) {
        return false;
    }
    if (e->auth && gsize <= 1) {
        return false;
    }
    if (healthy == 0 && r->group != NULL) {
        return false;
    }
    /* retry_policy: retries allowed for this class of error */
    json_t *rp = mg_config_router_get(r->snap->config, "retry_policy");
    json_t *pv = json_object_get(rp, mg_route_policy_key(e));
    if (json_is_number(pv) && r->attempts_in_group > mg_clamp_int(json_number_value(pv))) {
        return false;
    }
    if (gsize > 1 && healthy >= 1) {
        return true;
    }
    double jitter = 0.75 * mg_route_rand();
    int ra = atoi(r->up_retry_after);
    if (ra > 0 && ra <= 60) {
        *wait_ms = (int64_t) ((ra + jitter) * 1000);
        return true;
    }
    json_t *rav = mg_config_router_get(r->snap->config, "retry_after");
    double min_s = json_is_number(rav) ? json_number_value(rav) : 0;
    double s = 0.5 * pow(2.0, r->attempts_in_group - 1);
    if (s < min_s) {
        s = min_s;
    }
    if (s > 8.0) {
        s = 8.0;
    }
    *wait_ms = (int64_t) ((s + jitter) * 1000);
    return true;
}

void
mg_route_on_failure(mg_request_t *r, mg_deployment_t *d, const mg_uperr_t *e)
{
    mg_config_t *c = r->snap->config;
    if (d->wildcard) {
        return; /* LiteLLM never cools wildcard deployments */
    }
    json_t *dis = mg_config_router_get(c, "disable_cooldowns");
    if (json_is_true(dis)) {
        return;
    }
    int st = e->status;
    bool eligible = st == 429 || st == 401 || st == 408 || st == 404 || st >= 500;
    if (e->cls == MG_ERR_INTERNAL || e->local) {
        eligible = false; /* our own refusal says nothing about the deployment's health */
    }
    if (!eligible) {
        return;
    }
    double secs;
    if (d->cooldown_time >= 0) {
        secs = d->cooldown_time;
    } else if (atoi(r->up_retry_after) > 0) {
        secs = atoi(r->up_retry_after);
    } else {
        secs = mg_route_cooldown_cfg_s(r->snap, d);
    }
    if (secs <= 0.001) {
        return;
    }
    size_t gsize = r->group != NULL ? r->group->ndeps : 1;
    int64_t rpm, tpm, fails, succ;
    mg_stats_minute(d->stats_slot, &rpm, &tpm, &fails, &succ);
    int64_t total = fails + succ;
    bool cool = false;
    json_t *af = mg_config_router_get(c, "allowed_fails");
    json_t *afp = mg_config_router_get(c, "allowed_fails_policy");
    if ((json_is_number(af) && json_number_value(af) != 3) || json_is_object(afp)) {
        double allowed = json_is_number(af) ? json_number_value(af) : 3;
        if (json_is_object(afp)) {
            const char *k = e->rate_limit ? "RateLimitErrorAllowedFails"
                            : e->auth     ? "AuthenticationErrorAllowedFails"
                            : e->timeout  ? "TimeoutErrorAllowedFails"
                            : e->cls == MG_ERR_BAD_REQUEST ? "BadRequestErrorAllowedFails"
                                                           : "InternalServerErrorAllowedFails";
            json_t *pv = json_object_get(afp, k);
            if (json_is_number(pv)) {
                allowed = json_number_value(pv);
            }
        }
        cool = (double) fails > allowed;
    } else {
        if (st == 429 && gsize > 1) {
            cool = true;
        } else if (total >= 1000 && fails == total) {
            cool = true;
        } else if (gsize > 1 && total >= 5 && (double) fails / (double) total > 0.5) {
            cool = true;
        } else if (!(st == 408 || st == 409 || st == 429 || st >= 500)) {
            cool = true; /* 401, 404: not retryable */
        }
    }
    if (secs > 86400) {
        secs = 86400; /* a day at most */
    }
    if (cool && mg_stats_cooldown(d->stats_slot, (int64_t) (secs * 1000), st)) {
        mg_log_ctx_t lc = {r->call_id, d->id, NULL};
        mg_log(MG_LOG_NOTICE, &lc, "deployment cooled down for %gs after status %d", secs, st);
        mg_gwm_cooled_down(r, d, st);
        if (r->gw->host.cooldown != NULL) {
            r->gw->host.cooldown(r->gw->host.host, d->id, (int64_t) (secs * 1000), st);
        }
    }
}

static json_t *
mg_route_entry(json_t *list, const char *group)
{
    if (!json_is_array(list)) {
        return NULL;
    }
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it) {
        json_t *v = json_object_get(it, group);
        if (v != NULL) {
            return v;
        }
    }
    return NULL;
}

static void
mg_route_append_msg(char **msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mg_route_append_msg(char **msg, const char *fmt, ...)
{
    if (*msg == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *add = NULL;
    if (vasprintf(&add, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    char *n = NULL;
    if (asprintf(&n, "%s%s", *msg, add) < 0) {
        abort();
    }
    free(*msg);
    free(add);
    *msg = n;
}

static char *
mg_route_repr_fallbacks(json_t *fb)
{
    if (fb == NULL || json_is_null(fb)) {
        return mg_xstrdup("None");
    }
    /* Python repr of [{'a': ['b']}] */
    char *d = json_dumps(fb, JSON_COMPACT);
    mg_buf_t b = MG_BUF_INIT;
    for (const char *p = d; *p; p++) {
        if (*p == '"') {
            mg_buf_append(&b, "'", 1);
        } else if (*p == ',') {
            mg_buf_append(&b, ", ", 2);
        } else if (*p == ':') {
            mg_buf_append(&b, ": ", 2);
        } else {
            mg_buf_append(&b, p, 1);
        }
    }
    free(d);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* Deployments of one fallback entry (group, alias, deployment id or wildcard name). */
static int
mg_route_entry_deps(mg_request_t *r, const char *name, mg_deployment_t **out, int cap)
{
    mg_snapshot_t *s = r->snap;
    mg_group_t *g = mg_registry_group(s, name, strlen(name));
    if (g == NULL) {
        mg_deployment_t *d = mg_registry_by_id(s, name);
        if (d != NULL) {
            out[0] = d;
            return 1;
        }
        char matched[700];
        g = mg_registry_wildcard(s, name, strlen(name), matched, sizeof(matched));
    }
    int n = 0;
    for (size_t i = 0; g != NULL && i < g->ndeps && n < cap; i++) {
        out[n++] = g->deps[i];
    }
    return n;
}

/* Lets the fallback policy order and filter the fallback candidates. */
static void
mg_route_fallback_policy(mg_request_t *r, const mg_uperr_t *e, json_t **groups, uint8_t **allowed_out)
{
    mg_lua_vm_t *vm = mg_gw_vm(r->snap);
    size_t ng = json_array_size(*groups);
    if (vm == NULL || ng == 0) {
        return;
    }
    enum { CAP = 256 };
    mg_deployment_t *cands[CAP];
    int tag[CAP];
    int n = 0;
    for (size_t i = 0; i < ng && n < CAP; i++) {
        json_t *it = json_array_get(*groups, i);
        const char *name = json_is_string(it) ? json_string_value(it)
                                              : json_string_value(json_object_get(it, "model"));
        if (name == NULL) {
            continue;
        }
        int k = mg_route_entry_deps(r, name, cands + n, CAP - n);
        for (int j = 0; j < k; j++) {
            tag[n + j] = (int) i;
        }
        n += k;
    }
    if (n == 0) {
        return;
    }
    mg_deployment_t *out[CAP];
    int nout = 0;
    char why[256];
    mg_lua_ctx_t ctx = {r->model, r->group_name, r->stream, r->attempts_in_group,
                        (int64_t) (r->hr->body_len / 4), mg_err_class_name(e->cls), e->status,
                        r->dep, r->tags, r->ntags};
    int rc = mg_lua_vm_select(vm, MG_POLICY_FALLBACK, &ctx, cands, n, out, &nout, why, sizeof(why));
    if (rc == MG_ERROR) {
        r->gw->policy_errors++;
        return; /* LiteLLM's order, everything allowed */
    }
    /* groups in the order of their first returned deployment; only returned ones allowed */
    uint8_t *allowed = mg_arena_calloc(r->arena, r->snap->ndeps + 1);
    json_t *ordered = json_array();
    uint8_t seen[CAP] = {0};
    for (int i = 0; i < nout; i++) {
        allowed[out[i]->index] = 1;
        for (int j = 0; j < n; j++) {
            if (cands[j] == out[i] && !seen[tag[j]]) {
                seen[tag[j]] = 1;
                json_array_append(ordered, json_array_get(*groups, (size_t) tag[j]));
                break;
            }
        }
    }
    json_decref(*groups);
    *groups = ordered;
    *allowed_out = allowed;
}

void
mg_route_fallbacks(mg_request_t *r, const mg_uperr_t *e, char **msg, json_t **groups,
                   json_t **repr, uint8_t **allowed, bool *raised)
{
    mg_config_t *c = r->snap->config;
    const char *g0 = r->group_name;
    *groups = NULL;
    *repr = NULL;
    *allowed = NULL;
    *raised = false;
    if (r->disable_fallbacks) {
        return;
    }
    json_t *generic = mg_config_router_get(c, "fallbacks");
    json_t *dflt = mg_config_router_get(c, "default_fallbacks");
    json_t *list = NULL;
    if (r->req_fallbacks != NULL) {
        /* request-level: a list of group names (or {model: ...} dicts), tried in order */
        list = json_array();
        size_t i;
        json_t *it;
        json_array_foreach(r->req_fallbacks, i, it) {
            if (json_is_string(it) || json_is_object(it)) {
                json_array_append(list, it);
            }
        }
        goto done;
    }
    if (e->context_window) {
        json_t *cw = mg_config_router_get(c, "context_window_fallbacks");
        if (cw != NULL) {
            json_t *v = mg_route_entry(cw, g0);
            list = v != NULL ? json_incref(v) : NULL;
            *raised = v == NULL;
            goto done;
        }
        char *rep = mg_route_repr_fallbacks(generic);
        mg_route_append_msg(msg, "\nmodel=%s. context_window_fallbacks=None. fallbacks=%s.\n\nSet "
                                 "'context_window_fallback' - https://docs.litellm.ai/docs/routing#fallbacks",
                              g0, rep);
        free(rep);
    } else if (e->content_policy) {
        json_t *cp = mg_config_router_get(c, "content_policy_fallbacks");
        if (cp != NULL) {
            json_t *v = mg_route_entry(cp, g0);
            list = v != NULL ? json_incref(v) : NULL;
            *raised = v == NULL;
            goto done;
        }
        char *rep = mg_route_repr_fallbacks(generic);
        mg_route_append_msg(msg, "\nmodel=%s. content_policy_fallback=None. fallbacks=%s.\n\nSet "
                                 "'content_policy_fallback' - https://docs.litellm.ai/docs/routing#fallbacks",
                              g0, rep);
        free(rep);
    }
    if (generic == NULL && dflt == NULL) {
        goto done;
    }
    json_t *v = mg_route_entry(generic, g0);
    if (v == NULL) {
        const char *slash = strchr(g0, '/');
        if (slash != NULL) {
            v = mg_route_entry(generic, slash + 1);
        }
    }
    if (v == NULL) {
        v = mg_route_entry(generic, "*");
    }
    if (v == NULL && json_is_array(dflt)) {
        v = dflt;
    }
    if (v != NULL) {
        list = json_incref(v);
    } else {
        char *rep = mg_route_repr_fallbacks(generic);
        mg_route_append_msg(msg, "No fallback model group found for original model_group=%s. "
                                 "Fallbacks=%s", g0, rep);
        free(rep);
        *raised = true;
    }
done:
    if (list != NULL) {
        /* never fall back to the group that just failed */
        json_t *clean = json_array();
        size_t i;
        json_t *it;
        json_array_foreach(list, i, it) {
            const char *name = json_is_string(it) ? json_string_value(it)
                                                  : json_string_value(json_object_get(it, "model"));
            if (name != NULL && strcmp(name, g0) != 0) {
                json_array_append(clean, it);
            }
        }
        *repr = json_incref(list);
        *groups = clean;
        json_decref(list);
        mg_route_fallback_policy(r, e, groups, allowed);
    }
}
