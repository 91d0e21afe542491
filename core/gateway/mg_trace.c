/*
 * mg_trace.c -- a request's spans and the worker's OTLP exporter (see mg_trace.h).
 *
 * The exporter never runs inside a request's callbacks: ending a span only queues it (and
 * arms a timer when the queue was empty or reached a batch); the timer's callback encodes
 * a batch and starts one non-blocking POST through the exporter's own upstream pool.  One
 * export is in flight at a time; while it is, spans wait in the queue, and past its
 * capacity they are dropped and counted.  A failed export is logged (at most one line per
 * MG_TRACE_LOG_MS), its spans are counted failed, and it is never retried: the next batch
 * is the next try.
 */
#include "mg_trace.h"

#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* at most one log line about failed exports (or dropped spans) per this interval */
#define MG_TRACE_LOG_MS 10000
/* drain: the longest a worker waits for its last spans to leave */
#define MG_TRACE_FLUSH_MAX_MS 5000
/* bytes of a refused export's answer kept for the log line */
#define MG_TRACE_ERR_BODY 200

struct mg_trace_s {
    struct event_base *base;            /* borrowed: the worker's loop */
    int worker_id;
    mg_otel_conf_t conf;                /* owned */
    mg_otel_queue_t q;                  /* owned */
    mg_otel_span_t **batch;             /* owned: scratch for conf.max_batch spans */
    mg_upool_t *pool;                   /* owned: the collector's connections (never swept) */
    mg_upstream_t *up;                  /* ref: the collector; dropped in mg_trace_destroy() */
    mg_buf_t head_start;                /* owned: request line, host, content-type, OTEL_HEADERS */
    mg_client_t *client;                /* the export in flight, or NULL */
    mg_buf_t head, body;                /* owned: the in-flight export's bytes */
    struct iovec iov[2];
    size_t inflight;                    /* spans in the export in flight */
    int status;                         /* its HTTP status (0: no head yet) */
    char err_body[MG_TRACE_ERR_BODY + 1];
    size_t err_len;
    struct event timer;
    bool timer_on;
    int64_t timer_due_ms;               /* monotonic */
    bool flushing;
    int64_t flush_deadline_ms;
    mg_trace_counters_t n;
    char last_error[300];
    int64_t last_log_ms;                /* failures: last line written (monotonic, 0: none) */
    uint64_t failures_unlogged;
    int64_t last_drop_log_ms;
    uint64_t drops_unlogged;
};

static void mg_trace_export(mg_trace_t *t);

/* ---- exporter ---- */

static void
mg_trace_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_trace_t *t = arg;
    t->timer_on = false;
    mg_trace_export(t);
}

/* Arms the timer for the next export: now when a batch is full (or draining), else within
 * the schedule delay of the oldest span; an earlier due time stands. */
static void
mg_trace_schedule(mg_trace_t *t)
{
    if (t->client != NULL || t->q.len == 0) {
        return; /* the export in flight reschedules when it ends */
    }
    bool now = t->flushing || t->q.len >= (size_t) t->conf.max_batch;
    int64_t ms = now ? 0 : t->conf.schedule_delay_ms;
    int64_t due = mg_time_mono_ms() + ms;
    if (t->timer_on) {
        if (t->timer_due_ms <= due) {
            return;
        }
        evtimer_del(&t->timer);
    }
    struct timeval tv = {(time_t) (ms / 1000), (suseconds_t) ((ms % 1000) * 1000)};
    evtimer_add(&t->timer, &tv);
    t->timer_on = true;
    t->timer_due_ms = due;
}

