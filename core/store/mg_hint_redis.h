/*
 * mg_hint_redis.h -- registry version hints across instances over Redis pub/sub.
 *
 * Hints are never the truth: a message says "the store may be at version V";
 * the worker then reads the store.  One object per worker, on the worker's
 * event loop (hiredis async + libevent adapter): a subscriber connection on
 * the channel and a separate connection for PUBLISH.  Reconnects with backoff
 * (capped) and reports every (re)subscription through on_reconnect so the
 * worker resyncs in full (messages sent while disconnected are lost).
 */
#ifndef MG_HINT_REDIS_H
#define MG_HINT_REDIS_H

#include "../base/mg_err.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

typedef struct mg_hint_redis_s mg_hint_redis_t;

typedef struct {
    struct event_base *base;
    const char *host;
    int port;
    const char *username;       /* may be NULL */
    const char *password;       /* may be NULL; secret */
    int db;
    const char *channel;        /* default "moongate:registry" */
    const char *instance_id;    /* identifies this instance in messages */
    void (*on_hint)(void *ud, int64_t version, const char *from_instance);
    void (*on_reconnect)(void *ud);
    void *ud;
    /* optional: another instance cooled a deployment down for ms after status */
    void (*on_cooldown)(void *ud, const char *deployment_id, int64_t ms, int status,
                        const char *from_instance);
} mg_hint_redis_conf_t;

mg_hint_redis_t *mg_hint_redis_create(const mg_hint_redis_conf_t *conf, mg_err_t *err);
/* Publishes {"version":V,"instance":ID}; fire and forget (errors are counted in status). */
void mg_hint_redis_publish(mg_hint_redis_t *h, int64_t version);
/* Publishes {"cooldown":{"id":..,"ms":..,"status":..},"instance":ID} so every instance skips
 * the deployment too (LiteLLM shares cooldowns through Redis).  Fire and forget. */
void mg_hint_redis_publish_cooldown(mg_hint_redis_t *h, const char *deployment_id, int64_t ms,
                                    int status);
/* {"connected":bool,"subscribed":bool,"reconnects":N,"last_error":..., "received":N,"published":N} */
json_t *mg_hint_redis_status(mg_hint_redis_t *h);
void mg_hint_redis_destroy(mg_hint_redis_t *h);

#endif
