/*
 * mg_fetch.h -- one small HTTP(S) GET, done off the caller's event loop.
 *
 * Owns: a child process (fork) that resolves the name, connects, verifies TLS against
 * the system CA store (SSL_CERT_FILE honoured, as for upstreams) with the host name
 * checked, sends the request and reads the whole answer, and the pipe it writes that
 * answer to.  The caller's loop only reads the pipe, so a slow DNS lookup, connect or
 * server never blocks it; a total deadline kills the child.  Redirects are followed (at
 * most 5, never from https to http).  Meant for documents of a few MB (the cost map):
 * the body is buffered whole.
 * Does not own: what the answer means (status, content type and body go to the caller).
 * Single-threaded: the caller's event base.  The child inherits nothing but the pipe
 * and stdio (every other descriptor is closed in it) and dies with its parent.
 */
#ifndef MG_FETCH_H
#define MG_FETCH_H

#include "../base/mg_err.h"

#include <event2/event.h>
#include <stddef.h>

typedef struct mg_fetch_s mg_fetch_t;

typedef struct {
    int connect_timeout_ms;         /* each connect() (and TLS handshake) */
    int total_timeout_ms;           /* everything, redirects included */
    size_t max_bytes;               /* a longer body fails the fetch */
} mg_fetch_opts_t;

typedef struct {
    int status;                     /* HTTP status of the last answer */
    char content_type[128];         /* its Content-Type ("" if none) */
    const char *body;               /* borrowed: valid during the callback (de-chunked) */
    size_t len;
    int redirects;                  /* redirects followed */
} mg_fetch_result_t;

/*
 * rc MG_OK: an HTTP answer came (any status: res says which).  MG_ERROR: no answer, err
 * says why (class upstream_connect, upstream_timeout or bad_request for a bad URL).
 */
typedef void (*mg_fetch_cb)(void *ud, int rc, const mg_fetch_result_t *res, const mg_err_t *err);

/*
 * Starts a GET of url (http:// or https://; no user:password@).  cb is called once, from
 * base's loop (never from inside this call), and the fetch frees itself after it returns.
 * Returns NULL with err when it cannot start (bad URL, pipe or fork failed): then cb is
 * never called.
 */
mg_fetch_t *mg_fetch_start(struct event_base *base, const char *url, const mg_fetch_opts_t *o,
                           mg_fetch_cb cb, void *ud, mg_err_t *err);

/* Stops a fetch whose callback has not run (kills the child); cb is not called. */
void mg_fetch_cancel(mg_fetch_t *f);

/*
 * The same fetch, waited for: for startup, before the event loop runs.  Calls cb before
 * returning; returns what it passed to cb.
 */
int mg_fetch_run(const char *url, const mg_fetch_opts_t *o, mg_fetch_cb cb, void *ud);

/* Whether s is an http:// or https:// URL (case-insensitive scheme). */
int mg_fetch_is_url(const char *s);

#endif
