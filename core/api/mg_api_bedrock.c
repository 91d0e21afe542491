/*
 * mg_api_bedrock.c -- AWS Bedrock's wire formats, upstream side only, translated
 * the way LiteLLM translates them (litellm/llms/bedrock/chat/):
 *
 *   converse: the neutral request (OpenAI chat) -> a Converse body (messages of
 *             content blocks, system, inferenceConfig, toolConfig,
 *             additionalModelRequestFields), LiteLLM's AmazonConverseConfig; a
 *             Converse response and the ConverseStream events (named by their
 *             event-stream ":event-type") -> neutral events;
 *   invoke:   InvokeModel / InvokeModelWithResponseStream for Anthropic models: the
 *             Anthropic Messages body without "model" and "stream", with
 *             anthropic_version bedrock-2023-05-31 (LiteLLM's AmazonAnthropicClaudeConfig);
 *             answers are Anthropic messages, stream chunks carry an Anthropic event as
 *             base64 in {"bytes": ...}, read by the Anthropic decoder.
 *
 * Both decoders turn a stream exception (":message-type" exception or error) into one
 * MG_EV_ERROR, with the status and message of LiteLLM's BedrockException mapping
 * (mg_api_bedrock_error, also what the bedrock provider maps HTTP errors with).  No
 * client speaks these wires, so they have no encoder, relay or client error body.
 *
 * Pure: jansson trees live only inside one call; the decoder keeps its block state in
 * mg_dec_t and nothing else.
 */
#include "mg_api_int.h"

#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_BR_JSON_TOOL "json_tool_call"         /* LiteLLM's RESPONSE_FORMAT_TOOL_NAME */
#define MG_BR_DEFAULT_MAX_TOKENS 4096            /* LiteLLM's DEFAULT_MAX_TOKENS */
#define MG_BR_MIN_THINKING_BUDGET 1024           /* LiteLLM's BEDROCK_MIN_THINKING_BUDGET_TOKENS */
#define MG_BR_ANTHROPIC_VERSION "bedrock-2023-05-31"

static const char *
mg_br_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool
mg_br_in(const char *k, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(*list, k) == 0) {
            return true;
        }
    }
    return false;
}

