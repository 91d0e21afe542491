/*
 * mg_arena.h -- request arena: bump allocation, freed all at once.
 *
 * Owns: its chunks.  Nothing allocated from it is freed on its own; the whole
 * arena goes at mg_arena_destroy().  Never store an arena pointer in anything
 * that outlives the arena's owner.
 */
#ifndef MG_ARENA_H
#define MG_ARENA_H

#include "mg_types.h"

#include <stdarg.h>

typedef struct mg_arena_chunk_s mg_arena_chunk_t;

struct mg_arena_s {
    mg_arena_chunk_t *head;     /* owned: chunk list, newest first */
    char *pos;
    char *end;
    size_t chunk_size;
    size_t total;
};

/* Initialises an arena in place (no allocation until first use). */
void mg_arena_init(mg_arena_t *a, size_t chunk_size);
/* Frees every chunk; the arena may be reused after mg_arena_init(). */
void mg_arena_destroy(mg_arena_t *a);
/* Frees all but keeps the first chunk for reuse. */
void mg_arena_reset(mg_arena_t *a);

void *mg_arena_alloc(mg_arena_t *a, size_t size);
void *mg_arena_calloc(mg_arena_t *a, size_t size);
char *mg_arena_strndup(mg_arena_t *a, const char *s, size_t len);
char *mg_arena_strdup(mg_arena_t *a, const char *s);
char *mg_arena_printf(mg_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *mg_arena_vprintf(mg_arena_t *a, const char *fmt, va_list ap);

/* malloc/calloc/realloc/strdup that log and abort on failure: for small fixed sizes. */
void *mg_xmalloc(size_t size);
void *mg_xcalloc(size_t n, size_t size);
void *mg_xrealloc(void *p, size_t size);
char *mg_xstrdup(const char *s);
char *mg_xstrndup(const char *s, size_t n);

#endif
