/*
 * mg_keys_user.c -- /user/new, /user/update, /user/delete, /user/info, /user/list (LiteLLM's
 * LiteLLM_UserTable), /customer/... (and /end_user/...: LiteLLM_EndUserTable, their limits in
 * a LiteLLM_BudgetTable row) and /budget/new|update|delete|info|list.
 *
 * Owns nothing past a call.  /user/new creates the user, adds it to its teams and, as LiteLLM,
 * a key for it (auto_create_key); the new key's value is answered once and never stored.
 */
#include "mg_keys_int.h"

#include "mg_keyauth.h"

#include "../base/mg_util.h"
#include "../registry/mg_registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MG_KU_ISE "internal_server_error"

static const char *const mg_ku_roles[] = {"proxy_admin", "proxy_admin_viewer", "internal_user",
                                          "internal_user_viewer", "team", "customer", "org_admin",
                                          NULL};

static bool
mg_ku_role_ok(const char *role)
{
    for (const char *const *p = mg_ku_roles; *p; p++) {
        if (strcmp(*p, role) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *
mg_ku_view(json_t *row, bool live)
{
    const char *id = json_string_value(json_object_get(row, "user_id"));
    json_t *v = mg_keys_row_view(row, MG_ENT_USER, live ? id : NULL);
    json_object_del(v, "password");
    return v;
}

/*
 * The user fields of a body into set (columns): LiteLLM's NewUserRequest/UpdateUserRequest.
 * update: LiteLLM skips None, [] and {} (except max_budget, which may be set to null).
 */
static bool
mg_ku_fields(mg_request_t *r, json_t *b, json_t *cur, json_t *set, bool update)
{
    const char *s;
    static const char *const strs[] = {"user_alias", "user_email", "user_role", NULL};
    for (const char *const *n = strs; *n; n++) {
        s = NULL;
        if (!mg_keys_f_str(r, b, *n, &s)) {
            return false;
        }
        if (s != NULL) {
            json_object_set_new(set, *n, json_string(s));
        }
    }
    const char *role = json_string_value(json_object_get(set, "user_role"));
    if (role != NULL && !mg_ku_role_ok(role)) {
        mg_keys_422(r, "user_role", "Input should be 'proxy_admin', 'proxy_admin_viewer', "
                                    "'internal_user', 'internal_user_viewer', 'team' or "
                                    "'customer'");
        return false;
    }
    bool nset;
    double d;
    if (json_object_get(b, "max_budget") != NULL) {
        if (!mg_keys_f_num(r, b, "max_budget", &nset, &d)) {
            return false;
        }
        if (nset && d < 0) {
            mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "max_budget cannot be negative. "
                                                          "Received: %s", mg_keys_pyfloat(r, d));
            return false;
        }
        json_object_set_new(set, "max_budget", nset ? json_real(d) : json_null());
    }
    if (!mg_keys_f_num(r, b, "spend", &nset, &d)) {
        return false;
    }
    if (nset) {
        if (d < 0) {
            mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "spend must be >= 0. Received: %s",
                              mg_keys_pyfloat(r, d));
            return false;
        }
        if (!update || d != 0) {
            json_object_set_new(set, "spend", json_real(d));
        }
    }
    static const char *const ints[] = {"tpm_limit", "rpm_limit", "max_parallel_requests", NULL};
    for (const char *const *n = ints; *n; n++) {
        int64_t v;
        if (!mg_keys_f_int(r, b, *n, &nset, &v)) {
            return false;
        }
        if (nset && v < 0) {
            mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "%s cannot be negative. Received: %lld",
                              *n, (long long) v);
            return false;
        }
        if (nset) {
            json_object_set_new(set, *n, json_integer(v));
        }
    }
    s = NULL;
    if (!mg_keys_f_str(r, b, "budget_duration", &s)) {
        return false;
    }
    if (s != NULL) {
        int64_t ms;
        if (!mg_keys_duration(r, "budget_duration", s, &ms)) {
            return false;
        }
        char iso[48];
        mg_auth_fmt_time(mg_keys_now_ms() + ms, iso, sizeof(iso));
        json_object_set_new(set, "budget_duration", json_string(s));
        json_object_set_new(set, "budget_reset_at", json_string(iso));
    }
    json_t *o = NULL;
    if (!mg_keys_f_strarr(r, b, "models", &o)) {
        return false;
    }
    if (o != NULL && (!update || json_array_size(o) > 0)) {
        json_object_set(set, "models", o);
    }
    o = NULL;
    if (!mg_keys_f_strarr(r, b, "allowed_cache_controls", &o)) {
        return false;
    }
    if (o != NULL && (!update || json_array_size(o) > 0)) {
        json_object_set(set, "allowed_cache_controls", o);
    }
    o = NULL;
    if (!mg_keys_f_obj(r, b, "model_max_budget", &o)) {
        return false;
    }
    if (o != NULL && (!update || json_object_size(o) > 0)) {
        json_object_set(set, "model_max_budget", o);
    }
    json_t *md = NULL;
    if (!mg_keys_f_obj(r, b, "metadata", &md)) {
        return false;
    }
    json_t *curmd = cur != NULL ? json_object_get(cur, "metadata") : NULL;
    if ((md != NULL && (!update || json_object_size(md) > 0)) || !update) {
        json_t *nmd = md != NULL ? json_deep_copy(md) : json_object();
        json_object_del(nmd, "moongate_spend_epoch");
        json_t *se = json_object_get(curmd, "moongate_spend_epoch");
        if (se != NULL) {
            json_object_set(nmd, "moongate_spend_epoch", se);
        }
        json_object_set_new(set, "metadata", nmd);
    }
    if (update && json_object_get(set, "spend") != NULL) {
        mg_keys_mark_spend_set(set, cur);
    }
    static const char *const unsupported[] = {"password", "object_permission", "organizations",
                                              "sso_user_id", "guardrails", "policies", "prompts",
                                              NULL};
    for (const char *const *n = unsupported; *n; n++) {
        json_t *v = json_object_get(b, *n);
        if (v != NULL && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0) &&
            !(json_is_object(v) && json_object_size(v) == 0)) {
            mg_keys_fail(r, 400, MG_KU_ISE, *n, "moongate: %s on a user is not implemented; the "
                                                "user was not changed", *n);
            return false;
        }
    }
    return true;
}

