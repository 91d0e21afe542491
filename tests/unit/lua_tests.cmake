# Policy unit tests (label "unit"): tests/unit/c/lua/test_<x>.c exercise core/lua/mg_lua_vm.c
# with the built-in policies (policies/**) and the sandbox.  Each file is one program linked
# with mg_core; it prints "N passed, N failed" and exits non-zero on a failed check.  Checks
# that document an open bug are skipped unless MG_TEST_KNOWN_BUGS=1 (tests/unit/c/mg_test.h).
# Included from tests/CMakeLists.txt.

set(MG_UNIT_LUA_TESTS
  lua/test_policies
  lua/test_sandbox
  lua/test_pattern
)

foreach(t ${MG_UNIT_LUA_TESTS})
  get_filename_component(prog ${t} NAME)
  string(REGEX REPLACE "^test_" "" module ${prog})
  set(exe mg_unit_lua_${module})
  add_executable(${exe} ${CMAKE_CURRENT_LIST_DIR}/c/${t}.c)
  target_include_directories(${exe} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/c)
  target_link_libraries(${exe} PRIVATE mg_core)
  add_test(NAME unit.lua.${module} COMMAND ${exe})
  set_tests_properties(unit.lua.${module} PROPERTIES LABELS unit TIMEOUT 180
    ENVIRONMENT "MG_TEST_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()
