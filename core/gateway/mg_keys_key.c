/*
 * mg_keys_key.c -- /key/generate, /key/service-account/generate, /key/update, /key/delete,
 * /key/info, /key/list, /key/regenerate (and /key/{key}/regenerate), /key/block,
 * /key/unblock, /key/health: LiteLLM's LiteLLM_VerificationToken rows in the store.
 *
 * Owns nothing past a call.  A new key's value exists in memory only between its
 * generation and the answer that carries it (mg_keys_op_t.secret, zeroed when the op is
 * freed); the store gets its SHA-256 (LiteLLM's token column) and key_name "sk-...abcd".
 *
 * Nobody but a proxy admin widens rights: a key made or changed by anyone else is bounded
 * by the caller's own key (models, budget, rate limits, expiry, allowed routes), by its user
 * row's limits, and for a team key by the team's; a key's owner may only narrow its key; a
 * team admin may set a team key's limits up to the team's.
 */
#include "mg_keys_int.h"

#include "mg_keyauth.h"

#include "../base/mg_log.h"
#include "../base/mg_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_KE_ISE "internal_server_error"
#define MG_KE_AUTH "auth_error"

/* ---- small helpers ---- */

/* LiteLLM's generated key: "sk-" + secrets.token_urlsafe(16) (22 base64url characters). */
static void
mg_kk_new_secret(char out[128])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[16];
    mg_random_bytes(raw, sizeof(raw));
    size_t o = 0;
    out[o++] = 's';
    out[o++] = 'k';
    out[o++] = '-';
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < sizeof(raw); i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = al[(acc >> bits) & 63];
        }
    }
    if (bits > 0) {
        out[o++] = al[(acc << (6 - bits)) & 63];
    }
    out[o] = '\0';
    memset(raw, 0, sizeof(raw));
}

static double
mg_kk_num(json_t *row, const char *col, double dflt)
{
    json_t *v = json_object_get(row, col);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The key a request names: a raw key or a hash ("key"), else a key_alias. */
static const mg_vkey_t *
mg_kk_find(const mg_auth_t *a, const char *key, const char *alias, char token[65])
{
    token[0] = '\0';
    if (key != NULL) {
        mg_keys_token_of(key, token);
        return mg_auth_key(a, token);
    }
    if (alias != NULL) {
        const mg_vkey_t *k = mg_auth_key_alias(a, alias);
        if (k != NULL) {
            memcpy(token, k->token, 65);
        }
        return k;
    }
    return NULL;
}

/* Whether the caller may change or delete key k: a proxy admin, the admin of k's team, or
 * k's owner.  *team_admin: the second. */
static bool
mg_kk_can_modify(const mg_auth_t *a, const mg_keys_caller_t *c, const mg_vkey_t *k,
                 bool *team_admin)
{
    *team_admin = false;
    if (c->admin) {
        return true;
    }
    if (k->team != NULL && c->user_id != NULL && mg_keys_in_team(a, k->team, c->user_id, true)) {
        *team_admin = true;
        return true;
    }
    return k->user_id != NULL && c->user_id != NULL && strcmp(k->user_id, c->user_id) == 0;
}

/* Whether a requested model list entry stays within list (a ceiling): named there verbatim,
 * or a plain model name the list lets through. */
static bool
mg_kk_entry_within(const mg_snapshot_t *s, json_t *list, const mg_team_t *t, const char *m)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), m) == 0) {
            return true;
        }
    }
    if (strcmp(m, "*") == 0 || strcmp(m, "all-proxy-models") == 0 || strchr(m, '*') != NULL ||
        strcmp(m, "all-team-models") == 0) {
        return false;
    }
    return mg_keys_list_allows(s, list, t, m);
}

/* ---- the fields of a key ---- */

typedef struct {
    json_t *set;                /* borrowed: the columns to write */
    mg_keys_soft_t *soft;       /* borrowed: soft_budget */
    const char *type;           /* the error type this route answers with */
} mg_kf_t;

static bool
mg_kf_unsupported(mg_request_t *r, json_t *b, const mg_kf_t *f)
{
    static const char *const fields[] = {
        "object_permission", "router_settings", "prompts", "policies", "access_group_ids",
        "agent_id", "project_id", "temp_budget_increase", "temp_budget_expiry",
        "rotation_interval", "allowed_passthrough_routes", "allowed_vector_store_indexes",
        "budget_limits", "budget_fallbacks", "mcp_rpm_limit", "tag_rpm_limit", "guardrails",
        "enforced_params", "grace_period", NULL,
    };
    for (const char *const *fl = fields; *fl; fl++) {
        json_t *v = json_object_get(b, *fl);
        if (v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
            (json_is_object(v) && json_object_size(v) == 0)) {
            continue;
        }
        mg_keys_fail(r, 400, f->type, *fl, "moongate: %s on a virtual key is not implemented; "
                                           "the key was not changed", *fl);
        return false;
    }
    if (json_is_true(json_object_get(b, "auto_rotate"))) {
        mg_keys_fail(r, 400, f->type, "auto_rotate", "moongate: auto_rotate on a virtual key is "
                                                     "not implemented; the key was not changed");
        return false;
    }
    return true;
}

static bool
mg_kf_limit(mg_request_t *r, json_t *b, const char *name, mg_kf_t *f)
{
    if (json_object_get(b, name) == NULL) {
        return true;
    }
    bool set;
    int64_t v;
    if (!mg_keys_f_int(r, b, name, &set, &v)) {
        return false;
    }
    if (set && v < 0) {
        mg_keys_fail_repr(r, 400, f->type, "error", "%s cannot be negative. Received: %lld", name,
                          (long long) v);
        return false;
    }
    json_object_set_new(f->set, name, set ? json_integer(v) : json_null());
    return true;
}

static bool
mg_kf_model_limits(mg_request_t *r, json_t *b, const char *name, json_t *md)
{
    json_t *o = NULL;
    if (!mg_keys_f_obj(r, b, name, &o)) {
        return false;
    }
    if (o == NULL) {
        return true;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            mg_keys_422(r, name, "Input should be a dictionary of model names to integers");
            return false;
        }
    }
    json_object_set(md, name, o);
    return true;
}

static bool
mg_kf_model_max_budget(mg_request_t *r, json_t *o, const char *type)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        json_t *bl = json_object_get(v, "budget_limit");
        json_t *tp = json_object_get(v, "time_period");
        double lim = json_is_number(bl) ? json_number_value(bl)
                     : json_is_string(bl) ? strtod(json_string_value(bl), NULL)
                                          : -1;
        int64_t ms;
        if (!json_is_object(v) || !(lim >= 0) ||
            (tp != NULL && !json_is_null(tp) &&
             (!json_is_string(tp) || mg_auth_parse_duration(json_string_value(tp), &ms) != MG_OK))) {
            mg_keys_fail(r, 400, type, "model_max_budget",
                         "Invalid model_max_budget: %s needs {\"budget_limit\": <number>, "
                         "\"time_period\": \"30d\"}. Example of valid model_max_budget: "
                         "https://docs.litellm.ai/docs/proxy/users", k);
            return false;
        }
    }
    return true;
}

/*
 * Reads the body's key fields into f->set (columns), validating types and values; cur is the
 * key's current row (an update) or NULL (a new key).  Answers and returns false on a bad one.
 */
