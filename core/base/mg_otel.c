/*
 * mg_otel.c -- spans, W3C trace context, the span queue, OTLP JSON and the exporter
 * settings (see mg_otel.h).  No I/O here: the gateway's mg_trace.c sends what this encodes.
 */
#include "mg_otel.h"

#include "mg_arena.h"
#include "mg_err.h"
#include "mg_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- spans ---- */

mg_otel_span_t *
mg_otel_span_new(const char *name, mg_otel_kind_t kind, const mg_otel_ctx_t *parent,
                 int64_t start_ns)
{
    mg_otel_span_t *s = mg_xmalloc(sizeof(*s));
    /* attrs need no zeroing: nattrs bounds what is read */
    memset(s, 0, offsetof(mg_otel_span_t, attrs));
    s->nattrs = 0;
    s->dropped_attrs = 0;
    s->text = (mg_buf_t) MG_BUF_INIT;
    s->name = name;
    s->kind = kind;
    s->start_ns = start_ns;
    if (parent != NULL) {
        memcpy(s->ctx.trace_id, parent->trace_id, sizeof(s->ctx.trace_id));
        memcpy(s->parent_id, parent->span_id, sizeof(s->parent_id));
        s->ctx.flags = parent->flags;
        s->parent_remote = parent->remote;
    } else {
        mg_otel_random_ids(s->ctx.trace_id, sizeof(s->ctx.trace_id));
        s->ctx.flags = MG_OTEL_FLAG_SAMPLED;
    }
    mg_otel_random_ids(s->ctx.span_id, sizeof(s->ctx.span_id));
    return s;
}

void
mg_otel_span_free(mg_otel_span_t *s)
{
    if (s == NULL) {
        return;
    }
    mg_buf_free(&s->text);
    free(s);
}

static mg_otel_attr_t *
mg_otel_attr_slot(mg_otel_span_t *s, const char *key)
{
    for (int i = 0; i < s->nattrs; i++) {
        if (s->attrs[i].key == key || strcmp(s->attrs[i].key, key) == 0) {
            return &s->attrs[i];
        }
    }
    if (s->nattrs == MG_OTEL_MAX_ATTRS) {
        s->dropped_attrs++;
        return NULL;
    }
    mg_otel_attr_t *a = &s->attrs[s->nattrs++];
    a->key = key;
    return a;
}

/* Appends v (scrubbed, cut) to the span's text; returns its offset and length. */
static void
mg_otel_text(mg_otel_span_t *s, const char *v, size_t n, uint32_t *off, uint32_t *len)
{
    if (n > MG_OTEL_MAX_VALUE) {
        n = MG_OTEL_MAX_VALUE; /* a cut UTF-8 sequence becomes U+FFFD when encoded */
    }
    size_t at = mg_buf_len(&s->text);
    mg_scrub_global_buf(v, n, &s->text);
    *off = (uint32_t) at;
    *len = (uint32_t) (mg_buf_len(&s->text) - at);
}

void
mg_otel_attr_str(mg_otel_span_t *s, const char *key, const char *v, size_t n)
{
    mg_otel_attr_t *a = mg_otel_attr_slot(s, key);
    if (a == NULL) {
        return;
    }
    a->type = MG_OTEL_STR;
    mg_otel_text(s, v, n, &a->v.s.off, &a->v.s.len);
}

void
mg_otel_attr_cstr(mg_otel_span_t *s, const char *key, const char *v)
{
    if (v != NULL) {
        mg_otel_attr_str(s, key, v, strlen(v));
    }
}

void
mg_otel_attr_int(mg_otel_span_t *s, const char *key, int64_t v)
{
    mg_otel_attr_t *a = mg_otel_attr_slot(s, key);
    if (a != NULL) {
        a->type = MG_OTEL_INT;
        a->v.i = v;
    }
}

void
mg_otel_attr_double(mg_otel_span_t *s, const char *key, double v)
{
    mg_otel_attr_t *a = mg_otel_attr_slot(s, key);
    if (a != NULL) {
        a->type = MG_OTEL_DOUBLE;
        a->v.d = v;
    }
}

