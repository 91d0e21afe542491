/*
 * mg_store_pg_litellm.c -- LiteLLM's tables in the PostgreSQL store (see mg_store_pg_litellm.h).
 *
 * Owns: nothing long-lived but the catalogue it fills (owned by its caller's struct).
 * Does not own: connections or I/O (mg_store_pg.c sends what is built here).
 *
 * The DDL below is LiteLLM's schema.prisma (litellm/proxy/schema.prisma) as Prisma's migrate
 * writes it: String -> TEXT, String[] -> TEXT[], Json -> JSONB, DateTime -> TIMESTAMP(3) (UTC),
 * Float -> DOUBLE PRECISION, Int -> INTEGER, BigInt -> BIGINT, Boolean -> BOOLEAN;
 * @default(now()) -> DEFAULT CURRENT_TIMESTAMP; @default(uuid()) and @updatedAt have no database
 * default (Prisma's client fills them); constraint and index names as Prisma names them.
 * Foreign keys are created only between two tables moongate itself created in the same run,
 * with LiteLLM's names and actions, so that a database moongate made behaves like one LiteLLM
 * made; foreign keys to tables moongate never creates (LiteLLM_ObjectPermissionTable,
 * LiteLLM_ProjectTable, LiteLLM_ModelTable) are left out: those columns are plain text there.
 */
#include "mg_store_pg_litellm.h"

#include "mg_store.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_util.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_PGL_ADMIN "default_user_id" /* LiteLLM's LITELLM_PROXY_ADMIN_NAME */

/* ---- schema ---- */

#define MG_PGL_TS "TIMESTAMP(3)"
#define MG_PGL_NOW "TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP"
#define MG_PGL_LIST "TEXT[] DEFAULT ARRAY[]::TEXT[]"

static const char mg_store_pgl_ddl_budget[] =
    "CREATE TABLE \"LiteLLM_BudgetTable\" (\n"
    "    \"budget_id\" TEXT NOT NULL,\n"
    "    \"max_budget\" DOUBLE PRECISION,\n"
    "    \"soft_budget\" DOUBLE PRECISION,\n"
    "    \"max_parallel_requests\" INTEGER,\n"
    "    \"tpm_limit\" BIGINT,\n"
    "    \"rpm_limit\" BIGINT,\n"
    "    \"model_max_budget\" JSONB,\n"
    "    \"budget_duration\" TEXT,\n"
    "    \"budget_reset_at\" " MG_PGL_TS ",\n"
    "    \"allowed_models\" " MG_PGL_LIST ",\n"
    "    \"created_at\" " MG_PGL_NOW ",\n"
    "    \"created_by\" TEXT NOT NULL,\n"
    "    \"updated_at\" " MG_PGL_NOW ",\n"
    "    \"updated_by\" TEXT NOT NULL,\n"
    "    CONSTRAINT \"LiteLLM_BudgetTable_pkey\" PRIMARY KEY (\"budget_id\"));\n";

static const char mg_store_pgl_ddl_org[] =
    "CREATE TABLE \"LiteLLM_OrganizationTable\" (\n"
    "    \"organization_id\" TEXT NOT NULL,\n"
    "    \"organization_alias\" TEXT NOT NULL,\n"
    "    \"budget_id\" TEXT NOT NULL,\n"
    "    \"metadata\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"models\" TEXT[],\n"
    "    \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"
    "    \"model_spend\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"object_permission_id\" TEXT,\n"
    "    \"created_at\" " MG_PGL_NOW ",\n"
    "    \"created_by\" TEXT NOT NULL,\n"
    "    \"updated_at\" " MG_PGL_NOW ",\n"
    "    \"updated_by\" TEXT NOT NULL,\n"
    "    CONSTRAINT \"LiteLLM_OrganizationTable_pkey\" PRIMARY KEY (\"organization_id\"));\n";

static const char mg_store_pgl_ddl_team[] =
    "CREATE TABLE \"LiteLLM_TeamTable\" (\n"
    "    \"team_id\" TEXT NOT NULL,\n"
    "    \"team_alias\" TEXT,\n"
    "    \"organization_id\" TEXT,\n"
    "    \"object_permission_id\" TEXT,\n"
    "    \"admins\" TEXT[],\n"
    "    \"members\" TEXT[],\n"
    "    \"members_with_roles\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"metadata\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"max_budget\" DOUBLE PRECISION,\n"
    "    \"soft_budget\" DOUBLE PRECISION,\n"
    "    \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"
    "    \"models\" TEXT[],\n"
    "    \"max_parallel_requests\" INTEGER,\n"
    "    \"tpm_limit\" BIGINT,\n"
    "    \"rpm_limit\" BIGINT,\n"
    "    \"budget_duration\" TEXT,\n"
    "    \"budget_reset_at\" " MG_PGL_TS ",\n"
    "    \"blocked\" BOOLEAN NOT NULL DEFAULT false,\n"
    "    \"created_at\" " MG_PGL_NOW ",\n"
    "    \"updated_at\" " MG_PGL_NOW ",\n"
    "    \"model_spend\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"model_max_budget\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"router_settings\" JSONB DEFAULT '{}',\n"
    "    \"team_member_permissions\" " MG_PGL_LIST ",\n"
    "    \"access_group_ids\" " MG_PGL_LIST ",\n"
    "    \"policies\" " MG_PGL_LIST ",\n"
    "    \"default_team_member_models\" " MG_PGL_LIST ",\n"
    "    \"budget_limits\" JSONB,\n"
    "    \"model_id\" INTEGER,\n"
    "    \"allow_team_guardrail_config\" BOOLEAN NOT NULL DEFAULT false,\n"
    "    CONSTRAINT \"LiteLLM_TeamTable_pkey\" PRIMARY KEY (\"team_id\"));\n"
    "CREATE UNIQUE INDEX \"LiteLLM_TeamTable_model_id_key\" "
    "ON \"LiteLLM_TeamTable\"(\"model_id\");\n"
    "CREATE INDEX \"LiteLLM_TeamTable_organization_id_idx\" "
    "ON \"LiteLLM_TeamTable\"(\"organization_id\");\n"
    "CREATE INDEX \"LiteLLM_TeamTable_team_alias_idx\" ON \"LiteLLM_TeamTable\"(\"team_alias\");\n"
    "CREATE INDEX \"LiteLLM_TeamTable_created_at_idx\" ON \"LiteLLM_TeamTable\"(\"created_at\");\n";

