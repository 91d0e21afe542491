/*
 * mg_api_gemini.c -- Google's Gemini wire (generateContent, streamGenerateContent?alt=sse,
 * batchEmbedContents, Vertex's :predict for embeddings), as LiteLLM's VertexGeminiConfig
 * translates it.  Upstream side only: no client speaks Gemini to moongate, so there is no
 * client parse, encoder or relay here.
 *
 * Request (neutral OpenAI chat JSON -> body): system messages -> systemInstruction;
 * user/assistant turns -> contents with roles user/model, consecutive turns of one side
 * merged; text, images (data: URLs inline, gs:// and https URLs with a known type as file
 * data), audio and files -> parts; assistant tool_calls -> functionCall parts, tool results
 * -> functionResponse parts named after their call; OpenAI parameters -> generationConfig
 * (temperature, topP, topK, maxOutputTokens, stopSequences, candidateCount, seed, penalties,
 * logprobs, responseModalities, responseMimeType/responseSchema from response_format,
 * thinkingConfig from reasoning_effort or thinking); tools -> one Tools object with
 * functionDeclarations (schemas cleaned to Gemini's OpenAPI subset) and Google's own tools;
 * tool_choice -> toolConfig.  Parameters Gemini has no place for are refused with LiteLLM's
 * UnsupportedParamsError unless drop_params.
 *
 * Response (body or SSE chunk -> events): candidates' parts (text, thought, functionCall,
 * inline data) per choice; finishReason mapped as LiteLLM's map_finish_reason (SAFETY,
 * RECITATION, ... -> content_filter); a blocked prompt or a flagged first candidate ->
 * content_filter with no content; usageMetadata -> mg_usage_t (candidates + thoughts when
 * the counts are exclusive, thoughts as reasoning, cachedContentTokenCount as cache read).
 * Embeddings: one MG_EV_EMBEDDING per vector.
 *
 * Body options: o->model is the upstream model, used for model-specific rules and the
 * embeddings request's model names, never written into a generateContent body (the model
 * is in the URL).  o->provider "vertex_ai" picks Vertex's embeddings shape (:predict),
 * anything else the Gemini API's batchEmbedContents.
 *
 * Pure: no I/O; allocations are jansson objects and the caller's buffers.
 */
#include "mg_api_int.h"

#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_GM_MAX_DEPTH 32

/* LiteLLM's reasoning-effort budgets (constants.py) */
#define MG_GM_BUDGET_LOW 1024
#define MG_GM_BUDGET_MEDIUM 2048
#define MG_GM_BUDGET_HIGH 4096

static const char *
mg_gm_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool
mg_gm_in(const char *k, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(k, *list) == 0) {
            return true;
        }
    }
    return false;
}

static bool
mg_gm_is_gemini3(const char *model)
{
    return model != NULL && strstr(model, "gemini-3") != NULL;
}

/* ---- schemas: JSON Schema -> Gemini's OpenAPI subset (LiteLLM's _build_vertex_schema) ---- */

static const char *const mg_gm_schema_fields[] = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
    NULL,
};

/* A copy of s with $ref expanded from defs, anyOf-null made nullable, object types added,
 * fields Gemini does not know removed, "" enum values made null. */
static json_t *
mg_gm_schema_node(json_t *s, json_t *defs, bool ordering, int depth)
{
    if (depth > MG_GM_MAX_DEPTH || !json_is_object(s)) {
        return json_is_object(s) ? json_object() : json_incref(s);
    }
    const char *ref = mg_gm_str(s, "$ref");
    if (ref != NULL && strncmp(ref, "#/$defs/", 8) == 0 && json_is_object(defs)) {
        json_t *target = json_object_get(defs, ref + 8);
        if (target != NULL) {
            return mg_gm_schema_node(target, defs, ordering, depth + 1);
        }
    }
    json_t *out = json_object();
    /* anyOf [X, {"type":"null"}] -> X with nullable */
    json_t *any = json_object_get(s, "anyOf");
    if (json_is_array(any)) {
        json_t *kept = json_array();
        bool nullable = false;
        size_t i;
        json_t *v;
        json_array_foreach(any, i, v) {
            const char *t = mg_gm_str(v, "type");
            if (t != NULL && strcmp(t, "null") == 0) {
                nullable = true;
            } else {
                json_array_append_new(kept, mg_gm_schema_node(v, defs, ordering, depth + 1));
            }
        }
        if (json_array_size(kept) == 1) {
            json_t *only = json_array_get(kept, 0);
            json_object_update(out, only);
        } else if (json_array_size(kept) > 1) {
            json_object_set(out, "anyOf", kept);
        }
        json_decref(kept);
        if (nullable) {
            json_object_set_new(out, "nullable", json_true());
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (strcmp(k, "anyOf") == 0 || !mg_gm_in(k, mg_gm_schema_fields)) {
            continue; /* additionalProperties, strict, $schema, $defs, ... */
        }
        if (strcmp(k, "properties") == 0 && json_is_object(v)) {
            json_t *props = json_object();
            json_t *order = json_array();
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv) {
                json_object_set_new(props, pk, mg_gm_schema_node(pv, defs, ordering, depth + 1));
                json_array_append_new(order, json_string(pk));
            }
            json_object_set_new(out, "properties", props);
            if (ordering && json_array_size(order) > 1 &&
                json_object_get(s, "propertyOrdering") == NULL) {
                json_object_set(out, "propertyOrdering", order);
            }
            json_decref(order);
        } else if (strcmp(k, "items") == 0) {
            json_object_set_new(out, "items", mg_gm_schema_node(v, defs, ordering, depth + 1));
        } else if (strcmp(k, "enum") == 0 && json_is_array(v)) {
            json_t *en = json_array();
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                bool empty = json_is_string(x) && json_string_length(x) == 0;
                json_array_append_new(en, empty ? json_null() : json_incref(x));
            }
            json_object_set_new(out, "enum", en);
        } else if (strcmp(k, "type") == 0 && json_is_array(v)) {
            /* ["string", "null"] -> "string" + nullable */
            json_t *first = NULL;
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (json_is_string(x) && strcmp(json_string_value(x), "null") == 0) {
                    json_object_set_new(out, "nullable", json_true());
                } else if (first == NULL) {
                    first = x;
                }
            }
            if (first != NULL) {
                json_object_set(out, "type", first);
            }
        } else {
            json_object_set(out, k, v);
        }
    }
    if (json_object_get(out, "properties") != NULL && json_object_get(out, "type") == NULL) {
        json_object_set_new(out, "type", json_string("object"));
    }
    return out;
}

static json_t *
mg_gm_schema(json_t *s, bool ordering)
{
    return mg_gm_schema_node(s, json_object_get(s, "$defs"), ordering, 0);
}

/* ---- request: content parts ---- */

