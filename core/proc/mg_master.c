/*
 * mg_master.c -- see mg_master.h.
 */
#include "mg_master.h"

#include "../base/mg_scrub.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_metrics_litellm.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../gateway/mg_reqlog.h"
#include "../base/mg_util.h"
#include "../lua/mg_lua.h"
#include "../registry/mg_limits.h"
#include "../registry/mg_stats.h"
#include "../spend/mg_spend.h"
#include "mg_costload.h"
#include "mg_ctl.h"
#include "mg_worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int index;
    pid_t pid;                  /* 0 when not running */
    mg_ctl_t *ctl;              /* owned */
    int64_t applied_version;
    int64_t applied_gen;
    int64_t started_ms;
    int64_t backoff_ms;
    int crashes;
    struct event respawn;
    bool respawn_on;
} mg_mworker_t;

typedef struct mg_sync_s {
    struct mg_sync_s *next;
    int origin;                 /* worker that asked, -1 = the master itself (SIGHUP) */
    int64_t req;
    int64_t version;
    int64_t gen;
    int64_t deadline_ms;
    const char *kind;           /* "commit" or "reload" */
    json_t *extra;              /* owned: merged into the reply */
} mg_sync_t;

typedef struct {
    int origin;
    int64_t req;
    mg_config_t *cfg;           /* ref: the validated candidate */
    int committer;
    bool active;
    json_t *cost_note;          /* owned: what the reload did with the cost map (its answer) */
} mg_reload_t;

/* A POST /reload/model_cost_map waiting for the load in flight. */
typedef struct mg_cmwait_s {
    struct mg_cmwait_s *next;
    int origin;
    int64_t req;
} mg_cmwait_t;

typedef struct {
    struct event_base *base;
    const mg_master_args_t *args;
    mg_config_t *config;        /* ref */
    int64_t config_gen;
    int listen_fd;
    int n;
    mg_mworker_t *w;
    mg_sync_t *syncs;
    mg_reload_t reload;
    int64_t reload_seq;
    bool shutting_down;
    int64_t shutdown_deadline;
    int64_t spend_deadline;     /* workers gone: until then the spend sink may still ship */
    int sig_pipe[2];            /* self-pipe: signal handlers write the signal number */
    struct event sig_ev, tick;
    mg_costload_t *costload;    /* owned: the cost map's sources, checks, record, schedule */
    json_t *store_cost_keys;    /* owned: what the stored models price by (workers report) */
    mg_cmwait_t *cm_waiters;    /* malloc list: callers of the cost map reload in flight */
    bool cm_active;             /* a cost map reload (not a config reload) holds m->reload */
    bool reload_queued;         /* a config reload waits for that cost map reload to end */
    int queued_origin;
    int64_t queued_req;
} mg_master_t;

static mg_master_t *mg_master_self;

static void mg_master_spawn(mg_master_t *m, int i);
static void mg_master_check_syncs(mg_master_t *m);

/* ---- listening socket ---- */

static int
mg_master_listen(const char *host, int port, int *bound_port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        mg_log(MG_LOG_ERROR, NULL, "cannot resolve --host \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) {
            int zero = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) {
            break;
        }
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    if (fd < 0) {
        mg_log(MG_LOG_ERROR, NULL, "cannot listen on %s:%d (%d: %s)", host, port, errno,
               strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *) &ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                                : ((struct sockaddr_in6 *) &ss)->sin6_port);
    return fd;
}

/* ---- messages ---- */

static void
mg_master_send(mg_master_t *m, int i, json_t *msg)
{
    if (i >= 0 && i < m->n && m->w[i].ctl != NULL) {
        mg_ctl_send(m->w[i].ctl, msg);
    }
}

static void
mg_master_broadcast(mg_master_t *m, json_t *msg, int except)
{
    for (int i = 0; i < m->n; i++) {
        if (i != except) {
            mg_master_send(m, i, msg);
        }
    }
}

static void
mg_master_sync_add(mg_master_t *m, int origin, int64_t req, int64_t version, int64_t gen,
                   const char *kind, json_t *extra)
{
    mg_sync_t *s = mg_xcalloc(1, sizeof(*s));
    s->origin = origin;
    s->req = req;
    s->version = version;
    s->gen = gen;
    s->kind = kind;
    s->extra = extra;
    s->deadline_ms = mg_time_mono_ms() + m->config->mutation_wait_ms;
    s->next = m->syncs;
    m->syncs = s;
    mg_master_check_syncs(m);
}

