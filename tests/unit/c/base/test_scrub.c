/*
 * test_scrub.c -- core/base/mg_scrub.c: known secrets and key-shaped tokens are redacted
 * wherever they appear (raw, JSON-escaped, in URLs, headers, PEM blocks), ordinary text is
 * left byte for byte, and mg_log never prints a known secret.  Ends with a report-only
 * microbenchmark (no threshold).
 */
#include "mg_test.h"

#include "base/mg_arena.h"
#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "base/mg_log.h"
#include "base/mg_scrub.h"

#include <fcntl.h>
#include <jansson.h>
#include <time.h>

/* ---- helpers ---- */

/* Scrubbed copy of s[0..n) as a malloc'd NUL-terminated string (length in *outn). */
static char *
t_scrub_n(const mg_scrub_set_t *set, const char *s, size_t n, size_t *outn)
{
    mg_buf_t b = MG_BUF_INIT;
    mg_scrub(set, s, n, &b);
    size_t len = mg_buf_len(&b);
    char *r = malloc(len + 1);
    if (len > 0) {
        memcpy(r, mg_buf_head(&b), len);
    }
    r[len] = '\0';
    mg_buf_free(&b);
    if (outn != NULL) {
        *outn = len;
    }
    return r;
}

static char *
t_scrub(const mg_scrub_set_t *set, const char *s)
{
    return t_scrub_n(set, s, strlen(s), NULL);
}

/* Checks scrub(s) == want exactly. */
#define CHECK_SCRUB(set, s, want)                                                                  \
    do {                                                                                           \
        char *t_got = t_scrub((set), (s));                                                         \
        CHECK_STR(t_got, (want));                                                                  \
        free(t_got);                                                                               \
    } while (0)

/* True if any window of `win` bytes of secret occurs in hay[0..n). */
static bool
t_leaks(const char *hay, size_t n, const char *secret, size_t win)
{
    size_t sl = strlen(secret);
    if (sl < win) {
        win = sl;
    }
    for (size_t i = 0; i + win <= sl; i++) {
        if (memmem(hay, n, secret + i, win) != NULL) {
            return true;
        }
    }
    return false;
}

/* A JSON-escaped copy with "/" written as "\/" (what PHP/Java encoders do). */
static char *
t_json_slash(const char *s)
{
    mg_buf_t b = MG_BUF_INIT;
    /* escaped a run at a time: a byte alone may be part of a UTF-8 character */
    for (const char *p = s; *p;) {
        if (*p == '/') {
            mg_buf_append(&b, "\\/", 2);
            p++;
            continue;
        }
        size_t n = strcspn(p, "/");
        mg_buf_json_escape(&b, p, n);
        p += n;
    }
    char *r = mg_xstrdup(mg_buf_cstr(&b));
    mg_buf_free(&b);
    return r;
}

/* Seeded xorshift64*, so every run tests the same cases. */
static uint64_t t_rng = 0x9E3779B97F4A7C15ull;

static uint64_t
t_rand(void)
{
    t_rng ^= t_rng >> 12;
    t_rng ^= t_rng << 25;
    t_rng ^= t_rng >> 27;
    return t_rng * 2685821657736338717ull;
}

static size_t
t_randn(size_t n)
{
    return (size_t) (t_rand() % n);
}

/* ---- secret kinds ---- */

#define OPENAI_KEY "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv12"
#define AZURE_KEY "3f2a9c7e1b4d4e8f9a0b1c2d3e4f5a6b"
#define AWS_ID "AKIAIOSFODNN7EXAMPLE"
#define AWS_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define GOOGLE_KEY "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
#define MASTER_KEY "sk-1234"
#define JWT "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ." \
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
#define PEM_BODY1 "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
#define PEM_BODY2 "MIYaeCBLoLmw4ukHUTYf2lyfkYAbRF3XyvrQsOHgsaUd/mCfuhE+YAo2ae9HXnqB"
#define PEM_BODY3 "Qm9vdGxlZy1zZWNyZXQtcGVtLWJvZHktZm9yLXRlc3Rz=="
#define PEM_RAW "-----BEGIN PRIVATE KEY-----\n" PEM_BODY1 "\n" PEM_BODY2 "\n" PEM_BODY3 "\n" \
                "-----END PRIVATE KEY-----\n"
#define LONG_SECRET "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0"
#define SUB_SECRET "sk-ant-api03-Zx9Yw8Vu7"
#define DB_PASSWORD "s3cr3t-Pa55/w0rd"

static mg_scrub_set_t *
t_set(void)
{
    const char *secrets[] = {
        OPENAI_KEY, AZURE_KEY,  AWS_ID,      AWS_SECRET, GOOGLE_KEY, MASTER_KEY,
        PEM_RAW,    LONG_SECRET, SUB_SECRET, DB_PASSWORD, NULL,      "abc",
    };
    return mg_scrub_set_new(secrets, sizeof(secrets) / sizeof(secrets[0]));
}

