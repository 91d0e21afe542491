/*
 * mg_metrics.c -- the shared metrics table and its Prometheus text exposition
 * (see mg_metrics.h for the lifetime and cross-process rules).
 *
 * Shared layout (one mg_shm_alloc() block):
 *   header | index: uint32 slots, open addressing, linear probing | pool of records
 * An index slot is 0 (empty), MG_MX_CLAIMING (a process is writing the record) or
 * 1 + the record's offset in the pool in 64-byte units.  A record is claimed by a CAS
 * 0 -> CLAIMING on its slot, written, then published with a release store; it is never
 * moved or freed.  The number of series is capped at max_series (half the index), so
 * probes stay short and a miss always ends at an empty slot.  Records are 64-byte aligned
 * so two hot series never share a cache line.
 *
 * Process-local: the family list (declared by the master before fork, inherited by the
 * workers) and this process's worker index.
 */
#include "mg_metrics.h"

#include "mg_arena.h"
#include "mg_buf.h"
#include "mg_err.h"
#include "mg_log.h"
#include "mg_shm.h"
#include "mg_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MG_MX_MAGIC 0x6d67206d65747269ULL /* "mg metri" */
#define MG_MX_CLAIMING 0xffffffffu
#define MG_MX_ALIGN 64
#define MG_MX_NAME_MAX 128
#define MG_MX_ORDER_WORKER (-1)
#define MG_MX_ORDER_LE (-2)
/* a claimer that died between its CAS and its publish leaves CLAIMING behind: after this
 * many polls the slot is stepped over like a tombstone (a live claimer takes nanoseconds) */
#define MG_MX_CLAIM_SPINS (1u << 22)

typedef struct {
    uint64_t magic;
    uint32_t index_size;        /* power of two */
    uint32_t max_series;
    uint32_t nseries;           /* atomic: series claimed (or being claimed) */
    uint32_t pad;
    uint64_t pool_size;         /* bytes */
    uint64_t pool_used;         /* atomic bump pointer */
    /* index_size uint32 slots follow, then the pool at a 64-byte boundary */
} mg_mx_shm_t;

typedef struct {
    char name[MG_MX_NAME_MAX];  /* declared name, a counter's "_total" stripped */
    char exposed[MG_MX_NAME_MAX + 8]; /* name on output: a counter's with "_total" */
    const char *help;           /* borrowed: static */
    mg_metric_type_t type;
    mg_metric_scope_t scope;
    int nlabels;
    const char *labels[MG_METRIC_MAX_LABELS]; /* borrowed: static */
    int norder;
    int order[MG_METRIC_MAX_LABELS + 2]; /* output order: label index, or MG_MX_ORDER_* */
    int nbuckets;               /* +Inf included */
    double bounds[MG_METRIC_MAX_BUCKETS];
    double scale;               /* stored units per value unit (1 / unit) */
    uint16_t kind;
    uint16_t nvals;
    mg_metric_t *sink;          /* shared memory: this family's overflow sink */
    bool warned;                /* misuse logged once in this process */
} mg_mx_family_t;

static mg_mx_shm_t *mg_mx;              /* shared memory (mg_shm arena) */
static uint32_t *mg_mx_index;           /* shared memory */
static char *mg_mx_pool;                /* shared memory */
static pid_t mg_mx_pid;                 /* the process that ran init: the only one that declares */
static int mg_mx_worker = -1;
static mg_mx_family_t mg_mx_fam[MG_METRIC_MAX_FAMILIES];
static int mg_mx_nfam;

/* ---- helpers ---- */

static bool
mg_mx_name_ok(const char *s, bool metric)
{
    if (s == NULL || s[0] == '\0' || strlen(s) >= MG_MX_NAME_MAX) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (metric && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9')) {
            return false;
        }
    }
    return metric || strncmp(s, "__", 2) != 0;
}

static uint64_t
mg_mx_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Folds one label value into h, a word at a time (FNV would cost a multiply per byte); ORs
 * the words into *bits so the caller sees whether any byte had its high bit set. */
static inline uint64_t
mg_mx_hash_value(uint64_t h, const char *p, size_t n, uint64_t *bits)
{
    uint64_t w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        *bits |= w;
        h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
        h = (h << 29) | (h >> 35);
    }
    w = (uint64_t) n << 56; /* the length ends the value: ("ab", "c") differs from ("a", "bc") */
    if (i < n) {
        uint64_t t = 0;
        memcpy(&t, p + i, n - i);
        *bits |= t;
        w ^= t;
    }
    h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
    return (h << 29) | (h >> 35);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t
mg_mx_utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

/* Copies label value s into out (room for MG_METRIC_VALUE_MAX bytes): cut on a character
 * boundary, invalid UTF-8 as U+FFFD.  Returns the bytes written (no NUL). */
