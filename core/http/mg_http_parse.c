/*
 * mg_http_parse.c -- HTTP/1.x head parser and chunked decoder (see header).
 */
#include "mg_http_parse.h"

#include "../base/mg_buf.h"
#include "../base/mg_err.h"

#include <stdint.h>
#include <string.h>

#define MG_HTTP_XSTR(x) #x
#define MG_HTTP_STR(x) MG_HTTP_XSTR(x)

/* RFC 9110 tchar */
static const unsigned char mg_http_tchar[256] = {
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
mg_http_ieq(const char *p, size_t n, const char *lower)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char) (c + 32);
        }
        if (lower[i] == '\0' || c != lower[i]) {
            return false;
        }
    }
    return lower[n] == '\0';
}

/* Does the comma-separated list value contain token (case-insensitive)? */
static bool
mg_http_list_has(const char *v, size_t n, const char *lower)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        size_t s = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (e > s && mg_http_ieq(v + s, e - s, lower)) {
            return true;
        }
    }
    return false;
}

/* Finds the end of the head: returns length including the blank line, or 0. */
static size_t
mg_http_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        if (i + 1 < len && buf[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/*
 * Finds the end of a request head, where every line must end with CRLF: a bare LF or CR
 * is an error, not a line end (RFC 9112 2.2 lets a server accept a bare LF; we do not,
 * because a proxy in front of us that disagrees about where a line ends is a smuggling
 * vector).  Scans at most max bytes.  Returns the length including the blank line, 0 if
 * more is needed, -1 with *why on a bare CR or LF.
 */
static ssize_t
mg_http_head_end_crlf(const char *buf, size_t len, size_t max, const char **why)
{
    size_t n = len < max ? len : max;
    /* a line at a time: memchr finds the LF, a second one any CR before its own */
    size_t i = 0;
    while (i < n) {
        const char *lf = memchr(buf + i, '\n', n - i);
        size_t e = lf != NULL ? (size_t) (lf - buf) : n; /* the LF, or the end of the data */
        if (lf != NULL && (e == i || buf[e - 1] != '\r')) {
            *why = "bare LF in the request head (lines must end with CRLF)";
            return -1;
        }
        size_t seg = lf != NULL ? e - 1 - i : n - i; /* the line without its CR */
        const char *cr = seg > 0 ? memchr(buf + i, '\r', seg) : NULL;
        if (cr != NULL) {
            if (lf == NULL && (size_t) (cr - buf) + 1 == len) {
                return 0; /* a CR at the very end: its LF may be next */
            }
            *why = "bare CR in the request head";
            return -1;
        }
        if (lf == NULL) {
            return 0;
        }
        if (e - 1 == i && i >= 2) {
            return (ssize_t) (e + 1); /* the empty line */
        }
        i = e + 1;
    }
    return 0;
}

/* Reads one line [p, eol) ending at LF (CR stripped); returns pointer after LF. */
static const char *
mg_http_line(const char *p, const char *end, const char **eol)
{
    const char *nl = memchr(p, '\n', (size_t) (end - p));
    if (nl == NULL) {
        return NULL;
    }
    *eol = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
    return nl + 1;
}

static ssize_t
mg_http_parse_fields(const char *p, const char *end, mg_http_head_t *h, int *status,
                     const char **why, bool is_request)
{
    bool have_cl = false;
    bool have_te = false;
    bool conn_close = false, conn_keep = false;
    for (;;) {
        const char *eol;
        const char *next = mg_http_line(p, end, &eol);
        if (next == NULL) {
            *why = "header line without end";
            return -1;
        }
        if (eol == p) {
            /* blank line: end of head */
            p = next;
            break;
        }
        if (*p == ' ' || *p == '\t') {
            *why = "obsolete line folding in header";
            return -1;
        }
        const char *colon = p;
        while (colon < eol && mg_http_tchar[(unsigned char) *colon]) {
            colon++;
        }
        if (colon == p || colon >= eol || *colon != ':') {
            *why = "invalid header name";
            return -1;
        }
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t')) {
            v++;
        }
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        for (const char *q = v; q < ve; q++) {
            unsigned char c = (unsigned char) *q;
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                *why = "invalid character in header value";
                return -1;
            }
        }
        if (h->nheaders >= (is_request ? MG_HTTP_MAX_REQUEST_HEADERS : MG_HTTP_MAX_HEADERS)) {
            *status = 431;
            *why = is_request ? "too many header fields (more than "
                                MG_HTTP_STR(MG_HTTP_MAX_REQUEST_HEADERS) ")"
                              : "too many header fields";
            return -1;
        }
        mg_http_header_t *f = &h->headers[h->nheaders++];
        f->name = p;
        f->name_len = (size_t) (colon - p);
        f->value = v;
        f->value_len = (size_t) (ve - v);

        if (mg_http_ieq(f->name, f->name_len, "content-length")) {
            if (have_cl) {
                *why = "duplicate Content-Length";
                return -1;
            }
            have_cl = true;
            if (f->value_len == 0 || f->value_len > 15) {
                *why = "invalid Content-Length";
                return -1;
            }
            int64_t n = 0;
            for (size_t i = 0; i < f->value_len; i++) {
                if (f->value[i] < '0' || f->value[i] > '9') {
                    *why = "invalid Content-Length";
                    return -1;
                }
                n = n * 10 + (f->value[i] - '0');
            }
            h->content_length = n;
        } else if (mg_http_ieq(f->name, f->name_len, "transfer-encoding")) {
            if (have_te) {
                *why = "duplicate Transfer-Encoding";
                return -1;
            }
            have_te = true;
            if (!mg_http_ieq(f->value, f->value_len, "chunked")) {
                *status = is_request ? 501 : 502;
                *why = "unsupported Transfer-Encoding (only chunked)";
                return -1;
            }
            h->chunked = true;
        } else if (mg_http_ieq(f->name, f->name_len, "connection")) {
            if (mg_http_list_has(f->value, f->value_len, "close")) {
                conn_close = true;
            }
            if (mg_http_list_has(f->value, f->value_len, "keep-alive")) {
                conn_keep = true;
            }
            if (mg_http_list_has(f->value, f->value_len, "upgrade")) {
                h->upgrade = true;
            }
        } else if (is_request && mg_http_ieq(f->name, f->name_len, "expect")) {
            if (mg_http_ieq(f->value, f->value_len, "100-continue")) {
                h->expect_continue = true;
            }
        }
        p = next;
    }
    if (have_cl && have_te) {
        *why = "both Content-Length and Transfer-Encoding";
        return -1;
    }
    if (is_request && have_te && h->version_minor == 0) {
        /* RFC 9112 6.1: the framing of such a message is faulty; an HTTP/1.0 hop in front
         * of us would not have decoded it as chunked */
        *why = "Transfer-Encoding in an HTTP/1.0 request";
        return -1;
    }
    if (h->version_minor == 0) {
        h->keep_alive = conn_keep && !conn_close;
    } else {
        h->keep_alive = !conn_close;
    }
    (void) p;
    return 0;
}