static const char mg_store_pgl_ddl_user[] =
    "CREATE TABLE \"LiteLLM_UserTable\" (\n"
    "    \"user_id\" TEXT NOT NULL,\n"
    "    \"user_alias\" TEXT,\n"
    "    \"team_id\" TEXT,\n"
    "    \"sso_user_id\" TEXT,\n"
    "    \"organization_id\" TEXT,\n"
    "    \"object_permission_id\" TEXT,\n"
    "    \"password\" TEXT,\n"
    "    \"teams\" " MG_PGL_LIST ",\n"
    "    \"user_role\" TEXT,\n"
    "    \"max_budget\" DOUBLE PRECISION,\n"
    "    \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"
    "    \"user_email\" TEXT,\n"
    "    \"models\" TEXT[],\n"
    "    \"metadata\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"max_parallel_requests\" INTEGER,\n"
    "    \"tpm_limit\" BIGINT,\n"
    "    \"rpm_limit\" BIGINT,\n"
    "    \"budget_duration\" TEXT,\n"
    "    \"budget_reset_at\" " MG_PGL_TS ",\n"
    "    \"allowed_cache_controls\" " MG_PGL_LIST ",\n"
    "    \"policies\" " MG_PGL_LIST ",\n"
    "    \"model_spend\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"model_max_budget\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"created_at\" " MG_PGL_TS " DEFAULT CURRENT_TIMESTAMP,\n"
    "    \"updated_at\" " MG_PGL_TS " DEFAULT CURRENT_TIMESTAMP,\n"
    "    CONSTRAINT \"LiteLLM_UserTable_pkey\" PRIMARY KEY (\"user_id\"));\n"
    "CREATE UNIQUE INDEX \"LiteLLM_UserTable_sso_user_id_key\" "
    "ON \"LiteLLM_UserTable\"(\"sso_user_id\");\n";

static const char mg_store_pgl_ddl_key[] =
    "CREATE TABLE \"LiteLLM_VerificationToken\" (\n"
    "    \"token\" TEXT NOT NULL,\n"
    "    \"key_name\" TEXT,\n"
    "    \"key_alias\" TEXT,\n"
    "    \"soft_budget_cooldown\" BOOLEAN NOT NULL DEFAULT false,\n"
    "    \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"
    "    \"expires\" " MG_PGL_TS ",\n"
    "    \"models\" TEXT[],\n"
    "    \"aliases\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"config\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"router_settings\" JSONB DEFAULT '{}',\n"
    "    \"user_id\" TEXT,\n"
    "    \"team_id\" TEXT,\n"
    "    \"agent_id\" TEXT,\n"
    "    \"project_id\" TEXT,\n"
    "    \"permissions\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"max_parallel_requests\" INTEGER,\n"
    "    \"metadata\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"blocked\" BOOLEAN,\n"
    "    \"tpm_limit\" BIGINT,\n"
    "    \"rpm_limit\" BIGINT,\n"
    "    \"max_budget\" DOUBLE PRECISION,\n"
    "    \"budget_duration\" TEXT,\n"
    "    \"budget_reset_at\" " MG_PGL_TS ",\n"
    "    \"allowed_cache_controls\" " MG_PGL_LIST ",\n"
    "    \"allowed_routes\" " MG_PGL_LIST ",\n"
    "    \"policies\" " MG_PGL_LIST ",\n"
    "    \"access_group_ids\" " MG_PGL_LIST ",\n"
    "    \"model_spend\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"model_max_budget\" JSONB NOT NULL DEFAULT '{}',\n"
    "    \"budget_id\" TEXT,\n"
    "    \"organization_id\" TEXT,\n"
    "    \"object_permission_id\" TEXT,\n"
    "    \"created_at\" " MG_PGL_TS " DEFAULT CURRENT_TIMESTAMP,\n"
    "    \"created_by\" TEXT,\n"
    "    \"updated_at\" " MG_PGL_TS " DEFAULT CURRENT_TIMESTAMP,\n"
    "    \"updated_by\" TEXT,\n"
    "    \"last_active\" " MG_PGL_TS ",\n"
    "    \"rotation_count\" INTEGER DEFAULT 0,\n"
    "    \"auto_rotate\" BOOLEAN DEFAULT false,\n"
    "    \"rotation_interval\" TEXT,\n"
    "    \"last_rotation_at\" " MG_PGL_TS ",\n"
    "    \"key_rotation_at\" " MG_PGL_TS ",\n"
    "    \"budget_limits\" JSONB,\n"
    "    CONSTRAINT \"LiteLLM_VerificationToken_pkey\" PRIMARY KEY (\"token\"));\n"
    "CREATE INDEX \"LiteLLM_VerificationToken_user_id_team_id_idx\" "
    "ON \"LiteLLM_VerificationToken\"(\"user_id\", \"team_id\");\n"
    "CREATE INDEX \"LiteLLM_VerificationToken_team_id_idx\" "
    "ON \"LiteLLM_VerificationToken\"(\"team_id\");\n"
    "CREATE INDEX \"LiteLLM_VerificationToken_budget_reset_at_expires_idx\" "
    "ON \"LiteLLM_VerificationToken\"(\"budget_reset_at\", \"expires\");\n";

static const char mg_store_pgl_ddl_end_user[] =
    "CREATE TABLE \"LiteLLM_EndUserTable\" (\n"
    "    \"user_id\" TEXT NOT NULL,\n"
    "    \"alias\" TEXT,\n"
    "    \"spend\" DOUBLE PRECISION NOT NULL DEFAULT 0.0,\n"
    "    \"allowed_model_region\" TEXT,\n"
    "    \"default_model\" TEXT,\n"
    "    \"budget_id\" TEXT,\n"
    "    \"object_permission_id\" TEXT,\n"
    "    \"blocked\" BOOLEAN NOT NULL DEFAULT false,\n"
    "    CONSTRAINT \"LiteLLM_EndUserTable_pkey\" PRIMARY KEY (\"user_id\"));\n";

static const char mg_store_pgl_ddl_model[] =
    "CREATE TABLE \"LiteLLM_ProxyModelTable\" (\n"
    "    \"model_id\" TEXT NOT NULL,\n"
    "    \"model_name\" TEXT NOT NULL,\n"
    "    \"litellm_params\" JSONB NOT NULL,\n"
    "    \"model_info\" JSONB,\n"
    "    \"blocked\" BOOLEAN NOT NULL DEFAULT false,\n"
    "    \"created_at\" " MG_PGL_NOW ",\n"
    "    \"created_by\" TEXT NOT NULL,\n"
    "    \"updated_at\" " MG_PGL_NOW ",\n"
    "    \"updated_by\" TEXT NOT NULL,\n"
    "    CONSTRAINT \"LiteLLM_ProxyModelTable_pkey\" PRIMARY KEY (\"model_id\"));\n";

#define MG_PGL_FK(table, col, ref, refcol, action)                                                \
    "ALTER TABLE \"" table "\" ADD CONSTRAINT \"" table "_" col "_fkey\" FOREIGN KEY (\"" col    \
    "\") REFERENCES \"" ref "\"(\"" refcol "\") ON DELETE " action " ON UPDATE CASCADE;\n"

