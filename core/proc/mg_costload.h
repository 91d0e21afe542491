/*
 * mg_costload.h -- the master's side of the cost map: where it comes from, reading and
 * checking a new one, and the record /moongate/state shows.
 *
 * Owns: the source rules (LiteLLM's environment: LITELLM_LOCAL_MODEL_COST_MAP=True -> the
 * built-in map; LITELLM_MODEL_COST_MAP_URL = an https:// or http:// URL, a file:// URL or
 * a path; unset -> the built-in map: LiteLLM's default remote URL is never fetched unless
 * named), at most one load in flight (a URL is fetched in a child process, mg_fetch), the
 * checks a new map must pass (it parses, fits the schema, has entries, and keeps most of
 * what the deployments use: mg_costmap_check_coverage), the record of the map in use, of
 * refusals and of the reload schedule, published to shared memory (mg_shm) for the
 * workers' /moongate/state and schedule routes.
 * Does not own: installing a map.  An accepted map comes back as the node a config
 * carries (mg_config_with_costmap); the master builds the config, sends it to the
 * workers like a config reload, and then calls mg_costload_applied().
 * Master process only, single-threaded.
 */
#ifndef MG_COSTLOAD_H
#define MG_COSTLOAD_H

#include "../base/mg_err.h"
#include "../registry/mg_config.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct mg_costload_s mg_costload_t;

/* What asked for a load (shown in /moongate/state). */
typedef enum {
    MG_COSTLOAD_STARTUP = 0,
    MG_COSTLOAD_API,                /* POST /reload/model_cost_map */
    MG_COSTLOAD_SCHEDULE,           /* the reload schedule */
    MG_COSTLOAD_CONFIG,             /* a config reload (SIGHUP, POST /config/reload) */
} mg_costload_trigger_t;

/*
 * A load's outcome.  rc MG_OK: node is what the config must carry (a new reference; NULL
 * for the built-in map), map the parsed map (borrowed for the call), unchanged true when
 * it has the bytes and source of the map in use.  MG_ERROR: the map was refused, err says
 * why (err->status: 502/504 when the fetch failed, 422 when the content is refused); the
 * refusal is recorded, logged and counted already.
 */
typedef void (*mg_costload_cb)(void *ud, int rc, json_t *node, const mg_costmap_t *map,
                               bool unchanged, const mg_err_t *err);

mg_costload_t *mg_costload_create(struct event_base *base);
/* Stops a load in flight (its callback is not called). */
void mg_costload_destroy(mg_costload_t *cl);

/*
 * At start, before any worker exists: reads the configured source, waiting for a URL (at
 * most cost_map_fetch_timeout_seconds).  Returns the node to carry (new reference), or
 * NULL for the built-in map: also when an explicitly named source is refused, which is
 * then recorded and logged as a refusal ("fell back").  cfg is the loaded config.
 */
json_t *mg_costload_startup(mg_costload_t *cl, const mg_config_t *cfg);

/*
 * Starts a load from the source the environment names now.  cfg: the config the map
 * will go with (its fetch timeout; its model_list for the coverage check); cur: the map
 * in use (NULL: no coverage check); store_keys: [[provider, model, base_model], ...] of
 * the stored deployments (may be NULL).  cb is called from the loop, never from inside
 * this call.  MG_BUSY if a load is in flight; MG_OK otherwise.
 */
int mg_costload_start(mg_costload_t *cl, mg_costload_trigger_t why, const mg_config_t *cfg,
                      const mg_costmap_t *cur, json_t *store_keys, mg_costload_cb cb, void *ud);

bool mg_costload_busy(const mg_costload_t *cl);

/* The map now in use (after startup, and after each install); also publishes the record. */
void mg_costload_applied(mg_costload_t *cl, const mg_costmap_t *map, const char *origin);

/*
 * The schedule: hours > 0 sets it from the API (kept until a restart or a DELETE), 0
 * cancels it (also the config's interval, until a restart).  Publishes the record.
 */
void mg_costload_schedule(mg_costload_t *cl, double hours);

/* The config's cost_map_reload_interval_hours, applied when the API has not set one. */
void mg_costload_configure(mg_costload_t *cl, const mg_config_t *cfg);

/* True when the schedule says a reload is due now (the caller starts it). */
bool mg_costload_due(const mg_costload_t *cl);

/* {"scheduled","interval_hours","set_by","last_run","next_run"} as the routes show it. */
json_t *mg_costload_schedule_json(const mg_costload_t *cl);

/* Writes the record to shared memory (also done by every change above). */
void mg_costload_publish(mg_costload_t *cl);

#endif
