/*
 * mg_reqlog.c -- the recent-requests ring and the per-deployment traffic series
 * (see mg_reqlog.h).
 *
 * Layout in shared memory: one mg_reqlog_part_t per worker.  Only that worker
 * writes it.  Readers copy a ring entry between two reads of its sequence number
 * and drop it when the number was odd (being written) or changed; a series entry
 * the same way, and a bucket between two reads of its epoch.  Counters inside a
 * bucket are plain stores by the one writer, read with relaxed atomics: a reader
 * may see a count one request ahead of its latency sum, which a chart tolerates.
 */
#include "mg_reqlog.h"

#include "../base/mg_map.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../registry/mg_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t seq;                   /* odd while being written */
    int32_t status;                 /* HTTP status sent; 499: the client went away first */
    int32_t worker;
    int32_t retries;
    int32_t fallbacks;
    int32_t stream;
    int64_t time_ms;                /* realtime, when finalised */
    uint64_t n;                     /* this worker's record number (order within a millisecond) */
    int64_t latency_us;             /* head received -> finalised */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t total_tokens;
    char call_id[80];
    char route[64];
    char model[80];                 /* as the client asked */
    char group[80];                 /* the model group it resolved to ("" = none) */
    char deployment[MG_STATS_ID_MAX]; /* the last attempt's deployment ("" = none) */
    char provider[32];
} mg_reqlog_entry_t;

typedef struct {
    int64_t epoch;                  /* unix seconds / MG_REQLOG_BUCKET_S; -1 while reset */
    uint32_t requests;
    uint32_t failures;
    uint64_t latency_us;            /* sum over requests */
    uint64_t tokens;
} mg_reqlog_bucket_t;

typedef struct {
    uint32_t seq;                   /* odd while the entry is being (re)assigned */
    uint32_t used;
    uint64_t hash;
    int64_t last_epoch;             /* newest bucket written: the eviction order */
    char id[MG_STATS_ID_MAX];
    char group[80];
    mg_reqlog_bucket_t b[MG_REQLOG_NBUCKETS];
} mg_reqlog_series_t;

typedef struct {
    uint64_t next;                  /* records written so far (ring position) */
    mg_reqlog_entry_t ring[MG_REQLOG_RING];
    mg_reqlog_series_t series[MG_REQLOG_SERIES];
} mg_reqlog_part_t;

static mg_reqlog_part_t *mg_reqlog_parts; /* shared: nworkers parts */
static int mg_reqlog_nparts;

/* ---- setup ---- */

int
mg_reqlog_init(int nworkers, mg_err_t *err)
{
    if (nworkers <= 0) {
        nworkers = 1;
    }
    size_t size = (size_t) nworkers * sizeof(mg_reqlog_part_t);
    mg_reqlog_parts = mg_shm_alloc(size);
    if (mg_reqlog_parts == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "shared memory has no room for the request log of %d "
                                         "workers (%zu bytes)", nworkers, size);
        return MG_ERROR;
    }
    mg_reqlog_nparts = nworkers;
    for (int i = 0; i < nworkers; i++) {
        for (int s = 0; s < MG_REQLOG_SERIES; s++) {
            for (int k = 0; k < MG_REQLOG_NBUCKETS; k++) {
                mg_reqlog_parts[i].series[s].b[k].epoch = -1;
            }
        }
    }
    return MG_OK;
}

bool
mg_reqlog_enabled(void)
{
    return mg_reqlog_parts != NULL;
}

/* ---- writer (the worker that finalises the request) ---- */

static void
mg_reqlog_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strnlen(src, cap - 1) : 0;
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

