/*
 * mg_spend_query.c -- see mg_spend_query.h.
 *
 * Owns: the queries in flight (a FIFO: PostgreSQL queries run one at a time on the reader
 * connection; embedded scans run in turns, one slice each per loop turn).  A job holds a
 * reference on its query JSON and frees itself after its reply.
 */
#include "mg_spend_query.h"

#include "mg_spend_sql.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_SPEND_Q_TIMEOUT_MS 30000
#define MG_SPEND_Q_SLICE_BYTES (4u * 1024 * 1024)
#define MG_SPEND_Q_SLICE_RECORDS 20000
#define MG_SPEND_Q_MAX_DIMS 8
#define MG_SPEND_Q_MAX_GROUPS 200000

typedef enum { MG_QF_API_KEY, MG_QF_USER, MG_QF_REQUEST_ID, MG_QF_TEAM, MG_QF_END_USER, MG_QF__N } mg_qf_t;

static const char *const mg_qf_names[MG_QF__N] = {"api_key", "user", "request_id", "team_id",
                                                  "end_user"};
static const mg_spend_field_t mg_qf_fields[MG_QF__N] = {
    MG_SPEND_F_API_KEY, MG_SPEND_F_USER, MG_SPEND_F_REQUEST_ID, MG_SPEND_F_TEAM_ID,
    MG_SPEND_F_END_USER,
};
static const char *const mg_qf_cols[MG_QF__N] = {"s.api_key", "s.\"user\"", "s.request_id",
                                                 "s.team_id", "s.end_user"};

/* dimensions: name, embedded field (or -1 for day), SQL expression */
static const struct {
    const char *name;
    int field;
    const char *sql;
} mg_qdims[] = {
    {"day", -1, "to_char(date_trunc('day', s.\"startTime\"), 'YYYY-MM-DD')"},
    {"api_key", MG_SPEND_F_API_KEY, "s.api_key"},
    {"user", MG_SPEND_F_USER, "s.\"user\""},
    {"model", MG_SPEND_F_MODEL, "s.model"},
    {"model_group", MG_SPEND_F_MODEL_GROUP, "s.model_group"},
    {"team_id", MG_SPEND_F_TEAM_ID, "s.team_id"},
    {"end_user", MG_SPEND_F_END_USER, "s.end_user"},
};
#define MG_QDIMS (sizeof(mg_qdims) / sizeof(mg_qdims[0]))

typedef struct {
    int64_t start_us;
    json_t *row;                    /* owned */
} mg_qrow_t;

typedef struct {
    char *dims[MG_SPEND_Q_MAX_DIMS];    /* owned */
    double spend;
    int64_t pt, ct, tt, n;
    char key_alias[256];
    char team[128];
} mg_qgroup_t;

struct mg_spend_qjob_s {
    mg_spend_qjob_t *next;
    mg_spend_qenv_t env;
    json_t *q;                      /* ref */
    mg_spend_reply_fn reply;
    void *ctx;
    bool agg;
    int64_t from_us, to_us;         /* 0: unbounded */
    bool to_inclusive;
    const char *fv[MG_QF__N];       /* borrowed from q: filter values or NULL */
    int dims[MG_SPEND_Q_MAX_DIMS];
    int ndims;
    int limit;
    struct event *ev;               /* owned: scan slices, PostgreSQL wait timeout */
    int64_t deadline_ms;
    /* embedded */
    mg_sq_reader_t rd;
    bool rd_on;
    mg_qrow_t *rows;                /* owned */
    size_t nrows, caprows;
    mg_map_t groups;                /* key -> mg_qgroup_t* (owned) */
    mg_buf_t key;
    /* postgres */
    bool pg_sent;
    bool team_join;
    char bad[128];                  /* the query cannot be run: why (answered with 400) */
};

static mg_spend_qjob_t *mg_qjobs;   /* owned: every job in flight, FIFO */

static void mg_spend_q_pg_next(void);

/* ---- jobs ---- */

static void
mg_spend_q_unlink(mg_spend_qjob_t *j)
{
    for (mg_spend_qjob_t **pp = &mg_qjobs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            return;
        }
    }
}