/* A user with this email (case-insensitive) other than self, or NULL. */
static const mg_user_t *
mg_ku_email_taken(const mg_auth_t *a, const char *email, const char *self)
{
    for (size_t i = 0; email != NULL && i < a->nusers; i++) {
        const mg_user_t *u = &a->users[i];
        if (u->email != NULL && strcasecmp(u->email, email) == 0 &&
            (self == NULL || strcmp(u->id, self) != 0)) {
            return u;
        }
    }
    return NULL;
}

/* ---- /user/new ---- */

static void
mg_ku_new_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *user = mg_keys_op_row(op, 0);
    json_t *key = json_is_true(json_object_get(op->ctx, "with_key"))
                      ? mg_keys_op_row(op, json_array_size(op->rows) - 1)
                      : NULL;
    json_t *v = mg_ku_view(user, true);
    /* LiteLLM's NewUserResponse: the user's columns, and the key's (key, expires, alias ...) */
    json_object_set_new(v, "key", json_string(key != NULL ? op->secret : ""));
    static const char *const kcols[] = {"key_alias", "key_name", "expires", "aliases", "config",
                                        "permissions", "allowed_routes", "budget_id", "blocked",
                                        "created_by", "updated_by", NULL};
    for (const char *const *n = kcols; *n; n++) {
        json_t *kv = key != NULL ? json_object_get(key, *n) : NULL;
        json_object_set_new(v, *n, kv != NULL ? json_incref(kv) : json_null());
    }
    json_object_set_new(v, "token", key != NULL ? json_incref(json_object_get(key, "token"))
                                                : json_null());
    mg_keys_answer(r, v, op->version);
    mg_keys_wipe_key(v);
    json_decref(v);
}

void
mg_keys_user_new(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *uid = NULL;
    if (!mg_keys_f_str(r, b, "user_id", &uid)) {
        return;
    }
    char uuid[37];
    if (uid == NULL || uid[0] == '\0') {
        mg_uuid4(uuid);
        uid = uuid;
    } else if (mg_auth_user(a, uid) != NULL) {
        mg_keys_fail_repr(r, 409, MG_KU_ISE, "error", "User with id %s already exists", uid);
        return;
    }
    json_t *set = json_object();
    if (!mg_ku_fields(r, b, NULL, set, false)) {
        json_decref(set);
        return;
    }
    const char *email = json_string_value(json_object_get(set, "user_email"));
    const mg_user_t *dup = mg_ku_email_taken(a, email, NULL);
    if (dup != NULL) {
        mg_keys_fail_repr(r, 409, MG_KU_ISE, "error", "User with email %s already exists",
                          dup->email);
        json_decref(set);
        return;
    }
    const char *role = json_string_value(json_object_get(set, "user_role"));
    if (role != NULL && !c.admin &&
        (strcmp(role, "proxy_admin") == 0 || strcmp(role, "proxy_admin_viewer") == 0)) {
        mg_keys_fail(r, 403, MG_KU_ISE, NULL, "Only proxy admins can create administrative users "
                                              "(proxy_admin, proxy_admin_viewer). Attempted to "
                                              "create user with role: %s. Your role: %s", role,
                     c.role);
        json_decref(set);
        return;
    }
    /* teams: ["t1", ...] or [{"team_id", "user_role"}]; each must exist */
    json_t *teams = json_object_get(b, "teams");
    json_t *joins = json_array();
    size_t i;
    json_t *t;
    if (teams != NULL && !json_is_null(teams) && !json_is_array(teams)) {
        json_decref(set);
        json_decref(joins);
        mg_keys_422(r, "teams", "Input should be a valid list");
        return;
    }
    json_array_foreach(teams, i, t) {
        const char *tid = json_is_string(t) ? json_string_value(t)
                                            : json_string_value(json_object_get(t, "team_id"));
        const char *tr = json_is_object(t) ? json_string_value(json_object_get(t, "user_role"))
                                           : NULL;
        if (tid == NULL || (tr != NULL && strcmp(tr, "admin") != 0 && strcmp(tr, "user") != 0)) {
            json_decref(set);
            json_decref(joins);
            mg_keys_422(r, "teams", "Input should be a list of team ids or {team_id, user_role}");
            return;
        }
        if (mg_auth_team(a, tid) == NULL) {
            json_decref(set);
            json_decref(joins);
            mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "Team %s does not exist: the user was "
                                                          "not created", tid);
            return;
        }
        json_array_append_new(joins, json_pack("{s:s,s:s}", "team_id", tid, "role",
                                               tr != NULL ? tr : "user"));
    }
    bool sset, auto_key = true;
    if (!mg_keys_f_bool(r, b, "auto_create_key", &sset, &auto_key)) {
        json_decref(set);
        json_decref(joins);
        return;
    }
    if (!sset) {
        auto_key = true;
    }
    json_t *tids = json_array();
    json_array_foreach(joins, i, t) {
        json_array_append(tids, json_object_get(t, "team_id"));
    }
    json_t *row = json_pack("{s:s,s:n,s:n,s:n,s:o,s:n,s:n,s:f,s:n,s:[],s:{},s:n,s:n,s:n,s:n,s:n,"
                            "s:[],s:{},s:{}}",
                            "user_id", uid, "user_alias", "team_id", "organization_id", "teams",
                            tids, "user_role", "max_budget", "spend", 0.0, "user_email", "models",
                            "metadata", "max_parallel_requests", "tpm_limit", "rpm_limit",
                            "budget_duration", "budget_reset_at", "allowed_cache_controls",
                            "model_spend", "model_max_budget");
    json_object_update(row, set);
    json_decref(set);
    const char *by = c.user_id != NULL ? c.user_id : MG_KEYS_ADMIN_NAME;
    /* the key LiteLLM makes with the user: its models and rate limits, its own alias/duration */
    json_t *krow = NULL;
    char secret[128] = "", token[65];
    if (auto_key) {
        json_t *kb = json_object();
        static const char *const kf[] = {"key_alias", "duration", "aliases", "config",
                                         "permissions", "allowed_routes", "key", "blocked", NULL};
        for (const char *const *n = kf; *n; n++) {
            if (json_object_get(b, *n) != NULL) {
                json_object_set(kb, *n, json_object_get(b, *n));
            }
        }
        static const char *const uf[] = {"models", "tpm_limit", "rpm_limit",
                                         "max_parallel_requests", "metadata", NULL};
        for (const char *const *n = uf; *n; n++) {
            if (json_object_get(row, *n) != NULL) {
                json_object_set(kb, *n, json_object_get(row, *n));
            }
        }
        json_t *kset = json_object();
        const char *given = NULL;
        bool ok = mg_keys_key_parse(r, kb, NULL, kset, NULL, MG_KU_ISE) &&
                  mg_keys_f_str(r, kb, "key", &given);
        if (ok && mg_keys_has(kset, "key_alias") &&
            mg_auth_key_alias(a, json_string_value(json_object_get(kset, "key_alias"))) != NULL) {
            mg_keys_fail(r, 400, "bad_request_error", "key_alias",
                         "Key with alias '%s' already exists. Unique key aliases across all keys "
                         "are required.", json_string_value(json_object_get(kset, "key_alias")));
            ok = false;
        }
        if (ok) {
            json_object_set_new(kset, "user_id", json_string(uid));
            krow = mg_keys_key_row_new(r, kset, given, by, secret, token);
        }
        json_decref(kset);
        json_decref(kb);
        if (krow == NULL) {
            json_decref(row);
            json_decref(joins);
            return;
        }
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_ku_new_done);
    memcpy(op->secret, secret, sizeof(op->secret));
    memset(secret, 0, sizeof(secret));
    json_object_set_new(op->ctx, "with_key", json_boolean(krow != NULL));
    mg_keys_op_add(op, mg_keys_m_put("user", uid, row, true));
    json_array_foreach(joins, i, t) {
        const mg_team_t *tm = mg_auth_team(a, json_string_value(json_object_get(t, "team_id")));
        bool in = false;
        size_t j;
        json_t *m;
        json_array_foreach(tm->members, j, m) {
            const char *mu = json_string_value(json_object_get(m, "user_id"));
            in = in || (mu != NULL && strcmp(mu, uid) == 0);
        }
        if (in) {
            continue;
        }
        json_t *members = json_is_array(tm->members) ? json_deep_copy(tm->members) : json_array();
        json_array_append_new(members, json_pack("{s:s,s:o,s:O}", "user_id", uid, "user_email",
                                                 email != NULL ? json_string(email) : json_null(),
                                                 "role", json_object_get(t, "role")));
        mg_keys_op_add(op, mg_keys_m_patch("team", tm->id, json_pack("{s:o}", "members_with_roles",
                                                                     members), NULL));
    }
    json_decref(joins);
    if (krow != NULL) {
        mg_keys_op_add(op, mg_keys_m_put("key", token, krow, true));
    }
    mg_keys_op_run(op);
}

