/*
 * fuzz_config.c -- config loading (core/registry/mg_config.c over mg_yaml.c) on arbitrary
 * YAML text, then a registry snapshot built from what was accepted.
 *
 * Invariants:
 *   - never a crash, a leak or a hang (libFuzzer's -timeout/-rss_limit_mb and LeakSanitizer);
 *   - a refusal is a config error whose message starts with the file name (with
 *     FUZZ_CONFIG_STRICT=1 in the environment: "file:line:column: ", the project's rule);
 *   - an accepted config is a mapping; every model has a non-empty model_name and a
 *     litellm_params mapping with a non-empty model;
 *   - the resolved tree rebuilds into an equal config (the master sends it to workers so);
 *   - a registry snapshot builds from it, and every group, id and pattern is found again.
 *
 * Inputs this target skips (documented in tests/fuzz/README.md): files that "include"
 * others or name policy files (routing_policy & co. read files; the fuzzer must not read the
 * machine's files), and YAML whose alias expansion exceeds FUZZ_YAML_MAX_EXPANDED nodes
 * (mg_yaml copies every alias, so nested aliases grow exponentially; see the README; set
 * FUZZ_CONFIG_ALLOW_ALIAS_BOMBS=1 to run them anyway).  environment_variables really
 * calls setenv(); the environment is restored after each input.
 */
#include "fuzz_common.h"

#include "base/mg_err.h"
#include "registry/mg_config.h"
#include "registry/mg_registry.h"

#include <yaml.h>

#define FUZZ_CONFIG_MAX_INPUT (64 * 1024)
#define FUZZ_YAML_MAX_EXPANDED 100000
#define FUZZ_YAML_MAX_ALIAS_WORK 20000000

extern char **environ;

static char **fuzz_env0;    /* the environment at start ("NAME=value", owned) */
static size_t fuzz_nenv0;
static bool fuzz_strict;
static bool fuzz_allow_bombs;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        fuzz_env0 = realloc(fuzz_env0, (fuzz_nenv0 + 1) * sizeof(char *));
        fuzz_env0[fuzz_nenv0++] = strdup(*e);
    }
    const char *s = getenv("FUZZ_CONFIG_STRICT");
    fuzz_strict = s != NULL && strcmp(s, "1") == 0;
    s = getenv("FUZZ_CONFIG_ALLOW_ALIAS_BOMBS");
    fuzz_allow_bombs = s != NULL && strcmp(s, "1") == 0;
    return 0;
}

static void
fuzz_env_restore(void)
{
    clearenv();
    for (size_t i = 0; i < fuzz_nenv0; i++) {
        char *eq = strchr(fuzz_env0[i], '=');
        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        setenv(fuzz_env0[i], eq + 1, 1);
        *eq = '=';
    }
}

/* ---- alias expansion estimate (libyaml events, no tree) ---- */

typedef struct {
    char *name;
    uint64_t size;
} fuzz_anchor_t;

static uint64_t
fuzz_sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* Nodes the loader would create if every alias is copied, and the work of copying marks
 * (each alias scans every mark recorded so far). */
static void
fuzz_yaml_expansion(const char *text, size_t len, uint64_t *nodes, uint64_t *work)
{
    yaml_parser_t p;
    *nodes = *work = 0;
    if (!yaml_parser_initialize(&p)) {
        return;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *) text, len);
    fuzz_anchor_t *anchors = NULL;
    size_t nanchors = 0;
    uint64_t start[256];            /* nodes created before each open container */
    char *start_anchor[256];
    int sp = 0;
    uint64_t created = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            break;
        }
        yaml_event_type_t t = ev.type;
        const char *anchor = NULL;
        uint64_t size = 0;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_SCALAR_EVENT) {
            created = fuzz_sat_add(created, 1);
            anchor = (const char *) ev.data.scalar.anchor;
            size = 1;
        } else if (t == YAML_ALIAS_EVENT) {
            *work = fuzz_sat_add(*work, created);
            for (size_t i = 0; i < nanchors; i++) {
                if (strcmp(anchors[i].name, (const char *) ev.data.alias.anchor) == 0) {
                    size = anchors[i].size;
                }
            }
            created = fuzz_sat_add(created, size);
        } else if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            const yaml_char_t *a = t == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                                  : ev.data.mapping_start.anchor;
            created = fuzz_sat_add(created, 1);
            if (sp < 256) {
                start[sp] = created - 1;
                start_anchor[sp] = a != NULL ? strdup((const char *) a) : NULL;
                sp++;
            }
        } else if ((t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) && sp > 0) {
            sp--;
            if (start_anchor[sp] != NULL) {
                anchors = realloc(anchors, (nanchors + 1) * sizeof(*anchors));
                anchors[nanchors].name = start_anchor[sp];
                anchors[nanchors].size = created - start[sp];
                nanchors++;
            }
        }
        if (anchor != NULL) {
            anchors = realloc(anchors, (nanchors + 1) * sizeof(*anchors));
            anchors[nanchors].name = strdup(anchor);
            anchors[nanchors].size = size;
            nanchors++;
        }
        yaml_event_delete(&ev);
    }
    while (sp > 0) {
        free(start_anchor[--sp]);
    }
    for (size_t i = 0; i < nanchors; i++) {
        free(anchors[i].name);
    }
    free(anchors);
    yaml_parser_delete(&p);
    *nodes = created;
}

