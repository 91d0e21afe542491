/*
 * test_costmap.c -- core/registry/mg_costmap.c: LiteLLM-format cost maps refused with their
 * reason, lookups in LiteLLM's order, provider sets, the cost of a call against figures
 * computed by hand, the reload coverage guard, and moongate's shipped map.
 *
 * Expected costs are written out as the arithmetic they come from (tokens x USD per token),
 * so a wrong figure shows which term is off.
 */
#include "mg_test.h"

#include "base/mg_err.h"
#include "registry/mg_costmap.h"

#include <math.h>

extern const char mg_costmap_default_json[];
extern const size_t mg_costmap_default_json_len;

#define CHECK_USD(a, b)                                                                            \
    do {                                                                                           \
        double mg_t_x = (a), mg_t_y = (b);                                                         \
        if (fabs(mg_t_x - mg_t_y) <= 1e-12 + 1e-9 * fabs(mg_t_y)) {                                \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s == %s: got %.12g, expected %.12g", #a, #b, mg_t_x, mg_t_y);           \
        }                                                                                          \
    } while (0)

/* One map for lookups, sets and costs.  Prices are round numbers, not anyone's list. */
static const char t_map_text[] =
    "{\n"
    "  \"sample_spec\": {\"input_cost_per_token\": 0.0, \"litellm_provider\": \"one of ...\",\n"
    "                  \"max_tokens\": \"LEGACY parameter\", \"mode\": \"one of: chat\"},\n"
    "  \"gpt-4o\": {\"litellm_provider\": \"openai\", \"mode\": \"chat\",\n"
    "             \"input_cost_per_token\": 2.5e-06, \"output_cost_per_token\": 1e-05,\n"
    "             \"cache_read_input_token_cost\": 1.25e-06, \"max_input_tokens\": 128000,\n"
    "             \"max_output_tokens\": 16384, \"max_tokens\": 16384.0,\n"
    "             \"supports_vision\": true, \"brand_new_field\": {\"x\": [1, 2]}},\n"
    "  \"azure/gpt-4o\": {\"litellm_provider\": \"azure\", \"mode\": \"chat\",\n"
    "                   \"input_cost_per_token\": 2.75e-06, \"output_cost_per_token\": 1.1e-05},\n"
    "  \"llama-x\": {\"litellm_provider\": \"together_ai\", \"input_cost_per_token\": 1e-07,\n"
    "              \"output_cost_per_token\": 2e-07},\n"
    "  \"groq/llama-x\": {\"litellm_provider\": \"groq\", \"input_cost_per_token\": 5e-08,\n"
    "                   \"output_cost_per_token\": 8e-08},\n"
    "  \"claude-sonnet-4-5\": {\"litellm_provider\": \"anthropic\", \"mode\": \"chat\",\n"
    "      \"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05,\n"
    "      \"cache_creation_input_token_cost\": 3.75e-06, \"cache_read_input_token_cost\": 3e-07,\n"
    "      \"cache_creation_input_token_cost_above_1hr\": 6e-06,\n"
    "      \"input_cost_per_token_above_128k_tokens\": 4e-06,\n"
    "      \"input_cost_per_token_above_200k_tokens\": 6e-06,\n"
    "      \"output_cost_per_token_above_200k_tokens\": 2.25e-05,\n"
    "      \"cache_creation_input_token_cost_above_200k_tokens\": 7.5e-06,\n"
    "      \"cache_read_input_token_cost_above_200k_tokens\": 6e-07,\n"
    "      \"input_cost_per_token_above_200k_tokens_priority\": 1e-05,\n"
    "      \"search_context_cost_per_query\": {\"search_context_size_low\": 0.01}},\n"
    "  \"reasoner\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 1e-06,\n"
    "               \"output_cost_per_token\": 4e-06,\n"
    "               \"output_cost_per_reasoning_token\": 1e-05},\n"
    "  \"o3-mini\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 1.1e-06,\n"
    "              \"output_cost_per_token\": 4.4e-06, \"cache_read_input_token_cost\": 5.5e-07,\n"
    "              \"supports_reasoning\": true, \"deprecation_date\": \"2026-01-01\"},\n"
    "  \"text-embedding-3-small\": {\"litellm_provider\": \"openai\", \"mode\": \"embedding\",\n"
    "              \"input_cost_per_token\": 2e-08, \"output_cost_per_token\": 0.0},\n"
    "  \"whisper-1\": {\"litellm_provider\": \"openai\", \"mode\": \"audio_transcription\",\n"
    "                \"input_cost_per_second\": 0.0001},\n"
    "  \"dall-e-3\": {\"litellm_provider\": \"openai\", \"mode\": \"image_generation\",\n"
    "               \"output_cost_per_image\": 0.04},\n"
    "  \"ollama/llama3\": {\"litellm_provider\": \"ollama\", \"input_cost_per_token\": 0,\n"
    "                    \"output_cost_per_token\": 0},\n"
    "  \"nocache-model\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 2e-06,\n"
    "                    \"output_cost_per_token\": 8e-06,\n"
    "                    \"input_cost_per_token_batches\": null},\n"
    "  \"ft:gpt-4o-mini\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 3e-07,\n"
    "                     \"output_cost_per_token\": 1.2e-06},\n"
    "  \"gpt-3.5-turbo-instruct\": {\"litellm_provider\": \"text-completion-openai\",\n"
    "              \"input_cost_per_token\": 1.5e-06, \"output_cost_per_token\": 2e-06},\n"
    "  \"anthropic.claude-3-5-haiku-20241022-v1:0\": {\"litellm_provider\": \"bedrock\",\n"
    "              \"input_cost_per_token\": 8e-07, \"output_cost_per_token\": 4e-06},\n"
    "  \"anthropic.claude-sonnet-4-5-20250929-v1:0\": {\n"
    "              \"litellm_provider\": \"bedrock_converse\",\n"
    "              \"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05},\n"
    "  \"bedrock/us-east-1/anthropic.claude-3-5-haiku-20241022-v1:0\": {\n"
    "              \"litellm_provider\": \"bedrock\", \"input_cost_per_token\": 9e-07},\n"
    "  \"gemini/gemini-2.0-flash\": {\"litellm_provider\": \"gemini\",\n"
    "              \"input_cost_per_token\": 1e-07,\n"
    "              \"output_cost_per_token\": 4e-07},\n"
    "  \"gemini-2.0-flash\": {\"litellm_provider\": \"vertex_ai-language-models\",\n"
    "              \"input_cost_per_token\": 1.5e-07, \"output_cost_per_token\": 6e-07},\n"
    "  \"vertex_ai/claude-x@20250101\": {\"litellm_provider\": \"vertex_ai-anthropic_models\",\n"
    "              \"input_cost_per_token\": 3e-06},\n"
    "  \"vertex_ai/mistral-x\": {\"litellm_provider\": \"vertex_ai-mistral_models\",\n"
    "              \"input_cost_per_token\": 1e-06},\n"
    "  \"fireworks-ai-up-to-4b\": {\"litellm_provider\": \"fireworks_ai\",\n"
    "              \"input_cost_per_token\": 1e-07},\n"
    "  \"fireworks_ai/accounts/fireworks/models/llama-v3p1-8b-instruct\": {\n"
    "              \"litellm_provider\": \"fireworks_ai\", \"input_cost_per_token\": 2e-07},\n"
    "  \"xai/grok-x\": {\"litellm_provider\": \"xai\", \"input_cost_per_token\": 2e-06},\n"
    "  \"grok-x\": {\"litellm_provider\": \"xai\", \"input_cost_per_token\": 3e-06},\n"
    "  \"gemini-2.0-flash-lite-001\": {\"litellm_provider\": \"gemini\",\n"
    "              \"input_cost_per_token\": 7e-08},\n"
    "  \"gemini/gemini-2.0-flash-lite\": {\"litellm_provider\": \"gemini\",\n"
    "              \"input_cost_per_token\": 8e-08},\n"
    "  \"MixedCase-Model\": {\"litellm_provider\": \"openai\", \"input_cost_per_token\": 1e-06},\n"
    "  \"fallback_generalizations\": {\"rules\": [{\"name\": \"r\", \"pattern\": \"^x\"}]}\n"
    "}\n";

static mg_costmap_t *
t_parse(const char *text, const char *source)
{
    mg_costmap_t *m = NULL;
    mg_err_t err;
    if (mg_costmap_parse(text, strlen(text), source, &m, &err) != MG_OK) {
        MG_T_FAIL_AT("cost map refused: %s", err.msg);
        return NULL;
    }
    return m;
}

/* The reason a text is refused with (a static buffer), or NULL if it was accepted. */
static const char *
t_refused(const char *text, size_t len)
{
    static mg_err_t err;
    mg_costmap_t *m = NULL;
    mg_err_clear(&err);
    if (mg_costmap_parse(text, len, "t.json", &m, &err) == MG_OK) {
        mg_costmap_unref(m);
        return NULL;
    }
    if (m != NULL || err.cls != MG_ERR_CONFIG) {
        MG_T_FAIL_AT("a refusal must leave *out NULL and say config, got class %d", err.cls);
    }
    return err.msg;
}

#define REFUSED(text) t_refused((text), strlen(text))

static const char *
t_name(const mg_costmap_entry_t *e)
{
    return e != NULL ? e->name : NULL;
}

static void
test_malformed(void)
{
    MG_T_CASE("malformed maps are refused with their reason");
    const char *r;

    r = t_refused("", 0);
    CHECK_CONTAINS(r, "cost map \"t.json\": empty input (0 bytes)");

    r = REFUSED("{\n  \"m\": {\"input_cost_per_token\": 1e-06,,\n  \"x\": 1}\n}\n");
    CHECK_CONTAINS(r, "invalid JSON at line 2, column 39: string or '}' expected near ','");

    /* a fetch that answered with an error page */
    r = REFUSED("<html><body>502 Bad Gateway</body></html>");
    CHECK_CONTAINS(r, "invalid JSON at line 1, column 1");

    /* truncated: half of the shipped map */
    r = t_refused(mg_costmap_default_json, mg_costmap_default_json_len / 2);
    CHECK_CONTAINS(r, "invalid JSON at line ");
    CHECK(r != NULL && strstr(r, "at line 1,") == NULL, "truncation is found past line 1: %s", r);

    r = REFUSED("{\"m\": {\"input_cost_per_token\": 1e-06},\n"
                " \"m\": {\"input_cost_per_token\": 2e-06}}");
    CHECK_CONTAINS(r, "duplicate object key");

    r = REFUSED("{}");
    CHECK_CONTAINS(r, "no model entries");
    r = REFUSED("{\"sample_spec\": {\"input_cost_per_token\": 0.0, \"max_tokens\": \"LEGACY\"}}");
    CHECK_CONTAINS(r, "no model entries");

    r = REFUSED("[{\"input_cost_per_token\": 1e-06}]");
    CHECK_CONTAINS(r, "the top level must be an object of model name -> entry, got array");
    r = REFUSED("\"gpt-4o\"");
    CHECK_CONTAINS(r, "the top level must be an object of model name -> entry, got string");

    r = REFUSED("{\"m1\": {\"input_cost_per_token\": 1e-06},\n"
                " \"m2\": {\"litellm_provider\": \"openai\", \"output_cost_per_token\": \"0.1\"}}");
    CHECK_CONTAINS(r, "entry \"m2\": output_cost_per_token must be a number >= 0, "
                      "got string \"0.1\"");

    r = REFUSED("{\"m\": {\"input_cost_per_token\": -1e-06}}");
    CHECK_CONTAINS(r, "entry \"m\": input_cost_per_token must be a number >= 0, got number -1e-06");

    r = REFUSED("{\"m\": {\"cache_read_input_token_cost\": true}}");
    CHECK_CONTAINS(r, "cache_read_input_token_cost must be a number >= 0, got boolean");

    r = REFUSED("{\"m\": {\"search_context_cost_per_query\":"
                " {\"search_context_size_low\": \"x\"}}}");
    CHECK_CONTAINS(r, "search_context_cost_per_query.search_context_size_low must be a number");

    r = REFUSED("{\"m\": 5}");
    CHECK_CONTAINS(r, "entry \"m\" must be an object, got number 5");

    r = REFUSED("{\"m\": {\"supports_vision\": \"yes\"}}");
    CHECK_CONTAINS(r, "entry \"m\": supports_vision must be true or false, got string \"yes\"");

    r = REFUSED("{\"m\": {\"max_tokens\": 1.5}}");
    CHECK_CONTAINS(r, "entry \"m\": max_tokens must be a whole number >= 0, got number 1.5");
    r = REFUSED("{\"m\": {\"max_input_tokens\": -3}}");
    CHECK_CONTAINS(r, "max_input_tokens must be a whole number >= 0");
    r = REFUSED("{\"m\": {\"max_output_tokens\": \"8192\"}}");
    CHECK_CONTAINS(r, "max_output_tokens must be a whole number >= 0, got string \"8192\"");

    r = REFUSED("{\"m\": {\"litellm_provider\": 5}}");
    CHECK_CONTAINS(r, "entry \"m\": litellm_provider must be a string, got number 5");
    r = REFUSED("{\"m\": {\"mode\": [\"chat\"]}}");
    CHECK_CONTAINS(r, "entry \"m\": mode must be a string, got array");

    r = REFUSED("{\"\": {\"input_cost_per_token\": 1e-06}}");
    CHECK_CONTAINS(r, "an entry has an empty name");

    /* the first offending entry is the one named */
    r = REFUSED("{\"ok\": {\"input_cost_per_token\": 1e-06},\n"
                " \"bad1\": {\"input_cost_per_token\": \"x\"},\n"
                " \"bad2\": {\"input_cost_per_token\": -1}}");
    CHECK_CONTAINS(r, "entry \"bad1\": input_cost_per_token");

    MG_T_CASE("what is accepted");
    CHECK(REFUSED("{\"m\": {\"input_cost_per_token\": null, \"output_cost_per_token\": 1e-06,"
                  " \"some_future_field\": {\"a\": [1, \"two\"]}, \"max_tokens\": 2000000.0,"
                  " \"input_cost_per_token\": 0}}") != NULL,
      "a duplicated field inside an entry is a duplicate key too");
    mg_costmap_t *m = t_parse("{\"m\": {\"input_cost_per_token\": null,"
                              " \"output_cost_per_token\": 1e-06,"
                              " \"some_future_field\": {\"a\": [1, \"two\"]},"
                              " \"max_tokens\": 2000000.0, \"litellm_provider\": null}}",
                              "ok.json");
    if (m != NULL) {
        const mg_costmap_entry_t *e = mg_costmap_get(m, "m");
        CHECK(e != NULL);
        if (e != NULL) {
            CHECK(e->input_cost_per_token < 0, "null is absent");
            CHECK_USD(e->output_cost_per_token, 1e-06);
            CHECK_INT(e->max_tokens, 2000000);
            CHECK(e->provider == NULL);
            CHECK(json_is_object(json_object_get(e->info, "some_future_field")),
                  "unknown fields are kept");
        }
        mg_costmap_unref(m);
    }
}

static void
test_map_facts(void)
{
    MG_T_CASE("count, hash, source, typed fields");
    mg_costmap_t *m = t_parse(t_map_text, "test-map");
    if (m == NULL) {
        return;
    }
    CHECK_INT(m->count, 28); /* 30 keys minus sample_spec and fallback_generalizations */
    CHECK_STR(m->source, "test-map");
    CHECK_INT(m->bytes, strlen(t_map_text));
    CHECK(m->loaded_real_ms > 1600000000000LL);
    CHECK(mg_costmap_get(m, "sample_spec") == NULL, "sample_spec is documentation");
    CHECK(mg_costmap_get(m, "fallback_generalizations") == NULL);

    const mg_costmap_entry_t *e = mg_costmap_get(m, "gpt-4o");
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK_STR(e->provider, "openai");
        CHECK_STR(e->mode, "chat");
        CHECK_USD(e->input_cost_per_token, 2.5e-06);
        CHECK_USD(e->cache_read_input_token_cost, 1.25e-06);
        CHECK(e->cache_creation_input_token_cost < 0);
        CHECK(e->output_cost_per_reasoning_token < 0);
        CHECK_INT(e->max_input_tokens, 128000);
        CHECK_INT(e->max_output_tokens, 16384);
        CHECK_INT(e->max_tokens, 16384);
        CHECK_INT(e->ntiers, 0);
        CHECK_INT(mg_costmap_supports(e, "supports_vision"), 1);
        CHECK_INT(mg_costmap_supports(e, "supports_pdf_input"), -1);
        CHECK(json_is_object(json_object_get(e->info, "brand_new_field")));
    }
    e = mg_costmap_get(m, "claude-sonnet-4-5");
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK_INT(e->ntiers, 2); /* the _priority variant is not a tier of the standard price */
        if (e->ntiers == 2) {
            CHECK_USD(e->tiers[0].threshold, 200000);
            CHECK_USD(e->tiers[0].input, 6e-06);
            CHECK_USD(e->tiers[0].output, 2.25e-05);
            CHECK_USD(e->tiers[0].cache_read, 6e-07);
            CHECK_USD(e->tiers[0].cache_creation, 7.5e-06);
            CHECK_USD(e->tiers[1].threshold, 128000);
            CHECK_USD(e->tiers[1].input, 4e-06);
            CHECK(e->tiers[1].output < 0 && e->tiers[1].cache_read < 0);
        }
        CHECK_USD(e->cache_creation_input_token_cost_above_1hr, 6e-06);
        CHECK(e->max_tokens < 0, "absent limits are negative");
    }
    e = mg_costmap_get(m, "whisper-1");
    CHECK(e != NULL && e->input_cost_per_second == 0.0001 && e->output_cost_per_second < 0);
    e = mg_costmap_get(m, "dall-e-3");
    CHECK(e != NULL && e->output_cost_per_image == 0.04 && e->input_cost_per_token < 0);
    mg_costmap_unref(m);

    /* sha256 of the bytes given, checked against python3's hashlib */
    m = t_parse("{\"m\": {\"input_cost_per_token\": 1e-06}}", "h");
    if (m != NULL) {
        CHECK_STR(m->sha256, "f15f205a9f7fbdfdacc98526c235ab11b213b35a2d6f4fff0837c873977bb02a");
        CHECK_INT(m->count, 1);
        mg_costmap_unref(m);
    }
    m = t_parse("{\"m\": {\"input_cost_per_token\": 2e-06}}", "h");
    if (m != NULL) {
        CHECK(strcmp(m->sha256,
                     "f15f205a9f7fbdfdacc98526c235ab11b213b35a2d6f4fff0837c873977bb02a") != 0,
              "another content, another hash");
        mg_costmap_unref(m);
    }

    MG_T_CASE("references");
    m = t_parse(t_map_text, "refs");
    if (m != NULL) {
        CHECK(mg_costmap_ref(m) == m);
        CHECK_INT(m->refs, 2);
        mg_costmap_unref(m);
        CHECK_INT(m->refs, 1);
        mg_costmap_unref(m);
    }
    mg_costmap_unref(NULL);
}

