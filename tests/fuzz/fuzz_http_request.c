/*
 * fuzz_http_request.c -- core/http/mg_http_parse.c on arbitrary bytes.
 *
 * The input is parsed as a request head (and, for the same bytes, as a response head).
 * Whatever follows the head (or the whole input when there is no head) goes through the
 * chunked decoder twice: in place all at once, and in pieces split at points derived from
 * the input, the way the server feeds it as reads arrive.  Invariants:
 *   - results are -1, 0 or a head length within the input; errors carry a status the
 *     server can send (400/431/501/505 for requests, 502 for responses) and a reason;
 *   - every pointer in a parsed head points inside the head; names are tokens; values
 *     carry no control characters and no surrounding whitespace; at most one
 *     Content-Length, at most one Transfer-Encoding, never both (no smuggling);
 *   - a prefix of the input never claims more bytes than it has, and once the head is
 *     complete every longer prefix gives the same head length;
 *   - a request head is all CRLF (no bare CR or LF), has at most
 *     MG_HTTP_MAX_REQUEST_HEADERS fields and no Transfer-Encoding in HTTP/1.0;
 *   - decoding in pieces gives exactly the bytes, consumed count and result of decoding at
 *     once, and the decoder never reports more output than input; in both modes (strict,
 *     for requests, and lenient, for upstream responses), and what strict decodes lenient
 *     decodes the same way.
 * Every buffer handed to the parser is an exact-size heap copy, so ASan sees over-reads.
 */
#include "fuzz_common.h"

#include "http/mg_http_parse.h"

#define FUZZ_HTTP_MAX_INPUT (256 * 1024)

static const unsigned char fuzz_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static bool
fuzz_ieq(const char *p, size_t n, const char *lower)
{
    size_t l = strlen(lower);
    if (n != l) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char) (c + 32);
        }
        if (c != lower[i]) {
            return false;
        }
    }
    return true;
}

static bool
fuzz_inside(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && p <= base + len && n <= (size_t) (base + len - p);
}

