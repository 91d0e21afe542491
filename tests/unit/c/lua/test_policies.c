/*
 * test_policies.c -- the built-in policies (policies/routing, fallback, wildcard) through the policy
 * state of core/lua/mg_lua_vm.c: every routing strategy (empty, one candidate,
 * ties, output always a duplicate-free subset, rpm/tpm limits, the statistic
 * each one ranks by, simple-shuffle's weights over many draws), the ordered
 * fallback policy and the LiteLLM wildcard policy, also through the gateway's
 * mg_route_wildcard() next to mg_registry_wildcard().
 *
 * Built-in-only states run JIT-compiled; the weighted-draw and least-busy
 * checks are repeated in a state that also holds a user policy (interpreted,
 * count hook on) so both execution modes are covered.
 */
#include "policy_fixture.h"

#include "gateway/mg_gw.h"
#include "gateway/mg_route.h"

#define ROUTING MG_POLICY_ROUTING
#define FALLBACK MG_POLICY_FALLBACK
#define WILDCARD MG_POLICY_WILDCARD

static const char *const ROUTING_BUILTINS[] = {"simple_shuffle", "least_busy", "latency_based",
                                               "usage_based_v2", "cost_based"};
#define N_BUILTINS 5

/* A user fallback policy: keeps the state interpreted (jit off, count hook on). */
static const char *const USER_FALLBACK =
    "local _M = { name = 'user_ordered', kind = 'fallback' }\n"
    "function _M.select(ctx, candidates) return candidates end\n"
    "return _M\n";

