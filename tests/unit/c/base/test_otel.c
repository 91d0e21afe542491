/*
 * test_otel.c -- core/base/mg_otel.c: W3C traceparent parsing and formatting, the bounded
 * span queue, the exporter settings read from the environment (LiteLLM's names and
 * precedence, endpoint normalisation, header lists, warnings that never show a secret),
 * and the OTLP/HTTP JSON encoding read back with jansson.
 */
#include "mg_test.h"

#include "base/mg_otel.h"
#include "base/mg_scrub.h"

#include <jansson.h>

/* ---- traceparent ---- */

static bool
t_parse(const char *v, mg_otel_ctx_t *c)
{
    return mg_otel_traceparent_parse(v, strlen(v), c) == 0;
}

static void
test_traceparent(void)
{
    MG_T_CASE("traceparent");
    mg_otel_ctx_t c;
    const char *good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    CHECK(t_parse(good, &c));
    CHECK_INT(c.trace_id[0], 0x0a);
    CHECK_INT(c.trace_id[15], 0x9c);
    CHECK_INT(c.span_id[0], 0xb7);
    CHECK_INT(c.span_id[7], 0x31);
    CHECK_INT(c.flags, 1);
    CHECK(c.remote);
    char out[MG_OTEL_TRACEPARENT_LEN + 1];
    CHECK_INT(mg_otel_traceparent_format(&c, out), 55);
    CHECK_STR(out, good);
    CHECK(t_parse("  00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\t", &c),
          "surrounding blanks are allowed");
    CHECK_INT(c.flags, 0);
    /* refused: a new trace starts */
    static const char *const bad[] = {
        "",
        "00",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* version 01 */
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* forbidden version */
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  /* uppercase */
        "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0A",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  /* zero trace id */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  /* zero parent id */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", /* extra after 00 */
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-011",  /* short trace id */
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",  /* not hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333 -01",
        NULL,
    };
    for (const char *const *b = bad; *b; b++) {
        CHECK(!t_parse(*b, &c), "\"%s\" must be refused", *b);
    }
    CHECK(mg_otel_tracestate_ok("congo=t61rcWkgMzE", 17));
    CHECK(!mg_otel_tracestate_ok("a=b\r\nx: y", 10));
    CHECK(!mg_otel_tracestate_ok("", 0));
    char big[600];
    memset(big, 'a', sizeof(big));
    CHECK(!mg_otel_tracestate_ok(big, sizeof(big)), "longer than W3C's 512");
}

/* ---- spans and ids ---- */

static void
test_span(void)
{
    MG_T_CASE("span");
    mg_otel_span_t *root = mg_otel_span_new("Received Proxy Server Request", MG_OTEL_KIND_SERVER,
                                            NULL, 1000);
    static const uint8_t zero[16];
    CHECK(memcmp(root->ctx.trace_id, zero, 16) != 0, "a new trace id");
    CHECK(memcmp(root->ctx.span_id, zero, 8) != 0);
    CHECK(memcmp(root->parent_id, zero, 8) == 0, "a root has no parent");
    CHECK_INT(root->ctx.flags, MG_OTEL_FLAG_SAMPLED);
    mg_otel_span_t *child = mg_otel_span_new("litellm_request", MG_OTEL_KIND_CLIENT, &root->ctx,
                                             2000);
    CHECK(memcmp(child->ctx.trace_id, root->ctx.trace_id, 16) == 0, "same trace");
    CHECK(memcmp(child->parent_id, root->ctx.span_id, 8) == 0, "parent is the root");
    CHECK(memcmp(child->ctx.span_id, root->ctx.span_id, 8) != 0, "its own id");
    mg_otel_attr_cstr(child, "k", "v1");
    mg_otel_attr_cstr(child, "k", "v2");
    mg_otel_attr_int(child, "n", 7);
    mg_otel_attr_cstr(child, "absent", NULL);
    CHECK_INT(child->nattrs, 2); /* a key set twice is one attribute */
    const mg_otel_attr_t *a = mg_otel_attr_get(child, "k");
    CHECK(a != NULL && a->type == MG_OTEL_STR &&
          a->v.s.len == 2 && memcmp(mg_buf_head(&child->text) + a->v.s.off, "v2", 2) == 0);
    CHECK(mg_otel_attr_get(child, "absent") == NULL);
    for (int i = 0; i < MG_OTEL_MAX_ATTRS + 3; i++) {
        static const char *const keys[] = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8",
                                           "a9", "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7",
                                           "b8", "b9", "c0", "c1", "c2", "c3", "c4", "c5", "c6",
                                           "c7", "c8", "c9", "d0", "d1", "d2", "d3", "d4", "d5",
                                           "d6", "d7", "d8", "d9", "e0", "e1", "e2", "e3", "e4"};
        mg_otel_attr_bool(child, keys[i], true);
    }
    CHECK_INT(child->nattrs, MG_OTEL_MAX_ATTRS);
    CHECK_INT(child->dropped_attrs, 5); /* 2 + 43 set, 40 kept */
    /* values are scrubbed of key shapes and cut */
    mg_otel_span_t *s = mg_otel_span_new("x", MG_OTEL_KIND_INTERNAL, NULL, 1);
    mg_otel_span_status(s, MG_OTEL_STATUS_ERROR,
                        "upstream said: Incorrect API key provided: sk-proj-abcdefghijklmnop1234");
    const char *msg = mg_buf_head(&s->text) + s->msg_off;
    CHECK(memmem(msg, s->msg_len, "abcdefghijklmnop", 16) == NULL, "the key is redacted");
    char long_v[MG_OTEL_MAX_VALUE + 100];
    memset(long_v, 'x', sizeof(long_v));
    mg_otel_attr_str(s, "long", long_v, sizeof(long_v));
    CHECK_INT(mg_otel_attr_get(s, "long")->v.s.len, MG_OTEL_MAX_VALUE);
    mg_otel_span_free(s);
    mg_otel_span_free(root);
    mg_otel_span_free(child);
    mg_otel_span_free(NULL);
}

