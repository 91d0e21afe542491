/*
 * test_crypto.c -- core/store/mg_crypto.c: credentials encrypted at rest (AES-256-GCM).
 */
#include "mg_test.h"

#include "base/mg_err.h"
#include "store/mg_crypto.h"

static void
t_roundtrip(const mg_crypto_t *c, const char *json)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *e = mg_crypto_encrypt_value(c, v);
    CHECK(json_is_string(e) && strncmp(json_string_value(e), "mg1:", 4) == 0,
          "%s encrypts to %s", json, json_string_value(e));
    mg_err_t err;
    json_t *d = mg_crypto_decrypt_value(c, e, &err);
    CHECK(d != NULL && json_equal(d, v), "%s does not survive a round trip", json);
    json_decref(v);
    json_decref(e);
    json_decref(d);
}

static void
test_roundtrip(void)
{
    MG_T_CASE("round trip");
    mg_crypto_t c;
    mg_crypto_init(&c, "salt-key-for-tests");
    CHECK(c.enabled);
    t_roundtrip(&c, "\"sk-secret-123\"");
    t_roundtrip(&c, "\"\"");
    t_roundtrip(&c, "\"mg1:looks-encrypted-but-is-not\"");
    t_roundtrip(&c, "\"caf\\u00e9 \\u00ff\"");
    t_roundtrip(&c, "42");
    t_roundtrip(&c, "1.5");
    t_roundtrip(&c, "true");
    t_roundtrip(&c, "[1, \"two\", {\"three\": 3}]");
    t_roundtrip(&c, "{\"Authorization\": \"Bearer x\"}");
    /* a string and its JSON-looking twin stay distinct */
    t_roundtrip(&c, "\"42\"");

    { /* was a known bug, now fixed: mg_crypto_encrypt_value: the plaintext length is strlen(), so a value with an embedded NUL is cut there (\"a\\u0000b\" decrypts to \"a\") */
        t_roundtrip(&c, "\"a\\u0000b\"");
    }

    /* null is never encrypted */
    json_t *n = mg_crypto_encrypt_value(&c, json_null());
    CHECK(json_is_null(n));
    json_decref(n);
    /* a random nonce: the same value encrypts differently each time */
    json_t *v = json_string("same");
    json_t *e1 = mg_crypto_encrypt_value(&c, v);
    json_t *e2 = mg_crypto_encrypt_value(&c, v);
    CHECK(strcmp(json_string_value(e1), json_string_value(e2)) != 0);
    /* base64url only: safe in JSON and URLs */
    bool b64 = true;
    for (const char *p = json_string_value(e1) + 4; *p; p++) {
        b64 = b64 && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p);
    }
    CHECK(b64);
    /* a large value */
    char *big = malloc(100001);
    memset(big, 'k', 100000);
    big[100000] = '\0';
    json_t *bv = json_string(big);
    json_t *be = mg_crypto_encrypt_value(&c, bv);
    mg_err_t err;
    json_t *bd = mg_crypto_decrypt_value(&c, be, &err);
    CHECK(bd != NULL && json_equal(bd, bv));
    json_decref(bv);
    json_decref(be);
    json_decref(bd);
    free(big);
    /* plain strings (rows written before a key existed) pass through */
    json_t *plain = json_string("sk-plain");
    json_t *pd = mg_crypto_decrypt_value(&c, plain, &err);
    CHECK(pd != NULL && json_equal(pd, plain));
    json_decref(pd);
    json_decref(plain);

    /* objects: every top-level value */
    json_t *obj = json_loads("{\"model\":\"openai/x\",\"api_key\":\"sk-1\",\"rpm\":5,\"n\":null}",
                             0, NULL);
    json_t *eo = mg_crypto_encrypt_object(&c, obj);
    CHECK(strncmp(json_string_value(json_object_get(eo, "api_key")), "mg1:", 4) == 0);
    CHECK(json_is_null(json_object_get(eo, "n")));
    json_t *dobj = mg_crypto_decrypt_object(&c, eo, &err);
    CHECK(dobj != NULL && json_equal(dobj, obj));
    json_decref(obj);
    json_decref(eo);
    json_decref(dobj);
    json_decref(v);
    json_decref(e1);
    json_decref(e2);
}

static void
test_failures(void)
{
    MG_T_CASE("wrong key, tampering, disabled");
    mg_crypto_t c, other, off;
    mg_crypto_init(&c, "right-key");
    mg_crypto_init(&other, "wrong-key");
    mg_crypto_init(&off, NULL);
    CHECK(!off.enabled);
    mg_crypto_t off2;
    mg_crypto_init(&off2, "");
    CHECK(!off2.enabled);

    json_t *v = json_string("sk-secret");
    json_t *e = mg_crypto_encrypt_value(&c, v);
    const char *es = json_string_value(e);
    mg_err_t err;

    /* wrong key */
    mg_err_clear(&err);
    CHECK(mg_crypto_decrypt_value(&other, e, &err) == NULL);
    CHECK(err.cls == MG_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "wrong LITELLM_SALT_KEY");

    /* every single-character change is detected */
    size_t n = strlen(es);
    int undetected = 0;
    for (size_t i = 4; i < n; i++) {
        char *t = strdup(es);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        json_t *tv = json_string(t);
        json_t *d = mg_crypto_decrypt_value(&c, tv, &err);
        if (d != NULL) {
            /* the last character may carry only padding bits (base64): same bytes, same value */
            undetected += !(i == n - 1 && json_equal(d, v));
            json_decref(d);
        }
        json_decref(tv);
        free(t);
    }
    CHECK_INT(undetected, 0);
    /* truncated, extended, garbage */
    const char *bad[] = {"mg1:", "mg1:AAAA", "mg1:!!!!notbase64!!!!",
                         "mg1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *tv = json_string(bad[i]);
        mg_err_clear(&err);
        CHECK(mg_crypto_decrypt_value(&c, tv, &err) == NULL, "%s decrypted", bad[i]);
        CHECK(err.cls == MG_ERR_CONFIG);
        json_decref(tv);
    }
    char *cut = strndup(es, n - 3);
    json_t *cv = json_string(cut);
    CHECK(mg_crypto_decrypt_value(&c, cv, &err) == NULL);
    json_decref(cv);
    free(cut);

    /* encrypted data but no key configured: a clear error, not the ciphertext */
    mg_err_clear(&err);
    CHECK(mg_crypto_decrypt_value(&off, e, &err) == NULL);
    CHECK_CONTAINS(err.msg, "no LITELLM_SALT_KEY");
    /* disabled: encryption is the identity */
    json_t *same = mg_crypto_encrypt_value(&off, v);
    CHECK(json_equal(same, v));
    json_decref(same);
    /* an object with one bad value fails as a whole */
    json_t *obj = json_pack("{s:O,s:s}", "api_key", e, "model", "x");
    CHECK(mg_crypto_decrypt_object(&other, obj, &err) == NULL);
    json_decref(obj);
    json_decref(v);
    json_decref(e);
}

int
main(void)
{
    test_roundtrip();
    test_failures();
    return mg_test_done();
}
