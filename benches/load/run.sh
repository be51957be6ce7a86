#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup and start_* run from a trap and as "start_$name"
# Load comparison: dyegate vs a bare Pingora proxy vs nginx vs HAProxy vs Caddy, one machine, one
# command.
#
# One nginx upstream (ports "stable" and "canary") sits behind each proxy in turn; wrk drives each
# proxy with the same load; the proxy's own CPU time comes from /proc. The rotation repeats ROUNDS
# times, interleaved, and the medians are printed. See benches/load/README.md for how to read it.
#
#   benches/load/run.sh                               # defaults: ROUNDS=3, -t2 -c64 -d10s
#   ROUNDS=1 DURATION=3s WARMUP=1s benches/load/run.sh  # smoke run
#   PROXIES="bare nginx" TAGGED=1 benches/load/run.sh
#   PROXIES="dyegate dyegate-log bare" ROUNDS=5 benches/load/run.sh  # what the access log costs
#
# Settings (environment):
#   ROUNDS=3            rotations of all proxies (interleaved, medians reported)
#   PROXIES="dyegate bare nginx haproxy caddy"   which proxies, in rotation order; also known:
#                       dyegate-log (dyegate with the JSON access log on, to a file),
#                       bare-same (the bare proxy built as dyegate is: mimalloc, no default
#                       downstream modules; the fair floor for "dyegate >= 0.97x bare")
#   WRK_THREADS=2 WRK_CONNS=64 DURATION=10s WARMUP=3s   the same wrk load for every proxy
#   PROXY_THREADS=2     worker threads (Pingora, HAProxy) / worker processes (nginx) /
#                       GOMAXPROCS (Caddy)
#   SCENARIOS="c64 c256 c1024 close p99half"   client scenarios, each a pass per proxy and round:
#                       c64 = WRK_CONNS keep-alive connections, c256 / c1024 = 256 / 1024 of
#                       them, close = WRK_CONNS connections sending `Connection: close` (a new
#                       TCP connection per request), p99half = open loop (a fixed rate, latency
#                       counted from when each request was due) at P99_LOAD of the proxy's own
#                       c64 req/s in the same round, over WRK_CONNS connections
#   P99_LOAD=0.5        p99half's rate as a fraction of the proxy's own c64 req/s of this round
#                       (without a c64 pass before p99half, an unrecorded wrk run measures it)
#   P99_RATE=auto       a number instead: that fixed rate for every proxy and round
#   P99_TOOL=open-loop  the open-loop generator: open-loop (benches/load/open_loop.rs, built by
#                       this script with rustc into $CARGO_TARGET_DIR/tools) or oha (OHA_BIN,
#                       cargo install --locked oha@OHA_VERSION when missing: ~30 min here)
#   TAGGED=0            1: also a pass (c64) with every request carrying `x-env-tag: canary`
#   dyegate+NAME        a dyegate variant in PROXIES: binary DYEGATE_BIN_NAME (default: the
#                       release build), lines DYEGATE_EXTRA_NAME appended to its gateway.yaml,
#                       DYEGATE_PINGORA_NAME="k: v, ..." keys added to its `pingora:` map;
#                       compares builds or settings side by side in one run
#   DYEGATE_MIRROR_NAME="PERCENT TARGET"   the variant's route mirrors PERCENT of its requests
#                       to TARGET: `canary` (the upstream nginx's canary port, answering) or
#                       `hang` (a listener that accepts and never answers; max_in_flight 256,
#                       timeout_ms 2000): what shadow traffic costs the real path, e.g.
#                       PROXIES="dyegate dyegate+m10 dyegate+m100 dyegate+hang"
#                       DYEGATE_MIRROR_m10="10 canary" DYEGATE_MIRROR_m100="100 canary"
#                       DYEGATE_MIRROR_hang="100 hang" SCENARIOS="c64 p99half"
#                       (the telemetry TSV gets each dyegate's peak RSS and the copies counted)
#   DYEGATE_TRACING="tracing: { sample_ratio: 0.01 }"   dyegate's tracing line ("" = none)
#   DYEGATE_BIN, BARE_BIN, BARE_SAME_BIN   the binaries (default: $CARGO_TARGET_DIR or
#                       target/, release)
#   DYEGATE_GATEWAY_EXTRA=""   extra lines appended verbatim to dyegate's gateway.yaml
#                              (access log, metrics, ...), e.g. $'access_log:\n  path: /dev/null'
#   PROXY_RUST_LOG=error       RUST_LOG for dyegate and bare-proxy
#   SKIP_INSTALL=0 SKIP_BUILD=0   skip apt-get / cargo (for repeated runs)
#   KEEP_WORK=0         1: keep the temp dir (configs, logs, raw wrk output) after a clean run
#   PERF=0              1: after dyegate's measured runs, one more wrk run (PERF_DURATION=5s)
#                       under `perf record`: the share of its CPU samples in metrics and access log
#   QUIET_WAIT=0        before each measured run, wait up to this many seconds for the box to be
#   QUIET_MAX_BUSY=20   at most this % busy (other people's builds...); 0 = don't wait
#   RESULTS_DIR=benches/load/results
#   SUMMARIZE=FILE.tsv  only print the table of a past run's rows again (PROXIES, SCENARIOS as then)

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=${ROUNDS:-3}
PROXIES=${PROXIES:-"dyegate bare nginx haproxy caddy"}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
PROXY_THREADS=${PROXY_THREADS:-2}
TAGGED=${TAGGED:-0}
SCENARIOS=${SCENARIOS:-"c64 c256 c1024 close p99half"}
DYEGATE_TRACING=${DYEGATE_TRACING-"tracing: { sample_ratio: 0.01 }"}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DYEGATE_BIN=${DYEGATE_BIN:-$TARGET_DIR/release/dyegate}
BARE_BIN=${BARE_BIN:-$TARGET_DIR/release/bare-proxy}
BARE_SAME_BIN=${BARE_SAME_BIN:-$TARGET_DIR/release/bare-proxy-same}
OHA_VERSION=${OHA_VERSION:-1.16.0}
OHA_BIN=${OHA_BIN:-$TARGET_DIR/tools/bin/oha}
P99_RATE=${P99_RATE:-auto}
P99_LOAD=${P99_LOAD:-0.5}
P99_TOOL=${P99_TOOL:-open-loop}
OPEN_LOOP_BIN=${OPEN_LOOP_BIN:-$TARGET_DIR/tools/open-loop}
DYEGATE_GATEWAY_EXTRA=${DYEGATE_GATEWAY_EXTRA:-}
PROXY_RUST_LOG=${PROXY_RUST_LOG:-error}
SKIP_INSTALL=${SKIP_INSTALL:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP_WORK=${KEEP_WORK:-0}
QUIET_WAIT=${QUIET_WAIT:-0}
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-20}
PERF=${PERF:-0}
PERF_DURATION=${PERF_DURATION:-5s}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/benches/load/results}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-load.XXXXXX")
RESULTS_TSV=$RESULTS_DIR/$STAMP.tsv
RESULTS_TXT=$RESULTS_DIR/$STAMP.txt
TELEMETRY_TSV=$RESULTS_DIR/$STAMP.telemetry.tsv
PROFILE_TSV=$RESULTS_DIR/$STAMP.profile.tsv
CLK_TCK=$(getconf CLK_TCK)

STARTED_PIDS=()   # every long-lived process we started; cleanup() ends them all
declare -A STOP_SIGNAL=() # pid -> the signal that stops it at once
ALLOCATED_PORTS=()
LAST_PID=
PORT=
CHILD_TICKS=0
EXIT_REASON=
PROXY_DOWN=
UPSTREAM_PID=
PROXY_PID=
FAILED=1          # cleared at the very end; a failed run keeps $WORK for its logs