/* Invariants of a successfully parsed head occupying buf[0..hl). */
static void
fuzz_check_head(const char *buf, size_t hl, const mg_http_head_t *h, bool request)
{
    FUZZ_ASSERT(h->head_len == hl, "head_len %zu vs %zu", h->head_len, hl);
    FUZZ_ASSERT(hl >= 2 && buf[hl - 1] == '\n', "head does not end with LF");
    FUZZ_ASSERT(h->version_minor == 0 || h->version_minor == 1, "version %d", h->version_minor);
    FUZZ_ASSERT(h->nheaders <= MG_HTTP_MAX_HEADERS, "%zu headers", h->nheaders);
    if (request) {
        FUZZ_ASSERT(h->nheaders <= MG_HTTP_MAX_REQUEST_HEADERS, "%zu request headers",
                    h->nheaders);
        FUZZ_ASSERT(!(h->chunked && h->version_minor == 0), "HTTP/1.0 chunked request");
        for (size_t i = 0; i < hl; i++) {
            if (buf[i] == '\n') {
                FUZZ_ASSERT(i > 0 && buf[i - 1] == '\r', "bare LF at %zu in a request head", i);
            }
            if (buf[i] == '\r') {
                FUZZ_ASSERT(i + 1 < hl && buf[i + 1] == '\n', "bare CR at %zu in a request head",
                            i);
            }
        }
        FUZZ_ASSERT(h->method_len > 0 && fuzz_inside(h->method, h->method_len, buf, hl),
                    "method outside the head");
        for (size_t i = 0; i < h->method_len; i++) {
            FUZZ_ASSERT(fuzz_tchar[(unsigned char) h->method[i]], "method byte 0x%02x",
                        (unsigned char) h->method[i]);
        }
        FUZZ_ASSERT(h->target_len > 0 && fuzz_inside(h->target, h->target_len, buf, hl),
                    "target outside the head");
        for (size_t i = 0; i < h->target_len; i++) {
            unsigned char c = (unsigned char) h->target[i];
            FUZZ_ASSERT(c > 0x20 && c != 0x7f, "target byte 0x%02x", c);
        }
    } else {
        FUZZ_ASSERT(h->status >= 100 && h->status <= 999, "status %d", h->status);
        FUZZ_ASSERT(fuzz_inside(h->reason, h->reason_len, buf, hl), "reason outside the head");
        for (size_t i = 0; i < h->reason_len; i++) {
            FUZZ_ASSERT(h->reason[i] != '\n', "LF in the reason");
        }
    }
    int ncl = 0, nte = 0;
    for (size_t i = 0; i < h->nheaders; i++) {
        const mg_http_header_t *f = &h->headers[i];
        FUZZ_ASSERT(f->name_len > 0 && fuzz_inside(f->name, f->name_len, buf, hl),
                    "header %zu name outside the head", i);
        FUZZ_ASSERT(fuzz_inside(f->value, f->value_len, buf, hl), "header %zu value outside", i);
        for (size_t k = 0; k < f->name_len; k++) {
            FUZZ_ASSERT(fuzz_tchar[(unsigned char) f->name[k]], "header name byte 0x%02x",
                        (unsigned char) f->name[k]);
        }
        for (size_t k = 0; k < f->value_len; k++) {
            unsigned char c = (unsigned char) f->value[k];
            FUZZ_ASSERT((c >= 0x20 || c == '\t') && c != 0x7f, "header value byte 0x%02x", c);
        }
        if (f->value_len > 0) {
            char a = f->value[0], z = f->value[f->value_len - 1];
            FUZZ_ASSERT(a != ' ' && a != '\t' && z != ' ' && z != '\t', "untrimmed value");
        }
        /* the name ends at a colon: no whitespace before it */
        FUZZ_ASSERT(f->name[f->name_len] == ':', "name not followed by ':'");
        if (fuzz_ieq(f->name, f->name_len, "content-length")) {
            ncl++;
            int64_t v = 0;
            FUZZ_ASSERT(f->value_len > 0, "empty Content-Length accepted");
            for (size_t k = 0; k < f->value_len; k++) {
                FUZZ_ASSERT(f->value[k] >= '0' && f->value[k] <= '9', "Content-Length not digits");
                v = v * 10 + (f->value[k] - '0');
            }
            FUZZ_ASSERT(v == h->content_length, "Content-Length %lld vs %lld", (long long) v,
                        (long long) h->content_length);
        }
        if (fuzz_ieq(f->name, f->name_len, "transfer-encoding")) {
            nte++;
            FUZZ_ASSERT(fuzz_ieq(f->value, f->value_len, "chunked"), "TE other than chunked");
        }
    }
    FUZZ_ASSERT(ncl <= 1 && nte <= 1 && !(ncl && nte), "smuggling: %d CL, %d TE", ncl, nte);
    FUZZ_ASSERT((ncl == 1) == (h->content_length >= 0), "content_length without the header");
    FUZZ_ASSERT((nte == 1) == h->chunked, "chunked flag without the header");
    FUZZ_ASSERT((mg_http_header_find(h, "content-length") != NULL) == (ncl == 1),
                "header_find disagrees");
    if (h->content_length >= 0) {
        FUZZ_ASSERT(h->content_length < 1000000000000000LL, "Content-Length too long");
    }
}

static ssize_t
fuzz_parse_request_copy(const char *data, size_t n, mg_http_head_t *h, int *status,
                        const char **why)
{
    char *b = fuzz_dup(data, n);
    ssize_t rc = mg_http_parse_request(b, n, h, status, why);
    if (rc > 0) {
        /* the head points into b: check it before b goes */
        fuzz_check_head(b, (size_t) rc, h, true);
    }
    free(b);
    return rc;
}

static mg_http_head_t fuzz_h, fuzz_h2;

