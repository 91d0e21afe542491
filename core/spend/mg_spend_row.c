/*
 * mg_spend_row.c -- the row setters and the push (worker side), the shared totals table and
 * the shared state (readable by every process).  See mg_spend.h.
 *
 * The push is the request-path part: one reserve in this worker's ring, one memcpy of the
 * fixed part and the text in use, the tails only when set, one release store.
 */
#include "mg_spend_int.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_map.h"
#include "../base/mg_time.h"
#include "../registry/mg_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

_Static_assert(offsetof(mg_spend_row_t, text) == sizeof(mg_spend_rec_t),
               "the text must follow the fixed part (one memcpy)");
_Static_assert(sizeof(mg_spend_rec_t) % 8 == 0, "records are 8-byte aligned");

mg_spend_shm_t *mg_spend_shm = NULL;
static mg_spend_ring_t *mg_spend_my_ring;   /* this worker's ring (NULL: not a worker) */

static const uint16_t mg_spend_bounds[MG_SPEND_F__COUNT] = {
    80, 32, 64, 256, 256, 128, 128, 256, 256, 128, 256, 64, 512, 1024, 2048, 64, 128,
};

_Static_assert(80 + 32 + 64 + 256 + 256 + 128 + 128 + 256 + 256 + 128 + 256 + 64 + 512 + 1024 +
                       2048 + 64 + 128 ==
                   MG_SPEND_TEXT_MAX,
               "MG_SPEND_TEXT_MAX is the sum of the field bounds");

/* ---- rows ---- */

size_t
mg_spend_field_max(mg_spend_field_t f)
{
    return (unsigned) f < MG_SPEND_F__COUNT ? mg_spend_bounds[f] : 0;
}

void
mg_spend_row_init(mg_spend_row_t *row)
{
    memset(&row->rec, 0, sizeof(row->rec));
    row->tail[0] = row->tail[1] = NULL;
    row->tail_n[0] = row->tail_n[1] = 0;
}

