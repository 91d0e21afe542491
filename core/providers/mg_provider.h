/*
 * mg_provider.h -- the providers moongate calls, each a table of operations.
 *
 * A provider translates and never touches sockets: for one deployment it
 * says which wire format it speaks for each operation, where the endpoint is,
 * what its credentials are (and fingerprints all of them, so a rotation gets a
 * new upstream client), builds the whole upstream request (head and body, so
 * that a signature over the body can be added last), names the response
 * framing, and reads an upstream error into LiteLLM's terms.  Providers that
 * speak OpenAI's format and differ only in base URL and auth are data rows
 * sharing one set of operations (mg_provider_openai.c); Azure and Azure AI
 * (mg_provider_azure.c), Anthropic and the offline mock (mock_response) have
 * their own.
 *
 * Descriptors are static and immutable.  Per-deployment provider state, if a
 * provider needs any, hangs off mg_deployment_t.pstate and is released by
 * ops->release at snapshot free.
 */
#ifndef MG_PROVIDER_H
#define MG_PROVIDER_H

#include "../api/mg_api.h"
#include "../base/mg_buf.h"
#include "../base/mg_err.h"
#include "../base/mg_types.h"
#include "../http/mg_http_server.h"
#include "../registry/mg_registry.h"
#include "mg_token.h"

#include <stdbool.h>
#include <sys/uio.h>

typedef struct mg_provider_ops_s mg_provider_ops_t;

/* An upstream failure in LiteLLM's terms (mg_provider_error.c). */
typedef struct {
    int status;                 /* HTTP status for the client */
    mg_err_class_t cls;         /* for retry/fallback/cooldown decisions */
    const char *type_json;      /* JSON text for "type" (static, or type_buf) */
    const char *param_json;     /* JSON text for "param" (static, or param_buf) */
    char *message;              /* malloc: full LiteLLM-style message (without fallback suffix) */
    bool context_window;
    bool content_policy;
    bool not_found;
    bool auth;
    bool rate_limit;
    bool timeout;
    bool connection;
    bool local;                 /* decided here, not by the upstream: no cooldown */
    char type_buf[128];
    char param_buf[128];
    /* the upstream's own error, for clients of the same wire (Anthropic's pass-through) */
    int up_status;              /* 0: none */
    char up_type[64];           /* the upstream's error type, "" if none */
    char *up_message;           /* malloc or NULL */
    char *up_body;              /* malloc or NULL: the upstream's whole error body (its wire's
                                 * envelope), sent as it was to a client of the same wire */
} mg_uperr_t;


struct mg_provider_s {
    const char *name;                   /* LiteLLM's prefix: "openai" */
    const char *exception_name;         /* "OpenAIException" */
    const mg_provider_ops_t *ops;
    const char *default_base;           /* NULL: api_base (or env) required */
    const char *env_key[3];             /* first set wins */
    const char *env_base[3];
    bool key_required;
    bool ops_supported[MG_OP__COUNT];   /* data rows: which operations the provider has */
    const char *const *forward_headers; /* client headers it wants (lowercase), NULL-terminated */
};

typedef enum {
    MG_FRAMING_JSON = 0,                /* one JSON body */
    MG_FRAMING_SSE,                     /* text/event-stream */
    MG_FRAMING_EVENTSTREAM,             /* application/vnd.amazon.eventstream (Bedrock): binary
                                         * messages, each named by its headers (mg_dec_event_named) */
} mg_framing_t;

/* What an MG_OP_RESPONSES call does: create a response, or act on a stored one. */
typedef enum {
    MG_RESP_CREATE = 0,         /* POST /responses with the client's body */
    MG_RESP_GET,                /* GET /responses/{id} */
    MG_RESP_DELETE,             /* DELETE /responses/{id} */
    MG_RESP_INPUT_ITEMS,        /* GET /responses/{id}/input_items */
    MG_RESP_CANCEL,             /* POST /responses/{id}/cancel */
} mg_resp_action_t;

