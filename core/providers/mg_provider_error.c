/*
 * mg_provider_error.c -- upstream failures mapped to LiteLLM's exception
 * classes, statuses and message shapes (litellm exception_mapping_utils), so
 * clients and fallback rules that match on them keep working.  The upstream's
 * error body is read in its wire's shape (mg_api_wire_error); the
 * classification from status and text is shared by every provider.
 */
#include "mg_provider.h"

#include "../base/mg_log.h"
#include "../base/mg_scrub.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
mg_provider_error_icontains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, nl) == 0) {
            return true;
        }
    }
    return false;
}

/* \b429\b */
static bool
mg_provider_error_has_429(const char *s)
{
    for (const char *p = strstr(s, "429"); p != NULL; p = strstr(p + 1, "429")) {
        bool left = p == s || !isalnum((unsigned char) p[-1]);
        bool right = !isalnum((unsigned char) p[3]);
        if (left && right) {
            return true;
        }
    }
    return false;
}

/* rate[\s_\-]*limit, case-insensitive */
static bool
mg_provider_error_rate_limit_text(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (strncasecmp(p, "rate", 4) != 0) {
            continue;
        }
        const char *q = p + 4;
        while (*q == ' ' || *q == '\t' || *q == '_' || *q == '-' || *q == '\n') {
            q++;
        }
        if (strncasecmp(q, "limit", 5) == 0) {
            return true;
        }
    }
    return mg_provider_error_icontains(s, "service tier capacity exceeded");
}

static bool
mg_provider_error_context_window_text(const char *s)
{
    static const char *const pats[] = {
        "exceed context limit", "this model's maximum context length is",
        "string too long. expected a string with maximum length", "model's maximum context limit",
        "is longer than the model's context length", "input tokens exceed the configured limit",
        "context_length_exceeded", NULL,
    };
    for (const char *const *p = pats; *p; p++) {
        if (mg_provider_error_icontains(s, *p)) {
            return true;
        }
    }
    return false;
}

static char *
mg_provider_error_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
mg_provider_error_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    if (s == NULL) {
        abort();
    }
    return s;
}

void
mg_uperr_free(mg_uperr_t *e)
{
    free(e->message);
    e->message = NULL;
    free(e->up_message);
    e->up_message = NULL;
    free(e->up_body);
    e->up_body = NULL;
}

static const char *
mg_provider_error_exc(const mg_provider_t *p, const char *provider_name, char *buf, size_t len)
{
    if (p != NULL) {
        return p->exception_name;
    }
    snprintf(buf, len, "%c%sException", toupper((unsigned char) provider_name[0]),
             provider_name[0] ? provider_name + 1 : "");
    return buf;
}

static void mg_provider_error_http_raw(const mg_provider_t *p, const char *provider_name,
                                       mg_wire_t wire, int status, const char *body,
                                       size_t body_len, mg_uperr_t *out);

/* An upstream's words become our messages, logs and /health results: never its secrets. */
static void
mg_provider_error_scrub(mg_uperr_t *e)
{
    char *m = e->message ? mg_scrub_global_cstr(e->message) : NULL;
    free(e->message);
    e->message = m;
    m = e->up_message ? mg_scrub_global_cstr(e->up_message) : NULL;
    free(e->up_message);
    e->up_message = m;
    m = e->up_body ? mg_scrub_global_cstr(e->up_body) : NULL;
    free(e->up_body);
    e->up_body = m;
}

void
mg_provider_error_http(const mg_provider_t *p, const char *provider_name, mg_wire_t wire,
                       int status, const char *body, size_t body_len, mg_uperr_t *out)
{
    mg_provider_error_http_hdr(p, provider_name, wire, status, NULL, body, body_len, out);
}

void
mg_provider_error_http_hdr(const mg_provider_t *p, const char *provider_name, mg_wire_t wire,
                           int status, const char *hdr, const char *body, size_t body_len,
                           mg_uperr_t *out)
{
    if (p != NULL && p->ops->map_error_hdr != NULL) {
        p->ops->map_error_hdr(p, status, hdr, body, body_len, out);
    } else if (p != NULL && p->ops->map_error != NULL) {
        p->ops->map_error(p, status, body, body_len, out);
    } else {
        mg_provider_error_http_raw(p, provider_name, wire, status, body, body_len, out);
    }
    mg_provider_error_scrub(out);
}

