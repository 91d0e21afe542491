/*
 * mg_provider_mock.c -- mock_response: LiteLLM's offline answers, as a
 * provider.  It builds no request; it answers with the bytes an OpenAI
 * upstream would have sent (a chat.completion, a stream, text_completion,
 * an embedding list) or with one of LiteLLM's mock errors, and the gateway
 * treats that answer like any upstream's: same relay, same translation to
 * other client formats, same usage reading.
 */
#include "mg_provider.h"

#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mg_wire_t
mg_mock_wire(const mg_provider_t *p, const mg_deployment_t *d, mg_op_t op)
{
    (void) p;
    (void) d;
    return op == MG_OP_COUNT_TOKENS ? MG_WIRE_NONE : MG_WIRE_OPENAI;
}

static const mg_provider_ops_t mg_mock_ops = {
    .wire = mg_mock_wire,
    .local = true,
};

const mg_provider_t mg_provider_mock_row = {
    "mock", "MockException", &mg_mock_ops, NULL, {NULL}, {NULL}, false, {true, true, true, false},
    NULL,
};

/* LiteLLM's mock errors, by the exception name given as mock_response. */
static bool
mg_mock_error(const char *s, mg_uperr_t *e)
{
    if (strcmp(s, "litellm.RateLimitError") == 0) {
        mg_uperr_set(e, 429, MG_ERR_RATE_LIMITED,
                     "litellm.RateLimitError: this is a mock rate limit error");
        e->rate_limit = true;
        e->type_json = "\"throttling_error\"";
        return true;
    }
    if (strcmp(s, "litellm.ContextWindowExceededError") == 0) {
        mg_uperr_set(e, 400, MG_ERR_CONTEXT_WINDOW,
                     "litellm.ContextWindowExceededError: this is a mock context window exceeded "
                     "error");
        e->context_window = true;
        return true;
    }
    if (strcmp(s, "litellm.InternalServerError") == 0) {
        mg_uperr_set(e, 500, MG_ERR_UPSTREAM_5XX,
                     "litellm.InternalServerError: this is a mock internal server error");
        return true;
    }
    return false;
}

static int
mg_mock_choices(const mg_call_t *c)
{
    double n = 1;
    if (c->native && c->client != NULL) {
        n = mg_api_member_num(mg_api_member(c->client, "n"), 1);
    } else if (c->neutral != NULL && json_is_number(json_object_get(c->neutral, "n"))) {
        n = json_number_value(json_object_get(c->neutral, "n"));
    }
    int k = mg_clamp_int(n);
    return k < 1 || k > 128 ? 1 : k;
}

static void
mg_mock_embeddings(json_t *mock, const char *model, mg_buf_t *b)
{
    mg_buf_append_str(b, "{\"object\":\"list\",\"data\":[{\"embedding\":");
    if (json_is_array(mock)) {
        char *d = json_dumps(mock, JSON_COMPACT);
        mg_buf_append_str(b, d);
        free(d);
    } else {
        mg_buf_append(b, "[", 1);
        for (int i = 0; i < 1536; i++) {
            mg_buf_append_str(b, i ? ",0.0" : "0.0");
        }
        mg_buf_append(b, "]", 1);
    }
    mg_buf_append_str(b, ",\"index\":0,\"object\":\"embedding\"}],\"model\":");
    mg_buf_json_str(b, model, strlen(model));
    mg_buf_append_str(b, ",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":0,"
                         "\"total_tokens\":0}}");
}

