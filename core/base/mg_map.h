/*
 * mg_map.h -- string-keyed hash map (open addressing, linear probing).
 *
 * Single owner.  Keys are copied and owned by the map; values are opaque
 * pointers the map does not own.  Used for the registry's derived indexes,
 * which are built once per snapshot and then only read.
 */
#ifndef MG_MAP_H
#define MG_MAP_H

#include "mg_types.h"

typedef struct {
    char *key;          /* owned */
    size_t klen;
    uint64_t hash;
    void *val;          /* not owned */
} mg_map_slot_t;

typedef struct {
    mg_map_slot_t *slots;   /* owned */
    size_t cap;             /* power of two */
    size_t count;
} mg_map_t;

void mg_map_init(mg_map_t *m);
void mg_map_free(mg_map_t *m);
/* Inserts or replaces; returns the previous value or NULL. */
void *mg_map_put(mg_map_t *m, const char *key, size_t klen, void *val);
void *mg_map_get(const mg_map_t *m, const char *key, size_t klen);
/* Removes; returns the value or NULL. */
void *mg_map_del(mg_map_t *m, const char *key, size_t klen);

uint64_t mg_hash_bytes(const void *p, size_t n);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ... */

#endif
