/*
 * test_config.c -- core/registry/mg_config.c: config.yaml loading as LiteLLM reads it:
 * os.environ/ references, environment_variables, includes (model_list concatenated),
 * coercions, and validation errors that name file:line:column.
 */
#include "mg_test.h"

#include "base/mg_err.h"
#include "registry/mg_config.h"

#include <regex.h>

static mg_config_t *
t_load(const char *text, mg_err_t *err)
{
    mg_config_opts_t opts = {NULL, true};
    mg_config_t *cfg = NULL;
    mg_err_clear(err);
    if (mg_config_load_text(text, strlen(text), "cfg.yaml", &opts, &cfg, err) != MG_OK) {
        return NULL;
    }
    return cfg;
}

static mg_config_t *
t_load_file(const char *path, mg_err_t *err)
{
    mg_config_opts_t opts = {NULL, true};
    mg_config_t *cfg = NULL;
    mg_err_clear(err);
    if (mg_config_load(path, &opts, &cfg, err) != MG_OK) {
        return NULL;
    }
    return cfg;
}

/* The config must be refused with exactly this message. */
static void
t_refuse(const char *text, const char *want)
{
    mg_err_t err;
    mg_config_t *cfg = t_load(text, &err);
    CHECK(cfg == NULL, "accepted: %s", text);
    if (cfg != NULL) {
        mg_config_unref(cfg);
        return;
    }
    CHECK(err.cls == MG_ERR_CONFIG);
    CHECK(strcmp(err.msg, want) == 0, "message:\n   got: %s\n  want: %s", err.msg, want);
}

/* Every refusal names file:line:column. */
static void
t_refuse_located(const char *text, const char *file)
{
    mg_err_t err;
    mg_config_t *cfg = t_load(text, &err);
    CHECK(cfg == NULL, "accepted: %s", text);
    if (cfg != NULL) {
        mg_config_unref(cfg);
        return;
    }
    char re_s[256];
    snprintf(re_s, sizeof(re_s), "^%s:[0-9]+:[0-9]+: ", file);
    regex_t re;
    regcomp(&re, re_s, REG_EXTENDED | REG_NOSUB);
    CHECK(regexec(&re, err.msg, 0, NULL, 0) == 0, "no file:line:column in \"%s\"", err.msg);
    regfree(&re);
}

static json_t *
t_lp(const mg_config_t *cfg, size_t i)
{
    return json_object_get(json_array_get(cfg->models, i), "litellm_params");
}

static void
test_examples(void)
{
    MG_T_CASE("examples/*.yaml load");
    setenv("OPENAI_API_KEY", "sk-test-openai", 1);
    unsetenv("GROQ_API_KEY");
    const struct {
        const char *file;
        size_t nmodels;
    } ex[] = {{"quickstart.yaml", 2}, {"fallback.yaml", 3}, {"multi-provider.yaml", 4},
              {"wildcard.yaml", 3}};
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/examples/%s", MG_SOURCE_DIR, ex[i].file);
        mg_err_t err;
        mg_config_t *cfg = t_load_file(path, &err);
        CHECK(cfg != NULL, "%s: %s", ex[i].file, err.msg);
        if (cfg == NULL) {
            continue;
        }
        CHECK(cfg->nmodels == ex[i].nmodels, "%s: %zu models", ex[i].file, cfg->nmodels);
        CHECK(json_is_object(cfg->root));
        CHECK(strlen(cfg->hash) == 64);
        mg_config_unref(cfg);
    }
    /* quickstart: the key resolved from the environment, the master key from the file */
    char path[1024];
    snprintf(path, sizeof(path), "%s/examples/quickstart.yaml", MG_SOURCE_DIR);
    mg_err_t err;
    mg_config_t *cfg = t_load_file(path, &err);
    if (cfg != NULL) {
        CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 0), "api_key")), "sk-test-openai");
        CHECK_STR(cfg->master_key, "sk-quickstart");
        mg_config_unref(cfg);
    }
    /* unset variables resolve to null (LiteLLM: None) */
    snprintf(path, sizeof(path), "%s/examples/wildcard.yaml", MG_SOURCE_DIR);
    cfg = t_load_file(path, &err);
    if (cfg != NULL) {
        CHECK(json_is_null(json_object_get(t_lp(cfg, 1), "api_key")));
        mg_config_unref(cfg);
    }
    /* no file at all: an empty config */
    mg_config_opts_t opts = {NULL, true};
    CHECK(mg_config_load(NULL, &opts, &cfg, &err) == MG_OK);
    CHECK_INT(cfg->nmodels, 0);
    mg_config_unref(cfg);
}