static void
mg_spend_q_free(mg_spend_qjob_t *j)
{
    if (j->ev != NULL) {
        event_free(j->ev);
    }
    if (j->rd_on) {
        mg_sq_reader_free(&j->rd);
    }
    for (size_t i = 0; i < j->nrows; i++) {
        json_decref(j->rows[i].row);
    }
    free(j->rows);
    for (size_t i = 0; i < j->groups.cap; i++) {
        mg_qgroup_t *g = j->groups.slots != NULL ? j->groups.slots[i].val : NULL;
        if (g != NULL) {
            for (int d = 0; d < MG_SPEND_Q_MAX_DIMS; d++) {
                free(g->dims[d]);
            }
            free(g);
        }
    }
    mg_map_free(&j->groups);
    mg_buf_free(&j->key);
    json_decref(j->q);
    free(j);
}

/* Replies and frees the job. */
static void
mg_spend_q_finish(mg_spend_qjob_t *j, json_t *result, int status, const char *error)
{
    mg_spend_q_unlink(j);
    json_t *a = result != NULL ? json_pack("{s:b,s:o}", "ok", 1, "result", result)
                               : json_pack("{s:b,s:i,s:s}", "ok", 0, "status", status, "error",
                                           error != NULL ? error : "error");
    j->reply(j->ctx, a);
    json_decref(a);
    mg_spend_q_free(j);
}

static int
mg_spend_q_parse(mg_spend_qjob_t *j, char *err, size_t errlen)
{
    const char *kind = json_string_value(json_object_get(j->q, "kind"));
    if (kind == NULL || (strcmp(kind, "rows") != 0 && strcmp(kind, "agg") != 0)) {
        snprintf(err, errlen, "unknown spend query kind");
        return MG_ERROR;
    }
    j->agg = strcmp(kind, "agg") == 0;
    json_t *f = json_object_get(j->q, "filter");
    j->from_us = json_integer_value(json_object_get(f, "from_us"));
    j->to_us = json_integer_value(json_object_get(f, "to_us"));
    j->to_inclusive = json_is_true(json_object_get(f, "to_inclusive"));
    for (int i = 0; i < MG_QF__N; i++) {
        j->fv[i] = json_string_value(json_object_get(f, mg_qf_names[i]));
    }
    json_t *dims = json_object_get(j->q, "dims");
    size_t i;
    json_t *d;
    json_array_foreach(dims, i, d) {
        const char *n = json_string_value(d);
        int k = -1;
        for (size_t x = 0; n != NULL && x < MG_QDIMS; x++) {
            if (strcmp(mg_qdims[x].name, n) == 0) {
                k = (int) x;
            }
        }
        if (k < 0 || j->ndims >= MG_SPEND_Q_MAX_DIMS) {
            snprintf(err, errlen, "unknown spend dimension \"%s\"", n ? n : "?");
            return MG_ERROR;
        }
        j->dims[j->ndims++] = k;
    }
    json_int_t lim = json_integer_value(json_object_get(j->q, "limit"));
    j->limit = lim > 0 && lim < MG_SPEND_QUERY_MAX_ROWS ? (int) lim : MG_SPEND_QUERY_MAX_ROWS;
    return MG_OK;
}

/* ---- embedded: scanning the log ---- */

static bool
mg_spend_q_streq(const mg_spend_rec_t *rec, mg_spend_field_t f, const char *want)
{
    size_t n;
    const char *s = mg_spend_rec_str(rec, f, &n);
    return strlen(want) == n && memcmp(s, want, n) == 0;
}

static bool
mg_spend_q_match(const mg_spend_qjob_t *j, const mg_spend_rec_t *rec)
{
    if (rec->start_us < j->env.hide_before_us) {
        return false;
    }
    if (j->from_us != 0 && rec->start_us < j->from_us) {
        return false;
    }
    if (j->to_us != 0 && (j->to_inclusive ? rec->start_us > j->to_us : rec->start_us >= j->to_us)) {
        return false;
    }
    for (int i = 0; i < MG_QF__N; i++) {
        if (j->fv[i] != NULL && !mg_spend_q_streq(rec, mg_qf_fields[i], j->fv[i])) {
            return false;
        }
    }
    return true;
}

static int
mg_spend_q_row_cmp(const void *a, const void *b)
{
    const mg_qrow_t *x = a, *y = b;
    return x->start_us > y->start_us ? -1 : x->start_us < y->start_us;
}

static void
mg_spend_q_trim(mg_spend_qjob_t *j)
{
    qsort(j->rows, j->nrows, sizeof(*j->rows), mg_spend_q_row_cmp);
    while (j->nrows > (size_t) j->limit) {
        json_decref(j->rows[--j->nrows].row);
    }
}

