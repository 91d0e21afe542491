/*
 * mg_oauth.c -- form encoding, the Entra client-credentials request and the token
 * response parser (see mg_oauth.h).  Owns nothing beyond what mg_oauth_token_t holds.
 */
#include "mg_oauth.h"

#include "../../base/mg_arena.h"
#include "../../base/mg_err.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- form encoding ---- */

void
mg_oauth_form_encode(mg_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == '-' || c == '~') {
            mg_buf_append(out, &s[i], 1);
        } else if (c == ' ') {
            mg_buf_append(out, "+", 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            mg_buf_append(out, e, 3);
        }
    }
}

void
mg_oauth_form_add(mg_buf_t *out, const char *name, const char *value)
{
    if (mg_buf_len(out) > 0) {
        mg_buf_append(out, "&", 1);
    }
    mg_oauth_form_encode(out, name, strlen(name));
    mg_buf_append(out, "=", 1);
    mg_oauth_form_encode(out, value, strlen(value));
}

/* ---- Entra ID client credentials ---- */

int
mg_oauth_entra_body(const char *client_id, const char *client_secret, const char *scope,
                    mg_buf_t *out, mg_err_t *err)
{
    const char *vals[3] = {client_id, client_secret, scope};
    static const char *names[3] = {"client_id", "client_secret", "scope"};
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL || vals[i][0] == '\0') {
            return mg_err_set(err, MG_ERR_CONFIG, "entra client credentials: no %s", names[i]);
        }
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_oauth_form_add(&b, "grant_type", "client_credentials");
    mg_oauth_form_add(&b, "client_id", client_id);
    mg_oauth_form_add(&b, "client_secret", client_secret);
    mg_oauth_form_add(&b, "scope", scope);
    mg_buf_append(out, mg_buf_head(&b), mg_buf_len(&b));
    OPENSSL_cleanse(b.data, b.cap);
    mg_buf_free(&b);
    return MG_OK;
}

int
mg_oauth_entra_token_url(const char *authority, const char *tenant_id, mg_buf_t *out,
                         mg_err_t *err)
{
    if (tenant_id == NULL || tenant_id[0] == '\0') {
        return mg_err_set(err, MG_ERR_CONFIG, "entra client credentials: no tenant_id");
    }
    for (const char *p = tenant_id; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.')) {
            return mg_err_set(err, MG_ERR_CONFIG,
                              "entra client credentials: tenant_id \"%.64s\" is not a GUID or a "
                              "domain", tenant_id);
        }
    }
    if (authority == NULL || authority[0] == '\0') {
        authority = MG_OAUTH_ENTRA_AUTHORITY;
    }
    size_t al = strlen(authority);
    while (al > 0 && authority[al - 1] == '/') {
        al--;
    }
    mg_buf_printf(out, "%.*s/%s/oauth2/v2.0/token", (int) al, authority, tenant_id);
    return MG_OK;
}

/* ---- token responses ---- */

void
mg_oauth_token_free(mg_oauth_token_t *tok)
{
    if (tok == NULL) {
        return;
    }
    if (tok->access_token != NULL) {
        OPENSSL_cleanse(tok->access_token, strlen(tok->access_token));
        free(tok->access_token);
    }
    free(tok->token_type);
    memset(tok, 0, sizeof(*tok));
}

/* expires_in as a positive number of seconds: a JSON number or a string of digits. */
static bool
mg_oauth_expires(json_t *v, int64_t *out)
{
    double d;
    if (json_is_integer(v)) {
        d = (double) json_integer_value(v);
    } else if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (s[0] < '0' || s[0] > '9') {
            return false;
        }
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0') {
            return false;
        }
        d = (double) ll;
    } else {
        return false;
    }
    if (!(d >= 1 && d <= 2147483647.0)) {
        return false;
    }
    *out = (int64_t) d;
    return true;
}

int
mg_oauth_token_parse(const char *body, size_t len, mg_oauth_token_t *tok, mg_err_t *err)
{
    memset(tok, 0, sizeof(*tok));
    json_error_t je;
    json_t *root = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, &je);
    if (root == NULL) {
        /* je.text can quote the input ("near '...'"): keep only the position */
        return mg_err_set(err, MG_ERR_UPSTREAM_5XX,
                          "token response is not JSON (%zu bytes; error at line %d column %d)",
                          len, je.line, je.column);
    }
    int rc = MG_ERROR;
    if (!json_is_object(root)) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "token response is not a JSON object");
        goto done;
    }
    json_t *e = json_object_get(root, "error");
    if (e != NULL) {
        json_t *desc = json_object_get(root, "error_description");
        const char *code = json_is_string(e) ? json_string_value(e) : "(not a string)";
        if (json_is_string(desc)) {
            mg_err_set(err, MG_ERR_AUTH, "token endpoint refused: %.80s: %.300s", code,
                       json_string_value(desc));
        } else {
            mg_err_set(err, MG_ERR_AUTH, "token endpoint refused: %.80s", code);
        }
        goto done;
    }
    json_t *at = json_object_get(root, "access_token");
    if (!json_is_string(at) || json_string_length(at) == 0) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "token response has no \"access_token\" string");
        goto done;
    }
    /* it goes into an Authorization header (jansson already refused a NUL) */
    if (strpbrk(json_string_value(at), "\r\n") != NULL) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "token response \"access_token\" holds a CR or LF");
        goto done;
    }
    json_t *ex = json_object_get(root, "expires_in");
    int64_t expires = 0;
    if (ex == NULL) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX, "token response has no \"expires_in\"");
        goto done;
    }
    if (!mg_oauth_expires(ex, &expires)) {
        mg_err_set(err, MG_ERR_UPSTREAM_5XX,
                   "token response \"expires_in\" is not a positive number of seconds");
        goto done;
    }
    json_t *tt = json_object_get(root, "token_type");
    const char *type = "Bearer";
    if (tt != NULL) {
        if (!json_is_string(tt)) {
            mg_err_set(err, MG_ERR_UPSTREAM_5XX, "token response \"token_type\" is not a string");
            goto done;
        }
        type = json_string_value(tt);
        if (strcasecmp(type, "bearer") != 0) {
            mg_err_set(err, MG_ERR_UPSTREAM_5XX,
                       "token response \"token_type\" is \"%.40s\", not Bearer", type);
            goto done;
        }
    }
    tok->access_token = mg_xstrdup(json_string_value(at));
    tok->token_type = mg_xstrdup(type);
    tok->expires_in = expires;
    rc = MG_OK;
done:
    json_decref(root);
    return rc;
}
