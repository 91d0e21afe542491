/*
 * mg_stats.c -- shared per-deployment statistics (see mg_stats.h).
 */
#include "mg_stats.h"

#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"

#include <limits.h>
#include <string.h>

mg_stats_t *mg_stats = NULL;

int
mg_stats_init(uint32_t nslots)
{
    mg_stats = mg_shm_alloc(sizeof(mg_stats_t) + (size_t) nslots * sizeof(mg_stat_t));
    if (mg_stats == NULL) {
        return -1;
    }
    mg_stats->nslots = nslots;
    return 0;
}

int
mg_stats_slot(const char *id)
{
    if (mg_stats == NULL || id == NULL) {
        return -1;
    }
    size_t len = strlen(id);
    if (len >= MG_STATS_ID_MAX) {
        len = MG_STATS_ID_MAX - 1;
    }
    uint64_t h = mg_hash_bytes(id, len);
    uint32_t n = mg_stats->nslots;
    for (uint32_t i = 0; i < n; i++) {
        mg_stat_t *s = &mg_stats->slots[(h + i) % n];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == 0) {
            uint32_t expect = 0;
            if (__atomic_compare_exchange_n(&s->state, &expect, 1, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                memcpy(s->id, id, len);
                s->id[len] = '\0';
                s->id_hash = h;
                __atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
                return (int) ((h + i) % n);
            }
            st = expect;
        }
        while (st == 1) { /* another process is writing the id: it takes nanoseconds */
            st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        }
        if (s->id_hash == h && strncmp(s->id, id, len) == 0 && s->id[len] == '\0') {
            return (int) ((h + i) % n);
        }
    }
    return -1;
}

static int64_t
mg_stats_now_minute(void)
{
    return mg_time_real_ms() / 60000;
}

/* Resets the per-minute counters when the minute changed (first caller wins). */
static void
mg_stats_roll_stat(mg_stat_t *s, int64_t now)
{
    int64_t cur = __atomic_load_n(&s->minute, __ATOMIC_ACQUIRE);
    if (cur == now) {
        return;
    }
    if (__atomic_compare_exchange_n(&s->minute, &cur, now, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&s->rpm, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->tpm, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->successes, 0, __ATOMIC_RELEASE);
    }
}

void
mg_stats_begin(int slot)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL) {
        return;
    }
    mg_stats_roll_stat(s, mg_stats_now_minute());
    __atomic_add_fetch(&s->inflight, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->rpm, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->total_requests, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_used_ms, mg_time_real_ms(), __ATOMIC_RELAXED);
}

bool
mg_stats_try_begin(int slot, int32_t max_inflight)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL || max_inflight <= 0) {
        mg_stats_begin(slot);
        return true;
    }
    int32_t cur = __atomic_load_n(&s->inflight, __ATOMIC_RELAXED);
    do {
        if (cur >= max_inflight) {
            return false;
        }
    } while (!__atomic_compare_exchange_n(&s->inflight, &cur, cur + 1, true, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    mg_stats_roll_stat(s, mg_stats_now_minute());
    __atomic_add_fetch(&s->rpm, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->total_requests, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_used_ms, mg_time_real_ms(), __ATOMIC_RELAXED);
    return true;
}

void
mg_stats_end(int slot)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL) {
        return;
    }
    if (__atomic_sub_fetch(&s->inflight, 1, __ATOMIC_RELAXED) < 0) {
        /* a worker that died with requests in flight leaves counts behind; clamp */
        __atomic_store_n(&s->inflight, 0, __ATOMIC_RELAXED);
    }
}

static void
mg_stats_lock(mg_stat_t *s)
{
    int32_t expect = 0;
    while (!__atomic_compare_exchange_n(&s->lock, &expect, 1, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
        expect = 0;
    }
}

static void
mg_stats_unlock(mg_stat_t *s)
{
    __atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
}

static double
mg_stats_push(double *ring, int32_t *n, int32_t *pos, double v)
{
    ring[*pos] = v;
    *pos = (*pos + 1) % MG_STATS_SAMPLES;
    if (*n < MG_STATS_SAMPLES) {
        (*n)++;
    }
    double sum = 0;
    for (int i = 0; i < *n; i++) {
        sum += ring[i];
    }
    return sum / *n;
}

void
mg_stats_success(int slot, double seconds, int64_t tokens, double ttft_s)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL) {
        return;
    }
    mg_stats_roll_stat(s, mg_stats_now_minute());
    __atomic_add_fetch(&s->successes, 1, __ATOMIC_RELAXED);
    double per = tokens > 0 ? seconds / (double) tokens : seconds;
    mg_stats_lock(s);
    s->latency = mg_stats_push(s->latency_samples, &s->latency_n, &s->latency_pos, per);
    if (ttft_s >= 0) {
        double t = tokens > 0 ? ttft_s / (double) tokens : ttft_s;
        s->ttft = mg_stats_push(s->ttft_samples, &s->ttft_n, &s->ttft_pos, t);
    }
    mg_stats_unlock(s);
}

