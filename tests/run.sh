#!/usr/bin/env bash
# tests/run.sh -- the whole test suite: installs missing Debian and npm
# packages (as root), builds moongate twice (release, and ASan/UBSan), and runs
# every test with ctest in both builds.  Prints ctest's summary for each.
#   tests/run.sh            everything
#   MG_SKIP_SANITIZE=1 tests/run.sh   only the release build
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" --test
(cd "$root/tests" && npm ci --no-audit --no-fund --loglevel=error)

jobs="$(nproc)"
status=0

run_suite() {
  local dir="$1"; shift
  cmake -S "$root" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "== ctest in $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 900) || status=1
}

run_suite "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ -z "${MG_SKIP_SANITIZE:-}" ]]; then
  # the same suite against an AddressSanitizer/UndefinedBehaviorSanitizer build
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DMG_SANITIZE=ON
fi
exit $status