static void
mg_trace_failed(mg_trace_t *t, size_t nspans, const char *why)
{
    t->n.exports_failed++;
    t->n.spans_failed += nspans;
    snprintf(t->last_error, sizeof(t->last_error), "%s", why);
    int64_t now = mg_time_mono_ms();
    if (t->last_log_ms != 0 && now - t->last_log_ms < MG_TRACE_LOG_MS) {
        t->failures_unlogged++;
        return;
    }
    char more[96] = "";
    if (t->failures_unlogged > 0) {
        snprintf(more, sizeof(more), " (%llu more failed exports since the last report)",
                 (unsigned long long) t->failures_unlogged);
    }
    mg_log(MG_LOG_WARN, NULL, "otel: exporting %zu spans to %s failed: %s; they are dropped, "
                              "requests are not affected%s", nspans, t->conf.endpoint, why, more);
    t->last_log_ms = now;
    t->failures_unlogged = 0;
}

static void
mg_trace_on_head(void *ud, const mg_http_head_t *head)
{
    mg_trace_t *t = ud;
    t->status = head->status;
}

static void
mg_trace_on_body(void *ud, const char *data, size_t len)
{
    mg_trace_t *t = ud;
    size_t room = MG_TRACE_ERR_BODY - t->err_len;
    size_t n = len < room ? len : room;
    memcpy(t->err_body + t->err_len, data, n);
    t->err_len += n;
    t->err_body[t->err_len] = '\0';
}

static void
mg_trace_on_done(void *ud, int rc, const mg_err_t *err)
{
    mg_trace_t *t = ud;
    mg_client_free(t->client); /* deferred by the client until we return */
    t->client = NULL;
    size_t n = t->inflight;
    t->inflight = 0;
    mg_buf_reset(&t->head);
    mg_buf_reset(&t->body);
    if (rc != MG_OK) {
        mg_trace_failed(t, n, err->msg);
    } else if (t->status < 200 || t->status >= 300) {
        char why[MG_TRACE_ERR_BODY + 64];
        for (size_t i = 0; i < t->err_len; i++) {
            if (t->err_body[i] == '\n' || t->err_body[i] == '\r') {
                t->err_body[i] = ' ';
            }
        }
        snprintf(why, sizeof(why), "the collector answered HTTP %d%s%s", t->status,
                 t->err_len > 0 ? ": " : "", t->err_body);
        mg_trace_failed(t, n, why);
    } else {
        t->n.exports_ok++;
        t->n.spans_exported += n;
    }
    mg_trace_schedule(t);
}

/* Prints a batch, one JSON line per span (OTEL_EXPORTER=console). */
static void
mg_trace_print(mg_trace_t *t, size_t n)
{
    mg_buf_t b = MG_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        mg_buf_reset(&b);
        mg_otel_encode_span(t->batch[i], &b);
        /* written at any log level, as LiteLLM's console exporter prints regardless */
        mg_log_write(MG_LOG_NOTICE, NULL, "otel span %s", mg_buf_cstr(&b));
        mg_otel_span_free(t->batch[i]);
    }
    mg_buf_free(&b);
    t->n.exports_ok++;
    t->n.spans_exported += n;
}

static void
mg_trace_export(mg_trace_t *t)
{
    if (t->client != NULL || t->q.len == 0) {
        return;
    }
    size_t n = mg_otel_queue_take(&t->q, t->batch, (size_t) t->conf.max_batch);
    if (t->conf.exporter == MG_OTEL_EXP_CONSOLE) {
        mg_trace_print(t, n);
        mg_trace_schedule(t);
        return;
    }
    mg_buf_reset(&t->body);
    mg_otel_encode(&t->conf, t->batch, n, &t->body);
    for (size_t i = 0; i < n; i++) {
        mg_otel_span_free(t->batch[i]);
    }
    mg_buf_reset(&t->head);
    mg_buf_append(&t->head, mg_buf_head(&t->head_start), mg_buf_len(&t->head_start));
    mg_buf_printf(&t->head, "content-length: %zu\r\n\r\n", mg_buf_len(&t->body));
    t->iov[0].iov_base = mg_buf_head(&t->head);
    t->iov[0].iov_len = mg_buf_len(&t->head);
    t->iov[1].iov_base = mg_buf_head(&t->body);
    t->iov[1].iov_len = mg_buf_len(&t->body);
    t->status = 0;
    t->err_len = 0;
    t->err_body[0] = '\0';
    int to = t->conf.export_timeout_ms;
    mg_client_timeouts_t tos = {to, to, to};
    mg_client_cbs_t cbs = {mg_trace_on_head, mg_trace_on_body, mg_trace_on_done};
    mg_err_t err;
    t->inflight = n;
    t->client = mg_client_start(t->up, t->iov, 2, &tos, &cbs, t, &err);
    if (t->client == NULL) {
        t->inflight = 0;
        mg_trace_failed(t, n, err.msg);
        mg_trace_schedule(t);
    }
}

