/*
 * mg_spend_sql.c -- see mg_spend_sql.h.
 *
 * Table definitions follow LiteLLM's schema.prisma (litellm/proxy/schema.prisma) as its
 * Prisma migrations render it: TEXT, DOUBLE PRECISION, INTEGER / BIGINT, TIMESTAMP(3) in UTC,
 * JSONB, the same constraint and index names.  Prisma fills "id" and "updated_at" of the
 * daily tables on the client side (no database default): the statement does the same.
 */
#include "mg_spend_sql.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- LiteLLM's tables ---- */

static const char *const mg_spend_tables[MG_ST__COUNT] = {
    "LiteLLM_SpendLogs",    "LiteLLM_VerificationToken", "LiteLLM_TeamTable",
    "LiteLLM_UserTable",    "LiteLLM_EndUserTable",      "LiteLLM_OrganizationTable",
    "LiteLLM_TeamMembership", "LiteLLM_DailyUserSpend",  "LiteLLM_DailyTeamSpend",
    "LiteLLM_DailyOrganizationSpend", "LiteLLM_DailyEndUserSpend", "LiteLLM_DailyTagSpend",
};

static const char *const mg_spend_tables_q[MG_ST__COUNT] = {
    "\"LiteLLM_SpendLogs\"",    "\"LiteLLM_VerificationToken\"", "\"LiteLLM_TeamTable\"",
    "\"LiteLLM_UserTable\"",    "\"LiteLLM_EndUserTable\"",      "\"LiteLLM_OrganizationTable\"",
    "\"LiteLLM_TeamMembership\"", "\"LiteLLM_DailyUserSpend\"",  "\"LiteLLM_DailyTeamSpend\"",
    "\"LiteLLM_DailyOrganizationSpend\"", "\"LiteLLM_DailyEndUserSpend\"",
    "\"LiteLLM_DailyTagSpend\"",
};

const char *
mg_spend_sql_table(mg_spend_table_t t)
{
    return mg_spend_tables_q[t];
}

/* The SpendLogs columns the sink writes, with the expression over a batch row x. */
typedef struct {
    const char *col;                /* quoted when needed */
    const char *name;               /* as information_schema shows it */
    const char *expr;
    bool required;
} mg_spend_col_t;

static const mg_spend_col_t mg_spend_log_cols[] = {
    {"request_id", "request_id", "#RID#", true},
    {"call_type", "call_type", "x.ct", true},
    {"api_key", "api_key", "x.ak", false},
    {"spend", "spend", "x.sp", false},
    {"total_tokens", "total_tokens", "LEAST(x.tt, 2147483647)", false},
    {"prompt_tokens", "prompt_tokens", "LEAST(x.pt, 2147483647)", false},
    {"completion_tokens", "completion_tokens", "LEAST(x.ctk, 2147483647)", false},
    {"\"startTime\"", "startTime", "x.st", true},
    {"\"endTime\"", "endTime", "x.et", true},
    {"request_duration_ms", "request_duration_ms", "LEAST(x.dur, 2147483647)", false},
    {"\"completionStartTime\"", "completionStartTime", "x.cs", false},
    {"model", "model", "x.mo", false},
    {"model_id", "model_id", "x.mid", false},
    {"model_group", "model_group", "x.mg", false},
    {"custom_llm_provider", "custom_llm_provider", "x.pr", false},
    {"api_base", "api_base", "x.ab", false},
    {"\"user\"", "user", "x.us", false},
    {"metadata", "metadata", "x.md || jsonb_build_object('moongate_row_id', x.uid)", true},
    {"cache_hit", "cache_hit", "'False'", false},
    {"cache_key", "cache_key", "'Cache OFF'", false},
    {"request_tags", "request_tags", "x.tg", false},
    {"team_id", "team_id", "x.tm", false},
    {"organization_id", "organization_id", "x.og", false},
    {"end_user", "end_user", "x.eu", false},
    {"requester_ip_address", "requester_ip_address", "NULLIF(x.ip, '')", false},
    {"messages", "messages", "'{}'::jsonb", false},
    {"response", "response", "x.rsp", false},
    {"session_id", "session_id", "NULLIF(x.sid, '')", false},
    {"status", "status", "x.sts", false},
    {"proxy_server_request", "proxy_server_request", "x.psr", false},
};
#define MG_SPEND_NLOG_COLS (sizeof(mg_spend_log_cols) / sizeof(mg_spend_log_cols[0]))

/* Identity tables: [0] the key column, [1] "spend", [2] a second key column (membership). */
static const char *const mg_spend_id_cols[MG_ST__COUNT][3] = {
    [MG_ST_TOKEN] = {"token", "spend", NULL},
    [MG_ST_TEAM] = {"team_id", "spend", NULL},
    [MG_ST_USER] = {"user_id", "spend", NULL},
    [MG_ST_END_USER] = {"user_id", "spend", NULL},
    [MG_ST_ORG] = {"organization_id", "spend", NULL},
    [MG_ST_TEAM_MEMBER] = {"user_id", "spend", "team_id"},
};

/* The daily tables' columns, bit order. */
enum {
    MG_DC_ID = 0, MG_DC_ENT, MG_DC_DATE, MG_DC_API_KEY, MG_DC_MODEL, MG_DC_MODEL_GROUP,
    MG_DC_PROVIDER, MG_DC_MCP, MG_DC_ENDPOINT, MG_DC_PT, MG_DC_CT, MG_DC_CR, MG_DC_CC,
    MG_DC_SPEND, MG_DC_REQS, MG_DC_OK, MG_DC_FAIL, MG_DC_UPDATED, MG_DC__COUNT
};
static const char *const mg_spend_daily_cols[MG_DC__COUNT] = {
    "id", NULL, "date", "api_key", "model", "model_group", "custom_llm_provider",
    "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
    "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
    "successful_requests", "failed_requests", "updated_at",
};
static const char *const mg_spend_daily_ent[MG_ST__COUNT] = {
    [MG_ST_DAILY_USER] = "user_id", [MG_ST_DAILY_TEAM] = "team_id",
    [MG_ST_DAILY_ORG] = "organization_id", [MG_ST_DAILY_END_USER] = "end_user_id",
    [MG_ST_DAILY_TAG] = "tag",
};

