/*
 * mg_worker.c -- see mg_worker.h.
 */
#include "mg_worker.h"

#include "../base/mg_metrics_litellm.h"
#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_metrics.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../gateway/mg_admit.h"
#include "../gateway/mg_gw.h"
#include "../gateway/mg_gw_metrics.h"
#include "../gateway/mg_trace.h"
#include "../registry/mg_stats.h"
#include "../spend/mg_spend.h"
#include "../store/mg_hint_redis.h"
#include "../store/mg_limits_redis.h"
#include "../store/mg_store.h"
#include "mg_ctl.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct mg_wop_s {
    struct mg_wop_s *next;
    int64_t req;
    int kind;                       /* 1 commit, 2 reload, 3 a question to the master */
    mg_gw_commit_cb commit_cb;
    mg_gw_reload_cb reload_cb;
    void (*ask_cb)(void *ud, json_t *answer);   /* kind 3 */
    void *ud;
    json_t *row;                    /* owned */
    int64_t version;
} mg_wop_t;

/* accepting stops this long when accept4() fails for want of descriptors or memory */
#define MG_WK_ACCEPT_PAUSE_MS 100
/* at most one line about failing accept4() calls per this interval */
#define MG_WK_ACCEPT_LOG_MS 5000

/* accept4() failures, for the log and /moongate/state ("accept") */
typedef struct {
    int64_t resource_errors;        /* EMFILE, ENFILE, ENOBUFS, ENOMEM: accepting paused */
    int64_t other_errors;           /* the rest (errors of one pending connection, mostly) */
    int64_t pauses;                 /* times accepting stopped for MG_WK_ACCEPT_PAUSE_MS */
    bool paused;                    /* accept_ev is off; accept_pause_ev turns it back on */
    int64_t episode_start_ms;       /* monotonic: first failure since the last accept, or 0 */
    int64_t episode_failures;       /* failures since episode_start_ms */
    bool announced;                 /* this episode's start was logged: log its end too */
    int64_t suppressed;             /* failures not logged since the last line */
    int64_t last_log_ms;            /* monotonic: last line about failures, 0 = none yet */
    char last_error[128];           /* "accept4() failed (24: Too many open files)" */
} mg_wk_accept_t;

typedef struct {
    const mg_worker_args_t *args;
    struct event_base *base;
    mg_gw_t *gw;
    mg_store_t *store;              /* owned; NULL if it could not be created */
    mg_hint_redis_t *redis;         /* owned; NULL without Redis */
    mg_limits_redis_t *limits;      /* owned; NULL without Redis (lent to mg_admit) */
    mg_ctl_t *ctl;                  /* owned */
    mg_config_t *config;            /* ref */
    int64_t config_gen;
    int64_t built_gen;              /* config generation of the current snapshot */
    int64_t version;                /* store version of the current snapshot, -1 none */
    bool loading;
    bool again;
    int64_t backoff_ms;
    int64_t load_failures;
    char last_error[512];
    int64_t last_error_ms;
    char store_error[512];          /* why the store could not be created */
    mg_wop_t *ops;
    int64_t next_req;
    bool draining;
    bool drain_cut_said;            /* the drain timeout's line was logged */
    int64_t drain_deadline;
    int64_t accept_until;           /* monotonic ms: still accepting while draining */
    bool accepting;
    mg_wk_accept_t acc;
    struct event accept_ev, accept_pause_ev, poll_ev, state_ev, retry_ev, sig_term, drain_ev;
    bool retry_on;
    int64_t hints_master, hints_redis, hints_store, polls;
    bool polling;                   /* a version check is pending (never queue a second) */
} mg_wk_t;

static mg_wk_t *mg_wk;

static void mg_wk_sync(mg_wk_t *w);

/* ---- state ---- */

static void
mg_wk_report_applied(mg_wk_t *w)
{
    mg_shm_worker_t *s = &mg_shm->workers[w->args->index];
    mg_atomic_store64(&s->version, w->version);
    mg_atomic_store64(&s->config_gen, w->built_gen);
    if (w->gw->snap != NULL) {
        mg_atomic_store64(&s->snapshot_created_ms, w->gw->snap->created_real_ms);
    }
    json_t *m = json_pack("{s:s,s:I,s:I}", "op", "applied", "version", (json_int_t) w->version,
                          "config_generation", (json_int_t) w->built_gen);
    if (w->gw->snap != NULL) {
        /* what the stored models price by: the master's cost map reload guard counts them
         * with config.yaml's (mg_costmap_check_coverage) */
        json_t *keys = json_array();
        const mg_snapshot_t *snap = w->gw->snap;
        for (size_t i = 0; i < snap->ndeps && json_array_size(keys) < 10000; i++) {
            const mg_deployment_t *d = &snap->deps[i];
            if (d->source == MG_DEP_STORE) {
                json_array_append_new(keys, json_pack("[s,s,s?]", d->provider, d->litellm_model,
                                                      d->base_model));
            }
        }
        json_object_set_new(m, "cost_keys", keys);
    }
    mg_ctl_send(w->ctl, m);
    json_decref(m);
}

static void mg_wk_publish_host(void *host);

