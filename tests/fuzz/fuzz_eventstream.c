/*
 * fuzz_eventstream.c -- core/providers/bedrock/mg_eventstream.c fed arbitrary bytes.
 *
 * Input: one flags byte, then the stream.  Flag 1: before decoding, the harness repairs
 * both CRCs of every frame whose length fits (and the prelude CRC of the first one that
 * does not), so mutations reach the length checks and the header parser instead of dying
 * at the first CRC.  Flag 2: a 256-byte cap instead of the default.
 *
 * The stream is decoded once in pieces split at input-derived points (each piece an
 * exact-size heap copy) and once whole.  Invariants:
 *   - every delivered message is the next frame of the input: it starts where the
 *     previous one ended, its total length fits, every header and the payload point
 *     inside it, and encoding its headers and payload again gives exactly its bytes;
 *   - a failure names the message number and byte offset where the bad frame starts, and
 *     no message is delivered from that frame on;
 *   - a clean finish means the whole input was delivered;
 *   - how the input was split changes nothing (messages, result, message).
 */
#include "fuzz_common.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "providers/bedrock/mg_eventstream.h"

#define FUZZ_ES_MAX_INPUT (1024 * 1024)

typedef struct {
    const uint8_t *in;      /* the stream as decoded */
    size_t size;
    size_t consumed;        /* bytes of the frames delivered so far */
    mg_buf_t totals;        /* the delivered frames' lengths, in order */
    size_t count;
} fuzz_es_rec_t;

static uint32_t
fuzz_es_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void
fuzz_es_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static void
fuzz_es_repair(uint8_t *p, size_t n)
{
    size_t pos = 0;
    while (n - pos >= MG_EVENTSTREAM_PRELUDE) {
        uint8_t *f = p + pos;
        fuzz_es_put32(f + 8, mg_eventstream_crc32(0, f, 8));
        uint32_t total = fuzz_es_be32(f);
        if (total < MG_EVENTSTREAM_MIN || total > n - pos) {
            return;
        }
        fuzz_es_put32(f + total - 4, mg_eventstream_crc32(0, f, total - 4));
        pos += total;
    }
}

static bool
fuzz_es_inside(const void *p, size_t n, const uint8_t *lo, size_t len)
{
    const uint8_t *q = p;
    return q >= lo && q <= lo + len && n <= (size_t) (lo + len - q);
}

static int
fuzz_es_on_message(void *ud, const mg_eventstream_message_t *m, mg_err_t *err)
{
    fuzz_es_rec_t *r = ud;
    size_t total = m->total_len;
    FUZZ_ASSERT(total >= MG_EVENTSTREAM_MIN && total <= r->size - r->consumed,
                "message %zu: total %zu does not fit at %zu of %zu", r->count + 1, total,
                r->consumed, r->size);
    const uint8_t *frame = r->in + r->consumed;
    FUZZ_ASSERT(fuzz_es_be32(frame) == total, "message %zu is not the next frame", r->count + 1);
    /* everything the message points at lies inside its frame, wherever the decoder keeps it */
    const uint8_t *base = m->payload - (total - 4 - m->payload_len);
    FUZZ_ASSERT(memcmp(base, frame, total) == 0, "message bytes differ from the input frame");
    FUZZ_ASSERT(fuzz_es_inside(m->payload, m->payload_len, base, total - 4), "payload outside");
    for (size_t i = 0; i < m->n_headers; i++) {
        const mg_eventstream_header_t *h = &m->headers[i];
        FUZZ_ASSERT(h->name_len >= 1 && fuzz_es_inside(h->name, h->name_len, base, total),
                    "header %zu name outside its frame", i);
        if (h->p != NULL) {
            FUZZ_ASSERT(fuzz_es_inside(h->p, h->len, base, total), "header %zu value outside", i);
        }
    }
    /* the decoded form is complete: encoding it again gives the frame */
    mg_buf_t b = MG_BUF_INIT;
    mg_err_t e2;
    FUZZ_ASSERT(mg_eventstream_encode(&b, m->headers, m->n_headers, m->payload, m->payload_len,
                                      &e2) == MG_OK,
                "re-encoding failed: %s", e2.msg);
    FUZZ_ASSERT(mg_buf_len(&b) == total && memcmp(mg_buf_head(&b), frame, total) == 0,
                "re-encoding message %zu gives other bytes", r->count + 1);
    mg_buf_free(&b);
    uint32_t t32 = (uint32_t) total;
    mg_buf_append(&r->totals, &t32, sizeof(t32));
    r->consumed += total;
    r->count++;
    (void) err;
    return MG_OK;
}

