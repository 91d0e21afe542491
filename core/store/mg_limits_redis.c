/*
 * mg_limits_redis.c -- rate limits across replicas through Redis (see mg_limits_redis.h).
 *
 * Owns: one hiredis async context and its timers, the scripts' SHA1s, every op (admission
 * waiting on Redis, or whose reply is still due after its caller gave up), every hold (an
 * admitted request's counts, until settled), the queue of settlements waiting for a
 * connection, and copies of the configuration strings (the password is wiped on destroy).
 * Does not own: the event base; what the callers do with a result.
 *
 * Lifetimes (hiredis 0.14 async, as mg_hint_redis.c):
 *  - hiredis frees a context itself after a failed connect (onConnect with REDIS_ERR) and
 *    after onDisconnect; we only drop our pointer there.
 *  - We free a context ourselves only from our own timers or from destroy(): "abandoning" it
 *    clears ac->data and the connect/disconnect hooks first.  Freeing calls every pending
 *    reply callback with a NULL reply: those find their op or command through privdata (not
 *    ac->data), and a NULL reply never runs a caller's callback directly: it is deferred to
 *    the op's own timer, so no caller code runs inside redisAsyncFree().
 *  - A caller's callback runs only from a reply callback or from the op's timer, never from
 *    inside mg_limits_redis_admit(); it may call admit, settle and cancel (of other ops).
 *  - An op is freed by whichever of its reply or its timer comes last (in_redis tells which
 *    is still due); cancel() only forgets the caller.
 * Single-threaded: everything runs on the worker's event loop.
 */
#include "mg_limits_redis.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_metrics_litellm.h"
#include "../base/mg_time.h"

#include <event2/event_struct.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <hiredis/adapters/libevent.h>   /* header-only; compiles clean under our flags */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_LR_BACKOFF_MIN_MS 100
#define MG_LR_BACKOFF_MAX_MS 2000
#define MG_LR_CONNECT_TIMEOUT_MS 1000   /* connect + AUTH + SELECT + SCRIPT LOAD */
#define MG_LR_DEADLINE_MS 500           /* an admission's wait for its reply */
#define MG_LR_INFLIGHT_MAX 4096         /* admissions waiting on Redis; beyond: local */
#define MG_LR_QUEUE_MAX 4096            /* settlements waiting for a connection; beyond: dropped */
#define MG_LR_STALE_S 60                /* a parallel slot not refreshed for this long is lost */
#define MG_LR_REFRESH_MS 10000          /* holders refresh their slots this often */
#define MG_LR_ARGS_MAX (8 + 7 * MG_LR_MAX_DESC)

/* ---- the scripts ---- */

/*
 * Admission.  KEYS: per descriptor its requests window, tokens window and parallel set, then
 * the request's marker.  ARGV: window seconds, stale seconds, request id, descriptors, marker
 * ttl, then per descriptor rpm, tpm, parallel max and tokens (-1: no such limit).  Checks every
 * descriptor in order (parallel, requests, tokens: mg_admit's order), then counts them all.
 * Returns {1, index, type, limit, remaining, reset} for the first refusal, else {0, now,
 * rpm_remaining, tpm_remaining per descriptor}.  The marker says "this request counted here":
 * settlement applies only while it exists and consumes it, so a settlement or an undo sent
 * twice, or for an admission that never ran, changes nothing.
 */
