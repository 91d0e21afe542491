/*
 * test_token.c -- the per-worker token cache (core/providers/mg_token.c): one fetch per
 * credential however many callers wait, every waiter woken with the one result (success
 * or error), refresh before expiry without making callers wait, a changed fingerprint
 * never finding the old token, bounded waiters, cancellation, re-entrant callbacks, and
 * tokens in the scrubber's runtime set.  The io is driven by hand (the cache does no I/O),
 * the clock is a variable.
 */
#include "mg_test.h"

#include "../../../../core/base/mg_buf.h"
#include "../../../../core/base/mg_scrub.h"
#include "../../../../core/providers/mg_token.h"

#include <stdlib.h>
#include <string.h>

/* ---- a hand-driven io and clock ---- */

#define MAXF 16

typedef struct {
    char url[256];
    char body[256];
    mg_token_entry_t *fetch;
    bool live;
    bool cancelled;
} fake_fetch_t;

static fake_fetch_t fetches[MAXF];
static int nfetches;
static bool fail_start;
static int64_t now_ms = 1000000;

static int64_t
fake_now(void)
{
    return now_ms;
}

static int64_t
fake_real(void)
{
    return 1700000000 + now_ms / 1000;
}

static void *
fake_start(void *host, const char *url, const char *body, size_t len, mg_token_entry_t *fetch,
           mg_err_t *err)
{
    (void) host;
    if (fail_start) {
        mg_err_set(err, MG_ERR_UPSTREAM_CONNECT, "connect() to the token endpoint failed");
        return NULL;
    }
    if (nfetches >= MAXF) {
        abort();
    }
    fake_fetch_t *f = &fetches[nfetches++];
    snprintf(f->url, sizeof(f->url), "%s", url);
    snprintf(f->body, sizeof(f->body), "%.*s", (int) len, body);
    f->fetch = fetch;
    f->live = true;
    return f;
}

static void
fake_cancel(void *host, void *handle)
{
    (void) host;
    fake_fetch_t *f = handle;
    f->live = false;
    f->cancelled = true;
}

static mg_token_cache_t *
new_cache(int max_waiters)
{
    memset(fetches, 0, sizeof(fetches));
    nfetches = 0;
    fail_start = false;
    mg_token_conf_t conf = {
        .io = {fake_start, fake_cancel, NULL},
        .max_waiters = max_waiters,
        .now_ms = fake_now,
        .now_real_s = fake_real,
    };
    return mg_token_cache_create(&conf);
}

/* Completes fetch i with a status and body. */
static void
answer(mg_token_cache_t *c, int i, int status, const char *body)
{
    CHECK(fetches[i].live, "fetch %d is in flight", i);
    fetches[i].live = false;
    mg_token_fetch_done(c, fetches[i].fetch, MG_OK, status, body, strlen(body), NULL);
}

/* ---- a credential ---- */

static int body_calls;
static bool body_fails;

static int
cred_body(void *ud, int64_t now_s, mg_buf_t *out, mg_err_t *err)
{
    body_calls++;
    if (body_fails) {
        return mg_err_set(err, MG_ERR_CONFIG, "service account JSON has no \"private_key\"");
    }
    mg_buf_printf(out, "grant_type=x&assertion=%s.%lld", (const char *) ud, (long long) now_s);
    return MG_OK;
}

static mg_token_src_t
src_for(const char *keychar, const char *secret)
{
    mg_token_src_t s;
    memset(&s, 0, sizeof(s));
    memset(s.key, keychar[0], 64);
    s.key[64] = '\0';
    s.url = "http://127.0.0.1:9/token";
    s.what = "service account sa@test.iam.gserviceaccount.com";
    s.body = cred_body;
    s.ud = (void *) secret;
    return s;
}

/* ---- waiters ---- */

typedef struct {
    mg_token_wait_t w;
    int calls;
    int rc;
    char token[128];
    mg_err_t err;
    /* re-entrancy: on wake, ask the cache again */
    mg_token_cache_t *again_cache;
    const mg_token_src_t *again_src;
    int again_rc;
    char again_token[128];
} waiter_t;

static void
on_wake(void *ud, int rc, const char *token, const mg_err_t *err)
{
    waiter_t *x = ud;
    x->calls++;
    x->rc = rc;
    if (rc == MG_OK) {
        snprintf(x->token, sizeof(x->token), "%s", token);
    } else {
        x->err = *err;
    }
    if (x->again_cache != NULL) {
        const char *t = NULL;
        mg_err_t e2;
        mg_token_wait_t w2;
        memset(&w2, 0, sizeof(w2));
        x->again_rc = mg_token_get(x->again_cache, x->again_src, &t, &w2, on_wake, NULL, &e2);
        if (t != NULL) {
            snprintf(x->again_token, sizeof(x->again_token), "%s", t);
        }
    }
}