void
mg_stats_failure(int slot, bool timeout)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL) {
        return;
    }
    mg_stats_roll_stat(s, mg_stats_now_minute());
    __atomic_add_fetch(&s->fails, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->total_failures, 1, __ATOMIC_RELAXED);
    if (timeout) {
        mg_stats_lock(s);
        s->latency = mg_stats_push(s->latency_samples, &s->latency_n, &s->latency_pos, 1000.0);
        mg_stats_unlock(s);
    }
}

void
mg_stats_add_tokens(int slot, int64_t tokens)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL || tokens <= 0) {
        return;
    }
    mg_stats_roll_stat(s, mg_stats_now_minute());
    if (tokens > INT32_MAX / 2) {
        tokens = INT32_MAX / 2;
    }
    int32_t old = __atomic_fetch_add(&s->tpm, (int32_t) tokens, __ATOMIC_RELAXED);
    if (old > INT32_MAX / 2) {
        __atomic_store_n(&s->tpm, INT32_MAX / 2, __ATOMIC_RELAXED); /* saturate, never wrap */
    }
}

void
mg_stats_minute(int slot, int64_t *rpm, int64_t *tpm, int64_t *fails, int64_t *successes)
{
    mg_stat_t *s = mg_stats_get(slot);
    *rpm = *tpm = *fails = *successes = 0;
    if (s == NULL) {
        return;
    }
    mg_stats_roll_stat(s, mg_stats_now_minute());
    *rpm = __atomic_load_n(&s->rpm, __ATOMIC_RELAXED);
    *tpm = __atomic_load_n(&s->tpm, __ATOMIC_RELAXED);
    *fails = __atomic_load_n(&s->fails, __ATOMIC_RELAXED);
    *successes = __atomic_load_n(&s->successes, __ATOMIC_RELAXED);
}

bool
mg_stats_cooldown(int slot, int64_t ms, int status)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL || ms <= 0) {
        return false;
    }
    int64_t now = mg_time_real_ms();
    int64_t until = now + ms;
    int64_t cur = __atomic_load_n(&s->cooldown_until_ms, __ATOMIC_ACQUIRE);
    bool started = cur <= now;
    if (until > cur) {
        __atomic_store_n(&s->cooldown_until_ms, until, __ATOMIC_RELEASE);
        __atomic_store_n(&s->cooldown_time_ms, ms, __ATOMIC_RELAXED);
        __atomic_store_n(&s->cooldown_status, status, __ATOMIC_RELAXED);
    }
    return started;
}

int64_t
mg_stats_cooldown_left(int slot)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL) {
        return 0;
    }
    int64_t until = __atomic_load_n(&s->cooldown_until_ms, __ATOMIC_ACQUIRE);
    int64_t now = mg_time_real_ms();
    return until > now ? until - now : 0;
}

void
mg_stats_usage(int slot, int64_t prompt_tokens, int64_t completion_tokens)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s == NULL) {
        return;
    }
    if (prompt_tokens > 0) {
        __atomic_add_fetch(&s->prompt_tokens, prompt_tokens, __ATOMIC_RELAXED);
    }
    if (completion_tokens > 0) {
        __atomic_add_fetch(&s->completion_tokens, completion_tokens, __ATOMIC_RELAXED);
    }
}

json_t *
mg_stats_json(void)
{
    json_t *out = json_array();
    if (mg_stats == NULL) {
        return out;
    }
    for (uint32_t i = 0; i < mg_stats->nslots; i++) {
        mg_stat_t *s = &mg_stats->slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != 2) {
            continue;
        }
        int64_t left = mg_stats_cooldown_left((int) i);
        json_array_append_new(out, json_pack("{s:s,s:I,s:I,s:I,s:I,s:i,s:I,s:f}", "id", s->id,
                                             "requests", (json_int_t) s->total_requests,
                                             "failures", (json_int_t) s->total_failures,
                                             "prompt_tokens", (json_int_t) s->prompt_tokens,
                                             "completion_tokens", (json_int_t) s->completion_tokens,
                                             "inflight", s->inflight, "cooldown_ms_left",
                                             (json_int_t) left, "latency", s->latency));
    }
    return out;
}

void
mg_stats_roll(int slot, int64_t minute)
{
    mg_stat_t *s = mg_stats_get(slot);
    if (s != NULL) {
        mg_stats_roll_stat(s, minute);
    }
}

int64_t
mg_stats_this_minute(void)
{
    return mg_stats_now_minute();
}
