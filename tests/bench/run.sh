#!/usr/bin/env bash
# tests/bench/run.sh -- moongate vs nginx proxy_pass against the same instant mock.
#
# A benchmark that REPORTS; it never fails on timings. See tests/bench/README.md.
#
#   tests/bench/run.sh                       # the table: mock / nginx / moongate x 3 workloads
#   tests/bench/run.sh --repeat 3            # three rounds, medians and spread
#   tests/bench/run.sh --routing             # moongate, groups of 1, 2 and 50 deployments
#   tests/bench/run.sh --callgrind           # instructions per request, nginx and moongate workers
#   tests/bench/run.sh --callgrind --routing # ... moongate with 1, 2 and 50 deployments
#   tests/bench/run.sh --syscalls            # system calls and context switches per request
#   tests/bench/run.sh --perf                # perf (cpu-clock) profiles of both workers
#
# Loopback only; every process it starts lives in a temp dir and is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# ---------------------------------------------------------------- options
DURATION=${MG_BENCH_DURATION:-10}
WARMUP=${MG_BENCH_WARMUP:-2}
CONNS=${MG_BENCH_CONNECTIONS:-32}
REPEAT=${MG_BENCH_REPEAT:-1}
WORKLOADS=${MG_BENCH_WORKLOADS:-small,large,stream}
TARGETS=${MG_BENCH_TARGETS:-mock,nginx,moongate}
PLACEMENT=${MG_BENCH_PLACEMENT:-proxy+mock}
CORES=${MG_BENCH_CORES:-0,1}
BUILD_DIR=${MG_BENCH_BUILD_DIR:-$ROOT/build-bench}
MG_BIN=${MG_BENCH_BIN:-}
MOCK_BIN=${MG_BENCH_MOCK_BIN:-}
DO_BUILD=1
JSON_OUT=${MG_BENCH_JSON:-}
KEEP=0
PIN=1
REV=
DISTINCT_KEYS=0
MODE=table          # table | callgrind | perf | syscalls
ROUTING=0
DEPLOYMENTS=${MG_BENCH_DEPLOYMENTS:-1,2,50}
CG_REQUESTS=${MG_BENCH_CG_REQUESTS:-20000}
CG_WARMUP=${MG_BENCH_CG_WARMUP:-1000}
CG_CONNS=${MG_BENCH_CG_CONNECTIONS:-8}
NGINX_BUFFERING=${MG_BENCH_NGINX_BUFFERING:-off}
IDLE_S=${MG_BENCH_IDLE_SECONDS:-3}
QUIET_WAIT=${MG_BENCH_QUIET_WAIT:-30}
QUIET_PCT=${MG_BENCH_QUIET_PCT:-15}
MASTER_KEY=sk-bench-master
VKEY=0                  # --vkey: clients use a virtual key (no limits) instead of the master key
VIRTUAL_KEY=sk-bench-virtual-key-0123456789abcdef
CLIENT_KEY=$MASTER_KEY
export LITELLM_LOG=ERROR   # moongate: errors only (no per-request log lines)

usage() {
    cat <<'EOF'
usage: tests/bench/run.sh [options]
  --duration S        measured seconds per run (default 10)
  --warmup S          warm-up seconds before each measured run (default 2)
  --connections N     wrk connections (default 32)
  --repeat N          rounds; the table shows medians and the min..max spread (default 1)
  --workloads LIST    of small,large,stream (default all three)
  --targets LIST      of mock,nginx,moongate (default all three)
  --placement P       proxy+mock (default): proxy and mock share core A, wrk alone on core B
                      wrk+mock: proxy alone on core A, wrk and mock share core B
  --cores A,B         the two cores (default 0,1)
  --no-pin            no taskset at all
  --routing           moongate only, one group of N deployments (simple-shuffle) for each N
                      in --deployments (default 1,2,50); small workload unless --workloads
  --deployments LIST  group sizes for --routing (default 1,2,50)
  --vkey              clients authenticate with a virtual key (written into moongate's
                      embedded store) instead of the master key: the cost of key checks,
                      admission and settlement
  --distinct-keys     --routing: one api_key per deployment, hence one upstream pool each
                      (default: one shared key, one pool; the deployments differ by model)
  --callgrind         nginx's and moongate's worker under callgrind: instructions per request
                      (--cg-requests N, default 20000; --cg-warmup N, default 1000)
  --perf              nginx's and moongate's worker under perf record (cpu-clock), one run
                      per workload, and the top symbols; no table
  --syscalls          system calls (by name) and context switches per request of nginx and
                      moongate (perf tracepoints at full speed; else strace -c, slow)
  --build-dir DIR     where to build/find moongate and the mock (default ./build-bench,
                      configured RelWithDebInfo; the tests' build/ is usually -O0)
  --bin PATH          moongate binary (skips the build of moongate)
  --mock-bin PATH     mock binary
  --no-build          do not run cmake/make
  --rev REV           benchmark a git revision instead of the work tree (git archive into
                      BUILD_DIR/src-SHA, built in BUILD_DIR/rev-SHA); e.g. --rev HEAD
  --nginx-buffering on|off   proxy_buffering for nginx (default off, as SSE needs)
  --json FILE         where the JSON goes (default: printed; in the temp dir's parent)
  --keep              keep the temp dir (configs, logs, callgrind output)
  --quiet-wait S      before each run wait up to S s (default 30; 0 = never) for a second in
                      which the rest of the machine uses <= --quiet-pct % of a core (default 15)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --placement) PLACEMENT=$2; shift 2 ;;
    --cores) CORES=$2; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --routing) ROUTING=1; shift ;;
    --deployments) DEPLOYMENTS=$2; shift 2 ;;
    --distinct-keys) DISTINCT_KEYS=1; shift ;;
    --vkey) VKEY=1; CLIENT_KEY=$VIRTUAL_KEY; shift ;;
    --callgrind) MODE=callgrind; shift ;;
    --cg-requests) CG_REQUESTS=$2; shift 2 ;;
    --cg-warmup) CG_WARMUP=$2; shift 2 ;;
    --perf) MODE=perf; shift ;;
    --syscalls) MODE=syscalls; shift ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --bin) MG_BIN=$2; shift 2 ;;
    --mock-bin) MOCK_BIN=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --rev) REV=$2; shift 2 ;;
    --nginx-buffering) NGINX_BUFFERING=$2; shift 2 ;;
    --json) JSON_OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
    --quiet-pct) QUIET_PCT=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

