/*
 * mg_keys_team.c -- /team/new, /team/update, /team/delete, /team/info, /team/list,
 * /team/member_add, /team/member_delete, /team/block, /team/unblock: LiteLLM's
 * LiteLLM_TeamTable rows, and the teams column of the members' LiteLLM_UserTable rows.
 *
 * Owns nothing past a call.  Membership lives in two places, as in LiteLLM: the team's
 * members_with_roles and each user's teams; a change writes the team first, then the users
 * (rows of users that do not exist yet are created, as LiteLLM's upsert does).
 */
#include "mg_keys_int.h"

#include "mg_keyauth.h"

#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_KT_ISE "internal_server_error"

/* ---- helpers ---- */

/* The view of a team row: live spend. */
static json_t *
mg_kt_view(json_t *row, bool live)
{
    const char *id = json_string_value(json_object_get(row, "team_id"));
    json_t *v = mg_keys_row_view(row, MG_ENT_TEAM, live ? id : NULL);
    if (json_object_get(v, "litellm_model_table") == NULL) {
        json_object_set_new(v, "litellm_model_table", json_null());
    }
    return v;
}

/* Python's repr of members_with_roles (LiteLLM's "Existing members=[Member(...)]"). */
static const char *
mg_kt_members_repr(mg_request_t *r, json_t *members)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, "[", 1);
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        const char *uid = json_string_value(json_object_get(m, "user_id"));
        const char *em = json_string_value(json_object_get(m, "user_email"));
        const char *role = json_string_value(json_object_get(m, "role"));
        mg_buf_printf(&b, "%sMember(user_id=", i ? ", " : "");
        mg_buf_printf(&b, uid ? "'%s'" : "None", uid);
        mg_buf_append_str(&b, ", user_email=");
        mg_buf_printf(&b, em ? "'%s'" : "None", em);
        mg_buf_printf(&b, ", role='%s')", role ? role : "user");
    }
    mg_buf_append(&b, "]", 1);
    const char *s = mg_arena_strdup(r->arena, mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* One member of members_with_roles from the body (role admin|user, user_id and/or email). */
static json_t *
mg_kt_member(mg_request_t *r, json_t *m, const char *field)
{
    if (!json_is_object(m)) {
        mg_keys_422(r, field, "Input should be a valid dictionary or instance of Member");
        return NULL;
    }
    json_t *role = json_object_get(m, "role");
    json_t *uid = json_object_get(m, "user_id"), *em = json_object_get(m, "user_email");
    const char *rs = json_is_string(role) ? json_string_value(role) : NULL;
    if (rs == NULL || (strcmp(rs, "admin") != 0 && strcmp(rs, "user") != 0)) {
        mg_keys_422(r, field, "Input should be 'admin' or 'user'");
        return NULL;
    }
    if ((uid != NULL && !json_is_null(uid) && !json_is_string(uid)) ||
        (em != NULL && !json_is_null(em) && !json_is_string(em))) {
        mg_keys_422(r, field, "user_id and user_email should be strings");
        return NULL;
    }
    if (!json_is_string(uid) && !json_is_string(em)) {
        mg_keys_422(r, field, "Value error, Either user_id or user_email must be provided");
        return NULL;
    }
    return json_pack("{s:o,s:o,s:s}", "user_id", json_is_string(uid) ? json_incref(uid)
                                                                      : json_null(),
                     "user_email", json_is_string(em) ? json_incref(em) : json_null(), "role", rs);
}

/* The user with this email (case-insensitive), or NULL. */
static const mg_user_t *
mg_kt_user_by_email(const mg_auth_t *a, const char *email)
{
    for (size_t i = 0; email != NULL && i < a->nusers; i++) {
        if (a->users[i].email != NULL && strcasecmp(a->users[i].email, email) == 0) {
            return &a->users[i];
        }
    }
    return NULL;
}

/* Adds the step that puts team_id into a user's teams (creating the user row if needed). */
static void
mg_kt_user_join(mg_keys_op_t *op, const mg_auth_t *a, const char *uid, const char *email,
                const char *team_id)
{
    const mg_user_t *u = mg_auth_user(a, uid);
    if (u != NULL) {
        json_t *teams = json_is_array(u->teams) ? json_deep_copy(u->teams) : json_array();
        if (!mg_keys_str_in_list(teams, team_id)) {
            json_array_append_new(teams, json_string(team_id));
        }
        mg_keys_op_add(op, mg_keys_m_patch("user", uid, json_pack("{s:o}", "teams", teams), NULL));
        return;
    }
    json_t *row = json_pack("{s:s,s:o,s:[s],s:n,s:f,s:[],s:{},s:[],s:{},s:{}}", "user_id", uid,
                            "user_email", email != NULL ? json_string(email) : json_null(), "teams",
                            team_id, "user_role", "spend", 0.0, "models", "metadata",
                            "allowed_cache_controls", "model_spend", "model_max_budget");
    mg_keys_op_add(op, mg_keys_m_put("user", uid, row, true));
}

/* Adds the step that takes team_id out of a user's teams (if the user exists). */
static void
mg_kt_user_leave(mg_keys_op_t *op, const mg_auth_t *a, const char *uid, const char *team_id)
{
    const mg_user_t *u = mg_auth_user(a, uid);
    if (u == NULL || !mg_keys_str_in_list(u->teams, team_id)) {
        return;
    }
    json_t *teams = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(u->teams, i, v) {
        if (!json_is_string(v) || strcmp(json_string_value(v), team_id) != 0) {
            json_array_append(teams, v);
        }
    }
    mg_keys_op_add(op, mg_keys_m_patch("user", uid, json_pack("{s:o}", "teams", teams), NULL));
}

/*
 * The team fields of a body into set (columns), for /team/new (cur NULL) and /team/update.
 * Answers and returns false on a bad field.
 */
static bool
mg_kt_fields(mg_request_t *r, json_t *b, json_t *cur, json_t *set, bool update)
{
    const char *s = NULL;
    static const char *const strs[] = {"team_alias", "organization_id", NULL};
    for (const char *const *n = strs; *n; n++) {
        if (json_object_get(b, *n) == NULL) {
            continue;
        }
        s = NULL;
        if (!mg_keys_f_str(r, b, *n, &s)) {
            return false;
        }
        json_object_set_new(set, *n, s != NULL ? json_string(s) : json_null());
    }
    const char *oid = json_string_value(json_object_get(set, "organization_id"));
    if (oid != NULL && mg_auth_org(mg_keys_auth(r), oid) == NULL) {
        mg_keys_fail_repr(r, 400, MG_KT_ISE, "error", "Organization not found for "
                                                      "organization_id=%s", oid);
        return false;
    }
    bool nset;
    double d;
    static const char *const nums[] = {"max_budget", "soft_budget", "spend", NULL};
    for (const char *const *n = nums; *n; n++) {
        if (json_object_get(b, *n) == NULL) {
            continue;
        }
        if (!mg_keys_f_num(r, b, *n, &nset, &d)) {
            return false;
        }
        if (nset && d < 0) {
            mg_keys_fail_repr(r, 400, MG_KT_ISE, "error", "%s cannot be negative. Received: %s",
                              *n, mg_keys_pyfloat(r, d));
            return false;
        }
        if (strcmp(*n, "spend") == 0 && !nset) {
            continue;
        }
        json_object_set_new(set, *n, nset ? json_real(d) : json_null());
    }
    static const char *const ints[] = {"tpm_limit", "rpm_limit", "max_parallel_requests", NULL};
    for (const char *const *n = ints; *n; n++) {
        if (json_object_get(b, *n) == NULL) {
            continue;
        }
        int64_t v;
        if (!mg_keys_f_int(r, b, *n, &nset, &v)) {
            return false;
        }
        if (nset && v < 0) {
            mg_keys_fail_repr(r, 400, MG_KT_ISE, "error", "%s cannot be negative. Received: %lld",
                              *n, (long long) v);
            return false;
        }
        json_object_set_new(set, *n, nset ? json_integer(v) : json_null());
    }
    if (json_object_get(b, "budget_duration") != NULL) {
        s = NULL;
        if (!mg_keys_f_str(r, b, "budget_duration", &s)) {
            return false;
        }
        if (s == NULL) {
            json_object_set_new(set, "budget_duration", json_null());
            json_object_set_new(set, "budget_reset_at", json_null());
        } else {
            int64_t ms;
            if (!mg_keys_duration(r, "budget_duration", s, &ms)) {
                return false;
            }
            char iso[48];
            mg_auth_fmt_time(mg_keys_now_ms() + ms, iso, sizeof(iso));
            json_object_set_new(set, "budget_duration", json_string(s));
            json_object_set_new(set, "budget_reset_at", json_string(iso));
        }
    }
    json_t *o = NULL;
    if (!mg_keys_f_strarr(r, b, "models", &o)) {
        return false;
    }
    if (o != NULL) {
        json_object_set(set, "models", o);
    }
    o = NULL;
    if (!mg_keys_f_obj(r, b, "model_max_budget", &o)) {
        return false;
    }
    if (o != NULL) {
        json_object_set(set, "model_max_budget", o);
    }
    bool bv;
    if (!mg_keys_f_bool(r, b, "blocked", &nset, &bv)) {
        return false;
    }
    if (nset) {
        json_object_set_new(set, "blocked", json_boolean(bv));
    }
    static const char *const unsupported[] = {"model_aliases", "guardrails", "object_permission",
                                              "router_settings", "team_member_permissions",
                                              "team_member_budget", "team_member_rpm_limit",
                                              "team_member_tpm_limit", "policies", "prompts",
                                              "allowed_passthrough_routes", NULL};
    for (const char *const *n = unsupported; *n; n++) {
        json_t *v = json_object_get(b, *n);
        if (v != NULL && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0) &&
            !(json_is_object(v) && json_object_size(v) == 0)) {
            mg_keys_fail(r, 400, MG_KT_ISE, *n, "moongate: %s on a team is not implemented; the "
                                                "team was not changed", *n);
            return false;
        }
    }
    /* metadata (tags folded in, LiteLLM's metadata fields) */
    json_t *md = NULL;
    if (!mg_keys_f_obj(r, b, "metadata", &md)) {
        return false;
    }
    json_t *tags = NULL;
    if (!mg_keys_f_strarr(r, b, "tags", &tags)) {
        return false;
    }
    json_t *curmd = cur != NULL ? json_object_get(cur, "metadata") : NULL;
    if (md != NULL || tags != NULL || !update) {
        json_t *nmd = md != NULL ? json_deep_copy(md)
                      : json_is_object(curmd) ? json_deep_copy(curmd)
                                              : json_object();
        json_object_del(nmd, "moongate_spend_epoch");
        json_t *se = json_object_get(curmd, "moongate_spend_epoch");
        if (se != NULL) {
            json_object_set(nmd, "moongate_spend_epoch", se);
        }
        if (tags != NULL) {
            json_object_set(nmd, "tags", tags);
        }
        json_object_set_new(set, "metadata", nmd);
    }
    if (json_object_get(set, "spend") != NULL) {
        mg_keys_mark_spend_set(set, cur);
    }
    return true;
}

