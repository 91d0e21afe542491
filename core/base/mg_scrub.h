/*
 * mg_scrub.h -- the one secret scrubber: every text that leaves the gateway built from
 * upstream or config bytes (error bodies, stream error events, logs, /health, state, spend
 * logs, traces) goes through mg_scrub() or one of its wrappers first.
 *
 * Two kinds of things are redacted:
 *  - known secrets: a set (mg_scrub_set_t) built from the snapshot's secret strings (provider
 *    keys, the master key, virtual keys, store passwords).  Each secret is matched as written
 *    and in the forms it takes inside JSON text (see "escaped forms" below) and URLs.
 *  - key-shaped tokens, known or not: sk-/sk_ keys, sk_/rk_/pk_ live|test keys, "Bearer x",
 *    "Basic x", sensitive query values (key=, api_key=, token=, sig=, X-Amz-Signature= ...),
 *    AIza Google keys, AKIA/ASIA AWS key ids, sensitive header lines and JSON members
 *    (authorization:, x-api-key:, "api_key": "...", 'password': '...' ...), JWTs, PEM
 *    private key bodies, and URL userinfo passwords (scheme://user:pass@host).
 *    Sensitive names ignore case, "-" and "_": authorization, proxy-authorization, and any
 *    name ending in api_key, secret, password, passwd, access_key, secret_key, private_key,
 *    master_key, auth_token, access_token, refresh_token, session_token, security_token,
 *    id_token or bearer_token; in name=value form also key, token, sig, signature,
 *    credential, pwd and X-Amz-Signature/-Credential.  Values of "name: value" without
 *    quotes (prose, header lines) and Bearer/Basic tokens are redacted only when they look
 *    like credentials (8+ characters with a digit, an inner capital, one of + / = _, or 24+
 *    characters), so "authorization: required" and "Bearer authentication" stay; quoted
 *    JSON values and name=value values are redacted whatever they look like, except
 *    "os.environ/..." references.
 * A redacted token reads "sk-...abcd" at most: a well-known 3-character prefix (sk- sk_ rk_
 * pk_ AIz AKI ASI eyJ) if the token has one, "...", and its last 4 characters only when at
 * least 16 others stay hidden and those 4 are plain ASCII key characters (so the tail never
 * splits a UTF-8 sequence or a JSON escape).  mg_log_redact() uses the same formatter.
 *
 * Escaped forms of a known secret that are matched: raw; JSON-escaped (\" \\ \b \f \n \r \t,
 * \u00XX for other control bytes) with and without "/" written as "\/", each also with every
 * non-ASCII character written as \uXXXX (lower- and upper-case hex, surrogate pairs);
 * JSON-escaped twice (a JSON document carried inside a JSON string), with and without
 * "\/"; percent-encoded (every byte outside A-Z a-z 0-9 -._~, upper- and lower-case hex, and
 * upper-case with "/" left alone).  Not matched: other partial-escaping mixes (a string
 * where only some "/" are escaped), base64 of a secret, case changes.
 * Key-shaped rules read through JSON escapes where a token can contain them: "\/" inside
 * tokens, "\n" line breaks inside PEM bodies, ":\/\/" after a URL scheme, and a token right
 * after an escape such as "\n" still starts at a boundary.
 *
 * Output validity: untouched bytes are copied as they are (binary and invalid UTF-8 pass
 * through); a redacted span that starts or ends inside a JSON escape or a UTF-8 sequence is
 * widened to cover all of it, and a quoted value never runs past a '"', so valid JSON stays
 * valid JSON and valid UTF-8 stays valid UTF-8.  Scrubbing scrubbed text again changes
 * nothing when tokens are separated (a redaction glued to a following name, as in
 * "sk_live_...x_key=v", can turn it into a sensitive name the second time).
 *
 * Threading: a set is immutable once built; its refcount is a plain int (it lives in a
 * worker's registry snapshot).  The global set (mg_scrub_set_global) is per process.
 */
#ifndef MG_SCRUB_H
#define MG_SCRUB_H

#include "mg_types.h"

#include <stdbool.h>

/*
 * Shorter secrets are ignored.  Below 6 bytes a "secret" is ordinary text ("test", "admin",
 * "1234", "none") and redacting it would shred every message that contains the word, while
 * such a secret is guessed by brute force in seconds, so hiding it protects nothing.  The
 * builder counts what it ignored so the caller can warn about it.
 */
#define MG_SCRUB_MIN_SECRET 6
/* Longest redacted form: "sk-" + "..." + 4. */
#define MG_SCRUB_REDACT_MAX 10

/* mg_scrub_ex() flags. */
/* the text was truncated: also redact a known secret's head (4+ bytes) at its very end */
#define MG_SCRUB_CUT_END 0x1u

typedef struct mg_scrub_set_s mg_scrub_set_t;

/* Collects secrets for one set; single owner, reusable after mg_scrub_builder_finish(). */
typedef struct {
    char **items;   /* owned: malloc'd copies */
    size_t *lens;   /* owned */
    size_t n;
    size_t cap;
    size_t ignored; /* too short */
} mg_scrub_builder_t;

#define MG_SCRUB_BUILDER_INIT {NULL, NULL, 0, 0, 0}

/* Adds a copy of s[0..n).  NULL or shorter than MG_SCRUB_MIN_SECRET: counted as ignored
 * (NULL and "" are not counted). */