static json_t *
mg_wk_state(void *host)
{
    mg_wk_t *w = host;
    mg_gw_t *gw = w->gw;
    json_t *st = json_pack("{s:i,s:i,s:s,s:I,s:I,s:i,s:I,s:I}", "worker", w->args->index, "pid",
                           (int) getpid(), "state",
                           w->draining ? "draining" : gw->ready ? "ready" : "loading",
                           "registry_version", (json_int_t) w->version, "config_generation",
                           (json_int_t) w->built_gen, "live_snapshots", gw->live_snapshots,
                           "requests", (json_int_t) gw->requests, "failures",
                           (json_int_t) gw->failures);
    if (gw->snap != NULL) {
        json_object_set_new(st, "snapshot_age_seconds",
                            json_real((double) (mg_time_mono_ms() - gw->snap->created_mono_ms) / 1000.0));
        json_object_set_new(st, "deployments", json_integer((json_int_t) gw->snap->ndeps));
        json_object_set_new(st, "snapshot_warnings", json_incref(gw->snap->warnings));
        const mg_costmap_t *cm = gw->snap->costmap;
        json_object_set_new(st, "cost_map", json_pack("{s:s,s:s,s:I}", "source", cm->source,
                                                      "sha256", cm->sha256, "models",
                                                      (json_int_t) cm->count));
    }
    json_object_set_new(st, "lua_states", json_integer(gw->live_vms));
    mg_lua_vm_t *vm = mg_gw_vm(gw->snap);
    json_object_set_new(st, "policies", vm != NULL ? mg_lua_vm_state(vm) : json_null());
    json_object_set_new(st, "policy_errors", json_integer((json_int_t) gw->policy_errors));
    json_object_set_new(st, "store", w->store ? w->store->ops->status(w->store)
                                              : json_pack("{s:s,s:b,s:s}", "type", "none",
                                                          "connected", 0, "last_error",
                                                          w->store_error));
    json_t *hints = json_pack("{s:b,s:I,s:I,s:I,s:I}", "master_connected", w->ctl != NULL,
                              "from_master", (json_int_t) w->hints_master, "from_redis",
                              (json_int_t) w->hints_redis, "from_store",
                              (json_int_t) w->hints_store, "polls", (json_int_t) w->polls);
    json_object_set_new(hints, "redis", w->redis ? mg_hint_redis_status(w->redis) : json_null());
    json_object_set_new(st, "hints", hints);
    json_object_set_new(st, "limits", w->limits != NULL
                                          ? mg_limits_redis_status(w->limits)
                                          : json_pack("{s:s,s:b}", "backend", "local",
                                                      "redis_configured", 0));
    json_object_set_new(st, "last_load_error", w->last_error[0] ? json_string(w->last_error) : json_null());
    json_object_set_new(st, "load_failures", json_integer((json_int_t) w->load_failures));
    json_object_set_new(st, "pool", mg_upool_state(gw->upool));
    json_object_set_new(st, "accept",
                        json_pack("{s:I,s:I,s:I,s:b,s:s?}", "resource_errors",
                                  (json_int_t) w->acc.resource_errors, "other_errors",
                                  (json_int_t) w->acc.other_errors, "pauses",
                                  (json_int_t) w->acc.pauses, "paused", w->acc.paused,
                                  "last_error",
                                  w->acc.last_error[0] ? w->acc.last_error : NULL));
    json_object_set_new(st, "connections", json_integer(gw->http->nconns));
    json_object_set_new(st, "in_flight", json_integer(gw->http->nactive));
    json_object_set_new(st, "otel", mg_trace_state(gw->otel_exp));
    return st;
}

static void
mg_wk_publish_state(mg_wk_t *w)
{
    mg_gwm_worker_tick(w->gw);
    json_t *st = mg_wk_state(w);
    char *s = json_dumps(st, JSON_COMPACT);
    size_t n = strlen(s);
    if (n > MG_SHM_STATE_BLOB) {
        /* too many upstream clients to list: keep the totals */
        json_t *pool = json_object_get(st, "pool");
        json_object_set_new(pool, "clients", json_string("(list too long; see totals)"));
        free(s);
        s = json_dumps(st, JSON_COMPACT);
        n = strlen(s);
    }
    mg_shm_worker_t *slot = &mg_shm->workers[w->args->index];
    mg_shm_publish_blob(slot, s, n);
    mg_atomic_store64(&slot->heartbeat_ms, mg_time_real_ms());
    free(s);
    json_decref(st);
}

static json_t *
mg_wk_store_status(void *host)
{
    mg_wk_t *w = host;
    if (w->store == NULL) {
        return json_pack("{s:s,s:b,s:s}", "type", "none", "connected", 0, "last_error",
                         w->store_error);
    }
    return w->store->ops->status(w->store);
}

/* ---- registry sync ---- */

static void
mg_wk_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_wk_t *w = arg;
    w->retry_on = false;
    mg_wk_sync(w);
}