/* ---- /team/new ---- */

static void
mg_kt_row_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *v = mg_kt_view(mg_keys_op_row(op, 0), true);
    mg_keys_answer(r, v, op->version);
    json_decref(v);
}

void
mg_keys_team_new(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *tid = NULL;
    if (!mg_keys_f_str(r, b, "team_id", &tid)) {
        return;
    }
    char uuid[37];
    if (tid == NULL || tid[0] == '\0') {
        mg_uuid4(uuid);
        tid = uuid;
    } else if (mg_auth_team(a, tid) != NULL) {
        mg_keys_fail_repr(r, 400, MG_KT_ISE, "error", "Team id = %s already exists. Please use a "
                                                      "different team id.", tid);
        return;
    }
    json_t *members = json_array();
    json_t *mw = json_object_get(b, "members_with_roles");
    if (mw != NULL && !json_is_null(mw) && !json_is_array(mw)) {
        json_decref(members);
        mg_keys_422(r, "members_with_roles", "Input should be a valid list");
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(mw, i, m) {
        json_t *mm = mg_kt_member(r, m, "members_with_roles");
        if (mm == NULL) {
            json_decref(members);
            return;
        }
        json_array_append_new(members, mm);
    }
    /* the creating user joins as an admin (LiteLLM) */
    if (c.user_id != NULL) {
        bool in = false;
        json_array_foreach(members, i, m) {
            const char *u = json_string_value(json_object_get(m, "user_id"));
            in = in || (u != NULL && strcmp(u, c.user_id) == 0);
        }
        if (!in) {
            json_array_append_new(members, json_pack("{s:s,s:n,s:s}", "user_id", c.user_id,
                                                     "user_email", "role", "admin"));
        }
    }
    /* members named only by email: the user with that email, or a new one */
    json_array_foreach(members, i, m) {
        if (json_is_string(json_object_get(m, "user_id"))) {
            continue;
        }
        const char *em = json_string_value(json_object_get(m, "user_email"));
        const mg_user_t *u = mg_kt_user_by_email(a, em);
        char nid[37];
        mg_uuid4(nid);
        json_object_set_new(m, "user_id", json_string(u != NULL ? u->id : nid));
    }
    json_t *set = json_object();
    if (!mg_kt_fields(r, b, NULL, set, false)) {
        json_decref(set);
        json_decref(members);
        return;
    }
    json_t *row = json_pack("{s:s,s:n,s:n,s:[],s:[],s:o,s:{},s:n,s:n,s:f,s:[],s:n,s:n,s:n,s:n,"
                            "s:n,s:b,s:{},s:{},s:[],s:n}",
                            "team_id", tid, "team_alias", "organization_id", "admins", "members",
                            "members_with_roles", members, "metadata", "max_budget",
                            "soft_budget", "spend", 0.0, "models", "max_parallel_requests",
                            "tpm_limit", "rpm_limit", "budget_duration", "budget_reset_at",
                            "blocked", 0, "model_spend", "model_max_budget",
                            "team_member_permissions", "model_id");
    json_object_update(row, set);
    json_decref(set);
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kt_row_done);
    mg_keys_op_add(op, mg_keys_m_put("team", tid, json_incref(row), true));
    json_array_foreach(json_object_get(row, "members_with_roles"), i, m) {
        mg_kt_user_join(op, a, json_string_value(json_object_get(m, "user_id")),
                        json_string_value(json_object_get(m, "user_email")), tid);
    }
    json_decref(row);
    mg_keys_op_run(op);
}

