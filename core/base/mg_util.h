/*
 * mg_util.h -- small helpers: hashing, random ids, constant-time compare,
 * number formatting that matches Python's str().
 */
#ifndef MG_UTIL_H
#define MG_UTIL_H

#include "mg_types.h"

#include <stdbool.h>
#include <stdint.h>

/* Hex SHA-256 of data into out[65]. */
void mg_sha256_hex(const void *data, size_t len, char out[65]);
/* Random UUID4 string into out[37]. */
void mg_uuid4(char out[37]);
/* Fills buf with cryptographically random bytes (aborts if the CSPRNG fails). */
void mg_random_bytes(void *buf, size_t n);
/* Constant-time equality of two NUL-terminated strings (time depends only on b's length). */
bool mg_ct_streq(const char *a, const char *b);
/* Python repr-compatible float formatting (shortest round-trip, "1.0", "0.5", "1e-05"). */
void mg_fmt_pyfloat(double d, char *out, size_t outlen);
/* Wall-clock ms as Python's datetime.utcnow().isoformat(): "2025-01-31T12:00:00.123000". */
void mg_fmt_iso_utc(int64_t real_ms, char *out, size_t outlen);
/* Case-insensitive ASCII compare of [p, p+n) with a NUL-terminated lower-case string. */
bool mg_strieq_n(const char *p, size_t n, const char *lower);

/* double -> int / int64 without undefined behaviour: NaN is 0, out of range saturates. */
static inline int
mg_clamp_int(double d)
{
    if (d != d) {
        return 0;
    }
    if (d >= 2147483647.0) {
        return 2147483647;
    }
    if (d <= -2147483648.0) {
        return -2147483647 - 1;
    }
    return (int) d;
}

static inline int64_t
mg_clamp_i64(double d)
{
    if (d != d) {
        return 0;
    }
    if (d >= 9.2e18) {
        return INT64_MAX;
    }
    if (d <= -9.2e18) {
        return INT64_MIN;
    }
    return (int64_t) d;
}

#endif