static void
test_env(void)
{
    MG_T_CASE("os.environ/ and environment_variables");
    unsetenv("MG_T_VAR");
    unsetenv("MG_T_NUM");
    unsetenv("MG_T_FLOAT");
    unsetenv("MG_T_BOOL");
    setenv("MG_T_MASTER", "sk-master-from-env", 1);
    const char *text = "environment_variables:\n"
                       "  MG_T_VAR: hello\n"
                       "  MG_T_NUM: 5\n"
                       "  MG_T_FLOAT: 0.5\n"
                       "  MG_T_BOOL: yes\n"
                       "model_list:\n"
                       "  - model_name: m\n"
                       "    litellm_params:\n"
                       "      model: openai/m\n"
                       "      api_key: os.environ/MG_T_VAR\n"
                       "      api_base: os.environ/MG_T_UNSET_VAR\n"
                       "      rpm: os.environ/MG_T_NUM\n"
                       "general_settings:\n"
                       "  master_key: os.environ/MG_T_MASTER\n";
    mg_err_t err;
    mg_config_t *cfg = t_load(text, &err);
    CHECK(cfg != NULL, "%s", err.msg);
    if (cfg == NULL) {
        return;
    }
    CHECK_STR(getenv("MG_T_VAR"), "hello");
    CHECK_STR(getenv("MG_T_NUM"), "5");
    CHECK_STR(getenv("MG_T_FLOAT"), "0.5");
    CHECK_STR(getenv("MG_T_BOOL"), "True"); /* Python's str(True) */
    /* environment_variables are applied before os.environ/ is resolved */
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 0), "api_key")), "hello");
    CHECK(json_is_null(json_object_get(t_lp(cfg, 0), "api_base")));
    /* numeric strings are coerced where a number is expected (pydantic does the same) */
    CHECK(json_is_integer(json_object_get(t_lp(cfg, 0), "rpm")));
    CHECK_INT(json_integer_value(json_object_get(t_lp(cfg, 0), "rpm")), 5);
    CHECK_STR(cfg->master_key, "sk-master-from-env");
    mg_config_unref(cfg);

    /* LITELLM_MASTER_KEY when the file has none */
    setenv("LITELLM_MASTER_KEY", "sk-litellm-env", 1);
    cfg = t_load("model_list: []\n", &err);
    CHECK(cfg != NULL && cfg->master_key != NULL && strcmp(cfg->master_key, "sk-litellm-env") == 0);
    mg_config_unref(cfg);
    unsetenv("LITELLM_MASTER_KEY");
}

