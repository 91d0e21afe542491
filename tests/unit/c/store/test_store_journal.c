/*
 * test_store_journal.c -- core/store/mg_store_journal.c: the embedded registry store.
 *
 * Every mutation bumps the version by exactly one and survives a reopen; a torn tail
 * (a record cut short by a crash) is moved aside into registry.journal.torn.* and
 * reported, while damage followed by valid records refuses to load; two store objects on
 * one directory (two workers) see each other's writes.  The journal answers its callbacks
 * synchronously, which these tests rely on (no event loop needed).
 */
#include "mg_test.h"

#include "base/mg_err.h"
#include "store/mg_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

typedef struct {
    bool called;
    int rc;
    int64_t version;
    json_t *models;         /* owned copy */
    json_t *policies;       /* owned copy */
    json_t *row;            /* owned copy */
    mg_err_t err;
} t_res_t;

static void
t_res_reset(t_res_t *r)
{
    json_decref(r->models);
    json_decref(r->policies);
    json_decref(r->row);
    memset(r, 0, sizeof(*r));
}

static void
t_on_load(void *ud, int rc, int64_t version, json_t *models, json_t *policies, json_t *idents,
          const mg_err_t *err)
{
    t_res_t *r = ud;
    r->called = true;
    r->rc = rc;
    r->version = version;
    r->models = models ? json_deep_copy(models) : NULL;
    r->policies = policies ? json_deep_copy(policies) : NULL;
    if (err != NULL) {
        r->err = *err;
    }
}

static void
t_on_version(void *ud, int rc, int64_t version, const mg_err_t *err)
{
    t_res_t *r = ud;
    r->called = true;
    r->rc = rc;
    r->version = version;
    if (err != NULL) {
        r->err = *err;
    }
}

static void
t_on_mutate(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    t_res_t *r = ud;
    r->called = true;
    r->rc = rc;
    r->version = version;
    r->row = row ? json_deep_copy(row) : NULL;
    if (err != NULL) {
        r->err = *err;
    }
}

static mg_store_t *
t_open(const char *dir, const char *secret)
{
    mg_store_conf_t conf = {NULL, dir, NULL, secret, 0};
    mg_err_t err;
    mg_store_t *s = mg_store_journal_create(&conf, &err);
    if (s == NULL) {
        MG_T_FAIL_AT("journal create in %s: %s", dir, err.msg);
    }
    return s;
}

static t_res_t
t_load(mg_store_t *s)
{
    t_res_t r = {0};
    s->ops->load(s, t_on_load, &r);
    CHECK(r.called, "load answered synchronously");
    return r;
}

static t_res_t
t_mutate(mg_store_t *s, const char *json)
{
    t_res_t r = {0};
    json_error_t je;
    json_t *m = json_loads(json, 0, &je);
    if (m == NULL) {
        MG_T_FAIL_AT("bad test mutation %s: %s", json, je.text);
        return r;
    }
    s->ops->mutate(s, m, t_on_mutate, &r);
    json_decref(m);
    CHECK(r.called, "mutate answered synchronously");
    return r;
}

static int64_t
t_version(mg_store_t *s, int *rc)
{
    t_res_t r = {0};
    s->ops->get_version(s, t_on_version, &r);
    *rc = r.rc;
    return r.version;
}

static char *
t_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t) n + 1);
    if (fread(b, 1, (size_t) n, f) != (size_t) n) {
        n = 0;
    }
    b[n] = '\0';
    fclose(f);
    *len = (size_t) n;
    return b;
}

