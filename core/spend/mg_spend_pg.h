/*
 * mg_spend_pg.h -- one asynchronous PostgreSQL connection on a libevent loop, for the
 * master's spend sink and spend queries.
 *
 * Owns: the libpq connection, its events and timers, the parsed DATABASE_URL and its
 * redacted form.  Never blocks the loop: a host name is resolved with evdns first (libpq only
 * sees addresses), connecting uses PQconnectStartParams/PQconnectPoll, queries are sent with
 * PQsendQuery[Params] and a non-blocking flush, results are read when the socket is readable.
 * One query at a time.  The connection reconnects by itself with backoff (100 ms doubling,
 * at most 5 s) and runs setup_sql after each connect.  A query that does not finish within
 * its timeout closes the connection (PQcancel would block) and fails.
 *
 * Callbacks run from the loop, never inside the call that sent the query.  Single-threaded.
 */
#ifndef MG_SPEND_PG_H
#define MG_SPEND_PG_H

#include "../base/mg_err.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>

typedef struct mg_spg_s mg_spg_t;

/* A query finished: err NULL on success (res: its last tuples result or NULL; borrowed for
 * the call), else a one-line message and the SQLSTATE ("" when none, "08006" for a lost
 * connection). */
typedef void (*mg_spg_result_cb)(void *ud, PGresult *res, const char *err, const char *sqlstate);
/* The connection is ready (setup done) or was lost. */
typedef void (*mg_spg_state_cb)(void *ud, bool up);

mg_spg_t *mg_spg_create(struct event_base *base, const char *url, const char *role,
                        const char *setup_sql, mg_spg_state_cb on_state, void *ud, mg_err_t *err);
/* Starts connecting (and reconnecting whenever the connection goes down). */
void mg_spg_start(mg_spg_t *c);
bool mg_spg_ready(const mg_spg_t *c);
bool mg_spg_busy(const mg_spg_t *c);
/* Sends a simple query (several statements allowed): MG_OK, MG_AGAIN when not ready,
 * MG_BUSY when a query is in flight. */
int mg_spg_send(mg_spg_t *c, const char *sql, int timeout_ms, mg_spg_result_cb cb, void *ud);
/* The same with text parameters ($1..$n; NULL values are SQL NULL); one statement. */
int mg_spg_send_params(mg_spg_t *c, const char *sql, int n, const char *const *vals,
                       int timeout_ms, mg_spg_result_cb cb, void *ud);
/* A quoted SQL literal of s (malloc), NULL when not connected. */
char *mg_spg_literal(mg_spg_t *c, const char *s, size_t n);
/* libpq's transaction status of the idle connection (PQTRANS_UNKNOWN when not connected). */
PGTransactionStatusType mg_spg_txn(const mg_spg_t *c);
/* Closes the connection now (it reconnects after the backoff); a query in flight fails. */
void mg_spg_reset(mg_spg_t *c, const char *why);
/* Why the connection is down ("" when up), and the redacted URL. */
const char *mg_spg_error(const mg_spg_t *c);
const char *mg_spg_url(const mg_spg_t *c);
int64_t mg_spg_reconnects(const mg_spg_t *c);
/* Frees; no callback runs after this. */
void mg_spg_destroy(mg_spg_t *c);

#endif
