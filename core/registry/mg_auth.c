/*
 * mg_auth.c -- the identity table (see mg_auth.h): LiteLLM's rows read into structs.
 */
#include "mg_auth.h"

#include "../base/mg_arena.h"
#include "../base/mg_util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- column readers ---- */

static const char *
mg_auth_str(json_t *row, const char *col)
{
    const char *s = json_string_value(json_object_get(row, col));
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static double
mg_auth_num(json_t *row, const char *col, double dflt)
{
    json_t *v = json_object_get(row, col);
    if (json_is_number(v)) {
        return json_number_value(v);
    }
    if (json_is_string(v)) {
        /* PostgreSQL's BigInt/numeric may arrive as text */
        char *end;
        double d = strtod(json_string_value(v), &end);
        if (end != json_string_value(v) && *end == '\0') {
            return d;
        }
    }
    return dflt;
}

static int64_t
mg_auth_int(json_t *row, const char *col)
{
    double d = mg_auth_num(row, col, -1);
    return d < 0 || isnan(d) ? -1 : (int64_t) d;
}

static json_t *
mg_auth_obj(json_t *row, const char *col)
{
    json_t *v = json_object_get(row, col);
    return json_is_object(v) && json_object_size(v) > 0 ? v : NULL;
}

static json_t *
mg_auth_arr(json_t *row, const char *col)
{
    json_t *v = json_object_get(row, col);
    return json_is_array(v) ? v : NULL;
}

static int64_t
mg_auth_time(json_t *row, const char *col)
{
    const char *s = mg_auth_str(row, col);
    int64_t ms = 0;
    if (s != NULL && mg_auth_parse_time(s, &ms) == MG_OK) {
        return ms;
    }
    json_t *v = json_object_get(row, col);
    if (json_is_number(v)) {
        return (int64_t) (json_number_value(v) * 1000); /* epoch seconds */
    }
    return 0;
}

/* An entity's limit columns; "fallback" (a budget row) fills what the row leaves unset. */
static void
mg_auth_limits(json_t *row, json_t *fallback, mg_limdef_t *l)
{
    l->max_budget = mg_auth_num(row, "max_budget", -1);
    l->soft_budget = mg_auth_num(row, "soft_budget", -1);
    l->rpm = mg_auth_int(row, "rpm_limit");
    l->tpm = mg_auth_int(row, "tpm_limit");
    l->parallel = mg_auth_int(row, "max_parallel_requests");
    l->budget_duration = mg_auth_str(row, "budget_duration");
    l->reset_at_ms = mg_auth_time(row, "budget_reset_at");
    l->model_max_budget = mg_auth_obj(row, "model_max_budget");
    json_t *md = mg_auth_obj(row, "metadata");
    l->model_rpm = md != NULL ? mg_auth_obj(md, "model_rpm_limit") : NULL;
    l->model_tpm = md != NULL ? mg_auth_obj(md, "model_tpm_limit") : NULL;
    if (l->model_rpm == NULL) {
        l->model_rpm = mg_auth_obj(row, "model_rpm_limit");
    }
    if (l->model_tpm == NULL) {
        l->model_tpm = mg_auth_obj(row, "model_tpm_limit");
    }
    if (fallback == NULL) {
        return;
    }
    if (l->max_budget < 0) {
        l->max_budget = mg_auth_num(fallback, "max_budget", -1);
    }
    if (l->soft_budget < 0) {
        l->soft_budget = mg_auth_num(fallback, "soft_budget", -1);
    }
    if (l->rpm < 0) {
        l->rpm = mg_auth_int(fallback, "rpm_limit");
    }
    if (l->tpm < 0) {
        l->tpm = mg_auth_int(fallback, "tpm_limit");
    }
    if (l->parallel < 0) {
        l->parallel = mg_auth_int(fallback, "max_parallel_requests");
    }
    if (l->budget_duration == NULL) {
        l->budget_duration = mg_auth_str(fallback, "budget_duration");
        l->reset_at_ms = mg_auth_time(fallback, "budget_reset_at");
    }
    if (l->model_max_budget == NULL) {
        l->model_max_budget = mg_auth_obj(fallback, "model_max_budget");
    }
}

static json_t *
mg_auth_table(json_t *idents, const char *t)
{
    json_t *o = json_object_get(idents, t);
    return json_is_object(o) ? o : NULL;
}

static void
mg_auth_index(mg_map_t *m, const char *k, void *v)
{
    if (k != NULL) {
        mg_map_put(m, k, strlen(k), v);
    }
}

mg_auth_t *
mg_auth_build(json_t *idents, json_t *warnings)
{
    mg_auth_t *a = mg_xcalloc(1, sizeof(*a));
    a->idents = idents != NULL ? json_incref(idents) : json_object();
    mg_map_init(&a->by_token);
    mg_map_init(&a->by_alias);
    mg_map_init(&a->by_team);
    mg_map_init(&a->by_user);
    mg_map_init(&a->by_end_user);
    mg_map_init(&a->by_org);
    mg_map_init(&a->by_budget);
    const char *id;
    json_t *row;
    json_t *t = mg_auth_table(a->idents, "budget");
    json_object_foreach(t, id, row) {
        mg_auth_index(&a->by_budget, id, row);
    }
    /* organizations, teams, users before keys: keys point at them */
    t = mg_auth_table(a->idents, "org");
    a->orgs = mg_xcalloc(json_object_size(t) + 1, sizeof(mg_org_t));
    json_object_foreach(t, id, row) {
        mg_org_t *o = &a->orgs[a->norgs++];
        o->id = id;
        o->alias = mg_auth_str(row, "organization_alias");
        o->row = row;
        o->models = mg_auth_arr(row, "models");
        json_t *b = mg_auth_str(row, "budget_id") ? mg_auth_budget_row(a, mg_auth_str(row, "budget_id")) : NULL;
        mg_auth_limits(row, b, &o->lim);
        o->spend = mg_auth_num(row, "spend", 0);
        mg_auth_index(&a->by_org, id, o);
    }
    t = mg_auth_table(a->idents, "team");
    a->teams = mg_xcalloc(json_object_size(t) + 1, sizeof(mg_team_t));
    json_object_foreach(t, id, row) {
        mg_team_t *tm = &a->teams[a->nteams++];
        tm->id = id;
        tm->alias = mg_auth_str(row, "team_alias");
        tm->org_id = mg_auth_str(row, "organization_id");
        tm->row = row;
        tm->blocked = json_is_true(json_object_get(row, "blocked"));
        tm->models = mg_auth_arr(row, "models");
        tm->members = mg_auth_arr(row, "members_with_roles");
        tm->admins = mg_auth_arr(row, "admins");
        json_t *b = mg_auth_str(row, "budget_id") ? mg_auth_budget_row(a, mg_auth_str(row, "budget_id")) : NULL;
        mg_auth_limits(row, b, &tm->lim);
        tm->spend = mg_auth_num(row, "spend", 0);
        tm->org = tm->org_id != NULL ? (mg_org_t *) mg_auth_org(a, tm->org_id) : NULL;
        mg_auth_index(&a->by_team, id, tm);
    }
    t = mg_auth_table(a->idents, "user");
    a->users = mg_xcalloc(json_object_size(t) + 1, sizeof(mg_user_t));
    json_object_foreach(t, id, row) {
        mg_user_t *u = &a->users[a->nusers++];
        u->id = id;
        u->email = mg_auth_str(row, "user_email");
        u->role = mg_auth_str(row, "user_role");
        u->row = row;
        u->models = mg_auth_arr(row, "models");
        u->teams = mg_auth_arr(row, "teams");
        mg_auth_limits(row, NULL, &u->lim);
        u->spend = mg_auth_num(row, "spend", 0);
        mg_auth_index(&a->by_user, id, u);
    }
    t = mg_auth_table(a->idents, "end_user");
    a->end_users = mg_xcalloc(json_object_size(t) + 1, sizeof(mg_enduser_t));
    json_object_foreach(t, id, row) {
        mg_enduser_t *e = &a->end_users[a->nend_users++];
        e->id = id;
        e->alias = mg_auth_str(row, "alias");
        e->row = row;
        e->blocked = json_is_true(json_object_get(row, "blocked"));
        json_t *b = mg_auth_str(row, "budget_id") ? mg_auth_budget_row(a, mg_auth_str(row, "budget_id")) : NULL;
        /* LiteLLM keeps an end user's limits in its budget row; a row may carry them too */
        json_t *own = mg_auth_obj(row, "litellm_budget_table");
        mg_auth_limits(own != NULL ? own : row, b, &e->lim);
        e->spend = mg_auth_num(row, "spend", 0);
        mg_auth_index(&a->by_end_user, id, e);
    }
    t = mg_auth_table(a->idents, "key");
    a->keys = mg_xcalloc(json_object_size(t) + 1, sizeof(mg_vkey_t));
    json_object_foreach(t, id, row) {
        if (strlen(id) != 64) {
            if (warnings != NULL) {
                json_array_append_new(warnings, json_sprintf("virtual key row %.12s... skipped: its "
                                                             "token is not a SHA-256 hex digest", id));
            }
            continue;
        }
        mg_vkey_t *k = &a->keys[a->nkeys++];
        k->token = id;
        k->key_name = mg_auth_str(row, "key_name");
        k->key_alias = mg_auth_str(row, "key_alias");
        k->user_id = mg_auth_str(row, "user_id");
        k->team_id = mg_auth_str(row, "team_id");
        k->org_id = mg_auth_str(row, "organization_id");
        k->row = row;
        k->blocked = json_is_true(json_object_get(row, "blocked"));
        k->expires_ms = mg_auth_time(row, "expires");
        k->models = mg_auth_arr(row, "models");
        k->aliases = mg_auth_obj(row, "aliases");
        k->metadata = mg_auth_obj(row, "metadata");
        k->tags = k->metadata != NULL ? mg_auth_arr(k->metadata, "tags") : NULL;
        if (k->tags == NULL) {
            k->tags = mg_auth_arr(row, "tags");
        }
        k->allowed_routes = mg_auth_arr(row, "allowed_routes");
        json_t *b = mg_auth_str(row, "budget_id") ? mg_auth_budget_row(a, mg_auth_str(row, "budget_id")) : NULL;
        mg_auth_limits(row, b, &k->lim);
        k->spend = mg_auth_num(row, "spend", 0);
        k->team = k->team_id != NULL ? (mg_team_t *) mg_auth_team(a, k->team_id) : NULL;
        k->user = k->user_id != NULL ? (mg_user_t *) mg_auth_user(a, k->user_id) : NULL;
        mg_auth_index(&a->by_token, id, k);
        mg_auth_index(&a->by_alias, k->key_alias, k);
    }
    return a;
}

void
mg_auth_free(mg_auth_t *a)
{
    if (a == NULL) {
        return;
    }
    mg_map_free(&a->by_token);
    mg_map_free(&a->by_alias);
    mg_map_free(&a->by_team);
    mg_map_free(&a->by_user);
    mg_map_free(&a->by_end_user);
    mg_map_free(&a->by_org);
    mg_map_free(&a->by_budget);
    free(a->keys);
    free(a->teams);
    free(a->users);
    free(a->end_users);
    free(a->orgs);
    json_decref(a->idents);
    free(a);
}

static void *
mg_auth_get(const mg_map_t *m, const char *k)
{
    return k != NULL ? mg_map_get(m, k, strlen(k)) : NULL;
}

const mg_vkey_t *
mg_auth_key(const mg_auth_t *a, const char *token)
{
    return a != NULL ? mg_auth_get(&a->by_token, token) : NULL;
}

const mg_vkey_t *
mg_auth_key_alias(const mg_auth_t *a, const char *alias)
{
    return a != NULL ? mg_auth_get(&a->by_alias, alias) : NULL;
}

const mg_team_t *
mg_auth_team(const mg_auth_t *a, const char *id)
{
    return a != NULL ? mg_auth_get(&a->by_team, id) : NULL;
}

const mg_user_t *
mg_auth_user(const mg_auth_t *a, const char *id)
{
    return a != NULL ? mg_auth_get(&a->by_user, id) : NULL;
}

const mg_enduser_t *
mg_auth_end_user(const mg_auth_t *a, const char *id)
{
    return a != NULL ? mg_auth_get(&a->by_end_user, id) : NULL;
}

const mg_org_t *
mg_auth_org(const mg_auth_t *a, const char *id)
{
    return a != NULL ? mg_auth_get(&a->by_org, id) : NULL;
}

json_t *
mg_auth_budget_row(const mg_auth_t *a, const char *budget_id)
{
    return a != NULL ? mg_auth_get(&a->by_budget, budget_id) : NULL;
}

/* ---- keys ---- */

void
mg_auth_hash_key(const char *key, size_t len, char out[65])
{
    bool hex = len == 64;
    for (size_t i = 0; hex && i < len; i++) {
        hex = isxdigit((unsigned char) key[i]) && !isupper((unsigned char) key[i]);
    }
    if (hex) {
        memcpy(out, key, 64);
        out[64] = '\0';
        return;
    }
    mg_sha256_hex(key, len, out);
}

void
mg_auth_key_name(const char *key, char *out, size_t outlen)
{
    size_t n = strlen(key);
    snprintf(out, outlen, "sk-...%s", n >= 4 ? key + n - 4 : key);
}

/* ---- time ---- */

int
mg_auth_parse_time(const char *s, int64_t *ms)
{
    int Y, M, D, h = 0, m = 0, sec = 0, n = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &n) != 3 || M < 1 || M > 12 ||
        D < 1 || D > 31) {
        return MG_ERROR;
    }
    const char *p = s + n;
    double frac = 0;
    int off = 0; /* minutes east of UTC */
    if (*p == 'T' || *p == ' ') {
        int k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &k) != 2) {
            return MG_ERROR;
        }
        p += 1 + k;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &k) != 1) {
                return MG_ERROR;
            }
            p += 1 + k;
        }
        if (*p == '.') {
            char *end;
            frac = strtod(p, &end);
            p = end;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh = 0, om = 0;
            int sign = *p == '-' ? -1 : 1;
            if (sscanf(p + 1, "%2d:%2d", &oh, &om) < 1 && sscanf(p + 1, "%2d%2d", &oh, &om) < 1) {
                return MG_ERROR;
            }
            off = sign * (oh * 60 + om);
            p += strlen(p);
        }
    }
    if (*p != '\0') {
        return MG_ERROR;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *ms = (int64_t) t * 1000 + (int64_t) (frac * 1000) - (int64_t) off * 60000;
    return MG_OK;
}