/* The request head's fixed part for the endpoint: request line, host, OTEL_HEADERS. */
static bool
mg_trace_head_start(mg_trace_t *t, char **base)
{
    const char *url = t->conf.endpoint;
    const char *hp = strstr(url, "://") + 3;
    size_t al = strcspn(hp, "/?#");
    const char *path = hp + al;
    size_t pl = strcspn(path, "#");
    *base = mg_xstrndup(url, (size_t) (hp - url) + al);
    mg_buf_append_str(&t->head_start, "POST ");
    if (pl == 0 || path[0] != '/') {
        mg_buf_append_str(&t->head_start, "/");
    }
    mg_buf_append(&t->head_start, path, pl);
    mg_buf_append_str(&t->head_start, " HTTP/1.1\r\nhost: ");
    mg_buf_append(&t->head_start, hp, al);
    mg_buf_append_str(&t->head_start, "\r\ncontent-type: application/json\r\n"
                                      "user-agent: moongate/" MG_VERSION "\r\n");
    for (size_t i = 0; i < t->conf.nheaders; i++) {
        mg_buf_printf(&t->head_start, "%s: %s\r\n", t->conf.headers[i].name,
                      t->conf.headers[i].value);
    }
    return true;
}

mg_trace_t *
mg_trace_create(struct event_base *base, int worker_id)
{
    mg_trace_t *t = mg_xcalloc(1, sizeof(*t));
    mg_otel_conf_from_env(&t->conf);
    if (t->conf.exporter == MG_OTEL_EXP_NONE) {
        mg_otel_conf_free(&t->conf);
        free(t);
        return NULL;
    }
    t->base = base;
    t->worker_id = worker_id;
    mg_otel_queue_init(&t->q, (size_t) t->conf.max_queue);
    t->batch = mg_xcalloc((size_t) t->conf.max_batch, sizeof(*t->batch));
    evtimer_assign(&t->timer, base, mg_trace_timer_cb, t);
    if (t->conf.exporter == MG_OTEL_EXP_OTLP_HTTP) {
        char *url = NULL;
        mg_trace_head_start(t, &url);
        mg_upool_conf_t pc = {t->conf.export_timeout_ms, 30000, 2};
        t->pool = mg_upool_create(base, &pc);
        mg_err_t err;
        t->up = mg_upstream_get(t->pool, "otel", url, true, "", 0, &err);
        free(url);
        if (t->up == NULL) {
            mg_log(MG_LOG_ERROR, NULL, "otel: the endpoint %s cannot be used (%s); no spans are "
                                       "exported", t->conf.endpoint, err.msg);
            mg_upool_destroy(t->pool);
            t->pool = NULL;
            mg_buf_free(&t->head_start);
            mg_otel_queue_free(&t->q);
            free(t->batch);
            mg_otel_conf_free(&t->conf);
            free(t);
            return NULL;
        }
    }
    return t;
}

