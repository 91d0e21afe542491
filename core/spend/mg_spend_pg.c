/*
 * mg_spend_pg.c -- see mg_spend_pg.h.  The connection handling follows the pattern of
 * core/store/mg_store_pg.c (evdns, PQconnectPoll, non-blocking flush, one timer for backoff,
 * connect and query timeouts), reduced to one connection and one query at a time.
 */
#include "mg_spend_pg.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MG_SPG_CONNECT_TIMEOUT_MS 5000
#define MG_SPG_SETUP_TIMEOUT_MS 30000
#define MG_SPG_BACKOFF_MIN_MS 100
#define MG_SPG_BACKOFF_MAX_MS 5000
#define MG_SPG_MSG 512
#define MG_SPG_MAX_ADDRS 8

typedef enum {
    MG_SPG_DOWN,
    MG_SPG_RESOLVING,
    MG_SPG_CONNECTING,
    MG_SPG_SETUP,
    MG_SPG_READY,
} mg_spg_state_t;

typedef struct {
    mg_spg_t *c;                    /* NULL once the connection stopped waiting */
} mg_spg_dns_tok_t;

struct mg_spg_s {
    struct event_base *base;        /* borrowed */
    char *role;                     /* owned: "spend sink", "spend reader" (messages) */
    char *setup_sql;                /* owned or NULL */
    PQconninfoOption *opts;         /* owned: parsed URL */
    char url[256];                  /* redacted */
    mg_spg_state_cb on_state;
    void *ud;
    mg_spg_state_t state;
    PGconn *pg;                     /* owned */
    struct event *io;               /* owned */
    struct event *wr;               /* owned */
    struct event *timer;            /* owned: backoff, connect or query timeout */
    struct evdns_base *dns;         /* owned */
    mg_spg_dns_tok_t *dns_tok;      /* owned by evdns until its callback */
    struct evdns_getaddrinfo_request *dns_req;
    int backoff_ms;
    bool started;
    bool busy;                      /* a query (or the setup) is in flight */
    bool was_ready;
    int query_timeout_ms;
    mg_spg_result_cb cb;            /* of the query in flight */
    void *cb_ud;
    PGresult *res;                  /* owned: last tuples result of the query in flight */
    char *qerr;                     /* owned: its first error */
    char sqlstate[6];
    char err[MG_SPG_MSG];           /* why the connection is down */
    int64_t reconnects;
};

static void mg_spg_connect_start(mg_spg_t *c);
static void mg_spg_down(mg_spg_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- helpers ---- */

static const char *
mg_spg_opt(const mg_spg_t *c, const char *kw)
{
    for (const PQconninfoOption *o = c->opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, kw) == 0) {
            return (o->val != NULL && o->val[0] != '\0') ? o->val : NULL;
        }
    }
    return NULL;
}

/* One line from a libpq message, without hint/position lines, the password replaced. */
static void
mg_spg_clean(const mg_spg_t *c, const char *in, char *out, size_t outlen)
{
    const char *pw = c != NULL ? mg_spg_opt(c, "password") : NULL;
    size_t pwl = pw != NULL ? strlen(pw) : 0;
    size_t o = 0;
    if (in == NULL || in[0] == '\0') {
        in = "unknown error";
    }
    for (const char *line = in; *line != '\0' && o + 4 < outlen;) {
        size_t len = strcspn(line, "\n");
        const char *next = line + len + (line[len] == '\n');
        bool caret = len > 0 && strspn(line, " ^") == len;
        if (len == 0 || line[0] == '\t' || strncmp(line, "LINE ", 5) == 0 || caret) {
            line = next;
            continue;
        }
        if (o > 0) {
            memcpy(out + o, "; ", 2);
            o += 2;
        }
        for (const char *p = line; p < line + len && o + 4 < outlen; p++) {
            if (pwl >= 3 && strncmp(p, pw, pwl) == 0) {
                memcpy(out + o, "***", 3);
                o += 3;
                p += pwl - 1;
                continue;
            }
            char ch = ((unsigned char) *p < 0x20 || *p == 0x7f) ? ' ' : *p;
            if (ch == ' ' && o > 0 && out[o - 1] == ' ') {
                continue;
            }
            out[o++] = ch;
        }
        line = next;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';')) {
        o--;
    }
    out[o] = '\0';
}