static void
mg_master_sync_reply(mg_master_t *m, mg_sync_t *s, bool ok)
{
    json_t *lag = json_array();
    for (int i = 0; i < m->n; i++) {
        if (m->w[i].applied_version < s->version || m->w[i].applied_gen < s->gen) {
            json_array_append_new(lag, json_pack("{s:i,s:i,s:I,s:I}", "worker", i, "pid",
                                                 (int) m->w[i].pid, "version",
                                                 (json_int_t) m->w[i].applied_version,
                                                 "config_generation",
                                                 (json_int_t) m->w[i].applied_gen));
        }
    }
    if (s->origin < 0) {
        if (ok) {
            mg_log(MG_LOG_NOTICE, NULL, "config reloaded: registry version %lld, config "
                                        "generation %lld, applied by every worker",
                   (long long) s->version, (long long) s->gen);
        } else {
            char *l = json_dumps(lag, JSON_COMPACT);
            mg_log(MG_LOG_ERROR, NULL, "config reload committed at version %lld but workers lag: %s",
                   (long long) s->version, l);
            free(l);
        }
        json_decref(lag);
        return;
    }
    json_t *msg = json_pack("{s:s,s:I,s:b,s:I,s:I,s:o}", "op", "sync_done", "req",
                            (json_int_t) s->req, "ok", ok, "version", (json_int_t) s->version,
                            "config_generation", (json_int_t) s->gen, "lagging", lag);
    if (s->extra != NULL) {
        json_object_update(msg, s->extra);
    }
    mg_master_send(m, s->origin, msg);
    json_decref(msg);
}

static void
mg_master_check_syncs(mg_master_t *m)
{
    int64_t now = mg_time_mono_ms();
    mg_sync_t **pp = &m->syncs;
    while (*pp != NULL) {
        mg_sync_t *s = *pp;
        bool all = true;
        for (int i = 0; i < m->n; i++) {
            if (m->w[i].applied_version < s->version || m->w[i].applied_gen < s->gen) {
                all = false;
            }
        }
        if (all || now >= s->deadline_ms || (s->origin >= 0 && m->w[s->origin].pid == 0)) {
            mg_master_sync_reply(m, s, all);
            *pp = s->next;
            json_decref(s->extra);
            free(s);
            continue;
        }
        pp = &s->next;
    }
}

static int
mg_master_pick_committer(mg_master_t *m, int prefer)
{
    if (prefer >= 0 && prefer < m->n && m->w[prefer].pid != 0 && m->w[prefer].ctl != NULL) {
        return prefer;
    }
    for (int i = 0; i < m->n; i++) {
        if (m->w[i].pid != 0 && m->w[i].ctl != NULL && m->w[i].applied_version >= 0) {
            return i;
        }
    }
    return -1;
}

/* Answers a worker's call with an error (status 0: the worker's default, 400). */
static void
mg_master_answer_error(mg_master_t *m, int origin, int64_t req, const char *msg, int status)
{
    json_t *r = json_pack("{s:s,s:I,s:b,s:s}", "op", "sync_done", "req", (json_int_t) req, "ok", 0,
                          "error", msg);
    if (status > 0) {
        json_object_set_new(r, "status", json_integer(status));
    }
    mg_master_send(m, origin, r);
    json_decref(r);
}

/* Answers a worker's call at once with the route's JSON answer. */
static void
mg_master_answer_ok(mg_master_t *m, int origin, int64_t req, json_t *result)
{
    int64_t v = 0;
    for (int i = 0; i < m->n; i++) {
        if (m->w[i].applied_version > v) {
            v = m->w[i].applied_version;
        }
    }
    json_t *r = json_pack("{s:s,s:I,s:b,s:I,s:I,s:O}", "op", "sync_done", "req", (json_int_t) req,
                          "ok", 1, "version", (json_int_t) v, "config_generation",
                          (json_int_t) m->config_gen, "result", result);
    mg_master_send(m, origin, r);
    json_decref(r);
}

static void
mg_master_reload_fail(mg_master_t *m, int origin, int64_t req, const char *msg)
{
    mg_ml_refused("config");
    if (origin < 0) {
        mg_log(MG_LOG_ERROR, NULL, "config reload refused, the running config keeps serving: %s", msg);
        return;
    }
    mg_master_answer_error(m, origin, req, msg, 0);
}

/* The master's log lines hide the config's secrets (workers use their snapshot's). */
static void
mg_master_scrub(const mg_config_t *cfg)
{
    mg_scrub_set_t *set = mg_registry_config_secrets(cfg);
    mg_scrub_set_global(set);
    mg_scrub_set_unref(set);
}

/* Where the cost map a config carries came from ("builtin", "file", "url"). */
static const char *
mg_master_cost_origin(const mg_config_t *cfg)
{
    const char *o = json_string_value(json_object_get(mg_config_costmap_node(cfg), "origin"));
    return o != NULL ? o : "builtin";
}

