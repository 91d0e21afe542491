/*
 * mg_mock_provider — scriptable mock OpenAI-compatible LLM provider for
 * moongate integration / e2e tests and benchmarks.
 *
 * Single-threaded libevent evhttp server. See tests/mocks/README.md.
 *
 * Lifecycle notes (libevent 2.1 evhttp, server side) this file relies on:
 *  - Our request callback runs with the connection in EVCON_WRITING state and
 *    EV_READ disabled. To notice a client going away while we sit on a request
 *    (latency / hang) we re-enable EV_READ with a NULL read callback, exactly
 *    like evhttp_write_buffer() does while a reply is being written.
 *  - When the peer closes while the user has not finished the request
 *    (req->userdone == 0, i.e. before evhttp_send_reply / between
 *    evhttp_send_reply_start and _end), evhttp *detaches* the request
 *    (evhttp_request_get_connection() == NULL), frees the connection and calls
 *    the connection close callback. The detached request is then ours to free.
 *    If the reply was already handed over (userdone == 1) evhttp frees it.
 *  - The close callback is the single place where per-request timers are
 *    cancelled for aborted requests, so no timer can ever fire on a freed
 *    request.
 *  - evhttp has no "new connection" hook in 2.1; the bufferevent callback
 *    (evhttp_set_bevcb) is called once per accepted connection before the
 *    evhttp_connection exists. We queue the connection and, from an event
 *    activated immediately (it runs before any I/O event of the new socket),
 *    fetch the evhttp_connection from the bufferevent's callback argument and
 *    install the close callback. That gives exact open-connection accounting
 *    even for connections that never send a request.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mg_sha256.h"

#define MOCK_VERSION "1.0"
#define DEFAULT_LOG_MAX 100000
#define DEFAULT_LOG_MAX_BYTES (256u * 1024u * 1024u)
#define MODELS_CREATED 1700000000LL

/* ------------------------------------------------------------------ */
/* small utilities                                                     */
/* ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "mock: out of memory\n");
        abort();
    }
    return p;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "mock: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static char *xstrdup(const char *s) { return s ? xstrndup(s, strlen(s)) : NULL; }

/* growable string buffer */
typedef struct {
    char *p;
    size_t n, cap;
} sb_t;

static void sb_grow(sb_t *b, size_t add)
{
    if (b->n + add + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap * 2 : 512;
    while (nc < b->n + add + 1)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
        fprintf(stderr, "mock: out of memory\n");
        abort();
    }
    b->p = np;
    b->cap = nc;
}

static void sb_add(sb_t *b, const void *d, size_t n)
{
    sb_grow(b, n);
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_adds(sb_t *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_addc(sb_t *b, char c) { sb_add(b, &c, 1); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    sb_grow(b, 64);
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= b->cap - b->n) {
        sb_grow(b, (size_t)k);
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)k;
}

static void sb_free(sb_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0;
        if (c == 0xED && s[1] >= 0xA0)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

/* Append s as a JSON string literal (with quotes). Invalid UTF-8 bytes are
 * replaced by U+FFFD so the output is always valid JSON. */
static void sb_json_str(sb_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    sb_grow(b, n + 2);
    sb_addc(b, '"');
    while (i < n) {
        unsigned c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i);
            if (l) {
                i += l;
                continue;
            }
        }
        /* flush run of safe bytes */
        sb_add(b, p + run, i - run);
        if (c >= 0x80) {
            sb_adds(b, "\\ufffd");
        } else if (c == '"') {
            sb_adds(b, "\\\"");
        } else if (c == '\\') {
            sb_adds(b, "\\\\");
        } else if (c == '\n') {
            sb_adds(b, "\\n");
        } else if (c == '\r') {
            sb_adds(b, "\\r");
        } else if (c == '\t') {
            sb_adds(b, "\\t");
        } else if (c == '\b') {
            sb_adds(b, "\\b");
        } else if (c == '\f') {
            sb_adds(b, "\\f");
        } else {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            sb_adds(b, u);
        }
        i++;
        run = i;
    }
    sb_add(b, p + run, n - run);
    sb_addc(b, '"');
}

static void sb_json_cstr(sb_t *b, const char *s)
{
    if (!s)
        sb_adds(b, "null");
    else
        sb_json_str(b, s, strlen(s));
}

/* Dump a jansson value compactly into sb. */
static int dump_cb(const char *buffer, size_t size, void *data)
{
    sb_add((sb_t *)data, buffer, size);
    return 0;
}

static void sb_json_value(sb_t *b, const json_t *v)
{
    if (!v) {
        sb_adds(b, "null");
        return;
    }
    json_dump_callback(v, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int count_words(const char *s, size_t n)
{
    int w = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool sp = isspace((unsigned char)s[i]) != 0;
        if (!sp && !in)
            w++;
        in = !sp;
    }
    return w;
}

static uint64_t fnv1a64(const void *d, size_t n)
{
    const unsigned char *p = d;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void hex32(const uint8_t d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = 0;
}

static void base64_enc(sb_t *b, const unsigned char *d, size_t n)
{
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        char o[4] = {tb[v >> 18], tb[(v >> 12) & 63], tb[(v >> 6) & 63], tb[v & 63]};
        sb_add(b, o, 4);
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        char o[4] = {tb[v >> 18], tb[(v >> 12) & 63], i + 1 < n ? tb[(v >> 6) & 63] : '=', '='};
        sb_add(b, o, 4);
    }
}

/* ------------------------------------------------------------------ */
/* zero-allocation JSON validator / top-level field scanner (hot path) */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *p; /* raw value text, NULL if absent */
    size_t n;
} span_t;

#define JS_MAX_DEPTH 512

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p points at the opening quote; returns pointer past the closing quote */
static const char *js_string(const char *p, const char *e, bool *has_escape)
{
    p++;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c == '\\') {
            if (has_escape)
                *has_escape = true;
            if (++p >= e)
                return NULL;
            c = (unsigned char)*p;
            if (c == 'u') {
                if (e - p < 5)
                    return NULL;
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 5;
                continue;
            }
            if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
                c != 'r' && c != 't')
                return NULL;
            p++;
            continue;
        }
        if (c < 0x20)
            return NULL;
        if (c >= 0x80) {
            size_t l = utf8_len((const unsigned char *)p, (size_t)(e - p));
            if (!l)
                return NULL;
            p += l;
            continue;
        }
        p++;
    }
    return NULL;
}

static const char *js_number(const char *p, const char *e)
{
    if (p < e && *p == '-')
        p++;
    if (p >= e)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && isdigit((unsigned char)*p))
            p++;
    } else {
        return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !isdigit((unsigned char)*p))
            return NULL;
        while (p < e && isdigit((unsigned char)*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !isdigit((unsigned char)*p))
            return NULL;
        while (p < e && isdigit((unsigned char)*p))
            p++;
    }
    return p;
}

/* Validate one JSON value starting at p (no leading whitespace). If keys is
 * non-NULL and the value is an object, record the spans of the wanted
 * member values (last occurrence wins). Returns the end pointer or NULL. */
static const char *js_value(const char *p, const char *e, int depth, const char *const *keys,
                            int nkeys, span_t *out)
{
    if (p >= e || depth > JS_MAX_DEPTH)
        return NULL;
    switch (*p) {
    case '"':
        return js_string(p, e, NULL);
    case '{':
        p = js_ws(p + 1, e);
        if (p < e && *p == '}')
            return p + 1;
        for (;;) {
            if (p >= e || *p != '"')
                return NULL;
            const char *ks = p + 1;
            bool esc = false;
            p = js_string(p, e, &esc);
            if (!p)
                return NULL;
            size_t kl = (size_t)(p - 1 - ks);
            p = js_ws(p, e);
            if (p >= e || *p != ':')
                return NULL;
            p = js_ws(p + 1, e);
            const char *vs = p;
            p = js_value(p, e, depth + 1, NULL, 0, NULL);
            if (!p)
                return NULL;
            if (keys && !esc) {
                for (int i = 0; i < nkeys; i++) {
                    if (strlen(keys[i]) == kl && !memcmp(keys[i], ks, kl)) {
                        out[i].p = vs;
                        out[i].n = (size_t)(p - vs);
                    }
                }
            }
            p = js_ws(p, e);
            if (p < e && *p == ',') {
                p = js_ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}')
                return p + 1;
            return NULL;
        }
    case '[':
        p = js_ws(p + 1, e);
        if (p < e && *p == ']')
            return p + 1;
        for (;;) {
            p = js_value(p, e, depth + 1, NULL, 0, NULL);
            if (!p)
                return NULL;
            p = js_ws(p, e);
            if (p < e && *p == ',') {
                p = js_ws(p + 1, e);
                continue;
            }
            if (p < e && *p == ']')
                return p + 1;
            return NULL;
        }
    case 't':
        return (e - p >= 4 && !memcmp(p, "true", 4)) ? p + 4 : NULL;
    case 'f':
        return (e - p >= 5 && !memcmp(p, "false", 5)) ? p + 5 : NULL;
    case 'n':
        return (e - p >= 4 && !memcmp(p, "null", 4)) ? p + 4 : NULL;
    default:
        return js_number(p, e);
    }
}

/* Validate a whole JSON text; fill spans for wanted top-level keys. */
static bool js_scan(const char *s, size_t n, const char *const *keys, int nkeys, span_t *out,
                    bool *is_object)
{
    for (int i = 0; i < nkeys; i++)
        out[i].p = NULL, out[i].n = 0;
    const char *e = s + n, *p = js_ws(s, e);
    if (is_object)
        *is_object = p < e && *p == '{';
    p = js_value(p, e, 0, keys, nkeys, out);
    if (!p || js_ws(p, e) != e) {
        for (int i = 0; i < nkeys; i++)
            out[i].p = NULL, out[i].n = 0;
        return false;
    }
    return true;
}

static bool span_is(span_t sp, const char *lit)
{
    return sp.p && sp.n == strlen(lit) && !memcmp(sp.p, lit, sp.n);
}

