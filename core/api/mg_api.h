/*
 * mg_api.h -- the wire formats moongate speaks, and the neutral shapes
 * between them.
 *
 * A client protocol (mg_api_t) is one operation in one wire format: OpenAI
 * chat completions, completions, embeddings; Anthropic messages and
 * count_tokens.  Each wire module (mg_api_openai.c, mg_api_anthropic.c) knows
 * its format in both directions:
 *   request:  parse and validate a client body; client body -> neutral
 *             request; neutral request -> upstream body;
 *   response: upstream bytes -> neutral events (decoder); neutral events ->
 *             client bytes (encoder, streaming or one final body); and the
 *             same-wire relay, which passes the upstream's bytes through with
 *             only "model" restamped while reading usage and errors.
 * Providers (core/providers/) pick a wire for each operation and add the
 * endpoint, auth and framing; the gateway (core/gateway/) routes.
 *
 * The neutral request is OpenAI's chat-completions JSON (jansson), with the
 * few extensions LiteLLM also carries in it (content-part "cache_control",
 * assistant "thinking_blocks", top-level "thinking").  The neutral response
 * is a sequence of mg_ev_t events; spend, limits and metrics read usage from
 * the same mg_usage_t whichever path a response took.
 *
 * Layer: above base and http, below providers and gateway.  Pure: no I/O.
 * Ownership: everything marked "arena" lives in the request arena; encoders
 * and decoders own nothing but their mg_buf_t scratch, freed by *_free().
 */
#ifndef MG_API_H
#define MG_API_H

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_err.h"
#include "../base/mg_json.h"
#include "../base/mg_usage.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/uio.h>

typedef enum {
    MG_OP_CHAT = 0,         /* generation from messages */
    MG_OP_COMPLETION,       /* OpenAI's legacy prompt completion */
    MG_OP_EMBEDDINGS,
    MG_OP_COUNT_TOKENS,     /* Anthropic's /v1/messages/count_tokens */
    MG_OP_RESPONSES,        /* OpenAI's Responses API (/v1/responses) */
    MG_OP__COUNT
} mg_op_t;

typedef enum {
    MG_WIRE_NONE = 0,       /* the provider cannot do this operation */
    MG_WIRE_OPENAI,
    MG_WIRE_ANTHROPIC,
    MG_WIRE_BEDROCK_CONVERSE,   /* AWS Bedrock Converse / ConverseStream (upstream only) */
    MG_WIRE_BEDROCK_INVOKE,     /* Bedrock InvokeModel[WithResponseStream], Anthropic models */
    MG_WIRE_OPENAI_RESPONSES, /* OpenAI's Responses objects and response.* events */
    MG_WIRE_GEMINI,         /* Google's generateContent (upstream side only) */
    MG_WIRE__COUNT
} mg_wire_t;

typedef enum {
    MG_API_OPENAI_CHAT = 0,
    MG_API_OPENAI_COMPLETIONS,
    MG_API_OPENAI_EMBEDDINGS,
    MG_API_ANTHROPIC_MESSAGES,
    MG_API_ANTHROPIC_COUNT_TOKENS,
    MG_API_OPENAI_RESPONSES,
    MG_API__COUNT
} mg_api_id_t;

/* A client protocol: static, immutable. */
typedef struct {
    mg_api_id_t id;
    const char *name;           /* "openai_chat" */
    mg_op_t op;
    mg_wire_t wire;
    const char *route_path;     /* the route as LiteLLM names it in messages */
    const char *required;       /* the body member that must be present */
} mg_api_t;

const mg_api_t *mg_api_get(mg_api_id_t id);
const char *mg_wire_name(mg_wire_t w);

/* ---- errors the API layer reports (sent by the gateway in the client's format) ---- */

typedef struct {
    int status;
    char type_json[64];         /* JSON text of "type": "\"invalid_request_error\"" or "null" */
    char param_json[96];        /* JSON text of "param" */
    char msg[1536];
} mg_api_err_t;

/* Fills e (type/param are plain strings or NULL = null); returns MG_ERROR. */
int mg_api_err(mg_api_err_t *e, int status, const char *type, const char *param, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));

/* ---- the client's request ---- */

#define MG_API_MAX_MEMBERS 96

