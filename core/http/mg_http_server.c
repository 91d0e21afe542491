/*
 * mg_http_server.c -- downstream HTTP/1.1 connections (see mg_http_server.h).
 *
 * One state machine per connection: READ_HEAD -> READ_BODY -> HANDLING ->
 * (response queued) -> flushed -> READ_HEAD again with whatever pipelined
 * bytes are already buffered.  While a request is handled the socket is still
 * read (bounded) so that a client that goes away is noticed at once.
 *
 * Re-entrancy: every entry point (socket events, timers, and the response
 * calls a handler makes) runs with hc->entered set, so a close requested deep
 * inside only marks the connection dead; the entry point then settles it
 * (mg_hc_settle): closes a dead connection, completes a request whose response
 * is fully written and starts the next pipelined one, in a loop, never by
 * recursion.
 *
 * Output a handler queues later, from outside an entry point (an upstream
 * callback), is written by flush_ev, an entry point of its own, activated for
 * the end of the current round of event callbacks.  So the handler may still
 * use the request when its call returns, even if the write failed; and the
 * response head, the events and the end of a stream that arrived in one
 * upstream read leave in one write instead of one each (a write to a local
 * socket wakes the reader, which is most of the cost).
 */
#include "mg_http_server.h"

#include "../base/mg_log.h"
#include "../base/mg_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MG_HC_READ_CHUNK (16 * 1024)
#define MG_HC_MAX_BUFFERED (64 * 1024 + MG_HC_READ_CHUNK)
#define MG_HC_HIGH_WATER (256 * 1024)
#define MG_HC_LOW_WATER (64 * 1024)
#define MG_HC_LINGER_MS 2000
#define MG_HC_LINGER_MAX (4 * 1024 * 1024)
#define MG_HC_DRAIN_GRACE_MS 1000

typedef enum {
    MG_HC_READ_HEAD = 0,
    MG_HC_READ_BODY,
    MG_HC_HANDLING,
    MG_HC_CLOSING,      /* flushing the last response, then close */
    MG_HC_LINGER,       /* last response written and FIN sent: discard input, then close */
} mg_hc_state_t;

struct mg_hconn_s {
    mg_conn_t conn;
    mg_http_server_t *server;       /* borrowed */
    mg_hconn_t *prev, *next;        /* server's list */
    mg_hc_state_t state;
    mg_buf_t in;                    /* owned: raw bytes from the client */
    mg_buf_t out;                   /* owned: bytes queued for the client */
    mg_http_req_t *req;             /* owned: current request */
    struct event timer;             /* embedded: head/body/keep-alive timeouts */
    bool timer_on;
    bool want_drain;                /* producer paused, tell it when output drains */
    bool entered;                   /* inside a handler callback */
    struct event flush_ev;          /* embedded: deferred write of output queued from outside */
    bool flush_pending;             /* flush_ev is active */
    bool dead;                      /* closed while entered; free on unwind */
    bool served_one;
    size_t lingered;                /* bytes discarded in MG_HC_LINGER */
    bool drain_hold;                /* counted in server->nactive until its request arrives */
    /* body reading */
    int64_t body_expected;          /* content-length, or -1 for chunked */
    mg_http_chunked_t ck;
    mg_buf_t body;                  /* owned until handed to the request */
    char peer[64];
};

static void mg_hc_close(mg_hconn_t *hc);
static int mg_hc_on_read(mg_conn_t *c);
static int mg_hc_on_write(mg_conn_t *c);
static void mg_hc_read(mg_hconn_t *hc);
static void mg_hc_process(mg_hconn_t *hc);
static void mg_hc_flush(mg_hconn_t *hc);
static int mg_hc_settle(mg_hconn_t *hc);
static void mg_hc_deferred_flush(evutil_socket_t fd, short what, void *arg);

/* ---- small helpers ---- */

const char *
mg_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static const char *
mg_http_date(mg_http_server_t *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        s->date_sec = now;
    }
    return s->date;
}

static void
mg_hc_timer_set(mg_hconn_t *hc, int ms)
{
    if (ms <= 0) {
        if (hc->timer_on) {
            evtimer_del(&hc->timer);
            hc->timer_on = false;
        }
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&hc->timer, &tv);
    hc->timer_on = true;
}

