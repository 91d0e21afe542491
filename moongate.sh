#!/usr/bin/env bash
# moongate.sh -- build moongate if needed (installing missing Debian packages
# as root) and run it with the given arguments, e.g.
#   ./moongate.sh --config examples/quickstart.yaml
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
"$root/scripts/deps.sh"
build="${MG_BUILD_DIR:-$root/build}"
if [[ ! -x "$build/moongate" ]] || [[ -n "$(find "$root/core" "$root/lua" "$root/policies" "$root/CMakeLists.txt" -newer "$build/moongate" -print -quit 2>/dev/null)" ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target moongate -j"$(nproc)" >/dev/null
fi
exec "$build/moongate" "$@"
