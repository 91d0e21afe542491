/*
 * test_registry.c -- core/registry/mg_registry.c: snapshots built from a config and store
 * rows; LiteLLM-compatible deployment ids; groups, aliases, wildcards.
 *
 * Expected ids are LiteLLM's Router._generate_model_id, computed with python3 exactly as
 * /work/notes/litellm-behaviour.md 4.6 describes:
 *     concat = model_name + sum(str(k) + (v if str else json.dumps(v) if dict else str(v)))
 *     id = hashlib.sha256(concat.encode()).hexdigest()
 */
#include "mg_test.h"

#include "base/mg_err.h"
#include "registry/mg_config.h"
#include "registry/mg_registry.h"

static mg_config_t *
t_config(const char *text)
{
    mg_config_opts_t opts = {NULL, true};
    mg_config_t *cfg = NULL;
    mg_err_t err;
    if (mg_config_load_text(text, strlen(text), "reg.yaml", &opts, &cfg, &err) != MG_OK) {
        MG_T_FAIL_AT("config refused: %s", err.msg);
        return NULL;
    }
    return cfg;
}

static mg_snapshot_t *
t_build(const char *text, json_t *store_models)
{
    mg_config_t *cfg = t_config(text);
    if (cfg == NULL) {
        return NULL;
    }
    mg_snapshot_t *s = NULL;
    mg_err_t err;
    if (mg_registry_build(cfg, store_models, NULL, 1, NULL, &s, &err) != MG_OK) {
        MG_T_FAIL_AT("build failed: %s", err.msg);
        s = NULL;
    }
    mg_config_unref(cfg); /* the snapshot holds its own reference */
    return s;
}

static const char *
t_id_of(const mg_snapshot_t *s, const char *model_name)
{
    for (size_t i = 0; i < s->ndeps; i++) {
        if (strcmp(s->deps[i].model_name, model_name) == 0) {
            return s->deps[i].id;
        }
    }
    return NULL;
}

