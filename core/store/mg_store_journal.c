/*
 * mg_store_journal.c -- the embedded registry store: an append-only journal
 * in the state directory, shared by every worker (and every instance on the
 * host that points at the same directory).
 *
 * Owns: the journal fd and this process's in-memory replay of it.
 * File format, one record per mutation:
 *     "MGJ1 <version> <payload-bytes> <sha256-prefix-16>\n" <payload JSON> "\n"
 * Writers hold flock(LOCK_EX), catch up on records written by others, append
 * one record with version = last + 1, fdatasync, unlock; only then does the
 * mutation call answer.  Readers hold LOCK_SH.  A record that is incomplete
 * or fails its checksum at the end of the file (a writer killed mid-write,
 * never acknowledged) is moved to journal.torn.<ms>[.<n>] and reported; damage
 * followed by valid records is corruption: loading fails loudly and nothing
 * is half-applied.
 */
#include "mg_store.h"

#include "../base/mg_arena.h"
#include "../base/mg_buf.h"
#include "../base/mg_log.h"
#include "../base/mg_time.h"
#include "../base/mg_util.h"
#include "mg_crypto.h"
#include "../spend/mg_spend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *dir;
    char *path;
    int fd;
    mg_crypto_t crypto;
    int64_t version;
    off_t offset;               /* bytes replayed */
    json_t *models;             /* object: id -> row (decrypted), insertion order */
    json_t *policies;           /* object: name -> policy */
    json_t *idents;             /* object: table -> (object: id -> row) */
    int64_t records;
    char last_error[512];
    char repaired[512];         /* last torn-tail repair, reported in status */
    bool broken;                /* corruption found: refuse to load */
} mg_journal_t;

static void
mg_journal_now(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static int
mg_journal_mkdirs(const char *dir, mg_err_t *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return mg_err_set(err, MG_ERR_CONFIG, "mkdir(\"%s\") failed (%d: %s)", tmp, errno,
                                  strerror(errno));
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return mg_err_set(err, MG_ERR_CONFIG, "mkdir(\"%s\") failed (%d: %s)", tmp, errno,
                          strerror(errno));
    }
    return MG_OK;
}

/* Applies one record payload to the in-memory state. */
static int
mg_journal_apply(mg_journal_t *j, json_t *rec, mg_err_t *err)
{
    const char *op = json_string_value(json_object_get(rec, "op"));
    if (op == NULL) {
        return mg_err_set(err, MG_ERR_INTERNAL, "record without op");
    }
    if (strcmp(op, "model_new") == 0 || strcmp(op, "model_update") == 0) {
        json_t *row = json_object_get(rec, "row");
        const char *id = json_string_value(json_object_get(row, "model_id"));
        if (id == NULL) {
            return mg_err_set(err, MG_ERR_INTERNAL, "%s record without model_id", op);
        }
        json_t *lp = mg_crypto_decrypt_object(&j->crypto, json_object_get(row, "litellm_params"), err);
        json_t *copy = json_deep_copy(row);
        if (lp == NULL) {
            /* unreadable (wrong LITELLM_SALT_KEY): the registry skips it with a warning */
            json_object_set_new(copy, "__load_error", json_string(err->msg));
            json_object_set_new(copy, "litellm_params", json_null());
        } else {
            json_object_set_new(copy, "litellm_params", lp);
        }
        if (strcmp(op, "model_update") == 0 && json_object_get(j->models, id) != NULL) {
            json_object_set_new(j->models, id, copy); /* keeps its position */
        } else {
            json_object_del(j->models, id);
            json_object_set_new(j->models, id, copy);
        }
    } else if (strcmp(op, "model_delete") == 0) {
        const char *id = json_string_value(json_object_get(rec, "model_id"));
        if (id != NULL) {
            json_object_del(j->models, id);
        }
    } else if (strcmp(op, "policy_update") == 0) {
        json_t *p = json_object_get(rec, "policy");
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name != NULL) {
            json_object_set(j->policies, name, p);
        }
    } else if (strcmp(op, "policy_delete") == 0) {
        const char *name = json_string_value(json_object_get(rec, "name"));
        if (name != NULL) {
            json_object_del(j->policies, name);
        }
    } else if (strcmp(op, "ident_put") == 0) {
        json_t *t = json_object_get(j->idents, json_string_value(json_object_get(rec, "table")));
        const char *iid = json_string_value(json_object_get(rec, "id"));
        if (t == NULL || iid == NULL) {
            return mg_err_set(err, MG_ERR_INTERNAL, "ident_put record without a known table/id");
        }
        json_object_set(t, iid, json_object_get(rec, "row"));
    } else if (strcmp(op, "ident_delete") == 0) {
        json_t *t = json_object_get(j->idents, json_string_value(json_object_get(rec, "table")));
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(rec, "ids"), i, v) {
            if (t != NULL && json_is_string(v)) {
                json_object_del(t, json_string_value(v));
            }
        }
    } /* "bump": version only */
    return MG_OK;
}

