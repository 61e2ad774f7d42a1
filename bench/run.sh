#!/usr/bin/env bash
# The benchmark harness, one command: bash bench/run.sh
# Installs what it needs (postfix's smtp-sink and smtp-source), builds the release binary,
# starts PostgreSQL if it is down, and runs bench/run.py. Sizes: BENCH_N (default 1,000,000
# subscriptions), BENCH_D (100,000 due), BENCH_M (20,000 messages), BENCH_SESSIONS (8),
# BENCH_BATCH (engine batch size, 1,000); BENCH_QUICK=1 runs only the measures that check counts
# (the CI smoke). Writes bench/results/DATE-HHMM.md. Exits non-zero on a wrong count. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v smtp-sink >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-sink ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
export PATH="$PATH:/usr/sbin"
source bench/prelude.sh
python3 bench/run.py