/* ---- /user/update ---- */

static void
mg_ku_update_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *row = mg_keys_op_row(op, 0);
    json_t *body = json_pack("{s:O,s:o}", "user_id", json_object_get(row, "user_id"), "data",
                             mg_ku_view(row, true));
    mg_keys_answer(r, body, op->version);
    json_decref(body);
}

void
mg_keys_user_update(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    const char *uid = NULL, *email = NULL;
    if (!mg_keys_f_str(r, b, "user_id", &uid) || !mg_keys_f_str(r, b, "user_email", &email)) {
        return;
    }
    if (uid == NULL && email == NULL) {
        mg_keys_fail(r, 400, "auth_error", NULL, "Authentication Error, Either user_id or "
                                                 "user_email must be provided");
        return;
    }
    const mg_user_t *u = uid != NULL ? mg_auth_user(a, uid) : mg_ku_email_taken(a, email, NULL);
    if (u == NULL) {
        mg_keys_fail_repr(r, 404, "auth_error", "error", "User not found, passed %s=%s",
                          uid != NULL ? "user_id" : "user_email", uid != NULL ? uid : email);
        return;
    }
    if (json_object_get(b, "teams") != NULL) {
        mg_keys_fail(r, 400, "auth_error", "teams", "A user's teams are changed with "
                                                    "`/team/member_add` and "
                                                    "`/team/member_delete`");
        return;
    }
    json_t *set = json_object();
    if (!mg_ku_fields(r, b, u->row, set, true)) {
        json_decref(set);
        return;
    }
    const char *ne = json_string_value(json_object_get(set, "user_email"));
    if (ne != NULL && mg_ku_email_taken(a, ne, u->id) != NULL) {
        json_decref(set);
        mg_keys_fail_repr(r, 409, "auth_error", "error", "User with email %s already exists", ne);
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_ku_update_done);
    mg_keys_op_add(op, mg_keys_m_patch("user", u->id, set, NULL));
    mg_keys_op_run(op);
}

/* ---- /user/delete ---- */

static void
mg_ku_delete_done(mg_request_t *r, mg_keys_op_t *op)
{
    /* LiteLLM answers Prisma's delete_many count */
    mg_keys_answer(r, json_object_get(op->ctx, "count"), op->version);
}

