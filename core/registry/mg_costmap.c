/*
 * mg_costmap.c -- the model cost map (see mg_costmap.h for what it owns and which LiteLLM
 * functions each part follows).
 *
 * Reads top-down: validation of one field, of one entry, the parse that builds every
 * index, lookups, provider sets, cost, the reload guard.  Everything is built before
 * mg_costmap_parse() returns; afterwards the map is only read.
 */
#include "mg_costmap.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* generated from core/registry/mg_costmap_default.json by cmake/mg_embed_blob.cmake */
extern const char mg_costmap_default_json[];
extern const size_t mg_costmap_default_json_len;

/* Top-level keys of LiteLLM's file that are not models. */
static const char *const mg_costmap_non_models[] = {
    "sample_spec",              /* the schema, documented with strings where numbers go */
    "fallback_generalizations", /* routing rules, not a model */
    NULL,
};

static bool
mg_costmap_in(const char *s, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(s, *list) == 0) {
            return true;
        }
    }
    return false;
}

static bool
mg_costmap_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- validation of one value ---- */

static const char *
mg_costmap_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

/* "string \"0.1\"", "number -1", "boolean" -- what was found, for an error message. */
static void
mg_costmap_describe(const json_t *v, char *out, size_t outlen)
{
    if (json_is_string(v)) {
        snprintf(out, outlen, "string \"%.40s%s\"", json_string_value(v),
                 json_string_length(v) > 40 ? "..." : "");
    } else if (json_is_number(v)) {
        snprintf(out, outlen, "number %.15g", json_number_value(v));
    } else {
        snprintf(out, outlen, "%s", mg_costmap_type_name(v));
    }
}

typedef struct {
    const char *source;
    const char *entry;
    mg_err_t *err;
} mg_costmap_vctx_t;

static int
mg_costmap_bad(mg_costmap_vctx_t *c, const char *field, const char *want, const json_t *v)
{
    char got[96];
    mg_costmap_describe(v, got, sizeof(got));
    return mg_err_set(c->err, MG_ERR_CONFIG, "cost map \"%s\": entry \"%s\": %s must be %s, got %s",
                      c->source, c->entry, field, want, got);
}

/* A price: a number >= 0, or an object whose members are prices (search_context_cost...). */
static int
mg_costmap_check_price(mg_costmap_vctx_t *c, const char *field, json_t *v, int depth)
{
    if (json_is_null(v)) {
        return MG_OK;
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!(d >= 0) || !isfinite(d)) {
            return mg_costmap_bad(c, field, "a number >= 0", v);
        }
        return MG_OK;
    }
    if (json_is_object(v) && depth < 4) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            char path[256];
            snprintf(path, sizeof(path), "%s.%s", field, k);
            if (mg_costmap_check_price(c, path, m, depth + 1) != MG_OK) {
                return MG_ERROR;
            }
        }
        return MG_OK;
    }
    return mg_costmap_bad(c, field, "a number >= 0", v);
}

static int
mg_costmap_check_field(mg_costmap_vctx_t *c, const char *k, json_t *v)
{
    if (json_is_null(v)) {
        return MG_OK;
    }
    if (strcmp(k, "litellm_provider") == 0 || strcmp(k, "mode") == 0) {
        return json_is_string(v) ? MG_OK : mg_costmap_bad(c, k, "a string", v);
    }
    if (strcmp(k, "max_tokens") == 0 || strcmp(k, "max_input_tokens") == 0 ||
        strcmp(k, "max_output_tokens") == 0) {
        /* LiteLLM's file has whole floats here (2000000.0) */
        double d = json_is_number(v) ? json_number_value(v) : -1;
        if (!(d >= 0) || d != floor(d) || d > 9e15) {
            return mg_costmap_bad(c, k, "a whole number >= 0", v);
        }
        return MG_OK;
    }
    if (mg_costmap_starts(k, "supports_")) {
        return json_is_boolean(v) ? MG_OK : mg_costmap_bad(c, k, "true or false", v);
    }
    if (strstr(k, "cost") != NULL) {
        return mg_costmap_check_price(c, k, v, 0);
    }
    return MG_OK; /* a field moongate does not know: kept, not judged */
}

/* ---- one entry ---- */

static double
mg_costmap_num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : -1;
}

static int64_t
mg_costmap_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? mg_clamp_i64(json_number_value(v)) : -1;
}

/*
 * "input_cost_per_token_above_200k_tokens" -> threshold 200000 and the middle "200k".
 * Service-tier variants ("..._tokens_priority") are not tiers of the standard price
 * (_get_token_base_cost leaves them out too).
 */
