/*
 * test_json.c -- core/base/mg_json.c: the validating scanner used on request bodies.
 *
 * Error messages are compared with Python 3.11's json module (what LiteLLM's proxy
 * answers with), e.g. python3 -c 'import json; json.loads("{\"a\" 1}")'.
 */
#include "mg_test.h"

#include "base/mg_err.h"
#include "base/mg_json.h"

static int
t_validate(const char *s, mg_json_type_t *type, char *msg, size_t msglen)
{
    return mg_json_validate(s, strlen(s), type, msg, msglen);
}

static void
t_valid(const char *s, mg_json_type_t want)
{
    mg_json_type_t t = MG_JSON_INVALID;
    char msg[160] = "";
    int rc = t_validate(s, &t, msg, sizeof(msg));
    CHECK(rc == MG_OK, "valid JSON rejected: %s -> %s", s, msg);
    CHECK(t == want, "type of %s: got %d, expected %d", s, (int) t, (int) want);
}

static void
t_invalid(const char *s, const char *want_msg)
{
    char msg[160] = "";
    int rc = t_validate(s, NULL, msg, sizeof(msg));
    CHECK(rc == MG_ERROR, "invalid JSON accepted: %s", s);
    if (want_msg != NULL) {
        CHECK(strcmp(msg, want_msg) == 0, "message for %s: got \"%s\", expected \"%s\"", s, msg,
              want_msg);
    }
}

