/*
 * test_translate.c -- core/api/ (mg_api.h): the translations between OpenAI's and
 * Anthropic's wire formats, both directions, through the public API only.
 *
 *   requests:  Anthropic body -> neutral (mg_api_parse + mg_api_neutral, LiteLLM's adapter);
 *              neutral -> Anthropic body (mg_api_build, LiteLLM's AnthropicConfig) and
 *              neutral -> OpenAI body (the /v1/messages-to-OpenAI leg);
 *   responses: decoders (mg_dec_*) on the Anthropic fixture bodies and streams and on OpenAI
 *              chunk sequences, feeding the encoders (mg_enc_*) of the other wire;
 *   relay:     the same-wire pass-through (mg_relay_*): model restamped, usage read;
 *   errors:    both envelopes, mid-stream error frames, upstream error bodies;
 *   count_tokens: the documented estimate (mg_api_estimate_input_tokens).
 *
 * Every output is parsed with jansson and compared as JSON with what LiteLLM produces
 * (/work/notes/anthropic-litellm.md names the LiteLLM function each rule comes from), or
 * with moongate's documented difference where the project chose one (response id kept,
 * content_filter <-> refusal, reasoning_effort budgets for every model, no "type":"custom"
 * on tools, max_tokens 4096 + budget, compact tool-call arguments).
 *
 * Fixtures: tests/fixtures/providers/anthropic/messages/ (MG_TEST_SOURCE_DIR points at the
 * source tree).  Checks that document a gateway bug are behind MG_T_KNOWN_BUG.
 */
#include "mg_test.h"

#include "api/mg_api.h"
#include "base/mg_arena.h"
#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "http/mg_sse.h"

#include <jansson.h>

/* ---- fixtures ---- */

/* A fixture file's text (malloc), or NULL (a failed check says which). */
static char *
t_fixture(const char *rel)
{
    const char *src = getenv("MG_TEST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/providers/anthropic/messages/%s",
             src != NULL && src[0] != '\0' ? src : ".", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        MG_T_FAIL_AT("cannot open fixture %s (set MG_TEST_SOURCE_DIR)", path);
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        mg_buf_append(&b, chunk, n);
    }
    fclose(f);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* ---- JSON comparison ---- */

/*
 * Compares got with want.  subset: objects in want may omit keys got has (recursively);
 * arrays always have the same length.  Numbers compare by value (1 == 1.0).  On a
 * difference writes the path and both values into why.
 */
static bool
t_json_cmp(json_t *got, json_t *want, bool subset, const char *path, char *why, size_t whylen)
{
    if (json_is_number(got) && json_is_number(want)) {
        if (json_number_value(got) == json_number_value(want)) {
            return true;
        }
    } else if (json_is_object(want) && json_is_object(got)) {
        if (!subset && json_object_size(got) != json_object_size(want)) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            snprintf(why, whylen, "at %s: keys differ: got %.1500s, expected %.1500s",
                     path[0] ? path : "$", g, w);
            free(g);
            free(w);
            return false;
        }
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            json_t *gv = json_object_get(got, k);
            if (gv == NULL) {
                snprintf(why, whylen, "at %s: missing (expected %s)", sub,
                         json_is_null(v) ? "null" : "a value");
                return false;
            }
            if (!t_json_cmp(gv, v, subset, sub, why, whylen)) {
                return false;
            }
        }
        return true;
    } else if (json_is_array(want) && json_is_array(got)) {
        if (json_array_size(got) == json_array_size(want)) {
            size_t i;
            json_t *v;
            json_array_foreach(want, i, v)
            {
                char sub[512];
                snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
                if (!t_json_cmp(json_array_get(got, i), v, subset, sub, why, whylen)) {
                    return false;
                }
            }
            return true;
        }
    } else if (json_equal(got, want)) {
        return true;
    }
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                  : mg_xstrdup("(nothing)");
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    snprintf(why, whylen, "at %s: got %.1500s, expected %.1500s", path[0] ? path : "$", g, w);
    free(g);
    free(w);
    return false;
}

static bool
t_json_match(json_t *got, const char *want_text, bool subset, char *why, size_t whylen)
{
    json_error_t je;
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, &je);
    if (want == NULL) {
        snprintf(why, whylen, "the expectation is not JSON (%s): %s", je.text, want_text);
        return false;
    }
    if (got == NULL) {
        snprintf(why, whylen, "got nothing, expected %s", want_text);
        json_decref(want);
        return false;
    }
    bool ok = t_json_cmp(got, want, subset, "", why, whylen);
    json_decref(want);
    return ok;
}

/* got (json_t *) equals the JSON text want, exactly / as a subset. */
#define CHECK_JSON(got, want) T_CHECK_JSON_AT(got, want, false)
#define CHECK_JSON_SUB(got, want) T_CHECK_JSON_AT(got, want, true)
#define T_CHECK_JSON_AT(got, want, subset)                                                         \
    do {                                                                                           \
        char mg_t_why[4096];                                                                       \
        if (t_json_match((got), (want), (subset), mg_t_why, sizeof(mg_t_why))) {                   \
            mg_t_passed++;                                                                         \
        } else {                                                                                   \
            MG_T_FAIL_AT("%s: %s", #got, mg_t_why);                                                \
        }                                                                                          \
    } while (0)

static const char *
t_jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- requests ---- */

typedef struct {
    mg_arena_t arena;
    mg_api_req_t q;
    mg_api_err_t err;
    int rc;          /* mg_api_parse's */
    json_t *neutral; /* borrowed: q's */
} t_req_t;

/* Parses body (which must outlive t) as api's client body and builds its neutral request. */
static void
t_req(t_req_t *t, mg_api_id_t api, const char *body)
{
    memset(t, 0, sizeof(*t));
    mg_arena_init(&t->arena, 4096);
    t->rc = mg_api_parse(mg_api_get(api), &t->arena, body, body ? strlen(body) : 0, NULL, &t->q,
                         &t->err);
    if (t->rc == MG_OK) {
        t->neutral = mg_api_neutral(&t->q, &t->err);
    }
}

static void
t_req_free(t_req_t *t)
{
    mg_api_req_free(&t->q);
    mg_arena_destroy(&t->arena);
}

/* The opts most tests use for an anthropic/ deployment (upstream model claude-up). */
static mg_body_opts_t
t_opts_anthropic(void)
{
    mg_body_opts_t o;
    memset(&o, 0, sizeof(o));
    o.model = "claude-up";
    o.provider = "anthropic";
    o.client_model = "claude";
    return o;
}

static mg_body_opts_t
t_opts_openai(void)
{
    mg_body_opts_t o;
    memset(&o, 0, sizeof(o));
    o.model = "gpt-up";
    o.provider = "openai";
    o.client_model = "gpt";
    return o;
}

typedef struct {
    int rc;
    mg_api_err_t err;
    json_t *body; /* owned: the built body, parsed; NULL on a refusal */
    char *text;   /* malloc: the built body's text */
    bool json_mode;
    const char *betas;
} t_built_t;

/* A client body of api -> neutral -> a body in wire w. */
static void
t_build(t_built_t *b, mg_api_id_t api, const char *client_body, mg_wire_t w, mg_body_opts_t o)
{
    memset(b, 0, sizeof(*b));
    t_req_t t;
    t_req(&t, api, client_body);
    if (t.rc != MG_OK || t.neutral == NULL) {
        b->rc = MG_ERROR;
        b->err = t.err;
        MG_T_FAIL_AT("the client body was refused before the build (%d): %s", t.err.status,
                     t.err.msg);
        t_req_free(&t);
        return;
    }
    o.json_mode = &b->json_mode;
    o.betas = &b->betas;
    mg_buf_t out = MG_BUF_INIT;
    b->rc = mg_api_build(w, MG_OP_CHAT, t.neutral, &o, &out, &b->err);
    if (b->rc == MG_OK) {
        b->text = mg_xstrdup(mg_buf_cstr(&out));
        json_error_t je;
        b->body = json_loads(b->text, 0, &je);
        if (b->body == NULL) {
            MG_T_FAIL_AT("the built body is not JSON (%s): %s", je.text, b->text);
        }
    }
    mg_buf_free(&out);
    t_req_free(&t);
}

static void
t_built_free(t_built_t *b)
{
    json_decref(b->body);
    free(b->text);
    memset(b, 0, sizeof(*b));
}

/* An OpenAI chat body -> the Anthropic body (anthropic/ deployment, upstream claude-up). */
static void
t_o2a(t_built_t *b, const char *openai_body, const mg_body_opts_t *o)
{
    t_build(b, MG_API_OPENAI_CHAT, openai_body, MG_WIRE_ANTHROPIC, o ? *o : t_opts_anthropic());
}

/* An Anthropic messages body -> the OpenAI body (openai/ deployment, upstream gpt-up). */
static void
t_a2o(t_built_t *b, const char *anthropic_body, const mg_body_opts_t *o)
{
    t_build(b, MG_API_ANTHROPIC_MESSAGES, anthropic_body, MG_WIRE_OPENAI, o ? *o : t_opts_openai());
}

/* ---- responses: decoder -> encoder ---- */

#define T_MAX_FRAMES 256

/* The frames of an SSE text: event name (or NULL) and data (parsed JSON, or NULL for [DONE]). */
typedef struct {
    int n;
    char *event[T_MAX_FRAMES];  /* malloc or NULL */
    json_t *data[T_MAX_FRAMES]; /* owned or NULL */
    bool done[T_MAX_FRAMES];    /* the data was [DONE] */
    bool bad;                   /* a data field that is neither JSON nor [DONE] */
    char *raw[T_MAX_FRAMES];    /* malloc: the whole event */
} t_frames_t;

static bool
t_frames_on(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    t_frames_t *f = ud;
    if (f->n >= T_MAX_FRAMES) {
        f->bad = true;
        return false;
    }
    int i = f->n++;
    f->raw[i] = mg_xstrndup(raw, raw_len);
    const char *ev = NULL;
    if (raw_len > 7 && memcmp(f->raw[i], "event: ", 7) == 0) {
        ev = f->raw[i] + 7;
    } else {
        const char *p = strstr(f->raw[i], "\nevent: ");
        ev = p != NULL ? p + 8 : NULL;
    }
    if (ev != NULL) {
        size_t l = strcspn(ev, "\r\n");
        f->event[i] = mg_xstrndup(ev, l);
    }
    if (data == NULL) {
        return true;
    }
    if (data_len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        f->done[i] = true;
        return true;
    }
    f->data[i] = json_loadb(data, data_len, 0, NULL);
    if (f->data[i] == NULL) {
        f->bad = true;
    }
    return true;
}

static void
t_frames_parse(t_frames_t *f, const char *text, size_t len)
{
    memset(f, 0, sizeof(*f));
    mg_sse_t s;
    memset(&s, 0, sizeof(s));
    if (mg_sse_feed(&s, text, len, t_frames_on, f) != MG_OK) {
        f->bad = true;
    }
    if (mg_sse_pending(&s) != 0) {
        f->bad = true; /* a half event at the end */
    }
    mg_sse_free(&s);
}

static void
t_frames_free(t_frames_t *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->event[i]);
        free(f->raw[i]);
        json_decref(f->data[i]);
    }
    memset(f, 0, sizeof(*f));
}

/* "message_start,content_block_start,..." : the data types of an Anthropic stream, and
 * a check that every event line names the same type as its data. */
static void
t_frames_types(const t_frames_t *f, mg_buf_t *out, bool *names_match)
{
    *names_match = true;
    for (int i = 0; i < f->n; i++) {
        const char *t = t_jstr(f->data[i], "type");
        if (i > 0) {
            mg_buf_append(out, ",", 1);
        }
        mg_buf_append_str(out, t ? t : "?");
        if (t == NULL || f->event[i] == NULL || strcmp(t, f->event[i]) != 0) {
            *names_match = false;
        }
    }
}

typedef struct {
    mg_enc_t enc;
    mg_dec_t dec;
    mg_usage_t usage;
    mg_buf_t out;
    int rc;
    mg_api_err_t err;
    int nev[MG_EV_END + 1]; /* neutral events seen, by kind */
} t_xl_t;

static void
t_xl_sink(void *ud, const mg_ev_t *ev)
{
    t_xl_t *x = ud;
    if (ev->kind >= 0 && ev->kind <= MG_EV_END) {
        x->nev[ev->kind]++;
    }
    mg_enc_event(&x->enc, ev);
}

static bool
t_xl_on_sse(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    (void) raw;
    (void) raw_len;
    t_xl_t *x = ud;
    if (data == NULL) {
        return true;
    }
    if (mg_dec_event(&x->dec, data, data_len, &x->err) != MG_OK) {
        x->rc = MG_ERROR;
        return false;
    }
    return true;
}

/*
 * Upstream bytes in wire `up` (an SSE text when up_stream, else a body) translated for a
 * client of api `client` (streaming or not), as mg_proxy.c drives a decoder and an encoder.
 */
static void
t_xl(t_xl_t *x, mg_wire_t up, const char *in, bool up_stream, mg_api_id_t client, bool stream,
     bool include_usage, bool json_mode)
{
    memset(x, 0, sizeof(*x));
    mg_enc_init(&x->enc, mg_api_get(client), stream, include_usage, "claude-alias", &x->usage,
                &x->out);
    mg_dec_init(&x->dec, up, MG_OP_CHAT, &x->usage, t_xl_sink, x);
    x->dec.json_mode = json_mode;
    x->rc = MG_OK;
    if (in == NULL) {
        x->rc = MG_ERROR;
        return;
    }
    if (up_stream) {
        mg_sse_t s;
        memset(&s, 0, sizeof(s));
        if (mg_sse_feed(&s, in, strlen(in), t_xl_on_sse, x) != MG_OK) {
            x->rc = MG_ERROR;
        }
        mg_sse_free(&s);
        if (!x->dec.ended) {
            mg_ev_t end = {.kind = MG_EV_END};
            mg_enc_event(&x->enc, &end);
        }
    } else {
        x->rc = mg_dec_body(&x->dec, in, strlen(in), &x->err);
    }
    mg_enc_finish(&x->enc);
}

