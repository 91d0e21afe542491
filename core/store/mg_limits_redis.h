/*
 * mg_limits_redis.h -- rpm_limit, tpm_limit and max_parallel_requests shared by the replicas
 * of a deployment through one Redis: one atomic Lua script checks and counts every window
 * and parallel descriptor of a request at once.
 *
 * Semantics are mg_limits' (the shared-memory counters), so an instance answers the same
 * whether its limits are local or in Redis: LiteLLM v3's window (a window of
 * LITELLM_RATE_LIMIT_WINDOW_SIZE seconds opens with the first request after the previous one
 * closed; a request is admitted when count + n <= limit), requests in flight below the max.
 * The clock is Redis's (TIME in the script), so replicas agree on windows.  All or nothing:
 * the script checks every descriptor before it counts any.
 *
 * Keys: "{<descriptor>:<value>}:moongate:requests|tokens|parallel" (LiteLLM's descriptor
 * names and hash tags, so one descriptor's keys share a cluster slot; moongate's own
 * namespace, so a LiteLLM proxy on the same Redis, whose counters mean something else, never
 * reads or breaks them).  A window is a hash {s: start, n: count} that expires when the
 * window ends; requests in flight are a sorted set of request ids scored by when their holder
 * last refreshed them (every 10 s): an id older than 60 s belongs to a replica that died and
 * is not counted.  Settlement (correct a token reservation, release the slot) is one script,
 * idempotent by request id, queued (bounded) while Redis is unreachable.
 *
 * One object per worker, on the worker's event loop (hiredis async + libevent), with its own
 * connection.  Redis down, slow (no reply within the deadline) or erroring: the caller is told
 * to fall back (it uses the shared-memory counters of its instance); the outage is logged once,
 * counted, and shown in status().  What an admission took in Redis after its caller gave up
 * on it (deadline, client gone) is undone when the reply comes.
 *
 * Ownership: ops and holds are owned by this object; the caller holds a handle until the op's
 * callback ran (or it cancelled), and a hold until it settles it.
 */
#ifndef MG_LIMITS_REDIS_H
#define MG_LIMITS_REDIS_H

#include "../base/mg_err.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define MG_LR_MAX_DESC 8

typedef struct mg_limits_redis_s mg_limits_redis_t;
typedef struct mg_lr_op_s mg_lr_op_t;
typedef struct mg_lr_hold_s mg_lr_hold_t;

typedef struct {
    struct event_base *base;
    const char *host;
    int port;
    const char *username;       /* may be NULL */
    const char *password;       /* may be NULL; secret */
    int db;
    const char *instance_id;    /* names this instance in request ids */
    int worker;
    int64_t window_s;           /* LITELLM_RATE_LIMIT_WINDOW_SIZE */
    int deadline_ms;            /* how long an admission waits for Redis (0: 500) */
} mg_limits_redis_conf_t;

/* One rate-limit descriptor of a request (LiteLLM's): what it limits and by how much. */
typedef struct {
    const char *desc;           /* borrowed: "api_key", "team", "user", "end_user", ... */
    const char *value;          /* borrowed: the entity's id ("<token>:<model>" per model) */
    int64_t rpm;                /* requests per window, -1: none */
    int64_t tpm;                /* tokens per window, -1: none */
    int64_t parallel;           /* requests in flight, -1: none */
} mg_lr_desc_t;

enum { MG_LR_PARALLEL = 0, MG_LR_REQUESTS = 1, MG_LR_TOKENS = 2 };

typedef struct {
    int rc;                     /* MG_OK admitted, MG_BUSY refused, MG_ERROR fall back */
    /* refused: which descriptor, which limit, and what the 429 says */
    int index;
    int type;                   /* MG_LR_PARALLEL / REQUESTS / TOKENS */
    int64_t limit, remaining, reset_s;
    /* admitted: per descriptor, what is left in its windows (-1: no such limit) */
    int64_t rpm_remaining[MG_LR_MAX_DESC];
    int64_t tpm_remaining[MG_LR_MAX_DESC];
    mg_lr_hold_t *hold;         /* admitted: settle it with mg_limits_redis_settle() */
    const char *why;            /* MG_ERROR: "timeout", "error", "disconnected" (static) */
} mg_lr_result_t;

/* Runs once per op, never from inside the call that created it.  res is valid during it. */
typedef void (*mg_lr_cb)(void *ud, const mg_lr_result_t *res);

mg_limits_redis_t *mg_limits_redis_create(const mg_limits_redis_conf_t *conf, mg_err_t *err);
void mg_limits_redis_destroy(mg_limits_redis_t *lr);

/* Whether admissions go to Redis now (connected and scripts loaded). */
bool mg_limits_redis_ready(const mg_limits_redis_t *lr);

/*
 * Checks and counts n descriptors (n <= MG_LR_MAX_DESC; strings are copied), reserving
 * `tokens` against each tpm.  Returns the op, whose cb runs when Redis answered or the
 * deadline passed; NULL when Redis is not usable now (not ready, too many waiting): the caller
 * falls back at once, and the fallback is counted.
 */
mg_lr_op_t *mg_limits_redis_admit(mg_limits_redis_t *lr, const mg_lr_desc_t *d, int n,
                                  int64_t tokens, mg_lr_cb cb, void *ud);
/* The caller is gone: cb will not run; whatever the script counted is undone. */
void mg_limits_redis_cancel(mg_lr_op_t *op);

/* Settles an admitted request: the tokens reserved become tokens_used (in the window they
 * were counted in, if it is still open), the parallel slot is released.  Frees the hold.
 * Fire and forget; retried after a reconnect (idempotent by request id). */
void mg_limits_redis_settle(mg_limits_redis_t *lr, mg_lr_hold_t *hold, int64_t tokens_used);

/* {"backend":"redis"|"local","redis_configured":true,"redis_connected":..,"fallbacks":N,...} */
json_t *mg_limits_redis_status(const mg_limits_redis_t *lr);

#endif
