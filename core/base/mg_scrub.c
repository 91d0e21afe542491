/*
 * mg_scrub.c -- redaction of known secrets and key-shaped tokens (see mg_scrub.h).
 *
 * Owns: the secret sets (pattern bytes, index) and one reference to the global set.
 * Does not own: the texts it scrubs.
 *
 * How it works: one pass collects spans [s, e) to redact, from two sources:
 *  - the set's patterns (every secret and each of its escaped forms), found through an
 *    index on their first MG_SCRUB_MIN_SECRET bytes: a rolling 6-byte window per input
 *    position, a 64 Kbit filter that rejects almost every position with one bit test, then a
 *    hash table whose chains hold the patterns sharing those 6 bytes (verified by memcmp).
 *    Cost is independent of the number of secrets except at true candidate positions.
 *  - key-shape rules, dispatched on a few trigger bytes (s r p B b A e - = :) so most bytes
 *    cost one table lookup.
 * The spans are widened to whole JSON escapes, sorted and merged (overlapping or touching
 * spans become one, so a secret overlapping a key-shaped token leaves nothing behind), and the
 * text is emitted with each merged span replaced by mg_scrub_redact() of its bytes.
 * Nothing here allocates unless a text has more than 32 spans (and the fixed-buffer path
 * used by the logger uses plain malloc then, failing closed), so mg_log can call it.
 */
#include "mg_scrub.h"

#include "mg_arena.h"
#include "mg_buf.h"
#include "mg_err.h"
#include "mg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the set ---- */

#define MG_SCRUB_NONE   UINT32_MAX
#define MG_SCRUB_BLOOM  65536u
#define MG_SCRUB_HASHK  0x9E3779B97F4A7C15ull

typedef struct {
    size_t off;         /* into set->bytes */
    uint32_t len;
    uint32_t next;      /* next pattern with the same first 6 bytes, or MG_SCRUB_NONE */
} mg_scrub_pat_t;

typedef struct {
    uint64_t key;       /* first 6 bytes */
    uint32_t head;      /* first pattern, MG_SCRUB_NONE = empty slot */
} mg_scrub_slot_t;

struct mg_scrub_set_s {
    int refs;
    size_t count;               /* distinct secrets */
    size_t ignored;             /* too short */
    char *bytes;                /* owned: every pattern's bytes */
    mg_scrub_pat_t *pats;       /* owned */
    size_t npats;
    mg_scrub_slot_t *slots;     /* owned: open addressing, power of two */
    size_t mask;
    uint64_t bloom[MG_SCRUB_BLOOM / 64];
};

static mg_scrub_set_t *mg_scrub_global_set; /* ref: dropped by the next mg_scrub_set_global() */

/* Sets that were global before and that someone else (an old snapshot serving in-flight
 * requests) still references: the logger keeps scrubbing with them, so a rotated-out key
 * echoed in a late reply is not logged.  One ref each, dropped once ours is the last. */
#define MG_SCRUB_RETIRED 4
static mg_scrub_set_t *mg_scrub_retired[MG_SCRUB_RETIRED];
static size_t mg_scrub_nretired;

/* Secrets learned at run time (tokens minted from a credential): one ref, replaced whole. */
static mg_scrub_set_t *mg_scrub_runtime_set;

static inline uint64_t
mg_scrub_key6(const char *p)
{
    const unsigned char *u = (const unsigned char *) p;
    return (uint64_t) u[0] | (uint64_t) u[1] << 8 | (uint64_t) u[2] << 16 |
           (uint64_t) u[3] << 24 | (uint64_t) u[4] << 32 | (uint64_t) u[5] << 40;
}

static inline uint64_t
mg_scrub_hash(uint64_t key)
{
    return key * MG_SCRUB_HASHK;
}

static mg_scrub_slot_t *
mg_scrub_set_slot(const mg_scrub_set_t *set, uint64_t key, uint64_t h)
{
    size_t i = (size_t) (h >> 24) & set->mask;
    for (;;) {
        mg_scrub_slot_t *s = &set->slots[i];
        if (s->head == MG_SCRUB_NONE || s->key == key) {
            return s;
        }
        i = (i + 1) & set->mask;
    }
}

/* ---- the builder ---- */

void
mg_scrub_builder_add(mg_scrub_builder_t *b, const char *s, size_t n)
{
    if (s == NULL || n == 0) {
        return;
    }
    if (n < MG_SCRUB_MIN_SECRET) {
        b->ignored++;
        return;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->items = mg_xrealloc(b->items, b->cap * sizeof(*b->items));
        b->lens = mg_xrealloc(b->lens, b->cap * sizeof(*b->lens));
    }
    b->items[b->n] = mg_xmalloc(n);
    memcpy(b->items[b->n], s, n);
    b->lens[b->n] = n;
    b->n++;
}

void
mg_scrub_builder_add_str(mg_scrub_builder_t *b, const char *s)
{
    if (s != NULL) {
        mg_scrub_builder_add(b, s, strlen(s));
    }
}

static int
mg_scrub_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

void
mg_scrub_builder_add_url_password(mg_scrub_builder_t *b, const char *url)
{
    if (url == NULL) {
        return;
    }
    const char *a = strstr(url, "://");
    if (a == NULL) {
        return;
    }
    a += 3;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (a[i] == '@') {
            at = a + i; /* the last '@' ends the userinfo */
        }
    }
    if (at == NULL) {
        return;
    }
    const char *colon = memchr(a, ':', (size_t) (at - a));
    if (colon == NULL || colon + 1 >= at) {
        return;
    }
    const char *pw = colon + 1;
    size_t n = (size_t) (at - pw);
    mg_scrub_builder_add(b, pw, n);
    char *dec = mg_xmalloc(n);
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        int h1, h2;
        if (pw[i] == '%' && i + 2 < n && (h1 = mg_scrub_hexval((unsigned char) pw[i + 1])) >= 0 &&
            (h2 = mg_scrub_hexval((unsigned char) pw[i + 2])) >= 0) {
            dec[d++] = (char) (h1 * 16 + h2);
            i += 2;
        } else {
            dec[d++] = pw[i];
        }
    }
    if (d != n) {
        mg_scrub_builder_add(b, dec, d);
    }
    free(dec);
}

void
mg_scrub_builder_free(mg_scrub_builder_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i]);
    }
    free(b->items);
    free(b->lens);
    b->items = NULL;
    b->lens = NULL;
    b->n = b->cap = b->ignored = 0;
}

/* ---- escaped forms of a secret ---- */

/* Decodes one UTF-8 sequence at s[0..n); returns its length, 0 if invalid. */
static size_t
mg_scrub_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    }
    *cp = v;
    return len;
}

/*
 * JSON-escapes s[0..n) into o.  slash: "/" as "\/".  uni: 0 keeps non-ASCII as UTF-8,
 * 1/2 writes it as \uXXXX in lower/upper-case hex.  Returns false if uni is asked for and
 * s is not valid UTF-8.
 */
