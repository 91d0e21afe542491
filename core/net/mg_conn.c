/*
 * mg_conn.c -- non-blocking socket + TLS I/O (see mg_conn.h).
 */
#include "mg_conn.h"

#include "../base/mg_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
mg_conn_event(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    mg_conn_t *c = arg;
    /* the handlers may close the conn; each reads flags before calling */
    if (what & EV_READ) {
        c->read_ready = true;
    }
    if (what & EV_WRITE) {
        c->write_ready = true;
    }
    if ((what & EV_READ) || ((what & EV_WRITE) && c->tls_read_wants_write)) {
        if (c->on_read != NULL && c->on_read(c) != MG_OK) {
            return; /* closed or freed by the handler */
        }
    }
    if ((what & EV_WRITE) || ((what & EV_READ) && c->tls_write_wants_read)) {
        if (c->on_write != NULL) {
            (void) c->on_write(c); /* nothing follows that could touch c */
        }
    }
}

int
mg_conn_init(mg_conn_t *c, struct event_base *base, int fd, void *data, mg_err_t *err)
{
    c->fd = fd;
    c->ssl = NULL;
    c->read_ready = false;
    c->write_ready = true;
    c->eof = false;
    c->tls_read_wants_write = false;
    c->tls_write_wants_read = false;
    c->last_errno = 0;
    c->data = data;
    c->ev_added = false;
    if (event_assign(&c->ev, base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, mg_conn_event,
                     c) != 0 ||
        event_add(&c->ev, NULL) != 0) {
        close(fd);
        c->fd = -1;
        return mg_err_set(err, MG_ERR_INTERNAL, "event_add() failed for fd %d", fd);
    }
    c->ev_added = true;
    return MG_OK;
}

void
mg_conn_close(mg_conn_t *c)
{
    if (c->ev_added) {
        event_del(&c->ev);
        c->ev_added = false;
    }
    if (c->ssl != NULL) {
        /* no close_notify round trip: the peer gets FIN */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

void
mg_conn_abort(mg_conn_t *c)
{
    if (c->fd >= 0) {
        struct linger lg = {1, 0};
        (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)); /* best effort */
    }
    mg_conn_close(c);
}

int
mg_conn_shutdown_write(mg_conn_t *c)
{
    if (c->fd < 0) {
        return MG_ERROR;
    }
    if (c->ssl != NULL) {
        (void) SSL_shutdown(c->ssl); /* close_notify, best effort; no wait for the peer's */
    }
    if (shutdown(c->fd, SHUT_WR) != 0) {
        c->last_errno = errno;
        return MG_ERROR;
    }
    return MG_OK;
}

static int
mg_conn_ssl_error(mg_conn_t *c, int r, bool reading)
{
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->read_ready = false;
        if (!reading) {
            c->tls_write_wants_read = true;
        }
        return MG_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->write_ready = false;
        if (reading) {
            c->tls_read_wants_write = true;
        }
        return MG_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        c->eof = true;
        return 0;
    case SSL_ERROR_SYSCALL:
        c->last_errno = errno ? errno : ECONNRESET;
        ERR_clear_error();
        return MG_ERROR;
    default:
        c->last_errno = EPROTO;
        ERR_clear_error();
        return MG_ERROR;
    }
}

ssize_t
mg_conn_recv(mg_conn_t *c, void *buf, size_t len)
{
    if (c->ssl != NULL) {
        c->tls_read_wants_write = false;
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int) len);
        if (r > 0) {
            return r;
        }
        int rc = mg_conn_ssl_error(c, r, true);
        if (rc == 0) {
            return 0;
        }
        return rc;
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n > 0) {
            /* no "short read means drained" shortcut: with edge triggering, data and a
             * RST that arrive together are one event (libevent reports EPOLLERR/HUP as
             * plain EV_READ|EV_WRITE), so the error must be read now or never */
            return n;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->read_ready = false;
            return MG_AGAIN;
        }
        c->last_errno = errno;
        return MG_ERROR;
    }
}

