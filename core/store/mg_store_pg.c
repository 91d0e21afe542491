/*
 * mg_store_pg.c -- the PostgreSQL registry store: asynchronous libpq on the worker's libevent loop.
 *
 * Owns: two database connections (one runs the queued operations one at a time, the other only
 * LISTENs for version hints), their events and timers, the FIFO of pending operations, the parsed
 * DATABASE_URL and its redacted form.  Does not own: the event base (the worker's), the callers'
 * user data, JSON passed in (borrowed, see mg_store.h).
 *
 * Never blocks the loop: connections are made with PQconnectStartParams/PQconnectPoll (a host name
 * is resolved with evdns first, so libpq only ever sees addresses), queries are sent with
 * PQsendQuery/PQsendQueryParams and a non-blocking PQflush, results are read with PQconsumeInput,
 * PQisBusy and PQgetResult when the socket is readable.  A connect attempt (resolve, connect, auth,
 * schema setup or LISTEN) times out after 5 s, a query after 10 s: a timed-out query closes its
 * connection (PQcancel would block) and fails.  Both connections reconnect with backoff (100 ms
 * doubling, capped at 2 s).  While the query connection is down every queued and new operation
 * fails at once with class not_ready; only the very first connect attempt is waited for.
 *
 * Every mutation is ONE SQL statement (data-modifying CTEs): the change, the version bump, the
 * audit row in moongate_events and pg_notify() commit together or not at all, and a mutation that
 * changes nothing bumps nothing.  litellm_params values are encrypted one by one (mg_crypto) so
 * an update can merge them in SQL with ||.
 *
 * LiteLLM's tables (mg_store_pg_litellm.c): the identity tables (keys, teams, users, end users,
 * budgets, organizations) are LiteLLM_* tables, created when absent and otherwise used as they
 * are; their columns are read from the catalogue at every (re)connect, so an identity mutation's
 * SQL is built when it is sent.  Models in LiteLLM_ProxyModelTable are served after moongate's
 * own (litellm_params decrypted as LiteLLM encrypts them) but never written, except that
 * model_delete removes the id from both tables.  One load is one statement: one snapshot of
 * everything.  The session runs with TimeZone UTC (LiteLLM's timestamps are UTC without a zone).
 *
 * Callbacks always run from the loop, never inside the call that queued the operation.
 * destroy() may be called from any callback: everything is released at once, no callback runs
 * after it, and the object itself is freed when the outermost callback frame returns.
 * Single-threaded: one object per worker process, used only on that worker's loop.
 */
#include "mg_store.h"

#include "mg_crypto.h"
#include "mg_store_pg_litellm.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MG_PG_CONNECT_TIMEOUT_MS 5000
#define MG_PG_QUERY_TIMEOUT_MS   10000
#define MG_PG_BACKOFF_MIN_MS     100
#define MG_PG_BACKOFF_MAX_MS     2000
#define MG_PG_CHANNEL            "moongate_registry"
#define MG_PG_MAX_PARAMS         8
#define MG_PG_MAX_ADDRS          8
#define MG_PG_MSG_MAX            512
#define MG_PG_DEFAULT_USER       "default_user_id"

/* ---- SQL ---- */

/*
 * Schema, run on every (re)connect of the query connection (see mg_store_pg_setup_sql()).  The
 * advisory lock serialises concurrent starts of several workers and instances; tables are
 * created only when missing, so a role without CREATE privilege works once the schema exists.
 * moongate's own tables first, then LiteLLM's (mg_store_pg_litellm.c), then the catalogue of
 * LiteLLM's tables as they exist.
 */
#define MG_PG_SQL_SCHEMA                                                                           \
    "DO $mg$\n"                                                                                    \
    "BEGIN\n"                                                                                      \
    "    IF to_regclass('moongate_registry') IS NULL THEN\n"                                       \
    "        CREATE TABLE IF NOT EXISTS moongate_registry (\n"                                     \
    "            id int PRIMARY KEY CHECK (id = 1),\n"                                             \
    "            version bigint NOT NULL);\n"                                                      \
    "    END IF;\n"                                                                                \
    "    IF NOT EXISTS (SELECT 1 FROM moongate_registry WHERE id = 1) THEN\n"                      \
    "        INSERT INTO moongate_registry (id, version) VALUES (1, 0)\n"                          \
    "            ON CONFLICT (id) DO NOTHING;\n"                                                   \
    "    END IF;\n"                                                                                \
    "    IF to_regclass('moongate_models') IS NULL THEN\n"                                         \
    "        CREATE TABLE IF NOT EXISTS moongate_models (\n"                                       \
    "            model_id text PRIMARY KEY,\n"                                                     \
    "            model_name text NOT NULL,\n"                                                      \
    "            litellm_params jsonb NOT NULL,\n"                                                 \
    "            model_info jsonb NOT NULL DEFAULT '{}',\n"                                        \
    "            created_at timestamptz NOT NULL DEFAULT now(),\n"                                 \
    "            created_by text NOT NULL DEFAULT 'default_user_id',\n"                            \
    "            updated_at timestamptz NOT NULL DEFAULT now(),\n"                                 \
    "            updated_by text NOT NULL DEFAULT 'default_user_id',\n"                            \
    "            seq bigserial);\n"                                                                \
    "    END IF;\n"                                                                                \
    "    IF to_regclass('moongate_policies') IS NULL THEN\n"                                       \
    "        CREATE TABLE IF NOT EXISTS moongate_policies (\n"                                     \
    "            name text PRIMARY KEY,\n"                                                         \
    "            kind text NOT NULL,\n"                                                            \
    "            source text NOT NULL,\n"                                                          \
    "            hash text NOT NULL,\n"                                                            \
    "            updated_at timestamptz NOT NULL DEFAULT now());\n"                                \
    "    END IF;\n"                                                                                \
    "    IF to_regclass('moongate_events') IS NULL THEN\n"                                         \
    "        CREATE TABLE IF NOT EXISTS moongate_events (\n"                                       \
    "            version bigint PRIMARY KEY,\n"                                                    \
    "            op text NOT NULL,\n"                                                              \
    "            detail jsonb,\n"                                                                  \
    "            at timestamptz NOT NULL DEFAULT now());\n"                                        \
    "    END IF;\n"                                                                                \
    "END\n"                                                                                        \
    "$mg$;\n"

#define MG_PG_SQL_LISTEN "LISTEN " MG_PG_CHANNEL

#define MG_PG_SQL_MODEL_JSON(t)                                                                    \
    "json_build_object('model_id', " t ".model_id, 'model_name', " t ".model_name, "               \
    "'litellm_params', " t ".litellm_params, 'model_info', " t ".model_info, "                     \
    "'created_at', " t ".created_at, 'updated_at', " t ".updated_at, "                             \
    "'created_by', " t ".created_by, 'updated_by', " t ".updated_by)"

#define MG_PG_SQL_POLICY_JSON(t)                                                                   \
    "json_build_object('name', " t ".name, 'kind', " t ".kind, 'source', " t ".source, "           \
    "'hash', " t ".hash, 'updated_at', " t ".updated_at)"

/*
 * The version bump: an upsert so that a missing registry row (someone deleted it) restarts after
 * the newest audited version instead of losing the bump.  Concurrent mutations serialise on the
 * registry row lock, so versions commit in order.  pg_notify() in RETURNING runs exactly when
 * the bump happens and is delivered at commit.
 */
#define MG_PG_SQL_BUMP(cond)                                                                       \
    "bump AS (\n"                                                                                  \
    "    INSERT INTO moongate_registry AS r (id, version)\n"                                       \
    "    SELECT 1, COALESCE((SELECT max(version) FROM moongate_events), 0) + 1\n"                  \
    "    WHERE " cond "\n"                                                                         \
    "    ON CONFLICT (id) DO UPDATE SET version = r.version + 1\n"                                 \
    "    RETURNING r.version, pg_notify('" MG_PG_CHANNEL "', r.version::text))"

#define MG_PG_SQL_EVENT(op, detail)                                                                \
    "ev AS (\n"                                                                                    \
    "    INSERT INTO moongate_events (version, op, detail)\n"                                      \
    "    SELECT version, '" op "', " detail " FROM bump)\n"

/* Every mutation returns one row: (changed int, version bigint|NULL, row json|NULL). */

/*
 * $1 model_id, $2 model_name, $3 litellm_params (encrypted), $4 model_info, $5 user.  An id that
 * LiteLLM_ProxyModelTable holds already exists too (both tables are served).
 */
static const char mg_store_pg_sql_model_new[] =
    "WITH ch AS (\n"
    "    INSERT INTO moongate_models\n"
    "        (model_id, model_name, litellm_params, model_info, created_by, updated_by)\n"
    "    SELECT $1::text, $2::text, $3::jsonb, $4::jsonb, $5::text, $5::text\n"
    "    WHERE NOT EXISTS (SELECT 1 FROM \"LiteLLM_ProxyModelTable\" p WHERE p.model_id = $1)\n"
    "    ON CONFLICT (model_id) DO NOTHING\n"
    "    RETURNING *\n"
    "), " MG_PG_SQL_BUMP("EXISTS (SELECT 1 FROM ch)") ",\n"
    MG_PG_SQL_EVENT("model_new", "jsonb_build_object('model_id', $1::text, "
                                 "'model_name', $2::text, 'user', $5::text)")
    "SELECT (SELECT count(*) FROM ch)::int, (SELECT version FROM bump),\n"
    "       (SELECT " MG_PG_SQL_MODEL_JSON("c") " FROM ch c)";

/*
 * $1 model_id, $2 model_name|NULL, $3 litellm_params (encrypted)|NULL, $4 litellm_params keys to
 * clear (JSON array), $5 model_info|NULL, $6 model_info keys to clear (JSON array), $7 user
 */
static const char mg_store_pg_sql_model_update[] =
    "WITH ch AS (\n"
    "    UPDATE moongate_models m SET\n"
    "        model_name = COALESCE($2, m.model_name),\n"
    "        litellm_params = (m.litellm_params || COALESCE($3::jsonb, '{}'::jsonb))\n"
    "            - ARRAY(SELECT jsonb_array_elements_text($4::jsonb)),\n"
    "        model_info = (m.model_info || COALESCE($5::jsonb, '{}'::jsonb))\n"
    "            - ARRAY(SELECT jsonb_array_elements_text($6::jsonb)),\n"
    "        updated_at = now(),\n"
    "        updated_by = $7\n"
    "    WHERE m.model_id = $1\n"
    "    RETURNING m.*\n"
    "), " MG_PG_SQL_BUMP("EXISTS (SELECT 1 FROM ch)") ",\n"
    MG_PG_SQL_EVENT("model_update", "jsonb_build_object('model_id', $1::text, 'user', $7::text)")
    "SELECT (SELECT count(*) FROM ch)::int, (SELECT version FROM bump),\n"
    "       COALESCE((SELECT " MG_PG_SQL_MODEL_JSON("c") " FROM ch c),\n"
    "                CASE WHEN EXISTS (SELECT 1 FROM \"LiteLLM_ProxyModelTable\" p\n"
    "                                  WHERE p.model_id = $1)\n"
    "                THEN json_build_object('litellm_row', true) END)";

