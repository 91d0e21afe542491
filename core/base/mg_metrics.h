/*
 * mg_metrics.h -- Prometheus metrics shared by the master and all workers of
 * one instance, so one scrape answered by any worker shows the whole instance.
 *
 * Owns: the series table in shared memory (mg_shm) and the process-local
 * list of metric families.  Does not own: what is measured; callers (the
 * gateway, the master) resolve series and update them.
 *
 * Lifetime: the master calls mg_metrics_init() and then mg_metrics_declare()
 * for every family, before it forks; the family set is then fixed for the
 * life of the instance (workers inherit it through fork; declaring in
 * another process is refused).  A series is one family plus its label
 * values; it is created on first use by whichever process resolves it (slot
 * claimed with a CAS, as mg_stats does), and it never moves or goes away, so
 * a resolved mg_metric_t pointer stays valid in every process for the life
 * of the instance.  The table has a fixed capacity: when it is full, a new
 * series resolves to its family's overflow sink, whose updates are counted in
 * moongate_metrics_series_dropped_total{family} instead of failing.
 *
 * Cross-process: every update is an __atomic operation on shared memory, no
 * lock anywhere.  Counters and histogram sums are fixed-point integers (one
 * wait-free fetch-add, exact whatever order the workers add in); gauges are
 * doubles (set is one store; add is a CAS loop, uncontended for per-worker
 * gauges).  A scrape reads while others write: each value is read once, so a
 * histogram's buckets are cumulative and monotonic and its _count is its
 * +Inf bucket; _sum may trail the buckets by the observations in progress.
 *
 * Per-worker gauges (scope MG_METRIC_PER_WORKER_*) keep one series per worker
 * process.  When a worker dies the master calls mg_metrics_worker_exited():
 * that worker's series are zeroed and hidden from the exposition, so no
 * stale value lingers; the respawned worker makes a series visible again by
 * resolving it (mg_metric_series*), which it does before it first sets it.
 */
#ifndef MG_METRICS_H
#define MG_METRICS_H

#include "mg_types.h"

#include <stdbool.h>
#include <stdint.h>

#define MG_METRIC_MAX_FAMILIES 128
#define MG_METRIC_MAX_LABELS 16     /* declared labels (worker and le come on top) */
#define MG_METRIC_MAX_BUCKETS 64    /* histogram bounds, +Inf included */
#define MG_METRIC_VALUE_MAX 128     /* bytes of one label value; longer ones are cut (UTF-8 safe) */

typedef enum {
    MG_METRIC_COUNTER = 0,
    MG_METRIC_GAUGE,
    MG_METRIC_HISTOGRAM,
} mg_metric_type_t;

typedef enum {
    MG_METRIC_SHARED = 0,       /* one series per label set for the instance */
    MG_METRIC_PER_WORKER_LABEL, /* gauges only: one per worker, exposed with a "worker" label */
    MG_METRIC_PER_WORKER_SUM,   /* gauges only: one per worker, exposed summed over the live
                                 * workers (prometheus_client's multiprocess "livesum") */
} mg_metric_scope_t;

/* A family as declared; every pointer is borrowed and must live for the process (static data). */
typedef struct {
    const char *name;           /* a counter's "_total" is added on output (and stripped here,
                                 * as prometheus_client does) */
    const char *help;
    mg_metric_type_t type;
    mg_metric_scope_t scope;
    const char *const *labels;  /* label names, NULL-terminated; NULL = none */
    const double *buckets;      /* histogram upper bounds, ascending; +Inf is added if missing */
    int nbuckets;
    double unit;                /* resolution of a counter's value or a histogram's _sum
                                 * (fixed-point step): 0 = 1 for counters, 1e-6 for histograms;
                                 * e.g. 1e-9 for a spend counter in USD */
} mg_metric_def_t;

/* Record kinds (mg_metric_t.kind): what the inline updates test before touching a value. */
enum {
    MG_METRIC_K_COUNTER = 1,    /* counter with unit 1: v[0] counts */
    MG_METRIC_K_COUNTER_FIXED,  /* counter with unit < 1: v[0] counts units */
    MG_METRIC_K_GAUGE,          /* v[0] holds the bits of a double */
    MG_METRIC_K_HISTOGRAM,      /* v[0..nbuckets-1] per-bucket counts, v[nbuckets] the sum in units */
    MG_METRIC_K_SINK,           /* a family's overflow sink: v[0] counts dropped updates */
};

/* One series, in shared memory.  Read-only after it is published except v[] and hidden. */
typedef struct {
    uint64_t hash;
    uint16_t family;
    int16_t worker;             /* -1: not per-worker */
    uint16_t kind;              /* MG_METRIC_K_* */
    uint16_t nvals;
    uint32_t blob_len;          /* label values after v[]: each NUL-terminated, declared order */
    uint32_t hidden;            /* atomic: 1 = its worker died; not exposed until resolved again */
    uint64_t v[];               /* atomic values */
} mg_metric_t;

/* Master, before fork: allocates the table in shared memory (mg_shm must exist) and forgets any
 * families declared before (tests call it again for a fresh table).  max_series bounds the
 * series (the index has twice as many slots); pool_bytes holds the series records (0 = a
 * default of 384 bytes per series).  MG_OK, or MG_ERROR with err set (shared arena full). */