void
mg_keys_user_delete(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *ids = NULL;
    if (!mg_keys_f_strarr(r, b, "user_ids", &ids)) {
        return;
    }
    if (ids == NULL || json_array_size(ids) == 0) {
        mg_keys_detail(r, 400, "No user id passed in");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (mg_auth_user(a, json_string_value(v)) == NULL) {
            mg_keys_detail(r, 404, "User not found, passed user_id=%s", json_string_value(v));
            return;
        }
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_ku_delete_done);
    /* their keys first: no key outlives its user */
    mg_keys_op_delete_keys_of(op, a, ids, false);
    for (size_t t = 0; t < a->nteams; t++) {
        const mg_team_t *tm = &a->teams[t];
        json_t *keep = json_array();
        size_t j;
        json_t *m;
        json_array_foreach(tm->members, j, m) {
            const char *mu = json_string_value(json_object_get(m, "user_id"));
            if (mu == NULL || !mg_keys_str_in_list(ids, mu)) {
                json_array_append(keep, m);
            }
        }
        if (json_array_size(keep) != json_array_size(tm->members)) {
            mg_keys_op_add(op, mg_keys_m_patch("team", tm->id,
                                               json_pack("{s:o}", "members_with_roles", keep),
                                               NULL));
        } else {
            json_decref(keep);
        }
    }
    mg_keys_op_add(op, mg_keys_m_delete("user", json_deep_copy(ids)));
    json_object_set_new(op->ctx, "count", json_integer((json_int_t) json_array_size(ids)));
    mg_keys_op_run(op);
}

/* ---- /user/info, /user/list ---- */

static json_t *
mg_ku_keys_of(const mg_auth_t *a, const char *uid)
{
    json_t *out = json_array();
    for (size_t k = 0; k < a->nkeys; k++) {
        const mg_vkey_t *key = &a->keys[k];
        if (uid != NULL && (key->user_id == NULL || strcmp(key->user_id, uid) != 0)) {
            continue;
        }
        json_t *v = mg_keys_row_view(key->row, MG_ENT_KEY, NULL);
        json_object_set_new(v, "team_alias", key->team != NULL && key->team->alias != NULL
                                                 ? json_string(key->team->alias)
                                                 : key->team_id == NULL ? json_string("None")
                                                                        : json_null());
        json_array_append_new(out, v);
    }
    return out;
}

static json_t *
mg_ku_teams_of(const mg_auth_t *a, const char *uid)
{
    json_t *out = json_array();
    for (size_t t = 0; t < a->nteams; t++) {
        if (uid == NULL || mg_keys_in_team(a, &a->teams[t], uid, false)) {
            json_array_append_new(out, mg_keys_row_view(a->teams[t].row, MG_ENT_TEAM, NULL));
        }
    }
    return out;
}

void
mg_keys_user_info(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *uid = mg_keys_query(r, "user_id");
    if (uid != NULL && !c.admin && !c.viewer && (c.user_id == NULL || strcmp(uid, c.user_id) != 0)) {
        /* LiteLLM's route check for /user/info */
        mg_keys_fail(r, 403, "auth_error", NULL, "key not allowed to access this user's info. "
                                                 "user_id=%s, key's user_id=%s", uid,
                     c.user_id != NULL ? c.user_id : "None");
        return;
    }
    if (uid == NULL && (c.admin || c.viewer) && c.user_id == NULL) {
        /* a proxy admin without a user: every key and team (LiteLLM's admin view) */
        json_t *body = json_pack("{s:n,s:{s:s},s:o,s:o}", "user_id", "user_info", "user_role",
                                 c.admin ? "proxy_admin" : "proxy_admin_viewer", "keys",
                                 mg_ku_keys_of(a, NULL), "teams", mg_ku_teams_of(a, NULL));
        mg_keys_answer(r, body, 0);
        json_decref(body);
        return;
    }
    if (uid == NULL) {
        uid = c.user_id;
    }
    const mg_user_t *u = uid != NULL ? mg_auth_user(a, uid) : NULL;
    if (u == NULL) {
        mg_keys_fail(r, 404, MG_KU_ISE, NULL, "User %s not found", uid != NULL ? uid : "None");
        return;
    }
    json_t *body = json_pack("{s:s,s:o,s:o,s:o}", "user_id", u->id, "user_info", mg_ku_view(u->row, true),
                             "keys", mg_ku_keys_of(a, u->id), "teams", mg_ku_teams_of(a, u->id));
    mg_keys_answer(r, body, 0);
    json_decref(body);
}

static int mg_ku_desc;
static const char *mg_ku_sort_col;

static int
mg_ku_cmp(const void *x, const void *y)
{
    const mg_user_t *a = *(const mg_user_t *const *) x, *b = *(const mg_user_t *const *) y;
    json_t *va = json_object_get(a->row, mg_ku_sort_col), *vb = json_object_get(b->row,
                                                                               mg_ku_sort_col);
    int c;
    if (json_is_number(va) || json_is_number(vb)) {
        double da = json_number_value(va), db = json_number_value(vb);
        c = da < db ? -1 : da > db ? 1 : 0;
    } else {
        const char *sa = json_string_value(va), *sb = json_string_value(vb);
        c = strcmp(sa ? sa : "", sb ? sb : "");
    }
    if (c == 0) {
        c = strcmp(a->id, b->id);
    }
    return mg_ku_desc ? -c : c;
}

static bool
mg_ku_csv_has(const char *csv, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = csv; p != NULL && *p;) {
        while (*p == ' ') {
            p++;
        }
        const char *e = strchr(p, ',');
        size_t l = e != NULL ? (size_t) (e - p) : strlen(p);
        while (l > 0 && p[l - 1] == ' ') {
            l--;
        }
        if (l == n && memcmp(p, id, n) == 0) {
            return true;
        }
        p = e != NULL ? e + 1 : NULL;
    }
    return false;
}