static const char mg_lr_admit_lua[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local w, stale, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    "local n, mttl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local st = {}\n"
    "local function win(k)\n"
    "  local v = redis.call('HMGET', k, 's', 'n')\n"
    "  local s, c = tonumber(v[1]) or 0, tonumber(v[2]) or 0\n"
    "  if s == 0 or now - s >= w then return now, 0 end\n"
    "  return s, c\n"
    "end\n"
    "for i = 1, n do\n"
    "  local a, k = 5 + (i - 1) * 4, (i - 1) * 3\n"
    "  local rpm, tpm, par, tok = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])\n"
    "  if par >= 0 then\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now - stale)\n"
    "    if redis.call('ZCARD', KEYS[k + 3]) >= par then return {1, i - 1, 0, par, 0, now + 1} end\n"
    "  end\n"
    "  local rs, rc, ts, tc = 0, 0, 0, 0\n"
    "  if rpm >= 0 then\n"
    "    rs, rc = win(KEYS[k + 1])\n"
    "    if rc + 1 > rpm then return {1, i - 1, 1, rpm, math.max(rpm - rc, 0), rs + w} end\n"
    "  end\n"
    "  if tpm >= 0 then\n"
    "    ts, tc = win(KEYS[k + 2])\n"
    "    if tc + tok > tpm then return {1, i - 1, 2, tpm, math.max(tpm - tc, 0), ts + w} end\n"
    "  end\n"
    "  st[i] = {rs, rc, ts, tc}\n"
    "end\n"
    "local out = {0, now}\n"
    "for i = 1, n do\n"
    "  local a, k = 5 + (i - 1) * 4, (i - 1) * 3\n"
    "  local rpm, tpm, par, tok = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])\n"
    "  local s = st[i]\n"
    "  if par >= 0 then\n"
    "    redis.call('ZADD', KEYS[k + 3], now, member)\n"
    "    redis.call('EXPIRE', KEYS[k + 3], stale * 2)\n"
    "  end\n"
    "  local rr, tr = -1, -1\n"
    "  if rpm >= 0 then\n"
    "    redis.call('HSET', KEYS[k + 1], 's', s[1])\n"
    "    redis.call('HSET', KEYS[k + 1], 'n', s[2] + 1)\n"
    "    redis.call('EXPIREAT', KEYS[k + 1], s[1] + w)\n"
    "    rr = rpm - s[2] - 1\n"
    "  end\n"
    "  if tpm >= 0 then\n"
    "    redis.call('HSET', KEYS[k + 2], 's', s[3])\n"
    "    redis.call('HSET', KEYS[k + 2], 'n', s[4] + tok)\n"
    "    redis.call('EXPIREAT', KEYS[k + 2], s[3] + w)\n"
    "    tr = tpm - s[4] - tok\n"
    "  end\n"
    "  out[#out + 1] = rr\n"
    "  out[#out + 1] = tr\n"
    "end\n"
    "redis.call('SET', KEYS[n * 3 + 1], now, 'EX', mttl)\n"
    "return out\n";

/*
 * Settlement (and undo).  KEYS as admission's.  ARGV: window seconds, the window start the
 * request counted in (the marker's value is the truth; ARGV[2] is unused), request id,
 * descriptors, then per descriptor the requests delta, tokens delta and 1 to release its
 * parallel slot.  A delta applies only to the window the request was counted in, if it is
 * still open (mg_lim_window_adjust's rule); counts never go below 0.
 */
static const char mg_lr_settle_lua[] =
    "local n = tonumber(ARGV[4])\n"
    "local started = tonumber(redis.call('GET', KEYS[n * 3 + 1]))\n"
    "if started == nil then return 0 end\n"
    "redis.call('DEL', KEYS[n * 3 + 1])\n"
    "local w, member = tonumber(ARGV[1]), ARGV[3]\n"
    "local function adj(k, d)\n"
    "  local v = redis.call('HMGET', k, 's', 'n')\n"
    "  local s, c = tonumber(v[1]), tonumber(v[2]) or 0\n"
    "  if s == nil or s > started or started - s >= w then return end\n"
    "  c = c + d\n"
    "  if c < 0 then c = 0 end\n"
    "  redis.call('HSET', k, 'n', c)\n"
    "end\n"
    "for i = 1, n do\n"
    "  local a, k = 4 + (i - 1) * 3, (i - 1) * 3\n"
    "  local rd, td, par = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])\n"
    "  if rd ~= 0 then adj(KEYS[k + 1], rd) end\n"
    "  if td ~= 0 then adj(KEYS[k + 2], td) end\n"
    "  if par == 1 then redis.call('ZREM', KEYS[k + 3], member) end\n"
    "end\n"
    "return 1\n";

/*
 * Refresh of a request in flight.  KEYS: its parallel sets, then its marker.  ARGV: request
 * id, stale seconds, marker ttl.  Re-adds the id with Redis's time (after a Redis restart the
 * requests in flight count again) while the marker exists (after a settlement, never).
 */
static const char mg_lr_refresh_lua[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local m = KEYS[#KEYS]\n"
    "if redis.call('EXPIRE', m, tonumber(ARGV[3])) == 0 then return 0 end\n"
    "local now = tonumber(redis.call('TIME')[1])\n"
    "for i = 1, #KEYS - 1 do\n"
    "  redis.call('ZADD', KEYS[i], now, ARGV[1])\n"
    "  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2]) * 2)\n"
    "end\n"
    "return 1\n";

enum { MG_LR_S_ADMIT = 0, MG_LR_S_SETTLE, MG_LR_S_REFRESH, MG_LR_NSCRIPTS };

static const char *const mg_lr_scripts[MG_LR_NSCRIPTS] = {mg_lr_admit_lua, mg_lr_settle_lua,
                                                          mg_lr_refresh_lua};

/* ---- types ---- */

typedef enum {
    MG_LR_IDLE = 0,             /* no context; a retry may be scheduled */
    MG_LR_CONNECTING,           /* TCP connect in progress */
    MG_LR_HANDSHAKE,            /* AUTH / SELECT / SCRIPT LOAD sent */
    MG_LR_READY,
    MG_LR_CLOSING,              /* failed inside a hiredis callback; kill event pending */
} mg_lr_state_t;

/* A command's arguments after EVALSHA <sha>: numkeys, keys, args (one buffer, offsets). */
typedef struct {
    mg_buf_t b;                 /* owned */
    int argc;
    size_t off[MG_LR_ARGS_MAX];
    size_t len[MG_LR_ARGS_MAX];
} mg_lr_argv_t;

enum { MG_LR_F_RPM = 1, MG_LR_F_TPM = 2, MG_LR_F_PAR = 4 };

struct mg_lr_hold_s {
    mg_lr_hold_t *prev, *next;  /* lr->holds while the caller holds it */
    int n;
    uint8_t flags[MG_LR_MAX_DESC];
    char *base[MG_LR_MAX_DESC]; /* malloc: "{desc:value}" */
    char member[96];            /* the request's id: "<instance>:<worker>:<seq>" */
    int64_t tokens;             /* reserved against each tpm */
};

struct mg_lr_op_s {
    mg_lr_op_t *prev, *next;    /* lr->ops */
    mg_limits_redis_t *lr;      /* borrowed: owner */
    mg_lr_cb cb;                /* NULL once delivered or cancelled */
    void *ud;
    bool in_redis;              /* hiredis holds the op as privdata and will call back once */
    bool as_eval;               /* resent as EVAL after NOSCRIPT */
    bool ev_on;
    const char *why;            /* static: the deferred fallback's reason */
    struct event ev;            /* the deadline, then a deferred fallback */
    mg_lr_argv_t a;
    mg_lr_hold_t *hold;         /* owned until given to the caller */
};

/* A settlement or a refresh: fire and forget. */
typedef struct mg_lr_cmd_s {
    struct mg_lr_cmd_s *next;   /* lr's queue while waiting for a connection */
    mg_limits_redis_t *lr;      /* borrowed */
    int script;
    bool as_eval;
    mg_lr_argv_t a;
} mg_lr_cmd_t;

struct mg_limits_redis_s {
    struct event_base *base;    /* borrowed: the worker's loop */
    char *host;                 /* owned */
    int port;
    char *username;             /* owned, may be NULL */
    char *password;             /* owned, may be NULL; secret, wiped on destroy */
    int db;
    char *instance_id;          /* owned */
    int worker;
    int64_t window_s;
    int deadline_ms;

    redisAsyncContext *ac;      /* owned while set; hiredis frees it on its own disconnect */
    mg_lr_state_t state;
    int handshake_left;         /* replies still due before READY */
    char sha[MG_LR_NSCRIPTS][41];
    int backoff_ms;
    unsigned fails;             /* consecutive connection failures */
    struct event *retry_ev;     /* owned */
    struct event *timeout_ev;   /* owned: connect/handshake deadline */
    struct event *kill_ev;      /* owned: deferred teardown */
    struct event *refresh_ev;   /* owned: refresh of the holds' parallel slots */
    bool destroying;

    mg_lr_op_t *ops;            /* owned */
    unsigned waiting;           /* ops whose caller waits */
    mg_lr_hold_t *holds;        /* owned, lent to callers */
    unsigned nholds;
    mg_lr_cmd_t *q_head, *q_tail;   /* owned: settlements waiting for a connection */
    unsigned nqueued;
    uint64_t seq;

    bool up;                    /* READY and not failed since */
    bool outage_said;           /* this outage was logged */
    int64_t down_since_ms;      /* real time the outage began, 0 when up */
    uint64_t admitted, refused, fallbacks, fb_disconnected, fb_timeout, fb_error, fb_busy;
    uint64_t undone, settled, settle_dropped, reconnects, errors;
    char last_error[512];       /* "" = none; never contains the password */
    mg_metric_t *m_up;          /* shared memory: moongate_limits_redis_up{worker} */
};

static void mg_lr_conn_start(mg_limits_redis_t *lr);
static void mg_lr_flush_queue(mg_limits_redis_t *lr);

/* ---- arguments ---- */

static void
mg_lr_arg(mg_lr_argv_t *a, const char *s, size_t n)
{
    if (a->argc >= MG_LR_ARGS_MAX) {
        mg_log(MG_LOG_ERROR, NULL, "limits redis: too many script arguments");
        abort(); /* bounded by MG_LR_MAX_DESC: a bug */
    }
    a->off[a->argc] = mg_buf_len(&a->b);
    a->len[a->argc] = n;
    mg_buf_append(&a->b, s, n);
    a->argc++;
}

static void
mg_lr_argf(mg_lr_argv_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mg_lr_argf(mg_lr_argv_t *a, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    if ((size_t) n >= sizeof(tmp)) {
        /* a long key: format it again into the buffer itself */
        if (a->argc >= MG_LR_ARGS_MAX) {
            mg_log(MG_LOG_ERROR, NULL, "limits redis: too many script arguments");
            abort();
        }
        a->off[a->argc] = mg_buf_len(&a->b);
        va_start(ap, fmt);
        mg_buf_vprintf(&a->b, fmt, ap);
        va_end(ap);
        a->len[a->argc] = mg_buf_len(&a->b) - a->off[a->argc];
        a->argc++;
        return;
    }
    mg_lr_arg(a, tmp, (size_t) n);
}

/* The keys of a hold (three per descriptor, then the marker) after numkeys. */
static void
mg_lr_keys(mg_lr_argv_t *a, const mg_lr_hold_t *h)
{
    mg_lr_argf(a, "%d", h->n * 3 + 1);
    for (int i = 0; i < h->n; i++) {
        mg_lr_argf(a, "%s:moongate:requests", h->base[i]);
        mg_lr_argf(a, "%s:moongate:tokens", h->base[i]);
        mg_lr_argf(a, "%s:moongate:parallel", h->base[i]);
    }
    mg_lr_argf(a, "%s:moongate:counted:%s", h->base[0], h->member);
}

static int64_t
mg_lr_marker_ttl(const mg_limits_redis_t *lr)
{
    int64_t t = lr->window_s > MG_LR_STALE_S ? lr->window_s : MG_LR_STALE_S;
    return t * 2;
}

/* Sends a script with a's arguments (EVALSHA, or EVAL with its text). */
static int
mg_lr_send(mg_limits_redis_t *lr, int script, bool as_eval, const mg_lr_argv_t *a,
           redisCallbackFn *fn, void *priv)
{
    const char *argv[MG_LR_ARGS_MAX + 2];
    size_t len[MG_LR_ARGS_MAX + 2];
    argv[0] = as_eval ? "EVAL" : "EVALSHA";
    len[0] = strlen(argv[0]);
    argv[1] = as_eval ? mg_lr_scripts[script] : lr->sha[script];
    len[1] = strlen(argv[1]);
    const char *base = mg_buf_head(&a->b);
    for (int i = 0; i < a->argc; i++) {
        argv[i + 2] = base + a->off[i];
        len[i + 2] = a->len[i];
    }
    if (lr->ac == NULL || lr->state != MG_LR_READY) {
        return REDIS_ERR;
    }
    return redisAsyncCommandArgv(lr->ac, fn, priv, a->argc + 2, argv, len);
}

static bool
mg_lr_noscript(const redisReply *rp)
{
    return rp->type == REDIS_REPLY_ERROR && strncmp(rp->str, "NOSCRIPT", 8) == 0;
}

/* ---- errors, state and logging ---- */

static void
mg_lr_scrub(const mg_limits_redis_t *lr, char *s, size_t cap)
{
    if (lr->password != NULL && lr->password[0] != '\0') {
        size_t plen = strlen(lr->password);
        char *p;
        char *from = s;
        while ((p = strstr(from, lr->password)) != NULL) {
            size_t tail = strlen(p + plen);
            if ((size_t) (p - s) + 3 + tail + 1 > cap) {
                *p = '\0';
                break;
            }
            memmove(p + 3, p + plen, tail + 1);
            memcpy(p, "***", 3);
            from = p + 3;
        }
    }
    for (char *q = s; *q != '\0'; q++) {
        if ((unsigned char) *q >= 0x80 || (unsigned char) *q < 0x20) {
            *q = '?';
        }
    }
}

/* Redis is (again) where the limits are. */
static void
mg_lr_set_up(mg_limits_redis_t *lr)
{
    if (lr->up) {
        return;
    }
    lr->up = true;
    mg_metric_set(lr->m_up, 1);
    if (lr->outage_said) {
        /* at the level of the outage's line, so whoever saw that sees this */
        mg_log(MG_LOG_WARN, NULL, "rate limits: Redis %s:%d is back after %.1fs; rpm, tpm and "
                                    "parallel limits are shared across replicas again (counts "
                                    "taken locally meanwhile are not merged)", lr->host, lr->port,
               (double) (mg_time_real_ms() - lr->down_since_ms) / 1000.0);
    }
    lr->outage_said = false;
    lr->down_since_ms = 0;
}

/* A failure: recorded in last_error; the first of an outage is logged, the rest at debug. */
static void
mg_lr_fail(mg_limits_redis_t *lr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mg_lr_fail(mg_limits_redis_t *lr, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(lr->last_error, sizeof(lr->last_error), "%s:%d: %s", lr->host, lr->port, msg);
    mg_lr_scrub(lr, lr->last_error, sizeof(lr->last_error));
    lr->errors++;
    if (lr->up) {
        lr->up = false;
        mg_metric_set(lr->m_up, 0);
    }
    if (lr->down_since_ms == 0) {
        lr->down_since_ms = mg_time_real_ms();
    }
    if (!lr->outage_said) {
        lr->outage_said = true;
        mg_log(MG_LOG_WARN, NULL, "rate limits: Redis %s; rpm, tpm and parallel limits hold per "
                                  "instance (shared memory) until it is back", lr->last_error);
    } else {
        mg_log(MG_LOG_DEBUG, NULL, "rate limits: Redis %s (failure %u in a row)", lr->last_error,
               lr->fails + 1);
    }
}

/* A script that failed on a working connection: recorded; logged when the text is new, and
 * every 100th time. */
static void
mg_lr_reply_error(mg_limits_redis_t *lr, const char *what, const char *msg)
{
    char prev[sizeof(lr->last_error)];
    memcpy(prev, lr->last_error, sizeof(prev));
    snprintf(lr->last_error, sizeof(lr->last_error), "%s:%d: %s failed: %s", lr->host, lr->port,
             what, msg);
    mg_lr_scrub(lr, lr->last_error, sizeof(lr->last_error));
    lr->errors++;
    if (strcmp(prev, lr->last_error) != 0 || lr->errors % 100 == 1) {
        mg_log(MG_LOG_WARN, NULL, "rate limits: Redis %s (%" PRIu64 " errors so far)",
               lr->last_error, lr->errors);
    }
}

static void
mg_lr_count_fallback(mg_limits_redis_t *lr, const char *why)
{
    lr->fallbacks++;
    if (strcmp(why, "timeout") == 0) {
        lr->fb_timeout++;
    } else if (strcmp(why, "error") == 0) {
        lr->fb_error++;
    } else if (strcmp(why, "busy") == 0) {
        lr->fb_busy++;
    } else {
        lr->fb_disconnected++;
    }
    mg_ml_values_t v;
    memset(&v, 0, sizeof(v));
    v.v[MG_ML_KIND] = why;
    mg_metric_inc(mg_ml_series(MG_MF_LIMITS_LOCAL_FALLBACKS, &v), 1);
}

/* ---- connection lifecycle ---- */

static void
mg_lr_retry(mg_limits_redis_t *lr)
{
    lr->state = MG_LR_IDLE;
    lr->fails++;
    if (lr->destroying || evtimer_pending(lr->retry_ev, NULL)) {
        return;
    }
    struct timeval tv = {lr->backoff_ms / 1000, (lr->backoff_ms % 1000) * 1000};
    evtimer_add(lr->retry_ev, &tv);
    lr->backoff_ms *= 2;
    if (lr->backoff_ms > MG_LR_BACKOFF_MAX_MS) {
        lr->backoff_ms = MG_LR_BACKOFF_MAX_MS;
    }
}

/* Detaches and frees the context (never from inside its onConnect: use the kill event).
 * Pending replies come back NULL, to their op or command. */
static void
mg_lr_abandon(mg_limits_redis_t *lr)
{
    redisAsyncContext *ac = lr->ac;
    lr->ac = NULL;
    evtimer_del(lr->timeout_ev);
    if (lr->state == MG_LR_READY || lr->state == MG_LR_HANDSHAKE) {
        lr->state = MG_LR_IDLE;
    }
    if (ac == NULL) {
        return;
    }
    ac->data = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}

static void
mg_lr_fail_later(mg_limits_redis_t *lr)
{
    lr->state = MG_LR_CLOSING;
    event_active(lr->kill_ev, EV_TIMEOUT, 0);
}

static void
mg_lr_kill_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_limits_redis_t *lr = arg;
    mg_lr_abandon(lr);
    mg_lr_retry(lr);
}

static void
mg_lr_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_limits_redis_t *lr = arg;
    lr->reconnects++;
    mg_lr_conn_start(lr);
}

static void
mg_lr_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_limits_redis_t *lr = arg;
    if (lr->ac == NULL || lr->state == MG_LR_READY || lr->state == MG_LR_CLOSING) {
        return;
    }
    mg_lr_fail(lr, "%s timed out after %dms",
               lr->state == MG_LR_CONNECTING ? "connect" : "handshake", MG_LR_CONNECT_TIMEOUT_MS);
    mg_lr_abandon(lr); /* a timer: outside every hiredis callback */
    mg_lr_retry(lr);
}

static void
mg_lr_ready(mg_limits_redis_t *lr)
{
    lr->state = MG_LR_READY;
    lr->backoff_ms = MG_LR_BACKOFF_MIN_MS;
    evtimer_del(lr->timeout_ev);
    if (lr->fails > 0) {
        mg_log(MG_LOG_INFO, NULL, "rate limits: Redis %s:%d ready after %u failures", lr->host,
               lr->port, lr->fails);
    }
    lr->fails = 0;
    mg_lr_set_up(lr);
    mg_lr_flush_queue(lr);
}

static void
mg_lr_hs_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    mg_limits_redis_t *lr = ac->data;
    redisReply *rp = reply;
    if (lr == NULL || rp == NULL || lr->state != MG_LR_HANDSHAKE) {
        return; /* abandoned, or being freed */
    }
    intptr_t what = (intptr_t) privdata; /* -1 AUTH, -2 SELECT, else a script's index */
    if (rp->type == REDIS_REPLY_ERROR) {
        mg_lr_fail(lr, "%s failed: %s", what == -1 ? "AUTH" : what == -2 ? "SELECT" : "SCRIPT LOAD",
                   rp->str);
        mg_lr_fail_later(lr);
        return;
    }
    if (what >= 0 && what < MG_LR_NSCRIPTS) {
        if (rp->type != REDIS_REPLY_STRING || rp->len != 40) {
            mg_lr_fail(lr, "SCRIPT LOAD answered something else than a SHA1");
            mg_lr_fail_later(lr);
            return;
        }
        memcpy(lr->sha[what], rp->str, 40);
        lr->sha[what][40] = '\0';
    }
    if (--lr->handshake_left == 0) {
        mg_lr_ready(lr);
    }
}

static void
mg_lr_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    mg_limits_redis_t *lr = ac->data;
    if (lr == NULL) {
        return;
    }
    if (status != REDIS_OK) {
        lr->ac = NULL; /* hiredis frees ac when we return */
        evtimer_del(lr->timeout_ev);
        mg_lr_fail(lr, "connect failed: %s", ac->errstr);
        mg_lr_retry(lr);
        return;
    }
    lr->state = MG_LR_HANDSHAKE;
    (void) redisEnableKeepAlive(&ac->c); /* best effort: only speeds up dead-peer detection */
    int rc = REDIS_OK;
    lr->handshake_left = 0;
    if (lr->password != NULL) {
        const char *argv[3];
        size_t len[3];
        int argc = 0;
        argv[argc] = "AUTH";
        len[argc++] = 4;
        if (lr->username != NULL) {
            argv[argc] = lr->username;
            len[argc++] = strlen(lr->username);
        }
        argv[argc] = lr->password;
        len[argc++] = strlen(lr->password);
        rc = redisAsyncCommandArgv(ac, mg_lr_hs_reply, (void *) (intptr_t) -1, argc, argv, len);
        lr->handshake_left++;
    }
    if (rc == REDIS_OK && lr->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", lr->db);
        const char *argv[2] = {"SELECT", db};
        size_t len[2] = {6, strlen(db)};
        rc = redisAsyncCommandArgv(ac, mg_lr_hs_reply, (void *) (intptr_t) -2, 2, argv, len);
        lr->handshake_left++;
    }
    for (int i = 0; rc == REDIS_OK && i < MG_LR_NSCRIPTS; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", mg_lr_scripts[i]};
        size_t len[3] = {6, 4, strlen(mg_lr_scripts[i])};
        rc = redisAsyncCommandArgv(ac, mg_lr_hs_reply, (void *) (intptr_t) i, 3, argv, len);
        lr->handshake_left++;
    }
    if (rc != REDIS_OK) {
        mg_lr_fail(lr, "handshake could not be sent");
        mg_lr_fail_later(lr); /* freeing inside onConnect is not allowed */
    }
}