/* $1 model_id, $2 user.  The model is gone from both tables that are served. */
static const char mg_store_pg_sql_model_delete[] =
    "WITH ch1 AS (\n"
    "    DELETE FROM moongate_models WHERE model_id = $1 RETURNING model_id\n"
    "), ch2 AS (\n"
    "    DELETE FROM \"LiteLLM_ProxyModelTable\" WHERE model_id = $1 RETURNING model_id\n"
    "), ch AS (SELECT model_id FROM ch1 UNION ALL SELECT model_id FROM ch2\n"
    "), " MG_PG_SQL_BUMP("EXISTS (SELECT 1 FROM ch)") ",\n"
    MG_PG_SQL_EVENT("model_delete", "jsonb_build_object('model_id', $1::text, 'user', $2::text, "
                                    "'litellm_row', EXISTS (SELECT 1 FROM ch2))")
    "SELECT (SELECT count(*) FROM ch)::int, (SELECT version FROM bump), NULL::json";

/* $1 name, $2 kind, $3 source, $4 hash */
static const char mg_store_pg_sql_policy_update[] =
    "WITH ch AS (\n"
    "    INSERT INTO moongate_policies AS p (name, kind, source, hash, updated_at)\n"
    "    VALUES ($1, $2, $3, $4, now())\n"
    "    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, source = EXCLUDED.source,\n"
    "        hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at\n"
    "    RETURNING p.*\n"
    "), " MG_PG_SQL_BUMP("EXISTS (SELECT 1 FROM ch)") ",\n"
    MG_PG_SQL_EVENT("policy_update", "jsonb_build_object('name', $1::text, 'kind', $2::text, "
                                     "'hash', $4::text)")
    "SELECT (SELECT count(*) FROM ch)::int, (SELECT version FROM bump),\n"
    "       (SELECT " MG_PG_SQL_POLICY_JSON("c") " FROM ch c)";

/* $1 name */
static const char mg_store_pg_sql_policy_delete[] =
    "WITH ch AS (\n"
    "    DELETE FROM moongate_policies WHERE name = $1 RETURNING name\n"
    "), " MG_PG_SQL_BUMP("EXISTS (SELECT 1 FROM ch)") ",\n"
    MG_PG_SQL_EVENT("policy_delete", "jsonb_build_object('name', $1::text)")
    "SELECT (SELECT count(*) FROM ch)::int, (SELECT version FROM bump), NULL::json";

/* $1 detail: {"reason": R, "detail": D} */
static const char mg_store_pg_sql_bump[] =
    "WITH " MG_PG_SQL_BUMP("true") ",\n"
    MG_PG_SQL_EVENT("bump", "$1::jsonb")
    "SELECT 1, (SELECT version FROM bump), NULL::json";

/* An identity table as {id: row}: every column that exists, whatever LiteLLM version made it. */
#define MG_PG_SQL_IDENT(name, rel, pk)                                                             \
    "'" name "', COALESCE((SELECT json_object_agg(t." pk ", row_to_json(t))\n"                     \
    "                      FROM \"" rel "\" t), '{}'::json)"

/*
 * One statement, so one snapshot: the version, the models (moongate's and LiteLLM's), the
 * policies and LiteLLM's identity tables agree.
 */
static const char mg_store_pg_sql_load[] =
    "SELECT r.version,\n"
    "    COALESCE((SELECT json_agg(" MG_PG_SQL_MODEL_JSON("m") " ORDER BY m.seq)\n"
    "              FROM moongate_models m), '[]'::json),\n"
    "    COALESCE((SELECT json_object_agg(p.name, " MG_PG_SQL_POLICY_JSON("p") ")\n"
    "              FROM moongate_policies p), '{}'::json),\n"
    "    COALESCE((SELECT json_agg(row_to_json(p) ORDER BY p.created_at, p.model_id)\n"
    "              FROM \"LiteLLM_ProxyModelTable\" p), '[]'::json),\n"
    "    json_build_object(\n"
    "        " MG_PG_SQL_IDENT("key", "LiteLLM_VerificationToken", "token") ",\n"
    "        " MG_PG_SQL_IDENT("team", "LiteLLM_TeamTable", "team_id") ",\n"
    "        " MG_PG_SQL_IDENT("user", "LiteLLM_UserTable", "user_id") ",\n"
    "        " MG_PG_SQL_IDENT("end_user", "LiteLLM_EndUserTable", "user_id") ",\n"
    "        " MG_PG_SQL_IDENT("budget", "LiteLLM_BudgetTable", "budget_id") ",\n"
    "        " MG_PG_SQL_IDENT("org", "LiteLLM_OrganizationTable", "organization_id") ")\n"
    "FROM moongate_registry r WHERE r.id = 1";

/* Templates for the identity mutations built in mg_store_pg_litellm.c. */
static const char mg_store_pg_bump_fmt[] = MG_PG_SQL_BUMP("%s");
static const char mg_store_pg_event_fmt[] = MG_PG_SQL_EVENT("%s", "%s");

static const char mg_store_pg_sql_version[] = "SELECT version FROM moongate_registry WHERE id = 1";

/* ---- types ---- */

typedef enum {
    MG_PG_OP_LOAD,
    MG_PG_OP_VERSION,
    MG_PG_OP_MUTATE,
} mg_pg_op_kind_t;

typedef enum {
    MG_PG_MUT_NONE,
    MG_PG_MUT_MODEL_NEW,
    MG_PG_MUT_MODEL_UPDATE,
    MG_PG_MUT_MODEL_DELETE,
    MG_PG_MUT_POLICY_UPDATE,
    MG_PG_MUT_POLICY_DELETE,
    MG_PG_MUT_BUMP,
    MG_PG_MUT_IDENT_PUT,
    MG_PG_MUT_IDENT_PATCH,
    MG_PG_MUT_IDENT_DELETE,
} mg_pg_mut_t;

typedef struct mg_pg_op_s mg_pg_op_t;

struct mg_pg_op_s {
    mg_pg_op_t *next;                   /* queue or fail list link */
    mg_pg_op_kind_t kind;
    mg_pg_mut_t mut;
    const char *what;                   /* static: "load", "model_new", ... */
    const char *sql;                    /* static, or sql_owned */
    char *sql_owned;                    /* owned: SQL built for this op (identity mutations) */
    json_t *ident;                      /* ref: an identity mutation, built when it is sent */
    int nparams;
    char *params[MG_PG_MAX_PARAMS];     /* owned; NULL is SQL NULL */
    char *key;                          /* owned: model id or policy name, for messages */
    union {
        mg_store_load_cb load;
        mg_store_version_cb version;
        mg_store_mutate_cb mutate;
    } cb;
    void *ud;                           /* borrowed: the caller's */
    bool failed;                        /* err is set: report it without asking the database */
    mg_err_t err;
};

typedef enum {
    MG_PG_DOWN,         /* no connection; the timer runs the backoff (or nothing started yet) */
    MG_PG_RESOLVING,    /* waiting for evdns */
    MG_PG_CONNECTING,   /* PQconnectPoll */
    MG_PG_SETUP,        /* connected; schema setup (query) or LISTEN (listen) in flight */
    MG_PG_READY,
} mg_pg_state_t;

typedef enum {
    MG_PG_FAIL_CONNECT, /* an attempt failed (resolve, connect, auth, setup, timeout) */
    MG_PG_FAIL_LOST,    /* an established connection failed */
    MG_PG_FAIL_TIMEOUT, /* the query in flight timed out; we closed the connection */
} mg_pg_fail_t;

typedef struct mg_store_pg_s mg_store_pg_t;
typedef struct mg_pg_conn_s mg_pg_conn_t;

/* The parts of a query error shown for constraint violations. */
typedef struct {
    char *primary;                      /* owned */
    char *detail;                       /* owned */
} mg_pg_qerr_t;

/* Handed to evdns; the callback frees it.  c is NULL once the connection gave up waiting. */
typedef struct {
    mg_pg_conn_t *c;
} mg_pg_dns_tok_t;

struct mg_pg_conn_s {
    mg_store_pg_t *s;                   /* borrowed: the store this is embedded in */
    const char *role;                   /* static: "query" or "listen" */
    mg_pg_state_t state;
    PGconn *pg;                         /* owned */
    struct event *io;                   /* owned: connect-phase one-shot, then persistent read */
    struct event *wr;                   /* owned: one-shot write while libpq has unsent data */
    struct event *timer;                /* owned: backoff, connect timeout or query timeout */
    mg_pg_dns_tok_t *dns_tok;           /* owned by evdns until its callback runs */
    struct evdns_getaddrinfo_request *dns_req; /* owned by evdns */
    int backoff_ms;
    int failures;                       /* consecutive failed attempts */
    bool started;
    bool ever_ready;
    bool down;                          /* last attempt failed or connection lost: fail fast */
    bool busy;                          /* a query is in flight */
    PGresult *res;                      /* owned: last tuples result of the query in flight */
    char *qerr;                         /* owned: first error of the query in flight */
    char *qprimary;                     /* owned: its primary message alone */
    char *qdetail;                      /* owned: its DETAIL line, or NULL */
    char sqlstate[6];
    char notice[MG_PG_MSG_MAX];         /* last notice (a FATAL before a close lands here) */
    char err[MG_PG_MSG_MAX];            /* why this connection is down */
};

struct mg_store_pg_s {
    mg_store_t pub;                     /* handed to the caller; pub.impl == this */
    struct event_base *base;            /* borrowed: the worker's loop */
    mg_crypto_t crypto;
    mg_store_pgl_crypto_t lcrypto;      /* LiteLLM's keys, for LiteLLM_ProxyModelTable */
    mg_store_pgl_cat_t cat;             /* owned: LiteLLM's tables as the catalogue has them */
    char *schema;                       /* owned: Prisma's ?schema= of DATABASE_URL, or NULL */
    PQconninfoOption *opts;             /* owned: parsed DATABASE_URL */
    char *url;                          /* owned: redacted DATABASE_URL, safe to show */
    int connect_timeout_ms;
    int query_timeout_ms;
    int dns_family;                     /* AF_UNSPEC; tests may pin AF_INET */
    struct evdns_base *dns;             /* owned, created on first need */
    mg_pg_conn_t q;                     /* runs the operations */
    mg_pg_conn_t l;                     /* LISTEN only */
    mg_pg_op_t *head;                   /* owned: FIFO; head is in flight while q.busy */
    mg_pg_op_t *tail;
    int queued;
    mg_pg_op_t *fail_head;              /* owned: operations failing on the next loop turn */
    mg_pg_op_t *fail_tail;
    struct event *fail_ev;              /* owned */
    mg_store_hint_cb on_hint;
    mg_store_reconnect_cb on_reconnect;
    void *watch_ud;                     /* borrowed: the caller's */
    bool reconnect_pending;             /* LISTEN (re)established; report once queries work too */
    char last_error[MG_PG_MSG_MAX];
    int64_t reconnects;
    int depth;                          /* nesting of our loop callbacks */
    bool dead;                          /* destroyed; freed when depth drops to 0 */
};

static void mg_store_pg_conn_start(mg_pg_conn_t *c);
static void mg_store_pg_conn_down(mg_pg_conn_t *c, mg_pg_fail_t how, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mg_store_pg_kick(mg_store_pg_t *s);
static char *mg_store_pg_setup_sql(const mg_store_pg_t *s);

/* ---- text helpers: redaction, one-line messages ---- */

static const char *
mg_store_pg_opt(const mg_store_pg_t *s, const char *kw)
{
    for (const PQconninfoOption *o = s->opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, kw) == 0) {
            return (o->val != NULL && o->val[0] != '\0') ? o->val : NULL;
        }
    }
    return NULL;
}

