/*
 * mg_client.c -- one HTTP exchange on a pooled upstream connection.
 *
 * States: waiting for a connection -> writing the request -> reading the head
 * -> reading the body -> done.  A reused keep-alive connection that fails
 * before any response byte is retried once on a fresh connection (the server
 * closed it while it sat idle); nothing else is retried here.
 */
#include "mg_pool_int.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_CLIENT_READ_CHUNK (16 * 1024)

typedef enum {
    MG_CL_CONNECTING = 0,
    MG_CL_WRITING,
    MG_CL_HEAD,
    MG_CL_BODY,
    MG_CL_DONE,
} mg_client_state_t;

struct mg_client_s {
    mg_upstream_t *u;               /* ref */
    mg_upconn_t *pc;                /* the connection while we use it */
    const struct iovec *req_iov;    /* borrowed */
    int req_iovcnt;
    size_t req_total;
    size_t req_written;
    mg_client_timeouts_t to;
    mg_client_cbs_t cbs;
    void *ud;
    mg_client_state_t state;
    int64_t head_deadline_ms;       /* monotonic: the response head is due by then (0 = none) */
    mg_buf_t in;                    /* owned: raw response bytes */
    mg_http_head_t head;
    int64_t body_left;              /* content-length remaining; -1 chunked; -2 until close */
    mg_http_chunked_t ck;
    struct event timer;             /* embedded: connect/first-byte/idle timeouts, deferred done */
    bool timer_on;
    bool paused;
    bool entered;                   /* inside a user callback */
    bool freed;                     /* mg_client_free() called while entered */
    bool reused;                    /* the connection came from the idle pool */
    bool retried;
    bool head_seen;
    bool deferred_fail;
    mg_err_t deferred_err;
    size_t bytes_in;
};

static int mg_client_on_read(mg_conn_t *conn);
static int mg_client_on_write(mg_conn_t *conn);
static void mg_client_finish(mg_client_t *c, int rc, const mg_err_t *err, bool reusable);

static void
mg_client_timer(mg_client_t *c, int ms)
{
    if (c->timer_on) {
        evtimer_del(&c->timer);
        c->timer_on = false;
    }
    if (ms > 0) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(&c->timer, &tv);
        c->timer_on = true;
    }
}

/* The connect phase is bounded by to.connect_timeout_ms and by the first-byte timeout,
 * which counts from the start of the exchange (connect included), as an SDK's timeout does. */
static int
mg_client_connect_budget_ms(const mg_client_t *c)
{
    int ms = c->to.connect_timeout_ms;
    if (c->to.first_byte_timeout_ms > 0 && (ms <= 0 || c->to.first_byte_timeout_ms < ms)) {
        ms = c->to.first_byte_timeout_ms;
    }
    return ms;
}

static void
mg_client_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_client_t *c = arg;
    c->timer_on = false;
    mg_err_t err;
    if (c->deferred_fail) {
        c->deferred_fail = false;
        mg_client_finish(c, MG_ERROR, &c->deferred_err, false);
        return;
    }
    switch (c->state) {
    case MG_CL_CONNECTING:
        mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "connect to %s did not complete within %dms",
                   c->u->name, mg_client_connect_budget_ms(c));
        break;
    case MG_CL_WRITING:
    case MG_CL_HEAD:
        mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "%s did not answer within %dms", c->u->name,
                   c->to.first_byte_timeout_ms);
        break;
    default:
        mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "%s sent nothing for %dms", c->u->name,
                   c->to.idle_timeout_ms);
        break;
    }
    err.status = 408;
    mg_client_finish(c, MG_ERROR, &err, false);
}

static void
mg_client_free_now(mg_client_t *c)
{
    if (c->timer_on) {
        evtimer_del(&c->timer);
    }
    if (c->pc != NULL) {
        mg_upconn_t *pc = c->pc;
        c->pc = NULL;
        pc->client = NULL;
        mg_upconn_close(pc, true);
    }
    mg_buf_free(&c->in);
    mg_upstream_unref(c->u);
    free(c);
}

/* Starts the exchange on c->pc (ready connection). */
static void
mg_client_begin_io(mg_client_t *c)
{
    mg_upconn_t *pc = c->pc;
    pc->conn.data = pc;
    pc->conn.on_read = mg_client_on_read;
    pc->conn.on_write = mg_client_on_write;
    c->state = MG_CL_WRITING;
    c->req_written = 0;
    if (c->head_deadline_ms > 0) {
        /* whatever the connect used is gone from the first-byte budget */
        int64_t left = c->head_deadline_ms - mg_time_mono_ms();
        mg_client_timer(c, left > 0 ? (int) left : 1);
    } else {
        mg_client_timer(c, 0); /* no first-byte timeout: drop the connect-phase timer */
    }
    (void) mg_client_on_write(&pc->conn);
}