static void
mg_http_head_init(mg_http_head_t *h)
{
    h->method = h->target = h->reason = NULL;
    h->method_len = h->target_len = h->reason_len = 0;
    h->status = 0;
    h->version_minor = 1;
    h->nheaders = 0;
    h->head_len = 0;
    h->content_length = -1;
    h->chunked = h->keep_alive = h->expect_continue = h->upgrade = false;
}

static bool
mg_http_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1')) {
        return false;
    }
    *minor = p[7] - '0';
    return true;
}

ssize_t
mg_http_parse_request(const char *buf, size_t len, mg_http_head_t *h, int *status,
                      const char **why)
{
    mg_http_head_init(h);
    *status = 400;
    *why = "bad request";
    /* ignore a few empty lines (CRLF) before the request line (RFC 9112 2.2) */
    size_t skip = 0;
    while (skip + 1 < len && buf[skip] == '\r' && buf[skip + 1] == '\n' && skip < 16) {
        skip += 2;
    }
    ssize_t end_or_err = mg_http_head_end_crlf(buf + skip, len - skip, MG_HTTP_MAX_HEAD + 1, why);
    if (end_or_err < 0) {
        return -1;
    }
    size_t hl = (size_t) end_or_err;
    if (hl == 0) {
        if (len > MG_HTTP_MAX_HEAD) {
            *status = 431;
            *why = "request header fields too large";
            return -1;
        }
        return 0;
    }
    if (hl + skip > MG_HTTP_MAX_HEAD) {
        *status = 431;
        *why = "request header fields too large";
        return -1;
    }
    const char *p = buf + skip;
    const char *end = p + hl;
    const char *eol;
    const char *next = mg_http_line(p, end, &eol);
    if (next == NULL) {
        return -1;
    }
    /* METHOD SP target SP HTTP/1.x */
    const char *sp1 = p;
    while (sp1 < eol && mg_http_tchar[(unsigned char) *sp1]) {
        sp1++;
    }
    if (sp1 == p || sp1 >= eol || *sp1 != ' ') {
        *why = "invalid request line";
        return -1;
    }
    const char *t = sp1 + 1;
    const char *sp2 = t;
    while (sp2 < eol && *sp2 != ' ') {
        unsigned char c = (unsigned char) *sp2;
        if (c <= 0x20 || c == 0x7f) {
            *why = "invalid character in request target";
            return -1;
        }
        sp2++;
    }
    if (sp2 == t || sp2 >= eol) {
        *why = "invalid request line";
        return -1;
    }
    if (!mg_http_version(sp2 + 1, (size_t) (eol - sp2 - 1), &h->version_minor)) {
        *status = (eol - sp2 - 1 >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0) ? 505 : 400;
        *why = *status == 505 ? "HTTP version not supported" : "invalid request line";
        return -1;
    }
    h->method = p;
    h->method_len = (size_t) (sp1 - p);
    h->target = t;
    h->target_len = (size_t) (sp2 - t);
    if (mg_http_parse_fields(next, end, h, status, why, true) < 0) {
        return -1;
    }
    h->head_len = hl + skip;
    return (ssize_t) h->head_len;
}

