/*
 * test_store_pg.c -- integration test of the PostgreSQL registry store (core/store/mg_store_pg.c)
 * against a real PostgreSQL server, driven on a libevent loop; with t_litellm(), LiteLLM's tables
 * (core/store/mg_store_pg_litellm.c): a database created from tests/fixtures/litellm/schema.sql
 * (Prisma's DDL, not ours) with rows and encrypted model rows written as LiteLLM writes them
 * (tests/fixtures/litellm/encrypt.py: PyNaCl and pyca/cryptography, needs /usr/bin/python3 with
 * python3-nacl and python3-cryptography).
 *
 * Owns: a temporary directory under /tmp (server data, socket, logs), the PostgreSQL server it
 * starts there, and the test databases it creates.  Everything is removed at the end, even when a
 * check fails or the process dies: a guardian process (forked at start, in its own session)
 * waits for this one to exit and then stops the server and removes the directory.
 *
 * Usage:
 *   test_store_pg                   start a PostgreSQL 15 server of our own (initdb + pg_ctl as
 *                                   the postgres user when run as root) on 127.0.0.1, free port
 *   test_store_pg PORT              use a server a fixture started (also MG_TEST_PG_PORT=PORT);
 *                                   trust auth for user postgres on 127.0.0.1 is expected.  With
 *                                   MG_TEST_PG_DATA=<data dir> the outage checks stop and restart
 *                                   it; without, they are skipped.
 *   MG_PG_BINDIR (default /usr/lib/postgresql/15/bin) locates initdb and pg_ctl.
 * Exits 0 when every check passed, 1 otherwise, 77 (ctest's skip code) without PostgreSQL.
 *
 * Includes the store's .c to reach its timeouts and resolver family; link it WITHOUT
 * mg_store_pg.c (see the CMake snippet in the store's notes).  Every wait is a bounded poll of
 * the event loop; there is no sleep used as synchronisation.
 */
#define _GNU_SOURCE /* pipe2 */
#include "../../../../core/store/mg_store_pg.c"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_PASSWORD "Sup3r-Secret-pw"
#define TEST_API_KEY  "sk-test-SECRET-123"
#define TEST_SECRET   "salt-key-for-tests"

static int t_passed, t_failed;
static struct event_base *t_base;
static char t_dir[256];          /* our temporary directory */
static char t_bindir[256];
static char t_datadir[300];      /* server data dir ("" when we cannot stop/start the server) */
static int t_port;
static char t_db[64];
static char t_url[512];
static bool t_own_server;
static char t_fixture_opts[2048]; /* a fixture's server: its command line, to restart it */
static int t_real_stderr = -1;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_passed++;                                                                            \
        } else {                                                                                   \
            t_failed++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            fflush(stdout);                                                                        \
        }                                                                                          \
    } while (0)

/* Runs the loop until cond holds or ms pass; evaluates to cond. */
#define WAIT_FOR(cond, ms)                                                                         \
    ({                                                                                             \
        int64_t wait_deadline_ = mg_time_mono_ms() + (ms);                                         \
        while (!(cond) && mg_time_mono_ms() < wait_deadline_) {                                    \
            event_base_loop(t_base, EVLOOP_ONCE);                                                  \
        }                                                                                          \
        (cond);                                                                                    \
    })

static void
t_section(const char *name)
{
    printf("-- %s\n", name);
    fflush(stdout);
}

/* ---- processes: run a command, the server, the guardian ---- */

/* Runs argv (as the postgres user when we are root), output appended to log; exit status. */
static int
t_run(const char *log, const char *const *argv)
{
    const char *full[32];
    int n = 0;
    if (geteuid() == 0) {
        full[n++] = "runuser";
        full[n++] = "-u";
        full[n++] = "postgres";
        full[n++] = "--";
    }
    for (int i = 0; argv[i] != NULL && n < 31; i++) {
        full[n++] = argv[i];
    }
    full[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in >= 0) {
            dup2(in, 0);
        }
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execvp(full[0], (char *const *) full);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
t_rmrf(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *) NULL);
        _exit(127);
    }
    int st;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

static int
t_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static int
t_pg_start(void)
{
    char ctl[300], log[300], cmdlog[300], opts[sizeof(t_fixture_opts)];
    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", t_bindir);
    snprintf(log, sizeof(log), "%s/postgres.log", t_dir); /* written by the server (postgres) */
    snprintf(cmdlog, sizeof(cmdlog), "%s/commands.log", t_dir);
    if (t_own_server) {
        snprintf(opts, sizeof(opts),
                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
                 t_port, t_dir);
    } else {
        snprintf(opts, sizeof(opts), "%s", t_fixture_opts); /* as the fixture started it */
    }
    const char *argv[] = {ctl, "-D", t_datadir, "-l", log, "-w", "-t", "60", "-o", opts, "start",
                          NULL};
    return t_run(cmdlog, argv);
}

static int
t_pg_stop(const char *mode)
{
    char ctl[300], log[300];
    if (!t_own_server) {
        /* postmaster.opts: the binary, then its quoted arguments; pg_ctl -o takes the arguments */
        char path[400];
        snprintf(path, sizeof(path), "%s/postmaster.opts", t_datadir);
        FILE *f = fopen(path, "r");
        char line[sizeof(t_fixture_opts)] = "";
        if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
            printf("cannot read %s: cannot restart the fixture's server\n", path);
            if (f != NULL) {
                fclose(f);
            }
            return -1;
        }
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        const char *args = strchr(line, ' ');
        args = args != NULL ? args + 1 : "";
        while (strncmp(args, "\"-D\" \"", 6) == 0 && strchr(args + 6, '"') != NULL) {
            args = strchr(args + 6, '"') + 1; /* pg_ctl passes -D itself */
            args += *args == ' ';
        }
        snprintf(t_fixture_opts, sizeof(t_fixture_opts), "%s", args);
    }
    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", t_bindir);
    snprintf(log, sizeof(log), "%s/commands.log", t_dir);
    const char *argv[] = {ctl, "-D", t_datadir, "-m", mode, "-w", "-t", "60", "stop", NULL};
    return t_run(log, argv);
}

/*
 * The guardian: a shell in its own session that waits for EOF on a pipe whose only writer is
 * this process (close-on-exec, so servers we spawn do not hold it), then stops our server and
 * removes the directory.  It runs whether we exit normally, fail, crash or get killed.
 */
static void
t_guardian(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        dup2(p[0], 0);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        const char *script =
            "cat >/dev/null; "
            "if [ -n \"$3\" ] && [ -f \"$3/postmaster.pid\" ]; then "
            "  if [ \"$(id -u)\" = 0 ]; then runuser -u postgres -- \"$2/pg_ctl\" -D \"$3\" "
            "    -m immediate -w stop; else \"$2/pg_ctl\" -D \"$3\" -m immediate -w stop; fi; "
            "fi; rm -rf \"$1\"";
        execl("/bin/sh", "sh", "-c", script, "sh", t_dir, t_bindir,
              t_own_server ? t_datadir : "", (char *) NULL);
        _exit(127);
    }
    close(p[0]);
    /* p[1] stays open (and is deliberately never closed) until this process ends */
}

static void
t_alarm(int sig)
{
    static const char msg[] = "FAIL: test_store_pg timed out as a whole (240s)\n";
    ssize_t w = write(1, msg, sizeof(msg) - 1);
    (void) w;
    _exit(1); /* the guardian cleans up */
}

/* Prints one of our log files (the directory goes away with us). */
static void
t_cat(const char *name)
{
    char path[400], line[1024];
    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        printf("   %s: %s", name, line);
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* Starts our own server; returns 0, or 77 when PostgreSQL is not installed. */
static int
t_setup_own_server(void)
{
    char initdb[300], log[300];
    snprintf(initdb, sizeof(initdb), "%s/initdb", t_bindir);
    if (access(initdb, X_OK) != 0) {
        printf("SKIP: %s not found (install postgresql-15 or set MG_PG_BINDIR)\n", initdb);
        return 77;
    }
    if (geteuid() == 0 && getpwnam("postgres") == NULL) {
        printf("SKIP: running as root and there is no postgres user\n");
        return 77;
    }
    snprintf(log, sizeof(log), "%s/commands.log", t_dir);
    const char *argv[] = {initdb, "-D", t_datadir, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                          "--locale=C", "--no-sync", NULL};
    if (t_run(log, argv) != 0) {
        printf("FAIL: initdb failed:\n");
        t_cat("commands.log");
        return 1;
    }
    /* a port can be taken between our probe and the server's bind: try a few */
    for (int attempt = 0; attempt < 5; attempt++) {
        t_port = t_free_port();
        if (t_port > 0 && t_pg_start() == 0) {
            return 0;
        }
    }
    printf("FAIL: could not start PostgreSQL:\n");
    t_cat("commands.log");
    t_cat("postgres.log");
    return 1;
}

/* ---- blocking admin connection (test only: the store itself never blocks) ---- */

static PGconn *
t_admin(const char *db)
{
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=%s "
             "connect_timeout=10", t_port, db);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("admin connection failed: %s", PQerrorMessage(c));
    }
    return c;
}

/* Runs sql; returns the first value of the first row (static buffer) or NULL. */
static const char *
t_sql(PGconn *c, const char *sql)
{
    static char out[8192];
    PGresult *r = PQexec(c, sql);
    const char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        snprintf(out, sizeof(out), "%s", PQgetvalue(r, 0, 0));
        v = out;
    } else if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        out[0] = '\0';
        v = out;
    } else {
        printf("admin sql failed: %s: %s", sql, PQerrorMessage(c));
    }
    PQclear(r);
    return v;
}

/* ---- store helpers ---- */

typedef struct {
    int calls;
    int rc;
    int64_t version;
    json_t *a;          /* models or row (owned ref) */
    json_t *b;          /* policies (owned ref) */
    mg_err_t err;
    int64_t at_ms;      /* when the callback ran */
    mg_store_t *destroy_me;
} t_res_t;

static void
t_res_reset(t_res_t *r)
{
    json_decref(r->a);
    json_decref(r->b);
    memset(r, 0, sizeof(*r));
}

static void
t_load_cb(void *ud, int rc, int64_t version, json_t *models, json_t *policies, json_t *idents,
          const mg_err_t *err)
{
    t_res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->version = version;
    r->a = json_incref(models);
    r->b = json_incref(policies);
    r->at_ms = mg_time_mono_ms();
    if (err != NULL) {
        r->err = *err;
    }
    if (r->destroy_me != NULL) {
        mg_store_t *st = r->destroy_me;
        r->destroy_me = NULL;
        st->ops->destroy(st);
    }
}

static void
t_version_cb(void *ud, int rc, int64_t version, const mg_err_t *err)
{
    t_res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->version = version;
    r->at_ms = mg_time_mono_ms();
    if (err != NULL) {
        r->err = *err;
    }
}

static void
t_mutate_cb(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    t_res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->version = version;
    r->a = json_incref(row);
    r->at_ms = mg_time_mono_ms();
    if (err != NULL) {
        r->err = *err;
    }
}

static bool
t_load(mg_store_t *st, t_res_t *r, int ms)
{
    t_res_reset(r);
    st->ops->load(st, t_load_cb, r);
    return WAIT_FOR(r->calls > 0, ms);
}

static int64_t
t_version(mg_store_t *st)
{
    t_res_t r = {0};
    st->ops->get_version(st, t_version_cb, &r);
    if (!WAIT_FOR(r.calls > 0, 15000) || r.rc != MG_OK) {
        printf("get_version failed: %s\n", r.err.msg);
        return -1;
    }
    return r.version;
}