void
mg_trace_destroy(mg_trace_t *t)
{
    if (t == NULL) {
        return;
    }
    if (t->timer_on) {
        evtimer_del(&t->timer);
        t->timer_on = false;
    }
    if (t->client != NULL) {
        mg_client_free(t->client);
        t->client = NULL;
        t->n.spans_failed += t->inflight;
        t->n.exports_failed++;
    }
    size_t left = mg_otel_queue_free(&t->q);
    if (left > 0) {
        t->n.spans_dropped += left;
        mg_log(MG_LOG_WARN, NULL, "otel: %zu spans were not exported before the worker exited",
               left);
    }
    mg_upstream_unref(t->up);
    if (t->pool != NULL) {
        mg_upool_destroy(t->pool);
    }
    mg_buf_free(&t->head_start);
    mg_buf_free(&t->head);
    mg_buf_free(&t->body);
    free(t->batch);
    mg_otel_conf_free(&t->conf);
    free(t);
}

bool
mg_trace_flush(mg_trace_t *t)
{
    if (t == NULL) {
        return true;
    }
    int64_t now = mg_time_mono_ms();
    if (!t->flushing) {
        t->flushing = true;
        int bound = t->conf.export_timeout_ms < MG_TRACE_FLUSH_MAX_MS ? t->conf.export_timeout_ms
                                                                      : MG_TRACE_FLUSH_MAX_MS;
        t->flush_deadline_ms = now + bound;
    }
    if (t->q.len == 0 && t->client == NULL) {
        return true;
    }
    if (now >= t->flush_deadline_ms) {
        return true; /* what is left is counted (and logged) in mg_trace_destroy() */
    }
    mg_trace_schedule(t);
    return false;
}

/* Queues a span that ended (or frees it when its trace is not sampled). */
static void
mg_trace_finish(mg_trace_t *t, mg_otel_span_t *s)
{
    if (t == NULL || !(s->ctx.flags & MG_OTEL_FLAG_SAMPLED)) {
        if (t != NULL) {
            t->n.spans_not_sampled++;
        }
        mg_otel_span_free(s);
        return;
    }
    t->n.spans_ended++;
    if (!mg_otel_queue_push(&t->q, s)) {
        t->n.spans_dropped++;
        int64_t now = mg_time_mono_ms();
        if (t->last_drop_log_ms == 0 || now - t->last_drop_log_ms >= MG_TRACE_LOG_MS) {
            mg_log(MG_LOG_WARN, NULL, "otel: the span queue is full (%zu spans, "
                                      "OTEL_BSP_MAX_QUEUE_SIZE): %llu spans dropped since the "
                                      "last report; requests are not affected", t->q.cap,
                   (unsigned long long) (t->drops_unlogged + 1));
            t->last_drop_log_ms = now;
            t->drops_unlogged = 0;
        } else {
            t->drops_unlogged++;
        }
        return;
    }
    mg_trace_schedule(t);
}

void
mg_trace_counters(const mg_trace_t *t, mg_trace_counters_t *out)
{
    memset(out, 0, sizeof(*out));
    if (t != NULL) {
        *out = t->n;
        out->queued = t->q.len;
    }
}

uint64_t
mg_trace_dropped_spans(const mg_trace_t *t)
{
    return t != NULL ? t->n.spans_dropped : 0;
}

json_t *
mg_trace_state(const mg_trace_t *t)
{
    if (t == NULL) {
        return json_null();
    }
    const mg_trace_counters_t *n = &t->n;
    json_t *o = json_pack(
        "{s:s,s:s?,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s?}", "exporter",
        t->conf.exporter == MG_OTEL_EXP_OTLP_HTTP ? "otlp_http" : "console", "endpoint",
        t->conf.endpoint, "service_name", t->conf.resource[0].value, "queued",
        (json_int_t) t->q.len, "queue_capacity", (json_int_t) t->q.cap, "spans_ended",
        (json_int_t) n->spans_ended, "spans_dropped", (json_int_t) n->spans_dropped,
        "spans_exported", (json_int_t) n->spans_exported, "spans_failed",
        (json_int_t) n->spans_failed, "spans_not_sampled", (json_int_t) n->spans_not_sampled,
        "exports_ok", (json_int_t) n->exports_ok, "exports_failed", (json_int_t) n->exports_failed,
        "invalid_traceparents", (json_int_t) n->invalid_traceparents, "export_in_flight",
        t->client != NULL, "last_error", t->last_error[0] ? t->last_error : NULL);
    return o;
}

