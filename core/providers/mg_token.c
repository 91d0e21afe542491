/*
 * mg_token.c -- the per-worker token cache (see mg_token.h).
 *
 * Owns: entries (one per credential key), their tokens (wiped before free), the io handle
 * of each fetch in flight, and the list of tokens dropped from entries but not yet expired
 * (kept only so the scrubber still redacts them).  Waiters belong to their callers.
 *
 * Re-entrancy: mg_token_fetch_done() wakes waiters one at a time, each unlinked before its
 * callback runs; a callback may call mg_token_get()/mg_token_cancel() again (a retried
 * attempt does), and the entry being woken is marked so that nothing frees it meanwhile.
 */
#include "mg_token.h"

#include "../base/mg_arena.h"
#include "../base/mg_map.h"
#include "../base/mg_scrub.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "oauth/mg_oauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mg_token_entry_s {
    mg_token_cache_t *cache;        /* borrowed: the owner */
    mg_token_entry_t *prev, *next;  /* cache->entries */
    char key[65];
    char *what;                     /* malloc: label for messages */
    char *token;                    /* malloc, secret: the current token, NULL none */
    int64_t refresh_ms;             /* monotonic: start a refresh from here on */
    int64_t hard_ms;                /* monotonic: callers wait from here on */
    int64_t expires_ms;             /* monotonic: the endpoint's own expiry */
    void *handle;                   /* io: the fetch in flight, NULL none */
    mg_token_wait_t *head, *tail;   /* parked callers, oldest first */
    int nwaiters;
    int64_t fail_until_ms;          /* a failure answers callers until then */
    mg_err_t fail;                  /* that failure */
    bool waking;                    /* inside mg_token_fetch_done(): not to be freed */
};

/* A token no entry serves any more, kept for the scrubber until it expires. */
typedef struct mg_token_old_s {
    struct mg_token_old_s *next;
    char *token;                    /* malloc, secret */
    int64_t expires_ms;
} mg_token_old_t;

struct mg_token_cache_s {
    mg_token_conf_t conf;
    mg_map_t by_key;                /* key -> entry (not owned through the map) */
    mg_token_entry_t *entries;      /* owned list */
    mg_token_old_t *old;            /* owned list */
    mg_token_stats_t stats;
};

/* ---- clocks ---- */

static int64_t
mg_token_now(const mg_token_cache_t *c)
{
    return c->conf.now_ms != NULL ? c->conf.now_ms() : mg_time_mono_ms();
}

static int64_t
mg_token_now_real_s(const mg_token_cache_t *c)
{
    return c->conf.now_real_s != NULL ? c->conf.now_real_s() : (int64_t) time(NULL);
}

/* ---- secrets ---- */

static void
mg_token_wipe_free(char *s)
{
    if (s != NULL) {
        volatile char *p = s;
        while (*p) {
            *p++ = '\0';
        }
        free(s);
    }
}

/* Every token held or recently held, as the scrubber's runtime set. */
static void
mg_token_publish(mg_token_cache_t *c)
{
    mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
    for (mg_token_entry_t *e = c->entries; e != NULL; e = e->next) {
        mg_scrub_builder_add_str(&b, e->token);
    }
    for (mg_token_old_t *o = c->old; o != NULL; o = o->next) {
        mg_scrub_builder_add_str(&b, o->token);
    }
    mg_scrub_set_t *set = mg_scrub_builder_finish(&b);
    mg_scrub_set_runtime(set);
    mg_scrub_set_unref(set);
}

/* Moves a token out of service (still scrubbed until expires_ms). */
static void
mg_token_retire(mg_token_cache_t *c, char *token, int64_t expires_ms)
{
    if (token == NULL) {
        return;
    }
    mg_token_old_t *o = mg_xcalloc(1, sizeof(*o));
    o->token = token;
    o->expires_ms = expires_ms;
    o->next = c->old;
    c->old = o;
}

/* Forgets retired tokens past their expiry; true when one went. */
static bool
mg_token_prune_old(mg_token_cache_t *c, int64_t now)
{
    bool changed = false;
    mg_token_old_t **pp = &c->old;
    while (*pp != NULL) {
        mg_token_old_t *o = *pp;
        if (o->expires_ms <= now) {
            *pp = o->next;
            mg_token_wipe_free(o->token);
            free(o);
            changed = true;
        } else {
            pp = &o->next;
        }
    }
    return changed;
}

/* ---- entries ---- */

