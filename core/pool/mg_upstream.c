/*
 * mg_upstream.c -- upstream table, address resolution, pooled connections.
 */
#include "mg_pool_int.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_DNS_TTL_MS 60000

mg_upool_t *
mg_upool_create(struct event_base *base, const mg_upool_conf_t *conf)
{
    mg_upool_t *p = mg_xcalloc(1, sizeof(*p));
    p->base = base;
    mg_map_init(&p->table);
    mg_upool_set_conf(p, conf);
    return p;
}

void
mg_upool_set_conf(mg_upool_t *p, const mg_upool_conf_t *conf)
{
    p->conf = *conf;
    if (p->conf.connect_timeout_ms <= 0) {
        p->conf.connect_timeout_ms = 10000;
    }
    if (p->conf.idle_timeout_ms <= 0) {
        p->conf.idle_timeout_ms = 60000;
    }
    if (p->conf.max_idle < 0) {
        p->conf.max_idle = 0;
    }
}

static void
mg_upstream_close_idle(mg_upstream_t *u)
{
    while (u->idle != NULL) {
        mg_upconn_close(u->idle, false);
    }
}

void
mg_upool_destroy(mg_upool_t *p)
{
    /* idle connections hold references; closing them frees unreferenced upstreams */
    mg_upstream_t *u = p->all;
    while (u != NULL) {
        mg_upstream_t *next = u->next;
        mg_upstream_ref(u);
        mg_upstream_close_idle(u);
        next = u->next;
        mg_upstream_unref(u);
        u = next;
    }
    mg_map_free(&p->table);
    if (p->dns != NULL) {
        evdns_base_free(p->dns, 0);
    }
    free(p);
}

/* Parses http[s]://host[:port][/...]; host may be [v6]. */
static int
mg_upstream_parse_url(const char *url, bool *tls, char **host, int *port, mg_err_t *err)
{
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        *tls = true;
        p = url + 8;
        *port = 443;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        *tls = false;
        p = url + 7;
        *port = 80;
    } else {
        return mg_err_set(err, MG_ERR_CONFIG, "api_base \"%s\" must start with http:// or https://",
                          url);
    }
    const char *end = p + strcspn(p, "/?#");
    const char *hs = p, *he;
    const char *portp = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t) (end - p));
        if (rb == NULL) {
            return mg_err_set(err, MG_ERR_CONFIG, "api_base \"%s\": unterminated IPv6 address", url);
        }
        hs = p + 1;
        he = rb;
        if (rb + 1 < end && rb[1] == ':') {
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t) (end - p));
        he = colon ? colon : end;
        if (colon) {
            portp = colon + 1;
        }
    }
    if (he == hs) {
        return mg_err_set(err, MG_ERR_CONFIG, "api_base \"%s\" has no host", url);
    }
    if (portp != NULL) {
        char *e;
        long v = strtol(portp, &e, 10);
        if (e != end || v <= 0 || v > 65535) {
            return mg_err_set(err, MG_ERR_CONFIG, "api_base \"%s\" has an invalid port", url);
        }
        *port = (int) v;
    }
    *host = mg_xstrndup(hs, (size_t) (he - hs));
    return MG_OK;
}