static void
mg_spend_q_add_row(mg_spend_qjob_t *j, const mg_spend_rec_t *rec)
{
    if (j->nrows == j->caprows) {
        j->caprows = j->caprows ? j->caprows * 2 : 256;
        j->rows = mg_xrealloc(j->rows, j->caprows * sizeof(*j->rows));
    }
    j->rows[j->nrows].start_us = rec->start_us;
    j->rows[j->nrows].row = mg_spend_row_api(rec, j->env.store_prompts);
    j->nrows++;
    if (j->nrows >= (size_t) j->limit * 2 && j->nrows >= 1024) {
        mg_spend_q_trim(j);
    }
}

static void
mg_spend_q_max(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap) {
        return;
    }
    size_t dl = strlen(dst);
    int c = memcmp(s, dst, n < dl ? n : dl);
    if (dl == 0 || c > 0 || (c == 0 && n > dl)) {
        memcpy(dst, s, n);
        dst[n] = '\0';
    }
}

static void
mg_spend_q_add_agg(mg_spend_qjob_t *j, const mg_spend_rec_t *rec)
{
    char day[16];
    const char *v[MG_SPEND_Q_MAX_DIMS];
    size_t vn[MG_SPEND_Q_MAX_DIMS];
    mg_buf_reset(&j->key);
    for (int d = 0; d < j->ndims; d++) {
        int f = mg_qdims[j->dims[d]].field;
        if (f < 0) {
            mg_spend_fmt_day(rec->start_us, day, sizeof(day));
            v[d] = day;
            vn[d] = strlen(day);
        } else {
            v[d] = mg_spend_rec_str(rec, (mg_spend_field_t) f, &vn[d]);
        }
        mg_buf_append(&j->key, v[d], vn[d]);
        mg_buf_append(&j->key, "\x1f", 1);
    }
    const char *kp = j->key.data != NULL ? mg_buf_head(&j->key) : "";
    mg_qgroup_t *g = mg_map_get(&j->groups, kp, mg_buf_len(&j->key));
    if (g == NULL) {
        if (j->groups.count >= MG_SPEND_Q_MAX_GROUPS) {
            return;
        }
        g = mg_xcalloc(1, sizeof(*g));
        for (int d = 0; d < j->ndims; d++) {
            g->dims[d] = mg_xstrndup(v[d], vn[d]);
        }
        mg_map_put(&j->groups, kp, mg_buf_len(&j->key), g);
    }
    g->spend += rec->spend == rec->spend ? rec->spend : 0;
    g->pt += rec->prompt_tokens;
    g->ct += rec->completion_tokens;
    g->tt += rec->total_tokens > 0 ? rec->total_tokens
                                   : rec->prompt_tokens + rec->completion_tokens;
    g->n++;
    size_t n;
    const char *s = mg_spend_rec_str(rec, MG_SPEND_F_KEY_ALIAS, &n);
    mg_spend_q_max(g->key_alias, sizeof(g->key_alias), s, n);
    s = mg_spend_rec_str(rec, MG_SPEND_F_TEAM_ID, &n);
    mg_spend_q_max(g->team, sizeof(g->team), s, n);
}

static int
mg_spend_q_group_cmp(const void *a, const void *b)
{
    const mg_qgroup_t *x = *(mg_qgroup_t *const *) a, *y = *(mg_qgroup_t *const *) b;
    return x->spend > y->spend ? -1 : x->spend < y->spend;
}