/* Builds the record of an identity mutation against the current state, or sets err. */
static json_t *
mg_journal_ident(mg_journal_t *j, const char *op, json_t *m, const char *now, json_t **result,
                 mg_err_t *err)
{
    const char *tn = json_string_value(json_object_get(m, "table"));
    const char *col = tn != NULL ? mg_store_ident_id_column(tn) : NULL;
    json_t *t = col != NULL ? json_object_get(j->idents, tn) : NULL;
    if (t == NULL) {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s: unknown identity table \"%s\"", op, tn ? tn : "");
        return NULL;
    }
    if (strcmp(op, "ident_delete") == 0) {
        json_t *ids = json_object_get(m, "ids");
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v) {
            if (!json_is_string(v) || json_object_get(t, json_string_value(v)) == NULL) {
                mg_err_set(err, MG_ERR_NO_ROUTE, "%s %s not found", tn,
                           json_is_string(v) ? json_string_value(v) : "(not a string)");
                return NULL;
            }
        }
        if (!json_is_array(ids) || json_array_size(ids) == 0) {
            mg_err_set(err, MG_ERR_BAD_REQUEST, "ident_delete without ids");
            return NULL;
        }
        *result = json_pack("{s:O}", "deleted", ids);
        return json_pack("{s:s,s:s,s:O}", "op", "ident_delete", "table", tn, "ids", ids);
    }
    const char *id = json_string_value(json_object_get(m, "id"));
    if (id == NULL || id[0] == '\0') {
        mg_err_set(err, MG_ERR_BAD_REQUEST, "%s without id", op);
        return NULL;
    }
    json_t *cur = json_object_get(t, id);
    json_t *row;
    if (strcmp(op, "ident_put") == 0) {
        if (json_is_true(json_object_get(m, "create")) && cur != NULL) {
            mg_err_set(err, MG_ERR_BAD_REQUEST, "%s %s already exists", tn, id);
            return NULL;
        }
        json_t *given = json_object_get(m, "row");
        row = json_is_object(given) ? json_deep_copy(given) : json_object();
        if (json_object_get(row, "created_at") == NULL) {
            json_t *ca = cur != NULL ? json_object_get(cur, "created_at") : NULL;
            json_object_set_new(row, "created_at", ca != NULL ? json_incref(ca) : json_string(now));
        }
    } else {
        if (cur == NULL) {
            mg_err_set(err, MG_ERR_NO_ROUTE, "%s %s not found", tn, id);
            return NULL;
        }
        row = json_deep_copy(cur);
        json_object_update(row, json_object_get(m, "set"));
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(m, "clear"), i, v) {
            if (json_is_string(v)) {
                json_object_del(row, json_string_value(v));
            }
        }
    }
    json_object_set_new(row, col, json_string(id));
    json_object_set_new(row, "updated_at", json_string(now));
    mg_spend_note_set(tn, id, json_object_get(json_object_get(m, strcmp(op, "ident_put") == 0
                                                                     ? "row" : "set"), "spend"),
                      cur, row);
    *result = json_incref(row);
    return json_pack("{s:s,s:s,s:s,s:o}", "op", "ident_put", "table", tn, "id", id, "row", row);
}