static bool
mg_kf_parse(mg_request_t *r, json_t *b, json_t *cur, mg_kf_t *f)
{
    if (!mg_kf_unsupported(r, b, f)) {
        return false;
    }
    json_t *set = f->set;
    const char *s = NULL;
    /* strings that are columns as they are */
    static const char *const strs[] = {"key_alias", "user_id", "team_id", "organization_id",
                                       "budget_id", NULL};
    for (const char *const *n = strs; *n; n++) {
        if (json_object_get(b, *n) == NULL) {
            continue;
        }
        s = NULL;
        if (!mg_keys_f_str(r, b, *n, &s)) {
            return false;
        }
        json_object_set_new(set, *n, s != NULL && s[0] ? json_string(s) : json_null());
    }
    /* duration -> expires */
    if (json_object_get(b, "duration") != NULL) {
        s = NULL;
        if (!mg_keys_f_str(r, b, "duration", &s)) {
            return false;
        }
        if (s == NULL || strcmp(s, "-1") == 0 || s[0] == '\0') {
            json_object_set_new(set, "expires", json_null());
        } else {
            int64_t ms;
            if (!mg_keys_duration(r, "duration", s, &ms)) {
                return false;
            }
            char iso[48];
            mg_auth_fmt_time(mg_keys_now_ms() + ms, iso, sizeof(iso));
            json_object_set_new(set, "expires", json_string(iso));
        }
    }
    /* budget_duration -> budget_reset_at */
    if (json_object_get(b, "budget_duration") != NULL) {
        s = NULL;
        if (!mg_keys_f_str(r, b, "budget_duration", &s)) {
            return false;
        }
        if (s == NULL || s[0] == '\0') {
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
    /* numbers */
    bool nset;
    double d;
    if (json_object_get(b, "max_budget") != NULL) {
        if (!mg_keys_f_num(r, b, "max_budget", &nset, &d)) {
            return false;
        }
        if (nset && d < 0) {
            mg_keys_fail_repr(r, 400, f->type, "error", "max_budget cannot be negative. Received: "
                                                        "%s", mg_keys_pyfloat(r, d));
            return false;
        }
        json_object_set_new(set, "max_budget", nset ? json_real(d) : json_null());
    }
    if (json_object_get(b, "soft_budget") != NULL) {
        if (!mg_keys_f_num(r, b, "soft_budget", &f->soft->set, &f->soft->value)) {
            return false;
        }
        if (f->soft->set && f->soft->value < 0) {
            mg_keys_fail_repr(r, 400, f->type, "error", "soft_budget cannot be negative. "
                                                        "Received: %s",
                              mg_keys_pyfloat(r, f->soft->value));
            return false;
        }
        f->soft->present = true;
    }
    if (json_object_get(b, "spend") != NULL) {
        if (!mg_keys_f_num(r, b, "spend", &nset, &d)) {
            return false;
        }
        if (nset && d < 0) {
            mg_keys_fail_repr(r, 400, f->type, "error", "spend must be >= 0. Received: %s",
                              mg_keys_pyfloat(r, d));
            return false;
        }
        if (nset) {
            json_object_set_new(set, "spend", json_real(d));
        }
    }
    if (!mg_kf_limit(r, b, "tpm_limit", f) || !mg_kf_limit(r, b, "rpm_limit", f) ||
        !mg_kf_limit(r, b, "max_parallel_requests", f)) {
        return false;
    }
    /* lists and objects */
    json_t *o = NULL;
    if (!mg_keys_f_strarr(r, b, "models", &o)) {
        return false;
    }
    if (o != NULL) {
        json_object_set(set, "models", o);
    }
    static const char *const arrs[] = {"allowed_routes", "allowed_cache_controls", NULL};
    for (const char *const *n = arrs; *n; n++) {
        o = NULL;
        if (!mg_keys_f_strarr(r, b, *n, &o)) {
            return false;
        }
        if (o != NULL) {
            json_object_set(set, *n, o);
        }
    }
    static const char *const objs[] = {"aliases", "config", "permissions", "model_max_budget",
                                       NULL};
    for (const char *const *n = objs; *n; n++) {
        o = NULL;
        if (!mg_keys_f_obj(r, b, *n, &o)) {
            return false;
        }
        if (o != NULL) {
            json_object_set(set, *n, o);
        }
    }
    o = json_object_get(set, "model_max_budget");
    if (o != NULL && !mg_kf_model_max_budget(r, o, f->type)) {
        return false;
    }
    /* key_type -> allowed_routes (LiteLLM's handle_key_type) */
    s = NULL;
    if (!mg_keys_f_str(r, b, "key_type", &s)) {
        return false;
    }
    if (s != NULL && strcmp(s, "default") != 0) {
        const char *cls = strcmp(s, "llm_api") == 0      ? "llm_api_routes"
                          : strcmp(s, "management") == 0 ? "management_routes"
                          : strcmp(s, "read_only") == 0  ? "info_routes"
                                                         : NULL;
        if (cls == NULL) {
            mg_keys_422(r, "key_type", "Input should be 'llm_api', 'management', 'read_only' or "
                                       "'default'");
            return false;
        }
        json_object_set_new(set, "allowed_routes", json_pack("[s]", cls));
    }
    bool bv;
    if (!mg_keys_f_bool(r, b, "blocked", &nset, &bv)) {
        return false;
    }
    if (nset) {
        json_object_set_new(set, "blocked", json_boolean(bv));
    } else if (json_object_get(b, "blocked") != NULL) {
        json_object_set_new(set, "blocked", json_null());
    }
    /* metadata, with LiteLLM's metadata fields folded in */
    json_t *md = NULL;
    if (!mg_keys_f_obj(r, b, "metadata", &md)) {
        return false;
    }
    json_t *curmd = cur != NULL ? json_object_get(cur, "metadata") : NULL;
    json_t *nmd = md != NULL ? json_deep_copy(md)
                  : json_is_object(curmd) ? json_deep_copy(curmd)
                                          : json_object();
    /* the spend stamp is moongate's: never taken from a body */
    json_object_del(nmd, "moongate_spend_epoch");
    json_t *oldse = json_object_get(curmd, "moongate_spend_epoch");
    if (oldse != NULL) {
        json_object_set(nmd, "moongate_spend_epoch", oldse);
    }
    bool md_changed = md != NULL || cur == NULL;
    o = NULL;
    if (!mg_keys_f_strarr(r, b, "tags", &o)) {
        json_decref(nmd);
        return false;
    }
    if (o != NULL) {
        json_object_set(nmd, "tags", o);
        md_changed = true;
    }
    if (!mg_kf_model_limits(r, b, "model_rpm_limit", nmd) ||
        !mg_kf_model_limits(r, b, "model_tpm_limit", nmd)) {
        json_decref(nmd);
        return false;
    }
    md_changed = md_changed || mg_keys_has(b, "model_rpm_limit") || mg_keys_has(b, "model_tpm_limit");
    static const char *const mdstr[] = {"rpm_limit_type", "tpm_limit_type", NULL};
    for (const char *const *n = mdstr; *n; n++) {
        s = NULL;
        if (!mg_keys_f_str(r, b, *n, &s)) {
            json_decref(nmd);
            return false;
        }
        if (s != NULL) {
            if (strcmp(s, "guaranteed_throughput") != 0 && strcmp(s, "best_effort_throughput") != 0 &&
                strcmp(s, "dynamic") != 0) {
                json_decref(nmd);
                mg_keys_422(r, *n, "Input should be 'guaranteed_throughput', "
                                   "'best_effort_throughput' or 'dynamic'");
                return false;
            }
            json_object_set_new(nmd, *n, json_string(s));
            md_changed = true;
        }
    }
    if (md_changed) {
        json_object_set_new(set, "metadata", nmd);
    } else {
        json_decref(nmd);
    }
    return true;
}

bool
mg_keys_key_parse(mg_request_t *r, json_t *b, json_t *cur, json_t *set, mg_keys_soft_t *soft,
                  const char *type)
{
    mg_keys_soft_t none = {false, false, 0};
    mg_kf_t f = {.set = set, .soft = soft != NULL ? soft : &none, .type = type};
    return mg_kf_parse(r, b, cur, &f);
}

/* ---- bounds: nothing widens ---- */

typedef struct {
    double max_budget;          /* < 0: none */
    int64_t lim[3];             /* tpm, rpm, parallel; < 0: none */
    const char *who;            /* "user", "team" or "key" (for messages) */
} mg_kb_t;

static const char *const mg_kb_cols[3] = {"tpm_limit", "rpm_limit", "max_parallel_requests"};
static const char *const mg_kb_names[3] = {"tpm limit", "rpm limit", "max parallel requests"};

/*
 * Enforces a ceiling on the columns of a new key (inherit: absent columns take the ceiling)
 * or on the columns an update sets.  LiteLLM's wording: "max budget higher than user max.
 * User max budget=1.0. User role=internal_user".
 */
static bool
mg_kb_apply(mg_request_t *r, const mg_kb_t *c, json_t *set, bool inherit, const char *role,
            const char *type)
{
    char Who[16];
    snprintf(Who, sizeof(Who), "%s", c->who);
    Who[0] = (char) (Who[0] - 32);
    if (c->max_budget >= 0) {
        json_t *v = json_object_get(set, "max_budget");
        if (v == NULL && inherit) {
            json_object_set_new(set, "max_budget", json_real(c->max_budget));
        } else if (v != NULL && (!json_is_number(v) || json_number_value(v) > c->max_budget)) {
            mg_keys_fail_repr(r, 400, type, "error", "max budget higher than %s max. %s max "
                                                     "budget=%s. User role=%s",
                              c->who, Who, mg_keys_pyfloat(r, c->max_budget), role);
            return false;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (c->lim[i] < 0) {
            continue;
        }
        json_t *v = json_object_get(set, mg_kb_cols[i]);
        if (v == NULL && inherit) {
            json_object_set_new(set, mg_kb_cols[i], json_integer(c->lim[i]));
        } else if (v != NULL && (!json_is_integer(v) || json_integer_value(v) > c->lim[i])) {
            mg_keys_fail_repr(r, 400, type, "error", "%s higher than %s max. %s %s=%lld. User "
                                                     "role=%s",
                              mg_kb_names[i], c->who, Who, mg_kb_names[i], (long long) c->lim[i],
                              role);
            return false;
        }
    }
    return true;
}

static void
mg_kb_from(mg_kb_t *c, const mg_limdef_t *l, const char *who)
{
    c->max_budget = l->max_budget;
    c->lim[0] = l->tpm;
    c->lim[1] = l->rpm;
    c->lim[2] = l->parallel;
    c->who = who;
}

/* Every requested model stays within a ceiling list (empty: no ceiling). */
static bool
mg_kb_models(mg_request_t *r, json_t *ceil, const mg_team_t *t, json_t *set, bool inherit,
             const char *who, const char *type)
{
    if (mg_keys_str_in_list(ceil, "all-team-models")) {
        ceil = t != NULL ? t->models : NULL; /* the key's team's list is the key's */
    }
    if (ceil == NULL || json_array_size(ceil) == 0) {
        return true;
    }
    json_t *req = json_object_get(set, "models");
    if (req == NULL || json_array_size(req) == 0) {
        if (inherit) {
            json_object_set(set, "models", ceil);
            return true;
        }
        if (req == NULL) {
            return true;
        }
    }
    size_t i;
    json_t *m;
    json_array_foreach(req, i, m) {
        const char *name = json_string_value(m);
        if (!mg_kk_entry_within(r->snap, ceil, t, name)) {
            mg_keys_fail_repr(r, 400, type, "error", "Model not in allowed %s models. %s allowed "
                                                     "models=%s. Requested model=%s",
                              who, who, mg_keys_pylist(r, ceil), name);
            return false;
        }
    }
    if (json_array_size(req) == 0) {
        /* an update to "every model" widens a list */
        mg_keys_fail_repr(r, 400, type, "error", "Model not in allowed %s models. %s allowed "
                                                 "models=%s. Requested models=[] (every model)",
                          who, who, mg_keys_pylist(r, ceil));
        return false;
    }
    return true;
}

/* Fields only a proxy admin sets on someone's key (they widen rights or reset a budget). */
static bool
mg_kb_admin_only(mg_request_t *r, json_t *set, json_t *cur, bool team_admin, const char *type)
{
    static const char *const always[] = {"spend", "budget_id", "organization_id", "permissions",
                                         NULL};
    static const char *const owners[] = {"budget_duration", "allowed_routes", "model_max_budget",
                                         NULL};
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass == 0 ? always : owners;
        if (pass == 1 && team_admin) {
            break;
        }
        for (const char *const *n = list; *n; n++) {
            json_t *v = json_object_get(set, *n);
            if (v == NULL) {
                continue;
            }
            json_t *old = cur != NULL ? json_object_get(cur, *n) : NULL;
            bool empty = json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
                         (json_is_array(v) && json_array_size(v) == 0) ||
                         (json_is_number(v) && json_number_value(v) == 0);
            if ((cur == NULL && empty) || (old != NULL && json_equal(old, v)) ||
                (cur != NULL && old == NULL && empty)) {
                continue;
            }
            if (cur == NULL && strcmp(*n, "model_max_budget") == 0) {
                continue; /* per-model budgets on a new key only restrict it */
            }
            if (cur == NULL && strcmp(*n, "spend") == 0) {
                continue; /* a new key's starting spend only takes from its budget */
            }
            if (cur == NULL && strcmp(*n, "allowed_routes") == 0) {
                continue; /* checked against the caller's own list */
            }
            mg_keys_fail(r, 403, type, *n, "Only a proxy admin can set %s on this key", *n);
            return false;
        }
    }
    if (cur != NULL && json_is_true(json_object_get(cur, "blocked"))) {
        json_t *v = json_object_get(set, "blocked");
        if (v != NULL && !json_is_true(v)) {
            mg_keys_fail(r, 403, type, "blocked", "Only a proxy admin can unblock a key");
            return false;
        }
    }
    return true;
}

/* A new key's allowed_routes stay within the caller key's (inherited when absent). */
static bool
mg_kb_routes(mg_request_t *r, json_t *ceil, json_t *set, bool inherit, const char *type)
{
    if (ceil == NULL || json_array_size(ceil) == 0) {
        return true;
    }
    json_t *req = json_object_get(set, "allowed_routes");
    if (req == NULL || json_array_size(req) == 0) {
        if (inherit || req != NULL) {
            json_object_set(set, "allowed_routes", ceil);
        }
        return true;
    }
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v) {
        if (!mg_keys_str_in_list(ceil, json_string_value(v))) {
            mg_keys_fail(r, 403, type, "allowed_routes", "allowed_routes must be within your "
                                                         "key's allowed_routes=%s",
                         mg_keys_pylist(r, ceil));
            return false;
        }
    }
    return true;
}

/* A new expiry no later than the ceiling's (exp_ms > 0). */
static bool
mg_kb_expiry(mg_request_t *r, int64_t exp_ms, json_t *set, bool inherit, const char *what,
             const char *type)
{
    if (exp_ms <= 0) {
        return true;
    }
    json_t *v = json_object_get(set, "expires");
    if (v == NULL) {
        if (inherit) {
            char iso[48];
            mg_auth_fmt_time(exp_ms, iso, sizeof(iso));
            json_object_set_new(set, "expires", json_string(iso));
        }
        return true;
    }
    int64_t ms = 0;
    if (!json_is_string(v) || mg_auth_parse_time(json_string_value(v), &ms) != MG_OK ||
        ms > exp_ms) {
        char iso[48];
        mg_auth_fmt_time(exp_ms, iso, sizeof(iso));
        mg_keys_fail_repr(r, 400, type, "error", "duration is over the limit: the key can not "
                                                 "outlive %s, which expires at %s", what, iso);
        return false;
    }
    return true;
}

/*
 * Every bound on a key a non-admin makes (cur NULL) or changes (cur its row, k its struct):
 * the caller's key, the caller's user row, the key's team; an owner only narrows.
 */
static bool
mg_kb_check(mg_request_t *r, const mg_keys_caller_t *c, json_t *set, json_t *cur,
            const mg_vkey_t *k, const mg_team_t *team, bool team_admin, const char *type)
{
    if (c->admin) {
        return true;
    }
    bool inherit = cur == NULL;
    if (!mg_kb_admin_only(r, set, cur, team_admin, type)) {
        return false;
    }
    mg_kb_t b;
    /* the caller's own key (unless it is the key changed: then the owner rule below) */
    if (c->key != NULL && (k == NULL || c->key != k)) {
        mg_kb_from(&b, &c->key->lim, "key");
        if (!mg_kb_apply(r, &b, set, inherit, c->role, type) ||
            !mg_kb_models(r, c->key->models, c->key->team, set, inherit, "key", type) ||
            !mg_kb_routes(r, c->key->allowed_routes, set, inherit, type) ||
            !mg_kb_expiry(r, c->key->expires_ms, set, inherit, "your key", type)) {
            return false;
        }
        /* what the caller's key can do is bounded by its team too: a key it makes outside
         * that team takes the team's limits and models along */
        const mg_team_t *ct = c->key->team;
        if (ct != NULL && ct != team) {
            mg_kb_from(&b, &ct->lim, "team");
            if (!mg_kb_apply(r, &b, set, inherit, c->role, type) ||
                !mg_kb_models(r, ct->models, ct, set, inherit, "team", type)) {
                return false;
            }
        }
    }
    if (c->user != NULL) {
        mg_kb_from(&b, &c->user->lim, "user");
        if (!mg_kb_apply(r, &b, set, inherit, c->role, type) ||
            !mg_kb_models(r, c->user->models, NULL, set, false, "user", type)) {
            return false;
        }
    }
    if (team != NULL) {
        mg_kb_from(&b, &team->lim, "team");
        if (!mg_kb_apply(r, &b, set, false, c->role, type) ||
            !mg_kb_models(r, team->models, team, set, false, "team", type)) {
            return false;
        }
    }
    if (k != NULL && !team_admin) {
        /* the owner narrows its key: never above what it has */
        mg_kb_from(&b, &k->lim, "key");
        if (!mg_kb_apply(r, &b, set, false, c->role, type) ||
            !mg_kb_models(r, k->models, k->team, set, false, "key", type) ||
            !mg_kb_expiry(r, k->expires_ms, set, false, "the key", type)) {
            return false;
        }
        if (k->expires_ms > 0) {
            json_t *v = json_object_get(set, "expires");
            if (v != NULL && json_is_null(v)) {
                mg_keys_fail_repr(r, 400, type, "error", "duration is over the limit: the key "
                                                         "can not be made to never expire");
                return false;
            }
        }
        json_t *om = json_object_get(k->row, "metadata");
        json_t *nm = json_object_get(set, "metadata");
        for (int i = 0; i < 2 && nm != NULL; i++) {
            const char *col = i == 0 ? "model_rpm_limit" : "model_tpm_limit";
            json_t *ol = json_object_get(om, col), *nl = json_object_get(nm, col);
            const char *mk;
            json_t *ov;
            json_object_foreach(ol, mk, ov) {
                json_t *nv = json_object_get(nl, mk);
                if (nv == NULL || !json_is_integer(nv) ||
                    json_integer_value(nv) > json_integer_value(ov)) {
                    mg_keys_fail_repr(r, 400, type, "error", "%s for %s higher than the key's "
                                                             "%lld", col, mk,
                                      (long long) json_integer_value(ov));
                    return false;
                }
            }
        }
    }
    return true;
}

/* LiteLLM's guaranteed-throughput check: the team's keys' limits add up to the team's. */
static bool
mg_kb_allocation(mg_request_t *r, const mg_auth_t *a, const mg_team_t *t, json_t *set,
                 json_t *cur, const char *self_token)
{
    json_t *md = json_object_get(set, "metadata");
    if (md == NULL && cur != NULL) {
        md = json_object_get(cur, "metadata");
    }
    for (int i = 0; i < 2; i++) {
        const char *tcol = i == 0 ? "tpm_limit" : "rpm_limit";
        const char *type = json_string_value(json_object_get(md, i == 0 ? "tpm_limit_type"
                                                                        : "rpm_limit_type"));
        int64_t tl = i == 0 ? t->lim.tpm : t->lim.rpm;
        json_t *v = json_object_get(set, tcol);
        if (v == NULL && cur != NULL) {
            v = json_object_get(cur, tcol);
        }
        if (type == NULL || strcmp(type, "guaranteed_throughput") != 0 || tl < 0 ||
            !json_is_integer(v)) {
            continue;
        }
        int64_t alloc = 0;
        for (size_t j = 0; j < a->nkeys; j++) {
            const mg_vkey_t *o = &a->keys[j];
            if (o->team != t || (self_token != NULL && strcmp(o->token, self_token) == 0)) {
                continue;
            }
            int64_t ol = i == 0 ? o->lim.tpm : o->lim.rpm;
            alloc += ol > 0 ? ol : 0;
        }
        if (alloc + json_integer_value(v) > tl) {
            mg_keys_fail(r, 400, MG_KE_ISE, NULL, "Allocated %s limit=%lld + Key %s limit=%lld is "
                                                  "greater than team %s limit=%lld",
                         i == 0 ? "TPM" : "RPM", (long long) alloc, i == 0 ? "TPM" : "RPM",
                         (long long) json_integer_value(v), i == 0 ? "TPM" : "RPM",
                         (long long) tl);
            return false;
        }
    }
    return true;
}

/* ---- new keys ---- */

json_t *
mg_keys_key_generated_view(const mg_auth_t *a, json_t *row, const char *secret)
{
    json_t *v = json_deep_copy(row);
    const char *token = json_string_value(json_object_get(row, "token"));
    json_object_set_new(v, "key", json_string(secret));
    json_object_set_new(v, "token_id", json_string(token != NULL ? token : ""));
    json_object_set_new(v, "token", json_string(token != NULL ? token : ""));
    json_t *md = json_object_get(row, "metadata");
    json_object_set_new(v, "tags", json_object_get(md, "tags") != NULL
                                       ? json_incref(json_object_get(md, "tags"))
                                       : json_null());
    json_object_set_new(v, "model_rpm_limit",
                        json_object_get(md, "model_rpm_limit") != NULL
                            ? json_incref(json_object_get(md, "model_rpm_limit"))
                            : json_null());
    json_object_set_new(v, "model_tpm_limit",
                        json_object_get(md, "model_tpm_limit") != NULL
                            ? json_incref(json_object_get(md, "model_tpm_limit"))
                            : json_null());
    json_t *bud = mg_keys_budget_view(a, row);
    json_object_set_new(v, "soft_budget", json_is_object(bud) && json_object_get(bud, "soft_budget")
                                              ? json_incref(json_object_get(bud, "soft_budget"))
                                              : json_null());
    json_object_set_new(v, "litellm_budget_table", bud);
    return v;
}

/* A full key row (LiteLLM's columns) with the given columns over the defaults. */
static json_t *
mg_kk_row_defaults(void)
{
    json_t *row = json_object();
    static const char *const nulls[] = {"key_alias", "expires", "user_id", "team_id",
                                        "max_parallel_requests", "tpm_limit", "rpm_limit",
                                        "max_budget", "budget_duration", "budget_reset_at",
                                        "budget_id", "organization_id", "blocked", NULL};
    for (const char *const *n = nulls; *n; n++) {
        json_object_set_new(row, *n, json_null());
    }
    static const char *const objs[] = {"aliases", "config", "permissions", "metadata",
                                       "model_spend", "model_max_budget", "router_settings",
                                       NULL};
    for (const char *const *n = objs; *n; n++) {
        json_object_set_new(row, *n, json_object());
    }
    static const char *const arrs[] = {"models", "allowed_cache_controls", "allowed_routes",
                                       "policies", "access_group_ids", NULL};
    for (const char *const *n = arrs; *n; n++) {
        json_object_set_new(row, *n, json_array());
    }
    json_object_set_new(row, "spend", json_real(0));
    json_object_set_new(row, "soft_budget_cooldown", json_false());
    json_object_set_new(row, "rotation_count", json_integer(0));
    json_object_set_new(row, "auto_rotate", json_false());
    return row;
}

/* Answers when a key alias is taken (by another key than self). */
static bool
mg_kk_alias_free(mg_request_t *r, const mg_auth_t *a, json_t *set, const char *self)
{
    const char *alias = json_string_value(json_object_get(set, "key_alias"));
    if (alias == NULL) {
        return true;
    }
    const mg_vkey_t *o = mg_auth_key_alias(a, alias);
    if (o != NULL && (self == NULL || strcmp(o->token, self) != 0)) {
        mg_keys_fail(r, 400, "bad_request_error", "key_alias", "Key with alias '%s' already "
                                                               "exists. Unique key aliases across "
                                                               "all keys are required.", alias);
        return false;
    }
    return true;
}

/* The team a set names must exist; its budget row must too. */
static bool
mg_kk_refs(mg_request_t *r, const mg_auth_t *a, json_t *set, const char *type,
           const mg_team_t **team)
{
    const char *tid = json_string_value(json_object_get(set, "team_id"));
    *team = NULL;
    if (tid != NULL) {
        *team = mg_auth_team(a, tid);
        if (*team == NULL) {
            mg_keys_fail_repr(r, 400, type, "error", "Unable to find team object in database. "
                                                     "Team ID: %s", tid);
            return false;
        }
    }
    const char *bid = json_string_value(json_object_get(set, "budget_id"));
    if (bid != NULL && mg_auth_budget_row(a, bid) == NULL) {
        mg_keys_fail_repr(r, 400, type, "error", "Budget not found, passed budget_id=%s", bid);
        return false;
    }
    const char *oid = json_string_value(json_object_get(set, "organization_id"));
    if (oid != NULL && mg_auth_org(a, oid) == NULL) {
        mg_keys_fail_repr(r, 400, type, "error", "Organization not found for organization_id=%s",
                          oid);
        return false;
    }
    return true;
}

/* litellm_settings.default_key_generate_params / upperbound_key_generate_params. */
static bool
mg_kk_settings(mg_request_t *r, json_t *set, const char *type)
{
    json_t *ls = r->gw->config->litellm_settings;
    json_t *def = json_object_get(ls, "default_key_generate_params");
    const char *k;
    json_t *v;
    json_object_foreach(def, k, v) {
        if (strcmp(k, "duration") == 0 || strcmp(k, "budget_duration") == 0) {
            continue; /* applied below, as durations */
        }
        json_t *cur = json_object_get(set, k);
        if (cur == NULL || json_is_null(cur) ||
            (strcmp(k, "models") == 0 && json_array_size(cur) == 0) ||
            (strcmp(k, "metadata") == 0 && json_object_size(cur) == 0)) {
            json_object_set(set, k, v);
        }
    }
    json_t *up = json_object_get(ls, "upperbound_key_generate_params");
    static const char *const nums[] = {"max_budget", "max_parallel_requests", "tpm_limit",
                                       "rpm_limit", NULL};
    for (const char *const *n = nums; *n; n++) {
        json_t *u = json_object_get(up, *n);
        if (!json_is_number(u)) {
            continue;
        }
        json_t *cur = json_object_get(set, *n);
        if (cur == NULL || json_is_null(cur)) {
            json_object_set(set, *n, u);
        } else if (json_number_value(cur) > json_number_value(u)) {
            char a[64], b[64];
            mg_fmt_pyfloat(json_number_value(cur), a, sizeof(a));
            mg_fmt_pyfloat(json_number_value(u), b, sizeof(b));
            mg_keys_fail_repr(r, 400, type, "error", "%s is over max limit set in config - "
                                                     "user_value=%s; max_value=%s", *n, a, b);
            return false;
        }
    }
    return true;
}

/* The durations of the settings (default and upper bound) against the body's. */
static bool
mg_kk_settings_durations(mg_request_t *r, json_t *b, json_t *set, const char *type)
{
    json_t *ls = r->gw->config->litellm_settings;
    json_t *def = json_object_get(ls, "default_key_generate_params");
    json_t *up = json_object_get(ls, "upperbound_key_generate_params");
    for (int i = 0; i < 2; i++) {
        const char *name = i == 0 ? "duration" : "budget_duration";
        const char *given = json_string_value(json_object_get(b, name));
        const char *dv = json_string_value(json_object_get(def, name));
        const char *uv = json_string_value(json_object_get(up, name));
        const char *eff = given != NULL ? given : dv != NULL ? dv : uv;
        if (eff == NULL) {
            continue;
        }
        int64_t ms, ums;
        if (uv != NULL && mg_auth_parse_duration(uv, &ums) == MG_OK) {
            bool never = strcmp(eff, "-1") == 0;
            if (never || (mg_auth_parse_duration(eff, &ms) == MG_OK && ms > ums)) {
                mg_keys_fail_repr(r, 400, type, "error", "%s is over max limit set in config - "
                                                         "user_value=%s; max_value=%s", name,
                                  eff, uv);
                return false;
            }
        }
        if (given == NULL && strcmp(eff, "-1") != 0) {
            if (!mg_keys_duration(r, name, eff, &ms)) {
                return false;
            }
            char iso[48];
            mg_auth_fmt_time(mg_keys_now_ms() + ms, iso, sizeof(iso));
            if (i == 0) {
                json_object_set_new(set, "expires", json_string(iso));
            } else {
                json_object_set_new(set, "budget_duration", json_string(eff));
                json_object_set_new(set, "budget_reset_at", json_string(iso));
            }
        }
    }
    return true;
}

json_t *
mg_keys_key_row_new(mg_request_t *r, json_t *set, const char *given, const char *created_by,
                    char secret[128], char token[65])
{
    const mg_auth_t *a = mg_keys_auth(r);
    if (given != NULL) {
        size_t gl = strlen(given);
        if (strncmp(given, "sk-", 3) != 0 || gl >= 128) {
            char masked[16];
            if (gl > 8 && gl < 128) {
                snprintf(masked, sizeof(masked), "%.4s****%s", given, given + gl - 4);
            } else {
                snprintf(masked, sizeof(masked), "****");
            }
            mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "Invalid key format. LiteLLM Virtual "
                                                          "Key must start with 'sk-'%s. Received: "
                                                          "%s",
                              gl >= 128 ? " and be shorter than 128 characters" : "", masked);
            return NULL;
        }
        snprintf(secret, 128, "%s", given);
    } else {
        mg_kk_new_secret(secret);
    }
    mg_keys_token_of(secret, token);
    if (mg_auth_key(a, token) != NULL) {
        memset(secret, 0, 128);
        mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "A key with this value already exists: "
                                                      "pick another key");
        return NULL;
    }
    char name[32];
    mg_auth_key_name(secret, name, sizeof(name));
    json_t *row = mg_kk_row_defaults();
    json_object_update(row, set);
    json_object_set_new(row, "token", json_string(token));
    json_object_set_new(row, "key_name", json_string(name));
    json_object_set_new(row, "created_by", json_string(created_by));
    json_object_set_new(row, "updated_by", json_string(created_by));
    return row;
}

