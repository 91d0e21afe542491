/*
 * mg_gw.h -- the gateway: what a request means (routes, auth, routing,
 * retries, fallbacks, the LiteLLM-compatible API) on top of the HTTP server,
 * the registry and the upstream pool.
 *
 * Owns: per worker, the current snapshot reference and the request contexts
 * (mg_request_t lives in the HTTP request's ud space).  Does not own the
 * event loop, the store or the process machinery: the worker (proc layer)
 * provides those through mg_gw_host_t.
 *
 * Lifetime: a request takes a reference on the snapshot current when it
 * starts and keeps it until it is finalised, retries and fallbacks included.
 */
#ifndef MG_GW_H
#define MG_GW_H

#include "../api/mg_api.h"
#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_err.h"
#include "../base/mg_json.h"
#include "../http/mg_http_server.h"
#include "../http/mg_sse.h"
#include "../lua/mg_lua.h"
#include "../pool/mg_client.h"
#include "../pool/mg_upstream.h"
#include "../providers/bedrock/mg_eventstream.h"
#include "../providers/mg_provider.h"
#include "../registry/mg_registry.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct mg_gw_s mg_gw_t;
typedef struct mg_trace_s mg_trace_t;           /* mg_trace.h */
typedef struct mg_trace_req_s mg_trace_req_t;   /* mg_trace.h */

typedef void (*mg_gw_commit_cb)(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err);
typedef void (*mg_gw_reload_cb)(void *ud, int rc, json_t *result, const mg_err_t *err);

/* Services the worker provides to the gateway. */
typedef struct {
    /* Commits a store mutation, then waits until every local worker applied it. */
    void (*commit)(void *host, json_t *mutation, mg_gw_commit_cb cb, void *ud);
    /* Re-reads config.yaml through the master (POST /config/reload). */
    void (*reload)(void *host, mg_gw_reload_cb cb, void *ud);
    /* This worker's state for /moongate/state (new reference). */
    json_t *(*state)(void *host);
    /* This worker's state changed: publish it now, so that /moongate/state served by
     * another worker shows it once the call that changed it returns (may be NULL). */
    void (*publish_state)(void *host);
    /* Store status: {"type":..,"connected":..} (new reference). */
    json_t *(*store_status)(void *host);
    /* A deployment was cooled down here: share it with other instances (may be NULL). */
    void (*cooldown)(void *host, const char *deployment_id, int64_t ms, int status);
    /* A cost map operation, done by the master: action "reload" (answers once every worker
     * applied the new map, or with why it was refused), "schedule" (every `hours`) or
     * "unschedule".  The result is the route's JSON answer (may be NULL: then 503). */
    void (*costmap)(void *host, const char *action, double hours, mg_gw_reload_cb cb, void *ud);
    void *host;
    /* Asks the master (msg borrowed: {"op":..., ...}); cb gets its answer (borrowed) once, or
     * NULL when the master is gone (may be NULL: no master, e.g. in tests). */
    void (*ask_master)(void *host, json_t *msg, void (*cb)(void *ud, json_t *answer), void *ud);
} mg_gw_host_t;


struct mg_gw_s {
    struct event_base *base;
    mg_http_server_t *http;         /* owned */
    mg_upool_t *upool;              /* owned */
    mg_token_cache_t *tokens;       /* owned: access tokens minted from credentials (ops->prepare) */
    mg_snapshot_t *snap;            /* ref: current snapshot, NULL until loaded */
    mg_config_t *config;            /* ref: current config */
    uint64_t gen;                   /* generation counter for snapshots (upstream draining) */
    int worker_id;
    char root_path[256];            /* SERVER_ROOT_PATH without trailing '/' ("" = none) */
    bool ready;                     /* registry loaded at least once */
    char not_ready_reason[512];
    bool draining;
    mg_gw_host_t host;
    int live_snapshots;             /* snapshots not yet freed (current + pinned) */
    int live_vms;                   /* policy states alive (one per snapshot that has one) */
    uint64_t requests;
    uint64_t failures;
    uint64_t policy_errors;
    uint64_t ignored_caching;       /* requests that asked for caching moongate does not do */
    mg_map_t unpriced_said;         /* "deployment id" (wildcards: "id\nmodel") -> (void *) 1:
                                     * "no price" was logged for it by this worker */
    int64_t in_flight;              /* requests between dispatch and finalisation */
    int64_t started_ms;
    mg_trace_t *otel_exp;           /* owned or NULL: this worker's span exporter, created when a
                                     * config first asks for "otel"; destroyed in mg_gw_destroy() */
    mg_trace_t *otel;               /* borrowed: otel_exp while the config asks for "otel", else
                                     * NULL (requests are then not traced) */
};