/* ---- request spans ---- */

#define MG_TRACE_SERVER_SPAN "Received Proxy Server Request"
#define MG_TRACE_ATTEMPT_SPAN "litellm_request"

static int64_t
mg_trace_now(const mg_trace_req_t *tr)
{
    return mg_time_mono_us() * 1000 + tr->clock_ns;
}

static const char *
mg_trace_operation(const mg_request_t *r)
{
    switch (r->api != NULL ? r->api->op : MG_OP_CHAT) {
    case MG_OP_COMPLETION:
        return "text_completion";
    case MG_OP_EMBEDDINGS:
        return "embeddings";
    case MG_OP_COUNT_TOKENS:
        return "count_tokens";
    default:
        return "chat";
    }
}

/* LiteLLM's exception class from a "litellm.RateLimitError: ..." message, else class. */
static void
mg_trace_error_attrs(mg_otel_span_t *s, const char *msg, int status, const char *cls)
{
    if (msg != NULL && strncmp(msg, "litellm.", 8) == 0) {
        size_t n = strcspn(msg + 8, ": ");
        if (n > 0 && n < 64) {
            mg_otel_attr_str(s, "error.type", msg + 8, n);
            cls = NULL;
        }
    }
    if (cls != NULL) {
        mg_otel_attr_cstr(s, "error.type", cls);
    }
    if (msg != NULL) {
        mg_otel_attr_cstr(s, "error.message", msg);
    }
    if (status > 0) {
        char code[16];
        snprintf(code, sizeof(code), "%d", status);
        mg_otel_attr_cstr(s, "error.code", code); /* LiteLLM's: the status, as a string */
    }
}

/* The request parameters GenAI's conventions name, when the client set them. */
static void
mg_trace_request_params(mg_request_t *r, mg_otel_span_t *s)
{
    const mg_json_member_t *m = mg_api_member(&r->q, "max_tokens");
    if (m == NULL || m->type != MG_JSON_NUMBER) {
        m = mg_api_member(&r->q, "max_completion_tokens");
    }
    if (m != NULL && m->type == MG_JSON_NUMBER) {
        mg_otel_attr_int(s, "gen_ai.request.max_tokens", mg_clamp_i64(mg_api_member_num(m, 0)));
    }
    m = mg_api_member(&r->q, "temperature");
    if (m != NULL && m->type == MG_JSON_NUMBER) {
        mg_otel_attr_double(s, "gen_ai.request.temperature", mg_api_member_num(m, 0));
    }
    m = mg_api_member(&r->q, "top_p");
    if (m != NULL && m->type == MG_JSON_NUMBER) {
        mg_otel_attr_double(s, "gen_ai.request.top_p", mg_api_member_num(m, 0));
    }
}

static void
mg_trace_usage(const mg_usage_t *u, mg_otel_span_t *s)
{
    if (!u->seen) {
        return;
    }
    mg_otel_attr_int(s, "gen_ai.usage.input_tokens", u->prompt_tokens);
    mg_otel_attr_int(s, "gen_ai.usage.output_tokens", u->completion_tokens);
    mg_otel_attr_int(s, "gen_ai.usage.total_tokens", mg_usage_total(u));
}

void
mg_trace_request_begin_(mg_request_t *r)
{
    mg_trace_t *t = r->gw->otel;
    mg_trace_req_t *tr = mg_xcalloc(1, sizeof(*tr));
    tr->clock_ns = mg_otel_now_ns() - mg_time_mono_us() * 1000;
    mg_otel_ctx_t parent;
    bool have = false;
    size_t n;
    const char *tp = t->conf.ignore_parent ? NULL : mg_http_req_header(r->hr, "traceparent", &n);
    if (tp != NULL) {
        have = mg_otel_traceparent_parse(tp, n, &parent) == MG_OK;
        if (!have) {
            t->n.invalid_traceparents++; /* W3C: an invalid header starts a new trace */
        } else {
            const char *ts = mg_http_req_header(r->hr, "tracestate", &n);
            if (ts != NULL && mg_otel_tracestate_ok(ts, n)) {
                tr->tracestate = ts;
                tr->tracestate_len = n;
            }
        }
    }
    tr->server = mg_otel_span_new(MG_TRACE_SERVER_SPAN, MG_OTEL_KIND_SERVER, have ? &parent : NULL,
                                  r->hr->start_us * 1000 + tr->clock_ns);
    r->trace = tr;
}

