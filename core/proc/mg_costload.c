/*
 * mg_costload.c -- see mg_costload.h.
 *
 * Reads top-down: the source the environment names, the checks a map's bytes must pass,
 * a load (started, then finished from the loop), the record and its publication, the
 * schedule.
 */
#include "mg_costload.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_metrics_litellm.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../net/mg_fetch.h"
#include "../registry/mg_registry.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    MG_CL_BUILTIN = 0,
    MG_CL_FILE,
    MG_CL_URL,
} mg_cl_kind_t;

static const char *const mg_cl_kind_names[] = {"builtin", "file", "url"};
static const char *const mg_cl_trigger_names[] = {"startup", "api", "schedule", "config_reload"};

/* the shortest interval a schedule may have, whatever it asks for */
#define MG_CL_MIN_INTERVAL_MS 1000

typedef struct {
    mg_cl_kind_t kind;
    char location[2048];            /* a path (file:// removed) or a URL, as configured */
    char display[2048];             /* the same with a URL's query values hidden */
    const char *env;                /* the variable that chose it, or NULL */
    bool forced_local;              /* LITELLM_LOCAL_MODEL_COST_MAP=True */
} mg_cl_source_t;

struct mg_costload_s {
    struct event_base *base;

    /* the map in use */
    char source[2048];
    char origin[16];
    char sha256[65];
    size_t count, bytes;
    int64_t loaded_ms;
    bool fell_back;                 /* a named source was refused at startup */
    mg_cl_source_t configured;      /* what the environment named at the last load */
    int64_t reloads;                /* maps installed after startup */
    int64_t refusals;
    json_t *last_refusal;           /* owned: {source, error, status, trigger, at_ms, at} */
    json_t *last_attempt;           /* owned: {trigger, result, at_ms, at} */

    /* the schedule */
    double cfg_hours;
    double api_hours;
    bool api_set;
    int64_t last_run_ms;            /* wall clock of the last scheduled or API load, 0 none */
    int64_t next_mono_ms;           /* monotonic; 0 = not scheduled */

    /* the load in flight */
    bool busy;
    mg_costload_trigger_t why;
    mg_cl_source_t src;
    mg_fetch_t *fetch;              /* owned while a URL is fetched */
    struct event *defer;            /* owned: finishes a file or built-in load from the loop */
    mg_buf_t data;                  /* a file's bytes, for the deferred finish */
    mg_err_t read_err;              /* why the file could not be read (read_failed) */
    bool read_failed;
    mg_costmap_t *cur;              /* ref: the map in use when the load started */
    mg_costmap_key_t *keys;         /* owned, with owned strings */
    size_t nkeys;
    mg_costload_cb cb;
    void *ud;
};

static void mg_costload_schedule_ran(mg_costload_t *cl);

/* ---- the source ---- */

static bool
mg_cl_truthy(const char *v)
{
    return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                         strcasecmp(v, "yes") == 0);
}

/* A URL with its query values hidden (a token in a query must not reach logs or state). */
static void
mg_cl_display(const char *loc, char *out, size_t outlen)
{
    const char *q = strchr(loc, '?');
    if (q == NULL || !mg_fetch_is_url(loc)) {
        snprintf(out, outlen, "%s", loc);
        return;
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, loc, (size_t) (q - loc) + 1);
    const char *p = q + 1;
    bool first = true;
    while (*p != '\0' && *p != '#') {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        if (!first) {
            mg_buf_append(&b, "&", 1);
        }
        first = false;
        mg_buf_append(&b, p, eq != NULL ? (size_t) (eq - p) : n);
        if (eq != NULL) {
            mg_buf_append_str(&b, "=<redacted>");
        }
        p += n;
        if (*p == '&') {
            p++;
        }
    }
    snprintf(out, outlen, "%s", mg_buf_cstr(&b));
    mg_buf_free(&b);
}

