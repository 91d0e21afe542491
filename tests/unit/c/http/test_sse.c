/*
 * test_sse.c -- core/http/mg_sse.c: splitting an upstream SSE stream into whole events.
 */
#include "mg_test.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "http/mg_sse.h"

#define T_MAX_EVENTS 64

typedef struct {
    int n;
    mg_buf_t raw[T_MAX_EVENTS];
    mg_buf_t data[T_MAX_EVENTS];
    bool has_data[T_MAX_EVENTS];
    mg_buf_t all_raw;       /* concatenation of every raw event */
    int stop_after;         /* return false after this many events (0 = never) */
} t_events_t;

static bool
t_on_event(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    t_events_t *e = ud;
    if (e->n < T_MAX_EVENTS) {
        mg_buf_append(&e->raw[e->n], raw, raw_len);
        e->has_data[e->n] = data != NULL;
        if (data != NULL) {
            mg_buf_append(&e->data[e->n], data, data_len);
        }
    }
    mg_buf_append(&e->all_raw, raw, raw_len);
    e->n++;
    return e->stop_after == 0 || e->n < e->stop_after;
}

static void
t_events_free(t_events_t *e)
{
    for (int i = 0; i < T_MAX_EVENTS; i++) {
        mg_buf_free(&e->raw[i]);
        mg_buf_free(&e->data[i]);
    }
    mg_buf_free(&e->all_raw);
    memset(e, 0, sizeof(*e));
}

/* Feeds s in pieces of step bytes (0 = at once); returns the parser for pending checks. */
static void
t_feed(mg_sse_t *s, t_events_t *e, const char *in, size_t len, size_t step)
{
    memset(s, 0, sizeof(*s));
    memset(e, 0, sizeof(*e));
    for (size_t off = 0; off < len;) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        CHECK(mg_sse_feed(s, in + off, n, t_on_event, e) == MG_OK);
        off += n;
    }
}

static void
t_expect_data(t_events_t *e, int i, const char *want)
{
    if (i >= e->n) {
        MG_T_FAIL_AT("event %d missing (only %d)", i, e->n);
        return;
    }
    if (want == NULL) {
        CHECK(!e->has_data[i], "event %d has data \"%.*s\", expected none", i,
              (int) mg_buf_len(&e->data[i]), mg_buf_head(&e->data[i]));
        return;
    }
    CHECK(e->has_data[i], "event %d has no data, expected \"%s\"", i, want);
    CHECK_MEM(e->has_data[i] ? mg_buf_head(&e->data[i]) : "", mg_buf_len(&e->data[i]), want);
}

static void
test_stream(void)
{
    MG_T_CASE("a chat completion stream, in every split");
    const char *stream =
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
        ": keep-alive comment\n\n"
        "event: message\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\n"
        "data:{\"nospace\":1}\n\n"
        "data:  two-spaces\n\n"
        "data: line one\ndata: line two\ndata:\ndata: line four\n\n"
        "id: 7\nretry: 100\n\n"
        "data: mixed\n\r\n"
        "data: [DONE]\n\n"
        "data: partial";
    const char *want[] = {
        "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}",
        NULL,
        "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}",
        "{\"nospace\":1}",
        " two-spaces",
        "line one\nline two\n\nline four",
        NULL,
        "mixed",
        "[DONE]",
    };
    int nwant = (int) (sizeof(want) / sizeof(want[0]));
    size_t len = strlen(stream);
    for (size_t step = 0; step <= len; step = step == 0 ? 1 : step * 2 + 1) {
        mg_sse_t s;
        t_events_t e;
        t_feed(&s, &e, stream, len, step);
        CHECK(e.n == nwant, "step %zu: %d events, expected %d", step, e.n, nwant);
        for (int i = 0; i < nwant && i < e.n; i++) {
            t_expect_data(&e, i, want[i]);
        }
        /* raw events + pending bytes == the input, in order */
        CHECK_INT(mg_sse_pending(&s), strlen("data: partial"));
        CHECK(mg_buf_len(&e.all_raw) + mg_sse_pending(&s) == len &&
                  memcmp(mg_buf_head(&e.all_raw), stream, mg_buf_len(&e.all_raw)) == 0 &&
                  memcmp(mg_buf_head(&s.buf), stream + mg_buf_len(&e.all_raw),
                         mg_sse_pending(&s)) == 0,
              "step %zu: raw events + pending differ from the input", step);
        /* every raw event ends with its blank line */
        for (int i = 0; i < e.n && i < T_MAX_EVENTS; i++) {
            const char *r = mg_buf_head(&e.raw[i]);
            size_t rl = mg_buf_len(&e.raw[i]);
            CHECK(rl >= 2 && r[rl - 1] == '\n' &&
                  (r[rl - 2] == '\n' || (rl >= 3 && r[rl - 2] == '\r' && r[rl - 3] == '\n')));
        }
        t_events_free(&e);
        mg_sse_free(&s);
        CHECK_INT(mg_sse_pending(&s), 0);
    }
}

