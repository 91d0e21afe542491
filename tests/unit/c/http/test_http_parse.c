/*
 * test_http_parse.c -- core/http/mg_http_parse.c: request/response heads, limits,
 * smuggling rejections, chunked decoding.
 */
#include "mg_test.h"

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
    const char *ows = "\r\n\r\nPOST /x HTTP/1.1\r\nX-A:   spaced value \t\r\nContent-Length:0\r\n\r\n";
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

int
main(void)
{
    test_request_ok();
    test_request_errors();
    test_request_line_ends();
    test_response();
    test_chunked();
    test_chunked_strict();
    return mg_test_done();
}