log() { printf '[load] %s\n' "$*" >&2; }
die() {
    printf '[load] FAIL: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

# Running, as opposed to gone or a zombie (exited, not yet reaped: kill -0 still succeeds).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]]
}

# EXIT_REASON="exit status N" or "killed by SIGNAME" for a child that has exited (reaps it).
# Call it plainly, not as $(...): a subshell cannot wait for this shell's children.
exit_reason() {
    local status=0
    wait "$1" 2>/dev/null || status=$?
    if ((status > 128)); then
        EXIT_REASON="killed by SIG$(kill -l $((status - 128)))"
    else
        EXIT_REASON="exit status $status"
    fi
}

# The pid and all its descendants (nginx's master and workers, say).
tree_pids() {
    local pid=$1 child
    [[ -d /proc/$pid ]] || return 0
    echo "$pid"
    for child in $(pgrep -P "$pid" || true); do
        tree_pids "$child"
    done
}

# Start a long-lived process in the background with its output in a log; sets LAST_PID.
# SIGNAL is what stops it at once: INT for Pingora (TERM is its graceful drain, minutes long),
# TERM for nginx and HAProxy (background jobs of a script start with SIGINT ignored, and HAProxy
# keeps it that way).
start_bg() {
    local signal=$1 logfile=$2
    shift 2
    "$@" >"$logfile" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
    STOP_SIGNAL[$LAST_PID]=$signal
}

# The process's stop-now signal, then SIGKILL for the whole tree if it is still there after 5 s.
stop_tree() {
    local pid=$1 pids i
    pids=$(tree_pids "$pid")
    [[ -n $pids ]] || return 0
    kill -"${STOP_SIGNAL[$pid]:-TERM}" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && log "pid $pid ignored SIG${STOP_SIGNAL[$pid]:-TERM} for 5 s: SIGKILL"
    # shellcheck disable=SC2086 # word splitting of the pid list is wanted
    kill -KILL $pids 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local pid=$1 kept=() p
    for p in "${STARTED_PIDS[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    STARTED_PIDS=("${kept[@]}")
}

cleanup() {
    local status=$? pid
    trap - EXIT INT TERM
    for pid in "${STARTED_PIDS[@]}"; do
        stop_tree "$pid"
    done
    if ((FAILED)); then
        log "stopped all processes; configs and logs kept in $WORK"
    elif ((KEEP_WORK)); then
        log "configs and logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Setup: packages, binaries, ports
# ---------------------------------------------------------------------------------------------

install_tools() {
    local -A pkg_of=([nginx]=nginx [haproxy]=haproxy [wrk]=wrk [cmake]=cmake [curl]=curl
        [ss]=iproute2 [pgrep]=procps)
    ((PERF == 0)) || pkg_of[perf]=linux-perf
    ! wants caddy || pkg_of[caddy]=caddy
    local missing=() cmd
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
    done
    ((${#missing[@]})) || return 0
    ((SKIP_INSTALL == 0)) || die "missing ${missing[*]} and SKIP_INSTALL=1"
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: run as root or install them"
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wants() { [[ " $PROXIES " == *" $1 "* ]]; }

# c1024 holds 1024 client connections open at once, and a proxy as many upstream ones: wrk, the
# proxy and the upstream (all started from here, so they inherit it) each need more descriptors
# than the common soft limit of 1024. Raise the soft limit to the hard one (at most 65536), say so,
# and refuse c1024 when even that is too low.
raise_fd_limit() {
    local soft hard want=65536 need=4096
    soft=$(ulimit -Sn)
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want
    ((hard < want)) && want=$hard
    if [[ $soft != unlimited ]] && ((soft < want)); then
        ulimit -Sn "$want" ||
            die "cannot raise the open-files limit (ulimit -n) from $soft to $want"
        log "open-files limit (ulimit -n) raised from $soft to $want for wrk, the proxies and" \
            "the upstream"
    fi
    if [[ " $SCENARIOS " == *" c1024 "* ]] && [[ $(ulimit -Sn) != unlimited ]] &&
        (($(ulimit -Sn) < need)); then
        die "c1024 needs an open-files limit of at least $need" \
            "(ulimit -n is $(ulimit -Sn), hard $hard)"
    fi
}

start_proxy() {
    if [[ $1 == dyegate+* ]]; then
        start_variant "$1"
    else
        "start_$1"
    fi
}

build() {
    ((SKIP_BUILD == 0)) || return 0
    cd "$ROOT"
    if wants dyegate || wants dyegate-log || [[ " $PROXIES" == *" dyegate+"* ]]; then
        log "cargo build --release -p dyegate --bin dyegate"
        cargo build --release -p dyegate --bin dyegate
    fi
    if wants bare; then
        log "cargo build --release -p dyegate-suite --bin bare-proxy"
        cargo build --release -p dyegate-suite --bin bare-proxy
    fi
    if wants bare-same; then
        log "cargo build --release -p dyegate-suite --bin bare-proxy-same"
        cargo build --release -p dyegate-suite --bin bare-proxy-same
    fi
}

# The open-loop generator of the p99half scenario. open-loop: benches/load/open_loop.rs (standard
# library only), built with rustc into $TARGET_DIR/tools when missing or older than its source
# (seconds). oha: from crates.io, built once into $TARGET_DIR/tools (~30 minutes here).
install_p99_tool() {
    [[ " $SCENARIOS " == *" p99half "* ]] || return 0
    case $P99_TOOL in
        open-loop)
            local src=$ROOT/benches/load/open_loop.rs
            [[ -x $OPEN_LOOP_BIN && $OPEN_LOOP_BIN -nt $src ]] && return 0
            mkdir -p "$(dirname "$OPEN_LOOP_BIN")"
            log "rustc -O $src -o $OPEN_LOOP_BIN"
            rustc --edition 2021 -O -o "$OPEN_LOOP_BIN" "$src" || die "cannot build $src"
            return 0
            ;;
        oha) ;;
        *) die "unknown P99_TOOL '$P99_TOOL' (known: open-loop oha)" ;;
    esac
    [[ -x $OHA_BIN ]] && return 0
    ((SKIP_INSTALL == 0)) || die "no oha at $OHA_BIN and SKIP_INSTALL=1"
    log "cargo install --locked oha@$OHA_VERSION --root $TARGET_DIR/tools"
    cargo install --locked "oha@$OHA_VERSION" --root "$TARGET_DIR/tools" ||
        die "cargo install oha failed"
    OHA_BIN=$TARGET_DIR/tools/bin/oha
}

# A free loopback port, below the kernel's ephemeral range so that no outgoing connection (wrk's,
# a proxy's) can take it between now and the moment a server binds it. Sets PORT.
alloc_port() {
    local lo p tries
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    ((lo > 12000)) || lo=30000 # odd range: fall back to a fixed window
    for ((tries = 0; tries < 500; tries++)); do
        p=$((10000 + RANDOM % (lo - 10000)))
        [[ " ${ALLOCATED_PORTS[*]} " == *" $p "* ]] && continue
        if [[ -z $(ss -Htan "( sport = :$p )") ]]; then
            ALLOCATED_PORTS+=("$p")
            PORT=$p
            return 0
        fi
    done
    die "no free port found below $lo"
}

# Poll (deadline, not a fixed sleep) until URL answers; fail with the log tail if PID dies.
wait_http() {
    local name=$1 url=$2 pid=$3 logfile=$4 deadline=$((SECONDS + 15))
    until curl -s -o /dev/null --max-time 1 "$url"; do
        if ! alive "$pid"; then
            tail -n 30 "$logfile" >&2 || true
            exit_reason "$pid"
            die "$name exited during startup, $EXIT_REASON (log: $logfile)"
        fi
        ((SECONDS < deadline)) || die "$name not answering $url after 15 s (log: $logfile)"
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------------------------
# The upstream: one nginx, two ports, one worker
# ---------------------------------------------------------------------------------------------

start_upstream() {
    local dir=$WORK/upstream
    mkdir -p "$dir"
    # keepalive_requests is raised so that no proxy's upstream connections are recycled every
    # 1000 requests (nginx's default): we want to measure keep-alive, not reconnects.
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$STABLE_PORT;
        location / { add_header x-upstream stable always; return 200 "stable\n"; }
    }
    server {
        listen 127.0.0.1:$CANARY_PORT;
        location / { add_header x-upstream canary always; return 200 "canary\n"; }
    }
    server {
        listen 127.0.0.1:$UPSTREAM_STATUS_PORT;
        location / { stub_status; }
    }
}
EOF
    start_bg TERM "$dir/stdout.log" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
    UPSTREAM_PID=$LAST_PID
    wait_http upstream "http://127.0.0.1:$STABLE_PORT/" "$UPSTREAM_PID" "$dir/error.log"
    wait_http upstream "http://127.0.0.1:$CANARY_PORT/" "$UPSTREAM_PID" "$dir/error.log"
}

# Connections the upstream has accepted so far (stub_status "accepts"), the request included.
upstream_accepts() {
    curl -s --max-time 2 "http://127.0.0.1:$UPSTREAM_STATUS_PORT/" | awk 'NR == 3 { print $1 }'
}

# ---------------------------------------------------------------------------------------------
# The proxies under test. Each start_* writes its config under $WORK/<name>, starts the proxy on
# $PROXY_PORT, waits for it, and sets PROXY_PID and PROXY_LOG.
# Routing everywhere: `x-env-tag: canary` -> canary port, anything else -> stable port.
# ---------------------------------------------------------------------------------------------

# dyegate as the load comparison runs it. NAME is its work dir; EXTRA, lines for gateway.yaml
# (after DYEGATE_GATEWAY_EXTRA). Sets DYEGATE_DIR and DYEGATE_ADMIN_PORT too.
start_dyegate_as() {
    local name=$1 extra=$2 bin=${3:-$DYEGATE_BIN} pingora=${4:-} mirror=${5:-}
    # pingora: keys of a variant go in the one `pingora:` map; threads from PROXY_THREADS unless
    # the variant sets them.
    [[ -z $pingora ]] || pingora+=","
    [[ $pingora == *threads:* ]] || pingora="threads: $PROXY_THREADS, $pingora"
    local dir=$WORK/$name
    rm -rf "$dir"
    mkdir -p "$dir/state"
    alloc_port
    local admin_port=$PORT
    DYEGATE_DIR=$dir
    DYEGATE_ADMIN_PORT=$admin_port
    cat >"$dir/gateway.yaml" <<EOF
listen: ["127.0.0.1:$PROXY_PORT"]
admin: { listen: "127.0.0.1:$admin_port" }
routes: routes.yaml
state_dir: $dir/state
pingora: { $pingora pid_file: $dir/d.pid, upgrade_sock: $dir/d.sock }
EOF
    # Every feature on: routing + split (routes.yaml), metrics (always on), trace propagation
    # with 1% of new traces sampled (DYEGATE_TRACING; no endpoint: nothing is exported).
    [[ -z $DYEGATE_TRACING ]] || printf '%s\n' "$DYEGATE_TRACING" >>"$dir/gateway.yaml"
    # Hook for the options that come later (access log, metrics, ...).
    if [[ -n $DYEGATE_GATEWAY_EXTRA ]]; then
        printf '%s\n' "$DYEGATE_GATEWAY_EXTRA" >>"$dir/gateway.yaml"
    fi
    if [[ -n $extra ]]; then
        printf '%s\n' "$extra" >>"$dir/gateway.yaml"
    fi
    cat >"$dir/routes.yaml" <<EOF
upstreams:
  stable: { targets: ["127.0.0.1:$STABLE_PORT"] }
  canary: { targets: ["127.0.0.1:$CANARY_PORT"] }
routes:
  - name: app
    dye: { tags: { canary: canary } }
    split: [ { upstream: stable, weight: 100 } ]
EOF
    if [[ -n $mirror ]]; then
        local percent target
        read -r percent target <<<"$mirror"
        case $target in
            canary) target="127.0.0.1:$CANARY_PORT" ;;
            hang) start_hang && target="127.0.0.1:$HANG_PORT" ;;
            *) die "$name: DYEGATE_MIRROR target '$target' (known: canary hang)" ;;
        esac
        cat >>"$dir/routes.yaml" <<EOF
    mirror: [ { upstream: shadow, percent: $percent } ]