static bool
mg_spend_is_daily(mg_spend_table_t t)
{
    return t >= MG_ST_DAILY_USER && t <= MG_ST_DAILY_TAG;
}

/* ---- schema ---- */

#define MG_DAILY_TABLE(T, ENT, EXTRA)                                                              \
    "    IF to_regclass('\"" T "\"') IS NULL THEN\n"                                               \
    "        CREATE TABLE \"" T "\" (\n"                                                           \
    "            \"id\" TEXT NOT NULL,\n"                                                          \
    EXTRA                                                                                          \
    "            \"" ENT "\" TEXT,\n"                                                              \
    "            \"date\" TEXT NOT NULL,\n"                                                        \
    "            \"api_key\" TEXT NOT NULL,\n"                                                     \
    "            \"model\" TEXT,\n"                                                                \
    "            \"model_group\" TEXT,\n"                                                          \
    "            \"custom_llm_provider\" TEXT,\n"                                                  \
    "            \"mcp_namespaced_tool_name\" TEXT,\n"                                             \
    "            \"endpoint\" TEXT,\n"                                                             \
    "            \"prompt_tokens\" BIGINT NOT NULL DEFAULT 0,\n"                                   \
    "            \"completion_tokens\" BIGINT NOT NULL DEFAULT 0,\n"                               \
    "            \"cache_read_input_tokens\" BIGINT NOT NULL DEFAULT 0,\n"                         \
    "            \"cache_creation_input_tokens\" BIGINT NOT NULL DEFAULT 0,\n"                     \
    "            \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"                               \
    "            \"api_requests\" BIGINT NOT NULL DEFAULT 0,\n"                                    \
    "            \"successful_requests\" BIGINT NOT NULL DEFAULT 0,\n"                             \
    "            \"failed_requests\" BIGINT NOT NULL DEFAULT 0,\n"                                 \
    "            \"created_at\" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"                \
    "            \"updated_at\" TIMESTAMP(3) NOT NULL,\n"                                          \
    "            CONSTRAINT \"" T "_pkey\" PRIMARY KEY (\"id\"));\n"                               \
    "        CREATE INDEX \"" T "_date_idx\" ON \"" T "\"(\"date\");\n"                            \
    "        CREATE INDEX \"" T "_" ENT "_date_idx\" ON \"" T "\"(\"" ENT "\", \"date\");\n"       \
    "        CREATE INDEX \"" T "_api_key_idx\" ON \"" T "\"(\"api_key\");\n"                      \
    "        CREATE INDEX \"" T "_model_idx\" ON \"" T "\"(\"model\");\n"                          \
    "        CREATE INDEX \"" T "_mcp_namespaced_tool_name_idx\" ON \"" T "\""                     \
    "(\"mcp_namespaced_tool_name\");\n"                                                            \
    "        CREATE INDEX \"" T "_endpoint_idx\" ON \"" T "\"(\"endpoint\");\n"                    \
    "        CREATE UNIQUE INDEX \"%s\" ON \"" T "\"(\"" ENT "\", \"date\", \"api_key\", "          \
    "\"model\", \"custom_llm_provider\", \"mcp_namespaced_tool_name\", \"endpoint\");\n"           \
    "    END IF;\n"

static const char mg_spend_schema_fmt[] =
    "BEGIN;\n"
    "SELECT pg_advisory_xact_lock(7885351518267664486);\n"
    "DO $mg$\n"
    "BEGIN\n"
    "    IF to_regclass('\"LiteLLM_SpendLogs\"') IS NULL THEN\n"
    "        CREATE TABLE \"LiteLLM_SpendLogs\" (\n"
    "            \"request_id\" TEXT NOT NULL,\n"
    "            \"call_type\" TEXT NOT NULL,\n"
    "            \"api_key\" TEXT NOT NULL DEFAULT '',\n"
    "            \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"
    "            \"total_tokens\" INTEGER NOT NULL DEFAULT 0,\n"
    "            \"prompt_tokens\" INTEGER NOT NULL DEFAULT 0,\n"
    "            \"completion_tokens\" INTEGER NOT NULL DEFAULT 0,\n"
    "            \"startTime\" TIMESTAMP(3) NOT NULL,\n"
    "            \"endTime\" TIMESTAMP(3) NOT NULL,\n"
    "            \"request_duration_ms\" INTEGER,\n"
    "            \"completionStartTime\" TIMESTAMP(3),\n"
    "            \"model\" TEXT NOT NULL DEFAULT '',\n"
    "            \"model_id\" TEXT DEFAULT '',\n"
    "            \"model_group\" TEXT DEFAULT '',\n"
    "            \"custom_llm_provider\" TEXT DEFAULT '',\n"
    "            \"api_base\" TEXT DEFAULT '',\n"
    "            \"user\" TEXT DEFAULT '',\n"
    "            \"metadata\" JSONB DEFAULT '{}',\n"
    "            \"cache_hit\" TEXT DEFAULT '',\n"
    "            \"cache_key\" TEXT DEFAULT '',\n"
    "            \"request_tags\" JSONB DEFAULT '[]',\n"
    "            \"team_id\" TEXT,\n"
    "            \"organization_id\" TEXT,\n"
    "            \"end_user\" TEXT,\n"
    "            \"requester_ip_address\" TEXT,\n"
    "            \"messages\" JSONB DEFAULT '{}',\n"
    "            \"response\" JSONB DEFAULT '{}',\n"
    "            \"session_id\" TEXT,\n"
    "            \"status\" TEXT,\n"
    "            \"mcp_namespaced_tool_name\" TEXT,\n"
    "            \"agent_id\" TEXT,\n"
    "            \"proxy_server_request\" JSONB DEFAULT '{}',\n"
    "            CONSTRAINT \"LiteLLM_SpendLogs_pkey\" PRIMARY KEY (\"request_id\"));\n"
    "        CREATE INDEX \"LiteLLM_SpendLogs_startTime_idx\" ON \"LiteLLM_SpendLogs\""
    "(\"startTime\");\n"
    "        CREATE INDEX \"LiteLLM_SpendLogs_startTime_request_id_idx\" ON "
    "\"LiteLLM_SpendLogs\"(\"startTime\", \"request_id\");\n"
    "        CREATE INDEX \"LiteLLM_SpendLogs_end_user_idx\" ON \"LiteLLM_SpendLogs\""
    "(\"end_user\");\n"
    "        CREATE INDEX \"LiteLLM_SpendLogs_session_id_idx\" ON \"LiteLLM_SpendLogs\""
    "(\"session_id\");\n"
    "    END IF;\n"
    MG_DAILY_TABLE("LiteLLM_DailyUserSpend", "user_id", "")
    MG_DAILY_TABLE("LiteLLM_DailyTeamSpend", "team_id", "")
    MG_DAILY_TABLE("LiteLLM_DailyOrganizationSpend", "organization_id", "")
    MG_DAILY_TABLE("LiteLLM_DailyEndUserSpend", "end_user_id", "")
    MG_DAILY_TABLE("LiteLLM_DailyTagSpend", "tag", "            \"request_id\" TEXT,\n")
    "END\n"
    "$mg$;\n"
    "COMMIT;\n";

