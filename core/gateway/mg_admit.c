/*
 * mg_admit.c -- budgets and rate limits at admission and settlement (see mg_admit.h).
 *
 * Messages and statuses are LiteLLM's: a spent budget is 400 budget_exceeded ("Budget has been
 * exceeded! ..." for keys, teams and organizations, "ExceededBudget: User=... over budget"
 * for users and end users, "... exceeded budget for model=..." for per-model budgets); a
 * window or a parallel limit is 429 "Rate limit exceeded for <descriptor>: <value>. Limit
 * type: ...", as its v3 limiter words it, with retry-after.
 */
#include "mg_admit.h"
#include "mg_keyauth.h"
#include "mg_keys.h"

#include "../base/mg_log.h"
#include "../base/mg_metrics_litellm.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "../registry/mg_limits.h"
#include "../store/mg_limits_redis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MG_ADM_BUDGET = 1, MG_ADM_RPM = 2, MG_ADM_TPM = 4, MG_ADM_PAR = 8 };

#define MG_ADM_MAX 12
#define MG_ADM_DEFAULT_MAX_OUT 4096 /* output tokens assumed when neither request nor model says */

typedef struct {
    int slot;
    unsigned taken;
    double worst;               /* USD reserved */
    int64_t tpm_n;              /* tokens reserved */
    int64_t tpm_start;          /* when, in seconds */
    double soft;                /* soft_budget, < 0: none */
    mg_ent_kind_t kind;
} mg_adm_item_t;

struct mg_admission_s {
    mg_adm_item_t it[MG_ADM_MAX];
    int n;
    bool settled;
    /* what the response headers say (the key's, else the first limited entity's) */
    int64_t rpm_limit, rpm_remaining, tpm_limit, tpm_remaining;
    const char *hdr_descriptor;
    double key_spend, key_max_budget; /* key_spend: at admission (key_spend_set) */
    bool key_spend_set;
    bool has_key;
    struct mg_adm_redis_s *rd;  /* arena: the Redis path's state, NULL on the local path */
};

/* The worker's Redis limiter, or NULL: limits in shared memory only (mg_admit_set_redis). */
static mg_limits_redis_t *mg_adm_lr;

int64_t
mg_admit_window_s(void)
{
    static int64_t w;
    if (w == 0) {
        const char *e = getenv("LITELLM_RATE_LIMIT_WINDOW_SIZE");
        w = e != NULL && atoll(e) > 0 ? atoll(e) : 60;
    }
    return w;
}

/* ---- prices ---- */

static void
mg_adm_price(const mg_deployment_t *d, double *in, double *out)
{
    *in = d->input_cost >= 0 ? d->input_cost : 0;
    *out = d->output_cost >= 0 ? d->output_cost : 0;
}

double
mg_admit_cost(const mg_request_t *r)
{
    if (r->cost_known) {
        return r->cost_usd; /* the cost map's price of the usage (cached, reasoning tokens...) */
    }
    const mg_deployment_t *d = r->dep;
    if (d == NULL || !r->usage.seen || d->input_cost < 0 || d->output_cost < 0) {
        return -1;
    }
    return (double) r->usage.prompt_tokens * d->input_cost +
           (double) r->usage.completion_tokens * d->output_cost;
}

/* The request's output token budget: what it asks for, else the model's output limit. */
static int64_t
mg_adm_max_out(mg_request_t *r, const mg_deployment_t *d)
{
    static const char *const keys[] = {"max_tokens", "max_completion_tokens", "max_output_tokens"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        double v = mg_api_member_num(mg_api_member(&r->q, keys[i]), -1);
        if (v > 0) {
            return (int64_t) v;
        }
    }
    if (d != NULL) {
        json_t *mo = json_object_get(d->model_info, "max_output_tokens");
        if (!json_is_number(mo)) {
            mo = json_object_get(d->model_info, "max_tokens");
        }
        if (json_is_number(mo) && json_number_value(mo) > 0) {
            return (int64_t) json_number_value(mo);
        }
    }
    return MG_ADM_DEFAULT_MAX_OUT;
}

