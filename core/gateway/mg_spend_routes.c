/*
 * mg_spend_routes.c -- the gateway's side of the spend log: the row of each LLM call
 * (mg_gw_spend_record) and LiteLLM's spend routes.
 *
 * Routes (admin only for now: the master key, or no master key configured):
 *   GET /spend/logs            api_key (sk-... is hashed), user_id, request_id, start_date,
 *                              end_date, summarize (default true)
 *   GET /global/spend          {"spend": this month, "max_budget": litellm_settings.max_budget}
 *   GET /global/spend/report   start_date, end_date, group_by team|customer|api_key, api_key,
 *                              internal_user_id, team_id + customer_id
 *   GET /global/spend/keys     limit: keys by spend over the last 30 days
 *   GET /global/spend/models   limit (default 10): models by spend over the last 30 days
 * A worker never reads the store itself: it asks the master over the control channel
 * (mg_gw_host_t.ask_master), which owns the queue files and the database connections and
 * answers asynchronously, so a slow database or a long scan never blocks a worker's loop.
 * While a question is out the request holds an mg_spend_q_t; if the client goes away first
 * the object outlives it and the late answer only frees it.
 */
#include "mg_gw.h"

#include "mg_admit.h"

#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../spend/mg_spend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef enum {
    MG_SR_LOGS_ROWS,
    MG_SR_LOGS_SUMMARY,
    MG_SR_GLOBAL,
    MG_SR_REPORT_TEAM,
    MG_SR_REPORT_CUSTOMER,
    MG_SR_REPORT_KEY,
    MG_SR_REPORT_TEAM_CUSTOMER,
    MG_SR_KEYS,
    MG_SR_MODELS,
} mg_sr_kind_t;

struct mg_spend_q_s {
    mg_request_t *r;                /* NULL once the request is gone */
    mg_sr_kind_t kind;
    int64_t end_day_us;             /* summarize: the days after the last one up to this */
    double max_budget;              /* /global/spend */
};
typedef struct mg_spend_q_s mg_spend_q_t;

/* ---- the row of one LLM call ------------------------------------------------------------
 *
 * THE ROW FILLER.  This fills what the gateway knows: the call id, who called (the key's hash,
 * alias, user, team, organization from r->who; LiteLLM's "default_user_id" for the master
 * key), the deployment that answered, usage, the cost budgets settle on (mg_admit_cost),
 * times, status, the request's "user" and tags, LiteLLM's metadata.  It is the one place the
 * gateway makes a spend row: change it here when a field's source changes.
 */

/* A JSON writer into a fixed buffer: no allocation on the request path. */
typedef struct {
    char *p;
    size_t n, cap;
    bool over;
} mg_sr_jw_t;

static void
mg_sr_jw_raw(mg_sr_jw_t *w, const char *s, size_t n)
{
    if (w->over || w->n + n > w->cap) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void
mg_sr_jw_lit(mg_sr_jw_t *w, const char *s)
{
    mg_sr_jw_raw(w, s, strlen(s));
}

static void
mg_sr_jw_str(mg_sr_jw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mg_sr_jw_raw(w, "\"", 1);
    for (size_t i = 0; i < n && !w->over; i++) {
        unsigned char c = (unsigned char) s[i];
        size_t j = i;
        while (j < n && (unsigned char) s[j] >= 0x20 && s[j] != '"' && s[j] != '\\') {
            j++;
        }
        if (j > i) {
            mg_sr_jw_raw(w, s + i, j - i); /* a run that needs no escape */
            i = j - 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char) c};
            mg_sr_jw_raw(w, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            mg_sr_jw_raw(w, e, 6);
        } else {
            mg_sr_jw_raw(w, (const char *) &c, 1);
        }
    }
    mg_sr_jw_raw(w, "\"", 1);
}

static void
mg_sr_jw_strz_or_null(mg_sr_jw_t *w, const char *s)
{
    if (s == NULL || s[0] == '\0') {
        mg_sr_jw_lit(w, "null");
    } else {
        mg_sr_jw_str(w, s, strlen(s));
    }
}

static const char *
mg_sr_call_type(const mg_request_t *r)
{
    if (r->api->id == MG_API_ANTHROPIC_MESSAGES) {
        return "anthropic_messages";
    }
    switch (r->api->op) {
    case MG_OP_COMPLETION:
        return "atext_completion";
    case MG_OP_EMBEDDINGS:
        return "aembedding";
    default:
        return "acompletion";
    }
}

static const char *
mg_sr_error_class(int status)
{
    switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 408: return "Timeout";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    case 499: return "ClientDisconnectedError";
    case 500: return "InternalServerError";
    case 503: return "ServiceUnavailableError";
    case 504: return "Timeout";
    default: return "APIError";
    }
}

