/*
 * mg_keys.c -- the management routes' dispatch, who may call which route, and what the
 * route files share (see mg_keys.h, mg_keys_int.h).
 *
 * One table lists every route with its method and its access class; the dispatcher, the
 * "is this a route" answer and the role check all read it.  The role check is LiteLLM's
 * route check (RouteChecks.non_proxy_admin_allowed_routes_check): a proxy admin calls
 * everything, a proxy admin viewer reads everything and writes nothing (403), an internal
 * user calls the key routes and the info routes, an internal user viewer the info routes,
 * anything else is LiteLLM's 401 "Only proxy admin can be used to ...".  The handlers then
 * check ownership (their key, their team) as LiteLLM's endpoints do.
 *
 * Changes run through mg_keys_op_t: one store mutation after another, each committed with
 * read-your-writes (host.commit answers once every local worker applied the version).  The
 * op is owned by the request while it lives (r->keys_op) and by itself after the client went
 * away (mg_keys_abort); it frees itself after the last step.
 */
#include "mg_keys_int.h"

#include "mg_keyauth.h"

#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_limits.h"

#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the caller ---- */

void
mg_keys_caller(const mg_request_t *r, mg_keys_caller_t *c)
{
    memset(c, 0, sizeof(*c));
    c->admin = mg_ka_is_proxy_admin(r);
    c->role = r->who.role != NULL ? r->who.role : MG_ROLE_INTERNAL_USER;
    c->viewer = !c->admin && strcmp(c->role, MG_ROLE_PROXY_ADMIN_VIEWER) == 0;
    c->key = r->who.key;
    c->user = r->who.user;
    c->user_id = c->key != NULL ? c->key->user_id : NULL;
}

const mg_auth_t *
mg_keys_auth(const mg_request_t *r)
{
    return r->snap != NULL ? r->snap->auth : NULL;
}

bool
mg_keys_str_in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
            return true;
        }
    }
    return false;
}

void
mg_keys_op_delete_keys_of(mg_keys_op_t *op, const mg_auth_t *a, json_t *ids, bool by_team)
{
    json_t *tokens = json_array();
    for (size_t k = 0; k < a->nkeys; k++) {
        const char *owner = by_team ? a->keys[k].team_id : a->keys[k].user_id;
        if (owner != NULL && mg_keys_str_in_list(ids, owner)) {
            json_array_append_new(tokens, json_string(a->keys[k].token));
        }
    }
    if (json_array_size(tokens) > 0) {
        mg_keys_op_add(op, mg_keys_m_delete("key", tokens));
    } else {
        json_decref(tokens);
    }
}

bool
mg_keys_in_team(const mg_auth_t *a, const mg_team_t *t, const char *user_id, bool admin)
{
    if (t == NULL || user_id == NULL) {
        return false;
    }
    size_t i;
    json_t *m;
    json_array_foreach(t->members, i, m) {
        const char *uid = json_string_value(json_object_get(m, "user_id"));
        if (uid == NULL || strcmp(uid, user_id) != 0) {
            continue;
        }
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!admin || (role != NULL && strcmp(role, "admin") == 0)) {
            return true;
        }
    }
    if (mg_keys_str_in_list(t->admins, user_id)) {
        return true; /* older rows: an admins list */
    }
    if (admin) {
        return false;
    }
    const mg_user_t *u = mg_auth_user(a, user_id);
    return u != NULL && mg_keys_str_in_list(u->teams, t->id);
}

/* ---- answers ---- */

static void
mg_keys_vfail(mg_request_t *r, int status, const char *type, const char *param, const char *fmt,
              va_list ap)
{
    char *msg = mg_arena_vprintf(r->arena, fmt, ap);
    mg_buf_t t = MG_BUF_INIT, p = MG_BUF_INIT;
    mg_buf_json_str(&t, type, strlen(type));
    const char *pv = param != NULL ? param : "None";
    mg_buf_json_str(&p, pv, strlen(pv));
    mg_gw_error_raw(r, status, msg, mg_buf_cstr(&t), mg_buf_cstr(&p), NULL);
    mg_buf_free(&t);
    mg_buf_free(&p);
}

void
mg_keys_fail(mg_request_t *r, int status, const char *type, const char *param, const char *fmt,
             ...)
{
    va_list ap;
    va_start(ap, fmt);
    mg_keys_vfail(r, status, type, param, fmt, ap);
    va_end(ap);
}

