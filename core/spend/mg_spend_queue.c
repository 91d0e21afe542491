/*
 * mg_spend_queue.c -- see mg_spend_queue.h.
 */
#include "mg_spend_queue.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MG_SQ_MAX_PAYLOAD (16u * 1024 * 1024)
#define MG_SQ_READ_AHEAD (256 * 1024)

struct mg_sq_s {
    char *dir;                      /* owned */
    mg_sq_conf_t conf;
    mg_sq_seg_t *segs;              /* owned: ascending seq; the last one is active */
    size_t nsegs, capsegs;
    int fd;                         /* the active segment, O_APPEND */
    mg_buf_t wbuf;                  /* owned: appended, not yet written */
    uint64_t wrecords;              /* records in wbuf */
    int64_t wmin, wmax;             /* their stamps */
    uint64_t disk_bytes;            /* sum of segment sizes */
    uint64_t damaged;
};

/* ---- CRC-32C ---- */

static uint32_t mg_crc32c_table[256];

static void
mg_crc32c_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        mg_crc32c_table[i] = c;
    }
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
mg_crc32c_hw(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t) c;
    while (n-- > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    }
    return c32;
}
#endif

uint32_t
mg_crc32c(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    crc = ~crc;
#if defined(__x86_64__)
    static int hw = -1;
    if (hw < 0) {
        __builtin_cpu_init();
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (hw) {
        return ~mg_crc32c_hw(crc, p, n);
    }
#endif
    if (mg_crc32c_table[1] == 0) {
        mg_crc32c_init_table();
    }
    while (n-- > 0) {
        crc = mg_crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

/* ---- helpers ---- */

static size_t
mg_sq_rec_size(size_t payload)
{
    return (MG_SQ_HDR + payload + 7) & ~(size_t) 7;
}

static void
mg_sq_path(const mg_sq_t *q, uint64_t seq, char *out, size_t len)
{
    snprintf(out, len, "%s/seg-%016" PRIx64 ".q", q->dir, seq);
}

static int
mg_sq_mkdirs(const char *dir, mg_err_t *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return mg_err_set(err, MG_ERR_CONFIG, "mkdir(\"%s\") failed (%d: %s)", tmp, errno,
                                  strerror(errno));
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return mg_err_set(err, MG_ERR_CONFIG, "mkdir(\"%s\") failed (%d: %s)", tmp, errno,
                          strerror(errno));
    }
    return MG_OK;
}

static void
mg_sq_fsync_dir(const mg_sq_t *q)
{
    int d = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        (void) fsync(d); /* best effort: a lost directory entry only loses a new, empty file */
        close(d);
    }
}

static int
mg_sq_cmp_seg(const void *a, const void *b)
{
    const mg_sq_seg_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static mg_sq_seg_t *
mg_sq_add_seg(mg_sq_t *q, uint64_t seq)
{
    if (q->nsegs == q->capsegs) {
        q->capsegs = q->capsegs ? q->capsegs * 2 : 16;
        q->segs = mg_xrealloc(q->segs, q->capsegs * sizeof(*q->segs));
    }
    mg_sq_seg_t *s = &q->segs[q->nsegs++];
    memset(s, 0, sizeof(*s));
    s->seq = seq;
    s->min_stamp = INT64_MAX;
    s->max_stamp = INT64_MIN;
    return s;
}

/* Whether buf[0..avail) starts with a whole valid record; *total = its padded size. */
static bool
mg_sq_valid_at(const unsigned char *buf, size_t avail, size_t *total, int64_t *stamp)
{
    if (avail < MG_SQ_HDR) {
        return false;
    }
    uint32_t h[4];
    memcpy(h, buf, sizeof(h));
    if (h[0] != MG_SQ_MAGIC || h[1] > MG_SQ_MAX_PAYLOAD || h[3] != 0) {
        return false;
    }
    size_t t = mg_sq_rec_size(h[1]);
    if (t > avail) {
        return false;
    }
    if (mg_crc32c(0, buf + 16, 8 + (size_t) h[1]) != h[2]) {
        return false;
    }
    *total = t;
    memcpy(stamp, buf + 16, 8);
    return true;
}

/*
 * Checks every record of a segment file.  A torn tail is cut off (ftruncate); damage in the
 * middle is skipped to the next valid header.  Fills records/min/max.
 */
static int
mg_sq_verify(mg_sq_t *q, mg_sq_seg_t *s, mg_err_t *err)
{
    char path[PATH_MAX];
    mg_sq_path(q, s->seq, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "open(\"%s\") failed (%d: %s)", path, errno,
                          strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return mg_err_set(err, MG_ERR_INTERNAL, "fstat(\"%s\") failed (%d: %s)", path, errno,
                          strerror(errno));
    }
    size_t size = (size_t) st.st_size;
    unsigned char *data = size > 0 ? mg_xmalloc(size) : NULL;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, data + got, size - got, (off_t) got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(data);
            close(fd);
            return mg_err_set(err, MG_ERR_INTERNAL, "read(\"%s\") failed (%d: %s)", path, e,
                              strerror(e));
        }
        got += (size_t) n;
    }
    size_t off = 0, good_end = 0;
    uint64_t damaged = 0;
    while (off < size) {
        size_t t;
        int64_t stamp;
        if (mg_sq_valid_at(data + off, size - off, &t, &stamp)) {
            s->records++;
            if (stamp < s->min_stamp) {
                s->min_stamp = stamp;
            }
            if (stamp > s->max_stamp) {
                s->max_stamp = stamp;
            }
            off += t;
            good_end = off;
            continue;
        }
        /* damage: look for the next valid record */
        size_t next = (off + 8) & ~(size_t) 7;
        while (next < size && !mg_sq_valid_at(data + next, size - next, &t, &stamp)) {
            next += 8;
        }
        if (next >= size) {
            break; /* nothing valid after it: the torn tail, cut below */
        }
        damaged++;
        off = next;
    }
    if (good_end < size) {
        /* the tail after the last valid record: a writer killed mid-record, or damage */
        mg_log(MG_LOG_WARN, NULL, "spend queue: %s: %zu bytes after the last valid record cut "
                                  "off (a torn write)", path, size - good_end);
        if (ftruncate(fd, (off_t) good_end) != 0) {
            int e = errno;
            free(data);
            close(fd);
            return mg_err_set(err, MG_ERR_INTERNAL, "ftruncate(\"%s\") failed (%d: %s)", path,
                              e, strerror(e));
        }
        (void) fdatasync(fd); /* a crash before this only repeats the repair */
        size = good_end;
    }
    if (damaged > 0) {
        mg_log(MG_LOG_ERROR, NULL, "spend queue: %s: %" PRIu64 " damaged region%s skipped",
               path, damaged, damaged == 1 ? "" : "s");
    }
    q->damaged += damaged;
    s->size = size;
    s->verified = true;
    free(data);
    close(fd);
    return MG_OK;
}

