/*
 * mg_worker.h -- one worker process: an event loop serving requests.
 *
 * Owns: its event base, the gateway (HTTP server, upstream pool, snapshots),
 * its store handle, its Redis hint subscription and its control channel to
 * the master.  Keeps the registry current: loads it at start (retrying with
 * backoff until it succeeds; until then model traffic gets 503), and resyncs
 * on hints from the master, Redis and PostgreSQL, on a periodic poll of the
 * store's version, and in full after any reconnect.
 */
#ifndef MG_WORKER_H
#define MG_WORKER_H

#include "../registry/mg_config.h"

#include <stdint.h>

typedef struct {
    int index;
    int listen_fd;
    int ctl_fd;
    mg_config_t *config;            /* borrowed from the master's memory (fork copy) */
    int64_t config_gen;
    const char *config_path;
    mg_config_opts_t config_opts;
} mg_worker_args_t;

/* Runs the worker until it drains; returns the exit code. */
int mg_worker_run(const mg_worker_args_t *args);

#endif