static void
test_terminator_across_feeds(void)
{
    MG_T_CASE("terminator split across feeds");
    mg_sse_t s;
    t_events_t e;
    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    const char *parts[] = {"data: a\n", "\n", "data: b\r\n", "\r", "\n", "data: c\n\r", "\n"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        CHECK(mg_sse_feed(&s, parts[i], strlen(parts[i]), t_on_event, &e) == MG_OK);
    }
    CHECK_INT(e.n, 3);
    t_expect_data(&e, 0, "a");
    t_expect_data(&e, 1, "b");
    t_expect_data(&e, 2, "c");
    CHECK_INT(mg_sse_pending(&s), 0);
    t_events_free(&e);
    mg_sse_free(&s);

    /* an empty feed is a no-op */
    memset(&s, 0, sizeof(s));
    CHECK(mg_sse_feed(&s, "", 0, t_on_event, &e) == MG_OK);
    CHECK_INT(e.n, 0);
    mg_sse_free(&s);
}

static void
test_stop(void)
{
    MG_T_CASE("callback stops the feed");
    mg_sse_t s;
    t_events_t e;
    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    e.stop_after = 1;
    const char *two = "data: 1\n\ndata: 2\n\n";
    CHECK(mg_sse_feed(&s, two, strlen(two), t_on_event, &e) == MG_OK);
    CHECK_INT(e.n, 1);
    t_events_free(&e);
    mg_sse_free(&s);
}

static void
test_oversize(void)
{
    MG_T_CASE("one event larger than MG_SSE_MAX_EVENT");
    size_t n = MG_SSE_MAX_EVENT + 10;
    char *big = malloc(n);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', n - 6);
    mg_sse_t s;
    t_events_t e;
    /* in one feed */
    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    CHECK(mg_sse_feed(&s, big, n, t_on_event, &e) == MG_ERROR);
    CHECK_INT(e.n, 0);
    mg_sse_free(&s);
    /* in many feeds: the error comes once the buffered event passes the limit */
    memset(&s, 0, sizeof(s));
    int rc = MG_OK;
    size_t off = 0;
    while (off < n && rc == MG_OK) {
        size_t k = n - off < 65536 ? n - off : 65536;
        rc = mg_sse_feed(&s, big + off, k, t_on_event, &e);
        off += k;
    }
    CHECK(rc == MG_ERROR);
    CHECK(off > MG_SSE_MAX_EVENT);
    CHECK_INT(e.n, 0);
    mg_sse_free(&s);
    /* a large but allowed event passes whole */
    memset(&s, 0, sizeof(s));
    size_t okn = 1024 * 1024;
    memcpy(big + okn - 2, "\n\n", 2);
    for (off = 0; off < okn; off += 4096) {
        CHECK(mg_sse_feed(&s, big + off, okn - off < 4096 ? okn - off : 4096, t_on_event, &e) ==
              MG_OK);
    }
    CHECK_INT(e.n, 1);
    CHECK_INT(mg_buf_len(&e.data[0]), okn - 2 - 6);
    t_events_free(&e);
    mg_sse_free(&s);
    free(big);
}

int
main(void)
{
    test_stream();
    test_terminator_across_feeds();
    test_stop();
    test_oversize();
    return mg_test_done();
}