static bool
mg_br_starts(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- model families (LiteLLM's BedrockModelInfo.get_base_model and the supported lists) ---- */

typedef struct {
    const char *base;           /* the model id without ARN or cross-region prefix */
    bool arn;                   /* an ARN: LiteLLM cannot tell the model, every param is allowed */
    bool anthropic, nova, mistral, llama, cohere, titan, ai21;
    bool tools, tool_choice, thinking, effort_only, nova_reasoning;
} mg_br_family_t;

static void
mg_br_family(const char *model, mg_br_family_t *f)
{
    static const char *const regions[] = {"us.", "eu.", "apac.", "global.", "jp.", "au.",
                                          "us-gov.", "ca.", NULL};
    memset(f, 0, sizeof(*f));
    const char *m = model != NULL ? model : "";
    if (strncmp(m, "arn:", 4) == 0) {
        f->arn = true;
        const char *slash = strrchr(m, '/');
        m = slash != NULL ? slash + 1 : m;
    }
    for (const char *const *r = regions; *r; r++) {
        if (mg_br_starts(m, *r)) {
            m += strlen(*r);
            break;
        }
    }
    f->base = m;
    f->anthropic = mg_br_starts(m, "anthropic.");
    f->nova = mg_br_starts(m, "amazon.nova");
    f->titan = mg_br_starts(m, "amazon.titan");
    f->mistral = mg_br_starts(m, "mistral.");
    f->llama = mg_br_starts(m, "meta.llama");
    f->cohere = mg_br_starts(m, "cohere.");
    f->ai21 = mg_br_starts(m, "ai21.");
    /* tools: LiteLLM's families, plus what its cost map marks supports_function_calling
     * (deepseek, qwen, gpt-oss, ...): everything but the old text-only families */
    f->tools = f->arn || !(f->titan || f->ai21 || mg_br_starts(m, "meta.llama2") ||
                           mg_br_starts(m, "meta.llama3-8b") ||
                           mg_br_starts(m, "meta.llama3-70b") ||
                           mg_br_starts(m, "cohere.command-text") ||
                           mg_br_starts(m, "cohere.command-light") ||
                           mg_br_starts(m, "mistral.mistral-7b") ||
                           mg_br_starts(m, "mistral.mixtral"));
    /* toolChoice: only Anthropic, Mistral Large and Nova accept it (the ToolChoice reference) */
    f->tool_choice = f->arn || f->anthropic || f->nova || mg_br_starts(m, "mistral.mistral-large");
    f->nova_reasoning = strstr(m, "nova-2-lite") != NULL;
    f->effort_only = strstr(m, "gpt-oss") != NULL || f->nova_reasoning;
    f->thinking = f->arn || strstr(m, "claude-3-7") != NULL || strstr(m, "claude-sonnet-4") != NULL ||
                  strstr(m, "claude-opus-4") != NULL || strstr(m, "claude-haiku-4") != NULL ||
                  strstr(m, "deepseek.r1") != NULL;
}

/* ---- errors: LiteLLM's _map_bedrock_exception ---- */

/* Documented HTTP status of a Bedrock exception type (either first-letter case). */
static int
mg_br_exception_status(const char *t, size_t n)
{
    static const struct {
        const char *name;
        int status;
    } tab[] = {
        {"hrottlingException", 429}, {"odelNotReadyException", 429},
        {"alidationException", 400}, {"erviceQuotaExceededException", 400},
        {"ccessDeniedException", 403}, {"esourceNotFoundException", 404},
        {"odelTimeoutException", 408}, {"odelErrorException", 424},
        {"odelStreamErrorException", 424}, {"nternalServerException", 500},
        {"erviceUnavailableException", 503},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        size_t l = strlen(tab[i].name);
        if (n == l + 1 && memcmp(t + 1, tab[i].name, l) == 0) {
            return tab[i].status;
        }
    }
    return 500;
}

/* The AWS authentication failures LiteLLM would report as AuthenticationError had their
 * type been in its error text (it reads only the body). */
static bool
mg_br_auth_type(const char *t)
{
    static const char *const names[] = {
        "UnrecognizedClientException", "ExpiredTokenException", "InvalidSignatureException",
        "IncompleteSignatureException", "MissingAuthenticationTokenException",
        "InvalidClientTokenId", "SignatureDoesNotMatch", NULL,
    };
    for (const char *const *p = names; *p; p++) {
        if (strstr(t, *p) != NULL) {
            return true;
        }
    }
    return false;
}

static void
mg_br_err_set(mg_bedrock_err_t *e, int status, mg_err_class_t cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
mg_br_err_set(mg_bedrock_err_t *e, int status, mg_err_class_t cls, const char *fmt, ...)
{
    e->status = status;
    e->cls = cls;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&e->message, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
}

void
mg_api_bedrock_error(int status, const char *etype, size_t etype_len, const char *body,
                     size_t len, mg_bedrock_err_t *out)
{
    memset(out, 0, sizeof(*out));
    /* the type without its namespace suffix ("ThrottlingException:http://internal...") */
    char type[96] = "";
    if (etype != NULL) {
        size_t tl = 0;
        while (tl < etype_len && tl < sizeof(type) - 1 && etype[tl] != ':' && etype[tl] != ',') {
            tl++;
        }
        memcpy(type, etype, tl);
        type[tl] = '\0';
    }
    bool stream = status == 0;
    if (stream) {
        status = mg_br_exception_status(type, strlen(type));
    }
    /* LiteLLM's error_str: the body for an HTTP error, "<type> <payload>" in a stream */
    size_t n = len > 4000 ? 4000 : len;
    char *s = NULL;
    if (asprintf(&s, "%s%s%.*s", stream ? type : "", stream && type[0] ? " " : "", (int) n,
                 body != NULL ? body : "") < 0) {
        abort();
    }
    /* what the substring tests look at: the text and the type */
    char *probe = NULL;
    if (asprintf(&probe, "%s %s", type, s) < 0) {
        abort();
    }
    if (strstr(probe, "too many tokens") || strstr(probe, "expected maxLength:") ||
        strstr(probe, "Input is too long") || strstr(probe, "prompt is too long") ||
        strstr(probe, "prompt: length: 1..") || strstr(probe, "Too many input tokens")) {
        mg_br_err_set(out, 400, MG_ERR_CONTEXT_WINDOW, "litellm.ContextWindowExceededError: "
                      "BedrockException: Context Window Error - %s", s);
        out->context_window = true;
    } else if (strstr(probe, "Conversation blocks and tool result blocks cannot be provided in "
                             "the same turn.")) {
        mg_br_err_set(out, 400, MG_ERR_BAD_REQUEST, "litellm.BadRequestError: BedrockException - "
                      "%s\n. Enable 'litellm.modify_params=True' (for PROXY do: "
                      "`litellm_settings::modify_params: True`) to insert a dummy assistant "
                      "message and fix this error.", s);
    } else if (strstr(probe, "Malformed input request")) {
        mg_br_err_set(out, 400, MG_ERR_BAD_REQUEST, "litellm.BadRequestError: BedrockException - "
                      "%s", s);
    } else if (strstr(probe, "A conversation must start with a user message.")) {
        mg_br_err_set(out, 400, MG_ERR_BAD_REQUEST, "litellm.BadRequestError: BedrockException - "
                      "%s\n. Pass in default user message via `completion(..,user_continue_"
                      "message=)` or enable `litellm.modify_params=True`.\nFor Proxy: do via "
                      "`litellm_settings::modify_params: True` or user_continue_message under "
                      "`litellm_params`", s);
    } else if (strstr(probe, "Unable to locate credentials") ||
               strstr(probe, "The security token included in the request is invalid") ||
               mg_br_auth_type(type)) {
        mg_br_err_set(out, 401, MG_ERR_AUTH, "litellm.AuthenticationError: BedrockException "
                      "Invalid Authentication - %s", s);
        out->auth = true;
    } else if (strstr(probe, "AccessDeniedException") || strstr(probe, "accessDeniedException")) {
        mg_br_err_set(out, 403, MG_ERR_UPSTREAM_4XX, "litellm.PermissionDeniedError: "
                      "BedrockException PermissionDeniedError - %s", s);
    } else if (strstr(probe, "throttlingException") || strstr(probe, "ThrottlingException")) {
        mg_br_err_set(out, 429, MG_ERR_RATE_LIMITED, "litellm.RateLimitError: BedrockException: "
                      "Rate Limit Error - %s", s);
        out->rate_limit = true;
    } else if (strstr(probe, "Connect timeout on endpoint URL") || strstr(probe, "timed out")) {
        mg_br_err_set(out, 408, MG_ERR_UPSTREAM_TIMEOUT, "litellm.Timeout: BedrockException: "
                      "Timeout Error - %s", s);
        out->timeout = true;
    } else if (strstr(probe, "Could not process image")) {
        mg_br_err_set(out, 500, MG_ERR_UPSTREAM_5XX, "litellm.InternalServerError: "
                      "BedrockException - %s", s);
    } else {
        switch (status) {
        case 500:
        case 503:
            /* LiteLLM's ServiceUnavailableError, whose status is 503 */
            mg_br_err_set(out, 503, MG_ERR_UPSTREAM_5XX, "litellm.ServiceUnavailableError: "
                          "BedrockException - %s", s);
            break;
        case 401:
            mg_br_err_set(out, 401, MG_ERR_AUTH, "litellm.AuthenticationError: "
                          "BedrockException - %s", s);
            out->auth = true;
            break;
        case 400:
        case 422:
            mg_br_err_set(out, 400, MG_ERR_BAD_REQUEST, "litellm.BadRequestError: "
                          "BedrockException - %s", s);
            break;
        case 404:
            mg_br_err_set(out, 404, MG_ERR_UPSTREAM_4XX, "litellm.NotFoundError: "
                          "BedrockException - %s", s);
            out->not_found = true;
            break;
        case 408:
        case 504:
            mg_br_err_set(out, 408, MG_ERR_UPSTREAM_TIMEOUT, "litellm.Timeout: "
                          "BedrockException - %s", s);
            out->timeout = true;
            break;
        case 429:
            mg_br_err_set(out, 429, MG_ERR_RATE_LIMITED, "litellm.RateLimitError: "
                          "BedrockException - %s", s);
            out->rate_limit = true;
            break;
        default:
            /* unmapped: LiteLLM's generic APIConnectionError (status 500) */
            mg_br_err_set(out, 500, status >= 400 && status < 500 ? MG_ERR_UPSTREAM_4XX
                                                                  : MG_ERR_UPSTREAM_5XX,
                          "litellm.APIConnectionError: BedrockException - %s", s);
            break;
        }
    }
    free(probe);
    free(s);
}

static void
mg_br_wire_error(int status, const char *body, size_t len, mg_wire_err_t *out)
{
    json_t *j = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *m = mg_br_str(j, "message");
    if (m == NULL) {
        m = mg_br_str(j, "Message");
    }
    if (m != NULL) {
        out->message = mg_xstrdup(m);
    } else {
        size_t n = len > 2000 ? 2000 : len;
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "Error code: %d - %.*s", status, (int) n, body ? body : "");
        out->message = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
    }
    const char *t = mg_br_str(j, "__type");
    out->type = t != NULL ? mg_xstrdup(t) : NULL;
    json_decref(j);
}

/* ---- neutral -> Converse body (LiteLLM's AmazonConverseConfig) ---- */

/* Converse's top-level configuration blocks: passed as given (LiteLLM's get_config_blocks). */
static const char *const mg_br_config_blocks[] = {
    "guardrailConfig", "performanceConfig", "serviceTier", "requestMetadata", NULL,
};

/* OpenAI parameters _check_valid_arg never refuses (they are not sent as parameters). */
static const char *const mg_br_always_ok[] = {
    "stream", "stream_options", "extra_headers", "max_retries", "max_tokens",
    "max_completion_tokens", "stop", "temperature", "top_p", "response_format", NULL,
};

static bool
mg_br_supported(const char *k, const mg_br_family_t *f)
{
    if (mg_br_in(k, mg_br_always_ok)) {
        return true;
    }
    if (strcmp(k, "service_tier") == 0) {
        return true;
    }
    if (strcmp(k, "tools") == 0) {
        return f->tools;
    }
    if (strcmp(k, "tool_choice") == 0) {
        return f->tool_choice;
    }
    if (strcmp(k, "thinking") == 0) {
        return f->thinking && !f->effort_only;
    }
    if (strcmp(k, "reasoning_effort") == 0) {
        return f->thinking || f->effort_only;
    }
    if (strcmp(k, "web_search_options") == 0) {
        return f->nova;
    }
    return false;
}

typedef struct {
    int ndocs;                  /* documents so far (their names must be unique) */
} mg_br_ctx_t;

static json_t *
mg_br_cache_point(void)
{
    return json_pack("{s:{s:s}}", "cachePoint", "type", "default");
}

/* A MIME type's Converse document format, or NULL. */
static const char *
mg_br_doc_format(const char *mt)
{
    static const struct {
        const char *mime, *fmt;
    } t[] = {
        {"application/pdf", "pdf"}, {"text/csv", "csv"}, {"application/msword", "doc"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
        {"application/vnd.ms-excel", "xls"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
        {"text/html", "html"}, {"text/plain", "txt"}, {"text/markdown", "md"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcasecmp(t[i].mime, mt) == 0) {
            return t[i].fmt;
        }
    }
    return NULL;
}

/* An image format Converse takes ("jpeg" for image/jpg), or NULL. */
static const char *
mg_br_image_format(const char *sub, size_t n)
{
    static const char *const ok[] = {"png", "jpeg", "gif", "webp", NULL};
    if ((n == 3 && strncasecmp(sub, "jpg", 3) == 0)) {
        return "jpeg";
    }
    for (const char *const *p = ok; *p; p++) {
        if (strlen(*p) == n && strncasecmp(sub, *p, n) == 0) {
            return *p;
        }
    }
    return NULL;
}

/* An image_url / file URL as a Converse image, document or video block. */
static json_t *
mg_br_media_block(const char *url, const char *fmt, mg_br_ctx_t *cx, mg_api_err_t *err)
{
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        if (semi == NULL) {
            mg_api_err(err, 400, "invalid_request_error", "messages",
                       "litellm.BadRequestError: BedrockException - Unsupported image type. "
                       "Expected either image url or base64 encoded string - e.g. "
                       "'data:image/jpeg;base64,<base64-encoded-string>'");
            return NULL;
        }
        char *mt = mg_xstrndup(url + 5, (size_t) (semi - (url + 5)));
        const char *data = semi + 8;
        json_t *b = NULL;
        const char *df;
        if (strncasecmp(mt, "image/", 6) == 0) {
            const char *f = fmt != NULL && strncasecmp(fmt, "image/", 6) == 0
                                ? mg_br_image_format(fmt + 6, strlen(fmt + 6))
                                : mg_br_image_format(mt + 6, strlen(mt + 6));
            if (f == NULL) {
                mg_api_err(err, 400, "invalid_request_error", "messages",
                           "litellm.BadRequestError: BedrockException - Unsupported image format: "
                           "%.40s. Supported formats: ['png', 'jpeg', 'gif', 'webp']", mt + 6);
            } else {
                b = json_pack("{s:{s:s,s:{s:s}}}", "image", "format", f, "source", "bytes", data);
            }
        } else if ((df = mg_br_doc_format(mt)) != NULL) {
            char name[32];
            snprintf(name, sizeof(name), "Document %d", ++cx->ndocs);
            b = json_pack("{s:{s:s,s:s,s:{s:s}}}", "document", "format", df, "name", name,
                          "source", "bytes", data);
        } else if (strncasecmp(mt, "video/", 6) == 0) {
            const char *vf = mt + 6;
            if (strcasecmp(vf, "quicktime") == 0) {
                vf = "mov";
            } else if (strcasecmp(vf, "x-matroska") == 0) {
                vf = "mkv";
            }
            b = json_pack("{s:{s:s,s:{s:s}}}", "video", "format", vf, "source", "bytes", data);
        } else {
            mg_api_err(err, 400, "invalid_request_error", "messages",
                       "litellm.BadRequestError: BedrockException - unsupported content type "
                       "\"%.80s\" for bedrock converse", mt);
        }
        free(mt);
        return b;
    }
    if (strncmp(url, "s3://", 5) == 0) {
        const char *dot = strrchr(url, '.');
        const char *f = dot != NULL ? mg_br_image_format(dot + 1, strlen(dot + 1)) : NULL;
        if (f == NULL) {
            mg_api_err(err, 400, "invalid_request_error", "messages",
                       "litellm.BadRequestError: BedrockException - cannot tell the image format "
                       "of %.200s (expected a .png, .jpeg, .jpg, .gif or .webp key)", url);
            return NULL;
        }
        return json_pack("{s:{s:s,s:{s:{s:s}}}}", "image", "format", f, "source", "s3Location",
                         "uri", url);
    }
    mg_api_err(err, 400, "invalid_request_error", "messages",
               "litellm.BadRequestError: BedrockException - moongate does not download images "
               "for bedrock (LiteLLM does): send the image as a data: URL (base64) or an s3:// "
               "location, not %.200s", url);
    return NULL;
}

/* User-side content (string or OpenAI parts) appended as Converse blocks. */
static int
mg_br_user_blocks(json_t *content, json_t *cache_control, json_t *blocks, mg_br_ctx_t *cx,
                  mg_api_err_t *err)
{
    if (json_is_string(content)) {
        if (json_string_length(content) > 0) {
            json_array_append_new(blocks, json_pack("{s:O}", "text", content));
            if (cache_control != NULL && !json_is_null(cache_control)) {
                json_array_append_new(blocks, mg_br_cache_point());
            }
        }
        return MG_OK;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *t = mg_br_str(part, "type");
        json_t *b = NULL;
        if (t == NULL) {
            continue;
        }
        if (strcmp(t, "text") == 0) {
            b = json_pack("{s:s}", "text", mg_br_str(part, "text") ? mg_br_str(part, "text") : "");
        } else if (strcmp(t, "image_url") == 0) {
            json_t *iu = json_object_get(part, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : mg_br_str(iu, "url");
            if (url == NULL) {
                return mg_api_err(err, 400, "invalid_request_error", "messages",
                                  "litellm.BadRequestError: BedrockException - image_url part "
                                  "without a url");
            }
            if ((b = mg_br_media_block(url, mg_br_str(iu, "format"), cx, err)) == NULL) {
                return MG_ERROR;
            }
        } else if (strcmp(t, "file") == 0) {
            json_t *f = json_object_get(part, "file");
            const char *fd = mg_br_str(f, "file_data");
            if (fd == NULL) {
                fd = mg_br_str(f, "file_id");
            }
            if (fd == NULL) {
                continue;
            }
            if ((b = mg_br_media_block(fd, mg_br_str(f, "format"), cx, err)) == NULL) {
                return MG_ERROR;
            }
        } else {
            continue;
        }
        json_array_append_new(blocks, b);
        json_t *cc = json_object_get(part, "cache_control");
        if (cc != NULL && !json_is_null(cc)) {
            json_array_append_new(blocks, mg_br_cache_point());
        }
    }
    return MG_OK;
}

/* A tool message as a toolResult block. */
static int
mg_br_tool_result(json_t *m, json_t *blocks, mg_br_ctx_t *cx, mg_api_err_t *err)
{
    json_t *c = json_object_get(m, "content");
    json_t *content = json_array();
    if (json_is_array(c)) {
        json_t *tmp = json_array();
        if (mg_br_user_blocks(c, NULL, tmp, cx, err) != MG_OK) {
            json_decref(tmp);
            json_decref(content);
            return MG_ERROR;
        }
        size_t i;
        json_t *b;
        json_array_foreach(tmp, i, b) {
            if (json_object_get(b, "cachePoint") == NULL) {
                json_array_append(content, b);
            }
        }
        json_decref(tmp);
    }
    if (json_array_size(content) == 0) {
        json_array_append_new(content, json_pack("{s:s}", "text", json_is_string(c)
                                                                     ? json_string_value(c)
                                                                     : ""));
    }
    const char *id = mg_br_str(m, "tool_call_id");
    char uuid[37];
    if (id == NULL) {
        mg_uuid4(uuid);
        id = uuid;
    }
    json_array_append_new(blocks, json_pack("{s:{s:s,s:o}}", "toolResult", "toolUseId", id,
                                            "content", content));
    bool cached = json_object_get(m, "cache_control") != NULL;
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) {
        cached = cached || json_object_get(part, "cache_control") != NULL;
    }
    if (cached) {
        json_array_append_new(blocks, mg_br_cache_point());
    }
    return MG_OK;
}

/* An assistant message's thinking blocks as reasoningContent blocks. */
static void
mg_br_reasoning_blocks(json_t *thinking, json_t *blocks)
{
    size_t i;
    json_t *tb;
    json_array_foreach(thinking, i, tb) {
        const char *t = mg_br_str(tb, "type");
        if (t != NULL && strcmp(t, "redacted_thinking") == 0) {
            const char *d = mg_br_str(tb, "data");
            json_array_append_new(blocks, json_pack("{s:{s:s}}", "reasoningContent",
                                                    "redactedContent", d ? d : ""));
        } else if (t != NULL && strcmp(t, "thinking") == 0) {
            json_t *rt = json_pack("{s:s}", "text",
                                   mg_br_str(tb, "thinking") ? mg_br_str(tb, "thinking") : "");
            if (mg_br_str(tb, "signature") != NULL) {
                json_object_set(rt, "signature", json_object_get(tb, "signature"));
            }
            json_array_append_new(blocks, json_pack("{s:{s:o}}", "reasoningContent",
                                                    "reasoningText", rt));
        }
    }
}

static bool
mg_br_blank(const char *s)
{
    for (; s != NULL && *s; s++) {
        if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\r') {
            return false;
        }
    }
    return true;
}

static int
mg_br_assistant_blocks(json_t *m, json_t *blocks, mg_api_err_t *err)
{
    mg_br_reasoning_blocks(json_object_get(m, "thinking_blocks"), blocks);
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        if (!mg_br_blank(json_string_value(content))) {
            json_array_append_new(blocks, json_pack("{s:O}", "text", content));
        }
        if (json_object_get(m, "cache_control") != NULL) {
            json_array_append_new(blocks, mg_br_cache_point());
        }
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            const char *t = mg_br_str(part, "type");
            if (t == NULL) {
                continue;
            }
            if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) {
                json_t *one = json_pack("[O]", part);
                mg_br_reasoning_blocks(one, blocks);
                json_decref(one);
            } else if (strcmp(t, "text") == 0 && !mg_br_blank(mg_br_str(part, "text"))) {
                json_array_append_new(blocks, json_pack("{s:s}", "text", mg_br_str(part, "text")));
            }
            if (json_object_get(part, "cache_control") != NULL) {
                json_array_append_new(blocks, mg_br_cache_point());
            }
        }
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(m, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        if (fn == NULL) {
            continue;
        }
        const char *args = mg_br_str(fn, "arguments");
        json_error_t je;
        json_t *in = json_loads(args != NULL && args[0] != '\0' ? args : "{}", JSON_DECODE_ANY,
                                &je);
        if (in == NULL) {
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: BedrockException - Unable to convert "
                              "openai tool calls to bedrock tool calls: tool call %s: arguments "
                              "are not valid JSON (%s)",
                              mg_br_str(tc, "id") ? mg_br_str(tc, "id") : "", je.text);
        }
        json_array_append_new(blocks, json_pack("{s:{s:s,s:s,s:o}}", "toolUse", "toolUseId",
                                                mg_br_str(tc, "id") ? mg_br_str(tc, "id") : "",
                                                "name",
                                                mg_br_str(fn, "name") ? mg_br_str(fn, "name") : "",
                                                "input", in));
    }
    return MG_OK;
}

