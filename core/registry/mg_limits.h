/*
 * mg_limits.h -- what changes per request for a key, team, user, end user or organization:
 * spend (settled and reserved), request and token windows, requests in flight.  Kept in
 * shared memory so every worker of an instance sees and updates the same counters: limits
 * hold exactly across workers.
 *
 * Owns: the slot table in shared memory (mg_shm), allocated by the master before fork.
 * Slots are claimed by id with a CAS (as mg_stats does) and never move.  Every update is a
 * single-word atomic (CAS loops): no lock that a killed worker could leave held.
 *
 * Spend is fixed point (1e-9 USD per unit).  A slot is seeded from the row's persisted spend
 * the first time it is used, and re-seeded only when an admin set the spend explicitly (the
 * row's metadata.moongate_spend_epoch changed); the spend pipeline's own additions to the row
 * never re-seed it.  A budget period (budget_duration) ends for every worker at once: the
 * first to see the end rolls the slot (spend to zero, the next end stored) with one CAS.
 *
 * Windows are LiteLLM's v3 limiter's: a window opens with the first request after the last
 * one closed and lasts LITELLM_RATE_LIMIT_WINDOW_SIZE seconds (60); a request is admitted when
 * the count in the window is below the limit (exact: check and count are one CAS).
 */
#ifndef MG_LIMITS_H
#define MG_LIMITS_H

#include "mg_auth.h"

#include <stdbool.h>
#include <stdint.h>

#define MG_LIM_NANO 1000000000.0

typedef struct {
    uint64_t hash;
    char id[192];               /* "<kind>:<id>[:<model>]" */
    int64_t seed_epoch;         /* the row's reset/update stamp the spend was seeded from */
    int64_t seeded;             /* 0: not yet seeded */
    int64_t spend;              /* settled, nano-USD */
    int64_t committed;          /* settled + reserved, nano-USD (admission compares this) */
    int64_t rpm_word;           /* window start (s, high 32 bits) | count (low 32) */
    int64_t tpm_word;           /* window start (s) | tokens */
    int32_t inflight;
    int32_t pad;
    int64_t soft_alerted;       /* soft budget crossing already reported for this epoch */
    int64_t period_end_ms;      /* when the budget period of this spend ends (0: none) */
} mg_lim_slot_t;

/* Master, before fork: nslots counters (0: a default). */
int mg_limits_init(uint32_t nslots);
/* The slot for kind/id (and a model for per-model limits, else NULL), claiming one on first
 * use; -1 when the table is full (limits on it are then not enforced: counted, logged). */
int mg_lim_slot(mg_ent_kind_t kind, const char *id, const char *model);
/* The slot for kind/id/model when one was claimed, else -1; never claims one. */
int mg_lim_find(mg_ent_kind_t kind, const char *id, const char *model);
mg_lim_slot_t *mg_lim_get(int slot);
/* Seeds (or re-seeds when epoch differs) the slot's spend from a row's persisted spend. */
void mg_lim_seed(int slot, double row_spend, int64_t epoch);

/* Ends the budget period when it is over: the caller that wins the CAS zeroes the spend,
 * stores the next end (now + duration) and gets true with *next_ms set (it writes the new
 * period into the row).  row_reset_ms is the row's budget_reset_at (adopted when later). */
bool mg_lim_roll(int slot, int64_t row_reset_ms, int64_t duration_ms, int64_t now_ms,
                 int64_t *next_ms);

/* The current spend in USD of an entity: its slot's when it has one, else row_spend.  For
 * /key/info, /team/info and friends. */
double mg_lim_spend_of(mg_ent_kind_t kind, const char *id, double row_spend, int64_t epoch);
/* The same without claiming a slot (row_spend when kind/id has none): for lists, which must
 * not fill the counter table with every entity they show. */
double mg_lim_spend_peek(mg_ent_kind_t kind, const char *id, double row_spend, int64_t epoch);

/* Budget admission: refused when committed (spent + reserved) has reached max (LiteLLM's rule,
 * with in-flight requests' worst case counted); else reserves `worst` (max < 0: always). */
bool mg_lim_reserve(int slot, double max, double worst);
/* Settlement of a reservation: committed += actual - worst; spend += actual. */
void mg_lim_settle(int slot, double worst, double actual);

/* Window admission for requests (n = 1) or tokens (n = tokens to reserve): true and counted
 * when count + n <= limit in the current window; *remaining and *reset_s are filled. */
bool mg_lim_window(int64_t *word, int64_t limit, int64_t n, int64_t now_s, int64_t window_s,
                   int64_t *remaining, int64_t *reset_s);
/* Adds delta (may be negative) to a window's count if the window is still the one opened at
 * or before started_s (a correction of a token reservation); never below 0. */
void mg_lim_window_adjust(int64_t *word, int64_t delta, int64_t started_s, int64_t window_s);

/* Requests in flight: true and counted when below max (max < 0: always). */
bool mg_lim_enter(int slot, int64_t max);
void mg_lim_leave(int slot);

/* Slots used and the capacity, for /moongate/state. */
void mg_limits_usage(uint32_t *used, uint32_t *cap, uint64_t *full_misses);

#endif
