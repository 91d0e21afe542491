/*
 * mg_eventstream.c -- AWS event-stream framing: CRC32, the incremental decoder, the
 * encoder (see mg_eventstream.h).
 *
 * Owns: a decoder's partial-message buffer and header array.  The decoder checks a
 * message's prelude (CRC, then lengths) as soon as its first 12 bytes are in, so a
 * corrupt length is reported before anything is buffered for it; the whole message is
 * checked (message CRC, then headers) before its callback.  A message that arrives whole
 * inside one feed is decoded in place, without a copy.
 */
#include "mg_eventstream.h"

#include "../../base/mg_arena.h"
#include "../../base/mg_err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC32 (IEEE 802.3, reflected polynomial 0xEDB88320), four bits at a time ---- */

static const uint32_t mg_eventstream_crc_nibble[16] = {
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
    0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
    0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};

uint32_t
mg_eventstream_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ mg_eventstream_crc_nibble[crc & 15];
        crc = (crc >> 4) ^ mg_eventstream_crc_nibble[crc & 15];
    }
    return ~crc;
}

/* ---- big-endian helpers ---- */

static uint32_t
mg_eventstream_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint16_t
mg_eventstream_be16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}

static int64_t
mg_eventstream_be_signed(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    if (n < 8 && (p[0] & 0x80)) {
        v |= ~(uint64_t) 0 << (8 * n);  /* sign-extend */
    }
    return (int64_t) v;
}

static void
mg_eventstream_put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[n - 1 - i] = (uint8_t) (v >> (8 * i));
    }
}

/* ---- decoder ---- */

void
mg_eventstream_decoder_init(mg_eventstream_decoder_t *d, uint32_t max_len, mg_eventstream_cb cb,
                            void *ud)
{
    memset(d, 0, sizeof(*d));
    d->max_len = max_len != 0 ? max_len : MG_EVENTSTREAM_MAX_DEFAULT;
    if (d->max_len < MG_EVENTSTREAM_MIN) {
        d->max_len = MG_EVENTSTREAM_MIN;
    }
    d->cb = cb;
    d->ud = ud;
}

void
mg_eventstream_decoder_free(mg_eventstream_decoder_t *d)
{
    mg_buf_free(&d->buf);
    free(d->hdrs);
    d->hdrs = NULL;
    d->hdrs_cap = 0;
}

/* Records the failure (every later feed repeats it) and returns MG_ERROR with err. */
static int
mg_eventstream_fail(mg_eventstream_decoder_t *d, mg_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
mg_eventstream_fail(mg_eventstream_decoder_t *d, mg_err_t *err, const char *fmt, ...)
{
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(d->errmsg, sizeof(d->errmsg), "event stream: message %llu at byte %llu: %s",
             (unsigned long long) d->messages + 1, (unsigned long long) d->offset, detail);
    d->state = 1;
    return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "%s", d->errmsg);
}

/* Checks the 12-byte prelude; on success *total is the message's length. */
static int
mg_eventstream_prelude(mg_eventstream_decoder_t *d, const uint8_t *p, uint32_t *total,
                       mg_err_t *err)
{
    uint32_t t = mg_eventstream_be32(p);
    uint32_t h = mg_eventstream_be32(p + 4);
    uint32_t want = mg_eventstream_be32(p + 8);
    uint32_t got = mg_eventstream_crc32(0, p, 8);
    if (got != want) {
        return mg_eventstream_fail(d, err, "prelude CRC mismatch (frame says 0x%08x, bytes give "
                                   "0x%08x)", want, got);
    }
    if (t < MG_EVENTSTREAM_MIN) {
        return mg_eventstream_fail(d, err, "total length %u is below the minimum of %u", t,
                                   (unsigned) MG_EVENTSTREAM_MIN);
    }
    if (t > d->max_len) {
        return mg_eventstream_fail(d, err, "total length %u exceeds the cap of %u bytes", t,
                                   d->max_len);
    }
    if (h > t - MG_EVENTSTREAM_MIN) {
        return mg_eventstream_fail(d, err, "headers length %u does not fit in a message of %u "
                                   "bytes", h, t);
    }
    *total = t;
    return MG_OK;
}

static bool
mg_eventstream_name_is(const mg_eventstream_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && memcmp(h->name, name, n) == 0;
}