/* The master key's hash (LiteLLM's api_key for master-key calls), cached per config. */
static const char *
mg_sr_master_hash(const mg_config_t *c)
{
    static const mg_config_t *cached;
    static char hash[65];
    if (c->master_key == NULL) {
        return NULL;
    }
    if (cached != c) {
        mg_sha256_hex(c->master_key, strlen(c->master_key), hash);
        cached = c;
    }
    return hash;
}

static bool
mg_sr_store_prompts(const mg_config_t *c)
{
    static const mg_config_t *cached;
    static bool on;
    if (cached != c) {
        on = json_is_true(json_object_get(c->general_settings, "store_prompts_in_spend_logs"));
        const char *e = getenv("STORE_PROMPTS_IN_SPEND_LOGS");
        on = on || (e != NULL && (strcasecmp(e, "true") == 0 || strcmp(e, "1") == 0));
        cached = c;
    }
    return on;
}

/* A monotonic microsecond time as wall-clock microseconds. */
static int64_t
mg_sr_real_us(int64_t mono_us, int64_t now_mono, int64_t now_real)
{
    return mono_us > 0 ? now_real - (now_mono - mono_us) : 0;
}

void
mg_gw_spend_record(mg_request_t *r, int status, const char *body, size_t len)
{
    if (!r->spend_armed || r->spend_done || r->api == NULL ||
        r->api->op == MG_OP_COUNT_TOKENS) {
        return;
    }
    r->spend_done = true;
    const mg_config_t *cfg = r->gw->config;
    const mg_deployment_t *d = r->dep;
    mg_spend_row_t row;
    mg_spend_row_init(&row);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_real = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t now_mono = mg_time_mono_us();
    row.rec.start_us = mg_sr_real_us(r->hr->start_us, now_mono, now_real);
    row.rec.end_us = now_real;
    row.rec.completion_start_us = r->stream && r->t_first_byte_us > 0
                                      ? mg_sr_real_us(r->t_first_byte_us, now_mono, now_real)
                                      : now_real;
    bool ok = status >= 200 && status < 300 && !r->stream_errored && !r->answer_error &&
              r->decode_error == NULL;
    row.rec.status = ok ? MG_SPEND_OK : MG_SPEND_FAILURE;
    row.rec.http_status = (uint16_t) (status > 0 && status < 1000 ? status : 0);
    row.rec.prompt_tokens = r->usage.prompt_tokens;
    row.rec.completion_tokens = r->usage.completion_tokens;
    row.rec.total_tokens = mg_usage_total(&r->usage);
    row.rec.cache_read_tokens = r->usage.cache_read_tokens;
    row.rec.cache_creation_tokens = r->usage.cache_creation_tokens;
    double cost = mg_admit_cost(r); /* what the budgets settled: the same number */
    row.rec.spend = cost > 0 ? cost : 0;
    mg_spend_row_setz(&row, MG_SPEND_F_REQUEST_ID, r->call_id);
    mg_spend_row_setz(&row, MG_SPEND_F_CALL_TYPE, mg_sr_call_type(r));
    const mg_vkey_t *k = r->who.key;
    const char *kh = r->who.token != NULL ? r->who.token
                     : r->who.master  ? mg_sr_master_hash(cfg)
                                      : NULL;
    const char *uid = k != NULL ? k->user_id : r->who.master ? "default_user_id" : NULL;
    const char *team = k != NULL ? k->team_id : NULL;
    const char *org = k != NULL ? k->org_id : NULL;
    if (org == NULL && r->who.team != NULL) {
        org = r->who.team->org_id;
    }
    const char *alias = k != NULL ? k->key_alias : NULL;
    const char *team_alias = r->who.team != NULL ? r->who.team->alias : NULL;
    mg_spend_row_setz(&row, MG_SPEND_F_API_KEY, kh);
    mg_spend_row_setz(&row, MG_SPEND_F_USER, uid);
    mg_spend_row_setz(&row, MG_SPEND_F_TEAM_ID, team);
    mg_spend_row_setz(&row, MG_SPEND_F_ORG_ID, org);
    mg_spend_row_setz(&row, MG_SPEND_F_KEY_ALIAS, alias);
    mg_spend_row_setz(&row, MG_SPEND_F_SESSION_ID, r->call_id);
    if (d != NULL) {
        mg_spend_row_setz(&row, MG_SPEND_F_MODEL,
                          r->upstream_model != NULL ? r->upstream_model : d->upstream_model);
        mg_spend_row_setz(&row, MG_SPEND_F_MODEL_ID, d->id);
        mg_spend_row_setz(&row, MG_SPEND_F_MODEL_GROUP, d->model_name);
        mg_spend_row_setz(&row, MG_SPEND_F_PROVIDER, d->provider);
        const char *base = d->prov != NULL ? mg_provider_base(d->prov, d) : d->api_base;
        if (base != NULL) {
            mg_spend_row_set(&row, MG_SPEND_F_API_BASE, base, strcspn(base, "?"));
        }
    } else {
        const char *g = r->primary_group != NULL ? r->primary_group : r->model;
        mg_spend_row_setz(&row, MG_SPEND_F_MODEL, r->model);
        mg_spend_row_setz(&row, MG_SPEND_F_MODEL_GROUP, g);
    }
    /* the request's "user": the end user */
    const mg_json_member_t *um = r->q.body != NULL ? mg_api_member(&r->q, "user") : NULL;
    char eu[260];
    if (um != NULL && um->type == MG_JSON_STRING && um->val_len < sizeof(eu)) {
        long n = mg_json_str_decode(um->val, um->val_len, eu);
        if (n > 0) {
            mg_spend_row_set(&row, MG_SPEND_F_END_USER, eu, (size_t) n);
        }
    }
    if (r->hr->peer != NULL) {
        /* "ip:port" or "[ip6]:port" */
        const char *p = r->hr->peer;
        bool v6 = p[0] == '[';
        mg_spend_row_set(&row, MG_SPEND_F_IP, p + v6, strcspn(p + v6, v6 ? "]" : ":"));
    }
    char buf[2048];
    mg_sr_jw_t w = {buf, 0, sizeof(buf), false};
    if (r->ntags > 0) {
        mg_sr_jw_lit(&w, "[");
        for (int i = 0; i < r->ntags; i++) {
            if (i > 0) {
                mg_sr_jw_lit(&w, ",");
            }
            mg_sr_jw_str(&w, r->tags[i], strlen(r->tags[i]));
        }
        mg_sr_jw_lit(&w, "]");
        mg_spend_row_set(&row, MG_SPEND_F_REQUEST_TAGS, buf, w.over ? SIZE_MAX / 2 : w.n);
    }
    /* LiteLLM's SpendLogsMetadata: the master adds the keys the row's fields give (the key's
     * hash, alias, team, org, user, ip, status); only what they do not give is written here,
     * so a successful call writes no JSON at all */
    w.n = 0;
    w.over = false;
    if (team_alias != NULL) {
        mg_sr_jw_lit(&w, "{\"user_api_key_team_alias\":");
        mg_sr_jw_str(&w, team_alias, strlen(team_alias));
    }
    if (!ok) {
        char code[16];
        int cl = snprintf(code, sizeof(code), "%d", status);
        mg_sr_jw_lit(&w, w.n == 0 ? "{" : ",");
        mg_sr_jw_lit(&w, "\"error_information\":{\"error_code\":");
        mg_sr_jw_str(&w, code, (size_t) cl);
        mg_sr_jw_lit(&w, ",\"error_class\":");
        const char *cls = r->answer_error || r->stream_errored ? "APIError"
                                                                : mg_sr_error_class(status);
        mg_sr_jw_str(&w, cls, strlen(cls));
        mg_sr_jw_lit(&w, ",\"llm_provider\":");
        mg_sr_jw_strz_or_null(&w, d != NULL ? d->provider : NULL);
        mg_sr_jw_lit(&w, ",\"error_message\":");
        /* the message the client got (already without secrets), cut short */
        mg_json_member_t e, msg;
        char text[400];
        long tn = -1;
        if (body != NULL && mg_json_obj_find(body, len, "error", &e) == 1 &&
            e.type == MG_JSON_OBJECT && mg_json_obj_find(e.val, e.val_len, "message", &msg) == 1 &&
            msg.type == MG_JSON_STRING && msg.val_len < sizeof(text)) {
            tn = mg_json_str_decode(msg.val, msg.val_len, text);
        }
        if (tn > 256) {
            tn = 256;
            while (tn > 0 && ((unsigned char) text[tn] & 0xC0) == 0x80) {
                tn--;
            }
        }
        if (tn >= 0) {
            mg_sr_jw_str(&w, text, (size_t) tn);
        } else {
            mg_sr_jw_lit(&w, "null");
        }
        mg_sr_jw_lit(&w, "}");
    }
    if (w.n > 0) {
        mg_sr_jw_lit(&w, "}");
        mg_spend_row_set(&row, MG_SPEND_F_METADATA, buf, w.over ? SIZE_MAX / 2 : w.n);
    }
    if (mg_sr_store_prompts(cfg)) {
        row.tail[0] = r->hr->body;
        row.tail_n[0] = r->hr->body != NULL ? r->hr->body_len : 0;
        row.tail[1] = body;
        row.tail_n[1] = body != NULL ? len : 0;
    }
    mg_spend_push(&row);
}

