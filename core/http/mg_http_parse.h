/*
 * mg_http_parse.h -- HTTP/1.x message head parser and chunked-body decoder.
 *
 * Pure functions over caller buffers: no allocation, no I/O; every pointer
 * in a parsed head borrows from the buffer it was parsed from.  Strict where
 * strictness prevents request smuggling: Content-Length together with
 * Transfer-Encoding, duplicate Content-Length, codings other than "chunked",
 * obs-fold, and whitespace before the colon are all rejected.
 */
#ifndef MG_HTTP_PARSE_H
#define MG_HTTP_PARSE_H

#include "../base/mg_types.h"

#include <stdbool.h>
#include <sys/types.h>

#define MG_HTTP_MAX_HEADERS 128
#define MG_HTTP_MAX_HEAD (64 * 1024)

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} mg_http_header_t;

typedef struct {
    /* request line (requests) */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    /* status line (responses) */
    int status;
    const char *reason;
    size_t reason_len;

    int version_minor;          /* 0 or 1 */
    mg_http_header_t headers[MG_HTTP_MAX_HEADERS];
    size_t nheaders;
    size_t head_len;            /* bytes of the head including the blank line */

    int64_t content_length;     /* -1: none */
    bool chunked;
    bool keep_alive;            /* after Connection / version rules */
    bool expect_continue;
    bool upgrade;
} mg_http_head_t;

/*
 * Parses a request head from buf[0..len).
 * Returns >0 (head length) when complete, 0 when more bytes are needed, or -1
 * on error with *status set (400 bad syntax, 431 head too large, 501 unknown
 * transfer coding, 505 bad version) and *why set to a static description.
 */
ssize_t mg_http_parse_request(const char *buf, size_t len, mg_http_head_t *h, int *status,
                              const char **why);

/* Same for a response head (status line).  *status is 502 on error. */
ssize_t mg_http_parse_response(const char *buf, size_t len, mg_http_head_t *h, int *status,
                               const char **why);

/* Case-insensitive header lookup; returns NULL if absent. */
const mg_http_header_t *mg_http_header_find(const mg_http_head_t *h, const char *lower_name);

typedef struct {
    int state;
    uint64_t remaining;         /* bytes left in the current chunk */
    size_t ext_len;             /* guards against endless chunk extensions/trailers */
    bool done;
} mg_http_chunked_t;

/*
 * Decodes chunked data in place: buf[0..*len) holds raw bytes on entry; on
 * return buf[0..*len) holds the decoded payload bytes and *consumed the number
 * of raw bytes used.  Returns 1 when the terminating chunk (and trailers) has
 * been read, 0 when more input is needed, -1 on a framing error.
 */
int mg_http_chunked_decode(mg_http_chunked_t *c, char *buf, size_t *len, size_t *consumed);

#endif