/* Ends the open attempt span and queues it. */
static void
mg_trace_attempt_close(mg_request_t *r)
{
    mg_trace_req_t *tr = r->trace;
    if (tr->attempt == NULL) {
        return;
    }
    tr->attempt->end_ns = mg_trace_now(tr);
    mg_trace_finish(r->gw->otel_exp, tr->attempt);
    tr->attempt = NULL;
}

void
mg_trace_attempt_begin_(mg_request_t *r)
{
    mg_trace_req_t *tr = r->trace;
    mg_trace_attempt_close(r); /* one that ended without a verdict (none does today) */
    tr->attempts++;
    mg_otel_span_t *s = mg_otel_span_new(MG_TRACE_ATTEMPT_SPAN, MG_OTEL_KIND_CLIENT,
                                         &tr->server->ctx, mg_trace_now(tr));
    tr->attempt = s;
    const mg_deployment_t *d = r->dep;
    mg_otel_attr_cstr(s, "gen_ai.system", d->provider[0] ? d->provider : "Unknown");
    mg_otel_attr_cstr(s, "gen_ai.operation.name", mg_trace_operation(r));
    mg_otel_attr_cstr(s, "gen_ai.request.model", r->upstream_model);
    mg_otel_attr_cstr(s, "litellm.model_group", r->group_name);
    mg_otel_attr_cstr(s, "metadata.model_group", r->group_name);
    mg_otel_attr_cstr(s, "litellm.model_id", d->id);
    mg_otel_attr_cstr(s, "litellm.provider.model", d->litellm_model);
    mg_otel_attr_cstr(s, "metadata.deployment", d->litellm_model);
    const char *base = d->prov != NULL ? mg_provider_base(d->prov, d) : d->api_base;
    if (base != NULL) {
        mg_otel_attr_str(s, "metadata.api_base", base, strcspn(base, "?#"));
    }
    mg_otel_attr_cstr(s, "llm.is_streaming", r->stream ? "True" : "False");
    mg_otel_attr_int(s, "moongate.attempt", tr->attempts);
    mg_trace_request_params(r, s);
    /* what the upstream gets: this attempt's span as the parent */
    char tp[MG_OTEL_TRACEPARENT_LEN + 1];
    mg_otel_traceparent_format(&s->ctx, tp);
    int len = snprintf(tr->headers, sizeof(tr->headers), "traceparent: %s\r\n", tp);
    if (tr->tracestate != NULL && len > 0 &&
        (size_t) len + tr->tracestate_len + 14 < sizeof(tr->headers)) {
        snprintf(tr->headers + len, sizeof(tr->headers) - (size_t) len, "tracestate: %.*s\r\n",
                 (int) tr->tracestate_len, tr->tracestate);
    }
}

void
mg_trace_attempt_failed_(mg_request_t *r, const mg_uperr_t *e)
{
    mg_otel_span_t *s = r->trace->attempt;
    if (s == NULL) {
        return; /* refused before any attempt (no deployment, context window) */
    }
    if (r->up_status > 0) {
        mg_otel_attr_int(s, "http.response.status_code", r->up_status);
    }
    mg_otel_span_status(s, MG_OTEL_STATUS_ERROR, e->message);
    mg_trace_error_attrs(s, e->message, e->status, mg_err_class_name(e->cls));
    mg_trace_attempt_close(r);
}

