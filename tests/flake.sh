#!/usr/bin/env bash
# Finds flaky tests by running, not by guessing: builds once, runs the whole suite N times and
# prints, for every test that ever failed, in how many runs it failed and its first failure
# message.
#
#   tests/flake.sh N [--load] [-- <args for cargo test, e.g. --test rollout>]
#
# --load keeps both cores busy with a CPU hog for the whole time (stress-ng from Debian, or a
# loop of sha256sum per core when stress-ng cannot be installed), as on a loaded CI machine.
# Logs of every run: target/flake/run-K.log. Exit status: 0 when no test failed in any run.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: tests/flake.sh N [--load] [-- cargo test args]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -ge 1 ]] || usage
runs=$1
shift
load=0
extra=()
while (($#)); do
  case $1 in
    --load) load=1 ;;
    --) shift; extra=("$@"); break ;;
    *) usage ;;
  esac
  shift
done

# What tests/run.sh installs (etcd, protoc, the toolbox checkers): run it once without tests
# would cost a full clippy, so the same installs are asked of it through its own check.
if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null || ! command -v promtool >/dev/null \
  || ! [[ -x target/toolbox/venv/bin/check-jsonschema ]]; then
  echo "flake.sh: installing the suite's tools through tests/run.sh (one run, no tests)" >&2
  DYEGATE_RUN_INSTALL_ONLY=1 ./tests/run.sh
fi

out=target/flake
rm -rf "$out"
mkdir -p "$out"
echo "flake.sh: building once"
cargo build --workspace --bins -q
cargo test --workspace --no-run -q "${extra[@]}" 2>"$out/build.log" || { cat "$out/build.log" >&2; exit 1; }

hog_pids=()
stop_hog() {
  local p
  for p in "${hog_pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  hog_pids=()
}
trap stop_hog EXIT
# A trapped signal would run the handler and go on: stop there (its runs too).
trap 'trap - INT TERM; stop_hog; kill 0 2>/dev/null; exit 143' INT TERM
if ((load)); then
  if ! command -v stress-ng >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null 2>&1 || true
  fi
  cores=$(nproc)
  if command -v stress-ng >/dev/null; then
    setsid stress-ng --cpu "$cores" --timeout 0 --quiet &
    hog_pids+=($!)
    echo "flake.sh: load: stress-ng --cpu $cores"
  else
    for ((c = 0; c < cores; c++)); do
      setsid sh -c 'while :; do sha256sum /dev/zero; done' >/dev/null 2>&1 &
      hog_pids+=($!)
    done
    echo "flake.sh: load: $cores x sha256sum /dev/zero"
  fi
fi

for ((k = 1; k <= runs; k++)); do
  start=$(date +%s)
  set +e
  cargo test --workspace --no-fail-fast "${extra[@]}" >"$out/run-$k.log" 2>&1
  rc=$?
  set -e
  failed=$(grep -c -E '^test .* \.\.\. FAILED$' "$out/run-$k.log" || true)
  echo "run $k/$runs: exit $rc, $failed failed, $(($(date +%s) - start)) s"
done
stop_hog

# Per test: the runs it failed in, and the first failure's message (the panic line and the
# message under it). A run that exited non-zero without a failed test (a build error, a
# crashed test binary) is reported as such.
python3 - "$out" "$runs" <<'PY'
import re, sys, pathlib
out, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
failed = {}   # "binary::test" -> [runs]
first = {}    # "binary::test" -> message
odd = []
for k in range(1, runs + 1):
    text = (out / f"run-{k}.log").read_text(errors="replace")
    binary, any_failed = "?", False
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s+Running (?:unittests )?(\S+) \(", line) or re.match(r"\s+Doc-tests (\S+)", line)
        if m:
            binary = m.group(1)
            continue
        m = re.match(r"^test (.*) \.\.\. FAILED$", line)
        if m:
            any_failed = True
            name = f"{binary}::{m.group(1)}"
            failed.setdefault(name, []).append(k)
            continue
        m = re.match(r"^---- (.*) stdout ----$", line)
        if m:
            name = f"{binary}::{m.group(1)}"
            if name not in first:
                body = []
                for l in lines[i + 1:]:
                    if l.startswith("---- ") or l == "failures:":
                        break
                    body.append(l)
                panic = [j for j, l in enumerate(body) if "panicked at" in l]
                msg = body[panic[0]:panic[0] + 3] if panic else body[-3:]
                first[name] = " | ".join(s.strip() for s in msg if s.strip())
    if not any_failed and re.search(r"^error: ", text, re.M):
        odd.append(k)
for name in sorted(failed, key=lambda n: (-len(failed[n]), n)):
    ks = failed[name]
    print(f"FLAKY {name}: failed {len(ks)}/{runs} runs ({', '.join(map(str, ks))})")
    print(f"      first: {first.get(name, '(no message captured)')[:600]}")
for k in odd:
    print(f"run {k}: cargo reported an error without a failed test (see {out}/run-{k}.log)")
total = sum(len(v) for v in failed.values())
print(f"flake.sh: {runs} runs, {total} test failures, {len(failed)} tests ever failed"
      + (f", {len(odd)} runs with other errors" if odd else ""))
sys.exit(1 if failed or odd else 0)
PY
