/*
 * mg_sse.h -- splits a server-sent-events byte stream into whole events.
 *
 * The gateway relays complete events only, so an upstream that dies in the
 * middle of an event never leaves a half frame before our error frame.
 * Owns: the buffer of the incomplete event.  Pure (no I/O); fuzzed.
 */
#ifndef MG_SSE_H
#define MG_SSE_H

#include "../base/mg_buf.h"

#include <stdbool.h>

#define MG_SSE_MAX_EVENT (4 * 1024 * 1024)

typedef struct {
    mg_buf_t buf;           /* owned: bytes of the event being assembled */
    size_t scanned;         /* bytes of buf already searched for the terminator */
} mg_sse_t;

/*
 * Called once per complete event: raw is the event including its terminating
 * blank line; data is the value of its data field(s) (joined by '\n', without
 * the "data:" prefix), NULL if it has none.  Return false to stop feeding.
 */
typedef bool (*mg_sse_event_cb)(void *ud, const char *raw, size_t raw_len, const char *data,
                                size_t data_len);

/* Feeds bytes; returns MG_OK, or MG_ERROR if one event exceeds MG_SSE_MAX_EVENT. */
int mg_sse_feed(mg_sse_t *s, const char *p, size_t n, mg_sse_event_cb cb, void *ud);
/* Bytes of an incomplete event left over. */
size_t mg_sse_pending(const mg_sse_t *s);
void mg_sse_free(mg_sse_t *s);

#endif