/* Makes cfg (the reference is taken over) current and sends it to every worker. */
static void
mg_master_install(mg_master_t *m, mg_config_t *cfg, int64_t version)
{
    if (cfg->nlatency_buckets != m->config->nlatency_buckets ||
        (cfg->nlatency_buckets > 0 &&
         memcmp(cfg->latency_buckets, m->config->latency_buckets,
                (size_t) cfg->nlatency_buckets * sizeof(double)) != 0)) {
        mg_log(MG_LOG_WARN, NULL, "litellm_settings.prometheus_latency_buckets changed: the "
                                  "histograms keep the buckets they started with until a restart");
    }
    mg_config_unref(m->config);
    m->config = cfg;
    mg_log_set_json(m->config->json_logs);
    mg_spend_master_set_config(m->config);
    m->config_gen++;
    mg_master_scrub(m->config);
    json_t *apply = json_pack("{s:s,s:I,s:I,s:O,s:s}", "op", "apply", "version",
                              (json_int_t) version, "config_generation", (json_int_t) m->config_gen,
                              "config", m->config->root, "path",
                              m->args->config_path ? m->args->config_path : "");
    mg_master_broadcast(m, apply, -1);
    json_decref(apply);
    mg_costload_applied(m->costload, m->config->costmap, mg_master_cost_origin(m->config));
    mg_costload_configure(m->costload, m->config);
}

/* Installs the candidate config as current and tells every worker. */
static void
mg_master_reload_apply(mg_master_t *m, int64_t version, bool bumped)
{
    mg_reload_t *rl = &m->reload;
    mg_config_t *cfg = rl->cfg;
    rl->cfg = NULL;
    mg_master_install(m, cfg, version);
    json_t *extra = json_pack("{s:s,s:I,s:b,s:i}", "message", "config reloaded", "models",
                              (json_int_t) m->config->nmodels, "version_bumped", bumped,
                              "warnings", m->config->nwarnings);
    if (rl->cost_note != NULL) {
        json_object_set_new(extra, "cost_map", rl->cost_note);
        rl->cost_note = NULL;
    }
    rl->active = false;
    mg_master_sync_add(m, rl->origin, rl->req, version, m->config_gen, "reload", extra);
}

/* The highest registry version a worker applied (a reload that does not move it). */
static int64_t
mg_master_applied_version(const mg_master_t *m)
{
    int64_t v = 0;
    for (int i = 0; i < m->n; i++) {
        if (m->w[i].applied_version > v) {
            v = m->w[i].applied_version;
        }
    }
    return v;
}

static void mg_master_reload_commit(mg_master_t *m);

/*
 * A config reload re-reads the cost map's source too.  A refused map does not stop the
 * config: it goes out with the map in use, and the answer says the map was refused (the
 * refusal is logged and recorded by mg_costload).
 */
static void
mg_master_reload_costmap(void *ud, int rc, json_t *node, const mg_costmap_t *map, bool unchanged,
                         const mg_err_t *err)
{
    (void) map;
    mg_master_t *m = ud;
    mg_reload_t *rl = &m->reload;
    json_t *carry = rc == MG_OK ? node : mg_config_costmap_node(m->config);
    mg_config_t *cand = NULL;
    mg_err_t e2;
    if (mg_config_with_costmap(rl->cfg, carry, &cand, &e2) != MG_OK) {
        mg_config_unref(rl->cfg);
        rl->cfg = NULL;
        rl->active = false;
        mg_master_reload_fail(m, rl->origin, rl->req, e2.msg);
        return;
    }
    mg_config_unref(rl->cfg);
    rl->cfg = cand;
    json_decref(rl->cost_note);
    const mg_costmap_t *cm = cand->costmap;
    if (rc == MG_OK) {
        rl->cost_note = json_pack("{s:s,s:s,s:s,s:I}", "status",
                                  unchanged ? "unchanged" : "applied", "source", cm->source,
                                  "sha256", cm->sha256, "models", (json_int_t) cm->count);
    } else {
        rl->cost_note = json_pack("{s:s,s:s,s:s,s:s}", "status", "refused", "error", err->msg,
                                  "kept_source", cm->source, "kept_sha256", cm->sha256);
    }
    mg_master_reload_commit(m);
}

static void
mg_master_reload(mg_master_t *m, int origin, int64_t req)
{
    if (m->reload.active && m->cm_active && !m->reload_queued) {
        /* a cost map reload (the schedule's, say) is under way: this one follows it */
        m->reload_queued = true;
        m->queued_origin = origin;
        m->queued_req = req;
        return;
    }
    if (m->reload.active) {
        mg_master_reload_fail(m, origin, req, "another config reload is in progress; retry");
        return;
    }
    mg_config_t *cfg = NULL;
    mg_err_t err;
    mg_config_opts_t opts = m->args->config_opts;
    if (mg_config_load(m->args->config_path, &opts, &cfg, &err) != MG_OK ||
        mg_lua_check_config(cfg, &err) != MG_OK || mg_spend_check_config(cfg, &err) != MG_OK) {
        mg_config_unref(cfg);
        mg_master_reload_fail(m, origin, req, err.msg);
        return;
    }
    m->reload.active = true;
    m->reload.origin = origin;
    m->reload.req = req;
    m->reload.cfg = cfg;
    if (mg_costload_start(m->costload, MG_COSTLOAD_CONFIG, cfg, m->config->costmap,
                          m->store_cost_keys, mg_master_reload_costmap, m) != MG_OK) {
        /* cannot happen (m->reload.active serialises loads); keep the map in use */
        mg_master_reload_costmap(m, MG_OK, mg_config_costmap_node(m->config), NULL, true, NULL);
    }
}

