/*
 * mg_yaml.c -- libyaml event stream -> jansson tree with source marks.
 */
#include "mg_yaml.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_err.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void
mg_marks_init(mg_marks_t *m)
{
    mg_map_init(&m->by_path);
    m->files = NULL;
    m->nfiles = 0;
}

void
mg_marks_free(mg_marks_t *m)
{
    for (size_t i = 0; i < m->by_path.cap; i++) {
        if (m->by_path.slots[i].key != NULL) {
            free(m->by_path.slots[i].val);
        }
    }
    mg_map_free(&m->by_path);
    for (size_t i = 0; i < m->nfiles; i++) {
        free(m->files[i]);
    }
    free(m->files);
    m->files = NULL;
    m->nfiles = 0;
}

const mg_mark_t *
mg_marks_get(const mg_marks_t *m, const char *path)
{
    if (m == NULL) {
        return NULL;
    }
    return mg_map_get(&m->by_path, path, strlen(path));
}

static const char *
mg_marks_file(mg_marks_t *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        if (strcmp(m->files[i], name) == 0) {
            return m->files[i];
        }
    }
    m->files = mg_xrealloc(m->files, (m->nfiles + 1) * sizeof(char *));
    m->files[m->nfiles] = mg_xstrdup(name);
    return m->files[m->nfiles++];
}

typedef struct {
    yaml_parser_t parser;
    const char *name;
    mg_marks_t *marks;
    const char *file;           /* interned name */
    json_t *anchors;            /* object: anchor -> node */
    mg_err_t *err;
    int depth;
    size_t nodes;               /* nodes produced, aliases expanded (a bound against bombs) */
    size_t aliases;
} mg_yaml_ctx_t;

#define MG_YAML_MAX_NODES 200000
#define MG_YAML_MAX_ALIASES 10000
#define MG_YAML_MARKED_ALIASES 200  /* aliases whose copies get their own locations */

static void
mg_yaml_mark(mg_yaml_ctx_t *y, const char *path, const yaml_mark_t *mk)
{
    if (y->marks == NULL) {
        return;
    }
    mg_mark_t *m = mg_xmalloc(sizeof(*m));
    m->file = y->file;
    m->line = (int) mk->line + 1;
    m->col = (int) mk->column + 1;
    void *old = mg_map_put(&y->marks->by_path, path, strlen(path), m);
    free(old);
}

/* Copies marks recorded under an anchor's path to the alias's path. */
static void
mg_yaml_copy_marks(mg_yaml_ctx_t *y, const char *from, const char *to)
{
    if (y->marks == NULL) {
        return;
    }
    size_t fl = strlen(from);
    mg_map_t *map = &y->marks->by_path;
    /* collect first: inserting while iterating may grow the table */
    size_t n = 0;
    char **keys = NULL;
    for (size_t i = 0; i < map->cap; i++) {
        const char *k = map->slots[i].key;
        if (k != NULL && strncmp(k, from, fl) == 0 &&
            (k[fl] == '\0' || k[fl] == '.' || k[fl] == '[')) {
            keys = mg_xrealloc(keys, (n + 1) * sizeof(char *));
            keys[n++] = mg_xstrdup(k);
        }
    }
    for (size_t i = 0; i < n; i++) {
        mg_mark_t *src = mg_map_get(map, keys[i], strlen(keys[i]));
        mg_buf_t nb = MG_BUF_INIT;
        mg_buf_append_str(&nb, to);
        mg_buf_append_str(&nb, keys[i] + fl);
        mg_mark_t *m = mg_xmalloc(sizeof(*m));
        *m = *src;
        void *old = mg_map_put(map, mg_buf_cstr(&nb), mg_buf_len(&nb), m);
        free(old);
        mg_buf_free(&nb);
        free(keys[i]);
    }
    free(keys);
}

static int
mg_yaml_error(mg_yaml_ctx_t *y, const yaml_mark_t *mk, const char *what)
{
    return mg_err_set(y->err, MG_ERR_CONFIG, "%s:%d:%d: %s", y->name, (int) mk->line + 1,
                      (int) mk->column + 1, what);
}

static bool
mg_yaml_match(const char *s, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(s, *list) == 0) {
            return true;
        }
    }
    return false;
}


/* Digits of base b with '_' allowed (PyYAML); value in *v, false on overflow or bad digit. */
static bool
mg_yaml_parse_uint(const char *p, int base, bool *any, unsigned long long *v)
{
    *v = 0;
    *any = false;
    for (; *p; p++) {
        if (*p == '_') {
            continue;
        }
        int d;
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') {
            d = (*p | 0x20) - 'a' + 10;
        } else {
            return false;
        }
        if (d >= base) {
            return false;
        }
        *any = true;
        if (__builtin_mul_overflow(*v, (unsigned long long) base, v) ||
            __builtin_add_overflow(*v, (unsigned long long) d, v)) {
            return false;
        }
    }
    return *any;
}

