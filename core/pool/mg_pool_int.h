/*
 * mg_pool_int.h -- what mg_upstream.c and mg_client.c share: the pooled
 * connection.  Not for other modules.
 */
#ifndef MG_POOL_INT_H
#define MG_POOL_INT_H

#include "../net/mg_conn.h"
#include "mg_client.h"
#include "mg_upstream.h"

typedef enum {
    MG_UPCONN_CONNECTING = 0,
    MG_UPCONN_HANDSHAKE,
    MG_UPCONN_IDLE,
    MG_UPCONN_BUSY,
} mg_upconn_state_t;

struct mg_upconn_s {
    mg_conn_t conn;
    mg_upstream_t *u;               /* ref, dropped when the connection closes */
    mg_upconn_state_t state;
    struct event timer;             /* idle timeout while pooled */
    bool timer_on;
    mg_client_t *client;            /* borrowed: the exchange using it (BUSY/CONNECTING) */
    mg_upconn_t *next_idle, *prev_idle;
    uint64_t nreq;                  /* exchanges completed on it */
    bool in_open;                   /* inside mg_upconn_open (DNS may answer synchronously) */
    bool dns_sync_done;
    mg_err_t dns_err;
    struct evdns_getaddrinfo_request *dns_req; /* pending lookup, cancelled on close */
};

/* Opens a new connection for u (resolving first if needed); client gets it via its callbacks. */
mg_upconn_t *mg_upconn_open(mg_upstream_t *u, mg_client_t *client, mg_err_t *err);
/* Pops the most recently used idle connection, or NULL. */
mg_upconn_t *mg_upconn_take_idle(mg_upstream_t *u, mg_client_t *client);
/* Returns a connection after a complete exchange: pooled, or closed when draining/full. */
void mg_upconn_release(mg_upconn_t *pc, bool reusable);
/* Closes (abort = RST) and frees; drops the upstream reference. */
void mg_upconn_close(mg_upconn_t *pc, bool abort);

/* Client side hooks called by mg_upstream.c when a connection becomes usable or fails. */
void mg_client_conn_ready(mg_client_t *c);
void mg_client_conn_failed(mg_client_t *c, const mg_err_t *err);

#endif