/* The most the request can cost on any deployment of its group. */
static double
mg_adm_worst(mg_request_t *r)
{
    if (r->est_tokens == 0) {
        r->est_tokens = mg_api_estimate_input_tokens(&r->q) + 1;
    }
    /* an upper bound, not the estimate: every token is at least one byte, and the estimate is
     * about a quarter of the bytes plus a few tokens per message */
    int64_t in_tok = (r->est_tokens - 1) * 4 + 16;
    double worst = 0;
    size_t n = r->group != NULL ? r->group->ndeps : (size_t) r->norder;
    for (size_t i = 0; i < n; i++) {
        const mg_deployment_t *d = r->group != NULL ? r->group->deps[i] : r->order[i];
        double pin, pout;
        mg_adm_price(d, &pin, &pout);
        double c = (double) in_tok * pin + (double) mg_adm_max_out(r, d) * pout;
        worst = c > worst ? c : worst;
    }
    return worst;
}

/* ---- errors ---- */

static const char *
mg_adm_num(mg_request_t *r, double v)
{
    char b[48];
    mg_fmt_pyfloat(v, b, sizeof(b));
    return mg_arena_strdup(r->arena, b);
}

static void
mg_adm_budget_error(mg_request_t *r, mg_ent_kind_t kind, const char *id, double spend, double max)
{
    char *msg;
    switch (kind) {
    case MG_ENT_KEY:
        msg = mg_arena_printf(r->arena, "Budget has been exceeded! Current cost: %s, Max budget: %s",
                              mg_adm_num(r, spend), mg_adm_num(r, max));
        break;
    case MG_ENT_TEAM:
        msg = mg_arena_printf(r->arena, "Budget has been exceeded! Team=%s Current cost: %s, Max "
                                        "budget: %s", id, mg_adm_num(r, spend), mg_adm_num(r, max));
        break;
    case MG_ENT_ORG:
        msg = mg_arena_printf(r->arena, "Budget has been exceeded! Organization=%s Current cost: "
                                        "%s, Max budget: %s", id, mg_adm_num(r, spend),
                              mg_adm_num(r, max));
        break;
    case MG_ENT_USER:
        msg = mg_arena_printf(r->arena, "ExceededBudget: User=%s over budget. Spend=%s, Budget=%s",
                              id, mg_adm_num(r, spend), mg_adm_num(r, max));
        break;
    default:
        msg = mg_arena_printf(r->arena, "ExceededBudget: End User=%s over budget. Spend=%s, "
                                        "Budget=%s", id, mg_adm_num(r, spend), mg_adm_num(r, max));
        break;
    }
    mg_gw_error_raw(r, 400, msg, "\"budget_exceeded\"", "null", NULL);
}

static void
mg_adm_rate_error(mg_request_t *r, const char *desc, const char *value, const char *type,
                  int64_t limit, int64_t remaining, int64_t reset_s)
{
    time_t t = (time_t) reset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    char *msg = mg_arena_printf(r->arena, "Rate limit exceeded for %s: %s. Limit type: %s. Current "
                                          "limit: %lld, Remaining: %lld. Limit resets at: %s",
                                desc, value, type, (long long) limit,
                                (long long) (remaining > 0 ? remaining : 0), when);
    int64_t now = mg_time_real_ms() / 1000;
    char *h = mg_arena_printf(r->arena, "retry-after: %lld\r\nrate_limit_type: %s\r\nreset_at: %s\r\n",
                              (long long) (reset_s > now ? reset_s - now : 1), type, when);
    mg_gw_error_raw(r, 429, msg, "\"throttling_error\"", "null", h);
}

/* ---- admission ---- */

typedef struct {
    mg_ent_kind_t kind;
    const char *id;             /* the entity's id */
    const char *desc;           /* LiteLLM's descriptor key: api_key, team, user, end_user */
    const char *model;          /* per-model limits of a key, else NULL */
    const mg_limdef_t *lim;
    double row_spend;
    int64_t epoch;
    double max_budget;          /* this descriptor's budget (a per-model one for model) */
    int64_t rpm, tpm, parallel;
    int *slot_memo;             /* the entity's memo of its slot (mg_auth.h), or NULL */
} mg_adm_ent_t;