void
mg_spend_row_set(mg_spend_row_t *row, mg_spend_field_t f, const char *s, size_t n)
{
    if (s == NULL || (unsigned) f >= MG_SPEND_F__COUNT) {
        return;
    }
    size_t max = mg_spend_bounds[f];
    if (n > max) {
        if (f == MG_SPEND_F_REQUEST_TAGS || f == MG_SPEND_F_METADATA) {
            /* cut JSON is not JSON: store nothing and say so */
            row->rec.flags |= f == MG_SPEND_F_REQUEST_TAGS ? MG_SPEND_FLAG_TAGS_CUT
                                                           : MG_SPEND_FLAG_META_CUT;
            return;
        }
        n = max;
        /* s[n] is the first byte left out: if it continues a character, leave that out too */
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    uint32_t used = row->rec.text_used;
    if (used + n > MG_SPEND_TEXT_MAX) {
        return; /* only when a field is set twice */
    }
    memcpy(row->text + used, s, n);
    row->rec.off[f] = (uint16_t) used;
    row->rec.slen[f] = (uint16_t) n;
    row->rec.text_used = used + (uint32_t) n;
}

void
mg_spend_row_setz(mg_spend_row_t *row, mg_spend_field_t f, const char *s)
{
    if (s != NULL) {
        mg_spend_row_set(row, f, s, strlen(s));
    }
}

const char *
mg_spend_rec_str(const mg_spend_rec_t *rec, mg_spend_field_t f, size_t *n)
{
    *n = rec->slen[f];
    return (const char *) (rec + 1) + rec->off[f];
}

/* ---- push ---- */

void
mg_spend_set_worker(int index)
{
    mg_spend_my_ring = (mg_spend_shm != NULL && index >= 0 && index < mg_spend_shm->nworkers)
                           ? mg_spend_ring_at(index)
                           : NULL;
}

static void
mg_spend_drop(mg_spend_ring_t *r)
{
    r->dropped++;
    int64_t now = mg_time_mono_ms();
    if (r->last_drop_log_ms == 0 || now - r->last_drop_log_ms >= 10000) {
        mg_log(MG_LOG_ERROR, NULL, "spend log ring full: %llu row%s dropped since the last "
                                   "report (%llu in all); the master is not draining it",
               (unsigned long long) (r->dropped - r->dropped_logged),
               r->dropped - r->dropped_logged == 1 ? "" : "s", (unsigned long long) r->dropped);
        r->last_drop_log_ms = now;
        r->dropped_logged = r->dropped;
    }
}

void
mg_spend_push(const mg_spend_row_t *row)
{
    mg_spend_ring_t *r = mg_spend_my_ring;
    if (r == NULL) {
        return;
    }
    size_t body = sizeof(mg_spend_rec_t) + row->rec.text_used;
    size_t t0 = row->tail_n[0], t1 = row->tail_n[1];
    uint8_t flags = row->rec.flags;
    if (__builtin_expect(t0 > MG_SPEND_TAIL_MAX || t1 > MG_SPEND_TAIL_MAX, 0)) {
        t0 = t0 > MG_SPEND_TAIL_MAX ? MG_SPEND_TAIL_MAX : t0;
        t1 = t1 > MG_SPEND_TAIL_MAX ? MG_SPEND_TAIL_MAX : t1;
        flags |= MG_SPEND_FLAG_TAIL_CUT;
    }
    uint32_t n = (uint32_t) ((body + t0 + t1 + 7) & ~(size_t) 7);
    uint64_t next;
    unsigned char *dst = mg_spend_ring_reserve(r, n, &next);
    if (__builtin_expect(dst == NULL, 0)) {
        mg_spend_drop(r);
        return;
    }
    memcpy(dst, &row->rec, body);
    mg_spend_rec_t *h = (mg_spend_rec_t *) (void *) dst;
    h->len = n;
    h->kind = MG_SPEND_REC_ROW;
    h->flags = flags;
    h->tail_len[0] = (uint32_t) t0;
    h->tail_len[1] = (uint32_t) t1;
    if (__builtin_expect(t0 + t1 > 0, 0)) {
        if (t0 > 0) {
            memcpy(dst + body, row->tail[0], t0);
        }
        if (t1 > 0) {
            memcpy(dst + body + t0, row->tail[1], t1);
        }
    }
    mg_spend_ring_publish(r, next);
}

/* ---- sizes ---- */

static bool
mg_spend_cfg_bool(const mg_config_t *cfg, const char *key, const char *env)
{
    json_t *v = cfg != NULL ? json_object_get(cfg->general_settings, key) : NULL;
    if (json_is_true(v)) {
        return true;
    }
    const char *e = env != NULL ? getenv(env) : NULL;
    return e != NULL && (strcasecmp(e, "true") == 0 || strcmp(e, "1") == 0);
}

size_t
mg_spend_ring_bytes(const mg_config_t *cfg)
{
    bool prompts = mg_spend_cfg_bool(cfg, "store_prompts_in_spend_logs",
                                     "STORE_PROMPTS_IN_SPEND_LOGS");
    return prompts ? 16u * 1024 * 1024 : 4u * 1024 * 1024;
}

static size_t
mg_spend_align(size_t n)
{
    return (n + 63) & ~(size_t) 63;
}

size_t
mg_spend_shm_size(const mg_config_t *cfg, int nworkers)
{
    size_t ring = mg_spend_align(mg_spend_ring_size(mg_spend_ring_bytes(cfg)));
    return mg_spend_align(sizeof(mg_spend_shm_t)) + (size_t) nworkers * ring +
           (size_t) MG_SPEND_TOTALS_CAP * sizeof(mg_spend_tot_t) + 128;
}

/* ---- totals ---- */

static const char *const mg_spend_kinds[MG_SPEND_K__COUNT] = {"key", "team", "user", "end_user",
                                                              "org"};

const char *
mg_spend_kind_name(mg_spend_kind_t k)
{
    return mg_spend_kinds[k];
}

mg_spend_field_t
mg_spend_kind_field(mg_spend_kind_t k)
{
    static const mg_spend_field_t f[MG_SPEND_K__COUNT] = {
        MG_SPEND_F_API_KEY, MG_SPEND_F_TEAM_ID, MG_SPEND_F_USER, MG_SPEND_F_END_USER,
        MG_SPEND_F_ORG_ID,
    };
    return f[k];
}

uint64_t
mg_spend_tot_hash(mg_spend_kind_t k, const char *id, size_t n)
{
    uint64_t h = mg_hash_bytes(id, n) ^ ((uint64_t) (k + 1) * 0x9E3779B97F4A7C15ULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h != 0 ? h : 1;
}

static mg_spend_tot_t *
mg_spend_tot_find(uint64_t h, bool create)
{
    if (mg_spend_shm == NULL || mg_spend_shm->totals_cap == 0) {
        return NULL;
    }
    mg_spend_tot_t *t = mg_spend_totals();
    uint64_t mask = mg_spend_shm->totals_cap - 1;
    for (uint64_t i = h & mask, probes = 0; probes <= mask; i = (i + 1) & mask, probes++) {
        uint64_t k = __atomic_load_n(&t[i].key, __ATOMIC_ACQUIRE);
        if (k == h) {
            return &t[i];
        }
        if (k == 0) {
            if (!create) {
                return NULL;
            }
            /* keep a quarter free: probes stay short for the readers */
            if (mg_spend_shm->totals_used + 1 > mg_spend_shm->totals_cap / 4 * 3) {
                if (!mg_spend_shm->totals_full) {
                    mg_log(MG_LOG_ERROR, NULL, "spend totals table full (%llu entities): new "
                                               "entities are not shared with the workers until "
                                               "a restart",
                           (unsigned long long) mg_spend_shm->totals_used);
                }
                mg_spend_shm->totals_full = 1;
                return NULL;
            }
            __atomic_store_n(&t[i].bits, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&t[i].key, h, __ATOMIC_RELEASE);
            mg_spend_shm->totals_used++;
            return &t[i];
        }
    }
    return NULL;
}

static double
mg_spend_bits_dbl(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t
mg_spend_dbl_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

bool
mg_spend_tot_add(mg_spend_kind_t k, const char *id, size_t n, double v)
{
    mg_spend_tot_t *e = mg_spend_tot_find(mg_spend_tot_hash(k, id, n), true);
    if (e == NULL) {
        return false;
    }
    double cur = mg_spend_bits_dbl(__atomic_load_n(&e->bits, __ATOMIC_RELAXED));
    __atomic_store_n(&e->bits, mg_spend_dbl_bits(cur + v), __ATOMIC_RELEASE);
    return true;
}

bool
mg_spend_tot_set(mg_spend_kind_t k, const char *id, size_t n, double v)
{
    mg_spend_tot_t *e = mg_spend_tot_find(mg_spend_tot_hash(k, id, n), true);
    if (e == NULL) {
        return false;
    }
    __atomic_store_n(&e->bits, mg_spend_dbl_bits(v), __ATOMIC_RELEASE);
    return true;
}

double
mg_spend_total(const char *table, const char *id)
{
    static const struct {
        const char *name;
        mg_spend_kind_t k;
    } names[] = {
        {"LiteLLM_VerificationToken", MG_SPEND_K_KEY}, {"key", MG_SPEND_K_KEY},
        {"LiteLLM_TeamTable", MG_SPEND_K_TEAM},        {"team", MG_SPEND_K_TEAM},
        {"LiteLLM_UserTable", MG_SPEND_K_USER},        {"user", MG_SPEND_K_USER},
        {"LiteLLM_EndUserTable", MG_SPEND_K_END_USER}, {"end_user", MG_SPEND_K_END_USER},
        {"LiteLLM_OrganizationTable", MG_SPEND_K_ORG}, {"org", MG_SPEND_K_ORG},
    };
    if (table == NULL || id == NULL || mg_spend_shm == NULL ||
        mg_spend_shm->mode != MG_SPEND_MODE_EMBEDDED) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i].name, table) == 0) {
            mg_spend_tot_t *e =
                mg_spend_tot_find(mg_spend_tot_hash(names[i].k, id, strlen(id)), false);
            return e != NULL ? mg_spend_bits_dbl(__atomic_load_n(&e->bits, __ATOMIC_ACQUIRE))
                             : 0;
        }
    }
    return 0;
}

