/*
 * mg_limits.c -- shared counters of keys, teams, users, end users (see mg_limits.h).
 */
#include "mg_limits.h"

#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    uint32_t nslots;
    uint32_t used;
    uint64_t full_misses;
    uint32_t state[];           /* per slot: 0 free, 1 being claimed, 2 in use; then the slots */
} mg_lim_table_t;

static mg_lim_table_t *mg_lim;
static mg_lim_slot_t *mg_lim_slots;

int
mg_limits_init(uint32_t nslots)
{
    if (nslots == 0) {
        nslots = 16384;
    }
    size_t head = sizeof(mg_lim_table_t) + (size_t) nslots * sizeof(uint32_t);
    head = (head + 63) & ~(size_t) 63;
    char *p = mg_shm_alloc(head + (size_t) nslots * sizeof(mg_lim_slot_t));
    if (p == NULL) {
        return -1;
    }
    mg_lim = (mg_lim_table_t *) p;
    mg_lim->nslots = nslots;
    mg_lim_slots = (mg_lim_slot_t *) (p + head);
    return 0;
}

static const char *const mg_lim_kind[MG_ENT__COUNT] = {"key", "team", "user", "end_user", "org"};

/* The slot of kind/id/model; claim: take a free one on first use, else -1 when none is. */
static int
mg_lim_probe(mg_ent_kind_t kind, const char *id, const char *model, bool claim)
{
    if (mg_lim == NULL || id == NULL || kind >= MG_ENT__COUNT) {
        return -1;
    }
    char key[sizeof(((mg_lim_slot_t *) 0)->id)];
    int n = snprintf(key, sizeof(key), model != NULL ? "%s:%s:%s" : "%s:%s", mg_lim_kind[kind],
                     id, model);
    if (n < 0 || (size_t) n >= sizeof(key)) {
        return -1; /* an id this long is not one we keep counters for */
    }
    size_t len = (size_t) n;
    uint64_t h = mg_hash_bytes(key, len);
    uint32_t cap = mg_lim->nslots;
    for (uint32_t i = 0; i < cap; i++) {
        uint32_t idx = (uint32_t) ((h + i) % cap);
        mg_lim_slot_t *s = &mg_lim_slots[idx];
        uint32_t st = __atomic_load_n(&mg_lim->state[idx], __ATOMIC_ACQUIRE);
        if (st == 0 && !claim) {
            return -1; /* probing stops at the first free slot: kind/id was never claimed */
        }
        if (st == 0) {
            uint32_t expect = 0;
            if (__atomic_compare_exchange_n(&mg_lim->state[idx], &expect, 1, false,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                memcpy(s->id, key, len + 1);
                s->hash = h;
                __atomic_store_n(&mg_lim->state[idx], 2, __ATOMIC_RELEASE);
                __atomic_add_fetch(&mg_lim->used, 1, __ATOMIC_RELAXED);
                return (int) idx;
            }
            st = expect;
        }
        while (st == 1) { /* another process is writing the id: nanoseconds */
            st = __atomic_load_n(&mg_lim->state[idx], __ATOMIC_ACQUIRE);
        }
        if (s->hash == h && memcmp(s->id, key, len + 1) == 0) {
            return (int) idx;
        }
    }
    if (!claim) {
        return -1;
    }
    if (__atomic_fetch_add(&mg_lim->full_misses, 1, __ATOMIC_RELAXED) % 10000 == 0) {
        mg_log(MG_LOG_ERROR, NULL, "limits: the counter table is full (%u slots): limits on %s "
                                   "are not enforced", cap, key);
    }
    return -1;
}

int
mg_lim_slot(mg_ent_kind_t kind, const char *id, const char *model)
{
    return mg_lim_probe(kind, id, model, true);
}

int
mg_lim_find(mg_ent_kind_t kind, const char *id, const char *model)
{
    return mg_lim_probe(kind, id, model, false);
}

mg_lim_slot_t *
mg_lim_get(int slot)
{
    return mg_lim != NULL && slot >= 0 && (uint32_t) slot < mg_lim->nslots ? &mg_lim_slots[slot]
                                                                          : NULL;
}

static int64_t
mg_lim_nano(double usd)
{
    if (!(usd > 0)) {
        return 0;
    }
    double n = usd * MG_LIM_NANO;
    return n > 9.0e18 ? INT64_MAX / 2 : (int64_t) llround(n);
}

void
mg_lim_seed(int slot, double row_spend, int64_t epoch)
{
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL) {
        return;
    }
    int64_t want = epoch + 1; /* 0 stays "never seeded" */
    int64_t cur = __atomic_load_n(&s->seeded, __ATOMIC_ACQUIRE);
    while (cur != want) {
        if (__atomic_compare_exchange_n(&s->seeded, &cur, want, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            /* this process won: move spend (and committed with it) to the row's value */
            int64_t have = __atomic_load_n(&s->spend, __ATOMIC_ACQUIRE);
            int64_t delta = mg_lim_nano(row_spend) - have;
            __atomic_add_fetch(&s->spend, delta, __ATOMIC_ACQ_REL);
            __atomic_add_fetch(&s->committed, delta, __ATOMIC_ACQ_REL);
            __atomic_store_n(&s->soft_alerted, 0, __ATOMIC_RELEASE);
            return;
        }
    }
}

bool
mg_lim_roll(int slot, int64_t row_reset_ms, int64_t duration_ms, int64_t now_ms, int64_t *next_ms)
{
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL || row_reset_ms <= 0 || duration_ms <= 0) {
        return false;
    }
    int64_t end = __atomic_load_n(&s->period_end_ms, __ATOMIC_ACQUIRE);
    while (end < row_reset_ms) { /* the row knows a later end (a new period, an admin) */
        if (__atomic_compare_exchange_n(&s->period_end_ms, &end, row_reset_ms, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            end = row_reset_ms;
            break;
        }
    }
    if (now_ms < end) {
        return false;
    }
    int64_t next = now_ms + duration_ms;
    if (!__atomic_compare_exchange_n(&s->period_end_ms, &end, next, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        return false; /* another worker rolled it */
    }
    int64_t have = __atomic_load_n(&s->spend, __ATOMIC_ACQUIRE);
    __atomic_sub_fetch(&s->spend, have, __ATOMIC_ACQ_REL);
    __atomic_sub_fetch(&s->committed, have, __ATOMIC_ACQ_REL); /* reservations stay */
    __atomic_store_n(&s->soft_alerted, 0, __ATOMIC_RELEASE);
    *next_ms = next;
    return true;
}

double
mg_lim_spend_of(mg_ent_kind_t kind, const char *id, double row_spend, int64_t epoch)
{
    int slot = mg_lim_slot(kind, id, NULL);
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL) {
        return row_spend;
    }
    mg_lim_seed(slot, row_spend, epoch);
    return (double) __atomic_load_n(&s->spend, __ATOMIC_ACQUIRE) / MG_LIM_NANO;
}

double
mg_lim_spend_peek(mg_ent_kind_t kind, const char *id, double row_spend, int64_t epoch)
{
    int slot = mg_lim_find(kind, id, NULL);
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL) {
        return row_spend;
    }
    mg_lim_seed(slot, row_spend, epoch);
    return (double) __atomic_load_n(&s->spend, __ATOMIC_ACQUIRE) / MG_LIM_NANO;
}