ssize_t
mg_http_parse_response(const char *buf, size_t len, mg_http_head_t *h, int *status,
                       const char **why)
{
    mg_http_head_init(h);
    *status = 502;
    *why = "invalid response from upstream";
    size_t hl = mg_http_head_end(buf, len);
    if (hl == 0) {
        if (len > MG_HTTP_MAX_HEAD) {
            *why = "upstream response head too large";
            return -1;
        }
        return 0;
    }
    if (hl > MG_HTTP_MAX_HEAD) {
        *why = "upstream response head too large";
        return -1;
    }
    const char *p = buf;
    const char *end = p + hl;
    const char *eol;
    const char *next = mg_http_line(p, end, &eol);
    if (next == NULL || eol - p < 12 || !mg_http_version(p, 8, &h->version_minor) ||
        p[8] != ' ') {
        *why = "invalid status line from upstream";
        return -1;
    }
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9') {
            *why = "invalid status code from upstream";
            return -1;
        }
        st = st * 10 + (p[i] - '0');
    }
    if (st < 100 || (eol - p > 12 && p[12] != ' ')) {
        *why = "invalid status code from upstream";
        return -1;
    }
    h->status = st;
    h->reason = eol - p > 13 ? p + 13 : eol;
    h->reason_len = (size_t) (eol - h->reason);
    if (mg_http_parse_fields(next, end, h, status, why, false) < 0) {
        *status = 502;
        return -1;
    }
    h->head_len = hl;
    return (ssize_t) hl;
}

/* ---- heads we write ---- */

#define MG_HV_NAME_MAX 64 /* longest header name quoted in an error */

/* A value byte that may be sent: VCHAR, obs-text, SP, HTAB (RFC 9110 5.5). */
static inline bool
mg_http_value_byte_ok(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
}

