/*
 * mg_keyauth.c -- virtual keys on the request path (see mg_keyauth.h).
 */
#include "mg_keyauth.h"

#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- presented key -> token, cached ---- */

/* SipHash-2-4 (Aumasson and Bernstein), 64-bit output. */
#define MG_ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define MG_SIPROUND                                                                                \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = MG_ROTL(v1, 13);                                                                      \
        v1 ^= v0;                                                                                  \
        v0 = MG_ROTL(v0, 32);                                                                      \
        v2 += v3;                                                                                  \
        v3 = MG_ROTL(v3, 16);                                                                      \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = MG_ROTL(v3, 21);                                                                      \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = MG_ROTL(v1, 17);                                                                      \
        v1 ^= v2;                                                                                  \
        v2 = MG_ROTL(v2, 32);                                                                      \
    } while (0)

static uint64_t
mg_ka_siphash(const uint64_t k[2], const unsigned char *in, size_t n)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f6dULL ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
    uint64_t b = (uint64_t) n << 56;
    size_t full = n & ~(size_t) 7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8);
        v3 ^= m;
        MG_SIPROUND;
        MG_SIPROUND;
        v0 ^= m;
    }
    uint64_t t = 0;
    memcpy(&t, in + full, n - full);
    b |= t;
    v3 ^= b;
    MG_SIPROUND;
    MG_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    MG_SIPROUND;
    MG_SIPROUND;
    MG_SIPROUND;
    MG_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

#define MG_KA_CACHE 4096 /* presented keys remembered per worker (direct-mapped) */

typedef struct {
    uint64_t d[2];              /* keyed 128-bit digest of the presented key; 0,0: empty */
    char token[65];             /* its SHA-256 hex */
} mg_ka_entry_t;

static mg_ka_entry_t *mg_ka_cache;
static uint64_t mg_ka_k[4];     /* two SipHash keys, random per process */

static void
mg_ka_token(const char *key, size_t klen, char token[65])
{
    if (mg_ka_cache == NULL) {
        mg_ka_cache = mg_xcalloc(MG_KA_CACHE, sizeof(mg_ka_entry_t));
        mg_random_bytes(mg_ka_k, sizeof(mg_ka_k));
    }
    uint64_t d[2] = {mg_ka_siphash(mg_ka_k, (const unsigned char *) key, klen),
                     mg_ka_siphash(mg_ka_k + 2, (const unsigned char *) key, klen)};
    mg_ka_entry_t *e = &mg_ka_cache[d[0] % MG_KA_CACHE];
    /* a fixed-length comparison of digests, never of the key's bytes */
    if (((e->d[0] ^ d[0]) | (e->d[1] ^ d[1])) == 0 && (d[0] | d[1]) != 0) {
        memcpy(token, e->token, 65);
        return;
    }
    /* always the digest of what was presented: a stored hash is not a key (whoever can read
     * the database must not be able to call with every key in it) */
    mg_sha256_hex(key, klen, token);
    e->d[0] = d[0];
    e->d[1] = d[1];
    memcpy(e->token, token, 65);
}

/* ---- authentication ---- */

void
mg_ka_master(mg_request_t *r)
{
    r->is_admin = true;
    r->who.master = true;
    r->who.role = MG_ROLE_PROXY_ADMIN;
}

static void
mg_ka_fail(mg_request_t *r, int status, const char *msg, const char *type_json,
           const char *param_json)
{
    mg_gw_error_raw(r, status, msg, type_json, param_json, NULL);
}