static bool
mg_costmap_tier_key(const char *k, double *threshold, char *mid, size_t midlen)
{
    static const char pre[] = "input_cost_per_token_above_";
    if (!mg_costmap_starts(k, pre)) {
        return false;
    }
    const char *p = k + sizeof(pre) - 1;
    const char *q = p;
    while (isdigit((unsigned char) *q) || *q == '.') {
        q++;
    }
    if (q == p) {
        return false;
    }
    bool kilo = *q == 'k';
    if (strcmp(q + (kilo ? 1 : 0), "_tokens") != 0) {
        return false;
    }
    size_t n = (size_t) (q - p) + (kilo ? 1 : 0);
    if (n + 1 > midlen) {
        return false;
    }
    memcpy(mid, p, n);
    mid[n] = '\0';
    char *end;
    double d = strtod(p, &end);
    if (end != q || !(d >= 0)) {
        return false;
    }
    *threshold = kilo ? d * 1000 : d;
    return true;
}

static int
mg_costmap_tier_cmp(const void *a, const void *b)
{
    const mg_costmap_tier_t *x = a, *y = b;
    return x->threshold < y->threshold ? 1 : x->threshold > y->threshold ? -1 : 0;
}

static void
mg_costmap_read_tiers(mg_costmap_entry_t *e, json_t *o)
{
    const char *k;
    json_t *v;
    size_t cap = 0;
    json_object_foreach(o, k, v) {
        double thr;
        char mid[32], key[96];
        if (!json_is_number(v) || !mg_costmap_tier_key(k, &thr, mid, sizeof(mid))) {
            continue;
        }
        if (e->ntiers == cap) {
            cap = cap ? cap * 2 : 2;
            e->tiers = mg_xrealloc(e->tiers, cap * sizeof(*e->tiers));
        }
        mg_costmap_tier_t *t = &e->tiers[e->ntiers++];
        t->threshold = thr;
        t->input = json_number_value(v);
        snprintf(key, sizeof(key), "output_cost_per_token_above_%s_tokens", mid);
        t->output = mg_costmap_num(o, key);
        snprintf(key, sizeof(key), "cache_read_input_token_cost_above_%s_tokens", mid);
        t->cache_read = mg_costmap_num(o, key);
        snprintf(key, sizeof(key), "cache_creation_input_token_cost_above_%s_tokens", mid);
        t->cache_creation = mg_costmap_num(o, key);
    }
    if (e->ntiers > 1) {
        qsort(e->tiers, e->ntiers, sizeof(*e->tiers), mg_costmap_tier_cmp);
    }
}

/* Vertex partner models are listed without "vertex_ai/" (add_known_models). */
static const char *const mg_costmap_vertex_partner[] = {
    "vertex_ai-anthropic_models", "vertex_ai-llama_models", "vertex_ai-deepseek_models",
    "vertex_ai-mistral_models",   "vertex_ai-ai21_models",  "vertex_ai-image-models",
    "vertex_ai-video-models",     "vertex_ai-openai_models", "vertex_ai-minimax_models",
    "vertex_ai-moonshot_models",  NULL,
};

static void
mg_costmap_set_name(mg_costmap_entry_t *e)
{
    e->set_name = e->name;
    if (e->provider == NULL || !mg_costmap_in(e->provider, mg_costmap_vertex_partner) ||
        strstr(e->name, "vertex_ai/") == NULL) {
        return;
    }
    mg_buf_t b = MG_BUF_INIT;
    const char *p = e->name, *hit;
    while ((hit = strstr(p, "vertex_ai/")) != NULL) { /* Python's str.replace: every one */
        mg_buf_append(&b, p, (size_t) (hit - p));
        p = hit + strlen("vertex_ai/");
    }
    mg_buf_append_str(&b, p);
    e->set_name_buf = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    e->set_name = e->set_name_buf;
}

static int
mg_costmap_read_entry(mg_costmap_vctx_t *c, const char *name, json_t *o, mg_costmap_entry_t *e)
{
    if (name[0] == '\0') {
        return mg_err_set(c->err, MG_ERR_CONFIG, "cost map \"%s\": an entry has an empty name",
                          c->source);
    }
    if (!json_is_object(o)) {
        char got[96];
        mg_costmap_describe(o, got, sizeof(got));
        return mg_err_set(c->err, MG_ERR_CONFIG,
                          "cost map \"%s\": entry \"%s\" must be an object, got %s", c->source,
                          name, got);
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (mg_costmap_check_field(c, k, v) != MG_OK) {
            return MG_ERROR;
        }
    }
    e->name = name;
    e->info = o;
    e->provider = json_string_value(json_object_get(o, "litellm_provider"));
    e->mode = json_string_value(json_object_get(o, "mode"));
    e->input_cost_per_token = mg_costmap_num(o, "input_cost_per_token");
    e->output_cost_per_token = mg_costmap_num(o, "output_cost_per_token");
    e->cache_read_input_token_cost = mg_costmap_num(o, "cache_read_input_token_cost");
    e->cache_creation_input_token_cost = mg_costmap_num(o, "cache_creation_input_token_cost");
    e->cache_creation_input_token_cost_above_1hr =
        mg_costmap_num(o, "cache_creation_input_token_cost_above_1hr");
    e->output_cost_per_reasoning_token = mg_costmap_num(o, "output_cost_per_reasoning_token");
    e->input_cost_per_audio_token = mg_costmap_num(o, "input_cost_per_audio_token");
    e->output_cost_per_audio_token = mg_costmap_num(o, "output_cost_per_audio_token");
    e->input_cost_per_second = mg_costmap_num(o, "input_cost_per_second");
    e->output_cost_per_second = mg_costmap_num(o, "output_cost_per_second");
    e->input_cost_per_character = mg_costmap_num(o, "input_cost_per_character");
    e->output_cost_per_character = mg_costmap_num(o, "output_cost_per_character");
    e->input_cost_per_image = mg_costmap_num(o, "input_cost_per_image");
    e->output_cost_per_image = mg_costmap_num(o, "output_cost_per_image");
    e->max_tokens = mg_costmap_int(o, "max_tokens");
    e->max_input_tokens = mg_costmap_int(o, "max_input_tokens");
    e->max_output_tokens = mg_costmap_int(o, "max_output_tokens");
    mg_costmap_read_tiers(e, o);
    mg_costmap_set_name(e);
    return MG_OK;
}