/* Pre-routing error: JSON envelope, then close. */
static void
mg_hc_fail(mg_hconn_t *hc, int status, const char *why)
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                     "\"param\":null,\"code\":\"%d\"}}",
                     why, status);
    mg_buf_printf(&hc->out,
                  "HTTP/1.1 %d %s\r\n%scontent-type: application/json\r\ncontent-length: %d\r\n"
                  "connection: close\r\n\r\n%s",
                  status, mg_http_status_text(status), mg_http_date(hc->server), n, body);
    hc->state = MG_HC_CLOSING;
    mg_hc_timer_set(hc, 5000);
    mg_hc_flush(hc);
}

/* ---- server ---- */

mg_http_server_t *
mg_http_server_create(struct event_base *base, const mg_http_server_conf_t *conf)
{
    mg_http_server_t *s = mg_xcalloc(1, sizeof(*s));
    s->base = base;
    s->conf = *conf;
    if (s->conf.header_timeout_ms <= 0) {
        s->conf.header_timeout_ms = 60000;
    }
    if (s->conf.body_timeout_ms <= 0) {
        s->conf.body_timeout_ms = 60000;
    }
    if (s->conf.keepalive_timeout_ms <= 0) {
        s->conf.keepalive_timeout_ms = 60000;
    }
    return s;
}

void
mg_http_server_destroy(mg_http_server_t *s)
{
    while (s->conns != NULL) {
        mg_hc_close(s->conns);
    }
    free(s);
}

void
mg_http_server_drain(mg_http_server_t *s)
{
    s->draining = true; /* answers carry "connection: close" from now on */
}

void
mg_http_server_close_idle(mg_http_server_t *s)
{
    s->draining = true;
    mg_hconn_t *hc = s->conns;
    while (hc != NULL) {
        mg_hconn_t *next = hc->next;
        if (hc->req == NULL && hc->state == MG_HC_READ_HEAD && mg_buf_len(&hc->out) == 0 &&
            !hc->entered) {
            if (hc->served_one && mg_buf_len(&hc->in) == 0) {
                mg_hc_close(hc); /* idle keep-alive connection */
            } else if (!hc->drain_hold) {
                /*
                 * Accepted from the kernel but its (first) request is not read yet: closing
                 * it would lose that request.  The drain waits for it (nactive) for a short
                 * grace; its answer then carries "connection: close".
                 */
                hc->drain_hold = true;
                s->nactive++;
                mg_hc_timer_set(hc, MG_HC_DRAIN_GRACE_MS);
            }
        }
        hc = next;
    }
}

static void
mg_hc_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_hconn_t *hc = arg;
    hc->timer_on = false;
    if (hc->state == MG_HC_READ_HEAD && mg_buf_len(&hc->in) == 0) {
        mg_hc_close(hc); /* idle keep-alive connection */
        return;
    }
    if (hc->state == MG_HC_CLOSING || hc->state == MG_HC_LINGER) {
        mg_hc_close(hc);
        return;
    }
    if (hc->state == MG_HC_READ_HEAD || hc->state == MG_HC_READ_BODY) {
        hc->entered = true;
        mg_hc_fail(hc, 408, "timed out reading the request");
        hc->entered = false;
        (void) mg_hc_settle(hc); /* nothing follows */
    }
}

void
mg_http_server_accept(mg_http_server_t *s, int fd, const struct sockaddr *sa)
{
    mg_hconn_t *hc = mg_xcalloc(1, sizeof(*hc));
    hc->server = s;
    int one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* best effort */
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(hc->peer, sizeof(hc->peer), "%s:%d", ip, ntohs(in->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *) sa;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in->sin6_addr, ip, sizeof(ip));
        snprintf(hc->peer, sizeof(hc->peer), "[%s]:%d", ip, ntohs(in->sin6_port));
    }
    mg_err_t err;
    if (mg_conn_init(&hc->conn, s->base, fd, hc, &err) != MG_OK) {
        mg_log(MG_LOG_ERROR, NULL, "cannot register client connection: %s", err.msg);
        free(hc);
        return;
    }
    hc->conn.on_read = mg_hc_on_read;
    hc->conn.on_write = mg_hc_on_write;
    evtimer_assign(&hc->timer, s->base, mg_hc_timeout, hc);
    event_assign(&hc->flush_ev, s->base, -1, 0, mg_hc_deferred_flush, hc);
    hc->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = hc;
    }
    s->conns = hc;
    s->nconns++;
    mg_hc_timer_set(hc, s->conf.header_timeout_ms);
    /* data may already be there (TCP_DEFER_ACCEPT-like clients): try now */
    hc->conn.read_ready = true;
    (void) mg_hc_on_read(&hc->conn); /* nothing follows */
}

