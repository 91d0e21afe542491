# Virtual keys, teams, users, customers and budgets (issue 12, the management routes):
# every route on the embedded store and on PostgreSQL (MG_KEYS_STORE), the permission
# matrix, read-your-writes over 4 workers, the official openai client.  Included from
# tests/CMakeLists.txt.

# mg_keys_test(<name> <file> <store> [TIMEOUT seconds])
function(mg_keys_test name file store)
  cmake_parse_arguments(T "" "TIMEOUT" "" ${ARGN})
  if(NOT NODE_EXECUTABLE)
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name}
           COMMAND ${NODE_EXECUTABLE} --test --test-reporter=spec ${CMAKE_CURRENT_SOURCE_DIR}/${file}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "MG_BUILD_DIR=${CMAKE_BINARY_DIR};MG_KEYS_STORE=${store}")
endfunction()

mg_keys_test(integration.keys_routes      integration/keys_routes.test.mjs journal  TIMEOUT 180)
mg_keys_test(integration.keys_routes_pg   integration/keys_routes.test.mjs postgres TIMEOUT 180)
mg_keys_test(integration.keys_matrix      integration/keys_matrix.test.mjs journal  TIMEOUT 300)
mg_keys_test(integration.keys_matrix_pg   integration/keys_matrix.test.mjs postgres TIMEOUT 300)
mg_keys_test(integration.keys_ryw         integration/keys_ryw.test.mjs    journal  TIMEOUT 180)
mg_keys_test(integration.keys_ryw_pg      integration/keys_ryw.test.mjs    postgres TIMEOUT 180)
mg_keys_test(integration.keys_openai      integration/keys_openai.test.mjs journal  TIMEOUT 120)
mg_keys_test(integration.keys_openai_pg   integration/keys_openai.test.mjs postgres TIMEOUT 120)
