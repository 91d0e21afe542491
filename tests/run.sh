#!/usr/bin/env bash
# tests/run.sh -- the whole test suite: installs missing Debian and npm
# packages (as root), builds moongate twice (release, and ASan/UBSan), and runs
# every test with ctest in both builds.  Prints ctest's summary for each.
#   tests/run.sh            everything
#   MG_SKIP_SANITIZE=1 tests/run.sh   only the release build
#   MG_CTEST_JOBS=2 tests/run.sh      two tests at a time (default 1; the tests
#                                     that load both cores run alone, tests/CMakeLists.txt)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" --test
(cd "$root/tests" && npm ci --no-audit --no-fund --loglevel=error)

jobs="$(nproc)"
status=0

summaries=""
details=""

# The tail of each failed test's output (from ctest's LastTest.log), gathered so it can be
# printed again at the end: in a long log the inline output of a failure is far from the
# summary that names it.
failed_details() {
  local dir="$1" log="$1/Testing/Temporary/LastTest.log" list="$1/Testing/Temporary/LastTestsFailed.log"
  [[ -f "$list" && -f "$log" ]] || return 0
  local name
  while IFS=: read -r _ name; do
    echo "---- $name ($dir): the last 80 lines of its output"
    awk -v n="$name" '$0 ~ ("^[0-9]+/[0-9]+ Testing: " n "$") {on=1; next}
                      on && index($0, "\"" n "\" end time:") == 1 {on=0}
                      on {print}' "$log" | tail -n 80
  done <"$list"
}

run_suite() {
  local dir="$1"; shift
  cmake -S "$root" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "== ctest in $dir"
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log"
  local out rc=0
  out="$(mktemp)"
  set +e
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j"${MG_CTEST_JOBS:-1}") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  grep -q "^100% tests passed" "$out" || rc=1
  if [[ $rc -ne 0 ]]; then
    status=1
    details+="$(failed_details "$dir")"$'\n'
  fi
  summaries+="== $dir: $(grep -E '^[0-9]+% tests passed' "$out" | tail -n 1)"$'\n'
  summaries+="$(sed -n '/^The following tests FAILED:/,$p' "$out")"$'\n'
  rm -f "$out"
}

run_suite "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ -z "${MG_SKIP_SANITIZE:-}" ]]; then
  # the same suite against an AddressSanitizer/UndefinedBehaviorSanitizer build
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DMG_SANITIZE=ON
fi
if [[ -n "$details" ]]; then
  echo "== what the failed tests printed last"
  printf '%s' "$details"
fi
echo "== summary"
printf '%s' "$summaries"
exit $status
