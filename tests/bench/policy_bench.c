/*
 * policy_bench.c -- cost of one routing-policy call (reports; never asserts).
 *
 * Builds a snapshot with one group of N deployments, creates its policy state
 * and times mg_lua_vm_select() for the chosen built-in routing policy.
 *   policy_bench [N=2] [policy=simple_shuffle] [calls=200000]
 */
#include "base/mg_shm.h"
#include "base/mg_time.h"
#include "base/mg_buf.h"
#include "lua/mg_lua.h"
#include "registry/mg_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2;
    const char *pol = argc > 2 ? argv[2] : "simple_shuffle";
    int calls = argc > 3 ? atoi(argv[3]) : 200000;
    if (mg_shm_create(1, 8 << 20) != 0 || mg_stats_init(4096) != 0) {
        return 1;
    }
    mg_buf_t y = MG_BUF_INIT;
    mg_buf_printf(&y, "router_settings: {routing_policy: %s}\nmodel_list:\n", pol);
    for (int i = 0; i < n; i++) {
        mg_buf_printf(&y, "  - {model_name: g, litellm_params: {model: openai/m%d, api_base: "
                          "\"http://127.0.0.1:9/v1\", api_key: k, weight: %d, rpm: 1000, tpm: 100000}}\n",
                      i, 1 + i % 3);
    }
    mg_config_opts_t o = {NULL, true};
    mg_config_t *cfg;
    mg_err_t err;
    if (mg_config_load_text(mg_buf_cstr(&y), mg_buf_len(&y), "<bench>", &o, &cfg, &err) != MG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    mg_snapshot_t *s;
    if (mg_registry_build(cfg, NULL, NULL, 1, NULL, &s, &err) != MG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < s->ndeps; i++) {
        s->deps[i].stats_slot = mg_stats_slot(s->deps[i].id);
    }
    mg_lua_limits_t lim = {5, 64};
    mg_lua_vm_t *vm = mg_lua_vm_create(s, &lim, &err);
    if (vm == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    mg_group_t *g = &s->groups[0];
    mg_deployment_t *out[256];
    int nout;
    char why[128];
    mg_lua_ctx_t ctx = {"g", "g", false, 1, 100, NULL, 0, NULL, NULL, 0};
    for (int i = 0; i < 1000; i++) {
        mg_lua_vm_select(vm, MG_POLICY_ROUTING, &ctx, g->deps, (int) g->ndeps, out, &nout, why, sizeof(why));
    }
    int64_t t0 = mg_time_mono_us();
    int errors = 0;
    for (int i = 0; i < calls; i++) {
        if (mg_lua_vm_select(vm, MG_POLICY_ROUTING, &ctx, g->deps, (int) g->ndeps, out, &nout, why,
                             sizeof(why)) != MG_OK) {
            errors++;
        }
    }
    int64_t t1 = mg_time_mono_us();
    printf("policy %s, %d deployments: %.3f us per call (%d calls, %d errors), state %zu KiB\n", pol,
           n, (double) (t1 - t0) / calls, calls, errors, mg_lua_vm_memory(vm) / 1024);
    mg_lua_vm_destroy(vm);
    mg_snapshot_unref(s);
    mg_config_unref(cfg);
    mg_buf_free(&y);
    return errors ? 1 : 0;
}