/* ---- requests ---- */

static void
mg_hc_free_req(mg_hconn_t *hc)
{
    mg_http_req_t *req = hc->req;
    if (req == NULL) {
        return;
    }
    if (hc->server->conf.on_free != NULL) {
        hc->server->conf.on_free(req);
    }
    hc->req = NULL;
    hc->server->nactive--;
    free(req->body);
    mg_arena_destroy(&req->arena);
    free(req);
}

static void
mg_hc_close(mg_hconn_t *hc)
{
    if (hc->entered) {
        hc->dead = true;
        return;
    }
    mg_http_server_t *s = hc->server;
    if (hc->drain_hold) {
        hc->drain_hold = false;
        s->nactive--;
    }
    if (hc->req != NULL) {
        mg_http_req_t *req = hc->req;
        if (!req->finished && s->conf.on_abort != NULL) {
            hc->entered = true;
            s->conf.on_abort(req);
            hc->entered = false;
        }
        mg_hc_free_req(hc);
    }
    if (hc->timer_on) {
        evtimer_del(&hc->timer);
    }
    if (hc->flush_pending) {
        event_del(&hc->flush_ev);
    }
    mg_conn_close(&hc->conn);
    mg_buf_free(&hc->in);
    mg_buf_free(&hc->out);
    mg_buf_free(&hc->body);
    if (hc->prev != NULL) {
        hc->prev->next = hc->next;
    } else {
        s->conns = hc->next;
    }
    if (hc->next != NULL) {
        hc->next->prev = hc->prev;
    }
    s->nconns--;
    free(hc);
}

static void
mg_hc_dispatch(mg_hconn_t *hc, mg_http_req_t *req)
{
    mg_http_server_t *s = hc->server;
    hc->state = MG_HC_HANDLING;
    mg_hc_timer_set(hc, 0);
    bool was = hc->entered;
    hc->entered = true;
    s->conf.on_request(req);
    hc->entered = was; /* the entry point's guard settles what the handler did */
}

/* Builds the request object from the parsed head at the front of hc->in. */
static mg_http_req_t *
mg_hc_new_req(mg_hconn_t *hc, const mg_http_head_t *h)
{
    mg_http_server_t *s = hc->server;
    size_t ud = (s->conf.ud_size + 15) & ~(size_t) 15;
    size_t base = (sizeof(mg_http_req_t) + 15) & ~(size_t) 15;
    mg_http_req_t *req = mg_xcalloc(1, base + ud);
    req->ud = (char *) req + base;
    req->hc = hc;
    req->server = s;
    mg_arena_init(&req->arena, 4096);
    /* copy the head so the read buffer can move */
    char *copy = mg_arena_alloc(&req->arena, h->head_len);
    const char *orig = mg_buf_head(&hc->in);
    memcpy(copy, orig, h->head_len);
    req->head = *h;
    ptrdiff_t delta = copy - orig;
    if (req->head.method) req->head.method += delta;
    if (req->head.target) req->head.target += delta;
    for (size_t i = 0; i < req->head.nheaders; i++) {
        req->head.headers[i].name += delta;
        req->head.headers[i].value += delta;
    }
    req->seq = ++s->seq;
    req->start_us = mg_time_mono_us();
    req->peer = hc->peer;
    req->keep_alive = h->keep_alive && !s->draining;
    s->nactive++;
    if (hc->drain_hold) {
        hc->drain_hold = false; /* the request itself now keeps the drain waiting */
        s->nactive--;
    }
    return req;
}