/* The rest of a config reload, once its cost map is settled. */
static void
mg_master_reload_commit(mg_master_t *m)
{
    int origin = m->reload.origin;
    mg_config_t *cfg = m->reload.cfg;
    /* the version moves forward through the store, so every replica sees a new version */
    int c = mg_master_pick_committer(m, origin);
    m->reload.committer = c;
    if (c < 0) {
        mg_master_reload_apply(m, mg_master_applied_version(m), false);
        return;
    }
    json_t *msg = json_pack("{s:s,s:I,s:s}", "op", "commit_bump", "req", (json_int_t) ++m->reload_seq,
                            "hash", cfg->hash);
    mg_master_send(m, c, msg);
    json_decref(msg);
}

/* The answer to a worker's question goes back to the same worker process, if it still runs. */
typedef struct {
    int index;
    pid_t pid;
    int64_t req;
} mg_master_ask_t;

static void
mg_master_answer(void *ctx, json_t *answer)
{
    mg_master_ask_t *a = ctx;
    mg_master_t *m = mg_master_self;
    if (m != NULL && a->index < m->n && m->w[a->index].pid == a->pid) {
        json_t *msg = json_pack("{s:s,s:I,s:O}", "op", "answer", "req", (json_int_t) a->req,
                                "answer", answer);
        mg_master_send(m, a->index, msg);
        json_decref(msg);
    }
    free(a);
}

/* ---- the cost map alone (POST /reload/model_cost_map, the schedule) ---- */

static void
mg_master_costmap_loaded(void *ud, int rc, json_t *node, const mg_costmap_t *map, bool unchanged,
                         const mg_err_t *err)
{
    (void) map;
    mg_master_t *m = ud;
    mg_cmwait_t *waiters = m->cm_waiters;
    m->cm_waiters = NULL;
    m->cm_active = false;
    m->reload.active = false;
    char msg[MG_ERR_MSG_MAX + 64];
    int status = 0;
    json_t *result = NULL;
    if (rc != MG_OK) {
        snprintf(msg, sizeof(msg), "Failed to reload model cost map: %s", err->msg);
        status = err->status;
    } else if (unchanged) {
        /* the same bytes from the same source: nothing to send, every worker has them */
        result = json_object();
    } else {
        mg_config_t *cfg = NULL;
        mg_err_t e2;
        if (mg_config_with_costmap(m->config, node, &cfg, &e2) != MG_OK) {
            snprintf(msg, sizeof(msg), "Failed to reload model cost map: %s", e2.msg);
            status = 500;
            mg_log(MG_LOG_ERROR, NULL, "%s", msg);
        } else {
            mg_master_install(m, cfg, mg_master_applied_version(m));
            result = json_object();
        }
    }
    if (result != NULL) {
        const mg_costmap_t *cm = m->config->costmap;
        char ts[40];
        mg_fmt_iso_utc(mg_time_real_ms(), ts, sizeof(ts));
        char text[160];
        snprintf(text, sizeof(text), "Price data reloaded successfully! %zu models updated.",
                 cm->count);
        json_object_set_new(result, "status", json_string("success"));
        json_object_set_new(result, "message", json_string(text));
        json_object_set_new(result, "timestamp", json_string(ts));
        json_object_set_new(result, "models_count", json_integer((json_int_t) cm->count));
        json_object_set_new(result, "moongate",
                            json_pack("{s:s,s:s,s:s,s:b,s:I}", "source", cm->source, "origin",
                                      mg_master_cost_origin(m->config), "sha256", cm->sha256,
                                      "unchanged", unchanged, "config_generation",
                                      (json_int_t) m->config_gen));
    }
    int64_t v = mg_master_applied_version(m);
    while (waiters != NULL) {
        mg_cmwait_t *w = waiters;
        waiters = w->next;
        if (result == NULL) {
            mg_master_answer_error(m, w->origin, w->req, msg, status > 0 ? status : 500);
        } else {
            /* answered once every worker applied the new config generation */
            mg_master_sync_add(m, w->origin, w->req, v, m->config_gen, "costmap",
                               json_pack("{s:O}", "result", result));
        }
        free(w);
    }
    json_decref(result);
    if (m->reload_queued) {
        m->reload_queued = false;
        mg_master_reload(m, m->queued_origin, m->queued_req);
    }
}