static int
mg_sq_open_active(mg_sq_t *q, mg_err_t *err)
{
    mg_sq_seg_t *s = &q->segs[q->nsegs - 1];
    char path[PATH_MAX];
    mg_sq_path(q, s->seq, path, sizeof(path));
    q->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (q->fd < 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "open(\"%s\") failed (%d: %s)", path, errno,
                          strerror(errno));
    }
    s->opened_ms = mg_time_mono_ms();
    s->verified = true; /* every record written from now on is ours */
    return MG_OK;
}

/* ---- open / close ---- */

int
mg_sq_open(const char *dir, const mg_sq_conf_t *conf, mg_sq_pos_t verify_from, mg_sq_t **out,
           mg_err_t *err)
{
    *out = NULL;
    if (mg_sq_mkdirs(dir, err) != MG_OK) {
        return MG_ERROR;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        return mg_err_set(err, MG_ERR_CONFIG, "opendir(\"%s\") failed (%d: %s)", dir, errno,
                          strerror(errno));
    }
    mg_sq_t *q = mg_xcalloc(1, sizeof(*q));
    q->dir = mg_xstrdup(dir);
    q->conf = *conf;
    q->fd = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long seq;
        char tail[4];
        if (strlen(de->d_name) != 22 || sscanf(de->d_name, "seg-%16llx.%3s", &seq, tail) != 2 ||
            strcmp(tail, "q") != 0 || seq == 0) {
            continue;
        }
        mg_sq_add_seg(q, (uint64_t) seq);
    }
    closedir(d);
    if (q->nsegs > 1) {
        qsort(q->segs, q->nsegs, sizeof(*q->segs), mg_sq_cmp_seg);
    }
    for (size_t i = 0; i < q->nsegs; i++) {
        mg_sq_seg_t *s = &q->segs[i];
        if (s->seq >= verify_from.seg) {
            if (mg_sq_verify(q, s, err) != MG_OK) {
                mg_sq_close(q);
                return MG_ERROR;
            }
        } else {
            char path[PATH_MAX];
            struct stat st;
            mg_sq_path(q, s->seq, path, sizeof(path));
            if (stat(path, &st) != 0) {
                mg_err_set(err, MG_ERR_INTERNAL, "stat(\"%s\") failed (%d: %s)", path, errno,
                           strerror(errno));
                mg_sq_close(q);
                return MG_ERROR;
            }
            s->size = (uint64_t) st.st_size;
            s->max_stamp = (int64_t) st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
        }
        q->disk_bytes += s->size;
    }
    if (q->nsegs == 0) {
        mg_sq_add_seg(q, 1);
    }
    if (mg_sq_open_active(q, err) != MG_OK) {
        mg_sq_close(q);
        return MG_ERROR;
    }
    if (q->nsegs == 1 && q->segs[0].size == 0) {
        mg_sq_fsync_dir(q);
    }
    *out = q;
    return MG_OK;
}

