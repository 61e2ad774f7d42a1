#!/usr/bin/env python3
"""subsave's benchmark harness (see docs/benchmarks.md). Run through bench/run.sh.

Seeds PostgreSQL with N subscriptions (D due now), then measures, in one run on this machine:
renewals by 1, 2 and 4 `subsave tick` processes; the same rows written by plain set-based SQL
(the ceiling); pgbench simple-update; scaling in N and in D; reminder enqueueing; mail to
postfix's smtp-sink against smtp-source into the same sink; and an idle daemon. Prints a
markdown table and writes it to bench/results/.
"""

import datetime
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time

N = int(os.environ.get("BENCH_N", "1000000"))
# A smoke run (CI): small sizes, and only the measures that check counts; nothing is judged by
# its timing.
QUICK = os.environ.get("BENCH_QUICK") == "1"
D = int(os.environ.get("BENCH_D", "100000"))
M = int(os.environ.get("BENCH_M", "20000"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "8"))
# Rounds of the mail measures, interleaved, each reported by its median (one in a smoke run).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3"))
BATCH = os.environ.get("BENCH_BATCH", "1000")
BIN = os.environ["BENCH_SUBSAVE_BIN"]
PG = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-At"]
NOW = "2026-06-01T12:00:00Z"
SINK_PORT = 2526
rows = []
# What came out wrong (a count that is not what was due): the run exits non-zero if any.
wrong = []


