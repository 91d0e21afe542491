/*
 * mg_hint_redis.c -- registry version hints over Redis pub/sub (see mg_hint_redis.h).
 *
 * Owns: two hiredis async contexts (subscriber, publisher), their timers, and
 * copies of every configuration string (the password is wiped on destroy).
 * Does not own: the event base, or anything the callbacks do with a hint.
 *
 * Lifetimes (hiredis 0.14 async):
 *  - hiredis frees a context itself after a failed connect (onConnect with
 *    REDIS_ERR) and after onDisconnect; we only drop our pointer there.
 *  - We free a context ourselves only from our own timers or from destroy():
 *    "abandoning" it first clears ac->data and the connect/disconnect hooks, so
 *    the reply callbacks hiredis runs with a NULL reply while freeing find no
 *    owner and return.  Inside a reply callback redisAsyncFree() is deferred by
 *    hiredis (REDIS_IN_CALLBACK); inside onConnect it is not, so a failure found
 *    there (or in a reply callback) goes through the zero-timeout kill event.
 *  - User callbacks (on_hint, on_reconnect) run only inside reply callbacks and
 *    are the last thing those touch, so destroy() may be called from them.
 * Single-threaded: everything runs on the worker's event loop.
 */
#include "mg_hint_redis.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <hiredis/adapters/libevent.h>   /* header-only; compiles clean under our flags */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_HINT_REDIS_DEFAULT_CHANNEL "moongate:registry"
#define MG_HINT_REDIS_BACKOFF_MIN_MS 100
#define MG_HINT_REDIS_BACKOFF_MAX_MS 2000
#define MG_HINT_REDIS_PAYLOAD_MAX 4096
#define MG_HINT_REDIS_INFLIGHT_MAX 256   /* PUBLISH without reply; beyond this, drop */
#define MG_HINT_REDIS_LOG_EVERY 100      /* bad messages / repeated failures per warn line */

/* Connect + AUTH + SUBSCRIBE must finish within this; not static const so tests can shorten it. */
static int mg_hint_redis_connect_timeout_ms = 3000;

typedef enum {
    MG_HINT_CONN_IDLE = 0,      /* no context; a retry may be scheduled */
    MG_HINT_CONN_CONNECTING,    /* TCP connect in progress */
    MG_HINT_CONN_HANDSHAKE,     /* connected, AUTH / SUBSCRIBE sent */
    MG_HINT_CONN_READY,         /* subscribed (subscriber) or authenticated (publisher) */
    MG_HINT_CONN_CLOSING,       /* failed inside a hiredis callback; kill event pending */
} mg_hint_conn_state_t;

typedef struct {
    mg_hint_redis_t *h;             /* borrowed: owner */
    const char *role;               /* static: "subscriber" / "publisher" */
    bool is_sub;
    redisAsyncContext *ac;          /* owned while set; hiredis frees it on its own disconnect */
    mg_hint_conn_state_t state;
    int backoff_ms;                 /* next retry delay */
    unsigned fails;                 /* consecutive failures, for log throttling */
    unsigned inflight;              /* publisher: PUBLISH commands awaiting a reply */
    char last_logged[384];          /* last failure text logged at warn */
    struct event *retry_ev;         /* owned */
    struct event *timeout_ev;       /* owned: connect/handshake deadline */
    struct event *kill_ev;          /* owned: deferred teardown, zero timeout */
} mg_hint_redis_conn_t;

struct mg_hint_redis_s {
    struct event_base *base;        /* borrowed: the worker's loop */
    char *host;                     /* owned */
    int port;
    char *username;                 /* owned, may be NULL */
    char *password;                 /* owned, may be NULL; secret, wiped on destroy */
    char *channel;                  /* owned */
    char *instance_id;              /* owned */
    char *instance_json;            /* owned: instance_id as a JSON string literal */
    void (*on_hint)(void *ud, int64_t version, const char *from_instance);
    void (*on_cooldown)(void *ud, const char *id, int64_t ms, int status, const char *from);
    void (*on_reconnect)(void *ud);
    void *ud;

    mg_hint_redis_conn_t sub;
    mg_hint_redis_conn_t pub;

    uint64_t reconnects;            /* connection attempts after a failure or disconnect */
    uint64_t subscribes;            /* subscribe confirmations = on_reconnect calls */
    uint64_t received;              /* well-formed hints delivered */
    uint64_t published;             /* PUBLISH acknowledged by the server */
    uint64_t publish_dropped;
    uint64_t bad_messages;
    char last_error[512];           /* "" = none; never contains the password */
};