/* Moves bytes from offset to EOF aside and truncates (caller holds LOCK_EX). */
static int
mg_journal_quarantine(mg_journal_t *j, off_t from, off_t size, const char *why, mg_err_t *err)
{
    /* journal.torn.<ms>, or .<ms>.<n> when two repairs fall in one millisecond */
    char qpath[PATH_MAX + 96];
    long long ms = (long long) mg_time_real_ms();
    int qfd = -1;
    for (int n = 0; n < 1000 && qfd < 0; n++) {
        if (n == 0) {
            snprintf(qpath, sizeof(qpath), "%s.torn.%lld", j->path, ms);
        } else {
            snprintf(qpath, sizeof(qpath), "%s.torn.%lld.%d", j->path, ms, n);
        }
        qfd = open(qpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (qfd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (qfd < 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "open(\"%s\") failed (%d: %s)", qpath, errno,
                          strerror(errno));
    }
    /* the tail is only cut off once its copy is safely on disk */
    char buf[65536];
    for (off_t at = from; at < size;) {
        ssize_t n = pread(j->fd, buf, sizeof(buf), at);
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            close(qfd);
            return mg_err_set(err, MG_ERR_INTERNAL, "reading \"%s\" at byte %lld failed (%s)",
                              j->path, (long long) at, n < 0 ? strerror(e) : "file shrank");
        }
        if (write(qfd, buf, (size_t) n) != n) {
            close(qfd);
            return mg_err_set(err, MG_ERR_INTERNAL, "write(\"%s\") failed", qpath);
        }
        at += n;
    }
    if (fsync(qfd) != 0) {
        int e = errno;
        close(qfd);
        return mg_err_set(err, MG_ERR_INTERNAL, "fsync(\"%s\") failed (%d: %s)", qpath, e,
                          strerror(e));
    }
    close(qfd);
    if (ftruncate(j->fd, from) != 0 || fdatasync(j->fd) != 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "ftruncate(\"%s\") failed (%d: %s)", j->path,
                          errno, strerror(errno));
    }
    snprintf(j->repaired, sizeof(j->repaired),
             "%s: %s at byte %lld (%lld bytes, never acknowledged) moved to %s", j->path, why,
             (long long) from, (long long) (size - from), qpath);
    mg_log(MG_LOG_ERROR, NULL, "journal repaired: %s", j->repaired);
    return MG_OK;
}

/*
 * Reads records from j->offset to EOF.  lock_held: LOCK_EX already held (writers).
 * A bad tail is repaired when we hold (or can take) LOCK_EX.
 */