typedef struct {
    const mg_api_t *api;
    const char *body;           /* borrowed: the client's body */
    size_t body_len;
    mg_json_member_t members[MG_API_MAX_MEMBERS]; /* top-level members, spans into body */
    int nmembers;
    const char *model;          /* arena: decoded "model" (NULL: absent) */
    bool stream;
    bool include_usage;         /* stream_options.include_usage */
    json_t *neutral;            /* owned: the neutral request, built once on first need */
    mg_api_err_t late;          /* a refusal that waits until the model resolved (status 0: none) */
} mg_api_req_t;

/*
 * Scans and validates the client's body for api: a JSON object with its
 * required members and well-typed common fields.  path_model (Azure-style
 * URLs) wins over the body's model.  Fills q; on a refusal fills err with
 * LiteLLM's message and returns MG_ERROR.
 */
int mg_api_parse(const mg_api_t *api, mg_arena_t *a, const char *body, size_t len,
                 const char *path_model, mg_api_req_t *q, mg_api_err_t *err);
/* What parse found wrong but LiteLLM reports only after the model resolved (an empty
 * messages list: an unknown model is still "Invalid model name"). MG_ERROR fills err. */
int mg_api_check_late(const mg_api_req_t *q, mg_api_err_t *err);
/* The last member named key (as Python's json reads duplicates), or NULL. */
const mg_json_member_t *mg_api_member(const mg_api_req_t *q, const char *key);
/* A string member decoded into the arena, or NULL. */
char *mg_api_member_str(mg_arena_t *a, const mg_json_member_t *m);
/* A number member, or dflt. */
double mg_api_member_num(const mg_json_member_t *m, double dflt);
/* Whether a top-level key is one of LiteLLM's own parameters (never forwarded). */
bool mg_api_is_litellm_param(const mg_json_member_t *m);
bool mg_api_is_litellm_param_str(const char *k);
void mg_api_req_free(mg_api_req_t *q);
/* Whether s[0..n) is well-formed UTF-8. */
bool mg_api_utf8_valid(const char *s, size_t n);
/* A member that, when present and not null, must be an integer in [min, max]. */
int mg_api_check_int(const mg_api_req_t *q, const char *key, double min, double max,
                     mg_api_err_t *err);


/* The neutral request (OpenAI chat JSON, or the embeddings body), built and cached in q. */
json_t *mg_api_neutral(mg_api_req_t *q, mg_api_err_t *err);

/*
 * /v1/messages/count_tokens without an Anthropic upstream, and the pre-call context
 * window check (enable_pre_call_checks), for any client body: an estimate, not a
 * tokenizer: the UTF-8 bytes of every text (system, messages, tool inputs and
 * results, the tool definitions as JSON) / 4, rounded up, + 3 per message,
 * + 1600 per image or document.
 */
int64_t mg_api_estimate_input_tokens(const mg_api_req_t *q);

/* ---- upstream bodies ---- */

/* Members a same-wire body carries with other values than the client's: a
 * previous_response_id decoded from the id moongate issued, the Responses API's metadata. */
typedef struct {
    int n;
    struct {
        const char *key;        /* borrowed (static or arena) */
        const char *json;       /* borrowed: the member's value as JSON text */
    } m[4];
} mg_api_subst_t;

/* Sets key's value (a second call for a key replaces it); false when all 4 slots are taken. */
bool mg_api_subst_set(mg_api_subst_t *s, const char *key, const char *json);

/* What a provider asks of the body it sends. */
typedef struct {
    const char *model;          /* upstream model; NULL: not in the body (it is in the URL) */
    bool stream;                /* the upstream call streams */
    bool drop_params;           /* drop parameters the wire cannot carry instead of refusing */
    json_t *defaults;           /* borrowed: deployment params added when the request lacks them */
    json_t *additional_drop;    /* borrowed: array of top-level names always dropped, or NULL */
    const char *provider;       /* for messages ("anthropic does not support ...") */
    const char *extra_members;  /* JSON text of members appended as they are (",\"a\":1"), or NULL */
    const char *client_model;   /* the name the client asked for (decides model-specific rules) */
    /* out, may be NULL: the answer's tool calls named json_tool_call are the content */
    bool *json_mode;
    /* out, may be NULL: anthropic-beta values the body needs (static strings, ","-joined) */
    const char **betas;
    /* the spliced body's members with other values (borrowed), or NULL */
    const mg_api_subst_t *subst;
} mg_body_opts_t;