static json_t *
mg_spend_q_agg_result(mg_spend_qjob_t *j)
{
    json_t *a = json_array();
    size_t n = 0;
    mg_qgroup_t **gs = mg_xcalloc(j->groups.count + 1, sizeof(*gs));
    for (size_t i = 0; i < j->groups.cap; i++) {
        if (j->groups.slots[i].key != NULL) {
            gs[n++] = j->groups.slots[i].val;
        }
    }
    qsort(gs, n, sizeof(*gs), mg_spend_q_group_cmp);
    if (j->ndims == 0 && n == 0) {
        json_array_append_new(a, json_pack("{s:f,s:i,s:i,s:i,s:i,s:n,s:n,s:n}", "spend", 0.0,
                                           "prompt_tokens", 0, "completion_tokens", 0,
                                           "total_tokens", 0, "requests", 0, "key_alias",
                                           "team_id_max", "team_alias"));
    }
    for (size_t i = 0; i < n && i < (size_t) j->limit; i++) {
        mg_qgroup_t *g = gs[i];
        json_t *o = json_object();
        for (int d = 0; d < j->ndims; d++) {
            json_object_set_new(o, mg_qdims[j->dims[d]].name, json_string(g->dims[d]));
        }
        json_object_set_new(o, "spend", json_real(g->spend));
        json_object_set_new(o, "prompt_tokens", json_integer(g->pt));
        json_object_set_new(o, "completion_tokens", json_integer(g->ct));
        json_object_set_new(o, "total_tokens", json_integer(g->tt));
        json_object_set_new(o, "requests", json_integer(g->n));
        json_object_set_new(o, "key_alias", g->key_alias[0] ? json_string(g->key_alias)
                                                            : json_null());
        json_object_set_new(o, "team_id_max", g->team[0] ? json_string(g->team) : json_null());
        /* the embedded log knows no team aliases: the team's id names it */
        json_object_set_new(o, "team_alias", g->team[0] ? json_string(g->team) : json_null());
        json_array_append_new(a, o);
    }
    free(gs);
    return a;
}

static void
mg_spend_q_scan_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spend_qjob_t *j = arg;
    if (j->env.q == NULL) {
        mg_spend_q_finish(j, NULL, 503, "the embedded spend log is unavailable (see "
                                        "/moongate/state spend)");
        return;
    }
    if (!j->rd_on) {
        mg_sq_reader_init(&j->rd, j->env.q, mg_sq_begin(j->env.q));
        j->rd_on = true;
    }
    size_t bytes = 0;
    int records = 0;
    for (;;) {
        mg_sq_rec_t rec;
        mg_err_t err;
        int rc = mg_sq_next(&j->rd, &rec, &err);
        if (rc == MG_DECLINED) {
            break;
        }
        if (rc != MG_OK) {
            mg_spend_q_finish(j, NULL, 500, err.msg);
            return;
        }
        const char *uid;
        const mg_spend_rec_t *r = mg_spend_payload_rec(rec.payload, rec.len, &uid);
        if (r != NULL && mg_spend_q_match(j, r)) {
            if (j->agg) {
                mg_spend_q_add_agg(j, r);
            } else {
                mg_spend_q_add_row(j, r);
            }
        }
        bytes += rec.len;
        if (++records >= MG_SPEND_Q_SLICE_RECORDS || bytes >= MG_SPEND_Q_SLICE_BYTES) {
            event_active(j->ev, EV_TIMEOUT, 1); /* the rest on the next turn */
            return;
        }
    }
    json_t *result;
    if (j->agg) {
        result = mg_spend_q_agg_result(j);
    } else {
        mg_spend_q_trim(j);
        result = json_array();
        for (size_t i = 0; i < j->nrows; i++) {
            json_array_append(result, j->rows[i].row);
        }
    }
    mg_spend_q_finish(j, result, 200, NULL);
}

/* ---- postgres ---- */

static void
mg_spend_q_param(char **params, int *n, mg_buf_t *sql, const char *fmt, const char *value)
{
    params[*n] = mg_xstrdup(value);
    (*n)++;
    mg_buf_printf(sql, fmt, *n);
}