const char *
mg_spend_sql_schema(void)
{
    /* Prisma's unique index names are cut at 63 bytes as Prisma cuts them */
    static char *sql;
    if (sql == NULL) {
        size_t n = sizeof(mg_spend_schema_fmt) + 512;
        sql = mg_xmalloc(n);
        snprintf(sql, n, mg_spend_schema_fmt,
                 "LiteLLM_DailyUserSpend_user_id_date_api_key_model_custom_ll_key",
                 "LiteLLM_DailyTeamSpend_team_id_date_api_key_model_custom_ll_key",
                 "LiteLLM_DailyOrganizationSpend_organization_id_date_api_key_key",
                 "LiteLLM_DailyEndUserSpend_end_user_id_date_api_key_model_cu_key",
                 "LiteLLM_DailyTagSpend_tag_date_api_key_model_custom_llm_pro_key");
    }
    return sql;
}

/* ---- step 1: which tables and columns exist ---- */

const char *
mg_spend_sql_begin(void)
{
    static char *sql;
    if (sql == NULL) {
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_printf(&b, "BEGIN;\nSELECT pg_advisory_xact_lock(%lld);\n"
                          "SELECT table_name::text, column_name::text FROM "
                          "information_schema.columns WHERE table_schema = current_schema() AND "
                          "table_name IN (",
                      (long long) MG_SPEND_SQL_LOCK_BATCH);
        for (int t = 0; t < MG_ST__COUNT; t++) {
            mg_buf_printf(&b, "%s'%s'", t > 0 ? ", " : "", mg_spend_tables[t]);
        }
        mg_buf_append_str(&b, ");");
        sql = mg_xstrdup(mg_buf_cstr(&b));
        mg_buf_free(&b);
    }
    return sql;
}

static int
mg_spend_col_bit(mg_spend_table_t t, const char *col)
{
    if (t == MG_ST_SPENDLOGS) {
        for (size_t i = 0; i < MG_SPEND_NLOG_COLS; i++) {
            if (strcmp(mg_spend_log_cols[i].name, col) == 0) {
                return (int) i;
            }
        }
        return -1;
    }
    if (mg_spend_is_daily(t)) {
        if (strcmp(col, mg_spend_daily_ent[t]) == 0) {
            return MG_DC_ENT;
        }
        for (int i = 0; i < MG_DC__COUNT; i++) {
            if (mg_spend_daily_cols[i] != NULL && strcmp(mg_spend_daily_cols[i], col) == 0) {
                return i;
            }
        }
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        if (mg_spend_id_cols[t][i] != NULL && strcmp(mg_spend_id_cols[t][i], col) == 0) {
            return i;
        }
    }
    return -1;
}

static bool
mg_spend_has(const mg_spend_cols_t *c, mg_spend_table_t t, int bit)
{
    return c->table[t] && (c->cols[t] & (1ULL << bit)) != 0;
}

int
mg_spend_sql_cols(PGresult *res, mg_spend_cols_t *cols, mg_err_t *err)
{
    memset(cols, 0, sizeof(*cols));
    if (res == NULL || PQnfields(res) != 2) {
        return mg_err_set(err, MG_ERR_INTERNAL, "the column list query returned no result");
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *tn = PQgetvalue(res, i, 0), *cn = PQgetvalue(res, i, 1);
        for (int t = 0; t < MG_ST__COUNT; t++) {
            if (strcmp(tn, mg_spend_tables[t]) != 0) {
                continue;
            }
            cols->table[t] = true;
            int bit = mg_spend_col_bit((mg_spend_table_t) t, cn);
            if (bit >= 0) {
                cols->cols[t] |= 1ULL << bit;
            }
        }
    }
    if (!cols->table[MG_ST_SPENDLOGS]) {
        return mg_err_set(err, MG_ERR_CONFIG, "table \"LiteLLM_SpendLogs\" does not exist (it "
                          "could not be created: does the database role have CREATE?)");
    }
    for (size_t i = 0; i < MG_SPEND_NLOG_COLS; i++) {
        if (mg_spend_log_cols[i].required && !mg_spend_has(cols, MG_ST_SPENDLOGS, (int) i)) {
            return mg_err_set(err, MG_ERR_CONFIG, "table \"LiteLLM_SpendLogs\" has no column "
                              "\"%s\": it is not LiteLLM's", mg_spend_log_cols[i].name);
        }
    }
    /* tables the statement cannot use are left out (never an error: LiteLLM's older
     * versions lack some) */
    for (int t = MG_ST_TOKEN; t <= MG_ST_TEAM_MEMBER; t++) {
        bool ok = mg_spend_has(cols, t, 0) && mg_spend_has(cols, t, 1) &&
                  (mg_spend_id_cols[t][2] == NULL || mg_spend_has(cols, t, 2));
        cols->table[t] = ok;
    }
    static const int need[] = {MG_DC_ID, MG_DC_ENT, MG_DC_DATE, MG_DC_API_KEY, MG_DC_MODEL,
                               MG_DC_PROVIDER, MG_DC_SPEND, MG_DC_REQS};
    for (int t = MG_ST_DAILY_USER; t <= MG_ST_DAILY_TAG; t++) {
        bool ok = cols->table[t];
        for (size_t k = 0; k < sizeof(need) / sizeof(need[0]) && ok; k++) {
            ok = mg_spend_has(cols, t, need[k]);
        }
        cols->table[t] = ok;
    }
    return MG_OK;
}