mg_upstream_t *
mg_upstream_get(mg_upool_t *p, const char *provider, const char *base_url, bool verify,
                const char *cred_hash, uint64_t gen, mg_err_t *err)
{
    bool tls = false;   /* initialised for -Werror=maybe-uninitialized at -O2 */
    char *host = NULL;
    int port = 0;
    if (mg_upstream_parse_url(base_url, &tls, &host, &port, err) != MG_OK) {
        return NULL;
    }
    mg_buf_t key = MG_BUF_INIT;
    mg_buf_printf(&key, "%s|%s|%s|%d|%d|%s", provider, tls ? "https" : "http", host, port,
                  verify ? 1 : 0, cred_hash);
    mg_upstream_t *u = mg_map_get(&p->table, mg_buf_head(&key), mg_buf_len(&key));
    if (u != NULL) {
        free(host);
        mg_buf_free(&key);
        u->used_gen = gen;
        return mg_upstream_ref(u);
    }
    u = mg_xcalloc(1, sizeof(*u));
    u->refs = 1;
    u->pool = p;
    u->key = mg_xstrdup(mg_buf_cstr(&key));
    mg_buf_free(&key);
    u->provider = mg_xstrdup(provider);
    u->host = host;
    u->port = port;
    u->tls = tls;
    u->verify = verify;
    u->used_gen = gen;
    char name[600];
    snprintf(name, sizeof(name), "%s://%s%s%s:%d", tls ? "https" : "http",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
    u->name = mg_xstrdup(name);
    mg_map_put(&p->table, u->key, strlen(u->key), u);
    u->next = p->all;
    if (p->all != NULL) {
        p->all->prev = u;
    }
    p->all = u;
    p->created++;
    return u;
}

mg_upstream_t *
mg_upstream_ref(mg_upstream_t *u)
{
    u->refs++;
    return u;
}

static void
mg_upstream_start_draining(mg_upstream_t *u)
{
    if (u->draining) {
        return;
    }
    u->draining = true;
    mg_upool_t *p = u->pool;
    if (mg_map_get(&p->table, u->key, strlen(u->key)) == u) {
        mg_map_del(&p->table, u->key, strlen(u->key));
    }
    mg_upstream_ref(u);
    mg_upstream_close_idle(u);
    mg_upstream_unref(u);
}

void
mg_upstream_unref(mg_upstream_t *u)
{
    if (u == NULL) {
        return;
    }
    if (u->refs <= 0) {
        mg_log_write(MG_LOG_ERROR, NULL, "mg_upstream_unref() underflow on %s, aborting", u->name);
        abort();
    }
    if (--u->refs > 0) {
        return;
    }
    mg_upool_t *p = u->pool;
    if (mg_map_get(&p->table, u->key, strlen(u->key)) == u) {
        mg_map_del(&p->table, u->key, strlen(u->key));
    }
    if (u->prev != NULL) {
        u->prev->next = u->next;
    } else {
        p->all = u->next;
    }
    if (u->next != NULL) {
        u->next->prev = u->prev;
    }
    p->freed++;
    free(u->key);
    free(u->name);
    free(u->provider);
    free(u->host);
    free(u);
}

void
mg_upool_sweep(mg_upool_t *p, uint64_t gen)
{
    p->gen = gen;
    mg_upstream_t *u = p->all;
    while (u != NULL) {
        mg_upstream_t *next = u->next;
        if (!u->draining && u->used_gen < gen) {
            mg_upstream_ref(u);
            mg_upstream_start_draining(u);
            next = u->next;
            mg_upstream_unref(u);
        }
        u = next;
    }
}

void
mg_upool_evict_idle(mg_upool_t *p)
{
    p->evictions++;
    mg_upstream_t *u = p->all;
    while (u != NULL) {
        mg_upstream_ref(u);
        mg_upstream_close_idle(u);
        mg_upstream_t *next = u->next;
        mg_upstream_unref(u);
        u = next;
    }
}

json_t *
mg_upool_state(const mg_upool_t *p)
{
    json_t *list = json_array();
    int live = 0, idle = 0, busy = 0, draining = 0;
    for (mg_upstream_t *u = p->all; u != NULL; u = u->next) {
        json_array_append_new(list, json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:b,s:I}",
                                              "upstream", u->name, "provider", u->provider,
                                              "refs", u->refs, "connections",
                                              u->n_idle + u->n_busy + u->n_connecting, "idle",
                                              u->n_idle, "busy", u->n_busy, "connecting",
                                              u->n_connecting, "draining", u->draining, "requests",
                                              (json_int_t) u->requests));
        live++;
        idle += u->n_idle;
        busy += u->n_busy;
        draining += u->draining;
    }
    return json_pack("{s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:o}", "clients_live", live,
                     "clients_draining", draining, "connections_idle", idle, "connections_busy",
                     busy, "clients_created", (json_int_t) p->created, "clients_freed",
                     (json_int_t) p->freed, "connections_opened", (json_int_t) p->conns_opened,
                     "connections_closed", (json_int_t) p->conns_closed, "evictions",
                     (json_int_t) p->evictions, "clients", list);
}

/* ---- connections ---- */

static int mg_upconn_on_event(mg_conn_t *c);

