/*
 * test_eventstream.c -- core/providers/bedrock/mg_eventstream.c: AWS event-stream framing.
 *
 * Known frames come from AWS's own event-stream implementations: the three byte-exact
 * frames of awslabs/aws-c-event-stream's tests/message_deserializer_test.c (no headers,
 * payload only, one string header) and the "all_headers" vector of the AWS Go SDKs
 * (eventstream/testdata/{encoded,decoded}/positive/all_headers), which has every header
 * type.  Its decoded JSON gives the lengths and the prelude CRC; its encoded file (the
 * wire bytes) has the UUID 01..10, not the JSON's 00..0f, and so a message CRC of
 * 0xaba5f10c, not the JSON's 3758045736 (checked against zlib.crc32 and against the
 * stored encoded file byte by byte).
 */
#include "mg_test.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "providers/bedrock/mg_eventstream.h"

/* ---- a callback that writes every message into a transcript ---- */

typedef struct {
    mg_buf_t log;           /* one line per message */
    int calls;
    int stop_after;         /* > 0: return MG_DECLINED from that call on */
    const uint8_t *lo, *hi; /* when set: count payloads handed out from [lo, hi) */
    int in_place;
} sink_t;

static void
t_log_str(mg_buf_t *b, const char *what, mg_eventstream_str_t s)
{
    if (s.p != NULL) {
        mg_buf_printf(b, " %s=%.*s", what, (int) s.len, s.p);
    }
}

static int
t_sink(void *ud, const mg_eventstream_message_t *m, mg_err_t *err)
{
    sink_t *s = ud;
    s->calls++;
    mg_buf_t *b = &s->log;
    mg_buf_printf(b, "[%u]", m->total_len);
    for (size_t i = 0; i < m->n_headers; i++) {
        const mg_eventstream_header_t *h = &m->headers[i];
        mg_buf_printf(b, " %.*s:%d:", (int) h->name_len, h->name, (int) h->type);
        if (h->p != NULL) {
            for (size_t k = 0; k < h->len; k++) {
                mg_buf_printf(b, "%02x", h->p[k]);
            }
        } else {
            mg_buf_printf(b, "%lld", (long long) h->i);
        }
    }
    t_log_str(b, "mt", m->message_type);
    t_log_str(b, "et", m->event_type);
    t_log_str(b, "xt", m->exception_type);
    t_log_str(b, "ct", m->content_type);
    t_log_str(b, "ec", m->error_code);
    t_log_str(b, "em", m->error_message);
    mg_buf_printf(b, " payload(%zu)=%.*s\n", m->payload_len, (int) m->payload_len,
                  (const char *) m->payload);
    if (s->lo != NULL && m->payload >= s->lo && m->payload < s->hi) {
        s->in_place++;
    }
    if (s->stop_after > 0 && s->calls >= s->stop_after) {
        mg_err_set(err, MG_ERR_INTERNAL, "sink stopped");
        return MG_DECLINED;
    }
    return MG_OK;
}

/* Feeds buf in pieces cut at the given offsets (sorted); returns the first non-OK code. */
static int
t_feed_cuts(mg_eventstream_decoder_t *d, const uint8_t *buf, size_t len, const size_t *cuts,
            size_t ncuts, mg_err_t *err)
{
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        int rc = mg_eventstream_feed(d, buf + at, end - at, err);
        if (rc != MG_OK) {
            return rc;
        }
        at = end;
    }
    return mg_eventstream_finish(d, err);
}

/* Decodes buf whole and returns the transcript (malloc'd) and the result code. */
static char *
t_decode(const uint8_t *buf, size_t len, uint32_t cap, const size_t *cuts, size_t ncuts,
         int *rc, char *errmsg, int *calls)
{
    sink_t s = {MG_BUF_INIT, 0, 0, NULL, NULL, 0};
    mg_eventstream_decoder_t d;
    mg_eventstream_decoder_init(&d, cap, t_sink, &s);
    mg_err_t err = {0};
    *rc = t_feed_cuts(&d, buf, len, cuts, ncuts, &err);
    if (errmsg != NULL) {
        snprintf(errmsg, MG_ERR_MSG_MAX, "%s", *rc == MG_OK ? "" : err.msg);
    }
    if (calls != NULL) {
        *calls = s.calls;
    }
    mg_eventstream_decoder_free(&d);
    char *out = strdup(mg_buf_cstr(&s.log));
    mg_buf_free(&s.log);
    return out;
}

