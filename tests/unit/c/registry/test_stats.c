/*
 * test_stats.c -- core/registry/mg_stats.c: per-deployment statistics in shared memory
 * (slots claimed by id, per-minute counters, latency rings, cooldowns), including
 * processes forked after the table was created, as workers are.
 */
#include "mg_test.h"

#include "base/mg_shm.h"
#include "base/mg_time.h"
#include "registry/mg_stats.h"

#include <math.h>
#include <sys/wait.h>

static void
test_slots(void)
{
    MG_T_CASE("slots");
    int a = mg_stats_slot("deployment-a");
    int b = mg_stats_slot("deployment-b");
    CHECK(a >= 0 && b >= 0 && a != b);
    CHECK_INT(mg_stats_slot("deployment-a"), a);
    CHECK_STR(mg_stats_get(a)->id, "deployment-a");
    CHECK_INT(mg_stats_get(a)->state, 2);
    CHECK(mg_stats_slot(NULL) == -1);
    CHECK(mg_stats_get(-1) == NULL);
    /* ids longer than the slot keep their first MG_STATS_ID_MAX - 1 bytes */
    char long_a[200], long_b[200];
    memset(long_a, 'x', sizeof(long_a) - 1);
    long_a[sizeof(long_a) - 1] = '\0';
    memcpy(long_b, long_a, sizeof(long_b));
    long_b[150] = 'y';
    int la = mg_stats_slot(long_a);
    CHECK(la >= 0 && strlen(mg_stats_get(la)->id) == MG_STATS_ID_MAX - 1);
    CHECK_INT(mg_stats_slot(long_b), la); /* same first 95 bytes: same slot */
    /* 64-hex LiteLLM ids fit */
    const char *hex = "a88e943156800c1d2e8644ba8d215bac6155cd8b1314c331c6ea4154599ed8a6";
    int h = mg_stats_slot(hex);
    CHECK(h >= 0);
    CHECK_STR(mg_stats_get(h)->id, hex);
}

static void
test_counters(void)
{
    MG_T_CASE("per-minute counters and latency");
    int s = mg_stats_slot("counters");
    mg_stat_t *st = mg_stats_get(s);
    for (int i = 0; i < 3; i++) {
        mg_stats_begin(s);
    }
    CHECK_INT(st->inflight, 3);
    int64_t rpm, tpm, fails, succ;
    mg_stats_minute(s, &rpm, &tpm, &fails, &succ);
    CHECK(rpm == 3 && tpm == 0 && fails == 0 && succ == 0);
    CHECK(st->last_used_ms > 0 && st->last_used_ms <= mg_time_real_ms());
    mg_stats_add_tokens(s, 120);
    mg_stats_add_tokens(s, -5); /* ignored */
    mg_stats_add_tokens(s, 0);
    mg_stats_success(s, 2.0, 100, 0.5);  /* 0.02 s/token, ttft 0.005 s/token */
    mg_stats_success(s, 1.0, 0, -1);     /* no tokens: per request; no ttft */
    mg_stats_failure(s, false);
    mg_stats_minute(s, &rpm, &tpm, &fails, &succ);
    CHECK(rpm == 3 && tpm == 120 && fails == 1 && succ == 2, "rpm %lld tpm %lld fails %lld "
          "succ %lld", (long long) rpm, (long long) tpm, (long long) fails, (long long) succ);
    CHECK(fabs(st->latency - (0.02 + 1.0) / 2) < 1e-12, "latency %g", st->latency);
    CHECK(fabs(st->ttft - 0.005) < 1e-12, "ttft %g", st->ttft);
    CHECK_INT(st->ttft_n, 1);
    /* a timeout adds LiteLLM's 1000 s penalty sample */
    mg_stats_failure(s, true);
    CHECK_INT(st->latency_n, 3);
    CHECK(fabs(st->latency - (0.02 + 1.0 + 1000.0) / 3) < 1e-9);
    CHECK_INT(st->total_failures, 2);
    /* the ring keeps the last MG_STATS_SAMPLES samples */
    for (int i = 0; i < MG_STATS_SAMPLES + 5; i++) {
        mg_stats_success(s, 3.0, 0, -1);
    }
    CHECK_INT(st->latency_n, MG_STATS_SAMPLES);
    CHECK(fabs(st->latency - 3.0) < 1e-12);
    /* in-flight never goes below zero */
    for (int i = 0; i < 5; i++) {
        mg_stats_end(s);
    }
    CHECK_INT(st->inflight, 0);
    CHECK_INT(st->total_requests, 3);

    /* a new minute resets the per-minute counters (lazily, on the next access) */
    __atomic_store_n(&st->minute, st->minute - 1, __ATOMIC_RELEASE);
    mg_stats_minute(s, &rpm, &tpm, &fails, &succ);
    CHECK(rpm == 0 && tpm == 0 && fails == 0 && succ == 0);
    CHECK_INT(st->total_requests, 3); /* totals are not per minute */
    mg_stats_begin(s);
    mg_stats_minute(s, &rpm, &tpm, &fails, &succ);
    CHECK_INT(rpm, 1);
    mg_stats_end(s);

    /* no slot: every call is a no-op */
    mg_stats_begin(-1);
    mg_stats_success(-1, 1, 1, 1);
    mg_stats_minute(-1, &rpm, &tpm, &fails, &succ);
    CHECK(rpm == 0 && tpm == 0);
    CHECK(!mg_stats_cooldown(-1, 1000, 500));
    CHECK_INT(mg_stats_cooldown_left(-1), 0);
}

