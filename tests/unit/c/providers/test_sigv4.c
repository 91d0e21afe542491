/*
 * test_sigv4.c -- core/providers/bedrock/mg_sigv4.c: AWS Signature Version 4.
 *
 * Known answers, no signer of our own to compare with:
 *   - AWS's SigV4 test suite (the current one AWS ships in awslabs/aws-c-auth,
 *     tests/aws-signing-test-suite/v4; credential scope AKIDEXAMPLE/20150830/us-east-1/
 *     service, secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY), plus the older suite's
 *     post-x-www-form-urlencoded pair (no x-amz-content-sha256);
 *   - the IAM ListUsers example of AWS's "Signature Version 4 signing process" pages
 *     (canonical request hash f536975d..., signature 5d672d79...);
 *   - the S3 GET Object example of "Signature Calculations for the Authorization Header"
 *     (x-amz-content-sha256 signed; S3's single-encoding path rule);
 *   - two Bedrock-shaped requests (model id with ':', an inference-profile ARN with '/',
 *     a session token) whose signatures were computed with botocore 1.43.11's SigV4Auth,
 *     the signer LiteLLM uses, to pin the double-encoded canonical URI.
 */
#include "mg_test.h"

#include "base/mg_arena.h"
#include "base/mg_err.h"
#include "providers/bedrock/mg_sigv4.h"

#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME 1440938160 /* 2015-08-30T12:36:00Z */
#define SUITE_HOST "example.amazonaws.com"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define STS_TOKEN                                                                          \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMic" \
    "RXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKs" \
    "burEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0" \
    "iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

typedef struct {
    const char *name;
    const char *method;
    const char *path;
    const char *query;
    mg_sigv4_header_t headers[5]; /* host is added by the runner */
    const char *body;
    const char *token;
    unsigned flags;
    const char *creq; /* NULL: only the signature is checked */
    const char *signature;
} suite_case_t;

