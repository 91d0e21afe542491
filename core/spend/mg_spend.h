/*
 * mg_spend.h -- the spend-log pipeline: one row per client request, recorded
 * by the worker that answered it, persisted by the master, served to the
 * spend routes.
 *
 *   worker: mg_spend_push(row)   -> its ring in shared memory (memcpy + one atomic store)
 *   master: every 50 ms the rings -> the on-disk queue (state_dir/spend, checksummed
 *           segments, fdatasync at most 200 ms / 1000 rows after a row arrived)
 *           -> the sink: PostgreSQL (DATABASE_URL: LiteLLM's tables, idempotent batches)
 *              or embedded (the segments are the log; totals in state_dir/spend/totals.json)
 *
 * Owns (master): the rings and the shared state block in the mg_shm arena (allocated once,
 * before fork), the queue files, the database connections, the totals.
 * A worker killed with -9 loses nothing it pushed: the ring outlives it and its respawn
 * continues in the same ring.  A master crash loses what the rings held (at most one drain
 * interval); an operating system crash loses at most what was not yet fsynced.
 *
 * Threading: one producer per ring (the worker of that index), one consumer (the master).
 * Everything else runs on the master's event loop.  Nothing here blocks a worker.
 */
#ifndef MG_SPEND_H
#define MG_SPEND_H

#include "../base/mg_err.h"
#include "../base/mg_types.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- the row ---- */

/*
 * String fields of a row, with their bounds in bytes.  A longer value is cut at the bound on
 * a UTF-8 character boundary; the JSON fields (request_tags, metadata) are never cut: a value
 * over the bound is replaced by [] / {} and the row is flagged (metadata then carries
 * "moongate_truncated": true).
 */
typedef enum {
    MG_SPEND_F_REQUEST_ID = 0,  /*   80  LiteLLM_SpendLogs.request_id: the call id */
    MG_SPEND_F_CALL_TYPE,       /*   32  "acompletion", "aembedding", "anthropic_messages"... */
    MG_SPEND_F_API_KEY,         /*   64  sha256 hex of the key used ("" for none) */
    MG_SPEND_F_KEY_ALIAS,       /*  256  */
    MG_SPEND_F_USER,            /*  256  the key's user_id */
    MG_SPEND_F_TEAM_ID,         /*  128  */
    MG_SPEND_F_ORG_ID,          /*  128  organization_id */
    MG_SPEND_F_END_USER,        /*  256  the request's "user" field */
    MG_SPEND_F_MODEL,           /*  256  the model sent upstream */
    MG_SPEND_F_MODEL_ID,        /*  128  the deployment's id */
    MG_SPEND_F_MODEL_GROUP,     /*  256  the public model name */
    MG_SPEND_F_PROVIDER,        /*   64  custom_llm_provider */
    MG_SPEND_F_API_BASE,        /*  512  without a query string (it may hold secrets) */
    MG_SPEND_F_REQUEST_TAGS,    /* 1024  a JSON array of strings */
    MG_SPEND_F_METADATA,        /* 2048  a JSON object (LiteLLM's SpendLogsMetadata keys) */
    MG_SPEND_F_IP,              /*   64  requester_ip_address */
    MG_SPEND_F_SESSION_ID,      /*  128  */
    MG_SPEND_F__COUNT
} mg_spend_field_t;

/* Sum of the field bounds: the text area of a row. */
#define MG_SPEND_TEXT_MAX 5680
/* Each optional tail (stored request body, response) is cut at this many bytes. */
#define MG_SPEND_TAIL_MAX (64 * 1024)

#define MG_SPEND_OK      0          /* status: the request was answered successfully */
#define MG_SPEND_FAILURE 1          /* status: the client got an error */

/* Flags (set by the setters and by push). */
#define MG_SPEND_FLAG_TAGS_CUT  0x01    /* request_tags was over its bound: stored as [] */
#define MG_SPEND_FLAG_META_CUT  0x02    /* metadata was over its bound: stored as {} */
#define MG_SPEND_FLAG_TAIL_CUT  0x04    /* a tail was cut at MG_SPEND_TAIL_MAX */