static void
mg_adm_release(mg_request_t *r)
{
    struct mg_admission_s *a = r->adm;
    int64_t w = mg_admit_window_s();
    for (int i = 0; i < a->n; i++) {
        mg_adm_item_t *it = &a->it[i];
        mg_lim_slot_t *s = mg_lim_get(it->slot);
        if (s == NULL) {
            continue;
        }
        if (it->taken & MG_ADM_BUDGET) {
            mg_lim_settle(it->slot, it->worst, 0);
        }
        it->worst = 0; /* released: the settlement that follows the refusal gives nothing back */
        if (it->taken & MG_ADM_PAR) {
            mg_lim_leave(it->slot);
        }
        if (it->taken & MG_ADM_RPM) {
            mg_lim_window_adjust(&s->rpm_word, -1, it->tpm_start, w);
        }
        if (it->taken & MG_ADM_TPM) {
            mg_lim_window_adjust(&s->tpm_word, -it->tpm_n, it->tpm_start, w);
        }
        it->taken = 0;
    }
}

/* The item that counts e's spend and holds what the request took for it; NULL when e gets
 * none (the table is full: logged by mg_lim_slot, not enforced). */
static mg_adm_item_t *
mg_adm_item(mg_request_t *r, const mg_adm_ent_t *e, int64_t now_s)
{
    struct mg_admission_s *a = r->adm;
    if (a->n >= MG_ADM_MAX) {
        return NULL;
    }
    int slot;
    if (e->slot_memo != NULL && *e->slot_memo > 0) {
        slot = *e->slot_memo - 1; /* slots never move: resolved once per process and entity */
    } else {
        slot = mg_lim_slot(e->kind, e->id, e->model);
        if (e->slot_memo != NULL && slot >= 0) {
            *e->slot_memo = slot + 1;
        }
    }
    if (mg_lim_get(slot) == NULL) {
        return NULL;
    }
    mg_adm_item_t *it = &a->it[a->n++];
    memset(it, 0, sizeof(*it));
    it->slot = slot;
    it->tpm_start = now_s;
    it->kind = e->kind;
    it->soft = e->model == NULL ? e->lim->soft_budget : -1;
    if (e->model == NULL) {
        mg_lim_seed(slot, e->row_spend, e->epoch);
    } else {
        mg_lim_seed(slot, 0, e->epoch); /* per-model spend starts in this instance */
    }
    return it;
}

/* Reserves e's budget; false (the 400 sent, everything released) on a refusal. */
static bool
mg_adm_take_budget(mg_request_t *r, const mg_adm_ent_t *e, mg_adm_item_t *it, double worst)
{
    if (e->max_budget < 0) {
        return true; /* without a budget the item only counts spend, at settlement */
    }
    if (!mg_lim_reserve(it->slot, e->max_budget, worst)) {
        mg_lim_slot_t *s = mg_lim_get(it->slot);
        double spent = (double) __atomic_load_n(&s->spend, __ATOMIC_ACQUIRE) / MG_LIM_NANO;
        mg_adm_release(r);
        if (e->model != NULL) {
            char *msg = mg_arena_printf(r->arena, "LiteLLM Virtual Key: %s, key_alias: %s, "
                                                  "exceeded budget for model=%s",
                                        r->who.token, r->who.key && r->who.key->key_alias
                                                          ? r->who.key->key_alias : "None",
                                        e->model);
            mg_gw_error_raw(r, 400, msg, "\"budget_exceeded\"", "null", NULL);
        } else {
            mg_adm_budget_error(r, e->kind, e->id, spent, e->max_budget);
        }
        return false;
    }
    it->taken |= MG_ADM_BUDGET;
    it->worst = worst;
    return true;
}

/* LiteLLM's descriptor value of e in messages: the id, "<id>:<model>" for per-model limits. */
static const char *
mg_adm_value(mg_request_t *r, const mg_adm_ent_t *e)
{
    return e->model != NULL ? mg_arena_printf(r->arena, "%s:%s", e->id, e->model) : e->id;
}

/* The rate-limit headers follow the key's limits, else the first limited entity's. */
static void
mg_adm_hdr(struct mg_admission_s *a, const mg_adm_ent_t *e, int64_t rpm_rem, int64_t tpm_rem)
{
    if (a->hdr_descriptor != NULL && e->kind != MG_ENT_KEY) {
        return;
    }
    if (e->rpm >= 0) {
        a->rpm_limit = e->rpm;
        a->rpm_remaining = rpm_rem;
    }
    if (e->tpm >= 0) {
        a->tpm_limit = e->tpm;
        a->tpm_remaining = tpm_rem;
    }
    if (e->rpm >= 0 || e->tpm >= 0) {
        a->hdr_descriptor = e->desc;
    }
}