static bool
mg_scrub_jesc(mg_buf_t *o, const char *s, size_t n, bool slash, int uni)
{
    const char *hex = uni == 2 ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        char e[16];
        switch (c) {
        case '"': mg_buf_append(o, "\\\"", 2); continue;
        case '\\': mg_buf_append(o, "\\\\", 2); continue;
        case '\n': mg_buf_append(o, "\\n", 2); continue;
        case '\r': mg_buf_append(o, "\\r", 2); continue;
        case '\t': mg_buf_append(o, "\\t", 2); continue;
        case '\b': mg_buf_append(o, "\\b", 2); continue;
        case '\f': mg_buf_append(o, "\\f", 2); continue;
        case '/':
            if (slash) {
                mg_buf_append(o, "\\/", 2);
            } else {
                mg_buf_append(o, "/", 1);
            }
            continue;
        default: break;
        }
        if (c < 0x20) {
            snprintf(e, sizeof(e), "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            mg_buf_append(o, e, 6);
        } else if (c < 0x80 || uni == 0) {
            mg_buf_append(o, s + i, 1);
        } else {
            uint32_t cp;
            size_t len = mg_scrub_utf8((const unsigned char *) s + i, n - i, &cp);
            if (len == 0) {
                return false;
            }
            i += len - 1;
            uint32_t units[2] = {cp, 0};
            int nu = 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[0] = 0xD800 | (cp >> 10);
                units[1] = 0xDC00 | (cp & 0x3FF);
                nu = 2;
            }
            for (int u = 0; u < nu; u++) {
                snprintf(e, sizeof(e), "\\u%c%c%c%c", hex[(units[u] >> 12) & 15],
                         hex[(units[u] >> 8) & 15], hex[(units[u] >> 4) & 15], hex[units[u] & 15]);
                mg_buf_append(o, e, 6);
            }
        }
    }
    return true;
}

/* Percent-encodes every byte outside A-Z a-z 0-9 -._~ (and "/" unless keep_slash is false). */
static void
mg_scrub_pct(mg_buf_t *o, const char *s, size_t n, bool upper, bool keep_slash)
{
    const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash)) {
            mg_buf_append(o, s + i, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            mg_buf_append(o, e, 3);
        }
    }
}

#define MG_SCRUB_MAX_FORMS 16

typedef struct {
    mg_buf_t buf;               /* owned: all forms, back to back */
    size_t off[MG_SCRUB_MAX_FORMS];
    size_t len[MG_SCRUB_MAX_FORMS];
    size_t n;
} mg_scrub_forms_t;

/* Keeps the form just appended at buf[start..end) unless it repeats an earlier one. */
static void
mg_scrub_forms_keep(mg_scrub_forms_t *f, size_t start)
{
    size_t len = f->buf.end - start;
    for (size_t i = 0; i < f->n; i++) {
        if (f->len[i] == len && memcmp(f->buf.data + f->off[i], f->buf.data + start, len) == 0) {
            f->buf.end = start;
            return;
        }
    }
    f->off[f->n] = start;
    f->len[f->n] = len;
    f->n++;
}

static void
mg_scrub_forms(mg_scrub_forms_t *f, const char *s, size_t n)
{
    f->n = 0;
    mg_buf_reset(&f->buf);
    size_t start = f->buf.end;
    mg_buf_append(&f->buf, s, n);
    mg_scrub_forms_keep(f, start);
    for (int slash = 0; slash < 2; slash++) {
        for (int uni = 0; uni < 3; uni++) {
            start = f->buf.end;
            if (mg_scrub_jesc(&f->buf, s, n, slash, uni)) {
                mg_scrub_forms_keep(f, start);
            } else {
                f->buf.end = start;
            }
        }
    }
    /* twice: a JSON document inside a JSON string */
    for (int inner = 0; inner < 2; inner++) {
        mg_buf_t once = MG_BUF_INIT;
        mg_scrub_jesc(&once, s, n, inner, 0);
        for (int outer = 0; outer < 2; outer++) {
            start = f->buf.end;
            mg_scrub_jesc(&f->buf, mg_buf_head(&once), mg_buf_len(&once), outer, 0);
            mg_scrub_forms_keep(f, start);
        }
        mg_buf_free(&once);
    }
    start = f->buf.end;
    mg_scrub_pct(&f->buf, s, n, true, false);
    mg_scrub_forms_keep(f, start);
    start = f->buf.end;
    mg_scrub_pct(&f->buf, s, n, false, false);
    mg_scrub_forms_keep(f, start);
    start = f->buf.end;
    mg_scrub_pct(&f->buf, s, n, true, true);
    mg_scrub_forms_keep(f, start);
}

/* Adds one pattern unless an identical one is indexed; returns true if it was new. */
static bool
mg_scrub_set_insert(mg_scrub_set_t *set, mg_buf_t *bytes, const char *p, size_t len)
{
    uint64_t key = mg_scrub_key6(p);
    uint64_t h = mg_scrub_hash(key);
    mg_scrub_slot_t *slot = mg_scrub_set_slot(set, key, h);
    if (slot->head != MG_SCRUB_NONE) {
        for (uint32_t i = slot->head; i != MG_SCRUB_NONE; i = set->pats[i].next) {
            if (set->pats[i].len == len && memcmp(bytes->data + set->pats[i].off, p, len) == 0) {
                return false;
            }
        }
    }
    mg_scrub_pat_t *pat = &set->pats[set->npats];
    pat->off = bytes->end;
    pat->len = (uint32_t) len;
    pat->next = slot->head;
    mg_buf_append(bytes, p, len);
    slot->key = key;
    slot->head = (uint32_t) set->npats++;
    uint32_t bit = (uint32_t) (h >> 48);
    set->bloom[bit >> 6] |= 1ull << (bit & 63);
    return true;
}

/* Longer secrets are indexed by their first 64 KiB (a match still redacts that much). */
#define MG_SCRUB_MAX_SECRET 65536