typedef struct {
    bool service_account;
} mg_kg_opts_t;

static void
mg_kg_done(mg_request_t *r, mg_keys_op_t *op)
{
    /* the key row is the last step's */
    json_t *row = mg_keys_op_row(op, json_array_size(op->rows) - 1);
    const mg_auth_t *a = r->gw->snap != NULL ? r->gw->snap->auth : mg_keys_auth(r);
    json_t *v = mg_keys_key_generated_view(a, row, op->secret);
    mg_keys_answer(r, v, op->version);
    mg_keys_wipe_key(v);
    json_decref(v);
}

/* Checks a new key's columns in set against who asks; fills user_id.  False: answered. */
static bool
mg_kg_check(mg_request_t *r, json_t *b, json_t *set, const mg_kg_opts_t *opt, const char *type)
{
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *tid = json_string_value(json_object_get(set, "team_id"));
    if (opt->service_account) {
        if (tid == NULL) {
            mg_keys_fail_repr(r, 400, type, "error", "team_id is required for service account "
                                                     "keys. Please specify `team_id` in the "
                                                     "request body.");
            return false;
        }
        json_object_set_new(set, "user_id", json_null());
    }
    if (!mg_kk_settings(r, set, type) || !mg_kk_settings_durations(r, b, set, type)) {
        return false;
    }
    const char *uid = json_string_value(json_object_get(set, "user_id"));
    const mg_team_t *team = NULL;
    if (!mg_kk_refs(r, a, set, type, &team)) {
        return false;
    }
    if (!c.admin) {
        if (c.user_id == NULL) {
            mg_keys_fail(r, 403, type, "user_id", "Only a proxy admin or a key with a user_id can "
                                                  "create keys: this key has no user_id");
            return false;
        }
        if (uid != NULL && strcmp(uid, c.user_id) != 0) {
            mg_keys_fail(r, 403, type, NULL, "User can only create keys for themselves. Got "
                                             "user_id=%s, Your ID=%s", uid, c.user_id);
            return false;
        }
        bool team_admin = false;
        if (team != NULL) {
            team_admin = mg_keys_in_team(a, team, c.user_id, true);
            if (!mg_keys_in_team(a, team, c.user_id, false)) {
                mg_keys_fail_repr(r, 400, type, "error", "User=%s not assigned to team=%s",
                                  c.user_id, team->id);
                return false;
            }
            if (opt->service_account && !team_admin) {
                mg_keys_fail(r, 403, type, NULL, "Only a proxy admin or an admin of team=%s can "
                                                 "create its service account keys", team->id);
                return false;
            }
        }
        if (!opt->service_account) {
            /* a non-admin's key is always its own: never a key without a user */
            json_object_set_new(set, "user_id", json_string(c.user_id));
        }
        if (!mg_kb_check(r, &c, set, NULL, NULL, team, team_admin, type)) {
            return false;
        }
    }
    if (team != NULL && !mg_kb_allocation(r, a, team, set, NULL, NULL)) {
        return false;
    }
    return mg_kk_alias_free(r, a, set, NULL);
}

