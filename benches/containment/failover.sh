#!/usr/bin/env bash
# Figures for issue 11 (contain a failing canary), measured on this machine with the release
# build: kill the canary under wrk load -> time to first fallback, failed requests, recovery;
# the request-path cost of health/outlier bookkeeping (req/s with and without); RSS and CPU with
# 1,000 health-checked targets. Prints one line per figure; see README.md beside it.
#
#   benches/containment/failover.sh            # all
#   FIGURES="lane" benches/containment/failover.sh
#
# Needs wrk, curl and python3 (apt-get install -y wrk curl). Every port is a free one picked at
# start (the machine is shared: fixed ports were found taken by other people's servers).
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GW=$(free_port); ADMIN=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port); P4=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

upstream() { # name listen -> pid in $last
  "$UP" --listen "$2" --name "$1" >"$work/$1.log" 2>&1 &
  last=$!; pids+=("$last")
  for _ in $(seq 100); do
    [[ "$(curl -s -o /dev/null -w '%header{x-upstream}' "http://$2/")" == "$1" ]] && return
    sleep 0.05
  done
  echo "upstream $1 did not start on $2: $(cat "$work/$1.log")" >&2; exit 1
}

gateway() { # routes-file [extra gateway.yaml line] -> pid in $gw
  cat >"$work/gateway.yaml" <<YAML
${2:-}
listen: ["127.0.0.1:$GW"]
admin: { listen: "127.0.0.1:$ADMIN" }
routes: $1
state_dir: $work/state
reload: { watch: false, audit_log: $work/state/audit.log }
pingora: { threads: 2, pid_file: $work/dyegate.pid, upgrade_sock: $work/up.sock }
YAML
  RUST_LOG=error "$BIN" run -c "$work/gateway.yaml" >"$work/gw.log" 2>&1 &
  gw=$!; pids+=("$gw")
  for _ in $(seq 200); do
    [[ -n "$(curl -s -o /dev/null -w '%header{x-upstream}' "http://127.0.0.1:$GW/")" ]] && return
    sleep 0.05
  done
  echo "gateway did not start: $(tail -5 "$work/gw.log")" >&2; exit 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

cat >"$work/tagged.lua" <<'LUA'
wrk.headers["x-env-tag"] = "canary"
LUA

# From the access log (one JSON line per request, millisecond times): after the kill at $2 and
# the restart at $3 (epoch ms), the first fallback, the failed answers in between, the first
# answer by the canary again.
failover_figures() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys, datetime
log, kill, restart = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def ms(t): return int(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)
recs = sorted(((ms(r["time"]), r) for r in map(json.loads, open(log))), key=lambda x: x[0])
first_fb = next((t for t, r in recs if t >= kill and r["decision"] == "fallback_unhealthy"), None)
failed = [r for t, r in recs if t >= kill and r["status"] >= 500]
last_failed = max((t for t, r in recs if t >= kill and r["status"] >= 500), default=None)
back = next((t for t, r in recs if t >= restart and r["upstream_group"] == "canary" and r["status"] == 200), None)
total = sum(1 for t, r in recs)
print(f"lane killed: first fallback {first_fb - kill if first_fb else None} ms after the kill, "
      f"{len(failed)} failed answers (last {last_failed - kill if last_failed else None} ms after the kill; "
      f"statuses {sorted(set(r['status'] for r in failed))}), of {total} requests; "
      f"back on the canary {back - restart if back else None} ms after the restart")
PY
}

# wrk's failed requests: non-2xx answers plus socket errors.
failed() {
  local non2xx errs
  non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$1" | grep -o '[0-9]*$' || echo 0)
  errs=$(grep -o 'Socket errors: .*' "$1" | grep -o '[0-9]\+' | paste -sd+ | bc 2>/dev/null || echo 0)
  echo $(( ${non2xx:-0} + ${errs:-0} ))
}

lane() { # the whole canary lane (one target) is killed under tagged load, then restarted
  upstream stable 127.0.0.1:$P1; upstream canary 127.0.0.1:$P2; canary=$last
  cat >"$work/routes.yaml" <<YAML
upstreams:
  stable: { targets: ["127.0.0.1:$P1"] }
  canary:
    targets: ["127.0.0.1:$P2"]
    health: { http: { path: /healthz }, interval_ms: 1000, timeout_ms: 500, unhealthy_after: 2, healthy_after: 2 }
    outlier: { consecutive_failures: 5, eject_ms: 10000 }
routes:
  - name: shop
    retries: { attempts: 1, on: [connect_failure, reset, timeout, "502", "503"] }
    dye: { tags: { canary: canary }, on_unhealthy_tag: base }
    split: [{ upstream: stable, weight: 1 }]
YAML
  gateway "$work/routes.yaml" "access_log: { path: $work/access.log }"
  wrk -t2 -c16 -d"${DURATION}s" -s "$work/tagged.lua" http://127.0.0.1:$GW/ >"$work/wrk-lane.txt" &
  wrk_pid=$!
  sleep 5
  t0=$(date +%s%3N); stop "$canary"
  sleep 7
  upstream canary 127.0.0.1:$P2; t1=$(date +%s%3N)
  wait "$wrk_pid"
  sleep 1
  failover_figures "$work/access.log" "$t0" "$t1"
  total=$(grep -o '[0-9]* requests in' "$work/wrk-lane.txt" | grep -o '^[0-9]*')
  echo "  wrk: $(failed "$work/wrk-lane.txt") failed of ${total}; $(grep 'Latency ' "$work/wrk-lane.txt" | tr -s ' ')"
  ejections=$(curl -s http://127.0.0.1:$ADMIN/metrics | grep '^dyegate_ejections_total' || true)
  echo "  ${ejections:-no ejection}"
  stop "$gw"; cleanup; pids=()
}

target() { # one of two canary targets is killed under tagged load (retries on)
  upstream stable 127.0.0.1:$P1; upstream canary-a 127.0.0.1:$P2; upstream canary-b 127.0.0.1:$P3; victim=$last
  cat >"$work/routes.yaml" <<YAML
upstreams:
  stable: { targets: ["127.0.0.1:$P1"] }
  canary:
    targets: ["127.0.0.1:$P2", "127.0.0.1:$P3"]
    health: { http: { path: /healthz }, interval_ms: 1000, timeout_ms: 500 }
    outlier: { consecutive_failures: 5, eject_ms: 10000 }
routes:
  - name: shop
    retries: { attempts: 1, on: [connect_failure, reset, timeout, "502", "503"] }
    dye: { tags: { canary: canary } }
    split: [{ upstream: stable, weight: 1 }]
YAML
  gateway "$work/routes.yaml"
  wrk -t2 -c16 -d"${DURATION}s" -s "$work/tagged.lua" http://127.0.0.1:$GW/ >"$work/wrk-target.txt" &
  wrk_pid=$!
  sleep 5; stop "$victim"; sleep 7; upstream canary-b 127.0.0.1:$P3
  wait "$wrk_pid"
  total=$(grep -o '[0-9]* requests in' "$work/wrk-target.txt" | grep -o '^[0-9]*')
  retries=$(curl -s http://127.0.0.1:$ADMIN/metrics | { grep '^dyegate_retries_total' || true; } | awk '{s+=$2} END {print s+0}')
  echo "one of two canary targets killed: wrk $(failed "$work/wrk-target.txt") failed of ${total}, ${retries} retries; $(grep 'Latency ' "$work/wrk-target.txt" | tr -s ' ')"
  stop "$gw"; cleanup; pids=()
}

cost() { # req/s with and without health, outlier, breaker and retries on the group
  upstream stable 127.0.0.1:$P1
  cat >"$work/routes-plain.yaml" <<YAML
upstreams:
  stable: { targets: ["127.0.0.1:$P1"] }
routes:
  - { name: shop, retries: { attempts: 0 }, split: [{ upstream: stable, weight: 1 }] }
YAML
  cat >"$work/routes-contained.yaml" <<YAML
upstreams:
  stable:
    targets: ["127.0.0.1:$P1"]
    health: { http: { path: /healthz }, interval_ms: 1000 }
    outlier: { consecutive_failures: 5 }
    max_in_flight: 100000
routes:
  - { name: shop, retries: { attempts: 1, on: [connect_failure, reset, "503"] }, split: [{ upstream: stable, weight: 1 }] }
YAML
  for r in $(seq "$ROUNDS"); do
    for kind in plain contained; do
      gateway "$work/routes-$kind.yaml"
      wrk -t2 -c64 -d3s http://127.0.0.1:$GW/ >/dev/null
      rps=$(wrk -t2 -c64 -d10s http://127.0.0.1:$GW/ | awk '/Requests\/sec/{print $2}')
      echo "cost round $r $kind: $rps req/s"
      stop "$gw"
    done
  done
  cleanup; pids=()
}

rss() { # RSS and idle CPU with 1,000 health-checked targets (127.0.x.y on one port, one upstream)
  "$UP" --listen 0.0.0.0:$P4 --name many >"$work/many.log" 2>&1 & pids+=("$!")
  sleep 0.5
  for kind in none health; do
    {
      echo "upstreams:"
      echo "  stable: { targets: [\"127.0.0.1:$P4\"] }"
      echo "  many:"
      echo "    targets:"
      for i in $(seq 0 999); do echo "      - \"127.0.$(( 1 + i / 250 )).$(( 1 + i % 250 )):$P4\""; done
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
    checks=$(curl -s http://127.0.0.1:$ADMIN/metrics | { grep '^dyegate_health_checks_total' || true; } | awk '{s+=$2} END {print s+0}')
    healthy=$(curl -s http://127.0.0.1:$ADMIN/metrics | { grep '^dyegate_target_healthy' || true; } | awk '{s+=$2} END {print s+0}')
    echo "1,000 targets, $kind: RSS ${rss_kb} kB, idle CPU $(( (t1 - t0) * 10 )) ms per 10 s ($(getconf CLK_TCK) ticks/s), ${checks} checks so far, ${healthy} targets healthy"
    stop "$gw"
  done
  cleanup; pids=()
}

for f in $FIGURES; do "$f"; done
echo "work dir: $work"