static mg_token_entry_t *
mg_token_entry_new(mg_token_cache_t *c, const mg_token_src_t *src)
{
    mg_token_entry_t *e = mg_xcalloc(1, sizeof(*e));
    e->cache = c;
    memcpy(e->key, src->key, sizeof(e->key));
    e->key[64] = '\0';
    e->what = mg_xstrdup(src->what != NULL ? src->what : "a credential");
    mg_map_put(&c->by_key, e->key, strlen(e->key), e);
    e->next = c->entries;
    if (c->entries != NULL) {
        c->entries->prev = e;
    }
    c->entries = e;
    c->stats.entries++;
    return e;
}

static void
mg_token_entry_free(mg_token_cache_t *c, mg_token_entry_t *e)
{
    mg_map_del(&c->by_key, e->key, strlen(e->key));
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        c->entries = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    c->stats.entries--;
    mg_token_retire(c, e->token, e->expires_ms);
    e->token = NULL;
    free(e->what);
    free(e);
}

static bool
mg_token_entry_busy(const mg_token_entry_t *e)
{
    return e->handle != NULL || e->head != NULL || e->waking;
}

static void
mg_token_wait_push(mg_token_entry_t *e, mg_token_wait_t *w, mg_token_cb cb, void *ud)
{
    w->cb = cb;
    w->ud = ud;
    w->entry = e;
    w->next = NULL;
    w->prev = e->tail;
    if (e->tail != NULL) {
        e->tail->next = w;
    } else {
        e->head = w;
    }
    e->tail = w;
    e->nwaiters++;
}

static void
mg_token_wait_unlink(mg_token_wait_t *w)
{
    mg_token_entry_t *e = w->entry;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        e->head = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    } else {
        e->tail = w->prev;
    }
    e->nwaiters--;
    w->prev = w->next = NULL;
    w->entry = NULL;
}

/* Starts the one fetch for e.  MG_ERROR + err: it could not start. */
static int
mg_token_start(mg_token_cache_t *c, mg_token_entry_t *e, const mg_token_src_t *src,
               mg_err_t *err)
{
    mg_buf_t body = MG_BUF_INIT;
    if (src->body(src->ud, mg_token_now_real_s(c), &body, err) != MG_OK) {
        mg_buf_free(&body);
        return MG_ERROR;
    }
    c->stats.fetches++;
    void *h = c->conf.io.start(c->conf.io.host, src->url, mg_buf_head(&body), mg_buf_len(&body),
                               e, err);
    /* the body holds a signed assertion or a client secret: wipe it */
    if (body.data != NULL) {
        memset(body.data, 0, body.cap);
    }
    mg_buf_free(&body);
    if (h == NULL) {
        c->stats.fetch_failures++;
        return MG_ERROR;
    }
    e->handle = h;
    return MG_OK;
}

/* ---- public API ---- */

mg_token_cache_t *
mg_token_cache_create(const mg_token_conf_t *conf)
{
    mg_token_cache_t *c = mg_xcalloc(1, sizeof(*c));
    c->conf = *conf;
    if (c->conf.max_waiters <= 0) {
        c->conf.max_waiters = MG_TOKEN_MAX_WAITERS_DEFAULT;
    }
    mg_map_init(&c->by_key);
    return c;
}

void
mg_token_cache_destroy(mg_token_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    while (c->entries != NULL) {
        mg_token_entry_t *e = c->entries;
        if (e->handle != NULL) {
            c->conf.io.cancel(c->conf.io.host, e->handle);
            e->handle = NULL;
        }
        while (e->head != NULL) {
            mg_token_wait_unlink(e->head); /* callers cancel first; never leave a dangling link */
        }
        mg_token_entry_free(c, e);
    }
    mg_token_prune_old(c, INT64_MAX);
    mg_map_free(&c->by_key);
    free(c);
    mg_scrub_set_runtime(NULL);
}

int
mg_token_get(mg_token_cache_t *c, const mg_token_src_t *src, const char **token,
             mg_token_wait_t *w, mg_token_cb cb, void *ud, mg_err_t *err)
{
    int64_t now = mg_token_now(c);
    *token = NULL;
    mg_token_entry_t *e = mg_map_get(&c->by_key, src->key, strnlen(src->key, 64));
    if (e == NULL) {
        e = mg_token_entry_new(c, src);
    }
    if (e->token != NULL && now < e->hard_ms) {
        if (now >= e->refresh_ms && e->handle == NULL && now >= e->fail_until_ms) {
            /* due for a refresh: one fetch in the background, the old token meanwhile */
            mg_err_t e2;
            if (mg_token_start(c, e, src, &e2) != MG_OK) {
                e->fail = e2;
                e->fail_until_ms = now + MG_TOKEN_FAIL_HOLD_MS;
            }
        }
        c->stats.hits++;
        *token = e->token;
        return MG_OK;
    }
    if (e->handle == NULL && now < e->fail_until_ms) {
        *err = e->fail;
        return MG_ERROR;
    }
    if (e->nwaiters >= c->conf.max_waiters) {
        c->stats.refused_busy++;
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "%d requests already wait for a token for %s",
                   e->nwaiters, e->what);
        err->status = 503;
        return MG_BUSY;
    }
    if (e->handle == NULL && mg_token_start(c, e, src, err) != MG_OK) {
        e->fail = *err;
        e->fail_until_ms = now + MG_TOKEN_FAIL_HOLD_MS;
        return MG_ERROR;
    }
    mg_token_wait_push(e, w, cb, ud);
    c->stats.waits++;
    return MG_AGAIN;
}