static void
mg_kg_generate(mg_request_t *r, json_t *b, const mg_kg_opts_t *opt)
{
    const char *type = MG_KE_ISE;
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    json_t *set = json_object();
    mg_keys_soft_t soft = {false, false, 0};
    const char *given = NULL;
    if (!mg_keys_key_parse(r, b, NULL, set, &soft, type) || !mg_keys_f_str(r, b, "key", &given) ||
        !mg_kg_check(r, b, set, opt, type)) {
        json_decref(set);
        return;
    }
    const char *by = c.user_id != NULL ? c.user_id : MG_KEYS_ADMIN_NAME;
    char secret[128], token[65];
    json_t *row = mg_keys_key_row_new(r, set, given, by, secret, token);
    json_decref(set);
    if (row == NULL) {
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kg_done);
    memcpy(op->secret, secret, sizeof(op->secret));
    memset(secret, 0, sizeof(secret));
    if (soft.set) {
        /* LiteLLM keeps a key's soft budget in a budget row of its own */
        char bid[37];
        mg_uuid4(bid);
        json_t *brow = json_pack("{s:s,s:f,s:O,s:s,s:s}", "budget_id", bid, "soft_budget",
                                 soft.value, "model_max_budget",
                                 json_object_get(row, "model_max_budget"), "created_by", by,
                                 "updated_by", by);
        mg_keys_op_add(op, mg_keys_m_put("budget", bid, brow, true));
        json_object_set_new(row, "budget_id", json_string(bid));
    }
    mg_keys_op_add(op, mg_keys_m_put("key", token, row, true));
    mg_keys_op_run(op);
}