static void
test_kinds(void)
{
    mg_scrub_set_t *set = t_set();

    MG_T_CASE("plain key in an upstream message");
    CHECK_SCRUB(set, "Incorrect API key provided: " OPENAI_KEY ". You can find your API key at "
                     "https://platform.openai.com/account/api-keys.",
                "Incorrect API key provided: sk-...Uv12. You can find your API key at "
                "https://platform.openai.com/account/api-keys.");
    /* a known secret that has no key shape */
    CHECK_SCRUB(set, "Access denied due to invalid subscription key " AZURE_KEY " (401)",
                "Access denied due to invalid subscription key ...5a6b (401)");
    /* an unknown sk- key is redacted by shape alone */
    CHECK_SCRUB(NULL, "bad key sk-unknownKey0123456789abcdefXYZ9 here",
                "bad key sk-...XYZ9 here");

    MG_T_CASE("key inside JSON with escaped slashes");
    {
        char *esc = t_json_slash(AWS_SECRET);
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"error\":{\"message\":\"The security token %s is invalid\","
                 "\"code\":403}}",
                 esc);
        size_t n;
        char *got = t_scrub_n(set, body, strlen(body), &n);
        CHECK(!t_leaks(got, n, esc, 8), "escaped secret survived: %s", got);
        CHECK(!t_leaks(got, n, AWS_SECRET, 8), "secret survived: %s", got);
        CHECK_STR(got, "{\"error\":{\"message\":\"The security token ...EKEY is invalid\","
                       "\"code\":403}}");
        json_error_t je;
        json_t *v = json_loads(got, 0, &je);
        CHECK(v != NULL, "scrubbed JSON no longer parses: %s", je.text);
        json_decref(v);
        free(got);
        free(esc);

        /* a JSON document carried in a JSON string: escaped twice */
        const char *twice = "{\"detail\":\"{\\\"message\\\":\\\"key " "wJalrXUtnFEMI\\\\\\/K7MDENG"
                            "\\\\\\/bPxRfiCYEXAMPLEKEY" "\\\"}\"}";
        got = t_scrub(set, twice);
        CHECK(strstr(got, "bPxRfiCY") == NULL && strstr(got, "wJalrX") == NULL, "%s", got);
        v = json_loads(got, 0, &je);
        CHECK(v != NULL, "scrubbed JSON no longer parses: %s (%s)", je.text, got);
        json_decref(v);
        free(got);

        /* percent-encoded (a secret carried in a query string or form body) */
        got = t_scrub(set, "secret_access=wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY&x=1");
        CHECK(strstr(got, "bPxRfiCY") == NULL, "%s", got);
        CHECK_CONTAINS(got, "&x=1");
        free(got);
    }

    MG_T_CASE("key in a URL query");
    CHECK_SCRUB(NULL, "POST https://generativelanguage.googleapis.com/v1beta/models/gemini:"
                      "generateContent?key=" GOOGLE_KEY "&alt=sse failed",
                "POST https://generativelanguage.googleapis.com/v1beta/models/gemini:"
                "generateContent?key=AIz...MBWY&alt=sse failed");
    CHECK_SCRUB(NULL, "GET /v1/x?api_key=abc123def456&model=m", "GET /v1/x?api_key=...&model=m");
    CHECK_SCRUB(NULL, "GET /v1/x?api-key=abc123def456#frag", "GET /v1/x?api-key=...#frag");
    CHECK_SCRUB(NULL, "wss://h/ws?access_token=q1w2e3r4t5y6&v=2",
                "wss://h/ws?access_token=...&v=2");
    CHECK_SCRUB(NULL, "https://acct.blob.core.windows.net/c/b?sv=2022&sig=Xy%2Bz9%3D&se=1",
                "https://acct.blob.core.windows.net/c/b?sv=2022&sig=...&se=1");
    CHECK_SCRUB(NULL, "https://b.s3.amazonaws.com/k?X-Amz-Credential=" AWS_ID
                      "%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature="
                      "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                      "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr",
                "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKI...uest&X-Amz-Signature="
                "...b5d7&X-Amz-Security-Token=...");
    CHECK_SCRUB(NULL, "https://h/?token=T0k3nValue", "https://h/?token=...");
    /* in a JSON string the value ends at the escaped quote or \u0026 */
    CHECK_SCRUB(NULL, "{\"url\":\"https:\\/\\/h\\/p?key=Zz9Yy8Xx7Ww6\\u0026b=1\"}",
                "{\"url\":\"https:\\/\\/h\\/p?key=...\\u0026b=1\"}");

    MG_T_CASE("Bearer and key header lines");
    CHECK_SCRUB(NULL, "authorization: Bearer tok_9f8e7d6c5b4a39281706\r\nhost: x\r\n",
                "authorization: Bearer ...1706\r\nhost: x\r\n");
    CHECK_SCRUB(NULL, "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ...");
    CHECK_SCRUB(NULL, "x-api-key: 0123456789abcdefabcd0123456789\nnext",
                "x-api-key: ...6789\nnext");
    CHECK_SCRUB(NULL, "api-key: Kq7Z2mB9xW4t", "api-key: ...");
    CHECK_SCRUB(NULL,
                "{\"headers\":{\"Authorization\":\"Bearer abc.def.ghi\",\"x-api-key\":\"k\"}}",
                "{\"headers\":{\"Authorization\":\"Bearer ...\",\"x-api-key\":\"...\"}}");
    CHECK_SCRUB(NULL, "{\"api_key\": \"hunter22hunter22\", \"password\":\"pw\", "
                      "\"x\": \"os.environ/OPENAI_API_KEY\", \"n\": null}",
                "{\"api_key\": \"...\", \"password\":\"...\", "
                "\"x\": \"os.environ/OPENAI_API_KEY\", \"n\": null}");
    CHECK_SCRUB(NULL, "OPENAI_API_KEY=plainlettersonly --db-password=Xyz", "OPENAI_API_KEY=... "
                                                                           "--db-password=...");
    /* the known master key is short and has no key shape: the set catches it */
    CHECK_SCRUB(set, "Authorization: Bearer " MASTER_KEY, "Authorization: Bearer sk-...");
    CHECK_SCRUB(set, "{\"master_key\":\"" MASTER_KEY "\"}", "{\"master_key\":\"sk-...\"}");
    CHECK_SCRUB(set, "key " MASTER_KEY ".", "key sk-....");

    MG_T_CASE("AWS key id and secret");
    {
        const char *sigv4 =
            "Authorization: AWS4-HMAC-SHA256 Credential=" AWS_ID
            "/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        char *got = t_scrub(NULL, sigv4);
        CHECK(strstr(got, "AKIAIOSF") == NULL && strstr(got, "5d672d79") == NULL, "%s", got);
        CHECK_CONTAINS(got, "SignedHeaders=host;x-amz-date");
        free(got);
        CHECK_SCRUB(NULL, "The access key ID " AWS_ID " does not exist",
                    "The access key ID AKI... does not exist");
        CHECK_SCRUB(NULL, "temporary ASIAY34FZKBOKMUTVV7A expired", "temporary ASI... expired");
        CHECK_SCRUB(set, "aws_secret_access_key = " AWS_SECRET "\n",
                    "aws_secret_access_key = ...EKEY\n");
    }

    MG_T_CASE("Google API key");
    CHECK_SCRUB(NULL, "API key not valid: " GOOGLE_KEY ".", "API key not valid: AIz...MBWY.");

    MG_T_CASE("service-account private key PEM block");
    {
        /* unknown key: raw newlines */
        const char *raw = "key: " PEM_RAW "rest";
        char *got = t_scrub(NULL, raw);
        CHECK_STR(got, "key: -----BEGIN PRIVATE KEY-----...-----END PRIVATE KEY-----\nrest");
        free(got);
        /* unknown key inside a service-account JSON file: escaped newlines */
        const char *js = "{\"type\":\"service_account\","
                         "\"private_key\":\"-----BEGIN RSA PRIVATE KEY-----"
                         "\\n" PEM_BODY1 "\\n" PEM_BODY2 "\\n-----END RSA PRIVATE KEY-----\\n\","
                         "\"client_email\":\"sa@p.iam.gserviceaccount.com\"}";
        got = t_scrub(NULL, js);
        CHECK(strstr(got, "MIIEvQ") == NULL && strstr(got, "MIYaeC") == NULL, "%s", got);
        CHECK_CONTAINS(got, "\"client_email\":\"sa@p.iam.gserviceaccount.com\"");
        json_error_t je;
        json_t *v = json_loads(got, 0, &je);
        CHECK(v != NULL, "scrubbed JSON no longer parses: %s (%s)", je.text, got);
        json_decref(v);
        free(got);
        /* cut in the middle: the rest of the body still goes */
        got = t_scrub(NULL, "-----BEGIN EC PRIVATE KEY-----\n" PEM_BODY1 "\n" PEM_BODY2);
        CHECK_STR(got, "-----BEGIN EC PRIVATE KEY-----...");
        free(got);
        /* the known key (the config's private_key value) in JSON form */
        mg_buf_t b = MG_BUF_INIT;
        mg_buf_append_str(&b, "{\"credentials\":");
        mg_buf_json_str(&b, PEM_RAW, strlen(PEM_RAW));
        mg_buf_append_str(&b, "}");
        got = t_scrub(set, mg_buf_cstr(&b));
        CHECK(!t_leaks(got, strlen(got), PEM_BODY3, 8), "%s", got);
        free(got);
        mg_buf_free(&b);
        /* the armour survives other rules, and a redacted body stays as it is */
        CHECK_SCRUB(NULL,
                    "-----BEGIN PRIVATE KEY-----" PEM_BODY1 " Bearer -----END PRIVATE KEY-----",
                    "-----BEGIN PRIVATE KEY-----...-----END PRIVATE KEY-----");
        CHECK_SCRUB(NULL, "-----BEGIN PRIVATE KEY-----...", "-----BEGIN PRIVATE KEY-----...");
        /* certificates and public keys are not secret */
        const char *cert =
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----";
        CHECK_SCRUB(NULL, cert, cert);
    }

    MG_T_CASE("JWT");
    CHECK_SCRUB(NULL, "token " JWT " expired", "token eyJ...sw5c expired");
    CHECK_SCRUB(NULL, "{\"id_token\":\"" JWT "\"}", "{\"id_token\":\"eyJ...sw5c\"}");

    MG_T_CASE("URL with user:password");
    CHECK_SCRUB(NULL, "connect to postgresql://moon:s3cr3tpw@db.internal:5432/litellm failed",
                "connect to postgresql://moon:...@db.internal:5432/litellm failed");
    CHECK_SCRUB(NULL, "redis://:hunter2pw@cache:6379/0", "redis://:...@cache:6379/0");
    CHECK_SCRUB(NULL, "{\"u\":\"https:\\/\\/bob:pw9zz@h.example\\/x\"}",
                "{\"u\":\"https:\\/\\/bob:...@h.example\\/x\"}");
    CHECK_SCRUB(NULL,
                "https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r",
                "https://x-access-token:...8B4a@github.com/o/r");
    CHECK_SCRUB(NULL, "ssh://git@github.com/o/r", "ssh://git@github.com/o/r");
    /* the configured database password, even outside a URL, as written and encoded */
    {
        mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
        mg_scrub_builder_add_url_password(&b, "postgresql://app:s3cr3t-Pa55%2Fw0rd@db:5432/x");
        mg_scrub_set_t *dbs = mg_scrub_builder_finish(&b);
        CHECK_INT(mg_scrub_set_count(dbs), 2);
        CHECK_SCRUB(dbs, "password s3cr3t-Pa55/w0rd rejected", "password ... rejected");
        CHECK_SCRUB(dbs, "password s3cr3t-Pa55%2Fw0rd rejected", "password ... rejected");
        mg_scrub_set_unref(dbs);
    }

    MG_T_CASE("a secret that is a substring of another");
    CHECK_SCRUB(set, "k1=" SUB_SECRET " k2=" LONG_SECRET " end",
                "k1=sk-... k2=sk-...1Hg0 end");
    {
        char *got = t_scrub(set, "long " LONG_SECRET "; short " SUB_SECRET ";");
        CHECK(!t_leaks(got, strlen(got), LONG_SECRET, 6), "%s", got);
        CHECK(strstr(got, "Rq5Po4") == NULL, "%s", got);
        free(got);
    }

    MG_T_CASE("a secret overlapping a key-shaped token");
    {
        /* the sk- token stops at ".", the known secret starts inside it and runs on */
        const char *sec = "Ef56.ghijklmnopqrstuvwx";
        mg_scrub_set_t *os = mg_scrub_set_new(&sec, 1);
        char *got = t_scrub(os, "x sk-Ab12Cd34Ef56.ghijklmnopqrstuvwx y");
        CHECK_STR(got, "x sk-...uvwx y");
        free(got);
        /* a Bearer token whose tail is a known secret */
        const char *sec2 = "Zq9Xw8Vu7Ts6Rr5Q";
        mg_scrub_set_t *os2 = mg_scrub_set_new(&sec2, 1);
        got = t_scrub(os2, "Bearer ab" "Zq9Xw8Vu7Ts6Rr5Q" "tail");
        CHECK(strstr(got, "Zq9Xw8") == NULL && strstr(got, "Ts6Rr5") == NULL, "%s", got);
        free(got);
        mg_scrub_set_unref(os);
        mg_scrub_set_unref(os2);
    }

    MG_T_CASE("tokens next to JSON escapes");
    CHECK_SCRUB(NULL,
                "{\"m\":\"first\\nsk-abcdef0123456789abcdefgh\\nBearer ab\\/cd0123456789\\/efgh\"}",
                "{\"m\":\"first\\nsk-...efgh\\nBearer ...efgh\"}");
    CHECK_SCRUB(NULL, "{\"m\":\"\\u0022" GOOGLE_KEY "\\u0022\"}",
                "{\"m\":\"\\u0022AIz...MBWY\\u0022\"}");
    /* a redaction is final: scrubbing twice changes nothing more */
    {
        const char *again[] = {
            "Incorrect API key provided: " OPENAI_KEY,
            "authorization: Bearer tok_9f8e7d6c5b4a39281706",
            "https://b/k?X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924",
            "postgresql://moon:s3cr3tpw@db/x " JWT " " PEM_RAW,
            "{\"api_key\": \"hunter22hunter22\"} key " MASTER_KEY " " AWS_SECRET,
        };
        for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++) {
            char *once = t_scrub(set, again[i]);
            char *twice = t_scrub(set, once);
            CHECK(strcmp(once, twice) == 0, "\"%s\" then \"%s\"", once, twice);
            free(once);
            free(twice);
        }
    }

    MG_T_CASE("non-ASCII and quoted secrets in JSON");
    {
        const char *pw = "p\xc3\xa4ss\"w\xc3\xb6rd\\42";
        mg_scrub_set_t *us = mg_scrub_set_new(&pw, 1);
        const char *forms[] = {
            "x p\xc3\xa4ss\"w\xc3\xb6rd\\42 y",
            "{\"m\":\"x p\xc3\xa4ss\\\"w\xc3\xb6rd\\\\42 y\"}",
            "{\"m\":\"x p\\u00e4ss\\\"w\\u00f6rd\\\\42 y\"}",
            "{\"m\":\"x p\\u00E4ss\\\"w\\u00F6rd\\\\42 y\"}",
        };
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
            char *got = t_scrub(us, forms[i]);
            CHECK(strstr(got, "ss") == NULL && strstr(got, "rd") == NULL, "form %zu: %s", i, got);
            if (i > 0) {
                json_error_t je;
                json_t *v = json_loads(got, 0, &je);
                CHECK(v != NULL, "form %zu no longer parses: %s (%s)", i, je.text, got);
                json_decref(v);
            }
            free(got);
        }
        mg_scrub_set_unref(us);
    }
    mg_scrub_set_unref(set);
}

