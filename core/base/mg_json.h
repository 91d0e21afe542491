/*
 * mg_json.h -- a validating JSON scanner that does not build a tree.
 *
 * The request hot path only needs a few top-level fields of a body that may be
 * megabytes of prompt; this scanner validates the whole text, walks the
 * members of one object, and hands back spans into the caller's buffer so the
 * body can be re-spliced without re-serialising it.  Owns nothing.
 * Everything else (config, admin APIs) uses jansson.
 */
#ifndef MG_JSON_H
#define MG_JSON_H

#include "mg_types.h"

#include <stdbool.h>

/*
 * Objects and arrays nest at most this deep ("[[1]]" is 2 levels); the 201st opening
 * bracket is refused: "Nesting deeper than 200 levels: line 1 column 201 (char 200)".
 * Python's json (LiteLLM) fails near 1000 with a RecursionError; no chat request needs
 * a tenth of 200.
 */
#define MG_JSON_MAX_DEPTH 200
#define MG_JSON_XSTR(x) #x
#define MG_JSON_STR(x) MG_JSON_XSTR(x)

typedef enum {
    MG_JSON_INVALID = 0,
    MG_JSON_OBJECT,
    MG_JSON_ARRAY,
    MG_JSON_STRING,
    MG_JSON_NUMBER,
    MG_JSON_TRUE,
    MG_JSON_FALSE,
    MG_JSON_NULL,
} mg_json_type_t;

typedef struct {
    const char *key;        /* borrowed: between the quotes, still escaped */
    size_t key_len;
    bool key_escaped;       /* key contains a backslash escape */
    const char *val;        /* borrowed: the raw value text */
    size_t val_len;
    mg_json_type_t type;
    const char *start;      /* borrowed: first byte of the member (the key's quote) */
    const char *end;        /* one past the value */
} mg_json_member_t;

typedef struct {
    const char *p;
    const char *end;
    const char *base;       /* for error offsets */
    int state;              /* 0 first, 1 after member, 2 done, -1 error */
    char errmsg[160];
} mg_json_iter_t;

/*
 * Parses one whole JSON value in [p, end) (surrounding whitespace allowed).
 * Returns MG_OK and the type, or MG_ERROR with a message like
 * "Expecting ',' delimiter: line 1 column 15 (char 14)" in errmsg.
 */
int mg_json_validate(const char *p, size_t len, mg_json_type_t *type, char *errmsg, size_t errlen);

/* Starts iterating the object at [p, end); returns MG_ERROR if it is not an object. */
int mg_json_obj_iter(mg_json_iter_t *it, const char *p, size_t len);
/* 1 = a member in *m, 0 = end of object, -1 = syntax error (it->errmsg). */
int mg_json_obj_next(mg_json_iter_t *it, mg_json_member_t *m);

/* Compares a member key with a plain C string (handles escaped keys). */
bool mg_json_key_is(const mg_json_member_t *m, const char *name);

/*
 * Decodes a JSON string value (with its quotes) into out (NUL-terminated, UTF-8).
 * outlen must be >= val_len.  Returns decoded length, or -1 on a bad escape.
 */
long mg_json_str_decode(const char *val, size_t val_len, char *out);

/* Parses a number value into a double / int64 (returns MG_ERROR if not a number). */
int mg_json_num(const char *val, size_t val_len, double *out);

/* Finds a member of the object [p, end) by key; returns 1 and fills *m, 0 if absent, -1 bad. */
int mg_json_obj_find(const char *p, size_t len, const char *key, mg_json_member_t *m);

#endif