static void
mg_wk_schedule_retry(mg_wk_t *w)
{
    if (w->retry_on) {
        return;
    }
    w->backoff_ms = w->backoff_ms == 0 ? 100 : w->backoff_ms * 2;
    if (w->backoff_ms > 2000) {
        w->backoff_ms = 2000;
    }
    struct timeval tv = {(time_t) (w->backoff_ms / 1000), (suseconds_t) ((w->backoff_ms % 1000) * 1000)};
    evtimer_assign(&w->retry_ev, w->base, mg_wk_retry_cb, w);
    evtimer_add(&w->retry_ev, &tv);
    w->retry_on = true;
}

static void
mg_wk_load_done(void *ud, int rc, int64_t version, json_t *models, json_t *policies,
                json_t *idents, const mg_err_t *err)
{
    mg_wk_t *w = ud;
    w->loading = false;
    if (rc != MG_OK) {
        w->load_failures++;
        mg_ml_refused("registry");
        bool changed = strcmp(w->last_error, err->msg) != 0;
        snprintf(w->last_error, sizeof(w->last_error), "%s", err->msg);
        w->last_error_ms = mg_time_real_ms();
        if (!w->gw->ready) {
            char reason[600];
            snprintf(reason, sizeof(reason), "cannot load the registry: %s", err->msg);
            mg_gw_set_not_ready(w->gw, reason);
        }
        if (changed || w->load_failures % 50 == 1) {
            mg_log(MG_LOG_ERROR, NULL, "loading the registry failed (attempt %lld)%s: %s",
                   (long long) w->load_failures,
                   w->gw->ready ? "; the last good snapshot keeps serving" : "", err->msg);
        }
        mg_wk_schedule_retry(w);
        w->again = false;
        return;
    }
    w->backoff_ms = 0;
    if (w->last_error[0] != '\0') {
        mg_log(MG_LOG_NOTICE, NULL, "registry loaded again at version %lld", (long long) version);
        w->last_error[0] = '\0';
    }
    bool same = w->gw->snap != NULL && version == w->version && w->built_gen == w->config_gen;
    if (!same && (version >= w->version || w->built_gen != w->config_gen)) {
        mg_snapshot_t *snap = NULL;
        mg_err_t berr;
        if (mg_registry_build_ex(w->config, models, policies, idents, version,
                                 mg_gw_registry_hooks(w->gw), &snap, &berr) != MG_OK) {
            snprintf(w->last_error, sizeof(w->last_error), "building snapshot %lld failed: %s",
                     (long long) version, berr.msg);
            mg_log(MG_LOG_ERROR, NULL, "%s; the previous snapshot keeps serving", w->last_error);
        } else {
            mg_gw_set_snapshot(w->gw, snap);
            mg_snapshot_unref(snap);
            w->version = version;
            w->built_gen = w->config_gen;
            mg_shm_worker_t *slot = &mg_shm->workers[w->args->index];
            mg_atomic_store32(&slot->loaded_once, 1);
            if (!w->draining) {
                mg_atomic_store32(&slot->state, MG_WSTATE_READY);
            }
            size_t nw = json_array_size(snap->warnings);
            for (size_t i = 0; i < nw && w->args->index == 0; i++) {
                mg_log(MG_LOG_WARN, NULL, "registry version %lld: %s", (long long) version,
                       json_string_value(json_array_get(snap->warnings, i)));
            }
            mg_log(MG_LOG_INFO, NULL, "registry version %lld applied (%zu deployments, config "
                                      "generation %lld)", (long long) version, snap->ndeps,
                   (long long) w->built_gen);
        }
    }
    mg_wk_report_applied(w);
    mg_wk_publish_state(w);
    if (w->again) {
        w->again = false;
        mg_wk_sync(w);
    }
}

static void
mg_wk_sync(mg_wk_t *w)
{
    if (w->loading) {
        w->again = true;
        return;
    }
    if (w->store == NULL) {
        /* no store (e.g. unusable state dir): config models only, never "not loaded" */
        static json_t *empty;
        if (empty == NULL) {
            empty = json_array();
        }
        w->loading = true;
        mg_wk_load_done(w, MG_OK, w->version < 0 ? 0 : w->version, empty, NULL, NULL, NULL);
        return;
    }
    w->loading = true;
    w->store->ops->load(w->store, mg_wk_load_done, w);
}

static void
mg_wk_hint(mg_wk_t *w, int64_t version)
{
    if (version > w->version) {
        mg_wk_sync(w);
    }
}

static void
mg_wk_poll_done(void *ud, int rc, int64_t version, const mg_err_t *err)
{
    mg_wk_t *w = ud;
    (void) err;
    w->polling = false;
    if (rc == MG_OK && version > w->version) {
        mg_wk_sync(w);
    } else if (rc != MG_OK && !w->gw->ready) {
        mg_wk_sync(w); /* keeps the not-ready reason current */
    }
}

static void
mg_wk_poll(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_wk_t *w = arg;
    w->polls++;
    if (w->store != NULL && !w->loading && !w->polling) {
        w->polling = true;
        w->store->ops->get_version(w->store, mg_wk_poll_done, w);
    }
}

static void
mg_wk_publish_host(void *host)
{
    mg_wk_publish_state(host);
}

static void
mg_wk_state_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_wk_publish_state(arg);
}

