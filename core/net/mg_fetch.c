/*
 * mg_fetch.c -- a GET in a child process (see mg_fetch.h).
 *
 * Reads top-down: the URL, the child (blocking socket code with deadlines: it has nothing
 * else to do), the pipe protocol between them, the parent's two ways to wait (the event
 * loop, or poll() at startup).
 *
 * The pipe carries one answer, then EOF:
 *   "H <status> <redirects> <content-type length>\n" <content-type> <body>   an answer
 *   "E <class> <message length>\n" <message>                                  no answer
 * Anything else (the child died half-way) is an error "the fetch process ended early".
 */
#include "mg_fetch.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "mg_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MG_FETCH_MAX_REDIRECTS 5
#define MG_FETCH_MAX_HEAD (64 * 1024)

/* ---- URLs ---- */

typedef struct {
    bool tls;
    char host[256];                 /* without brackets for IPv6 literals */
    char port[8];
    char target[2048];              /* path and query */
} mg_fetch_url_t;

int
mg_fetch_is_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

static int
mg_fetch_parse_url(const char *url, mg_fetch_url_t *u, mg_err_t *err)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "not an http:// or https:// URL");
    }
    size_t alen = strcspn(p, "/?#");
    const char *at = memchr(p, '@', alen);
    if (at != NULL) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "a URL with user:password@ is refused "
                                                   "(a credential in a URL)");
    }
    const char *host = p, *hend, *port = NULL;
    if (*p == '[') {
        hend = memchr(p, ']', alen);
        if (hend == NULL) {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "unterminated IPv6 literal in the URL");
        }
        host = p + 1;
        if (hend + 1 < p + alen && hend[1] == ':') {
            port = hend + 2;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        hend = colon != NULL ? colon : p + alen;
        if (colon != NULL) {
            port = colon + 1;
        }
    }
    size_t hl = (size_t) (hend - host);
    if (hl == 0 || hl >= sizeof(u->host)) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "the URL has no host, or one too long");
    }
    memcpy(u->host, host, hl);
    size_t pl = port != NULL ? (size_t) (p + alen - port) : 0;
    if (port != NULL && (pl == 0 || pl >= sizeof(u->port) || strspn(port, "0123456789") < pl)) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "the URL's port is not a number");
    }
    if (pl > 0) {
        memcpy(u->port, port, pl);
    } else {
        snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
    }
    const char *rest = p + alen;
    size_t tl = strcspn(rest, "#");
    if (tl + 2 > sizeof(u->target)) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "the URL is too long");
    }
    snprintf(u->target, sizeof(u->target), "%s%.*s", rest[0] == '/' ? "" : "/", (int) tl, rest);
    for (const char *c = u->target; *c; c++) {
        if ((unsigned char) *c <= ' ' || *c == 0x7f) {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "the URL has a space or control character");
        }
    }
    return MG_OK;
}

/* ---- the child: a blocking GET with deadlines ---- */

typedef struct {
    int fd;
    SSL *ssl;
    int64_t deadline_ms;            /* monotonic */
} mg_fetch_io_t;

static int
mg_fetch_left(const mg_fetch_io_t *io)
{
    int64_t left = io->deadline_ms - mg_time_mono_ms();
    return left > 0 ? (int) left : 0;
}

static void
mg_fetch_set_timeouts(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (ms <= 0) {
        tv.tv_usec = 1000;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
mg_fetch_connect(const mg_fetch_url_t *u, int connect_ms, mg_fetch_io_t *io, mg_err_t *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "getaddrinfo(\"%s\") failed: %s", u->host,
                          gai_strerror(rc));
    }
    int last = 0;
    bool timed_out = false;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int left = mg_fetch_left(io);
        int wait = connect_ms < left ? connect_ms : left;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            continue;
        }
        struct pollfd pf = {fd, POLLOUT, 0};
        int pr = poll(&pf, 1, wait);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (pr == 0) {
            timed_out = true;
            close(fd);
            continue;
        }
        if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            last = pr < 0 ? errno : soerr;
            close(fd);
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        io->fd = fd;
        freeaddrinfo(res);
        return MG_OK;
    }
    freeaddrinfo(res);
    if (timed_out && last == 0) {
        return mg_err_set(err, MG_ERR_UPSTREAM_TIMEOUT, "connect() to %s:%s timed out after %dms",
                          u->host, u->port, connect_ms);
    }
    return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "connect() to %s:%s failed (%d: %s)", u->host,
                      u->port, last, strerror(last));
}