void
mg_token_cancel(mg_token_wait_t *w)
{
    if (w != NULL && w->entry != NULL) {
        mg_token_wait_unlink(w);
    }
}

void
mg_token_fetch_done(mg_token_cache_t *c, mg_token_entry_t *e, int rc, int status,
                    const char *body, size_t len, const mg_err_t *err)
{
    int64_t now = mg_token_now(c);
    e->handle = NULL;
    mg_err_t fail;
    mg_oauth_token_t tok;
    memset(&tok, 0, sizeof(tok));
    int res = MG_ERROR;
    mg_err_set(&fail, MG_ERR_UPSTREAM_5XX, "no error named in the answer");
    if (rc != MG_OK) {
        fail = *err;
        mg_err_prefix(&fail, "token request for %s: ", e->what);
    } else if (mg_oauth_token_parse(body, len, &tok, &fail) == MG_OK && status >= 200 &&
               status < 300) {
        res = MG_OK;
    } else {
        mg_oauth_token_free(&tok); /* a token in a refusal is not one to use */
        if (status >= 500) {
            /* the endpoint's own trouble, whatever its body says: retriable, never "auth" */
            mg_err_set(&fail, MG_ERR_UPSTREAM_5XX, "token endpoint answered %d", status);
        } else if (status >= 300 && fail.cls != MG_ERR_AUTH) {
            char why[256];
            snprintf(why, sizeof(why), "%s", status >= 400 ? fail.msg : "a redirect");
            mg_err_set(&fail, MG_ERR_AUTH, "token endpoint answered %d (%s)", status, why);
        }
        mg_err_prefix(&fail, "token request for %s: ", e->what);
    }
    if (res == MG_OK) {
        int64_t life = tok.expires_in * 1000;
        int64_t early = life / 10 < 300000 ? life / 10 : 300000;
        int64_t hard = life / 20 < 30000 ? life / 20 : 30000;
        mg_token_retire(c, e->token, e->expires_ms);
        e->token = tok.access_token;    /* ownership moves */
        tok.access_token = NULL;
        e->expires_ms = now + life;
        e->refresh_ms = now + life - early;
        e->hard_ms = now + life - hard;
        e->fail_until_ms = 0;
        mg_oauth_token_free(&tok);
    } else {
        c->stats.fetch_failures++;
        e->fail = fail;
        e->fail_until_ms = now + MG_TOKEN_FAIL_HOLD_MS;
    }
    mg_token_prune_old(c, now);
    mg_token_publish(c);
    /* wake every waiter with the one result */
    e->waking = true;
    while (e->head != NULL) {
        mg_token_wait_t *w = e->head;
        mg_token_wait_unlink(w);
        if (res == MG_OK) {
            w->cb(w->ud, MG_OK, e->token, NULL);
        } else {
            w->cb(w->ud, MG_ERROR, NULL, &fail);
        }
    }
    e->waking = false;
}

void
mg_token_cache_retain(mg_token_cache_t *c, bool (*keep)(void *ud, const char *key), void *ud)
{
    int64_t now = mg_token_now(c);
    bool changed = mg_token_prune_old(c, now);
    mg_token_entry_t *e = c->entries;
    while (e != NULL) {
        mg_token_entry_t *next = e->next;
        bool expired = e->token == NULL ? now >= e->fail_until_ms : now >= e->expires_ms;
        if (!mg_token_entry_busy(e) && (expired || !keep(ud, e->key))) {
            mg_token_entry_free(c, e);
            changed = true;
        }
        e = next;
    }
    if (changed) {
        mg_token_prune_old(c, now);
        mg_token_publish(c);
    }
}

void
mg_token_cache_stats(const mg_token_cache_t *c, mg_token_stats_t *out)
{
    *out = c->stats;
}