static void mg_hint_redis_conn_start(mg_hint_redis_conn_t *c);

/* ---- errors and logging ---- */

/*
 * Masks every occurrence of the password in s, then replaces control and non-ASCII
 * bytes (status JSON must stay valid UTF-8).  Masking comes first so a non-ASCII
 * password is still found.  Defence in depth: servers do not echo the password.
 */
static void
mg_hint_redis_scrub(const mg_hint_redis_t *h, char *s, size_t cap)
{
    if (h->password != NULL && h->password[0] != '\0') {
        size_t plen = strlen(h->password);
        char *from = s;
        char *p;
        while ((p = strstr(from, h->password)) != NULL) {
            size_t tail = strlen(p + plen);
            if ((size_t) (p - s) + 3 + tail + 1 > cap) {
                *p = '\0';     /* no room to mask: cut the text before the secret */
                break;
            }
            memmove(p + 3, p + plen, tail + 1);
            memcpy(p, "***", 3);
            from = p + 3;
        }
    }
    for (char *q = s; *q != '\0'; q++) {
        if ((unsigned char) *q >= 0x80 || (unsigned char) *q < 0x20) {
            *q = '?';
        }
    }
}

/* Records a failure of c in last_error and logs it (warn on a new streak or text, else debug). */
static void
mg_hint_redis_conn_error(mg_hint_redis_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mg_hint_redis_conn_error(mg_hint_redis_conn_t *c, const char *fmt, ...)
{
    mg_hint_redis_t *h = c->h;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(h->last_error, sizeof(h->last_error), "%s %s:%d: %s", c->role, h->host, h->port, msg);
    mg_hint_redis_scrub(h, h->last_error, sizeof(h->last_error));

    bool loud = c->fails == 0 || c->fails % MG_HINT_REDIS_LOG_EVERY == 0
                || strcmp(c->last_logged, msg) != 0;
    if (loud) {
        snprintf(c->last_logged, sizeof(c->last_logged), "%s", msg);
        mg_log(MG_LOG_WARN, NULL, "redis hints: %s (failure %u in a row)", h->last_error,
               c->fails + 1);
    } else {
        mg_log(MG_LOG_DEBUG, NULL, "redis hints: %s (failure %u in a row)", h->last_error,
               c->fails + 1);
    }
}

/* ---- connection lifecycle ---- */

/* Schedules the next connect attempt after the current backoff, then doubles it. */
static void
mg_hint_redis_conn_retry(mg_hint_redis_conn_t *c)
{
    c->state = MG_HINT_CONN_IDLE;
    c->fails++;
    if (evtimer_pending(c->retry_ev, NULL)) {
        return;
    }
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry_ev, &tv);
    c->backoff_ms *= 2;
    if (c->backoff_ms > MG_HINT_REDIS_BACKOFF_MAX_MS) {
        c->backoff_ms = MG_HINT_REDIS_BACKOFF_MAX_MS;
    }
}

/*
 * Detaches and frees c's context.  Never call this from inside onConnect of the
 * same context (use the kill event); from a reply callback hiredis defers the free.
 */
static void
mg_hint_redis_conn_abandon(mg_hint_redis_conn_t *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    evtimer_del(c->timeout_ev);
    if (c->inflight > 0) {
        c->h->publish_dropped += c->inflight;   /* their callbacks will find no owner */
        c->inflight = 0;
    }
    if (ac == NULL) {
        return;
    }
    ac->data = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    redisAsyncFree(ac);
}

/* Failure found inside a hiredis callback: tear down on the next loop pass, then retry. */
static void
mg_hint_redis_conn_fail_later(mg_hint_redis_conn_t *c)
{
    c->state = MG_HINT_CONN_CLOSING;
    event_active(c->kill_ev, EV_TIMEOUT, 0);
}

static void
mg_hint_redis_conn_ready(mg_hint_redis_conn_t *c)
{
    c->state = MG_HINT_CONN_READY;
    c->backoff_ms = MG_HINT_REDIS_BACKOFF_MIN_MS;
    evtimer_del(c->timeout_ev);
    if (c->fails > 0) {
        mg_log(MG_LOG_NOTICE, NULL, "redis hints: %s %s:%d ready after %u failures", c->role,
               c->h->host, c->h->port, c->fails);
    }
    c->fails = 0;
    c->last_logged[0] = '\0';
}

