/*
 * mg_sigv4.c -- AWS Signature Version 4 signing (see mg_sigv4.h for the rules chosen).
 *
 * Owns nothing; temporaries and results go to the caller's arena.  Reads top-down: the
 * canonical pieces (URI, query, headers), then the request, the string to sign and the
 * HMAC chain.
 */
#include "mg_sigv4.h"

#include "../../base/mg_arena.h"
#include "../../base/mg_buf.h"
#include "../../base/mg_err.h"
#include "../../base/mg_log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MG_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

static const char mg_sigv4_hexdig[] = "0123456789abcdef";
static const char mg_sigv4_hexup[] = "0123456789ABCDEF";

/* ---- encoding helpers ---- */

static void
mg_sigv4_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = mg_sigv4_hexdig[p[i] >> 4];
        out[2 * i + 1] = mg_sigv4_hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool
mg_sigv4_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* AWS's UriEncode(): unreserved bytes as they are, '/' too when keep_slash, else %XX. */
static void
mg_sigv4_uri_encode(mg_buf_t *b, const char *p, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) p[i];
        if (mg_sigv4_unreserved(c) || (keep_slash && c == '/')) {
            mg_buf_append(b, &p[i], 1);
        } else {
            char e[3] = {'%', mg_sigv4_hexup[c >> 4], mg_sigv4_hexup[c & 15]};
            mg_buf_append(b, e, 3);
        }
    }
}

static int
mg_sigv4_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes [p, p+n) into the arena; a stray '%' stays literal, '+' is not a space. */
static char *
mg_sigv4_uri_decode(mg_arena_t *a, const char *p, size_t n, size_t *outlen)
{
    char *out = mg_arena_alloc(a, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = mg_sigv4_hexval(p[i + 1])) >= 0 &&
            (lo = mg_sigv4_hexval(p[i + 2])) >= 0) {
            out[o++] = (char) (hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Decode-then-encode: the canonical form of one query name or value, in the arena. */
static char *
mg_sigv4_query_part(mg_arena_t *a, mg_buf_t *tmp, const char *p, size_t n)
{
    size_t dn;
    char *d = mg_sigv4_uri_decode(a, p, n, &dn);
    mg_buf_reset(tmp);
    mg_sigv4_uri_encode(tmp, d, dn, false);
    return mg_arena_strndup(a, mg_buf_head(tmp), mg_buf_len(tmp));
}

/* ---- canonical URI ---- */

/*
 * Appends the RFC 3986 normalised form of path: "." and empty segments dropped, ".." pops
 * the previous segment, always one leading '/', a trailing '/' kept when path had one.
 */
static void
mg_sigv4_normalize_path(mg_buf_t *b, const char *path, size_t n, mg_arena_t *a)
{
    size_t cap = n / 2 + 2;
    const char **seg = mg_arena_alloc(a, cap * sizeof(*seg));
    size_t *len = mg_arena_alloc(a, cap * sizeof(*len));
    size_t nseg = 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && path[j] != '/') {
            j++;
        }
        size_t l = j - i;
        if (l == 0 || (l == 1 && path[i] == '.')) {
            /* contributes nothing */
        } else if (l == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg > 0) {
                nseg--;
            }
        } else {
            seg[nseg] = path + i;
            len[nseg] = l;
            nseg++;
        }
        i = j + 1;
    }
    bool trailing = n > 0 && path[n - 1] == '/';
    mg_buf_append(b, "/", 1);
    for (size_t k = 0; k < nseg; k++) {
        mg_buf_append(b, seg[k], len[k]);
        if (k + 1 < nseg || trailing) {
            mg_buf_append(b, "/", 1);
        }
    }
}

static void
mg_sigv4_canonical_uri(mg_buf_t *cr, const char *path, unsigned flags, mg_arena_t *a)
{
    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    size_t n = strlen(path);
    mg_buf_t norm = MG_BUF_INIT;
    if (!(flags & MG_SIGV4_PATH_NO_NORMALIZE)) {
        mg_sigv4_normalize_path(&norm, path, n, a);
        path = mg_buf_head(&norm);
        n = mg_buf_len(&norm);
    }
    if (flags & MG_SIGV4_PATH_NO_ENCODE) {
        mg_buf_append(cr, path, n);
    } else {
        mg_sigv4_uri_encode(cr, path, n, true);
    }
    mg_buf_free(&norm);
}

