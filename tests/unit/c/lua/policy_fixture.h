/*
 * policy_fixture.h -- shared set-up for the policy unit tests (test_policies.c,
 * test_sandbox.c): shared memory and stats, snapshots built from YAML text,
 * policy states, and small helpers to call a policy and inspect its state.
 *
 * Stats slots are keyed by deployment id and live for the whole program, so
 * every snapshot built here gets its deployments' counters zeroed first.
 * Header-only: each test program is one translation unit.
 */
#ifndef MG_POLICY_FIXTURE_H
#define MG_POLICY_FIXTURE_H

#include "mg_test.h"

#include "base/mg_buf.h"
#include "base/mg_shm.h"
#include "base/mg_time.h"
#include "lua/mg_lua.h"
#include "registry/mg_registry.h"
#include "registry/mg_stats.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <time.h>

static inline void
pf_init(void)
{
    if (mg_shm_create(1, 16 << 20) != 0 || mg_stats_init(4096) != 0) {
        printf("cannot create the shared memory for stats\n");
        exit(2);
    }
}

static inline int64_t
pf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Zeroes the per-deployment counters (keeps the slot's identity). */
static inline void
pf_zero_stat(mg_stat_t *st)
{
    if (st == NULL) {
        return;
    }
    st->inflight = 0;
    st->cooldown_status = 0;
    st->cooldown_until_ms = 0;
    st->cooldown_time_ms = 0;
    st->minute = mg_time_real_ms() / 60000;
    st->rpm = 0;
    st->tpm = 0;
    st->fails = 0;
    st->successes = 0;
    st->total_requests = 0;
    st->total_failures = 0;
    st->latency = 0;
    st->ttft = 0;
    st->latency_n = st->latency_pos = 0;
    st->ttft_n = st->ttft_pos = 0;
    memset(st->latency_samples, 0, sizeof(st->latency_samples));
    memset(st->ttft_samples, 0, sizeof(st->ttft_samples));
    st->last_used_ms = 0;
}

/*
 * A snapshot from config YAML and (optionally) store policies
 * ({"routing": {"source": "..."}, ...}; borrowed).  Exits on failure: every
 * config here is meant to load.
 */
static inline mg_snapshot_t *
pf_snap(const char *yaml, json_t *store_policies)
{
    mg_config_opts_t o = {NULL, true};
    mg_config_t *cfg = NULL;
    mg_err_t err;
    if (mg_config_load_text(yaml, strlen(yaml), "<test>", &o, &cfg, &err) != MG_OK) {
        printf("FATAL: config did not load: %s\n%s\n", err.msg, yaml);
        exit(2);
    }
    mg_snapshot_t *s = NULL;
    if (mg_registry_build(cfg, NULL, store_policies, 1, NULL, &s, &err) != MG_OK) {
        printf("FATAL: snapshot did not build: %s\n", err.msg);
        exit(2);
    }
    mg_config_unref(cfg);
    for (size_t i = 0; i < s->ndeps; i++) {
        s->deps[i].stats_slot = mg_stats_slot(s->deps[i].id);
        pf_zero_stat(mg_stats_get(s->deps[i].stats_slot));
    }
    return s;
}

/* {"<kind>": {"source": src}} (new reference). */
static inline json_t *
pf_store1(const char *kind, const char *src)
{
    return json_pack("{s:{s:s}}", kind, "source", src);
}

static inline mg_lua_vm_t *
pf_vm(mg_snapshot_t *s, int budget_ms, int memory_mb)
{
    mg_lua_limits_t lim = {budget_ms, memory_mb};
    mg_err_t err;
    mg_lua_vm_t *vm = mg_lua_vm_create(s, &lim, &err);
    if (vm == NULL) {
        printf("FATAL: mg_lua_vm_create failed: %s\n", err.msg);
        exit(2);
    }
    return vm;
}

static inline mg_group_t *
pf_group(mg_snapshot_t *s, const char *name)
{
    mg_group_t *g = mg_registry_group(s, name, strlen(name));
    if (g == NULL) {
        printf("FATAL: no group %s\n", name);
        exit(2);
    }
    return g;
}

static inline mg_deployment_t *
pf_dep(mg_snapshot_t *s, const char *id)
{
    mg_deployment_t *d = mg_registry_by_id(s, id);
    if (d == NULL) {
        printf("FATAL: no deployment %s\n", id);
        exit(2);
    }
    return d;
}

static inline mg_stat_t *
pf_stat(mg_snapshot_t *s, const char *id)
{
    return mg_stats_get(pf_dep(s, id)->stats_slot);
}

static char pf_reason[512];

static inline int
pf_select(mg_lua_vm_t *vm, mg_policy_kind_t kind, const mg_lua_ctx_t *ctx, mg_deployment_t *const *c,
          int n, mg_deployment_t **out, int *nout)
{
    pf_reason[0] = '\0';
    return mg_lua_vm_select(vm, kind, ctx, c, n, out, nout, pf_reason, sizeof(pf_reason));
}

/* A routing ctx for group g. */
static inline mg_lua_ctx_t
pf_ctx(const char *group)
{
    mg_lua_ctx_t c = {group, group, false, 1, 10, NULL, 0, NULL, NULL, 0};
    return c;
}

/* Each of out[] is one of cands[] and none repeats. */
static inline bool
pf_is_subset(mg_deployment_t *const *cands, int n, mg_deployment_t *const *out, int nout)
{
    if (nout < 0 || nout > n) {
        return false;
    }
    for (int i = 0; i < nout; i++) {
        bool found = false;
        for (int j = 0; j < n && !found; j++) {
            found = cands[j] == out[i];
        }
        for (int k = 0; k < i && found; k++) {
            found = out[k] != out[i];
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

/* policies[kind] of mg_lua_vm_state (new reference to the whole state in *all). */
static inline json_t *
pf_pol(mg_lua_vm_t *vm, mg_policy_kind_t kind, json_t **all)
{
    *all = mg_lua_vm_state(vm);
    return json_array_get(json_object_get(*all, "policies"), (size_t) kind);
}

static inline long long
pf_errors(mg_lua_vm_t *vm, mg_policy_kind_t kind)
{
    json_t *all;
    json_t *p = pf_pol(vm, kind, &all);
    long long e = (long long) json_integer_value(json_object_get(p, "errors"));
    json_decref(all);
    return e;
}

/* A string member of a policy's state ("" when absent), valid until the next call. */
static inline const char *
pf_state_str(mg_lua_vm_t *vm, mg_policy_kind_t kind, const char *key)
{
    static char buf[1024];
    json_t *all;
    json_t *p = pf_pol(vm, kind, &all);
    const char *s = json_string_value(json_object_get(p, key));
    snprintf(buf, sizeof(buf), "%s", s ? s : "");
    json_decref(all);
    return buf;
}

static inline const char *
pf_last_error(mg_lua_vm_t *vm, mg_policy_kind_t kind)
{
    return pf_state_str(vm, kind, "last_error");
}

static inline const char *
pf_load_error(mg_lua_vm_t *vm, mg_policy_kind_t kind)
{
    return pf_state_str(vm, kind, "load_error");
}

static inline bool
pf_state_bool(mg_lua_vm_t *vm, mg_policy_kind_t kind, const char *key)
{
    json_t *all;
    json_t *p = pf_pol(vm, kind, &all);
    bool b = json_is_true(json_object_get(p, key));
    json_decref(all);
    return b;
}

static inline bool
pf_jit(mg_lua_vm_t *vm)
{
    json_t *all = mg_lua_vm_state(vm);
    bool b = json_is_true(json_object_get(all, "jit"));
    json_decref(all);
    return b;
}

/* stderr capture, to check what the core logs */
static int pf_saved_stderr = -1;
static char pf_capture_path[512];

static inline void
pf_capture_begin(void)
{
    snprintf(pf_capture_path, sizeof(pf_capture_path), "%s/stderr.txt", mg_t_tmpdir());
    fflush(stderr);
    pf_saved_stderr = dup(STDERR_FILENO);
    int fd = open(pf_capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || pf_saved_stderr < 0) {
        perror("capture");
        exit(2);
    }
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Restores stderr; returns what was written (static buffer). */
static inline const char *
pf_capture_end(void)
{
    static char buf[16384];
    fflush(stderr);
    dup2(pf_saved_stderr, STDERR_FILENO);
    close(pf_saved_stderr);
    pf_saved_stderr = -1;
    buf[0] = '\0';
    FILE *f = fopen(pf_capture_path, "rb");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    /* echo it, so the test's own output still shows the core's log lines */
    fputs(buf, stderr);
    return buf;
}

/*
 * Binomial tolerance: |count - n*p| <= k * sqrt(n*p*(1-p)).  With k = 5 a
 * correct implementation fails about once in 1.7 million runs per check.
 */
static inline bool
pf_binomial_ok(long count, long n, double p, double k, double *lo, double *hi)
{
    double mean = (double) n * p;
    double sd = sqrt((double) n * p * (1.0 - p));
    *lo = mean - k * sd;
    *hi = mean + k * sd;
    return (double) count >= *lo && (double) count <= *hi;
}

#define CHECK_BINOMIAL(count, n, p)                                                                \
    do {                                                                                           \
        double pf_lo, pf_hi;                                                                       \
        long pf_c = (long) (count);                                                                \
        if (pf_binomial_ok(pf_c, (long) (n), (p), 5.0, &pf_lo, &pf_hi)) {                          \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s = %ld of %ld draws, expected p=%.4f: outside [%.0f, %.0f] (5 sd)",    \
                         #count, pf_c, (long) (n), (double) (p), pf_lo, pf_hi);                    \
        }                                                                                          \
    } while (0)

#endif