/* ---- provider sets (litellm/__init__.py add_known_models + models_by_provider) ---- */

/* A provider's entries also belong to these sets. */
static const struct {
    const char *member;
    const char *set;
} mg_costmap_merged[] = {
    {"text-completion-openai", "openai"},
    {"cohere_chat", "cohere"},
    {"bedrock_converse", "bedrock"},
    {"azure_text", "azure"},
    {"vertex_ai-chat-models", "vertex_ai"},
    {"vertex_ai-text-models", "vertex_ai"},
    {"vertex_ai-anthropic_models", "vertex_ai"},
    {"vertex_ai-vision-models", "vertex_ai"},
    {"vertex_ai-language-models", "vertex_ai"},
    {"vertex_ai-deepseek_models", "vertex_ai"},
    {"vertex_ai-minimax_models", "vertex_ai"},
    {"vertex_ai-moonshot_models", "vertex_ai"},
    {"fireworks_ai-embedding-models", "fireworks_ai"},
    {"sambanova-embedding-models", "sambanova"},
    {"nebius-chat-models", "nebius"},
    {"nebius-embedding-models", "nebius"},
    {"ovhcloud-embedding-models", "ovhcloud"},
};

/* Keys LiteLLM keeps for pricing only and lists under no provider. */
static bool
mg_costmap_pricing_only(const mg_costmap_entry_t *e)
{
    const char *p = e->provider, *k = e->name;
    if (strcmp(p, "openai") == 0) {
        /* is_openai_finetune_model: "ft:<model>" with no further ':' parts */
        return mg_costmap_starts(k, "ft:") && strchr(k + 3, ':') == NULL;
    }
    if (strcmp(p, "bedrock") == 0) {
        /* is_bedrock_pricing_only_model: "bedrock/<region>/<model>", month commitments */
        if (strstr(k, "month-commitment") != NULL) {
            return true;
        }
        if (!mg_costmap_starts(k, "bedrock/")) {
            return false;
        }
        const char *r = k + strlen("bedrock/"), *q = r;
        while (isalnum((unsigned char) *q) || *q == '_' || *q == '-') {
            q++;
        }
        return q > r && *q == '/' && q[1] != '\0';
    }
    if (strcmp(p, "fireworks_ai") == 0) {
        return strstr(k, "-to-") != NULL || strstr(k, "fireworks-ai-default") != NULL;
    }
    if (strcmp(p, "fireworks_ai-embedding-models") == 0) {
        return strstr(k, "-to-") != NULL;
    }
    return false;
}

typedef struct {
    mg_costmap_set_t *set;
    mg_map_t seen;
    size_t cap;
} mg_costmap_set_build_t;

static void
mg_costmap_set_add(mg_costmap_t *m, mg_map_t *builders, const char *set, const char *name)
{
    mg_costmap_set_build_t *b = mg_map_get(builders, set, strlen(set));
    if (b == NULL) {
        b = mg_xcalloc(1, sizeof(*b));
        b->set = mg_xcalloc(1, sizeof(*b->set));
        mg_map_init(&b->seen);
        mg_map_put(builders, set, strlen(set), b);
        mg_map_put(&m->sets, set, strlen(set), b->set);
    }
    if (mg_map_get(&b->seen, name, strlen(name)) != NULL) {
        return;
    }
    mg_map_put(&b->seen, name, strlen(name), (void *) name);
    if (b->set->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->set->names = mg_xrealloc(b->set->names, b->cap * sizeof(*b->set->names));
    }
    b->set->names[b->set->n++] = name;
}

