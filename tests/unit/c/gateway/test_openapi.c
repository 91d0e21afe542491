/*
 * test_openapi.c -- the route table and the document built from it
 * (core/gateway/mg_openapi.c): the component schemas parse, every $ref resolves, each
 * row is one operation with a summary and a tag, path parameters are declared, and the
 * server URL is the root path.  (tests/e2e/openapi.test.mjs checks the document against
 * the OpenAPI 3.1 schema and against what the gateway serves.)
 */
#include "mg_test.h"

#include "gateway/mg_openapi.h"

#include <string.h>

static int mg_t_refs;

static void
check_refs(json_t *root, json_t *node)
{
    if (json_is_object(node)) {
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v) {
            if (strcmp(k, "$ref") == 0 && json_is_string(v)) {
                const char *ref = json_string_value(v);
                const char *pre = "#/components/schemas/";
                CHECK(strncmp(ref, pre, strlen(pre)) == 0, "ref %s", ref);
                json_t *target = json_object_get(
                    json_object_get(json_object_get(root, "components"), "schemas"),
                    ref + strlen(pre));
                CHECK(target != NULL, "%s resolves", ref);
                mg_t_refs++;
            } else {
                check_refs(root, v);
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) {
            check_refs(root, v);
        }
    }
}

int
main(void)
{
    MG_T_CASE("the document");
    json_t *doc = mg_openapi_document("/llmproxy");
    CHECK_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *srv = json_array_get(json_object_get(doc, "servers"), 0);
    CHECK_STR(json_string_value(json_object_get(srv, "url")), "/llmproxy");
    json_t *comp = json_object_get(doc, "components");
    CHECK(json_object_get(comp, "x-error") == NULL, "the component schemas parse: %s",
          json_string_value(json_object_get(comp, "x-error")));
    CHECK(json_object_size(json_object_get(comp, "schemas")) >= 10);
    CHECK(json_object_get(json_object_get(comp, "securitySchemes"), "bearer") != NULL);
    check_refs(doc, doc);
    CHECK(mg_t_refs > 20, "%d refs checked", mg_t_refs);
    json_t *root = mg_openapi_document("");
    srv = json_array_get(json_object_get(root, "servers"), 0);
    CHECK_STR(json_string_value(json_object_get(srv, "url")), "/");
    json_decref(root);

    MG_T_CASE("one operation per row");
    json_t *paths = json_object_get(doc, "paths");
    int rows = 0;
    for (const mg_openapi_op_t *op = mg_openapi_ops(); op->method != NULL; op++) {
        rows++;
        CHECK(op->path[0] == '/' && op->summary != NULL && op->summary[0] && op->tag != NULL,
              "%s %s", op->method, op->path);
        json_t *o = json_object_get(json_object_get(paths, op->path), op->method);
        CHECK(o != NULL, "%s %s is in the document", op->method, op->path);
        for (const mg_openapi_op_t *p = mg_openapi_ops(); p < op; p++) {
            CHECK(strcmp(p->path, op->path) != 0 || strcmp(p->method, op->method) != 0,
                  "%s %s is listed once", op->method, op->path);
        }
        int nparams = 0;
        for (const char *c = op->path; *c; c++) {
            nparams += *c == '{';
        }
        size_t i;
        json_t *prm;
        int npath = 0;
        json_array_foreach(json_object_get(o, "parameters"), i, prm) {
            npath += strcmp(json_string_value(json_object_get(prm, "in")), "path") == 0;
        }
        CHECK_INT(npath, nparams);
        const char *auth = json_string_value(json_object_get(o, "x-moongate-auth"));
        CHECK_STR(auth, (op->flags & MG_OA_PUBLIC) ? "none" : (op->flags & MG_OA_MASTER) ? "master" : "key");
    }
    int ops = 0;
    const char *k;
    json_t *item;
    json_object_foreach(paths, k, item) {
        ops += (int) json_object_size(item);
    }
    CHECK_INT(ops, rows);
    json_t *chat = json_object_get(json_object_get(paths, "/v1/chat/completions"), "post");
    CHECK(json_object_get(json_object_get(json_object_get(json_object_get(chat, "responses"), "200"),
                                          "content"), "text/event-stream") != NULL,
          "a streaming route says so");
    json_decref(doc);
    return mg_test_done();
}