/* Applies the mutation given as JSON text; waits for the callback. */
static bool
t_mutate(mg_store_t *st, t_res_t *r, const char *json, int ms)
{
    t_res_reset(r);
    json_error_t je;
    json_t *m = json_loads(json, 0, &je);
    if (m == NULL) {
        printf("bad test JSON: %s: %s\n", json, je.text);
        return false;
    }
    st->ops->mutate(st, m, t_mutate_cb, r);
    json_decref(m);
    return WAIT_FOR(r->calls > 0, ms);
}

static mg_store_t *
t_store(const char *url, const char *secret)
{
    mg_store_conf_t conf = {.base = t_base, .database_url = url, .secret = secret};
    mg_err_t err;
    mg_err_clear(&err);
    mg_store_t *st = mg_store_pg_create(&conf, &err);
    if (st == NULL) {
        printf("mg_store_pg_create failed: %s\n", err.msg);
    }
    return st;
}

static mg_store_pg_t *
t_impl(mg_store_t *st)
{
    return st->impl;
}

static json_t *
t_status(mg_store_t *st)
{
    return st->ops->status(st);
}

static bool
t_connected(mg_store_t *st)
{
    return t_impl(st)->q.state == MG_PG_READY;
}

typedef struct {
    int hints;
    int64_t max_hint;
    int reconnects;
} t_watch_t;

static void
t_hint_cb(void *ud, int64_t version)
{
    t_watch_t *w = ud;
    w->hints++;
    if (version > w->max_hint) {
        w->max_hint = version;
    }
}

static void
t_reconnect_cb(void *ud)
{
    t_watch_t *w = ud;
    w->reconnects++;
}

static void
t_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    /* keeps EVLOOP_ONCE returning so WAIT_FOR re-checks its deadline */
}

static json_int_t
t_param_int(json_t *row, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(row, "litellm_params"), key));
}

static const char *
t_model_id(json_t *models, size_t i)
{
    return json_string_value(json_object_get(json_array_get(models, i), "model_id"));
}

static const char *
t_param(json_t *row, const char *key)
{
    return json_string_value(json_object_get(json_object_get(row, "litellm_params"), key));
}

/* ---- the checks ---- */

static void
t_bad_urls(void)
{
    t_section("invalid DATABASE_URL is rejected without echoing the password");
    mg_store_conf_t conf = {.base = t_base,
                            .database_url = "postgresql://u:pa%zzword@127.0.0.1/db"};
    mg_err_t err;
    mg_err_clear(&err);
    mg_store_t *st = mg_store_pg_create(&conf, &err);
    CHECK(st == NULL, "create accepted a malformed URL");
    CHECK(err.cls == MG_ERR_CONFIG, "class %s", mg_err_class_name(err.cls));
    CHECK(strstr(err.msg, "pa%zzword") == NULL && strstr(err.msg, "zzword") == NULL,
          "password leaked: %s", err.msg);
    CHECK(strstr(err.msg, "u:***@127.0.0.1/db") != NULL, "message lacks the redacted URL: %s",
          err.msg);
    if (st != NULL) {
        st->ops->destroy(st);
    }
}