mg_scrub_set_t *
mg_scrub_builder_finish(mg_scrub_builder_t *b)
{
    mg_scrub_set_t *set = mg_xcalloc(1, sizeof(*set));
    set->refs = 1;
    set->ignored = b->ignored;
    /* count the forms first, so the index is sized to them (most keys have one form) */
    mg_scrub_forms_t forms = {MG_BUF_INIT, {0}, {0}, 0};
    size_t npats = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t len = b->lens[i] > MG_SCRUB_MAX_SECRET ? MG_SCRUB_MAX_SECRET : b->lens[i];
        mg_scrub_forms(&forms, b->items[i], len);
        npats += forms.n;
    }
    size_t slots = 16;
    while (slots < 2 * npats) {
        slots *= 2;
    }
    set->slots = mg_xmalloc(slots * sizeof(*set->slots));
    for (size_t i = 0; i < slots; i++) {
        set->slots[i].key = 0;
        set->slots[i].head = MG_SCRUB_NONE;
    }
    set->mask = slots - 1;
    set->pats = mg_xmalloc((npats ? npats : 1) * sizeof(*set->pats));
    mg_buf_t bytes = MG_BUF_INIT;
    for (size_t i = 0; i < b->n; i++) {
        size_t len = b->lens[i] > MG_SCRUB_MAX_SECRET ? MG_SCRUB_MAX_SECRET : b->lens[i];
        mg_scrub_forms(&forms, b->items[i], len);
        for (size_t k = 0; k < forms.n; k++) {
            bool fresh = mg_scrub_set_insert(set, &bytes, forms.buf.data + forms.off[k],
                                             forms.len[k]);
            if (k == 0 && fresh) {
                set->count++;
            }
        }
    }
    mg_buf_free(&forms.buf);
    set->bytes = bytes.data; /* taken over from the buffer */
    mg_scrub_builder_free(b);
    return set;
}

mg_scrub_set_t *
mg_scrub_set_new(const char *const *secrets, size_t n)
{
    mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
    for (size_t i = 0; i < n; i++) {
        mg_scrub_builder_add_str(&b, secrets[i]);
    }
    return mg_scrub_builder_finish(&b);
}

mg_scrub_set_t *
mg_scrub_set_ref(mg_scrub_set_t *set)
{
    if (set != NULL) {
        set->refs++;
    }
    return set;
}

void
mg_scrub_set_unref(mg_scrub_set_t *set)
{
    if (set == NULL) {
        return;
    }
    if (set->refs <= 0) {
        mg_log_write(MG_LOG_ERROR, NULL, "mg_scrub_set_unref() underflow, aborting");
        abort();
    }
    if (--set->refs > 0) {
        return;
    }
    free(set->bytes);
    free(set->pats);
    free(set->slots);
    free(set);
}

size_t
mg_scrub_set_count(const mg_scrub_set_t *set)
{
    return set != NULL ? set->count : 0;
}

size_t
mg_scrub_set_ignored(const mg_scrub_set_t *set)
{
    return set != NULL ? set->ignored : 0;
}

static void
mg_scrub_retired_prune(void)
{
    size_t w = 0;
    for (size_t i = 0; i < mg_scrub_nretired; i++) {
        if (mg_scrub_retired[i]->refs <= 1) {
            mg_scrub_set_unref(mg_scrub_retired[i]);
        } else {
            mg_scrub_retired[w++] = mg_scrub_retired[i];
        }
    }
    mg_scrub_nretired = w;
}

void
mg_scrub_set_global(mg_scrub_set_t *set)
{
    mg_scrub_set_t *old = mg_scrub_global_set;
    mg_scrub_global_set = mg_scrub_set_ref(set);
    if (set == NULL) {
        /* cleared: nothing is kept */
        for (size_t i = 0; i < mg_scrub_nretired; i++) {
            mg_scrub_set_unref(mg_scrub_retired[i]);
        }
        mg_scrub_nretired = 0;
        mg_scrub_set_unref(old);
        return;
    }
    if (old != NULL && old != set) {
        if (mg_scrub_nretired == MG_SCRUB_RETIRED) {
            mg_scrub_set_unref(mg_scrub_retired[0]);
            memmove(mg_scrub_retired, mg_scrub_retired + 1,
                    (MG_SCRUB_RETIRED - 1) * sizeof(mg_scrub_retired[0]));
            mg_scrub_nretired--;
        }
        mg_scrub_retired[mg_scrub_nretired++] = old; /* our reference moves here */
    } else {
        mg_scrub_set_unref(old);
    }
    mg_scrub_retired_prune();
}

void
mg_scrub_set_runtime(mg_scrub_set_t *set)
{
    mg_scrub_set_t *old = mg_scrub_runtime_set;
    mg_scrub_runtime_set = mg_scrub_set_ref(set);
    mg_scrub_set_unref(old);
}

size_t
mg_scrub_global_retired(void)
{
    mg_scrub_retired_prune();
    return mg_scrub_nretired;
}

const mg_scrub_set_t *
mg_scrub_global(void)
{
    return mg_scrub_global_set;
}

/* ---- spans ---- */

#define MG_SCRUB_NO_TAIL 0x1u /* redact without the last 4 (PEM bodies, Basic credentials) */
#define MG_SCRUB_STACK_SPANS 32

typedef struct {
    size_t s;
    size_t e;
    unsigned flags;
} mg_scrub_span_t;

typedef struct {
    mg_scrub_span_t *v;         /* stack (caller's) or malloc'd when grown */
    size_t n;
    size_t cap;
    mg_scrub_span_t *stack;     /* borrowed: the caller's initial array */
    bool failed;                /* out of memory: the caller withholds the text */
} mg_scrub_spans_t;

static void
mg_scrub_add(mg_scrub_spans_t *sp, size_t s, size_t e, unsigned flags)
{
    if (e <= s || sp->failed) {
        return;
    }
    if (sp->n > 0) {
        mg_scrub_span_t *last = &sp->v[sp->n - 1];
        if (s >= last->s && s <= last->e) {
            if (e > last->e) {
                last->e = e;
            }
            last->flags |= flags;
            return;
        }
    }
    if (sp->n == sp->cap) {
        size_t cap = sp->cap * 2;
        mg_scrub_span_t *v = sp->v == sp->stack ? malloc(cap * sizeof(*v))
                                                : realloc(sp->v, cap * sizeof(*v));
        if (v == NULL) {
            sp->failed = true;
            return;
        }
        if (sp->v == sp->stack) {
            memcpy(v, sp->stack, sp->n * sizeof(*v));
        }
        sp->v = v;
        sp->cap = cap;
    }
    sp->v[sp->n].s = s;
    sp->v[sp->n].e = e;
    sp->v[sp->n].flags = flags;
    sp->n++;
}

static void
mg_scrub_spans_free(mg_scrub_spans_t *sp)
{
    if (sp->v != sp->stack) {
        free(sp->v);
    }
}

/* ---- the secret scan ---- */

static void
mg_scrub_scan_set(const mg_scrub_set_t *set, const char *in, size_t n, mg_scrub_spans_t *sp)
{
    if (set == NULL || set->npats == 0 || n < MG_SCRUB_MIN_SECRET) {
        return;
    }
    const unsigned char *u = (const unsigned char *) in;
    uint64_t k = (uint64_t) u[0] | (uint64_t) u[1] << 8 | (uint64_t) u[2] << 16 |
                 (uint64_t) u[3] << 24 | (uint64_t) u[4] << 32;
    for (size_t i = 0; i + MG_SCRUB_MIN_SECRET <= n; i++) {
        k |= (uint64_t) u[i + 5] << 40;
        uint64_t h = mg_scrub_hash(k);
        uint32_t bit = (uint32_t) (h >> 48);
        if (set->bloom[bit >> 6] & (1ull << (bit & 63))) {
            const mg_scrub_slot_t *slot = mg_scrub_set_slot(set, k, h);
            size_t best = 0;
            for (uint32_t p = slot->head; p != MG_SCRUB_NONE; p = set->pats[p].next) {
                const mg_scrub_pat_t *pat = &set->pats[p];
                if (pat->len > best && pat->len <= n - i &&
                    memcmp(in + i + MG_SCRUB_MIN_SECRET,
                           set->bytes + pat->off + MG_SCRUB_MIN_SECRET,
                           pat->len - MG_SCRUB_MIN_SECRET) == 0) {
                    best = pat->len;
                }
            }
            if (best > 0) {
                mg_scrub_add(sp, i, i + best, 0);
            }
        }
        k >>= 8;
    }
}

