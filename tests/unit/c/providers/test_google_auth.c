/*
 * test_google_auth.c -- core/providers/vertex/mg_google_auth.c: service-account keys, the
 * RS256 JWT assertion, the token request body.
 *
 * The RSA keys are generated here with OpenSSL (nothing secret is committed); signatures
 * are checked with the public half only, the way Google's token endpoint (and the Vertex
 * mock) checks them.
 */
#include "mg_test.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "providers/oauth/mg_oauth.h"
#include "providers/vertex/mg_google_auth.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define EMAIL "moongate-test@my-project.iam.gserviceaccount.com"
#define KID "6f1b5c0e2a9d4c3b8e7f0a1b2c3d4e5f60718293"

/* ---- helpers ---- */

static char *
t_pem(EVP_PKEY *k, bool traditional, const char *pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok;
    if (pass != NULL) {
        ok = PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), (char *) pass,
                                           (int) strlen(pass), NULL, NULL);
    } else if (traditional) {
        ok = PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL);
    } else {
        ok = PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    }
    if (!ok) {
        fprintf(stderr, "PEM_write failed\n");
        exit(2);
    }
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = strndup(p, (size_t) n);
    BIO_free(b);
    return out;
}

/* A key file as Google issues it, with fields dropped or replaced as a test wants. */
static char *
t_sa_json(const char *pem, const char *drop, const char *key, json_t *value)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
                          "project_id", "my-project", "private_key_id", KID, "private_key", pem,
                          "client_email", EMAIL, "client_id", "104973829287346567311", "auth_uri",
                          "https://accounts.google.com/o/oauth2/auth", "token_uri",
                          "https://oauth2.googleapis.com/token");
    if (drop != NULL) {
        json_object_del(o, drop);
    }
    if (key != NULL) {
        json_object_set_new(o, key, value);
    }
    char *s = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    return s;
}

static mg_google_sa_t *
t_parse(const char *json, mg_err_t *err)
{
    mg_err_clear(err);
    return mg_google_auth_sa_parse(json, strlen(json), err);
}

static unsigned char *
t_b64url_decode(const char *s, size_t n, size_t *outlen)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *out = malloc(n * 3 / 4 + 3);
    size_t o = 0;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *q = strchr(t, s[i]);
        if (q == NULL || s[i] == '\0') {
            free(out);
            return NULL;
        }
        v = (v << 6) | (uint32_t) (q - t);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (v >> bits);
            v &= (1u << bits) - 1;
        }
    }
    *outlen = o;
    return out;
}

static json_t *
t_part_json(const char *s, size_t n)
{
    size_t dl;
    unsigned char *d = t_b64url_decode(s, n, &dl);
    if (d == NULL) {
        return NULL;
    }
    json_t *j = json_loadb((const char *) d, dl, 0, NULL);
    free(d);
    return j;
}

/* The public half only, as a verifier holds it. */
static EVP_PKEY *
t_public(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    return pub;
}

static bool
t_verify(EVP_PKEY *pub, const char *jwt)
{
    const char *dot2 = strrchr(jwt, '.');
    if (dot2 == NULL) {
        return false;
    }
    size_t sl;
    unsigned char *sig = t_b64url_decode(dot2 + 1, strlen(dot2 + 1), &sl);
    if (sig == NULL) {
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, sl, (const unsigned char *) jwt,
                               (size_t) (dot2 - jwt)) == 1;
    EVP_MD_CTX_free(ctx);
    free(sig);
    return ok;
}

/* ---- tests ---- */

static EVP_PKEY *key;   /* generated once per run */
static char *key_pem;