static mg_eventstream_header_t
t_str(const char *name, const char *value)
{
    mg_eventstream_header_t h = {name, strlen(name), MG_EVENTSTREAM_STRING, 0,
                                 (const uint8_t *) value, strlen(value)};
    return h;
}

static mg_eventstream_header_t
t_int(const char *name, mg_eventstream_type_t type, int64_t v)
{
    mg_eventstream_header_t h = {name, strlen(name), type, v, NULL, 0};
    return h;
}

/* Recomputes both CRCs of the frame at p after a test edited it. */
static void
t_recrc(uint8_t *p)
{
    uint32_t total = (uint32_t) p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
    uint32_t c = mg_eventstream_crc32(0, p, 8);
    p[8] = (uint8_t) (c >> 24), p[9] = (uint8_t) (c >> 16), p[10] = (uint8_t) (c >> 8);
    p[11] = (uint8_t) c;
    c = mg_eventstream_crc32(0, p, total - 4);
    p[total - 4] = (uint8_t) (c >> 24), p[total - 3] = (uint8_t) (c >> 16);
    p[total - 2] = (uint8_t) (c >> 8), p[total - 1] = (uint8_t) c;
}

static void
t_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24), p[1] = (uint8_t) (v >> 16), p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

/* ---- tests ---- */

