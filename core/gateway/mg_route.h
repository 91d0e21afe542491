/*
 * mg_route.h -- which deployment a request tries, in which order, and what
 * happens after a failure (retry, cooldown, fallback groups): LiteLLM's
 * router semantics.  The ordering step is where a routing policy plugs in.
 */
#ifndef MG_ROUTE_H
#define MG_ROUTE_H

#include "mg_gw.h"

typedef struct {
    int n;                      /* candidates available */
    int cooled;                 /* candidates skipped for cooldown */
    double min_cooldown_s;      /* smallest configured cooldown among them */
    bool declined;              /* the routing policy accepted none; reason says why */
    bool filtered;              /* the filter policy (tag routing) accepted none */
    int busy;                   /* candidates skipped at their max_parallel_requests */
    int too_long;               /* candidates whose max_input_tokens the prompt exceeds */
    char reason[256];
} mg_route_result_t;

/* Fills r->order/norder from r->group: cooldown filter, order tiers, then the
 * routing policy (the configured order when the policy fails). */
void mg_route_order(mg_request_t *r, mg_route_result_t *rr);
/* LiteLLM's "No deployments available ..." text (malloc). rr may be NULL. */
char *mg_route_no_deployments_message(mg_request_t *r, const mg_route_result_t *rr);
/* Records a failure against d and cools it down when LiteLLM would. */
void mg_route_on_failure(mg_request_t *r, mg_deployment_t *d, const mg_uperr_t *e);
/* Whether to retry within the group, and how long to wait first. */
bool mg_route_should_retry(mg_request_t *r, const mg_uperr_t *e, int64_t *wait_ms);
/*
 * The fallback groups of the group that just failed (r->group_name) with e, as
 * LiteLLM picks them: *groups (owned, the failed group removed, in the fallback
 * policy's order; NULL when none), *repr (owned: the configured list, for
 * messages; NULL = None) and *allowed (arena: deployments the policy kept, or
 * NULL).  The notes LiteLLM appends to the group's error go to *msg.  *raised:
 * LiteLLM raises the group's own error inside its fallback block here (a list is
 * configured but has no entry for the group), so its message repeats itself.
 */
void mg_route_fallbacks(mg_request_t *r, const mg_uperr_t *e, char **msg, json_t **groups,
                        json_t **repr, uint8_t **allowed, bool *raised);
/* A deployment's max_input_tokens (model_info, litellm_params, else the cost map's), 0 none. */
int64_t mg_route_max_input(const mg_deployment_t *d);
/* A deployment's max_parallel_requests (router default_max_parallel_requests when it has
 * none); 0 = unlimited. */
int mg_route_max_parallel(const mg_snapshot_t *s, const mg_deployment_t *d);
/* Uniform [0,1) from the worker's generator. */
double mg_route_rand(void);

/* Resolves a name through the wildcard policy; returns the group and sets *matched. */
mg_group_t *mg_route_wildcard(mg_request_t *r, const char *name, char *matched, size_t mlen);

#endif