static void
mg_hc_body_done(mg_hconn_t *hc)
{
    mg_http_req_t *req = hc->req;
    mg_buf_reserve(&hc->body, 1);
    hc->body.data[hc->body.end] = '\0';
    /* hand the buffer over as a plain malloc'd string */
    if (hc->body.start > 0) {
        memmove(hc->body.data, hc->body.data + hc->body.start, mg_buf_len(&hc->body) + 1);
        hc->body.end -= hc->body.start;
        hc->body.start = 0;
    }
    req->body = hc->body.data;
    req->body_len = hc->body.end;
    hc->body.data = NULL;
    hc->body.start = hc->body.end = hc->body.cap = 0;
    mg_hc_dispatch(hc, req);
}

/* Consumes body bytes from hc->in; returns MG_OK done, MG_AGAIN need more, MG_ERROR failed. */
static int
mg_hc_read_body(mg_hconn_t *hc)
{
    mg_http_server_t *s = hc->server;
    if (hc->body_expected >= 0) {
        size_t have = mg_buf_len(&hc->body);
        size_t need = (size_t) hc->body_expected - have;
        size_t take = mg_buf_len(&hc->in) < need ? mg_buf_len(&hc->in) : need;
        mg_buf_append(&hc->body, mg_buf_head(&hc->in), take);
        mg_buf_consume(&hc->in, take);
        return mg_buf_len(&hc->body) == (size_t) hc->body_expected ? MG_OK : MG_AGAIN;
    }
    /* chunked: decode from in into body */
    while (mg_buf_len(&hc->in) > 0) {
        size_t len = mg_buf_len(&hc->in);
        size_t consumed = 0;
        char *p = mg_buf_head(&hc->in);
        int r = mg_http_chunked_decode(&hc->ck, p, &len, &consumed);
        if (r < 0) {
            mg_hc_fail(hc, 400, "invalid chunked request body");
            return MG_ERROR;
        }
        if (s->conf.max_body > 0 && (int64_t) (mg_buf_len(&hc->body) + len) > s->conf.max_body) {
            mg_hc_fail(hc, 413, "request body is larger than max_request_size_mb");
            return MG_ERROR;
        }
        mg_buf_append(&hc->body, p, len);
        mg_buf_consume(&hc->in, consumed);
        if (r == 1) {
            return MG_OK;
        }
        if (consumed == 0) {
            break;
        }
    }
    return MG_AGAIN;
}

/* Parses and starts as many requests as the buffer allows (one at a time). */
static void
mg_hc_process(mg_hconn_t *hc)
{
    mg_http_server_t *s = hc->server;
    for (;;) {
        if (hc->state == MG_HC_READ_HEAD) {
            if (mg_buf_len(&hc->in) == 0) {
                return;
            }
            mg_http_head_t h;
            int status;
            const char *why;
            ssize_t n = mg_http_parse_request(mg_buf_head(&hc->in), mg_buf_len(&hc->in), &h,
                                              &status, &why);
            if (n == 0) {
                return;
            }
            if (n < 0) {
                mg_hc_fail(hc, status, why);
                return;
            }
            if (h.upgrade && mg_http_header_find(&h, "upgrade") != NULL) {
                /* no websockets/h2c: answer as plain HTTP/1.1 */
                h.upgrade = false;
            }
            hc->req = mg_hc_new_req(hc, &h);
            mg_buf_consume(&hc->in, (size_t) n);
            hc->served_one = true;
            mg_buf_reset(&hc->body);
            if (h.chunked) {
                hc->body_expected = -1;
                memset(&hc->ck, 0, sizeof(hc->ck));
            } else {
                hc->body_expected = h.content_length > 0 ? h.content_length : 0;
                if (s->conf.max_body > 0 && hc->body_expected > s->conf.max_body) {
                    /* answer without reading the body, then close */
                    mg_hc_free_req(hc);
                    mg_hc_fail(hc, 413, "request body is larger than max_request_size_mb");
                    return;
                }
                if (hc->body_expected > 0) {
                    mg_buf_reserve(&hc->body, (size_t) hc->body_expected + 1);
                }
            }
            if (h.expect_continue && (h.chunked || hc->body_expected > 0) &&
                h.version_minor == 1) {
                mg_buf_append_str(&hc->out, "HTTP/1.1 100 Continue\r\n\r\n");
                mg_hc_flush(hc);
            }
            hc->state = MG_HC_READ_BODY;
            mg_hc_timer_set(hc, s->conf.body_timeout_ms);
        }
        if (hc->state == MG_HC_READ_BODY) {
            int r = mg_hc_read_body(hc);
            if (r == MG_ERROR) {
                return;
            }
            if (r == MG_AGAIN) {
                return;
            }
            /* a synchronous answer is completed by the entry point's mg_hc_settle */
            mg_hc_body_done(hc);
            return;
        }
        return;
    }
}

