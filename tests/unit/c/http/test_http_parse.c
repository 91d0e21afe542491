/*
 * test_http_parse.c -- core/http/mg_http_parse.c: request/response heads, limits,
 * smuggling rejections, chunked decoding.
 */
#include "mg_test.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "http/mg_http_parse.h"

typedef struct {
    ssize_t rc;
    int status;
    const char *why;
    mg_http_head_t h;
} t_req_t;

static t_req_t t_r; /* mg_http_head_t is large: keep it off the stack */

static ssize_t
t_req(const char *s)
{
    memset(&t_r, 0, sizeof(t_r));
    t_r.rc = mg_http_parse_request(s, strlen(s), &t_r.h, &t_r.status, &t_r.why);
    return t_r.rc;
}

static ssize_t
t_resp(const char *s)
{
    memset(&t_r, 0, sizeof(t_r));
    t_r.rc = mg_http_parse_response(s, strlen(s), &t_r.h, &t_r.status, &t_r.why);
    return t_r.rc;
}

/* Expects a rejection with this status (0: any); prints the reason on mismatch. */
static void
t_reject(const char *s, int status, const char *why_part)
{
    ssize_t rc = t_req(s);
    CHECK(rc == -1 && (status == 0 || t_r.status == status),
          "request %.60s...: rc %zd status %d (%s), expected %d", s, rc, t_r.status,
          t_r.why ? t_r.why : "", status);
    if (why_part != NULL) {
        CHECK_CONTAINS(t_r.why, why_part);
    }
}