/* ---- canonical query ---- */

typedef struct {
    const char *name;   /* arena: canonical (encoded) */
    const char *value;  /* arena: canonical (encoded) */
} mg_sigv4_param_t;

static int
mg_sigv4_param_cmp(const void *x, const void *y)
{
    const mg_sigv4_param_t *p = x, *q = y;
    int c = strcmp(p->name, q->name);
    return c != 0 ? c : strcmp(p->value, q->value);
}

static void
mg_sigv4_canonical_query(mg_buf_t *cr, const char *query, mg_arena_t *a)
{
    if (query == NULL || query[0] == '\0') {
        return;
    }
    size_t n = strlen(query);
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) {
        cap += query[i] == '&';
    }
    mg_sigv4_param_t *params = mg_arena_alloc(a, cap * sizeof(*params));
    size_t np = 0;
    mg_buf_t tmp = MG_BUF_INIT;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && query[j] != '&') {
            j++;
        }
        if (j > i) {
            const char *eq = memchr(query + i, '=', j - i);
            size_t kl = eq != NULL ? (size_t) (eq - (query + i)) : j - i;
            params[np].name = mg_sigv4_query_part(a, &tmp, query + i, kl);
            size_t vl = eq != NULL ? (size_t) (query + j - eq - 1) : 0;
            params[np].value = eq != NULL ? mg_sigv4_query_part(a, &tmp, eq + 1, vl) : "";
            np++;
        }
        i = j + 1;
    }
    mg_buf_free(&tmp);
    qsort(params, np, sizeof(*params), mg_sigv4_param_cmp);
    for (size_t k = 0; k < np; k++) {
        if (k > 0) {
            mg_buf_append(cr, "&", 1);
        }
        mg_buf_append_str(cr, params[k].name);
        mg_buf_append(cr, "=", 1);
        mg_buf_append_str(cr, params[k].value);
    }
}

/* ---- canonical headers ---- */

typedef struct {
    char *name;         /* arena: lower-cased */
    char *value;        /* arena: trimmed, spaces collapsed */
    size_t order;       /* position in the caller's list: repeated names keep it */
} mg_sigv4_hdr_t;

static int
mg_sigv4_hdr_cmp(const void *x, const void *y)
{
    const mg_sigv4_hdr_t *p = x, *q = y;
    int c = strcmp(p->name, q->name);
    if (c != 0) {
        return c;
    }
    return p->order < q->order ? -1 : p->order > q->order;
}

static bool
mg_sigv4_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char *
mg_sigv4_collapse(mg_arena_t *a, const char *v)
{
    size_t n = strlen(v);
    char *out = mg_arena_alloc(a, n + 1);
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            space = o > 0;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        out[o++] = v[i];
    }
    out[o] = '\0';
    return out;
}