/* Reads what the socket has and processes it; runs under an entry point's guard, so it
 * never frees hc (a close only marks it dead). */
static void
mg_hc_read(mg_hconn_t *hc)
{
    mg_http_server_t *s = hc->server;
    if (hc->state == MG_HC_LINGER) {
        /* discard until the client closes, the cap, or the linger timer */
        char tmp[16 * 1024];
        while (hc->conn.read_ready && !hc->dead) {
            ssize_t n = mg_conn_recv(&hc->conn, tmp, sizeof(tmp));
            if (n == MG_AGAIN) {
                return;
            }
            if (n <= 0 || (hc->lingered += (size_t) n) > MG_HC_LINGER_MAX) {
                mg_hc_close(hc);
                return;
            }
        }
        return;
    }
    while (hc->conn.read_ready && hc->state != MG_HC_CLOSING && !hc->dead) {
        size_t buffered = mg_buf_len(&hc->in);
        if (hc->state == MG_HC_HANDLING && buffered >= MG_HC_MAX_BUFFERED) {
            break; /* pipelined data waits; stop reading (backpressure) */
        }
        if (hc->state == MG_HC_READ_HEAD && buffered > MG_HTTP_MAX_HEAD + 1024) {
            mg_hc_fail(hc, 431, "request header fields too large");
            return;
        }
        ssize_t n;
        if (hc->state == MG_HC_READ_BODY && hc->body_expected > 0 && buffered == 0) {
            /* read straight into the body buffer */
            size_t need = (size_t) hc->body_expected - mg_buf_len(&hc->body);
            mg_buf_reserve(&hc->body, need + 1);
            n = mg_conn_recv(&hc->conn, hc->body.data + hc->body.end, need);
            if (n > 0) {
                hc->body.end += (size_t) n;
                mg_hc_timer_set(hc, s->conf.body_timeout_ms);
                if (mg_buf_len(&hc->body) == (size_t) hc->body_expected) {
                    mg_hc_body_done(hc);
                }
                continue;
            }
        } else {
            mg_buf_reserve(&hc->in, MG_HC_READ_CHUNK);
            n = mg_conn_recv(&hc->conn, hc->in.data + hc->in.end, hc->in.cap - hc->in.end);
            if (n > 0) {
                hc->in.end += (size_t) n;
                if (hc->state == MG_HC_READ_BODY) {
                    mg_hc_timer_set(hc, s->conf.body_timeout_ms);
                }
                if (hc->state == MG_HC_READ_HEAD || hc->state == MG_HC_READ_BODY) {
                    if (hc->state == MG_HC_READ_HEAD && !hc->timer_on) {
                        mg_hc_timer_set(hc, s->conf.header_timeout_ms);
                    }
                    mg_hc_process(hc);
                }
                continue;
            }
        }
        if (n == MG_AGAIN) {
            break;
        }
        /* EOF or error */
        if (n == 0 && hc->state == MG_HC_READ_HEAD && mg_buf_len(&hc->in) == 0 &&
            mg_buf_len(&hc->out) == 0) {
            mg_hc_close(hc);
            return;
        }
        if (n == 0 && hc->state == MG_HC_HANDLING && hc->req != NULL && hc->req->finished) {
            /* the response is queued; let it flush, then close */
            hc->req->keep_alive = false;
            break;
        }
        mg_hc_close(hc);
        return;
    }
}

