/*
 * mg_http_parse.h -- HTTP/1.x message head parser and chunked-body decoder.
 *
 * Pure functions over caller buffers: no allocation, no I/O; every pointer
 * in a parsed head borrows from the buffer it was parsed from.  Strict where
 * strictness prevents request smuggling: Content-Length together with
 * Transfer-Encoding, duplicate Content-Length, codings other than "chunked",
 * obs-fold, and whitespace before the colon are all rejected.
 *
 * Requests (what clients send) are read strictly: lines end with CRLF (a bare
 * LF or CR is a 400), at most MG_HTTP_MAX_REQUEST_HEADERS fields (431),
 * Transfer-Encoding in HTTP/1.0 is a 400, and chunked framing must be exact
 * (CRLF line ends, nothing but ";extension" after a chunk size).  Responses
 * (what configured upstreams send) keep the RFC's tolerance for bare LF, as
 * their peer is one we chose, not any client on the network.
 *
 * Also here: the check every head we write must pass (mg_http_fields_valid,
 * mg_http_head_valid), the second line of defence against header injection.
 */
#ifndef MG_HTTP_PARSE_H
#define MG_HTTP_PARSE_H

#include "../base/mg_types.h"

#include <stdbool.h>
#include <sys/types.h>

#define MG_HTTP_MAX_HEADERS 128           /* fields of a response head */
#define MG_HTTP_MAX_REQUEST_HEADERS 100   /* fields of a request head: more get 431 */
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

/* ---- heads we write: the second line of defence against header injection ---- */

/*
 * Checks a block of header field lines about to be sent to a client: zero or more
 * "name: value\r\n" lines, as mg_http_respond() takes them.  Refused: a CR or LF that
 * is not a CRLF line end, a NUL or any control byte but HTAB in a value, a name that is
 * not an RFC 9110 token, an empty line (it would end the head early: response
 * splitting), a last line without CRLF, and content-length, transfer-encoding or
 * connection (the server writes the framing itself; one from the caller is a
 * duplicate).  Returns MG_OK, or MG_ERROR with an internal-class err whose message
 * is a noun phrase for "refusing to send ... with <msg>" and names the header but
 * never quotes a value (it may be a key): 'a raw CR/LF/NUL in header "x-model"
 * (byte 0x0a at offset 57)'.
 *
 * A whole line injected with proper CRLF ("v\r\nX-Evil: 1") is a well-formed block:
 * only the code that puts a value into a line can catch that (see
 * mg_http_field_append).
 */
int mg_http_fields_valid(const char *p, size_t n, mg_err_t *err);

/*
 * Checks a complete request head about to be sent upstream: "METHOD SP target SP
 * HTTP/1.x\r\n", field lines as above (framing fields allowed), and the empty line,
 * which must be the last two bytes.  Also refused: a second host, content-length or
 * transfer-encoding, and content-length together with transfer-encoding.  The request
 * line is never quoted (its target may carry a key in a query).  Same result as above.
 */
int mg_http_head_valid(const char *p, size_t n, mg_err_t *err);

/*
 * Appends "name: value\r\n" to b, refusing (MG_ERROR, internal-class err, b
 * unchanged) a name that is not a token or a value with CR, LF, NUL or another
 * control byte but HTAB.  Leading/trailing blanks of the value are kept as given.
 * For code that builds heads from configured or stored strings: unlike the block
 * checks above this also catches a value carrying a whole CRLF-terminated line.
 */
int mg_http_field_append(mg_buf_t *b, const char *name, const char *value, size_t value_len,
                         mg_err_t *err);

/* Case-insensitive header lookup; returns NULL if absent. */
const mg_http_header_t *mg_http_header_find(const mg_http_head_t *h, const char *lower_name);

typedef struct {
    int state;
    uint64_t remaining;         /* bytes left in the current chunk */
    size_t ext_len;             /* guards against endless chunk extensions/trailers */
    bool done;
    bool lenient;               /* set before the first call: tolerate LF-only line ends and
                                 * whitespace after the size (upstream responses) */
} mg_http_chunked_t;

/*
 * Decodes chunked data in place: buf[0..*len) holds raw bytes on entry; on
 * return buf[0..*len) holds the decoded payload bytes and *consumed the number
 * of raw bytes used.  Returns 1 when the terminating chunk (and trailers) has
 * been read, 0 when more input is needed, -1 on a framing error.
 *
 * A zeroed mg_http_chunked_t is strict (RFC 9112 7.1): every line ends with CRLF, a
 * chunk size is followed by CRLF or by optional whitespace and ";" (an extension), and
 * extensions and trailers carry no control characters but HTAB.  "5 \r\n" and "5\n"
 * are errors.
 */
int mg_http_chunked_decode(mg_http_chunked_t *c, char *buf, size_t *len, size_t *consumed);

#endif