void
mg_sq_close(mg_sq_t *q)
{
    if (q == NULL) {
        return;
    }
    if (q->fd >= 0) {
        close(q->fd);
    }
    mg_buf_free(&q->wbuf);
    free(q->segs);
    free(q->dir);
    free(q);
}

void
mg_sq_set_conf(mg_sq_t *q, const mg_sq_conf_t *conf)
{
    q->conf = *conf;
}

/* ---- writing ---- */

int
mg_sq_append(mg_sq_t *q, int64_t stamp, const void *payload, size_t n)
{
    if (n > MG_SQ_MAX_PAYLOAD) {
        return MG_ERROR;
    }
    size_t t = mg_sq_rec_size(n);
    if (q->disk_bytes + mg_buf_len(&q->wbuf) + t > q->conf.max_bytes) {
        return MG_BUSY;
    }
    unsigned char hdr[MG_SQ_HDR];
    uint32_t h[4] = {MG_SQ_MAGIC, (uint32_t) n, 0, 0};
    memcpy(hdr + 16, &stamp, 8);
    uint32_t crc = mg_crc32c(0, hdr + 16, 8);
    h[2] = mg_crc32c(crc, payload, n);
    memcpy(hdr, h, sizeof(h));
    mg_buf_append(&q->wbuf, hdr, sizeof(hdr));
    mg_buf_append(&q->wbuf, payload, n);
    static const unsigned char zero[8];
    if (t - MG_SQ_HDR - n > 0) {
        mg_buf_append(&q->wbuf, zero, t - MG_SQ_HDR - n);
    }
    if (q->wrecords == 0) {
        q->wmin = INT64_MAX;
        q->wmax = INT64_MIN;
    }
    q->wrecords++;
    if (stamp < q->wmin) {
        q->wmin = stamp;
    }
    if (stamp > q->wmax) {
        q->wmax = stamp;
    }
    return MG_OK;
}