static void
mg_hint_redis_kill_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_hint_redis_conn_t *c = arg;
    mg_hint_redis_conn_abandon(c);
    mg_hint_redis_conn_retry(c);
}

static void
mg_hint_redis_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_hint_redis_conn_t *c = arg;
    c->h->reconnects++;
    mg_hint_redis_conn_start(c);
}

static void
mg_hint_redis_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_hint_redis_conn_t *c = arg;
    if (c->ac == NULL || c->state == MG_HINT_CONN_READY || c->state == MG_HINT_CONN_CLOSING) {
        return;
    }
    mg_hint_redis_conn_error(c, "%s timed out after %dms",
                             c->state == MG_HINT_CONN_CONNECTING ? "connect" : "handshake",
                             mg_hint_redis_connect_timeout_ms);
    /* A timer is outside every hiredis callback: freeing now is safe. */
    mg_hint_redis_conn_abandon(c);
    mg_hint_redis_conn_retry(c);
}

/* ---- subscriber replies ---- */

/* Parses {"version":V,"instance":"ID"}; returns the parsed object or NULL with a reason. */
static json_t *
mg_hint_redis_parse(const char *p, size_t len, int64_t *version, const char **instance,
                    const char **why)
{
    if (len > MG_HINT_REDIS_PAYLOAD_MAX) {
        *why = "payload too large";
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(p, len, 0, &jerr);
    if (j == NULL) {
        *why = "not JSON";
        return NULL;
    }
    json_t *v = json_object_get(j, "version");
    json_t *i = json_object_get(j, "instance");
    json_t *cd = json_object_get(j, "cooldown");
    if (json_is_object(cd) && json_is_string(i) &&
        json_is_string(json_object_get(cd, "id")) && json_is_integer(json_object_get(cd, "ms"))) {
        *version = -1; /* a cooldown, not a version hint */
        *instance = json_string_value(i);
        return j;
    }
    if (!json_is_object(j)) {
        *why = "not an object";
    } else if (!json_is_integer(v) || json_integer_value(v) < 0) {
        *why = "\"version\" is not a non-negative integer";
    } else if (!json_is_string(i)) {
        *why = "\"instance\" is not a string";
    } else {
        *version = json_integer_value(v);
        *instance = json_string_value(i);
        return j;
    }
    json_decref(j);
    return NULL;
}

static void
mg_hint_redis_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    mg_hint_redis_conn_t *c = ac->data;
    redisReply *r = reply;
    if (c == NULL || r == NULL) {
        return;     /* abandoned, or being freed: onDisconnect (if any) handles it */
    }
    mg_hint_redis_t *h = c->h;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3
        || r->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    const char *kind = r->element[0]->str;

    if (strcasecmp(kind, "subscribe") == 0) {
        mg_hint_redis_conn_ready(c);
        h->subscribes++;
        mg_log(MG_LOG_INFO, NULL,
               "redis hints: subscribed to \"%s\" on %s:%d (subscription %" PRIu64 ")",
               h->channel, h->host, h->port, h->subscribes);
        if (h->on_reconnect != NULL) {
            h->on_reconnect(h->ud);     /* last use of h: the callback may destroy it */
        }
        return;
    }
    if (strcasecmp(kind, "message") != 0) {
        return;
    }

    redisReply *payload = r->element[2];
    int64_t version = 0;
    const char *instance = NULL;
    const char *why = "payload is not a string";
    json_t *j = NULL;
    if (payload->type == REDIS_REPLY_STRING) {
        j = mg_hint_redis_parse(payload->str, payload->len, &version, &instance, &why);
    }
    if (j == NULL) {
        h->bad_messages++;
        if (h->bad_messages == 1 || h->bad_messages % MG_HINT_REDIS_LOG_EVERY == 0) {
            mg_log(MG_LOG_WARN, NULL,
                   "redis hints: ignoring malformed message on \"%s\" (%s, %zu bytes); "
                   "%" PRIu64 " so far", h->channel, why,
                   payload->type == REDIS_REPLY_STRING ? payload->len : (size_t) 0,
                   h->bad_messages);
        }
        return;
    }
    h->received++;
    if (version < 0) {
        json_t *cd = json_object_get(j, "cooldown");
        if (h->on_cooldown != NULL) {
            h->on_cooldown(h->ud, json_string_value(json_object_get(cd, "id")),
                           json_integer_value(json_object_get(cd, "ms")),
                           (int) json_integer_value(json_object_get(cd, "status")), instance);
        }
        json_decref(j);
        return;
    }
    if (h->on_hint != NULL) {
        h->on_hint(h->ud, version, instance);   /* last use of h: the callback may destroy it */
    }
    json_decref(j);
}