/* Python's str() of {field: msg}. */
static char *
mg_keys_pydict(mg_request_t *r, const char *field, const char *msg)
{
    bool dq = strchr(msg, '\'') != NULL && strchr(msg, '"') == NULL;
    char q = dq ? '"' : '\'';
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_printf(&b, "{'%s': %c", field, q);
    for (const char *p = msg; *p; p++) {
        if (*p == q || *p == '\\') {
            mg_buf_append(&b, "\\", 1);
        }
        if (*p == '\n') {
            mg_buf_append_str(&b, "\\n");
            continue;
        }
        mg_buf_append(&b, p, 1);
    }
    mg_buf_printf(&b, "%c}", q);
    char *s = mg_arena_strdup(r->arena, mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

void
mg_keys_fail_repr(mg_request_t *r, int status, const char *type, const char *field,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mg_arena_vprintf(r->arena, fmt, ap);
    va_end(ap);
    mg_keys_fail(r, status, type, NULL, "%s", mg_keys_pydict(r, field, msg));
}

void
mg_keys_detail(mg_request_t *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mg_arena_vprintf(r->arena, fmt, ap);
    va_end(ap);
    r->gw->failures++;
    mg_gw_detail(r, status, json_pack("{s:s}", "error", msg));
}

void
mg_keys_422(mg_request_t *r, const char *field, const char *msg)
{
    r->gw->failures++;
    mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s}]", "type", "value_error", "loc", "body",
                                   field, "msg", msg));
}

/* Whether j holds a "metadata" object with one of moongate's own bookkeeping fields; with
 * drop, also removes them (j is then a copy of ours). */
static bool
mg_keys_stamps(json_t *j, bool drop, int depth)
{
    if (depth > 8) {
        return false; /* answers are rows in lists in objects: never deeper */
    }
    bool found = false;
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            found = mg_keys_stamps(v, drop, depth + 1) || found;
            if (found && !drop) {
                return true;
            }
        }
        return found;
    }
    json_object_foreach(j, k, v) {
        if (strcmp(k, "metadata") == 0 && json_is_object(v)) {
            found = found || json_object_get(v, "moongate_spend_epoch") != NULL ||
                    json_object_get(v, "moongate_spend_base") != NULL;
            if (drop) {
                json_object_del(v, "moongate_spend_epoch");
                json_object_del(v, "moongate_spend_base");
            }
        } else if (json_is_object(v) || json_is_array(v)) {
            found = mg_keys_stamps(v, drop, depth + 1) || found;
        }
        if (found && !drop) {
            return true;
        }
    }
    return found;
}

void
mg_keys_answer(mg_request_t *r, json_t *body, int64_t applied_version)
{
    /* the spend stamps (metadata.moongate_spend_epoch/_base) are moongate's bookkeeping, not
     * the caller's metadata: never shown (answers may borrow snapshot rows: scrub a copy) */
    json_t *shown = NULL;
    if (mg_keys_stamps(body, false, 0)) {
        shown = json_deep_copy(body);
        mg_keys_stamps(shown, true, 0);
        body = shown;
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(shown);
    char hdr[96] = "";
    if (applied_version > 0) {
        snprintf(hdr, sizeof(hdr), "x-moongate-applied-version: %lld\r\n",
                 (long long) applied_version);
    }
    mg_gw_send_body(r, 200, s, strlen(s), hdr[0] ? hdr : NULL);
    /* the body may hold a new key: leave no copy in freed memory */
    memset(s, 0, strlen(s));
    free(s);
}

/* ---- the request ---- */

json_t *
mg_keys_body(mg_request_t *r)
{
    if (r->hr->body_len == 0) {
        return json_object();
    }
    json_error_t je;
    json_t *j = json_loadb(r->hr->body, r->hr->body_len, 0, &je);
    if (j == NULL) {
        char *m = mg_arena_printf(r->arena, "JSON decode error: %s", je.text);
        mg_keys_422(r, "body", m);
        return NULL;
    }
    if (json_is_null(j)) {
        json_decref(j);
        return json_object();
    }
    if (!json_is_object(j)) {
        json_decref(j);
        mg_keys_422(r, "body", "Input should be a valid dictionary or object");
        return NULL;
    }
    return j;
}

static int
mg_keys_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

char *
mg_keys_query(mg_request_t *r, const char *name)
{
    const char *t = r->hr->head.target;
    size_t tl = r->hr->head.target_len;
    const char *q = memchr(t, '?', tl);
    if (q == NULL) {
        return NULL;
    }
    const char *p = q + 1, *end = t + tl;
    size_t nl = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *e = amp != NULL ? amp : end;
        if ((size_t) (e - p) >= nl + 1 && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            char *out = mg_arena_alloc(r->arena, (size_t) (e - v) + 1);
            size_t o = 0;
            for (const char *c = v; c < e; c++) {
                int hi, lo;
                if (*c == '%' && c + 2 < e &&
                    (hi = mg_keys_hexval(c[1])) >= 0 && (lo = mg_keys_hexval(c[2])) >= 0) {
                    out[o++] = (char) (hi * 16 + lo);
                    c += 2;
                } else if (*c == '+') {
                    out[o++] = ' ';
                } else {
                    out[o++] = *c;
                }
            }
            out[o] = '\0';
            return out;
        }
        p = e + 1;
    }
    return NULL;
}