/*
 * The first byte in [p, end) that is not a plain value byte (a control byte, tab
 * included, or DEL), or end: eight bytes at a time (values are most of a head, and
 * every response and upstream request head is checked).
 */
static inline const char *
mg_http_value_run(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        /* a byte < 0x20 or >= 0x80 sets its high bit in t; DEL (0x7f) is found by
         * x + 1 reaching 0x80 */
        uint64_t t = ((x - ones * 0x20) | x | (x + ones)) & high;
        if (t != 0) {
            break; /* something here needs a closer look (UTF-8 bytes too: rare in heads) */
        }
        p += 8;
    }
    while (p < end && (unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f) {
        p++;
    }
    return p;
}

/* Error for a bad byte at p in the line of header name[0..nl) (nl 0: the request line). */
static int
mg_http_hv_bad_byte(const char *base, const char *p, const char *name, size_t nl,
                    mg_err_t *err)
{
    unsigned char c = (unsigned char) *p;
    const char *what = c == '\r' || c == '\n' || c == '\0' ? "a raw CR/LF/NUL"
                                                         : "a control character";
    if (name == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL,
                          "%s in the request line (byte 0x%02x at offset %zu)", what, c,
                          (size_t) (p - base));
    }
    return mg_err_set(err, MG_ERR_INTERNAL, "%s in header \"%.*s%s\" (byte 0x%02x at offset %zu)",
                      what, (int) (nl > MG_HV_NAME_MAX ? MG_HV_NAME_MAX : nl), name,
                      nl > MG_HV_NAME_MAX ? "..." : "", c, (size_t) (p - base));
}

typedef struct {
    int host, content_length, transfer_encoding;
} mg_http_hv_counts_t;

/*
 * Checks field lines from p up to the empty line (head: true; it must end exactly at
 * end) or up to end (head: false; no empty line allowed).  base is for offsets.
 */
static int
mg_http_hv_fields(const char *base, const char *p, const char *end, bool head, mg_err_t *err)
{
    mg_http_hv_counts_t n = {0, 0, 0};
    while (p < end) {
        if (*p == '\r' && end - p >= 2 && p[1] == '\n') {
            if (!head) {
                return mg_err_set(err, MG_ERR_INTERNAL, "an empty line inside the header block "
                                  "(offset %zu): it would end the head there", (size_t) (p - base));
            }
            if (end - p != 2) {
                return mg_err_set(err, MG_ERR_INTERNAL, "%zu bytes after the empty line that "
                                  "ends the head (offset %zu)", (size_t) (end - p - 2),
                                  (size_t) (p - base));
            }
            if (n.content_length > 0 && n.transfer_encoding > 0) {
                return mg_err_set(err, MG_ERR_INTERNAL,
                                  "both content-length and transfer-encoding headers");
            }
            return MG_OK;
        }
        const char *name = p;
        while (p < end && mg_http_tchar[(unsigned char) *p]) {
            p++;
        }
        size_t nl = (size_t) (p - name);
        if (nl == 0 || p >= end || *p != ':') {
            /* the name is not quoted: what precedes a bad byte on a line without a colon
             * may be the rest of a value split by an injected line end */
            if (p < end && (*p == '\r' || *p == '\n' || *p == '\0')) {
                return mg_err_set(err, MG_ERR_INTERNAL, "a raw CR/LF/NUL in a header line "
                                  "without a colon (byte 0x%02x at offset %zu)",
                                  (unsigned char) *p, (size_t) (p - base));
            }
            return mg_err_set(err, MG_ERR_INTERNAL, "a header name that is not an RFC 9110 "
                              "token (offset %zu)", (size_t) (name - base));
        }
        /* the value: up to the line's CR (found fast), then checked a word at a time */
        const char *cr = memchr(p + 1, '\r', (size_t) (end - p - 1));
        const char *vend = cr != NULL ? cr : end;
        for (p++; p < vend; p++) {
            p = mg_http_value_run(p, vend);
            if (p >= vend) {
                break;
            }
            if (!mg_http_value_byte_ok((unsigned char) *p)) {
                return mg_http_hv_bad_byte(base, p, name, nl, err);
            }
        }
        if (p + 1 >= end) {
            return mg_err_set(err, MG_ERR_INTERNAL, "header \"%.*s%s\" without a CRLF line end",
                              (int) (nl > MG_HV_NAME_MAX ? MG_HV_NAME_MAX : nl), name,
                              nl > MG_HV_NAME_MAX ? "..." : "");
        }
        if (p[1] != '\n') {
            return mg_http_hv_bad_byte(base, p, name, nl, err);
        }
        p += 2;
        const char *dup = NULL;
        char f0 = (char) (name[0] | 0x20);
        if (f0 != 'c' && f0 != 't' && f0 != 'h') {
            continue; /* none of the framing headers below */
        }
        if (mg_http_ieq(name, nl, "content-length")) {
            dup = head ? (n.content_length++ > 0 ? "content-length" : NULL) : "content-length";
        } else if (mg_http_ieq(name, nl, "transfer-encoding")) {
            dup = head ? (n.transfer_encoding++ > 0 ? "transfer-encoding" : NULL)
                       : "transfer-encoding";
        } else if (mg_http_ieq(name, nl, "host")) {
            dup = head && n.host++ > 0 ? "host" : NULL;
        } else if (!head && mg_http_ieq(name, nl, "connection")) {
            dup = "connection";
        }
        if (dup != NULL) {
            return mg_err_set(err, MG_ERR_INTERNAL, head ? "a second \"%s\" header"
                                                         : "a \"%s\" header (the server writes "
                                                           "the framing headers itself)",
                              dup);
        }
    }
    if (head) {
        return mg_err_set(err, MG_ERR_INTERNAL, "no empty line at the end of the head");
    }
    return MG_OK;
}