/* The text was cut: a secret's head (>= 4 bytes) at the very end is redacted too. */
static void
mg_scrub_scan_cut(const mg_scrub_set_t *set, const char *in, size_t n, mg_scrub_spans_t *sp)
{
    if (set == NULL) {
        return;
    }
    size_t best = 0;
    for (size_t p = 0; p < set->npats; p++) {
        const char *pat = set->bytes + set->pats[p].off;
        size_t k = set->pats[p].len - 1;
        if (k > n) {
            k = n;
        }
        for (; k > best && k >= 4; k--) {
            if (in[n - k] == pat[0] && memcmp(in + n - k, pat, k) == 0) {
                best = k;
                break;
            }
        }
    }
    if (best > 0) {
        mg_scrub_add(sp, n - best, n, 0);
    }
}

/* ---- key-shape rules ---- */

static inline bool
mg_scrub_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Characters of an API-key-like token. */
static inline bool
mg_scrub_is_tok(unsigned char c)
{
    return mg_scrub_is_alnum(c) || c == '-' || c == '_';
}

/* Characters of a bearer token / base64: token chars plus . ~ + / = */
static inline bool
mg_scrub_is_b64(unsigned char c)
{
    return mg_scrub_is_tok(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

static inline bool
mg_scrub_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Number of consecutive backslashes ending just before pos. */
static size_t
mg_scrub_bs_before(const char *in, size_t pos)
{
    size_t k = 0;
    while (k < pos && in[pos - 1 - k] == '\\') {
        k++;
    }
    return k;
}

static bool
mg_scrub_is_hex4(const char *p)
{
    for (int i = 0; i < 4; i++) {
        if (mg_scrub_hexval((unsigned char) p[i]) < 0) {
            return false;
        }
    }
    return true;
}

/* A token may start at i: the byte before is not a token char, or ends a JSON escape. */
static bool
mg_scrub_boundary(const char *in, size_t i)
{
    if (i == 0) {
        return true;
    }
    unsigned char c = (unsigned char) in[i - 1];
    if (!mg_scrub_is_tok(c)) {
        return true;
    }
    if (i >= 2 && in[i - 2] == '\\' && (c == 'n' || c == 'r' || c == 't' || c == 'b' || c == 'f')) {
        return true;
    }
    return i >= 6 && in[i - 6] == '\\' && in[i - 5] == 'u' && mg_scrub_is_hex4(in + i - 4);
}

static inline bool
mg_scrub_at(const char *in, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    return n - i >= l && memcmp(in + i, lit, l) == 0;
}

/* End of a run of chars accepted by ok() from i (reading "\/" as "/" when ok('/')), bounded. */
static size_t
mg_scrub_run(const char *in, size_t n, size_t i, bool (*ok)(unsigned char), size_t max)
{
    size_t end = n - i > max ? i + max : n;
    bool slash = ok('/');
    while (i < end) {
        unsigned char c = (unsigned char) in[i];
        if (c == '-' && mg_scrub_at(in, n, i, "-----")) {
            break; /* PEM armour, never part of a key: the PEM rule needs it intact */
        }
        if (ok(c)) {
            i++;
        } else if (slash && c == '\\' && i + 1 < n && in[i + 1] == '/') {
            i += 2;
        } else {
            break;
        }
    }
    return i;
}

static bool
mg_scrub_has_dots(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++) {
        if (p[i] == '.' && p[i + 1] == '.' && p[i + 2] == '.') {
            return true;
        }
    }
    return false;
}

/*
 * Looks like a credential rather than a word: 8+ characters with a digit, an upper-case
 * letter after the first, one of + / = _, or 24+ characters in a row; never one that
 * already holds a redaction ("...").
 */
static bool
mg_scrub_keyish(const char *p, size_t n)
{
    if (n < 8 || mg_scrub_has_dots(p, n)) {
        return false;
    }
    if (n >= 24) {
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) p[i];
        if ((c >= '0' && c <= '9') || (i > 0 && c >= 'A' && c <= 'Z') || c == '+' || c == '/' ||
            c == '=' || c == '_') {
            return true;
        }
    }
    return false;
}

static bool
mg_scrub_has_digit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            return true;
        }
    }
    return false;
}

static bool
mg_scrub_at_ci(const char *in, size_t n, size_t i, const char *lower)
{
    size_t l = strlen(lower);
    if (n - i < l) {
        return false;
    }
    for (size_t k = 0; k < l; k++) {
        unsigned char c = (unsigned char) in[i + k];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char) (c + 32);
        }
        if (c != (unsigned char) lower[k]) {
            return false;
        }
    }
    return true;
}

/* sk-... sk_... and sk_/rk_/pk_ live|test keys */
static void
mg_scrub_rule_sk(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    if (n - i < 11 || in[i + 1] != 'k' || !mg_scrub_boundary(in, i)) {
        return;
    }
    char sep = in[i + 2];
    bool live = sep == '_' &&
                (mg_scrub_at(in, n, i + 3, "live_") || mg_scrub_at(in, n, i + 3, "test_"));
    if (in[i] != 's' && !live) {
        return;
    }
    if (sep != '-' && sep != '_') {
        return;
    }
    size_t b = i + 3;
    size_t end = mg_scrub_run(in, n, b, mg_scrub_is_tok, 4096);
    size_t blen = end - b;
    if ((live && blen >= 5 + 8) ||
        (blen >= 8 && (blen >= 20 || mg_scrub_has_digit(in + b, blen)))) {
        mg_scrub_add(sp, i, end, 0);
    }
}

/* Bearer <token>, Basic <token> */
static void
mg_scrub_rule_scheme(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    size_t j;
    unsigned flags = 0;
    if (mg_scrub_at_ci(in, n, i, "bearer")) {
        j = i + 6;
    } else if (mg_scrub_at_ci(in, n, i, "basic")) {
        j = i + 5;
        flags = MG_SCRUB_NO_TAIL; /* its last characters encode the password's last bytes */
    } else {
        return;
    }
    if (j >= n || (in[j] != ' ' && in[j] != '\t') || !mg_scrub_boundary(in, i)) {
        return;
    }
    while (j < n && (in[j] == ' ' || in[j] == '\t')) {
        j++;
    }
    size_t end = mg_scrub_run(in, n, j, mg_scrub_is_b64, 16384);
    while (end > j && in[end - 1] == '.') {
        end--;
    }
    if (mg_scrub_keyish(in + j, end - j)) {
        mg_scrub_add(sp, j, end, flags);
    }
}

