/*
 * mg_google_auth.c -- service-account key parsing, the RS256 JWT assertion and the token
 * request body (see mg_google_auth.h).  Owns what mg_google_sa_t holds.
 */
#include "mg_google_auth.h"

#include "../../base/mg_arena.h"
#include "../../base/mg_err.h"
#include "../oauth/mg_oauth.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- base64url without padding ---- */

static void
mg_google_auth_b64url(mg_buf_t *out, const unsigned char *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t) p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
        mg_buf_append(out, q, i + 2 < n ? 4 : i + 1 < n ? 3 : 2);
    }
}

/* ---- the key file ---- */

void
mg_google_auth_sa_destroy(mg_google_sa_t *sa)
{
    if (sa == NULL) {
        return;
    }
    free(sa->project_id);
    free(sa->private_key_id);
    free(sa->client_email);
    free(sa->token_uri);
    EVP_PKEY_free(sa->pkey);
    free(sa);
}

/* Never prompts: an encrypted key fails instead of reading a passphrase from a tty. */
static int
mg_google_auth_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1;
}

/*
 * Copies the string field name into *out.  Returns MG_OK; MG_DECLINED when it is absent
 * and !required; MG_ERROR with err when required and absent or empty, or not a string.
 */
static int
mg_google_auth_field(json_t *root, const char *name, bool required, char **out, mg_err_t *err)
{
    json_t *v = json_object_get(root, name);
    if (v == NULL || json_is_null(v)) {
        if (!required) {
            return MG_DECLINED;
        }
        return mg_err_set(err, MG_ERR_CONFIG, "service account JSON has no \"%s\"", name);
    }
    if (!json_is_string(v)) {
        return mg_err_set(err, MG_ERR_CONFIG, "service account JSON: \"%s\" is not a string",
                          name);
    }
    if (required && json_string_length(v) == 0) {
        return mg_err_set(err, MG_ERR_CONFIG, "service account JSON: \"%s\" is empty", name);
    }
    *out = mg_xstrdup(json_string_value(v));
    return MG_OK;
}

mg_google_sa_t *
mg_google_auth_sa_parse(const char *json, size_t len, mg_err_t *err)
{
    json_error_t je;
    /* without JSON_ALLOW_NUL jansson refuses "\u0000", so every string is a C string */
    json_t *root = json_loadb(json != NULL ? json : "", json != NULL ? len : 0, 0, &je);
    if (root == NULL) {
        /* je.text can quote the input ("near '...'"), which may be key material */
        mg_err_set(err, MG_ERR_CONFIG,
                   "service account JSON is not valid JSON (error at line %d column %d)",
                   je.line, je.column);
        return NULL;
    }
    mg_google_sa_t *sa = mg_xcalloc(1, sizeof(*sa));
    char *type = NULL;
    char *pem = NULL;
    if (!json_is_object(root)) {
        mg_err_set(err, MG_ERR_CONFIG, "service account JSON is not an object");
        goto fail;
    }
    if (mg_google_auth_field(root, "type", true, &type, err) != MG_OK) {
        goto fail;
    }
    if (strcmp(type, "service_account") != 0) {
        mg_err_set(err, MG_ERR_CONFIG,
                   "service account JSON: \"type\" is \"%.40s\", not \"service_account\"", type);
        goto fail;
    }
    if (mg_google_auth_field(root, "client_email", true, &sa->client_email, err) != MG_OK ||
        mg_google_auth_field(root, "private_key", true, &pem, err) != MG_OK ||
        mg_google_auth_field(root, "token_uri", true, &sa->token_uri, err) != MG_OK ||
        mg_google_auth_field(root, "project_id", false, &sa->project_id, err) == MG_ERROR ||
        mg_google_auth_field(root, "private_key_id", false, &sa->private_key_id, err) ==
            MG_ERROR) {
        goto fail;
    }
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "service account \"%.128s\": BIO_new_mem_buf() failed",
                   sa->client_email);
        goto fail;
    }
    sa->pkey = PEM_read_bio_PrivateKey(bio, NULL, mg_google_auth_no_passphrase, NULL);
    BIO_free(bio);
    ERR_clear_error(); /* what OpenSSL noted about the PEM stays out of later reports */
    if (sa->pkey == NULL) {
        mg_err_set(err, MG_ERR_CONFIG,
                   "service account \"%.128s\": \"private_key\" is not an unencrypted PEM "
                   "private key", sa->client_email);
        goto fail;
    }
    if (EVP_PKEY_base_id(sa->pkey) != EVP_PKEY_RSA) {
        mg_err_set(err, MG_ERR_CONFIG,
                   "service account \"%.128s\": \"private_key\" is not an RSA key (RS256 needs "
                   "one)", sa->client_email);
        goto fail;
    }
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    free(type);
    json_decref(root);
    return sa;