static void
mg_upconn_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_upconn_t *pc = arg;
    pc->timer_on = false;
    if (pc->state == MG_UPCONN_IDLE) {
        mg_upconn_close(pc, false);
    }
}

static void
mg_upconn_unlink_idle(mg_upconn_t *pc)
{
    mg_upstream_t *u = pc->u;
    if (pc->prev_idle != NULL) {
        pc->prev_idle->next_idle = pc->next_idle;
    } else if (u->idle == pc) {
        u->idle = pc->next_idle;
    }
    if (pc->next_idle != NULL) {
        pc->next_idle->prev_idle = pc->prev_idle;
    }
    pc->next_idle = pc->prev_idle = NULL;
}

void
mg_upconn_close(mg_upconn_t *pc, bool abort)
{
    mg_upstream_t *u = pc->u;
    switch (pc->state) {
    case MG_UPCONN_IDLE:
        mg_upconn_unlink_idle(pc);
        u->n_idle--;
        break;
    case MG_UPCONN_BUSY:
        u->n_busy--;
        break;
    default:
        u->n_connecting--;
        break;
    }
    if (pc->timer_on) {
        evtimer_del(&pc->timer);
    }
    if (pc->dns_req != NULL) {
        /* the lookup would call back into pc after it is freed */
        struct evdns_getaddrinfo_request *q = pc->dns_req;
        pc->dns_req = NULL;
        evdns_getaddrinfo_cancel(q);
    }
    if (abort) {
        mg_conn_abort(&pc->conn);
    } else {
        mg_conn_close(&pc->conn);
    }
    u->pool->conns_closed++;
    free(pc);
    mg_upstream_unref(u);
}

static int
mg_upstream_resolve_now(mg_upstream_t *u, mg_err_t *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof(port), "%d", u->port);
    const char *host = u->host;
    if (strcasecmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc == EAI_NONAME) {
        return MG_DECLINED; /* a name: needs DNS */
    }
    if (rc != 0) {
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "getaddrinfo(\"%s\") failed: %s", u->host,
                          gai_strerror(rc));
    }
    u->naddrs = 0;
    for (struct addrinfo *ai = res; ai != NULL && u->naddrs < MG_UPSTREAM_MAX_ADDRS; ai = ai->ai_next) {
        memcpy(&u->addrs[u->naddrs], ai->ai_addr, ai->ai_addrlen);
        u->addrlens[u->naddrs] = ai->ai_addrlen;
        u->naddrs++;
    }
    freeaddrinfo(res);
    u->resolved_ms = INT64_MAX; /* literal: never expires */
    return MG_OK;
}

typedef struct {
    mg_upconn_t *pc;
} mg_dns_req_t;

static int mg_upconn_connect(mg_upconn_t *pc, mg_err_t *err);

static void
mg_upconn_dns_done(int result, struct evutil_addrinfo *res, void *arg)
{
    mg_upconn_t *pc = arg;
    if (result == EVUTIL_EAI_CANCEL) {
        /* mg_upconn_close cancelled the lookup and frees pc right after */
        if (res != NULL) {
            evutil_freeaddrinfo(res);
        }
        return;
    }
    pc->dns_req = NULL;
    mg_upstream_t *u = pc->u;
    mg_err_t err;
    mg_err_clear(&err);
    if (result != 0 || res == NULL) {
        mg_err_set(&err, MG_ERR_UPSTREAM_CONNECT, "DNS lookup of \"%s\" failed: %s", u->host,
                   evutil_gai_strerror(result));
    } else {
        u->naddrs = 0;
        for (struct evutil_addrinfo *ai = res; ai != NULL && u->naddrs < MG_UPSTREAM_MAX_ADDRS;
             ai = ai->ai_next) {
            memcpy(&u->addrs[u->naddrs], ai->ai_addr, ai->ai_addrlen);
            u->addrlens[u->naddrs] = (socklen_t) ai->ai_addrlen;
            u->naddrs++;
        }
        u->resolved_ms = mg_time_mono_ms();
    }
    if (res != NULL) {
        evutil_freeaddrinfo(res);
    }
    if (pc->in_open) {
        /* answered synchronously: mg_upconn_open carries on */
        pc->dns_sync_done = true;
        pc->dns_err = err;
        return;
    }
    mg_client_t *client = pc->client;
    if (err.cls == MG_ERR_NONE && mg_upconn_connect(pc, &err) == MG_OK) {
        return;
    }
    /* pc is still CONNECTING with fd -1: free it, then tell the client */
    mg_upconn_close(pc, false);
    if (client != NULL) {
        mg_client_conn_failed(client, &err);
    }
}