static json_t *
mg_yaml_int(bool neg, unsigned long long v, const char *text)
{
    if (v <= (unsigned long long) INT64_MAX) {
        return json_integer(neg ? -(json_int_t) v : (json_int_t) v);
    }
    (void) text;
    return json_real(neg ? -(double) v : (double) v);
}

/* PyYAML's float: [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?  or  \.[0-9_]+([eE][-+][0-9]+)? */
static bool
mg_yaml_is_float(const char *s)
{
    const char *p = s;
    if (*p == '.') {
        p++;
        if (!((*p >= '0' && *p <= '9') || *p == '_')) {
            return false;
        }
        while ((*p >= '0' && *p <= '9') || *p == '_') {
            p++;
        }
    } else {
        if (*p == '-' || *p == '+') {
            p++;
        }
        if (!(*p >= '0' && *p <= '9')) {
            return false;
        }
        while ((*p >= '0' && *p <= '9') || *p == '_') {
            p++;
        }
        if (*p != '.') {
            return false;
        }
        p++;
        while ((*p >= '0' && *p <= '9') || *p == '_') {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p != '-' && *p != '+') {
            return false; /* PyYAML needs the sign: 1.0e3 stays a string */
        }
        p++;
        if (!(*p >= '0' && *p <= '9')) {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    return *p == '\0';
}

/* Resolves a plain scalar the way PyYAML's SafeLoader (YAML 1.1) does. */
static json_t *
mg_yaml_resolve_plain(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                        "on", "On", "ON", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO",
                                         "off", "Off", "OFF", NULL};
    if (mg_yaml_match(s, nulls)) {
        return json_null();
    }
    if (mg_yaml_match(s, trues)) {
        return json_true();
    }
    if (mg_yaml_match(s, falses)) {
        return json_false();
    }
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    unsigned long long v;
    bool any;
    /* int: 0b.., 0x.., 0[0-7_]+, 0, [1-9][0-9_]* */
    if (p[0] == '0' && p[1] == 'b') {
        if (mg_yaml_parse_uint(p + 2, 2, &any, &v)) {
            return mg_yaml_int(neg, v, s);
        }
        return any ? json_real(0) : json_string(s);
    }
    if (p[0] == '0' && p[1] == 'x') {
        if (mg_yaml_parse_uint(p + 2, 16, &any, &v)) {
            return mg_yaml_int(neg, v, s);
        }
        /* too big for 64 bits: a real, like Python's big int turned into JSON */
        if (any && strspn(p + 2, "0123456789abcdefABCDEF_") == strlen(p + 2)) {
            return json_real(strtod(s, NULL));
        }
        return json_string(s);
    }
    if (p[0] == '0' && p[1] != '\0') {
        if (strspn(p + 1, "01234567_") == strlen(p + 1) && mg_yaml_parse_uint(p + 1, 8, &any, &v)) {
            return mg_yaml_int(neg, v, s);
        }
        if (!mg_yaml_is_float(s)) {
            return json_string(s); /* "09" is a string to PyYAML */
        }
    }
    if (p[0] >= '0' && p[0] <= '9' && strspn(p, "0123456789_") == strlen(p) &&
        (p[0] != '0' || p[1] == '\0')) {
        if (mg_yaml_parse_uint(p, 10, &any, &v)) {
            return mg_yaml_int(neg, v, s);
        }
        char buf[400];
        size_t n = 0;
        for (const char *q = p; *q && n + 1 < sizeof(buf); q++) {
            if (*q != '_') {
                buf[n++] = *q;
            }
        }
        buf[n] = '\0';
        return json_real(neg ? -strtod(buf, NULL) : strtod(buf, NULL));
    }
    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0 ||
        strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 || strcmp(s, ".NAN") == 0) {
        return json_string(s); /* JSON has no infinity or NaN: keep the text */
    }
    if (mg_yaml_is_float(s)) {
        char buf[400];
        size_t n = 0;
        for (const char *q = s; *q && n + 1 < sizeof(buf); q++) {
            if (*q != '_') {
                buf[n++] = *q;
            }
        }
        buf[n] = '\0';
        double d = strtod(buf, NULL);
        if (d != d || d > 1.7e308 || d < -1.7e308) {
            return json_string(s);
        }
        return json_real(d);
    }
    return json_string(s);
}

static int mg_yaml_node(mg_yaml_ctx_t *y, yaml_event_t *ev, const char *path, json_t **out);

static int
mg_yaml_next(mg_yaml_ctx_t *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        const yaml_mark_t *mk = &y->parser.problem_mark;
        char what[512];
        snprintf(what, sizeof(what), "YAML syntax error: %s%s%s",
                 y->parser.problem ? y->parser.problem : "unknown problem",
                 y->parser.context ? " " : "", y->parser.context ? y->parser.context : "");
        return mg_yaml_error(y, mk, what);
    }
    return MG_OK;
}