static void
test_coercion_and_settings(void)
{
    MG_T_CASE("coercions and settings");
    const char *text = "model_list:\n"
                       "  - model_name: 123\n"
                       "    litellm_params:\n"
                       "      model: azure/x\n"
                       "      api_version: 2024-02-01\n"
                       "      api_key: 12345\n"
                       "      rpm: \"100\"\n"
                       "      timeout: \"1.5\"\n"
                       "      drop_params: \"true\"\n"
                       "  - model_name: orgs\n"
                       "    litellm_params:\n"
                       "      model: openai/o\n"
                       "      organization: [org-a, org-b]\n"
                       "    tpm: 1000\n"
                       "  - model_name: cred\n"
                       "    litellm_params:\n"
                       "      model: openai/c\n"
                       "      litellm_credential_name: shared\n"
                       "credential_list:\n"
                       "  - credential_name: shared\n"
                       "    credential_values:\n"
                       "      api_key: sk-shared\n"
                       "      api_base: https://example.invalid/v1\n"
                       "litellm_settings:\n"
                       "  drop_params: true\n"
                       "  num_retries: 3\n"
                       "  request_timeout: 30\n"
                       "router_settings:\n"
                       "  num_retries: 5\n"
                       "  routing_strategy: least-busy\n"
                       "  redis_url: redis://user:pw@cache.local:6380/2\n"
                       "  model_group_alias: {gpt4: orgs}\n"
                       "  fallbacks: [{orgs: cred}]\n"
                       "general_settings:\n"
                       "  max_request_size_mb: 2\n"
                       "moongate_settings:\n"
                       "  registry_poll_interval_seconds: 0.01\n"
                       "  state_dir: /tmp/mg-state\n";
    mg_err_t err;
    mg_config_t *cfg = t_load(text, &err);
    CHECK(cfg != NULL, "%s", err.msg);
    if (cfg == NULL) {
        return;
    }
    json_t *m0 = json_array_get(cfg->models, 0);
    CHECK_STR(json_string_value(json_object_get(m0, "model_name")), "123");
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 0), "api_version")), "2024-02-01");
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 0), "api_key")), "12345");
    CHECK_INT(json_integer_value(json_object_get(t_lp(cfg, 0), "rpm")), 100);
    CHECK(json_real_value(json_object_get(t_lp(cfg, 0), "timeout")) == 1.5);
    CHECK(json_is_object(json_object_get(m0, "model_info")));
    /* organization list: one deployment per organization */
    CHECK_INT(cfg->nmodels, 4);
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 1), "organization")), "org-a");
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 2), "organization")), "org-b");
    /* deployment-level tpm is copied into litellm_params */
    CHECK_INT(json_integer_value(json_object_get(t_lp(cfg, 1), "tpm")), 1000);
    /* credential values merged */
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 3), "api_key")), "sk-shared");
    CHECK_STR(json_string_value(json_object_get(t_lp(cfg, 3), "api_base")),
              "https://example.invalid/v1");
    CHECK(cfg->drop_params);
    CHECK(cfg->request_timeout == 30);
    /* router_settings win over litellm_settings */
    CHECK_INT(json_integer_value(mg_config_router_get(cfg, "num_retries")), 5);
    CHECK_STR(json_string_value(mg_config_router_get(cfg, "routing_strategy")), "least-busy");
    CHECK_STR(json_string_value(json_object_get(json_object_get(cfg->policies, "routing"),
                                                "name")),
              "least_busy");
    /* a fallback target given as a string becomes a list */
    json_t *fb = mg_config_router_get(cfg, "fallbacks");
    CHECK(json_is_array(json_object_get(json_array_get(fb, 0), "orgs")));
    CHECK_STR(cfg->redis_host, "cache.local");
    CHECK_INT(cfg->redis_port, 6380);
    CHECK_INT(cfg->redis_db, 2);
    CHECK_STR(cfg->redis_username, "user");
    CHECK_STR(cfg->redis_password, "pw");
    CHECK_INT(cfg->max_request_size, 2 * 1024 * 1024);
    CHECK_INT(cfg->registry_poll_ms, 50); /* clamped */
    CHECK_STR(cfg->state_dir, "/tmp/mg-state");
    /* reference counting */
    CHECK(mg_config_ref(cfg) == cfg);
    CHECK_INT(cfg->refs, 2);
    mg_config_unref(cfg);
    mg_config_unref(cfg);

    /* unknown keys are warnings, not errors; an empty section asks for nothing */
    cfg = t_load("model_list: []\nsomething_new: 1\nguardrails: []\nrouter_settings:\n"
                 "  not_a_setting: 1\n",
                 &err);
    CHECK(cfg != NULL, "%s", err.msg);
    CHECK(cfg != NULL && cfg->nwarnings == 2, "warnings: %d", cfg ? cfg->nwarnings : -1);
    mg_config_unref(cfg);
    /* accepted, not implemented: a warning each, and listed */
    cfg = t_load("model_list: []\nlitellm_settings:\n  cache: true\n  callbacks: [langfuse]\n"
                 "router_settings:\n  cache_responses: true\n", &err);
    CHECK(cfg != NULL, "%s", err.msg);
    CHECK(cfg != NULL && json_array_size(cfg->unimplemented) == 3, "listed: %zu",
          cfg ? json_array_size(cfg->unimplemented) : 0);
    mg_config_unref(cfg);
    /* callbacks: "otel" is tracing; another integration is a warning of its own */
    cfg = t_load("model_list: []\nlitellm_settings:\n  callbacks: [otel]\n", &err);
    CHECK(cfg != NULL && cfg->otel, "%s", err.msg);
    CHECK(cfg != NULL && json_array_size(cfg->unimplemented) == 0);
    mg_config_unref(cfg);
    cfg = t_load("model_list: []\nlitellm_settings:\n  success_callback: [langfuse, otel]\n"
                 "  failure_callback: [datadog]\n", &err);
    CHECK(cfg != NULL && cfg->otel, "%s", err.msg);
    CHECK(cfg != NULL && json_array_size(cfg->unimplemented) == 2, "listed: %zu",
          cfg ? json_array_size(cfg->unimplemented) : 0);
    CHECK(cfg != NULL && strstr(json_string_value(json_object_get(
                                    json_array_get(cfg->unimplemented, 0), "setting")),
                                "\"langfuse\"") != NULL);
    mg_config_unref(cfg);
    cfg = t_load("model_list: []\nlitellm_settings:\n  callbacks: [prometheus]\n", &err);
    CHECK(cfg != NULL && !cfg->otel);
    mg_config_unref(cfg);
    cfg = t_load("model_list: []\nlitellm_settings:\n  callbacks: [1]\n", &err);
    CHECK(cfg == NULL && strstr(err.msg, "callbacks[0] must be a string") != NULL, "%s", err.msg);
    mg_config_unref(cfg);
    /* refused where ignoring it would change what clients get, naming it */
    cfg = t_load("model_list: []\nguardrails:\n  - guardrail_name: x\n", &err);
    CHECK(cfg == NULL);
    CHECK(strstr(err.msg, "guardrails is not implemented") != NULL, "%s", err.msg);
    mg_config_unref(cfg);
    cfg = t_load("model_list: []\ngeneral_settings:\n  allowed_ips: [10.0.0.1]\n", &err);
    CHECK(cfg == NULL && strstr(err.msg, "allowed_ips") != NULL, "%s", err.msg);
    mg_config_unref(cfg);
}