/* A body as pieces: spans of the client's buffer and arena strings, never copied twice. */
typedef struct {
    struct iovec *iov;          /* arena */
    int niov, cap;
    size_t len;
} mg_iovs_t;

void mg_iovs_push(mg_iovs_t *v, mg_arena_t *a, const void *p, size_t n);

/*
 * The same-wire body: the client's members spliced as they are, "model"
 * replaced, nulls, LiteLLM-only and additional_drop members left out,
 * deployment defaults added, o->subst's members with their values (even one of
 * LiteLLM's names).  The pieces borrow q->body and the arena.
 */
void mg_api_splice(const mg_api_req_t *q, const mg_body_opts_t *o, mg_arena_t *a, mg_iovs_t *out);

/*
 * The body in wire w for op from the neutral request n.  Refuses (400,
 * LiteLLM's UnsupportedParamsError) a parameter the wire cannot carry unless
 * o->drop_params.  Appends to out.
 */
int mg_api_build(mg_wire_t w, mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out,
                 mg_api_err_t *err);

/* ---- neutral response events ---- */

typedef enum {
    MG_FIN_NONE = 0,
    MG_FIN_STOP,
    MG_FIN_LENGTH,
    MG_FIN_TOOL_CALLS,
    MG_FIN_CONTENT_FILTER,
    MG_FIN_FUNCTION_CALL,
} mg_finish_t;

typedef enum {
    MG_EV_START = 1,            /* a response begins: id, model, created */
    MG_EV_TEXT,                 /* choice index: a content fragment */
    MG_EV_REASONING,            /* choice index: a reasoning fragment; sig: signature fragment */
    MG_EV_REDACTED,             /* choice index: an opaque redacted reasoning block (text) */
    MG_EV_TOOL,                 /* choice index, tool: a tool call; id/name on its first event,
                                 * text: an arguments fragment */
    MG_EV_FINISH,               /* choice index finished: finish (text: the stop sequence) */
    MG_EV_USAGE,                /* the usage so far changed (read the usage struct) */
    MG_EV_ERROR,                /* the upstream failed mid-way: status, etype, text */
    MG_EV_EMBEDDING,            /* embeddings: vector number tool (the input's index), text:
                                 * the vector as a JSON array of numbers */
    MG_EV_END,                  /* the response is complete */
} mg_ev_kind_t;

typedef struct {
    mg_ev_kind_t kind;
    int index;                  /* choice */
    int tool;                   /* tool call index within the choice */
    const char *id;             /* START: response id; TOOL: call id (may be NULL) */
    size_t id_len;
    const char *name;           /* START: upstream model; TOOL: function name (may be NULL) */
    size_t name_len;
    const char *text;           /* fragment (may be NULL) */
    size_t text_len;
    const char *sig;            /* REASONING: signature fragment */
    size_t sig_len;
    int64_t created;            /* START */
    mg_finish_t finish;         /* FINISH */
    int status;                 /* ERROR */
    const char *etype;          /* ERROR: the upstream's error type, or NULL */
} mg_ev_t;

typedef void (*mg_ev_sink_fn)(void *ud, const mg_ev_t *ev);

/* A decoder: one upstream response in one wire format -> neutral events. */
typedef struct {
    mg_wire_t wire;
    mg_op_t op;
    mg_usage_t *usage;          /* borrowed: where usage accumulates */
    mg_ev_sink_fn sink;
    void *ud;
    /* wire state */
    int block_kind[64];         /* anthropic: content block index -> kind */
    int block_tool[64];         /* anthropic: content block index -> tool index */
    int ntools;
    bool json_mode;             /* tool calls named json_tool_call are content (response_format) */
    bool started;
    bool ended;
    mg_finish_t finish;
    mg_buf_t scratch;           /* owned */
} mg_dec_t;

void mg_dec_init(mg_dec_t *d, mg_wire_t w, mg_op_t op, mg_usage_t *usage, mg_ev_sink_fn sink,
                 void *ud);
