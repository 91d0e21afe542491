/*
 * mg_eventstream.h -- AWS event-stream framing (application/vnd.amazon.eventstream):
 * an incremental decoder and an encoder.  Computes bytes only; no I/O.
 *
 * A message on the wire:
 *   total length u32 | headers length u32 | prelude CRC32 u32 (of the first 8 bytes)
 *   | headers | payload | message CRC32 u32 (of every byte before it)
 * all big-endian; a header is name length u8, name, type u8, value (see
 * mg_eventstream_type_t).  CRC32 is IEEE 802.3, reflected (the zlib one).
 *
 * Owns: the decoder owns the bytes of at most one incomplete message (copied only when a
 * message arrives split across feeds; a message that lies whole inside one feed is handed
 * out from the caller's buffer) and its header array.  Everything a callback receives is
 * borrowed and valid only during that callback.  Single-threaded; one decoder per stream.
 */
#ifndef MG_EVENTSTREAM_H
#define MG_EVENTSTREAM_H

#include "../../base/mg_buf.h"
#include "../../base/mg_types.h"

#include <stdint.h>

#define MG_EVENTSTREAM_PRELUDE 12               /* total, headers length, prelude CRC */
#define MG_EVENTSTREAM_MIN     16               /* prelude + message CRC, no headers/payload */
#define MG_EVENTSTREAM_MAX_DEFAULT (16u << 20)  /* 16 MiB: far above any Bedrock event */
#define MG_EVENTSTREAM_MAX_HEADERS 1024         /* per message; Bedrock sends 3 or 4 */

typedef enum {
    MG_EVENTSTREAM_BOOL_TRUE = 0,               /* no value bytes */
    MG_EVENTSTREAM_BOOL_FALSE = 1,              /* no value bytes */
    MG_EVENTSTREAM_BYTE = 2,                    /* int8 */
    MG_EVENTSTREAM_SHORT = 3,                   /* int16 */
    MG_EVENTSTREAM_INT = 4,                     /* int32 */
    MG_EVENTSTREAM_LONG = 5,                    /* int64 */
    MG_EVENTSTREAM_BYTES = 6,                   /* u16 length + bytes */
    MG_EVENTSTREAM_STRING = 7,                  /* u16 length + UTF-8 */
    MG_EVENTSTREAM_TIMESTAMP = 8,               /* int64 milliseconds since the epoch */
    MG_EVENTSTREAM_UUID = 9,                    /* 16 bytes */
} mg_eventstream_type_t;

/* One header, decoded or to encode. */
typedef struct {
    const char *name;               /* borrowed; not NUL-terminated when decoded */
    size_t name_len;                /* 1..255 */
    mg_eventstream_type_t type;
    int64_t i;                      /* BYTE, SHORT, INT, LONG, TIMESTAMP (sign-extended) */
    const uint8_t *p;               /* borrowed: BYTES/STRING value, UUID's 16 bytes */
    size_t len;                     /* BYTES/STRING length (<= 65535); 16 for UUID */
} mg_eventstream_header_t;

/* A string view; p == NULL when the header is absent. */
typedef struct {
    const char *p;                  /* borrowed, not NUL-terminated */
    size_t len;
} mg_eventstream_str_t;

/* One complete, CRC-checked message, as a callback sees it (everything borrowed). */
typedef struct {
    const mg_eventstream_header_t *headers;
    size_t n_headers;
    /* the string headers a provider dispatches on (absent: p == NULL) */
    mg_eventstream_str_t message_type;      /* ":message-type": "event", "exception", "error" */
    mg_eventstream_str_t event_type;        /* ":event-type": "contentBlockDelta", "chunk" */
    mg_eventstream_str_t exception_type;    /* ":exception-type": "throttlingException" */
    mg_eventstream_str_t content_type;      /* ":content-type": "application/json" */
    mg_eventstream_str_t error_code;        /* ":error-code" (message-type "error") */
    mg_eventstream_str_t error_message;     /* ":error-message" */
    const uint8_t *payload;
    size_t payload_len;
    uint32_t total_len;                     /* bytes of the whole frame */
} mg_eventstream_message_t;

