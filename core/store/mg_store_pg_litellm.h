/*
 * mg_store_pg_litellm.h -- LiteLLM's own tables in the PostgreSQL store: what moongate creates
 * when they are absent, how it reads whatever a LiteLLM deployment made, the SQL of the identity
 * mutations, and LiteLLM's encryption of LiteLLM_ProxyModelTable.litellm_params.
 *
 * Tables (names, columns, types, defaults, primary keys and the foreign keys among them exactly
 * as LiteLLM's schema.prisma makes them): LiteLLM_VerificationToken, LiteLLM_TeamTable,
 * LiteLLM_UserTable, LiteLLM_EndUserTable, LiteLLM_BudgetTable, LiteLLM_OrganizationTable and
 * LiteLLM_ProxyModelTable.  A table that exists is never altered: its columns are read from the
 * catalogue on every (re)connect and only those are used.
 *
 * Pure functions on JSON and strings (no I/O): mg_store_pg.c sends the SQL built here.  The
 * catalogue is owned by the store object; builders borrow it.
 */
#ifndef MG_STORE_PG_LITELLM_H
#define MG_STORE_PG_LITELLM_H

#include "../base/mg_err.h"

#include <jansson.h>
#include <stdbool.h>

/* ---- schema ---- */

/*
 * The DO block (one statement) that creates each LiteLLM table moongate uses when it is absent,
 * with its indexes, and the foreign keys between two tables it created in the same run (a table
 * LiteLLM made is never touched, not even by a constraint pointing at it).  Tables resolve
 * through search_path.  malloc'd.
 */
char *mg_store_pgl_schema_sql(void);

/* One SELECT returning one JSON value: the catalogue of those tables (mg_store_pgl_cat_load). */
extern const char mg_store_pgl_catalog_sql[];

/* ---- the catalogue: what exists, read on every (re)connect ---- */

typedef struct {
    char *name;                 /* malloc: column name as stored */
    char *type;                 /* malloc: format_type(), e.g. "timestamp(3) without time zone" */
    bool ts;                    /* timestamp without time zone: LiteLLM's DateTime (UTC) */
    bool kept;                  /* not reset by a replacing ident_put unless named (history) */
    bool counter;               /* never changed by a replacing ident_put (spend, model_spend) */
} mg_store_pgl_col_t;

typedef struct {
    char *rel;                  /* malloc: referencing table, quoted as PostgreSQL prints it */
    char *col;                  /* malloc: its referencing column, quoted */
    char *refcol;               /* malloc: our referenced column, quoted */
} mg_store_pgl_dep_t;

typedef struct {
    const char *name;           /* static: store table name, "key", ..., "model" */
    const char *relname;        /* static: "LiteLLM_VerificationToken", ... */
    const char *pk;             /* static: id column */
    char *rel;                  /* malloc: the relation as PostgreSQL prints it ("\"...\"") */
    mg_store_pgl_col_t *cols;   /* malloc: in column order */
    int ncols;
    /* rows in tables outside ours that a RESTRICT / NO ACTION foreign key ties to a row here
     * (LiteLLM_JWTKeyMapping, LiteLLM_OrganizationMembership, ...): deleted with it */
    mg_store_pgl_dep_t *deps;   /* malloc */
    int ndeps;
} mg_store_pgl_table_t;

#define MG_STORE_PGL_NTABLES 7  /* the six identity tables, then LiteLLM_ProxyModelTable */
#define MG_STORE_PGL_MODEL   6

typedef struct {
    mg_store_pgl_table_t t[MG_STORE_PGL_NTABLES];
    bool loaded;
} mg_store_pgl_cat_t;

void mg_store_pgl_cat_init(mg_store_pgl_cat_t *c);
void mg_store_pgl_cat_free(mg_store_pgl_cat_t *c);
/* Replaces c with the catalogue query's result (its JSON text); MG_ERROR + err when a table is
 * missing or the text is not what the query returns. */
int mg_store_pgl_cat_load(mg_store_pgl_cat_t *c, const char *json_text, mg_err_t *err);
/* The table of a store table name ("key", ...), or NULL. */
const mg_store_pgl_table_t *mg_store_pgl_table(const mg_store_pgl_cat_t *c, const char *name);

/*
 * Rewrites a row read with row_to_json() in place: timestamps without time zone (LiteLLM writes
 * UTC) get "+00:00", so every timestamp a caller sees is ISO-8601 with an offset.
 */
void mg_store_pgl_fix_row(const mg_store_pgl_table_t *t, json_t *row);

/* ---- identity mutations ---- */

/*
 * Builds the one SQL statement of an ident_put / ident_patch / ident_delete (see mg_store.h):
 * the change, dependent rows (ident_delete), the version bump, the moongate_events row and
 * pg_notify() together.  bump_sql: the "bump AS (...)" CTE text with "%s" where its condition
 * goes; ev_fmt: the events CTE with "%s" for the op name and "%s" for the detail expression.
 * Fills *sql (malloc'd), params (malloc'd strings, up to 4) and *nparams; *id (malloc'd) is the
 * id (or the first id) for messages.  Refuses with bad_request: an unknown table, a JSON key that
 * is not a column of the table as it exists ("refused, naming the column"), a changed id column,
 * an empty ids list.  Result row of the statement: (changed int, version bigint, detail json).
 */
int mg_store_pgl_build_ident(const mg_store_pgl_cat_t *c, json_t *m, const char *bump_sql,
                             const char *ev_fmt, char **sql, char **params, int *nparams,
                             char **id, mg_err_t *err);

/* ---- LiteLLM's encryption of litellm_params ---- */

typedef struct {
    unsigned char sha[32];      /* SHA-256 of the salt key: NaCl SecretBox and "v2:gcm:" */
    unsigned char hkdf[32];     /* HKDF-SHA256(salt key, info "litellm-at-rest-v3"): "v3:gcm:" */
    bool enabled;
} mg_store_pgl_crypto_t;

/* secret: LITELLM_SALT_KEY, else the master key (LiteLLM's _get_salt_key), or NULL. */
void mg_store_pgl_crypto_init(mg_store_pgl_crypto_t *k, const char *secret);

/*
 * Decrypts every string value of litellm_params as LiteLLM reads them: "v3:gcm:" / "v2:gcm:"
 * (AES-256-GCM) and unmarked base64 (NaCl SecretBox, XSalsa20-Poly1305).  A value that does not
 * decrypt passes as it is (LiteLLM stores some values plain), except that the row is unreadable
 * (NULL + err naming LITELLM_SALT_KEY) when a "v*:gcm:" value fails or when "model" is a
 * ciphertext that does not open: then the key is wrong, and passing ciphertext on as an api_key
 * would be worse than skipping the row.  New reference.
 */
json_t *mg_store_pgl_decrypt_params(const mg_store_pgl_crypto_t *k, json_t *params,
                                    mg_err_t *err);

/*
 * A LiteLLM_ProxyModelTable row (row_to_json) as a store model row (see mg_store.h), with
 * litellm_params decrypted or "__load_error" set.  NULL for a row that is not served (blocked).
 * New reference.
 */
json_t *mg_store_pgl_model_row(const mg_store_pgl_crypto_t *k, const mg_store_pgl_table_t *t,
                               json_t *raw);

#endif