/* In creation order: a table's foreign keys point only at tables created before it. */
static const struct {
    const char *rel;
    const char *var;            /* the DO block's "made it" flag */
    const char *ddl;
    const char *fk[2][2];       /* {flag of the referenced table, ALTER TABLE} */
} mg_store_pgl_creates[] = {
    {"LiteLLM_BudgetTable", "made_budget", mg_store_pgl_ddl_budget, {{NULL, NULL}, {NULL, NULL}}},
    {"LiteLLM_OrganizationTable", "made_org", mg_store_pgl_ddl_org,
     {{"made_budget", MG_PGL_FK("LiteLLM_OrganizationTable", "budget_id", "LiteLLM_BudgetTable",
                                "budget_id", "RESTRICT")},
      {NULL, NULL}}},
    {"LiteLLM_TeamTable", "made_team", mg_store_pgl_ddl_team,
     {{"made_org", MG_PGL_FK("LiteLLM_TeamTable", "organization_id", "LiteLLM_OrganizationTable",
                             "organization_id", "SET NULL")},
      {NULL, NULL}}},
    {"LiteLLM_UserTable", "made_user", mg_store_pgl_ddl_user,
     {{"made_org", MG_PGL_FK("LiteLLM_UserTable", "organization_id", "LiteLLM_OrganizationTable",
                             "organization_id", "SET NULL")},
      {NULL, NULL}}},
    {"LiteLLM_VerificationToken", "made_key", mg_store_pgl_ddl_key,
     {{"made_budget", MG_PGL_FK("LiteLLM_VerificationToken", "budget_id", "LiteLLM_BudgetTable",
                                "budget_id", "SET NULL")},
      {"made_org", MG_PGL_FK("LiteLLM_VerificationToken", "organization_id",
                             "LiteLLM_OrganizationTable", "organization_id", "SET NULL")}}},
    {"LiteLLM_EndUserTable", "made_end_user", mg_store_pgl_ddl_end_user,
     {{"made_budget", MG_PGL_FK("LiteLLM_EndUserTable", "budget_id", "LiteLLM_BudgetTable",
                                "budget_id", "SET NULL")},
      {NULL, NULL}}},
    {"LiteLLM_ProxyModelTable", "made_model", mg_store_pgl_ddl_model, {{NULL, NULL}, {NULL, NULL}}},
};

char *
mg_store_pgl_schema_sql(void)
{
    mg_buf_t b = MG_BUF_INIT;
    size_t n = sizeof(mg_store_pgl_creates) / sizeof(mg_store_pgl_creates[0]);
    mg_buf_append_str(&b, "DO $mgl$\nDECLARE\n");
    for (size_t i = 0; i < n; i++) {
        mg_buf_printf(&b, "    %s boolean := false;\n", mg_store_pgl_creates[i].var);
    }
    mg_buf_append_str(&b, "BEGIN\n");
    for (size_t i = 0; i < n; i++) {
        mg_buf_printf(&b, "IF to_regclass('\"%s\"') IS NULL THEN\n%s", mg_store_pgl_creates[i].rel,
                      mg_store_pgl_creates[i].ddl);
        for (int f = 0; f < 2; f++) {
            if (mg_store_pgl_creates[i].fk[f][0] != NULL) {
                mg_buf_printf(&b, "IF %s THEN\n%sEND IF;\n", mg_store_pgl_creates[i].fk[f][0],
                              mg_store_pgl_creates[i].fk[f][1]);
            }
        }
        mg_buf_printf(&b, "%s := true;\nEND IF;\n", mg_store_pgl_creates[i].var);
    }
    mg_buf_append_str(&b, "END\n$mgl$;\n");
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

/*
 * The catalogue: per table its relation (as search_path resolves it), its columns in order
 * with their types, and the single-column RESTRICT / NO ACTION foreign keys that point at it
 * from tables outside ours.
 */
const char mg_store_pgl_catalog_sql[] =
    "WITH ours AS (\n"
    "    SELECT n.name, to_regclass(format('%I', n.name)) AS rel FROM unnest(ARRAY[\n"
    "        'LiteLLM_VerificationToken', 'LiteLLM_TeamTable', 'LiteLLM_UserTable',\n"
    "        'LiteLLM_EndUserTable', 'LiteLLM_BudgetTable', 'LiteLLM_OrganizationTable',\n"
    "        'LiteLLM_ProxyModelTable']) n(name))\n"
    "SELECT json_object_agg(o.name, CASE WHEN o.rel IS NULL THEN NULL ELSE json_build_object(\n"
    "    'rel', o.rel::text,\n"
    "    'cols', (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, "
    "a.atttypmod)) ORDER BY a.attnum)\n"
    "             FROM pg_attribute a WHERE a.attrelid = o.rel AND a.attnum > 0\n"
    "             AND NOT a.attisdropped),\n"
    "    'deps', COALESCE((SELECT json_agg(json_build_array(k.conrelid::regclass::text,\n"
    "                 quote_ident(ra.attname), quote_ident(pa.attname)) ORDER BY k.conname)\n"
    "             FROM pg_constraint k\n"
    "             JOIN pg_attribute ra ON ra.attrelid = k.conrelid AND ra.attnum = k.conkey[1]\n"
    "             JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]\n"
    "             WHERE k.contype = 'f' AND k.confrelid = o.rel AND k.confdeltype IN ('a', 'r')\n"
    "               AND cardinality(k.conkey) = 1\n"
    "               AND k.conrelid NOT IN (SELECT x.rel::oid FROM ours x WHERE x.rel IS NOT NULL)"
    "), '[]'::json)) END)\n"
    "FROM ours o";

/* ---- the catalogue ---- */

static const struct {
    const char *name;
    const char *relname;
    const char *pk;
} mg_store_pgl_tables[MG_STORE_PGL_NTABLES] = {
    {"key", "LiteLLM_VerificationToken", "token"},
    {"team", "LiteLLM_TeamTable", "team_id"},
    {"user", "LiteLLM_UserTable", "user_id"},
    {"end_user", "LiteLLM_EndUserTable", "user_id"},
    {"budget", "LiteLLM_BudgetTable", "budget_id"},
    {"org", "LiteLLM_OrganizationTable", "organization_id"},
    {"model", "LiteLLM_ProxyModelTable", "model_id"},
};

/* Replacing a row (ident_put over an existing one) keeps these when the row does not name them:
 * history, not rights. */
static const char *const mg_store_pgl_kept[] = {"created_at", "created_by", "last_active", NULL};
/* ... and these always: the spend pipeline's counters, which it adds to without a version bump,
 * so a row copied from a snapshot would set them back (ident_patch sets them on purpose). */
static const char *const mg_store_pgl_counters[] = {"spend", "model_spend", NULL};

void
mg_store_pgl_cat_init(mg_store_pgl_cat_t *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < MG_STORE_PGL_NTABLES; i++) {
        c->t[i].name = mg_store_pgl_tables[i].name;
        c->t[i].relname = mg_store_pgl_tables[i].relname;
        c->t[i].pk = mg_store_pgl_tables[i].pk;
    }
}