static int
mg_sq_rotate(mg_sq_t *q, mg_err_t *err)
{
    mg_sq_seg_t *s = &q->segs[q->nsegs - 1];
    if (fdatasync(q->fd) != 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "fdatasync() of spend segment %" PRIu64
                          " failed (%d: %s)", s->seq, errno, strerror(errno));
    }
    uint64_t next = s->seq + 1;
    close(q->fd);
    q->fd = -1;
    mg_sq_add_seg(q, next);
    if (mg_sq_open_active(q, err) != MG_OK) {
        /* keep writing to the old segment: reopen it as active */
        q->nsegs--;
        mg_err_t e2;
        (void) mg_sq_open_active(q, &e2);
        return MG_ERROR;
    }
    mg_sq_fsync_dir(q);
    return MG_OK;
}

int
mg_sq_flush(mg_sq_t *q, bool sync, mg_err_t *err)
{
    mg_sq_seg_t *s = &q->segs[q->nsegs - 1];
    if (q->fd < 0 && mg_sq_open_active(q, err) != MG_OK) {
        return MG_ERROR;
    }
    while (mg_buf_len(&q->wbuf) > 0) {
        ssize_t n = write(q->fd, mg_buf_head(&q->wbuf), mg_buf_len(&q->wbuf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            return mg_err_set(err, MG_ERR_INTERNAL, "write() to spend segment %" PRIu64 " in %s "
                              "failed (%d: %s)", s->seq, q->dir, e, strerror(e));
        }
        mg_buf_consume(&q->wbuf, (size_t) n);
        s->size += (uint64_t) n;
        q->disk_bytes += (uint64_t) n;
    }
    mg_buf_reset(&q->wbuf);
    if (q->wrecords > 0) {
        s->records += q->wrecords;
        if (q->wmin < s->min_stamp) {
            s->min_stamp = q->wmin;
        }
        if (q->wmax > s->max_stamp) {
            s->max_stamp = q->wmax;
        }
        q->wrecords = 0;
    }
    if (sync && fdatasync(q->fd) != 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "fdatasync() of spend segment %" PRIu64 " in %s "
                          "failed (%d: %s)", s->seq, q->dir, errno, strerror(errno));
    }
    if (s->size >= q->conf.seg_max_bytes ||
        (s->size > 0 && mg_time_mono_ms() - s->opened_ms >= q->conf.seg_max_age_ms)) {
        return mg_sq_rotate(q, err);
    }
    return MG_OK;
}

uint64_t
mg_sq_buffered(const mg_sq_t *q)
{
    return q->wrecords;
}

/* ---- positions and the index ---- */

mg_sq_pos_t
mg_sq_end(const mg_sq_t *q)
{
    const mg_sq_seg_t *s = &q->segs[q->nsegs - 1];
    return (mg_sq_pos_t){s->seq, s->size};
}

mg_sq_pos_t
mg_sq_begin(const mg_sq_t *q)
{
    return (mg_sq_pos_t){q->segs[0].seq, 0};
}

int
mg_sq_pos_cmp(mg_sq_pos_t a, mg_sq_pos_t b)
{
    if (a.seg != b.seg) {
        return a.seg < b.seg ? -1 : 1;
    }
    return a.off < b.off ? -1 : a.off > b.off;
}

static void
mg_sq_delete_first(mg_sq_t *q)
{
    char path[PATH_MAX];
    mg_sq_path(q, q->segs[0].seq, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT) {
        mg_log(MG_LOG_WARN, NULL, "spend queue: unlink(\"%s\") failed (%d: %s)", path, errno,
               strerror(errno));
    }
    q->disk_bytes -= q->segs[0].size;
    memmove(&q->segs[0], &q->segs[1], (q->nsegs - 1) * sizeof(*q->segs));
    q->nsegs--;
}

