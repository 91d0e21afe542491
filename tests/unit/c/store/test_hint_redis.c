/*
 * test_hint_redis.c -- mg_hint_redis against a real redis-server on 127.0.0.1.
 *
 * Starts its own redis-server (free port, temp dir, no persistence) and always
 * stops it: at exit, on a fatal signal, and through PR_SET_PDEATHSIG if this
 * process dies without running either.  Hint objects run on a libevent loop;
 * every wait polls a condition against a deadline.  Includes the .c to shorten
 * the connect timeout and to look at connection states.
 */
#define _GNU_SOURCE 1
#include "../../../../core/store/mg_hint_redis.c"

#include "../../../../core/base/mg_time.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_REDIS_BIN "/usr/bin/redis-server"
#define T_PASSWORD "s3cret-pw-7f1c"
#define T_WRONG_PASSWORD "wrong-pw-9a2e"

static int t_passed;
static int t_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_passed++;                                                                            \
        } else {                                                                                   \
            t_failed++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* ---- redis-server child ---- */

static pid_t t_redis_pid = -1;
static int t_redis_port;
static char t_dir[256];
static char t_redis_pass[64];   /* requirepass of the running server, "" = none */

static void
t_rm_rf_now(void)
{
    /* async-signal-safe enough for the crash path: fork + exec + wait */
    if (t_dir[0] == '\0') {
        return;
    }
    pid_t p = fork();
    if (p == 0) {
        execl("/bin/rm", "rm", "-rf", t_dir, (char *) NULL);
        _exit(127);
    }
    if (p > 0) {
        waitpid(p, NULL, 0);
    }
}

static void
t_fatal_signal(int sig)
{
    if (t_redis_pid > 0) {
        kill(t_redis_pid, SIGKILL);
        waitpid(t_redis_pid, NULL, 0);
    }
    t_rm_rf_now();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int
t_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
        perror("free port");
        exit(2);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* A fresh sync connection (authenticated when the server wants it); NULL on failure. */
static redisContext *
t_sync_connect(void)
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", t_redis_port, tv);
    if (rc == NULL || rc->err) {
        if (rc != NULL) {
            redisFree(rc);
        }
        return NULL;
    }
    redisSetTimeout(rc, tv);
    if (t_redis_pass[0] != '\0') {
        redisReply *r = redisCommand(rc, "AUTH %s", t_redis_pass);
        bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        if (r != NULL) {
            freeReplyObject(r);
        }
        if (!ok) {
            redisFree(rc);
            return NULL;
        }
    }
    return rc;
}

/* Runs one command on a fresh sync connection; returns the reply (caller frees) or NULL. */
static redisReply *
t_redis_cmd(const char *fmt, ...)
{
    redisContext *rc = t_sync_connect();
    if (rc == NULL) {
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    redisFree(rc);
    return r;
}

static bool
t_redis_start(const char *requirepass)
{
    snprintf(t_redis_pass, sizeof(t_redis_pass), "%s", requirepass != NULL ? requirepass : "");
    char port[16];
    char logfile[300];
    snprintf(port, sizeof(port), "%d", t_redis_port);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", t_dir);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return false;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        const char *argv[32];
        int n = 0;
        argv[n++] = T_REDIS_BIN;
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--dir";
        argv[n++] = t_dir;
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--appendonly";
        argv[n++] = "no";
        argv[n++] = "--daemonize";
        argv[n++] = "no";
        argv[n++] = "--logfile";
        argv[n++] = logfile;
        if (requirepass != NULL) {
            argv[n++] = "--requirepass";
            argv[n++] = requirepass;
        }
        argv[n] = NULL;
        execv(T_REDIS_BIN, (char *const *) argv);
        _exit(127);
    }
    t_redis_pid = pid;

    int64_t deadline = mg_time_mono_ms() + 5000;
    while (mg_time_mono_ms() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "redis-server exited during startup (see %s)\n", logfile);
            t_redis_pid = -1;
            return false;
        }
        redisReply *r = t_redis_cmd("PING");
        bool up = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL) {
            freeReplyObject(r);
        }
        if (up) {
            return true;
        }
        usleep(20 * 1000);  /* polling with a deadline, not synchronisation */
    }
    fprintf(stderr, "redis-server did not answer PING within 5s\n");
    return false;
}