static void
test_request_ok(void)
{
    MG_T_CASE("request heads");
    const char *get = "GET /v1/models?x=1 HTTP/1.1\r\nHost: localhost:4000\r\n"
                      "Authorization: Bearer sk-1\r\n\r\n";
    CHECK_INT(t_req(get), strlen(get));
    CHECK_MEM(t_r.h.method, t_r.h.method_len, "GET");
    CHECK_MEM(t_r.h.target, t_r.h.target_len, "/v1/models?x=1");
    CHECK_INT(t_r.h.version_minor, 1);
    CHECK_INT(t_r.h.nheaders, 2);
    CHECK_MEM(t_r.h.headers[0].name, t_r.h.headers[0].name_len, "Host");
    CHECK_MEM(t_r.h.headers[0].value, t_r.h.headers[0].value_len, "localhost:4000");
    CHECK_INT(t_r.h.head_len, strlen(get));
    CHECK_INT(t_r.h.content_length, -1);
    CHECK(!t_r.h.chunked && t_r.h.keep_alive && !t_r.h.expect_continue && !t_r.h.upgrade);
    const mg_http_header_t *auth = mg_http_header_find(&t_r.h, "authorization");
    CHECK(auth != NULL);
    CHECK(auth != NULL && auth->value_len == 11 && memcmp(auth->value, "Bearer sk-1", 11) == 0);
    CHECK(mg_http_header_find(&t_r.h, "content-type") == NULL);

    /* the head length excludes the body that follows */
    const char *post = "POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 2\r\n"
                       "Expect: 100-continue\r\n\r\n{}";
    CHECK_INT(t_req(post), strlen(post) - 2);
    CHECK_INT(t_r.h.content_length, 2);
    CHECK(t_r.h.expect_continue);

    /* every prefix of a head is "need more" */
    bool more = true;
    for (size_t n = 0; n < strlen(get) && more; n++) {
        int st;
        const char *why;
        more = mg_http_parse_request(get, n, &t_r.h, &st, &why) == 0;
        if (!more) {
            MG_T_FAIL_AT("prefix of %zu bytes did not ask for more", n);
        }
    }

    /* OWS around values, leading empty lines (CRLF) */
    const char *ows = "\r\n\r\nPOST /x HTTP/1.1\r\nX-A:   spaced value \t\r\n"
                      "Content-Length:0\r\n\r\n";
    CHECK_INT(t_req(ows), strlen(ows));
    CHECK_MEM(t_r.h.headers[0].value, t_r.h.headers[0].value_len, "spaced value");
    CHECK_INT(t_r.h.content_length, 0);
    CHECK_MEM(t_r.h.method, t_r.h.method_len, "POST");

    /* empty header value */
    CHECK(t_req("GET / HTTP/1.1\r\nX-Empty:\r\n\r\n") > 0);
    CHECK_INT(t_r.h.headers[0].value_len, 0);

    /* keep-alive rules */
    t_req("GET / HTTP/1.0\r\n\r\n");
    CHECK(!t_r.h.keep_alive && t_r.h.version_minor == 0);
    t_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK(t_r.h.keep_alive);
    t_req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(!t_r.h.keep_alive);
    t_req("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n");
    CHECK(t_r.h.keep_alive && t_r.h.upgrade);
    t_req("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n");
    CHECK(t_r.h.keep_alive); /* a token list, not a substring match */

    /* Transfer-Encoding: chunked, case-insensitive */
    t_req("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
    CHECK(t_r.rc > 0 && t_r.h.chunked && t_r.h.content_length == -1);

    /* MG_HTTP_MAX_REQUEST_HEADERS (100) fields are fine */
    static char many[128 * 16 + 64];
    size_t o = (size_t) sprintf(many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MG_HTTP_MAX_REQUEST_HEADERS; i++) {
        o += (size_t) sprintf(many + o, "X-H%03d: v\r\n", i);
    }
    sprintf(many + o, "\r\n");
    CHECK(t_req(many) > 0);
    CHECK_INT(t_r.h.nheaders, 100);

    /* HTTP/1.0 with Content-Length (no Transfer-Encoding) is fine */
    CHECK(t_req("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n") > 0);
    CHECK_INT(t_r.h.content_length, 2);
}

static void
test_request_errors(void)
{
    MG_T_CASE("request errors and limits");
    t_reject("GET / HTTP/2.0\r\n\r\n", 505, "version");
    t_reject("GET / HTTP/1.2\r\n\r\n", 505, NULL);
    t_reject("GET / FOO/1.1\r\n\r\n", 400, NULL);
    t_reject("GET /\r\n\r\n", 400, NULL);
    t_reject("GET  HTTP/1.1\r\n\r\n", 400, NULL);
    t_reject("G@T / HTTP/1.1\r\n\r\n", 400, NULL);
    t_reject(" GET / HTTP/1.1\r\n\r\n", 400, NULL);
    t_reject("GET /a\x01 HTTP/1.1\r\n\r\n", 400, "request target");
    t_reject("GET /a\x7f HTTP/1.1\r\n\r\n", 400, "request target");
    t_reject("GET / HTTP/1.1 \r\n\r\n", 0, NULL); /* 505 today; 400 would do as well */
    t_reject("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "header name");
    t_reject("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", 400, "header name");
    t_reject("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", 400, "header name");
    t_reject("GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", 400, "header value");
    t_reject("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400, "bare CR");
    t_reject("GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", 400, "header value");

    /* request smuggling */
    t_reject("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
             "both");
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n", 400,
             "both");
    t_reject("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
             "duplicate Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400, "Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400, "Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n", 400,
             "Content-Length");
    t_reject("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400, "header name");
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400, "header name");
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, NULL);
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501, NULL);
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501, NULL);
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", 501, NULL);
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: \x0b" "chunked\r\n\r\n", 400, NULL);
    t_reject("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
             400, "duplicate Transfer-Encoding");
    t_reject("POST / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n", 400, "folding");
    t_reject("POST / HTTP/1.1\r\nX-A: a\r\n\tfolded\r\n\r\n", 400, "folding");
    t_reject("POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n\r\n", 400, "folding");

    /* too many header fields: 431 from the 101st on */
    static char many[200 * 16 + 64];
    size_t o = (size_t) sprintf(many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MG_HTTP_MAX_REQUEST_HEADERS + 1; i++) {
        o += (size_t) sprintf(many + o, "X-H%03d: v\r\n", i);
    }
    sprintf(many + o, "\r\n");
    t_reject(many, 431, "too many header fields (more than 100)");

    /* HTTP/1.0 with Transfer-Encoding: faulty framing (RFC 9112 6.1) */
    t_reject("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
    t_reject("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
             NULL);
}