int
mg_http_fields_valid(const char *p, size_t n, mg_err_t *err)
{
    return mg_http_hv_fields(p, p, p + n, false, err);
}

int
mg_http_head_valid(const char *p, size_t n, mg_err_t *err)
{
    const char *end = p + n;
    const char *q = p;
    while (q < end && mg_http_tchar[(unsigned char) *q]) {
        q++;
    }
    bool ok = q > p && q < end && *q == ' ';
    const char *t = q + 1;
    if (ok) {
        for (q = t; q < end && *q != ' '; q++) {
            unsigned char c = (unsigned char) *q;
            if (c == '\r' && q + 1 < end && q[1] == '\n') {
                break; /* the line ends without a version: malformed, below */
            }
            if (c < 0x20 || c == 0x7f) {
                return mg_http_hv_bad_byte(p, q, NULL, 0, err);
            }
        }
        int minor;
        ok = q > t && end - q >= 11 && *q == ' ' && mg_http_version(q + 1, 8, &minor) &&
             q[9] == '\r' && q[10] == '\n';
    }
    if (!ok) {
        /* say where it broke, without quoting the line */
        for (q = p; q < end && *q != '\r' && *q != '\n' && *q != '\0'; q++) {
        }
        if (q < end && !(*q == '\r' && q + 1 < end && q[1] == '\n')) {
            return mg_http_hv_bad_byte(p, q, NULL, 0, err);
        }
        /* a CRLF injected into the target ends the line before its version */
        return mg_err_set(err, MG_ERR_INTERNAL, "a raw CR/LF/NUL in the request line or a "
                          "malformed one (not \"METHOD target HTTP/1.x\" and CRLF)");
    }
    return mg_http_hv_fields(p, q + 11, end, true, err);
}

