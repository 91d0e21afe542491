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
 *  3. The gateway's own parse and re-splice: core/gateway/mg_proxy.c is included to reach
 *     its static mg_proxy_parse() and mg_proxy_build_request().  The gateway symbols it
 *     needs and that would drag in the event loop are weak stubs below (if mg_proxy.c grows
 *     a new dependency, the libFuzzer build fails to link and the stub list needs it).
 *     Invariants: a body the gateway accepts is a valid JSON object; a refusal is one 400
 *     whose error body is valid JSON; the forwarded body is valid JSON equal to the client's
 *     object minus nulls and LiteLLM-only keys, with model replaced and deployment defaults
 *     added, and content-length is its exact size.  Bodies with duplicate top-level keys are
 *     not compared (see the README: the gateway reads the first, upstreams the last).
 */
#include "fuzz_common.h"

#include "gateway/mg_proxy.c"

#include <jansson.h>

#define FUZZ_JSON_MAX_INPUT (256 * 1024)

/* ---- weak stubs for what mg_proxy.c calls outside the code under test ---- */

static int fuzz_errors_sent;
static int fuzz_last_status;

__attribute__((weak)) void
mg_gw_error_raw(mg_request_t *r, int status, const char *message, const char *type_json,
                const char *param_json, const char *extra_headers)
{
    (void) r;
    (void) extra_headers;
    /* the body exactly as mg_gw.c builds it: it must be valid JSON */
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append_str(&b, "{\"error\":{\"message\":");
    mg_buf_json_str(&b, message, strlen(message));
    mg_buf_printf(&b, ",\"type\":%s,\"param\":%s,\"code\":\"%d\"}}", type_json, param_json,
                  status);
    json_error_t je;
    json_t *j = json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, &je);
    FUZZ_ASSERT(j != NULL, "error body is not JSON (%s): %.*s", je.text, (int) mg_buf_len(&b),
                mg_buf_head(&b));
    json_decref(j);
    mg_buf_free(&b);
    fuzz_errors_sent++;
    fuzz_last_status = status;
}

__attribute__((weak)) void
mg_gw_common_headers(mg_request_t *r, mg_buf_t *h)
{
    (void) r;
    (void) h;
}

__attribute__((weak)) char *
mg_gw_pyrepr_dict_error(const char *msg)
{
    return mg_xstrdup(msg);
}

__attribute__((weak)) int
mg_provider_request_head(const mg_provider_t *p, const mg_deployment_t *d, mg_route_t route,
                         const char *upstream_model, mg_buf_t *out, mg_err_t *err)
{
    (void) p;
    (void) d;
    (void) route;
    (void) upstream_model;
    (void) err;
    mg_buf_append_str(out, "POST /v1/chat/completions HTTP/1.1\r\nhost: upstream.invalid\r\n");
    return MG_OK;
}

#define FUZZ_UNREACHED(what)                                                                       \
    do {                                                                                           \
        fprintf(stderr, "fuzz stub %s called: the target reached code it does not set up\n",      \
                what);                                                                             \
        abort();                                                                                   \
    } while (0)

__attribute__((weak)) const char *
mg_provider_base(const mg_provider_t *p, const mg_deployment_t *d)
{
    (void) p;
    (void) d;
    FUZZ_UNREACHED("mg_provider_base");
}

__attribute__((weak)) const char *
mg_route_path(mg_route_t r)
{
    return r == MG_ROUTE_CHAT ? "/chat/completions"
           : r == MG_ROUTE_COMPLETIONS ? "/completions" : "/embeddings";
}

__attribute__((weak)) void
mg_route_order(mg_request_t *r, mg_route_result_t *rr)
{
    (void) r;
    (void) rr;
    FUZZ_UNREACHED("mg_route_order");
}

__attribute__((weak)) char *
mg_route_no_deployments_message(mg_request_t *r, const mg_route_result_t *rr)
{
    (void) r;
    (void) rr;
    FUZZ_UNREACHED("mg_route_no_deployments_message");
}

__attribute__((weak)) void
mg_route_on_failure(mg_request_t *r, mg_deployment_t *d, const mg_uperr_t *e)
{
    (void) r;
    (void) d;
    (void) e;
    FUZZ_UNREACHED("mg_route_on_failure");
}

__attribute__((weak)) bool
mg_route_should_retry(mg_request_t *r, const mg_uperr_t *e, int64_t *wait_ms)
{
    (void) r;
    (void) e;
    (void) wait_ms;
    FUZZ_UNREACHED("mg_route_should_retry");
}

__attribute__((weak)) void
mg_route_fallbacks(mg_request_t *r, const mg_uperr_t *e, char **msg, json_t **groups, json_t **repr,
                   uint8_t **allowed, bool *raised)
{
    (void) raised;
    (void) r;
    (void) e;
    (void) msg;
    (void) groups;
    (void) repr;
    (void) allowed;
    FUZZ_UNREACHED("mg_route_fallbacks");
}

__attribute__((weak)) mg_group_t *
mg_route_wildcard(mg_request_t *r, const char *name, char *matched, size_t mlen)
{
    (void) r;
    (void) name;
    (void) matched;
    (void) mlen;
    FUZZ_UNREACHED("mg_route_wildcard");
}