static int
fuzz_es_run(const uint8_t *in, size_t size, uint32_t cap, fuzz_rng_t *rng, fuzz_es_rec_t *r,
            char *msg)
{
    memset(r, 0, sizeof(*r));
    r->in = in;
    r->size = size;
    mg_eventstream_decoder_t d;
    mg_eventstream_decoder_init(&d, cap, fuzz_es_on_message, r);
    mg_err_t err;
    mg_err_clear(&err);
    int rc = MG_OK;
    for (size_t off = 0; off < size && rc == MG_OK;) {
        size_t k = rng != NULL ? fuzz_rng_piece(rng, size - off) : size;
        char *piece = fuzz_dup(in + off, k);
        rc = mg_eventstream_feed(&d, piece, k, &err);
        free(piece);
        off += k;
    }
    if (rc == MG_OK) {
        rc = mg_eventstream_finish(&d, &err);
        if (rc == MG_OK) {
            FUZZ_ASSERT(r->consumed == size, "clean finish after %zu of %zu bytes", r->consumed,
                        size);
        }
    }
    if (rc != MG_OK) {
        FUZZ_ASSERT(rc == MG_ERROR, "feed returned %d", rc);
        char want[96];
        snprintf(want, sizeof(want), "event stream: message %zu at byte %zu: ", r->count + 1,
                 r->consumed);
        FUZZ_ASSERT(strncmp(err.msg, want, strlen(want)) == 0, "error \"%s\" does not start "
                    "with \"%s\"", err.msg, want);
        FUZZ_ASSERT(err.cls == MG_ERR_UPSTREAM_5XX, "error class %d", (int) err.cls);
        /* a failed decoder stays failed */
        FUZZ_ASSERT(mg_eventstream_feed(&d, "", 0, &err) == MG_ERROR, "failed decoder fed");
    }
    snprintf(msg, MG_ERR_MSG_MAX, "%s", rc == MG_OK ? "" : err.msg);
    mg_eventstream_decoder_free(&d);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > FUZZ_ES_MAX_INPUT) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t n = size - 1;
    uint8_t *in = (uint8_t *) fuzz_dup(data + 1, n);
    if (flags & 1) {
        fuzz_es_repair(in, n);
    }
    uint32_t cap = (flags & 2) ? 256 : 0;
    fuzz_rng_t rng;
    fuzz_rng_init(&rng, data, size);

    static char m1[MG_ERR_MSG_MAX], m2[MG_ERR_MSG_MAX];
    fuzz_es_rec_t r1, r2;
    int rc1 = fuzz_es_run(in, n, cap, &rng, &r1, m1);
    int rc2 = fuzz_es_run(in, n, cap, NULL, &r2, m2);
    FUZZ_ASSERT(rc1 == rc2, "in pieces %d, at once %d", rc1, rc2);
    FUZZ_ASSERT(strcmp(m1, m2) == 0, "in pieces \"%s\", at once \"%s\"", m1, m2);
    FUZZ_ASSERT(r1.count == r2.count && mg_buf_len(&r1.totals) == mg_buf_len(&r2.totals) &&
                    (mg_buf_len(&r1.totals) == 0 ||
                     memcmp(mg_buf_head(&r1.totals), mg_buf_head(&r2.totals),
                            mg_buf_len(&r1.totals)) == 0),
                "%zu messages in pieces, %zu at once", r1.count, r2.count);
    mg_buf_free(&r1.totals);
    mg_buf_free(&r2.totals);
    free(in);
    return 0;
}
