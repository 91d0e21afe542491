/*
 * mg_token_io.c -- the token cache's fetches (core/providers/mg_token.h) over the worker's
 * upstream pool: one POST of a form-encoded body to a token endpoint, the answer handed
 * back to the cache.  The cache decides everything else (single flight, parsing, expiry).
 *
 * Owns, per fetch: a reference on the token endpoint's upstream (dropped when the exchange
 * ends or is cancelled), the client exchange, copies of the request bytes and the answer;
 * both hold secrets (a signed assertion or a client secret, an access token) and are wiped
 * before they are freed.  The request says "connection: close": a token is fetched about
 * once an hour, so nothing is pooled and the upstream goes with its last exchange.
 */
#include "mg_gw.h"

#include "../base/mg_log.h"
#include "../base/mg_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_TOKIO_MAX_ANSWER (64 * 1024)

typedef struct {
    mg_gw_t *gw;                    /* borrowed */
    mg_token_entry_t *fetch;        /* borrowed: the cache's handle for this fetch */
    mg_upstream_t *up;              /* ref: dropped in mg_tokio_free() */
    mg_client_t *client;            /* owned while running */
    mg_buf_t head;                  /* owned: request line and fields */
    char *body;                     /* malloc, secret */
    size_t body_len;
    struct iovec iov[2];
    int status;
    mg_buf_t answer;                /* owned, secret */
    bool too_big;
} mg_tokio_t;

static void
mg_tokio_wipe(mg_buf_t *b)
{
    if (b->data != NULL) {
        memset(b->data, 0, b->cap);
    }
    mg_buf_free(b);
}

static void
mg_tokio_free(mg_tokio_t *t)
{
    if (t->client != NULL) {
        mg_client_free(t->client);
        t->client = NULL;
    }
    mg_upstream_unref(t->up);
    mg_buf_free(&t->head);
    if (t->body != NULL) {
        memset(t->body, 0, t->body_len);
        free(t->body);
    }
    mg_tokio_wipe(&t->answer);
    free(t);
}

static void
mg_tokio_on_head(void *ud, const mg_http_head_t *head)
{
    mg_tokio_t *t = ud;
    t->status = head->status;
}

static void
mg_tokio_on_body(void *ud, const char *data, size_t len)
{
    mg_tokio_t *t = ud;
    if (mg_buf_len(&t->answer) + len > MG_TOKIO_MAX_ANSWER) {
        t->too_big = true;
        return;
    }
    mg_buf_append(&t->answer, data, len);
}

static void
mg_tokio_on_done(void *ud, int rc, const mg_err_t *err)
{
    mg_tokio_t *t = ud;
    if (t->client != NULL) {
        mg_client_free(t->client); /* deferred by the client until we return */
        t->client = NULL;
    }
    mg_token_cache_t *cache = t->gw->tokens;
    if (rc == MG_OK && t->too_big) {
        mg_err_t e2;
        mg_err_set(&e2, MG_ERR_UPSTREAM_5XX, "the token endpoint's answer is larger than %d bytes",
                   MG_TOKIO_MAX_ANSWER);
        mg_token_fetch_done(cache, t->fetch, MG_ERROR, t->status, NULL, 0, &e2);
    } else {
        mg_token_fetch_done(cache, t->fetch, rc, t->status,
                            t->answer.data ? mg_buf_head(&t->answer) : "",
                            mg_buf_len(&t->answer), err);
    }
    mg_tokio_free(t);
}

static void *
mg_tokio_start(void *host, const char *url, const char *body, size_t len,
               mg_token_entry_t *fetch, mg_err_t *err)
{
    mg_gw_t *gw = host;
    /* one upstream per token host, never shared with a deployment's (its own key) */
    mg_upstream_t *up = mg_upstream_get(gw->upool, "token-endpoint", url, true, "token", gw->gen,
                                        err);
    if (up == NULL) {
        mg_err_prefix(err, "token endpoint: ");
        return NULL;
    }
    mg_tokio_t *t = mg_xcalloc(1, sizeof(*t));
    t->gw = gw;
    t->fetch = fetch;
    t->up = up;
    const char *hp = strstr(url, "://");
    hp = hp != NULL ? hp + 3 : url;
    size_t hostlen = strcspn(hp, "/?#");
    const char *path = hp + hostlen;
    size_t plen = strcspn(path, "#");
    mg_buf_printf(&t->head, "POST %s%.*s HTTP/1.1\r\nhost: %.*s\r\n", plen > 0 && path[0] == '/' ? "" : "/",
                  (int) plen, path, (int) hostlen, hp);
    mg_buf_printf(&t->head, "content-type: application/x-www-form-urlencoded\r\naccept: "
                            "application/json\r\nuser-agent: moongate/" MG_VERSION "\r\n"
                            "connection: close\r\ncontent-length: %zu\r\n\r\n", len);
    t->body = mg_xstrndup(body, len);
    t->body_len = len;
    t->iov[0].iov_base = mg_buf_head(&t->head);
    t->iov[0].iov_len = mg_buf_len(&t->head);
    t->iov[1].iov_base = t->body;
    t->iov[1].iov_len = len;
    mg_client_timeouts_t to = {0, MG_TOKEN_FETCH_TIMEOUT_MS, MG_TOKEN_FETCH_TIMEOUT_MS};
    mg_client_cbs_t cbs = {mg_tokio_on_head, mg_tokio_on_body, mg_tokio_on_done};
    t->client = mg_client_start(up, t->iov, len > 0 ? 2 : 1, &to, &cbs, t, err);
    if (t->client == NULL) {
        mg_err_prefix(err, "token endpoint: ");
        mg_tokio_free(t);
        return NULL;
    }
    return t;
}

static void
mg_tokio_cancel(void *host, void *handle)
{
    (void) host;
    mg_tokio_free(handle);
}

mg_token_io_t
mg_gw_token_io(mg_gw_t *gw)
{
    mg_token_io_t io = {mg_tokio_start, mg_tokio_cancel, gw};
    return io;
}