static int
mg_client_get_conn(mg_client_t *c, mg_err_t *err)
{
    mg_upconn_t *pc = c->retried ? NULL : mg_upconn_take_idle(c->u, c);
    if (pc != NULL) {
        c->pc = pc;
        c->reused = true;
        mg_client_begin_io(c);
        return MG_OK;
    }
    c->reused = false;
    c->state = MG_CL_CONNECTING;
    pc = mg_upconn_open(c->u, c, err);
    if (pc == NULL) {
        return MG_ERROR;
    }
    c->pc = pc;
    int budget = mg_client_connect_budget_ms(c);
    if (budget > 0 && !c->deferred_fail) {
        if (c->head_deadline_ms > 0) {
            int64_t left = c->head_deadline_ms - mg_time_mono_ms();
            budget = left > 0 && left < budget ? (int) left : budget;
        }
        mg_client_timer(c, budget); /* the pool's own connect timeout stays a ceiling */
    }
    return MG_OK;
}

mg_client_t *
mg_client_start(mg_upstream_t *u, const struct iovec *iov, int iovcnt,
                const mg_client_timeouts_t *to, const mg_client_cbs_t *cbs, void *ud, mg_err_t *err)
{
    /* the second line of defence against header injection: a head with a raw CR/LF/NUL,
     * a bad name or a second request behind it never reaches the upstream */
    if (iovcnt < 1) {
        mg_err_set(err, MG_ERR_INTERNAL, "an upstream request without a head");
        return NULL;
    }
    if (mg_http_head_valid(iov[0].iov_base, iov[0].iov_len, err) != MG_OK) {
        mg_err_prefix(err, "refusing to send an upstream request head with ");
        return NULL;
    }
    mg_client_t *c = mg_xcalloc(1, sizeof(*c));
    c->u = mg_upstream_ref(u);
    c->req_iov = iov;
    c->req_iovcnt = iovcnt;
    for (int i = 0; i < iovcnt; i++) {
        c->req_total += iov[i].iov_len;
    }
    c->to = *to;
    c->cbs = *cbs;
    c->ud = ud;
    if (to->first_byte_timeout_ms > 0) {
        c->head_deadline_ms = mg_time_mono_ms() + to->first_byte_timeout_ms;
    }
    evtimer_assign(&c->timer, u->pool->base, mg_client_on_timer, c);
    u->requests++;
    c->entered = true; /* no callbacks may run synchronously */
    if (mg_client_get_conn(c, err) != MG_OK) {
        c->entered = false;
        mg_client_free_now(c);
        return NULL;
    }
    c->entered = false;
    return c;
}

void
mg_client_conn_ready(mg_client_t *c)
{
    mg_client_begin_io(c);
}

void
mg_client_conn_failed(mg_client_t *c, const mg_err_t *err)
{
    c->pc = NULL; /* already closed by the pool */
    if (c->entered) {
        /* inside mg_client_start: report from the event loop */
        c->deferred_fail = true;
        c->deferred_err = *err;
        if (c->timer_on) {
            evtimer_del(&c->timer);
        }
        struct timeval tv = {0, 0};
        evtimer_add(&c->timer, &tv);
        c->timer_on = true;
        return;
    }
    mg_client_finish(c, MG_ERROR, err, false);
}

/* Retry once on a fresh connection if a reused one died before any response byte. */
static bool
mg_client_maybe_retry(mg_client_t *c)
{
    if (!c->reused || c->retried || c->bytes_in > 0 || c->head_seen) {
        return false;
    }
    c->retried = true;
    if (c->pc != NULL) {
        mg_upconn_t *pc = c->pc;
        c->pc = NULL;
        pc->client = NULL;
        mg_upconn_close(pc, true);
    }
    mg_err_t err;
    c->entered = true;
    int rc = mg_client_get_conn(c, &err);
    c->entered = false;
    if (rc != MG_OK) {
        mg_client_finish(c, MG_ERROR, &err, false);
    }
    return true;
}

