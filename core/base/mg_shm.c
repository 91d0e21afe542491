/*
 * mg_shm.c -- the instance's shared memory region (see mg_shm.h).
 */
#include "mg_shm.h"

#include "mg_log.h"
#include "mg_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define MG_SHM_MAGIC 0x6d6f6f6e67617465ULL

mg_shm_t *mg_shm = NULL;

int
mg_shm_create(int nworkers, size_t arena_size)
{
    size_t total = sizeof(mg_shm_t) + arena_size;
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        mg_log(MG_LOG_ERROR, NULL, "mmap(%zu) for shared memory failed (%d: %s)", total, errno,
               strerror(errno));
        return -1;
    }
    mg_shm = p;
    memset(mg_shm, 0, sizeof(mg_shm_t));
    mg_shm->magic = MG_SHM_MAGIC;
    mg_shm->nworkers = nworkers;
    mg_shm->arena_size = arena_size;
    char id[37];
    mg_uuid4(id);
    snprintf(mg_shm->instance_id, sizeof(mg_shm->instance_id), "%s", id);
    return 0;
}

void *
mg_shm_alloc(size_t size)
{
    size_t need = (size + 63) & ~(size_t) 63;
    if (mg_shm == NULL || mg_shm->arena_used + need > mg_shm->arena_size) {
        return NULL;
    }
    char *base = (char *) (mg_shm + 1);
    void *p = base + mg_shm->arena_used;
    mg_shm->arena_used += need;
    memset(p, 0, size);
    return p;
}

/* ---- seqlocked blobs: odd sequence while being written ---- */

static void
mg_shm_blob_write(uint32_t *seqp, uint32_t *lenp, char *dst, size_t cap, const char *src,
                  size_t len)
{
    if (len > cap) {
        len = cap;
    }
    uint32_t seq = __atomic_load_n(seqp, __ATOMIC_RELAXED);
    __atomic_store_n(seqp, seq + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memcpy(dst, src, len);
    *lenp = (uint32_t) len;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(seqp, seq + 2, __ATOMIC_RELEASE);
}

static size_t
mg_shm_blob_read(const uint32_t *seqp, const uint32_t *lenp, const char *src, size_t cap,
                 char *out)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t s1 = __atomic_load_n(seqp, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            continue;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t len = *lenp;
        if (len > cap) {
            len = 0;
        }
        memcpy(out, src, len);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t s2 = __atomic_load_n(seqp, __ATOMIC_ACQUIRE);
        if (s1 == s2) {
            out[len] = '\0';
            return len;
        }
    }
    out[0] = '\0';
    return 0;
}

void
mg_shm_publish_blob(mg_shm_worker_t *w, const char *json, size_t len)
{
    mg_shm_blob_write(&w->blob_seq, &w->blob_len, w->blob, MG_SHM_STATE_BLOB, json, len);
}

size_t
mg_shm_read_blob(const mg_shm_worker_t *w, char *out)
{
    return mg_shm_blob_read(&w->blob_seq, &w->blob_len, w->blob, MG_SHM_STATE_BLOB, out);
}

void
mg_shm_publish_master(const char *json, size_t len)
{
    if (mg_shm != NULL) {
        mg_shm_blob_write(&mg_shm->master_seq, &mg_shm->master_len, mg_shm->master_blob,
                          MG_SHM_MASTER_BLOB, json, len);
    }
}

size_t
mg_shm_read_master(char *out)
{
    if (mg_shm == NULL) {
        out[0] = '\0';
        return 0;
    }
    return mg_shm_blob_read(&mg_shm->master_seq, &mg_shm->master_len, mg_shm->master_blob,
                            MG_SHM_MASTER_BLOB, out);
}