/* Takes e's parallel slot and its request and token windows in shared memory; false (the 429
 * sent, everything released) on a refusal. */
static bool
mg_adm_take_limits(mg_request_t *r, const mg_adm_ent_t *e, mg_adm_item_t *it, int64_t tpm_n,
                   int64_t now_s)
{
    if (e->parallel < 0 && e->rpm < 0 && e->tpm < 0) {
        return true;
    }
    mg_lim_slot_t *s = mg_lim_get(it->slot);
    int64_t w = mg_admit_window_s();
    if (e->parallel >= 0) {
        if (!mg_lim_enter(it->slot, e->parallel)) {
            mg_adm_release(r);
            mg_adm_rate_error(r, e->desc, mg_adm_value(r, e), "max_parallel_requests",
                              e->parallel, 0, now_s + 1);
            return false;
        }
        it->taken |= MG_ADM_PAR;
    }
    int64_t rem = -1, reset = 0, trem = -1;
    if (e->rpm >= 0) {
        if (!mg_lim_window(&s->rpm_word, e->rpm, 1, now_s, w, &rem, &reset)) {
            mg_adm_release(r);
            mg_adm_rate_error(r, e->desc, mg_adm_value(r, e), "requests", e->rpm, rem, reset);
            return false;
        }
        it->taken |= MG_ADM_RPM;
    }
    if (e->tpm >= 0) {
        int64_t treset = 0;
        if (!mg_lim_window(&s->tpm_word, e->tpm, tpm_n, now_s, w, &trem, &treset)) {
            mg_adm_release(r);
            mg_adm_rate_error(r, e->desc, mg_adm_value(r, e), "tokens", e->tpm, trem, treset);
            return false;
        }
        it->taken |= MG_ADM_TPM;
        it->tpm_n = tpm_n;
    }
    mg_adm_hdr(r->adm, e, rem, trem);
    return true;
}

/* Takes what e limits; false (response sent, everything released) on a refusal. */
static bool
mg_adm_take(mg_request_t *r, const mg_adm_ent_t *e, double worst, int64_t tpm_n, int64_t now_s)
{
    mg_adm_item_t *it = mg_adm_item(r, e, now_s);
    if (it == NULL) {
        return true;
    }
    return mg_adm_take_budget(r, e, it, worst) && mg_adm_take_limits(r, e, it, tpm_n, now_s);
}

static void
mg_adm_ent(mg_adm_ent_t *e, mg_ent_kind_t kind, const char *id, const char *desc,
           const mg_limdef_t *l, json_t *row, double spend, int *memo)
{
    memset(e, 0, sizeof(*e));
    e->slot_memo = memo;
    e->kind = kind;
    e->id = id;
    e->desc = desc;
    e->lim = l;
    e->row_spend = spend;
    e->epoch = mg_keys_spend_epoch(row);
    e->max_budget = l->max_budget;
    e->rpm = l->rpm;
    e->tpm = l->tpm;
    e->parallel = l->parallel;
}

/* A budget period that ended: the first worker to see it zeroes the counter and writes the
 * next period into the row (LiteLLM's reset_budget job), which every worker then loads. */
static void
mg_adm_commit_done(void *ud, int rc, int64_t version, json_t *row, const mg_err_t *err)
{
    (void) ud;
    (void) version;
    (void) row;
    if (rc != MG_OK) {
        mg_log(MG_LOG_ERROR, NULL, "a budget reset could not be stored (it holds in this instance "
                                   "and is stored again at the next period's end): %s",
               err != NULL ? err->msg : "?");
    }
}

static void
mg_adm_maybe_reset(mg_request_t *r, const mg_adm_ent_t *e, const char *table)
{
    const mg_limdef_t *l = e->lim;
    int64_t dur;
    if (l->budget_duration == NULL || l->reset_at_ms == 0 ||
        mg_auth_parse_duration(l->budget_duration, &dur) != MG_OK || dur <= 0) {
        return;
    }
    int slot = mg_lim_slot(e->kind, e->id, NULL);
    if (slot < 0) {
        return;
    }
    mg_lim_seed(slot, e->row_spend, e->epoch);
    int64_t next;
    if (!mg_lim_roll(slot, l->reset_at_ms, dur, mg_time_real_ms(), &next) ||
        r->gw->host.commit == NULL) {
        return;
    }
    char ts[48];
    mg_auth_fmt_time(next, ts, sizeof(ts));
    json_t *m = json_pack("{s:s,s:s,s:s,s:{s:f,s:s}}", "op", "ident_patch", "table", table, "id",
                          e->id, "set", "spend", 0.0, "budget_reset_at", ts);
    mg_log_ctx_t lc = {r->call_id, NULL, NULL};
    mg_log(MG_LOG_NOTICE, &lc, "the budget period of a %s ended: spend reset, next reset at %s",
           table, ts);
    r->gw->host.commit(r->gw->host.host, m, mg_adm_commit_done, NULL);
    json_decref(m);
}