EOF
        sed -i "s|^upstreams:|upstreams:\n  shadow: { targets: [\"$target\"] }|" "$dir/routes.yaml"
    fi
    PROXY_LOG=$dir/dyegate.log
    start_bg INT "$PROXY_LOG" env RUST_LOG="$PROXY_RUST_LOG" \
        "$bin" run -c "$dir/gateway.yaml"
    PROXY_PID=$LAST_PID
    wait_http "$name" "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" "$PROXY_LOG"
}

start_dyegate() { start_dyegate_as dyegate ""; }

# dyegate+NAME: binary DYEGATE_BIN_NAME, extra gateway.yaml lines DYEGATE_EXTRA_NAME.
start_variant() {
    local name=$1 suffix=${1#dyegate+} bin_var extra_var pingora_var mirror_var
    bin_var=DYEGATE_BIN_$suffix
    extra_var=DYEGATE_EXTRA_$suffix
    pingora_var=DYEGATE_PINGORA_$suffix
    mirror_var=DYEGATE_MIRROR_$suffix
    [[ -x ${!bin_var:-$DYEGATE_BIN} ]] || die "$name: no binary at ${!bin_var:-$DYEGATE_BIN}"
    start_dyegate_as "$name" "${!extra_var:-}" "${!bin_var:-$DYEGATE_BIN}" "${!pingora_var:-}" \
        "${!mirror_var:-}"
}

# A shadow that hangs: accepts connections and reads, never answers (one for the whole run).
# Sets HANG_PORT.
HANG_PORT=
start_hang() {
    [[ -z $HANG_PORT ]] || return 0
    alloc_port
    HANG_PORT=$PORT
    start_bg TERM "$WORK/hang.log" python3 -c '
import selectors, socket, sys
sel = selectors.DefaultSelector()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(4096)
sel.register(srv, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is srv:
            conn, _ = srv.accept()
            sel.register(conn, selectors.EVENT_READ)
        elif not key.fileobj.recv(65536):
            sel.unregister(key.fileobj)
            key.fileobj.close()
' "$HANG_PORT"
    local tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$HANG_PORT") 2>/dev/null; do
        ((++tries < 100)) || die "the hanging shadow did not listen on $HANG_PORT"
        sleep 0.05
    done
}

# The same with the JSON access log on, written to a file (what the access log costs).
start_dyegate-log() {
    start_dyegate_as dyegate-log "access_log: { path: $WORK/dyegate-log/access.log }"
}

# PERF=1: one more wrk run, untagged, not measured, with `perf record` sampling the dyegate
# process (999 Hz, every thread, user and kernel). The shares of its samples, by symbol (self
# time, so callees such as malloc are not included):
#   metrics     dyegate::telemetry::metrics::* (TableMetrics::request: counters and histogram)
#   log_req     the access log's request side: access_record, AccessLog::log, the RFC 3339 clock
#   log_writer  every sample of the access-log writer thread (JSON encoding, write(2))
#   hook        the logging hook's own body
# Appends a row to the profile TSV and says it.
profile_dyegate() {
    local round=$1 name=$2
    local data=$WORK/perf-r$round-$name.data out=$WORK/wrk-r$round-$name-perf.txt
    local perf_pid shares
    perf record -q -F 999 -e cpu-clock -p "$PROXY_PID" -o "$data" -- sleep "$PERF_DURATION" \
        >"$WORK/perf-r$round-$name.log" 2>&1 &
    perf_pid=$!
    wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$PERF_DURATION" "http://127.0.0.1:$PROXY_PORT/" \
        >"$out" 2>&1 || log "WARNING: $name: wrk under perf failed: $(head -c 300 "$out")"
    wait "$perf_pid" || die "$name: perf record failed: $(cat "$WORK/perf-r$round-$name.log")"
    shares=$(perf report -i "$data" --no-children --sort comm,sym -q --stdio --percent-limit 0 \
        2>/dev/null | awk '
            { pct = $1; sub(/%$/, "", pct); pct += 0; total += pct }
            $2 == "access-log" { writer += pct; next }
            /dyegate::telemetry::metrics::/ { metrics += pct }
            /access_record|AccessLog::log|now_rfc3339|humantime::/ { logreq += pct }
            /ProxyHttp>::logging/ { hook += pct }
            END { printf "%.2f %.2f %.2f %.2f %.1f\n", metrics, logreq, writer, hook, total }')
    local metrics logreq writer hook total
    read -r metrics logreq writer hook total <<<"$shares"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$metrics" "$logreq" "$writer" \
        "$hook" "$total" >>"$PROFILE_TSV"
    log "round $round $name under perf: metrics ${metrics}% of its CPU samples, access log" \
        "${logreq}% on the request path + ${writer}% writer thread, logging hook body ${hook}%"
    rm -f "$data"
}

# After a dyegate run: what its metrics counted, and (access log on) the lines it wrote and
# dropped. Every request that metrics counted must be a line or a counted drop; drops mean the
# writer fell behind and the run understates the log's cost, so they are warned about.
# Appends a row to the telemetry TSV.
dyegate_telemetry() {
    local round=$1 name=$2 log=$DYEGATE_DIR/access.log deadline=$((SECONDS + 10))
    local scrape counted dropped lines=- bytes=-
    while :; do
        scrape=$(curl -s --max-time 3 "http://127.0.0.1:$DYEGATE_ADMIN_PORT/metrics") ||
            die "$name: GET /metrics failed"
        read -r counted dropped < <(awk '
            /^dyegate_requests_total[{ ]/ { n += $NF }
            /^dyegate_access_log_dropped_total / { d = $NF }
            END { printf "%d %d\n", n, d }' <<<"$scrape")
        [[ -f $log ]] || break
        # The writer flushes when idle for 200 ms: poll until every counted request is there.
        lines=$(wc -l <"$log")
        ((lines + dropped >= counted || SECONDS >= deadline)) && break
        sleep 0.2
    done
    [[ -f $log ]] && bytes=$(stat -c %s "$log")
    # Peak RSS of the gateway over its passes, and its mirrored copies by outcome.
    local rss copies
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PROXY_PID/status" 2>/dev/null || echo -)
    copies=$(awk '/^dyegate_mirror_requests_total[{]/ {
            match($0, /outcome="[a-z_]+"/); o = substr($0, RSTART + 9, RLENGTH - 10); n[o] += $NF }
        END { s = ""; for (o in n) s = s (s == "" ? "" : ",") o "=" n[o]; print (s == "" ? "-" : s) }' \
        <<<"$scrape")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$counted" "$lines" "$dropped" \
        "$bytes" "$rss" "$copies" >>"$TELEMETRY_TSV"
    if [[ -f $log ]]; then
        log "round $round $name: metrics counted $counted requests; access log $lines lines" \
            "($((bytes / 1024 / 1024)) MiB), $dropped dropped"
        ((dropped == 0)) || log "WARNING: $name dropped $dropped access log lines (writer behind)"
        ((lines + dropped == counted)) ||
            log "WARNING: $name: $lines lines + $dropped dropped != $counted requests counted"
    else
        log "round $round $name: metrics counted $counted requests"
    fi
    log "round $round $name: peak RSS $rss KiB; mirrored copies: $copies"
}

start_bare() {
    local dir=$WORK/bare
    rm -rf "$dir"
    mkdir -p "$dir"
    PROXY_LOG=$dir/bare-proxy.log
    start_bg INT "$PROXY_LOG" env RUST_LOG="$PROXY_RUST_LOG" \
        "$BARE_BIN" --listen "127.0.0.1:$PROXY_PORT" \
        --upstream "127.0.0.1:$STABLE_PORT" --threads "$PROXY_THREADS" --run-dir "$dir"
    PROXY_PID=$LAST_PID
    wait_http bare-proxy "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" "$PROXY_LOG"
}

# The bare proxy built as dyegate is (benches/bare_proxy_same.rs).
start_bare-same() {
    local dir=$WORK/bare-same
    rm -rf "$dir"
    mkdir -p "$dir"
    PROXY_LOG=$dir/bare-proxy-same.log
    start_bg INT "$PROXY_LOG" env RUST_LOG="$PROXY_RUST_LOG" \
        "$BARE_SAME_BIN" --listen "127.0.0.1:$PROXY_PORT" \
        --upstream "127.0.0.1:$STABLE_PORT" --threads "$PROXY_THREADS" --run-dir "$dir"
    PROXY_PID=$LAST_PID
    wait_http bare-proxy-same "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" "$PROXY_LOG"
}

start_nginx() {
    local dir=$WORK/nginx
    rm -rf "$dir"
    mkdir -p "$dir"
    # proxy_pass with a variable naming an `upstream` block uses that block (and its keepalive
    # pool). keepalive_requests raised on both sides, as on the upstream.
    cat >"$dir/nginx.conf" <<EOF
worker_processes $PROXY_THREADS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream stable {
        server 127.0.0.1:$STABLE_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    upstream canary {
        server 127.0.0.1:$CANARY_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    map \$http_x_env_tag \$backend {
        default stable;
        canary  canary;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://\$backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    PROXY_LOG=$dir/error.log
    start_bg TERM "$dir/stdout.log" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
    PROXY_PID=$LAST_PID
    wait_http nginx "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" "$PROXY_LOG"
}

start_haproxy() {
    local dir=$WORK/haproxy
    rm -rf "$dir"
    mkdir -p "$dir"
    # No `log` line anywhere: HAProxy logs nothing. Keep-alive is HAProxy's default mode;
    # `http-reuse always` shares idle upstream connections between client connections.
    # maxconn 8192: HAProxy closes idle upstream connections instead of keeping them once a
    # quarter of its descriptors (about 2 x maxconn) are in use (tune.pool-high-fd-ratio), which
    # with maxconn 4096 happened at c1024 and made it reconnect for almost every request.
    cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread $PROXY_THREADS
    maxconn 8192

defaults
    mode http
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe
    bind 127.0.0.1:$PROXY_PORT
    use_backend canary if { req.hdr(x-env-tag) -m str canary }
    default_backend stable

backend stable
    server s1 127.0.0.1:$STABLE_PORT

backend canary
    server c1 127.0.0.1:$CANARY_PORT
EOF
    PROXY_LOG=$dir/haproxy.log
    haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy rejects $dir/haproxy.cfg"
    start_bg TERM "$PROXY_LOG" haproxy -db -f "$dir/haproxy.cfg"
    PROXY_PID=$LAST_PID
    wait_http haproxy "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" "$PROXY_LOG"
}

# Caddy (Debian's caddy package), GOMAXPROCS = PROXY_THREADS like the others' workers. The tag
# goes to canary through a `header` matcher, everything else to stable; keep-alive as nginx's:
# 128 idle upstream connections kept per upstream (Caddy's default is 32), idle timeouts 300 s
# on both sides, no per-connection request limit (Go has none). Admin endpoint off, no automatic
# HTTPS (a plain http:// site), no access log (Caddy logs none unless told), its own log at ERROR;
# HOME and XDG dirs in the work dir so it writes nothing outside it.
start_caddy() {
    local dir=$WORK/caddy upstream_opts
    rm -rf "$dir"
    mkdir -p "$dir"
    upstream_opts="transport http {
				keepalive 300s
				keepalive_idle_conns 256
				keepalive_idle_conns_per_host 128
			}"
    cat >"$dir/Caddyfile" <<EOF
{
	admin off
	auto_https off
	grace_period 1s
	log {
		level ERROR
	}
	servers {
		timeouts {
			idle 300s
		}
	}
}

http://127.0.0.1:$PROXY_PORT {
	@canary header X-Env-Tag canary
	handle @canary {
		reverse_proxy 127.0.0.1:$CANARY_PORT {
			$upstream_opts
		}
	}
	handle {
		reverse_proxy 127.0.0.1:$STABLE_PORT {
			$upstream_opts
		}
	}
}
EOF
    local caddy_env=(env HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config"
        GOMAXPROCS="$PROXY_THREADS")
    "${caddy_env[@]}" caddy validate --config "$dir/Caddyfile" --adapter caddyfile \
        >"$dir/validate.log" 2>&1 ||
        die "caddy rejects $dir/Caddyfile: $(tail -n 3 "$dir/validate.log")"
    PROXY_LOG=$dir/caddy.log
    start_bg TERM "$PROXY_LOG" "${caddy_env[@]}" caddy run --config "$dir/Caddyfile" \
        --adapter caddyfile
    PROXY_PID=$LAST_PID
    wait_http caddy "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" "$PROXY_LOG"
}

# One curl per lane, before any load: a proxy that routes wrong fails the run.
verify_routing() {
    local name=$1 url="http://127.0.0.1:$PROXY_PORT/" got want_tagged=canary
    # bare-proxy has no routing by design: everything goes to stable.
    [[ $name == bare* ]] && want_tagged=stable
    got=$(curl -sS --max-time 3 -w ' %{http_code}' "$url") || die "$name: curl $url failed"
    [[ $got == "stable"$'\n'" 200" ]] ||
        die "$name: untagged request should reach stable, got: ${got@Q}"
    got=$(curl -sS --max-time 3 -w ' %{http_code}' -H 'x-env-tag: canary' "$url") ||
        die "$name: curl -H 'x-env-tag: canary' $url failed"
    [[ $got == "$want_tagged"$'\n'" 200" ]] ||
        die "$name: request tagged canary should reach $want_tagged, got: ${got@Q}"
}

# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------

# "utime stime" in clock ticks, summed over the given pids (threads are included per process).
cpu_ticks() {
    local user=0 sys=0 pid stat fields
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # Fields after "(comm) ": state is index 0, utime index 11, stime index 12.
        read -ra fields <<<"${stat##*) }"
        user=$((user + fields[11]))
        sys=$((sys + fields[12]))
    done
    echo "$user $sys"
}

# Busy ticks of the whole box from /proc/stat (user nice system irq softirq steal), all CPUs.
box_ticks() {
    local _cpu user nice system irq softirq steal
    read -r _cpu user nice system _ _ irq softirq steal _ </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}

# CPU ticks (user + sys) of this shell's finished children (wrk, once waited for), into
# CHILD_TICKS. Call it plainly, never as $(children_ticks): `times` in a subshell sees only the
# subshell's own children.
children_ticks() {
    times >"$WORK/times"
    CHILD_TICKS=$(awk -v tck="$CLK_TCK" '
        function s(v,  m) { m = v; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", v); return m * 60 + v }
        NR == 2 { printf "%d\n", (s($1) + s($2)) * tck }' "$WORK/times")
}

# With QUIET_WAIT > 0: wait (up to QUIET_WAIT s) until the box, with our servers idle, is at most
# QUIET_MAX_BUSY % busy over one second, so that a neighbour's build doesn't land in a run.
wait_quiet() {
    ((QUIET_WAIT > 0)) || return 0
    local deadline=$((SECONDS + QUIET_WAIT)) b0 b1 busy ncpu
    ncpu=$(nproc)
    while :; do
        b0=$(box_ticks)
        sleep 1
        b1=$(box_ticks)
        busy=$(((b1 - b0) * 100 / (CLK_TCK * ncpu)))
        ((busy > QUIET_MAX_BUSY)) || return 0
        if ((SECONDS >= deadline)); then
            log "box still ${busy}% busy after ${QUIET_WAIT}s of waiting: measuring anyway"
            return 0
        fi
    done
}

# wrk's human output -> "requests duration_us rps avg_us p50_us p75_us p90_us p99_us errors".
# Latencies come as 512.00us, 1.23ms, 2.00s (or m/h); errors = non-2xx/3xx + socket errors.
parse_wrk() {
    awk '
        function us(v,   n, u) {
            n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n
            if (u == "ms") return n * 1000
            if (u == "s")  return n * 1000000
            if (u == "m")  return n * 60000000
            if (u == "h")  return n * 3600000000
            return -1
        }
        $1 == "Latency" && $2 ~ /^[0-9]/ { avg = us($2) }
        $1 == "50%" { p50 = us($2) }
        $1 == "75%" { p75 = us($2) }
        $1 == "90%" { p90 = us($2) }
        $1 == "99%" { p99 = us($2) }
        / requests in / { req = $1; d = $4; sub(/,$/, "", d); dur = us(d) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        END {
            if (req == "" || rps == "" || p50 == "" || p99 == "" || p50 < 0 || p99 < 0) exit 1
            printf "%d %d %.2f %.1f %.1f %.1f %.1f %.1f %d\n",
                req, dur, rps, avg, p50, p75, p90, p99, err
        }' "$1"
}

# oha's JSON summary as parse_wrk's line: requests, duration (µs), req/s, avg, p50, p75, p90,
# p99 (µs), errors (non-2xx/3xx answers and connection errors).
parse_oha() {
    python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s, p = d["summary"], d["latencyPercentiles"]
codes = {int(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
answered = sum(codes.values())
err = sum(v for k, v in codes.items() if not 200 <= k < 400)
# The requests still in flight when the duration ends are not errors.
err += sum(v for k, v in d.get("errorDistribution", {}).items() if k != "aborted due to deadline")
if answered == 0 or p.get("p99") is None:
    sys.exit(1)
us = lambda v: v * 1e6
print("%d %d %.2f %.1f %.1f %.1f %.1f %.1f %d" % (answered, us(s["total"]), s["requestsPerSec"],
      us(s["average"]), us(p["p50"]), us(p["p75"]), us(p["p90"]), us(p["p99"]), err))
PY
}

printf -v TSV_HEADER '%s\t' round proxy pass wrk_threads wrk_conns duration_s requests rps \
    avg_us p50_us p75_us p90_us p99_us errors proxy_cpu_us_per_req proxy_cores proxy_sys_pct \
    upstream_cpu_us_per_req upstream_new_conns others_cpu_pct loadavg_1m upstream_reuse_pct \
    upstream_new_conns_steady target_rps client_cpu_us_per_req
TSV_HEADER=${TSV_HEADER%$'\t'}

# PROXY_DOWN= why the proxy no longer serves (it exited, or runs but does not answer), or empty.
check_proxy() {
    PROXY_DOWN=
    if ! alive "$PROXY_PID"; then
        exit_reason "$PROXY_PID"
        PROXY_DOWN="exited, $EXIT_REASON"
    elif ! curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$PROXY_PORT/"; then
        PROXY_DOWN="pid $PROXY_PID runs but no longer answers on 127.0.0.1:$PROXY_PORT"
        PROXY_DOWN+=" ($(ss -Hltn "( sport = :$PROXY_PORT )" | wc -l) listening sockets)"
    fi
}

# The proxy stopped serving during a run (seen here: dyegate exiting with status 0 while idle, as
# after a SIGINT; pids wrap within minutes on this shared box, so a neighbour's kill of a stale pid
# can land on ours). Keep its log, start it again and redo the run once, loudly; a second loss
# in the same run fails.
lost_proxy() {
    local round=$1 name=$2 pass=$3 retried=$4
    local saved_log=$WORK/lost-$name-r$round-$pass.log
    cp "$PROXY_LOG" "$saved_log" 2>/dev/null || true
    ((retried == 0)) || die "$name stopped serving again: $PROXY_DOWN (log: $saved_log)"
    log "WARNING: $name stopped serving in round $round ($PROXY_DOWN; log: $saved_log): restarting it" \
        "and redoing this run"
    stop_tree "$PROXY_PID"
    forget_pid "$PROXY_PID"
    start_proxy "$name"
    verify_routing "$name"
    measure "$round" "$name" "$pass" 1
}

# Warm up, then one measured wrk run against the running proxy; appends a row to the TSV.
measure() {
    local round=$1 name=$2 pass=$3 retried=${4:-0} url="http://127.0.0.1:$PROXY_PORT/" script=()
    local out=$WORK/wrk-r$round-$name-$pass.txt proxy_pids upstream_pids conns=$WRK_CONNS
    case $pass in
        tagged) script=(-s "$WORK/tagged.lua") ;;
        c256) conns=256 ;;
        c1024) conns=1024 ;;
        close) script=(-H "Connection: close") ;;
        c64 | p99half) ;;
        *) die "unknown scenario '$pass' (known: c64 c256 c1024 close p99half)" ;;
    esac
    [[ $pass != p99half ]] || p99_rate "$round" "$name"

    if ! wrk -t"$WRK_THREADS" -c"$conns" -d"$WARMUP" "${script[@]}" "$url" >"$out" 2>&1; then
        check_proxy
        [[ -n $PROXY_DOWN ]] || die "$name: warm-up wrk failed: $(head -c 300 "$out")"
        lost_proxy "$round" "$name" "$pass" "$retried"
        return
    fi

    wait_quiet
    check_proxy
    if [[ -n $PROXY_DOWN ]]; then
        lost_proxy "$round" "$name" "$pass" "$retried"
        return
    fi
    mapfile -t proxy_pids < <(tree_pids "$PROXY_PID")
    mapfile -t upstream_pids < <(tree_pids "$UPSTREAM_PID")
    local load accepts0 accepts1 pu0 ps0 pu1 ps1 uu0 us0 uu1 us1 w0 w1 b0 b1
    read -r load _ </proc/loadavg
    accepts0=$(upstream_accepts)
    read -r pu0 ps0 < <(cpu_ticks "${proxy_pids[@]}")
    read -r uu0 us0 < <(cpu_ticks "${upstream_pids[@]}")
    children_ticks
    w0=$CHILD_TICKS
    b0=$(box_ticks)
    # Steady state: the upstream's accepts 1 s into the run. The first second still opens
    # connections that replace those the warm-up's end dropped mid-request (wrk stops with
    # requests in flight, and an upstream connection with an unfinished answer is not reused).
    rm -f "$WORK/accepts-1s"
    (sleep 1 && upstream_accepts >"$WORK/accepts-1s") &
    local probe_pid=$!
    if ! load_run "$pass" "$conns" "$url" "$out" "${script[@]}"; then
        check_proxy
        [[ -n $PROXY_DOWN ]] ||
            die "$name: the load run failed: $(head -c 300 "$out")" \
                "$(head -c 300 "$out.log" 2>/dev/null)"
        lost_proxy "$round" "$name" "$pass" "$retried"
        return
    fi
    b1=$(box_ticks)
    children_ticks
    w1=$CHILD_TICKS
    read -r pu1 ps1 < <(cpu_ticks "${proxy_pids[@]}")
    read -r uu1 us1 < <(cpu_ticks "${upstream_pids[@]}")
    accepts1=$(upstream_accepts)
    wait "$probe_pid" 2>/dev/null || true
    local accepts_1s
    accepts_1s=$(cat "$WORK/accepts-1s" 2>/dev/null || echo "$accepts0")
    check_proxy
    if [[ -n $PROXY_DOWN ]]; then
        lost_proxy "$round" "$name" "$pass" "$retried"
        return
    fi

    local parsed req dur rps avg p50 p75 p90 p99 err target=0
    if [[ $pass == p99half ]]; then
        target=$P99_RATE_NOW
        if [[ $P99_TOOL == oha ]]; then
            parsed=$(parse_oha "$out")
        else
            parsed=$(tail -n 1 "$out")
        fi
    else
        parsed=$(parse_wrk "$out")
    fi || {
        cat "$out" >&2
        die "$name: cannot parse wrk output ($out)"
    }
    read -r req dur rps avg p50 p75 p90 p99 err <<<"$parsed"
    ((req > 0)) || die "$name: wrk completed no request ($out)"

    # ticks -> µs: ticks * 1e6 / CLK_TCK; per request; cores = CPU time / wall time.
    # The row goes to the TSV, a readable line to stderr.
    awk -v r="$round" -v n="$name" -v pass="$pass" -v t="$WRK_THREADS" -v c="$conns" \
        -v req="$req" -v dur="$dur" -v rps="$rps" -v avg="$avg" -v p50="$p50" -v p75="$p75" \
        -v p90="$p90" -v p99="$p99" -v err="$err" -v tck="$CLK_TCK" -v load="$load" \
        -v puser=$((pu1 - pu0)) -v psys=$((ps1 - ps0)) -v up=$((uu1 + us1 - uu0 - us0)) \
        -v conns=$((accepts1 - accepts0 - 1)) -v steady=$((accepts1 - accepts_1s - 1)) \
        -v ncpu="$(nproc)" -v target="$target" -v client=$((w1 - w0)) \
        -v others=$(((b1 - b0) - (pu1 + ps1 - pu0 - ps0) - (uu1 + us1 - uu0 - us0) - (w1 - w0))) \
        'BEGIN {
            pcpu = (puser + psys) * 1e6 / tck; ucpu = up * 1e6 / tck
            sys_pct = puser + psys > 0 ? 100 * psys / (puser + psys) : 0
            # Everything but proxy, upstream and wrk, as a share of the whole box (steal included).
            others_pct = others * 1e6 / tck * 100 / (dur * ncpu)
            if (others_pct < 0) others_pct = 0
            # Upstream connection reuse in steady state (from 1 s into the run): requests that
            # did not need a new upstream connection.
            sreq = req * (dur / 1e6 - 1) / (dur / 1e6)
            reuse = (steady <= 0 || sreq <= 0) ? 100 : 100 * (1 - steady / sreq)
            printf "%s\t%s\t%s\t%d\t%d\t%.2f\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.2f\t%.2f\t%.0f\t%.2f\t%d\t%.0f\t%s\t%.3f\t%d\t%d\t%.2f\n",
                r, n, pass, t, c, dur / 1e6, req, rps, avg, p50, p75, p90, p99, err,
                pcpu / req, pcpu / dur, sys_pct, ucpu / req, conns, others_pct, load, reuse, steady,
                target, client * 1e6 / tck / req
            printf "[load] round %s %-8s %-8s %8.0f req/s  p50 %6.0fus  p99 %6.0fus  cpu %6.1fus/req (%.2f cores, %.0f%% sys)  upstream %5.1fus/req, %d new conns  others %2.0f%%  errors %d\n",
                r, n, pass, rps, p50, p99, pcpu / req, pcpu / dur, sys_pct, ucpu / req, conns,
                others_pct, err > "/dev/stderr"
        }' >>"$RESULTS_TSV"
    ((err == 0)) || log "WARNING: $name had $err errors (non-2xx/3xx or socket); see $out"
    # The proxy's own throughput in this round: what its p99half pass runs at a fraction of.
    [[ $pass != c64 ]] || MAX_RPS_NOW=$rps
    if [[ $pass == p99half ]] &&
        awk -v a="$rps" -v t="$target" 'BEGIN { exit !(a < 0.95 * t) }'; then
        log "WARNING: $name p99half answered $rps req/s of the $target asked for: it could not" \
            "keep up, so this p99 is not at ${P99_LOAD}x load"
    fi
}

# p99half's rate for this proxy in this round, into P99_RATE_NOW: P99_RATE if it is a number,
# else P99_LOAD of the req/s the proxy reached in its c64 pass of this round (each round its own:
# a rate fixed from round 1 overloads a proxy in a later, slower round). Without a c64 pass before
# p99half, one closed-loop wrk run (c64, DURATION, not recorded) measures it first.
p99_rate() {
    local round=$1 name=$2 out
    if [[ $P99_RATE != auto ]]; then
        P99_RATE_NOW=$P99_RATE
        return 0
    fi
    if [[ -z $MAX_RPS_NOW ]]; then
        out=$WORK/wrk-r$round-$name-p99max.txt
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$DURATION" --latency \
            "http://127.0.0.1:$PROXY_PORT/" >"$out" 2>&1 || die "$name: wrk for p99half's rate failed: $(head -c 300 "$out")"
        MAX_RPS_NOW=$(parse_wrk "$out" | awk '{ print $3 }')
        [[ -n $MAX_RPS_NOW ]] || die "$name: cannot parse $out"
    fi
    P99_RATE_NOW=$(awk -v r="$MAX_RPS_NOW" -v f="$P99_LOAD" 'BEGIN { printf "%d", r * f }')
    log "round $round $name p99half rate: $P99_RATE_NOW req/s (${P99_LOAD}x its $MAX_RPS_NOW req/s at c$WRK_CONNS this round)"
}

# DURATION (wrk's form: 10s, 2m, or plain seconds) in seconds, for open-loop.
duration_secs() {
    awk -v d="$1" 'BEGIN {
        n = d + 0; u = d; sub(/^[0-9.]+/, "", u)
        if (u == "m") n *= 60; else if (u == "h") n *= 3600
        print n
    }'
}

# The measured run of a scenario: wrk (closed loop), or open-loop (oha with P99_TOOL=oha) at a
# fixed rate for p99half (open loop: requests are sent on schedule whether or not earlier ones
# were answered, and each latency is counted from when its request was due, so a stall shows in
# the percentiles instead of slowing the load down: coordinated-omission correction).
load_run() {
    local pass=$1 conns=$2 url=$3 out=$4
    shift 4
    if [[ $pass == p99half && $P99_TOOL == open-loop ]]; then
        "$OPEN_LOOP_BIN" --url "$url" --rate "$P99_RATE_NOW" --conns "$conns" \
            --threads "$WRK_THREADS" --duration "$(duration_secs "$DURATION")" >"$out" 2>"$out.log"
    elif [[ $pass == p99half ]]; then
        "$OHA_BIN" -z "$DURATION" -c "$conns" -q "$P99_RATE_NOW" --latency-correction \
            --no-tui --output-format json "$url" >"$out" 2>&1
    else
        wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency "$@" "$url" >"$out" 2>&1
    fi
}

run_proxy() {
    local round=$1 name=$2
    alloc_port
    PROXY_PORT=$PORT
    MAX_RPS_NOW=
    start_proxy "$name"
    verify_routing "$name"
    local pass
    for pass in $SCENARIOS; do
        measure "$round" "$name" "$pass"
    done
    ((TAGGED == 0)) || measure "$round" "$name" tagged
    ((PERF == 0)) || [[ $name != dyegate* ]] || profile_dyegate "$round" "$name"
    [[ $name != dyegate* ]] || dyegate_telemetry "$round" "$name"
    stop_tree "$PROXY_PID"
    forget_pid "$PROXY_PID"
    PROXY_PID=
    # A run's access log is hundreds of MB: gone once counted.
    [[ $name != dyegate-log ]] || rm -f "$WORK/dyegate-log/access.log"
}

# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

# Per proxy and pass: medians over rounds; req/s ratios are median / median. The ratios against
# nginx and the bare proxy come last, one block per pass, for every dyegate variant.
summarize() {
    local passes=$SCENARIOS
    ((TAGGED == 0)) || passes+=" tagged"
    awk -F'\t' -v order="$PROXIES" -v passes="$passes" -v p99load="$P99_LOAD" '
        function median(list,   a, n, i, j, v) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) {      # insertion sort: n is the number of rounds
                v = a[i] + 0
                for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]
                a[j + 1] = v
            }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function lowest(list,   a, n, i, m) {
            n = split(list, a, " "); m = a[1] + 0
            for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0
            return m
        }
        function highest(list,   a, n, i, m) {
            n = split(list, a, " "); m = a[1] + 0
            for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0
            return m
        }
        # The rounds around the median: lowest and highest req/s as % below / above it.
        function spread(list,   m) {
            m = median(list)
            if (split(list, _s, " ") < 2 || m <= 0) return "-"
            return sprintf("-%.0f/+%.0f%%", 100 * (m - lowest(list)) / m, 100 * (highest(list) - m) / m)
        }
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            k = $col["proxy"] SUBSEP $col["pass"]; runs[k]++; seen_pass[$col["pass"]] = 1
            rps[k] = rps[k] " " $col["rps"]
            p50[k] = p50[k] " " $col["p50_us"]
            p99[k] = p99[k] " " $col["p99_us"]
            cpu[k] = cpu[k] " " $col["proxy_cpu_us_per_req"]
            cores[k] = cores[k] " " $col["proxy_cores"]
            conns[k] = conns[k] " " $col["upstream_new_conns"]
            reuse[k] = reuse[k] " " $col["upstream_reuse_pct"]
            others[k] = others[k] " " $col["others_cpu_pct"]
            load[k] = load[k] " " $col["loadavg_1m"]
            errs[k] += $col["errors"]
            by_round[k, $col["round"]] = $col["rps"]; rounds[$col["round"]] = 1
            cpu_by_round[k, $col["round"]] = $col["proxy_cpu_us_per_req"]
        }
        END {
            np = split(order, names, " ")
            npass = split(passes, pass_list, " ")
            w = 8                           # the proxy column fits the longest name
            for (i = 1; i <= np; i++) if (length(names[i]) > w) w = length(names[i])
            pw = "%-" w "s"
            printf pw " %-8s %4s %10s %9s %9s %9s %10s %11s %6s %9s %8s %8s %8s %8s %6s %6s %5s\n", "proxy",
                "pass", "runs", "req/s", "spread", "p50", "p99", "p99@half", "cpu/req", "cores",
                "up-conns", "reuse", "vs nginx", "vs same", "vs bare", "errors", "others", "load"
            for (ps = 1; ps <= npass; ps++) {
                pass = pass_list[ps]
                if (!(pass in seen_pass)) continue
                for (i = 1; i <= np; i++) {
                    k = names[i] SUBSEP pass
                    if (!(k in runs)) continue
                    r = median(rps[k]); kn = "nginx" SUBSEP pass; kb = "bare" SUBSEP pass
                    ks = "bare-same" SUBSEP pass
                    vn = (kn in runs) ? sprintf("%.2fx", r / median(rps[kn])) : "-"
                    vb = (kb in runs) ? sprintf("%.2fx", r / median(rps[kb])) : "-"
                    vs = (ks in runs) ? sprintf("%.2fx", r / median(rps[ks])) : "-"
                    # p99half runs each proxy at its own fraction of its throughput: its req/s
                    # is not a result, its p99 is (and shows beside the c64 row it derives from).
                    if (pass == "p99half") vn = vb = vs = "-"
                    kh = names[i] SUBSEP "p99half"
                    ph = (pass == "c64" || pass == "p99half") && (kh in runs) ? sprintf("%.0fus", median(p99[kh])) : "-"
                    printf pw " %-8s %4d %10.0f %9s %7.0fus %8.0fus %10s %8.2fus %6.2f %9d %7.2f%% %8s %8s %8s %6d %5.0f%% %5.1f\n",
                        names[i], pass, runs[k], r, spread(rps[k]), median(p50[k]), median(p99[k]),
                        ph, median(cpu[k]), median(cores[k]), median(conns[k]), median(reuse[k]),
                        vn, vs, vb, errs[k], median(others[k]), median(load[k])
                }
            }
            # What the access log costs: dyegate-log against dyegate in the same rounds, as the
            # ratio of the medians and as the median of the per-round ratios (each pair ran
            # back to back, so slow drift of the box cancels out in a pair).
            for (ps = 1; ps <= npass; ps++) {
                pass = pass_list[ps]
                ko = "dyegate" SUBSEP pass; kl = "dyegate-log" SUBSEP pass
                if (!(ko in runs) || !(kl in runs)) continue
                ratios = ""; deltas = ""
                for (rd in rounds)
                    if ((ko, rd) in by_round && (kl, rd) in by_round) {
                        ratios = ratios " " by_round[kl, rd] / by_round[ko, rd]
                        deltas = deltas " " cpu_by_round[kl, rd] - cpu_by_round[ko, rd]
                    }
                co = median(cpu[ko]); cl = median(cpu[kl])
                printf "\naccess log on (%s): req/s %.3fx of off (median of per-round ratios %.3fx);" \
                    " cpu/req %.2fus -> %.2fus (%+.1f%%, median per-round delta %+.2fus)\n",
                    pass, median(rps[kl]) / median(rps[ko]), median(ratios), co, cl,
                    100 * (cl - co) / co, median(deltas)
            }
            # The ratios, last: every dyegate variant against nginx and the bare proxy, per pass.
            # The issue-13 targets: req/s >= 0.6x nginx, cpu/req <= 2.0x nginx, >= 0.97x bare,
            # p99 within 1 ms of bare (at its own max load here: closed loop), reuse >= 99.9%.
            printf "\nratios (medians of the rounds; issue-35 targets for dyegate: req/s >= 0.95x same and cpu/req <= 1.10x same at c64 c256 c1024 close, req/s >= 2x caddy at c64 c256)\n"
            printf "(same = bare-same, the bare proxy built as dyegate is; p99half: open loop at %s of each proxy'"'"'s own c64 req/s of the round, so compare p99, not req/s)\n", p99load
            printf pw " %-8s %11s %13s %11s %13s %11s %13s %14s %11s %13s %14s %8s\n", "proxy", "pass", "req/s/same",
                "cpu/req/same", "req/s/nginx", "cpu/req/nginx", "req/s/caddy", "cpu/req/caddy",
                "p99-same p99", "req/s/bare", "cpu/req/bare", "p99-bare p99", "reuse"
            for (ps = 1; ps <= npass; ps++) {
                pass = pass_list[ps]
                kn = "nginx" SUBSEP pass; kb = "bare" SUBSEP pass; kh = "haproxy" SUBSEP pass
                ks = "bare-same" SUBSEP pass
                for (i = 1; i <= np; i++) {
                    if (names[i] !~ /^dyegate/ && names[i] !~ /^bare/ && names[i] != "haproxy" && names[i] != "caddy") continue
                    k = names[i] SUBSEP pass
                    if (!(k in runs)) continue
                    rn = (kn in runs) ? sprintf("%.2fx", median(rps[k]) / median(rps[kn])) : "-"
                    cn = (kn in runs) ? sprintf("%.2fx", median(cpu[k]) / median(cpu[kn])) : "-"
                    rb = (kb in runs) ? sprintf("%.2fx", median(rps[k]) / median(rps[kb])) : "-"
                    cb = (kb in runs) ? sprintf("%.2fx", median(cpu[k]) / median(cpu[kb])) : "-"
                    pb = (kb in runs) ? sprintf("%+.0fus", median(p99[k]) - median(p99[kb])) : "-"
                    rs = (ks in runs) ? sprintf("%.2fx", median(rps[k]) / median(rps[ks])) : "-"
                    cs = (ks in runs) ? sprintf("%.2fx", median(cpu[k]) / median(cpu[ks])) : "-"
                    qs = (ks in runs) ? sprintf("%+.0fus", median(p99[k]) - median(p99[ks])) : "-"
                    kc = "caddy" SUBSEP pass
                    rc = (kc in runs) ? sprintf("%.2fx", median(rps[k]) / median(rps[kc])) : "-"
                    cc = (kc in runs) ? sprintf("%.2fx", median(cpu[k]) / median(cpu[kc])) : "-"
                    if (pass == "p99half") rn = rb = rs = rc = "-"
                    printf pw " %-8s %11s %13s %11s %13s %11s %13s %14s %11s %13s %14s %7.2f%%\n", names[i], pass,
                        rs, cs, rn, cn, rc, cc, qs, rb, cb, pb, median(reuse[k])
                }
            }
        }' "$RESULTS_TSV"
}