static int
mg_fetch_tls(const mg_fetch_url_t *u, int connect_ms, mg_fetch_io_t *io, mg_err_t *err)
{
    SSL_CTX *ctx = mg_tls_client_ctx(err); /* the upstreams' trust: system CAs, SSL_CERT_FILE */
    if (ctx == NULL) {
        return MG_ERROR;
    }
    SSL *s = SSL_new(ctx);
    if (s == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "SSL_new() failed");
    }
    io->ssl = s;
    SSL_set_fd(s, io->fd);
    unsigned char tmp[16];
    bool ip = inet_pton(AF_INET, u->host, tmp) == 1 || inet_pton(AF_INET6, u->host, tmp) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(s);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, u->host);
    } else {
        SSL_set_tlsext_host_name(s, u->host);
        X509_VERIFY_PARAM_set1_host(vp, u->host, 0);
    }
    SSL_set_verify(s, SSL_VERIFY_PEER, NULL);
    int left = mg_fetch_left(io);
    mg_fetch_set_timeouts(io->fd, connect_ms < left ? connect_ms : left);
    ERR_clear_error();
    if (SSL_connect(s) == 1) {
        return MG_OK;
    }
    long vr = SSL_get_verify_result(s);
    if (vr != X509_V_OK) {
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "TLS certificate verification of %s "
                          "failed: %s", u->host, X509_verify_cert_error_string(vr));
    }
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (e == 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return mg_err_set(err, MG_ERR_UPSTREAM_TIMEOUT, "TLS handshake with %s timed out",
                          u->host);
    }
    return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "TLS handshake with %s failed: %s", u->host,
                      e != 0 ? buf : "the connection closed");
}

/* >0 bytes, 0 EOF, -1 error (err set) */
static ssize_t
mg_fetch_read(mg_fetch_io_t *io, char *buf, size_t n, mg_err_t *err)
{
    mg_fetch_set_timeouts(io->fd, mg_fetch_left(io));
    for (;;) {
        if (io->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_read(io->ssl, buf, (int) (n > INT32_MAX ? INT32_MAX : n));
            if (r > 0) {
                return r;
            }
            int e = SSL_get_error(io->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN) {
                return 0;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) {
                return 0; /* EOF without close_notify: the body's length says if it is whole */
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                mg_err_set(err, MG_ERR_UPSTREAM_TIMEOUT, "reading the answer timed out");
                return -1;
            }
            mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "SSL_read() failed (%d)", e);
            return -1;
        }
        ssize_t r = recv(io->fd, buf, n, 0);
        if (r >= 0) {
            return r;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            mg_err_set(err, MG_ERR_UPSTREAM_TIMEOUT, "reading the answer timed out");
        } else {
            mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "recv() failed (%d: %s)", errno,
                       strerror(errno));
        }
        return -1;
    }
}

static int
mg_fetch_write(mg_fetch_io_t *io, const char *p, size_t n, mg_err_t *err)
{
    mg_fetch_set_timeouts(io->fd, mg_fetch_left(io));
    while (n > 0) {
        ssize_t w;
        if (io->ssl != NULL) {
            w = SSL_write(io->ssl, p, (int) n);
            if (w <= 0) {
                return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "SSL_write() failed");
            }
        } else {
            w = send(io->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w < 0) {
                return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "send() failed (%d: %s)", errno,
                                  strerror(errno));
            }
        }
        p += w;
        n -= (size_t) w;
    }
    return MG_OK;
}