/* The key's spend now (LiteLLM's x-litellm-key-spend: before this request settles). */
static double
mg_adm_key_spend(const mg_request_t *r)
{
    const mg_vkey_t *k = r->who.key;
    if (k == NULL) {
        return 0;
    }
    /* the key's item seeded its slot already (the memo is set); else the slow way */
    mg_lim_slot_t *ks = k->lim_slot > 0 ? mg_lim_get(k->lim_slot - 1) : NULL;
    return ks != NULL ? (double) __atomic_load_n(&ks->spend, __ATOMIC_ACQUIRE) / MG_LIM_NANO
                      : mg_lim_spend_of(MG_ENT_KEY, k->token, k->spend, mg_keys_spend_epoch(k->row));
}

/* LiteLLM's header is the spend the request was admitted on, not what it settles to. */
static void
mg_adm_key_spend_keep(mg_request_t *r)
{
    if (r->who.key != NULL) {
        r->adm->key_spend = mg_adm_key_spend(r);
        r->adm->key_spend_set = true;
    }
}

/* ---- the Redis path: budgets here, rate limits in Redis, one round trip ---- */

#define MG_ADM_NENTS 7

typedef struct mg_adm_redis_s {
    mg_lr_op_t *op;             /* while the request waits on Redis; cancelled if it goes */
    mg_lr_hold_t *hold;         /* admitted through Redis: settled in mg_admit_settle() */
    mg_admit_resume_cb resume;
    mg_adm_ent_t ents[MG_ADM_NENTS];
    mg_adm_item_t *items[MG_ADM_NENTS]; /* each entity's item (NULL: none) */
    int n;
    int map[MG_LR_MAX_DESC];    /* descriptor -> entity */
    int nd;
    int64_t tpm_n;
} mg_adm_redis_t;

/* Redis did not answer (in time) or is not usable: the entities' limits in shared memory. */
static bool
mg_adm_redis_local(mg_request_t *r, int64_t now_s)
{
    mg_adm_redis_t *rd = r->adm->rd;
    for (int i = 0; i < rd->n; i++) {
        if (rd->items[i] != NULL &&
            !mg_adm_take_limits(r, &rd->ents[i], rd->items[i], rd->tpm_n, now_s)) {
            return false;
        }
    }
    return true;
}

static void
mg_adm_redis_done(void *ud, const mg_lr_result_t *res)
{
    mg_request_t *r = ud;
    struct mg_admission_s *a = r->adm;
    mg_adm_redis_t *rd = a->rd;
    rd->op = NULL;
    r->state = MG_ATT_NONE;
    if (res->rc == MG_BUSY && res->index >= 0 && res->index < rd->nd) {
        const mg_adm_ent_t *e = &rd->ents[rd->map[res->index]];
        static const char *const types[] = {"max_parallel_requests", "requests", "tokens"};
        mg_adm_release(r);
        mg_adm_rate_error(r, e->desc, mg_adm_value(r, e),
                          types[res->type >= 0 && res->type <= 2 ? res->type : 1], res->limit,
                          res->remaining, res->reset_s);
        return;
    }
    if (res->rc == MG_OK) {
        rd->hold = res->hold;
        for (int j = 0; j < rd->nd; j++) {
            mg_adm_hdr(a, &rd->ents[rd->map[j]], res->rpm_remaining[j], res->tpm_remaining[j]);
        }
    } else if (!mg_adm_redis_local(r, mg_time_real_ms() / 1000)) {
        return; /* refused here: the 429 was sent */
    }
    mg_adm_key_spend_keep(r);
    rd->resume(r);
}

