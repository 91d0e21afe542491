/*
 * test_fetch.c -- core/net/mg_fetch.c: the URL rules, the answer's head, chunked bodies and
 * the pipe protocol between the child and its parent.  The fetch itself (a child process
 * on a real socket, TLS included) is tested end to end in tests/integration/costmap.test.mjs.
 */
#include "mg_test.h"

#include "../../../../core/net/mg_fetch.c"

static void
test_urls(void)
{
    MG_T_CASE("URLs");
    mg_fetch_url_t u;
    mg_err_t err;
    CHECK(mg_fetch_parse_url("https://raw.example.com/a/b.json?x=1#frag", &u, &err) == MG_OK);
    CHECK(u.tls);
    CHECK_STR(u.host, "raw.example.com");
    CHECK_STR(u.port, "443");
    CHECK_STR(u.target, "/a/b.json?x=1");
    CHECK(mg_fetch_parse_url("http://127.0.0.1:8080", &u, &err) == MG_OK);
    CHECK(!u.tls);
    CHECK_STR(u.port, "8080");
    CHECK_STR(u.target, "/");
    CHECK(mg_fetch_parse_url("HTTP://[::1]:9/m", &u, &err) == MG_OK);
    CHECK_STR(u.host, "::1");
    CHECK_STR(u.port, "9");
    CHECK(mg_fetch_parse_url("https://user:pw@h/x", &u, &err) == MG_ERROR);
    CHECK_CONTAINS(err.msg, "user:password@");
    CHECK(mg_fetch_parse_url("ftp://h/x", &u, &err) == MG_ERROR);
    CHECK(mg_fetch_parse_url("http://h:80x/", &u, &err) == MG_ERROR);
    CHECK(mg_fetch_parse_url("http:///x", &u, &err) == MG_ERROR);
    CHECK(mg_fetch_parse_url("http://h/a b", &u, &err) == MG_ERROR);
    CHECK(mg_fetch_is_url("https://x") && mg_fetch_is_url("http://x"));
    CHECK(!mg_fetch_is_url("/tmp/x"));
}

static void
test_head(void)
{
    MG_T_CASE("the answer's head");
    mg_fetch_head_t h;
    mg_err_t err;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: 12\r\n\r\n{}";
    CHECK(mg_fetch_parse_head(a, strlen(a), &h, &err) == MG_OK);
    CHECK_INT(h.status, 200);
    CHECK_INT(h.content_length, 12);
    CHECK_STR(h.content_type, "application/json");
    CHECK_INT(h.head_len, strlen(a) - 2);
    const char *b = "HTTP/1.1 302 Found\r\nlocation: /other\r\ntransfer-encoding: chunked\r\n\r\n";
    CHECK(mg_fetch_parse_head(b, strlen(b), &h, &err) == MG_OK);
    CHECK(h.chunked);
    CHECK_STR(h.location, "/other");
    CHECK(mg_fetch_parse_head("HTTP/1.1 200 OK\r\n", 17, &h, &err) == MG_AGAIN);
    CHECK(mg_fetch_parse_head("SSH-2.0\r\n\r\n", 11, &h, &err) == MG_ERROR);
    const char *c = "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n";
    CHECK(mg_fetch_parse_head(c, strlen(c), &h, &err) == MG_ERROR);
}

static void
test_chunks(void)
{
    MG_T_CASE("chunked bodies");
    mg_buf_t out = MG_BUF_INIT;
    mg_err_t err;
    const char *a = "4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n";
    CHECK(mg_fetch_dechunk(a, strlen(a), &out, &err) == MG_OK);
    CHECK_MEM(mg_buf_head(&out), mg_buf_len(&out), "{\"a\":1}");
    mg_buf_reset(&out);
    const char *cut = "4\r\n{\"a\"\r\n3\r\n:1";
    CHECK(mg_fetch_dechunk(cut, strlen(cut), &out, &err) == MG_AGAIN, "a body cut short");
    mg_buf_reset(&out);
    CHECK(mg_fetch_dechunk("zz\r\n", 4, &out, &err) == MG_ERROR);
    mg_buf_free(&out);
}

static void
test_pipe(void)
{
    MG_T_CASE("the child's answer on the pipe");
    mg_buf_t in = MG_BUF_INIT;
    mg_fetch_result_t res;
    mg_err_t err;
    mg_buf_append_str(&in, "H 200 1 16\napplication/json{\"gpt-4o\":{}}");
    CHECK(mg_fetch_decode(&in, &res, &err) == MG_OK);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.redirects, 1);
    CHECK_STR(res.content_type, "application/json");
    CHECK_MEM(res.body, res.len, "{\"gpt-4o\":{}}");
    mg_buf_reset(&in);
    mg_buf_append_str(&in, "E 5 9\ntimed out");
    CHECK(mg_fetch_decode(&in, &res, &err) == MG_ERROR);
    CHECK_INT(err.cls, MG_ERR_UPSTREAM_TIMEOUT);
    CHECK_STR(err.msg, "timed out");
    mg_buf_reset(&in);
    mg_buf_append_str(&in, "H 200 0 40\nshort");
    CHECK(mg_fetch_decode(&in, &res, &err) == MG_ERROR);
    CHECK_CONTAINS(err.msg, "ended early");
    mg_buf_reset(&in);
    CHECK(mg_fetch_decode(&in, &res, &err) == MG_ERROR, "nothing written: the child died");
    mg_buf_free(&in);
}

int
main(void)
{
    test_urls();
    test_head();
    test_chunks();
    test_pipe();
    return mg_test_done();
}
