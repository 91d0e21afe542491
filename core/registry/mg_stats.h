/*
 * mg_stats.h -- runtime statistics per deployment id, shared by the workers
 * of an instance.
 *
 * Lives in shared memory (mg_shm), outside registry snapshots: a snapshot is
 * immutable, these numbers change on every request.  Keyed by deployment id;
 * a snapshot resolves each deployment's slot once when it is built.  Slots
 * are claimed with a CAS and never move, so Lua policies can read them
 * through FFI pointers.  Counters are updated with atomics; the latency
 * sample rings take a tiny spinlock.  Per-minute counters roll over lazily.
 */
#ifndef MG_STATS_H
#define MG_STATS_H

#include "../base/mg_types.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define MG_STATS_SAMPLES 10
#define MG_STATS_ID_MAX 96

/* Layout mirrored by lua/moongate/ffi.lua: change both together (bump MG_FFI_ABI). */
typedef struct {
    uint32_t state;                 /* 0 free, 1 claiming, 2 in use */
    int32_t lock;
    uint64_t id_hash;
    char id[MG_STATS_ID_MAX];
    int32_t inflight;               /* requests in progress on this deployment */
    int32_t cooldown_status;        /* status that caused the cooldown */
    int64_t cooldown_until_ms;      /* realtime ms; 0 = not cooling down */
    int64_t cooldown_time_ms;       /* configured length of that cooldown */
    int64_t minute;                 /* unix minute of the counters below */
    /* 32-bit on purpose: LuaJIT boxes every int64 read as a cdata allocation */
    int32_t rpm;                    /* requests started this minute */
    int32_t tpm;                    /* tokens used this minute (saturates at INT32_MAX) */
    int32_t fails;                  /* failures this minute */
    int32_t successes;              /* successes this minute */
    int64_t total_requests;
    int64_t total_failures;
    double latency;                 /* average of samples: seconds per output token (or per request) */
    double ttft;                    /* average time to first token, seconds (streams) */
    int32_t latency_n, latency_pos;
    int32_t ttft_n, ttft_pos;
    double latency_samples[MG_STATS_SAMPLES];
    double ttft_samples[MG_STATS_SAMPLES];
    int64_t last_used_ms;
    int64_t prompt_tokens;          /* lifetime usage read from responses (spend accounting) */
    int64_t completion_tokens;
} mg_stat_t;

typedef struct {
    uint32_t nslots;
    uint32_t pad;
    mg_stat_t slots[];
} mg_stats_t;

extern mg_stats_t *mg_stats;

/* Master, before fork: allocates the table in shared memory. */
int mg_stats_init(uint32_t nslots);
/* Finds or claims the slot for a deployment id; -1 when the table is full. */
int mg_stats_slot(const char *id);
static inline mg_stat_t *
mg_stats_get(int slot)
{
    return (slot >= 0 && mg_stats != NULL) ? &mg_stats->slots[slot] : NULL;
}

void mg_stats_begin(int slot);                  /* inflight++, rpm++ */
/* mg_stats_begin unless max_inflight (> 0) requests are in flight already, counted by every
 * worker at once (a CAS: the limit holds exactly); false: nothing was counted. */
bool mg_stats_try_begin(int slot, int32_t max_inflight);
/* Resets the per-minute counters if the minute changed (before a policy reads them);
 * minute is mg_stats_this_minute(), read once for a whole candidate list. */
void mg_stats_roll(int slot, int64_t minute);
int64_t mg_stats_this_minute(void);
void mg_stats_end(int slot);                    /* inflight-- */
/* A finished success: latency in seconds, output tokens (0 = unknown), ttft (< 0 = n/a). */
void mg_stats_success(int slot, double seconds, int64_t tokens, double ttft_s);
/* A failure; timeout adds LiteLLM's 1000 s latency penalty sample. */
void mg_stats_failure(int slot, bool timeout);
/* Adds tokens to this minute's tpm (usage-based routing). */
void mg_stats_add_tokens(int slot, int64_t tokens);
/* Records a response's usage in the lifetime totals. */
void mg_stats_usage(int slot, int64_t prompt_tokens, int64_t completion_tokens);
/* Every slot in use as JSON: id, requests, failures, tokens, inflight, cooldown (new ref). */
json_t *mg_stats_json(void);
/* This minute's counters (0 when the minute rolled over). */
void mg_stats_minute(int slot, int64_t *rpm, int64_t *tpm, int64_t *fails, int64_t *successes);

/* Cooldown: until now_ms + ms.  Returns true if this call started it. */
bool mg_stats_cooldown(int slot, int64_t ms, int status);
/* Remaining cooldown in ms (0 = available). */
int64_t mg_stats_cooldown_left(int slot);

#endif