void mg_scrub_builder_add(mg_scrub_builder_t *b, const char *s, size_t n);
/* Same for a C string (NULL allowed). */
void mg_scrub_builder_add_str(mg_scrub_builder_t *b, const char *s);
/* Adds the password of a URL's userinfo (redis://:pw@h, postgres://u:pw@h/db) as written
 * and percent-decoded.  No password: nothing added. */
void mg_scrub_builder_add_url_password(mg_scrub_builder_t *b, const char *url);
/* Builds an immutable set (one reference, owned by the caller) from what was added and empties
 * the builder.  Duplicates are merged.  Never NULL (an empty set still redacts key shapes). */
mg_scrub_set_t *mg_scrub_builder_finish(mg_scrub_builder_t *b);
/* Frees what was added and not built. */
void mg_scrub_builder_free(mg_scrub_builder_t *b);

/* Convenience: a set from n C strings (NULL entries skipped). One reference to the caller. */
mg_scrub_set_t *mg_scrub_set_new(const char *const *secrets, size_t n);
mg_scrub_set_t *mg_scrub_set_ref(mg_scrub_set_t *set);
/* Accepts NULL; frees at zero; logs and aborts on underflow. */
void mg_scrub_set_unref(mg_scrub_set_t *set);
/* Secrets kept (after dedupe) and ignored as too short, for a startup/reload warning. */
size_t mg_scrub_set_count(const mg_scrub_set_t *set);
size_t mg_scrub_set_ignored(const mg_scrub_set_t *set);

/*
 * Appends in[0..n) to out with every known secret of set (NULL: none) and every key-shaped
 * token replaced by its redacted form.  Text with nothing to redact is copied byte for byte.
 */
void mg_scrub(const mg_scrub_set_t *set, const char *in, size_t n, mg_buf_t *out);
/* mg_scrub() with flags (MG_SCRUB_CUT_END). */
void mg_scrub_ex(const mg_scrub_set_t *set, const char *in, size_t n, unsigned flags,
                 mg_buf_t *out);
/* True if mg_scrub() would change in[0..n) (callers may then skip the copy). */
bool mg_scrub_found(const mg_scrub_set_t *set, const char *in, size_t n);
/* A scrubbed malloc'd copy of a C string (free() it); NULL in, NULL out. */
char *mg_scrub_cstr(const mg_scrub_set_t *set, const char *s);
/* A scrubbed copy of s[0..n) in the arena, NUL-terminated. */
char *mg_scrub_arena(mg_arena_t *a, const mg_scrub_set_t *set, const char *s, size_t n);
/* Appends a JSON string literal (with quotes) of the scrubbed s[0..n): one pass, no copy. */
void mg_scrub_json_str(const mg_scrub_set_t *set, const char *s, size_t n, mg_buf_t *out);
/*
 * Scrubs into a fixed buffer without allocating on the common path (the logger's path):
 * writes at most cap-1 bytes and a NUL, returns the length written.  If the text cannot be
 * scrubbed (out of memory for many spans) writes a fixed "withheld" notice instead.
 */
size_t mg_scrub_fixed(const mg_scrub_set_t *set, const char *in, size_t n, unsigned flags,
                      char *out, size_t cap);
/* Scrubs err->msg in place (the message may have been truncated: scrubbed with CUT_END). */
void mg_scrub_err(const mg_scrub_set_t *set, mg_err_t *err);

/*
 * The formatter for one secret token tok[0..n): writes the redacted form ("sk-...abcd",
 * "...abcd", "sk-...", "...") and a NUL into out; returns its length (<= MG_SCRUB_REDACT_MAX).
 */
size_t mg_scrub_redact(const char *tok, size_t n, char out[MG_SCRUB_REDACT_MAX + 1]);

/*
 * The process-wide set used by mg_log (every line, every level).  Takes a reference to set;
 * a worker calls it whenever its snapshot changes.  The previous set is retired, not
 * dropped: while anything else (an old snapshot serving in-flight requests) still holds it,
 * log lines are scrubbed with it too, so a rotated-out key is not logged either (at most 4
 * retired sets; each is released once the logger's reference is the last).  NULL clears
 * the current and every retired set (at exit).
 */
void mg_scrub_set_global(mg_scrub_set_t *set);
/*
 * The process-wide set of secrets learned at run time (access tokens a worker minted from a
 * credential), scrubbed by every mg_scrub_global_* call and by mg_log beside the global
 * set.  Takes a reference to set and drops the previous one; NULL clears it.  The owner
 * (the token cache) rebuilds and replaces the whole set when its tokens change.
 */
void mg_scrub_set_runtime(mg_scrub_set_t *set);
/* Borrowed; valid until the next mg_scrub_set_global(). NULL when none. */
const mg_scrub_set_t *mg_scrub_global(void);
/* mg_scrub() with the global set and the retired ones, appended to out. */
void mg_scrub_global_buf(const char *in, size_t n, mg_buf_t *out);
/* The same as a malloc'd C string. */
char *mg_scrub_global_cstr(const char *s);
/* How many retired sets are still in use (tests, /moongate/state). */
size_t mg_scrub_global_retired(void);
/* mg_scrub_fixed() with the global set and the retired ones (what mg_log uses). */
size_t mg_scrub_fixed_global(const char *in, size_t n, unsigned flags, char *out, size_t cap);

#endif