static void
test_ids(void)
{
    MG_T_CASE("deployment ids == LiteLLM's");
    setenv("MG_T_REG_KEY", "sk-from-env", 1);
    const char *text = "model_list:\n"
                       "  - model_name: gpt-4o\n"
                       "    litellm_params:\n"
                       "      model: openai/gpt-4o\n"
                       "      api_key: sk-test-1\n"
                       "  - model_name: tuned\n"
                       "    litellm_params:\n"
                       "      model: openai/gpt-4o-mini\n"
                       "      api_base: http://127.0.0.1:9/v1\n"
                       "      rpm: 100\n"
                       "      temperature: 0.5\n"
                       "      drop_params: true\n"
                       "      api_version: null\n"
                       "  - model_name: hdrs\n"
                       "    litellm_params:\n"
                       "      model: openai/x\n"
                       "      extra_headers: {X-A: \"1\", X-B: two}\n"
                       "      additional_drop_params: [user, seed]\n"
                       "  - model_name: env\n"
                       "    litellm_params:\n"
                       "      model: openai/e\n"
                       "      api_key: os.environ/MG_T_REG_KEY\n"
                       "  - model_name: quote\n"
                       "    litellm_params:\n"
                       "      model: openai/q\n"
                       "      stop: [\"it's\", 'a\"b']\n"
                       "      logit_bias: null\n"
                       "      n: 2\n"
                       "      p: 1.0e-05\n"
                       "      flag: false\n"
                       "  - model_name: given\n"
                       "    litellm_params: {model: openai/g}\n"
                       "    model_info: {id: my-fixed-id}\n";
    mg_snapshot_t *s = t_build(text, NULL);
    if (s == NULL) {
        return;
    }
    CHECK_INT(s->ndeps, 6);
    CHECK_STR(t_id_of(s, "gpt-4o"),
              "a88e943156800c1d2e8644ba8d215bac6155cd8b1314c331c6ea4154599ed8a6");
    CHECK_STR(t_id_of(s, "tuned"),
              "31d9d80724326176ec0882eecdfe134fbe14c6202e0cff881ea981714e4c6d93");
    CHECK_STR(t_id_of(s, "hdrs"),
              "a492ae03e368df80bce287bdfe64e242ca27a9e43183dbb4bed4368746842ca8");
    CHECK_STR(t_id_of(s, "env"),
              "f4511379c9a000e59cc37a78986dea0c85af7e7067fefa42ece49e4226dadfe6");
    CHECK_STR(t_id_of(s, "quote"),
              "7ae4dbd22997aed70be662d2393d891a9ffd799cf80ed905d864127fe00af059");
    CHECK_STR(t_id_of(s, "given"), "my-fixed-id");
    /* ids are recorded in model_info and indexed */
    mg_deployment_t *d = mg_registry_by_id(s, "my-fixed-id");
    CHECK(d != NULL && strcmp(d->model_name, "given") == 0);
    CHECK(d != NULL && json_is_false(json_object_get(d->model_info, "db_model")));
    CHECK(d != NULL && strcmp(json_string_value(json_object_get(d->model_info, "id")),
                              "my-fixed-id") == 0);
    CHECK(mg_registry_by_id(s, "nope") == NULL);
    /* the same config gives the same ids (deterministic) */
    mg_snapshot_t *s2 = t_build(text, NULL);
    CHECK(s2 != NULL && strcmp(t_id_of(s2, "hdrs"), t_id_of(s, "hdrs")) == 0);
    mg_snapshot_unref(s2);
    mg_snapshot_unref(s);

    { /* was a known bug, now fixed: mg_registry_model_id: integral floats (timeout: 600.0) and floats or nested containers inside dict values are not formatted like Python (mg_fmt_pyfloat gives 6e+02; dict values use compact JSON and jansson's 17-digit reals instead of json.dumps) */
        s = t_build("model_list:\n"
                    "  - model_name: slow\n"
                    "    litellm_params: {model: openai/y, timeout: 600.0}\n"
                    "  - model_name: nested\n"
                    "    litellm_params:\n"
                    "      model: openai/z\n"
                    "      extra_body: {opts: {a: 1}, list: [1, 2], t: 0.1}\n",
                    NULL);
        if (s != NULL) {
            CHECK_STR(t_id_of(s, "slow"),
                      "543131a5e59eaa53ddcef9d7c8adfd75e24a5b3f1727fa3a2e9a73be3c81144c");
            CHECK_STR(t_id_of(s, "nested"),
                      "76eaaf4d5db4469e31683ae23f51e59249c59d187a1d1c095b6b71e438d62e73");
            mg_snapshot_unref(s);
        }
    }
}

