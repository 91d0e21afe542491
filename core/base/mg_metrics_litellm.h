/*
 * mg_metrics_litellm.h -- the metric families moongate exposes on /metrics:
 * LiteLLM's (exact names, label names and histogram buckets of its
 * prometheus.py) and moongate's own.
 *
 * Owns: the family table and the family ids (mg_mf[]), set once by the master
 * before fork.  Does not own: the series (mg_metrics.c).
 *
 * Label values are taken by name from one mg_ml_values_t that the caller fills
 * once per request (as LiteLLM's UserAPIKeyLabelValues + prometheus_label_factory):
 * each family picks the labels it declares, in its own order.  LiteLLM writes an
 * absent value as the string "None" (prometheus_client's str(None)); pass "None"
 * where byte-for-byte dashboards matter, NULL gives "".
 */
#ifndef MG_METRICS_LITELLM_H
#define MG_METRICS_LITELLM_H

#include "mg_metrics.h"

/* Every label name any family uses (LiteLLM's UserAPIKeyLabelNames, then moongate's). */
typedef enum {
    MG_ML_END_USER = 0,
    MG_ML_USER,
    MG_ML_USER_EMAIL,
    MG_ML_HASHED_API_KEY,
    MG_ML_API_KEY_ALIAS,
    MG_ML_TEAM,
    MG_ML_TEAM_ALIAS,
    MG_ML_REQUESTED_MODEL,
    MG_ML_MODEL,                /* "model" (LiteLLM's v1 model name label) */
    MG_ML_LITELLM_MODEL_NAME,   /* "litellm_model_name" (v2) */
    MG_ML_MODEL_GROUP,
    MG_ML_MODEL_ID,
    MG_ML_API_BASE,
    MG_ML_API_PROVIDER,
    MG_ML_EXCEPTION_STATUS,
    MG_ML_EXCEPTION_CLASS,
    MG_ML_STATUS_CODE,
    MG_ML_FALLBACK_MODEL,
    MG_ML_ROUTE,
    MG_ML_CLIENT_IP,
    MG_ML_USER_AGENT,
    MG_ML_POLICY,               /* moongate: policy name */
    MG_ML_KIND,                 /* moongate: policy kind, reload kind, hint kind */
    MG_ML_STATE,                /* moongate: upstream connection state */
    MG_ML__COUNT
} mg_ml_label_t;

/* Label values for one event; borrowed strings, NULL = "". */
typedef struct {
    const char *v[MG_ML__COUNT];
} mg_ml_values_t;

typedef enum {
    /* proxy level */
    MG_MF_PROXY_TOTAL_REQUESTS = 0,
    MG_MF_PROXY_FAILED_REQUESTS,
    MG_MF_REQUEST_TOTAL_LATENCY,
    MG_MF_LLM_API_LATENCY,
    MG_MF_LLM_API_TTFT,
    MG_MF_OVERHEAD_LATENCY,
    MG_MF_INPUT_TOKENS,
    MG_MF_OUTPUT_TOKENS,
    MG_MF_TOTAL_TOKENS,
    MG_MF_SPEND,
    MG_MF_IN_FLIGHT_REQUESTS,
    /* deployments */
    MG_MF_DEPLOYMENT_STATE,
    MG_MF_DEPLOYMENT_SUCCESS_RESPONSES,
    MG_MF_DEPLOYMENT_FAILURE_RESPONSES,
    MG_MF_DEPLOYMENT_TOTAL_REQUESTS,
    MG_MF_DEPLOYMENT_LATENCY_PER_OUTPUT_TOKEN,
    MG_MF_DEPLOYMENT_COOLED_DOWN,
    MG_MF_DEPLOYMENT_SUCCESSFUL_FALLBACKS,
    MG_MF_DEPLOYMENT_FAILED_FALLBACKS,
    MG_MF_REMAINING_REQUESTS,
    MG_MF_REMAINING_TOKENS,
    /* budgets (once keys and teams exist) */
    MG_MF_REMAINING_API_KEY_BUDGET,
    MG_MF_API_KEY_MAX_BUDGET,
    MG_MF_API_KEY_BUDGET_REMAINING_HOURS,
    MG_MF_REMAINING_TEAM_BUDGET,
    MG_MF_TEAM_MAX_BUDGET,
    MG_MF_TEAM_BUDGET_REMAINING_HOURS,
    /* moongate's own */
    MG_MF_REGISTRY_VERSION,
    MG_MF_SNAPSHOT_AGE_SECONDS,
    MG_MF_LIVE_SNAPSHOTS,
    MG_MF_POLICY_ERRORS,
    MG_MF_POLICY_BUDGET_HITS,
    MG_MF_STORE_UP,
    MG_MF_HINTS_UP,
    MG_MF_UPSTREAM_CONNECTIONS,
    MG_MF_RELOADS_REFUSED,
    MG_MF_SOFT_BUDGET_CROSSED,
    MG_MF_OTEL_SPANS_DROPPED,
    MG_MF__COUNT
} mg_mf_t;

/* LiteLLM's LATENCY_BUCKETS (+Inf last), for tests and the README. */
extern const double mg_ml_latency_buckets[];
extern const int mg_ml_latency_nbuckets;

/* Family ids (mg_metrics) of the table above; -1 before mg_metrics_litellm_declare(). */
extern int mg_mf[MG_MF__COUNT];

/* Master, after mg_metrics_init() and before fork: declares every family in table order.
 * latency_buckets overrides LiteLLM's latency buckets (litellm_settings
 * prometheus_latency_buckets; borrowed, must stay alive); NULL = LiteLLM's default.
 * MG_OK, or MG_ERROR with err set. */
int mg_metrics_litellm_declare(const double *latency_buckets, int nbuckets, mg_err_t *err);

/* Resolves family f's series from the values its labels name (see mg_metric_series()). */
mg_metric_t *mg_ml_series(mg_mf_t f, const mg_ml_values_t *vals);
/* The same for a given worker of a per-worker family. */
mg_metric_t *mg_ml_series_worker(mg_mf_t f, int worker, const mg_ml_values_t *vals);

/* "end_user", "hashed_api_key", ... */
const char *mg_ml_label_name(mg_ml_label_t l);
/* moongate_reloads_refused_total{kind} += 1 ("config", "registry", "policy", "cost_map"). */
void mg_ml_refused(const char *kind);

#endif
