/*
 * mg_main.c -- the moongate command line: LiteLLM's flags and environment,
 * config validation, then the master process.
 *
 * LiteLLM flags moongate does not implement are accepted with a warning when
 * ignoring them changes nothing a client sees, and refused otherwise.
 */
#include "../spend/mg_spend.h"
#include "../base/mg_log.h"
#include "../lua/mg_lua.h"
#include "../registry/mg_settings.h"
#include "../registry/mg_config.h"
#include "mg_master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int mg_main(int argc, char **argv);

static void
mg_usage(FILE *f)
{
    fprintf(f,
            "usage: moongate [--config PATH] [--host HOST] [--port PORT] [--num_workers N]\n"
            "                [--state_dir DIR] [--debug] [--detailed_debug] [--keepalive_timeout S]\n"
            "                [--limit_concurrency N]\n"
            "                [--validate_config] [--version]\n"
            "       moongate policy check FILE.lua [--kind routing|fallback|wildcard] [--conf JSON]\n"
            "\n"
            "  -c, --config PATH      LiteLLM config.yaml (env CONFIG_FILE_PATH)\n"
            "  --host HOST            bind address (env HOST, default 0.0.0.0)\n"
            "  --port PORT            port (env PORT, default 4000; 0 picks a free one)\n"
            "  --num_workers N        worker processes (env NUM_WORKERS, default 1)\n"
            "  --state_dir DIR        embedded registry store directory (env MOONGATE_STATE_DIR)\n"
            "  --debug                info-level logs (env DEBUG=true)\n"
            "  --detailed_debug       debug-level logs (env DETAILED_DEBUG=true)\n"
            "  --validate_config      check the config and exit (1 on error)\n"
            "  -v, --version          print the version and exit\n");
}

/* Flags that take a value and are harmless to ignore. */
static const char *const mg_ignored_value_flags[] = {
    "--log_config", "--max_requests_before_restart", "--max_requests_before_restart_jitter",
    "--timeout_worker_healthcheck", "--granian_threads", "--ciphers",
    "--num_requests", NULL,
};
/* Boolean flags that are harmless to ignore. */
static const char *const mg_ignored_bool_flags[] = {
    "--telemetry", "--local", "--enforce_prisma_migration_check", "--use_v2_migration_resolver",
    "--use_prisma_db_push", "--use_legacy_migration_resolver", "--run_gunicorn",
    "--run_hypercorn", "--run_granian", "--reload", "--drop_params", "--add_function_to_prompt",
    NULL,
};
/* Flags whose behaviour moongate does not provide: refused, not silently ignored. */
static const char *const mg_refused_flags[] = {
    "--ssl_keyfile_path", "--ssl_certfile_path", "--model", "-m", "--alias", "--api_base",
    "--api_version", "--add_key", "--headers", "--save", "--temperature", "--max_tokens",
    "--request_timeout", "--max_budget", "--use_queue", "--health", "--test", "--test_async",
    "--setup", "--skip_server_startup", "--prometheus_metrics_port", "--iam_token_db_auth",
    "--azure_postgresql_auth", NULL,
};

static bool
mg_in(const char *a, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(a, *list) == 0) {
            return true;
        }
    }
    return false;
}