/* LiteLLM's environment, read at each load (a config's environment_variables may set it). */
static void
mg_cl_source(mg_cl_source_t *s)
{
    memset(s, 0, sizeof(*s));
    const char *local = getenv("LITELLM_LOCAL_MODEL_COST_MAP");
    const char *url = getenv("LITELLM_MODEL_COST_MAP_URL");
    if (mg_cl_truthy(local)) {
        s->kind = MG_CL_BUILTIN;
        s->env = "LITELLM_LOCAL_MODEL_COST_MAP";
        s->forced_local = true;
        snprintf(s->location, sizeof(s->location), "builtin");
    } else if (url != NULL && url[0] != '\0') {
        s->env = "LITELLM_MODEL_COST_MAP_URL";
        if (mg_fetch_is_url(url)) {
            s->kind = MG_CL_URL;
            snprintf(s->location, sizeof(s->location), "%s", url);
        } else {
            s->kind = MG_CL_FILE;
            snprintf(s->location, sizeof(s->location), "%s",
                     strncasecmp(url, "file://", 7) == 0 ? url + 7 : url);
        }
    } else {
        s->kind = MG_CL_BUILTIN;
        snprintf(s->location, sizeof(s->location), "builtin");
    }
    mg_cl_display(s->location, s->display, sizeof(s->display));
}

/* ---- checks ---- */