static bool
mg_sq_seg_done(const mg_sq_seg_t *s, mg_sq_pos_t pos)
{
    return s->seq < pos.seg || (s->seq == pos.seg && pos.off >= s->size);
}

void
mg_sq_release(mg_sq_t *q, mg_sq_pos_t pos)
{
    bool any = false;
    while (q->nsegs > 1 && mg_sq_seg_done(&q->segs[0], pos)) {
        mg_sq_delete_first(q);
        any = true;
    }
    if (any) {
        mg_sq_fsync_dir(q);
    }
}

bool
mg_sq_drop_oldest(mg_sq_t *q, mg_sq_pos_t limit, mg_sq_seg_t *gone)
{
    if (q->nsegs < 2 || !mg_sq_seg_done(&q->segs[0], limit)) {
        return false;
    }
    if (gone != NULL) {
        *gone = q->segs[0];
    }
    mg_sq_delete_first(q);
    mg_sq_fsync_dir(q);
    return true;
}

const mg_sq_seg_t *
mg_sq_seg(const mg_sq_t *q, size_t i)
{
    return i < q->nsegs ? &q->segs[i] : NULL;
}

size_t
mg_sq_nsegs(const mg_sq_t *q)
{
    return q->nsegs;
}

uint64_t
mg_sq_bytes(const mg_sq_t *q)
{
    return q->disk_bytes + mg_buf_len(&q->wbuf);
}

uint64_t
mg_sq_damaged(const mg_sq_t *q)
{
    return q->damaged;
}

const char *
mg_sq_dir(const mg_sq_t *q)
{
    return q->dir;
}

/* ---- reading ---- */

void
mg_sq_reader_init(mg_sq_reader_t *r, mg_sq_t *q, mg_sq_pos_t from)
{
    memset(r, 0, sizeof(*r));
    r->q = q;
    r->pos = from;
    r->fd = -1;
}

void
mg_sq_reader_free(mg_sq_reader_t *r)
{
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    mg_buf_free(&r->buf);
}

/* The segment r->pos is in (moving on past deleted ones); NULL past the last. */
static const mg_sq_seg_t *
mg_sq_reader_seg(mg_sq_reader_t *r)
{
    for (size_t i = 0; i < r->q->nsegs; i++) {
        const mg_sq_seg_t *s = &r->q->segs[i];
        if (s->seq == r->pos.seg) {
            return s;
        }
        if (s->seq > r->pos.seg) {
            r->pos.seg = s->seq;
            r->pos.off = 0;
            return s;
        }
    }
    return NULL;
}

/* Makes [off, off + n) of the reader's segment available in r->buf; NULL on a read error. */
static const unsigned char *
mg_sq_reader_get(mg_sq_reader_t *r, const mg_sq_seg_t *s, uint64_t off, size_t n, mg_err_t *err)
{
    if (r->fd >= 0 && r->fd_seg == s->seq && off >= r->buf_pos &&
        off + n <= r->buf_pos + mg_buf_len(&r->buf)) {
        return (const unsigned char *) mg_buf_head(&r->buf) + (off - r->buf_pos);
    }
    char path[PATH_MAX];
    mg_sq_path(r->q, s->seq, path, sizeof(path));
    if (r->fd < 0 || r->fd_seg != s->seq) {
        if (r->fd >= 0) {
            close(r->fd);
        }
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            mg_err_set(err, MG_ERR_INTERNAL, "open(\"%s\") failed (%d: %s)", path, errno,
                       strerror(errno));
            return NULL;
        }
        r->fd_seg = s->seq;
    }
    size_t want = n > MG_SQ_READ_AHEAD ? n : MG_SQ_READ_AHEAD;
    if (off + want > s->size) {
        want = (size_t) (s->size - off);
    }
    mg_buf_reset(&r->buf);
    mg_buf_reserve(&r->buf, want);
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(r->fd, r->buf.data + got, want - got, (off_t) (off + got));
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            mg_err_set(err, MG_ERR_INTERNAL, "read(\"%s\") failed (%d: %s)", path, e,
                       strerror(e));
            return NULL;
        }
        got += (size_t) k;
    }
    r->buf.start = 0;
    r->buf.end = got;
    r->buf_pos = off;
    if (got < n) {
        mg_err_set(err, MG_ERR_INTERNAL, "short read of \"%s\"", path);
        return NULL;
    }
    return (const unsigned char *) r->buf.data;
}