__attribute__((weak)) void
mg_errmap_http(const mg_provider_t *p, const char *provider_name, int status, const char *body,
               size_t body_len, mg_uperr_t *out)
{
    (void) p;
    (void) provider_name;
    (void) status;
    (void) body;
    (void) body_len;
    (void) out;
    FUZZ_UNREACHED("mg_errmap_http");
}

__attribute__((weak)) void
mg_errmap_transport(const mg_provider_t *p, const char *provider_name, const mg_err_t *err,
                    const mg_deployment_t *d, mg_uperr_t *out)
{
    (void) p;
    (void) provider_name;
    (void) err;
    (void) d;
    (void) out;
    FUZZ_UNREACHED("mg_errmap_transport");
}

__attribute__((weak)) void
mg_uperr_free(mg_uperr_t *e)
{
    (void) e;
    FUZZ_UNREACHED("mg_uperr_free");
}

__attribute__((weak)) mg_client_t *
mg_client_start(mg_upstream_t *u, const struct iovec *iov, int iovcnt,
                const mg_client_timeouts_t *to, const mg_client_cbs_t *cbs, void *ud,
                mg_err_t *err)
{
    (void) u;
    (void) iov;
    (void) iovcnt;
    (void) to;
    (void) cbs;
    (void) ud;
    (void) err;
    FUZZ_UNREACHED("mg_client_start");
}

__attribute__((weak)) void
mg_client_pause(mg_client_t *c)
{
    (void) c;
    FUZZ_UNREACHED("mg_client_pause");
}

__attribute__((weak)) void
mg_client_resume(mg_client_t *c)
{
    (void) c;
    FUZZ_UNREACHED("mg_client_resume");
}

__attribute__((weak)) void
mg_client_free(mg_client_t *c)
{
    (void) c;
    FUZZ_UNREACHED("mg_client_free");
}

__attribute__((weak)) void
mg_http_respond(mg_http_req_t *req, int status, const char *headers, size_t headers_len,
                const char *body, size_t body_len)
{
    (void) req;
    (void) status;
    (void) headers;
    (void) headers_len;
    (void) body;
    (void) body_len;
    FUZZ_UNREACHED("mg_http_respond");
}

__attribute__((weak)) void
mg_http_stream_begin(mg_http_req_t *req, int status, const char *headers, size_t headers_len)
{
    (void) req;
    (void) status;
    (void) headers;
    (void) headers_len;
    FUZZ_UNREACHED("mg_http_stream_begin");
}

__attribute__((weak)) bool
mg_http_stream_write(mg_http_req_t *req, const char *data, size_t len)
{
    (void) req;
    (void) data;
    (void) len;
    FUZZ_UNREACHED("mg_http_stream_write");
}

__attribute__((weak)) void
mg_http_stream_end(mg_http_req_t *req)
{
    (void) req;
    FUZZ_UNREACHED("mg_http_stream_end");
}

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

/* ---- 3. mg_proxy_parse and mg_proxy_build_request ---- */

static mg_gw_t fuzz_gw;
static const mg_provider_t fuzz_provider = {
    "openai", "OpenAIException", "https://upstream.invalid/v1", {NULL}, {NULL}, false, false,
    {true, true, true},
};

/* Is the (decoded) key one LiteLLM does not forward?  escaped: written with \u escapes. */
static bool
fuzz_is_dropped_key(const char *k, bool escaped)
{
    for (const char *const *d = mg_proxy_litellm_only; *d; d++) {
        if (strcmp(*d, k) == 0) {
            return true;
        }
    }
    (void) escaped;
    return strncmp(k, "mock_testing_", 13) == 0 && strlen(k) > 13;
}

/* Decoded keys of the top-level members that were written with escapes (object of true). */
static json_t *
fuzz_escaped_keys(const char *buf, size_t size)
{
    json_t *set = json_object();
    mg_json_iter_t it;
    mg_json_member_t m;
    if (mg_json_obj_iter(&it, buf, size) != MG_OK) {
        return set;
    }
    while (mg_json_obj_next(&it, &m) == 1) {
        if (!m.key_escaped) {
            continue;
        }
        char *key = malloc(m.key_len + 3);
        long kl = mg_json_str_decode(m.key - 1, m.key_len + 2, key);
        if (kl >= 0) {
            json_object_setn_new(set, key, (size_t) kl, json_true());
        }
        free(key);
    }
    return set;
}