/* Decode a JSON string span into a malloc'd C string (NULL if not a string). */
static char *span_string(span_t sp)
{
    if (!sp.p || sp.n < 2 || sp.p[0] != '"')
        return NULL;
    if (!memchr(sp.p, '\\', sp.n))
        return xstrndup(sp.p + 1, sp.n - 2);
    json_t *j = json_loadb(sp.p, sp.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    char *r = json_is_string(j) ? xstrdup(json_string_value(j)) : NULL;
    if (j)
        json_decref(j);
    return r;
}

/* ------------------------------------------------------------------ */
/* data structures                                                     */
/* ------------------------------------------------------------------ */

typedef struct {
    json_t *src; /* owned reference; string fields below point into it */
    int status;
    const char *error_message, *error_type;
    json_t *error_code; /* borrowed; valid if has_error_code */
    bool has_error_code;
    json_t *retry_after; /* borrowed */
    int latency_ms;
    const char *content;
    size_t content_len;
    int chunks; /* -1 = not given */
    int chunk_interval_ms, first_chunk_delay_ms;
    bool reset_before_response;
    int reset_after_chunks; /* -1 = off */
    bool hang;
    int hang_after_chunks; /* -1 = off */
    bool close_after_response;
    const char *finish_reason;
    bool malformed;
    json_t *headers; /* borrowed object */
    const char *body;
    size_t body_len;
    json_t *frames; /* borrowed array */
    bool done;
    const char *label;
    long long created; /* -1 = now */
    const char *response_id;
    json_t *usage; /* borrowed object */
    json_t *function_calls; /* borrowed array: Responses API function_call outputs */
} behaviour_t;

typedef struct {
    json_t *src; /* owned: the rule object as installed */
    const char *m_model, *m_auth, *m_path, *m_deployment, *m_method, *m_endpoint;
    int m_stream; /* -1 any */
    json_t *m_headers;
    long long times; /* -1 = unlimited */
    long long hits;
    behaviour_t b;
} rule_t;

enum { OC_IN_PROGRESS, OC_COMPLETE, OC_CLIENT_CLOSED, OC_RESET, OC_HANG_CLOSED, OC_SHUTDOWN };
static const char *const outcome_names[] = {"in_progress", "complete", "client_closed",
                                            "reset", "hang_closed", "shutdown"};

enum { EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_MODELS, EP_MODEL, EP_UNKNOWN, EP_RESPONSES,
       EP_RESPONSE, EP_RESPONSE_INPUT_ITEMS, EP_RESPONSE_CANCEL };
static const char *const ep_names[] = {"chat.completions", "completions", "embeddings",
                                       "models", "model", "unknown", "responses", "response",
                                       "response.input_items", "response.cancel"};

typedef struct log_entry {
    uint64_t seq, conn_id;
    int64_t t_start, t_end;
    const char *method;   /* static */
    const char *endpoint; /* static */
    const char *source;   /* static */
    char *path, *hdrs, *body, *model, *label, *deployment; /* point into the same block */
    size_t hdrs_len, body_len;
    int rule_index; /* -1 none */
    int status;     /* 0 = nothing sent */
    int outcome;
    int chunks_sent;
    uint64_t sent_bytes;
    uint8_t sha[32];
    bool body_is_json, stream, in_ring, active, has_sha;
    size_t mem;
    struct rs *owner;     /* request writing this entry while active */
    struct lblock *blk;   /* arena block holding it, NULL = malloc'd */
} log_entry_t;

struct rs;

/* Log entries live in a FIFO arena of 1 MiB mmap'd blocks, so the retained
 * log neither fragments the malloc heap used by evhttp nor costs a
 * malloc/free per request. Entries still active when evicted from the ring
 * are relocated to the heap. */
#define LBLOCK_SIZE (1u << 20)
#define LBLOCK_POOL 4
typedef struct lblock {
    struct lblock *next; /* free pool link */
    size_t used, live;
} lblock_t;
#define LBLOCK_HDR ((sizeof(lblock_t) + 15) & ~(size_t)15)

typedef struct conn {
    struct conn *hnext; /* hash chain */
    struct conn *pnext; /* pending registration list */
    struct bufferevent *bev;
    struct evhttp_connection *evcon;
    uint64_t id;
    struct rs *cur;
    uint64_t epoch;     /* reset generation in which it was counted as provider conn */
    bool provider;      /* carried at least one provider request */
} conn_t;

enum { ACT_START, ACT_PUMP, ACT_RESET_WAIT };

typedef struct rs {
    conn_t *conn;
    struct evhttp_request *req;
    log_entry_t *le;
    behaviour_t b;
    int ep;
    json_t *body; /* parsed request body (lazily, embeddings only) or NULL */
    size_t body_len;
    bool body_object; /* request body is a valid JSON object */
    char *model; /* model used in responses */
    char *deployment;
    bool stream, include_usage;
    bool is_head; /* HEAD: evhttp sends no body, so account none */
    uint64_t seq;
    long long created;
    char *resp_id;
    /* streaming */
    char *content;
    size_t content_len;
    size_t *offs;
    int nchunks, sent;
    bool waited, hanging, started;
    sb_t prefix;
    sb_t pend; /* SSE bytes not yet handed to evhttp */
    /* timer */
    int action;
    struct event timer;
    /* output accounting */
    mg_sha256_t sha;
    uint64_t sent_bytes;
    int status;
    int outcome;
} rs_t;

static struct {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *lev;
    struct event *sig_term, *sig_int, *pending_ev, *relisten_ev;
    SSL_CTX *ssl_ctx;
    int devnull;
    bool quiet, verbose, shutting_down;
    FILE *logf;
    uint64_t seq, requests, connections_total, open_connections, in_progress, conn_id_next;
    uint64_t accepted_total, open_all, epoch;
    /* log arena */
    lblock_t *lcur, *lpool;
    size_t lpool_n;
    /* in-memory log ring */
    log_entry_t **ring;
    size_t ring_cap, ring_head, ring_count, ring_bytes, ring_max_bytes;
    /* script */
    rule_t *rules;
    size_t nrules;
    behaviour_t *default_b;
    /* connections */
    conn_t **buckets;
    size_t nbuckets, nconns;
    conn_t *pending;
    struct evbuffer *tmp;
    char **models;
    size_t nmodels;
    /* Responses API: stored responses, oldest first (bounded) */
    json_t *stored; /* owned object: id -> {"response":..., "input":[...]} */
    json_t *stored_order; /* owned array of ids */
} G;

/* ------------------------------------------------------------------ */
/* behaviour parsing                                                   */
/* ------------------------------------------------------------------ */

static void behaviour_defaults(behaviour_t *b)
{
    memset(b, 0, sizeof *b);
    b->status = 200;
    b->chunks = -1;
    b->reset_after_chunks = -1;
    b->hang_after_chunks = -1;
    b->done = true;
    b->created = -1;
}

static void behaviour_release(behaviour_t *b)
{
    if (b->src)
        json_decref(b->src);
    b->src = NULL;
}

static void behaviour_copy(behaviour_t *dst, const behaviour_t *src)
{
    *dst = *src;
    if (dst->src)
        json_incref(dst->src);
}

static int get_int_field(json_t *v, const char *key, long long lo, long long hi, long long *out,
                         char *err, size_t errlen)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d)) {
            snprintf(err, errlen, "'%s' must be a finite number", key);
            return -1;
        }
        *out = (long long)d;
    } else {
        snprintf(err, errlen, "'%s' must be a number", key);
        return -1;
    }
    if (*out < lo || *out > hi) {
        snprintf(err, errlen, "'%s' out of range [%lld, %lld]", key, lo, hi);
        return -1;
    }
    return 0;
}

static int get_bool_field(json_t *v, const char *key, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "'%s' must be a boolean", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int get_str_field(json_t *v, const char *key, const char **out, size_t *len, char *err,
                         size_t errlen)
{
    if (!json_is_string(v)) {
        snprintf(err, errlen, "'%s' must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return 0;
}

/* Parse a behaviour object. On success b->src holds a new reference. */
static int behaviour_parse(json_t *obj, behaviour_t *b, char *err, size_t errlen)
{
    behaviour_defaults(b);
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "behaviour must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    long long n;
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "status")) {
            if (get_int_field(v, key, 100, 599, &n, err, errlen))
                return -1;
            b->status = (int)n;
        } else if (!strcmp(key, "error_message")) {
            if (get_str_field(v, key, &b->error_message, NULL, err, errlen))
                return -1;
        } else if (!strcmp(key, "error_type")) {
            if (get_str_field(v, key, &b->error_type, NULL, err, errlen))
                return -1;
        } else if (!strcmp(key, "error_code")) {
            if (!json_is_string(v) && !json_is_integer(v) && !json_is_null(v)) {
                snprintf(err, errlen, "'error_code' must be a string, integer or null");
                return -1;
            }
            b->error_code = v;
            b->has_error_code = true;
        } else if (!strcmp(key, "retry_after")) {
            if (!json_is_number(v) && !json_is_string(v)) {
                snprintf(err, errlen, "'retry_after' must be a number or string");
                return -1;
            }
            b->retry_after = v;
        } else if (!strcmp(key, "latency_ms")) {
            if (get_int_field(v, key, 0, 86400000, &n, err, errlen))
                return -1;
            b->latency_ms = (int)n;
        } else if (!strcmp(key, "content")) {
            if (get_str_field(v, key, &b->content, &b->content_len, err, errlen))
                return -1;
        } else if (!strcmp(key, "chunks")) {
            if (get_int_field(v, key, 0, 1000000, &n, err, errlen))
                return -1;
            b->chunks = (int)n;
        } else if (!strcmp(key, "chunk_interval_ms")) {
            if (get_int_field(v, key, 0, 86400000, &n, err, errlen))
                return -1;
            b->chunk_interval_ms = (int)n;
        } else if (!strcmp(key, "first_chunk_delay_ms")) {
            if (get_int_field(v, key, 0, 86400000, &n, err, errlen))
                return -1;
            b->first_chunk_delay_ms = (int)n;
        } else if (!strcmp(key, "reset_before_response")) {
            if (get_bool_field(v, key, &b->reset_before_response, err, errlen))
                return -1;
        } else if (!strcmp(key, "reset_after_chunks")) {
            if (get_int_field(v, key, 0, 1000000, &n, err, errlen))
                return -1;
            b->reset_after_chunks = (int)n;
        } else if (!strcmp(key, "hang")) {
            if (get_bool_field(v, key, &b->hang, err, errlen))
                return -1;
        } else if (!strcmp(key, "hang_after_chunks")) {
            if (get_int_field(v, key, 0, 1000000, &n, err, errlen))
                return -1;
            b->hang_after_chunks = (int)n;
        } else if (!strcmp(key, "close_after_response")) {
            if (get_bool_field(v, key, &b->close_after_response, err, errlen))
                return -1;
        } else if (!strcmp(key, "finish_reason")) {
            if (get_str_field(v, key, &b->finish_reason, NULL, err, errlen))
                return -1;
        } else if (!strcmp(key, "malformed")) {
            if (get_bool_field(v, key, &b->malformed, err, errlen))
                return -1;
        } else if (!strcmp(key, "headers")) {
            if (!json_is_object(v)) {
                snprintf(err, errlen, "'headers' must be an object of strings");
                return -1;
            }
            const char *hk;
            json_t *hv;
            json_object_foreach(v, hk, hv)
            {
                if (!json_is_string(hv) || strpbrk(json_string_value(hv), "\r\n") ||
                    strpbrk(hk, "\r\n: ") || !*hk) {
                    snprintf(err, errlen, "header '%s' must be a single-line string", hk);
                    return -1;
                }
            }
            b->headers = v;
        } else if (!strcmp(key, "body")) {
            if (get_str_field(v, key, &b->body, &b->body_len, err, errlen))
                return -1;
        } else if (!strcmp(key, "frames")) {
            if (!json_is_array(v)) {
                snprintf(err, errlen, "'frames' must be an array");
                return -1;
            }
            b->frames = v;
        } else if (!strcmp(key, "done")) {
            if (get_bool_field(v, key, &b->done, err, errlen))
                return -1;
        } else if (!strcmp(key, "id")) {
            if (get_str_field(v, key, &b->label, NULL, err, errlen))
                return -1;
        } else if (!strcmp(key, "created")) {
            if (get_int_field(v, key, 0, 1LL << 40, &n, err, errlen))
                return -1;
            b->created = n;
        } else if (!strcmp(key, "response_id")) {
            if (get_str_field(v, key, &b->response_id, NULL, err, errlen))
                return -1;
        } else if (!strcmp(key, "usage")) {
            if (!json_is_object(v)) {
                snprintf(err, errlen, "'usage' must be an object");
                return -1;
            }
            b->usage = v;
        } else if (!strcmp(key, "function_calls")) {
            size_t i;
            json_t *fc;
            if (!json_is_array(v)) {
                snprintf(err, errlen, "'function_calls' must be an array of {name, arguments}");
                return -1;
            }
            json_array_foreach(v, i, fc)
            {
                if (!json_is_string(json_object_get(fc, "name"))) {
                    snprintf(err, errlen, "'function_calls[%zu].name' must be a string", i);
                    return -1;
                }
            }
            b->function_calls = v;
        } else {
            snprintf(err, errlen, "unknown behaviour field '%s'", key);
            return -1;
        }
    }
    b->src = json_incref(obj);
    return 0;
}

static void rule_free(rule_t *r)
{
    behaviour_release(&r->b);
    if (r->src)
        json_decref(r->src);
}

static int rule_parse(json_t *obj, rule_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->m_stream = -1;
    r->times = -1;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "rule must be an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "match")) {
            if (json_is_null(v))
                continue;
            if (!json_is_object(v)) {
                snprintf(err, errlen, "'match' must be an object");
                return -1;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv)
            {
                const char **dst = NULL;
                if (!strcmp(mk, "model"))
                    dst = &r->m_model;
                else if (!strcmp(mk, "auth"))
                    dst = &r->m_auth;
                else if (!strcmp(mk, "path"))
                    dst = &r->m_path;
                else if (!strcmp(mk, "deployment"))
                    dst = &r->m_deployment;
                else if (!strcmp(mk, "method"))
                    dst = &r->m_method;
                else if (!strcmp(mk, "endpoint"))
                    dst = &r->m_endpoint;
                if (dst) {
                    if (!json_is_string(mv)) {
                        snprintf(err, errlen, "match.%s must be a string", mk);
                        return -1;
                    }
                    *dst = json_string_value(mv);
                } else if (!strcmp(mk, "stream")) {
                    if (!json_is_boolean(mv)) {
                        snprintf(err, errlen, "match.stream must be a boolean");
                        return -1;
                    }
                    r->m_stream = json_is_true(mv);
                } else if (!strcmp(mk, "headers")) {
                    const char *hk;
                    json_t *hv;
                    if (!json_is_object(mv)) {
                        snprintf(err, errlen, "match.headers must be an object");
                        return -1;
                    }
                    json_object_foreach(mv, hk, hv)
                    {
                        if (!json_is_string(hv)) {
                            snprintf(err, errlen, "match.headers.%s must be a string", hk);
                            return -1;
                        }
                    }
                    r->m_headers = mv;
                } else {
                    snprintf(err, errlen, "unknown match field '%s'", mk);
                    return -1;
                }
            }
        } else if (!strcmp(key, "times")) {
            if (json_is_null(v))
                continue;
            long long n;
            if (get_int_field(v, "times", 0, LLONG_MAX / 2, &n, err, errlen))
                return -1;
            r->times = n;
        } else if (!strcmp(key, "respond")) {
            /* parsed below */
        } else {
            snprintf(err, errlen, "unknown rule field '%s'", key);
            return -1;
        }
    }
    json_t *resp = json_object_get(obj, "respond");
    if (resp && !json_is_null(resp)) {
        if (behaviour_parse(resp, &r->b, err, errlen))
            return -1;
    } else {
        behaviour_defaults(&r->b);
    }
    r->src = json_incref(obj);
    return 0;
}