static void
mg_costmap_build_sets(mg_costmap_t *m)
{
    mg_map_t builders;
    mg_map_init(&builders);
    for (size_t i = 0; i < m->count; i++) {
        const mg_costmap_entry_t *e = &m->entries[i];
        if (e->provider == NULL || e->provider[0] == '\0' || mg_costmap_pricing_only(e)) {
            continue;
        }
        mg_costmap_set_add(m, &builders, e->provider, e->set_name);
        for (size_t j = 0; j < sizeof(mg_costmap_merged) / sizeof(mg_costmap_merged[0]); j++) {
            if (strcmp(e->provider, mg_costmap_merged[j].member) == 0) {
                mg_costmap_set_add(m, &builders, mg_costmap_merged[j].set, e->set_name);
            }
        }
    }
    for (size_t i = 0; i < builders.cap; i++) {
        mg_costmap_set_build_t *b = builders.slots[i].val;
        if (builders.slots[i].key != NULL && b != NULL) {
            mg_map_free(&b->seen);
            free(b);
        }
    }
    mg_map_free(&builders);
}

/* ---- parse ---- */

static void
mg_costmap_free(mg_costmap_t *m)
{
    for (size_t i = 0; i < m->count; i++) {
        free(m->entries[i].tiers);
        free(m->entries[i].set_name_buf);
    }
    free(m->entries);
    for (size_t i = 0; i < m->sets.cap; i++) {
        mg_costmap_set_t *s = m->sets.slots[i].val;
        if (m->sets.slots[i].key != NULL && s != NULL) {
            free(s->names);
            free(s);
        }
    }
    mg_map_free(&m->sets);
    mg_map_free(&m->by_name);
    mg_map_free(&m->by_lower);
    json_decref(m->root);
    free(m->source);
    free(m);
}

static void
mg_costmap_put_lower(mg_map_t *map, const char *key, mg_costmap_entry_t *e)
{
    size_t n = strlen(key);
    char small[256];
    char *low = n < sizeof(small) ? small : mg_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        low[i] = (char) tolower((unsigned char) key[i]);
    }
    low[n] = '\0';
    mg_map_put(map, low, n, e);
    if (low != small) {
        free(low);
    }
}

int
mg_costmap_parse(const char *data, size_t len, const char *source, mg_costmap_t **out,
                 mg_err_t *err)
{
    *out = NULL;
    if (source == NULL) {
        source = "(unnamed)";
    }
    if (len == 0) {
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": empty input (0 bytes)", source);
    }
    if (len > MG_COSTMAP_MAX_BYTES) {
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": %zu bytes, more than the %u "
                          "accepted", source, len, MG_COSTMAP_MAX_BYTES);
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": invalid JSON at line %d, "
                          "column %d: %s", source, jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        const char *t = mg_costmap_type_name(root);
        json_decref(root);
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": the top level must be an object "
                          "of model name -> entry, got %s", source, t);
    }
    mg_costmap_t *m = mg_xcalloc(1, sizeof(*m));
    m->refs = 1;
    m->source = mg_xstrdup(source);
    m->root = root;
    m->bytes = len;
    m->loaded_real_ms = mg_time_real_ms();
    mg_sha256_hex(data, len, m->sha256);
    mg_map_init(&m->by_name);
    mg_map_init(&m->by_lower);
    mg_map_init(&m->sets);
    m->entries = mg_xcalloc(json_object_size(root) + 1, sizeof(*m->entries));

    mg_costmap_vctx_t c = {source, NULL, err};
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (mg_costmap_in(name, mg_costmap_non_models)) {
            continue;
        }
        c.entry = name;
        mg_costmap_entry_t *e = &m->entries[m->count];
        if (mg_costmap_read_entry(&c, name, v, e) != MG_OK) {
            free(e->tiers);
            free(e->set_name_buf);
            mg_costmap_free(m);
            return MG_ERROR;
        }
        m->count++;
    }
    if (m->count == 0) {
        mg_costmap_free(m);
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": no model entries (an empty "
                          "object, or only sample_spec)", source);
    }
    for (size_t i = 0; i < m->count; i++) {
        mg_costmap_entry_t *e = &m->entries[i];
        mg_map_put(&m->by_name, e->name, strlen(e->name), e);
        mg_costmap_put_lower(&m->by_lower, e->name, e);
    }
    mg_costmap_build_sets(m);
    *out = m;
    return MG_OK;
}

int
mg_costmap_load_file(const char *path, mg_costmap_t **out, mg_err_t *err)
{
    *out = NULL;
    if (mg_costmap_starts(path, "file://")) {
        path += strlen("file://");
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": open() failed (%d: %s)", path,
                          errno, strerror(errno));
    }
    mg_buf_t b = MG_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mg_buf_len(&b) + n > MG_COSTMAP_MAX_BYTES) {
            fclose(f);
            mg_buf_free(&b);
            return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": more than the %u bytes "
                              "accepted", path, MG_COSTMAP_MAX_BYTES);
        }
        mg_buf_append(&b, chunk, n);
    }
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr != 0) {
        mg_buf_free(&b);
        return mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\": read() failed (%d: %s)", path,
                          rerr, strerror(rerr));
    }
    int rc = mg_costmap_parse(b.data != NULL ? mg_buf_head(&b) : "", mg_buf_len(&b), path, out,
                              err);
    mg_buf_free(&b);
    return rc;
}