static int
mg_adm_redis(mg_request_t *r, const mg_adm_ent_t *ents, int n, double worst, int64_t tpm_n,
             int64_t now_s, mg_admit_resume_cb resume)
{
    struct mg_admission_s *a = r->adm;
    mg_adm_redis_t *rd = mg_arena_calloc(r->arena, sizeof(*rd));
    a->rd = rd;
    rd->resume = resume;
    rd->tpm_n = tpm_n;
    rd->n = n;
    mg_lr_desc_t d[MG_LR_MAX_DESC];
    /* budgets first, here (they are per instance); then every rate limit in one script */
    for (int i = 0; i < n; i++) {
        rd->ents[i] = ents[i];
        rd->items[i] = mg_adm_item(r, &ents[i], now_s);
        if (rd->items[i] != NULL &&
            !mg_adm_take_budget(r, &ents[i], rd->items[i], ents[i].max_budget >= 0 ? worst : 0)) {
            return MG_ERROR;
        }
        if ((ents[i].rpm >= 0 || ents[i].tpm >= 0 || ents[i].parallel >= 0) &&
            rd->nd < MG_LR_MAX_DESC) {
            mg_lr_desc_t *x = &d[rd->nd];
            x->desc = ents[i].desc;
            x->value = mg_adm_value(r, &ents[i]);
            x->rpm = ents[i].rpm;
            x->tpm = ents[i].tpm;
            x->parallel = ents[i].parallel;
            rd->map[rd->nd++] = i;
        }
    }
    if (rd->nd > 0) {
        rd->op = mg_limits_redis_admit(mg_adm_lr, d, rd->nd, tpm_n, mg_adm_redis_done, r);
        if (rd->op != NULL) {
            r->state = MG_ATT_ASYNC; /* mg_adm_redis_done continues */
            return MG_AGAIN;
        }
        if (!mg_adm_redis_local(r, now_s)) { /* Redis unusable now: counted, said in state */
            return MG_ERROR;
        }
    }
    mg_adm_key_spend_keep(r);
    return MG_OK;
}

void
mg_admit_set_redis(mg_limits_redis_t *lr)
{
    mg_adm_lr = lr;
}

void
mg_admit_abort(mg_request_t *r)
{
    struct mg_admission_s *a = r->adm;
    if (a != NULL && a->rd != NULL && a->rd->op != NULL) {
        mg_limits_redis_cancel(a->rd->op); /* what Redis counted for it is undone */
        a->rd->op = NULL;
    }
}