for tool in curl jq node; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
case "$MODE" in
table | perf | syscalls)
    command -v wrk >/dev/null || die "wrk is required (apt-get install wrk)"
    [ "$ROUTING" = 1 ] || [[ ",$TARGETS," != *",nginx,"* ]] || command -v nginx >/dev/null ||
        die "nginx is required (apt-get install nginx-light)"
    ;;
callgrind)
    command -v wrk >/dev/null || die "wrk is required"
    command -v valgrind >/dev/null || die "valgrind is required"
    ;;
esac
[ "$MODE" != perf ] || command -v perf >/dev/null || die "perf is required for --perf"

# ---------------------------------------------------------------- placement
IFS=, read -r CORE_A CORE_B <<<"$CORES"
case "$PLACEMENT" in
proxy+mock) PROXY_CORE=$CORE_A; MOCK_CORE=$CORE_A; WRK_CORE=$CORE_B ;;
wrk+mock) PROXY_CORE=$CORE_A; MOCK_CORE=$CORE_B; WRK_CORE=$CORE_B ;;
*) die "--placement must be proxy+mock or wrk+mock" ;;
esac
pin() { # pin CORE cmd...  -- only as "pin ... &": it execs, so $! is the program's own pid
    local core=$1
    shift
    if [ "$PIN" = 1 ]; then exec taskset -c "$core" "$@"; else exec "$@"; fi
}

# ---------------------------------------------------------------- binaries
SRC_DIR=$ROOT
if [ -n "$REV" ]; then
    sha=$(git -C "$ROOT" rev-parse --short=12 "$REV^{commit}") || die "no such revision $REV"
    SRC_DIR=$BUILD_DIR/src-$sha
    if [ ! -f "$SRC_DIR/CMakeLists.txt" ]; then
        mkdir -p "$SRC_DIR"
        git -C "$ROOT" archive "$sha" | tar -x -C "$SRC_DIR" || die "git archive $sha failed"
    fi
    BUILD_DIR=$BUILD_DIR/rev-$sha
fi
if [ "$DO_BUILD" = 1 ] && { [ -z "$MG_BIN" ] || [ -z "$MOCK_BIN" ]; }; then
    mkdir -p "$BUILD_DIR"
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        say "configuring $BUILD_DIR (RelWithDebInfo)"
        # -Wno-error=maybe-uninitialized: gcc -O2 warns where -O0 does not, and the
        # project builds with -Werror.
        cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DCMAKE_C_FLAGS="-Wno-error=maybe-uninitialized" >"$BUILD_DIR/bench-cmake.log" 2>&1 ||
            die "cmake failed, see $BUILD_DIR/bench-cmake.log"
    fi
    say "building moongate and mg_mock_provider in $BUILD_DIR"
    cmake --build "$BUILD_DIR" -j2 --target moongate mg_mock_provider >"$BUILD_DIR/bench-build.log" 2>&1 ||
        die "build failed, see $BUILD_DIR/bench-build.log"
fi
MG_BIN=${MG_BIN:-$BUILD_DIR/moongate}
MOCK_BIN=${MOCK_BIN:-$BUILD_DIR/tests/mocks/mg_mock_provider}
[ -x "$MG_BIN" ] || die "no moongate binary at $MG_BIN"
[ -x "$MOCK_BIN" ] || die "no mock binary at $MOCK_BIN"
BUILD_TYPE=unknown
cache=$(dirname "$MG_BIN")/CMakeCache.txt
if [ -f "$cache" ]; then
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache")
    BUILD_TYPE=${BUILD_TYPE:-none}
fi
case "$BUILD_TYPE" in
Debug | none) say "WARNING: $MG_BIN is a $BUILD_TYPE build (-O0): numbers are not representative" ;;
esac

# ---------------------------------------------------------------- temp dir, cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mg-bench.XXXXXX")
chmod 755 "$TMP"
PIDS=()      # processes this script started, stopped on exit (last started first)
WORKERS=()   # their children learned by pid (nginx/moongate workers), swept after them
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

stop_pid() { # TERM, up to 10 s, then KILL; only the given pid
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # reap it if it is our child
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    # a master stops its own workers; this only catches ones it left behind
    for i in "${WORKERS[@]}"; do
        ! kill -0 "$i" 2>/dev/null || kill -KILL "$i" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
        [ "$rc" = 0 ] || say "exit $rc; temp dir kept for inspection: $TMP"
        [ "$rc" != 0 ] || say "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { # remove a pid from PIDS after stopping it
    local p out=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || out+=("$p"); done
    PIDS=("${out[@]}")
}

wait_for() { # wait_for SECONDS what cmd... (polls every 50 ms)
    local secs=$1 what=$2 end
    shift 2
    end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || die "timed out after ${secs}s waiting for $what"
        sleep 0.05
    done
}

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

children_of() { # direct children of a pid
    local p=$1
    cat /proc/"$p"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d' || true
}
has_children() { [ -n "$(children_of "$1")" ]; }