void
mg_keys_key_generate(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kg_opts_t o = {false};
    mg_kg_generate(r, b, &o);
}

void
mg_keys_key_sa_generate(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kg_opts_t o = {true};
    mg_kg_generate(r, b, &o);
}

/* ---- /key/update and /key/regenerate ---- */

/* The public view of a key row (its token removed: LiteLLM's /key/info). */
static json_t *
mg_kk_view(const mg_auth_t *a, json_t *row, bool with_token, bool live)
{
    const char *token = json_string_value(json_object_get(row, "token"));
    json_t *v = mg_keys_row_view(row, MG_ENT_KEY, live ? token : NULL);
    if (!with_token) {
        json_object_del(v, "token");
    }
    json_object_set_new(v, "litellm_budget_table", mg_keys_budget_view(a, row));
    return v;
}

static void
mg_ku_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *row = mg_keys_op_row(op, json_array_size(op->rows) - 1);
    const mg_auth_t *a = r->gw->snap != NULL ? r->gw->snap->auth : mg_keys_auth(r);
    json_t *v = mg_kk_view(a, row, true, true);
    json_t *out = json_pack("{s:O}", "key", json_object_get(row, "token"));
    json_object_update(out, v);
    json_decref(v);
    mg_keys_answer(r, out, op->version);
    json_decref(out);
}

/*
 * Validates an update of key k by the caller and fills *set; answers and returns false when
 * refused.  LiteLLM's _validate_update_key_data with moongate's bounds.
 */
