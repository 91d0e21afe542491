/*
 * mg_conn.h -- one non-blocking TCP socket, optionally wrapped in TLS.
 *
 * Owns: the fd, the SSL object and the libevent event (embedded).  Does not
 * own its user (data).  The event is registered once, edge-triggered for
 * both directions; readiness is tracked in read_ready/write_ready, so a user
 * that pauses reading (backpressure) can resume later without an epoll_ctl.
 * Single-threaded: one worker's event base.
 */
#ifndef MG_CONN_H
#define MG_CONN_H

#include "../base/mg_err.h"
#include "../base/mg_types.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Handlers return MG_OK while c is alive, MG_DECLINED once they closed or freed it. */
typedef int (*mg_conn_handler_t)(mg_conn_t *c);

struct mg_conn_s {
    int fd;
    SSL *ssl;                   /* owned; NULL for plain TCP */
    struct event ev;            /* embedded; EV_READ|EV_WRITE|EV_ET|EV_PERSIST */
    bool ev_added;
    bool read_ready;
    bool write_ready;
    bool eof;
    bool tls_read_wants_write;  /* SSL_read asked for write readiness */
    bool tls_write_wants_read;
    int last_errno;
    mg_conn_handler_t on_read;  /* called on read readiness */
    mg_conn_handler_t on_write; /* called on write readiness */
    void *data;                 /* borrowed: the owner */
};

/* Takes ownership of fd (must be non-blocking) and registers the event. */
int mg_conn_init(mg_conn_t *c, struct event_base *base, int fd, void *data, mg_err_t *err);
/* Unregisters, frees SSL, closes fd.  Safe to call twice. */
void mg_conn_close(mg_conn_t *c);
/* Resets the socket with RST (SO_LINGER 0) before closing: for aborted exchanges. */
void mg_conn_abort(mg_conn_t *c);
/* Sends FIN after what is written (half-close); reading goes on.  MG_OK or MG_ERROR. */
int mg_conn_shutdown_write(mg_conn_t *c);

/* >0 bytes, 0 = EOF, MG_AGAIN, MG_ERROR (c->last_errno / SSL error). */
ssize_t mg_conn_recv(mg_conn_t *c, void *buf, size_t len);
/* >=0 bytes written (may be partial), MG_AGAIN, MG_ERROR. */
ssize_t mg_conn_writev(mg_conn_t *c, const struct iovec *iov, int iovcnt);

/* Starts a non-blocking connect; MG_OK connected, MG_AGAIN in progress, MG_ERROR. */
int mg_conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                    mg_conn_t *c, void *data, mg_err_t *err);
/* After write readiness: MG_OK if the connect succeeded, MG_ERROR with the reason. */
int mg_conn_connect_finish(mg_conn_t *c, mg_err_t *err);

/* Client TLS: attaches SSL with SNI and hostname verification. */
int mg_conn_tls_client(mg_conn_t *c, SSL_CTX *ctx, const char *sni, bool verify, mg_err_t *err);
/* Drives the handshake: MG_OK done, MG_AGAIN (wait), MG_ERROR (err says why). */
int mg_conn_tls_handshake(mg_conn_t *c, mg_err_t *err);

/* The worker's shared client SSL_CTX (system CA store, TLS >= 1.2). */
SSL_CTX *mg_tls_client_ctx(mg_err_t *err);

#endif