/* Parses the headers section [p, p+n) into d->hdrs. */
static int
mg_eventstream_headers(mg_eventstream_decoder_t *d, const uint8_t *p, uint32_t n, size_t *count,
                       mg_err_t *err)
{
    static const uint8_t fixed[10] = {0, 0, 1, 2, 4, 8, 0, 0, 8, 16}; /* value bytes by type */
    size_t k = 0;
    uint32_t pos = 0;
    while (pos < n) {
        if (k == MG_EVENTSTREAM_MAX_HEADERS) {
            return mg_eventstream_fail(d, err, "more than %d headers",
                                       MG_EVENTSTREAM_MAX_HEADERS);
        }
        uint32_t nl = p[pos];
        if (nl == 0) {
            return mg_eventstream_fail(d, err, "header %zu has an empty name", k + 1);
        }
        if (nl + 2 > n - pos) {
            return mg_eventstream_fail(d, err, "header %zu overruns the headers section (%u "
                                       "bytes)", k + 1, n);
        }
        const char *name = (const char *) p + pos + 1;
        uint8_t type = p[pos + 1 + nl];
        pos += nl + 2;
        if (type > MG_EVENTSTREAM_UUID) {
            return mg_eventstream_fail(d, err, "header \"%.*s\" has unknown type %u", (int) nl,
                                       name, type);
        }
        uint32_t vl = fixed[type];
        uint32_t skip = 0;
        if (type == MG_EVENTSTREAM_BYTES || type == MG_EVENTSTREAM_STRING) {
            if (n - pos < 2) {
                return mg_eventstream_fail(d, err, "header \"%.*s\" overruns the headers "
                                           "section (%u bytes)", (int) nl, name, n);
            }
            vl = mg_eventstream_be16(p + pos);
            skip = 2;
        }
        if (vl + skip > n - pos) {
            return mg_eventstream_fail(d, err, "header \"%.*s\" overruns the headers section "
                                       "(%u bytes)", (int) nl, name, n);
        }
        if (k == d->hdrs_cap) {
            d->hdrs_cap = d->hdrs_cap ? d->hdrs_cap * 2 : 8;
            d->hdrs = mg_xrealloc(d->hdrs, d->hdrs_cap * sizeof(*d->hdrs));
        }
        mg_eventstream_header_t *h = &d->hdrs[k++];
        memset(h, 0, sizeof(*h));
        h->name = name;
        h->name_len = nl;
        h->type = (mg_eventstream_type_t) type;
        const uint8_t *v = p + pos + skip;
        switch (h->type) {
        case MG_EVENTSTREAM_BYTE:
        case MG_EVENTSTREAM_SHORT:
        case MG_EVENTSTREAM_INT:
        case MG_EVENTSTREAM_LONG:
        case MG_EVENTSTREAM_TIMESTAMP:
            h->i = mg_eventstream_be_signed(v, vl);
            break;
        case MG_EVENTSTREAM_BYTES:
        case MG_EVENTSTREAM_STRING:
        case MG_EVENTSTREAM_UUID:
            h->p = v;
            h->len = vl;
            break;
        case MG_EVENTSTREAM_BOOL_TRUE:
        case MG_EVENTSTREAM_BOOL_FALSE:
            break;
        }
        pos += skip + vl;
    }
    *count = k;
    return MG_OK;
}