static void
fuzz_proxy(const char *data, size_t size, int v_rc, mg_json_type_t v_type, json_t *j)
{
    static const mg_route_t routes[] = {MG_ROUTE_CHAT, MG_ROUTE_COMPLETIONS, MG_ROUTE_EMBEDDINGS};
    for (size_t ri = 0; ri < 3; ri++) {
        static mg_http_req_t hr;
        static mg_request_t r;
        memset(&hr, 0, sizeof(hr));
        memset(&r, 0, sizeof(r));
        mg_arena_init(&hr.arena, 4096);
        hr.body = fuzz_dupz(data, size); /* the server's body: malloc'd, NUL-terminated */
        hr.body_len = size;
        r.hr = &hr;
        r.gw = &fuzz_gw;
        r.arena = &hr.arena;
        r.route = routes[ri];
        r.route_path = mg_route_path(routes[ri]);
        r.req_num_retries = -1;
        fuzz_errors_sent = 0;
        bool ok = mg_proxy_parse(&r, NULL, 0);
        if (!ok) {
            FUZZ_ASSERT(fuzz_errors_sent == 1 && fuzz_last_status == 400,
                        "refusal sent %d errors, status %d", fuzz_errors_sent, fuzz_last_status);
        } else {
            FUZZ_ASSERT(fuzz_errors_sent == 0, "accepted and answered an error");
            FUZZ_ASSERT(size == 0 || (v_rc == MG_OK && v_type == MG_JSON_OBJECT),
                        "the gateway accepts a body that is not a JSON object");
            FUZZ_ASSERT(r.model != NULL && r.model[0] != '\0', "accepted without a model");
            FUZZ_ASSERT(r.nmembers <= MG_GW_MAX_MEMBERS && !r.members_overflow, "members");
            if (j != NULL) {
                /* with duplicate keys the gateway reads the last, as upstreams (and LiteLLM's
                 * Python json) do */
                FUZZ_ASSERT(r.stream == json_is_true(json_object_get(j, "stream")),
                            "gateway stream=%d, the body says %d", r.stream,
                            json_is_true(json_object_get(j, "stream")));
                const char *jm = json_string_value(json_object_get(j, "model"));
                FUZZ_ASSERT(jm == NULL || strcmp(jm, r.model) == 0,
                            "gateway model \"%s\", the body says \"%s\"", r.model, jm);
            }
        }
        if (ok && ri == 0) {
            /* forward it: a deployment with defaults and a drop list */
            mg_deployment_t d;
            memset(&d, 0, sizeof(d));
            d.id = "fuzz-deployment";
            d.defaults = json_pack("{s:f,s:i,s:s}", "temperature", 0.25, "seed", 7, "user",
                                   "from-defaults");
            d.additional_drop_params = json_pack("[s,s]", "logit_bias", "user");
            r.dep = &d;
            r.upstream_model = "up/model \"quoted\"";
            mg_err_t err;
            FUZZ_ASSERT(mg_proxy_build_request(&r, &fuzz_provider, &err) == MG_OK,
                        "build_request failed: %s", err.msg);
            mg_buf_t out = MG_BUF_INIT;
            for (int i = 1; i < r.up_niov; i++) {
                mg_buf_append(&out, r.up_iov[i].iov_base, r.up_iov[i].iov_len);
            }
            /* content-length is the body's size */
            char want_cl[64];
            snprintf(want_cl, sizeof(want_cl), "content-length: %zu\r\n\r\n", mg_buf_len(&out));
            const char *head = mg_buf_cstr(&r.up_head);
            size_t hlen = strlen(head), wl = strlen(want_cl);
            FUZZ_ASSERT(r.up_iov[0].iov_len == mg_buf_len(&r.up_head) && hlen >= wl &&
                            strcmp(head + hlen - wl, want_cl) == 0,
                        "content-length does not match the body");
            char *body = fuzz_dup(mg_buf_head(&out), mg_buf_len(&out));
            mg_json_type_t bt;
            FUZZ_ASSERT(mg_json_validate(body, mg_buf_len(&out), &bt, NULL, 0) == MG_OK &&
                            bt == MG_JSON_OBJECT,
                        "forwarded body is not a JSON object: %.*s", (int) mg_buf_len(&out),
                        body);
            json_error_t je;
            json_t *got = fuzz_jansson(body, mg_buf_len(&out), &je);
            if (j != NULL && !fuzz_has_dup_keys(j, data, size)) {
                FUZZ_ASSERT(got != NULL, "forwarded body refused by jansson: %s", je.text);
                json_t *want = json_deep_copy(j);
                json_t *escaped = fuzz_escaped_keys(data, size);
                const char *k;
                json_t *v;
                void *tmp;
                json_object_foreach_safe(want, tmp, k, v) {
                    bool esc = json_object_get(escaped, k) != NULL;
                    if (json_is_null(v) || strcmp(k, "logit_bias") == 0 ||
                        strcmp(k, "user") == 0 ||
                        (fuzz_is_dropped_key(k, esc) && strcmp(k, "model") != 0)) {
                        json_object_del(want, k);
                    }
                }
                json_decref(escaped);
                json_object_set_new(want, "model", json_string(r.upstream_model));
                json_object_foreach(d.defaults, k, v) {
                    if (json_object_get(j, k) == NULL) {
                        json_object_set(want, k, v);
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
            free(body);
            mg_buf_free(&out);
            json_decref(d.defaults);
            json_decref(d.additional_drop_params);
        }
        mg_buf_free(&r.up_head);
        json_decref(r.req_fallbacks);
        json_decref(r.req_mock);
        mg_arena_destroy(&hr.arena);
        free(hr.body);
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
