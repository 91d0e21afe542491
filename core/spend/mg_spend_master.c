/*
 * mg_spend_master.c -- the master's side of the spend pipeline (see mg_spend.h): setup before
 * fork, the drain of the rings into the disk queue, the sinks, retention, the state.
 *
 * Owns (one per master process, a static singleton): the queue, the database connections,
 * the totals (embedded), the timers.  Everything runs on the master's event loop.
 *
 * Row ids: every row the master takes from a ring gets a 16-byte id (8 random bytes drawn at
 * start, then a counter) that travels with it to the database (metadata.moongate_row_id), so a
 * batch sent again after a lost acknowledgement is recognised row by row.
 *
 * Embedded mode: the queue's segments are the spend log.  totals.json holds every entity's
 * spend and the queue position it covers; at start the records after that position are
 * replayed, so a total is never lost nor counted twice.  Segments are deleted only once the
 * totals cover them (retention, or the size bound: oldest first).
 *
 * PostgreSQL mode: ack.json holds the position up to which the database has every row; rows
 * after it are sent again after a restart (harmlessly: the batch is idempotent).  Segments
 * wholly before it are deleted.
 */
#include "mg_spend_int.h"

#include "mg_spend_pg.h"
#include "mg_spend_query.h"
#include "mg_spend_queue.h"
#include "mg_spend_sql.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_shm.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MG_SPEND_DRAIN_MS 50
#define MG_SPEND_SLOW_MS 250
#define MG_SPEND_SYNC_MS 200
#define MG_SPEND_SYNC_ROWS 1000
#define MG_SPEND_TOTALS_MS 5000
#define MG_SPEND_ACK_MS 2000
#define MG_SPEND_BATCH_ROWS 500
#define MG_SPEND_BATCH_BYTES (4u * 1024 * 1024)
#define MG_SPEND_WBUF_MAX 2000000u          /* rows kept in memory while the disk fails */
#define MG_SPEND_BACKOFF_MAX_MS 5000
#define MG_SPEND_BATCH_TIMEOUT_MS 60000

/* ---- settings ---- */

typedef struct {
    bool postgres;
    char *database_url;             /* owned, secret */
    char dir[PATH_MAX];             /* state_dir/spend */
    bool store_prompts;
    int64_t retention_us;           /* 0: keep everything */
    int64_t retention_interval_ms;
    int cleanup_batch;              /* SPEND_LOG_CLEANUP_BATCH_SIZE */
    int cleanup_loops;              /* SPEND_LOG_RUN_LOOPS */
    uint64_t queue_max_bytes;
    uint64_t seg_max_bytes;
    int64_t seg_max_age_ms;
} mg_spend_conf_t;

/* LiteLLM's durations: "30s", "10m", "24h", "7d", "2w", "1mo". */
static int
mg_spend_duration(const char *s, int64_t *secs)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || n < 0) {
        return MG_ERROR;
    }
    static const struct {
        const char *u;
        int64_t mul;
    } units[] = {{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400},
                 {"mo", 30 * 86400}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].u) == 0) {
            if (n > INT64_MAX / units[i].mul / 1000000) {
                return MG_ERROR;
            }
            *secs = n * units[i].mul;
            return MG_OK;
        }
    }
    return MG_ERROR;
}

static int
mg_spend_env_int(const char *name, int def, int min, int max)
{
    const char *e = getenv(name);
    if (e == NULL || e[0] == '\0') {
        return def;
    }
    long v = strtol(e, NULL, 10);
    return v < min ? min : v > max ? max : (int) v;
}

static int
mg_spend_conf_mb(json_t *ms, const char *key, uint64_t def, uint64_t *out, mg_err_t *err)
{
    json_t *v = json_object_get(ms, key);
    if (v == NULL || json_is_null(v)) {
        *out = def * 1024 * 1024;
        return MG_OK;
    }
    if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1024 * 1024) {
        return mg_err_set(err, MG_ERR_CONFIG, "moongate_settings.%s must be a number of MiB "
                          "between 0 and 1048576", key);
    }
    *out = (uint64_t) (json_number_value(v) * 1024 * 1024);
    return MG_OK;
}

static int
mg_spend_conf_parse(const mg_config_t *cfg, const char *config_path, mg_spend_conf_t *c,
                    mg_err_t *err)
{
    memset(c, 0, sizeof(*c));
    c->postgres = cfg->database_url != NULL;
    json_t *gs = cfg->general_settings;
    json_t *sp = json_object_get(gs, "store_prompts_in_spend_logs");
    if (sp != NULL && !json_is_null(sp) && !json_is_boolean(sp)) {
        return mg_err_set(err, MG_ERR_CONFIG,
                          "general_settings.store_prompts_in_spend_logs must be true or false");
    }
    c->store_prompts = mg_spend_ring_bytes(cfg) > 4u * 1024 * 1024;
    const char *keys[2] = {"maximum_spend_logs_retention_period",
                           "maximum_spend_logs_retention_interval"};
    int64_t secs[2] = {0, 86400};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(gs, keys[i]);
        if (v == NULL || json_is_null(v)) {
            continue;
        }
        if (!json_is_string(v) || mg_spend_duration(json_string_value(v), &secs[i]) != MG_OK ||
            secs[i] <= 0) {
            return mg_err_set(err, MG_ERR_CONFIG, "general_settings.%s must be a duration like "
                              "\"30s\", \"12h\", \"7d\", \"2w\" or \"1mo\"", keys[i]);
        }
    }
    c->retention_us = secs[0] * 1000000;
    c->retention_interval_ms = secs[1] * 1000;
    c->cleanup_batch = mg_spend_env_int("SPEND_LOG_CLEANUP_BATCH_SIZE", 1000, 1, 1000000);
    c->cleanup_loops = mg_spend_env_int("SPEND_LOG_RUN_LOOPS", 500, 1, 1000000);
    json_t *ms = json_object_get(cfg->root, "moongate_settings");
    uint64_t segsecs = 0;
    if (mg_spend_conf_mb(ms, "spend_queue_max_mb", 2048, &c->queue_max_bytes, err) != MG_OK ||
        mg_spend_conf_mb(ms, "spend_segment_max_mb", 8, &c->seg_max_bytes, err) != MG_OK) {
        return MG_ERROR;
    }
    json_t *age = json_object_get(ms, "spend_segment_max_seconds");
    if (age != NULL && !json_is_null(age)) {
        if (!json_is_number(age) || json_number_value(age) < 1 ||
            json_number_value(age) > 86400 * 30) {
            return mg_err_set(err, MG_ERR_CONFIG, "moongate_settings.spend_segment_max_seconds "
                              "must be a number of seconds between 1 and 2592000");
        }
        segsecs = (uint64_t) json_number_value(age);
    }
    c->seg_max_age_ms = segsecs > 0 ? (int64_t) segsecs * 1000 : 600 * 1000;
    if (c->seg_max_bytes * 4 > c->queue_max_bytes) {
        c->seg_max_bytes = c->queue_max_bytes / 4 > 65536 ? c->queue_max_bytes / 4 : 65536;
    }
    char sd[PATH_MAX];
    mg_config_state_dir(cfg, config_path, sd, sizeof(sd));
    snprintf(c->dir, sizeof(c->dir), "%s/spend", sd);
    if (c->postgres) {
        c->database_url = mg_xstrdup(cfg->database_url);
    }
    return MG_OK;
}