/* The upstream's own model name in a JSON answer (the relay restamps the client's copy). */
static void
mg_trace_response_model(mg_request_t *r, mg_otel_span_t *s)
{
    if (r->up_stream || mg_buf_len(&r->up_body) == 0) {
        return;
    }
    mg_json_member_t m;
    char name[256];
    if (mg_json_obj_find(mg_buf_head(&r->up_body), mg_buf_len(&r->up_body), "model", &m) == 1 &&
        m.type == MG_JSON_STRING && m.val_len < sizeof(name)) {
        long n = mg_json_str_decode(m.val, m.val_len, name);
        if (n > 0) {
            mg_otel_attr_str(s, "gen_ai.response.model", name, (size_t) n);
        }
    }
}

void
mg_trace_request_end_(mg_request_t *r)
{
    mg_trace_req_t *tr = r->trace;
    mg_http_req_t *hr = r->hr;
    int status = hr->status;
    bool answered = hr->finished && status >= 200 && status < 400;
    bool broken = r->stream_errored || r->decode_error != NULL;
    const char *why = NULL;
    if (!hr->finished) {
        why = "the client closed the connection before the answer was complete";
    } else if (answered && broken) {
        why = "the upstream stream failed mid-way";
    }
    mg_otel_span_t *a = tr->attempt;
    if (a != NULL) {
        /* the attempt that answered (or was cut off by the client) */
        if (r->up_status > 0) {
            mg_otel_attr_int(a, "http.response.status_code", r->up_status);
        }
        mg_trace_usage(&r->usage, a);
        mg_trace_response_model(r, a);
        /* up_status 0: answered here (a token count estimate) */
        bool ok = answered && !broken && (r->up_status == 0 || (r->up_status >= 200 &&
                                                                r->up_status < 300));
        mg_otel_span_status(a, ok ? MG_OTEL_STATUS_OK : MG_OTEL_STATUS_ERROR, ok ? NULL : why);
        mg_trace_attempt_close(r);
    }
    mg_otel_span_t *s = tr->server;
    mg_otel_attr_cstr(s, "http.request.method", "POST");
    mg_otel_attr_str(s, "url.path", r->path, r->path_len);
    if (r->route_path != NULL) {
        mg_otel_attr_cstr(s, "http.route", r->route_path);
    }
    if (status > 0) {
        mg_otel_attr_int(s, "http.response.status_code", status);
    }
    mg_otel_attr_cstr(s, "litellm.call_id", r->call_id);
    mg_otel_attr_cstr(s, "gen_ai.operation.name", mg_trace_operation(r));
    mg_otel_attr_cstr(s, "gen_ai.request.model", r->model);
    const char *group = r->primary_group != NULL ? r->primary_group : r->group_name;
    mg_otel_attr_cstr(s, "litellm.model_group", group);
    mg_otel_attr_cstr(s, "metadata.model_group", group);
    mg_otel_attr_cstr(s, "llm.is_streaming", r->stream ? "True" : "False");
    mg_otel_attr_int(s, "litellm.attempts", tr->attempts);
    mg_otel_attr_int(s, "litellm.attempted_retries", r->retries_done);
    if (answered && r->dep != NULL) {
        mg_otel_attr_cstr(s, "litellm.model_id", r->dep->id);
    }
    if (answered && !broken) {
        mg_trace_usage(&r->usage, s);
        mg_otel_span_status(s, MG_OTEL_STATUS_OK, NULL);
    } else {
        const char *msg = why;
        if (msg == NULL) {
            msg = r->first_up_message != NULL ? r->first_up_message
                  : r->first_error != NULL    ? r->first_error
                                              : mg_http_status_text(status);
        }
        mg_otel_span_status(s, MG_OTEL_STATUS_ERROR, msg);
        mg_trace_error_attrs(s, msg, status, NULL);
    }
    s->end_ns = mg_trace_now(tr);
    mg_trace_finish(r->gw->otel_exp, s);
    free(tr);
    r->trace = NULL;
}