/* config text: router_settings line + a model_list */
static char *
cfg_text(const char *router, const char *models)
{
    mg_buf_t b = MG_BUF_INIT;
    if (router != NULL) {
        mg_buf_printf(&b, "router_settings: %s\n", router);
    }
    mg_buf_printf(&b, "model_list:\n%s", models);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* "  - {model_name: G, litellm_params: {model: openai/ID, api_base: ..., api_key: k EXTRA}, model_info: {id: ID}}" */
static void
add_model(mg_buf_t *b, const char *group, const char *id, const char *extra)
{
    mg_buf_printf(b, "  - {model_name: \"%s\", litellm_params: {model: \"openai/%s\", api_base: "
                     "\"http://127.0.0.1:9/v1\", api_key: k%s%s}, model_info: {id: \"%s\"}}\n",
                  group, id, extra && extra[0] ? ", " : "", extra ? extra : "", id);
}

/* A snapshot of one group with deployments ids[i] (extras[i] appended to litellm_params). */
static mg_snapshot_t *
group_snap(const char *router, const char *group, int n, const char *const *ids,
           const char *const *extras, json_t *store)
{
    mg_buf_t m = MG_BUF_INIT;
    for (int i = 0; i < n; i++) {
        add_model(&m, group, ids[i], extras ? extras[i] : NULL);
    }
    char *y = cfg_text(router, mg_buf_cstr(&m));
    mg_snapshot_t *s = pf_snap(y, store);
    free(y);
    mg_buf_free(&m);
    return s;
}

static int
idx_of(mg_deployment_t *const *v, int n, const mg_deployment_t *d)
{
    for (int i = 0; i < n; i++) {
        if (v[i] == d) {
            return i;
        }
    }
    return -1;
}

/* ---- common properties of every routing built-in ---- */

static void
test_routing_common(const char *pol)
{
    char name[160];
    snprintf(name, sizeof(name), "%s: empty, single, subset under random stats", pol);
    MG_T_CASE(name);
    char router[128];
    snprintf(router, sizeof(router), "{routing_policy: %s}", pol);
    const char *ids[] = {"c-a", "c-b", "c-c", "c-d", "c-e"};
    const char *extras[] = {"weight: 1, rpm: 50, tpm: 5000, input_cost_per_token: 0.001",
                            "weight: 2, rpm: 40, tpm: 4000, input_cost_per_token: 0.002",
                            "rpm: 30, tpm: 3000",
                            "weight: 4, input_cost_per_token: 0.0005, output_cost_per_token: 0.001",
                            "weight: 5, tpm: 1000"};
    mg_snapshot_t *s = group_snap(router, "common", 5, ids, extras, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    CHECK(pf_jit(vm), "%s: a built-in-only state runs JIT-compiled", pol);
    mg_group_t *g = pf_group(s, "common");
    mg_lua_ctx_t ctx = pf_ctx("common");
    mg_deployment_t *out[16];
    int nout = -1;

    /* empty candidates: never an error, never a deployment */
    int rc = pf_select(vm, ROUTING, &ctx, g->deps, 0, out, &nout);
    CHECK(rc != MG_ERROR, "%s: empty candidates gave MG_ERROR (%s)", pol, pf_last_error(vm, ROUTING));
    CHECK_INT(nout, 0);

    /* one candidate: that candidate */
    for (int i = 0; i < 5; i++) {
        rc = pf_select(vm, ROUTING, &ctx, &g->deps[i], 1, out, &nout);
        CHECK(rc == MG_OK && nout == 1 && out[0] == g->deps[i],
              "%s: single candidate %s: rc %d nout %d", pol, g->deps[i]->id, rc, nout);
    }

    /* random stats, random candidate subsets and orders (and the whole group) */
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    int bad = 0, declined = 0, ok = 0;
    for (int it = 0; it < 3000; it++) {
        for (int i = 0; i < 5; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            mg_stat_t *st = mg_stats_get(g->deps[i]->stats_slot);
            st->inflight = (int32_t) ((seed >> 33) % 7);
            st->rpm = (int32_t) ((seed >> 40) % 60);
            st->tpm = (int32_t) ((seed >> 20) % 6000);
            st->latency = (double) ((seed >> 45) % 100) / 100.0;
            st->latency_n = (int32_t) ((seed >> 50) % 3);
            st->ttft = (double) ((seed >> 10) % 100) / 1000.0;
            st->ttft_n = st->latency_n;
        }
        mg_deployment_t *cands[5];
        int n = 0;
        if (it % 3 == 0) {
            for (int i = 0; i < 5; i++) {
                cands[n++] = g->deps[i];
            }
        } else {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            for (int i = 0; i < 5; i++) {
                if ((seed >> (20 + i)) & 1) {
                    cands[n++] = g->deps[(i + it) % 5];
                }
            }
        }
        ctx.stream = it % 2 == 1;
        ctx.tokens = (int64_t) (it % 50) * 20;
        rc = pf_select(vm, ROUTING, &ctx, cands, n, out, &nout);
        if (rc == MG_ERROR || !pf_is_subset(cands, n, out, nout) || (rc == MG_DECLINED && nout != 0) ||
            (rc == MG_OK && nout == 0)) {
            if (bad++ < 3) {
                MG_T_FAIL_AT("%s: iteration %d: rc %d, nout %d of %d (%s)", pol, it, rc, nout, n,
                             pf_last_error(vm, ROUTING));
            }
        }
        declined += rc == MG_DECLINED;
        ok += rc == MG_OK;
    }
    CHECK_INT(bad, 0);
    CHECK(ok > 0, "%s: some calls chose a deployment", pol);
    CHECK_INT(pf_errors(vm, ROUTING), 0);
    printf("  %s: 3000 random calls: %d chose, %d declined\n", pol, ok, declined);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

/* ---- simple-shuffle ---- */

/* Draws n picks of group g; counts[i] = times g->deps[i] was first. */
static void
draw(mg_lua_vm_t *vm, mg_deployment_t *const *cands, int nc, long n, long *counts, int *errors)
{
    mg_lua_ctx_t ctx = pf_ctx(cands[0]->model_name);
    mg_deployment_t *out[16];
    int nout;
    for (int i = 0; i < nc; i++) {
        counts[i] = 0;
    }
    *errors = 0;
    for (long k = 0; k < n; k++) {
        int rc = pf_select(vm, ROUTING, &ctx, cands, nc, out, &nout);
        if (rc != MG_OK || nout < 1) {
            (*errors)++;
            continue;
        }
        int i = idx_of(cands, nc, out[0]);
        if (i >= 0) {
            counts[i]++;
        }
    }
}

static void
test_simple_shuffle_weights(bool interpreted)
{
    const char *mode = interpreted ? "interpreted" : "jit";
    char cname[128];
    json_t *store = interpreted ? pf_store1("fallback", USER_FALLBACK) : NULL;
    const long N = 20000;
    long cnt[4];
    int errs;

    snprintf(cname, sizeof(cname), "simple_shuffle weights 1:3 (%s)", mode);
    MG_T_CASE(cname);
    {
        const char *ids[] = {"w-a", "w-b"};
        const char *ex[] = {"weight: 1", "weight: 3"};
        mg_snapshot_t *s = group_snap(NULL, "wgt", 2, ids, ex, store);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        CHECK(pf_jit(vm) == !interpreted, "jit flag is %d", pf_jit(vm));
        mg_group_t *g = pf_group(s, "wgt");
        draw(vm, g->deps, 2, N, cnt, &errs);
        CHECK_INT(errs, 0);
        CHECK_BINOMIAL(cnt[0], N, 0.25);
        CHECK_BINOMIAL(cnt[1], N, 0.75);
        printf("  weights 1:3 (%s, whole group): %ld / %ld\n", mode, cnt[0], cnt[1]);
        /* the same candidates in another order (not the cached whole-group table) */
        mg_deployment_t *rev[2] = {g->deps[1], g->deps[0]};
        draw(vm, rev, 2, N, cnt, &errs);
        CHECK_INT(errs, 0);
        CHECK_BINOMIAL(cnt[0], N, 0.75);
        CHECK_BINOMIAL(cnt[1], N, 0.25);
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }

    snprintf(cname, sizeof(cname), "simple_shuffle rpm-weighted when the first has no weight (%s)", mode);
    MG_T_CASE(cname);
    {
        const char *ids[] = {"r-a", "r-b", "r-c"};
        /* r-c has a weight, but only the FIRST candidate is inspected (LiteLLM) */
        const char *ex[] = {"rpm: 100", "rpm: 300", "weight: 1000"};
        mg_snapshot_t *s = group_snap(NULL, "rpmw", 3, ids, ex, store);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        mg_group_t *g = pf_group(s, "rpmw");
        draw(vm, g->deps, 3, N, cnt, &errs);
        CHECK_INT(errs, 0);
        CHECK_BINOMIAL(cnt[0], N, 0.25);
        CHECK_BINOMIAL(cnt[1], N, 0.75);
        CHECK_INT(cnt[2], 0); /* no rpm: weight 0 */
        printf("  rpm 100:300:(none) (%s): %ld / %ld / %ld\n", mode, cnt[0], cnt[1], cnt[2]);
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }

    snprintf(cname, sizeof(cname), "simple_shuffle tpm-weighted when the first has no weight/rpm (%s)", mode);
    MG_T_CASE(cname);
    {
        const char *ids[] = {"t-a", "t-b"};
        const char *ex[] = {"tpm: 1000", "tpm: 3000, rpm: 1"};
        mg_snapshot_t *s = group_snap(NULL, "tpmw", 2, ids, ex, store);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        mg_group_t *g = pf_group(s, "tpmw");
        draw(vm, g->deps, 2, N, cnt, &errs);
        CHECK_INT(errs, 0);
        CHECK_BINOMIAL(cnt[0], N, 0.25);
        CHECK_BINOMIAL(cnt[1], N, 0.75);
        printf("  tpm 1000:3000 (%s): %ld / %ld\n", mode, cnt[0], cnt[1]);
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }

    snprintf(cname, sizeof(cname), "simple_shuffle uniform without weights (%s)", mode);
    MG_T_CASE(cname);
    {
        const char *ids[] = {"u-a", "u-b", "u-c"};
        /* u-b and u-c have weights, but the first candidate has none of weight/rpm/tpm */
        const char *ex[] = {"", "weight: 9", "weight: 1"};
        mg_snapshot_t *s = group_snap(NULL, "unif", 3, ids, ex, store);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        mg_group_t *g = pf_group(s, "unif");
        draw(vm, g->deps, 3, N, cnt, &errs);
        CHECK_INT(errs, 0);
        for (int i = 0; i < 3; i++) {
            CHECK_BINOMIAL(cnt[i], N, 1.0 / 3.0);
        }
        printf("  uniform (%s): %ld / %ld / %ld\n", mode, cnt[0], cnt[1], cnt[2]);
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }

    snprintf(cname, sizeof(cname), "simple_shuffle: a missing weight counts as 0 (%s)", mode);
    MG_T_CASE(cname);
    {
        const char *ids[] = {"z-a", "z-b"};
        const char *ex[] = {"weight: 2", ""};
        mg_snapshot_t *s = group_snap(NULL, "zerow", 2, ids, ex, store);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        mg_group_t *g = pf_group(s, "zerow");
        draw(vm, g->deps, 2, 2000, cnt, &errs);
        CHECK_INT(errs, 0);
        CHECK_INT(cnt[0], 2000);
        CHECK_INT(cnt[1], 0);
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }
    json_decref(store);
}

/* ---- least-busy ---- */

static void
test_least_busy(bool interpreted)
{
    MG_T_CASE(interpreted ? "least_busy (interpreted)" : "least_busy (jit)");
    json_t *store = interpreted ? pf_store1("fallback", USER_FALLBACK) : NULL;
    const char *ids[] = {"lb-a", "lb-b", "lb-c"};
    mg_snapshot_t *s = group_snap("{routing_strategy: least-busy}", "lbusy", 3, ids, NULL, store);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    CHECK(pf_jit(vm) == !interpreted);
    mg_group_t *g = pf_group(s, "lbusy");
    mg_lua_ctx_t ctx = pf_ctx("lbusy");
    mg_deployment_t *out[8];
    int nout;
    mg_stat_t *a = pf_stat(s, "lb-a"), *b = pf_stat(s, "lb-b"), *c = pf_stat(s, "lb-c");

    a->inflight = 5, b->inflight = 2, c->inflight = 7;
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK && nout >= 1);
    CHECK_STR(out[0]->id, "lb-b");

    /* ties go to the candidate that comes first */
    a->inflight = 1, b->inflight = 1, c->inflight = 3;
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lb-a");
    mg_deployment_t *rev[3] = {g->deps[2], g->deps[1], g->deps[0]};
    CHECK(pf_select(vm, ROUTING, &ctx, rev, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lb-b");

    /* all equal: the first one */
    a->inflight = b->inflight = c->inflight = 0;
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lb-a");

    /* live numbers are read on every call, also once the loop is hot (traces compiled) */
    uint64_t seed = 12345;
    int wrong = 0;
    for (int it = 0; it < 20000; it++) {
        int32_t v[3];
        for (int i = 0; i < 3; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            v[i] = (int32_t) ((seed >> 33) % 10);
        }
        a->inflight = v[0], b->inflight = v[1], c->inflight = v[2];
        int best = 0;
        for (int i = 1; i < 3; i++) {
            if (v[i] < v[best]) {
                best = i;
            }
        }
        if (pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) != MG_OK || nout < 1 ||
            out[0] != g->deps[best]) {
            if (wrong++ < 3) {
                MG_T_FAIL_AT("iteration %d: inflight %d/%d/%d picked %s", it, v[0], v[1], v[2],
                             nout > 0 ? out[0]->id : "(none)");
            }
        }
    }
    CHECK_INT(wrong, 0);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
    json_decref(store);
}

/* ---- latency-based ---- */

static void
set_latency(mg_stat_t *st, double per_token, int samples)
{
    st->latency = per_token;
    st->latency_n = samples;
}

static void
test_latency_based(void)
{
    MG_T_CASE("latency_based: lowest average wins, unseen first, ties random");
    const char *ids[] = {"lt-a", "lt-b", "lt-c"};
    const char *ex[] = {"rpm: 10", "tpm: 100", ""};
    mg_snapshot_t *s = group_snap("{routing_strategy: latency-based-routing}", "lat", 3, ids, ex, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    mg_group_t *g = pf_group(s, "lat");
    mg_lua_ctx_t ctx = pf_ctx("lat");
    mg_deployment_t *out[8];
    int nout;
    mg_stat_t *a = pf_stat(s, "lt-a"), *b = pf_stat(s, "lt-b"), *c = pf_stat(s, "lt-c");

    /* through the real recorder: 1 s for 10 tokens = 0.1 s/token */
    mg_stats_success(pf_dep(s, "lt-a")->stats_slot, 1.0, 10, -1);
    mg_stats_success(pf_dep(s, "lt-b")->stats_slot, 2.0, 10, -1);
    mg_stats_success(pf_dep(s, "lt-c")->stats_slot, 3.0, 10, -1);
    CHECK(fabs(a->latency - 0.1) < 1e-9, "latency %f", a->latency);
    int wrong = 0;
    for (int i = 0; i < 500; i++) {
        if (pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) != MG_OK || out[0] != g->deps[0]) {
            wrong++;
        }
    }
    CHECK_INT(wrong, 0);

    /* a deployment without samples scores 0 and is tried first */
    pf_zero_stat(c);
    for (int i = 0; i < 200; i++) {
        if (pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) != MG_OK || out[0] != g->deps[2]) {
            wrong++;
        }
    }
    CHECK_INT(wrong, 0);

    /* a timeout adds a 1000 s sample: that deployment drops behind */
    set_latency(c, 0.05, 1);
    mg_stats_failure(pf_dep(s, "lt-c")->stats_slot, true);
    CHECK(c->latency > 100, "latency after a timeout: %f", c->latency);
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lt-a");

    /* ties: random among the tied, never the slower one */
    set_latency(a, 0.2, 3), set_latency(b, 0.2, 3), set_latency(c, 0.5, 3);
    long ca = 0, cb = 0, cc = 0;
    const long N = 4000;
    for (long i = 0; i < N; i++) {
        if (pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK && nout == 1) {
            ca += out[0] == g->deps[0];
            cb += out[0] == g->deps[1];
            cc += out[0] == g->deps[2];
        }
    }
    CHECK_INT(cc, 0);
    CHECK_INT(ca + cb, N);
    CHECK_BINOMIAL(ca, N, 0.5);

    MG_T_CASE("latency_based: rpm/tpm limits of this minute");
    set_latency(a, 0.1, 3), set_latency(b, 0.2, 3), set_latency(c, 0.3, 3);
    a->rpm = 10; /* lt-a: rpm 10, used 10: over */
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lt-b");
    a->rpm = 9; /* one request left */
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lt-a");
    a->rpm = 10;
    b->tpm = 50;
    ctx.tokens = 51; /* 50 + 51 > 100 */
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lt-c");
    ctx.tokens = 50; /* 50 + 50 = 100: fits */
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "lt-b");
    /* none acceptable: {} + reason -> MG_DECLINED */
    ctx.tokens = 51;
    mg_deployment_t *ab[2] = {g->deps[0], g->deps[1]};
    int rc = pf_select(vm, ROUTING, &ctx, ab, 2, out, &nout);
    CHECK_INT(rc, MG_DECLINED);
    CHECK_INT(nout, 0);
    CHECK_CONTAINS(pf_reason, "No deployments available");
    CHECK_INT(pf_errors(vm, ROUTING), 0);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);

    MG_T_CASE("latency_based: time to first token for streams");
    {
        const char *ids2[] = {"tt-a", "tt-b"};
        mg_snapshot_t *s2 = group_snap("{routing_strategy: latency-based-routing}", "ttft", 2, ids2, NULL, NULL);
        mg_lua_vm_t *vm2 = pf_vm(s2, 5, 64);
        mg_group_t *g2 = pf_group(s2, "ttft");
        mg_lua_ctx_t c2 = pf_ctx("ttft");
        /* tt-a: fast per token, slow first token; tt-b the opposite */
        mg_stats_success(pf_dep(s2, "tt-a")->stats_slot, 1.0, 10, 5.0);
        mg_stats_success(pf_dep(s2, "tt-b")->stats_slot, 3.0, 10, 0.5);
        c2.stream = false;
        CHECK(pf_select(vm2, ROUTING, &c2, g2->deps, 2, out, &nout) == MG_OK);
        CHECK_STR(out[0]->id, "tt-a");
        c2.stream = true;
        CHECK(pf_select(vm2, ROUTING, &c2, g2->deps, 2, out, &nout) == MG_OK);
        CHECK_STR(out[0]->id, "tt-b");
        mg_lua_vm_destroy(vm2);
        mg_snapshot_unref(s2);
    }

    MG_T_CASE("latency_based: lowest_latency_buffer");
    {
        const char *ids3[] = {"lbuf-a", "lbuf-b", "lbuf-c"};
        mg_snapshot_t *s3 = group_snap("{routing_strategy: latency-based-routing, routing_strategy_args: "
                                       "{lowest_latency_buffer: 0.5}}", "lbuf", 3, ids3, NULL, NULL);
        mg_lua_vm_t *vm3 = pf_vm(s3, 5, 64);
        mg_group_t *g3 = pf_group(s3, "lbuf");
        mg_lua_ctx_t c3 = pf_ctx("lbuf");
        /* limit = 0.2 + 0.2 * 0.5 = 0.3: a and b qualify, c (0.31) does not */
        set_latency(pf_stat(s3, "lbuf-a"), 0.2, 2);
        set_latency(pf_stat(s3, "lbuf-b"), 0.3, 2);
        set_latency(pf_stat(s3, "lbuf-c"), 0.31, 2);
        long n[3] = {0, 0, 0};
        for (long i = 0; i < N; i++) {
            if (pf_select(vm3, ROUTING, &c3, g3->deps, 3, out, &nout) == MG_OK && nout == 1) {
                n[idx_of(g3->deps, 3, out[0])]++;
            }
        }
        CHECK_INT(n[2], 0);
        CHECK_INT(n[0] + n[1], N);
        CHECK_BINOMIAL(n[0], N, 0.5);
        printf("  lowest_latency_buffer 0.5: %ld / %ld / %ld\n", n[0], n[1], n[2]);
        mg_lua_vm_destroy(vm3);
        mg_snapshot_unref(s3);
    }

    MG_T_CASE("latency_based: validate() refuses a negative buffer");
    {
        json_t *conf = json_pack("{s:f}", "lowest_latency_buffer", -1.0);
        mg_err_t err;
        int rc2 = mg_lua_check(ROUTING, mg_lua_builtin(ROUTING, "latency_based"),
                               "policies/routing/latency_based.lua", conf, true, &err);
        CHECK_INT(rc2, MG_ERROR);
        CHECK_CONTAINS(err.msg, "lowest_latency_buffer must be a number >= 0");
        json_decref(conf);
    }
}