static size_t
mg_mx_clean(const char *s, char *out)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t o = 0;
    while (*p != '\0') {
        if (*p < 0x80) {
            if (o + 1 > MG_METRIC_VALUE_MAX) {
                break;
            }
            out[o++] = (char) *p++;
            continue;
        }
        size_t n = mg_mx_utf8_len(p);
        if (n == 0) {
            if (o + 3 > MG_METRIC_VALUE_MAX) {
                break;
            }
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
            continue;
        }
        if (o + n > MG_METRIC_VALUE_MAX) {
            break;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    return o;
}

static inline mg_metric_t *
mg_mx_rec(uint32_t e)
{
    return (mg_metric_t *) (mg_mx_pool + (size_t) (e - 1) * MG_MX_ALIGN);
}

static inline const char *
mg_mx_blob(const mg_metric_t *m)
{
    return (const char *) &m->v[m->nvals];
}

/* Bump-allocates a zeroed record from the pool; sets *slot_val to its index encoding. */
static mg_metric_t *
mg_mx_alloc(size_t size, uint32_t *slot_val)
{
    size_t need = (size + MG_MX_ALIGN - 1) & ~(size_t) (MG_MX_ALIGN - 1);
    uint64_t cur = __atomic_load_n(&mg_mx->pool_used, __ATOMIC_RELAXED);
    do {
        if (cur + need > mg_mx->pool_size) {
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&mg_mx->pool_used, &cur, cur + need, true,
                                          __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    *slot_val = (uint32_t) (cur / MG_MX_ALIGN) + 1;
    return (mg_metric_t *) (mg_mx_pool + cur); /* zeroed: the arena is, and nothing is freed */
}

/* Takes one of the max_series places; false when the table is full. */
static bool
mg_mx_reserve(void)
{
    uint32_t n = __atomic_load_n(&mg_mx->nseries, __ATOMIC_RELAXED);
    do {
        if (n >= mg_mx->max_series) {
            return false;
        }
    } while (!__atomic_compare_exchange_n(&mg_mx->nseries, &n, n + 1, true, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    return true;
}

/* A refused update: counted as dropped (count) and logged once per family and process. */
static void
mg_mx_misuse(mg_metric_t *m, const char *what, bool count)
{
    mg_mx_family_t *f = &mg_mx_fam[m->family];
    if (count) {
        __atomic_fetch_add(&f->sink->v[0], 1, __ATOMIC_RELAXED);
    }
    if (!f->warned) {
        f->warned = true;
        mg_log(MG_LOG_WARN, NULL, "metric \"%s\": %s (counted in "
               "moongate_metrics_series_dropped_total; logged once)", f->name, what);
    }
}

/* ---- declaration ---- */

int
mg_metrics_init(uint32_t max_series, size_t pool_bytes, mg_err_t *err)
{
    if (max_series == 0 || max_series > (1u << 28)) {
        return mg_err_set(err, MG_ERR_CONFIG, "metrics: max_series %u out of range", max_series);
    }
    uint32_t isz = 16;
    while (isz < 2 * max_series) {
        isz <<= 1;
    }
    if (pool_bytes == 0) {
        pool_bytes = (size_t) max_series * 384;
    }
    pool_bytes += MG_METRIC_MAX_FAMILIES * MG_MX_ALIGN; /* the sinks */
    size_t index_off = (sizeof(mg_mx_shm_t) + MG_MX_ALIGN - 1) & ~(size_t) (MG_MX_ALIGN - 1);
    size_t pool_off = (index_off + (size_t) isz * 4 + MG_MX_ALIGN - 1) & ~(size_t) (MG_MX_ALIGN - 1);
    char *p = mg_shm_alloc(pool_off + pool_bytes);
    if (p == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "metrics: %zu bytes for %u series do not fit "
                          "in the shared memory arena", pool_off + pool_bytes, max_series);
    }
    mg_mx = (mg_mx_shm_t *) p;
    mg_mx->magic = MG_MX_MAGIC;
    mg_mx->index_size = isz;
    mg_mx->max_series = max_series;
    mg_mx->pool_size = pool_bytes;
    mg_mx_index = (uint32_t *) (p + index_off);
    mg_mx_pool = p + pool_off;
    mg_mx_pid = getpid();
    mg_mx_worker = -1;
    memset(mg_mx_fam, 0, sizeof(mg_mx_fam));
    mg_mx_nfam = 0;
    return MG_OK;
}

/* the family whose order[] is being sorted (qsort has no context argument) */
static int mg_mx_cmp_order_fam;

static const char *
mg_mx_order_name(const mg_mx_family_t *f, int o)
{
    return o == MG_MX_ORDER_WORKER ? "worker" : o == MG_MX_ORDER_LE ? "le" : f->labels[o];
}

static int
mg_mx_cmp_order(const void *a, const void *b)
{
    const mg_mx_family_t *f = &mg_mx_fam[mg_mx_cmp_order_fam];
    return strcmp(mg_mx_order_name(f, *(const int *) a), mg_mx_order_name(f, *(const int *) b));
}

int
mg_metrics_declare(const mg_metric_def_t *def, mg_err_t *err)
{
    if (mg_mx == NULL || getpid() != mg_mx_pid) {
        return mg_err_set(err, MG_ERR_INTERNAL, "metrics: families are declared by the process "
                          "that ran mg_metrics_init(), before it forks");
    }
    if (mg_mx_nfam >= MG_METRIC_MAX_FAMILIES) {
        return mg_err_set(err, MG_ERR_INTERNAL, "metrics: more than %d families",
                          MG_METRIC_MAX_FAMILIES);
    }
    if (!mg_mx_name_ok(def->name, true) || strncmp(def->name, "moongate_metrics_series", 23) == 0) {
        return mg_err_set(err, MG_ERR_CONFIG, "metrics: bad family name \"%s\"",
                          def->name != NULL ? def->name : "(null)");
    }
    mg_mx_family_t *f = &mg_mx_fam[mg_mx_nfam];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", def->name);
    size_t nl = strlen(f->name);
    if (def->type == MG_METRIC_COUNTER && nl > 6 && strcmp(f->name + nl - 6, "_total") == 0) {
        f->name[nl - 6] = '\0';
    }
    nl = strlen(f->name);
    memcpy(f->exposed, f->name, nl + 1);
    if (def->type == MG_METRIC_COUNTER) {
        memcpy(f->exposed + nl, "_total", 7);
    }
    for (int i = 0; i < mg_mx_nfam; i++) {
        if (strcmp(mg_mx_fam[i].name, f->name) == 0) {
            return mg_err_set(err, MG_ERR_CONFIG, "metrics: family \"%s\" declared twice", f->name);
        }
    }
    if (def->type != MG_METRIC_COUNTER && def->type != MG_METRIC_GAUGE &&
        def->type != MG_METRIC_HISTOGRAM) {
        return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": unknown type %d", f->name,
                          (int) def->type);
    }
    if (def->scope != MG_METRIC_SHARED && def->type != MG_METRIC_GAUGE) {
        /* a per-worker counter would go backwards when its worker dies */
        return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": only gauges can be per worker",
                          f->name);
    }
    f->help = def->help != NULL ? def->help : "";
    f->type = def->type;
    f->scope = def->scope;
    for (int i = 0; def->labels != NULL && def->labels[i] != NULL; i++) {
        const char *l = def->labels[i];
        if (i >= MG_METRIC_MAX_LABELS) {
            return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": more than %d labels",
                              f->name, MG_METRIC_MAX_LABELS);
        }
        bool reserved = (def->type == MG_METRIC_HISTOGRAM && strcmp(l, "le") == 0) ||
                        (def->scope == MG_METRIC_PER_WORKER_LABEL && strcmp(l, "worker") == 0);
        if (!mg_mx_name_ok(l, false) || reserved) {
            return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": bad label name \"%s\"",
                              f->name, l);
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(f->labels[j], l) == 0) {
                return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": label \"%s\" twice",
                                  f->name, l);
            }
        }
        f->labels[f->nlabels++] = l;
    }
    double unit = def->unit;
    if (def->type == MG_METRIC_HISTOGRAM) {
        int nb = 0;
        for (int i = 0; def->buckets != NULL && i < def->nbuckets; i++) {
            double b = def->buckets[i];
            if (isnan(b) || (nb > 0 && !(b > f->bounds[nb - 1])) || nb >= MG_METRIC_MAX_BUCKETS) {
                return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": buckets must be at most "
                                  "%d ascending numbers", f->name, MG_METRIC_MAX_BUCKETS);
            }
            f->bounds[nb++] = b;
        }
        if (nb == 0 || !isinf(f->bounds[nb - 1])) {
            if (nb >= MG_METRIC_MAX_BUCKETS) {
                return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": more than %d buckets",
                                  f->name, MG_METRIC_MAX_BUCKETS);
            }
            f->bounds[nb++] = INFINITY;
        }
        f->nbuckets = nb;
        f->nvals = (uint16_t) (nb + 1);
        f->kind = MG_METRIC_K_HISTOGRAM;
        unit = unit > 0 ? unit : 1e-6;
    } else if (def->type == MG_METRIC_COUNTER) {
        unit = unit > 0 ? unit : 1;
        f->nvals = 1;
        f->kind = unit == 1 ? MG_METRIC_K_COUNTER : MG_METRIC_K_COUNTER_FIXED;
    } else {
        f->nvals = 1;
        f->kind = MG_METRIC_K_GAUGE;
        unit = 1;
    }
    if (!(unit > 0 && unit <= 1)) {
        return mg_err_set(err, MG_ERR_CONFIG, "metrics: \"%s\": unit %g is not in (0, 1]",
                          f->name, unit);
    }
    f->scale = (double) llround(1.0 / unit);
    for (int i = 0; i < f->nlabels; i++) {
        f->order[f->norder++] = i;
    }
    if (f->scope == MG_METRIC_PER_WORKER_LABEL) {
        f->order[f->norder++] = MG_MX_ORDER_WORKER;
    }
    if (f->type == MG_METRIC_HISTOGRAM) {
        f->order[f->norder++] = MG_MX_ORDER_LE;
    }
    mg_mx_cmp_order_fam = mg_mx_nfam;
    qsort(f->order, (size_t) f->norder, sizeof(int), mg_mx_cmp_order);
    uint32_t enc;
    f->sink = mg_mx_alloc(sizeof(mg_metric_t) + sizeof(uint64_t), &enc);
    if (f->sink == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "metrics: pool full declaring \"%s\"", f->name);
    }
    f->sink->family = (uint16_t) mg_mx_nfam;
    f->sink->worker = -1;
    f->sink->kind = MG_METRIC_K_SINK;
    f->sink->nvals = 1;
    return mg_mx_nfam++;
}

