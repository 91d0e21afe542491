/*
 * test_reqlog.c -- the recent-requests ring and the traffic series (core/gateway/mg_reqlog.c):
 * the ring keeps the newest MG_REQLOG_RING per worker and merges workers newest first, a
 * respawned worker continues its predecessor's ring, a torn (odd) entry is skipped, the
 * series count per deployment and evict the least recent one, and nothing but identifiers
 * and numbers is kept.
 */
#include "mg_test.h"

#include "base/mg_shm.h"
#include "base/mg_time.h"
#include "gateway/mg_reqlog.c"

typedef struct {
    mg_http_req_t hr;
    mg_request_t r;
    mg_gw_t gw;
    mg_deployment_t dep;
} fake_t;

static void
fake_init(fake_t *f, int worker, const char *call_id, const char *dep_id, int status)
{
    memset(f, 0, sizeof(*f));
    f->gw.worker_id = worker;
    f->hr.finished = true;
    f->hr.status = status;
    f->hr.start_us = mg_time_mono_us() - 2500; /* 2.5 ms ago */
    f->r.hr = &f->hr;
    f->r.gw = &f->gw;
    f->r.api = mg_api_get(MG_API_OPENAI_CHAT);
    f->r.path = "/v1/chat/completions";
    f->r.path_len = strlen(f->r.path);
    f->r.model = "grp";
    f->r.primary_group = "grp";
    snprintf(f->r.call_id, sizeof(f->r.call_id), "%s", call_id);
    f->r.usage.prompt_tokens = 3;
    f->r.usage.completion_tokens = 4;
    if (dep_id != NULL) {
        f->dep.id = (char *) dep_id;
        f->dep.model_name = "grp";
        f->dep.provider = "";
        f->r.dep = &f->dep;
    }
}

static void
record(int worker, const char *call_id, const char *dep_id, int status)
{
    fake_t f;
    fake_init(&f, worker, call_id, dep_id, status);
    mg_reqlog_record(&f.r);
}

static json_t *
find_call(json_t *reqs, const char *id)
{
    size_t i;
    json_t *q;
    json_array_foreach(reqs, i, q) {
        if (strcmp(json_string_value(json_object_get(q, "call_id")), id) == 0) {
            return q;
        }
    }
    return NULL;
}

static json_t *
find_dep(json_t *traffic, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(traffic, "deployments"), i, d) {
        if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0) {
            return d;
        }
    }
    return NULL;
}

static int64_t
series_sum(json_t *d, const char *field)
{
    int64_t n = 0;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(d, "series"), i, b) {
        n += json_integer_value(json_object_get(b, field));
    }
    return n;
}