/* ---- the routes ---- */

static bool
mg_sr_path_is(const mg_request_t *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

bool
mg_spend_routes_known(const mg_request_t *r)
{
    return mg_sr_path_is(r, "/spend/logs") || mg_sr_path_is(r, "/global/spend") ||
           mg_sr_path_is(r, "/global/spend/report") || mg_sr_path_is(r, "/global/spend/keys") ||
           mg_sr_path_is(r, "/global/spend/models");
}

/* A query parameter (arena, percent-decoded), or NULL. */
static char *
mg_sr_param(mg_request_t *r, const char *name)
{
    const char *t = r->hr->head.target;
    size_t tl = r->hr->head.target_len;
    const char *q = memchr(t, '?', tl);
    if (q == NULL) {
        return NULL;
    }
    q++;
    const char *end = t + tl;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t) (end - q));
        const char *e = amp ? amp : end;
        if ((size_t) (e - q) >= nl + 1 && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            const char *v = q + nl + 1;
            char *out = mg_arena_alloc(r->arena, (size_t) (e - v) + 1);
            size_t o = 0;
            for (const char *p = v; p < e; p++) {
                if (*p == '%' && p + 2 < e) {
                    char hex[3] = {p[1], p[2], 0};
                    out[o++] = (char) strtol(hex, NULL, 16);
                    p += 2;
                } else if (*p == '+') {
                    out[o++] = ' ';
                } else {
                    out[o++] = *p;
                }
            }
            out[o] = '\0';
            return out;
        }
        q = e + 1;
    }
    return NULL;
}