int
mg_http_field_append(mg_buf_t *b, const char *name, const char *value, size_t value_len,
                     mg_err_t *err)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < nl; i++) {
        if (!mg_http_tchar[(unsigned char) name[i]]) {
            return mg_err_set(err, MG_ERR_INTERNAL, "a header name that is not an RFC 9110 "
                              "token (byte 0x%02x at %zu)", (unsigned char) name[i], i);
        }
    }
    if (nl == 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "an empty header name");
    }
    for (size_t i = 0; i < value_len; i++) {
        if (!mg_http_value_byte_ok((unsigned char) value[i])) {
            unsigned char c = (unsigned char) value[i];
            return mg_err_set(err, MG_ERR_INTERNAL, "%s in header \"%.*s%s\" (byte 0x%02x at "
                              "offset %zu of the value)",
                              c == '\r' || c == '\n' || c == '\0' ? "a raw CR/LF/NUL"
                                                                : "a control character",
                              (int) (nl > MG_HV_NAME_MAX ? MG_HV_NAME_MAX : nl), name,
                              nl > MG_HV_NAME_MAX ? "..." : "", c, i);
        }
    }
    mg_buf_append(b, name, nl);
    mg_buf_append(b, ": ", 2);
    mg_buf_append(b, value, value_len);
    mg_buf_append(b, "\r\n", 2);
    return MG_OK;
}

const mg_http_header_t *
mg_http_header_find(const mg_http_head_t *h, const char *lower_name)
{
    size_t n = strlen(lower_name);
    for (size_t i = 0; i < h->nheaders; i++) {
        if (h->headers[i].name_len == n && mg_http_ieq(h->headers[i].name, n, lower_name)) {
            return &h->headers[i];
        }
    }
    return NULL;
}

enum {
    MG_CK_SIZE = 0,     /* reading hex digits */
    MG_CK_SIZE_WS,      /* strict: whitespace after the size, which only ";" may follow */
    MG_CK_EXT,          /* chunk extension until the line end */
    MG_CK_LINE_LF,      /* strict: CR ended the size line, LF must follow */
    MG_CK_DATA,
    MG_CK_DATA_CR,      /* expecting CR (or, lenient, LF) after data */
    MG_CK_DATA_LF,
    MG_CK_TRAILER_START,
    MG_CK_TRAILER_LINE,
    MG_CK_TRAILER_LF,   /* strict: CR ended a trailer line, LF must follow */
    MG_CK_END_LF,       /* strict: CR of the final empty line, LF must follow */
    MG_CK_DONE,
};

#define MG_CK_MAX_EXT 4096

/* A byte an extension or trailer line may hold in strict mode: no control but HTAB. */
static inline bool
mg_http_ck_text(char ch)
{
    unsigned char u = (unsigned char) ch;
    return (u >= 0x20 && u != 0x7f) || u == '\t';
}

/* The size line ended: data follows, or the trailer section after the last chunk. */
static inline void
mg_http_ck_line_done(mg_http_chunked_t *c)
{
    c->ext_len = 0;
    c->state = c->remaining == 0 ? MG_CK_TRAILER_START : MG_CK_DATA;
}

