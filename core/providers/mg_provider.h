/*
 * mg_provider.h -- one descriptor per upstream provider.
 *
 * A provider translates: it knows the default endpoint, where credentials
 * come from, the URL path and auth headers for each route, and the name
 * LiteLLM uses for its exceptions.  It never touches sockets.  Descriptors
 * are static and immutable.
 */
#ifndef MG_PROVIDER_H
#define MG_PROVIDER_H

#include "../base/mg_buf.h"
#include "../base/mg_err.h"
#include "../base/mg_types.h"
#include "../registry/mg_registry.h"

#include <stdbool.h>

typedef enum {
    MG_ROUTE_CHAT = 0,
    MG_ROUTE_COMPLETIONS,
    MG_ROUTE_EMBEDDINGS,
    MG_ROUTE__COUNT
} mg_route_t;

struct mg_provider_s {
    const char *name;
    const char *exception_name;         /* "OpenAIException" */
    const char *default_base;           /* NULL: api_base (or env) required */
    const char *env_key[3];             /* first set wins */
    const char *env_base[3];
    bool key_required;
    bool azure;                         /* deployment path + api-version + api-key header */
    bool routes[MG_ROUTE__COUNT];
};

/* NULL when moongate does not speak to this provider. */
const mg_provider_t *mg_provider_find(const char *name);

/* The deployment's base URL (api_base, else env, else default), without a trailing '/'. */
const char *mg_provider_base(const mg_provider_t *p, const mg_deployment_t *d);
/* The deployment's key (api_key, else env); may be NULL. */
const char *mg_provider_key(const mg_provider_t *p, const mg_deployment_t *d);

/*
 * Appends the request line and headers (without the blank line and without
 * content-length) for a call to route with upstream_model.
 */
int mg_provider_request_head(const mg_provider_t *p, const mg_deployment_t *d, mg_route_t route,
                             const char *upstream_model, mg_buf_t *out, mg_err_t *err);

/* Route path as LiteLLM names it in errors ("/chat/completions"). */
const char *mg_route_path(mg_route_t r);

#endif