/* The stream LiteLLM's mock sends: the text in slices of 3 characters, all at once. */
static void
mg_mock_stream(const mg_call_t *c, const char *text, const char *model, const char *id,
               int64_t created, mg_buf_t *b)
{
    bool cmpl = c->op == MG_OP_COMPLETION;
    size_t len = strlen(text);
    bool role_sent = false;
    for (size_t pos = 0; pos < len;) {
        size_t n = len - pos < 3 ? len - pos : 3;
        mg_buf_printf(b, "data: {\"id\":\"%s\",\"created\":%lld,\"model\":", id, (long long) created);
        mg_buf_json_str(b, model, strlen(model));
        if (cmpl) {
            mg_buf_append_str(b, ",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":");
            mg_buf_json_str(b, text + pos, n);
            mg_buf_append_str(b, "}]}\n\n");
        } else {
            mg_buf_append_str(b, ",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                                 "\"delta\":{\"content\":");
            mg_buf_json_str(b, text + pos, n);
            mg_buf_append_str(b, role_sent ? "}}]}\n\n" : ",\"role\":\"assistant\"}}]}\n\n");
        }
        role_sent = true;
        pos += n;
    }
    mg_buf_printf(b, "data: {\"id\":\"%s\",\"created\":%lld,\"model\":", id, (long long) created);
    mg_buf_json_str(b, model, strlen(model));
    if (cmpl) {
        mg_buf_append_str(b, ",\"object\":\"text_completion\",\"choices\":[{\"finish_reason\":\"stop\","
                             "\"index\":0,\"text\":\"\"}]}\n\n");
    } else {
        mg_buf_append_str(b, ",\"object\":\"chat.completion.chunk\",\"choices\":[{\"finish_reason\":"
                             "\"stop\",\"index\":0,\"delta\":{}}]}\n\n");
    }
    bool usage = c->client != NULL && c->client->include_usage;
    if (!c->native) {
        usage = true; /* a translating client encoder decides what it shows */
    }
    if (usage) {
        mg_buf_printf(b, "data: {\"id\":\"%s\",\"created\":%lld,\"model\":", id, (long long) created);
        mg_buf_json_str(b, model, strlen(model));
        mg_buf_append_str(b, ",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
                             "{\"completion_tokens\":20,\"prompt_tokens\":10,\"total_tokens\":30}}\n\n");
    }
    mg_buf_append_str(b, "data: [DONE]\n\n");
}

void
mg_provider_mock_answer(const mg_call_t *c, json_t *mock, mg_mock_answer_t *out)
{
    memset(out, 0, sizeof(*out));
    out->status = 200;
    out->ctype = "application/json";
    out->restamp = true;
    const char *s = json_string_value(mock);
    if (s != NULL && mg_mock_error(s, &out->error)) {
        out->is_error = true;
        return;
    }
    /* the name the client asked for, as LiteLLM's mock answers */
    const char *model = c->client != NULL && c->client->model != NULL ? c->client->model
                        : c->upstream_model != NULL                   ? c->upstream_model
                                                                      : "mock";
    if (c->op == MG_OP_EMBEDDINGS) {
        mg_mock_embeddings(mock, model, &out->body);
        return;
    }
    if (json_is_object(mock)) {
        char *d = json_dumps(mock, JSON_COMPACT);
        mg_buf_append_str(&out->body, d);
        free(d);
        out->restamp = false;
        return;
    }
    char *text;
    if (s != NULL) {
        text = mg_xstrdup(s);
    } else if (json_is_null(mock) || mock == NULL) {
        text = mg_xstrdup("This is a mock request");
    } else {
        text = json_dumps(mock, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    char uuid[37];
    mg_uuid4(uuid);
    int64_t created = mg_time_real_ms() / 1000;
    bool cmpl = c->op == MG_OP_COMPLETION;
    char id[64];
    snprintf(id, sizeof(id), "%s-%s", cmpl ? "cmpl" : "chatcmpl", uuid);
    if (c->stream) {
        out->ctype = "text/event-stream";
        mg_mock_stream(c, text, model, id, created, &out->body);
        free(text);
        return;
    }
    /* n choices, all the same text (LiteLLM's mock_completion) */
    int nchoices = mg_mock_choices(c);
    mg_buf_t *b = &out->body;
    mg_buf_printf(b, "{\"id\":\"%s\",\"created\":%lld,\"model\":", id, (long long) created);
    mg_buf_json_str(b, model, strlen(model));
    mg_buf_append_str(b, cmpl ? ",\"object\":\"text_completion\",\"choices\":["
                              : ",\"object\":\"chat.completion\",\"choices\":[");
    for (int i = 0; i < nchoices; i++) {
        mg_buf_printf(b, "%s{\"finish_reason\":\"stop\",\"index\":%d,", i ? "," : "", i);
        if (!cmpl) {
            mg_buf_append_str(b, "\"message\":{\"content\":");
            mg_buf_json_str(b, text, strlen(text));
            mg_buf_append_str(b, ",\"role\":\"assistant\"}}");
        } else {
            mg_buf_append_str(b, "\"text\":");
            mg_buf_json_str(b, text, strlen(text));
            mg_buf_append_str(b, "}");
        }
    }
    mg_buf_append_str(b, "],\"usage\":{\"completion_tokens\":20,\"prompt_tokens\":10,"
                         "\"total_tokens\":30}}");
    free(text);
}