/* "YYYY-MM-DD" (and an optional " HH:MM:SS" LiteLLM's UI sends) as microseconds (UTC). */
static bool
mg_sr_date(const char *s, int64_t *us)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y, mo, d, h = 0, mi = 0, se = 0;
    char tail;
    int n = sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &tail);
    if (!(n == 3 || n == 6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60 || strlen(s) != (n == 3 ? 10u : 19u)) {
        return false;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    *us = (int64_t) t * 1000000;
    return true;
}

/* An api_key parameter: a key ("sk-...") is hashed as LiteLLM stores it. */
static const char *
mg_sr_key_param(mg_request_t *r, const char *v)
{
    if (v == NULL || strncmp(v, "sk-", 3) != 0) {
        return v;
    }
    char *h = mg_arena_alloc(r->arena, 65);
    mg_sha256_hex(v, strlen(v), h);
    return h;
}

static bool
mg_sr_require_admin(mg_request_t *r)
{
    if (r->is_admin) {
        return true;
    }
    char *msg = mg_arena_printf(r->arena, "Authentication Error, Tried to access route=%.*s, "
                                          "which is only for MASTER KEY",
                                (int) r->path_len, r->path);
    mg_gw_error_raw(r, 401, msg, "\"auth_error\"", "\"None\"", NULL);
    return false;
}

static void
mg_sr_detail_error(mg_request_t *r, int status, const char *msg)
{
    mg_gw_detail(r, status, json_pack("{s:s}", "error", msg));
}

void
mg_spend_routes_abort(mg_request_t *r)
{
    if (r->spend_q != NULL) {
        r->spend_q->r = NULL;
        r->spend_q = NULL;
    }
}

/* ---- shaping the master's answers as LiteLLM answers ---- */

static double
mg_sr_num(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static const char *
mg_sr_s(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* /spend/logs?start_date&end_date (summarize): one object per day, then empty days up to
 * end_date after the last day with data, as LiteLLM's view_spend_logs builds them. */
static json_t *
mg_sr_summary(json_t *groups, int64_t end_day_us)
{
    json_t *days = json_object(); /* "YYYY-MM-DD" -> object, sorted below */
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        const char *day = mg_sr_s(g, "day");
        json_t *o = json_object_get(days, day);
        if (o == NULL) {
            o = json_pack("{s:{},s:{},s:f}", "users", "models", "spend", 0.0);
            json_object_set_new(days, day, o);
        }
        double sp = mg_sr_num(g, "spend");
        json_object_set_new(o, "spend", json_real(mg_sr_num(o, "spend") + sp));
        const char *key = mg_sr_s(g, "api_key");
        json_object_set_new(o, key, json_real(mg_sr_num(o, key) + sp));
        json_t *u = json_object_get(o, "users");
        json_object_set_new(u, mg_sr_s(g, "user"), json_real(mg_sr_num(u, mg_sr_s(g, "user")) + sp));
        json_t *mo = json_object_get(o, "models");
        json_object_set_new(mo, mg_sr_s(g, "model"),
                            json_real(mg_sr_num(mo, mg_sr_s(g, "model")) + sp));
    }
    /* sorted by day */
    size_t n = json_object_size(days);
    const char **keys = mg_xcalloc(n + 1, sizeof(*keys));
    const char *k;
    json_t *v;
    size_t x = 0;
    json_object_foreach(days, k, v) {
        keys[x++] = k;
    }
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *t = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = t;
        }
    }
    json_t *out = json_array();
    for (size_t a = 0; a < n; a++) {
        json_t *o = json_deep_copy(json_object_get(days, keys[a]));
        json_object_set_new(o, "startTime", json_string(keys[a]));
        json_array_append_new(out, o);
    }
    if (n > 0) {
        int64_t last;
        char last_day[16];
        snprintf(last_day, sizeof(last_day), "%s", keys[n - 1]);
        if (mg_sr_date(last_day, &last)) {
            for (int64_t d = last + 86400LL * 1000000; d <= end_day_us; d += 86400LL * 1000000) {
                time_t t = (time_t) (d / 1000000);
                struct tm tm;
                gmtime_r(&t, &tm);
                char s[16];
                snprintf(s, sizeof(s), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday);
                json_array_append_new(out, json_pack("{s:s,s:i,s:{},s:{}}", "startTime", s,
                                                     "spend", 0, "users", "models"));
            }
        }
    }
    free(keys);
    json_decref(days);
    return out;
}