static const struct {
    const char *ext;
    const char *mime;
} mg_gm_mimes[] = {
    {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".png", "image/png"},
    {".webp", "image/webp"}, {".mp4", "video/mp4"}, {".mov", "video/mov"},
    {".mpeg", "video/mpeg"}, {".mpg", "video/mpeg"}, {".avi", "video/avi"},
    {".wmv", "video/wmv"}, {".mpegps", "video/mpegps"}, {".flv", "video/flv"},
    {".mp3", "audio/mp3"}, {".wav", "audio/wav"}, {".pdf", "application/pdf"},
    {".txt", "text/plain"},
};

/* LiteLLM's _get_image_mime_type_from_url: by extension, case-insensitively. */
static const char *
mg_gm_mime_of(const char *url)
{
    size_t n = strcspn(url, "?#");
    for (size_t i = 0; i < sizeof(mg_gm_mimes) / sizeof(mg_gm_mimes[0]); i++) {
        size_t el = strlen(mg_gm_mimes[i].ext);
        if (n >= el && strncasecmp(url + n - el, mg_gm_mimes[i].ext, el) == 0) {
            return mg_gm_mimes[i].mime;
        }
    }
    return NULL;
}

/* A media reference (data: URL, gs://, https) as an inlineData or fileData part. */
static json_t *
mg_gm_media_part(const char *url, const char *format, mg_api_err_t *err)
{
    if (strncmp(url, "data:", 5) == 0) {
        const char *b64 = strstr(url, ";base64,");
        if (b64 == NULL) {
            mg_api_err(err, 400, "invalid_request_error", NULL,
                       "litellm.BadRequestError: Image url not in expected format. Example "
                       "Expected input - \"image_url\": \"data:image/jpeg;base64,{base64_image}\".");
            return NULL;
        }
        char mime[128];
        snprintf(mime, sizeof(mime), "%.*s", (int) (b64 - url - 5), url + 5);
        return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType",
                         format != NULL ? format : mime, "data", b64 + 8);
    }
    bool gs = strncmp(url, "gs://", 5) == 0;
    bool https = strncmp(url, "https://", 8) == 0;
    const char *mime = format != NULL ? format : mg_gm_mime_of(url);
    if ((gs || https) && mime != NULL) {
        return json_pack("{s:{s:s,s:s}}", "fileData", "mimeType", mime, "fileUri", url);
    }
    if (gs) {
        mg_api_err(err, 400, "invalid_request_error", NULL,
                   "litellm.BadRequestError: File type not supported by gemini - %.200s", url);
        return NULL;
    }
    /* LiteLLM downloads other URLs and inlines them; a provider here does no I/O */
    mg_api_err(err, 400, "invalid_request_error", NULL,
               "litellm.BadRequestError: moongate does not download media for Gemini: send a "
               "data: URL, a gs:// URI, or an https URL with a known file extension (or set "
               "\"format\" to its MIME type)");
    return NULL;
}

/* The parts of a user (or system-as-user) message. */
static int
mg_gm_user_parts(json_t *content, json_t *parts, mg_api_err_t *err)
{
    if (json_is_string(content)) {
        json_array_append_new(parts, json_pack("{s:O}", "text", content));
        return MG_OK;
    }
    size_t i;
    json_t *el;
    json_array_foreach(content, i, el) {
        const char *type = mg_gm_str(el, "type");
        if (type == NULL) {
            continue;
        }
        json_t *part = NULL;
        if (strcmp(type, "text") == 0) {
            json_t *t = json_object_get(el, "text");
            if (json_is_string(t) && json_string_length(t) > 0) {
                part = json_pack("{s:O}", "text", t);
            }
        } else if (strcmp(type, "image_url") == 0) {
            json_t *iu = json_object_get(el, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : mg_gm_str(iu, "url");
            if (url == NULL) {
                return mg_api_err(err, 400, "invalid_request_error", "messages",
                                  "litellm.BadRequestError: Invalid image received - %s", "(none)");
            }
            part = mg_gm_media_part(url, mg_gm_str(iu, "format"), err);
            if (part == NULL) {
                return MG_ERROR;
            }
        } else if (strcmp(type, "input_audio") == 0) {
            json_t *au = json_object_get(el, "input_audio");
            const char *data = mg_gm_str(au, "data");
            const char *fmt = mg_gm_str(au, "format");
            if (data != NULL && fmt != NULL) {
                char mime[64];
                snprintf(mime, sizeof(mime), "%s%s", strncmp(fmt, "audio/", 6) == 0 ? "" : "audio/",
                         fmt);
                part = json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mime, "data", data);
            }
        } else if (strcmp(type, "file") == 0) {
            json_t *f = json_object_get(el, "file");
            const char *ref = mg_gm_str(f, "file_id");
            if (ref == NULL) {
                ref = mg_gm_str(f, "file_data");
            }
            if (ref == NULL) {
                return mg_api_err(err, 400, "invalid_request_error", "messages",
                                  "litellm.BadRequestError: Unknown file type. Please pass in a "
                                  "file_id or file_data");
            }
            part = mg_gm_media_part(ref, mg_gm_str(f, "format"), err);
            if (part == NULL) {
                return MG_ERROR;
            }
        }
        if (part != NULL) {
            json_array_append_new(parts, part);
        }
    }
    return MG_OK;
}

static bool
mg_gm_has_text(json_t *parts)
{
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t) && json_string_length(t) > 0) {
            return true;
        }
    }
    return false;
}

/* Text of a message content (string, or the text parts of a list). */
static char *
mg_gm_text_of(json_t *content)
{
    if (json_is_string(content)) {
        return mg_xstrdup(json_string_value(content));
    }
    mg_buf_t b = MG_BUF_INIT;
    size_t i;
    json_t *el;
    json_array_foreach(content, i, el) {
        const char *t = mg_gm_str(el, "text");
        if (t != NULL) {
            mg_buf_append_str(&b, t);
        }
    }
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* The assistant's tool calls as functionCall parts. */
static int
mg_gm_calls(json_t *m, json_t *parts, mg_api_err_t *err)
{
    json_t *calls = json_object_get(m, "tool_calls");
    json_t *fc = json_object_get(m, "function_call");
    size_t i;
    json_t *c;
    json_t *one = json_is_object(fc) ? json_pack("[{s:O}]", "function", fc) : NULL;
    json_t *list = json_is_array(calls) ? calls : one;
    json_array_foreach(list, i, c) {
        json_t *fn = json_object_get(c, "function");
        const char *name = mg_gm_str(fn, "name");
        const char *args = mg_gm_str(fn, "arguments");
        json_t *a = args != NULL && args[0] != '\0' ? json_loads(args, JSON_DECODE_ANY, NULL)
                                                    : json_object();
        if (a == NULL || name == NULL) {
            json_decref(a);
            json_decref(one);
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: Unable to parse the arguments of tool "
                              "call %s as JSON", name != NULL ? name : "(no name)");
        }
        json_array_append_new(parts, json_pack("{s:{s:s,s:o}}", "functionCall", "name", name,
                                               "args", a));
    }
    json_decref(one);
    return MG_OK;
}

