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
 * Owns: r->adm (arena), nothing else; the counters are mg_limits' in shared memory.
 */
#ifndef MG_ADMIT_H
#define MG_ADMIT_H

#include "mg_gw.h"

/* Before routing (the group is resolved).  False: the 400/429 was sent. */
bool mg_admit(mg_request_t *r);
/* When the request ends (any path, aborted too); idempotent. */
void mg_admit_settle(mg_request_t *r);
/* The rate-limit and spend headers of an admitted request (x-ratelimit-*, x-litellm-key-*). */
void mg_admit_headers(const mg_request_t *r, mg_buf_t *h);
/* The request's cost in USD by the deployment that answered (< 0: no price known). */
double mg_admit_cost(const mg_request_t *r);

#endif
