/*
 * mg_buf.c -- growable byte buffer.
 */
#include "mg_buf.h"

#include "mg_arena.h"

#include <stdio.h>
#include <stdlib.h>

void
mg_buf_reserve(mg_buf_t *b, size_t n)
{
    if (b->cap - b->end >= n) {
        return;
    }
    size_t len = b->end - b->start;
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        if (b->cap - len >= n) {
            return;
        }
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - len < n) {
        cap *= 2;
    }
    b->data = mg_xrealloc(b->data, cap);
    b->cap = cap;
}

void
mg_buf_append(mg_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    mg_buf_reserve(b, n);
    memcpy(b->data + b->end, p, n);
    b->end += n;
}

void
mg_buf_append_str(mg_buf_t *b, const char *s)
{
    mg_buf_append(b, s, strlen(s));
}

void
mg_buf_vprintf(mg_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    mg_buf_reserve(b, 128);
    int n = vsnprintf(b->data + b->end, b->cap - b->end, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return;
    }
    if ((size_t) n >= b->cap - b->end) {
        mg_buf_reserve(b, (size_t) n + 1);
        vsnprintf(b->data + b->end, b->cap - b->end, fmt, ap);
    }
    b->end += (size_t) n;
}

void
mg_buf_printf(mg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mg_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void
mg_buf_consume(mg_buf_t *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end) {
        b->start = b->end = 0;
    }
}

void
mg_buf_reset(mg_buf_t *b)
{
    b->start = b->end = 0;
}

void
mg_buf_free(mg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void
mg_buf_json_escape(mg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mg_buf_reserve(b, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        mg_buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[7];
        size_t el = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        mg_buf_append(b, esc, el);
    }
    mg_buf_append(b, s + run, n - run);
}

void
mg_buf_json_str(mg_buf_t *b, const char *s, size_t n)
{
    mg_buf_reserve(b, n + 2);
    b->data[b->end++] = '"';
    mg_buf_json_escape(b, s, n);
    mg_buf_append(b, "\"", 1);
}

const char *
mg_buf_cstr(mg_buf_t *b)
{
    mg_buf_reserve(b, 1);
    b->data[b->end] = '\0';
    return b->data + b->start;
}
