#!/usr/bin/env bash
# `dyegate check` on hostile routes files (docs/benchmarks.md, "Config input bounds"; how the
# bounds work: docs/security.md, "Config input"): deep nesting and 50 MB of garbage, three runs
# each, process start and file read included. DYEGATE=path picks the binary (default:
# the `bench` profile build, `cargo build --profile bench -p dyegate`, in target/release).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${DYEGATE:-target/release/dyegate}
[[ -x $B ]] || cargo build --profile bench -p dyegate --bin dyegate
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import os, random, sys
d = sys.argv[1]
random.seed(1)
n = 50_000_000
def w(name, text):
    open(os.path.join(d, name), 'w').write(text)
w('nested-5000.yaml', 'routes: ' + '[' * 5000 + ']' * 5000 + '\n')
w('nested-20000.yaml', 'routes: ' + '[' * 20000 + ']' * 20000 + '\n')
w('nested-100000.yaml', 'routes: ' + '[' * 100000 + ']' * 100000 + '\n')
w('map-20000.yaml', 'routes: ' + '{a: ' * 20000 + '}' * 20000 + '\n')
open(os.path.join(d, 'bytes.yaml'), 'wb').write(os.urandom(n))
punct = ''.join(random.choice('[]{}:,-?|>&*!#"\' \n') for _ in range(1_000_000))
w('punctuation.yaml', (punct * 50)[:n])
alpha = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-,'
letters = ''.join(random.choices(alpha, k=1_000_000))
w('letters.yaml', (letters * 50)[:n])
words = ''.join(random.choice(alpha + '  \n') for _ in range(1_000_000))
w('words.yaml', (words * 50)[:n])
w('routes-then-words.yaml', 'routes:\n' + (words * 50)[:n - 8])
w('routes-then-value.yaml', 'routes:\n  - name: ' + (letters * 50)[:n - 18])
PY
for f in nested-5000 nested-20000 nested-100000 map-20000 bytes punctuation letters words \
  routes-then-words routes-then-value; do
  ts=""
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    "$B" check "$dir/$f.yaml" >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    ts="$ts $(python3 -c "print(f'{$e - $s:.3f}')")"
  done
  printf '%-22s %10s bytes  seconds:%s\n' "$f" "$(stat -c %s "$dir/$f.yaml")" "$ts"
done
uptime