/* Per-request context, in the HTTP request's ud space. */
typedef struct mg_request_s mg_request_t;

typedef enum {
    MG_ATT_NONE = 0,
    MG_ATT_UPSTREAM,        /* waiting on an upstream exchange */
    MG_ATT_BACKOFF,         /* waiting before a retry */
    MG_ATT_STREAMING,       /* relaying a stream */
    MG_ATT_ASYNC,           /* waiting on a store/master operation */
    MG_ATT_CREDENTIAL,      /* waiting on an access token (ops->prepare, mg_token.h) */
    MG_ATT_DONE,
} mg_att_state_t;

typedef struct mg_pending_s mg_pending_t;

/* What only a translated or local answer, or a Responses API request, needs (kept out of
 * every request's zeroed struct). */
typedef struct {
    mg_dec_t dec;                   /* upstream -> neutral events */
    mg_enc_t enc;                   /* neutral events -> client */
    mg_mock_answer_t mock;          /* a local (mock_response) answer being delivered */
    mg_eventstream_decoder_t es;    /* an AWS event-stream answer's framing (Bedrock) */
    char up_error_hdr[96];          /* an error answer's prov->ops->error_header value, "" none */
    struct mg_resp_req_s *resp;     /* arena: Responses API state (mg_responses.c), or NULL */
} mg_proxy_xl_t;

/*
 * One level of LiteLLM's run_async_fallback: the fallback groups of a group that
 * failed, tried in order, each with its own fallbacks one level deeper (a
 * depth-first walk bounded by max_fallbacks, as LiteLLM recurses).
 */
typedef struct mg_fb_frame_s {
    struct mg_fb_frame_s *up;       /* the enclosing level, NULL for the primary's */
    json_t *groups;                 /* owned: this level's groups, policy order, failed group removed */
    size_t pos;                     /* next group to try */
    int depth;                      /* LiteLLM's running fallback_depth of this level's loop */
    uint8_t *allowed;               /* arena: the fallback policy's allowed deployments, or NULL */
    char *error;                    /* malloc: the failed group's message with its suffix (NULL: primary) */
    char *last_child;               /* malloc: the last failed child's full message */
} mg_fb_frame_t;

/* Who is calling: the master key, or a virtual key with its user and team (borrowed from
 * r->snap->auth, which the request pins). */
typedef struct {
    bool master;                    /* the master key, or no master key configured */
    const mg_vkey_t *key;           /* NULL for the master key */
    const mg_user_t *user;          /* the key's user, or NULL */
    const mg_team_t *team;          /* the key's team, or NULL */
    const char *role;               /* LiteLLM's user_role: proxy_admin for the master key */
    const char *token;              /* sha256 hex of the key used (the master key's too), or NULL */
} mg_principal_t;