/* ---- publisher replies ---- */

static void
mg_hint_redis_pub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    mg_hint_redis_conn_t *c = ac->data;
    redisReply *r = reply;
    if (c == NULL) {
        return;     /* abandoned: counted as dropped there */
    }
    if (c->inflight > 0) {
        c->inflight--;
    }
    if (r == NULL) {
        c->h->publish_dropped++;
    } else if (r->type == REDIS_REPLY_ERROR) {
        c->h->publish_dropped++;
        mg_hint_redis_conn_error(c, "PUBLISH failed: %s", r->str);
    } else {
        c->h->published++;
    }
}

/* ---- handshake ---- */

static int
mg_hint_redis_send_subscribe(mg_hint_redis_conn_t *c)
{
    const char *argv[2] = {"SUBSCRIBE", c->h->channel};
    size_t argvlen[2] = {9, strlen(c->h->channel)};
    return redisAsyncCommandArgv(c->ac, mg_hint_redis_sub_reply, NULL, 2, argv, argvlen);
}

static void
mg_hint_redis_auth_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    mg_hint_redis_conn_t *c = ac->data;
    redisReply *r = reply;
    if (c == NULL || r == NULL || c->state != MG_HINT_CONN_HANDSHAKE) {
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        mg_hint_redis_conn_error(c, "AUTH failed: %s", r->str);
        mg_hint_redis_conn_fail_later(c);
        return;
    }
    if (!c->is_sub) {
        mg_hint_redis_conn_ready(c);
        return;
    }
    if (mg_hint_redis_send_subscribe(c) != REDIS_OK) {
        mg_hint_redis_conn_error(c, "SUBSCRIBE \"%s\" could not be sent", c->h->channel);
        mg_hint_redis_conn_fail_later(c);
    }
}

static void
mg_hint_redis_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    mg_hint_redis_conn_t *c = ac->data;
    if (c == NULL) {
        return;
    }
    if (status != REDIS_OK) {
        /* hiredis frees ac when we return */
        c->ac = NULL;
        evtimer_del(c->timeout_ev);
        mg_hint_redis_conn_error(c, "connect failed: %s", ac->errstr);
        mg_hint_redis_conn_retry(c);
        return;
    }
    c->state = MG_HINT_CONN_HANDSHAKE;
    (void) redisEnableKeepAlive(&ac->c);    /* best effort: only speeds up dead-peer detection */

    mg_hint_redis_t *h = c->h;
    int rc;
    if (h->password != NULL) {
        const char *argv[3];
        size_t argvlen[3];
        int argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;
        if (h->username != NULL) {
            argv[argc] = h->username;
            argvlen[argc++] = strlen(h->username);
        }
        argv[argc] = h->password;
        argvlen[argc++] = strlen(h->password);
        rc = redisAsyncCommandArgv(ac, mg_hint_redis_auth_reply, NULL, argc, argv, argvlen);
    } else if (c->is_sub) {
        rc = mg_hint_redis_send_subscribe(c);
    } else {
        mg_hint_redis_conn_ready(c);
        return;
    }
    if (rc != REDIS_OK) {
        mg_hint_redis_conn_error(c, "handshake could not be sent");
        mg_hint_redis_conn_fail_later(c);   /* freeing inside onConnect is not allowed */
    }
}

static void
mg_hint_redis_on_disconnect(const redisAsyncContext *cac, int status)
{
    const redisAsyncContext *ac = cac;
    mg_hint_redis_conn_t *c = ac->data;
    if (c == NULL) {
        return;
    }
    /* hiredis frees ac when we return */
    c->ac = NULL;
    evtimer_del(c->timeout_ev);
    if (c->state == MG_HINT_CONN_CLOSING) {
        return;     /* the pending kill event schedules the retry; keep its error */
    }
    mg_hint_redis_conn_error(c, "disconnected: %s",
                             status == REDIS_OK || ac->errstr[0] == '\0' ? "connection closed"
                                                                        : ac->errstr);
    mg_hint_redis_conn_retry(c);
}