static void
mg_yaml_merge_into(json_t *obj, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        if (json_object_get(obj, k) == NULL) {
            json_object_set(obj, k, v);
        }
    }
}

static int
mg_yaml_mapping(mg_yaml_ctx_t *y, const char *path, json_t **out)
{
    json_t *obj = json_object();
    json_t *merges = json_array(); /* "<<" sources, applied after explicit keys */
    for (;;) {
        yaml_event_t kev;
        if (mg_yaml_next(y, &kev) != MG_OK) {
            goto fail;
        }
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            mg_yaml_error(y, &kev.start_mark, "mapping keys must be plain scalars");
            yaml_event_delete(&kev);
            goto fail;
        }
        char *key = mg_xstrndup((const char *) kev.data.scalar.value, kev.data.scalar.length);
        yaml_mark_t kmark = kev.start_mark;
        bool is_merge = kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(key, "<<") == 0;
        yaml_event_delete(&kev);

        mg_buf_t cp = MG_BUF_INIT;
        mg_buf_printf(&cp, "%s%s%s", path, path[0] ? "." : "", key);
        yaml_event_t vev;
        if (mg_yaml_next(y, &vev) != MG_OK) {
            free(key);
            mg_buf_free(&cp);
            goto fail;
        }
        json_t *val = NULL;
        int rc = mg_yaml_node(y, &vev, mg_buf_cstr(&cp), &val);
        yaml_event_delete(&vev);
        if (rc != MG_OK) {
            free(key);
            mg_buf_free(&cp);
            goto fail;
        }
        if (is_merge) {
            if (json_is_object(val)) {
                json_array_append(merges, val);
            } else if (json_is_array(val)) {
                size_t i;
                json_t *it;
                json_array_foreach(val, i, it) {
                    if (!json_is_object(it)) {
                        json_decref(val);
                        free(key);
                        mg_buf_free(&cp);
                        mg_yaml_error(y, &kmark, "merge key \"<<\" needs a mapping or a list of mappings");
                        goto fail;
                    }
                    json_array_append(merges, it);
                }
            } else {
                json_decref(val);
                free(key);
                mg_buf_free(&cp);
                mg_yaml_error(y, &kmark, "merge key \"<<\" needs a mapping or a list of mappings");
                goto fail;
            }
            json_decref(val);
        } else {
            /* PyYAML keeps the last of duplicate keys */
            json_object_set_new(obj, key, val);
            mg_yaml_mark(y, mg_buf_cstr(&cp), &kmark);
        }
        free(key);
        mg_buf_free(&cp);
    }
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        mg_yaml_merge_into(obj, m);
    }
    json_decref(merges);
    *out = obj;
    return MG_OK;
fail:
    json_decref(merges);
    json_decref(obj);
    return MG_ERROR;
}