static const suite_case_t suite[] = {
    {"get-header-key-duplicate", "GET", "/", NULL,
     {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, "", NULL, 0,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order", "GET", "/", NULL,
     {{"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"}},
     "", NULL, 0, NULL, "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-value-trim", "GET", "/", NULL,
     {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, "", NULL, 0,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256,
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"get-relative-normalized", "GET", "/example/..", NULL, {{0}}, "", NULL, 0, NULL,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-relative-relative-normalized", "GET", "/example1/example2/../..", NULL, {{0}}, "", NULL,
     0, NULL, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-relative-relative-unnormalized", "GET", "/example1/example2/../..", NULL, {{0}}, "",
     NULL, MG_SIGV4_PATH_NO_NORMALIZE, NULL,
     "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b"},
    {"get-relative-unnormalized", "GET", "/example/..", NULL, {{0}}, "", NULL,
     MG_SIGV4_PATH_NO_NORMALIZE, NULL,
     "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282"},
    {"get-slash-dot-slash-normalized", "GET", "/./", NULL, {{0}}, "", NULL, 0, NULL,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-dot-slash-unnormalized", "GET", "/./", NULL, {{0}}, "", NULL,
     MG_SIGV4_PATH_NO_NORMALIZE, NULL,
     "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145"},
    {"get-slash-normalized", "GET", "//", NULL, {{0}}, "", NULL, 0, NULL,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-pointless-dot-normalized", "GET", "/./example", NULL, {{0}}, "", NULL, 0, NULL,
     "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
    {"get-slash-pointless-dot-unnormalized", "GET", "/./example", NULL, {{0}}, "", NULL,
     MG_SIGV4_PATH_NO_NORMALIZE, NULL,
     "beb03f223f7deae4146464f06e29eebbee9c8afbe15c290cf07aa8b119e14cff"},
    {"get-slash-unnormalized", "GET", "//", NULL, {{0}}, "", NULL, MG_SIGV4_PATH_NO_NORMALIZE,
     NULL, "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e"},
    {"get-slashes-normalized", "GET", "//example//", NULL, {{0}}, "", NULL, 0,
     "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA256,
     "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
    {"get-slashes-unnormalized", "GET", "//example//", NULL, {{0}}, "", NULL,
     MG_SIGV4_PATH_NO_NORMALIZE, NULL,
     "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"},
    {"get-space-normalized", "GET", "/example space/", NULL, {{0}}, "", NULL, 0,
     "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA256,
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {"get-space-unnormalized", "GET", "/example space/", NULL, {{0}}, "", NULL,
     MG_SIGV4_PATH_NO_NORMALIZE, NULL,
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {"get-unreserved", "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL, {{0}}, "", NULL,
     0, NULL, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-utf8", "GET", "/\xe1\x88\xb4", NULL, {{0}}, "", NULL, 0, NULL,
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-vanilla", "GET", "/", NULL, {{0}}, "", NULL, 0,
     "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA256,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-empty-query-key", "GET", "/", "Param1=value1", {{0}}, "", NULL, 0, NULL,
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query", "GET", "/", "", {{0}}, "", NULL, 0, NULL,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-query-order-encoded", "GET", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
     {{0}}, "", NULL, 0,
     "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
    {"get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", {{0}}, "",
     NULL, 0, NULL, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-unreserved", "GET", "/",
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     {{0}}, "", NULL, 0, NULL, "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query (raw)", "GET", "/", "\xe1\x88\xb4=bar", {{0}}, "", NULL, 0, NULL,
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-vanilla-utf8-query (encoded)", "GET", "/", "%e1%88%b4=bar", {{0}}, "", NULL, 0, NULL,
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-vanilla-with-session-token", "GET", "/", NULL, {{0}}, "",
     "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267", 0, NULL,
     "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
    {"post-header-key-case", "post", "/", NULL, {{0}}, "", NULL, 0, NULL,
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-header-key-sort", "POST", "/", NULL, {{"My-Header1", "value1"}}, "", NULL, 0, NULL,
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case", "POST", "/", NULL, {{"My-Header1", "VALUE1"}}, "", NULL, 0, NULL,
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-sts-header-after", "POST", "/", NULL, {{0}}, "", STS_TOKEN, MG_SIGV4_OMIT_TOKEN, NULL,
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-sts-header-before", "POST", "/", NULL, {{0}}, "", STS_TOKEN, 0,
     "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
     "x-amz-security-token:" STS_TOKEN "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY_SHA256,
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    {"post-vanilla", "POST", "/", NULL, {{0}}, "", NULL, 0, NULL,
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-vanilla-empty-query-value", "POST", "/", "Param1=value1", {{0}}, "", NULL, 0, NULL,
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-x-www-form-urlencoded", "POST", "/", NULL,
     {{"Content-Type", "application/x-www-form-urlencoded"}, {"Content-Length", "13"}},
     "Param1=value1", NULL, MG_SIGV4_CONTENT_SHA256,
     "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\n"
     "host:example.amazonaws.com\n"
     "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
     "x-amz-date:20150830T123600Z\n\n"
     "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
    {"post-x-www-form-urlencoded-parameters", "POST", "/", NULL,
     {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
      {"Content-Length", "13"}},
     "Param1=value1", NULL, MG_SIGV4_CONTENT_SHA256, NULL,
     "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422"},
    /* the 2015 suite's versions of the last two: body hashed, no x-amz-content-sha256 */
    {"2015 post-x-www-form-urlencoded", "POST", "/", NULL,
     {{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1", NULL, 0, NULL,
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"2015 post-x-www-form-urlencoded-parameters", "POST", "/", NULL,
     {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}}, "Param1=value1", NULL,
     0, NULL, "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
};

static void
t_run_suite_case(const suite_case_t *c)
{
    MG_T_CASE(c->name);
    mg_sigv4_header_t h[6];
    size_t nh = 0;
    h[nh++] = (mg_sigv4_header_t){"Host", SUITE_HOST};
    for (size_t i = 0; i < 5 && c->headers[i].name != NULL; i++) {
        h[nh++] = c->headers[i];
    }
    struct iovec body = {(void *) c->body, strlen(c->body)};
    mg_sigv4_request_t req = {
        .method = c->method,
        .path = c->path,
        .query = c->query,
        .headers = h,
        .n_headers = nh,
        .payload = &body,
        .n_payload = 1,
        .region = "us-east-1",
        .service = "service",
        .access_key_id = SUITE_AKID,
        .secret_access_key = SUITE_SECRET,
        .session_token = c->token,
        .timestamp = SUITE_TIME,
        .flags = c->flags,
    };
    mg_arena_t a;
    mg_arena_init(&a, 4096);
    mg_sigv4_out_t out;
    mg_err_t err = {0};
    int rc = mg_sigv4_sign(&req, &a, &out, &err);
    CHECK_INT(rc, MG_OK);
    if (rc == MG_OK) {
        if (c->creq != NULL) {
            CHECK_STR(out.canonical_request, c->creq);
        }
        CHECK_STR(out.signature, c->signature);
        char want[1024];
        snprintf(want, sizeof(want),
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=%s, Signature=%s",
                 out.signed_headers, c->signature);
        CHECK_STR(out.authorization, want);
        CHECK_STR(out.amz_date, "20150830T123600Z");
        CHECK_STR(out.security_token, c->token);
        if (c->flags & MG_SIGV4_CONTENT_SHA256) {
            CHECK_STR(out.content_sha256, out.payload_sha256);
        } else {
            CHECK(out.content_sha256 == NULL);
        }
    } else {
        printf("  error: %s\n", err.msg);
    }
    mg_arena_destroy(&a);
}

static void
test_suite(void)
{
    for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
        t_run_suite_case(&suite[i]);
    }
}

/* A request builder for the tests below: one place to vary one thing at a time. */
typedef struct {
    mg_sigv4_header_t h[4];
    struct iovec iov[3];
    mg_sigv4_request_t req;
    mg_arena_t a;
    mg_sigv4_out_t out;
    mg_err_t err;
} signer_t;

static void
t_signer_init(signer_t *s, const char *body)
{
    memset(s, 0, sizeof(*s));
    s->h[0] = (mg_sigv4_header_t){"host", "bedrock-runtime.us-east-1.amazonaws.com"};
    s->h[1] = (mg_sigv4_header_t){"content-type", "application/json"};
    s->iov[0] = (struct iovec){(void *) body, strlen(body)};
    s->req = (mg_sigv4_request_t){
        .method = "POST",
        .path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        .headers = s->h,
        .n_headers = 2,
        .payload = s->iov,
        .n_payload = 1,
        .region = "us-east-1",
        .service = "bedrock",
        .access_key_id = SUITE_AKID,
        .secret_access_key = SUITE_SECRET,
        .timestamp = 1714558830, /* 2024-05-01T10:20:30Z */
    };
    mg_arena_init(&s->a, 4096);
}

static int
t_sign(signer_t *s)
{
    mg_err_clear(&s->err);
    return mg_sigv4_sign(&s->req, &s->a, &s->out, &s->err);
}

static void
test_aws_examples(void)
{
    MG_T_CASE("IAM ListUsers example (sigv4-signed-request-examples)");
    mg_sigv4_header_t h[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
        {"Host", "iam.amazonaws.com"},
    };
    mg_sigv4_request_t req = {
        .method = "GET",
        .path = "/",
        .query = "Action=ListUsers&Version=2010-05-08",
        .headers = h,
        .n_headers = 2,
        .region = "us-east-1",
        .service = "iam",
        .access_key_id = SUITE_AKID,
        .secret_access_key = SUITE_SECRET,
        .timestamp = SUITE_TIME,
    };
    mg_arena_t a;
    mg_arena_init(&a, 4096);
    mg_sigv4_out_t out;
    mg_err_t err;
    CHECK_INT(mg_sigv4_sign(&req, &a, &out, &err), MG_OK);
    CHECK_STR(out.canonical_request,
              "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
              "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
              "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
              "content-type;host;x-amz-date\n" EMPTY_SHA256);
    CHECK_STR(out.string_to_sign,
              "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
              "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    CHECK_STR(out.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    mg_arena_destroy(&a);

    MG_T_CASE("S3 GET Object example (x-amz-content-sha256, S3 path rule)");
    mg_sigv4_header_t sh[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"Range", "bytes=0-9"},
    };
    mg_sigv4_request_t s3 = {
        .method = "GET",
        .path = "/test.txt",
        .headers = sh,
        .n_headers = 2,
        .region = "us-east-1",
        .service = "s3",
        .access_key_id = "AKIAIOSFODNN7EXAMPLE",
        .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .timestamp = 1369353600, /* 2013-05-24T00:00:00Z */
        .flags = MG_SIGV4_CONTENT_SHA256 | MG_SIGV4_S3_PATH,
    };
    mg_arena_init(&a, 4096);
    CHECK_INT(mg_sigv4_sign(&s3, &a, &out, &err), MG_OK);
    CHECK_STR(out.content_sha256, EMPTY_SHA256);
    CHECK_STR(out.amz_date, "20130524T000000Z");
    CHECK_STR(out.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
              "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    mg_arena_destroy(&a);
}

static void
test_bedrock_botocore(void)
{
    MG_T_CASE("bedrock converse, model id with ':' (botocore SigV4Auth)");
    signer_t s;
    t_signer_init(&s, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}");
    s.h[2] = (mg_sigv4_header_t){"Accept", "application/json"};
    s.req.n_headers = 3;
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request,
                   "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n");
    CHECK_STR(s.out.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/bedrock/aws4_request, "
              "SignedHeaders=accept;content-type;host;x-amz-date, "
              "Signature=d3ca62ab360e4b1047118181ec4a32295998bebf7f7a774e6a4ca5a8200843a8");
    mg_arena_destroy(&s.a);

    MG_T_CASE("bedrock converse-stream, inference-profile ARN + session token (botocore)");
    t_signer_init(&s, "{\"messages\":[]}");
    s.h[0].value = "bedrock-runtime.us-west-2.amazonaws.com";
    s.req.region = "us-west-2";
    s.req.path = "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3A"
                 "application-inference-profile%2Fabc123/converse-stream";
    s.req.session_token = "FQoGZXIvYXdzEXAMPLEtoken//+=";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request,
                   "/model/arn%253Aaws%253Abedrock%253Aus-west-2%253A123456789012%253A"
                   "application-inference-profile%252Fabc123/converse-stream\n");
    CHECK_STR(s.out.security_token, "FQoGZXIvYXdzEXAMPLEtoken//+=");
    CHECK_STR(s.out.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-west-2/bedrock/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
              "Signature=9a431d3f2d798b68e301d8a9808dc9000ca5e88c982efb8abf210602dc1190a7");
    mg_arena_destroy(&s.a);
}

static void
test_changes_change_signature(void)
{
    MG_T_CASE("any signed change changes the signature");
    signer_t s;
    t_signer_init(&s, "{\"a\":1}");
    CHECK_INT(t_sign(&s), MG_OK);
    char base[65];
    memcpy(base, s.out.signature, 65);

    /* the same request signs the same */
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_STR(s.out.signature, base);

    /* the body in three pieces hashes as the body in one */
    s.iov[0] = (struct iovec){"{\"a\"", 4};
    s.iov[1] = (struct iovec){"", 0};
    s.iov[2] = (struct iovec){":1}", 3};
    s.req.n_payload = 3;
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_STR(s.out.signature, base);

    /* one body byte */
    s.iov[2] = (struct iovec){":2}", 3};
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK(strcmp(s.out.signature, base) != 0, "body change kept signature %s", base);
    s.iov[2] = (struct iovec){":1}", 3};

    /* a header value */
    s.h[1].value = "application/json; charset=utf-8";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK(strcmp(s.out.signature, base) != 0, "header change kept signature");
    s.h[1].value = "application/json";

    /* an added header */
    s.h[2] = (mg_sigv4_header_t){"x-amzn-bedrock-trace", "ENABLED"};
    s.req.n_headers = 3;
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK(strcmp(s.out.signature, base) != 0, "added header kept signature");
    CHECK_STR(s.out.signed_headers, "content-type;host;x-amz-date;x-amzn-bedrock-trace");
    s.req.n_headers = 2;

    /* whitespace the canonical form drops does not matter */
    s.h[1].value = "  application/json\t ";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_STR(s.out.signature, base);
    s.h[1].value = "application/json";

    /* path, query, time, region, secret, token, method */
    const char *sigs[8];
    s.req.path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream";
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[0] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
    s.req.query = "x=1";
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[1] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.query = NULL;
    s.req.timestamp += 1;
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[2] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.timestamp -= 1;
    s.req.region = "us-west-2";
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[3] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.region = "us-east-1";
    s.req.secret_access_key = SUITE_SECRET "x";
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[4] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.secret_access_key = SUITE_SECRET;
    s.req.session_token = "tok";
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[5] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.session_token = NULL;
    s.req.method = "PUT";
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[6] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.method = "POST";
    s.req.flags = MG_SIGV4_CONTENT_SHA256;
    CHECK_INT(t_sign(&s), MG_OK);
    sigs[7] = mg_arena_strdup(&s.a, s.out.signature);
    s.req.flags = 0;
    for (int i = 0; i < 8; i++) {
        CHECK(strcmp(sigs[i], base) != 0, "variation %d kept the signature", i);
        for (int j = 0; j < i; j++) {
            CHECK(strcmp(sigs[i], sigs[j]) != 0, "variations %d and %d sign alike", i, j);
        }
    }
    /* and back to the start */
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_STR(s.out.signature, base);
    mg_arena_destroy(&s.a);
}

static void
test_canonical_pieces(void)
{
    MG_T_CASE("query canonicalisation");
    signer_t s;
    t_signer_init(&s, "");
    /* sorted by name then value; empty value keeps '='; '+' is literal; stray '%' encoded;
       empty pieces skipped; lower-case hex normalised */
    s.req.query = "b=2&a=z&a=y&&c&d=%41%2f&e=a+b&f=100%&g=%zz";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request, "\na=y&a=z&b=2&c=&d=A%2F&e=a%2Bb&f=100%25&g=%25zz\n");

    MG_T_CASE("path encoding");
    s.req.query = NULL;
    s.req.path = "/a b/%7E/caf\xc3\xa9/x:y@z/";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request, "POST\n/a%20b/%257E/caf%C3%A9/x%3Ay%40z/\n");
    s.req.flags = MG_SIGV4_S3_PATH;
    s.req.path = "/bucket/a%20b/../c";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request, "POST\n/bucket/a%20b/../c\n");
    s.req.flags = 0;
    s.req.path = NULL;
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request, "POST\n/\n");
    s.req.path = "/a/b/../../..";
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request, "POST\n/\n");

    MG_T_CASE("header canonicalisation");
    s.req.path = "/";
    s.h[1] = (mg_sigv4_header_t){"X-Mixed-CASE", "\t a \t b  "};
    s.h[2] = (mg_sigv4_header_t){"x-empty", ""};
    s.h[3] = (mg_sigv4_header_t){"X-MIXED-case", "c"};
    s.req.n_headers = 4;
    CHECK_INT(t_sign(&s), MG_OK);
    CHECK_CONTAINS(s.out.canonical_request,
                   "\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20240501T102030Z\n"
                   "x-empty:\nx-mixed-case:a b,c\n\nhost;x-amz-date;x-empty;x-mixed-case\n");
    mg_arena_destroy(&s.a);
}

static void
test_errors(void)
{
    MG_T_CASE("errors name the field, never the secret");
    signer_t s;
    t_signer_init(&s, "{}");
    s.req.secret_access_key = "";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "secret access key");
    CHECK_INT(s.err.cls, MG_ERR_CONFIG);
    s.req.secret_access_key = SUITE_SECRET;

    s.req.access_key_id = NULL;
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "access key id");
    s.req.access_key_id = SUITE_AKID;

    s.req.region = "";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "region");
    s.req.region = "us-east-1/x";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "region");
    s.req.region = "us-east-1";

    s.h[0].name = "x-not-host";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "must include host");
    CHECK_INT(s.err.cls, MG_ERR_INTERNAL);
    s.h[0].name = "Host";

    const char *owned[] = {"X-Amz-Date", "x-amz-security-token", "X-Amz-Content-Sha256",
                           "Authorization"};
    for (int i = 0; i < 4; i++) {
        s.h[1] = (mg_sigv4_header_t){owned[i], "v"};
        CHECK_INT(t_sign(&s), MG_ERROR);
        CHECK_CONTAINS(s.err.msg, "set by the signer");
    }
    s.h[1] = (mg_sigv4_header_t){"content-type", "application/json\r\nx-evil: 1"};
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "CR or LF");
    s.h[1] = (mg_sigv4_header_t){"bad name", "v"};
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "bad name");
    s.h[1] = (mg_sigv4_header_t){"", "v"};
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "no name");
    s.h[1] = (mg_sigv4_header_t){"content-type", "application/json"};

    s.req.session_token = "tok\nen";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "session token");
    CHECK(strstr(s.err.msg, "tok\nen") == NULL);
    s.req.session_token = NULL;

    s.req.path = "/model/x/converse?y=1";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "query separately");
    s.req.path = "/";

    s.req.method = "";
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "method");
    s.req.method = "POST";

    s.req.timestamp = INT64_MAX;
    CHECK_INT(t_sign(&s), MG_ERROR);
    CHECK_CONTAINS(s.err.msg, "timestamp");
    s.req.timestamp = 1714558830;

    CHECK_INT(t_sign(&s), MG_OK);
    /* nothing a caller may log holds the secret */
    CHECK(strstr(s.out.authorization, SUITE_SECRET) == NULL);
    CHECK(strstr(s.out.canonical_request, SUITE_SECRET) == NULL);
    CHECK(strstr(s.out.string_to_sign, SUITE_SECRET) == NULL);
    mg_arena_destroy(&s.a);
}

int
main(void)
{
    test_suite();
    test_aws_examples();
    test_bedrock_botocore();
    test_changes_change_signature();
    test_canonical_pieces();
    test_errors();
    return mg_test_done();
}
