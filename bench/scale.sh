#!/usr/bin/env bash
# Measured limits at scale, one command: bash bench/scale.sh
# Installs wrk if needed, builds the release binary, starts PostgreSQL if it is down, and runs
# bench/scale.py: BENCH_N subscriptions (default 10,000,000), BENCH_D due (1,000,000); the seed,
# the sweep, the database's size per order and per 1,000,000 subscriptions a year, an export's
# memory, the API's rates and a replica's connections. Writes bench/results/scale-DATE.md.
# Exits non-zero on a wrong count. See docs/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
# BENCH_SUBSAVE_BIN picks another build (CI's smoke run uses the debug build it already has).
if [ -z "${BENCH_SUBSAVE_BIN:-}" ]; then
  cargo build --release --locked --quiet
  export BENCH_SUBSAVE_BIN="$CARGO_TARGET_DIR/release/subsave"
fi
python3 bench/scale.py
