/*
 * mg_costmap.h -- the model cost map: prices and model facts in LiteLLM's format.
 *
 * Owns: one parsed model_prices_and_context_window.json (the jansson tree, kept whole so
 * fields moongate does not know yet survive for /model/info), a typed entry per model,
 * the name indexes and the per-provider model sets derived from it.  All of it is built
 * in mg_costmap_parse() and never changed afterwards: a reload parses a new map, checks
 * it (mg_costmap_check_coverage) and swaps the pointer, exactly as a registry snapshot is
 * swapped.  Reference counted with a plain int: a map belongs to one worker (single
 * thread), like the snapshot that is meant to hold it.
 * Does not own: fetching (https/file sources are the reload path's job), the "log an
 * unpriced model once" memory (mutable, per worker), deployments' own prices (the caller
 * passes them in mg_costmap_prices_t).
 *
 * LiteLLM rules followed, by file and function (BerriAI/litellm):
 *   - entries and field names: model_prices_and_context_window.json; "sample_spec" (the
 *     schema documentation) and "fallback_generalizations" (routing rules) are not models.
 *   - lookup order: litellm/utils.py _get_model_info_helper with _get_potential_model_names,
 *     _strip_model_name, _get_model_cost_key (exact, then case-insensitive) and
 *     _check_provider_match; base_model first: cost_calculator.py
 *     _select_model_name_for_cost_calc.
 *   - provider sets: litellm/__init__.py add_known_models() and models_by_provider.
 *   - cost: litellm_core_utils/llm_cost_calc/utils.py generic_cost_per_token with
 *     _get_token_base_cost (above-N-tokens tiers) and _calculate_input_cost; per-second
 *     prices: cost_calculator.py cost_per_token (its last branch); deployment prices:
 *     cost_calculator.py _cost_per_token_custom_pricing_helper.
 * Where moongate differs on purpose it says so at the function.
 */
#ifndef MG_COSTMAP_H
#define MG_COSTMAP_H

#include "../base/mg_err.h"
#include "../base/mg_map.h"
#include "../base/mg_types.h"
#include "../base/mg_usage.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mg_costmap_s mg_costmap_t;
typedef struct mg_costmap_entry_s mg_costmap_entry_t;

/* Largest cost map accepted (LiteLLM's own is about 1.5 MB). */
#define MG_COSTMAP_MAX_BYTES (64u * 1024 * 1024)

/*
 * A reload is refused when the new map loses more than this share of the cost-map entries
 * the current deployments resolve to in the old map (mg_costmap_check_coverage).
 */
#define MG_COSTMAP_MAX_DROP_PERCENT 50

/* One "above N tokens" price tier: input_cost_per_token_above_<N>[k]_tokens and friends. */
typedef struct {
    double threshold;               /* tokens; applies when prompt_tokens > threshold */
    double input;                   /* input_cost_per_token_above_..., always >= 0 */
    double output;                  /* output_cost_per_token_above_..., < 0 = absent */
    double cache_read;              /* cache_read_input_token_cost_above_..., < 0 = absent */
    double cache_creation;          /* cache_creation_input_token_cost_above_..., < 0 = absent */
} mg_costmap_tier_t;

/* One model of the map.  Prices are USD; every double < 0 and int64 < 0 means "absent". */
struct mg_costmap_entry_s {
    const char *name;               /* borrowed: the map's key, e.g. "gpt-4o", "azure/gpt-4o" */
    const char *provider;           /* borrowed: litellm_provider, NULL if absent */
    const char *mode;               /* borrowed: mode ("chat", "embedding", ...), NULL absent */
    double input_cost_per_token;
    double output_cost_per_token;
    double cache_read_input_token_cost;
    double cache_creation_input_token_cost;
    double cache_creation_input_token_cost_above_1hr;
    double output_cost_per_reasoning_token;
    double input_cost_per_audio_token;
    double output_cost_per_audio_token;
    double input_cost_per_second;
    double output_cost_per_second;
    double input_cost_per_character;
    double output_cost_per_character;
    double input_cost_per_image;
    double output_cost_per_image;
    mg_costmap_tier_t *tiers;       /* owned: highest threshold first */
    size_t ntiers;
    int64_t max_tokens;
    int64_t max_input_tokens;
    int64_t max_output_tokens;
    json_t *info;                   /* borrowed: the entry's object, unknown fields included */
    const char *set_name;           /* borrowed: name in provider sets (name, or set_name_buf) */
    char *set_name_buf;             /* owned: name without "vertex_ai/" for vertex partner models */
};

/* A provider's model names (litellm.models_by_provider[provider]). */
typedef struct {
    const char **names;             /* owned array of borrowed names (entries' set_name) */
    size_t n;
} mg_costmap_set_t;