static void
t_xl_free(t_xl_t *x)
{
    mg_enc_free(&x->enc);
    mg_dec_free(&x->dec);
    mg_buf_free(&x->out);
}

static json_t *
t_xl_json(t_xl_t *x)
{
    json_error_t je;
    json_t *j = json_loadb(mg_buf_head(&x->out), mg_buf_len(&x->out), 0, &je);
    if (j == NULL) {
        MG_T_FAIL_AT("the encoded body is not JSON (%s): %.*s", je.text, (int) mg_buf_len(&x->out),
                     mg_buf_len(&x->out) ? mg_buf_head(&x->out) : "");
    }
    return j;
}

/* The OpenAI chunks of a stream: content, reasoning and per-tool arguments concatenated. */
typedef struct {
    mg_buf_t content, reasoning, signature;
    mg_buf_t args[4];
    char ids[4][64];
    char names[4][64];
    int tool_headers[4]; /* chunks that carried an id for the tool */
    int nchunks;         /* JSON chunks */
    int content_chunks;
    int finish_chunks;
    char finish[32];
    int usage_chunks;
    int usage_at; /* index of the usage chunk */
    int finish_at;
    bool done_last; /* [DONE] is the last frame */
    int ndone;
    bool role_first; /* the first chunk carries role assistant */
    bool ids_same;   /* every chunk has the same id */
    char id[128];
    bool models_ok;  /* every chunk has model claude-alias */
    bool objects_ok; /* every chunk is a chat.completion.chunk */
    json_t *error;   /* borrowed: an error frame's "error" */
    int error_at;
} t_chunks_t;

static void
t_chunks(t_chunks_t *c, const t_frames_t *f)
{
    memset(c, 0, sizeof(*c));
    c->ids_same = c->models_ok = c->objects_ok = true;
    c->usage_at = c->finish_at = c->error_at = -1;
    for (int i = 0; i < f->n; i++) {
        if (f->done[i]) {
            c->ndone++;
            c->done_last = i == f->n - 1;
            continue;
        }
        json_t *ch = f->data[i];
        if (json_object_get(ch, "error") != NULL) {
            c->error = json_object_get(ch, "error");
            c->error_at = i;
            continue;
        }
        if (c->nchunks == 0) {
            snprintf(c->id, sizeof(c->id), "%s", t_jstr(ch, "id") ? t_jstr(ch, "id") : "");
            json_t *d0 =
                json_object_get(json_array_get(json_object_get(ch, "choices"), 0), "delta");
            c->role_first =
                t_jstr(d0, "role") != NULL && strcmp(t_jstr(d0, "role"), "assistant") == 0;
        } else if (t_jstr(ch, "id") == NULL || strcmp(t_jstr(ch, "id"), c->id) != 0) {
            c->ids_same = false;
        }
        c->nchunks++;
        if (t_jstr(ch, "model") == NULL || strcmp(t_jstr(ch, "model"), "claude-alias") != 0) {
            c->models_ok = false;
        }
        if (t_jstr(ch, "object") == NULL ||
            strcmp(t_jstr(ch, "object"), "chat.completion.chunk") != 0) {
            c->objects_ok = false;
        }
        if (json_object_get(ch, "usage") != NULL && !json_is_null(json_object_get(ch, "usage"))) {
            c->usage_chunks++;
            c->usage_at = i;
        }
        size_t k;
        json_t *choice;
        json_array_foreach(json_object_get(ch, "choices"), k, choice)
        {
            json_t *d = json_object_get(choice, "delta");
            const char *s = t_jstr(d, "content");
            if (s != NULL && s[0] != '\0') {
                mg_buf_append_str(&c->content, s);
                c->content_chunks++;
            }
            s = t_jstr(d, "reasoning_content");
            if (s != NULL) {
                mg_buf_append_str(&c->reasoning, s);
            }
            json_t *tb = json_array_get(json_object_get(d, "thinking_blocks"), 0);
            if (t_jstr(tb, "signature") != NULL) {
                mg_buf_append_str(&c->signature, t_jstr(tb, "signature"));
            }
            size_t m;
            json_t *tc;
            json_array_foreach(json_object_get(d, "tool_calls"), m, tc)
            {
                json_int_t ti = json_integer_value(json_object_get(tc, "index"));
                if (ti < 0 || ti >= 4) {
                    continue;
                }
                if (t_jstr(tc, "id") != NULL) {
                    c->tool_headers[ti]++;
                    snprintf(c->ids[ti], sizeof(c->ids[ti]), "%s", t_jstr(tc, "id"));
                }
                json_t *fn = json_object_get(tc, "function");
                if (t_jstr(fn, "name") != NULL) {
                    snprintf(c->names[ti], sizeof(c->names[ti]), "%s", t_jstr(fn, "name"));
                }
                if (t_jstr(fn, "arguments") != NULL) {
                    mg_buf_append_str(&c->args[ti], t_jstr(fn, "arguments"));
                }
            }
            const char *fr = t_jstr(choice, "finish_reason");
            if (fr != NULL) {
                c->finish_chunks++;
                c->finish_at = i;
                snprintf(c->finish, sizeof(c->finish), "%s", fr);
            }
        }
    }
}

static void
t_chunks_free(t_chunks_t *c)
{
    mg_buf_free(&c->content);
    mg_buf_free(&c->reasoning);
    mg_buf_free(&c->signature);
    for (int i = 0; i < 4; i++) {
        mg_buf_free(&c->args[i]);
    }
}

/* ======================================================================== */
/* 1. Anthropic body -> neutral (LiteLLM's translate_anthropic_to_openai)    */
/* ======================================================================== */

static void
test_neutral_from_fixtures(void)
{
    t_req_t t;
    char *body;

    MG_T_CASE("neutral: system string, sampling, stop_sequences, metadata.user_id");
    body = t_fixture("requests/multi_turn_system.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(t.neutral,
               "{\"model\":\"claude-sonnet-4-5-20250929\",\"messages\":[{\"role\":\"system\","
               "\"content\":\"You are a concise assistant. Answer in plain "
               "English.\"},{\"role\":\"user\",\"content\":\"Hello "
               "there.\"},{\"role\":\"assistant\",\"content\":\"Hi, I'm Claude. How can I help "
               "you?\"},{\"role\":\"user\",\"content\":\"Can you explain LLMs in plain "
               "English?\"}],\"max_tokens\":1024,\"temperature\":0.7,\"stop\":[\"\\n\\nUser:\"],"
               "\"user\":\"user-42\"}");
    CHECK(t.q.stream == false);
    t_req_free(&t);
    free(body);

    MG_T_CASE("neutral: system blocks keep cache_control; block content stays a part list");
    body = t_fixture("requests/system_blocks.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON_SUB(
        t.neutral,
        "{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are an "
        "assistant that answers questions about the attached "
        "policy.\"},{\"type\":\"text\",\"text\":\"Policy: refunds are accepted within 30 days of "
        "purchase.\",\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"Can I return a purchase after three weeks?\"}]}]}");
    CHECK(json_object_get(t.neutral, "system") == NULL);
    t_req_free(&t);
    free(body);

    MG_T_CASE("neutral: tools, tool_use -> tool_calls (compact arguments), tool_result -> tool");
    body = t_fixture("requests/tool_result.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(t.neutral,
               "{\"model\":\"claude-sonnet-4-5-20250929\",\"max_tokens\":1024,\"tools\":[{\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Get the "
               "current weather in a given "
               "location\",\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":{"
               "\"type\":\"string\",\"description\":\"The city and state, e.g. San Francisco, "
               "CA\"},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"],"
               "\"description\":\"The unit of "
               "temperature\"}},\"required\":[\"location\"]}}}],\"messages\":[{\"role\":\"user\","
               "\"content\":\"What's the weather like in San "
               "Francisco?\"},{\"role\":\"assistant\",\"content\":\"I'll check the current weather "
               "in San Francisco for "
               "you.\",\"tool_calls\":[{\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{"
               "\\\"location\\\":\\\"San Francisco, "
               "CA\\\",\\\"unit\\\":\\\"celsius\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
               "\"toolu_01A09q90qw90lq917835lq9\",\"content\":\"15 degrees, partly cloudy\"}]}");
    {
        json_t *call = json_array_get(
            json_object_get(json_array_get(json_object_get(t.neutral, "messages"), 1),
                            "tool_calls"),
            0);
        CHECK_STR(t_jstr(json_object_get(call, "function"), "arguments"),
                  "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}");
    }
    t_req_free(&t);
    free(body);

    MG_T_CASE("neutral: a forced tool_choice with disable_parallel_tool_use");
    body = t_fixture("requests/tool_choice_forced.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(json_object_get(t.neutral, "tool_choice"),
               "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}");
    CHECK(json_is_false(json_object_get(t.neutral, "parallel_tool_calls")));
    t_req_free(&t);
    free(body);

    MG_T_CASE("neutral: a stream request and tool_choice auto");
    body = t_fixture("requests/tool_use_stream.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK(t.q.stream);
    CHECK_STR(t_jstr(t.neutral, "tool_choice"), "auto");
    t_req_free(&t);
    free(body);

    MG_T_CASE("neutral: image blocks -> image_url parts (base64 as a data URL, url as is)");
    body = t_fixture("requests/image_base64.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(json_object_get(t.neutral, "messages"),
               "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
               "\"data:image/"
               "png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+"
               "M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\"}},{\"type\":\"text\",\"text\":\"Describe "
               "this image.\"}]}]");
    t_req_free(&t);
    free(body);
    body = t_fixture("requests/image_url.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(json_object_get(t.neutral, "messages"),
               "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
               "\"https://upload.wikimedia.org/wikipedia/commons/a/a7/"
               "Camponotus_flavomarginatus_ant.jpg\"}},{\"type\":\"text\",\"text\":\"Describe this "
               "image.\"}]}]");
    t_req_free(&t);
    free(body);

    MG_T_CASE(
        "neutral: thinking passes as the extension; signed thinking blocks are thinking_blocks");
    body = t_fixture("requests/thinking_multi_turn.json");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(json_object_get(t.neutral, "thinking"),
               "{\"type\":\"enabled\",\"budget_tokens\":10000}");
    CHECK_JSON(json_array_get(json_object_get(t.neutral, "messages"), 1),
               "{\"role\":\"assistant\",\"content\":\"27 * 453 = "
               "12,231.\",\"reasoning_content\":\"27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = "
               "12231.\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"27 * 453 = 27 "
               "* 400 + 27 * 53 = 10800 + 1431 = "
               "12231.\",\"signature\":"
               "\"EuYBCkQYAiJAVf1mOHJOdgkGhZkt5p5uZ5cLLB0yhVx1JbSJGPmHhxEhuEOyYrxkIt2pYkWzxEW0zYJXi"
               "0K2A7tcZ9QY7OLzEhDZJyTRqWZ9HrLMW8y9N7NhGgx1KQZmRRUV3W1Q7sQiMG4mDoPX2d2z8AuNkFpPkR7a"
               "DrIkQWUmS6m8EVL3YLfhT7ZLJxuj2h2j6N4I\"}]}");
    t_req_free(&t);
    free(body);

    MG_T_CASE("neutral: count_tokens needs no max_tokens");
    body = t_fixture("requests/count_tokens.json");
    t_req(&t, MG_API_ANTHROPIC_COUNT_TOKENS, body);
    CHECK_INT(t.rc, MG_OK);
    t_req_free(&t);
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, body);
    CHECK_INT(t.rc, MG_ERROR);
    t_req_free(&t);
    free(body);
}