/* One stream event (data is its data field).  MG_ERROR: unreadable, err says why. */
int mg_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err);
/*
 * One message of a stream whose events carry their name beside the payload (AWS
 * event-stream): mtype is its ":message-type" ("event", "exception" or "error"), name its
 * ":event-type" (an exception's ":exception-type", an error's ":error-code"), data its
 * payload (an error's ":error-message").  Wires without named events refuse (MG_ERROR).
 */
int mg_dec_event_named(mg_dec_t *d, const char *mtype, size_t mtype_len, const char *name,
                       size_t name_len, const char *data, size_t len, mg_api_err_t *err);
/* A whole non-stream body. */
int mg_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err);
void mg_dec_free(mg_dec_t *d);

/* An encoder: neutral events -> the client's wire, a stream or one final body. */
typedef struct mg_enc_tool_s mg_enc_tool_t;
typedef struct {
    const mg_api_t *api;
    bool stream;
    bool include_usage;
    const char *model;          /* borrowed: the name the client asked for */
    mg_usage_t *usage;          /* borrowed */
    mg_buf_t *out;              /* borrowed: where bytes go */
    /* state */
    char id[96];
    int64_t created;
    bool started, role_sent, finished, ended, errored;
    mg_finish_t finish[8];
    int block;                  /* anthropic: index of the open content block, -1 none */
    int block_kind;             /* anthropic: kind of the open block */
    int nblocks;
    int open_tool;              /* anthropic: tool of the open block */
    mg_buf_t text[8];           /* aggregate: content per choice (owned) */
    mg_buf_t reasoning;         /* aggregate (owned) */
    mg_buf_t signature;         /* aggregate (owned) */
    mg_buf_t redacted;          /* aggregate: redacted blocks as JSON array items (owned) */
    mg_enc_tool_t *tools;       /* aggregate: malloc array */
    int ntools, tools_cap;
    int nchoices;
    mg_buf_t embed;             /* embeddings: the data items so far, comma-joined (owned) */
    int nembed;
    bool embed_base64;          /* embeddings: vectors as base64 float32 (encoding_format) */
    /* Responses API (mg_enc_set_origin): the request the response object echoes and the
     * deployment its id names */
    const mg_api_req_t *req;    /* borrowed, or NULL */
    const char *origin_provider; /* borrowed, or NULL */
    const char *origin_model_id; /* borrowed, or NULL */
    struct mg_resp_enc_s *rx;   /* malloc: the Responses encoder's state, freed by mg_enc_free */
} mg_enc_t;

void mg_enc_init(mg_enc_t *e, const mg_api_t *api, bool stream, bool include_usage,
                 const char *model, mg_usage_t *usage, mg_buf_t *out);
void mg_enc_event(mg_enc_t *e, const mg_ev_t *ev);
/* Non-stream: writes the final body; stream: closes it (e.g. OpenAI's [DONE]). */
void mg_enc_finish(mg_enc_t *e);
void mg_enc_free(mg_enc_t *e);
/* Responses API: the client's request (for the parameters a response object echoes) and
 * the deployment the answer comes from (its provider name and id go into the response id,
 * as LiteLLM encodes them).  All borrowed; they must outlive e. */
void mg_enc_set_origin(mg_enc_t *e, const mg_api_req_t *q, const char *provider,
                       const char *model_id);

/* ---- same wire in and out ---- */

typedef struct {
    const mg_api_t *api;
    const char *model;          /* borrowed: restamped into what the client sees */
    mg_usage_t *usage;          /* borrowed */
    bool done_seen;             /* OpenAI's [DONE] went out */
    bool errored;               /* the upstream sent an error event; nothing follows it */
    bool ended;                 /* the protocol's own end event went out (anthropic message_stop) */
    const char *origin_provider; /* borrowed: Responses API, the deployment ids name (or NULL) */
    const char *origin_model_id; /* borrowed */
} mg_relay_t;

void mg_relay_init(mg_relay_t *rl, const mg_api_t *api, const char *model, mg_usage_t *usage);
/* Responses API: response ids the client sees name this deployment (borrowed strings). */
void mg_relay_set_origin(mg_relay_t *rl, const char *provider, const char *model_id);
/*
 * One upstream stream event (raw: the whole event; data: its data field or
 * NULL) -> the bytes the client gets, appended to out.
 */