static void
mg_lr_on_disconnect(const redisAsyncContext *ac, int status)
{
    mg_limits_redis_t *lr = ac->data;
    if (lr == NULL) {
        return;
    }
    lr->ac = NULL; /* hiredis frees ac when we return (its replies come back NULL first) */
    evtimer_del(lr->timeout_ev);
    if (lr->state == MG_LR_CLOSING) {
        return; /* the kill event schedules the retry; keep its error */
    }
    lr->state = MG_LR_IDLE;
    mg_lr_fail(lr, "disconnected: %s", status == REDIS_OK || ac->errstr[0] == '\0'
                                           ? "connection closed" : ac->errstr);
    mg_lr_retry(lr);
}

static void
mg_lr_conn_start(mg_limits_redis_t *lr)
{
    redisAsyncContext *ac = redisAsyncConnect(lr->host, lr->port);
    if (ac == NULL) {
        mg_lr_fail(lr, "redisAsyncConnect() failed: out of memory");
        mg_lr_retry(lr);
        return;
    }
    if (ac->err) {
        mg_lr_fail(lr, "connect failed: %s", ac->errstr);
        redisAsyncFree(ac); /* fresh context: no callbacks registered */
        mg_lr_retry(lr);
        return;
    }
    ac->data = lr;
    if (redisLibeventAttach(ac, lr->base) != REDIS_OK) {
        mg_lr_fail(lr, "redisLibeventAttach() failed");
        ac->data = NULL;
        redisAsyncFree(ac);
        mg_lr_retry(lr);
        return;
    }
    redisAsyncSetConnectCallback(ac, mg_lr_on_connect);
    redisAsyncSetDisconnectCallback(ac, mg_lr_on_disconnect);
    lr->ac = ac;
    lr->state = MG_LR_CONNECTING;
    struct timeval tv = {MG_LR_CONNECT_TIMEOUT_MS / 1000, (MG_LR_CONNECT_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(lr->timeout_ev, &tv);
}

/* ---- holds and fire-and-forget commands ---- */

static void
mg_lr_hold_free(mg_lr_hold_t *h)
{
    for (int i = 0; i < h->n; i++) {
        free(h->base[i]);
    }
    free(h);
}

static void
mg_lr_hold_link(mg_limits_redis_t *lr, mg_lr_hold_t *h)
{
    h->prev = NULL;
    h->next = lr->holds;
    if (lr->holds != NULL) {
        lr->holds->prev = h;
    }
    lr->holds = h;
    lr->nholds++;
}

static void
mg_lr_hold_unlink(mg_limits_redis_t *lr, mg_lr_hold_t *h)
{
    if (h->prev != NULL) {
        h->prev->next = h->next;
    } else {
        lr->holds = h->next;
    }
    if (h->next != NULL) {
        h->next->prev = h->prev;
    }
    h->prev = h->next = NULL;
    lr->nholds--;
}

static void
mg_lr_cmd_free(mg_lr_cmd_t *c)
{
    mg_buf_free(&c->a.b);
    free(c);
}

static void
mg_lr_enqueue(mg_limits_redis_t *lr, mg_lr_cmd_t *c, bool front)
{
    if (lr->destroying || lr->nqueued >= MG_LR_QUEUE_MAX) {
        lr->settle_dropped++; /* its slot is lost after MG_LR_STALE_S, its window closes */
        mg_lr_cmd_free(c);
        return;
    }
    c->next = NULL;
    if (front) {
        c->next = lr->q_head;
        lr->q_head = c;
        if (lr->q_tail == NULL) {
            lr->q_tail = c;
        }
    } else if (lr->q_tail != NULL) {
        lr->q_tail->next = c;
        lr->q_tail = c;
    } else {
        lr->q_head = lr->q_tail = c;
    }
    lr->nqueued++;
}

static void mg_lr_cmd_send(mg_limits_redis_t *lr, mg_lr_cmd_t *c);

static void
mg_lr_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void) ac;
    mg_lr_cmd_t *c = privdata;
    mg_limits_redis_t *lr = c->lr;
    redisReply *rp = reply;
    if (rp == NULL) {
        /* the connection went away: a settlement is sent again (idempotent), a refresh is
         * the next tick's */
        if (c->script == MG_LR_S_SETTLE && !lr->destroying) {
            mg_lr_enqueue(lr, c, true);
        } else {
            mg_lr_cmd_free(c);
        }
        return;
    }
    if (mg_lr_noscript(rp) && !c->as_eval) {
        c->as_eval = true; /* the script cache was flushed: send the text once */
        mg_lr_cmd_send(lr, c);
        return;
    }
    if (rp->type == REDIS_REPLY_ERROR) {
        if (c->script == MG_LR_S_SETTLE) {
            lr->settle_dropped++;
        }
        mg_lr_reply_error(lr, c->script == MG_LR_S_SETTLE ? "a settlement" : "a refresh", rp->str);
    } else if (c->script == MG_LR_S_SETTLE) {
        lr->settled++;
    }
    mg_lr_cmd_free(c);
}

