/*
 * test_keys.c -- core/gateway/mg_keys.c: what other modules call (a key's allowed_routes on
 * every route, the spend stamp rule) and the small helpers of LiteLLM's answers (Python's
 * dict and list text, the masking of user ids, query parameters).
 */
#include "mg_test.h"

#include "gateway/mg_keys.c"

static bool
t_allowed(const char *routes_json, const char *path)
{
    json_t *routes = json_loads(routes_json, 0, NULL);
    bool ok = mg_keys_key_route_allowed(routes, path, strlen(path));
    json_decref(routes);
    return ok;
}

static void
test_allowed_routes(void)
{
    MG_T_CASE("allowed_routes: exact, prefix, trailing star, LiteLLM's route classes");
    CHECK(t_allowed("null", "/key/generate"), "no list: every route");
    CHECK(t_allowed("[]", "/anything"), "an empty list: every route");
    CHECK(t_allowed("[\"/chat/completions\"]", "/chat/completions"));
    CHECK(!t_allowed("[\"/chat/completions\"]", "/v1/chat/completions"));
    CHECK(t_allowed("[\"/fake-proxy\"]", "/fake-proxy/v1/x"), "a prefix with a slash");
    CHECK(!t_allowed("[\"/fake-proxy\"]", "/fake-proxy-600"), "not a prefix without one");
    CHECK(t_allowed("[\"/key/*\"]", "/key/info"));
    CHECK(!t_allowed("[\"/key/*\"]", "/team/info"));
    CHECK(t_allowed("[\"llm_api_routes\"]", "/v1/chat/completions"));
    CHECK(t_allowed("[\"llm_api_routes\"]", "/openai/deployments/m/chat/completions"));
    CHECK(t_allowed("[\"llm_api_routes\"]", "/v1/models"));
    CHECK(!t_allowed("[\"llm_api_routes\"]", "/key/generate"));
    CHECK(t_allowed("[\"management_routes\"]", "/key/generate"));
    CHECK(t_allowed("[\"management_routes\"]", "/team/member_add"));
    CHECK(t_allowed("[\"management_routes\"]", "/model/new"));
    CHECK(t_allowed("[\"management_routes\"]", "/key/abc/regenerate"));
    CHECK(!t_allowed("[\"management_routes\"]", "/chat/completions"));
    CHECK(t_allowed("[\"info_routes\"]", "/key/info"));
    CHECK(t_allowed("[\"info_routes\"]", "/team/list"));
    CHECK(t_allowed("[\"info_routes\"]", "/model/info"));
    CHECK(!t_allowed("[\"info_routes\"]", "/key/generate"), "a write is not an info route");
    CHECK(!t_allowed("[\"info_routes\"]", "/chat/completions"));
    CHECK(!t_allowed("[\"no_such_class\"]", "/chat/completions"));
}

static void
test_spend_epoch(void)
{
    MG_T_CASE("the spend stamp is metadata.moongate_spend_epoch, 0 when never set");
    json_t *row = json_loads("{\"metadata\":{\"moongate_spend_epoch\":1234}}", 0, NULL);
    CHECK(mg_keys_spend_epoch(row) == 1234);
    json_t *set = json_object();
    mg_keys_mark_spend_set(set, row);
    int64_t now = mg_time_real_ms();
    int64_t e = mg_keys_spend_epoch(set);
    CHECK(e > 1234 && e <= now, "a new stamp: %lld", (long long) e);
    CHECK(mg_keys_spend_epoch(row) == 1234, "the row itself is not changed");
    json_decref(set);
    json_decref(row);
    CHECK(mg_keys_spend_epoch(NULL) == 0);
    json_t *empty = json_object();
    CHECK(mg_keys_spend_epoch(empty) == 0);
    json_decref(empty);
}

static void
test_text(void)
{
    MG_T_CASE("Python's str() of LiteLLM's error dicts, masked user ids, percent-decoding");
    mg_arena_t arena;
    mg_arena_init(&arena, 1024);
    mg_request_t r;
    memset(&r, 0, sizeof(r));
    r.arena = &arena;
    CHECK_STR(mg_keys_pydict(&r, "error", "No keys found"), "{'error': 'No keys found'}");
    CHECK_STR(mg_keys_pydict(&r, "error", "Key with alias 'x'"), "{'error': \"Key with alias 'x'\"}");
    CHECK_STR(mg_keys_pydict(&r, "error", "both ' and \""), "{'error': 'both \\' and \"'}");
    CHECK_STR(mg_keys_mask_id(&r, "abc"), "***");
    CHECK_STR(mg_keys_mask_id(&r, "abcdefg"), "*******");
    CHECK_STR(mg_keys_mask_id(&r, "user-123456"), "user-1***56");
    json_t *l = json_loads("[\"a\",\"b\"]", 0, NULL);
    CHECK_STR(mg_keys_pylist(&r, l), "['a', 'b']");
    json_decref(l);
    mg_arena_destroy(&arena);
}

int
main(void)
{
    test_allowed_routes();
    test_spend_epoch();
    test_text();
    return mg_test_done();
}