/* messages -> (system blocks, Converse messages), LiteLLM's _bedrock_converse_messages_pt:
 * consecutive user and tool turns merged into one user message, assistants merged. */
static int
mg_br_messages(json_t *msgs, json_t *system, json_t *out, bool *tools_in_history,
               mg_br_ctx_t *cx, mg_api_err_t *err)
{
    json_t *cur = NULL;         /* borrowed from out: the message being merged into */
    bool cur_user = false;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = mg_br_str(m, "role");
        if (role == NULL) {
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: Invalid Message passed in messages[%zu]: "
                              "no role", i);
        }
        json_t *content = json_object_get(m, "content");
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (json_is_string(content)) {
                if (json_string_length(content) > 0) {
                    json_array_append_new(system, json_pack("{s:O}", "text", content));
                    if (json_object_get(m, "cache_control") != NULL) {
                        json_array_append_new(system, mg_br_cache_point());
                    }
                }
            } else {
                size_t k;
                json_t *part;
                json_array_foreach(content, k, part) {
                    const char *t = mg_br_str(part, "text");
                    if (t == NULL || t[0] == '\0') {
                        continue;
                    }
                    json_array_append_new(system, json_pack("{s:s}", "text", t));
                    if (json_object_get(part, "cache_control") != NULL) {
                        json_array_append_new(system, mg_br_cache_point());
                    }
                }
            }
            continue;
        }
        bool is_tool = strcmp(role, "tool") == 0 || strcmp(role, "function") == 0;
        bool user_side = is_tool || strcmp(role, "user") == 0;
        if (!user_side && strcmp(role, "assistant") != 0) {
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: Invalid Message passed in messages[%zu]: "
                              "role \"%s\"", i, role);
        }
        json_t *blocks = json_array();
        int rc;
        if (is_tool) {
            rc = mg_br_tool_result(m, blocks, cx, err);
            *tools_in_history = true;
        } else if (user_side) {
            rc = mg_br_user_blocks(content, json_object_get(m, "cache_control"), blocks, cx, err);
        } else {
            rc = mg_br_assistant_blocks(m, blocks, err);
            if (json_array_size(json_object_get(m, "tool_calls")) > 0) {
                *tools_in_history = true;
            }
        }
        if (rc != MG_OK) {
            json_decref(blocks);
            return MG_ERROR;
        }
        if (json_array_size(blocks) == 0) {
            json_decref(blocks);
            continue; /* nothing to say (LiteLLM skips empty turns) */
        }
        if (cur == NULL || cur_user != user_side) {
            cur = json_pack("{s:s,s:o}", "role", user_side ? "user" : "assistant", "content",
                            blocks);
            json_array_append_new(out, cur);
            cur_user = user_side;
        } else {
            json_array_extend(json_object_get(cur, "content"), blocks);
            json_decref(blocks);
        }
    }
    return MG_OK;
}