/* i-th element of a comma-separated list (libpq multi-host syntax), into out. */
static const char *
mg_store_pg_list_item(const char *list, int i, char *out, size_t outlen)
{
    const char *p = list;
    for (; i > 0 && p != NULL; i--) {
        p = strchr(p, ',');
        p = p != NULL ? p + 1 : NULL;
    }
    if (p == NULL) {
        return NULL;
    }
    size_t n = strcspn(p, ",");
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* postgresql://user:***@host:port/db from the parsed options: only ever names safe fields. */
static char *
mg_store_pg_redact_opts(const mg_store_pg_t *s)
{
    const char *user = mg_store_pg_opt(s, "user");
    const char *pw = mg_store_pg_opt(s, "password");
    const char *host = mg_store_pg_opt(s, "host");
    const char *port = mg_store_pg_opt(s, "port");
    const char *db = mg_store_pg_opt(s, "dbname");
    mg_buf_t b = MG_BUF_INIT;

    if (host == NULL) {
        host = mg_store_pg_opt(s, "hostaddr");
    }
    mg_buf_append_str(&b, "postgresql://");
    if (user != NULL || pw != NULL) {
        mg_buf_printf(&b, "%s%s@", user != NULL ? user : "", pw != NULL ? ":***" : "");
    }
    int nports = 0;
    if (port != NULL) {
        nports = 1;
        for (const char *p = port; *p != '\0'; p++) {
            nports += *p == ',';
        }
    }
    char h[256], pt[32];
    for (int i = 0; host != NULL && mg_store_pg_list_item(host, i, h, sizeof(h)) != NULL; i++) {
        bool v6 = strchr(h, ':') != NULL && h[0] != '/';
        mg_buf_printf(&b, "%s%s%s%s", i > 0 ? "," : "", v6 ? "[" : "", h, v6 ? "]" : "");
        if (port != NULL && mg_store_pg_list_item(port, nports == 1 ? 0 : i, pt, sizeof(pt)) &&
            pt[0] != '\0') {
            mg_buf_printf(&b, ":%s", pt);
        }
    }
    if (host == NULL && port != NULL) {
        mg_buf_printf(&b, ":%s", port);
    }
    if (db != NULL) {
        mg_buf_printf(&b, "/%s", db);
    }
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

/* Best effort for a URL libpq could not parse: user kept, password and query string dropped. */
static void
mg_store_pg_redact_raw(const char *url, char *out, size_t outlen)
{
    const char *rest = strstr(url, "://");
    if (rest == NULL || (strncmp(url, "postgres://", 11) != 0 &&
                         strncmp(url, "postgresql://", 13) != 0)) {
        snprintf(out, outlen, "(keyword/value connection string)");
        return;
    }
    rest += 3;
    const char *at = strrchr(rest, '@');
    const char *hostpart = at != NULL ? at + 1 : rest;
    size_t hl = strcspn(hostpart, "?");
    if (at == NULL) {
        snprintf(out, outlen, "%.*s%.*s", (int) (rest - url), url, (int) hl, hostpart);
        return;
    }
    size_t ul = strcspn(rest, ":@");
    bool pw = rest[ul] == ':';
    snprintf(out, outlen, "%.*s%.*s%s@%.*s", (int) (rest - url), url, (int) ul, rest,
             pw ? ":***" : "", (int) hl, hostpart);
}

/*
 * One line from a libpq message: hint lines (tab-indented) and statement-position lines ("LINE 3:"
 * and its caret) dropped, lines joined with "; ", control bytes and repeated spaces squeezed, and
 * the password (should it ever appear) replaced by ***.
 */
static void
mg_store_pg_clean(const mg_store_pg_t *s, const char *in, char *out, size_t outlen)
{
    const char *pw = s != NULL ? mg_store_pg_opt(s, "password") : NULL;
    size_t pwl = pw != NULL ? strlen(pw) : 0;
    size_t o = 0;

    if (in == NULL || in[0] == '\0') {
        in = "unknown error";
    }
    for (const char *line = in; *line != '\0' && o + 4 < outlen;) {
        size_t len = strcspn(line, "\n");
        const char *next = line + len + (line[len] == '\n');
        bool caret = len > 0 && strspn(line, " ^") == len;
        if (len == 0 || line[0] == '\t' || strncmp(line, "LINE ", 5) == 0 || caret) {
            line = next;
            continue;
        }
        if (o > 0) {
            memcpy(out + o, "; ", 2);
            o += 2;
        }
        for (const char *p = line; p < line + len && o + 4 < outlen; p++) {
            if (pwl >= 3 && strncmp(p, pw, pwl) == 0) {
                memcpy(out + o, "***", 3);
                o += 3;
                p += pwl - 1;
                continue;
            }
            char ch = ((unsigned char) *p < 0x20 || *p == 0x7f) ? ' ' : *p;
            if (ch == ' ' && o > 0 && out[o - 1] == ' ') {
                continue; /* "FATAL:  terminating" */
            }
            out[o++] = ch;
        }
        line = next;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';')) {
        o--;
    }
    out[o] = '\0';
}

/* libpq's parse errors quote the offending text, which may be the password: drop what is quoted. */
static void
mg_store_pg_unquote(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    bool quoted = false;
    for (const char *p = in; *p != '\0' && o + 6 < outlen; p++) {
        if (*p == '"') {
            if (!quoted) {
                memcpy(out + o, "\"...\"", 5);
                o += 5;
            }
            quoted = !quoted;
            continue;
        }
        if (!quoted) {
            out[o++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
        }
    }
    while (o > 0 && out[o - 1] == ' ') {
        o--;
    }
    out[o] = '\0';
}

/* SQLSTATEs that mean "the database cannot serve right now", not "the statement is wrong". */
static bool
mg_store_pg_sqlstate_transient(const char *st)
{
    return strncmp(st, "08", 2) == 0 || strncmp(st, "53", 2) == 0 || strncmp(st, "57", 2) == 0 ||
           strncmp(st, "58", 2) == 0 || strncmp(st, "40", 2) == 0 || strcmp(st, "25006") == 0 ||
           strcmp(st, "55P03") == 0;
}

/* ---- lifetime of our own callbacks ---- */

static void
mg_store_pg_enter(mg_store_pg_t *s)
{
    s->depth++;
}

/* Returns true when the store was destroyed (and maybe freed): the caller must not touch it. */
static bool
mg_store_pg_leave(mg_store_pg_t *s)
{
    if (--s->depth == 0 && s->dead) {
        free(s);
        return true;
    }
    return s->dead;
}

/* ---- operations ---- */

static mg_pg_op_t *
mg_store_pg_op_new(mg_pg_op_kind_t kind, const char *what, const char *sql, void *ud)
{
    mg_pg_op_t *op = mg_xcalloc(1, sizeof(*op));
    op->kind = kind;
    op->what = what;
    op->sql = sql;
    op->ud = ud;
    return op;
}

static void
mg_store_pg_op_free(mg_pg_op_t *op)
{
    for (int i = 0; i < op->nparams; i++) {
        free(op->params[i]);
    }
    free(op->key);
    free(op->sql_owned);
    json_decref(op->ident);
    free(op);
}

static void
mg_store_pg_op_param(mg_pg_op_t *op, const char *v)
{
    op->params[op->nparams++] = v != NULL ? mg_xstrdup(v) : NULL;
}

static void
mg_store_pg_op_param_json(mg_pg_op_t *op, json_t *v)
{
    op->params[op->nparams++] = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static bool
mg_store_pg_op_is_change(const mg_pg_op_t *op)
{
    return op->kind == MG_PG_OP_MUTATE;
}

/* Reports err to the op's callback.  The caller frees op afterwards. */
static void
mg_store_pg_op_fail(mg_pg_op_t *op, const mg_err_t *err)
{
    switch (op->kind) {
    case MG_PG_OP_LOAD:
        op->cb.load(op->ud, MG_ERROR, 0, NULL, NULL, NULL, err);
        break;
    case MG_PG_OP_VERSION:
        op->cb.version(op->ud, MG_ERROR, 0, err);
        break;
    case MG_PG_OP_MUTATE:
        op->cb.mutate(op->ud, MG_ERROR, 0, NULL, err);
        break;
    }
}

/* Queues op's (already set) error for delivery on the next loop turn. */
static void
mg_store_pg_defer_fail(mg_store_pg_t *s, mg_pg_op_t *op)
{
    op->failed = true;
    op->next = NULL;
    if (s->fail_tail != NULL) {
        s->fail_tail->next = op;
    } else {
        s->fail_head = op;
    }
    s->fail_tail = op;
    event_active(s->fail_ev, EV_TIMEOUT, 1);
}

static void
mg_store_pg_fail_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_store_pg_t *s = arg;
    mg_store_pg_enter(s);
    while (s->fail_head != NULL && !s->dead) {
        mg_pg_op_t *op = s->fail_head;
        s->fail_head = op->next;
        if (s->fail_head == NULL) {
            s->fail_tail = NULL;
        }
        mg_store_pg_op_fail(op, &op->err);
        mg_store_pg_op_free(op);
    }
    mg_store_pg_leave(s);
}

static void
mg_store_pg_submit(mg_store_pg_t *s, mg_pg_op_t *op)
{
    if (s->dead) {
        mg_store_pg_op_free(op); /* use after destroy: nobody is left to call back */
        return;
    }
    if (op->failed) {
        mg_store_pg_defer_fail(s, op);
        return;
    }
    if (s->q.down) {
        /* fail fast: only the very first connect attempt is worth waiting for */
        mg_err_set(&op->err, MG_ERR_NOT_READY, "database unavailable: %s", s->q.err);
        mg_store_pg_defer_fail(s, op);
        return;
    }
    op->next = NULL;
    if (s->tail != NULL) {
        s->tail->next = op;
    } else {
        s->head = op;
    }
    s->tail = op;
    s->queued++;
    mg_store_pg_kick(s);
}

/* ---- connections ---- */

static void
mg_store_pg_conn_close(mg_pg_conn_t *c)
{
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (c->wr != NULL) {
        event_free(c->wr);
        c->wr = NULL;
    }
    if (c->timer != NULL) {
        evtimer_del(c->timer);
    }
    if (c->dns_tok != NULL) {
        /* the callback still runs (and frees the token) but finds nobody waiting */
        c->dns_tok->c = NULL;
        c->dns_tok = NULL;
        if (c->dns_req != NULL) {
            evdns_getaddrinfo_cancel(c->dns_req);
        }
        c->dns_req = NULL;
    }
    if (c->pg != NULL) {
        PQfinish(c->pg); /* non-blocking: the socket is in non-blocking mode */
        c->pg = NULL;
    }
    PQclear(c->res);
    c->res = NULL;
    free(c->qerr);
    c->qerr = NULL;
    free(c->qprimary);
    c->qprimary = NULL;
    free(c->qdetail);
    c->qdetail = NULL;
    c->busy = false;
}

static void
mg_store_pg_timer_add(mg_pg_conn_t *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void
mg_store_pg_notice_cb(void *arg, const char *message)
{
    mg_pg_conn_t *c = arg;
    mg_store_pg_clean(c->s, message, c->notice, sizeof(c->notice));
    mg_log(MG_LOG_DEBUG, NULL, "postgres store: %s connection: server notice: %s", c->role,
           c->notice);
}

/*
 * Takes a connection down: closes it, arms the reconnect timer, and (query connection) fails
 * every queued operation on the next loop turn.  Never calls user code itself.
 */
static void
mg_store_pg_conn_down(mg_pg_conn_t *c, mg_pg_fail_t how, const char *fmt, ...)
{
    mg_store_pg_t *s = c->s;
    char raw[MG_ERR_MSG_MAX], why[MG_PG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    mg_store_pg_clean(s, raw, why, sizeof(why));

    mg_pg_op_t *inflight = (c == &s->q && c->busy && c->state == MG_PG_READY) ? s->head : NULL;
    bool was_ready = c->state == MG_PG_READY;
    bool same = strcmp(c->err, why) == 0;

    mg_store_pg_conn_close(c);
    c->state = MG_PG_DOWN;
    c->down = true;
    c->failures++;
    snprintf(c->err, sizeof(c->err), "%s", why);
    snprintf(s->last_error, sizeof(s->last_error), "%s", why);
    c->notice[0] = '\0';

    int delay = c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > MG_PG_BACKOFF_MAX_MS ? MG_PG_BACKOFF_MAX_MS
                                                             : c->backoff_ms * 2;
    mg_store_pg_timer_add(c, delay);

    mg_log(was_ready || !same ? MG_LOG_WARN : MG_LOG_DEBUG, NULL,
           "postgres store: %s connection to %s %s: %s; retrying in %dms", c->role, s->url,
           was_ready ? "lost" : "failed", why, delay);

    if (c != &s->q) {
        return;
    }
    mg_pg_op_t *op = s->head;
    s->head = s->tail = NULL;
    s->queued = 0;
    while (op != NULL) {
        mg_pg_op_t *next = op->next;
        const char *tail = mg_store_pg_op_is_change(op)
                               ? "; the change may or may not have been applied"
                               : "";
        if (op == inflight && how == MG_PG_FAIL_TIMEOUT) {
            mg_err_set(&op->err, MG_ERR_NOT_READY,
                       "database query %s timed out after %dms on %s; connection closed%s",
                       op->what, s->query_timeout_ms, s->url, tail);
        } else if (op == inflight) {
            mg_err_set(&op->err, MG_ERR_NOT_READY, "database connection lost during %s: %s%s",
                       op->what, why, tail);
        } else {
            mg_err_set(&op->err, MG_ERR_NOT_READY, "database unavailable: %s", why);
        }
        mg_store_pg_defer_fail(s, op);
        op = next;
    }
}

static int
mg_store_pg_conn_flush(mg_pg_conn_t *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        return MG_ERROR;
    }
    if (r > 0) {
        event_add(c->wr, NULL);
    }
    return MG_OK;
}

/* Fires on_reconnect once the LISTEN is back and queries work, so the resync can succeed. */
static void
mg_store_pg_try_reconnect_cb(mg_store_pg_t *s)
{
    if (!s->reconnect_pending || s->on_reconnect == NULL || s->q.state != MG_PG_READY ||
        s->l.state != MG_PG_READY) {
        return;
    }
    s->reconnect_pending = false;
    s->on_reconnect(s->watch_ud);
}

static void
mg_store_pg_conn_ready(mg_pg_conn_t *c)
{
    mg_store_pg_t *s = c->s;
    evtimer_del(c->timer);
    c->state = MG_PG_READY;
    c->down = false;
    c->backoff_ms = MG_PG_BACKOFF_MIN_MS;
    if (c->ever_ready) {
        s->reconnects++;
    }
    mg_log(c->ever_ready || c->failures > 0 ? MG_LOG_NOTICE : MG_LOG_INFO, NULL,
           "postgres store: %s connection to %s ready%s", c->role, s->url,
           c->ever_ready ? " (reconnected)" : "");
    c->ever_ready = true;
    c->failures = 0;
    c->err[0] = '\0';
}

static void
mg_store_pg_notifies(mg_pg_conn_t *c)
{
    mg_store_pg_t *s = c->s;
    PGnotify *n;
    while (!s->dead && c->pg != NULL && (n = PQnotifies(c->pg)) != NULL) {
        char *end;
        errno = 0;
        long long v = strtoll(n->extra, &end, 10);
        bool ok = errno == 0 && end != n->extra && *end == '\0' && v >= 0;
        if (!ok) {
            mg_log(MG_LOG_WARN, NULL, "postgres store: ignoring notification on \"%s\" with "
                   "payload \"%.64s\": not a version", n->relname, n->extra);
        }
        PQfreemem(n);
        if (ok && s->on_hint != NULL) {
            s->on_hint(s->watch_ud, (int64_t) v);
        }
    }
}

/* ---- results ---- */

static void
mg_store_pg_load_result(mg_store_pg_t *s, mg_pg_op_t *op, PGresult *res)
{
    mg_err_t err;
    mg_err_clear(&err);
    if (PQntuples(res) != 1 || PQnfields(res) != 5) {
        mg_err_set(&err, MG_ERR_INTERNAL, "loading the registry from %s: moongate_registry has "
                   "no row with id = 1", s->url);
        mg_store_pg_op_fail(op, &err);
        return;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    json_error_t je;
    json_t *models = json_loads(PQgetvalue(res, 0, 1), 0, &je);
    json_t *policies = models != NULL ? json_loads(PQgetvalue(res, 0, 2), 0, &je) : NULL;
    json_t *lmodels = policies != NULL ? json_loads(PQgetvalue(res, 0, 3), 0, &je) : NULL;
    json_t *lidents = lmodels != NULL ? json_loads(PQgetvalue(res, 0, 4), 0, &je) : NULL;
    json_t *idents = NULL;
    if (!json_is_array(models) || !json_is_object(policies) || !json_is_array(lmodels) ||
        !json_is_object(lidents)) {
        mg_err_set(&err, MG_ERR_INTERNAL, "loading the registry from %s: the database returned "
                   "invalid JSON: %s", s->url, je.text);
        goto fail;
    }
    size_t i;
    json_t *row;
    json_array_foreach(models, i, row) {
        json_t *lp = json_object_get(row, "litellm_params");
        json_t *dec = mg_crypto_decrypt_object(&s->crypto, lp, &err);
        if (dec == NULL) {
            /* one unreadable row must not take every other model down: the registry
             * skips it with a warning (LiteLLM skips it too) */
            json_object_set_new(row, "__load_error", json_string(err.msg));
            json_object_set_new(row, "litellm_params", json_null());
            continue;
        }
        json_object_set_new(row, "litellm_params", dec);
    }
    /* LiteLLM's models after moongate's own: an id in both is served from moongate_models
     * (the registry keeps the first and warns about the second) */
    json_array_foreach(lmodels, i, row) {
        json_t *m = mg_store_pgl_model_row(&s->lcrypto, &s->cat.t[MG_STORE_PGL_MODEL], row);
        if (m != NULL) {
            json_array_append_new(models, m);
        }
    }
    idents = mg_store_idents_new();
    for (int t = 0; t < MG_STORE_IDENT_NTABLES; t++) {
        const char *tn = mg_store_ident_table(t);
        const mg_store_pgl_table_t *lt = mg_store_pgl_table(&s->cat, tn);
        json_t *rows = json_object_get(lidents, tn);
        const char *id;
        json_object_foreach(rows, id, row) {
            mg_store_pgl_fix_row(lt, row);
        }
        if (json_is_object(rows)) {
            json_object_set(idents, tn, rows);
        }
    }
    op->cb.load(op->ud, MG_OK, version, models, policies, idents, NULL);
    json_decref(idents);
    json_decref(models);
    json_decref(policies);
    json_decref(lmodels);
    json_decref(lidents);
    return;

fail:
    json_decref(models);
    json_decref(policies);
    json_decref(lmodels);
    json_decref(lidents);
    mg_store_pg_op_fail(op, &err);
}

/* The result of an identity mutation (changed rows counted in "changed"). */
static void
mg_store_pg_ident_result(mg_store_pg_t *s, mg_pg_op_t *op, long changed, int64_t version,
                         json_t *row)
{
    mg_err_t err;
    mg_err_clear(&err);
    const char *tn = json_string_value(json_object_get(op->ident, "table"));
    if (changed == 0) {
        const char *missing = json_string_value(json_object_get(row, "missing"));
        if (op->mut == MG_PG_MUT_IDENT_PUT) {
            mg_err_set(&err, MG_ERR_BAD_REQUEST, "%s %s already exists", tn, op->key);
        } else {
            mg_err_set(&err, MG_ERR_NO_ROUTE, "%s %s not found", tn,
                       missing != NULL ? missing : op->key);
        }
        op->cb.mutate(op->ud, MG_ERROR, 0, NULL, &err);
        return;
    }
    json_t *out;
    if (op->mut == MG_PG_MUT_IDENT_DELETE) {
        out = json_pack("{s:O}", "deleted", json_object_get(op->ident, "ids"));
    } else {
        out = json_incref(row);
        mg_store_pgl_fix_row(mg_store_pgl_table(&s->cat, tn), out);
    }
    op->cb.mutate(op->ud, MG_OK, version, out, NULL);
    json_decref(out);
}

static void
mg_store_pg_mutate_result(mg_store_pg_t *s, mg_pg_op_t *op, PGresult *res)
{
    mg_err_t err;
    mg_err_clear(&err);
    if (PQntuples(res) != 1 || PQnfields(res) != 3) {
        mg_err_set(&err, MG_ERR_INTERNAL, "%s: unexpected result shape from %s", op->what, s->url);
        mg_store_pg_op_fail(op, &err);
        return;
    }
    long changed = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    if (op->ident != NULL) {
        json_t *row = NULL;
        if (!PQgetisnull(res, 0, 2)) {
            row = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
        }
        int64_t version = PQgetisnull(res, 0, 1) ? 0 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (changed > 0 && (version == 0 || (op->mut != MG_PG_MUT_IDENT_DELETE && row == NULL))) {
            mg_err_set(&err, MG_ERR_INTERNAL, "%s: the database returned no version or row",
                       op->what);
            op->cb.mutate(op->ud, MG_ERROR, version, NULL, &err);
        } else {
            mg_store_pg_ident_result(s, op, changed, version, row);
        }
        json_decref(row);
        return;
    }
    if (changed == 0) {
        switch (op->mut) {
        case MG_PG_MUT_MODEL_NEW:
            mg_err_set(&err, MG_ERR_BAD_REQUEST, "Model with id=%s already exists", op->key);
            break;
        case MG_PG_MUT_MODEL_UPDATE:
            if (!PQgetisnull(res, 0, 2) && strstr(PQgetvalue(res, 0, 2), "litellm_row") != NULL) {
                mg_err_set(&err, MG_ERR_BAD_REQUEST, "Model with id=%s is stored in LiteLLM's "
                           "LiteLLM_ProxyModelTable: moongate serves it but does not rewrite "
                           "LiteLLM's encrypted row; update it with LiteLLM, or delete it and add "
                           "it again through moongate", op->key);
                break;
            }
            mg_err_set(&err, MG_ERR_NO_ROUTE, "Model with id=%s not found", op->key);
            break;
        case MG_PG_MUT_MODEL_DELETE:
            mg_err_set(&err, MG_ERR_NO_ROUTE, "Model with id=%s not found", op->key);
            break;
        case MG_PG_MUT_POLICY_DELETE:
            mg_err_set(&err, MG_ERR_NO_ROUTE, "Policy with name=%s not found", op->key);
            break;
        default:
            mg_err_set(&err, MG_ERR_INTERNAL, "%s changed nothing in %s", op->what, s->url);
            break;
        }
        mg_store_pg_op_fail(op, &err);
        return;
    }
    if (PQgetisnull(res, 0, 1)) {
        mg_err_set(&err, MG_ERR_INTERNAL, "%s: the database returned no version", op->what);
        mg_store_pg_op_fail(op, &err);
        return;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    json_t *row = NULL;
    if (!PQgetisnull(res, 0, 2)) {
        json_error_t je;
        row = json_loads(PQgetvalue(res, 0, 2), 0, &je);
        if (row == NULL) {
            mg_err_set(&err, MG_ERR_INTERNAL, "%s committed version %" PRId64 " but its row is "
                       "not valid JSON: %s", op->what, version, je.text);
            op->cb.mutate(op->ud, MG_ERROR, version, NULL, &err);
            return;
        }
        json_t *lp = json_object_get(row, "litellm_params");
        if (lp != NULL) {
            json_t *dec = mg_crypto_decrypt_object(&s->crypto, lp, &err);
            if (dec == NULL) {
                mg_err_prefix(&err, "%s of model \"%s\" committed version %" PRId64 " but its "
                              "stored credentials cannot be read back: ", op->what, op->key,
                              version);
                json_decref(row);
                op->cb.mutate(op->ud, MG_ERROR, version, NULL, &err);
                return;
            }
            json_object_set_new(row, "litellm_params", dec);
        }
    }
    op->cb.mutate(op->ud, MG_OK, version, row, NULL);
    json_decref(row);
}

/* Interprets the finished query of op and calls its callback. */
static void
mg_store_pg_op_complete(mg_store_pg_t *s, mg_pg_op_t *op, PGresult *res, const char *qerr,
                        const mg_pg_qerr_t *qe, const char *sqlstate)
{
    mg_err_t err;
    mg_err_clear(&err);
    if (qerr != NULL) {
        char clean[MG_PG_MSG_MAX];
        bool integrity = strncmp(sqlstate, "23", 2) == 0;
        if (integrity && qe->primary != NULL) {
            /* a constraint the row breaks: the primary message, and for a foreign key or a
             * unique key the DETAIL naming it ("Key (budget_id)=(b1) is still referenced from
             * table ..."); never the DETAIL of a not-null or check violation, which prints the
             * whole row (a password hash, say) */
            char both[MG_ERR_MSG_MAX];
            bool key_detail = qe->detail != NULL && (strcmp(sqlstate, "23503") == 0 ||
                                                     strcmp(sqlstate, "23505") == 0);
            snprintf(both, sizeof(both), "%s%s%s", qe->primary, key_detail ? ": " : "",
                     key_detail ? qe->detail : "");
            mg_store_pg_clean(s, both, clean, sizeof(clean));
        } else {
            mg_store_pg_clean(s, qerr, clean, sizeof(clean));
        }
        /* class 22 (data exception, e.g. \u0000 in jsonb, "abc" for a bigint column) and class
         * 23 (a foreign key, unique or not-null constraint) are the caller's input */
        mg_err_class_t cls = mg_store_pg_sqlstate_transient(sqlstate)      ? MG_ERR_NOT_READY
                             : strncmp(sqlstate, "22", 2) == 0 || integrity ? MG_ERR_BAD_REQUEST
                                                                            : MG_ERR_INTERNAL;
        if (op->ident != NULL && op->key != NULL) {
            mg_err_set(&err, cls, "database error during %s of %s %s (SQLSTATE %s): %s",
                       op->what, json_string_value(json_object_get(op->ident, "table")), op->key,
                       sqlstate[0] != '\0' ? sqlstate : "?", clean);
        } else {
            mg_err_set(&err, cls, "database error during %s (SQLSTATE %s): %s", op->what,
                       sqlstate[0] != '\0' ? sqlstate : "?", clean);
        }
        mg_store_pg_op_fail(op, &err);
        return;
    }
    if (res == NULL) {
        mg_err_set(&err, MG_ERR_INTERNAL, "%s: the database returned no result", op->what);
        mg_store_pg_op_fail(op, &err);
        return;
    }
    switch (op->kind) {
    case MG_PG_OP_LOAD:
        mg_store_pg_load_result(s, op, res);
        break;
    case MG_PG_OP_VERSION:
        if (PQntuples(res) != 1) {
            mg_err_set(&err, MG_ERR_INTERNAL, "reading the registry version from %s: "
                       "moongate_registry has no row with id = 1", s->url);
            mg_store_pg_op_fail(op, &err);
            break;
        }
        op->cb.version(op->ud, MG_OK, strtoll(PQgetvalue(res, 0, 0), NULL, 10), NULL);
        break;
    case MG_PG_OP_MUTATE:
        mg_store_pg_mutate_result(s, op, res);
        break;
    }
}

/* The query in flight on c has returned all its results. */
static void
mg_store_pg_conn_done(mg_pg_conn_t *c)
{
    mg_store_pg_t *s = c->s;
    PGresult *res = c->res;
    char *qerr = c->qerr;
    mg_pg_qerr_t qe = {c->qprimary, c->qdetail};
    char sqlstate[6];

    c->res = NULL;
    c->qerr = NULL;
    c->qprimary = NULL;
    c->qdetail = NULL;
    c->busy = false;
    memcpy(sqlstate, c->sqlstate, sizeof(sqlstate));

    if (c->state == MG_PG_SETUP) {
        free(qe.primary);
        free(qe.detail);
        if (qerr != NULL) {
            PQclear(res);
            char clean[MG_PG_MSG_MAX];
            mg_store_pg_clean(s, qerr, clean, sizeof(clean));
            free(qerr);
            mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "%s on %s failed: %s",
                                  c == &s->q ? "schema setup" : "LISTEN " MG_PG_CHANNEL, s->url,
                                  clean);
            return;
        }
        if (c == &s->q) {
            /* the setup's last result is the catalogue of LiteLLM's tables */
            mg_err_t cerr;
            mg_err_clear(&cerr);
            bool ok = res != NULL && PQntuples(res) == 1 && PQnfields(res) == 1 &&
                      mg_store_pgl_cat_load(&s->cat, PQgetvalue(res, 0, 0), &cerr) == MG_OK;
            PQclear(res);
            if (!ok) {
                mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "schema setup on %s failed: %s",
                                      s->url, cerr.msg[0] != '\0' ? cerr.msg
                                                                  : "no catalogue returned");
                return;
            }
        } else {
            PQclear(res);
        }
        mg_store_pg_conn_ready(c);
        if (c == &s->l) {
            s->reconnect_pending = true;
        } else {
            mg_store_pg_kick(s);
            if (s->dead) {
                return;
            }
        }
        mg_store_pg_try_reconnect_cb(s);
        return;
    }

    /* an operation finished on the query connection */
    evtimer_del(c->timer);
    mg_pg_op_t *op = s->head;
    s->head = op->next;
    if (s->head == NULL) {
        s->tail = NULL;
    }
    s->queued--;
    mg_store_pg_op_complete(s, op, res, qerr, &qe, sqlstate);
    PQclear(res);
    free(qerr);
    free(qe.primary);
    free(qe.detail);
    mg_store_pg_op_free(op);
    if (!s->dead) {
        mg_store_pg_kick(s);
    }
}

/* Reads every result libpq has; calls conn_done when the query in flight is complete. */
static void
mg_store_pg_conn_collect(mg_pg_conn_t *c)
{
    while (c->busy && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                /* the error result (if any) was libpq's own "connection closed": not the query's */
                mg_store_pg_conn_down(c, c->state == MG_PG_READY ? MG_PG_FAIL_LOST
                                                                 : MG_PG_FAIL_CONNECT,
                                      "%s", c->qerr != NULL ? c->qerr : PQerrorMessage(c->pg));
                return;
            }
            mg_store_pg_conn_done(c);
            return;
        }
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
            PQclear(c->res);
            c->res = r;
            break;
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            PQclear(r);
            break;
        default:
            if (c->qerr == NULL) {
                const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *msg = PQresultErrorMessage(r);
                const char *prim = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                const char *det = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
                c->qerr = mg_xstrdup(msg != NULL && msg[0] != '\0'
                                         ? msg : PQresStatus(PQresultStatus(r)));
                c->qprimary = prim != NULL ? mg_xstrdup(prim) : NULL;
                c->qdetail = det != NULL ? mg_xstrdup(det) : NULL;
                snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st != NULL ? st : "");
            }
            PQclear(r);
            break;
        }
    }
}