static void
fuzz_requests(const char *data, size_t size, fuzz_rng_t *rng, ssize_t *head_len)
{
    int status = 0;
    const char *why = NULL;
    ssize_t rc = fuzz_parse_request_copy(data, size, &fuzz_h, &status, &why);
    FUZZ_ASSERT(rc >= -1 && rc <= (ssize_t) size, "rc %zd for %zu bytes", rc, size);
    if (rc < 0) {
        FUZZ_ASSERT(status == 400 || status == 431 || status == 501 || status == 505,
                    "status %d", status);
        FUZZ_ASSERT(why != NULL && why[0] != '\0', "no reason");
    } else if (rc == 0) {
        FUZZ_ASSERT(size <= MG_HTTP_MAX_HEAD, "%zu bytes without a head and no 431", size);
    } else {
        FUZZ_ASSERT(rc <= MG_HTTP_MAX_HEAD, "head of %zd bytes accepted", rc);
    }
    *head_len = rc;

    /* prefixes: a handful of lengths, plus the ones around the head's end */
    size_t lens[12];
    int nl = 0;
    for (int i = 0; i < 8 && size > 0; i++) {
        lens[nl++] = (size_t) (fuzz_rng_next(rng) % (size + 1));
    }
    if (rc > 0) {
        lens[nl++] = (size_t) rc - 1;
        lens[nl++] = (size_t) rc;
        if ((size_t) rc < size) {
            lens[nl++] = (size_t) rc + 1;
        }
    }
    for (int i = 0; i < nl; i++) {
        size_t n = lens[i];
        int st2 = 0;
        const char *why2 = NULL;
        ssize_t r2 = fuzz_parse_request_copy(data, n, &fuzz_h2, &st2, &why2);
        FUZZ_ASSERT(r2 >= -1 && r2 <= (ssize_t) n, "prefix %zu: rc %zd", n, r2);
        if (rc > 0 && n >= (size_t) rc) {
            FUZZ_ASSERT(r2 == rc, "prefix %zu: rc %zd, full input %zd", n, r2, rc);
        }
        if (rc > 0 && n < (size_t) rc) {
            FUZZ_ASSERT(r2 == 0, "prefix %zu of a %zd-byte head: rc %zd", n, rc, r2);
        }
        if (r2 > 0) {
            FUZZ_ASSERT(rc == r2, "prefix %zu complete (%zd) but full input %zd", n, r2, rc);
        }
    }
}

static void
fuzz_response(const char *data, size_t size)
{
    char *b = fuzz_dup(data, size);
    int status = 0;
    const char *why = NULL;
    ssize_t rc = mg_http_parse_response(b, size, &fuzz_h2, &status, &why);
    FUZZ_ASSERT(rc >= -1 && rc <= (ssize_t) size, "response rc %zd", rc);
    if (rc < 0) {
        FUZZ_ASSERT(status == 502 && why != NULL && why[0] != '\0', "response status %d", status);
    } else if (rc > 0) {
        fuzz_check_head(b, (size_t) rc, &fuzz_h2, false);
    }
    free(b);
}

typedef struct {
    int rc;
    char *out;
    size_t out_len;
    size_t consumed;
} fuzz_ck_t;

static void
fuzz_chunked_at_once(const char *in, size_t n, bool lenient, fuzz_ck_t *res)
{
    mg_http_chunked_t c;
    memset(&c, 0, sizeof(c));
    c.lenient = lenient;
    char *b = fuzz_dup(in, n);
    size_t len = n, consumed = 0;
    res->rc = mg_http_chunked_decode(&c, b, &len, &consumed);
    FUZZ_ASSERT(res->rc >= -1 && res->rc <= 1, "rc %d", res->rc);
    res->out = NULL;
    res->out_len = 0;
    res->consumed = 0;
    if (res->rc >= 0) {
        FUZZ_ASSERT(consumed <= n && len <= consumed, "len %zu consumed %zu of %zu", len,
                    consumed, n);
        FUZZ_ASSERT(res->rc == 1 || consumed == n, "need-more without consuming all");
        FUZZ_ASSERT((res->rc == 1) == c.done, "done flag %d with rc %d", c.done, res->rc);
        res->out = fuzz_dup(b, len);
        res->out_len = len;
        res->consumed = consumed;
    }
    free(b);
}