struct mg_request_s {
    mg_http_req_t *hr;              /* borrowed: our HTTP request */
    mg_gw_t *gw;                    /* borrowed */
    mg_snapshot_t *snap;            /* ref: released in mg_gw_finalize() */
    mg_snapshot_t *att_snap;        /* ref or NULL: a newer snapshot a retry's deployment is from */
    mg_arena_t *arena;              /* borrowed: hr->arena */
    mg_pending_t *pending;          /* async admin operation in flight, or NULL */
    struct mg_keys_op_s *keys_op;   /* malloc or NULL: management changes in flight (mg_keys.c);
                                     * detached (not freed) by mg_keys_abort() */
    char call_id[80];
    const char *path;               /* after the root path */
    size_t path_len;
    bool is_admin;                  /* authenticated as a proxy admin (master key, or open) */
    mg_principal_t who;             /* set by authentication */
    struct mg_admission_s *adm;     /* arena: budgets and limits taken (mg_admit.c), or NULL */
    bool counted;                   /* in mg_shm->requests_inflight until finalised */
    bool finalized;                 /* measured and logged (mg_gw_finalize runs once) */

    /* LLM request */
    const mg_api_t *api;            /* static: the client protocol of an LLM route, else NULL */
    mg_api_req_t q;                 /* the parsed client body (spans into hr->body) */
    const char *route_path;         /* api->route_path, for messages */
    const char *model;              /* arena: requested model (q.model) */
    bool stream;                    /* the client asked for a stream */
    int req_num_retries;            /* -1 unset */
    bool disable_fallbacks;
    double req_timeout;             /* seconds, 0 unset */
    double req_stream_timeout;
    json_t *req_fallbacks;          /* owned: request-level fallbacks */
    json_t *req_mock;               /* owned: request-level mock_response */
    const char **tags;              /* arena: the request's tags (body tags, metadata.tags) */
    int ntags;
    int64_t est_tokens;             /* the prompt's estimated tokens + 1 (0: not estimated yet) */
    const char *filter_denied;      /* arena: why the filter policy refused every deployment */
    json_t *req_drop;               /* owned: request-level additional_drop_params */
    json_t *req_drop_all;           /* owned: req_drop + req_drop_for's list */
    const mg_deployment_t *req_drop_for; /* borrowed: the deployment req_drop_all is for */

    /* routing */
    mg_group_t *group;              /* borrowed: r->snap */
    const char *group_name;         /* arena: group being tried, as named (for messages) */
    const char *primary_group;      /* arena: the group the client asked for (final errors) */
    const char *wild_matched;       /* arena: the string a wildcard matched */
    mg_deployment_t *order[64];     /* borrowed: candidates of the current group, best first */
    int norder;
    int order_pos;
    mg_deployment_t *dep;           /* borrowed: current attempt */
    const mg_provider_t *prov;      /* static: the provider of the current attempt */
    char *upstream_model;           /* arena */
    int retries_left;
    int max_retries;
    int attempts_in_group;
    int retries_done;               /* x-litellm-attempted-retries */
    int attempts;                   /* upstream attempts started, all groups */
    int fallback_depth;             /* LiteLLM's fallback_depth of the group being tried */
    mg_fb_frame_t *fb_top;          /* malloc chain: the fallback lists being walked, innermost first */
    int fb_groups_tried;
    json_t *fallback_list_repr;     /* owned: the primary group's fallback list (messages), or NULL */
    uint8_t *fallback_allowed;      /* arena: per deployment index, set by the fallback policy */
    char *first_error;              /* malloc: message of the first failure (with suffix added later) */
    int first_status;
    const char *first_type;
    const char *first_param;
    char *grp_error;                /* malloc: first failure of the fallback group being tried */
    char *last_fb_error;            /* malloc: last fallback failure message */
    bool first_no_suffix;           /* the first error is LiteLLM's suffix-less "No deployments" */
    int first_up_status;            /* the upstream's own error for a same-wire client (0: none) */
    const char *first_up_type;      /* arena: its type as JSON text */
    const char *first_up_message;   /* arena */
    const char *first_up_body;      /* arena: its whole error body, or NULL */
    mg_att_state_t state;