static void
test_groups_aliases_store(void)
{
    MG_T_CASE("groups, aliases, store rows, duplicate ids");
    const char *text = "model_list:\n"
                       "  - model_name: gpt-4o\n"
                       "    litellm_params: {model: openai/gpt-4o, api_key: k1}\n"
                       "  - model_name: mini\n"
                       "    litellm_params: {model: openai/gpt-4o-mini}\n"
                       "  - model_name: gpt-4o\n"
                       "    litellm_params: {model: azure/gpt-4o-eu, api_key: k2, "
                       "api_base: https://eu.example.invalid}\n"
                       "  - model_name: twin\n"
                       "    litellm_params: {model: openai/t1}\n"
                       "    model_info: {id: same-id}\n"
                       "  - model_name: twin\n"
                       "    litellm_params: {model: openai/t2}\n"
                       "    model_info: {id: same-id}\n"
                       "router_settings:\n"
                       "  model_group_alias:\n"
                       "    gpt4: gpt-4o\n"
                       "    hid: {model: mini, hidden: true}\n"
                       "    nowhere: no-such-group\n";
    json_t *store = json_loads("[{\"model_id\":\"db-1\",\"model_name\":\"mini\","
                               "\"litellm_params\":{\"model\":\"openai/db-mini\"},"
                               "\"model_info\":{}},"
                               "{\"model_id\":\"db-bad\",\"model_name\":\"x\","
                               "\"litellm_params\":{\"rpm\":1},\"model_info\":{}},"
                               "{\"model_id\":\"same-id\",\"model_name\":\"twin\","
                               "\"litellm_params\":{\"model\":\"openai/t3\"},\"model_info\":{}}]",
                               0, NULL);
    mg_snapshot_t *s = t_build(text, store);
    json_decref(store);
    if (s == NULL) {
        return;
    }
    /* 5 config entries - 1 duplicate id + 1 valid store row (one invalid, one duplicate) */
    CHECK_INT(s->ndeps, 5);
    CHECK_INT(s->version, 1);
    mg_group_t *g = mg_registry_group(s, "gpt-4o", 6);
    CHECK(g != NULL && g->ndeps == 2);
    if (g != NULL && g->ndeps == 2) {
        CHECK_STR(g->deps[0]->litellm_model, "openai/gpt-4o");
        CHECK_STR(g->deps[1]->litellm_model, "azure/gpt-4o-eu");
        CHECK_STR(g->deps[1]->provider, "azure");
        CHECK_STR(g->deps[1]->upstream_model, "gpt-4o-eu");
        CHECK_STR(g->deps[1]->api_base, "https://eu.example.invalid");
        /* different credentials, different client keys */
        CHECK(strcmp(g->deps[0]->cred_hash, g->deps[1]->cred_hash) != 0);
    }
    g = mg_registry_group(s, "mini", 4);
    CHECK(g != NULL && g->ndeps == 2);
    if (g != NULL && g->ndeps == 2) {
        CHECK(g->deps[1]->source == MG_DEP_STORE);
        CHECK_STR(g->deps[1]->id, "db-1");
        CHECK(json_is_true(json_object_get(g->deps[1]->model_info, "db_model")));
    }
    /* the name is the length given, not up to a NUL */
    CHECK(mg_registry_group(s, "gpt-4o-extra", 6) != NULL);
    CHECK(mg_registry_group(s, "gpt", 3) == NULL);
    /* aliases */
    g = mg_registry_group(s, "gpt4", 4);
    CHECK(g != NULL && strcmp(g->name, "gpt-4o") == 0);
    g = mg_registry_group(s, "hid", 3);
    CHECK(g != NULL && strcmp(g->name, "mini") == 0);
    CHECK(mg_registry_group(s, "nowhere", 7) == NULL);
    /* duplicate ids: the first wins, the others are reported */
    mg_deployment_t *d = mg_registry_by_id(s, "same-id");
    CHECK(d != NULL && strcmp(d->litellm_model, "openai/t1") == 0);
    CHECK(json_array_size(s->warnings) == 3, "warnings: %zu", json_array_size(s->warnings));
    bool saw_dup = false, saw_bad = false;
    size_t i;
    json_t *w;
    json_array_foreach(s->warnings, i, w) {
        saw_dup = saw_dup || strstr(json_string_value(w), "\"same-id\"") != NULL;
        saw_bad = saw_bad || strstr(json_string_value(w), "\"db-bad\" skipped") != NULL;
    }
    CHECK(saw_dup && saw_bad);
    /* indexes agree with the deployments */
    for (i = 0; i < s->ndeps; i++) {
        CHECK(s->deps[i].index == i);
        CHECK(mg_registry_by_id(s, s->deps[i].id) == &s->deps[i]);
        CHECK_INT(s->deps[i].stats_slot, -1);
    }
    /* deployment JSON without secrets */
    d = mg_registry_group(s, "gpt-4o", 6)->deps[0];
    json_t *j = mg_registry_deployment_json(d, false);
    CHECK(json_object_get(json_object_get(j, "litellm_params"), "api_key") == NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "model_info"), "id")), d->id);
    json_decref(j);
    j = mg_registry_deployment_json(d, true);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "litellm_params"), "api_key")),
              "k1");
    json_decref(j);
    /* references */
    CHECK(mg_snapshot_ref(s) == s && s->refs == 2);
    mg_snapshot_unref(s);
    mg_snapshot_unref(s);
    mg_snapshot_unref(NULL);
}