/* ---- usage-based v2 ---- */

static void
test_usage_based(void)
{
    MG_T_CASE("usage_based_v2: lowest tpm this minute, ties random, limits");
    const char *ids[] = {"ub-a", "ub-b", "ub-c"};
    const char *ex[] = {"tpm: 1000, rpm: 10", "tpm: 1000, rpm: 10", "tpm: 1000"};
    mg_snapshot_t *s = group_snap("{routing_strategy: usage-based-routing-v2}", "usage", 3, ids, ex, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    mg_group_t *g = pf_group(s, "usage");
    mg_lua_ctx_t ctx = pf_ctx("usage");
    ctx.tokens = 100;
    mg_deployment_t *out[8];
    int nout;
    mg_stat_t *a = pf_stat(s, "ub-a"), *b = pf_stat(s, "ub-b"), *c = pf_stat(s, "ub-c");

    a->tpm = 500, b->tpm = 100, c->tpm = 300;
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK && nout == 1);
    CHECK_STR(out[0]->id, "ub-b");

    /* through the real counter */
    mg_stats_add_tokens(pf_dep(s, "ub-b")->stats_slot, 450);
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "ub-c");

    /* ties at random, never the busier one */
    a->tpm = 200, b->tpm = 200, c->tpm = 201;
    long na = 0, nb = 0, other = 0;
    const long N = 4000;
    for (long i = 0; i < N; i++) {
        if (pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK && nout == 1) {
            na += out[0] == g->deps[0];
            nb += out[0] == g->deps[1];
            other += out[0] == g->deps[2];
        }
    }
    CHECK_INT(other, 0);
    CHECK_INT(na + nb, N);
    CHECK_BINOMIAL(na, N, 0.5);

    /* tpm limit: used + this request's tokens > tpm excludes */
    a->tpm = 0, b->tpm = 850, c->tpm = 901;
    ctx.tokens = 100; /* c: 901 + 100 > 1000 */
    CHECK(pf_select(vm, ROUTING, &ctx, &g->deps[1], 2, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "ub-b");
    ctx.tokens = 151; /* b: 850 + 151 > 1000 too */
    int rc = pf_select(vm, ROUTING, &ctx, &g->deps[1], 2, out, &nout);
    CHECK_INT(rc, MG_DECLINED);
    CHECK_INT(nout, 0);
    CHECK_CONTAINS(pf_reason, "No deployments available");

    /* rpm limit: this minute's requests */
    ctx.tokens = 10;
    a->tpm = 0, b->tpm = 5, c->tpm = 10;
    a->rpm = 10; /* at its limit */
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "ub-b");
    b->rpm = 10;
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "ub-c");
    rc = pf_select(vm, ROUTING, &ctx, g->deps, 2, out, &nout);
    CHECK_INT(rc, MG_DECLINED);
    CHECK_INT(pf_errors(vm, ROUTING), 0);

    MG_T_CASE("usage_based_v2: last minute's usage does not count");
    {
        /* ub-a hit its rpm limit in an earlier minute and got no request since: the
         * counters are rolled over lazily, so the policy must not read them as this
         * minute's (LiteLLM keys them by HH-MM) */
        pf_zero_stat(a), pf_zero_stat(b), pf_zero_stat(c);
        int64_t now_min = mg_time_real_ms() / 60000;
        a->minute = now_min - 2;
        a->rpm = 10;
        a->tpm = 1000;
        b->tpm = 500;
        c->tpm = 500;
        rc = pf_select(vm, ROUTING, &ctx, g->deps, 3, out, &nout);
        CHECK(rc == MG_OK && nout == 1 && out[0] == g->deps[0],
              "stale minute: rc %d picked %s (counters from minute %lld, now %lld)", rc,
              nout > 0 ? out[0]->id : "(none)", (long long) a->minute, (long long) now_min);
        /* the same for a single deployment group: once the minute is over it is usable */
        mg_deployment_t *one[1] = {g->deps[0]};
        const char *pols[] = {"usage_based_v2", "latency_based", "cost_based"};
        for (int p = 0; p < 3; p++) {
            char router[96];
            snprintf(router, sizeof(router), "{routing_policy: %s}", pols[p]);
            const char *ids1[] = {"stale-1"};
            const char *ex1[] = {"rpm: 5"};
            mg_snapshot_t *s1 = group_snap(router, "stale", 1, ids1, ex1, NULL);
            mg_lua_vm_t *vm1 = pf_vm(s1, 5, 64);
            mg_stat_t *st = pf_stat(s1, "stale-1");
            st->minute = now_min - 1;
            st->rpm = 5;
            one[0] = pf_group(s1, "stale")->deps[0];
            mg_lua_ctx_t c1 = pf_ctx("stale");
            rc = pf_select(vm1, ROUTING, &c1, one, 1, out, &nout);
            CHECK(rc == MG_OK, "%s declines a deployment whose rpm=5 is from the previous minute: %s",
                  pols[p], pf_reason);
            mg_lua_vm_destroy(vm1);
            mg_snapshot_unref(s1);
        }
    }
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