static int
mg_yaml_sequence(mg_yaml_ctx_t *y, const char *path, json_t **out)
{
    json_t *arr = json_array();
    for (size_t idx = 0;; idx++) {
        yaml_event_t ev;
        if (mg_yaml_next(y, &ev) != MG_OK) {
            json_decref(arr);
            return MG_ERROR;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        char cp[1024];
        snprintf(cp, sizeof(cp), "%s[%zu]", path, idx);
        json_t *val = NULL;
        int rc = mg_yaml_node(y, &ev, cp, &val);
        yaml_event_delete(&ev);
        if (rc != MG_OK) {
            json_decref(arr);
            return MG_ERROR;
        }
        json_array_append_new(arr, val);
    }
    *out = arr;
    return MG_OK;
}

static int
mg_yaml_node(mg_yaml_ctx_t *y, yaml_event_t *ev, const char *path, json_t **out)
{
    if (++y->depth > 64) {
        y->depth--;
        return mg_yaml_error(y, &ev->start_mark, "nesting deeper than 64 levels");
    }
    int rc = MG_OK;
    const char *anchor = NULL;
    size_t nodes_before = y->nodes;
    if (++y->nodes > MG_YAML_MAX_NODES) {
        y->depth--;
        return mg_yaml_error(y, &ev->start_mark, "document too large (more than 200000 nodes, "
                                                 "aliases expanded)");
    }
    mg_yaml_mark(y, path, &ev->start_mark);
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *) ev->data.scalar.value;
        anchor = (const char *) ev->data.scalar.anchor;
        const char *tag = (const char *) ev->data.scalar.tag;
        if (tag != NULL && strcmp(tag, YAML_STR_TAG) == 0) {
            *out = json_stringn(v, ev->data.scalar.length);
        } else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            *out = mg_yaml_resolve_plain(v);
        } else {
            *out = json_stringn(v, ev->data.scalar.length);
        }
        if (*out == NULL) {
            rc = mg_yaml_error(y, &ev->start_mark, "scalar is not valid UTF-8");
        }
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
        anchor = (const char *) ev->data.sequence_start.anchor;
        rc = mg_yaml_sequence(y, path, out);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = (const char *) ev->data.mapping_start.anchor;
        rc = mg_yaml_mapping(y, path, out);
        break;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *) ev->data.alias.anchor;
        json_t *a = json_object_get(y->anchors, name);
        if (a == NULL) {
            char what[300];
            snprintf(what, sizeof(what), "unknown alias \"*%s\"", name);
            rc = mg_yaml_error(y, &ev->start_mark, what);
            break;
        }
        json_t *node = json_object_get(a, "node");
        const char *apath = json_string_value(json_object_get(a, "path"));
        /* expanding aliases of aliases grows exponentially: count before copying */
        size_t size = (size_t) json_integer_value(json_object_get(a, "nodes"));
        if (++y->aliases > MG_YAML_MAX_ALIASES || size > MG_YAML_MAX_NODES - y->nodes) {
            rc = mg_yaml_error(y, &ev->start_mark, "too many or too large aliases (more than "
                                                   "10000 aliases or 200000 nodes expanded)");
            break;
        }
        y->nodes += size;
        *out = json_deep_copy(node);
        if (y->aliases <= MG_YAML_MARKED_ALIASES) {
            mg_yaml_copy_marks(y, apath, path); /* later copies report the anchor's place */
        }
        break;
    }
    default:
        rc = mg_yaml_error(y, &ev->start_mark, "unexpected YAML event");
    }
    if (rc == MG_OK && anchor != NULL) {
        json_t *a = json_pack("{s:O,s:s,s:I}", "node", *out, "path", path, "nodes",
                              (json_int_t) (y->nodes - nodes_before));
        json_object_set_new(y->anchors, anchor, a);
    }
    y->depth--;
    return rc;
}

int
mg_yaml_parse(const char *text, size_t len, const char *name, mg_marks_t *marks, json_t **out,
              mg_err_t *err)
{
    mg_yaml_ctx_t y;
    memset(&y, 0, sizeof(y));
    if (!yaml_parser_initialize(&y.parser)) {
        return mg_err_set(err, MG_ERR_INTERNAL, "yaml_parser_initialize() failed");
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *) text, len);
    y.name = name;
    y.marks = marks;
    y.file = marks != NULL ? mg_marks_file(marks, name) : name;
    y.anchors = json_object();
    y.err = err;
    json_t *root = NULL;
    int rc = MG_OK;
    bool in_doc = false;
    for (;;) {
        yaml_event_t ev;
        if (mg_yaml_next(&y, &ev) != MG_OK) {
            rc = MG_ERROR;
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (root != NULL) {
                rc = mg_yaml_error(&y, &ev.start_mark, "more than one YAML document in the file");
                yaml_event_delete(&ev);
                break;
            }
            in_doc = true;
        } else if (t == YAML_DOCUMENT_END_EVENT) {
            in_doc = false;
        } else if (in_doc && (t == YAML_SCALAR_EVENT || t == YAML_MAPPING_START_EVENT ||
                              t == YAML_SEQUENCE_START_EVENT || t == YAML_ALIAS_EVENT)) {
            rc = mg_yaml_node(&y, &ev, "", &root);
            if (rc != MG_OK) {
                yaml_event_delete(&ev);
                break;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y.parser);
    json_decref(y.anchors);
    if (rc != MG_OK) {
        json_decref(root);
        return MG_ERROR;
    }
    *out = root != NULL ? root : json_null();
    return MG_OK;
}

int
mg_yaml_load_file(const char *path, mg_marks_t *marks, json_t **out, mg_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return mg_err_set(err, MG_ERR_CONFIG, "cannot open config file \"%s\" (%d: %s)", path,
                          errno, strerror(errno));
    }
    mg_buf_t b = MG_BUF_INIT;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        mg_buf_append(&b, tmp, n);
        if (mg_buf_len(&b) > 64 * 1024 * 1024) {
            fclose(f);
            mg_buf_free(&b);
            return mg_err_set(err, MG_ERR_CONFIG, "config file \"%s\" is larger than 64 MiB", path);
        }
    }
    int ferr = ferror(f);
    fclose(f);
    if (ferr) {
        mg_buf_free(&b);
        return mg_err_set(err, MG_ERR_CONFIG, "cannot read config file \"%s\"", path);
    }
    int rc = mg_yaml_parse(b.data ? mg_buf_head(&b) : "", mg_buf_len(&b), path, marks, out, err);
    mg_buf_free(&b);
    return rc;
}