static void
test_validation_errors(void)
{
    MG_T_CASE("validation errors name file:line:column");
    t_refuse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n"
             "      rpm: lots\n",
             "cfg.yaml:5:7: rpm must be a number, got a string");
    t_refuse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n"
             "      rpm: -5\n",
             "cfg.yaml:5:7: rpm must not be negative, got -5");
    t_refuse("model_list:\n  - litellm_params: {model: openai/a}\n",
             "cfg.yaml:2:5: model_name is required");
    t_refuse("model_list:\n  - model_name: a\n", "cfg.yaml:2:5: litellm_params is required "
                                                "(with at least model)");
    t_refuse("model_list:\n  - model_name: a\n    litellm_params: {rpm: 1}\n",
             "cfg.yaml:3:5: litellm_params.model is required (e.g. openai/gpt-4o)");
    t_refuse("model_list: {a: 1}\n", "cfg.yaml:1:1: model_list must be a list, got a mapping");
    t_refuse("model_list:\n  - just-a-string\n",
             "cfg.yaml:2:5: each model_list entry must be a mapping with model_name and "
             "litellm_params, got a string");
    t_refuse("general_settings: [1]\n",
             "cfg.yaml:1:1: general_settings must be a mapping, got a list");
    t_refuse("router_settings:\n  routing_strategy: fastest\n",
             "cfg.yaml:2:3: routing_strategy \"fastest\" is not supported; use one of "
             "simple-shuffle, least-busy, usage-based-routing-v2, latency-based-routing, "
             "cost-based-routing (or routing_policy: ./file.lua)");
    t_refuse("router_settings:\n  num_retries: many\n",
             "cfg.yaml:2:3: num_retries must be a number, got a string");
    t_refuse("litellm_settings:\n  drop_params: maybe\n",
             "cfg.yaml:2:3: drop_params must be true or false, got a string");
    t_refuse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n"
             "    model_info: {id: ''}\n",
             "cfg.yaml:5:5: model_info.id must not be empty");
    t_refuse("general_settings:\n  database_url: mysql://x\n",
             "cfg.yaml:2:3: database_url must be a postgresql:// or postgres:// URL");
    t_refuse("router_settings:\n  fallbacks: {a: b}\n",
             "cfg.yaml:2:3: fallbacks must be a list like [{\"group\": [\"fallback1\"]}], got a "
             "mapping");

    { /* was a known bug, now fixed: mg_cfg_model()/mg_cfg_build() format the message from JSON they freed just before (json_decref(e) then mg_cfg_fail(..., base)): heap-use-after-free, garbage in the message */
        t_refuse("model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, "
                 "api_base: ftp://x}\n",
                 "cfg.yaml:3:39: api_base \"ftp://x\" must start with http:// or https://");
        t_refuse("model_list:\n  - model_name: a\n    litellm_params: [1]\n",
                 "cfg.yaml:3:5: litellm_params must be a mapping, got a list");
        t_refuse("model_list:\n  - model_name: ''\n    litellm_params: {model: x}\n",
                 "cfg.yaml:2:5: model_name must be a non-empty string, got an empty string");
        t_refuse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n"
                 "      litellm_credential_name: nope\n",
                 "cfg.yaml:5:7: credential \"nope\" is not in credential_list");
        t_refuse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n"
                 "      extra_headers: {X-A: \"a\\nb\"}\n",
                 "cfg.yaml:5:7: extra_headers.X-A must not contain line breaks");
        t_refuse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n"
                 "      extra_headers: {X-A: 1}\n",
                 "cfg.yaml:5:7: extra_headers.X-A must be a string, got an integer");
        t_refuse("model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n"
                 "    model_info: [1]\n",
                 "cfg.yaml:4:5: model_info must be a mapping, got a list");
    }

    { /* was a known bug, now fixed: mg_cfg_router(): router settings given in litellm_settings are validated under router_settings.<key> paths that have no marks: the error names neither the line nor the section the user wrote */
        t_refuse("litellm_settings:\n  cooldown_time: soon\n",
                 "cfg.yaml:2:3: cooldown_time must be a number, got a string");
        t_refuse_located("litellm_settings:\n  fallbacks: {a: b}\n", "cfg.yaml");
    }

    /* structural problems */
    t_refuse("", "cfg.yaml: the config file is empty (expected a mapping with model_list, "
                 "router_settings, ...)");
    t_refuse("- a\n- b\n", "cfg.yaml:1:1: the config file must be a mapping (model_list, "
                           "router_settings, ...)");
    t_refuse_located("model_list: [\n", "cfg.yaml");
    t_refuse_located("a: *undefined\n", "cfg.yaml");
    t_refuse_located("model_list:\n  - model_name: a\n    litellm_params:\n"
                     "      model: openai/a\n      tpm: [1]\n",
                     "cfg.yaml");
    t_refuse_located("router_settings:\n  model_group_alias:\n    a: [1]\n", "cfg.yaml");
    t_refuse_located("moongate_settings:\n  policy_budget_ms: -1\n", "cfg.yaml");
    t_refuse_located("moongate_settings:\n  registry_poll_interval_seconds: 1.0e+300\n",
                     "cfg.yaml");
}