/* ---- step 2: the statement ---- */

static void
mg_spend_sql_logcols(mg_buf_t *b, const mg_spend_cols_t *c, const char *rid)
{
    bool first = true;
    mg_buf_append_str(b, " (");
    for (size_t i = 0; i < MG_SPEND_NLOG_COLS; i++) {
        if (mg_spend_has(c, MG_ST_SPENDLOGS, (int) i)) {
            mg_buf_printf(b, "%s%s", first ? "" : ", ", mg_spend_log_cols[i].col);
            first = false;
        }
    }
    mg_buf_append_str(b, ")\n    SELECT ");
    first = true;
    for (size_t i = 0; i < MG_SPEND_NLOG_COLS; i++) {
        if (mg_spend_has(c, MG_ST_SPENDLOGS, (int) i)) {
            const char *e = mg_spend_log_cols[i].expr;
            mg_buf_printf(b, "%s%s", first ? "" : ", ", strcmp(e, "#RID#") == 0 ? rid : e);
            first = false;
        }
    }
}

static void
mg_spend_sql_identity(mg_buf_t *b, const mg_spend_cols_t *c, mg_spend_table_t t,
                      const char *name, const char *field)
{
    if (!c->table[t]) {
        return;
    }
    const char *kc = mg_spend_id_cols[t][0];
    if (t == MG_ST_END_USER) {
        /* LiteLLM upserts end users: they need not exist beforehand */
        mg_buf_printf(b, ",\n%s AS (INSERT INTO %s AS d (user_id, spend)\n"
                         "    SELECT o.%s, sum(o.sp) FROM ok o WHERE o.%s <> '' GROUP BY o.%s\n"
                         "    ON CONFLICT (user_id) DO UPDATE SET spend = d.spend + EXCLUDED.spend"
                         "\n    RETURNING 1)",
                      name, mg_spend_tables_q[t], field, field, field);
        return;
    }
    if (t == MG_ST_TEAM_MEMBER) {
        mg_buf_printf(b, ",\n%s AS (UPDATE %s d SET spend = d.spend + a.s\n"
                         "    FROM (SELECT o.us, o.tm, sum(o.sp) AS s FROM ok o WHERE o.us <> '' "
                         "AND o.tm <> '' GROUP BY o.us, o.tm) a\n"
                         "    WHERE d.user_id = a.us AND d.team_id = a.tm RETURNING 1)",
                      name, mg_spend_tables_q[t]);
        return;
    }
    mg_buf_printf(b, ",\n%s AS (UPDATE %s d SET spend = d.spend + a.s\n"
                     "    FROM (SELECT o.%s AS k, sum(o.sp) AS s FROM ok o WHERE o.%s <> '' "
                     "GROUP BY o.%s) a\n"
                     "    WHERE d.%s = a.k RETURNING 1)",
                  name, mg_spend_tables_q[t], field, field, field, kc);
}

static void
mg_spend_sql_daily(mg_buf_t *b, const mg_spend_cols_t *c, mg_spend_table_t t, const char *p,
                   const char *ent, const char *from, const char *where)
{
    if (!c->table[t]) {
        return;
    }
    const char *T = mg_spend_tables_q[t];
    const char *E = mg_spend_daily_ent[t];
    mg_buf_printf(b, ",\n%s_a AS (SELECT %s AS ent, o.day, o.ak, o.mo, max(o.mg) AS mg, o.pr,\n"
                     "    sum(o.pt) AS pt, sum(o.ctk) AS ctk, sum(o.cr) AS cr, sum(o.cc) AS cc, "
                     "sum(o.sp) AS sp, count(*) AS n,\n"
                     "    count(*) FILTER (WHERE o.sts = 'success') AS okn\n"
                     "    FROM ok o%s WHERE %s GROUP BY 1, o.day, o.ak, o.mo, o.pr)",
                  p, ent, from, where);
    mg_buf_printf(b, ",\n%s_m AS (SELECT DISTINCT ON (a.ent, a.day, a.ak, a.mo, a.pr) d.id AS did, "
                     "a.* FROM %s_a a\n"
                     "    JOIN %s d ON d.\"%s\" IS NOT DISTINCT FROM a.ent AND d.date = a.day AND "
                     "d.api_key = a.ak AND d.model IS NOT DISTINCT FROM a.mo AND "
                     "d.custom_llm_provider IS NOT DISTINCT FROM a.pr",
                  p, p, T, E);
    if (mg_spend_has(c, t, MG_DC_MCP)) {
        mg_buf_append_str(b, " AND COALESCE(d.mcp_namespaced_tool_name, '') = ''");
    }
    if (mg_spend_has(c, t, MG_DC_ENDPOINT)) {
        mg_buf_append_str(b, " AND COALESCE(d.endpoint, '') = ''");
    }
    mg_buf_append_str(b, "\n    ORDER BY a.ent, a.day, a.ak, a.mo, a.pr, d.id)");
    /* update the one matching row */
    mg_buf_printf(b, ",\n%s_u AS (UPDATE %s d SET spend = d.spend + m.sp, "
                     "api_requests = d.api_requests + m.n",
                  p, T);
    static const struct {
        int bit;
        const char *col, *val;
    } adds[] = {
        {MG_DC_PT, "prompt_tokens", "m.pt"},
        {MG_DC_CT, "completion_tokens", "m.ctk"},
        {MG_DC_CR, "cache_read_input_tokens", "m.cr"},
        {MG_DC_CC, "cache_creation_input_tokens", "m.cc"},
        {MG_DC_OK, "successful_requests", "m.okn"},
        {MG_DC_FAIL, "failed_requests", "(m.n - m.okn)"},
    };
    for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
        if (mg_spend_has(c, t, adds[i].bit)) {
            mg_buf_printf(b, ", %s = d.%s + %s", adds[i].col, adds[i].col, adds[i].val);
        }
    }
    if (mg_spend_has(c, t, MG_DC_UPDATED)) {
        mg_buf_append_str(b, ", updated_at = now()");
    }
    mg_buf_printf(b, "\n    FROM %s_m m WHERE d.id = m.did RETURNING 1)", p);
    /* insert the keys no row matched */
    mg_buf_printf(b, ",\n%s_i AS (INSERT INTO %s (id, \"%s\", date, api_key, model, "
                     "custom_llm_provider, spend, api_requests",
                  p, T, E);
    static const struct {
        int bit;
        const char *col, *val;
    } ins[] = {
        {MG_DC_MODEL_GROUP, "model_group", "a.mg"},
        {MG_DC_MCP, "mcp_namespaced_tool_name", "''"},
        {MG_DC_ENDPOINT, "endpoint", "''"},
        {MG_DC_PT, "prompt_tokens", "a.pt"},
        {MG_DC_CT, "completion_tokens", "a.ctk"},
        {MG_DC_CR, "cache_read_input_tokens", "a.cr"},
        {MG_DC_CC, "cache_creation_input_tokens", "a.cc"},
        {MG_DC_OK, "successful_requests", "a.okn"},
        {MG_DC_FAIL, "failed_requests", "(a.n - a.okn)"},
        {MG_DC_UPDATED, "updated_at", "now()"},
    };
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        if (mg_spend_has(c, t, ins[i].bit)) {
            mg_buf_printf(b, ", %s", ins[i].col);
        }
    }
    mg_buf_append_str(b, ")\n    SELECT gen_random_uuid()::text, a.ent, a.day, a.ak, a.mo, a.pr, "
                         "a.sp, a.n");
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        if (mg_spend_has(c, t, ins[i].bit)) {
            mg_buf_printf(b, ", %s", ins[i].val);
        }
    }
    mg_buf_printf(b, " FROM %s_a a\n    WHERE NOT EXISTS (SELECT 1 FROM %s_m m WHERE m.ent IS NOT "
                     "DISTINCT FROM a.ent AND m.day = a.day AND m.ak = a.ak AND m.mo IS NOT "
                     "DISTINCT FROM a.mo AND m.pr IS NOT DISTINCT FROM a.pr)\n    RETURNING 1)",
                  p, p);
}