/* /global/spend/report group_by team / customer / team+customer: per day, per group, the
 * (model, api_key) pairs. */
static json_t *
mg_sr_report_days(json_t *groups, mg_sr_kind_t kind)
{
    const char *list = kind == MG_SR_REPORT_TEAM       ? "teams"
                       : kind == MG_SR_REPORT_CUSTOMER ? "customers"
                                                       : "teams_customers";
    json_t *days = json_object();
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        const char *day = mg_sr_s(g, "day");
        json_t *dobj = json_object_get(days, day);
        if (dobj == NULL) {
            dobj = json_object();
            json_object_set_new(days, day, dobj);
        }
        char name[600];
        const char *alias = json_string_value(json_object_get(g, "team_alias"));
        const char *team = alias != NULL && alias[0] ? alias : "Unassigned Team";
        const char *customer = mg_sr_s(g, "end_user");
        if (kind == MG_SR_REPORT_CUSTOMER) {
            snprintf(name, sizeof(name), "%s", customer);
        } else if (kind == MG_SR_REPORT_TEAM) {
            snprintf(name, sizeof(name), "%s", team);
        } else {
            snprintf(name, sizeof(name), "%s\x1f%s", team, customer);
        }
        json_t *grp = json_object_get(dobj, name);
        if (grp == NULL) {
            if (kind == MG_SR_REPORT_CUSTOMER) {
                grp = json_pack("{s:s,s:f,s:[]}", "customer", customer, "total_spend", 0.0,
                                "metadata");
            } else if (kind == MG_SR_REPORT_TEAM) {
                grp = json_pack("{s:s,s:f,s:[]}", "team_name", team, "total_spend", 0.0,
                                "metadata");
            } else {
                grp = json_pack("{s:s,s:s,s:f,s:[]}", "team_name", team, "customer", customer,
                                "total_spend", 0.0, "metadata");
            }
            json_object_set_new(dobj, name, grp);
        }
        double sp = mg_sr_num(g, "spend");
        json_object_set_new(grp, "total_spend", json_real(mg_sr_num(grp, "total_spend") + sp));
        json_array_append_new(json_object_get(grp, "metadata"),
                              json_pack("{s:s,s:s,s:f,s:I}", "model", mg_sr_s(g, "model"),
                                        "api_key", mg_sr_s(g, "api_key"), "spend", sp,
                                        "total_tokens",
                                        (json_int_t) mg_sr_num(g, "total_tokens")));
    }
    json_t *out = json_array();
    const char *k;
    json_t *v;
    /* days in order */
    size_t n = json_object_size(days), x = 0;
    const char **keys = mg_xcalloc(n + 1, sizeof(*keys));
    json_object_foreach(days, k, v) {
        keys[x++] = k;
    }
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *t = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = t;
        }
    }
    for (size_t a = 0; a < n; a++) {
        json_t *arr = json_array();
        const char *gk;
        json_t *gv;
        json_object_foreach(json_object_get(days, keys[a]), gk, gv) {
            json_array_append(arr, gv);
        }
        char ts[40];
        snprintf(ts, sizeof(ts), "%sT00:00:00+00:00", keys[a]);
        json_array_append_new(out, json_pack("{s:s,s:o}", "group_by_day", ts, list, arr));
    }
    free(keys);
    json_decref(days);
    return out;
}