/* A tool (or function) message as a functionResponse part. */
static int
mg_gm_tool_result(json_t *m, json_t *last_calls, json_t *parts, mg_api_err_t *err)
{
    const char *name = mg_gm_str(m, "name");
    const char *id = mg_gm_str(m, "tool_call_id");
    json_t *calls = json_object_get(last_calls, "tool_calls");
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        const char *cid = mg_gm_str(c, "id");
        if (id != NULL && cid != NULL && strcmp(id, cid) == 0) {
            name = mg_gm_str(json_object_get(c, "function"), "name");
        }
    }
    if (name == NULL) {
        json_t *fc = json_object_get(last_calls, "function_call");
        name = mg_gm_str(fc, "name");
    }
    if (name == NULL) {
        return mg_api_err(err, 400, "invalid_request_error", "messages",
                          "litellm.BadRequestError: Missing corresponding tool call for tool "
                          "response message. Received - message=%s", id != NULL ? id : "(no id)");
    }
    char *text = mg_gm_text_of(json_object_get(m, "content"));
    json_array_append_new(parts, json_pack("{s:{s:s,s:{s:s}}}", "functionResponse", "name", name,
                                           "response", "content", text));
    free(text);
    return MG_OK;
}

/* LiteLLM's _transform_system_message + _gemini_convert_messages_with_history. */
static int
mg_gm_contents(json_t *msgs, json_t *sys_parts, json_t *contents, mg_api_err_t *err)
{
    size_t n = json_array_size(msgs);
    size_t i = 0;
    json_t *last_calls = NULL; /* borrowed: the last assistant message with tool calls */
    json_t *responses = json_array();
    while (i < n) {
        size_t start = i;
        json_t *user = json_array();
        for (; i < n; i++) {
            json_t *m = json_array_get(msgs, i);
            const char *role = mg_gm_str(m, "role");
            if (role == NULL) {
                break;
            }
            if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
                char *t = mg_gm_text_of(json_object_get(m, "content"));
                json_array_append_new(sys_parts, json_pack("{s:s}", "text", t));
                free(t);
                continue;
            }
            if (strcmp(role, "user") != 0) {
                break;
            }
            if (mg_gm_user_parts(json_object_get(m, "content"), user, err) != MG_OK) {
                json_decref(user);
                json_decref(responses);
                return MG_ERROR;
            }
        }
        if (json_array_size(user) > 0) {
            if (!mg_gm_has_text(user)) {
                /* Vertex: "Unable to submit request because it must have a text parameter" */
                json_array_append_new(user, json_pack("{s:s}", "text", " "));
            }
            json_array_append_new(contents, json_pack("{s:s,s:O}", "role", "user", "parts", user));
        }
        json_decref(user);
        json_t *model = json_array();
        for (; i < n; i++) {
            json_t *m = json_array_get(msgs, i);
            const char *role = mg_gm_str(m, "role");
            if (role == NULL || strcmp(role, "assistant") != 0) {
                break;
            }
            const char *rc = mg_gm_str(m, "reasoning_content");
            json_t *tb = json_object_get(m, "thinking_blocks");
            if (rc != NULL && !json_is_array(tb)) {
                json_array_append_new(model, json_pack("{s:b,s:s}", "thought", 1, "text", rc));
            }
            size_t k;
            json_t *b;
            json_array_foreach(tb, k, b) {
                const char *th = mg_gm_str(b, "thinking");
                const char *sig = mg_gm_str(b, "signature");
                if (th != NULL && sig != NULL) {
                    json_array_append_new(model, json_pack("{s:b,s:s,s:s}", "thought", 1, "text",
                                                           th, "thoughtSignature", sig));
                }
            }
            json_t *content = json_object_get(m, "content");
            if (json_is_string(content) && json_string_length(content) > 0) {
                json_array_append_new(model, json_pack("{s:O}", "text", content));
            } else if (json_is_array(content)) {
                json_array_foreach(content, k, b) {
                    const char *t = mg_gm_str(b, "text");
                    const char *ty = mg_gm_str(b, "type");
                    if (t != NULL && ty != NULL && strcmp(ty, "text") == 0) {
                        json_array_append_new(model, json_pack("{s:s}", "text", t));
                    }
                }
            }
            if (json_object_get(m, "tool_calls") != NULL ||
                json_object_get(m, "function_call") != NULL) {
                if (mg_gm_calls(m, model, err) != MG_OK) {
                    json_decref(model);
                    json_decref(responses);
                    return MG_ERROR;
                }
                last_calls = m;
            }
        }
        if (json_array_size(model) > 0) {
            json_array_append_new(contents, json_pack("{s:s,s:O}", "role", "model", "parts", model));
        }
        json_decref(model);
        if (i < n) {
            json_t *m = json_array_get(msgs, i);
            const char *role = mg_gm_str(m, "role");
            if (role != NULL && (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0)) {
                if (mg_gm_tool_result(m, last_calls, responses, err) != MG_OK) {
                    json_decref(responses);
                    return MG_ERROR;
                }
                i++;
            }
        }
        if (i < n) {
            const char *role = mg_gm_str(json_array_get(msgs, i), "role");
            bool tool = role != NULL && (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0);
            if (!tool && json_array_size(responses) > 0) {
                json_array_append_new(contents, json_pack("{s:s,s:o}", "role", "user", "parts",
                                                          responses));
                responses = json_array(); /* the turn took the old one */
            }
        }
        if (i == start) {
            json_decref(responses);
            return mg_api_err(err, 400, "invalid_request_error", "messages",
                              "litellm.BadRequestError: Invalid Message passed in - role %s",
                              mg_gm_str(json_array_get(msgs, i), "role")
                                  ? mg_gm_str(json_array_get(msgs, i), "role")
                                  : "(none)");
        }
    }
    if (json_array_size(responses) > 0) {
        json_array_append_new(contents, json_pack("{s:s,s:O}", "role", "user", "parts", responses));
    }
    json_decref(responses);
    if (json_array_size(contents) == 0) {
        json_array_append_new(contents, json_pack("{s:s,s:[{s:s}]}", "role", "user", "parts",
                                                  "text", " "));
    }
    return MG_OK;
}

/* ---- request: parameters ---- */

/* VertexGeminiConfig.get_supported_openai_params, plus what _check_valid_arg never checks
 * (stream_options, max_retries) and user (dropped: Gemini has no place for it). */