static void
mg_spg_redact(mg_spg_t *c)
{
    const char *user = mg_spg_opt(c, "user");
    const char *host = mg_spg_opt(c, "host");
    const char *port = mg_spg_opt(c, "port");
    const char *db = mg_spg_opt(c, "dbname");
    if (host == NULL) {
        host = mg_spg_opt(c, "hostaddr");
    }
    snprintf(c->url, sizeof(c->url), "postgresql://%s%s%s%s%s%s%s%s", user ? user : "",
             mg_spg_opt(c, "password") ? ":***" : "", user || mg_spg_opt(c, "password") ? "@" : "",
             host ? host : "", port ? ":" : "", port ? port : "", db ? "/" : "", db ? db : "");
}

static void
mg_spg_timer_add(mg_spg_t *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void
mg_spg_close(mg_spg_t *c)
{
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (c->wr != NULL) {
        event_free(c->wr);
        c->wr = NULL;
    }
    evtimer_del(c->timer);
    if (c->dns_tok != NULL) {
        c->dns_tok->c = NULL;
        c->dns_tok = NULL;
        if (c->dns_req != NULL) {
            evdns_getaddrinfo_cancel(c->dns_req);
        }
        c->dns_req = NULL;
    }
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    PQclear(c->res);
    c->res = NULL;
    free(c->qerr);
    c->qerr = NULL;
}

/* Takes the connection down, arms the reconnect, fails the query in flight. */
static void
mg_spg_down(mg_spg_t *c, const char *fmt, ...)
{
    char raw[MG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    char why[MG_SPG_MSG];
    mg_spg_clean(c, raw, why, sizeof(why));
    bool was_ready = c->state == MG_SPG_READY;
    bool same = strcmp(c->err, why) == 0;
    mg_spg_result_cb cb = c->busy && was_ready ? c->cb : NULL;
    void *cb_ud = c->cb_ud;
    c->busy = false;
    c->cb = NULL;
    mg_spg_close(c);
    c->state = MG_SPG_DOWN;
    snprintf(c->err, sizeof(c->err), "%s", why);
    int delay = c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > MG_SPG_BACKOFF_MAX_MS ? MG_SPG_BACKOFF_MAX_MS
                                                              : c->backoff_ms * 2;
    mg_spg_timer_add(c, delay);
    mg_log(was_ready || !same ? MG_LOG_WARN : MG_LOG_DEBUG, NULL,
           "%s: connection to %s %s: %s; retrying in %dms", c->role, c->url,
           was_ready ? "lost" : "failed", why, delay);
    if (was_ready && c->on_state != NULL) {
        c->on_state(c->ud, false);
    }
    if (cb != NULL) {
        char m[MG_SPG_MSG + 32];
        snprintf(m, sizeof(m), "connection lost: %s", why);
        cb(cb_ud, NULL, m, "08006");
    }
}

static int
mg_spg_flush(mg_spg_t *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        return MG_ERROR;
    }
    if (r > 0) {
        event_add(c->wr, NULL);
    }
    return MG_OK;
}

/* ---- results ---- */

static void
mg_spg_done(mg_spg_t *c)
{
    PGresult *res = c->res;
    char *qerr = c->qerr;
    char st[6];
    memcpy(st, c->sqlstate, sizeof(st));
    c->res = NULL;
    c->qerr = NULL;
    c->busy = false;
    evtimer_del(c->timer);
    if (c->state == MG_SPG_SETUP) {
        PQclear(res);
        if (qerr != NULL) {
            char m[MG_SPG_MSG];
            mg_spg_clean(c, qerr, m, sizeof(m));
            free(qerr);
            mg_spg_down(c, "setup on %s failed: %s", c->url, m);
            return;
        }
        c->state = MG_SPG_READY;
        c->backoff_ms = MG_SPG_BACKOFF_MIN_MS;
        if (c->was_ready) {
            c->reconnects++;
        }
        mg_log(c->was_ready || c->err[0] != '\0' ? MG_LOG_NOTICE : MG_LOG_INFO, NULL,
               "%s: connection to %s ready%s", c->role, c->url,
               c->was_ready ? " (reconnected)" : "");
        c->was_ready = true;
        c->err[0] = '\0';
        if (c->on_state != NULL) {
            c->on_state(c->ud, true);
        }
        return;
    }
    mg_spg_result_cb cb = c->cb;
    void *ud = c->cb_ud;
    c->cb = NULL;
    if (cb != NULL) {
        char m[MG_SPG_MSG];
        if (qerr != NULL) {
            mg_spg_clean(c, qerr, m, sizeof(m));
        }
        cb(ud, res, qerr != NULL ? m : NULL, st);
    }
    PQclear(res);
    free(qerr);
}

static void
mg_spg_collect(mg_spg_t *c)
{
    while (c->busy && c->pg != NULL && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                mg_spg_down(c, "%s", c->qerr != NULL ? c->qerr : PQerrorMessage(c->pg));
                return;
            }
            mg_spg_done(c);
            return;
        }
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
            PQclear(c->res);
            c->res = r;
            break;
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            PQclear(r);
            break;
        default:
            if (c->qerr == NULL) {
                const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *m = PQresultErrorMessage(r);
                c->qerr = mg_xstrdup(m != NULL && m[0] != '\0' ? m
                                                               : PQresStatus(PQresultStatus(r)));
                snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", s != NULL ? s : "");
            }
            PQclear(r);
            break;
        }
    }
}