bool
mg_keys_query_bool(mg_request_t *r, const char *name, bool dflt)
{
    const char *v = mg_keys_query(r, name);
    if (v == NULL) {
        return dflt;
    }
    return strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "1") == 0;
}

bool
mg_keys_has(json_t *b, const char *name)
{
    json_t *v = json_object_get(b, name);
    return v != NULL && !json_is_null(v);
}

bool
mg_keys_f_str(mg_request_t *r, json_t *b, const char *name, const char **out)
{
    json_t *v = json_object_get(b, name);
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (!json_is_string(v)) {
        mg_keys_422(r, name, "Input should be a valid string");
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool
mg_keys_f_num(mg_request_t *r, json_t *b, const char *name, bool *set, double *out)
{
    json_t *v = json_object_get(b, name);
    *set = false;
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (json_is_string(v) && json_string_length(v) == 0) {
        return true; /* LiteLLM reads max_budget: "" as None */
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        mg_keys_422(r, name, "Input should be a valid number");
        return false;
    }
    *set = true;
    *out = json_number_value(v);
    return true;
}

bool
mg_keys_f_int(mg_request_t *r, json_t *b, const char *name, bool *set, int64_t *out)
{
    json_t *v = json_object_get(b, name);
    *set = false;
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d != floor(d) || fabs(d) > 9.0e15) {
        mg_keys_422(r, name, "Input should be a valid integer");
        return false;
    }
    *set = true;
    *out = (int64_t) d;
    return true;
}

bool
mg_keys_f_bool(mg_request_t *r, json_t *b, const char *name, bool *set, bool *out)
{
    json_t *v = json_object_get(b, name);
    *set = false;
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (!json_is_boolean(v)) {
        mg_keys_422(r, name, "Input should be a valid boolean");
        return false;
    }
    *set = true;
    *out = json_is_true(v);
    return true;
}

bool
mg_keys_f_obj(mg_request_t *r, json_t *b, const char *name, json_t **out)
{
    json_t *v = json_object_get(b, name);
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (!json_is_object(v)) {
        mg_keys_422(r, name, "Input should be a valid dictionary");
        return false;
    }
    *out = v;
    return true;
}

bool
mg_keys_f_strarr(mg_request_t *r, json_t *b, const char *name, json_t **out)
{
    json_t *v = json_object_get(b, name);
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (!json_is_array(v)) {
        mg_keys_422(r, name, "Input should be a valid list");
        return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            mg_keys_422(r, name, "Input should be a list of strings");
            return false;
        }
    }
    *out = v;
    return true;
}

/* ---- changes ---- */

mg_keys_op_t *
mg_keys_op_new(mg_request_t *r, mg_keys_done_fn done)
{
    mg_keys_op_t *op = mg_xcalloc(1, sizeof(*op));
    op->gw = r->gw;
    op->r = r;
    op->steps = json_array();
    op->rows = json_array();
    op->done = done;
    op->ctx = json_object();
    return op;
}

void
mg_keys_op_add(mg_keys_op_t *op, json_t *mutation)
{
    json_array_append_new(op->steps, mutation);
}

json_t *
mg_keys_op_row(mg_keys_op_t *op, size_t i)
{
    json_t *v = json_array_get(op->rows, i);
    return json_is_object(v) ? v : NULL;
}

