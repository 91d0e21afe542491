/*
 * mg_json.c -- validating JSON scanner (see mg_json.h).  Nesting is capped at
 * MG_JSON_MAX_DEPTH levels, so hostile nesting cannot exhaust the stack and a
 * body no upstream would take is refused here with a message that says why.
 */
#include "mg_json.h"

#include "mg_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif


typedef struct {
    const char *base;
    const char *end;
    char *errmsg;
    size_t errlen;
} mg_json_ctx_t;

static void
mg_json_error(mg_json_ctx_t *c, const char *at, const char *what)
{
    if (c->errmsg == NULL || c->errlen == 0) {
        return;
    }
    long line = 1, col = 1;
    for (const char *q = c->base; q < at && q < c->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(c->errmsg, c->errlen, "%s: line %ld column %ld (char %ld)", what, line, col,
             (long) (at - c->base));
}

static inline const char *
mg_json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

/* The first byte at or after p that ends a run of plain string bytes: '"', '\\' or a
 * control character; end if none.  Strings are most of a chat request's bytes, so
 * this goes 16 bytes at a time where SSE2 is there (every x86-64). */
static inline const char *
mg_json_plain_run(const char *p, const char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i bias = _mm_set1_epi8((char) 0x80);
    const __m128i ctl = _mm_set1_epi8((char) (0x20 ^ 0x80)); /* unsigned < 0x20, as signed */
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *) (const void *) p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(_mm_xor_si128(v, bias), ctl));
        int mask = _mm_movemask_epi8(m);
        if (mask != 0) {
            return p + __builtin_ctz((unsigned) mask);
        }
        p += 16;
    }
#endif
    while (p < end) {
        unsigned char ch = (unsigned char) *p;
        if (ch == '"' || ch == '\\' || ch < 0x20) {
            break;
        }
        p++;
    }
    return p;
}

static inline int
mg_json_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* p at the opening quote; returns past the closing quote or NULL. */
static const char *
mg_json_skip_string(mg_json_ctx_t *c, const char *p, bool *escaped)
{
    const char *start = p;
    const char *end = c->end;
    p++;
    for (;;) {
        p = mg_json_plain_run(p, end);
        if (p >= end) {
            mg_json_error(c, start, "Unterminated string starting at");
            return NULL;
        }
        unsigned char ch = (unsigned char) *p;
        if (ch == '"') {
            return p + 1;
        }
        if (ch < 0x20) {
            mg_json_error(c, p, "Invalid control character at");
            return NULL;
        }
        /* backslash */
        if (escaped != NULL) {
            *escaped = true;
        }
        if (p + 1 >= end) {
            mg_json_error(c, start, "Unterminated string starting at");
            return NULL;
        }
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u':
            if (end - p < 6 || mg_json_hex(p[2]) < 0 || mg_json_hex(p[3]) < 0 ||
                mg_json_hex(p[4]) < 0 || mg_json_hex(p[5]) < 0) {
                mg_json_error(c, p + 1, "Invalid \\uXXXX escape"); /* Python points at the u */
                return NULL;
            }
            p += 6;
            break;
        default:
            mg_json_error(c, p, "Invalid \\escape");
            return NULL;
        }
    }
}

static const char *
mg_json_skip_number(mg_json_ctx_t *c, const char *p)
{
    const char *start = p;
    const char *end = c->end;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        mg_json_error(c, start, "Expecting value");
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        mg_json_error(c, start, "Expecting value");
        return NULL;
    }
    /* as Python's number regex: a fraction or an exponent counts only when complete;
     * otherwise the number ends before it and the caller reports the next character */
    if (p + 1 < end && *p == '.' && p[1] >= '0' && p[1] <= '9') {
        p += 2;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (q < end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q < end && *q >= '0' && *q <= '9') {
            while (q < end && *q >= '0' && *q <= '9') {
                q++;
            }
            p = q;
        }
    }
    return p;
}

static const char *mg_json_skip_value(mg_json_ctx_t *c, const char *p, int depth,
                                      mg_json_type_t *type);