static void
mg_spend_conf_free(mg_spend_conf_t *c)
{
    free(c->database_url);
    c->database_url = NULL;
}

int
mg_spend_check_config(const mg_config_t *cfg, mg_err_t *err)
{
    mg_spend_conf_t c;
    int rc = mg_spend_conf_parse(cfg, NULL, &c, err);
    mg_spend_conf_free(&c);
    return rc;
}

/* ---- the master's state ---- */

typedef struct {
    mg_spend_conf_t conf;
    const char *config_path;
    int nworkers;
    struct event_base *base;        /* borrowed: the master's loop */
    struct event *drain_ev, *slow_ev, *sink_ev;
    mg_sq_t *q;                     /* owned; NULL while the state directory fails */
    char q_error[512];
    int64_t q_retry_ms;
    int64_t q_error_logged_ms;
    mg_buf_t scratch;
    uint64_t uid_rand;
    uint64_t uid_seq;
    /* durability */
    uint64_t unsynced;              /* rows written since the last fdatasync */
    int64_t unsynced_since_ms;
    uint64_t synced_total;
    int64_t disk_drop_logged_ms;
    uint64_t disk_drop_logged;
    /* embedded totals */
    mg_map_t totals[MG_SPEND_K__COUNT]; /* id -> double* (malloc) */
    mg_sq_pos_t totals_pos;
    bool totals_dirty;
    int64_t totals_written_ms;
    uint64_t log_rotated_rows;      /* embedded: rows removed by the size bound */
    /* postgres sink */
    mg_spg_t *sink;                 /* owned */
    mg_spg_t *reader;               /* owned: spend queries */
    mg_sq_pos_t ack;
    mg_sq_pos_t ack_saved;
    int64_t ack_saved_ms;
    mg_sq_reader_t send;            /* reads the rows of the next batch */
    bool send_on;
    bool inflight;
    bool rolling_back;
    int batch_rows;
    mg_sq_pos_t batch_end;
    mg_buf_t batch;
    int split_left;                 /* rows still to send one by one after a data error */
    char batch_first_rid[96];
    int64_t backoff_ms;
    int64_t next_try_ms;
    bool connected;
    char last_error[600];
    int64_t last_error_ms;
    uint64_t batches, rows_acked, rows_inserted, rows_rejected, retries;
    int64_t last_ack_real_ms;
    /* retention */
    int64_t next_retention_ms;
    bool retention_running;
    unsigned retention_turn;
    int retention_loops;
    int64_t retention_cutoff_us;
    uint64_t retention_deleted;
    uint64_t retention_batches;     /* DELETE statements (postgres) / segments (embedded) */
    int64_t retention_last_real_ms;
    char retention_error[300];
    bool quiescing;
} mg_spend_master_t;

static mg_spend_master_t *M;

static void mg_spend_sink_kick(void);

/* ---- files: totals.json and ack.json ---- */

static int
mg_spend_write_file(const char *path, const char *data, size_t len, mg_err_t *err)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "open(\"%s\") failed (%d: %s)", tmp, errno,
                          strerror(errno));
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp);
            return mg_err_set(err, MG_ERR_INTERNAL, "write(\"%s\") failed (%d: %s)", tmp, e,
                              strerror(e));
        }
        off += (size_t) n;
    }
    if (fdatasync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return mg_err_set(err, MG_ERR_INTERNAL, "fdatasync(\"%s\") failed (%d: %s)", tmp, e,
                          strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mg_err_set(err, MG_ERR_INTERNAL, "rename(\"%s\") failed (%d: %s)", tmp, e,
                          strerror(e));
    }
    return MG_OK;
}

static json_t *
mg_spend_read_json(const char *path, mg_err_t *err, bool *missing)
{
    *missing = false;
    json_error_t je;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT) {
            *missing = true;
            return NULL;
        }
        mg_err_set(err, MG_ERR_INTERNAL, "fopen(\"%s\") failed (%d: %s)", path, errno,
                   strerror(errno));
        return NULL;
    }
    json_t *v = json_loadf(f, 0, &je);
    fclose(f);
    if (v == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "%s:%d: %s", path, je.line, je.text);
    }
    return v;
}

static mg_sq_pos_t
mg_spend_pos_of(json_t *o)
{
    mg_sq_pos_t p;
    p.seg = (uint64_t) json_integer_value(json_object_get(o, "segment"));
    p.off = (uint64_t) json_integer_value(json_object_get(o, "offset"));
    return p;
}

static void
mg_spend_totals_path(char *out, size_t len)
{
    snprintf(out, len, "%s/totals.json", M->conf.dir);
}

/* The totals and the position they cover (the queue is fdatasynced first). */
static int
mg_spend_totals_write(mg_err_t *err)
{
    if (M->q == NULL) {
        return MG_OK;
    }
    if (mg_sq_flush(M->q, true, err) != MG_OK) {
        return MG_ERROR;
    }
    M->unsynced = 0;
    mg_sq_pos_t end = mg_sq_end(M->q);
    json_t *root = json_pack("{s:i,s:I,s:I}", "version", 1, "segment", (json_int_t) end.seg,
                             "offset", (json_int_t) end.off);
    json_t *tot = json_object();
    for (int k = 0; k < MG_SPEND_K__COUNT; k++) {
        json_t *o = json_object();
        mg_map_t *m = &M->totals[k];
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i].key != NULL) {
                json_object_setn_new(o, m->slots[i].key, m->slots[i].klen,
                                     json_real(*(double *) m->slots[i].val));
            }
        }
        json_object_set_new(tot, mg_spend_kind_name((mg_spend_kind_t) k), o);
    }
    json_object_set_new(root, "totals", tot);
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    char path[PATH_MAX];
    mg_spend_totals_path(path, sizeof(path));
    int rc = mg_spend_write_file(path, s, strlen(s), err);
    free(s);
    if (rc == MG_OK) {
        M->totals_pos = end;
        M->totals_dirty = false;
        M->totals_written_ms = mg_time_mono_ms();
    }
    return rc;
}

static void
mg_spend_total_add(mg_spend_kind_t k, const char *id, size_t n, double v)
{
    double *d = mg_map_get(&M->totals[k], id, n);
    if (d == NULL) {
        d = mg_xcalloc(1, sizeof(*d));
        mg_map_put(&M->totals[k], id, n, d);
    }
    *d += v;
    (void) mg_spend_tot_add(k, id, n, v); /* a full table is logged there */
    M->totals_dirty = true;
}

