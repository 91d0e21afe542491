/*
 * mg_types.h -- forward typedefs for the core structs, so headers can name
 * each other's types without including each other.
 */
#ifndef MG_TYPES_H
#define MG_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_err_s mg_err_t;
typedef struct mg_arena_s mg_arena_t;
typedef struct mg_buf_s mg_buf_t;

typedef struct mg_config_s mg_config_t;
typedef struct mg_snapshot_s mg_snapshot_t;
typedef struct mg_deployment_s mg_deployment_t;
typedef struct mg_group_s mg_group_t;

typedef struct mg_conn_s mg_conn_t;
typedef struct mg_upstream_s mg_upstream_t;
typedef struct mg_client_s mg_client_t;
typedef struct mg_provider_s mg_provider_t;

typedef struct mg_lua_vm_s mg_lua_vm_t;
typedef struct mg_worker_s mg_worker_t;
typedef struct mg_request_s mg_request_t;

#define MG_VERSION "0.1.0"

#endif