/* ---- queue ---- */

static void
test_queue(void)
{
    MG_T_CASE("queue");
    mg_otel_queue_t q;
    mg_otel_queue_init(&q, 3);
    mg_otel_span_t *s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = mg_otel_span_new("q", MG_OTEL_KIND_INTERNAL, NULL, i + 1);
    }
    CHECK(mg_otel_queue_push(&q, s[0]));
    CHECK(mg_otel_queue_push(&q, s[1]));
    CHECK(mg_otel_queue_push(&q, s[2]));
    CHECK(!mg_otel_queue_push(&q, s[3]), "full: refused (and freed)");
    CHECK_INT(q.dropped, 1);
    CHECK_INT(q.len, 3);
    mg_otel_span_t *out[4];
    CHECK_INT(mg_otel_queue_take(&q, out, 2), 2);
    CHECK(out[0] == s[0] && out[1] == s[1], "oldest first");
    CHECK(mg_otel_queue_push(&q, s[4]), "room again (the ring wraps)");
    CHECK_INT(mg_otel_queue_take(&q, out + 2, 4), 2);
    CHECK(out[2] == s[2] && out[3] == s[4]);
    CHECK_INT(q.pushed, 4);
    mg_otel_span_free(out[0]);
    mg_otel_span_free(out[1]);
    CHECK(mg_otel_queue_push(&q, out[2]));
    CHECK_INT(mg_otel_queue_free(&q), 1); /* what is left is freed and counted */
    mg_otel_span_free(out[3]);
}

/* ---- settings from the environment ---- */

static void
t_clear_env(void)
{
    extern char **environ;
    for (;;) {
        char **e = environ;
        while (*e != NULL && strncmp(*e, "OTEL_", 5) != 0 && strncmp(*e, "LITELLM_OTEL", 12) != 0) {
            e++;
        }
        if (*e == NULL) {
            break;
        }
        char name[128];
        size_t n = strcspn(*e, "=");
        snprintf(name, sizeof(name), "%.*s", (int) n, *e);
        unsetenv(name);
    }
}

static bool
t_warned(const mg_otel_conf_t *c, const char *needle)
{
    for (size_t i = 0; i < c->nwarnings; i++) {
        if (strstr(c->warnings[i], needle) != NULL) {
            return true;
        }
    }
    return false;
}

static void
t_url(const char *in, const char *want)
{
    char *u = mg_otel_traces_url(in);
    CHECK(strcmp(u, want) == 0, "traces url of \"%s\": got \"%s\", expected \"%s\"", in, u, want);
    free(u);
}

