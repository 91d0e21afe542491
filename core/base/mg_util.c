/*
 * mg_util.c -- see mg_util.h.
 */
#include "mg_util.h"

#include "mg_log.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
mg_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        mg_log_write(MG_LOG_ERROR, NULL, "EVP_Digest(sha256) failed, aborting");
        abort();
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void
mg_random_bytes(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int) n) != 1) {
        mg_log_write(MG_LOG_ERROR, NULL, "RAND_bytes() failed, aborting");
        abort();
    }
}

void
mg_uuid4(char out[37])
{
    unsigned char b[16];
    mg_random_bytes(b, sizeof(b));
    b[6] = (unsigned char) ((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

bool
mg_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char) (la != lb);
    for (size_t i = 0; i < lb; i++) {
        unsigned char ca = i < la ? (unsigned char) a[i] : 0;
        diff |= (unsigned char) (ca ^ (unsigned char) b[i]);
    }
    return diff == 0;
}

/*
 * Python's repr(float): the shortest digits that read back to the same value,
 * in fixed notation when 1e-4 <= |d| < 1e16 (with ".0" when integral), else in
 * scientific notation with a two-digit exponent ("1e+16", "1.5e-05").
 */
void
mg_fmt_pyfloat(double d, char *out, size_t outlen)
{
    if (d != d) {
        snprintf(out, outlen, "nan");
        return;
    }
    if (d == 1.0 / 0.0 || d == -1.0 / 0.0) {
        snprintf(out, outlen, "%sinf", d < 0 ? "-" : "");
        return;
    }
    if (d == 0) {
        const char *z = signbit(d) ? "-0.0" : "0.0";
        size_t zl = strlen(z);
        if (outlen > zl) {
            memcpy(out, z, zl + 1);
        } else if (outlen > 0) {
            out[0] = '\0';
        }
        return;
    }
    char e[64];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, d);
        if (strtod(e, NULL) == d) {
            break;
        }
    }
    /* e is "-D.DDDDe+XX": split into sign, digits and exponent */
    bool neg = e[0] == '-';
    const char *p = neg ? e + 1 : e;
    char digits[32];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9' && nd + 1 < sizeof(digits)) {
            digits[nd++] = *p;
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    digits[nd] = '\0';
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    char buf[400];
    size_t o = 0;
    if (neg) {
        buf[o++] = '-';
    }
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            buf[o++] = '0';
            buf[o++] = '.';
            for (int i = -1; i > exp; i--) {
                buf[o++] = '0';
            }
            for (size_t i = 0; i < nd; i++) {
                buf[o++] = digits[i];
            }
        } else {
            for (int i = 0; i <= exp; i++) {
                buf[o++] = (size_t) i < nd ? digits[i] : '0';
            }
            buf[o++] = '.';
            if ((size_t) exp + 1 < nd) {
                for (size_t i = (size_t) exp + 1; i < nd; i++) {
                    buf[o++] = digits[i];
                }
            } else {
                buf[o++] = '0';
            }
        }
        buf[o] = '\0';
    } else {
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            for (size_t i = 1; i < nd; i++) {
                buf[o++] = digits[i];
            }
        }
        snprintf(buf + o, sizeof(buf) - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(out, outlen, "%s", buf);
}

bool
mg_strieq_n(const char *p, size_t n, const char *lower)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char) (c + 32);
        }
        if (lower[i] == '\0' || c != lower[i]) {
            return false;
        }
    }
    return lower[n] == '\0';
}

void
mg_fmt_iso_utc(int64_t real_ms, char *out, size_t outlen)
{
    time_t t = (time_t) (real_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (real_ms % 1000) * 1000);
}
