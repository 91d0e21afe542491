/*
 * mg_store.c -- what both stores share: the identity tables' names and id columns.
 */
#include "mg_store.h"

#include <string.h>

static const char *const mg_store_tables[MG_STORE_IDENT_NTABLES] = MG_STORE_IDENT_TABLES;
static const char *const mg_store_id_cols[MG_STORE_IDENT_NTABLES] = {
    "token", "team_id", "user_id", "user_id", "budget_id", "organization_id",
};

const char *
mg_store_ident_id_column(const char *t)
{
    for (int i = 0; t != NULL && i < MG_STORE_IDENT_NTABLES; i++) {
        if (strcmp(t, mg_store_tables[i]) == 0) {
            return mg_store_id_cols[i];
        }
    }
    return NULL;
}

const char *
mg_store_ident_table(int i)
{
    return i >= 0 && i < MG_STORE_IDENT_NTABLES ? mg_store_tables[i] : NULL;
}

json_t *
mg_store_idents_new(void)
{
    json_t *o = json_object();
    for (int i = 0; i < MG_STORE_IDENT_NTABLES; i++) {
        json_object_set_new(o, mg_store_tables[i], json_object());
    }
    return o;
}