/* Checks one whole message [p, p+total) and hands it to the callback. */
static int
mg_eventstream_deliver(mg_eventstream_decoder_t *d, const uint8_t *p, uint32_t total,
                       mg_err_t *err)
{
    static const struct {
        const char *name;
        size_t off;
    } known[] = {
        {":message-type", offsetof(mg_eventstream_message_t, message_type)},
        {":event-type", offsetof(mg_eventstream_message_t, event_type)},
        {":exception-type", offsetof(mg_eventstream_message_t, exception_type)},
        {":content-type", offsetof(mg_eventstream_message_t, content_type)},
        {":error-code", offsetof(mg_eventstream_message_t, error_code)},
        {":error-message", offsetof(mg_eventstream_message_t, error_message)},
    };
    uint32_t want = mg_eventstream_be32(p + total - 4);
    uint32_t got = mg_eventstream_crc32(0, p, total - 4);
    if (got != want) {
        return mg_eventstream_fail(d, err, "message CRC mismatch (frame says 0x%08x, bytes give "
                                   "0x%08x)", want, got);
    }
    uint32_t hl = mg_eventstream_be32(p + 4);
    mg_eventstream_message_t m;
    memset(&m, 0, sizeof(m));
    if (mg_eventstream_headers(d, p + MG_EVENTSTREAM_PRELUDE, hl, &m.n_headers, err) != MG_OK) {
        return MG_ERROR;
    }
    m.headers = d->hdrs;
    for (size_t i = 0; i < m.n_headers; i++) {
        const mg_eventstream_header_t *h = &d->hdrs[i];
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (!mg_eventstream_name_is(h, known[k].name)) {
                continue;
            }
            if (h->type != MG_EVENTSTREAM_STRING) {
                return mg_eventstream_fail(d, err, "header \"%s\" has type %d, not string",
                                           known[k].name, (int) h->type);
            }
            mg_eventstream_str_t *s = (mg_eventstream_str_t *) ((char *) &m + known[k].off);
            if (s->p == NULL) { /* the first one wins */
                s->p = (const char *) h->p;
                s->len = h->len;
            }
        }
    }
    m.payload = p + MG_EVENTSTREAM_PRELUDE + hl;
    m.payload_len = total - MG_EVENTSTREAM_MIN - hl;
    m.total_len = total;
    d->offset += total;
    d->messages++;
    int rc = d->cb(d->ud, &m, err);
    if (rc != MG_OK) {
        d->state = 2;
        snprintf(d->errmsg, sizeof(d->errmsg),
                 "event stream: decoder was stopped by its callback after message %llu",
                 (unsigned long long) d->messages);
    }
    return rc;
}

int
mg_eventstream_feed(mg_eventstream_decoder_t *d, const void *data, size_t len, mg_err_t *err)
{
    if (d->state != 0) {
        return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "%s", d->errmsg);
    }
    const uint8_t *p = data;
    while (len > 0) {
        size_t have = mg_buf_len(&d->buf);
        if (have == 0) {
            /* between messages: decode whole ones straight from the caller's bytes */
            uint32_t total = 0;
            if (len >= MG_EVENTSTREAM_PRELUDE) {
                if (mg_eventstream_prelude(d, p, &total, err) != MG_OK) {
                    return MG_ERROR;
                }
                if (len >= total) {
                    int rc = mg_eventstream_deliver(d, p, total, err);
                    if (rc != MG_OK) {
                        return rc;
                    }
                    p += total;
                    len -= total;
                    continue;
                }
            }
            mg_buf_append(&d->buf, p, len);  /* less than one message: keep it */
            d->need = total;
            return MG_OK;
        }
        if (d->need == 0) {
            /* the prelude is still incomplete */
            size_t take = MG_EVENTSTREAM_PRELUDE - have;
            take = take < len ? take : len;
            mg_buf_append(&d->buf, p, take);
            p += take;
            len -= take;
            if (mg_buf_len(&d->buf) < MG_EVENTSTREAM_PRELUDE) {
                return MG_OK;
            }
            if (mg_eventstream_prelude(d, (const uint8_t *) mg_buf_head(&d->buf), &d->need,
                                       err) != MG_OK) {
                mg_buf_reset(&d->buf);
                return MG_ERROR;
            }
            mg_buf_reserve(&d->buf, d->need - MG_EVENTSTREAM_PRELUDE);
            continue;
        }
        size_t take = d->need - have;
        take = take < len ? take : len;
        mg_buf_append(&d->buf, p, take);
        p += take;
        len -= take;
        if (mg_buf_len(&d->buf) == d->need) {
            int rc = mg_eventstream_deliver(d, (const uint8_t *) mg_buf_head(&d->buf), d->need,
                                            err);
            mg_buf_reset(&d->buf);
            d->need = 0;
            if (rc != MG_OK) {
                return rc;
            }
        }
    }
    return MG_OK;
}

int
mg_eventstream_finish(mg_eventstream_decoder_t *d, mg_err_t *err)
{
    if (d->state == 1) {
        return mg_err_set(err, MG_ERR_UPSTREAM_5XX, "%s", d->errmsg);
    }
    if (d->state == 2) {
        return MG_OK; /* the callback chose to stop; what follows was never wanted */
    }
    size_t have = mg_buf_len(&d->buf);
    if (have == 0) {
        return MG_OK;
    }
    if (d->need != 0) {
        return mg_eventstream_fail(d, err, "stream ended inside a message: %zu of %u bytes",
                                   have, d->need);
    }
    return mg_eventstream_fail(d, err, "stream ended inside a message prelude: %zu of %d bytes",
                               have, MG_EVENTSTREAM_PRELUDE);
}