static void
fuzz_chunked_pieces(const char *in, size_t n, bool lenient, fuzz_rng_t *rng, fuzz_ck_t *res)
{
    mg_http_chunked_t c;
    memset(&c, 0, sizeof(c));
    c.lenient = lenient;
    res->rc = 0;
    res->out = malloc(n ? n : 1);
    res->out_len = 0;
    res->consumed = 0;
    size_t off = 0;
    while (off < n) {
        size_t k = fuzz_rng_piece(rng, n - off);
        char *b = fuzz_dup(in + off, k);
        size_t len = k, consumed = 0;
        int rc = mg_http_chunked_decode(&c, b, &len, &consumed);
        res->rc = rc;
        if (rc < 0) {
            free(b);
            break;
        }
        FUZZ_ASSERT(consumed <= k && len <= consumed, "piece: len %zu consumed %zu of %zu", len,
                    consumed, k);
        FUZZ_ASSERT(rc == 1 || consumed == k, "piece: need-more without consuming all");
        memcpy(res->out + res->out_len, b, len);
        res->out_len += len;
        res->consumed += consumed;
        free(b);
        if (rc == 1) {
            /* done: nothing more is consumed */
            char tail[4] = "xyz";
            size_t tl = 3, tc = 9;
            FUZZ_ASSERT(mg_http_chunked_decode(&c, tail, &tl, &tc) == 1 && tl == 0 && tc == 0,
                        "decoder consumed after the end");
            break;
        }
        off += k;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_HTTP_MAX_INPUT) {
        return 0;
    }
    const char *in = (const char *) data;
    fuzz_rng_t rng;
    fuzz_rng_init(&rng, data, size);
    ssize_t hl = 0;
    fuzz_requests(in, size, &rng, &hl);
    fuzz_response(in, size);

    /* the body after the head, or the whole input when there is no head */
    const char *body = hl > 0 ? in + hl : in;
    size_t blen = hl > 0 ? size - (size_t) hl : size;
    fuzz_ck_t strict = {0, NULL, 0, 0};
    for (int lenient = 0; lenient <= 1; lenient++) {
        fuzz_ck_t once, pieces;
        fuzz_chunked_at_once(body, blen, lenient, &once);
        fuzz_chunked_pieces(body, blen, lenient, &rng, &pieces);
        FUZZ_ASSERT(once.rc == pieces.rc, "rc at once %d, in pieces %d (lenient %d)", once.rc,
                    pieces.rc, lenient);
        if (once.rc >= 0) {
            FUZZ_ASSERT(once.out_len == pieces.out_len &&
                            memcmp(once.out, pieces.out, once.out_len) == 0,
                        "decoded bytes differ: %zu at once, %zu in pieces (lenient %d)",
                        once.out_len, pieces.out_len, lenient);
            FUZZ_ASSERT(once.consumed == pieces.consumed,
                        "consumed %zu at once, %zu in pieces (lenient %d)", once.consumed,
                        pieces.consumed, lenient);
        }
        if (!lenient) {
            strict = once;
        } else {
            if (strict.rc == 1) {
                FUZZ_ASSERT(once.rc == 1 && once.out_len == strict.out_len &&
                                memcmp(once.out, strict.out, once.out_len) == 0 &&
                                once.consumed == strict.consumed,
                            "strict decodes (%zu bytes of %zu), lenient differs "
                            "(rc %d, %zu of %zu)",
                            strict.out_len, strict.consumed, once.rc, once.out_len,
                            once.consumed);
            }
            free(once.out);
        }
        free(pieces.out);
    }
    free(strict.out);
    return 0;
}
