/*
 * mg_spend_queue.h -- the on-disk spend queue: append-only segment files of checksummed
 * records in one directory.
 *
 * Owns: the directory's segment files "seg-<16 hex digits>.q", the active segment's fd, the
 * write buffer and one index entry per segment.  Single-threaded (the master's loop).
 *
 * Record: a 24-byte header {magic "MGQ1", payload length, CRC-32C of stamp+payload, 0,
 * int64 stamp} and the payload, padded to 8 bytes.  The stamp is the caller's (the row's
 * start time): it orders nothing, it lets retention and queries skip whole segments.
 *
 * Appends go to a buffer; mg_sq_flush() writes it (and fdatasyncs when asked), rotates the
 * active segment when it passed seg_max_bytes or seg_max_age_ms, and only then are the
 * records readable.  At open, segments from verify_from on are checked record by record: a
 * torn record at the end of a segment (a writer killed mid-write) is cut off, a damaged one
 * in the middle is skipped up to the next valid header; both are counted and logged.
 * Segments before verify_from are trusted (their records were already consumed).
 */
#ifndef MG_SPEND_QUEUE_H
#define MG_SPEND_QUEUE_H

#include "../base/mg_buf.h"
#include "../base/mg_err.h"

#include <stdbool.h>
#include <stdint.h>

#define MG_SQ_HDR 24
#define MG_SQ_MAGIC 0x3151474du     /* "MGQ1" little-endian */

typedef struct {
    uint64_t seg;                   /* segment sequence number */
    uint64_t off;                   /* byte offset in it */
} mg_sq_pos_t;

typedef struct {
    uint64_t seg_max_bytes;         /* rotate the active segment past this (default 8 MiB) */
    int64_t seg_max_age_ms;         /* ... or when it is older than this and not empty */
    uint64_t max_bytes;             /* appends past this total are refused (MG_BUSY) */
} mg_sq_conf_t;

typedef struct {
    uint64_t seq;
    uint64_t size;                  /* bytes written to the file */
    uint64_t records;               /* valid records (0 when not verified: see verified) */
    int64_t min_stamp, max_stamp;   /* of its records (max: file mtime when not verified) */
    int64_t opened_ms;              /* monotonic: when it became active (rotation by age) */
    bool verified;
} mg_sq_seg_t;

typedef struct mg_sq_s mg_sq_t;

/* Opens (creating) dir; see the file comment for verify_from. */
int mg_sq_open(const char *dir, const mg_sq_conf_t *conf, mg_sq_pos_t verify_from, mg_sq_t **out,
               mg_err_t *err);
void mg_sq_close(mg_sq_t *q);
void mg_sq_set_conf(mg_sq_t *q, const mg_sq_conf_t *conf);

/* Buffers one record (n <= 16 MiB).  MG_BUSY when the queue would pass max_bytes. */
int mg_sq_append(mg_sq_t *q, int64_t stamp, const void *payload, size_t n);
/* Writes what is buffered, fdatasyncs when sync, rotates when due.  MG_ERROR (err set) when
 * a write failed: what was not written stays buffered and the next flush retries it. */
int mg_sq_flush(mg_sq_t *q, bool sync, mg_err_t *err);
/* Records buffered and not yet written. */
uint64_t mg_sq_buffered(const mg_sq_t *q);

/* The position after the last written record. */
mg_sq_pos_t mg_sq_end(const mg_sq_t *q);
/* The position of the first record. */
mg_sq_pos_t mg_sq_begin(const mg_sq_t *q);
/* a < b: -1, a == b: 0, a > b: 1 */
int mg_sq_pos_cmp(mg_sq_pos_t a, mg_sq_pos_t b);

/* Deletes every segment that ends at or before pos (never the active one). */
void mg_sq_release(mg_sq_t *q, mg_sq_pos_t pos);
/* Deletes the oldest segment if it is not the active one and ends at or before limit;
 * true when one was deleted (its index entry is copied to *gone). */
bool mg_sq_drop_oldest(mg_sq_t *q, mg_sq_pos_t limit, mg_sq_seg_t *gone);

/* Index: segment i (0 = oldest); NULL past the end. */
const mg_sq_seg_t *mg_sq_seg(const mg_sq_t *q, size_t i);
size_t mg_sq_nsegs(const mg_sq_t *q);
/* Bytes on disk plus buffered. */
uint64_t mg_sq_bytes(const mg_sq_t *q);
/* Damaged or torn records found (at open and while reading). */
uint64_t mg_sq_damaged(const mg_sq_t *q);
const char *mg_sq_dir(const mg_sq_t *q);

/* ---- reading ---- */

typedef struct {
    mg_sq_t *q;                     /* borrowed */
    mg_sq_pos_t pos;                /* the next record */
    int fd;                         /* the segment being read, -1 none */
    uint64_t fd_seg;
    mg_buf_t buf;                   /* owned: bytes read ahead from pos */
    uint64_t buf_pos;               /* segment offset of the first buffered byte */
} mg_sq_reader_t;

typedef struct {
    int64_t stamp;
    const unsigned char *payload;   /* borrowed: valid until the next call on the reader */
    size_t len;
    mg_sq_pos_t at;                 /* where it is */
    mg_sq_pos_t next;               /* the position after it */
} mg_sq_rec_t;

void mg_sq_reader_init(mg_sq_reader_t *r, mg_sq_t *q, mg_sq_pos_t from);
void mg_sq_reader_free(mg_sq_reader_t *r);
/*
 * The next written record: MG_OK (rec filled, reader advanced), MG_DECLINED at the end of
 * what is written, MG_ERROR when a segment cannot be read (err set).  A position in a
 * segment that no longer exists moves on to the oldest one after it.  Damaged records are
 * skipped (and counted in mg_sq_damaged).
 */
int mg_sq_next(mg_sq_reader_t *r, mg_sq_rec_t *rec, mg_err_t *err);

/* CRC-32C (Castagnoli), continuing from crc (0 to start). */
uint32_t mg_crc32c(uint32_t crc, const void *p, size_t n);

#endif