/* A short, printable piece of a body for a message. */
static void
mg_cl_snippet(const char *b, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < outlen && i < 120; i++) {
        unsigned char c = (unsigned char) b[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char) c : ' ';
    }
    if (n > 120 && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static bool
mg_cl_looks_html(const char *ctype, const char *b, size_t n)
{
    if (ctype != NULL && strcasestr(ctype, "html") != NULL) {
        return true;
    }
    size_t i = 0;
    while (i < n && isspace((unsigned char) b[i])) {
        i++;
    }
    return i < n && b[i] == '<';
}

/* ---- a load ---- */

static void
mg_cl_free_keys(mg_costload_t *cl)
{
    for (size_t i = 0; i < cl->nkeys; i++) {
        free((char *) cl->keys[i].provider);
        free((char *) cl->keys[i].model);
        free((char *) cl->keys[i].base_model);
    }
    free(cl->keys);
    cl->keys = NULL;
    cl->nkeys = 0;
}

static void
mg_cl_add_key(mg_costload_t *cl, size_t *cap, const char *provider, const char *model,
              const char *base)
{
    if (model == NULL) {
        return;
    }
    if (cl->nkeys == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        cl->keys = mg_xrealloc(cl->keys, *cap * sizeof(*cl->keys));
    }
    mg_costmap_key_t *k = &cl->keys[cl->nkeys++];
    k->provider = mg_xstrdup(provider != NULL ? provider : "");
    k->model = mg_xstrdup(model);
    k->base_model = base != NULL && base[0] != '\0' ? mg_xstrdup(base) : NULL;
}

/* What the deployments price by: config.yaml's models and the stored ones the workers
 * reported. */
static void
mg_cl_keys(mg_costload_t *cl, const mg_config_t *cfg, json_t *store_keys)
{
    size_t cap = 0;
    size_t i;
    json_t *e;
    json_array_foreach(cfg->models, i, e) {
        json_t *lp = json_object_get(e, "litellm_params");
        json_t *mi = json_object_get(e, "model_info");
        const char *model = json_string_value(json_object_get(lp, "model"));
        if (model == NULL) {
            continue;
        }
        char *prov, *um;
        const char *custom = json_string_value(json_object_get(lp, "custom_llm_provider"));
        mg_registry_split_model(model, custom, &prov, &um);
        const char *base = json_string_value(json_object_get(mi, "base_model"));
        if (base == NULL) {
            base = json_string_value(json_object_get(lp, "base_model"));
        }
        mg_cl_add_key(cl, &cap, prov, model, base);
        free(prov);
        free(um);
    }
    json_array_foreach(store_keys, i, e) {
        mg_cl_add_key(cl, &cap, json_string_value(json_array_get(e, 0)),
                      json_string_value(json_array_get(e, 1)),
                      json_string_value(json_array_get(e, 2)));
    }
}

static void
mg_cl_end(mg_costload_t *cl)
{
    bool was = cl->busy;
    cl->busy = false;
    cl->fetch = NULL;
    mg_buf_free(&cl->data);
    mg_costmap_unref(cl->cur);
    cl->cur = NULL;
    mg_cl_free_keys(cl);
    if (was && (cl->why == MG_COSTLOAD_API || cl->why == MG_COSTLOAD_SCHEDULE)) {
        mg_costload_schedule_ran(cl); /* accepted or refused, the schedule moves on */
    }
    mg_costload_publish(cl);
}

static void
mg_cl_attempt(mg_costload_t *cl, const char *result)
{
    char at[40];
    int64_t now = mg_time_real_ms();
    mg_fmt_iso_utc(now, at, sizeof(at));
    json_decref(cl->last_attempt);
    cl->last_attempt = json_pack("{s:s,s:s,s:s,s:I,s:s}", "trigger", mg_cl_trigger_names[cl->why],
                                 "source", cl->src.display, "result", result, "at_ms",
                                 (json_int_t) now, "at", at);
}

/* Records and logs a refusal; the map in use keeps serving. */
static void
mg_cl_refuse(mg_costload_t *cl, const mg_err_t *err)
{
    cl->refusals++;
    if (mg_shm != NULL) {
        __atomic_add_fetch(&mg_shm->costmap_refusals, 1, __ATOMIC_RELAXED);
    }
    mg_ml_refused("cost_map"); /* moongate_reloads_refused_total{kind="cost_map"} */
    char at[40];
    int64_t now = mg_time_real_ms();
    mg_fmt_iso_utc(now, at, sizeof(at));
    json_decref(cl->last_refusal);
    cl->last_refusal = json_pack("{s:s,s:s,s:s,s:i,s:s,s:I,s:s}", "source", cl->src.display,
                                 "origin", mg_cl_kind_names[cl->src.kind], "error", err->msg,
                                 "status", err->status, "trigger", mg_cl_trigger_names[cl->why],
                                 "at_ms", (json_int_t) now, "at", at);
    mg_cl_attempt(cl, "refused");
    if (cl->why == MG_COSTLOAD_STARTUP) {
        cl->fell_back = true;
        mg_log(MG_LOG_ERROR, NULL, "cost map from %s \"%s\" refused at startup, starting with the "
                                   "built-in map instead: %s",
               cl->src.env != NULL ? cl->src.env : "the built-in source", cl->src.display,
               err->msg);
    } else {
        mg_log(MG_LOG_ERROR, NULL, "cost map from \"%s\" refused (%s); the map in use keeps "
                                   "serving (\"%s\", sha256 %.12s, %zu models): %s",
               cl->src.display, mg_cl_trigger_names[cl->why], cl->source, cl->sha256, cl->count,
               err->msg);
    }
    mg_costload_publish(cl);
}

/*
 * Judges a load's bytes (data NULL with fetch_err: the fetch failed) and calls back.
 * For a URL, res is the HTTP answer.
 */
static void
mg_cl_finish(mg_costload_t *cl, const char *data, size_t len, const mg_fetch_result_t *res,
             const mg_err_t *fetch_err)
{
    mg_costload_cb cb = cl->cb;
    void *ud = cl->ud;
    mg_err_t err;
    mg_err_clear(&err);
    mg_costmap_t *map = NULL;
    const char *src = cl->src.display;
    if (fetch_err != NULL) {
        err = *fetch_err;
        mg_err_prefix(&err, "fetching \"%s\" failed: ", src);
        err.status = fetch_err->cls == MG_ERR_UPSTREAM_TIMEOUT ? 504 : 502;
    } else if (res != NULL && res->status != 200) {
        char snip[160];
        mg_cl_snippet(res->body, res->len, snip, sizeof(snip));
        mg_err_set(&err, MG_ERR_UPSTREAM_5XX, "fetching \"%s\" failed: it answered HTTP %d (%s)",
                   src, res->status, snip[0] ? snip : "empty body");
        err.status = 502;
    } else if (res != NULL && mg_cl_looks_html(res->content_type, data, len)) {
        char snip[160];
        mg_cl_snippet(data, len, snip, sizeof(snip));
        mg_err_set(&err, MG_ERR_CONFIG, "cost map \"%s\": the answer is HTML (content-type "
                   "\"%s\"), not a JSON cost map: %s", src, res->content_type, snip);
        err.status = 422;
    } else if (mg_costmap_parse(data != NULL ? data : "", len, src, &map, &err) != MG_OK) {
        err.status = 422;
    } else {
        size_t nk = cl->nkeys;
        if (mg_costmap_check_coverage(cl->cur, map, cl->keys, nk, &err) != MG_OK) {
            err.status = 422;
            mg_costmap_unref(map);
            map = NULL;
        }
    }
    if (map == NULL) {
        if (err.status == 0) {
            err.status = 422;
        }
        mg_cl_refuse(cl, &err);
        mg_cl_end(cl);
        cb(ud, MG_ERROR, NULL, NULL, false, &err);
        return;
    }
    bool unchanged = cl->cur != NULL && strcmp(cl->cur->sha256, map->sha256) == 0 &&
                     strcmp(cl->cur->source, map->source) == 0;
    json_t *node = NULL;
    if (cl->src.kind != MG_CL_BUILTIN) {
        node = json_pack("{s:s,s:s,s:s%,s:I}", "source", src, "origin",
                         mg_cl_kind_names[cl->src.kind], "text", data, len, "loaded_ms",
                         (json_int_t) mg_time_real_ms());
        if (node == NULL) {
            /* parsed JSON is UTF-8 without NULs, so this does not happen; refuse, not crash */
            mg_err_set(&err, MG_ERR_INTERNAL, "cost map \"%s\": cannot carry its bytes", src);
            err.status = 500;
            mg_costmap_unref(map);
            mg_cl_refuse(cl, &err);
            mg_cl_end(cl);
            cb(ud, MG_ERROR, NULL, NULL, false, &err);
            return;
        }
    }
    mg_cl_attempt(cl, unchanged ? "unchanged" : "accepted");
    mg_cl_end(cl);
    cb(ud, MG_OK, node, map, unchanged, NULL);
    json_decref(node);
    mg_costmap_unref(map);
}

static void
mg_cl_on_fetch(void *ud, int rc, const mg_fetch_result_t *res, const mg_err_t *err)
{
    mg_costload_t *cl = ud;
    cl->fetch = NULL;
    if (rc != MG_OK) {
        mg_cl_finish(cl, NULL, 0, NULL, err);
        return;
    }
    mg_cl_finish(cl, res->body, res->len, res, NULL);
}

static void
mg_cl_on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_costload_t *cl = arg;
    if (cl->read_failed) {
        mg_err_t e = cl->read_err;
        e.status = 422;
        mg_cl_refuse(cl, &e);
        mg_costload_cb cb = cl->cb;
        void *ud = cl->ud;
        mg_cl_end(cl);
        cb(ud, MG_ERROR, NULL, NULL, false, &e);
        return;
    }
    if (cl->src.kind == MG_CL_BUILTIN) {
        /* the embedded bytes: parsed like any other source, same checks */
        extern const char mg_costmap_default_json[];
        extern const size_t mg_costmap_default_json_len;
        mg_cl_finish(cl, mg_costmap_default_json, mg_costmap_default_json_len, NULL, NULL);
        return;
    }
    /* copy out: finishing frees cl->data */
    mg_buf_t d = cl->data;
    cl->data = (mg_buf_t) MG_BUF_INIT;
    mg_cl_finish(cl, d.data != NULL ? mg_buf_head(&d) : "", mg_buf_len(&d), NULL, NULL);
    mg_buf_free(&d);
}

