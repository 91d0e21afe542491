/*
 * test_oauth.c -- core/providers/oauth/mg_oauth.c: form encoding, the Entra
 * client-credentials request, token responses.  Expected encodings are what Python's
 * urllib.parse.urlencode / quote_plus produce for the same input.
 */
#include "mg_test.h"

#include "base/mg_buf.h"
#include "base/mg_err.h"
#include "providers/oauth/mg_oauth.h"

static void
test_form_encoding(void)
{
    MG_T_CASE("form encoding");
    mg_buf_t b = MG_BUF_INIT;
    const char *in = "a b&c=d+e/f:g~h*i.j-k_l%m\xc3\xa9!'()";
    mg_oauth_form_encode(&b, in, strlen(in));
    CHECK_STR(mg_buf_cstr(&b), "a+b%26c%3Dd%2Be%2Ff%3Ag~h%2Ai.j-k_l%25m%C3%A9%21%27%28%29");
    mg_buf_reset(&b);
    /* control bytes, a NUL inside the range, the unreserved set untouched */
    mg_oauth_form_encode(&b, "\n\t\0Az09_.-~", 11);
    CHECK_STR(mg_buf_cstr(&b), "%0A%09%00Az09_.-~");
    mg_buf_reset(&b);
    mg_oauth_form_add(&b, "a key", "v&1");
    mg_oauth_form_add(&b, "empty", "");
    CHECK_STR(mg_buf_cstr(&b), "a+key=v%261&empty=");
    mg_buf_free(&b);
}