/* tools -> toolConfig.tools (LiteLLM's _bedrock_tools_pt). */
static int
mg_br_tools(json_t *tools, json_t *out, mg_api_err_t *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *type = mg_br_str(t, "type");
        if (type != NULL && strcmp(type, "function") != 0) {
            return mg_api_err(err, 400, "invalid_request_error", "tools",
                              "litellm.BadRequestError: BedrockException - moongate does not "
                              "translate tool type \"%.60s\" for bedrock converse", type);
        }
        json_t *fn = json_object_get(t, "function");
        const char *name = mg_br_str(fn, "name") ? mg_br_str(fn, "name") : "";
        json_t *params = json_object_get(fn, "parameters");
        json_t *schema = json_is_object(params) ? json_deep_copy(params)
                                                : json_pack("{s:s,s:{}}", "type", "object",
                                                            "properties");
        /* Converse requires a description: LiteLLM defaults it to the name */
        const char *desc = mg_br_str(fn, "description");
        json_t *spec = json_pack("{s:s,s:s,s:{s:o}}", "name", name, "description",
                                 desc != NULL ? desc : name, "inputSchema", "json", schema);
        json_array_append_new(out, json_pack("{s:o}", "toolSpec", spec));
        if (json_object_get(t, "cache_control") != NULL ||
            json_object_get(fn, "cache_control") != NULL) {
            json_array_append_new(out, mg_br_cache_point());
        }
    }
    return MG_OK;
}

/* tool_choice -> toolChoice (LiteLLM's map_tool_choice_values); *out NULL: none. */
static int
mg_br_tool_choice(json_t *tc, bool drop, json_t **out, mg_api_err_t *err)
{
    *out = NULL;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "none") == 0) {
            if (drop) {
                return MG_OK;
            }
            return mg_api_err(err, 400, NULL, NULL,
                              "litellm.UnsupportedParamsError: Bedrock doesn't support "
                              "tool_choice=none. To drop it from the call, set "
                              "`litellm.drop_params = True.");
        }
        if (strcmp(s, "required") == 0) {
            *out = json_pack("{s:{}}", "any");
            return MG_OK;
        }
        if (strcmp(s, "auto") == 0) {
            *out = json_pack("{s:{}}", "auto");
            return MG_OK;
        }
    } else if (json_is_object(tc)) {
        const char *name = mg_br_str(json_object_get(tc, "function"), "name");
        *out = json_pack("{s:{s:s}}", "tool", "name", name ? name : "");
        return MG_OK;
    }
    char *v = json_dumps(tc, JSON_COMPACT | JSON_ENCODE_ANY);
    mg_api_err(err, 400, NULL, NULL,
               "litellm.UnsupportedParamsError: Bedrock doesn't support tool_choice=%.100s. "
               "Supported tool_choice values=['auto', 'required', json object]. To drop it from "
               "the call, set `litellm.drop_params = True.", v ? v : "?");
    free(v);
    return MG_ERROR;
}

static bool
mg_br_listed(json_t *arr, const char *k)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), k) == 0) {
            return true;
        }
    }
    return false;
}