static void
mg_fetch_close(mg_fetch_io_t *io)
{
    if (io->ssl != NULL) {
        SSL_free(io->ssl);
        io->ssl = NULL;
    }
    if (io->fd >= 0) {
        close(io->fd);
        io->fd = -1;
    }
}

typedef struct {
    int status;
    bool chunked;
    int64_t content_length;         /* -1 unknown */
    char content_type[128];
    char location[2048];
    size_t head_len;                /* bytes of the head, blank line included */
} mg_fetch_head_t;

/* Copies a header value (trimmed) into out. */
static void
mg_fetch_hval(const char *v, size_t n, char *out, size_t outlen)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r')) {
        n--;
    }
    snprintf(out, outlen, "%.*s", (int) (n < outlen ? n : outlen - 1), v);
}

/* MG_OK parsed, MG_AGAIN need more, MG_ERROR malformed */
static int
mg_fetch_parse_head(const char *b, size_t n, mg_fetch_head_t *h, mg_err_t *err)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < n; i++) {
        if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n') {
            end = b + i + 4;
            break;
        }
    }
    if (end == NULL) {
        if (n > MG_FETCH_MAX_HEAD) {
            return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "the answer's head is larger than %d "
                              "bytes", MG_FETCH_MAX_HEAD);
        }
        return MG_AGAIN;
    }
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    h->head_len = (size_t) (end - b);
    if (n < 12 || strncmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ') {
        return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "the answer is not HTTP/1.x");
    }
    h->status = atoi(b + 9);
    if (h->status < 100 || h->status > 999) {
        return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "the answer has no status code");
    }
    const char *line = (const char *) memchr(b, '\n', h->head_len) + 1;
    while (line < end - 2) {
        const char *nl = memchr(line, '\n', (size_t) (end - line));
        const char *colon = memchr(line, ':', (size_t) (nl - line));
        if (colon != NULL) {
            size_t kl = (size_t) (colon - line);
            const char *v = colon + 1;
            size_t vl = (size_t) (nl - v);
            char val[2048];
            if (kl == 14 && strncasecmp(line, "content-length", 14) == 0) {
                mg_fetch_hval(v, vl, val, sizeof(val));
                char *e;
                long long cl = strtoll(val, &e, 10);
                if (*e != '\0' || cl < 0) {
                    return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "bad Content-Length \"%.40s\"",
                                      val);
                }
                h->content_length = cl;
            } else if (kl == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
                mg_fetch_hval(v, vl, val, sizeof(val));
                h->chunked = strcasestr(val, "chunked") != NULL;
            } else if (kl == 12 && strncasecmp(line, "content-type", 12) == 0) {
                mg_fetch_hval(v, vl, h->content_type, sizeof(h->content_type));
            } else if (kl == 8 && strncasecmp(line, "location", 8) == 0) {
                mg_fetch_hval(v, vl, h->location, sizeof(h->location));
            }
        }
        line = nl + 1;
    }
    return MG_OK;
}

/* De-chunks b[0..n) into out; MG_OK when the last chunk was seen, MG_AGAIN if cut short. */
static int
mg_fetch_dechunk(const char *b, size_t n, mg_buf_t *out, mg_err_t *err)
{
    size_t i = 0;
    for (;;) {
        const char *nl = memchr(b + i, '\n', n - i);
        if (nl == NULL) {
            return MG_AGAIN;
        }
        char *e;
        unsigned long long sz = strtoull(b + i, &e, 16);
        if (e == b + i) {
            return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "a malformed chunk size in the answer");
        }
        i = (size_t) (nl - b) + 1;
        if (sz == 0) {
            return MG_OK; /* trailers, if any, are not needed */
        }
        if (sz > n - i) {
            return MG_AGAIN;
        }
        mg_buf_append(out, b + i, (size_t) sz);
        i += (size_t) sz;
        if (i + 2 > n) {
            return MG_AGAIN;
        }
        i += b[i] == '\r' ? 2 : 1;
    }
}