static void
t_redaction(void)
{
    t_section("redaction of DATABASE_URL forms (no connection made)");
    static const char *const cases[][2] = {
        {"postgresql://u:pw1234@h1:5432,h2:5433/db?sslmode=require",
         "postgresql://u:***@h1:5432,h2:5433/db"},
        {"postgres://u@[::1]:5/db", "postgresql://u@[::1]:5/db"},
        {"host=127.0.0.1 port=5 user=u password=kv-secret dbname=d",
         "postgresql://u:***@127.0.0.1:5/d"},
        {"postgresql:///db?host=/var/run/postgresql&password=qs-secret",
         "postgresql://:***@/var/run/postgresql/db"},
        {"postgresql://u:p%40ss%2Fword@db.example/x", "postgresql://u:***@db.example/x"},
        {"postgresql://h1,h2:7/x", "postgresql://h1,h2:7/x"},
        {"postgresql://h1,h2/x?port=7", "postgresql://h1:7,h2:7/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_store_pg_t fake;
        memset(&fake, 0, sizeof(fake));
        fake.opts = PQconninfoParse(cases[i][0], NULL);
        CHECK(fake.opts != NULL, "libpq cannot parse %s", cases[i][0]);
        if (fake.opts == NULL) {
            continue;
        }
        char *r = mg_store_pg_redact_opts(&fake);
        CHECK(strcmp(r, cases[i][1]) == 0, "%s -> %s (want %s)", cases[i][0], r, cases[i][1]);
        char msg[256];
        const char *pw = mg_store_pg_opt(&fake, "password");
        if (pw != NULL) {
            char in[256];
            snprintf(in, sizeof(in), "FATAL:  password \"%s\" rejected\nLINE 3: FROM x\n"
                     "        ^\n\tsome hint\n", pw);
            mg_store_pg_clean(&fake, in, msg, sizeof(msg));
            CHECK(strstr(msg, pw) == NULL && strcmp(msg, "FATAL: password \"***\" rejected") == 0,
                  "clean: %s", msg);
        }
        free(r);
        PQconninfoFree(fake.opts);
    }
}

static void
t_unreachable(void)
{
    t_section("unreachable server: operations fail promptly with not_ready");
    int port = t_free_port();
    char url[256];
    snprintf(url, sizeof(url), "postgresql://postgres:%s@127.0.0.1:%d/x", TEST_PASSWORD, port);
    mg_store_t *st = t_store(url, TEST_SECRET);
    t_res_t r = {0};
    int64_t t0 = mg_time_mono_ms();
    CHECK(t_load(st, &r, 6000), "load on an unreachable server never called back");
    CHECK(r.rc == MG_ERROR && r.err.cls == MG_ERR_NOT_READY, "rc %d class %s", r.rc,
          mg_err_class_name(r.err.cls));
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    CHECK(strstr(r.err.msg, "database unavailable") != NULL && strstr(r.err.msg, portstr) &&
              strstr(r.err.msg, "127.0.0.1") != NULL,
          "message does not name the problem: %s", r.err.msg);
    CHECK(strstr(r.err.msg, TEST_PASSWORD) == NULL, "password leaked: %s", r.err.msg);
    printf("   first failure after %" PRId64 "ms: %s\n", r.at_ms - t0, r.err.msg);
    /* now known down: the next operation fails on the next loop turn */
    t_res_t m = {0};
    t0 = mg_time_mono_ms();
    CHECK(t_mutate(st, &m, "{\"op\":\"bump\",\"reason\":\"x\"}", 3000), "no callback");
    CHECK(m.rc == MG_ERROR && m.err.cls == MG_ERR_NOT_READY && m.at_ms - t0 < 1000,
          "rc %d class %s after %" PRId64 "ms", m.rc, mg_err_class_name(m.err.cls), m.at_ms - t0);
    json_t *s = t_status(st);
    char *dump = json_dumps(s, JSON_COMPACT);
    CHECK(!json_is_true(json_object_get(s, "connected")) &&
              json_is_string(json_object_get(s, "last_error")) &&
              strstr(dump, TEST_PASSWORD) == NULL,
          "status: %s", dump);
    free(dump);
    json_decref(s);
    st->ops->destroy(st);
    t_res_reset(&r);
    t_res_reset(&m);
}

static void
t_everything(void)
{
    t_res_t r = {0}, m = {0};
    char buf[1024];

    t_section("schema creation by several stores at once (fresh database)");
    mg_store_t *st[4];
    t_res_t lr[4];
    memset(lr, 0, sizeof(lr));
    for (int i = 0; i < 4; i++) {
        st[i] = t_store(t_url, TEST_SECRET);
    }
    for (int i = 0; i < 4; i++) {
        st[i]->ops->load(st[i], t_load_cb, &lr[i]);
    }
    CHECK(WAIT_FOR(lr[0].calls && lr[1].calls && lr[2].calls && lr[3].calls, 20000),
          "loads did not complete");
    for (int i = 0; i < 4; i++) {
        CHECK(lr[i].rc == MG_OK && lr[i].version == 0 && json_array_size(lr[i].a) == 0 &&
                  json_object_size(lr[i].b) == 0,
              "store %d: rc %d version %" PRId64 " err %s", i, lr[i].rc, lr[i].version,
              lr[i].err.msg);
        t_res_reset(&lr[i]);
    }
    PGconn *admin = t_admin(t_db);
    const char *v = t_sql(admin, "SELECT count(*) FROM pg_tables WHERE tablename IN "
                          "('moongate_registry','moongate_models','moongate_policies',"
                          "'moongate_events')");
    CHECK(v != NULL && strcmp(v, "4") == 0, "tables: %s", v ? v : "(error)");
    v = t_sql(admin, "SELECT count(*) FROM moongate_registry");
    CHECK(v != NULL && strcmp(v, "1") == 0, "registry rows: %s", v ? v : "(error)");
    for (int i = 1; i < 4; i++) {
        st[i]->ops->destroy(st[i]);
    }
    mg_store_t *a = st[0];

    t_section("status is redacted");
    json_t *s = t_status(a);
    snprintf(buf, sizeof(buf), "postgresql://postgres:***@127.0.0.1:%d/%s", t_port, t_db);
    CHECK(json_is_true(json_object_get(s, "connected")), "not connected");
    CHECK(strcmp(json_string_value(json_object_get(s, "type")), "postgres") == 0, "type");
    CHECK(strcmp(json_string_value(json_object_get(s, "url")), buf) == 0, "url %s",
          json_string_value(json_object_get(s, "url")));
    CHECK(json_is_null(json_object_get(s, "last_error")) &&
              json_integer_value(json_object_get(s, "queued")) == 0 &&
              json_is_false(json_object_get(s, "listening")),
          "status fields");
    char *dump = json_dumps(s, JSON_COMPACT);
    CHECK(strstr(dump, TEST_PASSWORD) == NULL, "password in status: %s", dump);
    free(dump);
    json_decref(s);

    t_section("watch: a second store gets on_reconnect, then hints");
    mg_store_t *b = t_store(t_url, TEST_SECRET);
    t_watch_t w = {0};
    b->ops->watch(b, t_hint_cb, t_reconnect_cb, &w);
    CHECK(WAIT_FOR(w.reconnects == 1, 15000), "no initial on_reconnect (%d)", w.reconnects);

    t_section("model_new");
    int64_t v0 = t_version(a);
    CHECK(v0 == 0, "version %" PRId64, v0);
    CHECK(t_mutate(a, &m,
                   "{\"op\":\"model_new\",\"model_id\":\"m1\",\"model_name\":\"gpt-4o\","
                   "\"litellm_params\":{\"model\":\"openai/gpt-4o\",\"api_key\":\"" TEST_API_KEY
                   "\",\"rpm\":10,\"tags\":[\"a\",\"b\"]},\"model_info\":{\"tier\":\"gold\"},"
                   "\"user\":\"admin\"}",
                   15000),
          "no callback");
    CHECK(m.rc == MG_OK && m.version == v0 + 1, "rc %d version %" PRId64 " err %s", m.rc,
          m.version, m.err.msg);
    CHECK(m.a != NULL && t_param(m.a, "api_key") &&
              strcmp(t_param(m.a, "api_key"), TEST_API_KEY) == 0 &&
              strcmp(json_string_value(json_object_get(m.a, "created_by")), "admin") == 0 &&
              json_is_string(json_object_get(m.a, "created_at")),
          "row not decrypted / incomplete");
    int64_t v1 = m.version;
    CHECK(WAIT_FOR(w.max_hint >= v1, 10000), "no hint for version %" PRId64 " (max %" PRId64 ")",
          v1, w.max_hint);

    CHECK(t_load(a, &r, 15000) && r.rc == MG_OK, "load: %s", r.err.msg);
    CHECK(r.version == v1 && json_array_size(r.a) == 1, "version %" PRId64 " models %zu",
          r.version, json_array_size(r.a));
    json_t *row = json_array_get(r.a, 0);
    CHECK(t_param(row, "api_key") != NULL && strcmp(t_param(row, "api_key"), TEST_API_KEY) == 0,
          "load did not decrypt api_key");
    CHECK(t_param_int(row, "rpm") == 10 &&
              json_array_size(json_object_get(json_object_get(row, "litellm_params"), "tags")) == 2,
          "non-string params lost their type");
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(row, "model_info"), "tier")),
                 "gold") == 0,
          "model_info");

    t_section("values are encrypted at rest; the event is audited");
    v = t_sql(admin, "SELECT litellm_params::text FROM moongate_models WHERE model_id = 'm1'");
    CHECK(v != NULL && strstr(v, TEST_API_KEY) == NULL && strstr(v, "mg1:") != NULL &&
              strstr(v, "openai/gpt-4o") == NULL,
          "stored litellm_params: %s", v ? v : "(error)");
    snprintf(buf, sizeof(buf), "SELECT op || ' ' || (detail->>'model_id') FROM moongate_events "
             "WHERE version = %" PRId64, v1);
    v = t_sql(admin, buf);
    CHECK(v != NULL && strcmp(v, "model_new m1") == 0, "event row: %s", v ? v : "(none)");

    t_section("duplicate model_new fails and does not bump");
    CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"m1\",\"model_name\":\"x\","
                          "\"litellm_params\":{\"model\":\"x\"}}", 15000), "no callback");
    CHECK(m.rc == MG_ERROR && m.err.cls == MG_ERR_BAD_REQUEST &&
              strcmp(m.err.msg, "Model with id=m1 already exists") == 0,
          "rc %d class %s msg %s", m.rc, mg_err_class_name(m.err.cls), m.err.msg);
    CHECK(t_version(a) == v1, "version moved on a duplicate");

    t_section("model_update merges, skips nulls, clears keys");
    CHECK(t_mutate(a, &m,
                   "{\"op\":\"model_update\",\"model_id\":\"m1\",\"model_name\":null,"
                   "\"litellm_params\":{\"api_base\":\"http://127.0.0.1:9\",\"rpm\":null},"
                   "\"model_info\":{\"region\":\"eu\"},"
                   "\"clear\":[\"litellm_params.api_key\",\"model_info.tier\"],\"user\":\"bob\"}",
                   15000),
          "no callback");
    CHECK(m.rc == MG_OK && m.version == v1 + 1, "rc %d version %" PRId64 " %s", m.rc, m.version,
          m.err.msg);
    CHECK(m.a != NULL && t_param(m.a, "api_key") == NULL && t_param(m.a, "api_base") != NULL &&
              strcmp(t_param(m.a, "api_base"), "http://127.0.0.1:9") == 0 &&
              strcmp(t_param(m.a, "model"), "openai/gpt-4o") == 0,
          "litellm_params not merged/cleared");
    CHECK(m.a != NULL &&
              t_param_int(m.a, "rpm") == 10,
          "a null value overwrote rpm");
    CHECK(m.a != NULL &&
              strcmp(json_string_value(json_object_get(m.a, "model_name")), "gpt-4o") == 0 &&
              json_object_get(json_object_get(m.a, "model_info"), "tier") == NULL &&
              json_object_get(json_object_get(m.a, "model_info"), "region") != NULL &&
              strcmp(json_string_value(json_object_get(m.a, "updated_by")), "bob") == 0 &&
              strcmp(json_string_value(json_object_get(m.a, "created_by")), "admin") == 0,
          "row fields after update");
    int64_t v2 = m.version;
    CHECK(t_mutate(a, &m, "{\"op\":\"model_update\",\"model_id\":\"m1\","
                          "\"model_name\":\"gpt-4o-renamed\","
                          "\"litellm_params\":{\"api_key\":\"sk-new\"}}",
                   15000) && m.rc == MG_OK && m.version == v2 + 1,
          "rename: %s", m.err.msg);
    CHECK(m.a != NULL && strcmp(json_string_value(json_object_get(m.a, "model_name")),
                                "gpt-4o-renamed") == 0 &&
              strcmp(t_param(m.a, "api_key"), "sk-new") == 0 &&
              strcmp(json_string_value(json_object_get(m.a, "updated_by")), "default_user_id") == 0,
          "rename row");
    int64_t v3 = m.version;
    v = t_sql(admin, "SELECT litellm_params::text FROM moongate_models WHERE model_id = 'm1'");
    CHECK(v != NULL && strstr(v, "sk-new") == NULL && strstr(v, "127.0.0.1:9") == NULL,
          "updated values stored in plaintext: %s", v ? v : "(error)");

    t_section("unknown ids and bad mutations fail without a bump");
    CHECK(t_mutate(a, &m, "{\"op\":\"model_update\",\"model_id\":\"nope\",\"model_name\":\"x\"}",
                   15000) && m.rc == MG_ERROR && m.err.cls == MG_ERR_NO_ROUTE &&
              strcmp(m.err.msg, "Model with id=nope not found") == 0,
          "update unknown: %s %s", mg_err_class_name(m.err.cls), m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_delete\",\"model_id\":\"nope\"}", 15000) &&
              m.rc == MG_ERROR && m.err.cls == MG_ERR_NO_ROUTE &&
              strcmp(m.err.msg, "Model with id=nope not found") == 0,
          "delete unknown: %s %s", mg_err_class_name(m.err.cls), m.err.msg);
    CHECK(t_mutate(a, &m,
                   "{\"op\":\"model_update\",\"model_id\":\"m1\",\"clear\":[\"model_name\"]}",
                   15000) && m.rc == MG_ERROR && m.err.cls == MG_ERR_BAD_REQUEST,
          "bad clear: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"frobnicate\"}", 15000) && m.rc == MG_ERROR &&
              m.err.cls == MG_ERR_BAD_REQUEST,
          "unknown op: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"m9\"}", 15000) &&
              m.rc == MG_ERROR && m.err.cls == MG_ERR_BAD_REQUEST,
          "model_new without fields: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"policy_delete\",\"name\":\"nope\"}", 15000) &&
              m.rc == MG_ERROR && m.err.cls == MG_ERR_NO_ROUTE,
          "policy_delete unknown: %s", m.err.msg);
    {
        /* jsonb refuses \u0000: the database rejects the input (SQLSTATE class 22) */
        json_t *nul = json_pack("{s:s, s:s, s:{s:o}}", "op", "model_update", "model_id", "m1",
                                "model_info", "x", json_stringn("nul\0here", 8));
        t_res_reset(&m);
        a->ops->mutate(a, nul, t_mutate_cb, &m);
        json_decref(nul);
        CHECK(WAIT_FOR(m.calls > 0, 15000) && m.rc == MG_ERROR &&
                  m.err.cls == MG_ERR_BAD_REQUEST && strstr(m.err.msg, "SQLSTATE 22") != NULL,
              "jsonb-invalid input: %s %s", mg_err_class_name(m.err.cls), m.err.msg);
    }
    CHECK(t_version(a) == v3, "version moved on a failed mutation");

    t_section("order, delete, policies, bump");
    CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"m2\",\"model_name\":\"b\","
                          "\"litellm_params\":{\"model\":\"b\"}}", 15000) && m.rc == MG_OK,
          "m2: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"m0\",\"model_name\":\"c\","
                          "\"litellm_params\":{\"model\":\"c\"}}", 15000) && m.rc == MG_OK,
          "m0: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_delete\",\"model_id\":\"m2\"}", 15000) &&
              m.rc == MG_OK && m.version == v3 + 3 && m.a == NULL,
          "delete m2: %s version %" PRId64, m.err.msg, m.version);
    CHECK(t_mutate(a, &m, "{\"op\":\"policy_update\",\"name\":\"least_busy\",\"kind\":\"routing\","
                          "\"source\":\"return {}\",\"hash\":\"h1\"}", 15000) &&
              m.rc == MG_OK && m.version == v3 + 4 &&
              strcmp(json_string_value(json_object_get(m.a, "hash")), "h1") == 0,
          "policy_update: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"policy_update\",\"name\":\"least_busy\",\"kind\":\"routing\","
                          "\"source\":\"return {1}\",\"hash\":\"h2\"}", 15000) &&
              m.rc == MG_OK && m.version == v3 + 5,
          "policy_update again: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"policy_update\",\"name\":\"p2\",\"kind\":\"fallback\","
                          "\"source\":\"s\",\"hash\":\"h\"}", 15000) && m.rc == MG_OK,
          "policy p2: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"policy_delete\",\"name\":\"p2\"}", 15000) && m.rc == MG_OK &&
              m.version == v3 + 7,
          "policy_delete: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"bump\",\"reason\":\"config_reload\",\"detail\":{\"n\":1}}",
                   15000) && m.rc == MG_OK && m.version == v3 + 8,
          "bump: %s", m.err.msg);
    int64_t v4 = m.version;
    CHECK(t_load(a, &r, 15000) && r.rc == MG_OK && r.version == v4, "load: %s", r.err.msg);
    CHECK(json_array_size(r.a) == 2 && strcmp(t_model_id(r.a, 0), "m1") == 0 &&
              strcmp(t_model_id(r.a, 1), "m0") == 0,
          "models not in creation order");
    json_t *pol = json_object_get(r.b, "least_busy");
    CHECK(json_object_size(r.b) == 1 && pol != NULL &&
              strcmp(json_string_value(json_object_get(pol, "source")), "return {1}") == 0 &&
              strcmp(json_string_value(json_object_get(pol, "kind")), "routing") == 0,
          "policies after update/delete");
    snprintf(buf, sizeof(buf), "SELECT count(*) || ' ' || min(version) || ' ' || max(version) "
             "FROM moongate_events");
    v = t_sql(admin, buf);
    snprintf(buf, sizeof(buf), "%" PRId64 " 1 %" PRId64, v4, v4);
    CHECK(v != NULL && strcmp(v, buf) == 0, "one event per version: %s (want %s)", v ? v : "-",
          buf);
    CHECK(WAIT_FOR(w.max_hint == v4, 10000), "hints stopped at %" PRId64, w.max_hint);

    /* an unreadable row must not take the others down: the load succeeds and marks it
     * (the registry skips it with a loud warning) */
    t_section("a wrong secret marks each unreadable row; the load still succeeds");
    for (int pass = 0; pass < 2; pass++) {
        mg_store_t *c = t_store(t_url, pass == 0 ? "not-the-salt-key" : NULL);
        CHECK(t_load(c, &r, 15000), "no callback");
        CHECK(r.rc == MG_OK && json_is_array(r.a), "%s: load rc %d %s",
              pass == 0 ? "wrong secret" : "no secret", r.rc, r.err.msg);
        size_t bad = 0, ri;
        json_t *rrow;
        json_array_foreach(r.a, ri, rrow) {
            const char *le = json_string_value(json_object_get(rrow, "__load_error"));
            if (le != NULL) {
                bad++;
                CHECK(strstr(le, "LITELLM_SALT_KEY") != NULL &&
                          json_is_null(json_object_get(rrow, "litellm_params")),
                      "row %s: %s", json_string_value(json_object_get(rrow, "model_id")), le);
            }
        }
        CHECK(bad > 0, "%s: no row was marked unreadable", pass == 0 ? "wrong secret" : "no secret");
        c->ops->destroy(c);
    }
    mg_store_t *c = NULL;

    t_section("host name resolved asynchronously (localhost via evdns)");
    snprintf(buf, sizeof(buf), "postgresql://postgres:%s@localhost:%d/%s", TEST_PASSWORD, t_port,
             t_db);
    {
        /* /etc/hosts answers (synchronously, inside evdns): no DNS traffic leaves the host */
        mg_store_conf_t conf = {.base = t_base, .database_url = buf, .secret = TEST_SECRET};
        mg_err_t err;
        mg_err_clear(&err);
        c = mg_store_pg_create(&conf, &err);
        CHECK(c != NULL, "create: %s", err.msg);
        if (c != NULL) {
            CHECK(t_impl(c)->dns != NULL, "the host name did not go through evdns");
            CHECK(t_load(c, &r, 15000) && r.rc == MG_OK && r.version == v4,
                  "load via localhost: %s", r.err.msg);
            c->ops->destroy(c);
        }
    }

    t_section("a query that exceeds its timeout fails, closes, and the store recovers");
    PGconn *locker = t_admin(t_db);
    t_sql(locker, "BEGIN");
    t_sql(locker, "LOCK TABLE moongate_models IN ACCESS EXCLUSIVE MODE");
    t_impl(a)->query_timeout_ms = 800;
    t_res_t r2 = {0};
    int64_t t0 = mg_time_mono_ms();
    t_res_reset(&r);
    a->ops->load(a, t_load_cb, &r);
    a->ops->get_version(a, t_version_cb, &r2);
    CHECK(WAIT_FOR(r.calls && r2.calls, 10000), "timed-out query never called back");
    CHECK(r.rc == MG_ERROR && r.err.cls == MG_ERR_NOT_READY && strstr(r.err.msg, "timed out"),
          "load: class %s msg %s", mg_err_class_name(r.err.cls), r.err.msg);
    CHECK(r2.rc == MG_ERROR && r2.err.cls == MG_ERR_NOT_READY, "queued get_version: %s",
          r2.err.msg);
    CHECK(r.at_ms - t0 < 5000, "timeout took %" PRId64 "ms", r.at_ms - t0);
    printf("   timed out after %" PRId64 "ms: %s\n", r.at_ms - t0, r.err.msg);
    t_sql(locker, "ROLLBACK");
    PQfinish(locker);
    t_impl(a)->query_timeout_ms = MG_PG_QUERY_TIMEOUT_MS;
    CHECK(WAIT_FOR(t_connected(a), 10000), "query connection did not come back");
    CHECK(t_load(a, &r, 15000) && r.rc == MG_OK && r.version == v4, "load after timeout: %s",
          r.err.msg);
    CHECK(t_impl(a)->reconnects >= 1, "reconnects %" PRId64, t_impl(a)->reconnects);

    int64_t until;
    t_section("the server kills the store's backend mid-query: not_ready, then recovery");
    locker = t_admin(t_db);
    t_sql(locker, "BEGIN");
    t_sql(locker, "LOCK TABLE moongate_models IN ACCESS EXCLUSIVE MODE");
    int pid = PQbackendPID(t_impl(a)->q.pg);
    t_res_reset(&r);
    a->ops->load(a, t_load_cb, &r);
    snprintf(buf, sizeof(buf), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND "
             "wait_event_type = 'Lock'", pid);
    CHECK(WAIT_FOR((v = t_sql(admin, buf)) != NULL && strcmp(v, "1") == 0, 5000) && r.calls == 0,
          "the load never blocked on the lock");
    snprintf(buf, sizeof(buf), "SELECT pg_terminate_backend(%d)", pid);
    v = t_sql(admin, buf);
    CHECK(v != NULL && strcmp(v, "t") == 0, "pg_terminate_backend: %s", v ? v : "(error)");
    t0 = mg_time_mono_ms();
    CHECK(WAIT_FOR(r.calls > 0, 5000), "load never called back after its backend died");
    CHECK(r.rc == MG_ERROR && r.err.cls == MG_ERR_NOT_READY &&
              strstr(r.err.msg, "during load") != NULL,
          "class %s: %s", mg_err_class_name(r.err.cls), r.err.msg);
    t_sql(locker, "ROLLBACK");
    PQfinish(locker);
    CHECK(WAIT_FOR(t_connected(a), 10000), "query connection did not come back");
    CHECK(t_load(a, &r, 15000) && r.rc == MG_OK && r.version == v4, "load after kill: %s",
          r.err.msg);

    t_section("destroy with operations pending calls nothing back");
    c = t_store(t_url, TEST_SECRET);
    t_res_t d1 = {0}, d2 = {0};
    c->ops->load(c, t_load_cb, &d1);
    json_t *bm = json_pack("{s:s}", "op", "bump");
    c->ops->mutate(c, bm, t_mutate_cb, &d2);
    json_decref(bm);
    c->ops->destroy(c);
    until = mg_time_mono_ms() + 300;
    WAIT_FOR(mg_time_mono_ms() >= until, 1000);
    CHECK(d1.calls == 0 && d2.calls == 0, "callbacks after destroy: %d %d", d1.calls, d2.calls);

    t_section("destroy from inside a callback");
    c = t_store(t_url, TEST_SECRET);
    d1.destroy_me = c;
    c->ops->load(c, t_load_cb, &d1);
    c->ops->get_version(c, t_version_cb, &d2);
    CHECK(WAIT_FOR(d1.calls == 1, 15000) && d1.rc == MG_OK, "first callback: %s", d1.err.msg);
    until = mg_time_mono_ms() + 300;
    WAIT_FOR(mg_time_mono_ms() >= until, 1000);
    CHECK(d2.calls == 0 && d1.calls == 1, "callbacks after destroy in callback: %d", d2.calls);
    t_res_reset(&d1);
    t_res_reset(&d2);

    if (t_datadir[0] == '\0') {
        printf("-- SKIP outage checks: no data directory to stop/start the server "
               "(set MG_TEST_PG_DATA)\n");
    } else {
        t_section("database stopped: operations fail promptly with not_ready");
        int before = w.reconnects;
        CHECK(t_pg_stop("fast") == 0, "pg_ctl stop failed");
        t0 = mg_time_mono_ms();
        CHECK(t_load(a, &r, 8000), "load hung with the database down");
        CHECK(r.rc == MG_ERROR && r.err.cls == MG_ERR_NOT_READY && r.a == NULL,
              "load: rc %d class %s", r.rc, mg_err_class_name(r.err.cls));
        printf("   failed after %" PRId64 "ms: %s\n", r.at_ms - t0, r.err.msg);
        CHECK(r.at_ms - t0 < 3000, "took %" PRId64 "ms", r.at_ms - t0);
        t0 = mg_time_mono_ms();
        CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"m5\",\"model_name\":\"x\","
                              "\"litellm_params\":{\"api_key\":\"k\"}}", 8000),
              "mutation hung with the database down");
        CHECK(m.rc == MG_ERROR && m.err.cls == MG_ERR_NOT_READY && m.at_ms - t0 < 1000 &&
                  strstr(m.err.msg, "database unavailable") != NULL,
              "mutation: class %s after %" PRId64 "ms: %s", mg_err_class_name(m.err.cls),
              m.at_ms - t0, m.err.msg);
        CHECK(strstr(m.err.msg, TEST_PASSWORD) == NULL && strstr(r.err.msg, TEST_PASSWORD) == NULL,
              "password in an error");
        t_res_t gv = {0};
        t0 = mg_time_mono_ms();
        a->ops->get_version(a, t_version_cb, &gv);
        CHECK(WAIT_FOR(gv.calls > 0, 3000) && gv.rc == MG_ERROR && gv.err.cls == MG_ERR_NOT_READY,
              "get_version while down: %s", gv.err.msg);
        CHECK(WAIT_FOR(t_impl(b)->l.state != MG_PG_READY, 5000), "listen connection still up");

        /* stay down a while: reconnect attempts fail (with backoff), ops keep failing fast */
        int slow = 0, ok = 0, probes = 0;
        int64_t down_until = mg_time_mono_ms() + 1500;
        while (mg_time_mono_ms() < down_until) {
            t_res_t p = {0};
            int64_t p0 = mg_time_mono_ms();
            a->ops->get_version(a, t_version_cb, &p);
            if (!WAIT_FOR(p.calls > 0, 3000) || p.at_ms - p0 > 500) {
                slow++;
            }
            ok += p.rc == MG_OK;
            probes++;
            int64_t next = mg_time_mono_ms() + 100;
            WAIT_FOR(mg_time_mono_ms() >= next, 200);
        }
        CHECK(probes > 5 && slow == 0 && ok == 0, "%d of %d probes slow, %d succeeded", slow,
              probes, ok);
        CHECK(t_impl(a)->q.failures >= 2, "only %d reconnect attempts while down",
              t_impl(a)->q.failures);
        s = t_status(a);
        CHECK(json_is_false(json_object_get(s, "connected")) &&
                  json_is_string(json_object_get(s, "last_error")),
              "status while down");
        json_decref(s);

        t_section("database restarted: reconnect and on_reconnect");
        CHECK(t_pg_start() == 0, "pg_ctl start failed");
        CHECK(WAIT_FOR(w.reconnects > before, 20000), "no on_reconnect after the restart");
        CHECK(WAIT_FOR(t_connected(a), 10000), "query connection did not reconnect");
        CHECK(t_load(a, &r, 15000) && r.rc == MG_OK && r.version == v4, "load after restart: %s",
              r.err.msg);
        CHECK(t_mutate(a, &m, "{\"op\":\"bump\",\"reason\":\"after_restart\"}", 15000) &&
                  m.rc == MG_OK && m.version == v4 + 1,
              "bump after restart: %s", m.err.msg);
        CHECK(WAIT_FOR(w.max_hint == v4 + 1, 10000), "no hint after the restart");
        s = t_status(b);
        CHECK(json_is_true(json_object_get(s, "listening")) &&
                  json_integer_value(json_object_get(s, "reconnects")) >= 2,
              "status after restart");
        json_decref(s);
    }

    PQfinish(admin);
    a->ops->destroy(a);
    b->ops->destroy(b);
    t_res_reset(&r);
    t_res_reset(&m);
}