static void
t_redis_stop(void)
{
    if (t_redis_pid <= 0) {
        return;
    }
    kill(t_redis_pid, SIGCONT);     /* in case a test left it stopped */
    kill(t_redis_pid, SIGTERM);
    int64_t deadline = mg_time_mono_ms() + 5000;
    while (waitpid(t_redis_pid, NULL, WNOHANG) == 0) {
        if (mg_time_mono_ms() >= deadline) {
            kill(t_redis_pid, SIGKILL);
            waitpid(t_redis_pid, NULL, 0);
            break;
        }
        usleep(10 * 1000);
    }
    t_redis_pid = -1;
}

static int
t_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
t_cleanup(void)
{
    t_redis_stop();
    if (t_dir[0] != '\0') {
        nftw(t_dir, t_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        t_dir[0] = '\0';
    }
}

/* ---- event loop and hint objects ---- */

static struct event_base *t_base;

static void
t_tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until cond holds or ms elapse; evaluates to cond. */
#define WAIT_FOR(cond, ms)                                                                         \
    ({                                                                                             \
        int64_t dl_ = mg_time_mono_ms() + (ms);                                                    \
        bool ok_;                                                                                  \
        while (!(ok_ = (cond)) && mg_time_mono_ms() < dl_) {                                       \
            event_base_loop(t_base, EVLOOP_ONCE);                                                  \
        }                                                                                          \
        ok_;                                                                                       \
    })

static void
t_pump(int ms)
{
    (void) WAIT_FOR(false, ms);
}

typedef struct {
    const char *name;
    mg_hint_redis_t *h;
    int hints;
    int64_t last_version;
    char last_instance[64];
    int on_reconnects;
    bool destroy_on_hint;
    bool destroy_on_reconnect;
} t_client_t;

static void
t_on_hint(void *ud, int64_t version, const char *instance)
{
    t_client_t *c = ud;
    c->hints++;
    c->last_version = version;
    snprintf(c->last_instance, sizeof(c->last_instance), "%s", instance);
    if (c->destroy_on_hint) {
        mg_hint_redis_destroy(c->h);
        c->h = NULL;
    }
}

static void
t_on_reconnect(void *ud)
{
    t_client_t *c = ud;
    c->on_reconnects++;
    if (c->destroy_on_reconnect) {
        mg_hint_redis_destroy(c->h);
        c->h = NULL;
    }
}

static bool
t_create(t_client_t *c, const char *name, const char *user, const char *pass, const char *channel)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    mg_hint_redis_conf_t conf = {
        .base = t_base,
        .host = "127.0.0.1",
        .port = t_redis_port,
        .username = user,
        .password = pass,
        .channel = channel,
        .instance_id = name,
        .on_hint = t_on_hint,
        .on_reconnect = t_on_reconnect,
        .ud = c,
    };
    mg_err_t err;
    mg_err_clear(&err);
    c->h = mg_hint_redis_create(&conf, &err);
    if (c->h == NULL) {
        fprintf(stderr, "create %s: %s\n", name, err.msg);
    }
    return c->h != NULL;
}

static void
t_destroy(t_client_t *c)
{
    mg_hint_redis_destroy(c->h);
    c->h = NULL;
}

static bool
t_bool(t_client_t *c, const char *key)
{
    json_t *s = mg_hint_redis_status(c->h);
    bool v = json_is_true(json_object_get(s, key));
    json_decref(s);
    return v;
}

static long long
t_int(t_client_t *c, const char *key)
{
    json_t *s = mg_hint_redis_status(c->h);
    json_t *v = json_object_get(s, key);
    long long n = json_is_integer(v) ? (long long) json_integer_value(v) : -1;
    json_decref(s);
    return n;
}

/* last_error contains needle (needle NULL: last_error is null). */
static bool
t_error_has(t_client_t *c, const char *needle)
{
    json_t *s = mg_hint_redis_status(c->h);
    json_t *e = json_object_get(s, "last_error");
    bool v = needle == NULL ? json_is_null(e)
                            : json_is_string(e) && strstr(json_string_value(e), needle) != NULL;
    json_decref(s);
    return v;
}

static bool
t_ready(t_client_t *c)
{
    return c->h != NULL && t_bool(c, "subscribed") && t_bool(c, "publisher_connected");
}