static int
mg_hc_on_read(mg_conn_t *c)
{
    mg_hconn_t *hc = c->data;
    hc->entered = true;
    mg_hc_read(hc);
    hc->entered = false;
    return mg_hc_settle(hc);
}

/*
 * Called by an entry point after its work, with hc->entered clear: closes a
 * connection that died meanwhile, and completes requests whose responses are
 * fully written, starting the pipelined ones behind them (a loop, so a long
 * pipeline of synchronously answered requests does not recurse).  Returns
 * MG_DECLINED if hc was freed.
 */
static int
mg_hc_settle(mg_hconn_t *hc)
{
    mg_http_server_t *s = hc->server;
    for (;;) {
        if (hc->dead) {
            hc->dead = false;
            mg_hc_close(hc);
            return MG_DECLINED;
        }
        if (hc->state == MG_HC_CLOSING || hc->state == MG_HC_LINGER || hc->req == NULL ||
            !hc->req->finished ||
            mg_buf_len(&hc->out) > 0) {
            return MG_OK;
        }
        /* the response is fully written: free the request, move on to the next one */
        bool keep = hc->req->keep_alive && !s->draining;
        mg_hc_free_req(hc);
        if (!keep) {
            mg_hc_close(hc);
            return MG_DECLINED;
        }
        hc->state = MG_HC_READ_HEAD;
        if (mg_buf_len(&hc->in) == 0) {
            /* idle: release the read buffer and wait */
            mg_buf_free(&hc->in);
            mg_buf_free(&hc->body);
            mg_hc_timer_set(hc, s->conf.keepalive_timeout_ms);
        } else {
            mg_hc_timer_set(hc, s->conf.header_timeout_ms);
        }
        hc->entered = true;
        mg_hc_process(hc);
        if (hc->conn.read_ready && hc->state != MG_HC_CLOSING && !hc->dead) {
            mg_hc_read(hc);
        }
        hc->entered = false;
    }
}

/* Writes what is queued.  Runs under an entry point's guard: closes are deferred
 * (hc->dead) and completing the request is left to mg_hc_settle. */
static void
mg_hc_flush(mg_hconn_t *hc)
{
    if (hc->dead) {
        return;
    }
    while (mg_buf_len(&hc->out) > 0) {
        if (!hc->conn.write_ready) {
            return;
        }
        struct iovec iov = {mg_buf_head(&hc->out), mg_buf_len(&hc->out)};
        ssize_t n = mg_conn_writev(&hc->conn, &iov, 1);
        if (n == MG_AGAIN) {
            return;
        }
        if (n < 0) {
            mg_hc_close(hc);
            return;
        }
        mg_buf_consume(&hc->out, (size_t) n);
    }
    if (hc->state == MG_HC_CLOSING) {
        /*
         * Half-close and keep reading for a while instead of closing at once: a
         * close with unread client bytes (the rest of a refused body or head) makes
         * the kernel send RST, which can destroy this response before the client
         * has read it.
         */
        hc->state = MG_HC_LINGER;
        if (mg_conn_shutdown_write(&hc->conn) != MG_OK) {
            mg_hc_close(hc);
            return;
        }
        mg_hc_timer_set(hc, MG_HC_LINGER_MS);
        if (hc->conn.read_ready) {
            mg_hc_read(hc);
        }
        return;
    }
    if (hc->want_drain && hc->req != NULL) {
        hc->want_drain = false;
        if (hc->server->conf.on_drain != NULL) {
            bool was = hc->entered;
            hc->entered = true;
            hc->server->conf.on_drain(hc->req);
            hc->entered = was;
        }
    }
}

static int
mg_hc_on_write(mg_conn_t *c)
{
    mg_hconn_t *hc = c->data;
    hc->entered = true;
    mg_hc_flush(hc);
    hc->entered = false;
    return mg_hc_settle(hc);
}

/* ---- responses ---- */

/* flush_ev: writes what was queued from outside an entry point, then settles. */
static void
mg_hc_deferred_flush(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_hconn_t *hc = arg;
    hc->flush_pending = false;
    hc->entered = true;
    mg_hc_flush(hc);
    hc->entered = false;
    (void) mg_hc_settle(hc); /* closes hc if the write failed */
}