void
mg_spend_sql_batch(mg_buf_t *b, const mg_spend_cols_t *c, const char *rows_literal)
{
    mg_buf_printf(b,
                  "WITH r AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(\n"
                  "    uid text, rid text, ct text, ak text, sp double precision, tt bigint, "
                  "pt bigint, ctk bigint, cr bigint, cc bigint,\n"
                  "    st timestamp(3), et timestamp(3), cs timestamp(3), dur bigint, mo text, "
                  "mid text, mg text, pr text, ab text, us text,\n"
                  "    md jsonb, tg jsonb, tm text, og text, eu text, ip text, sid text, sts text, "
                  "rsp jsonb, psr jsonb, day text))",
                  rows_literal);
    mg_buf_printf(b, ",\nins AS (INSERT INTO %s", mg_spend_tables_q[MG_ST_SPENDLOGS]);
    mg_spend_sql_logcols(b, c, "x.rid");
    mg_buf_append_str(b, "\n    FROM r x ON CONFLICT (request_id) DO NOTHING RETURNING request_id)");
    /* not inserted and not ours from an earlier attempt: another request used that id */
    mg_buf_printf(b, ",\nclash AS (SELECT x.* FROM r x WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE "
                     "i.request_id = x.rid)\n"
                     "    AND NOT EXISTS (SELECT 1 FROM %s s WHERE s.request_id = x.rid AND "
                     "s.metadata->>'moongate_row_id' = x.uid))",
                  mg_spend_tables_q[MG_ST_SPENDLOGS]);
    mg_buf_printf(b, ",\nins2 AS (INSERT INTO %s", mg_spend_tables_q[MG_ST_SPENDLOGS]);
    mg_spend_sql_logcols(b, c, "x.rid || '_' || x.uid");
    mg_buf_append_str(b, "\n    FROM clash x ON CONFLICT (request_id) DO NOTHING RETURNING "
                         "request_id)");
    mg_buf_append_str(b, ",\nok AS (SELECT x.* FROM r x JOIN ins i ON i.request_id = x.rid\n"
                         "    UNION ALL SELECT x.* FROM clash x JOIN ins2 i ON i.request_id = "
                         "x.rid || '_' || x.uid)");
    mg_spend_sql_identity(b, c, MG_ST_TOKEN, "s_key", "ak");
    mg_spend_sql_identity(b, c, MG_ST_TEAM, "s_team", "tm");
    mg_spend_sql_identity(b, c, MG_ST_USER, "s_user", "us");
    mg_spend_sql_identity(b, c, MG_ST_END_USER, "s_eu", "eu");
    mg_spend_sql_identity(b, c, MG_ST_ORG, "s_org", "og");
    mg_spend_sql_identity(b, c, MG_ST_TEAM_MEMBER, "s_mem", NULL);
    mg_spend_sql_daily(b, c, MG_ST_DAILY_USER, "du", "NULLIF(o.us, '')", "", "true");
    mg_spend_sql_daily(b, c, MG_ST_DAILY_TEAM, "dt", "o.tm", "", "o.tm <> ''");
    mg_spend_sql_daily(b, c, MG_ST_DAILY_ORG, "dor", "o.og", "", "o.og <> ''");
    mg_spend_sql_daily(b, c, MG_ST_DAILY_END_USER, "de", "o.eu", "", "o.eu <> ''");
    mg_spend_sql_daily(b, c, MG_ST_DAILY_TAG, "dg", "tg.tag",
                       " CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN "
                       "jsonb_typeof(o.tg) = 'array' THEN o.tg ELSE '[]'::jsonb END) AS tg(tag)",
                       "tg.tag <> ''");
    mg_buf_append_str(b, "\nSELECT (SELECT count(*) FROM ok)::int, (SELECT count(*) FROM r)::int;\n"
                         "COMMIT;");
}

