#!/usr/bin/env bash
# The console's overview on a large database, one command: bash bench/console.sh [N]
# Builds the release binary (or takes BENCH_SUBSAVE_BIN), starts PostgreSQL if it is down, and
# runs bench/console.py: N subscriptions (default 1,000,000) with their events, a quarter of
# them billed by a real tick, then the overview's first and kept views over HTTP. Writes
# bench/results/console-DATE-HHMM.md. Exits non-zero on a wrong count. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/prelude.sh
python3 bench/console.py "$@"