/* One upstream call, as the gateway asks a provider to build it. */
typedef struct {
    const mg_deployment_t *dep;         /* borrowed */
    mg_op_t op;
    mg_wire_t wire;                     /* the provider's wire for op (ops->wire) */
    bool stream;                        /* the client asked for a stream */
    const char *upstream_model;
    /* the body: exactly one of spliced (same wire as the client) or neutral */
    const mg_api_req_t *client;         /* borrowed: the client's request (splice source) */
    bool native;                        /* wire == the client's wire: splice */
    json_t *neutral;                    /* borrowed: the neutral request when translating */
    bool drop_params;                   /* LiteLLM's drop_params for this call */
    json_t *additional_drop;            /* borrowed: names always dropped (request's and
                                         * deployment's), NULL: the deployment's */
    const mg_http_req_t *client_http;   /* borrowed: client headers (allow-listed), may be NULL */
    mg_arena_t *arena;                  /* borrowed: the request's */
    const char *trace_headers;          /* borrowed: W3C trace context lines for this attempt
                                         * ("traceparent: ...\r\n"), added by
                                         * mg_provider_head_end(); NULL: tracing is off */
    /* out */
    mg_buf_t *head;                     /* borrowed: request line + headers + blank line */
    mg_iovs_t body;                     /* [0] is reserved for the head */
    bool json_mode;                     /* the answer's json_tool_call is the content */
    const char *betas;                  /* static: anthropic-beta values the body needs */
    /* in: what ops->prepare asked for, once obtained (NULL when it asked for nothing) */
    const char *token;                  /* borrowed, secret: a bearer token minted for dep,
                                         * valid during build; never logged */
    /* MG_OP_RESPONSES on a stored response (every action but create has no body) */
    mg_resp_action_t resp_action;
    const char *resp_id;                /* borrowed: the upstream's own response id */
    const char *resp_query;             /* borrowed: the client's query string (no '?'), or NULL */
    const mg_api_subst_t *subst;        /* borrowed: spliced members with other values, or NULL */
} mg_call_t;

struct mg_provider_ops_s {
    /* The wire the provider speaks for op on d; MG_WIRE_NONE: op unsupported. */
    mg_wire_t (*wire)(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op);
    /* The base URL (no trailing '/'), or NULL when none is configured. */
    const char *(*base)(const mg_provider_t *p, const mg_deployment_t *d);
    /* Adds every credential the provider would use for d (also those from the
     * environment) to a fingerprint text. */
    void (*fingerprint)(const mg_provider_t *p, const mg_deployment_t *d, mg_buf_t *fp);
    /* Per-deployment state (parsed credentials, file contents) made when a snapshot
     * attaches d, before the fingerprint, kept in d->pstate; release frees it when the
     * snapshot goes.  attach never fails the snapshot: a bad credential is kept as an
     * error in pstate and refused at request time.  Both may be NULL. */
    void (*attach)(const mg_provider_t *p, mg_deployment_t *d);
    void (*release)(const mg_provider_t *p, mg_deployment_t *d);
    /*
     * The credential step, before build (NULL: none, the fast path).  MG_OK: nothing to
     * obtain, build runs now.  MG_AGAIN: the call needs a token: *need says for which
     * credential and how to mint one (mg_token.h); the gateway obtains it (from the
     * worker's cache, or by waiting on the one fetch in flight) and runs build with
     * c->token set.  MG_ERROR: err, mapped like a build error (class auth for a
     * credential that cannot be used; the message never holds the secret).
     * need->key must be c->dep->cred_hash: a rotation changes it, so the new credential
     * never finds the old token, and the gateway drops the tokens of keys the current
     * snapshot no longer has.  need->body and need->ud are used only inside the call
     * that starts a fetch (state hanging off d->pstate is fine).
     */
    int (*prepare)(const mg_provider_t *p, mg_call_t *c, mg_token_src_t *need, mg_err_t *err);
    /* Builds the request (c->head and c->body).  Errors carry a class and status. */
    int (*build)(const mg_provider_t *p, mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr);
    /* Framing of a successful response. */
    mg_framing_t (*framing)(const mg_provider_t *p, const mg_call_t *c, const char *ctype);
    /* Maps an upstream HTTP error (NULL: the shared OpenAI-style classification). */
    void (*map_error)(const mg_provider_t *p, int status, const char *body, size_t len,
                      mg_uperr_t *out);
    /* Optional, instead of map_error: a provider whose error type travels in a response
     * header (Bedrock's x-amzn-errortype) names it here, lowercase, and gets its value
     * (NULL when absent) with the body. */
    const char *error_header;
    void (*map_error_hdr)(const mg_provider_t *p, int status, const char *hdr, const char *body,
                          size_t len, mg_uperr_t *out);
    /* Answers offline (mock_response); NULL for real providers. */
    bool local;
};

/* Maps an upstream HTTP error response (status, body in wire's shape) for provider p
 * (NULL: an unknown provider named provider_name). */
void mg_provider_error_http(const mg_provider_t *p, const char *provider_name, mg_wire_t wire,
                            int status, const char *body, size_t body_len, mg_uperr_t *out);
/* The same with the value of p->ops->error_header from the error response (NULL: none). */
void mg_provider_error_http_hdr(const mg_provider_t *p, const char *provider_name,
                                mg_wire_t wire, int status, const char *hdr, const char *body,
                                size_t body_len, mg_uperr_t *out);
