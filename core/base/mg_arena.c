/*
 * mg_arena.c -- bump allocator for request-lifetime data, and the aborting
 * malloc wrappers.
 */
#include "mg_arena.h"

#include "mg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mg_arena_chunk_s {
    mg_arena_chunk_t *next;
    size_t size;
    /* data follows, aligned */
    max_align_t data[];
};

#define MG_ARENA_ALIGN 16

void
mg_arena_init(mg_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->pos = NULL;
    a->end = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->total = 0;
}

void
mg_arena_destroy(mg_arena_t *a)
{
    mg_arena_chunk_t *c = a->head;
    while (c != NULL) {
        mg_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->pos = a->end = NULL;
    a->total = 0;
}

void
mg_arena_reset(mg_arena_t *a)
{
    mg_arena_chunk_t *c = a->head;
    if (c == NULL) {
        return;
    }
    /* keep the oldest chunk of the default size */
    mg_arena_chunk_t *keep = NULL;
    while (c != NULL) {
        mg_arena_chunk_t *next = c->next;
        if (next == NULL && c->size == a->chunk_size) {
            keep = c;
        } else {
            free(c);
        }
        c = next;
    }
    a->head = keep;
    a->total = 0;
    if (keep != NULL) {
        keep->next = NULL;
        a->pos = (char *) keep->data;
        a->end = a->pos + keep->size;
        a->total = keep->size;
    } else {
        a->pos = a->end = NULL;
    }
}

void *
mg_arena_alloc(mg_arena_t *a, size_t size)
{
    size_t need = (size + MG_ARENA_ALIGN - 1) & ~((size_t) MG_ARENA_ALIGN - 1);
    if (a->pos == NULL || (size_t) (a->end - a->pos) < need) {
        size_t csize = need > a->chunk_size ? need : a->chunk_size;
        mg_arena_chunk_t *c = mg_xmalloc(sizeof(*c) + csize);
        c->size = csize;
        if (need > a->chunk_size && a->head != NULL) {
            /* a big one-off: link it behind the current chunk, keep bumping there */
            c->next = a->head->next;
            a->head->next = c;
            a->total += csize;
            return c->data;
        }
        c->next = a->head;
        a->head = c;
        a->pos = (char *) c->data;
        a->end = a->pos + csize;
        a->total += csize;
    }
    void *p = a->pos;
    a->pos += need;
    return p;
}

void *
mg_arena_calloc(mg_arena_t *a, size_t size)
{
    void *p = mg_arena_alloc(a, size);
    memset(p, 0, size);
    return p;
}

char *
mg_arena_strndup(mg_arena_t *a, const char *s, size_t len)
{
    char *p = mg_arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
mg_arena_strdup(mg_arena_t *a, const char *s)
{
    return mg_arena_strndup(a, s, strlen(s));
}

char *
mg_arena_vprintf(mg_arena_t *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return mg_arena_strdup(a, "");
    }
    char *p = mg_arena_alloc(a, (size_t) n + 1);
    vsnprintf(p, (size_t) n + 1, fmt, ap);
    return p;
}

char *
mg_arena_printf(mg_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = mg_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

static void
mg_x_oom(size_t size)
{
    mg_log_write(MG_LOG_ERROR, NULL, "malloc(%zu) failed: out of memory, aborting", size);
    abort();
}

void *
mg_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL) {
        mg_x_oom(size);
    }
    return p;
}

void *
mg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        mg_x_oom(n * size);
    }
    return p;
}

void *
mg_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL) {
        mg_x_oom(size);
    }
    return q;
}

char *
mg_xstrdup(const char *s)
{
    return mg_xstrndup(s, strlen(s));
}

char *
mg_xstrndup(const char *s, size_t n)
{
    char *p = mg_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
