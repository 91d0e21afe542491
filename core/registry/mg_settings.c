/*
 * mg_settings.c -- the LiteLLM settings table (see mg_settings.h).
 *
 * Every entry a user can put in config.yaml that LiteLLM documents and moongate has
 * an answer for.  Adding a feature means moving its row to MG_SET_IMPLEMENTED here;
 * the README's table is checked against `moongate settings`.
 */
#include "mg_settings.h"

#include <stdio.h>
#include <string.h>

#define Y MG_SET_IMPLEMENTED
#define W MG_SET_WARN
#define R MG_SET_REFUSED

static const mg_setting_t mg_settings[] = {
    /* ---- general_settings ---- */
    {"general_settings", "master_key", Y, "admin key (or LITELLM_MASTER_KEY)"},
    {"general_settings", "database_url", Y, "PostgreSQL store (or DATABASE_URL)"},
    {"general_settings", "store_model_in_db", Y, "/model/new, /model/update, /model/delete"},
    {"general_settings", "max_request_size_mb", Y, "413 past it"},
    {"general_settings", "max_response_size_mb", Y, "502 past it"},
    {"general_settings", "litellm_key_header_name", Y, "another header carries the key"},
    {"general_settings", "allow_client_side_credentials", W,
     "a client's api_key/api_base in the body are never used"},
    {"general_settings", "alerting", W, "no alerts are sent"},
    {"general_settings", "alerting_threshold", W, "no alerts are sent"},
    {"general_settings", "alert_types", W, "no alerts are sent"},
    {"general_settings", "alert_to_webhook_url", W, "no alerts are sent"},
    {"general_settings", "alerting_args", W, "no alerts are sent"},
    {"general_settings", "proxy_batch_write_at", W,
     "spend rows are written as they come (drained every 50 ms, batched per transaction)"},
    {"general_settings", "proxy_config_reload_interval_seconds", W,
     "the store is polled every moongate_settings.registry_poll_interval_seconds (1 s)"},
    {"general_settings", "background_health_checks", W, "/health probes on each call only"},
    {"general_settings", "health_check_interval", W, "/health probes on each call only"},
    {"general_settings", "health_check_details", W, "/health always shows details"},
    {"general_settings", "user_api_key_cache_ttl", W,
     "keys are not cached by time: a key change reaches every request that starts after the "
     "call returns"},
    {"general_settings", "allow_requests_on_db_unavailable", W,
     "the last loaded registry keeps serving through a store outage"},
    {"general_settings", "disable_spend_logs", W,
     "spend log rows are always written (spend columns are added from them, once per row)"},
    {"general_settings", "disable_reset_budget", W,
     "budget_duration periods always end: the spend is reset and budget_reset_at moved on"},
    {"general_settings", "disable_error_logs", W, "no error logs table is written"},
    {"general_settings", "disable_master_key_return", W, "the master key is never returned"},
    {"general_settings", "disable_adding_master_key_hash_to_db", W,
     "the master key's hash is not written to a key table"},
    {"general_settings", "max_parallel_requests", W,
     "no per-key limit (use --limit_concurrency or litellm_params.max_parallel_requests)"},
    {"general_settings", "global_max_parallel_requests", W,
     "no global limit (use --limit_concurrency)"},
    {"general_settings", "custom_auth", W, "only the master key and virtual keys are accepted"},
    {"general_settings", "enable_jwt_auth", W,
     "JWTs are refused: only the master key and virtual keys are accepted"},
    {"general_settings", "litellm_jwtauth", W, "JWTs are refused"},
    {"general_settings", "allowed_routes", W,
     "not read: the master key calls every route, a virtual key what its role and its own "
     "allowed_routes let it"},
    {"general_settings", "public_routes", W, "only the health routes are public"},
    {"general_settings", "admin_only_routes", W,
     "not read: the management routes follow LiteLLM's roles (README: Virtual keys, teams and "
     "users)"},
    {"general_settings", "allowed_ips", R,
     "an IP allow-list moongate would not enforce: put it in front of moongate"},
    {"general_settings", "enforced_params", R,
     "requests would pass without the parameters it enforces"},
    {"general_settings", "enforce_user_param", R, "requests would pass without a user"},
    {"general_settings", "completion_model", R, "requests would go to the model they name"},
    {"general_settings", "embedding_model", R, "requests would go to the model they name"},
    {"general_settings", "image_generation_model", R, "image routes are not served"},
    {"general_settings", "moderation_model", R, "moderation routes are not served"},
    {"general_settings", "infer_model_from_keys", W, "/v1/models lists configured models only"},
    {"general_settings", "forward_client_headers_to_llm_api", W,
     "client headers go upstream only through each provider's allow-list and "
     "litellm_params.forward_client_headers"},
    {"general_settings", "forward_openai_org_id", W, "litellm_params.organization is sent"},
    {"general_settings", "pass_through_endpoints", W, "pass-through routes answer 404"},
    {"general_settings", "key_management_system", R,
     "secrets would be read from a key manager moongate does not call"},
    {"general_settings", "key_management_settings", R,
     "secrets would be read from a key manager moongate does not call"},
    {"general_settings", "ui_access_mode", W,
     "LiteLLM's UI is not served; moongate's /ui takes the master key or an admin's key"},
    {"general_settings", "database_connection_pool_limit", W, "one store connection per worker"},
    {"general_settings", "database_connection_timeout", W, "libpq's connect timeout"},
    {"general_settings", "dangerously_allow_mock_testing_request_params", W,
     "mock_testing_* request params are dropped"},
    {"general_settings", "maximum_spend_logs_retention_period", Y,
     "spend log rows older than this are deleted in batches (SPEND_LOG_CLEANUP_BATCH_SIZE rows "
     "per statement, SPEND_LOG_RUN_LOOPS statements per run; embedded: whole segments)"},
    {"general_settings", "maximum_spend_logs_retention_interval", Y,
     "how often retention runs (default 1d)"},
    {"general_settings", "store_prompts_in_spend_logs", Y,
     "spend rows keep the request body (proxy_server_request) and the response (not of "
     "streams); long strings cut as LiteLLM cuts them"},

    /* ---- litellm_settings ---- */
    {"litellm_settings", "drop_params", Y, "unsupported params dropped instead of refused"},
    {"litellm_settings", "request_timeout", Y, "default upstream timeout"},
    {"litellm_settings", "num_retries", Y, "retries per group"},
    {"litellm_settings", "fallbacks", Y, "fallback groups"},
    {"litellm_settings", "context_window_fallbacks", Y, "fallbacks on context window errors"},
    {"litellm_settings", "content_policy_fallbacks", Y, "fallbacks on content policy errors"},
    {"litellm_settings", "default_fallbacks", Y, "fallbacks for any group"},
    {"litellm_settings", "allowed_fails", Y, "cooldown threshold"},
    {"litellm_settings", "cooldown_time", Y, "cooldown length"},
    {"litellm_settings", "retry_policy", Y, "retries per error class"},
    {"litellm_settings", "disable_cooldowns", Y, "no cooldowns"},
    {"litellm_settings", "max_fallbacks", Y, "fallback depth"},
    {"litellm_settings", "model_alias_map", Y, "requested names rewritten to groups"},
    {"litellm_settings", "cache", W, "responses are not cached: every request goes upstream"},
    {"litellm_settings", "cache_params", W, "responses are not cached"},
    {"litellm_settings", "callbacks", Y,
     "\"prometheus\": /metrics (always served); \"otel\": OpenTelemetry traces (see Tracing); "
     "any other callback: one warning naming it"},
    {"litellm_settings", "success_callback", Y, "as callbacks"},
    {"litellm_settings", "failure_callback", Y, "as callbacks"},
    {"litellm_settings", "service_callbacks", Y, "as callbacks"},
    {"litellm_settings", "prometheus_latency_buckets", Y,
     "buckets of the latency histograms (read at start; a reload that changes them warns)"},
    {"litellm_settings", "max_budget", W, "no proxy-wide budget is enforced"},
    {"litellm_settings", "budget_duration", W, "no proxy-wide budget is enforced"},
    {"litellm_settings", "json_logs", Y, "one JSON object per log line (also JSON_LOGS=True)"},
    {"litellm_settings", "set_verbose", W, "use LITELLM_LOG or --detailed_debug"},
    {"litellm_settings", "default_team_settings", W, "not applied: /team/new takes what it is given"},
    {"litellm_settings", "key_generation_settings", W,
     "not applied: moongate's own bounds decide who makes which key (README: Virtual keys, "
     "teams and users)"},
    {"litellm_settings", "upperbound_key_generate_params", Y,
     "/key/generate refuses more (max_budget, max_parallel_requests, tpm_limit, rpm_limit, "
     "duration, budget_duration) and fills what is not given"},
    {"litellm_settings", "default_key_generate_params", Y, "defaults of /key/generate"},
    {"litellm_settings", "default_team_params", W, "not applied: /team/new takes what it is given"},
    {"litellm_settings", "enable_redis_auth_cache", W,
     "keys live in the registry snapshot: there is no auth cache to share"},
    {"litellm_settings", "require_auth_for_metrics_endpoint", Y,
     "/metrics needs the master key (open by default)"},
    {"litellm_settings", "check_provider_endpoint", W,
     "wildcard groups are expanded from the cost map; the provider's /models is not asked"},
    {"litellm_settings", "modify_params", W, "requests are translated as with modify_params false"},
    {"litellm_settings", "force_ipv4", W, "upstream names resolve to any address family"},
    {"litellm_settings", "turn_off_message_logging", W,
     "prompts and completions are never logged or put in spans anyway"},
    {"litellm_settings", "redact_user_api_key_info", W, "keys are never logged anyway"},
    {"litellm_settings", "guardrails", R, "guardrails would not run: responses unfiltered"},
    {"litellm_settings", "post_call_rules", R, "post-call rules would not run"},
    {"litellm_settings", "custom_provider_map", R, "custom providers cannot be loaded"},

    /* ---- router_settings ---- */
    {"router_settings", "routing_strategy", Y, "built-in Lua policies"},
    {"router_settings", "routing_strategy_args", Y, "policy arguments"},
    {"router_settings", "num_retries", Y, "retries per group"},
    {"router_settings", "retry_policy", Y, "retries per error class"},
    {"router_settings", "retry_after", Y, "minimum backoff"},
    {"router_settings", "allowed_fails", Y, "cooldown threshold"},
    {"router_settings", "allowed_fails_policy", Y, "cooldown threshold per error class"},
    {"router_settings", "cooldown_time", Y, "cooldown length"},
    {"router_settings", "disable_cooldowns", Y, "no cooldowns"},
    {"router_settings", "fallbacks", Y, "fallback groups"},
    {"router_settings", "context_window_fallbacks", Y, "fallbacks on context window errors"},
    {"router_settings", "content_policy_fallbacks", Y, "fallbacks on content policy errors"},
    {"router_settings", "default_fallbacks", Y, "fallbacks for any group"},
    {"router_settings", "max_fallbacks", Y, "fallback depth"},
    {"router_settings", "timeout", Y, "default upstream timeout"},
    {"router_settings", "stream_timeout", Y, "default stream timeout"},
    {"router_settings", "model_group_alias", Y, "aliases of groups"},
    {"router_settings", "enable_pre_call_checks", Y,
     "deployments whose max_input_tokens the prompt exceeds are skipped"},
    {"router_settings", "enable_tag_filtering", Y, "the built-in tags filter policy"},
    {"router_settings", "tag_filtering_match_any", Y, "any or all request tags"},
    {"router_settings", "default_max_parallel_requests", Y, "per-deployment in-flight limit"},
    {"router_settings", "default_litellm_params", Y, "defaults added to every call"},
    {"router_settings", "redis_host", Y, "cooldowns and rate limits shared across instances"},
    {"router_settings", "redis_port", Y, "cooldowns and rate limits shared across instances"},
    {"router_settings", "redis_password", Y, "cooldowns and rate limits shared across instances"},
    {"router_settings", "redis_url", Y, "cooldowns and rate limits shared across instances"},
    {"router_settings", "redis_db", Y, "cooldowns and rate limits shared across instances"},
    {"router_settings", "redis_username", Y, "cooldowns and rate limits shared across instances"},
    {"router_settings", "routing_policy", Y, "a Lua routing policy (moongate)"},
    {"router_settings", "fallback_policy", Y, "a Lua fallback policy (moongate)"},
    {"router_settings", "wildcard_policy", Y, "a Lua wildcard policy (moongate)"},
    {"router_settings", "filter_policy", Y, "a Lua filter policy (moongate)"},
    {"router_settings", "policy_args", Y, "policy arguments (moongate)"},
    {"router_settings", "model_group_retry_policy", W, "retry_policy applies to every group"},
    {"router_settings", "cache_kwargs", W, "no cache"},
    {"router_settings", "client_ttl", W,
     "upstream clients are reference counted and replaced on rotation, not aged out"},
    {"router_settings", "cache_responses", W, "responses are not cached"},
    {"router_settings", "caching_groups", W, "responses are not cached"},
    {"router_settings", "optional_pre_call_checks", W,
     "only the context window check (enable_pre_call_checks) runs"},
    {"router_settings", "provider_budget_config", W, "no provider budget is enforced"},
    {"router_settings", "ignore_invalid_deployments", W,
     "an invalid stored deployment is always skipped with a warning; an invalid config one "
     "is refused"},
    {"router_settings", "set_verbose", W, "use LITELLM_LOG or --detailed_debug"},
    {"router_settings", "debug_level", W, "use LITELLM_LOG or --detailed_debug"},
    {"router_settings", "model_group_affinity_config", W, "no session affinity"},
    {"router_settings", "deployment_affinity_ttl_seconds", W, "no session affinity"},

    /* ---- top-level sections ---- */
    {"top-level", "guardrails", R, "guardrails would not run: responses unfiltered"},
    {"top-level", "assistant_settings", W, "assistant routes are not served"},
    {"top-level", "finetune_settings", W, "fine-tuning routes are not served"},
    {"top-level", "files_settings", W, "file routes are not served"},
    {"top-level", "default_vertex_config", W,
     "not applied: set vertex_project, vertex_location and vertex_credentials on each vertex_ai/ "
     "deployment (or VERTEXAI_PROJECT, VERTEXAI_LOCATION, GOOGLE_APPLICATION_CREDENTIALS)"},
    {"top-level", "callback_settings", W,
     "per-integration settings are not read (otel spans never carry messages anyway)"},
    {"top-level", "mcp_servers", W, "MCP routes are not served"},
    {"top-level", "mcp_aliases", W, "MCP routes are not served"},
    {"top-level", "search_tools", W, "search routes are not served"},
    {"top-level", "prompts", W, "prompt management is not implemented"},
    {"top-level", "vector_store_registry", W, "vector store routes are not served"},
    {"top-level", "agents", W, "agent routes are not served"},

    /* ---- request bodies ---- */
    {"request body", "guardrails", R, "a request naming guardrails is refused (400)"},
    {"request body", "caching", W, "not cached; logged once per worker, counted in /moongate/state"},
    {"request body", "cache", W, "not cached; logged once per worker, counted in /moongate/state"},
    {NULL, NULL, Y, NULL},
};

#undef Y
#undef W
#undef R

const mg_setting_t *
mg_setting_find(const char *section, const char *key)
{
    for (const mg_setting_t *s = mg_settings; s->key != NULL; s++) {
        if (strcmp(s->section, section) == 0 && strcmp(s->key, key) == 0) {
            return s;
        }
    }
    return NULL;
}

const mg_setting_t *
mg_settings_all(void)
{
    return mg_settings;
}

void
mg_settings_print_markdown(void)
{
    static const char *const status[] = {"implemented", "accepted, not implemented: warning",
                                         "refused"};
    printf("| section | setting | moongate | what happens |\n|---|---|---|---|\n");
    for (const mg_setting_t *s = mg_settings; s->key != NULL; s++) {
        printf("| %s | `%s` | %s | %s |\n", s->section, s->key, status[s->status], s->effect);
    }
}
