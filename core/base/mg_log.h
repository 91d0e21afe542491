/*
 * mg_log.h -- the one log sink: stderr, one line per message (text, or one JSON object
 * per line with json_logs).
 *
 * Every line carries the process role and worker id; a request's lines also
 * carry its id, the deployment where known, and the action in progress.
 * Never pass a secret to these functions: use mg_log_redact() for keys.  As a safety
 * net every line is scrubbed (mg_scrub.h) with the process's current secret set and
 * the key-shape rules before it is written.
 */
#ifndef MG_LOG_H
#define MG_LOG_H

#include "mg_types.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    MG_LOG_ERROR = 0,
    MG_LOG_WARN,
    MG_LOG_NOTICE,
    MG_LOG_INFO,
    MG_LOG_DEBUG,
} mg_log_level_t;

/* What a request's log lines carry; all fields may be NULL. Borrowed strings. */
typedef struct {
    const char *request_id;
    const char *deployment;
    const char *action;
} mg_log_ctx_t;

extern mg_log_level_t mg_log_level;

void mg_log_set_level(mg_log_level_t level);
/* Accepts LiteLLM's LITELLM_LOG names (DEBUG, INFO, WARNING, ERROR) and ours. */
int mg_log_level_parse(const char *name, mg_log_level_t *out);
/* role: "master" or "worker"; id: worker index or -1. */
void mg_log_set_process(const char *role, int id);

void mg_log_write(mg_log_level_t level, const mg_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define mg_log(level, ctx, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= mg_log_level) {                                                             \
            mg_log_write((level), (ctx), __VA_ARGS__);                                             \
        }                                                                                          \
    } while (0)

/* One field of a structured record (the access log): a string (NULL: none), an integer or
 * a number (NaN: none). */
typedef enum { MG_LOG_KV_STR = 0, MG_LOG_KV_INT, MG_LOG_KV_DBL, MG_LOG_KV_BOOL } mg_log_kv_type_t;
typedef struct {
    const char *key;            /* a JSON member name: [a-z_]+ */
    mg_log_kv_type_t type;
    const char *str;
    int64_t num;
    double dbl;
} mg_log_kv_t;

/* A record with fields: "message k=v ..." as text, or members of the JSON object. */
void mg_log_record(mg_log_level_t level, const mg_log_ctx_t *ctx, const char *message,
                   const mg_log_kv_t *kv, int nkv);

/* litellm_settings.json_logs / JSON_LOGS: one JSON object per line
 * ({"timestamp","level","process","worker","request_id",...,"message"}). */
void mg_log_set_json(bool on);
bool mg_log_json(void);

/* Writes "sk-...abcd" (mg_scrub_redact(): at most a known prefix and the last 4) of a
 * secret into out; "(none)" for NULL or "". */
const char *mg_log_redact(const char *secret, char *out, size_t outlen);

#endif