static void
mg_client_finish(mg_client_t *c, int rc, const mg_err_t *err, bool reusable)
{
    if (c->state == MG_CL_DONE) {
        return;
    }
    c->state = MG_CL_DONE;
    mg_client_timer(c, 0);
    if (c->pc != NULL) {
        mg_upconn_t *pc = c->pc;
        c->pc = NULL;
        if (reusable) {
            mg_upconn_release(pc, true);
        } else {
            pc->client = NULL;
            mg_upconn_close(pc, rc != MG_OK);
        }
    }
    c->entered = true;
    c->cbs.on_done(c->ud, rc, err);
    c->entered = false;
    if (c->freed) {
        mg_client_free_now(c);
    }
}

static void
mg_client_fail_io(mg_client_t *c, const char *what)
{
    if (mg_client_maybe_retry(c)) {
        return;
    }
    mg_err_t err;
    int e = c->pc != NULL ? c->pc->conn.last_errno : 0;
    if (e != 0) {
        mg_err_set(&err, MG_ERR_UPSTREAM_CONNECT, "%s %s (%d: %s)", what, c->u->name, e,
                   strerror(e));
    } else {
        mg_err_set(&err, MG_ERR_UPSTREAM_CONNECT, "%s %s", what, c->u->name);
    }
    mg_client_finish(c, MG_ERROR, &err, false);
}

static int
mg_client_on_write(mg_conn_t *conn)
{
    mg_upconn_t *pc = conn->data;
    mg_client_t *c = pc->client;
    if (c == NULL || c->state != MG_CL_WRITING) {
        return MG_OK;
    }
    while (c->req_written < c->req_total) {
        if (!conn->write_ready) {
            return MG_OK;
        }
        struct iovec iov[16];
        int n = 0;
        size_t skip = c->req_written;
        for (int i = 0; i < c->req_iovcnt && n < 16; i++) {
            if (skip >= c->req_iov[i].iov_len) {
                skip -= c->req_iov[i].iov_len;
                continue;
            }
            iov[n].iov_base = (char *) c->req_iov[i].iov_base + skip;
            iov[n].iov_len = c->req_iov[i].iov_len - skip;
            skip = 0;
            n++;
        }
        ssize_t w = mg_conn_writev(conn, iov, n);
        if (w == MG_AGAIN) {
            return MG_OK;
        }
        if (w < 0) {
            mg_client_fail_io(c, "writing the request to");
            return MG_DECLINED;
        }
        c->req_written += (size_t) w;
    }
    c->state = MG_CL_HEAD;
    if (conn->read_ready) {
        return mg_client_on_read(conn);
    }
    return MG_OK;
}

/* Feeds body bytes in c->in to the user; returns false if the client was freed. */
static bool
mg_client_deliver(mg_client_t *c, const char *p, size_t n)
{
    if (n == 0) {
        return true;
    }
    c->entered = true;
    c->cbs.on_body(c->ud, p, n);
    c->entered = false;
    if (c->freed) {
        mg_client_free_now(c);
        return false;
    }
    return true;
}