int
mg_costmap_default(mg_costmap_t **out, mg_err_t *err)
{
    return mg_costmap_parse(mg_costmap_default_json, mg_costmap_default_json_len, "builtin", out,
                            err);
}

mg_costmap_t *
mg_costmap_ref(mg_costmap_t *m)
{
    m->refs++;
    return m;
}

void
mg_costmap_unref(mg_costmap_t *m)
{
    if (m == NULL) {
        return;
    }
    if (m->refs <= 0) {
        mg_log_write(MG_LOG_ERROR, NULL, "mg_costmap_unref() underflow on cost map \"%s\", "
                     "aborting", m->source);
        abort();
    }
    if (--m->refs == 0) {
        mg_costmap_free(m);
    }
}

/* ---- lookups (litellm/utils.py _get_model_info_helper) ---- */

const mg_costmap_entry_t *
mg_costmap_get(const mg_costmap_t *m, const char *key)
{
    size_t n = strlen(key);
    const mg_costmap_entry_t *e = mg_map_get(&m->by_name, key, n);
    if (e != NULL) {
        return e;
    }
    /* _get_model_cost_key: a case-insensitive match when the exact key is not there */
    char small[256];
    char *low = n < sizeof(small) ? small : mg_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        low[i] = (char) tolower((unsigned char) key[i]);
    }
    low[n] = '\0';
    e = mg_map_get(&m->by_lower, low, n);
    if (low != small) {
        free(low);
    }
    return e;
}

/* _check_provider_match */
static bool
mg_costmap_provider_ok(const mg_costmap_entry_t *e, const char *p)
{
    const char *ep = e->provider;
    if (p == NULL || p[0] == '\0' || ep == NULL || strcmp(ep, p) == 0) {
        return true;
    }
    if (strcmp(p, "vertex_ai") == 0 && mg_costmap_starts(ep, "vertex_ai")) {
        return true;
    }
    if (strcmp(p, "fireworks_ai") == 0 && mg_costmap_starts(ep, "fireworks_ai")) {
        return true;
    }
    if (mg_costmap_starts(p, "bedrock") && mg_costmap_starts(ep, "bedrock")) {
        return true;
    }
    if (strcmp(p, "litellm_proxy") == 0 || strcmp(p, "github") == 0) {
        return true;
    }
    if (strcmp(p, "azure_ai") == 0 && (strcmp(ep, "azure") == 0 || strcmp(ep, "openai") == 0)) {
        return true;
    }
    return false;
}

/* "us-east-1", "us-gov-west-1", "ap-southeast-2": an AWS region path segment. */
static bool
mg_costmap_aws_region(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 6 || !islower((unsigned char) s[0]) || !islower((unsigned char) s[1]) || s[2] != '-') {
        return false;
    }
    i = 3;
    if (n > 7 && strncmp(s + i, "gov-", 4) == 0) {
        i += 4;
    }
    size_t w = i;
    while (i < n && islower((unsigned char) s[i])) {
        i++;
    }
    if (i == w || i >= n || s[i] != '-') {
        return false;
    }
    i++;
    size_t d = i;
    while (i < n && isdigit((unsigned char) s[i])) {
        i++;
    }
    return i > d && i == n;
}

/* BedrockModelInfo.get_base_model */
static const char *
mg_costmap_bedrock_base(const char *m)
{
    static const char *const routes[] = {"bedrock/", "converse/", "invoke/"};
    for (size_t i = 0; i < 3; i++) {
        if (mg_costmap_starts(m, routes[i])) {
            m += strlen(routes[i]);
        }
    }
    for (const char *p = m; *p; p++) {
        if (strncasecmp(p, "arn", 3) == 0) {
            const char *slash = strrchr(m, '/');
            if (slash != NULL) {
                m = slash + 1;
            }
            break;
        }
    }
    static const char *const geo[] = {"global", "us", "eu", "apac", "jp", "au", "us-gov", NULL};
    const char *dot = strchr(m, '.');
    if (dot != NULL) {
        for (const char *const *g = geo; *g; g++) {
            if (strlen(*g) == (size_t) (dot - m) && strncmp(m, *g, strlen(*g)) == 0) {
                return dot + 1;
            }
        }
    }
    const char *slash = strchr(m, '/');
    if (slash != NULL && mg_costmap_aws_region(m, (size_t) (slash - m))) {
        return slash + 1;
    }
    return m;
}