int mg_metrics_init(uint32_t max_series, size_t pool_bytes, mg_err_t *err);
/* Master, after mg_metrics_init() and before fork: declares a family (the definition is
 * copied, its strings borrowed).  Returns the family id (>= 0, in declaration order, which is
 * the exposition order), or MG_ERROR with err set: bad name, label or buckets, a duplicate
 * name, too many families, or called from another process than the one that ran init. */
int mg_metrics_declare(const mg_metric_def_t *def, mg_err_t *err);
/* The id of a declared family by its declared name (a counter's without "_total"), or -1. */
int mg_metrics_family(const char *name);
/* Worker, right after fork: the worker index that per-worker families use (-1 = master). */
void mg_metrics_set_worker(int worker);
/* This process's worker index (-1 = master). */
int mg_metrics_worker(void);

/* Resolves a series: values[] holds one string per declared label, in declared order (NULL
 * is ""); each is cut at MG_METRIC_VALUE_MAX bytes on a character boundary and invalid UTF-8
 * becomes U+FFFD.  No allocation: a hash lookup in shared memory, and on a miss a CAS claim.
 * Per-worker families use this process's worker index.  Returns the series, or the family's
 * overflow sink when the table or its pool is full (or this process has no worker index for
 * a per-worker family); NULL only when metrics are not initialised or family is not declared.
 * The pointer stays valid in every process for the life of the instance. */
mg_metric_t *mg_metric_series(int family, const char *const *values);
/* The same for a given worker's series of a per-worker family (a scrape filling in values it
 * computes for every live worker, e.g. snapshot age); resolving makes the series visible. */
mg_metric_t *mg_metric_series_worker(int family, int worker, const char *const *values);

/* ---- updates: NULL and the overflow sink are accepted (the sink counts the update) ---- */

/* What the inline updates leave out of line: sinks, fixed-point counters, refused updates. */
void mg_metric_update_slow(mg_metric_t *m, int op, uint64_t n, double d);
enum { MG_METRIC_OP_INC = 0, MG_METRIC_OP_ADD, MG_METRIC_OP_SET, MG_METRIC_OP_GADD };

/* Counter += n (whole value units; a counter with unit < 1 scales it). */
static inline void
mg_metric_inc(mg_metric_t *m, uint64_t n)
{
    if (__builtin_expect(m != NULL && m->kind == MG_METRIC_K_COUNTER, 1)) {
        __atomic_fetch_add(&m->v[0], n, __ATOMIC_RELAXED);
        return;
    }
    mg_metric_update_slow(m, MG_METRIC_OP_INC, n, 0);
}

/* Counter += v (a fraction such as a spend in USD): rounded to the family's unit; a negative or
 * NaN v is refused (logged once per family, counted as dropped) as prometheus_client does. */
static inline void
mg_metric_add(mg_metric_t *m, double v)
{
    mg_metric_update_slow(m, MG_METRIC_OP_ADD, 0, v);
}

/* Gauge = v. */
static inline void
mg_metric_set(mg_metric_t *m, double v)
{
    if (__builtin_expect(m != NULL && m->kind == MG_METRIC_K_GAUGE, 1)) {
        uint64_t bits;
        __builtin_memcpy(&bits, &v, sizeof(bits));
        __atomic_store_n(&m->v[0], bits, __ATOMIC_RELAXED);
        return;
    }
    mg_metric_update_slow(m, MG_METRIC_OP_SET, 0, v);
}

/* Gauge += v (v may be negative): a CAS loop on the double. */
void mg_metric_gauge_add(mg_metric_t *m, double v);
/* Histogram: one observation (two atomic adds: its bucket and the sum). */
void mg_metric_observe(mg_metric_t *m, double v);

/* Current value of a counter or gauge (counters in value units), the count of a histogram, or
 * the dropped updates of a sink; 0 for NULL.  For tests and the admin page. */
double mg_metric_value(const mg_metric_t *m);
/* True if m is its family's overflow sink. */
bool mg_metric_is_sink(const mg_metric_t *m);

/* Master, when a worker has exited (before it is respawned): zeroes and hides every series
 * of that worker in the per-worker families. */
void mg_metrics_worker_exited(int worker);

/* Appends the whole table in Prometheus text format 0.0.4 (as prometheus_client writes it):
 * families in declaration order, each with # HELP and # TYPE, series sorted by label values,
 * label names sorted as prometheus_client sorts them; then moongate_metrics_series and
 * moongate_metrics_series_dropped_total.  Allocates a temporary index (not for the hot path). */
void mg_metrics_expose(mg_buf_t *out);

/* Hides every series of a family until it is resolved again: a gauge computed at scrape
 * time (one per deployment) then shows only what still exists.  Another process's scrape
 * running at the same moment may miss a series it has not re-resolved yet. */
void mg_metrics_hide_family(int family);

/* Series in use and the capacity (for the admin page). */
void mg_metrics_usage(uint32_t *used, uint32_t *max);

/* prometheus_client's floatToGoString: Python repr, "+Inf"/"-Inf"/"NaN", and Go's exponent
 * for large numbers ("1e+07").  out needs 32 bytes. */
void mg_metrics_fmt_value(double d, char *out, size_t outlen);

#endif