static void
test_cooldown(void)
{
    MG_T_CASE("cooldown");
    int s = mg_stats_slot("cool");
    mg_stat_t *st = mg_stats_get(s);
    CHECK_INT(mg_stats_cooldown_left(s), 0);
    CHECK(mg_stats_cooldown(s, 5000, 429)); /* this call started it */
    int64_t left = mg_stats_cooldown_left(s);
    CHECK(left > 4000 && left <= 5000, "left %lld", (long long) left);
    CHECK_INT(st->cooldown_status, 429);
    CHECK_INT(st->cooldown_time_ms, 5000);
    CHECK(!mg_stats_cooldown(s, 1000, 500)); /* already cooling: not a new start */
    CHECK(mg_stats_cooldown_left(s) > 4000); /* a shorter one does not shorten it */
    CHECK_INT(st->cooldown_status, 429);
    CHECK(!mg_stats_cooldown(s, 60000, 503)); /* a longer one extends it */
    CHECK(mg_stats_cooldown_left(s) > 50000);
    CHECK_INT(st->cooldown_status, 503);
    CHECK(!mg_stats_cooldown(s, 0, 500));
    CHECK(!mg_stats_cooldown(s, -5, 500));
    /* once over, the next cooldown starts again */
    __atomic_store_n(&st->cooldown_until_ms, mg_time_real_ms() - 1, __ATOMIC_RELEASE);
    CHECK_INT(mg_stats_cooldown_left(s), 0);
    CHECK(mg_stats_cooldown(s, 100, 500));
}

static void
test_processes(void)
{
    MG_T_CASE("shared between forked processes");
    /* two workers claim the same ids at once: one slot per id, never two */
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            for (int i = 0; i < 40; i++) {
                char id[32];
                snprintf(id, sizeof(id), "shared-%d", i);
                int slot = mg_stats_slot(id);
                if (slot < 0) {
                    _exit(3);
                }
                mg_stats_begin(slot);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status = -1;
        waitpid(kids[k], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", k, status);
    }
    /* the parent sees both children's writes, in one slot per id */
    int found = 0;
    for (uint32_t i = 0; i < mg_stats->nslots; i++) {
        mg_stat_t *st = &mg_stats->slots[i];
        if (st->state == 2 && strncmp(st->id, "shared-", 7) == 0) {
            found++;
            CHECK(st->total_requests == 2, "%s: %lld requests", st->id,
                  (long long) st->total_requests);
        }
    }
    CHECK_INT(found, 40);
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof(id), "shared-%d", i);
        int slot = mg_stats_slot(id);
        CHECK(slot >= 0 && mg_stats_get(slot)->inflight == 2);
    }
    /* a cooldown set by one worker is seen by the others */
    pid_t p = fork();
    if (p == 0) {
        mg_stats_cooldown(mg_stats_slot("shared-0"), 30000, 429);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    CHECK(mg_stats_cooldown_left(mg_stats_slot("shared-0")) > 20000);
}

static void
test_full(void)
{
    MG_T_CASE("table full");
    /* a small second table: once every slot is taken, new ids get -1 */
    CHECK_INT(mg_stats_init(4), 0);
    int got = 0;
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "f%d", i);
        got += mg_stats_slot(id) >= 0;
    }
    CHECK_INT(got, 4);
    CHECK(mg_stats_slot("f0") >= 0 || mg_stats_slot("f5") >= 0);
    /* the shared arena is bounded */
    CHECK(mg_shm_alloc((size_t) 1 << 40) == NULL);
}

int
main(void)
{
    if (mg_shm_create(1, 4 << 20) != 0 || mg_stats_init(256) != 0) {
        printf("cannot create the shared memory table\n");
        return 2;
    }
    test_slots();
    test_counters();
    test_cooldown();
    test_processes();
    test_full();
    return mg_test_done();
}
