/*
 * mg_map.c -- string-keyed hash map.
 */
#include "mg_map.h"

#include "mg_arena.h"

#include <stdlib.h>
#include <string.h>

uint64_t
mg_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a, 64-bit: keys are short names and ids */
    const unsigned char *s = p;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void
mg_map_init(mg_map_t *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void
mg_map_free(mg_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
    }
    free(m->slots);
    mg_map_init(m);
}

static mg_map_slot_t *
mg_map_find(const mg_map_t *m, const char *key, size_t klen, uint64_t h)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        mg_map_slot_t *s = &m->slots[i];
        if (s->key == NULL) {
            return s;
        }
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) {
            return s;
        }
    }
}

static void
mg_map_grow(mg_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    mg_map_slot_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = mg_xcalloc(ncap, sizeof(mg_map_slot_t));
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].key != NULL) {
            mg_map_slot_t *s = mg_map_find(m, old[i].key, old[i].klen, old[i].hash);
            *s = old[i];
        }
    }
    free(old);
}

void *
mg_map_put(mg_map_t *m, const char *key, size_t klen, void *val)
{
    if ((m->count + 1) * 4 >= m->cap * 3) {
        mg_map_grow(m);
    }
    uint64_t h = mg_hash_bytes(key, klen);
    mg_map_slot_t *s = mg_map_find(m, key, klen, h);
    if (s->key != NULL) {
        void *prev = s->val;
        s->val = val;
        return prev;
    }
    s->key = mg_xstrndup(key, klen);
    s->klen = klen;
    s->hash = h;
    s->val = val;
    m->count++;
    return NULL;
}

void *
mg_map_get(const mg_map_t *m, const char *key, size_t klen)
{
    mg_map_slot_t *s = mg_map_find(m, key, klen, mg_hash_bytes(key, klen));
    return (s != NULL && s->key != NULL) ? s->val : NULL;
}

void *
mg_map_del(mg_map_t *m, const char *key, size_t klen)
{
    mg_map_slot_t *s = mg_map_find(m, key, klen, mg_hash_bytes(key, klen));
    if (s == NULL || s->key == NULL) {
        return NULL;
    }
    void *val = s->val;
    free(s->key);
    s->key = NULL;
    m->count--;
    /* re-insert the rest of the cluster so probing stays correct */
    size_t mask = m->cap - 1;
    size_t i = (size_t) (s - m->slots);
    for (size_t j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
        mg_map_slot_t tmp = m->slots[j];
        m->slots[j].key = NULL;
        mg_map_slot_t *d = mg_map_find(m, tmp.key, tmp.klen, tmp.hash);
        *d = tmp;
    }
    return val;
}