/* _strip_model_name; returns a malloc'd string. */
static char *
mg_costmap_strip(const char *model, const char *provider)
{
    const char *p = provider != NULL ? provider : "";
    if (strcmp(p, "bedrock") == 0 || strcmp(p, "bedrock_converse") == 0) {
        return mg_xstrdup(mg_costmap_bedrock_base(model));
    }
    size_t n = strlen(model);
    if (strcmp(p, "vertex_ai") == 0 || strcmp(p, "gemini") == 0 || strcmp(p, "databricks") == 0) {
        /* _strip_stable_vertex_version: re.sub(r"-\d+$", "", model) */
        size_t i = n;
        while (i > 0 && isdigit((unsigned char) model[i - 1])) {
            i--;
        }
        if (i < n && i > 0 && model[i - 1] == '-') {
            return mg_xstrndup(model, i - 1);
        }
        return mg_xstrdup(model);
    }
    if (strstr(model, "ft:") != NULL) {
        /* _strip_openai_finetune_model_name: re.sub(r"(:[^:]+){3}$", "", model) */
        size_t end = n;
        for (int k = 0; k < 3; k++) {
            size_t i = end;
            while (i > 0 && model[i - 1] != ':') {
                i--;
            }
            if (i == 0 || i == end) {
                return mg_xstrdup(model);
            }
            end = i - 1;
        }
        return mg_xstrndup(model, end);
    }
    return mg_xstrdup(model);
}

static const mg_costmap_entry_t *
mg_costmap_try(const mg_costmap_t *m, const char *key, const char *provider)
{
    const mg_costmap_entry_t *e = mg_costmap_get(m, key);
    return e != NULL && mg_costmap_provider_ok(e, provider) ? e : NULL;
}

/* One name, in _get_potential_model_names' order. */
static const mg_costmap_entry_t *
mg_costmap_find(const mg_costmap_t *m, const char *provider, const char *model)
{
    const char *p = provider != NULL ? provider : "";
    size_t pl = strlen(p);
    if (strcmp(p, "vertex_ai_beta") == 0) {
        p = "vertex_ai";
        pl = strlen(p);
    }
    const char *split = model;
    if (pl > 0 && strncmp(model, p, pl) == 0 && model[pl] == '/') {
        split = model + pl + 1;
    }
    char *stripped = mg_costmap_strip(split, p);
    char *combined = NULL, *combined_stripped = NULL;
    if (pl > 0) {
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "%s/%s", p, split);
        combined = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_reset(&b);
        mg_buf_printf(&b, "%s/%s", p, stripped);
        combined_stripped = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
    }
    const char *cands[5] = {combined, model, combined_stripped, stripped, split};
    const mg_costmap_entry_t *e = NULL;
    for (size_t i = 0; i < 5 && e == NULL; i++) {
        if (cands[i] != NULL) {
            e = mg_costmap_try(m, cands[i], p);
        }
    }
    free(stripped);
    free(combined);
    free(combined_stripped);
    return e;
}

/* The provider a "provider/model" name carries, if the map knows that provider. */
static bool
mg_costmap_prefix_provider(const mg_costmap_t *m, const char *name, char *out, size_t outlen)
{
    const char *slash = strchr(name, '/');
    if (slash == NULL || slash == name || (size_t) (slash - name) >= outlen) {
        return false;
    }
    size_t n = (size_t) (slash - name);
    if (mg_map_get(&m->sets, name, n) == NULL) {
        return false;
    }
    memcpy(out, name, n);
    out[n] = '\0';
    return true;
}

const mg_costmap_entry_t *
mg_costmap_lookup(const mg_costmap_t *m, const char *provider, const char *model,
                  const char *base_model)
{
    char pfx[64];
    if (m == NULL) {
        return NULL;
    }
    if (base_model != NULL && base_model[0] != '\0') {
        const char *bp = provider;
        if (mg_costmap_prefix_provider(m, base_model, pfx, sizeof(pfx))) {
            bp = pfx;
        }
        const mg_costmap_entry_t *e = mg_costmap_find(m, bp, base_model);
        if (e != NULL) {
            return e;
        }
    }
    if (model == NULL || model[0] == '\0') {
        return NULL;
    }
    if ((provider == NULL || provider[0] == '\0') &&
        mg_costmap_prefix_provider(m, model, pfx, sizeof(pfx))) {
        provider = pfx; /* get_llm_provider would have found it from the prefix */
    }
    return mg_costmap_find(m, provider, model);
}

size_t
mg_costmap_provider_models(const mg_costmap_t *m, const char *provider, const char *const **names)
{
    const mg_costmap_set_t *s = provider != NULL ? mg_map_get(&m->sets, provider,
                                                              strlen(provider))
                                                 : NULL;
    *names = s != NULL ? s->names : NULL;
    return s != NULL ? s->n : 0;
}

int
mg_costmap_supports(const mg_costmap_entry_t *e, const char *flag)
{
    json_t *v = e != NULL ? json_object_get(e->info, flag) : NULL;
    return json_is_boolean(v) ? (json_is_true(v) ? 1 : 0) : -1;
}

/* ---- cost ---- */