static void
mg_hc_after_queue(mg_http_req_t *req)
{
    mg_hconn_t *hc = req->hc;
    if (hc->entered) {
        mg_hc_flush(hc); /* the entry point up the stack settles */
        return;
    }
    /* a handler answering later (upstream callback): write at the end of this round */
    if (!hc->flush_pending) {
        hc->flush_pending = true;
        event_active(&hc->flush_ev, EV_TIMEOUT, 1);
    }
}

static void
mg_http_head_out(mg_http_req_t *req, int status, const char *headers, size_t headers_len,
                 const char *framing)
{
    mg_hconn_t *hc = req->hc;
    mg_buf_printf(&hc->out, "HTTP/1.1 %d %s\r\n", status, mg_http_status_text(status));
    mg_buf_append_str(&hc->out, mg_http_date(hc->server));
    if (headers != NULL && headers_len > 0) {
        mg_buf_append(&hc->out, headers, headers_len);
    }
    mg_buf_append_str(&hc->out, framing);
    if (!req->keep_alive || hc->server->draining) {
        req->keep_alive = false;
        mg_buf_append_str(&hc->out, "connection: close\r\n");
    } else if (req->head.version_minor == 0) {
        mg_buf_append_str(&hc->out, "connection: keep-alive\r\n");
    }
    mg_buf_append(&hc->out, "\r\n", 2);
    req->status = status;
    req->head_sent = true;
}

/* Calls the handler's on_complete once, before the last bytes of the answer are queued. */
static void
mg_http_complete(mg_http_req_t *req, int status, const char *body, size_t len)
{
    if (req->completing) {
        return;
    }
    req->completing = true;
    if (req->server->conf.on_complete != NULL) {
        req->server->conf.on_complete(req, status, body, len);
    }
}

/*
 * The second line of defence against header injection: a handler's header block that
 * fails mg_http_fields_valid() is never written.  The client gets a 500 that says a
 * response head was refused and why (header names and offsets, never values), the log
 * says the same at error level, and the connection closes after it.  Returns true if it
 * answered so (the request is then finished).
 */
static bool
mg_http_refuse_head(mg_http_req_t *req, int status, const char *headers, size_t headers_len)
{
    mg_err_t err;
    if (headers == NULL || headers_len == 0 ||
        mg_http_fields_valid(headers, headers_len, &err) == MG_OK) {
        return false;
    }
    mg_log(MG_LOG_ERROR, NULL, "request %llu from %s: refusing to send a %d response head with "
                               "%s; answering 500 instead",
           (unsigned long long) req->seq, req->peer, status, err.msg);
    mg_http_complete(req, 500, NULL, 0);
    char msg[MG_ERR_MSG_MAX + 64];
    snprintf(msg, sizeof(msg), "moongate refused to send a response head with %s", err.msg);
    mg_buf_t body = MG_BUF_INIT;
    mg_buf_append_str(&body, "{\"error\":{\"message\":");
    mg_buf_json_str(&body, msg, strlen(msg));
    mg_buf_append_str(&body, ",\"type\":\"internal_error\",\"param\":null,\"code\":\"500\"}}");
    char framing[64];
    snprintf(framing, sizeof(framing), "content-length: %zu\r\n", mg_buf_len(&body));
    static const char ct[] = "content-type: application/json\r\n";
    req->keep_alive = false;
    req->streaming = false;
    mg_http_head_out(req, 500, ct, sizeof(ct) - 1, framing);
    if (!(req->head.method_len == 4 && memcmp(req->head.method, "HEAD", 4) == 0)) {
        mg_buf_append(&req->hc->out, mg_buf_head(&body), mg_buf_len(&body));
    }
    req->bytes_out += mg_buf_len(&body);
    req->finished = true;
    mg_buf_free(&body);
    mg_hc_after_queue(req);
    return true;
}

