/*
 * mg_spend_ring.h -- a single-producer single-consumer ring of variable-size records in
 * shared memory (one per worker).
 *
 * Owns nothing: the ring lives in memory its creator provides (the mg_shm arena).
 * head and tail are byte counts that only grow (never wrap: 2^64 bytes); the record at
 * offset head & (cap - 1) is written by the producer, then head is published with a release
 * store.  The consumer reads head with an acquire load, reads the records up to it, then
 * publishes tail with a release store; the producer reads tail with an acquire load before
 * it reuses space.  Records are 8-byte aligned and never wrap: a record that does not fit
 * before the end is preceded by a pad record that fills the rest.  Every record starts with
 * two uint32: its length (header included) and its kind.
 *
 * A producer killed mid-record never published it: the bytes past head are ignored, and the
 * next producer on the ring (a respawned worker) overwrites them.
 */
#ifndef MG_SPEND_RING_H
#define MG_SPEND_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_SPEND_REC_PAD 0x50414430u    /* "PAD0" */
#define MG_SPEND_REC_ROW 0x524f5731u    /* "ROW1" */

typedef struct {
    uint64_t head;                  /* producer: bytes published */
    char pad1[56];
    uint64_t tail;                  /* consumer: bytes consumed */
    char pad2[56];
    /* producer-only (kept here so a respawned producer continues them) */
    uint64_t tail_seen;             /* last tail the producer read */
    uint64_t pushed;                /* records published */
    uint64_t dropped;               /* records refused: no room */
    int64_t last_drop_log_ms;       /* monotonic ms of the last "ring full" line */
    uint64_t dropped_logged;        /* dropped at that line */
    uint64_t cap;                   /* bytes of data, a power of two */
    char pad3[16];
    unsigned char data[];           /* cap bytes */
} mg_spend_ring_t;

/* Bytes to allocate for a ring with cap bytes of data (cap: a power of two >= 4096). */
size_t mg_spend_ring_size(uint64_t cap);
/* Initialises zeroed memory of mg_spend_ring_size(cap) bytes. */
void mg_spend_ring_init(mg_spend_ring_t *r, uint64_t cap);
/* The largest record the ring takes (a quarter of it). */
uint64_t mg_spend_ring_max_record(const mg_spend_ring_t *r);

/*
 * Producer: room for one record of n bytes (n a multiple of 8, >= 8, <= max record).
 * Returns where to write it, or NULL when the ring is full (the caller counts the drop).
 * *next is what to pass to mg_spend_ring_publish once the record is written (a pad record
 * is written here when the record has to start at the beginning).
 */
void *mg_spend_ring_reserve(mg_spend_ring_t *r, uint32_t n, uint64_t *next);
/* Producer: makes the reserved record visible. */
static inline void
mg_spend_ring_publish(mg_spend_ring_t *r, uint64_t next)
{
    __atomic_add_fetch(&r->pushed, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&r->head, next, __ATOMIC_RELEASE);
}

/*
 * Consumer: the next record at or after *pos (pad records are skipped), or NULL when *pos
 * has reached the published head.  *len is the record's length; pass *pos + *len back to go
 * on.  Call mg_spend_ring_consume(r, pos) once the records before pos are no longer needed.
 * At the end NULL is returned with *len = 0.  A record whose length is not sane (shorter
 * than its header, not aligned, past the ring or the head) means the memory was corrupted:
 * NULL with *len = UINT32_MAX and *pos left at it (the caller skips to head and counts it).
 */
const void *mg_spend_ring_peek(const mg_spend_ring_t *r, uint64_t *pos, uint64_t head,
                               uint32_t *len);
/* Consumer: the published head (acquire). */
static inline uint64_t
mg_spend_ring_head(const mg_spend_ring_t *r)
{
    return __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
}
/* Consumer: the consumed position. */
static inline uint64_t
mg_spend_ring_tail(const mg_spend_ring_t *r)
{
    return __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
}
/* Consumer: frees the space before pos. */
static inline void
mg_spend_ring_consume(mg_spend_ring_t *r, uint64_t pos)
{
    __atomic_store_n(&r->tail, pos, __ATOMIC_RELEASE);
}

#endif
