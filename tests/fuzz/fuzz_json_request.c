/*
 * fuzz_json_request.c -- the JSON handling a request body gets before it is forwarded.
 *
 * Three layers, all on the same arbitrary bytes:
 *  1. The scanner (core/base/mg_json.c) against jansson.  mg_json_validate() and
 *     json_loadb() must agree on accept/reject, except where jansson is stricter or more
 *     limited than Python's json (what LiteLLM uses) and we follow Python:
 *       - invalid UTF-8 (jansson rejects; the scanner passes bytes through) and NUL bytes
 *         (jansson ignores one right after a number): not compared;
 *       - lone surrogate escapes like "\ud800" (jansson: "invalid Unicode");
 *       - integers beyond int64 and reals beyond DBL_MAX (jansson: "too big" / "overflow");
 *       - "\u0000" inside an object key (jansson: "NUL byte in object key not supported");
 *     and where the scanner is stricter: nesting deeper than 200 levels ("Nesting deeper than";
 *     jansson allows 2048).  Error messages must locate the error consistently: the
 *     "line L column C (char N)" triple describes the same byte.
 *  2. Iterating a valid object: every member span lies inside the input, each value span
 *     validates alone with the same type, "{" + member spans joined by "," + "}" parses (in
 *     jansson) to the same object, keys decode to jansson's keys, string values decode to
 *     jansson's strings, numbers read as jansson's numbers, obj_find() finds the first member
 *     of a key.  An object the iterator walks without error and without trailing bytes is
 *     valid JSON (the gateway validates through the iterator alone).
 *  3. The client protocols' parse and the same-wire splice (core/api/mg_api.c:
 *     mg_api_parse() and mg_api_splice(), what the gateway runs before it forwards a body).
 *     Invariants: a body a protocol accepts is a valid JSON object; a refusal is a 400
 *     whose error body (in that protocol's envelope) is valid JSON; the forwarded body is
 *     valid JSON equal to the client's object minus nulls and LiteLLM-only keys, with model
 *     replaced and deployment defaults added.  Bodies with duplicate top-level keys are
 *     not compared (see the README: the gateway reads the first, upstreams the last).
 */
#include "fuzz_common.h"

#include "api/mg_api.h"

#include <jansson.h>

#define FUZZ_JSON_MAX_INPUT (256 * 1024)

/* ---- helpers ---- */

static bool
fuzz_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}

static mg_json_type_t
fuzz_jansson_type(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return MG_JSON_OBJECT;
    case JSON_ARRAY: return MG_JSON_ARRAY;
    case JSON_STRING: return MG_JSON_STRING;
    case JSON_INTEGER:
    case JSON_REAL: return MG_JSON_NUMBER;
    case JSON_TRUE: return MG_JSON_TRUE;
    case JSON_FALSE: return MG_JSON_FALSE;
    case JSON_NULL: return MG_JSON_NULL;
    }
    return MG_JSON_INVALID;
}

static json_t *
fuzz_jansson(const char *p, size_t n, json_error_t *je)
{
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, je);
}

