#!/usr/bin/env bash
# Figures for issue 11 (contain a failing canary), measured on this machine with the release
# build: kill the canary under wrk load -> time to first fallback, failed requests, recovery;
# the request-path cost of health/outlier bookkeeping (req/s with and without); RSS and CPU with
# 1,000 health-checked targets. Prints one line per figure; see README.md beside it.
#
#   benches/containment/failover.sh            # all
#   FIGURES="lane" benches/containment/failover.sh
#
# Needs wrk and curl (apt-get install -y wrk curl). Ports 18080-18090, 19001-19004 on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
FIGURES="${FIGURES:-lane target cost rss}"
DURATION="${DURATION:-20}"
ROUNDS="${ROUNDS:-3}"
BIN=target/release/dyegate
UP=target/release/demo-upstream
[[ -x $BIN && -x $UP ]] || cargo build --release -p dyegate --bin dyegate -p dyegate-suite --bin demo-upstream
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

upstream() { # name listen -> pid in $last
  "$UP" --listen "$2" --name "$1" >"$work/$1.log" 2>&1 &
  last=$!; pids+=("$last")
  for _ in $(seq 100); do curl -s -o /dev/null "http://$2/" && return; sleep 0.05; done
}

gateway() { # routes-file -> pid in $gw
  cat >"$work/gateway.yaml" <<YAML
listen: ["127.0.0.1:18080"]
admin: { listen: "127.0.0.1:18090" }
routes: $1
state_dir: $work/state
reload: { watch: false, audit_log: $work/state/audit.log }
pingora: { threads: 2, pid_file: $work/dyegate.pid, upgrade_sock: $work/up.sock }
YAML
  RUST_LOG=error "$BIN" run -c "$work/gateway.yaml" >"$work/gw.log" 2>&1 &
  gw=$!; pids+=("$gw")
  for _ in $(seq 200); do curl -s -o /dev/null http://127.0.0.1:18080/ && return; sleep 0.05; done
  echo "gateway did not start: $(tail -5 "$work/gw.log")" >&2; exit 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

cat >"$work/tagged.lua" <<'LUA'
wrk.headers["x-env-tag"] = "canary"
LUA

# Polls tagged requests every 5 ms from $1 (epoch ms) for $2 seconds; prints "ms upstream".
poll() {
  local end=$(( $(date +%s%3N) + $2 * 1000 ))
  while (( $(date +%s%3N) < end )); do
    u=$(curl -s -m 1 -o /dev/null -w '%header{x-upstream}' -H 'x-env-tag: canary' http://127.0.0.1:18080/ 2>/dev/null || true)
    echo "$(( $(date +%s%3N) - $1 )) ${u:-error}"
    sleep 0.005
  done
}

# wrk's failed requests: non-2xx answers plus socket errors.
failed() {
  local non2xx errs
  non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$1" | grep -o '[0-9]*$' || echo 0)
  errs=$(grep -o 'Socket errors: .*' "$1" | grep -o '[0-9]\+' | paste -sd+ | bc 2>/dev/null || echo 0)
  echo $(( ${non2xx:-0} + ${errs:-0} ))
}

lane() { # the whole canary lane (one target) is killed under tagged load, then restarted
  upstream stable 127.0.0.1:19001; upstream canary 127.0.0.1:19002; canary=$last
  cat >"$work/routes.yaml" <<YAML
upstreams:
  stable: { targets: ["127.0.0.1:19001"] }
  canary:
    targets: ["127.0.0.1:19002"]
    health: { http: { path: /healthz }, interval_ms: 1000, timeout_ms: 500, unhealthy_after: 2, healthy_after: 2 }
    outlier: { consecutive_failures: 5, eject_ms: 10000 }
routes:
  - name: shop
    retries: { attempts: 1, on: [connect_failure, reset, timeout, "502", "503"] }
    dye: { tags: { canary: canary }, on_unhealthy_tag: base }
    split: [{ upstream: stable, weight: 1 }]
YAML
  gateway "$work/routes.yaml"
  wrk -t2 -c32 -d"${DURATION}s" -s "$work/tagged.lua" http://127.0.0.1:18080/ >"$work/wrk-lane.txt" &
  wrk_pid=$!
  sleep 5
  t0=$(date +%s%3N); stop "$canary"
  poll "$t0" 6 >"$work/poll-down.txt"
  upstream canary 127.0.0.1:19002; t1=$(date +%s%3N)
  poll "$t1" 6 >"$work/poll-up.txt"
  wait "$wrk_pid"
  first_stable=$(awk '$2=="stable"{print $1; exit}' "$work/poll-down.txt")
  back=$(awk '$2=="canary"{print $1; exit}' "$work/poll-up.txt")
  total=$(grep -o '[0-9]* requests in' "$work/wrk-lane.txt" | grep -o '^[0-9]*')
  echo "lane killed: first fallback after ${first_stable} ms, back on the canary ${back} ms after restart; wrk: $(failed "$work/wrk-lane.txt") failed of ${total}"
  ejections=$(curl -s http://127.0.0.1:18090/metrics | grep '^dyegate_ejections_total' || true)
  echo "  ${ejections:-no ejection}"
  stop "$gw"; cleanup; pids=()
}

target() { # one of two canary targets is killed under tagged load (retries on)
  upstream stable 127.0.0.1:19001; upstream canary-a 127.0.0.1:19002; upstream canary-b 127.0.0.1:19003; victim=$last
  cat >"$work/routes.yaml" <<YAML
upstreams:
  stable: { targets: ["127.0.0.1:19001"] }
  canary:
    targets: ["127.0.0.1:19002", "127.0.0.1:19003"]
    health: { http: { path: /healthz }, interval_ms: 1000, timeout_ms: 500 }
    outlier: { consecutive_failures: 5, eject_ms: 10000 }
routes:
  - name: shop
    retries: { attempts: 1, on: [connect_failure, reset, timeout, "502", "503"] }
    dye: { tags: { canary: canary } }
    split: [{ upstream: stable, weight: 1 }]
YAML
  gateway "$work/routes.yaml"
  wrk -t2 -c32 -d"${DURATION}s" -s "$work/tagged.lua" http://127.0.0.1:18080/ >"$work/wrk-target.txt" &
  wrk_pid=$!
  sleep 5; stop "$victim"; sleep 7; upstream canary-b 127.0.0.1:19003
  wait "$wrk_pid"
  total=$(grep -o '[0-9]* requests in' "$work/wrk-target.txt" | grep -o '^[0-9]*')
  retries=$(curl -s http://127.0.0.1:18090/metrics | grep '^dyegate_retries_total' | awk '{s+=$2} END {print s+0}')
  echo "one of two canary targets killed: wrk $(failed "$work/wrk-target.txt") failed of ${total}, ${retries} retries"
  stop "$gw"; cleanup; pids=()
}

cost() { # req/s with and without health, outlier, breaker and retries on the group
  upstream stable 127.0.0.1:19001
  plain='upstreams:\n  stable: { targets: ["127.0.0.1:19001"] }\nroutes:\n  - { name: shop, retries: { attempts: 0 }, split: [{ upstream: stable, weight: 1 }] }\n'
  contained='upstreams:\n  stable:\n    targets: ["127.0.0.1:19001"]\n    health: { http: { path: /healthz }, interval_ms: 1000 }\n    outlier: { consecutive_failures: 5 }\n    max_in_flight: 100000\nroutes:\n  - { name: shop, retries: { attempts: 1, on: [connect_failure, reset, "503"] }, split: [{ upstream: stable, weight: 1 }] }\n'
  for r in $(seq "$ROUNDS"); do
    for kind in plain contained; do
      printf '%b' "${!kind}" >"$work/routes-$kind.yaml"
      gateway "$work/routes-$kind.yaml"
      wrk -t2 -c64 -d3s http://127.0.0.1:18080/ >/dev/null
      rps=$(wrk -t2 -c64 -d10s http://127.0.0.1:18080/ | awk '/Requests\/sec/{print $2}')
      echo "cost round $r $kind: $rps req/s"
      stop "$gw"
    done
  done
  cleanup; pids=()
}

rss() { # RSS and idle CPU with 1,000 health-checked targets (127.0.x.y:19001, one upstream)
  "$UP" --listen 0.0.0.0:19004 --name many >"$work/many.log" 2>&1 & pids+=("$!")
  sleep 0.5
  for kind in none health; do
    {
      echo "upstreams:"
      echo "  stable: { targets: [\"127.0.0.1:19004\"] }"
      echo "  many:"
      echo "    targets:"
      for i in $(seq 0 999); do echo "      - \"127.0.$(( 1 + i / 250 )).$(( 1 + i % 250 )):19004\""; done
      [[ $kind == health ]] && echo "    health: { http: { path: /healthz }, interval_ms: 1000, timeout_ms: 500 }" && echo "    outlier: { consecutive_failures: 5 }"
      echo "routes:"
      echo "  - { name: shop, dye: { tags: { many: many } }, split: [{ upstream: stable, weight: 1 }] }"
    } >"$work/routes-rss-$kind.yaml"
    gateway "$work/routes-rss-$kind.yaml"
    sleep 5
    t0=$(awk '{print $14+$15}' "/proc/$gw/stat")
    sleep 10
    t1=$(awk '{print $14+$15}' "/proc/$gw/stat")
    rss_kb=$(awk '/VmRSS/{print $2}' "/proc/$gw/status")
    checks=$(curl -s http://127.0.0.1:18090/metrics | grep '^dyegate_health_checks_total' | awk '{s+=$2} END {print s+0}')
    healthy=$(curl -s http://127.0.0.1:18090/metrics | grep '^dyegate_target_healthy' | awk '{s+=$2} END {print s+0}')
    echo "1,000 targets, $kind: RSS ${rss_kb} kB, idle CPU $(( (t1 - t0) * 10 )) ms per 10 s ($(getconf CLK_TCK) ticks/s), ${checks} checks so far, ${healthy} targets healthy"
    stop "$gw"
  done
  cleanup; pids=()
}

for f in $FIGURES; do "$f"; done
echo "work dir: $work"
