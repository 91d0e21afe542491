/*
 * mg_openapi.h -- the table of every route moongate serves, with what each one
 * takes and answers, and the OpenAPI 3.1 document built from it
 * (GET /openapi.json, and the /docs page reads that).
 *
 * The table sits beside the dispatch code (mg_gw.c, mg_admin.c, mg_ui.c) and
 * tests/e2e/openapi.test.mjs keeps the two together: every documented operation
 * must answer something other than 404/405, and every path literal the dispatch
 * code matches must belong to a documented path.  A route added to dispatch
 * without a row here fails that test.
 */
#ifndef MG_OPENAPI_H
#define MG_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

enum {
    MG_OA_PUBLIC = 1 << 0,          /* answered without a key */
    MG_OA_MASTER = 1 << 1,          /* the master key (or an admin's key) only */
    MG_OA_STREAM = 1 << 2,          /* may answer text/event-stream ("stream": true) */
    MG_OA_HTML = 1 << 3,            /* answers a page (text/html) */
    MG_OA_ASSET = 1 << 4,           /* answers a static asset (script, style, image) */
    MG_OA_REDIRECT = 1 << 5,        /* answers a redirect */
};

typedef struct {
    const char *method;             /* lower case, as OpenAPI names operations */
    const char *path;               /* OpenAPI template: {name} is a path parameter */
    const char *tag;
    unsigned flags;                 /* MG_OA_* */
    const char *summary;
    const char *query;              /* comma-separated query parameters, or NULL */
    const char *body;               /* components.schemas name of the JSON body, or NULL */
    const char *ok;                 /* components.schemas name of the 200 JSON answer, or NULL */
} mg_openapi_op_t;

/* The route table, terminated by a row with method NULL (static). */
const mg_openapi_op_t *mg_openapi_ops(void);

/* The whole document (new reference); server_url is the SERVER_ROOT_PATH ("" = "/"). */
json_t *mg_openapi_document(const char *server_url);

#endif
