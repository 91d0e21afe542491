/*
 * mg_google_auth.h -- Google service-account credentials: parse the JSON key file, build
 * the RS256-signed JWT assertion and the token request body that trades it for an access
 * token (RFC 7523 jwt-bearer grant).  Computes bytes only; no I/O, no clock (the caller
 * passes iat), no cache (the provider keeps the token, per credential).
 *
 * Owns: an mg_google_sa_t owns its strings and the parsed RSA key (single owner,
 * mg_google_auth_sa_parse() / mg_google_auth_sa_destroy()).  Immutable once parsed, so it
 * may be shared read-only by whoever holds it.  The private key is never copied into a
 * result or an error message.  Parse the token response with mg_oauth_token_parse().
 */
#ifndef MG_GOOGLE_AUTH_H
#define MG_GOOGLE_AUTH_H

#include "../../base/mg_buf.h"
#include "../../base/mg_types.h"

#include <stdint.h>

#define MG_GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"
#define MG_GOOGLE_SCOPE_CLOUD "https://www.googleapis.com/auth/cloud-platform"
#define MG_GOOGLE_JWT_LIFETIME 3600 /* seconds; Google's maximum for an assertion */

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

typedef struct {
    char *project_id;           /* malloc; NULL when the file has none */
    char *private_key_id;       /* malloc; NULL when none (the JWT header then has no kid) */
    char *client_email;         /* malloc */
    char *token_uri;            /* malloc */
    struct evp_pkey_st *pkey;   /* owned: the RSA private key from "private_key" */
} mg_google_sa_t;

/*
 * Parses a service-account key file (its JSON text, len bytes, borrowed).  Required:
 * "type" == "service_account", "client_email", "private_key" (PEM, RSA, unencrypted, as
 * Google issues it) and "token_uri" -- the fields google-auth itself requires;
 * "project_id" and "private_key_id" are optional strings.  Returns a new object owned by
 * the caller, or NULL with err (class config) naming the missing or bad field; the
 * message never quotes the key or the JSON around it.
 */
mg_google_sa_t *mg_google_auth_sa_parse(const char *json, size_t len, mg_err_t *err);

/* Frees sa and everything it owns; NULL-safe. */
void mg_google_auth_sa_destroy(mg_google_sa_t *sa);

/*
 * Appends the signed assertion b64url(header) "." b64url(claims) "." b64url(signature)
 * (base64url without padding) to out.  header = {"alg":"RS256","typ":"JWT","kid":...},
 * claims = {"iss":client_email,"scope":scope,"aud":aud,"iat":iat,"exp":iat+3600}; aud
 * NULL means sa->token_uri.  The signature is RSASSA-PKCS1-v1_5 with SHA-256 (OpenSSL
 * EVP).  Returns MG_OK, or MG_ERROR with err (class config for an empty scope, internal
 * when OpenSSL fails); out is unchanged on error.
 */
int mg_google_auth_jwt(const mg_google_sa_t *sa, const char *scope, const char *aud, int64_t iat,
                       mg_buf_t *out, mg_err_t *err);

/*
 * Appends the token request body (application/x-www-form-urlencoded)
 *   grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<jwt>
 * for a POST to aud (or sa->token_uri).  Codes as mg_google_auth_jwt().
 */
int mg_google_auth_token_body(const mg_google_sa_t *sa, const char *scope, const char *aud,
                              int64_t iat, mg_buf_t *out, mg_err_t *err);

#endif