static void
mg_master_costmap_reload(mg_master_t *m, int origin, int64_t req, mg_costload_trigger_t why)
{
    if (m->reload.active && !m->cm_active) {
        if (origin >= 0) {
            mg_master_answer_error(m, origin, req, "Failed to reload model cost map: a config "
                                                   "reload is in progress; retry", 409);
        }
        return;
    }
    if (origin >= 0) {
        mg_cmwait_t *w = mg_xcalloc(1, sizeof(*w));
        w->origin = origin;
        w->req = req;
        w->next = m->cm_waiters;
        m->cm_waiters = w;
    }
    if (m->cm_active) {
        return; /* answered with the load in flight */
    }
    m->cm_active = true;
    m->reload.active = true;
    if (mg_costload_start(m->costload, why, m->config, m->config->costmap, m->store_cost_keys,
                          mg_master_costmap_loaded, m) != MG_OK) {
        mg_err_t e;
        mg_err_set(&e, MG_ERR_INTERNAL, "a cost map load is already in flight; retry");
        e.status = 409;
        mg_master_costmap_loaded(m, MG_ERROR, NULL, NULL, false, &e);
    }
}

/* {"op":"costmap","action":"reload"|"schedule"|"unschedule","hours":N} from a worker */
static void
mg_master_costmap_op(mg_master_t *m, int origin, json_t *msg)
{
    int64_t req = json_integer_value(json_object_get(msg, "req"));
    const char *action = json_string_value(json_object_get(msg, "action"));
    if (action == NULL) {
        return;
    }
    if (strcmp(action, "reload") == 0) {
        mg_master_costmap_reload(m, origin, req, MG_COSTLOAD_API);
        return;
    }
    char ts[40];
    mg_fmt_iso_utc(mg_time_real_ms(), ts, sizeof(ts));
    if (strcmp(action, "schedule") == 0) {
        double h = json_number_value(json_object_get(msg, "hours"));
        mg_costload_schedule(m->costload, h);
        char hs[64], text[160];
        if (floor(h) == h && h < 1e9) {
            snprintf(hs, sizeof(hs), "%lld", (long long) h);
        } else {
            mg_fmt_pyfloat(h, hs, sizeof(hs));
        }
        snprintf(text, sizeof(text), "Model cost map reload scheduled for every %s hours", hs);
        json_t *st = mg_costload_schedule_json(m->costload);
        json_t *res = json_pack("{s:s,s:s,s:O,s:s,s:O}", "message", text, "status", "success",
                                "interval_hours", json_object_get(st, "interval_hours"),
                                "timestamp", ts, "next_run", json_object_get(st, "next_run"));
        mg_master_answer_ok(m, origin, req, res);
        json_decref(res);
        json_decref(st);
        mg_log(MG_LOG_NOTICE, NULL, "cost map reload scheduled every %s hours", hs);
    } else if (strcmp(action, "unschedule") == 0) {
        mg_costload_schedule(m->costload, 0);
        json_t *res = json_pack("{s:s,s:s,s:s}", "message", "Model cost map reload schedule "
                                "cancelled", "status", "success", "timestamp", ts);
        mg_master_answer_ok(m, origin, req, res);
        json_decref(res);
        mg_log(MG_LOG_NOTICE, NULL, "cost map reload schedule cancelled");
    }
}

static void
mg_master_on_msg(void *ud, json_t *msg)
{
    mg_mworker_t *w = ud;
    mg_master_t *m = mg_master_self;
    const char *op = json_string_value(json_object_get(msg, "op"));
    if (op == NULL) {
        return;
    }
    if (strcmp(op, "applied") == 0) {
        json_t *keys = json_object_get(msg, "cost_keys");
        if (json_is_array(keys)) {
            json_decref(m->store_cost_keys);
            m->store_cost_keys = json_incref(keys);
        }
        w->applied_version = json_integer_value(json_object_get(msg, "version"));
        w->applied_gen = json_integer_value(json_object_get(msg, "config_generation"));
        if (w->applied_version >= 0 && w->crashes > 0 && mg_time_real_ms() - w->started_ms > 5000) {
            w->crashes = 0;
            w->backoff_ms = 0;
        }
        mg_master_check_syncs(m);
    } else if (strcmp(op, "publish") == 0) {
        int64_t v = json_integer_value(json_object_get(msg, "version"));
        json_t *hint = json_pack("{s:s,s:I}", "op", "hint", "version", (json_int_t) v);
        mg_master_broadcast(m, hint, -1);
        json_decref(hint);
        mg_master_sync_add(m, w->index, json_integer_value(json_object_get(msg, "req")), v, 0,
                           "commit", NULL);
    } else if (strcmp(op, "reload") == 0) {
        mg_master_reload(m, w->index, json_integer_value(json_object_get(msg, "req")));
    } else if (strcmp(op, "spend_query") == 0) {
        mg_master_ask_t *a = mg_xcalloc(1, sizeof(*a));
        a->index = w->index;
        a->pid = (pid_t) json_integer_value(json_object_get(msg, "pid"));
        a->req = json_integer_value(json_object_get(msg, "req"));
        mg_spend_master_query(json_object_get(msg, "q"), mg_master_answer, a);
    } else if (strcmp(op, "costmap") == 0) {
        mg_master_costmap_op(m, w->index, msg);
    } else if (strcmp(op, "bump_done") == 0) {
        if (!m->reload.active) {
            return;
        }
        bool ok = json_is_true(json_object_get(msg, "ok"));
        int64_t v = json_integer_value(json_object_get(msg, "version"));
        if (!ok) {
            const char *e = json_string_value(json_object_get(msg, "error"));
            mg_log(MG_LOG_WARN, NULL, "config reload: the store could not record a new version (%s); "
                                      "applying the config without moving the registry version",
                   e ? e : "?");
        }
        mg_master_reload_apply(m, v, ok);
    }
}

