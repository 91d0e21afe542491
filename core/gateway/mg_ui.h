/*
 * mg_ui.h -- the admin page (GET /ui/ and its assets), /docs and /openapi.json.
 *
 * The page is static HTML/CSS/JS from ui/, compiled into the binary
 * (cmake/mg_embed_blob.cmake); it is served without a key and reads everything
 * it shows from the authenticated admin routes, with the key the user pastes.
 */
#ifndef MG_UI_H
#define MG_UI_H

#include "mg_gw.h"

#include <stdbool.h>
#include <stddef.h>

/* Answers r if its path is the page, one of its assets, /docs or /openapi.json and
 * returns true; returns false (nothing sent) for any other path. */
bool mg_ui_handle(mg_request_t *r, const char *method, size_t mlen);

#endif
