#!/usr/bin/env bash
# Builds the Debian package: target/debian/dyegate_<version>_<arch>.deb.
#   ./deploy/debian/build-deb.sh        (installs cargo-deb from crates.io when missing)
# It installs /usr/bin/dyegate, /etc/dyegate/{gateway,routes}.yaml (conffiles; gateway.yaml with
# the systemd unit's paths), the hardened unit dyegate.service (not enabled), bash/zsh/fish
# completions, man pages and the JSON Schemas.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo build --release -p dyegate --bin dyegate
bin=target/release/dyegate
assets=target/assets
rm -rf "$assets" && mkdir -p "$assets/completions" "$assets/man" "$assets/systemd"
"$bin" completions bash >"$assets/completions/dyegate.bash"
"$bin" completions zsh >"$assets/completions/_dyegate"
"$bin" completions fish >"$assets/completions/dyegate.fish"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
# The unit as shipped in conf/ runs /usr/local/bin/dyegate (a manual install); the package's is /usr/bin.
sed 's#/usr/local/bin/dyegate#/usr/bin/dyegate#g' conf/dyegate.service >"$assets/systemd/dyegate.service"
# The example routes.yaml names its schema where the package puts it.
sed 's#\$schema=schema/#$schema=/usr/share/dyegate/schema/#' conf/routes.yaml >"$assets/routes.yaml"
# The release profile keeps debug info (profiling); the package ships the binary stripped.
cargo deb -p dyegate --no-build --strip