static bool
mg_ku_prepare(mg_request_t *r, json_t *b, const mg_vkey_t *k, const char *route, mg_kf_t *f,
              const char *type)
{
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    bool team_admin = false;
    if (!mg_kk_can_modify(a, &c, k, &team_admin)) {
        if (k->team == NULL) {
            mg_keys_fail(r, 403, type, NULL, "User can only create keys for themselves. Got "
                                             "user_id=%s, Your ID=%s",
                         k->user_id != NULL ? k->user_id : "None",
                         c.user_id != NULL ? c.user_id : "None");
        } else {
            mg_keys_fail(r, 403, type, NULL, "You are not authorized to %s this key: it belongs "
                                             "to team=%s, and you are neither its owner nor an "
                                             "admin of the team", route, k->team->id);
        }
        return false;
    }
    if (!mg_kf_parse(r, b, k->row, f)) {
        return false;
    }
    json_t *set = f->set;
    json_object_del(set, "key"); /* never a column */
    const char *nuid = json_string_value(json_object_get(set, "user_id"));
    if (!c.admin && json_object_get(set, "user_id") != NULL &&
        !(nuid != NULL && k->user_id != NULL && strcmp(nuid, k->user_id) == 0)) {
        mg_keys_fail(r, 403, type, NULL, "User=%s is not allowed to update key=%s to belong to "
                                         "user=%s", c.user_id ? c.user_id : "None", k->token,
                     nuid != NULL ? nuid : "None");
        return false;
    }
    const mg_team_t *team = NULL;
    if (!mg_kk_refs(r, a, set, type, &team)) {
        return false;
    }
    json_t *tset = json_object_get(set, "team_id");
    if (tset == NULL) {
        team = k->team;
    }
    bool change = tset != NULL && !(json_is_string(tset) && k->team_id != NULL &&
                                     strcmp(json_string_value(tset), k->team_id) == 0);
    if (change && !c.admin && k->team_id != NULL && json_is_null(tset)) {
        mg_keys_fail(r, 403, type, "team_id", "Only a proxy admin can take a key out of its "
                                              "team=%s", k->team_id);
        return false;
    }
    if (change && team != NULL) {
        /* LiteLLM's validate_key_team_change */
        json_t *km = json_object_get(set, "models") ? json_object_get(set, "models") : k->models;
        size_t i;
        json_t *m;
        json_array_foreach(km, i, m) {
            const char *mn = json_string_value(m);
            if (strcmp(mn, "all-team-models") != 0 && !mg_kk_entry_within(r->snap, team->models,
                                                                          team, mn) &&
                json_array_size(team->models) > 0) {
                mg_keys_fail(r, 401, "team_model_access_denied", "model",
                             "Team not allowed to access model. Team=%s, Model=%s. Allowed team "
                             "models = %s", team->id, mn, mg_keys_pylist(r, team->models));
                return false;
            }
        }
        if (team->lim.tpm > 0 && k->lim.tpm > team->lim.tpm) {
            mg_keys_fail(r, 403, type, NULL, "Key=%s has a tpm_limit=%lld which is greater than "
                                             "the team's tpm_limit=%lld.", k->token,
                         (long long) k->lim.tpm, (long long) team->lim.tpm);
            return false;
        }
        if (team->lim.rpm > 0 && k->lim.rpm > team->lim.rpm) {
            mg_keys_fail(r, 403, type, NULL, "Key=%s has a rpm_limit=%lld which is greater than "
                                             "the team's rpm_limit=%lld.", k->token,
                         (long long) k->lim.rpm, (long long) team->lim.rpm);
            return false;
        }
        if (k->user_id != NULL && !mg_keys_in_team(a, team, k->user_id, false)) {
            mg_keys_fail(r, 403, type, NULL, "User=%s is not a member of the team=%s. Check team "
                                             "members via `/team/info`.", k->user_id, team->id);
            return false;
        }
        if (!c.admin && !mg_keys_in_team(a, team, c.user_id, true)) {
            mg_keys_fail(r, 403, type, NULL, "User=%s is not a Proxy Admin or Team Admin for "
                                             "team=%s. Please ask your Proxy Admin to allow this "
                                             "action under 'Member Permissions' for this team.",
                         c.user_id ? c.user_id : "None", team->id);
            return false;
        }
        team_admin = team_admin || mg_keys_in_team(a, team, c.user_id, true);
    }
    if (!mg_kb_check(r, &c, set, k->row, k, team, team_admin, type)) {
        return false;
    }
    if (team != NULL && !mg_kb_allocation(r, a, team, set, k->row, k->token)) {
        return false;
    }
    if (!mg_kk_alias_free(r, a, set, k->token)) {
        return false;
    }
    if (json_object_get(set, "spend") != NULL) {
        mg_keys_mark_spend_set(set, k->row); /* the counters re-seed from the new spend */
    }
    json_object_set_new(set, "updated_by", json_string(c.user_id ? c.user_id : MG_KEYS_ADMIN_NAME));
    return true;
}

/* Adds the steps of a soft_budget change of key k (a budget row of its own). */
static void
mg_ku_soft_budget(mg_keys_op_t *op, const mg_kf_t *f, const mg_vkey_t *k, json_t *set,
                  const char *by)
{
    if (!f->soft->present) {
        return;
    }
    const char *bid = json_string_value(json_object_get(k->row, "budget_id"));
    if (bid != NULL) {
        json_t *bs = json_pack("{s:o,s:s}", "soft_budget", f->soft->set ? json_real(f->soft->value)
                                                                         : json_null(),
                               "updated_by", by);
        mg_keys_op_add(op, mg_keys_m_patch("budget", bid, bs, NULL));
        return;
    }
    if (!f->soft->set) {
        return;
    }
    char nb[37];
    mg_uuid4(nb);
    mg_keys_op_add(op, mg_keys_m_put("budget", nb,
                                     json_pack("{s:s,s:f,s:s,s:s}", "budget_id", nb,
                                               "soft_budget", f->soft->value, "created_by", by,
                                               "updated_by", by),
                                     true));
    json_object_set_new(set, "budget_id", json_string(nb));
}

void
mg_keys_key_update(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    const char *key = NULL, *alias = NULL;
    if (!mg_keys_f_str(r, b, "key", &key) || !mg_keys_f_str(r, b, "key_alias", &alias)) {
        return;
    }
    if (key == NULL && alias == NULL) {
        mg_keys_422(r, "key", "Value error, either key or key_alias must be provided");
        return;
    }
    char token[65];
    const mg_vkey_t *k = mg_kk_find(a, key, key == NULL ? alias : NULL, token);
    if (k == NULL) {
        mg_keys_fail_repr(r, 404, MG_KE_AUTH, "error", "Key not found: %s",
                          key != NULL ? token : alias);
        return;
    }
    json_t *b2 = json_deep_copy(b);
    if (key == NULL) {
        json_object_del(b2, "key_alias"); /* it named the key; it is not a change */
    }
    mg_keys_soft_t soft = {false, false, 0};
    mg_kf_t f = {.set = json_object(), .soft = &soft, .type = MG_KE_AUTH};
    if (!mg_ku_prepare(r, b2, k, "update", &f, MG_KE_AUTH)) {
        json_decref(b2);
        json_decref(f.set);
        return;
    }
    json_decref(b2);
    mg_keys_op_t *op = mg_keys_op_new(r, mg_ku_done);
    mg_ku_soft_budget(op, &f, k, f.set,
                      json_string_value(json_object_get(f.set, "updated_by")));
    mg_keys_op_add(op, mg_keys_m_patch("key", k->token, f.set, NULL));
    mg_keys_op_run(op);
}

static void
mg_kr_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *row = mg_keys_op_row(op, json_array_size(op->rows) - 1);
    const mg_auth_t *a = r->gw->snap != NULL ? r->gw->snap->auth : mg_keys_auth(r);
    json_t *v = mg_keys_key_generated_view(a, row, op->secret);
    mg_keys_answer(r, v, op->version);
    mg_keys_wipe_key(v);
    json_decref(v);
}