static void
mg_spend_totals_account(const mg_spend_rec_t *rec)
{
    if (!(rec->spend != 0) || rec->spend != rec->spend) {
        return;
    }
    for (int k = 0; k < MG_SPEND_K__COUNT; k++) {
        size_t n;
        const char *id = mg_spend_rec_str(rec, mg_spend_kind_field((mg_spend_kind_t) k), &n);
        if (n > 0) {
            mg_spend_total_add((mg_spend_kind_t) k, id, n, rec->spend);
        }
    }
}

/* Embedded, at init: totals.json, then the records it does not cover. */
static int
mg_spend_totals_load(mg_err_t *err)
{
    char path[PATH_MAX];
    mg_spend_totals_path(path, sizeof(path));
    bool missing;
    json_t *root = mg_spend_read_json(path, err, &missing);
    if (root == NULL && !missing) {
        return MG_ERROR;
    }
    M->totals_pos = (mg_sq_pos_t){0, 0};
    if (root != NULL) {
        M->totals_pos = mg_spend_pos_of(root);
        json_t *tot = json_object_get(root, "totals");
        for (int k = 0; k < MG_SPEND_K__COUNT; k++) {
            json_t *o = json_object_get(tot, mg_spend_kind_name((mg_spend_kind_t) k));
            const char *id;
            json_t *v;
            json_object_foreach(o, id, v) {
                double *d = mg_xcalloc(1, sizeof(*d));
                *d = json_number_value(v);
                mg_map_put(&M->totals[k], id, strlen(id), d);
                (void) mg_spend_tot_set((mg_spend_kind_t) k, id, strlen(id), *d);
            }
        }
        json_decref(root);
    }
    return MG_OK;
}

static uint64_t
mg_spend_replay_totals(mg_err_t *err)
{
    mg_sq_reader_t r;
    mg_sq_reader_init(&r, M->q, M->totals_pos);
    uint64_t n = 0;
    for (;;) {
        mg_sq_rec_t rec;
        int rc = mg_sq_next(&r, &rec, err);
        if (rc != MG_OK) {
            break;
        }
        const char *uid;
        const mg_spend_rec_t *row = mg_spend_payload_rec(rec.payload, rec.len, &uid);
        if (row != NULL) {
            mg_spend_totals_account(row);
            n++;
        }
    }
    mg_sq_reader_free(&r);
    return n;
}

static void
mg_spend_ack_path(char *out, size_t len)
{
    snprintf(out, len, "%s/ack.json", M->conf.dir);
}

static void
mg_spend_ack_save(void)
{
    if (mg_sq_pos_cmp(M->ack, M->ack_saved) == 0) {
        return;
    }
    char path[PATH_MAX], buf[128];
    mg_spend_ack_path(path, sizeof(path));
    int n = snprintf(buf, sizeof(buf), "{\"segment\":%" PRIu64 ",\"offset\":%" PRIu64 "}\n",
                     M->ack.seg, M->ack.off);
    mg_err_t err;
    if (mg_spend_write_file(path, buf, (size_t) n, &err) != MG_OK) {
        mg_log(MG_LOG_WARN, NULL, "spend: saving the acknowledged position failed: %s (rows "
                                  "after the last saved one are sent again after a restart)",
               err.msg);
        return;
    }
    M->ack_saved = M->ack;
    M->ack_saved_ms = mg_time_mono_ms();
}

static uint64_t
mg_spend_count_from(mg_sq_pos_t from)
{
    mg_sq_reader_t r;
    mg_sq_reader_init(&r, M->q, from);
    uint64_t n = 0;
    mg_sq_rec_t rec;
    mg_err_t err;
    while (mg_sq_next(&r, &rec, &err) == MG_OK) {
        n++;
    }
    mg_sq_reader_free(&r);
    return n;
}

/* ---- opening the queue ---- */

static int
mg_spend_open_queue(mg_err_t *err)
{
    mg_sq_conf_t qc = {M->conf.seg_max_bytes, M->conf.seg_max_age_ms, M->conf.queue_max_bytes};
    mg_sq_pos_t verify = {0, 0};
    if (M->conf.postgres) {
        char path[PATH_MAX];
        mg_spend_ack_path(path, sizeof(path));
        bool missing;
        mg_err_t e2;
        json_t *a = mg_spend_read_json(path, &e2, &missing);
        if (a == NULL && !missing) {
            mg_log(MG_LOG_WARN, NULL, "spend: %s; every queued row is sent again", e2.msg);
        }
        if (a != NULL) {
            M->ack = mg_spend_pos_of(a);
            json_decref(a);
        }
        verify = M->ack;
    } else {
        char dirbuf[PATH_MAX];
        snprintf(dirbuf, sizeof(dirbuf), "%s", M->conf.dir);
        if (mg_spend_totals_load(err) != MG_OK) {
            return MG_ERROR;
        }
        verify = M->totals_pos;
    }
    if (mg_sq_open(M->conf.dir, &qc, verify, &M->q, err) != MG_OK) {
        return MG_ERROR;
    }
    if (M->conf.postgres) {
        mg_sq_pos_t b = mg_sq_begin(M->q);
        if (mg_sq_pos_cmp(M->ack, b) < 0) {
            M->ack = b;
        }
        M->ack_saved = M->ack;
        __atomic_store_n(&mg_spend_shm->queued_rows, mg_spend_count_from(M->ack),
                         __ATOMIC_RELAXED);
    } else {
        mg_err_t e2;
        uint64_t n = mg_spend_replay_totals(&e2);
        if (n > 0) {
            mg_log(MG_LOG_INFO, NULL, "spend: %" PRIu64 " row%s after the last totals file "
                                      "counted again into the totals", n, n == 1 ? "" : "s");
        }
        if (mg_spend_totals_write(err) != MG_OK) {
            return MG_ERROR;
        }
    }
    M->q_error[0] = '\0';
    return MG_OK;
}

/* ---- init (before fork) ---- */