/* Processes buffered bytes; returns MG_OK to keep reading, MG_DECLINED when finished/freed. */
static int
mg_client_process(mg_client_t *c)
{
    if (c->state == MG_CL_HEAD) {
        for (;;) {
            int status;
            const char *why;
            ssize_t hl = mg_http_parse_response(mg_buf_head(&c->in), mg_buf_len(&c->in), &c->head,
                                                &status, &why);
            if (hl == 0) {
                return MG_OK;
            }
            if (hl < 0) {
                mg_err_t err;
                mg_err_set(&err, MG_ERR_UPSTREAM_5XX, "%s: %s", c->u->name, why);
                err.status = 502;
                mg_client_finish(c, MG_ERROR, &err, false);
                return MG_DECLINED;
            }
            if (c->head.status >= 100 && c->head.status < 200) {
                mg_buf_consume(&c->in, (size_t) hl);
                continue;
            }
            c->head_seen = true;
            int st = c->head.status;
            if (st == 204 || st == 304) {
                c->body_left = 0;
            } else if (c->head.chunked) {
                c->body_left = -1;
                memset(&c->ck, 0, sizeof(c->ck));
                c->ck.lenient = true; /* an upstream we chose: RFC 9112 tolerance */
            } else if (c->head.content_length >= 0) {
                c->body_left = c->head.content_length;
            } else {
                c->body_left = -2;
            }
            c->entered = true;
            c->cbs.on_head(c->ud, &c->head);
            c->entered = false;
            mg_buf_consume(&c->in, (size_t) hl);
            if (c->freed) {
                mg_client_free_now(c);
                return MG_DECLINED;
            }
            c->state = MG_CL_BODY;
            mg_client_timer(c, c->to.idle_timeout_ms);
            break;
        }
    }
    if (c->state != MG_CL_BODY) {
        return MG_OK;
    }
    while (mg_buf_len(&c->in) > 0 && !c->paused) {
        if (c->body_left >= 0) {
            size_t n = mg_buf_len(&c->in);
            if ((int64_t) n > c->body_left) {
                n = (size_t) c->body_left; /* extra bytes: the connection is not reusable */
            }
            char *p = mg_buf_head(&c->in);
            c->body_left -= (int64_t) n;
            mg_buf_consume(&c->in, n);
            if (!mg_client_deliver(c, p, n)) {
                return MG_DECLINED;
            }
            if (c->body_left == 0) {
                break;
            }
        } else if (c->body_left == -1) {
            size_t len = mg_buf_len(&c->in);
            size_t consumed = 0;
            char *p = mg_buf_head(&c->in);
            int r = mg_http_chunked_decode(&c->ck, p, &len, &consumed);
            if (r < 0) {
                mg_err_t err;
                mg_err_set(&err, MG_ERR_UPSTREAM_5XX, "%s sent an invalid chunked body", c->u->name);
                err.status = 502;
                mg_client_finish(c, MG_ERROR, &err, false);
                return MG_DECLINED;
            }
            mg_buf_consume(&c->in, consumed);
            if (!mg_client_deliver(c, p, len)) {
                return MG_DECLINED;
            }
            if (r == 1) {
                c->body_left = 0;
                break;
            }
            if (consumed == 0) {
                break;
            }
        } else {
            size_t n = mg_buf_len(&c->in);
            char *p = mg_buf_head(&c->in);
            mg_buf_consume(&c->in, n);
            if (!mg_client_deliver(c, p, n)) {
                return MG_DECLINED;
            }
        }
    }
    if (c->body_left == 0) {
        bool reusable = c->head.keep_alive && mg_buf_len(&c->in) == 0;
        mg_client_finish(c, MG_OK, NULL, reusable);
        return MG_DECLINED;
    }
    return MG_OK;
}

static int
mg_client_on_read(mg_conn_t *conn)
{
    mg_upconn_t *pc = conn->data;
    mg_client_t *c = pc->client;
    if (c == NULL) {
        return MG_OK;
    }
    if (c->state == MG_CL_WRITING) {
        /* the server answered (or closed) before we finished writing: read it anyway */
        if (!conn->read_ready) {
            return MG_OK;
        }
    }
    if (c->state == MG_CL_DONE) {
        return MG_OK;
    }
    while (!c->paused && conn->read_ready) {
        mg_buf_reserve(&c->in, MG_CLIENT_READ_CHUNK);
        ssize_t n = mg_conn_recv(conn, c->in.data + c->in.end, c->in.cap - c->in.end);
        if (n == MG_AGAIN) {
            break;
        }
        if (n > 0) {
            c->in.end += (size_t) n;
            c->bytes_in += (size_t) n;
            if (c->state == MG_CL_BODY) {
                mg_client_timer(c, c->to.idle_timeout_ms);
            } else if (c->state == MG_CL_WRITING) {
                c->state = MG_CL_HEAD;
            }
            if (mg_client_process(c) != MG_OK) {
                return MG_DECLINED;
            }
            continue;
        }
        /* EOF or error */
        if (n == 0 && c->state == MG_CL_BODY && c->body_left == -2) {
            mg_client_finish(c, MG_OK, NULL, false);
            return MG_DECLINED;
        }
        mg_client_fail_io(c, n == 0 ? (c->head_seen ? "connection closed mid-response by"
                                                      : "connection closed before a response by")
                                    : (c->head_seen ? "connection reset mid-response by"
                                                    : "connection reset before a response by"));
        return MG_DECLINED;
    }
    return MG_OK;
}

void
mg_client_pause(mg_client_t *c)
{
    c->paused = true;
}

void
mg_client_resume(mg_client_t *c)
{
    if (!c->paused) {
        return;
    }
    c->paused = false;
    if (c->state == MG_CL_DONE || c->pc == NULL) {
        return;
    }
    if (mg_buf_len(&c->in) > 0 && mg_client_process(c) != MG_OK) {
        return; /* finished or freed */
    }
    if (c->pc != NULL && c->pc->conn.read_ready && !c->paused) {
        (void) mg_client_on_read(&c->pc->conn);
    }
}

void
mg_client_free(mg_client_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->entered) {
        c->freed = true;
        return;
    }
    mg_client_free_now(c);
}

size_t
mg_client_bytes_in(const mg_client_t *c)
{
    return c->bytes_in;
}
