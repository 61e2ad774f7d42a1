#!/usr/bin/env bash
# Peak memory of `subsave orders export` at N and 10×N orders (default 20,000 and 200,000):
# flat memory means the two peaks are close. Orders are made by bench/sweep.sh (a real sweep
# on PostgreSQL). Usage: bash bench/export.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
BIN="$CARGO_TARGET_DIR/release/subsave"
peak_rss() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
start = time.time()
with open(sys.argv[1], "wb") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f} MiB peak RSS, {time.time() - start:.2f} s")
PY
}
for n in "$N" "$((N * 10))"; do
  bash bench/sweep.sh "$n" 1000 >/dev/null
  export SUBSAVE_DATABASE__URL="postgres://postgres@127.0.0.1:5432/subsave_bench" RUST_LOG=warn
  for format in csv jsonl; do
    result=$(peak_rss "/tmp/subsave-export.$format" "$BIN" orders export --from 2026-01-01 --to 2026-12-31 --format "$format")
    rows=$(wc -l < "/tmp/subsave-export.$format")
    echo "orders: $n, format $format: $result, $rows lines written"
  done
done