/* ---- LiteLLM's tables ---- */

#define T_FIXTURE MG_SOURCE_DIR "/tests/fixtures/litellm/schema.sql"
#define T_ENCRYPT MG_SOURCE_DIR "/tests/fixtures/litellm/encrypt.py"
#define T_SALT    "litellm-salt-key-for-tests"
/* sha256("sk-litellm-key-1"): the token column LiteLLM writes for that key */
#define T_KEY1 "sk-litellm-key-1"

static const char *const t_ltables[] = {
    "LiteLLM_VerificationToken", "LiteLLM_TeamTable", "LiteLLM_UserTable",
    "LiteLLM_EndUserTable", "LiteLLM_BudgetTable", "LiteLLM_OrganizationTable",
    "LiteLLM_ProxyModelTable", NULL};

/* Every value of every row of sql, one per line; malloc'd, NULL on error. */
static char *
t_sql_all(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        printf("admin sql failed: %.200s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    for (int i = 0; i < PQntuples(r); i++) {
        for (int j = 0; j < PQnfields(r); j++) {
            mg_buf_printf(&b, "%s%s", j > 0 ? " | " : "", PQgetvalue(r, i, j));
        }
        mg_buf_append_str(&b, "\n");
    }
    PQclear(r);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

static bool
t_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        printf("admin sql failed: %.300s: %s", sql, PQerrorMessage(c));
    }
    PQclear(r);
    return ok;
}

