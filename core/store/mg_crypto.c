/*
 * mg_crypto.c -- AES-256-GCM for credentials at rest (see mg_crypto.h).
 */
#include "mg_crypto.h"

#include "../base/mg_arena.h"
#include "../base/mg_util.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define MG_CRYPTO_PREFIX "mg1:"
#define MG_CRYPTO_NONCE 12
#define MG_CRYPTO_TAG 16

void
mg_crypto_init(mg_crypto_t *c, const char *secret)
{
    memset(c, 0, sizeof(*c));
    if (secret == NULL || secret[0] == '\0') {
        return;
    }
    SHA256((const unsigned char *) secret, strlen(secret), c->key);
    c->enabled = 1;
}

static const char mg_b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
mg_crypto_b64(const unsigned char *p, size_t n)
{
    char *out = mg_xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned) p[i] << 16;
        if (i + 1 < n) v |= (unsigned) p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        out[o++] = mg_b64u[(v >> 18) & 63];
        out[o++] = mg_b64u[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = mg_b64u[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = mg_b64u[v & 63];
    }
    out[o] = '\0';
    return out;
}

static unsigned char *
mg_crypto_unb64(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    unsigned char *out = mg_xmalloc(n * 3 / 4 + 3);
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *q = strchr(mg_b64u, s[i]);
        if (q == NULL || s[i] == '\0') {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned) (q - mg_b64u);
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

json_t *
mg_crypto_encrypt_value(const mg_crypto_t *c, json_t *v)
{
    if (!c->enabled || v == NULL || json_is_null(v)) {
        return v != NULL ? json_incref(v) : json_null();
    }
    char *plain;
    if (json_is_string(v)) {
        /* a leading marker distinguishes strings from JSON-encoded values */
        size_t l = json_string_length(v);
        plain = mg_xmalloc(l + 2);
        plain[0] = 's';
        memcpy(plain + 1, json_string_value(v), l + 1);
    } else {
        char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        size_t l = strlen(d);
        plain = mg_xmalloc(l + 2);
        plain[0] = 'j';
        memcpy(plain + 1, d, l + 1);
        free(d);
    }
    size_t pl = json_is_string(v) ? json_string_length(v) + 1 : strlen(plain);
    unsigned char *buf = mg_xmalloc(MG_CRYPTO_NONCE + pl + MG_CRYPTO_TAG);
    mg_random_bytes(buf, MG_CRYPTO_NONCE);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, total = 0;
    int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, c->key, buf) == 1 &&
             EVP_EncryptUpdate(ctx, buf + MG_CRYPTO_NONCE, &len, (unsigned char *) plain, (int) pl) == 1;
    total = len;
    ok = ok && EVP_EncryptFinal_ex(ctx, buf + MG_CRYPTO_NONCE + total, &len) == 1;
    total += len;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MG_CRYPTO_TAG,
                                   buf + MG_CRYPTO_NONCE + total) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(plain);
    if (!ok) {
        free(buf);
        abort(); /* the CSPRNG or AES failing is not recoverable */
    }
    char *b = mg_crypto_b64(buf, (size_t) (MG_CRYPTO_NONCE + total + MG_CRYPTO_TAG));
    free(buf);
    size_t bl = strlen(b);
    char *s = mg_xmalloc(bl + sizeof(MG_CRYPTO_PREFIX));
    memcpy(s, MG_CRYPTO_PREFIX, sizeof(MG_CRYPTO_PREFIX) - 1);
    memcpy(s + sizeof(MG_CRYPTO_PREFIX) - 1, b, bl + 1);
    free(b);
    json_t *r = json_string(s);
    free(s);
    return r;
}

json_t *
mg_crypto_decrypt_value(const mg_crypto_t *c, json_t *v, mg_err_t *err)
{
    const char *s = json_string_value(v);
    if (s == NULL || strncmp(s, MG_CRYPTO_PREFIX, sizeof(MG_CRYPTO_PREFIX) - 1) != 0) {
        return json_incref(v);
    }
    if (!c->enabled) {
        mg_err_set(err, MG_ERR_CONFIG, "a stored credential is encrypted but no LITELLM_SALT_KEY "
                                       "or master key is configured to decrypt it");
        return NULL;
    }
    size_t n;
    unsigned char *buf = mg_crypto_unb64(s + sizeof(MG_CRYPTO_PREFIX) - 1, &n);
    if (buf == NULL || n < MG_CRYPTO_NONCE + MG_CRYPTO_TAG + 1) {
        free(buf);
        mg_err_set(err, MG_ERR_CONFIG, "a stored credential is not valid encrypted data");
        return NULL;
    }
    size_t cl = n - MG_CRYPTO_NONCE - MG_CRYPTO_TAG;
    unsigned char *plain = mg_xmalloc(cl + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, total = 0;
    int ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, c->key, buf) == 1 &&
             EVP_DecryptUpdate(ctx, plain, &len, buf + MG_CRYPTO_NONCE, (int) cl) == 1;
    total = len;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MG_CRYPTO_TAG,
                                   buf + MG_CRYPTO_NONCE + cl) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, plain + total, &len) == 1;
    total += ok ? len : 0;
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    if (!ok || total < 1) {
        free(plain);
        mg_err_set(err, MG_ERR_CONFIG, "cannot decrypt a stored credential: wrong LITELLM_SALT_KEY "
                                       "(it must not change once models are stored) or corrupt data");
        return NULL;
    }
    plain[total] = '\0';
    json_t *r;
    if (plain[0] == 's') {
        r = json_stringn((char *) plain + 1, (size_t) total - 1);
    } else {
        r = json_loads((char *) plain + 1, JSON_DECODE_ANY, NULL);
    }
    free(plain);
    if (r == NULL) {
        mg_err_set(err, MG_ERR_CONFIG, "a decrypted credential is not valid");
    }
    return r;
}

json_t *
mg_crypto_encrypt_object(const mg_crypto_t *c, json_t *obj)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        json_object_set_new(out, k, mg_crypto_encrypt_value(c, v));
    }
    return out;
}

json_t *
mg_crypto_decrypt_object(const mg_crypto_t *c, json_t *obj, mg_err_t *err)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        json_t *d = mg_crypto_decrypt_value(c, v, err);
        if (d == NULL) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, d);
    }
    return out;
}
