/*
 * mg_master.h -- the master process: binds the listening socket, forks and
 * respawns workers, relays registry hints between them, coordinates config
 * reloads and read-your-writes waits, and drains on SIGTERM.
 *
 * Owns: the listening socket (inherited by every worker, so a connection the
 * kernel queued is never lost when one worker exits), the current config
 * (workers forked later inherit it), one control channel per worker.
 * Serves no requests itself.
 */
#ifndef MG_MASTER_H
#define MG_MASTER_H

#include "../registry/mg_config.h"

typedef struct {
    const char *config_path;        /* may be NULL */
    mg_config_opts_t config_opts;
    mg_config_t *config;            /* loaded and validated by main (ref taken) */
    const char *host;
    int port;
    int num_workers;
} mg_master_args_t;

/* Runs until shutdown; returns the process exit code. */
int mg_master_run(const mg_master_args_t *args);

#endif
