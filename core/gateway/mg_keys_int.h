/*
 * mg_keys_int.h -- what the management route files share (mg_keys.c, mg_keys_key.c,
 * mg_keys_team.c, mg_keys_user.c): the caller, the error envelopes LiteLLM answers with,
 * typed body fields, the change runner and row helpers.  Not for use outside these files.
 */
#ifndef MG_KEYS_INT_H
#define MG_KEYS_INT_H

#include "mg_keys.h"

#include "../registry/mg_auth.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* LiteLLM's proxy admin name: created_by/updated_by when the caller has no user. */
#define MG_KEYS_ADMIN_NAME "default_user_id"
/* LiteLLM's UI session keys' team: never listed. */
#define MG_KEYS_UI_TEAM "litellm-dashboard"

/* ---- the caller ---- */

typedef struct {
    bool admin;                 /* proxy_admin: the master key, or a key whose user is one */
    bool viewer;                /* proxy_admin_viewer */
    const char *role;           /* LiteLLM's user_role */
    const char *user_id;        /* the caller's key's user_id (NULL: master key, service key) */
    const mg_vkey_t *key;       /* borrowed: r->snap; NULL for the master key */
    const mg_user_t *user;      /* borrowed: r->snap; the key's user row, or NULL */
} mg_keys_caller_t;

void mg_keys_caller(const mg_request_t *r, mg_keys_caller_t *c);
/* The identity table of the request's pinned snapshot. */
const mg_auth_t *mg_keys_auth(const mg_request_t *r);
/* Whether user_id is in the team (members_with_roles, the older admins list, or the user's
 * teams column); admin: with role "admin". */
bool mg_keys_in_team(const mg_auth_t *a, const mg_team_t *t, const char *user_id, bool admin);

/* ---- answers ---- */