/*
 * Called once per complete message.  Return MG_OK to go on; any other code stops the
 * decoder and becomes mg_eventstream_feed()'s result (fill err for MG_ERROR).  The
 * callback must not feed, reset or free the decoder it is called from.
 */
typedef int (*mg_eventstream_cb)(void *ud, const mg_eventstream_message_t *m, mg_err_t *err);

typedef struct {
    mg_buf_t buf;                           /* owned: bytes of the message being assembled */
    mg_eventstream_header_t *hdrs;          /* owned (malloc): header array, reused */
    size_t hdrs_cap;
    uint32_t max_len;                       /* cap on a message's total length */
    uint32_t need;                          /* total length of the message in buf, 0 = unknown */
    uint64_t offset;                        /* stream bytes consumed, for error messages */
    uint64_t messages;                      /* messages delivered */
    int state;                              /* 0 running, 1 failed, 2 stopped by the callback */
    char errmsg[256];                       /* the failure, repeated by later feeds */
    mg_eventstream_cb cb;
    void *ud;                               /* borrowed: the callback's argument */
} mg_eventstream_decoder_t;

/* Sets up d (no allocation yet).  max_len 0 means MG_EVENTSTREAM_MAX_DEFAULT. */
void mg_eventstream_decoder_init(mg_eventstream_decoder_t *d, uint32_t max_len,
                                 mg_eventstream_cb cb, void *ud);

/* Frees what d owns; d may be initialised again afterwards. */
void mg_eventstream_decoder_free(mg_eventstream_decoder_t *d);

/*
 * Feeds the next len bytes of the stream (any split, down to one byte at a time); calls cb
 * for every message completed by them, in order.  Returns MG_OK when all was consumed (a
 * partial message is kept for the next feed), the callback's code when it stopped, or
 * MG_ERROR with err (class upstream_5xx) for a malformed frame: bad prelude or message
 * CRC, total length below 16 or above max_len, headers length that does not fit, a header
 * that overruns the headers section, an empty header name, an unknown header type, more
 * than MG_EVENTSTREAM_MAX_HEADERS headers, or a well-known header that is not a string.
 * No callback is made for a bad frame, and a failed or stopped decoder answers every
 * later feed with MG_ERROR.  data is borrowed for the call only.
 */
int mg_eventstream_feed(mg_eventstream_decoder_t *d, const void *data, size_t len,
                        mg_err_t *err);

/*
 * At end of stream: MG_OK when no partial message is pending (or the callback stopped the
 * decoder), else MG_ERROR with err ("stream ended inside a message: N of M bytes").  A
 * failed decoder repeats its failure.
 */
int mg_eventstream_finish(mg_eventstream_decoder_t *d, mg_err_t *err);

/*
 * Appends one encoded message to out.  Returns MG_OK, or MG_ERROR with err (class
 * internal) when a name is empty or over 255 bytes, a value over 65535 bytes, a UUID not
 * 16 bytes, a type unknown, or the message would exceed the 16 MiB default cap; out is
 * unchanged on error.  headers and payload are borrowed.
 */
int mg_eventstream_encode(mg_buf_t *out, const mg_eventstream_header_t *headers,
                          size_t n_headers, const void *payload, size_t payload_len,
                          mg_err_t *err);

/* First header named name (exact match), or NULL. */
const mg_eventstream_header_t *mg_eventstream_header_find(const mg_eventstream_message_t *m,
                                                          const char *name);

/* CRC32 (IEEE, reflected, init/xorout 0xFFFFFFFF) continuing from crc (start with 0). */
uint32_t mg_eventstream_crc32(uint32_t crc, const void *data, size_t len);

#endif