static void
test_validate_valid(void)
{
    MG_T_CASE("validate: valid values");
    t_valid("{}", MG_JSON_OBJECT);
    t_valid("  {\"a\": 1}\n", MG_JSON_OBJECT);
    t_valid("[]", MG_JSON_ARRAY);
    t_valid("[1, [2, [3, {}]], \"x\", null]", MG_JSON_ARRAY);
    t_valid("\"str\"", MG_JSON_STRING);
    t_valid("\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"", MG_JSON_STRING);
    t_valid("0", MG_JSON_NUMBER);
    t_valid("-0", MG_JSON_NUMBER);
    t_valid("-12.5e+10", MG_JSON_NUMBER);
    t_valid("1E-3", MG_JSON_NUMBER);
    t_valid("0.000", MG_JSON_NUMBER);
    t_valid("true", MG_JSON_TRUE);
    t_valid("false", MG_JSON_FALSE);
    t_valid("\t\r\n null \t\r\n", MG_JSON_NULL);
    t_valid("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
            "\"temperature\":0.2,\"stream\":true,\"stop\":null}",
            MG_JSON_OBJECT);
    /* raw UTF-8 (and any byte >= 0x20) passes through strings */
    t_valid("\"h\xc3\xa9llo \xe2\x82\xac\"", MG_JSON_STRING);

    /* depth: 200 nested arrays are accepted, 201 are not, 100000 do not crash */
    char deep[100001];
    for (int n = 0; n < 200; n++) {
        deep[n] = '[';
        deep[200 + n] = ']';
    }
    deep[400] = '\0';
    t_valid(deep, MG_JSON_ARRAY);
    memset(deep, '[', 100000);
    deep[100000] = '\0';
    char msg[160];
    CHECK(t_validate(deep, NULL, msg, sizeof(msg)) == MG_ERROR);
    CHECK_STR(msg, "Nesting deeper than 200 levels: line 1 column 201 (char 200)");
}

/* Objects and arrays mixed, through the iterator the gateway uses. */
static void
test_depth_limit(void)
{
    MG_T_CASE("nesting depth limit: 200 levels");
    /* {"a":[{"a":[ ... 1 ... ]}]}: n levels of alternating objects and arrays */
    static char buf[8192];
    for (int levels = 199; levels <= 201; levels++) {
        size_t o = 0;
        for (int i = 0; i < levels; i++) {
            o += (size_t) sprintf(buf + o, i % 2 == 0 ? "{\"a\":" : "[");
        }
        buf[o++] = '1';
        for (int i = levels - 1; i >= 0; i--) {
            buf[o++] = i % 2 == 0 ? '}' : ']';
        }
        buf[o] = '\0';
        char msg[160] = "";
        int rc = t_validate(buf, NULL, msg, sizeof(msg));
        mg_json_iter_t it;
        mg_json_member_t m;
        CHECK_INT(mg_json_obj_iter(&it, buf, o), MG_OK);
        int r = mg_json_obj_next(&it, &m);
        if (levels <= 200) {
            CHECK(rc == MG_OK, "%d levels: %s", levels, msg);
            CHECK(r == 1, "%d levels: iterator says %s", levels, it.errmsg);
        } else {
            CHECK_INT(rc, MG_ERROR);
            CHECK_CONTAINS(msg, "Nesting deeper than 200 levels");
            CHECK_INT(r, -1);
            /* the offset names the bracket that opens level 201: "{"a":" is 5 bytes, "[" 1 */
            char want[96];
            snprintf(want, sizeof(want), "(char %d)", 100 * 5 + 100 * 1);
            CHECK_CONTAINS(it.errmsg, "Nesting deeper than 200 levels");
            CHECK_CONTAINS(it.errmsg, want);
        }
    }
    /* a scalar at depth 200 is fine: only containers count */
    static char s[1024];
    memset(s, '[', 200);
    memcpy(s + 200, "\"x\"", 3);
    memset(s + 203, ']', 200);
    s[403] = '\0';
    CHECK_INT(t_validate(s, NULL, NULL, 0), MG_OK);
}

static void
test_validate_python_messages(void)
{
    MG_T_CASE("validate: Python-style messages");
    t_invalid("{\"a\": 1,}",
              "Expecting property name enclosed in double quotes: line 1 column 9 (char 8)");
    t_invalid("{\"a\" 1}", "Expecting ':' delimiter: line 1 column 6 (char 5)");
    t_invalid("{\"a\": 1 \"b\": 2}", "Expecting ',' delimiter: line 1 column 9 (char 8)");
    t_invalid("[1, 2", "Expecting ',' delimiter: line 1 column 6 (char 5)");
    t_invalid("", "Expecting value: line 1 column 1 (char 0)");
    t_invalid("   ", "Expecting value: line 1 column 4 (char 3)");
    t_invalid("{\"a\": tru}", "Expecting value: line 1 column 7 (char 6)");
    t_invalid("{\"a\": \"x\n\"}", "Invalid control character at: line 1 column 9 (char 8)");
    t_invalid("{\"a\": \"\\q\"}", "Invalid \\escape: line 1 column 8 (char 7)");
    t_invalid("{\"a\": 1}}", "Extra data: line 1 column 9 (char 8)");
    t_invalid("{\n  \"model\": \"gpt\",\n  \"messages\": [1,]\n}",
              "Expecting value: line 3 column 18 (char 37)");
    t_invalid("\"abc", "Unterminated string starting at: line 1 column 1 (char 0)");
    t_invalid("{\"a\": -}", "Expecting value: line 1 column 7 (char 6)");
    t_invalid("{\"a\": 01}", "Expecting ',' delimiter: line 1 column 8 (char 7)");
    t_invalid("{1: 2}",
              "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)");
    t_invalid("nul", "Expecting value: line 1 column 1 (char 0)");
    t_invalid("{\"a\": [}", "Expecting value: line 1 column 8 (char 7)");
    /* other rejections (message not compared) */
    t_invalid("{\"a\": NaN}", NULL);
    t_invalid("{\"a\": Infinity}", NULL);
    t_invalid("{'a': 1}", NULL);
    t_invalid("[1,,2]", NULL);
    t_invalid("{\"a\":1,,\"b\":2}", NULL);
    t_invalid("+1", NULL);
    t_invalid(".5", NULL);
    t_invalid("1.", NULL);
    t_invalid("1e", NULL);
    t_invalid("\"\\u12\"", NULL);
    t_invalid("\"tab\tinside\"", NULL);
    t_invalid("[1] [2]", NULL);
    t_invalid("\xef\xbb\xbf{}", NULL); /* a BOM is not whitespace (Python: Unexpected UTF-8 BOM) */

    /* embedded NUL: rejected, not treated as the end of the text */
    char msg[160];
    CHECK(mg_json_validate("{}\0", 3, NULL, msg, sizeof(msg)) == MG_ERROR);
    CHECK(mg_json_validate("\"a\0b\"", 5, NULL, msg, sizeof(msg)) == MG_ERROR);
    /* a NULL or empty errmsg buffer is fine */
    CHECK(mg_json_validate("{", 1, NULL, NULL, 0) == MG_ERROR);
    /* the length is honoured: bytes after len are not read */
    CHECK(mg_json_validate("{}garbage", 2, NULL, msg, sizeof(msg)) == MG_OK);

    { /* was a known bug, now fixed: number errors point at the number start, Python at the next char */
        /* Python reads "1" and then trips over "." / "e": ',' delimiter at the next char */
        t_invalid("[1.]", "Expecting ',' delimiter: line 1 column 3 (char 2)");
        t_invalid("{\"a\":1.5e}", "Expecting ',' delimiter: line 1 column 9 (char 8)");
        t_invalid("{\"a\": \"\\u12G4\"}", "Invalid \\uXXXX escape: line 1 column 9 (char 8)");
    }
}

static void
test_iter(void)
{
    MG_T_CASE("obj_iter/obj_next");
    const char *body = " { \"model\" : \"gpt-4o\", \"n\":2 ,\"mod\\u0065l2\":[1,{\"x\":null}],"
                       "\"s\":true }  ";
    mg_json_iter_t it;
    mg_json_member_t m;
    CHECK(mg_json_obj_iter(&it, body, strlen(body)) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_MEM(m.key, m.key_len, "model");
    CHECK(!m.key_escaped);
    CHECK_MEM(m.val, m.val_len, "\"gpt-4o\"");
    CHECK_INT(m.type, MG_JSON_STRING);
    CHECK(m.start == strchr(body, '"'));
    CHECK_MEM(m.start, (size_t) (m.end - m.start), "\"model\" : \"gpt-4o\"");
    CHECK(mg_json_key_is(&m, "model"));
    CHECK(!mg_json_key_is(&m, "mode"));
    CHECK(!mg_json_key_is(&m, "models"));

    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_MEM(m.key, m.key_len, "n");
    CHECK_MEM(m.val, m.val_len, "2");
    CHECK_INT(m.type, MG_JSON_NUMBER);

    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_MEM(m.key, m.key_len, "mod\\u0065l2");
    CHECK(m.key_escaped);
    CHECK(mg_json_key_is(&m, "model2"));
    CHECK(!mg_json_key_is(&m, "mod\\u0065l2"));
    CHECK_MEM(m.val, m.val_len, "[1,{\"x\":null}]");
    CHECK_INT(m.type, MG_JSON_ARRAY);

    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_INT(m.type, MG_JSON_TRUE);
    CHECK_INT(mg_json_obj_next(&it, &m), 0);
    CHECK_INT(mg_json_obj_next(&it, &m), 0); /* stays at the end */
    /* it.p is right after the closing brace: the caller checks trailing bytes */
    CHECK(*it.p == ' ' && it.p[-1] == '}');

    CHECK(mg_json_obj_iter(&it, "{}", 2) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 0);

    /* not an object */
    CHECK(mg_json_obj_iter(&it, "[1]", 3) == MG_ERROR);
    CHECK_CONTAINS(it.errmsg, "Expecting object");
    CHECK(mg_json_obj_iter(&it, "   ", 3) == MG_ERROR);
    CHECK(mg_json_obj_iter(&it, "", 0) == MG_ERROR);

    /* errors during iteration: members before the error were returned */
    const char *bad = "{\"a\":1,\"b\":[1,}";
    CHECK(mg_json_obj_iter(&it, bad, strlen(bad)) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_INT(mg_json_obj_next(&it, &m), -1);
    CHECK_STR(it.errmsg, "Expecting value: line 1 column 15 (char 14)");
    CHECK_INT(mg_json_obj_next(&it, &m), -1); /* sticky */

    const char *trailing = "{\"a\":1,}";
    CHECK(mg_json_obj_iter(&it, trailing, strlen(trailing)) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_INT(mg_json_obj_next(&it, &m), -1);
    CHECK_STR(it.errmsg,
              "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)");

    const char *nocomma = "{\"a\":1 \"b\":2}";
    CHECK(mg_json_obj_iter(&it, nocomma, strlen(nocomma)) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_INT(mg_json_obj_next(&it, &m), -1);
    CHECK_STR(it.errmsg, "Expecting ',' delimiter: line 1 column 8 (char 7)");

    const char *unterminated = "{\"a\":1";
    CHECK(mg_json_obj_iter(&it, unterminated, strlen(unterminated)) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_INT(mg_json_obj_next(&it, &m), -1);

    /* multi-line positions */
    const char *ml = "{\n  \"a\": 1,\n  \"b\" 2\n}";
    CHECK(mg_json_obj_iter(&it, ml, strlen(ml)) == MG_OK);
    CHECK_INT(mg_json_obj_next(&it, &m), 1);
    CHECK_INT(mg_json_obj_next(&it, &m), -1);
    CHECK_STR(it.errmsg, "Expecting ':' delimiter: line 3 column 7 (char 18)");
}

static void
test_find(void)
{
    MG_T_CASE("obj_find");
    const char *body = "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"x\":1}";
    mg_json_member_t m;
    CHECK_INT(mg_json_obj_find(body, strlen(body), "stream_options", &m), 1);
    CHECK_INT(m.type, MG_JSON_OBJECT);
    mg_json_member_t inner;
    CHECK_INT(mg_json_obj_find(m.val, m.val_len, "include_usage", &inner), 1);
    CHECK_INT(inner.type, MG_JSON_TRUE);
    CHECK_INT(mg_json_obj_find(body, strlen(body), "missing", &m), 0);
    CHECK_INT(mg_json_obj_find("[1]", 3, "x", &m), -1);
    CHECK_INT(mg_json_obj_find("{\"a\":}", 6, "x", &m), -1);
    /* the first of duplicate keys is found */
    const char *dup = "{\"a\":1,\"a\":2}";
    CHECK_INT(mg_json_obj_find(dup, strlen(dup), "a", &m), 1);
    CHECK_MEM(m.val, m.val_len, "1");
}

static void
test_str_decode(void)
{
    MG_T_CASE("str_decode");
    char out[64];
    CHECK_INT(mg_json_str_decode("\"plain\"", 7, out), 5);
    CHECK_STR(out, "plain");
    const char *esc = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"";
    long n = mg_json_str_decode(esc, strlen(esc), out);
    CHECK_INT(n, 12);
    CHECK(memcmp(out, "a\"b\\c/d\b\f\n\r\t", 12) == 0);
    CHECK_INT(mg_json_str_decode("\"\\u00e9\"", 8, out), 2);
    CHECK_STR(out, "\xc3\xa9");
    CHECK_INT(mg_json_str_decode("\"\\u20AC\"", 8, out), 3);
    CHECK_STR(out, "\xe2\x82\xac");
    CHECK_INT(mg_json_str_decode("\"\\ud83d\\ude00\"", 14, out), 4);
    CHECK_STR(out, "\xf0\x9f\x98\x80");
    /* a lone surrogate becomes U+FFFD (valid UTF-8 out) */
    CHECK_INT(mg_json_str_decode("\"\\ud83dx\"", 9, out), 4);
    CHECK_STR(out, "\xef\xbf\xbdx");
    CHECK_INT(mg_json_str_decode("\"\\ude00\"", 8, out), 3);
    CHECK_STR(out, "\xef\xbf\xbd");
    /* \u0000 decodes to a NUL inside the returned length */
    CHECK_INT(mg_json_str_decode("\"a\\u0000b\"", 10, out), 3);
    CHECK(memcmp(out, "a\0b", 3) == 0);
    /* failures */
    CHECK_INT(mg_json_str_decode("\"bad\\q\"", 7, out), -1);
    CHECK_INT(mg_json_str_decode("\"\\u12\"", 6, out), -1);
    CHECK_INT(mg_json_str_decode("\"\\u12zz\"", 8, out), -1);
    CHECK_INT(mg_json_str_decode("noquotes", 8, out), -1);
    CHECK_INT(mg_json_str_decode("\"", 1, out), -1);
    CHECK_INT(mg_json_str_decode("\"trailing\\\"", 11, out), -1);
    /* the output never needs more than val_len bytes */
    const char *worst = "\"\\u0800\\u0800\\u0800\"";
    char tight[20];
    CHECK_INT(mg_json_str_decode(worst, strlen(worst), tight), 9);
}

static void
test_num(void)
{
    MG_T_CASE("num");
    double d = 0;
    CHECK(mg_json_num("1.5", 3, &d) == MG_OK && d == 1.5);
    CHECK(mg_json_num("-20", 3, &d) == MG_OK && d == -20);
    CHECK(mg_json_num("1e3", 3, &d) == MG_OK && d == 1000);
    CHECK(mg_json_num("12x", 3, &d) == MG_ERROR);
    CHECK(mg_json_num("", 0, &d) == MG_ERROR);
    /* the length is honoured (no read past val_len) */
    CHECK(mg_json_num("25,\"x\"", 2, &d) == MG_OK && d == 25);
}

int
main(void)
{
    test_validate_valid();
    test_validate_python_messages();
    test_depth_limit();
    test_iter();
    test_find();
    test_str_decode();
    test_num();
    return mg_test_done();
}