static int
get(mg_token_cache_t *c, const mg_token_src_t *s, waiter_t *x, const char **tok, mg_err_t *err)
{
    return mg_token_get(c, s, tok, &x->w, on_wake, x, err);
}

#define TOKEN_A "ya29.a0AfH6SMBtokenAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "ya29.a0AfH6SMBtokenBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define TOKEN_C "ya29.a0AfH6SMBtokenCCCCCCCCCCCCCCCCCCCCCCCCCC"

static void
test_single_flight(void)
{
    MG_T_CASE("single flight: many callers, one fetch, one result for all");
    mg_token_cache_t *c = new_cache(0);
    mg_token_src_t s = src_for("a", "SECRET-ASSERTION-1");
    enum { N = 50 };
    static waiter_t xs[N];
    memset(xs, 0, sizeof(xs));
    body_calls = 0;
    for (int i = 0; i < N; i++) {
        const char *tok = "x";
        mg_err_t err;
        CHECK_INT(get(c, &s, &xs[i], &tok, &err), MG_AGAIN);
        CHECK(tok == NULL);
    }
    CHECK_INT(nfetches, 1);
    CHECK_INT(body_calls, 1);
    CHECK_STR(fetches[0].url, "http://127.0.0.1:9/token");
    CHECK_CONTAINS(fetches[0].body, "assertion=SECRET-ASSERTION-1.");
    for (int i = 0; i < N; i++) {
        CHECK_INT(xs[i].calls, 0);
    }
    answer(c, 0, 200, "{\"access_token\":\"" TOKEN_A "\",\"expires_in\":3600,\"token_type\":\"Bearer\"}");
    int woken = 0;
    for (int i = 0; i < N; i++) {
        woken += xs[i].calls == 1 && xs[i].rc == MG_OK && strcmp(xs[i].token, TOKEN_A) == 0;
        CHECK(xs[i].w.entry == NULL, "waiter %d unlinked", i);
    }
    CHECK_INT(woken, N);
    /* now a hit, no new fetch */
    waiter_t y;
    memset(&y, 0, sizeof(y));
    const char *tok = NULL;
    mg_err_t err;
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_OK);
    CHECK_STR(tok, TOKEN_A);
    CHECK_INT(nfetches, 1);
    mg_token_stats_t st;
    mg_token_cache_stats(c, &st);
    CHECK_INT(st.fetches, 1);
    CHECK_INT(st.waits, N);
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.entries, 1);
    mg_token_cache_destroy(c);
}

static void
test_expiry(void)
{
    MG_T_CASE("expiry: kept until shortly before, refreshed once in the background, then waited on");
    mg_token_cache_t *c = new_cache(0);
    mg_token_src_t s = src_for("b", "SECRET-ASSERTION-2");
    waiter_t x;
    memset(&x, 0, sizeof(x));
    const char *tok;
    mg_err_t err;
    int64_t t0 = now_ms;
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_AGAIN);
    answer(c, 0, 200, "{\"access_token\":\"" TOKEN_A "\",\"expires_in\":100}");
    /* 100 s: refresh from 90 s (a tenth early), wait from 95 s (a twentieth early) */
    now_ms = t0 + 89000;
    memset(&x, 0, sizeof(x));
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_OK);
    CHECK_STR(tok, TOKEN_A);
    CHECK_INT(nfetches, 1);
    now_ms = t0 + 91000;
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_OK);
    CHECK_STR(tok, TOKEN_A); /* the old token while the refresh runs */
    CHECK_INT(nfetches, 2);
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_OK);
    CHECK_INT(nfetches, 2); /* one refresh in flight, not one per caller */
    answer(c, 1, 200, "{\"access_token\":\"" TOKEN_B "\",\"expires_in\":\"100\"}");
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_OK);
    CHECK_STR(tok, TOKEN_B);
    /* past the hard margin with no refresh: callers wait for the new token */
    now_ms += 96000;
    waiter_t y;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_AGAIN);
    CHECK_INT(nfetches, 3);
    answer(c, 2, 200, "{\"access_token\":\"" TOKEN_C "\",\"expires_in\":3600}");
    CHECK_INT(y.calls, 1);
    CHECK_STR(y.token, TOKEN_C);
    /* a long lifetime refreshes 5 minutes early, not a tenth */
    now_ms += 3600000 - 301000;
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_OK);
    CHECK_INT(nfetches, 3);
    now_ms += 2000;
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_OK);
    CHECK_STR(tok, TOKEN_C);
    CHECK_INT(nfetches, 4);
    mg_token_cache_destroy(c);
    CHECK(fetches[3].cancelled, "destroy cancels the fetch in flight");
}

