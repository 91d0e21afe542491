/*
 * mg_oauth.h -- the OAuth 2.0 pieces the token-minting providers share: form encoding,
 * the Entra ID (Azure AD) client-credentials request, and the token response parser used
 * for both Google's and Entra's token endpoints.  Computes bytes only; no I/O.
 *
 * Owns: an mg_oauth_token_t owns its strings (mg_oauth_token_free()).  Everything else is
 * borrowed for the call or appended to the caller's mg_buf_t.  Secrets (client secrets,
 * access tokens) are never copied into an error message.  No global state.
 *
 * Form encoding follows Python's urllib.parse.quote_plus (what LiteLLM's clients send):
 * A-Z a-z 0-9 and "_.-~" as they are, a space as '+', every other byte as %XX.
 */
#ifndef MG_OAUTH_H
#define MG_OAUTH_H

#include "../../base/mg_buf.h"
#include "../../base/mg_types.h"

#include <stdint.h>

/* The scope Azure OpenAI tokens are minted for (LiteLLM's default). */
#define MG_OAUTH_ENTRA_SCOPE_COGNITIVE "https://cognitiveservices.azure.com/.default"
/* Entra's public-cloud authority; the token URL is <authority>/<tenant>/oauth2/v2.0/token. */
#define MG_OAUTH_ENTRA_AUTHORITY "https://login.microsoftonline.com"

/* Appends s[0..n) form-encoded. */
void mg_oauth_form_encode(mg_buf_t *out, const char *s, size_t n);

/* Appends "name=value", both form-encoded, with a '&' first unless out is empty. */
void mg_oauth_form_add(mg_buf_t *out, const char *name, const char *value);

/*
 * Appends the client-credentials body
 *   grant_type=client_credentials&client_id=..&client_secret=..&scope=..
 * Returns MG_OK, or MG_ERROR (class config) naming the empty or missing argument; out is
 * unchanged on error.
 */
int mg_oauth_entra_body(const char *client_id, const char *client_secret, const char *scope,
                        mg_buf_t *out, mg_err_t *err);

/*
 * Appends the Entra v2 token URL for tenant_id under authority (NULL: the public cloud),
 * e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.  A tenant is a GUID
 * or a domain: anything but letters, digits, '-' and '.' is refused (MG_ERROR, config).
 */
int mg_oauth_entra_token_url(const char *authority, const char *tenant_id, mg_buf_t *out,
                             mg_err_t *err);

typedef struct {
    char *access_token;     /* malloc: a secret; never log it */
    char *token_type;       /* malloc: "Bearer" */
    int64_t expires_in;     /* seconds from the response's arrival, > 0 */
} mg_oauth_token_t;

/*
 * Parses a token endpoint's JSON answer ({access_token, expires_in, token_type}; expires_in
 * may be a number or, as Entra's v1 endpoint sends it, a numeric string; a missing
 * token_type means Bearer).  Returns MG_OK and fills *tok (owned by the caller, free with
 * mg_oauth_token_free()), or MG_ERROR with err: class auth when the endpoint answered an
 * OAuth error ("token endpoint refused: invalid_grant: Invalid JWT Signature."), class
 * upstream_5xx when the answer is not JSON or lacks a usable field (the message names the
 * field; it never quotes the body or the token).  *tok is zeroed on error.
 */
int mg_oauth_token_parse(const char *body, size_t len, mg_oauth_token_t *tok, mg_err_t *err);

/* Frees what tok owns and zeroes it (the token's bytes are wiped first); NULL-safe. */
void mg_oauth_token_free(mg_oauth_token_t *tok);

#endif
