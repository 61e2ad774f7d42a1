#!/usr/bin/env bash
# The API benchmark, one command: bash bench/api.sh
# Installs wrk if needed, builds the release binary, starts PostgreSQL if it is down, and runs
# bench/api.py: wrk against `subsave run` (GET a subscription; POST a skip with a fresh
# Idempotency-Key) at 1, 8 and 32 connections on BENCH_N subscriptions (default 1,000,000),
# and pgbench select-only and simple-update at the same client counts, in the same run.
# Writes bench/results/api-DATE-HHMM.md. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
source bench/prelude.sh
python3 bench/api.py
