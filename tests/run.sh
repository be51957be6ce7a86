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
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
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