static void
mg_wk_store_hint(void *ud, int64_t version)
{
    mg_wk_t *w = ud;
    w->hints_store++;
    mg_wk_hint(w, version);
}

static void
mg_wk_store_reconnect(void *ud)
{
    mg_wk_t *w = ud;
    mg_wk_sync(w); /* notifications sent while disconnected are lost: resync in full */
}

static void
mg_wk_redis_hint(void *ud, int64_t version, const char *from)
{
    (void) from;
    mg_wk_t *w = ud;
    w->hints_redis++;
    mg_wk_hint(w, version);
}

static void
mg_wk_redis_reconnect(void *ud)
{
    mg_wk_sync(ud);
}

/* another instance cooled a deployment down: skip it here too */
static void
mg_wk_redis_cooldown(void *ud, const char *id, int64_t ms, int status, const char *from)
{
    (void) ud;
    if (from != NULL && strcmp(from, mg_shm->instance_id) == 0) {
        return; /* ours: the shared stats already have it */
    }
    if (ms > 0 && ms <= 3600 * 1000) {
        mg_stats_cooldown(mg_stats_slot(id), ms, status);
    }
}

static void
mg_wk_cooldown(void *host, const char *id, int64_t ms, int status)
{
    mg_wk_t *w = host;
    if (w->redis != NULL) {
        mg_hint_redis_publish_cooldown(w->redis, id, ms, status);
    }
}

/* ---- host services for the gateway ---- */

static mg_wop_t *
mg_wk_op_take(mg_wk_t *w, int64_t req)
{
    for (mg_wop_t **pp = &w->ops; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->req == req) {
            mg_wop_t *op = *pp;
            *pp = op->next;
            return op;
        }
    }
    return NULL;
}

static void
mg_wk_commit_done(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    mg_wop_t *op = ud;
    mg_wk_t *w = mg_wk;
    if (rc != MG_OK) {
        op->commit_cb(op->ud, rc, version, NULL, err);
        free(op);
        return;
    }
    if (w->redis != NULL) {
        mg_hint_redis_publish(w->redis, version);
    }
    op->row = row != NULL ? json_incref(row) : NULL;
    op->version = version;
    op->req = ++w->next_req;
    op->next = w->ops;
    w->ops = op;
    /* the master tells every worker (us included) and answers when all applied it */
    json_t *m = json_pack("{s:s,s:I,s:I}", "op", "publish", "version", (json_int_t) version, "req",
                          (json_int_t) op->req);
    mg_ctl_send(w->ctl, m);
    json_decref(m);
    mg_wk_hint(w, version);
}

static void
mg_wk_commit(void *host, json_t *mutation, mg_gw_commit_cb cb, void *ud)
{
    mg_wk_t *w = host;
    mg_err_t err;
    if (w->store == NULL) {
        mg_err_set(&err, MG_ERR_NOT_READY, "model changes are unavailable: %s", w->store_error);
        cb(ud, MG_ERROR, w->version, NULL, &err);
        return;
    }
    if (w->ctl == NULL) {
        mg_err_set(&err, MG_ERR_INTERNAL, "the master process is gone; this worker is exiting");
        cb(ud, MG_ERROR, w->version, NULL, &err);
        return;
    }
    mg_wop_t *op = mg_xcalloc(1, sizeof(*op));
    op->kind = 1;
    op->commit_cb = cb;
    op->ud = ud;
    w->store->ops->mutate(w->store, mutation, mg_wk_commit_done, op);
}

static void
mg_wk_reload(void *host, mg_gw_reload_cb cb, void *ud)
{
    mg_wk_t *w = host;
    mg_wop_t *op = mg_xcalloc(1, sizeof(*op));
    op->kind = 2;
    op->reload_cb = cb;
    op->ud = ud;
    op->req = ++w->next_req;
    op->next = w->ops;
    w->ops = op;
    json_t *m = json_pack("{s:s,s:I}", "op", "reload", "req", (json_int_t) op->req);
    mg_ctl_send(w->ctl, m);
    json_decref(m);
}

/* POST /reload/model_cost_map and the schedule routes: the master does them (it reads the
 * map's source and sends the new config to every worker) and answers in a sync_done. */
static void
mg_wk_costmap(void *host, const char *action, double hours, mg_gw_reload_cb cb, void *ud)
{
    mg_wk_t *w = host;
    if (w->ctl == NULL) {
        mg_err_t err;
        mg_err_set(&err, MG_ERR_INTERNAL, "the master process is gone; this worker is exiting");
        err.status = 503;
        cb(ud, MG_ERROR, NULL, &err);
        return;
    }
    mg_wop_t *op = mg_xcalloc(1, sizeof(*op));
    op->kind = 2;
    op->reload_cb = cb;
    op->ud = ud;
    op->req = ++w->next_req;
    op->next = w->ops;
    w->ops = op;
    json_t *m = json_pack("{s:s,s:I,s:s,s:f}", "op", "costmap", "req", (json_int_t) op->req,
                          "action", action, "hours", hours);
    mg_ctl_send(w->ctl, m);
    json_decref(m);
}