static int
mg_cl_read_file(const char *path, mg_buf_t *out, mg_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": open() failed (%d: %s)", path,
                          errno, strerror(errno));
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mg_buf_len(out) + n > MG_COSTMAP_MAX_BYTES) {
            fclose(f);
            return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": more than the %u bytes "
                              "accepted", path, MG_COSTMAP_MAX_BYTES);
        }
        mg_buf_append(out, chunk, n);
    }
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e != 0) {
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": read() failed (%d: %s)", path, e,
                          strerror(e));
    }
    return MG_OK;
}

static mg_fetch_opts_t
mg_cl_fetch_opts(const mg_config_t *cfg)
{
    int total = cfg->cost_map_fetch_timeout_ms > 0 ? cfg->cost_map_fetch_timeout_ms : 10000;
    mg_fetch_opts_t o = {total < 5000 ? total : 5000, total, MG_COSTMAP_MAX_BYTES};
    return o;
}

int
mg_costload_start(mg_costload_t *cl, mg_costload_trigger_t why, const mg_config_t *cfg,
                  const mg_costmap_t *cur, json_t *store_keys, mg_costload_cb cb, void *ud)
{
    if (cl->busy) {
        return MG_BUSY;
    }
    cl->busy = true;
    cl->why = why;
    cl->cb = cb;
    cl->ud = ud;
    cl->read_failed = false;
    cl->cur = cur != NULL ? mg_costmap_ref((mg_costmap_t *) cur) : NULL;
    mg_cl_keys(cl, cfg, store_keys);
    mg_cl_source(&cl->src);
    cl->configured = cl->src;
    mg_costload_publish(cl);
    if (cl->src.kind == MG_CL_URL) {
        mg_fetch_opts_t o = mg_cl_fetch_opts(cfg);
        mg_err_t err;
        cl->fetch = mg_fetch_start(cl->base, cl->src.location, &o, mg_cl_on_fetch, cl, &err);
        if (cl->fetch != NULL) {
            return MG_OK;
        }
        /* could not even start (a bad URL): refused like a failed fetch, from the loop */
        cl->read_failed = true;
        cl->read_err = err;
        mg_err_prefix(&cl->read_err, "fetching \"%s\" failed: ", cl->src.display);
    } else if (cl->src.kind == MG_CL_FILE) {
        mg_buf_reset(&cl->data);
        if (mg_cl_read_file(cl->src.location, &cl->data, &cl->read_err) != MG_OK) {
            cl->read_failed = true;
        }
    }
    struct timeval zero = {0, 0};
    evtimer_add(cl->defer, &zero);
    return MG_OK;
}