static bool
mg_env_true(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* Normalises "--num-workers" to "--num_workers" and splits "--x=y". */
static const char *
mg_flag(const char *arg, char *buf, size_t len, const char **inline_val)
{
    *inline_val = NULL;
    if (strncmp(arg, "--", 2) != 0) {
        return arg;
    }
    snprintf(buf, len, "%s", arg);
    char *eq = strchr(buf, '=');
    if (eq != NULL) {
        *eq = '\0';
        *inline_val = arg + (eq - buf) + 1;
    }
    for (char *p = buf + 2; *p; p++) {
        if (*p == '-') {
            *p = '_';
        }
    }
    return buf;
}

static int
mg_parse_int(const char *flag, const char *v, int *out)
{
    char *e;
    long n = strtol(v, &e, 10);
    if (*v == '\0' || *e != '\0' || n < 0 || n > 65535 * 16) {
        fprintf(stderr, "moongate: %s expects a number, got \"%s\"\n", flag, v);
        return -1;
    }
    *out = (int) n;
    return 0;
}

int
mg_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "policy") == 0) {
        return mg_lua_cli(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "settings") == 0) {
        mg_settings_print_markdown(); /* the README's table is checked against this */
        return 0;
    }
    const char *config = getenv("CONFIG_FILE_PATH");
    const char *host = getenv("HOST");
    int port = 4000;
    int workers = 1;
    const char *state_dir = NULL;
    bool validate = false;
    bool debug = mg_env_true("DEBUG");
    bool detailed = mg_env_true("DETAILED_DEBUG");
    const char *keepalive = getenv("KEEPALIVE_TIMEOUT");
    if (getenv("PORT") != NULL && mg_parse_int("PORT", getenv("PORT"), &port) != 0) {
        return 1;
    }
    if (getenv("NUM_WORKERS") != NULL && mg_parse_int("NUM_WORKERS", getenv("NUM_WORKERS"), &workers) != 0) {
        return 1;
    }
    if (getenv("MOONGATE_STATE_DIR") != NULL) {
        state_dir = NULL; /* read by the worker after config */
    }
    for (int i = 1; i < argc; i++) {
        char fb[128];
        const char *iv;
        const char *f = mg_flag(argv[i], fb, sizeof(fb), &iv);
#define MG_VALUE()                                                                                 \
    (iv != NULL ? iv : (i + 1 < argc ? argv[++i] : (fprintf(stderr, "moongate: %s needs a value\n", f), (const char *) NULL)))
        if (strcmp(f, "--config") == 0 || strcmp(f, "-c") == 0) {
            if ((config = MG_VALUE()) == NULL) return 1;
        } else if (strcmp(f, "--host") == 0) {
            if ((host = MG_VALUE()) == NULL) return 1;
        } else if (strcmp(f, "--port") == 0) {
            const char *v = MG_VALUE();
            if (v == NULL || mg_parse_int(f, v, &port) != 0) return 1;
        } else if (strcmp(f, "--num_workers") == 0) {
            const char *v = MG_VALUE();
            if (v == NULL || mg_parse_int(f, v, &workers) != 0) return 1;
        } else if (strcmp(f, "--state_dir") == 0) {
            if ((state_dir = MG_VALUE()) == NULL) return 1;
        } else if (strcmp(f, "--keepalive_timeout") == 0) {
            if ((keepalive = MG_VALUE()) == NULL) return 1;
        } else if (strcmp(f, "--limit_concurrency") == 0) {
            const char *v = MG_VALUE();
            if (v == NULL) return 1;
            setenv("LIMIT_CONCURRENCY", v, 1); /* read by every process's config */
        } else if (strcmp(f, "--debug") == 0) {
            debug = true;
        } else if (strcmp(f, "--detailed_debug") == 0) {
            detailed = true;
        } else if (strcmp(f, "--validate_config") == 0) {
            validate = true;
        } else if (strcmp(f, "--version") == 0 || strcmp(f, "-v") == 0) {
            printf("moongate: Current Version = %s (LiteLLM proxy compatible)\n", MG_VERSION);
            return 0;
        } else if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            mg_usage(stdout);
            return 0;
        } else if (mg_in(f, mg_ignored_value_flags)) {
            const char *v = MG_VALUE();
            if (v == NULL) return 1;
            fprintf(stderr, "moongate: warning: %s is a LiteLLM option moongate does not need; "
                            "ignored\n", f);
        } else if (mg_in(f, mg_ignored_bool_flags)) {
            fprintf(stderr, "moongate: warning: %s is a LiteLLM option moongate does not need; "
                            "ignored\n", f);
        } else if (mg_in(f, mg_refused_flags)) {
            fprintf(stderr, "moongate: %s is a LiteLLM option moongate does not support yet; "
                            "refusing to start rather than silently behave differently "
                            "(put models in config.yaml instead of using model-only mode)\n", f);
            return 2;
        } else {
            fprintf(stderr, "moongate: unknown option \"%s\"\n", argv[i]);
            mg_usage(stderr);
            return 2;
        }
#undef MG_VALUE
    }
    if (host == NULL || host[0] == '\0') {
        host = "0.0.0.0";
    }
    if (workers <= 0) {
        workers = 1;
    }
    mg_log_level_t lvl = MG_LOG_NOTICE;
    const char *ll = getenv("LITELLM_LOG");
    if (ll != NULL && mg_log_level_parse(ll, &lvl) != 0) {
        fprintf(stderr, "moongate: warning: LITELLM_LOG=%s is not a log level; using NOTICE\n", ll);
        lvl = MG_LOG_NOTICE;
    }
    if (debug && lvl > MG_LOG_INFO) {
        lvl = MG_LOG_INFO;
    }
    if (debug) {
        lvl = MG_LOG_INFO;
    }
    if (detailed) {
        lvl = MG_LOG_DEBUG;
    }
    mg_log_set_level(lvl);
    mg_log_set_process("master", -1);
    const char *jl = getenv("JSON_LOGS");
    if (jl != NULL && (strcasecmp(jl, "true") == 0 || strcmp(jl, "1") == 0)) {
        mg_log_set_json(true); /* from the first line; litellm_settings.json_logs once read */
    }
    if (config != NULL && config[0] == '\0') {
        config = NULL;
    }

    if (keepalive != NULL) {
        setenv("KEEPALIVE_TIMEOUT", keepalive, 1); /* every process's config reads it */
    }
    mg_config_opts_t opts = {state_dir, false};
    mg_config_t *cfg = NULL;
    mg_err_t err;
    if (mg_config_load(config, &opts, &cfg, &err) != MG_OK ||
        mg_lua_check_config(cfg, &err) != MG_OK || mg_spend_check_config(cfg, &err) != MG_OK) {
        fprintf(stderr, "moongate: config error: %s\n", err.msg);
        mg_config_unref(cfg);
        return 1;
    }
    if (cfg->json_logs) {
        mg_log_set_json(true);
    }
    if (validate) {
        printf("moongate: config OK (%zu models)\n", cfg->nmodels);
        mg_config_unref(cfg);
        return 0;
    }
    if (cfg->master_key == NULL) {
        mg_log(MG_LOG_WARN, NULL, "no master_key (general_settings.master_key or "
                                  "LITELLM_MASTER_KEY) is set: every route is open to anyone who "
                                  "can reach this port");
    }
    mg_master_args_t ma = {config, opts, cfg, host, port, workers};
    int rc = mg_master_run(&ma);
    mg_config_unref(cfg);
    return rc;
}