static int
mg_sigv4_headers(const mg_sigv4_request_t *req, const mg_sigv4_out_t *out, mg_arena_t *a,
                 mg_sigv4_hdr_t **hdrs_out, size_t *n_out, mg_err_t *err)
{
    size_t cap = req->n_headers + 3;
    mg_sigv4_hdr_t *h = mg_arena_alloc(a, cap * sizeof(*h));
    size_t n = 0;
    bool host = false;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name;
        const char *value = req->headers[i].value != NULL ? req->headers[i].value : "";
        if (name == NULL || name[0] == '\0') {
            return mg_err_set(err, MG_ERR_INTERNAL, "sigv4: header %zu has no name", i);
        }
        size_t nl = strlen(name);
        char *lname = mg_arena_alloc(a, nl + 1);
        for (size_t k = 0; k <= nl; k++) {
            unsigned char c = (unsigned char) name[k];
            if (k < nl && !mg_sigv4_tchar(c)) {
                return mg_err_set(err, MG_ERR_INTERNAL,
                                  "sigv4: header name \"%.64s\" has a character not allowed in a "
                                  "header name", name);
            }
            lname[k] = (char) (c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        if (strcmp(lname, "x-amz-date") == 0 || strcmp(lname, "x-amz-content-sha256") == 0 ||
            strcmp(lname, "x-amz-security-token") == 0 || strcmp(lname, "authorization") == 0) {
            return mg_err_set(err, MG_ERR_INTERNAL,
                              "sigv4: header \"%s\" is set by the signer; do not pass it", lname);
        }
        if (strpbrk(value, "\r\n") != NULL) {
            return mg_err_set(err, MG_ERR_INTERNAL, "sigv4: header \"%s\" has a CR or LF in its "
                              "value", lname);
        }
        host = host || strcmp(lname, "host") == 0;
        h[n].name = lname;
        h[n].value = mg_sigv4_collapse(a, value);
        h[n].order = n;
        n++;
    }
    if (!host) {
        return mg_err_set(err, MG_ERR_INTERNAL, "sigv4: the headers to sign must include host");
    }
    h[n] = (mg_sigv4_hdr_t){"x-amz-date", mg_arena_strdup(a, out->amz_date), n};
    n++;
    if (req->flags & MG_SIGV4_CONTENT_SHA256) {
        h[n] = (mg_sigv4_hdr_t){"x-amz-content-sha256", mg_arena_strdup(a, out->payload_sha256),
                                n};
        n++;
    }
    if (out->security_token != NULL && !(req->flags & MG_SIGV4_OMIT_TOKEN)) {
        if (strpbrk(out->security_token, "\r\n") != NULL) {
            return mg_err_set(err, MG_ERR_CONFIG, "sigv4: the session token has a CR or LF");
        }
        h[n] = (mg_sigv4_hdr_t){"x-amz-security-token",
                                mg_sigv4_collapse(a, out->security_token), n};
        n++;
    }
    qsort(h, n, sizeof(*h), mg_sigv4_hdr_cmp);
    *hdrs_out = h;
    *n_out = n;
    return MG_OK;
}

/* ---- payload hash and HMAC chain ---- */

void
mg_sigv4_payload_hash(const struct iovec *iov, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        if (iov[i].iov_len > 0) {
            ok = EVP_DigestUpdate(ctx, iov[i].iov_base, iov[i].iov_len) == 1;
        }
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        /* SHA-256 cannot fail short of a broken libcrypto or no memory */
        mg_log_write(MG_LOG_ERROR, NULL, "EVP_Digest*(sha256) failed in sigv4, aborting");
        abort();
    }
    mg_sigv4_hex(md, 32, out);
}

static void
mg_sigv4_hmac(const unsigned char *key, size_t keylen, const char *data, size_t n,
              unsigned char out[32])
{
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) data, n, out, &len) ==
            NULL ||
        len != 32) {
        mg_log_write(MG_LOG_ERROR, NULL, "HMAC(sha256) failed in sigv4, aborting");
        abort();
    }
}

/* ---- public API ---- */