    /* upstream exchange */
    mg_client_t *client;
    mg_buf_t up_head;               /* request line + headers */
    struct iovec *up_iov;           /* arena */
    int up_niov;
    int up_status;
    mg_buf_t up_body;               /* non-stream response body / error body */
    char up_retry_after[32];
    bool up_stream;                 /* upstream answered with an event stream */
    mg_framing_t up_framing;        /* how: SSE, or AWS event-stream (only when translating) */
    mg_wire_t up_wire;              /* the wire the upstream speaks for this attempt */
    bool translate;                 /* up_wire differs from the client's: decode and encode */
    bool restamp;                   /* the answer's "model" may be restamped */
    mg_sse_t sse;
    mg_relay_t relay;               /* same wire: bytes through */
    mg_proxy_xl_t *xl;              /* malloc: translation and local-answer state, NULL on the
                                     * fast path; freed in mg_proxy_cleanup() */
    mg_buf_t out;                   /* bytes for the client produced by one upstream read */
    char *decode_error;             /* malloc: why a translated stream event was unreadable */
    bool stream_errored;            /* the upstream sent an error event: nothing follows it */
    bool stream_paused;
    int64_t t_upstream_us;
    int64_t t_first_byte_us;
    int64_t upstream_us_total;
    bool stats_begun;
    bool attempt_metered;           /* this attempt's success is in the metrics */
    struct event timer;             /* backoff / local answers */
    bool timer_on;

    /* the credential step (ops->prepare): see mg_proxy_prepare() */
    mg_token_wait_t token_wait;     /* linked into the token cache while the attempt waits */
    char prep_key[65];              /* the credential key prep_token was minted for */
    char *prep_token;               /* malloc, secret: the token a wait delivered; wiped and
                                     * freed in mg_proxy_cleanup() */
    bool resumed;                   /* the attempt re-runs after its wait (counted once) */

    /* usage: the one neutral record every path fills */
    mg_usage_t usage;

    mg_trace_req_t *trace;          /* malloc or NULL (not traced): the request's open spans;
                                     * freed in mg_trace_request_end() */

    /* spend log (mg_spend_routes.c) */
    bool spend_armed;               /* an authenticated LLM call: it gets one spend row */
    bool spend_done;                /* its row was pushed */
    bool answer_error;              /* a started stream ended with an error frame */
    struct mg_spend_q_s *spend_q;   /* malloc or NULL: a spend route waiting for the master;
                                     * detached in mg_spend_routes_abort() */
    /* USD cost of the answering call, from its deployment's prices and usage
     * (mg_proxy_cost, when the call succeeded): for spend and metrics */
    double cost_usd;
    bool cost_known;
};

/* ---- gw lifecycle (worker) ---- */
mg_gw_t *mg_gw_create(struct event_base *base, int worker_id, mg_config_t *cfg,
                      const mg_gw_host_t *host);
void mg_gw_destroy(mg_gw_t *gw);
/* Installs a new current snapshot (takes a reference); the old one lives while pinned. */
void mg_gw_set_snapshot(mg_gw_t *gw, mg_snapshot_t *snap);
void mg_gw_set_config(mg_gw_t *gw, mg_config_t *cfg);
void mg_gw_set_not_ready(mg_gw_t *gw, const char *reason);
/* Readiness 503 and no more keep-alive; close_idle: also close idle connections now. */
void mg_gw_drain(mg_gw_t *gw, bool close_idle);
/* The snapshot build hooks that attach providers, upstreams and stats slots. */
const mg_registry_hooks_t *mg_gw_registry_hooks(mg_gw_t *gw);

/* Per-snapshot data the gateway attaches (snapshot->ext). */
typedef struct {
    mg_gw_t *gw;                    /* borrowed */
    mg_lua_vm_t *vm;                /* owned: NULL when the policy state could not be built */
} mg_gw_snapext_t;

/* The policy state of a snapshot, or NULL. */
static inline mg_lua_vm_t *
mg_gw_vm(const mg_snapshot_t *s)
{
    return s != NULL && s->ext != NULL ? ((mg_gw_snapext_t *) s->ext)->vm : NULL;
}

/* ---- shared helpers (mg_gw.c) ---- */
/* Sends {"error":{message,type,param,code}} with our headers; type/param NULL -> JSON null. */
void mg_gw_error(mg_request_t *r, int status, const char *message, const char *type,
                 const char *param, const char *extra_headers);