int
mg_http_chunked_decode(mg_http_chunked_t *c, char *buf, size_t *len, size_t *consumed)
{
    size_t in = 0, out = 0, n = *len;
    while (in < n) {
        char ch = buf[in];
        switch (c->state) {
        case MG_CK_SIZE: {
            int v = -1;
            if (ch >= '0' && ch <= '9') {
                v = ch - '0';
            } else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') {
                v = (ch | 0x20) - 'a' + 10;
            }
            if (v >= 0) {
                if (c->remaining > (UINT64_MAX >> 8)) {
                    return -1;
                }
                c->remaining = c->remaining * 16 + (uint64_t) v;
                c->ext_len++;
                if (c->ext_len > 16) {
                    return -1;
                }
                in++;
                break;
            }
            if (c->ext_len == 0) {
                return -1; /* no digits */
            }
            c->ext_len = 0;
            if (ch == ';') {
                c->state = MG_CK_EXT;
            } else if (ch == ' ' || ch == '\t') {
                c->state = c->lenient ? MG_CK_EXT : MG_CK_SIZE_WS;
            } else if (ch == '\r') {
                c->state = c->lenient ? MG_CK_EXT : MG_CK_LINE_LF;
            } else if (ch == '\n' && c->lenient) {
                mg_http_ck_line_done(c);
            } else {
                return -1; /* "5x", "5\n" (strict), ... */
            }
            in++;
            break;
        }
        case MG_CK_SIZE_WS:
            /* RFC 9112: chunk-ext = *( BWS ";" ... ): whitespace, then an extension.
             * "5 \r\n" is refused: parsers disagree on what such a size means.  Bytes
             * are counted as the lenient EXT state counts them, so strict accepts a
             * subset of what lenient accepts */
            if ((ch != ';' && ch != ' ' && ch != '\t') || ++c->ext_len > MG_CK_MAX_EXT) {
                return -1;
            }
            if (ch == ';') {
                c->state = MG_CK_EXT;
            }
            in++;
            break;
        case MG_CK_EXT:
            if (ch == '\n') {
                if (!c->lenient) {
                    return -1; /* LF without CR */
                }
                mg_http_ck_line_done(c);
                in++;
                break;
            }
            if (++c->ext_len > MG_CK_MAX_EXT || ch == '\0') {
                return -1;
            }
            if (!c->lenient) {
                if (ch == '\r') {
                    c->state = MG_CK_LINE_LF;
                } else if (!mg_http_ck_text(ch)) {
                    return -1;
                }
            }
            in++;
            break;
        case MG_CK_LINE_LF:
            if (ch != '\n') {
                return -1; /* bare CR */
            }
            mg_http_ck_line_done(c);
            in++;
            break;
        case MG_CK_DATA: {
            size_t avail = n - in;
            size_t take = c->remaining < avail ? (size_t) c->remaining : avail;
            if (out != in) {
                memmove(buf + out, buf + in, take);
            }
            out += take;
            in += take;
            c->remaining -= take;
            if (c->remaining == 0) {
                c->state = MG_CK_DATA_CR;
            }
            break;
        }
        case MG_CK_DATA_CR:
            if (ch == '\r') {
                c->state = MG_CK_DATA_LF;
            } else if (ch == '\n' && c->lenient) {
                c->state = MG_CK_SIZE;
                c->ext_len = 0;
            } else {
                return -1;
            }
            in++;
            break;
        case MG_CK_DATA_LF:
            if (ch != '\n') {
                return -1;
            }
            c->state = MG_CK_SIZE;
            c->ext_len = 0;
            in++;
            break;
        case MG_CK_TRAILER_START:
            if (ch == '\r') {
                if (!c->lenient) {
                    c->state = MG_CK_END_LF;
                }
                in++;
                break;
            }
            if (ch == '\n') {
                if (!c->lenient) {
                    return -1;
                }
                in++;
                c->state = MG_CK_DONE;
                c->done = true;
                *len = out;
                *consumed = in;
                return 1;
            }
            c->state = MG_CK_TRAILER_LINE;
            c->ext_len = 0;
            break;
        case MG_CK_TRAILER_LINE:
            if (ch == '\n') {
                if (!c->lenient) {
                    return -1;
                }
                c->state = MG_CK_TRAILER_START;
                in++;
                break;
            }
            if (++c->ext_len > MG_CK_MAX_EXT) {
                return -1;
            }
            if (!c->lenient) {
                if (ch == '\r') {
                    c->state = MG_CK_TRAILER_LF;
                } else if (!mg_http_ck_text(ch)) {
                    return -1;
                }
            }
            in++;
            break;
        case MG_CK_TRAILER_LF:
            if (ch != '\n') {
                return -1;
            }
            c->state = MG_CK_TRAILER_START;
            in++;
            break;
        case MG_CK_END_LF:
            if (ch != '\n') {
                return -1;
            }
            in++;
            c->state = MG_CK_DONE;
            c->done = true;
            *len = out;
            *consumed = in;
            return 1;
        case MG_CK_DONE:
            *len = out;
            *consumed = in;
            return 1;
        }
    }
    *len = out;
    *consumed = in;
    return c->state == MG_CK_DONE ? 1 : 0;
}
