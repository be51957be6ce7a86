#!/usr/bin/env bash
# Builds dyegate and runs it on conf/ together with two demo upstreams:
#   stable on 127.0.0.1:9001, canary on 127.0.0.1:9002, the gateway on :8080.
# Then:  curl localhost:8080/                          -> answered by stable
#        curl -H 'x-env-tag: canary' localhost:8080/   -> answered by canary
# Ctrl-C stops the gateway and the upstreams. Installs cmake (Pingora), protoc (etcd-client) and
# etcd (the fleet example) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${DYEGATE_BIN_DIR:-target/release}
if [ -z "${DYEGATE_BIN_DIR:-}" ]; then
  # cmake for Pingora, protoc for etcd-client's generated gRPC code; etcd and etcdctl to try
  # the fleet example of docs/fleet.md (source: etcd).
  if ! command -v cmake >/dev/null || ! command -v protoc >/dev/null || ! command -v etcd >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake curl protobuf-compiler etcd-server etcd-client
  fi
  cargo build --release -p dyegate -p dyegate-suite --bin dyegate --bin demo-upstream
fi

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$bin/demo-upstream" --listen 127.0.0.1:9001 --name stable & pids+=($!)
"$bin/demo-upstream" --listen 127.0.0.1:9002 --name canary & pids+=($!)

"$bin/dyegate" check -c conf/gateway.yaml
"$bin/dyegate" run -c conf/gateway.yaml