static void
mg_keys_op_free(mg_keys_op_t *op)
{
    json_decref(op->steps);
    json_decref(op->rows);
    json_decref(op->ctx);
    memset(op->secret, 0, sizeof(op->secret));
    free(op);
}

void
mg_keys_abort(mg_request_t *r)
{
    if (r->keys_op != NULL) {
        r->keys_op->r = NULL; /* the steps finish; nobody is told */
        r->keys_op = NULL;
    }
}

static void mg_keys_op_step(mg_keys_op_t *op);

static void
mg_keys_op_failed(mg_keys_op_t *op, const mg_err_t *err)
{
    mg_request_t *r = op->r;
    size_t total = json_array_size(op->steps);
    mg_log(MG_LOG_WARN, NULL, "management change %zu of %zu failed: %s", op->next + 1, total,
           err->msg);
    if (r == NULL) {
        mg_keys_op_free(op);
        return;
    }
    r->keys_op = NULL;
    r->state = MG_ATT_DONE;
    int st = err->status != 0 ? err->status : 500;
    const char *type = "internal_server_error";
    if (err->cls == MG_ERR_NO_ROUTE) {
        st = 404;
        type = "not_found_error";
    } else if (err->cls == MG_ERR_BAD_REQUEST) {
        st = 400;
        type = "bad_request_error";
    } else if (err->cls == MG_ERR_NOT_READY) {
        st = 503;
        type = "service_unavailable";
    } else if (st == 504) {
        type = "registry_lag";
    }
    const char *msg = err->msg;
    if (op->next > 0) {
        msg = mg_arena_printf(r->arena, "%s (%zu of the %zu changes of this call were committed "
                                        "before it)", err->msg, op->next, total);
    }
    mg_keys_op_free(op);
    mg_keys_fail(r, st, type, NULL, "%s", msg);
}

static void
mg_keys_op_committed(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    mg_keys_op_t *op = ud;
    if (rc != MG_OK) {
        mg_keys_op_failed(op, err);
        return;
    }
    json_array_append(op->rows, row != NULL ? row : json_null());
    op->version = version;
    op->next++;
    mg_keys_op_step(op);
}

static void
mg_keys_op_step(mg_keys_op_t *op)
{
    if (op->next < json_array_size(op->steps)) {
        json_t *m = json_array_get(op->steps, op->next);
        op->gw->host.commit(op->gw->host.host, m, mg_keys_op_committed, op);
        return;
    }
    mg_request_t *r = op->r;
    if (r != NULL) {
        r->keys_op = NULL;
        r->state = MG_ATT_DONE;
        op->done(r, op);
    }
    mg_keys_op_free(op);
}

void
mg_keys_op_run(mg_keys_op_t *op)
{
    mg_request_t *r = op->r;
    r->keys_op = op;
    r->state = MG_ATT_ASYNC;
    mg_keys_op_step(op);
}

json_t *
mg_keys_m_put(const char *table, const char *id, json_t *row, bool create)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:b}", "op", "ident_put", "table", table, "id", id, "row",
                     row, "create", create);
}

json_t *
mg_keys_m_patch(const char *table, const char *id, json_t *set, json_t *clear)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:o}", "op", "ident_patch", "table", table, "id", id,
                     "set", set, "clear", clear != NULL ? clear : json_array());
}

json_t *
mg_keys_m_delete(const char *table, json_t *ids)
{
    return json_pack("{s:s,s:s,s:o}", "op", "ident_delete", "table", table, "ids", ids);
}

void
mg_keys_wipe_key(json_t *v)
{
    json_t *k = json_object_get(v, "key");
    if (json_is_string(k)) {
        memset((char *) json_string_value(k), 0, json_string_length(k));
    }
    json_object_set_new(v, "key", json_null());
}

/* ---- rows ---- */

int64_t
mg_keys_now_ms(void)
{
    return mg_time_real_ms();
}

void
mg_keys_now_iso(char out[48])
{
    mg_auth_fmt_time(mg_time_real_ms(), out, 48);
}

int64_t
mg_keys_spend_epoch(json_t *row)
{
    json_t *se = json_object_get(json_object_get(row, "metadata"), "moongate_spend_epoch");
    return json_is_number(se) ? (int64_t) json_number_value(se) : 0;
}

void
mg_keys_mark_spend_set(json_t *set, json_t *row)
{
    json_t *md = json_object_get(set, "metadata");
    if (!json_is_object(md)) {
        json_t *cur = json_object_get(row, "metadata");
        md = json_is_object(cur) ? json_deep_copy(cur) : json_object();
        json_object_set_new(set, "metadata", md);
    }
    json_object_set_new(md, "moongate_spend_epoch", json_integer(mg_time_real_ms()));
}