static int
t_count_torn(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += strncmp(e->d_name, "registry.journal.torn.", 22) == 0;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

#define T_NEW(id, name, key)                                                                       \
    "{\"op\":\"model_new\",\"model_id\":\"" id "\",\"model_name\":\"" name "\","                   \
    "\"litellm_params\":{\"model\":\"openai/" name "\",\"api_key\":\"" key "\"},"                  \
    "\"model_info\":{\"id\":\"" id "\"},\"user\":\"admin\"}"

static void
test_mutations(const char *dir)
{
    MG_T_CASE("mutations bump the version by one; reopen replays");
    mg_store_t *s = t_open(dir, "salt-for-tests");
    if (s == NULL) {
        return;
    }
    t_res_t r = t_load(s);
    CHECK(r.rc == MG_OK && r.version == 0 && json_array_size(r.models) == 0);
    t_res_reset(&r);

    const char *ops[] = {
        T_NEW("m1", "alpha", "sk-alpha-SECRET"),
        T_NEW("m2", "beta", "sk-beta-SECRET"),
        "{\"op\":\"model_update\",\"model_id\":\"m1\",\"model_name\":\"alpha2\","
        "\"litellm_params\":{\"rpm\":10},\"model_info\":null,"
        "\"clear\":[\"litellm_params.api_key\"]}",
        "{\"op\":\"model_delete\",\"model_id\":\"m2\"}",
        "{\"op\":\"policy_update\",\"name\":\"p1\",\"kind\":\"routing\",\"source\":\"return {}\","
        "\"hash\":\"h1\"}",
        "{\"op\":\"policy_update\",\"name\":\"p2\",\"kind\":\"fallback\",\"source\":\"return {}\","
        "\"hash\":\"h2\"}",
        "{\"op\":\"policy_delete\",\"name\":\"p2\"}",
        "{\"op\":\"bump\",\"reason\":\"config_reload\"}",
        T_NEW("m3", "gamma", "sk-gamma-SECRET"),
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        r = t_mutate(s, ops[i]);
        CHECK(r.rc == MG_OK && r.version == (int64_t) i + 1, "op %zu: rc %d version %lld (%s)",
              i, r.rc, (long long) r.version, r.err.msg);
        if (i == 0) {
            CHECK_STR(json_string_value(json_object_get(r.row, "model_id")), "m1");
            CHECK_STR(json_string_value(json_object_get(r.row, "created_by")), "admin");
            CHECK(json_is_string(json_object_get(r.row, "created_at")));
            /* the answer carries the plain credential, the file does not */
            CHECK_STR(json_string_value(json_object_get(json_object_get(r.row, "litellm_params"),
                                                        "api_key")),
                      "sk-alpha-SECRET");
        }
        t_res_reset(&r);
    }
    /* failures change nothing */
    const struct {
        const char *m;
        mg_err_class_t cls;
    } bad[] = {
        {T_NEW("m1", "dup", "k"), MG_ERR_BAD_REQUEST},
        {"{\"op\":\"model_update\",\"model_id\":\"nope\",\"model_name\":\"x\"}", MG_ERR_NO_ROUTE},
        {"{\"op\":\"model_delete\",\"model_id\":\"m2\"}", MG_ERR_NO_ROUTE},
        {"{\"op\":\"policy_delete\",\"name\":\"p2\"}", MG_ERR_NO_ROUTE},
        {"{\"op\":\"frobnicate\"}", MG_ERR_BAD_REQUEST},
        {"{\"model_id\":\"m9\"}", MG_ERR_BAD_REQUEST},
        {"{\"op\":\"model_new\",\"model_name\":\"no-id\"}", MG_ERR_BAD_REQUEST},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = t_mutate(s, bad[i].m);
        CHECK(r.rc == MG_ERROR && r.err.cls == bad[i].cls && r.version == 9,
              "bad op %zu: rc %d class %d version %lld", i, r.rc, (int) r.err.cls,
              (long long) r.version);
        t_res_reset(&r);
    }
    r = t_mutate(s, T_NEW("m1", "dup", "k"));
    CHECK_CONTAINS(r.err.msg, "Model with id=m1 already exists");
    t_res_reset(&r);

    /* state */
    r = t_load(s);
    CHECK(r.rc == MG_OK && r.version == 9);
    CHECK_INT(json_array_size(r.models), 2);
    json_t *m1 = json_array_get(r.models, 0);
    CHECK_STR(json_string_value(json_object_get(m1, "model_id")), "m1");
    CHECK_STR(json_string_value(json_object_get(m1, "model_name")), "alpha2");
    json_t *lp = json_object_get(m1, "litellm_params");
    CHECK_INT(json_integer_value(json_object_get(lp, "rpm")), 10);
    CHECK(json_object_get(lp, "api_key") == NULL); /* cleared */
    CHECK_STR(json_string_value(json_object_get(lp, "model")), "openai/alpha");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(r.models, 1),
                                                                "litellm_params"),
                                                "api_key")),
              "sk-gamma-SECRET");
    CHECK(json_object_get(r.policies, "p1") != NULL && json_object_get(r.policies, "p2") == NULL);
    t_res_reset(&r);
    json_t *st = s->ops->status(s);
    CHECK_STR(json_string_value(json_object_get(st, "type")), "journal");
    CHECK(json_is_true(json_object_get(st, "connected")));
    CHECK_INT(json_integer_value(json_object_get(st, "version")), 9);
    CHECK(json_is_null(json_object_get(st, "repaired")));
    json_decref(st);
    s->ops->destroy(s);

    /* credentials are encrypted on disk */
    char path[600];
    snprintf(path, sizeof(path), "%s/registry.journal", dir);
    size_t len = 0;
    char *data = t_read_file(path, &len);
    CHECK(data != NULL && strstr(data, "SECRET") == NULL && strstr(data, "mg1:") != NULL);
    free(data);

    /* reopen: the same state is replayed */
    s = t_open(dir, "salt-for-tests");
    r = t_load(s);
    CHECK(r.rc == MG_OK && r.version == 9 && json_array_size(r.models) == 2);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(r.models, 1),
                                                                "litellm_params"),
                                                "api_key")),
              "sk-gamma-SECRET");
    t_res_reset(&r);
    int rc;
    CHECK_INT(t_version(s, &rc), 9);
    s->ops->destroy(s);

    /* a different key cannot read the credentials: the rows load without them, marked with
     * the reason (the registry skips them loudly), never with ciphertext as a key */
    s = t_open(dir, "another-salt");
    r = t_load(s);
    CHECK(r.rc == MG_OK && r.version == 9 && json_array_size(r.models) == 2);
    size_t ri;
    json_t *row;
    json_array_foreach(r.models, ri, row) {
        CHECK(json_is_null(json_object_get(row, "litellm_params")));
        CHECK_CONTAINS(json_string_value(json_object_get(row, "__load_error")),
                       "wrong LITELLM_SALT_KEY");
    }
    t_res_reset(&r);
    s->ops->destroy(s);

    /* a mutation missing a field it needs is refused, never a silent OK */
    s = t_open(dir, "salt-for-tests");
    const char *incomplete[] = {
        "{\"op\":\"bump\"}",
        "{\"op\":\"policy_update\",\"name\":\"p3\",\"kind\":\"routing\",\"source\":\"x\"}",
        "{\"op\":\"model_new\",\"model_id\":\"m7\",\"litellm_params\":{},\"model_info\":{}}",
    };
    for (size_t i = 0; i < sizeof(incomplete) / sizeof(incomplete[0]); i++) {
        r = t_mutate(s, incomplete[i]);
        CHECK(r.rc == MG_ERROR && r.err.cls == MG_ERR_BAD_REQUEST && r.version == 9,
              "%s: rc %d version %lld", incomplete[i], r.rc, (long long) r.version);
        t_res_reset(&r);
    }
    s->ops->destroy(s);
}