/* ---- the embedded store's identity rows ---- */

static double
mg_spend_row_base(json_t *row)
{
    json_t *b = json_object_get(json_object_get(row, "metadata"), "moongate_spend_base");
    return json_is_number(b) ? json_number_value(b) : 0;
}

static void
mg_spend_row_set_base(json_t *row, double base)
{
    json_t *md = json_object_get(row, "metadata");
    if (!json_is_object(md)) {
        md = json_object();
        json_object_set_new(row, "metadata", md);
    }
    json_object_set_new(md, "moongate_spend_base", json_real(base));
}

json_t *
mg_spend_present(json_t *idents)
{
    if (idents == NULL || mg_spend_shm == NULL || mg_spend_shm->mode != MG_SPEND_MODE_EMBEDDED) {
        return json_incref(idents);
    }
    json_t *out = json_deep_copy(idents);
    static const char *const tables[] = {"key", "team", "user", "end_user", "org"};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        const char *id;
        json_t *row;
        json_object_foreach(json_object_get(out, tables[t]), id, row) {
            if (!json_is_object(row)) {
                continue;
            }
            json_t *sp = json_object_get(row, "spend");
            double s0 = json_is_number(sp) ? json_number_value(sp) : 0;
            double add = mg_spend_total(tables[t], id) - mg_spend_row_base(row);
            json_object_set_new(row, "spend", json_real(s0 + (add > 0 ? add : 0)));
        }
    }
    return out;
}

