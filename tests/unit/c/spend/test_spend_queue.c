/*
 * test_spend_queue.c -- the on-disk spend queue (core/spend/mg_spend_queue.c): append, flush,
 * read back across segment rotation, a torn record at the tail, a damaged record in the
 * middle (checksum), the size bound, release and drop of segments, CRC-32C values.
 */
#include "mg_test.h"

#include "spend/mg_spend_queue.h"

#include <fcntl.h>
#include <sys/stat.h>

static const char *
t_dir(const char *name)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%s", mg_t_tmpdir(), name);
    return p;
}

static mg_sq_t *
t_open(const char *dir, uint64_t seg_max, uint64_t max_bytes, mg_sq_pos_t verify)
{
    mg_sq_conf_t c = {seg_max, 3600 * 1000, max_bytes};
    mg_sq_t *q = NULL;
    mg_err_t err;
    if (mg_sq_open(dir, &c, verify, &q, &err) != MG_OK) {
        printf("open %s: %s\n", dir, err.msg);
        return NULL;
    }
    return q;
}

/* Reads every record from pos; checks payload i is "rec-<i>" repeated; returns the count. */
static int
t_read_all(mg_sq_t *q, mg_sq_pos_t from, int first, bool *ok)
{
    mg_sq_reader_t r;
    mg_sq_reader_init(&r, q, from);
    int n = 0;
    mg_sq_rec_t rec;
    mg_err_t err;
    int rc;
    while ((rc = mg_sq_next(&r, &rec, &err)) == MG_OK) {
        char want[64];
        int wl = snprintf(want, sizeof(want), "rec-%d", first + n);
        if (rec.len < (size_t) wl || memcmp(rec.payload, want, (size_t) wl) != 0 ||
            rec.stamp != (first + n) * 10) {
            *ok = false;
        }
        n++;
    }
    if (rc == MG_ERROR) {
        printf("read: %s\n", err.msg);
        *ok = false;
    }
    mg_sq_reader_free(&r);
    return n;
}

static void
t_append(mg_sq_t *q, int i, size_t size)
{
    char buf[4096];
    int l = snprintf(buf, sizeof(buf), "rec-%d", i);
    memset(buf + l, 'x', size - (size_t) l);
    CHECK_INT(mg_sq_append(q, (int64_t) i * 10, buf, size), MG_OK);
}

static void
t_basic(void)
{
    MG_T_CASE("append, flush, read back across rotated segments; reopen");
    const char *dir = t_dir("q1");
    mg_sq_t *q = t_open(dir, 4096, 1 << 20, (mg_sq_pos_t){0, 0});
    CHECK(q != NULL);
    mg_err_t err;
    for (int i = 0; i < 100; i++) {
        t_append(q, i, 100 + (size_t) (i % 13) * 17);
        if (i % 7 == 0) {
            CHECK_INT(mg_sq_flush(q, i % 14 == 0, &err), MG_OK);
        }
    }
    bool ok = true;
    CHECK(mg_sq_buffered(q) > 0, "the last appends wait in the buffer");
    CHECK_INT(mg_sq_flush(q, true, &err), MG_OK);
    CHECK_INT(mg_sq_buffered(q), 0);
    CHECK(mg_sq_nsegs(q) > 3, "rotated at 4 KiB: %zu segments", mg_sq_nsegs(q));
    CHECK_INT(t_read_all(q, mg_sq_begin(q), 0, &ok), 100);
    CHECK(ok, "every record as written, in order");
    /* a position inside: the rest */
    mg_sq_reader_t r;
    mg_sq_reader_init(&r, q, mg_sq_begin(q));
    mg_sq_rec_t rec;
    for (int i = 0; i < 40; i++) {
        CHECK_INT(mg_sq_next(&r, &rec, &err), MG_OK);
    }
    mg_sq_pos_t mid = rec.next;
    mg_sq_reader_free(&r);
    CHECK_INT(t_read_all(q, mid, 40, &ok), 60);
    mg_sq_close(q);
    q = t_open(dir, 4096, 1 << 20, (mg_sq_pos_t){0, 0});
    CHECK_INT(t_read_all(q, mg_sq_begin(q), 0, &ok), 100);
    t_append(q, 100, 64);
    CHECK_INT(mg_sq_flush(q, true, &err), MG_OK);
    CHECK_INT(t_read_all(q, mg_sq_begin(q), 0, &ok), 101);
    CHECK(ok, "appends after a reopen continue the log");
    uint64_t segs = mg_sq_nsegs(q);
    MG_T_CASE("release: segments wholly before a position go, never the active one");
    mg_sq_release(q, mid);
    CHECK(mg_sq_nsegs(q) < segs && mg_sq_nsegs(q) >= 1);
    CHECK_INT(t_read_all(q, mid, 40, &ok), 61);
    mg_sq_release(q, mg_sq_end(q));
    CHECK_INT(mg_sq_nsegs(q), 1);
    CHECK(ok);
    mg_sq_close(q);
}

/* The path of the last segment file of dir. */
static void
t_last_seg(const char *dir, char *out, size_t len)
{
    mg_sq_t *q = t_open(dir, 1 << 20, 1 << 30, (mg_sq_pos_t){UINT64_MAX, 0});
    const mg_sq_seg_t *s = mg_sq_seg(q, mg_sq_nsegs(q) - 1);
    snprintf(out, len, "%s/seg-%016llx.q", dir, (unsigned long long) s->seq);
    mg_sq_close(q);
}