static int t_attached, t_detached, t_fail_at = -1;

static int
t_attach(void *ud, mg_snapshot_t *s, mg_deployment_t *d, mg_err_t *err)
{
    (void) ud;
    (void) s;
    if (t_attached == t_fail_at) {
        return mg_err_set(err, MG_ERR_INTERNAL, "attach refused for %s", d->model_name);
    }
    t_attached++;
    d->stats_slot = 42;
    return MG_OK;
}

static void
t_detach(void *ud, mg_snapshot_t *s, mg_deployment_t *d)
{
    (void) ud;
    (void) s;
    (void) d;
    t_detached++;
}

static void
test_hooks(void)
{
    MG_T_CASE("attach/detach hooks");
    mg_config_t *cfg = t_config("model_list:\n"
                                "  - {model_name: a, litellm_params: {model: openai/a}}\n"
                                "  - {model_name: b, litellm_params: {model: openai/b}}\n"
                                "  - {model_name: c, litellm_params: {model: openai/c}}\n");
    if (cfg == NULL) {
        return;
    }
    mg_registry_hooks_t hooks = {t_attach, t_detach, NULL};
    mg_snapshot_t *s = NULL;
    mg_err_t err;
    CHECK(mg_registry_build(cfg, NULL, NULL, 7, &hooks, &s, &err) == MG_OK);
    CHECK_INT(t_attached, 3);
    CHECK_INT(s->deps[2].stats_slot, 42);
    mg_snapshot_unref(s);
    CHECK_INT(t_detached, 3);
    /* an attach failure fails the build and detaches what was attached */
    t_attached = t_detached = 0;
    t_fail_at = 2;
    CHECK(mg_registry_build(cfg, NULL, NULL, 8, &hooks, &s, &err) == MG_ERROR);
    CHECK_CONTAINS(err.msg, "attach refused for c");
    CHECK_INT(t_attached, 2);
    CHECK_INT(t_detached, 2);
    CHECK_INT(cfg->refs, 1); /* the failed snapshot released its config reference */
    mg_config_unref(cfg);
}

static mg_group_t *
t_wild(const mg_snapshot_t *s, const char *name, char *matched)
{
    return mg_registry_wildcard(s, name, strlen(name), matched, 700);
}