/* Same, but type/param given as already-JSON text (e.g. "\"None\"" or "null"). */
void mg_gw_error_raw(mg_request_t *r, int status, const char *message, const char *type_json,
                     const char *param_json, const char *extra_headers);
/* A JSON body as it is, with our headers. */
void mg_gw_send_body(mg_request_t *r, int status, const char *body, size_t len,
                     const char *extra_headers);
/* FastAPI-style {"detail": ...} body (LiteLLM uses it for some routes). */
void mg_gw_detail(mg_request_t *r, int status, json_t *detail);
/* The same, scrubbed of every secret the worker knows (state and health answers). */
void mg_gw_json_scrubbed(mg_request_t *r, int status, json_t *body);
/* 200 JSON response with the common headers. */
void mg_gw_json(mg_request_t *r, int status, json_t *body);
/* Appends the common response headers (call id, version, worker, CORS). */
void mg_gw_common_headers(mg_request_t *r, mg_buf_t *h);
/* Python repr of a string, as LiteLLM's dict-in-message errors show it. */
char *mg_gw_pyrepr_dict_error(const char *msg);
/* Finalises: releases the snapshot and everything the request holds. */
void mg_gw_finalize(mg_request_t *r);
mg_snapshot_t *mg_gw_snapshot(mg_gw_t *gw);

/* ---- token fetches for the token cache, over the upstream pool (mg_token_io.c) ---- */
mg_token_io_t mg_gw_token_io(mg_gw_t *gw);

/* ---- LLM routes (mg_proxy.c) ---- */
void mg_proxy_handle(mg_request_t *r, const char *path_model, size_t pm_len);
void mg_proxy_abort(mg_request_t *r);
void mg_proxy_drain(mg_request_t *r);
void mg_proxy_cleanup(mg_request_t *r);

/* ---- spend log (mg_spend_routes.c) ---- */
/* The spend routes: /spend/logs, /global/spend, /global/spend/report, /global/spend/keys,
 * /global/spend/models.  known: routing before auth; handle: true when it answered. */
bool mg_spend_routes_known(const mg_request_t *r);
bool mg_spend_routes_handle(mg_request_t *r, const char *method, size_t mlen);
void mg_spend_routes_abort(mg_request_t *r);
/* Records the request's spend row (once; a no-op for requests that get none).  Called just
 * before the last bytes of the answer are queued (status, body: what the client gets), and
 * from mg_gw_finalize() for a request the client abandoned. */
void mg_gw_spend_record(mg_request_t *r, int status, const char *body, size_t len);
/* ---- Responses API (mg_responses.c) ---- */
/* Whether the path is a stored-response route: /v1/responses/{id}[/input_items|/cancel]
 * (also without /v1, and under /openai/ and /openai/v1/ for Azure-style clients). */
bool mg_responses_route(const mg_request_t *r);
/* GET / DELETE of a stored response, its input_items, cancel: one exchange with the
 * deployment its id names (or a clear 404). */
void mg_responses_handle(mg_request_t *r, const char *method, size_t mlen);
/* POST /v1/responses with a previous_response_id moongate issued: the request is pinned
 * to the deployment that made it (no other, no fallback).  False: answered with an error
 * (that deployment is gone, or stores nothing). */
bool mg_responses_pin(mg_request_t *r);
/* Each attempt of a Responses request on d: the ids the client sees name d; to a native
 * upstream (c's spliced body) the decoded previous_response_id and OpenAI's metadata go
 * instead of the client's values. */
void mg_responses_attempt(mg_request_t *r, mg_deployment_t *d, bool native, mg_call_t *c);

/* ---- admin routes (mg_admin.c) ---- */
/* Returns true if the path was an admin/info route it handled. */
bool mg_admin_handle(mg_request_t *r, const char *method, size_t mlen);
void mg_admin_abort(mg_request_t *r);
/* Whether the path names an admin/info route at all (routing happens before auth). */
bool mg_admin_route_known(const mg_request_t *r);

#endif
