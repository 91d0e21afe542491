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

void
mg_shm_publish_blob(mg_shm_worker_t *w, const char *json, size_t len)
{
    if (len > MG_SHM_STATE_BLOB) {
        len = MG_SHM_STATE_BLOB;
    }
    uint32_t seq = __atomic_load_n(&w->blob_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&w->blob_seq, seq + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memcpy(w->blob, json, len);
    w->blob_len = (uint32_t) len;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&w->blob_seq, seq + 2, __ATOMIC_RELEASE);
}

size_t
mg_shm_read_blob(const mg_shm_worker_t *w, char *out)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t s1 = __atomic_load_n(&w->blob_seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            continue;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t len = w->blob_len;
        if (len > MG_SHM_STATE_BLOB) {
            len = 0;
        }
        memcpy(out, w->blob, len);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t s2 = __atomic_load_n(&w->blob_seq, __ATOMIC_ACQUIRE);
        if (s1 == s2) {
            out[len] = '\0';
            return len;
        }
    }
    out[0] = '\0';
    return 0;
}