/* ---- ordinary text ---- */

static const char *const t_words[] = {
    "task-runner", "disk-usage", "risk-free", "desk-top", "ask-me-anything", "whisk-",
    "sk-learn", "task-98765432", "kiosk-mode-2024", "basket", "skip-list", "sketch-pad",
    "the bearer of bad news", "a bearer token is required", "Bearer authentication failed",
    "Basic authentication", "basic-auth", "keyboard", "key-value store", "monkey", "api-keys",
    "token-count", "tokens", "tokenizer", "authorization failed", "authorization: required",
    "passwords must match", "password reset", "secret sauce", "signature verification failed",
    "credentials", "X-Request-Id", "x-ratelimit-remaining-tokens: 9000", "gpt-4o-mini",
    "claude-3-5-sonnet-20241022", "text-embedding-3-small", "us-east-1", "eu-west-2",
    "moongate-worker-1", "deployment=\"gpt4o-east\"", "sk-", "sk-1", "pk_", "rk_", "sk-proj-",
    "https://api.openai.com/v1/chat/completions", "http://127.0.0.1:4000/v1",
    "ssh://git@github.com/org/repo", "user@example.com", "-----BEGIN CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----", "eyJ", "AKIA", "AIza", "ASIAN markets", "AKIAFOO",
    "request_id=5f0c3e6a-1b2c-4d5e-8f90-123456789abc", "max_tokens=100",
    "Key Hash (Token) =9f86d081884c7d659a2feaa0c55ad015", "cache_key=abc12345", "session-affinity",
    "skeleton", "Skipping", "Authentication Error, Invalid proxy server token passed.",
    "2024-05-01T12:34:56.789Z [warn] worker[1] req=abc: upstream answered 429",
    "prompt_tokens", "\"total_tokens\": 42", "\"token\": \"Hello\"", "\"key\": \"value\"",
    "\"type\": \"invalid_request_error\", \"code\": \"invalid_api_key\"", "api_key_alias",
    "error: rate limited", "model: gpt-4o", "retry-after: 20", "Content-Type: application/json",
    "x-litellm-key-spend: 0.0", "data: [DONE]", "key_alias=team-a", "sk-... already redacted",
    "Bearer ...abcd", "key=...", "api_key=sk-...abcd", "multi-provider-fallback",
};

