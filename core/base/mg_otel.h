/*
 * mg_otel.h -- OpenTelemetry traces without I/O: spans, W3C trace context, the bounded span
 * queue, the OTLP/HTTP JSON encoding and the exporter settings read from the environment
 * the way LiteLLM reads them.
 *
 * Owns: spans (single-owner heap objects: the request that opened one until it ends, then
 * the queue, then the batch being exported), their attribute text, the queue's ring.
 * Does not own: sockets, timers or the event loop (core/gateway/mg_trace.c sends batches
 * through the upstream pool), nor the attribute keys (static strings).
 *
 * Nothing here is on a request's path unless tracing is on: the gateway holds no span and
 * calls nothing in this file for a request when litellm_settings.callbacks has no "otel".
 * Single-threaded: one queue per worker.
 */
#ifndef MG_OTEL_H
#define MG_OTEL_H

#include "mg_buf.h"
#include "mg_scrub.h"
#include "mg_types.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- spans ---- */

#define MG_OTEL_MAX_ATTRS 40
/* longest string attribute value kept (bytes); longer ones are cut */
#define MG_OTEL_MAX_VALUE 2048
/* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define MG_OTEL_TRACEPARENT_LEN 55
/* the sampled bit of the W3C trace flags */
#define MG_OTEL_FLAG_SAMPLED 0x01

/* OTLP's SpanKind numbers */
typedef enum {
    MG_OTEL_KIND_INTERNAL = 1,
    MG_OTEL_KIND_SERVER = 2,
    MG_OTEL_KIND_CLIENT = 3,
} mg_otel_kind_t;

/* OTLP's Status.code numbers */
typedef enum {
    MG_OTEL_STATUS_UNSET = 0,
    MG_OTEL_STATUS_OK = 1,
    MG_OTEL_STATUS_ERROR = 2,
} mg_otel_status_t;

typedef enum {
    MG_OTEL_STR = 0,
    MG_OTEL_INT,
    MG_OTEL_DOUBLE,
    MG_OTEL_BOOL,
} mg_otel_vtype_t;

/* A span context: what traceparent carries. */
typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;                  /* W3C trace flags (MG_OTEL_FLAG_SAMPLED) */
    bool remote;                    /* came from a client's traceparent */
} mg_otel_ctx_t;

typedef struct {
    const char *key;                /* static */
    mg_otel_vtype_t type;
    union {
        int64_t i;
        double d;
        bool b;
        struct {
            uint32_t off, len;      /* in the span's text */
        } s;
    } v;
} mg_otel_attr_t;

typedef struct mg_otel_span_s {
    mg_otel_ctx_t ctx;
    uint8_t parent_id[8];           /* all zero: a root span */
    bool parent_remote;
    const char *name;               /* static */
    mg_otel_kind_t kind;
    int64_t start_ns;               /* unix epoch nanoseconds */
    int64_t end_ns;                 /* 0 while open */
    mg_otel_status_t status;
    uint32_t msg_off, msg_len;      /* status message in text (len 0: none) */
    mg_otel_attr_t attrs[MG_OTEL_MAX_ATTRS];
    int nattrs;
    int dropped_attrs;              /* set after MG_OTEL_MAX_ATTRS were taken */
    mg_buf_t text;                  /* owned: string values and the status message */
} mg_otel_span_t;

/*
 * A new open span (single owner: the caller) with a fresh span id.  parent NULL: the root
 * of a new trace (fresh trace id, sampled); else a child in parent's trace with its flags.
 * start_ns: unix epoch nanoseconds.
 */
mg_otel_span_t *mg_otel_span_new(const char *name, mg_otel_kind_t kind,
                                 const mg_otel_ctx_t *parent, int64_t start_ns);
/* Accepts NULL. */
void mg_otel_span_free(mg_otel_span_t *s);

/* Attributes; key must be a static string.  A key set again replaces its value.  String
 * values are scrubbed of every secret the process knows (mg_scrub_global) and cut at
 * MG_OTEL_MAX_VALUE bytes; they are copied. */
void mg_otel_attr_str(mg_otel_span_t *s, const char *key, const char *v, size_t n);
void mg_otel_attr_cstr(mg_otel_span_t *s, const char *key, const char *v); /* NULL: not set */
void mg_otel_attr_int(mg_otel_span_t *s, const char *key, int64_t v);
void mg_otel_attr_double(mg_otel_span_t *s, const char *key, double v);
void mg_otel_attr_bool(mg_otel_span_t *s, const char *key, bool v);
/* The attribute named key, or NULL. */
const mg_otel_attr_t *mg_otel_attr_get(const mg_otel_span_t *s, const char *key);
/* Status and its message (msg NULL: none; scrubbed and cut like a string value). */
void mg_otel_span_status(mg_otel_span_t *s, mg_otel_status_t st, const char *msg);

/* ---- time and ids ---- */

/* Unix epoch nanoseconds now. */
int64_t mg_otel_now_ns(void);
/* Random non-zero ids (CSPRNG; fork-safe). */
void mg_otel_random_ids(uint8_t *id, size_t n);

/* ---- W3C trace context ---- */

/*
 * Parses a traceparent header value (surrounding spaces and tabs ignored).  Strict: version
 * "00" only, exactly 55 characters, lowercase hex, trace id and parent id not all zeros.
 * MG_OK and *out (remote = true), or MG_DECLINED: the value is not a valid traceparent
 * (the request then starts a new trace).
 */