static void
test_request_line_ends(void)
{
    MG_T_CASE("request heads: CRLF only");
    /* a bare LF anywhere in the head, or a bare CR, is a 400 */
    t_reject("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF");
    t_reject("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF");
    t_reject("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF");
    t_reject("GET / HTTP/1.1\n\n", 400, "bare LF");
    t_reject("POST /x HTTP/1.1\nX-A: v\nContent-Length:0\n\n", 400, "bare LF");
    t_reject("\nGET / HTTP/1.1\r\n\r\n", 400, "bare LF");  /* nor before the request line */
    t_reject("\r\n\nGET / HTTP/1.1\r\n\r\n", 400, "bare LF");
    t_reject("GET / HTTP/1.1\r\r\n\r\n", 400, "bare CR");
    /* refused as soon as the bare LF arrives, without waiting for the rest */
    t_reject("GET / HTTP/1.1\nHost: a", 400, "bare LF");
    /* a CR at the very end of what arrived so far: need more */
    CHECK_INT(t_req("GET / HTTP/1.1\r"), 0);
    CHECK_INT(t_req("GET / HTTP/1.1\r\nHost: a\r\n\r"), 0);
    /* the body after the head may hold anything */
    const char *post = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb";
    CHECK_INT(t_req(post), strlen(post) - 3);

    /* responses from upstreams keep the tolerance for bare LF */
    CHECK(t_resp("HTTP/1.1 200 OK\nContent-Length: 0\n\n") > 0);
    CHECK_INT(t_r.h.content_length, 0);
    /* and an upstream's HTTP/1.0 chunked response is decoded as chunked */
    CHECK(t_resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    CHECK(t_r.h.chunked);

    /* head larger than 64 KiB: 431, complete or not */
    static char big[MG_HTTP_MAX_HEAD + 200];
    const char *line = "GET / HTTP/1.1\r\nX-Big: ";
    size_t ll = strlen(line);
    memcpy(big, line, ll);
    memset(big + ll, 'a', sizeof(big) - ll);
    int st = 0;
    const char *why = NULL;
    /* no terminator and more than the limit buffered: 431 without waiting */
    CHECK_INT(mg_http_parse_request(big, MG_HTTP_MAX_HEAD + 1, &t_r.h, &st, &why), -1);
    CHECK_INT(st, 431);
    /* up to the limit without a terminator: still "need more" */
    CHECK_INT(mg_http_parse_request(big, MG_HTTP_MAX_HEAD, &t_r.h, &st, &why), 0);
    /* a complete head of exactly 64 KiB is accepted, one byte more is not */
    memcpy(big + MG_HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
    CHECK_INT(mg_http_parse_request(big, MG_HTTP_MAX_HEAD, &t_r.h, &st, &why), MG_HTTP_MAX_HEAD);
    memset(big + MG_HTTP_MAX_HEAD - 4, 'a', 4);
    memcpy(big + MG_HTTP_MAX_HEAD - 3, "\r\n\r\n", 4);
    CHECK_INT(mg_http_parse_request(big, MG_HTTP_MAX_HEAD + 1, &t_r.h, &st, &why), -1);
    CHECK_INT(st, 431);
}

static void
test_response(void)
{
    MG_T_CASE("response heads");
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
                     "\r\nhello";
    CHECK_INT(t_resp(ok), strlen(ok) - 5);
    CHECK_INT(t_r.h.status, 200);
    CHECK_MEM(t_r.h.reason, t_r.h.reason_len, "OK");
    CHECK_INT(t_r.h.content_length, 5);
    CHECK(t_r.h.keep_alive);

    CHECK(t_resp("HTTP/1.1 204\r\n\r\n") > 0);
    CHECK_INT(t_r.h.status, 204);
    CHECK_INT(t_r.h.reason_len, 0);
    CHECK(t_resp("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n") > 0);
    CHECK_MEM(t_r.h.reason, t_r.h.reason_len, "Too Many Requests");
    CHECK(t_resp("HTTP/1.0 200 OK\r\n\r\n") > 0);
    CHECK(!t_r.h.keep_alive);
    CHECK(t_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    CHECK(t_r.h.chunked);
    CHECK_INT(t_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), 0);

    /* a response head may carry up to MG_HTTP_MAX_HEADERS (128) fields */
    static char many[130 * 16 + 64];
    size_t o = (size_t) sprintf(many, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < MG_HTTP_MAX_HEADERS; i++) {
        o += (size_t) sprintf(many + o, "X-H%03d: v\r\n", i);
    }
    sprintf(many + o, "\r\n");
    CHECK(t_resp(many) > 0);
    CHECK_INT(t_r.h.nheaders, 128);

    const char *bad[] = {
        "HTTP/1.1 20 OK\r\n\r\n",        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",      "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",      "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header: v\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ssize_t rc = t_resp(bad[i]);
        CHECK(rc == -1 && t_r.status == 502, "response %s: rc %zd status %d", bad[i], rc,
              t_r.status);
    }
}

/* ---- chunked ---- */

typedef struct {
    int rc;
    char out[8192];
    size_t out_len;
    size_t consumed;
} t_ck_t;

static bool t_lenient; /* decode as the upstream client does */

/* Decodes s in pieces of at most step bytes (0 = all at once), as the server feeds it. */
static void
t_chunked(const char *s, size_t len, size_t step, t_ck_t *res)
{
    mg_http_chunked_t c;
    memset(&c, 0, sizeof(c));
    c.lenient = t_lenient;
    memset(res, 0, sizeof(*res));
    size_t off = 0;
    res->rc = 0;
    while (off < len) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        char piece[8192];
        memcpy(piece, s + off, n);
        size_t plen = n, consumed = 0;
        int rc = mg_http_chunked_decode(&c, piece, &plen, &consumed);
        res->rc = rc;
        if (rc < 0) {
            return;
        }
        memcpy(res->out + res->out_len, piece, plen);
        res->out_len += plen;
        res->consumed += consumed;
        if (rc == 1) {
            return;
        }
        off += n;
    }
}

static void
t_chunked_okn(const char *s, size_t len, const char *payload, size_t plen, size_t consumed)
{
    size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        t_ck_t r;
        t_chunked(s, len, steps[i], &r);
        CHECK(r.rc == 1, "chunked %s (step %zu%s): rc %d", s, steps[i],
              t_lenient ? ", lenient" : "", r.rc);
        CHECK(r.out_len == plen && memcmp(r.out, payload, r.out_len) == 0,
              "chunked %s (step %zu): payload \"%.*s\"", s, steps[i], (int) r.out_len, r.out);
        CHECK(r.consumed == consumed, "chunked %s (step %zu): consumed %zu, expected %zu", s,
              steps[i], r.consumed, consumed);
    }
}