int
mg_spend_query_sql(json_t *q, bool team_join, mg_buf_t *sql, char **params, int *nparams,
                   mg_err_t *err)
{
    mg_spend_qjob_t j;
    memset(&j, 0, sizeof(j));
    j.q = q;
    char e[128];
    if (mg_spend_q_parse(&j, e, sizeof(e)) != MG_OK) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "%s", e);
    }
    *nparams = 0;
    mg_buf_t where = MG_BUF_INIT;
    mg_buf_append_str(&where, " WHERE true");
    char t[40];
    if (j.from_us != 0) {
        mg_spend_fmt_time(j.from_us, t, sizeof(t));
        mg_spend_q_param(params, nparams, &where, " AND s.\"startTime\" >= $%d::timestamp", t);
    }
    if (j.to_us != 0) {
        mg_spend_fmt_time(j.to_us, t, sizeof(t));
        mg_spend_q_param(params, nparams, &where,
                         j.to_inclusive ? " AND s.\"startTime\" <= $%d::timestamp"
                                        : " AND s.\"startTime\" < $%d::timestamp",
                         t);
    }
    for (int i = 0; i < MG_QF__N; i++) {
        if (j.fv[i] != NULL) {
            char f[64];
            snprintf(f, sizeof(f), " AND %s = $%%d", mg_qf_cols[i]);
            mg_spend_q_param(params, nparams, &where, f, j.fv[i]);
        }
    }
    if (!j.agg) {
        mg_buf_printf(sql, "SELECT coalesce(json_agg(to_jsonb(s) ORDER BY s.\"startTime\" DESC), "
                           "'[]')::text FROM (SELECT s.* FROM \"LiteLLM_SpendLogs\" s%s ORDER BY "
                           "s.\"startTime\" DESC LIMIT %d) s",
                      mg_buf_cstr(&where), j.limit);
        mg_buf_free(&where);
        return MG_OK;
    }
    mg_buf_append_str(sql, "SELECT coalesce(json_agg(t ORDER BY t.spend DESC), '[]')::text FROM "
                           "(SELECT ");
    for (int d = 0; d < j.ndims; d++) {
        mg_buf_printf(sql, "%s AS \"%s\", ", mg_qdims[j.dims[d]].sql, mg_qdims[j.dims[d]].name);
    }
    mg_buf_append_str(sql, "coalesce(sum(s.spend), 0)::float8 AS spend, "
                           "coalesce(sum(s.prompt_tokens), 0)::bigint AS prompt_tokens, "
                           "coalesce(sum(s.completion_tokens), 0)::bigint AS completion_tokens, "
                           "coalesce(sum(s.total_tokens), 0)::bigint AS total_tokens, "
                           "count(*) AS requests, "
                           "max(s.metadata->>'user_api_key_alias') AS key_alias, "
                           "max(s.team_id) AS team_id_max, ");
    mg_buf_append_str(sql, team_join ? "max(tt.team_alias) AS team_alias"
                                     : "NULL::text AS team_alias");
    mg_buf_append_str(sql, " FROM \"LiteLLM_SpendLogs\" s");
    if (team_join) {
        mg_buf_append_str(sql, " LEFT JOIN \"LiteLLM_TeamTable\" tt ON tt.team_id = s.team_id");
    }
    mg_buf_append_str(sql, mg_buf_cstr(&where));
    mg_buf_free(&where);
    if (j.ndims > 0) {
        mg_buf_append_str(sql, " GROUP BY ");
        for (int d = 0; d < j.ndims; d++) {
            mg_buf_printf(sql, "%s%d", d > 0 ? ", " : "", d + 1);
        }
    }
    mg_buf_printf(sql, " ORDER BY spend DESC LIMIT %d) t", j.limit);
    return MG_OK;
}

/* "2026-12-07T10:00:00.123" -> "2026-12-07T10:00:00.123000+00:00" */
static void
mg_spend_q_fix_time(json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    if (s == NULL || strlen(s) < 19 || strlen(s) > 40 || strchr(s, '+') != NULL) {
        return;
    }
    char out[64];
    const char *dot = strchr(s, '.');
    char frac[8] = "000000";
    if (dot != NULL) {
        size_t n = strlen(dot + 1);
        memcpy(frac, dot + 1, n > 6 ? 6 : n);
    }
    snprintf(out, sizeof(out), "%.19s.%s+00:00", s, frac);
    json_object_set_new(row, key, json_string(out));
}

static void mg_spend_q_pg_send(mg_spend_qjob_t *j);

static void
mg_spend_q_pg_done(void *ud, PGresult *res, const char *err, const char *sqlstate)
{
    mg_spend_qjob_t *j = ud;
    if (err != NULL) {
        if (j->team_join && strcmp(sqlstate, "42P01") == 0) {
            j->team_join = false; /* no LiteLLM_TeamTable: the same without team aliases */
            j->pg_sent = false;
            mg_spend_q_pg_next();
            return;
        }
        char m[600];
        snprintf(m, sizeof(m), "database error (SQLSTATE %s): %s", sqlstate[0] ? sqlstate : "?",
                 err);
        bool down = strcmp(sqlstate, "08006") == 0;
        mg_spend_q_finish(j, NULL, down ? 503 : 500, m);
        mg_spend_q_pg_next();
        return;
    }
    json_t *result = NULL;
    if (res != NULL && PQntuples(res) == 1 && PQnfields(res) == 1) {
        result = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    }
    if (!json_is_array(result)) {
        json_decref(result);
        mg_spend_q_finish(j, NULL, 500, "the database returned an unreadable answer");
        mg_spend_q_pg_next();
        return;
    }
    if (!j->agg) {
        size_t i;
        json_t *row;
        json_array_foreach(result, i, row) {
            mg_spend_q_fix_time(row, "startTime");
            mg_spend_q_fix_time(row, "endTime");
            mg_spend_q_fix_time(row, "completionStartTime");
        }
    }
    mg_spend_q_finish(j, result, 200, NULL);
    mg_spend_q_pg_next();
}