static void script_clear(void)
{
    for (size_t i = 0; i < G.nrules; i++)
        rule_free(&G.rules[i]);
    free(G.rules);
    G.rules = NULL;
    G.nrules = 0;
    if (G.default_b) {
        behaviour_release(G.default_b);
        free(G.default_b);
        G.default_b = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* in-memory log ring + file log                                      */
/* ------------------------------------------------------------------ */

static void log_entry_json(sb_t *b, const log_entry_t *le)
{
    sb_printf(b, "{\"seq\":%" PRIu64 ",\"t_start_ms\":%" PRId64 ",\"t_end_ms\":", le->seq,
              le->t_start);
    if (le->active)
        sb_adds(b, "null");
    else
        sb_printf(b, "%" PRId64, le->t_end);
    sb_adds(b, ",\"method\":");
    sb_json_cstr(b, le->method);
    sb_adds(b, ",\"path\":");
    sb_json_cstr(b, le->path);
    sb_adds(b, ",\"headers\":{");
    {
        const char *p = le->hdrs, *end = le->hdrs + le->hdrs_len;
        bool first = true;
        while (p < end) {
            size_t kl = strlen(p);
            const char *val = p + kl + 1;
            size_t vl = strlen(val);
            if (!first)
                sb_addc(b, ',');
            first = false;
            sb_json_str(b, p, kl);
            sb_addc(b, ':');
            sb_json_str(b, val, vl);
            p = val + vl + 1;
        }
    }
    sb_adds(b, "},\"body\":");
    if (!le->body_len) {
        sb_adds(b, "null");
    } else if (le->body_is_json) {
        if (memchr(le->body, '\n', le->body_len) || memchr(le->body, '\r', le->body_len)) {
            json_t *j = json_loadb(le->body, le->body_len, JSON_DECODE_ANY, NULL);
            if (j) {
                sb_json_value(b, j);
                json_decref(j);
            } else {
                sb_json_str(b, le->body, le->body_len);
            }
        } else {
            sb_add(b, le->body, le->body_len);
        }
    } else {
        sb_json_str(b, le->body, le->body_len);
    }
    sb_adds(b, ",\"model\":");
    sb_json_cstr(b, le->model);
    sb_printf(b, ",\"stream\":%s,\"status\":", le->stream ? "true" : "false");
    if (le->status)
        sb_printf(b, "%d", le->status);
    else
        sb_adds(b, "null");
    sb_printf(b, ",\"outcome\":\"%s\",\"sent_bytes\":%" PRIu64 ",\"sent_sha256\":",
              outcome_names[le->outcome], le->sent_bytes);
    if (le->has_sha) {
        char hx[65];
        hex32(le->sha, hx);
        sb_printf(b, "\"%s\"", hx);
    } else {
        sb_adds(b, "null");
    }
    sb_printf(b, ",\"conn_id\":%" PRIu64 ",\"endpoint\":\"%s\",\"deployment\":", le->conn_id,
              le->endpoint);
    sb_json_cstr(b, le->deployment);
    sb_printf(b, ",\"behaviour_source\":\"%s\",\"behaviour_id\":", le->source);
    sb_json_cstr(b, le->label);
    sb_adds(b, ",\"rule_index\":");
    if (le->rule_index >= 0)
        sb_printf(b, "%d", le->rule_index);
    else
        sb_adds(b, "null");
    sb_printf(b, ",\"chunks_sent\":%d}", le->chunks_sent);
}

static lblock_t *lblock_get(void)
{
    lblock_t *b = G.lpool;
    if (b) {
        G.lpool = b->next;
        G.lpool_n--;
    } else {
        void *m = mmap(NULL, LBLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "mock: out of memory (mmap)\n");
            abort();
        }
        b = m;
    }
    b->next = NULL;
    b->used = 0;
    b->live = 0;
    return b;
}

static void lblock_put(lblock_t *b)
{
    if (G.lpool_n < LBLOCK_POOL) {
        b->next = G.lpool;
        G.lpool = b;
        G.lpool_n++;
    } else {
        munmap(b, LBLOCK_SIZE);
    }
}

/* Allocate a log entry of n bytes (arena, or heap when too big). */
static log_entry_t *lentry_alloc(size_t n)
{
    size_t a = (n + 15) & ~(size_t)15;
    if (a > LBLOCK_SIZE - LBLOCK_HDR) {
        log_entry_t *le = xmalloc(n);
        memset(le, 0, sizeof *le);
        return le;
    }
    lblock_t *b = G.lcur;
    if (!b || b->used + a > LBLOCK_SIZE - LBLOCK_HDR) {
        if (b && b->live == 0) {
            b->used = 0;
        } else {
            b = lblock_get(); /* the old block is released when its last entry goes */
            G.lcur = b;
        }
    }
    log_entry_t *le = (log_entry_t *)((char *)b + LBLOCK_HDR + b->used);
    b->used += a;
    b->live++;
    memset(le, 0, sizeof *le);
    le->blk = b;
    return le;
}

static void lblock_release(lblock_t *b)
{
    if (--b->live == 0) {
        if (b == G.lcur)
            b->used = 0;
        else
            lblock_put(b);
    }
}

#define LE_REBASE(n, o, f)                                   \
    do {                                                     \
        if ((o)->f)                                          \
            (n)->f = (char *)(n) + ((o)->f - (char *)(o));   \
    } while (0)

struct rs;
static void rs_set_le(struct rs *rs, log_entry_t *le);

static void ring_evict_oldest(void)
{
    log_entry_t *le = G.ring[G.ring_head];
    G.ring[G.ring_head] = NULL;
    G.ring_head = (G.ring_head + 1) % G.ring_cap;
    G.ring_count--;
    G.ring_bytes -= le->mem;
    le->in_ring = false;
    if (le->blk) {
        lblock_t *b = le->blk;
        if (le->active) { /* still being written by its request: move to heap */
            log_entry_t *n = xmalloc(le->mem);
            memcpy(n, le, le->mem);
            LE_REBASE(n, le, path);
            LE_REBASE(n, le, hdrs);
            LE_REBASE(n, le, body);
            LE_REBASE(n, le, model);
            LE_REBASE(n, le, label);
            LE_REBASE(n, le, deployment);
            n->blk = NULL;
            rs_set_le(n->owner, n);
        }
        lblock_release(b);
    } else if (!le->active) {
        free(le);
    }
}

static void ring_push(log_entry_t *le)
{
    while (G.ring_count && (G.ring_count >= G.ring_cap ||
                            G.ring_bytes + le->mem > G.ring_max_bytes))
        ring_evict_oldest();
    G.ring[(G.ring_head + G.ring_count) % G.ring_cap] = le;
    G.ring_count++;
    G.ring_bytes += le->mem;
    le->in_ring = true;
}

static void ring_clear(void)
{
    while (G.ring_count)
        ring_evict_oldest();
    G.ring_head = 0;
}

/* ------------------------------------------------------------------ */
/* connection tracking                                                 */
/* ------------------------------------------------------------------ */

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static void conn_hash_insert(conn_t *c)
{
    if (G.nconns + 1 > G.nbuckets) {
        size_t nb = G.nbuckets ? G.nbuckets * 2 : 1024;
        conn_t **nbk = xcalloc(nb, sizeof *nbk);
        for (size_t i = 0; i < G.nbuckets; i++) {
            conn_t *x = G.buckets[i];
            while (x) {
                conn_t *nx = x->hnext;
                size_t h = ptr_hash(x->evcon) & (nb - 1);
                x->hnext = nbk[h];
                nbk[h] = x;
                x = nx;
            }
        }
        free(G.buckets);
        G.buckets = nbk;
        G.nbuckets = nb;
    }
    size_t h = ptr_hash(c->evcon) & (G.nbuckets - 1);
    c->hnext = G.buckets[h];
    G.buckets[h] = c;
    G.nconns++;
}

static conn_t *conn_hash_find(struct evhttp_connection *evcon)
{
    if (!G.nbuckets)
        return NULL;
    for (conn_t *c = G.buckets[ptr_hash(evcon) & (G.nbuckets - 1)]; c; c = c->hnext)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static void conn_hash_remove(conn_t *c)
{
    if (!G.nbuckets || !c->evcon)
        return;
    conn_t **pp = &G.buckets[ptr_hash(c->evcon) & (G.nbuckets - 1)];
    while (*pp) {
        if (*pp == c) {
            *pp = c->hnext;
            G.nconns--;
            return;
        }
        pp = &(*pp)->hnext;
    }
}

static void rs_finish(rs_t *rs);

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    conn_t *c = arg;
    /* never call us again for this evcon (reset_ + later free paths) */
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    rs_t *rs = c->cur;
    if (rs) {
        struct evhttp_request *req = rs->req;
        bool detached = evhttp_request_get_connection(req) == NULL;
        if (rs->outcome == OC_IN_PROGRESS)
            rs->outcome = G.shutting_down ? OC_SHUTDOWN
                          : rs->hanging   ? OC_HANG_CLOSED
                                          : OC_CLIENT_CLOSED;
        rs_finish(rs);
        /* evhttp detached the unfinished request from the dying connection;
         * it is ours to free now. Attached requests are freed by evhttp. */
        if (detached)
            evhttp_request_free(req);
    }
    conn_hash_remove(c);
    G.open_all--;
    if (c->provider)
        G.open_connections--;
    free(c);
}

static void conn_register(conn_t *c, struct evhttp_connection *evcon)
{
    c->evcon = evcon;
    evhttp_connection_set_closecb(evcon, on_conn_close, c);
    conn_hash_insert(c);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static void pending_process(void)
{
    while (G.pending) {
        conn_t *c = G.pending;
        G.pending = c->pnext;
        c->pnext = NULL;
        bufferevent_data_cb r, w;
        bufferevent_event_cb e;
        void *arg = NULL;
        bufferevent_getcb(c->bev, &r, &w, &e, &arg);
        if (!arg) { /* should not happen: evhttp always sets its evcon as cbarg */
            G.open_all--;
            free(c);
            continue;
        }
        conn_register(c, arg);
    }
}

static void on_pending(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    pending_process();
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    (void)arg;
    struct bufferevent *bev;
    if (G.ssl_ctx) {
        SSL *ssl = SSL_new(G.ssl_ctx);
        if (!ssl)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
            SSL_free(ssl);
            return NULL;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, 0);
        if (!bev)
            return NULL;
    }
    conn_t *c = xcalloc(1, sizeof *c);
    c->bev = bev;
    c->id = ++G.conn_id_next;
    c->pnext = G.pending;
    G.pending = c;
    G.accepted_total++;
    G.open_all++;
    event_active(G.pending_ev, EV_TIMEOUT, 0);
    return bev;
}

static conn_t *conn_for_request(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (G.pending)
        pending_process();
    conn_t *c = conn_hash_find(evcon);
    if (!c) { /* fallback; should not happen */
        c = xcalloc(1, sizeof *c);
        c->bev = evhttp_connection_get_bufferevent(evcon);
        c->id = ++G.conn_id_next;
        G.accepted_total++;
        G.open_all++;
        conn_register(c, evcon);
    }
    if (!c->provider) {
        c->provider = true;
        G.open_connections++;
    }
    if (c->epoch != G.epoch + 1) { /* first provider request since the last reset */
        c->epoch = G.epoch + 1;
        G.connections_total++;
    }
    return c;
}

/* Let evhttp notice the peer closing while we hold an unanswered request.
 * evhttp disables EV_READ before calling the request callback; we re-enable
 * it with a NULL read callback (as evhttp_write_buffer does), keeping
 * evhttp's own write/event callbacks. */
static void enable_close_detect(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    void *arg;
    bufferevent_getcb(bev, &r, &w, &e, &arg);
    bufferevent_setcb(bev, NULL, w, e, arg);
    bufferevent_enable(bev, EV_READ);
}

/* ------------------------------------------------------------------ */
/* request state / output                                              */
/* ------------------------------------------------------------------ */

static void rs_set_le(rs_t *rs, log_entry_t *le) { rs->le = le; }

static void rs_finish(rs_t *rs)
{
    event_del(&rs->timer);
    log_entry_t *le = rs->le;
    le->t_end = now_ms();
    le->outcome = rs->outcome;
    le->status = rs->status;
    le->sent_bytes = rs->sent_bytes;
    mg_sha256_final(&rs->sha, le->sha);
    le->has_sha = true;
    le->chunks_sent = rs->sent;
    le->active = false;
    if (G.logf || G.verbose) {
        sb_t b = {0};
        log_entry_json(&b, le);
        if (G.logf) {
            sb_addc(&b, '\n');
            fwrite(b.p, 1, b.n, G.logf);
            fflush(G.logf);
        }
        if (G.verbose)
            fprintf(stderr, "mock: #%" PRIu64 " %s %s -> %d %s (%" PRId64 " ms)\n", le->seq,
                    le->method, le->path, le->status, outcome_names[le->outcome],
                    le->t_end - le->t_start);
        sb_free(&b);
    }
    le->owner = NULL;
    if (!le->in_ring) /* evicted while active: always a heap copy by now */
        free(le);
    G.in_progress--;
    if (rs->conn && rs->conn->cur == rs)
        rs->conn->cur = NULL;
    behaviour_release(&rs->b);
    if (rs->body)
        json_decref(rs->body);
    free(rs->model);
    free(rs->deployment);
    free(rs->resp_id);
    free(rs->content);
    free(rs->offs);
    sb_free(&rs->prefix);
    sb_free(&rs->pend);
    free(rs);
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    (void)req;
    rs_t *rs = arg;
    if (rs->outcome == OC_IN_PROGRESS)
        rs->outcome = OC_COMPLETE;
    rs_finish(rs);
}

static void rs_add_headers(rs_t *rs, const char *ctype)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(rs->req);
    char tmp[64];
    evhttp_add_header(oh, "Content-Type", ctype);
    snprintf(tmp, sizeof tmp, "req_mock_%" PRIu64, rs->seq);
    evhttp_add_header(oh, "x-request-id", tmp);
    if (rs->b.retry_after) {
        if (json_is_string(rs->b.retry_after))
            snprintf(tmp, sizeof tmp, "%s", json_string_value(rs->b.retry_after));
        else if (json_is_integer(rs->b.retry_after))
            snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(rs->b.retry_after));
        else
            snprintf(tmp, sizeof tmp, "%g", json_number_value(rs->b.retry_after));
        evhttp_add_header(oh, "Retry-After", tmp);
    }
    if (rs->b.close_after_response)
        evhttp_add_header(oh, "Connection", "close");
    if (rs->b.headers) {
        const char *k;
        json_t *v;
        json_object_foreach(rs->b.headers, k, v)
        {
            evhttp_remove_header(oh, k);
            evhttp_add_header(oh, k, json_string_value(v));
        }
    }
}