# ---------------------------------------------------------------- /proc readers
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime+stime (all threads) summed over pids
    local sum=0 p line rest
    for p in "$@"; do
        read -r line <"/proc/$p/stat" 2>/dev/null || continue
        rest=${line##*) }
        # shellcheck disable=SC2086
        set -- $rest
        # after "pid (comm) ": $1=state ... $12=utime $13=stime $14=cutime $15=cstime
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
reaped_ticks() { # cutime+cstime of a pid: its children that exited and were waited for
    local line rest
    read -r line <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${14} + ${15}))
}
proc_ticks() { # a proxy's CPU: master (itself + reaped workers) + live workers
    local master=$1
    echo $(($(cpu_ticks "$master" $(children_of "$master")) + $(reaped_ticks "$master")))
}
proc_sys_ticks() { # the stime part of proc_ticks
    local sum=0 p line rest
    for p in "$1" $(children_of "$1"); do
        read -r line <"/proc/$p/stat" 2>/dev/null || continue
        rest=${line##*) }
        # shellcheck disable=SC2086
        set -- $rest
        sum=$((sum + ${13}))
        [ "$p" != "$1" ] || sum=$((sum + ${15}))
    done
    echo "$sum"
}
host_busy_ticks() { # all CPUs: user+nice+system+irq+softirq+steal (not idle, iowait)
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
host_softirq_ticks() {
    awk '$1 == "cpu" { print $7 + $8; exit }' /proc/stat
}
CHILD_TICKS=0
shell_children_ticks() { # sets CHILD_TICKS: user+sys of every waited-for child of this shell
    # (wrk, curl, ...). Not in $(...): a subshell has its own, empty, children times.
    times >"$TMP/times"   # second line: "0m1.234s 0m0.567s"
    CHILD_TICKS=$(awk -v hz="$CLK_TCK" 'NR == 2 {
        t = 0
        for (i = 1; i <= NF; i++) { split($i, b, "m"); sub("s", "", b[2]); t += b[1] * 60 + b[2] }
        printf "%d", t * hz + 0.5 }' "$TMP/times")
}
sched_ns() { # on-CPU nanoseconds (all threads) summed over pids, from schedstat
    local sum=0 p f v
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r v _ <"$f" 2>/dev/null || continue
            sum=$((sum + v))
        done
    done
    echo "$sum"
}
status_kb() { # status_kb pid Field  -> kB
    awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null || echo 0
}
pss_kb() {
    awk '$1 == "Pss:" { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}
json_list() { # json_list a b c -> [a,b,c]
    local IFS=,
    echo "[$*]"
}

# ---------------------------------------------------------------- request bodies
# exact-size OpenAI chat bodies; the user content is filler text (with \n escapes
# in the large one, as pasted documents have)
make_body() { # make_body FILE SIZE STREAM(0|1) NEWLINES(0|1)
    local file=$1 size=$2 stream=$3 nl=$4 head tail fill need line i=0
    head='{"model":"bench-model",'
    [ "$stream" = 1 ] && head+='"stream":true,'
    head+='"messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},{"role":"user","content":"'
    tail='"}],"temperature":0.7,"max_tokens":256,"user":"bench-user"}'
    need=$((size - ${#head} - ${#tail}))
    [ "$need" -gt 0 ] || die "body size $size too small"
    fill=
    while [ "${#fill}" -lt "$need" ]; do
        i=$((i + 1))
        line="Paragraph $i: the quick brown fox jumps over the lazy dog, and the gateway forwards this text to the provider unchanged."
        if [ "$nl" = 1 ]; then fill+="$line\\n"; else fill+="$line "; fi
    done
    fill=${fill:0:$need}
    # never end on a lone backslash (it would escape the closing quote)
    while [ "${fill: -1}" = '\' ]; do fill="${fill:0:$((need - 1))}x"; done
    printf '%s%s%s' "$head" "$fill" "$tail" >"$file"
    jq -e . "$file" >/dev/null || die "generated body $file is not JSON"
    [ "$(stat -c %s "$file")" = "$size" ] || die "generated body $file is not $size bytes"
}
make_body "$TMP/body-small.json" 300 0 0
make_body "$TMP/body-large.json" 20480 0 1
make_body "$TMP/body-stream.json" 300 1 0

# ---------------------------------------------------------------- processes
MOCK_PID=
MOCK_PORT=
start_mock() {
    local pf=$TMP/mock.port
    rm -f "$pf"
    pin "$MOCK_CORE" "$MOCK_BIN" --port 0 --port-file "$pf" --quiet >"$TMP/mock.out" 2>"$TMP/mock.err" &
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    wait_for 10 "the mock's port file" test -s "$pf"
    MOCK_PORT=$(cat "$pf")
    wait_for 10 "the mock" curl -fsS "http://127.0.0.1:$MOCK_PORT/__mock/health"
    say "mock pid $MOCK_PID on 127.0.0.1:$MOCK_PORT (core $MOCK_CORE)"
}
mock_stat() { curl -fsS "http://127.0.0.1:$MOCK_PORT/__mock/stats" | jq -r ".$1"; }

NGINX_PID=
NGINX_PORT=
start_nginx() { # start_nginx [wrapper...]
    local pre=$TMP/nginx ready=10
    [ $# -eq 0 ] || ready=300 # under valgrind
    [ ! -d "$pre" ] || mv "$pre" "$pre.old-$(date +%s%N)" # a restart keeps the old logs
    mkdir -p "$pre"
    chmod 755 "$pre"
    NGINX_PORT=$(free_port)
    sed -e "s|@PREFIX@|$pre|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
        -e "s|@PROXY_BUFFERING@|$NGINX_BUFFERING|g" \
        -e "s|@USER@|$([ "$(id -u)" = 0 ] && echo 'user root;' || echo '# (not root: no user directive)')|" \
        "$HERE/nginx.conf.in" >"$pre/nginx.conf"
    pin "$PROXY_CORE" "$@" "$(command -v nginx)" -p "$pre" -c "$pre/nginx.conf" -e "$pre/error.log" \
        >"$pre/stdout" 2>"$pre/stderr" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_for "$ready" "nginx" curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/__mock/health"
    wait_for "$ready" "the nginx worker" has_children "$NGINX_PID"
    local w
    for w in $(children_of "$NGINX_PID"); do WORKERS+=("$w"); done
    say "nginx pid $NGINX_PID (workers $(children_of "$NGINX_PID" | paste -sd,)) on 127.0.0.1:$NGINX_PORT (core $PROXY_CORE)"
}

write_mg_config() { # write_mg_config FILE NDEPLOYMENTS
    # The deployments of the group differ by their upstream model name and share the
    # credential, so they share one upstream connection pool (moongate keys pools by
    # provider, origin and credential): the routing cost is not mixed with the cost of
    # N cold pools. --distinct-keys gives each its own key, hence its own pool.
    local f=$1 n=$2 i key model
    {
        echo "model_list:"
        for ((i = 1; i <= n; i++)); do
            key=sk-upstream-bench
            model=bench-model
            [ "$DISTINCT_KEYS" = 0 ] || key=sk-upstream-bench-$i
            [ "$n" = 1 ] || model=bench-model-$i
            cat <<EOF
  - model_name: bench-model
    litellm_params:
      model: openai/$model
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: $key
EOF
        done
        cat <<EOF
router_settings:
  routing_strategy: simple-shuffle
general_settings:
  master_key: $MASTER_KEY
EOF
    } >"$f"
}

# One virtual key row in the embedded store's journal (the record format of
# core/store/mg_store_journal.c), as another instance sharing the directory would write it.
write_vkey() { # write_vkey STATE_DIR
    mkdir -p "$1"
    local tok payload sum
    tok=$(printf '%s' "$VIRTUAL_KEY" | sha256sum | cut -c1-64)
    payload=$(printf '{"op":"ident_put","table":"key","id":"%s","row":{"token":"%s","key_name":"sk-...cdef","key_alias":"bench","spend":0,"models":[]},"version":1}' "$tok" "$tok")
    sum=$(printf '%s' "$payload" | sha256sum | cut -c1-16)
    printf 'MGJ1 1 %d %s\n%s\n' "${#payload}" "$sum" "$payload" >"$1/registry.journal"
}

MG_PID=
MG_PORT=
MG_TAG=
start_moongate() { # start_moongate NDEPLOYMENTS [wrapper...]
    local n=$1 d
    shift
    MG_TAG=moongate-$n
    d=$TMP/$MG_TAG
    [ ! -d "$d" ] || mv "$d" "$d.old-$(date +%s%N)" # a restart keeps the old logs
    mkdir -p "$d"
    write_mg_config "$d/config.yaml" "$n"
    [ "$VKEY" = 0 ] || write_vkey "$d/state"
    local ready=20
    [ $# -eq 0 ] || ready=300 # under valgrind
    pin "$PROXY_CORE" "$@" "$MG_BIN" --config "$d/config.yaml" --host 127.0.0.1 \
        --port 0 --num_workers 1 --state_dir "$d/state" >"$d/stdout" 2>"$d/stderr" &
    MG_PID=$!
    PIDS+=("$MG_PID")
    wait_for "$ready" "moongate to listen" grep -q 'moongate: listening on' "$d/stdout"
    MG_PORT=$(sed -n 's/.*moongate: listening on [^:]*:\([0-9]*\).*/\1/p' "$d/stdout" | head -1)
    wait_for "$ready" "moongate readiness" curl -fsS -o /dev/null "http://127.0.0.1:$MG_PORT/health/readiness"
    wait_for 10 "the moongate worker" has_children "$MG_PID"
    local w
    for w in $(children_of "$MG_PID"); do WORKERS+=("$w"); done
    say "moongate pid $MG_PID (workers $(children_of "$MG_PID" | paste -sd,)) on 127.0.0.1:$MG_PORT, $n deployment(s) (core $PROXY_CORE)"
}
stop_nginx() {
    local w
    for w in $(children_of "$NGINX_PID"); do WORKERS+=("$w"); done
    stop_pid "$NGINX_PID"
    forget_pid "$NGINX_PID"
    NGINX_PID=
}
start_target() { # start_target nginx|moongate N [wrapper...]
    local t=$1 n=$2
    shift 2
    case "$t" in
    nginx) start_nginx "$@" ;;
    moongate*) start_moongate "$n" "$@" ;;
    esac
}
stop_target() {
    case "$1" in
    nginx) stop_nginx ;;
    moongate*) stop_moongate ;;
    esac
}
master_of() {
    case "$1" in
    nginx) echo "$NGINX_PID" ;;
    moongate*) echo "$MG_PID" ;;
    esac
}

stop_moongate() {
    local w
    for w in $(children_of "$MG_PID"); do WORKERS+=("$w"); done
    stop_pid "$MG_PID"
    forget_pid "$MG_PID"
    MG_PID=
}

# ---------------------------------------------------------------- wrk
run_wrk() { # run_wrk URL BODYFILE SECONDS OUTJSON [CONNS]
    local url=$1 body=$2 secs=$3 out=$4 c=${5:-$CONNS}
    rm -f "$out"
    MG_BENCH_BODY=$body MG_BENCH_KEY=$CLIENT_KEY MG_BENCH_OUT=$out \
        timeout -k 5 $((secs + 60)) "${WRK_PIN[@]}" wrk -t1 -c"$c" -d"${secs}s" --timeout 10s \
        --latency -s "$HERE/post.lua" "$url" >"$out.txt" 2>&1 || return 1
    [ -s "$out" ] || return 1
}
run_wrk_or_die() {
    run_wrk "$@" || die "wrk failed: $(cat "$4.txt")"
}
run_wrk_count() { # run_wrk_count URL BODYFILE N OUTJSON CONNS MAXSECONDS
    # until the mock has seen N more requests (then SIGINT: wrk prints its summary)
    local url=$1 body=$2 n=$3 out=$4 c=$5 maxs=$6 r0 wp
    rm -f "$out"
    r0=$(mock_stat requests)
    MG_BENCH_BODY=$body MG_BENCH_KEY=$CLIENT_KEY MG_BENCH_OUT=$out \
        timeout -k 5 $((maxs + 30)) "${WRK_PIN[@]}" wrk -t1 -c"$c" -d"${maxs}s" --timeout 30s \
        --latency -s "$HERE/post.lua" "$url" >"$out.txt" 2>&1 &
    wp=$!
    PIDS+=("$wp")
    while kill -0 "$wp" 2>/dev/null && [ "$(mock_stat requests)" -lt $((r0 + n)) ]; do
        sleep 0.2
    done
    kill -INT "$wp" 2>/dev/null || true
    wait "$wp" || true
    forget_pid "$wp"
    [ -s "$out" ] || die "wrk wrote no summary: $(cat "$out.txt")"
    [ "$(mock_stat requests)" -ge $((r0 + n)) ] || die "only $(($(mock_stat requests) - r0)) of $n requests in ${maxs}s"
}
WRK_PIN=()
[ "$PIN" = 0 ] || WRK_PIN=(taskset -c "$WRK_CORE")

target_url() {
    case "$1" in
    mock) echo "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" ;;
    nginx) echo "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" ;;
    moongate*) echo "http://127.0.0.1:$MG_PORT/v1/chat/completions" ;;
    esac
}
target_pids() { # master first, then workers
    case "$1" in
    mock) echo "$MOCK_PID" ;;
    nginx) echo "$NGINX_PID" $(children_of "$NGINX_PID") ;;
    moongate*) echo "$MG_PID" $(children_of "$MG_PID") ;;
    esac
}

