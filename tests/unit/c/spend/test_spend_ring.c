/*
 * test_spend_ring.c -- the spend ring (core/spend/mg_spend_ring.c) and the row setters and
 * push (core/spend/mg_spend_row.c): wrap-around with pad records, a full ring, a corrupted
 * length, a producer in another process sharing the memory (and one killed mid-record),
 * UTF-8 cuts, the JSON fields' bounds, the totals table.
 */
#include "mg_test.h"

#include "base/mg_shm.h"
#include "base/mg_time.h"
#include "spend/mg_spend_int.h"
#include "spend/mg_spend_ring.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static mg_spend_ring_t *
t_ring(uint64_t cap)
{
    void *p = mmap(NULL, mg_spend_ring_size(cap), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    mg_spend_ring_t *r = p;
    mg_spend_ring_init(r, cap);
    return r;
}

/* Writes a record of n bytes (n % 8 == 0) whose body bytes are all `fill`. */
static bool
t_push(mg_spend_ring_t *r, uint32_t n, unsigned char fill)
{
    uint64_t next;
    unsigned char *p = mg_spend_ring_reserve(r, n, &next);
    if (p == NULL) {
        return false;
    }
    uint32_t h[2] = {n, MG_SPEND_REC_ROW};
    memcpy(p, h, 8);
    memset(p + 8, fill, n - 8);
    mg_spend_ring_publish(r, next);
    return true;
}

/* Reads every published record; checks each one's fill; returns how many. */
static int
t_drain(mg_spend_ring_t *r, unsigned char *expect_fill, int max, bool *bad)
{
    uint64_t head = mg_spend_ring_head(r);
    uint64_t pos = mg_spend_ring_tail(r);
    int n = 0;
    for (;;) {
        uint32_t len;
        const unsigned char *rec = mg_spend_ring_peek(r, &pos, head, &len);
        if (rec == NULL) {
            if (len == UINT32_MAX) {
                *bad = true;
            }
            break;
        }
        for (uint32_t i = 8; i < len; i++) {
            if (rec[i] != rec[8]) {
                *bad = true;
                break;
            }
        }
        if (n < max) {
            expect_fill[n] = rec[8];
        }
        n++;
        pos += len;
    }
    mg_spend_ring_consume(r, pos);
    return n;
}

static void
t_wrap(void)
{
    MG_T_CASE("wrap-around with pad records, in order, nothing lost");
    mg_spend_ring_t *r = t_ring(4096);
    unsigned char got[64];
    bool bad = false;
    int pushed = 0, read = 0;
    unsigned char next_fill = 0;
    /* sizes that do not divide the ring: every lap ends in a pad */
    for (int round = 0; round < 200; round++) {
        uint32_t n = (uint32_t) (8 * (3 + (round * 7) % 40)); /* 24 .. 336 bytes */
        if (!t_push(r, n, (unsigned char) (pushed & 0xff))) {
            CHECK(false, "push %d of %u bytes refused with the ring drained", pushed, n);
            break;
        }
        pushed++;
        int k = t_drain(r, got, 64, &bad);
        for (int i = 0; i < k && i < 64; i++) {
            CHECK_INT(got[i], next_fill);
            next_fill++;
        }
        read += k;
    }
    CHECK_INT(read, pushed);
    CHECK(!bad, "no damaged record");
    CHECK(r->head > 4096 * 3, "the ring wrapped several times (head %llu)",
          (unsigned long long) r->head);
    CHECK_INT(r->pushed, pushed);
}

static void
t_full(void)
{
    MG_T_CASE("a full ring refuses, and takes again once drained");
    mg_spend_ring_t *r = t_ring(4096);
    int ok = 0;
    while (t_push(r, 512, 1)) {
        ok++;
    }
    CHECK_INT(ok, 8); /* 4096 / 512 */
    CHECK(!t_push(r, 8, 1), "even a small record is refused when full");
    unsigned char got[16];
    bool bad = false;
    CHECK_INT(t_drain(r, got, 16, &bad), 8);
    CHECK(t_push(r, 512, 2), "room again after the consumer moved on");
    CHECK(mg_spend_ring_max_record(r) == 1024, "the largest record is a quarter");
    uint64_t next;
    CHECK(mg_spend_ring_reserve(r, 2048, &next) == NULL, "a record over a quarter is refused");
    CHECK(mg_spend_ring_reserve(r, 12, &next) == NULL, "an unaligned size is refused");
}

static void
t_corrupt(void)
{
    MG_T_CASE("a record length that is not sane is reported, never followed");
    mg_spend_ring_t *r = t_ring(4096);
    CHECK(t_push(r, 64, 3));
    CHECK(t_push(r, 64, 4));
    uint32_t bogus = 4000; /* past the head */
    memcpy(r->data + 64, &bogus, 4);
    uint64_t head = mg_spend_ring_head(r), pos = 0;
    uint32_t len;
    const void *rec = mg_spend_ring_peek(r, &pos, head, &len);
    CHECK(rec != NULL && len == 64);
    pos += len;
    rec = mg_spend_ring_peek(r, &pos, head, &len);
    CHECK(rec == NULL && len == UINT32_MAX, "the damaged record is refused");
    CHECK_INT(pos, 64);
}

static void
t_processes(void)
{
    MG_T_CASE("a producer in another process; a producer killed mid-record loses only that one");
    mg_spend_ring_t *r = t_ring(1 << 16);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 20000;) {
            if (t_push(r, 64, (unsigned char) (i & 0xff))) {
                i++;
            }
        }
        /* a record reserved and half written, never published: then killed */
        uint64_t next;
        unsigned char *p = mg_spend_ring_reserve(r, 128, &next);
        memset(p, 0xAB, 64);
        raise(SIGKILL);
        _exit(0);
    }
    int got = 0;
    bool bad = false, order = true;
    unsigned char fills[64];
    int expect = 0;
    int64_t deadline = mg_time_mono_ms() + 20000;
    while (got < 20000 && mg_time_mono_ms() < deadline) {
        int k = t_drain(r, fills, 64, &bad);
        for (int i = 0; i < k && i < 64; i++) {
            order = order && fills[i] == (unsigned char) (expect & 0xff);
            expect++;
        }
        if (k > 64) {
            expect += k - 64; /* not checked: more than one batch of 64 at once */
        }
        got += k;
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the producer was killed");
    CHECK_INT(got, 20000);
    CHECK(!bad, "no damaged record");
    CHECK(order, "records arrive in order");
    CHECK(t_drain(r, fills, 64, &bad) == 0, "the unpublished record is never seen");
    /* a new producer on the same ring (a respawned worker) overwrites the torn bytes */
    CHECK(t_push(r, 64, 9));
    CHECK_INT(t_drain(r, fills, 64, &bad), 1);
    CHECK_INT(fills[0], 9);
}