static int
mg_journal_catch_up(mg_journal_t *j, bool lock_held, mg_err_t *err)
{
    if (j->broken) {
        return mg_err_set(err, MG_ERR_INTERNAL, "%s", j->last_error);
    }
    bool took = !lock_held;
    if (took && flock(j->fd, LOCK_SH) != 0) {
        return mg_err_set(err, MG_ERR_INTERNAL, "flock(\"%s\") failed (%d: %s)", j->path, errno,
                          strerror(errno));
    }
    int rc = MG_OK;
    struct stat st;
    if (fstat(j->fd, &st) != 0) {
        rc = mg_err_set(err, MG_ERR_INTERNAL, "fstat(\"%s\") failed", j->path);
        goto out;
    }
    if (st.st_size < j->offset) {
        /* the file shrank under records we applied: never expected, never silently accepted */
        j->broken = true;
        snprintf(j->last_error, sizeof(j->last_error),
                 "journal %s shrank below its last applied record (%lld < %lld bytes)", j->path,
                 (long long) st.st_size, (long long) j->offset);
        rc = mg_err_set(err, MG_ERR_INTERNAL, "%s", j->last_error);
        goto out;
    }
    if (st.st_size == j->offset) {
        goto out;
    }
    size_t len = (size_t) (st.st_size - j->offset);
    char *data = mg_xmalloc(len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(j->fd, data + got, len - got, j->offset + (off_t) got);
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
    }
    len = got;
    size_t pos = 0;
    const char *bad = NULL;
    while (pos < len) {
        const char *rec = data + pos;
        const char *nl = memchr(rec, '\n', len - pos);
        if (nl == NULL) {
            bad = "incomplete record header";
            break;
        }
        long long ver = 0;
        unsigned long plen = 0;
        char sum[17];
        int nf = 0;
        if (nl - rec < 80) {
            char hdr[96];
            memcpy(hdr, rec, (size_t) (nl - rec));
            hdr[nl - rec] = '\0';
            nf = sscanf(hdr, "MGJ1 %lld %lu %16s", &ver, &plen, sum);
        }
        if (nf != 3 || strlen(sum) != 16) {
            bad = "invalid record header";
            break;
        }
        size_t hl = (size_t) (nl - rec) + 1;
        if (pos + hl + plen + 1 > len) {
            bad = "incomplete record";
            break;
        }
        const char *payload = rec + hl;
        if (payload[plen] != '\n') {
            bad = "record not terminated";
            break;
        }
        char hex[65];
        mg_sha256_hex(payload, plen, hex);
        if (memcmp(hex, sum, 16) != 0) {
            bad = "checksum mismatch";
            break;
        }
        if (ver != j->version + 1) {
            bad = "version out of sequence";
            break;
        }
        json_error_t je;
        json_t *p = json_loadb(payload, plen, 0, &je);
        if (p == NULL) {
            bad = "unparseable record";
            break;
        }
        mg_err_t e2;
        if (mg_journal_apply(j, p, &e2) != MG_OK) {
            json_decref(p);
            free(data);
            rc = mg_err_set(err, MG_ERR_INTERNAL, "journal %s: record %lld: %s", j->path, ver, e2.msg);
            goto out;
        }
        json_decref(p);
        j->version = ver;
        j->records++;
        pos += hl + plen + 1;
        j->offset += (off_t) (hl + plen + 1);
    }
    if (bad != NULL) {
        /* is anything valid after the damage?  then it is corruption, not a torn tail */
        bool later = false;
        for (size_t k = pos + 1; k + 5 < len; k++) {
            if (data[k - 1] == '\n' && memcmp(data + k, "MGJ1 ", 5) == 0) {
                later = true;
                break;
            }
        }
        off_t at = j->offset;
        if (later) {
            j->broken = true;
            snprintf(j->last_error, sizeof(j->last_error),
                     "journal %s is corrupt at byte %lld (%s) and valid records follow; refusing "
                     "to load it (restore it or move it aside)", j->path, (long long) at, bad);
            rc = mg_err_set(err, MG_ERR_INTERNAL, "%s", j->last_error);
        } else {
            bool ex = lock_held;
            if (!ex) {
                /* upgrade: re-check under LOCK_EX before truncating anything */
                flock(j->fd, LOCK_UN);
                if (flock(j->fd, LOCK_EX) == 0) {
                    ex = true;
                    struct stat st2;
                    if (fstat(j->fd, &st2) == 0 && st2.st_size != st.st_size) {
                        /* a writer appended meanwhile: read again */
                        free(data);
                        rc = mg_journal_catch_up(j, true, err);
                        flock(j->fd, LOCK_UN);
                        return rc;
                    }
                }
            }
            if (ex) {
                rc = mg_journal_quarantine(j, at, st.st_size, bad, err);
            }
        }
    }
    free(data);
out:
    if (took) {
        flock(j->fd, LOCK_UN); /* releases SH, or the EX taken for a repair */
    }
    return rc;
}