static void
mg_master_on_close(void *ud)
{
    mg_mworker_t *w = ud;
    /* the process exit (SIGCHLD) does the bookkeeping; just drop the channel */
    mg_ctl_destroy(w->ctl);
    w->ctl = NULL;
}

/* ---- workers ---- */

static void
mg_master_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_mworker_t *w = arg;
    w->respawn_on = false;
    if (!mg_master_self->shutting_down) {
        mg_master_spawn(mg_master_self, w->index);
    }
}

static void
mg_master_spawn(mg_master_t *m, int i)
{
    mg_mworker_t *w = &m->w[i];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        mg_log(MG_LOG_ERROR, NULL, "socketpair() failed (%d: %s)", errno, strerror(errno));
        return;
    }
    /* before fork: a worker that loads fast sets "ready" itself, and must not be overwritten */
    mg_atomic_store32(&mg_shm->workers[i].loaded_once, 0);
    mg_atomic_store32(&mg_shm->workers[i].state, MG_WSTATE_STARTING);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        mg_log(MG_LOG_ERROR, NULL, "fork() failed (%d: %s)", errno, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return;
    }
    if (pid == 0) {
        /* child: drop everything of the master's loop without touching the parent's epoll */
        close(sv[0]);
        /* a private copy of the master's loop, then freed: the parent's epoll set is untouched */
        event_reinit(m->base);
        event_base_free(m->base);
        for (int k = 0; k < m->n; k++) {
            if (m->w[k].ctl != NULL) {
                /* the master's end of a sibling's channel: not ours (the struct stays behind) */
                close(mg_ctl_fd(m->w[k].ctl));
            }
        }
        close(m->sig_pipe[0]);
        close(m->sig_pipe[1]);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        sigprocmask(SIG_SETMASK, &old, NULL);
        mg_worker_args_t wa;
        memset(&wa, 0, sizeof(wa));
        wa.index = i;
        wa.listen_fd = m->listen_fd;
        wa.ctl_fd = sv[1];
        wa.config = m->config;
        wa.config_gen = m->config_gen;
        wa.config_path = m->args->config_path;
        wa.config_opts = m->args->config_opts;
        exit(mg_worker_run(&wa));
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    w->pid = pid;
    w->started_ms = mg_time_real_ms();
    w->applied_version = -1;
    w->applied_gen = -1;
    w->ctl = mg_ctl_create(m->base, sv[0], mg_master_on_msg, mg_master_on_close, w);
    mg_atomic_store32(&mg_shm->workers[i].pid, pid);
    mg_log(MG_LOG_INFO, NULL, "worker %d started (pid %d)", i, (int) pid);
}

/* series in shared memory for the whole instance (about 400 bytes each) */
#define MG_MASTER_MAX_SERIES 16384
/* counters for keys, teams, users, end users (and per-model limits), about 270 bytes each */
#define MG_MASTER_LIMIT_SLOTS 32768