/* ---- /team/update, /team/block, /team/unblock ---- */

static void
mg_kt_update_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *row = mg_keys_op_row(op, 0);
    json_t *body = json_pack("{s:O,s:o}", "team_id", json_object_get(row, "team_id"), "data",
                             mg_kt_view(row, true));
    mg_keys_answer(r, body, op->version);
    json_decref(body);
}

void
mg_keys_team_update(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    const char *tid = NULL;
    if (!mg_keys_f_str(r, b, "team_id", &tid)) {
        return;
    }
    if (tid == NULL) {
        mg_keys_detail(r, 400, "No team id passed in");
        return;
    }
    const mg_team_t *t = mg_auth_team(a, tid);
    if (t == NULL) {
        mg_keys_detail(r, 404, "Team not found, passed team_id=%s", tid);
        return;
    }
    if (json_object_get(b, "members_with_roles") != NULL) {
        mg_keys_detail(r, 400, "members_with_roles can not be updated here: use "
                               "`/team/member_add` and `/team/member_delete`");
        return;
    }
    json_t *set = json_object();
    if (!mg_kt_fields(r, b, t->row, set, true)) {
        json_decref(set);
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kt_update_done);
    mg_keys_op_add(op, mg_keys_m_patch("team", tid, set, NULL));
    mg_keys_op_run(op);
}

