/*
 * mg_spend_query.h -- the two questions the spend routes ask the master, answered from either
 * store: "rows" (the spend-log rows matching a filter, newest first) and "agg" (sums of
 * spend and tokens grouped by some dimensions, largest spend first).
 *
 * The query (JSON, built by core/gateway/mg_spend_routes.c):
 *   {"kind":"rows"|"agg",
 *    "filter":{"from_us":N, "to_us":N, "to_inclusive":bool, "api_key":S, "user":S,
 *              "request_id":S, "team_id":S, "end_user":S},
 *    "dims":["day"|"api_key"|"user"|"model"|"model_group"|"team_id"|"end_user"], "limit":N}
 * rows answer: an array of LiteLLM_SpendLogs objects (LiteLLM's keys).
 * agg answer: an array of {<dims>..., "spend", "prompt_tokens", "completion_tokens",
 *   "total_tokens", "requests", "key_alias", "team_id_max", "team_alias"} (team_alias: from
 *   LiteLLM_TeamTable in PostgreSQL when it exists; embedded: the team's id).
 *
 * Embedded: the segments are scanned on the master's loop in slices (at most 4 MiB or 20000
 * records per loop turn), so a large log never stalls the master.  PostgreSQL: one statement
 * on the reader connection (not the sink's), 30 s timeout.
 */
#ifndef MG_SPEND_QUERY_H
#define MG_SPEND_QUERY_H

#include "mg_spend_int.h"
#include "mg_spend_pg.h"
#include "mg_spend_queue.h"

#include <event2/event.h>
#include <jansson.h>

/* The most rows a "rows" answer holds (LiteLLM returns every row; a bound keeps an answer
 * through the control channel finite). */
#define MG_SPEND_QUERY_MAX_ROWS 100000

typedef struct mg_spend_qjob_s mg_spend_qjob_t;

/* Where a query runs: borrowed, owned by the master. */
typedef struct {
    struct event_base *base;
    mg_sq_t *q;                     /* embedded: the log (NULL: unavailable) */
    mg_spg_t *reader;               /* postgres: the reader connection (NULL: embedded) */
    int64_t hide_before_us;         /* embedded: rows older than the retention are not shown */
    bool store_prompts;
} mg_spend_qenv_t;

/* Starts a query; reply is called exactly once from the loop (never inside this call). */
void mg_spend_query_start(const mg_spend_qenv_t *env, json_t *q, mg_spend_reply_fn reply,
                          void *ctx);
/* The reader connection became ready: queries waiting for it go. */
void mg_spend_query_kick(void);
/* Fails every query in flight (shutdown). */
void mg_spend_query_abort_all(void);

/* The SQL of a query (exposed for tests); params get $1..; *nparams set.  team_join: join
 * LiteLLM_TeamTable for team_alias. */
int mg_spend_query_sql(json_t *q, bool team_join, mg_buf_t *sql, char **params, int *nparams,
                       mg_err_t *err);

#endif
