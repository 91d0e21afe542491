/*
 * mg_err.c -- error detail formatting.  Owns nothing.
 */
#include "mg_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
mg_err_set(mg_err_t *err, mg_err_class_t cls, const char *fmt, ...)
{
    if (err == NULL) {
        return MG_ERROR;
    }
    err->cls = cls;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return MG_ERROR;
}

int
mg_err_prefix(mg_err_t *err, const char *fmt, ...)
{
    if (err == NULL) {
        return MG_ERROR;
    }
    char pre[MG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return MG_ERROR;
    }
    char old[MG_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s%s", pre, old);
    return MG_ERROR;
}

void
mg_err_clear(mg_err_t *err)
{
    if (err != NULL) {
        err->cls = MG_ERR_NONE;
        err->status = 0;
        err->msg[0] = '\0';
    }
}

const char *
mg_err_class_name(mg_err_class_t cls)
{
    static const char *names[MG_ERR__COUNT] = {
        "none", "bad_request", "auth", "no_route", "upstream_connect", "upstream_timeout",
        "rate_limited", "context_window", "content_policy", "upstream_4xx", "upstream_5xx",
        "policy", "internal", "config", "not_ready",
    };
    if ((int) cls < 0 || cls >= MG_ERR__COUNT) {
        return "internal";
    }
    return names[cls];
}
