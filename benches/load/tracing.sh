#!/usr/bin/env bash
# What tracing costs under load: benches/load/run.sh on dyegate alone, through its
# DYEGATE_GATEWAY_EXTRA hook, with tracing off (no endpoint: propagation only), sampling 1% and
# sampling 100%, exporting over OTLP/gRPC to a local collector (otlp-sink, counts spans, keeps
# none). The three configurations alternate, one run.sh round each, REPS times, so that drift of
# the box hits all three alike; the table gives medians and ratios to "off".
#
#   benches/load/tracing.sh                          # REPS=3, run.sh defaults (-d10s, warm-up 3s)
#   REPS=5 DURATION=5s WARMUP=2s benches/load/tracing.sh
#   SINK=closed benches/load/tracing.sh              # export to a closed port instead (spans dropped)
#
# Settings: REPS (3), SINK (sink | closed), and everything run.sh reads (DURATION, WARMUP, ...).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
SINK=${SINK:-sink}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/dyegate-trace-load.XXXXXX")
SINK_PID=

log() { printf '[tracing] %s\n' "$*" >&2; }
cleanup() {
    if [[ -n $SINK_PID ]] && kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

cd "$ROOT"
if [[ ${SKIP_BUILD:-0} == 0 ]]; then
    cargo build --release -p dyegate --bin dyegate -p dyegate-suite --bin otlp-sink
fi

# A port for the collector (the sink binds it; "closed" leaves it unbound).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [[ $SINK == sink ]]; then
    target/release/otlp-sink --listen "127.0.0.1:$port" --protocol grpc >"$OUT/sink.log" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        grep -q listening "$OUT/sink.log" 2>/dev/null && break
        sleep 0.1
    done
    log "otlp-sink on 127.0.0.1:$port (pid $SINK_PID)"
else
    log "exporting to 127.0.0.1:$port, where nothing listens"
fi

declare -A EXTRA=(
    [off]=""
    [1pct]="tracing: { endpoint: \"http://127.0.0.1:$port\", sample_ratio: 0.01 }"
    [100pct]="tracing: { endpoint: \"http://127.0.0.1:$port\", sample_ratio: 1 }"
)
CONFIGS=(off 1pct 100pct)

for ((rep = 1; rep <= REPS; rep++)); do
    for cfg in "${CONFIGS[@]}"; do
        log "rep $rep/$REPS: tracing $cfg"
        RESULTS_DIR="$OUT/$cfg" PROXIES=dyegate ROUNDS=1 SKIP_BUILD=1 SCENARIOS=c64 DYEGATE_TRACING= \
            DYEGATE_GATEWAY_EXTRA="${EXTRA[$cfg]}" benches/load/run.sh >"$OUT/run-$rep-$cfg.log" 2>&1 ||
            {
                tail -n 30 "$OUT/run-$rep-$cfg.log" >&2
                exit 1
            }
    done
done

# Medians of req/s and proxy CPU per request over the reps, per configuration.
for cfg in "${CONFIGS[@]}"; do
    awk -F'\t' -v cfg="$cfg" '
        FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["proxy"] == "dyegate" && $col["pass"] == "c64" {
            print cfg, $col["rps"], $col["proxy_cpu_us_per_req"], $col["p99_us"], $col["errors"]
        }' $(ls "$OUT/$cfg"/*.tsv | grep -v telemetry)
done >"$OUT/all.txt"

awk -v order="${CONFIGS[*]}" '
    function median(list,   a, n, i, j, v) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) {
            v = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]
            a[j + 1] = v
        }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { rps[$1] = rps[$1] " " $2; cpu[$1] = cpu[$1] " " $3; p99[$1] = p99[$1] " " $4; err[$1] += $5; runs[$1]++ }
    END {
        printf "%-8s %4s %10s %8s %10s %9s %9s %6s\n", "tracing", "runs", "req/s", "vs off", "cpu/req", "vs off", "p99", "errors"
        n = split(order, names, " ")
        r0 = median(rps["off"]); c0 = median(cpu["off"])
        for (i = 1; i <= n; i++) {
            k = names[i]
            r = median(rps[k]); c = median(cpu[k])
            printf "%-8s %4d %10.0f %7.3fx %8.2fus %+8.1f%% %7.0fus %6d\n", k, runs[k], r, r / r0, c,
                100 * (c - c0) / c0, median(p99[k]), err[k]
        }
    }' "$OUT/all.txt" | tee "$OUT/table.txt"
if [[ -n $SINK_PID ]]; then
    log "collector: $(tail -n 1 "$OUT/sink.log")"
fi
log "raw: $OUT"