static bool
mg_scrub_is_upnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* AIza... Google API keys, AKIA/ASIA AWS access key ids */
static void
mg_scrub_rule_a(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    if (n - i < 20 || !mg_scrub_boundary(in, i)) {
        return;
    }
    if (mg_scrub_at(in, n, i, "AIza")) {
        size_t end = mg_scrub_run(in, n, i + 4, mg_scrub_is_tok, 256);
        if (end - i >= 4 + 30) {
            mg_scrub_add(sp, i, end, 0);
        }
        return;
    }
    if (!mg_scrub_at(in, n, i, "AKIA") && !mg_scrub_at(in, n, i, "ASIA")) {
        return;
    }
    for (size_t k = i + 4; k < i + 20; k++) {
        if (!mg_scrub_is_upnum((unsigned char) in[k])) {
            return;
        }
    }
    if (i + 20 < n && mg_scrub_is_alnum((unsigned char) in[i + 20])) {
        return;
    }
    mg_scrub_add(sp, i, i + 20, 0);
}

static bool
mg_scrub_is_b64url(unsigned char c)
{
    return mg_scrub_is_tok(c);
}

/* eyJ<header>.eyJ<payload>[.<signature>] */
static void
mg_scrub_rule_jwt(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    if (!mg_scrub_at(in, n, i, "eyJ") || !mg_scrub_boundary(in, i)) {
        return;
    }
    size_t h = mg_scrub_run(in, n, i, mg_scrub_is_b64url, 8192);
    if (h - i < 8 || h >= n || in[h] != '.' || !mg_scrub_at(in, n, h + 1, "eyJ")) {
        return;
    }
    size_t p = mg_scrub_run(in, n, h + 1, mg_scrub_is_b64url, 65536);
    if (p - (h + 1) < 8) {
        return;
    }
    size_t end = p;
    if (p < n && in[p] == '.') {
        end = mg_scrub_run(in, n, p + 1, mg_scrub_is_b64url, 8192);
    }
    mg_scrub_add(sp, i, end, 0);
}

static bool
mg_scrub_is_pem_label(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ';
}

/* -----BEGIN ... PRIVATE KEY----- body -----END ...: the body is redacted */
static void
mg_scrub_rule_pem(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    if (!mg_scrub_at(in, n, i, "-----BEGIN ")) {
        return;
    }
    size_t l = i + 11;
    size_t le = l;
    while (le < n && le - l < 64 && mg_scrub_is_pem_label((unsigned char) in[le])) {
        le++;
    }
    if (le - l < 11 || memcmp(in + le - 11, "PRIVATE KEY", 11) != 0 ||
        !mg_scrub_at(in, n, le, "-----")) {
        return;
    }
    size_t body = le + 5;
    size_t lim = n - body > 65536 ? body + 65536 : n;
    const char *endm = memmem(in + body, lim - body, "-----END ", 9);
    size_t end;
    if (endm != NULL) {
        end = (size_t) (endm - in);
    } else {
        /* cut or malformed: everything that can be part of the body goes */
        end = body;
        while (end < lim) {
            unsigned char c = (unsigned char) in[end];
            if ((mg_scrub_is_b64(c) && c != '.') || mg_scrub_is_space(c)) {
                end++; /* base64 has no '.', so a redaction ("...") ends the body */
            } else if (c == '\\' && end + 1 < n) {
                end += 2;
            } else {
                break;
            }
        }
        /* already redacted: at most a shown prefix ("sk_") before the "..." */
        if (end - body <= 3 && mg_scrub_at(in, n, end, "...")) {
            return;
        }
    }
    mg_scrub_add(sp, body, end, MG_SCRUB_NO_TAIL);
}

/* ---- sensitive names: key=value, name: value, "name": "value" ---- */

#define MG_SCRUB_N_QUERY  0x1u /* name=value */
#define MG_SCRUB_N_COLON  0x2u /* name: value and "name": "value" */
#define MG_SCRUB_N_SCHEME 0x4u /* the value may start with a scheme word (Bearer) to keep */

typedef struct {
    const char *name;   /* lower case, without - and _ */
    unsigned flags;
} mg_scrub_name_t;

/* Exact names. */
static const mg_scrub_name_t mg_scrub_names[] = {
    {"key", MG_SCRUB_N_QUERY},
    {"token", MG_SCRUB_N_QUERY},
    {"sig", MG_SCRUB_N_QUERY},
    {"signature", MG_SCRUB_N_QUERY},
    {"credential", MG_SCRUB_N_QUERY},
    {"xamzsignature", MG_SCRUB_N_QUERY},
    {"xamzcredential", MG_SCRUB_N_QUERY},
    {"pwd", MG_SCRUB_N_QUERY},
    {"authorization", MG_SCRUB_N_QUERY | MG_SCRUB_N_COLON | MG_SCRUB_N_SCHEME},
    {"proxyauthorization", MG_SCRUB_N_QUERY | MG_SCRUB_N_COLON | MG_SCRUB_N_SCHEME},
};

/* Suffixes: any name ending so (openai_api_key, x-api-key, db_password, aws_session_token). */
static const char *const mg_scrub_suffixes[] = {
    "apikey",     "secret",       "password",     "passwd",        "accesskey",
    "secretkey",  "privatekey",   "masterkey",    "authtoken",     "accesstoken",
    "refreshtoken", "sessiontoken", "securitytoken", "idtoken",     "bearertoken",
};