static void
test_neutral_inline(void)
{
    t_req_t t;

    MG_T_CASE("neutral: tool_choice any -> required, none and auto kept");
    static const char *const choices[][2] = {
        {"{\"type\":\"any\"}", "\"required\""},
        {"{\"type\":\"none\"}", "\"none\""},
        {"{\"type\":\"auto\"}", "\"auto\""},
    };
    for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
        char *b = NULL;
        if (asprintf(&b,
                     "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                     "\"content\":\"x\"}],\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":"
                     "\"object\"}}],\"tool_choice\":%s}",
                     choices[i][0]) < 0) {
            abort();
        }
        t_req(&t, MG_API_ANTHROPIC_MESSAGES, b);
        CHECK_INT(t.rc, MG_OK);
        CHECK_JSON(json_object_get(t.neutral, "tool_choice"), choices[i][1]);
        CHECK(json_object_get(t.neutral, "parallel_tool_calls") == NULL);
        t_req_free(&t);
        free(b);
    }

    MG_T_CASE(
        "neutral: a user turn's tool results come first, then its other content (LiteLLM order)");
    const char *turn =
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"go\"},{"
        "\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\","
        "\"input\":{}},{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"b\",\"input\":{\"k\":[1,2]}}"
        "]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
        "\"content\":\"one\"},{\"type\":\"text\",\"text\":\"and "
        "now?\"},{\"type\":\"tool_result\",\"tool_use_id\":\"t2\",\"is_error\":true,\"content\":[{"
        "\"type\":\"text\",\"text\":\"x\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
        "\"media_type\":\"image/gif\",\"data\":\"R0lG\"}}]}]}]}";
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, turn);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(
        json_object_get(t.neutral, "messages"),
        "[{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":null,\"tool_"
        "calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":"
        "\"{}\"}},{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":"
        "\"{\\\"k\\\":[1,2]}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"one\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"t2\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}"
        ",{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/"
        "gif;base64,R0lG\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"and "
        "now?\"}]}]");
    t_req_free(&t);

    MG_T_CASE("neutral: nulls and Anthropic-only fields are not carried; top_k is; metadata only "
              "user_id");
    const char *misc =
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"temperature\":null,\"top_p\":null,\"top_k\":5,\"container\":\"c1\",\"service_tier\":"
        "\"auto\",\"metadata\":{\"user_id\":\"u-9\",\"other\":1},\"stop_sequences\":[],\"system\":"
        "\"\",\"mock_response\":\"hello\",\"num_retries\":1}";
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, misc);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(t.neutral, "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                          "\"content\":\"x\"}],\"top_k\":5,\"user\":\"u-9\"}");
    t_req_free(&t);

    MG_T_CASE("neutral: output_format / output_config.format -> response_format json_schema");
    const char *of1 = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"x\"}],\"output_format\":{\"type\":\"json_schema\",\"schema\":{"
                      "\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}";
    const char *of2 =
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\","
        "\"properties\":{\"a\":{\"type\":\"string\"}}}}}}";
    const char *ofs[] = {of1, of2};
    for (int i = 0; i < 2; i++) {
        t_req(&t, MG_API_ANTHROPIC_MESSAGES, ofs[i]);
        CHECK_INT(t.rc, MG_OK);
        json_t *rf = json_object_get(t.neutral, "response_format");
        CHECK_JSON_SUB(rf, "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"structured_"
                           "output\",\"strict\":true}}");
        CHECK(json_object_get(t.neutral, "output_format") == NULL);
        CHECK(json_object_get(t.neutral, "output_config") == NULL);
        {
            /* a regression test (a bug the first version had): /v1/messages -> OpenAI: a strict
            response_format schema lacks additionalProperties:false and required (LiteLLM adds both)
            */
            /* LiteLLM adapters/transformation.py translate_anthropic_output_format_to_openai ->
             * _add_additional_properties_false: every object with properties gets
             * additionalProperties:false and required = all its keys (OpenAI strict mode). */
            CHECK_JSON(json_object_get(json_object_get(rf, "json_schema"), "schema"),
                       "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
                       "\"additionalProperties\":false,\"required\":[\"a\"]}");
        }
        t_req_free(&t);
    }

    MG_T_CASE("neutral: system list and a mid-turn system message");
    const char *sys = "{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"text\",\"text\":"
                      "\"S1\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
                      "\"system\",\"content\":\"S2\"},{\"role\":\"user\",\"content\":\"y\"}]}";
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, sys);
    CHECK_INT(t.rc, MG_OK);
    CHECK_JSON(json_object_get(t.neutral, "messages"),
               "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"S1\"}]},{\"role\":"
               "\"user\",\"content\":\"x\"},{\"role\":\"system\",\"content\":\"S2\"},{\"role\":"
               "\"user\",\"content\":\"y\"}]");
    t_req_free(&t);

    MG_T_CASE("neutral: an assistant turn with nothing to say is dropped");
    const char *empty =
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{"
        "\"role\":\"assistant\",\"content\":[]},{\"role\":\"user\",\"content\":\"y\"}]}";
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, empty);
    CHECK_INT(t.rc, MG_OK);
    CHECK_INT(json_array_size(json_object_get(t.neutral, "messages")), 2);
    t_req_free(&t);
}

static void
test_neutral_refusals(void)
{
    t_req_t t;
    static const struct {
        const char *body;
        const char *param;
        const char *msg;
    } cases[] = {
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens",
         "max_tokens: Field required"},
        {"{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model",
         "model: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5}", "messages", "messages: Field required"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":\"hi\"}", "messages",
         "messages: Input should be a valid list"},
        {"{\"model\":\"m\",\"max_tokens\":\"100\",\"messages\":[]}", "max_tokens",
         "max_tokens: Input should be a valid integer"},
        {"{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[]}", "max_tokens",
         "max_tokens: Input should be a valid integer"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"stream\":\"yes\",\"messages\":[]}", "stream",
         "stream: Input should be a valid boolean"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        MG_T_CASE(cases[i].msg);
        t_req(&t, MG_API_ANTHROPIC_MESSAGES, cases[i].body);
        CHECK_INT(t.rc, MG_ERROR);
        CHECK_INT(t.err.status, 400);
        CHECK_STR(t.err.type_json, "\"invalid_request_error\"");
        char pj[96];
        snprintf(pj, sizeof(pj), "\"%s\"", cases[i].param);
        CHECK_STR(t.err.param_json, pj);
        CHECK_STR(t.err.msg, cases[i].msg);
        t_req_free(&t);
    }
    MG_T_CASE("neutral: a body that is not JSON");
    t_req(&t, MG_API_ANTHROPIC_MESSAGES, "{\"model\":\"m\",");
    CHECK_INT(t.rc, MG_ERROR);
    CHECK_INT(t.err.status, 400);
    CHECK_STR(t.err.type_json, "\"invalid_request_error\"");
    CHECK(strncmp(t.err.msg, "Invalid JSON payload", 20) == 0, "%s", t.err.msg);
    t_req_free(&t);
}

/* ======================================================================== */
/* 2. neutral -> Anthropic body (LiteLLM's AnthropicConfig)                  */
/* ======================================================================== */

static void
test_anthropic_body_example(void)
{
    t_built_t b;
    MG_T_CASE("OpenAI -> Anthropic: LiteLLM's worked example (anthropic-litellm.md 1.9)");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
          "brief\"},{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":"
          "\"\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
          "\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_"
          "1\",\"content\":\"42\"},{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":"
          "\"43\"}],\"stop\":\"END\",\"user\":\"u1\",\"tools\":[{\"type\":\"function\","
          "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{"
          "\"type\":\"integer\"}}}}}],\"tool_choice\":\"required\",\"parallel_tool_calls\":false}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(b.body,
               "{\"model\":\"claude-up\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"text\",\"text\":\"hi\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_"
               "use\",\"id\":\"call_1\",\"name\":\"f\",\"input\":{\"a\":1}}]},{\"role\":\"user\","
               "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":"
               "\"42\"},{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":\"43\"}]}]"
               ",\"system\":[{\"type\":\"text\",\"text\":\"Be "
               "brief\"}],\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u1\"},\"tools\":"
               "[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"a\":{"
               "\"type\":\"integer\"}}}}],\"tool_choice\":{\"type\":\"any\",\"disable_parallel_"
               "tool_use\":true},\"max_tokens\":4096}");
    CHECK(b.json_mode == false);
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: consecutive user-side messages merge into one user turn");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
          "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":"
          "\"ephemeral\"}}]},{\"role\":\"assistant\",\"content\":\"c\",\"tool_calls\":[{\"id\":"
          "\"x1\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},{"
          "\"role\":\"tool\",\"tool_call_id\":\"x1\",\"content\":[{\"type\":\"text\",\"text\":"
          "\"r\"}],\"cache_control\":{\"type\":\"ephemeral\"}},{\"role\":\"user\",\"content\":"
          "\"thanks\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"g\"}}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(
        json_object_get(b.body, "messages"),
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
        "\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"assistant\","
        "\"content\":[{\"type\":\"text\",\"text\":\"c\"},{\"type\":\"tool_use\",\"id\":\"x1\","
        "\"name\":\"g\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"x1\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}],\"cache_control\":"
        "{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"thanks\"}]}]");
    CHECK_JSON(json_object_get(b.body, "tools"),
               "[{\"name\":\"g\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: system messages anywhere become the system list");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"one\",\"cache_"
          "control\":{\"type\":\"ephemeral\"}},{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
          "\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"two\"},{\"type\":\"text\","
          "\"text\":\"\"}]},{\"role\":\"system\",\"content\":\"\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(b.body, "system"),
               "[{\"type\":\"text\",\"text\":\"one\",\"cache_control\":{\"type\":\"ephemeral\"}},{"
               "\"type\":\"text\",\"text\":\"two\"}]");
    CHECK_JSON(json_object_get(b.body, "messages"),
               "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: only system messages are refused");
    t_o2a(&b, "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_INT(b.err.status, 400);
    CHECK_CONTAINS(b.err.msg, "Anthropic requires at least one non-system message");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: an unknown role is refused");
    t_o2a(&b, "{\"model\":\"claude\",\"messages\":[{\"role\":\"robot\",\"content\":\"s\"}]}", NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_INT(b.err.status, 400);
    CHECK_CONTAINS(b.err.msg, "Invalid Message passed in");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: a final assistant turn loses trailing whitespace");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
          "\"assistant\",\"content\":\"Sure, \\n\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_array_get(json_object_get(b.body, "messages"), 1),
               "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Sure,\"}]}");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: tool history without tools gets LiteLLM's dummy tool");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
          "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
          "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"q\\\":\\\"v\\\"}\"}}]},{\"role\":"
          "\"tool\",\"tool_call_id\":\"c\",\"content\":\"ok\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(b.body, "tools"),
               "[{\"name\":\"dummy_tool\",\"description\":\"This is a dummy tool "
               "call\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    CHECK_JSON(json_array_get(json_object_get(b.body, "messages"), 1),
               "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"c\",\"name\":"
               "\"f\",\"input\":{\"q\":\"v\"}}]}");
    t_built_free(&b);
}

static void
test_anthropic_body_tool_args(void)
{
    t_built_t b;
    static const char *const bad_args[] = {"{not json", "", "{\"a\":1"};
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
        MG_T_CASE("OpenAI -> Anthropic: tool-call arguments that are not JSON are refused (LiteLLM "
                  "raises)");
        json_t *args = json_string(bad_args[i]);
        char *as = json_dumps(args, JSON_ENCODE_ANY);
        char *body = NULL;
        if (asprintf(&body,
                     "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{"
                     "\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
                     "\"function\":{\"name\":\"f\",\"arguments\":%s}}]},{\"role\":\"tool\",\"tool_"
                     "call_id\":\"c\",\"content\":\"ok\"}]}",
                     as) < 0) {
            abort();
        }
        t_o2a(&b, body, NULL);
        CHECK_INT(b.rc, MG_ERROR);
        CHECK_INT(b.err.status, 400);
        CHECK(strncmp(b.err.msg, "litellm.BadRequestError: AnthropicException - ", 46) == 0, "%s",
              b.err.msg);
        t_built_free(&b);
        free(body);
        free(as);
        json_decref(args);
    }
}

static void
test_anthropic_body_images(void)
{
    t_built_t b;
    MG_T_CASE(
        "OpenAI -> Anthropic: data URLs -> base64 blocks, URLs -> url sources, PDF -> document");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
          "\"text\":\"what?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/"
          "png;base64,iVBORw0KGgo=\"}},{\"type\":\"image_url\",\"image_url\":\"https://example.com/"
          "cat.jpg\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/"
          "dog.png\",\"detail\":\"high\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:"
          "application/pdf;base64,JVBERi0=\"}}]}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(b.body, "messages"),
               "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what?\"},{\"type\":"
               "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/"
               "png\",\"data\":\"iVBORw0KGgo=\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\","
               "\"url\":\"https://example.com/"
               "cat.jpg\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://"
               "example.com/"
               "dog.png\"}},{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":"
               "\"application/pdf\",\"data\":\"JVBERi0=\"}}]}]");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: a malformed data URL is refused with LiteLLM's text");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_"
          "url\",\"image_url\":{\"url\":\"data:image/png,AAAA\"}}]}]}",
          NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_INT(b.err.status, 400);
    CHECK_CONTAINS(b.err.msg, "Image url not in expected format. Example Expected input - "
                              "\"image_url\": \"data:image/jpeg;base64,{base64_image}\"");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: an image in a tool result");
    t_o2a(&b,
          "{\"model\":\"claude\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"shot\"}"
          "}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"tool_"
          "calls\":[{\"id\":\"s1\",\"type\":\"function\",\"function\":{\"name\":\"shot\","
          "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"s1\",\"content\":[{"
          "\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/\"}}]}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_array_get(json_object_get(b.body, "messages"), 2),
               "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"s1\","
               "\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
               "\"image/jpeg\",\"data\":\"/9j/\"}}]}]}");
    t_built_free(&b);
}

static void
test_anthropic_body_tools(void)
{
    t_built_t b;
    MG_T_CASE("OpenAI -> Anthropic: tool schemas keep LiteLLM's keys only; no \"type\":\"custom\"");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
          "\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"does "
          "f\",\"parameters\":{\"$schema\":\"http://json-schema.org/draft-07/"
          "schema#\",\"title\":\"F\",\"description\":\"gone\",\"type\":\"object\",\"properties\":{"
          "\"a\":{\"type\":\"string\",\"title\":\"kept "
          "inside\"}},\"required\":[\"a\"],\"additionalProperties\":false,\"$defs\":{\"D\":{"
          "\"type\":\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"g\"}},{"
          "\"type\":\"function\",\"function\":{\"name\":\"h\",\"parameters\":{\"type\":\"string\"}}"
          ",\"cache_control\":{\"type\":\"ephemeral\"}}],\"tool_choice\":{\"type\":\"function\","
          "\"function\":{\"name\":\"g\"}}}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(b.body, "tools"),
               "[{\"name\":\"f\",\"description\":\"does "
               "f\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
               "\"string\",\"title\":\"kept "
               "inside\"}},\"required\":[\"a\"],\"additionalProperties\":false,\"$defs\":{\"D\":{"
               "\"type\":\"string\"}}}},{\"name\":\"g\",\"input_schema\":{\"type\":\"object\","
               "\"properties\":{}}},{\"name\":\"h\",\"input_schema\":{\"type\":\"object\","
               "\"properties\":{}},\"cache_control\":{\"type\":\"ephemeral\"}}]");
    CHECK_JSON(json_object_get(b.body, "tool_choice"), "{\"type\":\"tool\",\"name\":\"g\"}");
    t_built_free(&b);

    static const struct {
        const char *extra;
        const char *choice; /* expected tool_choice JSON, or NULL: absent */
    } choices[] = {
        {"\"tool_choice\":\"auto\"", "{\"type\":\"auto\"}"},
        {"\"tool_choice\":\"none\"", "{\"type\":\"none\"}"},
        {"\"tool_choice\":\"required\"", "{\"type\":\"any\"}"},
        {"\"tool_choice\":\"auto\",\"parallel_tool_calls\":true",
         "{\"type\":\"auto\",\"disable_parallel_tool_use\":false}"},
        {"\"tool_choice\":\"none\",\"parallel_tool_calls\":false", "{\"type\":\"none\"}"},
        {"\"parallel_tool_calls\":false", "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}"},
        {"\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"parallel_tool_"
         "calls\":false",
         "{\"type\":\"tool\",\"name\":\"f\",\"disable_parallel_tool_use\":true}"},
        {"\"temperature\":0.1", NULL},
    };
    for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
        MG_T_CASE("OpenAI -> Anthropic: tool_choice and parallel_tool_calls (LiteLLM's "
                  "_map_tool_choice)");
        char *body = NULL;
        if (asprintf(&body,
                     "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],%s}",
                     choices[i].extra) < 0) {
            abort();
        }
        t_o2a(&b, body, NULL);
        CHECK_INT(b.rc, MG_OK);
        if (choices[i].choice == NULL) {
            CHECK(json_object_get(b.body, "tool_choice") == NULL, "%s", b.text);
        } else {
            CHECK_JSON(json_object_get(b.body, "tool_choice"), choices[i].choice);
        }
        CHECK_INT(json_array_size(json_object_get(b.body, "tools")), 1);
        CHECK(json_object_get(b.body, "parallel_tool_calls") == NULL);
        t_built_free(&b);
        free(body);
    }

    MG_T_CASE("OpenAI -> Anthropic: an unknown tool type is refused");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
          "\"type\":\"retrieval\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_INT(b.err.status, 400);
    CHECK_CONTAINS(b.err.msg, "Unsupported tool type: retrieval");
    t_built_free(&b);
}

