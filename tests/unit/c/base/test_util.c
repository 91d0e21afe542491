/*
 * test_util.c -- core/base/mg_util.c: Python float formatting, constant-time compare,
 * SHA-256, UUID4.  Expected floats are Python 3's repr() (python3 -c 'print(repr(600.0))').
 */
#include "mg_test.h"

#include "base/mg_util.h"

#include <ctype.h>
#include <math.h>

static void
t_pyfloat(double d, const char *want)
{
    char out[64];
    mg_fmt_pyfloat(d, out, sizeof(out));
    CHECK(strcmp(out, want) == 0, "mg_fmt_pyfloat(%.17g): got \"%s\", expected \"%s\"", d, out,
          want);
}

static void
test_pyfloat(void)
{
    MG_T_CASE("fmt_pyfloat");
    t_pyfloat(0.5, "0.5");
    t_pyfloat(1.0, "1.0");
    t_pyfloat(2.5, "2.5");
    t_pyfloat(0.1, "0.1");
    t_pyfloat(1e-05, "1e-05");
    t_pyfloat(1e-07, "1e-07");
    t_pyfloat(1.5e-07, "1.5e-07");
    t_pyfloat(0.0001, "0.0001");
    t_pyfloat(123456.0, "123456.0");
    t_pyfloat(12345678.0, "12345678.0");
    t_pyfloat(123.456, "123.456");
    t_pyfloat(-2.75, "-2.75");
    t_pyfloat(3.14159, "3.14159");
    t_pyfloat(1.0 / 3.0, "0.3333333333333333");
    t_pyfloat(2.0 / 3.0, "0.6666666666666666");
    t_pyfloat(0.1 + 0.2, "0.30000000000000004");
    t_pyfloat(1e16, "1e+16");
    t_pyfloat(1e22, "1e+22");
    t_pyfloat(1.7976931348623157e308, "1.7976931348623157e+308");
    t_pyfloat(5e-324, "5e-324");
    t_pyfloat(0.0, "0.0");
    t_pyfloat(-0.0, "-0.0");
    t_pyfloat(INFINITY, "inf");
    t_pyfloat(-INFINITY, "-inf");

    /* a short buffer is NUL-terminated, never overrun */
    char small[4];
    mg_fmt_pyfloat(0.3333333, small, sizeof(small));
    CHECK(strlen(small) < sizeof(small));

    { /* was a known bug, now fixed: mg_fmt_pyfloat: integral floats >= 10 come out in C's %g exponent form (100.0 -> \"1e+02\"); Python switches to exponents only at 1e16 */
        t_pyfloat(10.0, "10.0");
        t_pyfloat(20.0, "20.0");
        t_pyfloat(100.0, "100.0");
        t_pyfloat(300.0, "300.0");
        t_pyfloat(600.0, "600.0");
        t_pyfloat(100000.0, "100000.0");
        t_pyfloat(1e15, "1000000000000000.0");
    }
}

static void
test_ct_streq(void)
{
    MG_T_CASE("ct_streq");
    CHECK(mg_ct_streq("sk-1234", "sk-1234"));
    CHECK(mg_ct_streq("", ""));
    CHECK(!mg_ct_streq("sk-1234", "sk-1235"));
    CHECK(!mg_ct_streq("sk-123", "sk-1234"));
    CHECK(!mg_ct_streq("sk-1234", "sk-123"));
    CHECK(!mg_ct_streq("", "x"));
    CHECK(!mg_ct_streq("x", ""));
    CHECK(!mg_ct_streq("Sk-1234", "sk-1234"));
    /* a longer a with b as its prefix: not equal */
    CHECK(!mg_ct_streq("abc\x01", "abc"));
}

static void
test_sha256(void)
{
    MG_T_CASE("sha256_hex");
    char out[65];
    mg_sha256_hex("", 0, out);
    CHECK_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    mg_sha256_hex("abc", 3, out);
    CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* binary input with NULs: the length counts, not strlen */
    char a[65], b[65];
    mg_sha256_hex("a\0b", 3, a);
    mg_sha256_hex("a", 1, b);
    CHECK(strcmp(a, b) != 0);
}

static void
test_uuid4(void)
{
    MG_T_CASE("uuid4");
    char u[37], v[37];
    for (int n = 0; n < 100; n++) {
        mg_uuid4(u);
        bool ok = strlen(u) == 36;
        for (int i = 0; i < 36 && ok; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                ok = u[i] == '-';
            } else {
                ok = isxdigit((unsigned char) u[i]) && !isupper((unsigned char) u[i]);
            }
        }
        CHECK(ok, "uuid4 format: %s", u);
        CHECK(u[14] == '4', "uuid4 version nibble: %s", u);
        CHECK(strchr("89ab", u[19]) != NULL, "uuid4 variant nibble: %s", u);
    }
    mg_uuid4(v);
    CHECK(strcmp(u, v) != 0);

    unsigned char buf[64] = {0};
    mg_random_bytes(buf, sizeof(buf));
    int zeros = 0;
    for (size_t i = 0; i < sizeof(buf); i++) {
        zeros += buf[i] == 0;
    }
    CHECK(zeros < 16);
}

static void
test_strieq(void)
{
    MG_T_CASE("strieq_n");
    CHECK(mg_strieq_n("Content-Length", 14, "content-length"));
    CHECK(mg_strieq_n("CONTENT-LENGTH: 5", 14, "content-length"));
    CHECK(!mg_strieq_n("Content-Lengt", 13, "content-length"));
    CHECK(!mg_strieq_n("Content-Lengthx", 15, "content-length"));
    CHECK(mg_strieq_n("", 0, ""));
    /* only ASCII letters fold */
    CHECK(!mg_strieq_n("\xc0", 1, "\xe0"));
}

int
main(void)
{
    test_pyfloat();
    test_ct_streq();
    test_sha256();
    test_uuid4();
    test_strieq();
    return mg_test_done();
}
