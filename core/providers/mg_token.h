/*
 * mg_token.h -- the per-worker cache of access tokens minted from a credential (Vertex
 * service accounts, Entra client credentials), with one refresh in flight per credential.
 *
 * A provider whose requests need a token says so from ops->prepare with an mg_token_src_t:
 * the credential's fingerprint (the cache key: a rotated credential has another key, so it
 * never finds the old token), the token endpoint, and a builder for the request body that
 * trades the credential for a token.  The cache answers at once from a fresh token, or
 * parks the caller (mg_token_wait_t, embedded in the caller) behind the one fetch in flight
 * for that key and calls it back with the result: every waiter wakes on the same success or
 * the same error.  Answers are parsed with mg_oauth_token_parse() (Google's and Entra's
 * token endpoints answer alike).
 *
 * Layering: this module does no I/O.  The layer that owns the sockets (the gateway, over
 * the upstream pool) performs each fetch through mg_token_io_t and reports it back with
 * mg_token_fetch_done(); so providers stay free of sockets and the cache is testable with
 * a hand-driven io.
 *
 * Lifetimes: a token is kept until MG_TOKEN_REFRESH_EARLY before its expiry (the lesser of
 * 5 minutes and a tenth of its lifetime): after that the first caller starts a refresh and
 * keeps using the old token while it runs, until MG_TOKEN_HARD_EARLY before expiry (the
 * lesser of 30 s and a twentieth), after which callers wait.  A failed fetch is remembered
 * for MG_TOKEN_FAIL_HOLD_MS: callers in that window get the same error at once instead of a
 * new fetch each.  Entries whose key the current registry no longer uses are dropped by
 * mg_token_cache_retain() (a rotation), their tokens kept only for scrubbing.
 *
 * Secrets: tokens never appear in an error message or a log line written here, and every
 * token the cache holds (or held, until it expires) is in the scrubber's runtime set
 * (mg_scrub_set_runtime), so an upstream echoing one back is redacted like a configured key.
 *
 * Threading: one cache per worker, single-threaded.  Ownership: the cache owns its entries,
 * tokens and fetch handles (single owner, mg_token_cache_create/destroy); waiters are owned
 * by their callers and only linked while waiting.
 */
#ifndef MG_TOKEN_H
#define MG_TOKEN_H

#include "../base/mg_buf.h"
#include "../base/mg_err.h"
#include "../base/mg_types.h"

#include <stdbool.h>
#include <stdint.h>

#define MG_TOKEN_MAX_WAITERS_DEFAULT 4096   /* callers parked behind one fetch */
#define MG_TOKEN_FAIL_HOLD_MS 1000          /* a failure answers callers this long */
#define MG_TOKEN_FETCH_TIMEOUT_MS 30000     /* what the io should give one fetch */

typedef struct mg_token_cache_s mg_token_cache_t;
typedef struct mg_token_entry_s mg_token_entry_t;
typedef struct mg_token_wait_s mg_token_wait_t;

/* What a token is for and how to mint one (filled by ops->prepare; borrowed for one call). */
typedef struct {
    char key[65];               /* the credential fingerprint (hex): the cache key */
    const char *url;            /* the token endpoint, http(s)://host[:port]/path */
    const char *what;           /* for messages, never a secret: "service account a@b" */
    /* Appends the token request body (application/x-www-form-urlencoded) for a fetch that
     * starts now (now_s: seconds since the epoch, for a JWT's iat).  Called only inside
     * mg_token_get(), so ud need live only for that call.  MG_ERROR + err: no fetch. */
    int (*body)(void *ud, int64_t now_s, mg_buf_t *out, mg_err_t *err);
    void *ud;
} mg_token_src_t;

/* A waiter's wake-up: rc MG_OK with token (borrowed: copy it before returning), or
 * MG_ERROR with err (class auth when the endpoint refused the credential). */
typedef void (*mg_token_cb)(void *ud, int rc, const char *token, const mg_err_t *err);