static void
mg_lr_cmd_send(mg_limits_redis_t *lr, mg_lr_cmd_t *c)
{
    if (mg_lr_send(lr, c->script, c->as_eval, &c->a, mg_lr_cmd_reply, c) != REDIS_OK) {
        if (c->script == MG_LR_S_SETTLE) {
            mg_lr_enqueue(lr, c, false);
        } else {
            mg_lr_cmd_free(c);
        }
    }
}

static void
mg_lr_flush_queue(mg_limits_redis_t *lr)
{
    unsigned n = lr->nqueued; /* what fails to send goes back to the tail: at most one pass */
    while (n-- > 0 && lr->q_head != NULL && lr->state == MG_LR_READY) {
        mg_lr_cmd_t *c = lr->q_head;
        lr->q_head = c->next;
        if (lr->q_head == NULL) {
            lr->q_tail = NULL;
        }
        lr->nqueued--;
        mg_lr_cmd_send(lr, c);
    }
}

/* Sends (or queues) the settlement of h: rpm_delta requests, tokens - reserved, slots. */
static void
mg_lr_settle_send(mg_limits_redis_t *lr, const mg_lr_hold_t *h, int64_t rpm_delta,
                  int64_t tokens_used)
{
    mg_lr_cmd_t *c = mg_xcalloc(1, sizeof(*c));
    c->lr = lr;
    c->script = MG_LR_S_SETTLE;
    mg_lr_keys(&c->a, h);
    mg_lr_argf(&c->a, "%lld", (long long) lr->window_s);
    mg_lr_argf(&c->a, "0");
    mg_lr_arg(&c->a, h->member, strlen(h->member));
    mg_lr_argf(&c->a, "%d", h->n);
    for (int i = 0; i < h->n; i++) {
        mg_lr_argf(&c->a, "%lld", (long long) (h->flags[i] & MG_LR_F_RPM ? rpm_delta : 0));
        mg_lr_argf(&c->a, "%lld", (long long) (h->flags[i] & MG_LR_F_TPM ? tokens_used - h->tokens
                                                                         : 0));
        mg_lr_argf(&c->a, "%d", h->flags[i] & MG_LR_F_PAR ? 1 : 0);
    }
    if (lr->state == MG_LR_READY && lr->nqueued == 0) {
        mg_lr_cmd_send(lr, c);
    } else {
        mg_lr_enqueue(lr, c, false);
    }
}