/* "what: line L column C (char N)": L and C must be N's position in buf. */
static void
fuzz_check_errmsg(const char *msg, const char *buf, size_t size)
{
    const char *at = strstr(msg, ": line ");
    FUZZ_ASSERT(at != NULL, "error message without a position: %s", msg);
    long line = 0, col = 0, ch = 0;
    FUZZ_ASSERT(sscanf(at, ": line %ld column %ld (char %ld)", &line, &col, &ch) == 3,
                "unparseable position: %s", msg);
    FUZZ_ASSERT(ch >= 0 && (size_t) ch <= size, "char %ld outside %zu bytes", ch, size);
    long l = 1, c = 1;
    for (long i = 0; i < ch; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    FUZZ_ASSERT(l == line && c == col, "position %ld:%ld is not char %ld (%ld:%ld): %s", line,
                col, ch, l, c, msg);
}

/* ---- 1. scanner vs jansson ---- */

static void
fuzz_validate(const char *buf, size_t size, bool utf8, int *v_rc, mg_json_type_t *v_type,
              json_t **jv)
{
    char msg[160] = "";
    mg_json_type_t t = MG_JSON_INVALID;
    int rc = mg_json_validate(buf, size, &t, msg, sizeof(msg));
    json_error_t je;
    json_t *j = fuzz_jansson(buf, size, &je);
    if (rc != MG_OK) {
        fuzz_check_errmsg(msg, buf, size);
    }
    if (utf8) {
        if (rc == MG_OK && j == NULL) {
            bool allowed = strstr(je.text, "Unicode") != NULL || strstr(je.text, "too big") ||
                           strstr(je.text, "overflow") || strstr(je.text, "NUL byte in object key");
            FUZZ_ASSERT(allowed, "scanner accepts, jansson rejects: %s (at %d)", je.text,
                        je.position);
        }
        if (rc != MG_OK && j != NULL) {
            FUZZ_ASSERT(strstr(msg, "Nesting deeper than 200 levels") != NULL,
                        "scanner rejects (%s), jansson accepts", msg);
        }
    }
    if (rc == MG_OK && j != NULL) {
        FUZZ_ASSERT(t == fuzz_jansson_type(j), "type %d vs jansson %d", (int) t,
                    (int) fuzz_jansson_type(j));
    }
    *v_rc = rc;
    *v_type = t;
    *jv = j;
}

/* ---- 2. iterating an object ---- */

static bool
fuzz_has_dup_keys(const json_t *obj, const char *buf, size_t size)
{
    /* jansson keeps the last of duplicate keys: fewer keys than members means duplicates */
    mg_json_iter_t it;
    mg_json_member_t m;
    size_t n = 0;
    if (mg_json_obj_iter(&it, buf, size) != MG_OK) {
        return false;
    }
    while (mg_json_obj_next(&it, &m) == 1) {
        n++;
    }
    return obj != NULL && n != json_object_size(obj);
}

static void
fuzz_iterate(const char *buf, size_t size, int v_rc, mg_json_type_t v_type, json_t *j)
{
    mg_json_iter_t it;
    if (mg_json_obj_iter(&it, buf, size) != MG_OK) {
        FUZZ_ASSERT(v_rc != MG_OK || v_type != MG_JSON_OBJECT, "iter refuses a valid object");
        return;
    }
    bool dups = fuzz_has_dup_keys(j, buf, size);
    mg_buf_t splice = MG_BUF_INIT;
    mg_buf_append(&splice, "{", 1);
    mg_json_member_t m;
    int rc;
    size_t count = 0;
    while ((rc = mg_json_obj_next(&it, &m)) == 1) {
        FUZZ_ASSERT(m.start >= buf && m.end <= buf + size && m.start < m.end, "member outside");
        FUZZ_ASSERT(m.start[0] == '"' && m.key == m.start + 1 && m.key + m.key_len < m.end &&
                        m.key[m.key_len] == '"',
                    "key span");
        FUZZ_ASSERT(m.val > m.key + m.key_len && m.val + m.val_len == m.end, "value span");
        /* the value alone is valid, with the same type */
        mg_json_type_t vt;
        char *vcopy = fuzz_dup(m.val, m.val_len);
        FUZZ_ASSERT(mg_json_validate(vcopy, m.val_len, &vt, NULL, 0) == MG_OK && vt == m.type,
                    "member value does not validate alone");
        /* the key decodes */
        char *key = malloc(m.key_len + 3);
        long kl = mg_json_str_decode(m.key - 1, m.key_len + 2, key);
        FUZZ_ASSERT(kl >= 0 && (size_t) kl <= m.key_len, "key does not decode");
        FUZZ_ASSERT(m.key_escaped == (memchr(m.key, '\\', m.key_len) != NULL), "key_escaped");
        if (j != NULL) {
            json_t *jv = json_object_getn(j, key, (size_t) kl);
            FUZZ_ASSERT(jv != NULL, "key %.*s not in jansson's object", (int) kl, key);
            if (!dups) {
                if (m.type == MG_JSON_STRING) {
                    char *sv = malloc(m.val_len + 1);
                    long sl = mg_json_str_decode(vcopy, m.val_len, sv);
                    FUZZ_ASSERT(sl >= 0 && json_is_string(jv) &&
                                    (size_t) sl == json_string_length(jv) &&
                                    memcmp(sv, json_string_value(jv), (size_t) sl) == 0,
                                "string value decodes differently from jansson");
                    free(sv);
                }
                double d;
                if (m.type == MG_JSON_NUMBER && mg_json_num(vcopy, m.val_len, &d) == MG_OK) {
                    FUZZ_ASSERT(json_is_number(jv) && d == json_number_value(jv),
                                "number %.*s reads %.17g, jansson %.17g", (int) m.val_len, vcopy,
                                d, json_number_value(jv));
                }
            }
        }
        /* obj_find returns the first member with this key */
        if (kl < 200 && memchr(key, '\0', (size_t) kl) == NULL) {
            mg_json_member_t f;
            FUZZ_ASSERT(mg_json_obj_find(buf, size, key, &f) == 1, "obj_find misses a key");
            FUZZ_ASSERT(f.start <= m.start, "obj_find did not return the first member");
            FUZZ_ASSERT(mg_json_key_is(&m, key), "key_is disagrees with the decoded key");
        }
        free(key);
        free(vcopy);
        if (count++ > 0) {
            mg_buf_append(&splice, ",", 1);
        }
        mg_buf_append(&splice, m.start, (size_t) (m.end - m.start));
    }
    mg_buf_append(&splice, "}", 1);
    if (rc == 0) {
        /* walked without error: with nothing but whitespace after, it is valid JSON */
        const char *t = it.p;
        while (t < buf + size && (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')) {
            t++;
        }
        if (t == buf + size) {
            FUZZ_ASSERT(v_rc == MG_OK && v_type == MG_JSON_OBJECT,
                        "iterator walks an object that validate() refuses");
        }
        /* the re-spliced members are the same object */
        char *sc = fuzz_dup(mg_buf_head(&splice), mg_buf_len(&splice));
        FUZZ_ASSERT(mg_json_validate(sc, mg_buf_len(&splice), NULL, NULL, 0) == MG_OK,
                    "spliced members do not validate");
        if (j != NULL && v_rc == MG_OK) {
            json_error_t je;
            json_t *js = fuzz_jansson(sc, mg_buf_len(&splice), &je);
            FUZZ_ASSERT(js != NULL && json_equal(js, j), "spliced object differs (%s)",
                        js ? "not equal" : je.text);
            json_decref(js);
        }
        free(sc);
    } else {
        FUZZ_ASSERT(v_rc != MG_OK, "iterator fails on JSON validate() accepts: %s", it.errmsg);
        fuzz_check_errmsg(it.errmsg, buf, size);
    }
    mg_buf_free(&splice);
}

/* ---- 3. mg_api_parse and mg_api_splice ---- */

/* Is the (decoded) key one LiteLLM does not forward? */
static bool
fuzz_is_dropped_key(const char *k)
{
    return mg_api_is_litellm_param_str(k);
}

static void
fuzz_proxy(const char *data, size_t size, int v_rc, mg_json_type_t v_type, json_t *j)
{
    static const mg_api_id_t apis[] = {MG_API_OPENAI_CHAT, MG_API_OPENAI_COMPLETIONS,
                                       MG_API_OPENAI_EMBEDDINGS};
    for (size_t ri = 0; ri < sizeof(apis) / sizeof(apis[0]); ri++) {
        const mg_api_t *api = mg_api_get(apis[ri]);
        mg_arena_t arena;
        mg_arena_init(&arena, 4096);
        char *body = fuzz_dupz(data, size); /* the server's body: malloc'd, NUL-terminated */
        static mg_api_req_t q;
        mg_api_err_t err;
        bool ok = mg_api_parse(api, &arena, body, size, NULL, &q, &err) == MG_OK;
        if (!ok) {
            FUZZ_ASSERT(err.status == 400, "refusal with status %d", err.status);
            mg_buf_t eb = MG_BUF_INIT;
            mg_api_error_body(api, err.status, err.msg, err.type_json, err.param_json, &eb);
            json_error_t je;
            json_t *ej = json_loadb(mg_buf_head(&eb), mg_buf_len(&eb), 0, &je);
            FUZZ_ASSERT(ej != NULL, "error body is not JSON (%s): %.*s", je.text,
                        (int) mg_buf_len(&eb), mg_buf_head(&eb));
            json_decref(ej);
            mg_buf_free(&eb);
        } else {
            FUZZ_ASSERT(size == 0 || (v_rc == MG_OK && v_type == MG_JSON_OBJECT),
                        "the gateway accepts a body that is not a JSON object");
            FUZZ_ASSERT(q.model != NULL && q.model[0] != '\0', "accepted without a model");
            FUZZ_ASSERT(q.nmembers <= MG_API_MAX_MEMBERS, "members");
            if (j != NULL) {
                /* with duplicate keys the gateway reads the last, as upstreams (and LiteLLM's
                 * Python json) do */
                FUZZ_ASSERT(q.stream == json_is_true(json_object_get(j, "stream")),
                            "gateway stream=%d, the body says %d", q.stream,
                            json_is_true(json_object_get(j, "stream")));
                const char *jm = json_string_value(json_object_get(j, "model"));
                FUZZ_ASSERT(jm == NULL || strcmp(jm, q.model) == 0,
                            "gateway model \"%s\", the body says \"%s\"", q.model, jm);
            }
        }
        if (ok && ri == 0) {
            /* forward it: a deployment with defaults and a drop list */
            json_t *defaults = json_pack("{s:f,s:i,s:s}", "temperature", 0.25, "seed", 7, "user",
                                         "from-defaults");
            json_t *drop = json_pack("[s,s]", "logit_bias", "user");
            const char *upstream_model = "up/model \"quoted\"";
            mg_body_opts_t o = {.model = upstream_model, .defaults = defaults,
                                .additional_drop = drop};
            mg_iovs_t v = {0};
            mg_api_splice(&q, &o, &arena, &v);
            mg_buf_t out = MG_BUF_INIT;
            for (int i = 0; i < v.niov; i++) {
                mg_buf_append(&out, v.iov[i].iov_base, v.iov[i].iov_len);
            }
            FUZZ_ASSERT(v.len == mg_buf_len(&out), "splice length %zu, pieces %zu", v.len,
                        mg_buf_len(&out));
            char *fwd = fuzz_dup(mg_buf_head(&out), mg_buf_len(&out));
            mg_json_type_t bt;
            FUZZ_ASSERT(mg_json_validate(fwd, mg_buf_len(&out), &bt, NULL, 0) == MG_OK &&
                            bt == MG_JSON_OBJECT,
                        "forwarded body is not a JSON object: %.*s", (int) mg_buf_len(&out),
                        fwd);
            json_error_t je;
            json_t *got = fuzz_jansson(fwd, mg_buf_len(&out), &je);
            if (j != NULL && !fuzz_has_dup_keys(j, data, size)) {
                FUZZ_ASSERT(got != NULL, "forwarded body refused by jansson: %s", je.text);
                json_t *want = json_deep_copy(j);
                const char *k;
                json_t *val;
                void *tmp;
                json_object_foreach_safe(want, tmp, k, val) {
                    if (json_is_null(val) || strcmp(k, "logit_bias") == 0 ||
                        strcmp(k, "user") == 0 ||
                        (fuzz_is_dropped_key(k) && strcmp(k, "model") != 0)) {
                        json_object_del(want, k);
                    }
                }
                json_object_set_new(want, "model", json_string(upstream_model));
                json_object_foreach(defaults, k, val) {
                    if (json_object_get(j, k) == NULL) {
                        json_object_set(want, k, val);
                    }
                }
                /* the drop list applies to the client's keys, not to the defaults */
                char *gs = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
                char *ws = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
                FUZZ_ASSERT(json_equal(got, want), "forwarded body differs:\n got  %s\n want %s",
                            gs, ws);
                free(gs);
                free(ws);
                json_decref(want);
            }
            json_decref(got);
            free(fwd);
            mg_buf_free(&out);
            json_decref(defaults);
            json_decref(drop);
        }
        mg_api_req_free(&q);
        mg_arena_destroy(&arena);
        free(body);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_JSON_MAX_INPUT) {
        return 0;
    }
    const char *buf = fuzz_dup(data, size);
    /* compared with jansson: valid UTF-8 without NUL bytes (jansson skips a NUL that follows
     * a number: {"a":1<NUL>} parses) */
    bool utf8 = fuzz_utf8_valid(data, size) && memchr(data, '\0', size) == NULL;
    int v_rc;
    mg_json_type_t v_type;
    json_t *j = NULL;
    fuzz_validate(buf, size, utf8, &v_rc, &v_type, &j);
    if (!utf8 || (j != NULL && !json_is_object(j))) {
        /* part 2 and 3 compare with jansson's object */
        json_decref(j);
        j = NULL;
    }
    fuzz_iterate(buf, size, v_rc, v_type, j);
    fuzz_proxy(buf, size, v_rc, v_type, j);
    json_decref(j);
    free((void *) buf);
    return 0;
}