/* ---- cost-based ---- */

static void
test_cost_based(void)
{
    MG_T_CASE("cost_based: cheapest wins, ties first, unknown costs 5.0, limits");
    const char *ids[] = {"cb-a", "cb-b", "cb-c", "cb-d"};
    const char *ex[] = {"input_cost_per_token: 0.00003, output_cost_per_token: 0.00006",
                        "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002, rpm: 3",
                        "",
                        "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002"};
    mg_snapshot_t *s = group_snap("{routing_strategy: cost-based-routing}", "cost", 4, ids, ex, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    mg_group_t *g = pf_group(s, "cost");
    mg_lua_ctx_t ctx = pf_ctx("cost");
    mg_deployment_t *out[8];
    int nout;
    for (int i = 0; i < 100; i++) {
        CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 4, out, &nout) == MG_OK && nout == 1 &&
              out[0] == g->deps[1], "cheapest: got %s", nout > 0 ? out[0]->id : "(none)");
    }
    /* b and d cost the same: the first of them in candidate order */
    mg_deployment_t *db[4] = {g->deps[3], g->deps[0], g->deps[1], g->deps[2]};
    CHECK(pf_select(vm, ROUTING, &ctx, db, 4, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "cb-d");
    /* b over its rpm: d */
    pf_stat(s, "cb-b")->rpm = 3;
    CHECK(pf_select(vm, ROUTING, &ctx, g->deps, 4, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "cb-d");
    /* unknown costs count 5.0 + 5.0: a (known, tiny) beats c */
    mg_deployment_t *ac[2] = {g->deps[2], g->deps[0]};
    CHECK(pf_select(vm, ROUTING, &ctx, ac, 2, out, &nout) == MG_OK);
    CHECK_STR(out[0]->id, "cb-a");
    /* only b, over its limit: declined */
    int rc = pf_select(vm, ROUTING, &ctx, &g->deps[1], 1, out, &nout);
    CHECK_INT(rc, MG_DECLINED);
    CHECK_INT(nout, 0);
    CHECK_INT(pf_errors(vm, ROUTING), 0);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);

    MG_T_CASE("cost_based: none acceptable -> MG_DECLINED with a reason");
    const char *ids2[] = {"cx-a", "cx-b"};
    const char *ex2[] = {"rpm: 1, input_cost_per_token: 0.1", "tpm: 10"};
    s = group_snap("{routing_strategy: cost-based-routing}", "costx", 2, ids2, ex2, NULL);
    vm = pf_vm(s, 5, 64);
    g = pf_group(s, "costx");
    ctx = pf_ctx("costx");
    ctx.tokens = 11;
    pf_stat(s, "cx-a")->rpm = 1;
    rc = pf_select(vm, ROUTING, &ctx, g->deps, 2, out, &nout);
    CHECK_INT(rc, MG_DECLINED);
    CHECK_INT(nout, 0);
    CHECK_CONTAINS(pf_reason, "No deployments available");
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

/* ---- fallback/ordered ---- */

static void
test_fallback_ordered(void)
{
    MG_T_CASE("fallback/ordered keeps the order it is given");
    mg_buf_t m = MG_BUF_INIT;
    add_model(&m, "fa", "fo-a1", NULL);
    add_model(&m, "fa", "fo-a2", NULL);
    add_model(&m, "fb", "fo-b1", NULL);
    add_model(&m, "fc", "fo-c1", NULL);
    add_model(&m, "fc", "fo-c2", NULL);
    char *y = cfg_text("{fallbacks: [{fa: [fc, fb]}]}", mg_buf_cstr(&m));
    mg_snapshot_t *s = pf_snap(y, NULL);
    free(y);
    mg_buf_free(&m);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    CHECK(pf_jit(vm));
    /* candidates as the gateway builds them: grouped by fallback group, in order */
    mg_deployment_t *c[4] = {pf_dep(s, "fo-c1"), pf_dep(s, "fo-c2"), pf_dep(s, "fo-b1"), pf_dep(s, "fo-a2")};
    mg_lua_ctx_t ctx = {"fa", "fa", false, 1, 10, "RateLimitError", 429, pf_dep(s, "fo-a1"), NULL, 0};
    mg_deployment_t *out[8];
    int nout;
    for (int n = 0; n <= 4; n++) {
        int rc = pf_select(vm, FALLBACK, &ctx, c, n, out, &nout);
        if (n == 0) {
            CHECK(rc != MG_ERROR && nout == 0, "empty: rc %d nout %d", rc, nout);
            continue;
        }
        CHECK(rc == MG_OK && nout == n, "n=%d: rc %d nout %d", n, rc, nout);
        for (int i = 0; i < nout && i < n; i++) {
            CHECK(out[i] == c[i], "n=%d position %d", n, i);
        }
    }
    CHECK_INT(pf_errors(vm, FALLBACK), 0);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

/* ---- wildcard/litellm ---- */

static mg_gw_t wc_gw;
static mg_http_req_t wc_hr;

/* every pattern deployment, most specific first (as mg_route_wildcard builds them) */
static int
wc_cands(mg_snapshot_t *s, mg_deployment_t **c)
{
    int n = 0;
    for (size_t i = 0; i < s->nwildcards; i++) {
        for (size_t j = 0; j < s->wildcards[i]->ndeps; j++) {
            c[n++] = s->wildcards[i]->deps[j];
        }
    }
    return n;
}

static void
wc_expect(mg_lua_vm_t *vm, mg_snapshot_t *s, const char *model, const char *const *want, int nwant)
{
    mg_deployment_t *c[32], *out[32];
    int n = wc_cands(s, c);
    mg_lua_ctx_t ctx = {model, NULL, false, 1, 10, NULL, 0, NULL, NULL, 0};
    int nout = -1;
    int rc = pf_select(vm, WILDCARD, &ctx, c, n, out, &nout);
    if (nwant == 0) {
        CHECK(rc != MG_ERROR && nout == 0, "%s: expected no match, rc %d nout %d", model, rc, nout);
        return;
    }
    CHECK(rc == MG_OK && nout == nwant, "%s: rc %d, %d matches, expected %d", model, rc, nout, nwant);
    for (int i = 0; i < nout && i < nwant; i++) {
        CHECK(strcmp(out[i]->id, want[i]) == 0, "%s: match %d is %s, expected %s", model, i,
              out[i]->id, want[i]);
    }
}

/* mg_route_wildcard through a minimal request, and mg_registry_wildcard, agree */
static void
wc_route(mg_snapshot_t *s, mg_lua_vm_t *vm, const char *name, const char *want_group,
         const char *want_matched)
{
    mg_gw_snapext_t ext = {&wc_gw, vm};
    s->ext = &ext;
    mg_request_t r;
    memset(&r, 0, sizeof(r));
    r.snap = s;
    r.gw = &wc_gw;
    r.hr = &wc_hr;
    char m1[700] = "", m2[700] = "";
    uint64_t perr = wc_gw.policy_errors;
    mg_group_t *g1 = mg_route_wildcard(&r, name, m1, sizeof(m1));
    s->ext = NULL;
    mg_group_t *g2 = mg_registry_wildcard(s, name, strlen(name), m2, sizeof(m2));
    CHECK(wc_gw.policy_errors == perr, "%s: the wildcard policy failed", name);
    if (want_group == NULL) {
        CHECK(g1 == NULL, "%s: mg_route_wildcard matched %s", name, g1 ? g1->name : "");
        CHECK(g2 == NULL, "%s: mg_registry_wildcard matched %s", name, g2 ? g2->name : "");
        return;
    }
    CHECK(g1 != NULL && strcmp(g1->name, want_group) == 0, "%s: mg_route_wildcard gave %s, expected %s",
          name, g1 ? g1->name : "(none)", want_group);
    CHECK(g2 != NULL && strcmp(g2->name, want_group) == 0, "%s: mg_registry_wildcard gave %s, expected %s",
          name, g2 ? g2->name : "(none)", want_group);
    CHECK_STR(m1, want_matched);
    CHECK_STR(m2, want_matched);
}

static void
test_wildcard(void)
{
    MG_T_CASE("wildcard/litellm: matching patterns, most specific first");
    const char *y =
        "model_list:\n"
        "  - {model_name: \"*\", litellm_params: {model: \"openai/*\", api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc-star}}\n"
        "  - {model_name: \"openai/*\", litellm_params: {model: \"openai/*\", api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc-openai}}\n"
        "  - {model_name: \"openai/gpt-4*\", litellm_params: {model: \"openai/gpt-4*\", api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc-gpt4}}\n"
        "  - {model_name: \"openai/gpt-4*\", litellm_params: {model: \"openai/gpt-4*\", api_base: \"http://127.0.0.1:8/v1\", api_key: k2}, model_info: {id: wc-gpt4-2}}\n"
        "  - {model_name: exact, litellm_params: {model: openai/exact, api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc-exact}}\n";
    mg_snapshot_t *s = pf_snap(y, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    {
        const char *w[] = {"wc-gpt4", "wc-gpt4-2", "wc-openai", "wc-star"};
        wc_expect(vm, s, "openai/gpt-4o", w, 4);
    }
    {
        const char *w[] = {"wc-openai", "wc-star"};
        wc_expect(vm, s, "openai/o1-mini", w, 2);
    }
    {
        const char *w[] = {"wc-star"};
        wc_expect(vm, s, "mistral/large", w, 1);
        wc_expect(vm, s, "xopenai/gpt-4o", w, 1); /* anchored at the start */
    }
    CHECK_INT(pf_errors(vm, WILDCARD), 0);
    wc_route(s, vm, "openai/gpt-4o", "openai/gpt-4*", "openai/gpt-4o");
    wc_route(s, vm, "openai/o3", "openai/*", "openai/o3");
    wc_route(s, vm, "gpt-4o", "*", "gpt-4o"); /* "*" matches the bare name first */
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);

    MG_T_CASE("wildcard: no match, and the provider/name second lookup");
    const char *y2 =
        "model_list:\n"
        "  - {model_name: \"openai/*\", litellm_params: {model: \"openai/*\", api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc2-openai}}\n"
        "  - {model_name: \"openai/gpt-4*\", litellm_params: {model: \"openai/gpt-4*\", api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc2-gpt4}}\n"
        "  - {model_name: \"anthropic/claude-*\", litellm_params: {model: \"anthropic/claude-*\", api_base: \"http://127.0.0.1:9/v1\", api_key: k}, model_info: {id: wc2-claude}}\n";
    s = pf_snap(y2, NULL);
    vm = pf_vm(s, 5, 64);
    wc_expect(vm, s, "mistral/large", NULL, 0);
    wc_expect(vm, s, "gpt-4o", NULL, 0); /* the policy sees the name as given */
    {
        const char *w[] = {"wc2-claude"};
        wc_expect(vm, s, "anthropic/claude-3-opus", w, 1);
    }
    /* the gateway tries provider/name for a bare name */
    wc_route(s, vm, "gpt-4o", "openai/gpt-4*", "openai/gpt-4o");
    wc_route(s, vm, "gpt-3.5-turbo", "openai/*", "openai/gpt-3.5-turbo");
    wc_route(s, vm, "claude-3-haiku", "anthropic/claude-*", "anthropic/claude-3-haiku");
    wc_route(s, vm, "mistral/large", NULL, NULL);
    wc_route(s, vm, "totally-unknown-model", NULL, NULL);
    /* captures substituted into litellm_params.model */
    char *um = mg_registry_wildcard_model(pf_dep(s, "wc2-gpt4"), "openai/gpt-4o-mini");
    CHECK_STR(um, "openai/gpt-4o-mini");
    free(um);
    CHECK_INT(pf_errors(vm, WILDCARD), 0);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

/* ---- the policies the config names ---- */

static void
test_strategy_mapping(void)
{
    MG_T_CASE("routing_strategy values map to the built-ins");
    static const char *const map[][2] = {
        {"simple-shuffle", "simple_shuffle"},        {"least-busy", "least_busy"},
        {"latency-based-routing", "latency_based"},  {"usage-based-routing-v2", "usage_based_v2"},
        {"usage-based-routing", "usage_based_v2"},   {"cost-based-routing", "cost_based"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        char router[128];
        snprintf(router, sizeof(router), "{routing_strategy: %s}", map[i][0]);
        const char *ids[] = {"map-a"};
        mg_snapshot_t *s = group_snap(router, "map", 1, ids, NULL, NULL);
        mg_lua_vm_t *vm = pf_vm(s, 5, 64);
        json_t *all;
        json_t *p = pf_pol(vm, ROUTING, &all);
        CHECK(strcmp(json_string_value(json_object_get(p, "name")), map[i][1]) == 0,
              "%s -> %s, expected %s", map[i][0], json_string_value(json_object_get(p, "name")), map[i][1]);
        CHECK_STR(json_string_value(json_object_get(p, "origin")), "builtin");
        CHECK(json_is_true(json_object_get(p, "loaded")));
        json_decref(all);
        mg_lua_vm_destroy(vm);
        mg_snapshot_unref(s);
    }
    /* no strategy: simple_shuffle, ordered, litellm */
    const char *ids[] = {"map-b"};
    mg_snapshot_t *s = group_snap(NULL, "map2", 1, ids, NULL, NULL);
    mg_lua_vm_t *vm = pf_vm(s, 5, 64);
    json_t *all = mg_lua_vm_state(vm);
    json_t *pl = json_object_get(all, "policies");
    CHECK_STR(json_string_value(json_object_get(json_array_get(pl, 0), "name")), "simple_shuffle");
    CHECK_STR(json_string_value(json_object_get(json_array_get(pl, 1), "name")), "ordered");
    CHECK_STR(json_string_value(json_object_get(json_array_get(pl, 2), "name")), "litellm");
    CHECK(strlen(mg_lua_vm_version(vm)) == 12, "policy version \"%s\"", mg_lua_vm_version(vm));
    json_decref(all);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pf_init();
    for (int i = 0; i < N_BUILTINS; i++) {
        test_routing_common(ROUTING_BUILTINS[i]);
    }
    test_simple_shuffle_weights(false);
    test_simple_shuffle_weights(true);
    test_least_busy(false);
    test_least_busy(true);
    test_latency_based();
    test_usage_based();
    test_cost_based();
    test_fallback_ordered();
    test_wildcard();
    test_strategy_mapping();
    return mg_test_done();
}