int mg_otel_traceparent_parse(const char *v, size_t n, mg_otel_ctx_t *out);
/* Writes "00-<trace id>-<span id>-<flags>" and a NUL; returns MG_OTEL_TRACEPARENT_LEN. */
size_t mg_otel_traceparent_format(const mg_otel_ctx_t *c, char out[MG_OTEL_TRACEPARENT_LEN + 1]);
/* Whether a tracestate value may be passed on as it is: at most 512 printable ASCII
 * characters (W3C's limit), no CR/LF. */
bool mg_otel_tracestate_ok(const char *v, size_t n);
/* Lowercase hex of id[0..n) into out (2n characters and a NUL). */
void mg_otel_hex(const uint8_t *id, size_t n, char *out);

/* ---- the bounded queue ---- */

/* Spans waiting for export, oldest first.  Full: a new span is freed and counted in
 * dropped (never blocks, never grows). */
typedef struct {
    mg_otel_span_t **ring;          /* owned: cap slots; the spans in them are owned too */
    size_t cap;
    size_t head;                    /* index of the oldest */
    size_t len;
    uint64_t pushed;                /* spans accepted */
    uint64_t dropped;               /* spans refused: the queue was full */
} mg_otel_queue_t;

void mg_otel_queue_init(mg_otel_queue_t *q, size_t cap);
/* Takes ownership of s.  False (s freed, dropped counted) when the queue is full. */
bool mg_otel_queue_push(mg_otel_queue_t *q, mg_otel_span_t *s);
/* Moves up to max of the oldest spans into out (ownership to the caller); returns how many. */
size_t mg_otel_queue_take(mg_otel_queue_t *q, mg_otel_span_t **out, size_t max);
/* Frees the ring and every span left in it; returns how many were left. */
size_t mg_otel_queue_free(mg_otel_queue_t *q);

/* ---- exporter settings (environment, as LiteLLM reads it) ---- */

typedef enum {
    MG_OTEL_EXP_NONE = 0,           /* no export: tracing is off (refused or disabled) */
    MG_OTEL_EXP_OTLP_HTTP,          /* OTLP/HTTP, JSON encoding, POST <endpoint> */
    MG_OTEL_EXP_CONSOLE,            /* one JSON line per span in the log */
} mg_otel_exporter_t;

typedef struct {
    char *name;                     /* owned */
    char *value;                    /* owned; for headers: a secret */
} mg_otel_kv_t;

typedef struct {
    mg_otel_exporter_t exporter;
    char *endpoint;                 /* owned: the traces URL (".../v1/traces"); OTLP/HTTP only */
    mg_otel_kv_t *headers;          /* owned: OTEL_HEADERS; values are secrets, never logged */
    size_t nheaders;
    mg_otel_kv_t *resource;         /* owned: resource attributes (service.name first) */
    size_t nresource;
    char *scope_name;               /* owned: the instrumentation scope (OTEL_TRACER_NAME) */
    int schedule_delay_ms;          /* a batch leaves at least this often (OTEL_BSP_SCHEDULE_DELAY) */
    int max_queue;                  /* OTEL_BSP_MAX_QUEUE_SIZE */
    int max_batch;                  /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE: also "export now" */
    int export_timeout_ms;          /* OTEL_BSP_EXPORT_TIMEOUT */
    bool ignore_parent;             /* OTEL_IGNORE_CONTEXT_PROPAGATION: client traceparent unused */
    char **warnings;                /* owned: one line each (the config loader logs them) */
    size_t nwarnings;
} mg_otel_conf_t;

/*
 * Reads the exporter settings from the environment (see the README's Tracing section):
 * OTEL_EXPORTER / OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT
 * (normalised to .../v1/traces as LiteLLM does) / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
 * OTEL_HEADERS / OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS,
 * OTEL_SERVICE_NAME, OTEL_ENVIRONMENT_NAME, OTEL_MODEL_ID, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_TRACER_NAME, OTEL_BSP_*, OTEL_SDK_DISABLED, OTEL_IGNORE_CONTEXT_PROPAGATION.  What it
 * refuses or does not implement (otlp_grpc, any other OTEL_* variable that is set, LiteLLM's
 * LITELLM_OTEL_* switches) becomes one line in c->warnings; a secret never appears in one.
 * Always fills *c (free with mg_otel_conf_free).
 */
void mg_otel_conf_from_env(mg_otel_conf_t *c);
void mg_otel_conf_free(mg_otel_conf_t *c);
/* LiteLLM's endpoint normalisation for traces (malloc'd): no trailing '/', ".../v1/traces"
 * kept, ".../v1/logs" and ".../v1/metrics" turned into it, ".../v1" + "/traces", anything
 * else + "/v1/traces". */
char *mg_otel_traces_url(const char *endpoint);
/* Adds the values of a "k=v,k2=v2" header list (OTEL_HEADERS) to a scrub builder: they are
 * secrets, so no log line, error or span shows them. */
void mg_otel_headers_secrets(const char *list, mg_scrub_builder_t *b);

/* ---- OTLP/HTTP JSON ---- */

/*
 * Appends an ExportTraceServiceRequest (protobuf JSON mapping: lowerCamelCase names, ids
 * as lowercase hex, times as decimal strings of nanoseconds, int64 as strings, enums as
 * numbers) holding spans[0..n) under one resource and one scope.
 */
void mg_otel_encode(const mg_otel_conf_t *c, mg_otel_span_t *const *spans, size_t n,
                    mg_buf_t *out);
/* Appends one span as an OTLP JSON span object (what the console exporter prints). */
void mg_otel_encode_span(const mg_otel_span_t *s, mg_buf_t *out);

#endif