void
mg_keys_key_regenerate(mg_request_t *r, json_t *b, const char *arg)
{
    const mg_auth_t *a = mg_keys_auth(r);
    const char *key = NULL, *new_key = NULL, *nmk = NULL;
    if (!mg_keys_f_str(r, b, "key", &key) || !mg_keys_f_str(r, b, "new_key", &new_key) ||
        !mg_keys_f_str(r, b, "new_master_key", &nmk)) {
        return;
    }
    if (key == NULL) {
        key = arg;
    }
    if (nmk != NULL) {
        mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "moongate: the master key is not rotated "
                                                      "through /key/regenerate; set a new "
                                                      "LITELLM_MASTER_KEY (or "
                                                      "general_settings.master_key) and restart");
        return;
    }
    if (key == NULL || key[0] == '\0') {
        mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "No key passed in.");
        return;
    }
    char token[65];
    const mg_vkey_t *k = mg_kk_find(a, key, NULL, token);
    if (k == NULL) {
        mg_keys_fail_repr(r, 404, MG_KE_ISE, "error", "Key %s not found.", token);
        return;
    }
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    bool ta;
    if (!mg_kk_can_modify(a, &c, k, &ta)) {
        mg_keys_fail_repr(r, 403, MG_KE_ISE, "error", "You are not authorized to regenerate this "
                                                      "key");
        return;
    }
    json_t *b2 = json_deep_copy(b);
    json_object_del(b2, "key");
    json_object_del(b2, "new_key");
    json_object_del(b2, "new_master_key");
    mg_keys_soft_t soft = {false, false, 0};
    mg_kf_t f = {.set = json_object(), .soft = &soft, .type = MG_KE_ISE};
    if (!mg_ku_prepare(r, b2, k, "regenerate", &f, MG_KE_ISE)) {
        json_decref(b2);
        json_decref(f.set);
        return;
    }
    json_decref(b2);
    char secret[128];
    if (new_key != NULL) {
        if (strncmp(new_key, "sk-", 3) != 0 || strlen(new_key) >= sizeof(secret)) {
            json_decref(f.set);
            mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "New key must start with 'sk-'. This is "
                                                          "to distinguish a key hash (used by "
                                                          "litellm for logging / internal logic) "
                                                          "from the actual key.");
            return;
        }
        snprintf(secret, sizeof(secret), "%s", new_key);
    } else {
        mg_kk_new_secret(secret);
    }
    char nt[65], name[32];
    mg_keys_token_of(secret, nt);
    mg_auth_key_name(secret, name, sizeof(name));
    if (mg_auth_key(a, nt) != NULL) {
        memset(secret, 0, sizeof(secret));
        json_decref(f.set);
        mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "A key with this value already exists: pick "
                                                      "another new_key");
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kr_done);
    memcpy(op->secret, secret, sizeof(op->secret));
    memset(secret, 0, sizeof(secret));
    mg_ku_soft_budget(op, &f, k, f.set, json_string_value(json_object_get(f.set, "updated_by")));
    /* the same row under the new hash; the old hash goes first, so at no point do both work */
    json_t *row = json_deep_copy(k->row);
    json_object_update(row, f.set);
    json_decref(f.set);
    json_object_set_new(row, "token", json_string(nt));
    json_object_set_new(row, "key_name", json_string(name));
    double rc = mg_kk_num(k->row, "rotation_count", 0);
    json_object_set_new(row, "rotation_count", json_integer((json_int_t) rc + 1));
    char now[48];
    mg_keys_now_iso(now);
    json_object_set_new(row, "last_rotation_at", json_string(now));
    /* the new hash's counter starts where the old one's is */
    json_object_set_new(row, "spend", json_real(mg_keys_live_spend(MG_ENT_KEY, k->token, k->row)));
    mg_keys_mark_spend_set(row, k->row);
    json_object_del(row, "updated_at");
    mg_keys_op_add(op, mg_keys_m_delete("key", json_pack("[s]", k->token)));
    mg_keys_op_add(op, mg_keys_m_put("key", nt, row, true));
    mg_keys_op_run(op);
}

/* ---- /key/delete ---- */

static void
mg_kd_done(mg_request_t *r, mg_keys_op_t *op)
{
    mg_keys_answer(r, json_object_get(op->ctx, "answer"), op->version);
}

void
mg_keys_key_delete(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    json_t *keys = NULL, *aliases = NULL;
    if (!mg_keys_f_strarr(r, b, "keys", &keys) || !mg_keys_f_strarr(r, b, "key_aliases", &aliases)) {
        return;
    }
    if (json_array_size(keys) == 0 && json_array_size(aliases) == 0) {
        mg_keys_422(r, "keys", "Value error, At least one of 'keys' or 'key_aliases' must be "
                               "provided.");
        return;
    }
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    bool by_alias = json_array_size(keys) == 0;
    json_t *list = by_alias ? aliases : keys;
    json_t *tokens = json_array();
    json_t *answered = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        char token[65];
        const mg_vkey_t *k = by_alias ? mg_kk_find(a, NULL, s, token) : mg_kk_find(a, s, NULL, token);
        if (k == NULL) {
            json_decref(tokens);
            json_decref(answered);
            mg_keys_fail_repr(r, 404, MG_KE_ISE, "error", "No keys found: %s%s is not a key",
                              by_alias ? "key_alias=" : "", by_alias ? s : token);
            return;
        }
        bool ta;
        if (!mg_kk_can_modify(a, &c, k, &ta)) {
            json_decref(tokens);
            json_decref(answered);
            mg_keys_fail_repr(r, 403, MG_KE_ISE, "error", "You are not authorized to delete this "
                                                          "key");
            return;
        }
        if (!mg_keys_str_in_list(tokens, k->token)) {
            json_array_append_new(tokens, json_string(k->token));
        }
        /* LiteLLM answers what was passed; a raw key is answered as its hash (never echoed) */
        json_array_append_new(answered, json_string(by_alias || strncmp(s, "sk-", 3) != 0
                                                        ? s
                                                        : k->token));
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kd_done);
    json_object_set_new(op->ctx, "answer", json_pack("{s:o}", "deleted_keys", answered));
    mg_keys_op_add(op, mg_keys_m_delete("key", tokens));
    mg_keys_op_run(op);
}

/* ---- /key/info, /key/list ---- */

/* LiteLLM's _can_user_query_key_info. */
static bool
mg_kk_can_read(const mg_auth_t *a, const mg_keys_caller_t *c, const mg_vkey_t *k)
{
    if (c->admin || c->viewer) {
        return true;
    }
    if (c->key != NULL && c->key == k) {
        return true;
    }
    if (k->user_id != NULL && c->user_id != NULL && strcmp(k->user_id, c->user_id) == 0) {
        return true;
    }
    return k->team != NULL && c->user_id != NULL && mg_keys_in_team(a, k->team, c->user_id, false);
}

void
mg_keys_key_info(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *key = mg_keys_query(r, "key");
    char token[65];
    const mg_vkey_t *k;
    if (key != NULL && key[0] != '\0') {
        k = mg_kk_find(a, key, NULL, token);
    } else if (c.key != NULL) {
        k = c.key;
        memcpy(token, k->token, 65);
    } else {
        /* the master key has no row (LiteLLM: its hash is not in the key table either) */
        mg_keys_fail(r, 404, "not_found_error", "key", "Key not found in database");
        return;
    }
    if (k == NULL) {
        mg_keys_fail(r, 404, "not_found_error", "key", "Key not found in database");
        return;
    }
    if (!mg_kk_can_read(a, &c, k)) {
        mg_keys_fail(r, 403, MG_KE_ISE, NULL, "You are not allowed to access this key's info. Your "
                                              "role=%s", c.role);
        return;
    }
    json_t *body = json_pack("{s:s,s:o}", "key", token, "info", mg_kk_view(a, k->row, false, true));
    mg_keys_answer(r, body, 0);
    json_decref(body);
}

typedef struct {
    const mg_vkey_t *k;
    const char *sort;           /* borrowed: the sort column's text or NULL */
    double num;
} mg_kl_item_t;

static int mg_kl_desc;
static bool mg_kl_numeric;

static int
mg_kl_cmp(const void *x, const void *y)
{
    const mg_kl_item_t *a = x, *b = y;
    int c;
    if (mg_kl_numeric) {
        c = a->num < b->num ? -1 : a->num > b->num ? 1 : 0;
    } else {
        c = strcmp(a->sort ? a->sort : "", b->sort ? b->sort : "");
    }
    if (c == 0) {
        c = strcmp(a->k->token, b->k->token);
    }
    return mg_kl_desc ? -c : c;
}