static const char *
mg_json_skip_object(mg_json_ctx_t *c, const char *p, int depth)
{
    const char *end = c->end;
    p = mg_json_ws(p + 1, end);
    if (p < end && *p == '}') {
        return p + 1;
    }
    for (;;) {
        if (p >= end || *p != '"') {
            mg_json_error(c, p, "Expecting property name enclosed in double quotes");
            return NULL;
        }
        p = mg_json_skip_string(c, p, NULL);
        if (p == NULL) {
            return NULL;
        }
        p = mg_json_ws(p, end);
        if (p >= end || *p != ':') {
            mg_json_error(c, p, "Expecting ':' delimiter");
            return NULL;
        }
        p = mg_json_skip_value(c, p + 1, depth + 1, NULL);
        if (p == NULL) {
            return NULL;
        }
        p = mg_json_ws(p, end);
        if (p < end && *p == ',') {
            p = mg_json_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            return p + 1;
        }
        mg_json_error(c, p, "Expecting ',' delimiter");
        return NULL;
    }
}

static const char *
mg_json_skip_array(mg_json_ctx_t *c, const char *p, int depth)
{
    const char *end = c->end;
    p = mg_json_ws(p + 1, end);
    if (p < end && *p == ']') {
        return p + 1;
    }
    for (;;) {
        p = mg_json_skip_value(c, p, depth + 1, NULL);
        if (p == NULL) {
            return NULL;
        }
        p = mg_json_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']') {
            return p + 1;
        }
        mg_json_error(c, p, "Expecting ',' delimiter");
        return NULL;
    }
}

static const char *
mg_json_skip_lit(mg_json_ctx_t *c, const char *p, const char *lit, size_t n)
{
    if ((size_t) (c->end - p) < n || memcmp(p, lit, n) != 0) {
        mg_json_error(c, p, "Expecting value");
        return NULL;
    }
    return p + n;
}

static const char *
mg_json_skip_value(mg_json_ctx_t *c, const char *p, int depth, mg_json_type_t *type)
{
    const char *end = c->end;
    p = mg_json_ws(p, end);
    if (p >= end) {
        mg_json_error(c, p, "Expecting value");
        return NULL;
    }
    /* depth: containers around this value; one more would open level depth + 1 */
    if ((*p == '{' || *p == '[') && depth >= MG_JSON_MAX_DEPTH) {
        mg_json_error(c, p, "Nesting deeper than " MG_JSON_STR(MG_JSON_MAX_DEPTH) " levels");
        return NULL;
    }
    mg_json_type_t t;
    const char *q;
    switch (*p) {
    case '{': t = MG_JSON_OBJECT; q = mg_json_skip_object(c, p, depth); break;
    case '[': t = MG_JSON_ARRAY; q = mg_json_skip_array(c, p, depth); break;
    case '"': t = MG_JSON_STRING; q = mg_json_skip_string(c, p, NULL); break;
    case 't': t = MG_JSON_TRUE; q = mg_json_skip_lit(c, p, "true", 4); break;
    case 'f': t = MG_JSON_FALSE; q = mg_json_skip_lit(c, p, "false", 5); break;
    case 'n': t = MG_JSON_NULL; q = mg_json_skip_lit(c, p, "null", 4); break;
    default: t = MG_JSON_NUMBER; q = mg_json_skip_number(c, p); break;
    }
    if (type != NULL) {
        *type = t;
    }
    return q;
}

int
mg_json_validate(const char *p, size_t len, mg_json_type_t *type, char *errmsg, size_t errlen)
{
    mg_json_ctx_t c = {p, p + len, errmsg, errlen};
    mg_json_type_t t = MG_JSON_INVALID;
    const char *q = mg_json_skip_value(&c, p, 0, &t);
    if (q == NULL) {
        return MG_ERROR;
    }
    q = mg_json_ws(q, p + len);
    if (q != p + len) {
        mg_json_error(&c, q, "Extra data");
        return MG_ERROR;
    }
    if (type != NULL) {
        *type = t;
    }
    return MG_OK;
}

int
mg_json_obj_iter(mg_json_iter_t *it, const char *p, size_t len)
{
    it->base = p;
    it->end = p + len;
    it->errmsg[0] = '\0';
    it->p = mg_json_ws(p, it->end);
    if (it->p >= it->end || *it->p != '{') {
        mg_json_ctx_t c = {it->base, it->end, it->errmsg, sizeof(it->errmsg)};
        mg_json_error(&c, it->p, "Expecting object");
        it->state = -1;
        return MG_ERROR;
    }
    it->p++;
    it->state = 0;
    return MG_OK;
}