static void
test_parse(void)
{
    MG_T_CASE("parse a key file");
    mg_err_t err;
    char *json = t_sa_json(key_pem, NULL, NULL, NULL);
    mg_google_sa_t *sa = t_parse(json, &err);
    CHECK(sa != NULL, "parse failed: %s", err.msg);
    if (sa != NULL) {
        CHECK_STR(sa->project_id, "my-project");
        CHECK_STR(sa->private_key_id, KID);
        CHECK_STR(sa->client_email, EMAIL);
        CHECK_STR(sa->token_uri, "https://oauth2.googleapis.com/token");
        CHECK(sa->pkey != NULL && EVP_PKEY_eq(sa->pkey, key) == 1);
    }
    mg_google_auth_sa_destroy(sa);
    mg_google_auth_sa_destroy(NULL);
    free(json);

    MG_T_CASE("optional fields, traditional RSA PEM");
    char *trad = t_pem(key, true, NULL);
    CHECK_CONTAINS(trad, "-----BEGIN RSA PRIVATE KEY-----");
    json_t *none = json_null();
    json = t_sa_json(trad, "project_id", "private_key_id", none);
    sa = t_parse(json, &err);
    CHECK(sa != NULL, "parse failed: %s", err.msg);
    if (sa != NULL) {
        CHECK(sa->project_id == NULL);
        CHECK(sa->private_key_id == NULL);
        CHECK(EVP_PKEY_eq(sa->pkey, key) == 1);
    }
    mg_google_auth_sa_destroy(sa);
    free(json);
    free(trad);
}