/* LiteLLM's ProxyException: {"error":{"message","type","param","code"}}; param NULL: "None". */
void mg_keys_fail(mg_request_t *r, int status, const char *type, const char *param,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* An HTTPException with detail {"<field>": msg} turned into a ProxyException: the message is
 * Python's str() of the dict ("{'error': '...'}"), param "None". */
void mg_keys_fail_repr(mg_request_t *r, int status, const char *type, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* FastAPI's answer to an HTTPException LiteLLM does not wrap: {"detail": {"error": msg}}. */
void mg_keys_detail(mg_request_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* FastAPI's 422 for a body field of the wrong type (or missing). */
void mg_keys_422(mg_request_t *r, const char *field, const char *msg);
/* 200 with a JSON body (and the registry version the change was applied at, if > 0). */
void mg_keys_answer(mg_request_t *r, json_t *body, int64_t applied_version);

/* ---- the request ---- */

/* The body as a JSON object ({} when empty); NULL after answering 400/422. New reference. */
json_t *mg_keys_body(mg_request_t *r);
/* A query parameter, percent-decoded (arena), or NULL. */
char *mg_keys_query(mg_request_t *r, const char *name);
/* A query flag: "true"/"1" -> true. */
bool mg_keys_query_bool(mg_request_t *r, const char *name, bool dflt);

/* Typed optional fields: true when absent or null (*out untouched: NULL / unset) or of the
 * right type; false after answering 422. */
bool mg_keys_f_str(mg_request_t *r, json_t *b, const char *name, const char **out);
bool mg_keys_f_num(mg_request_t *r, json_t *b, const char *name, bool *set, double *out);
bool mg_keys_f_int(mg_request_t *r, json_t *b, const char *name, bool *set, int64_t *out);
bool mg_keys_f_bool(mg_request_t *r, json_t *b, const char *name, bool *set, bool *out);
bool mg_keys_f_obj(mg_request_t *r, json_t *b, const char *name, json_t **out);
bool mg_keys_f_strarr(mg_request_t *r, json_t *b, const char *name, json_t **out);
/* Present in the body and not null. */
bool mg_keys_has(json_t *b, const char *name);

/* ---- changes ---- */

typedef struct mg_keys_op_s mg_keys_op_t;
/* Called once every step committed (the request is still there): answers the request. */
typedef void (*mg_keys_done_fn)(mg_request_t *r, mg_keys_op_t *op);

struct mg_keys_op_s {
    mg_gw_t *gw;                /* borrowed: lives as long as the worker */
    mg_request_t *r;            /* NULL once the client is gone */
    json_t *steps;              /* owned: mutations, committed in order */
    json_t *rows;               /* owned: each committed step's result row (or null) */
    size_t next;
    int64_t version;            /* the version the last step was applied at */
    mg_keys_done_fn done;
    json_t *ctx;                /* owned: what the answer needs */
    char secret[128];           /* a new raw key, answered once; zeroed when freed */
};

mg_keys_op_t *mg_keys_op_new(mg_request_t *r, mg_keys_done_fn done);
/* Appends a mutation (stolen). */
void mg_keys_op_add(mg_keys_op_t *op, json_t *mutation);
/* Commits the steps in order; answers with the first failure, or calls done.  An op without
 * steps calls done at once. */
void mg_keys_op_run(mg_keys_op_t *op);
/* The result row of step i (borrowed), or NULL. */
json_t *mg_keys_op_row(mg_keys_op_t *op, size_t i);

/* Mutations (rows, set and clear are stolen). */
json_t *mg_keys_m_put(const char *table, const char *id, json_t *row, bool create);
json_t *mg_keys_m_patch(const char *table, const char *id, json_t *set, json_t *clear);
json_t *mg_keys_m_delete(const char *table, json_t *ids);

/* ---- rows ---- */

/* Now as LiteLLM writes timestamps ("2025-01-01T00:00:00.000000+00:00"). */
void mg_keys_now_iso(char out[48]);
int64_t mg_keys_now_ms(void);
/* A row's current spend: its shared counter's (mg_lim_spend_of), else the row's column. */
double mg_keys_live_spend(mg_ent_kind_t kind, const char *id, json_t *row);
/* Python's str() of a float ("1.0", "0.5", "1e-05"), in the arena. */
const char *mg_keys_pyfloat(mg_request_t *r, double d);
/* Python's repr() of a list of strings ("['a', 'b']"), in the arena. */
const char *mg_keys_pylist(mg_request_t *r, json_t *list);
/* LiteLLM's masking of a user id in refusals (first 6, last 2), in the arena. */
const char *mg_keys_mask_id(mg_request_t *r, const char *id);
/* A new copy of a row with its spend from the entity's shared counter (kind/id); id NULL:
 * the row's id column and a counter only if the entity already has one.  Lists pass NULL:
 * mg_lim_spend_of claims a counter slot for every entity it is asked about, and listing must
 * not fill the counter table (mg_lim_spend_peek claims none). */
json_t *mg_keys_row_view(json_t *row, mg_ent_kind_t kind, const char *id);
/* A budget row as LiteLLM's litellm_budget_table (new reference), or JSON null. */
json_t *mg_keys_budget_view(const mg_auth_t *a, json_t *row);
/* "ok" when a model list entry list lets `model` through for a key of team t (mg_ka rules,
 * "all-team-models" meaning the team's list). */
bool mg_keys_list_allows(const mg_snapshot_t *s, json_t *list, const mg_team_t *t,
                         const char *model);
/* Sets metadata.moongate_spend_epoch in *set's "metadata" (a copy of the row's metadata when
 * *set has none): an admin set the spend, the counters re-seed from the row. */
void mg_keys_mark_spend_set(json_t *set, json_t *row);
/* Validates a LiteLLM duration ("30s", "1h", "30d", "1mo"); answers 400 and returns false
 * when it does not parse or is not positive.  what: "duration" or "budget_duration". */
bool mg_keys_duration(mg_request_t *r, const char *what, const char *s, int64_t *ms);
/* A raw key or a hash -> LiteLLM's token (64 hex). */
void mg_keys_token_of(const char *key, char out[65]);

/* ---- route handlers ---- */

typedef void (*mg_keys_fn)(mg_request_t *r, json_t *body, const char *arg);

void mg_keys_key_generate(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_sa_generate(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_update(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_delete(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_info(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_list(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_regenerate(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_block(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_unblock(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_key_health(mg_request_t *r, json_t *b, const char *arg);

void mg_keys_team_new(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_update(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_delete(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_info(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_list(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_member_add(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_member_delete(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_block(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_team_unblock(mg_request_t *r, json_t *b, const char *arg);

void mg_keys_user_new(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_user_update(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_user_delete(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_user_info(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_user_list(mg_request_t *r, json_t *b, const char *arg);

void mg_keys_customer_new(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_customer_update(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_customer_delete(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_customer_info(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_customer_list(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_customer_block(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_customer_unblock(mg_request_t *r, json_t *b, const char *arg);

void mg_keys_budget_new(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_budget_update(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_budget_delete(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_budget_info(mg_request_t *r, json_t *b, const char *arg);
void mg_keys_budget_list(mg_request_t *r, json_t *b, const char *arg);

/* The soft_budget field of a key body (LiteLLM keeps it in a budget row of the key's). */
typedef struct {
    bool present;
    bool set;
    double value;
} mg_keys_soft_t;
/* Reads the key fields of a body into set as LiteLLM's columns, validated; cur: the key's row
 * (an update) or NULL (a new key).  Answers (with error type `type`) and returns false on a
 * bad field. */
bool mg_keys_key_parse(mg_request_t *r, json_t *b, json_t *cur, json_t *set,
                       mg_keys_soft_t *soft, const char *type);
/* A new key row: LiteLLM's defaults, then set's columns, the value `given` (NULL: generated,
 * "sk-" + 22 url-safe characters) into secret and its SHA-256 into token.  Answers and
 * returns NULL when the value is refused or taken. */
json_t *mg_keys_key_row_new(mg_request_t *r, json_t *set, const char *given,
                            const char *created_by, char secret[128], char token[65]);
/* The public view of a new key (LiteLLM's GenerateKeyResponse) from its stored row. */
json_t *mg_keys_key_generated_view(const mg_auth_t *a, json_t *row, const char *secret);
/* Zeroes the string of v's "key" in place and sets it to null (an answer's copy of a new key
 * leaves no trace in freed memory). */
void mg_keys_wipe_key(json_t *v);
/* Whether list holds the string s. */
bool mg_keys_str_in_list(json_t *list, const char *s);
/* Adds to op the deletion of every key whose team_id (by_team) or user_id is in ids (none: no
 * step). */
void mg_keys_op_delete_keys_of(mg_keys_op_t *op, const mg_auth_t *a, json_t *ids, bool by_team);

#endif