static void
test_anthropic_body_params(void)
{
    t_built_t b;
    mg_body_opts_t o;
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char *body = NULL;

    MG_T_CASE("OpenAI -> Anthropic: max_tokens default 4096; max_completion_tokens; rounding");
    t_o2a(&b, "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(b.body, "{\"model\":\"claude-up\",\"messages\":[{\"role\":\"user\",\"content\":[{"
                       "\"type\":\"text\",\"text\":\"x\"}]}],\"max_tokens\":4096}");
    t_built_free(&b);
    t_o2a(&b,
          "{\"model\":\"claude\",\"max_completion_tokens\":300,\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")), 300);
    CHECK(json_object_get(b.body, "max_completion_tokens") == NULL);
    t_built_free(&b);
    t_o2a(&b,
          "{\"model\":\"claude\",\"max_tokens\":100.0,\"messages\":[{\"role\":\"user\",\"content\":"
          "\"x\"}]}",
          NULL);
    /* 100.6 is refused before the build (issue 15: an integer, as OpenAI's API wants); an
     * integral 100.0 goes out as Anthropic's integer */
    CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")), 100);
    CHECK(json_is_integer(json_object_get(b.body, "max_tokens")));
    t_built_free(&b);

    static const struct {
        const char *effort;
        int budget;
    } efforts[] = {{"minimal", 1024}, {"low", 1024},   {"medium", 2048},
                   {"high", 4096},    {"xhigh", 8192}, {"max", 16384}};
    for (size_t i = 0; i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        MG_T_CASE(
            "OpenAI -> Anthropic: reasoning_effort -> a thinking budget; max_tokens 4096 + budget");
        free(body);
        if (asprintf(&body, "{\"model\":\"claude\",%s,\"reasoning_effort\":\"%s\"}", msgs,
                     efforts[i].effort) < 0) {
            abort();
        }
        t_o2a(&b, body, NULL);
        CHECK_INT(b.rc, MG_OK);
        char want[160];
        snprintf(want, sizeof(want), "{\"type\":\"enabled\",\"budget_tokens\":%d}",
                 efforts[i].budget);
        CHECK_JSON(json_object_get(b.body, "thinking"), want);
        CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")),
                  4096 + efforts[i].budget);
        CHECK(json_object_get(b.body, "reasoning_effort") == NULL);
        t_built_free(&b);
    }
    MG_T_CASE(
        "OpenAI -> Anthropic: reasoning_effort none; a given max_tokens wins; thinking as is");
    t_o2a(&b,
          "{\"model\":\"claude\",\"reasoning_effort\":\"none\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "thinking") == NULL);
    CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")), 4096);
    t_built_free(&b);
    t_o2a(&b,
          "{\"model\":\"claude\",\"reasoning_effort\":\"high\",\"max_tokens\":20000,\"messages\":[{"
          "\"role\":\"user\",\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")), 20000);
    CHECK_JSON(json_object_get(b.body, "thinking"),
               "{\"type\":\"enabled\",\"budget_tokens\":4096}");
    t_built_free(&b);
    t_o2a(&b,
          "{\"model\":\"claude\",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2000},"
          "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          NULL);
    CHECK_JSON(json_object_get(b.body, "thinking"),
               "{\"type\":\"enabled\",\"budget_tokens\":2000}");
    CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")), 6096);
    t_built_free(&b);
    MG_T_CASE("OpenAI -> Anthropic: an unknown reasoning_effort is refused");
    t_o2a(&b,
          "{\"model\":\"claude\",\"reasoning_effort\":\"extreme\",\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_INT(b.err.status, 400);
    CHECK_CONTAINS(b.err.msg, "Unmapped reasoning effort: 'extreme'. Must be one of: 'minimal', "
                              "'low', 'medium', 'high', 'xhigh', 'max', 'none'.");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: stop -> stop_sequences; temperature, top_p, top_k; stream");
    o = t_opts_anthropic();
    o.stream = true;
    t_o2a(&b,
          "{\"model\":\"claude\",\"stop\":[\"a\",\"b\"],\"temperature\":0.25,\"top_p\":0.5,\"top_"
          "k\":7,\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{"
          "\"role\":\"user\",\"content\":\"x\"}]}",
          &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(b.body,
               "{\"model\":\"claude-up\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"text\",\"text\":\"x\"}]}],\"stop_sequences\":[\"a\",\"b\"],\"temperature\":0.25,"
               "\"top_p\":0.5,\"top_k\":7,\"max_tokens\":4096,\"stream\":true}");
    t_built_free(&b);

    static const struct {
        const char *user;
        bool kept;
    } users[] = {{"u1", true},
                 {"user_12345678", true},
                 {"alice@example.com", false},
                 {"+1 (555) 123-4567", false},
                 {"5551234567", false}};
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        MG_T_CASE(
            "OpenAI -> Anthropic: user -> metadata.user_id unless an email or a phone number");
        free(body);
        if (asprintf(&body, "{\"model\":\"claude\",%s,\"user\":\"%s\"}", msgs, users[i].user) < 0) {
            abort();
        }
        t_o2a(&b, body, NULL);
        CHECK_INT(b.rc, MG_OK);
        if (users[i].kept) {
            char want[128];
            snprintf(want, sizeof(want), "{\"user_id\":\"%s\"}", users[i].user);
            CHECK_JSON(json_object_get(b.body, "metadata"), want);
        } else {
            CHECK(json_object_get(b.body, "metadata") == NULL, "%s: %s", users[i].user, b.text);
        }
        CHECK(json_object_get(b.body, "user") == NULL);
        t_built_free(&b);
    }

    MG_T_CASE("OpenAI -> Anthropic: nulls are never forwarded, nor refused");
    t_o2a(&b,
          "{\"model\":\"claude\",\"temperature\":null,\"seed\":null,\"stop\":null,\"n\":null,"
          "\"encoding_format\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK(b.text != NULL && strstr(b.text, "null") == NULL, "%s", b.text ? b.text : "");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: LiteLLM's own parameters never reach the body");
    t_o2a(&b,
          "{\"model\":\"claude\",\"metadata\":{\"tag\":\"x\"},\"mock_response\":\"m\",\"num_"
          "retries\":2,\"fallbacks\":[\"z\"],\"drop_params\":true,\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(b.body, "{\"model\":\"claude-up\",\"messages\":[{\"role\":\"user\",\"content\":[{"
                       "\"type\":\"text\",\"text\":\"x\"}]}],\"max_tokens\":4096}");
    t_built_free(&b);
    free(body);
}

static void
test_anthropic_body_unsupported(void)
{
    t_built_t b;
    char *body = NULL;
    static const char *const unsupported[] = {
        "\"seed\":1",
        "\"n\":2",
        "\"frequency_penalty\":0.5",
        "\"presence_penalty\":0.5",
        "\"logit_bias\":{\"50256\":-100}",
        "\"logprobs\":true",
        "\"top_logprobs\":2",
    };
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        MG_T_CASE("OpenAI -> Anthropic: an OpenAI parameter Anthropic lacks is refused "
                  "(UnsupportedParamsError)");
        free(body);
        if (asprintf(
                &body,
                "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}",
                unsupported[i]) < 0) {
            abort();
        }
        t_o2a(&b, body, NULL);
        CHECK_INT(b.rc, MG_ERROR);
        CHECK_INT(b.err.status, 400);
        char name[64];
        snprintf(name, sizeof(name), "['%.*s']",
                 (int) (strchr(unsupported[i] + 1, '"') - unsupported[i] - 1), unsupported[i] + 1);
        CHECK_CONTAINS(b.err.msg, name);
        t_built_free(&b);

        MG_T_CASE("OpenAI -> Anthropic: drop_params drops it silently");
        mg_body_opts_t o = t_opts_anthropic();
        o.drop_params = true;
        t_o2a(&b, body, &o);
        CHECK_INT(b.rc, MG_OK);
        CHECK_JSON(b.body, "{\"model\":\"claude-up\",\"messages\":[{\"role\":\"user\",\"content\":["
                           "{\"type\":\"text\",\"text\":\"x\"}]}],\"max_tokens\":4096}");
        t_built_free(&b);
    }

    MG_T_CASE("OpenAI -> Anthropic: LiteLLM's exact UnsupportedParamsError text");
    t_o2a(&b,
          "{\"model\":\"claude\",\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_STR(b.err.msg,
              "litellm.UnsupportedParamsError: anthropic does not support parameters: ['seed'], "
              "for model=claude-up. To drop these, set `litellm.drop_params=True` or for "
              "proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n If you want to use these "
              "params dynamically send allowed_openai_params=['seed'] in your request.");
    CHECK_STR(b.err.type_json, "null");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: every unsupported parameter is named at once");
    t_o2a(&b,
          "{\"model\":\"claude\",\"seed\":7,\"presence_penalty\":1,\"messages\":[{\"role\":"
          "\"user\",\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_ERROR);
    CHECK_CONTAINS(b.err.msg, "'seed'");
    CHECK_CONTAINS(b.err.msg, "'presence_penalty'");
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: n=1, user, stream_options and max_retries are not checked");
    t_o2a(&b,
          "{\"model\":\"claude\",\"n\":1,\"user\":\"u\",\"stream_options\":{\"include_usage\":true}"
          ",\"max_retries\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "n") == NULL);
    CHECK(json_object_get(b.body, "stream_options") == NULL);
    CHECK(json_object_get(b.body, "max_retries") == NULL);
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: additional_drop removes parameters");
    {
        mg_body_opts_t o = t_opts_anthropic();
        json_t *drop = json_pack("[s,s]", "temperature", "top_k");
        o.additional_drop = drop;
        t_o2a(&b,
              "{\"model\":\"claude\",\"temperature\":0.5,\"top_k\":3,\"top_p\":0.9,\"messages\":[{"
              "\"role\":\"user\",\"content\":\"x\"}]}",
              &o);
        CHECK_INT(b.rc, MG_OK);
        CHECK(json_object_get(b.body, "temperature") == NULL);
        CHECK(json_object_get(b.body, "top_k") == NULL);
        CHECK(json_object_get(b.body, "top_p") != NULL);
        t_built_free(&b);
        json_decref(drop);
    }
    {
        /* a regression test (a bug the first version had): additional_drop_params does not stop an
        unsupported parameter from being refused (LiteLLM removes the named params before
        _check_valid_arg) */
        MG_T_CASE("OpenAI -> Anthropic: an additional_drop parameter is never refused");
        mg_body_opts_t o = t_opts_anthropic();
        json_t *drop = json_pack("[s]", "seed");
        o.additional_drop = drop;
        t_o2a(&b,
              "{\"model\":\"claude\",\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}"
              "]}",
              &o);
        CHECK_INT(b.rc, MG_OK);
        CHECK(b.body != NULL && json_object_get(b.body, "seed") == NULL);
        t_built_free(&b);
        json_decref(drop);
    }
    free(body);
}

static void
test_anthropic_body_defaults(void)
{
    t_built_t b;
    MG_T_CASE("OpenAI -> Anthropic: deployment defaults fill what the request lacks");
    mg_body_opts_t o = t_opts_anthropic();
    json_t *defaults = json_pack("{s:f,s:i}", "temperature", 0.2, "top_k", 9);
    o.defaults = defaults;
    t_o2a(&b,
          "{\"model\":\"claude\",\"temperature\":0.9,\"messages\":[{\"role\":\"user\",\"content\":"
          "\"x\"}]}",
          &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON_SUB(b.body, "{\"temperature\":0.9,\"top_k\":9}");
    t_built_free(&b);
    t_o2a(&b, "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &o);
    CHECK_JSON_SUB(b.body, "{\"temperature\":0.2,\"top_k\":9}");
    t_built_free(&b);
    json_decref(defaults);

    {
        /* a regression test (a bug the first version had): a deployment's max_tokens default is
        ignored on anthropic/ (the 4096 default is set first; LiteLLM passes
        litellm_params.max_tokens as the call's max_ */
        MG_T_CASE("OpenAI -> Anthropic: a deployment max_tokens default replaces 4096");
        defaults = json_pack("{s:i}", "max_tokens", 512);
        o.defaults = defaults;
        t_o2a(&b, "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              &o);
        CHECK_INT(b.rc, MG_OK);
        CHECK_INT(json_integer_value(json_object_get(b.body, "max_tokens")), 512);
        t_built_free(&b);
        json_decref(defaults);
    }
}

static void
test_anthropic_body_response_format(void)
{
    t_built_t b;
    mg_body_opts_t o = t_opts_anthropic();
    const char *rf =
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_"
        "format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"out\",\"schema\":{\"type\":"
        "\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"minLength\":1},\"b\":{\"type\":"
        "\"object\",\"properties\":{\"c\":{\"type\":\"integer\"}}}},\"required\":[\"a\"]}}}}";

    MG_T_CASE(
        "OpenAI -> Anthropic: response_format json_schema, native output_format (Sonnet 4.5)");
    o.model = "claude-sonnet-4-5-20250929";
    t_o2a(&b, rf, &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON_SUB(
        json_object_get(b.body, "output_format"),
        "{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
        "\"properties\":{\"b\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
        "\"c\":{\"type\":\"integer\"}}}},\"required\":[\"a\"]}}");
    CHECK_STR(b.betas, "structured-outputs-2025-11-13");
    CHECK(b.json_mode == false);
    CHECK(json_object_get(b.body, "tools") == NULL);
    CHECK(json_object_get(b.body, "tool_choice") == NULL);
    CHECK(json_object_get(b.body, "response_format") == NULL);
    {
        /* a regression test (a bug the first version had): native output_format keeps
        minLength/maximum/... (LiteLLM's filter_anthropic_output_schema moves them into the
        description) */
        json_t *a = json_object_get(
            json_object_get(json_object_get(json_object_get(b.body, "output_format"), "schema"),
                            "properties"),
            "a");
        CHECK(json_object_get(a, "minLength") == NULL);
        CHECK_CONTAINS(t_jstr(a, "description"), "minimum length: 1");
    }
    t_built_free(&b);

    MG_T_CASE(
        "OpenAI -> Anthropic: response_format json_schema, the json_tool_call tool (older models)");
    o.model = "claude-3-5-haiku-20241022";
    t_o2a(&b, rf, &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(b.body, "tools"),
               "[{\"name\":\"json_tool_call\",\"input_schema\":{\"type\":\"object\",\"properties\":"
               "{\"a\":{\"type\":\"string\",\"minLength\":1},\"b\":{\"type\":\"object\","
               "\"properties\":{\"c\":{\"type\":\"integer\"}}}},\"required\":[\"a\"]}}]");
    CHECK_JSON(json_object_get(b.body, "tool_choice"),
               "{\"type\":\"tool\",\"name\":\"json_tool_call\"}");
    CHECK(b.json_mode);
    CHECK(json_object_get(b.body, "output_format") == NULL);
    t_built_free(&b);

    MG_T_CASE("OpenAI -> Anthropic: with thinking on, json_tool_call is not forced");
    char *body = NULL;
    if (asprintf(&body, "%.*s,\"reasoning_effort\":\"low\"}", (int) strlen(rf) - 1, rf) < 0) {
        abort();
    }
    t_o2a(&b, body, &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "tool_choice") == NULL, "%s", b.text ? b.text : "");
    CHECK(b.json_mode);
    t_built_free(&b);
    free(body);

    MG_T_CASE("OpenAI -> Anthropic: json_object without a schema and type text add nothing");
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_"
          "format\":{\"type\":\"json_object\"}}",
          &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "tools") == NULL);
    CHECK(json_object_get(b.body, "response_format") == NULL);
    CHECK(b.json_mode == false);
    t_built_free(&b);
    t_o2a(&b,
          "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_"
          "format\":{\"type\":\"text\"}}",
          &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "tools") == NULL &&
          json_object_get(b.body, "output_format") == NULL);
    t_built_free(&b);
}

/* ======================================================================== */
/* 3. Anthropic client body -> OpenAI body (/v1/messages to openai/)         */
/* ======================================================================== */

static void
test_openai_body(void)
{
    t_built_t b;
    char *body;
    mg_body_opts_t o;

    MG_T_CASE("Anthropic -> OpenAI: a streamed tool request (fixture tool_use_stream)");
    body = t_fixture("requests/tool_use_stream.json");
    o = t_opts_openai();
    o.stream = true;
    t_a2o(&b, body, &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(
        b.body,
        "{\"model\":\"gpt-up\",\"messages\":[{\"role\":\"user\",\"content\":\"What's the weather "
        "like in San "
        "Francisco?\"}],\"max_tokens\":1024,\"stream\":true,\"stream_options\":{\"include_usage\":"
        "true},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Get the current weather in a given "
        "location\",\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":{\"type\":"
        "\"string\",\"description\":\"The city and state, e.g. San Francisco, "
        "CA\"},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"],\"description\":"
        "\"The unit of temperature\"}},\"required\":[\"location\"]}}}],\"tool_choice\":\"auto\"}");
    t_built_free(&b);
    free(body);

    MG_T_CASE("Anthropic -> OpenAI: system, sampling, stop and user (fixture multi_turn_system)");
    body = t_fixture("requests/multi_turn_system.json");
    t_a2o(&b, body, NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(
        b.body,
        "{\"model\":\"gpt-up\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a concise "
        "assistant. Answer in plain English.\"},{\"role\":\"user\",\"content\":\"Hello "
        "there.\"},{\"role\":\"assistant\",\"content\":\"Hi, I'm Claude. How can I help "
        "you?\"},{\"role\":\"user\",\"content\":\"Can you explain LLMs in plain "
        "English?\"}],\"max_tokens\":1024,\"temperature\":0.7,\"stop\":[\"\\n\\nUser:\"],\"user\":"
        "\"user-42\"}");
    t_built_free(&b);
    free(body);

    MG_T_CASE("Anthropic -> OpenAI: cache_control never reaches an OpenAI-format upstream");
    body = t_fixture("requests/system_blocks.json");
    t_a2o(&b, body, NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(
        json_object_get(b.body, "messages"),
        "[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"You are an assistant "
        "that answers questions about the attached "
        "policy.\"},{\"type\":\"text\",\"text\":\"Policy: refunds are accepted within 30 days of "
        "purchase.\"}]},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Can I return "
        "a purchase after three weeks?\"}]}]");
    CHECK(b.text != NULL && strstr(b.text, "cache_control") == NULL);
    t_built_free(&b);
    free(body);

    MG_T_CASE("Anthropic -> OpenAI: the tool round trip (fixture tool_result)");
    body = t_fixture("requests/tool_result.json");
    t_a2o(&b, body, NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(b.body, "messages"),
               "[{\"role\":\"user\",\"content\":\"What's the weather like in San "
               "Francisco?\"},{\"role\":\"assistant\",\"content\":\"I'll check the current weather "
               "in San Francisco for "
               "you.\",\"tool_calls\":[{\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{"
               "\\\"location\\\":\\\"San Francisco, "
               "CA\\\",\\\"unit\\\":\\\"celsius\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
               "\"toolu_01A09q90qw90lq917835lq9\",\"content\":\"15 degrees, partly cloudy\"}]");
    t_built_free(&b);
    free(body);

    MG_T_CASE(
        "Anthropic -> OpenAI: thinking and thinking blocks do not reach an OpenAI-format upstream");
    body = t_fixture("requests/thinking_multi_turn.json");
    t_a2o(&b, body, NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "thinking") == NULL);
    CHECK(b.text != NULL && strstr(b.text, "thinking_blocks") == NULL &&
          strstr(b.text, "signature") == NULL);
    CHECK_STR(t_jstr(json_array_get(json_object_get(b.body, "messages"), 1), "content"),
              "27 * 453 = 12,231.");
    {
        /* a regression test (a bug the first version had): /v1/messages -> OpenAI:
        thinking.budget_tokens does not become reasoning_effort (LiteLLM's
        _translate_thinking_to_openai; the neutral request's own co */
        /* LiteLLM adapters/transformation.py translate_thinking_for_model ->
         * reasoning_effort_from_thinking_budget: >=16384 max, >=8192 xhigh, >=4096 high, ... */
        CHECK_STR(t_jstr(b.body, "reasoning_effort"), "xhigh");
    }
    t_built_free(&b);
    free(body);

    MG_T_CASE("Anthropic -> OpenAI: images (fixtures image_base64, image_url)");
    body = t_fixture("requests/image_url.json");
    t_a2o(&b, body, NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(json_object_get(json_array_get(json_object_get(b.body, "messages"), 0), "content"),
               "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://upload.wikimedia.org/"
               "wikipedia/commons/a/a7/"
               "Camponotus_flavomarginatus_ant.jpg\"}},{\"type\":\"text\",\"text\":\"Describe this "
               "image.\"}]");
    t_built_free(&b);
    free(body);

    MG_T_CASE("Anthropic -> OpenAI: defaults and additional_drop apply to the translated body");
    o = t_opts_openai();
    json_t *defaults = json_pack("{s:f}", "temperature", 0.1);
    json_t *drop = json_pack("[s]", "top_k");
    o.defaults = defaults;
    o.additional_drop = drop;
    t_a2o(&b,
          "{\"model\":\"m\",\"max_tokens\":9,\"top_k\":3,\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          &o);
    CHECK_INT(b.rc, MG_OK);
    CHECK_JSON(b.body, "{\"model\":\"gpt-up\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"max_tokens\":9,\"temperature\":0.1}");
    t_built_free(&b);
    json_decref(defaults);
    json_decref(drop);

    MG_T_CASE("Anthropic -> OpenAI: a non-stream call carries no stream fields");
    t_a2o(&b,
          "{\"model\":\"m\",\"max_tokens\":9,\"stream\":false,\"messages\":[{\"role\":\"user\","
          "\"content\":\"x\"}]}",
          NULL);
    CHECK_INT(b.rc, MG_OK);
    CHECK(json_object_get(b.body, "stream") == NULL &&
              json_object_get(b.body, "stream_options") == NULL,
          "%s", b.text ? b.text : "");
    t_built_free(&b);
}

/* ======================================================================== */
/* 4. Anthropic responses -> OpenAI clients                                  */
/* ======================================================================== */

static void
test_anthropic_bodies_to_openai(void)
{
    t_xl_t x;
    json_t *j;
    char *in;

    MG_T_CASE("Anthropic message -> chat.completion: text; id kept; usage");
    in = t_fixture("responses/text.json");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, false, MG_API_OPENAI_CHAT, false, false, false);
    CHECK_INT(x.rc, MG_OK);
    j = t_xl_json(&x);
    CHECK_JSON_SUB(
        j, "{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"object\":\"chat.completion\",\"model\":"
           "\"claude-alias\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{"
           "\"role\":\"assistant\",\"content\":\"Hello! How can I help you today?\"}}]}");
    CHECK_JSON(json_object_get(j, "usage"),
               "{\"prompt_tokens\":14,\"completion_tokens\":7,\"total_tokens\":21}");
    CHECK(json_is_integer(json_object_get(j, "created")) &&
          json_integer_value(json_object_get(j, "created")) > 1600000000);
    CHECK(json_object_get(
              json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
              "tool_calls") == NULL);
    CHECK_INT(x.usage.prompt_tokens, 14);
    CHECK_INT(x.usage.completion_tokens, 7);
    json_decref(j);
    t_xl_free(&x);
    free(in);

    MG_T_CASE("Anthropic message -> chat.completion: text then tool_use -> tool_calls (compact "
              "arguments)");
    in = t_fixture("responses/tool_use.json");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, false, MG_API_OPENAI_CHAT, false, false, false);
    j = t_xl_json(&x);
    CHECK_JSON(json_array_get(json_object_get(j, "choices"), 0),
               "{\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":\"assistant\","
               "\"content\":\"I'll check the current weather in San Francisco for "
               "you.\",\"tool_calls\":[{\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{"
               "\\\"location\\\":\\\"San Francisco, CA\\\",\\\"unit\\\":\\\"celsius\\\"}\"}}]}}");
    CHECK_JSON(json_object_get(j, "usage"),
               "{\"prompt_tokens\":105,\"completion_tokens\":23,\"total_tokens\":128}");
    json_decref(j);
    t_xl_free(&x);
    free(in);

    MG_T_CASE(
        "Anthropic message -> chat.completion: thinking -> reasoning_content + thinking_blocks");
    in = t_fixture("responses/thinking.json");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, false, MG_API_OPENAI_CHAT, false, false, false);
    j = t_xl_json(&x);
    CHECK_JSON_SUB(
        json_array_get(json_object_get(j, "choices"), 0),
        "{\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"Yes, there "
        "are infinitely many primes p with p mod 4 == 3.\",\"reasoning_content\":\"Primes of the "
        "form 4k+3: suppose there are finitely many, p1..pn. Consider N = 4*p1*...*pn - 1. N is 3 "
        "mod 4, so it has a prime factor that is 3 mod 4, and none of p1..pn divides "
        "N.\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"Primes of the form 4k+3: "
        "suppose there are finitely many, p1..pn. Consider N = 4*p1*...*pn - 1. N is 3 mod 4, so "
        "it has a prime factor that is 3 mod 4, and none of p1..pn divides "
        "N.\",\"signature\":"
        "\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds8uNPHeY2lnJg2MDDMFNNBbcQHA4gIuiOzhc"
        "g0onF9wZiPPYa0fYKOh5RSpn0TxIQsJ3XYZsV1vhLNb9CS0jlpA5\"}]}}");
    json_decref(j);
    t_xl_free(&x);
    free(in);

    MG_T_CASE("Anthropic usage with cache: prompt_tokens includes cache read and creation");
    const char *cached =
        "{\"id\":\"msg_c1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"end_turn\",\"stop_"
        "sequence\":null,\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":50,\"cache_"
        "read_input_tokens\":100,\"output_tokens\":5}}";
    t_xl(&x, MG_WIRE_ANTHROPIC, cached, false, MG_API_OPENAI_CHAT, false, false, false);
    j = t_xl_json(&x);
    CHECK_JSON_SUB(json_object_get(j, "usage"),
                   "{\"prompt_tokens\":160,\"completion_tokens\":5,\"total_tokens\":165,\"prompt_"
                   "tokens_details\":{\"cached_tokens\":100},\"cache_read_input_tokens\":100,"
                   "\"cache_creation_input_tokens\":50}");
    CHECK_INT(x.usage.prompt_tokens, 160);
    CHECK_INT(x.usage.cache_read_tokens, 100);
    CHECK_INT(x.usage.cache_creation_tokens, 50);
    CHECK_INT(x.usage.completion_tokens, 5);
    json_decref(j);
    t_xl_free(&x);

    MG_T_CASE("Anthropic usage with cache, to an Anthropic client: input_tokens without the cache");
    t_xl(&x, MG_WIRE_ANTHROPIC, cached, false, MG_API_ANTHROPIC_MESSAGES, false, false, false);
    j = t_xl_json(&x);
    CHECK_JSON_SUB(json_object_get(j, "usage"),
                   "{\"input_tokens\":10,\"output_tokens\":5,\"cache_creation_input_tokens\":50,"
                   "\"cache_read_input_tokens\":100}");
    json_decref(j);
    t_xl_free(&x);

    static const struct {
        const char *stop_reason;
        const char *finish;
    } fins[] = {{"end_turn", "stop"},
                {"stop_sequence", "stop"},
                {"max_tokens", "length"},
                {"tool_use", "tool_calls"},
                {"refusal", "content_filter"},
                {"pause_turn", "stop"},
                {"model_context_window_exceeded", "stop"},
                {"something_new", "stop"}};
    for (size_t i = 0; i < sizeof(fins) / sizeof(fins[0]); i++) {
        MG_T_CASE("Anthropic stop_reason -> finish_reason (LiteLLM's map_finish_reason)");
        char *b = NULL;
        if (asprintf(&b,
                     "{\"id\":\"msg_f\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                     "\"c\",\"content\":[{\"type\":\"text\",\"text\":\"t\"}],\"stop_reason\":\"%"
                     "s\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
                     fins[i].stop_reason) < 0) {
            abort();
        }
        t_xl(&x, MG_WIRE_ANTHROPIC, b, false, MG_API_OPENAI_CHAT, false, false, false);
        j = t_xl_json(&x);
        CHECK_STR(t_jstr(json_array_get(json_object_get(j, "choices"), 0), "finish_reason"),
                  fins[i].finish);
        json_decref(j);
        t_xl_free(&x);
        free(b);
    }

    MG_T_CASE("Anthropic tool_use without input -> arguments \"{}\"");
    t_xl(&x, MG_WIRE_ANTHROPIC,
         "{\"id\":\"msg_n\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\","
         "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"now\",\"input\":{}}],"
         "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
         false, MG_API_OPENAI_CHAT, false, false, false);
    j = t_xl_json(&x);
    CHECK_JSON(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
               "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_1\","
               "\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]}");
    json_decref(j);
    t_xl_free(&x);

    MG_T_CASE("JSON mode: json_tool_call's input is the content, finish stop, no tool_calls");
    t_xl(&x, MG_WIRE_ANTHROPIC,
         "{\"id\":\"msg_j\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\","
         "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_j\",\"name\":\"json_tool_call\","
         "\"input\":{\"a\":\"x\",\"n\":2}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_"
         "tokens\":1,\"output_tokens\":1}}",
         false, MG_API_OPENAI_CHAT, false, false, true);
    j = t_xl_json(&x);
    CHECK_JSON(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
               "{\"role\":\"assistant\",\"content\":\"{\\\"a\\\":\\\"x\\\",\\\"n\\\":2}\"}");
    CHECK_STR(t_jstr(json_array_get(json_object_get(j, "choices"), 0), "finish_reason"), "stop");
    json_decref(j);
    t_xl_free(&x);

    MG_T_CASE("Anthropic message that is not JSON: the decoder refuses it");
    t_xl(&x, MG_WIRE_ANTHROPIC, "{\"id\":\"msg_", false, MG_API_OPENAI_CHAT, false, false, false);
    CHECK_INT(x.rc, MG_ERROR);
    CHECK_INT(x.err.status, 502);
    CHECK_CONTAINS(x.err.msg, "Unable to get json response");
    t_xl_free(&x);
}

static void
test_anthropic_streams_to_openai(void)
{
    t_xl_t x;
    t_frames_t f;
    t_chunks_t c;
    char *in;

    MG_T_CASE("Anthropic SSE -> chunks: text, one chunk per text_delta, usage chunk, [DONE]");
    in = t_fixture("responses/text.sse");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, true, MG_API_OPENAI_CHAT, true, true, false);
    CHECK_INT(x.rc, MG_OK);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    CHECK(!f.bad);
    t_chunks(&c, &f);
    CHECK_STR(mg_buf_cstr(&c.content), "Hello! How can I help you today?");
    CHECK_INT(c.content_chunks, 7);
    CHECK(c.role_first);
    CHECK(c.ids_same);
    CHECK_STR(c.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    CHECK(c.models_ok);
    CHECK(c.objects_ok);
    CHECK_INT(c.finish_chunks, 1);
    CHECK_STR(c.finish, "stop");
    CHECK_INT(c.usage_chunks, 1);
    CHECK(c.usage_at > c.finish_at, "usage at %d, finish at %d", c.usage_at, c.finish_at);
    CHECK_JSON(json_object_get(f.data[c.usage_at], "usage"),
               "{\"prompt_tokens\":14,\"completion_tokens\":7,\"total_tokens\":21}");
    CHECK_JSON(json_object_get(json_array_get(json_object_get(f.data[c.finish_at], "choices"), 0),
                               "delta"),
               "{}");
    CHECK_INT(c.ndone, 1);
    CHECK(c.done_last);
    CHECK(c.error == NULL);
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);

    MG_T_CASE("Anthropic SSE -> chunks: without include_usage no chunk carries usage");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, true, MG_API_OPENAI_CHAT, true, false, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    t_chunks(&c, &f);
    CHECK_INT(c.usage_chunks, 0);
    CHECK(c.done_last);
    CHECK_INT(x.usage.prompt_tokens, 14); /* still read for spend and limits */
    CHECK_INT(x.usage.completion_tokens, 7);
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);

    MG_T_CASE("Anthropic SSE -> one non-stream chat.completion");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, true, MG_API_OPENAI_CHAT, false, false, false);
    {
        json_t *j = t_xl_json(&x);
        CHECK_JSON_SUB(j, "{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"choices\":[{\"finish_"
                          "reason\":\"stop\",\"message\":{\"content\":\"Hello! How can I help you "
                          "today?\"}}],\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":7}}");
        json_decref(j);
    }
    t_xl_free(&x);
    free(in);

    MG_T_CASE("Anthropic SSE -> chunks: tool-call deltas (index, id, name, argument fragments)");
    in = t_fixture("responses/tool_use.sse");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, true, MG_API_OPENAI_CHAT, true, true, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    CHECK(!f.bad);
    t_chunks(&c, &f);
    CHECK_STR(mg_buf_cstr(&c.content), "I'll check the current weather in San Francisco for you.");
    CHECK_INT(c.tool_headers[0], 1);
    CHECK_STR(c.ids[0], "toolu_01A09q90qw90lq917835lq9");
    CHECK_STR(c.names[0], "get_weather");
    CHECK_STR(mg_buf_cstr(&c.args[0]), "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}");
    CHECK_INT(c.tool_headers[1], 0);
    CHECK_STR(c.finish, "tool_calls");
    CHECK_JSON(json_object_get(f.data[c.usage_at], "usage"),
               "{\"prompt_tokens\":105,\"completion_tokens\":23,\"total_tokens\":128}");
    CHECK(c.done_last);
    {
        /* the header chunk, as LiteLLM sends it: id, type, name, arguments "", index 0 */
        bool seen = false;
        for (int i = 0; i < f.n && !seen; i++) {
            json_t *d =
                json_object_get(json_array_get(json_object_get(f.data[i], "choices"), 0), "delta");
            json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
            if (tc != NULL) {
                seen = true;
                CHECK_JSON(
                    tc, "{\"index\":0,\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"type\":"
                        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}");
            }
        }
        CHECK(seen);
    }
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);
    free(in);

    MG_T_CASE("Anthropic SSE -> chunks: thinking deltas -> reasoning_content, signature in "
              "thinking_blocks");
    in = t_fixture("responses/thinking.sse");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, true, MG_API_OPENAI_CHAT, true, false, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    t_chunks(&c, &f);
    CHECK_STR(mg_buf_cstr(&c.reasoning),
              "Primes of the form 4k+3: suppose there are finitely many, p1..pn. Consider N = "
              "4*p1*...*pn - 1. N is 3 mod 4, so it has a prime factor that is 3 mod 4, and none "
              "of p1..pn divides N.");
    CHECK_STR(mg_buf_cstr(&c.signature),
              "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds8uNPHeY2lnJg2MDDMFNNBbcQHA4gIui"
              "Ozhcg0onF9wZiPPYa0fYKOh5RSpn0TxIQsJ3XYZsV1vhLNb9CS0jlpA5");
    CHECK_STR(mg_buf_cstr(&c.content),
              "Yes, there are infinitely many primes p with p mod 4 == 3.");
    CHECK_STR(c.finish, "stop");
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);
    free(in);

    MG_T_CASE("Anthropic SSE error event -> a final OpenAI error frame, no [DONE]");
    in = t_fixture("responses/error_mid_stream.sse");
    t_xl(&x, MG_WIRE_ANTHROPIC, in, true, MG_API_OPENAI_CHAT, true, true, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    CHECK(!f.bad);
    t_chunks(&c, &f);
    CHECK_STR(mg_buf_cstr(&c.content), "Hello! How can I help you today?");
    CHECK(c.error != NULL);
    CHECK_INT(c.error_at, f.n - 1);
    CHECK_INT(c.ndone, 0);
    CHECK_INT(c.finish_chunks, 0);
    CHECK_INT(c.usage_chunks, 0);
    CHECK_JSON_SUB(c.error,
                   "{\"message\":\"litellm.InternalServerError: AnthropicException - Overloaded. "
                   "Handle with `litellm.InternalServerError`.\",\"param\":null,\"code\":\"500\"}");
    CHECK_INT(x.nev[MG_EV_ERROR], 1);
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);
    free(in);

    MG_T_CASE(
        "Anthropic SSE: a tool without argument fragments -> arguments \"{}\"; JSON mode content");
    const char *noargs =
        "event: message_start\ndata: "
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_na\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"model\":\"c\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_"
        "tokens\":1}}}\n\nevent: content_block_start\ndata: "
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_na\",\"name\":\"now\",\"input\":{}}}\n\nevent: content_block_delta\ndata: "
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"\"}}\n\nevent: content_block_stop\ndata: "
        "{\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: "
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_"
        "tokens\":4}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    t_xl(&x, MG_WIRE_ANTHROPIC, noargs, true, MG_API_OPENAI_CHAT, true, true, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    t_chunks(&c, &f);
    CHECK_STR(mg_buf_cstr(&c.args[0]), "{}");
    CHECK_STR(c.names[0], "now");
    CHECK_STR(c.finish, "tool_calls");
    CHECK_JSON(json_object_get(f.data[c.usage_at], "usage"),
               "{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}");
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);

    const char *jsonmode =
        "event: message_start\ndata: "
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_jm\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"model\":\"c\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_"
        "tokens\":1}}}\n\nevent: content_block_start\ndata: "
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_jm\",\"name\":\"json_tool_call\",\"input\":{}}}\n\nevent: "
        "content_block_delta\ndata: "
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"a\\\":\"}}\n\nevent: content_block_delta\ndata: "
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"1}\"}}\n\nevent: content_block_stop\ndata: "
        "{\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: "
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_"
        "tokens\":4}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    t_xl(&x, MG_WIRE_ANTHROPIC, jsonmode, true, MG_API_OPENAI_CHAT, true, false, true);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    t_chunks(&c, &f);
    CHECK_STR(mg_buf_cstr(&c.content), "{\"a\":1}");
    CHECK_INT(c.tool_headers[0], 0);
    CHECK_STR(c.finish, "stop");
    t_chunks_free(&c);
    t_frames_free(&f);
    t_xl_free(&x);
}

