/*
 * mg_metrics_litellm.c -- the table of families moongate exposes (see mg_metrics_litellm.h).
 *
 * LiteLLM's names, label names and help texts come from BerriAI/litellm:
 *   P = litellm/integrations/prometheus.py, PrometheusLogger.__init__ (the family, its type,
 *       help and buckets), read at commit 002de3dd1f256b09f77c7fb3f829d4942d4bf2f0;
 *   T = litellm/types/integrations/prometheus.py, PrometheusMetricLabels.<name> (the label
 *       names, in order) and LATENCY_BUCKETS, read at commit ed19250bf037d94d5c76af1a61eeb1c08ab269c1;
 *   M = litellm/proxy/middleware/in_flight_requests_middleware.py (litellm_in_flight_requests),
 *       commit 03500799bee3bd6d544d8e9f17ee961026595faf.
 * Counters are declared without "_total"; prometheus_client, and so mg_metrics, add it.
 * LiteLLM observes every latency in seconds (the overhead one too, despite its help text).
 */
#include "mg_metrics_litellm.h"

#include "mg_err.h"

#include <math.h>
#include <stddef.h>

#define E MG_ML__COUNT /* ends a label list */

static const char *const mg_ml_names[MG_ML__COUNT] = {
    [MG_ML_END_USER] = "end_user",
    [MG_ML_USER] = "user",
    [MG_ML_USER_EMAIL] = "user_email",
    [MG_ML_HASHED_API_KEY] = "hashed_api_key",
    [MG_ML_API_KEY_ALIAS] = "api_key_alias",
    [MG_ML_TEAM] = "team",
    [MG_ML_TEAM_ALIAS] = "team_alias",
    [MG_ML_REQUESTED_MODEL] = "requested_model",
    [MG_ML_MODEL] = "model",
    [MG_ML_LITELLM_MODEL_NAME] = "litellm_model_name",
    [MG_ML_MODEL_GROUP] = "model_group",
    [MG_ML_MODEL_ID] = "model_id",
    [MG_ML_API_BASE] = "api_base",
    [MG_ML_API_PROVIDER] = "api_provider",
    [MG_ML_EXCEPTION_STATUS] = "exception_status",
    [MG_ML_EXCEPTION_CLASS] = "exception_class",
    [MG_ML_STATUS_CODE] = "status_code",
    [MG_ML_FALLBACK_MODEL] = "fallback_model",
    [MG_ML_ROUTE] = "route",
    [MG_ML_CLIENT_IP] = "client_ip",
    [MG_ML_USER_AGENT] = "user_agent",
    [MG_ML_POLICY] = "policy",
    [MG_ML_KIND] = "kind",
    [MG_ML_STATE] = "state",
};

/* T: LATENCY_BUCKETS */
const double mg_ml_latency_buckets[] = {
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0,
    3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0,
    9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0, INFINITY,
};
const int mg_ml_latency_nbuckets = (int) (sizeof(mg_ml_latency_buckets) / sizeof(double));

/* prometheus_client's Histogram.DEFAULT_BUCKETS: P declares litellm_deployment_latency_per_output_token
 * without buckets */
static const double mg_ml_default_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INFINITY,
};

/* ---- label lists (T, PrometheusMetricLabels.<family>) ---- */

static const int mg_ml_l_proxy_total[] = {
    MG_ML_END_USER, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_REQUESTED_MODEL, MG_ML_TEAM,
    MG_ML_TEAM_ALIAS, MG_ML_USER, MG_ML_STATUS_CODE, MG_ML_USER_EMAIL, MG_ML_ROUTE,
    MG_ML_CLIENT_IP, MG_ML_USER_AGENT, MG_ML_MODEL_ID, E};
static const int mg_ml_l_proxy_failed[] = {
    MG_ML_END_USER, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_REQUESTED_MODEL, MG_ML_TEAM,
    MG_ML_TEAM_ALIAS, MG_ML_USER, MG_ML_USER_EMAIL, MG_ML_EXCEPTION_STATUS, MG_ML_EXCEPTION_CLASS,
    MG_ML_ROUTE, MG_ML_CLIENT_IP, MG_ML_USER_AGENT, MG_ML_MODEL_ID, E};
