/*
 * mg_client.h -- one HTTP exchange with an upstream.
 *
 * Owns: while it runs, the connection it took from its upstream's pool, and a
 * reference on the upstream.  Does not own the request bytes (borrowed iovecs,
 * which must stay valid until on_done) nor its user.
 *
 * Callbacks may call mg_client_free() on the client they were called for;
 * the client notices and stops.  After on_done no callback follows.
 */
#ifndef MG_CLIENT_H
#define MG_CLIENT_H

#include "../base/mg_buf.h"
#include "../base/mg_err.h"
#include "../http/mg_http_parse.h"
#include "mg_upstream.h"

#include <sys/uio.h>

typedef struct {
    /* response head received (1xx skipped) */
    void (*on_head)(void *ud, const mg_http_head_t *head);
    /* decoded body bytes, in order */
    void (*on_body)(void *ud, const char *data, size_t len);
    /* rc MG_OK: body complete.  MG_ERROR: err->cls is upstream_connect / upstream_timeout /
     * internal, err->msg says what; got_head tells whether on_head ran. */
    void (*on_done)(void *ud, int rc, const mg_err_t *err);
} mg_client_cbs_t;

typedef struct {
    int connect_timeout_ms;     /* 0 = pool default */
    int first_byte_timeout_ms;  /* response head; 0 = none */
    int idle_timeout_ms;        /* between body reads; 0 = none */
} mg_client_timeouts_t;

/*
 * Starts an exchange; never calls back synchronously.  NULL + err if it cannot start.
 * iov[0] is the complete request head (request line, fields, empty line) and nothing
 * else; the body, if any, follows in iov[1..].  A head that fails mg_http_head_valid()
 * (raw CR/LF/NUL, bad name, second Host/Content-Length, bytes after the empty line) is
 * refused with an internal-class err: "refusing to send an upstream request head with
 * a raw CR/LF/NUL in header "authorization" (byte 0x0a at offset 91)".
 */
mg_client_t *mg_client_start(mg_upstream_t *u, const struct iovec *iov, int iovcnt,
                             const mg_client_timeouts_t *to, const mg_client_cbs_t *cbs, void *ud,
                             mg_err_t *err);
/* Stops reading the body (backpressure) / resumes. */
void mg_client_pause(mg_client_t *c);
void mg_client_resume(mg_client_t *c);
/* Ends the exchange; an unfinished one closes its connection (never pooled). */
void mg_client_free(mg_client_t *c);
/* Bytes received so far (head + body). */
size_t mg_client_bytes_in(const mg_client_t *c);

#endif