int
main(void)
{
    MG_T_CASE("disabled before init");
    record(0, "early", "d1", 200); /* no shared memory yet: ignored, no crash */
    json_t *j = mg_reqlog_requests_json(10);
    CHECK(json_is_false(json_object_get(j, "enabled")));
    CHECK_INT(json_array_size(json_object_get(j, "requests")), 0);
    json_decref(j);

    CHECK_INT(mg_shm_create(2, 4 * 1024 * 1024), 0);
    mg_err_t err;
    CHECK_INT(mg_reqlog_init(2, &err), MG_OK);
    CHECK(mg_reqlog_enabled());

    MG_T_CASE("one record, every field");
    record(1, "call-one", "dep-a", 200);
    j = mg_reqlog_requests_json(10);
    json_t *reqs = json_object_get(j, "requests");
    CHECK_INT(json_array_size(reqs), 1);
    json_t *q = find_call(reqs, "call-one");
    CHECK(q != NULL);
    CHECK_INT(json_integer_value(json_object_get(q, "worker")), 1);
    CHECK_INT(json_integer_value(json_object_get(q, "status")), 200);
    CHECK_STR(json_string_value(json_object_get(q, "route")), "/v1/chat/completions");
    CHECK_STR(json_string_value(json_object_get(q, "model_group")), "grp");
    CHECK_STR(json_string_value(json_object_get(q, "deployment_id")), "dep-a");
    CHECK_STR(json_string_value(json_object_get(q, "provider")), "openai");
    CHECK_INT(json_integer_value(json_object_get(q, "total_tokens")), 7);
    double lat = json_real_value(json_object_get(q, "latency_ms"));
    CHECK(lat >= 2.5 && lat < 10000, "latency %.3f ms", lat);
    CHECK_INT(json_integer_value(json_object_get(j, "capacity")), 2 * MG_REQLOG_RING);
    json_decref(j);

    MG_T_CASE("no deployment, a client that went away");
    fake_t f;
    fake_init(&f, 0, "call-gone", NULL, 0);
    f.hr.finished = false;
    mg_reqlog_record(&f.r);
    fake_init(&f, 0, "not-llm", "dep-a", 200);
    f.r.api = NULL; /* an admin route: not recorded */
    mg_reqlog_record(&f.r);
    j = mg_reqlog_requests_json(0);
    q = find_call(json_object_get(j, "requests"), "call-gone");
    CHECK(q != NULL);
    CHECK_INT(json_integer_value(json_object_get(q, "status")), 499);
    CHECK(json_is_null(json_object_get(q, "deployment_id")));
    CHECK(find_call(json_object_get(j, "requests"), "not-llm") == NULL);
    json_decref(j);

    MG_T_CASE("the ring keeps the newest per worker");
    char id[64];
    for (int i = 0; i < MG_REQLOG_RING * 3; i++) {
        snprintf(id, sizeof(id), "w0-%d", i);
        record(0, id, "dep-b", i % 5 == 0 ? 503 : 200);
    }
    j = mg_reqlog_requests_json(0);
    reqs = json_object_get(j, "requests");
    CHECK_INT(json_array_size(reqs), MG_REQLOG_RING + 1); /* worker 0's ring + worker 1's one */
    snprintf(id, sizeof(id), "w0-%d", MG_REQLOG_RING * 3 - 1);
    CHECK(find_call(reqs, id) != NULL, "the newest is kept");
    snprintf(id, sizeof(id), "w0-%d", MG_REQLOG_RING * 2 - 1);
    CHECK(find_call(reqs, id) == NULL, "older ones left the ring");
    CHECK(find_call(reqs, "call-one") != NULL, "the other worker's ring is its own");
    int64_t prev = INT64_MAX;
    size_t i;
    json_array_foreach(reqs, i, q) {
        int64_t t = json_integer_value(json_object_get(q, "time_ms"));
        CHECK(t <= prev, "newest first");
        prev = t;
    }
    json_decref(j);
    j = mg_reqlog_requests_json(5);
    CHECK_INT(json_array_size(json_object_get(j, "requests")), 5);
    json_decref(j);

    MG_T_CASE("an entry being written is skipped, and rewritten later");
    mg_reqlog_entry_t *e = &mg_reqlog_parts[1].ring[0];
    e->seq |= 1; /* as a worker that died mid-write leaves it */
    j = mg_reqlog_requests_json(0);
    CHECK(find_call(json_object_get(j, "requests"), "call-one") == NULL);
    json_decref(j);
    record(1, "after-torn", "dep-a", 200); /* a respawned worker continues at next */
    j = mg_reqlog_requests_json(0);
    CHECK(find_call(json_object_get(j, "requests"), "after-torn") != NULL);
    json_decref(j);
    CHECK_INT(mg_reqlog_parts[1].next, 2);
    CHECK(!(mg_reqlog_parts[1].ring[1].seq & 1));

    MG_T_CASE("traffic: per deployment, summed over workers");
    record(1, "x1", "dep-b", 200);
    json_t *t = mg_reqlog_traffic_json();
    CHECK(json_is_true(json_object_get(t, "enabled")));
    CHECK_INT(json_integer_value(json_object_get(t, "buckets")), MG_REQLOG_NBUCKETS);
    json_t *db = find_dep(t, "dep-b");
    CHECK(db != NULL);
    CHECK_INT(json_array_size(json_object_get(db, "series")), MG_REQLOG_NBUCKETS);
    CHECK_INT(series_sum(db, "requests"), MG_REQLOG_RING * 3 + 1);
    CHECK_INT(series_sum(db, "failures"), (MG_REQLOG_RING * 3 + 4) / 5);
    CHECK_INT(series_sum(db, "tokens"), 7 * (MG_REQLOG_RING * 3 + 1));
    CHECK_STR(json_string_value(json_object_get(db, "model_group")), "grp");
    json_t *last = json_array_get(json_object_get(db, "series"), MG_REQLOG_NBUCKETS - 1);
    CHECK(json_is_number(json_object_get(last, "latency_ms")), "the current bucket has a mean");
    json_t *first = json_array_get(json_object_get(db, "series"), 0);
    CHECK(json_is_null(json_object_get(first, "latency_ms")), "an empty bucket has none");
    json_decref(t);

    MG_T_CASE("an old bucket is not counted again");
    mg_reqlog_series_t *s = mg_reqlog_series_for(&mg_reqlog_parts[1], "dep-old", "grp");
    int64_t now_ms = mg_time_real_ms();
    mg_reqlog_count(s, now_ms - (int64_t) MG_REQLOG_NBUCKETS * MG_REQLOG_BUCKET_S * 1000, 200, 1000, 1);
    t = mg_reqlog_traffic_json();
    CHECK(find_dep(t, "dep-old") == NULL, "a deployment with nothing in the window is left out");
    json_decref(t);
    mg_reqlog_count(s, now_ms, 200, 1000, 1); /* same slot, new epoch: reset, then 1 */
    t = mg_reqlog_traffic_json();
    CHECK(find_dep(t, "dep-old") != NULL);
    CHECK_INT(series_sum(find_dep(t, "dep-old"), "requests"), 1);
    json_decref(t);

    MG_T_CASE("series: the least recent deployment is evicted");
    for (int k = 0; k < MG_REQLOG_SERIES + 4; k++) {
        snprintf(id, sizeof(id), "many-%d", k);
        fake_init(&f, 0, "m", id, 200);
        mg_reqlog_record(&f.r);
    }
    int used = 0;
    for (int k = 0; k < MG_REQLOG_SERIES; k++) {
        used += mg_reqlog_parts[0].series[k].used ? 1 : 0;
    }
    CHECK_INT(used, MG_REQLOG_SERIES);
    t = mg_reqlog_traffic_json();
    snprintf(id, sizeof(id), "many-%d", MG_REQLOG_SERIES + 3);
    CHECK(find_dep(t, id) != NULL, "the newest has a series");
    json_decref(t);

    MG_T_CASE("long fields are cut, never overrun");
    char longid[300];
    memset(longid, 'z', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    fake_init(&f, 0, "long", longid, 200);
    f.r.model = longid;
    mg_reqlog_record(&f.r);
    j = mg_reqlog_requests_json(1);
    q = json_array_get(json_object_get(j, "requests"), 0);
    CHECK_STR(json_string_value(json_object_get(q, "call_id")), "long");
    CHECK_INT(strlen(json_string_value(json_object_get(q, "model"))), sizeof(e->model) - 1);
    CHECK_INT(strlen(json_string_value(json_object_get(q, "deployment_id"))), sizeof(e->deployment) - 1);
    json_decref(j);

    return mg_test_done();
}