static void
mg_master_reap(mg_master_t *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            break;
        }
        for (int i = 0; i < m->n; i++) {
            mg_mworker_t *w = &m->w[i];
            if (w->pid != pid) {
                continue;
            }
            w->pid = 0;
            w->applied_version = -1;
            w->applied_gen = -1;
            if (w->ctl != NULL) {
                mg_ctl_destroy(w->ctl);
                w->ctl = NULL;
            }
            mg_atomic_store32(&mg_shm->workers[i].state, MG_WSTATE_DEAD);
            mg_atomic_store32(&mg_shm->workers[i].pid, 0);
            mg_metrics_worker_exited(i); /* its gauges go, rather than linger stale */
            if (m->shutting_down) {
                mg_log(MG_LOG_INFO, NULL, "worker %d (pid %d) exited", i, (int) pid);
                break;
            }
            int64_t lived = mg_time_real_ms() - w->started_ms;
            if (WIFSIGNALED(status)) {
                mg_log(MG_LOG_ERROR, NULL, "worker %d (pid %d) killed by signal %d after %lldms; "
                                           "respawning", i, (int) pid, WTERMSIG(status),
                       (long long) lived);
            } else {
                mg_log(MG_LOG_ERROR, NULL, "worker %d (pid %d) exited with status %d after %lldms; "
                                           "respawning", i, (int) pid, WEXITSTATUS(status),
                       (long long) lived);
            }
            /* crash loop: back off (100 ms doubling, at most 10 s); otherwise at once */
            if (lived < 5000) {
                w->crashes++;
                w->backoff_ms = w->backoff_ms == 0 ? 100 : w->backoff_ms * 2;
                if (w->backoff_ms > 10000) {
                    w->backoff_ms = 10000;
                }
            } else {
                w->crashes = 0;
                w->backoff_ms = 0;
            }
            int64_t delay = w->crashes > 1 ? w->backoff_ms : 0;
            evtimer_assign(&w->respawn, m->base, mg_master_respawn_cb, w);
            struct timeval tv = {(time_t) (delay / 1000), (suseconds_t) ((delay % 1000) * 1000)};
            evtimer_add(&w->respawn, &tv);
            w->respawn_on = true;
            break;
        }
    }
    mg_master_check_syncs(m);
}

/* ---- signals ---- */

static void
mg_master_shutdown(mg_master_t *m)
{
    if (m->shutting_down) {
        return;
    }
    m->shutting_down = true;
    mg_atomic_store32(&mg_shm->draining, 1);
    m->shutdown_deadline = mg_time_mono_ms() + m->config->drain_accept_ms +
                           m->config->drain_timeout_ms + 2000;
    mg_log(MG_LOG_NOTICE, NULL, "shutting down: draining %d workers", m->n);
    for (int i = 0; i < m->n; i++) {
        if (m->w[i].respawn_on) {
            evtimer_del(&m->w[i].respawn);
            m->w[i].respawn_on = false;
        }
        if (m->w[i].pid != 0) {
            kill(m->w[i].pid, SIGTERM);
        }
    }
}

static int mg_master_sig_fd = -1;

static void
mg_master_sig_handler(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char) sig;
    ssize_t n = write(mg_master_sig_fd, &b, 1);
    (void) n; /* a full pipe already has a wake-up pending */
    errno = e;
}

static void
mg_master_on_signal_pipe(evutil_socket_t fd, short what, void *arg);

static void
mg_master_on_signal(int sig, mg_master_t *m)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        mg_master_shutdown(m);
        break;
    case SIGHUP:
        mg_log(MG_LOG_NOTICE, NULL, "SIGHUP: reloading %s", m->args->config_path ? m->args->config_path : "(no config)");
        mg_master_reload(m, -1, 0);
        break;
    case SIGCHLD:
        mg_master_reap(m);
        break;
    }
}

static void
mg_master_on_signal_pipe(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            mg_master_on_signal(buf[i], arg);
        }
    }
}

static void
mg_master_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_master_t *m = arg;
    mg_master_check_syncs(m);
    if (!m->shutting_down && !m->reload.active && mg_costload_due(m->costload)) {
        mg_master_costmap_reload(m, -1, 0, MG_COSTLOAD_SCHEDULE);
    }
    if (m->shutting_down) {
        bool any = false;
        for (int i = 0; i < m->n; i++) {
            if (m->w[i].pid != 0) {
                any = true;
                if (mg_time_mono_ms() > m->shutdown_deadline) {
                    kill(m->w[i].pid, SIGKILL);
                }
            }
        }
        if (!any) {
            /* the spend rows of the last requests reach the disk, and the database if it can
             * take them within 5 s */
            if (m->spend_deadline == 0) {
                m->spend_deadline = mg_time_mono_ms() + 5000;
            }
            if (mg_spend_master_quiesce(m->spend_deadline)) {
                event_base_loopbreak(m->base);
            }
        }
    }
}