bool
mg_spend_sql_transient(const char *st)
{
    if (st == NULL || st[0] == '\0') {
        return true; /* no SQLSTATE: the connection, not the data */
    }
    return strncmp(st, "08", 2) == 0 || strncmp(st, "40", 2) == 0 || strncmp(st, "53", 2) == 0 ||
           strncmp(st, "57", 2) == 0 || strncmp(st, "58", 2) == 0 || strncmp(st, "25", 2) == 0 ||
           strncmp(st, "42", 2) == 0 || strncmp(st, "XX", 2) == 0 || strcmp(st, "55P03") == 0;
}

/* ---- JSON ---- */

void
mg_spend_json_str(mg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mg_buf_reserve(b, n + 2);
    mg_buf_append(b, "\"", 1);
    const unsigned char *p = (const unsigned char *) s, *end = p + n;
    while (p < end) {
        unsigned char ch = *p;
        if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
            const unsigned char *q = p;
            while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\') {
                q++;
            }
            mg_buf_append(b, p, (size_t) (q - p));
            p = q;
            continue;
        }
        if (ch < 0x80) {
            char e[7] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], 0};
            if (ch == '"' || ch == '\\') {
                char esc[2] = {'\\', (char) ch};
                mg_buf_append(b, esc, 2);
            } else if (ch == 0) {
                mg_buf_append_str(b, "\xef\xbf\xbd");
            } else if (ch == '\n') {
                mg_buf_append(b, "\\n", 2);
            } else if (ch == '\t') {
                mg_buf_append(b, "\\t", 2);
            } else if (ch == '\r') {
                mg_buf_append(b, "\\r", 2);
            } else {
                mg_buf_append(b, e, 6);
            }
            p++;
            continue;
        }
        /* UTF-8: a valid sequence goes through, anything else is U+FFFD */
        int len = ch >= 0xF0 && ch <= 0xF4 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC2 && ch <= 0xDF ? 2 : 0;
        bool ok = len > 0 && ch < 0xF5 && end - p >= len;
        for (int i = 1; ok && i < len; i++) {
            ok = (p[i] & 0xC0) == 0x80;
        }
        if (ok && len == 3) {
            ok = !(ch == 0xE0 && p[1] < 0xA0) && !(ch == 0xED && p[1] >= 0xA0);
        }
        if (ok && len == 4) {
            ok = !(ch == 0xF0 && p[1] < 0x90) && !(ch == 0xF4 && p[1] >= 0x90);
        }
        if (ok) {
            mg_buf_append(b, p, (size_t) len);
            p += len;
        } else {
            mg_buf_append_str(b, "\xef\xbf\xbd");
            p++;
        }
    }
    mg_buf_append(b, "\"", 1);
}

void
mg_spend_json_field(mg_buf_t *b, const char *s, size_t n, bool array, const char *fallback)
{
    if (n == 0) {
        mg_buf_append_str(b, fallback);
        return;
    }
    json_error_t je;
    json_t *v = json_loadb(s, n, 0, &je);
    if (v == NULL || (array ? !json_is_array(v) : !json_is_object(v))) {
        json_decref(v);
        mg_buf_append_str(b, fallback);
        return;
    }
    char *t = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    mg_buf_append_str(b, t != NULL ? t : fallback);
    free(t);
}

/* LiteLLM keeps long strings of stored prompts short: 35% of the head, 65% of the tail. */
#define MG_SPEND_MAX_STRING_IN_DB 2048

static json_t *
mg_spend_sanitize(json_t *v, int depth)
{
    if (depth > 64) {
        return json_null();
    }
    if (json_is_string(v) && json_string_length(v) > MG_SPEND_MAX_STRING_IN_DB) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        size_t head = MG_SPEND_MAX_STRING_IN_DB * 35 / 100;
        size_t tail = MG_SPEND_MAX_STRING_IN_DB * 65 / 100;
        while (head > 0 && ((unsigned char) s[head] & 0xC0) == 0x80) {
            head--;
        }
        size_t from = n - tail;
        while (from < n && ((unsigned char) s[from] & 0xC0) == 0x80) {
            from++;
        }
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_append(&b, s, head);
        mg_buf_printf(&b, "... (litellm_truncated skipped %zu chars) ...", from - head);
        mg_buf_append(&b, s + from, n - from);
        json_t *r = json_stringn(mg_buf_head(&b), mg_buf_len(&b));
        mg_buf_free(&b);
        return r != NULL ? r : json_string("");
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            json_object_set_new(o, k, mg_spend_sanitize(x, depth + 1));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            json_array_append_new(a, mg_spend_sanitize(x, depth + 1));
        }
        return a;
    }
    return json_incref(v);
}

/* A stored request body or response: sanitised JSON object text (malloc), or a fallback. */
static char *
mg_spend_tail_json(const char *s, size_t n, bool cut)
{
    if (n == 0) {
        return mg_xstrdup("{}");
    }
    json_t *v = cut ? NULL : json_loadb(s, n, 0, NULL);
    if (v == NULL || !json_is_object(v)) {
        json_decref(v);
        return mg_xstrdup(cut ? "{\"moongate_truncated\":true}" : "{}");
    }
    json_t *c = mg_spend_sanitize(v, 0);
    json_decref(v);
    char *t = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return t != NULL ? t : mg_xstrdup("{}");
}

static void
mg_spend_key_str(mg_buf_t *b, const char *k, const mg_spend_rec_t *rec, mg_spend_field_t f)
{
    size_t n;
    const char *s = mg_spend_rec_str(rec, f, &n);
    mg_buf_printf(b, ",\"%s\":", k);
    mg_spend_json_str(b, s, n);
}

static void
mg_spend_key_time(mg_buf_t *b, const char *k, int64_t us)
{
    char t[40];
    if (us <= 0) {
        mg_buf_printf(b, ",\"%s\":null", k);
        return;
    }
    mg_spend_fmt_time(us, t, sizeof(t));
    mg_buf_printf(b, ",\"%s\":\"%s\"", k, t);
}

static json_t *mg_spend_api_str(const mg_spend_rec_t *rec, mg_spend_field_t f);

/* A string field as JSON, or null when empty. */
static json_t *
mg_spend_str_or_null(const mg_spend_rec_t *rec, mg_spend_field_t f)
{
    size_t n;
    (void) mg_spend_rec_str(rec, f, &n);
    return n > 0 ? mg_spend_api_str(rec, f) : json_null();
}