void
mg_otel_attr_bool(mg_otel_span_t *s, const char *key, bool v)
{
    mg_otel_attr_t *a = mg_otel_attr_slot(s, key);
    if (a != NULL) {
        a->type = MG_OTEL_BOOL;
        a->v.b = v;
    }
}

const mg_otel_attr_t *
mg_otel_attr_get(const mg_otel_span_t *s, const char *key)
{
    for (int i = 0; i < s->nattrs; i++) {
        if (strcmp(s->attrs[i].key, key) == 0) {
            return &s->attrs[i];
        }
    }
    return NULL;
}

void
mg_otel_span_status(mg_otel_span_t *s, mg_otel_status_t st, const char *msg)
{
    s->status = st;
    s->msg_len = 0;
    if (msg != NULL && msg[0] != '\0') {
        mg_otel_text(s, msg, strlen(msg), &s->msg_off, &s->msg_len);
    }
}

/* ---- time and ids ---- */

int64_t
mg_otel_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
mg_otel_random_ids(uint8_t *id, size_t n)
{
    /* OpenSSL's generator reseeds after fork(), so workers never repeat each other's ids */
    for (;;) {
        mg_random_bytes(id, n);
        for (size_t i = 0; i < n; i++) {
            if (id[i] != 0) {
                return;
            }
        }
    }
}

/* ---- W3C trace context ---- */

static int
mg_otel_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1; /* uppercase is invalid in traceparent */
}

/* Lowercase hex p[0..2n) into out; false on a bad digit or an all-zero id. */
static bool
mg_otel_unhex(const char *p, size_t n, uint8_t *out, bool nonzero)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = mg_otel_hexval(p[2 * i]), lo = mg_otel_hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t) (hi << 4 | lo);
        any |= out[i];
    }
    return !nonzero || any != 0;
}

int
mg_otel_traceparent_parse(const char *v, size_t n, mg_otel_ctx_t *out)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    if (n != MG_OTEL_TRACEPARENT_LEN || v[0] != '0' || v[1] != '0' || v[2] != '-' ||
        v[35] != '-' || v[52] != '-') {
        return MG_DECLINED;
    }
    mg_otel_ctx_t c;
    uint8_t fl;
    if (!mg_otel_unhex(v + 3, 16, c.trace_id, true) || !mg_otel_unhex(v + 36, 8, c.span_id, true) ||
        !mg_otel_unhex(v + 53, 1, &fl, false)) {
        return MG_DECLINED;
    }
    c.flags = fl;
    c.remote = true;
    *out = c;
    return MG_OK;
}