/* A question for the master (spend queries): its "answer" message comes back with our req. */
static void
mg_wk_ask_master(void *host, json_t *msg, void (*cb)(void *ud, json_t *answer), void *ud)
{
    mg_wk_t *w = host;
    if (w->ctl == NULL) {
        cb(ud, NULL);
        return;
    }
    mg_wop_t *op = mg_xcalloc(1, sizeof(*op));
    op->kind = 3;
    op->ask_cb = cb;
    op->ud = ud;
    op->req = ++w->next_req;
    op->next = w->ops;
    w->ops = op;
    json_t *m = json_deep_copy(msg);
    json_object_set_new(m, "req", json_integer((json_int_t) op->req));
    json_object_set_new(m, "pid", json_integer((json_int_t) getpid()));
    mg_ctl_send(w->ctl, m);
    json_decref(m);
}

static void
mg_wk_answer(mg_wk_t *w, json_t *msg)
{
    int64_t req = json_integer_value(json_object_get(msg, "req"));
    for (mg_wop_t **pp = &w->ops; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->req == req && (*pp)->kind == 3) {
            mg_wop_t *op = *pp;
            *pp = op->next;
            op->ask_cb(op->ud, json_object_get(msg, "answer"));
            free(op);
            return;
        }
    }
}

static void
mg_wk_sync_done(mg_wk_t *w, json_t *msg)
{
    mg_wop_t *op = mg_wk_op_take(w, json_integer_value(json_object_get(msg, "req")));
    if (op == NULL) {
        return;
    }
    bool ok = json_is_true(json_object_get(msg, "ok"));
    int64_t v = json_integer_value(json_object_get(msg, "version"));
    mg_err_t err;
    mg_err_clear(&err);
    if (!ok) {
        const char *e = json_string_value(json_object_get(msg, "error"));
        if (e != NULL) {
            mg_err_set(&err, MG_ERR_CONFIG, "%s", e);
            json_t *st = json_object_get(msg, "status");
            err.status = json_is_integer(st) ? (int) json_integer_value(st) : 400;
        } else {
            char *lag = json_dumps(json_object_get(msg, "lagging"), JSON_COMPACT);
            mg_err_set(&err, MG_ERR_INTERNAL,
                       "the change is committed at registry version %lld, but these workers have "
                       "not applied it within %dms: %s", (long long) v,
                       w->config->mutation_wait_ms, lag ? lag : "[]");
            err.status = 504;
            free(lag);
        }
    }
    json_t *given = json_object_get(msg, "result");
    if (op->kind == 1) {
        op->commit_cb(op->ud, ok ? MG_OK : MG_ERROR, v, op->row, ok ? NULL : &err);
    } else if (json_is_object(given)) {
        /* the master wrote the answer (the cost map routes) */
        op->reload_cb(op->ud, ok ? MG_OK : MG_ERROR, given, ok ? NULL : &err);
    } else {
        json_t *res = json_pack("{s:s,s:I,s:O}", "message",
                                json_string_value(json_object_get(msg, "message"))
                                    ? json_string_value(json_object_get(msg, "message"))
                                    : "config reloaded",
                                "version", (json_int_t) v, "config_generation",
                                json_object_get(msg, "config_generation"));
        json_t *models = json_object_get(msg, "models");
        if (models != NULL) {
            json_object_set(res, "models", models);
        }
        json_t *bumped = json_object_get(msg, "version_bumped");
        if (bumped != NULL) {
            json_object_set(res, "version_bumped", bumped);
        }
        json_t *cm = json_object_get(msg, "cost_map");
        if (cm != NULL) {
            json_object_set(res, "cost_map", cm); /* what the reload did with the cost map */
        }
        op->reload_cb(op->ud, ok ? MG_OK : MG_ERROR, res, ok ? NULL : &err);
        json_decref(res);
    }
    json_decref(op->row);
    free(op);
}

/* ---- control messages ---- */

static void
mg_wk_bump_done(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    (void) row;
    mg_wk_t *w = mg_wk;
    int64_t req = (int64_t) (intptr_t) ud;
    json_t *m = json_pack("{s:s,s:I,s:b,s:I}", "op", "bump_done", "req", (json_int_t) req, "ok",
                          rc == MG_OK, "version", (json_int_t) (rc == MG_OK ? version : w->version));
    if (rc != MG_OK) {
        json_object_set_new(m, "error", json_string(err->msg));
    } else if (w->redis != NULL) {
        mg_hint_redis_publish(w->redis, version);
    }
    mg_ctl_send(w->ctl, m);
    json_decref(m);
}