static void
t_show_status(t_client_t *c)
{
    json_t *s = mg_hint_redis_status(c->h);
    char *txt = json_dumps(s, JSON_COMPACT);
    fprintf(stderr, "  status %s: %s\n", c->name, txt);
    free(txt);
    json_decref(s);
}

/* ---- tests ---- */

static t_client_t a;
static t_client_t b;

static void
test_create_rejects_bad_conf(void)
{
    mg_err_t err;
    mg_hint_redis_conf_t conf = {.base = t_base, .host = "127.0.0.1", .port = 0};
    mg_err_clear(&err);
    CHECK(mg_hint_redis_create(&conf, &err) == NULL, "port 0 accepted");
    CHECK(err.cls == MG_ERR_CONFIG && strstr(err.msg, "port 0") != NULL, "err: %s", err.msg);
    conf.port = 6379;
    conf.host = NULL;
    mg_err_clear(&err);
    CHECK(mg_hint_redis_create(&conf, &err) == NULL, "NULL host accepted");
}

static void
test_backoff_and_scrub(void)
{
    mg_hint_redis_t h;
    memset(&h, 0, sizeof(h));
    h.base = t_base;
    h.host = "127.0.0.1";
    h.port = 1;
    mg_hint_redis_conn_t c;
    mg_hint_redis_conn_init(&h, &c, true);
    static const int want[] = {100, 200, 400, 800, 1600, 2000, 2000, 2000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK(c.backoff_ms == want[i], "retry %zu delay %dms, want %dms", i, c.backoff_ms, want[i]);
        mg_hint_redis_conn_retry(&c);
        CHECK(evtimer_pending(c.retry_ev, NULL), "retry %zu not scheduled", i);
        evtimer_del(c.retry_ev);
    }
    mg_hint_redis_conn_ready(&c);
    CHECK(c.backoff_ms == 100 && c.fails == 0, "ready does not reset backoff");
    mg_hint_redis_conn_free(&c);

    char s[64];
    h.password = "pw";
    snprintf(s, sizeof(s), "x pw y pw\x01\xc3");
    mg_hint_redis_scrub(&h, s, sizeof(s));
    CHECK(strcmp(s, "x *** y ***??") == 0, "scrub: \"%s\"", s);
    h.password = "*";   /* the mask contains the secret: must terminate */
    snprintf(s, sizeof(s), "a*b");
    mg_hint_redis_scrub(&h, s, sizeof(s));
    CHECK(strcmp(s, "a***b") == 0, "scrub: \"%s\"", s);
    h.password = "p\xc3\xa4ss";     /* non-ASCII: masked before bytes are replaced */
    snprintf(s, sizeof(s), "bad p\xc3\xa4ss");
    mg_hint_redis_scrub(&h, s, sizeof(s));
    CHECK(strcmp(s, "bad ***") == 0, "scrub: \"%s\"", s);
    h.password = "secret";
    snprintf(s, sizeof(s), "0123456789secret");
    mg_hint_redis_scrub(&h, s, 12);     /* no room for the mask: cut before the secret */
    CHECK(strcmp(s, "0123456789") == 0, "scrub: \"%s\"", s);
}

static void
test_publish_reaches_other(void)
{
    CHECK(t_create(&a, "inst-a", NULL, NULL, NULL), "create a");
    CHECK(t_create(&b, "inst-b", NULL, NULL, NULL), "create b");
    CHECK(WAIT_FOR(t_ready(&a) && t_ready(&b), 5000), "a and b not ready");
    CHECK(a.on_reconnects == 1 && b.on_reconnects == 1,
          "on_reconnect at first subscribe: a=%d b=%d", a.on_reconnects, b.on_reconnects);

    json_t *s = mg_hint_redis_status(b.h);
    CHECK(strcmp(json_string_value(json_object_get(s, "type")), "redis") == 0, "type");
    CHECK(strcmp(json_string_value(json_object_get(s, "host")), "127.0.0.1") == 0, "host");
    CHECK(json_integer_value(json_object_get(s, "port")) == t_redis_port, "port");
    CHECK(json_is_true(json_object_get(s, "connected")), "connected");
    CHECK(json_integer_value(json_object_get(s, "reconnects")) == 0, "reconnects");
    CHECK(json_is_null(json_object_get(s, "last_error")), "last_error not null");
    static const char *keys[] = {"received", "published", "publish_dropped", "bad_messages"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        CHECK(json_is_integer(json_object_get(s, keys[i])), "status lacks %s", keys[i]);
    }
    json_decref(s);

    mg_hint_redis_publish(a.h, 42);
    CHECK(WAIT_FOR(b.hints >= 1, 3000), "b got no hint");
    CHECK(b.last_version == 42, "version %lld", (long long) b.last_version);
    CHECK(strcmp(b.last_instance, "inst-a") == 0, "instance \"%s\"", b.last_instance);
    CHECK(WAIT_FOR(t_int(&a, "published") == 1, 2000), "published %lld", t_int(&a, "published"));
    CHECK(t_int(&b, "received") >= 1, "received");

    /* another channel hears nothing */
    t_client_t other;
    CHECK(t_create(&other, "inst-o", NULL, NULL, "moongate:other"), "create other");
    CHECK(WAIT_FOR(t_ready(&other), 3000), "other not ready");
    int before = b.hints;
    mg_hint_redis_publish(a.h, 43);
    CHECK(WAIT_FOR(b.hints > before, 3000), "b missed 43");
    t_pump(100);
    CHECK(other.hints == 0, "other channel got %d hints", other.hints);
    t_destroy(&other);
}

