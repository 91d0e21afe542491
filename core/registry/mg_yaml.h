/*
 * mg_yaml.h -- YAML (1.1 scalar rules, like PyYAML's safe_load) into jansson,
 * remembering where each node came from so errors can say file:line:column.
 *
 * Owns: the marks table (path -> location) and the file names it mentions.
 * The returned json_t belongs to the caller.  Anchors/aliases and merge keys
 * ("<<") are supported; other tags are read as their plain scalar.
 */
#ifndef MG_YAML_H
#define MG_YAML_H

#include "../base/mg_map.h"
#include "../base/mg_types.h"

#include <jansson.h>

typedef struct {
    const char *file;   /* borrowed: from the marks table */
    int line;           /* 1-based */
    int col;            /* 1-based */
} mg_mark_t;

/* Locations keyed by JSON path ("model_list[0].litellm_params.rpm"). */
typedef struct {
    mg_map_t by_path;   /* values: mg_mark_t* (owned) */
    char **files;       /* owned */
    size_t nfiles;
} mg_marks_t;

void mg_marks_init(mg_marks_t *m);
void mg_marks_free(mg_marks_t *m);
/* Location of a path, or NULL. */
const mg_mark_t *mg_marks_get(const mg_marks_t *m, const char *path);

/*
 * Parses a YAML document.  name is the file name used in marks and errors.
 * marks may be NULL.  An empty document yields a JSON null.  prefix is
 * prepended to every recorded path (for includes; "" for the main file).
 */
int mg_yaml_parse(const char *text, size_t len, const char *name, mg_marks_t *marks,
                  json_t **out, mg_err_t *err);

/* Reads and parses a file. */
int mg_yaml_load_file(const char *path, mg_marks_t *marks, json_t **out, mg_err_t *err);

#endif
