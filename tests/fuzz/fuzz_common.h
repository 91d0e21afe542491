/*
 * fuzz_common.h -- what every fuzz target shares: the libFuzzer entry points, an assertion
 * that aborts with a message (so libFuzzer and the replay runner both report it as a
 * crash), exact-size copies of the input (so ASan sees any read past the end), and a small
 * deterministic generator seeded from the input for split points.
 *
 * Header-only: each target is one translation unit, linked either with libFuzzer or with
 * replay_main.c (tests/fuzz/tests.cmake).
 */
#ifndef MG_FUZZ_COMMON_H
#define MG_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            fflush(stderr);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'd copy of exactly n bytes (n == 0 still gives a unique pointer). */
static inline char *
fuzz_dup(const void *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (b == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(b, p, n);
    } else {
        b[0] = '\0'; /* never read as data; keeps GCC's -Wmaybe-uninitialized quiet */
    }
    return b;
}

/* Same, with a NUL after the n bytes (for APIs whose contract promises one). */
static inline char *
fuzz_dupz(const void *p, size_t n)
{
    char *b = malloc(n + 1);
    if (b == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(b, p, n);
    }
    b[n] = '\0';
    return b;
}

typedef struct {
    uint64_t s;
} fuzz_rng_t;

/* Seeded from the whole input, so a given input always splits the same way. */
static inline void
fuzz_rng_init(fuzz_rng_t *r, const uint8_t *data, size_t size)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ size;
    for (size_t i = 0; i < size; i++) {
        h = (h ^ data[i]) * 0x100000001b3ULL;
    }
    r->s = h ? h : 1;
}

static inline uint64_t
fuzz_rng_next(fuzz_rng_t *r)
{
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return x;
}

/* Length of the next piece when feeding len remaining bytes: mostly small, sometimes big. */
static inline size_t
fuzz_rng_piece(fuzz_rng_t *r, size_t remaining)
{
    if (remaining == 0) {
        return 0;
    }
    uint64_t x = fuzz_rng_next(r);
    size_t n;
    switch (x & 3) {
    case 0: n = 1; break;
    case 1: n = 1 + (size_t) ((x >> 8) % 8); break;
    case 2: n = 1 + (size_t) ((x >> 8) % 64); break;
    default: n = 1 + (size_t) ((x >> 8) % (remaining + 1)); break;
    }
    return n < remaining ? n : remaining;
}

#endif