static void
t_torn(void)
{
    MG_T_CASE("a torn record at the tail is cut off; the log goes on after it");
    const char *dir = t_dir("q2");
    mg_sq_t *q = t_open(dir, 1 << 20, 1 << 30, (mg_sq_pos_t){0, 0});
    mg_err_t err;
    for (int i = 0; i < 10; i++) {
        t_append(q, i, 200);
    }
    CHECK_INT(mg_sq_flush(q, true, &err), MG_OK);
    mg_sq_close(q);
    char path[600];
    t_last_seg(dir, path, sizeof(path));
    struct stat st;
    stat(path, &st);
    off_t good = st.st_size;
    /* a writer killed in the middle of a record: its header and part of its payload */
    int fd = open(path, O_WRONLY | O_APPEND);
    unsigned char partial[100];
    uint32_t h[4] = {MG_SQ_MAGIC, 200, 0, 0};
    memcpy(partial, h, 16);
    memset(partial + 16, 'y', sizeof(partial) - 16);
    CHECK(write(fd, partial, sizeof(partial)) == (ssize_t) sizeof(partial));
    close(fd);
    q = t_open(dir, 1 << 20, 1 << 30, (mg_sq_pos_t){0, 0});
    stat(path, &st);
    CHECK_INT(st.st_size, good);
    CHECK_INT(mg_sq_damaged(q), 0); /* a torn tail is a repair, not damage */
    bool ok = true;
    CHECK_INT(t_read_all(q, mg_sq_begin(q), 0, &ok), 10);
    t_append(q, 10, 200);
    CHECK_INT(mg_sq_flush(q, true, &err), MG_OK);
    CHECK_INT(t_read_all(q, mg_sq_begin(q), 0, &ok), 11);
    CHECK(ok);
    mg_sq_close(q);
}

static void
t_damaged(void)
{
    MG_T_CASE("a damaged record in the middle (checksum) is skipped and counted");
    const char *dir = t_dir("q3");
    mg_sq_t *q = t_open(dir, 1 << 20, 1 << 30, (mg_sq_pos_t){0, 0});
    mg_err_t err;
    for (int i = 0; i < 10; i++) {
        t_append(q, i, 120);
    }
    CHECK_INT(mg_sq_flush(q, true, &err), MG_OK);
    mg_sq_close(q);
    char path[600];
    t_last_seg(dir, path, sizeof(path));
    /* flip one payload byte of the 4th record (records are 24 + 120 = 144 bytes) */
    int fd = open(path, O_RDWR);
    unsigned char b;
    off_t at = 3 * 144 + 24 + 50;
    CHECK(pread(fd, &b, 1, at) == 1);
    b ^= 0x20;
    CHECK(pwrite(fd, &b, 1, at) == 1);
    close(fd);
    /* not verified at open (consumed already): the reader finds it */
    q = t_open(dir, 1 << 20, 1 << 30, (mg_sq_pos_t){UINT64_MAX, 0});
    mg_sq_reader_t r;
    mg_sq_reader_init(&r, q, mg_sq_begin(q));
    int n = 0, seen[16];
    mg_sq_rec_t rec;
    while (mg_sq_next(&r, &rec, &err) == MG_OK && n < 16) {
        seen[n++] = atoi((const char *) rec.payload + 4);
    }
    mg_sq_reader_free(&r);
    CHECK_INT(n, 9);
    CHECK(n == 9 && seen[2] == 2 && seen[3] == 4, "record 3 skipped, 4 follows");
    CHECK_INT(mg_sq_damaged(q), 1);
    mg_sq_close(q);
    /* verified at open: counted there too, the file is kept */
    q = t_open(dir, 1 << 20, 1 << 30, (mg_sq_pos_t){0, 0});
    CHECK_INT(mg_sq_damaged(q), 1);
    CHECK_INT(mg_sq_seg(q, mg_sq_nsegs(q) - 1)->records, 9);
    mg_sq_close(q);
}

static void
t_bound(void)
{
    MG_T_CASE("the size bound refuses appends; dropping the oldest segment makes room");
    const char *dir = t_dir("q4");
    mg_sq_t *q = t_open(dir, 2048, 8192, (mg_sq_pos_t){0, 0});
    mg_err_t err;
    int ok = 0;
    for (int i = 0; i < 200; i++) {
        char buf[232];
        memset(buf, 'z', sizeof(buf));
        int rc = mg_sq_append(q, i, buf, sizeof(buf));
        if (rc == MG_BUSY) {
            break;
        }
        CHECK_INT(rc, MG_OK);
        ok++;
        CHECK_INT(mg_sq_flush(q, false, &err), MG_OK);
    }
    CHECK_INT(ok, 8192 / 256);
    CHECK(mg_sq_bytes(q) <= 8192);
    mg_sq_seg_t gone;
    CHECK(!mg_sq_drop_oldest(q, mg_sq_begin(q), &gone), "not before its end");
    CHECK(mg_sq_drop_oldest(q, mg_sq_end(q), &gone));
    CHECK(gone.records > 0 && gone.size > 0);
    char buf[232];
    memset(buf, 'z', sizeof(buf));
    CHECK_INT(mg_sq_append(q, 1, buf, sizeof(buf)), MG_OK);
    mg_sq_close(q);
}

static void
t_crc(void)
{
    MG_T_CASE("CRC-32C");
    /* the standard check value of CRC-32C */
    CHECK_INT(mg_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_INT(mg_crc32c(mg_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    CHECK_INT(mg_crc32c(0, "", 0), 0);
}

int
main(void)
{
    t_crc();
    t_basic();
    t_torn();
    t_damaged();
    t_bound();
    return mg_test_done();
}
