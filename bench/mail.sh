#!/usr/bin/env bash
# Times the mailer delivering N outbox messages (default 10,000) to a local SMTP server
# (aiosmtpd's Sink handler, a separate Python process on 127.0.0.1), with the release binary,
# on PostgreSQL. Prints messages per second and checks that every message ended `sent`.
# Usage: bash bench/mail.sh [N] [CONCURRENCY]
# BENCH_BIN=/path/to/subsave times that binary instead of building this checkout (to compare
# two builds back to back on one machine).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
CONCURRENCY="${2:-8}"
PORT=2599
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
python3 -c "import aiosmtpd" 2>/dev/null || pip install --quiet aiosmtpd
if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$BENCH_BIN"
else
  cargo build --release --locked --quiet
  BIN="$CARGO_TARGET_DIR/release/subsave"
fi
DB=subsave_mail_bench
PSQL="psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export SUBSAVE_DATABASE__URL="postgres://postgres@127.0.0.1:5432/$DB"
export SUBSAVE_MAIL__TRANSPORT=smtp SUBSAVE_MAIL__SMTP__PORT=$PORT SUBSAVE_MAIL__REPLY_TO=support@example.com
export SUBSAVE_MAIL__SMTP__POOL_SIZE="$CONCURRENCY" SUBSAVE_MAIL__DELIVERY__CONCURRENCY="$CONCURRENCY"
export SUBSAVE_MAIL__DELIVERY__RATE_PER_SECOND=100000 SUBSAVE_MAIL__DELIVERY__BATCH_SIZE=500
# A batch must fit in its lease at the worst-case send time (500 × 10 s ÷ 8 < 3600 s).
export SUBSAVE_MAIL__SMTP__TIMEOUT_SECS=10 SUBSAVE_MAIL__DELIVERY__LEASE_SECS=3600
export RUST_LOG=warn
"$BIN" migrate >/dev/null
$PSQL -d "$DB" <<SQL
INSERT INTO outbox (kind, recipient, payload, next_attempt_at, created_at)
SELECT 'changed', 'c' || g || '@example.com',
  json_build_object(
    'customer', json_build_object('name', 'Customer ' || g, 'locale', 'en-US', 'time_zone', 'America/New_York'),
    'subscription', json_build_object('id', g, 'plan', '3-pack', 'quantity', 1, 'interval', '90 days',
                                      'next_renewal_at', '2027-03-01T14:00:00Z'),
    'detail', json_build_object()),
  '2026-11-26T00:00:00Z', '2026-11-26T00:00:00Z'
FROM generate_series(1, $N) g;
SQL
python3 -m aiosmtpd -n -l "127.0.0.1:$PORT" -c aiosmtpd.handlers.Sink &
SMTP_PID=$!
trap 'kill $SMTP_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
report=$("$BIN" --now 2026-11-26T12:00:00Z outbox deliver --json)
end=$(date +%s.%N)
sent=$($PSQL -d "$DB" -Atc "SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
python3 - "$N" "$CONCURRENCY" "$start" "$end" "$sent" "$report" <<'PY'
import json, sys
n, conc, t0, t1, sent, report = sys.argv[1:]
secs = float(t1) - float(t0)
print(f"messages: {n}, concurrency and pool size {conc}, SMTP peer: aiosmtpd Sink (Python) on 127.0.0.1")
print(f"subsave outbox deliver: {secs:.2f} s wall, {int(n) / secs:,.0f} messages/s")
print(f"sent: {sent}, report: {json.loads(report)}")
assert int(sent) == int(n), "every message delivered"
PY