/* Flags for the name in[s..e), 0 if not sensitive. */
static unsigned
mg_scrub_name_flags(const char *in, size_t s, size_t e)
{
    char norm[48];
    size_t m = 0;
    for (size_t k = s; k < e; k++) {
        unsigned char c = (unsigned char) in[k];
        if (c == '-' || c == '_') {
            continue;
        }
        if (m + 1 >= sizeof(norm)) {
            return 0;
        }
        norm[m++] = (char) (c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    norm[m] = '\0';
    if (m == 0) {
        return 0;
    }
    for (size_t k = 0; k < sizeof(mg_scrub_names) / sizeof(mg_scrub_names[0]); k++) {
        if (strcmp(norm, mg_scrub_names[k].name) == 0) {
            return mg_scrub_names[k].flags;
        }
    }
    for (size_t k = 0; k < sizeof(mg_scrub_suffixes) / sizeof(mg_scrub_suffixes[0]); k++) {
        size_t sl = strlen(mg_scrub_suffixes[k]);
        if (m >= sl && strcmp(norm + m - sl, mg_scrub_suffixes[k]) == 0) {
            return MG_SCRUB_N_QUERY | MG_SCRUB_N_COLON;
        }
    }
    return 0;
}

/* Start of the name ending at e (a run of token characters, at most 40). */
static size_t
mg_scrub_name_start(const char *in, size_t e)
{
    size_t s = e;
    while (s > 0 && e - s < 40 && mg_scrub_is_tok((unsigned char) in[s - 1])) {
        s--;
    }
    return s;
}

static bool
mg_scrub_is_qval(unsigned char c)
{
    return !(mg_scrub_is_space(c) || c == '&' || c == '#' || c == '"' || c == '\'' || c == '\\' ||
             c == '<' || c == '>' || c == ',' || c == ';' || c == ')' || c == ']' || c == '}' ||
             c < 0x20);
}

/* name=value, value up to & # quote whitespace , ; */
static void
mg_scrub_rule_query(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    size_t s = mg_scrub_name_start(in, i);
    if (s == i || !(mg_scrub_name_flags(in, s, i) & MG_SCRUB_N_QUERY)) {
        return;
    }
    size_t v = i + 1;
    size_t end = mg_scrub_run(in, n, v, mg_scrub_is_qval, 16384);
    if (end > v && !mg_scrub_has_dots(in + v, end - v)) {
        mg_scrub_add(sp, v, end, 0);
    }
}

static bool
mg_scrub_is_hval(unsigned char c)
{
    return mg_scrub_is_qval(c) && c != '{' && c != '(' && c != '[';
}

/* name: value (header line, YAML) and "name": "value" (JSON, also escaped once) */
static void
mg_scrub_rule_colon_name(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    size_t k = i;
    while (k > 0 && i - k < 4 && (in[k - 1] == ' ' || in[k - 1] == '\t')) {
        k--;
    }
    bool name_quoted = false; /* "name": or 'name': (JSON, Python repr) */
    if (k > 0 && (in[k - 1] == '"' || in[k - 1] == '\'')) {
        k--;
        name_quoted = true;
        if (k > 0 && in[k - 1] == '\\') {
            k--;
        }
    }
    size_t s = mg_scrub_name_start(in, k);
    unsigned flags = s == k ? 0 : mg_scrub_name_flags(in, s, k);
    /* user:password inside scheme://...: the URL rule owns it */
    if (!(flags & MG_SCRUB_N_COLON) || (s > 0 && in[s - 1] == '/')) {
        return;
    }
    size_t j = i + 1;
    while (j < n && (in[j] == ' ' || in[j] == '\t')) {
        j++;
    }
    char q = 0;
    if (j < n && (in[j] == '"' || in[j] == '\'')) {
        q = in[j++];
    } else if (j + 1 < n && in[j] == '\\' && in[j + 1] == '"') {
        q = '\\';
        j += 2;
    }
    unsigned vflags = 0;
    if (flags & MG_SCRUB_N_SCHEME) {
        /* a scheme word to keep: letters that do not look like a key, or SigV4's name */
        size_t w = j;
        while (w < n && w - j < 16 &&
               ((in[w] >= 'a' && in[w] <= 'z') || (in[w] >= 'A' && in[w] <= 'Z'))) {
            w++;
        }
        if (mg_scrub_keyish(in + j, w - j)) {
            w = j;
        }
        if (mg_scrub_at(in, n, j, "AWS4-HMAC-SHA256")) {
            w = j + 16;
        }
        if (w > j && w + 1 < n && in[w] == ' ' && in[w + 1] != ' ' && in[w + 1] != q) {
            if (w - j == 5 && mg_scrub_at_ci(in, n, j, "basic")) {
                vflags = MG_SCRUB_NO_TAIL;
            }
            j = w + 1;
        }
    }
    if (q != 0) {
        size_t m = j;
        size_t lim = n - j > 16384 ? j + 16384 : n;
        while (m < lim) {
            char c = in[m];
            if (c == '\\') {
                if (m + 1 < n && in[m + 1] == '"') {
                    break;
                }
                m += 2;
                continue;
            }
            /* a '"' ends even a '...' value: in JSON text it ends the enclosing string */
            if (c == '"' || (c == '\'' && q == '\'') || c == '\n' || c == '\r') {
                break;
            }
            m++;
        }
        if (m > lim) {
            m = lim;
        }
        bool closed = m < lim && in[m] != '\n' && in[m] != '\r';
        /* after an unquoted name (a header line inside a JSON string, say) the quote may be
         * the end of the enclosing string: only a closed, key-like value is one */
        if (!name_quoted && !(closed && mg_scrub_keyish(in + j, m - j))) {
            return;
        }
        if (m > j && !mg_scrub_at(in, m, j, "os.environ/") && !mg_scrub_has_dots(in + j, m - j)) {
            mg_scrub_add(sp, j, m, vflags);
        }
        return;
    }
    size_t end = mg_scrub_run(in, n, j, mg_scrub_is_hval, 16384);
    while (end > j && in[end - 1] == '.') {
        end--;
    }
    if (mg_scrub_keyish(in + j, end - j)) {
        mg_scrub_add(sp, j, end, vflags);
    }
}

static bool
mg_scrub_is_scheme(unsigned char c)
{
    return mg_scrub_is_alnum(c) || c == '+' || c == '.' || c == '-';
}

static bool
mg_scrub_is_authority(unsigned char c)
{
    return !(mg_scrub_is_space(c) || c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' ||
             c == '<' || c == '>' || c == '\\' || c < 0x20);
}

/* scheme://user:password@host (also scheme:\/\/...): the password, or a token-like user */
static void
mg_scrub_rule_url(const char *in, size_t n, size_t i, mg_scrub_spans_t *sp)
{
    size_t a;
    if (mg_scrub_at(in, n, i, "://")) {
        a = i + 3;
    } else if (mg_scrub_at(in, n, i, ":\\/\\/")) {
        a = i + 5;
    } else {
        return;
    }
    size_t s = i;
    while (s > 0 && i - s < 32 && mg_scrub_is_scheme((unsigned char) in[s - 1])) {
        s--;
    }
    if (s == i) {
        return;
    }
    size_t end = n - a > 2048 ? a + 2048 : n;
    size_t at = 0;
    bool have_at = false;
    size_t j;
    for (j = a; j < end && mg_scrub_is_authority((unsigned char) in[j]); j++) {
        if (in[j] == '@') {
            at = j;
            have_at = true;
        }
    }
    if (!have_at) {
        return;
    }
    const char *colon = memchr(in + a, ':', at - a);
    if (colon != NULL) {
        size_t c = (size_t) (colon - in);
        mg_scrub_add(sp, c + 1, at, 0);
    } else if (mg_scrub_keyish(in + a, at - a)) {
        mg_scrub_add(sp, a, at, 0);
    }
}

static const unsigned char mg_scrub_trigger[256] = {
    ['s'] = 1, ['r'] = 1, ['p'] = 1, ['B'] = 2, ['b'] = 2, ['A'] = 3,
    ['e'] = 4, ['-'] = 5, ['='] = 6, [':'] = 7,
};

static void
mg_scrub_scan_shapes(const char *in, size_t n, mg_scrub_spans_t *sp)
{
    /* the second byte rejects most triggers before a rule is called ('s' is common) */
    for (size_t i = 0; i < n; i++) {
        unsigned t = mg_scrub_trigger[(unsigned char) in[i]];
        if (t == 0) {
            continue;
        }
        unsigned char c2 = i + 1 < n ? (unsigned char) in[i + 1] : 0;
        switch (t) {
        case 1:
            if (c2 == 'k') {
                mg_scrub_rule_sk(in, n, i, sp);
            }
            break;
        case 2:
            if ((c2 | 0x20) == 'e' || (c2 | 0x20) == 'a') {
                mg_scrub_rule_scheme(in, n, i, sp);
            }
            break;
        case 3:
            if (c2 == 'I' || c2 == 'K' || c2 == 'S') {
                mg_scrub_rule_a(in, n, i, sp);
            }
            break;
        case 4:
            if (c2 == 'y') {
                mg_scrub_rule_jwt(in, n, i, sp);
            }
            break;
        case 5:
            if (c2 == '-') {
                mg_scrub_rule_pem(in, n, i, sp);
            }
            break;
        case 6: mg_scrub_rule_query(in, n, i, sp); break;
        case 7:
            mg_scrub_rule_colon_name(in, n, i, sp);
            mg_scrub_rule_url(in, n, i, sp);
            break;
        }
    }
}

/* ---- merging and output ---- */

/* Widens a span so it neither starts nor ends inside a JSON escape. */
static void
mg_scrub_widen(const char *in, size_t n, mg_scrub_span_t *sp)
{
    /* starts on an escaped character: take the backslash */
    if (sp->s > 0 && (mg_scrub_bs_before(in, sp->s) & 1)) {
        sp->s--;
    }
    /* starts inside \uXXXX */
    for (size_t d = 1; d <= 4 && d <= sp->s; d++) {
        size_t p = sp->s - d;
        if (in[p] == 'u' && p > 0 && (mg_scrub_bs_before(in, p) & 1)) {
            sp->s = p - 1;
            break;
        }
    }
    /* ends with an escape's backslash: take what it escapes */
    if (mg_scrub_bs_before(in, sp->e) & 1) {
        sp->e = sp->e < n ? sp->e + 1 : n;
    }
    /* ends inside \uXXXX */
    for (size_t d = 1; d <= 5 && d <= sp->e; d++) {
        size_t p = sp->e - d;
        if (p < sp->s) {
            break;
        }
        if (in[p] == 'u' && p > 0 && (mg_scrub_bs_before(in, p) & 1)) {
            size_t e = p + 5;
            sp->e = e < n ? (e > sp->e ? e : sp->e) : n;
            break;
        }
    }
    /* never split a UTF-8 sequence (an escape's character or a length cap may end inside one) */
    for (int d = 0; d < 3 && sp->s > 0 && ((unsigned char) in[sp->s] & 0xC0) == 0x80; d++) {
        sp->s--;
    }
    for (int d = 0; d < 3 && sp->e < n && ((unsigned char) in[sp->e] & 0xC0) == 0x80; d++) {
        sp->e++;
    }
}

static int
mg_scrub_span_cmp(const void *a, const void *b)
{
    const mg_scrub_span_t *x = a, *y = b;
    return x->s < y->s ? -1 : x->s > y->s ? 1 : 0;
}

/* Widens, sorts and merges the spans in place. */
static void
mg_scrub_settle(const char *in, size_t n, mg_scrub_spans_t *sp)
{
    for (size_t k = 0; k < sp->n; k++) {
        mg_scrub_widen(in, n, &sp->v[k]);
    }
    qsort(sp->v, sp->n, sizeof(sp->v[0]), mg_scrub_span_cmp);
    size_t w = 0;
    for (size_t k = 0; k < sp->n; k++) {
        if (w > 0 && sp->v[k].s <= sp->v[w - 1].e) {
            if (sp->v[k].e > sp->v[w - 1].e) {
                sp->v[w - 1].e = sp->v[k].e;
            }
            sp->v[w - 1].flags |= sp->v[k].flags;
        } else {
            sp->v[w++] = sp->v[k];
        }
    }
    sp->n = w;
}

static void
mg_scrub_collect(const mg_scrub_set_t *const *sets, size_t nsets, const char *in, size_t n,
                 unsigned flags, mg_scrub_spans_t *sp)
{
    for (size_t k = 0; k < nsets; k++) {
        mg_scrub_scan_set(sets[k], in, n, sp);
    }
    mg_scrub_scan_shapes(in, n, sp);
    if (flags & MG_SCRUB_CUT_END) {
        for (size_t k = 0; k < nsets; k++) {
            mg_scrub_scan_cut(sets[k], in, n, sp);
        }
    }
    if (!sp->failed && sp->n > 0) {
        mg_scrub_settle(in, n, sp);
    }
}

static const char *const mg_scrub_prefixes[] = {"sk-", "sk_", "rk_", "pk_",
                                                 "AIz", "AKI", "ASI", "eyJ"};

static bool
mg_scrub_is_tailc(unsigned char c)
{
    return mg_scrub_is_b64(c);
}

static size_t
mg_scrub_redact_ex(const char *tok, size_t n, unsigned flags, char out[MG_SCRUB_REDACT_MAX + 1])
{
    size_t o = 0, pre = 0;
    if (n >= 3) {
        for (size_t k = 0; k < sizeof(mg_scrub_prefixes) / sizeof(mg_scrub_prefixes[0]); k++) {
            if (memcmp(tok, mg_scrub_prefixes[k], 3) == 0) {
                pre = 3;
                break;
            }
        }
    }
    memcpy(out, tok, pre);
    o = pre;
    memcpy(out + o, "...", 3);
    o += 3;
    /* the last 4 only when 16 more stay hidden, and only plain key characters */
    if (!(flags & MG_SCRUB_NO_TAIL) && n - pre >= 16 + 4) {
        bool ok = true;
        for (size_t k = n - 4; k < n; k++) {
            ok = ok && mg_scrub_is_tailc((unsigned char) tok[k]);
        }
        if (ok) {
            memcpy(out + o, tok + n - 4, 4);
            o += 4;
        }
    }
    out[o] = '\0';
    return o;
}

size_t
mg_scrub_redact(const char *tok, size_t n, char out[MG_SCRUB_REDACT_MAX + 1])
{
    return mg_scrub_redact_ex(tok, n, 0, out);
}

/* Where the output goes. */
typedef struct {
    mg_buf_t *buf;  /* borrowed; NULL for the fixed buffer */
    bool json;      /* JSON-escape what is written into buf */
    char *fixed;    /* borrowed: the caller's buffer */
    size_t cap;     /* usable bytes in fixed (one kept for the NUL) */
    size_t len;
} mg_scrub_out_t;

static void
mg_scrub_emit(mg_scrub_out_t *o, const char *p, size_t n)
{
    if (o->buf != NULL) {
        if (o->json) {
            mg_buf_json_escape(o->buf, p, n);
        } else {
            mg_buf_append(o->buf, p, n);
        }
        return;
    }
    size_t room = o->cap - o->len;
    if (n > room) {
        n = room;
    }
    memcpy(o->fixed + o->len, p, n);
    o->len += n;
}

static const char mg_scrub_withheld[] = "(text withheld: out of memory while scrubbing secrets)";

static void
mg_scrub_do_sets(const mg_scrub_set_t *const *sets, size_t nsets, const char *in, size_t n,
                 unsigned flags, mg_scrub_out_t *o)
{
    mg_scrub_span_t stack[MG_SCRUB_STACK_SPANS];
    mg_scrub_spans_t sp = {stack, 0, MG_SCRUB_STACK_SPANS, stack, false};
    mg_scrub_collect(sets, nsets, in, n, flags, &sp);
    if (sp.failed) {
        mg_scrub_emit(o, mg_scrub_withheld, sizeof(mg_scrub_withheld) - 1);
        mg_scrub_spans_free(&sp);
        return;
    }
    size_t pos = 0;
    for (size_t k = 0; k < sp.n; k++) {
        char red[MG_SCRUB_REDACT_MAX + 1];
        size_t rl = mg_scrub_redact_ex(in + sp.v[k].s, sp.v[k].e - sp.v[k].s, sp.v[k].flags, red);
        mg_scrub_emit(o, in + pos, sp.v[k].s - pos);
        mg_scrub_emit(o, red, rl);
        pos = sp.v[k].e;
    }
    mg_scrub_emit(o, in + pos, n - pos);
    mg_scrub_spans_free(&sp);
}

static void
mg_scrub_do(const mg_scrub_set_t *set, const char *in, size_t n, unsigned flags, mg_scrub_out_t *o)
{
    mg_scrub_do_sets(&set, 1, in, n, flags, o);
}

/* ---- public API ---- */

void
mg_scrub_ex(const mg_scrub_set_t *set, const char *in, size_t n, unsigned flags, mg_buf_t *out)
{
    mg_scrub_out_t o = {out, false, NULL, 0, 0};
    mg_scrub_do(set, in, n, flags, &o);
}

void
mg_scrub(const mg_scrub_set_t *set, const char *in, size_t n, mg_buf_t *out)
{
    mg_scrub_ex(set, in, n, 0, out);
}

bool
mg_scrub_found(const mg_scrub_set_t *set, const char *in, size_t n)
{
    mg_scrub_span_t stack[MG_SCRUB_STACK_SPANS];
    mg_scrub_spans_t sp = {stack, 0, MG_SCRUB_STACK_SPANS, stack, false};
    mg_scrub_collect(&set, 1, in, n, 0, &sp);
    bool found = sp.failed || sp.n > 0;
    mg_scrub_spans_free(&sp);
    return found;
}

char *
mg_scrub_cstr(const mg_scrub_set_t *set, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_scrub(set, s, strlen(s), &b);
    mg_buf_cstr(&b);
    if (b.start > 0) {
        memmove(b.data, b.data + b.start, b.end - b.start + 1);
    }
    return b.data;
}

char *
mg_scrub_arena(mg_arena_t *a, const mg_scrub_set_t *set, const char *s, size_t n)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_scrub(set, s, n, &b);
    char *r = mg_arena_strndup(a, b.data != NULL ? mg_buf_head(&b) : "", mg_buf_len(&b));
    mg_buf_free(&b);
    return r;
}

void
mg_scrub_json_str(const mg_scrub_set_t *set, const char *s, size_t n, mg_buf_t *out)
{
    mg_buf_append(out, "\"", 1);
    mg_scrub_out_t o = {out, true, NULL, 0, 0};
    mg_scrub_do(set, s, n, 0, &o);
    mg_buf_append(out, "\"", 1);
}

size_t
mg_scrub_fixed(const mg_scrub_set_t *set, const char *in, size_t n, unsigned flags, char *out,
               size_t cap)
{
    if (cap == 0) {
        return 0;
    }
    mg_scrub_out_t o = {NULL, false, out, cap - 1, 0};
    mg_scrub_do(set, in, n, flags, &o);
    out[o.len] = '\0';
    return o.len;
}

size_t
mg_scrub_fixed_global(const char *in, size_t n, unsigned flags, char *out, size_t cap)
{
    if (cap == 0) {
        return 0;
    }
    mg_scrub_retired_prune();
    const mg_scrub_set_t *sets[2 + MG_SCRUB_RETIRED];
    size_t ns = 0;
    sets[ns++] = mg_scrub_global_set;
    if (mg_scrub_runtime_set != NULL) {
        sets[ns++] = mg_scrub_runtime_set;
    }
    for (size_t i = 0; i < mg_scrub_nretired; i++) {
        sets[ns++] = mg_scrub_retired[i];
    }
    mg_scrub_out_t o = {NULL, false, out, cap - 1, 0};
    mg_scrub_do_sets(sets, ns, in, n, flags, &o);
    out[o.len] = '\0';
    return o.len;
}

void
mg_scrub_global_buf(const char *in, size_t n, mg_buf_t *out)
{
    mg_scrub_retired_prune();
    const mg_scrub_set_t *sets[2 + MG_SCRUB_RETIRED];
    size_t ns = 0;
    sets[ns++] = mg_scrub_global_set;
    if (mg_scrub_runtime_set != NULL) {
        sets[ns++] = mg_scrub_runtime_set;
    }
    for (size_t i = 0; i < mg_scrub_nretired; i++) {
        sets[ns++] = mg_scrub_retired[i];
    }
    mg_scrub_out_t o = {out, false, NULL, 0, 0};
    mg_scrub_do_sets(sets, ns, in, n, 0, &o);
}

char *
mg_scrub_global_cstr(const char *s)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_scrub_global_buf(s, strlen(s), &b);
    char *r = mg_xstrndup(b.data ? mg_buf_head(&b) : "", mg_buf_len(&b));
    mg_buf_free(&b);
    return r;
}

void
mg_scrub_err(const mg_scrub_set_t *set, mg_err_t *err)
{
    if (err == NULL) {
        return;
    }
    char in[MG_ERR_MSG_MAX];
    size_t n = strnlen(err->msg, sizeof(err->msg));
    memcpy(in, err->msg, n);
    /* a message that fills the buffer was probably cut by vsnprintf */
    unsigned flags = n + 1 >= sizeof(err->msg) ? MG_SCRUB_CUT_END : 0;
    mg_scrub_fixed(set, in, n, flags, err->msg, sizeof(err->msg));
}