static int
mg_journal_append(mg_journal_t *j, json_t *payload, mg_err_t *err)
{
    char *p = json_dumps(payload, JSON_COMPACT);
    size_t pl = strlen(p);
    char hex[65];
    mg_sha256_hex(p, pl, hex);
    mg_buf_t b = MG_BUF_INIT;
    mg_buf_printf(&b, "MGJ1 %lld %zu %.16s\n", (long long) (j->version + 1), pl, hex);
    mg_buf_append(&b, p, pl);
    mg_buf_append(&b, "\n", 1);
    free(p);
    size_t len = mg_buf_len(&b);
    const char *d = mg_buf_head(&b);
    size_t done = 0;
    int rc = MG_OK;
    while (done < len) {
        ssize_t n = pwrite(j->fd, d + done, len - done, j->offset + (off_t) done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = mg_err_set(err, MG_ERR_INTERNAL, "write(\"%s\") failed (%d: %s)", j->path, errno,
                            strerror(errno));
            break;
        }
        done += (size_t) n;
    }
    if (rc == MG_OK && fdatasync(j->fd) != 0) {
        rc = mg_err_set(err, MG_ERR_INTERNAL, "fdatasync(\"%s\") failed (%d: %s)", j->path, errno,
                        strerror(errno));
    }
    if (rc != MG_OK) {
        /* drop whatever part was written: it was never acknowledged */
        if (ftruncate(j->fd, j->offset) != 0) {
            mg_log(MG_LOG_ERROR, NULL, "ftruncate(\"%s\") after a failed write failed", j->path);
        }
    } else {
        j->offset += (off_t) len;
        j->version++;
        j->records++;
    }
    mg_buf_free(&b);
    return rc;
}

/* ---- store ops ---- */

static void
mg_journal_load(mg_store_t *s, mg_store_load_cb cb, void *ud)
{
    mg_journal_t *j = s->impl;
    mg_err_t err;
    if (mg_journal_catch_up(j, false, &err) != MG_OK) {
        snprintf(j->last_error, sizeof(j->last_error), "%s", err.msg);
        cb(ud, MG_ERROR, j->version, NULL, NULL, NULL, &err);
        return;
    }
    json_t *models = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(j->models, k, v) {
        json_array_append(models, v);
    }
    /* the snapshot keeps what it is given while requests pin it, and the journal replaces
     * rows of its own tables in place: hand over containers of our own, holding references
     * on the rows (which are never changed in place, only replaced) */
    json_t *policies = json_copy(j->policies);
    json_t *idents = json_object();
    json_object_foreach(j->idents, k, v) {
        json_object_set_new(idents, k, json_copy(v));
    }
    json_t *shown = mg_spend_present(idents); /* each row's spend: as the spend log has it */
    cb(ud, MG_OK, j->version, models, policies, shown, NULL);
    json_decref(shown);
    json_decref(models);
    json_decref(policies);
    json_decref(idents);
}

static void
mg_journal_get_version(mg_store_t *s, mg_store_version_cb cb, void *ud)
{
    mg_journal_t *j = s->impl;
    struct stat st;
    if (!j->broken && fstat(j->fd, &st) == 0 && st.st_size == j->offset) {
        cb(ud, MG_OK, j->version, NULL);
        return;
    }
    mg_err_t err;
    if (mg_journal_catch_up(j, false, &err) != MG_OK) {
        cb(ud, MG_ERROR, j->version, &err);
        return;
    }
    cb(ud, MG_OK, j->version, NULL);
}

static json_t *
mg_journal_row(mg_journal_t *j, json_t *plain_row)
{
    json_t *row = json_deep_copy(plain_row);
    json_object_set_new(row, "litellm_params",
                        mg_crypto_encrypt_object(&j->crypto, json_object_get(plain_row, "litellm_params")));
    return row;
}