int
mg_json_obj_next(mg_json_iter_t *it, mg_json_member_t *m)
{
    mg_json_ctx_t c = {it->base, it->end, it->errmsg, sizeof(it->errmsg)};
    const char *end = it->end;
    const char *p = mg_json_ws(it->p, end);
    if (it->state < 0) {
        return -1;
    }
    if (it->state == 2) {
        return 0;
    }
    if (it->state == 1) {
        if (p < end && *p == ',') {
            p = mg_json_ws(p + 1, end);
        } else if (p < end && *p == '}') {
            it->p = p + 1;
            it->state = 2;
            return 0;
        } else {
            mg_json_error(&c, p, "Expecting ',' delimiter");
            it->state = -1;
            return -1;
        }
    } else if (p < end && *p == '}') {
        it->p = p + 1;
        it->state = 2;
        return 0;
    }
    if (p >= end || *p != '"') {
        mg_json_error(&c, p, "Expecting property name enclosed in double quotes");
        it->state = -1;
        return -1;
    }
    m->start = p;
    m->key_escaped = false;
    const char *q = mg_json_skip_string(&c, p, &m->key_escaped);
    if (q == NULL) {
        it->state = -1;
        return -1;
    }
    m->key = p + 1;
    m->key_len = (size_t) (q - p - 2);
    q = mg_json_ws(q, end);
    if (q >= end || *q != ':') {
        mg_json_error(&c, q, "Expecting ':' delimiter");
        it->state = -1;
        return -1;
    }
    q = mg_json_ws(q + 1, end);
    const char *v = q;
    q = mg_json_skip_value(&c, q, 1, &m->type);
    if (q == NULL) {
        it->state = -1;
        return -1;
    }
    m->val = v;
    m->val_len = (size_t) (q - v);
    m->end = q;
    it->p = q;
    it->state = 1;
    return 1;
}

bool
mg_json_key_is(const mg_json_member_t *m, const char *name)
{
    size_t n = strlen(name);
    if (!m->key_escaped) {
        return m->key_len == n && memcmp(m->key, name, n) == 0;
    }
    char buf[256];
    if (m->key_len + 2 >= sizeof(buf)) {
        return false;
    }
    long dl = mg_json_str_decode(m->key - 1, m->key_len + 2, buf);
    return dl >= 0 && (size_t) dl == n && memcmp(buf, name, n) == 0;
}

static size_t
mg_json_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

long
mg_json_str_decode(const char *val, size_t val_len, char *out)
{
    if (val_len < 2 || val[0] != '"' || val[val_len - 1] != '"') {
        return -1;
    }
    const char *p = val + 1;
    const char *end = val + val_len - 1;
    char *o = out;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        if (p + 1 >= end) {
            return -1;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            if (end - p < 4) {
                return -1;
            }
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = mg_json_hex(p[i]);
                if (h < 0) {
                    return -1;
                }
                cp = cp * 16 + (unsigned) h;
            }
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = 0;
                int ok = 1;
                for (int i = 0; i < 4; i++) {
                    int h = mg_json_hex(p[2 + i]);
                    if (h < 0) {
                        ok = 0;
                        break;
                    }
                    lo = lo * 16 + (unsigned) h;
                }
                if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            /* a lone surrogate becomes U+FFFD rather than invalid UTF-8 */
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            o += mg_json_utf8(cp, o);
            break;
        }
        default:
            return -1;
        }
    }
    *o = '\0';
    return (long) (o - out);
}

int
mg_json_num(const char *val, size_t val_len, double *out)
{
    char buf[64];
    if (val_len == 0 || val_len >= sizeof(buf)) {
        return MG_ERROR;
    }
    memcpy(buf, val, val_len);
    buf[val_len] = '\0';
    char *e;
    double d = strtod(buf, &e);
    if (e != buf + val_len) {
        return MG_ERROR;
    }
    *out = d;
    return MG_OK;
}

int
mg_json_obj_find(const char *p, size_t len, const char *key, mg_json_member_t *m)
{
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, p, len) != MG_OK) {
        return -1;
    }
    int r;
    while ((r = mg_json_obj_next(&it, m)) == 1) {
        if (mg_json_key_is(m, key)) {
            return 1;
        }
    }
    return r;
}