static void
t_rows(void)
{
    MG_T_CASE("row setters: bounds, UTF-8 cuts, JSON fields, push into this worker's ring");
    CHECK_INT(mg_shm_create(2, 32 * 1024 * 1024), 0);
    /* the layout mg_spend_init makes, by hand (no config, no queue) */
    size_t need = mg_spend_shm_size(NULL, 2);
    char *p = mg_shm_alloc(need);
    CHECK(p != NULL);
    mg_spend_shm = (mg_spend_shm_t *) (void *) p;
    mg_spend_shm->nworkers = 2;
    mg_spend_shm->mode = MG_SPEND_MODE_EMBEDDED;
    mg_spend_shm->ring_cap = 4 * 1024 * 1024;
    size_t off = (sizeof(mg_spend_shm_t) + 63) & ~(size_t) 63;
    for (int i = 0; i < 2; i++) {
        mg_spend_shm->ring_off[i] = off;
        mg_spend_ring_init((mg_spend_ring_t *) (void *) (p + off), 4 * 1024 * 1024);
        off += (mg_spend_ring_size(4 * 1024 * 1024) + 63) & ~(size_t) 63;
    }
    mg_spend_shm->totals_off = off;
    mg_spend_shm->totals_cap = MG_SPEND_TOTALS_CAP;

    mg_spend_row_t row;
    mg_spend_row_init(&row);
    /* "é" is 2 bytes: a bound of 80 falls in the middle of the 40th one */
    char id[200];
    memset(id, 'a', 1);
    for (int i = 0; i < 60; i++) {
        memcpy(id + 1 + 2 * i, "\xc3\xa9", 2);
    }
    mg_spend_row_set(&row, MG_SPEND_F_REQUEST_ID, id, 121);
    size_t n;
    const char *s = mg_spend_rec_str(&row.rec, MG_SPEND_F_REQUEST_ID, &n);
    CHECK_INT(n, 79); /* 'a' + 39 whole characters */
    CHECK(((unsigned char) s[n - 1] & 0xC0) == 0x80, "ends after a whole character");
    mg_spend_row_setz(&row, MG_SPEND_F_MODEL, "gpt-4o");
    s = mg_spend_rec_str(&row.rec, MG_SPEND_F_MODEL, &n);
    CHECK_MEM(s, n, "gpt-4o");
    char big[3000];
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    mg_spend_row_set(&row, MG_SPEND_F_METADATA, big, sizeof(big));
    (void) mg_spend_rec_str(&row.rec, MG_SPEND_F_METADATA, &n);
    CHECK_INT(n, 0);
    CHECK(row.rec.flags & MG_SPEND_FLAG_META_CUT, "an oversized JSON field is flagged, not cut");
    mg_spend_row_setz(&row, MG_SPEND_F_TEAM_ID, NULL);
    (void) mg_spend_rec_str(&row.rec, MG_SPEND_F_TEAM_ID, &n);
    CHECK_INT(n, 0);
    row.rec.spend = 0.25;

    mg_spend_push(&row); /* no worker yet: nothing */
    CHECK_INT(mg_spend_ring_at(1)->pushed, 0);
    mg_spend_set_worker(1);
    mg_spend_push(&row);
    mg_spend_ring_t *r = mg_spend_ring_at(1);
    CHECK_INT(r->pushed, 1);
    uint64_t pos = 0;
    uint32_t len;
    const mg_spend_rec_t *rec = mg_spend_ring_peek(r, &pos, mg_spend_ring_head(r), &len);
    CHECK(rec != NULL && rec->kind == MG_SPEND_REC_ROW && rec->len == len);
    CHECK(len == ((sizeof(mg_spend_rec_t) + row.rec.text_used + 7) & ~7u),
          "only the text in use is copied (%u bytes)", len);
    s = mg_spend_rec_str(rec, MG_SPEND_F_MODEL, &n);
    CHECK_MEM(s, n, "gpt-4o");
    CHECK(rec->spend == 0.25);

    MG_T_CASE("the totals table: add, set, read by name");
    CHECK(mg_spend_tot_add(MG_SPEND_K_KEY, "abc", 3, 0.5));
    CHECK(mg_spend_tot_add(MG_SPEND_K_KEY, "abc", 3, 0.25));
    CHECK(mg_spend_tot_add(MG_SPEND_K_TEAM, "abc", 3, 2.0));
    CHECK(mg_spend_total("LiteLLM_VerificationToken", "abc") == 0.75);
    CHECK(mg_spend_total("key", "abc") == 0.75);
    CHECK(mg_spend_total("team", "abc") == 2.0, "kinds are apart");
    CHECK(mg_spend_total("user", "abc") == 0);
    CHECK(mg_spend_tot_set(MG_SPEND_K_KEY, "abc", 3, 5.0));
    CHECK(mg_spend_total("key", "abc") == 5.0);

    MG_T_CASE("identity rows presented with their spend; an explicit set rebases");
    json_t *idents = json_pack("{s:{s:{s:f}},s:{}}", "key", "abc", "spend", 1.0, "team");
    json_t *shown = mg_spend_present(idents);
    CHECK(json_number_value(json_object_get(json_object_get(json_object_get(shown, "key"), "abc"),
                                            "spend")) == 6.0,
          "the row's spend plus the log's");
    CHECK(json_number_value(json_object_get(json_object_get(json_object_get(idents, "key"),
                                                            "abc"), "spend")) == 1.0,
          "the store's own row is not changed");
    json_t *row0 = json_object_get(json_object_get(idents, "key"), "abc");
    json_t *reset = json_pack("{s:f}", "spend", 0.0);
    json_t *explicit = json_real(0.0);
    mg_spend_note_set("key", "abc", explicit, row0, reset);
    json_object_set(json_object_get(idents, "key"), "abc", reset);
    json_decref(shown);
    shown = mg_spend_present(idents);
    CHECK(json_number_value(json_object_get(json_object_get(json_object_get(shown, "key"), "abc"),
                                            "spend")) == 0.0,
          "spend before the reset no longer counts");
    mg_spend_tot_add(MG_SPEND_K_KEY, "abc", 3, 0.5);
    json_decref(shown);
    shown = mg_spend_present(idents);
    CHECK(json_number_value(json_object_get(json_object_get(json_object_get(shown, "key"), "abc"),
                                            "spend")) == 0.5,
          "spend after it does");
    json_decref(shown);
    json_decref(explicit);
    json_decref(reset);
    json_decref(idents);
}

int
main(void)
{
    t_wrap();
    t_full();
    t_corrupt();
    t_processes();
    t_rows();
    return mg_test_done();
}