static void
test_parse_errors(void)
{
    MG_T_CASE("bad key files name the field and never quote the key");
    mg_err_t err;
    /* a recognisable fake key body: no error may echo any of it */
    const char *fake_pem = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIALxyz\n"
                           "-----END PRIVATE KEY-----\n";
    struct {
        const char *drop;
        const char *key;
        json_t *value;
        const char *want;
    } cases[] = {
        {"type", NULL, NULL, "service account JSON has no \"type\""},
        {NULL, "type", json_string("authorized_user"),
         "\"type\" is \"authorized_user\", not \"service_account\""},
        {NULL, "type", json_integer(1), "\"type\" is not a string"},
        {"client_email", NULL, NULL, "has no \"client_email\""},
        {NULL, "client_email", json_string(""), "\"client_email\" is empty"},
        {"private_key", NULL, NULL, "has no \"private_key\""},
        {NULL, "private_key", json_null(), "has no \"private_key\""},
        {NULL, "private_key", json_true(), "\"private_key\" is not a string"},
        {"token_uri", NULL, NULL, "has no \"token_uri\""},
        {NULL, "project_id", json_integer(7), "\"project_id\" is not a string"},
        {NULL, "private_key_id", json_array(), "\"private_key_id\" is not a string"},
        {NULL, "private_key", json_string(fake_pem),
         "service account \"" EMAIL "\": \"private_key\" is not an unencrypted PEM private key"},
        {NULL, "private_key", json_string("not a pem at all TOPSECRETKEYMATERIAL"),
         "\"private_key\" is not an unencrypted PEM private key"},
        {NULL, "private_key", json_stringn("TOPSECRET\0KEY", 13), "is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *json = t_sa_json(key_pem, cases[i].drop, cases[i].key, cases[i].value);
        mg_google_sa_t *sa = t_parse(json, &err);
        CHECK(sa == NULL, "case %zu parsed", i);
        CHECK_CONTAINS(err.msg, cases[i].want);
        CHECK_INT(err.cls, MG_ERR_CONFIG);
        CHECK(strstr(err.msg, "TOPSECRET") == NULL, "key echoed: %s", err.msg);
        CHECK(strstr(err.msg, "MII") == NULL, "key echoed: %s", err.msg);
        mg_google_auth_sa_destroy(sa);
        free(json);
    }

    /* not JSON, with key material right where the syntax error is */
    const char *broken = "{\"type\": \"service_account\", \"private_key\": TOPSECRETKEY}";
    CHECK(t_parse(broken, &err) == NULL);
    CHECK_CONTAINS(err.msg, "service account JSON is not valid JSON (error at line 1 column");
    CHECK(strstr(err.msg, "TOPSECRET") == NULL, "key echoed: %s", err.msg);
    CHECK(t_parse("[1,2]", &err) == NULL);
    CHECK_CONTAINS(err.msg, "is not an object");
    CHECK(mg_google_auth_sa_parse(NULL, 0, &err) == NULL);
    CHECK_CONTAINS(err.msg, "not valid JSON");

    MG_T_CASE("keys RS256 cannot use");
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *ec_pem = t_pem(ec, false, NULL);
    char *json = t_sa_json(ec_pem, NULL, NULL, NULL);
    CHECK(t_parse(json, &err) == NULL);
    CHECK_CONTAINS(err.msg, "\"private_key\" is not an RSA key");
    free(json);
    free(ec_pem);
    EVP_PKEY_free(ec);
    /* an encrypted key fails at once (no passphrase prompt on a terminal) */
    char *enc = t_pem(key, false, "hunter2");
    CHECK_CONTAINS(enc, "ENCRYPTED PRIVATE KEY");
    json = t_sa_json(enc, NULL, NULL, NULL);
    CHECK(t_parse(json, &err) == NULL);
    CHECK_CONTAINS(err.msg, "is not an unencrypted PEM private key");
    free(json);
    free(enc);
}

static void
test_jwt(void)
{
    MG_T_CASE("JWT assertion");
    mg_err_t err;
    char *json = t_sa_json(key_pem, NULL, NULL, NULL);
    mg_google_sa_t *sa = t_parse(json, &err);
    free(json);
    CHECK(sa != NULL);
    if (sa == NULL) {
        return;
    }
    EVP_PKEY *pub = t_public(key);
    mg_buf_t b = MG_BUF_INIT;
    CHECK_INT(mg_google_auth_jwt(sa, MG_GOOGLE_SCOPE_CLOUD, NULL, 1714558830, &b, &err), MG_OK);
    const char *jwt = mg_buf_cstr(&b);
    /* three base64url parts, no padding */
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    CHECK(d1 != NULL && d2 != NULL && strchr(d2 + 1, '.') == NULL, "jwt %s", jwt);
    CHECK(strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
          strlen(jwt));
    if (d1 == NULL || d2 == NULL) {
        return;
    }
    json_t *hdr = t_part_json(jwt, (size_t) (d1 - jwt));
    json_t *cl = t_part_json(d1 + 1, (size_t) (d2 - d1 - 1));
    CHECK(hdr != NULL && cl != NULL);
    CHECK_STR(json_string_value(json_object_get(hdr, "alg")), "RS256");
    CHECK_STR(json_string_value(json_object_get(hdr, "typ")), "JWT");
    CHECK_STR(json_string_value(json_object_get(hdr, "kid")), KID);
    CHECK_INT(json_object_size(hdr), 3);
    CHECK_STR(json_string_value(json_object_get(cl, "iss")), EMAIL);
    CHECK_STR(json_string_value(json_object_get(cl, "scope")),
              "https://www.googleapis.com/auth/cloud-platform");
    CHECK_STR(json_string_value(json_object_get(cl, "aud")), "https://oauth2.googleapis.com/token");
    CHECK_INT(json_integer_value(json_object_get(cl, "iat")), 1714558830);
    CHECK_INT(json_integer_value(json_object_get(cl, "exp")), 1714558830 + 3600);
    CHECK_INT(json_object_size(cl), 5);
    json_decref(hdr);
    json_decref(cl);
    /* 2048-bit key: a 256-byte signature, 342 base64url characters */
    CHECK_INT(strlen(d2 + 1), 342);
    CHECK(t_verify(pub, jwt), "signature does not verify");

    /* a changed claim no longer verifies; a different key does not verify */
    char *tampered = strdup(jwt);
    tampered[(d1 - jwt) + 5] = tampered[(d1 - jwt) + 5] == 'A' ? 'B' : 'A';
    CHECK(!t_verify(pub, tampered));
    free(tampered);
    EVP_PKEY *other = EVP_RSA_gen(2048);
    EVP_PKEY *other_pub = t_public(other);
    CHECK(!t_verify(other_pub, jwt));
    EVP_PKEY_free(other_pub);
    EVP_PKEY_free(other);

    MG_T_CASE("JWT: audience override, no kid, escaping");
    mg_buf_reset(&b);
    CHECK_INT(mg_google_auth_jwt(sa, "a b \"c\"", "http://127.0.0.1:4444/token", 5, &b, &err),
              MG_OK);
    jwt = mg_buf_cstr(&b);
    d1 = strchr(jwt, '.');
    d2 = strchr(d1 + 1, '.');
    cl = t_part_json(d1 + 1, (size_t) (d2 - d1 - 1));
    CHECK_STR(json_string_value(json_object_get(cl, "aud")), "http://127.0.0.1:4444/token");
    CHECK_STR(json_string_value(json_object_get(cl, "scope")), "a b \"c\"");
    CHECK_INT(json_integer_value(json_object_get(cl, "exp")), 3605);
    json_decref(cl);
    CHECK(t_verify(pub, jwt));
    free(sa->private_key_id);
    sa->private_key_id = NULL;
    mg_buf_reset(&b);
    CHECK_INT(mg_google_auth_jwt(sa, "s", NULL, 5, &b, &err), MG_OK);
    jwt = mg_buf_cstr(&b);
    d1 = strchr(jwt, '.');
    hdr = t_part_json(jwt, (size_t) (d1 - jwt));
    CHECK(json_object_get(hdr, "kid") == NULL);
    CHECK_STR(json_string_value(json_object_get(hdr, "alg")), "RS256");
    json_decref(hdr);
    CHECK(t_verify(pub, jwt));

    /* RSASSA-PKCS1-v1_5 is deterministic: the same input signs the same */
    mg_buf_t again = MG_BUF_INIT;
    CHECK_INT(mg_google_auth_jwt(sa, "s", NULL, 5, &again, &err), MG_OK);
    CHECK_STR(mg_buf_cstr(&again), mg_buf_cstr(&b));
    mg_buf_free(&again);

    MG_T_CASE("JWT errors");
    mg_buf_reset(&b);
    CHECK_INT(mg_google_auth_jwt(sa, "", NULL, 5, &b, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "no OAuth scope");
    CHECK_INT(mg_google_auth_jwt(sa, NULL, NULL, 5, &b, &err), MG_ERROR);
    CHECK_INT(mg_buf_len(&b), 0);

    MG_T_CASE("token request body");
    CHECK_INT(mg_google_auth_token_body(sa, MG_GOOGLE_SCOPE_CLOUD, NULL, 1714558830, &b, &err),
              MG_OK);
    const char *body = mg_buf_cstr(&b);
    const char *prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                         "&assertion=";
    CHECK(strncmp(body, prefix, strlen(prefix)) == 0, "body %s", body);
    const char *assertion = body + strlen(prefix);
    CHECK(strchr(assertion, '&') == NULL && strchr(assertion, '%') == NULL);
    CHECK(t_verify(pub, assertion));
    mg_buf_reset(&b);
    CHECK_INT(mg_google_auth_token_body(sa, "", NULL, 1, &b, &err), MG_ERROR);
    CHECK_INT(mg_buf_len(&b), 0);

    MG_T_CASE("token response (shared parser)");
    mg_oauth_token_t tok;
    const char *resp = "{\"access_token\":\"ya29.c.tok\",\"expires_in\":3599,"
                       "\"token_type\":\"Bearer\"}";
    CHECK_INT(mg_oauth_token_parse(resp, strlen(resp), &tok, &err), MG_OK);
    CHECK_STR(tok.access_token, "ya29.c.tok");
    mg_oauth_token_free(&tok);

    mg_buf_free(&b);
    EVP_PKEY_free(pub);
    mg_google_auth_sa_destroy(sa);
}

int
main(void)
{
    key = EVP_RSA_gen(2048);
    if (key == NULL) {
        fprintf(stderr, "EVP_RSA_gen failed\n");
        return 2;
    }
    key_pem = t_pem(key, false, NULL);
    test_parse();
    test_parse_errors();
    test_jwt();
    free(key_pem);
    EVP_PKEY_free(key);
    return mg_test_done();
}
