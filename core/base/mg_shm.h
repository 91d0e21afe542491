/*
 * mg_shm.h -- memory shared by the master and all workers of one instance.
 *
 * Created by the master before it forks; never resized.  Holds one status
 * slot per worker (written only by that worker, read by everyone: readiness,
 * /moongate/state) and an arena for other shared tables (deployment stats).
 * Cross-process: fields written concurrently use __atomic builtins; the state
 * JSON blob uses a sequence lock (odd while being written).
 */
#ifndef MG_SHM_H
#define MG_SHM_H

#include "mg_types.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MG_SHM_MAX_WORKERS 64
#define MG_SHM_STATE_BLOB (48 * 1024)
#define MG_SHM_MASTER_BLOB (16 * 1024)

typedef enum {
    MG_WSTATE_NONE = 0,     /* slot unused */
    MG_WSTATE_STARTING,     /* forked, registry never loaded */
    MG_WSTATE_READY,        /* loaded at least once */
    MG_WSTATE_DRAINING,     /* SIGTERM: finishing in-flight requests */
    MG_WSTATE_DEAD,         /* exited; master will respawn */
} mg_wstate_t;

typedef struct {
    int32_t pid;
    int32_t state;              /* mg_wstate_t */
    int32_t loaded_once;
    int32_t pad;
    int64_t version;            /* registry version applied */
    int64_t config_gen;
    int64_t snapshot_created_ms;
    int64_t started_ms;
    int64_t heartbeat_ms;
    uint32_t blob_seq;          /* seqlock for blob */
    uint32_t blob_len;
    char blob[MG_SHM_STATE_BLOB]; /* the worker's state JSON */
} mg_shm_worker_t;

typedef struct {
    uint64_t magic;
    int32_t nworkers;
    int32_t draining;           /* instance is shutting down */
    int64_t started_ms;
    char instance_id[40];
    int32_t requests_inflight;  /* every worker's requests being handled (--limit_concurrency) */
    int32_t pad2;
    uint64_t ignored_caching;   /* requests that asked for caching (/moongate/state) */
    mg_shm_worker_t workers[MG_SHM_MAX_WORKERS];
    /* written by the master only: cost maps refused (moongate_reloads_refused_total
     * {kind="cost_map"}), and its state JSON for /moongate/state (the cost map in use, the
     * last refusal, the reload schedule) under a seqlock like a worker's blob */
    int64_t costmap_refusals;
    uint32_t master_seq;
    uint32_t master_len;
    char master_blob[MG_SHM_MASTER_BLOB];
    size_t arena_size;
    size_t arena_used;          /* only the master allocates (before fork) */
    /* arena follows */
} mg_shm_t;

extern mg_shm_t *mg_shm;

/* Creates the shared region (master, before fork). */
int mg_shm_create(int nworkers, size_t arena_size);
/* Allocates from the shared arena (master, before fork); zeroed; NULL when full. */
void *mg_shm_alloc(size_t size);

/* Worker: publishes its state JSON (seqlock). */
void mg_shm_publish_blob(mg_shm_worker_t *w, const char *json, size_t len);
/* Anyone: copies a worker's state JSON into out (size MG_SHM_STATE_BLOB + 1); returns length. */
size_t mg_shm_read_blob(const mg_shm_worker_t *w, char *out);
/* Master: publishes its state JSON (truncated past MG_SHM_MASTER_BLOB: keep it small). */
void mg_shm_publish_master(const char *json, size_t len);
/* Anyone: copies the master's state JSON into out (size MG_SHM_MASTER_BLOB + 1). */
size_t mg_shm_read_master(char *out);

static inline int64_t
mg_atomic_load64(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void
mg_atomic_store64(int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline int32_t
mg_atomic_load32(const int32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void
mg_atomic_store32(int32_t *p, int32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

#endif