static void
test_malformed_messages(void)
{
    static const char *bad[] = {
        "not json", "{\"version\":\"7\",\"instance\":\"x\"}", "{\"version\":7}", "[1,2]",
        "{\"version\":-1,\"instance\":\"x\"}", "{\"version\":1.5,\"instance\":\"x\"}",
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    long long bad0 = t_int(&b, "bad_messages");
    int hints0 = b.hints;
    for (size_t i = 0; i < nbad; i++) {
        redisReply *r = t_redis_cmd("PUBLISH moongate:registry %s", bad[i]);
        CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER, "PUBLISH bad[%zu]", i);
        if (r != NULL) {
            freeReplyObject(r);
        }
    }
    CHECK(WAIT_FOR(t_int(&b, "bad_messages") == bad0 + (long long) nbad, 3000),
          "bad_messages %lld", t_int(&b, "bad_messages"));
    CHECK(b.hints == hints0, "malformed payload delivered");

    redisReply *r = t_redis_cmd("PUBLISH moongate:registry %s",
                                "{\"version\":9,\"instance\":\"external\"}");
    if (r != NULL) {
        freeReplyObject(r);
    }
    CHECK(WAIT_FOR(b.hints == hints0 + 1, 3000), "valid message after bad ones not delivered");
    CHECK(b.last_version == 9 && strcmp(b.last_instance, "external") == 0, "got %lld from %s",
          (long long) b.last_version, b.last_instance);
    CHECK(t_bool(&b, "subscribed"), "malformed messages broke the subscription");
}

static void
test_client_kill_pubsub(void)
{
    long long rec0 = t_int(&b, "reconnects");
    redisReply *r = t_redis_cmd("CLIENT KILL TYPE pubsub");
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 2,
          "CLIENT KILL TYPE pubsub killed %lld", r != NULL ? r->integer : -1LL);
    if (r != NULL) {
        freeReplyObject(r);
    }
    CHECK(WAIT_FOR(a.on_reconnects == 2 && b.on_reconnects == 2, 5000),
          "on_reconnect after kill: a=%d b=%d", a.on_reconnects, b.on_reconnects);
    CHECK(t_int(&b, "reconnects") > rec0, "reconnects did not move");
    CHECK(t_error_has(&b, "disconnected"), "last_error after kill");
    CHECK(t_bool(&b, "subscribed") && t_bool(&b, "connected"), "b not back");

    int before = b.hints;
    CHECK(WAIT_FOR(t_bool(&a, "publisher_connected"), 3000), "a publisher");
    mg_hint_redis_publish(a.h, 100);
    CHECK(WAIT_FOR(b.hints > before, 3000), "no hint after reconnect");
    CHECK(b.last_version == 100, "version %lld", (long long) b.last_version);
    t_pump(300);
    CHECK(b.on_reconnects == 2, "spurious on_reconnect: %d", b.on_reconnects);
}