void
mg_spend_note_set(const char *table, const char *id, json_t *explicit_spend, json_t *cur,
                  json_t *row)
{
    if (table == NULL || id == NULL || !json_is_object(row)) {
        return;
    }
    if (explicit_spend != NULL) {
        mg_spend_row_set_base(row, mg_spend_total(table, id));
        return;
    }
    if (json_object_get(row, "spend") != NULL && mg_spend_row_base(row) != 0) {
        return; /* carried over from cur (a patch of other columns) */
    }
    if (cur != NULL && json_object_get(cur, "spend") != NULL) {
        json_object_set(row, "spend", json_object_get(cur, "spend"));
        mg_spend_row_set_base(row, mg_spend_row_base(cur));
    } else if (cur == NULL) {
        /* a new entity starts now: rows of an earlier one with the same id do not count */
        json_object_set_new(row, "spend", json_real(json_number_value(
                                              json_object_get(row, "spend"))));
        mg_spend_row_set_base(row, mg_spend_total(table, id));
    }
}

/* ---- shared state ---- */

void
mg_spend_publish_blob(const char *json, size_t len)
{
    if (mg_spend_shm == NULL) {
        return;
    }
    if (len > MG_SPEND_BLOB) {
        len = 0; /* never a cut JSON: readers then show only the counters */
    }
    uint32_t seq = __atomic_load_n(&mg_spend_shm->blob_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&mg_spend_shm->blob_seq, seq + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memcpy(mg_spend_shm->blob, json, len);
    mg_spend_shm->blob_len = (uint32_t) len;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&mg_spend_shm->blob_seq, seq + 2, __ATOMIC_RELEASE);
}

uint64_t
mg_spend_dropped(void)
{
    if (mg_spend_shm == NULL) {
        return 0;
    }
    uint64_t n = __atomic_load_n(&mg_spend_shm->disk_dropped, __ATOMIC_RELAXED);
    for (int i = 0; i < mg_spend_shm->nworkers; i++) {
        n += __atomic_load_n(&mg_spend_ring_at(i)->dropped, __ATOMIC_RELAXED);
    }
    return n;
}

uint64_t
mg_spend_queued_rows(void)
{
    return mg_spend_shm != NULL ? __atomic_load_n(&mg_spend_shm->queued_rows, __ATOMIC_RELAXED)
                                : 0;
}

