/*
 * mg_http_server.h -- downstream HTTP/1.1 connections.
 *
 * Owns: accepted client connections, their read buffers, the request objects
 * (one at a time per connection; pipelined requests wait in the buffer and are
 * answered in order) and the output queue.  Does not own what the handler
 * hangs off a request (req->ud space, zeroed, that the handler manages).
 *
 * Lifecycle of a request: the server parses head and body, then calls
 * on_request(req).  The handler answers with mg_http_respond() or
 * mg_http_stream_begin/write/end.  If the client goes away first, on_abort(req)
 * is called: the handler stops its work.  Either way on_free(req) follows
 * when the server frees the request; a handler must not touch req after the
 * call that completed its response (it may be freed before that call returns).
 */
#ifndef MG_HTTP_SERVER_H
#define MG_HTTP_SERVER_H

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_types.h"
#include "../net/mg_conn.h"
#include "mg_http_parse.h"

#include <event2/event.h>
#include <stdbool.h>

typedef struct mg_http_server_s mg_http_server_t;
typedef struct mg_http_req_s mg_http_req_t;
typedef struct mg_hconn_s mg_hconn_t;

typedef struct {
    void (*on_request)(mg_http_req_t *req);
    void (*on_abort)(mg_http_req_t *req);
    /* output dropped below the low watermark after mg_http_stream_write said "full" */
    void (*on_drain)(mg_http_req_t *req);
    /* the request object is about to be freed (after a complete response or an abort):
     * release what the handler holds.  The last callback for a request. */
    void (*on_free)(mg_http_req_t *req);
    /* the response is about to be complete: called once per request, before its last bytes
     * are queued (mg_http_respond, mg_http_stream_end or _abort, or a refused head), so
     * whatever the handler records then exists before the client can have the whole answer.
     * body/len: a complete response's body (NULL for a stream).  May be NULL. */
    void (*on_complete)(mg_http_req_t *req, int status, const char *body, size_t len);
    size_t ud_size;                 /* bytes reserved after each request for the handler */
    int64_t max_body;               /* bytes: larger bodies get 413 */
    int header_timeout_ms;          /* head must arrive within this */
    int body_timeout_ms;            /* idle time allowed between body reads */
    int keepalive_timeout_ms;       /* idle keep-alive connections closed after this */
    void *data;                     /* handler's global context */
} mg_http_server_conf_t;

struct mg_http_req_s {
    mg_hconn_t *hc;                 /* borrowed: the connection */
    mg_http_server_t *server;       /* borrowed */
    mg_arena_t arena;               /* request-lifetime allocations */
    mg_http_head_t head;            /* points into arena copy of the head */
    char *body;                     /* owned (malloc), NUL-terminated */
    size_t body_len;
    uint64_t seq;                   /* per-worker request counter */
    int64_t start_us;               /* monotonic, head complete */
    const char *peer;               /* borrowed: "ip:port" of the client */
    bool head_sent;
    bool streaming;
    bool finished;                  /* response fully queued */
    bool completing;                /* on_complete was called */
    bool keep_alive;                /* may the connection be reused after this */
    int status;                     /* status sent */
    size_t bytes_out;
    void *ud;                       /* points at ud_size zeroed bytes after the struct */
};

struct mg_http_server_s {
    mg_http_server_conf_t conf;
    struct event_base *base;
    uint64_t seq;
    int nconns;
    int nactive;                    /* requests being handled, plus connections a drain
                                     * waits for (accepted, first request not read yet) */
    bool draining;                  /* finish in-flight, close idle, keep-alive off */
    mg_hconn_t *conns;              /* list of live connections */
    char date[64];                  /* cached "date: ..." header line */
    int64_t date_sec;
};

mg_http_server_t *mg_http_server_create(struct event_base *base, const mg_http_server_conf_t *conf);
void mg_http_server_destroy(mg_http_server_t *s);

/* Takes ownership of an accepted, non-blocking fd. */
void mg_http_server_accept(mg_http_server_t *s, int fd, const struct sockaddr *sa);

/* Stops keep-alive: every answer from now on closes its connection.  Idle
 * connections stay open (a client may be sending on one right now). */
void mg_http_server_drain(mg_http_server_t *s);
/* Then closes the idle keep-alive connections; in-flight requests finish. */
void mg_http_server_close_idle(mg_http_server_t *s);

/*
 * Complete response.  headers: zero or more "name: value\r\n" lines (may be
 * NULL).  Content-Length, Connection and Date are added here.  body is copied.
 *
 * headers must pass mg_http_fields_valid() (no raw CR/LF/NUL, token names, no
 * framing headers); if they do not, nothing of them is sent: the client gets a 500
 * naming the refused header, the connection closes, and the refusal is logged at
 * error level.  The same holds for mg_http_stream_begin(), after which the
 * request is finished (stream_write/stream_end do nothing).
 *
 * Called from a handler, output is written when the handler returns; called
 * later (from an upstream callback), at the end of the current round of event
 * callbacks, so what one upstream read produced leaves in one write.  Either
 * way req stays valid until the caller returns to the event loop.
 */
void mg_http_respond(mg_http_req_t *req, int status, const char *headers, size_t headers_len,
                     const char *body, size_t body_len);

/* Starts a chunked response; headers as above (content-type included by caller). */
void mg_http_stream_begin(mg_http_req_t *req, int status, const char *headers, size_t headers_len);
/* Queues one chunk; returns true when the client is behind (pause the producer until on_drain). */
bool mg_http_stream_write(mg_http_req_t *req, const char *data, size_t len);
/* Ends the chunked response (terminating chunk). */
void mg_http_stream_end(mg_http_req_t *req);
/* Aborts a started stream: the connection is closed after what is queued. */
void mg_http_stream_abort(mg_http_req_t *req);

/* Header value (first match), or NULL.  Borrowed from the request. */
const char *mg_http_req_header(const mg_http_req_t *req, const char *lower_name, size_t *len);

const char *mg_http_status_text(int status);

/* Bytes queued and not yet written on the request's connection. */
size_t mg_http_req_pending(const mg_http_req_t *req);

#endif
