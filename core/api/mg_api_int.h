/*
 * mg_api_int.h -- what each wire module (mg_api_openai.c, mg_api_anthropic.c)
 * provides to mg_api.c.  Private to core/api/.
 */
#ifndef MG_API_INT_H
#define MG_API_INT_H

#include "mg_api.h"

typedef struct {
    /* op-specific checks after the common parse (required members and their types) */
    int (*validate)(mg_api_req_t *q, mg_arena_t *a, mg_api_err_t *err);
    /* client body -> neutral request (new reference) */
    json_t *(*neutral)(mg_api_req_t *q, mg_api_err_t *err);
    /* neutral request -> this wire's body */
    int (*build)(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out, mg_api_err_t *err);
    int (*dec_event)(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err);
    int (*dec_body)(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err);
    /* named stream events (AWS event-stream); NULL: the wire has none */
    int (*dec_named)(mg_dec_t *d, const char *mtype, size_t mtype_len, const char *name,
                     size_t name_len, const char *data, size_t len, mg_api_err_t *err);
    void (*enc_event)(mg_enc_t *e, const mg_ev_t *ev);
    void (*enc_finish)(mg_enc_t *e);
    void (*relay_event)(mg_relay_t *rl, const char *raw, size_t raw_len, const char *data,
                        size_t data_len, mg_buf_t *out);
    void (*relay_end)(mg_relay_t *rl, mg_buf_t *out);
    bool (*relay_body)(mg_relay_t *rl, const char *body, size_t len, bool restamp, mg_buf_t *out);
    void (*error_body)(int status, const char *msg, const char *type_json, const char *param_json,
                       mg_buf_t *out);
    void (*stream_error)(int status, const char *msg, const char *type_json, mg_buf_t *out);
    void (*wire_error)(int status, const char *body, size_t len, mg_wire_err_t *out);
} mg_wire_ops_t;

extern const mg_wire_ops_t mg_wire_openai;
extern const mg_wire_ops_t mg_wire_anthropic;
extern const mg_wire_ops_t mg_wire_bedrock_converse;   /* upstream side only */
extern const mg_wire_ops_t mg_wire_bedrock_invoke;     /* upstream side only */

/* The OpenAI parameters LiteLLM checks against a provider's supported list
 * (get_optional_params' defaults), NULL-terminated. */
extern const char *const mg_api_openai_params[];

/* reasoning_effort as a thinking budget (mg_api_anthropic.c): 0 for "none", -1 with err
 * for a value LiteLLM does not map. */
int mg_an_thinking_budget(const char *effort, mg_api_err_t *err);
extern const mg_wire_ops_t mg_wire_responses;

/* Frees the Responses encoder's state of e (mg_api_responses.c); NULL-safe. */
void mg_api_responses_enc_free(mg_enc_t *e);
extern const mg_wire_ops_t mg_wire_gemini;     /* upstream side only: build, decode, errors */

/* Aggregated tool call of an encoder (non-stream bodies). */
struct mg_enc_tool_s {
    int index;                  /* choice */
    int tool;                   /* index within the choice */
    mg_buf_t id, name, args;    /* owned */
};

/* The aggregate slot for (choice, tool), created on first use. */
mg_enc_tool_t *mg_enc_tool(mg_enc_t *e, int index, int tool);

/* A usage object as OpenAI spells it ({"prompt_tokens":..,...}), appended to out. */
void mg_api_usage_openai(const mg_usage_t *u, mg_buf_t *out);

#endif