static void free_cleanup(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Move the contents of sb into G.tmp without copying (sb is reset). */
static void tmp_take_sb(sb_t *b)
{
    if (b->n)
        evbuffer_add_reference(G.tmp, b->p, b->n, free_cleanup, NULL);
    else
        free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static void rs_account(rs_t *rs, const void *d, size_t n)
{
    if (rs->is_head)
        return;
    mg_sha256_update(&rs->sha, d, n);
    rs->sent_bytes += n;
    rs->le->sent_bytes = rs->sent_bytes;
}

static void rs_set_status(rs_t *rs, int status)
{
    rs->status = status;
    rs->le->status = status;
}

/* Send a complete (Content-Length) response. rs may be freed afterwards. */
static void rs_send_full(rs_t *rs, int status, const char *ctype, const char *data, size_t len)
{
    rs_add_headers(rs, ctype);
    rs_account(rs, data, len);
    rs_set_status(rs, status);
    evbuffer_add(G.tmp, data, len);
    evhttp_request_set_on_complete_cb(rs->req, on_complete, rs);
    evhttp_send_reply(rs->req, status, NULL, G.tmp);
    evbuffer_drain(G.tmp, evbuffer_get_length(G.tmp));
}

/* Like rs_send_full, but takes ownership of the sb buffer (zero copy). */
static void rs_send_sb(rs_t *rs, int status, const char *ctype, sb_t *b)
{
    rs_add_headers(rs, ctype);
    rs_account(rs, b->p, b->n);
    rs_set_status(rs, status);
    tmp_take_sb(b);
    evhttp_request_set_on_complete_cb(rs->req, on_complete, rs);
    evhttp_send_reply(rs->req, status, NULL, G.tmp);
    evbuffer_drain(G.tmp, evbuffer_get_length(G.tmp));
}

static void rs_stream_start(rs_t *rs, const char *ctype)
{
    rs_add_headers(rs, ctype);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(rs->req);
    if (!evhttp_find_header(oh, "Cache-Control"))
        evhttp_add_header(oh, "Cache-Control", "no-cache");
    rs_set_status(rs, 200);
    rs->started = true;
    evhttp_request_set_on_complete_cb(rs->req, on_complete, rs);
    evhttp_send_reply_start(rs->req, 200, NULL);
}

/* Queue SSE bytes; everything emitted in the same event-loop tick goes out
 * as one HTTP chunk (rs_stream_flush). Frees b. */
static void rs_stream_write(rs_t *rs, sb_t *b)
{
    if (b->n) {
        rs_account(rs, b->p, b->n);
        if (!rs->pend.n) { /* common case: adopt the buffer */
            sb_free(&rs->pend);
            rs->pend = *b;
            b->p = NULL;
            b->n = b->cap = 0;
            return;
        }
        sb_add(&rs->pend, b->p, b->n);
    }
    sb_free(b);
}

static void rs_stream_flush(rs_t *rs)
{
    if (!rs->pend.n)
        return;
    tmp_take_sb(&rs->pend);
    evhttp_send_reply_chunk(rs->req, G.tmp);
    evbuffer_drain(G.tmp, evbuffer_get_length(G.tmp));
}

static void rs_schedule(rs_t *rs, int action, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    rs->action = action;
    evtimer_add(&rs->timer, &tv);
}

/* Abort the connection with a TCP RST. Ends in on_conn_close -> rs_finish. */
static void rs_do_reset(rs_t *rs)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(rs->req);
    if (!evcon)
        return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        /* Close the socket (RST because of linger 0) while keeping the fd
         * number owned by libevent: it now refers to /dev/null, which
         * libevent will close itself. No fd-reuse races. */
        dup2(G.devnull, fd);
    }
    rs->outcome = OC_RESET;
    evhttp_connection_free(evcon);
}

static void rs_reset_when_flushed(rs_t *rs)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(rs->req);
    if (evcon) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
            rs_schedule(rs, ACT_RESET_WAIT, 1);
            return;
        }
    }
    rs_do_reset(rs);
}

/* --- error bodies --- */

static void rs_send_error(rs_t *rs, int status, const char *message, const char *type,
                          const json_t *code, const char *code_str, const char *param)
{
    sb_t b = {0};
    sb_adds(&b, "{\"error\":{\"message\":");
    sb_json_cstr(&b, message);
    sb_adds(&b, ",\"type\":");
    sb_json_cstr(&b, type);
    sb_adds(&b, ",\"param\":");
    sb_json_cstr(&b, param);
    sb_adds(&b, ",\"code\":");
    if (code)
        sb_json_value(&b, code);
    else
        sb_json_cstr(&b, code_str);
    sb_adds(&b, "}}");
    rs_send_sb(rs, status, "application/json", &b);
}

static void rs_send_behaviour_error(rs_t *rs)
{
    const behaviour_t *bh = &rs->b;
    int st = bh->status;
    const char *msg, *type, *code = NULL, *param = NULL;
    char mbuf[512];
    const char *ecode = (bh->has_error_code && json_is_string(bh->error_code))
                            ? json_string_value(bh->error_code)
                            : NULL;
    switch (st) {
    case 400:
        type = "invalid_request_error";
        msg = "Invalid request (mock).";
        if (ecode && !strcmp(ecode, "context_length_exceeded")) {
            msg = "This model's maximum context length is 8192 tokens. However, your messages "
                  "resulted in 9000 tokens. Please reduce the length of the messages.";
            param = "messages";
        }
        break;
    case 401:
        type = "invalid_request_error";
        code = "invalid_api_key";
        msg = "Incorrect API key provided. You can find your API key at "
              "https://platform.openai.com/account/api-keys.";
        break;
    case 403:
        type = "invalid_request_error";
        code = "permission_denied";
        msg = "You are not allowed to access this resource.";
        break;
    case 404:
        type = "invalid_request_error";
        code = "model_not_found";
        snprintf(mbuf, sizeof mbuf,
                 "The model `%s` does not exist or you do not have access to it.", rs->model);
        msg = mbuf;
        break;
    case 408:
        type = "timeout_error";
        msg = "Request timed out.";
        break;
    case 429:
        type = "rate_limit_error";
        code = "rate_limit_exceeded";
        snprintf(mbuf, sizeof mbuf,
                 "Rate limit reached for %s (mock). Please try again in a moment.", rs->model);
        msg = mbuf;
        break;
    case 500:
        type = "server_error";
        code = "server_error";
        msg = "The server had an error while processing your request. Sorry about that!";
        break;
    case 502:
        type = "server_error";
        msg = "Bad gateway.";
        break;
    case 503:
        type = "server_error";
        code = "service_unavailable";
        msg = "The engine is currently overloaded, please try again later.";
        break;
    case 504:
        type = "server_error";
        msg = "Gateway timeout.";
        break;
    default:
        type = st >= 500 ? "server_error" : "invalid_request_error";
        snprintf(mbuf, sizeof mbuf, "Mock error with HTTP status %d.", st);
        msg = mbuf;
        break;
    }
    if (bh->error_message)
        msg = bh->error_message;
    if (bh->error_type)
        type = bh->error_type;
    rs_send_error(rs, st, msg, type, bh->has_error_code ? bh->error_code : NULL, code, param);
}

/* --- content / chunking --- */

static void rs_prepare_content(rs_t *rs, bool split)
{
    const behaviour_t *b = &rs->b;
    sb_t c = {0};
    if (b->content) {
        sb_add(&c, b->content, b->content_len);
    } else {
        sb_adds(&c, "mock reply from ");
        sb_adds(&c, rs->model);
        int w = count_words(c.p, c.n);
        for (int i = w + 1; i <= b->chunks; i++)
            sb_printf(&c, " %d", i);
    }
    if (!c.p)
        sb_add(&c, "", 0);
    rs->content = c.p;
    rs->content_len = c.n;

    if (b->frames) {
        rs->nchunks = (int)json_array_size(b->frames);
        return;
    }
    if (!split)
        return;
    const char *s = rs->content;
    size_t n = rs->content_len;
    int words = count_words(s, n);
    int nch = b->chunks >= 0 ? b->chunks : (words > 0 ? words : 1);
    rs->nchunks = nch;
    rs->offs = xcalloc((size_t)nch + 1, sizeof(size_t));
    if (nch == 0)
        return;
    if (nch == words) {
        /* chunk k = word k plus the whitespace that follows it; leading
         * whitespace belongs to the first chunk */
        int k = 0;
        bool in = false;
        for (size_t i = 0; i < n; i++) {
            bool sp = isspace((unsigned char)s[i]) != 0;
            if (!sp && !in) {
                if (k > 0)
                    rs->offs[k] = i;
                k++;
            }
            in = !sp;
        }
        rs->offs[0] = 0;
        rs->offs[nch] = n;
    } else {
        /* even split by code points */
        size_t cps = 0;
        for (size_t i = 0; i < n; i++)
            if (((unsigned char)s[i] & 0xC0) != 0x80)
                cps++;
        size_t cp = 0;
        int k = 1;
        rs->offs[0] = 0;
        for (size_t i = 0; i < n && k < nch; i++) {
            if (((unsigned char)s[i] & 0xC0) == 0x80)
                continue;
            while (k < nch && (size_t)k * cps / (size_t)nch == cp) {
                rs->offs[k] = i;
                k++;
            }
            cp++;
        }
        while (k <= nch)
            rs->offs[k++] = n;
    }
}

static void usage_json(sb_t *b, rs_t *rs)
{
    long long pt = (long long)(rs->body_len / 4);
    if (pt < 1)
        pt = 1;
    long long ct = count_words(rs->content, rs->content_len);
    long long tt = -1;
    if (rs->b.usage) {
        json_t *v;
        if ((v = json_object_get(rs->b.usage, "prompt_tokens")) && json_is_integer(v))
            pt = json_integer_value(v);
        if ((v = json_object_get(rs->b.usage, "completion_tokens")) && json_is_integer(v))
            ct = json_integer_value(v);
        if ((v = json_object_get(rs->b.usage, "total_tokens")) && json_is_integer(v))
            tt = json_integer_value(v);
    }
    if (tt < 0)
        tt = pt + ct;
    sb_printf(b, "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld", pt,
              ct, tt);
    /* OpenAI's detail objects (cached_tokens, reasoning_tokens, ...), as scripted */
    static const char *const details[] = {"prompt_tokens_details", "completion_tokens_details"};
    for (int i = 0; i < 2 && rs->b.usage; i++) {
        json_t *d = json_object_get(rs->b.usage, details[i]);
        if (json_is_object(d)) {
            char *txt = json_dumps(d, JSON_COMPACT);
            sb_printf(b, ",\"%s\":%s", details[i], txt);
            free(txt);
        }
    }
    sb_adds(b, "}");
}

static const char *rs_finish_reason(rs_t *rs)
{
    return rs->b.finish_reason ? rs->b.finish_reason : "stop";
}

/* JSON prefix shared by every chunk of a stream, up to and including the
 * comma before "choices". */
static void rs_build_prefix(rs_t *rs)
{
    sb_t *p = &rs->prefix;
    p->n = 0;
    sb_adds(p, "{\"id\":");
    sb_json_cstr(p, rs->resp_id);
    sb_printf(p, ",\"object\":\"%s\",\"created\":%lld,\"model\":",
              rs->ep == EP_CHAT ? "chat.completion.chunk" : "text_completion", rs->created);
    sb_json_cstr(p, rs->model);
    sb_addc(p, ',');
}

static void frame_begin(sb_t *b, rs_t *rs)
{
    sb_adds(b, "data: ");
    sb_add(b, rs->prefix.p, rs->prefix.n);
}