bool
mg_ka_authenticate(mg_request_t *r, const char *key, size_t klen)
{
    mg_gw_t *gw = r->gw;
    if (r->snap == NULL) {
        if (gw->snap == NULL) {
            mg_gw_error_raw(r, 503, "moongate: the registry (and its virtual keys) is not loaded "
                                    "on this worker yet; retry shortly",
                            "\"service_unavailable\"", "null", "retry-after: 1\r\n");
            return false;
        }
        r->snap = mg_snapshot_ref(gw->snap); /* the rights and the routing come from one version */
    }
    char token[65];
    mg_ka_token(key, klen, token);
    const mg_vkey_t *vk = mg_auth_key(r->snap->auth, token);
    if (vk == NULL) {
        char red[32];
        char *k = mg_arena_strndup(r->arena, key, klen);
        mg_log_redact(k, red, sizeof(red));
        if (strncmp(k, "sk-", 3) != 0) {
            char *msg = mg_arena_printf(r->arena, "Authentication Error, LiteLLM Virtual Key "
                                                  "expected. Received=%s, expected to start with "
                                                  "'sk-'.", red);
            mg_ka_fail(r, 401, msg, "\"auth_error\"", "\"None\"");
            return false;
        }
        char *msg = mg_arena_printf(r->arena,
                                    "Authentication Error, Invalid proxy server token passed. "
                                    "Received API Key = %s, Key Hash (Token) =%s. Unable to find "
                                    "token in cache or `LiteLLM_VerificationTokenTable`", red,
                                    token);
        mg_ka_fail(r, 401, msg, "\"token_not_found_in_db\"", "\"key\"");
        return false;
    }
    if (vk->blocked) {
        mg_ka_fail(r, 401, "Authentication Error, Key is blocked. Update via `/key/unblock` if "
                           "you're admin.", "\"auth_error\"", "\"None\"");
        return false;
    }
    int64_t now = mg_time_real_ms();
    if (vk->expires_ms > 0 && vk->expires_ms <= now) {
        char exp[48], cur[48];
        mg_auth_fmt_time(vk->expires_ms, exp, sizeof(exp));
        mg_auth_fmt_time(now, cur, sizeof(cur));
        char *msg = mg_arena_printf(r->arena, "Authentication Error - Expired Key. Key Expiry "
                                              "time %s and current time %s", exp, cur);
        mg_ka_fail(r, 401, msg, "\"expired_key\"", "\"key\"");
        return false;
    }
    if (vk->team_id != NULL && vk->team == NULL) {
        char *msg = mg_arena_printf(r->arena, "Authentication Error, Team doesn't exist in db. "
                                              "Team=%s. Create team via `/team/new` call.",
                                    vk->team_id);
        mg_ka_fail(r, 401, msg, "\"auth_error\"", "\"None\"");
        return false;
    }
    if (vk->team != NULL && vk->team->blocked) {
        char *msg = mg_arena_printf(r->arena, "Authentication Error, Team=%s is blocked. Update "
                                              "via `/team/unblock` if your admin.", vk->team->id);
        mg_ka_fail(r, 401, msg, "\"auth_error\"", "\"None\"");
        return false;
    }
    r->who.master = false;
    r->who.key = vk;
    r->who.user = vk->user;
    r->who.team = vk->team;
    r->who.token = vk->token; /* the same digest, owned by the pinned snapshot */
    r->who.role = vk->user != NULL && vk->user->role != NULL ? vk->user->role
                                                              : MG_ROLE_INTERNAL_USER;
    r->is_admin = strcmp(r->who.role, MG_ROLE_PROXY_ADMIN) == 0;
    return true;
}

/* ---- model access ---- */

static bool
mg_ka_in(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *x = json_string_value(v);
        if (x != NULL && strcmp(x, s) == 0) {
            return true;
        }
    }
    return false;
}

/* The access groups (model_info.access_groups) of model's deployments contain g. */
static bool
mg_ka_access_group(const mg_snapshot_t *s, const char *g, const char *model)
{
    mg_group_t *grp = mg_registry_group(s, model, strlen(model));
    if (grp == NULL) {
        return false;
    }
    for (size_t i = 0; i < grp->ndeps; i++) {
        if (mg_ka_in(json_object_get(grp->deps[i]->model_info, "access_groups"), g)) {
            return true;
        }
    }
    return false;
}