static void
mg_upconn_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_upconn_t *pc = arg;
    pc->timer_on = false;
    mg_err_t err;
    mg_err_set(&err, MG_ERR_UPSTREAM_TIMEOUT, "connect to %s timed out after %dms", pc->u->name,
               pc->u->pool->conf.connect_timeout_ms);
    mg_client_t *client = pc->client;
    mg_upconn_close(pc, true);
    if (client != NULL) {
        mg_client_conn_failed(client, &err);
    }
}

static int
mg_upconn_connect(mg_upconn_t *pc, mg_err_t *err)
{
    mg_upstream_t *u = pc->u;
    if (u->naddrs == 0) {
        return mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "no address for \"%s\"", u->host);
    }
    int idx = u->next_addr % u->naddrs;
    int rc = mg_conn_connect(u->pool->base, (struct sockaddr *) &u->addrs[idx], u->addrlens[idx],
                             &pc->conn, pc, err);
    if (rc == MG_ERROR) {
        u->next_addr++;
        mg_err_prefix(err, "%s: ", u->name);
        return MG_ERROR;
    }
    pc->conn.on_read = mg_upconn_on_event;
    pc->conn.on_write = mg_upconn_on_event;
    if (u->tls) {
        SSL_CTX *ctx = mg_tls_client_ctx(err);
        if (ctx == NULL || mg_conn_tls_client(&pc->conn, ctx, u->host, u->verify, err) != MG_OK) {
            return MG_ERROR;
        }
    }
    return MG_OK;
}

mg_upconn_t *
mg_upconn_open(mg_upstream_t *u, mg_client_t *client, mg_err_t *err)
{
    mg_upconn_t *pc = mg_xcalloc(1, sizeof(*pc));
    pc->conn.fd = -1;
    pc->u = mg_upstream_ref(u);
    pc->state = MG_UPCONN_CONNECTING;
    pc->client = client;
    u->n_connecting++;
    u->pool->conns_opened++;
    evtimer_assign(&pc->timer, u->pool->base, mg_upconn_connect_timeout, pc);
    struct timeval tv = {u->pool->conf.connect_timeout_ms / 1000,
                         (u->pool->conf.connect_timeout_ms % 1000) * 1000};
    evtimer_add(&pc->timer, &tv);
    pc->timer_on = true;

    int64_t now = mg_time_mono_ms();
    if (u->naddrs == 0 || (u->resolved_ms != INT64_MAX && now - u->resolved_ms > MG_DNS_TTL_MS)) {
        int r = mg_upstream_resolve_now(u, err);
        if (r == MG_ERROR) {
            mg_upconn_close(pc, false);
            return NULL;
        }
        if (r == MG_DECLINED) {
            if (u->pool->dns == NULL) {
                u->pool->dns = evdns_base_new(u->pool->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
                if (u->pool->dns == NULL) {
                    mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "evdns_base_new() failed");
                    mg_upconn_close(pc, false);
                    return NULL;
                }
            }
            struct evutil_addrinfo hints;
            memset(&hints, 0, sizeof(hints));
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            char port[16];
            snprintf(port, sizeof(port), "%d", u->port);
            pc->in_open = true;
            struct evdns_getaddrinfo_request *q =
                evdns_getaddrinfo(u->pool->dns, u->host, port, &hints, mg_upconn_dns_done, pc);
            pc->in_open = false;
            if (!pc->dns_sync_done) {
                pc->dns_req = q;
                return pc; /* the callback connects later */
            }
            if (pc->dns_err.cls != MG_ERR_NONE) {
                *err = pc->dns_err;
                mg_upconn_close(pc, false);
                return NULL;
            }
        }
    }
    if (mg_upconn_connect(pc, err) != MG_OK) {
        mg_upconn_close(pc, false);
        return NULL;
    }
    return pc;
}