bool
mg_costload_busy(const mg_costload_t *cl)
{
    return cl->busy;
}

/* ---- startup ---- */

typedef struct {
    json_t *node;
    bool done;
} mg_cl_startup_t;

static void
mg_cl_startup_cb(void *ud, int rc, json_t *node, const mg_costmap_t *map, bool unchanged,
                 const mg_err_t *err)
{
    (void) map;
    (void) unchanged;
    (void) err;
    mg_cl_startup_t *st = ud;
    st->done = true;
    st->node = rc == MG_OK && node != NULL ? json_incref(node) : NULL;
}

static void
mg_cl_startup_fetched(void *ud, int rc, const mg_fetch_result_t *res, const mg_err_t *err)
{
    mg_costload_t *cl = ud;
    if (rc != MG_OK) {
        mg_cl_finish(cl, NULL, 0, NULL, err);
    } else {
        mg_cl_finish(cl, res->body, res->len, res, NULL);
    }
}

json_t *
mg_costload_startup(mg_costload_t *cl, const mg_config_t *cfg)
{
    mg_cl_startup_t st = {NULL, false};
    cl->busy = true;
    cl->why = MG_COSTLOAD_STARTUP;
    cl->cb = mg_cl_startup_cb;
    cl->ud = &st;
    cl->cur = NULL; /* nothing to compare with: no coverage check at start */
    mg_cl_source(&cl->src);
    cl->configured = cl->src;
    if (cl->src.kind == MG_CL_URL) {
        mg_fetch_opts_t o = mg_cl_fetch_opts(cfg);
        mg_log(MG_LOG_NOTICE, NULL, "fetching the cost map from \"%s\" (at most %dms)",
               cl->src.display, o.total_timeout_ms);
        mg_fetch_run(cl->src.location, &o, mg_cl_startup_fetched, cl);
    } else if (cl->src.kind == MG_CL_FILE) {
        if (mg_cl_read_file(cl->src.location, &cl->data, &cl->read_err) != MG_OK) {
            cl->read_failed = true;
        }
        mg_cl_on_defer(-1, 0, cl);
    } else {
        mg_cl_on_defer(-1, 0, cl);
    }
    cl->read_failed = false;
    if (!st.done) {
        mg_cl_end(cl);
    }
    return st.node;
}