static void
mg_lr_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_limits_redis_t *lr = arg;
    for (mg_lr_hold_t *h = lr->holds; h != NULL && lr->state == MG_LR_READY; h = h->next) {
        mg_lr_cmd_t *c = mg_xcalloc(1, sizeof(*c));
        c->lr = lr;
        c->script = MG_LR_S_REFRESH;
        int np = 0;
        for (int i = 0; i < h->n; i++) {
            np += h->flags[i] & MG_LR_F_PAR ? 1 : 0;
        }
        mg_lr_argf(&c->a, "%d", np + 1);
        for (int i = 0; i < h->n; i++) {
            if (h->flags[i] & MG_LR_F_PAR) {
                mg_lr_argf(&c->a, "%s:moongate:parallel", h->base[i]);
            }
        }
        mg_lr_argf(&c->a, "%s:moongate:counted:%s", h->base[0], h->member);
        mg_lr_arg(&c->a, h->member, strlen(h->member));
        mg_lr_argf(&c->a, "%d", MG_LR_STALE_S);
        mg_lr_argf(&c->a, "%lld", (long long) mg_lr_marker_ttl(lr));
        mg_lr_cmd_send(lr, c);
    }
}

/* ---- admissions ---- */

static void
mg_lr_op_unlink(mg_lr_op_t *op)
{
    mg_limits_redis_t *lr = op->lr;
    if (op->prev != NULL) {
        op->prev->next = op->next;
    } else {
        lr->ops = op->next;
    }
    if (op->next != NULL) {
        op->next->prev = op->prev;
    }
}