crash_count() { # worker deaths the proxy's master logged so far
    local f
    case "$1" in
    nginx) f=$TMP/nginx/error.log ;;
    moongate*) f=$TMP/$MG_TAG/stderr ;;
    *) echo 0; return ;;
    esac
    grep -cE 'killed by signal|exited on signal' "$f" 2>/dev/null || true
}

record_idle() { # record_idle TARGET DEPLOYMENTS: RSS, and CPU used while idle (IDLE_S seconds)
    local t=$1 n=$2 pids master w rss=() pss=() i0 i1
    read -r -a pids <<<"$(target_pids "$t")"
    master=${pids[0]}
    i0=$(sched_ns "${pids[@]}")
    sleep "$IDLE_S"
    i1=$(sched_ns "${pids[@]}")
    for w in "${pids[@]:1}"; do
        rss+=("$(status_kb "$w" VmRSS)")
        pss+=("$(pss_kb "$w")")
    done
    [ "$t" != mock ] || { rss=("$(status_kb "$master" VmRSS)"); pss=("$(pss_kb "$master")"); }
    printf '{"kind":"idle","target":"%s","deployments":%s,"master_rss_kb":%s,"master_pss_kb":%s,"workers_rss_kb":%s,"workers_pss_kb":%s,"idle_cpu_ns":%s,"idle_s":%s}\n' \
        "$t" "$n" "$(status_kb "$master" VmRSS)" "$(pss_kb "$master")" "$(json_list "${rss[@]}")" \
        "$(json_list "${pss[@]}")" "$((i1 - i0))" "$IDLE_S" >>"$RESULTS"
}