ssize_t
mg_conn_writev(mg_conn_t *c, const struct iovec *iov, int iovcnt)
{
    if (c->ssl != NULL) {
        /* TLS: write iovecs one after another; stop at the first partial */
        ssize_t total = 0;
        c->tls_write_wants_read = false;
        for (int i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len == 0) {
                continue;
            }
            ERR_clear_error();
            int r = SSL_write(c->ssl, iov[i].iov_base,
                              iov[i].iov_len > INT32_MAX ? INT32_MAX : (int) iov[i].iov_len);
            if (r > 0) {
                total += r;
                if ((size_t) r < iov[i].iov_len) {
                    return total;
                }
                continue;
            }
            int rc = mg_conn_ssl_error(c, r, false);
            if (total > 0 && rc == MG_AGAIN) {
                return total;
            }
            if (rc == 0) {
                c->last_errno = EPIPE;
                return MG_ERROR;
            }
            return rc;
        }
        return total;
    }
    for (;;) {
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = (struct iovec *) iov;
        mh.msg_iovlen = (size_t) (iovcnt > 64 ? 64 : iovcnt);
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n >= 0) {
            return n;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->write_ready = false;
            return MG_AGAIN;
        }
        c->last_errno = errno;
        return MG_ERROR;
    }
}

int
mg_conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                mg_conn_t *c, void *data, mg_err_t *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "socket() failed (%d: %s)", errno,
                          strerror(errno));
    }
    int one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* best effort */
    int r = connect(fd, sa, salen);
    if (r != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        c->fd = -1;
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "connect() failed (%d: %s)", e,
                          strerror(e));
    }
    if (mg_conn_init(c, base, fd, data, err) != MG_OK) {
        return MG_ERROR;
    }
    c->write_ready = (r == 0);
    return r == 0 ? MG_OK : MG_AGAIN;
}

int
mg_conn_connect_finish(mg_conn_t *c, mg_err_t *err)
{
    int e = 0;
    socklen_t el = sizeof(e);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0) {
        e = errno;
    }
    if (e != 0) {
        c->last_errno = e;
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "connect() failed (%d: %s)", e,
                          strerror(e));
    }
    return MG_OK;
}

SSL_CTX *
mg_tls_client_ctx(mg_err_t *err)
{
    static SSL_CTX *ctx = NULL;
    if (ctx != NULL) {
        return ctx;
    }
    SSL_CTX *x = SSL_CTX_new(TLS_client_method());
    if (x == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "SSL_CTX_new() failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION);
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    /* SSL_CERT_FILE / SSL_CERT_DIR are honoured by the default paths */
    const char *cafile = getenv("SSL_CERT_FILE");
    if (cafile != NULL && cafile[0] != '\0') {
        if (SSL_CTX_load_verify_locations(x, cafile, NULL) != 1) {
            mg_err_set(err, MG_ERR_CONFIG, "cannot load CA file \"%s\" from SSL_CERT_FILE", cafile);
            SSL_CTX_free(x);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(x) != 1) {
        mg_err_set(err, MG_ERR_INTERNAL, "SSL_CTX_set_default_verify_paths() failed");
        SSL_CTX_free(x);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_CLIENT);
    ctx = x;
    return ctx;
}

int
mg_conn_tls_client(mg_conn_t *c, SSL_CTX *ctx, const char *sni, bool verify, mg_err_t *err)
{
    SSL *s = SSL_new(ctx);
    if (s == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "SSL_new() failed");
    }
    SSL_set_fd(s, c->fd);
    SSL_set_connect_state(s);
    if (sni != NULL && sni[0] != '\0') {
        /* SNI only for names, not IP literals */
        unsigned char tmp[16];
        if (inet_pton(AF_INET, sni, tmp) != 1 && inet_pton(AF_INET6, sni, tmp) != 1) {
            SSL_set_tlsext_host_name(s, sni);
        }
        if (verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(s);
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (inet_pton(AF_INET, sni, tmp) == 1 || inet_pton(AF_INET6, sni, tmp) == 1) {
                X509_VERIFY_PARAM_set1_ip_asc(vp, sni);
            } else {
                X509_VERIFY_PARAM_set1_host(vp, sni, 0);
            }
        }
    }
    SSL_set_verify(s, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    c->ssl = s;
    return MG_OK;
}

int
mg_conn_tls_handshake(mg_conn_t *c, mg_err_t *err)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        return MG_OK;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->read_ready = false;
        return MG_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->write_ready = false;
        return MG_AGAIN;
    }
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK) {
        ERR_clear_error();
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "TLS certificate verification failed: %s",
                          X509_verify_cert_error_string(vr));
    }
    unsigned long ee = ERR_get_error();
    char buf[256];
    ERR_error_string_n(ee, buf, sizeof(buf));
    ERR_clear_error();
    return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "TLS handshake failed: %s",
                      ee ? buf : (e == SSL_ERROR_SYSCALL ? "connection closed" : "protocol error"));
}
