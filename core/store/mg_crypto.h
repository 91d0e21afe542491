/*
 * mg_crypto.h -- encryption of credentials at rest (AES-256-GCM, OpenSSL).
 *
 * Key = SHA-256 of the secret (LITELLM_SALT_KEY, else the master key).
 * A value is stored as the string "mg1:" + base64url(nonce[12] | ciphertext | tag[16]).
 * Values that are not strings are encrypted as their JSON text; decryption
 * restores the JSON value.  Strings without the "mg1:" prefix are returned as
 * they are (rows written before a key was configured).
 */
#ifndef MG_CRYPTO_H
#define MG_CRYPTO_H

#include "../base/mg_err.h"

#include <jansson.h>

typedef struct {
    unsigned char key[32];
    int enabled;
} mg_crypto_t;

void mg_crypto_init(mg_crypto_t *c, const char *secret);
/* New reference: encrypted string, or a copy of v when disabled. */
json_t *mg_crypto_encrypt_value(const mg_crypto_t *c, json_t *v);
/* New reference or NULL with err (wrong key, corrupt data). */
json_t *mg_crypto_decrypt_value(const mg_crypto_t *c, json_t *v, mg_err_t *err);
/* Applies the above to every top-level value of an object; NULL on error. */
json_t *mg_crypto_encrypt_object(const mg_crypto_t *c, json_t *obj);
json_t *mg_crypto_decrypt_object(const mg_crypto_t *c, json_t *obj, mg_err_t *err);

#endif