static void
mg_lr_op_free(mg_lr_op_t *op)
{
    if (op->ev_on) {
        evtimer_del(&op->ev);
    }
    if (op->cb != NULL) {
        op->lr->waiting--;
    }
    mg_lr_op_unlink(op);
    if (op->hold != NULL) {
        mg_lr_hold_free(op->hold);
    }
    mg_buf_free(&op->a.b);
    free(op);
}

/* The caller gave up on op (deadline, client gone) or never learned its outcome (NULL reply):
 * whatever the script counted is undone (a no-op when it did not run). */
static void
mg_lr_undo(mg_lr_op_t *op)
{
    mg_limits_redis_t *lr = op->lr;
    if (lr->destroying || op->hold == NULL) {
        return;
    }
    lr->undone++;
    mg_lr_settle_send(lr, op->hold, -1, 0);
}

/* Runs the caller's callback once; the op must not be used by the caller afterwards. */
static void
mg_lr_deliver(mg_lr_op_t *op, mg_lr_result_t *res)
{
    mg_lr_cb cb = op->cb;
    void *ud = op->ud;
    op->cb = NULL;
    op->lr->waiting--;
    if (op->ev_on) {
        evtimer_del(&op->ev);
        op->ev_on = false;
    }
    cb(ud, res);
}

static void
mg_lr_deliver_fallback(mg_lr_op_t *op, const char *why)
{
    mg_lr_result_t res;
    memset(&res, 0, sizeof(res));
    res.rc = MG_ERROR;
    res.why = why;
    mg_lr_count_fallback(op->lr, why);
    mg_lr_deliver(op, &res);
}

static int64_t
mg_lr_int(const redisReply *rp, size_t i)
{
    if (i >= rp->elements) {
        return -1;
    }
    const redisReply *e = rp->element[i];
    return e->type == REDIS_REPLY_INTEGER ? (int64_t) e->integer : -1;
}