/* group_by api_key (and api_key= / internal_user_id=): per key, its models. */
static json_t *
mg_sr_report_keys(json_t *groups)
{
    json_t *keys = json_object();
    json_t *order = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        const char *key = mg_sr_s(g, "api_key");
        json_t *o = json_object_get(keys, key);
        if (o == NULL) {
            o = json_pack("{s:s,s:f,s:I,s:I,s:[]}", "api_key", key, "total_cost", 0.0,
                          "total_input_tokens", (json_int_t) 0, "total_output_tokens",
                          (json_int_t) 0, "model_details");
            json_object_set_new(keys, key, o);
            json_array_append(order, o);
        }
        double sp = mg_sr_num(g, "spend");
        json_int_t pt = (json_int_t) mg_sr_num(g, "prompt_tokens");
        json_int_t ct = (json_int_t) mg_sr_num(g, "completion_tokens");
        json_object_set_new(o, "total_cost", json_real(mg_sr_num(o, "total_cost") + sp));
        json_object_set_new(o, "total_input_tokens",
                            json_integer((json_int_t) mg_sr_num(o, "total_input_tokens") + pt));
        json_object_set_new(o, "total_output_tokens",
                            json_integer((json_int_t) mg_sr_num(o, "total_output_tokens") + ct));
        json_array_append_new(json_object_get(o, "model_details"),
                              json_pack("{s:s,s:f,s:I,s:I}", "model", mg_sr_s(g, "model"),
                                        "total_cost", sp, "total_input_tokens", pt,
                                        "total_output_tokens", ct));
    }
    json_decref(keys);
    /* by total_cost, largest first */
    size_t n = json_array_size(order);
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0; b--) {
            json_t *x = json_array_get(order, b - 1), *y = json_array_get(order, b);
            if (mg_sr_num(x, "total_cost") >= mg_sr_num(y, "total_cost")) {
                break;
            }
            json_incref(x);
            json_array_set(order, b - 1, y);
            json_array_set_new(order, b, x);
        }
    }
    return order;
}

static void
mg_sr_answer(void *ud, json_t *answer)
{
    mg_spend_q_t *q = ud;
    mg_request_t *r = q->r;
    if (r == NULL) {
        free(q);
        return;
    }
    r->spend_q = NULL;
    r->state = MG_ATT_DONE;
    mg_sr_kind_t kind = q->kind;
    int64_t end_day = q->end_day_us;
    double max_budget = q->max_budget;
    free(q);
    if (answer == NULL) {
        mg_gw_error(r, 503, "the master process went away", "internal_error", NULL, NULL);
        return;
    }
    if (!json_is_true(json_object_get(answer, "ok"))) {
        int st = (int) json_integer_value(json_object_get(answer, "status"));
        const char *e = json_string_value(json_object_get(answer, "error"));
        char *msg = mg_arena_printf(r->arena, "%.*s Error: %s", (int) r->path_len, r->path,
                                    e ? e : "failed");
        mg_gw_error(r, st >= 400 && st < 600 ? st : 500, msg, "internal_error", "None", NULL);
        return;
    }
    json_t *res = json_object_get(answer, "result");
    json_t *out = NULL;
    size_t i;
    json_t *g;
    switch (kind) {
    case MG_SR_LOGS_ROWS:
        out = json_incref(res);
        break;
    case MG_SR_LOGS_SUMMARY:
        out = mg_sr_summary(res, end_day);
        break;
    case MG_SR_GLOBAL:
        out = json_pack("{s:f,s:f}", "spend", mg_sr_num(json_array_get(res, 0), "spend"),
                        "max_budget", max_budget);
        break;
    case MG_SR_REPORT_TEAM:
    case MG_SR_REPORT_CUSTOMER:
    case MG_SR_REPORT_TEAM_CUSTOMER:
        out = mg_sr_report_days(res, kind);
        break;
    case MG_SR_REPORT_KEY:
        out = mg_sr_report_keys(res);
        break;
    case MG_SR_KEYS:
        out = json_array();
        json_array_foreach(res, i, g) {
            const char *key = mg_sr_s(g, "api_key");
            const char *alias = json_string_value(json_object_get(g, "key_alias"));
            const char *team = json_string_value(json_object_get(g, "team_id_max"));
            json_array_append_new(out, json_pack("{s:s,s:f,s:s,s:s,s:s}", "api_key", key,
                                                 "total_spend", mg_sr_num(g, "spend"), "team_id",
                                                 team ? team : "", "key_alias",
                                                 alias ? alias : "", "key_name", key));
        }
        break;
    case MG_SR_MODELS:
        out = json_array();
        json_array_foreach(res, i, g) {
            json_array_append_new(out, json_pack("{s:s,s:f}", "model", mg_sr_s(g, "model"),
                                                 "total_spend", mg_sr_num(g, "spend")));
        }
        break;
    }
    mg_gw_json(r, 200, out);
    json_decref(out);
}

