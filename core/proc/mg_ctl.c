/*
 * mg_ctl.c -- control channel framing (see mg_ctl.h).
 */
#include "mg_ctl.h"

#include "../base/mg_arena.h"
#include "../base/mg_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MG_CTL_MAX_MSG (64 * 1024 * 1024)

struct mg_ctl_s {
    int fd;
    struct event rev;
    struct event wev;
    bool wev_on;
    mg_buf_t in;
    mg_buf_t out;
    mg_ctl_msg_cb on_msg;
    mg_ctl_close_cb on_close;
    void *ud;
    bool closed;
    bool entered;
    bool destroy_pending;
};

static void mg_ctl_free(mg_ctl_t *c);

static void
mg_ctl_closed(mg_ctl_t *c)
{
    if (c->closed) {
        return;
    }
    c->closed = true;
    event_del(&c->rev);
    if (c->wev_on) {
        event_del(&c->wev);
        c->wev_on = false;
    }
    c->entered = true;
    c->on_close(c->ud);
    c->entered = false;
}

static void
mg_ctl_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    mg_ctl_t *c = arg;
    for (;;) {
        mg_buf_reserve(&c->in, 65536);
        ssize_t n = read(fd, c->in.data + c->in.end, c->in.cap - c->in.end);
        if (n > 0) {
            c->in.end += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        mg_ctl_closed(c);
        goto done;
    }
    while (mg_buf_len(&c->in) >= 4 && !c->closed) {
        uint32_t len;
        memcpy(&len, mg_buf_head(&c->in), 4);
        len = ntohl(len);
        if (len > MG_CTL_MAX_MSG) {
            mg_log(MG_LOG_ERROR, NULL, "control message of %u bytes: closing the channel", len);
            mg_ctl_closed(c);
            break;
        }
        if (mg_buf_len(&c->in) < 4 + (size_t) len) {
            break;
        }
        json_error_t je;
        json_t *msg = json_loadb(mg_buf_head(&c->in) + 4, len, 0, &je);
        mg_buf_consume(&c->in, 4 + (size_t) len);
        if (msg == NULL) {
            mg_log(MG_LOG_ERROR, NULL, "invalid control message: %s", je.text);
            continue;
        }
        c->entered = true;
        c->on_msg(c->ud, msg);
        c->entered = false;
        json_decref(msg);
        if (c->destroy_pending) {
            break;
        }
    }
done:
    if (c->destroy_pending) {
        mg_ctl_free(c);
    }
}

static void
mg_ctl_write_some(mg_ctl_t *c)
{
    while (mg_buf_len(&c->out) > 0) {
        ssize_t n = write(c->fd, mg_buf_head(&c->out), mg_buf_len(&c->out));
        if (n > 0) {
            mg_buf_consume(&c->out, (size_t) n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->wev_on) {
                event_add(&c->wev, NULL);
                c->wev_on = true;
            }
            return;
        }
        mg_buf_reset(&c->out);
        return; /* the read side reports the close */
    }
    if (c->wev_on) {
        event_del(&c->wev);
        c->wev_on = false;
    }
}

static void
mg_ctl_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    mg_ctl_write_some(arg);
}

mg_ctl_t *
mg_ctl_create(struct event_base *base, int fd, mg_ctl_msg_cb on_msg, mg_ctl_close_cb on_close,
              void *ud)
{
    mg_ctl_t *c = mg_xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->on_msg = on_msg;
    c->on_close = on_close;
    c->ud = ud;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    event_assign(&c->rev, base, fd, EV_READ | EV_PERSIST, mg_ctl_on_read, c);
    event_assign(&c->wev, base, fd, EV_WRITE | EV_PERSIST, mg_ctl_on_write, c);
    event_add(&c->rev, NULL);
    return c;
}

void
mg_ctl_send(mg_ctl_t *c, json_t *msg)
{
    if (c == NULL || c->closed) {
        return;
    }
    char *s = json_dumps(msg, JSON_COMPACT);
    uint32_t len = htonl((uint32_t) strlen(s));
    mg_buf_append(&c->out, &len, 4);
    mg_buf_append(&c->out, s, strlen(s));
    free(s);
    mg_ctl_write_some(c);
}

void
mg_ctl_flush_blocking(mg_ctl_t *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < 100 && mg_buf_len(&c->out) > 0 && !c->closed; i++) {
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        mg_ctl_write_some(c);
    }
}

static void
mg_ctl_free(mg_ctl_t *c)
{
    if (!c->closed) {
        event_del(&c->rev);
        if (c->wev_on) {
            event_del(&c->wev);
        }
    }
    close(c->fd);
    mg_buf_free(&c->in);
    mg_buf_free(&c->out);
    free(c);
}

void
mg_ctl_destroy(mg_ctl_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->entered) {
        c->destroy_pending = true;
        if (!c->closed) {
            event_del(&c->rev);
            if (c->wev_on) {
                event_del(&c->wev);
                c->wev_on = false;
            }
            c->closed = true;
        }
        return;
    }
    mg_ctl_free(c);
}

int
mg_ctl_fd(const mg_ctl_t *c)
{
    return c->fd;
}