/* One GET; on a redirect, *next is the absolute URL to follow. */
static int
mg_fetch_once(const mg_fetch_url_t *u, const mg_fetch_opts_t *o, mg_fetch_io_t *io,
              mg_fetch_head_t *h, mg_buf_t *body, char *next, size_t nextlen, mg_err_t *err)
{
    io->fd = -1;
    io->ssl = NULL;
    if (mg_fetch_connect(u, o->connect_timeout_ms, io, err) != MG_OK ||
        (u->tls && mg_fetch_tls(u, o->connect_timeout_ms, io, err) != MG_OK)) {
        mg_fetch_close(io);
        return MG_ERROR;
    }
    mg_buf_t req = MG_BUF_INIT;
    bool v6 = strchr(u->host, ':') != NULL;
    bool dflt = strcmp(u->port, u->tls ? "443" : "80") == 0;
    mg_buf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: moongate/%s\r\n"
                        "Accept: application/json\r\nAccept-Encoding: identity\r\n"
                        "Connection: close\r\n\r\n",
                  u->target, v6 ? "[" : "", u->host, v6 ? "]" : "", dflt ? "" : ":",
                  dflt ? "" : u->port, MG_VERSION);
    int rc = mg_fetch_write(io, mg_buf_head(&req), mg_buf_len(&req), err);
    mg_buf_free(&req);
    if (rc != MG_OK) {
        mg_fetch_close(io);
        return MG_ERROR;
    }
    mg_buf_t raw = MG_BUF_INIT;
    char chunk[65536];
    bool have_head = false;
    size_t limit = o->max_bytes + MG_FETCH_MAX_HEAD + 65536;
    for (;;) {
        ssize_t r = mg_fetch_read(io, chunk, sizeof(chunk), err);
        if (r < 0) {
            mg_buf_free(&raw);
            mg_fetch_close(io);
            return MG_ERROR;
        }
        if (r == 0) {
            break;
        }
        mg_buf_append(&raw, chunk, (size_t) r);
        if (!have_head) {
            int hr = mg_fetch_parse_head(mg_buf_head(&raw), mg_buf_len(&raw), h, err);
            if (hr == MG_ERROR) {
                mg_buf_free(&raw);
                mg_fetch_close(io);
                return MG_ERROR;
            }
            have_head = hr == MG_OK;
        }
        if (have_head && h->content_length >= 0 && !h->chunked &&
            mg_buf_len(&raw) >= h->head_len + (size_t) h->content_length) {
            break;
        }
        if (mg_buf_len(&raw) > limit) {
            mg_buf_free(&raw);
            mg_fetch_close(io);
            return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "the answer is larger than %zu bytes",
                              o->max_bytes);
        }
    }
    mg_fetch_close(io);
    if (!have_head) {
        int hr = mg_fetch_parse_head(raw.data ? mg_buf_head(&raw) : "", mg_buf_len(&raw), h, err);
        if (hr != MG_OK) {
            size_t got = mg_buf_len(&raw);
            mg_buf_free(&raw);
            return hr == MG_ERROR ? MG_ERROR
                                  : mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "the connection "
                                               "closed after %zu bytes, before a whole HTTP "
                                               "head", got);
        }
    }
    const char *b = mg_buf_head(&raw) + h->head_len;
    size_t bl = mg_buf_len(&raw) - h->head_len;
    rc = MG_OK;
    if (h->chunked) {
        int dr = mg_fetch_dechunk(b, bl, body, err);
        if (dr == MG_AGAIN) {
            rc = mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "the connection closed in the middle "
                            "of a chunked body (%zu bytes received)", mg_buf_len(body));
        } else if (dr != MG_OK) {
            rc = MG_ERROR;
        }
    } else if (h->content_length >= 0) {
        if (bl < (size_t) h->content_length) {
            rc = mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "the connection closed after %zu of "
                            "the %lld bytes of the body (Content-Length)", bl,
                            (long long) h->content_length);
        } else {
            mg_buf_append(body, b, (size_t) h->content_length);
        }
    } else {
        mg_buf_append(body, b, bl);
    }
    mg_buf_free(&raw);
    if (rc == MG_OK && mg_buf_len(body) > o->max_bytes) {
        rc = mg_err_set(err, MG_ERR_UPSTREAM_5XX, "the answer is larger than %zu bytes",
                        o->max_bytes);
    }
    next[0] = '\0';
    if (rc == MG_OK && h->location[0] != '\0' &&
        (h->status == 301 || h->status == 302 || h->status == 303 || h->status == 307 ||
         h->status == 308)) {
        if (mg_fetch_is_url(h->location)) {
            snprintf(next, nextlen, "%s", h->location);
        } else if (h->location[0] == '/' && h->location[1] != '/') {
            bool v6h = strchr(u->host, ':') != NULL;
            snprintf(next, nextlen, "%s://%s%s%s:%s%s", u->tls ? "https" : "http",
                     v6h ? "[" : "", u->host, v6h ? "]" : "", u->port, h->location);
        }
    }
    return rc;
}