/*
 * The fixed part of a row, exactly as it travels through the ring and the queue (the text
 * area follows it).  Plain data; fill the numbers directly, the strings with the setters.
 */
typedef struct {
    uint32_t len;                   /* set by push: bytes of the record */
    uint32_t kind;                  /* set by push */
    double spend;                   /* USD */
    int64_t prompt_tokens;          /* OpenAI's convention (mg_usage_t): cache tokens included */
    int64_t completion_tokens;
    int64_t total_tokens;
    int64_t cache_read_tokens;
    int64_t cache_creation_tokens;
    int64_t start_us;               /* microseconds since the epoch: request received */
    int64_t end_us;                 /* the answer settled */
    int64_t completion_start_us;    /* first byte of the answer (0: unknown = end) */
    uint8_t status;                 /* MG_SPEND_OK / MG_SPEND_FAILURE */
    uint8_t flags;                  /* MG_SPEND_FLAG_* */
    uint16_t http_status;           /* what the client got (0: unknown) */
    uint32_t text_used;             /* bytes of text in use */
    uint32_t tail_len[2];           /* set by push: bytes of each tail that follow the text */
    uint16_t off[MG_SPEND_F__COUNT];
    uint16_t slen[MG_SPEND_F__COUNT];
} mg_spend_rec_t;

/*
 * A row being built (on the stack of the request path: about 6 KB, of which only the fixed
 * part is cleared by mg_spend_row_init).  Build it with mg_spend_row_init, the setters and
 * the numbers, then mg_spend_push.  Each field is set at most once (a second set appends
 * again and wastes space; it never overflows).
 */
typedef struct {
    mg_spend_rec_t rec;
    char text[MG_SPEND_TEXT_MAX];   /* follows rec directly: push copies both in one memcpy */
    /* Optional tails, only with general_settings.store_prompts_in_spend_logs (never default):
     * [0] the client's request body (JSON), [1] the response body (JSON).  Borrowed: valid
     * until mg_spend_push returns. */
    const char *tail[2];
    size_t tail_n[2];
} mg_spend_row_t;

/* Clears the fixed part (about 170 bytes); the text area is not touched. */
void mg_spend_row_init(mg_spend_row_t *row);
/* Sets a string field from n bytes (cut at its bound on a UTF-8 boundary; JSON fields, see
 * above).  s may be NULL (nothing is set). */
void mg_spend_row_set(mg_spend_row_t *row, mg_spend_field_t f, const char *s, size_t n);
/* The same from a NUL-terminated string (NULL: nothing). */
void mg_spend_row_setz(mg_spend_row_t *row, mg_spend_field_t f, const char *s);
/* A field of a recorded row (not NUL-terminated); *n = 0 when unset. */
const char *mg_spend_rec_str(const mg_spend_rec_t *rec, mg_spend_field_t f, size_t *n);
/* The bound of a field in bytes. */
size_t mg_spend_field_max(mg_spend_field_t f);

/* ---- sizes ---- */

/* Ring bytes per worker: 4 MiB (8192 rows of 512 bytes: 4x what one worker produces in a
 * 100 ms drain interval at 20k requests/s; 1600 rows of the largest size), 16 MiB with
 * store_prompts_in_spend_logs. */
size_t mg_spend_ring_bytes(const mg_config_t *cfg);
/* Shared memory mg_spend_init needs from the mg_shm arena for nworkers workers. */
size_t mg_spend_shm_size(const mg_config_t *cfg, int nworkers);

/* ---- master, before fork ---- */

/*
 * Allocates the rings, the shared state and the totals table from the mg_shm arena (which
 * must have mg_spend_shm_size() bytes free), opens state_dir/spend (config_path names the
 * config for mg_config_state_dir), repairs a torn tail, and in embedded mode loads the
 * totals (replaying what the last totals file did not cover) so that workers forked after
 * this see them.  Returns MG_ERROR only when the settings are invalid or the shared memory
 * is short; a state directory that cannot be used is reported in the state (rows then wait
 * in the rings, and are counted as dropped once those are full) and retried.
 */
int mg_spend_init(const mg_config_t *cfg, const char *config_path, int nworkers, mg_err_t *err);

