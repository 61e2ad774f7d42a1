#!/usr/bin/env bash
# Peak memory and time of `subsave orders import-shipments` at N and 10×N shipments (default
# 10,000 and 100,000) on the embedded SQLite: a flat peak means the file is streamed. Each run
# bills N orders with addresses (a real sweep: `subsave tick`), writes a 3PL-style file (BOM,
# CRLF, its own column names, quoted commas, 3 bad rows, 50 duplicates), imports it, then
# imports it again (nothing changes). Usage: bash bench/shipments.sh [N] (BENCH_BIN=… for
# another build; the debug build by default).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
BIN="${BENCH_BIN:-$CARGO_TARGET_DIR/debug/subsave}"
peak_rss() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
start = time.time()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
first = done.stdout.splitlines()[0] if done.stdout else ""
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f} MiB peak RSS, {time.time() - start:.1f} s, exit {done.returncode}: {first}")
PY
}
for n in "$N" "$((N * 10))"; do
  dir=$(mktemp -d /tmp/subsave-shipments.XXXXXX)
  export SUBSAVE_DATABASE__URL="sqlite://$dir/subsave.db?mode=rwc" SUBSAVE_MAIL__FILE_DIR="$dir/mail" \
    SUBSAVE_WEB__LINK_KEYS_FILE="$dir/link.keys" RUST_LOG=warn
  "$BIN" migrate >/dev/null
  sqlite3 "$dir/subsave.db" <<SQL
INSERT INTO customers (email, name, time_zone, locale, created_at)
  VALUES ('bench@example.com', 'Bench', 'Europe/Berlin', 'de-DE', '2026-01-01T00:00:00+00:00');
INSERT INTO addresses (customer_id, name, line1, city, country, postal_code, is_default, created_at)
  VALUES (1, 'Bench, Warehouse Test', 'Unter den Linden 1', 'Berlin', 'DE', '10117', 1, '2026-01-01T00:00:00+00:00');
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $n)
INSERT INTO subscriptions (customer_id, plan_id, quantity, interval_count, interval_unit, anchor_local,
  anchor_cycle, time_zone, next_cycle, next_renewal_at, status, orders_count, created_at, updated_at, address_id)
SELECT 1, '2-pack', 1, 60, 'day', '2026-01-31 15:00:00', 1, 'Europe/Berlin', 1, '2026-01-31T14:00:00+00:00',
  'active', 1, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 1 FROM g;
SQL
  "$BIN" --now 2026-01-31T14:00:00Z tick >/dev/null 2>&1
  python3 - "$dir/shipments.csv" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(b"\xef\xbb\xbfOrder #,Carrier,Tracking Number,Ship Date,Notes\r\n")
    for i in range(1, n + 1):
        f.write(f'BB-{i:07}-001,UPS,1Z{i:010},2026-02-01,"fragile, keep dry"\r\n'.encode())
    for i in range(1, 51):
        f.write(f'BB-{i:07}-001,UPS,1Z{i:010},2026-02-01,"sent twice, same"\r\n'.encode())
    f.write(b"BB-9999999-001,UPS,1Z1,2026-02-01,unknown order\r\n")
    f.write(b"BB-0000001-001,UPS,1Z 1,2026-02-01,bad tracking\r\n")
    f.write(b"BB-0000002-001,\xff\xfeUPS,1Z2,2026-02-01,not UTF-8\r\n")
PY
  columns="order=Order #,tracking=Tracking Number,shipped_at=Ship Date"
  echo "shipments: $n ($(du -h "$dir/shipments.csv" | cut -f1) file)"
  echo "  first import:  $(peak_rss "$BIN" --now 2026-02-01T12:00:00Z orders import-shipments "$dir/shipments.csv" --columns "$columns")"
  echo "  second import: $(peak_rss "$BIN" --now 2026-02-01T13:00:00Z orders import-shipments "$dir/shipments.csv" --columns "$columns")"
  echo "  shipped emails: $(sqlite3 "$dir/subsave.db" "SELECT COUNT(*) FROM outbox WHERE kind = 'order_shipped'"), fulfilled orders: $(sqlite3 "$dir/subsave.db" "SELECT COUNT(*) FROM fulfillments")"
  rm -rf "$dir"
done