def psql(db, sql):
    out = subprocess.run(PG + ["-d", db, "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def record(what, value, note=""):
    rows.append((what, value, note))
    if "WRONG" in f"{value} {note}":
        wrong.append(what)
    print(f"| {what} | {value} | {note} |", flush=True)


def write_results(prefix, title, header, measured):
    """Writes a run's table to bench/results/{prefix}DATE-HHMM.md (the time, so that a second run
    of the day keeps the first)."""
    today = datetime.date.today()
    os.makedirs("bench/results", exist_ok=True)
    path = f"bench/results/{prefix}{today}-{datetime.datetime.now():%H%M}.md"
    with open(path, "w") as f:
        f.write(f"# {title}, {today}\n\n{header}\n\n")
        f.write("| measure | result | detail |\n| --- | --- | --- |\n")
        for what, value, note in measured:
            f.write(f"| {what} | {value} | {note} |\n")
    print(f"written to {path}")


def finish(prefix, title, header):
    """Ends a run: its table written (not in a smoke run), and a non-zero exit on a wrong count."""
    if not QUICK:
        write_results(prefix, title, header, rows)
    if wrong:
        sys.exit(f"WRONG counts in: {'; '.join(wrong)}")


def url(db):
    return f"postgres://postgres@127.0.0.1:5432/{db}"


def env_for(db, **extra):
    env = dict(os.environ, SUBSAVE_DATABASE__URL=url(db), SUBSAVE_ENGINE__BATCH_SIZE=BATCH, RUST_LOG="error")
    env.update(extra)
    return env


def fresh_db(db):
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")
    subprocess.run([BIN, "migrate"], env=env_for(db), check=True, capture_output=True)


def seed(db, n, d, due_at="2026-06-01T11:00:00Z", rest_from="2026-06-06T00:00:00Z"):
    """n customers with one subscription each; the first d due at due_at, the rest later
    (beyond the reminder horizon of a sweep at NOW, so renewal runs measure renewals only)."""
    started = time.time()
    psql(db, f"""
INSERT INTO coupons (code, percent_bp, currency, duration, created_at)
  VALUES ('BENCH10', 1000, 'USD', 'forever', '2026-01-01T00:00:00Z');
INSERT INTO customers (email, name, time_zone, locale, tax_region, created_at)
SELECT 'c' || g || '@example.com', 'Customer ' || g,
  (ARRAY['America/New_York','Europe/Berlin','America/Los_Angeles','Asia/Tokyo','Australia/Sydney'])[1 + g % 5],
  'en-US', (ARRAY['US-NY','DE','US-CA',NULL,NULL])[1 + g % 5], '2026-01-01T00:00:00Z'
FROM generate_series(1, {n}) g;
INSERT INTO subscriptions (customer_id, plan_id, quantity, interval_count, interval_unit, anchor_local,
  anchor_cycle, time_zone, next_cycle, next_renewal_at, status, orders_count, coupon_id,
  created_at, updated_at)
SELECT c.id, (ARRAY['1-pack','2-pack','3-pack','6-pack'])[1 + c.id % 4], 1 + (c.id % 7 = 0)::int,
  30 * (ARRAY[1,2,3,6])[1 + c.id % 4], 'day', (x.at AT TIME ZONE c.time_zone), 1, c.time_zone, 1, x.at,
  'active', 1 + c.id % 8, CASE WHEN c.id % 5 = 0 THEN 1 END, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
FROM customers c
CROSS JOIN LATERAL (SELECT CASE WHEN c.id <= {d} THEN '{due_at}'::timestamptz
  ELSE '{rest_from}'::timestamptz + (c.id % 170) * interval '1 day' END AS at) x;
CREATE TABLE bench_seed AS SELECT id, next_renewal_at, anchor_local FROM subscriptions;
ANALYZE;
""")
    return time.time() - started


def reset(db):
    """Back to the seeded state: no orders (nor their payments, lines, events and mail), every
    subscription at cycle 1 again. Fails loudly if a seeded subscription is missing."""
    # No TRUNCATE … CASCADE: subscriptions reference orders (unpaid_order_id), so a cascade
    # from orders empties subscriptions too. The history tables are truncated on their own and
    # orders are deleted with the immutability triggers (and FK checks) off for this session;
    # a subscription still pointing at an order would make that unsafe, so it stops the run.
    held = int(psql(db, "SELECT COUNT(*) FROM subscriptions WHERE unpaid_order_id IS NOT NULL"))
    if held:
        sys.exit(f"reset: {held} subscriptions hold an unpaid order; the benchmark expects none")
    # The exactly-once keys of partitioned history (PostgreSQL migration 19) go with their rows;
    # other tables' foreign keys point at them, hence a delete, not a truncate.
    keys = psql(db, "SELECT string_agg('DELETE FROM ' || t || ';', ' ') FROM unnest(ARRAY['order_keys', "
                    "'payment_keys', 'outbox_keys']) t WHERE to_regclass(t) IS NOT NULL")
    # A promise's currency (migration 24) goes with its amount; bench/partition.py's schema is
    # older and has none.
    currency = psql(db, "SELECT CASE WHEN EXISTS (SELECT 1 FROM information_schema.columns "
                        "WHERE table_name = 'subscriptions' AND column_name = 'promise_currency') "
                        "THEN ', promise_currency = NULL' ELSE '' END")
    psql(db, f"""
TRUNCATE payment_attempts, credit_note_lines, credit_notes, payments, order_lines, outbox,
  subscription_events, unfulfilled_orders RESTART IDENTITY;
SET session_replication_role = replica;
DELETE FROM orders;
{keys}
SET session_replication_role = origin;
UPDATE subscriptions s SET next_cycle = 1, next_renewal_at = b.next_renewal_at, anchor_local = b.anchor_local,
  anchor_cycle = 1, orders_count = 1 + s.id % 8, coupon_orders_used = 0, promised_cycle = NULL,
  promised_price_minor = NULL, promised_total_minor = NULL{currency} FROM bench_seed b
  WHERE b.id = s.id AND (s.next_cycle <> 1 OR s.next_renewal_at <> b.next_renewal_at);
""")
    seeded = int(psql(db, "SELECT COUNT(*) FROM bench_seed"))
    present = int(psql(db, "SELECT COUNT(*) FROM subscriptions s JOIN bench_seed b USING (id) "
                           "WHERE s.next_cycle = 1 AND s.next_renewal_at = b.next_renewal_at"))
    if present != seeded:
        sys.exit(f"reset: WRONG: {present:,} of {seeded:,} seeded subscriptions are back at cycle 1")
    # A steady-state outbox holds the mail of earlier cycles. Without it the planner, reading
    # statistics of a just-truncated table, expects no reminders at all and plans the
    # reminder claim's NOT EXISTS as a scan of every reminder per row.
    psql(db, f"""
INSERT INTO outbox (kind, recipient, subscription_id, cycle, lead_days, payload, status, next_attempt_at, created_at, sent_at)
SELECT 'renewal_reminder', 'history@example.com', id, 0, 3, '{{}}', 'sent', '2026-01-01', '2026-01-01', '2026-01-01'
FROM subscriptions WHERE id <= {D};
""")
    psql(db, "VACUUM ANALYZE subscriptions")
    psql(db, "ANALYZE outbox")


def run_ticks(db, processes, now=NOW, extra=None):
    """Starts `processes` ticks at once; returns (wall seconds, peak RSS MiB of the largest)."""
    started = time.time()
    children = [subprocess.Popen([BIN, "--now", now, "tick", "--json"], env=env_for(db, **(extra or {})),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(processes)]
    peak = 0
    for child in children:
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            sys.exit(f"tick failed: {child.stderr.read().decode()}")
        peak = max(peak, usage.ru_maxrss)
    return time.time() - started, peak / 1024


def orders(db):
    return int(psql(db, "SELECT COUNT(*) FROM orders"))


def renewals(db, label, processes, expected, note=""):
    reset(db)
    secs, rss = run_ticks(db, processes)
    got = orders(db)
    ok = "exactly" if got == expected else f"WRONG: {got}"
    record(f"renewals, {label}", f"{expected / secs:,.0f}/s", f"{expected:,} due in {secs:.1f} s; {ok} {expected:,} orders; peak RSS {rss:.0f} MiB{note}")
    return expected / secs


def ceiling_sql(name, same_rows):
    """A PL/pgSQL loop of set-based statements claiming 1,000 due subscriptions at a time with
    SKIP LOCKED and writing what a renewal writes: the order, its lines (by the rules subsave
    prices the seeded subscriptions with), its wait for a shipment. With `same_rows`, the rows
    subsave writes: also an event and a payment row per renewal, and payloads of the same shape
    and size as subsave's order confirmation. Without, the lean version: no events, a 14-byte
    payload."""
    payload = """jsonb_build_object(
        'order', jsonb_build_object('order_number', o.order_number, 'plan', o.plan_id, 'packs', o.packs,
          'quantity', o.quantity,
          'lines', la.lines,
          'total', jsonb_build_object('currency', 'USD', 'amount_minor', o.total_minor),
          'ship_to', NULL, 'tax_included', NULL, 'tax_included_rate', NULL),
        'customer', jsonb_build_object('id', o.customer_id, 'name', 'Customer ' || o.customer_id,
          'email', 'c' || o.customer_id || '@example.com', 'locale', 'en-US', 'time_zone', 'Europe/Berlin'),
        'subscription', jsonb_build_object('id', o.subscription_id, 'plan', o.plan_id, 'status', 'active',
          'interval', '60 days', 'quantity', o.quantity, 'time_zone', 'Europe/Berlin', 'next_cycle', o.cycle + 1,
          'paused_until', NULL, 'next_renewal_at', o.scheduled_for + interval '60 days',
          'next_renewal_local', o.scheduled_for + interval '60 days'))""" if same_rows else """'{"order": {}}'::jsonb"""
    events = """,
    p AS (
      INSERT INTO payments (order_id, subscription_id, customer_id, provider, status, amount_minor,
        currency, created_at, updated_at)
      SELECT o.id, o.subscription_id, o.customer_id, 'none', 'external', o.total_minor, 'USD', p_now, p_now
      FROM o),
    e AS (
      INSERT INTO subscription_events (subscription_id, kind, actor, at, cycle, detail)
      SELECT o.subscription_id, 'renewed', 'engine', p_now, o.cycle,
        jsonb_build_object('total', jsonb_build_object('currency', 'USD', 'amount_minor', o.total_minor),
          'order_number', o.order_number) FROM o)""" if same_rows else ""
    return f"""
CREATE OR REPLACE PROCEDURE {name}(p_now timestamptz) LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  LOOP
    WITH due AS (
      SELECT s.id, s.customer_id, s.plan_id, s.quantity, s.next_cycle, s.next_renewal_at, s.interval_count,
        s.orders_count, s.coupon_id, c.tax_region
      FROM subscriptions s JOIN customers c ON c.id = s.customer_id
      WHERE s.status = 'active' AND s.hold_reason IS NULL AND s.next_renewal_at <= p_now
      ORDER BY s.next_renewal_at LIMIT 1000 FOR UPDATE OF s SKIP LOCKED),
    o AS (
      INSERT INTO orders (order_number, subscription_id, customer_id, cycle, plan_id, packs, quantity,
        currency, total_minor, scheduled_for, created_at)
      SELECT 'BB-' || lpad(id::text, 7, '0') || '-' || lpad(next_cycle::text, 3, '0'), id, customer_id,
        next_cycle, plan_id, 1, quantity, 'USD', 4094 * quantity, next_renewal_at, p_now FROM due
      RETURNING id, subscription_id, customer_id, order_number, cycle, plan_id, packs, quantity, total_minor, scheduled_for),
    lk AS (
      -- The lines subsave prices for these seeded subscriptions: a loyalty discount from the
      -- third order, the coupon where there is one, US sales tax added.
      SELECT o.id AS order_id, row_number() OVER (PARTITION BY o.id ORDER BY k.rank) - 1 AS position,
        k.kind, k.label, k.amount
      FROM o JOIN due ON due.id = o.subscription_id
      CROSS JOIN LATERAL (VALUES
        (0, 'subtotal', o.plan_id || ' × ' || o.quantity || ' at 94.99', o.total_minor + 500, true),
        (1, 'subscribe_and_save', 'Subscribe & save 12%', -500, true),
        (2, 'loyalty', 'Loyalty 10% (after 6 orders)', -400, due.orders_count >= 3),
        (3, 'coupon', 'Coupon BENCH10 (10%)', -300, due.coupon_id IS NOT NULL),
        (4, 'shipping', 'Shipping', 595, true),
        (5, 'tax', 'New York sales tax 4%', 291, due.tax_region LIKE 'US-%')) k(rank, kind, label, amount, present)
      WHERE k.present),
    l AS (
      INSERT INTO order_lines (order_id, position, kind, label, amount_minor)
      SELECT order_id, position, kind, label, amount FROM lk),
    u AS (
      INSERT INTO unfulfilled_orders (order_id, created_at) SELECT id, p_now FROM o),
    la AS (
      SELECT order_id, jsonb_agg(jsonb_build_object('kind', kind, 'label', label,
          'amount', jsonb_build_object('currency', 'USD', 'amount_minor', amount)) ORDER BY position) AS lines
      FROM lk GROUP BY order_id),
    m AS (
      INSERT INTO outbox (kind, recipient, subscription_id, order_id, cycle, payload, next_attempt_at, created_at)
      SELECT 'order_confirmation', 'customer@example.com', o.subscription_id, o.id, o.cycle, {payload}, p_now, p_now
      FROM o JOIN la ON la.order_id = o.id){events}
    UPDATE subscriptions s SET next_cycle = s.next_cycle + 1,
      next_renewal_at = s.next_renewal_at + s.interval_count * interval '1 day',
      orders_count = s.orders_count + 1, updated_at = p_now
    FROM due WHERE s.id = due.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    COMMIT;
    EXIT WHEN n = 0;
  END LOOP;
END $$;
"""


def ceiling(db, expected, same_rows, label=None):
    """The ceiling's rate after a reset, recorded under `label` (or its own description)."""
    reset(db)
    name = "bench_ceiling_same_rows" if same_rows else "bench_ceiling_lean"
    psql(db, ceiling_sql(name, same_rows))
    started = time.time()
    psql(db, f"CALL {name}('{NOW}')")
    secs = time.time() - started
    got = orders(db)
    if same_rows:
        described = "ceiling: set-based SQL writing the same rows (orders, their lines by the same rules, payment, shipment wait, event, outbox row with subsave's payload; subscription update)"
        note = "no pricing"
    else:
        described = "lean ceiling: the same without events and payments, and with a 14-byte payload"
        note = "an upper bound, not the same rows"
    ok = "" if got == expected else f"WRONG: {got:,} orders, {expected:,} due; "
    record(label or described, f"{expected / secs:,.0f}/s", f"{ok}{got:,} orders in {secs:.1f} s, batches of 1,000, SKIP LOCKED; {note}")
    return expected / secs


def pgbench():
    psql("postgres", "DROP DATABASE IF EXISTS bench_pgbench WITH (FORCE)")
    psql("postgres", "CREATE DATABASE bench_pgbench")
    subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-i", "-s", "10", "-q", "bench_pgbench"], check=True, capture_output=True)
    for clients in (1, 4):
        out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-b", "simple-update", "-c", str(clients),
                              "-j", str(min(clients, 2)), "-T", "10", "bench_pgbench"], check=True, capture_output=True, text=True).stdout
        tps = next(line for line in out.splitlines() if line.startswith("tps")).split()[2]
        record(f"pgbench simple-update, {clients} client(s)", f"{float(tps):,.0f} tps", "10 s")


def wait_port(port):
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def outbox_columns(db):
    return psql(db, "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position) "
                    "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'outbox' "
                    "AND column_name <> 'id'").split(",")


def mail(db):
    """M real emails, half renewal reminders and half order confirmations, to smtp-sink; then
    smtp-source with the same size and sessions, once with a new connection per message (its
    default) and once keeping its sessions open (-d), as subsave does. ROUNDS rounds of the
    three, interleaved (the messages put back as they were queued between rounds), each
    compared by its median: one run of each on this shared machine moved the ratios by a
    fifth."""
    reset(db)
    half = M // 2
    # One sweep at NOW: confirmations for the renewals due, and reminders for the last `half`
    # due subscriptions, moved to renew three days later.
    psql(db, f"UPDATE subscriptions SET next_renewal_at = '2026-06-04T10:00:00Z', anchor_local = '2026-06-04 10:00', "
             f"anchor_cycle = 1 WHERE id > {D - half} AND id <= {D}")
    run_ticks(db, 1)
    first = int(psql(db, "SELECT MIN(id) FROM outbox WHERE kind = 'order_confirmation'"))
    psql(db, f"UPDATE outbox SET status = 'suppressed' WHERE kind = 'order_confirmation' AND id >= {first + M - half}")
    reminder = int(psql(db, "SELECT MIN(id) FROM outbox WHERE kind = 'renewal_reminder' AND status = 'pending'"))
    size = sum(len(subprocess.run([BIN, "outbox", "show", str(i)], env=env_for(db), check=True, capture_output=True).stdout)
               for i in (first, reminder)) // 2
    # The queued messages as they are, to put back before each round.
    psql(db, "DROP TABLE IF EXISTS bench_queued; CREATE TABLE bench_queued AS SELECT * FROM outbox WHERE status = 'pending'")
    put_back = "UPDATE outbox o SET " + ", ".join(f"{c} = q.{c}" for c in outbox_columns(db)) + " FROM bench_queued q WHERE o.id = q.id"
    # Every reminder's delivery window (09:00-20:00 in five zones) has opened by then.
    deliver_now = "2026-06-03T00:00:00Z"
    # smtp-sink refuses to run as root without a user to switch to.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{SINK_PORT}", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours, seconds, ceilings = [], [], ([], [])
    try:
        wait_port(SINK_PORT)
        for round_ in range(ROUNDS):
            if round_ > 0:
                psql(db, put_back)
            psql(db, "VACUUM ANALYZE outbox")
            started = time.time()
            subprocess.run([BIN, "--now", deliver_now, "outbox", "deliver"], check=True, capture_output=True,
                           env=env_for(db, SUBSAVE_MAIL__TRANSPORT="smtp", SUBSAVE_MAIL__REPLY_TO="support@example.com", SUBSAVE_MAIL__SMTP__PORT=str(SINK_PORT),
                                       SUBSAVE_MAIL__SMTP__POOL_SIZE=str(SESSIONS), SUBSAVE_MAIL__DELIVERY__CONCURRENCY=str(SESSIONS),
                                       SUBSAVE_MAIL__DELIVERY__RATE_PER_SECOND="1000000", SUBSAVE_MAIL__DELIVERY__BATCH_SIZE="1000",
                                       # a batch fits in its lease at the worst-case send time: 1000 × 10 s ÷ 8 < 3600 s
                                       SUBSAVE_MAIL__SMTP__TIMEOUT_SECS="10", SUBSAVE_MAIL__DELIVERY__LEASE_SECS="3600"))
            secs = time.time() - started
            sent = psql(db, "SELECT COUNT(*) FILTER (WHERE kind = 'renewal_reminder'), COUNT(*) FILTER (WHERE kind = 'order_confirmation') "
                            f"FROM outbox WHERE status = 'sent' AND created_at >= '2026-06-01'").split("|")
            reminders_sent, confirmations_sent = int(sent[0]), int(sent[1])
            if (reminders_sent, confirmations_sent) != (half, M - half):
                record("mail: subsave outbox deliver → smtp-sink", "WRONG",
                       f"round {round_ + 1}: {reminders_sent:,} reminders + {confirmations_sent:,} confirmations sent, "
                       f"expected {half:,} + {M - half:,}")
            ours.append(M / secs)
            seconds.append(secs)
            for flags, rates in (([], ceilings[0]), (["-d"], ceilings[1])):
                started = time.time()
                subprocess.run(["smtp-source", *flags, "-s", str(SESSIONS), "-m", str(M), "-l", str(size), "-f", "orders@example.com",
                                "-t", "customer@example.com", f"127.0.0.1:{SINK_PORT}"], check=True, capture_output=True)
                rates.append(M / (time.time() - started))
    finally:
        sink.terminate()
    psql(db, "DROP TABLE bench_queued")

    def rounds(rates):
        return ", ".join(f"{rate:,.0f}" for rate in rates)

    record("mail: subsave outbox deliver → smtp-sink", f"{statistics.median(ours):,.0f} msg/s",
           f"median of {ROUNDS} rounds ({rounds(ours)}); each {half:,} reminders + {M - half:,} confirmations, rendered "
           f"(~{size:,} bytes), in {statistics.median(seconds):.1f} s (median), {SESSIONS} sessions")
    for rates, label in ((ceilings[0], "a new connection per message (its default)"), (ceilings[1], "sessions kept open (-d)")):
        record(f"mail ceiling: postfix smtp-source → smtp-sink, {label}", f"{statistics.median(rates):,.0f} msg/s",
               f"median of {ROUNDS} rounds ({rounds(rates)}); {M:,} × {size:,} bytes, {SESSIONS} sessions")
    return [statistics.median(ours) / statistics.median(rates) for rates in ceilings]


def reminders(db, d):
    """Reminders for d renewals three days out: one sweep that only enqueues reminders."""
    reset(db)
    psql(db, f"UPDATE subscriptions SET next_renewal_at = '2026-06-04T10:00:00Z', anchor_local = '2026-06-04 10:00', anchor_cycle = 1 WHERE id <= {d}")
    secs, rss = run_ticks(db, 1, now="2026-06-01T09:00:00Z")
    got = int(psql(db, "SELECT COUNT(*) FROM outbox WHERE kind = 'renewal_reminder' AND cycle = 1"))
    ok = "" if got == d else f"WRONG: {d:,} due; "
    record("reminders enqueued (quote, promise, outbox row)", f"{got / secs:,.0f}/s", f"{ok}{got:,} in {secs:.1f} s; peak RSS {rss:.0f} MiB")


def idle(db):
    reset(db)
    psql(db, "UPDATE subscriptions SET next_renewal_at = '2027-06-01T00:00:00Z'")
    port = 18181
    daemon = subprocess.Popen([BIN, "run"], env=env_for(db, SUBSAVE_HTTP__LISTEN=f"127.0.0.1:{port}"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(2)
        tick = os.sysconf("SC_CLK_TCK")

        def cpu():
            fields = open(f"/proc/{daemon.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick

        before = cpu()
        time.sleep(30)
        used = cpu() - before
        rss = next(int(line.split()[1]) for line in open(f"/proc/{daemon.pid}/status") if line.startswith("VmRSS")) / 1024
        record("idle `subsave run` (sweep every minute, nothing due)", f"{100 * used / 30:.2f} % CPU", f"{used:.2f} s CPU in 30 s; RSS {rss:.0f} MiB")
    finally:
        daemon.terminate()
        daemon.wait()


def main():
    started = time.time()
    print(f"# subsave benchmarks, {datetime.date.today()}\n")
    machine = f"{platform.node()}: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, " \
              f"{platform.platform()}, {psql('postgres', 'SHOW server_version')} (PostgreSQL), subsave {BIN}"
    print(machine + "\n")
    print("| measure | result | detail |\n| --- | --- | --- |")
    db = "bench_big"
    fresh_db(db)
    secs = seed(db, N, D)
    record("seed", f"{N / secs:,.0f} subscriptions/s", f"N = {N:,} (D = {D:,} due) in {secs:.1f} s, multi-row INSERT … SELECT")
    one = renewals(db, "1 tick process", 1, D)
    renewals(db, "2 tick processes at once", 2, D)
    renewals(db, "4 tick processes at once", 4, D)
    same = ceiling(db, D, same_rows=True)
    lean = ceiling(db, D, same_rows=False)
    record("ratio: subsave (1 process) / set-based SQL writing the same rows", f"{one / same:.2f}", "target ≥ 0.9")
    record("ratio: subsave (1 process) / lean ceiling", f"{one / lean:.2f}", "for comparison with earlier runs")
    if not QUICK:
        pgbench()
    # Scaling: D fixed, N ten times smaller; then N fixed, D ten times smaller.
    small = "bench_small"
    fresh_db(small)
    seed(small, N // 10, D)
    reset(small)
    secs_small, _ = run_ticks(small, 1)
    reset(db)
    secs_big, _ = run_ticks(db, 1)
    record("scaling in N (same D)", f"{secs_big / secs_small:.2f}×", f"N = {N // 10:,}: {secs_small:.1f} s; N = {N:,}: {secs_big:.1f} s (flat = 1.0)")
    reset(db)
    psql(db, f"UPDATE subscriptions SET next_renewal_at = '2026-07-01T00:00:00Z' WHERE id > {D // 10} AND id <= {D}")
    secs_tenth, _ = run_ticks(db, 1)
    record("scaling in D (same N)", f"{secs_big / secs_tenth:.2f}×", f"D = {D // 10:,}: {secs_tenth:.1f} s; D = {D:,}: {secs_big:.1f} s (linear = 10)")
    reminders(db, D)
    fresh, kept = mail(db)
    record("ratio: subsave mail / smtp-source (new connection per message)", f"{fresh:.2f}", "target ≥ 0.8")
    record("ratio: subsave mail / smtp-source -d (sessions kept open)", f"{kept:.2f}", "same sessions as subsave; target ≥ 0.4")
    if not QUICK:
        idle(db)
    print(f"\n(total {time.time() - started:.0f} s)")
    if not QUICK:
        write_results("", "subsave benchmarks", f"{machine}\n\nN = {N:,}, D = {D:,}, M = {M:,}, batch {BATCH}", rows)
    if wrong:
        sys.exit(f"WRONG counts in: {'; '.join(wrong)}")


if __name__ == "__main__":
    main()