json_t *
mg_spend_state_json(void)
{
    if (mg_spend_shm == NULL) {
        return json_pack("{s:s}", "mode", "off");
    }
    /* The live counters before the master's section: the master publishes the section before
     * it lowers queued_rows, so a reader that sees a row acknowledged here also gets the
     * section that acknowledged it. */
    uint64_t pushed = 0, dropped = 0;
    for (int i = 0; i < mg_spend_shm->nworkers; i++) {
        mg_spend_ring_t *r = mg_spend_ring_at(i);
        pushed += __atomic_load_n(&r->pushed, __ATOMIC_ACQUIRE);
        dropped += __atomic_load_n(&r->dropped, __ATOMIC_ACQUIRE);
    }
    uint64_t drained = __atomic_load_n(&mg_spend_shm->drained, __ATOMIC_ACQUIRE);
    uint64_t queued = __atomic_load_n(&mg_spend_shm->queued_rows, __ATOMIC_ACQUIRE);
    uint64_t disk_dropped = __atomic_load_n(&mg_spend_shm->disk_dropped, __ATOMIC_ACQUIRE);
    uint64_t corrupt = __atomic_load_n(&mg_spend_shm->corrupt, __ATOMIC_ACQUIRE);
    json_t *st = NULL;
    char *buf = mg_xmalloc(MG_SPEND_BLOB + 1);
    for (int tries = 0; tries < 1000 && st == NULL; tries++) {
        uint32_t s1 = __atomic_load_n(&mg_spend_shm->blob_seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            continue;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t len = mg_spend_shm->blob_len;
        if (len > MG_SPEND_BLOB) {
            len = 0;
        }
        memcpy(buf, mg_spend_shm->blob, len);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (s1 == __atomic_load_n(&mg_spend_shm->blob_seq, __ATOMIC_ACQUIRE)) {
            st = len > 0 ? json_loadb(buf, len, 0, NULL) : NULL;
            if (st == NULL) {
                st = json_object();
            }
        }
    }
    free(buf);
    if (st == NULL) {
        st = json_object();
    }
    static const char *const modes[] = {"off", "embedded", "postgres"};
    json_object_set_new(st, "mode", json_string(modes[mg_spend_shm->mode % 3]));
    json_object_set_new(st, "rows_pushed", json_integer((json_int_t) pushed));
    json_object_set_new(st, "rows_drained", json_integer((json_int_t) drained));
    json_object_set_new(st, "dropped_ring_full", json_integer((json_int_t) dropped));
    json_object_set_new(st, "dropped_disk_full", json_integer((json_int_t) disk_dropped));
    json_object_set_new(st, "queued_rows", json_integer((json_int_t) queued));
    json_object_set_new(st, "ring_bytes_per_worker",
                        json_integer((json_int_t) mg_spend_shm->ring_cap));
    json_object_set_new(st, "ring_corrupt_records", json_integer((json_int_t) corrupt));
    return st;
}

/* ---- master helpers: payloads and time ---- */

const mg_spend_rec_t *
mg_spend_payload_rec(const void *p, size_t n, const char **uid)
{
    if (n < 16 + sizeof(mg_spend_rec_t)) {
        return NULL;
    }
    const mg_spend_rec_t *rec = (const mg_spend_rec_t *) (const void *) ((const char *) p + 16);
    size_t body = n - 16;
    if (rec->kind != MG_SPEND_REC_ROW || rec->len > body + 7 || rec->text_used > MG_SPEND_TEXT_MAX ||
        sizeof(*rec) + (size_t) rec->text_used + rec->tail_len[0] + rec->tail_len[1] > body) {
        return NULL;
    }
    for (int f = 0; f < MG_SPEND_F__COUNT; f++) {
        if ((size_t) rec->off[f] + rec->slen[f] > rec->text_used) {
            return NULL;
        }
    }
    *uid = p;
    return rec;
}

void
mg_spend_fmt_time(int64_t us, char *out, size_t len)
{
    time_t s = (time_t) (us / 1000000);
    long frac = (long) (us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        s--;
    }
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void
mg_spend_fmt_day(int64_t us, char *out, size_t len)
{
    time_t s = (time_t) (us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