static void
mg_journal_mutate(mg_store_t *s, json_t *m, mg_store_mutate_cb cb, void *ud)
{
    mg_journal_t *j = s->impl;
    mg_err_t err;
    mg_err_clear(&err);
    if (flock(j->fd, LOCK_EX) != 0) {
        mg_err_set(&err, MG_ERR_INTERNAL, "flock(\"%s\") failed (%d: %s)", j->path, errno,
                   strerror(errno));
        cb(ud, MG_ERROR, j->version, NULL, &err);
        return;
    }
    if (mg_journal_catch_up(j, true, &err) != MG_OK) {
        flock(j->fd, LOCK_UN);
        cb(ud, MG_ERROR, j->version, NULL, &err);
        return;
    }
    const char *op = json_string_value(json_object_get(m, "op"));
    const char *id = json_string_value(json_object_get(m, "model_id"));
    char now[40];
    mg_journal_now(now, sizeof(now));
    json_t *rec = NULL;
    json_t *result = NULL;
    if (op == NULL) {
        mg_err_set(&err, MG_ERR_BAD_REQUEST, "mutation without op");
    } else if (strcmp(op, "model_new") == 0) {
        if (id == NULL) {
            mg_err_set(&err, MG_ERR_BAD_REQUEST, "model_new without model_id");
        } else if (json_object_get(j->models, id) != NULL) {
            mg_err_set(&err, MG_ERR_BAD_REQUEST, "Model with id=%s already exists", id);
        } else {
            const char *user = json_string_value(json_object_get(m, "user"));
            result = json_pack("{s:s,s:O,s:O,s:O,s:s,s:s,s:s,s:s}", "model_id", id, "model_name",
                               json_object_get(m, "model_name"), "litellm_params",
                               json_object_get(m, "litellm_params"), "model_info",
                               json_object_get(m, "model_info"), "created_at", now, "updated_at",
                               now, "created_by", user ? user : "default_user_id", "updated_by",
                               user ? user : "default_user_id");
            rec = json_pack("{s:s,s:o}", "op", "model_new", "row", mg_journal_row(j, result));
        }
    } else if (strcmp(op, "model_update") == 0) {
        json_t *cur = id ? json_object_get(j->models, id) : NULL;
        if (cur == NULL) {
            mg_err_set(&err, MG_ERR_NO_ROUTE, "Model with id=%s not found", id ? id : "");
        } else {
            result = json_deep_copy(cur);
            json_t *name = json_object_get(m, "model_name");
            if (json_is_string(name)) {
                json_object_set(result, "model_name", name);
            }
            const char *sect[] = {"litellm_params", "model_info"};
            for (int i = 0; i < 2; i++) {
                json_t *dst = json_object_get(result, sect[i]);
                if (!json_is_object(dst)) {
                    dst = json_object();
                    json_object_set_new(result, sect[i], dst);
                }
                const char *k;
                json_t *v;
                json_object_foreach(json_object_get(m, sect[i]), k, v) {
                    json_object_set(dst, k, v);
                }
            }
            size_t ci;
            json_t *cv;
            json_array_foreach(json_object_get(m, "clear"), ci, cv) {
                /* "litellm_params.<key>" or "model_info.<key>" */
                const char *ck = json_string_value(cv);
                if (ck != NULL && strncmp(ck, "litellm_params.", 15) == 0) {
                    json_object_del(json_object_get(result, "litellm_params"), ck + 15);
                } else if (ck != NULL && strncmp(ck, "model_info.", 11) == 0) {
                    json_object_del(json_object_get(result, "model_info"), ck + 11);
                }
            }
            const char *user = json_string_value(json_object_get(m, "user"));
            json_object_set_new(result, "updated_at", json_string(now));
            json_object_set_new(result, "updated_by", json_string(user ? user : "default_user_id"));
            rec = json_pack("{s:s,s:o}", "op", "model_update", "row", mg_journal_row(j, result));
        }
    } else if (strcmp(op, "model_delete") == 0) {
        if (id == NULL || json_object_get(j->models, id) == NULL) {
            mg_err_set(&err, MG_ERR_NO_ROUTE, "Model with id=%s not found", id ? id : "");
        } else {
            rec = json_pack("{s:s,s:s}", "op", "model_delete", "model_id", id);
        }
    } else if (strcmp(op, "policy_update") == 0) {
        result = json_pack("{s:O,s:O,s:O,s:O,s:s}", "name", json_object_get(m, "name"), "kind",
                           json_object_get(m, "kind"), "source", json_object_get(m, "source"),
                           "hash", json_object_get(m, "hash"), "updated_at", now);
        rec = json_pack("{s:s,s:O}", "op", "policy_update", "policy", result);
    } else if (strcmp(op, "policy_delete") == 0) {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (name == NULL || json_object_get(j->policies, name) == NULL) {
            mg_err_set(&err, MG_ERR_NO_ROUTE, "policy \"%s\" is not stored", name ? name : "");
        } else {
            rec = json_pack("{s:s,s:s}", "op", "policy_delete", "name", name);
        }
    } else if (strcmp(op, "ident_put") == 0 || strcmp(op, "ident_patch") == 0 ||
               strcmp(op, "ident_delete") == 0) {
        rec = mg_journal_ident(j, op, m, now, &result, &err);
    } else if (strcmp(op, "bump") == 0) {
        rec = json_pack("{s:s,s:O,s:s}", "op", "bump", "reason", json_object_get(m, "reason"), "at",
                        now);
    } else {
        mg_err_set(&err, MG_ERR_BAD_REQUEST, "unknown mutation op \"%s\"", op);
    }
    if (rec == NULL && err.cls == MG_ERR_NONE) {
        mg_err_set(&err, MG_ERR_BAD_REQUEST, "mutation %s is missing fields", op ? op : "?");
    }
    if (rec != NULL) {
        json_object_set_new(rec, "version", json_integer(j->version + 1));
        if (mg_journal_append(j, rec, &err) == MG_OK) {
            mg_err_t e2;
            if (mg_journal_apply(j, rec, &e2) != MG_OK) {
                mg_log(MG_LOG_ERROR, NULL, "journal: applying our own record failed: %s", e2.msg);
            }
        }
        json_decref(rec);
    }
    flock(j->fd, LOCK_UN);
    if (err.cls != MG_ERR_NONE) {
        json_decref(result);
        cb(ud, MG_ERROR, j->version, NULL, &err);
        return;
    }
    cb(ud, MG_OK, j->version, result, NULL);
    json_decref(result);
}