int
mg_admit(mg_request_t *r, mg_admit_resume_cb resume)
{
    const mg_vkey_t *k = r->who.key;
    const mg_auth_t *auth = r->snap->auth;
    /* the end user: the request's "user" member, when it names a known customer */
    const mg_enduser_t *eu = NULL;
    const mg_json_member_t *um = mg_api_member(&r->q, "user");
    if (um != NULL && um->type == MG_JSON_STRING && auth != NULL && auth->nend_users > 0) {
        char *uid = mg_api_member_str(r->arena, um);
        eu = mg_auth_end_user(auth, uid);
        if (eu != NULL && eu->blocked) {
            char *msg = mg_arena_printf(r->arena, "Authentication Error, End User=%s is blocked. "
                                                  "Update via `/customer/unblock` if you're admin.",
                                        eu->id);
            mg_gw_error_raw(r, 400, msg, "\"auth_error\"", "\"None\"", NULL);
            return MG_ERROR;
        }
    }
    if (k == NULL && eu == NULL) {
        return MG_OK; /* the master key: no budget, no limit */
    }
    r->adm = mg_arena_calloc(r->arena, sizeof(struct mg_admission_s));
    struct mg_admission_s *a = r->adm;
    a->rpm_limit = a->tpm_limit = -1;
    a->key_max_budget = -1;
    mg_adm_ent_t ents[7];
    int n = 0;
    if (k != NULL) {
        a->has_key = true;
        mg_adm_ent(&ents[n], MG_ENT_KEY, k->token, "api_key", &k->lim, k->row, k->spend,
                   (int *) &k->lim_slot);
        mg_adm_maybe_reset(r, &ents[n], "key");
        a->key_max_budget = k->lim.max_budget;
        n++;
        if (k->team != NULL) {
            mg_adm_ent(&ents[n], MG_ENT_TEAM, k->team->id, "team", &k->team->lim, k->team->row,
                       k->team->spend, &k->team->lim_slot);
            mg_adm_maybe_reset(r, &ents[n], "team");
            n++;
            if (k->team->org != NULL) {
                mg_adm_ent(&ents[n], MG_ENT_ORG, k->team->org->id, "organization",
                           &k->team->org->lim, k->team->org->row, k->team->org->spend,
                           &k->team->org->lim_slot);
                n++;
            }
        }
        if (k->user != NULL) {
            mg_adm_ent(&ents[n], MG_ENT_USER, k->user->id, "user", &k->user->lim, k->user->row,
                       k->user->spend, &k->user->lim_slot);
            mg_adm_maybe_reset(r, &ents[n], "user");
            n++;
        }
    }
    if (eu != NULL) {
        mg_adm_ent(&ents[n], MG_ENT_END_USER, eu->id, "end_user", &eu->lim, eu->row, eu->spend,
                   (int *) &eu->lim_slot);
        n++;
    }
    bool any_budget = false;
    for (int i = 0; i < n; i++) {
        any_budget = any_budget || ents[i].max_budget >= 0;
    }
    const char *model = r->primary_group != NULL ? r->primary_group : r->model;
    json_t *mmb = k != NULL && k->lim.model_max_budget != NULL
                      ? json_object_get(k->lim.model_max_budget, model) : NULL;
    double model_budget = -1;
    if (json_is_object(mmb)) {
        json_t *bl = json_object_get(mmb, "budget_limit");
        model_budget = json_is_number(bl) ? json_number_value(bl) : -1;
    } else if (json_is_number(mmb)) {
        model_budget = json_number_value(mmb);
    }
    double worst = any_budget || model_budget >= 0 ? mg_adm_worst(r) : 0;
    int64_t tpm_n = mg_adm_max_out(r, NULL);
    {
        /* tokens reserved against a tokens-per-minute limit: what the request may produce */
        const char *keys[] = {"max_tokens", "max_completion_tokens", "max_output_tokens"};
        bool asked = false;
        for (size_t i = 0; i < 3 && !asked; i++) {
            asked = mg_api_member_num(mg_api_member(&r->q, keys[i]), -1) > 0;
        }
        tpm_n = asked ? tpm_n : 1;
    }
    if (k != NULL) {
        /* the key's per-model limits (model_max_budget, model_rpm_limit, model_tpm_limit),
         * taken after the entities' */
        json_t *mr = k->lim.model_rpm != NULL ? json_object_get(k->lim.model_rpm, model) : NULL;
        json_t *mt = k->lim.model_tpm != NULL ? json_object_get(k->lim.model_tpm, model) : NULL;
        if (model_budget >= 0 || json_is_number(mr) || json_is_number(mt)) {
            mg_adm_ent_t *me = &ents[n++];
            memset(me, 0, sizeof(*me));
            me->kind = MG_ENT_KEY;
            me->id = k->token;
            me->desc = "model_per_key";
            me->model = model;
            me->lim = &k->lim;
            me->epoch = ents[0].epoch;
            me->max_budget = model_budget;
            me->rpm = json_is_number(mr) ? (int64_t) json_number_value(mr) : -1;
            me->tpm = json_is_number(mt) ? (int64_t) json_number_value(mt) : -1;
            me->parallel = -1;
        }
    }
    int64_t now_s = mg_time_real_ms() / 1000;
    if (mg_adm_lr != NULL) {
        return mg_adm_redis(r, ents, n, worst, tpm_n, now_s, resume);
    }
    for (int i = 0; i < n; i++) {
        if (!mg_adm_take(r, &ents[i], ents[i].max_budget >= 0 ? worst : 0, tpm_n, now_s)) {
            return MG_ERROR;
        }
    }
    mg_adm_key_spend_keep(r);
    return MG_OK;
}

/* ---- settlement ---- */

/* soft_budget: LiteLLM alerts and lets the request through; moongate logs a warning and counts
 * it, once per crossing (per budget period, or until an admin sets the spend). */
