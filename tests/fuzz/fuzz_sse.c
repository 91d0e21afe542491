/*
 * fuzz_sse.c -- core/http/mg_sse.c fed arbitrary bytes in pieces.
 *
 * The input is fed once in pieces split at points derived from the input (each piece an
 * exact-size heap copy) and once whole.  Invariants:
 *   - the concatenation of the raw events reported, followed by the pending bytes, is the
 *     input, byte for byte (nothing lost, duplicated or reordered);
 *   - each raw event ends at its first blank line ("\n\n" or "\n\r\n") and nowhere else;
 *   - the data reported for an event is what a plain reading of its lines gives
 *     ("data:" lines, one optional leading space removed, joined with "\n");
 *   - how the input was split changes nothing.
 */
#include "fuzz_common.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "http/mg_sse.h"

#define FUZZ_SSE_MAX_INPUT (1024 * 1024)

typedef struct {
    mg_buf_t raw;       /* all raw events, concatenated */
    mg_buf_t datas;     /* each event's data as "<len>:<bytes>" or "-" when none */
    size_t nevents;
} fuzz_sse_rec_t;

/* The first event end in p[0..n): length including the blank line, or 0. */
static size_t
fuzz_sse_first_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (p[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/* Reference reading of an event's data lines. */
static bool
fuzz_sse_ref_data(const char *p, size_t n, mg_buf_t *out)
{
    bool any = false;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t e = nl ? (size_t) (nl - p) : n;
        size_t ll = e - i;
        if (ll > 0 && p[i + ll - 1] == '\r') {
            ll--;
        }
        if (ll >= 5 && memcmp(p + i, "data:", 5) == 0) {
            const char *v = p + i + 5;
            size_t vl = ll - 5;
            if (vl > 0 && v[0] == ' ') {
                v++;
                vl--;
            }
            if (any) {
                mg_buf_append(out, "\n", 1);
            }
            mg_buf_append(out, v, vl);
            any = true;
        }
        i = e + 1;
    }
    return any;
}

static bool
fuzz_sse_on_event(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    fuzz_sse_rec_t *r = ud;
    FUZZ_ASSERT(raw_len >= 2, "raw event of %zu bytes", raw_len);
    FUZZ_ASSERT(fuzz_sse_first_end(raw, raw_len) == raw_len,
                "raw event (%zu bytes) does not end at its first blank line (%zu)", raw_len,
                fuzz_sse_first_end(raw, raw_len));
    mg_buf_t ref = MG_BUF_INIT;
    bool has = fuzz_sse_ref_data(raw, raw_len, &ref);
    FUZZ_ASSERT(has == (data != NULL), "data presence: reference %d, parser %d", has,
                data != NULL);
    if (has) {
        FUZZ_ASSERT(data_len == mg_buf_len(&ref) &&
                        (data_len == 0 || memcmp(data, mg_buf_head(&ref), data_len) == 0),
                    "data differs: %zu bytes vs reference %zu", data_len, mg_buf_len(&ref));
        mg_buf_printf(&r->datas, "%zu:", data_len);
        mg_buf_append(&r->datas, data, data_len);
    } else {
        mg_buf_append(&r->datas, "-", 1);
    }
    mg_buf_free(&ref);
    mg_buf_append(&r->raw, raw, raw_len);
    r->nevents++;
    return true;
}

static void
fuzz_sse_check_total(const fuzz_sse_rec_t *r, const mg_sse_t *s, const char *in, size_t size)
{
    size_t rl = mg_buf_len(&r->raw), pl = mg_sse_pending(s);
    FUZZ_ASSERT(rl + pl == size, "raw %zu + pending %zu != input %zu", rl, pl, size);
    FUZZ_ASSERT(rl == 0 || memcmp(mg_buf_head(&r->raw), in, rl) == 0, "raw events != input");
    FUZZ_ASSERT(pl == 0 || memcmp(mg_buf_head(&s->buf), in + rl, pl) == 0,
                "pending bytes != the rest of the input");
    /* what is pending holds no complete event */
    FUZZ_ASSERT(fuzz_sse_first_end(in + rl, pl) == 0, "a complete event left pending");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_SSE_MAX_INPUT) {
        return 0;
    }
    const char *in = (const char *) data;
    fuzz_rng_t rng;
    fuzz_rng_init(&rng, data, size);

    /* in pieces */
    mg_sse_t s1;
    memset(&s1, 0, sizeof(s1));
    fuzz_sse_rec_t r1;
    memset(&r1, 0, sizeof(r1));
    for (size_t off = 0; off < size;) {
        size_t k = fuzz_rng_piece(&rng, size - off);
        char *piece = fuzz_dup(in + off, k);
        int rc = mg_sse_feed(&s1, piece, k, fuzz_sse_on_event, &r1);
        FUZZ_ASSERT(rc == MG_OK, "feed failed below MG_SSE_MAX_EVENT");
        free(piece);
        off += k;
    }
    fuzz_sse_check_total(&r1, &s1, in, size);

    /* at once */
    mg_sse_t s2;
    memset(&s2, 0, sizeof(s2));
    fuzz_sse_rec_t r2;
    memset(&r2, 0, sizeof(r2));
    char *whole = fuzz_dup(in, size);
    FUZZ_ASSERT(mg_sse_feed(&s2, whole, size, fuzz_sse_on_event, &r2) == MG_OK, "feed failed");
    free(whole);
    fuzz_sse_check_total(&r2, &s2, in, size);

    FUZZ_ASSERT(r1.nevents == r2.nevents, "%zu events in pieces, %zu at once", r1.nevents,
                r2.nevents);
    FUZZ_ASSERT(mg_buf_len(&r1.datas) == mg_buf_len(&r2.datas) &&
                    (mg_buf_len(&r1.datas) == 0 ||
                     memcmp(mg_buf_head(&r1.datas), mg_buf_head(&r2.datas),
                            mg_buf_len(&r1.datas)) == 0),
                "event data differs between pieces and at once");

    mg_buf_free(&r1.raw);
    mg_buf_free(&r1.datas);
    mg_buf_free(&r2.raw);
    mg_buf_free(&r2.datas);
    mg_sse_free(&s1);
    mg_sse_free(&s2);
    return 0;
}
