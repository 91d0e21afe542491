/*
 * test_buf.c -- core/base/mg_buf.c: growable buffer with a read position.
 */
#include "mg_test.h"

#include "base/mg_buf.h"

#include <jansson.h>

static void
test_append_consume(void)
{
    MG_T_CASE("append/consume/reserve");
    mg_buf_t b = MG_BUF_INIT;
    CHECK_INT(mg_buf_len(&b), 0);
    mg_buf_append(&b, "", 0); /* no allocation for nothing */
    CHECK(b.data == NULL);
    mg_buf_append_str(&b, "hello ");
    mg_buf_append(&b, "world!", 5);
    CHECK_MEM(mg_buf_head(&b), mg_buf_len(&b), "hello world");
    mg_buf_consume(&b, 6);
    CHECK_MEM(mg_buf_head(&b), mg_buf_len(&b), "world");
    CHECK_INT(b.start, 6);
    /* consuming everything rewinds */
    mg_buf_consume(&b, 5);
    CHECK_INT(mg_buf_len(&b), 0);
    CHECK_INT(b.start, 0);
    CHECK_INT(b.end, 0);

    /* reserve compacts before growing: data stays intact */
    mg_buf_t c = MG_BUF_INIT;
    mg_buf_append(&c, "0123456789", 10);
    size_t cap = c.cap;
    mg_buf_consume(&c, 8);
    mg_buf_reserve(&c, cap - 4);
    CHECK_INT(c.start, 0);
    CHECK_INT(c.cap, cap);
    CHECK_MEM(mg_buf_head(&c), mg_buf_len(&c), "89");
    mg_buf_reserve(&c, 10 * cap);
    CHECK(c.cap - c.end >= 10 * cap);
    CHECK_MEM(mg_buf_head(&c), mg_buf_len(&c), "89");

    /* many appends of varying sizes, with consumes from the front, keep every byte in order */
    mg_buf_t big = MG_BUF_INIT;
    size_t total = 0, eaten = 0;
    unsigned x = 1;
    char chunk[300];
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 16) % sizeof(chunk);
        for (size_t k = 0; k < n; k++) {
            chunk[k] = (char) ((total + k) & 0xff);
        }
        mg_buf_append(&big, chunk, n);
        total += n;
        if (i % 7 == 0 && mg_buf_len(&big) > 100) {
            size_t drop = mg_buf_len(&big) / 3;
            mg_buf_consume(&big, drop);
            eaten += drop;
        }
    }
    bool ok = mg_buf_len(&big) == total - eaten;
    for (size_t k = 0; ok && k < total - eaten; k++) {
        ok = (unsigned char) mg_buf_head(&big)[k] == (unsigned char) ((eaten + k) & 0xff);
    }
    CHECK(ok, "bytes lost or reordered across growth (len %zu, expected %zu)", mg_buf_len(&big),
          total - eaten);

    mg_buf_reset(&b);
    CHECK_INT(mg_buf_len(&b), 0);
    mg_buf_free(&b);
    mg_buf_free(&c);
    mg_buf_free(&big);
    CHECK(big.data == NULL && big.cap == 0);
    mg_buf_free(&big); /* twice is fine */
}

static void
test_printf_cstr(void)
{
    MG_T_CASE("printf/cstr");
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_printf(&b, "%s=%d", "n", 42);
    CHECK_STR(mg_buf_cstr(&b), "n=42");
    CHECK_INT(mg_buf_len(&b), 4); /* the NUL is not counted */
    /* longer than the first 128-byte guess: formatted again after growing */
    char long_s[1000];
    memset(long_s, 'x', sizeof(long_s) - 1);
    long_s[sizeof(long_s) - 1] = '\0';
    mg_buf_printf(&b, "[%s]", long_s);
    CHECK_INT(mg_buf_len(&b), 4 + 1001);
    const char *s = mg_buf_cstr(&b);
    CHECK(strncmp(s, "n=42[xxx", 8) == 0 && s[1004] == ']' && s[1005] == '\0');
    /* after a consume, cstr starts at the read position */
    mg_buf_consume(&b, 2);
    CHECK(strncmp(mg_buf_cstr(&b), "42[", 3) == 0);
    mg_buf_free(&b);

    mg_buf_t e = MG_BUF_INIT;
    CHECK_STR(mg_buf_cstr(&e), ""); /* cstr of an empty, never-allocated buffer */
    mg_buf_free(&e);
}

static void
test_json_str(void)
{
    MG_T_CASE("json_str");
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_json_str(&b, "plain", 5);
    CHECK_STR(mg_buf_cstr(&b), "\"plain\"");
    mg_buf_reset(&b);
    const char in[] = "q\" b\\ n\n r\r t\t bs\b ff\f c\x01 us\x1f del\x7f utf8\xc3\xa9";
    mg_buf_json_str(&b, in, sizeof(in) - 1);
    CHECK_STR(mg_buf_cstr(&b), "\"q\\\" b\\\\ n\\n r\\r t\\t bs\\b ff\\f c\\u0001 us\\u001f "
                                "del\x7f utf8\xc3\xa9\"");
    /* round trip through jansson: what we escape is what we meant */
    json_error_t je;
    json_t *v = json_loadb(mg_buf_head(&b), mg_buf_len(&b), JSON_DECODE_ANY, &je);
    CHECK(v != NULL, "jansson rejects our JSON string: %s", je.text);
    CHECK(v != NULL && json_string_length(v) == sizeof(in) - 1 &&
          memcmp(json_string_value(v), in, sizeof(in) - 1) == 0);
    json_decref(v);
    /* embedded NUL is escaped, not a terminator */
    mg_buf_reset(&b);
    mg_buf_json_str(&b, "a\0b", 3);
    CHECK_STR(mg_buf_cstr(&b), "\"a\\u0000b\"");
    /* appended after existing content */
    mg_buf_reset(&b);
    mg_buf_append_str(&b, "{\"k\":");
    mg_buf_json_str(&b, "", 0);
    mg_buf_append_str(&b, "}");
    CHECK_STR(mg_buf_cstr(&b), "{\"k\":\"\"}");
    mg_buf_free(&b);
}

/* Bytes that are not UTF-8 (issue 15: a 400 echoing them was neither UTF-8 nor JSON). */
static void
test_json_str_utf8(void)
{
    MG_T_CASE("json_str invalid utf-8");
    static const struct {
        const char *in;
        const char *want;
    } t[] = {
        {"a\xff" "b", "\"a\\ufffdb\""},                     /* not a lead byte */
        {"\xc3", "\"\\ufffd\""},                             /* truncated 2-byte */
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},               /* overlong '/' */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},   /* a surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* above U+10FFFF */
        {"\xe2\x82\xac \xf0\x9f\x98\x80", "\"\xe2\x82\xac \xf0\x9f\x98\x80\""}, /* kept */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_json_str(&b, t[i].in, strlen(t[i].in));
        CHECK_STR(mg_buf_cstr(&b), t[i].want);
        json_error_t je;
        json_t *v = json_loadb(mg_buf_head(&b), mg_buf_len(&b), JSON_DECODE_ANY, &je);
        CHECK(v != NULL, "case %zu: not JSON: %s", i, je.text);
        json_decref(v);
        mg_buf_free(&b);
    }
}

int
main(void)
{
    test_append_consume();
    test_printf_cstr();
    test_json_str();
    test_json_str_utf8();
    return mg_test_done();
}
