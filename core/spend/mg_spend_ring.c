/*
 * mg_spend_ring.c -- see mg_spend_ring.h.
 */
#include "mg_spend_ring.h"

#include <string.h>

size_t
mg_spend_ring_size(uint64_t cap)
{
    return sizeof(mg_spend_ring_t) + (size_t) cap;
}

void
mg_spend_ring_init(mg_spend_ring_t *r, uint64_t cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap;
}

uint64_t
mg_spend_ring_max_record(const mg_spend_ring_t *r)
{
    return r->cap / 4;
}

void *
mg_spend_ring_reserve(mg_spend_ring_t *r, uint32_t n, uint64_t *next)
{
    uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED); /* ours alone */
    uint64_t cap = r->cap;
    uint64_t off = head & (cap - 1);
    uint64_t to_end = cap - off;
    uint64_t need = n <= to_end ? n : to_end + n;
    if (n > cap / 4 || n < 8 || (n & 7) != 0) {
        return NULL;
    }
    if (head + need - r->tail_seen > cap) {
        r->tail_seen = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
        if (head + need - r->tail_seen > cap) {
            return NULL;
        }
    }
    if (n > to_end) {
        /* the consumer is past this space: write the pad before the record */
        uint32_t pad[2] = {(uint32_t) to_end, MG_SPEND_REC_PAD};
        memcpy(r->data + off, pad, sizeof(pad));
        head += to_end;
        off = 0;
    }
    *next = head + n;
    return r->data + off;
}

const void *
mg_spend_ring_peek(const mg_spend_ring_t *r, uint64_t *pos, uint64_t head, uint32_t *len)
{
    uint64_t cap = r->cap;
    while (*pos < head) {
        uint64_t off = *pos & (cap - 1);
        uint32_t h[2];
        memcpy(h, r->data + off, sizeof(h));
        if (h[0] < 8 || (h[0] & 7) != 0 || h[0] > cap - off || *pos + h[0] > head) {
            *len = UINT32_MAX;
            return NULL;
        }
        if (h[1] == MG_SPEND_REC_PAD) {
            *pos += h[0];
            continue;
        }
        *len = h[0];
        return r->data + off;
    }
    *len = 0;
    return NULL;
}