int
mg_spend_init(const mg_config_t *cfg, const char *config_path, int nworkers, mg_err_t *err)
{
    if (nworkers < 1 || nworkers > MG_SPEND_MAX_WORKERS) {
        return mg_err_set(err, MG_ERR_CONFIG, "spend: %d workers (at most %d)", nworkers,
                          MG_SPEND_MAX_WORKERS);
    }
    mg_spend_conf_t conf;
    if (mg_spend_conf_parse(cfg, config_path, &conf, err) != MG_OK) {
        return MG_ERROR;
    }
    size_t need = mg_spend_shm_size(cfg, nworkers);
    char *p = mg_shm_alloc(need);
    if (p == NULL) {
        mg_spend_conf_free(&conf);
        return mg_err_set(err, MG_ERR_INTERNAL, "spend: %zu bytes of shared memory are not "
                          "free in the mg_shm arena", need);
    }
    mg_spend_shm = (mg_spend_shm_t *) (void *) p;
    mg_spend_shm->magic = MG_SPEND_SHM_MAGIC;
    mg_spend_shm->nworkers = nworkers;
    mg_spend_shm->mode = conf.postgres ? MG_SPEND_MODE_POSTGRES : MG_SPEND_MODE_EMBEDDED;
    uint64_t cap = mg_spend_ring_bytes(cfg);
    mg_spend_shm->ring_cap = cap;
    size_t off = (sizeof(mg_spend_shm_t) + 63) & ~(size_t) 63;
    size_t ring = (mg_spend_ring_size(cap) + 63) & ~(size_t) 63;
    for (int i = 0; i < nworkers; i++) {
        mg_spend_shm->ring_off[i] = off;
        mg_spend_ring_init((mg_spend_ring_t *) (void *) (p + off), cap);
        off += ring;
    }
    mg_spend_shm->totals_off = off;
    mg_spend_shm->totals_cap = MG_SPEND_TOTALS_CAP;

    M = mg_xcalloc(1, sizeof(*M));
    M->conf = conf;
    M->config_path = config_path;
    M->nworkers = nworkers;
    for (int k = 0; k < MG_SPEND_K__COUNT; k++) {
        mg_map_init(&M->totals[k]);
    }
    mg_random_bytes(&M->uid_rand, sizeof(M->uid_rand));
    M->backoff_ms = 100;
    mg_err_t qerr;
    if (mg_spend_open_queue(&qerr) != MG_OK) {
        snprintf(M->q_error, sizeof(M->q_error), "%s", qerr.msg);
        M->q_retry_ms = mg_time_mono_ms() + 1000;
        mg_log(MG_LOG_ERROR, NULL, "spend log queue unavailable: %s; rows wait in shared memory "
                                   "and the directory is retried every second", qerr.msg);
        if (M->q != NULL) {
            mg_sq_close(M->q);
            M->q = NULL;
        }
    }
    return MG_OK;
}

/* ---- drain ---- */

static void
mg_spend_next_uid(unsigned char out[16])
{
    uint64_t seq = ++M->uid_seq;
    memcpy(out, &M->uid_rand, 8);
    memcpy(out + 8, &seq, 8);
}

/* One record from a ring: MG_OK (taken: queued, or dropped and counted), MG_AGAIN (keep it
 * in the ring: the queue cannot take anything now). */
static int
mg_spend_take(const unsigned char *p, uint32_t len)
{
    const mg_spend_rec_t *rec = (const mg_spend_rec_t *) (const void *) p;
    if (len < sizeof(*rec) || rec->text_used > MG_SPEND_TEXT_MAX ||
        sizeof(*rec) + (size_t) rec->text_used + rec->tail_len[0] + rec->tail_len[1] > len) {
        __atomic_add_fetch(&mg_spend_shm->corrupt, 1, __ATOMIC_RELAXED);
        return MG_OK;
    }
    if (mg_sq_buffered(M->q) >= MG_SPEND_WBUF_MAX) {
        return MG_AGAIN; /* the disk is failing: the rings hold the rest */
    }
    mg_buf_reset(&M->scratch);
    unsigned char uid[16];
    mg_spend_next_uid(uid);
    mg_buf_append(&M->scratch, uid, sizeof(uid));
    mg_buf_append(&M->scratch, p, len);
    int rc = mg_sq_append(M->q, rec->start_us, mg_buf_head(&M->scratch), mg_buf_len(&M->scratch));
    if (rc == MG_BUSY && !M->conf.postgres) {
        /* embedded: the oldest segments the totals cover make room */
        mg_err_t err;
        if (mg_spend_totals_write(&err) == MG_OK) {
            mg_sq_seg_t gone;
            while (mg_sq_bytes(M->q) + mg_buf_len(&M->scratch) + 64 > M->conf.queue_max_bytes &&
                   mg_sq_drop_oldest(M->q, M->totals_pos, &gone)) {
                M->log_rotated_rows += gone.records;
                mg_log(MG_LOG_WARN, NULL, "spend log over moongate_settings.spend_queue_max_mb: "
                                          "oldest segment removed (%" PRIu64 " rows; the totals "
                                          "keep their spend)", gone.records);
            }
        }
        rc = mg_sq_append(M->q, rec->start_us, mg_buf_head(&M->scratch),
                          mg_buf_len(&M->scratch));
    }
    if (rc != MG_OK) {
        uint64_t d = __atomic_add_fetch(&mg_spend_shm->disk_dropped, 1, __ATOMIC_RELAXED);
        int64_t now = mg_time_mono_ms();
        if (M->disk_drop_logged_ms == 0 || now - M->disk_drop_logged_ms >= 10000) {
            mg_log(MG_LOG_ERROR, NULL, "spend log queue full (%" PRIu64 " bytes in %s, bound "
                                       "moongate_settings.spend_queue_max_mb): %" PRIu64
                                       " row%s dropped since the last report",
                   mg_sq_bytes(M->q), M->conf.dir, d - M->disk_drop_logged,
                   d - M->disk_drop_logged == 1 ? "" : "s");
            M->disk_drop_logged_ms = now;
            M->disk_drop_logged = d;
        }
    } else {
        if (M->unsynced == 0) {
            M->unsynced_since_ms = mg_time_mono_ms();
        }
        M->unsynced++;
        if (M->conf.postgres) {
            __atomic_add_fetch(&mg_spend_shm->queued_rows, 1, __ATOMIC_RELAXED);
        }
    }
    if (!M->conf.postgres) {
        mg_spend_totals_account(rec); /* kept even when the log row is dropped */
    }
    __atomic_add_fetch(&mg_spend_shm->drained, 1, __ATOMIC_RELAXED);
    return MG_OK;
}

static void
mg_spend_q_failed(const char *what, const mg_err_t *err)
{
    int64_t now = mg_time_mono_ms();
    bool same = strcmp(M->q_error, err->msg) == 0;
    snprintf(M->q_error, sizeof(M->q_error), "%s", err->msg);
    if (!same || now - M->q_error_logged_ms >= 10000) {
        mg_log(MG_LOG_ERROR, NULL, "spend log queue: %s failed: %s; retrying", what, err->msg);
        M->q_error_logged_ms = now;
    }
}