void
mg_store_pgl_cat_free(mg_store_pgl_cat_t *c)
{
    for (int i = 0; i < MG_STORE_PGL_NTABLES; i++) {
        mg_store_pgl_table_t *t = &c->t[i];
        for (int k = 0; k < t->ncols; k++) {
            free(t->cols[k].name);
            free(t->cols[k].type);
        }
        for (int k = 0; k < t->ndeps; k++) {
            free(t->deps[k].rel);
            free(t->deps[k].col);
            free(t->deps[k].refcol);
        }
        free(t->cols);
        free(t->deps);
        free(t->rel);
    }
    mg_store_pgl_cat_init(c);
}

static bool
mg_store_pgl_in(const char *s, const char *const *list)
{
    for (int i = 0; list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

int
mg_store_pgl_cat_load(mg_store_pgl_cat_t *c, const char *json_text, mg_err_t *err)
{
    json_error_t je;
    json_t *root = json_loads(json_text != NULL ? json_text : "", 0, &je);
    mg_store_pgl_cat_free(c);
    if (!json_is_object(root)) {
        json_decref(root);
        return mg_err_set(err, MG_ERR_INTERNAL, "reading LiteLLM's tables from the catalogue: "
                          "unexpected answer (%s)", je.text);
    }
    int rc = MG_OK;
    for (int i = 0; i < MG_STORE_PGL_NTABLES && rc == MG_OK; i++) {
        mg_store_pgl_table_t *t = &c->t[i];
        json_t *d = json_object_get(root, t->relname);
        json_t *cols = json_object_get(d, "cols");
        json_t *deps = json_object_get(d, "deps");
        const char *rel = json_string_value(json_object_get(d, "rel"));
        if (rel == NULL || !json_is_array(cols) || !json_is_array(deps)) {
            rc = mg_err_set(err, MG_ERR_INTERNAL, "table \"%s\" is missing (it is created when "
                            "absent: is it in another schema than search_path?)", t->relname);
            break;
        }
        t->rel = mg_xstrdup(rel);
        t->cols = mg_xcalloc(json_array_size(cols) + 1, sizeof(*t->cols));
        size_t k;
        json_t *v;
        json_array_foreach(cols, k, v) {
            const char *name = json_string_value(json_array_get(v, 0));
            const char *type = json_string_value(json_array_get(v, 1));
            if (name == NULL || type == NULL) {
                continue;
            }
            mg_store_pgl_col_t *col = &t->cols[t->ncols++];
            col->name = mg_xstrdup(name);
            col->type = mg_xstrdup(type);
            col->ts = strncmp(type, "timestamp", 9) == 0 && strstr(type, "without time zone");
            col->kept = mg_store_pgl_in(name, mg_store_pgl_kept);
            col->counter = mg_store_pgl_in(name, mg_store_pgl_counters);
        }
        t->deps = mg_xcalloc(json_array_size(deps) + 1, sizeof(*t->deps));
        json_array_foreach(deps, k, v) {
            const char *a = json_string_value(json_array_get(v, 0));
            const char *b = json_string_value(json_array_get(v, 1));
            const char *r = json_string_value(json_array_get(v, 2));
            if (a == NULL || b == NULL || r == NULL) {
                continue;
            }
            mg_store_pgl_dep_t *dep = &t->deps[t->ndeps++];
            dep->rel = mg_xstrdup(a);
            dep->col = mg_xstrdup(b);
            dep->refcol = mg_xstrdup(r);
        }
        bool has_pk = false;
        for (int j = 0; j < t->ncols; j++) {
            has_pk = has_pk || strcmp(t->cols[j].name, t->pk) == 0;
        }
        if (!has_pk) {
            rc = mg_err_set(err, MG_ERR_INTERNAL, "table \"%s\" has no column \"%s\"", t->relname,
                            t->pk);
        }
    }
    json_decref(root);
    if (rc != MG_OK) {
        mg_store_pgl_cat_free(c);
        return rc;
    }
    c->loaded = true;
    return MG_OK;
}

const mg_store_pgl_table_t *
mg_store_pgl_table(const mg_store_pgl_cat_t *c, const char *name)
{
    for (int i = 0; name != NULL && i < MG_STORE_PGL_NTABLES; i++) {
        if (strcmp(c->t[i].name, name) == 0) {
            return &c->t[i];
        }
    }
    return NULL;
}

static const mg_store_pgl_col_t *
mg_store_pgl_col(const mg_store_pgl_table_t *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++) {
        if (strcmp(t->cols[i].name, name) == 0) {
            return &t->cols[i];
        }
    }
    return NULL;
}

void
mg_store_pgl_fix_row(const mg_store_pgl_table_t *t, json_t *row)
{
    for (int i = 0; t != NULL && i < t->ncols; i++) {
        if (!t->cols[i].ts) {
            continue;
        }
        json_t *v = json_object_get(row, t->cols[i].name);
        const char *s = json_string_value(v);
        const char *tp = s != NULL ? strchr(s, 'T') : NULL;
        if (tp == NULL || strpbrk(tp, "+-Zz") != NULL) {
            continue;
        }
        char out[64];
        snprintf(out, sizeof(out), "%s+00:00", s);
        json_object_set_new(row, t->cols[i].name, json_string(out));
    }
}

/* ---- SQL text helpers ---- */

static void
mg_store_pgl_ident(mg_buf_t *b, const char *s)
{
    mg_buf_append_str(b, "\"");
    for (const char *p = s; *p != '\0'; p++) {
        mg_buf_append(b, p, 1);
        if (*p == '"') {
            mg_buf_append(b, p, 1);
        }
    }
    mg_buf_append_str(b, "\"");
}

/* A string literal (the session sets standard_conforming_strings = on). */
static void
mg_store_pgl_lit(mg_buf_t *b, const char *s)
{
    mg_buf_append_str(b, "'");
    for (const char *p = s; *p != '\0'; p++) {
        mg_buf_append(b, p, 1);
        if (*p == '\'') {
            mg_buf_append(b, p, 1);
        }
    }
    mg_buf_append_str(b, "'");
}

/* The SQL value of column col from the JSON in s.j / the populated record r. */
static void
mg_store_pgl_value(mg_buf_t *b, const mg_store_pgl_col_t *col)
{
    if (col->ts) {
        /* timestamp input ignores a UTC offset: go through timestamptz (session zone UTC) */
        mg_buf_append_str(b, "((s.j->>");
        mg_store_pgl_lit(b, col->name);
        mg_buf_printf(b, ")::timestamptz AT TIME ZONE 'UTC')::%s", col->type);
    } else {
        mg_buf_append_str(b, "r.");
        mg_store_pgl_ident(b, col->name);
    }
}

/* "s AS (...), r AS (...)": the JSON and the record jsonb_populate_record() makes of it. */
static void
mg_store_pgl_source(mg_buf_t *b, const mg_store_pgl_table_t *t, json_t *vals)
{
    mg_buf_append_str(b, "s AS (SELECT $2::jsonb AS j),\nr AS (SELECT x.* FROM s, "
                         "jsonb_populate_record(NULL::");
    mg_buf_append_str(b, t->rel);
    mg_buf_append_str(b, ", s.j");
    bool any = false;
    for (int i = 0; i < t->ncols; i++) {
        if (t->cols[i].ts && json_object_get(vals, t->cols[i].name) != NULL) {
            mg_buf_append_str(b, any ? ", " : " - ARRAY[");
            mg_store_pgl_lit(b, t->cols[i].name);
            any = true;
        }
    }
    mg_buf_append_str(b, any ? "]::text[]) x),\n" : ") x),\n");
}

static const char *
mg_store_pgl_str(json_t *m, const char *key)
{
    return json_string_value(json_object_get(m, key));
}

/*
 * Checks one JSON key against the table: returns its column, NULL to skip it silently (the id
 * column, and created_at / updated_at bookkeeping the journal adds to rows of tables that have
 * no such column), or NULL with err set (refused).
 */
static const mg_store_pgl_col_t *
mg_store_pgl_check_key(const mg_store_pgl_table_t *t, const char *op, const char *id,
                       const char *k, json_t *v, bool *skip, mg_err_t *err)
{
    *skip = false;
    if (strcmp(k, t->pk) == 0) {
        if (json_is_string(v) && strcmp(json_string_value(v), id) != 0) {
            mg_err_set(err, MG_ERR_BAD_REQUEST, "%s of %s %s: the id column \"%s\" cannot be "
                       "changed", op, t->name, id, t->pk);
            return NULL;
        }
        *skip = true;
        return NULL;
    }
    const mg_store_pgl_col_t *col = mg_store_pgl_col(t, k);
    if (col == NULL && (strcmp(k, "created_at") == 0 || strcmp(k, "updated_at") == 0)) {
        *skip = true;
        return NULL;
    }
    if (col == NULL) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s of %s %s: %s has no column \"%s\"", op, t->name,
                   id, t->relname, k);
        return NULL;
    }
    if (strcmp(k, "updated_at") == 0) {
        *skip = true; /* always now(), as in the journal */
        return NULL;
    }
    return col;
}