bool
mg_lim_reserve(int slot, double max, double worst)
{
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL) {
        return true;
    }
    int64_t w = mg_lim_nano(worst);
    if (max < 0) {
        __atomic_add_fetch(&s->committed, w, __ATOMIC_ACQ_REL);
        return true;
    }
    int64_t m = mg_lim_nano(max);
    int64_t cur = __atomic_load_n(&s->committed, __ATOMIC_ACQUIRE);
    do {
        /* LiteLLM refuses once the spend reaches the budget; moongate counts what the
         * requests in flight may still spend too (their worst case), so concurrent requests
         * cannot overshoot it further than one request run alone does */
        if (cur >= m) {
            return false;
        }
    } while (!__atomic_compare_exchange_n(&s->committed, &cur, cur + w, false, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    return true;
}

void
mg_lim_settle(int slot, double worst, double actual)
{
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL) {
        return;
    }
    int64_t a = mg_lim_nano(actual);
    __atomic_add_fetch(&s->committed, a - mg_lim_nano(worst), __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&s->spend, a, __ATOMIC_ACQ_REL);
}

#define MG_LIM_START(w) ((int64_t) ((uint64_t) (w) >> 32))
#define MG_LIM_COUNT(w) ((int64_t) ((uint64_t) (w) & 0xffffffffULL))
#define MG_LIM_WORD(start, count) ((int64_t) (((uint64_t) (start) << 32) | ((uint64_t) (count) & 0xffffffffULL)))

bool
mg_lim_window(int64_t *word, int64_t limit, int64_t n, int64_t now_s, int64_t window_s,
              int64_t *remaining, int64_t *reset_s)
{
    if (n > 0xffffffffLL) {
        n = 0xffffffffLL;
    }
    int64_t cur = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    for (;;) {
        int64_t start = MG_LIM_START(cur), count = MG_LIM_COUNT(cur);
        if (start == 0 || now_s - start >= window_s) {
            start = now_s; /* a new window opens with this request */
            count = 0;
        }
        *reset_s = start + window_s;
        if (limit >= 0 && count + n > limit) {
            *remaining = limit - count > 0 ? limit - count : 0;
            return false;
        }
        int64_t next = MG_LIM_WORD(start, count + n > 0xffffffffLL ? 0xffffffffLL : count + n);
        if (__atomic_compare_exchange_n(word, &cur, next, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            *remaining = limit >= 0 ? limit - count - n : -1;
            return true;
        }
    }
}

void
mg_lim_window_adjust(int64_t *word, int64_t delta, int64_t started_s, int64_t window_s)
{
    int64_t cur = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    for (;;) {
        int64_t start = MG_LIM_START(cur), count = MG_LIM_COUNT(cur);
        if (start == 0 || start > started_s || started_s - start >= window_s) {
            return; /* the reservation's window has closed: nothing to correct */
        }
        int64_t c = count + delta;
        c = c < 0 ? 0 : c > 0xffffffffLL ? 0xffffffffLL : c;
        if (__atomic_compare_exchange_n(word, &cur, MG_LIM_WORD(start, c), false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            return;
        }
    }
}

bool
mg_lim_enter(int slot, int64_t max)
{
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s == NULL) {
        return true;
    }
    int32_t cur = __atomic_load_n(&s->inflight, __ATOMIC_ACQUIRE);
    do {
        if (max >= 0 && cur >= max) {
            return false;
        }
    } while (!__atomic_compare_exchange_n(&s->inflight, &cur, cur + 1, false, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    return true;
}

void
mg_lim_leave(int slot)
{
    mg_lim_slot_t *s = mg_lim_get(slot);
    if (s != NULL) {
        __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_ACQ_REL);
    }
}

void
mg_limits_usage(uint32_t *used, uint32_t *cap, uint64_t *full_misses)
{
    *used = mg_lim != NULL ? __atomic_load_n(&mg_lim->used, __ATOMIC_RELAXED) : 0;
    *cap = mg_lim != NULL ? mg_lim->nslots : 0;
    *full_misses = mg_lim != NULL ? __atomic_load_n(&mg_lim->full_misses, __ATOMIC_RELAXED) : 0;
}
