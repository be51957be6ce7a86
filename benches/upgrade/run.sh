#!/usr/bin/env bash
# Binary upgrade under load: wrk drives the release dyegate while `dyegate upgrade --wait-old`
# replaces it UPGRADES times in a row; prints the requests, every error wrk saw (socket errors
# and non-2xx), each upgrade's handover -> old exit time, and whether the listening socket
# (by inode) survived. See benches/upgrade/README.md.
#
#   benches/upgrade/run.sh                         # wrk -t2 -c64 for 25 s, 3 upgrades from t=3 s
#   DURATION=40 UPGRADES=5 benches/upgrade/run.sh
#   SKIP_BUILD=1 KEEP_WORK=1 benches/upgrade/run.sh
#
# Settings (environment):
#   DURATION=25         seconds of wrk load (must outlast the upgrades: about 6.5 s each)
#   UPGRADES=3          upgrades, one after the other (each waits for the old process to exit)
#   FIRST_AT=3          seconds of load before the first upgrade
#   WRK_THREADS=2 WRK_CONNS=64
#   WRK_CLOSE=0         1: every request carries `Connection: close` (a new connection each time)
#   PROXY_THREADS=2     pingora.threads
#   GRACE=10            pingora.grace_period_seconds
#   WATCH_MS=3000       upgrade.watch_ms (the old process watches the new one this long; under
#                       Pingora's 5 s of accepting, so the drain times stay comparable)
#   SKIP_INSTALL=0 SKIP_BUILD=0   skip apt-get / cargo
#   KEEP_WORK=0         1: keep the temp dir (configs, logs, raw outputs) after a clean run
#
# Exit status: 0 when every upgrade succeeded, wrk saw no error and the inode is unchanged.

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-25}
UPGRADES=${UPGRADES:-3}
FIRST_AT=${FIRST_AT:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_CLOSE=${WRK_CLOSE:-0}
PROXY_THREADS=${PROXY_THREADS:-2}
GRACE=${GRACE:-10}
WATCH_MS=${WATCH_MS:-3000}
SKIP_INSTALL=${SKIP_INSTALL:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP_WORK=${KEEP_WORK:-0}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-upgrade-bench.XXXXXX")
PIDS=()       # every process started here (dyegate: each generation), ended by id on exit
PORTS=()
PORT=
FAILED=1

log() { printf '[upgrade] %s\n' "$*" >&2; }
die() {
    printf '[upgrade] FAIL: %s\n' "$*" >&2
    exit 1
}

# Running, as opposed to gone or a zombie.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]]
}

# Whether PID is still one of ours: a direct child (its pid cannot be reused before this shell
# reaps it) or a daemon whose command line names $WORK (a dyegate generation started by an
# upgrade; once it has exited, its pid may belong to anyone).
ours() {
    local pid=$1 cmdline
    [[ $(cut -d' ' -f4 "/proc/$pid/stat" 2>/dev/null) == "$$" ]] && return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$WORK"* ]]
}

cleanup() {
    local status=$? pid
    trap - EXIT INT TERM
    # The serving dyegate is a daemon started by the last upgrade: the pid file names it.
    if [[ -s $WORK/dyegate.pid ]]; then
        PIDS+=("$(cat "$WORK/dyegate.pid")")
    fi
    for pid in "${PIDS[@]}"; do
        if alive "$pid" && ours "$pid"; then kill -INT "$pid" 2>/dev/null || true; fi
    done
    for pid in "${PIDS[@]}"; do
        ours "$pid" || continue
        for _ in {1..50}; do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid" && ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        wait "$pid" 2>/dev/null || true
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

install_tools() {
    local -A pkg_of=([wrk]=wrk [curl]=curl [ss]=iproute2 [cmake]=cmake)
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

build() {
    if ((SKIP_BUILD == 0)); then
        log "cargo build --release -p dyegate --bin dyegate -p dyegate-suite --bin demo-upstream"
        (cd "$ROOT" && cargo build --release -p dyegate --bin dyegate -p dyegate-suite --bin demo-upstream)
    fi
    # Copies: a concurrent build cannot swap the binary under test, and `dyegate upgrade` (whose
    # default new binary is itself) upgrades to exactly this file.
    cp "$ROOT/target/release/dyegate" "$WORK/dyegate"
    cp "$ROOT/target/release/demo-upstream" "$WORK/demo-upstream"
}

# A free loopback port below the ephemeral range (no outgoing connection can take it). Sets PORT.
alloc_port() {
    local lo p
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    ((lo > 12000)) || lo=30000
    for _ in {1..500}; do
        p=$((10000 + RANDOM % (lo - 10000)))
        [[ " ${PORTS[*]} " == *" $p "* ]] && continue
        if [[ -z $(ss -Htan "( sport = :$p )") ]]; then
            PORTS+=("$p")
            PORT=$p
            return 0
        fi
    done
    die "no free port below $lo"
}

# Polls until URL answers; fails with the log tail if PID exits first.
wait_http() {
    local url=$1 pid=$2 logfile=$3 deadline=$((SECONDS + 15))
    until curl -s -o /dev/null --max-time 1 "$url"; do
        alive "$pid" || { tail -n 20 "$logfile" >&2; die "pid $pid exited (log: $logfile)"; }
        ((SECONDS < deadline)) || die "$url not answering after 15 s (log: $logfile)"
        sleep 0.05
    done
}

listener_inode() {
    ss -Hltne "( sport = :$1 )" | grep -o 'ino:[0-9]*' | cut -d: -f2 | paste -sd, -
}

main() {
    install_tools
    build

    alloc_port && UP_PORT=$PORT
    alloc_port && PROXY_PORT=$PORT
    alloc_port && ADMIN_PORT=$PORT

    "$WORK/demo-upstream" --listen "127.0.0.1:$UP_PORT" --name stable >"$WORK/upstream.log" 2>&1 &
    PIDS+=("$!")
    wait_http "http://127.0.0.1:$UP_PORT/" "$!" "$WORK/upstream.log"

    cat >"$WORK/gateway.yaml" <<EOF
listen: ["127.0.0.1:$PROXY_PORT"]
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
routes: routes.yaml
state_dir: ./state
reload: { watch: false }
upgrade: { watch_ms: $WATCH_MS }
pingora: { threads: $PROXY_THREADS, pid_file: ./dyegate.pid, upgrade_sock: ./dyegate-upgrade.sock, grace_period_seconds: $GRACE }
EOF
    cat >"$WORK/routes.yaml" <<EOF
upstreams:
  stable: { targets: ["127.0.0.1:$UP_PORT"] }
routes:
  - name: all
    split: [{ upstream: stable, weight: 1 }]
EOF
    (cd "$WORK" && exec "$WORK/dyegate" run -c "$WORK/gateway.yaml") >"$WORK/dyegate-first.log" 2>&1 &
    PIDS+=("$!")
    wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" "$!" "$WORK/dyegate-first.log"
    local inode_before inode_after
    inode_before=$(listener_inode "$PROXY_PORT")
    log "dyegate pid $(cat "$WORK/dyegate.pid") on 127.0.0.1:$PROXY_PORT (listener inode $inode_before)"

    local wrk_cmd=(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency)
    ((WRK_CLOSE == 0)) || wrk_cmd+=(-H "Connection: close")
    wrk_cmd+=("http://127.0.0.1:$PROXY_PORT/")
    local wrk_line
    wrk_line=$(printf '%q ' "${wrk_cmd[@]}")
    log "$wrk_line"
    "${wrk_cmd[@]}" >"$WORK/wrk.txt" 2>&1 &
    local wrk_pid=$!
    PIDS+=("$wrk_pid")
    sleep "$FIRST_AT" # load before the first upgrade (a schedule, not a synchronisation)

    local i failed_upgrades=0
    for ((i = 1; i <= UPGRADES; i++)); do
        alive "$wrk_pid" || die "wrk ended before upgrade $i: raise DURATION"
        log "upgrade $i: dyegate upgrade -c gateway.yaml --wait-old"
        if ! (cd "$WORK" && "$WORK/dyegate" upgrade -c "$WORK/gateway.yaml" --wait-old) \
            >"$WORK/upgrade-$i.txt" 2>&1; then
            failed_upgrades=$((failed_upgrades + 1))
        fi
        sed 's/^/    /' "$WORK/upgrade-$i.txt" >&2
        local new
        new=$(sed -n 's/^\[4\/6\] new process \([0-9]*\) .*/\1/p' "$WORK/upgrade-$i.txt")
        [[ -n $new ]] && PIDS+=("$new")
    done
    alive "$wrk_pid" || log "warning: wrk ended before the last upgrade finished: raise DURATION"
    wait "$wrk_pid" || die "wrk failed: $(cat "$WORK/wrk.txt")"
    inode_after=$(listener_inode "$PROXY_PORT")

    # wrk's summary: "N requests in D", "Socket errors: connect A, read B, write C, timeout D",
    # "Non-2xx or 3xx responses: N".
    local requests rps socket non2xx
    requests=$(awk '/ requests in / { print $1 }' "$WORK/wrk.txt")
    rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$WORK/wrk.txt")
    socket=$(awk '/Socket errors:/ { sub(/^ *Socket errors: /, ""); print }' "$WORK/wrk.txt")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$WORK/wrk.txt")
    local socket_total
    socket_total=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$WORK/wrk.txt")

    echo
    echo "== binary upgrade under load =="
    echo "load:      $wrk_line"
    echo "upgrades:  $UPGRADES x dyegate upgrade -c gateway.yaml --wait-old, from t=${FIRST_AT}s"
    echo "requests:  $requests (${rps}/s)"
    echo "errors:    socket errors: ${socket:-none} (total ${socket_total:-0}); non-2xx: ${non2xx:-0}"
    for ((i = 1; i <= UPGRADES; i++)); do
        local from to ready drained
        from=$(sed -n 's/^\[1\/6\] running dyegate: pid \([0-9]*\) .*/\1/p' "$WORK/upgrade-$i.txt")
        to=$(sed -n 's/^\[4\/6\] new process \([0-9]*\) ready after \([^;]*\);.*/\1/p' "$WORK/upgrade-$i.txt")
        ready=$(sed -n 's/^\[4\/6\] new process [0-9]* ready after \([^;]*\);.*/\1/p' "$WORK/upgrade-$i.txt")
        drained=$(sed -n 's/^\[6\/6\] old process [0-9]* exited \([^ ]*\) after the handover/\1/p' "$WORK/upgrade-$i.txt")
        echo "upgrade $i: pid ${from:-?} -> ${to:-?}: new ready ${ready:-?} after the handover, old exited ${drained:-FAILED} after the handover"
    done
    if [[ $inode_before == "$inode_after" ]]; then
        echo "listener:  inode $inode_before before and after (inherited, not bound again)"
    else
        echo "listener:  inode $inode_before before, $inode_after after: NOT the same socket"
    fi
    echo
    sed 's/^/    /' "$WORK/wrk.txt"

    ((failed_upgrades == 0)) || die "$failed_upgrades upgrade(s) failed (outputs in $WORK)"
    [[ $inode_before == "$inode_after" ]] || die "the listening socket changed"
    ((${socket_total:-0} == 0 && ${non2xx:-0} == 0)) || die "wrk saw errors"
    FAILED=0
}

main "$@"