static char *
t_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        printf("cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        mg_buf_append(&b, buf, n);
    }
    fclose(f);
    char *s = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return s;
}

/* Creates database db and returns an admin connection to it. */
static PGconn *
t_new_db(const char *db)
{
    PGconn *a = t_admin("postgres");
    char sql[160];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    bool ok = t_exec(a, sql);
    PQfinish(a);
    return ok ? t_admin(db) : NULL;
}

/*
 * Everything about LiteLLM's tables a change could touch: per table its columns (type,
 * nullability, default), constraints, indexes and triggers, then every row.  The tables
 * moongate's own (moongate_*) are left out.
 */
static char *
t_litellm_state(PGconn *c, bool rows)
{
    mg_buf_t b = MG_BUF_INIT;
    char *s = t_sql_all(c,
        "SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
        "a.attnotnull, pg_get_expr(d.adbin, d.adrelid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
        "WHERE c.relname LIKE 'LiteLLM%' AND c.relkind = 'r' ORDER BY 1, 2");
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    s = t_sql_all(c, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                     "FROM pg_constraint WHERE conrelid::regclass::text LIKE '\"LiteLLM%' "
                     "ORDER BY 1, 2");
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    s = t_sql_all(c, "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename "
                     "LIKE 'LiteLLM%' ORDER BY 1, 2");
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    s = t_sql_all(c, "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE "
                     "tgrelid::regclass::text LIKE '\"LiteLLM%' ORDER BY 1, 2");
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    char *tabs = rows ? t_sql_all(c, "SELECT relname FROM pg_class WHERE relname LIKE "
                                     "'LiteLLM%' AND relkind = 'r' ORDER BY 1") : NULL;
    for (char *line = tabs; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        char sql[300];
        snprintf(sql, sizeof(sql), "SELECT row_to_json(t)::text FROM \"%s\" t ORDER BY 1", line);
        s = t_sql_all(c, sql);
        mg_buf_printf(&b, "rows of %s:\n%s", line, s != NULL ? s : "(error)\n");
        free(s);
        line = nl + 1;
    }
    free(tabs);
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

/* The definition of one of our seven tables, as far as moongate creates it. */
static char *
t_table_def(PGconn *c, const char *table)
{
    char sql[1600];
    mg_buf_t b = MG_BUF_INIT;
    snprintf(sql, sizeof(sql),
             "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
             "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d ON "
             "d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = '\"%s\"'::regclass "
             "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", table);
    char *s = t_sql_all(c, sql);
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    /* primary and unique keys, and foreign keys between the seven tables */
    snprintf(sql, sizeof(sql),
             "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
             "'\"%s\"'::regclass AND (contype IN ('p', 'u') OR (contype = 'f' AND "
             "confrelid::regclass::text IN ('\"LiteLLM_VerificationToken\"', "
             "'\"LiteLLM_TeamTable\"', '\"LiteLLM_UserTable\"', '\"LiteLLM_EndUserTable\"', "
             "'\"LiteLLM_BudgetTable\"', '\"LiteLLM_OrganizationTable\"', "
             "'\"LiteLLM_ProxyModelTable\"'))) ORDER BY 1", table);
    s = t_sql_all(c, sql);
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    snprintf(sql, sizeof(sql), "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = "
             "'%s' ORDER BY 1", table);
    s = t_sql_all(c, sql);
    mg_buf_append_str(&b, s != NULL ? s : "(error)\n");
    free(s);
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

/* litellm_params encrypted by tests/fixtures/litellm/encrypt.py (PyNaCl / cryptography). */
static char *
t_encrypt(const char *algo, const char *salt, const char *params_json)
{
    char in[300], cmd[900];
    snprintf(in, sizeof(in), "%s/params.json", t_dir);
    FILE *f = fopen(in, "w");
    if (f == NULL) {
        return NULL;
    }
    fputs(params_json, f);
    fclose(f);
    const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    snprintf(cmd, sizeof(cmd), "%s %s %s '%s' < %s", py, T_ENCRYPT, algo, salt, in);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        return NULL;
    }
    mg_buf_t b = MG_BUF_INIT;
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
        mg_buf_append(&b, buf, n);
    }
    int st = pclose(p);
    char *r = st == 0 && mg_buf_len(&b) > 0 ? mg_xstrdup(mg_buf_cstr(&b)) : NULL;
    mg_buf_free(&b);
    if (r == NULL) {
        printf("%s failed (exit %d): is python3-nacl / python3-cryptography installed?\n", cmd, st);
    }
    return r;
}

/* Inserts a LiteLLM_ProxyModelTable row as LiteLLM writes it (params already encrypted). */
static bool
t_insert_lmodel(PGconn *c, const char *id, const char *name, const char *params, bool as_string,
                bool blocked)
{
    const char *vals[5] = {id, name, params, as_string ? "1" : "0", blocked ? "t" : "f"};
    /* Prisma's client may hand the engine a JSON string for a Json field: a jsonb string */
    PGresult *r = PQexecParams(c,
        "INSERT INTO \"LiteLLM_ProxyModelTable\" (model_id, model_name, litellm_params, "
        "model_info, blocked, created_by, updated_by, updated_at) VALUES ($1, $2, "
        "CASE WHEN $4 = '1' THEN to_jsonb($3::text) ELSE $3::jsonb END, "
        "jsonb_build_object('id', $1::text, 'db_model', true), $5::boolean, "
        "'default_user_id', 'default_user_id', CURRENT_TIMESTAMP)",
        5, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        printf("inserting model %s failed: %s", id, PQerrorMessage(c));
    }
    PQclear(r);
    return ok;
}

static json_t *
t_find_model(json_t *models, const char *id)
{
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "model_id")) ?: "", id) == 0) {
            return m;
        }
    }
    return NULL;
}

static json_t *
t_ident(json_t *idents, const char *table, const char *id)
{
    return json_object_get(json_object_get(idents, table), id);
}

/* A load that also keeps the idents. */
typedef struct {
    t_res_t r;
    json_t *idents;
} t_lres_t;

static void
t_lload_cb(void *ud, int rc, int64_t version, json_t *models, json_t *policies, json_t *idents,
           const mg_err_t *err)
{
    t_lres_t *l = ud;
    json_decref(l->idents);
    l->idents = json_incref(idents);
    t_load_cb(&l->r, rc, version, models, policies, idents, err);
}

static bool
t_lload(mg_store_t *st, t_lres_t *l)
{
    t_res_reset(&l->r);
    json_decref(l->idents);
    l->idents = NULL;
    st->ops->load(st, t_lload_cb, l);
    return WAIT_FOR(l->r.calls > 0, 15000) && l->r.rc == MG_OK;
}

static const char *
t_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "(none)";
}

static void
t_litellm_crypto(void)
{
    t_section("LiteLLM's encryption of litellm_params (PyNaCl / cryptography as the writer)");
    static const char plain[] =
        "{\"model\":\"openai/gpt-4o\",\"api_key\":\"sk-upstream-A\",\"api_base\":\"http://x\","
        "\"rpm\":7,\"tags\":[\"a\"]}";
    static const char *const algos[] = {"nacl", "v2", "v3"};
    mg_store_pgl_crypto_t k, wrong, none;
    mg_store_pgl_crypto_init(&k, T_SALT);
    mg_store_pgl_crypto_init(&wrong, "not-the-salt");
    mg_store_pgl_crypto_init(&none, NULL);
    for (int a = 0; a < 3; a++) {
        char *enc = t_encrypt(algos[a], T_SALT, plain);
        CHECK(enc != NULL, "%s: encrypt.py failed", algos[a]);
        if (enc == NULL) {
            continue;
        }
        json_t *e = json_loads(enc, 0, NULL);
        CHECK(e != NULL && strstr(enc, "sk-upstream-A") == NULL, "%s: not encrypted: %s",
              algos[a], enc);
        mg_err_t err;
        mg_err_clear(&err);
        json_t *d = mg_store_pgl_decrypt_params(&k, e, &err);
        json_t *want = json_loads(plain, 0, NULL);
        CHECK(d != NULL && json_equal(d, want), "%s: decrypted %s (%s)", algos[a],
              d ? json_dumps(d, JSON_COMPACT) : "NULL", err.msg);
        json_decref(d);
        mg_err_clear(&err);
        d = mg_store_pgl_decrypt_params(&wrong, e, &err);
        CHECK(d == NULL && strstr(err.msg, "LITELLM_SALT_KEY") != NULL &&
                  strstr(err.msg, "litellm_params.") != NULL && strstr(err.msg, T_SALT) == NULL,
              "%s with the wrong key: %s", algos[a], err.msg);
        json_decref(d);
        mg_err_clear(&err);
        d = mg_store_pgl_decrypt_params(&none, e, &err);
        CHECK(d == NULL && strstr(err.msg, "no LITELLM_SALT_KEY or master key") != NULL,
              "%s without a key: %s", algos[a], err.msg);
        json_decref(d);
        json_decref(want);
        json_decref(e);
        free(enc);
    }
    /* values LiteLLM leaves plain, and plain values that merely look like base64: a padded
     * one that decodes to 40+ bytes (not "model": passes, as in LiteLLM), and a long "model"
     * in the base64 alphabet without padding (LiteLLM's decoder refuses it: plain) */
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:i}", "model",
                          "azure/my-very-long-deployment-name-for-production-use-2024", "api_key",
                          "c2stcHJvai1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
                          "api_base", "", "region", "eu", "rpm", 3);
    mg_err_t err;
    mg_err_clear(&err);
    json_t *d = mg_store_pgl_decrypt_params(&k, p, &err);
    CHECK(d != NULL && json_equal(d, p), "plain values do not pass as they are: %s", err.msg);
    json_decref(d);
    json_decref(p);
}