/* LiteLLM's _check_valid_arg: OpenAI parameters this model does not take. */
static int
mg_br_check_params(json_t *n, const mg_body_opts_t *o, const mg_br_family_t *f,
                   mg_api_err_t *err)
{
    mg_buf_t bad = MG_BUF_INIT;
    int nbad = 0;
    const char *k;
    json_t *v;
    json_object_foreach(n, k, v) {
        if (json_is_null(v) || !mg_br_in(k, mg_api_openai_params) || mg_br_supported(k, f)) {
            continue;
        }
        if (strcmp(k, "n") == 0 && json_is_number(v) && json_number_value(v) == 1) {
            continue;
        }
        if (o->drop_params || mg_br_listed(o->additional_drop, k)) {
            continue;
        }
        mg_buf_printf(&bad, "%s'%s'", nbad++ ? ", " : "", k);
    }
    if (nbad == 0) {
        mg_buf_free(&bad);
        return MG_OK;
    }
    const char *model = o->model ? o->model : (o->client_model ? o->client_model : "");
    mg_api_err(err, 400, NULL, NULL,
               "litellm.UnsupportedParamsError: %s does not support parameters: [%s], for "
               "model=%s. To drop these, set `litellm.drop_params=True` or for proxy:\n\n"
               "`litellm_settings:\n drop_params: true`\n. \n If you want to use these params "
               "dynamically send allowed_openai_params=[%s] in your request.",
               o->provider ? o->provider : "bedrock", mg_buf_cstr(&bad), model, mg_buf_cstr(&bad));
    mg_buf_free(&bad);
    return MG_ERROR;
}

/* thinking / reasoning_effort into additionalModelRequestFields; returns the budget (0: none). */
static int
mg_br_thinking(json_t *n, const mg_br_family_t *f, json_t *amrf, mg_api_err_t *err)
{
    json_t *thinking = json_object_get(n, "thinking");
    const char *effort = mg_br_str(n, "reasoning_effort");
    if (json_is_object(thinking) && mg_br_supported("thinking", f)) {
        json_t *t = json_deep_copy(thinking);
        json_t *b = json_object_get(t, "budget_tokens");
        int budget = 0;
        if (json_is_integer(b)) {
            budget = (int) json_integer_value(b);
            if (budget < MG_BR_MIN_THINKING_BUDGET) {
                budget = MG_BR_MIN_THINKING_BUDGET;
                json_object_set_new(t, "budget_tokens", json_integer(budget));
            }
        }
        const char *tt = mg_br_str(t, "type");
        json_object_set_new(amrf, "thinking", t);
        return tt != NULL && strcmp(tt, "enabled") == 0 ? budget : 0;
    }
    if (effort == NULL || !mg_br_supported("reasoning_effort", f)) {
        return 0; /* absent, or refused or dropped by the parameter check */
    }
    if (strstr(f->base, "gpt-oss") != NULL) {
        json_object_set_new(amrf, "reasoning_effort", json_string(effort));
        return 0;
    }
    if (f->nova_reasoning) {
        if (strcmp(effort, "low") != 0 && strcmp(effort, "medium") != 0 &&
            strcmp(effort, "high") != 0) {
            mg_api_err(err, 400, "invalid_request_error", "reasoning_effort",
                       "litellm.BadRequestError: Invalid reasoning_effort value '%s' for Nova 2 "
                       "models. Supported values: ['low', 'medium', 'high']", effort);
            return -1;
        }
        json_object_set_new(amrf, "reasoningConfig", json_pack("{s:s,s:s}", "type", "enabled",
                                                               "maxReasoningEffort", effort));
        return 0;
    }
    int budget = mg_an_thinking_budget(effort, err);
    if (budget < 0) {
        return -1;
    }
    if (budget > 0) {
        if (budget < MG_BR_MIN_THINKING_BUDGET) {
            budget = MG_BR_MIN_THINKING_BUDGET;
        }
        json_object_set_new(amrf, "thinking", json_pack("{s:s,s:i}", "type", "enabled",
                                                        "budget_tokens", budget));
    }
    return budget;
}

static int
mg_br_build_converse(json_t *n, const mg_body_opts_t *o, json_t *body, bool *json_mode,
                     mg_api_err_t *err)
{
    mg_br_family_t f;
    mg_br_family(o->model, &f);
    if (mg_br_check_params(n, o, &f, err) != MG_OK) {
        return MG_ERROR;
    }
    /* messages and system */
    mg_br_ctx_t cx = {0};
    json_t *system = json_array();
    json_t *msgs = json_array();
    bool tools_in_history = false;
    if (mg_br_messages(json_object_get(n, "messages"), system, msgs, &tools_in_history, &cx,
                       err) != MG_OK) {
        json_decref(system);
        json_decref(msgs);
        return MG_ERROR;
    }
    json_object_set_new(body, "messages", msgs);
    json_t *amrf = json_object();
    /* thinking first: it decides the default maxTokens and whether a tool can be forced */
    int budget = mg_br_thinking(n, &f, amrf, err);
    if (budget < 0) {
        json_decref(system);
        json_decref(amrf);
        return MG_ERROR;
    }
    const char *ttype = mg_br_str(json_object_get(amrf, "thinking"), "type");
    bool thinking_on = budget > 0 || (ttype != NULL && strcmp(ttype, "enabled") == 0);
    /* inferenceConfig */
    json_t *ic = json_object();
    json_t *mt = json_object_get(n, "max_completion_tokens");
    if (!json_is_number(mt)) {
        mt = json_object_get(n, "max_tokens");
    }
    if (json_is_number(mt)) {
        json_object_set_new(ic, "maxTokens", json_integer((json_int_t) llround(json_number_value(mt))));
    } else if (thinking_on && budget > 0) {
        json_object_set_new(ic, "maxTokens", json_integer(budget + MG_BR_DEFAULT_MAX_TOKENS));
    }
    if (json_is_number(json_object_get(n, "temperature"))) {
        json_object_set(ic, "temperature", json_object_get(n, "temperature"));
    }
    if (json_is_number(json_object_get(n, "top_p"))) {
        json_object_set(ic, "topP", json_object_get(n, "top_p"));
    }
    json_t *stop = json_object_get(n, "stop");
    if (json_is_string(stop) && json_string_length(stop) > 0) {
        json_object_set_new(ic, "stopSequences", json_pack("[O]", stop));
    } else if (json_is_array(stop) && json_array_size(stop) > 0) {
        json_object_set(ic, "stopSequences", stop);
    }
    /* tools, response_format (a forced json tool, as LiteLLM), tool_choice */
    json_t *tools = json_array();
    json_t *nt = json_object_get(n, "tools");
    if (json_is_array(nt) && mg_br_supported("tools", &f) &&
        mg_br_tools(nt, tools, err) != MG_OK) {
        json_decref(system);
        json_decref(amrf);
        json_decref(ic);
        json_decref(tools);
        return MG_ERROR;
    }
    json_t *choice = NULL;
    json_t *tc = json_object_get(n, "tool_choice");
    if (tc != NULL && !json_is_null(tc) && mg_br_supported("tool_choice", &f) &&
        mg_br_tool_choice(tc, o->drop_params, &choice, err) != MG_OK) {
        json_decref(system);
        json_decref(amrf);
        json_decref(ic);
        json_decref(tools);
        return MG_ERROR;
    }
    json_t *rf = json_object_get(n, "response_format");
    const char *rft = mg_br_str(rf, "type");
    if (rft != NULL && strcmp(rft, "text") != 0) {
        json_t *schema = json_object_get(rf, "response_schema");
        json_t *js = json_object_get(rf, "json_schema");
        if (schema == NULL) {
            schema = json_object_get(js, "schema");
        }
        json_t *s = json_is_object(schema)
                        ? json_deep_copy(schema)
                        : json_pack("{s:s,s:b,s:{}}", "type", "object", "additionalProperties",
                                    1, "properties");
        json_t *spec = json_pack("{s:s,s:{s:o}}", "name", MG_BR_JSON_TOOL, "inputSchema", "json",
                                 s);
        if (mg_br_str(js, "description") != NULL) {
            json_object_set(spec, "description", json_object_get(js, "description"));
        }
        json_array_append_new(tools, json_pack("{s:o}", "toolSpec", spec));
        if (f.tool_choice && !thinking_on) {
            json_decref(choice);
            choice = json_pack("{s:{s:s}}", "tool", "name", MG_BR_JSON_TOOL);
        }
        *json_mode = true;
    }
    json_t *wso = json_object_get(n, "web_search_options");
    if (json_is_object(wso) && f.nova) {
        json_array_append_new(tools, json_pack("{s:{s:s}}", "systemTool", "name",
                                               "nova_grounding"));
    }
    if (thinking_on && choice != NULL &&
        (json_object_get(choice, "any") != NULL || json_object_get(choice, "tool") != NULL)) {
        /* forced tool use is refused with reasoning on: LiteLLM switches to auto */
        json_decref(choice);
        choice = json_pack("{s:{}}", "auto");
    }
    if (tools_in_history && json_array_size(tools) == 0) {
        /* Converse refuses toolUse/toolResult blocks without toolConfig: LiteLLM's
         * add_dummy_tool (modify_params) */
        json_array_append_new(tools, json_pack("{s:{s:s,s:s,s:{s:{s:s,s:{}}}}}", "toolSpec",
                                               "name", "dummy_tool", "description",
                                               "This is a dummy tool call", "inputSchema", "json",
                                               "type", "object", "properties"));
    }
    /* provider-specific parameters: Converse's config blocks at the top, top_k where the
     * family takes it, everything else in additionalModelRequestFields */
    const char *k;
    json_t *v;
    json_object_foreach(n, k, v) {
        if (json_is_null(v) || mg_br_in(k, mg_api_openai_params) || strcmp(k, "model") == 0 ||
            strcmp(k, "messages") == 0 || mg_api_is_litellm_param_str(k) ||
            mg_br_listed(o->additional_drop, k)) {
            continue;
        }
        if (mg_br_in(k, mg_br_config_blocks)) {
            json_object_set(body, k, v);
        } else if (strcmp(k, "top_k") == 0 || strcmp(k, "topK") == 0) {
            if (f.anthropic) {
                json_object_set(amrf, "top_k", v);
            } else if (f.nova) {
                json_object_set_new(amrf, "inferenceConfig", json_pack("{s:O}", "topK", v));
            }
        } else if (strcmp(k, "additionalModelRequestFields") == 0 && json_is_object(v)) {
            json_object_update(amrf, v);
        } else if (strcmp(k, "inferenceConfig") == 0 && json_is_object(v)) {
            json_object_update_missing(ic, v);
        } else {
            json_object_set(amrf, k, v);
        }
    }
    const char *tier = mg_br_str(n, "service_tier");
    if (tier != NULL && json_object_get(body, "serviceTier") == NULL) {
        const char *bt = strcmp(tier, "auto") == 0 ? "default" : tier;
        if (strcmp(bt, "default") == 0 || strcmp(bt, "flex") == 0 || strcmp(bt, "priority") == 0) {
            json_object_set_new(body, "serviceTier", json_pack("{s:s}", "type", bt));
        }
    }
    if (json_object_size(amrf) > 0) {
        json_object_set_new(body, "additionalModelRequestFields", amrf);
    } else {
        json_decref(amrf);
    }
    if (json_array_size(system) > 0) {
        json_object_set_new(body, "system", system);
    } else {
        json_decref(system);
    }
    if (json_object_size(ic) > 0) {
        json_object_set_new(body, "inferenceConfig", ic);
    } else {
        json_decref(ic);
    }
    if (json_array_size(tools) > 0) {
        json_t *cfg = json_pack("{s:o}", "tools", tools);
        if (choice != NULL) {
            json_object_set_new(cfg, "toolChoice", choice);
        }
        json_object_set_new(body, "toolConfig", cfg);
    } else {
        json_decref(tools);
        json_decref(choice);
    }
    return MG_OK;
}