static const char *const mg_gm_supported[] = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stream", "tools", "functions",
    "tool_choice", "response_format", "n", "stop", "extra_headers", "seed", "logprobs",
    "top_logprobs", "modalities", "parallel_tool_calls", "web_search_options", "reasoning_effort",
    "thinking", "stream_options", "max_retries", "user", "frequency_penalty", "presence_penalty",
    NULL,
};

/* Gemini's own parameters a request may carry as they are (snake or camel). */
static const struct {
    const char *in;
    const char *out;
} mg_gm_passthrough_gen[] = {
    {"top_k", "topK"}, {"topK", "topK"}, {"response_mime_type", "responseMimeType"},
    {"responseMimeType", "responseMimeType"}, {"response_schema", "responseSchema"},
    {"max_output_tokens", "maxOutputTokens"}, {"candidate_count", "candidateCount"},
    {"stop_sequences", "stopSequences"}, {"thinkingConfig", "thinkingConfig"},
    {"thinking_config", "thinkingConfig"}, {"media_resolution", "mediaResolution"},
    {"responseModalities", "responseModalities"}, {"speechConfig", "speechConfig"},
};

static int
mg_gm_unsupported(json_t *n, const mg_body_opts_t *o, const char *model, mg_api_err_t *err)
{
    mg_buf_t bad = MG_BUF_INIT;
    int nbad = 0;
    const char *k;
    json_t *v;
    json_object_foreach(n, k, v) {
        if (json_is_null(v) || !mg_gm_in(k, mg_api_openai_params) || mg_gm_in(k, mg_gm_supported)) {
            continue;
        }
        bool listed = false;
        size_t ai;
        json_t *av;
        json_array_foreach(o->additional_drop, ai, av) {
            listed = listed || (json_is_string(av) && strcmp(json_string_value(av), k) == 0);
        }
        if (o->drop_params || listed) {
            continue;
        }
        mg_buf_printf(&bad, "%s'%s'", nbad++ ? ", " : "", k);
    }
    /* Gemini 3 takes no penalties */
    if (mg_gm_is_gemini3(model) && !o->drop_params) {
        for (const char *const *p = (const char *const[]) {"frequency_penalty", "presence_penalty",
                                                          NULL};
             *p; p++) {
            if (json_object_get(n, *p) != NULL && !json_is_null(json_object_get(n, *p))) {
                mg_buf_printf(&bad, "%s'%s'", nbad++ ? ", " : "", *p);
            }
        }
    }
    if (nbad > 0) {
        mg_api_err(err, 400, NULL, NULL,
                   "litellm.UnsupportedParamsError: %s does not support parameters: [%s], for "
                   "model=%s. To drop these, set `litellm.drop_params=True` or for proxy:\n\n"
                   "`litellm_settings:\n drop_params: true`\n. \n If you want to use these params "
                   "dynamically send allowed_openai_params=[%s] in your request.",
                   o->provider ? o->provider : "gemini", mg_buf_cstr(&bad), model ? model : "",
                   mg_buf_cstr(&bad));
        mg_buf_free(&bad);
        return MG_ERROR;
    }
    mg_buf_free(&bad);
    return MG_OK;
}

/* reasoning_effort -> thinkingConfig (thinkingLevel on Gemini 3, a budget before). */
static json_t *
mg_gm_effort(const char *effort, const char *model, mg_api_err_t *err)
{
    if (mg_gm_is_gemini3(model)) {
        const char *level = NULL;
        bool include = true;
        if (strcmp(effort, "minimal") == 0 || strcmp(effort, "low") == 0) {
            level = "low";
        } else if (strcmp(effort, "medium") == 0 || strcmp(effort, "high") == 0) {
            level = "high"; /* LiteLLM: "medium is not out yet" */
        } else if (strcmp(effort, "disable") == 0 || strcmp(effort, "none") == 0) {
            level = "low";
            include = false;
        }
        if (level != NULL) {
            return json_pack("{s:s,s:b}", "thinkingLevel", level, "includeThoughts", include);
        }
    } else {
        int budget = -1;
        bool include = true;
        if (strcmp(effort, "minimal") == 0) {
            budget = model && strstr(model, "gemini-2.5-flash-lite") ? 512
                     : model && strstr(model, "gemini-2.5-pro")      ? 128
                     : model && strstr(model, "gemini-2.5-flash")    ? 1
                                                                     : 128;
        } else if (strcmp(effort, "low") == 0) {
            budget = MG_GM_BUDGET_LOW;
        } else if (strcmp(effort, "medium") == 0) {
            budget = MG_GM_BUDGET_MEDIUM;
        } else if (strcmp(effort, "high") == 0) {
            budget = MG_GM_BUDGET_HIGH;
        } else if (strcmp(effort, "disable") == 0 || strcmp(effort, "none") == 0) {
            budget = 0;
            include = false;
        }
        if (budget >= 0) {
            return json_pack("{s:i,s:b}", "thinkingBudget", budget, "includeThoughts", include);
        }
    }
    mg_api_err(err, 400, NULL, "reasoning_effort",
               "litellm.BadRequestError: Invalid reasoning effort: %.60s", effort);
    return NULL;
}

/* tool_choice -> toolConfig (LiteLLM's map_tool_choice_values). */
static json_t *
mg_gm_tool_choice(json_t *tc, const mg_body_opts_t *o, mg_api_err_t *err, bool *refused)
{
    *refused = false;
    const char *s = json_string_value(tc);
    const char *mode = NULL;
    if (s != NULL) {
        mode = strcmp(s, "none") == 0       ? "NONE"
               : strcmp(s, "required") == 0 ? "ANY"
               : strcmp(s, "auto") == 0     ? "AUTO"
                                            : NULL;
        if (mode != NULL) {
            return json_pack("{s:{s:s}}", "functionCallingConfig", "mode", mode);
        }
    } else if (json_is_object(tc)) {
        const char *name = mg_gm_str(json_object_get(tc, "function"), "name");
        return json_pack("{s:{s:s,s:[s]}}", "functionCallingConfig", "mode", "ANY",
                         "allowedFunctionNames", name ? name : "");
    }
    if (o->drop_params) {
        return NULL;
    }
    *refused = true;
    char *d = json_dumps(tc, JSON_ENCODE_ANY);
    mg_api_err(err, 400, NULL, "tool_choice",
               "litellm.UnsupportedParamsError: VertexAI doesn't support tool_choice=%s. Supported "
               "tool_choice values=['auto', 'required', json object]. To drop it from the call, "
               "set `litellm.drop_params = True.", d ? d : "?");
    free(d);
    return NULL;
}

/* Google's own tools an OpenAI tools list may carry (one key each). */
static const char *const mg_gm_google_tools[] = {
    "googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval",
    "enterpriseWebSearch", "enterprise_web_search", "codeExecution", "code_execution",
    "urlContext", "url_context", "googleMaps", "google_maps", NULL,
};

