#!/usr/bin/env bash
# Measured limits at scale, one command: bash bench/scale.sh
# Installs wrk if needed, builds the release binary, starts PostgreSQL if it is down, and runs
# bench/scale.py: BENCH_N subscriptions (default 10,000,000), BENCH_D due (1,000,000); the seed,
# the sweep, the database's size per order and per 1,000,000 subscriptions a year, an export's
# memory, the API's rates and a replica's connections. Writes bench/results/scale-DATE-HHMM.md.
# Exits non-zero on a wrong count. See docs/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
source bench/prelude.sh
python3 bench/scale.py