void
mg_keys_user_list(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    const char *role = mg_keys_query(r, "role"), *ids = mg_keys_query(r, "user_ids");
    const char *email = mg_keys_query(r, "user_email"), *team = mg_keys_query(r, "team");
    const char *ps = mg_keys_query(r, "page"), *ss = mg_keys_query(r, "page_size");
    const char *sort = mg_keys_query(r, "sort_by"), *order = mg_keys_query(r, "sort_order");
    long page = ps ? strtol(ps, NULL, 10) : 1, size = ss ? strtol(ss, NULL, 10) : 25;
    if (page < 1 || size < 1 || size > 100) {
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s}]", "type", "value_error", "loc", "query",
                                       page < 1 ? "page" : "page_size", "msg",
                                       page < 1 ? "Input should be greater than or equal to 1"
                                                : "Input should be between 1 and 100"));
        return;
    }
    if (sort != NULL) {
        static const char *const cols[] = {"user_id", "user_email", "created_at", "spend",
                                           "user_alias", "user_role", NULL};
        bool ok = false;
        for (const char *const *cl = cols; *cl && !ok; cl++) {
            ok = strcmp(*cl, sort) == 0;
        }
        if (!ok) {
            mg_keys_detail(r, 400, "Invalid sort column. Must be one of: user_id, user_email, "
                                   "created_at, spend, user_alias, user_role");
            return;
        }
    }
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        mg_keys_detail(r, 400, "Invalid sort order. Must be 'asc' or 'desc'");
        return;
    }
    const mg_user_t **us = mg_arena_calloc(r->arena, (a->nusers + 1) * sizeof(*us));
    size_t n = 0;
    size_t nids = 0;
    for (const char *p = ids; p != NULL && *p; p++) {
        nids += *p == ',';
    }
    for (size_t i = 0; i < a->nusers; i++) {
        const mg_user_t *u = &a->users[i];
        if (role != NULL && (u->role == NULL || strcmp(u->role, role) != 0)) {
            continue;
        }
        if (ids != NULL && ids[0] != '\0') {
            /* one id: a case-insensitive substring (LiteLLM's contains); several: exact */
            if (nids == 0 ? strcasestr(u->id, ids) == NULL : !mg_ku_csv_has(ids, u->id)) {
                continue;
            }
        }
        if (email != NULL && (u->email == NULL || strcasestr(u->email, email) == NULL)) {
            continue;
        }
        if (team != NULL && !mg_keys_str_in_list(u->teams, team)) {
            continue;
        }
        us[n++] = u;
    }
    mg_ku_sort_col = sort != NULL ? sort : "created_at";
    mg_ku_desc = sort == NULL ? 1 : order != NULL && strcmp(order, "desc") == 0;
    qsort(us, n, sizeof(*us), mg_ku_cmp);
    json_t *out = json_array();
    size_t from = (size_t) (page - 1) * (size_t) size;
    for (size_t i = from; i < n && i < from + (size_t) size; i++) {
        json_t *v = mg_ku_view(us[i]->row, false);
        json_int_t kc = 0;
        for (size_t k = 0; k < a->nkeys; k++) {
            const mg_vkey_t *key = &a->keys[k];
            kc += key->user_id != NULL && strcmp(key->user_id, us[i]->id) == 0 &&
                  (key->team_id == NULL || strcmp(key->team_id, MG_KEYS_UI_TEAM) != 0);
        }
        json_object_set_new(v, "key_count", json_integer(kc));
        json_array_append_new(out, v);
    }
    json_t *body = json_pack("{s:o,s:I,s:I,s:I,s:I}", "users", out, "total", (json_int_t) n,
                             "page", (json_int_t) page, "page_size", (json_int_t) size,
                             "total_pages", (json_int_t) ((n + (size_t) size - 1) / (size_t) size));
    mg_keys_answer(r, body, 0);
    json_decref(body);
}

/* ---- budgets: the columns of LiteLLM_BudgetTable ---- */

/* The budget fields of a body into set; answers and returns false on a bad one.  style_detail:
 * /budget/... answer FastAPI's {"detail": ...}; /customer/... a ProxyException. */
static bool
mg_kb_fields(mg_request_t *r, json_t *b, json_t *set, bool style_detail)
{
    bool nset;
    double d;
    static const char *const nums[] = {"max_budget", "soft_budget", NULL};
    for (const char *const *n = nums; *n; n++) {
        if (json_object_get(b, *n) == NULL) {
            continue;
        }
        if (!mg_keys_f_num(r, b, *n, &nset, &d)) {
            return false;
        }
        if (nset && d < 0) {
            if (style_detail) {
                mg_keys_detail(r, 400, "%s must be a non-negative finite number. Received: %s", *n,
                               mg_keys_pyfloat(r, d));
            } else {
                mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "%s must be a non-negative finite "
                                                              "number. Received: %s", *n,
                                  mg_keys_pyfloat(r, d));
            }
            return false;
        }
        json_object_set_new(set, *n, nset ? json_real(d) : json_null());
    }
    static const char *const ints[] = {"max_parallel_requests", "tpm_limit", "rpm_limit", NULL};
    for (const char *const *n = ints; *n; n++) {
        if (json_object_get(b, *n) == NULL) {
            continue;
        }
        int64_t v;
        if (!mg_keys_f_int(r, b, *n, &nset, &v)) {
            return false;
        }
        if (nset && v < 0) {
            mg_keys_detail(r, 400, "%s must be >= 0. Received: %lld", *n, (long long) v);
            return false;
        }
        json_object_set_new(set, *n, nset ? json_integer(v) : json_null());
    }
    json_t *o = NULL;
    if (!mg_keys_f_obj(r, b, "model_max_budget", &o)) {
        return false;
    }
    if (o != NULL) {
        json_object_set(set, "model_max_budget", o);
    }
    const char *s = NULL;
    if (!mg_keys_f_str(r, b, "budget_reset_at", &s)) {
        return false;
    }
    int64_t at = 0;
    if (s != NULL && mg_auth_parse_time(s, &at) != MG_OK) {
        mg_keys_422(r, "budget_reset_at", "Input should be a valid datetime");
        return false;
    }
    if (s != NULL) {
        char iso[48];
        mg_auth_fmt_time(at, iso, sizeof(iso));
        json_object_set_new(set, "budget_reset_at", json_string(iso));
    }
    s = NULL;
    if (!mg_keys_f_str(r, b, "budget_duration", &s)) {
        return false;
    }
    if (s != NULL) {
        int64_t ms;
        if (!mg_keys_duration(r, "budget_duration", s, &ms)) {
            return false;
        }
        json_object_set_new(set, "budget_duration", json_string(s));
        if (json_object_get(set, "budget_reset_at") == NULL) {
            char iso[48];
            mg_auth_fmt_time(mg_keys_now_ms() + ms, iso, sizeof(iso));
            json_object_set_new(set, "budget_reset_at", json_string(iso));
        }
    } else if (json_object_get(b, "budget_duration") != NULL) {
        json_object_set_new(set, "budget_duration", json_null());
    }
    return true;
}