static void
mg_provider_error_http_raw(const mg_provider_t *p, const char *provider_name, mg_wire_t wire,
                           int status, const char *body, size_t body_len, mg_uperr_t *out)
{
    memset(out, 0, sizeof(*out));
    char excbuf[96];
    const char *exc = mg_provider_error_exc(p, provider_name, excbuf, sizeof(excbuf));
    /* the upstream's error message (else its raw text), type, code and param */
    mg_wire_err_t we;
    mg_api_wire_error(wire, status, body, body_len, &we);
    const char *umsg = we.message;
    const char *etype = we.type;
    const char *ecode = we.code;
    /* the text LiteLLM tests substrings on: "Error code: N - {body}" */
    char *probe = mg_provider_error_fmt("Error code: %d - %.*s", status,
                                (int) (body_len > 8000 ? 8000 : body_len), body ? body : "");
    out->type_json = "null";
    out->param_json = "null";
    bool invalid_req = (etype && strcmp(etype, "invalid_request_error") == 0) ||
                       strstr(probe, "invalid_request_error") != NULL;

    if (strstr(probe, "Request timed out") || strstr(probe, "Request Timeout Error") ||
        strstr(probe, "Timed out generating response") ||
        strstr(probe, "The read operation timed out")) {
        out->status = 408;
        out->cls = MG_ERR_UPSTREAM_TIMEOUT;
        out->timeout = true;
        out->message = mg_provider_error_fmt("litellm.Timeout: APITimeoutError - Request timed out. "
                                     "Error_str: %s", umsg);
    } else if (mg_provider_error_has_429(probe) ||
               mg_provider_error_rate_limit_text(probe) || status == 429) {
        out->status = 429;
        out->cls = MG_ERR_RATE_LIMITED;
        out->rate_limit = true;
        out->type_json = "\"throttling_error\"";
        out->message = mg_provider_error_fmt("litellm.RateLimitError: RateLimitError: %s - %s", exc, umsg);
    } else if (mg_provider_error_context_window_text(probe) ||
               (ecode && strcmp(ecode, "context_length_exceeded") == 0)) {
        out->status = 400;
        out->cls = MG_ERR_CONTEXT_WINDOW;
        out->context_window = true;
        out->message = mg_provider_error_fmt("litellm.ContextWindowExceededError: "
                                     "ContextWindowExceededError: %s - %s", exc, umsg);
    } else if (invalid_req && strstr(probe, "model_not_found")) {
        out->status = 404;
        out->cls = MG_ERR_UPSTREAM_4XX;
        out->not_found = true;
        out->message = mg_provider_error_fmt("litellm.NotFoundError: %s - %s", exc, umsg);
    } else if ((invalid_req && strstr(probe, "content_policy_violation")) ||
               (strstr(probe, "Invalid prompt") && strstr(probe, "violating our usage policy")) ||
               strstr(probe, "request was rejected as a result of the safety system")) {
        out->status = 400;
        out->cls = MG_ERR_CONTENT_POLICY;
        out->content_policy = true;
        out->message = mg_provider_error_fmt("litellm.ContentPolicyViolationError: "
                                     "ContentPolicyViolationError: %s - %s", exc, umsg);
    } else if (invalid_req && status < 500 && !strstr(probe, "Incorrect API key provided")) {
        out->status = 400;
        out->cls = MG_ERR_BAD_REQUEST;
        out->message = mg_provider_error_fmt("litellm.BadRequestError: %s - %s", exc, umsg);
        /* with a body, LiteLLM passes the upstream's type and param through */
        const char *param = we.param;
        const char *t = etype ? etype : "invalid_request_error";
        if (strlen(t) < 100 && strchr(t, '"') == NULL && strchr(t, '\\') == NULL) {
            snprintf(out->type_buf, sizeof(out->type_buf), "\"%s\"", t);
            out->type_json = out->type_buf;
        }
        if (param != NULL && strlen(param) < 100 && strchr(param, '"') == NULL &&
            strchr(param, '\\') == NULL) {
            snprintf(out->param_buf, sizeof(out->param_buf), "\"%s\"", param);
            out->param_json = out->param_buf;
        }
    } else {
        switch (status) {
        case 400:
        case 422:
            out->status = 400;
            out->cls = MG_ERR_BAD_REQUEST;
            out->message = mg_provider_error_fmt("litellm.BadRequestError: %s - %s", exc, umsg);
            break;
        case 401:
            out->status = 401;
            out->cls = MG_ERR_AUTH;
            out->auth = true;
            out->message = mg_provider_error_fmt("litellm.AuthenticationError: AuthenticationError: %s - %s",
                                         exc, umsg);
            break;
        case 404:
            out->status = 404;
            out->cls = MG_ERR_UPSTREAM_4XX;
            out->not_found = true;
            out->message = mg_provider_error_fmt("litellm.NotFoundError: NotFoundError: %s - %s", exc, umsg);
            break;
        case 408:
            out->status = 408;
            out->cls = MG_ERR_UPSTREAM_TIMEOUT;
            out->timeout = true;
            out->message = mg_provider_error_fmt("litellm.Timeout: Timeout Error: %s - %s", exc, umsg);
            break;
        case 500:
            out->status = 500;
            out->cls = MG_ERR_UPSTREAM_5XX;
            out->message = mg_provider_error_fmt("litellm.InternalServerError: InternalServerError: %s - %s",
                                         exc, umsg);
            break;
        case 502:
            out->status = 502;
            out->cls = MG_ERR_UPSTREAM_5XX;
            out->message = mg_provider_error_fmt("litellm.BadGatewayError: BadGatewayError: %s - %s", exc,
                                         umsg);
            break;
        case 503:
            out->status = 503;
            out->cls = MG_ERR_UPSTREAM_5XX;
            out->message = mg_provider_error_fmt("litellm.ServiceUnavailableError: "
                                         "ServiceUnavailableError: %s - %s", exc, umsg);
            break;
        case 504:
            out->status = 504;
            out->cls = MG_ERR_UPSTREAM_TIMEOUT;
            out->timeout = true;
            out->message = mg_provider_error_fmt("litellm.Timeout: Timeout Error: %s - %s", exc, umsg);
            break;
        default:
            out->status = status >= 400 && status <= 599 ? status : 500;
            out->cls = status >= 500 ? MG_ERR_UPSTREAM_5XX : MG_ERR_UPSTREAM_4XX;
            out->message = mg_provider_error_fmt("litellm.APIError: APIError: %s - %s", exc, umsg);
            break;
        }
    }
    free(probe);
    mg_wire_err_free(&we);
}