static const int mg_ml_l_request_total_latency[] = {
    MG_ML_END_USER, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_REQUESTED_MODEL, MG_ML_TEAM,
    MG_ML_TEAM_ALIAS, MG_ML_USER, MG_ML_MODEL, MG_ML_MODEL_ID, E};
/* litellm_llm_api_latency_metric and litellm_llm_api_time_to_first_token_metric */
static const int mg_ml_l_llm_api_latency[] = {
    MG_ML_MODEL, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_TEAM, MG_ML_TEAM_ALIAS,
    MG_ML_REQUESTED_MODEL, MG_ML_END_USER, MG_ML_USER, MG_ML_MODEL_ID, E};
/* litellm_overhead_latency_metric, litellm_remaining_requests_metric, _tokens_metric */
static const int mg_ml_l_overhead[] = {
    MG_ML_MODEL_GROUP, MG_ML_API_PROVIDER, MG_ML_API_BASE, MG_ML_LITELLM_MODEL_NAME,
    MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_MODEL_ID, E};
/* litellm_input_tokens_metric, litellm_output_tokens_metric, litellm_total_tokens_metric */
static const int mg_ml_l_tokens[] = {
    MG_ML_END_USER, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_MODEL, MG_ML_TEAM,
    MG_ML_TEAM_ALIAS, MG_ML_USER, MG_ML_USER_EMAIL, MG_ML_REQUESTED_MODEL, MG_ML_MODEL_ID, E};
static const int mg_ml_l_spend[] = {
    MG_ML_END_USER, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_MODEL, MG_ML_TEAM,
    MG_ML_TEAM_ALIAS, MG_ML_USER, MG_ML_USER_EMAIL, MG_ML_CLIENT_IP, MG_ML_USER_AGENT,
    MG_ML_MODEL_ID, E};
static const int mg_ml_l_none[] = {E};
static const int mg_ml_l_deployment_state[] = {
    MG_ML_LITELLM_MODEL_NAME, MG_ML_MODEL_ID, MG_ML_API_BASE, MG_ML_API_PROVIDER, E};
/* litellm_deployment_total_requests; litellm_deployment_success_responses is the same list */
static const int mg_ml_l_deployment_total[] = {
    MG_ML_REQUESTED_MODEL, MG_ML_LITELLM_MODEL_NAME, MG_ML_MODEL_ID, MG_ML_API_BASE,
    MG_ML_API_PROVIDER, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_TEAM, MG_ML_TEAM_ALIAS,
    MG_ML_CLIENT_IP, MG_ML_USER_AGENT, E};
static const int mg_ml_l_deployment_failure[] = {
    MG_ML_REQUESTED_MODEL, MG_ML_LITELLM_MODEL_NAME, MG_ML_MODEL_ID, MG_ML_API_BASE,
    MG_ML_API_PROVIDER, MG_ML_EXCEPTION_STATUS, MG_ML_EXCEPTION_CLASS, MG_ML_HASHED_API_KEY,
    MG_ML_API_KEY_ALIAS, MG_ML_TEAM, MG_ML_TEAM_ALIAS, MG_ML_CLIENT_IP, MG_ML_USER_AGENT, E};
static const int mg_ml_l_latency_per_token[] = {
    MG_ML_LITELLM_MODEL_NAME, MG_ML_MODEL_ID, MG_ML_API_BASE, MG_ML_API_PROVIDER,
    MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, MG_ML_TEAM, MG_ML_TEAM_ALIAS, E};
static const int mg_ml_l_cooled_down[] = {
    MG_ML_LITELLM_MODEL_NAME, MG_ML_MODEL_ID, MG_ML_API_BASE, MG_ML_API_PROVIDER,
    MG_ML_EXCEPTION_STATUS, E};
/* litellm_deployment_successful_fallbacks; _failed_fallbacks is the same list */
static const int mg_ml_l_fallbacks[] = {
    MG_ML_REQUESTED_MODEL, MG_ML_FALLBACK_MODEL, MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS,
    MG_ML_TEAM, MG_ML_TEAM_ALIAS, MG_ML_EXCEPTION_STATUS, MG_ML_EXCEPTION_CLASS, MG_ML_MODEL_ID, E};