# ---------------------------------------------------------------------------------------------

main() {
    local name round
    if [[ -n ${SUMMARIZE:-} ]]; then
        # SUMMARIZE=<results>.tsv: print the table of a past run again (same PROXIES, SCENARIOS).
        RESULTS_TSV=$SUMMARIZE
        summarize
        FAILED=0
        exit 0
    fi
    for name in $PROXIES; do
        [[ $name == dyegate+* || $(type -t "start_$name") == function ]] ||
            die "unknown proxy '$name' in PROXIES (known: dyegate dyegate-log bare bare-same nginx haproxy caddy)"
    done
    install_tools
    install_p99_tool
    raise_fd_limit
    build
    P99_RATE_NOW=
    MAX_RPS_NOW=

    mkdir -p "$RESULTS_DIR"
    printf '%s\n' "$TSV_HEADER" >"$RESULTS_TSV"
    if [[ " $PROXIES" == *" dyegate"* ]]; then
        printf 'round\tproxy\tmetrics_requests\taccess_log_lines\taccess_log_dropped\taccess_log_bytes\tpeak_rss_kib\tmirror_copies\n' \
            >"$TELEMETRY_TSV"
        ((PERF == 0)) || printf 'round\tproxy\tmetrics_pct\taccess_log_request_pct\taccess_log_writer_pct\tlogging_hook_pct\ttotal_pct\n' \
            >"$PROFILE_TSV"
    fi
    printf 'wrk.headers["x-env-tag"] = "canary"\n' >"$WORK/tagged.lua"

    alloc_port && STABLE_PORT=$PORT
    alloc_port && CANARY_PORT=$PORT
    alloc_port && UPSTREAM_STATUS_PORT=$PORT
    start_upstream
    log "upstream nginx: stable 127.0.0.1:$STABLE_PORT, canary 127.0.0.1:$CANARY_PORT (1 worker)"
    log "load: wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION (warm-up $WARMUP), proxies with" \
        "$PROXY_THREADS workers, $ROUNDS round(s) of: $PROXIES"

    for ((round = 1; round <= ROUNDS; round++)); do
        for name in $PROXIES; do
            run_proxy "$round" "$name"
        done
    done

    local table commit
    table=$(summarize)
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    {
        echo "dyegate load comparison $STAMP, commit $commit, $(nproc) cores, $(uname -r)"
        echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION --latency (warm-up $WARMUP)," \
            "$PROXY_THREADS proxy workers, $ROUNDS round(s), medians:"
        echo
        echo "$table"
    } | tee "$RESULTS_TXT"
    echo
    echo "raw results: $RESULTS_TSV"
    echo "table:       $RESULTS_TXT"
    [[ ! -f $TELEMETRY_TSV ]] || echo "telemetry:   $TELEMETRY_TSV"
    [[ ! -f $PROFILE_TSV ]] || echo "profile:     $PROFILE_TSV"
    FAILED=0
    # Exit here rather than return: bash reads a script as it runs, so an edit to this file made
    # during a run would otherwise be executed after main.
    exit 0
}

main "$@"