/*
 * LiteLLM's SpendLogsMetadata: the keys the row's own fields give (the worker does not write
 * them, to keep JSON off the request path), then what the worker wrote (error_information,
 * the team alias, ...) over them.
 */
static json_t *
mg_spend_metadata_obj(const mg_spend_rec_t *rec)
{
    json_t *md = json_object();
    json_object_set_new(md, "user_api_key", mg_spend_str_or_null(rec, MG_SPEND_F_API_KEY));
    json_object_set_new(md, "user_api_key_alias", mg_spend_str_or_null(rec, MG_SPEND_F_KEY_ALIAS));
    json_object_set_new(md, "user_api_key_team_id", mg_spend_str_or_null(rec, MG_SPEND_F_TEAM_ID));
    json_object_set_new(md, "user_api_key_org_id", mg_spend_str_or_null(rec, MG_SPEND_F_ORG_ID));
    json_object_set_new(md, "user_api_key_user_id", mg_spend_str_or_null(rec, MG_SPEND_F_USER));
    json_object_set_new(md, "user_api_key_team_alias", json_null());
    json_object_set_new(md, "spend_logs_metadata", json_null());
    json_object_set_new(md, "requester_ip_address", mg_spend_str_or_null(rec, MG_SPEND_F_IP));
    json_object_set_new(md, "status",
                        json_string(rec->status == MG_SPEND_OK ? "success" : "failure"));
    json_object_set_new(md, "error_information", json_null());
    size_t n;
    const char *s = mg_spend_rec_str(rec, MG_SPEND_F_METADATA, &n);
    if (n > 0) {
        json_t *extra = json_loadb(s, n, 0, NULL);
        if (json_is_object(extra)) {
            json_object_update(md, extra);
        }
        json_decref(extra);
    }
    if (rec->flags & MG_SPEND_FLAG_META_CUT) {
        json_object_set_new(md, "moongate_truncated", json_true());
    }
    return md;
}

static void
mg_spend_metadata(mg_buf_t *b, const mg_spend_rec_t *rec)
{
    json_t *md = mg_spend_metadata_obj(rec);
    char *t = json_dumps(md, JSON_COMPACT);
    json_decref(md);
    mg_buf_append_str(b, t != NULL ? t : "{}");
    free(t);
}

static void
mg_spend_tags(mg_buf_t *b, const mg_spend_rec_t *rec)
{
    size_t n;
    const char *s = mg_spend_rec_str(rec, MG_SPEND_F_REQUEST_TAGS, &n);
    mg_spend_json_field(b, s, n, true, "[]");
}

void
mg_spend_sql_row(mg_buf_t *b, const mg_spend_rec_t *rec, const char *uid, bool store_prompts)
{
    static const char hex[] = "0123456789abcdef";
    char u[33];
    for (int i = 0; i < 16; i++) {
        u[2 * i] = hex[(unsigned char) uid[i] >> 4];
        u[2 * i + 1] = hex[(unsigned char) uid[i] & 15];
    }
    u[32] = '\0';
    char sp[40];
    snprintf(sp, sizeof(sp), "%.17g", rec->spend == rec->spend ? rec->spend : 0.0);
    int64_t cstart = rec->completion_start_us > 0 ? rec->completion_start_us : rec->end_us;
    int64_t dur = rec->end_us > rec->start_us ? (rec->end_us - rec->start_us) / 1000 : 0;
    char day[16];
    mg_spend_fmt_day(rec->start_us, day, sizeof(day));
    mg_buf_printf(b, "{\"uid\":\"%s\",\"sp\":%s,\"tt\":%" PRId64 ",\"pt\":%" PRId64
                     ",\"ctk\":%" PRId64 ",\"cr\":%" PRId64 ",\"cc\":%" PRId64 ",\"dur\":%" PRId64
                     ",\"sts\":\"%s\",\"day\":\"%s\"",
                  u, sp,
                  rec->total_tokens > 0 ? rec->total_tokens
                                        : rec->prompt_tokens + rec->completion_tokens,
                  rec->prompt_tokens, rec->completion_tokens, rec->cache_read_tokens,
                  rec->cache_creation_tokens, dur,
                  rec->status == MG_SPEND_OK ? "success" : "failure", day);
    mg_spend_key_time(b, "st", rec->start_us);
    mg_spend_key_time(b, "et", rec->end_us > 0 ? rec->end_us : rec->start_us);
    mg_spend_key_time(b, "cs", cstart);
    mg_spend_key_str(b, "rid", rec, MG_SPEND_F_REQUEST_ID);
    mg_spend_key_str(b, "ct", rec, MG_SPEND_F_CALL_TYPE);
    mg_spend_key_str(b, "ak", rec, MG_SPEND_F_API_KEY);
    mg_spend_key_str(b, "mo", rec, MG_SPEND_F_MODEL);
    mg_spend_key_str(b, "mid", rec, MG_SPEND_F_MODEL_ID);
    mg_spend_key_str(b, "mg", rec, MG_SPEND_F_MODEL_GROUP);
    mg_spend_key_str(b, "pr", rec, MG_SPEND_F_PROVIDER);
    mg_spend_key_str(b, "ab", rec, MG_SPEND_F_API_BASE);
    mg_spend_key_str(b, "us", rec, MG_SPEND_F_USER);
    mg_spend_key_str(b, "tm", rec, MG_SPEND_F_TEAM_ID);
    mg_spend_key_str(b, "og", rec, MG_SPEND_F_ORG_ID);
    mg_spend_key_str(b, "eu", rec, MG_SPEND_F_END_USER);
    mg_spend_key_str(b, "ip", rec, MG_SPEND_F_IP);
    mg_spend_key_str(b, "sid", rec, MG_SPEND_F_SESSION_ID);
    mg_buf_append_str(b, ",\"md\":");
    mg_spend_metadata(b, rec);
    mg_buf_append_str(b, ",\"tg\":");
    mg_spend_tags(b, rec);
    const char *tails = (const char *) (rec + 1) + rec->text_used;
    bool cut = (rec->flags & MG_SPEND_FLAG_TAIL_CUT) != 0;
    if (store_prompts) {
        char *req = mg_spend_tail_json(tails, rec->tail_len[0], cut);
        char *rsp = mg_spend_tail_json(tails + rec->tail_len[0], rec->tail_len[1], cut);
        mg_buf_printf(b, ",\"psr\":%s,\"rsp\":%s}", req, rsp);
        free(req);
        free(rsp);
    } else {
        mg_buf_append_str(b, ",\"psr\":{},\"rsp\":{}}");
    }
}

