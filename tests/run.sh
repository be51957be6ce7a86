#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and property tests, end-to-end tests against the
# real dyegate binary and real upstreams on loopback. Installs what a fresh Debian machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v curl >/dev/null || missing+=(curl)
command -v cc >/dev/null || missing+=(build-essential)
# etcd-client (the etcd source) generates its gRPC code with protoc at build time; the fleet
# tests run a real etcd and write behind dyegate's back with etcdctl.
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
# The PROXY protocol tests put a real HAProxy (send-proxy, send-proxy-v2) in front of dyegate.
command -v haproxy >/dev/null || missing+=(haproxy)
# util-linux `script`: the admin commands run on a pseudo-terminal (tests/tooling/admin_cli.rs).
command -v script >/dev/null || missing+=(bsdutils)
# The DNS target tests run a real dnsmasq whose records they change (tests/support/dns.rs):
# dnsmasq-base is the binary alone, without the system service the dnsmasq package starts.
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
# The live view's tests (tests/admin/live_view.rs) drive a real headless browser: Debian's
# chromium and its chromedriver, from the same release so that their versions agree.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The toolbox checkers (tests/tooling/schema.rs, tests/tooling/deploy_kubernetes.rs, tests/tooling/deploy_observability.rs):
# promtool (Debian's prometheus), Python validators from PyPI and the Prometheus Operator models
# from npm, pinned, into target/toolbox; kubectl (its built-in kustomize) comes with the machine.
if ! command -v promtool >/dev/null; then
  echo "installing: prometheus (promtool)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
tools=()
python3 -c 'import ensurepip, venv' 2>/dev/null || tools+=(python3-venv)
command -v npm >/dev/null || tools+=(npm)
command -v man >/dev/null || tools+=(man-db)
if ((${#tools[@]})); then
  echo "installing: ${tools[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tools[@]}"
fi
toolbox=target/toolbox
# selenium drives chromium for the live view's tests (tests/admin/live_view.py).
if ! [[ -x $toolbox/venv/bin/check-jsonschema && -x $toolbox/venv/bin/kubernetes-validate ]] \
  || ! "$toolbox/venv/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$toolbox/venv"
  "$toolbox/venv/bin/pip" install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0 selenium==4.50.0
fi
if ! [[ -d $toolbox/node/node_modules/@kubernetes-models/prometheus-operator ]]; then
  mkdir -p "$toolbox/node"
  npm install --prefix "$toolbox/node" --silent --no-audit --no-fund @kubernetes-models/prometheus-operator@6.0.0
fi
if ! command -v kubectl >/dev/null; then
  echo "kubectl is missing (tests/tooling/deploy_kubernetes.rs renders the overlays with kubectl kustomize): install kubectl" >&2
  exit 1
fi

# tests/flake.sh installs through this script without running anything.
if [[ -n ${DYEGATE_RUN_INSTALL_ONLY:-} ]]; then exit 0; fi

# A test waits for the condition it asserts (tests/support/wait.rs polls; nothing else does),
# never for a fixed time: every other `sleep(` in tests/ says on the line above, in a
# `// time is tested: ...` comment, why time itself is what the test is about.
unexplained="$(find tests -name '*.rs' ! -path tests/support/wait.rs -print0 | sort -z | xargs -0 awk '
  FNR == 1 { prev = "" }
  /sleep\(/ && prev !~ /\/\/ time is tested: / { print FILENAME ":" FNR ": " $0 }
  { prev = $0 }')"
if [[ -n "$unexplained" ]]; then
  printf 'sleeps in tests/ without a "// time is tested: <why>" comment on the line above (wait for a condition instead: tests/support/wait.rs):\n%s\n' "$unexplained" >&2
  exit 1
fi

rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true

# The systemd unit, checked by systemd itself (binary paths swapped for one that exists here).
if command -v systemd-analyze >/dev/null; then
  unit="$(mktemp -d)/dyegate.service"
  sed 's#/usr/local/bin/dyegate#/bin/true#g' conf/dyegate.service >"$unit"
  # verify exits 0 on an unparsable directive (it only warns): any output is a failure.
  out="$(systemd-analyze verify "$unit" 2>&1)"
  if [[ -n "$out" ]]; then echo "conf/dyegate.service: $out" >&2; exit 1; fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace "$@"
