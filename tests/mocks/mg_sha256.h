/* Minimal incremental SHA-256 (FIPS 180-4) for the moongate mock provider.
 * Self-contained so the hot path needs no allocation and no OpenSSL EVP
 * fetches. Public domain style implementation. */
#ifndef MG_SHA256_H
#define MG_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total;     /* bytes hashed so far */
    uint8_t buf[64];
    size_t n;           /* bytes pending in buf */
} mg_sha256_t;

void mg_sha256_init(mg_sha256_t *s);
void mg_sha256_update(mg_sha256_t *s, const void *data, size_t len);
void mg_sha256_final(mg_sha256_t *s, uint8_t out[32]);

#endif