int
mg_sq_next(mg_sq_reader_t *r, mg_sq_rec_t *rec, mg_err_t *err)
{
    for (;;) {
        const mg_sq_seg_t *s = mg_sq_reader_seg(r);
        if (s == NULL) {
            return MG_DECLINED;
        }
        bool active = s == &r->q->segs[r->q->nsegs - 1];
        if (r->pos.off >= s->size) {
            if (active) {
                return MG_DECLINED;
            }
            r->pos.seg = s->seq + 1;
            r->pos.off = 0;
            continue;
        }
        uint64_t avail = s->size - r->pos.off;
        const unsigned char *p = avail >= MG_SQ_HDR
                                     ? mg_sq_reader_get(r, s, r->pos.off, MG_SQ_HDR, err)
                                     : NULL;
        if (avail >= MG_SQ_HDR && p == NULL) {
            return MG_ERROR;
        }
        uint32_t h[4] = {0, 0, 0, 0};
        if (p != NULL) {
            memcpy(h, p, sizeof(h));
        }
        size_t total = mg_sq_rec_size(h[1]);
        if (p != NULL && h[0] == MG_SQ_MAGIC && h[1] <= MG_SQ_MAX_PAYLOAD && total > avail &&
            active) {
            return MG_DECLINED; /* being written */
        }
        if (p != NULL && h[0] == MG_SQ_MAGIC && h[1] <= MG_SQ_MAX_PAYLOAD && total <= avail) {
            p = mg_sq_reader_get(r, s, r->pos.off, total, err);
            if (p == NULL) {
                return MG_ERROR;
            }
            if (mg_crc32c(0, p + 16, 8 + (size_t) h[1]) == h[2] && h[3] == 0) {
                memcpy(&rec->stamp, p + 16, 8);
                rec->payload = p + MG_SQ_HDR;
                rec->len = h[1];
                rec->at = r->pos;
                r->pos.off += total;
                rec->next = r->pos;
                return MG_OK;
            }
        }
        if (active && avail < MG_SQ_HDR) {
            return MG_DECLINED;
        }
        /* damaged: resync on the next valid record (or the end of the segment) */
        r->q->damaged++;
        mg_log(MG_LOG_ERROR, NULL, "spend queue: damaged record in segment %" PRIu64 " at %"
               PRIu64 "; skipping to the next valid one", s->seq, r->pos.off);
        uint64_t off = (r->pos.off + 8) & ~(uint64_t) 7;
        for (; off + MG_SQ_HDR <= s->size; off += 8) {
            const unsigned char *c = mg_sq_reader_get(r, s, off, MG_SQ_HDR, err);
            if (c == NULL) {
                return MG_ERROR;
            }
            uint32_t hh[4];
            memcpy(hh, c, sizeof(hh));
            if (hh[0] != MG_SQ_MAGIC || hh[1] > MG_SQ_MAX_PAYLOAD ||
                off + mg_sq_rec_size(hh[1]) > s->size) {
                continue;
            }
            size_t t;
            int64_t st;
            c = mg_sq_reader_get(r, s, off, mg_sq_rec_size(hh[1]), err);
            if (c == NULL) {
                return MG_ERROR;
            }
            if (mg_sq_valid_at(c, mg_sq_rec_size(hh[1]), &t, &st)) {
                break;
            }
        }
        r->pos.off = off + MG_SQ_HDR <= s->size ? off : s->size;
    }
}
