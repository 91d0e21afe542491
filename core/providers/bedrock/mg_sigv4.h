/*
 * mg_sigv4.h -- AWS Signature Version 4 (header form) over OpenSSL; computes bytes only.
 *
 * Owns nothing.  Every input is borrowed for the duration of the call; every string result,
 * and the canonicalisation's temporaries (about twice the size of the headers and query),
 * live in the caller's arena (the request arena on the request path) or in the fixed
 * arrays of mg_sigv4_out_t.  The secret access key is used only as HMAC key material:
 * it never reaches a result or an error message, and the derived keys are wiped from the
 * stack before returning.  No I/O, no global state: safe from any thread.
 *
 * Canonical URI (documented choice, checked against AWS's sources):
 *   `path` is the path exactly as it goes on the wire, already percent-encoded once by the
 *   caller (a Bedrock model id "anthropic.claude-3-haiku-20240307-v1:0" travels as
 *   ".../anthropic.claude-3-haiku-20240307-v1%3A0/converse").  For every service except
 *   S3 the canonical URI is that wire path, normalised (RFC 3986 dot segments removed,
 *   empty segments dropped, a trailing '/' kept) and then URI-encoded once more, so the
 *   "%3A" above is signed as "%253A".  This is what AWS's "Create a canonical request"
 *   page means by "each path segment must be URI-encoded twice (except for Amazon S3 which
 *   only gets URI-encoded once)", what botocore and aws-c-auth (use_double_uri_encode,
 *   should_normalize_uri_path) do for bedrock-runtime, and what bedrock-runtime's own
 *   403 message prints as "The Canonical String for this request should have been"
 *   (higress issue #2396).  Signing the singly-encoded path fails for every model id
 *   with a ':' or an ARN's '/' (tontinton/maki#212, aws-amplify-flutter#5541).
 *   MG_SIGV4_S3_PATH selects S3's rule: the wire path as it is, not normalised.  The two
 *   halves exist on their own because AWS's test suite has unnormalised cases.
 *
 * Canonical query: `query` is the query string as sent (without '?').  Each name and value
 * is percent-decoded ('+' stays a literal '+'; a '%' not followed by two hex digits stays
 * literal) and re-encoded with the unreserved set A-Z a-z 0-9 - . _ ~, so an already
 * encoded query and a raw one canonicalise the same; pairs are sorted by name, then value.
 *
 * Canonical headers: the caller lists the headers it will send and wants signed (it must
 * list `host`; it must not list x-amz-date, x-amz-content-sha256 or x-amz-security-token,
 * which the signer adds).  Names are lower-cased; values trimmed, with runs of spaces and
 * tabs collapsed to one space (inside quotes too, as the test suite's
 * get-header-value-trim shows); repeated names are joined with ',' in the given order.
 * Which to list: botocore (LiteLLM's signer) signs every header it sends except
 * connection, expect, keep-alive, proxy-authenticate, proxy-authorization, te, trailer,
 * transfer-encoding, upgrade, user-agent and x-amzn-trace-id; do the same.
 */
#ifndef MG_SIGV4_H
#define MG_SIGV4_H

#include "../../base/mg_types.h"

#include <stdint.h>
#include <sys/uio.h>

/* One header to sign, as the caller will send it.  Both strings borrowed, NUL-terminated. */
typedef struct {
    const char *name;
    const char *value;
} mg_sigv4_header_t;

/* Flags for mg_sigv4_request_t.flags */
#define MG_SIGV4_CONTENT_SHA256   0x1u /* also sign and return x-amz-content-sha256 */
#define MG_SIGV4_PATH_NO_ENCODE   0x2u /* sign the (normalised) wire path without encoding it */
#define MG_SIGV4_PATH_NO_NORMALIZE 0x4u /* keep dot segments and empty segments */
#define MG_SIGV4_S3_PATH          (MG_SIGV4_PATH_NO_ENCODE | MG_SIGV4_PATH_NO_NORMALIZE)
#define MG_SIGV4_OMIT_TOKEN       0x8u /* session token sent but not signed (few services) */

typedef struct {
    const char *method;                 /* borrowed: "POST"; upper-cased when signed */
    const char *path;                   /* borrowed: wire path, no '?'; NULL or "" is "/" */
    const char *query;                  /* borrowed: wire query without '?'; may be NULL */
    const mg_sigv4_header_t *headers;   /* borrowed: n_headers headers, must include host */
    size_t n_headers;
    const struct iovec *payload;        /* borrowed: the body in pieces, hashed, not copied */
    size_t n_payload;
    const char *region;                 /* borrowed: "us-east-1" */
    const char *service;                /* borrowed: "bedrock" */
    const char *access_key_id;          /* borrowed */
    const char *secret_access_key;      /* borrowed: secret, never copied or echoed */
    const char *session_token;          /* borrowed: secret; NULL or "" when none */
    int64_t timestamp;                  /* seconds since the epoch (UTC); passed in for tests */
    unsigned flags;                     /* MG_SIGV4_* */
} mg_sigv4_request_t;

typedef struct {
    /* header values the caller adds to the request beside its own headers */
    const char *authorization;          /* arena: "AWS4-HMAC-SHA256 Credential=..." */
    char amz_date[17];                  /* x-amz-date: "20150830T123600Z" */
    const char *content_sha256;         /* x-amz-content-sha256: payload_sha256, or NULL
                                           when MG_SIGV4_CONTENT_SHA256 was not asked */
    const char *security_token;         /* x-amz-security-token: borrowed from
                                           req->session_token, NULL when there is none */
    /* the pieces, for tests and for debugging a 403 (none of them holds a secret) */
    char payload_sha256[65];            /* lower-case hex SHA-256 of the payload */
    char signature[65];                 /* lower-case hex */
    const char *signed_headers;         /* arena: "host;x-amz-date" */
    const char *canonical_request;      /* arena */
    const char *string_to_sign;         /* arena */
} mg_sigv4_out_t;

/*
 * Signs req.  Returns MG_OK and fills *out (strings in arena a), or MG_ERROR with err:
 * MG_ERR_CONFIG for missing credentials, region or service; MG_ERR_INTERNAL for a request
 * the caller built wrongly (no host header, a header the signer owns, a CR/LF in a value,
 * a '?' in the path, a timestamp gmtime() cannot represent).  Messages name the field,
 * never a secret.
 */
int mg_sigv4_sign(const mg_sigv4_request_t *req, mg_arena_t *a, mg_sigv4_out_t *out,
                  mg_err_t *err);

/* The lower-case hex SHA-256 of the iovecs into out[65] (the payload hash). */
void mg_sigv4_payload_hash(const struct iovec *iov, size_t n, char out[65]);

#endif
