#!/usr/bin/env bash
# Bytes stored per renewal on PostgreSQL: N subscriptions (default 10,000) get their reminder
# queued and sent, then are billed and confirmed, with the release binary and the log mail
# transport. Prints each table's size (heap, TOAST and indexes) per renewal, then how much a
# purge past outbox.retain_days takes back.
# Usage: bash bench/storage.sh [N]; BENCH_BIN=/path/to/subsave measures that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$BENCH_BIN"
else
  cargo build --release --locked --quiet
  BIN="$CARGO_TARGET_DIR/release/subsave"
fi
DB=subsave_storage_bench
PSQL="psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export SUBSAVE_DATABASE__URL="postgres://postgres@127.0.0.1:5432/$DB"
export SUBSAVE_MAIL__TRANSPORT=log SUBSAVE_MAIL__DELIVERY__RATE_PER_SECOND=100000
export RUST_LOG=error
"$BIN" migrate >/dev/null
# Renewals on 2026-06-10 09:00 New York, one per customer, across the four plans.
$PSQL -d "$DB" <<SQL
INSERT INTO customers (email, name, time_zone, locale, tax_region, created_at)
SELECT 'c' || g || '@example.com', 'Customer ' || g, 'America/New_York', 'en-US', 'US-CA',
       '2026-01-01T00:00:00Z' FROM generate_series(1, $N) g;
INSERT INTO subscriptions (customer_id, plan_id, quantity, interval_count, interval_unit, anchor_local,
  anchor_cycle, time_zone, next_cycle, next_renewal_at, status, orders_count, created_at, updated_at)
SELECT id, (ARRAY['1-pack','2-pack','3-pack','6-pack'])[1 + id % 4], 1, 30 * (ARRAY[1,2,3,6])[1 + id % 4],
  'day', '2026-06-10 09:00:00', 1, 'America/New_York', 1, '2026-06-10T13:00:00Z', 'active', 1,
  '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM customers;
VACUUM ANALYZE;
SQL
size() { $PSQL -d "$DB" -Atc "SELECT pg_total_relation_size('$1')"; }
declare -A before
for t in outbox orders order_lines subscription_events; do before[$t]=$(size $t); done
"$BIN" --now 2026-06-07T14:00:00Z tick >/dev/null            # reminders queued (3 days ahead)
"$BIN" --now 2026-06-07T14:00:00Z outbox deliver >/dev/null  # and sent
"$BIN" --now 2026-06-10T13:00:00Z tick >/dev/null            # renewals billed
"$BIN" --now 2026-06-10T13:00:00Z outbox deliver >/dev/null  # confirmations sent
$PSQL -d "$DB" -c "VACUUM ANALYZE"
orders=$($PSQL -d "$DB" -Atc "SELECT COUNT(*) FROM orders")
messages=$($PSQL -d "$DB" -Atc "SELECT COUNT(*) FROM outbox")
payload=$($PSQL -d "$DB" -Atc "SELECT ROUND(AVG(pg_column_size(payload))) FROM outbox")
echo "renewals: $orders, outbox messages: $messages (average payload $payload bytes as stored)"
total=0
for t in outbox orders order_lines subscription_events; do
  grown=$(( $(size $t) - ${before[$t]} ))
  total=$(( total + grown ))
  echo "$t: $(( grown / orders )) bytes per renewal"
done
echo "all four: $(( total / orders )) bytes per renewal ($(( total * 1000 / orders / 1048576 )) MiB per 1,000 renewals)"
# The outbox's rows are updated two or three times each (lease, outcome); the dead versions
# are space that autovacuum lets later rows reuse. Without them:
$PSQL -d "$DB" -c "VACUUM FULL outbox"
echo "outbox without dead row versions: $(( ($(size outbox) - ${before[outbox]}) / orders )) bytes per renewal"
# A purge past retention: every message here is finished, so all of them go.
purged=$($PSQL -d "$DB" -Atc "WITH d AS (DELETE FROM outbox WHERE status <> 'pending' AND lease_until IS NULL AND created_at < '2026-09-10' RETURNING 1) SELECT COUNT(*) FROM d")
$PSQL -d "$DB" -c "VACUUM FULL outbox"
echo "after a purge past retention ($purged messages deleted): outbox $(( $(size outbox) / 1024 )) KiB in all"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
