/*
 * mg_trace.h -- OpenTelemetry for LLM requests: the spans of one request and the worker's
 * exporter that sends them.
 *
 * A request traced (litellm_settings.callbacks has "otel") gets one SERVER span, "Received
 * Proxy Server Request" (LiteLLM's name), whose parent is the client's W3C traceparent when
 * it sent a valid one, and one CLIENT child, "litellm_request", per upstream attempt (a
 * retry or a fallback is one more child).  Each attempt's upstream request carries a
 * traceparent naming that attempt's span.  Spans go into the worker's bounded queue when
 * they end; a timer on the worker's event loop sends them in batches to the collector
 * (OTLP/HTTP, JSON) through an upstream pool of its own, or prints them (console).
 *
 * Owns: mg_trace_t (the exporter: queue, pool, the export in flight; single owner:
 * mg_gw_t.otel_exp), mg_trace_req_t (a request's open spans; owner: its mg_request_t,
 * freed by mg_trace_request_end).  Does not own the request, its arena or its headers.
 *
 * Off (no "otel"): gw->otel is NULL, no request gets an mg_trace_req_t, and every hook
 * below is one untaken branch.  Single-threaded: one exporter per worker.
 */
#ifndef MG_TRACE_H
#define MG_TRACE_H

#include "mg_gw.h"

#include "../base/mg_otel.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* One request's spans (tracing on). */
struct mg_trace_req_s {
    mg_otel_span_t *server;         /* owned until the request ends */
    mg_otel_span_t *attempt;        /* owned while an upstream attempt is open, else NULL */
    int64_t clock_ns;               /* realtime ns minus monotonic ns, at the request's start */
    int attempts;
    const char *tracestate;         /* borrowed: the client's (hr's lifetime), or NULL */
    size_t tracestate_len;
    char headers[MG_OTEL_TRACEPARENT_LEN + 560]; /* the open attempt's trace context lines */
};

/* Counters of one worker's exporter (for /moongate/state and /metrics). */
typedef struct {
    uint64_t spans_ended;           /* ended in a sampled trace: queued or dropped */
    uint64_t spans_dropped;         /* refused: the queue was full (or left at shutdown) */
    uint64_t spans_exported;        /* the collector accepted them (console: printed) */
    uint64_t spans_failed;          /* in a batch the collector refused or never answered */
    uint64_t spans_not_sampled;     /* the client's traceparent said "not sampled" */
    uint64_t exports_ok;
    uint64_t exports_failed;
    uint64_t invalid_traceparents;  /* client traceparents refused (a new trace started) */
    size_t queued;                  /* waiting now */
} mg_trace_counters_t;

/* ---- the exporter (one per worker) ---- */

/* Reads the OTEL_* environment (mg_otel_conf_from_env).  NULL when nothing would be exported
 * (otlp_grpc refused, OTEL_SDK_DISABLED, a bad endpoint): the config loader warned already. */
mg_trace_t *mg_trace_create(struct event_base *base, int worker_id);
/* Stops an export in flight; spans still queued are counted dropped and logged.  NULL ok. */
void mg_trace_destroy(mg_trace_t *t);
/*
 * Drain: sends everything queued now (in batches, back to back).  Returns true once nothing
 * is queued or in flight, or when the bound (min(OTEL_BSP_EXPORT_TIMEOUT, 5 s) from the
 * first call) has passed; false: call again later.  NULL: true.
 */
bool mg_trace_flush(mg_trace_t *t);
void mg_trace_counters(const mg_trace_t *t, mg_trace_counters_t *out);
/* Spans dropped because the queue was full: what a metrics counter reads.  NULL: 0. */
uint64_t mg_trace_dropped_spans(const mg_trace_t *t);
/* {"exporter","endpoint","queued",...counters,"last_error"} for /moongate/state (new ref),
 * or JSON null when t is NULL. */
json_t *mg_trace_state(const mg_trace_t *t);

/* ---- request hooks (mg_proxy.c) ---- */

void mg_trace_request_begin_(mg_request_t *r);
void mg_trace_attempt_begin_(mg_request_t *r);
void mg_trace_attempt_failed_(mg_request_t *r, const mg_uperr_t *e);
void mg_trace_request_end_(mg_request_t *r);

/* An LLM request starts (its server span; the client's traceparent is its parent). */
static inline void
mg_trace_request_begin(mg_request_t *r)
{
    if (r->gw->otel != NULL) {
        mg_trace_request_begin_(r);
    }
}

/* An upstream attempt starts on r->dep / r->prov (a CLIENT span; ends any open one). */
static inline void
mg_trace_attempt_begin(mg_request_t *r)
{
    if (r->trace != NULL) {
        mg_trace_attempt_begin_(r);
    }
}

/* The trace context lines for the attempt's upstream head (mg_call_t.trace_headers), NULL
 * when the request is not traced.  Valid until the next attempt starts. */
static inline const char *
mg_trace_headers(const mg_request_t *r)
{
    return r->trace != NULL ? r->trace->headers : NULL;
}

/* The open attempt failed with e (its span ends with an error status). */
static inline void
mg_trace_attempt_failed(mg_request_t *r, const mg_uperr_t *e)
{
    if (r->trace != NULL) {
        mg_trace_attempt_failed_(r, e);
    }
}

/* The request is finalised: an open attempt ends (it answered, or the client left), then
 * the server span; both are queued and r->trace is freed. */
static inline void
mg_trace_request_end(mg_request_t *r)
{
    if (r->trace != NULL) {
        mg_trace_request_end_(r);
    }
}

#endif