static void
t_chunked_ok(const char *s, const char *payload, size_t consumed)
{
    t_chunked_okn(s, strlen(s), payload, strlen(payload), consumed);
}

static void
t_chunked_bad(const char *s)
{
    size_t steps[] = {0, 1};
    for (size_t i = 0; i < 2; i++) {
        t_ck_t r;
        t_chunked(s, strlen(s), steps[i], &r);
        CHECK(r.rc == -1, "chunked %s (step %zu%s): rc %d, expected -1", s, steps[i],
              t_lenient ? ", lenient" : "", r.rc);
    }
}

static void
test_chunked(void)
{
    MG_T_CASE("chunked decoding");
    const char *simple = "5\r\nhello\r\n0\r\n\r\n";
    t_chunked_ok(simple, "hello", strlen(simple));
    const char *multi = "3\r\nabc\r\nA\r\n0123456789\r\na\r\nABCDEFGHIJ\r\n0\r\n\r\n";
    t_chunked_ok(multi, "abc0123456789ABCDEFGHIJ", strlen(multi));
    const char *ext = "5;name=value;x=\"q\"\r\nhello\r\n5 ; ws\r\nworld\r\n0;last\r\n\r\n";
    t_chunked_ok(ext, "helloworld", strlen(ext));
    const char *trailers = "2\r\nok\r\n0\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n";
    t_chunked_ok(trailers, "ok", strlen(trailers));
    const char *zeros = "0000000000000002\r\nok\r\n0\r\n\r\n"; /* 16 digits: the maximum */
    t_chunked_ok(zeros, "ok", strlen(zeros));
    t_chunked_ok("0\r\n\r\n", "", 5);
    /* pipelining: bytes after the terminator are not consumed */
    const char *pipe = "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    t_chunked_ok(pipe, "x", strlen(pipe) - strlen("GET / HTTP/1.1\r\n\r\n"));
    /* binary payload with CR/LF/NUL inside a chunk */
    const char bin[] = "4\r\n\r\n\0\n\r\n0\r\n\r\n";
    t_chunked_okn(bin, sizeof(bin) - 1, "\r\n\0\n", 4, sizeof(bin) - 1);

    /* need more: returns 0 with what it decoded so far, all input consumed */
    mg_http_chunked_t c;
    memset(&c, 0, sizeof(c));
    char b1[] = "5\r\nhel";
    size_t l1 = strlen(b1), cons = 0;
    CHECK_INT(mg_http_chunked_decode(&c, b1, &l1, &cons), 0);
    CHECK_MEM(b1, l1, "hel");
    CHECK_INT(cons, 6);
    char b2[] = "lo\r\n0\r\n\r\nNEXT";
    size_t l2 = strlen(b2);
    CHECK_INT(mg_http_chunked_decode(&c, b2, &l2, &cons), 1);
    CHECK_MEM(b2, l2, "lo");
    CHECK_INT(cons, 9);
    CHECK(c.done);
    /* once done, nothing more is consumed */
    char b3[] = "more";
    size_t l3 = 4;
    CHECK_INT(mg_http_chunked_decode(&c, b3, &l3, &cons), 1);
    CHECK_INT(l3, 0);
    CHECK_INT(cons, 0);

    /* framing errors */
    t_chunked_bad("x\r\n");
    t_chunked_bad("\r\n");
    t_chunked_bad(";ext\r\n");
    t_chunked_bad("-5\r\nhello\r\n");
    t_chunked_bad("0x5\r\nhello\r\n");
    t_chunked_bad("+5\r\nhello\r\n");
    t_chunked_bad("00000000000000005\r\nhello\r\n0\r\n\r\n"); /* 17 digits */
    t_chunked_bad("ffffffffffffffff\r\n");                     /* > 2^60: overflow guard */
    t_chunked_bad("5\r\nhelloX\r\n0\r\n\r\n");
    t_chunked_bad("5\r\nhello\rX\n0\r\n\r\n");
    t_chunked_bad("5\r\nhello world\r\n");
    {
        /* NUL in an extension */
        const char s[] = "5;a\0b\r\nhello\r\n0\r\n\r\n";
        t_ck_t r;
        t_chunked(s, sizeof(s) - 1, 0, &r);
        CHECK_INT(r.rc, -1);
    }
    /* extension and trailer lines are capped at 4096 bytes */
    static char longext[5000 + 32];
    int o = sprintf(longext, "1;");
    memset(longext + o, 'e', 4100);
    strcpy(longext + o + 4100, "\r\nx\r\n0\r\n\r\n");
    t_chunked_bad(longext);
    o = sprintf(longext, "0\r\nX-T: ");
    memset(longext + o, 't', 4100);
    strcpy(longext + o + 4100, "\r\n\r\n");
    t_chunked_bad(longext);
    /* just under the cap is fine */
    o = sprintf(longext, "1;");
    memset(longext + o, 'e', 4000);
    strcpy(longext + o + 4000, "\r\nx\r\n0\r\n\r\n");
    t_chunked_ok(longext, "x", strlen(longext));
}