static void
mg_spend_drain(void)
{
    if (M->q == NULL) {
        if (mg_time_mono_ms() < M->q_retry_ms) {
            return;
        }
        mg_err_t err;
        if (mg_spend_open_queue(&err) != MG_OK) {
            mg_spend_q_failed("opening the state directory", &err);
            M->q_retry_ms = mg_time_mono_ms() + 1000;
            if (M->q != NULL) {
                mg_sq_close(M->q);
                M->q = NULL;
            }
            return;
        }
        mg_log(MG_LOG_NOTICE, NULL, "spend log queue in %s available again", M->conf.dir);
    }
    bool took = false;
    for (int i = 0; i < M->nworkers; i++) {
        mg_spend_ring_t *r = mg_spend_ring_at(i);
        uint64_t head = mg_spend_ring_head(r);
        uint64_t pos = mg_spend_ring_tail(r);
        for (;;) {
            uint32_t len;
            const unsigned char *rec = mg_spend_ring_peek(r, &pos, head, &len);
            if (rec == NULL) {
                if (len == UINT32_MAX) {
                    __atomic_add_fetch(&mg_spend_shm->corrupt, 1, __ATOMIC_RELAXED);
                    mg_log(MG_LOG_ERROR, NULL, "spend ring of worker %d damaged at %" PRIu64
                                               ": skipping to its head", i, pos);
                    pos = head;
                }
                break;
            }
            if (mg_spend_take(rec, len) != MG_OK) {
                break;
            }
            took = true;
            pos += len;
        }
        mg_spend_ring_consume(r, pos);
    }
    int64_t now = mg_time_mono_ms();
    bool sync = M->unsynced >= MG_SPEND_SYNC_ROWS ||
                (M->unsynced > 0 && now - M->unsynced_since_ms >= MG_SPEND_SYNC_MS) ||
                M->quiescing;
    if (!took && !sync && mg_sq_buffered(M->q) == 0) {
        return;
    }
    mg_err_t err;
    if (mg_sq_flush(M->q, sync, &err) != MG_OK) {
        mg_spend_q_failed("writing", &err);
        return;
    }
    if (M->q_error[0] != '\0') {
        mg_log(MG_LOG_NOTICE, NULL, "spend log queue writes again");
        M->q_error[0] = '\0';
    }
    if (sync) {
        M->synced_total += M->unsynced;
        M->unsynced = 0;
    }
    if (M->conf.postgres && took) {
        mg_spend_sink_kick();
    }
}

static void
mg_spend_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    (void) arg;
    mg_spend_drain();
}

/* ---- the PostgreSQL sink ---- */

static void
mg_spend_sink_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
mg_spend_sink_error(const char *fmt, ...)
{
    char m[sizeof(M->last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    bool same = strcmp(m, M->last_error) == 0;
    snprintf(M->last_error, sizeof(M->last_error), "%s", m);
    M->last_error_ms = mg_time_real_ms();
    mg_log(same ? MG_LOG_DEBUG : MG_LOG_WARN, NULL, "spend sink: %s", m);
}

static void
mg_spend_sink_schedule(int64_t delay_ms)
{
    struct timeval tv = {(time_t) (delay_ms / 1000), (suseconds_t) ((delay_ms % 1000) * 1000)};
    evtimer_add(M->sink_ev, &tv);
}

static void
mg_spend_rollback_done(void *ud, PGresult *res, const char *err, const char *st)
{
    (void) ud;
    (void) res;
    (void) st;
    M->rolling_back = false;
    if (err != NULL) {
        mg_spg_reset(M->sink, "ROLLBACK failed");
    }
    mg_spend_sink_schedule(M->backoff_ms);
}

static void mg_spend_publish(void);

/* After a failed step: leave the transaction, wait, and send the same rows again. */
static void
mg_spend_batch_failed(const char *err, const char *sqlstate)
{
    M->inflight = false;
    M->retries++;
    bool transient = mg_spend_sql_transient(sqlstate);
    uint64_t rejected = 0;
    mg_spend_sink_error("batch of %d row%s (first request_id %s) failed (SQLSTATE %s): %s%s",
                        M->batch_rows, M->batch_rows == 1 ? "" : "s", M->batch_first_rid,
                        sqlstate[0] ? sqlstate : "none", err,
                        transient ? "; retrying" : "; sending its rows one by one");
    if (!transient) {
        if (M->batch_rows > 1 && M->split_left == 0) {
            M->split_left = M->batch_rows;
        } else if (M->batch_rows == 1) {
            /* this row alone is refused by the database: keep it on disk, move on */
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/rejected.jsonl", M->conf.dir);
            FILE *f = fopen(path, "ae");
            if (f != NULL) {
                fprintf(f, "%.*s\n", (int) mg_buf_len(&M->batch), mg_buf_head(&M->batch));
                fclose(f);
            }
            mg_log(MG_LOG_ERROR, NULL, "spend sink: the database refuses the row of request_id "
                                       "%s (SQLSTATE %s: %s); it is kept in %s and skipped",
                   M->batch_first_rid, sqlstate, err, path);
            M->rows_rejected++;
            M->ack = M->batch_end;
            rejected = 1;
            if (M->split_left > 0) {
                M->split_left--;
            }
            M->backoff_ms = 100;
        }
    } else {
        M->backoff_ms = M->backoff_ms * 2 > MG_SPEND_BACKOFF_MAX_MS ? MG_SPEND_BACKOFF_MAX_MS
                                                                    : M->backoff_ms * 2;
    }
    if (M->send_on) {
        mg_sq_reader_free(&M->send);
        M->send_on = false;
    }
    /* the retry shows at once, not at the next 250 ms tick; the live queued count after it,
     * as in mg_spend_commit_done() */
    mg_spend_publish();
    if (rejected > 0) {
        __atomic_sub_fetch(&mg_spend_shm->queued_rows, rejected, __ATOMIC_RELEASE);
    }
    PGTransactionStatusType ts = mg_spg_txn(M->sink);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        M->rolling_back = true;
        if (mg_spg_send(M->sink, "ROLLBACK", 10000, mg_spend_rollback_done, NULL) == MG_OK) {
            return;
        }
        M->rolling_back = false;
    }
    mg_spend_sink_schedule(transient ? M->backoff_ms : 0);
}

static void
mg_spend_commit_done(void *ud, PGresult *res, const char *err, const char *st)
{
    (void) ud;
    if (err != NULL) {
        mg_spend_batch_failed(err, st);
        return;
    }
    long inserted = res != NULL && PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10)
                                                        : 0;
    M->inflight = false;
    M->batches++;
    M->rows_acked += (uint64_t) M->batch_rows;
    M->rows_inserted += (uint64_t) inserted;
    M->ack = M->batch_end;
    M->last_ack_real_ms = mg_time_real_ms();
    if (M->split_left > 0) {
        M->split_left -= M->batch_rows;
        if (M->split_left < 0) {
            M->split_left = 0;
        }
    }
    M->backoff_ms = 100;
    if (M->last_error[0] != '\0') {
        mg_log(MG_LOG_NOTICE, NULL, "spend sink: batches commit again (%s)", mg_spg_url(M->sink));
        M->last_error[0] = '\0';
    }
    /* The sink's section of the state first, the live queued count after it: whoever sees
     * queued_rows reach 0 also sees the batches, retries and errors that got it there (the
     * section was only published every 250 ms, so a reader could see every row acknowledged
     * beside counters from before the retry). */
    mg_spend_publish();
    __atomic_sub_fetch(&mg_spend_shm->queued_rows, (uint64_t) M->batch_rows, __ATOMIC_RELEASE);
    mg_sq_release(M->q, M->ack);
    mg_spend_sink_schedule(0);
}