/* One parked caller; embedded in the caller's own state, zeroed before first use. */
struct mg_token_wait_s {
    mg_token_wait_t *prev, *next;   /* the entry's waiters, oldest first */
    mg_token_entry_t *entry;        /* borrowed: the entry waited on; NULL when not waiting */
    mg_token_cb cb;
    void *ud;
};

/* How the cache reaches a token endpoint (provided by the layer that owns sockets). */
typedef struct {
    /* Starts POST url with body[0..len) (form-encoded; the io copies what it keeps) and
     * returns a handle; the exchange ends with one mg_token_fetch_done(c, fetch, ...) from
     * the event loop, never from inside start.  NULL + err: it could not start (no call
     * follows). */
    void *(*start)(void *host, const char *url, const char *body, size_t len,
                   mg_token_entry_t *fetch, mg_err_t *err);
    /* Abandons an exchange start returned; no mg_token_fetch_done follows. */
    void (*cancel)(void *host, void *handle);
    void *host;
} mg_token_io_t;

typedef struct {
    mg_token_io_t io;
    int max_waiters;                /* 0: MG_TOKEN_MAX_WAITERS_DEFAULT */
    int64_t (*now_ms)(void);        /* monotonic clock; NULL: mg_time_mono_ms */
    int64_t (*now_real_s)(void);    /* epoch seconds for body builders; NULL: time() */
} mg_token_conf_t;

/* Counters for /moongate/state and tests. */
typedef struct {
    uint64_t hits;                  /* answered from a fresh token */
    uint64_t fetches;               /* token requests started */
    uint64_t fetch_failures;        /* of which failed */
    uint64_t waits;                 /* callers parked */
    uint64_t refused_busy;          /* callers refused: too many waiters */
    int entries;                    /* credentials with an entry now */
} mg_token_stats_t;

mg_token_cache_t *mg_token_cache_create(const mg_token_conf_t *conf);
/* Cancels fetches in flight, wakes nobody (callers must have cancelled their waits), wipes
 * and frees every token; clears the scrubber's runtime set.  NULL-safe. */
void mg_token_cache_destroy(mg_token_cache_t *c);

/*
 * A token for src->key.  MG_OK: *token is fresh (borrowed from the cache: valid until the
 * cache is next called; copy it).  MG_AGAIN: w is parked (w->cb(ud, ...) follows once,
 * unless mg_token_cancel(w) runs first).  MG_BUSY: too many callers already wait for this
 * key (err, status 503).  MG_ERROR: err (the body builder's error, the fetch could not
 * start, or a failure within MG_TOKEN_FAIL_HOLD_MS).  w must not be waiting already.
 */
int mg_token_get(mg_token_cache_t *c, const mg_token_src_t *src, const char **token,
                 mg_token_wait_t *w, mg_token_cb cb, void *ud, mg_err_t *err);

/* Unparks w (a caller that went away); no callback follows.  A no-op when w is not
 * waiting.  The fetch goes on for the others (and for the cache). */
void mg_token_cancel(mg_token_wait_t *w);

/*
 * The io's report of a fetch the cache started: rc MG_OK with the HTTP status and body,
 * or MG_ERROR with err (transport).  Parses the answer, stores the token, wakes every
 * waiter (in order; a callback may call the cache again).  The handle is finished.
 */
void mg_token_fetch_done(mg_token_cache_t *c, mg_token_entry_t *fetch, int rc, int status,
                         const char *body, size_t len, const mg_err_t *err);

/* Drops the entries whose key keep() refuses (no fetch in flight, nobody waiting): a
 * rotated credential's token is never served again.  Expired entries go too. */
void mg_token_cache_retain(mg_token_cache_t *c, bool (*keep)(void *ud, const char *key),
                           void *ud);

void mg_token_cache_stats(const mg_token_cache_t *c, mg_token_stats_t *out);

#endif