static void
mg_lr_admit_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void) ac;
    mg_lr_op_t *op = privdata;
    mg_limits_redis_t *lr = op->lr;
    redisReply *rp = reply;
    op->in_redis = false;
    if (lr->destroying) {
        mg_lr_op_free(op);
        return;
    }
    if (rp == NULL) {
        /* the connection went away (it may have counted: undo, a no-op otherwise); the
         * caller hears it from the op's timer, outside redisAsyncFree() */
        mg_lr_undo(op);
        if (op->cb == NULL) {
            mg_lr_op_free(op);
            return;
        }
        if (op->ev_on) {
            evtimer_del(&op->ev);
        }
        op->why = "disconnected";
        struct timeval zero = {0, 0};
        evtimer_add(&op->ev, &zero);
        op->ev_on = true;
        return;
    }
    if (mg_lr_noscript(rp) && !op->as_eval) {
        op->as_eval = true;
        if (mg_lr_send(lr, MG_LR_S_ADMIT, true, &op->a, mg_lr_admit_reply, op) == REDIS_OK) {
            op->in_redis = true;
            return;
        }
    }
    bool ok = rp->type == REDIS_REPLY_ARRAY && rp->elements >= 2 &&
              rp->element[0]->type == REDIS_REPLY_INTEGER;
    if (!ok) {
        mg_lr_reply_error(lr, "an admission (its limits are this instance's)",
                          rp->type == REDIS_REPLY_ERROR ? rp->str : "unexpected reply");
        if (op->cb != NULL) {
            mg_lr_deliver_fallback(op, "error");
        }
        mg_lr_op_free(op);
        return;
    }
    bool admitted = rp->element[0]->integer == 0;
    if (op->cb == NULL) {
        if (admitted) {
            mg_lr_undo(op); /* the caller went local or went away */
        }
        mg_lr_op_free(op);
        return;
    }
    mg_lr_result_t res;
    memset(&res, 0, sizeof(res));
    if (admitted) {
        lr->admitted++;
        res.rc = MG_OK;
        for (int i = 0; i < op->hold->n; i++) {
            res.rpm_remaining[i] = mg_lr_int(rp, 2 + 2 * (size_t) i);
            res.tpm_remaining[i] = mg_lr_int(rp, 3 + 2 * (size_t) i);
        }
        res.hold = op->hold;
        op->hold = NULL;
        mg_lr_hold_link(lr, res.hold);
    } else {
        lr->refused++;
        res.rc = MG_BUSY;
        res.index = (int) mg_lr_int(rp, 1);
        res.type = (int) mg_lr_int(rp, 2);
        res.limit = mg_lr_int(rp, 3);
        res.remaining = mg_lr_int(rp, 4);
        res.reset_s = mg_lr_int(rp, 5);
    }
    mg_lr_deliver(op, &res);
    mg_lr_op_free(op);
}

static void
mg_lr_op_timer(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_lr_op_t *op = arg;
    mg_limits_redis_t *lr = op->lr;
    op->ev_on = false;
    if (!op->in_redis) {
        /* a deferred fallback (the connection went away) */
        if (op->cb != NULL) {
            mg_lr_deliver_fallback(op, op->why != NULL ? op->why : "disconnected");
        }
        mg_lr_op_free(op);
        return;
    }
    /* the deadline: the caller goes local now; the reply, when it comes, is undone */
    if (op->cb != NULL) {
        mg_lr_deliver_fallback(op, "timeout");
    }
    if (lr->ac != NULL && lr->state == MG_LR_READY) {
        /* a Redis that does not answer in time is down for us (stopped, overloaded, a
         * network partition): reconnect, and admit locally until it answers again */
        mg_lr_fail(lr, "no reply within %dms", lr->deadline_ms);
        mg_lr_abandon(lr); /* frees op through its NULL reply: op is not used after this */
        mg_lr_retry(lr);
    }
}

mg_lr_op_t *
mg_limits_redis_admit(mg_limits_redis_t *lr, const mg_lr_desc_t *d, int n, int64_t tokens,
                      mg_lr_cb cb, void *ud)
{
    if (n <= 0 || n > MG_LR_MAX_DESC) {
        return NULL;
    }
    if (lr->state != MG_LR_READY || lr->ac == NULL) {
        mg_lr_count_fallback(lr, "disconnected");
        return NULL;
    }
    if (lr->waiting >= MG_LR_INFLIGHT_MAX) {
        mg_lr_count_fallback(lr, "busy");
        return NULL;
    }
    mg_lr_op_t *op = mg_xcalloc(1, sizeof(*op));
    op->lr = lr;
    mg_lr_hold_t *h = mg_xcalloc(1, sizeof(*h));
    h->n = n;
    h->tokens = tokens;
    snprintf(h->member, sizeof(h->member), "%s:%d:%" PRIu64, lr->instance_id, lr->worker,
             ++lr->seq);
    for (int i = 0; i < n; i++) {
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "{%s:%s}", d[i].desc, d[i].value);
        h->base[i] = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
        h->flags[i] = (uint8_t) ((d[i].rpm >= 0 ? MG_LR_F_RPM : 0) |
                                 (d[i].tpm >= 0 ? MG_LR_F_TPM : 0) |
                                 (d[i].parallel >= 0 ? MG_LR_F_PAR : 0));
    }
    op->hold = h;
    mg_lr_keys(&op->a, h);
    mg_lr_argf(&op->a, "%lld", (long long) lr->window_s);
    mg_lr_argf(&op->a, "%d", MG_LR_STALE_S);
    mg_lr_arg(&op->a, h->member, strlen(h->member));
    mg_lr_argf(&op->a, "%d", n);
    mg_lr_argf(&op->a, "%lld", (long long) mg_lr_marker_ttl(lr));
    for (int i = 0; i < n; i++) {
        mg_lr_argf(&op->a, "%lld", (long long) d[i].rpm);
        mg_lr_argf(&op->a, "%lld", (long long) d[i].tpm);
        mg_lr_argf(&op->a, "%lld", (long long) d[i].parallel);
        mg_lr_argf(&op->a, "%lld", (long long) tokens);
    }
    op->next = lr->ops;
    if (lr->ops != NULL) {
        lr->ops->prev = op;
    }
    lr->ops = op;
    if (mg_lr_send(lr, MG_LR_S_ADMIT, false, &op->a, mg_lr_admit_reply, op) != REDIS_OK) {
        mg_lr_op_free(op);
        mg_lr_count_fallback(lr, "disconnected");
        return NULL;
    }
    op->in_redis = true;
    op->cb = cb;
    op->ud = ud;
    lr->waiting++;
    evtimer_assign(&op->ev, lr->base, mg_lr_op_timer, op);
    struct timeval tv = {lr->deadline_ms / 1000, (lr->deadline_ms % 1000) * 1000};
    evtimer_add(&op->ev, &tv);
    op->ev_on = true;
    return op;
}