static void
t_litellm(void)
{
    char buf[8192];
    t_res_t m = {0};
    t_lres_t l = {{0}, NULL};

    t_litellm_crypto();

    /* ---- 1. moongate creates LiteLLM's tables as Prisma does ---- */
    t_section("a fresh database: LiteLLM's tables as LiteLLM's own migration makes them");
    char fdb[64];
    snprintf(fdb, sizeof(fdb), "%s_litellm", t_db);
    PGconn *fx = t_new_db(fdb);
    char *ddl = t_read_file(T_FIXTURE);
    CHECK(fx != NULL && ddl != NULL && t_exec(fx, ddl), "loading %s failed", T_FIXTURE);
    free(ddl);
    PGconn *ours = t_admin(t_db); /* t_everything's stores created everything there */
    for (int i = 0; t_ltables[i] != NULL; i++) {
        char *a = t_table_def(ours, t_ltables[i]);
        char *b = t_table_def(fx, t_ltables[i]);
        CHECK(strcmp(a, b) == 0, "%s differs from LiteLLM's:\n--- moongate\n%s--- LiteLLM\n%s",
              t_ltables[i], a, b);
        free(a);
        free(b);
    }

    /* ---- 2. a database LiteLLM made, with rows as LiteLLM writes them ---- */
    t_section("a LiteLLM database: rows as LiteLLM writes them (an older schema without "
              "budget_limits)");
    char tok1[65], tok2[65];
    mg_sha256_hex(T_KEY1, strlen(T_KEY1), tok1);
    mg_sha256_hex("sk-litellm-key-2", 16, tok2);
    snprintf(buf, sizeof(buf),
        /* an older LiteLLM: a column current LiteLLM has is missing */
        "ALTER TABLE \"LiteLLM_VerificationToken\" DROP COLUMN \"budget_limits\";\n"
        "INSERT INTO \"LiteLLM_BudgetTable\" (budget_id, max_budget, rpm_limit, created_by, "
        "updated_by, updated_at) VALUES ('b-org', 100, 50, 'admin', 'admin', CURRENT_TIMESTAMP),"
        " ('b-free', 1.5, NULL, 'admin', 'admin', CURRENT_TIMESTAMP);\n"
        "INSERT INTO \"LiteLLM_OrganizationTable\" (organization_id, organization_alias, "
        "budget_id, models, created_by, updated_by, updated_at) VALUES ('org-1', 'Org One', "
        "'b-org', ARRAY['gpt-4o'], 'admin', 'admin', CURRENT_TIMESTAMP);\n"
        "INSERT INTO \"LiteLLM_TeamTable\" (team_id, team_alias, organization_id, admins, members,"
        " members_with_roles, models, tpm_limit, updated_at) VALUES ('team-1', 'Team One', "
        "'org-1', ARRAY['u-1'], ARRAY['u-1'], '[{\"role\": \"admin\", \"user_id\": \"u-1\"}]', "
        "ARRAY['gpt-4o', 'lt-nacl'], 1000, CURRENT_TIMESTAMP);\n"
        "INSERT INTO \"LiteLLM_UserTable\" (user_id, user_email, user_role, teams, models, "
        "organization_id, password) VALUES ('u-1', 'u1@example.com', 'internal_user', "
        "ARRAY['team-1'], ARRAY[]::text[], 'org-1', 'hashed-password-value');\n"
        "INSERT INTO \"LiteLLM_VerificationToken\" (token, key_name, key_alias, spend, expires, "
        "models, user_id, team_id, metadata, max_budget, tpm_limit, rpm_limit, created_by, "
        "updated_by, budget_id) VALUES ('%s', 'sk-...ey-1', 'alias-1', 0.25, "
        "'2031-05-06 07:08:09.123', ARRAY['lt-nacl'], 'u-1', 'team-1', '{\"tags\": [\"t1\"]}', "
        "10, 100000, 60, 'u-1', 'u-1', 'b-free'), ('%s', 'sk-...ey-2', NULL, 0, NULL, "
        "ARRAY[]::text[], 'u-1', NULL, '{}', NULL, NULL, NULL, 'u-1', 'u-1', NULL);\n"
        "INSERT INTO \"LiteLLM_EndUserTable\" (user_id, alias, budget_id) VALUES "
        "('cust-1', 'Customer', 'b-free');\n"
        "INSERT INTO \"LiteLLM_JWTKeyMapping\" (id, jwt_claim_name, jwt_claim_value, token, "
        "updated_at) VALUES ('jm-1', 'sub', 'alice', '%s', CURRENT_TIMESTAMP);\n"
        "INSERT INTO \"LiteLLM_OrganizationMembership\" (user_id, organization_id, user_role) "
        "VALUES ('u-1', 'org-1', 'org_admin');\n"
        "INSERT INTO \"LiteLLM_InvitationLink\" (id, user_id, expires_at, created_at, created_by,"
        " updated_at, updated_by) VALUES ('inv-1', 'u-1', '2030-01-01', '2024-01-01', 'u-1', "
        "'2024-01-01', 'u-1');\n",
        tok1, tok2, tok1);
    CHECK(t_exec(fx, buf), "inserting LiteLLM's rows failed");
    static const char lp[] = "{\"model\":\"openai/lt-upstream\",\"api_key\":\"sk-upstream-nacl\","
                             "\"api_base\":\"http://127.0.0.1:9/v1\",\"rpm\":11}";
    char *e_nacl = t_encrypt("nacl", T_SALT, lp);
    char *e_v3 = t_encrypt("v3", T_SALT, lp);
    char *e_v2 = t_encrypt("v2", T_SALT, lp);
    char *e_wrong = t_encrypt("nacl", "some-other-salt", lp);
    CHECK(e_nacl && e_v3 && e_v2 && e_wrong, "encrypt.py failed");
    if (e_nacl && e_v3 && e_v2 && e_wrong) {
        CHECK(t_insert_lmodel(fx, "lt-nacl", "lt-nacl", e_nacl, false, false) &&
                  t_insert_lmodel(fx, "lt-v3", "lt-v3", e_v3, false, false) &&
                  t_insert_lmodel(fx, "lt-v2-str", "lt-v2", e_v2, true, false) &&
                  t_insert_lmodel(fx, "lt-wrong", "lt-wrong", e_wrong, false, false) &&
                  t_insert_lmodel(fx, "lt-plain", "lt-plain", lp, false, false) &&
                  t_insert_lmodel(fx, "lt-blocked", "lt-blocked", e_nacl, false, true),
              "inserting LiteLLM_ProxyModelTable rows failed");
    }
    free(e_nacl);
    free(e_v3);
    free(e_v2);
    free(e_wrong);
    char *before = t_litellm_state(fx, true);

    char furl[512];
    snprintf(furl, sizeof(furl), "postgresql://postgres:%s@127.0.0.1:%d/%s", TEST_PASSWORD,
             t_port, fdb);
    mg_store_t *a = t_store(furl, T_SALT);
    mg_store_t *w = t_store(furl, T_SALT);
    t_watch_t wt = {0};
    w->ops->watch(w, t_hint_cb, t_reconnect_cb, &wt);
    CHECK(t_lload(a, &l), "load of the LiteLLM database: %s", l.r.err.msg);
    int64_t v0 = l.r.version;

    t_section("nothing in LiteLLM's tables changed by connecting and loading");
    char *after = t_litellm_state(fx, true);
    CHECK(strcmp(before, after) == 0, "LiteLLM's tables changed:\n--- before\n%.3000s\n--- after\n"
          "%.3000s", before, after);
    free(after);
    free(before);

    t_section("load: LiteLLM's rows as idents and models");
    json_t *k1 = t_ident(l.idents, "key", tok1);
    CHECK(json_object_size(json_object_get(l.idents, "key")) == 2 && k1 != NULL,
          "keys: %s", json_dumps(json_object_get(l.idents, "key"), JSON_COMPACT));
    CHECK(strcmp(t_str(k1, "token"), tok1) == 0 && strcmp(t_str(k1, "key_alias"), "alias-1") == 0 &&
              strcmp(t_str(k1, "expires"), "2031-05-06T07:08:09.123+00:00") == 0 &&
              json_real_value(json_object_get(k1, "spend")) == 0.25 &&
              json_integer_value(json_object_get(k1, "tpm_limit")) == 100000 &&
              json_array_size(json_object_get(k1, "models")) == 1 &&
              json_is_array(json_object_get(json_object_get(k1, "metadata"), "tags")) &&
              json_is_object(json_object_get(k1, "aliases")) &&
              json_object_get(k1, "budget_limits") == NULL &&
              json_object_get(k1, "created_at") != NULL,
          "key row: %s", json_dumps(k1, JSON_COMPACT));
    const char *cat = t_str(k1, "created_at");
    CHECK(strlen(cat) > 6 && strcmp(cat + strlen(cat) - 6, "+00:00") == 0, "created_at %s", cat);
    json_t *tm = t_ident(l.idents, "team", "team-1");
    CHECK(tm != NULL && json_is_array(json_object_get(tm, "members_with_roles")) &&
              json_is_false(json_object_get(tm, "blocked")) &&
              strcmp(t_str(tm, "organization_id"), "org-1") == 0,
          "team row: %s", json_dumps(tm, JSON_COMPACT));
    CHECK(t_ident(l.idents, "user", "u-1") != NULL && t_ident(l.idents, "end_user", "cust-1") &&
              t_ident(l.idents, "budget", "b-org") && t_ident(l.idents, "budget", "b-free") &&
              t_ident(l.idents, "org", "org-1"),
          "user / end_user / budget / org rows missing");
    json_t *mn = t_find_model(l.r.a, "lt-nacl"), *m3 = t_find_model(l.r.a, "lt-v3");
    json_t *m2 = t_find_model(l.r.a, "lt-v2-str"), *mw = t_find_model(l.r.a, "lt-wrong");
    json_t *mp = t_find_model(l.r.a, "lt-plain");
    CHECK(mn && strcmp(t_param(mn, "api_key") ?: "", "sk-upstream-nacl") == 0 &&
              strcmp(t_param(mn, "model") ?: "", "openai/lt-upstream") == 0 &&
              t_param_int(mn, "rpm") == 11 && strcmp(t_str(mn, "model_name"), "lt-nacl") == 0,
          "SecretBox row: %s", mn ? json_dumps(mn, JSON_COMPACT) : "missing");
    CHECK(m3 && strcmp(t_param(m3, "api_key") ?: "", "sk-upstream-nacl") == 0,
          "v3:gcm row: %s", m3 ? json_dumps(m3, JSON_COMPACT) : "missing");
    CHECK(m2 && strcmp(t_param(m2, "api_key") ?: "", "sk-upstream-nacl") == 0,
          "v2:gcm row stored as a JSON string: %s", m2 ? json_dumps(m2, JSON_COMPACT) : "missing");
    CHECK(mp && strcmp(t_param(mp, "api_key") ?: "", "sk-upstream-nacl") == 0,
          "plain row: %s", mp ? json_dumps(mp, JSON_COMPACT) : "missing");
    CHECK(mw && json_is_null(json_object_get(mw, "litellm_params")) &&
              strstr(t_str(mw, "__load_error"), "LITELLM_SALT_KEY") != NULL,
          "row under another salt key: %s", mw ? json_dumps(mw, JSON_COMPACT) : "missing");
    CHECK(t_find_model(l.r.a, "lt-blocked") == NULL, "a blocked row is served");
    CHECK(json_is_object(json_object_get(mn, "model_info")) &&
              strlen(t_str(mn, "updated_at")) > 6,
          "model row fields: %s", mn ? json_dumps(mn, JSON_COMPACT) : "-");

    /* ---- 3. identity mutations ---- */
    t_section("ident_put: a new key, timestamps with an offset stored as UTC, version bumped");
    char tok3[65];
    mg_sha256_hex("sk-moongate-key-3", 17, tok3);
    snprintf(buf, sizeof(buf), "{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\","
             "\"create\":true,\"row\":{\"key_alias\":\"mg-3\",\"models\":[\"lt-nacl\",\"gpt-4o\"],"
             "\"metadata\":{\"tags\":[\"x\"],\"n\":1},\"expires\":\"2032-01-02T05:30:00+05:30\","
             "\"tpm_limit\":500,\"max_budget\":2.5,\"blocked\":false,\"team_id\":\"team-1\","
             "\"user_id\":\"u-1\",\"budget_id\":\"b-free\",\"spend\":0,"
             "\"created_at\":\"2020-01-01T00:00:00Z\"}}", tok3);
    CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == v0 + 1,
          "put: rc %d v %" PRId64 " %s", m.rc, m.version, m.err.msg);
    CHECK(m.a != NULL && strcmp(t_str(m.a, "expires"), "2032-01-02T00:00:00+00:00") == 0 &&
              strcmp(t_str(m.a, "created_at"), "2020-01-01T00:00:00+00:00") == 0 &&
              strcmp(t_str(m.a, "token"), tok3) == 0 &&
              json_integer_value(json_object_get(json_object_get(m.a, "metadata"), "n")) == 1 &&
              json_array_size(json_object_get(m.a, "models")) == 2 &&
              strcmp(t_str(m.a, "created_by"), "default_user_id") == 0 &&
              json_is_object(json_object_get(m.a, "permissions")),
          "put result: %s", m.a ? json_dumps(m.a, JSON_COMPACT) : "NULL");
    snprintf(buf, sizeof(buf), "SELECT expires::text || ' ' || array_to_string(models, ',') || ' '"
             " || (metadata->>'n') FROM \"LiteLLM_VerificationToken\" WHERE token = '%s'", tok3);
    const char *v = t_sql(fx, buf);
    CHECK(v != NULL && strcmp(v, "2032-01-02 00:00:00 lt-nacl,gpt-4o 1") == 0, "stored: %s",
          v ? v : "-");
    CHECK(WAIT_FOR(wt.max_hint == v0 + 1, 10000), "no hint for the ident_put (%" PRId64 ")",
          wt.max_hint);
    snprintf(buf, sizeof(buf), "SELECT op || ' ' || (detail->>'table') || ' ' || (detail->>'id') "
             "FROM moongate_events WHERE version = %" PRId64, v0 + 1);
    v = t_sql(fx, buf);
    snprintf(buf, sizeof(buf), "ident_put key %s", tok3);
    CHECK(v != NULL && strcmp(v, buf) == 0, "audit row: %s", v ? v : "-");

    t_section("ident_put refusals: existing id with create, unknown and missing columns, types");
    struct {
        const char *json;
        mg_err_class_t cls;
        const char *msg;
    } bad[] = {
        {"{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"create\":true,\"row\":{}}",
         MG_ERR_BAD_REQUEST, "already exists"},
        {"{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"row\":{\"tags\":[\"a\"]}}",
         MG_ERR_BAD_REQUEST, "LiteLLM_VerificationToken has no column \"tags\""},
        {"{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"row\":{\"budget_limits\":{}}}",
         MG_ERR_BAD_REQUEST, "no column \"budget_limits\""},
        {"{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"row\":{\"tpm_limit\":\"lots\"}}",
         MG_ERR_BAD_REQUEST, "SQLSTATE 22"},
        {"{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"row\":{\"token\":\"other\"}}",
         MG_ERR_BAD_REQUEST, "cannot be changed"},
        {"{\"op\":\"ident_put\",\"table\":\"keys\",\"id\":\"%s\",\"row\":{}}", MG_ERR_BAD_REQUEST,
         "unknown identity table"},
        {"{\"op\":\"ident_patch\",\"table\":\"key\",\"id\":\"%s-nope\",\"set\":{\"blocked\":true}}",
         MG_ERR_NO_ROUTE, "not found"},
        {"{\"op\":\"ident_patch\",\"table\":\"key\",\"id\":\"%s\",\"clear\":[\"nope\"]}",
         MG_ERR_BAD_REQUEST, "no column \"nope\""},
        {"{\"op\":\"ident_delete\",\"table\":\"key\",\"ids\":[\"%s\",\"nope-1\",\"nope-2\"]}",
         MG_ERR_NO_ROUTE, "key nope-1 not found"},
        {"{\"op\":\"ident_delete\",\"table\":\"key\",\"ids\":[]}%.0s", MG_ERR_BAD_REQUEST,
         "without ids"},
        /* a foreign key LiteLLM has: an organization's budget must exist */
        {"{\"op\":\"ident_put\",\"table\":\"org\",\"id\":\"org-2%.0s\",\"row\":{"
         "\"organization_alias\":\"x\",\"budget_id\":\"no-such-budget\"}}",
         MG_ERR_BAD_REQUEST, "is not present in table"},
        /* and a budget an organization uses cannot go (RESTRICT, between LiteLLM's own tables) */
        {"{\"op\":\"ident_delete\",\"table\":\"budget\",\"ids\":[\"b-org\"]}%.0s",
         MG_ERR_BAD_REQUEST, "still referenced"},
        /* NOT NULL without a default: the message names the column, not the row */
        {"{\"op\":\"ident_put\",\"table\":\"org\",\"id\":\"org-3%.0s\",\"row\":{"
         "\"budget_id\":\"b-org\"}}", MG_ERR_BAD_REQUEST, "\"organization_alias\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char j[1024];
        snprintf(j, sizeof(j), bad[i].json, tok3);
        CHECK(t_mutate(a, &m, j, 15000) && m.rc == MG_ERROR && m.err.cls == bad[i].cls &&
                  strstr(m.err.msg, bad[i].msg) != NULL,
              "%s: rc %d class %s: %s", j, m.rc, mg_err_class_name(m.err.cls), m.err.msg);
        CHECK(strstr(m.err.msg, "hashed-password") == NULL, "a row leaked into: %s", m.err.msg);
    }
    CHECK(t_version(a) == v0 + 1, "a refused mutation bumped the version");
    v = t_sql(fx, "SELECT count(*) FROM \"LiteLLM_VerificationToken\"");
    CHECK(v != NULL && strcmp(v, "3") == 0, "keys after refusals: %s", v ? v : "-");

    t_section("ident_patch: set, clear (back to the column default), updated_at");
    snprintf(buf, sizeof(buf), "{\"op\":\"ident_patch\",\"table\":\"key\",\"id\":\"%s\","
             "\"set\":{\"blocked\":true,\"models\":[],\"budget_reset_at\":\"2030-06-01T12:00:00Z\","
             "\"metadata\":{\"m\":2}},\"clear\":[\"metadata\",\"expires\",\"max_budget\"]}", tok1);
    CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == v0 + 2,
          "patch: %s", m.err.msg);
    CHECK(m.a && json_is_true(json_object_get(m.a, "blocked")) &&
              json_array_size(json_object_get(m.a, "models")) == 0 &&
              json_object_size(json_object_get(m.a, "metadata")) == 0 &&
              json_is_null(json_object_get(m.a, "expires")) &&
              json_is_null(json_object_get(m.a, "max_budget")) &&
              strcmp(t_str(m.a, "budget_reset_at"), "2030-06-01T12:00:00+00:00") == 0 &&
              strcmp(t_str(m.a, "key_alias"), "alias-1") == 0 &&
              json_real_value(json_object_get(m.a, "spend")) == 0.25,
          "patched row: %s", m.a ? json_dumps(m.a, JSON_COMPACT) : "NULL");

    t_section("ident_put over an existing row: a replacement that keeps created_at and the spend "
              "the pipeline added, whatever the row says");
    snprintf(buf, sizeof(buf), "UPDATE \"LiteLLM_VerificationToken\" SET spend = 1.75 WHERE "
             "token = '%s'", tok3);
    CHECK(t_exec(fx, buf), "spend update");
    snprintf(buf, sizeof(buf), "{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"row\":{"
             "\"key_alias\":\"mg-3b\",\"models\":[\"gpt-4o\"],\"spend\":0}}", tok3);
    CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == v0 + 3, "replace: %s",
          m.err.msg);
    CHECK(m.a && strcmp(t_str(m.a, "key_alias"), "mg-3b") == 0 &&
              json_real_value(json_object_get(m.a, "spend")) == 1.75 &&
              strcmp(t_str(m.a, "created_at"), "2020-01-01T00:00:00+00:00") == 0 &&
              json_is_null(json_object_get(m.a, "expires")) &&
              json_is_null(json_object_get(m.a, "tpm_limit")) &&
              json_object_size(json_object_get(m.a, "metadata")) == 0,
          "replaced row: %s", m.a ? json_dumps(m.a, JSON_COMPACT) : "NULL");
    snprintf(buf, sizeof(buf), "{\"op\":\"ident_patch\",\"table\":\"key\",\"id\":\"%s\","
             "\"set\":{\"spend\":0.5}}", tok3);
    CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK &&
              json_real_value(json_object_get(m.a, "spend")) == 0.5,
          "ident_patch sets spend when asked: %s", m.err.msg);

    t_section("ident_delete: a key LiteLLM_JWTKeyMapping points at, a user with memberships");
    snprintf(buf, sizeof(buf), "{\"op\":\"ident_delete\",\"table\":\"key\",\"ids\":[\"%s\"]}",
             tok1);
    CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == v0 + 5 &&
              json_array_size(json_object_get(m.a, "deleted")) == 1,
          "delete key: %s", m.err.msg);
    v = t_sql(fx, "SELECT count(*) FROM \"LiteLLM_JWTKeyMapping\"");
    CHECK(v != NULL && strcmp(v, "0") == 0, "JWT mappings left: %s", v ? v : "-");
    CHECK(t_mutate(a, &m, "{\"op\":\"ident_delete\",\"table\":\"user\",\"ids\":[\"u-1\"]}",
                   15000) && m.rc == MG_OK && m.version == v0 + 6,
          "delete user: %s", m.err.msg);
    v = t_sql(fx, "SELECT (SELECT count(*) FROM \"LiteLLM_OrganizationMembership\") || ' ' || "
                  "(SELECT count(*) FROM \"LiteLLM_InvitationLink\")");
    CHECK(v != NULL && strcmp(v, "0 0") == 0, "memberships / invitations left: %s", v ? v : "-");
    snprintf(buf, sizeof(buf), "SELECT detail->'dependents' FROM moongate_events WHERE version = "
             "%" PRId64, v0 + 6);
    v = t_sql(fx, buf);
    CHECK(v != NULL && strstr(v, "LiteLLM_InvitationLink") &&
              strstr(v, "LiteLLM_OrganizationMembership"),
          "dependents in the audit row: %s", v ? v : "-");
    /* an organization's deletion sets its teams' organization_id to NULL (LiteLLM's SET NULL) */
    CHECK(t_mutate(a, &m, "{\"op\":\"ident_delete\",\"table\":\"org\",\"ids\":[\"org-1\"]}",
                   15000) && m.rc == MG_OK, "delete org: %s", m.err.msg);

    t_section("a load after the mutations sees all of them at one version");
    CHECK(t_lload(a, &l) && l.r.version == v0 + 7, "load: %s", l.r.err.msg);
    CHECK(t_ident(l.idents, "key", tok1) == NULL && t_ident(l.idents, "user", "u-1") == NULL &&
              t_ident(l.idents, "org", "org-1") == NULL &&
              strcmp(t_str(t_ident(l.idents, "key", tok3), "key_alias"), "mg-3b") == 0 &&
              json_is_null(json_object_get(t_ident(l.idents, "team", "team-1"), "organization_id")),
          "idents after the mutations: %s", json_dumps(l.idents, JSON_COMPACT));
    CHECK(WAIT_FOR(wt.max_hint == v0 + 7, 10000), "hints stopped at %" PRId64, wt.max_hint);

    t_section("budgets, teams, users, end users: put, patch and delete round trips");
    static const char *const rt[][2] = {
        {"budget", "{\"max_budget\":5,\"budget_duration\":\"30d\",\"created_by\":\"x\","
                   "\"updated_by\":\"x\"}"},
        {"team", "{\"team_alias\":\"T2\",\"members_with_roles\":[],\"models\":[\"a\"],"
                 "\"rpm_limit\":9}"},
        {"user", "{\"user_email\":\"n@example.com\",\"user_role\":\"proxy_admin\"}"},
        {"end_user", "{\"alias\":\"C2\",\"budget_id\":\"b-free\",\"blocked\":true}"},
    };
    for (size_t i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
        int64_t vb = t_version(a);
        snprintf(buf, sizeof(buf), "{\"op\":\"ident_put\",\"table\":\"%s\",\"id\":\"rt-%zu\","
                 "\"create\":true,\"row\":%s}", rt[i][0], i, rt[i][1]);
        bool ok = t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == vb + 1;
        CHECK(ok, "%s put: %s", rt[i][0], m.err.msg);
        const char *col = mg_store_ident_id_column(rt[i][0]);
        snprintf(buf, sizeof(buf), "rt-%zu", i);
        CHECK(m.a && strcmp(t_str(m.a, col), buf) == 0, "%s put row: %s", rt[i][0],
              m.a ? json_dumps(m.a, JSON_COMPACT) : "NULL");
        snprintf(buf, sizeof(buf), "{\"op\":\"ident_patch\",\"table\":\"%s\",\"id\":\"rt-%zu\","
                 "\"set\":{}}", rt[i][0], i);
        CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == vb + 2,
              "%s empty patch: %s", rt[i][0], m.err.msg);
        snprintf(buf, sizeof(buf), "{\"op\":\"ident_delete\",\"table\":\"%s\","
                 "\"ids\":[\"rt-%zu\"]}", rt[i][0], i);
        CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK && m.version == vb + 3,
              "%s delete: %s", rt[i][0], m.err.msg);
    }

    /* ---- 4. LiteLLM_ProxyModelTable through the model mutations ---- */
    t_section("models: LiteLLM's ids are taken, its rows are not rewritten, a delete removes them");
    int64_t vm = t_version(a);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"lt-v3\",\"model_name\":\"x\","
                          "\"litellm_params\":{\"model\":\"openai/x\"}}", 15000) &&
              m.rc == MG_ERROR && m.err.cls == MG_ERR_BAD_REQUEST &&
              strstr(m.err.msg, "already exists"),
          "model_new over a LiteLLM id: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_update\",\"model_id\":\"lt-v3\",\"litellm_params\":"
                          "{\"rpm\":1}}", 15000) &&
              m.rc == MG_ERROR && m.err.cls == MG_ERR_BAD_REQUEST &&
              strstr(m.err.msg, "LiteLLM_ProxyModelTable"),
          "model_update of a LiteLLM row: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"model_delete\",\"model_id\":\"lt-v3\"}", 15000) &&
              m.rc == MG_OK && m.version == vm + 1, "model_delete of a LiteLLM row: %s",
          m.err.msg);
    v = t_sql(fx, "SELECT count(*) FROM \"LiteLLM_ProxyModelTable\" WHERE model_id = 'lt-v3'");
    CHECK(v != NULL && strcmp(v, "0") == 0, "the LiteLLM row is still there");
    /* an id in both tables (LiteLLM wrote one after moongate did): moongate's comes first */
    CHECK(t_mutate(a, &m, "{\"op\":\"model_new\",\"model_id\":\"dup\",\"model_name\":\"dup-mg\","
                          "\"litellm_params\":{\"model\":\"openai/mg\",\"api_key\":\"k\"}}",
                   15000) &&
              m.rc == MG_OK, "model_new dup: %s", m.err.msg);
    CHECK(t_insert_lmodel(fx, "dup", "dup-litellm", lp, false, false), "LiteLLM's dup");
    CHECK(t_lload(a, &l), "load: %s", l.r.err.msg);
    json_t *first = t_find_model(l.r.a, "dup");
    size_t ndup = 0, di;
    json_t *dm;
    json_array_foreach(l.r.a, di, dm) {
        ndup += strcmp(t_str(dm, "model_id"), "dup") == 0;
    }
    CHECK(first && strcmp(t_str(first, "model_name"), "dup-mg") == 0 && ndup == 2,
          "dup: first %s, %zu rows", first ? t_str(first, "model_name") : "-", ndup);

    a->ops->destroy(a);
    w->ops->destroy(w);
    PQfinish(fx);

    /* ---- 5. the database moongate made, and Prisma's ?schema= ---- */
    t_section("moongate's own database: LiteLLM's foreign keys hold there too");
    a = t_store(t_url, TEST_SECRET);
    CHECK(t_mutate(a, &m, "{\"op\":\"ident_put\",\"table\":\"org\",\"id\":\"o1\",\"row\":{"
                          "\"organization_alias\":\"O\",\"budget_id\":\"nb\"}}", 15000) &&
              m.rc == MG_ERROR && m.err.cls == MG_ERR_BAD_REQUEST &&
              strstr(m.err.msg, "LiteLLM_OrganizationTable_budget_id_fkey"),
          "org before its budget: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"ident_put\",\"table\":\"budget\",\"id\":\"nb\",\"row\":{}}",
                   15000) && m.rc == MG_OK &&
              strcmp(t_str(m.a, "created_by"), "default_user_id") == 0,
          "budget: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"ident_put\",\"table\":\"org\",\"id\":\"o1\",\"row\":{"
                          "\"organization_alias\":\"O\",\"budget_id\":\"nb\"}}", 15000) &&
              m.rc == MG_OK, "org after its budget: %s", m.err.msg);
    snprintf(buf, sizeof(buf), "{\"op\":\"ident_put\",\"table\":\"key\",\"id\":\"%s\",\"row\":{"
             "\"organization_id\":\"o1\",\"budget_id\":\"nb\",\"models\":[\"m\"]}}", tok2);
    CHECK(t_mutate(a, &m, buf, 15000) && m.rc == MG_OK, "key: %s", m.err.msg);
    CHECK(t_mutate(a, &m, "{\"op\":\"ident_delete\",\"table\":\"org\",\"ids\":[\"o1\"]}", 15000) &&
              m.rc == MG_OK, "delete org: %s", m.err.msg);
    CHECK(t_lload(a, &l) && json_is_null(json_object_get(t_ident(l.idents, "key", tok2),
                                                         "organization_id")),
          "the key's organization_id after the delete (SET NULL): %s",
          json_dumps(t_ident(l.idents, "key", tok2), JSON_COMPACT));
    a->ops->destroy(a);

    t_section("Prisma's DATABASE_URL: ?schema= is the search_path, engine-only parameters dropped");
    char sdb[64];
    snprintf(sdb, sizeof(sdb), "%s_schema", t_db);
    PGconn *sc = t_new_db(sdb);
    snprintf(furl, sizeof(furl), "postgresql://postgres:%s@127.0.0.1:%d/%s?connection_limit=5&"
             "schema=lite%%20llm&pool_timeout=20&sslmode=disable", TEST_PASSWORD, t_port, sdb);
    a = t_store(furl, T_SALT);
    CHECK(a != NULL, "a Prisma URL was refused");
    if (a != NULL) {
        CHECK(t_mutate(a, &m, "{\"op\":\"ident_put\",\"table\":\"user\",\"id\":\"su\",\"row\":{}}",
                       15000) && m.rc == MG_OK, "put in a schema: %s", m.err.msg);
        v = t_sql(sc, "SELECT count(*) FROM \"lite llm\".\"LiteLLM_UserTable\" u, "
                      "\"lite llm\".moongate_registry r WHERE u.user_id = 'su'");
        CHECK(v != NULL && strcmp(v, "1") == 0, "tables are not in schema \"lite llm\": %s",
              v ? v : "-");
        v = t_sql(sc, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
        CHECK(v != NULL && strcmp(v, "0") == 0, "tables in public: %s", v ? v : "-");
        a->ops->destroy(a);
    }
    PQfinish(sc);
    PQfinish(ours);
    t_res_reset(&m);
    t_res_reset(&l.r);
    json_decref(l.idents);
}

