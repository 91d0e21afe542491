/*
 * mg_log.c -- formatting and writing log lines.  Owns the process role string.
 * Single-threaded per process; each line is written with one write(2) so lines
 * from different workers do not interleave.  Every line, at every level, goes through
 * the scrubber with the process's current secret set (mg_scrub_set_global) before it
 * is written, so a secret passed by mistake never reaches the log.
 */
#include "mg_log.h"

#include "mg_scrub.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

mg_log_level_t mg_log_level = MG_LOG_NOTICE;

static const char *mg_log_role = "main";
static int mg_log_worker = -1;

void
mg_log_set_level(mg_log_level_t level)
{
    mg_log_level = level;
}

int
mg_log_level_parse(const char *name, mg_log_level_t *out)
{
    static const struct {
        const char *name;
        mg_log_level_t level;
    } names[] = {
        {"error", MG_LOG_ERROR}, {"critical", MG_LOG_ERROR}, {"warn", MG_LOG_WARN},
        {"warning", MG_LOG_WARN}, {"notice", MG_LOG_NOTICE}, {"info", MG_LOG_INFO},
        {"debug", MG_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

void
mg_log_set_process(const char *role, int id)
{
    mg_log_role = role;
    mg_log_worker = id;
}

void
mg_log_write(mg_log_level_t level, const mg_log_ctx_t *ctx, const char *fmt, ...)
{
    static const char *lv[] = {"error", "warn", "notice", "info", "debug"};
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] %s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int) (tv.tv_usec / 1000), lv[level], mg_log_role);
    if (mg_log_worker >= 0 && n < (int) sizeof(line)) {
        n += snprintf(line + n, sizeof(line) - n, "[%d]", mg_log_worker);
    }
    if (ctx != NULL && ctx->request_id != NULL && n < (int) sizeof(line)) {
        n += snprintf(line + n, sizeof(line) - n, " req=%s", ctx->request_id);
    }
    if (ctx != NULL && ctx->deployment != NULL && n < (int) sizeof(line)) {
        n += snprintf(line + n, sizeof(line) - n, " deployment=\"%s\"", ctx->deployment);
    }
    if (n < (int) sizeof(line)) {
        n += snprintf(line + n, sizeof(line) - n, ": ");
    }
    if (n < (int) sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
    }
    if (ctx != NULL && ctx->action != NULL && n < (int) sizeof(line)) {
        n += snprintf(line + n, sizeof(line) - n, " while %s", ctx->action);
    }
    /* a line cut to fit may end in a secret's head: the scrubber then redacts heads too */
    bool cut = n >= (int) sizeof(line) - 1;
    size_t len = cut ? sizeof(line) - 1 : (size_t) n;
    char out[sizeof(line)];
    size_t m = mg_scrub_fixed_global(line, len, cut ? MG_SCRUB_CUT_END : 0, out, sizeof(out) - 1);
    out[m++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, m);
    (void) w; /* nowhere to report a failed log write */
}

const char *
mg_log_redact(const char *secret, char *out, size_t outlen)
{
    if (secret == NULL || secret[0] == '\0') {
        snprintf(out, outlen, "(none)");
        return out;
    }
    char red[MG_SCRUB_REDACT_MAX + 1];
    mg_scrub_redact(secret, strlen(secret), red);
    snprintf(out, outlen, "%s", red);
    return out;
}