static void
test_wildcards(void)
{
    MG_T_CASE("wildcards");
    mg_snapshot_t *s = t_build("model_list:\n"
                               "  - {model_name: '*', litellm_params: {model: 'openai/*'}}\n"
                               "  - {model_name: 'openai/*', litellm_params: {model: 'openai/*'}}\n"
                               "  - {model_name: 'my-*', litellm_params: {model: 'openai/gpt-*'}}\n"
                               "  - model_name: 'openai/gpt-4*'\n"
                               "    litellm_params: {model: 'openai/gpt-4*', api_key: k}\n"
                               "  - {model_name: exact, litellm_params: {model: openai/e}}\n",
                               NULL);
    if (s == NULL) {
        return;
    }
    /* longest pattern first */
    CHECK_INT(s->nwildcards, 4);
    if (s->nwildcards == 4) {
        CHECK_STR(s->wildcards[0]->name, "openai/gpt-4*");
        CHECK_STR(s->wildcards[1]->name, "openai/*");
        CHECK_STR(s->wildcards[2]->name, "my-*");
        CHECK_STR(s->wildcards[3]->name, "*");
    }
    /* wildcard groups are not exact groups */
    CHECK(mg_registry_group(s, "openai/*", 8) == NULL);
    CHECK(mg_registry_group(s, "exact", 5) != NULL);
    char matched[700];
    mg_group_t *g = t_wild(s, "openai/gpt-4o", matched);
    CHECK(g != NULL && strcmp(g->name, "openai/gpt-4*") == 0);
    CHECK_STR(matched, "openai/gpt-4o");
    g = t_wild(s, "openai/o3-mini", matched);
    CHECK(g != NULL && strcmp(g->name, "openai/*") == 0);
    g = t_wild(s, "my-4o", matched);
    CHECK(g != NULL && strcmp(g->name, "my-*") == 0);
    g = t_wild(s, "anything at all", matched);
    CHECK(g != NULL && strcmp(g->name, "*") == 0);
    /* regex metacharacters in names are literal */
    g = t_wild(s, "myX4o", matched);
    CHECK(g != NULL && strcmp(g->name, "*") == 0);

    /* model substitution */
    mg_deployment_t *my = NULL;
    for (size_t i = 0; i < s->ndeps; i++) {
        if (strcmp(s->deps[i].model_name, "my-*") == 0) {
            my = &s->deps[i];
        }
    }
    if (my != NULL) {
        char *m = mg_registry_wildcard_model(my, "my-4o-mini");
        CHECK_STR(m, "openai/gpt-4o-mini");
        free(m);
    }
    mg_snapshot_unref(s);

    /* captures vs stars in the target */
    s = t_build("model_list:\n"
                "  - {model_name: '*/*', litellm_params: {model: 'openai/*'}}\n"
                "  - {model_name: 'x-*', litellm_params: {model: 'p/*-*'}}\n"
                "  - {model_name: 'fixed-*', litellm_params: {model: 'openai/gpt-4o'}}\n",
                NULL);
    if (s != NULL) {
        /* more captures than stars in the target: the whole requested name */
        char *m = mg_registry_wildcard_model(&s->deps[0], "a/b");
        CHECK_STR(m, "a/b");
        free(m);
        /* fewer captures: remaining stars stay */
        m = mg_registry_wildcard_model(&s->deps[1], "x-foo");
        CHECK_STR(m, "p/foo-*");
        free(m);
        /* no star in the target: unchanged */
        m = mg_registry_wildcard_model(&s->deps[2], "fixed-anything");
        CHECK_STR(m, "openai/gpt-4o");
        free(m);
        mg_snapshot_unref(s);
    }

    /* LiteLLM's second lookup: provider/name with the provider inferred from a bare name */
    s = t_build("model_list:\n"
                "  - {model_name: 'openai/*', litellm_params: {model: 'openai/*'}}\n"
                "  - {model_name: 'anthropic/claude-3*', litellm_params: "
                "{model: 'anthropic/claude-3*'}}\n",
                NULL);
    if (s != NULL) {
        g = t_wild(s, "gpt-4o", matched);
        CHECK(g != NULL && strcmp(g->name, "openai/*") == 0);
        CHECK_STR(matched, "openai/gpt-4o");
        g = t_wild(s, "claude-3-5-sonnet", matched);
        CHECK(g != NULL && strcmp(g->name, "anthropic/claude-3*") == 0);
        CHECK_STR(matched, "anthropic/claude-3-5-sonnet");
        CHECK(t_wild(s, "claude-2", matched) == NULL);
        CHECK(t_wild(s, "llama-3", matched) == NULL);       /* no provider known */
        CHECK(t_wild(s, "groq/gpt-4o", matched) == NULL);   /* has a provider already */
        g = t_wild(s, "openai/gpt-4o", matched);
        CHECK(g != NULL && strcmp(matched, "openai/gpt-4o") == 0);
        mg_snapshot_unref(s);
    }

    { /* was a known bug, now fixed: wildcard order: LiteLLM sorts by len(re.escape(name) with * -> (.*)) then by the count of regex specials, both descending; moongate by strlen(name), then fewer stars first */
        /* both names are 14 chars; LiteLLM's regexes are 18 vs 21 chars: "*-mini*" first */
        s = t_build("model_list:\n"
                    "  - {model_name: 'openai/gpt-4o*', litellm_params: {model: 'openai/a*'}}\n"
                    "  - {model_name: 'openai/*-mini*', litellm_params: {model: 'openai/b*'}}\n",
                    NULL);
        if (s != NULL) {
            g = t_wild(s, "openai/gpt-4o-mini", matched);
            CHECK(g != NULL && strcmp(g->name, "openai/*-mini*") == 0, "picked %s",
                  g ? g->name : "(none)");
            mg_snapshot_unref(s);
        }
    }
}