static void
mg_wk_on_msg(void *ud, json_t *msg)
{
    mg_wk_t *w = ud;
    const char *op = json_string_value(json_object_get(msg, "op"));
    if (op == NULL) {
        return;
    }
    if (strcmp(op, "hint") == 0) {
        w->hints_master++;
        mg_wk_hint(w, json_integer_value(json_object_get(msg, "version")));
    } else if (strcmp(op, "sync_done") == 0) {
        mg_wk_sync_done(w, msg);
    } else if (strcmp(op, "answer") == 0) {
        mg_wk_answer(w, msg);
    } else if (strcmp(op, "apply") == 0) {
        int64_t gen = json_integer_value(json_object_get(msg, "config_generation"));
        if (gen > w->config_gen) {
            mg_config_t *cfg = NULL;
            mg_err_t err;
            mg_config_opts_t opts = w->args->config_opts;
            opts.quiet = true;
            const char *path = json_string_value(json_object_get(msg, "path"));
            if (mg_config_from_json(path, json_object_get(msg, "config"), &opts, &cfg, &err) != MG_OK) {
                mg_log(MG_LOG_ERROR, NULL, "the master sent a config this worker cannot use: %s",
                       err.msg);
                return;
            }
            mg_config_unref(w->config);
            w->config = cfg;
            w->config_gen = gen;
            mg_gw_set_config(w->gw, cfg);
        }
        mg_wk_sync(w);
    } else if (strcmp(op, "commit_bump") == 0) {
        int64_t req = json_integer_value(json_object_get(msg, "req"));
        if (w->store == NULL) {
            mg_err_t err;
            mg_err_set(&err, MG_ERR_NOT_READY, "no store: %s", w->store_error);
            mg_wk_bump_done((void *) (intptr_t) req, MG_ERROR, w->version, NULL, &err);
            return;
        }
        json_t *m = json_pack("{s:s,s:s,s:O}", "op", "bump", "reason", "config_reload", "detail",
                              json_object_get(msg, "hash"));
        w->store->ops->mutate(w->store, m, mg_wk_bump_done, (void *) (intptr_t) req);
        json_decref(m);
    }
}

static void mg_wk_start_drain(mg_wk_t *w);

static void
mg_wk_on_ctl_close(void *ud)
{
    mg_wk_t *w = ud;
    mg_log(MG_LOG_ERROR, NULL, "lost the connection to the master; draining and exiting");
    mg_ctl_destroy(w->ctl);
    w->ctl = NULL;
    /* answer anything waiting on the master */
    while (w->ops != NULL) {
        mg_wop_t *op = w->ops;
        w->ops = op->next;
        mg_err_t err;
        mg_err_set(&err, MG_ERR_INTERNAL, "the master process went away");
        if (op->kind == 1) {
            op->commit_cb(op->ud, MG_ERROR, op->version, NULL, &err);
        } else if (op->kind == 3) {
            op->ask_cb(op->ud, NULL);
        } else {
            op->reload_cb(op->ud, MG_ERROR, NULL, &err);
        }
        json_decref(op->row);
        free(op);
    }
    mg_wk_start_drain(w);
}

/* ---- accept and drain ---- */

/* Is the worker taking new connections (not stopped by a drain)? */
static bool
mg_wk_accept_wanted(const mg_wk_t *w)
{
    return !w->draining || w->accepting;
}

/* accept_pause_ev: the pause is over; the listening socket's event fires again at once if
 * connections waited in the backlog meanwhile */
static void
mg_wk_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_wk_t *w = arg;
    w->acc.paused = false;
    if (mg_wk_accept_wanted(w)) {
        event_add(&w->accept_ev, NULL);
    }
}

/*
 * Counts a failed accept4() and logs at most one line per MG_WK_ACCEPT_LOG_MS.  Returns
 * true if accepting must pause: the failure is not about one pending connection, so the
 * listening socket stays readable and calling again at once would spin.  EMFILE/ENFILE
 * (descriptors) and ENOBUFS/ENOMEM (memory) pass when something is closed or freed.
 */
static bool
mg_wk_accept_failed(mg_wk_t *w, int e)
{
    bool resource = e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
    /* Linux hands pending network errors of the new connection to accept(): that
     * connection is gone, the next one may be fine (accept(2), "Error handling") */
    bool per_conn = e == ENETDOWN || e == EPROTO || e == ENOPROTOOPT || e == EHOSTDOWN ||
                    e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH ||
                    e == EPERM;
    bool pause = !per_conn;
    int64_t now = mg_time_mono_ms();
    if (resource) {
        w->acc.resource_errors++;
    } else {
        w->acc.other_errors++;
    }
    if (pause) {
        if (w->acc.episode_start_ms == 0) {
            w->acc.episode_start_ms = now;
        }
        w->acc.episode_failures++;
    }
    snprintf(w->acc.last_error, sizeof(w->acc.last_error), "accept4() failed (%d: %s)", e,
             strerror(e));
    if (w->acc.last_log_ms != 0 && now - w->acc.last_log_ms < MG_WK_ACCEPT_LOG_MS) {
        w->acc.suppressed++;
        return pause;
    }
    char why[160] = "";
    if (e == EMFILE) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            snprintf(why, sizeof(why), ": out of file descriptors (RLIMIT_NOFILE %llu, %d client "
                                       "connections open)",
                     (unsigned long long) rl.rlim_cur, w->gw->http->nconns);
        }
    } else if (e == ENFILE) {
        snprintf(why, sizeof(why), ": the system-wide file table is full");
    }
    char then[96] = "";
    if (pause) {
        snprintf(then, sizeof(then), "; not accepting for %dms at a time until this passes",
                 MG_WK_ACCEPT_PAUSE_MS);
    }
    char more[96] = "";
    if (w->acc.suppressed > 0) {
        snprintf(more, sizeof(more), " (%lld more failures since the last report)",
                 (long long) w->acc.suppressed);
    }
    mg_log(MG_LOG_WARN, NULL, "%s%s%s%s", w->acc.last_error, why, then, more);
    w->acc.announced = w->acc.announced || pause;
    w->acc.last_log_ms = now;
    w->acc.suppressed = 0;
    return pause;
}

