/*
 * mg_err.h -- return codes and the error detail that travels beside them.
 *
 * A function that can fail returns one of the MG_* codes and, when given a
 * non-NULL mg_err_t, fills in a class and a message that says what failed, on
 * what, and with which value.  Classes are what fallback policies reason about.
 */
#ifndef MG_ERR_H
#define MG_ERR_H

#include "mg_types.h"

#define MG_OK        0
#define MG_ERROR    -1
#define MG_AGAIN    -2
#define MG_DECLINED -3
#define MG_BUSY     -4

typedef enum {
    MG_ERR_NONE = 0,
    MG_ERR_BAD_REQUEST,
    MG_ERR_AUTH,
    MG_ERR_NO_ROUTE,
    MG_ERR_UPSTREAM_CONNECT,
    MG_ERR_UPSTREAM_TIMEOUT,
    MG_ERR_RATE_LIMITED,
    MG_ERR_CONTEXT_WINDOW,
    MG_ERR_CONTENT_POLICY,
    MG_ERR_UPSTREAM_4XX,
    MG_ERR_UPSTREAM_5XX,
    MG_ERR_POLICY,
    MG_ERR_INTERNAL,
    MG_ERR_CONFIG,
    MG_ERR_NOT_READY,
    MG_ERR__COUNT
} mg_err_class_t;

#define MG_ERR_MSG_MAX 1024

struct mg_err_s {
    mg_err_class_t cls;
    int status;                 /* HTTP status to answer with, 0 = derive from class */
    char msg[MG_ERR_MSG_MAX];
};

/* Sets class and a printf-formatted message; returns MG_ERROR for tail calls. */
int mg_err_set(mg_err_t *err, mg_err_class_t cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("loading x: " + old). */
int mg_err_prefix(mg_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void mg_err_clear(mg_err_t *err);

/* Stable lower-case name of a class ("upstream_timeout"). */
const char *mg_err_class_name(mg_err_class_t cls);

#endif