static void
mg_journal_watch(mg_store_t *s, mg_store_hint_cb on_hint, mg_store_reconnect_cb on_reconnect,
                 void *ud)
{
    /* local: the master relays hints between workers; the poll stats the file */
    (void) s;
    (void) on_hint;
    (void) on_reconnect;
    (void) ud;
}

static json_t *
mg_journal_status(mg_store_t *s)
{
    mg_journal_t *j = s->impl;
    json_t *st = json_pack("{s:s,s:s,s:b,s:I,s:I,s:I}", "type", "journal", "path", j->path,
                           "connected", !j->broken, "version", (json_int_t) j->version, "records",
                           (json_int_t) j->records, "bytes", (json_int_t) j->offset);
    json_object_set_new(st, "last_error", j->last_error[0] ? json_string(j->last_error) : json_null());
    json_object_set_new(st, "repaired", j->repaired[0] ? json_string(j->repaired) : json_null());
    return st;
}

static void
mg_journal_destroy(mg_store_t *s)
{
    mg_journal_t *j = s->impl;
    if (j->fd >= 0) {
        close(j->fd);
    }
    json_decref(j->models);
    json_decref(j->policies);
    json_decref(j->idents);
    free(j->dir);
    free(j->path);
    free(j);
    free(s);
}

static const mg_store_ops_t mg_journal_ops = {
    "journal", mg_journal_load, mg_journal_get_version, mg_journal_mutate,
    mg_journal_watch, mg_journal_status, mg_journal_destroy,
};

mg_store_t *
mg_store_journal_create(const mg_store_conf_t *conf, mg_err_t *err)
{
    if (conf->state_dir == NULL || conf->state_dir[0] == '\0') {
        mg_err_set(err, MG_ERR_CONFIG, "no state directory configured");
        return NULL;
    }
    if (mg_journal_mkdirs(conf->state_dir, err) != MG_OK) {
        return NULL;
    }
    mg_journal_t *j = mg_xcalloc(1, sizeof(*j));
    j->dir = mg_xstrdup(conf->state_dir);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/registry.journal", conf->state_dir);
    j->path = mg_xstrdup(path);
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        mg_err_set(err, MG_ERR_CONFIG, "open(\"%s\") failed (%d: %s)", path, errno, strerror(errno));
        free(j->dir);
        free(j->path);
        free(j);
        return NULL;
    }
    mg_crypto_init(&j->crypto, conf->secret);
    j->models = json_object();
    j->policies = json_object();
    j->idents = mg_store_idents_new();
    mg_store_t *s = mg_xcalloc(1, sizeof(*s));
    s->ops = &mg_journal_ops;
    s->impl = j;
    return s;
}