static void
mg_kt_block(mg_request_t *r, json_t *b, bool block)
{
    const mg_auth_t *a = mg_keys_auth(r);
    const char *tid = NULL;
    if (!mg_keys_f_str(r, b, "team_id", &tid)) {
        return;
    }
    if (tid == NULL) {
        mg_keys_422(r, "team_id", "Field required");
        return;
    }
    if (mg_auth_team(a, tid) == NULL) {
        mg_keys_detail(r, 404, "Team not found, passed team_id=%s", tid);
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kt_row_done);
    mg_keys_op_add(op, mg_keys_m_patch("team", tid, json_pack("{s:b}", "blocked", block), NULL));
    mg_keys_op_run(op);
}

void
mg_keys_team_block(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kt_block(r, b, true);
}

void
mg_keys_team_unblock(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kt_block(r, b, false);
}

/* ---- /team/delete ---- */

static void
mg_kt_delete_done(mg_request_t *r, mg_keys_op_t *op)
{
    mg_keys_answer(r, json_object_get(op->ctx, "answer"), op->version);
}

void
mg_keys_team_delete(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *ids = NULL;
    if (!mg_keys_f_strarr(r, b, "team_ids", &ids)) {
        return;
    }
    if (ids == NULL || json_array_size(ids) == 0) {
        mg_keys_detail(r, 400, "No team id passed in");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (mg_auth_team(a, json_string_value(v)) == NULL) {
            mg_keys_detail(r, 404, "Team not found, passed team_id=%s", json_string_value(v));
            return;
        }
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kt_delete_done);
    /* the teams' keys first (LiteLLM deletes them): no key outlives its team's rights */
    mg_keys_op_delete_keys_of(op, a, ids, true);
    json_array_foreach(ids, i, v) {
        const mg_team_t *t = mg_auth_team(a, json_string_value(v));
        size_t j;
        json_t *m;
        json_array_foreach(t->members, j, m) {
            const char *uid = json_string_value(json_object_get(m, "user_id"));
            if (uid != NULL) {
                mg_kt_user_leave(op, a, uid, t->id);
            }
        }
    }
    mg_keys_op_add(op, mg_keys_m_delete("team", json_deep_copy(ids)));
    json_object_set_new(op->ctx, "answer", json_pack("{s:O}", "deleted_teams", ids));
    mg_keys_op_run(op);
}