static void
mg_gm_camel(const char *in, char *out, size_t n)
{
    size_t j = 0;
    bool up = false;
    for (size_t i = 0; in[i] && j + 1 < n; i++) {
        if (in[i] == '_') {
            up = true;
            continue;
        }
        out[j++] = up && in[i] >= 'a' && in[i] <= 'z' ? (char) (in[i] - 32) : in[i];
        up = false;
    }
    out[j] = '\0';
}

static json_t *
mg_gm_tools(json_t *tools, json_t *functions, json_t *wso)
{
    json_t *decls = json_array();
    json_t *tobj = json_object();
    json_t *lists[2] = {tools, functions};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *t;
        json_array_foreach(lists[l], i, t) {
            json_t *fn = json_object_get(t, "function");
            if (!json_is_object(fn) && l == 1) {
                fn = t; /* legacy functions list */
            }
            bool google = false;
            const char *k;
            json_t *v;
            json_object_foreach(t, k, v) {
                if (mg_gm_in(k, mg_gm_google_tools)) {
                    char ck[64];
                    mg_gm_camel(k, ck, sizeof(ck));
                    json_object_set(tobj, ck, v);
                    google = true;
                }
            }
            const char *name = mg_gm_str(fn, "name");
            if (google || name == NULL) {
                continue;
            }
            json_t *d = json_pack("{s:s}", "name", name);
            json_t *desc = json_object_get(fn, "description");
            if (json_is_string(desc)) {
                json_object_set(d, "description", desc);
            }
            json_t *params = json_object_get(fn, "parameters");
            if (json_is_object(params)) {
                json_object_set_new(d, "parameters", mg_gm_schema(params, false));
            }
            json_array_append_new(decls, d);
        }
    }
    if (json_is_object(wso)) {
        json_object_set_new(tobj, "googleSearch", json_object());
    }
    if (json_array_size(decls) > 0) {
        json_object_set(tobj, "functionDeclarations", decls);
    }
    json_decref(decls);
    if (json_object_size(tobj) == 0) {
        json_decref(tobj);
        return NULL;
    }
    return json_pack("[o]", tobj);
}

static int
mg_gm_build_chat(json_t *n, const mg_body_opts_t *o, json_t *body, mg_api_err_t *err)
{
    const char *model = o->model != NULL ? o->model : o->client_model;
    if (mg_gm_unsupported(n, o, model, err) != MG_OK) {
        return MG_ERROR;
    }
    /* contents and the system instruction */
    json_t *sys = json_array();
    json_t *contents = json_array();
    if (mg_gm_contents(json_object_get(n, "messages"), sys, contents, err) != MG_OK) {
        json_decref(sys);
        json_decref(contents);
        return MG_ERROR;
    }
    json_object_set_new(body, "contents", contents);
    if (json_array_size(sys) > 0) {
        json_object_set_new(body, "systemInstruction", json_pack("{s:o}", "parts", sys));
    } else {
        json_decref(sys);
    }
    /* generationConfig */
    json_t *gc = json_object();
    json_t *v;
    if ((v = json_object_get(n, "temperature")) != NULL && json_is_number(v)) {
        json_object_set(gc, "temperature", v);
    }
    if ((v = json_object_get(n, "top_p")) != NULL && json_is_number(v)) {
        json_object_set(gc, "topP", v);
    }
    v = json_object_get(n, "max_completion_tokens");
    if (!json_is_number(v)) {
        v = json_object_get(n, "max_tokens");
    }
    if (json_is_number(v)) {
        json_object_set(gc, "maxOutputTokens", v);
    }
    v = json_object_get(n, "stop");
    if (json_is_string(v)) {
        json_object_set_new(gc, "stopSequences", json_pack("[O]", v));
    } else if (json_is_array(v)) {
        json_object_set(gc, "stopSequences", v);
    }
    if ((v = json_object_get(n, "n")) != NULL && json_is_number(v)) {
        json_object_set(gc, "candidateCount", v);
    }
    if ((v = json_object_get(n, "seed")) != NULL && json_is_number(v)) {
        json_object_set(gc, "seed", v);
    }
    if (!mg_gm_is_gemini3(model)) {
        if ((v = json_object_get(n, "frequency_penalty")) != NULL && json_is_number(v)) {
            json_object_set(gc, "frequencyPenalty", v);
        }
        if ((v = json_object_get(n, "presence_penalty")) != NULL && json_is_number(v)) {
            json_object_set(gc, "presencePenalty", v);
        }
    }
    if ((v = json_object_get(n, "logprobs")) != NULL && json_is_boolean(v)) {
        json_object_set(gc, "responseLogprobs", v);
    }
    if ((v = json_object_get(n, "top_logprobs")) != NULL && json_is_number(v)) {
        json_object_set(gc, "logprobs", v);
    }
    v = json_object_get(n, "modalities");
    if (json_is_array(v)) {
        json_t *mods = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            const char *s = json_string_value(m);
            json_array_append_new(mods, json_string(s && strcmp(s, "text") == 0    ? "TEXT"
                                                    : s && strcmp(s, "image") == 0 ? "IMAGE"
                                                    : s && strcmp(s, "audio") == 0 ? "AUDIO"
                                                               : "MODALITY_UNSPECIFIED"));
        }
        json_object_set_new(gc, "responseModalities", mods);
    }
    /* response_format */
    json_t *rf = json_object_get(n, "response_format");
    const char *rft = mg_gm_str(rf, "type");
    if (rft != NULL) {
        json_t *schema = json_object_get(rf, "response_schema");
        if (schema == NULL && strcmp(rft, "json_schema") == 0) {
            schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        }
        if (strcmp(rft, "json_object") == 0 || schema != NULL) {
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        } else if (strcmp(rft, "text") == 0) {
            json_object_set_new(gc, "responseMimeType", json_string("text/plain"));
        }
        if (json_is_object(schema)) {
            json_object_set_new(gc, "responseSchema", mg_gm_schema(schema, true));
        }
    }
    /* thinking */
    const char *effort = mg_gm_str(n, "reasoning_effort");
    json_t *th = json_object_get(n, "thinking");
    if (effort != NULL) {
        json_t *tc = mg_gm_effort(effort, model, err);
        if (tc == NULL) {
            json_decref(gc);
            return MG_ERROR;
        }
        json_object_set_new(gc, "thinkingConfig", tc);
    } else if (json_is_object(th)) {
        json_t *tc = json_object();
        json_t *bt = json_object_get(th, "budget_tokens");
        const char *tt = mg_gm_str(th, "type");
        bool zero = json_is_integer(bt) && json_integer_value(bt) == 0;
        if (tt != NULL && strcmp(tt, "enabled") == 0 && !zero) {
            json_object_set_new(tc, "includeThoughts", json_true());
        }
        if (json_is_integer(bt)) {
            json_object_set(tc, "thinkingBudget", bt);
        }
        json_object_set_new(gc, "thinkingConfig", tc);
    }
    /* Gemini's own generation parameters, given as they are */
    for (size_t i = 0; i < sizeof(mg_gm_passthrough_gen) / sizeof(mg_gm_passthrough_gen[0]); i++) {
        v = json_object_get(n, mg_gm_passthrough_gen[i].in);
        if (v != NULL && !json_is_null(v) && json_object_get(gc, mg_gm_passthrough_gen[i].out) == NULL) {
            json_object_set(gc, mg_gm_passthrough_gen[i].out, v);
        }
    }
    if (mg_gm_is_gemini3(model)) {
        /* LiteLLM: temperature 1.0 and thinkingLevel low unless given */
        if (json_object_get(gc, "temperature") == NULL) {
            json_object_set_new(gc, "temperature", json_real(1.0));
        }
        json_t *tc = json_object_get(gc, "thinkingConfig");
        if (tc == NULL) {
            json_object_set_new(gc, "thinkingConfig", json_pack("{s:s}", "thinkingLevel", "low"));
        } else if (json_object_get(tc, "thinkingLevel") == NULL &&
                   json_object_get(tc, "thinkingBudget") == NULL) {
            json_object_set_new(tc, "thinkingLevel", json_string("low"));
        }
    }
    if (json_object_size(gc) > 0) {
        json_object_set_new(body, "generationConfig", gc);
    } else {
        json_decref(gc);
    }
    /* tools and tool choice */
    json_t *tools = json_object_get(n, "tools");
    json_t *ptc = json_object_get(n, "parallel_tool_calls");
    size_t ntools = json_array_size(tools) + json_array_size(json_object_get(n, "functions"));
    if (json_is_false(ptc) && ntools > 1 && !o->drop_params) {
        return mg_api_err(err, 400, NULL, "parallel_tool_calls",
                          "litellm.UnsupportedParamsError: `parallel_tool_calls=False` is not "
                          "supported by Gemini when multiple tools are provided. Specify a single "
                          "tool, or set `parallel_tool_calls=True`. If you want to drop this "
                          "param, set `litellm.drop_params = True` or pass in `(.., "
                          "drop_params=True)` in the requst - "
                          "https://docs.litellm.ai/docs/completion/drop_params");
    }
    json_t *gt = mg_gm_tools(tools, json_object_get(n, "functions"),
                             json_object_get(n, "web_search_options"));
    if (gt != NULL) {
        json_object_set_new(body, "tools", gt);
    }
    json_t *tc = json_object_get(n, "tool_choice");
    if (tc != NULL && !json_is_null(tc)) {
        bool refused;
        json_t *cfg = mg_gm_tool_choice(tc, o, err, &refused);
        if (refused) {
            return MG_ERROR;
        }
        if (cfg != NULL) {
            json_object_set_new(body, "toolConfig", cfg);
        }
    }
    /* provider-specific members Gemini takes at the top level */
    static const struct {
        const char *in;
        const char *out;
    } top[] = {
        {"safety_settings", "safetySettings"}, {"safetySettings", "safetySettings"},
        {"cached_content", "cachedContent"}, {"cachedContent", "cachedContent"},
        {"labels", "labels"},
    };
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        v = json_object_get(n, top[i].in);
        if (v == NULL || json_is_null(v) || json_object_get(body, top[i].out) != NULL) {
            continue;
        }
        if (strcmp(top[i].in, "labels") == 0 && o->provider != NULL &&
            strcmp(o->provider, "gemini") == 0) {
            continue; /* labels are Vertex's only */
        }
        json_object_set(body, top[i].out, v);
    }
    return MG_OK;
}