static json_t *
mg_kb_row_new(const char *id, json_t *set, const char *by)
{
    json_t *row = json_pack("{s:s,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:[],s:s,s:s}", "budget_id", id,
                            "max_budget", "soft_budget", "max_parallel_requests", "tpm_limit",
                            "rpm_limit", "model_max_budget", "budget_duration", "budget_reset_at",
                            "allowed_models", "created_by", by, "updated_by", by);
    json_object_update(row, set);
    return row;
}

/* ---- /customer/... ---- */

static json_t *
mg_kc_view(const mg_auth_t *a, json_t *row, json_t *budget, bool live)
{
    const char *id = json_string_value(json_object_get(row, "user_id"));
    json_t *v = mg_keys_row_view(row, MG_ENT_END_USER, live ? id : NULL);
    json_object_set_new(v, "litellm_budget_table", budget != NULL ? json_deep_copy(budget)
                                                                  : mg_keys_budget_view(a, row));
    json_object_set_new(v, "object_permission", json_null());
    return v;
}

static void
mg_kc_done(mg_request_t *r, mg_keys_op_t *op)
{
    /* the end user's row is the last step's; its budget row the one before (if any) */
    size_t n = json_array_size(op->rows);
    json_t *row = mg_keys_op_row(op, n - 1);
    json_t *bud = n > 1 ? mg_keys_op_row(op, n - 2) : NULL;
    const mg_auth_t *a = r->gw->snap != NULL ? r->gw->snap->auth : mg_keys_auth(r);
    json_t *v = mg_kc_view(a, row, bud, true);
    mg_keys_answer(r, v, op->version);
    json_decref(v);
}

/* The end user's own fields (not its budget's). */
static bool
mg_kc_fields(mg_request_t *r, json_t *b, json_t *set)
{
    const char *s;
    static const char *const strs[] = {"alias", "allowed_model_region", "default_model", NULL};
    for (const char *const *n = strs; *n; n++) {
        s = NULL;
        if (!mg_keys_f_str(r, b, *n, &s)) {
            return false;
        }
        if (s != NULL) {
            json_object_set_new(set, *n, json_string(s));
        }
    }
    const char *reg = json_string_value(json_object_get(set, "allowed_model_region"));
    if (reg != NULL && strcmp(reg, "eu") != 0 && strcmp(reg, "us") != 0) {
        mg_keys_422(r, "allowed_model_region", "Input should be 'eu' or 'us'");
        return false;
    }
    const char *dm = json_string_value(json_object_get(set, "default_model"));
    if (dm != NULL && mg_registry_group(r->snap, dm, strlen(dm)) == NULL) {
        mg_keys_fail_repr(r, 422, MG_KU_ISE, "error", "Default Model not on proxy. Configure via "
                                                      "`/model/new` or config.yaml. "
                                                      "Default_model=%s", dm);
        return false;
    }
    bool nset, bv;
    if (!mg_keys_f_bool(r, b, "blocked", &nset, &bv)) {
        return false;
    }
    if (nset) {
        json_object_set_new(set, "blocked", json_boolean(bv));
    }
    double d;
    if (!mg_keys_f_num(r, b, "spend", &nset, &d)) {
        return false;
    }
    if (nset && d != 0) {
        if (d < 0) {
            mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "spend must be >= 0. Received: %s",
                              mg_keys_pyfloat(r, d));
            return false;
        }
        json_object_set_new(set, "spend", json_real(d));
    }
    json_t *md = NULL;
    if (!mg_keys_f_obj(r, b, "metadata", &md)) {
        return false;
    }
    if (md != NULL && json_object_size(md) > 0) {
        json_object_set(set, "metadata", md);
    }
    if (mg_keys_has(b, "object_permission")) {
        mg_keys_fail(r, 400, MG_KU_ISE, "object_permission", "moongate: object_permission on a "
                                                             "customer is not implemented; "
                                                             "nothing was changed");
        return false;
    }
    return true;
}

void
mg_keys_customer_new(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *uid = NULL, *bid = NULL;
    if (!mg_keys_f_str(r, b, "user_id", &uid) || !mg_keys_f_str(r, b, "budget_id", &bid)) {
        return;
    }
    if (uid == NULL) {
        mg_keys_422(r, "user_id", "Field required");
        return;
    }
    if (mg_auth_end_user(a, uid) != NULL) {
        mg_keys_fail(r, 400, "bad_request", "user_id", "Customer already exists, passed "
                                                       "user_id=%s. Please pass a new user_id.",
                     uid);
        return;
    }
    json_t *set = json_object(), *bset = json_object();
    if (!mg_kc_fields(r, b, set) || !mg_kb_fields(r, b, bset, false)) {
        json_decref(set);
        json_decref(bset);
        return;
    }
    if (bid != NULL && mg_auth_budget_row(a, bid) == NULL && json_object_size(bset) == 0) {
        json_decref(set);
        json_decref(bset);
        mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "Budget not found, passed budget_id=%s",
                          bid);
        return;
    }
    const char *by = c.user_id != NULL ? c.user_id : MG_KEYS_ADMIN_NAME;
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kc_done);
    json_t *row = json_pack("{s:s,s:n,s:f,s:n,s:n,s:n,s:b}", "user_id", uid, "alias", "spend", 0.0,
                            "allowed_model_region", "default_model", "budget_id", "blocked", 0);
    json_object_update(row, set);
    json_decref(set);
    if (json_object_size(bset) > 0) {
        /* LiteLLM's new_budget_request: the limits go in a budget row of the customer's */
        char nb[37];
        mg_uuid4(nb);
        mg_keys_op_add(op, mg_keys_m_put("budget", nb, mg_kb_row_new(nb, bset, by), true));
        json_object_set_new(row, "budget_id", json_string(nb));
    } else if (bid != NULL) {
        json_object_set_new(row, "budget_id", json_string(bid));
    }
    json_decref(bset);
    mg_keys_op_add(op, mg_keys_m_put("end_user", uid, row, true));
    mg_keys_op_run(op);
}