void mg_relay_event(mg_relay_t *rl, const char *raw, size_t raw_len, const char *data,
                    size_t data_len, mg_buf_t *out);
/* What closes a stream that ended cleanly (OpenAI: "data: [DONE]" if none was relayed). */
void mg_relay_end(mg_relay_t *rl, mg_buf_t *out);
/*
 * A whole non-stream body: usage read, "model" restamped unless restamp is
 * false.  Returns true and fills out when it rewrote the body; false: send
 * the body as it is.
 */
bool mg_relay_body(mg_relay_t *rl, const char *body, size_t len, bool restamp, mg_buf_t *out);

/* ---- errors in each wire ---- */

/* The client's error body for api ({"error":{...}} or Anthropic's {"type":"error",...}). */
void mg_api_error_body(const mg_api_t *api, int status, const char *msg, const char *type_json,
                       const char *param_json, mg_buf_t *out);
/* A mid-stream error frame in the client's format. */
void mg_api_stream_error(const mg_api_t *api, int status, const char *msg, const char *type_json,
                         mg_buf_t *out);

/* An upstream error body, read in its wire's shape. */
typedef struct {
    char *message;              /* malloc: the upstream's message (or its raw text), never NULL */
    char *type;                 /* malloc or NULL: error type */
    char *code;                 /* malloc or NULL: error code */
    char *param;                /* malloc or NULL */
} mg_wire_err_t;

void mg_api_wire_error(mg_wire_t w, int status, const char *body, size_t len, mg_wire_err_t *out);
void mg_wire_err_free(mg_wire_err_t *e);

/*
 * A Bedrock failure in LiteLLM's terms (its BedrockException mapping): an HTTP error
 * (status, the x-amzn-errortype header's type or NULL, the body) or an exception inside a
 * stream (status 0: derived from the exception type; body: its payload).  The message is
 * LiteLLM's ("litellm.RateLimitError: BedrockException: Rate Limit Error - ...").
 */
typedef struct {
    int status;                 /* the status the client gets */
    mg_err_class_t cls;
    bool context_window, rate_limit, auth, not_found, timeout;
    char *message;              /* malloc */
} mg_bedrock_err_t;

void mg_api_bedrock_error(int status, const char *etype, size_t etype_len, const char *body,
                          size_t len, mg_bedrock_err_t *out);

/* Finish reasons as each wire spells them. */
const char *mg_finish_openai(mg_finish_t f);
mg_finish_t mg_finish_from_openai(const char *s, size_t n);

/* ---- Responses API ids (mg_api_responses.c) ---- */

/*
 * The id a client sees, as LiteLLM encodes it so that a later request can find the
 * deployment that stores the response: "resp_" + base64 of
 * "litellm:custom_llm_provider:<provider>;model_id:<model_id>;response_id:<id>".
 * Appends to out.
 */
void mg_api_resp_id_encode(const char *provider, const char *model_id, const char *id,
                           size_t id_len, mg_buf_t *out);

typedef struct {
    const char *provider;       /* arena, or NULL ("None" or absent) */
    const char *model_id;       /* arena, or NULL */
    const char *response_id;    /* arena: the upstream's own id (the input itself when not ours) */
} mg_resp_id_t;

/* MG_OK: an id in that form (provider/model_id may still be NULL); MG_DECLINED: any other
 * string, out->response_id is the input as it is. */
int mg_api_resp_id_decode(const char *id, size_t n, mg_arena_t *a, mg_resp_id_t *out);

/* ---- internals shared by the wire modules (mg_api.c) ---- */

/* Scans the top-level members of a JSON object text for model, usage and error. */
typedef struct {
    mg_json_member_t error, usage, model, type, message;
    bool has_error, has_usage, has_model, has_type, has_message;
} mg_api_top_t;

void mg_api_scan_top(const char *p, size_t n, mg_api_top_t *t);
/* Copies JSON text with the string value m (a span inside p) replaced by model. */
void mg_api_restamp(const char *p, size_t n, const mg_json_member_t *m, const char *model,
                    mg_buf_t *out);

#endif