static const char *const mg_costmap_price_fields[] = {
    "input_cost_per_token",           "output_cost_per_token",
    "cache_read_input_token_cost",    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token", "input_cost_per_second",
    "output_cost_per_second",         NULL,
};

int
mg_costmap_prices_from_json(json_t *litellm_params, json_t *model_info, mg_costmap_prices_t *out,
                            mg_err_t *err)
{
    double *slot[] = {
        &out->input_cost_per_token,           &out->output_cost_per_token,
        &out->cache_read_input_token_cost,    &out->cache_creation_input_token_cost,
        &out->output_cost_per_reasoning_token, &out->input_cost_per_second,
        &out->output_cost_per_second,
    };
    for (size_t i = 0; mg_costmap_price_fields[i] != NULL; i++) {
        const char *k = mg_costmap_price_fields[i];
        json_t *v = json_object_get(litellm_params, k);
        const char *where = "litellm_params";
        if (v == NULL || json_is_null(v)) {
            v = json_object_get(model_info, k);
            where = "model_info";
        }
        *slot[i] = -1;
        if (v == NULL || json_is_null(v)) {
            continue;
        }
        double d = -1;
        if (json_is_number(v)) {
            d = json_number_value(v);
        } else if (json_is_string(v)) {
            /* _get_cost_per_unit: "3e-7" from YAML is a price */
            const char *s = json_string_value(v);
            char *end;
            errno = 0;
            d = strtod(s, &end);
            while (isspace((unsigned char) *end)) {
                end++;
            }
            if (end == s || *end != '\0' || errno != 0) {
                d = -1;
            }
        }
        if (!(d >= 0) || !isfinite(d)) {
            char got[96];
            mg_costmap_describe(v, got, sizeof(got));
            return mg_err_set(err, MG_ERR_CONFIG, "%s.%s must be a number >= 0, got %s", where, k,
                              got);
        }
        *slot[i] = d;
    }
    return MG_OK;
}

static double
mg_costmap_pick(double first, double second)
{
    return first >= 0 ? first : second;
}