/* ---- /team/info, /team/list ---- */

/* The keys of a team (rows with their hashes, live spend). */
static json_t *
mg_kt_keys(const mg_auth_t *a, const char *tid)
{
    json_t *out = json_array();
    for (size_t k = 0; k < a->nkeys; k++) {
        if (a->keys[k].team_id != NULL && strcmp(a->keys[k].team_id, tid) == 0) {
            json_array_append_new(out, mg_keys_row_view(a->keys[k].row, MG_ENT_KEY, NULL));
        }
    }
    return out;
}

void
mg_keys_team_info(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *tid = mg_keys_query(r, "team_id");
    if (tid == NULL) {
        mg_keys_fail_repr(r, 422, "auth_error", "message", "Malformed request. No team id passed "
                                                           "in.");
        return;
    }
    const mg_team_t *t = mg_auth_team(a, tid);
    if (t == NULL) {
        mg_keys_fail_repr(r, 404, "auth_error", "message", "Team not found, passed team id: %s.",
                          tid);
        return;
    }
    /* LiteLLM's validate_membership */
    bool ok = c.admin || c.viewer || (c.key != NULL && c.key->team == t) ||
              mg_keys_in_team(a, t, c.user_id, false);
    if (!ok) {
        mg_keys_fail_repr(r, 403, "auth_error", "error", "User=%s not authorized to access this "
                                                         "team=%s",
                          c.user_id != NULL ? c.user_id : "None", tid);
        return;
    }
    json_t *body = json_pack("{s:s,s:o,s:o,s:[]}", "team_id", tid, "team_info", mg_kt_view(t->row, true),
                             "keys", mg_kt_keys(a, tid), "team_memberships");
    mg_keys_answer(r, body, 0);
    json_decref(body);
}