void
mg_http_respond(mg_http_req_t *req, int status, const char *headers, size_t headers_len,
                const char *body, size_t body_len)
{
    mg_hconn_t *hc = req->hc;
    if (req->finished || req->head_sent) {
        mg_log(MG_LOG_ERROR, NULL, "response sent twice for request %llu", (unsigned long long) req->seq);
        return;
    }
    if (mg_http_refuse_head(req, status, headers, headers_len)) {
        return;
    }
    mg_http_complete(req, status, body, body_len);
    char framing[64];
    snprintf(framing, sizeof(framing), "content-length: %zu\r\n", body_len);
    mg_http_head_out(req, status, headers, headers_len, framing);
    bool head_method = req->head.method_len == 4 && memcmp(req->head.method, "HEAD", 4) == 0;
    if (!head_method) {
        if (mg_buf_len(&hc->out) < 4096 || body_len < 4096) {
            mg_buf_append(&hc->out, body, body_len);
        } else {
            /* big body: try writing head + body straight from the caller's memory */
            struct iovec iov[2] = {{mg_buf_head(&hc->out), mg_buf_len(&hc->out)},
                                   {(void *) body, body_len}};
            ssize_t n = hc->conn.write_ready ? mg_conn_writev(&hc->conn, iov, 2) : MG_AGAIN;
            if (n >= 0) {
                size_t hl = mg_buf_len(&hc->out);
                if ((size_t) n >= hl) {
                    mg_buf_reset(&hc->out);
                    mg_buf_append(&hc->out, body + ((size_t) n - hl), body_len - ((size_t) n - hl));
                } else {
                    mg_buf_consume(&hc->out, (size_t) n);
                    mg_buf_append(&hc->out, body, body_len);
                }
            } else {
                mg_buf_append(&hc->out, body, body_len);
            }
        }
    }
    req->bytes_out += body_len;
    req->finished = true;
    mg_hc_after_queue(req);
}

void
mg_http_stream_begin(mg_http_req_t *req, int status, const char *headers, size_t headers_len)
{
    if (mg_http_refuse_head(req, status, headers, headers_len)) {
        return; /* finished: the handler's stream_write/stream_end calls are no-ops */
    }
    req->streaming = true;
    if (req->head.version_minor == 0) {
        /* HTTP/1.0 has no chunked encoding: delimit by close */
        req->keep_alive = false;
        mg_http_head_out(req, status, headers, headers_len, "");
    } else {
        mg_http_head_out(req, status, headers, headers_len, "transfer-encoding: chunked\r\n");
    }
    mg_hc_after_queue(req);
}

bool
mg_http_stream_write(mg_http_req_t *req, const char *data, size_t len)
{
    mg_hconn_t *hc = req->hc;
    if (len == 0 || req->finished) {
        return false;
    }
    if (req->head.version_minor == 0) {
        mg_buf_append(&hc->out, data, len);
    } else {
        mg_buf_printf(&hc->out, "%zx\r\n", len);
        mg_buf_append(&hc->out, data, len);
        mg_buf_append(&hc->out, "\r\n", 2);
    }
    req->bytes_out += len;
    mg_hc_after_queue(req);
    if (mg_buf_len(&hc->out) > MG_HC_HIGH_WATER) {
        hc->want_drain = true;
        return true;
    }
    return false;
}

void
mg_http_stream_end(mg_http_req_t *req)
{
    mg_hconn_t *hc = req->hc;
    if (req->finished) {
        return;
    }
    mg_http_complete(req, req->status, NULL, 0);
    if (req->head.version_minor == 0) {
        req->keep_alive = false;
    } else {
        mg_buf_append(&hc->out, "0\r\n\r\n", 5);
    }
    req->finished = true;
    mg_hc_after_queue(req);
}

void
mg_http_stream_abort(mg_http_req_t *req)
{
    mg_hconn_t *hc = req->hc;
    mg_http_complete(req, req->status, NULL, 0);
    req->finished = true;
    req->keep_alive = false;
    hc->state = MG_HC_CLOSING;
    mg_hc_after_queue(req);
}

const char *
mg_http_req_header(const mg_http_req_t *req, const char *lower_name, size_t *len)
{
    const mg_http_header_t *h = mg_http_header_find(&req->head, lower_name);
    if (h == NULL) {
        return NULL;
    }
    if (len != NULL) {
        *len = h->value_len;
    }
    return h->value;
}

size_t
mg_http_req_pending(const mg_http_req_t *req)
{
    return mg_buf_len(&req->hc->out);
}
