#!/usr/bin/env bash
# Memory per idle keep-alive connection: dyegate against bare-same (benches/load/README.md,
# "RSS per connection"). Robust to a busy box: it counts bytes, not time.
#
#   benches/load/rss.sh                         # release builds in $CARGO_TARGET_DIR or target/
#   DYEGATE_BIN=/tmp/dyegate-old COUNTS="64 256 1024" benches/load/rss.sh
#
# Per proxy: an nginx upstream (1 worker), the proxy (2 threads; dyegate with the load run's
# config: one route, dye + split, 1% trace sampling), a warm-up of 200 requests on 8
# connections, then for each count N of COUNTS: N connections that each made one request and
# stay open, idle; the proxy's VmRSS (/proc) once it is steady; closed again before the next N.
# Prints RSS at each N and (RSS(N) - RSS(first N)) / (N - first N) per connection.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DYEGATE_BIN=${DYEGATE_BIN:-$TARGET_DIR/release/dyegate}
BARE_SAME_BIN=${BARE_SAME_BIN:-$TARGET_DIR/release/bare-proxy-same}
COUNTS=${COUNTS:-"64 256 1024"}
PROXIES=${PROXIES:-"dyegate bare-same"}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-rss.XXXXXX")
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

# Opens N connections, one request each, holds them until stdin closes; prints "open N" when
# all have their answer.
cat >"$WORK/hold.py" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conns.append(s)
for s in conns:
    got = b""
    while b"stable\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("closed early")
        got += chunk
print("open", n, flush=True)
sys.stdin.read()
PY

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

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
    h2load --h1 -n 200 -c 8 "http://127.0.0.1:$port/" >/dev/null
    first_n="" first_rss=""
    for n in $COUNTS; do
        coproc HOLD { python3 "$WORK/hold.py" "$port" "$n"; }
        read -r _ _ <&"${HOLD[0]}"
        # steady: two equal readings 0.5 s apart
        prev=0
        rss=$(rss_kb "$pid")
        while [[ $rss != "$prev" ]]; do
            prev=$rss
            sleep 0.5
            rss=$(rss_kb "$pid")
        done
        if [[ -z $first_n ]]; then
            first_n=$n first_rss=$rss
            printf '%-10s %5d idle connections: RSS %7d KiB\n' "$proxy" "$n" "$rss"
        else
            printf '%-10s %5d idle connections: RSS %7d KiB, %5.1f KiB per connection above %d\n' \
                "$proxy" "$n" "$rss" "$(echo "($rss - $first_rss) / ($n - $first_n)" | bc -l)" "$first_n"
        fi
        eval "exec ${HOLD[1]}>&-"
        wait "$HOLD_PID" 2>/dev/null || true
    done
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