static void
mg_spg_io_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spg_t *c = arg;
    if (!PQconsumeInput(c->pg)) {
        mg_spg_down(c, "%s", PQerrorMessage(c->pg));
        return;
    }
    if (c->busy) {
        mg_spg_collect(c);
    } else if (PQstatus(c->pg) == CONNECTION_BAD) {
        mg_spg_down(c, "%s", PQerrorMessage(c->pg));
        return;
    }
    PGnotify *n;
    while (c->pg != NULL && (n = PQnotifies(c->pg)) != NULL) {
        PQfreemem(n); /* we LISTEN to nothing */
    }
}

static void
mg_spg_wr_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spg_t *c = arg;
    if (mg_spg_flush(c) != MG_OK) {
        mg_spg_down(c, "sending to the server failed: %s", PQerrorMessage(c->pg));
    }
}

/* ---- connecting ---- */

static void
mg_spg_connected(mg_spg_t *c)
{
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (PQsetnonblocking(c->pg, 1) != 0) {
        mg_spg_down(c, "PQsetnonblocking() failed: %s", PQerrorMessage(c->pg));
        return;
    }
    evutil_socket_t fd = PQsocket(c->pg);
    c->io = event_new(c->base, fd, EV_READ | EV_PERSIST, mg_spg_io_cb, c);
    c->wr = event_new(c->base, fd, EV_WRITE, mg_spg_wr_cb, c);
    if (c->io == NULL || c->wr == NULL || event_add(c->io, NULL) != 0) {
        mg_spg_down(c, "event_new() failed for fd %d", (int) fd);
        return;
    }
    c->state = MG_SPG_SETUP;
    evtimer_del(c->timer);
    mg_spg_timer_add(c, MG_SPG_SETUP_TIMEOUT_MS);
    mg_buf_t sql = MG_BUF_INIT;
    mg_buf_append_str(&sql, "SET client_min_messages = warning;\n");
    if (c->setup_sql != NULL) {
        mg_buf_append_str(&sql, c->setup_sql);
    }
    int rc = PQsendQuery(c->pg, mg_buf_cstr(&sql));
    mg_buf_free(&sql);
    if (rc != 1) {
        mg_spg_down(c, "sending the setup failed: %s", PQerrorMessage(c->pg));
        return;
    }
    c->busy = true;
    c->sqlstate[0] = '\0';
    if (mg_spg_flush(c) != MG_OK) {
        mg_spg_down(c, "sending the setup failed: %s", PQerrorMessage(c->pg));
    }
}