void
mg_keys_customer_update(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *uid = NULL, *bid = NULL;
    if (!mg_keys_f_str(r, b, "user_id", &uid) || !mg_keys_f_str(r, b, "budget_id", &bid)) {
        return;
    }
    const mg_enduser_t *e = uid != NULL ? mg_auth_end_user(a, uid) : NULL;
    if (e == NULL) {
        mg_keys_fail(r, 404, "not_found", "user_id", "End User Id=%s does not exist in db",
                     uid != NULL ? uid : "None");
        return;
    }
    json_t *set = json_object(), *bset = json_object();
    if (!mg_kc_fields(r, b, set) || !mg_kb_fields(r, b, bset, false)) {
        json_decref(set);
        json_decref(bset);
        return;
    }
    /* LiteLLM skips 0, [] and {} on /customer/update */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(bset, tmp, k, v) {
        if (json_is_null(v) || (json_is_number(v) && json_number_value(v) == 0) ||
            (json_is_object(v) && json_object_size(v) == 0)) {
            json_object_del(bset, k);
        }
    }
    if (bid != NULL) {
        if (mg_auth_budget_row(a, bid) == NULL) {
            json_decref(set);
            json_decref(bset);
            mg_keys_fail_repr(r, 400, MG_KU_ISE, "error", "Budget not found, passed budget_id=%s",
                              bid);
            return;
        }
        json_object_set_new(set, "budget_id", json_string(bid));
    }
    if (json_object_get(set, "spend") != NULL) {
        mg_keys_mark_spend_set(set, e->row);
    }
    const char *by = c.user_id != NULL ? c.user_id : MG_KEYS_ADMIN_NAME;
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kc_done);
    const char *cur_bid = json_string_value(json_object_get(e->row, "budget_id"));
    if (json_object_size(bset) > 0) {
        if (cur_bid != NULL && bid == NULL && mg_auth_budget_row(a, cur_bid) != NULL) {
            json_object_set_new(bset, "updated_by", json_string(by));
            mg_keys_op_add(op, mg_keys_m_patch("budget", cur_bid, json_incref(bset), NULL));
        } else {
            char nb[37];
            mg_uuid4(nb);
            mg_keys_op_add(op, mg_keys_m_put("budget", nb, mg_kb_row_new(nb, bset, by), true));
            json_object_set_new(set, "budget_id", json_string(nb));
        }
    }
    json_decref(bset);
    mg_keys_op_add(op, mg_keys_m_patch("end_user", uid, set, NULL));
    mg_keys_op_run(op);
}

static void
mg_kc_delete_done(mg_request_t *r, mg_keys_op_t *op)
{
    mg_keys_answer(r, json_object_get(op->ctx, "answer"), op->version);
}

void
mg_keys_customer_delete(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *ids = NULL;
    if (!mg_keys_f_strarr(r, b, "user_ids", &ids)) {
        return;
    }
    if (ids == NULL || json_array_size(ids) == 0) {
        mg_keys_fail(r, 500, MG_KU_ISE, NULL, "user_id is required, passed user_id = %s",
                     ids == NULL ? "None" : "[]");
        return;
    }
    mg_buf_t miss = MG_BUF_INIT;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (mg_auth_end_user(a, json_string_value(v)) == NULL) {
            mg_buf_printf(&miss, "%s%s", mg_buf_len(&miss) ? ", " : "", json_string_value(v));
        }
    }
    if (mg_buf_len(&miss) > 0) {
        mg_keys_fail(r, 404, "not_found", "user_ids", "End User Id(s)=%s do not exist in db",
                     mg_buf_cstr(&miss));
        mg_buf_free(&miss);
        return;
    }
    mg_buf_free(&miss);
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kc_delete_done);
    char *msg = mg_arena_printf(r->arena, "Successfully deleted customers with ids: %s",
                                mg_keys_pylist(r, ids));
    json_object_set_new(op->ctx, "answer", json_pack("{s:I,s:s}", "deleted_customers",
                                                     (json_int_t) json_array_size(ids), "message",
                                                     msg));
    mg_keys_op_add(op, mg_keys_m_delete("end_user", json_deep_copy(ids)));
    mg_keys_op_run(op);
}

void
mg_keys_customer_info(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    const char *id = mg_keys_query(r, "end_user_id");
    if (id == NULL) {
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s}]", "type", "missing", "loc", "query",
                                       "end_user_id", "msg", "Field required"));
        return;
    }
    const mg_enduser_t *e = mg_auth_end_user(a, id);
    if (e == NULL) {
        mg_keys_fail(r, 404, "not_found", "end_user_id", "End User Id=%s does not exist in db", id);
        return;
    }
    json_t *v = mg_kc_view(a, e->row, NULL, true);
    mg_keys_answer(r, v, 0);
    json_decref(v);
}

void
mg_keys_customer_list(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *out = json_array();
    for (size_t i = 0; i < a->nend_users; i++) {
        json_array_append_new(out, mg_kc_view(a, a->end_users[i].row, NULL, false));
    }
    mg_keys_answer(r, out, 0);
    json_decref(out);
}

static void
mg_kc_block_done(mg_request_t *r, mg_keys_op_t *op)
{
    const mg_auth_t *a = r->gw->snap != NULL ? r->gw->snap->auth : mg_keys_auth(r);
    json_t *rows = json_array();
    for (size_t i = 0; i < json_array_size(op->rows); i++) {
        json_t *row = mg_keys_op_row(op, i);
        if (row != NULL) {
            json_array_append_new(rows, mg_kc_view(a, row, NULL, false));
        }
    }
    const char *field = json_string_value(json_object_get(op->ctx, "field"));
    json_t *body = json_pack("{s:o}", field, rows);
    mg_keys_answer(r, body, op->version);
    json_decref(body);
}

