/*
 * mg_util.c -- see mg_util.h.
 */
#include "mg_util.h"

#include "mg_log.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void
mg_fmt_pyfloat(double d, char *out, size_t outlen)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, d);
        if (strtod(out, NULL) == d) {
            break;
        }
    }
    if (strchr(out, '.') == NULL && strchr(out, 'e') == NULL && strchr(out, 'n') == NULL &&
        strchr(out, 'i') == NULL) {
        size_t l = strlen(out);
        if (l + 2 < outlen) {
            memcpy(out + l, ".0", 3);
        }
    }
    /* Python writes 1e-05 where C writes 1e-05 too; keep as is */
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