/* Sends the query to the master; the answer comes to mg_sr_answer. */
static void
mg_sr_ask(mg_request_t *r, mg_sr_kind_t kind, json_t *query, int64_t end_day, double max_budget)
{
    if (r->gw->host.ask_master == NULL) {
        json_decref(query);
        mg_gw_error(r, 503, "spend logs need the master process", "internal_error", NULL, NULL);
        return;
    }
    mg_spend_q_t *q = mg_xcalloc(1, sizeof(*q));
    q->r = r;
    q->kind = kind;
    q->end_day_us = end_day;
    q->max_budget = max_budget;
    r->spend_q = q;
    r->state = MG_ATT_ASYNC;
    json_t *msg = json_pack("{s:s,s:o}", "op", "spend_query", "q", query);
    r->gw->host.ask_master(r->gw->host.host, msg, mg_sr_answer, q);
    json_decref(msg);
}

static json_t *
mg_sr_query(const char *kind, json_t *filter, const char *const *dims, int limit)
{
    json_t *d = json_array();
    for (int i = 0; dims != NULL && dims[i] != NULL; i++) {
        json_array_append_new(d, json_string(dims[i]));
    }
    json_t *q = json_pack("{s:s,s:o,s:o}", "kind", kind, "filter", filter ? filter : json_object(),
                          "dims", d);
    if (limit > 0) {
        json_object_set_new(q, "limit", json_integer(limit));
    }
    return q;
}

static void
mg_sr_setstr(json_t *f, const char *k, const char *v)
{
    if (v != NULL) {
        json_object_set_new(f, k, json_string(v));
    }
}

static int64_t
mg_sr_today_us(void)
{
    int64_t now = mg_time_real_ms() / 1000;
    return (now - now % 86400) * 1000000;
}

static void
mg_sr_logs(mg_request_t *r)
{
    const char *api_key = mg_sr_key_param(r, mg_sr_param(r, "api_key"));
    const char *user = mg_sr_param(r, "user_id");
    const char *rid = mg_sr_param(r, "request_id");
    const char *sd = mg_sr_param(r, "start_date"), *ed = mg_sr_param(r, "end_date");
    const char *sum = mg_sr_param(r, "summarize");
    json_t *f = json_object();
    if (sd != NULL && ed != NULL) {
        int64_t from, to;
        if (!mg_sr_date(sd, &from) || !mg_sr_date(ed, &to)) {
            json_decref(f);
            mg_gw_error(r, 400, "/spend/logs Error: start_date and end_date must be YYYY-MM-DD",
                        "internal_error", "None", NULL);
            return;
        }
        json_object_set_new(f, "from_us", json_integer(from));
        json_object_set_new(f, "to_us", json_integer(to));
        json_object_set_new(f, "to_inclusive", json_true());
        /* LiteLLM takes one of them, in this order */
        if (api_key != NULL) {
            mg_sr_setstr(f, "api_key", api_key);
        } else if (rid != NULL) {
            mg_sr_setstr(f, "request_id", rid);
        } else if (user != NULL) {
            mg_sr_setstr(f, "user", user);
        }
        bool summarize = sum == NULL || !(strcasecmp(sum, "false") == 0 || strcmp(sum, "0") == 0);
        if (!summarize) {
            mg_sr_ask(r, MG_SR_LOGS_ROWS, mg_sr_query("rows", f, NULL, 0), 0, 0);
            return;
        }
        static const char *const dims[] = {"day", "api_key", "user", "model", NULL};
        mg_sr_ask(r, MG_SR_LOGS_SUMMARY, mg_sr_query("agg", f, dims, 0), to, 0);
        return;
    }
    if (api_key != NULL) {
        mg_sr_setstr(f, "api_key", api_key);
    } else if (rid != NULL) {
        mg_sr_setstr(f, "request_id", rid);
    } else if (user != NULL) {
        mg_sr_setstr(f, "user", user);
    }
    mg_sr_ask(r, MG_SR_LOGS_ROWS, mg_sr_query("rows", f, NULL, 0), 0, 0);
}

