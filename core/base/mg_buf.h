/*
 * mg_buf.h -- a growable byte buffer with a read position.
 *
 * Single owner; mg_buf_free() releases the storage.  Data lives in
 * [data + start, data + end); space after end is free for appending.
 */
#ifndef MG_BUF_H
#define MG_BUF_H

#include "mg_types.h"

#include <stdarg.h>
#include <string.h>

struct mg_buf_s {
    char *data;     /* owned */
    size_t start;
    size_t end;
    size_t cap;
};

#define MG_BUF_INIT {NULL, 0, 0, 0}

static inline size_t
mg_buf_len(const mg_buf_t *b)
{
    return b->end - b->start;
}

static inline char *
mg_buf_head(const mg_buf_t *b)
{
    return b->data + b->start;
}

/* Makes room for at least n more bytes after end (compacting or growing). */
void mg_buf_reserve(mg_buf_t *b, size_t n);
void mg_buf_append(mg_buf_t *b, const void *p, size_t n);
void mg_buf_append_str(mg_buf_t *b, const char *s);
void mg_buf_printf(mg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mg_buf_vprintf(mg_buf_t *b, const char *fmt, va_list ap);
/* Drops n bytes from the front. */
void mg_buf_consume(mg_buf_t *b, size_t n);
void mg_buf_reset(mg_buf_t *b);
void mg_buf_free(mg_buf_t *b);
/* Appends s[0..n) escaped for the inside of a JSON string (no quotes). */
void mg_buf_json_escape(mg_buf_t *b, const char *s, size_t n);
/* Appends a JSON string literal (with quotes) for s[0..n); bytes that are not
 * well-formed UTF-8 become U+FFFD, so the output is always valid JSON. */
void mg_buf_json_str(mg_buf_t *b, const char *s, size_t n);
/* Returns a NUL-terminated view (appends a NUL after end, not counted). */
const char *mg_buf_cstr(mg_buf_t *b);

#endif
