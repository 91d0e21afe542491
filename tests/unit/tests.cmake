# C unit tests (label "unit"): tests/unit/c/<layer>/test_<module>.c mirrors
# core/<layer>/mg_<module>.c.
# Each file is one program linked with mg_core (a test may #include the module's .c to reach
# static helpers; the archive member is then not pulled in).  It prints "N passed, N failed"
# and exits non-zero on a failed check.  Checks that document an open bug in core/ are
# skipped unless MG_TEST_KNOWN_BUGS=1 (see tests/unit/c/mg_test.h).
#
# Not here: tests/unit/c/store/test_store_pg.c and test_hint_redis.c start their own
# PostgreSQL/Redis servers; store_tests.cmake registers them as integration tests.

set(MG_UNIT_C_TESTS
  base/test_json
  base/test_buf
  base/test_map
  base/test_arena
  base/test_util
  base/test_metrics
  base/test_scrub
  base/test_otel
  http/test_http_parse
  http/test_sse
  net/test_fetch
  registry/test_yaml
  registry/test_config
  registry/test_registry
  registry/test_costmap
  registry/test_stats
  registry/test_limits
  store/test_crypto
  providers/test_sigv4
  providers/test_eventstream
  providers/test_oauth
  providers/test_google_auth
  providers/test_token
  api/test_translate
  api/test_gemini
  api/test_bedrock
  api/test_responses
  providers/test_azure
  store/test_store_journal
  gateway/test_reqlog
  gateway/test_openapi
  gateway/test_keys
  spend/test_spend_ring
  spend/test_spend_queue
)

foreach(t ${MG_UNIT_C_TESTS})
  get_filename_component(layer ${t} DIRECTORY)
  get_filename_component(prog ${t} NAME)
  string(REGEX REPLACE "^test_" "" module ${prog})
  set(exe mg_unit_${layer}_${module})
  add_executable(${exe} ${CMAKE_CURRENT_LIST_DIR}/c/${t}.c)
  target_include_directories(${exe} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/c)
  target_link_libraries(${exe} PRIVATE mg_core)
  target_compile_definitions(${exe} PRIVATE _GNU_SOURCE)
  add_test(NAME unit.${layer}.${module} COMMAND ${exe})
  set_tests_properties(unit.${layer}.${module} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "MG_TEST_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()