double
mg_keys_live_spend(mg_ent_kind_t kind, const char *id, json_t *row)
{
    json_t *v = json_object_get(row, "spend");
    double rs = json_is_number(v) ? json_number_value(v) : 0;
    if (id == NULL) {
        return rs;
    }
    return mg_lim_spend_of(kind, id, rs, mg_keys_spend_epoch(row));
}

json_t *
mg_keys_row_view(json_t *row, mg_ent_kind_t kind, const char *id)
{
    json_t *v = json_deep_copy(row);
    double spend;
    if (id != NULL) {
        spend = mg_keys_live_spend(kind, id, row);
    } else {
        /* a list: the counter of an entity that has one (it spent since the row was loaded),
         * without claiming one for every entity listed */
        static const char *const idcol[MG_ENT__COUNT] = {"token", "team_id", "user_id", "user_id",
                                                         "organization_id"};
        json_t *rs = json_object_get(row, "spend");
        const char *own = kind < MG_ENT__COUNT ? json_string_value(json_object_get(row, idcol[kind]))
                                               : NULL;
        spend = json_is_number(rs) ? json_number_value(rs) : 0;
        if (own != NULL) {
            spend = mg_lim_spend_peek(kind, own, spend, mg_keys_spend_epoch(row));
        }
    }
    json_object_set_new(v, "spend", json_real(spend));
    return v;
}

json_t *
mg_keys_budget_view(const mg_auth_t *a, json_t *row)
{
    const char *bid = json_string_value(json_object_get(row, "budget_id"));
    json_t *b = bid != NULL ? mg_auth_budget_row(a, bid) : NULL;
    return b != NULL ? json_deep_copy(b) : json_null();
}

const char *
mg_keys_pyfloat(mg_request_t *r, double d)
{
    char b[64];
    mg_fmt_pyfloat(d, b, sizeof(b));
    return mg_arena_strdup(r->arena, b);
}