static void
test_crc32(void)
{
    MG_T_CASE("crc32");
    CHECK_INT(mg_eventstream_crc32(0, "", 0), 0);
    CHECK_INT(mg_eventstream_crc32(0, "123456789", 9), 0xCBF43926u);
    CHECK_INT(mg_eventstream_crc32(0, "The quick brown fox jumps over the lazy dog", 43),
              0x414FA339u);
    /* continuing a CRC equals one pass over the concatenation */
    CHECK_INT(mg_eventstream_crc32(mg_eventstream_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

static void
test_aws_frames(void)
{
    MG_T_CASE("aws-c-event-stream frames: empty message");
    static const uint8_t empty[] = {0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
                                    0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff};
    int rc, calls;
    char msg[MG_ERR_MSG_MAX];
    char *t = t_decode(empty, sizeof(empty), 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_OK);
    CHECK_STR(t, "[16] payload(0)=\n");
    free(t);
    mg_buf_t b = MG_BUF_INIT;
    mg_err_t err;
    CHECK_INT(mg_eventstream_encode(&b, NULL, 0, NULL, 0, &err), MG_OK);
    CHECK(mg_buf_len(&b) == sizeof(empty) && memcmp(mg_buf_head(&b), empty, sizeof(empty)) == 0);
    mg_buf_reset(&b);

    MG_T_CASE("aws-c-event-stream frames: payload, no headers");
    static const uint8_t nohdr[] = {0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52,
                                    0x8c, 0x5a, 0x7b, 0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27,
                                    0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36};
    t = t_decode(nohdr, sizeof(nohdr), 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_OK);
    CHECK_STR(t, "[29] payload(13)={'foo':'bar'}\n");
    free(t);
    CHECK_INT(mg_eventstream_encode(&b, NULL, 0, "{'foo':'bar'}", 13, &err), MG_OK);
    CHECK(mg_buf_len(&b) == sizeof(nohdr) && memcmp(mg_buf_head(&b), nohdr, sizeof(nohdr)) == 0);
    mg_buf_reset(&b);

    MG_T_CASE("aws-c-event-stream frames: one string header");
    static const uint8_t onehdr[] = {
        0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C, 'c',  'o',
        'n',  't',  'e',  'n',  't',  '-',  't',  'y',  'p',  'e',  0x07, 0x00, 0x10, 'a',  'p',
        'p',  'l',  'i',  'c',  'a',  't',  'i',  'o',  'n',  '/',  'j',  's',  'o',  'n',  0x7b,
        0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8D, 0x9C, 0x08,
        0xB1};
    t = t_decode(onehdr, sizeof(onehdr), 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_OK);
    CHECK_STR(t, "[61] content-type:7:6170706c69636174696f6e2f6a736f6e "
                 "payload(13)={'foo':'bar'}\n");
    free(t);
    mg_eventstream_header_t ct = t_str("content-type", "application/json");
    CHECK_INT(mg_eventstream_encode(&b, &ct, 1, "{'foo':'bar'}", 13, &err), MG_OK);
    CHECK(mg_buf_len(&b) == sizeof(onehdr) &&
          memcmp(mg_buf_head(&b), onehdr, sizeof(onehdr)) == 0);
    mg_buf_reset(&b);

    MG_T_CASE("aws-sdk-go all_headers vector");
    static const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    mg_eventstream_header_t all[10] = {
        t_int("event-type", MG_EVENTSTREAM_INT, 40972),
        t_str("content-type", "application/json"),
        t_int("bool false", MG_EVENTSTREAM_BOOL_FALSE, 0),
        t_int("bool true", MG_EVENTSTREAM_BOOL_TRUE, 0),
        t_int("byte", MG_EVENTSTREAM_BYTE, 207),
        {"byte buf", 8, MG_EVENTSTREAM_BYTES, 0, (const uint8_t *) "I'm a little teapot!", 20},
        t_int("timestamp", MG_EVENTSTREAM_TIMESTAMP, 8675309),
        t_int("int16", MG_EVENTSTREAM_SHORT, 42),
        t_int("int64", MG_EVENTSTREAM_LONG, 42424242),
        {"uuid", 4, MG_EVENTSTREAM_UUID, 0, uuid, 16},
    };
    CHECK_INT(mg_eventstream_encode(&b, all, 10, "{'foo':'bar'}", 13, &err), MG_OK);
    const uint8_t *f = (const uint8_t *) mg_buf_head(&b);
    CHECK_INT(mg_buf_len(&b), 204);
    CHECK_INT((uint32_t) f[0] << 24 | f[1] << 16 | f[2] << 8 | f[3], 204);
    CHECK_INT((uint32_t) f[4] << 24 | f[5] << 16 | f[6] << 8 | f[7], 175);
    CHECK_INT((uint32_t) f[8] << 24 | f[9] << 16 | f[10] << 8 | f[11], 263087306u);
    CHECK_INT((uint32_t) f[200] << 24 | f[201] << 16 | f[202] << 8 | f[203], 0xaba5f10cu);
    t = t_decode(f, 204, 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_OK);
    CHECK_STR(t, "[204] event-type:4:40972 content-type:7:6170706c69636174696f6e2f6a736f6e "
                 "bool false:1:0 bool true:0:0 byte:2:-49 "
                 "byte buf:6:49276d2061206c6974746c6520746561706f7421 timestamp:8:8675309 "
                 "int16:3:42 int64:5:42424242 uuid:9:0102030405060708090a0b0c0d0e0f10 "
                 "payload(13)={'foo':'bar'}\n");
    free(t);
    mg_buf_free(&b);
}

/* A stream of the kinds of message Bedrock sends, including an exception. */
static void
t_bedrock_stream(mg_buf_t *b)
{
    mg_err_t err;
    const char *deltas[] = {"Hel", "lo, ", "world", ""};
    mg_eventstream_header_t start[3] = {t_str(":event-type", "messageStart"),
                                        t_str(":content-type", "application/json"),
                                        t_str(":message-type", "event")};
    const char *sp = "{\"p\":\"abcd\",\"role\":\"assistant\"}";
    CHECK_INT(mg_eventstream_encode(b, start, 3, sp, strlen(sp), &err), MG_OK);
    for (int i = 0; i < 4; i++) {
        mg_eventstream_header_t h[3] = {t_str(":event-type", "contentBlockDelta"),
                                        t_str(":content-type", "application/json"),
                                        t_str(":message-type", "event")};
        char body[128];
        snprintf(body, sizeof(body), "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"%s\"}}",
                 deltas[i]);
        CHECK_INT(mg_eventstream_encode(b, h, 3, body, strlen(body), &err), MG_OK);
    }
    /* a message with no payload and one with every header type (types out of order) */
    mg_eventstream_header_t ping = t_str(":event-type", "ping");
    CHECK_INT(mg_eventstream_encode(b, &ping, 1, NULL, 0, &err), MG_OK);
    static const uint8_t uuid[16] = {0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    mg_eventstream_header_t mixed[9] = {
        t_int("l", MG_EVENTSTREAM_LONG, -1234567890123LL),
        t_int("i", MG_EVENTSTREAM_INT, -2),
        t_int("s", MG_EVENTSTREAM_SHORT, -300),
        t_int("b", MG_EVENTSTREAM_BYTE, -5),
        t_int("t", MG_EVENTSTREAM_TIMESTAMP, 1714558830123LL),
        {"u", 1, MG_EVENTSTREAM_UUID, 0, uuid, 16},
        {"bytes", 5, MG_EVENTSTREAM_BYTES, 0, (const uint8_t *) "\0\1\2", 3},
        t_str("empty", ""),
        t_int("yes", MG_EVENTSTREAM_BOOL_TRUE, 0),
    };
    CHECK_INT(mg_eventstream_encode(b, mixed, 9, "x", 1, &err), MG_OK);
    mg_eventstream_header_t exc[3] = {t_str(":exception-type", "throttlingException"),
                                      t_str(":content-type", "application/json"),
                                      t_str(":message-type", "exception")};
    const char *ep = "{\"message\":\"Too many requests, please wait before trying again.\"}";
    CHECK_INT(mg_eventstream_encode(b, exc, 3, ep, strlen(ep), &err), MG_OK);
    mg_eventstream_header_t er[3] = {t_str(":message-type", "error"),
                                     t_str(":error-code", "InternalFailure"),
                                     t_str(":error-message", "boom")};
    CHECK_INT(mg_eventstream_encode(b, er, 3, NULL, 0, &err), MG_OK);
}

static void
test_round_trip(void)
{
    MG_T_CASE("round trip");
    mg_buf_t b = MG_BUF_INIT;
    t_bedrock_stream(&b);
    int rc, calls;
    char msg[MG_ERR_MSG_MAX];
    char *t = t_decode((const uint8_t *) mg_buf_head(&b), mg_buf_len(&b), 0, NULL, 0, &rc, msg,
                       &calls);
    CHECK_INT(rc, MG_OK);
    CHECK_INT(calls, 9);
    CHECK_CONTAINS(t, " et=messageStart ct=application/json payload(31)={\"p\":\"abcd\",");
    CHECK_CONTAINS(t, " mt=event et=contentBlockDelta ct=application/json payload(");
    CHECK_CONTAINS(t, "{\"text\":\"world\"}}\n");
    CHECK_CONTAINS(t, " :event-type:7:70696e67 et=ping payload(0)=\n");
    CHECK_CONTAINS(t, " l:5:-1234567890123 i:4:-2 s:3:-300 b:2:-5 t:8:1714558830123 "
                      "u:9:deadbeef000000000102030405060708 bytes:6:000102 empty:7: yes:0:0 "
                      "payload(1)=x\n");
    CHECK_CONTAINS(t, " mt=exception xt=throttlingException ct=application/json payload(");
    CHECK_CONTAINS(t, " mt=error ec=InternalFailure em=boom payload(0)=\n");

    /* header_find, and messages fed whole are decoded in place */
    sink_t s = {MG_BUF_INIT, 0, 0, (const uint8_t *) mg_buf_head(&b),
                (const uint8_t *) mg_buf_head(&b) + mg_buf_len(&b), 0};
    mg_eventstream_decoder_t d;
    mg_eventstream_decoder_init(&d, 0, t_sink, &s);
    mg_err_t err;
    CHECK_INT(mg_eventstream_feed(&d, mg_buf_head(&b), mg_buf_len(&b), &err), MG_OK);
    CHECK_INT(s.in_place, 9);
    CHECK_INT(d.buf.cap, 0);
    CHECK_INT(mg_eventstream_finish(&d, &err), MG_OK);
    mg_eventstream_decoder_free(&d);
    mg_buf_free(&s.log);
    free(t);
    mg_buf_free(&b);

    MG_T_CASE("header_find");
    mg_buf_t one = MG_BUF_INIT;
    mg_eventstream_header_t hh[2] = {t_str(":event-type", "chunk"),
                                     t_int("n", MG_EVENTSTREAM_INT, 7)};
    CHECK_INT(mg_eventstream_encode(&one, hh, 2, "{}", 2, &err), MG_OK);
    mg_eventstream_message_t m = {hh, 2, {0}, {0}, {0}, {0}, {0}, {0}, NULL, 0, 0};
    CHECK(mg_eventstream_header_find(&m, "n") == &hh[1]);
    CHECK(mg_eventstream_header_find(&m, "nn") == NULL);
    CHECK(mg_eventstream_header_find(&m, ":event-type") == &hh[0]);
    mg_buf_free(&one);
}

static void
test_every_split(void)
{
    MG_T_CASE("every split gives the same callbacks");
    mg_buf_t b = MG_BUF_INIT;
    t_bedrock_stream(&b);
    const uint8_t *p = (const uint8_t *) mg_buf_head(&b);
    size_t n = mg_buf_len(&b);
    int rc, calls;
    char msg[MG_ERR_MSG_MAX];
    char *whole = t_decode(p, n, 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_OK);
    int bad = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        char *t = t_decode(p, n, 0, &cut, 1, &rc, msg, NULL);
        if (rc != MG_OK || strcmp(t, whole) != 0) {
            bad++;
            if (bad < 4) {
                MG_T_FAIL_AT("split at %zu: rc %d (%s)", cut, rc, msg);
            }
        }
        free(t);
    }
    CHECK_INT(bad, 0);

    /* two cuts, at every pair of offsets inside the first three messages and beyond */
    bad = 0;
    size_t lim = n < 400 ? n : 400;
    for (size_t i = 0; i <= lim; i += 3) {
        for (size_t j = i; j <= n; j += 7) {
            size_t cuts[2] = {i, j};
            char *t = t_decode(p, n, 0, cuts, 2, &rc, msg, NULL);
            bad += rc != MG_OK || strcmp(t, whole) != 0;
            free(t);
        }
    }
    CHECK_INT(bad, 0);

    /* one byte at a time */
    size_t *all = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        all[i] = i + 1;
    }
    char *t = t_decode(p, n, 0, all, n - 1, &rc, msg, NULL);
    CHECK_INT(rc, MG_OK);
    CHECK_STR(t, whole);
    free(t);
    free(all);
    free(whole);
    mg_buf_free(&b);
}

/* Runs a corrupted stream whole and byte by byte: both fail alike after `good` callbacks. */
static void
t_corrupt(const char *what, const uint8_t *p, size_t n, uint32_t cap, int good, const char *want)
{
    MG_T_CASE(what);
    int rc, calls;
    char msg[MG_ERR_MSG_MAX];
    char *t = t_decode(p, n, cap, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_ERROR);
    CHECK_INT(calls, good);
    CHECK_CONTAINS(msg, want);
    free(t);
    size_t *all = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        all[i] = i + 1;
    }
    char msg1[MG_ERR_MSG_MAX];
    t = t_decode(p, n, cap, all, n - 1, &rc, msg1, &calls);
    CHECK_INT(rc, MG_ERROR);
    CHECK_INT(calls, good);
    CHECK_STR(msg1, msg);
    free(t);
    free(all);
}

static void
test_corruption(void)
{
    mg_err_t err;
    mg_buf_t b = MG_BUF_INIT;
    mg_eventstream_header_t h[2] = {t_str(":event-type", "chunk"), t_str(":message-type", "event")};
    CHECK_INT(mg_eventstream_encode(&b, h, 2, "{\"bytes\":\"e30=\"}", 16, &err), MG_OK);
    size_t one = mg_buf_len(&b); /* 2 good messages, then the one to corrupt */
    CHECK_INT(mg_eventstream_encode(&b, h, 2, "{\"bytes\":\"e30=\"}", 16, &err), MG_OK);
    CHECK_INT(mg_eventstream_encode(&b, h, 2, "{\"bytes\":\"e30=\"}", 16, &err), MG_OK);
    size_t n = mg_buf_len(&b);
    uint8_t *base = malloc(n + 64);
    memcpy(base, mg_buf_head(&b), n);
    uint8_t *w = malloc(n + 64);
    uint8_t *third = w + 2 * one;

    memcpy(w, base, n);
    third[9] ^= 0x40;
    t_corrupt("bad prelude CRC", w, n, 0, 2, "message 3 at byte 148: prelude CRC mismatch");

    memcpy(w, base, n);
    third[one - 6] ^= 0x01; /* a payload byte */
    t_corrupt("bad message CRC", w, n, 0, 2, "message CRC mismatch");

    memcpy(w, base, n);
    third[one - 1] ^= 0x80; /* the CRC itself */
    t_corrupt("bad message CRC (in the CRC)", w, n, 0, 2, "message CRC mismatch");

    memcpy(w, base, n);
    t_put32(third, 15);
    t_put32(third + 4, 0);
    uint32_t c = mg_eventstream_crc32(0, third, 8);
    t_put32(third + 8, c);
    t_corrupt("total length below 16", w, n, 0, 2, "total length 15 is below the minimum of 16");

    memcpy(w, base, n);
    t_corrupt("total length above the cap", w, n, (uint32_t) one - 1, 0,
              "message 1 at byte 0: total length 74 exceeds the cap of 73 bytes");

    memcpy(w, base, n);
    t_put32(third + 4, (uint32_t) one - 15); /* headers longer than the message allows */
    t_recrc(third);
    t_corrupt("headers length too long", w, n, 0, 2, "headers length 59 does not fit");

    memcpy(w, base, n);
    /* first header ":event-type" string: its u16 value length claims 200 bytes */
    third[12 + 1 + 11 + 1] = 0;
    third[12 + 1 + 11 + 2] = 200;
    t_recrc(third);
    t_corrupt("header overruns the headers section", w, n, 0, 2,
              "header \":event-type\" overruns the headers section (42 bytes)");

    memcpy(w, base, n);
    third[12 + 1 + 11] = 10; /* type */
    t_recrc(third);
    t_corrupt("unknown header type", w, n, 0, 2, "header \":event-type\" has unknown type 10");

    memcpy(w, base, n);
    third[12] = 0; /* name length */
    t_recrc(third);
    t_corrupt("empty header name", w, n, 0, 2, "header 1 has an empty name");

    memcpy(w, base, n);
    third[12] = 60; /* name runs past the headers */
    t_recrc(third);
    t_corrupt("header name overruns", w, n, 0, 2, "header 1 overruns the headers section");

    /* a well-known header that is not a string */
    mg_buf_t x = MG_BUF_INIT;
    mg_eventstream_header_t wrong = t_int(":message-type", MG_EVENTSTREAM_INT, 1);
    CHECK_INT(mg_eventstream_encode(&x, &wrong, 1, NULL, 0, &err), MG_OK);
    t_corrupt("well-known header not a string", (const uint8_t *) mg_buf_head(&x), mg_buf_len(&x),
              0, 0, "header \":message-type\" has type 4, not string");
    mg_buf_free(&x);

    MG_T_CASE("a failed decoder stays failed");
    sink_t s = {MG_BUF_INIT, 0, 0, NULL, NULL, 0};
    mg_eventstream_decoder_t d;
    mg_eventstream_decoder_init(&d, 0, t_sink, &s);
    memcpy(w, base, n);
    third[9] ^= 0x40;
    CHECK_INT(mg_eventstream_feed(&d, w, n, &err), MG_ERROR);
    CHECK_INT(err.cls, MG_ERR_UPSTREAM_5XX);
    CHECK_INT(mg_eventstream_feed(&d, base, one, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "prelude CRC mismatch");
    CHECK_INT(mg_eventstream_finish(&d, &err), MG_ERROR);
    CHECK_INT(s.calls, 2);
    mg_eventstream_decoder_free(&d);
    mg_buf_free(&s.log);

    MG_T_CASE("truncated stream");
    int rc, calls;
    char msg[MG_ERR_MSG_MAX];
    char *t = t_decode(base, n - 5, 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_ERROR);
    CHECK_INT(calls, 2);
    CHECK_CONTAINS(msg, "stream ended inside a message: 69 of 74 bytes");
    free(t);
    t = t_decode(base, one + 7, 0, NULL, 0, &rc, msg, &calls);
    CHECK_INT(rc, MG_ERROR);
    CHECK_INT(calls, 1);
    CHECK_CONTAINS(msg, "stream ended inside a message prelude: 7 of 12 bytes");
    free(t);

    MG_T_CASE("the callback stops the decoder");
    sink_t st = {MG_BUF_INIT, 0, 2, NULL, NULL, 0};
    mg_eventstream_decoder_init(&d, 0, t_sink, &st);
    CHECK_INT(mg_eventstream_feed(&d, base, n, &err), MG_DECLINED);
    CHECK_INT(st.calls, 2);
    CHECK_STR(err.msg, "sink stopped");
    CHECK_INT(mg_eventstream_feed(&d, base, one, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "stopped by its callback after message 2");
    CHECK_INT(st.calls, 2);
    CHECK_INT(mg_eventstream_finish(&d, &err), MG_OK);
    mg_eventstream_decoder_free(&d);
    mg_buf_free(&st.log);

    free(w);
    free(base);
    mg_buf_free(&b);
}

static void
test_encode_errors(void)
{
    MG_T_CASE("encode refuses what cannot be framed");
    mg_buf_t b = MG_BUF_INIT;
    mg_err_t err;
    mg_eventstream_header_t h = t_str("", "x");
    CHECK_INT(mg_eventstream_encode(&b, &h, 1, NULL, 0, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "name length 0");
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[299] = '\0';
    h = t_str(longname, "x");
    CHECK_INT(mg_eventstream_encode(&b, &h, 1, NULL, 0, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "name length 299");
    char *big = calloc(70000, 1);
    h = (mg_eventstream_header_t){"v", 1, MG_EVENTSTREAM_BYTES, 0, (const uint8_t *) big, 70000};
    CHECK_INT(mg_eventstream_encode(&b, &h, 1, NULL, 0, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "over 65535");
    h = (mg_eventstream_header_t){"u", 1, MG_EVENTSTREAM_UUID, 0, (const uint8_t *) big, 15};
    CHECK_INT(mg_eventstream_encode(&b, &h, 1, NULL, 0, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "not 16");
    h = (mg_eventstream_header_t){"t", 1, (mg_eventstream_type_t) 11, 0, NULL, 0};
    CHECK_INT(mg_eventstream_encode(&b, &h, 1, NULL, 0, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "unknown type 11");
    CHECK_INT(mg_eventstream_encode(&b, NULL, 0, big, (size_t) MG_EVENTSTREAM_MAX_DEFAULT, &err),
              MG_ERROR);
    CHECK_CONTAINS(err.msg, "exceeds");
    CHECK_INT(mg_buf_len(&b), 0);
    free(big);

    /* the largest message the cap allows round-trips */
    size_t pl = MG_EVENTSTREAM_MAX_DEFAULT - MG_EVENTSTREAM_MIN;
    char *payload = malloc(pl);
    memset(payload, 'p', pl);
    CHECK_INT(mg_eventstream_encode(&b, NULL, 0, payload, pl, &err), MG_OK);
    sink_t s = {MG_BUF_INIT, 0, 0, NULL, NULL, 0};
    mg_eventstream_decoder_t d;
    mg_eventstream_decoder_init(&d, 0, t_sink, &s);
    size_t half = mg_buf_len(&b) / 2;
    CHECK_INT(mg_eventstream_feed(&d, mg_buf_head(&b), half, &err), MG_OK);
    CHECK_INT(mg_eventstream_feed(&d, mg_buf_head(&b) + half, mg_buf_len(&b) - half, &err),
              MG_OK);
    CHECK_INT(s.calls, 1);
    mg_eventstream_decoder_free(&d);
    mg_buf_free(&s.log);
    free(payload);
    mg_buf_free(&b);
}

int
main(void)
{
    test_crc32();
    test_aws_frames();
    test_round_trip();
    test_every_split();
    test_corruption();
    test_encode_errors();
    return mg_test_done();
}