static const int mg_ml_l_key_budget[] = {MG_ML_HASHED_API_KEY, MG_ML_API_KEY_ALIAS, E};
static const int mg_ml_l_team_budget[] = {MG_ML_TEAM, MG_ML_TEAM_ALIAS, E};
static const int mg_ml_l_policy[] = {MG_ML_KIND, MG_ML_POLICY, E};
static const int mg_ml_l_kind[] = {MG_ML_KIND, E};
static const int mg_ml_l_state[] = {MG_ML_STATE, E};

typedef struct {
    const char *name;
    const char *help;
    mg_metric_type_t type;
    mg_metric_scope_t scope;
    const int *labels;          /* mg_ml_label_t, ended by MG_ML__COUNT */
    const double *buckets;      /* NULL: the latency buckets (histograms) */
    int nbuckets;
    double unit;
} mg_ml_family_t;

#define C MG_METRIC_COUNTER
#define G MG_METRIC_GAUGE
#define H MG_METRIC_HISTOGRAM
#define S MG_METRIC_SHARED

static const mg_ml_family_t mg_ml_table[MG_MF__COUNT] = {
    /* P: self.litellm_proxy_total_requests_metric; T: litellm_proxy_total_requests_metric */
    [MG_MF_PROXY_TOTAL_REQUESTS] = {"litellm_proxy_total_requests_metric",
        "Total number of requests made to the proxy server - track number of client side requests",
        C, S, mg_ml_l_proxy_total, NULL, 0, 0},
    /* P: self.litellm_proxy_failed_requests_metric; T: litellm_proxy_failed_requests_metric */
    [MG_MF_PROXY_FAILED_REQUESTS] = {"litellm_proxy_failed_requests_metric",
        "Total number of failed responses from proxy - the client did not get a success response "
        "from litellm proxy", C, S, mg_ml_l_proxy_failed, NULL, 0, 0},
    /* P: self.litellm_request_total_latency_metric (buckets=self.latency_buckets);
     * T: litellm_request_total_latency_metric */
    [MG_MF_REQUEST_TOTAL_LATENCY] = {"litellm_request_total_latency_metric",
        "Total latency (seconds) for a request to LiteLLM", H, S, mg_ml_l_request_total_latency,
        NULL, 0, 0},
    /* P: self.litellm_llm_api_latency_metric; T: litellm_llm_api_latency_metric */
    [MG_MF_LLM_API_LATENCY] = {"litellm_llm_api_latency_metric",
        "Total latency (seconds) for a models LLM API call", H, S, mg_ml_l_llm_api_latency, NULL,
        0, 0},
    /* P: self.litellm_llm_api_time_to_first_token_metric (observed for streams only);
     * T: litellm_llm_api_time_to_first_token_metric */
    [MG_MF_LLM_API_TTFT] = {"litellm_llm_api_time_to_first_token_metric",
        "Time to first token for a models LLM API call", H, S, mg_ml_l_llm_api_latency, NULL, 0, 0},
    /* P: self.litellm_overhead_latency_metric (observes litellm_overhead_time_ms / 1000);
     * T: litellm_overhead_latency_metric */
    [MG_MF_OVERHEAD_LATENCY] = {"litellm_overhead_latency_metric",
        "Latency overhead (milliseconds) added by LiteLLM processing", H, S, mg_ml_l_overhead, NULL,
        0, 0},
    /* P: self.litellm_input_tokens_metric; T: litellm_input_tokens_metric */
    [MG_MF_INPUT_TOKENS] = {"litellm_input_tokens_metric",
        "Total number of input tokens from LLM requests", C, S, mg_ml_l_tokens, NULL, 0, 0},
    /* P: self.litellm_output_tokens_metric; T: litellm_output_tokens_metric */
    [MG_MF_OUTPUT_TOKENS] = {"litellm_output_tokens_metric",
        "Total number of output tokens from LLM requests", C, S, mg_ml_l_tokens, NULL, 0, 0},
    /* P: self.litellm_tokens_metric; T: litellm_total_tokens_metric */
    [MG_MF_TOTAL_TOKENS] = {"litellm_total_tokens_metric",
        "Total number of input + output tokens from LLM requests", C, S, mg_ml_l_tokens, NULL, 0,
        0},
    /* P: self.litellm_spend_metric (inc(response_cost), USD); T: litellm_spend_metric.
     * Fixed point at 1e-9 USD: exact sums, wait-free, up to 1.8e10 USD. */
    [MG_MF_SPEND] = {"litellm_spend_metric", "Total spend on LLM requests", C, S, mg_ml_l_spend,
        NULL, 0, 1e-9},
    /* M: Gauge("litellm_in_flight_requests", multiprocess_mode="livesum"), no labels: kept per
     * worker and exposed summed over the live workers */
    [MG_MF_IN_FLIGHT_REQUESTS] = {"litellm_in_flight_requests",
        "Number of HTTP requests currently in-flight, summed over the live workers", G,
        MG_METRIC_PER_WORKER_SUM, mg_ml_l_none, NULL, 0, 0},
    /* P: self.litellm_deployment_state (0 healthy, 1 partial outage, 2 complete outage);
     * T: litellm_deployment_state */
    [MG_MF_DEPLOYMENT_STATE] = {"litellm_deployment_state",
        "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, "
        "2 = complete outage", G, S, mg_ml_l_deployment_state, NULL, 0, 0},
    /* P: self.litellm_deployment_success_responses; T: litellm_deployment_success_responses */
    [MG_MF_DEPLOYMENT_SUCCESS_RESPONSES] = {"litellm_deployment_success_responses",
        "LLM Deployment Analytics - Total number of successful LLM API calls via litellm", C, S,
        mg_ml_l_deployment_total, NULL, 0, 0},
    /* P: self.litellm_deployment_failure_responses; T: litellm_deployment_failure_responses */
    [MG_MF_DEPLOYMENT_FAILURE_RESPONSES] = {"litellm_deployment_failure_responses",
        "LLM Deployment Analytics - Total number of failed LLM API calls for a specific LLM "
        "deploymeny. exception_status is the status of the exception from the llm api", C, S,
        mg_ml_l_deployment_failure, NULL, 0, 0},
    /* P: self.litellm_deployment_total_requests; T: litellm_deployment_total_requests */
    [MG_MF_DEPLOYMENT_TOTAL_REQUESTS] = {"litellm_deployment_total_requests",
        "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure",
        C, S, mg_ml_l_deployment_total, NULL, 0, 0},
    /* P: self.litellm_deployment_latency_per_output_token (no buckets: prometheus_client's
     * defaults); T: litellm_deployment_latency_per_output_token */
    [MG_MF_DEPLOYMENT_LATENCY_PER_OUTPUT_TOKEN] = {"litellm_deployment_latency_per_output_token",
        "LLM Deployment Analytics - Latency per output token", H, S, mg_ml_l_latency_per_token,
        mg_ml_default_buckets, (int) (sizeof(mg_ml_default_buckets) / sizeof(double)), 0},
    /* P: self.litellm_deployment_cooled_down; T: litellm_deployment_cooled_down */
    [MG_MF_DEPLOYMENT_COOLED_DOWN] = {"litellm_deployment_cooled_down",
        "LLM Deployment Analytics - Number of times a deployment has been cooled down by LiteLLM "
        "load balancing logic. exception_status is the status of the exception that caused the "
        "deployment to be cooled down", C, S, mg_ml_l_cooled_down, NULL, 0, 0},
    /* P: self.litellm_deployment_successful_fallbacks; T: litellm_deployment_successful_fallbacks */
    [MG_MF_DEPLOYMENT_SUCCESSFUL_FALLBACKS] = {"litellm_deployment_successful_fallbacks",
        "LLM Deployment Analytics - Number of successful fallback requests from primary model -> "
        "fallback model", C, S, mg_ml_l_fallbacks, NULL, 0, 0},
    /* P: self.litellm_deployment_failed_fallbacks; T: litellm_deployment_failed_fallbacks */
    [MG_MF_DEPLOYMENT_FAILED_FALLBACKS] = {"litellm_deployment_failed_fallbacks",
        "LLM Deployment Analytics - Number of failed fallback requests from primary model -> "
        "fallback model", C, S, mg_ml_l_fallbacks, NULL, 0, 0},
    /* P: self.litellm_remaining_requests_metric (x-ratelimit-remaining-requests);
     * T: litellm_remaining_requests_metric */
    [MG_MF_REMAINING_REQUESTS] = {"litellm_remaining_requests_metric",
        "LLM Deployment Analytics - remaining requests for model, returned from LLM API Provider",
        G, S, mg_ml_l_overhead, NULL, 0, 0},
    /* P: self.litellm_remaining_tokens_metric (x-ratelimit-remaining-tokens);
     * T: litellm_remaining_tokens_metric */
    [MG_MF_REMAINING_TOKENS] = {"litellm_remaining_tokens_metric",
        "remaining tokens for model, returned from LLM API Provider", G, S, mg_ml_l_overhead, NULL,
        0, 0},
    /* P: self.litellm_remaining_api_key_budget_metric (+Inf without a max budget);
     * T: litellm_remaining_api_key_budget_metric */
    [MG_MF_REMAINING_API_KEY_BUDGET] = {"litellm_remaining_api_key_budget_metric",
        "Remaining budget for api key", G, S, mg_ml_l_key_budget, NULL, 0, 0},
    /* P: self.litellm_api_key_max_budget_metric; T: litellm_api_key_max_budget_metric */
    [MG_MF_API_KEY_MAX_BUDGET] = {"litellm_api_key_max_budget_metric",
        "Maximum budget set for api key", G, S, mg_ml_l_key_budget, NULL, 0, 0},
    /* P: self.litellm_api_key_budget_remaining_hours_metric;
     * T: litellm_api_key_budget_remaining_hours_metric */
    [MG_MF_API_KEY_BUDGET_REMAINING_HOURS] = {"litellm_api_key_budget_remaining_hours_metric",
        "Remaining hours for api key budget to be reset", G, S, mg_ml_l_key_budget, NULL, 0, 0},
    /* P: self.litellm_remaining_team_budget_metric; T: litellm_remaining_team_budget_metric */
    [MG_MF_REMAINING_TEAM_BUDGET] = {"litellm_remaining_team_budget_metric",
        "Remaining budget for team", G, S, mg_ml_l_team_budget, NULL, 0, 0},
    /* P: self.litellm_team_max_budget_metric; T: litellm_team_max_budget_metric */
    [MG_MF_TEAM_MAX_BUDGET] = {"litellm_team_max_budget_metric", "Maximum budget set for team", G,
        S, mg_ml_l_team_budget, NULL, 0, 0},
    /* P: self.litellm_team_budget_remaining_hours_metric (LiteLLM's help says days; the value
     * is hours); T: litellm_team_budget_remaining_hours_metric */
    [MG_MF_TEAM_BUDGET_REMAINING_HOURS] = {"litellm_team_budget_remaining_hours_metric",
        "Remaining days for team budget to be reset", G, S, mg_ml_l_team_budget, NULL, 0, 0},

    /* ---- moongate's own (no LiteLLM counterpart) ---- */
    [MG_MF_REGISTRY_VERSION] = {"moongate_registry_version",
        "Registry version the worker serves", G, MG_METRIC_PER_WORKER_LABEL, mg_ml_l_none, NULL, 0,
        0},
    [MG_MF_SNAPSHOT_AGE_SECONDS] = {"moongate_snapshot_age_seconds",
        "Seconds since the worker's current registry snapshot was built", G,
        MG_METRIC_PER_WORKER_LABEL, mg_ml_l_none, NULL, 0, 0},
    [MG_MF_LIVE_SNAPSHOTS] = {"moongate_live_snapshots",
        "Registry snapshots alive in the worker (the current one and those pinned by requests)", G,
        MG_METRIC_PER_WORKER_LABEL, mg_ml_l_none, NULL, 0, 0},
    [MG_MF_POLICY_ERRORS] = {"moongate_policy_errors",
        "Policy calls that threw or broke the policy contract (the configured order was used)", C,
        S, mg_ml_l_policy, NULL, 0, 0},
    [MG_MF_POLICY_BUDGET_HITS] = {"moongate_policy_budget_hits",
        "Policy calls stopped by their instruction or memory budget", C, S, mg_ml_l_policy, NULL, 0,
        0},
    [MG_MF_STORE_UP] = {"moongate_store_up",
        "1 if the registry store answered its last check, else 0", G, S, mg_ml_l_none, NULL, 0, 0},
    [MG_MF_HINTS_UP] = {"moongate_hints_up",
        "1 if the invalidation hint channel of this kind is connected, else 0", G, S, mg_ml_l_kind,
        NULL, 0, 0},
    [MG_MF_UPSTREAM_CONNECTIONS] = {"moongate_upstream_connections",
        "Upstream connections by state, summed over the live workers", G, MG_METRIC_PER_WORKER_SUM,
        mg_ml_l_state, NULL, 0, 0},
    [MG_MF_SOFT_BUDGET_CROSSED] = {"moongate_soft_budget_crossed",
        "Keys, teams and users whose spend crossed their soft_budget (warned, not refused)", C, S,
        mg_ml_l_kind, NULL, 0, 0},
    [MG_MF_OTEL_SPANS_DROPPED] = {"moongate_otel_spans_dropped",
        "OpenTelemetry spans dropped (queue full or export failed), summed over the live workers",
        G, MG_METRIC_PER_WORKER_SUM, mg_ml_l_none, NULL, 0, 0},
    [MG_MF_RELOADS_REFUSED] = {"moongate_reloads_refused",
        "Reloads refused, the running config, registry or policy kept serving", C, S, mg_ml_l_kind,
        NULL, 0, 0},
};