static void mg_spg_poll_cb(evutil_socket_t fd, short what, void *arg);

static void
mg_spg_poll_wait(mg_spg_t *c, PostgresPollingStatusType st)
{
    evutil_socket_t fd = PQsocket(c->pg);
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (fd < 0) {
        mg_spg_down(c, "%s", PQerrorMessage(c->pg));
        return;
    }
    c->io = event_new(c->base, fd, st == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
                      mg_spg_poll_cb, c);
    if (c->io == NULL || event_add(c->io, NULL) != 0) {
        mg_spg_down(c, "event_new() failed for fd %d", (int) fd);
    }
}

static void
mg_spg_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spg_t *c = arg;
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    switch (st) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        mg_spg_poll_wait(c, st);
        break;
    case PGRES_POLLING_OK:
        mg_spg_connected(c);
        break;
    default:
        mg_spg_down(c, "%s", PQerrorMessage(c->pg));
        break;
    }
}

static void
mg_spg_connect(mg_spg_t *c, const char *hosts, const char *addrs)
{
    enum { MAX_KW = 80 };
    const char *kw[MAX_KW + 1], *val[MAX_KW + 1];
    int n = 0;
    for (const PQconninfoOption *o = c->opts; o->keyword != NULL && n < MAX_KW - 10; o++) {
        if (o->val == NULL) {
            continue;
        }
        if (addrs != NULL && (strcmp(o->keyword, "host") == 0 ||
                              strcmp(o->keyword, "hostaddr") == 0)) {
            continue;
        }
        kw[n] = o->keyword;
        val[n++] = o->val;
    }
    if (addrs != NULL) {
        kw[n] = "host";
        val[n++] = hosts;
        kw[n] = "hostaddr";
        val[n++] = addrs;
    }
    static const char *const defaults[][2] = {
        {"fallback_application_name", "moongate-spend"},
        {"client_encoding", "UTF8"},
        {"keepalives_idle", "30"},
        {"keepalives_interval", "10"},
        {"keepalives_count", "3"},
        {"gssencmode", "disable"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        bool set = false;
        for (int k = 0; k < n; k++) {
            set = set || strcmp(kw[k], defaults[i][0]) == 0;
        }
        if (!set) {
            kw[n] = defaults[i][0];
            val[n++] = defaults[i][1];
        }
    }
    kw[n] = NULL;
    val[n] = NULL;
    c->state = MG_SPG_CONNECTING;
    c->pg = PQconnectStartParams(kw, val, 0);
    if (c->pg == NULL) {
        mg_spg_down(c, "PQconnectStartParams() failed: out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        mg_spg_down(c, "%s", PQerrorMessage(c->pg));
        return;
    }
    mg_spg_poll_wait(c, PGRES_POLLING_WRITING);
}

static void
mg_spg_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    mg_spg_dns_tok_t *tok = arg;
    mg_spg_t *c = tok->c;
    free(tok);
    if (c == NULL) {
        if (res != NULL) {
            evutil_freeaddrinfo(res);
        }
        return;
    }
    c->dns_tok = NULL;
    c->dns_req = NULL;
    const char *host = mg_spg_opt(c, "host");
    if (result != 0 || res == NULL) {
        mg_spg_down(c, "cannot resolve database host \"%s\": %s", host ? host : "",
                    evutil_gai_strerror(result != 0 ? result : EVUTIL_EAI_NONAME));
        return;
    }
    mg_buf_t hosts = MG_BUF_INIT, addrs = MG_BUF_INIT;
    int k = 0;
    for (struct evutil_addrinfo *ai = res; ai != NULL && k < MG_SPG_MAX_ADDRS; ai = ai->ai_next) {
        char a[INET6_ADDRSTRLEN];
        const void *p = ai->ai_family == AF_INET
                            ? (const void *) &((struct sockaddr_in *) ai->ai_addr)->sin_addr
                        : ai->ai_family == AF_INET6
                            ? (const void *) &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr
                            : NULL;
        if (p == NULL || evutil_inet_ntop(ai->ai_family, p, a, sizeof(a)) == NULL) {
            continue;
        }
        mg_buf_printf(&hosts, "%s%s", k > 0 ? "," : "", host);
        mg_buf_printf(&addrs, "%s%s", k > 0 ? "," : "", a);
        k++;
    }
    evutil_freeaddrinfo(res);
    if (k == 0) {
        mg_spg_down(c, "cannot resolve database host \"%s\": no usable address", host);
    } else {
        mg_spg_connect(c, mg_buf_cstr(&hosts), mg_buf_cstr(&addrs));
    }
    mg_buf_free(&hosts);
    mg_buf_free(&addrs);
}

static void
mg_spg_connect_start(mg_spg_t *c)
{
    c->started = true;
    evtimer_del(c->timer);
    mg_spg_timer_add(c, MG_SPG_CONNECT_TIMEOUT_MS);
    const char *host = mg_spg_opt(c, "host");
    if (host == NULL) {
        host = getenv("PGHOST");
    }
    unsigned char buf[sizeof(struct in6_addr)];
    bool numeric = host == NULL || host[0] == '\0' || host[0] == '/' || strchr(host, ',') ||
                   mg_spg_opt(c, "hostaddr") != NULL || inet_pton(AF_INET, host, buf) == 1 ||
                   inet_pton(AF_INET6, host, buf) == 1;
    if (numeric) {
        mg_spg_connect(c, NULL, NULL);
        return;
    }
    if (c->dns == NULL) {
        c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (c->dns == NULL) {
            mg_spg_down(c, "cannot resolve database host \"%s\": evdns_base_new() failed", host);
            return;
        }
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    mg_spg_dns_tok_t *tok = mg_xcalloc(1, sizeof(*tok));
    tok->c = c;
    c->dns_tok = tok;
    c->state = MG_SPG_RESOLVING;
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(c->dns, host, NULL, &hints, mg_spg_dns_cb, tok);
    if (req != NULL) {
        c->dns_req = req;
    }
}

static void
mg_spg_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_spg_t *c = arg;
    switch (c->state) {
    case MG_SPG_DOWN:
        mg_spg_connect_start(c);
        break;
    case MG_SPG_RESOLVING:
    case MG_SPG_CONNECTING:
        mg_spg_down(c, "connecting to %s timed out after %dms", c->url, MG_SPG_CONNECT_TIMEOUT_MS);
        break;
    case MG_SPG_SETUP:
        mg_spg_down(c, "setup on %s timed out after %dms", c->url, MG_SPG_SETUP_TIMEOUT_MS);
        break;
    case MG_SPG_READY:
        if (c->busy) {
            mg_spg_down(c, "query timed out after %dms; connection closed", c->query_timeout_ms);
        }
        break;
    }
}

/* ---- public ---- */

mg_spg_t *
mg_spg_create(struct event_base *base, const char *url, const char *role, const char *setup_sql,
              mg_spg_state_cb on_state, void *ud, mg_err_t *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        mg_err_set(err, MG_ERR_CONFIG, "DATABASE_URL cannot be parsed%s",
                   perr != NULL ? " (libpq refused it)" : "");
        PQfreemem(perr);
        return NULL;
    }
    mg_spg_t *c = mg_xcalloc(1, sizeof(*c));
    c->base = base;
    c->role = mg_xstrdup(role);
    c->setup_sql = setup_sql != NULL ? mg_xstrdup(setup_sql) : NULL;
    c->opts = opts;
    c->on_state = on_state;
    c->ud = ud;
    c->backoff_ms = MG_SPG_BACKOFF_MIN_MS;
    c->timer = evtimer_new(base, mg_spg_timer_cb, c);
    mg_spg_redact(c);
    snprintf(c->err, sizeof(c->err), "not connected yet");
    return c;
}

