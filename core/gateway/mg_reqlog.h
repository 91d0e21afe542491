/*
 * mg_reqlog.h -- what the instance served lately, for the admin page: a ring of
 * the last LLM requests and, per deployment, their traffic and latency in
 * 10-second buckets over the last five minutes.
 *
 * Owns: one region of shared memory (mg_shm), allocated by the master before it
 * forks: per worker a ring and a small table of deployment series.  Each worker
 * writes only its own part (single writer, seqlocks for readers), so no lock is
 * shared between processes; any worker reads every part to answer
 * GET /moongate/requests and GET /moongate/traffic.
 * Records hold identifiers, statuses, times and token counts: never a prompt,
 * a completion, a header or a key.  A worker that is respawned continues the
 * ring its predecessor left (the positions live in shared memory too).
 */
#ifndef MG_REQLOG_H
#define MG_REQLOG_H

#include "mg_gw.h"

#include <jansson.h>
#include <stdint.h>

#define MG_REQLOG_RING 64           /* requests kept per worker */
#define MG_REQLOG_SERIES 32         /* deployments with a series, per worker (least recent evicted) */
#define MG_REQLOG_BUCKET_S 10       /* seconds per traffic bucket */
#define MG_REQLOG_NBUCKETS 30       /* buckets kept: 5 minutes */

/* Master, before fork: allocates the ring and the series for nworkers workers.
 * MG_OK, or MG_ERROR when shared memory is full (then nothing is recorded and the
 * routes say so); err says why. */
int mg_reqlog_init(int nworkers, mg_err_t *err);
/* Whether mg_reqlog_init() succeeded in this instance. */
bool mg_reqlog_enabled(void);

/* Records a finished LLM request (r->api set; anything else is ignored): called once,
 * when the request is finalised, with its deployment and snapshot still held. */
void mg_reqlog_record(mg_request_t *r);

/* The most recent records of every worker, newest first, at most limit (new reference):
 * {"enabled", "capacity", "requests": [{call_id, time_ms, worker, route, model, model_group,
 * deployment_id, provider, status, latency_ms, prompt_tokens, completion_tokens,
 * total_tokens, retries, fallbacks, stream}]}. */
json_t *mg_reqlog_requests_json(int limit);
/* Every deployment's series summed over the workers (new reference):
 * {"enabled", "bucket_seconds", "buckets", "now_ms", "deployments": [{id, model_group,
 * series: [{start_ms, requests, failures, latency_ms (mean, null when no request), tokens}]}]},
 * oldest bucket first, the current (partial) bucket last. */
json_t *mg_reqlog_traffic_json(void);

#endif