static void
test_server_restart(void)
{
    t_redis_stop();
    CHECK(WAIT_FOR(!t_bool(&b, "connected") && !t_bool(&a, "publisher_connected"), 3000),
          "still connected after server stop");
    CHECK(!t_bool(&b, "subscribed"), "subscribed while down");
    long long dropped = t_int(&a, "publish_dropped");
    mg_hint_redis_publish(a.h, 200);
    CHECK(t_int(&a, "publish_dropped") == dropped + 1, "publish while down not dropped");
    long long rec = t_int(&b, "reconnects");
    CHECK(WAIT_FOR(t_int(&b, "reconnects") >= rec + 3, 3000), "not retrying: %lld",
          t_int(&b, "reconnects"));
    t_show_status(&b);

    CHECK(t_redis_start(NULL), "restart redis on port %d", t_redis_port);
    CHECK(WAIT_FOR(t_ready(&a) && t_ready(&b), 6000), "not back after restart");
    CHECK(b.on_reconnects == 3, "on_reconnect after restart: %d", b.on_reconnects);
    int before = b.hints;
    mg_hint_redis_publish(a.h, 201);
    CHECK(WAIT_FOR(b.hints > before && b.last_version == 201, 3000), "no hint after restart");
}

static void
test_destroy_while_reconnecting(void)
{
    t_redis_stop();
    CHECK(WAIT_FOR(!t_bool(&a, "connected") && !t_bool(&b, "connected"), 3000), "disconnect");
    t_pump(150);    /* let some retries fail; a retry timer is pending now */
    t_destroy(&a);
    t_destroy(&b);

    t_client_t d;
    CHECK(t_create(&d, "inst-d", NULL, NULL, NULL), "create d while down");
    CHECK(WAIT_FOR(t_error_has(&d, "connect"), 2000), "no connect error while down");
    CHECK(!t_bool(&d, "connected"), "d connected to nothing");
    t_destroy(&d);
    t_pump(300);    /* nothing may fire on the freed objects */
    CHECK(true, "destroyed while reconnecting");
}

static void
test_handshake_timeout_and_destroy_while_connecting(void)
{
    CHECK(t_redis_start(NULL), "start redis");
    int saved = mg_hint_redis_connect_timeout_ms;
    mg_hint_redis_connect_timeout_ms = 300;
    kill(t_redis_pid, SIGSTOP);     /* the kernel still accepts; nothing answers */

    t_client_t e;
    t_client_t f;
    CHECK(t_create(&e, "inst-e", NULL, NULL, NULL), "create e");
    CHECK(WAIT_FOR(t_error_has(&e, "timed out"), 3000), "no handshake timeout");
    CHECK(!t_bool(&e, "subscribed"), "subscribed to a stopped server");
    t_show_status(&e);

    CHECK(t_create(&f, "inst-f", NULL, NULL, NULL), "create f");
    CHECK(WAIT_FOR(f.h->sub.state == MG_HINT_CONN_HANDSHAKE, 2000), "f never reached handshake");
    t_destroy(&f);      /* SUBSCRIBE in flight */
    CHECK(t_create(&f, "inst-f2", NULL, NULL, NULL), "create f2");
    t_destroy(&f);      /* connect in flight */

    kill(t_redis_pid, SIGCONT);
    mg_hint_redis_connect_timeout_ms = saved;
    CHECK(WAIT_FOR(t_ready(&e), 5000), "e not ready after SIGCONT");
    CHECK(e.on_reconnects == 1, "e on_reconnect %d", e.on_reconnects);
    CHECK(f.hints == 0 && f.on_reconnects == 0, "callbacks after destroy");

    /* destroy from inside the user's callbacks */
    t_client_t g;
    t_client_t k;
    CHECK(t_create(&g, "inst-g", NULL, NULL, NULL), "create g");
    CHECK(t_create(&k, "inst-k", NULL, NULL, NULL), "create k");
    k.destroy_on_reconnect = true;
    CHECK(WAIT_FOR(g.h != NULL && t_ready(&g) && k.h == NULL, 3000), "g/k not ready");
    CHECK(k.on_reconnects == 1, "k on_reconnect %d", k.on_reconnects);
    g.destroy_on_hint = true;
    mg_hint_redis_publish(e.h, 300);
    mg_hint_redis_publish(e.h, 301);  /* a second message may sit in the same read */
    CHECK(WAIT_FOR(g.h == NULL, 3000), "g not destroyed from on_hint");
    CHECK(g.hints == 1, "hints after destroy in callback: %d", g.hints);
    t_pump(200);
    CHECK(g.hints == 1, "hints after destroy in callback: %d", g.hints);
    t_destroy(&e);
}