struct mg_costmap_s {
    int refs;
    char *source;                   /* owned: where it came from ("builtin", a path, a URL) */
    char sha256[65];                /* hex digest of the bytes parsed */
    size_t bytes;                   /* size of those bytes */
    int64_t loaded_real_ms;         /* wall clock when parsed, for the map's age */
    json_t *root;                   /* owned: the parsed document */
    mg_costmap_entry_t *entries;    /* owned array, in the document's order */
    size_t count;                   /* model entries (sample_spec & co. excluded) */
    mg_map_t by_name;               /* exact key -> entry */
    mg_map_t by_lower;              /* lower-cased key -> entry (last one wins, as in LiteLLM) */
    mg_map_t sets;                  /* provider -> mg_costmap_set_t* (owned) */
};

/* ---- loading ---- */

/*
 * Parses and validates a cost map.  data need not be NUL-terminated; source names it in
 * errors and in /moongate/state.  Returns MG_OK and one reference in *out, or MG_ERROR with
 * err (class config) saying what is wrong, on the first problem found:
 *   - empty input, more than MG_COSTMAP_MAX_BYTES, a JSON syntax error or truncated input
 *     ("line L, column C: ..." from jansson), a duplicated key;
 *   - a top level that is not an object, or one without any model entry;
 *   - an entry that is not an object; a price field (a name containing "cost") that is not
 *     a number >= 0 (or an object of such numbers, e.g. search_context_cost_per_query);
 *     max_tokens / max_input_tokens / max_output_tokens not a whole number >= 0;
 *     litellm_provider or mode not a string; a supports_* field not a boolean.
 * The message names the entry and the field ('entry "gpt-4o": input_cost_per_token must be
 * a number >= 0, got string "0.1"').  JSON null counts as absent.  Unknown fields are kept.
 */
int mg_costmap_parse(const char *data, size_t len, const char *source, mg_costmap_t **out,
                     mg_err_t *err);

/* Reads a file ("file://" prefix allowed) and parses it; source is the path. */
int mg_costmap_load_file(const char *path, mg_costmap_t **out, mg_err_t *err);

/*
 * moongate's own small map (core/registry/mg_costmap_default.json, compiled into the
 * binary), for offline use and LITELLM_LOCAL_MODEL_COST_MAP=True.  Parsed on each call;
 * returns one reference.  Fails only if the shipped file is broken (a test guards that).
 */
int mg_costmap_default(mg_costmap_t **out, mg_err_t *err);

mg_costmap_t *mg_costmap_ref(mg_costmap_t *m);
/* Accepts NULL; frees at zero; logs and aborts on underflow. */
void mg_costmap_unref(mg_costmap_t *m);

/* ---- lookups (results are borrowed from the map: valid while it is held) ---- */

/* The entry stored under exactly this key (case-insensitive fallback), or NULL. */
const mg_costmap_entry_t *mg_costmap_get(const mg_costmap_t *m, const char *key);

/*
 * The entry LiteLLM would use for a deployment, or NULL (unpriced, unknown limits).
 * provider: the deployment's provider ("openai", "azure", "bedrock"...; NULL or "" when
 * unknown, then provider checks are skipped).  model: litellm_params.model, with or without
 * the "provider/" prefix.  base_model: model_info.base_model or NULL; when set it is tried
 * first (with its own provider prefix if it carries a provider known to the map), then the
 * model.  For each name the candidates are, in order: "provider/model", the model as given,
 * "provider/stripped", stripped, the model without the prefix, where stripped drops what
 * LiteLLM drops (bedrock: "converse/" / "invoke/" routes, ARNs, us./eu./apac./global./...
 * cross-region prefixes, an AWS region path; gemini/vertex_ai/databricks: a trailing -NNN
 * version; "ft:" models: the ":org:suffix:id" tail).  A candidate counts only if its
 * litellm_provider matches the provider (equal, or bedrock* for bedrock*, vertex_ai* for
 * vertex_ai, fireworks_ai* for fireworks_ai, azure/openai for azure_ai; anything for
 * litellm_proxy and github).
 */
const mg_costmap_entry_t *mg_costmap_lookup(const mg_costmap_t *m, const char *provider,
                                            const char *model, const char *base_model);

/*
 * The model names LiteLLM derives for a provider from the map (its models_by_provider):
 * entries whose litellm_provider is the provider, plus LiteLLM's merged groups (openai +
 * text-completion-openai, bedrock + bedrock_converse, azure + azure_text, cohere +
 * cohere_chat, vertex_ai + its chat/text/language/vision/anthropic/deepseek/minimax/moonshot
 * groups, fireworks_ai, sambanova, nebius, ovhcloud + their embedding groups), minus what
 * LiteLLM leaves out (bare "ft:" OpenAI fine-tune keys, "bedrock/<region>/..." and
 * month-commitment pricing keys, fireworks "-to-" size buckets and fireworks-ai-default).
 * Names are the map keys (some carry a "provider/" prefix), "vertex_ai/" dropped for
 * vertex partner models, in the file's order, without duplicates.  Returns the count
 * (0 for an unknown provider) and the borrowed array in *names.
 */
