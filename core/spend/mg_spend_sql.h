/*
 * mg_spend_sql.h -- the SQL and JSON text of the spend pipeline (no I/O): LiteLLM's tables
 * as its migrations create them, the idempotent batch statement, the rows as JSON.
 *
 * The batch is one transaction of two round trips:
 *   1. "BEGIN; SELECT pg_advisory_xact_lock(K); SELECT table_name, column_name ..." -- the
 *      lock serialises every moongate sink writing into the database (so a retried batch
 *      whose first attempt is still committing waits for it, then sees it), the column list
 *      says which of LiteLLM's tables and columns exist in this database, now.
 *   2. the statement mg_spend_sql_batch() builds for those columns, then "COMMIT".
 * The statement inserts the rows ON CONFLICT (request_id) DO NOTHING, recognises its own
 * rows of an earlier attempt by metadata.moongate_row_id, gives a request_id that another
 * request already used a suffix ("_<row id>") instead of losing it, and adds spend and the
 * daily aggregates only for the rows it inserted: a retried batch adds nothing twice.
 */
#ifndef MG_SPEND_SQL_H
#define MG_SPEND_SQL_H

#include "mg_spend_int.h"

#include "../base/mg_buf.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* the advisory lock keys (any 64-bit numbers nobody else uses) */
#define MG_SPEND_SQL_LOCK_SCHEMA 7885351518267664486LL
#define MG_SPEND_SQL_LOCK_BATCH 7885351518267664487LL

/* LiteLLM's tables the sink reads or writes. */
typedef enum {
    MG_ST_SPENDLOGS = 0,
    MG_ST_TOKEN,
    MG_ST_TEAM,
    MG_ST_USER,
    MG_ST_END_USER,
    MG_ST_ORG,
    MG_ST_TEAM_MEMBER,
    MG_ST_DAILY_USER,
    MG_ST_DAILY_TEAM,
    MG_ST_DAILY_ORG,
    MG_ST_DAILY_END_USER,
    MG_ST_DAILY_TAG,
    MG_ST__COUNT
} mg_spend_table_t;

/* Which tables and columns exist (from step 1). */
typedef struct {
    bool table[MG_ST__COUNT];
    uint64_t cols[MG_ST__COUNT];    /* bit i: the table's i-th known column exists */
} mg_spend_cols_t;

/* Quoted name of a table: "\"LiteLLM_SpendLogs\"". */
const char *mg_spend_sql_table(mg_spend_table_t t);

/* The setup run on every connect of the sink: creates LiteLLM's spend-log and daily tables
 * (columns, types, indexes as LiteLLM's migrations make them) when absent; never alters a
 * table that exists. */
const char *mg_spend_sql_schema(void);
/* Step 1 of a batch. */
const char *mg_spend_sql_begin(void);
/* Reads step 1's last result into cols; MG_ERROR when LiteLLM_SpendLogs or one of the
 * columns the sink cannot do without is missing (err says which). */
int mg_spend_sql_cols(PGresult *res, mg_spend_cols_t *cols, mg_err_t *err);
/*
 * Step 2: the batch statement for rows_literal (a quoted SQL literal of the JSON array built
 * by mg_spend_sql_row), then COMMIT.  Its last result is one row (inserted int, rows int).
 */
void mg_spend_sql_batch(mg_buf_t *out, const mg_spend_cols_t *cols, const char *rows_literal);

/* Appends one row of a batch as a JSON object (to an array the caller frames).  uid is the
 * 16-byte row id; store_prompts: the tails go to proxy_server_request / response. */
void mg_spend_sql_row(mg_buf_t *out, const mg_spend_rec_t *rec, const char *uid,
                      bool store_prompts);

/* The row as LiteLLM's /spend/logs shows it (new reference).  uid may be NULL. */
json_t *mg_spend_row_api(const mg_spend_rec_t *rec, bool store_prompts);

/* A JSON string of n bytes of s: invalid UTF-8 and NUL become U+FFFD (PostgreSQL refuses
 * both in jsonb and text). */
void mg_spend_json_str(mg_buf_t *out, const char *s, size_t n);
/* A JSON text field of a row as valid JSON (compact), or fallback when it is not JSON of the
 * wanted kind (array / object). */
void mg_spend_json_field(mg_buf_t *out, const char *s, size_t n, bool array, const char *fallback);

/* Transient errors (retry the same batch later) versus errors of the data (split the batch,
 * skip the row that alone fails). */
bool mg_spend_sql_transient(const char *sqlstate);

/* The UTC timestamp text in /spend/logs answers: "2026-12-07T10:00:00.123000+00:00". */
void mg_spend_fmt_api_time(int64_t us, char *out, size_t len);

#endif
