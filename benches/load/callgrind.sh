#!/usr/bin/env bash
# Instructions per proxied request, by component, under valgrind's callgrind: robust to the noise
# of a shared box (the count does not depend on what the neighbours do), so it decides between
# two variants of a lever where wall-clock runs cannot. See benches/load/README.md, "Levers".
#
#   benches/load/callgrind.sh BIN [BIN...]     # each a dyegate binary (or bare-proxy: BARE=1)
#   NGINX=1 benches/load/callgrind.sh /usr/sbin/nginx   # nginx as the proxy, for the floor
#   REQS_TIME=8s CONNS=4 benches/load/callgrind.sh /tmp/dyegate-a /tmp/dyegate-b
#   HEADERS="User-Agent: wrk|Accept: */*" benches/load/callgrind.sh BIN   # a client's own fields
#   TRACING="{ sample_ratio: 0 }" DYE="" benches/load/callgrind.sh BIN   # one feature's cost:
#       the same binary with a part of the config changed (defaults: the load run's config)
#
# Per binary: an nginx upstream (1 worker) on loopback, the binary with the load run's config
# (one route, dye + 100% split, metrics, trace propagation at 1%), wrk -t1 -c$CONNS for
# $REQS_TIME against it under callgrind, then SIGINT. Prints Ir per request (total Ir over the
# requests wrk completed, start-up excluded by zeroing the counters after a warm-up) and writes
# the largest self costs beside it. Kernel work is not counted (callgrind sees user space
# only): the load run's CPU µs per request and its sys share cover that.
set -Eeuo pipefail

# What it runs, installed when missing (as run.sh does; root only).
missing=()
for tool in valgrind:valgrind nginx:nginx wrk:wrk curl:curl; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { echo "missing ${missing[*]}: run as root or install them" >&2; exit 1; }
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

REQS_TIME=${REQS_TIME:-8s}
CONNS=${CONNS:-4}
PINGORA_EXTRA=${PINGORA_EXTRA:-}
TRACING=${TRACING-"{ sample_ratio: 0.01 }"}
DYE=${DYE-"dye: { tags: { canary: stable } }"}
GATEWAY_EXTRA=${GATEWAY_EXTRA:-}
# HEADERS="User-Agent: wrk|Accept: */*": fields wrk adds to every request ('|' between them);
# a name written with capitals is kept in the case map (downstream/fields.rs).
WRK_HEADERS=()
if [[ -n ${HEADERS:-} ]]; then
    IFS='|' read -r -a fields <<<"$HEADERS"
    for f in "${fields[@]}"; do WRK_HEADERS+=(-H "$f"); done
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-callgrind.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    local url=$1 i
    for ((i = 0; i < 600; i++)); do
        curl -s -o /dev/null --max-time 2 "$url" && return 0
        sleep 0.2
    done
    echo "no answer from $url" >&2
    return 1
}

UP=$(free_port)
mkdir -p "$WORK/up"
cat >"$WORK/up/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/up/nginx.pid;
error_log $WORK/up/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$UP; location / { return 200 "stable\n"; } }
}
EOF
nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP/"

for bin in "$@"; do
    name=$(basename "$bin")
    dir=$WORK/$name
    mkdir -p "$dir/state"
    port=$(free_port)
    admin=$(free_port)
    if [[ ${NGINX:-0} == 1 ]]; then
        # nginx as the proxy, one process (no master: callgrind sees the worker), configured as
        # in run.sh (a keep-alive upstream pool, the tag header mapped to the group).
        cat >"$dir/nginx.conf" <<EOF
master_process off;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream stable { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
    map \$http_x_env_tag \$backend { default stable; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://\$backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
        cmd=("$bin" -p "$dir" -c "$dir/nginx.conf")
    elif [[ ${BARE:-0} == 1 ]]; then
        cmd=("$bin" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$UP" --threads 2 --run-dir "$dir")
    else
        cat >"$dir/gateway.yaml" <<EOF
listen: ["127.0.0.1:$port"]
admin: { listen: "127.0.0.1:$admin" }
routes: routes.yaml
state_dir: $dir/state
pingora: { threads: 2, pid_file: $dir/d.pid, upgrade_sock: $dir/d.sock $PINGORA_EXTRA }
${TRACING:+tracing: $TRACING}
$GATEWAY_EXTRA
EOF
        cat >"$dir/routes.yaml" <<EOF
upstreams:
  stable: { targets: ["127.0.0.1:$UP"] }
routes:
  - name: app
    $DYE
    split: [ { upstream: stable, weight: 100 } ]
EOF
        cmd=("$bin" run -c "$dir/gateway.yaml")
    fi
    RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
        --collect-atstart=yes "${cmd[@]}" >"$dir/log" 2>&1 &
    vg=$!
    PIDS+=("$vg")
    wait_http "http://127.0.0.1:$port/"
    # warm the pool, then count from zero
    wrk -t1 -c"$CONNS" -d2s "${WRK_HEADERS[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1
    callgrind_control -z "$vg" >/dev/null
    out=$(wrk -t1 -c"$CONNS" -d"$REQS_TIME" "${WRK_HEADERS[@]}" "http://127.0.0.1:$port/")
    callgrind_control -d "$vg" >/dev/null
    reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
    kill -INT "$vg" 2>/dev/null || true
    wait "$vg" 2>/dev/null || true
    # The dump after zeroing is the highest-numbered part file.
    part=$(ls -1v "$dir"/cg.out* | grep -v '^'"$dir"'/cg.out$' | tail -n 1)
    total=$(callgrind_annotate "$part" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(/,/, "", $1); print $1; exit }')
    echo "== $name: $reqs requests, $total Ir, $((total / reqs)) Ir/request"
    # The largest self costs. callgrind_annotate 3.19 also prints the thread-start chain
    # (clone .. task poll) and, in an LTO build, inlined callers with inclusive-looking costs,
    # so rows are not summed into components here; the total per request is the robust figure.
    callgrind_annotate --inclusive=no "$part" 2>/dev/null |
        grep -E '^ *[0-9,]+ \(' | grep -v 'PROGRAM TOTALS' |
        awk -v t="$total" '{ v = $1; gsub(/,/, "", v) } v < 0.5 * t' |
        sed 's#/root/.cargo/registry/src/[^/]*/##; s#/rustc/[0-9a-f]*/##' | sort -t'(' -k2 -rn |
        head -n 30 >"${TOP_DIR:-/tmp}/callgrind-top-$name.txt" || true
    echo "   top self costs: ${TOP_DIR:-/tmp}/callgrind-top-$name.txt"
    # KEEP=DIR keeps the counts for callgrind_annotate (e.g. --inclusive=yes, or two runs compared).
    if [[ -n ${KEEP:-} ]]; then
        mkdir -p "$KEEP"
        cp "$part" "$KEEP/callgrind-$name.out"
    fi
    rm -f "$dir"/cg.out*
done
