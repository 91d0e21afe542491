/*
 * test_arena.c -- core/base/mg_arena.c: bump allocation, big one-off chunks, reset.
 * Every allocation is filled with its own pattern and checked afterwards, so overlapping
 * allocations show up as corrupted patterns (and under ASan as errors).  Includes the .c to
 * see the chunk list.
 */
#include "mg_test.h"

/* the .c, for the chunk list (struct mg_arena_chunk_s is private) */
#include "base/mg_arena.c"

typedef struct {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} t_alloc_t;

static bool
t_intact(const t_alloc_t *a, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < a[i].n; k++) {
            if (a[i].p[k] != a[i].tag) {
                return false;
            }
        }
    }
    return true;
}

static void
test_alloc(void)
{
    MG_T_CASE("alloc");
    mg_arena_t a;
    mg_arena_init(&a, 1024);
    CHECK(a.head == NULL); /* nothing until first use */
    static t_alloc_t allocs[5000];
    size_t count = 0;
    unsigned x = 7;
    bool aligned = true;
    for (int i = 0; i < 5000; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 16) % 200;
        if (i % 500 == 0) {
            n = 5000 + (x >> 20) % 5000; /* bigger than a chunk: a one-off chunk */
        }
        unsigned char *p = mg_arena_alloc(&a, n);
        aligned = aligned && ((uintptr_t) p % 16) == 0;
        memset(p, (int) (i & 0xff), n);
        allocs[count++] = (t_alloc_t){p, n, (unsigned char) (i & 0xff)};
    }
    CHECK(aligned, "arena allocations are 16-byte aligned");
    CHECK(t_intact(allocs, count), "allocations overlap");

    /* zero-size allocations are valid distinct-or-equal pointers, never NULL */
    CHECK(mg_arena_alloc(&a, 0) != NULL);

    char *z = mg_arena_calloc(&a, 333);
    bool zero = true;
    for (int i = 0; i < 333; i++) {
        zero = zero && z[i] == 0;
    }
    CHECK(zero);

    CHECK_STR(mg_arena_strndup(&a, "hello world", 5), "hello");
    CHECK_STR(mg_arena_strdup(&a, ""), "");
    CHECK_STR(mg_arena_printf(&a, "%s-%04d", "id", 7), "id-0007");
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *pb = mg_arena_printf(&a, "<%s>", big);
    CHECK(strlen(pb) == sizeof(big) + 1 && pb[0] == '<' && pb[sizeof(big)] == '>');
    CHECK(t_intact(allocs, count), "later allocations overwrote earlier ones");
    mg_arena_destroy(&a);
    CHECK(a.head == NULL && a.total == 0);
}

static void
test_reset(void)
{
    MG_T_CASE("reset");
    mg_arena_t a;
    mg_arena_init(&a, 0); /* default chunk size */
    CHECK_INT(a.chunk_size, 4096);
    mg_arena_reset(&a); /* reset of an unused arena */
    CHECK(a.head == NULL);

    for (int round = 0; round < 50; round++) {
        static t_alloc_t allocs[400];
        size_t count = 0;
        for (int i = 0; i < 400; i++) {
            size_t n = (size_t) ((i * 37 + round) % 300);
            if (i == 100 + round) {
                n = 10000; /* one-off */
            }
            unsigned char *p = mg_arena_alloc(&a, n);
            memset(p, (int) ((i + round) & 0xff), n);
            allocs[count++] = (t_alloc_t){p, n, (unsigned char) ((i + round) & 0xff)};
        }
        if (!t_intact(allocs, count)) {
            MG_T_FAIL_AT("round %d: allocations overlap after reset", round);
            break;
        }
        mg_arena_reset(&a);
        /* at most one default-size chunk survives a reset */
        CHECK(a.head == NULL || (a.head->next == NULL && a.total == a.chunk_size));
    }
    mg_arena_destroy(&a);
}

static void
test_x_wrappers(void)
{
    MG_T_CASE("x wrappers");
    char *s = mg_xstrdup("abc");
    CHECK_STR(s, "abc");
    free(s);
    s = mg_xstrndup("abcdef", 2);
    CHECK_STR(s, "ab");
    free(s);
    s = mg_xstrndup("a\0c", 3); /* copies n bytes even across a NUL */
    CHECK(s[0] == 'a' && s[1] == '\0' && s[2] == 'c' && s[3] == '\0');
    free(s);
    int *z = mg_xcalloc(10, sizeof(int));
    CHECK(z[0] == 0 && z[9] == 0);
    z = mg_xrealloc(z, 1000 * sizeof(int));
    CHECK(z[9] == 0);
    free(z);
    void *p = mg_xmalloc(0); /* size 0 gives a real pointer */
    CHECK(p != NULL);
    free(p);
}

int
main(void)
{
    test_alloc();
    test_reset();
    test_x_wrappers();
    return mg_test_done();
}