/* ---- request: embeddings ---- */

static int
mg_gm_build_embed(json_t *n, const mg_body_opts_t *o, json_t *body, mg_api_err_t *err)
{
    json_t *input = json_object_get(n, "input");
    json_t *list = json_is_string(input) ? json_pack("[O]", input) : json_incref(input);
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        if (!json_is_string(x)) {
            json_decref(list);
            return mg_api_err(err, 400, "invalid_request_error", "input",
                              "litellm.BadRequestError: %s embeddings take text: input must be a "
                              "string or a list of strings (token arrays are not supported)",
                              o->provider ? o->provider : "gemini");
        }
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        return mg_api_err(err, 400, "invalid_request_error", "input",
                          "litellm.BadRequestError: input must not be empty");
    }
    json_t *dims = json_object_get(n, "dimensions");
    json_t *task = json_object_get(n, "task_type");
    if (task == NULL) {
        task = json_object_get(n, "taskType");
    }
    const char *model = o->model != NULL ? o->model : "";
    if (o->provider != NULL && strcmp(o->provider, "vertex_ai") == 0) {
        /* Vertex: :predict with instances (LiteLLM's vertex_embeddings) */
        json_t *inst = json_array();
        json_array_foreach(list, i, x) {
            json_t *one = json_pack("{s:O}", "content", x);
            if (json_is_string(task)) {
                json_object_set(one, "task_type", task);
            }
            json_array_append_new(inst, one);
        }
        json_object_set_new(body, "instances", inst);
        if (json_is_number(dims)) {
            json_object_set_new(body, "parameters", json_pack("{s:O}", "outputDimensionality", dims));
        }
    } else {
        char mname[512];
        snprintf(mname, sizeof(mname), "models/%s", model);
        json_t *reqs = json_array();
        json_array_foreach(list, i, x) {
            json_t *one = json_pack("{s:s,s:{s:[{s:O}]}}", "model", mname, "content", "parts",
                                    "text", x);
            if (json_is_number(dims)) {
                json_object_set(one, "outputDimensionality", dims);
            }
            if (json_is_string(task)) {
                json_object_set(one, "taskType", task);
            }
            json_array_append_new(reqs, one);
        }
        json_object_set_new(body, "requests", reqs);
    }
    json_decref(list);
    return MG_OK;
}