static uint32_t
mg_reqlog_begin_write(uint32_t *seq)
{
    /* a writer that died mid-write left it odd: start from the next odd number anyway */
    uint32_t s = (__atomic_load_n(seq, __ATOMIC_RELAXED) + 1) | 1;
    __atomic_store_n(seq, s, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return s;
}

static void
mg_reqlog_end_write(uint32_t *seq, uint32_t s)
{
    __atomic_store_n(seq, s + 1, __ATOMIC_RELEASE);
}

/* The worker's series entry for a deployment id, assigned (evicting the least recent) if new. */
static mg_reqlog_series_t *
mg_reqlog_series_for(mg_reqlog_part_t *p, const char *id, const char *group)
{
    size_t len = strnlen(id, MG_STATS_ID_MAX - 1); /* ids are kept cut to the field */
    uint64_t h = mg_hash_bytes(id, len);
    mg_reqlog_series_t *victim = NULL;
    for (int i = 0; i < MG_REQLOG_SERIES; i++) {
        mg_reqlog_series_t *s = &p->series[i];
        if (!s->used) {
            if (victim == NULL || victim->used) {
                victim = s;
            }
            continue;
        }
        if (s->hash == h && strncmp(s->id, id, len) == 0 && s->id[len] == '\0') {
            return s;
        }
        if (victim == NULL || (victim->used && s->last_epoch < victim->last_epoch)) {
            victim = s;
        }
    }
    uint32_t sq = mg_reqlog_begin_write(&victim->seq);
    victim->used = 1;
    victim->hash = h;
    victim->last_epoch = 0;
    mg_reqlog_copy(victim->id, sizeof(victim->id), id);
    mg_reqlog_copy(victim->group, sizeof(victim->group), group);
    for (int k = 0; k < MG_REQLOG_NBUCKETS; k++) {
        __atomic_store_n(&victim->b[k].epoch, -1, __ATOMIC_RELAXED);
    }
    mg_reqlog_end_write(&victim->seq, sq);
    return victim;
}

static void
mg_reqlog_count(mg_reqlog_series_t *s, int64_t now_ms, int status, int64_t latency_us,
                int64_t tokens)
{
    int64_t e = now_ms / 1000 / MG_REQLOG_BUCKET_S;
    mg_reqlog_bucket_t *b = &s->b[e % MG_REQLOG_NBUCKETS];
    if (__atomic_load_n(&b->epoch, __ATOMIC_RELAXED) != e) {
        /* a new bucket: invalidate, zero, then publish the epoch */
        __atomic_store_n(&b->epoch, -1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(&b->requests, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->failures, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->latency_us, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->tokens, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->epoch, e, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&b->requests, b->requests + 1, __ATOMIC_RELAXED);
    if (status >= 400) {
        __atomic_store_n(&b->failures, b->failures + 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&b->latency_us, b->latency_us + (uint64_t) (latency_us > 0 ? latency_us : 0),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&b->tokens, b->tokens + (uint64_t) (tokens > 0 ? tokens : 0), __ATOMIC_RELAXED);
    s->last_epoch = e;
}

void
mg_reqlog_record(mg_request_t *r)
{
    if (mg_reqlog_parts == NULL || r == NULL || r->api == NULL || r->gw == NULL) {
        return;
    }
    int wid = r->gw->worker_id;
    if (wid < 0 || wid >= mg_reqlog_nparts) {
        return;
    }
    mg_reqlog_part_t *p = &mg_reqlog_parts[wid];
    int64_t now_ms = mg_time_real_ms();
    int64_t lat = mg_time_mono_us() - r->hr->start_us;
    int status = r->hr->finished && r->hr->status > 0 ? r->hr->status : 499;
    const mg_deployment_t *d = r->dep;
    const char *group = r->primary_group != NULL ? r->primary_group : "";
    int64_t total = mg_usage_total(&r->usage);

    mg_reqlog_entry_t *e = &p->ring[p->next % MG_REQLOG_RING];
    uint32_t sq = mg_reqlog_begin_write(&e->seq);
    e->status = status;
    e->worker = wid;
    e->retries = r->retries_done;
    e->fallbacks = r->fb_groups_tried;
    e->stream = r->stream;
    e->time_ms = now_ms;
    e->n = p->next;
    e->latency_us = lat;
    e->prompt_tokens = r->usage.prompt_tokens;
    e->completion_tokens = r->usage.completion_tokens;
    e->total_tokens = total;
    mg_reqlog_copy(e->call_id, sizeof(e->call_id), r->call_id);
    /* the path as asked (under SERVER_ROOT_PATH, no query), cut to the field */
    size_t pl = r->path_len < sizeof(e->route) - 1 ? r->path_len : sizeof(e->route) - 1;
    memcpy(e->route, r->path, pl);
    e->route[pl] = '\0';
    mg_reqlog_copy(e->model, sizeof(e->model), r->model);
    mg_reqlog_copy(e->group, sizeof(e->group), group);
    mg_reqlog_copy(e->deployment, sizeof(e->deployment), d != NULL ? d->id : NULL);
    mg_reqlog_copy(e->provider, sizeof(e->provider),
                   d != NULL ? (d->provider[0] ? d->provider : "openai") : NULL);
    mg_reqlog_end_write(&e->seq, sq);
    __atomic_store_n(&p->next, p->next + 1, __ATOMIC_RELEASE);

    if (d != NULL) {
        mg_reqlog_series_t *s = mg_reqlog_series_for(p, d->id, d->model_name);
        mg_reqlog_count(s, now_ms, status, lat, total);
    }
}

/* ---- readers (any worker) ---- */

static bool
mg_reqlog_read_entry(const mg_reqlog_entry_t *src, mg_reqlog_entry_t *out)
{
    for (int tries = 0; tries < 4; tries++) {
        uint32_t s1 = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);
        if (s1 == 0) {
            return false; /* never written */
        }
        if (s1 & 1) {
            continue;
        }
        memcpy(out, src, sizeof(*out));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&src->seq, __ATOMIC_RELAXED) == s1) {
            out->call_id[sizeof(out->call_id) - 1] = '\0';
            out->route[sizeof(out->route) - 1] = '\0';
            out->model[sizeof(out->model) - 1] = '\0';
            out->group[sizeof(out->group) - 1] = '\0';
            out->deployment[sizeof(out->deployment) - 1] = '\0';
            out->provider[sizeof(out->provider) - 1] = '\0';
            return true;
        }
    }
    return false; /* being rewritten right now: it is about to leave the ring anyway */
}

static int
mg_reqlog_cmp_newest(const void *a, const void *b)
{
    const mg_reqlog_entry_t *x = a, *y = b;
    if (x->time_ms != y->time_ms) {
        return x->time_ms > y->time_ms ? -1 : 1;
    }
    if (x->worker == y->worker && x->n != y->n) {
        return x->n > y->n ? -1 : 1;
    }
    return x->worker - y->worker;
}

static json_t *
mg_reqlog_str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

json_t *
mg_reqlog_requests_json(int limit)
{
    json_t *list = json_array();
    json_t *out = json_pack("{s:b,s:i}", "enabled", mg_reqlog_parts != NULL, "capacity",
                            mg_reqlog_nparts * MG_REQLOG_RING);
    if (mg_reqlog_parts == NULL) {
        json_object_set_new(out, "requests", list);
        return out;
    }
    size_t cap = (size_t) mg_reqlog_nparts * MG_REQLOG_RING;
    mg_reqlog_entry_t *all = malloc(cap * sizeof(*all));
    if (all == NULL) {
        json_object_set_new(out, "requests", list);
        json_object_set_new(out, "error", json_string("out of memory"));
        return out;
    }
    size_t n = 0;
    for (int w = 0; w < mg_reqlog_nparts; w++) {
        for (int i = 0; i < MG_REQLOG_RING; i++) {
            if (mg_reqlog_read_entry(&mg_reqlog_parts[w].ring[i], &all[n])) {
                n++;
            }
        }
    }
    qsort(all, n, sizeof(*all), mg_reqlog_cmp_newest);
    if (limit <= 0 || (size_t) limit > n) {
        limit = (int) n;
    }
    for (int i = 0; i < limit; i++) {
        const mg_reqlog_entry_t *e = &all[i];
        json_t *j = json_pack("{s:s,s:I,s:i,s:s,s:s,s:o,s:o,s:o,s:i,s:f,s:I,s:I,s:I,s:i,s:i,s:b}",
                              "call_id", e->call_id, "time_ms", (json_int_t) e->time_ms, "worker",
                              e->worker, "route", e->route, "model", e->model, "model_group",
                              mg_reqlog_str_or_null(e->group), "deployment_id",
                              mg_reqlog_str_or_null(e->deployment), "provider",
                              mg_reqlog_str_or_null(e->provider), "status", e->status,
                              "latency_ms", (double) e->latency_us / 1000.0, "prompt_tokens",
                              (json_int_t) e->prompt_tokens, "completion_tokens",
                              (json_int_t) e->completion_tokens, "total_tokens",
                              (json_int_t) e->total_tokens, "retries", e->retries, "fallbacks",
                              e->fallbacks, "stream", e->stream != 0);
        json_array_append_new(list, j);
    }
    free(all);
    json_object_set_new(out, "requests", list);
    return out;
}

typedef struct {
    char id[MG_STATS_ID_MAX];
    char group[80];
    uint64_t requests[MG_REQLOG_NBUCKETS];
    uint64_t failures[MG_REQLOG_NBUCKETS];
    uint64_t latency_us[MG_REQLOG_NBUCKETS];
    uint64_t tokens[MG_REQLOG_NBUCKETS];
} mg_reqlog_sum_t;

/* Adds one worker's series entry into sums (index by position in the window). */
static bool
mg_reqlog_read_series(const mg_reqlog_series_t *s, int64_t first_epoch, mg_reqlog_sum_t *out)
{
    uint32_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if ((s1 & 1) || !__atomic_load_n(&s->used, __ATOMIC_RELAXED)) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->id, s->id, sizeof(out->id));
    memcpy(out->group, s->group, sizeof(out->group));
    out->id[sizeof(out->id) - 1] = '\0';
    out->group[sizeof(out->group) - 1] = '\0';
    for (int k = 0; k < MG_REQLOG_NBUCKETS; k++) {
        const mg_reqlog_bucket_t *b = &s->b[k];
        int64_t e1 = __atomic_load_n(&b->epoch, __ATOMIC_ACQUIRE);
        if (e1 < first_epoch || e1 >= first_epoch + MG_REQLOG_NBUCKETS) {
            continue;
        }
        uint64_t rq = __atomic_load_n(&b->requests, __ATOMIC_RELAXED);
        uint64_t fl = __atomic_load_n(&b->failures, __ATOMIC_RELAXED);
        uint64_t lt = __atomic_load_n(&b->latency_us, __ATOMIC_RELAXED);
        uint64_t tk = __atomic_load_n(&b->tokens, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&b->epoch, __ATOMIC_RELAXED) != e1) {
            continue;
        }
        int pos = (int) (e1 - first_epoch);
        out->requests[pos] = rq;
        out->failures[pos] = fl;
        out->latency_us[pos] = lt;
        out->tokens[pos] = tk;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&s->seq, __ATOMIC_RELAXED) == s1;
}