static int
mg_kt_alias_cmp(const void *x, const void *y)
{
    const mg_team_t *a = *(const mg_team_t *const *) x, *b = *(const mg_team_t *const *) y;
    int c = strcmp(a->alias ? a->alias : "", b->alias ? b->alias : "");
    return c != 0 ? c : strcmp(a->id, b->id);
}

void
mg_keys_team_list(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *uid = mg_keys_query(r, "user_id");
    const char *org = mg_keys_query(r, "organization_id");
    /* LiteLLM's allowed_route_check_inside_route */
    if (!c.admin && !c.viewer && (uid == NULL || c.user_id == NULL || strcmp(uid, c.user_id) != 0)) {
        mg_keys_detail(r, 401, "Only admin users can query all teams/other teams. Your user "
                               "role=%s", c.role);
        return;
    }
    const mg_team_t **ts = mg_arena_calloc(r->arena, (a->nteams + 1) * sizeof(*ts));
    size_t n = 0;
    for (size_t i = 0; i < a->nteams; i++) {
        const mg_team_t *t = &a->teams[i];
        if (uid != NULL && !mg_keys_in_team(a, t, uid, false)) {
            continue;
        }
        if (org != NULL && (strcmp(org, "default_organization") == 0 ? t->org_id != NULL
                                                                      : t->org_id == NULL ||
                                                                            strcmp(t->org_id, org) != 0)) {
            continue;
        }
        ts[n++] = t;
    }
    qsort(ts, n, sizeof(*ts), mg_kt_alias_cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *v = mg_kt_view(ts[i]->row, false);
        json_object_set_new(v, "team_memberships", json_array());
        json_object_set_new(v, "keys", mg_kt_keys(a, ts[i]->id));
        json_array_append_new(out, v);
    }
    mg_keys_answer(r, out, 0);
    json_decref(out);
}

/* ---- /team/member_add, /team/member_delete ---- */

static void
mg_kt_member_add_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *v = mg_kt_view(mg_keys_op_row(op, 0), true);
    json_t *users = json_array();
    for (size_t i = 1; i < json_array_size(op->rows); i++) {
        json_t *u = mg_keys_op_row(op, i);
        if (u != NULL) {
            json_array_append_new(users, mg_keys_row_view(u, MG_ENT_USER, NULL));
        }
    }
    json_object_set_new(v, "updated_users", users);
    json_object_set_new(v, "updated_team_memberships", json_array());
    mg_keys_answer(r, v, op->version);
    json_decref(v);
}