static void
mg_adm_soft(mg_request_t *r, mg_adm_item_t *it, mg_lim_slot_t *s)
{
    int64_t soft = (int64_t) (it->soft * MG_LIM_NANO);
    if (__atomic_load_n(&s->spend, __ATOMIC_ACQUIRE) < soft ||
        __atomic_load_n(&s->soft_alerted, __ATOMIC_ACQUIRE) != 0) {
        return;
    }
    int64_t zero = 0;
    if (!__atomic_compare_exchange_n(&s->soft_alerted, &zero, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        return;
    }
    static const char *const kinds[MG_ENT__COUNT] = {"key", "team", "user", "end_user", "org"};
    mg_log_ctx_t lc = {r->call_id, NULL, NULL};
    const char *alias = r->who.key != NULL && r->who.key->key_alias ? r->who.key->key_alias : "";
    mg_log(MG_LOG_WARN, &lc, "soft budget crossed: %s %s%s%s spent %.6f of a soft budget of %.6f "
                             "(requests still pass)", kinds[it->kind],
           it->kind == MG_ENT_KEY ? "" : s->id, it->kind == MG_ENT_KEY ? "alias=" : "",
           it->kind == MG_ENT_KEY ? alias : "",
           (double) __atomic_load_n(&s->spend, __ATOMIC_ACQUIRE) / MG_LIM_NANO, it->soft);
    mg_ml_values_t v = {{NULL}};
    v.v[MG_ML_KIND] = kinds[it->kind];
    mg_metric_inc(mg_ml_series(MG_MF_SOFT_BUDGET_CROSSED, &v), 1);
}

void
mg_admit_settle(mg_request_t *r)
{
    struct mg_admission_s *a = r->adm;
    if (a == NULL || a->settled) {
        return;
    }
    a->settled = true;
    if (a->rd != NULL) {
        mg_admit_abort(r);
        if (a->rd->hold != NULL) {
            mg_limits_redis_settle(mg_adm_lr, a->rd->hold, r->usage.completion_tokens);
            a->rd->hold = NULL;
        }
    }
    double cost = mg_admit_cost(r);
    if (cost < 0) {
        cost = 0;
    }
    int64_t toks = r->usage.completion_tokens; /* LiteLLM's token_rate_limit_type "output" */
    int64_t w = mg_admit_window_s();
    for (int i = 0; i < a->n; i++) {
        mg_adm_item_t *it = &a->it[i];
        mg_lim_slot_t *s = mg_lim_get(it->slot);
        if (s == NULL) {
            continue;
        }
        mg_lim_settle(it->slot, it->worst, cost);
        if (it->soft >= 0 && cost > 0) {
            mg_adm_soft(r, it, s);
        }
        if (it->taken & MG_ADM_PAR) {
            mg_lim_leave(it->slot);
        }
        if (it->taken & MG_ADM_TPM) {
            mg_lim_window_adjust(&s->tpm_word, toks - it->tpm_n, it->tpm_start, w);
        }
    }
}

void
mg_admit_headers(const mg_request_t *r, mg_buf_t *h)
{
    const struct mg_admission_s *a = r->adm;
    if (a == NULL) {
        return;
    }
    if (a->has_key) {
        char b[48];
        mg_fmt_pyfloat(a->key_spend_set ? a->key_spend : mg_adm_key_spend(r), b, sizeof(b));
        mg_buf_append_str(h, "x-litellm-key-spend: ");
        mg_buf_append_str(h, b);
        mg_buf_append(h, "\r\n", 2);
        if (a->key_max_budget >= 0) {
            mg_fmt_pyfloat(a->key_max_budget, b, sizeof(b));
            mg_buf_printf(h, "x-litellm-key-max-budget: %s\r\n", b);
        }
    }
    if (a->rpm_limit >= 0) {
        mg_buf_printf(h, "x-ratelimit-limit-requests: %lld\r\nx-ratelimit-remaining-requests: %lld\r\n"
                         "x-ratelimit-%s-limit-requests: %lld\r\nx-ratelimit-%s-remaining-requests: %lld\r\n",
                      (long long) a->rpm_limit, (long long) a->rpm_remaining, a->hdr_descriptor,
                      (long long) a->rpm_limit, a->hdr_descriptor, (long long) a->rpm_remaining);
    }
    if (a->tpm_limit >= 0) {
        mg_buf_printf(h, "x-ratelimit-limit-tokens: %lld\r\nx-ratelimit-remaining-tokens: %lld\r\n"
                         "x-ratelimit-%s-limit-tokens: %lld\r\nx-ratelimit-%s-remaining-tokens: %lld\r\n",
                      (long long) a->tpm_limit, (long long) a->tpm_remaining, a->hdr_descriptor,
                      (long long) a->tpm_limit, a->hdr_descriptor, (long long) a->tpm_remaining);
    }
}