static void rs_send_content_chunk(rs_t *rs, int k)
{
    sb_t b = {0};
    if (rs->b.frames) {
        json_t *f = json_array_get(rs->b.frames, (size_t)k);
        sb_adds(&b, "data: ");
        if (json_is_string(f))
            sb_add(&b, json_string_value(f), json_string_length(f));
        else
            sb_json_value(&b, f);
        sb_adds(&b, "\n\n");
    } else {
        const char *piece = rs->content + rs->offs[k];
        size_t plen = rs->offs[k + 1] - rs->offs[k];
        frame_begin(&b, rs);
        if (rs->ep == EP_CHAT) {
            sb_adds(&b, "\"choices\":[{\"index\":0,\"delta\":{\"content\":");
            sb_json_str(&b, piece, plen);
            sb_adds(&b, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        } else {
            sb_adds(&b, "\"choices\":[{\"text\":");
            sb_json_str(&b, piece, plen);
            sb_adds(&b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        }
    }
    rs_stream_write(rs, &b);
}

static void rs_stream_finish(rs_t *rs)
{
    sb_t b = {0};
    if (rs->b.frames) {
        if (rs->b.done)
            sb_adds(&b, "data: [DONE]\n\n");
    } else {
        frame_begin(&b, rs);
        if (rs->ep == EP_CHAT)
            sb_adds(&b, "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":");
        else
            sb_adds(&b, "\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":");
        sb_json_cstr(&b, rs_finish_reason(rs));
        sb_adds(&b, "}]}\n\n");
        if (rs->include_usage) {
            frame_begin(&b, rs);
            sb_adds(&b, "\"choices\":[],\"usage\":");
            usage_json(&b, rs);
            sb_adds(&b, "}\n\n");
        }
        if (rs->b.done)
            sb_adds(&b, "data: [DONE]\n\n");
    }
    rs_stream_write(rs, &b);
    rs_stream_flush(rs);
    evhttp_send_reply_end(rs->req); /* may complete synchronously: rs gone */
}

/* Drive a stream forward: send everything that is due now, then arm the
 * timer for the next step. */
static void rs_pump(rs_t *rs)
{
    for (;;) {
        const behaviour_t *b = &rs->b;
        enum { N_CHUNK, N_RESET, N_HANG, N_FINISH } next;
        if (b->reset_after_chunks >= 0 && rs->sent == b->reset_after_chunks)
            next = N_RESET;
        else if (b->hang_after_chunks >= 0 && rs->sent == b->hang_after_chunks)
            next = N_HANG;
        else if (rs->sent >= rs->nchunks)
            next = N_FINISH;
        else
            next = N_CHUNK;
        if (next == N_HANG) {
            rs->hanging = true;
            rs_stream_flush(rs);
            return;
        }
        if (next == N_FINISH) {
            rs_stream_finish(rs);
            return;
        }
        if (!rs->waited) {
            int d = rs->sent == 0 ? b->first_chunk_delay_ms : b->chunk_interval_ms;
            if (d > 0) {
                rs->waited = true;
                rs_stream_flush(rs);
                rs_schedule(rs, ACT_PUMP, d);
                return;
            }
        }
        rs->waited = false;
        if (next == N_RESET) {
            rs_stream_flush(rs);
            rs_reset_when_flushed(rs);
            return;
        }
        rs_send_content_chunk(rs, rs->sent);
        rs->sent++;
        rs->le->chunks_sent = rs->sent;
    }
}

static void rs_stream(rs_t *rs)
{
    rs_prepare_content(rs, true);
    rs_build_prefix(rs);
    rs_stream_start(rs, "text/event-stream");
    if (rs->b.malformed) {
        sb_t b = {0};
        frame_begin(&b, rs);
        sb_adds(&b, "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mo\n\ndata: [DONE]\n\n");
        rs_stream_write(rs, &b);
        rs_stream_flush(rs);
        evhttp_send_reply_end(rs->req);
        return;
    }
    if (!rs->b.frames && rs->ep == EP_CHAT) {
        sb_t b = {0};
        frame_begin(&b, rs);
        sb_adds(&b, "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                    "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        rs_stream_write(rs, &b);
    }
    rs_pump(rs);
}

/* --- endpoint responses --- */

static bool method_is(struct evhttp_request *req, enum evhttp_cmd_type t)
{
    return evhttp_request_get_command(req) == t;
}

static void rs_send_malformed(rs_t *rs, const char *obj)
{
    sb_t b = {0};
    sb_adds(&b, "{\"id\":");
    sb_json_cstr(&b, rs->resp_id);
    sb_printf(&b, ",\"object\":\"%s\",\"choices\":[{\"index\":0,\"message\":{\"content\":\"mock", obj);
    rs_send_sb(rs, rs->b.status, "application/json", &b);
}

static void rs_respond_completion(rs_t *rs)
{
    if (!method_is(rs->req, EVHTTP_REQ_POST)) {
        rs_send_error(rs, 405, "Method not allowed (mock): use POST.", "invalid_request_error",
                      NULL, NULL, NULL);
        return;
    }
    if (!rs->body_object) {
        rs_send_error(rs, 400,
                      "We could not parse the JSON body of your request. (mock: body must be a "
                      "JSON object)",
                      "invalid_request_error", NULL, NULL, NULL);
        return;
    }
    if (rs->b.malformed && !rs->stream) {
        rs_send_malformed(rs, rs->ep == EP_CHAT ? "chat.completion" : "text_completion");
        return;
    }
    if (rs->stream) {
        rs_stream(rs);
        return;
    }
    rs_prepare_content(rs, false);
    sb_t b = {0};
    sb_adds(&b, "{\"id\":");
    sb_json_cstr(&b, rs->resp_id);
    sb_printf(&b, ",\"object\":\"%s\",\"created\":%lld,\"model\":",
              rs->ep == EP_CHAT ? "chat.completion" : "text_completion", rs->created);
    sb_json_cstr(&b, rs->model);
    if (rs->ep == EP_CHAT) {
        sb_adds(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        sb_json_str(&b, rs->content, rs->content_len);
        sb_adds(&b, "},\"logprobs\":null,\"finish_reason\":");
    } else {
        sb_adds(&b, ",\"choices\":[{\"text\":");
        sb_json_str(&b, rs->content, rs->content_len);
        sb_adds(&b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    }
    sb_json_cstr(&b, rs_finish_reason(rs));
    sb_adds(&b, "}],\"usage\":");
    usage_json(&b, rs);
    sb_addc(&b, '}');
    rs_send_sb(rs, 200, "application/json", &b);
}

static void embedding_item(sb_t *b, const void *seed, size_t seedlen, int dims, bool b64, int idx)
{
    uint64_t st = fnv1a64(seed, seedlen);
    sb_printf(b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", idx ? "," : "", idx);
    float stackv[64];
    float *vals = dims <= 64 ? stackv : xmalloc(sizeof(float) * (size_t)dims);
    for (int i = 0; i < dims; i++) {
        double u = (double)(splitmix64(&st) >> 11) * (1.0 / 9007199254740992.0);
        vals[i] = (float)(round((u * 2.0 - 1.0) * 1e6) / 1e6);
    }
    if (b64) {
        unsigned char *raw = xmalloc(sizeof(float) * (size_t)dims);
        for (int i = 0; i < dims; i++) {
            uint32_t w;
            memcpy(&w, &vals[i], 4);
            raw[4 * i] = (unsigned char)w;
            raw[4 * i + 1] = (unsigned char)(w >> 8);
            raw[4 * i + 2] = (unsigned char)(w >> 16);
            raw[4 * i + 3] = (unsigned char)(w >> 24);
        }
        sb_addc(b, '"');
        base64_enc(b, raw, sizeof(float) * (size_t)dims);
        sb_addc(b, '"');
        free(raw);
    } else {
        sb_addc(b, '[');
        for (int i = 0; i < dims; i++)
            sb_printf(b, "%s%.6f", i ? "," : "", (double)vals[i]);
        sb_addc(b, ']');
    }
    sb_addc(b, '}');
    if (vals != stackv)
        free(vals);
}

static void rs_respond_embeddings(rs_t *rs)
{
    if (!method_is(rs->req, EVHTTP_REQ_POST)) {
        rs_send_error(rs, 405, "Method not allowed (mock): use POST.", "invalid_request_error",
                      NULL, NULL, NULL);
        return;
    }
    if (rs->body_object && !rs->body)
        rs->body = json_loadb(rs->le->body, rs->le->body_len, 0, NULL);
    json_t *input = json_is_object(rs->body) ? json_object_get(rs->body, "input") : NULL;
    if (!input || (!json_is_string(input) && !json_is_array(input)) ||
        (json_is_array(input) && json_array_size(input) == 0)) {
        rs_send_error(rs, 400, "'input' is a required property (mock: string or non-empty array)",
                      "invalid_request_error", NULL, NULL, "input");
        return;
    }
    if (rs->b.malformed) {
        sb_t b = {0};
        sb_adds(&b, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"embedding\":[0.1");
        rs_send_sb(rs, rs->b.status, "application/json", &b);
        return;
    }
    int dims = 8;
    json_t *d = json_object_get(rs->body, "dimensions");
    if (json_is_integer(d) && json_integer_value(d) >= 1 && json_integer_value(d) <= 65536)
        dims = (int)json_integer_value(d);
    json_t *ef = json_object_get(rs->body, "encoding_format");
    bool b64 = json_is_string(ef) && !strcmp(json_string_value(ef), "base64");

    sb_t b = {0};
    sb_adds(&b, "{\"object\":\"list\",\"data\":[");
    if (json_is_string(input)) {
        embedding_item(&b, json_string_value(input), json_string_length(input), dims, b64, 0);
    } else {
        bool all_ints = true;
        size_t i;
        json_t *el;
        json_array_foreach(input, i, el) if (!json_is_integer(el)) all_ints = false;
        if (all_ints) { /* a single token array */
            sb_t s = {0};
            sb_json_value(&s, input);
            embedding_item(&b, s.p, s.n, dims, b64, 0);
            sb_free(&s);
        } else {
            json_array_foreach(input, i, el)
            {
                if (json_is_string(el)) {
                    embedding_item(&b, json_string_value(el), json_string_length(el), dims, b64,
                                   (int)i);
                } else {
                    sb_t s = {0};
                    sb_json_value(&s, el);
                    embedding_item(&b, s.p, s.n, dims, b64, (int)i);
                    sb_free(&s);
                }
            }
        }
    }
    long long pt = (long long)(rs->body_len / 4);
    if (pt < 1)
        pt = 1;
    if (rs->b.usage) {
        json_t *v = json_object_get(rs->b.usage, "prompt_tokens");
        if (json_is_integer(v))
            pt = json_integer_value(v);
    }
    sb_adds(&b, "],\"model\":");
    sb_json_cstr(&b, rs->model);
    sb_printf(&b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", pt, pt);
    rs_send_sb(rs, 200, "application/json", &b);
}

static void model_obj(sb_t *b, const char *id)
{
    sb_adds(b, "{\"id\":");
    sb_json_cstr(b, id);
    sb_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"mock\"}", MODELS_CREATED);
}

static void rs_respond_models(rs_t *rs, const char *path)
{
    sb_t b = {0};
    if (rs->ep == EP_MODEL) {
        const char *id = strrchr(path, '/') + 1;
        char *dec = evhttp_uridecode(id, 0, NULL);
        model_obj(&b, dec ? dec : id);
        free(dec);
    } else {
        sb_adds(&b, "{\"object\":\"list\",\"data\":[");
        for (size_t i = 0; i < G.nmodels; i++) {
            if (i)
                sb_addc(&b, ',');
            model_obj(&b, G.models[i]);
        }
        sb_adds(&b, "]}");
    }
    if (rs->b.malformed)
        b.n = b.n / 2;
    rs_send_sb(rs, rs->b.status, "application/json", &b);
}

/* --- Responses API (POST /v1/responses, stored responses) --- */

#define MOCK_STORED_MAX 10000

static void rs_send_json(rs_t *rs, int status, json_t *j)
{
    sb_t b = {0};
    sb_json_value(&b, j);
    rs_send_sb(rs, status, "application/json", &b);
}

static void rs_send_responses_error(rs_t *rs, int status, const char *msg, const char *param,
                                    const char *code)
{
    rs_send_error(rs, status, msg, "invalid_request_error", NULL, code, param);
}

/* The id named by a stored-response path: the segment after ".../responses/". */
static char *response_path_id(const char *path)
{
    const char *p = strstr(path, "/responses/");
    if (!p)
        return NULL;
    p += 11;
    size_t n = strcspn(p, "/");
    char *raw = xstrndup(p, n);
    char *dec = evhttp_uridecode(raw, 0, NULL);
    if (dec) {
        free(raw);
        return dec;
    }
    return raw;
}

static void store_response(const char *id, json_t *resp, json_t *input)
{
    if (!G.stored) {
        G.stored = json_object();
        G.stored_order = json_array();
    }
    if (json_array_size(G.stored_order) >= MOCK_STORED_MAX) {
        const char *old = json_string_value(json_array_get(G.stored_order, 0));
        json_object_del(G.stored, old);
        json_array_remove(G.stored_order, 0);
    }
    json_object_set_new(G.stored, id, json_pack("{s:O,s:O}", "response", resp, "input", input));
    json_array_append_new(G.stored_order, json_string(id));
}

/* The request's input as stored input items (ids added), new reference. */
static json_t *input_items_of(json_t *body, uint64_t seq)
{
    json_t *in = json_object_get(body, "input");
    json_t *out = json_array();
    if (json_is_string(in)) {
        json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:[{s:s,s:O}]}", "id", "msg_in_0",
                                             "type", "message", "role", "user", "content", "type",
                                             "input_text", "text", in));
    } else if (json_is_array(in)) {
        size_t i;
        json_t *it;
        json_array_foreach(in, i, it)
        {
            json_t *c = json_deep_copy(it);
            if (json_is_object(c) && !json_object_get(c, "id")) {
                char idb[64];
                snprintf(idb, sizeof idb, "item_in_%" PRIu64 "_%zu", seq, i);
                json_object_set_new(c, "id", json_string(idb));
            }
            json_array_append_new(out, c);
        }
    }
    return out;
}

/* The output items: function calls when the behaviour or tool_choice asks for them,
 * else one message with the content. */
static json_t *responses_output(rs_t *rs, json_t *body)
{
    json_t *out = json_array();
    json_t *calls = rs->b.function_calls ? json_incref(rs->b.function_calls) : NULL;
    json_t *tc = json_object_get(body, "tool_choice");
    json_t *tools = json_object_get(body, "tools");
    if (!calls && json_array_size(tools) > 0 &&
        ((json_is_string(tc) && !strcmp(json_string_value(tc), "required")) ||
         json_is_object(tc))) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (!name)
            name = json_string_value(json_object_get(json_array_get(tools, 0), "name"));
        calls = json_pack("[{s:s,s:s}]", "name", name ? name : "tool", "arguments", "{}");
    }
    if (calls) {
        size_t i;
        json_t *fc;
        json_array_foreach(calls, i, fc)
        {
            json_t *args = json_object_get(fc, "arguments");
            char *as = json_is_string(args) ? xstrdup(json_string_value(args))
                       : args               ? json_dumps(args, JSON_COMPACT)
                                            : xstrdup("{}");
            char idb[64], cid[64];
            snprintf(idb, sizeof idb, "fc_mock_%" PRIu64 "_%zu", rs->seq, i);
            snprintf(cid, sizeof cid, "call_mock_%" PRIu64 "_%zu", rs->seq, i);
            json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s,s:s,s:O}", "id", idb, "type",
                                                 "function_call", "status", "completed",
                                                 "arguments", as, "call_id", cid, "name",
                                                 json_object_get(fc, "name")));
            free(as);
        }
        json_decref(calls);
        return out;
    }
    char idb[64];
    snprintf(idb, sizeof idb, "msg_mock_%" PRIu64, rs->seq);
    json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s%,s:[],s:[]}]}", "id", idb,
                                         "type", "message", "status", "completed", "role",
                                         "assistant", "content", "type", "output_text", "text",
                                         rs->content, rs->content_len, "annotations", "logprobs"));
    return out;
}