static void
mg_store_pgl_tail(mg_buf_t *b, const char *bump_sql, const char *ev_fmt, const char *op,
                  const char *detail, const char *third)
{
    mg_buf_printf(b, bump_sql, "EXISTS (SELECT 1 FROM ch)");
    mg_buf_append_str(b, ",\n");
    mg_buf_printf(b, ev_fmt, op, detail);
    mg_buf_printf(b, "SELECT (SELECT count(*) FROM ch)::int, (SELECT version FROM bump), %s",
                  third);
}

static int
mg_store_pgl_build_put(const mg_store_pgl_table_t *t, json_t *m, const char *id,
                       const char *bump_sql, const char *ev_fmt, mg_buf_t *b, json_t *vals,
                       mg_err_t *err)
{
    json_t *row = json_object_get(m, "row");
    if (row != NULL && !json_is_null(row) && !json_is_object(row)) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "ident_put of %s %s: \"row\" must be an "
                          "object", t->name, id);
    }
    bool create = json_is_true(json_object_get(m, "create"));
    bool *given = mg_xcalloc((size_t) t->ncols + 1, sizeof(bool));
    const char *k;
    json_t *v;
    json_object_foreach(row, k, v) {
        bool skip;
        const mg_store_pgl_col_t *col =
            mg_store_pgl_check_key(t, "ident_put", id, k, v, &skip, err);
        if (col == NULL && !skip) {
            free(given);
            return MG_ERROR;
        }
        if (col != NULL) {
            given[col - t->cols] = true;
            json_object_set(vals, k, v);
        }
    }
    mg_buf_append_str(b, "WITH ");
    mg_store_pgl_source(b, t, vals);
    mg_buf_append_str(b, "ch AS (\n    INSERT INTO ");
    mg_buf_append_str(b, t->rel);
    mg_buf_append_str(b, " AS t (");
    mg_store_pgl_ident(b, t->pk);
    mg_buf_t sel = MG_BUF_INIT;
    mg_buf_append_str(&sel, "$1");
    for (int i = 0; i < t->ncols; i++) {
        const mg_store_pgl_col_t *col = &t->cols[i];
        const char *auto_val = NULL;
        if (!given[i] && (strcmp(col->name, "created_by") == 0 ||
                          strcmp(col->name, "updated_by") == 0)) {
            auto_val = "'" MG_PGL_ADMIN "'"; /* NOT NULL in several tables; LiteLLM's default */
        }
        if (strcmp(col->name, "updated_at") == 0) {
            auto_val = "now()";
        }
        if (!given[i] && auto_val == NULL) {
            continue;
        }
        mg_buf_append_str(b, ", ");
        mg_store_pgl_ident(b, col->name);
        mg_buf_append_str(&sel, ", ");
        if (auto_val != NULL) {
            mg_buf_append_str(&sel, auto_val);
        } else {
            mg_store_pgl_value(&sel, col);
        }
    }
    mg_buf_printf(b, ")\n    SELECT %s FROM s, r\n    ON CONFLICT (", mg_buf_cstr(&sel));
    mg_buf_free(&sel);
    mg_store_pgl_ident(b, t->pk);
    if (create) {
        mg_buf_append_str(b, ") DO NOTHING\n");
    } else {
        /* a replacement: what the row does not name goes back to its default, except history;
         * spend stays as the pipeline left it, whatever the row says */
        mg_buf_append_str(b, ") DO UPDATE SET ");
        bool first = true;
        for (int i = 0; i < t->ncols; i++) {
            const mg_store_pgl_col_t *col = &t->cols[i];
            if (strcmp(col->name, t->pk) == 0 || (!given[i] && col->kept) || col->counter) {
                continue;
            }
            mg_buf_append_str(b, first ? "" : ", ");
            mg_store_pgl_ident(b, col->name);
            mg_buf_append_str(b, " = EXCLUDED.");
            mg_store_pgl_ident(b, col->name);
            first = false;
        }
        if (first) {
            mg_store_pgl_ident(b, t->pk);
            mg_buf_append_str(b, " = EXCLUDED.");
            mg_store_pgl_ident(b, t->pk);
        }
        mg_buf_append_str(b, "\n");
    }
    free(given);
    mg_buf_append_str(b, "    RETURNING t.*),\n");
    mg_buf_t d = MG_BUF_INIT;
    mg_buf_append_str(&d, "jsonb_build_object('table', ");
    mg_store_pgl_lit(&d, t->name);
    mg_buf_append_str(&d, ", 'id', $1::text)");
    mg_store_pgl_tail(b, bump_sql, ev_fmt, "ident_put", mg_buf_cstr(&d),
                "(SELECT row_to_json(c) FROM ch c)");
    mg_buf_free(&d);
    return MG_OK;
}