/* Keys that make the loader read other files. */
static bool
fuzz_reads_files(const char *text, size_t len)
{
    json_t *root = NULL;
    mg_err_t err;
    if (mg_yaml_parse(text, len, "fuzz.yaml", NULL, &root, &err) != MG_OK) {
        return false; /* the loader fails the same way, before reading anything */
    }
    bool files = false;
    if (json_is_object(root)) {
        files = json_object_get(root, "include") != NULL;
        json_t *rs = json_object_get(root, "router_settings");
        files = files || json_object_get(rs, "routing_policy") != NULL ||
                json_object_get(rs, "fallback_policy") != NULL ||
                json_object_get(rs, "wildcard_policy") != NULL;
    }
    json_decref(root);
    return files;
}

static void
fuzz_check_config(mg_config_t *cfg)
{
    FUZZ_ASSERT(json_is_object(cfg->root), "accepted config is not a mapping");
    FUZZ_ASSERT(json_is_array(cfg->models) && json_array_size(cfg->models) == cfg->nmodels,
                "nmodels %zu", cfg->nmodels);
    FUZZ_ASSERT(strlen(cfg->hash) == 64, "config hash \"%s\"", cfg->hash);
    size_t i;
    json_t *m;
    json_array_foreach(cfg->models, i, m) {
        const char *name = json_string_value(json_object_get(m, "model_name"));
        json_t *lp = json_object_get(m, "litellm_params");
        const char *model = json_string_value(json_object_get(lp, "model"));
        FUZZ_ASSERT(name != NULL && name[0] != '\0', "model %zu without model_name", i);
        FUZZ_ASSERT(json_is_object(lp) && model != NULL && model[0] != '\0',
                    "model %zu without litellm_params.model", i);
        FUZZ_ASSERT(json_is_object(json_object_get(m, "model_info")), "model %zu model_info", i);
    }
}

static void
fuzz_check_registry(mg_config_t *cfg)
{
    mg_snapshot_t *s = NULL;
    mg_err_t err;
    mg_err_clear(&err);
    int rc = mg_registry_build(cfg, NULL, NULL, 1, NULL, &s, &err);
    FUZZ_ASSERT(rc == MG_OK, "an accepted config does not build a snapshot: %s", err.msg);
    FUZZ_ASSERT(s->ndeps <= cfg->nmodels, "%zu deployments from %zu models", s->ndeps,
                cfg->nmodels);
    for (size_t i = 0; i < s->ndeps; i++) {
        mg_deployment_t *d = &s->deps[i];
        FUZZ_ASSERT(mg_registry_by_id(s, d->id) == d, "id \"%s\" not found again", d->id);
        FUZZ_ASSERT(d->provider != NULL && d->upstream_model != NULL, "split_model gave NULL");
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        mg_group_t *g = &s->groups[i];
        size_t nl = strlen(g->name);
        if (g->wildcard) {
            char matched[700];
            /* a pattern matches its own name ('*' matches itself) */
            FUZZ_ASSERT(mg_registry_wildcard(s, g->name, nl, matched, sizeof(matched)) != NULL,
                        "pattern \"%s\" does not match itself", g->name);
            char *um = mg_registry_wildcard_model(g->deps[0], g->name);
            FUZZ_ASSERT(um != NULL, "wildcard model substitution failed");
            free(um);
        } else {
            FUZZ_ASSERT(mg_registry_group(s, g->name, nl) == g, "group \"%s\" not found again",
                        g->name);
        }
    }
    mg_snapshot_unref(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_CONFIG_MAX_INPUT) {
        return 0;
    }
    const char *text = (const char *) data;
    if (!fuzz_allow_bombs) {
        uint64_t nodes, work;
        fuzz_yaml_expansion(text, size, &nodes, &work);
        if (nodes > FUZZ_YAML_MAX_EXPANDED || work > FUZZ_YAML_MAX_ALIAS_WORK) {
            return 0;
        }
    }
    if (fuzz_reads_files(text, size)) {
        return 0;
    }
    char *copy = fuzz_dup(text, size);
    mg_config_opts_t opts = {NULL, true};
    mg_config_t *cfg = NULL;
    mg_err_t err;
    mg_err_clear(&err);
    int rc = mg_config_load_text(copy, size, "fuzz.yaml", &opts, &cfg, &err);
    free(copy);
    if (rc != MG_OK) {
        FUZZ_ASSERT(err.cls == MG_ERR_CONFIG, "refusal of class %d: %s", (int) err.cls, err.msg);
        FUZZ_ASSERT(strncmp(err.msg, "fuzz.yaml", 9) == 0, "message without the file: %s",
                    err.msg);
        if (fuzz_strict && strstr(err.msg, "the config file is empty") == NULL) {
            const char *p = err.msg + 9;
            bool located = *p == ':' && p[1] >= '0' && p[1] <= '9';
            FUZZ_ASSERT(located, "message without line:column: %s", err.msg);
        }
        fuzz_env_restore();
        return 0;
    }
    fuzz_check_config(cfg);

    /* the resolved tree, as the master sends it to workers, gives the same config */
    mg_config_t *again = NULL;
    mg_err_clear(&err);
    rc = mg_config_from_json("fuzz.yaml", cfg->root, &opts, &again, &err);
    FUZZ_ASSERT(rc == MG_OK, "resolved tree refused: %s", err.msg);
    FUZZ_ASSERT(again->nmodels == cfg->nmodels, "%zu models, %zu after the round trip",
                cfg->nmodels, again->nmodels);
    FUZZ_ASSERT(json_equal(again->models, cfg->models), "models differ after the round trip");
    mg_config_unref(again);

    fuzz_check_registry(cfg);
    mg_config_unref(cfg);
    fuzz_env_restore();
    return 0;
}