static int
mg_gm_build(mg_op_t op, json_t *n, const mg_body_opts_t *o, mg_buf_t *out, mg_api_err_t *err)
{
    if (op != MG_OP_CHAT && op != MG_OP_EMBEDDINGS) {
        return mg_api_err(err, 400, NULL, NULL,
                          "litellm.BadRequestError: %s does not support this route",
                          o->provider ? o->provider : "gemini");
    }
    /* deployment defaults are call arguments, as for the other wires */
    json_t *nn = json_copy(n);
    const char *dk;
    json_t *dv;
    json_object_foreach(o->defaults, dk, dv) {
        if (json_object_get(nn, dk) == NULL) {
            json_object_set(nn, dk, dv);
        }
    }
    size_t ai;
    json_t *av;
    json_array_foreach(o->additional_drop, ai, av) {
        if (json_is_string(av)) {
            json_object_del(nn, json_string_value(av));
        }
    }
    json_t *body = json_object();
    int rc = op == MG_OP_EMBEDDINGS ? mg_gm_build_embed(nn, o, body, err)
                                    : mg_gm_build_chat(nn, o, body, err);
    json_decref(nn);
    if (rc != MG_OK) {
        json_decref(body);
        return MG_ERROR;
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    mg_buf_append_str(out, s);
    free(s);
    if (o->extra_members != NULL && o->extra_members[0] != '\0' && mg_buf_len(out) > 2) {
        out->end--;
        mg_buf_append_str(out, o->extra_members);
        mg_buf_append(out, "}", 1);
    }
    return MG_OK;
}

/* ---- response: events ---- */

static void
mg_gm_emit(mg_dec_t *d, mg_ev_t *ev)
{
    d->sink(d->ud, ev);
}

/* LiteLLM's map_finish_reason for Gemini's reasons. */
static mg_finish_t
mg_gm_finish(const char *r)
{
    static const char *const filter[] = {
        "SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "NO_IMAGE", "IMAGE_RECITATION", "IMAGE_OTHER",
        "ESCALATION", NULL,
    };
    if (r == NULL) {
        return MG_FIN_NONE;
    }
    if (strcmp(r, "MAX_TOKENS") == 0) {
        return MG_FIN_LENGTH;
    }
    return mg_gm_in(r, filter) ? MG_FIN_CONTENT_FILTER : MG_FIN_STOP;
}

/* Reasons that make LiteLLM drop the content (get_flagged_finish_reasons). */
static bool
mg_gm_flagged(const char *r)
{
    static const char *const flagged[] = {"SAFETY", "RECITATION", "BLOCKLIST",
                                          "PROHIBITED_CONTENT", "SPII", NULL};
    return r != NULL && mg_gm_in(r, flagged);
}

static int64_t
mg_gm_int(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void
mg_gm_usage(mg_dec_t *d, json_t *um)
{
    if (!json_is_object(um)) {
        return;
    }
    mg_usage_t *u = d->usage;
    int64_t prompt = mg_gm_int(um, "promptTokenCount");
    int64_t cand = mg_gm_int(um, "candidatesTokenCount");
    int64_t thoughts = mg_gm_int(um, "thoughtsTokenCount");
    int64_t total = mg_gm_int(um, "totalTokenCount");
    /* counts are exclusive when prompt + candidates != total: thoughts are extra output */
    bool inclusive = prompt + cand == total;
    u->prompt_tokens = prompt;
    u->completion_tokens = !inclusive && thoughts > 0 ? cand + thoughts : cand;
    u->total_tokens = total;
    u->reasoning_tokens = thoughts;
    u->cache_read_tokens = mg_gm_int(um, "cachedContentTokenCount");
    u->seen = true;
    mg_ev_t ev = {.kind = MG_EV_USAGE};
    mg_gm_emit(d, &ev);
}

static void
mg_gm_start(mg_dec_t *d, json_t *j)
{
    if (d->started) {
        return;
    }
    d->started = true;
    for (size_t i = 0; i < sizeof(d->block_kind) / sizeof(d->block_kind[0]); i++) {
        d->block_kind[i] = 0; /* per choice: 1 finish sent, 2 a tool call seen */
    }
    mg_ev_t ev = {.kind = MG_EV_START, .created = mg_time_real_ms() / 1000};
    const char *id = mg_gm_str(j, "responseId");
    const char *mv = mg_gm_str(j, "modelVersion");
    char idbuf[160];
    if (id != NULL && strlen(id) < 120) {
        snprintf(idbuf, sizeof(idbuf), "chatcmpl-%s", id);
        ev.id = idbuf;
        ev.id_len = strlen(idbuf);
    }
    if (mv != NULL) {
        ev.name = mv;
        ev.name_len = strlen(mv);
    }
    mg_gm_emit(d, &ev);
}

/* A tool call id as LiteLLM makes one: call_ + a UUID. */
static void
mg_gm_call_id(char out[48])
{
    char uuid[37];
    mg_uuid4(uuid);
    snprintf(out, 48, "call_%s", uuid);
}

/* One candidate: its parts, then (once) its finish reason. */
static void
mg_gm_candidate(mg_dec_t *d, json_t *cand, int idx)
{
    if (idx < 0 || idx >= 64) {
        return;
    }
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    bool tools = false;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        json_t *text = json_object_get(p, "text");
        json_t *fc = json_object_get(p, "functionCall");
        json_t *inl = json_object_get(p, "inlineData");
        if (json_is_object(fc)) {
            const char *name = mg_gm_str(fc, "name");
            json_t *args = json_object_get(fc, "args");
            char *a = args != NULL ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY)
                                   : mg_xstrdup("{}");
            char id[48];
            mg_gm_call_id(id);
            int tool = ++d->block_tool[idx];
            mg_ev_t ev = {.kind = MG_EV_TOOL, .index = idx, .tool = tool};
            ev.id = id;
            ev.id_len = strlen(id);
            ev.name = name != NULL ? name : "";
            ev.name_len = strlen(ev.name);
            ev.text = a;
            ev.text_len = strlen(a);
            mg_gm_emit(d, &ev);
            free(a);
            tools = true;
            d->block_kind[idx] |= 2;
        } else if (json_is_string(text)) {
            bool thought = json_is_true(json_object_get(p, "thought"));
            mg_ev_t ev = {.kind = thought ? MG_EV_REASONING : MG_EV_TEXT, .index = idx};
            ev.text = json_string_value(text);
            ev.text_len = json_string_length(text);
            const char *sig = mg_gm_str(p, "thoughtSignature");
            if (thought && sig != NULL) {
                ev.sig = sig;
                ev.sig_len = strlen(sig);
            }
            if (ev.text_len > 0 || ev.sig != NULL) {
                mg_gm_emit(d, &ev);
            }
        } else if (json_is_object(inl)) {
            /* generated media, as LiteLLM shows it: a data URL in the content */
            mg_buf_reset(&d->scratch);
            mg_buf_printf(&d->scratch, "data:%s;base64,%s",
                          mg_gm_str(inl, "mimeType") ? mg_gm_str(inl, "mimeType") : "",
                          mg_gm_str(inl, "data") ? mg_gm_str(inl, "data") : "");
            mg_ev_t ev = {.kind = MG_EV_TEXT, .index = idx};
            ev.text = mg_buf_head(&d->scratch);
            ev.text_len = mg_buf_len(&d->scratch);
            mg_gm_emit(d, &ev);
        }
    }
    const char *fr = mg_gm_str(cand, "finishReason");
    if (fr != NULL && (d->block_kind[idx] & 1) == 0) {
        d->block_kind[idx] |= 1; /* Gemini may repeat the reason: one finish per choice */
        mg_finish_t f = mg_gm_finish(fr);
        if (f == MG_FIN_STOP && (tools || (d->block_kind[idx] & 2))) {
            f = MG_FIN_TOOL_CALLS;
        }
        mg_ev_t ev = {.kind = MG_EV_FINISH, .index = idx, .finish = f};
        mg_gm_emit(d, &ev);
    }
}