int
mg_metrics_family(const char *name)
{
    for (int i = 0; name != NULL && i < mg_mx_nfam; i++) {
        if (strcmp(mg_mx_fam[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

void
mg_metrics_set_worker(int worker)
{
    mg_mx_worker = worker >= 0 && worker < MG_SHM_MAX_WORKERS ? worker : -1;
}

int
mg_metrics_worker(void)
{
    return mg_mx_worker;
}

/* ---- series ---- */

static uint32_t
mg_mx_wait_claim(uint32_t *slot)
{
    uint32_t e = MG_MX_CLAIMING;
    for (uint32_t spins = 0; e == MG_MX_CLAIMING && spins < MG_MX_CLAIM_SPINS; spins++) {
        e = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    }
    return e;
}

/* A series key: the label values as they will be stored (cut, valid UTF-8), not copied. */
typedef struct {
    int n;
    const char *p[MG_METRIC_MAX_LABELS];
    uint32_t len[MG_METRIC_MAX_LABELS];
    uint32_t blob_len;          /* sum of len + 1 (each stored NUL-terminated) */
    uint64_t hash;
} mg_mx_key_t;

static bool
mg_mx_key_eq(const mg_metric_t *m, const mg_mx_key_t *k)
{
    if (m->blob_len != k->blob_len) {
        return false;
    }
    const char *b = mg_mx_blob(m);
    for (int i = 0; i < k->n; i++) {
        if (memcmp(b, k->p[i], k->len[i]) != 0 || b[k->len[i]] != '\0') {
            return false;
        }
        b += k->len[i] + 1;
    }
    return true;
}

static mg_metric_t *
mg_mx_lookup(int fam, int worker, const mg_mx_key_t *k)
{
    mg_mx_family_t *f = &mg_mx_fam[fam];
    uint64_t h = k->hash;
    uint32_t mask = mg_mx->index_size - 1;
    for (uint32_t i = 0; i <= mask; i++) {
        uint32_t *slot = &mg_mx_index[(h + i) & mask];
        uint32_t e = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        for (;;) {
            if (e == MG_MX_CLAIMING) {
                e = mg_mx_wait_claim(slot);
                if (e == MG_MX_CLAIMING) {
                    break; /* its claimer died: step over it */
                }
            }
            if (e != 0) {
                break;
            }
            /* empty: this series does not exist yet; claim the slot */
            if (!mg_mx_reserve()) {
                return f->sink;
            }
            if (!__atomic_compare_exchange_n(slot, &e, MG_MX_CLAIMING, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE)) {
                __atomic_fetch_sub(&mg_mx->nseries, 1, __ATOMIC_RELAXED);
                continue; /* someone else took it: look at what they put there */
            }
            uint32_t enc;
            mg_metric_t *m = mg_mx_alloc(sizeof(mg_metric_t) + f->nvals * sizeof(uint64_t) +
                                         k->blob_len, &enc);
            if (m == NULL) {
                __atomic_store_n(slot, 0, __ATOMIC_RELEASE);
                __atomic_fetch_sub(&mg_mx->nseries, 1, __ATOMIC_RELAXED);
                return f->sink;
            }
            m->hash = h;
            m->family = (uint16_t) fam;
            m->worker = (int16_t) worker;
            m->kind = f->kind;
            m->nvals = f->nvals;
            m->blob_len = k->blob_len;
            char *b = (char *) mg_mx_blob(m);
            for (int j = 0; j < k->n; j++) {
                memcpy(b, k->p[j], k->len[j]);
                b += k->len[j] + 1; /* the NUL is there: the pool is zeroed */
            }
            __atomic_store_n(slot, enc, __ATOMIC_RELEASE);
            return m;
        }
        if (e == MG_MX_CLAIMING) {
            continue;
        }
        mg_metric_t *m = mg_mx_rec(e);
        if (m->hash == h && m->family == fam && m->worker == worker && mg_mx_key_eq(m, k)) {
            if (__atomic_load_n(&m->hidden, __ATOMIC_RELAXED) != 0) {
                __atomic_store_n(&m->hidden, 0, __ATOMIC_RELEASE);
            }
            return m;
        }
    }
    return f->sink;
}

mg_metric_t *
mg_metric_series_worker(int family, int worker, const char *const *values)
{
    if (mg_mx == NULL || family < 0 || family >= mg_mx_nfam) {
        return NULL;
    }
    mg_mx_family_t *f = &mg_mx_fam[family];
    if (f->scope == MG_METRIC_SHARED) {
        worker = -1;
    } else if (worker < 0 || worker >= MG_SHM_MAX_WORKERS) {
        mg_mx_misuse(f->sink, "a per-worker series resolved without a worker index", false);
        return f->sink;
    }
    mg_mx_key_t k;
    char scratch[MG_METRIC_MAX_LABELS][MG_METRIC_VALUE_MAX]; /* only for values to clean */
    uint64_t h = mg_mx_mix(((uint64_t) family << 8) ^ (uint64_t) (worker + 1));
    k.n = f->nlabels;
    k.blob_len = 0;
    for (int i = 0; i < f->nlabels; i++) {
        const char *v = values != NULL && values[i] != NULL ? values[i] : "";
        size_t len = strnlen(v, MG_METRIC_VALUE_MAX + 1);
        uint64_t bits = 0;
        uint64_t hv = mg_mx_hash_value(h, v, len <= MG_METRIC_VALUE_MAX ? len : 0, &bits);
        if (len > MG_METRIC_VALUE_MAX || (bits & 0x8080808080808080ULL) != 0) {
            /* too long, or not ASCII: the stored form may differ from the caller's bytes */
            len = mg_mx_clean(v, scratch[i]);
            v = scratch[i];
            bits = 0;
            hv = mg_mx_hash_value(h, v, len, &bits);
        }
        h = hv;
        k.p[i] = v;
        k.len[i] = (uint32_t) len;
        k.blob_len += (uint32_t) len + 1;
    }
    k.hash = mg_mx_mix(h);
    return mg_mx_lookup(family, worker, &k);
}

mg_metric_t *
mg_metric_series(int family, const char *const *values)
{
    return mg_metric_series_worker(family, mg_mx_worker, values);
}

/* ---- updates ---- */

static bool
mg_mx_to_units(mg_metric_t *m, double v, double scale, uint64_t *out)
{
    double u = v * scale;
    if (!(u >= 0) || u > 9.0e18) {
        mg_mx_misuse(m, "a counter can only grow by a finite non-negative amount", true);
        return false;
    }
    *out = (uint64_t) llround(u);
    return true;
}

void
mg_metric_update_slow(mg_metric_t *m, int op, uint64_t n, double d)
{
    if (m == NULL) {
        return;
    }
    uint64_t units;
    switch (m->kind) {
    case MG_METRIC_K_SINK:
        __atomic_fetch_add(&m->v[0], 1, __ATOMIC_RELAXED);
        return;
    case MG_METRIC_K_COUNTER:
    case MG_METRIC_K_COUNTER_FIXED: {
        double scale = mg_mx_fam[m->family].scale;
        if (op == MG_METRIC_OP_INC) {
            __atomic_fetch_add(&m->v[0], n * (uint64_t) scale, __ATOMIC_RELAXED);
        } else if (op == MG_METRIC_OP_ADD) {
            if (mg_mx_to_units(m, d, scale, &units)) {
                __atomic_fetch_add(&m->v[0], units, __ATOMIC_RELAXED);
            }
        } else {
            mg_mx_misuse(m, "set or gauge add on a counter", true);
        }
        return;
    }
    case MG_METRIC_K_GAUGE:
        if (op == MG_METRIC_OP_SET) {
            mg_metric_set(m, d);
        } else if (op == MG_METRIC_OP_INC) {
            mg_metric_gauge_add(m, (double) n);
        } else if (op == MG_METRIC_OP_GADD || op == MG_METRIC_OP_ADD) {
            mg_metric_gauge_add(m, d);
        }
        return;
    default:
        mg_mx_misuse(m, "counter or gauge update on a histogram", true);
        return;
    }
}

void
mg_metric_gauge_add(mg_metric_t *m, double v)
{
    if (m == NULL || m->kind != MG_METRIC_K_GAUGE) {
        if (m != NULL && m->kind == MG_METRIC_K_SINK) {
            __atomic_fetch_add(&m->v[0], 1, __ATOMIC_RELAXED);
        } else if (m != NULL) {
            mg_mx_misuse(m, "gauge add on a counter or histogram", true);
        }
        return;
    }
    uint64_t old = __atomic_load_n(&m->v[0], __ATOMIC_RELAXED), nv;
    do {
        double d;
        memcpy(&d, &old, sizeof(d));
        d += v;
        memcpy(&nv, &d, sizeof(nv));
    } while (!__atomic_compare_exchange_n(&m->v[0], &old, nv, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
}

void
mg_metric_observe(mg_metric_t *m, double v)
{
    if (m == NULL) {
        return;
    }
    if (m->kind != MG_METRIC_K_HISTOGRAM) {
        if (m->kind == MG_METRIC_K_SINK) {
            __atomic_fetch_add(&m->v[0], 1, __ATOMIC_RELAXED);
        } else {
            mg_mx_misuse(m, "observe on a counter or gauge", true);
        }
        return;
    }
    const mg_mx_family_t *f = &mg_mx_fam[m->family];
    if (isnan(v)) {
        mg_mx_misuse(m, "observed NaN", true);
        return;
    }
    /* the first bucket whose bound is >= v (prometheus_client's "amount <= bound") */
    int lo = 0, hi = f->nbuckets - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v <= f->bounds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    __atomic_fetch_add(&m->v[lo], 1, __ATOMIC_RELAXED);
    double u = v * f->scale;
    int64_t s = u > 9.0e18 ? INT64_MAX : u < -9.0e18 ? INT64_MIN : llround(u);
    __atomic_fetch_add(&m->v[f->nbuckets], (uint64_t) s, __ATOMIC_RELAXED);
}

static double
mg_mx_gauge_value(const mg_metric_t *m)
{
    uint64_t bits = __atomic_load_n(&m->v[0], __ATOMIC_RELAXED);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

double
mg_metric_value(const mg_metric_t *m)
{
    if (m == NULL) {
        return 0;
    }
    const mg_mx_family_t *f = &mg_mx_fam[m->family];
    switch (m->kind) {
    case MG_METRIC_K_COUNTER:
    case MG_METRIC_K_COUNTER_FIXED:
        return (double) __atomic_load_n(&m->v[0], __ATOMIC_RELAXED) / f->scale;
    case MG_METRIC_K_GAUGE:
        return mg_mx_gauge_value(m);
    case MG_METRIC_K_HISTOGRAM: {
        uint64_t n = 0;
        for (int i = 0; i < f->nbuckets; i++) {
            n += __atomic_load_n(&m->v[i], __ATOMIC_RELAXED);
        }
        return (double) n;
    }
    default:
        return (double) __atomic_load_n(&m->v[0], __ATOMIC_RELAXED);
    }
}

bool
mg_metric_is_sink(const mg_metric_t *m)
{
    return m != NULL && m->kind == MG_METRIC_K_SINK;
}

void
mg_metrics_worker_exited(int worker)
{
    if (mg_mx == NULL || worker < 0) {
        return;
    }
    for (uint32_t i = 0; i < mg_mx->index_size; i++) {
        uint32_t e = __atomic_load_n(&mg_mx_index[i], __ATOMIC_ACQUIRE);
        if (e == 0 || e == MG_MX_CLAIMING) {
            continue;
        }
        mg_metric_t *m = mg_mx_rec(e);
        if (m->worker != worker || mg_mx_fam[m->family].scope == MG_METRIC_SHARED) {
            continue;
        }
        /* hidden first: a scrape running now skips it rather than showing a half reset */
        __atomic_store_n(&m->hidden, 1, __ATOMIC_RELEASE);
        for (int k = 0; k < m->nvals; k++) {
            __atomic_store_n(&m->v[k], 0, __ATOMIC_RELAXED);
        }
    }
}

void
mg_metrics_hide_family(int family)
{
    if (mg_mx == NULL || family < 0 || family >= mg_mx_nfam) {
        return;
    }
    for (uint32_t i = 0; i < mg_mx->index_size; i++) {
        uint32_t e = __atomic_load_n(&mg_mx_index[i], __ATOMIC_ACQUIRE);
        if (e == 0 || e == MG_MX_CLAIMING) {
            continue;
        }
        mg_metric_t *m = mg_mx_rec(e);
        if (m->family == family) {
            __atomic_store_n(&m->hidden, 1, __ATOMIC_RELEASE);
        }
    }
}

void
mg_metrics_usage(uint32_t *used, uint32_t *max)
{
    *used = mg_mx != NULL ? __atomic_load_n(&mg_mx->nseries, __ATOMIC_RELAXED) : 0;
    *max = mg_mx != NULL ? mg_mx->max_series : 0;
}

/* ---- exposition ---- */

void
mg_metrics_fmt_value(double d, char *out, size_t outlen)
{
    if (isinf(d)) {
        snprintf(out, outlen, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (isnan(d)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    char s[64];
    mg_fmt_pyfloat(d, s, sizeof(s));
    const char *dot = strchr(s, '.');
    long pos = dot != NULL ? dot - s : -1;
    if (d > 0 && pos > 6) {
        /* Go switches to exponents sooner than Python: "1.234567e+06" */
        char m[64];
        size_t o = 0;
        m[o++] = s[0];
        m[o++] = '.';
        for (long i = 1; s[i] != '\0' && o + 1 < sizeof(m); i++) {
            if (i != pos) {
                m[o++] = s[i];
            }
        }
        while (o > 0 && (m[o - 1] == '0' || m[o - 1] == '.')) {
            o--;
        }
        m[o] = '\0';
        snprintf(out, outlen, "%se+0%ld", m, pos - 1);
        return;
    }
    snprintf(out, outlen, "%s", s);
}

static void
mg_mx_escape(mg_buf_t *out, const char *s, bool help)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        char c = *p;
        const char *rep = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : (c == '"' && !help) ? "\\\"" : NULL;
        if (rep == NULL && c != '\0') {
            continue;
        }
        mg_buf_append(out, run, (size_t) (p - run));
        if (c == '\0') {
            return;
        }
        mg_buf_append_str(out, rep);
        run = p + 1;
    }
}

/* Splits a record's label blob into its values (declared order). */
static void
mg_mx_values(const mg_metric_t *m, int nlabels, const char **vals)
{
    const char *p = mg_mx_blob(m);
    for (int i = 0; i < nlabels; i++) {
        vals[i] = p;
        p += strlen(p) + 1;
    }
}

/* Exposition order: family, then label values in output (label name) order, then worker. */
static int
mg_mx_cmp_rec(const void *a, const void *b)
{
    const mg_metric_t *x = *(const mg_metric_t *const *) a;
    const mg_metric_t *y = *(const mg_metric_t *const *) b;
    if (x->family != y->family) {
        return x->family < y->family ? -1 : 1;
    }
    const mg_mx_family_t *f = &mg_mx_fam[x->family];
    const char *xv[MG_METRIC_MAX_LABELS], *yv[MG_METRIC_MAX_LABELS];
    mg_mx_values(x, f->nlabels, xv);
    mg_mx_values(y, f->nlabels, yv);
    for (int k = 0; k < f->norder; k++) {
        int o = f->order[k];
        if (o >= 0) {
            int c = strcmp(xv[o], yv[o]);
            if (c != 0) {
                return c;
            }
        }
    }
    return x->worker < y->worker ? -1 : x->worker > y->worker;
}

/* {a="x",le="0.5",worker="2"}: labels in the family's sorted order; nothing when none. */
static void
mg_mx_labels(mg_buf_t *out, const mg_mx_family_t *f, const mg_metric_t *m, int worker,
             const char *le)
{
    const char *vals[MG_METRIC_MAX_LABELS];
    if (m != NULL) {
        mg_mx_values(m, f->nlabels, vals);
    }
    bool any = false;
    for (int k = 0; k < f->norder; k++) {
        int o = f->order[k];
        if (o == MG_MX_ORDER_WORKER && worker < 0) {
            continue;
        }
        if (o == MG_MX_ORDER_LE && le == NULL) {
            continue;
        }
        mg_buf_append_str(out, any ? "," : "{");
        any = true;
        mg_buf_append_str(out, mg_mx_order_name(f, o));
        mg_buf_append_str(out, "=\"");
        if (o == MG_MX_ORDER_WORKER) {
            mg_buf_printf(out, "%d", worker);
        } else if (o == MG_MX_ORDER_LE) {
            mg_buf_append_str(out, le);
        } else {
            mg_mx_escape(out, m != NULL ? vals[o] : "", false);
        }
        mg_buf_append_str(out, "\"");
    }
    if (any) {
        mg_buf_append_str(out, "}");
    }
}

static void
mg_mx_sample(mg_buf_t *out, const char *name, const char *suffix, const mg_mx_family_t *f,
             const mg_metric_t *m, int worker, const char *le, double v)
{
    char num[40];
    mg_buf_append_str(out, name);
    mg_buf_append_str(out, suffix);
    mg_mx_labels(out, f, m, worker, le);
    mg_metrics_fmt_value(v, num, sizeof(num));
    mg_buf_append_str(out, " ");
    mg_buf_append_str(out, num);
    mg_buf_append_str(out, "\n");
}

static void
mg_mx_histogram(mg_buf_t *out, const mg_mx_family_t *f, const mg_metric_t *m)
{
    char le[40];
    uint64_t acc = 0;
    for (int b = 0; b < f->nbuckets; b++) {
        acc += m != NULL ? __atomic_load_n(&m->v[b], __ATOMIC_RELAXED) : 0;
        mg_metrics_fmt_value(f->bounds[b], le, sizeof(le));
        mg_mx_sample(out, f->name, "_bucket", f, m, -1, le, (double) acc);
    }
    mg_mx_sample(out, f->name, "_count", f, m, -1, NULL, (double) acc);
    int64_t sum = m != NULL ? (int64_t) __atomic_load_n(&m->v[f->nbuckets], __ATOMIC_RELAXED) : 0;
    mg_mx_sample(out, f->name, "_sum", f, m, -1, NULL, (double) sum / f->scale);
}

static void
mg_mx_family_out(mg_buf_t *out, const mg_mx_family_t *f, mg_metric_t **recs, size_t n)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    mg_buf_printf(out, "# HELP %s ", f->exposed);
    mg_mx_escape(out, f->help, true);
    mg_buf_printf(out, "\n# TYPE %s %s\n", f->exposed, types[f->type]);
    size_t shown = 0;
    for (size_t i = 0; i < n;) {
        mg_metric_t *m = recs[i];
        if (f->scope == MG_METRIC_PER_WORKER_SUM) {
            /* records of one label set sit together (sorted by labels, then worker) */
            double sum = 0;
            bool live = false;
            size_t j = i;
            for (; j < n && recs[j]->blob_len == m->blob_len &&
                   memcmp(mg_mx_blob(recs[j]), mg_mx_blob(m), m->blob_len) == 0;
                 j++) {
                if (__atomic_load_n(&recs[j]->hidden, __ATOMIC_ACQUIRE) == 0) {
                    live = true;
                    sum += mg_mx_gauge_value(recs[j]);
                }
            }
            if (live) {
                mg_mx_sample(out, f->exposed, "", f, m, -1, NULL, sum);
                shown++;
            }
            i = j;
            continue;
        }
        i++;
        if (f->scope == MG_METRIC_PER_WORKER_LABEL) {
            if (__atomic_load_n(&m->hidden, __ATOMIC_ACQUIRE) == 0) {
                mg_mx_sample(out, f->exposed, "", f, m, m->worker, NULL, mg_mx_gauge_value(m));
                shown++;
            }
        } else if (f->type == MG_METRIC_HISTOGRAM) {
            mg_mx_histogram(out, f, m);
            shown++;
        } else {
            mg_mx_sample(out, f->exposed, "", f, m, -1, NULL, mg_metric_value(m));
            shown++;
        }
    }
    if (shown == 0 && f->nlabels == 0 && f->scope != MG_METRIC_PER_WORKER_LABEL) {
        /* a metric without labels exists from its declaration, as in prometheus_client */
        if (f->type == MG_METRIC_HISTOGRAM) {
            mg_mx_histogram(out, f, NULL);
        } else {
            mg_mx_sample(out, f->exposed, "", f, NULL, -1, NULL, 0);
        }
    }
}

void
mg_metrics_expose(mg_buf_t *out)
{
    if (mg_mx == NULL) {
        return;
    }
    uint32_t cap = mg_mx->max_series;
    mg_metric_t **recs = mg_xmalloc(sizeof(*recs) * (cap > 0 ? cap : 1));
    size_t n = 0;
    for (uint32_t i = 0; i < mg_mx->index_size && n < cap; i++) {
        uint32_t e = __atomic_load_n(&mg_mx_index[i], __ATOMIC_ACQUIRE);
        if (e != 0 && e != MG_MX_CLAIMING) {
            recs[n++] = mg_mx_rec(e);
        }
    }
    qsort(recs, n, sizeof(*recs), mg_mx_cmp_rec);
    size_t i = 0;
    for (int fam = 0; fam < mg_mx_nfam; fam++) {
        size_t j = i;
        while (j < n && recs[j]->family == fam) {
            j++;
        }
        mg_mx_family_out(out, &mg_mx_fam[fam], recs + i, j - i);
        i = j;
    }
    free(recs);
    char num[40];
    mg_metrics_fmt_value((double) __atomic_load_n(&mg_mx->nseries, __ATOMIC_RELAXED), num,
                         sizeof(num));
    mg_buf_printf(out, "# HELP moongate_metrics_series Series in the shared metrics table\n"
                       "# TYPE moongate_metrics_series gauge\nmoongate_metrics_series %s\n", num);
    mg_metrics_fmt_value((double) mg_mx->max_series, num, sizeof(num));
    mg_buf_printf(out, "# HELP moongate_metrics_series_max Capacity of the shared metrics table\n"
                       "# TYPE moongate_metrics_series_max gauge\nmoongate_metrics_series_max %s\n",
                  num);
    mg_buf_append_str(out, "# HELP moongate_metrics_series_dropped_total Updates dropped because "
                           "their series did not fit in the metrics table, or were invalid\n"
                           "# TYPE moongate_metrics_series_dropped_total counter\n");
    for (int fam = 0; fam < mg_mx_nfam; fam++) {
        uint64_t d = __atomic_load_n(&mg_mx_fam[fam].sink->v[0], __ATOMIC_RELAXED);
        if (d > 0) {
            mg_metrics_fmt_value((double) d, num, sizeof(num));
            mg_buf_printf(out, "moongate_metrics_series_dropped_total{family=\"%s\"} %s\n",
                          mg_mx_fam[fam].exposed, num);
        }
    }
}
