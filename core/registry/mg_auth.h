/*
 * mg_auth.h -- the identity table of a snapshot: virtual keys, teams, users, end users,
 * budgets and organizations, read from the store's identity rows (LiteLLM's columns).
 *
 * Owns: the structs and maps; every string and JSON value they point at is borrowed from
 * the rows, which the table keeps a reference on.  Immutable once built, like the rest of
 * the snapshot: a change is a new store version, a new snapshot, a new table, so a request
 * sees one consistent set of rights from start to end and no request that starts after a
 * change sees the old rights.
 *
 * What changes per request (spend, rate-limit windows, requests in flight) is not here: it
 * lives in shared memory (mg_limits.h), keyed by the entity's id, seeded from the rows'
 * persisted spend.
 */
#ifndef MG_AUTH_H
#define MG_AUTH_H

#include "../base/mg_err.h"
#include "../base/mg_map.h"
#include "../base/mg_types.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Limits an entity carries (its own columns, or its budget row's). */
typedef struct {
    double max_budget;          /* USD; < 0: none */
    double soft_budget;         /* USD; < 0: none */
    int64_t rpm;                /* < 0: none */
    int64_t tpm;
    int64_t parallel;           /* max_parallel_requests */
    const char *budget_duration; /* borrowed: "30d", NULL: none */
    int64_t reset_at_ms;        /* budget_reset_at (epoch ms), 0: none */
    json_t *model_max_budget;   /* borrowed: {model: {budget_limit, time_period}} or NULL */
    json_t *model_rpm;          /* borrowed: {model: n} or NULL (metadata.model_rpm_limit) */
    json_t *model_tpm;          /* borrowed */
} mg_limdef_t;

typedef enum {
    MG_ENT_KEY = 0,
    MG_ENT_TEAM,
    MG_ENT_USER,
    MG_ENT_END_USER,
    MG_ENT_ORG,
    MG_ENT__COUNT
} mg_ent_kind_t;

typedef struct mg_team_s mg_team_t;
typedef struct mg_user_s mg_user_t;
typedef struct mg_org_s mg_org_t;

struct mg_org_s {
    const char *id;
    const char *alias;
    json_t *row;                /* borrowed */
    json_t *models;             /* borrowed array; NULL or empty: every model */
    mg_limdef_t lim;
    double spend;
    int lim_slot;               /* memo of this process: mg_limits slot + 1, 0 unknown */
};

struct mg_team_s {
    const char *id;
    const char *alias;
    const char *org_id;
    json_t *row;                /* borrowed */
    bool blocked;
    json_t *models;             /* borrowed array; NULL or empty: every model */
    json_t *members;            /* borrowed: members_with_roles [{user_id, role}] */
    json_t *admins;             /* borrowed: admins [user_id] (older rows) */
    mg_limdef_t lim;
    double spend;
    mg_org_t *org;              /* borrowed, or NULL */
    int lim_slot;               /* memo of this process: mg_limits slot + 1, 0 unknown */
};

struct mg_user_s {
    const char *id;
    const char *email;
    const char *role;           /* user_role: proxy_admin, internal_user, ... */
    json_t *row;
    json_t *models;
    json_t *teams;              /* borrowed array of team ids */
    mg_limdef_t lim;
    double spend;
    int lim_slot;               /* memo of this process: mg_limits slot + 1, 0 unknown */
};

typedef struct {
    const char *id;
    const char *alias;
    json_t *row;
    bool blocked;
    mg_limdef_t lim;            /* from its budget row (budget_id) */
    double spend;
    int lim_slot;               /* memo of this process: mg_limits slot + 1, 0 unknown */
} mg_enduser_t;

typedef struct {
    const char *token;          /* sha256 hex of the key (LiteLLM's token column) */
    const char *key_name;       /* "sk-...abcd" */
    const char *key_alias;
    const char *user_id;
    const char *team_id;
    const char *org_id;
    json_t *row;
    bool blocked;
    int64_t expires_ms;         /* 0: never */
    json_t *models;             /* borrowed array; NULL or empty: the team's / every model */
    json_t *aliases;            /* borrowed object or NULL */
    json_t *metadata;           /* borrowed object or NULL */
    json_t *tags;               /* borrowed array or NULL (metadata.tags or tags) */
    json_t *allowed_routes;     /* borrowed array or NULL */
    mg_limdef_t lim;            /* its own columns; its budget row's where it has none */
    double spend;
    mg_team_t *team;            /* borrowed, or NULL */
    mg_user_t *user;            /* borrowed, or NULL */
    int lim_slot;               /* memo of this process: mg_limits slot + 1, 0 unknown */
} mg_vkey_t;

typedef struct mg_auth_s {
    json_t *idents;             /* ref: the rows */
    mg_vkey_t *keys;            /* owned arrays */
    size_t nkeys;
    mg_team_t *teams;
    size_t nteams;
    mg_user_t *users;
    size_t nusers;
    mg_enduser_t *end_users;
    size_t nend_users;
    mg_org_t *orgs;
    size_t norgs;
    mg_map_t by_token;          /* token -> mg_vkey_t* */
    mg_map_t by_alias;          /* key_alias -> mg_vkey_t* */
    mg_map_t by_team;
    mg_map_t by_user;
    mg_map_t by_end_user;
    mg_map_t by_org;
    mg_map_t by_budget;         /* budget_id -> json_t* row */
} mg_auth_t;

/* Builds the table from the store's idents ({table: {id: row}}; NULL: empty).  Rows that do
 * not parse are skipped with a message appended to warnings (array, may be NULL). */
mg_auth_t *mg_auth_build(json_t *idents, json_t *warnings);
void mg_auth_free(mg_auth_t *a);

const mg_vkey_t *mg_auth_key(const mg_auth_t *a, const char *token);
const mg_vkey_t *mg_auth_key_alias(const mg_auth_t *a, const char *alias);
const mg_team_t *mg_auth_team(const mg_auth_t *a, const char *id);
const mg_user_t *mg_auth_user(const mg_auth_t *a, const char *id);
const mg_enduser_t *mg_auth_end_user(const mg_auth_t *a, const char *id);
const mg_org_t *mg_auth_org(const mg_auth_t *a, const char *id);
json_t *mg_auth_budget_row(const mg_auth_t *a, const char *budget_id);

/* The SHA-256 hex of a key, as LiteLLM's hash_token (a key that is already 64 hex digits is
 * taken as a hash, as LiteLLM's management routes do: for lookups, never to authenticate). */
void mg_auth_hash_key(const char *key, size_t len, char out[65]);
/* LiteLLM's key_name: "sk-...abcd" (the last 4 characters). */
void mg_auth_key_name(const char *key, char *out, size_t outlen);

/* ISO-8601 ("2025-01-01T00:00:00Z", "+00:00" offsets, fractions, a bare date) -> epoch ms;
 * MG_ERROR when it does not parse. */
int mg_auth_parse_time(const char *s, int64_t *ms);
/* epoch ms -> "2025-01-01T00:00:00.000000+00:00" (Python's isoformat, as LiteLLM writes). */
void mg_auth_fmt_time(int64_t ms, char *out, size_t outlen);
/* LiteLLM's duration strings ("30s", "30m", "30h", "30d", "1w", "1mo") -> ms; MG_ERROR. */
int mg_auth_parse_duration(const char *s, int64_t *ms);

#endif