size_t mg_costmap_provider_models(const mg_costmap_t *m, const char *provider,
                                  const char *const **names);

/* A supports_* flag ("supports_vision"): 1 true, 0 false, -1 absent. */
int mg_costmap_supports(const mg_costmap_entry_t *e, const char *flag);

/* ---- cost of one call ---- */

/*
 * A deployment's own prices (litellm_params / model_info), which win over the map's.
 * Each < 0 = not set.  MG_COSTMAP_PRICES_NONE initialises all to unset.
 */
typedef struct {
    double input_cost_per_token;
    double output_cost_per_token;
    double cache_read_input_token_cost;
    double cache_creation_input_token_cost;
    double output_cost_per_reasoning_token;
    double input_cost_per_second;
    double output_cost_per_second;
} mg_costmap_prices_t;

#define MG_COSTMAP_PRICES_NONE {-1, -1, -1, -1, -1, -1, -1}

/*
 * Reads a deployment's prices: each field from litellm_params, else model_info (either may
 * be NULL).  A value may be a number or a numeric string ("3e-7", as LiteLLM accepts from
 * YAML).  Returns MG_ERROR (class config) naming the field for a negative or non-numeric
 * value, so a config with a bad price is refused at load, not priced at 0.
 */
int mg_costmap_prices_from_json(json_t *litellm_params, json_t *model_info,
                                mg_costmap_prices_t *out, mg_err_t *err);

typedef enum {
    MG_COSTMAP_CALL_CHAT = 0,       /* chat, completions, responses, messages */
    MG_COSTMAP_CALL_EMBEDDING,      /* prompt tokens only */
} mg_costmap_call_t;

typedef struct {
    double total;                   /* USD: prompt + completion */
    double prompt;                  /* uncached input + cache read + cache creation */
    double completion;              /* output, reasoning included */
    bool unpriced;                  /* no per-token or per-second price anywhere: total is 0 */
    bool by_duration;               /* priced per second of the call */
    bool deployment_prices;         /* the deployment's prices were used */
    double tier_threshold;          /* > 0: the above-N-tokens tier that applied */
} mg_costmap_cost_t;

/*
 * USD cost of one call, as LiteLLM's generic_cost_per_token computes it:
 *   uncached prompt (prompt - cache read - cache creation) x input price
 *   + cache read tokens x cache_read_input_token_cost
 *   + cache creation tokens x cache_creation_input_token_cost
 *   + (completion - reasoning) x output price + reasoning x output_cost_per_reasoning_token
 *     (reasoning at the output price when the map gives none)
 * When prompt_tokens is above a tier's threshold, the highest such tier's prices replace
 * the input, output and cache prices it gives (_get_token_base_cost).  Embeddings bill the
 * prompt only.  With no per-token price > 0 but a per-second one, the cost is
 * (input_cost_per_second + output_cost_per_second) x duration (cost_per_token's last branch).
 *
 * e: the map entry (may be NULL); dep: the deployment's prices (may be NULL).  Deployment
 * prices win field by field; a deployment that sets a token price prices the call itself
 * (no map tiers), and its cache prices default to its input price, its reasoning price to
 * its output price (_cost_per_token_custom_pricing_helper).
 * Deliberate difference: with no cache price anywhere, cache tokens cost the input price
 * (LiteLLM bills them at 0, which undercounts spend).
 * u may be NULL (no usage: cost 0).  Returns the total; fills *out (may be NULL) with the
 * parts and flags.  Never fails.
 */
double mg_costmap_cost(const mg_costmap_entry_t *e, const mg_costmap_prices_t *dep,
                       const mg_usage_t *u, int64_t duration_ms, mg_costmap_call_t call,
                       mg_costmap_cost_t *out);

/* ---- reload guard ---- */

/* What a deployment looks up (the arguments of mg_costmap_lookup). */
typedef struct {
    const char *provider;
    const char *model;
    const char *base_model;         /* may be NULL */
} mg_costmap_key_t;

/*
 * Refuses a new map that drops most of what the deployments use: of the distinct old-map
 * entries the keys resolve to, if more than MG_COSTMAP_MAX_DROP_PERCENT no longer resolve in
 * new_map, returns MG_ERROR (class config) with how many and which (the first five).  Keys
 * whose model contains '*' (wildcards) and keys the old map does not price are not counted.
 * old_map NULL (first load) or no counted key: MG_OK.
 */
int mg_costmap_check_coverage(const mg_costmap_t *old_map, const mg_costmap_t *new_map,
                              const mg_costmap_key_t *used, size_t nused, mg_err_t *err);

#endif