static void
mg_store_pg_io_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_pg_conn_t *c = arg;
    mg_store_pg_t *s = c->s;
    mg_store_pg_enter(s);
    if (!PQconsumeInput(c->pg)) {
        char m[MG_PG_MSG_MAX];
        mg_store_pg_clean(s, PQerrorMessage(c->pg), m, sizeof(m));
        if (c->notice[0] != '\0') {
            mg_store_pg_conn_down(c, MG_PG_FAIL_LOST, "%s (%s)", m, c->notice);
        } else {
            mg_store_pg_conn_down(c, MG_PG_FAIL_LOST, "%s", m);
        }
        goto out;
    }
    if (c->busy) {
        mg_store_pg_conn_collect(c);
        if (s->dead) {
            goto out;
        }
    } else if (PQstatus(c->pg) == CONNECTION_BAD) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_LOST, "%s", PQerrorMessage(c->pg));
        goto out;
    }
    if (c == &s->l) {
        /* after collecting: PQgetResult may have parsed notifications that came with the reply */
        mg_store_pg_notifies(c);
    }
out:
    mg_store_pg_leave(s);
}

static void
mg_store_pg_wr_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_pg_conn_t *c = arg;
    mg_store_pg_t *s = c->s;
    mg_store_pg_enter(s);
    if (mg_store_pg_conn_flush(c) != MG_OK) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_LOST, "sending to the server failed: %s",
                              PQerrorMessage(c->pg));
    }
    mg_store_pg_leave(s);
}