/* ---- the record ---- */

mg_costload_t *
mg_costload_create(struct event_base *base)
{
    mg_costload_t *cl = mg_xcalloc(1, sizeof(*cl));
    cl->base = base;
    cl->defer = evtimer_new(base, mg_cl_on_defer, cl);
    snprintf(cl->origin, sizeof(cl->origin), "builtin");
    return cl;
}

void
mg_costload_destroy(mg_costload_t *cl)
{
    if (cl == NULL) {
        return;
    }
    if (cl->fetch != NULL) {
        mg_fetch_cancel(cl->fetch);
        cl->fetch = NULL;
    }
    event_free(cl->defer);
    mg_cl_end(cl);
    json_decref(cl->last_refusal);
    json_decref(cl->last_attempt);
    free(cl);
}

void
mg_costload_applied(mg_costload_t *cl, const mg_costmap_t *map, const char *origin)
{
    bool first = cl->sha256[0] == '\0';
    bool same = strcmp(cl->sha256, map->sha256) == 0 && strcmp(cl->source, map->source) == 0;
    snprintf(cl->source, sizeof(cl->source), "%s", map->source);
    snprintf(cl->origin, sizeof(cl->origin), "%s", origin != NULL ? origin : "builtin");
    snprintf(cl->sha256, sizeof(cl->sha256), "%s", map->sha256);
    cl->count = map->count;
    cl->bytes = map->bytes;
    cl->loaded_ms = map->loaded_real_ms;
    if (!first && !same) {
        cl->reloads++;
    }
    if (!same) {
        mg_log(MG_LOG_NOTICE, NULL, "cost map in use: \"%s\" (%s, %zu models, %zu bytes, sha256 "
                                    "%.12s)", cl->source, cl->origin, cl->count, cl->bytes,
               cl->sha256);
    }
    mg_costload_publish(cl);
}

static json_t *
mg_cl_hours_json(double h)
{
    return floor(h) == h && h < 1e9 ? json_integer((json_int_t) h) : json_real(h);
}

static double
mg_cl_interval(const mg_costload_t *cl, const char **by)
{
    if (cl->api_set) {
        *by = cl->api_hours > 0 ? "api" : NULL;
        return cl->api_hours;
    }
    *by = cl->cfg_hours > 0 ? "config" : NULL;
    return cl->cfg_hours;
}

json_t *
mg_costload_schedule_json(const mg_costload_t *cl)
{
    const char *by;
    double h = mg_cl_interval(cl, &by);
    bool on = h > 0 && cl->next_mono_ms > 0;
    char last[40], next[40];
    json_t *j = json_object();
    json_object_set_new(j, "scheduled", json_boolean(on));
    json_object_set_new(j, "interval_hours", on ? mg_cl_hours_json(h) : json_null());
    json_object_set_new(j, "set_by", by != NULL && on ? json_string(by) : json_null());
    if (cl->last_run_ms > 0) {
        mg_fmt_iso_utc(cl->last_run_ms, last, sizeof(last));
        json_object_set_new(j, "last_run", json_string(last));
        json_object_set_new(j, "last_run_ms", json_integer(cl->last_run_ms));
    } else {
        json_object_set_new(j, "last_run", json_null());
    }
    if (on) {
        int64_t at = mg_time_real_ms() + (cl->next_mono_ms - mg_time_mono_ms());
        mg_fmt_iso_utc(at, next, sizeof(next));
        json_object_set_new(j, "next_run", json_string(next));
        json_object_set_new(j, "next_run_ms", json_integer(at));
    } else {
        json_object_set_new(j, "next_run", json_null());
    }
    return j;
}