static void
test_two_workers(const char *dir)
{
    MG_T_CASE("two store objects on one directory");
    mg_store_t *w1 = t_open(dir, NULL);
    mg_store_t *w2 = t_open(dir, NULL);
    if (w1 == NULL || w2 == NULL) {
        return;
    }
    t_res_t r = t_load(w1);
    t_res_reset(&r);
    r = t_load(w2);
    t_res_reset(&r);
    int rc;
    for (int i = 0; i < 20; i++) {
        mg_store_t *writer = i % 2 ? w2 : w1;
        mg_store_t *reader = i % 2 ? w1 : w2;
        char m[300];
        snprintf(m, sizeof(m),
                 "{\"op\":\"model_new\",\"model_id\":\"w%d\",\"model_name\":\"n%d\","
                 "\"litellm_params\":{\"model\":\"openai/x\"},\"model_info\":{}}",
                 i, i);
        r = t_mutate(writer, m);
        CHECK(r.rc == MG_OK && r.version == i + 1, "write %d: rc %d version %lld (%s)", i, r.rc,
              (long long) r.version, r.err.msg);
        t_res_reset(&r);
        /* the other worker's poll sees the new version, and its load the new row */
        CHECK_INT(t_version(reader, &rc), i + 1);
        r = t_load(reader);
        CHECK(r.rc == MG_OK && json_array_size(r.models) == (size_t) i + 1);
        t_res_reset(&r);
    }
    /* a duplicate id written by the other worker is seen before appending */
    r = t_mutate(w1, "{\"op\":\"model_new\",\"model_id\":\"w19\",\"model_name\":\"x\","
                     "\"litellm_params\":{},\"model_info\":{}}");
    CHECK(r.rc == MG_ERROR && r.err.cls == MG_ERR_BAD_REQUEST);
    t_res_reset(&r);

    /* two processes writing at once: every record gets its own version */
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            mg_store_t *s = t_open(dir, NULL);
            for (int i = 0; i < 25; i++) {
                t_res_t x = {0};
                json_t *m = json_pack("{s:s,s:s}", "op", "bump", "reason", "race");
                s->ops->mutate(s, m, t_on_mutate, &x);
                json_decref(m);
                if (x.rc != MG_OK) {
                    _exit(3);
                }
                t_res_reset(&x);
            }
            s->ops->destroy(s);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status = -1;
        waitpid(kids[k], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_INT(t_version(w1, &rc), 70);
    CHECK_INT(t_version(w2, &rc), 70);
    w1->ops->destroy(w1);
    w2->ops->destroy(w2);
}

static void
test_torn_tail(const char *dir)
{
    MG_T_CASE("torn tail is moved aside and reported");
    mg_store_t *s = t_open(dir, NULL);
    if (s == NULL) {
        return;
    }
    t_res_t r;
    for (int i = 0; i < 3; i++) {
        char m[200];
        snprintf(m, sizeof(m),
                 "{\"op\":\"model_new\",\"model_id\":\"t%d\",\"model_name\":\"t\","
                 "\"litellm_params\":{\"model\":\"openai/t\"},\"model_info\":{}}",
                 i);
        r = t_mutate(s, m);
        t_res_reset(&r);
    }
    s->ops->destroy(s);
    char path[600];
    snprintf(path, sizeof(path), "%s/registry.journal", dir);
    struct stat st;
    stat(path, &st);
    off_t full = st.st_size;
    /* cut the last record in the middle of its payload, as a crash mid-write would */
    CHECK(truncate(path, full - 20) == 0);

    s = t_open(dir, NULL);
    r = t_load(s);
    CHECK(r.rc == MG_OK, "load after a torn tail: %s", r.err.msg);
    CHECK_INT(r.version, 2);
    CHECK_INT(json_array_size(r.models), 2);
    t_res_reset(&r);
    json_t *status = s->ops->status(s);
    const char *rep = json_string_value(json_object_get(status, "repaired"));
    CHECK(rep != NULL && strstr(rep, ".torn.") != NULL && strstr(rep, "never acknowledged"),
          "repaired: %s", rep ? rep : "(null)");
    CHECK(json_is_true(json_object_get(status, "connected")));
    json_decref(status);
    CHECK_INT(t_count_torn(dir), 1);
    /* the torn bytes are kept aside, the journal ends at the last good record */
    stat(path, &st);
    CHECK(st.st_size < full - 20);
    /* writing goes on from version 2 */
    r = t_mutate(s, "{\"op\":\"bump\",\"reason\":\"after-repair\"}");
    CHECK(r.rc == MG_OK && r.version == 3);
    t_res_reset(&r);
    s->ops->destroy(s);
    s = t_open(dir, NULL);
    r = t_load(s);
    CHECK(r.rc == MG_OK && r.version == 3);
    t_res_reset(&r);

    /* a header cut short (no newline yet) is a torn tail too */
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(write(fd, "MGJ1 4 12", 9) == 9);
    close(fd);
    int rc;
    CHECK_INT(t_version(s, &rc), 3);
    CHECK_INT(rc, MG_OK);
    CHECK_INT(t_count_torn(dir), 2);
    s->ops->destroy(s);
}

static void
test_corruption(const char *dir)
{
    MG_T_CASE("damage followed by valid records refuses to load");
    mg_store_t *s = t_open(dir, NULL);
    if (s == NULL) {
        return;
    }
    t_res_t r;
    for (int i = 0; i < 3; i++) {
        char m[200];
        snprintf(m, sizeof(m), "{\"op\":\"bump\",\"reason\":\"r%d\"}", i);
        r = t_mutate(s, m);
        t_res_reset(&r);
    }
    s->ops->destroy(s);
    char path[600];
    snprintf(path, sizeof(path), "%s/registry.journal", dir);
    size_t len;
    char *data = t_read_file(path, &len);
    /* flip one payload byte of the second record */
    char *second = strstr(data + 1, "\nMGJ1 2 ");
    CHECK(second != NULL);
    if (second == NULL) {
        free(data);
        return;
    }
    char *payload = strchr(second + 1, '\n') + 1;
    payload[5] ^= 0x01;
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);

    s = t_open(dir, NULL);
    r = t_load(s);
    CHECK(r.rc == MG_ERROR);
    CHECK_CONTAINS(r.err.msg, "corrupt");
    CHECK_CONTAINS(r.err.msg, "valid records follow");
    t_res_reset(&r);
    int rc;
    t_version(s, &rc);
    CHECK_INT(rc, MG_ERROR);
    r = t_mutate(s, "{\"op\":\"bump\",\"reason\":\"x\"}");
    CHECK(r.rc == MG_ERROR); /* nothing is appended to a corrupt journal */
    t_res_reset(&r);
    json_t *status = s->ops->status(s);
    CHECK(json_is_false(json_object_get(status, "connected")));
    CHECK_CONTAINS(json_string_value(json_object_get(status, "last_error")), "refusing");
    json_decref(status);
    s->ops->destroy(s);
    CHECK_INT(t_count_torn(dir), 0); /* nothing was moved aside */
    /* the file is left as it was */
    data = t_read_file(path, &len);
    CHECK(data != NULL && strstr(data, "MGJ1 3 ") != NULL);
    free(data);
}

int
main(void)
{
    const char *base = mg_t_tmpdir();
    char d1[600], d2[600], d3[600], d4[600];
    snprintf(d1, sizeof(d1), "%s/mutations/nested/state", base); /* created on demand */
    snprintf(d2, sizeof(d2), "%s/workers", base);
    snprintf(d3, sizeof(d3), "%s/torn", base);
    snprintf(d4, sizeof(d4), "%s/corrupt", base);
    test_mutations(d1);
    test_two_workers(d2);
    test_torn_tail(d3);
    test_corruption(d4);

    mg_store_conf_t conf = {NULL, "", NULL, NULL, 0};
    mg_err_t err;
    CHECK(mg_store_journal_create(&conf, &err) == NULL);
    CHECK_CONTAINS(err.msg, "no state directory");
    return mg_test_done();
}