static void
mg_kc_block(mg_request_t *r, json_t *b, bool block)
{
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *ids = NULL;
    if (!mg_keys_f_strarr(r, b, "user_ids", &ids)) {
        return;
    }
    if (ids == NULL) {
        mg_keys_422(r, "user_ids", "Field required");
        return;
    }
    size_t i;
    json_t *v;
    if (!block) {
        json_array_foreach(ids, i, v) {
            if (mg_auth_end_user(a, json_string_value(v)) == NULL) {
                mg_keys_fail(r, 404, "not_found", "user_ids", "End User Id=%s does not exist in db",
                             json_string_value(v));
                return;
            }
        }
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kc_block_done);
    json_object_set_new(op->ctx, "field", json_string(block ? "blocked_users" : "unblocked_users"));
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        if (mg_auth_end_user(a, id) != NULL) {
            mg_keys_op_add(op, mg_keys_m_patch("end_user", id, json_pack("{s:b}", "blocked", block),
                                               NULL));
        } else {
            /* LiteLLM's upsert: blocking an unknown end user creates it, blocked */
            mg_keys_op_add(op, mg_keys_m_put("end_user", id,
                                             json_pack("{s:s,s:n,s:f,s:n,s:n,s:n,s:b}", "user_id",
                                                       id, "alias", "spend", 0.0,
                                                       "allowed_model_region", "default_model",
                                                       "budget_id", "blocked", 1),
                                             false));
        }
    }
    mg_keys_op_run(op);
}

void
mg_keys_customer_block(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kc_block(r, b, true);
}

void
mg_keys_customer_unblock(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kc_block(r, b, false);
}

/* ---- /budget/... ---- */

static void
mg_kbu_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *answer = json_object_get(op->ctx, "answer"); /* a deleted row */
    mg_keys_answer(r, answer != NULL ? answer : mg_keys_op_row(op, 0), op->version);
}

void
mg_keys_budget_new(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *bid = NULL;
    if (!mg_keys_f_str(r, b, "budget_id", &bid)) {
        return;
    }
    char uuid[37];
    if (bid == NULL || bid[0] == '\0') {
        mg_uuid4(uuid);
        bid = uuid;
    } else if (mg_auth_budget_row(a, bid) != NULL) {
        mg_keys_detail(r, 400, "Budget with id '%s' already exists.", bid);
        return;
    }
    json_t *set = json_object();
    if (!mg_kb_fields(r, b, set, true)) {
        json_decref(set);
        return;
    }
    json_t *row = mg_kb_row_new(bid, set, c.user_id != NULL ? c.user_id : MG_KEYS_ADMIN_NAME);
    json_decref(set);
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kbu_done);
    mg_keys_op_add(op, mg_keys_m_put("budget", bid, row, true));
    mg_keys_op_run(op);
}

void
mg_keys_budget_update(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *bid = NULL;
    if (!mg_keys_f_str(r, b, "budget_id", &bid)) {
        return;
    }
    if (bid == NULL) {
        mg_keys_detail(r, 400, "budget_id is required");
        return;
    }
    if (mg_auth_budget_row(a, bid) == NULL) {
        mg_keys_detail(r, 404, "Budget not found, passed budget_id=%s", bid);
        return;
    }
    json_t *set = json_object();
    if (!mg_kb_fields(r, b, set, true)) {
        json_decref(set);
        return;
    }
    json_object_set_new(set, "updated_by", json_string(c.user_id != NULL ? c.user_id
                                                                         : MG_KEYS_ADMIN_NAME));
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kbu_done);
    mg_keys_op_add(op, mg_keys_m_patch("budget", bid, set, NULL));
    mg_keys_op_run(op);
}

void
mg_keys_budget_delete(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    const char *bid = NULL;
    if (!mg_keys_f_str(r, b, "id", &bid)) {
        return;
    }
    if (bid == NULL) {
        mg_keys_422(r, "id", "Field required");
        return;
    }
    json_t *row = mg_auth_budget_row(a, bid);
    if (row == NULL) {
        mg_keys_detail(r, 404, "Budget not found, passed id=%s", bid);
        return;
    }
    /* LiteLLM's foreign keys: a budget in use is not deleted */
    static const char *const tables[] = {"key", "team", "end_user", "org", NULL};
    for (const char *const *t = tables; *t; t++) {
        const char *id;
        json_t *v;
        json_object_foreach(json_object_get(a->idents, *t), id, v) {
            const char *vb = json_string_value(json_object_get(v, "budget_id"));
            if (vb != NULL && strcmp(vb, bid) == 0) {
                mg_keys_detail(r, 400, "Budget %s is used by %s %.16s%s: change that first", bid,
                               *t, id, strlen(id) > 16 ? "..." : "");
                return;
            }
        }
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kbu_done);
    json_object_set(op->ctx, "answer", row);
    mg_keys_op_add(op, mg_keys_m_delete("budget", json_pack("[s]", bid)));
    mg_keys_op_run(op);
}

void
mg_keys_budget_info(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *ids = NULL;
    if (!mg_keys_f_strarr(r, b, "budgets", &ids)) {
        return;
    }
    if (ids == NULL) {
        mg_keys_422(r, "budgets", "Field required");
        return;
    }
    if (json_array_size(ids) == 0) {
        mg_keys_detail(r, 400, "Specify list of budget id's to query. Passed in=[]");
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        json_t *row = mg_auth_budget_row(a, json_string_value(v));
        if (row != NULL) {
            json_array_append(out, row);
        }
    }
    mg_keys_answer(r, out, 0);
    json_decref(out);
}

void
mg_keys_budget_list(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *out = json_array();
    const char *id;
    json_t *v;
    json_object_foreach(json_object_get(a->idents, "budget"), id, v) {
        json_array_append(out, v);
    }
    mg_keys_answer(r, out, 0);
    json_decref(out);
}