/* ======================================================================== */
/* 5. OpenAI responses -> Anthropic clients                                  */
/* ======================================================================== */

#define T_CHUNK(delta_and_finish)                                                                  \
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"   \
    "\"model\":\"gpt-up\",\"choices\":[{\"index\":0," delta_and_finish "}]}\n\n"

/* clang-format off */
static const char t_openai_tool_stream[] =
    T_CHUNK("\"delta\":{\"role\":\"assistant\",\"content\":\"\"}")
    T_CHUNK("\"delta\":{\"content\":\"Let me \"}")
    T_CHUNK("\"delta\":{\"content\":\"check.\"}")
    T_CHUNK("\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
            "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}")
    T_CHUNK("\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
            "{\"arguments\":\"{\\\"location\\\":\"}}]}")
    T_CHUNK("\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
            "{\"arguments\":\"\\\"Paris\\\"}\"}}]}")
    T_CHUNK("\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
            "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]}")
    T_CHUNK("\"delta\":{},\"finish_reason\":\"tool_calls\"")
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-up\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9,"
    "\"total_tokens\":29,\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n"
    "data: [DONE]\n\n";
/* clang-format on */

static void
test_openai_streams_to_anthropic(void)
{
    t_xl_t x;
    t_frames_t f;
    mg_buf_t types = MG_BUF_INIT;
    bool names_ok;

    MG_T_CASE("OpenAI chunks -> Anthropic SSE: text block, then one tool_use block per call");
    t_xl(&x, MG_WIRE_OPENAI, t_openai_tool_stream, true, MG_API_ANTHROPIC_MESSAGES, true, false,
         false);
    CHECK_INT(x.rc, MG_OK);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    CHECK(!f.bad);
    t_frames_types(&f, &types, &names_ok);
    CHECK_STR(
        mg_buf_cstr(&types),
        "message_start,content_block_start,content_block_delta,content_block_delta,content_block_"
        "stop,content_block_start,content_block_delta,content_block_delta,content_block_stop,"
        "content_block_start,content_block_delta,content_block_stop,message_delta,message_stop");
    CHECK(names_ok, "every event line names its data's type");
    if (f.n == 14) {
        json_t *msg = json_object_get(f.data[0], "message");
        CHECK_JSON_SUB(msg, "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":"
                            "\"claude-alias\",\"stop_reason\":null,\"stop_sequence\":null}");
        CHECK(t_jstr(msg, "id") != NULL && strncmp(t_jstr(msg, "id"), "msg_", 4) == 0);
        CHECK_JSON(f.data[1], "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                              "\"type\":\"text\",\"text\":\"\"}}");
        CHECK_JSON(f.data[2], "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                              "\"text_delta\",\"text\":\"Let me \"}}");
        CHECK_JSON(f.data[3], "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                              "\"text_delta\",\"text\":\"check.\"}}");
        CHECK_JSON(f.data[4], "{\"type\":\"content_block_stop\",\"index\":0}");
        CHECK_JSON(f.data[5],
                   "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
                   "\"tool_use\",\"id\":\"call_a\",\"name\":\"get_weather\",\"input\":{}}}");
        CHECK_JSON(f.data[6], "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}");
        CHECK_JSON(f.data[7], "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}");
        CHECK_JSON(f.data[8], "{\"type\":\"content_block_stop\",\"index\":1}");
        CHECK_JSON(f.data[9],
                   "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":"
                   "\"tool_use\",\"id\":\"call_b\",\"name\":\"get_time\",\"input\":{}}}");
        CHECK_JSON(f.data[10], "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
                               "\"input_json_delta\",\"partial_json\":\"{}\"}}");
        CHECK_JSON(f.data[11], "{\"type\":\"content_block_stop\",\"index\":2}");
        /* usage: input_tokens = prompt - cached (LiteLLM's AnthropicStreamWrapper) */
        CHECK_JSON_SUB(
            f.data[12],
            "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{"
            "\"input_tokens\":12,\"output_tokens\":9,\"cache_read_input_tokens\":8}}");
        CHECK_JSON(f.data[13], "{\"type\":\"message_stop\"}");
    }
    t_frames_free(&f);
    t_xl_free(&x);

    MG_T_CASE("OpenAI chunks -> one Anthropic message");
    t_xl(&x, MG_WIRE_OPENAI, t_openai_tool_stream, true, MG_API_ANTHROPIC_MESSAGES, false, false,
         false);
    {
        json_t *j = t_xl_json(&x);
        CHECK_JSON_SUB(
            j,
            "{\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-alias\",\"content\":[{"
            "\"type\":\"text\",\"text\":\"Let me "
            "check.\"},{\"type\":\"tool_use\",\"id\":\"call_a\",\"name\":\"get_weather\",\"input\":"
            "{\"location\":\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"call_b\",\"name\":\"get_"
            "time\",\"input\":{}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{"
            "\"input_tokens\":12,\"output_tokens\":9,\"cache_read_input_tokens\":8}}");
        json_decref(j);
    }
    t_xl_free(&x);

    static const struct {
        const char *finish;
        const char *stop_reason;
    } fins[] = {{"stop", "end_turn"},
                {"length", "max_tokens"},
                {"tool_calls", "tool_use"},
                {"content_filter", "refusal"}};
    for (size_t i = 0; i < sizeof(fins) / sizeof(fins[0]); i++) {
        MG_T_CASE(
            "OpenAI finish_reason -> Anthropic stop_reason (content_filter -> refusal by choice)");
        char *s = NULL;
        /* clang-format off */
        if (asprintf(&s, T_CHUNK("\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"}")
                         T_CHUNK("\"delta\":{},\"finish_reason\":\"%s\"")
                         "data: [DONE]\n\n", fins[i].finish) < 0) {
            /* clang-format on */
            abort();
        }
        t_xl(&x, MG_WIRE_OPENAI, s, true, MG_API_ANTHROPIC_MESSAGES, true, false, false);
        t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
        json_t *md = f.n >= 2 ? f.data[f.n - 2] : NULL;
        CHECK_STR(t_jstr(md, "type"), "message_delta");
        CHECK_STR(t_jstr(json_object_get(md, "delta"), "stop_reason"), fins[i].stop_reason);
        /* no usage from the upstream: zeros, never a missing field */
        CHECK_JSON_SUB(json_object_get(md, "usage"), "{\"input_tokens\":0,\"output_tokens\":0}");
        t_frames_free(&f);
        t_xl_free(&x);
        free(s);
    }

    MG_T_CASE("OpenAI mid-stream error -> Anthropic error event, nothing after it");
    /* clang-format off */
    const char *err_stream =
        T_CHUNK("\"delta\":{\"role\":\"assistant\",\"content\":\"par\"}")
        "data: {\"error\":{\"message\":\"upstream died\",\"type\":\"server_error\","
        "\"param\":null,\"code\":\"500\"}}\n\n";
    /* clang-format on */
    t_xl(&x, MG_WIRE_OPENAI, err_stream, true, MG_API_ANTHROPIC_MESSAGES, true, false, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    CHECK(!f.bad);
    mg_buf_reset(&types);
    t_frames_types(&f, &types, &names_ok);
    CHECK_STR(mg_buf_cstr(&types),
              "message_start,content_block_start,content_block_delta,content_block_stop,error");
    CHECK(names_ok);
    CHECK_JSON(
        f.n > 0 ? f.data[f.n - 1] : NULL,
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream died\"}}");
    t_frames_free(&f);
    t_xl_free(&x);

    MG_T_CASE(
        "OpenAI chunks -> Anthropic SSE: reasoning_content -> a thinking block before the text");
    /* clang-format off */
    const char *reasoning =
        T_CHUNK("\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"hmm \"}")
        T_CHUNK("\"delta\":{\"reasoning_content\":\"ok\"}")
        T_CHUNK("\"delta\":{\"content\":\"42\"}")
        T_CHUNK("\"delta\":{},\"finish_reason\":\"stop\"")
        "data: [DONE]\n\n";
    /* clang-format on */
    t_xl(&x, MG_WIRE_OPENAI, reasoning, true, MG_API_ANTHROPIC_MESSAGES, true, false, false);
    t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
    mg_buf_reset(&types);
    t_frames_types(&f, &types, &names_ok);
    CHECK_STR(mg_buf_cstr(&types), "message_start,content_block_start,content_block_delta,content_"
                                   "block_delta,content_block_stop,content_block_start,content_"
                                   "block_delta,content_block_stop,message_delta,message_stop");
    if (f.n == 10) {
        CHECK_JSON_SUB(f.data[1],
                       "{\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}");
        CHECK_JSON(json_object_get(f.data[2], "delta"),
                   "{\"type\":\"thinking_delta\",\"thinking\":\"hmm \"}");
        CHECK_JSON_SUB(f.data[5],
                       "{\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
        CHECK_JSON(json_object_get(f.data[6], "delta"),
                   "{\"type\":\"text_delta\",\"text\":\"42\"}");
    }
    t_frames_free(&f);
    t_xl_free(&x);
    mg_buf_free(&types);
}

static void
test_openai_bodies_to_anthropic(void)
{
    t_xl_t x;
    json_t *j;

    MG_T_CASE("chat.completion -> Anthropic message: text + tool_calls, usage without the cache");
    t_xl(&x, MG_WIRE_OPENAI,
         "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"gpt-up\","
         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Sure.\","
         "\"tool_calls\":[{\"id\":\"call_z\",\"type\":\"function\",\"function\":{\"name\":\"f\","
         "\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
         "\"prompt_tokens\":130,\"completion_tokens\":4,\"total_tokens\":134,\"prompt_tokens_"
         "details\":{\"cached_tokens\":100}}}",
         false, MG_API_ANTHROPIC_MESSAGES, false, false, false);
    CHECK_INT(x.rc, MG_OK);
    j = t_xl_json(&x);
    CHECK_JSON_SUB(
        j,
        "{\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-alias\",\"content\":[{"
        "\"type\":\"text\",\"text\":\"Sure.\"},{\"type\":\"tool_use\",\"id\":\"call_z\",\"name\":"
        "\"f\",\"input\":{\"a\":1}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":"
        "{\"input_tokens\":30,\"output_tokens\":4,\"cache_read_input_tokens\":100}}");
    CHECK(t_jstr(j, "id") != NULL && strncmp(t_jstr(j, "id"), "msg_", 4) == 0 &&
              strstr(t_jstr(j, "id"), "chatcmpl-9") != NULL,
          "id %s", t_jstr(j, "id") ? t_jstr(j, "id") : "(none)");
    json_decref(j);
    t_xl_free(&x);

    static const struct {
        const char *finish;
        const char *stop_reason;
    } fins[] = {{"stop", "end_turn"}, {"length", "max_tokens"}, {"content_filter", "refusal"}};
    for (size_t i = 0; i < sizeof(fins) / sizeof(fins[0]); i++) {
        MG_T_CASE("chat.completion finish_reason -> stop_reason");
        char *b = NULL;
        if (asprintf(&b,
                     "{\"id\":\"chatcmpl-f\",\"object\":\"chat.completion\",\"created\":5,"
                     "\"model\":\"g\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                     "\"assistant\",\"content\":\"t\"},\"finish_reason\":\"%s\"}],\"usage\":{"
                     "\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}",
                     fins[i].finish) < 0) {
            abort();
        }
        t_xl(&x, MG_WIRE_OPENAI, b, false, MG_API_ANTHROPIC_MESSAGES, false, false, false);
        j = t_xl_json(&x);
        CHECK_STR(t_jstr(j, "stop_reason"), fins[i].stop_reason);
        CHECK_JSON(json_object_get(j, "content"), "[{\"type\":\"text\",\"text\":\"t\"}]");
        json_decref(j);
        t_xl_free(&x);
        free(b);
    }

    MG_T_CASE("chat.completion -> Anthropic stream (the upstream answered in one piece)");
    t_xl(&x, MG_WIRE_OPENAI,
         "{\"id\":\"chatcmpl-1p\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"g\","
         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"whole\"},"
         "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
         "\"total_tokens\":4}}",
         false, MG_API_ANTHROPIC_MESSAGES, true, false, false);
    {
        t_frames_t f;
        mg_buf_t types = MG_BUF_INIT;
        bool names_ok;
        t_frames_parse(&f, mg_buf_head(&x.out), mg_buf_len(&x.out));
        t_frames_types(&f, &types, &names_ok);
        CHECK_STR(mg_buf_cstr(&types), "message_start,content_block_start,content_block_delta,"
                                       "content_block_stop,message_delta,message_stop");
        CHECK(names_ok);
        if (f.n == 6) {
            CHECK_JSON_SUB(f.data[4], "{\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{"
                                      "\"input_tokens\":3,\"output_tokens\":1}}");
        }
        t_frames_free(&f);
        mg_buf_free(&types);
    }
    t_xl_free(&x);
}

/* ======================================================================== */
/* 6. the same-wire relay                                                    */
/* ======================================================================== */

typedef struct {
    mg_relay_t rl;
    mg_buf_t out;
    int events;
} t_relay_t;

static bool
t_relay_on(void *ud, const char *raw, size_t raw_len, const char *data, size_t data_len)
{
    t_relay_t *r = ud;
    r->events++;
    mg_relay_event(&r->rl, raw, raw_len, data, data_len, &r->out);
    return true;
}

static void
t_relay_stream(t_relay_t *r, mg_api_id_t api, const char *in, mg_usage_t *u)
{
    memset(r, 0, sizeof(*r));
    memset(u, 0, sizeof(*u));
    mg_relay_init(&r->rl, mg_api_get(api), "my-alias", u);
    mg_sse_t s;
    memset(&s, 0, sizeof(s));
    CHECK(mg_sse_feed(&s, in, strlen(in), t_relay_on, r) == MG_OK);
    mg_sse_free(&s);
    mg_relay_end(&r->rl, &r->out);
}

static void
test_relay(void)
{
    t_relay_t r;
    mg_usage_t u;
    t_frames_t in_f, out_f;
    char *in;

    MG_T_CASE(
        "Anthropic relay: only message_start's model changes; every other event byte-identical");
    in = t_fixture("responses/text.sse");
    t_relay_stream(&r, MG_API_ANTHROPIC_MESSAGES, in, &u);
    t_frames_parse(&in_f, in, strlen(in));
    t_frames_parse(&out_f, mg_buf_head(&r.out), mg_buf_len(&r.out));
    CHECK(!out_f.bad);
    CHECK_INT(out_f.n, in_f.n);
    for (int i = 0; i < in_f.n && i < out_f.n; i++) {
        CHECK_STR(out_f.event[i], in_f.event[i]);
        if (i == 0) {
            json_t *want = json_deep_copy(in_f.data[0]);
            json_object_set_new(json_object_get(want, "message"), "model", json_string("my-alias"));
            char *ws = json_dumps(want, JSON_COMPACT);
            CHECK_JSON(out_f.data[0], ws);
            free(ws);
            json_decref(want);
        } else {
            CHECK_STR(out_f.raw[i], in_f.raw[i]);
        }
    }
    CHECK_INT(u.prompt_tokens, 14);
    CHECK_INT(u.completion_tokens, 7);
    CHECK(u.seen);
    CHECK(r.rl.ended);
    CHECK(!r.rl.errored);
    {
        /* nothing after message_stop */
        size_t before = mg_buf_len(&r.out);
        const char *ping = "event: ping\ndata: {\"type\":\"ping\"}\n\n";
        mg_relay_event(&r.rl, ping, strlen(ping), "{\"type\":\"ping\"}", 15, &r.out);
        CHECK_INT(mg_buf_len(&r.out), before);
    }
    t_frames_free(&in_f);
    t_frames_free(&out_f);
    mg_buf_free(&r.out);
    free(in);

    MG_T_CASE("Anthropic relay: usage with cache tokens; a message_delta with only output_tokens");
    const char *cached =
        "event: message_start\ndata: "
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_r\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"usage\":{\"input_"
        "tokens\":3,\"cache_read_input_tokens\":40,\"cache_creation_input_tokens\":7,\"output_"
        "tokens\":1}}}\n\nevent: message_delta\ndata: "
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_"
        "tokens\":12}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    t_relay_stream(&r, MG_API_ANTHROPIC_MESSAGES, cached, &u);
    CHECK_INT(u.prompt_tokens, 50);
    CHECK_INT(u.cache_read_tokens, 40);
    CHECK_INT(u.cache_creation_tokens, 7);
    CHECK_INT(u.completion_tokens, 12);
    CHECK(strstr(mg_buf_cstr(&r.out), "\"model\":\"my-alias\"") != NULL);
    CHECK(strstr(mg_buf_cstr(&r.out), "claude-sonnet-4-5-20250929") == NULL);
    mg_buf_free(&r.out);

    MG_T_CASE("Anthropic relay: an error event goes through and ends the stream");
    in = t_fixture("responses/error_mid_stream.sse");
    t_relay_stream(&r, MG_API_ANTHROPIC_MESSAGES, in, &u);
    CHECK(r.rl.errored);
    t_frames_parse(&out_f, mg_buf_head(&r.out), mg_buf_len(&r.out));
    CHECK_STR(out_f.n > 0 ? out_f.event[out_f.n - 1] : NULL, "error");
    CHECK_JSON_SUB(out_f.n > 0 ? out_f.data[out_f.n - 1] : NULL,
                   "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                   "\"Overloaded\"}}");
    {
        size_t before = mg_buf_len(&r.out);
        const char *stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        mg_relay_event(&r.rl, stop, strlen(stop), "{\"type\":\"message_stop\"}", 22, &r.out);
        CHECK_INT(mg_buf_len(&r.out), before);
    }
    t_frames_free(&out_f);
    mg_buf_free(&r.out);
    free(in);

    MG_T_CASE(
        "Anthropic relay of a whole message: model restamped, the rest unchanged, usage read");
    in = t_fixture("responses/tool_use.json");
    memset(&u, 0, sizeof(u));
    mg_relay_init(&r.rl, mg_api_get(MG_API_ANTHROPIC_MESSAGES), "my-alias", &u);
    mg_buf_t out = MG_BUF_INIT;
    CHECK(mg_relay_body(&r.rl, in, strlen(in), true, &out));
    {
        json_t *want = json_loads(in, 0, NULL);
        json_object_set_new(want, "model", json_string("my-alias"));
        char *ws = json_dumps(want, JSON_COMPACT);
        json_t *got = json_loadb(mg_buf_head(&out), mg_buf_len(&out), 0, NULL);
        CHECK_JSON(got, ws);
        json_decref(got);
        free(ws);
        json_decref(want);
    }
    CHECK_INT(u.prompt_tokens, 105);
    CHECK_INT(u.completion_tokens, 23);
    mg_buf_reset(&out);
    memset(&u, 0, sizeof(u));
    CHECK(!mg_relay_body(&r.rl, in, strlen(in), false, &out));
    CHECK_INT(mg_buf_len(&out), 0);
    CHECK_INT(u.prompt_tokens, 105);
    mg_buf_free(&out);
    free(in);

    MG_T_CASE("OpenAI relay: model restamped per chunk, usage read, one [DONE]");
    const char *oai =
        "data: "
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-up\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: "
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-up\","
        "\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}"
        "\n\ndata: [DONE]\n\n";
    t_relay_stream(&r, MG_API_OPENAI_CHAT, oai, &u);
    t_frames_parse(&out_f, mg_buf_head(&r.out), mg_buf_len(&r.out));
    CHECK_INT(out_f.n, 3);
    CHECK_STR(t_jstr(out_f.data[0], "model"), "my-alias");
    CHECK_STR(t_jstr(out_f.data[1], "model"), "my-alias");
    CHECK(out_f.done[2]);
    CHECK_INT(u.prompt_tokens, 4);
    CHECK_INT(u.completion_tokens, 2);
    t_frames_free(&out_f);
    mg_buf_free(&r.out);

    MG_T_CASE("OpenAI relay: a stream without [DONE] gets one; an error chunk gets none");
    const char *nodone =
        "data: "
        "{\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-up\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n";
    t_relay_stream(&r, MG_API_OPENAI_CHAT, nodone, &u);
    CHECK(mg_buf_len(&r.out) > 14 &&
          strcmp(mg_buf_cstr(&r.out) + mg_buf_len(&r.out) - 14, "data: [DONE]\n\n") == 0);
    mg_buf_free(&r.out);
    const char *errs =
        "data: "
        "{\"id\":\"c3\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-up\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: "
        "{\"error\":{\"message\":\"boom\",\"type\":null,\"param\":null,\"code\":\"500\"}}\n\ndata: "
        "[DONE]\n\n";
    t_relay_stream(&r, MG_API_OPENAI_CHAT, errs, &u);
    CHECK(r.rl.errored);
    CHECK(strstr(mg_buf_cstr(&r.out), "[DONE]") == NULL);
    CHECK(strstr(mg_buf_cstr(&r.out), "\"boom\"") != NULL);
    mg_buf_free(&r.out);
}

/* ======================================================================== */
/* 7. errors in each wire                                                    */
/* ======================================================================== */

static json_t *
t_error_body(mg_api_id_t api, int status, const char *msg, const char *type_json)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_api_error_body(mg_api_get(api), status, msg, type_json, "null", &b);
    json_t *j = json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, NULL);
    if (j == NULL) {
        MG_T_FAIL_AT("error body is not JSON: %s", mg_buf_cstr(&b));
    }
    mg_buf_free(&b);
    return j;
}

