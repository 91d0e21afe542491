/*
 * mg_admit.h -- budgets and rate limits of keys, teams, users, end users and organizations:
 * admission before any upstream call, settlement when the request ends.
 *
 * Admission, for every entity the request belongs to that has a limit: budget (the request's
 * worst-case cost reserved atomically against what is spent and reserved: concurrency cannot
 * overshoot), requests and tokens per window, requests in flight, and the key's per-model
 * limits.  All or nothing: a refusal releases what was taken.  Settlement corrects each
 * reservation to the real cost and tokens, once per request.
 *
 * Where the counters are: budgets and spend always in shared memory (mg_limits, per
 * instance).  Requests and tokens per window and requests in flight in shared memory too,
 * unless Redis is configured (mg_limits_redis): then in Redis, shared by every replica, and in
 * shared memory only while Redis is unusable (down, erroring, or slower than the admission's
 * deadline: counted and shown in /moongate/state).  With Redis, a request's budgets are
 * reserved first, then all its rate limits in one script, so when both a budget and a rate
 * limit would refuse, the budget's 400 is the answer (the shared-memory path answers in the
 * entities' order: the key's limits before the team's budget).
 *
 * Owns: r->adm (arena), nothing else.
 */
#ifndef MG_ADMIT_H
#define MG_ADMIT_H

#include "mg_gw.h"

typedef struct mg_limits_redis_s mg_limits_redis_t; /* ../store/mg_limits_redis.h */

/* What routing does once the request is admitted. */
typedef void (*mg_admit_resume_cb)(mg_request_t *r);

/*
 * Before routing (the group is resolved).  MG_OK: admitted, go on.  MG_ERROR: refused, the
 * 400/429 was sent.  MG_AGAIN: the request's rate limits are being checked in Redis (only when
 * Redis is configured and the request has rpm/tpm/parallel limits); when the reply comes (or
 * its deadline passes, then on this instance's counters) either the 429 is sent or
 * resume(r) runs.  A request that goes away meanwhile calls mg_admit_abort() (through
 * mg_proxy_abort) or mg_admit_settle().
 */
int mg_admit(mg_request_t *r, mg_admit_resume_cb resume);
/* The client went away: a pending Redis check is cancelled (what it counted is undone). */
void mg_admit_abort(mg_request_t *r);
/* When the request ends (any path, aborted too); idempotent. */
void mg_admit_settle(mg_request_t *r);
/* The worker's Redis limiter (borrowed until set again; NULL: limits in shared memory). */
void mg_admit_set_redis(mg_limits_redis_t *lr);
/* LITELLM_RATE_LIMIT_WINDOW_SIZE in seconds (60). */
int64_t mg_admit_window_s(void);
/* The rate-limit and spend headers of an admitted request (x-ratelimit-*, x-litellm-key-*). */
void mg_admit_headers(const mg_request_t *r, mg_buf_t *h);
/* The request's cost in USD by the deployment that answered (< 0: no price known). */
double mg_admit_cost(const mg_request_t *r);

#endif
