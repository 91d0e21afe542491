/*
 * mg_upstream.h -- reference-counted upstream clients and their connection pools.
 *
 * An upstream is keyed by (provider, scheme, host, port, TLS verify, credential
 * hash).  Owns: its idle keep-alive connections.  Holders of references:
 * registry snapshots (one per deployment using it, dropped when the snapshot is
 * freed), in-flight exchanges (mg_client_t), and every open connection.
 *
 * Rotation: when the current snapshot stops using an upstream it becomes
 * draining: it leaves the lookup table (new snapshots get a fresh one), closes
 * its idle connections at once and closes each busy connection when its
 * response ends instead of pooling it.  It is freed at its last unref.  Idle
 * timeouts, pool limits and evictions only ever close idle connections.
 * Single-threaded: one per worker.
 */
#ifndef MG_UPSTREAM_H
#define MG_UPSTREAM_H

#include "../base/mg_err.h"
#include "../base/mg_map.h"
#include "../base/mg_types.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef struct mg_upool_s mg_upool_t;
typedef struct mg_upconn_s mg_upconn_t;

typedef struct {
    int connect_timeout_ms;
    int idle_timeout_ms;
    int max_idle;               /* idle connections kept per upstream */
} mg_upool_conf_t;

struct mg_upool_s {
    struct event_base *base;
    struct evdns_base *dns;     /* owned, created on first name lookup */
    mg_upool_conf_t conf;
    mg_map_t table;             /* key -> mg_upstream_t* (not draining); no ref held */
    mg_upstream_t *all;         /* every live upstream, draining ones included */
    uint64_t gen;               /* generation of the current snapshot */
    uint64_t created, freed;
    uint64_t conns_opened, conns_closed;
    uint64_t evictions;
};

#define MG_UPSTREAM_MAX_ADDRS 8

struct mg_upstream_s {
    int refs;
    mg_upool_t *pool;                   /* borrowed */
    char *key;                          /* owned */
    char *name;                         /* owned: "https://host:port" for logs/state */
    char *provider;                     /* owned */
    char *host;                         /* owned */
    int port;
    bool tls;
    bool verify;
    struct sockaddr_storage addrs[MG_UPSTREAM_MAX_ADDRS];
    socklen_t addrlens[MG_UPSTREAM_MAX_ADDRS];
    int naddrs;
    int next_addr;
    int64_t resolved_ms;                /* monotonic; 0 = never */
    mg_upconn_t *idle;                  /* idle connections, most recent first */
    int n_idle, n_busy, n_connecting;
    bool draining;
    uint64_t used_gen;                  /* last snapshot generation that uses it */
    uint64_t requests;
    mg_upstream_t *prev, *next;         /* pool->all */
};

mg_upool_t *mg_upool_create(struct event_base *base, const mg_upool_conf_t *conf);
/* Closes idle connections; busy ones belong to their exchanges. */
void mg_upool_destroy(mg_upool_t *p);
void mg_upool_set_conf(mg_upool_t *p, const mg_upool_conf_t *conf);

/*
 * Returns a reference to the upstream for base_url (http[s]://host[:port][/path])
 * and cred_hash, creating it if needed, and marks it used by generation gen.
 */
mg_upstream_t *mg_upstream_get(mg_upool_t *p, const char *provider, const char *base_url,
                               bool verify, const char *cred_hash, uint64_t gen, mg_err_t *err);
mg_upstream_t *mg_upstream_ref(mg_upstream_t *u);
void mg_upstream_unref(mg_upstream_t *u);

/* After the snapshot of generation gen became current: drain what it does not use. */
void mg_upool_sweep(mg_upool_t *p, uint64_t gen);
/* Forced eviction: closes every idle connection (never a busy one). */
void mg_upool_evict_idle(mg_upool_t *p);
/* Per-upstream counters as JSON for /moongate/state. */
json_t *mg_upool_state(const mg_upool_t *p);

#endif
