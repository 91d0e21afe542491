/*
 * metrics_bench.c -- cost of the metrics hot path (reports; never asserts).
 *
 * Declares the LiteLLM table (mg_metrics_litellm.c) in a fresh shared table and times,
 * in ns per call: an increment through a resolved handle, a histogram observation, a
 * spend add, a gauge add, and the resolution of an existing series with LiteLLM's 13
 * request labels (hash + probe + compare, no allocation); then the same increment from
 * two processes on one series (cache-line contention across cores).
 *   metrics_bench [calls=5000000]
 *   metrics_bench --dump      prints an exposition of every family with sample series
 */
#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "base/mg_metrics.h"
#include "base/mg_metrics_litellm.h"
#include "base/mg_shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

static void
fill(mg_ml_values_t *lv)
{
    memset(lv, 0, sizeof(*lv));
    lv->v[MG_ML_END_USER] = "None";
    lv->v[MG_ML_HASHED_API_KEY] = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b";
    lv->v[MG_ML_API_KEY_ALIAS] = "prod-key";
    lv->v[MG_ML_REQUESTED_MODEL] = "gpt-4o";
    lv->v[MG_ML_MODEL] = "gpt-4o";
    lv->v[MG_ML_LITELLM_MODEL_NAME] = "openai/gpt-4o";
    lv->v[MG_ML_MODEL_GROUP] = "gpt-4o";
    lv->v[MG_ML_MODEL_ID] = "a88e943156800c1d2e8644ba8d215bac6155cd8b1314c331c6ea4154599ed8a6";
    lv->v[MG_ML_API_BASE] = "https://api.openai.com/v1";
    lv->v[MG_ML_API_PROVIDER] = "openai";
    lv->v[MG_ML_STATUS_CODE] = "200";
    lv->v[MG_ML_ROUTE] = "/v1/chat/completions";
    lv->v[MG_ML_CLIENT_IP] = "10.1.2.3";
    lv->v[MG_ML_USER_AGENT] = "OpenAI/Python 1.40.0";
    lv->v[MG_ML_TEAM] = "team-a";
    lv->v[MG_ML_TEAM_ALIAS] = "Team A";
    lv->v[MG_ML_USER] = "user-1";
    lv->v[MG_ML_USER_EMAIL] = "user-1@example.com";
    lv->v[MG_ML_EXCEPTION_STATUS] = "429";
    lv->v[MG_ML_EXCEPTION_CLASS] = "Openai.RateLimitError";
    lv->v[MG_ML_FALLBACK_MODEL] = "claude-3-5-sonnet";
    lv->v[MG_ML_POLICY] = "least_busy";
    lv->v[MG_ML_KIND] = "routing";
    lv->v[MG_ML_STATE] = "idle";
}

static void
dump(void)
{
    mg_ml_values_t lv;
    fill(&lv);
    for (int f = 0; f < MG_MF__COUNT; f++) {
        mg_metric_t *m = mg_ml_series_worker((mg_mf_t) f, 0, &lv);
        if (m == NULL) {
            continue;
        }
        if (m->kind == MG_METRIC_K_HISTOGRAM) {
            mg_metric_observe(m, 0.42);
        } else if (m->kind == MG_METRIC_K_GAUGE) {
            mg_metric_set(m, 1);
        } else {
            mg_metric_inc(m, 1);
        }
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_metrics_expose(&b);
    fwrite(mg_buf_head(&b), 1, mg_buf_len(&b), stdout);
    mg_buf_free(&b);
}

#define TIME(label, calls, stmt)                                                                   \
    do {                                                                                           \
        double t0 = now_ns();                                                                      \
        for (long i_ = 0; i_ < (calls); i_++) {                                                    \
            stmt;                                                                                  \
        }                                                                                          \
        double dt = now_ns() - t0;                                                                 \
        printf("%-52s %8.1f ns/op\n", label, dt / (double) (calls));                               \
    } while (0)

int
main(int argc, char **argv)
{
    bool want_dump = argc > 1 && strcmp(argv[1], "--dump") == 0;
    long calls = argc > 1 && !want_dump ? atol(argv[1]) : 5000000;
    mg_err_t err;
    if (mg_shm_create(2, 16 << 20) != 0 || mg_metrics_init(4096, 0, &err) != MG_OK ||
        mg_metrics_litellm_declare(NULL, 0, &err) != MG_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    if (want_dump) {
        dump();
        return 0;
    }
    mg_ml_values_t lv;
    fill(&lv);
    /* a few hundred other series, so probes see a table in use */
    char user[32];
    for (int i = 0; i < 300; i++) {
        mg_ml_values_t o = lv;
        snprintf(user, sizeof(user), "end-user-%d", i);
        o.v[MG_ML_END_USER] = user;
        mg_metric_inc(mg_ml_series(MG_MF_PROXY_TOTAL_REQUESTS, &o), 1);
    }
    mg_metric_t *req = mg_ml_series(MG_MF_PROXY_TOTAL_REQUESTS, &lv);
    mg_metric_t *lat = mg_ml_series(MG_MF_REQUEST_TOTAL_LATENCY, &lv);
    mg_metric_t *spend = mg_ml_series(MG_MF_SPEND, &lv);
    mg_metrics_set_worker(0);
    mg_metric_t *infl = mg_ml_series(MG_MF_IN_FLIGHT_REQUESTS, &lv);
    volatile double x = 0.137;
    printf("metrics hot path, %ld calls each (one process, table of %d series)\n", calls, 300 + 4);
    TIME("mg_metric_inc (counter, resolved handle)", calls, mg_metric_inc(req, 1));
    TIME("mg_metric_observe (36 LiteLLM buckets)", calls, mg_metric_observe(lat, x));
    TIME("mg_metric_add (spend, fixed point 1e-9 USD)", calls, mg_metric_add(spend, 0.0000125));
    TIME("mg_metric_gauge_add (in-flight, CAS on a double)", calls, mg_metric_gauge_add(infl, 1));
    long rcalls = calls / 10;
    TIME("mg_ml_series (existing, 13 labels, ~240 bytes)", rcalls,
         mg_metric_inc(mg_ml_series(MG_MF_PROXY_TOTAL_REQUESTS, &lv), 1));
    TIME("mg_ml_series (existing, 4 labels: deployment_state)", rcalls,
         mg_metric_set(mg_ml_series(MG_MF_DEPLOYMENT_STATE, &lv), 0));

    /* two processes on one counter: each increment moves the cache line between cores */
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 0; i < calls; i++) {
            mg_metric_inc(req, 1);
        }
        _exit(0);
    }
    TIME("mg_metric_inc, same series from 2 processes", calls, mg_metric_inc(req, 1));
    int st;
    waitpid(pid, &st, 0);
    double total = mg_metric_value(req);
    printf("(counter after the runs: %.0f; expected %.0f)\n", total,
           3.0 * (double) calls + (double) rcalls);
    return 0;
}
