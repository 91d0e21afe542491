/*
 * mg_test.h -- the assertion macros of the C unit tests (no framework).
 *
 * One test program per core module (tests/unit/c/<layer>/test_<module>.c).  Each check
 * counts as passed or failed; a failed check prints file:line and what differed, and the
 * program goes on.  mg_test_done() prints "N passed, N failed" and returns the exit code
 * (0 only when nothing failed), so main() ends with "return mg_test_done();".
 *
 * Known bugs: checks that document a bug in core/ that is not fixed yet live inside
 * "if (MG_T_KNOWN_BUG("what")) { ... }".  They are skipped (and listed) unless the
 * environment has MG_TEST_KNOWN_BUGS=1, so the registered suite stays green while the
 * failing check is one command away.  When the bug is fixed, drop the guard.
 *
 * Temporary files go under one directory per program (mg_t_tmpdir()), removed at exit.
 * Header-only on purpose: every test is a single translation unit.
 */
#ifndef MG_TEST_H
#define MG_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mkdtemp, nftw */
#endif
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int mg_t_passed;
static int mg_t_failed;
static int mg_t_skipped;
static const char *mg_t_case = "";
static char mg_t_dir[256];

/* Names the group of checks that follow (shown in failure messages). */
#define MG_T_CASE(name)                                                                            \
    do {                                                                                           \
        mg_t_case = (name);                                                                        \
    } while (0)

#define MG_T_FAIL_AT(...)                                                                          \
    do {                                                                                           \
        mg_t_failed++;                                                                             \
        printf("FAIL %s:%d [%s]: ", __FILE__, __LINE__, mg_t_case);                                \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

/* CHECK(cond) or CHECK(cond, "printf format", args...) for a better message. */
#define CHECK(...) MG_T_CHECK_SEL(__VA_ARGS__, MG_T_CHECK_MSG, MG_T_CHECK_MSG, MG_T_CHECK_MSG,     \
                                  MG_T_CHECK_MSG, MG_T_CHECK_MSG, MG_T_CHECK_MSG, MG_T_CHECK_MSG,  \
                                  MG_T_CHECK_1, _unused)(__VA_ARGS__)
#define MG_T_CHECK_SEL(_1, _2, _3, _4, _5, _6, _7, _8, NAME, ...) NAME
#define MG_T_CHECK_1(cond) MG_T_CHECK_MSG(cond, "%s", #cond)
#define MG_T_CHECK_MSG(cond, ...)                                                                  \
    do {                                                                                           \
        if (cond) {                                                                                \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT(__VA_ARGS__);                                                             \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long mg_t_a = (long long) (a), mg_t_b = (long long) (b);                              \
        if (mg_t_a == mg_t_b) {                                                                    \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s == %s: got %lld, expected %lld", #a, #b, mg_t_a, mg_t_b);             \
        }                                                                                          \
    } while (0)

/* Strings (NULL allowed on either side; NULL only equals NULL). */
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *mg_t_a = (a), *mg_t_b = (b);                                                   \
        if ((mg_t_a == NULL && mg_t_b == NULL) ||                                                  \
            (mg_t_a != NULL && mg_t_b != NULL && strcmp(mg_t_a, mg_t_b) == 0)) {                   \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s == %s: got \"%s\", expected \"%s\"", #a, #b,                          \
                         mg_t_a ? mg_t_a : "(null)", mg_t_b ? mg_t_b : "(null)");                  \
        }                                                                                          \
    } while (0)

/* Byte ranges: (pointer, length) against a C string literal or NUL-terminated expectation. */
#define CHECK_MEM(p, n, s)                                                                         \
    do {                                                                                           \
        const char *mg_t_p = (const char *) (p), *mg_t_s = (s);                                    \
        size_t mg_t_n = (size_t) (n);                                                              \
        if (mg_t_p != NULL && mg_t_n == strlen(mg_t_s) && memcmp(mg_t_p, mg_t_s, mg_t_n) == 0) {   \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s: got \"%.*s\" (%zu bytes), expected \"%s\"", #p,                      \
                         mg_t_p ? (int) mg_t_n : 6, mg_t_p ? mg_t_p : "(null)", mg_t_n, mg_t_s);   \
        }                                                                                          \
    } while (0)

/* Substring of a message (NULL haystack fails). */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *mg_t_h = (hay), *mg_t_n = (needle);                                            \
        if (mg_t_h != NULL && strstr(mg_t_h, mg_t_n) != NULL) {                                    \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s does not contain \"%s\": \"%s\"", #hay, mg_t_n,                       \
                         mg_t_h ? mg_t_h : "(null)");                                              \
        }                                                                                          \
    } while (0)

static inline bool
mg_t_known_bug(const char *what, const char *file, int line)
{
    const char *e = getenv("MG_TEST_KNOWN_BUGS");
    if (e != NULL && strcmp(e, "1") == 0) {
        printf("known bug (running): %s:%d: %s\n", file, line, what);
        return true;
    }
    mg_t_skipped++;
    printf("known bug (skipped; MG_TEST_KNOWN_BUGS=1 runs it): %s:%d: %s\n", file, line, what);
    return false;
}
#define MG_T_KNOWN_BUG(what) mg_t_known_bug((what), __FILE__, __LINE__)

static int
mg_t_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    remove(path);
    return 0;
}

static void
mg_t_rm_tmpdir(void)
{
    if (mg_t_dir[0] != '\0') {
        nftw(mg_t_dir, mg_t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        mg_t_dir[0] = '\0';
    }
}

/* This program's temporary directory (created on first use, removed at exit). */
static inline const char *
mg_t_tmpdir(void)
{
    if (mg_t_dir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(mg_t_dir, sizeof(mg_t_dir), "%s/mg-unit-XXXXXX",
                 base != NULL && base[0] != '\0' ? base : "/tmp");
        if (mkdtemp(mg_t_dir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(mg_t_rm_tmpdir);
    }
    return mg_t_dir;
}

/* Writes a file under the temporary directory; returns its path (static buffer rotation). */
static inline const char *
mg_t_write_file(const char *name, const char *content)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", mg_t_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    if (f == NULL || fwrite(content, 1, strlen(content), f) != strlen(content)) {
        perror(p);
        exit(2);
    }
    fclose(f);
    return p;
}

static inline int
mg_test_done(void)
{
    printf("%d passed, %d failed", mg_t_passed, mg_t_failed);
    if (mg_t_skipped > 0) {
        printf(", %d known-bug group(s) skipped", mg_t_skipped);
    }
    printf("\n");
    fflush(stdout);
    return mg_t_failed == 0 ? 0 : 1;
}

#endif