static void
test_ordinary(void)
{
    MG_T_CASE("ordinary words and identifiers unchanged");
    mg_scrub_set_t *set = t_set();
    for (size_t i = 0; i < sizeof(t_words) / sizeof(t_words[0]); i++) {
        char *got = t_scrub(set, t_words[i]);
        CHECK(strcmp(got, t_words[i]) == 0, "\"%s\" became \"%s\"", t_words[i], got);
        CHECK(!mg_scrub_found(set, t_words[i], strlen(t_words[i])), "found in \"%s\"", t_words[i]);
        free(got);
    }

    MG_T_CASE("text without secrets unchanged byte for byte");
    const char *json = "{\"error\":{\"message\":\"That model is currently overloaded with other "
                       "requests. You can retry your request.\",\"type\":\"server_error\","
                       "\"param\":null,\"code\":null}}";
    CHECK_SCRUB(set, json, json);
    CHECK_SCRUB(set, "", "");
    /* every byte value, invalid UTF-8, NUL bytes */
    unsigned char bin[512];
    for (size_t i = 0; i < sizeof(bin); i++) {
        bin[i] = (unsigned char) (i * 7 + (i >> 8));
    }
    size_t n;
    char *got = t_scrub_n(set, (const char *) bin, sizeof(bin), &n);
    CHECK(n == sizeof(bin) && memcmp(got, bin, n) == 0, "binary changed (%zu bytes)", n);
    free(got);
    const char bad[] = "\xff\xfe\xc3 \xe2\x82 \xf0\x9f\x98\x80 ok \x80\x00tail";
    got = t_scrub_n(set, bad, sizeof(bad) - 1, &n);
    CHECK(n == sizeof(bad) - 1 && memcmp(got, bad, n) == 0, "invalid UTF-8 changed");
    free(got);
    /* random bytes around a secret: only the secret changes */
    char buf[300];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (char) (0x80 | t_randn(128));
    }
    memcpy(buf + 100, " " AZURE_KEY " ", strlen(AZURE_KEY) + 2);
    got = t_scrub_n(set, buf, sizeof(buf), &n);
    CHECK(n == sizeof(buf) - strlen(AZURE_KEY) + 7 && memcmp(got, buf, 101) == 0 &&
              memcmp(got + 101, "...5a6b", 7) == 0 &&
              memcmp(got + 108, buf + 101 + strlen(AZURE_KEY),
                     sizeof(buf) - 101 - strlen(AZURE_KEY)) == 0,
          "bytes around the secret changed");
    free(got);
    mg_scrub_set_unref(set);
}