/* The neutral request with the deployment's defaults and without the dropped names. */
static json_t *
mg_br_effective(json_t *n, const mg_body_opts_t *o)
{
    json_t *nn = json_copy(n);
    const char *dk;
    json_t *dv;
    json_object_foreach(o->defaults, dk, dv) {
        if (json_object_get(nn, dk) == NULL) {
            json_object_set(nn, dk, dv);
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(o->additional_drop, i, v) {
        if (json_is_string(v)) {
            json_object_del(nn, json_string_value(v));
        }
    }
    return nn;
}

/* A completion prompt as one user turn (both Bedrock wires). */
static void
mg_br_prompt_as_messages(json_t *nn)
{
    json_t *p = json_object_get(nn, "prompt");
    mg_buf_t text = MG_BUF_INIT;
    if (json_is_string(p)) {
        mg_buf_append_str(&text, json_string_value(p));
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(p, i, v) {
            if (json_is_string(v)) {
                mg_buf_append_str(&text, json_string_value(v));
            }
        }
    }
    json_object_set_new(nn, "messages", json_pack("[{s:s,s:s}]", "role", "user", "content",
                                                  mg_buf_cstr(&text)));
    mg_buf_free(&text);
    json_object_del(nn, "prompt");
    json_object_del(nn, "echo");
    json_object_del(nn, "suffix");
    json_object_del(nn, "best_of");
}

static int
mg_br_build(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out, mg_api_err_t *err)
{
    if (op != MG_OP_CHAT && op != MG_OP_COMPLETION) {
        return mg_api_err(err, 400, "invalid_request_error", NULL,
                          "litellm.BadRequestError: bedrock converse does not support this "
                          "operation");
    }
    json_t *nn = mg_br_effective(n, o);
    if (op == MG_OP_COMPLETION) {
        mg_br_prompt_as_messages(nn);
    }
    json_t *body = json_object();
    bool json_mode = false;
    int rc = mg_br_build_converse(nn, o, body, &json_mode, err);
    json_decref(nn);
    if (rc != MG_OK) {
        json_decref(body);
        return MG_ERROR;
    }
    if (o->json_mode != NULL) {
        *o->json_mode = json_mode;
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    mg_buf_append_str(out, s);
    free(s);
    return MG_OK;
}

/* ---- Converse response and ConverseStream events -> neutral events ---- */

enum { MG_BR_BLK_NONE = -1, MG_BR_BLK_TEXT = 1, MG_BR_BLK_TOOL, MG_BR_BLK_TOOL_ARGS,
       MG_BR_BLK_JSON };

static void
mg_br_emit(mg_dec_t *d, mg_ev_t *ev)
{
    d->sink(d->ud, ev);
}

static void
mg_br_emit_text(mg_dec_t *d, mg_ev_kind_t kind, json_t *s)
{
    if (!json_is_string(s) || json_string_length(s) == 0) {
        return;
    }
    mg_ev_t ev = {.kind = kind};
    ev.text = json_string_value(s);
    ev.text_len = json_string_length(s);
    mg_br_emit(d, &ev);
}

static void
mg_br_start(mg_dec_t *d)
{
    if (d->started) {
        return;
    }
    d->started = true;
    mg_ev_t ev = {.kind = MG_EV_START, .created = mg_time_real_ms() / 1000};
    mg_br_emit(d, &ev);
}

/* LiteLLM's map_finish_reason for Converse's stopReason. */
static mg_finish_t
mg_br_finish(const char *s)
{
    if (s == NULL) {
        return MG_FIN_STOP;
    }
    if (strcmp(s, "max_tokens") == 0 || strcmp(s, "model_context_window_exceeded") == 0) {
        return MG_FIN_LENGTH;
    }
    if (strcmp(s, "tool_use") == 0) {
        return MG_FIN_TOOL_CALLS;
    }
    if (strcmp(s, "guardrail_intervened") == 0 || strcmp(s, "content_filtered") == 0) {
        return MG_FIN_CONTENT_FILTER;
    }
    return MG_FIN_STOP; /* end_turn, stop_sequence, malformed_*, anything new */
}

static int64_t
mg_br_int(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? mg_clamp_i64(json_number_value(v)) : 0;
}

/* Converse usage (inputTokens excludes the cache) into the neutral record (LiteLLM's
 * _transform_usage: prompt_tokens includes cache reads and writes). */
static void
mg_br_usage(mg_dec_t *d, json_t *u)
{
    if (!json_is_object(u)) {
        return;
    }
    mg_usage_t *out = d->usage;
    out->cache_read_tokens = mg_br_int(u, "cacheReadInputTokens");
    out->cache_creation_tokens = mg_br_int(u, "cacheWriteInputTokens");
    out->prompt_tokens = mg_br_int(u, "inputTokens") + out->cache_read_tokens +
                         out->cache_creation_tokens;
    out->completion_tokens = mg_br_int(u, "outputTokens");
    out->total_tokens = json_is_number(json_object_get(u, "totalTokens"))
                            ? mg_br_int(u, "totalTokens")
                            : out->prompt_tokens + out->completion_tokens;
    out->seen = true;
    mg_ev_t ev = {.kind = MG_EV_USAGE};
    mg_br_emit(d, &ev);
}

/* A whole toolUse block (non-stream) as one tool event, or json-mode text. */
static void
mg_br_tool_whole(mg_dec_t *d, json_t *tu)
{
    const char *name = mg_br_str(tu, "name");
    json_t *input = json_object_get(tu, "input");
    if (d->json_mode && name != NULL && strcmp(name, MG_BR_JSON_TOOL) == 0) {
        /* LiteLLM's json mode: the arguments are the content, a lone "properties" unwrapped */
        json_t *val = input;
        if (json_is_object(input) && json_object_size(input) == 1 &&
            json_object_get(input, "properties") != NULL) {
            val = json_object_get(input, "properties");
        }
        char *s = json_dumps(val != NULL ? val : json_object(), JSON_COMPACT | JSON_ENCODE_ANY);
        mg_ev_t ev = {.kind = MG_EV_TEXT, .text = s, .text_len = s ? strlen(s) : 0};
        mg_br_emit(d, &ev);
        free(s);
        return;
    }
    mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = d->ntools++};
    json_t *id = json_object_get(tu, "toolUseId");
    if (json_is_string(id)) {
        ev.id = json_string_value(id);
        ev.id_len = json_string_length(id);
    }
    ev.name = name ? name : "";
    ev.name_len = strlen(ev.name);
    char *args = json_dumps(input != NULL ? input : json_object(), JSON_COMPACT | JSON_ENCODE_ANY);
    ev.text = args ? args : "{}";
    ev.text_len = strlen(ev.text);
    mg_br_emit(d, &ev);
    free(args);
}

static int
mg_br_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return mg_api_err(err, 502, NULL, NULL, "Received=%.200s, Error converting to valid "
                          "response block=%s", body ? body : "", je.text);
    }
    mg_br_start(d);
    json_t *msg = json_object_get(json_object_get(j, "output"), "message");
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(msg, "content"), i, b) {
        json_t *rc = json_object_get(b, "reasoningContent");
        if (json_object_get(b, "text") != NULL) {
            mg_br_emit_text(d, MG_EV_TEXT, json_object_get(b, "text"));
        } else if (json_object_get(b, "toolUse") != NULL) {
            mg_br_tool_whole(d, json_object_get(b, "toolUse"));
        } else if (rc != NULL) {
            json_t *rt = json_object_get(rc, "reasoningText");
            if (rt != NULL) {
                mg_ev_t ev = {.kind = MG_EV_REASONING};
                json_t *t = json_object_get(rt, "text");
                json_t *sig = json_object_get(rt, "signature");
                if (json_is_string(t)) {
                    ev.text = json_string_value(t);
                    ev.text_len = json_string_length(t);
                }
                if (json_is_string(sig)) {
                    ev.sig = json_string_value(sig);
                    ev.sig_len = json_string_length(sig);
                }
                mg_br_emit(d, &ev);
            } else {
                mg_br_emit_text(d, MG_EV_REDACTED, json_object_get(rc, "redactedContent"));
            }
        }
    }
    mg_ev_t fin = {.kind = MG_EV_FINISH};
    fin.finish = d->json_mode ? MG_FIN_STOP : mg_br_finish(mg_br_str(j, "stopReason"));
    mg_br_emit(d, &fin);
    mg_br_usage(d, json_object_get(j, "usage"));
    json_decref(j);
    d->ended = true;
    mg_ev_t end = {.kind = MG_EV_END};
    mg_br_emit(d, &end);
    return MG_OK;
}