int
mg_sigv4_sign(const mg_sigv4_request_t *req, mg_arena_t *a, mg_sigv4_out_t *out, mg_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (req->access_key_id == NULL || req->access_key_id[0] == '\0') {
        return mg_err_set(err, MG_ERR_CONFIG, "sigv4: no AWS access key id");
    }
    if (req->secret_access_key == NULL || req->secret_access_key[0] == '\0') {
        return mg_err_set(err, MG_ERR_CONFIG, "sigv4: no AWS secret access key");
    }
    if (req->region == NULL || req->region[0] == '\0') {
        return mg_err_set(err, MG_ERR_CONFIG, "sigv4: no AWS region");
    }
    if (req->service == NULL || req->service[0] == '\0') {
        return mg_err_set(err, MG_ERR_CONFIG, "sigv4: no service name");
    }
    if (req->method == NULL || req->method[0] == '\0') {
        return mg_err_set(err, MG_ERR_INTERNAL, "sigv4: no method");
    }
    if (req->path != NULL && strpbrk(req->path, "?#") != NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL,
                          "sigv4: path \"%.128s\" holds a '?' or '#'; pass the query separately",
                          req->path);
    }
    /* the scope's fields are joined with '/' and sent in a header: keep them clean */
    const char *scoped[3] = {req->access_key_id, req->region, req->service};
    static const char *scoped_name[3] = {"access key id", "region", "service"};
    for (int i = 0; i < 3; i++) {
        if (strpbrk(scoped[i], "/ \t\r\n,") != NULL) {
            return mg_err_set(err, MG_ERR_CONFIG, "sigv4: the %s has a '/', space or ','",
                              scoped_name[i]);
        }
    }

    time_t t = (time_t) req->timestamp;
    struct tm tm;
    if ((int64_t) t != req->timestamp || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
        tm.tm_year + 1900 < 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "sigv4: timestamp %lld is out of range",
                          (long long) req->timestamp);
    }
    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';

    mg_sigv4_payload_hash(req->payload, req->n_payload, out->payload_sha256);
    if (req->flags & MG_SIGV4_CONTENT_SHA256) {
        out->content_sha256 = out->payload_sha256;
    }
    if (req->session_token != NULL && req->session_token[0] != '\0') {
        out->security_token = req->session_token;
    }

    mg_sigv4_hdr_t *h = NULL;
    size_t nh = 0;
    if (mg_sigv4_headers(req, out, a, &h, &nh, err) != MG_OK) {
        return MG_ERROR;
    }

    /* canonical request */
    mg_buf_t cr = MG_BUF_INIT;
    for (const char *m = req->method; *m; m++) {
        char c = (char) (*m >= 'a' && *m <= 'z' ? *m - 32 : *m);
        mg_buf_append(&cr, &c, 1);
    }
    mg_buf_append(&cr, "\n", 1);
    mg_sigv4_canonical_uri(&cr, req->path, req->flags, a);
    mg_buf_append(&cr, "\n", 1);
    mg_sigv4_canonical_query(&cr, req->query, a);
    mg_buf_append(&cr, "\n", 1);
    mg_buf_t sh = MG_BUF_INIT;
    for (size_t i = 0; i < nh;) {
        size_t j = i + 1;
        mg_buf_append_str(&cr, h[i].name);
        mg_buf_append(&cr, ":", 1);
        mg_buf_append_str(&cr, h[i].value);
        while (j < nh && strcmp(h[j].name, h[i].name) == 0) {
            mg_buf_append(&cr, ",", 1);
            mg_buf_append_str(&cr, h[j].value);
            j++;
        }
        mg_buf_append(&cr, "\n", 1);
        if (mg_buf_len(&sh) > 0) {
            mg_buf_append(&sh, ";", 1);
        }
        mg_buf_append_str(&sh, h[i].name);
        i = j;
    }
    mg_buf_append(&cr, "\n", 1);
    mg_buf_append(&cr, mg_buf_head(&sh), mg_buf_len(&sh));
    mg_buf_append(&cr, "\n", 1);
    mg_buf_append(&cr, out->payload_sha256, 64);
    out->canonical_request = mg_arena_strndup(a, mg_buf_head(&cr), mg_buf_len(&cr));
    out->signed_headers = mg_arena_strndup(a, mg_buf_head(&sh), mg_buf_len(&sh));
    mg_buf_free(&sh);

    /* string to sign */
    char crhash[65];
    struct iovec civ = {(void *) out->canonical_request, mg_buf_len(&cr)};
    mg_sigv4_payload_hash(&civ, 1, crhash);
    mg_buf_free(&cr);
    const char *scope =
        mg_arena_printf(a, "%s/%s/%s/aws4_request", date8, req->region, req->service);
    out->string_to_sign =
        mg_arena_printf(a, MG_SIGV4_ALGORITHM "\n%s\n%s\n%s", out->amz_date, scope, crhash);

    /* signing key: HMAC chain from "AWS4" + secret over date, region, service, terminator */
    size_t sl = strlen(req->secret_access_key);
    unsigned char *k0 = mg_xmalloc(sl + 4);
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, req->secret_access_key, sl);
    unsigned char k1[32], k2[32], sig[32];
    mg_sigv4_hmac(k0, sl + 4, date8, 8, k1);
    OPENSSL_cleanse(k0, sl + 4);
    free(k0);
    mg_sigv4_hmac(k1, 32, req->region, strlen(req->region), k2);
    mg_sigv4_hmac(k2, 32, req->service, strlen(req->service), k1);
    mg_sigv4_hmac(k1, 32, "aws4_request", 12, k2);
    mg_sigv4_hmac(k2, 32, out->string_to_sign, strlen(out->string_to_sign), sig);
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    mg_sigv4_hex(sig, 32, out->signature);

    out->authorization =
        mg_arena_printf(a, MG_SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                        req->access_key_id, scope, out->signed_headers, out->signature);
    return MG_OK;
}