/* ---- the redacted form ---- */

static void
test_redact_form(void)
{
    MG_T_CASE("redacted forms");
    char out[MG_SCRUB_REDACT_MAX + 1];
    CHECK_INT(mg_scrub_redact(OPENAI_KEY, strlen(OPENAI_KEY), out), 10);
    CHECK_STR(out, "sk-...Uv12");
    mg_scrub_redact("sk-1234", 7, out);
    CHECK_STR(out, "sk-...");
    mg_scrub_redact(AZURE_KEY, strlen(AZURE_KEY), out);
    CHECK_STR(out, "...5a6b");
    mg_scrub_redact("abcdef", 6, out);
    CHECK_STR(out, "...");
    /* the tail shows only when 16 more characters stay hidden */
    mg_scrub_redact("0123456789abcdefghi", 19, out);
    CHECK_STR(out, "...");
    mg_scrub_redact("0123456789abcdefghij", 20, out);
    CHECK_STR(out, "...ghij");
    mg_scrub_redact("sk-0123456789abcdefghi", 22, out);
    CHECK_STR(out, "sk-...");
    /* no tail that could split UTF-8 or a JSON escape */
    mg_scrub_redact("0123456789abcdefghij\\\"", 22, out);
    CHECK_STR(out, "...");
    mg_scrub_redact("0123456789abcdefghi\xc3\xa4", 21, out);
    CHECK_STR(out, "...");
    /* mg_log_redact uses the same formatter */
    char lr[32];
    CHECK_STR(mg_log_redact("sk-e2e-unknown-virtual-key-7731", lr, sizeof(lr)), "sk-...7731");
    CHECK_STR(mg_log_redact(NULL, lr, sizeof(lr)), "(none)");
    CHECK_STR(mg_log_redact("not-an-sk-key", lr, sizeof(lr)), "...");

    /* never longer than the prefix, "..." and 4; never more than 4 of the secret shown */
    for (size_t len = 0; len < 200; len++) {
        char tok[200];
        for (size_t i = 0; i < len; i++) {
            tok[i] = (char) ('a' + t_randn(26));
        }
        if (len >= 3 && (len & 1)) {
            memcpy(tok, "sk-", 3);
        }
        size_t rl = mg_scrub_redact(tok, len, out);
        CHECK(rl <= MG_SCRUB_REDACT_MAX && rl == strlen(out), "len %zu -> \"%s\"", len, out);
        size_t shown = rl - 3 - ((len >= 3 && (len & 1)) ? 3 : 0);
        CHECK(shown == 0 || (shown == 4 && memcmp(out + rl - 4, tok + len - 4, 4) == 0),
              "len %zu shows %zu: \"%s\"", len, shown, out);
    }
}

/* ---- the wrappers ---- */