bool
mg_ka_models_allow(const mg_snapshot_t *s, json_t *models, const char *model)
{
    if (models == NULL || json_array_size(models) == 0) {
        return true;
    }
    size_t i;
    json_t *v;
    mg_group_t *grp = NULL;
    bool looked = false;
    json_array_foreach(models, i, v) {
        const char *m = json_string_value(v);
        if (m == NULL) {
            continue;
        }
        if (strcmp(m, model) == 0 || strcmp(m, "*") == 0 || strcmp(m, "all-proxy-models") == 0) {
            return true;
        }
        if (strchr(m, '*') != NULL) {
            /* a pattern ("openai/" then a star): the name asked for, or the litellm model */
            if (fnmatch(m, model, 0) == 0) {
                return true;
            }
            if (!looked) {
                grp = mg_registry_group(s, model, strlen(model));
                looked = true;
            }
            for (size_t d = 0; grp != NULL && d < grp->ndeps; d++) {
                if (fnmatch(m, grp->deps[d]->litellm_model, 0) == 0) {
                    return true;
                }
            }
            continue;
        }
        if (mg_ka_access_group(s, m, model)) {
            return true;
        }
    }
    return false;
}

/* Python's repr of a list of strings: ['a', 'b']. */
static const char *
mg_ka_repr(mg_request_t *r, json_t *list)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_append(&b, "[", 1);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        mg_buf_printf(&b, "%s'%s'", i > 0 ? ", " : "", json_string_value(v) ? json_string_value(v) : "");
    }
    mg_buf_append(&b, "]", 1);
    const char *s = mg_arena_strdup(r->arena, mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

bool
mg_ka_check_model(mg_request_t *r)
{
    const mg_vkey_t *k = r->who.key;
    if (k == NULL || r->model == NULL) {
        return true;
    }
    /* the key's aliases: {"gpt-4": "gpt-4o"} */
    if (k->aliases != NULL) {
        const char *to = json_string_value(json_object_get(k->aliases, r->model));
        if (to != NULL) {
            r->model = mg_arena_strdup(r->arena, to);
        }
    }
    const char *model = r->model;
    json_t *km = k->models;
    bool team_models = km != NULL && mg_ka_in(km, "all-team-models");
    if (!team_models && !mg_ka_models_allow(r->snap, km, model)) {
        char *msg = mg_arena_printf(r->arena, "key not allowed to access model. This key can only "
                                              "access models=%s. Tried to access %s",
                                    mg_ka_repr(r, km), model);
        mg_gw_error_raw(r, 401, msg, "\"key_model_access_denied\"", "\"model\"", NULL);
        return false;
    }
    const mg_team_t *t = r->who.team;
    if (t != NULL && !mg_ka_models_allow(r->snap, t->models, model)) {
        char *msg = mg_arena_printf(r->arena, "Team=%s not allowed to access model=%s. Allowed "
                                              "team models = %s", t->id, model,
                                    mg_ka_repr(r, t->models));
        mg_gw_error_raw(r, 401, msg, "\"team_model_access_denied\"", "\"model\"", NULL);
        return false;
    }
    const mg_user_t *u = r->who.user;
    if (u != NULL && !mg_ka_models_allow(r->snap, u->models, model)) {
        char *msg = mg_arena_printf(r->arena, "User=%s not allowed to access model=%s. Allowed "
                                              "user models = %s", u->id, model,
                                    mg_ka_repr(r, u->models));
        mg_gw_error_raw(r, 401, msg, "\"key_model_access_denied\"", "\"model\"", NULL);
        return false;
    }
    const mg_org_t *o = t != NULL ? t->org : NULL;
    if (o != NULL && !mg_ka_models_allow(r->snap, o->models, model)) {
        char *msg = mg_arena_printf(r->arena, "Organization=%s not allowed to access model=%s",
                                    o->id, model);
        mg_gw_error_raw(r, 401, msg, "\"key_model_access_denied\"", "\"model\"", NULL);
        return false;
    }
    return true;
}
