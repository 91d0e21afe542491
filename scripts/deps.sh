#!/usr/bin/env bash
# scripts/deps.sh -- installs the Debian 12 packages moongate needs to build,
# run and test, if any is missing.  Never removes a package: apt's plan is
# checked first (Debian's libluajit-5.1-dev would replace nginx's Lua module;
# we use OpenResty's libluajit2-5.1-dev instead).
#   scripts/deps.sh           build + run dependencies
#   scripts/deps.sh --test    also what the test suite starts (redis, postgres, node, nginx, clang)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libevent-dev libluajit2-5.1-dev libhiredis-dev
            libpq-dev libpcre2-dev libyaml-dev libjansson-dev libssl-dev libsodium-dev
            ca-certificates)
# prometheus: its promtool parses /metrics as the Prometheus server does;
# python3-prometheus-client: the reference client's parser reads values back (test_metrics)
# chromium (+ a font for its screenshots): the admin page's headless browser test (puppeteer-core)
# python3-nacl, python3-cryptography: encrypt LiteLLM_ProxyModelTable rows as LiteLLM does
test_pkgs=(redis-server postgresql nodejs npm nginx wrk clang libclang-rt-14-dev curl procps
           iproute2 openssl prometheus python3-prometheus-client chromium fonts-dejavu-core
           python3-nacl python3-cryptography)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  # node may come from elsewhere (e.g. a NodeSource package named nodejs, or a binary on PATH)
  if [[ "$p" == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/deps.sh: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "scripts/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# refuse a plan that would remove anything
if apt-get install -s --no-install-recommends "${missing[@]}" | grep -q '^Remv '; then
  echo "scripts/deps.sh: installing ${missing[*]} would remove packages; refusing:" >&2
  apt-get install -s --no-install-recommends "${missing[@]}" | grep '^Remv ' >&2
  exit 1
fi
apt-get install -y -q --no-install-recommends --no-remove "${missing[@]}" >/dev/null
# the test suite starts its own servers; the packaged services are not needed
for svc in redis-server postgresql nginx prometheus; do
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  service "$svc" stop >/dev/null 2>&1 || true
done