int mg_mf[MG_MF__COUNT] = {[0 ... MG_MF__COUNT - 1] = -1};

int
mg_metrics_litellm_declare(const double *latency_buckets, int nbuckets, mg_err_t *err)
{
    for (int i = 0; i < MG_MF__COUNT; i++) {
        const mg_ml_family_t *t = &mg_ml_table[i];
        const char *labels[MG_METRIC_MAX_LABELS + 1];
        int n = 0;
        for (; t->labels[n] != E && n < MG_METRIC_MAX_LABELS; n++) {
            labels[n] = mg_ml_names[t->labels[n]];
        }
        labels[n] = NULL;
        mg_metric_def_t def = {t->name, t->help, t->type, t->scope, labels, t->buckets,
                               t->nbuckets, t->unit};
        if (t->type == MG_METRIC_HISTOGRAM && t->buckets == NULL) {
            def.buckets = latency_buckets != NULL ? latency_buckets : mg_ml_latency_buckets;
            def.nbuckets = latency_buckets != NULL ? nbuckets : mg_ml_latency_nbuckets;
        }
        int id = mg_metrics_declare(&def, err);
        if (id < 0) {
            return MG_ERROR;
        }
        mg_mf[i] = id;
    }
    return MG_OK;
}

mg_metric_t *
mg_ml_series_worker(mg_mf_t f, int worker, const mg_ml_values_t *vals)
{
    if ((int) f < 0 || f >= MG_MF__COUNT) {
        return NULL;
    }
    const int *l = mg_ml_table[f].labels;
    const char *v[MG_METRIC_MAX_LABELS];
    for (int i = 0; l[i] != E && i < MG_METRIC_MAX_LABELS; i++) {
        v[i] = vals != NULL ? vals->v[l[i]] : NULL;
    }
    return mg_metric_series_worker(mg_mf[f], worker, v);
}

mg_metric_t *
mg_ml_series(mg_mf_t f, const mg_ml_values_t *vals)
{
    return mg_ml_series_worker(f, mg_metrics_worker(), vals);
}

const char *
mg_ml_label_name(mg_ml_label_t l)
{
    return (int) l >= 0 && l < MG_ML__COUNT ? mg_ml_names[l] : NULL;
}

void
mg_ml_refused(const char *kind)
{
    mg_ml_values_t v = {{NULL}};
    v.v[MG_ML_KIND] = kind;
    mg_metric_inc(mg_ml_series(MG_MF_RELOADS_REFUSED, &v), 1);
}