static void
test_wrappers(void)
{
    mg_scrub_set_t *set = t_set();

    MG_T_CASE("builder: short ignored, duplicates merged");
    CHECK_INT(mg_scrub_set_count(set), 10);
    CHECK_INT(mg_scrub_set_ignored(set), 1); /* "abc"; NULL is not counted */
    {
        mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
        mg_scrub_builder_add_str(&b, "duplicate-secret-1");
        mg_scrub_builder_add_str(&b, "duplicate-secret-1");
        mg_scrub_builder_add_str(&b, "12345");
        mg_scrub_builder_add_str(&b, "");
        mg_scrub_builder_add_str(&b, NULL);
        mg_scrub_set_t *s = mg_scrub_builder_finish(&b);
        CHECK_INT(mg_scrub_set_count(s), 1);
        CHECK_INT(mg_scrub_set_ignored(s), 1);
        CHECK_INT(b.n, 0);
        CHECK_SCRUB(s, "12345 duplicate-secret-1", "12345 ...");
        CHECK(mg_scrub_set_ref(s) == s);
        mg_scrub_set_unref(s);
        CHECK_SCRUB(s, "duplicate-secret-1", "...");
        mg_scrub_set_unref(s);
        mg_scrub_set_unref(NULL);
    }

    MG_T_CASE("json_str: one pass, valid JSON, scrubbed");
    {
        const char *msg =
            "upstream said: \"Incorrect API key provided: " OPENAI_KEY "\"\n\ttab \x01";
        mg_buf_t b = MG_BUF_INIT;
        mg_scrub_json_str(set, msg, strlen(msg), &b);
        json_error_t je;
        json_t *v = json_loadb(mg_buf_head(&b), mg_buf_len(&b), JSON_DECODE_ANY, &je);
        CHECK(v != NULL && json_is_string(v), "not a JSON string: %s", je.text);
        char *want = t_scrub(set, msg);
        CHECK_STR(v ? json_string_value(v) : NULL, want);
        free(want);
        json_decref(v);
        mg_buf_free(&b);
    }

    MG_T_CASE("cstr, arena, fixed, err");
    {
        char *c = mg_scrub_cstr(set, "k=" AZURE_KEY);
        CHECK_STR(c, "k=...5a6b");
        free(c);
        CHECK(mg_scrub_cstr(set, NULL) == NULL);
        mg_arena_t a;
        mg_arena_init(&a, 1024);
        CHECK_STR(mg_scrub_arena(&a, set, "x " OPENAI_KEY " y", 4 + strlen(OPENAI_KEY)),
                  "x sk-...Uv12 y");
        CHECK_STR(mg_scrub_arena(&a, set, "", 0), "");
        mg_arena_destroy(&a);
        char f[12];
        size_t fl =
            mg_scrub_fixed(set, "abc " AZURE_KEY " tail", 9 + strlen(AZURE_KEY), 0, f, sizeof(f));
        CHECK_INT(fl, 11);
        CHECK_STR(f, "abc ...5a6b");
        /* a cut text ends with a secret's head: redacted only when flagged as cut */
        const char *cut = "the key is 3f2a9c7e1b";
        fl = mg_scrub_fixed(set, cut, strlen(cut), MG_SCRUB_CUT_END, f, sizeof(f));
        CHECK_STR(f, "the key is ");
        char big[64];
        mg_scrub_fixed(set, cut, strlen(cut), MG_SCRUB_CUT_END, big, sizeof(big));
        CHECK_STR(big, "the key is ...");
        mg_scrub_fixed(set, cut, strlen(cut), 0, big, sizeof(big));
        CHECK_STR(big, cut);

        mg_err_t err;
        mg_err_set(&err, MG_ERR_AUTH, "upstream 401: {\"error\":\"bad key %s\"}", AZURE_KEY);
        mg_scrub_err(set, &err);
        CHECK_STR(err.msg, "upstream 401: {\"error\":\"bad key ...5a6b\"}");
        /* a message cut at MG_ERR_MSG_MAX in the middle of a secret */
        char pad[MG_ERR_MSG_MAX];
        memset(pad, 'x', sizeof(pad));
        pad[MG_ERR_MSG_MAX - 16] = ' ';
        pad[MG_ERR_MSG_MAX - 15] = '\0';
        mg_err_set(&err, MG_ERR_AUTH, "%s%s", pad, AZURE_KEY);
        mg_scrub_err(set, &err);
        CHECK(!t_leaks(err.msg, strlen(err.msg), AZURE_KEY, 4), "cut secret head left: %s",
              err.msg + MG_ERR_MSG_MAX - 30);
    }

    MG_T_CASE("many spans (more than the stack array)");
    {
        mg_buf_t in = MG_BUF_INIT;
        for (int i = 0; i < 500; i++) {
            mg_buf_printf(&in, "%d " AZURE_KEY " ", i);
        }
        size_t n;
        char *got = t_scrub_n(set, mg_buf_head(&in), mg_buf_len(&in), &n);
        CHECK(!t_leaks(got, n, AZURE_KEY, 8));
        CHECK_CONTAINS(got, "499 ...5a6b ");
        free(got);
        mg_buf_free(&in);
    }
    mg_scrub_set_unref(set);
}

/* ---- property: random text with secrets inserted ---- */

static void
test_property(void)
{
    MG_T_CASE("random text, random secrets, random positions");
    const char *secrets[] = {
        OPENAI_KEY,
        AZURE_KEY,
        AWS_SECRET,
        GOOGLE_KEY,
        "hunter2-but-longer",
        "Zm9vYmFyYmF6cXV4+/==",
        "p\xc3\xa4ss-w\xc3\xb6rd-\xf0\x9f\x94\x91-42",
        "with\"quote\\and/slash",
        "0123456789",
        LONG_SECRET,
        SUB_SECRET,
    };
    size_t ns = sizeof(secrets) / sizeof(secrets[0]);
    mg_scrub_set_t *set = mg_scrub_set_new(secrets, ns);

    /* filler: the ordinary words without '=' or ':', plus high bytes and punctuation */
    const char *fill[128];
    size_t nf = 0;
    for (size_t i = 0; i < sizeof(t_words) / sizeof(t_words[0]) && nf < 120; i++) {
        if (strpbrk(t_words[i], "=:\\.") == NULL) {
            fill[nf++] = t_words[i];
        }
    }
    fill[nf++] = "\xe2\x82\xac\xc3";
    fill[nf++] = "\xff\xfe";
    fill[nf++] = "()[]{}<>;!?,'\"";
    fill[nf++] = "12345 67890";

    int bad = 0;
    for (int round = 0; round < 2000 && bad < 5; round++) {
        mg_buf_t in = MG_BUF_INIT, want = MG_BUF_INIT;
        mg_buf_t forms[8];
        size_t nforms = 0;
        size_t pieces = 1 + t_randn(12);
        for (size_t p = 0; p < pieces; p++) {
            const char *w = fill[t_randn(nf)];
            mg_buf_append_str(&in, w);
            mg_buf_append_str(&want, w);
            mg_buf_append(&in, " ", 1);
            mg_buf_append(&want, " ", 1);
            if (t_randn(3) == 0 && nforms < 8) {
                const char *s = secrets[t_randn(ns)];
                mg_buf_t f = MG_BUF_INIT;
                switch (t_randn(3)) {
                case 0: mg_buf_append_str(&f, s); break;
                case 1: {
                    char *e = t_json_slash(s);
                    mg_buf_append_str(&f, e);
                    free(e);
                    break;
                }
                default:
                    for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                            (*c >= '0' && *c <= '9') || *c == '-') {
                            mg_buf_append(&f, c, 1);
                        } else {
                            mg_buf_printf(&f, "%%%02X", *c);
                        }
                    }
                }
                char red[MG_SCRUB_REDACT_MAX + 1];
                size_t rl = mg_scrub_redact(mg_buf_head(&f), mg_buf_len(&f), red);
                mg_buf_append(&in, mg_buf_head(&f), mg_buf_len(&f));
                mg_buf_append(&want, red, rl);
                mg_buf_append(&in, " ", 1);
                mg_buf_append(&want, " ", 1);
                forms[nforms++] = f;
            }
        }
        size_t n;
        char *got = t_scrub_n(set, mg_buf_head(&in), mg_buf_len(&in), &n);
        bool same = n == mg_buf_len(&want) && memcmp(got, mg_buf_head(&want), n) == 0;
        bool leak = false;
        /* no 8-byte piece of a secret that the filler does not itself contain ("sk-proj-") */
        for (size_t k = 0; k < ns; k++) {
            size_t sl = strlen(secrets[k]);
            for (size_t w = 0; w + 8 <= sl; w++) {
                const char *piece = secrets[k] + w;
                leak = leak || (memmem(got, n, piece, 8) != NULL &&
                                memmem(mg_buf_head(&want), mg_buf_len(&want), piece, 8) == NULL);
            }
        }
        for (size_t k = 0; k < nforms; k++) {
            leak = leak || memmem(got, n, mg_buf_head(&forms[k]), mg_buf_len(&forms[k])) != NULL;
            mg_buf_free(&forms[k]);
        }
        if (!same || leak) {
            bad++;
            MG_T_FAIL_AT("round %d: %s\n  in:   %s\n  got:  %s\n  want: %s", round,
                         leak ? "a secret survived" : "other text changed", mg_buf_cstr(&in), got,
                         mg_buf_cstr(&want));
        } else {
            mg_t_passed++;
        }
        free(got);
        mg_buf_free(&in);
        mg_buf_free(&want);
    }
    mg_scrub_set_unref(set);
}

