# Fuzz targets (see tests/fuzz/README.md).  Included from tests/CMakeLists.txt.
#
# Always: each target is linked with replay_main.c and the normal compiler, and
# fuzz.replay.<target> (label "unit") runs it on every file of its committed corpus
# tests/fuzz/corpus/<target>/ -- the regression replay.
#
# With -DMG_FUZZ=ON and clang: the libFuzzer binaries <target> as well (target "fuzz" builds
# all of them).  They link their own instrumented copy of the core files they reach
# (mg_fuzz_core: core/base, core/registry, the HTTP parser, the SSE splitter and the AWS
# event-stream decoder), compiled
# with the project's warnings minus the GCC-only -Wno-format-truncation, so
# "cmake --build <dir> --target fuzz" works with clang whatever the top-level flags are.

set(MG_FUZZ_TARGETS fuzz_http_request fuzz_json_request fuzz_config fuzz_sse fuzz_eventstream)
set(MG_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

foreach(t ${MG_FUZZ_TARGETS})
  add_executable(${t}_replay ${MG_FUZZ_DIR}/${t}.c ${MG_FUZZ_DIR}/replay_main.c)
  target_include_directories(${t}_replay PRIVATE ${MG_FUZZ_DIR})
  target_link_libraries(${t}_replay PRIVATE mg_core)
  target_compile_definitions(${t}_replay PRIVATE _GNU_SOURCE)
  set_target_properties(${t}_replay PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/fuzz)
  add_test(NAME fuzz.replay.${t} COMMAND ${t}_replay ${MG_FUZZ_DIR}/corpus/${t})
  set_tests_properties(fuzz.replay.${t} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()

if(MG_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(WARNING "MG_FUZZ=ON needs clang (-DCMAKE_C_COMPILER=clang): only the corpus "
                    "replay tests are built")
  else()
    set(MG_FUZZ_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wpointer-arith
        -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing)
    # MG_FUZZ_RECOVER=ON: ASan/UBSan report and go on (run with ASAN_OPTIONS=halt_on_error=0),
    # to explore past a known bug instead of stopping at its first input.
    option(MG_FUZZ_RECOVER "libFuzzer targets: sanitizer reports do not stop the run" OFF)
    set(MG_FUZZ_SANITIZE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g)
    if(MG_FUZZ_RECOVER)
      list(APPEND MG_FUZZ_SANITIZE -fsanitize-recover=address,undefined)
    else()
      list(APPEND MG_FUZZ_SANITIZE -fno-sanitize-recover=undefined)
    endif()

    set(MG_FUZZ_CORE_SOURCES "")
    foreach(s ${MG_CORE_SOURCES})
      if(s MATCHES "^core/(base|registry)/[^/]*\\.c$" OR
         s MATCHES "^core/http/mg_(http_parse|sse)\\.c$" OR
         s MATCHES "^core/providers/bedrock/mg_eventstream\\.c$")
        list(APPEND MG_FUZZ_CORE_SOURCES ${CMAKE_SOURCE_DIR}/${s})
      endif()
    endforeach()
    add_library(mg_fuzz_core STATIC ${MG_FUZZ_CORE_SOURCES})
    # replace (not extend) the directory's options: they carry GCC-only flags
    set_property(TARGET mg_fuzz_core
      PROPERTY COMPILE_OPTIONS ${MG_FUZZ_WARNINGS} ${MG_FUZZ_SANITIZE})
    target_include_directories(mg_fuzz_core PUBLIC ${CMAKE_SOURCE_DIR}/core)
    target_compile_definitions(mg_fuzz_core PUBLIC _GNU_SOURCE MG_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
    target_link_libraries(mg_fuzz_core PUBLIC PkgConfig::DEPS Threads::Threads m dl)

    add_custom_target(fuzz)
    foreach(t ${MG_FUZZ_TARGETS})
      add_executable(${t} ${MG_FUZZ_DIR}/${t}.c)
      set_property(TARGET ${t} PROPERTY COMPILE_OPTIONS ${MG_FUZZ_WARNINGS} ${MG_FUZZ_SANITIZE})
      target_include_directories(${t} PRIVATE ${MG_FUZZ_DIR})
      target_link_options(${t} PRIVATE -fsanitize=fuzzer,address,undefined
                          $<$<BOOL:${MG_FUZZ_RECOVER}>:-fsanitize-recover=address,undefined>)
      target_link_libraries(${t} PRIVATE mg_fuzz_core)
      target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
      set_target_properties(${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/fuzz)
      add_dependencies(fuzz ${t})
    endforeach()
  endif()
endif()
