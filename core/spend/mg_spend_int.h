/*
 * mg_spend_int.h -- what the spend modules share among themselves (not for other layers).
 *
 * The shared block (one mg_shm_alloc, made by mg_spend_init before fork):
 *   mg_spend_shm_t | nworkers rings (mg_spend_ring_t + data) | the totals table
 * Written by the master only, except each ring's producer side (its worker).
 */
#ifndef MG_SPEND_INT_H
#define MG_SPEND_INT_H

#include "mg_spend.h"
#include "mg_spend_ring.h"

#include <stdint.h>

#define MG_SPEND_SHM_MAGIC 0x53504e44474d4731ULL
#define MG_SPEND_MAX_WORKERS 64
#define MG_SPEND_BLOB 8192
/* entries of the shared totals table (16 bytes each): 4 MiB */
#define MG_SPEND_TOTALS_CAP (256 * 1024)

typedef enum {
    MG_SPEND_MODE_OFF = 0,          /* spend logs disabled (never set by config today) */
    MG_SPEND_MODE_EMBEDDED,
    MG_SPEND_MODE_POSTGRES,
} mg_spend_mode_t;

/* The entity kinds of the totals. */
typedef enum {
    MG_SPEND_K_KEY = 0,
    MG_SPEND_K_TEAM,
    MG_SPEND_K_USER,
    MG_SPEND_K_END_USER,
    MG_SPEND_K_ORG,
    MG_SPEND_K__COUNT
} mg_spend_kind_t;

typedef struct {
    uint64_t key;                   /* hash of (kind, id); 0 = empty; written last */
    uint64_t bits;                  /* the double's bits */
} mg_spend_tot_t;

typedef struct {
    uint64_t magic;
    int32_t nworkers;
    int32_t mode;                   /* mg_spend_mode_t */
    uint64_t ring_cap;
    uint64_t ring_off[MG_SPEND_MAX_WORKERS]; /* byte offsets of the rings from this struct */
    uint64_t totals_off;
    uint64_t totals_cap;            /* power of two */
    uint64_t totals_used;
    int32_t totals_full;            /* an entity could not be added: logged */
    int32_t pad;
    /* counters the master keeps current (relaxed atomics) */
    uint64_t drained;               /* rows taken from the rings */
    uint64_t disk_dropped;          /* rows refused by a full disk queue */
    uint64_t corrupt;               /* ring records that were not sane */
    uint64_t queued_rows;           /* on disk, not acknowledged by the sink */
    /* the master's state JSON (sequence lock: odd while written) */
    uint32_t blob_seq;
    uint32_t blob_len;
    char blob[MG_SPEND_BLOB];
} mg_spend_shm_t;

extern mg_spend_shm_t *mg_spend_shm;

static inline mg_spend_ring_t *
mg_spend_ring_at(int i)
{
    return (mg_spend_ring_t *) ((char *) mg_spend_shm + mg_spend_shm->ring_off[i]);
}

static inline mg_spend_tot_t *
mg_spend_totals(void)
{
    return (mg_spend_tot_t *) ((char *) mg_spend_shm + mg_spend_shm->totals_off);
}

/* Hash of (kind, id) for the totals table (never 0). */
uint64_t mg_spend_tot_hash(mg_spend_kind_t k, const char *id, size_t n);
/* Master: adds v to the shared total of (k, id); false when the table is full. */
bool mg_spend_tot_add(mg_spend_kind_t k, const char *id, size_t n, double v);
/* Master: sets it (loading the totals file). */
bool mg_spend_tot_set(mg_spend_kind_t k, const char *id, size_t n, double v);
/* The short name of a kind ("key", "team", ...). */
const char *mg_spend_kind_name(mg_spend_kind_t k);
/* The record's field of an entity kind (the api_key for KEY...). */
mg_spend_field_t mg_spend_kind_field(mg_spend_kind_t k);

/* Publishes the master's state JSON for every process. */
void mg_spend_publish_blob(const char *json, size_t len);

/* Rows as JSON (master side: the sink, the embedded queries).  p/n: a record's payload
 * (16-byte row id then the mg_spend_rec_t and its text); NULL when it is not sane. */
const mg_spend_rec_t *mg_spend_payload_rec(const void *p, size_t n, const char **uid);
/* ISO-8601 UTC with microseconds ("2026-12-07T10:00:00.123456"), no zone. */
void mg_spend_fmt_time(int64_t us, char *out, size_t len);
/* "YYYY-MM-DD" of us (UTC). */
void mg_spend_fmt_day(int64_t us, char *out, size_t len);

#endif