static bool
mg_br_name_is(const char *p, size_t n, const char *s)
{
    return p != NULL && strlen(s) == n && memcmp(p, s, n) == 0;
}

/* A stream exception or error message: one error event, then nothing. */
static void
mg_br_dec_exception(mg_dec_t *d, const char *name, size_t name_len, const char *data,
                    size_t len)
{
    mg_bedrock_err_t be;
    mg_api_bedrock_error(0, name, name_len, data, len, &be);
    mg_ev_t ev = {.kind = MG_EV_ERROR, .status = be.status, .text = be.message,
                  .text_len = strlen(be.message)};
    mg_br_emit(d, &ev);
    free(be.message);
    d->ended = true;
}

static int
mg_br_block_index(mg_dec_t *d, json_t *j)
{
    json_t *ix = json_object_get(j, "contentBlockIndex");
    int blk = json_is_integer(ix) ? (int) json_integer_value(ix) : -1;
    return blk >= 0 && blk < (int) (sizeof(d->block_kind) / sizeof(d->block_kind[0])) ? blk : -1;
}

static int
mg_br_dec_named(mg_dec_t *d, const char *mtype, size_t mtype_len, const char *name,
                size_t name_len, const char *data, size_t len, mg_api_err_t *err)
{
    if (d->ended) {
        return MG_OK;
    }
    if (mtype != NULL && !mg_br_name_is(mtype, mtype_len, "event")) {
        mg_br_dec_exception(d, name, name_len, data, len);
        return MG_OK;
    }
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return mg_api_err(err, 502, NULL, NULL, "the upstream sent an unreadable %.*s event: %s",
                          (int) (name_len > 64 ? 64 : name_len), name ? name : "", je.text);
    }
    int blk = mg_br_block_index(d, j);
    if (mg_br_name_is(name, name_len, "messageStart")) {
        mg_br_start(d);
    } else if (mg_br_name_is(name, name_len, "contentBlockStart")) {
        mg_br_start(d);
        json_t *tu = json_object_get(json_object_get(j, "start"), "toolUse");
        if (tu != NULL) {
            const char *tname = mg_br_str(tu, "name");
            if (d->json_mode && tname != NULL && strcmp(tname, MG_BR_JSON_TOOL) == 0) {
                if (blk >= 0) {
                    d->block_kind[blk] = MG_BR_BLK_JSON;
                }
            } else {
                int tool = d->ntools++;
                if (blk >= 0) {
                    d->block_kind[blk] = MG_BR_BLK_TOOL;
                    d->block_tool[blk] = tool;
                }
                mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = tool, .text = "", .text_len = 0};
                json_t *id = json_object_get(tu, "toolUseId");
                if (json_is_string(id)) {
                    ev.id = json_string_value(id);
                    ev.id_len = json_string_length(id);
                }
                ev.name = tname ? tname : "";
                ev.name_len = strlen(ev.name);
                mg_br_emit(d, &ev);
            }
        }
    } else if (mg_br_name_is(name, name_len, "contentBlockDelta")) {
        mg_br_start(d);
        json_t *delta = json_object_get(j, "delta");
        json_t *rc = json_object_get(delta, "reasoningContent");
        json_t *tu = json_object_get(delta, "toolUse");
        int kind = blk >= 0 ? d->block_kind[blk] : MG_BR_BLK_NONE;
        if (json_object_get(delta, "text") != NULL) {
            if (blk >= 0 && kind == MG_BR_BLK_NONE) {
                d->block_kind[blk] = MG_BR_BLK_TEXT;
            }
            mg_br_emit_text(d, MG_EV_TEXT, json_object_get(delta, "text"));
        } else if (tu != NULL) {
            json_t *in = json_object_get(tu, "input");
            if (kind == MG_BR_BLK_JSON) {
                mg_br_emit_text(d, MG_EV_TEXT, in);
            } else if ((kind == MG_BR_BLK_TOOL || kind == MG_BR_BLK_TOOL_ARGS) &&
                       json_is_string(in) && json_string_length(in) > 0) {
                d->block_kind[blk] = MG_BR_BLK_TOOL_ARGS;
                mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = d->block_tool[blk]};
                ev.text = json_string_value(in);
                ev.text_len = json_string_length(in);
                mg_br_emit(d, &ev);
            }
        } else if (rc != NULL) {
            json_t *t = json_object_get(rc, "text");
            json_t *sig = json_object_get(rc, "signature");
            if (json_is_string(t) || json_is_string(sig)) {
                mg_ev_t ev = {.kind = MG_EV_REASONING};
                if (json_is_string(t)) {
                    ev.text = json_string_value(t);
                    ev.text_len = json_string_length(t);
                }
                if (json_is_string(sig)) {
                    ev.sig = json_string_value(sig);
                    ev.sig_len = json_string_length(sig);
                }
                mg_br_emit(d, &ev);
            } else {
                mg_br_emit_text(d, MG_EV_REDACTED, json_object_get(rc, "redactedContent"));
            }
        }
    } else if (mg_br_name_is(name, name_len, "contentBlockStop")) {
        if (blk >= 0 && d->block_kind[blk] == MG_BR_BLK_TOOL) {
            /* a tool that sent no argument fragment: its arguments are {} */
            mg_ev_t ev = {.kind = MG_EV_TOOL, .tool = d->block_tool[blk], .text = "{}",
                          .text_len = 2};
            mg_br_emit(d, &ev);
        }
    } else if (mg_br_name_is(name, name_len, "messageStop")) {
        mg_br_start(d);
        mg_ev_t ev = {.kind = MG_EV_FINISH};
        ev.finish = d->json_mode ? MG_FIN_STOP : mg_br_finish(mg_br_str(j, "stopReason"));
        d->finish = ev.finish;
        mg_br_emit(d, &ev);
    } else if (mg_br_name_is(name, name_len, "metadata")) {
        mg_br_usage(d, json_object_get(j, "usage"));
    }
    /* anything else (a new event type) is skipped, as the SDKs skip unknown union members */
    json_decref(j);
    return MG_OK;
}