static void
test_split_model(void)
{
    MG_T_CASE("split_model");
    const struct {
        const char *in, *custom, *prov, *model;
    } cases[] = {
        {"openai/gpt-4o", NULL, "openai", "gpt-4o"},
        {"gpt-4o", NULL, "openai", "gpt-4o"},
        {"gpt-3.5-turbo-instruct", NULL, "text-completion-openai", "gpt-3.5-turbo-instruct"},
        {"claude-3-5-sonnet", NULL, "anthropic", "claude-3-5-sonnet"},
        {"hosted_vllm/meta-llama/Llama-3.1-8B", NULL, "hosted_vllm", "meta-llama/Llama-3.1-8B"},
        {"meta-llama/Llama-3.1-8B", NULL, "", "meta-llama/Llama-3.1-8B"},
        {"my-model", "openai", "openai", "my-model"},
        {"openai/x", "openai", "openai", "x"},
        {"azure/x", "openai", "openai", "azure/x"},
        {"o3-mini", NULL, "openai", "o3-mini"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p, *m;
        mg_registry_split_model(cases[i].in, cases[i].custom, &p, &m);
        CHECK(strcmp(p, cases[i].prov) == 0 && strcmp(m, cases[i].model) == 0,
              "%s: got (%s, %s), expected (%s, %s)", cases[i].in, p, m, cases[i].prov,
              cases[i].model);
        free(p);
        free(m);
    }
}

static mg_deployment_t *
t_dep(mg_snapshot_t *s, const char *model_name)
{
    for (size_t i = 0; i < s->ndeps; i++) {
        if (strcmp(s->deps[i].model_name, model_name) == 0) {
            return &s->deps[i];
        }
    }
    return NULL;
}

static void
test_cost_facts(void)
{
    MG_T_CASE("cost map facts derived with the snapshot");
    /* a carried map: base_model, prices, windows, bare-name providers all come from it */
    static const char map[] =
        "{\"gpt-4o\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 2.5e-6, "
        "\"output_cost_per_token\": 1e-5, \"max_input_tokens\": 128000},"
        " \"gpt-4o-mini\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 1.5e-7,"
        " \"output_cost_per_token\": 6e-7, \"max_input_tokens\": 64000},"
        " \"opus-new-x\": {\"litellm_provider\": \"anthropic\", \"input_cost_per_token\": 7e-6}}";
    mg_config_t *cfg = t_config(
        "model_list:\n"
        "  - {model_name: a, litellm_params: {model: openai/gpt-4o}}\n"
        "  - {model_name: p, litellm_params: {model: openai/gpt-4o, input_cost_per_token: "
        "'1e-6'}}\n"
        "  - {model_name: b, litellm_params: {model: openai/my-ft}, model_info: {base_model: "
        "gpt-4o-mini}}\n"
        "  - {model_name: u, litellm_params: {model: openai/gpt-4o}, model_info: "
        "{max_input_tokens: 500}}\n"
        "  - {model_name: bare, litellm_params: {model: opus-new-x}}\n"
        "  - {model_name: none, litellm_params: {model: openai/unknown-model}}\n"
        "  - {model_name: 'anthropic/*', litellm_params: {model: 'anthropic/*'}}\n");
    if (cfg == NULL) {
        return;
    }
    json_t *node = json_pack("{s:s,s:s,s:s,s:I}", "source", "test-map", "origin", "file", "text",
                             map, "loaded_ms", (json_int_t) 1234);
    mg_config_t *with = NULL;
    mg_err_t err;
    CHECK(mg_config_with_costmap(cfg, node, &with, &err) == MG_OK, "with_costmap: %s", err.msg);
    json_decref(node);
    mg_config_unref(cfg);
    if (with == NULL) {
        return;
    }
    CHECK_STR(with->costmap->source, "test-map");
    CHECK_INT(with->costmap->loaded_real_ms, 1234);
    CHECK(mg_config_costmap_node(with) != NULL);
    mg_snapshot_t *s = NULL;
    CHECK(mg_registry_build(with, NULL, NULL, 1, NULL, &s, &err) == MG_OK, "%s", err.msg);
    mg_config_unref(with);
    if (s == NULL) {
        return;
    }
    CHECK(s->costmap != NULL && s->costmap->count == 3);
    mg_deployment_t *d = t_dep(s, "a");
    CHECK(d != NULL && d->cost_entry != NULL && strcmp(d->cost_entry->name, "gpt-4o") == 0);
    CHECK(d != NULL && d->input_cost == 2.5e-6 && d->output_cost == 1e-5);
    CHECK_INT(d != NULL ? d->max_input_tokens : 0, 128000);
    d = t_dep(s, "p");
    CHECK(d != NULL && d->input_cost == 1e-6 && d->output_cost == 1e-5,
          "the deployment's input price, the map's output price");
    CHECK(d != NULL && d->prices.input_cost_per_token == 1e-6);
    d = t_dep(s, "b");
    CHECK(d != NULL && d->cost_entry != NULL && strcmp(d->cost_entry->name, "gpt-4o-mini") == 0,
          "model_info.base_model names the entry");
    CHECK_INT(d != NULL ? d->max_input_tokens : 0, 64000);
    d = t_dep(s, "u");
    CHECK_INT(d != NULL ? d->max_input_tokens : 0, 500);
    d = t_dep(s, "bare");
    CHECK_STR(d != NULL ? d->provider : NULL, "anthropic");
    d = t_dep(s, "none");
    CHECK(d != NULL && d->cost_entry == NULL && d->input_cost < 0 && d->max_input_tokens == 0);
    d = t_dep(s, "anthropic/*");
    CHECK(d != NULL && d->cost_entry == NULL, "a wildcard's entry is looked up per request");
    const mg_costmap_entry_t *e = d != NULL ? mg_registry_cost_entry(s, d, "opus-new-x") : NULL;
    CHECK(e != NULL && strcmp(e->name, "opus-new-x") == 0);
    /* wildcard routing: a bare name the map gives a provider reaches provider/... */
    CHECK_STR(mg_registry_bare_provider(s, "opus-new-x"), "anthropic");
    CHECK_STR(mg_registry_bare_provider(s, "gpt-4o-mini"), "openai");
    CHECK(mg_registry_bare_provider(s, "unknown-thing") == NULL);
    CHECK(mg_registry_bare_provider(s, "openai/gpt-4o") == NULL);
    char matched[256];
    mg_group_t *g = mg_registry_wildcard(s, "opus-new-x", strlen("opus-new-x"), matched,
                                         sizeof(matched));
    CHECK(g != NULL && strcmp(matched, "anthropic/opus-new-x") == 0, "matched %s", matched);
    /* prices never become request parameters */
    d = t_dep(s, "p");
    CHECK(d != NULL && json_object_get(d->defaults, "input_cost_per_token") == NULL);
    mg_snapshot_unref(s);

    /* a config with a price that cannot be used is refused at load */
    mg_config_opts_t opts = {NULL, true};
    static const char bad[] =
        "model_list:\n  - {model_name: x, litellm_params: {model: openai/gpt-4o}, model_info: "
        "{output_cost_per_token: -1}}\n";
    mg_config_t *c2 = NULL;
    CHECK(mg_config_load_text(bad, strlen(bad), "bad.yaml", &opts, &c2, &err) == MG_ERROR);
    CHECK_CONTAINS(err.msg, "model_info.output_cost_per_token must be a number >= 0");
    mg_config_unref(c2);
    /* without a carried map, a config prices with the built-in one */
    mg_config_t *c3 = t_config("model_list: []\n");
    CHECK(c3 != NULL && c3->costmap != NULL && strcmp(c3->costmap->source, "builtin") == 0);
    CHECK(c3 != NULL && mg_config_costmap_node(c3) == NULL);
    mg_config_unref(c3);
}

int
main(void)
{
    test_cost_facts();
    test_ids();
    test_groups_aliases_store();
    test_hooks();
    test_wildcards();
    test_split_model();
    return mg_test_done();
}