void
mg_otel_hex(const uint8_t *id, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t
mg_otel_traceparent_format(const mg_otel_ctx_t *c, char out[MG_OTEL_TRACEPARENT_LEN + 1])
{
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    mg_otel_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    mg_otel_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    mg_otel_hex(&c->flags, 1, out + 53);
    return MG_OTEL_TRACEPARENT_LEN;
}

bool
mg_otel_tracestate_ok(const char *v, size_t n)
{
    if (n == 0 || n > 512) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 0x20 || v[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* ---- the bounded queue ---- */

void
mg_otel_queue_init(mg_otel_queue_t *q, size_t cap)
{
    memset(q, 0, sizeof(*q));
    q->cap = cap > 0 ? cap : 1;
    q->ring = mg_xcalloc(q->cap, sizeof(*q->ring));
}

bool
mg_otel_queue_push(mg_otel_queue_t *q, mg_otel_span_t *s)
{
    if (q->len == q->cap) {
        q->dropped++;
        mg_otel_span_free(s);
        return false;
    }
    q->ring[(q->head + q->len) % q->cap] = s;
    q->len++;
    q->pushed++;
    return true;
}

size_t
mg_otel_queue_take(mg_otel_queue_t *q, mg_otel_span_t **out, size_t max)
{
    size_t n = 0;
    while (n < max && q->len > 0) {
        out[n++] = q->ring[q->head];
        q->ring[q->head] = NULL;
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    return n;
}

size_t
mg_otel_queue_free(mg_otel_queue_t *q)
{
    size_t left = q->len;
    while (q->len > 0) {
        mg_otel_span_free(q->ring[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    free(q->ring);
    q->ring = NULL;
    return left;
}

/* ---- exporter settings ---- */

/* A set, non-empty environment value, or NULL (Python's os.getenv treats "" as falsy here). */
static const char *
mg_otel_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static void mg_otel_warn(mg_otel_conf_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mg_otel_warn(mg_otel_conf_t *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->warnings = mg_xrealloc(c->warnings, (c->nwarnings + 1) * sizeof(*c->warnings));
    c->warnings[c->nwarnings++] = mg_xstrdup(line);
}

static bool
mg_otel_truthy(const char *v)
{
    return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                         strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0);
}

static bool
mg_otel_ends(const char *s, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && memcmp(s + n - l, suffix, l) == 0;
}

char *
mg_otel_traces_url(const char *endpoint)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/') {
        n--;
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, endpoint, n);
    /* Splunk Observability's OTLP/HTTP path, which LiteLLM leaves alone */
    bool splunk = strstr(mg_buf_cstr(&b), "/v2/trace/otlp") != NULL;
    if (splunk || mg_otel_ends(endpoint, n, "/v1/traces")) {
        /* as it is */
    } else if (mg_otel_ends(endpoint, n, "/v1/logs")) {
        b.end -= strlen("logs");
        mg_buf_append_str(&b, "traces");
    } else if (mg_otel_ends(endpoint, n, "/v1/metrics")) {
        b.end -= strlen("metrics");
        mg_buf_append_str(&b, "traces");
    } else if (mg_otel_ends(endpoint, n, "/v1")) {
        mg_buf_append_str(&b, "/traces");
    } else {
        mg_buf_append_str(&b, "/v1/traces");
    }
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

static void
mg_otel_kv_set(mg_otel_kv_t **kv, size_t *n, const char *name, size_t nl, const char *value,
               size_t vl)
{
    for (size_t i = 0; i < *n; i++) {
        if (strlen((*kv)[i].name) == nl && memcmp((*kv)[i].name, name, nl) == 0) {
            free((*kv)[i].value);
            (*kv)[i].value = mg_xstrndup(value, vl);
            return;
        }
    }
    *kv = mg_xrealloc(*kv, (*n + 1) * sizeof(**kv));
    (*kv)[*n].name = mg_xstrndup(name, nl);
    (*kv)[*n].value = mg_xstrndup(value, vl);
    (*n)++;
}

static void
mg_otel_kv_free(mg_otel_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static void
mg_otel_trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) {
        (*n)--;
    }
}

/* %XX decoding in place (OTEL_RESOURCE_ATTRIBUTES and the SDK's header variables). */
static size_t
mg_otel_pct_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char) s[i + 1]) &&
            isxdigit((unsigned char) s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            s[o++] = (char) strtol(h, NULL, 16);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

static bool
mg_otel_token(const char *s, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];
        if (!(isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL) || ch == 0) {
            return false;
        }
    }
    return true;
}

static bool
mg_otel_header_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

/*
 * Walks a "k=v,k2=v2" list; calls one(ud, name, nl, value, vl) for each entry with a '='.
 * Returns the number of entries without one.
 */
static int
mg_otel_each_pair(const char *list, void (*one)(void *, const char *, size_t, char *, size_t),
                  void *ud, bool decode)
{
    int bad = 0;
    const char *p = list;
    while (*p != '\0') {
        size_t partl = strcspn(p, ",");
        const char *eq = memchr(p, '=', partl);
        if (eq == NULL) {
            const char *q = p;
            size_t ql = partl;
            mg_otel_trim(&q, &ql);
            bad += ql > 0;
        } else {
            const char *name = p;
            size_t nl = (size_t) (eq - p);
            mg_otel_trim(&name, &nl);
            const char *val = eq + 1;
            size_t vl = (size_t) (p + partl - val);
            mg_otel_trim(&val, &vl);
            char *copy = mg_xstrndup(val, vl);
            if (decode) {
                vl = mg_otel_pct_decode(copy, vl);
            }
            one(ud, name, nl, copy, vl);
            free(copy);
        }
        p += partl;
        if (*p == ',') {
            p++;
        }
    }
    return bad;
}

typedef struct {
    mg_otel_conf_t *c;
    const char *var;
} mg_otel_hdr_ud_t;

static void
mg_otel_one_header(void *ud, const char *name, size_t nl, char *value, size_t vl)
{
    mg_otel_hdr_ud_t *h = ud;
    static const char *const framing[] = {"host", "content-length", "content-type",
                                          "transfer-encoding", "connection", "te", NULL};
    if (!mg_otel_token(name, nl)) {
        mg_otel_warn(h->c, "%s: a header name that is not an HTTP token is ignored", h->var);
        return;
    }
    for (const char *const *f = framing; *f; f++) {
        if (strlen(*f) == nl && strncasecmp(*f, name, nl) == 0) {
            mg_otel_warn(h->c, "%s: header \"%.*s\" is set by moongate itself; ignored", h->var,
                         (int) nl, name);
            return;
        }
    }
    if (!mg_otel_header_value_ok(value, vl)) {
        /* never the value: it is a secret */
        mg_otel_warn(h->c, "%s: the value of header \"%.*s\" has a control character; ignored",
                     h->var, (int) nl, name);
        return;
    }
    mg_otel_kv_set(&h->c->headers, &h->c->nheaders, name, nl, value, vl);
}

typedef struct {
    mg_otel_conf_t *c;
} mg_otel_res_ud_t;

static void
mg_otel_one_resource(void *ud, const char *name, size_t nl, char *value, size_t vl)
{
    mg_otel_res_ud_t *r = ud;
    if (nl > 0) {
        mg_otel_kv_set(&r->c->resource, &r->c->nresource, name, nl, value, vl);
    }
}

static int
mg_otel_env_int(mg_otel_conf_t *c, const char *name, int dflt, int lo, int hi)
{
    const char *v = mg_otel_env(name);
    if (v == NULL) {
        return dflt;
    }
    char *e;
    long x = strtol(v, &e, 10);
    if (*e != '\0' || x < lo || x > hi) {
        mg_otel_warn(c, "%s=\"%s\" is not a whole number in [%d, %d]; using %d", name, v, lo, hi,
                     dflt);
        return dflt;
    }
    return (int) x;
}

/* The OTEL_* variables read above; any other one that is set gets a warning. */
static const char *const mg_otel_read_vars[] = {
    "OTEL_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_SERVICE_NAME", "OTEL_ENVIRONMENT_NAME",
    "OTEL_MODEL_ID", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACER_NAME", "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_SDK_DISABLED", "OTEL_IGNORE_CONTEXT_PROPAGATION",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", NULL,
};

/* What happens instead, for the ones LiteLLM (or its OpenTelemetry SDK) honours. */
static const struct {
    const char *prefix;
    const char *effect;
} mg_otel_unread_effects[] = {
    {"OTEL_TRACES_SAMPLER", "every request is traced unless its traceparent says not sampled"},
    {"OTEL_PROPAGATORS", "only W3C traceparent/tracestate are read and sent"},
    {"OTEL_EXPORTER_OTLP_COMPRESSION", "batches are sent uncompressed"},
    {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "batches are sent uncompressed"},
    {"OTEL_EXPORTER_OTLP_CERTIFICATE", "https collectors are verified with the system CA store"},
    {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "https collectors are verified with the system CA store"},
    {"OTEL_EXPORTER_OTLP_CLIENT", "no client certificate is sent"},
    {"OTEL_EXPORTER_OTLP_TRACES_CLIENT", "no client certificate is sent"},
    {"OTEL_EXPORTER_OTLP_TIMEOUT", "use OTEL_BSP_EXPORT_TIMEOUT (milliseconds)"},
    {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "use OTEL_BSP_EXPORT_TIMEOUT (milliseconds)"},
    {"OTEL_METRICS_EXPORTER", "no metrics are exported over OTLP (moongate serves /metrics)"},
    {"OTEL_LOGS_EXPORTER", "no logs are exported over OTLP"},
    {"OTEL_SEMCONV_STABILITY_OPT_IN", "attributes follow the names in the README's Tracing section"},
    {NULL, NULL},
};

static void
mg_otel_scan_unread(mg_otel_conf_t *c)
{
    extern char **environ;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "OTEL_", 5) != 0) {
            continue;
        }
        size_t nl = strcspn(*e, "=");
        bool read = false;
        for (const char *const *r = mg_otel_read_vars; *r && !read; r++) {
            read = strlen(*r) == nl && strncmp(*r, *e, nl) == 0;
        }
        if (read || (*e)[nl] != '=' || (*e)[nl + 1] == '\0') {
            continue;
        }
        const char *effect = "ignored";
        for (size_t i = 0; mg_otel_unread_effects[i].prefix != NULL; i++) {
            size_t pl = strlen(mg_otel_unread_effects[i].prefix);
            if (nl >= pl && strncmp(*e, mg_otel_unread_effects[i].prefix, pl) == 0) {
                effect = mg_otel_unread_effects[i].effect;
                break;
            }
        }
        mg_otel_warn(c, "%.*s is set, but moongate does not implement it: %s", (int) nl, *e,
                     effect);
    }
    static const struct {
        const char *name;
        const char *effect;
    } litellm[] = {
        {"LITELLM_OTEL_INTEGRATION_ENABLE_METRICS", "no OTLP metrics are sent (moongate serves /metrics)"},
        {"LITELLM_OTEL_INTEGRATION_ENABLE_EVENTS", "no OTLP log events are sent"},
        {"DEBUG_OTEL", "use LITELLM_LOG=DEBUG: export failures are logged at warning level anyway"},
    };
    for (size_t i = 0; i < sizeof(litellm) / sizeof(litellm[0]); i++) {
        if (mg_otel_truthy(mg_otel_env(litellm[i].name))) {
            mg_otel_warn(c, "%s is set, but moongate does not implement it: %s", litellm[i].name,
                         litellm[i].effect);
        }
    }
    const char *ur = mg_otel_env("USE_OTEL_LITELLM_REQUEST_SPAN");
    if (ur != NULL && !mg_otel_truthy(ur)) {
        mg_otel_warn(c, "USE_OTEL_LITELLM_REQUEST_SPAN=%s: moongate always records a "
                        "\"litellm_request\" span per upstream attempt under the request span", ur);
    }
}