double
mg_costmap_cost(const mg_costmap_entry_t *e, const mg_costmap_prices_t *dep, const mg_usage_t *u,
                int64_t duration_ms, mg_costmap_call_t call, mg_costmap_cost_t *out)
{
    static const mg_costmap_prices_t none = MG_COSTMAP_PRICES_NONE;
    static const mg_costmap_entry_t empty = {
        .input_cost_per_token = -1,        .output_cost_per_token = -1,
        .cache_read_input_token_cost = -1, .cache_creation_input_token_cost = -1,
        .output_cost_per_reasoning_token = -1, .input_cost_per_second = -1,
        .output_cost_per_second = -1,
    };
    static const mg_usage_t no_usage = {0};
    mg_costmap_cost_t r = {0};
    if (u == NULL) {
        u = &no_usage;
    }
    if (dep == NULL) {
        dep = &none;
    }
    if (e == NULL) {
        e = &empty;
    }
    /* the price sheet: the deployment's fields win, one by one */
    bool dep_tokens = dep->input_cost_per_token >= 0 || dep->output_cost_per_token >= 0;
    double in = mg_costmap_pick(dep->input_cost_per_token, e->input_cost_per_token);
    double outp = mg_costmap_pick(dep->output_cost_per_token, e->output_cost_per_token);
    double in_s = mg_costmap_pick(dep->input_cost_per_second, e->input_cost_per_second);
    double out_s = mg_costmap_pick(dep->output_cost_per_second, e->output_cost_per_second);
    double cread, ccreate, reason;
    if (dep_tokens) {
        /* _cost_per_token_custom_pricing_helper: cache prices default to the input price */
        double din = mg_costmap_pick(dep->input_cost_per_token, -1);
        cread = mg_costmap_pick(dep->cache_read_input_token_cost,
                                mg_costmap_pick(din, e->cache_read_input_token_cost));
        ccreate = mg_costmap_pick(dep->cache_creation_input_token_cost,
                                  mg_costmap_pick(din, e->cache_creation_input_token_cost));
        reason = mg_costmap_pick(dep->output_cost_per_reasoning_token,
                                 dep->output_cost_per_token >= 0
                                     ? dep->output_cost_per_token
                                     : e->output_cost_per_reasoning_token);
    } else {
        cread = mg_costmap_pick(dep->cache_read_input_token_cost, e->cache_read_input_token_cost);
        ccreate = mg_costmap_pick(dep->cache_creation_input_token_cost,
                                  e->cache_creation_input_token_cost);
        reason = mg_costmap_pick(dep->output_cost_per_reasoning_token,
                                 e->output_cost_per_reasoning_token);
    }
    r.deployment_prices = dep_tokens || dep->cache_read_input_token_cost >= 0 ||
                          dep->cache_creation_input_token_cost >= 0 ||
                          dep->output_cost_per_reasoning_token >= 0 ||
                          dep->input_cost_per_second >= 0 || dep->output_cost_per_second >= 0;
    if (in < 0 && outp < 0 && in_s < 0 && out_s < 0) {
        r.unpriced = true;
        if (out != NULL) {
            *out = r;
        }
        return 0;
    }

    bool embedding = call == MG_COSTMAP_CALL_EMBEDDING ||
                     (e->mode != NULL && strcmp(e->mode, "embedding") == 0);
    double prompt = u->prompt_tokens > 0 ? (double) u->prompt_tokens : 0;
    double completion = !embedding && u->completion_tokens > 0 ? (double) u->completion_tokens : 0;
    double cache_rd = u->cache_read_tokens > 0 ? (double) u->cache_read_tokens : 0;
    double cache_cr = u->cache_creation_tokens > 0 ? (double) u->cache_creation_tokens : 0;
    double reasoning = !embedding && u->reasoning_tokens > 0 ? (double) u->reasoning_tokens : 0;

    if (!(in > 0 || outp > 0) && (in_s >= 0 || out_s >= 0)) {
        /* cost_per_token's last branch: no token price, priced by the call's duration */
        double secs = duration_ms > 0 ? (double) duration_ms / 1000.0 : 0;
        r.by_duration = true;
        r.prompt = (in_s > 0 ? in_s : 0) * secs;
        r.completion = (out_s > 0 ? out_s : 0) * secs;
    } else {
        double in_rate = in > 0 ? in : 0;
        double out_rate = outp > 0 ? outp : 0;
        if (!dep_tokens) {
            /* _get_token_base_cost: the highest tier the prompt is above sets every price */
            for (size_t i = 0; i < e->ntiers; i++) {
                const mg_costmap_tier_t *t = &e->tiers[i];
                if (prompt > t->threshold) {
                    in_rate = t->input;
                    out_rate = mg_costmap_pick(t->output, out_rate);
                    cread = mg_costmap_pick(dep->cache_read_input_token_cost,
                                            mg_costmap_pick(t->cache_read, cread));
                    ccreate = mg_costmap_pick(dep->cache_creation_input_token_cost,
                                              mg_costmap_pick(t->cache_creation, ccreate));
                    r.tier_threshold = t->threshold;
                    break;
                }
            }
        }
        /* moongate: an unknown cache price is the input price, not LiteLLM's 0 */
        double cread_rate = mg_costmap_pick(cread, in_rate);
        double ccreate_rate = mg_costmap_pick(ccreate, in_rate);
        double reason_rate = mg_costmap_pick(reason, out_rate);
        double text_in = prompt - cache_rd - cache_cr;
        if (text_in < 0) {
            text_in = 0;
        }
        r.prompt = text_in * in_rate + cache_rd * cread_rate + cache_cr * ccreate_rate;
        double text_out = completion - reasoning;
        if (text_out < 0) {
            text_out = 0;
        }
        r.completion = text_out * out_rate + reasoning * reason_rate;
    }
    r.total = r.prompt + r.completion;
    if (out != NULL) {
        *out = r;
    }
    return r.total;
}

/* ---- reload guard ---- */

int
mg_costmap_check_coverage(const mg_costmap_t *old_map, const mg_costmap_t *new_map,
                          const mg_costmap_key_t *used, size_t nused, mg_err_t *err)
{
    if (old_map == NULL || new_map == NULL) {
        return MG_OK;
    }
    mg_map_t seen;
    mg_map_init(&seen);
    size_t had = 0, dropped = 0;
    mg_buf_t names = MG_BUF_INIT;
    for (size_t i = 0; i < nused; i++) {
        const mg_costmap_key_t *k = &used[i];
        if (k->model == NULL || strchr(k->model, '*') != NULL) {
            continue;
        }
        const mg_costmap_entry_t *oe = mg_costmap_lookup(old_map, k->provider, k->model,
                                                         k->base_model);
        if (oe == NULL || mg_map_get(&seen, oe->name, strlen(oe->name)) != NULL) {
            continue;
        }
        mg_map_put(&seen, oe->name, strlen(oe->name), (void *) oe);
        had++;
        if (mg_costmap_lookup(new_map, k->provider, k->model, k->base_model) == NULL) {
            if (dropped < 5) {
                mg_buf_printf(&names, "%s\"%s\"", dropped ? ", " : "", oe->name);
            }
            dropped++;
        }
    }
    mg_map_free(&seen);
    int rc = MG_OK;
    if (had > 0 && dropped * 100 > had * MG_COSTMAP_MAX_DROP_PERCENT) {
        rc = mg_err_set(err, MG_ERR_CONFIG, "cost map \"%s\" refused: it drops %zu of the %zu "
                        "entries the deployments use (more than %d%%): %s%s", new_map->source,
                        dropped, had, MG_COSTMAP_MAX_DROP_PERCENT, mg_buf_cstr(&names),
                        dropped > 5 ? ", ..." : "");
    }
    mg_buf_free(&names);
    return rc;
}