/* The whole fetch, redirects included; the answer goes to *h and body. */
static int
mg_fetch_do(const char *url, const mg_fetch_opts_t *o, mg_fetch_head_t *h, mg_buf_t *body,
            int *redirects, mg_err_t *err)
{
    mg_fetch_io_t io = {-1, NULL, mg_time_mono_ms() + o->total_timeout_ms};
    char cur[2048], next[2048];
    snprintf(cur, sizeof(cur), "%s", url);
    *redirects = 0;
    for (;;) {
        mg_fetch_url_t u;
        if (mg_fetch_parse_url(cur, &u, err) != MG_OK) {
            return MG_ERROR;
        }
        mg_buf_reset(body);
        if (mg_fetch_once(&u, o, &io, h, body, next, sizeof(next), err) != MG_OK) {
            return MG_ERROR;
        }
        if (next[0] == '\0') {
            return MG_OK;
        }
        if (++*redirects > MG_FETCH_MAX_REDIRECTS) {
            return mg_err_set(err, MG_ERR_UPSTREAM_4XX, "more than %d redirects",
                              MG_FETCH_MAX_REDIRECTS);
        }
        if (u.tls && strncasecmp(next, "https://", 8) != 0) {
            return mg_err_set(err, MG_ERR_UPSTREAM_4XX, "refused a redirect from https to a "
                              "plain http URL");
        }
        snprintf(cur, sizeof(cur), "%s", next);
    }
}

static void
mg_fetch_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return; /* the parent went away: nobody to tell */
        }
        p += w;
        n -= (size_t) w;
    }
}

/* The child's life: never returns. */
static void
mg_fetch_child(int wfd, const char *url, const mg_fetch_opts_t *o)
{
    /* nothing of the parent's: its signal handlers, descriptors, blocked signals */
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        signal(sigs[i], SIG_DFL);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* the parent kills it at the deadline; this is the backstop if the parent cannot */
    alarm((unsigned) (o->total_timeout_ms / 1000 + 2));
    if (wfd != 3) {
        dup2(wfd, 3);
    }
    close_range(4, ~0U, 0);
    mg_fetch_head_t h;
    mg_buf_t body = MG_BUF_INIT;
    mg_err_t err;
    mg_err_clear(&err);
    int redirects = 0;
    char line[256];
    if (mg_fetch_do(url, o, &h, &body, &redirects, &err) == MG_OK) {
        size_t ctl = strlen(h.content_type);
        int n = snprintf(line, sizeof(line), "H %d %d %zu\n", h.status, redirects, ctl);
        mg_fetch_write_all(3, line, (size_t) n);
        mg_fetch_write_all(3, h.content_type, ctl);
        mg_fetch_write_all(3, body.data ? mg_buf_head(&body) : "", mg_buf_len(&body));
    } else {
        size_t ml = strlen(err.msg);
        int n = snprintf(line, sizeof(line), "E %d %zu\n", (int) err.cls, ml);
        mg_fetch_write_all(3, line, (size_t) n);
        mg_fetch_write_all(3, err.msg, ml);
    }
    _exit(0);
}