/* Scans the store's log output (our stderr) for the password. */
static void
t_check_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char line[4096];
    int lines = 0, leaks = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lines++;
        leaks += strstr(line, TEST_PASSWORD) != NULL;
        if (t_failed > 0 || getenv("MG_TEST_VERBOSE") != NULL) {
            ssize_t wr = write(t_real_stderr, line, strlen(line));
            (void) wr;
        }
    }
    fclose(f);
    t_section("logs never contain the password");
    CHECK(leaks == 0, "%d of %d log lines contain the password", leaks, lines);
    CHECK(lines > 0, "the store logged nothing at debug level");
}

int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, t_alarm);
    alarm(240);

    const char *bindir = getenv("MG_PG_BINDIR");
    snprintf(t_bindir, sizeof(t_bindir), "%s", bindir ? bindir : "/usr/lib/postgresql/15/bin");
    snprintf(t_dir, sizeof(t_dir), "/tmp/mg_store_pg_test.XXXXXX");
    if (mkdtemp(t_dir) == NULL) {
        printf("FAIL: mkdtemp failed: %s\n", strerror(errno));
        return 1;
    }
    struct passwd *pgpw = getpwnam("postgres");
    if (geteuid() == 0 && pgpw != NULL && chown(t_dir, pgpw->pw_uid, pgpw->pw_gid) != 0) {
        /* the server (and pg_ctl's log) run as postgres */
        printf("FAIL: chown(%s) failed: %s\n", t_dir, strerror(errno));
        return 1;
    }
    const char *port = argc > 1 ? argv[1] : getenv("MG_TEST_PG_PORT");
    t_own_server = port == NULL || port[0] == '\0';
    if (t_own_server) {
        snprintf(t_datadir, sizeof(t_datadir), "%s/data", t_dir); /* before the guardian forks */
    }
    t_guardian();

    if (t_own_server) {
        int rc = t_setup_own_server();
        if (rc != 0) {
            printf("%d passed, %d failed\n", t_passed, t_failed + (rc == 77 ? 0 : 1));
            return rc;
        }
    } else {
        t_port = atoi(port);
        const char *data = getenv("MG_TEST_PG_DATA");
        snprintf(t_datadir, sizeof(t_datadir), "%s", data ? data : "");
    }
    printf("PostgreSQL on 127.0.0.1:%d (%s)\n", t_port, t_own_server ? "ours" : "fixture");

    /* a fresh database: the schema must be created by the stores */
    snprintf(t_db, sizeof(t_db), "moongate_test_%d", (int) getpid());
    PGconn *admin = t_admin("postgres");
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t_db);
    if (PQstatus(admin) != CONNECTION_OK || t_sql(admin, sql) == NULL) {
        PQfinish(admin);
        printf("FAIL: cannot create the test database\n0 passed, 1 failed\n");
        return 1;
    }
    PQfinish(admin);
    snprintf(t_url, sizeof(t_url), "postgresql://postgres:%s@127.0.0.1:%d/%s", TEST_PASSWORD,
             t_port, t_db);

    /* the store logs to stderr: capture it to check it for the password */
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s/store.log", t_dir);
    /* close-on-exec: a server we restart must not inherit (and hold open) our stderr */
    t_real_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (logfd >= 0) {
        dup2(logfd, 2);
        close(logfd);
    }
    mg_log_set_level(MG_LOG_DEBUG);
    mg_log_set_process("test", 0);

    t_base = event_base_new();
    struct event *tick = event_new(t_base, -1, EV_PERSIST, t_tick_cb, NULL);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);

    t_redaction();
    t_bad_urls();
    t_unreachable();
    t_everything();
    t_litellm();

    event_free(tick);
    event_base_free(t_base);
    libevent_global_shutdown();

    dup2(t_real_stderr, 2);
    t_check_log(logpath);
    close(t_real_stderr);

    if (!t_own_server) {
        admin = t_admin("postgres");
        static const char *const suffix[] = {"", "_litellm", "_schema"};
        for (int i = 0; i < 3; i++) {
            snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s%s", t_db, suffix[i]);
            t_sql(admin, sql);
        }
        PQfinish(admin);
    } else {
        CHECK(t_pg_stop("fast") == 0, "pg_ctl stop at the end failed");
    }
    t_rmrf(t_dir); /* the guardian would too, once we exit */
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed > 0 ? 1 : 0;
}