static void
mg_spend_begin_done(void *ud, PGresult *res, const char *err, const char *st)
{
    (void) ud;
    if (err != NULL) {
        mg_spend_batch_failed(err, st);
        return;
    }
    mg_spend_cols_t cols;
    mg_err_t e;
    if (mg_spend_sql_cols(res, &cols, &e) != MG_OK) {
        mg_spend_batch_failed(e.msg, "42P01");
        return;
    }
    char *lit = mg_spg_literal(M->sink, mg_buf_head(&M->batch), mg_buf_len(&M->batch));
    if (lit == NULL) {
        mg_spend_batch_failed("PQescapeLiteral() failed", "");
        return;
    }
    mg_buf_t sql = MG_BUF_INIT;
    mg_spend_sql_batch(&sql, &cols, lit);
    free(lit);
    int rc = mg_spg_send(M->sink, mg_buf_cstr(&sql), MG_SPEND_BATCH_TIMEOUT_MS,
                         mg_spend_commit_done, NULL);
    mg_buf_free(&sql);
    if (rc != MG_OK) {
        mg_spend_batch_failed("the connection went down", "08006");
    }
}

/* Reads the next batch from the acknowledged position into M->batch. */
static int
mg_spend_batch_build(void)
{
    if (!M->send_on) {
        mg_sq_reader_init(&M->send, M->q, M->ack);
        M->send_on = true;
    }
    mg_buf_reset(&M->batch);
    mg_buf_append_str(&M->batch, "[");
    int limit = M->split_left > 0 ? 1 : MG_SPEND_BATCH_ROWS;
    int n = 0;
    mg_map_t seen;
    mg_map_init(&seen);
    mg_sq_pos_t end = M->send.pos;
    M->batch_first_rid[0] = '\0';
    while (n < limit && mg_buf_len(&M->batch) < MG_SPEND_BATCH_BYTES) {
        mg_sq_rec_t rec;
        mg_err_t err;
        int rc = mg_sq_next(&M->send, &rec, &err);
        if (rc != MG_OK) {
            if (rc == MG_ERROR) {
                mg_spend_sink_error("reading the queue: %s", err.msg);
            }
            break;
        }
        const char *uid;
        const mg_spend_rec_t *row = mg_spend_payload_rec(rec.payload, rec.len, &uid);
        if (row == NULL) {
            end = rec.next;
            continue; /* not a row (damaged and checksummed anyway): nothing to send */
        }
        size_t rl;
        const char *rid = mg_spend_rec_str(row, MG_SPEND_F_REQUEST_ID, &rl);
        if (mg_map_get(&seen, rid, rl) != NULL) {
            /* the same request_id twice in one batch: the second goes in the next one, where
             * the statement sees the first */
            M->send.pos = rec.at;
            break;
        }
        mg_map_put(&seen, rid, rl, (void *) 1);
        if (n == 0) {
            snprintf(M->batch_first_rid, sizeof(M->batch_first_rid), "%.*s", (int) rl, rid);
        }
        if (n > 0) {
            mg_buf_append_str(&M->batch, ",");
        }
        mg_spend_sql_row(&M->batch, row, uid, M->conf.store_prompts);
        end = rec.next;
        n++;
    }
    mg_map_free(&seen);
    mg_buf_append_str(&M->batch, "]");
    M->batch_rows = n;
    M->batch_end = end;
    if (n == 0 && mg_sq_pos_cmp(end, M->ack) > 0) {
        M->ack = end; /* only damaged records were there */
    }
    return n;
}

static void mg_spend_retention_step(void);

static void
mg_spend_sink_kick(void)
{
    if (M == NULL || !M->conf.postgres || M->sink == NULL || M->q == NULL) {
        return;
    }
    if (M->inflight || M->rolling_back || !mg_spg_ready(M->sink) || mg_spg_busy(M->sink)) {
        return;
    }
    if (M->retention_running && M->retention_turn++ % 8 == 7) {
        mg_spend_retention_step(); /* under steady traffic too: one delete per 8 batches */
        return;
    }
    int n = mg_spend_batch_build();
    if (n == 0) {
        mg_spend_retention_step(); /* the reader stays: rows written later continue there */
        return;
    }
    M->inflight = true;
    if (mg_spg_send(M->sink, mg_spend_sql_begin(), MG_SPEND_BATCH_TIMEOUT_MS,
                    mg_spend_begin_done, NULL) != MG_OK) {
        M->inflight = false;
        mg_sq_reader_free(&M->send);
        M->send_on = false;
    }
}

static void
mg_spend_sink_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    (void) arg;
    mg_spend_sink_kick();
}

static void
mg_spend_sink_state(void *ud, bool up)
{
    (void) ud;
    M->connected = up;
    if (!up) {
        mg_spend_sink_error("database connection lost: %s", mg_spg_error(M->sink));
    }
    mg_spend_publish(); /* the change shows at once, not at the next 250 ms tick */
    if (up) {
        mg_spend_sink_schedule(0);
    }
}

static void
mg_spend_reader_state(void *ud, bool up)
{
    (void) ud;
    if (up) {
        mg_spend_query_kick();
    }
}

/* ---- retention ---- */

static void
mg_spend_retention_done(void *ud, PGresult *res, const char *err, const char *st)
{
    (void) ud;
    (void) st;
    if (err != NULL) {
        snprintf(M->retention_error, sizeof(M->retention_error), "%s", err);
        M->retention_running = false;
        mg_log(MG_LOG_WARN, NULL, "spend retention: deleting old rows failed: %s; the next run "
                                  "goes on", err);
        mg_spend_sink_schedule(M->backoff_ms);
        return;
    }
    long n = res != NULL && PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    M->retention_deleted += (uint64_t) n;
    M->retention_batches++;
    M->retention_error[0] = '\0';
    if (n < M->conf.cleanup_batch || --M->retention_loops <= 0) {
        M->retention_running = false;
        M->retention_last_real_ms = mg_time_real_ms();
        mg_log(MG_LOG_INFO, NULL, "spend retention: run done (%" PRIu64 " rows deleted in all)",
               M->retention_deleted);
    }
    mg_spend_sink_schedule(0);
}

/* PostgreSQL: one DELETE of at most cleanup_batch rows, when the sink has nothing to send. */
static void
mg_spend_retention_step(void)
{
    if (!M->retention_running || M->conf.retention_us <= 0) {
        return;
    }
    char cut[40], sql[512];
    mg_spend_fmt_time(M->retention_cutoff_us, cut, sizeof(cut));
    snprintf(sql, sizeof(sql),
             "WITH d AS (DELETE FROM \"LiteLLM_SpendLogs\" WHERE request_id IN (SELECT request_id "
             "FROM \"LiteLLM_SpendLogs\" WHERE \"startTime\" < '%s'::timestamp LIMIT %d) RETURNING "
             "1) SELECT count(*) FROM d",
             cut, M->conf.cleanup_batch);
    if (mg_spg_send(M->sink, sql, MG_SPEND_BATCH_TIMEOUT_MS, mg_spend_retention_done, NULL) !=
        MG_OK) {
        M->retention_running = false;
    }
}