static json_t *responses_usage(rs_t *rs)
{
    long long in = (long long)(rs->body_len / 4);
    if (in < 1)
        in = 1;
    long long out = count_words(rs->content, rs->content_len);
    if (rs->b.usage) {
        json_t *v;
        if ((v = json_object_get(rs->b.usage, "input_tokens")) && json_is_integer(v))
            in = json_integer_value(v);
        if ((v = json_object_get(rs->b.usage, "output_tokens")) && json_is_integer(v))
            out = json_integer_value(v);
    }
    return json_pack("{s:I,s:{s:i},s:I,s:{s:i},s:I}", "input_tokens", (json_int_t)in,
                     "input_tokens_details", "cached_tokens", 0, "output_tokens", (json_int_t)out,
                     "output_tokens_details", "reasoning_tokens", 0, "total_tokens",
                     (json_int_t)(in + out));
}

static void sse_event(sb_t *b, const char *type, json_t *data, int64_t *seq)
{
    json_object_set_new(data, "type", json_string(type));
    json_object_set_new(data, "sequence_number", json_integer(*seq));
    (*seq)++;
    sb_printf(b, "event: %s\ndata: ", type);
    sb_json_value(b, data);
    sb_adds(b, "\n\n");
    json_decref(data);
}

/* The documented event sequence of a stream that produced resp (output, usage). */
static void responses_stream(rs_t *rs, json_t *resp)
{
    sb_t b = {0};
    int64_t seq = 0;
    json_t *start = json_deep_copy(resp);
    json_object_set_new(start, "status", json_string("in_progress"));
    json_object_set_new(start, "output", json_array());
    json_object_set_new(start, "usage", json_null());
    sse_event(&b, "response.created", json_pack("{s:O}", "response", start), &seq);
    sse_event(&b, "response.in_progress", json_pack("{s:O}", "response", start), &seq);
    json_decref(start);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(resp, "output"), i, it)
    {
        const char *type = json_string_value(json_object_get(it, "type"));
        json_t *added = json_deep_copy(it);
        json_object_set_new(added, "status", json_string("in_progress"));
        json_t *id = json_object_get(it, "id");
        bool msg = type && !strcmp(type, "message");
        if (msg)
            json_object_set_new(added, "content", json_array());
        else
            json_object_set_new(added, "arguments", json_string(""));
        sse_event(&b, "response.output_item.added",
                  json_pack("{s:i,s:o}", "output_index", (int)i, "item", added), &seq);
        if (msg) {
            const char *text =
                json_string_value(json_object_get(json_array_get(json_object_get(it, "content"), 0),
                                                  "text"));
            sse_event(&b, "response.content_part.added",
                      json_pack("{s:O,s:i,s:i,s:{s:s,s:s,s:[],s:[]}}", "item_id", id,
                                "output_index", (int)i, "content_index", 0, "part", "type",
                                "output_text", "text", "", "annotations", "logprobs"),
                      &seq);
            /* one delta per word, as the chat stream splits its content */
            const char *p = text ? text : "";
            while (*p) {
                const char *q = p;
                while (*q && *q != ' ')
                    q++;
                while (*q == ' ')
                    q++;
                sse_event(&b, "response.output_text.delta",
                          json_pack("{s:O,s:i,s:i,s:s%,s:[]}", "item_id", id, "output_index",
                                    (int)i, "content_index", 0, "delta", p, (size_t)(q - p),
                                    "logprobs"),
                          &seq);
                p = q;
            }
            sse_event(&b, "response.output_text.done",
                      json_pack("{s:O,s:i,s:i,s:s,s:[]}", "item_id", id, "output_index", (int)i,
                                "content_index", 0, "text", text ? text : "", "logprobs"),
                      &seq);
            sse_event(&b, "response.content_part.done",
                      json_pack("{s:O,s:i,s:i,s:O}", "item_id", id, "output_index", (int)i,
                                "content_index", 0, "part",
                                json_array_get(json_object_get(it, "content"), 0)),
                      &seq);
        } else {
            json_t *args = json_object_get(it, "arguments");
            sse_event(&b, "response.function_call_arguments.delta",
                      json_pack("{s:O,s:i,s:O}", "item_id", id, "output_index", (int)i, "delta",
                                args),
                      &seq);
            sse_event(&b, "response.function_call_arguments.done",
                      json_pack("{s:O,s:i,s:O}", "item_id", id, "output_index", (int)i,
                                "arguments", args),
                      &seq);
        }
        sse_event(&b, "response.output_item.done",
                  json_pack("{s:i,s:O}", "output_index", (int)i, "item", it), &seq);
    }
    sse_event(&b, "response.completed", json_pack("{s:O}", "response", resp), &seq);
    rs_send_sb(rs, 200, "text/event-stream", &b);
}

static void rs_respond_responses(rs_t *rs)
{
    if (!method_is(rs->req, EVHTTP_REQ_POST)) {
        rs_send_error(rs, 405, "Method not allowed (mock): use POST.", "invalid_request_error",
                      NULL, NULL, NULL);
        return;
    }
    if (rs->body_object && !rs->body)
        rs->body = json_loadb(rs->le->body, rs->le->body_len, 0, NULL);
    json_t *body = rs->body;
    if (!json_is_object(body)) {
        rs_send_responses_error(rs, 400, "We could not parse the JSON body of your request.",
                                NULL, NULL);
        return;
    }
    const char *prev = json_string_value(json_object_get(body, "previous_response_id"));
    if (prev && !json_object_get(G.stored, prev)) {
        char msg[600];
        snprintf(msg, sizeof msg, "Previous response with id '%.400s' not found.", prev);
        rs_send_responses_error(rs, 400, msg, "previous_response_id",
                                "previous_response_not_found");
        return;
    }
    rs_prepare_content(rs, false);
    char idb[64];
    snprintf(idb, sizeof idb, "resp_mock_%" PRIu64, rs->seq);
    const char *rid = rs->b.response_id ? rs->b.response_id : idb;
    json_t *store = json_object_get(body, "store");
    bool stores = !json_is_false(store);
    json_t *resp = json_pack("{s:s,s:s,s:I,s:s,s:b,s:n,s:n,s:s,s:o,s:b,s:o}", "id", rid, "object",
                             "response", "created_at", (json_int_t)rs->created, "status",
                             "completed", "background",
                             json_is_true(json_object_get(body, "background")), "error",
                             "incomplete_details", "model", rs->model, "output",
                             responses_output(rs, body), "store", stores, "usage",
                             responses_usage(rs));
    static const char *const echo[] = {"instructions", "previous_response_id", "tools",
                                       "tool_choice", "temperature", "top_p", "max_output_tokens",
                                       "text", "reasoning", "metadata", NULL};
    for (const char *const *k = echo; *k; k++) {
        json_t *v = json_object_get(body, *k);
        json_object_set(resp, *k, v ? v : json_null());
    }
    if (stores)
        store_response(rid, resp, input_items_of(body, rs->seq));
    if (rs->stream)
        responses_stream(rs, resp);
    else
        rs_send_json(rs, 200, resp);
    json_decref(resp);
}

static void rs_respond_stored(rs_t *rs, const char *path)
{
    char *id = response_path_id(path);
    json_t *entry = id ? json_object_get(G.stored, id) : NULL;
    if (!entry) {
        char msg[600];
        snprintf(msg, sizeof msg, "Response with id '%.400s' not found.", id ? id : "");
        rs_send_responses_error(rs, 404, msg, NULL, NULL);
        free(id);
        return;
    }
    json_t *resp = json_object_get(entry, "response");
    if (rs->ep == EP_RESPONSE && method_is(rs->req, EVHTTP_REQ_GET)) {
        rs_send_json(rs, 200, resp);
    } else if (rs->ep == EP_RESPONSE && method_is(rs->req, EVHTTP_REQ_DELETE)) {
        json_t *d = json_pack("{s:s,s:s,s:b}", "id", id, "object", "response", "deleted", 1);
        json_object_del(G.stored, id);
        size_t i;
        json_t *v;
        json_array_foreach(G.stored_order, i, v)
        {
            if (!strcmp(json_string_value(v), id)) {
                json_array_remove(G.stored_order, i);
                break;
            }
        }
        rs_send_json(rs, 200, d);
        json_decref(d);
    } else if (rs->ep == EP_RESPONSE_INPUT_ITEMS && method_is(rs->req, EVHTTP_REQ_GET)) {
        struct evkeyvalq q;
        TAILQ_INIT(&q);
        const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(rs->req));
        if (query)
            evhttp_parse_query_str(query, &q);
        const char *order = evhttp_find_header(&q, "order");
        const char *lim = evhttp_find_header(&q, "limit");
        bool asc = order && !strcmp(order, "asc");
        long limit = lim ? strtol(lim, NULL, 10) : 20;
        json_t *in = json_object_get(entry, "input");
        json_t *data = json_array();
        size_t n = json_array_size(in);
        for (size_t k = 0; k < n && (long)json_array_size(data) < limit; k++)
            json_array_append(data, json_array_get(in, asc ? k : n - 1 - k));
        json_t *list = json_pack("{s:s,s:o,s:O,s:O,s:b}", "object", "list", "data", data,
                                 "first_id", json_object_get(json_array_get(data, 0), "id"),
                                 "last_id",
                                 json_object_get(json_array_get(data, json_array_size(data) - 1),
                                                 "id"),
                                 "has_more", (size_t)json_array_size(data) < n);
        evhttp_clear_headers(&q);
        rs_send_json(rs, 200, list);
        json_decref(list);
    } else if (rs->ep == EP_RESPONSE_CANCEL && method_is(rs->req, EVHTTP_REQ_POST)) {
        if (!json_is_true(json_object_get(resp, "background"))) {
            rs_send_responses_error(rs, 400, "Cannot cancel a synchronous response.", NULL, NULL);
        } else {
            json_object_set_new(resp, "status", json_string("cancelled"));
            rs_send_json(rs, 200, resp);
        }
    } else {
        rs_send_error(rs, 405, "Method not allowed (mock).", "invalid_request_error", NULL, NULL,
                      NULL);
    }
    free(id);
}

static void rs_respond(rs_t *rs)
{
    const behaviour_t *b = &rs->b;
    if (b->reset_before_response) {
        rs_do_reset(rs);
        return;
    }
    if (b->body) {
        rs_send_full(rs, b->status, rs->stream ? "text/event-stream" : "application/json", b->body,
                     b->body_len);
        return;
    }
    if (b->status != 200 && !b->malformed) {
        rs_send_behaviour_error(rs);
        return;
    }
    switch (rs->ep) {
    case EP_CHAT:
    case EP_COMPLETIONS:
        rs_respond_completion(rs);
        break;
    case EP_EMBEDDINGS:
        rs_respond_embeddings(rs);
        break;
    case EP_MODELS:
    case EP_MODEL: {
        const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(rs->req));
        rs_respond_models(rs, path ? path : "/");
        break;
    }
    case EP_RESPONSES:
        rs_respond_responses(rs);
        break;
    case EP_RESPONSE:
    case EP_RESPONSE_INPUT_ITEMS:
    case EP_RESPONSE_CANCEL: {
        const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(rs->req));
        rs_respond_stored(rs, path ? path : "/");
        break;
    }
    default:
        rs_send_error(rs, 404, "Unknown path (mock provider).", "invalid_request_error", NULL,
                      "unknown_url", NULL);
        break;
    }
}