/* Connected: switch to the steady-state events and run the setup query. */
static void
mg_store_pg_conn_connected(mg_pg_conn_t *c)
{
    mg_store_pg_t *s = c->s;
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (PQsetnonblocking(c->pg, 1) != 0) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "PQsetnonblocking() failed: %s",
                              PQerrorMessage(c->pg));
        return;
    }
    evutil_socket_t fd = PQsocket(c->pg);
    c->io = event_new(s->base, fd, EV_READ | EV_PERSIST, mg_store_pg_io_cb, c);
    c->wr = event_new(s->base, fd, EV_WRITE, mg_store_pg_wr_cb, c);
    if (c->io == NULL || c->wr == NULL || event_add(c->io, NULL) != 0) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "event_new() failed for fd %d", (int) fd);
        return;
    }
    c->state = MG_PG_SETUP;

    int rc;
    if (c == &s->q) {
        char *sql = mg_store_pg_setup_sql(s);
        rc = PQsendQuery(c->pg, sql);
        free(sql);
    } else {
        rc = PQsendQuery(c->pg, MG_PG_SQL_LISTEN);
    }
    if (rc != 1) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "sending the %s query failed: %s",
                              c == &s->q ? "schema" : "LISTEN", PQerrorMessage(c->pg));
        return;
    }
    c->busy = true;
    c->sqlstate[0] = '\0';
    if (mg_store_pg_conn_flush(c) != MG_OK) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "sending the %s query failed: %s",
                              c == &s->q ? "schema" : "LISTEN", PQerrorMessage(c->pg));
    }
}