static bool
mg_otel_url_ok(mg_otel_conf_t *c, const char *var, const char *url)
{
    const char *rest = NULL;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
    }
    if (rest == NULL) {
        mg_otel_warn(c, "%s must be an http:// or https:// URL; no spans are exported", var);
        return false;
    }
    size_t auth = strcspn(rest, "/?#");
    if (memchr(rest, '@', auth) != NULL) {
        mg_otel_warn(c, "%s: credentials in the URL are not sent; put them in OTEL_HEADERS "
                        "(no spans are exported)", var);
        return false;
    }
    if (auth == 0) {
        mg_otel_warn(c, "%s has no host; no spans are exported", var);
        return false;
    }
    return true;
}

void
mg_otel_conf_from_env(mg_otel_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    const char *proto_var = mg_otel_env("OTEL_EXPORTER_OTLP_PROTOCOL") ? "OTEL_EXPORTER_OTLP_PROTOCOL"
                                                                       : "OTEL_EXPORTER";
    const char *proto = mg_otel_env(proto_var);
    const char *ep_var = mg_otel_env("OTEL_EXPORTER_OTLP_ENDPOINT") ? "OTEL_EXPORTER_OTLP_ENDPOINT"
                                                                    : "OTEL_ENDPOINT";
    const char *endpoint = mg_otel_env(ep_var);
    if (proto == NULL) {
        proto = "console"; /* LiteLLM's default */
    }
    if (strcmp(proto, "otlp_http") == 0 || strcmp(proto, "http/json") == 0 ||
        strcmp(proto, "http/protobuf") == 0) {
        c->exporter = MG_OTEL_EXP_OTLP_HTTP;
    } else if (strcmp(proto, "console") == 0) {
        /* LiteLLM: an endpoint with the default exporter means OTLP/HTTP */
        c->exporter = endpoint != NULL ? MG_OTEL_EXP_OTLP_HTTP : MG_OTEL_EXP_CONSOLE;
    } else if (strcmp(proto, "otlp_grpc") == 0 || strcmp(proto, "grpc") == 0) {
        mg_otel_warn(c, "%s=%s is not implemented: only otlp_http (OTLP/HTTP with JSON) is; "
                        "no spans are exported", proto_var, proto);
        c->exporter = MG_OTEL_EXP_NONE;
    } else {
        mg_otel_warn(c, "%s=\"%s\" is not an exporter moongate knows; spans are printed to the "
                        "log (console), as LiteLLM does", proto_var, proto);
        c->exporter = MG_OTEL_EXP_CONSOLE;
    }
    if (mg_otel_truthy(mg_otel_env("OTEL_SDK_DISABLED"))) {
        mg_otel_warn(c, "OTEL_SDK_DISABLED is set: no spans are recorded or exported");
        c->exporter = MG_OTEL_EXP_NONE;
    }
    if (c->exporter == MG_OTEL_EXP_OTLP_HTTP) {
        const char *te = mg_otel_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        if (endpoint != NULL) {
            if (mg_otel_url_ok(c, ep_var, endpoint)) {
                c->endpoint = mg_otel_traces_url(endpoint);
            }
        } else if (te != NULL) {
            if (mg_otel_url_ok(c, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", te)) {
                c->endpoint = mg_xstrdup(te); /* the SDK uses it as it is */
            }
        } else {
            c->endpoint = mg_xstrdup("http://localhost:4318/v1/traces"); /* the SDK's default */
        }
        if (c->endpoint == NULL) {
            c->exporter = MG_OTEL_EXP_NONE;
        }
    }
    /* headers: LiteLLM's two names, else the SDK's own (percent-decoded, as it reads them) */
    const char *hv = mg_otel_env("OTEL_EXPORTER_OTLP_HEADERS") ? "OTEL_EXPORTER_OTLP_HEADERS"
                                                               : "OTEL_HEADERS";
    bool decode = false;
    if (mg_otel_env(hv) == NULL && mg_otel_env("OTEL_EXPORTER_OTLP_TRACES_HEADERS") != NULL) {
        hv = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
        decode = true;
    }
    if (mg_otel_env(hv) != NULL) {
        mg_otel_hdr_ud_t h = {c, hv};
        int bad = mg_otel_each_pair(mg_otel_env(hv), mg_otel_one_header, &h, decode);
        if (bad > 0) {
            mg_otel_warn(c, "%s: %d entr%s without '=' ignored (the list is \"name=value,...\")",
                         hv, bad, bad == 1 ? "y" : "ies");
        }
    }
    /* resource: LiteLLM's three attributes, then OTEL_RESOURCE_ATTRIBUTES, then the service
     * name again (the SDK's detector lets OTEL_SERVICE_NAME win) */
    const char *svc = mg_otel_env("OTEL_SERVICE_NAME");
    const char *service = svc != NULL ? svc : "litellm";
    const char *envn = mg_otel_env("OTEL_ENVIRONMENT_NAME");
    const char *mid = mg_otel_env("OTEL_MODEL_ID");
    mg_otel_kv_set(&c->resource, &c->nresource, "service.name", 12, service, strlen(service));
    envn = envn != NULL ? envn : "production";
    mg_otel_kv_set(&c->resource, &c->nresource, "deployment.environment", 22, envn, strlen(envn));
    mid = mid != NULL ? mid : service;
    mg_otel_kv_set(&c->resource, &c->nresource, "model_id", 8, mid, strlen(mid));
    static const char sdk_name[] = "moongate", sdk_lang[] = "c", sdk_ver[] = MG_VERSION;
    mg_otel_kv_set(&c->resource, &c->nresource, "telemetry.sdk.name", 18, sdk_name,
                   sizeof(sdk_name) - 1);
    mg_otel_kv_set(&c->resource, &c->nresource, "telemetry.sdk.language", 22, sdk_lang,
                   sizeof(sdk_lang) - 1);
    mg_otel_kv_set(&c->resource, &c->nresource, "telemetry.sdk.version", 21, sdk_ver,
                   sizeof(sdk_ver) - 1);
    const char *ra = mg_otel_env("OTEL_RESOURCE_ATTRIBUTES");
    if (ra != NULL) {
        mg_otel_res_ud_t r = {c};
        if (mg_otel_each_pair(ra, mg_otel_one_resource, &r, true) > 0) {
            mg_otel_warn(c, "OTEL_RESOURCE_ATTRIBUTES: entries without '=' ignored");
        }
    }
    if (svc != NULL) {
        mg_otel_kv_set(&c->resource, &c->nresource, "service.name", 12, svc, strlen(svc));
    }
    const char *tn = mg_otel_env("OTEL_TRACER_NAME");
    c->scope_name = mg_xstrdup(tn != NULL ? tn : "litellm");
    /* batching (the SDK's BatchSpanProcessor variables; moongate's delay default is 1 s) */
    c->schedule_delay_ms = mg_otel_env_int(c, "OTEL_BSP_SCHEDULE_DELAY", 1000, 1, 600000);
    c->max_queue = mg_otel_env_int(c, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1 << 20);
    c->max_batch = mg_otel_env_int(c, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1 << 20);
    if (c->max_batch > c->max_queue) {
        c->max_batch = c->max_queue;
    }
    c->export_timeout_ms = mg_otel_env_int(c, "OTEL_BSP_EXPORT_TIMEOUT", 10000, 1, 600000);
    c->ignore_parent = mg_otel_truthy(mg_otel_env("OTEL_IGNORE_CONTEXT_PROPAGATION"));
    const char *cap = mg_otel_env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT");
    if (cap != NULL && strcasecmp(cap, "NO_CONTENT") != 0 && strcasecmp(cap, "false") != 0) {
        mg_otel_warn(c, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=%s: moongate never "
                        "puts prompts or completions in spans", cap);
    }
    mg_otel_scan_unread(c);
}

void
mg_otel_conf_free(mg_otel_conf_t *c)
{
    free(c->endpoint);
    mg_otel_kv_free(c->headers, c->nheaders);
    mg_otel_kv_free(c->resource, c->nresource);
    free(c->scope_name);
    for (size_t i = 0; i < c->nwarnings; i++) {
        free(c->warnings[i]);
    }
    free(c->warnings);
    memset(c, 0, sizeof(*c));
}

typedef struct {
    mg_scrub_builder_t *b;
} mg_otel_sec_ud_t;

static void
mg_otel_one_secret(void *ud, const char *name, size_t nl, char *value, size_t vl)
{
    (void) name;
    (void) nl;
    mg_otel_sec_ud_t *s = ud;
    mg_scrub_builder_add(s->b, value, vl);
}

void
mg_otel_headers_secrets(const char *list, mg_scrub_builder_t *b)
{
    if (list == NULL) {
        return;
    }
    mg_otel_sec_ud_t s = {b};
    (void) mg_otel_each_pair(list, mg_otel_one_secret, &s, false);
    /* the SDK's variable is percent-decoded: hide both forms */
    (void) mg_otel_each_pair(list, mg_otel_one_secret, &s, true);
}

/* ---- OTLP/HTTP JSON ---- */

static void
mg_otel_encode_value(const mg_otel_span_t *s, const mg_otel_attr_t *a, mg_buf_t *out)
{
    switch (a->type) {
    case MG_OTEL_STR:
        mg_buf_append_str(out, "{\"stringValue\":");
        mg_buf_json_str(out, mg_buf_head(&s->text) + a->v.s.off, a->v.s.len);
        mg_buf_append_str(out, "}");
        break;
    case MG_OTEL_INT:
        /* int64 is a string in protobuf's JSON mapping */
        mg_buf_printf(out, "{\"intValue\":\"%lld\"}", (long long) a->v.i);
        break;
    case MG_OTEL_DOUBLE:
        if (isfinite(a->v.d)) {
            mg_buf_printf(out, "{\"doubleValue\":%.17g}", a->v.d);
        } else {
            mg_buf_printf(out, "{\"doubleValue\":\"%s\"}",
                          isnan(a->v.d) ? "NaN" : a->v.d > 0 ? "Infinity" : "-Infinity");
        }
        break;
    case MG_OTEL_BOOL:
        mg_buf_append_str(out, a->v.b ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
        break;
    }
}

void
mg_otel_encode_span(const mg_otel_span_t *s, mg_buf_t *out)
{
    char hex[33];
    mg_otel_hex(s->ctx.trace_id, 16, hex);
    mg_buf_printf(out, "{\"traceId\":\"%s\"", hex);
    mg_otel_hex(s->ctx.span_id, 8, hex);
    mg_buf_printf(out, ",\"spanId\":\"%s\"", hex);
    static const uint8_t zero[8];
    if (memcmp(s->parent_id, zero, 8) != 0) {
        mg_otel_hex(s->parent_id, 8, hex);
        mg_buf_printf(out, ",\"parentSpanId\":\"%s\"", hex);
    }
    /* low byte: W3C flags; 0x100: "is the parent remote" is known, 0x200: it is */
    uint32_t flags = s->ctx.flags | 0x100u | (s->parent_remote ? 0x200u : 0);
    mg_buf_printf(out, ",\"flags\":%u,\"name\":", flags);
    mg_buf_json_str(out, s->name, strlen(s->name));
    mg_buf_printf(out, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\"",
                  (int) s->kind, (long long) s->start_ns,
                  (long long) (s->end_ns > 0 ? s->end_ns : s->start_ns));
    mg_buf_append_str(out, ",\"attributes\":[");
    for (int i = 0; i < s->nattrs; i++) {
        if (i > 0) {
            mg_buf_append(out, ",", 1);
        }
        mg_buf_append_str(out, "{\"key\":");
        mg_buf_json_str(out, s->attrs[i].key, strlen(s->attrs[i].key));
        mg_buf_append_str(out, ",\"value\":");
        mg_otel_encode_value(s, &s->attrs[i], out);
        mg_buf_append(out, "}", 1);
    }
    mg_buf_append(out, "]", 1);
    if (s->dropped_attrs > 0) {
        mg_buf_printf(out, ",\"droppedAttributesCount\":%d", s->dropped_attrs);
    }
    if (s->status != MG_OTEL_STATUS_UNSET) {
        mg_buf_printf(out, ",\"status\":{\"code\":%d", (int) s->status);
        if (s->msg_len > 0) {
            mg_buf_append_str(out, ",\"message\":");
            mg_buf_json_str(out, mg_buf_head(&s->text) + s->msg_off, s->msg_len);
        }
        mg_buf_append(out, "}", 1);
    }
    mg_buf_append(out, "}", 1);
}

void
mg_otel_encode(const mg_otel_conf_t *c, mg_otel_span_t *const *spans, size_t n, mg_buf_t *out)
{
    mg_buf_append_str(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    for (size_t i = 0; i < c->nresource; i++) {
        if (i > 0) {
            mg_buf_append(out, ",", 1);
        }
        mg_buf_append_str(out, "{\"key\":");
        mg_buf_json_str(out, c->resource[i].name, strlen(c->resource[i].name));
        mg_buf_append_str(out, ",\"value\":{\"stringValue\":");
        mg_buf_json_str(out, c->resource[i].value, strlen(c->resource[i].value));
        mg_buf_append_str(out, "}}");
    }
    mg_buf_append_str(out, "]},\"scopeSpans\":[{\"scope\":{\"name\":");
    const char *scope = c->scope_name != NULL ? c->scope_name : "litellm";
    mg_buf_json_str(out, scope, strlen(scope));
    mg_buf_append_str(out, "},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            mg_buf_append(out, ",", 1);
        }
        mg_otel_encode_span(spans[i], out);
    }
    mg_buf_append_str(out, "]}]}]}");
}