/* Embedded: whole segments older than the period and covered by the totals, a bounded number
 * per run. */
static void
mg_spend_retention_embedded(int64_t cutoff_us)
{
    int n = 0;
    uint64_t rows = 0;
    while (n < M->conf.cleanup_loops) {
        const mg_sq_seg_t *s = mg_sq_seg(M->q, 0);
        if (s == NULL || mg_sq_nsegs(M->q) < 2 || s->max_stamp >= cutoff_us) {
            break;
        }
        mg_sq_seg_t gone;
        if (!mg_sq_drop_oldest(M->q, M->totals_pos, &gone)) {
            break;
        }
        rows += gone.records;
        n++;
    }
    M->retention_deleted += rows;
    M->retention_batches += (uint64_t) n;
    M->retention_last_real_ms = mg_time_real_ms();
    if (n > 0) {
        mg_log(MG_LOG_INFO, NULL, "spend retention: %d segment%s (%" PRIu64 " rows) older than "
                                  "the retention period deleted", n, n == 1 ? "" : "s", rows);
    }
}

static void
mg_spend_retention_tick(void)
{
    if (M->conf.retention_us <= 0 || M->q == NULL) {
        return;
    }
    int64_t now = mg_time_mono_ms();
    if (now < M->next_retention_ms) {
        return;
    }
    M->next_retention_ms = now + M->conf.retention_interval_ms;
    int64_t cutoff = mg_time_real_ms() * 1000 - M->conf.retention_us;
    if (M->conf.postgres) {
        if (!M->retention_running) {
            M->retention_running = true;
            M->retention_loops = M->conf.cleanup_loops;
            M->retention_cutoff_us = cutoff;
            mg_spend_sink_schedule(0);
        }
        return;
    }
    mg_err_t err;
    if (mg_spend_totals_write(&err) != MG_OK) {
        mg_log(MG_LOG_WARN, NULL, "spend retention waits: writing the totals failed: %s",
               err.msg);
        return;
    }
    mg_spend_retention_embedded(cutoff);
}

/* ---- state ---- */

static void
mg_spend_publish(void)
{
    json_t *st = json_object();
    json_object_set_new(st, "directory", json_string(M->conf.dir));
    json_t *q = json_object();
    json_object_set_new(q, "bytes_on_disk", json_integer(M->q ? (json_int_t) mg_sq_bytes(M->q) : 0));
    json_object_set_new(q, "bound_bytes", json_integer((json_int_t) M->conf.queue_max_bytes));
    json_object_set_new(q, "segments", json_integer(M->q ? (json_int_t) mg_sq_nsegs(M->q) : 0));
    json_object_set_new(q, "damaged_records",
                        json_integer(M->q ? (json_int_t) mg_sq_damaged(M->q) : 0));
    json_object_set_new(q, "unsynced_rows", json_integer((json_int_t) M->unsynced));
    json_object_set_new(q, "error", M->q_error[0] ? json_string(M->q_error) : json_null());
    json_object_set_new(st, "queue", q);
    json_t *s = json_object();
    if (M->conf.postgres) {
        json_object_set_new(s, "type", json_string("postgres"));
        json_object_set_new(s, "url", json_string(M->sink ? mg_spg_url(M->sink) : ""));
        json_object_set_new(s, "connected", json_boolean(M->connected));
        json_object_set_new(s, "batches", json_integer((json_int_t) M->batches));
        json_object_set_new(s, "rows_acknowledged", json_integer((json_int_t) M->rows_acked));
        json_object_set_new(s, "rows_inserted", json_integer((json_int_t) M->rows_inserted));
        json_object_set_new(s, "rows_rejected", json_integer((json_int_t) M->rows_rejected));
        json_object_set_new(s, "retries", json_integer((json_int_t) M->retries));
        json_object_set_new(s, "reconnects",
                            json_integer(M->sink ? (json_int_t) mg_spg_reconnects(M->sink) : 0));
        json_object_set_new(s, "last_ack_ms", json_integer((json_int_t) M->last_ack_real_ms));
    } else {
        json_object_set_new(s, "type", json_string("embedded"));
        json_object_set_new(s, "connected", json_true());
        json_object_set_new(s, "rows_synced", json_integer((json_int_t) M->synced_total));
        json_object_set_new(s, "rows_removed_by_size_bound",
                            json_integer((json_int_t) M->log_rotated_rows));
        size_t ent = 0;
        for (int k = 0; k < MG_SPEND_K__COUNT; k++) {
            ent += M->totals[k].count;
        }
        json_object_set_new(s, "totals_entities", json_integer((json_int_t) ent));
        json_object_set_new(s, "totals_table_full", json_boolean(mg_spend_shm->totals_full));
    }
    json_object_set_new(s, "last_error", M->last_error[0] ? json_string(M->last_error)
                                                          : json_null());
    json_object_set_new(s, "last_error_ms", json_integer((json_int_t) M->last_error_ms));
    json_object_set_new(st, "sink", s);
    json_t *r = json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}", "period_seconds",
                          (json_int_t) (M->conf.retention_us / 1000000), "interval_seconds",
                          (json_int_t) (M->conf.retention_interval_ms / 1000), "deleted_rows",
                          (json_int_t) M->retention_deleted, "batches",
                          (json_int_t) M->retention_batches, "last_run_ms",
                          (json_int_t) M->retention_last_real_ms, "running",
                          M->retention_running);
    json_object_set_new(r, "last_error", M->retention_error[0] ? json_string(M->retention_error)
                                                               : json_null());
    json_object_set_new(st, "retention", r);
    json_object_set_new(st, "store_prompts_in_spend_logs", json_boolean(M->conf.store_prompts));
    char *txt = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    mg_spend_publish_blob(txt, strlen(txt));
    free(txt);
}

static void
mg_spend_slow_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    (void) arg;
    int64_t now = mg_time_mono_ms();
    if (M->q != NULL && !M->conf.postgres) {
        if (M->totals_dirty && now - M->totals_written_ms >= MG_SPEND_TOTALS_MS) {
            mg_err_t err;
            if (mg_spend_totals_write(&err) != MG_OK) {
                mg_spend_q_failed("writing the totals", &err);
            }
        }
        /* the size bound: oldest first, once covered by the totals */
        mg_sq_seg_t gone;
        while (mg_sq_bytes(M->q) > M->conf.queue_max_bytes / 10 * 9 &&
               mg_sq_drop_oldest(M->q, M->totals_pos, &gone)) {
            M->log_rotated_rows += gone.records;
        }
    }
    if (M->q != NULL && M->conf.postgres && now - M->ack_saved_ms >= MG_SPEND_ACK_MS) {
        mg_spend_ack_save();
    }
    mg_spend_retention_tick();
    mg_spend_publish();
}

/* ---- lifecycle on the loop ---- */