static void
test_errors(void)
{
    static const struct {
        int status;
        const char *type;
    } types[] = {{400, "invalid_request_error"},
                 {401, "authentication_error"},
                 {403, "permission_error"},
                 {404, "not_found_error"},
                 {413, "request_too_large"},
                 {429, "rate_limit_error"},
                 {500, "api_error"},
                 {503, "api_error"},
                 {529, "overloaded_error"}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        MG_T_CASE("Anthropic envelope: error.type follows the status (LiteLLM's "
                  "ANTHROPIC_ERROR_TYPE_MAP)");
        json_t *j = t_error_body(MG_API_ANTHROPIC_MESSAGES, types[i].status, "something", "null");
        char want[256];
        snprintf(want, sizeof(want),
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"something\"}}",
                 types[i].type);
        CHECK_JSON(j, want);
        json_decref(j);
    }

    MG_T_CASE("Anthropic envelope: LiteLLM's class prefixes are stripped from the message");
    json_t *j = t_error_body(MG_API_ANTHROPIC_MESSAGES, 429,
                             "litellm.RateLimitError: AnthropicException - slow down",
                             "\"throttling_error\"");
    CHECK_JSON(
        j,
        "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}");
    json_decref(j);
    j = t_error_body(MG_API_ANTHROPIC_MESSAGES, 400,
                     "litellm.BadRequestError: litellm.UnsupportedParamsError: nope", "null");
    CHECK_JSON(
        j,
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"nope\"}}");
    json_decref(j);

    MG_T_CASE("Anthropic envelope: an upstream's own Anthropic error type is kept");
    j = t_error_body(MG_API_ANTHROPIC_MESSAGES, 529, "Overloaded", "\"overloaded_error\"");
    CHECK_JSON(j, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                  "\"Overloaded\"}}");
    json_decref(j);
    j = t_error_body(MG_API_ANTHROPIC_MESSAGES, 400, "x", "\"billing_error\"");
    CHECK_STR(t_jstr(json_object_get(j, "error"), "type"), "billing_error");
    json_decref(j);

    MG_T_CASE("Anthropic envelope: the unknown-model message in LiteLLM's dict repr is unwrapped");
    j = t_error_body(MG_API_ANTHROPIC_MESSAGES, 400,
                     "{'error': 'anthropic_messages: Invalid model name passed in model=nope. Call "
                     "`/v1/models` to view available models for your key.'}",
                     "\"None\"");
    CHECK_JSON(j, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                  "\"anthropic_messages: Invalid model name passed in model=nope. Call "
                  "`/v1/models` to view available models for your key.\"}}");
    json_decref(j);

    MG_T_CASE("OpenAI envelope");
    j = t_error_body(MG_API_OPENAI_CHAT, 429, "m", "null");
    CHECK_JSON(j, "{\"error\":{\"message\":\"m\",\"type\":null,\"param\":null,\"code\":\"429\"}}");
    json_decref(j);

    MG_T_CASE("mid-stream error frames in each wire");
    mg_buf_t b = MG_BUF_INIT;
    mg_api_stream_error(mg_api_get(MG_API_ANTHROPIC_MESSAGES), 529, "Overloaded",
                        "\"overloaded_error\"", &b);
    CHECK_STR(mg_buf_cstr(&b), "event: error\ndata: "
                               "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                               "\"message\":\"Overloaded\"}}\n\n");
    mg_buf_reset(&b);
    mg_api_stream_error(mg_api_get(MG_API_OPENAI_CHAT), 500, "boom", "null", &b);
    CHECK_STR(
        mg_buf_cstr(&b),
        "data: "
        "{\"error\":{\"message\":\"boom\",\"type\":null,\"param\":null,\"code\":\"500\"}}\n\n");
    mg_buf_free(&b);

    MG_T_CASE("upstream error bodies read in the Anthropic wire");
    char *in = t_fixture("responses/error_rate_limit_error.json");
    mg_wire_err_t we;
    mg_api_wire_error(MG_WIRE_ANTHROPIC, 429, in, in ? strlen(in) : 0, &we);
    CHECK_STR(we.message, "Number of requests has exceeded your per-minute rate limit.");
    CHECK_STR(we.type, "rate_limit_error");
    mg_wire_err_free(&we);
    free(in);
    in = t_fixture("responses/error_overloaded_error.json");
    mg_api_wire_error(MG_WIRE_ANTHROPIC, 529, in, in ? strlen(in) : 0, &we);
    CHECK_STR(we.message, "Overloaded");
    CHECK_STR(we.type, "overloaded_error");
    mg_wire_err_free(&we);
    free(in);
    mg_api_wire_error(MG_WIRE_ANTHROPIC, 502, "Bad gateway", 11, &we);
    CHECK_STR(we.message, "Error code: 502 - Bad gateway");
    CHECK(we.type == NULL);
    mg_wire_err_free(&we);
}