int
mg_master_run(const mg_master_args_t *args)
{
    mg_master_t m;
    memset(&m, 0, sizeof(m));
    mg_master_self = &m;
    m.args = args;
    m.config = mg_config_ref(args->config);
    mg_master_scrub(m.config);
    m.n = args->num_workers;
    if (m.n > MG_SHM_MAX_WORKERS) {
        mg_log(MG_LOG_ERROR, NULL, "--num_workers %d is more than the maximum %d", m.n,
               MG_SHM_MAX_WORKERS);
        return 1;
    }
    /* untouched pages of the shared region cost no memory: size it for the tables' worst case */
    if (mg_shm_create(m.n, 64 * 1024 * 1024 + mg_spend_shm_size(m.config, m.n)) != 0 ||
        mg_stats_init(4096) != 0 || mg_limits_init(MG_MASTER_LIMIT_SLOTS) != 0) {
        mg_log(MG_LOG_ERROR, NULL, "cannot set up shared memory");
        return 1;
    }
    mg_err_t serr;
    if (mg_spend_init(m.config, args->config_path, m.n, &serr) != MG_OK) {
        mg_log(MG_LOG_ERROR, NULL, "cannot set up spend logs: %s", serr.msg);
        return 1;
    }
    mg_err_t merr;
    if (mg_metrics_init(MG_MASTER_MAX_SERIES, 0, &merr) != MG_OK ||
        mg_metrics_litellm_declare(m.config->latency_buckets, m.config->nlatency_buckets,
                                   &merr) != MG_OK) {
        mg_log(MG_LOG_ERROR, NULL, "cannot set up metrics: %s", merr.msg);
        return 1;
    }
    mg_shm->started_ms = mg_time_real_ms();
    mg_err_t rlerr;
    if (mg_reqlog_init(m.n, &rlerr) != MG_OK) {
        /* the admin page's recent requests only: serving is not affected */
        mg_log(MG_LOG_WARN, NULL, "recent requests are not recorded: %s", rlerr.msg);
    }
    int port = 0;
    m.listen_fd = mg_master_listen(args->host, args->port, &port);
    if (m.listen_fd < 0) {
        return 1;
    }
    m.base = event_base_new();
    m.w = mg_xcalloc((size_t) m.n, sizeof(mg_mworker_t));
    /* the cost map, before any worker: they start with the map the source names */
    m.costload = mg_costload_create(m.base);
    json_t *cm_node = mg_costload_startup(m.costload, m.config);
    if (cm_node != NULL) {
        mg_config_t *with = NULL;
        mg_err_t cm_err;
        if (mg_config_with_costmap(m.config, cm_node, &with, &cm_err) == MG_OK) {
            mg_config_unref(m.config);
            m.config = with;
        } else {
            mg_log(MG_LOG_ERROR, NULL, "cost map: %s; starting with the built-in map", cm_err.msg);
        }
        json_decref(cm_node);
    }
    mg_costload_configure(m.costload, m.config);
    mg_costload_applied(m.costload, m.config->costmap, mg_master_cost_origin(m.config));
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(m.sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        mg_log(MG_LOG_ERROR, NULL, "pipe2() failed (%d: %s)", errno, strerror(errno));
        return 1;
    }
    mg_master_sig_fd = m.sig_pipe[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = mg_master_sig_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    event_assign(&m.sig_ev, m.base, m.sig_pipe[0], EV_READ | EV_PERSIST, mg_master_on_signal_pipe, &m);
    event_add(&m.sig_ev, NULL);
    event_assign(&m.tick, m.base, -1, EV_PERSIST, mg_master_tick, &m);
    struct timeval tv = {0, 100000};
    event_add(&m.tick, &tv);
    mg_spend_master_start(m.base);
    for (int i = 0; i < m.n; i++) {
        m.w[i].index = i;
        m.w[i].applied_version = -1;
        m.w[i].applied_gen = -1;
        mg_master_spawn(&m, i);
    }
    mg_log(MG_LOG_NOTICE, NULL, "moongate %s listening on http://%s:%d with %d worker%s (%zu "
                                "models from %s)", MG_VERSION, args->host, port, m.n,
           m.n == 1 ? "" : "s", m.config->nmodels,
           args->config_path ? args->config_path : "no config");
    if (m.config->database_url == NULL) {
        char sd[PATH_MAX];
        mg_config_state_dir(m.config, args->config_path, sd, sizeof(sd));
        /* always said: where the embedded store keeps what the model API changes */
        printf("moongate: embedded store in %s\n", sd);
    }
    /* a machine-readable line for scripts and tests */
    printf("moongate: listening on %s:%d\n", args->host, port);
    fflush(stdout);
    event_base_dispatch(m.base);
    mg_spend_master_stop();
    mg_log(MG_LOG_NOTICE, NULL, "stopped");
    while (m.syncs != NULL) {
        mg_sync_t *s = m.syncs;
        m.syncs = s->next;
        json_decref(s->extra);
        free(s);
    }
    for (int i = 0; i < m.n; i++) {
        if (m.w[i].ctl != NULL) {
            mg_ctl_destroy(m.w[i].ctl);
        }
    }
    mg_costload_destroy(m.costload);
    while (m.cm_waiters != NULL) {
        mg_cmwait_t *cw = m.cm_waiters;
        m.cm_waiters = cw->next;
        free(cw);
    }
    json_decref(m.store_cost_keys);
    json_decref(m.reload.cost_note);
    mg_config_unref(m.reload.cfg);
    mg_config_unref(m.config);
    free(m.w);
    close(m.listen_fd);
    event_del(&m.sig_ev);
    close(m.sig_pipe[0]);
    close(m.sig_pipe[1]);
    event_base_free(m.base);
    return 0;
}