ensure_alive() { # ensure_alive TARGET DEPLOYMENTS: restart a proxy whose master is gone
    local t=$1 n=$2 pid st=0
    case "$t" in
    mock) pid=$MOCK_PID ;;
    nginx) pid=$NGINX_PID ;;
    moongate*) pid=$MG_PID ;;
    esac
    ! kill -0 "$pid" 2>/dev/null || return 0
    wait "$pid" 2>/dev/null || st=$?
    say "WARNING: the $t master (pid $pid) is gone: wait status $st$([ "$st" -le 128 ] || echo " (signal $((st - 128)))"); restarting it"
    printf '{"kind":"event","event":"master_gone","target":"%s","pid":%s,"wait_status":%s}\n' "$t" "$pid" "$st" >>"$RESULTS"
    forget_pid "$pid"
    case "$t" in
    mock) die "the mock died; its clients point at its port, giving up" ;;
    nginx) start_nginx ;;
    moongate*) start_moongate "$n" ;;
    esac
}

wait_quiet() { # up to QUIET_WAIT s for a second in which the rest of the machine used <= QUIET_PCT% of a core
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    local end=$((SECONDS + QUIET_WAIT)) b0 b1 o
    while :; do
        b0=$(host_busy_ticks)
        sleep 1
        b1=$(host_busy_ticks)
        o=$(((b1 - b0) * 100 / CLK_TCK))
        [ "$o" -gt "$QUIET_PCT" ] || return 0
        if [ "$SECONDS" -ge "$end" ]; then
            say "  the machine is busy (other load ${o}% of a core for ${QUIET_WAIT}s); measuring anyway"
            return 0
        fi
    done
}

measure() { # measure TARGET WORKLOAD REP DEPLOYMENTS
    local t=$1 wl=$2 rep=$3 n=$4 url body pids pids1 t0 s0 m0 mr0 t1 s1 m1 mr1 out
    local h0 h1 q0 q1 c0 c1 y0 y1 restarts w attempt ok=0 mpid
    body=$TMP/body-$wl.json
    out=$TMP/wrk-$t-$wl-$rep.json
    for attempt in 1 2 3; do
        ensure_alive "$t" "$n"
        url=$(target_url "$t")
        wait_quiet
        if [ "$WARMUP" != 0 ] && ! run_wrk "$url" "$body" "$WARMUP" "$out.warmup"; then
            say "  $t/$wl#$rep: warm-up failed (attempt $attempt): $(tail -3 "$out.warmup.txt" | tr '\n' ' ')"
            continue
        fi
        read -r -a pids <<<"$(target_pids "$t")"
        mpid=${pids[0]}
        mr0=$(mock_stat requests)
        shell_children_ticks
        c0=$CHILD_TICKS
        h0=$(host_busy_ticks)
        q0=$(host_softirq_ticks)
        t0=$(proc_ticks "$mpid")
        y0=$(proc_sys_ticks "$mpid")
        s0=$(sched_ns "${pids[@]}")
        m0=$(cpu_ticks "$MOCK_PID")
        if ! run_wrk "$url" "$body" "$DURATION" "$out"; then
            say "  $t/$wl#$rep: measured run failed (attempt $attempt): $(tail -3 "$out.txt" | tr '\n' ' ')"
            continue
        fi
        t1=$(proc_ticks "$mpid")
        y1=$(proc_sys_ticks "$mpid")
        m1=$(cpu_ticks "$MOCK_PID")
        h1=$(host_busy_ticks)
        q1=$(host_softirq_ticks)
        shell_children_ticks
        c1=$CHILD_TICKS
        if ! kill -0 "$mpid" 2>/dev/null; then
            say "  $t/$wl#$rep: the master died during the run (attempt $attempt)"
            continue
        fi
        ok=1
        break
    done
    [ "$ok" = 1 ] || die "$t/$wl: three attempts failed"
    read -r -a pids1 <<<"$(target_pids "$t")"
    s1=$(sched_ns "${pids1[@]}")
    mr1=$(mock_stat requests)
    # workers that are not the ones we started with: crashed and respawned during the run
    restarts=0
    for w in "${pids1[@]:1}"; do
        [[ " ${pids[*]:1} " == *" $w "* ]] || { restarts=$((restarts + 1)); WORKERS+=("$w"); }
    done
    # everything else the machine did meanwhile (other jobs on this box, also in other
    # containers or sessions): busy - proxy - mock - wrk (softirq time is charged to the
    # task it interrupted, loopback's mostly to ours: it is not subtracted again)
    local known=$((t1 - t0 + c1 - c0))
    [ "$t" = mock ] || known=$((known + m1 - m0))
    local rss=() hwm=()
    pids=("${pids1[@]}")
    for w in "${pids[@]:1}"; do
        rss+=("$(status_kb "$w" VmRSS)")
        hwm+=("$(status_kb "$w" VmHWM)")
    done
    [ "$t" != mock ] || { rss=("$(status_kb "${pids[0]}" VmRSS)"); hwm=("$(status_kb "${pids[0]}" VmHWM)"); }
    printf '{"kind":"run","target":"%s","workload":"%s","rep":%s,"deployments":%s,"attempts":%s,"wrk":%s,"cpu_ticks":%s,"cpu_sys_ticks":%s,"clk_tck":%s,"sched_ns":%s,"mock_cpu_ticks":%s,"mock_requests":%s,"wrk_cpu_ticks":%s,"worker_restarts":%s,"host_busy_ticks":%s,"host_softirq_ticks":%s,"other_ticks":%s,"crashes_so_far":%s,"master_rss_kb":%s,"workers_rss_kb":%s,"workers_hwm_kb":%s}\n' \
        "$t" "$wl" "$rep" "$n" "$attempt" "$(cat "$out")" "$((t1 - t0))" "$((y1 - y0))" "$CLK_TCK" "$((s1 - s0))" \
        "$((m1 - m0))" "$((mr1 - mr0))" "$((c1 - c0))" "$restarts" "$((h1 - h0))" "$((q1 - q0))" \
        "$((h1 - h0 - known))" "$(crash_count "$t")" "$(status_kb "${pids[0]}" VmRSS)" \
        "$(json_list "${rss[@]}")" "$(json_list "${hwm[@]}")" >>"$RESULTS"
    local req errs
    req=$(jq -r .requests "$out")
    errs=$(jq -r '.errors | .connect + .read + .write + .status + .timeout' "$out")
    say "  $t/$wl#$rep: $req requests, $(awk -v r="$req" -v d="$DURATION" 'BEGIN{printf "%.0f", r/d}') req/s, $(awk -v c="$((t1 - t0))" -v k="$CLK_TCK" -v r="$req" 'BEGIN{ if (r>0) printf "%.1f", c*1e6/k/r; else print "-"}') CPU us/req, other load $(awk -v o="$((h1 - h0 - known))" -v k="$CLK_TCK" -v d="$DURATION" 'BEGIN{printf "%.0f", 100*o/k/d}')% of a core$([ "$errs" = 0 ] || echo ", wrk errors $errs")$([ "$restarts" = 0 ] || echo ", $restarts WORKER RESTART(S)")"
}