static void
test_includes(void)
{
    MG_T_CASE("include");
    const char *dir = mg_t_tmpdir();
    char path[600];
    mg_t_write_file("part-a.yaml", "model_list:\n"
                                   "  - model_name: a1\n"
                                   "    litellm_params: {model: openai/a1}\n"
                                   "  - model_name: a2\n"
                                   "    litellm_params: {model: openai/a2}\n"
                                   "litellm_settings:\n"
                                   "  num_retries: 7\n");
    mg_t_write_file("part-b.yaml", "model_list:\n"
                                   "  - model_name: b1\n"
                                   "    litellm_params:\n"
                                   "      model: openai/b1\n");
    mg_t_write_file("main.yaml", "include:\n"
                                 "  - part-a.yaml\n"
                                 "  - part-b.yaml\n"
                                 "model_list:\n"
                                 "  - model_name: main\n"
                                 "    litellm_params: {model: openai/main}\n");
    snprintf(path, sizeof(path), "%s/main.yaml", dir);
    mg_err_t err;
    mg_config_t *cfg = t_load_file(path, &err);
    CHECK(cfg != NULL, "%s", err.msg);
    if (cfg != NULL) {
        /* the main file's list first, then each include in order */
        const char *want[] = {"main", "a1", "a2", "b1"};
        CHECK_INT(cfg->nmodels, 4);
        for (size_t i = 0; i < 4 && i < cfg->nmodels; i++) {
            CHECK_STR(json_string_value(json_object_get(json_array_get(cfg->models, i),
                                                        "model_name")),
                      want[i]);
        }
        CHECK(json_object_get(cfg->root, "include") == NULL);
        CHECK_INT(json_integer_value(json_object_get(cfg->litellm_settings, "num_retries")), 7);
        mg_config_unref(cfg);
    }

    /* an error inside an included file names that file, line and column */
    mg_t_write_file("bad-part.yaml", "model_list:\n"
                                     "  - model_name: ok\n"
                                     "    litellm_params: {model: openai/ok}\n"
                                     "  - model_name: broken\n"
                                     "    litellm_params:\n"
                                     "      model: openai/x\n"
                                     "      rpm: lots\n");
    mg_t_write_file("main2.yaml", "model_list:\n"
                                  "  - model_name: main\n"
                                  "    litellm_params: {model: openai/main}\n"
                                  "include: [bad-part.yaml]\n");
    snprintf(path, sizeof(path), "%s/main2.yaml", dir);
    cfg = t_load_file(path, &err);
    CHECK(cfg == NULL);
    char want[800];
    snprintf(want, sizeof(want), "%s/bad-part.yaml:7:7: rpm must be a number, got a string", dir);
    CHECK_STR(err.msg, want);
    mg_config_unref(cfg);

    /* a YAML error inside an include: where it is included, and where it broke */
    mg_t_write_file("syntax.yaml", "model_list: [\n");
    mg_t_write_file("main3.yaml", "include:\n  - syntax.yaml\n");
    snprintf(path, sizeof(path), "%s/main3.yaml", dir);
    cfg = t_load_file(path, &err);
    CHECK(cfg == NULL);
    snprintf(want, sizeof(want), "%s/main3.yaml:2:5: included file \"syntax.yaml\": ", dir);
    CHECK_CONTAINS(err.msg, want);
    snprintf(want, sizeof(want), "%s/syntax.yaml:2:1: YAML syntax error", dir);
    CHECK_CONTAINS(err.msg, want);

    /* missing file */
    mg_t_write_file("main4.yaml", "include: [nowhere.yaml]\n");
    snprintf(path, sizeof(path), "%s/main4.yaml", dir);
    cfg = t_load_file(path, &err);
    CHECK(cfg == NULL);
    CHECK_CONTAINS(err.msg, "included file \"nowhere.yaml\": cannot open config file");

    /* include cycles end */
    mg_t_write_file("loop.yaml", "include: [loop.yaml]\n");
    snprintf(path, sizeof(path), "%s/loop.yaml", dir);
    cfg = t_load_file(path, &err);
    CHECK(cfg == NULL);
    CHECK_CONTAINS(err.msg, "include nested more than 8 levels deep");

    /* include of something that is not a list of paths */
    snprintf(path, sizeof(path), "%s/main5.yaml", dir);
    mg_t_write_file("main5.yaml", "include: {a: 1}\n");
    cfg = t_load_file(path, &err);
    CHECK(cfg == NULL);
    snprintf(want, sizeof(want), "%s:1:1: include must be a list of file paths, got a mapping",
             path);
    CHECK_STR(err.msg, want);
}

int
main(void)
{
    test_examples();
    test_env();
    test_coercion_and_settings();
    test_validation_errors();
    test_includes();
    return mg_test_done();
}