static void
test_lookup(void)
{
    MG_T_CASE("lookups in LiteLLM's order");
    mg_costmap_t *m = t_parse(t_map_text, "lookup");
    if (m == NULL) {
        return;
    }
    CHECK_STR(t_name(mg_costmap_get(m, "gpt-4o")), "gpt-4o");
    CHECK_STR(t_name(mg_costmap_get(m, "GPT-4O")), "gpt-4o");
    CHECK(mg_costmap_get(m, "gpt-5") == NULL);

    /* the model as given, with and without its provider prefix */
    CHECK_STR(t_name(mg_costmap_lookup(m, "openai", "gpt-4o", NULL)), "gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, "openai", "openai/gpt-4o", NULL)), "gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, NULL, "openai/gpt-4o", NULL)), "gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, "", "gpt-4o", NULL)), "gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, "openai", "MIXEDCASE-model", NULL)), "MixedCase-Model");

    /* "provider/model" comes before the bare model, and the provider must match */
    CHECK_STR(t_name(mg_costmap_lookup(m, "groq", "llama-x", NULL)), "groq/llama-x");
    CHECK_STR(t_name(mg_costmap_lookup(m, "groq", "groq/llama-x", NULL)), "groq/llama-x");
    CHECK_STR(t_name(mg_costmap_lookup(m, "together_ai", "llama-x", NULL)), "llama-x");
    CHECK_STR(t_name(mg_costmap_lookup(m, "together_ai", "together_ai/llama-x", NULL)), "llama-x");
    CHECK_STR(t_name(mg_costmap_lookup(m, "azure", "gpt-4o", NULL)), "azure/gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, "xai", "grok-x", NULL)), "xai/grok-x");
    CHECK_STR(t_name(mg_costmap_lookup(m, NULL, "grok-x", NULL)), "grok-x");
    /* the model as given comes before its stripped forms */
    CHECK_STR(t_name(mg_costmap_lookup(m, "gemini", "gemini-2.0-flash-lite-001", NULL)),
              "gemini-2.0-flash-lite-001");
    CHECK_STR(t_name(mg_costmap_lookup(m, "gemini", "gemini-2.0-flash-lite-002", NULL)),
              "gemini/gemini-2.0-flash-lite");
    CHECK(mg_costmap_lookup(m, "anthropic", "gpt-4o", NULL) == NULL,
          "an openai entry does not price an anthropic deployment");
    CHECK(mg_costmap_lookup(m, "deepseek", "llama-x", NULL) == NULL);
    CHECK_STR(t_name(mg_costmap_lookup(m, "azure_ai", "o3-mini", NULL)), "o3-mini");
    CHECK_STR(t_name(mg_costmap_lookup(m, "litellm_proxy", "claude-sonnet-4-5", NULL)),
              "claude-sonnet-4-5");
    CHECK(mg_costmap_lookup(m, "hosted_vllm", "hosted_vllm/meta-llama/Llama-3.1-8B", NULL) == NULL);
    CHECK(mg_costmap_lookup(m, NULL, "sample_spec", NULL) == NULL);
    CHECK(mg_costmap_lookup(m, "openai", NULL, NULL) == NULL);

    /* base_model first (Azure deployments), then the model */
    CHECK_STR(t_name(mg_costmap_lookup(m, "azure", "azure/my-deployment", "gpt-4o")),
              "azure/gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, "azure", "azure/my-deployment", "azure/gpt-4o")),
              "azure/gpt-4o");
    CHECK_STR(t_name(mg_costmap_lookup(m, "azure", "azure/x", "openai/o3-mini")), "o3-mini");
    CHECK(mg_costmap_lookup(m, "azure", "azure/my-deployment", "no-such-model") == NULL);
    CHECK_STR(t_name(mg_costmap_lookup(m, "openai", "gpt-4o", "no-such-model")), "gpt-4o");

    /* what LiteLLM strips: bedrock routes, ARNs, cross-region and region prefixes */
    CHECK_STR(t_name(mg_costmap_lookup(m, "bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                                       NULL)),
              "anthropic.claude-3-5-haiku-20241022-v1:0");
    CHECK_STR(t_name(mg_costmap_lookup(m, "bedrock",
                                       "bedrock/converse/anthropic.claude-sonnet-4-5-20250929-v1:0",
                                       NULL)),
              "anthropic.claude-sonnet-4-5-20250929-v1:0");
    CHECK_STR(t_name(mg_costmap_lookup(
                  m, "bedrock",
                  "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                  "global.anthropic.claude-3-5-haiku-20241022-v1:0",
                  NULL)),
              "anthropic.claude-3-5-haiku-20241022-v1:0");
    CHECK_STR(t_name(mg_costmap_lookup(
                  m, "bedrock", "us-west-2/anthropic.claude-3-5-haiku-20241022-v1:0", NULL)),
              "anthropic.claude-3-5-haiku-20241022-v1:0");
    CHECK_STR(t_name(mg_costmap_lookup(m, "bedrock_converse",
                                       "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", NULL)),
              "anthropic.claude-sonnet-4-5-20250929-v1:0");
    /* gemini/vertex versions, and the vertex_ai-* provider groups */
    CHECK_STR(t_name(mg_costmap_lookup(m, "gemini", "gemini-2.0-flash-001", NULL)),
              "gemini/gemini-2.0-flash");
    CHECK_STR(t_name(mg_costmap_lookup(m, "gemini", "gemini-2.0-flash", NULL)),
              "gemini/gemini-2.0-flash");
    CHECK_STR(t_name(mg_costmap_lookup(m, "vertex_ai", "gemini-2.0-flash", NULL)),
              "gemini-2.0-flash");
    CHECK_STR(t_name(mg_costmap_lookup(m, "vertex_ai_beta", "gemini-2.0-flash-002", NULL)),
              "gemini-2.0-flash");
    /* OpenAI fine-tunes price as their base */
    CHECK_STR(t_name(mg_costmap_lookup(m, "openai", "ft:gpt-4o-mini:my-org:custom:abc123", NULL)),
              "ft:gpt-4o-mini");
    CHECK(mg_costmap_lookup(m, "openai", "ft:gpt-4o-mini::x:y", NULL) == NULL,
          "an empty part is not a fine-tune suffix");
    mg_costmap_unref(m);
}

static bool
t_has(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void
test_provider_sets(void)
{
    MG_T_CASE("per-provider model sets");
    mg_costmap_t *m = t_parse(t_map_text, "sets");
    if (m == NULL) {
        return;
    }
    const char *const *names = NULL;
    size_t n = mg_costmap_provider_models(m, "openai", &names);
    CHECK_INT(n, 9);
    CHECK(n > 0 && strcmp(names[0], "gpt-4o") == 0, "in the file's order");
    CHECK(t_has(names, n, "o3-mini") && t_has(names, n, "whisper-1") &&
          t_has(names, n, "MixedCase-Model"));
    CHECK(t_has(names, n, "gpt-3.5-turbo-instruct"), "text-completion-openai is openai too");
    CHECK(!t_has(names, n, "ft:gpt-4o-mini"), "bare fine-tune keys are pricing only");
    CHECK(!t_has(names, n, "azure/gpt-4o"));

    n = mg_costmap_provider_models(m, "text-completion-openai", &names);
    CHECK(n == 1 && strcmp(names[0], "gpt-3.5-turbo-instruct") == 0);

    n = mg_costmap_provider_models(m, "bedrock", &names);
    CHECK_INT(n, 2);
    CHECK(t_has(names, n, "anthropic.claude-3-5-haiku-20241022-v1:0"));
    CHECK(t_has(names, n, "anthropic.claude-sonnet-4-5-20250929-v1:0"), "bedrock_converse");
    CHECK(!t_has(names, n, "bedrock/us-east-1/anthropic.claude-3-5-haiku-20241022-v1:0"));

    n = mg_costmap_provider_models(m, "vertex_ai", &names);
    CHECK_INT(n, 2);
    CHECK(t_has(names, n, "gemini-2.0-flash"));
    CHECK(t_has(names, n, "claude-x@20250101"), "partner models without vertex_ai/");
    CHECK(!t_has(names, n, "mistral-x") && !t_has(names, n, "vertex_ai/mistral-x"),
          "LiteLLM leaves vertex mistral out of vertex_ai");

    n = mg_costmap_provider_models(m, "fireworks_ai", &names);
    CHECK(n == 1 &&
          strcmp(names[0], "fireworks_ai/accounts/fireworks/models/llama-v3p1-8b-instruct") == 0);

    n = mg_costmap_provider_models(m, "anthropic", &names);
    CHECK(n == 1 && strcmp(names[0], "claude-sonnet-4-5") == 0);
    CHECK_INT(mg_costmap_provider_models(m, "hosted_vllm", &names), 0);
    CHECK(names == NULL);
    CHECK_INT(mg_costmap_provider_models(m, NULL, &names), 0);

    /* a map with one more Anthropic model lists it: the sets come with the map */
    char *more = malloc(sizeof(t_map_text) + 128);
    char *brace = strrchr(strcpy(more, t_map_text), '}');
    strcpy(brace, ", \"claude-new-x\": {\"litellm_provider\": \"anthropic\","
                  " \"input_cost_per_token\": 1e-06}}\n");
    mg_costmap_t *m2 = t_parse(more, "sets-2");
    free(more);
    if (m2 != NULL) {
        n = mg_costmap_provider_models(m2, "anthropic", &names);
        CHECK(n == 2 && t_has(names, n, "claude-new-x"));
        CHECK_INT(m2->count, m->count + 1);
        CHECK(strcmp(m2->sha256, m->sha256) != 0);
        mg_costmap_unref(m2);
    }
    n = mg_costmap_provider_models(m, "anthropic", &names);
    CHECK(n == 1, "the old map is untouched");
    mg_costmap_unref(m);
}

static mg_usage_t
t_usage(int64_t prompt, int64_t completion, int64_t cache_read, int64_t cache_creation,
        int64_t reasoning)
{
    mg_usage_t u = {prompt, completion, 0, cache_read, cache_creation, reasoning, true};
    return u;
}

static void
test_cost(void)
{
    mg_costmap_t *m = t_parse(t_map_text, "cost");
    if (m == NULL) {
        return;
    }
    mg_costmap_cost_t c;
    mg_usage_t u;
    const mg_costmap_entry_t *gpt = mg_costmap_get(m, "gpt-4o");
    const mg_costmap_entry_t *claude = mg_costmap_get(m, "claude-sonnet-4-5");

    MG_T_CASE("cost: plain chat");
    u = t_usage(1000, 500, 0, 0, 0);
    CHECK_USD(mg_costmap_cost(gpt, NULL, &u, 1234, MG_COSTMAP_CALL_CHAT, &c),
              1000 * 2.5e-06 + 500 * 1e-05);
    CHECK_USD(c.prompt, 1000 * 2.5e-06);
    CHECK_USD(c.completion, 500 * 1e-05);
    CHECK(!c.unpriced && !c.by_duration && !c.deployment_prices && c.tier_threshold == 0);
    CHECK_USD(mg_costmap_cost(gpt, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, NULL), 0.0075);

    MG_T_CASE("cost: Anthropic-style cache read and creation");
    /* 10000 prompt tokens = 2000 uncached + 6000 read from cache + 2000 written to it */
    u = t_usage(10000, 1000, 6000, 2000, 0);
    CHECK_USD(mg_costmap_cost(claude, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              2000 * 3e-06 + 6000 * 3e-07 + 2000 * 3.75e-06 + 1000 * 1.5e-05);
    CHECK_USD(c.prompt, 0.0153);
    CHECK_USD(c.total, 0.0303);
    /* OpenAI-style: cached tokens only */
    u = t_usage(1000, 100, 400, 0, 0);
    CHECK_USD(mg_costmap_cost(gpt, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, NULL),
              600 * 2.5e-06 + 400 * 1.25e-06 + 100 * 1e-05);
    /* no cache price in the map: cache tokens at the input price (LiteLLM would say 0) */
    u = t_usage(1000, 0, 400, 0, 0);
    CHECK_USD(mg_costmap_cost(mg_costmap_get(m, "nocache-model"), NULL, &u, 0,
                              MG_COSTMAP_CALL_CHAT, NULL),
              1000 * 2e-06);

    MG_T_CASE("cost: above-N-tokens tiers");
    u = t_usage(250000, 2000, 50000, 0, 0);
    CHECK_USD(mg_costmap_cost(claude, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              200000 * 6e-06 + 50000 * 6e-07 + 2000 * 2.25e-05);
    CHECK_USD(c.tier_threshold, 200000);
    u = t_usage(150000, 1000, 0, 0, 0); /* the 128k tier has no output price: base output */
    CHECK_USD(mg_costmap_cost(claude, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              150000 * 4e-06 + 1000 * 1.5e-05);
    CHECK_USD(c.tier_threshold, 128000);
    u = t_usage(200000, 0, 0, 0, 0); /* "above": 200000 is not above 200k, but above 128k */
    CHECK_USD(mg_costmap_cost(claude, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, &c), 200000 * 4e-06);
    CHECK_USD(c.tier_threshold, 128000);
    u = t_usage(128000, 0, 0, 0, 0);
    CHECK_USD(mg_costmap_cost(claude, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, &c), 128000 * 3e-06);
    CHECK(c.tier_threshold == 0);

    MG_T_CASE("cost: reasoning tokens");
    /* 1000 completion tokens, 600 of them reasoning at their own price */
    u = t_usage(100, 1000, 0, 0, 600);
    CHECK_USD(mg_costmap_cost(mg_costmap_get(m, "reasoner"), NULL, &u, 0, MG_COSTMAP_CALL_CHAT,
                              &c),
              100 * 1e-06 + 400 * 4e-06 + 600 * 1e-05);
    CHECK_USD(c.completion, 400 * 4e-06 + 600 * 1e-05);
    /* no reasoning price: reasoning is output */
    u = t_usage(1000, 1000, 0, 0, 600);
    CHECK_USD(mg_costmap_cost(mg_costmap_get(m, "o3-mini"), NULL, &u, 0, MG_COSTMAP_CALL_CHAT,
                              NULL),
              1000 * 1.1e-06 + 1000 * 4.4e-06);

    MG_T_CASE("cost: embeddings bill the prompt only");
    const mg_costmap_entry_t *emb = mg_costmap_get(m, "text-embedding-3-small");
    u = t_usage(5000, 7, 0, 0, 0);
    CHECK_USD(mg_costmap_cost(emb, NULL, &u, 0, MG_COSTMAP_CALL_EMBEDDING, &c), 5000 * 2e-08);
    CHECK_USD(c.completion, 0);
    CHECK_USD(mg_costmap_cost(emb, NULL, &u, 0, MG_COSTMAP_CALL_CHAT, NULL), 5000 * 2e-08);
    CHECK_USD(mg_costmap_cost(gpt, NULL, &u, 0, MG_COSTMAP_CALL_EMBEDDING, NULL), 5000 * 2.5e-06);

    MG_T_CASE("cost: per second");
    const mg_costmap_entry_t *whisper = mg_costmap_get(m, "whisper-1");
    u = t_usage(10, 20, 0, 0, 0);
    CHECK_USD(mg_costmap_cost(whisper, NULL, &u, 30500, MG_COSTMAP_CALL_CHAT, &c), 30.5 * 0.0001);
    CHECK(c.by_duration && !c.unpriced);
    CHECK_USD(mg_costmap_cost(whisper, NULL, &u, -5, MG_COSTMAP_CALL_CHAT, NULL), 0);

    MG_T_CASE("cost: deployment prices win");
    mg_costmap_prices_t dep = MG_COSTMAP_PRICES_NONE;
    dep.input_cost_per_token = 1e-06;
    dep.output_cost_per_token = 2e-06;
    u = t_usage(1000, 500, 400, 0, 0); /* cache read defaults to the deployment's input price */
    CHECK_USD(mg_costmap_cost(gpt, &dep, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              600 * 1e-06 + 400 * 1e-06 + 500 * 2e-06);
    CHECK(c.deployment_prices);
    u = t_usage(250000, 1000, 0, 0, 0); /* and the map's tiers are off */
    CHECK_USD(mg_costmap_cost(claude, &dep, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              250000 * 1e-06 + 1000 * 2e-06);
    CHECK(c.tier_threshold == 0);
    CHECK_USD(mg_costmap_cost(NULL, &dep, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              250000 * 1e-06 + 1000 * 2e-06);
    CHECK(!c.unpriced, "a deployment price prices a model the map does not know");
    mg_costmap_prices_t only_cache = MG_COSTMAP_PRICES_NONE;
    only_cache.cache_read_input_token_cost = 3e-07;
    u = t_usage(1000, 0, 400, 0, 0);
    CHECK_USD(mg_costmap_cost(gpt, &only_cache, &u, 0, MG_COSTMAP_CALL_CHAT, &c),
              600 * 2.5e-06 + 400 * 3e-07);
    CHECK(c.deployment_prices);
    mg_costmap_prices_t per_sec = MG_COSTMAP_PRICES_NONE; /* a SageMaker-style deployment */
    per_sec.input_cost_per_second = 0.00042;
    u = t_usage(100, 100, 0, 0, 0);
    CHECK_USD(mg_costmap_cost(NULL, &per_sec, &u, 2000, MG_COSTMAP_CALL_CHAT, &c), 2 * 0.00042);
    CHECK(c.by_duration && c.deployment_prices);

    MG_T_CASE("cost: unpriced models");
    u = t_usage(1000, 500, 0, 0, 0);
    CHECK_USD(mg_costmap_cost(NULL, NULL, &u, 1000, MG_COSTMAP_CALL_CHAT, &c), 0);
    CHECK(c.unpriced && c.total == 0);
    CHECK_USD(mg_costmap_cost(mg_costmap_get(m, "dall-e-3"), NULL, &u, 1000, MG_COSTMAP_CALL_CHAT,
                              &c),
              0);
    CHECK(c.unpriced, "a per-image price does not price tokens");
    CHECK_USD(mg_costmap_cost(mg_costmap_get(m, "ollama/llama3"), NULL, &u, 1000,
                              MG_COSTMAP_CALL_CHAT, &c),
              0);
    CHECK(!c.unpriced, "a price of 0 is a price");
    mg_costmap_unref(m);
}

static void
test_prices_from_json(void)
{
    MG_T_CASE("deployment prices from litellm_params / model_info");
    json_error_t je;
    json_t *lp = json_loads("{\"model\": \"azure/x\", \"input_cost_per_token\": \"3e-7\","
                            " \"output_cost_per_token\": 6e-07}", 0, &je);
    json_t *mi = json_loads("{\"output_cost_per_token\": 1, \"input_cost_per_second\": 0.001}", 0,
                            &je);
    mg_costmap_prices_t p;
    mg_err_t err;
    CHECK_INT(mg_costmap_prices_from_json(lp, mi, &p, &err), MG_OK);
    CHECK_USD(p.input_cost_per_token, 3e-07);
    CHECK_USD(p.output_cost_per_token, 6e-07);
    CHECK_USD(p.input_cost_per_second, 0.001);
    CHECK(p.cache_read_input_token_cost < 0 && p.output_cost_per_second < 0 &&
          p.output_cost_per_reasoning_token < 0 && p.cache_creation_input_token_cost < 0);
    CHECK_INT(mg_costmap_prices_from_json(NULL, NULL, &p, &err), MG_OK);
    CHECK(p.input_cost_per_token < 0);
    json_object_set_new(lp, "output_cost_per_token", json_real(-1e-06));
    CHECK_INT(mg_costmap_prices_from_json(lp, mi, &p, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "litellm_params.output_cost_per_token must be a number >= 0");
    json_object_del(lp, "output_cost_per_token");
    json_object_set_new(mi, "cache_read_input_token_cost", json_string("cheap"));
    CHECK_INT(mg_costmap_prices_from_json(lp, mi, &p, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "model_info.cache_read_input_token_cost must be a number >= 0, got "
                            "string \"cheap\"");
    json_decref(lp);
    json_decref(mi);
}

static void
test_coverage(void)
{
    MG_T_CASE("reload coverage guard");
    mg_costmap_t *old = t_parse(t_map_text, "old");
    mg_costmap_t *only_gpt = t_parse("{\"gpt-4o\": {\"litellm_provider\": \"openai\","
                                     " \"input_cost_per_token\": 2e-06}}",
                                     "new-small");
    mg_costmap_t *no_claude = t_parse("{\"gpt-4o\": {\"litellm_provider\": \"openai\"},"
                                      " \"groq/llama-x\": {\"litellm_provider\": \"groq\"}}",
                                      "new-no-claude");
    if (old == NULL || only_gpt == NULL || no_claude == NULL) {
        mg_costmap_unref(old);
        mg_costmap_unref(only_gpt);
        mg_costmap_unref(no_claude);
        return;
    }
    mg_costmap_key_t used[] = {
        {"openai", "gpt-4o", NULL},
        {"openai", "openai/gpt-4o", NULL},          /* the same entry: counted once */
        {"groq", "groq/llama-x", NULL},
        {"anthropic", "claude-sonnet-4-5", NULL},
        {"hosted_vllm", "hosted_vllm/foo", NULL},   /* the old map does not price it */
        {"openai", "openai/*", NULL},               /* a wildcard */
    };
    size_t nused = sizeof(used) / sizeof(used[0]);
    mg_err_t err;
    CHECK_INT(mg_costmap_check_coverage(old, only_gpt, used, nused, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "cost map \"new-small\" refused: it drops 2 of the 3 entries the "
                            "deployments use (more than 50%): \"groq/llama-x\", "
                            "\"claude-sonnet-4-5\"");
    CHECK_INT(err.cls, MG_ERR_CONFIG);
    CHECK_INT(mg_costmap_check_coverage(old, no_claude, used, nused, &err), MG_OK);
    CHECK_INT(mg_costmap_check_coverage(old, only_gpt, used, 1, &err), MG_OK);
    mg_costmap_key_t half[] = {{"openai", "gpt-4o", NULL},
                               {"anthropic", "claude-sonnet-4-5", NULL}};
    CHECK_INT(mg_costmap_check_coverage(old, only_gpt, half, 2, &err), MG_OK); /* 50% is not more */
    CHECK_INT(mg_costmap_check_coverage(NULL, only_gpt, used, nused, &err), MG_OK);
    CHECK_INT(mg_costmap_check_coverage(old, only_gpt, NULL, 0, &err), MG_OK);
    mg_costmap_key_t many[] = {
        {"azure", "azure/gpt-4o", NULL},  {"together_ai", "llama-x", NULL},
        {"groq", "llama-x", NULL},        {"anthropic", "claude-sonnet-4-5", NULL},
        {"openai", "reasoner", NULL},     {"openai", "o3-mini", NULL},
        {"azure", "azure/d", "gpt-4o"},   {"gemini", "gemini-2.0-flash", NULL},
    };
    CHECK_INT(mg_costmap_check_coverage(old, only_gpt, many, 8, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "drops 7 of the 7 entries");
    CHECK_CONTAINS(err.msg, "\"reasoner\", ...");
    mg_costmap_unref(old);
    mg_costmap_unref(only_gpt);
    mg_costmap_unref(no_claude);
}

static void
test_files(void)
{
    MG_T_CASE("loading a file");
    const char *p = mg_t_write_file("map.json", t_map_text);
    mg_costmap_t *m = NULL;
    mg_err_t err;
    CHECK_INT(mg_costmap_load_file(p, &m, &err), MG_OK);
    if (m != NULL) {
        CHECK_INT(m->count, 28);
        CHECK_STR(m->source, p);
        mg_costmap_unref(m);
    }
    char url[600];
    snprintf(url, sizeof(url), "file://%s", p);
    CHECK_INT(mg_costmap_load_file(url, &m, &err), MG_OK);
    mg_costmap_unref(m);
    const char *empty = mg_t_write_file("empty.json", "");
    CHECK_INT(mg_costmap_load_file(empty, &m, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "empty input (0 bytes)");
    CHECK(m == NULL);
    CHECK_INT(mg_costmap_load_file("/nonexistent/map.json", &m, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "cost map \"/nonexistent/map.json\": open() failed");
}

static void
test_default_map(void)
{
    MG_T_CASE("the shipped cost map");
    mg_costmap_t *m = NULL;
    mg_err_t err;
    if (mg_costmap_default(&m, &err) != MG_OK) {
        MG_T_FAIL_AT("core/registry/mg_costmap_default.json refused: %s", err.msg);
        return;
    }
    CHECK_STR(m->source, "builtin");
    CHECK(m->count >= 25, "got %zu entries", m->count);

    /* the embedded bytes are the file's */
    const char *dir = getenv("MG_TEST_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/core/registry/mg_costmap_default.json",
             dir != NULL ? dir : MG_SOURCE_DIR);
    mg_costmap_t *f = NULL;
    CHECK_INT(mg_costmap_load_file(path, &f, &err), MG_OK);
    if (f != NULL) {
        CHECK_STR(f->sha256, m->sha256);
        mg_costmap_unref(f);
    }

    /* every model the examples and tests name resolves, the self-hosted one does not */
    static const char *const models[][3] = {
        {"openai", "openai/gpt-4o-mini", NULL},       {"openai", "openai/gpt-4o", NULL},
        {"openai", "openai/gpt-4o-2024-08-06", NULL}, {"openai", "openai/gpt-4.1", NULL},
        {"openai", "openai/gpt-4.1-mini", NULL},      {"openai", "openai/o3-mini", NULL},
        {"openai", "openai/text-embedding-3-small", NULL},
        {"openai", "openai/text-embedding-3-large", NULL},
        {"groq", "groq/llama-3.1-8b-instant", NULL},
        {"azure", "azure/my-gpt4o-deployment", "gpt-4o"},
        {"azure", "azure/gpt-4o-mini-eu", "gpt-4o-mini"},
        {"anthropic", "anthropic/claude-sonnet-4-5", NULL},
        {"anthropic", "anthropic/claude-3-5-haiku-20241022", NULL},
        {"gemini", "gemini/gemini-2.0-flash", NULL},
        {"bedrock", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", NULL},
    };
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        const mg_costmap_entry_t *e =
            mg_costmap_lookup(m, models[i][0], models[i][1], models[i][2]);
        CHECK(e != NULL && e->input_cost_per_token > 0, "%s is priced", models[i][1]);
    }
    CHECK(mg_costmap_lookup(m, "hosted_vllm", "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
                            NULL) == NULL);
    const mg_costmap_entry_t *c = mg_costmap_get(m, "claude-sonnet-4-5");
    CHECK(c != NULL && c->cache_read_input_token_cost > 0 && c->cache_creation_input_token_cost > 0,
          "Anthropic models carry cache prices");
    CHECK(mg_costmap_get(m, "whisper-1") != NULL &&
          mg_costmap_get(m, "whisper-1")->input_cost_per_second > 0);

    /* per-million slips: no token price above $100/M, chat models fully described */
    for (size_t i = 0; i < m->count; i++) {
        const mg_costmap_entry_t *e = &m->entries[i];
        CHECK(e->provider != NULL && e->mode != NULL, "%s has provider and mode", e->name);
        CHECK(e->input_cost_per_token < 1e-04 && e->output_cost_per_token < 1e-04 &&
                  e->cache_read_input_token_cost < e->input_cost_per_token + 1e-15,
              "%s: prices look per token", e->name);
        if (e->mode != NULL && strcmp(e->mode, "chat") == 0) {
            CHECK(e->input_cost_per_token > 0 && e->output_cost_per_token > 0 &&
                      e->max_input_tokens > 0 && e->max_output_tokens > 0,
                  "%s: chat entry complete", e->name);
        }
    }
    const char *const *names;
    CHECK(mg_costmap_provider_models(m, "anthropic", &names) >= 4);
    mg_costmap_unref(m);
}

int
main(void)
{
    test_malformed();
    test_map_facts();
    test_lookup();
    test_provider_sets();
    test_cost();
    test_prices_from_json();
    test_coverage();
    test_files();
    test_default_map();
    return mg_test_done();
}