const char *
mg_keys_pylist(mg_request_t *r, json_t *list)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, "[", 1);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        mg_buf_printf(&b, "%s'%s'", i > 0 ? ", " : "", s != NULL ? s : "");
    }
    mg_buf_append(&b, "]", 1);
    const char *s = mg_arena_strdup(r->arena, mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

const char *
mg_keys_mask_id(mg_request_t *r, const char *id)
{
    if (id == NULL || strlen(id) <= 4) {
        return "***";
    }
    size_t n = strlen(id);
    if (n <= 8) {
        char *m = mg_arena_alloc(r->arena, n + 1);
        memset(m, '*', n);
        m[n] = '\0';
        return m;
    }
    char *m = mg_arena_strdup(r->arena, id);
    memset(m + 6, '*', n - 8);
    return m;
}

bool
mg_keys_list_allows(const mg_snapshot_t *s, json_t *list, const mg_team_t *t, const char *model)
{
    if (list == NULL || json_array_size(list) == 0) {
        return true;
    }
    if (mg_keys_str_in_list(list, "all-team-models")) {
        return t == NULL || mg_ka_models_allow(s, t->models, model);
    }
    return mg_ka_models_allow(s, list, model);
}

bool
mg_keys_duration(mg_request_t *r, const char *what, const char *s, int64_t *ms)
{
    if (mg_auth_parse_duration(s, ms) != MG_OK || *ms <= 0) {
        mg_keys_fail_repr(r, 400, "bad_request_error", "error",
                          "Invalid %s '%s'. Use a format like '1h', '24h', '7d', or '30d'.", what,
                          s);
        return false;
    }
    return true;
}

void
mg_keys_token_of(const char *key, char out[65])
{
    mg_auth_hash_key(key, strlen(key), out);
}

/* ---- who may call which route ---- */

enum {
    MG_KR_READ = 1,             /* reads only: a proxy admin viewer may call it */
    MG_KR_KEYS = 2,             /* LiteLLM's internal_user_routes: key management */
    MG_KR_INFO = 4,             /* LiteLLM's info_routes: every role, the handler scopes */
    MG_KR_SELF = 8,             /* LiteLLM's self_managed_routes: the handler decides */
    MG_KR_ADMIN = 16,           /* everything else: proxy admins (viewers when READ) */
};

typedef struct {
    const char *method;         /* "GET" or "POST" */
    const char *path;
    unsigned flags;
    mg_keys_fn fn;
} mg_keys_route_t;

static const mg_keys_route_t mg_keys_routes[] = {
    {"POST", "/key/generate", MG_KR_KEYS, mg_keys_key_generate},
    {"POST", "/key/service-account/generate", MG_KR_KEYS, mg_keys_key_sa_generate},
    {"POST", "/key/update", MG_KR_KEYS, mg_keys_key_update},
    {"POST", "/key/delete", MG_KR_KEYS, mg_keys_key_delete},
    {"GET", "/key/info", MG_KR_READ | MG_KR_INFO, mg_keys_key_info},
    {"GET", "/key/list", MG_KR_READ | MG_KR_INFO, mg_keys_key_list},
    {"POST", "/key/regenerate", MG_KR_KEYS, mg_keys_key_regenerate},
    {"POST", "/key/block", MG_KR_KEYS, mg_keys_key_block},
    {"POST", "/key/unblock", MG_KR_KEYS, mg_keys_key_unblock},
    {"POST", "/key/health", MG_KR_READ | MG_KR_INFO, mg_keys_key_health},
    {"POST", "/team/new", MG_KR_ADMIN, mg_keys_team_new},
    {"POST", "/team/update", MG_KR_ADMIN, mg_keys_team_update},
    {"POST", "/team/delete", MG_KR_ADMIN, mg_keys_team_delete},
    {"GET", "/team/info", MG_KR_READ | MG_KR_INFO, mg_keys_team_info},
    {"GET", "/team/list", MG_KR_READ | MG_KR_INFO, mg_keys_team_list},
    {"POST", "/team/member_add", MG_KR_SELF, mg_keys_team_member_add},
    {"POST", "/team/member_delete", MG_KR_SELF, mg_keys_team_member_delete},
    {"POST", "/team/block", MG_KR_ADMIN, mg_keys_team_block},
    {"POST", "/team/unblock", MG_KR_ADMIN, mg_keys_team_unblock},
    {"POST", "/user/new", MG_KR_ADMIN, mg_keys_user_new},
    {"POST", "/user/update", MG_KR_ADMIN, mg_keys_user_update},
    {"POST", "/user/delete", MG_KR_ADMIN, mg_keys_user_delete},
    {"GET", "/user/info", MG_KR_READ | MG_KR_INFO, mg_keys_user_info},
    {"GET", "/user/list", MG_KR_READ | MG_KR_ADMIN, mg_keys_user_list},
    {"POST", "/customer/new", MG_KR_ADMIN, mg_keys_customer_new},
    {"POST", "/customer/update", MG_KR_ADMIN, mg_keys_customer_update},
    {"POST", "/customer/delete", MG_KR_ADMIN, mg_keys_customer_delete},
    {"GET", "/customer/info", MG_KR_READ | MG_KR_ADMIN, mg_keys_customer_info},
    {"GET", "/customer/list", MG_KR_READ | MG_KR_ADMIN, mg_keys_customer_list},
    {"POST", "/customer/block", MG_KR_ADMIN, mg_keys_customer_block},
    {"POST", "/customer/unblock", MG_KR_ADMIN, mg_keys_customer_unblock},
    {"POST", "/end_user/new", MG_KR_ADMIN, mg_keys_customer_new},
    {"POST", "/end_user/update", MG_KR_ADMIN, mg_keys_customer_update},
    {"POST", "/end_user/delete", MG_KR_ADMIN, mg_keys_customer_delete},
    {"GET", "/end_user/info", MG_KR_READ | MG_KR_ADMIN, mg_keys_customer_info},
    {"GET", "/end_user/list", MG_KR_READ | MG_KR_ADMIN, mg_keys_customer_list},
    {"POST", "/end_user/block", MG_KR_ADMIN, mg_keys_customer_block},
    {"POST", "/end_user/unblock", MG_KR_ADMIN, mg_keys_customer_unblock},
    {"POST", "/budget/new", MG_KR_ADMIN, mg_keys_budget_new},
    {"POST", "/budget/update", MG_KR_ADMIN, mg_keys_budget_update},
    {"POST", "/budget/delete", MG_KR_ADMIN, mg_keys_budget_delete},
    {"POST", "/budget/info", MG_KR_READ | MG_KR_ADMIN, mg_keys_budget_info},
    {"GET", "/budget/list", MG_KR_READ | MG_KR_ADMIN, mg_keys_budget_list},
};
#define MG_KEYS_NROUTES (sizeof(mg_keys_routes) / sizeof(mg_keys_routes[0]))

/* The route (by path only) for r, and for /key/{key}/regenerate the key in *arg (arena). */
static const mg_keys_route_t *
mg_keys_route_of(const mg_request_t *r, char **arg, mg_arena_t *arena)
{
    for (size_t i = 0; i < MG_KEYS_NROUTES; i++) {
        size_t n = strlen(mg_keys_routes[i].path);
        if (r->path_len == n && memcmp(r->path, mg_keys_routes[i].path, n) == 0) {
            return &mg_keys_routes[i];
        }
    }
    /* LiteLLM's /key/{key:path}/regenerate */
    static const char pre[] = "/key/", suf[] = "/regenerate";
    size_t pl = sizeof(pre) - 1, sl = sizeof(suf) - 1;
    if (r->path_len > pl + sl && memcmp(r->path, pre, pl) == 0 &&
        memcmp(r->path + r->path_len - sl, suf, sl) == 0) {
        if (arg != NULL) {
            *arg = mg_arena_strndup(arena, r->path + pl, r->path_len - pl - sl);
        }
        for (size_t i = 0; i < MG_KEYS_NROUTES; i++) {
            if (strcmp(mg_keys_routes[i].path, "/key/regenerate") == 0) {
                return &mg_keys_routes[i];
            }
        }
    }
    return NULL;
}

bool
mg_keys_route_known(const mg_request_t *r)
{
    return mg_keys_route_of(r, NULL, NULL) != NULL;
}

/* LiteLLM's role check before the endpoint runs; false after answering. */
static bool
mg_keys_role_allows(mg_request_t *r, const mg_keys_route_t *rt)
{
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    if (c.admin) {
        return true;
    }
    char *route = mg_arena_strndup(r->arena, r->path, r->path_len);
    if (c.viewer) {
        if (rt->flags & MG_KR_READ) {
            return true;
        }
        mg_keys_fail(r, 403, "auth_error", NULL, "user not allowed to access this route, role= "
                                                 "%s. Trying to access: %s", c.role, route);
        return false;
    }
    unsigned allowed = MG_KR_INFO | MG_KR_SELF;
    if (strcmp(c.role, MG_ROLE_INTERNAL_USER) == 0) {
        allowed |= MG_KR_KEYS;
    }
    if (rt->flags & allowed) {
        return true;
    }
    mg_keys_fail(r, 401, "auth_error", NULL,
                 "Authentication Error, Only proxy admin can be used to generate, delete, update "
                 "info for new keys/users/teams. Route=%s. Your role=%s. Your user_id=%s", route,
                 c.role, c.user_id != NULL ? mg_keys_mask_id(r, c.user_id) : "unknown");
    return false;
}

/* ---- routes a key may call (allowed_routes) ---- */

static bool
mg_keys_path_is_llm(const char *p, size_t n)
{
    static const char *const llm[] = {
        "/chat/completions", "/v1/chat/completions", "/completions", "/v1/completions",
        "/embeddings", "/v1/embeddings", "/v1/messages", "/anthropic/v1/messages",
        "/v1/messages/count_tokens", "/models", "/v1/models", "/model/info", "/v1/model/info",
        "/v1/responses", "/responses", NULL,
    };
    for (const char *const *e = llm; *e; e++) {
        if (strlen(*e) == n && memcmp(p, *e, n) == 0) {
            return true;
        }
    }
    static const char *const pre[] = {"/openai/deployments/", "/engines/", "/v1/engines/",
                                      "/v1/models/", "/models/", "/v1/responses/", NULL};
    for (const char *const *e = pre; *e; e++) {
        size_t l = strlen(*e);
        if (n > l && memcmp(p, *e, l) == 0) {
            return true;
        }
    }
    return false;
}

static bool
mg_keys_path_class(const char *cls, const char *p, size_t n)
{
    if (strcmp(cls, "llm_api_routes") == 0 || strcmp(cls, "openai_routes") == 0) {
        return mg_keys_path_is_llm(p, n);
    }
    bool mgmt = strcmp(cls, "management_routes") == 0;
    bool info = strcmp(cls, "info_routes") == 0;
    if (!mgmt && !info) {
        return false;
    }
    if (mgmt && n >= 7 && memcmp(p, "/model/", 7) == 0) {
        return true;
    }
    mg_request_t fake;
    memset(&fake, 0, sizeof(fake));
    fake.path = p;
    fake.path_len = n;
    const mg_keys_route_t *rt = mg_keys_route_of(&fake, NULL, NULL);
    if (rt == NULL) {
        return info && ((n == 11 && memcmp(p, "/model/info", 11) == 0) ||
                        (n == 7 && memcmp(p, "/health", 7) == 0));
    }
    return info ? (rt->flags & MG_KR_INFO) != 0 : true;
}

bool
mg_keys_key_route_allowed(json_t *allowed_routes, const char *path, size_t len)
{
    if (!json_is_array(allowed_routes) || json_array_size(allowed_routes) == 0) {
        return true;
    }
    char buf[512];
    if (len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, path, len);
    buf[len] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(allowed_routes, i, v) {
        const char *a = json_string_value(v);
        if (a == NULL) {
            continue;
        }
        size_t al = strlen(a);
        if (strcmp(a, buf) == 0 || (al > 0 && strncmp(buf, a, al) == 0 && buf[al] == '/')) {
            return true;
        }
        if (al > 0 && a[al - 1] == '*' && strncmp(buf, a, al - 1) == 0) {
            return true;
        }
        if (mg_keys_path_class(a, path, len)) {
            return true;
        }
    }
    return false;
}

bool
mg_keys_check_key_route(mg_request_t *r)
{
    const mg_vkey_t *k = r->who.key;
    if (k == NULL || mg_keys_key_route_allowed(k->allowed_routes, r->path, r->path_len)) {
        return true;
    }
    char *route = mg_arena_strndup(r->arena, r->path, r->path_len);
    mg_keys_fail(r, 403, "auth_error", NULL, "Virtual key is not allowed to call this route. Only "
                                             "allowed to call routes: %s. Tried to call route: %s",
                 mg_keys_pylist(r, k->allowed_routes), route);
    return false;
}

/* ---- dispatch ---- */

bool
mg_keys_handle(mg_request_t *r, const char *method, size_t mlen)
{
    char *arg = NULL;
    const mg_keys_route_t *rt = mg_keys_route_of(r, &arg, r->arena);
    if (rt == NULL) {
        return false;
    }
    bool head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    size_t ml = strlen(rt->method);
    if (!((mlen == ml && memcmp(method, rt->method, ml) == 0) ||
          (head && strcmp(rt->method, "GET") == 0))) {
        mg_gw_error(r, 405, "Method Not Allowed", "invalid_request_error", NULL, NULL);
        return true;
    }
    if (r->gw->snap == NULL) {
        char *msg = mg_arena_printf(r->arena, "moongate: the registry (and its virtual keys) is "
                                              "not loaded on this worker yet (%s); retry shortly",
                                    r->gw->not_ready_reason);
        mg_gw_error_raw(r, 503, msg, "\"service_unavailable\"", "null", "retry-after: 1\r\n");
        return true;
    }
    if (r->snap == NULL) {
        r->snap = mg_snapshot_ref(r->gw->snap); /* released in mg_gw_finalize() */
    }
    if (!mg_keys_role_allows(r, rt)) {
        return true;
    }
    json_t *body = NULL;
    if (strcmp(rt->method, "POST") == 0) {
        body = mg_keys_body(r);
        if (body == NULL) {
            return true;
        }
    }
    rt->fn(r, body, arg);
    json_decref(body);
    return true;
}

/* ---- /v1/models for a key ---- */

bool
mg_keys_model_visible(const mg_request_t *r, const char *name)
{
    const mg_vkey_t *k = r->who.key;
    if (k == NULL || r->snap == NULL || mg_ka_is_proxy_admin(r)) {
        return true;
    }
    const mg_snapshot_t *s = r->snap;
    const mg_team_t *t = r->who.team;
    if (!mg_keys_list_allows(s, k->models, t, name)) {
        return false;
    }
    if (t != NULL && !mg_ka_models_allow(s, t->models, name)) {
        return false;
    }
    if (r->who.user != NULL && !mg_ka_models_allow(s, r->who.user->models, name)) {
        return false;
    }
    if (t != NULL && t->org != NULL && !mg_ka_models_allow(s, t->org->models, name)) {
        return false;
    }
    return true;
}