void
mg_spg_start(mg_spg_t *c)
{
    if (!c->started) {
        mg_spg_connect_start(c);
    }
}

bool
mg_spg_ready(const mg_spg_t *c)
{
    return c != NULL && c->state == MG_SPG_READY;
}

bool
mg_spg_busy(const mg_spg_t *c)
{
    return c != NULL && c->busy;
}

static int
mg_spg_sent(mg_spg_t *c, int rc, int timeout_ms, mg_spg_result_cb cb, void *ud)
{
    if (rc != 1) {
        mg_spg_down(c, "sending a query failed: %s", PQerrorMessage(c->pg));
        return MG_AGAIN;
    }
    c->busy = true;
    c->cb = cb;
    c->cb_ud = ud;
    c->sqlstate[0] = '\0';
    c->query_timeout_ms = timeout_ms;
    mg_spg_timer_add(c, timeout_ms);
    if (mg_spg_flush(c) != MG_OK) {
        c->cb = NULL; /* the caller learns it from the return value, not twice */
        mg_spg_down(c, "sending a query failed: %s", PQerrorMessage(c->pg));
        return MG_AGAIN;
    }
    return MG_OK;
}

int
mg_spg_send(mg_spg_t *c, const char *sql, int timeout_ms, mg_spg_result_cb cb, void *ud)
{
    if (c->state != MG_SPG_READY) {
        return MG_AGAIN;
    }
    if (c->busy) {
        return MG_BUSY;
    }
    return mg_spg_sent(c, PQsendQuery(c->pg, sql), timeout_ms, cb, ud);
}