/* ---- property: scrubbing valid JSON keeps it valid ---- */

static void
test_json_stays_valid(void)
{
    MG_T_CASE("random JSON strings stay valid JSON after scrubbing");
    /* pieces that trigger every rule, glued at random, then JSON-encoded two ways */
    static const char *const bits[] = {
        "sk-", "sk_live_", "Ab12Cd34Ef56Gh78", "Bearer ", "Basic ", "key=", "api_key=", ":",
        "\"", "\\", "/", "\n", "@", "https://", "u:p", "eyJ", "hbGciOiJIUzI1", ".", "AIza",
        "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AKIA", "IOSFODNN7EXAMPLE",
        "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "authorization: ",
        "\"password\": \"", "x", " ", "\x01", "'api_key': '", "Bearer\\/", "\\u00e4",
        "\\\\\\\"",
        "\xc3\xa4", "3f2a9c7e1b4d4e8f", "9a0b1c2d3e4f5a6b", "%2F", "&", "\\u", "0022",
    };
    const char *known[] = {AZURE_KEY, "9a0b1c2d3e4f5a6b\"x", "a/b\\c\"d/e"};
    mg_scrub_set_t *set = mg_scrub_set_new(known, 3);
    int bad = 0;
    for (int round = 0; round < 3000 && bad < 5; round++) {
        mg_buf_t raw = MG_BUF_INIT;
        size_t k = 1 + t_randn(14);
        for (size_t i = 0; i < k; i++) {
            mg_buf_append_str(&raw, bits[t_randn(sizeof(bits) / sizeof(bits[0]))]);
        }
        for (int form = 0; form < 2; form++) {
            mg_buf_t js = MG_BUF_INIT;
            mg_buf_append_str(&js, "{\"m\":");
            if (form == 0) {
                mg_buf_json_str(&js, mg_buf_head(&raw), mg_buf_len(&raw));
            } else {
                char *e = t_json_slash(mg_buf_cstr(&raw));
                mg_buf_printf(&js, "\"%s\"", e);
                free(e);
            }
            mg_buf_append_str(&js, "}");
            size_t n;
            char *got = t_scrub_n(set, mg_buf_head(&js), mg_buf_len(&js), &n);
            json_error_t je;
            json_t *v = json_loadb(got, n, 0, &je);
            if (v == NULL) {
                bad++;
                MG_T_FAIL_AT("round %d form %d: %s\n  in:  %s\n  got: %s", round, form, je.text,
                             mg_buf_cstr(&js), got);
            } else {
                mg_t_passed++;
            }
            /* and the one-pass writer always produces a valid string */
            mg_buf_t w = MG_BUF_INIT;
            mg_scrub_json_str(set, mg_buf_head(&raw), mg_buf_len(&raw), &w);
            json_t *v2 = json_loadb(mg_buf_head(&w), mg_buf_len(&w), JSON_DECODE_ANY, &je);
            CHECK(v2 != NULL && json_is_string(v2), "json_str: %s", je.text);
            json_decref(v2);
            mg_buf_free(&w);
            json_decref(v);
            free(got);
            mg_buf_free(&js);
        }
        mg_buf_free(&raw);
    }
    mg_scrub_set_unref(set);
}

/* ---- mg_log ---- */