fail:
    if (pem != NULL) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    free(type);
    json_decref(root);
    mg_google_auth_sa_destroy(sa);
    return NULL;
}

/* ---- the assertion ---- */

int
mg_google_auth_jwt(const mg_google_sa_t *sa, const char *scope, const char *aud, int64_t iat,
                   mg_buf_t *out, mg_err_t *err)
{
    if (scope == NULL || scope[0] == '\0') {
        return mg_err_set(err, MG_ERR_CONFIG, "service account \"%.128s\": no OAuth scope",
                          sa->client_email);
    }
    if (aud == NULL || aud[0] == '\0') {
        aud = sa->token_uri;
    }
    mg_buf_t json = MG_BUF_INIT;
    mg_buf_t jwt = MG_BUF_INIT;
    mg_buf_append_str(&json, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
    if (sa->private_key_id != NULL && sa->private_key_id[0] != '\0') {
        mg_buf_append_str(&json, ",\"kid\":");
        mg_buf_json_str(&json, sa->private_key_id, strlen(sa->private_key_id));
    }
    mg_buf_append_str(&json, "}");
    mg_google_auth_b64url(&jwt, (const unsigned char *) mg_buf_head(&json), mg_buf_len(&json));
    mg_buf_append(&jwt, ".", 1);

    mg_buf_reset(&json);
    mg_buf_append_str(&json, "{\"iss\":");
    mg_buf_json_str(&json, sa->client_email, strlen(sa->client_email));
    mg_buf_append_str(&json, ",\"scope\":");
    mg_buf_json_str(&json, scope, strlen(scope));
    mg_buf_append_str(&json, ",\"aud\":");
    mg_buf_json_str(&json, aud, strlen(aud));
    mg_buf_printf(&json, ",\"iat\":%lld,\"exp\":%lld}", (long long) iat,
                  (long long) (iat + MG_GOOGLE_JWT_LIFETIME));
    mg_google_auth_b64url(&jwt, (const unsigned char *) mg_buf_head(&json), mg_buf_len(&json));
    mg_buf_free(&json);

    /* RS256: RSASSA-PKCS1-v1_5 (the RSA default) over SHA-256 of header.claims */
    int rc = MG_ERROR;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    const unsigned char *tbs = (const unsigned char *) mg_buf_head(&jwt);
    size_t tbslen = mg_buf_len(&jwt);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, sa->pkey) == 1 &&
             EVP_DigestSign(ctx, NULL, &siglen, tbs, tbslen) == 1;
    if (ok) {
        sig = mg_xmalloc(siglen);
        ok = EVP_DigestSign(ctx, sig, &siglen, tbs, tbslen) == 1;
    }
    if (!ok) {
        unsigned long e = ERR_get_error();
        char reason[160];
        ERR_error_string_n(e, reason, sizeof(reason));
        ERR_clear_error();
        mg_err_set(err, MG_ERR_INTERNAL,
                   "service account \"%.128s\": signing the JWT failed (%s)", sa->client_email,
                   reason);
        goto done;
    }
    mg_buf_append(&jwt, ".", 1);
    mg_google_auth_b64url(&jwt, sig, siglen);
    mg_buf_append(out, mg_buf_head(&jwt), mg_buf_len(&jwt));
    rc = MG_OK;
done:
    EVP_MD_CTX_free(ctx);
    free(sig);
    mg_buf_free(&jwt);
    return rc;
}

int
mg_google_auth_token_body(const mg_google_sa_t *sa, const char *scope, const char *aud,
                          int64_t iat, mg_buf_t *out, mg_err_t *err)
{
    mg_buf_t jwt = MG_BUF_INIT;
    if (mg_google_auth_jwt(sa, scope, aud, iat, &jwt, err) != MG_OK) {
        return MG_ERROR;
    }
    mg_buf_t body = MG_BUF_INIT;
    mg_oauth_form_add(&body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
    mg_oauth_form_add(&body, "assertion", mg_buf_cstr(&jwt));
    mg_buf_append(out, mg_buf_head(&body), mg_buf_len(&body));
    mg_buf_free(&body);
    mg_buf_free(&jwt);
    return MG_OK;
}
