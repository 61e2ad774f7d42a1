#!/usr/bin/env bash
# Partitioned history, measured, one command: bash bench/partition.sh
# Builds the release binary, starts PostgreSQL if it is down, and runs bench/partition.py:
# BENCH_N subscriptions (default 1,000,000) billed on the schema before partitioning, the
# partitioning migration applied to that live database (its duration, and the longest wait of
# a read and insert beside it), and the same renewals billed again on partitioned tables.
# Writes bench/results/partition-DATE-HHMM.md. Exits non-zero on a wrong count. See docs/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/prelude.sh
python3 bench/partition.py
