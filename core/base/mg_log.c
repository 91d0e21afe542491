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

static bool mg_log_json_on;

void
mg_log_set_json(bool on)
{
    mg_log_json_on = on;
}

bool
mg_log_json(void)
{
    return mg_log_json_on;
}

/* Scrubs s[0..n) and appends it to out[*len..cap) JSON-escaped (no quotes). */
static void
mg_log_json_str(char *out, size_t *len, size_t cap, const char *s, size_t n, bool cut)
{
    char clean[4096];
    size_t m = mg_scrub_fixed_global(s, n, cut ? MG_SCRUB_CUT_END : 0, clean, sizeof(clean));
    size_t o = *len;
    for (size_t i = 0; i < m && o + 7 < cap; i++) {
        unsigned char c = (unsigned char) clean[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char) c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t) snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char) c; /* UTF-8 passes; the scrubber's output is what we wrote */
        }
    }
    *len = o;
}

static void
mg_log_json_add(char *out, size_t *len, size_t cap, const char *key, const char *s, size_t n)
{
    if (*len + strlen(key) + 8 >= cap) {
        return;
    }
    *len += (size_t) snprintf(out + *len, cap - *len, ",\"%s\":\"", key);
    mg_log_json_str(out, len, cap, s, n, false);
    if (*len + 1 < cap) {
        out[(*len)++] = '"';
    }
}

static void
mg_log_emit(mg_log_level_t level, const mg_log_ctx_t *ctx, const char *msg, size_t msglen,
            bool cut, const mg_log_kv_t *kv, int nkv)
{
    static const char *lv[] = {"error", "warn", "notice", "info", "debug"};
    /* Python's level names in JSON, as LiteLLM's JsonFormatter writes them */
    static const char *py[] = {"ERROR", "WARNING", "INFO", "INFO", "DEBUG"};
    char ts[40];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000));
    char out[8192];
    size_t len = 0;
    const size_t cap = sizeof(out) - 2;
    if (mg_log_json_on) {
        len = (size_t) snprintf(out, cap, "{\"timestamp\":\"%s\",\"level\":\"%s\",\"process\":\"%s\"",
                                ts, py[level], mg_log_role);
        if (mg_log_worker >= 0) {
            len += (size_t) snprintf(out + len, cap - len, ",\"worker\":%d", mg_log_worker);
        }
        if (ctx != NULL && ctx->request_id != NULL) {
            mg_log_json_add(out, &len, cap, "request_id", ctx->request_id, strlen(ctx->request_id));
        }
        if (ctx != NULL && ctx->deployment != NULL) {
            mg_log_json_add(out, &len, cap, "deployment", ctx->deployment, strlen(ctx->deployment));
        }
        if (ctx != NULL && ctx->action != NULL) {
            mg_log_json_add(out, &len, cap, "action", ctx->action, strlen(ctx->action));
        }
        for (int i = 0; i < nkv && len + 64 < cap; i++) {
            if (kv[i].type == MG_LOG_KV_STR) {
                if (kv[i].str == NULL) {
                    len += (size_t) snprintf(out + len, cap - len, ",\"%s\":null", kv[i].key);
                } else {
                    mg_log_json_add(out, &len, cap, kv[i].key, kv[i].str, strlen(kv[i].str));
                }
            } else if (kv[i].type == MG_LOG_KV_INT) {
                len += (size_t) snprintf(out + len, cap - len, ",\"%s\":%lld", kv[i].key,
                                         (long long) kv[i].num);
            } else if (kv[i].type == MG_LOG_KV_BOOL) {
                len += (size_t) snprintf(out + len, cap - len, ",\"%s\":%s", kv[i].key,
                                         kv[i].num ? "true" : "false");
            } else {
                if (kv[i].dbl != kv[i].dbl) {
                    len += (size_t) snprintf(out + len, cap - len, ",\"%s\":null", kv[i].key);
                } else {
                    len += (size_t) snprintf(out + len, cap - len, ",\"%s\":%.6g", kv[i].key,
                                             kv[i].dbl);
                }
            }
        }
        /* the message last, with the cut flag: a cut may end in a secret's head */
        if (len + 16 < cap) {
            len += (size_t) snprintf(out + len, cap - len, ",\"message\":\"");
            mg_log_json_str(out, &len, cap - 2, msg, msglen, cut);
            out[len++] = '"';
        }
        out[len++] = '}';
    } else {
        char line[4096];
        int n = snprintf(line, sizeof(line), "%s [%s] %s", ts, lv[level], mg_log_role);
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
            n += snprintf(line + n, sizeof(line) - n, ": %.*s", (int) msglen, msg);
        }
        for (int i = 0; i < nkv && n < (int) sizeof(line); i++) {
            if (kv[i].type == MG_LOG_KV_STR) {
                const char *v = kv[i].str != NULL ? kv[i].str : "-";
                bool q = strpbrk(v, " \"=") != NULL || v[0] == '\0';
                n += snprintf(line + n, sizeof(line) - n, q ? " %s=\"%s\"" : " %s=%s", kv[i].key, v);
            } else if (kv[i].type == MG_LOG_KV_INT) {
                n += snprintf(line + n, sizeof(line) - n, " %s=%lld", kv[i].key,
                              (long long) kv[i].num);
            } else if (kv[i].type == MG_LOG_KV_BOOL) {
                n += snprintf(line + n, sizeof(line) - n, " %s=%s", kv[i].key,
                              kv[i].num ? "true" : "false");
            } else if (kv[i].dbl == kv[i].dbl) {
                n += snprintf(line + n, sizeof(line) - n, " %s=%.6g", kv[i].key, kv[i].dbl);
            } else {
                n += snprintf(line + n, sizeof(line) - n, " %s=-", kv[i].key);
            }
        }
        if (ctx != NULL && ctx->action != NULL && n < (int) sizeof(line)) {
            n += snprintf(line + n, sizeof(line) - n, " while %s", ctx->action);
        }
        /* a line cut to fit may end in a secret's head: the scrubber then redacts heads too */
        bool lcut = cut || n >= (int) sizeof(line) - 1;
        size_t ll = n >= (int) sizeof(line) - 1 ? sizeof(line) - 1 : (size_t) n;
        len = mg_scrub_fixed_global(line, ll, lcut ? MG_SCRUB_CUT_END : 0, out, cap);
    }
    out[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, len);
    (void) w; /* nowhere to report a failed log write */
}

void
mg_log_write(mg_log_level_t level, const mg_log_ctx_t *ctx, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bool cut = n >= (int) sizeof(msg);
    size_t len = n < 0 ? 0 : cut ? sizeof(msg) - 1 : (size_t) n;
    mg_log_emit(level, ctx, msg, len, cut, NULL, 0);
}

void
mg_log_record(mg_log_level_t level, const mg_log_ctx_t *ctx, const char *message,
              const mg_log_kv_t *kv, int nkv)
{
    if (level > mg_log_level) {
        return;
    }
    mg_log_emit(level, ctx, message, strlen(message), false, kv, nkv);
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