static bool
keep_b(void *ud, const char *key)
{
    return strcmp(ud, key) == 0;
}

static void
test_fingerprint_change(void)
{
    MG_T_CASE("a rotated credential (new fingerprint) never finds the old token");
    mg_token_cache_t *c = new_cache(0);
    mg_token_src_t a = src_for("c", "OLD-SA-ASSERTION");
    mg_token_src_t b = src_for("d", "NEW-SA-ASSERTION");
    waiter_t x;
    memset(&x, 0, sizeof(x));
    const char *tok;
    mg_err_t err;
    CHECK_INT(get(c, &a, &x, &tok, &err), MG_AGAIN);
    answer(c, 0, 200, "{\"access_token\":\"" TOKEN_A "\",\"expires_in\":3600}");
    memset(&x, 0, sizeof(x));
    CHECK_INT(get(c, &b, &x, &tok, &err), MG_AGAIN);
    CHECK_INT(nfetches, 2);
    CHECK_CONTAINS(fetches[1].body, "NEW-SA-ASSERTION");
    answer(c, 1, 200, "{\"access_token\":\"" TOKEN_B "\",\"expires_in\":3600}");
    CHECK_STR(x.token, TOKEN_B);
    CHECK_INT(get(c, &b, &x, &tok, &err), MG_OK);
    CHECK_STR(tok, TOKEN_B);
    /* the registry keeps only b: a's entry goes */
    char bkey[65];
    memcpy(bkey, b.key, sizeof(bkey));
    mg_token_cache_retain(c, keep_b, bkey);
    mg_token_stats_t st;
    mg_token_cache_stats(c, &st);
    CHECK_INT(st.entries, 1);
    memset(&x, 0, sizeof(x));
    CHECK_INT(get(c, &a, &x, &tok, &err), MG_AGAIN); /* a again: a new fetch, not TOKEN_A */
    CHECK_INT(nfetches, 3);
    /* the dropped token stays in the scrubber until it expires */
    char *clean = mg_scrub_global_cstr("upstream said: " TOKEN_A);
    CHECK(strstr(clean, TOKEN_A) == NULL, "dropped token still scrubbed: %s", clean);
    free(clean);
    answer(c, 2, 200, "{\"access_token\":\"" TOKEN_C "\",\"expires_in\":3600}");
    mg_token_cache_destroy(c);
}

static void
test_failure(void)
{
    MG_T_CASE("a refused credential wakes every waiter with one auth error, held briefly");
    mg_token_cache_t *c = new_cache(0);
    mg_token_src_t s = src_for("e", "BAD-SA-ASSERTION");
    waiter_t x[3];
    memset(x, 0, sizeof(x));
    const char *tok;
    mg_err_t err;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(get(c, &s, &x[i], &tok, &err), MG_AGAIN);
    }
    answer(c, 0, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}");
    for (int i = 0; i < 3; i++) {
        CHECK_INT(x[i].calls, 1);
        CHECK_INT(x[i].rc, MG_ERROR);
        CHECK_INT(x[i].err.cls, MG_ERR_AUTH);
        CHECK_CONTAINS(x[i].err.msg, "invalid_grant: Invalid JWT Signature.");
        CHECK_CONTAINS(x[i].err.msg, "service account sa@test.iam.gserviceaccount.com");
        CHECK(strstr(x[i].err.msg, "BAD-SA-ASSERTION") == NULL);
    }
    /* within the hold: the same error at once, no fetch */
    waiter_t y;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_ERROR);
    CHECK_INT(err.cls, MG_ERR_AUTH);
    CHECK_INT(nfetches, 1);
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_AGAIN);
    CHECK_INT(nfetches, 2);
    /* a 5xx that is not JSON: upstream_5xx, not auth */
    answer(c, 1, 503, "<html>unavailable</html>");
    CHECK_INT(y.rc, MG_ERROR);
    CHECK_INT(y.err.cls, MG_ERR_UPSTREAM_5XX);
    /* a 5xx in Google's own envelope ({"error": {...}}) is still the endpoint's trouble */
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_AGAIN);
    answer(c, nfetches - 1, 503, "{\"error\":{\"code\":503,\"message\":\"x\",\"status\":\"UNAVAILABLE\"}}");
    CHECK_INT(y.err.cls, MG_ERR_UPSTREAM_5XX);
    CHECK_CONTAINS(y.err.msg, "token endpoint answered 503");
    /* a 4xx whose body is not OAuth's: auth */
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_AGAIN);
    answer(c, nfetches - 1, 403, "forbidden");
    CHECK_INT(y.err.cls, MG_ERR_AUTH);
    /* a 200 without access_token */
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_AGAIN);
    answer(c, nfetches - 1, 200, "{\"expires_in\":3600}");
    CHECK_INT(y.err.cls, MG_ERR_UPSTREAM_5XX);
    CHECK_CONTAINS(y.err.msg, "access_token");
    /* a transport error */
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_AGAIN);
    mg_err_t te;
    mg_err_set(&te, MG_ERR_UPSTREAM_TIMEOUT, "read timed out after 30000ms");
    fetches[nfetches - 1].live = false;
    mg_token_fetch_done(c, fetches[nfetches - 1].fetch, MG_ERROR, 0, NULL, 0, &te);
    CHECK_INT(y.err.cls, MG_ERR_UPSTREAM_TIMEOUT);
    CHECK_CONTAINS(y.err.msg, "read timed out");
    /* the io cannot start: an error at once, held */
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    fail_start = true;
    memset(&y, 0, sizeof(y));
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_ERROR);
    CHECK_INT(err.cls, MG_ERR_UPSTREAM_CONNECT);
    CHECK(y.w.entry == NULL);
    /* the body cannot be built: no fetch */
    now_ms += MG_TOKEN_FAIL_HOLD_MS + 1;
    fail_start = false;
    body_fails = true;
    int before = nfetches;
    CHECK_INT(get(c, &s, &y, &tok, &err), MG_ERROR);
    CHECK_INT(err.cls, MG_ERR_CONFIG);
    CHECK_INT(nfetches, before);
    body_fails = false;
    mg_token_cache_destroy(c);
}