static void
test_conf(void)
{
    MG_T_CASE("conf defaults");
    mg_otel_conf_t c;
    t_clear_env();
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_CONSOLE); /* LiteLLM's default exporter is console */
    CHECK(c.endpoint == NULL);
    CHECK_STR(c.resource[0].name, "service.name");
    CHECK_STR(c.resource[0].value, "litellm");
    CHECK_STR(c.scope_name, "litellm");
    CHECK_INT(c.max_queue, 2048);
    CHECK_INT(c.max_batch, 512);
    CHECK_INT(c.schedule_delay_ms, 1000);
    CHECK_INT(c.nwarnings, 0);
    mg_otel_conf_free(&c);

    MG_T_CASE("conf endpoint");
    t_url("http://c:4318", "http://c:4318/v1/traces");
    t_url("http://c:4318/", "http://c:4318/v1/traces");
    t_url("http://c:4318/v1", "http://c:4318/v1/traces");
    t_url("http://c:4318/v1/traces", "http://c:4318/v1/traces");
    t_url("http://c:4318/v1/traces/", "http://c:4318/v1/traces");
    t_url("http://c:4318/v1/logs", "http://c:4318/v1/traces");
    t_url("http://c:4318/v1/metrics", "http://c:4318/v1/traces");
    t_url("https://api.honeycomb.io", "https://api.honeycomb.io/v1/traces");
    t_url("https://ingest.us0.signalfx.com/v2/trace/otlp", "https://ingest.us0.signalfx.com/v2/trace/otlp");
    setenv("OTEL_ENDPOINT", "http://collector:4318", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_OTLP_HTTP); /* an endpoint turns console into otlp_http */
    CHECK_STR(c.endpoint, "http://collector:4318/v1/traces");
    mg_otel_conf_free(&c);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318/v1", 1);
    mg_otel_conf_from_env(&c);
    CHECK_STR(c.endpoint, "http://other:4318/v1/traces"); /* OTEL_EXPORTER_OTLP_ENDPOINT wins */
    mg_otel_conf_free(&c);
    t_clear_env();
    setenv("OTEL_EXPORTER", "otlp_http", 1);
    mg_otel_conf_from_env(&c);
    CHECK_STR(c.endpoint, "http://localhost:4318/v1/traces"); /* the SDK's default endpoint */
    mg_otel_conf_free(&c);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom/path", 1);
    mg_otel_conf_from_env(&c);
    CHECK_STR(c.endpoint, "http://t:1/custom/path"); /* the traces endpoint is used as it is */
    mg_otel_conf_free(&c);
    t_clear_env();
    setenv("OTEL_ENDPOINT", "http://user:hunter2secret@c:4318", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_NONE); /* credentials in the URL are refused */
    CHECK(t_warned(&c, "OTEL_HEADERS"));
    CHECK(!t_warned(&c, "hunter2secret"), "the warning never shows the password");
    mg_otel_conf_free(&c);
    setenv("OTEL_ENDPOINT", "collector:4318", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_NONE);
    CHECK(t_warned(&c, "http:// or https://"));
    mg_otel_conf_free(&c);

    MG_T_CASE("conf exporters");
    t_clear_env();
    setenv("OTEL_EXPORTER", "otlp_grpc", 1);
    setenv("OTEL_ENDPOINT", "http://c:4317", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_NONE); /* gRPC is refused */
    CHECK(t_warned(&c, "only otlp_http"));
    CHECK_INT(c.nwarnings, 1); /* one line */
    mg_otel_conf_free(&c);
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_OTLP_HTTP); /* OTEL_EXPORTER_OTLP_PROTOCOL wins */
    mg_otel_conf_free(&c);
    t_clear_env();
    setenv("OTEL_EXPORTER", "zipkin", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_CONSOLE); /* an unknown exporter prints, as LiteLLM's does */
    CHECK(t_warned(&c, "zipkin"));
    mg_otel_conf_free(&c);
    t_clear_env();
    setenv("OTEL_SDK_DISABLED", "true", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.exporter, MG_OTEL_EXP_NONE);
    mg_otel_conf_free(&c);

    MG_T_CASE("conf headers");
    t_clear_env();
    setenv("OTEL_HEADERS", "x-honeycomb-team=abc=def123456, x-dataset = traces ,bogus,host=x,"
                           "x-bad=a\nb", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.nheaders, 2);
    CHECK_STR(c.headers[0].name, "x-honeycomb-team");
    CHECK_STR(c.headers[0].value, "abc=def123456"); /* split on the first '=' */
    CHECK_STR(c.headers[1].name, "x-dataset");
    CHECK_STR(c.headers[1].value, "traces");
    CHECK(t_warned(&c, "without '='"));
    CHECK(t_warned(&c, "\"host\" is set by moongate"));
    CHECK(t_warned(&c, "\"x-bad\" has a control character"));
    for (size_t i = 0; i < c.nwarnings; i++) {
        CHECK(strstr(c.warnings[i], "def123456") == NULL && strstr(c.warnings[i], "a\nb") == NULL,
              "no warning shows a value: %s", c.warnings[i]);
    }
    mg_otel_conf_free(&c);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer tok", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.nheaders, 1); /* OTEL_EXPORTER_OTLP_HEADERS wins over OTEL_HEADERS */
    CHECK_STR(c.headers[0].value, "Bearer tok");
    mg_otel_conf_free(&c);
    t_clear_env();
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=a%2Cb", 1);
    mg_otel_conf_from_env(&c);
    CHECK_INT(c.nheaders, 1);
    CHECK_STR(c.headers[0].value, "a,b"); /* the SDK's variable is percent-decoded */
    mg_otel_conf_free(&c);
    /* the values become secrets of the scrubber */
    mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
    mg_otel_headers_secrets("x-honeycomb-team=hc-secret-0123456789,x-other=short", &b);
    mg_scrub_set_t *set = mg_scrub_builder_finish(&b);
    char *clean = mg_scrub_cstr(set, "key hc-secret-0123456789 leaked");
    CHECK(strstr(clean, "hc-secret-0123456789") == NULL, "scrubbed: %s", clean);
    free(clean);
    mg_scrub_set_unref(set);

    MG_T_CASE("conf resource and the rest");
    t_clear_env();
    setenv("OTEL_SERVICE_NAME", "gateway-a", 1);
    setenv("OTEL_ENVIRONMENT_NAME", "staging", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,team=ml%20infra", 1);
    setenv("OTEL_TRACER_NAME", "moon", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "soon", 1);
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
    setenv("LITELLM_OTEL_INTEGRATION_ENABLE_METRICS", "true", 1);
    mg_otel_conf_from_env(&c);
    CHECK_STR(c.resource[0].value, "gateway-a"); /* OTEL_SERVICE_NAME wins over the attributes */
    bool env_ok = false, model_ok = false, team_ok = false;
    for (size_t i = 0; i < c.nresource; i++) {
        env_ok |= strcmp(c.resource[i].name, "deployment.environment") == 0 &&
                  strcmp(c.resource[i].value, "staging") == 0;
        model_ok |= strcmp(c.resource[i].name, "model_id") == 0 &&
                    strcmp(c.resource[i].value, "gateway-a") == 0;
        team_ok |= strcmp(c.resource[i].name, "team") == 0 &&
                   strcmp(c.resource[i].value, "ml infra") == 0;
    }
    CHECK(env_ok && model_ok && team_ok);
    CHECK_STR(c.scope_name, "moon");
    CHECK_INT(c.max_queue, 10);
    CHECK_INT(c.max_batch, 10); /* a batch is never larger than the queue */
    CHECK_INT(c.schedule_delay_ms, 1000);
    CHECK(t_warned(&c, "OTEL_BSP_SCHEDULE_DELAY=\"soon\""));
    CHECK(t_warned(&c, "OTEL_TRACES_SAMPLER is set, but moongate does not implement it"));
    CHECK(t_warned(&c, "OTEL_EXPORTER_OTLP_COMPRESSION is set"));
    CHECK(t_warned(&c, "LITELLM_OTEL_INTEGRATION_ENABLE_METRICS"));
    CHECK(!t_warned(&c, "OTEL_SERVICE_NAME"), "what is read is not warned about");
    mg_otel_conf_free(&c);
    t_clear_env();
}