void
mg_limits_redis_cancel(mg_lr_op_t *op)
{
    if (op == NULL || op->cb == NULL) {
        return;
    }
    op->cb = NULL;
    op->lr->waiting--;
    if (op->ev_on) {
        evtimer_del(&op->ev);
        op->ev_on = false;
    }
    if (!op->in_redis) {
        /* a deferred fallback was due: nothing else is */
        mg_lr_op_free(op);
    }
    /* else the reply frees it, undoing what it counted */
}

void
mg_limits_redis_settle(mg_limits_redis_t *lr, mg_lr_hold_t *hold, int64_t tokens_used)
{
    if (hold == NULL) {
        return;
    }
    mg_lr_hold_unlink(lr, hold);
    mg_lr_settle_send(lr, hold, 0, tokens_used);
    mg_lr_hold_free(hold);
}

bool
mg_limits_redis_ready(const mg_limits_redis_t *lr)
{
    return lr->state == MG_LR_READY && lr->ac != NULL;
}

json_t *
mg_limits_redis_status(const mg_limits_redis_t *lr)
{
    bool ready = mg_limits_redis_ready(lr);
    json_t *fb = json_pack("{s:I,s:I,s:I,s:I}", "disconnected", (json_int_t) lr->fb_disconnected,
                           "timeout", (json_int_t) lr->fb_timeout, "error",
                           (json_int_t) lr->fb_error, "busy", (json_int_t) lr->fb_busy);
    return json_pack("{s:s,s:b,s:b,s:s,s:i,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:I,"
                     "s:o,s:o}",
                     "backend", ready ? "redis" : "local",
                     "redis_configured", 1,
                     "redis_connected", ready,
                     "host", lr->host,
                     "port", lr->port,
                     "fallbacks", (json_int_t) lr->fallbacks,
                     "fallbacks_by_reason", fb,
                     "admitted", (json_int_t) lr->admitted,
                     "refused", (json_int_t) lr->refused,
                     "undone", (json_int_t) lr->undone,
                     "settled", (json_int_t) lr->settled,
                     "settlements_dropped", (json_int_t) lr->settle_dropped,
                     "reconnects", (json_int_t) lr->reconnects,
                     "waiting", (int) lr->waiting,
                     "holds", (int) lr->nholds,
                     "settlements_queued", (int) lr->nqueued,
                     "errors", (json_int_t) lr->errors,
                     "down_since_ms", lr->down_since_ms > 0 ? json_integer(lr->down_since_ms)
                                                            : json_null(),
                     "last_error", lr->last_error[0] != '\0' ? json_string(lr->last_error)
                                                             : json_null());
}

/* ---- create / destroy ---- */

mg_limits_redis_t *
mg_limits_redis_create(const mg_limits_redis_conf_t *conf, mg_err_t *err)
{
    if (conf == NULL || conf->base == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "redis limits: no event base");
        return NULL;
    }
    if (conf->host == NULL || conf->host[0] == '\0') {
        mg_err_set(err, MG_ERR_CONFIG, "redis limits: no host configured");
        return NULL;
    }
    if (conf->port <= 0 || conf->port > 65535) {
        mg_err_set(err, MG_ERR_CONFIG, "redis limits: port %d out of range for host \"%s\"",
                   conf->port, conf->host);
        return NULL;
    }
    mg_limits_redis_t *lr = mg_xcalloc(1, sizeof(*lr));
    lr->base = conf->base;
    lr->host = mg_xstrdup(conf->host);
    lr->port = conf->port;
    lr->username = conf->username != NULL && conf->username[0] != '\0'
                       ? mg_xstrdup(conf->username) : NULL;
    lr->password = conf->password != NULL && conf->password[0] != '\0'
                       ? mg_xstrdup(conf->password) : NULL;
    lr->db = conf->db;
    lr->instance_id = mg_xstrdup(conf->instance_id != NULL ? conf->instance_id : "");
    lr->worker = conf->worker;
    lr->window_s = conf->window_s > 0 ? conf->window_s : 60;
    lr->deadline_ms = conf->deadline_ms > 0 ? conf->deadline_ms : MG_LR_DEADLINE_MS;
    lr->backoff_ms = MG_LR_BACKOFF_MIN_MS;
    lr->retry_ev = evtimer_new(lr->base, mg_lr_retry_cb, lr);
    lr->timeout_ev = evtimer_new(lr->base, mg_lr_timeout_cb, lr);
    lr->kill_ev = evtimer_new(lr->base, mg_lr_kill_cb, lr);
    lr->refresh_ev = event_new(lr->base, -1, EV_PERSIST, mg_lr_refresh_cb, lr);
    if (lr->retry_ev == NULL || lr->timeout_ev == NULL || lr->kill_ev == NULL ||
        lr->refresh_ev == NULL) {
        mg_log(MG_LOG_ERROR, NULL, "evtimer_new() failed: out of memory");
        abort();
    }
    struct timeval tv = {MG_LR_REFRESH_MS / 1000, (MG_LR_REFRESH_MS % 1000) * 1000};
    event_add(lr->refresh_ev, &tv);
    lr->m_up = mg_ml_series(MG_MF_LIMITS_REDIS_UP, NULL);
    mg_metric_set(lr->m_up, 0);
    mg_lr_conn_start(lr);
    return lr;
}

void
mg_limits_redis_destroy(mg_limits_redis_t *lr)
{
    if (lr == NULL) {
        return;
    }
    lr->destroying = true;
    mg_lr_abandon(lr); /* pending replies come back NULL and free their ops and commands */
    while (lr->ops != NULL) {
        mg_lr_op_t *op = lr->ops;
        op->cb = NULL; /* the worker is exiting: nobody waits */
        op->lr->waiting = 0;
        mg_lr_op_free(op);
    }
    while (lr->holds != NULL) {
        mg_lr_hold_t *h = lr->holds;
        mg_lr_hold_unlink(lr, h);
        mg_lr_hold_free(h);
    }
    while (lr->q_head != NULL) {
        mg_lr_cmd_t *c = lr->q_head;
        lr->q_head = c->next;
        mg_lr_cmd_free(c);
    }
    event_free(lr->retry_ev);
    event_free(lr->timeout_ev);
    event_free(lr->kill_ev);
    event_free(lr->refresh_ev);
    if (lr->password != NULL) {
        explicit_bzero(lr->password, strlen(lr->password));
        free(lr->password);
    }
    free(lr->host);
    free(lr->username);
    free(lr->instance_id);
    free(lr);
}