void
mg_costload_publish(mg_costload_t *cl)
{
    char at[40];
    mg_fmt_iso_utc(cl->loaded_ms, at, sizeof(at));
    json_t *cm = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:b,s:b,s:I,s:I,s:b}", "source",
                           cl->source, "origin", cl->origin, "sha256", cl->sha256, "models",
                           (json_int_t) cl->count, "bytes", (json_int_t) cl->bytes, "loaded_ms",
                           (json_int_t) cl->loaded_ms, "loaded_at", at, "fell_back", cl->fell_back,
                           "env_forced_local", cl->configured.forced_local, "reloads",
                           (json_int_t) cl->reloads, "refusals", (json_int_t) cl->refusals,
                           "reloading", cl->busy);
    json_object_set_new(cm, "configured",
                        json_pack("{s:s,s:s,s:s?}", "kind", mg_cl_kind_names[cl->configured.kind],
                                  "location", cl->configured.display[0] ? cl->configured.display
                                                                         : "builtin",
                                  "env", cl->configured.env));
    json_object_set(cm, "last_refusal", cl->last_refusal != NULL ? cl->last_refusal : json_null());
    json_object_set(cm, "last_attempt", cl->last_attempt != NULL ? cl->last_attempt : json_null());
    json_object_set_new(cm, "schedule", mg_costload_schedule_json(cl));
    json_t *root = json_pack("{s:o}", "cost_map", cm);
    char *s = json_dumps(root, JSON_COMPACT);
    size_t n = strlen(s);
    if (n > MG_SHM_MASTER_BLOB) {
        /* a very long refusal message: keep its start */
        json_t *lr = json_object_get(cm, "last_refusal");
        const char *e = json_string_value(json_object_get(lr, "error"));
        if (e != NULL) {
            json_object_set_new(lr, "error", json_stringn(e, strlen(e) > 2000 ? 2000 : strlen(e)));
        }
        free(s);
        s = json_dumps(root, JSON_COMPACT);
        n = strlen(s);
    }
    mg_shm_publish_master(s, n);
    free(s);
    json_decref(root);
}

/* ---- the schedule ---- */

static void
mg_cl_rearm(mg_costload_t *cl, int64_t from_mono)
{
    const char *by;
    double h = mg_cl_interval(cl, &by);
    if (h <= 0) {
        cl->next_mono_ms = 0;
        return;
    }
    double ms = h * 3600.0 * 1000.0;
    if (ms < MG_CL_MIN_INTERVAL_MS) {
        ms = MG_CL_MIN_INTERVAL_MS;
    }
    cl->next_mono_ms = from_mono + (int64_t) ms;
}

/* A scheduled or API load finished (accepted or not: the schedule moves on either way). */
static void
mg_costload_schedule_ran(mg_costload_t *cl)
{
    cl->last_run_ms = mg_time_real_ms();
    mg_cl_rearm(cl, mg_time_mono_ms());
}

void
mg_costload_schedule(mg_costload_t *cl, double hours)
{
    cl->api_set = true;
    cl->api_hours = hours > 0 ? hours : 0;
    mg_cl_rearm(cl, mg_time_mono_ms());
    mg_costload_publish(cl);
}

void
mg_costload_configure(mg_costload_t *cl, const mg_config_t *cfg)
{
    double before = cl->cfg_hours;
    cl->cfg_hours = cfg->cost_map_reload_hours;
    if (!cl->api_set && (before != cl->cfg_hours || cl->next_mono_ms == 0)) {
        mg_cl_rearm(cl, mg_time_mono_ms());
    }
    mg_costload_publish(cl);
}

bool
mg_costload_due(const mg_costload_t *cl)
{
    return !cl->busy && cl->next_mono_ms > 0 && mg_time_mono_ms() >= cl->next_mono_ms;
}
