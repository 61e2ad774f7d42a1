#!/usr/bin/env bash
# Times one `subsave tick` over N due subscriptions on PostgreSQL (default 10,000), with the
# release binary. Prints the seed time, the sweep's wall time, renewals per second, and checks
# that exactly N orders were written. Usage: bash bench/sweep.sh [N] [BATCH_SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
BATCH="${2:-500}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/subsave"
DB=subsave_bench
PSQL="psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export SUBSAVE_DATABASE__URL="postgres://postgres@127.0.0.1:5432/$DB"
export SUBSAVE_ENGINE__BATCH_SIZE="$BATCH"
export RUST_LOG=warn
"$BIN" migrate >/dev/null
seed_start=$(date +%s.%N)
$PSQL -d "$DB" <<SQL
INSERT INTO customers (email, name, time_zone, locale, tax_region, created_at)
SELECT 'c' || g || '@example.com', 'Customer ' || g,
       (ARRAY['America/New_York','Europe/Berlin','Australia/Sydney','America/Los_Angeles'])[1 + g % 4],
       'en-US', (ARRAY['US-CA','DE','US-NY',NULL])[1 + g % 4], '2026-01-01T00:00:00Z'
FROM generate_series(1, $N) g;
INSERT INTO subscriptions (customer_id, plan_id, quantity, interval_count, interval_unit, anchor_local,
  anchor_cycle, time_zone, next_cycle, next_renewal_at, status, orders_count, created_at, updated_at)
SELECT id, (ARRAY['1-pack','2-pack','3-pack','6-pack'])[1 + id % 4], 1 + id % 2,
       30 * (ARRAY[1,2,3,6])[1 + id % 4], 'day', '2026-01-31 09:00:00', 1, time_zone, 1,
       '2026-01-31T00:00:00Z', 'active', 1 + id % 8, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
FROM customers;
ANALYZE;
SQL
seed_end=$(date +%s.%N)
start=$(date +%s.%N)
report=$("$BIN" --now 2026-02-01T00:00:00Z tick --json)
end=$(date +%s.%N)
orders=$($PSQL -d "$DB" -Atc "SELECT COUNT(*) FROM orders")
lines=$($PSQL -d "$DB" -Atc "SELECT COUNT(*) FROM order_lines")
python3 - "$N" "$BATCH" "$seed_start" "$seed_end" "$start" "$end" "$orders" "$lines" "$report" <<'PY'
import json, sys
n, batch, s0, s1, t0, t1, orders, lines, report = sys.argv[1:]
secs = float(t1) - float(t0)
print(f"due subscriptions: {n}, batch size {batch}")
print(f"seed (plain SQL): {float(s1) - float(s0):.2f} s")
print(f"subsave tick: {secs:.2f} s wall, {int(n) / secs:,.0f} renewals/s")
print(f"orders written: {orders}, order lines: {lines}, report: {json.loads(report)}")
assert int(orders) == int(n), "exactly one order per due subscription"
PY
