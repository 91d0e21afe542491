/*
 * mg_gw_metrics.h -- what the gateway measures for /metrics: LiteLLM's request, deployment,
 * fallback and cooldown families at the points where those events happen, and moongate's
 * own gauges refreshed when a scrape comes in.
 *
 * Owns: a per-process cache from a label-value tuple to its resolved series, so that a
 * request resolves one tuple, not one series per family (the series table itself is
 * mg_metrics', in shared memory).  Does not own the requests it reads.
 *
 * Label values: bounded by construction.  No call ids, no raw keys (hashed_api_key is the
 * SHA-256 of the key, as LiteLLM's), end_user / client_ip / user_agent are "None" (LiteLLM
 * keeps end users off Prometheus by default; moongate also keeps client addresses and user
 * agents off, so a client cannot grow the series table).
 */
#ifndef MG_GW_METRICS_H
#define MG_GW_METRICS_H

#include "mg_gw.h"

/* A client request on an LLM route has been answered (or abandoned): proxy-level families. */
void mg_gwm_request_end(mg_request_t *r);
/* An upstream attempt on r->dep succeeded (ok) or failed with e. */
void mg_gwm_attempt_end(mg_request_t *r, bool ok, const mg_uperr_t *e);
/* d was cooled down after an error with status. */
void mg_gwm_cooled_down(mg_request_t *r, const mg_deployment_t *d, int status);
/* A fallback group was tried for r's primary group: it answered (ok) or failed. */
void mg_gwm_fallback(mg_request_t *r, const char *fallback_group, bool ok);
/* This worker's requests in flight changed. */
void mg_gwm_in_flight(mg_gw_t *gw, int64_t n);
/* Frees what the metrics cached on d (the snapshot's detach hook). */
void mg_gwm_release(mg_deployment_t *d);
/* The worker's periodic tick (its state publication): per-worker gauges (spans dropped). */
void mg_gwm_worker_tick(mg_gw_t *gw);
/* GET /metrics: refreshes the gauges computed on demand and appends the exposition. */
void mg_gwm_scrape(mg_gw_t *gw, mg_buf_t *out);

#endif