void
mg_keys_team_member_add(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *tid = NULL;
    if (!mg_keys_f_str(r, b, "team_id", &tid)) {
        return;
    }
    if (tid == NULL) {
        mg_keys_detail(r, 400, "No team id passed in");
        return;
    }
    json_t *mem = json_object_get(b, "member");
    if (mem == NULL || json_is_null(mem)) {
        mg_keys_detail(r, 400, "No member/members passed in");
        return;
    }
    if (mg_keys_has(b, "max_budget_in_team")) {
        mg_keys_detail(r, 400, "moongate: max_budget_in_team (LiteLLM_TeamMembership budgets) is "
                               "not implemented; nobody was added");
        return;
    }
    const mg_team_t *t = mg_auth_team(a, tid);
    if (t == NULL) {
        mg_keys_detail(r, 404, "Team not found for team_id=%s", tid);
        return;
    }
    json_t *add = json_array();
    json_t *list = json_is_array(mem) ? mem : NULL;
    size_t i;
    json_t *m;
    if (list == NULL) {
        json_t *mm = mg_kt_member(r, mem, "member");
        if (mm == NULL) {
            json_decref(add);
            return;
        }
        json_array_append_new(add, mm);
    } else {
        json_array_foreach(list, i, m) {
            json_t *mm = mg_kt_member(r, m, "member");
            if (mm == NULL) {
                json_decref(add);
                return;
            }
            json_array_append_new(add, mm);
        }
    }
    /* resolve emails to users (a new user id when nobody has it) */
    json_array_foreach(add, i, m) {
        if (json_is_string(json_object_get(m, "user_id"))) {
            continue;
        }
        const mg_user_t *u = mg_kt_user_by_email(a, json_string_value(json_object_get(m, "user_email")));
        char nid[37];
        mg_uuid4(nid);
        json_object_set_new(m, "user_id", json_string(u != NULL ? u->id : nid));
    }
    json_array_foreach(add, i, m) {
        const char *uid = json_string_value(json_object_get(m, "user_id"));
        size_t j;
        json_t *e;
        json_array_foreach(t->members, j, e) {
            const char *eu = json_string_value(json_object_get(e, "user_id"));
            if (eu != NULL && strcmp(eu, uid) == 0) {
                const char *rep = mg_kt_members_repr(r, t->members);
                json_decref(add);
                mg_keys_detail(r, 400, "User=%s already in team. Existing members=%s", uid, rep);
                return;
            }
        }
    }
    if (!c.admin && !mg_keys_in_team(a, t, c.user_id, true)) {
        json_decref(add);
        mg_keys_detail(r, 403, "Call not allowed. User not proxy admin OR team admin. "
                               "route=/team/member_add, team_id=%s", tid);
        return;
    }
    json_t *members = json_is_array(t->members) ? json_deep_copy(t->members) : json_array();
    json_array_extend(members, add);
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kt_member_add_done);
    mg_keys_op_add(op, mg_keys_m_patch("team", tid, json_pack("{s:o}", "members_with_roles",
                                                              members), NULL));
    json_array_foreach(add, i, m) {
        mg_kt_user_join(op, a, json_string_value(json_object_get(m, "user_id")),
                        json_string_value(json_object_get(m, "user_email")), tid);
    }
    json_decref(add);
    mg_keys_op_run(op);
}

void
mg_keys_team_member_delete(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *tid = NULL, *uid = NULL, *email = NULL;
    if (!mg_keys_f_str(r, b, "team_id", &tid) || !mg_keys_f_str(r, b, "user_id", &uid) ||
        !mg_keys_f_str(r, b, "user_email", &email)) {
        return;
    }
    if (tid == NULL) {
        mg_keys_detail(r, 400, "No team id passed in");
        return;
    }
    if (uid == NULL && email == NULL) {
        mg_keys_detail(r, 400, "Either user_id or user_email needs to be passed in");
        return;
    }
    const mg_team_t *t = mg_auth_team(a, tid);
    if (t == NULL) {
        mg_keys_detail(r, 400, "Team id=%s does not exist in db", tid);
        return;
    }
    if (!c.admin && !mg_keys_in_team(a, t, c.user_id, true)) {
        mg_keys_detail(r, 403, "Call not allowed. User not proxy admin OR team admin. "
                               "route=/team/member_delete, team_id=%s", tid);
        return;
    }
    json_t *keep = json_array(), *gone = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(t->members, i, m) {
        const char *mu = json_string_value(json_object_get(m, "user_id"));
        const char *me = json_string_value(json_object_get(m, "user_email"));
        if ((uid != NULL && mu != NULL && strcmp(uid, mu) == 0) ||
            (uid == NULL && email != NULL && me != NULL && strcmp(email, me) == 0)) {
            if (mu != NULL) {
                json_array_append_new(gone, json_string(mu));
            }
            continue;
        }
        json_array_append(keep, m);
    }
    if (json_array_size(keep) == json_array_size(t->members)) {
        json_decref(keep);
        json_decref(gone);
        mg_keys_detail(r, 400, "User not found in team");
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kt_row_done);
    mg_keys_op_add(op, mg_keys_m_patch("team", tid, json_pack("{s:o}", "members_with_roles", keep),
                                       NULL));
    json_array_foreach(gone, i, m) {
        mg_kt_user_leave(op, a, json_string_value(m), tid);
    }
    json_decref(gone);
    mg_keys_op_run(op);
}
