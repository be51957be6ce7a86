#!/usr/bin/env bash
# TLS termination: dyegate vs nginx with the same certificate, in one run, driven by h2load.
#
# One nginx upstream (plain HTTP, `return 200`) sits behind both proxies. Each proxy terminates TLS
# with the same ECDSA P-256 certificate (made here with openssl) and proxies to that upstream.
# Two scenarios per proxy, interleaved ROUNDS times, medians printed with the dyegate/nginx ratio:
#   keepalive  h2load -c CONNS -n KEEPALIVE_N over h2 (ALPN): requests/s on established connections
#   handshake  h2load --h1 -c CONNS -n HANDSHAKE_N with `connection: close`: one TLS handshake per
#              request, so requests/s = handshakes/s
#
#   benches/tls/run.sh                                        # release build (cargo build --release)
#   DYEGATE_BIN=target/debug/dyegate SKIP_BUILD=1 ROUNDS=1 KEEPALIVE_N=2000 HANDSHAKE_N=300 \
#     benches/tls/run.sh                                      # smoke run on a debug build
#
# Settings (environment):
#   ROUNDS=3 CONNS=64 KEEPALIVE_N=200000 HANDSHAKE_N=20000 PROXY_THREADS=2
#   DYEGATE_BIN (default: $CARGO_TARGET_DIR or target/, release), SKIP_BUILD=0, SKIP_INSTALL=0
#   KEEP_WORK=0   1: keep the temp dir (configs, logs, raw h2load output)

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
KEEPALIVE_N=${KEEPALIVE_N:-200000}
HANDSHAKE_N=${HANDSHAKE_N:-20000}
PROXY_THREADS=${PROXY_THREADS:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DYEGATE_BIN=${DYEGATE_BIN:-$TARGET_DIR/release/dyegate}
SKIP_BUILD=${SKIP_BUILD:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
KEEP_WORK=${KEEP_WORK:-0}
NAME=bench.example.com

if [[ $SKIP_INSTALL != 1 ]]; then
    missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v h2load >/dev/null || missing+=(nghttp2-client)
    command -v openssl >/dev/null || missing+=(openssl)
    if ((${#missing[@]})); then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}"
    fi
fi
if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p dyegate)
fi

WORK=$(mktemp -d /tmp/dyegate-tls-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    if [[ $KEEP_WORK == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}

UP=$(free_port) NGINX=$(free_port) DYE=$(free_port) DYE_TLS=$(free_port) ADMIN=$(free_port)

# The certificate both proxies serve, and the CA h2load does not check (it does not verify).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -keyout "$WORK/bench.key" -out "$WORK/bench.pem" -subj "/CN=$NAME" \
    -addext "subjectAltName=DNS:$NAME" 2>/dev/null

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<CONF
worker_processes $PROXY_THREADS;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
    keepalive_requests 1000000;
    upstream app { server 127.0.0.1:$UP; keepalive 128; }
    server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } }
    server {
        listen 127.0.0.1:$NGINX ssl http2;   # nginx 1.22 (Debian 12); 1.25+ wants "http2 on;"
        ssl_certificate $WORK/bench.pem;
        ssl_certificate_key $WORK/bench.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx/error.log"
wait_port "$UP"
wait_port "$NGINX"

cat >"$WORK/routes.yaml" <<CONF
upstreams:
  app: { targets: ["127.0.0.1:$UP"] }
routes:
  - name: all
    split: [{ upstream: app, weight: 1 }]
CONF
cat >"$WORK/gateway.yaml" <<CONF
listen: ["127.0.0.1:$DYE"]
admin: { listen: "127.0.0.1:$ADMIN" }
routes: routes.yaml
state_dir: ./state
pingora: { threads: $PROXY_THREADS, pid_file: ./dyegate.pid, upgrade_sock: ./dyegate.sock, grace_period_seconds: 1 }
limits: { keepalive_requests: 4000000000, max_connections: 100000 }
tls:
  listen: ["127.0.0.1:$DYE_TLS"]
  certificates: [{ cert: bench.pem, key: bench.key }]
CONF
(cd "$WORK" && RUST_LOG=error exec "$DYEGATE_BIN" run -c gateway.yaml >"$WORK/dyegate.log" 2>&1) &
PIDS+=($!)
wait_port "$DYE_TLS"

# h2load's "finished in ..., N req/s" figure, after checking every request succeeded.
run_h2load() {
    local out=$1
    shift
    h2load "$@" >"$out" 2>&1 || true
    local total ok
    read -r total ok < <(sed -nE 's/^requests: ([0-9]+) total, [0-9]+ started, [0-9]+ done, ([0-9]+) succeeded.*/\1 \2/p' "$out")
    if [[ -z ${total:-} || $total != "$ok" ]]; then
        echo "h2load failed ($*):" >&2
        cat "$out" >&2
        return 1
    fi
    sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$out"
}

# dyegate's own count of completed handshakes (checks that the handshake scenario really makes
# one connection per request).
handshakes_ok() {
    curl -s "http://127.0.0.1:$ADMIN/metrics" |
        sed -nE 's/^dyegate_tls_handshakes_total\{result="ok"\} ([0-9.e+]+)$/\1/p'
}

declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    for proxy in dyegate nginx; do
        port=$DYE_TLS
        [[ $proxy == nginx ]] && port=$NGINX
        # By address: no SNI, each proxy's one (default) certificate.
        url="https://127.0.0.1:$port/"
        before=$(handshakes_ok)
        ka=$(run_h2load "$WORK/$proxy-keepalive-$round.txt" -c "$CONNS" -n "$KEEPALIVE_N" -m 10 "$url")
        hs=$(run_h2load "$WORK/$proxy-handshake-$round.txt" --h1 -c "$CONNS" -n "$HANDSHAKE_N" \
            -H 'connection: close' "$url")
        if [[ $proxy == dyegate ]]; then
            made=$(echo "$(handshakes_ok) - $before" | bc)
            echo "dyegate: $made TLS handshakes for $CONNS + $HANDSHAKE_N connections"
        fi
        RESULTS[$proxy-keepalive]+="$ka "
        RESULTS[$proxy-handshake]+="$hs "
        printf 'round %s %-8s keepalive h2 %10s req/s   new connections %10s handshakes/s\n' \
            "$round" "$proxy" "$ka" "$hs"
    done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
printf '%-28s %12s %12s %8s\n' "median of $ROUNDS" dyegate nginx ratio
for s in keepalive handshake; do
    d=$(echo "${RESULTS[dyegate-$s]}" | median)
    n=$(echo "${RESULTS[nginx-$s]}" | median)
    label="keep-alive h2 req/s"
    [[ $s == handshake ]] && label="new-connection handshakes/s"
    printf '%-28s %12.0f %12.0f %8.2f\n' "$label" "$d" "$n" "$(echo "$d / $n" | bc -l)"
done
echo "h2load -c $CONNS; keep-alive: -n $KEEPALIVE_N -m 10 over h2; handshakes: --h1 -n $HANDSHAKE_N, connection: close"
