/*
 * mg_settings.h -- the one list of LiteLLM settings moongate knows and what it does with
 * each: implemented, accepted but not implemented (one startup warning naming it and its
 * effect, listed in /moongate/state), or refused (where ignoring it would change what
 * clients get).  The config loader reads it, `moongate settings` prints it, and the test
 * suite checks the README's table against that output, so the three cannot drift.
 * Static data, no ownership.
 */
#ifndef MG_SETTINGS_H
#define MG_SETTINGS_H

#include <stdbool.h>

typedef enum {
    MG_SET_IMPLEMENTED = 0,
    MG_SET_WARN,        /* accepted, not implemented: a warning names it and its effect */
    MG_SET_REFUSED,     /* ignoring it would change what clients get: the config is refused */
} mg_set_status_t;

typedef struct {
    const char *section;        /* "general_settings", "litellm_settings", "router_settings",
                                 * "top-level", "request body" */
    const char *key;
    mg_set_status_t status;
    const char *effect;         /* what a user sees (for WARN/REFUSED: what moongate does instead) */
} mg_setting_t;

/* The entry for section.key, or NULL when moongate has never heard of it. */
const mg_setting_t *mg_setting_find(const char *section, const char *key);
/* The whole table, NULL-key terminated. */
const mg_setting_t *mg_settings_all(void);
/* The table as the README shows it (markdown), for `moongate settings`. */
void mg_settings_print_markdown(void);

#endif