static int
mg_store_pgl_build_patch(const mg_store_pgl_table_t *t, json_t *m, const char *id,
                         const char *bump_sql, const char *ev_fmt, mg_buf_t *b, json_t *vals,
                         mg_err_t *err)
{
    json_t *set = json_object_get(m, "set");
    json_t *clear = json_object_get(m, "clear");
    if ((set != NULL && !json_is_null(set) && !json_is_object(set)) ||
        (clear != NULL && !json_is_null(clear) && !json_is_array(clear))) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "ident_patch of %s %s: \"set\" must be an "
                          "object and \"clear\" an array of column names", t->name, id);
    }
    /* 0: untouched, 1: set, 2: cleared (a column both set and cleared ends cleared, as in the
     * journal, which applies "set" first) */
    int *what = mg_xcalloc((size_t) t->ncols + 1, sizeof(int));
    size_t i;
    json_t *v;
    json_array_foreach(clear, i, v) {
        const char *ck = json_string_value(v);
        if (ck == NULL || strcmp(ck, t->pk) == 0) {
            free(what);
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "ident_patch of %s %s: \"clear\" must "
                              "name columns other than the id column \"%s\"", t->name, id,
                              t->pk);
        }
        bool skip;
        const mg_store_pgl_col_t *col =
            mg_store_pgl_check_key(t, "ident_patch", id, ck, NULL, &skip, err);
        if (col == NULL) {
            if (skip) {
                continue;
            }
            free(what);
            return MG_ERROR;
        }
        what[col - t->cols] = 2;
    }
    const char *k;
    json_object_foreach(set, k, v) {
        bool skip;
        const mg_store_pgl_col_t *col =
            mg_store_pgl_check_key(t, "ident_patch", id, k, v, &skip, err);
        if (col == NULL && !skip) {
            free(what);
            return MG_ERROR;
        }
        if (col != NULL && what[col - t->cols] == 0) {
            what[col - t->cols] = 1;
            json_object_set(vals, k, v);
        }
    }
    mg_buf_append_str(b, "WITH ");
    mg_store_pgl_source(b, t, vals);
    mg_buf_append_str(b, "ch AS (\n    UPDATE ");
    mg_buf_append_str(b, t->rel);
    mg_buf_append_str(b, " AS t SET ");
    bool first = true;
    for (int c = 0; c < t->ncols; c++) {
        const mg_store_pgl_col_t *col = &t->cols[c];
        bool now = strcmp(col->name, "updated_at") == 0;
        if (what[c] == 0 && !now) {
            continue;
        }
        mg_buf_append_str(b, first ? "" : ", ");
        mg_store_pgl_ident(b, col->name);
        mg_buf_append_str(b, " = ");
        if (now) {
            mg_buf_append_str(b, "now()");
        } else if (what[c] == 2) {
            mg_buf_append_str(b, "DEFAULT");
        } else {
            mg_store_pgl_value(b, col);
        }
        first = false;
    }
    free(what);
    if (first) {
        mg_store_pgl_ident(b, t->pk);
        mg_buf_append_str(b, " = t.");
        mg_store_pgl_ident(b, t->pk);
    }
    mg_buf_append_str(b, "\n    FROM s, r WHERE t.");
    mg_store_pgl_ident(b, t->pk);
    mg_buf_append_str(b, " = $1\n    RETURNING t.*),\n");
    mg_buf_t d = MG_BUF_INIT;
    mg_buf_append_str(&d, "jsonb_build_object('table', ");
    mg_store_pgl_lit(&d, t->name);
    mg_buf_append_str(&d, ", 'id', $1::text)");
    mg_store_pgl_tail(b, bump_sql, ev_fmt, "ident_patch", mg_buf_cstr(&d),
                "(SELECT row_to_json(c) FROM ch c)");
    mg_buf_free(&d);
    return MG_OK;
}

static int
mg_store_pgl_build_delete(const mg_store_pgl_table_t *t, json_t *m, const char *bump_sql,
                          const char *ev_fmt, mg_buf_t *b, mg_err_t *err)
{
    json_t *ids = json_object_get(m, "ids");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (!json_is_string(v)) {
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "ident_delete of %s: \"ids\" must hold "
                              "strings", t->name);
        }
    }
    if (!json_is_array(ids) || json_array_size(ids) == 0) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "ident_delete without ids");
    }
    mg_buf_t pk = MG_BUF_INIT;
    mg_store_pgl_ident(&pk, t->pk);
    const char *p = mg_buf_cstr(&pk);
    mg_buf_printf(b, "WITH w AS (SELECT x.id, x.n FROM jsonb_array_elements_text($1::jsonb) "
                     "WITH ORDINALITY x(id, n)),\n"
                     "miss AS (SELECT w.id FROM w WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE "
                     "t.%s = w.id) ORDER BY w.n LIMIT 1),\n"
                     "go AS (SELECT NOT EXISTS (SELECT 1 FROM miss) AS ok),\n",
                  t->rel, p);
    /* rows elsewhere that would block the delete (LiteLLM_JWTKeyMapping.token,
     * LiteLLM_OrganizationMembership.user_id, ...) go with it, in the same statement */
    mg_buf_t d = MG_BUF_INIT;
    mg_buf_append_str(&d, "jsonb_build_object('table', ");
    mg_store_pgl_lit(&d, t->name);
    mg_buf_append_str(&d, ", 'ids', $1::jsonb, 'dependents', jsonb_build_object(");
    for (int k = 0; k < t->ndeps; k++) {
        const mg_store_pgl_dep_t *dep = &t->deps[k];
        mg_buf_printf(b, "d%d AS (DELETE FROM %s d USING go WHERE go.ok AND d.%s IN (SELECT t.%s "
                         "FROM %s t WHERE t.%s IN (SELECT id FROM w)) RETURNING 1),\n",
                      k, dep->rel, dep->col, dep->refcol, t->rel, p);
        mg_buf_printf(&d, "%s", k > 0 ? ", " : "");
        mg_store_pgl_lit(&d, dep->rel);
        mg_buf_printf(&d, ", (SELECT count(*) FROM d%d)", k);
    }
    mg_buf_append_str(&d, "))");
    mg_buf_printf(b, "ch AS (DELETE FROM %s t USING go WHERE go.ok AND t.%s IN (SELECT id FROM w) "
                     "RETURNING t.%s),\n",
                  t->rel, p, p);
    mg_store_pgl_tail(b, bump_sql, ev_fmt, "ident_delete", mg_buf_cstr(&d),
                "json_build_object('missing', (SELECT id FROM miss))");
    mg_buf_free(&d);
    mg_buf_free(&pk);
    return MG_OK;
}