void
mg_spend_fmt_api_time(int64_t us, char *out, size_t len)
{
    char t[40];
    /* TIMESTAMP(3): what comes back from the database has milliseconds */
    mg_spend_fmt_time(us / 1000 * 1000, t, sizeof(t));
    snprintf(out, len, "%s+00:00", t);
}

static json_t *
mg_spend_api_str(const mg_spend_rec_t *rec, mg_spend_field_t f)
{
    size_t n;
    const char *s = mg_spend_rec_str(rec, f, &n);
    mg_buf_t b = MG_BUF_INIT;
    mg_spend_json_str(&b, s, n);
    json_t *v = json_loadb(mg_buf_head(&b), mg_buf_len(&b), JSON_DECODE_ANY, NULL);
    mg_buf_free(&b);
    return v != NULL ? v : json_string("");
}

static json_t *
mg_spend_api_time(int64_t us)
{
    if (us <= 0) {
        return json_null();
    }
    char t[48];
    mg_spend_fmt_api_time(us, t, sizeof(t));
    return json_string(t);
}

json_t *
mg_spend_row_api(const mg_spend_rec_t *rec, bool store_prompts)
{
    json_t *o = json_object();
    mg_buf_t b = MG_BUF_INIT;
    json_object_set_new(o, "request_id", mg_spend_api_str(rec, MG_SPEND_F_REQUEST_ID));
    json_object_set_new(o, "call_type", mg_spend_api_str(rec, MG_SPEND_F_CALL_TYPE));
    json_object_set_new(o, "api_key", mg_spend_api_str(rec, MG_SPEND_F_API_KEY));
    json_object_set_new(o, "spend", json_real(rec->spend == rec->spend ? rec->spend : 0.0));
    int64_t tt = rec->total_tokens > 0 ? rec->total_tokens
                                       : rec->prompt_tokens + rec->completion_tokens;
    json_object_set_new(o, "total_tokens", json_integer(tt));
    json_object_set_new(o, "prompt_tokens", json_integer(rec->prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(rec->completion_tokens));
    json_object_set_new(o, "startTime", mg_spend_api_time(rec->start_us));
    json_object_set_new(o, "endTime",
                        mg_spend_api_time(rec->end_us > 0 ? rec->end_us : rec->start_us));
    json_object_set_new(o, "request_duration_ms",
                        json_integer(rec->end_us > rec->start_us
                                         ? (rec->end_us - rec->start_us) / 1000 : 0));
    json_object_set_new(o, "completionStartTime",
                        mg_spend_api_time(rec->completion_start_us > 0 ? rec->completion_start_us
                                                                       : rec->end_us));
    json_object_set_new(o, "model", mg_spend_api_str(rec, MG_SPEND_F_MODEL));
    json_object_set_new(o, "model_id", mg_spend_api_str(rec, MG_SPEND_F_MODEL_ID));
    json_object_set_new(o, "model_group", mg_spend_api_str(rec, MG_SPEND_F_MODEL_GROUP));
    json_object_set_new(o, "custom_llm_provider", mg_spend_api_str(rec, MG_SPEND_F_PROVIDER));
    json_object_set_new(o, "api_base", mg_spend_api_str(rec, MG_SPEND_F_API_BASE));
    json_object_set_new(o, "user", mg_spend_api_str(rec, MG_SPEND_F_USER));
    json_object_set_new(o, "metadata", mg_spend_metadata_obj(rec));
    json_object_set_new(o, "cache_hit", json_string("False"));
    json_object_set_new(o, "cache_key", json_string("Cache OFF"));
    mg_spend_tags(&b, rec);
    json_t *tg = json_loadb(mg_buf_head(&b), mg_buf_len(&b), 0, NULL);
    json_object_set_new(o, "request_tags", tg != NULL ? tg : json_array());
    mg_buf_free(&b);
    json_object_set_new(o, "team_id", mg_spend_api_str(rec, MG_SPEND_F_TEAM_ID));
    json_object_set_new(o, "organization_id", mg_spend_api_str(rec, MG_SPEND_F_ORG_ID));
    json_object_set_new(o, "end_user", mg_spend_api_str(rec, MG_SPEND_F_END_USER));
    size_t n;
    (void) mg_spend_rec_str(rec, MG_SPEND_F_IP, &n);
    json_object_set_new(o, "requester_ip_address",
                        n > 0 ? mg_spend_api_str(rec, MG_SPEND_F_IP) : json_null());
    json_object_set_new(o, "messages", json_object());
    const char *tails = (const char *) (rec + 1) + rec->text_used;
    bool cut = (rec->flags & MG_SPEND_FLAG_TAIL_CUT) != 0;
    json_t *rsp = NULL, *psr = NULL;
    if (store_prompts) {
        char *t = mg_spend_tail_json(tails + rec->tail_len[0], rec->tail_len[1], cut);
        rsp = json_loads(t, 0, NULL);
        free(t);
        t = mg_spend_tail_json(tails, rec->tail_len[0], cut);
        psr = json_loads(t, 0, NULL);
        free(t);
    }
    json_object_set_new(o, "response", rsp != NULL ? rsp : json_object());
    (void) mg_spend_rec_str(rec, MG_SPEND_F_SESSION_ID, &n);
    json_object_set_new(o, "session_id",
                        n > 0 ? mg_spend_api_str(rec, MG_SPEND_F_SESSION_ID) : json_null());
    json_object_set_new(o, "status",
                        json_string(rec->status == MG_SPEND_OK ? "success" : "failure"));
    json_object_set_new(o, "mcp_namespaced_tool_name", json_null());
    json_object_set_new(o, "agent_id", json_null());
    json_object_set_new(o, "proxy_server_request", psr != NULL ? psr : json_object());
    return o;
}