static void
test_log(void)
{
    MG_T_CASE("mg_log never prints a known secret");
    const char *path = mg_t_write_file("log.txt", "");
    int fd = open(path, O_WRONLY | O_TRUNC);
    int saved = dup(STDERR_FILENO);
    CHECK(fd >= 0 && saved >= 0);
    if (fd < 0 || saved < 0) {
        return;
    }
    mg_scrub_set_t *set = t_set();
    mg_scrub_set_global(set);
    CHECK(mg_scrub_global() == set);
    mg_scrub_set_unref(set); /* the global reference keeps it alive */
    mg_log_level_t old = mg_log_level;
    mg_log_set_level(MG_LOG_DEBUG);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);

    mg_log_ctx_t ctx = {"req-" AZURE_KEY, "dep-" MASTER_KEY, "calling with key " AWS_SECRET};
    for (int lv = MG_LOG_ERROR; lv <= MG_LOG_DEBUG; lv++) {
        mg_log((mg_log_level_t) lv, &ctx, "level %d key %s master %s google %s db %s", lv,
               OPENAI_KEY, MASTER_KEY, GOOGLE_KEY, DB_PASSWORD);
    }
    mg_log(MG_LOG_NOTICE, NULL, "plain line stays as it is: disk-usage 42%%");
    /* long lines cut at the line limit, with the secret across the cut */
    char pad[4200];
    for (int len = 3950; len < 4150; len++) {
        memset(pad, 'x', (size_t) len);
        pad[len] = '\0';
        mg_log(MG_LOG_WARN, NULL, "%s %s", pad, AZURE_KEY);
    }

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    mg_log_set_level(old);
    mg_scrub_set_global(NULL);
    CHECK(mg_scrub_global() == NULL);

    FILE *f = fopen(path, "rb");
    static char text[2 * 1024 * 1024];
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    text[n] = '\0';
    CHECK(n > 200 * 3900, "log too short: %zu", n);
    const char *all[] = {OPENAI_KEY, AZURE_KEY, AWS_SECRET, GOOGLE_KEY, DB_PASSWORD};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
        CHECK(!t_leaks(text, n, all[k], 8), "secret %zu in the log", k);
    }
    CHECK(strstr(text, MASTER_KEY " ") == NULL && strstr(text, MASTER_KEY "\"") == NULL);
    CHECK_CONTAINS(text, "[debug]");
    CHECK_CONTAINS(text, "key sk-...Uv12 master sk-... google AIz...MBWY db ...");
    CHECK_CONTAINS(text, "req=req-...5a6b deployment=\"dep-sk-...\"");
    CHECK_CONTAINS(text, ": plain line stays as it is: disk-usage 42%\n");
    /* every line still ends with a newline and none is longer than the limit */
    size_t lines = 0, start = 0;
    bool short_enough = true;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') {
            short_enough = short_enough && i - start < 4096;
            start = i + 1;
            lines++;
        }
    }
    CHECK_INT(lines, 5 + 1 + 200);
    CHECK(short_enough);
}

static void
test_log_rotation(void)
{
    MG_T_CASE("mg_log keeps scrubbing with the set of a snapshot still in use");
    const char *old_key = "rotated-out-key-0123456789abcdef";
    const char *new_key = "rotated-in-key-fedcba9876543210";
    mg_scrub_set_t *snap_a = mg_scrub_set_new(&old_key, 1); /* held by "snapshot A" */
    mg_scrub_set_t *snap_b = mg_scrub_set_new(&new_key, 1); /* held by "snapshot B" */
    mg_scrub_set_global(snap_a);
    mg_scrub_set_global(snap_b);
    CHECK(mg_scrub_global() == snap_b);
    CHECK_INT(mg_scrub_global_retired(), 1);

    const char *path = mg_t_write_file("log2.txt", "");
    int fd = open(path, O_WRONLY | O_TRUNC);
    int saved = dup(STDERR_FILENO);
    CHECK(fd >= 0 && saved >= 0);
    if (fd < 0 || saved < 0) {
        return;
    }
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    mg_log(MG_LOG_ERROR, NULL, "late reply on snapshot A: %s; new %s", old_key, new_key);
    /* snapshot A goes away: the logger lets its set go */
    mg_scrub_set_unref(snap_a);
    mg_log(MG_LOG_ERROR, NULL, "after A: %s", old_key);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    CHECK_INT(mg_scrub_global_retired(), 0);

    FILE *f = fopen(path, "rb");
    char text[4096];
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    text[n] = '\0';
    CHECK_CONTAINS(text, "late reply on snapshot A: ...cdef; new ...3210\n");
    /* once nothing holds A its key is no longer a known secret (proof the ref was dropped) */
    CHECK_CONTAINS(text, "after A: rotated-out-key-0123456789abcdef\n");
    mg_scrub_set_global(NULL);
    mg_scrub_set_unref(snap_b);
}

/* ---- report-only microbenchmark ---- */

static double
t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
bench(void)
{
    mg_scrub_builder_t b = MG_SCRUB_BUILDER_INIT;
    char sec[50][64];
    for (int i = 0; i < 50; i++) {
        snprintf(sec[i], sizeof(sec[i]), "sk-proj-%016llx%016llx", (unsigned long long) t_rand(),
                 (unsigned long long) t_rand());
        mg_scrub_builder_add_str(&b, sec[i]);
    }
    mg_scrub_set_t *set = mg_scrub_builder_finish(&b);
    mg_buf_t body = MG_BUF_INIT;
    mg_buf_printf(&body, "{\"error\":{\"message\":\"Incorrect API key provided: %s. ", sec[17]);
    while (mg_buf_len(&body) < 1000) {
        mg_buf_append_str(&body, "The server had an error while processing your request, sorry. ");
    }
    mg_buf_append_str(&body, "\",\"type\":\"invalid_request_error\"}}");
    mg_buf_t out = MG_BUF_INIT;
    const int iters = 20000;
    double t0 = t_now();
    for (int i = 0; i < iters; i++) {
        mg_buf_reset(&out);
        mg_scrub(set, mg_buf_head(&body), mg_buf_len(&body), &out);
    }
    double t1 = t_now();
    for (int i = 0; i < iters; i++) {
        mg_buf_reset(&out);
        mg_scrub(NULL, mg_buf_head(&body), mg_buf_len(&body), &out);
    }
    double t2 = t_now();
    const char *line = "2024-05-01T12:34:56.789Z [warn] worker[1] req=5f0c3e6a "
                       "deployment=\"gpt4o-east\": "
                       "upstream answered 429 (rate limited), retrying on the next deployment";
    char fixed[4096];
    double t3 = t_now();
    for (int i = 0; i < iters; i++) {
        mg_scrub_fixed(set, line, strlen(line), 0, fixed, sizeof(fixed));
    }
    double t4 = t_now();
    printf("bench (report only): a %zu-byte log line with nothing to redact: %.0f ns\n",
           strlen(line), (t4 - t3) / iters * 1e9);
    double mb = (double) iters * (double) mg_buf_len(&body) / 1e6;
    printf("bench (report only): %zu-byte error body, 50 secrets: %.0f MB/s; no set: %.0f MB/s\n",
           mg_buf_len(&body), mb / (t1 - t0), mb / (t2 - t1));
    mg_buf_free(&body);
    mg_buf_free(&out);
    mg_scrub_set_unref(set);
}

int
main(void)
{
    test_kinds();
    test_ordinary();
    test_redact_form();
    test_wrappers();
    test_property();
    test_json_stays_valid();
    test_log();
    test_log_rotation();
    bench();
    return mg_test_done();
}