int
mg_store_pgl_build_ident(const mg_store_pgl_cat_t *c, json_t *m, const char *bump_sql,
                         const char *ev_fmt, char **sql, char **params, int *nparams, char **id,
                         mg_err_t *err)
{
    const char *op = mg_store_pgl_str(m, "op");
    const char *tn = mg_store_pgl_str(m, "table");
    const mg_store_pgl_table_t *t = tn != NULL ? mg_store_pgl_table(c, tn) : NULL;
    *sql = NULL;
    *nparams = 0;
    *id = NULL;
    if (op == NULL || t == NULL || t == &c->t[MG_STORE_PGL_MODEL] || mg_store_ident_id_column(tn)
        == NULL) {
        return mg_err_set(err, MG_ERR_BAD_REQUEST, "%s: unknown identity table \"%s\"",
                          op != NULL ? op : "ident", tn != NULL ? tn : "");
    }
    if (!c->loaded) {
        return mg_err_set(err, MG_ERR_NOT_READY, "%s: LiteLLM's tables are not read yet", op);
    }
    mg_buf_t b = MG_BUF_INIT;
    int rc;
    if (strcmp(op, "ident_delete") == 0) {
        json_t *ids = json_object_get(m, "ids");
        *id = mg_xstrdup(json_is_string(json_array_get(ids, 0))
                             ? json_string_value(json_array_get(ids, 0)) : "");
        rc = mg_store_pgl_build_delete(t, m, bump_sql, ev_fmt, &b, err);
        if (rc == MG_OK) {
            params[(*nparams)++] = json_dumps(ids, JSON_COMPACT);
        }
    } else {
        const char *iid = mg_store_pgl_str(m, "id");
        if (iid == NULL || iid[0] == '\0') {
            mg_buf_free(&b);
            return mg_err_set(err, MG_ERR_BAD_REQUEST, "%s without id", op);
        }
        *id = mg_xstrdup(iid);
        json_t *vals = json_object();
        if (strcmp(op, "ident_put") == 0) {
            rc = mg_store_pgl_build_put(t, m, iid, bump_sql, ev_fmt, &b, vals, err);
        } else if (strcmp(op, "ident_patch") == 0) {
            rc = mg_store_pgl_build_patch(t, m, iid, bump_sql, ev_fmt, &b, vals, err);
        } else {
            rc = mg_err_set(err, MG_ERR_BAD_REQUEST, "unknown mutation op \"%s\"", op);
        }
        if (rc == MG_OK) {
            params[(*nparams)++] = mg_xstrdup(iid);
            params[(*nparams)++] = json_dumps(vals, JSON_COMPACT);
        }
        json_decref(vals);
    }
    if (rc != MG_OK) {
        mg_buf_free(&b);
        for (int i = 0; i < *nparams; i++) {
            free(params[i]);
        }
        *nparams = 0;
        return rc;
    }
    *sql = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return MG_OK;
}

/* ---- LiteLLM's encryption ---- */

#define MG_PGL_GCM_NONCE 12
#define MG_PGL_GCM_TAG   16
#define MG_PGL_BOX_MIN   40 /* nonce 24 + MAC 16: LiteLLM's _NACL_MIN_CIPHERTEXT_BYTES */

void
mg_store_pgl_crypto_init(mg_store_pgl_crypto_t *k, const char *secret)
{
    memset(k, 0, sizeof(*k));
    if (sodium_init() < 0) {
        abort(); /* libsodium cannot initialise (no entropy source): nothing is safe */
    }
    if (secret == NULL || secret[0] == '\0') {
        return;
    }
    size_t n = strlen(secret);
    SHA256((const unsigned char *) secret, n, k->sha);
    /* HKDF-SHA256, no salt (RFC 5869: HashLen zeros), info "litellm-at-rest-v3", 32 bytes */
    static const char info[] = "litellm-at-rest-v3";
    size_t outlen = sizeof(k->hkdf);
    EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (p == NULL || EVP_PKEY_derive_init(p) <= 0 ||
        EVP_PKEY_CTX_set_hkdf_md(p, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_key(p, (const unsigned char *) secret, (int) n) <= 0 ||
        EVP_PKEY_CTX_add1_hkdf_info(p, (const unsigned char *) info, (int) sizeof(info) - 1) <= 0 ||
        EVP_PKEY_derive(p, k->hkdf, &outlen) <= 0 || outlen != sizeof(k->hkdf)) {
        abort(); /* OpenSSL without HKDF: a broken install, not a runtime condition */
    }
    EVP_PKEY_CTX_free(p);
    k->enabled = true;
}

/* Base64 in either alphabet (LiteLLM writes URL-safe, older rows standard), padding optional.
 * NULL when s is not base64. */
static unsigned char *
mg_store_pgl_unb64(const char *s, size_t n, size_t *outlen)
{
    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    if (n % 4 == 1) {
        return NULL;
    }
    unsigned char *out = mg_xmalloc(n * 3 / 4 + 3);
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char) s[i], d;
        if (c >= 'A' && c <= 'Z') {
            d = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            d = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            d = c - '0' + 52;
        } else if (c == '-' || c == '+') {
            d = 62;
        } else if (c == '_' || c == '/') {
            d = 63;
        } else {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned) d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (v >> bits);
            v &= (1u << bits) - 1;
        }
    }
    *outlen = o;
    return out;
}

typedef enum {
    MG_PGL_PLAIN,       /* not a ciphertext: passes as it is */
    MG_PGL_OPENED,
    MG_PGL_FAIL_GCM,    /* a marked AES-GCM value that does not open */
    MG_PGL_FAIL_BOX,    /* looks like a SecretBox ciphertext but does not open */
} mg_store_pgl_open_t;