static void mg_provider_error_transport_raw(const mg_provider_t *p, const char *provider_name,
                                            const mg_err_t *err, const mg_deployment_t *d,
                                            mg_uperr_t *out);

void
mg_provider_error_transport(const mg_provider_t *p, const char *provider_name,
                            const mg_err_t *err, const mg_deployment_t *d, mg_uperr_t *out)
{
    mg_provider_error_transport_raw(p, provider_name, err, d, out);
    mg_provider_error_scrub(out);
}

static void
mg_provider_error_transport_raw(const mg_provider_t *p, const char *provider_name,
                                const mg_err_t *err, const mg_deployment_t *d, mg_uperr_t *out)
{
    memset(out, 0, sizeof(*out));
    char excbuf[96];
    const char *exc = mg_provider_error_exc(p, provider_name, excbuf, sizeof(excbuf));
    out->type_json = "null";
    out->param_json = "null";
    if (err->cls == MG_ERR_UPSTREAM_TIMEOUT) {
        out->status = 408;
        out->cls = MG_ERR_UPSTREAM_TIMEOUT;
        out->timeout = true;
        char rt[32] = "None", to[32] = "None";
        json_t *v = json_object_get(d->litellm_params, "request_timeout");
        if (json_is_number(v)) {
            snprintf(rt, sizeof(rt), "%g", json_number_value(v));
        }
        v = json_object_get(d->litellm_params, "timeout");
        if (json_is_number(v)) {
            snprintf(to, sizeof(to), "%g", json_number_value(v));
        }
        out->message = mg_provider_error_fmt("litellm.Timeout: APITimeoutError - Request timed out. "
                                     "Error_str: Request timed out. (%s)\n\nDeployment Info: "
                                     "request_timeout: %s\ntimeout: %s", err->msg, rt, to);
        return;
    }
    if (err->status == 502) {
        out->status = 502;
        out->cls = MG_ERR_UPSTREAM_5XX;
        out->message = mg_provider_error_fmt("litellm.BadGatewayError: BadGatewayError: %s - %s", exc,
                                     err->msg);
        return;
    }
    if (err->cls == MG_ERR_AUTH) {
        out->status = 401;
        out->cls = MG_ERR_AUTH;
        out->auth = true;
        out->message = mg_provider_error_fmt("litellm.%s", err->msg);
        return;
    }
    if (err->cls == MG_ERR_INTERNAL) {
        out->status = 500;
        out->cls = MG_ERR_INTERNAL;
        out->message = mg_provider_error_fmt("litellm.InternalServerError: %s - moongate: %s", exc,
                                             err->msg);
        return;
    }
    if (err->cls == MG_ERR_BAD_REQUEST || err->cls == MG_ERR_CONFIG) {
        out->status = 400;
        out->cls = MG_ERR_BAD_REQUEST;
        out->message = mg_provider_error_fmt("litellm.BadRequestError: %s", err->msg);
        return;
    }
    out->status = 500;
    out->cls = MG_ERR_UPSTREAM_CONNECT;
    out->connection = true;
    out->message = mg_provider_error_fmt("litellm.InternalServerError: InternalServerError: %s - "
                                 "Connection error. (%s)", exc, err->msg);
}

void
mg_uperr_set(mg_uperr_t *e, int status, mg_err_class_t cls, const char *fmt, ...)
{
    memset(e, 0, sizeof(*e));
    e->status = status;
    e->cls = cls;
    e->type_json = "null";
    e->param_json = "null";
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&e->message, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
}
