/*
 * mg_buf.c -- growable byte buffer.
 */
#include "mg_buf.h"

#include <stdint.h>

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

/* Length of the well-formed UTF-8 sequence at s[0..n) (1..4), or 0 if it is not one. */
static size_t
mg_buf_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < k + 1) {
        return 0;
    }
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return k + 1;
}

void
mg_buf_json_escape(mg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mg_buf_reserve(b, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            continue;
        }
        if (c >= 0x80) {
            /* well-formed UTF-8 passes; anything else is U+FFFD, so the text stays JSON */
            size_t k = mg_buf_utf8_len((const unsigned char *) s + i, n - i);
            if (k > 0) {
                i += k - 1;
                continue;
            }
            mg_buf_append(b, s + run, i - run);
            run = i + 1;
            mg_buf_append(b, "\\ufffd", 6);
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