/* ---- the parent ---- */

struct mg_fetch_s {
    pid_t pid;
    int rfd;
    struct event *ev;               /* owned: read readiness of rfd */
    struct event *timer;            /* owned: the total deadline */
    mg_buf_t in;                    /* what the child wrote */
    mg_fetch_opts_t o;
    mg_fetch_cb cb;
    void *ud;
};

static pid_t
mg_fetch_spawn(const char *url, const mg_fetch_opts_t *o, int *rfd, mg_err_t *err)
{
    mg_fetch_url_t u;
    if (mg_fetch_parse_url(url, &u, err) != MG_OK) {
        return -1;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        mg_err_set(err, MG_ERR_INTERNAL, "pipe2() failed (%d: %s)", errno, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        mg_err_set(err, MG_ERR_INTERNAL, "fork() failed (%d: %s)", errno, strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        mg_fetch_child(p[1], url, o);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

/* Reaps the child (it exits at once after writing; the parent's own SIGCHLD handler may
 * have reaped it already: ECHILD is fine). */
static void
mg_fetch_reap(pid_t pid, bool kill_it)
{
    if (kill_it) {
        kill(pid, SIGKILL);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

/* Turns what the child wrote into the callback's arguments. */
static int
mg_fetch_decode(mg_buf_t *in, mg_fetch_result_t *res, mg_err_t *err)
{
    memset(res, 0, sizeof(*res));
    size_t n = mg_buf_len(in);
    const char *b = n > 0 ? mg_buf_head(in) : "";
    const char *nl = memchr(b, '\n', n);
    if (nl == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "the fetch process ended early");
    }
    size_t hl = (size_t) (nl - b) + 1;
    if (b[0] == 'E') {
        int cls = 0;
        size_t ml = 0;
        if (sscanf(b, "E %d %zu", &cls, &ml) != 2 || hl + ml > n) {
            return mg_err_set(err, MG_ERR_INTERNAL, "the fetch process ended early");
        }
        if (cls <= MG_ERR_NONE || cls >= MG_ERR__COUNT) {
            cls = MG_ERR_INTERNAL;
        }
        return mg_err_set(err, (mg_err_class_t) cls, "%.*s", (int) ml, b + hl);
    }
    size_t ctl = 0;
    if (sscanf(b, "H %d %d %zu", &res->status, &res->redirects, &ctl) != 3 || hl + ctl > n ||
        ctl >= sizeof(res->content_type)) {
        return mg_err_set(err, MG_ERR_INTERNAL, "the fetch process ended early");
    }
    memcpy(res->content_type, b + hl, ctl);
    res->content_type[ctl] = '\0';
    res->body = b + hl + ctl;
    res->len = n - hl - ctl;
    return MG_OK;
}

static void
mg_fetch_finish(mg_fetch_t *f, bool timed_out)
{
    if (f->ev != NULL) {
        event_free(f->ev);
        f->ev = NULL;
    }
    if (f->timer != NULL) {
        event_free(f->timer);
        f->timer = NULL;
    }
    close(f->rfd);
    mg_fetch_reap(f->pid, timed_out);
    mg_fetch_result_t res;
    mg_err_t err;
    mg_err_clear(&err);
    int rc;
    if (timed_out) {
        rc = mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "no whole answer within %dms",
                        f->o.total_timeout_ms);
        memset(&res, 0, sizeof(res));
    } else {
        rc = mg_fetch_decode(&f->in, &res, &err);
    }
    f->cb(f->ud, rc, rc == MG_OK ? &res : NULL, rc == MG_OK ? NULL : &err);
    mg_buf_free(&f->in);
    free(f);
}

/* Reads what is there; true at EOF (or when the child wrote more than it may). */
static bool
mg_fetch_drain(mg_fetch_t *f)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(f->rfd, buf, sizeof(buf));
        if (r > 0) {
            mg_buf_append(&f->in, buf, (size_t) r);
            if (mg_buf_len(&f->in) > f->o.max_bytes + 4096) {
                return true; /* cannot happen with our child; decode will refuse it */
            }
            continue;
        }
        if (r == 0) {
            return true;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

static void
mg_fetch_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_fetch_t *f = arg;
    if (mg_fetch_drain(f)) {
        mg_fetch_finish(f, false);
    }
}

static void
mg_fetch_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_fetch_finish(arg, true);
}

mg_fetch_t *
mg_fetch_start(struct event_base *base, const char *url, const mg_fetch_opts_t *o, mg_fetch_cb cb,
               void *ud, mg_err_t *err)
{
    int rfd;
    pid_t pid = mg_fetch_spawn(url, o, &rfd, err);
    if (pid < 0) {
        return NULL;
    }
    fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK);
    mg_fetch_t *f = mg_xcalloc(1, sizeof(*f));
    f->pid = pid;
    f->rfd = rfd;
    f->o = *o;
    f->cb = cb;
    f->ud = ud;
    f->ev = event_new(base, rfd, EV_READ | EV_PERSIST, mg_fetch_on_read, f);
    f->timer = evtimer_new(base, mg_fetch_on_timeout, f);
    event_add(f->ev, NULL);
    struct timeval tv = {o->total_timeout_ms / 1000, (o->total_timeout_ms % 1000) * 1000};
    evtimer_add(f->timer, &tv);
    return f;
}

void
mg_fetch_cancel(mg_fetch_t *f)
{
    if (f == NULL) {
        return;
    }
    event_free(f->ev);
    event_free(f->timer);
    close(f->rfd);
    mg_fetch_reap(f->pid, true);
    mg_buf_free(&f->in);
    free(f);
}

int
mg_fetch_run(const char *url, const mg_fetch_opts_t *o, mg_fetch_cb cb, void *ud)
{
    mg_err_t err;
    int rfd;
    pid_t pid = mg_fetch_spawn(url, o, &rfd, &err);
    if (pid < 0) {
        cb(ud, MG_ERROR, NULL, &err);
        return MG_ERROR;
    }
    mg_fetch_t f;
    memset(&f, 0, sizeof(f));
    f.rfd = rfd;
    f.o = *o;
    fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK);
    int64_t deadline = mg_time_mono_ms() + o->total_timeout_ms;
    bool done = false, timed_out = false;
    while (!done) {
        int64_t left = deadline - mg_time_mono_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pf = {rfd, POLLIN, 0};
        int pr = poll(&pf, 1, (int) left);
        if (pr < 0 && errno != EINTR) {
            break;
        }
        if (pr > 0) {
            done = mg_fetch_drain(&f);
        }
    }
    close(rfd);
    mg_fetch_reap(pid, timed_out || !done);
    mg_fetch_result_t res;
    int rc;
    if (timed_out) {
        rc = mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "no whole answer within %dms",
                        o->total_timeout_ms);
    } else {
        rc = mg_fetch_decode(&f.in, &res, &err);
    }
    cb(ud, rc, rc == MG_OK ? &res : NULL, rc == MG_OK ? NULL : &err);
    mg_buf_free(&f.in);
    return rc;
}