static void on_rs_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rs_t *rs = arg;
    switch (rs->action) {
    case ACT_START:
        rs_respond(rs);
        break;
    case ACT_PUMP:
        rs_pump(rs);
        break;
    case ACT_RESET_WAIT:
        rs_reset_when_flushed(rs);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* provider request entry                                              */
/* ------------------------------------------------------------------ */

static const char *method_name(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "OTHER";
}

static int classify(const char *path, char **deployment)
{
    *deployment = NULL;
    /* also Azure's v1 API (/openai/v1/...) and Azure AI model inference (/models/...) */
    if (!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/chat/completions") ||
        !strcmp(path, "/openai/v1/chat/completions") || !strcmp(path, "/models/chat/completions"))
        return EP_CHAT;
    if (!strcmp(path, "/v1/completions") || !strcmp(path, "/completions") ||
        !strcmp(path, "/openai/v1/completions"))
        return EP_COMPLETIONS;
    if (!strcmp(path, "/v1/embeddings") || !strcmp(path, "/embeddings") ||
        !strcmp(path, "/openai/v1/embeddings") || !strcmp(path, "/models/embeddings"))
        return EP_EMBEDDINGS;
    if (!strcmp(path, "/v1/models") || !strcmp(path, "/models"))
        return EP_MODELS;
    if ((!strncmp(path, "/v1/models/", 11) && path[11] && !strchr(path + 11, '/')) ||
        (!strncmp(path, "/models/", 8) && path[8] && !strchr(path + 8, '/')))
        return EP_MODEL;
    static const char *const rp[] = {"/v1/responses", "/responses", "/openai/responses",
                                     "/openai/v1/responses", NULL};
    for (const char *const *r = rp; *r; r++) {
        size_t rl = strlen(*r);
        if (strncmp(path, *r, rl) != 0)
            continue;
        const char *rest = path + rl;
        if (!*rest)
            return EP_RESPONSES;
        if (*rest != '/' || !rest[1])
            continue;
        rest++;
        const char *slash = strchr(rest, '/');
        if (!slash)
            return EP_RESPONSE;
        if (!strcmp(slash, "/input_items"))
            return EP_RESPONSE_INPUT_ITEMS;
        if (!strcmp(slash, "/cancel"))
            return EP_RESPONSE_CANCEL;
    }
    static const char az[] = "/openai/deployments/";
    if (!strncmp(path, az, sizeof az - 1)) {
        const char *dep = path + sizeof az - 1;
        const char *slash = strchr(dep, '/');
        if (slash && slash > dep) {
            int ep = -1;
            if (!strcmp(slash, "/chat/completions"))
                ep = EP_CHAT;
            else if (!strcmp(slash, "/completions"))
                ep = EP_COMPLETIONS;
            else if (!strcmp(slash, "/embeddings"))
                ep = EP_EMBEDDINGS;
            if (ep >= 0) {
                char *raw = xstrndup(dep, (size_t)(slash - dep));
                char *dec = evhttp_uridecode(raw, 0, NULL);
                if (dec) {
                    free(raw);
                    *deployment = dec;
                } else {
                    *deployment = raw;
                }
                return ep;
            }
        }
    }
    return EP_UNKNOWN;
}

static bool header_eq(struct evkeyvalq *h, const char *name, const char *val)
{
    const char *v = evhttp_find_header(h, name);
    return v && !strcmp(v, val);
}

static bool rule_matches(const rule_t *r, rs_t *rs, const char *path, const char *uri)
{
    struct evkeyvalq *ih = evhttp_request_get_input_headers(rs->req);
    if (r->times == 0)
        return false;
    if (r->m_model && strcmp(r->m_model, rs->model))
        return false;
    if (r->m_deployment && (!rs->deployment || strcmp(r->m_deployment, rs->deployment)))
        return false;
    if (r->m_path && strcmp(r->m_path, path) && strcmp(r->m_path, uri))
        return false;
    if (r->m_method && strcasecmp(r->m_method, method_name(rs->req)))
        return false;
    if (r->m_endpoint && strcmp(r->m_endpoint, ep_names[rs->ep]))
        return false;
    if (r->m_stream >= 0 && r->m_stream != (int)rs->stream)
        return false;
    if (r->m_auth && !header_eq(ih, "Authorization", r->m_auth) &&
        !header_eq(ih, "api-key", r->m_auth) && !header_eq(ih, "x-api-key", r->m_auth))
        return false;
    if (r->m_headers) {
        const char *k;
        json_t *v;
        json_object_foreach(r->m_headers, k, v)
        {
            if (!header_eq(ih, k, json_string_value(v)))
                return false;
        }
    }
    return true;
}

static log_entry_t *log_entry_new(rs_t *rs, const char *uri, const char *body, size_t body_len,
                                  bool body_is_json, const char *req_model, const char *source,
                                  int rule_index, uint64_t conn_id, int64_t t_start)
{
    struct evkeyvalq *ih = evhttp_request_get_input_headers(rs->req);
    size_t hl = 0;
    for (struct evkeyval *kv = ih->tqh_first; kv; kv = kv->next.tqe_next)
        hl += strlen(kv->key) + strlen(kv->value) + 2;
    size_t ul = strlen(uri) + 1, ml = req_model ? strlen(req_model) + 1 : 0;
    size_t ll = rs->b.label ? strlen(rs->b.label) + 1 : 0;
    size_t dl = rs->deployment ? strlen(rs->deployment) + 1 : 0;
    size_t total = sizeof(log_entry_t) + ul + hl + body_len + 1 + ml + ll + dl;
    log_entry_t *le = lentry_alloc(total);
    char *p = (char *)(le + 1);
    le->path = p;
    memcpy(p, uri, ul);
    p += ul;
    le->hdrs = p;
    for (struct evkeyval *kv = ih->tqh_first; kv; kv = kv->next.tqe_next) {
        for (const char *k = kv->key; *k; k++)
            *p++ = (char)tolower((unsigned char)*k);
        *p++ = 0;
        size_t vl = strlen(kv->value) + 1;
        memcpy(p, kv->value, vl);
        p += vl;
    }
    le->hdrs_len = hl;
    le->body = p;
    if (body_len)
        memcpy(p, body, body_len);
    p[body_len] = 0;
    le->body_len = body_len;
    p += body_len + 1;
    if (req_model) {
        le->model = p;
        memcpy(p, req_model, ml);
        p += ml;
    }
    if (ll) {
        le->label = p;
        memcpy(p, rs->b.label, ll);
        p += ll;
    }
    if (dl) {
        le->deployment = p;
        memcpy(p, rs->deployment, dl);
    }
    le->mem = total;
    le->seq = rs->seq;
    le->conn_id = conn_id;
    le->t_start = t_start;
    le->method = method_name(rs->req);
    le->endpoint = ep_names[rs->ep];
    le->source = source;
    le->rule_index = rule_index;
    le->outcome = OC_IN_PROGRESS;
    le->stream = rs->stream;
    le->body_is_json = body_is_json;
    le->active = true;
    le->owner = rs;
    return le;
}

static void handle_provider(struct evhttp_request *req, const char *uri, const char *path)
{
    int64_t t_start = now_ms();
    conn_t *conn = conn_for_request(req);
    rs_t *rs = xcalloc(1, sizeof *rs);
    rs->req = req;
    rs->conn = conn;
    rs->seq = ++G.seq;
    G.requests++;
    G.in_progress++;
    rs->outcome = OC_IN_PROGRESS;
    mg_sha256_init(&rs->sha);
    event_assign(&rs->timer, G.base, -1, 0, on_rs_timer, rs);

    rs->ep = classify(path, &rs->deployment);
    rs->is_head = method_is(req, EVHTTP_REQ_HEAD);

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    const char *bdata = blen ? (const char *)evbuffer_pullup(in, -1) : "";
    rs->body_len = blen;
    enum { F_MODEL, F_STREAM, F_SO, F_MOCK, NF };
    static const char *const top_keys[NF] = {"model", "stream", "stream_options", "mock"};
    span_t f[NF];
    bool body_json = blen && js_scan(bdata, blen, top_keys, NF, f, &rs->body_object);
    if (!body_json) {
        rs->body_object = false;
        memset(f, 0, sizeof f);
    }

    char *req_model = span_string(f[F_MODEL]);
    rs->stream = span_is(f[F_STREAM], "true");
    if (f[F_SO].p && f[F_SO].p[0] == '{') {
        static const char *const so_keys[1] = {"include_usage"};
        span_t iu;
        if (js_scan(f[F_SO].p, f[F_SO].n, so_keys, 1, &iu, NULL))
            rs->include_usage = span_is(iu, "true");
    }
    rs->model = req_model ? req_model : xstrdup(rs->deployment ? rs->deployment : "mock-model");
    json_t *mock = NULL;
    if (f[F_MOCK].p && !span_is(f[F_MOCK], "null")) {
        mock = json_loadb(f[F_MOCK].p, f[F_MOCK].n, JSON_DECODE_ANY, NULL);
        if (!mock) /* valid JSON our scanner accepts but jansson refuses */
            mock = json_string("unparseable");
    }

    /* choose behaviour: body "mock" > rules > script default > builtin */
    const char *source = "default";
    int rule_index = -1;
    char err[256] = {0};
    bool mock_err = false;
    if (mock) {
        source = "body";
        if (behaviour_parse(mock, &rs->b, err, sizeof err)) {
            behaviour_defaults(&rs->b);
            mock_err = true;
        }
        json_decref(mock);
    } else {
        for (size_t i = 0; i < G.nrules; i++) {
            rule_t *r = &G.rules[i];
            if (rule_matches(r, rs, path, uri)) {
                if (r->times > 0)
                    r->times--;
                r->hits++;
                behaviour_copy(&rs->b, &r->b);
                source = "rule";
                rule_index = (int)i;
                break;
            }
        }
        if (rule_index < 0) {
            if (G.default_b) {
                behaviour_copy(&rs->b, G.default_b);
                source = "script_default";
            } else {
                behaviour_defaults(&rs->b);
            }
        }
    }

    rs->created = rs->b.created >= 0 ? rs->b.created : (long long)(t_start / 1000);
    if (rs->b.response_id) {
        rs->resp_id = xstrdup(rs->b.response_id);
    } else {
        char idb[64];
        snprintf(idb, sizeof idb, "%s-mock-%" PRIu64, rs->ep == EP_COMPLETIONS ? "cmpl" : "chatcmpl",
                 rs->seq);
        rs->resp_id = xstrdup(idb);
    }

    rs->le = log_entry_new(rs, uri, bdata, blen, body_json, req_model, source, rule_index,
                           conn->id, t_start);
    ring_push(rs->le);
    conn->cur = rs;

    if (mock_err) {
        char msg[400];
        snprintf(msg, sizeof msg, "mock: invalid 'mock' behaviour in request body: %s", err);
        rs_send_error(rs, 400, msg, "mock_error", NULL, "invalid_mock_behaviour", "mock");
        return;
    }
    if (rs->b.hang) {
        rs->hanging = true;
        enable_close_detect(req);
        return;
    }
    if (rs->b.latency_ms > 0 || rs->b.reset_before_response) {
        enable_close_detect(req);
        rs_schedule(rs, ACT_START, rs->b.latency_ms);
        return;
    }
    rs_respond(rs);
}

/* ------------------------------------------------------------------ */
/* control endpoints                                                   */
/* ------------------------------------------------------------------ */

static void ctl_reply(struct evhttp_request *req, int status, const char *json, size_t len)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(G.tmp, json, len);
    evhttp_send_reply(req, status, NULL, G.tmp);
    evbuffer_drain(G.tmp, evbuffer_get_length(G.tmp));
}

static void ctl_error(struct evhttp_request *req, int status, const char *msg)
{
    sb_t b = {0};
    sb_adds(&b, "{\"error\":{\"message\":");
    sb_json_cstr(&b, msg);
    sb_adds(&b, ",\"type\":\"mock_error\",\"param\":null,\"code\":null}}");
    ctl_reply(req, status, b.p, b.n);
    sb_free(&b);
}

static json_t *ctl_body_json(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (!n)
        return json_object();
    return json_loadb((const char *)evbuffer_pullup(in, -1), n, 0, NULL);
}

static void ctl_script_post(struct evhttp_request *req)
{
    json_t *j = ctl_body_json(req);
    char err[300] = {0};
    if (!json_is_object(j)) {
        ctl_error(req, 400, "body must be a JSON object {\"rules\":[...],\"default\":{...}}");
        if (j)
            json_decref(j);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "rules") && strcmp(k, "default") && strcmp(k, "append")) {
            snprintf(err, sizeof err, "unknown script field '%s'", k);
            ctl_error(req, 400, err);
            json_decref(j);
            return;
        }
    }
    json_t *rules = json_object_get(j, "rules");
    json_t *def = json_object_get(j, "default");
    bool append = json_is_true(json_object_get(j, "append"));
    if (rules && !json_is_array(rules) && !json_is_null(rules)) {
        ctl_error(req, 400, "'rules' must be an array");
        json_decref(j);
        return;
    }
    size_t n = json_is_array(rules) ? json_array_size(rules) : 0;
    rule_t *nr = xcalloc(n, sizeof *nr);
    for (size_t i = 0; i < n; i++) {
        char e2[256];
        if (rule_parse(json_array_get(rules, i), &nr[i], e2, sizeof e2)) {
            snprintf(err, sizeof err, "rules[%zu]: %s", i, e2);
            for (size_t x = 0; x < i; x++)
                rule_free(&nr[x]);
            free(nr);
            ctl_error(req, 400, err);
            json_decref(j);
            return;
        }
    }
    behaviour_t *nd = NULL;
    if (def && !json_is_null(def)) {
        nd = xcalloc(1, sizeof *nd);
        char e2[256];
        if (behaviour_parse(def, nd, e2, sizeof e2)) {
            snprintf(err, sizeof err, "default: %s", e2);
            for (size_t x = 0; x < n; x++)
                rule_free(&nr[x]);
            free(nr);
            free(nd);
            ctl_error(req, 400, err);
            json_decref(j);
            return;
        }
    }
    if (append) {
        G.rules = realloc(G.rules, sizeof(rule_t) * (G.nrules + n ? G.nrules + n : 1));
        if (!G.rules)
            abort();
        memcpy(G.rules + G.nrules, nr, sizeof(rule_t) * n);
        G.nrules += n;
        free(nr);
        if (def) { /* given (object or null): replace default */
            if (G.default_b) {
                behaviour_release(G.default_b);
                free(G.default_b);
            }
            G.default_b = nd;
        }
    } else {
        script_clear();
        G.rules = nr;
        G.nrules = n;
        G.default_b = nd;
    }
    json_decref(j);
    sb_t b = {0};
    sb_printf(&b, "{\"ok\":true,\"rules\":%zu,\"default\":%s}", G.nrules,
              G.default_b ? "true" : "false");
    ctl_reply(req, 200, b.p, b.n);
    sb_free(&b);
}