void
mg_auth_fmt_time(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int) (ms % 1000) * 1000);
}

int
mg_auth_parse_duration(const char *s, int64_t *ms)
{
    if (s == NULL) {
        return MG_ERROR;
    }
    static const struct {
        const char *word, *dur;
    } words[] = {{"hourly", "1h"}, {"daily", "24h"}, {"weekly", "7d"}, {"monthly", "30d"}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(s, words[i].word) == 0) {
            s = words[i].dur;
        }
    }
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || n < 0) {
        return MG_ERROR;
    }
    int64_t unit;
    if (*end == '\0' || strcmp(end, "s") == 0) {
        unit = 1;
    } else if (strcmp(end, "m") == 0) {
        unit = 60;
    } else if (strcmp(end, "h") == 0) {
        unit = 3600;
    } else if (strcmp(end, "d") == 0) {
        unit = 86400;
    } else if (strcmp(end, "w") == 0) {
        unit = 604800;
    } else if (strcmp(end, "mo") == 0) {
        /* calendar months from now, as LiteLLM's duration_in_seconds */
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        tm.tm_mon += (int) n;
        time_t later = timegm(&tm);
        *ms = ((int64_t) later - (int64_t) now) * 1000;
        return MG_OK;
    } else {
        return MG_ERROR;
    }
    *ms = (int64_t) n * unit * 1000;
    return MG_OK;
}