/* ======================================================================== */
/* 8. count_tokens estimate                                                  */
/* ======================================================================== */

static int64_t
t_estimate(const char *body)
{
    t_req_t t;
    t_req(&t, MG_API_ANTHROPIC_COUNT_TOKENS, body);
    CHECK_INT(t.rc, MG_OK);
    int64_t n = t.rc == MG_OK ? mg_api_estimate_input_tokens(&t.q) : -1;
    t_req_free(&t);
    return n;
}

static void
test_estimate(void)
{
    MG_T_CASE("count_tokens estimate: grows with text, +1600 per image, tools counted");
    int64_t base =
        t_estimate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}]}");
    int64_t more = t_estimate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                              "\"abcdabcdabcdabcdabcdabcdabcdabcdabcdabcd\"}]}");
    CHECK_INT(more - base, 9); /* 36 more bytes: 9 tokens */
    int64_t img = t_estimate(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
        "\"source\":{\"type\":\"base64\",\"media_type\":\"image/"
        "png\",\"data\":\"AAAAAAAAAAAAAAAA\"}},{\"type\":\"text\",\"text\":\"abcd\"}]}]}");
    CHECK_INT(img - base, 1600);
    int64_t tools =
        t_estimate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}],"
                   "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}]}");
    /* the tools as compact JSON: {"name":"f","input_schema":{"type":"object"}} is 45 bytes, and
     * ceil((b + 45) / 4) - ceil(b / 4) is 12 for the 8 (or 4) bytes of the base request */
    CHECK_INT(tools - base, 12);
    int64_t two = t_estimate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"abcd\"},{\"role\":\"assistant\",\"content\":\"abcd\"}]}");
    CHECK(two > base);

    {
        /* a regression test (a bug the first version had): the count_tokens estimate counts role
        names as text (mg_api.h says: the bytes of every text / 4, rounded up, + 3 per message) */
        MG_T_CASE("count_tokens estimate: the documented formula on the count_tokens fixture");
        char *fx = t_fixture("requests/count_tokens.json");
        /* "You are a scientist" (19) + "Hello, Claude" (13) = 32 bytes -> 8, + 3 for one message */
        CHECK_INT(t_estimate(fx), 11);
        free(fx);
        CHECK_INT(base, 4); /* "abcd" -> 1, + 3 */
    }
}

int
main(void)
{
    test_neutral_from_fixtures();
    test_neutral_inline();
    test_neutral_refusals();
    test_anthropic_body_example();
    test_anthropic_body_tool_args();
    test_anthropic_body_images();
    test_anthropic_body_tools();
    test_anthropic_body_params();
    test_anthropic_body_unsupported();
    test_anthropic_body_defaults();
    test_anthropic_body_response_format();
    test_openai_body();
    test_anthropic_bodies_to_openai();
    test_anthropic_streams_to_openai();
    test_openai_streams_to_anthropic();
    test_openai_bodies_to_anthropic();
    test_relay();
    test_errors();
    test_estimate();
    return mg_test_done();
}