/* Each case: strict (requests) refuses it, lenient (upstream responses) decodes it. */
static void
t_chunked_lenient_only(const char *s, const char *payload)
{
    t_chunked_bad(s);
    t_lenient = true;
    t_chunked_ok(s, payload, strlen(s));
    t_lenient = false;
}

static void
test_chunked_strict(void)
{
    MG_T_CASE("chunked decoding: strict for requests, lenient for upstream responses");
    /* LF-only line ends: size line, after data, trailers, final line */
    t_chunked_lenient_only("2\nok\n0\n\n", "ok");
    t_chunked_lenient_only("2\nok\r\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("2\r\nok\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("2\r\nok\r\n0\n\r\n", "ok");
    t_chunked_lenient_only("2\r\nok\r\n0\r\n\n", "ok");
    t_chunked_lenient_only("2\r\nok\r\n0\r\nX-T: 1\n\r\n", "ok");
    t_chunked_lenient_only("2;ext\nok\r\n0\r\n\r\n", "ok");
    /* whitespace after the size with no extension: "5 " */
    t_chunked_lenient_only("2 \r\nok\r\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("2\t\r\nok\r\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("2 garbage\r\nok\r\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("0 \r\n\r\n", "");
    /* bare CR in an extension or a trailer, control characters in them */
    t_chunked_lenient_only("2;a\rb\r\nok\r\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("2;a\x01\r\nok\r\n0\r\n\r\n", "ok");
    t_chunked_lenient_only("2\r\nok\r\n0\r\nX-T: a\rb\r\n\r\n", "ok");
    t_chunked_lenient_only("2\r\nok\r\n0\r\nX-T: a\x7f\r\n\r\n", "ok");
    /* strict still takes what RFC 9112 allows: BWS before ";", HTAB in extensions */
    const char *bws = "2 ;a=1\r\nok\r\n2\t \t;b\t=\t\"x y\"\r\nOK\r\n0\r\nT: v\tw\r\n\r\n";
    t_chunked_ok(bws, "okOK", strlen(bws));
    /* whitespace runs after the size are bounded like extensions */
    static char ws[4200 + 32];
    ws[0] = '1';
    memset(ws + 1, ' ', 4100);
    strcpy(ws + 4101, ";x\r\nx\r\n0\r\n\r\n");
    t_chunked_bad(ws);
    /* a CR at the end of the input is "need more" in strict mode too */
    mg_http_chunked_t c;
    memset(&c, 0, sizeof(c));
    char b[] = "2\r";
    size_t l = 2, cons = 0;
    CHECK_INT(mg_http_chunked_decode(&c, b, &l, &cons), 0);
    CHECK_INT(cons, 2);
    char b2[] = "\nok\r\n0\r\n\r";
    l = strlen(b2);
    CHECK_INT(mg_http_chunked_decode(&c, b2, &l, &cons), 0);
    char b3[] = "\nNEXT";
    l = strlen(b3);
    CHECK_INT(mg_http_chunked_decode(&c, b3, &l, &cons), 1);
    CHECK_INT(cons, 1);
    CHECK_INT(l, 0);
}

/* ---- validating heads we write ---- */

static mg_err_t t_err;

static int
t_fields(const char *s)
{
    mg_err_clear(&t_err);
    return mg_http_fields_valid(s, strlen(s), &t_err);
}

static int
t_head(const char *s)
{
    mg_err_clear(&t_err);
    return mg_http_head_valid(s, strlen(s), &t_err);
}

/* Expects a refusal whose message contains want and never the secret. */
static void
t_refused(int rc, const char *what, const char *want, const char *secret)
{
    CHECK(rc == MG_ERROR, "%s: accepted", what);
    CHECK(t_err.cls == MG_ERR_INTERNAL, "%s: class %d", what, (int) t_err.cls);
    CHECK(strstr(t_err.msg, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, t_err.msg,
          want);
    if (secret != NULL) {
        CHECK(strstr(t_err.msg, secret) == NULL, "%s: message \"%s\" quotes the value", what,
              t_err.msg);
    }
}

static void
test_fields_valid(void)
{
    MG_T_CASE("mg_http_fields_valid: response header blocks");
    CHECK_INT(t_fields(""), MG_OK);
    CHECK_INT(t_fields("content-type: application/json\r\nx-litellm-call-id: abc\r\n"), MG_OK);
    CHECK_INT(t_fields("x-empty:\r\nx-tab: a\tb\r\nx-utf8: h\xc3\xa9\r\nx-sp:  lead\r\n"), MG_OK);
    CHECK_INT(t_fields("!#$%&'*+-.^_`|~09AZaz: v\r\n"), MG_OK); /* every tchar */

    t_refused(t_fields("x-key: sk-secret\nx: y\r\n"), "bare LF",
              "a raw CR/LF/NUL in header \"x-key\" (byte 0x0a at offset 16)", "sk-secret");
    t_refused(t_fields("x-key: sk-secret\rx: y\r\n"), "bare CR",
              "a raw CR/LF/NUL in header \"x-key\" (byte 0x0d at offset 16)", "sk-secret");
    {
        const char nul[] = "x-key: sk-se\0cret\r\n";
        mg_err_clear(&t_err);
        t_refused(mg_http_fields_valid(nul, sizeof(nul) - 1, &t_err), "NUL",
                  "a raw CR/LF/NUL in header \"x-key\" (byte 0x00 at offset 12)", "sk-se");
    }
    t_refused(t_fields("x-a: b\x01\r\n"), "control byte", "a control character in header \"x-a\"",
              NULL);
    t_refused(t_fields("x-a: b\x7f\r\n"), "DEL", "a control character in header \"x-a\"", NULL);
    t_refused(t_fields("x-a: b"), "no line end", "header \"x-a\" without a CRLF line end", NULL);
    t_refused(t_fields("x-a: b\r"), "CR at the end", "without a CRLF line end", NULL);
    /* response splitting: an empty line would end the head and start a body */
    t_refused(t_fields("x-model: m\r\n\r\n<html>\r\n"), "empty line",
              "an empty line inside the header block (offset 12)", NULL);
    t_refused(t_fields("\r\nx: y\r\n"), "leading empty line", "an empty line", NULL);
    t_refused(t_fields("bad name: v\r\n"), "space in name", "not an RFC 9110 token (offset 0)",
              NULL);
    t_refused(t_fields("x: 1\r\n: v\r\n"), "empty name", "not an RFC 9110 token (offset 6)",
              NULL);
    t_refused(t_fields("x-a : v\r\n"), "space before colon", "not an RFC 9110 token", NULL);
    t_refused(t_fields("x\xc3\xa9: v\r\n"), "non-ASCII name", "not an RFC 9110 token", NULL);
    /* a line without a colon: what precedes the line end may be a split value, so it is
     * not quoted */
    t_refused(t_fields("x-key: sk\r\nsecretpart\r\n"), "no colon",
              "a raw CR/LF/NUL in a header line without a colon (byte 0x0d at offset 21)",
              "secretpart");
    /* the server writes framing itself: a caller's copy would be a second one */
    t_refused(t_fields("Content-Length: 0\r\n"), "content-length",
              "a \"content-length\" header (the server writes the framing headers itself)", NULL);
    t_refused(t_fields("x: y\r\ntransfer-encoding: chunked\r\n"), "transfer-encoding",
              "\"transfer-encoding\" header", NULL);
    t_refused(t_fields("Connection: keep-alive\r\n"), "connection", "\"connection\" header", NULL);
    /* long names are cut in the message */
    static char longname[200];
    memset(longname, 'n', 100);
    strcpy(longname + 100, ": a\nb\r\n");
    CHECK_INT(t_fields(longname), MG_ERROR);
    CHECK(strlen(t_err.msg) < 200 && strstr(t_err.msg, "...\"") != NULL, "%s", t_err.msg);

    /* the limit of a block check: a whole line injected with proper CRLF is well formed
     * (mg_http_field_append is what catches it) */
    CHECK_INT(t_fields("x-litellm-model-group: inj\r\nX-Injected: yes\r\n"), MG_OK);
}

static void
test_head_valid(void)
{
    MG_T_CASE("mg_http_head_valid: upstream request heads");
    const char *ok = "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"
                     "content-type: application/json\r\nauthorization: Bearer sk-1\r\n"
                     "content-length: 2\r\n\r\n";
    CHECK_INT(t_head(ok), MG_OK);
    CHECK_INT(t_head("GET /?a=b&c=%20 HTTP/1.0\r\n\r\n"), MG_OK);
    CHECK_INT(t_head("POST /openai/deployments/x/chat/completions?api-version=1 HTTP/1.1\r\n"
                     "host: a\r\ntransfer-encoding: chunked\r\n\r\n"),
              MG_OK);

    /* issue 15: api_base "http://h/v1\r\nX-Up: 1" spliced into the request line */
    t_refused(t_head("POST /v1\r\nX-Up: 1/chat/completions HTTP/1.1\r\nhost: h\r\n\r\n"),
              "api_base", "a raw CR/LF/NUL in the request line or a malformed one", "X-Up");
    t_refused(t_head("POST /v1?key=sk-secret\n/chat HTTP/1.1\r\nhost: h\r\n\r\n"), "LF in target",
              "in the request line (byte 0x0a at offset 22)", "sk-secret");
    {
        const char nul[] = "POST /v1\0/chat HTTP/1.1\r\nhost: h\r\n\r\n";
        mg_err_clear(&t_err);
        t_refused(mg_http_head_valid(nul, sizeof(nul) - 1, &t_err), "NUL in target",
                  "a raw CR/LF/NUL in the request line (byte 0x00 at offset 8)", NULL);
    }
    t_refused(t_head("POST /v1\x7f HTTP/1.1\r\n\r\n"), "DEL in target",
              "a control character in the request line", NULL);
    t_refused(t_head("POST / HTTP/1.1\nhost: h\r\n\r\n"), "LF ends the request line",
              "a raw CR/LF/NUL in the request line (byte 0x0a at offset 15)", NULL);
    t_refused(t_head("POST / HTTP/1.1\rhost: h\r\n\r\n"), "CR in the request line",
              "byte 0x0d at offset 15", NULL);
    const char *malformed[] = {
        "",
        "POST\r\n\r\n",
        "POST  / HTTP/1.1\r\n\r\n",
        "POST / HTTP/2.0\r\n\r\n",
        "POST / HTTP/1.1 \r\n\r\n",
        "POST /\r\n\r\n",
        "PO@ST / HTTP/1.1\r\n\r\n",
        " POST / HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        t_refused(t_head(malformed[i]), malformed[i], "malformed one (not \"METHOD target "
                  "HTTP/1.x\" and CRLF)", NULL);
    }
    /* an api_key with a bare LF: authorization is named, the key is not quoted */
    t_refused(t_head("POST / HTTP/1.1\r\nhost: h\r\n"
                     "authorization: Bearer sk-secret\nX-Up: 1\r\n\r\n"),
              "api_key", "a raw CR/LF/NUL in header \"authorization\"", "sk-secret");
    /* smuggling a second request behind the head */
    t_refused(t_head("POST / HTTP/1.1\r\nhost: h\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"),
              "second request", "bytes after the empty line that ends the head", NULL);
    t_refused(t_head("POST / HTTP/1.1\r\nhost: h\r\n"), "no end", "no empty line at the end", NULL);
    t_refused(t_head("POST / HTTP/1.1\r\nhost: h\r\nHost: evil\r\n\r\n"), "two hosts",
              "a second \"host\" header", NULL);
    t_refused(t_head("POST / HTTP/1.1\r\ncontent-length: 2\r\nContent-Length: 0\r\n\r\n"),
              "two content-lengths", "a second \"content-length\" header", NULL);
    t_refused(t_head("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n"
                     "transfer-encoding: x\r\n\r\n"),
              "two transfer-encodings", "a second \"transfer-encoding\" header", NULL);
    t_refused(t_head("POST / HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"),
              "CL and TE", "both content-length and transfer-encoding", NULL);
    t_refused(t_head("POST / HTTP/1.1\r\nbad name: v\r\n\r\n"), "bad name",
              "not an RFC 9110 token (offset 17)", NULL);
}

static void
test_field_append(void)
{
    MG_T_CASE("mg_http_field_append");
    mg_buf_t b = MG_BUF_INIT;
    mg_err_t err;
    CHECK_INT(mg_http_field_append(&b, "x-model", "gpt-4o", 6, &err), MG_OK);
    CHECK_INT(mg_http_field_append(&b, "x-empty", "", 0, &err), MG_OK);
    CHECK_MEM(mg_buf_head(&b), mg_buf_len(&b), "x-model: gpt-4o\r\nx-empty: \r\n");
    CHECK_INT(mg_http_fields_valid(mg_buf_head(&b), mg_buf_len(&b), &err), MG_OK);
    size_t before = mg_buf_len(&b);
    /* the injection a block check cannot see: refused here, nothing appended */
    const char *inj = "inj\r\nX-Injected: yes";
    CHECK_INT(mg_http_field_append(&b, "x-model", inj, strlen(inj), &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "a raw CR/LF/NUL in header \"x-model\" (byte 0x0d at offset 3 of "
                            "the value)");
    CHECK(strstr(err.msg, "Injected") == NULL);
    CHECK_INT(err.cls, MG_ERR_INTERNAL);
    CHECK_INT(mg_buf_len(&b), before);
    const char nul[] = "a\0b";
    CHECK_INT(mg_http_field_append(&b, "x", nul, 3, &err), MG_ERROR);
    CHECK_INT(mg_http_field_append(&b, "x", "a\x01", 2, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "a control character");
    CHECK_INT(mg_http_field_append(&b, "bad name", "v", 1, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "not an RFC 9110 token (byte 0x20 at 3)");
    CHECK_INT(mg_http_field_append(&b, "", "v", 1, &err), MG_ERROR);
    CHECK_INT(mg_http_field_append(&b, "x", "tab\tand h\xc3\xa9", 11, &err), MG_OK);
    CHECK_INT(mg_buf_len(&b), before + strlen("x: tab\tand h\xc3\xa9\r\n"));
    mg_buf_free(&b);
}

int
main(void)
{
    test_request_ok();
    test_request_errors();
    test_request_line_ends();
    test_response();
    test_chunked();
    test_chunked_strict();
    test_fields_valid();
    test_head_valid();
    test_field_append();
    return mg_test_done();
}