# ---------------------------------------------------------------- meta
write_meta() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    jq -n --arg mode "$MODE" --arg placement "$PLACEMENT" --arg cores "$CORES" \
        --argjson proxy_core "${PROXY_CORE:-null}" --argjson mock_core "${MOCK_CORE:-null}" \
        --argjson wrk_core "$WRK_CORE" --argjson pin "$PIN" \
        --argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson connections "$CONNS" \
        --argjson repeat "$REPEAT" --arg workloads "$WORKLOADS" --argjson routing "$ROUTING" \
        --arg mg_bin "$MG_BIN" --arg build_type "$BUILD_TYPE" --arg cpu "$cpu" \
        --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" --arg nginx "$(nginx -v 2>&1 | sed 's/.*\///')" \
        --arg wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" --arg nginx_buffering "$NGINX_BUFFERING" \
        --arg git "$(if [ -n "$REV" ]; then git -C "$ROOT" rev-parse --short=12 "$REV"; else git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown; fi)" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson distinct_keys "$DISTINCT_KEYS" \
        '{mode:$mode, placement:$placement, cores:$cores, proxy_core:$proxy_core, mock_core:$mock_core,
          wrk_core:$wrk_core, pinned:($pin==1), duration_s:$duration, warmup_s:$warmup,
          connections:$connections, repeat:$repeat, workloads:$workloads, routing:($routing==1),
          moongate_bin:$mg_bin, build_type:$build_type, cpu:$cpu, nproc:$nproc, kernel:$kernel,
          nginx:$nginx, wrk:$wrk, nginx_proxy_buffering:$nginx_buffering, git:$git, date:$date,
          body_bytes:{small:300, large:20480, stream:300}, distinct_keys:($distinct_keys==1)}' >"$TMP/meta.json"
}

finish_report() {
    local json=${JSON_OUT:-$(dirname "$TMP")/moongate-bench-$(date +%Y%m%d-%H%M%S).json}
    node "$HERE/report.mjs" "$TMP/meta.json" "$RESULTS" "$json"
}

# ================================================================ modes
IFS=, read -r -a WL <<<"$WORKLOADS"
IFS=, read -r -a TG <<<"$TARGETS"
IFS=, read -r -a DEPS <<<"$DEPLOYMENTS"
[ "$ROUTING" = 1 ] || DEPS=(1)
if [ "$ROUTING" = 1 ] && [ -z "${MG_BENCH_WORKLOADS:-}" ] && [ "$WORKLOADS" = small,large,stream ]; then
    WL=(small)
    WORKLOADS=small
fi
for w in "${WL[@]}"; do
    case "$w" in small | large | stream) ;; *) die "unknown workload $w" ;; esac
done

say "placement $PLACEMENT: proxy core $PROXY_CORE, mock core $MOCK_CORE, wrk core $WRK_CORE; moongate $MG_BIN ($BUILD_TYPE)"
write_meta

# ---------------------------------------------------------------- table mode
if [ "$MODE" = table ]; then
    start_mock
    record_idle mock 0
    if [ "$ROUTING" = 1 ]; then
        for ((rep = 1; rep <= REPEAT; rep++)); do
            for n in "${DEPS[@]}"; do
                start_moongate "$n"
                [ "$rep" != 1 ] || record_idle "$MG_TAG" "$n"
                for wl in "${WL[@]}"; do
                    [ "$n" != "${DEPS[0]}" ] || measure mock "$wl" "$rep" 0
                    measure "$MG_TAG" "$wl" "$rep" "$n"
                done
                stop_moongate
            done
        done
    else
        for t in "${TG[@]}"; do
            case "$t" in
            mock) ;;
            nginx) start_nginx; record_idle nginx 0 ;;
            moongate) start_moongate 1; record_idle moongate 1 ;;
            *) die "unknown target $t" ;;
            esac
        done
        for ((rep = 1; rep <= REPEAT; rep++)); do
            for wl in "${WL[@]}"; do
                for t in "${TG[@]}"; do
                    measure "$t" "$wl" "$rep" "$([ "$t" = moongate ] && echo 1 || echo 0)"
                done
            done
        done
    fi
    finish_report
    exit 0
fi