/* A whole response or one stream chunk. */
static int
mg_gm_dec_response(mg_dec_t *d, json_t *j, mg_api_err_t *err)
{
    if (json_is_array(j)) {
        /* streamGenerateContent without alt=sse answers one JSON array */
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x) {
            if (mg_gm_dec_response(d, x, err) != MG_OK) {
                return MG_ERROR;
            }
        }
        return MG_OK;
    }
    if (!json_is_object(j)) {
        return mg_api_err(err, 502, NULL, NULL, "Gemini answer is not a JSON object");
    }
    json_t *eobj = json_object_get(j, "error");
    if (json_is_object(eobj)) {
        const char *msg = mg_gm_str(eobj, "message");
        const char *status = mg_gm_str(eobj, "status");
        json_t *code = json_object_get(eobj, "code");
        mg_ev_t ev = {.kind = MG_EV_ERROR};
        ev.status = json_is_integer(code) ? (int) json_integer_value(code) : 500;
        ev.etype = status;
        ev.text = msg != NULL ? msg : "Gemini stream error";
        ev.text_len = strlen(ev.text);
        mg_gm_emit(d, &ev);
        d->ended = true;
        return MG_OK;
    }
    mg_gm_start(d, j);
    json_t *pf = json_object_get(j, "promptFeedback");
    json_t *cands = json_object_get(j, "candidates");
    json_t *first = json_array_get(cands, 0);
    if (json_object_get(pf, "blockReason") != NULL ||
        mg_gm_flagged(mg_gm_str(first, "finishReason"))) {
        /* LiteLLM's _handle_blocked_response / _handle_content_policy_violation */
        if ((d->block_kind[0] & 1) == 0) {
            d->block_kind[0] |= 1;
            mg_ev_t ev = {.kind = MG_EV_FINISH, .index = 0, .finish = MG_FIN_CONTENT_FILTER};
            mg_gm_emit(d, &ev);
        }
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(cands, i, c) {
            json_t *ix = json_object_get(c, "index");
            mg_gm_candidate(d, c, json_is_integer(ix) ? (int) json_integer_value(ix) : (int) i);
        }
    }
    mg_gm_usage(d, json_object_get(j, "usageMetadata"));
    return MG_OK;
}

/* Embeddings: batchEmbedContents {"embeddings":[{"values":[..]}]} or Vertex's predict
 * {"predictions":[{"embeddings":{"values":[..],"statistics":{"token_count":N}}}]}. */
static int
mg_gm_dec_embeddings(mg_dec_t *d, json_t *j, mg_api_err_t *err)
{
    json_t *embs = json_object_get(j, "embeddings");
    json_t *preds = json_object_get(j, "predictions");
    if (!json_is_array(embs) && !json_is_array(preds)) {
        return mg_api_err(err, 502, NULL, NULL,
                          "Gemini embeddings answer has neither \"embeddings\" nor \"predictions\"");
    }
    json_t *list = json_is_array(embs) ? embs : preds;
    int64_t tokens = 0;
    bool counted = false;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        json_t *values = json_object_get(e, "values");
        if (values == NULL) {
            json_t *inner = json_object_get(e, "embeddings");
            values = json_object_get(inner, "values");
            json_t *tc = json_object_get(json_object_get(inner, "statistics"), "token_count");
            if (json_is_number(tc)) {
                tokens += (int64_t) json_number_value(tc);
                counted = true;
            }
        }
        if (!json_is_array(values)) {
            return mg_api_err(err, 502, NULL, NULL, "Gemini embedding %zu has no \"values\"", i);
        }
        /* Google's vectors are float32: 9 significant digits give each back exactly */
        char *s = json_dumps(values, JSON_COMPACT | JSON_REAL_PRECISION(9));
        mg_ev_t ev = {.kind = MG_EV_EMBEDDING, .index = 0, .tool = (int) i};
        ev.text = s;
        ev.text_len = strlen(s);
        mg_gm_emit(d, &ev);
        free(s);
    }
    if (counted) {
        d->usage->prompt_tokens = tokens;
        d->usage->total_tokens = tokens;
        d->usage->seen = true;
        mg_ev_t ev = {.kind = MG_EV_USAGE};
        mg_gm_emit(d, &ev);
    }
    mg_ev_t end = {.kind = MG_EV_END};
    mg_gm_emit(d, &end);
    d->ended = true;
    return MG_OK;
}

static int
mg_gm_dec_event(mg_dec_t *d, const char *data, size_t len, mg_api_err_t *err)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    if (j == NULL) {
        return mg_api_err(err, 502, NULL, NULL, "Gemini stream event is not JSON (%zu bytes)", len);
    }
    int rc = mg_gm_dec_response(d, j, err);
    json_decref(j);
    return rc;
}

static int
mg_gm_dec_body(mg_dec_t *d, const char *body, size_t len, mg_api_err_t *err)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    if (j == NULL) {
        return mg_api_err(err, 502, NULL, NULL,
                          "Received=%.200s, Error converting to valid response block", body);
    }
    int rc = d->op == MG_OP_EMBEDDINGS ? mg_gm_dec_embeddings(d, j, err)
                                       : mg_gm_dec_response(d, j, err);
    json_decref(j);
    if (rc == MG_OK && d->op != MG_OP_EMBEDDINGS && !d->ended) {
        mg_ev_t end = {.kind = MG_EV_END};
        mg_gm_emit(d, &end);
        d->ended = true;
    }
    return rc;
}

/* ---- errors ---- */

static void
mg_gm_wire_error(int status, const char *body, size_t len, mg_wire_err_t *out)
{
    json_t *j = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *root = json_is_array(j) ? json_array_get(j, 0) : j;
    json_t *e = json_object_get(root, "error");
    const char *msg = mg_gm_str(e, "message");
    if (msg != NULL) {
        out->message = mg_xstrdup(msg);
    } else {
        size_t n = len > 2000 ? 2000 : len;
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "Error code: %d - %.*s", status, (int) n, body ? body : "");
        out->message = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
    }
    const char *st = mg_gm_str(e, "status");
    out->type = st != NULL ? mg_xstrdup(st) : NULL;
    json_t *code = json_object_get(e, "code");
    if (json_is_integer(code)) {
        char c[32];
        snprintf(c, sizeof(c), "%lld", (long long) json_integer_value(code));
        out->code = mg_xstrdup(c);
    }
    json_decref(j);
}

const mg_wire_ops_t mg_wire_gemini = {
    .build = mg_gm_build,
    .dec_event = mg_gm_dec_event,
    .dec_body = mg_gm_dec_body,
    .wire_error = mg_gm_wire_error,
};
