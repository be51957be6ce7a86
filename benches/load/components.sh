#!/usr/bin/env bash
# Where a proxy's CPU goes, by component, at several client counts: `perf record` (cpu-clock,
# 999 Hz, every thread) on the proxy under `wrk -t2 -cN`, samples by symbol (self time) put
# into components, as CPU µs per request. Compares c64 with c256 (issue 35: does anything grow
# with the number of connections?). The shares are robust to a busy box; the µs are not.
#
#   benches/load/components.sh                       # dyegate and bare-same, c64 and c256
#   CONNS="64 256 1024" PROXIES=dyegate DYEGATE_BIN=/tmp/dyegate benches/load/components.sh
#   KERNEL_TOP=15 benches/load/components.sh         # also the kernel's 15 largest symbols
#
# With fat LTO most functions are inlined into a few large ones, so a component is the crate
# of the outermost function the sample fell in (e.g. Pingora's parser inlined into a Pingora
# function counts as Pingora; dyegate's hooks inlined into Pingora's proxy loop count there).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DYEGATE_BIN=${DYEGATE_BIN:-$TARGET_DIR/release/dyegate}
BARE_SAME_BIN=${BARE_SAME_BIN:-$TARGET_DIR/release/bare-proxy-same}
CONNS=${CONNS:-"64 256"}
PROXIES=${PROXIES:-"dyegate bare-same"}
SECONDS_EACH=${SECONDS_EACH:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-components.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    local i
    for ((i = 0; i < 300; i++)); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

UP=$(free_port)
cat >"$WORK/up.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/up.pid;
error_log $WORK/up-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$UP; location / { return 200 "stable\n"; } }
}
EOF
nginx -p "$WORK" -c "$WORK/up.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP/"

# perf report lines (percent, dso, symbol) -> component shares.
classify() {
    awk '
        { pct = $1; sub(/%$/, "", pct); pct += 0; dso = $2; sym = ""; for (i = 4; i <= NF; i++) sym = sym " " $i }
        dso ~ /kernel/                                  { c["kernel"] += pct; next }
        sym ~ /(^| )(_?mi_|mi_malloc|_?_?libc_(malloc|free)|malloc|free|realloc|cfree)/ { c["allocator"] += pct; next }
        sym ~ /dyegate/                                 { c["dyegate"] += pct; next }
        sym ~ /pingora/                                 { c["pingora"] += pct; next }
        sym ~ /tokio|mio::/                             { c["tokio"] += pct; next }
        sym ~ /(^| )(<?http::|<?bytes::|hashbrown|foldhash|httparse)/ { c["http/bytes/httparse"] += pct; next }
        dso ~ /vdso/                                    { c["clock (vdso)"] += pct; next }
        dso ~ /libc/                                    { c["libc"] += pct; next }
                                                        { c["other"] += pct }
        END { for (k in c) printf "%s\t%.1f\n", k, c[k] }'
}

for proxy in $PROXIES; do
    port=$(free_port)
    dir=$WORK/$proxy
    mkdir -p "$dir/state"
    if [[ $proxy == dyegate ]]; then
        admin=$(free_port)
        cat >"$dir/gateway.yaml" <<EOF
listen: ["127.0.0.1:$port"]
admin: { listen: "127.0.0.1:$admin" }
routes: routes.yaml
state_dir: $dir/state
pingora: { threads: 2, pid_file: $dir/d.pid, upgrade_sock: $dir/d.sock }
tracing: { sample_ratio: 0.01 }
EOF
        cat >"$dir/routes.yaml" <<EOF
upstreams:
  stable: { targets: ["127.0.0.1:$UP"] }
routes:
  - name: app
    dye: { tags: { canary: stable } }
    split: [ { upstream: stable, weight: 100 } ]
EOF
        RUST_LOG=error "$DYEGATE_BIN" run -c "$dir/gateway.yaml" >"$dir/log" 2>&1 &
    else
        RUST_LOG=error "$BARE_SAME_BIN" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$UP" \
            --threads 2 --run-dir "$dir" >"$dir/log" 2>&1 &
    fi
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/"
    for n in $CONNS; do
        wrk -t2 -c"$n" -d2s "http://127.0.0.1:$port/" >/dev/null 2>&1
        perf record -q -F 999 -e cpu-clock -p "$pid" -o "$dir/perf-$n.data" -- sleep "$SECONDS_EACH" \
            >"$dir/perf-$n.log" 2>&1 &
        perf_pid=$!
        out=$(wrk -t2 -c"$n" -d"${SECONDS_EACH}s" "http://127.0.0.1:$port/")
        wait "$perf_pid"
        reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
        samples=$(perf script -i "$dir/perf-$n.data" -F tid 2>/dev/null | wc -l)
        total_us=$((samples * 1000000 / 999))
        echo "== $proxy c$n: $reqs requests, $((total_us / reqs)) µs CPU per request (perf samples)"
        perf report -i "$dir/perf-$n.data" --no-children --sort dso,sym -q --stdio --percent-limit 0 \
            2>/dev/null | classify | sort -t$'\t' -k2 -rn |
            awk -F'\t' -v t="$total_us" -v r="$reqs" '{ printf "   %-22s %5.1f%%  %6.2f µs/request\n", $1, $2, $2 / 100 * t / r }'
        if [[ -n ${KERNEL_TOP:-} ]]; then
            echo "   the kernel's largest symbols (share of all samples):"
            perf report -i "$dir/perf-$n.data" --no-children --sort dso,sym -q --stdio \
                --percent-limit 0 2>/dev/null | awk '$2 ~ /kernel/' | head -n "$KERNEL_TOP" | sed 's/^/     /'
        fi
    done
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
