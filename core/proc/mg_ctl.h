/*
 * mg_ctl.h -- the control channel between the master and one worker:
 * length-prefixed JSON messages over a socketpair, on a libevent loop.
 *
 * Owns: its fd, events and buffers.  Messages are delivered whole and in
 * order; the peer closing the socket calls on_close once.
 */
#ifndef MG_CTL_H
#define MG_CTL_H

#include "../base/mg_buf.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct mg_ctl_s mg_ctl_t;

typedef void (*mg_ctl_msg_cb)(void *ud, json_t *msg);
typedef void (*mg_ctl_close_cb)(void *ud);

mg_ctl_t *mg_ctl_create(struct event_base *base, int fd, mg_ctl_msg_cb on_msg,
                        mg_ctl_close_cb on_close, void *ud);
/* Queues a message (borrowed); writes as soon as the socket allows. */
void mg_ctl_send(mg_ctl_t *c, json_t *msg);
/* Sends whatever is queued, blocking (used just before exiting). */
void mg_ctl_flush_blocking(mg_ctl_t *c);
void mg_ctl_destroy(mg_ctl_t *c);
/* The socket (for a forked child that must close its copy). */
int mg_ctl_fd(const mg_ctl_t *c);

#endif
