/*
 * mg_sse.c -- SSE event splitter (see mg_sse.h).
 */
#include "mg_sse.h"

#include "../base/mg_err.h"

#include <string.h>

/* Finds the end of an event (blank line) in b from 'from'; returns length incl. terminator or 0. */
static size_t
mg_sse_find_end(const char *p, size_t n, size_t from)
{
    size_t i = from > 1 ? from - 2 : 0;
    for (; i < n; i++) {
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL) {
            return 0;
        }
        i = (size_t) (nl - p);
        if (i + 1 < n && p[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/* Extracts the data field; uses tmp when several data lines must be joined. */
static void
mg_sse_data(const char *p, size_t n, mg_buf_t *tmp, const char **data, size_t *dlen)
{
    *data = NULL;
    *dlen = 0;
    int count = 0;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t le = nl ? (size_t) (nl - p) : n;
        size_t ll = le - i;
        if (ll > 0 && p[i + ll - 1] == '\r') {
            ll--;
        }
        if (ll >= 5 && memcmp(p + i, "data:", 5) == 0) {
            const char *v = p + i + 5;
            size_t vl = ll - 5;
            if (vl > 0 && *v == ' ') {
                v++;
                vl--;
            }
            if (count == 0) {
                *data = v;
                *dlen = vl;
            } else {
                if (count == 1) {
                    mg_buf_reset(tmp);
                    mg_buf_append(tmp, *data, *dlen);
                }
                mg_buf_append(tmp, "\n", 1);
                mg_buf_append(tmp, v, vl);
                *data = mg_buf_head(tmp);
                *dlen = mg_buf_len(tmp);
            }
            count++;
        }
        i = le + 1;
    }
}

int
mg_sse_feed(mg_sse_t *s, const char *p, size_t n, mg_sse_event_cb cb, void *ud)
{
    mg_buf_t tmp = MG_BUF_INIT;
    int rc = MG_OK;
    /* fast path: nothing buffered, parse straight from the input */
    const char *cur = p;
    size_t left = n;
    if (mg_buf_len(&s->buf) == 0) {
        for (;;) {
            size_t e = mg_sse_find_end(cur, left, 0);
            if (e == 0) {
                break;
            }
            const char *d;
            size_t dl;
            mg_sse_data(cur, e, &tmp, &d, &dl);
            bool more = cb(ud, cur, e, d, dl);
            cur += e;
            left -= e;
            if (!more) {
                mg_buf_free(&tmp);
                return MG_OK;
            }
        }
        if (left > 0) {
            if (left > MG_SSE_MAX_EVENT) {
                rc = MG_ERROR;
            } else {
                mg_buf_append(&s->buf, cur, left);
                s->scanned = left;
            }
        }
        mg_buf_free(&tmp);
        return rc;
    }
    mg_buf_append(&s->buf, p, n);
    for (;;) {
        size_t e = mg_sse_find_end(mg_buf_head(&s->buf), mg_buf_len(&s->buf), s->scanned);
        if (e == 0) {
            s->scanned = mg_buf_len(&s->buf);
            if (s->scanned > MG_SSE_MAX_EVENT) {
                rc = MG_ERROR;
            }
            break;
        }
        const char *d;
        size_t dl;
        mg_sse_data(mg_buf_head(&s->buf), e, &tmp, &d, &dl);
        bool more = cb(ud, mg_buf_head(&s->buf), e, d, dl);
        mg_buf_consume(&s->buf, e);
        s->scanned = 0;
        if (!more) {
            break;
        }
    }
    mg_buf_free(&tmp);
    return rc;
}

size_t
mg_sse_pending(const mg_sse_t *s)
{
    return mg_buf_len(&s->buf);
}

void
mg_sse_free(mg_sse_t *s)
{
    mg_buf_free(&s->buf);
    s->scanned = 0;
}