static void
mg_wk_accept(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    mg_wk_t *w = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int c = accept4(fd, (struct sockaddr *) &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED) {
                continue;
            }
            if (e == EAGAIN || e == EWOULDBLOCK) {
                return;
            }
            if (!mg_wk_accept_failed(w, e)) {
                continue;
            }
            /* leave the waiting connections in the backlog: a sibling worker sharing the
             * socket, or this one after the pause, serves them */
            event_del(&w->accept_ev);
            struct timeval tv = {0, MG_WK_ACCEPT_PAUSE_MS * 1000};
            evtimer_add(&w->accept_pause_ev, &tv);
            w->acc.paused = true;
            w->acc.pauses++;
            return;
        }
        if (w->acc.episode_start_ms != 0) {
            /* logged at the level of its start, so whoever saw that sees this.  An
             * episode whose start was not logged (within MG_WK_ACCEPT_LOG_MS of the last
             * line) ends silently too: a worker hovering at its limit logs two lines per
             * interval, not two per pause */
            if (w->acc.announced) {
                mg_log(MG_LOG_WARN, NULL, "accepting connections again after %lld failed "
                                          "accept4() calls over %lldms (%s)",
                       (long long) w->acc.episode_failures,
                       (long long) (mg_time_mono_ms() - w->acc.episode_start_ms),
                       w->acc.last_error);
            }
            w->acc.episode_start_ms = 0;
            w->acc.episode_failures = 0;
            w->acc.announced = false;
        }
        mg_http_server_accept(w->gw->http, c, (struct sockaddr *) &ss);
    }
}

static void
mg_wk_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_wk_t *w = arg;
    int64_t now = mg_time_mono_ms();
    if (w->accepting) {
        if (now < w->accept_until) {
            return; /* still serving new requests (answered with connection: close) */
        }
        event_del(&w->accept_ev);
        w->accepting = false;
        mg_gw_drain(w->gw, true);
    }
    if (w->gw->http->nactive == 0 || now > w->drain_deadline) {
        if (w->gw->http->nactive > 0 && !w->drain_cut_said) {
            mg_log(MG_LOG_WARN, NULL, "drain timeout: %d requests still in flight are cut",
                   w->gw->http->nactive);
            w->drain_cut_said = true;
        }
        if (!mg_trace_flush(w->gw->otel_exp)) {
            return; /* the last spans are leaving (bounded by mg_trace_flush) */
        }
        event_base_loopbreak(w->base);
    }
}

static void
mg_wk_start_drain(mg_wk_t *w)
{
    if (w->draining) {
        return;
    }
    w->draining = true;
    mg_atomic_store32(&mg_shm->workers[w->args->index].state, MG_WSTATE_DRAINING);
    /* readiness turns 503 at once; new requests are still accepted for a short grace
     * (drain_accept_seconds) so a load balancer can take the instance out first */
    w->accepting = w->ctl != NULL && w->config->drain_accept_ms > 0;
    w->accept_until = mg_time_mono_ms() + w->config->drain_accept_ms;
    if (!w->accepting) {
        event_del(&w->accept_ev);
    }
    mg_gw_drain(w->gw, !w->accepting);
    w->drain_deadline = mg_time_mono_ms() + w->config->drain_accept_ms + w->config->drain_timeout_ms;
    event_assign(&w->drain_ev, w->base, -1, EV_PERSIST, mg_wk_drain_tick, w);
    struct timeval tv = {0, 20000};
    event_add(&w->drain_ev, &tv);
}

static void
mg_wk_on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    (void) sig;
    (void) what;
    mg_wk_start_drain(arg);
}

/* ---- run ---- */