static void mg_store_pg_connect_cb(evutil_socket_t fd, short what, void *arg);

/* A quoted identifier or string literal (standard_conforming_strings is on). */
static void
mg_store_pg_quote(mg_buf_t *b, const char *s, char q)
{
    mg_buf_append(b, &q, 1);
    for (const char *p = s; *p != '\0'; p++) {
        mg_buf_append(b, p, 1);
        if (*p == q) {
            mg_buf_append(b, p, 1);
        }
    }
    mg_buf_append(b, &q, 1);
}

/*
 * The setup of the query connection: session settings, then one transaction that creates what
 * is missing (moongate's tables, LiteLLM's tables), then the catalogue of LiteLLM's tables (the
 * last result).  statement_timeout (set per session just below our own query timeout) lets the
 * server give up first, with a clean error, instead of us closing the connection; TimeZone UTC
 * makes LiteLLM's timestamp columns (UTC without a zone) read and write as UTC.
 */
static char *
mg_store_pg_setup_sql(const mg_store_pg_t *s)
{
    mg_buf_t b = MG_BUF_INIT;
    int st = s->query_timeout_ms > 2000 ? s->query_timeout_ms - 1000 : s->query_timeout_ms;
    mg_buf_printf(&b, "SET statement_timeout = %d;\nSET TimeZone = 'UTC';\n"
                      "SET standard_conforming_strings = on;\n", st);
    if (s->schema != NULL) {
        /* Prisma's ?schema=: LiteLLM's tables (and ours beside them) live there */
        mg_buf_append_str(&b, "SET search_path TO ");
        mg_store_pg_quote(&b, s->schema, '"');
        mg_buf_append_str(&b, ";\n");
    }
    mg_buf_append_str(&b, "BEGIN;\nSET LOCAL client_min_messages = warning;\n"
                          "SELECT pg_advisory_xact_lock(7885351518267664485);\n");
    if (s->schema != NULL) {
        mg_buf_t q = MG_BUF_INIT;
        mg_store_pg_quote(&q, s->schema, '"');
        mg_buf_append_str(&b, "DO $mgs$\nBEGIN\n    IF to_regnamespace(");
        mg_store_pg_quote(&b, mg_buf_cstr(&q), '\'');
        mg_buf_printf(&b, ") IS NULL THEN\n        CREATE SCHEMA %s;\n    END IF;\nEND\n$mgs$;\n",
                      mg_buf_cstr(&q));
        mg_buf_free(&q);
    }
    mg_buf_append_str(&b, MG_PG_SQL_SCHEMA);
    char *lit = mg_store_pgl_schema_sql();
    mg_buf_append_str(&b, lit);
    free(lit);
    mg_buf_append_str(&b, "COMMIT;\n");
    mg_buf_append_str(&b, mg_store_pgl_catalog_sql);
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

/* Waits for the socket as PQconnectPoll asked (the socket may change between polls). */
static void
mg_store_pg_conn_poll_wait(mg_pg_conn_t *c, PostgresPollingStatusType st)
{
    mg_store_pg_t *s = c->s;
    evutil_socket_t fd = PQsocket(c->pg);
    if (c->io != NULL) {
        event_free(c->io);
        c->io = NULL;
    }
    if (fd < 0) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "%s", PQerrorMessage(c->pg));
        return;
    }
    c->io = event_new(s->base, fd, st == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
                      mg_store_pg_connect_cb, c);
    if (c->io == NULL || event_add(c->io, NULL) != 0) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "event_new() failed for fd %d", (int) fd);
    }
}

static void
mg_store_pg_connect_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_pg_conn_t *c = arg;
    mg_store_pg_t *s = c->s;
    mg_store_pg_enter(s);
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    switch (st) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        mg_store_pg_conn_poll_wait(c, st);
        break;
    case PGRES_POLLING_OK:
        mg_store_pg_conn_connected(c);
        break;
    default:
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "%s", PQerrorMessage(c->pg));
        break;
    }
    mg_store_pg_leave(s);
}

static bool
mg_store_pg_kw_set(const char **kw, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(kw[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Starts PQconnectStartParams with the parsed URL; hosts/addrs (both or neither) replace host
 * and hostaddr with names resolved by evdns, so libpq never resolves on the loop.
 */
static void
mg_store_pg_conn_connect(mg_pg_conn_t *c, const char *hosts, const char *addrs)
{
    mg_store_pg_t *s = c->s;
    enum { MAX_KW = 80 };
    const char *kw[MAX_KW + 1], *val[MAX_KW + 1];
    int n = 0;

    for (const PQconninfoOption *o = s->opts; o->keyword != NULL && n < MAX_KW - 10; o++) {
        if (o->val == NULL) {
            continue;
        }
        if (addrs != NULL && (strcmp(o->keyword, "host") == 0 ||
                              strcmp(o->keyword, "hostaddr") == 0)) {
            continue;
        }
        kw[n] = o->keyword;
        val[n++] = o->val;
    }
    if (addrs != NULL) {
        kw[n] = "host";
        val[n++] = hosts;
        kw[n] = "hostaddr";
        val[n++] = addrs;
    }
    static const char *const defaults[][2] = {
        {"fallback_application_name", "moongate"},
        {"client_encoding", "UTF8"},
        {"keepalives_idle", "30"},
        {"keepalives_interval", "10"},
        {"keepalives_count", "3"},
        /* GSS negotiation can reach a KDC synchronously; a URL may still ask for it */
        {"gssencmode", "disable"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (!mg_store_pg_kw_set(kw, n, defaults[i][0])) {
            kw[n] = defaults[i][0];
            val[n++] = defaults[i][1];
        }
    }
    kw[n] = NULL;
    val[n] = NULL;

    c->state = MG_PG_CONNECTING;
    c->notice[0] = '\0';
    c->pg = PQconnectStartParams(kw, val, 0);
    if (c->pg == NULL) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT,
                              "PQconnectStartParams() failed: out of memory");
        return;
    }
    PQsetNoticeProcessor(c->pg, mg_store_pg_notice_cb, c);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "%s", PQerrorMessage(c->pg));
        return;
    }
    /* libpq's contract: start as if PQconnectPoll had returned PGRES_POLLING_WRITING */
    mg_store_pg_conn_poll_wait(c, PGRES_POLLING_WRITING);
}

static void
mg_store_pg_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    mg_pg_dns_tok_t *tok = arg;
    mg_pg_conn_t *c = tok->c;
    free(tok);
    if (c == NULL) {
        if (res != NULL) {
            evutil_freeaddrinfo(res);
        }
        return; /* the attempt was abandoned (timeout, destroy) */
    }
    mg_store_pg_t *s = c->s;
    c->dns_tok = NULL;
    c->dns_req = NULL;
    mg_store_pg_enter(s);

    const char *host = mg_store_pg_opt(s, "host");
    if (host == NULL) {
        host = getenv("PGHOST");
    }
    if (result != 0 || res == NULL) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "cannot resolve database host \"%s\": %s",
                              host, evutil_gai_strerror(result != 0 ? result : EVUTIL_EAI_NONAME));
    } else {
        char addr[MG_PG_MAX_ADDRS][INET6_ADDRSTRLEN];
        int n = 0;
        for (struct evutil_addrinfo *ai = res; ai != NULL && n < MG_PG_MAX_ADDRS;
             ai = ai->ai_next) {
            const void *p;
            if (ai->ai_family == AF_INET) {
                p = &((struct sockaddr_in *) ai->ai_addr)->sin_addr;
            } else if (ai->ai_family == AF_INET6) {
                p = &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;
            } else {
                continue;
            }
            if (evutil_inet_ntop(ai->ai_family, p, addr[n], sizeof(addr[n])) == NULL) {
                continue;
            }
            bool dup = false; /* one entry per socket type/protocol is common */
            for (int i = 0; i < n && !dup; i++) {
                dup = strcmp(addr[i], addr[n]) == 0;
            }
            n += !dup;
        }
        evutil_freeaddrinfo(res);
        if (n == 0) {
            mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "cannot resolve database host \"%s\": "
                                  "no usable address", host);
        } else {
            /* libpq tries host[i]/hostaddr[i] in order: the name stays for TLS and .pgpass */
            mg_buf_t hosts = MG_BUF_INIT, addrs = MG_BUF_INIT;
            for (int i = 0; i < n; i++) {
                mg_buf_printf(&hosts, "%s%s", i > 0 ? "," : "", host);
                mg_buf_printf(&addrs, "%s%s", i > 0 ? "," : "", addr[i]);
            }
            mg_store_pg_conn_connect(c, mg_buf_cstr(&hosts), mg_buf_cstr(&addrs));
            mg_buf_free(&hosts);
            mg_buf_free(&addrs);
        }
    }
    mg_store_pg_leave(s);
}

/* True when libpq would have to resolve host itself (a single DNS name). */
static bool
mg_store_pg_needs_dns(const mg_store_pg_t *s, const char **hostp)
{
    const char *host = mg_store_pg_opt(s, "host");
    if (host == NULL) {
        host = getenv("PGHOST");
    }
    if (host == NULL || host[0] == '\0' || host[0] == '/' || host[0] == '@' ||
        strchr(host, ',') != NULL || mg_store_pg_opt(s, "hostaddr") != NULL ||
        getenv("PGHOSTADDR") != NULL) {
        return false;
    }
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        return false;
    }
    *hostp = host;
    return true;
}

static void
mg_store_pg_conn_start(mg_pg_conn_t *c)
{
    mg_store_pg_t *s = c->s;
    const char *host;

    c->started = true;
    mg_store_pg_timer_add(c, s->connect_timeout_ms);
    if (!mg_store_pg_needs_dns(s, &host)) {
        mg_store_pg_conn_connect(c, NULL, NULL);
        return;
    }
    if (s->dns == NULL) {
        s->dns = evdns_base_new(s->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (s->dns == NULL) {
            mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "cannot resolve database host \"%s\": "
                                  "evdns_base_new() failed", host);
            return;
        }
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = s->dns_family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;

    mg_pg_dns_tok_t *tok = mg_xcalloc(1, sizeof(*tok));
    tok->c = c;
    c->dns_tok = tok;
    c->state = MG_PG_RESOLVING;
    /* the callback may run before this returns (hosts file), in which case NULL comes back */
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(s->dns, host, NULL, &hints, mg_store_pg_dns_cb, tok);
    if (req != NULL) {
        c->dns_req = req;
    }
}

static void
mg_store_pg_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_pg_conn_t *c = arg;
    mg_store_pg_t *s = c->s;
    mg_store_pg_enter(s);
    switch (c->state) {
    case MG_PG_DOWN:
        mg_store_pg_conn_start(c);
        break;
    case MG_PG_RESOLVING:
    case MG_PG_CONNECTING:
    case MG_PG_SETUP:
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "connecting to %s timed out after %dms%s",
                              s->url, s->connect_timeout_ms,
                              c->state == MG_PG_RESOLVING ? " (resolving the host name)"
                              : c->state == MG_PG_SETUP   ? " (during setup)"
                                                          : "");
        break;
    case MG_PG_READY:
        if (c->busy && c == &s->q && s->head != NULL) {
            mg_store_pg_conn_down(c, MG_PG_FAIL_TIMEOUT, "query connection closed after %s "
                                  "timed out after %dms", s->head->what, s->query_timeout_ms);
        }
        break;
    }
    mg_store_pg_leave(s);
}