static void
test_entra(void)
{
    MG_T_CASE("entra client-credentials body");
    mg_buf_t b = MG_BUF_INIT;
    mg_err_t err;
    const char *secret = "s3cr&t=+/ x~Q8Q%";
    CHECK_INT(mg_oauth_entra_body("00000000-1111-2222-3333-444444444444", secret,
                                  MG_OAUTH_ENTRA_SCOPE_COGNITIVE, &b, &err),
              MG_OK);
    CHECK_STR(mg_buf_cstr(&b),
              "grant_type=client_credentials&client_id=00000000-1111-2222-3333-444444444444"
              "&client_secret=s3cr%26t%3D%2B%2F+x~Q8Q%25"
              "&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default");
    /* appends to what the caller has */
    mg_buf_reset(&b);
    mg_buf_append_str(&b, "x=1&");
    CHECK_INT(mg_oauth_entra_body("id", "s", "sc", &b, &err), MG_OK);
    CHECK_STR(mg_buf_cstr(&b),
              "x=1&grant_type=client_credentials&client_id=id&client_secret=s&scope=sc");

    mg_buf_reset(&b);
    CHECK_INT(mg_oauth_entra_body("id", "", "sc", &b, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "no client_secret");
    CHECK_INT(err.cls, MG_ERR_CONFIG);
    CHECK_INT(mg_oauth_entra_body(NULL, "s", "sc", &b, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "no client_id");
    CHECK_INT(mg_oauth_entra_body("id", secret, NULL, &b, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "no scope");
    CHECK(strstr(err.msg, "s3cr") == NULL);
    CHECK_INT(mg_buf_len(&b), 0);

    MG_T_CASE("entra token url");
    CHECK_INT(mg_oauth_entra_token_url(NULL, "72f988bf-86f1-41af-91ab-2d7cd011db47", &b, &err),
              MG_OK);
    CHECK_STR(mg_buf_cstr(&b), "https://login.microsoftonline.com/"
                               "72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
    mg_buf_reset(&b);
    CHECK_INT(mg_oauth_entra_token_url("http://127.0.0.1:4555/", "contoso.onmicrosoft.com", &b,
                                       &err),
              MG_OK);
    CHECK_STR(mg_buf_cstr(&b), "http://127.0.0.1:4555/contoso.onmicrosoft.com/oauth2/v2.0/token");
    mg_buf_reset(&b);
    CHECK_INT(mg_oauth_entra_token_url(NULL, "../evil?x=", &b, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "is not a GUID or a domain");
    CHECK_INT(mg_oauth_entra_token_url(NULL, "", &b, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "no tenant_id");
    CHECK_INT(mg_buf_len(&b), 0);
    mg_buf_free(&b);
}

static int
t_parse(const char *body, mg_oauth_token_t *tok, mg_err_t *err)
{
    mg_err_clear(err);
    return mg_oauth_token_parse(body, strlen(body), tok, err);
}

static void
test_token_parse(void)
{
    MG_T_CASE("google token response");
    mg_oauth_token_t tok;
    mg_err_t err;
    CHECK_INT(t_parse("{\"access_token\":\"ya29.c.b0Aaek\",\"expires_in\":3599,"
                      "\"token_type\":\"Bearer\"}",
                      &tok, &err),
              MG_OK);
    CHECK_STR(tok.access_token, "ya29.c.b0Aaek");
    CHECK_STR(tok.token_type, "Bearer");
    CHECK_INT(tok.expires_in, 3599);
    mg_oauth_token_free(&tok);
    CHECK(tok.access_token == NULL && tok.token_type == NULL && tok.expires_in == 0);
    mg_oauth_token_free(&tok); /* twice is fine */
    mg_oauth_token_free(NULL);

    MG_T_CASE("entra v2 and v1 token responses");
    CHECK_INT(t_parse("{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
                      "\"access_token\":\"eyJ0eXAiOiJKV1Qi.eyJhdWQiOi.sig\"}",
                      &tok, &err),
              MG_OK);
    CHECK_STR(tok.access_token, "eyJ0eXAiOiJKV1Qi.eyJhdWQiOi.sig");
    CHECK_INT(tok.expires_in, 3599);
    mg_oauth_token_free(&tok);
    CHECK_INT(t_parse("{\"token_type\":\"bearer\",\"expires_in\":\"3600\",\"expires_on\":"
                      "\"1714562430\",\"resource\":\"https://cognitiveservices.azure.com\","
                      "\"access_token\":\"v1tok\"}",
                      &tok, &err),
              MG_OK);
    CHECK_INT(tok.expires_in, 3600);
    CHECK_STR(tok.token_type, "bearer");
    mg_oauth_token_free(&tok);
    /* no token_type: Bearer; a real-valued expires_in */
    CHECK_INT(t_parse("{\"access_token\":\"t\",\"expires_in\":59.0}", &tok, &err), MG_OK);
    CHECK_STR(tok.token_type, "Bearer");
    CHECK_INT(tok.expires_in, 59);
    mg_oauth_token_free(&tok);

    MG_T_CASE("token endpoint errors");
    CHECK_INT(t_parse("{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT "
                      "Signature.\"}",
                      &tok, &err),
              MG_ERROR);
    CHECK_STR(err.msg, "token endpoint refused: invalid_grant: Invalid JWT Signature.");
    CHECK_INT(err.cls, MG_ERR_AUTH);
    CHECK(tok.access_token == NULL);
    CHECK_INT(t_parse("{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                      "Invalid client secret provided.\",\"error_codes\":[7000215]}",
                      &tok, &err),
              MG_ERROR);
    CHECK_CONTAINS(err.msg, "invalid_client: AADSTS7000215: Invalid client secret provided.");
    CHECK_INT(t_parse("{\"error\":\"unauthorized_client\"}", &tok, &err), MG_ERROR);
    CHECK_STR(err.msg, "token endpoint refused: unauthorized_client");

    MG_T_CASE("malformed token responses name the field, never the token");
    struct {
        const char *body;
        const char *want;
    } bad[] = {
        {"", "token response is not JSON (0 bytes; error at line"},
        {"<html>502 Bad Gateway</html>", "token response is not JSON (28 bytes"},
        {"[\"ya29.secret\"]", "token response is not a JSON object"},
        {"{\"expires_in\":3599}", "no \"access_token\" string"},
        {"{\"access_token\":\"\",\"expires_in\":3599}", "no \"access_token\" string"},
        {"{\"access_token\":42,\"expires_in\":3599}", "no \"access_token\" string"},
        {"{\"access_token\":\"ya29.secret\"}", "no \"expires_in\""},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":0}", "expires_in\" is not a positive"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":-5}", "expires_in\" is not a positive"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":\"soon\"}", "\"expires_in\" is not"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":\"12x\"}", "\"expires_in\" is not"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":1e300}", "\"expires_in\" is not"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":true}", "\"expires_in\" is not"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":60,\"token_type\":\"mac\"}",
         "\"token_type\" is \"mac\", not Bearer"},
        {"{\"access_token\":\"ya29.secret\",\"expires_in\":60,\"token_type\":1}",
         "\"token_type\" is not a string"},
        {"{\"access_token\":\"ya29.sec\\r\\nret\",\"expires_in\":60}", "holds a CR or LF"},
        {"{\"access_token\":\"ya29.sec\\u0000ret\",\"expires_in\":60}", "is not JSON"},
        {"{\"access_token\": \"ya29.secret\", \"expires_in\": 3599", "is not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(t_parse(bad[i].body, &tok, &err), MG_ERROR);
        CHECK_CONTAINS(err.msg, bad[i].want);
        CHECK(strstr(err.msg, "secret") == NULL, "token in \"%s\"", err.msg);
        CHECK(strstr(err.msg, "html") == NULL, "body echoed in \"%s\"", err.msg);
        CHECK(tok.access_token == NULL);
    }
    CHECK_INT(mg_oauth_token_parse(NULL, 0, &tok, &err), MG_ERROR);
    CHECK_CONTAINS(err.msg, "is not JSON");
}

int
main(void)
{
    test_form_encoding();
    test_entra();
    test_token_parse();
    return mg_test_done();
}