json_t *
mg_reqlog_traffic_json(void)
{
    int64_t now_ms = mg_time_real_ms();
    int64_t cur = now_ms / 1000 / MG_REQLOG_BUCKET_S;
    int64_t first = cur - MG_REQLOG_NBUCKETS + 1;
    json_t *deps = json_array();
    json_t *out = json_pack("{s:b,s:i,s:i,s:I}", "enabled", mg_reqlog_parts != NULL,
                            "bucket_seconds", MG_REQLOG_BUCKET_S, "buckets", MG_REQLOG_NBUCKETS,
                            "now_ms", (json_int_t) now_ms);
    if (mg_reqlog_parts == NULL) {
        json_object_set_new(out, "deployments", deps);
        return out;
    }
    size_t cap = (size_t) mg_reqlog_nparts * MG_REQLOG_SERIES;
    mg_reqlog_sum_t *sums = calloc(cap, sizeof(*sums));
    mg_reqlog_sum_t *one = malloc(sizeof(*one));
    if (sums == NULL || one == NULL) {
        free(sums);
        free(one);
        json_object_set_new(out, "deployments", deps);
        json_object_set_new(out, "error", json_string("out of memory"));
        return out;
    }
    size_t n = 0;
    for (int w = 0; w < mg_reqlog_nparts; w++) {
        for (int i = 0; i < MG_REQLOG_SERIES; i++) {
            if (!mg_reqlog_read_series(&mg_reqlog_parts[w].series[i], first, one)) {
                continue;
            }
            size_t j = 0;
            while (j < n && strcmp(sums[j].id, one->id) != 0) {
                j++;
            }
            if (j == n) {
                memcpy(sums[n].id, one->id, sizeof(one->id));
                memcpy(sums[n].group, one->group, sizeof(one->group));
                n++;
            }
            for (int k = 0; k < MG_REQLOG_NBUCKETS; k++) {
                sums[j].requests[k] += one->requests[k];
                sums[j].failures[k] += one->failures[k];
                sums[j].latency_us[k] += one->latency_us[k];
                sums[j].tokens[k] += one->tokens[k];
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        json_t *series = json_array();
        uint64_t total = 0;
        for (int k = 0; k < MG_REQLOG_NBUCKETS; k++) {
            uint64_t rq = sums[j].requests[k];
            total += rq;
            json_t *b = json_pack("{s:I,s:I,s:I,s:I}", "start_ms",
                                  (json_int_t) ((first + k) * MG_REQLOG_BUCKET_S * 1000),
                                  "requests", (json_int_t) rq, "failures",
                                  (json_int_t) sums[j].failures[k], "tokens",
                                  (json_int_t) sums[j].tokens[k]);
            json_object_set_new(b, "latency_ms",
                                rq > 0 ? json_real((double) sums[j].latency_us[k] / 1000.0 /
                                                   (double) rq)
                                       : json_null());
            json_array_append_new(series, b);
        }
        if (total == 0) {
            json_decref(series); /* nothing in the window */
            continue;
        }
        json_array_append_new(deps, json_pack("{s:s,s:s,s:o}", "id", sums[j].id, "model_group",
                                              sums[j].group, "series", series));
    }
    free(sums);
    free(one);
    json_object_set_new(out, "deployments", deps);
    return out;
}