void
mg_spend_master_start(struct event_base *base)
{
    if (M == NULL) {
        return;
    }
    M->base = base;
    M->drain_ev = event_new(base, -1, EV_PERSIST, mg_spend_drain_cb, NULL);
    M->slow_ev = event_new(base, -1, EV_PERSIST, mg_spend_slow_cb, NULL);
    M->sink_ev = evtimer_new(base, mg_spend_sink_cb, NULL);
    struct timeval dtv = {0, MG_SPEND_DRAIN_MS * 1000}, stv = {0, MG_SPEND_SLOW_MS * 1000};
    event_add(M->drain_ev, &dtv);
    event_add(M->slow_ev, &stv);
    M->next_retention_ms = mg_time_mono_ms() + 1000; /* the first run soon after start */
    if (M->conf.postgres) {
        mg_err_t err;
        M->sink = mg_spg_create(base, M->conf.database_url, "spend sink", mg_spend_sql_schema(),
                                mg_spend_sink_state, NULL, &err);
        M->reader = mg_spg_create(base, M->conf.database_url, "spend reader", NULL,
                                  mg_spend_reader_state, NULL, &err);
        if (M->sink == NULL || M->reader == NULL) {
            mg_spend_sink_error("%s", err.msg);
        } else {
            mg_spg_start(M->sink);
            mg_spg_start(M->reader);
        }
    }
    mg_spend_publish();
}

void
mg_spend_master_set_config(const mg_config_t *cfg)
{
    if (M == NULL) {
        return;
    }
    mg_spend_conf_t c;
    mg_err_t err;
    if (mg_spend_conf_parse(cfg, M->config_path, &c, &err) != MG_OK) {
        mg_log(MG_LOG_ERROR, NULL, "spend settings of the reloaded config refused (the previous "
                                   "ones stay): %s", err.msg);
        return;
    }
    if (c.postgres != M->conf.postgres ||
        (c.postgres && strcmp(c.database_url, M->conf.database_url) != 0) ||
        strcmp(c.dir, M->conf.dir) != 0) {
        mg_log(MG_LOG_WARN, NULL, "spend logs keep their store (database or state directory) "
                                  "until a restart");
    }
    if (mg_spend_ring_bytes(cfg) != mg_spend_shm->ring_cap) {
        mg_log(MG_LOG_WARN, NULL, "store_prompts_in_spend_logs changed: the spend rings keep "
                                  "their size until a restart (stored prompts are cut to fit)");
    }
    bool retention_changed = c.retention_us != M->conf.retention_us ||
                             c.retention_interval_ms != M->conf.retention_interval_ms;
    M->conf.store_prompts = c.store_prompts;
    M->conf.retention_us = c.retention_us;
    M->conf.retention_interval_ms = c.retention_interval_ms;
    M->conf.cleanup_batch = c.cleanup_batch;
    M->conf.cleanup_loops = c.cleanup_loops;
    M->conf.queue_max_bytes = c.queue_max_bytes;
    M->conf.seg_max_bytes = c.seg_max_bytes;
    M->conf.seg_max_age_ms = c.seg_max_age_ms;
    if (retention_changed) {
        M->next_retention_ms = mg_time_mono_ms();
    }
    if (M->q != NULL) {
        mg_sq_conf_t qc = {c.seg_max_bytes, c.seg_max_age_ms, c.queue_max_bytes};
        mg_sq_set_conf(M->q, &qc);
    }
    mg_spend_conf_free(&c);
}

bool
mg_spend_master_quiesce(int64_t deadline_ms)
{
    if (M == NULL) {
        return true;
    }
    M->quiescing = true;
    mg_spend_drain();
    if (M->q == NULL) {
        return true;
    }
    mg_err_t err;
    if (!M->conf.postgres) {
        if (mg_spend_totals_write(&err) != MG_OK) {
            mg_spend_q_failed("writing the totals", &err);
        }
        return true;
    }
    mg_spend_ack_save();
    bool pending = mg_sq_pos_cmp(M->ack, mg_sq_end(M->q)) < 0;
    if (!pending || !M->connected || mg_time_mono_ms() >= deadline_ms) {
        if (pending) {
            mg_log(MG_LOG_NOTICE, NULL, "spend: %" PRIu64 " row%s stay queued in %s and are "
                                        "sent after the next start",
                   mg_spend_queued_rows(), mg_spend_queued_rows() == 1 ? "" : "s", M->conf.dir);
        }
        return true;
    }
    mg_spend_sink_kick();
    return false;
}

void
mg_spend_master_stop(void)
{
    if (M == NULL) {
        return;
    }
    M->quiescing = true;
    mg_spend_drain();
    mg_spend_query_abort_all();
    mg_err_t err;
    if (M->q != NULL) {
        if (!M->conf.postgres && mg_spend_totals_write(&err) != MG_OK) {
            mg_log(MG_LOG_ERROR, NULL, "spend: writing the totals at exit failed: %s", err.msg);
        }
        if (M->conf.postgres) {
            mg_spend_ack_save();
        }
        if (mg_sq_flush(M->q, true, &err) != MG_OK) {
            mg_log(MG_LOG_ERROR, NULL, "spend: the last write at exit failed: %s", err.msg);
        }
    }
    if (M->send_on) {
        mg_sq_reader_free(&M->send);
    }
    mg_spg_destroy(M->sink);
    mg_spg_destroy(M->reader);
    if (M->drain_ev != NULL) {
        event_free(M->drain_ev);
        event_free(M->slow_ev);
        event_free(M->sink_ev);
    }
    mg_sq_close(M->q);
    for (int k = 0; k < MG_SPEND_K__COUNT; k++) {
        for (size_t i = 0; i < M->totals[k].cap; i++) {
            free(M->totals[k].slots[i].val);
        }
        mg_map_free(&M->totals[k]);
    }
    mg_buf_free(&M->scratch);
    mg_buf_free(&M->batch);
    mg_spend_conf_free(&M->conf);
    free(M);
    M = NULL;
}

void
mg_spend_master_query(json_t *q, mg_spend_reply_fn reply, void *ctx)
{
    mg_spend_qenv_t env;
    memset(&env, 0, sizeof(env));
    if (M == NULL || M->base == NULL) {
        json_t *a = json_pack("{s:b,s:i,s:s}", "ok", 0, "status", 503, "error",
                              "spend logs are not running");
        reply(ctx, a);
        json_decref(a);
        return;
    }
    env.base = M->base;
    env.store_prompts = M->conf.store_prompts;
    if (M->conf.postgres) {
        env.reader = M->reader;
    } else {
        mg_spend_drain(); /* what the rings hold is in the answer too */
        env.q = M->q;
        env.hide_before_us = M->conf.retention_us > 0
                                 ? mg_time_real_ms() * 1000 - M->conf.retention_us
                                 : 0;
    }
    if (M->conf.postgres && env.reader == NULL) {
        json_t *a = json_pack("{s:b,s:i,s:s}", "ok", 0, "status", 503, "error",
                              M->last_error[0] ? M->last_error : "no database connection");
        reply(ctx, a);
        json_decref(a);
        return;
    }
    mg_spend_query_start(&env, q, reply, ctx);
}