int
mg_spg_send_params(mg_spg_t *c, const char *sql, int n, const char *const *vals, int timeout_ms,
                   mg_spg_result_cb cb, void *ud)
{
    if (c->state != MG_SPG_READY) {
        return MG_AGAIN;
    }
    if (c->busy) {
        return MG_BUSY;
    }
    return mg_spg_sent(c, PQsendQueryParams(c->pg, sql, n, NULL, vals, NULL, NULL, 0), timeout_ms,
                       cb, ud);
}

char *
mg_spg_literal(mg_spg_t *c, const char *s, size_t n)
{
    if (c->pg == NULL) {
        return NULL;
    }
    char *q = PQescapeLiteral(c->pg, s, n);
    if (q == NULL) {
        return NULL;
    }
    char *r = mg_xstrdup(q);
    PQfreemem(q);
    return r;
}

PGTransactionStatusType
mg_spg_txn(const mg_spg_t *c)
{
    return c->pg != NULL && c->state == MG_SPG_READY ? PQtransactionStatus(c->pg)
                                                     : PQTRANS_UNKNOWN;
}

void
mg_spg_reset(mg_spg_t *c, const char *why)
{
    if (c->state != MG_SPG_DOWN) {
        mg_spg_down(c, "%s", why);
    }
}

const char *
mg_spg_error(const mg_spg_t *c)
{
    return c->err;
}

const char *
mg_spg_url(const mg_spg_t *c)
{
    return c->url;
}

int64_t
mg_spg_reconnects(const mg_spg_t *c)
{
    return c->reconnects;
}

void
mg_spg_destroy(mg_spg_t *c)
{
    if (c == NULL) {
        return;
    }
    c->cb = NULL;
    c->busy = false;
    mg_spg_close(c);
    event_free(c->timer);
    if (c->dns != NULL) {
        evdns_base_free(c->dns, 0);
    }
    PQconninfoFree(c->opts);
    free(c->setup_sql);
    free(c->role);
    free(c);
}