const mg_eventstream_header_t *
mg_eventstream_header_find(const mg_eventstream_message_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (mg_eventstream_name_is(&m->headers[i], name)) {
            return &m->headers[i];
        }
    }
    return NULL;
}

/* ---- encoder ---- */

int
mg_eventstream_encode(mg_buf_t *out, const mg_eventstream_header_t *headers, size_t n_headers,
                      const void *payload, size_t payload_len, mg_err_t *err)
{
    static const uint8_t fixed[10] = {0, 0, 1, 2, 4, 8, 0, 0, 8, 16};
    size_t hl = 0;
    for (size_t i = 0; i < n_headers; i++) {
        const mg_eventstream_header_t *h = &headers[i];
        if (h->name_len == 0 || h->name_len > 255) {
            return mg_err_set(err, MG_ERR_INTERNAL,
                              "event stream encode: header %zu name length %zu is not 1..255",
                              i + 1, h->name_len);
        }
        if ((unsigned) h->type > MG_EVENTSTREAM_UUID) {
            return mg_err_set(err, MG_ERR_INTERNAL,
                              "event stream encode: header \"%.*s\" has unknown type %d",
                              (int) h->name_len, h->name, (int) h->type);
        }
        size_t vl = fixed[h->type];
        if (h->type == MG_EVENTSTREAM_BYTES || h->type == MG_EVENTSTREAM_STRING) {
            if (h->len > 65535) {
                return mg_err_set(err, MG_ERR_INTERNAL,
                                  "event stream encode: header \"%.*s\" value of %zu bytes is "
                                  "over 65535", (int) h->name_len, h->name, h->len);
            }
            vl = 2 + h->len;
        } else if (h->type == MG_EVENTSTREAM_UUID && h->len != 16) {
            return mg_err_set(err, MG_ERR_INTERNAL,
                              "event stream encode: header \"%.*s\" UUID is %zu bytes, not 16",
                              (int) h->name_len, h->name, h->len);
        }
        hl += 2 + h->name_len + vl;
    }
    if (hl > MG_EVENTSTREAM_MAX_DEFAULT || payload_len > MG_EVENTSTREAM_MAX_DEFAULT ||
        hl + payload_len + MG_EVENTSTREAM_MIN > MG_EVENTSTREAM_MAX_DEFAULT) {
        return mg_err_set(err, MG_ERR_INTERNAL,
                          "event stream encode: message of %zu header and %zu payload bytes "
                          "exceeds %u bytes", hl, payload_len, MG_EVENTSTREAM_MAX_DEFAULT);
    }
    size_t total = hl + payload_len + MG_EVENTSTREAM_MIN;
    mg_buf_reserve(out, total);
    uint8_t *w = (uint8_t *) out->data + out->end;
    uint8_t *start = w;
    mg_eventstream_put_be(w, total, 4);
    mg_eventstream_put_be(w + 4, hl, 4);
    mg_eventstream_put_be(w + 8, mg_eventstream_crc32(0, w, 8), 4);
    w += MG_EVENTSTREAM_PRELUDE;
    for (size_t i = 0; i < n_headers; i++) {
        const mg_eventstream_header_t *h = &headers[i];
        *w++ = (uint8_t) h->name_len;
        memcpy(w, h->name, h->name_len);
        w += h->name_len;
        *w++ = (uint8_t) h->type;
        switch (h->type) {
        case MG_EVENTSTREAM_BYTE:
        case MG_EVENTSTREAM_SHORT:
        case MG_EVENTSTREAM_INT:
        case MG_EVENTSTREAM_LONG:
        case MG_EVENTSTREAM_TIMESTAMP:
            mg_eventstream_put_be(w, (uint64_t) h->i, fixed[h->type]);
            w += fixed[h->type];
            break;
        case MG_EVENTSTREAM_BYTES:
        case MG_EVENTSTREAM_STRING:
            mg_eventstream_put_be(w, h->len, 2);
            if (h->len > 0) {
                memcpy(w + 2, h->p, h->len);
            }
            w += 2 + h->len;
            break;
        case MG_EVENTSTREAM_UUID:
            memcpy(w, h->p, 16);
            w += 16;
            break;
        case MG_EVENTSTREAM_BOOL_TRUE:
        case MG_EVENTSTREAM_BOOL_FALSE:
            break;
        }
    }
    if (payload_len > 0) {
        memcpy(w, payload, payload_len);
        w += payload_len;
    }
    mg_eventstream_put_be(w, mg_eventstream_crc32(0, start, total - 4), 4);
    out->end += total;
    return MG_OK;
}