void
mg_keys_key_list(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_auth_t *a = mg_keys_auth(r);
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    const char *ps = mg_keys_query(r, "page"), *ss = mg_keys_query(r, "size");
    long page = ps != NULL ? strtol(ps, NULL, 10) : 1, size = ss != NULL ? strtol(ss, NULL, 10) : 10;
    if (page < 1) {
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s}]", "type", "greater_than_equal", "loc",
                                       "query", "page", "msg", "Input should be greater than or "
                                                               "equal to 1"));
        return;
    }
    if (size < 1 || size > 100) {
        mg_gw_detail(r, 422, json_pack("[{s:s,s:[s,s],s:s}]", "type", size < 1 ? "greater_than_equal"
                                                                               : "less_than_equal",
                                       "loc", "query", "size", "msg",
                                       size < 1 ? "Input should be greater than or equal to 1"
                                                : "Input should be less than or equal to 100"));
        return;
    }
    const char *user_id = mg_keys_query(r, "user_id"), *team_id = mg_keys_query(r, "team_id");
    const char *alias = mg_keys_query(r, "key_alias"), *hash = mg_keys_query(r, "key_hash");
    const char *org = mg_keys_query(r, "organization_id");
    const char *sort_by = mg_keys_query(r, "sort_by"), *order = mg_keys_query(r, "sort_order");
    bool full = mg_keys_query_bool(r, "return_full_object", false);
    bool team_keys = mg_keys_query_bool(r, "include_team_keys", false);
    bool created = mg_keys_query_bool(r, "include_created_by_keys", false);
    const char *status = mg_keys_query(r, "status");
    if (status != NULL) {
        mg_keys_fail(r, 400, MG_KE_ISE, NULL, "%s", status[0] && strcmp(status, "deleted") == 0
                                                        ? "moongate keeps no table of deleted keys: "
                                                          "status=deleted is not implemented"
                                                        : "{'error': \"Invalid status value. "
                                                          "Currently only 'deleted' is "
                                                          "supported.\"}");
        return;
    }
    if (sort_by != NULL) {
        static const char *const cols[] = {"spend", "max_budget", "created_at", "updated_at",
                                           "token", "key_alias", NULL};
        bool ok = false;
        for (const char *const *col = cols; *col && !ok; col++) {
            ok = strcmp(*col, sort_by) == 0;
        }
        if (!ok) {
            mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "Invalid sort column. Must be one of: "
                                                          "spend, max_budget, created_at, "
                                                          "updated_at, token, key_alias");
            return;
        }
    }
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        mg_keys_fail_repr(r, 400, MG_KE_ISE, "error", "Invalid sort order. Must be 'asc' or 'desc'");
        return;
    }
    bool all = c.admin || c.viewer;
    if (!all) {
        /* LiteLLM's validate_key_list_check */
        const mg_user_t *u = c.user_id != NULL ? mg_auth_user(a, c.user_id) : NULL;
        if (u == NULL) {
            mg_keys_fail(r, 403, "bad_request_error", "user_id", "You are not authorized to access "
                                                                 "this endpoint. No 'user_id' is "
                                                                 "associated with your API key.");
            return;
        }
        if (user_id != NULL && strcmp(user_id, c.user_id) != 0) {
            mg_keys_fail(r, 403, "bad_request_error", "user_id", "You are not authorized to check "
                                                                 "another user's keys");
            return;
        }
        if (team_id != NULL && !mg_keys_in_team(a, mg_auth_team(a, team_id), c.user_id, false)) {
            mg_keys_fail(r, 403, "bad_request_error", "team_id", "You are not authorized to check "
                                                                 "this team's keys");
            return;
        }
        if (org != NULL) {
            mg_keys_fail(r, 403, "bad_request_error", "organization_id",
                         "You are not authorized to check this organization's keys");
            return;
        }
        if (hash != NULL) {
            const mg_vkey_t *hk = mg_auth_key(a, hash);
            if (hk != NULL && !mg_kk_can_read(a, &c, hk)) {
                mg_keys_fail(r, 403, MG_KE_ISE, NULL, "You are not allowed to access this key's "
                                                      "info. Your role=%s", c.role);
                return;
            }
        }
        if (user_id == NULL) {
            user_id = c.user_id;
        }
    }
    mg_kl_item_t *items = mg_arena_calloc(r->arena, (a->nkeys + 1) * sizeof(*items));
    size_t n = 0;
    for (size_t i = 0; i < a->nkeys; i++) {
        const mg_vkey_t *k = &a->keys[i];
        if (k->team_id != NULL && strcmp(k->team_id, MG_KEYS_UI_TEAM) == 0) {
            continue;
        }
        /* the caller's own keys (and the filters), or what include_* adds */
        bool own = (user_id == NULL || (k->user_id && strcmp(k->user_id, user_id) == 0)) &&
                   (alias == NULL || (k->key_alias && strcmp(k->key_alias, alias) == 0)) &&
                   (org == NULL || (k->org_id && strcmp(k->org_id, org) == 0)) &&
                   (hash == NULL || strcmp(k->token, hash) == 0);
        bool extra = false;
        if (!all && k->team != NULL && (team_keys || created)) {
            bool tadmin = mg_keys_in_team(a, k->team, c.user_id, true);
            bool member = mg_keys_in_team(a, k->team, c.user_id, false);
            extra = (team_keys && tadmin) || (member && k->user_id == NULL);
            const char *cb = json_string_value(json_object_get(k->row, "created_by"));
            extra = extra || (created && member && cb != NULL && strcmp(cb, c.user_id) == 0);
        }
        if (!own && !extra) {
            continue;
        }
        if (team_id != NULL && (k->team_id == NULL || strcmp(k->team_id, team_id) != 0)) {
            continue;
        }
        mg_kl_item_t *it = &items[n++];
        it->k = k;
        const char *col = sort_by != NULL ? sort_by : "created_at";
        json_t *sv = json_object_get(k->row, col);
        if (strcmp(col, "spend") == 0) {
            it->num = mg_keys_live_spend(MG_ENT_KEY, k->token, k->row);
        } else {
            it->num = json_is_number(sv) ? json_number_value(sv) : -1;
        }
        it->sort = json_string_value(sv);
    }
    mg_kl_desc = order == NULL || strcmp(order, "desc") == 0;
    mg_kl_numeric = sort_by != NULL && (strcmp(sort_by, "spend") == 0 ||
                                        strcmp(sort_by, "max_budget") == 0);
    qsort(items, n, sizeof(*items), mg_kl_cmp);
    json_t *out = json_array();
    size_t from = (size_t) (page - 1) * (size_t) size;
    for (size_t i = from; i < n && i < from + (size_t) size; i++) {
        const mg_vkey_t *k = items[i].k;
        json_array_append_new(out, full ? mg_kk_view(a, k->row, true, false) : json_string(k->token));
    }
    json_t *body = json_pack("{s:o,s:I,s:I,s:I}", "keys", out, "total_count", (json_int_t) n,
                             "current_page", (json_int_t) page, "total_pages",
                             (json_int_t) ((n + (size_t) size - 1) / (size_t) size));
    mg_keys_answer(r, body, 0);
    json_decref(body);
}

/* ---- /key/block, /key/unblock ---- */

static void
mg_kbk_done(mg_request_t *r, mg_keys_op_t *op)
{
    json_t *row = mg_keys_op_row(op, 0);
    json_t *v = mg_keys_row_view(row, MG_ENT_KEY, json_string_value(json_object_get(row, "token")));
    mg_keys_answer(r, v, op->version);
    json_decref(v);
}

static void
mg_kk_block(mg_request_t *r, json_t *b, bool block)
{
    const mg_auth_t *a = mg_keys_auth(r);
    const char *key = NULL;
    if (!mg_keys_f_str(r, b, "key", &key)) {
        return;
    }
    if (key == NULL) {
        mg_keys_422(r, "key", "Field required");
        return;
    }
    /* LiteLLM's is_valid_api_key: a sk- key or a 64-hex hash */
    size_t kl = strlen(key);
    bool hex = kl == 64 && strspn(key, "0123456789abcdefABCDEF") == 64;
    if (!hex && (strncmp(key, "sk-", 3) != 0 || kl < 4)) {
        mg_keys_fail(r, 400, "bad_request_error", "key", "Invalid key format.");
        return;
    }
    char token[65];
    const mg_vkey_t *k = mg_kk_find(a, key, NULL, token);
    if (k == NULL) {
        mg_keys_fail(r, 404, "bad_request_error", "key", "Key %s not found", token);
        return;
    }
    mg_keys_caller_t c;
    mg_keys_caller(r, &c);
    bool ta;
    if (!c.admin && (!block || !mg_kk_can_modify(a, &c, k, &ta))) {
        mg_keys_fail(r, 403, MG_KE_AUTH, NULL, "%s", block ? "Only a proxy admin, the key's "
                                                             "owner or its team's admin can block "
                                                             "a key"
                                                           : "Only a proxy admin can unblock a "
                                                             "key");
        return;
    }
    mg_keys_op_t *op = mg_keys_op_new(r, mg_kbk_done);
    mg_keys_op_add(op, mg_keys_m_patch("key", k->token,
                                       json_pack("{s:b,s:s}", "blocked", block, "updated_by",
                                                 c.user_id ? c.user_id : MG_KEYS_ADMIN_NAME),
                                       NULL));
    mg_keys_op_run(op);
}

void
mg_keys_key_block(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kk_block(r, b, true);
}

void
mg_keys_key_unblock(mg_request_t *r, json_t *b, const char *arg)
{
    (void) arg;
    mg_kk_block(r, b, false);
}

/* ---- /key/health ---- */

void
mg_keys_key_health(mg_request_t *r, json_t *b, const char *arg)
{
    (void) b;
    (void) arg;
    const mg_vkey_t *k = r->who.key;
    json_t *logging = k != NULL ? json_object_get(k->metadata, "logging") : NULL;
    json_t *body;
    if (logging != NULL) {
        json_t *names = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(logging, i, v) {
            const char *n = json_string_value(json_object_get(v, "callback_name"));
            json_array_append_new(names, json_string(n != NULL ? n : ""));
        }
        body = json_pack("{s:s,s:{s:o,s:s,s:s}}", "key", "unhealthy", "logging_callbacks",
                         "callbacks", names, "status", "unhealthy", "details",
                         "moongate does not run key-based logging callbacks (metadata.logging)");
    } else {
        body = json_pack("{s:s,s:n}", "key", "healthy", "logging_callbacks");
    }
    mg_keys_answer(r, body, 0);
    json_decref(body);
}