# ---------------------------------------------------------------- instrumented modes
# the proxies to look at: nginx (unless --routing) and moongate with each group size
INST=()
if [ "$ROUTING" = 0 ] && [[ ",$TARGETS," == *",nginx,"* ]]; then INST+=(nginx:0); fi
if [[ ",$TARGETS," == *",moongate,"* ]] || [ "$ROUTING" = 1 ]; then
    for n in "${DEPS[@]}"; do INST+=("moongate:$n"); done
fi
[ "${#INST[@]}" -gt 0 ] || die "nothing to instrument (--targets)"

# ---------------------------------------------------------------- perf mode
if [ "$MODE" = perf ]; then
    start_mock
    for tn in "${INST[@]}"; do
        t=${tn%%:*}
        n=${tn#*:}
        start_target "$t" "$n"
        [ "$t" = nginx ] || t=moongate
        for wl in "${WL[@]}"; do
            w=$(children_of "$(master_of "$t")" | head -1)
            url=$(target_url "$t")
            run_wrk_or_die "$url" "$TMP/body-$wl.json" "$WARMUP" "$TMP/perf-warm.json"
            tag=$t-$n-$wl
            pdata=$TMP/perf-$tag.data
            # perf itself runs on the load generator's core
            timeout -k 5 $((DURATION + 60)) "${WRK_PIN[@]}" \
                perf record -q -e cpu-clock -F 4999 -g -p "$w" -o "$pdata" -- sleep "$DURATION" \
                >"$TMP/perf-$tag.log" 2>&1 &
            ppid=$!
            PIDS+=("$ppid")
            sleep 0.3
            run_wrk_or_die "$url" "$TMP/body-$wl.json" "$((DURATION - 1))" "$TMP/perf-$tag.wrk.json"
            wait "$ppid" || true
            forget_pid "$ppid"
            rep=$TMP/perf-$tag.txt
            perf report -i "$pdata" --stdio --no-children --sort symbol --percent-limit 0.7 -g none \
                2>/dev/null | grep -v '^$' >"$rep" || true
            perf report -i "$pdata" --stdio --no-children --sort dso --percent-limit 0.5 -g none \
                2>/dev/null | grep -v '^#' | grep -v '^$' >"$rep.dso" || true
            perf report -i "$pdata" --stdio --children --sort symbol --percent-limit 3 -g none \
                2>/dev/null | grep -v '^$' >"$rep.children" || true
            echo
            echo "=== perf (cpu-clock) of the $t worker: workload $wl$([ "$t" = nginx ] || echo ", $n deployment(s)"), $(jq -r .requests "$TMP/perf-$tag.wrk.json") requests ==="
            echo "--- by dso (self) ---"
            cat "$rep.dso"
            echo "--- by symbol (self) ---"
            { grep -v '^#' "$rep" || true; } | head -45 || true
            echo "--- by symbol (inclusive, >= 3%) ---"
            { grep -v '^#' "$rep.children" || true; } | head -40 || true
        done
        stop_target "$t"
    done
    [ "$KEEP" = 1 ] && say "perf data in $TMP (perf report -i FILE)"
    exit 0
fi

# ---------------------------------------------------------------- syscalls mode
# With perf (tracepoints, counted at full speed): system calls by name, all of them, and
# context switches of the proxy's processes during a normal run. Without perf: strace -c
# on the worker (exact counts, but the traced run is slow and batches differently).
SC_NAMES=(sendmsg sendto write writev recvfrom recvmsg read readv epoll_wait epoll_ctl
    accept4 close getsockopt setsockopt ioctl connect clock_gettime)
if [ "$MODE" = syscalls ]; then
    use_perf=0
    if command -v perf >/dev/null &&
        perf stat -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1; then
        use_perf=1
    else
        command -v strace >/dev/null || die "--syscalls needs perf (tracepoints) or strace"
    fi
    start_mock
    for tn in "${INST[@]}"; do
        t=${tn%%:*}
        n=${tn#*:}
        start_target "$t" "$n"
        [ "$t" = nginx ] || t=moongate-$n
        for wl in "${WL[@]}"; do
            url=$(target_url "$t")
            wait_quiet
            run_wrk_or_die "$url" "$TMP/body-$wl.json" "$WARMUP" "$TMP/st-warm.json"
            sfile=$TMP/syscalls-$t-$wl.txt
            if [ "$use_perf" = 1 ]; then
                ev=raw_syscalls:sys_enter,context-switches
                for nm in "${SC_NAMES[@]}"; do
                    [ ! -d "/sys/kernel/tracing/events/syscalls/sys_enter_$nm" ] || ev+=",syscalls:sys_enter_$nm"
                done
                pids=$(target_pids "$t" | tr ' ' ',')
                timeout -k 5 $((DURATION + 60)) "${WRK_PIN[@]}" \
                    perf stat -x, -e "$ev" -p "$pids" -o "$sfile" -- sleep $((DURATION + 1)) >/dev/null 2>&1 &
            else
                w=$(children_of "$(master_of "$t")" | head -1)
                timeout -k 5 $((DURATION + 60)) "${WRK_PIN[@]}" strace -c -q -p "$w" -o "$sfile" &
            fi
            sp=$!
            PIDS+=("$sp")
            sleep 0.5
            r0=$(mock_stat requests)
            run_wrk_or_die "$url" "$TMP/body-$wl.json" "$DURATION" "$TMP/st-$t-$wl.wrk.json"
            wait_for 30 "requests in flight to finish" test "$(mock_stat in_progress)" = 0
            r1=$(mock_stat requests)
            if [ "$use_perf" = 1 ]; then
                wait "$sp" || true
                # perf stat -x,: value,unit,event,...
                calls=$(awk -F, '$1 ~ /^[0-9]+$/ { e = $3; sub(/^syscalls:sys_enter_/, "", e);
                    sub(/^raw_syscalls:sys_enter$/, "ALL", e); printf "%s\"%s\":%d", sep, e, $1; sep = "," }' "$sfile")
            else
                kill -INT "$sp" 2>/dev/null || true
                wait "$sp" || true
                # strace -c: "% time seconds usecs/call calls [errors] syscall"
                calls=$(awk '/^-/ { next } $NF != "total" && $1 ~ /^[0-9.]+$/ { printf "%s\"%s\":%d", sep, $NF, $4; sep="," }' "$sfile")
            fi
            forget_pid "$sp"
            printf '{"kind":"syscalls","tool":"%s","target":"%s","workload":"%s","deployments":%s,"requests":%s,"calls":{%s}}\n' \
                "$([ "$use_perf" = 1 ] && echo perf || echo strace)" "$t" "$wl" "$n" "$((r1 - r0))" "$calls" >>"$RESULTS"
            say "syscalls: $t/$wl: $((r1 - r0)) requests counted"
        done
        stop_target "$t"
    done
    finish_report
    exit 0
fi

# ---------------------------------------------------------------- callgrind mode
cg_self() { # self cost per function, without the frames that were on the stack at the zeroing
    # (callgrind charges those their whole inclusive cost as "self": >= 99% of the total)
    local dump=$1 total=$2
    { callgrind_annotate --inclusive=no --threshold=100 --auto=no "$dump" 2>/dev/null || true; } |
        sed -n '/file:function/,$p' | sed '1,2d' |
        awk -v t="$total" '{ v = $1; gsub(",", "", v); if (v + 0 < 0.99 * t) print }' | head -45 || true
}
cg_ctl() { # cg_ctl -z|-d PID POKE_URL LOG: callgrind_control, poking the process meanwhile
    # (vgdb reaches a valgrind process when it runs; an idle nginx worker sleeps in epoll_wait
    # and vgdb's ptrace "invoker" does not work everywhere, so a request wakes it up; pokes
    # never reach the mock's counted endpoints)
    local op=$1 pid=$2 poke=$3 log=$4 cp end
    timeout 120 callgrind_control "$op" "$pid" >"$log" 2>&1 &
    cp=$!
    PIDS+=("$cp")
    end=$((SECONDS + 120))
    sleep 0.3
    while kill -0 "$cp" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
        curl -s -m 2 -o /dev/null "$poke" || true
        sleep 0.3
    done
    forget_pid "$cp"
    wait "$cp" || die "callgrind_control $op $pid failed: $(cat "$log")"
}
poke_url() {
    case "$1" in
    nginx) echo "http://127.0.0.1:$NGINX_PORT/__mock/health" ;;
    moongate*) echo "http://127.0.0.1:$MG_PORT/health/liveliness" ;;
    esac
}
if [ "$MODE" = callgrind ]; then
    command -v callgrind_control >/dev/null || die "callgrind_control is required"
    start_mock
    for tn in "${INST[@]}"; do
        t=${tn%%:*}
        n=${tn#*:}
        for wl in "${WL[@]}"; do
            cgdir=$TMP/callgrind-$t-$n-$wl
            mkdir -p "$cgdir"
            start_target "$t" "$n" valgrind --tool=callgrind --trace-children=yes --dump-instr=no \
                --collect-jumps=no --callgrind-out-file="$cgdir/callgrind.out.%p"
            [ "$t" = nginx ] || t=moongate
            w=$(children_of "$(master_of "$t")" | head -1)
            url=$(target_url "$t")
            say "callgrind: $t, $wl$([ "$t" = nginx ] || echo ", $n deployment(s)"): warm-up $CG_WARMUP requests, worker pid $w"
            run_wrk_count "$url" "$TMP/body-$wl.json" "$CG_WARMUP" "$cgdir/warm.json" "$CG_CONNS" 600
            wait_for 60 "requests in flight to finish" test "$(mock_stat in_progress)" = 0
            sleep 0.5
            cg_ctl -z "$w" "$(poke_url "$t")" "$cgdir/zero.log"
            r0=$(mock_stat requests)
            say "callgrind: measuring $CG_REQUESTS requests"
            run_wrk_count "$url" "$TMP/body-$wl.json" "$CG_REQUESTS" "$cgdir/run.json" "$CG_CONNS" 1800
            wait_for 60 "requests in flight to finish" test "$(mock_stat in_progress)" = 0
            sleep 0.5
            r1=$(mock_stat requests)
            cg_ctl -d "$w" "$(poke_url "$t")" "$cgdir/dump.log"
            # the dump is callgrind.out.<pid>.<n>
            wait_for 60 "the callgrind dump" compgen -G "$cgdir/callgrind.out.$w.*"
            sleep 0.5
            dump=$(ls -t "$cgdir"/callgrind.out."$w".* | head -1)
            ir=$(awk '/^summary:/ { print $2; exit }' "$dump")
            reqs=$((r1 - r0))
            # timer-driven work (moongate's worker publishes its state every 250 ms, polls the
            # registry): under callgrind a request is ~30x slower, so that work would weigh ~30x
            # more per request than at full speed; reported apart
            periodic=$({ callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" 2>/dev/null || true; } |
                awk '/[:]mg_wk_state_tick \[|[:]mg_wk_poll \[/ { v = $1; gsub(",", "", v); s += v } END { printf "%d", s }')
            cg_self "$dump" "$ir" >"$cgdir/self.txt" || true
            { callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" 2>/dev/null || true; } |
                sed -n '/file:function/,$p' | sed '1,2d' | head -80 >"$cgdir/inclusive.txt" || true
            printf '{"kind":"callgrind","target":"%s","workload":"%s","deployments":%s,"requests":%s,"ir":%s,"ir_periodic":%s,"wrk":%s,"dump":"%s"}\n' \
                "$t" "$wl" "$n" "$reqs" "$ir" "$periodic" "$(cat "$cgdir/run.json")" "$dump" >>"$RESULTS"
            say "callgrind: $t, $wl: $ir Ir / $reqs requests = $(awk -v i="$ir" -v r="$reqs" 'BEGIN{printf "%.0f", i/r}') Ir/request ($(awk -v i="$((ir - periodic))" -v r="$reqs" 'BEGIN{printf "%.0f", i/r}') without timer-driven work)"
            echo
            echo "=== callgrind, $t worker, workload $wl$([ "$t" = nginx ] || echo ", $n deployment(s)"): top functions, self (Ir over $reqs requests) ==="
            head -30 "$cgdir/self.txt" || true
            echo "--- inclusive ---"
            { grep -v -E '\?\?\?:0x|below main|libc-start|mg_main|mg_master_|:main |event_base_(loop|dispatch)|mg_worker_run|ngx_(master|worker)_process_cycle|ngx_spawn_process|ngx_start_worker|ngx_single|:main\b' "$cgdir/inclusive.txt" || true; } | head -30 || true
            stop_target "$t"
        done
    done
    KEEP_CG=$KEEP
    finish_report
    [ "$KEEP_CG" = 1 ] || say "(use --keep to keep the callgrind.out files for callgrind_annotate/kcachegrind)"
    exit 0
fi