static bool
t_file_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return false;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void
test_auth(void)
{
    t_redis_stop();
    CHECK(t_redis_start(T_PASSWORD), "start redis with requirepass");

    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s/hint.log", t_dir);
    fflush(stderr);
    int saved_fd = dup(STDERR_FILENO);
    int lfd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(lfd, STDERR_FILENO);
    close(lfd);
    mg_log_level_t saved_level = mg_log_level;
    mg_log_set_level(MG_LOG_DEBUG);

    t_client_t p1;
    t_client_t p2;
    t_client_t w;
    t_client_t n;
    CHECK(t_create(&p1, "inst-p1", NULL, T_PASSWORD, NULL), "create p1");
    CHECK(t_create(&p2, "inst-p2", "default", T_PASSWORD, NULL), "create p2 (user + pass)");
    CHECK(t_create(&w, "inst-w", NULL, T_WRONG_PASSWORD, NULL), "create w");
    CHECK(t_create(&n, "inst-n", NULL, NULL, NULL), "create n");
    CHECK(WAIT_FOR(t_ready(&p1) && t_ready(&p2), 5000), "AUTH with the right password");
    CHECK(WAIT_FOR(t_error_has(&w, "AUTH failed"), 3000), "wrong password not reported");
    long long rec = t_int(&w, "reconnects");
    CHECK(WAIT_FOR(t_int(&w, "reconnects") >= rec + 2, 3000), "wrong password: not retrying");
    CHECK(!t_bool(&w, "subscribed") && !t_bool(&w, "publisher_connected"), "w subscribed");
    CHECK(WAIT_FOR(t_error_has(&n, "NOAUTH"), 3000), "missing password not reported");
    CHECK(!t_bool(&n, "subscribed"), "n subscribed without AUTH");

    json_t *s = mg_hint_redis_status(w.h);
    char *txt = json_dumps(s, JSON_COMPACT);
    CHECK(txt != NULL && strstr(txt, T_WRONG_PASSWORD) == NULL, "password in status: %s", txt);
    free(txt);
    json_decref(s);

    int before = p2.hints;
    mg_hint_redis_publish(p1.h, 400);
    CHECK(WAIT_FOR(p2.hints > before && p2.last_version == 400, 3000), "no hint with AUTH");
    t_destroy(&p1);
    t_destroy(&p2);
    t_destroy(&w);     /* while retrying */
    t_destroy(&n);

    mg_log_set_level(saved_level);
    fflush(stderr);
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    CHECK(t_file_has(logpath, "AUTH failed"), "no AUTH failure logged");
    CHECK(!t_file_has(logpath, T_PASSWORD), "password logged");
    CHECK(!t_file_has(logpath, T_WRONG_PASSWORD), "wrong password logged");
    if (getenv("MG_TEST_VERBOSE") != NULL) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "cat %s >&2", logpath);
        (void) !system(cmd);
    }
}

int
main(void)
{
    if (access(T_REDIS_BIN, X_OK) != 0) {
        fprintf(stderr, "%s not found\n", T_REDIS_BIN);
        return 2;
    }
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(t_dir, sizeof(t_dir), "%s/mg_hint_redis.XXXXXX", tmp);
    if (mkdtemp(t_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    atexit(t_cleanup);
    signal(SIGSEGV, t_fatal_signal);
    signal(SIGABRT, t_fatal_signal);
    signal(SIGBUS, t_fatal_signal);
    signal(SIGINT, t_fatal_signal);
    signal(SIGTERM, t_fatal_signal);
    signal(SIGPIPE, SIG_IGN);

    t_base = event_base_new();
    struct event *tick = event_new(t_base, -1, EV_PERSIST, t_tick_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(tick, &tv);

    t_redis_port = t_free_port();
    if (!t_redis_start(NULL)) {
        fprintf(stderr, "cannot start redis-server\n");
        t_failed++;
    } else {
        test_create_rejects_bad_conf();
        test_backoff_and_scrub();
        test_publish_reaches_other();
        test_malformed_messages();
        test_client_kill_pubsub();
        test_server_restart();
        test_destroy_while_reconnecting();
        test_handshake_timeout_and_destroy_while_connecting();
        test_auth();
    }

    event_free(tick);
    event_base_free(t_base);
    t_cleanup();
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed == 0 ? 0 : 1;
}