static mg_store_pgl_open_t
mg_store_pgl_open(const mg_store_pgl_crypto_t *k, const char *s, size_t n, char **out,
                  size_t *outlen)
{
    bool v3 = n >= 7 && memcmp(s, "v3:gcm:", 7) == 0;
    bool v2 = n >= 7 && memcmp(s, "v2:gcm:", 7) == 0;
    size_t bl = 0;
    if (v3 || v2) {
        unsigned char *buf = mg_store_pgl_unb64(s + 7, n - 7, &bl);
        if (!k->enabled || buf == NULL || bl < MG_PGL_GCM_NONCE + MG_PGL_GCM_TAG) {
            free(buf);
            return MG_PGL_FAIL_GCM;
        }
        size_t cl = bl - MG_PGL_GCM_NONCE - MG_PGL_GCM_TAG;
        unsigned char *plain = mg_xmalloc(cl + 1);
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int len = 0, total = 0;
        int ok = ctx != NULL &&
                 EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
                 EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, MG_PGL_GCM_NONCE, NULL) == 1 &&
                 EVP_DecryptInit_ex(ctx, NULL, NULL, v3 ? k->hkdf : k->sha, buf) == 1 &&
                 EVP_DecryptUpdate(ctx, plain, &len, buf + MG_PGL_GCM_NONCE, (int) cl) == 1;
        total = len;
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MG_PGL_GCM_TAG,
                                       buf + MG_PGL_GCM_NONCE + cl) == 1;
        ok = ok && EVP_DecryptFinal_ex(ctx, plain + total, &len) == 1;
        total += ok ? len : 0;
        EVP_CIPHER_CTX_free(ctx);
        free(buf);
        if (!ok) {
            free(plain);
            return MG_PGL_FAIL_GCM;
        }
        plain[total] = '\0';
        *out = (char *) plain;
        *outlen = (size_t) total;
        return MG_PGL_OPENED;
    }
    /* LiteLLM writes base64 with its padding (urlsafe_b64encode) and reads anything else as
     * plain (urlsafe_b64decode raises): so do we, which keeps long plain values plain */
    unsigned char *buf = n % 4 == 0 ? mg_store_pgl_unb64(s, n, &bl) : NULL;
    if (buf == NULL || bl < MG_PGL_BOX_MIN) {
        free(buf);
        return MG_PGL_PLAIN;
    }
    if (!k->enabled) {
        free(buf);
        return MG_PGL_FAIL_BOX;
    }
    /* PyNaCl's SecretBox.encrypt(): nonce (24) || MAC (16) || ciphertext */
    size_t cl = bl - crypto_secretbox_NONCEBYTES;
    unsigned char *plain = mg_xmalloc(cl - crypto_secretbox_MACBYTES + 1);
    int rc = crypto_secretbox_open_easy(plain, buf + crypto_secretbox_NONCEBYTES, cl, buf, k->sha);
    free(buf);
    if (rc != 0) {
        free(plain);
        return MG_PGL_FAIL_BOX;
    }
    *outlen = cl - crypto_secretbox_MACBYTES;
    plain[*outlen] = '\0';
    *out = (char *) plain;
    return MG_PGL_OPENED;
}

json_t *
mg_store_pgl_decrypt_params(const mg_store_pgl_crypto_t *k, json_t *params, mg_err_t *err)
{
    if (!json_is_object(params)) {
        mg_err_set(err, MG_ERR_CONFIG, "litellm_params is not a JSON object");
        return NULL;
    }
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        if (!json_is_string(v)) {
            json_object_set(out, key, v); /* LiteLLM encrypts strings only */
            continue;
        }
        char *plain = NULL;
        size_t pl = 0;
        mg_store_pgl_open_t r =
            mg_store_pgl_open(k, json_string_value(v), json_string_length(v), &plain, &pl);
        json_t *dv = NULL;
        if (r == MG_PGL_OPENED) {
            dv = json_stringn(plain, pl);
            free(plain);
            if (dv == NULL) {
                r = MG_PGL_FAIL_BOX; /* not UTF-8: not what LiteLLM encrypted */
            }
        }
        if (r == MG_PGL_FAIL_GCM || (r == MG_PGL_FAIL_BOX && strcmp(key, "model") == 0)) {
            json_decref(out);
            if (!k->enabled) {
                mg_err_set(err, MG_ERR_CONFIG, "litellm_params.%s is encrypted (by LiteLLM) but "
                           "no LITELLM_SALT_KEY or master key is configured to decrypt it", key);
            } else {
                mg_err_set(err, MG_ERR_CONFIG, "cannot decrypt litellm_params.%s: wrong "
                           "LITELLM_SALT_KEY (LiteLLM encrypts with LITELLM_SALT_KEY, else its "
                           "master key) or corrupt data", key);
            }
            return NULL;
        }
        json_object_set_new(out, key, dv != NULL ? dv : json_incref(v));
    }
    return out;
}

/* A JSON column Prisma may have stored as a JSON string holding the object. */
static json_t *
mg_store_pgl_json_col(json_t *v)
{
    if (json_is_string(v)) {
        json_t *p = json_loads(json_string_value(v), 0, NULL);
        if (json_is_object(p)) {
            return p;
        }
        json_decref(p);
    }
    return json_is_object(v) ? json_incref(v) : NULL;
}

json_t *
mg_store_pgl_model_row(const mg_store_pgl_crypto_t *k, const mg_store_pgl_table_t *t, json_t *raw)
{
    if (!json_is_object(raw) || json_is_true(json_object_get(raw, "blocked"))) {
        return NULL;
    }
    mg_store_pgl_fix_row(t, raw);
    json_t *row = json_object();
    static const char *const copy[] = {"model_id", "model_name", "created_at", "updated_at",
                                       "created_by", "updated_by", NULL};
    for (int i = 0; copy[i] != NULL; i++) {
        json_t *v = json_object_get(raw, copy[i]);
        json_object_set(row, copy[i], v != NULL ? v : json_null());
    }
    json_t *mi = mg_store_pgl_json_col(json_object_get(raw, "model_info"));
    json_object_set_new(row, "model_info", mi != NULL ? mi : json_object());
    json_t *lp = mg_store_pgl_json_col(json_object_get(raw, "litellm_params"));
    mg_err_t err;
    mg_err_clear(&err);
    json_t *dec = lp != NULL ? mg_store_pgl_decrypt_params(k, lp, &err) : NULL;
    if (lp == NULL) {
        mg_err_set(&err, MG_ERR_CONFIG, "litellm_params is not a JSON object");
    }
    json_decref(lp);
    if (dec == NULL) {
        mg_err_prefix(&err, "LiteLLM_ProxyModelTable: ");
        json_object_set_new(row, "__load_error", json_string(err.msg));
        json_object_set_new(row, "litellm_params", json_null());
    } else {
        json_object_set_new(row, "litellm_params", dec);
    }
    return row;
}