static void
test_cancel_and_bound(void)
{
    MG_T_CASE("a cancelled waiter is never called; waiters are bounded");
    mg_token_cache_t *c = new_cache(3);
    mg_token_src_t s = src_for("f", "SA-ASSERTION");
    waiter_t x[4];
    memset(x, 0, sizeof(x));
    const char *tok;
    mg_err_t err;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(get(c, &s, &x[i], &tok, &err), MG_AGAIN);
    }
    CHECK_INT(get(c, &s, &x[3], &tok, &err), MG_BUSY);
    CHECK_INT(err.status, 503);
    CHECK(x[3].w.entry == NULL);
    mg_token_cancel(&x[1].w); /* the client went away */
    mg_token_cancel(&x[1].w); /* twice is harmless */
    CHECK(x[1].w.entry == NULL);
    CHECK_INT(get(c, &s, &x[3], &tok, &err), MG_AGAIN); /* room again */
    /* the first waiter asks again from its callback (a retried attempt) */
    x[0].again_cache = c;
    x[0].again_src = &s;
    answer(c, 0, 200, "{\"access_token\":\"" TOKEN_A "\",\"expires_in\":3600}");
    CHECK_INT(x[0].calls, 1);
    CHECK_INT(x[0].again_rc, MG_OK);
    CHECK_STR(x[0].again_token, TOKEN_A);
    CHECK_INT(x[1].calls, 0);
    CHECK_INT(x[2].calls, 1);
    CHECK_INT(x[3].calls, 1);
    CHECK_INT(nfetches, 1);
    mg_token_cache_destroy(c);
}

static void
test_scrub(void)
{
    MG_T_CASE("tokens are secrets: in the scrubber's runtime set while held");
    mg_token_cache_t *c = new_cache(0);
    mg_token_src_t s = src_for("g", "SA-ASSERTION");
    waiter_t x;
    memset(&x, 0, sizeof(x));
    const char *tok;
    mg_err_t err;
    CHECK_INT(get(c, &s, &x, &tok, &err), MG_AGAIN);
    /* an opaque token with no key shape: only the runtime set can hide it */
    answer(c, 0, 200, "{\"access_token\":\"plainopaquetokenvalue0123\",\"expires_in\":3600}");
    char *clean = mg_scrub_global_cstr("echo: plainopaquetokenvalue0123 end");
    CHECK(strstr(clean, "plainopaquetokenvalue0123") == NULL, "token scrubbed: %s", clean);
    free(clean);
    mg_token_cache_destroy(c);
    clean = mg_scrub_global_cstr("echo: plainopaquetokenvalue0123 end");
    CHECK_CONTAINS(clean, "plainopaquetokenvalue0123"); /* cleared with the cache */
    free(clean);
}

int
main(void)
{
    test_single_flight();
    test_expiry();
    test_fingerprint_change();
    test_failure();
    test_cancel_and_bound();
    test_scrub();
    return mg_test_done();
}