static void
mg_hint_redis_conn_start(mg_hint_redis_conn_t *c)
{
    mg_hint_redis_t *h = c->h;
    redisAsyncContext *ac = redisAsyncConnect(h->host, h->port);
    if (ac == NULL) {
        mg_hint_redis_conn_error(c, "redisAsyncConnect() failed: out of memory");
        mg_hint_redis_conn_retry(c);
        return;
    }
    if (ac->err) {
        mg_hint_redis_conn_error(c, "connect failed: %s", ac->errstr);
        redisAsyncFree(ac);     /* fresh context: no callbacks registered */
        mg_hint_redis_conn_retry(c);
        return;
    }
    ac->data = c;
    if (redisLibeventAttach(ac, h->base) != REDIS_OK) {
        mg_hint_redis_conn_error(c, "redisLibeventAttach() failed");
        ac->data = NULL;
        redisAsyncFree(ac);
        mg_hint_redis_conn_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, mg_hint_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, mg_hint_redis_on_disconnect);
    c->ac = ac;
    c->state = MG_HINT_CONN_CONNECTING;
    struct timeval tv = {mg_hint_redis_connect_timeout_ms / 1000,
                         (mg_hint_redis_connect_timeout_ms % 1000) * 1000};
    evtimer_add(c->timeout_ev, &tv);
}

static void
mg_hint_redis_conn_init(mg_hint_redis_t *h, mg_hint_redis_conn_t *c, bool is_sub)
{
    memset(c, 0, sizeof(*c));
    c->h = h;
    c->is_sub = is_sub;
    c->role = is_sub ? "subscriber" : "publisher";
    c->backoff_ms = MG_HINT_REDIS_BACKOFF_MIN_MS;
    c->retry_ev = evtimer_new(h->base, mg_hint_redis_retry_cb, c);
    c->timeout_ev = evtimer_new(h->base, mg_hint_redis_timeout_cb, c);
    c->kill_ev = evtimer_new(h->base, mg_hint_redis_kill_cb, c);
    if (c->retry_ev == NULL || c->timeout_ev == NULL || c->kill_ev == NULL) {
        mg_log(MG_LOG_ERROR, NULL, "evtimer_new() failed: out of memory");
        abort();
    }
}

static void
mg_hint_redis_conn_free(mg_hint_redis_conn_t *c)
{
    mg_hint_redis_conn_abandon(c);
    if (c->retry_ev != NULL) {
        event_free(c->retry_ev);
    }
    if (c->timeout_ev != NULL) {
        event_free(c->timeout_ev);
    }
    if (c->kill_ev != NULL) {
        event_free(c->kill_ev);
    }
    c->retry_ev = c->timeout_ev = c->kill_ev = NULL;
}

/* ---- public API ---- */

mg_hint_redis_t *
mg_hint_redis_create(const mg_hint_redis_conf_t *conf, mg_err_t *err)
{
    if (conf == NULL || conf->base == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "redis hints: no event base");
        return NULL;
    }
    if (conf->host == NULL || conf->host[0] == '\0') {
        mg_err_set(err, MG_ERR_CONFIG, "redis hints: no host configured");
        return NULL;
    }
    if (conf->port <= 0 || conf->port > 65535) {
        mg_err_set(err, MG_ERR_CONFIG, "redis hints: port %d out of range for host \"%s\"",
                   conf->port, conf->host);
        return NULL;
    }
    if (conf->channel != NULL && conf->channel[0] == '\0') {
        mg_err_set(err, MG_ERR_CONFIG, "redis hints: empty channel name");
        return NULL;
    }

    mg_hint_redis_t *h = mg_xcalloc(1, sizeof(*h));
    h->base = conf->base;
    h->host = mg_xstrdup(conf->host);
    h->port = conf->port;
    h->username = conf->username != NULL && conf->username[0] != '\0'
                      ? mg_xstrdup(conf->username) : NULL;
    h->password = conf->password != NULL && conf->password[0] != '\0'
                      ? mg_xstrdup(conf->password) : NULL;
    h->channel = mg_xstrdup(conf->channel != NULL ? conf->channel : MG_HINT_REDIS_DEFAULT_CHANNEL);
    h->instance_id = mg_xstrdup(conf->instance_id != NULL ? conf->instance_id : "");
    h->on_hint = conf->on_hint;
    h->on_cooldown = conf->on_cooldown;
    h->on_reconnect = conf->on_reconnect;
    h->ud = conf->ud;
    /* pub/sub is not scoped to a database: conf->db is deliberately unused */

    mg_buf_t b = MG_BUF_INIT;
    mg_buf_json_str(&b, h->instance_id, strlen(h->instance_id));
    h->instance_json = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);

    mg_hint_redis_conn_init(h, &h->sub, true);
    mg_hint_redis_conn_init(h, &h->pub, false);
    mg_hint_redis_conn_start(&h->sub);
    mg_hint_redis_conn_start(&h->pub);
    return h;
}