/*
 * Builds the SQL of an identity mutation against the catalogue of this connection; MG_ERROR with
 * op->err set when the mutation is refused (an unknown column, ...).
 */
static int
mg_store_pg_build_ident(mg_store_pg_t *s, mg_pg_op_t *op)
{
    if (op->ident == NULL || op->sql != NULL) {
        return MG_OK;
    }
    for (int i = 0; i < op->nparams; i++) {
        free(op->params[i]);
    }
    op->nparams = 0;
    free(op->key);
    op->key = NULL;
    if (mg_store_pgl_build_ident(&s->cat, op->ident, mg_store_pg_bump_fmt, mg_store_pg_event_fmt,
                                 &op->sql_owned, op->params, &op->nparams, &op->key,
                                 &op->err) != MG_OK) {
        return MG_ERROR;
    }
    op->sql = op->sql_owned;
    return MG_OK;
}

/* Sends the next queued operation when the query connection is idle. */
static void
mg_store_pg_kick(mg_store_pg_t *s)
{
    mg_pg_conn_t *c = &s->q;
    while (!s->dead && c->state == MG_PG_READY && !c->busy && s->head != NULL &&
           mg_store_pg_build_ident(s, s->head) != MG_OK) {
        mg_pg_op_t *bad = s->head; /* refused before it reached the database */
        s->head = bad->next;
        if (s->head == NULL) {
            s->tail = NULL;
        }
        s->queued--;
        mg_store_pg_defer_fail(s, bad);
    }
    if (s->dead || c->state != MG_PG_READY || c->busy || s->head == NULL) {
        return;
    }
    mg_pg_op_t *op = s->head;
    if (PQsendQueryParams(c->pg, op->sql, op->nparams, NULL, (const char *const *) op->params,
                          NULL, NULL, 0) != 1) {
        /* nothing reached the server: every queued op fails as "unavailable" */
        mg_store_pg_conn_down(c, MG_PG_FAIL_CONNECT, "sending %s failed: %s", op->what,
                              PQerrorMessage(c->pg));
        return;
    }
    c->busy = true;
    c->sqlstate[0] = '\0';
    mg_store_pg_timer_add(c, s->query_timeout_ms);
    if (mg_store_pg_conn_flush(c) != MG_OK) {
        mg_store_pg_conn_down(c, MG_PG_FAIL_LOST, "sending %s failed: %s", op->what,
                              PQerrorMessage(c->pg));
    }
}

/* ---- building mutations ---- */

static const char *
mg_store_pg_str(json_t *m, const char *key)
{
    json_t *v = json_object_get(m, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A copy of obj without null values ("merge non-null values"); NULL when obj is null/absent. */
static json_t *
mg_store_pg_non_null(json_t *obj)
{
    if (obj == NULL || json_is_null(obj)) {
        return NULL;
    }
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (!json_is_null(v)) {
            json_object_set(out, k, v);
        }
    }
    return out;
}

static int
mg_store_pg_build_model_update(mg_store_pg_t *s, mg_pg_op_t *op, json_t *m, mg_err_t *err)
{
    json_t *name = json_object_get(m, "model_name");
    json_t *lp = json_object_get(m, "litellm_params");
    json_t *mi = json_object_get(m, "model_info");
    json_t *clear = json_object_get(m, "clear");

    if (name != NULL && !json_is_null(name) && !json_is_string(name)) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "model_update of \"%s\": model_name must be "
                          "a string or null", op->key);
    }
    if ((lp != NULL && !json_is_null(lp) && !json_is_object(lp)) ||
        (mi != NULL && !json_is_null(mi) && !json_is_object(mi))) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "model_update of \"%s\": litellm_params and "
                          "model_info must be objects or null", op->key);
    }
    if (clear != NULL && !json_is_null(clear) && !json_is_array(clear)) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "model_update of \"%s\": clear must be an "
                          "array of \"litellm_params.<key>\" / \"model_info.<key>\"", op->key);
    }
    json_t *clear_lp = json_array(), *clear_mi = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(clear, i, v) {
        const char *path = json_string_value(v);
        if (path != NULL && strncmp(path, "litellm_params.", 15) == 0 && path[15] != '\0') {
            json_array_append_new(clear_lp, json_string(path + 15));
        } else if (path != NULL && strncmp(path, "model_info.", 11) == 0 && path[11] != '\0') {
            json_array_append_new(clear_mi, json_string(path + 11));
        } else {
            json_decref(clear_lp);
            json_decref(clear_mi);
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "model_update of \"%s\": cannot clear "
                              "\"%s\": only litellm_params.<key> and model_info.<key> can be "
                              "cleared", op->key, path != NULL ? path : "(not a string)");
        }
    }
    json_t *lp_nn = mg_store_pg_non_null(lp);
    json_t *lp_enc = lp_nn != NULL ? mg_crypto_encrypt_object(&s->crypto, lp_nn) : NULL;
    json_t *mi_nn = mg_store_pg_non_null(mi);
    const char *user = mg_store_pg_str(m, "user");

    mg_store_pg_op_param(op, op->key);
    mg_store_pg_op_param(op, json_string_value(name));
    mg_store_pg_op_param_json(op, lp_enc);
    mg_store_pg_op_param_json(op, clear_lp);
    mg_store_pg_op_param_json(op, mi_nn);
    mg_store_pg_op_param_json(op, clear_mi);
    mg_store_pg_op_param(op, user != NULL ? user : MG_PG_DEFAULT_USER);
    json_decref(lp_nn);
    json_decref(lp_enc);
    json_decref(mi_nn);
    json_decref(clear_lp);
    json_decref(clear_mi);
    return MG_OK;
}

/* Fills op's SQL and parameters from the mutation; MG_ERROR with a bad_request err otherwise. */
static int
mg_store_pg_build_mutation(mg_store_pg_t *s, mg_pg_op_t *op, json_t *m, mg_err_t *err)
{
    const char *kind = mg_store_pg_str(m, "op");
    if (!json_is_object(m) || kind == NULL) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "store mutation: \"op\" must be a string");
    }
    op->what = NULL;
    if (strncmp(kind, "ident_", 6) == 0) {
        static const struct {
            const char *op;
            mg_pg_mut_t mut;
        } idents[] = {{"ident_put", MG_PG_MUT_IDENT_PUT},
                      {"ident_patch", MG_PG_MUT_IDENT_PATCH},
                      {"ident_delete", MG_PG_MUT_IDENT_DELETE}};
        for (size_t i = 0; i < sizeof(idents) / sizeof(idents[0]); i++) {
            if (strcmp(kind, idents[i].op) == 0) {
                op->what = idents[i].op;
                op->mut = idents[i].mut;
                /* LiteLLM's tables as they exist decide the SQL: built when sent (kick) */
                op->ident = json_deep_copy(m);
                return MG_OK;
            }
        }
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "store mutation: unknown op \"%s\"", kind);
    }

    if (strcmp(kind, "model_new") == 0 || strcmp(kind, "model_update") == 0 ||
        strcmp(kind, "model_delete") == 0) {
        const char *id = mg_store_pg_str(m, "model_id");
        char uuid[37];
        if (id == NULL && strcmp(kind, "model_new") == 0) {
            mg_uuid4(uuid); /* LiteLLM assigns an id when the caller gives none */
            id = uuid;
        }
        if (id == NULL || id[0] == '\0') {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "%s: \"model_id\" must be a non-empty "
                              "string", kind);
        }
        op->key = mg_xstrdup(id);
    }

    if (strcmp(kind, "model_new") == 0) {
        op->what = "model_new";
        op->mut = MG_PG_MUT_MODEL_NEW;
        op->sql = mg_store_pg_sql_model_new;
        const char *name = mg_store_pg_str(m, "model_name");
        json_t *lp = json_object_get(m, "litellm_params");
        json_t *mi = json_object_get(m, "model_info");
        const char *user = mg_store_pg_str(m, "user");
        if (name == NULL) {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "model_new of \"%s\": \"model_name\" must "
                              "be a string", op->key);
        }
        if (!json_is_object(lp) || (mi != NULL && !json_is_null(mi) && !json_is_object(mi))) {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "model_new of \"%s\": litellm_params must "
                              "be an object (model_info an object or null)", op->key);
        }
        json_t *enc = mg_crypto_encrypt_object(&s->crypto, lp);
        mg_store_pg_op_param(op, op->key);
        mg_store_pg_op_param(op, name);
        mg_store_pg_op_param_json(op, enc);
        if (json_is_object(mi)) {
            mg_store_pg_op_param_json(op, mi);
        } else {
            mg_store_pg_op_param(op, "{}");
        }
        mg_store_pg_op_param(op, user != NULL ? user : MG_PG_DEFAULT_USER);
        json_decref(enc);
        return MG_OK;
    }
    if (strcmp(kind, "model_update") == 0) {
        op->what = "model_update";
        op->mut = MG_PG_MUT_MODEL_UPDATE;
        op->sql = mg_store_pg_sql_model_update;
        return mg_store_pg_build_model_update(s, op, m, err);
    }
    if (strcmp(kind, "model_delete") == 0) {
        op->what = "model_delete";
        op->mut = MG_PG_MUT_MODEL_DELETE;
        op->sql = mg_store_pg_sql_model_delete;
        const char *user = mg_store_pg_str(m, "user");
        mg_store_pg_op_param(op, op->key);
        mg_store_pg_op_param(op, user != NULL ? user : MG_PG_DEFAULT_USER);
        return MG_OK;
    }
    if (strcmp(kind, "policy_update") == 0) {
        op->what = "policy_update";
        op->mut = MG_PG_MUT_POLICY_UPDATE;
        op->sql = mg_store_pg_sql_policy_update;
        const char *f[4] = {mg_store_pg_str(m, "name"), mg_store_pg_str(m, "kind"),
                            mg_store_pg_str(m, "source"), mg_store_pg_str(m, "hash")};
        if (f[0] == NULL || f[0][0] == '\0' || f[1] == NULL || f[2] == NULL || f[3] == NULL) {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "policy_update: \"name\", \"kind\", "
                              "\"source\" and \"hash\" must be strings");
        }
        op->key = mg_xstrdup(f[0]);
        for (int i = 0; i < 4; i++) {
            mg_store_pg_op_param(op, f[i]);
        }
        return MG_OK;
    }
    if (strcmp(kind, "policy_delete") == 0) {
        op->what = "policy_delete";
        op->mut = MG_PG_MUT_POLICY_DELETE;
        op->sql = mg_store_pg_sql_policy_delete;
        const char *name = mg_store_pg_str(m, "name");
        if (name == NULL || name[0] == '\0') {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "policy_delete: \"name\" must be a "
                              "non-empty string");
        }
        op->key = mg_xstrdup(name);
        mg_store_pg_op_param(op, name);
        return MG_OK;
    }
    if (strcmp(kind, "bump") == 0) {
        op->what = "bump";
        op->mut = MG_PG_MUT_BUMP;
        op->sql = mg_store_pg_sql_bump;
        json_t *reason = json_object_get(m, "reason");
        json_t *detail = json_object_get(m, "detail");
        json_t *d = json_pack("{s:O, s:O}", "reason", reason != NULL ? reason : json_null(),
                              "detail", detail != NULL ? detail : json_null());
        mg_store_pg_op_param_json(op, d);
        json_decref(d);
        return MG_OK;
    }
    return mg_err_set(err, MG_ERR_BAD_REQUEST, "store mutation: unknown op \"%s\"", kind);
}