static void
mg_spend_q_pg_send(mg_spend_qjob_t *j)
{
    mg_buf_t sql = MG_BUF_INIT;
    char *params[16] = {0};
    int np = 0;
    mg_err_t err;
    if (mg_spend_query_sql(j->q, j->team_join, &sql, params, &np, &err) != MG_OK) {
        mg_buf_free(&sql);
        mg_spend_q_finish(j, NULL, 400, err.msg);
        mg_spend_q_pg_next();
        return;
    }
    int rc = mg_spg_send_params(j->env.reader, mg_buf_cstr(&sql), np, (const char *const *) params,
                                MG_SPEND_Q_TIMEOUT_MS, mg_spend_q_pg_done, j);
    mg_buf_free(&sql);
    for (int i = 0; i < np; i++) {
        free(params[i]);
    }
    if (rc == MG_OK) {
        j->pg_sent = true;
    }
}

/* Sends the oldest PostgreSQL query waiting, if the reader is free. */
static void
mg_spend_q_pg_next(void)
{
    for (mg_spend_qjob_t *j = mg_qjobs; j != NULL; j = j->next) {
        if (j->env.reader == NULL || j->bad[0] != '\0') {
            continue;
        }
        if (j->pg_sent || mg_spg_busy(j->env.reader)) {
            return; /* one at a time, in order */
        }
        if (!mg_spg_ready(j->env.reader)) {
            return; /* mg_spend_query_kick() when it is */
        }
        mg_spend_q_pg_send(j);
        return;
    }
}

static void
mg_spend_q_wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spend_qjob_t *j = arg;
    if (j->pg_sent) {
        return; /* the connection's own query timeout covers it */
    }
    char m[700];
    snprintf(m, sizeof(m), "the spend database is unavailable: %s", mg_spg_error(j->env.reader));
    mg_spend_q_finish(j, NULL, 503, m);
    mg_spend_q_pg_next();
}

static void
mg_spend_q_bad_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spend_qjob_t *j = arg;
    mg_spend_q_finish(j, NULL, 400, j->bad);
}

/* ---- public ---- */

void
mg_spend_query_start(const mg_spend_qenv_t *env, json_t *q, mg_spend_reply_fn reply, void *ctx)
{
    mg_spend_qjob_t *j = mg_xcalloc(1, sizeof(*j));
    j->env = *env;
    j->q = json_incref(q);
    j->reply = reply;
    j->ctx = ctx;
    j->team_join = true;
    mg_map_init(&j->groups);
    /* append: FIFO */
    mg_spend_qjob_t **pp = &mg_qjobs;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = j;
    if (mg_spend_q_parse(j, j->bad, sizeof(j->bad)) != MG_OK) {
        /* answered from the loop, never inside this call */
        j->ev = event_new(env->base, -1, 0, mg_spend_q_bad_cb, j);
        event_active(j->ev, EV_TIMEOUT, 1);
        return;
    }
    if (env->reader != NULL) {
        j->ev = evtimer_new(env->base, mg_spend_q_wait_cb, j);
        struct timeval tv = {MG_SPEND_Q_TIMEOUT_MS / 1000, 0};
        evtimer_add(j->ev, &tv);
        mg_spend_q_pg_next();
        return;
    }
    j->ev = event_new(env->base, -1, 0, mg_spend_q_scan_cb, j);
    event_active(j->ev, EV_TIMEOUT, 1);
}

void
mg_spend_query_kick(void)
{
    mg_spend_q_pg_next();
}

void
mg_spend_query_abort_all(void)
{
    while (mg_qjobs != NULL) {
        mg_spend_q_finish(mg_qjobs, NULL, 503, "moongate is shutting down");
    }
}