void
mg_hint_redis_publish(mg_hint_redis_t *h, int64_t version)
{
    mg_hint_redis_conn_t *c = &h->pub;
    if (c->state != MG_HINT_CONN_READY || c->ac == NULL
        || c->inflight >= MG_HINT_REDIS_INFLIGHT_MAX) {
        h->publish_dropped++;   /* the store poll is the backstop */
        mg_log(MG_LOG_DEBUG, NULL, "redis hints: dropped hint for version %" PRId64
               " (publisher %s, %u in flight)", version,
               c->state == MG_HINT_CONN_READY ? "ready" : "not connected", c->inflight);
        return;
    }
    char payload[MG_HINT_REDIS_PAYLOAD_MAX + 64];
    int n = snprintf(payload, sizeof(payload), "{\"version\":%" PRId64 ",\"instance\":%s}",
                     version, h->instance_json);
    if (n < 0 || (size_t) n >= sizeof(payload)) {
        h->publish_dropped++;
        mg_log(MG_LOG_WARN, NULL, "redis hints: instance id too long to publish (%zu bytes)",
               strlen(h->instance_id));
        return;
    }
    const char *argv[3] = {"PUBLISH", h->channel, payload};
    size_t argvlen[3] = {7, strlen(h->channel), (size_t) n};
    if (redisAsyncCommandArgv(c->ac, mg_hint_redis_pub_reply, NULL, 3, argv, argvlen)
        != REDIS_OK) {
        h->publish_dropped++;
        return;
    }
    c->inflight++;
}

void
mg_hint_redis_publish_cooldown(mg_hint_redis_t *h, const char *deployment_id, int64_t ms,
                               int status)
{
    mg_hint_redis_conn_t *c = &h->pub;
    if (c->state != MG_HINT_CONN_READY || c->ac == NULL
        || c->inflight >= MG_HINT_REDIS_INFLIGHT_MAX) {
        h->publish_dropped++;
        return;
    }
    json_t *m = json_pack("{s:{s:s,s:I,s:i},s:s}", "cooldown", "id", deployment_id, "ms",
                          (json_int_t) ms, "status", status, "instance", h->instance_id);
    char *payload = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    const char *argv[3] = {"PUBLISH", h->channel, payload};
    size_t argvlen[3] = {7, strlen(h->channel), strlen(payload)};
    if (redisAsyncCommandArgv(c->ac, mg_hint_redis_pub_reply, NULL, 3, argv, argvlen) != REDIS_OK) {
        h->publish_dropped++;
    } else {
        c->inflight++;
    }
    free(payload);
}

json_t *
mg_hint_redis_status(mg_hint_redis_t *h)
{
    bool connected = h->sub.state == MG_HINT_CONN_HANDSHAKE || h->sub.state == MG_HINT_CONN_READY;
    return json_pack("{s:s, s:s, s:i, s:s, s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
                     "type", "redis",
                     "host", h->host,
                     "port", h->port,
                     "channel", h->channel,
                     "connected", connected,
                     "subscribed", h->sub.state == MG_HINT_CONN_READY,
                     "publisher_connected", h->pub.state == MG_HINT_CONN_READY,
                     "reconnects", (json_int_t) h->reconnects,
                     "subscriptions", (json_int_t) h->subscribes,
                     "received", (json_int_t) h->received,
                     "published", (json_int_t) h->published,
                     "publish_dropped", (json_int_t) h->publish_dropped,
                     "bad_messages", (json_int_t) h->bad_messages,
                     "last_error", h->last_error[0] != '\0' ? json_string(h->last_error)
                                                           : json_null());
}

void
mg_hint_redis_destroy(mg_hint_redis_t *h)
{
    if (h == NULL) {
        return;
    }
    /* Abandoned contexts run no callbacks of ours; in a reply callback hiredis defers the free. */
    mg_hint_redis_conn_free(&h->sub);
    mg_hint_redis_conn_free(&h->pub);
    if (h->password != NULL) {
        explicit_bzero(h->password, strlen(h->password));
        free(h->password);
    }
    free(h->host);
    free(h->username);
    free(h->channel);
    free(h->instance_id);
    free(h->instance_json);
    free(h);
}