static void ctl_script_get(struct evhttp_request *req)
{
    sb_t b = {0};
    sb_adds(&b, "{\"rules\":[");
    for (size_t i = 0; i < G.nrules; i++) {
        rule_t *r = &G.rules[i];
        if (i)
            sb_addc(&b, ',');
        sb_adds(&b, "{\"rule\":");
        sb_json_value(&b, r->src);
        sb_adds(&b, ",\"remaining\":");
        if (r->times < 0)
            sb_adds(&b, "null");
        else
            sb_printf(&b, "%lld", r->times);
        sb_printf(&b, ",\"hits\":%lld}", r->hits);
    }
    sb_adds(&b, "],\"default\":");
    sb_json_value(&b, G.default_b ? G.default_b->src : NULL);
    sb_addc(&b, '}');
    ctl_reply(req, 200, b.p, b.n);
    sb_free(&b);
}

static void ctl_log(struct evhttp_request *req)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    uint64_t since = 0, limit = UINT64_MAX;
    if (q) {
        struct evkeyvalq params;
        TAILQ_INIT(&params);
        if (evhttp_parse_query_str(q, &params) == 0) {
            const char *s = evhttp_find_header(&params, "since");
            if (s)
                since = strtoull(s, NULL, 10);
            s = evhttp_find_header(&params, "limit");
            if (s)
                limit = strtoull(s, NULL, 10);
        }
        evhttp_clear_headers(&params);
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "{\"last_seq\":%" PRIu64 ",\"entries\":[", G.seq);
    size_t start = 0;
    if (G.ring_count) {
        uint64_t first = G.ring[G.ring_head]->seq;
        if (since >= first)
            start = (size_t)(since - first + 1);
    }
    sb_t b = {0};
    uint64_t emitted = 0;
    for (size_t i = start; i < G.ring_count && emitted < limit; i++, emitted++) {
        log_entry_t *le = G.ring[(G.ring_head + i) % G.ring_cap];
        b.n = 0;
        if (emitted)
            sb_adds(&b, ",\n");
        log_entry_json(&b, le);
        evbuffer_add(out, b.p, b.n);
    }
    sb_free(&b);
    evbuffer_add(out, "]}", 2);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, NULL, out);
    evbuffer_free(out);
}

static void ctl_stats(struct evhttp_request *req)
{
    sb_t b = {0};
    sb_printf(&b,
              "{\"requests\":%" PRIu64 ",\"open_connections\":%" PRIu64
              ",\"connections_total\":%" PRIu64 ",\"in_progress\":%" PRIu64
              ",\"last_seq\":%" PRIu64 ",\"log_entries\":%zu,\"rules\":%zu"
              ",\"open_connections_all\":%" PRIu64 ",\"accepted_total\":%" PRIu64 "}",
              G.requests, G.open_connections, G.connections_total, G.in_progress, G.seq,
              G.ring_count, G.nrules, G.open_all, G.accepted_total);
    ctl_reply(req, 200, b.p, b.n);
    sb_free(&b);
}

static void ctl_reset(struct evhttp_request *req)
{
    script_clear();
    ring_clear();
    json_decref(G.stored);
    json_decref(G.stored_order);
    G.stored = G.stored_order = NULL;
    G.seq = 0;
    G.requests = 0;
    G.connections_total = 0;
    G.accepted_total = 0;
    G.epoch++;
    ctl_reply(req, 200, "{\"ok\":true}", 11);
}

static void handle_control(struct evhttp_request *req, const char *path)
{
    bool get = method_is(req, EVHTTP_REQ_GET), post = method_is(req, EVHTTP_REQ_POST);
    if (!strcmp(path, "/__mock/script") && post)
        ctl_script_post(req);
    else if (!strcmp(path, "/__mock/script") && get)
        ctl_script_get(req);
    else if (!strcmp(path, "/__mock/reset") && post)
        ctl_reset(req);
    else if (!strcmp(path, "/__mock/log") && get)
        ctl_log(req);
    else if (!strcmp(path, "/__mock/stats") && get)
        ctl_stats(req);
    else if (!strcmp(path, "/__mock/health") && get)
        ctl_reply(req, 200, "{\"ok\":true}", 11);
    else
        ctl_error(req, 404, "unknown control endpoint or method");
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    const struct evhttp_uri *eu = evhttp_request_get_evhttp_uri(req);
    const char *path = eu ? evhttp_uri_get_path(eu) : NULL;
    if (!path || !*path)
        path = "/";
    if (!strncmp(path, "/__mock/", 8)) {
        handle_control(req, path);
        return;
    }
    handle_provider(req, uri ? uri : path, path);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (!G.quiet)
        fprintf(stderr, "mock: caught signal %d, shutting down\n", (int)sig);
    event_base_loopbreak(G.base);
}

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    evconnlistener_enable(G.lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (!G.quiet)
        fprintf(stderr, "mock: accept error: %s\n", evutil_socket_error_to_string(e));
    evconnlistener_disable(lev);
    struct timeval tv = {0, 100000};
    evtimer_add(G.relisten_ev, &tv);
}

static void libevent_log(int severity, const char *msg)
{
    if (G.quiet || severity < EVENT_LOG_WARN)
        return;
    fprintf(stderr, "mock: libevent: %s\n", msg);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mg_mock_provider [options]\n"
            "  --host ADDR            listen address (default 127.0.0.1)\n"
            "  --port N               listen port, 0 = ephemeral (default 0)\n"
            "  --port-file PATH       write the bound port to PATH (atomic rename)\n"
            "  --log PATH             append one JSON line per finished provider request\n"
            "  --log-max N            in-memory log entries kept (default %d)\n"
            "  --log-max-bytes N      in-memory log byte budget (default %u)\n"
            "  --tls-cert PATH        serve HTTPS with this certificate chain (PEM)\n"
            "  --tls-key PATH         private key for --tls-cert (PEM)\n"
            "  --models a,b,c         ids returned by GET /v1/models\n"
            "  --quiet                no diagnostics on stderr\n"
            "  --verbose              one stderr line per finished request\n"
            "  --help\n",
            DEFAULT_LOG_MAX, DEFAULT_LOG_MAX_BYTES);
}

static void set_models(const char *list)
{
    for (size_t i = 0; i < G.nmodels; i++)
        free(G.models[i]);
    free(G.models);
    G.models = NULL;
    G.nmodels = 0;
    char *dup = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        G.models = realloc(G.models, sizeof(char *) * (G.nmodels + 1));
        if (!G.models)
            abort();
        G.models[G.nmodels++] = xstrdup(t);
    }
    free(dup);
}

static int write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(tmp);
        return -1;
    }
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port_file = NULL, *log_path = NULL;
    const char *tls_cert = NULL, *tls_key = NULL;
    long port = 0;
    long long log_max = DEFAULT_LOG_MAX, log_max_bytes = DEFAULT_LOG_MAX_BYTES;
    enum { O_HOST = 1, O_PORT, O_PORTFILE, O_LOG, O_LOGMAX, O_LOGMAXB, O_CERT, O_KEY, O_MODELS,
           O_QUIET, O_VERBOSE, O_HELP };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"port-file", required_argument, 0, O_PORTFILE},
        {"log", required_argument, 0, O_LOG},
        {"log-max", required_argument, 0, O_LOGMAX},
        {"log-max-bytes", required_argument, 0, O_LOGMAXB},
        {"tls-cert", required_argument, 0, O_CERT},
        {"tls-key", required_argument, 0, O_KEY},
        {"models", required_argument, 0, O_MODELS},
        {"quiet", no_argument, 0, O_QUIET},
        {"verbose", no_argument, 0, O_VERBOSE},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    set_models("mock-model,gpt-4o,gpt-4o-mini,gpt-3.5-turbo,text-embedding-3-small,"
               "text-embedding-ada-002");
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case O_HOST: host = optarg; break;
        case O_PORT:
            port = strtol(optarg, &end, 10);
            if (!*optarg || *end || port < 0 || port > 65535) {
                fprintf(stderr, "mock: bad --port '%s'\n", optarg);
                return 2;
            }
            break;
        case O_PORTFILE: port_file = optarg; break;
        case O_LOG: log_path = optarg; break;
        case O_LOGMAX:
            log_max = strtoll(optarg, &end, 10);
            if (*end || log_max < 1) {
                fprintf(stderr, "mock: bad --log-max\n");
                return 2;
            }
            break;
        case O_LOGMAXB:
            log_max_bytes = strtoll(optarg, &end, 10);
            if (*end || log_max_bytes < 1) {
                fprintf(stderr, "mock: bad --log-max-bytes\n");
                return 2;
            }
            break;
        case O_CERT: tls_cert = optarg; break;
        case O_KEY: tls_key = optarg; break;
        case O_MODELS: set_models(optarg); break;
        case O_QUIET: G.quiet = true; break;
        case O_VERBOSE: G.verbose = true; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (!!tls_cert != !!tls_key) {
        fprintf(stderr, "mock: --tls-cert and --tls-key must be given together\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    {   /* thousands of concurrent connections: raise the fd limit */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    event_set_log_callback(libevent_log);
    G.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (G.devnull < 0) {
        perror("mock: /dev/null");
        return 1;
    }
    G.ring_cap = (size_t)log_max;
    G.ring_max_bytes = (size_t)log_max_bytes;
    G.ring = xcalloc(G.ring_cap, sizeof *G.ring);
    G.tmp = evbuffer_new();

    if (log_path) {
        G.logf = fopen(log_path, "a");
        if (!G.logf) {
            fprintf(stderr, "mock: cannot open log '%s': %s\n", log_path, strerror(errno));
            return 1;
        }
    }
    if (tls_cert) {
        G.ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (!G.ssl_ctx || SSL_CTX_use_certificate_chain_file(G.ssl_ctx, tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(G.ssl_ctx, tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(G.ssl_ctx) != 1) {
            fprintf(stderr, "mock: TLS setup failed: ");
            ERR_print_errors_fp(stderr);
            fprintf(stderr, "\n");
            return 1;
        }
        SSL_CTX_set_mode(G.ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    }

    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    G.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!G.base) {
        fprintf(stderr, "mock: cannot create event base\n");
        return 1;
    }
    G.http = evhttp_new(G.base);
    evhttp_set_gencb(G.http, on_request, NULL);
    evhttp_set_bevcb(G.http, on_new_bev, NULL);
    evhttp_set_max_body_size(G.http, 64 * 1024 * 1024);
    evhttp_set_max_headers_size(G.http, 1024 * 1024);
    evhttp_set_allowed_methods(G.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                           EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    G.pending_ev = event_new(G.base, -1, 0, on_pending, NULL);
    G.relisten_ev = evtimer_new(G.base, on_relisten, NULL);

    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char spec[300];
    snprintf(spec, sizeof spec, strchr(host, ':') ? "[%s]" : "%s", host);
    memset(&ss, 0, sizeof ss);
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) != 0) {
        fprintf(stderr, "mock: --host must be a numeric IP address, got '%s'\n", host);
        return 2;
    }
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    G.lev = evconnlistener_new_bind(G.base, NULL, NULL,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                        LEV_OPT_CLOSE_ON_EXEC,
                                    4096, (struct sockaddr *)&ss, sslen);
    if (!G.lev) {
        fprintf(stderr, "mock: cannot listen on %s port %ld: %s\n", spec, port, strerror(errno));
        return 1;
    }
    if (!evhttp_bind_listener(G.http, G.lev)) {
        fprintf(stderr, "mock: evhttp_bind_listener failed\n");
        return 1;
    }
    evconnlistener_set_error_cb(G.lev, on_accept_error);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    memset(&bound, 0, sizeof bound);
    if (getsockname(evconnlistener_get_fd(G.lev), (struct sockaddr *)&bound, &blen) != 0) {
        perror("mock: getsockname");
        return 1;
    }
    int bport = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);

    G.sig_term = evsignal_new(G.base, SIGTERM, on_signal, NULL);
    G.sig_int = evsignal_new(G.base, SIGINT, on_signal, NULL);
    event_add(G.sig_term, NULL);
    event_add(G.sig_int, NULL);

    if (port_file && write_port_file(port_file, bport) != 0) {
        fprintf(stderr, "mock: cannot write port file '%s': %s\n", port_file, strerror(errno));
        return 1;
    }
    printf("mock listening on %s:%d\n", host, bport);
    fflush(stdout);

    event_base_dispatch(G.base);

    /* orderly shutdown: closing the connections finishes in-flight requests
     * (outcome "shutdown") through the regular close callback */
    G.shutting_down = true;
    evhttp_free(G.http); /* also frees the bound listener */
    while (G.pending) {  /* never-registered connections (their evcons are gone) */
        conn_t *cp = G.pending;
        G.pending = cp->pnext;
        free(cp);
    }
    for (size_t i = 0; i < G.nbuckets; i++) {
        conn_t *x = G.buckets[i];
        while (x) {
            conn_t *nx = x->hnext;
            free(x);
            x = nx;
        }
    }
    free(G.buckets);
    event_free(G.sig_term);
    event_free(G.sig_int);
    event_free(G.pending_ev);
    event_free(G.relisten_ev);
    script_clear();
    ring_clear();
    free(G.ring);
    if (G.lcur)
        munmap(G.lcur, LBLOCK_SIZE);
    while (G.lpool) {
        lblock_t *b = G.lpool;
        G.lpool = b->next;
        munmap(b, LBLOCK_SIZE);
    }
    evbuffer_free(G.tmp);
    for (size_t i = 0; i < G.nmodels; i++)
        free(G.models[i]);
    free(G.models);
    event_base_free(G.base);
    if (G.ssl_ctx)
        SSL_CTX_free(G.ssl_ctx);
    if (G.logf)
        fclose(G.logf);
    close(G.devnull);
    libevent_global_shutdown();
    if (!G.quiet)
        fprintf(stderr, "mock: bye\n");
    return 0;
}
