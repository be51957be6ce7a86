#!/usr/bin/env bash
# Allocations per proxied request, by the innermost dyegate frame of each allocation's stack,
# under valgrind's DHAT (benches/load/README.md, "Second pass", lever 5).
#
#   cargo build -p dyegate --bin dyegate --no-default-features   # system allocator: DHAT sees it
#   benches/load/allocs.sh target/debug/dyegate
#
# Two runs of the binary (1,000 and 3,000 keep-alive requests, h2load --h1 -c 4) behind a local
# nginx upstream; the difference of the counts divided by 2,000 leaves start-up and shutdown out.
set -Eeuo pipefail
BIN=$1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-allocs.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

UP=$(free_port)
cat >"$WORK/up.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/up.pid;
error_log $WORK/up-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$UP; location / { return 200 "stable\n"; } }
}
CONF
nginx -p "$WORK" -c "$WORK/up.conf" >/dev/null 2>&1 &
PIDS+=($!)
cat >"$WORK/routes.yaml" <<YAML
upstreams:
  stable: { targets: ["127.0.0.1:$UP"] }
routes:
  - name: app
    dye: { tags: { canary: stable } }
    split: [ { upstream: stable, weight: 100 } ]
YAML
for n in 1000 3000; do
    port=$(free_port)
    admin=$(free_port)
    mkdir -p "$WORK/state-$n"
    cat >"$WORK/gw-$n.yaml" <<YAML
listen: ["127.0.0.1:$port"]
admin: { listen: "127.0.0.1:$admin" }
routes: routes.yaml
state_dir: $WORK/state-$n
pingora: { threads: 2, pid_file: $WORK/d-$n.pid, upgrade_sock: $WORK/d-$n.sock }
tracing: { sample_ratio: 0.01 }
YAML
    RUST_LOG=error valgrind --tool=dhat --dhat-out-file="$WORK/dhat-$n.json" \
        "$BIN" run -c "$WORK/gw-$n.yaml" >"$WORK/log-$n" 2>&1 &
    vg=$!
    for _ in $(seq 1 300); do
        curl -s -o /dev/null --max-time 1 "127.0.0.1:$port/" && break
        sleep 0.5
    done
    h2load --h1 -n "$n" -c 4 -m 1 "http://127.0.0.1:$port/" | grep -E "^status codes"
    kill -INT "$vg"
    wait "$vg" || true
done
python3 - "$WORK/dhat-1000.json" "$WORK/dhat-3000.json" 2000 <<'PY'
import collections, json, re, sys
def count(path):
    d = json.load(open(path)); ft = d["ftbl"]; total = 0; by = collections.Counter()
    for pp in d["pps"]:
        total += pp["tbk"]
        frames = [ft[i] for i in pp["fs"]]
        dy = next((f for f in frames if re.search(r"dyegate(_plugins)?::", f)), None)
        key = re.sub(r" \(.*$", "", re.sub(r"^0x[0-9A-F]+: ", "", dy)) if dy else "(no dyegate frame within DHAT's stack depth)"
        by[key] += pp["tbk"]
    return total, by
(t1, a), (t2, b) = count(sys.argv[1]), count(sys.argv[2])
n = int(sys.argv[3])
print("allocations per request: %.1f" % ((t2 - t1) / n))
for v, k in sorted((((b[k] - a[k]) / n, k) for k in set(a) | set(b)), reverse=True):
    if abs(v) >= 0.05:
        print("%6.2f  %s" % (v, k[:150]))
PY
