/*
 * test_limits.c -- core/registry/mg_limits.c: counter slots claimed by kind and id, and the
 * read-only lookups lists use (mg_lim_find, mg_lim_spend_peek) that never claim one.
 */
#include "mg_test.h"

#include "base/mg_shm.h"
#include "registry/mg_limits.h"

#include <math.h>

#define NSLOTS 8

static void
test_find_never_claims(void)
{
    MG_T_CASE("find and peek never claim a slot");
    CHECK_INT(mg_lim_find(MG_ENT_KEY, "never-used", NULL), -1);
    CHECK(mg_lim_spend_peek(MG_ENT_KEY, "never-used", 0.25, 0) == 0.25, "the row's spend");
    CHECK_INT(mg_lim_find(MG_ENT_KEY, "never-used", NULL), -1); /* still none */
    int s = mg_lim_slot(MG_ENT_KEY, "used", NULL);
    CHECK(s >= 0);
    CHECK_INT(mg_lim_find(MG_ENT_KEY, "used", NULL), s);
    CHECK_INT(mg_lim_find(MG_ENT_TEAM, "used", NULL), -1); /* the kind is part of the id */
    CHECK_INT(mg_lim_find(MG_ENT_KEY, "used", "gpt-4o"), -1);
    /* a claimed slot: the counter (seeded from the row once), then what was settled */
    CHECK(fabs(mg_lim_spend_peek(MG_ENT_KEY, "used", 1.5, 0) - 1.5) < 1e-9);
    CHECK(mg_lim_reserve(s, -1, 0.5));
    mg_lim_settle(s, 0.5, 0.25);
    CHECK(fabs(mg_lim_spend_peek(MG_ENT_KEY, "used", 1.5, 0) - 1.75) < 1e-9, "the live spend");
    CHECK(fabs(mg_lim_spend_of(MG_ENT_KEY, "used", 1.5, 0) - 1.75) < 1e-9);
    /* a new epoch (an admin set the spend) re-seeds from the row, as mg_lim_spend_of does */
    CHECK(fabs(mg_lim_spend_peek(MG_ENT_KEY, "used", 3.0, 7) - 3.0) < 1e-9);
}

static void
test_full_table(void)
{
    MG_T_CASE("a full table: find still answers, nothing more is claimed");
    char id[32];
    int got = 0;
    for (int i = 0; i < NSLOTS * 2; i++) {
        snprintf(id, sizeof(id), "fill-%d", i);
        if (mg_lim_slot(MG_ENT_USER, id, NULL) >= 0) {
            got++;
        }
    }
    CHECK(got > 0 && got <= NSLOTS);
    CHECK(mg_lim_find(MG_ENT_KEY, "used", NULL) >= 0);
    CHECK_INT(mg_lim_find(MG_ENT_KEY, "not-there", NULL), -1); /* the probe ends, not loops */
    CHECK(mg_lim_spend_peek(MG_ENT_KEY, "not-there", 0.5, 0) == 0.5);
}

int
main(void)
{
    if (mg_shm_create(1, 4 << 20) != 0 || mg_limits_init(NSLOTS) != 0) {
        printf("cannot create the shared memory table\n");
        return 2;
    }
    test_find_never_claims();
    test_full_table();
    return mg_test_done();
}