static void
mg_sr_report(mg_request_t *r)
{
    const char *sd = mg_sr_param(r, "start_date"), *ed = mg_sr_param(r, "end_date");
    int64_t from, to;
    if (sd == NULL || ed == NULL) {
        mg_sr_detail_error(r, 400, "Please provide start_date and end_date");
        return;
    }
    if (!mg_sr_date(sd, &from) || !mg_sr_date(ed, &to)) {
        mg_sr_detail_error(r, 400, "start_date and end_date must be YYYY-MM-DD");
        return;
    }
    const char *group_by = mg_sr_param(r, "group_by");
    const char *api_key = mg_sr_key_param(r, mg_sr_param(r, "api_key"));
    const char *uid = mg_sr_param(r, "internal_user_id");
    const char *team = mg_sr_param(r, "team_id"), *customer = mg_sr_param(r, "customer_id");
    json_t *f = json_pack("{s:I,s:I,s:b}", "from_us", (json_int_t) from, "to_us", (json_int_t) to,
                          "to_inclusive", 1);
    static const char *const key_dims[] = {"api_key", "model", NULL};
    if (api_key != NULL || uid != NULL) {
        mg_sr_setstr(f, api_key != NULL ? "api_key" : "user", api_key != NULL ? api_key : uid);
        mg_sr_ask(r, MG_SR_REPORT_KEY, mg_sr_query("agg", f, key_dims, 0), 0, 0);
        return;
    }
    if (team != NULL && customer != NULL) {
        /* LiteLLM's get_spend_by_team_and_customer: the end date's whole day */
        json_object_set_new(f, "to_us", json_integer(to + 86400LL * 1000000));
        json_object_set_new(f, "to_inclusive", json_false());
        mg_sr_setstr(f, "team_id", team);
        mg_sr_setstr(f, "end_user", customer);
        static const char *const d[] = {"day", "team_id", "end_user", "model", "api_key", NULL};
        mg_sr_ask(r, MG_SR_REPORT_TEAM_CUSTOMER, mg_sr_query("agg", f, d, 0), 0, 0);
        return;
    }
    if (group_by == NULL || strcmp(group_by, "team") == 0) {
        static const char *const d[] = {"day", "team_id", "model", "api_key", NULL};
        mg_sr_ask(r, MG_SR_REPORT_TEAM, mg_sr_query("agg", f, d, 0), 0, 0);
    } else if (strcmp(group_by, "customer") == 0) {
        static const char *const d[] = {"day", "end_user", "model", "api_key", NULL};
        mg_sr_ask(r, MG_SR_REPORT_CUSTOMER, mg_sr_query("agg", f, d, 0), 0, 0);
    } else if (strcmp(group_by, "api_key") == 0) {
        mg_sr_ask(r, MG_SR_REPORT_KEY, mg_sr_query("agg", f, key_dims, 0), 0, 0);
    } else {
        json_decref(f);
        /* FastAPI's validation of Literal["team", "customer", "api_key"] */
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s,s:s}]", "type", "literal_error", "loc",
                                       "query", "group_by", "msg",
                                       "Input should be 'team', 'customer' or 'api_key'",
                                       "input", group_by));
    }
}

static bool
mg_sr_limit(mg_request_t *r, int def, int *out)
{
    const char *l = mg_sr_param(r, "limit");
    *out = def;
    if (l == NULL) {
        return true;
    }
    char *end;
    long v = strtol(l, &end, 10);
    if (*end != '\0' || end == l || v < 1) {
        char *m = mg_arena_printf(r->arena, "Invalid limit: %s, error: Limit must be greater "
                                            "than 0", l);
        mg_sr_detail_error(r, 422, m);
        return false;
    }
    *out = v > 100000 ? 100000 : (int) v;
    return true;
}

bool
mg_spend_routes_handle(mg_request_t *r, const char *m, size_t ml)
{
    if (!mg_spend_routes_known(r)) {
        return false;
    }
    if (!((ml == 3 && memcmp(m, "GET", 3) == 0) || (ml == 4 && memcmp(m, "HEAD", 4) == 0))) {
        mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
        return true;
    }
    if (!mg_sr_require_admin(r)) {
        return true;
    }
    int64_t day = 86400LL * 1000000;
    if (mg_sr_path_is(r, "/spend/logs")) {
        mg_sr_logs(r);
    } else if (mg_sr_path_is(r, "/global/spend")) {
        /* LiteLLM's MonthlyGlobalSpend: since the first of this month */
        time_t now = (time_t) (mg_time_real_ms() / 1000);
        struct tm tm;
        gmtime_r(&now, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        json_t *f = json_pack("{s:I}", "from_us", (json_int_t) timegm(&tm) * 1000000);
        json_t *mb = json_object_get(r->gw->config->litellm_settings, "max_budget");
        mg_sr_ask(r, MG_SR_GLOBAL, mg_sr_query("agg", f, NULL, 0), 0,
                  json_is_number(mb) ? json_number_value(mb) : 0.0);
    } else if (mg_sr_path_is(r, "/global/spend/report")) {
        mg_sr_report(r);
    } else if (mg_sr_path_is(r, "/global/spend/keys")) {
        int limit;
        if (mg_sr_limit(r, 0, &limit)) {
            json_t *f = json_pack("{s:I}", "from_us", (json_int_t) (mg_sr_today_us() - 30 * day));
            static const char *const d[] = {"api_key", NULL};
            mg_sr_ask(r, MG_SR_KEYS, mg_sr_query("agg", f, d, limit), 0, 0);
        }
    } else {
        int limit;
        if (mg_sr_limit(r, 10, &limit)) {
            json_t *f = json_pack("{s:I}", "from_us", (json_int_t) (mg_sr_today_us() - 30 * day));
            static const char *const d[] = {"model", NULL};
            mg_sr_ask(r, MG_SR_MODELS, mg_sr_query("agg", f, d, limit), 0, 0);
        }
    }
    return true;
}