/* Connection events before it is handed to a client, and while idle. */
static int
mg_upconn_on_event(mg_conn_t *c)
{
    mg_upconn_t *pc = c->data;
    mg_upstream_t *u = pc->u;
    mg_err_t err;
    mg_err_clear(&err);
    if (pc->state == MG_UPCONN_CONNECTING) {
        if (!c->write_ready) {
            return MG_OK;
        }
        if (mg_conn_connect_finish(c, &err) != MG_OK) {
            mg_err_prefix(&err, "%s: ", u->name);
            u->next_addr++;
            mg_client_t *client = pc->client;
            mg_upconn_close(pc, false);
            if (client != NULL) {
                mg_client_conn_failed(client, &err);
            }
            return MG_DECLINED;
        }
        pc->state = u->tls ? MG_UPCONN_HANDSHAKE : MG_UPCONN_BUSY;
    }
    if (pc->state == MG_UPCONN_HANDSHAKE) {
        int r = mg_conn_tls_handshake(c, &err);
        if (r == MG_AGAIN) {
            return MG_OK;
        }
        if (r != MG_OK) {
            mg_err_prefix(&err, "%s: ", u->name);
            mg_client_t *client = pc->client;
            mg_upconn_close(pc, false);
            if (client != NULL) {
                mg_client_conn_failed(client, &err);
            }
            return MG_DECLINED;
        }
        pc->state = MG_UPCONN_BUSY;
    }
    if (pc->state == MG_UPCONN_BUSY && pc->client != NULL && pc->conn.on_read == mg_upconn_on_event) {
        /* just became usable: count it busy and give it to the client */
        u->n_connecting--;
        u->n_busy++;
        if (pc->timer_on) {
            evtimer_del(&pc->timer);
            pc->timer_on = false;
        }
        mg_client_conn_ready(pc->client);
        return MG_DECLINED; /* the client now owns the handlers; do not run the write half */
    }
    if (pc->state == MG_UPCONN_IDLE) {
        /* an idle connection that becomes readable was closed by the peer (or sent junk) */
        char tmp[256];
        ssize_t n = mg_conn_recv(c, tmp, sizeof(tmp));
        if (n == MG_AGAIN) {
            return MG_OK;
        }
        mg_upconn_close(pc, false);
        return MG_DECLINED;
    }
    return MG_OK;
}

mg_upconn_t *
mg_upconn_take_idle(mg_upstream_t *u, mg_client_t *client)
{
    mg_upconn_t *pc = u->idle;
    if (pc == NULL) {
        return NULL;
    }
    mg_upconn_unlink_idle(pc);
    u->n_idle--;
    u->n_busy++;
    if (pc->timer_on) {
        evtimer_del(&pc->timer);
        pc->timer_on = false;
    }
    pc->state = MG_UPCONN_BUSY;
    pc->client = client;
    return pc;
}

void
mg_upconn_release(mg_upconn_t *pc, bool reusable)
{
    mg_upstream_t *u = pc->u;
    pc->client = NULL;
    pc->nreq++;
    if (!reusable || u->draining || u->n_idle >= u->pool->conf.max_idle || pc->conn.fd < 0) {
        mg_upconn_close(pc, false);
        return;
    }
    u->n_busy--;
    u->n_idle++;
    pc->state = MG_UPCONN_IDLE;
    pc->conn.on_read = mg_upconn_on_event;
    pc->conn.on_write = NULL;
    pc->next_idle = u->idle;
    pc->prev_idle = NULL;
    if (u->idle != NULL) {
        u->idle->prev_idle = pc;
    }
    u->idle = pc;
    evtimer_assign(&pc->timer, u->pool->base, mg_upconn_idle_timeout, pc);
    struct timeval tv = {u->pool->conf.idle_timeout_ms / 1000,
                         (u->pool->conf.idle_timeout_ms % 1000) * 1000};
    evtimer_add(&pc->timer, &tv);
    pc->timer_on = true;
    if (pc->conn.read_ready) {
        /* bytes or EOF already pending: check now */
        (void) mg_upconn_on_event(&pc->conn);
    }
}