/* ConverseStream events carry their name beside the payload: a bare event is unreadable. */
static int
mg_br_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    (void) d;
    (void) data;
    (void) len;
    return mg_api_err(err, 502, NULL, NULL, "bedrock converse streams are AWS event-streams, not "
                      "server-sent events");
}

/* ---- InvokeModel for Anthropic models ---- */

/* Adds anthropic_version (and anthropic_beta) to an Anthropic body and removes what
 * Bedrock's InvokeModel refuses ("model", "stream"). */
static int
mg_br_invoke_finish_body(const char *anth, size_t len, const char *betas, mg_buf_t *out,
                         mg_api_err_t *err)
{
    json_error_t je;
    json_t *body = json_loadb(anth, len, 0, &je);
    if (!json_is_object(body)) {
        json_decref(body);
        return mg_api_err(err, 500, NULL, NULL, "moongate: the anthropic body is not JSON: %s",
                          je.text);
    }
    json_object_del(body, "model");
    json_object_del(body, "stream");
    if (json_object_get(body, "anthropic_version") == NULL) {
        json_object_set_new(body, "anthropic_version", json_string(MG_BR_ANTHROPIC_VERSION));
    }
    if (betas != NULL && betas[0] != '\0' && json_object_get(body, "anthropic_beta") == NULL) {
        json_t *list = json_array();
        const char *p = betas;
        while (*p) {
            size_t l = strcspn(p, ",");
            while (l > 0 && (*p == ' ')) {
                p++;
                l--;
            }
            size_t e = l;
            while (e > 0 && p[e - 1] == ' ') {
                e--;
            }
            if (e > 0) {
                json_array_append_new(list, json_stringn(p, e));
            }
            p += l;
            if (*p == ',') {
                p++;
            }
        }
        json_object_set_new(body, "anthropic_beta", list);
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    mg_buf_append_str(out, s);
    free(s);
    return MG_OK;
}

static int
mg_br_invoke_build(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out,
                   mg_api_err_t *err)
{
    if (op != MG_OP_CHAT && op != MG_OP_COMPLETION) {
        return mg_api_err(err, 400, "invalid_request_error", NULL,
                          "litellm.BadRequestError: bedrock invoke does not support this "
                          "operation");
    }
    mg_body_opts_t ao = *o;
    const char *betas = NULL;
    ao.stream = false;
    ao.betas = &betas;
    mg_buf_t anth = MG_BUF_INIT;
    if (mg_wire_anthropic.build(op, n, &ao, &anth, err) != MG_OK) {
        mg_buf_free(&anth);
        return MG_ERROR;
    }
    if (o->betas != NULL) {
        *o->betas = betas;
    }
    int rc = mg_br_invoke_finish_body(mg_buf_head(&anth), mg_buf_len(&anth), betas, out, err);
    mg_buf_free(&anth);
    return rc;
}

/* Standard base64 (padding optional, no whitespace) into out; MG_ERROR on a bad character. */
static int
mg_br_base64_decode(const char *s, size_t n, mg_buf_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        int v;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '+') {
            v = 62;
        } else if (c == '/') {
            v = 63;
        } else if (c == '=') {
            break;
        } else {
            return MG_ERROR;
        }
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char b = (char) ((acc >> bits) & 0xFF);
            mg_buf_append(out, &b, 1);
        }
    }
    return MG_OK;
}

static int
mg_br_invoke_dec_named(mg_dec_t *d, const char *mtype, size_t mtype_len, const char *name,
                       size_t name_len, const char *data, size_t len, mg_api_err_t *err)
{
    if (d->ended) {
        return MG_OK;
    }
    if (mtype != NULL && !mg_br_name_is(mtype, mtype_len, "event")) {
        mg_br_dec_exception(d, name, name_len, data, len);
        return MG_OK;
    }
    if (!mg_br_name_is(name, name_len, "chunk")) {
        return MG_OK; /* not an event this wire knows */
    }
    mg_json_member_t b;
    if (mg_json_obj_find(data, len, "bytes", &b) != 1 || b.type != MG_JSON_STRING) {
        return mg_api_err(err, 502, NULL, NULL, "the upstream sent a chunk without \"bytes\"");
    }
    mg_buf_t raw = MG_BUF_INIT;
    if (b.val_len < 2 || mg_br_base64_decode(b.val + 1, b.val_len - 2, &raw) != MG_OK) {
        mg_buf_free(&raw);
        return mg_api_err(err, 502, NULL, NULL, "the upstream sent a chunk whose \"bytes\" are "
                          "not base64");
    }
    int rc = mg_wire_anthropic.dec_event(d, raw.data ? mg_buf_head(&raw) : "", mg_buf_len(&raw),
                                         err);
    mg_buf_free(&raw);
    return rc;
}

static int
mg_br_invoke_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    return mg_wire_anthropic.dec_event(d, data, len, err);
}

static int
mg_br_invoke_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    return mg_wire_anthropic.dec_body(d, body, len, err);
}

/* No client speaks a Bedrock wire: validate, neutral, encoders, relays and client error
 * bodies stay NULL (mg_api.c never reaches them for an upstream-only wire). */
const mg_wire_ops_t mg_wire_bedrock_converse = {
    .build = mg_br_build,
    .dec_event = mg_br_dec_event,
    .dec_body = mg_br_dec_body,
    .dec_named = mg_br_dec_named,
    .wire_error = mg_br_wire_error,
};

const mg_wire_ops_t mg_wire_bedrock_invoke = {
    .build = mg_br_invoke_build,
    .dec_event = mg_br_invoke_dec_event,
    .dec_body = mg_br_invoke_dec_body,
    .dec_named = mg_br_invoke_dec_named,
    .wire_error = mg_br_wire_error,
};