/* ---- the store interface ---- */

static void
mg_store_pg_load(mg_store_t *st, mg_store_load_cb cb, void *ud)
{
    mg_store_pg_t *s = st->impl;
    mg_pg_op_t *op = mg_store_pg_op_new(MG_PG_OP_LOAD, "load", mg_store_pg_sql_load, ud);
    op->cb.load = cb;
    mg_store_pg_submit(s, op);
}

static void
mg_store_pg_get_version(mg_store_t *st, mg_store_version_cb cb, void *ud)
{
    mg_store_pg_t *s = st->impl;
    mg_pg_op_t *op = mg_store_pg_op_new(MG_PG_OP_VERSION, "get_version", mg_store_pg_sql_version,
                                        ud);
    op->cb.version = cb;
    mg_store_pg_submit(s, op);
}

static void
mg_store_pg_mutate(mg_store_t *st, json_t *mutation, mg_store_mutate_cb cb, void *ud)
{
    mg_store_pg_t *s = st->impl;
    mg_pg_op_t *op = mg_store_pg_op_new(MG_PG_OP_MUTATE, "mutation", NULL, ud);
    op->cb.mutate = cb;
    if (mg_store_pg_build_mutation(s, op, mutation, &op->err) != MG_OK) {
        op->failed = true;
    }
    if (op->what == NULL) {
        op->what = "mutation";
    }
    mg_store_pg_submit(s, op);
}

static void
mg_store_pg_watch(mg_store_t *st, mg_store_hint_cb on_hint, mg_store_reconnect_cb on_reconnect,
                  void *ud)
{
    mg_store_pg_t *s = st->impl;
    s->on_hint = on_hint;
    s->on_reconnect = on_reconnect;
    s->watch_ud = ud;
    if (!s->l.started && !s->dead) {
        mg_store_pg_conn_start(&s->l);
    }
}

static json_t *
mg_store_pg_status(mg_store_t *st)
{
    mg_store_pg_t *s = st->impl;
    json_t *err = s->last_error[0] != '\0' ? json_string(s->last_error) : json_null();
    if (err == NULL) {
        err = json_string("(error text is not valid UTF-8)");
    }
    return json_pack("{s:s, s:b, s:b, s:s, s:o, s:I, s:i}", "type", "postgres", "connected",
                     s->q.state == MG_PG_READY, "listening", s->l.state == MG_PG_READY, "url",
                     s->url, "last_error", err, "reconnects", (json_int_t) s->reconnects,
                     "queued", s->queued);
}

static void
mg_store_pg_free_list(mg_pg_op_t *op)
{
    while (op != NULL) {
        mg_pg_op_t *next = op->next;
        mg_store_pg_op_free(op);
        op = next;
    }
}

static void
mg_store_pg_destroy(mg_store_t *st)
{
    if (st == NULL) {
        return;
    }
    mg_store_pg_t *s = st->impl;
    if (s->dead) {
        return;
    }
    s->dead = true;
    mg_pg_conn_t *conns[2] = {&s->q, &s->l};
    for (int i = 0; i < 2; i++) {
        if (conns[i]->dns_tok != NULL) {
            /*
             * Detach without evdns_getaddrinfo_cancel(): a cancel completes through a deferred
             * callback that still locks the evdns base we free below.  evdns_base_free(, 1)
             * fails the lookup instead, through a callback that no longer touches the base.
             */
            conns[i]->dns_tok->c = NULL;
            conns[i]->dns_tok = NULL;
            conns[i]->dns_req = NULL;
        }
        mg_store_pg_conn_close(conns[i]);
        conns[i]->state = MG_PG_DOWN;
        if (conns[i]->timer != NULL) {
            event_free(conns[i]->timer);
            conns[i]->timer = NULL;
        }
    }
    mg_store_pg_free_list(s->head);
    s->head = s->tail = NULL;
    s->queued = 0;
    mg_store_pg_free_list(s->fail_head);
    s->fail_head = s->fail_tail = NULL;
    if (s->fail_ev != NULL) {
        event_free(s->fail_ev);
        s->fail_ev = NULL;
    }
    if (s->dns != NULL) {
        evdns_base_free(s->dns, 1); /* a pending lookup's detached token is freed by its callback */
        s->dns = NULL;
    }
    PQconninfoFree(s->opts);
    s->opts = NULL;
    free(s->url);
    s->url = NULL;
    free(s->schema);
    s->schema = NULL;
    mg_store_pgl_cat_free(&s->cat);
    sodium_memzero(&s->lcrypto, sizeof(s->lcrypto));
    s->on_hint = NULL;
    s->on_reconnect = NULL;
    if (s->depth == 0) {
        free(s);
    }
}

static const mg_store_ops_t mg_store_pg_ops = {
    .name = "postgres",
    .load = mg_store_pg_load,
    .get_version = mg_store_pg_get_version,
    .mutate = mg_store_pg_mutate,
    .watch = mg_store_pg_watch,
    .status = mg_store_pg_status,
    .destroy = mg_store_pg_destroy,
};

static void
mg_store_pg_conn_init(mg_store_pg_t *s, mg_pg_conn_t *c, const char *role)
{
    c->s = s;
    c->role = role;
    c->state = MG_PG_DOWN;
    c->backoff_ms = MG_PG_BACKOFF_MIN_MS;
    c->timer = evtimer_new(s->base, mg_store_pg_timer_cb, c);
}

static int
mg_store_pg_hex(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * LiteLLM's DATABASE_URL is Prisma's, whose query parameters libpq partly rejects: "schema"
 * becomes search_path (*schema, percent-decoded, malloc'd), and the Prisma engine's own
 * connection_limit, pool_timeout, pgbouncer, socket_timeout, statement_cache_size, sslaccept
 * and sslidentity are dropped.  Everything else is left for libpq.  Returns a malloc'd URL.
 */
static char *
mg_store_pg_prisma_url(const char *url, char **schema)
{
    static const char *const prisma_only[] = {"connection_limit", "pool_timeout", "pgbouncer",
                                              "socket_timeout", "statement_cache_size",
                                              "sslaccept", "sslidentity", NULL};
    *schema = NULL;
    const char *q = strchr(url, '?');
    if (q == NULL || (strncmp(url, "postgres://", 11) != 0 &&
                      strncmp(url, "postgresql://", 13) != 0)) {
        return mg_xstrdup(url);
    }
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, url, (size_t) (q - url));
    int kept = 0;
    for (const char *p = q + 1; *p != '\0';) {
        size_t n = strcspn(p, "&");
        size_t kl = strcspn(p, "=&");
        bool drop = false;
        for (int i = 0; prisma_only[i] != NULL; i++) {
            drop = drop || (strlen(prisma_only[i]) == kl && strncmp(p, prisma_only[i], kl) == 0);
        }
        if (kl == 6 && strncmp(p, "schema", 6) == 0) {
            drop = true;
            if (p[kl] == '=') {
                mg_buf_t v = MG_BUF_INIT;
                for (const char *x = p + kl + 1; x < p + n; x++) {
                    int h1, h2;
                    if (*x == '%' && x + 2 < p + n && (h1 = mg_store_pg_hex(x[1])) >= 0 &&
                        (h2 = mg_store_pg_hex(x[2])) >= 0) {
                        char ch = (char) (h1 * 16 + h2);
                        mg_buf_append(&v, &ch, 1);
                        x += 2;
                    } else {
                        mg_buf_append(&v, *x == '+' ? " " : x, 1);
                    }
                }
                free(*schema);
                *schema = mg_buf_len(&v) > 0 ? mg_xstrdup(mg_buf_cstr(&v)) : NULL;
                mg_buf_free(&v);
            }
        }
        if (!drop && n > 0) {
            mg_buf_append(&b, kept++ == 0 ? "?" : "&", 1);
            mg_buf_append(&b, p, n);
        }
        p += n + (p[n] == '&');
    }
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

mg_store_t *
mg_store_pg_create(const mg_store_conf_t *conf, mg_err_t *err)
{
    if (conf == NULL || conf->base == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "postgres store: no event base");
        return NULL;
    }
    if (conf->database_url == NULL || conf->database_url[0] == '\0') {
        mg_err_set(err, MG_ERR_CONFIG, "postgres store: DATABASE_URL is empty");
        return NULL;
    }
    char *perr = NULL;
    char *schema = NULL;
    char *url = mg_store_pg_prisma_url(conf->database_url, &schema);
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    free(url);
    if (opts == NULL) {
        free(schema);
        char shown[256], why[256];
        mg_store_pg_redact_raw(conf->database_url, shown, sizeof(shown));
        mg_store_pg_unquote(perr != NULL ? perr : "out of memory", why, sizeof(why));
        PQfreemem(perr);
        mg_err_set(err, MG_ERR_CONFIG, "invalid DATABASE_URL %s: %s", shown, why);
        return NULL;
    }

    mg_store_pg_t *s = mg_xcalloc(1, sizeof(*s));
    s->pub.ops = &mg_store_pg_ops;
    s->pub.impl = s;
    s->base = conf->base;
    s->opts = opts;
    s->schema = schema;
    s->url = mg_store_pg_redact_opts(s);
    s->dns_family = AF_UNSPEC;
    s->query_timeout_ms = MG_PG_QUERY_TIMEOUT_MS;
    s->connect_timeout_ms = MG_PG_CONNECT_TIMEOUT_MS;
    const char *ct = mg_store_pg_opt(s, "connect_timeout");
    if (ct != NULL && atoi(ct) > 0) {
        /* libpq only enforces connect_timeout in blocking connects: honour it here (min 2 s) */
        s->connect_timeout_ms = atoi(ct) < 2 ? 2000 : atoi(ct) * 1000;
    }
    mg_crypto_init(&s->crypto, conf->secret);
    mg_store_pgl_crypto_init(&s->lcrypto, conf->secret);
    mg_store_pgl_cat_init(&s->cat);
    s->fail_ev = event_new(s->base, -1, 0, mg_store_pg_fail_cb, s);
    mg_store_pg_conn_init(s, &s->q, "query");
    mg_store_pg_conn_init(s, &s->l, "listen");
    if (s->fail_ev == NULL || s->q.timer == NULL || s->l.timer == NULL) {
        mg_err_set(err, MG_ERR_INTERNAL, "postgres store: event_new() failed");
        mg_store_pg_destroy(&s->pub);
        return NULL;
    }
    if (!s->crypto.enabled) {
        mg_log(MG_LOG_WARN, NULL, "postgres store: no LITELLM_SALT_KEY or master key: model "
               "credentials are stored in plaintext in %s", s->url);
    }
    mg_log(MG_LOG_INFO, NULL, "postgres store: connecting to %s", s->url);
    mg_store_pg_conn_start(&s->q);
    return &s->pub;
}
