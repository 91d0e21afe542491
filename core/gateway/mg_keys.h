/*
 * mg_keys.h -- the management routes of virtual keys, teams, users, end users (customers)
 * and budgets: /key/..., /team/..., /user/..., /customer/... (and /end_user/...), /budget/..., with
 * LiteLLM's request fields, answers, errors and roles.
 *
 * Owns: nothing beyond a request: every change is a store mutation (ident_put, ident_patch,
 * ident_delete) committed through the worker's host, which answers only once every local
 * worker applied the new registry version (read-your-writes).  A route whose change spans
 * several rows commits them one after another; the request holds an mg_keys_op_t while they
 * run, and the steps finish even if the client goes away.
 *
 * Who may call what follows LiteLLM's roles (proxy_admin, proxy_admin_viewer, internal_user,
 * internal_user_viewer; team admin/user from members_with_roles), stricter where LiteLLM
 * lets a caller widen its own rights (see README "Virtual keys, teams and users").
 */
#ifndef MG_KEYS_H
#define MG_KEYS_H

#include "mg_gw.h"

/* Handles the request if its path is a management route of this module (true), answering
 * 405 for a known path with the wrong method.  Authentication already ran. */
bool mg_keys_handle(mg_request_t *r, const char *method, size_t mlen);

/* Whether the path is one of this module's routes (routing happens before auth). */
bool mg_keys_route_known(const mg_request_t *r);

/* The client went away: the steps in flight finish, their answer is dropped. */
void mg_keys_abort(mg_request_t *r);

/*
 * The stamp a row's spend counter is seeded from (mg_lim_seed's epoch): the row's
 * metadata.moongate_spend_epoch, which the management routes set (to the time in ms) when an
 * admin sets the spend; 0 when never set.  Everything that reads or seeds a counter from a
 * row (admission, /key/info, /team/info, ...) must use this rule, or the counter is re-seeded
 * back and forth.
 */
int64_t mg_keys_spend_epoch(json_t *row);

/* Whether the caller may see model `name` in /v1/models and /model/info: always for the
 * master key and admins, else when its key, the key's team, user and organization allow it
 * (as mg_ka_check_model decides for a request). */
bool mg_keys_model_visible(const mg_request_t *r, const char *name);

/*
 * Whether a key's allowed_routes lets it call path (LiteLLM's RouteChecks: exact, prefix
 * "/a" for "/a/...", a trailing "*", or a class: "llm_api_routes", "management_routes",
 * "info_routes").  NULL or empty allowed_routes: every route.
 */
bool mg_keys_key_route_allowed(json_t *allowed_routes, const char *path, size_t len);

/* Every route, after authentication: a virtual key with allowed_routes calls only those
 * (LiteLLM's 403 "Virtual key is not allowed to call this route ...").  False: answered. */
bool mg_keys_check_key_route(mg_request_t *r);

#endif
