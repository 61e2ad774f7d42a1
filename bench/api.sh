#!/usr/bin/env bash
# The API benchmark, one command: bash bench/api.sh
# Installs wrk if needed, builds the release binary, starts PostgreSQL if it is down, and runs
# bench/api.py: wrk against `subsave run` (GET a subscription; POST a skip with a fresh
# Idempotency-Key) at 1, 8 and 32 connections on BENCH_N subscriptions (default 1,000,000),
# and pgbench select-only and simple-update at the same client counts, in the same run.
# Writes bench/results/api-DATE.md. See docs/benchmarks.md.
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
python3 bench/api.py