/* Maps a transport failure (connect, reset, timeout) or a build error. */
void mg_provider_error_transport(const mg_provider_t *p, const char *provider_name,
                                 const mg_err_t *err, const mg_deployment_t *d, mg_uperr_t *out);
void mg_uperr_free(mg_uperr_t *e);
/* Fills e with a fresh message (type_json/param_json "null"). */
void mg_uperr_set(mg_uperr_t *e, int status, mg_err_class_t cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the offline mock (mock_response) ---- */

/* What the mock answers: an upstream-like response in OpenAI's wire, or an error. */
typedef struct {
    bool is_error;
    mg_uperr_t error;           /* when is_error */
    int status;
    const char *ctype;          /* static */
    mg_buf_t body;              /* owned: free with mg_buf_free */
    bool restamp;               /* "model" may be restamped (false for a verbatim object) */
} mg_mock_answer_t;

/* The mock's answer to c for mock (the deployment's or the request's mock_response). */
void mg_provider_mock_answer(const mg_call_t *c, json_t *mock, mg_mock_answer_t *out);

/* NULL when moongate does not speak to this provider. */
const mg_provider_t *mg_provider_find(const char *name);
/* The offline mock provider (mock_response). */
const mg_provider_t *mg_provider_mock(void);

/* The deployment's base URL (api_base, else env, else default), without a trailing '/'. */
const char *mg_provider_base(const mg_provider_t *p, const mg_deployment_t *d);
/* The deployment's key (api_key, else env); may be NULL. */
const char *mg_provider_key(const mg_provider_t *p, const mg_deployment_t *d);
/* The credential fingerprint of d (sha256 hex of every credential and endpoint field). */
void mg_provider_cred_hash(const mg_provider_t *p, const mg_deployment_t *d, char out[65]);

/* ---- helpers shared by providers (mg_provider.c) ---- */

/* MG_OK when v (may be NULL) can be a header value: no CR, LF or NUL.  Else MG_ERROR with an
 * internal-class err naming the header, never the value (the second line of defence: a value
 * that got past config checks, e.g. from the environment, never splits a head). */
int mg_provider_value_ok(const char *header, const char *v, mg_err_t *err);

/* "POST <base path><suffix> HTTP/1.1\r\nhost: <host>\r\n" + content-type, accept, user-agent. */
void mg_provider_head_start(mg_buf_t *out, const char *base, const char *suffix,
                            const char *query);
/* The same with another method ("GET", "DELETE"). */
void mg_provider_head_method(mg_buf_t *out, const char *method, const char *base,
                             const char *suffix, const char *query);
/* The path of a Responses API call after the API root: "/responses[/<id>[/input_items|
 * /cancel]]", the id percent-encoded; and the method it takes. */
void mg_provider_responses_path(const mg_call_t *c, mg_buf_t *path);
const char *mg_provider_responses_method(const mg_call_t *c);
/* A call without a body (c->body holds only the reserved head slot). */
void mg_provider_no_body(mg_call_t *c);
/* Percent-encodes what cannot appear raw in a path segment. */
void mg_provider_path_segment(mg_buf_t *out, const char *s);
/* Appends the deployment's extra_headers (never framing headers). */
void mg_provider_extra_headers(const mg_deployment_t *d, mg_buf_t *out);
/* Appends the client headers p wants (its allow-list), after the deployment's own. */
void mg_provider_client_headers(const mg_provider_t *p, const mg_call_t *c, mg_buf_t *out);
/* The body for c in wire c->wire: spliced when native, else built from c->neutral.
 * extra_members: JSON text appended to the object (",\"k\":v") or NULL. */
int mg_provider_body(mg_call_t *c, const char *model, const char *extra_members,
                     mg_api_err_t *aerr);
/* Ends the head (the trace context lines, content-length, blank line) and puts it in
 * c->body.iov[0].  Every provider's head ends here, after any signature: the trace
 * context is never signed, so it can differ per attempt. */
void mg_provider_head_end(mg_call_t *c);

/* ---- shared by the OpenAI-wire providers (mg_provider_openai.c) ---- */

/* "/chat/completions", "/completions", "/embeddings", "/responses". */
const char *mg_provider_openai_path(mg_op_t op);
/* The base URL, or the error LiteLLM gives without one (class bad_request). */
int mg_provider_openai_base(const mg_provider_t *p, const mg_deployment_t *d, const char **base,
                            mg_err_t *err);
/* The body (spliced or built), errors carried in err with the status. */
int mg_provider_openai_body(mg_call_t *c, mg_err_t *err, mg_api_err_t *aerr);
/* SSE when the content type says so, else one JSON body. */
mg_framing_t mg_provider_openai_framing(const mg_provider_t *p, const mg_call_t *c,
                                        const char *ctype);

#endif