/* ---- OTLP JSON ---- */

static json_t *
t_attr(json_t *list, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a) {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
            return json_object_get(a, "value");
        }
    }
    return NULL;
}

static void
test_encode(void)
{
    MG_T_CASE("encode");
    t_clear_env();
    setenv("OTEL_SERVICE_NAME", "svc", 1);
    mg_otel_conf_t c;
    mg_otel_conf_from_env(&c);
    mg_otel_ctx_t parent;
    CHECK(t_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", &parent));
    mg_otel_span_t *s = mg_otel_span_new("Received Proxy Server Request", MG_OTEL_KIND_SERVER,
                                         &parent, 1700000000123456789LL);
    s->end_ns = 1700000000223456789LL;
    mg_otel_attr_cstr(s, "gen_ai.request.model", "gpt-\"4o\"");
    mg_otel_attr_int(s, "http.response.status_code", 429);
    mg_otel_attr_double(s, "gen_ai.request.temperature", 0.25);
    mg_otel_attr_bool(s, "flag", false);
    mg_otel_span_status(s, MG_OTEL_STATUS_ERROR, "rate limited");
    mg_otel_span_t *k = mg_otel_span_new("litellm_request", MG_OTEL_KIND_CLIENT, &s->ctx,
                                         1700000000133456789LL);
    k->end_ns = k->start_ns;
    mg_otel_span_t *spans[2] = {s, k};
    mg_buf_t out = MG_BUF_INIT;
    mg_otel_encode(&c, spans, 2, &out);
    json_error_t je;
    json_t *j = json_loadb(mg_buf_head(&out), mg_buf_len(&out), 0, &je);
    CHECK(j != NULL, "valid JSON: %s", je.text);
    json_t *rs = json_array_get(json_object_get(j, "resourceSpans"), 0);
    json_t *svc = t_attr(json_object_get(json_object_get(rs, "resource"), "attributes"),
                         "service.name");
    CHECK_STR(json_string_value(json_object_get(svc, "stringValue")), "svc");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")), "litellm");
    json_t *js = json_array_get(json_object_get(ss, "spans"), 0);
    CHECK_STR(json_string_value(json_object_get(js, "traceId")), "0af7651916cd43dd8448eb211c80319c");
    CHECK_STR(json_string_value(json_object_get(js, "parentSpanId")), "b7ad6b7169203331");
    CHECK_INT(strlen(json_string_value(json_object_get(js, "spanId"))), 16);
    CHECK_INT(json_integer_value(json_object_get(js, "kind")), 2);
    CHECK_INT(json_integer_value(json_object_get(js, "flags")), 0x301); /* sampled, remote parent */
    CHECK_STR(json_string_value(json_object_get(js, "startTimeUnixNano")), "1700000000123456789");
    CHECK_STR(json_string_value(json_object_get(js, "endTimeUnixNano")), "1700000000223456789");
    json_t *attrs = json_object_get(js, "attributes");
    CHECK_STR(json_string_value(json_object_get(t_attr(attrs, "gen_ai.request.model"), "stringValue")),
              "gpt-\"4o\"");
    CHECK_STR(json_string_value(json_object_get(t_attr(attrs, "http.response.status_code"), "intValue")),
              "429");
    CHECK(json_real_value(json_object_get(t_attr(attrs, "gen_ai.request.temperature"), "doubleValue")) == 0.25);
    CHECK(json_is_false(json_object_get(t_attr(attrs, "flag"), "boolValue")));
    json_t *st = json_object_get(js, "status");
    CHECK_INT(json_integer_value(json_object_get(st, "code")), 2);
    CHECK_STR(json_string_value(json_object_get(st, "message")), "rate limited");
    json_t *jk = json_array_get(json_object_get(ss, "spans"), 1);
    CHECK_STR(json_string_value(json_object_get(jk, "parentSpanId")),
              json_string_value(json_object_get(js, "spanId")));
    CHECK_INT(json_integer_value(json_object_get(jk, "kind")), 3);
    CHECK_INT(json_integer_value(json_object_get(jk, "flags")), 0x101); /* a local parent */
    CHECK(json_object_get(jk, "status") == NULL, "unset status is left out");
    json_decref(j);
    mg_buf_free(&out);
    mg_otel_span_free(s);
    mg_otel_span_free(k);
    mg_otel_conf_free(&c);
    t_clear_env();
}

int
main(void)
{
    test_traceparent();
    test_span();
    test_queue();
    test_conf();
    test_encode();
    return mg_test_done();
}