int
mg_worker_run(const mg_worker_args_t *a)
{
    /* the master is gone (killed): so is the instance.  SIGKILL, not SIGTERM: a worker
     * stuck in a loop could not run a SIGTERM handler */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    mg_log_set_process("worker", a->index);
    mg_wk_t *w = mg_xcalloc(1, sizeof(*w));
    mg_wk = w;
    w->args = a;
    w->version = -1;
    w->config = mg_config_ref(a->config);
    w->config_gen = a->config_gen;
    w->built_gen = -1;
    w->base = event_base_new();
    mg_shm_worker_t *slot = &mg_shm->workers[a->index];
    mg_metrics_set_worker(a->index);
    mg_atomic_store32(&slot->pid, getpid());
    mg_atomic_store64(&slot->started_ms, mg_time_real_ms());
    mg_atomic_store64(&slot->version, -1);

    mg_gw_host_t host = {
        .commit = mg_wk_commit,
        .reload = mg_wk_reload,
        .state = mg_wk_state,
        .publish_state = mg_wk_publish_host,
        .store_status = mg_wk_store_status,
        .cooldown = mg_wk_cooldown,
        .costmap = mg_wk_costmap,
        .host = w,
        .ask_master = mg_wk_ask_master,
    };
    mg_spend_set_worker(a->index);
    w->gw = mg_gw_create(w->base, a->index, w->config, &host);
    w->ctl = mg_ctl_create(w->base, a->ctl_fd, mg_wk_on_msg, mg_wk_on_ctl_close, w);

    /* the store */
    const char *secret = getenv("LITELLM_SALT_KEY");
    if (secret == NULL || secret[0] == '\0') {
        secret = w->config->master_key;
    }
    mg_err_t err;
    mg_store_conf_t sc = {w->base, NULL, w->config->database_url, secret, a->index};
    char dir[PATH_MAX];
    if (w->config->database_url != NULL) {
        w->store = mg_store_pg_create(&sc, &err);
    } else {
        mg_config_state_dir(w->config, a->config_path, dir, sizeof(dir));
        sc.state_dir = dir;
        w->store = mg_store_journal_create(&sc, &err);
    }
    if (w->store == NULL) {
        snprintf(w->store_error, sizeof(w->store_error), "%s", err.msg);
        mg_log(MG_LOG_ERROR, NULL, "the registry store is unavailable (%s): config.yaml models "
                                   "serve, model changes through the API are refused", err.msg);
    } else {
        w->store->ops->watch(w->store, mg_wk_store_hint, mg_wk_store_reconnect, w);
    }
    if (w->config->redis_host != NULL) {
        mg_hint_redis_conf_t rc = {w->base,
                                   w->config->redis_host,
                                   w->config->redis_port,
                                   w->config->redis_username,
                                   w->config->redis_password,
                                   w->config->redis_db,
                                   "moongate:registry",
                                   mg_shm->instance_id,
                                   mg_wk_redis_hint,
                                   mg_wk_redis_reconnect,
                                   w,
                                   mg_wk_redis_cooldown};
        w->redis = mg_hint_redis_create(&rc, &err);
        if (w->redis == NULL) {
            mg_log(MG_LOG_ERROR, NULL, "Redis hints disabled: %s", err.msg);
        }
        /* rate limits shared by the replicas: their own connection, so a burst of admissions
         * never queues behind hints (and the other way round) */
        mg_limits_redis_conf_t lc = {
            .base = w->base,
            .host = w->config->redis_host,
            .port = w->config->redis_port,
            .username = w->config->redis_username,
            .password = w->config->redis_password,
            .db = w->config->redis_db,
            .instance_id = mg_shm->instance_id,
            .worker = a->index,
            .window_s = mg_admit_window_s(),
            .deadline_ms = w->config->rate_limit_redis_timeout_ms,
        };
        w->limits = mg_limits_redis_create(&lc, &err);
        if (w->limits == NULL) {
            mg_log(MG_LOG_ERROR, NULL, "rate limits across replicas disabled (limits hold per "
                                       "instance): %s", err.msg);
        }
        mg_admit_set_redis(w->limits);
    }

    event_assign(&w->accept_ev, w->base, a->listen_fd, EV_READ | EV_PERSIST, mg_wk_accept, w);
    event_add(&w->accept_ev, NULL);
    evtimer_assign(&w->accept_pause_ev, w->base, mg_wk_accept_resume, w);
    event_assign(&w->poll_ev, w->base, -1, EV_PERSIST, mg_wk_poll, w);
    struct timeval ptv = {w->config->registry_poll_ms / 1000, (w->config->registry_poll_ms % 1000) * 1000};
    event_add(&w->poll_ev, &ptv);
    event_assign(&w->state_ev, w->base, -1, EV_PERSIST, mg_wk_state_tick, w);
    struct timeval stv = {0, 250000};
    event_add(&w->state_ev, &stv);
    evsignal_assign(&w->sig_term, w->base, SIGTERM, mg_wk_on_sigterm, w);
    evsignal_add(&w->sig_term, NULL);

    mg_wk_sync(w);
    event_base_dispatch(w->base);

    /* drained */
    mg_atomic_store32(&slot->state, MG_WSTATE_DEAD);
    event_del(&w->poll_ev);
    event_del(&w->state_ev);
    event_del(&w->sig_term);
    if (w->draining) {
        event_del(&w->drain_ev);
    }
    if (w->retry_on) {
        event_del(&w->retry_ev);
    }
    event_del(&w->accept_ev);
    event_del(&w->accept_pause_ev);
    mg_ctl_flush_blocking(w->ctl);
    mg_gw_destroy(w->gw);
    mg_admit_set_redis(NULL);
    mg_limits_redis_destroy(w->limits);
    if (w->redis != NULL) {
        mg_hint_redis_destroy(w->redis);
    }
    if (w->store != NULL) {
        w->store->ops->destroy(w->store);
    }
    if (w->ctl != NULL) {
        mg_ctl_destroy(w->ctl);
    }
    mg_config_unref(w->config);
    event_base_free(w->base);
    free(w);
    return 0;
}