/* Checks the spend settings of a config (retention period and interval, booleans,
 * moongate_settings.spend_*): for --validate_config and reloads. */
int mg_spend_check_config(const mg_config_t *cfg, mg_err_t *err);

/* ---- master, on its loop ---- */

/* Starts draining, the sink and retention on base (after the workers were forked). */
void mg_spend_master_start(struct event_base *base);
/* A reloaded config: retention, store_prompts and the sink settings follow it (a changed
 * DATABASE_URL or ring size needs a restart and is logged). */
void mg_spend_master_set_config(const mg_config_t *cfg);
/*
 * Shutdown, called from the master's loop once every worker has exited: drains the rings,
 * fsyncs the queue and the totals, and gives the sink until deadline_ms (monotonic) to ship
 * what is queued.  Returns true when the master may stop its loop (everything is on disk;
 * what the sink has not shipped is shipped after the next start).
 */
bool mg_spend_master_quiesce(int64_t deadline_ms);
/* Stops everything and frees the master's side (after its loop ended). */
void mg_spend_master_stop(void);

/* A spend query from a worker (see mg_spend_query.h for q).  reply(ctx, answer) is called
 * exactly once, from the master's loop (before this returns when spend logs are not running)
 * with {"ok":true,"result":[...]} or {"ok":false,"status":N,"error":"..."} (borrowed). */
typedef void (*mg_spend_reply_fn)(void *ctx, json_t *answer);
void mg_spend_master_query(json_t *q, mg_spend_reply_fn reply, void *ctx);

/* ---- worker ---- */

/* After fork: this process pushes into ring `index`. */
void mg_spend_set_worker(int index);
/*
 * Records one row: a memcpy into this worker's ring and one atomic store; no syscall, no
 * allocation.  A full ring drops the row (counted in mg_spend_dropped(); logged at most once
 * per 10 s).  Must be called before the last byte of the answer is handed to the socket, so
 * that a request the client saw answered always has its row.  Without mg_spend_set_worker
 * (tools, tests) it does nothing.
 */
void mg_spend_push(const mg_spend_row_t *row);

/* ---- anyone (master or worker) ---- */

/*
 * The persisted spend of an entity (embedded mode): table is one of "LiteLLM_VerificationToken"
 * (id = the token hash), "LiteLLM_TeamTable", "LiteLLM_UserTable", "LiteLLM_EndUserTable",
 * "LiteLLM_OrganizationTable" (or their short names "key", "team", "user", "end_user",
 * "org").  Includes every row the master has taken from the rings; rows still in a ring (at
 * most one drain interval) are not.  0 when unknown.  With DATABASE_URL the database's spend
 * columns are the truth: this returns 0.
 */
double mg_spend_total(const char *table, const char *id);
/*
 * The embedded store's identity rows with their spend as persisted: for each row of
 * idents ({"key":{id:row}, "team":{...}, "user", "end_user", "org"; others untouched}) the
 * presented "spend" is the row's spend when it was last set explicitly plus what the spend
 * log added since (mg_spend_total now minus metadata.moongate_spend_base, recorded by
 * mg_spend_note_set at that set).  Returns a new reference: a copy with the spend columns
 * filled (embedded mode), or idents itself with one more reference (PostgreSQL: the
 * database's columns are the truth).  The journal's own rows are never changed.
 */
json_t *mg_spend_present(json_t *idents);
/*
 * The embedded store is about to write row (the new state of table/id; cur: the old one or
 * NULL).  explicit_spend: the mutation's own "spend" value, or NULL when it does not set one.
 * An explicit set (an admin's, a budget reset) records metadata.moongate_spend_base, so that
 * spend added before it no longer counts; a row written without spend keeps cur's.
 */
void mg_spend_note_set(const char *table, const char *id, json_t *explicit_spend, json_t *cur,
                       json_t *row);

/* Rows dropped since start: full rings plus a full disk queue (for a metric). */
uint64_t mg_spend_dropped(void);
/* Rows on disk not yet acknowledged by the sink. */
uint64_t mg_spend_queued_rows(void);
/* The "spend" object of /moongate/state (new reference). */
json_t *mg_spend_state_json(void);

#endif
