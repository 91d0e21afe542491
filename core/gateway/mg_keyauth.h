/*
 * mg_keyauth.h -- virtual keys on the request path: who is calling (the principal), whether
 * the key may be used at all (blocked, expired, its team blocked), and whether it may call
 * the model it asks for (key, team and user model lists, access groups, wildcards, key
 * aliases).  Everything is read from the request's pinned snapshot: no store round trip.
 *
 * Owns: a per-process cache from a presented key to its SHA-256 (LiteLLM's token), indexed
 * by a keyed 128-bit hash of the key and compared on that fixed-length digest, so the
 * SHA-256 is computed once per key per worker, not per request.
 */
#ifndef MG_KEYAUTH_H
#define MG_KEYAUTH_H

#include "mg_gw.h"

/* LiteLLM's user roles. */
#define MG_ROLE_PROXY_ADMIN "proxy_admin"
#define MG_ROLE_PROXY_ADMIN_VIEWER "proxy_admin_viewer"
#define MG_ROLE_INTERNAL_USER "internal_user"
#define MG_ROLE_INTERNAL_USER_VIEWER "internal_user_viewer"

/*
 * Authenticates a key that is not the master key.  On success fills r->who, pins the
 * snapshot in r->snap (the one the rights were read from) and returns true; otherwise
 * answers (401 with LiteLLM's message, 503 while the registry loads) and returns false.
 */
bool mg_ka_authenticate(mg_request_t *r, const char *key, size_t klen);

/* Marks r as the master key's (or an open proxy's) request. */
void mg_ka_master(mg_request_t *r);

/*
 * LLM routes, before the model is resolved: applies the key's aliases to r->model and checks
 * that the key, its team and its user may call it.  False: the 401 was sent.
 */
bool mg_ka_check_model(mg_request_t *r);

/* Whether a model list (key, team, user or org "models") lets `model` through; NULL or empty
 * lets everything through.  s: for access groups and wildcard patterns. */
bool mg_ka_models_allow(const mg_snapshot_t *s, json_t *models, const char *model);

/* Whether the caller is a proxy admin (master key, or a key whose user is proxy_admin). */
static inline bool
mg_ka_is_proxy_admin(const mg_request_t *r)
{
    return r->who.master || (r->who.role != NULL && strcmp(r->who.role, MG_ROLE_PROXY_ADMIN) == 0);
}

#endif
