# Store and hint tests against real servers they start themselves
# (PostgreSQL as the postgres user, redis-server), on 127.0.0.1.
add_executable(mg_test_store_pg ${CMAKE_CURRENT_SOURCE_DIR}/unit/c/store/test_store_pg.c)
target_link_libraries(mg_test_store_pg PRIVATE mg_core)
add_test(NAME integration.store.pg COMMAND mg_test_store_pg)
set_tests_properties(integration.store.pg PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77)

add_executable(mg_test_hint_redis ${CMAKE_CURRENT_SOURCE_DIR}/unit/c/store/test_hint_redis.c)
target_link_libraries(mg_test_hint_redis PRIVATE mg_core)
add_test(NAME integration.hint.redis COMMAND mg_test_hint_redis)
set_tests_properties(integration.hint.redis PROPERTIES LABELS integration TIMEOUT 300)
