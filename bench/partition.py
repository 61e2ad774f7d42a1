#!/usr/bin/env python3
"""Partitioned history, measured (see docs/scaling.md). Run through bench/partition.sh.

In one run on this machine, on one database, with one build:
1. the schema as it was before partitioning: every PostgreSQL migration before
   20261208000019_partitioned_history applied, and that one recorded as applied without being
   run, so this build works on the tables as they were (its SQL does not depend on them being
   partitioned; only the daemon's upkeep, not used here, does);
2. BENCH_N subscriptions, all due, billed: by one `subsave tick` (BENCH_FILL=tick, the default),
   or by set-based SQL writing the rows a renewal writes (BENCH_FILL=sql, bench/run.py's
   ceiling: much faster to fill a large database with a debug build). The rate, not partitioned;
3. the partitioning migration run for real by `subsave migrate` on that live database of
   BENCH_N orders with their lines, payments, events and mail, while a probe reads and
   inserts every 20 ms: the migration's duration and the longest a probe waited (what its
   locks cost a daemon beside it); every count and the revenue equal before and after;
4. the same renewals reset and billed again the same way, now into partitions: the rate,
   partitioned, and its ratio to (2), with exactly BENCH_N orders each time.
Exits non-zero on a wrong count, never on a timing.
"""

import hashlib
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import run as harness  # noqa: E402  (psql, seeding, ticks, records)

N = int(os.environ.get("BENCH_N", "1000000"))
FILL = os.environ.get("BENCH_FILL", "tick")
DB = "bench_partition"
BIN = os.environ["BENCH_SUBSAVE_BIN"]
MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "migrations", "postgres")
PARTITIONING = 20261208000019
MACHINE = f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"


def schema_before_partitioning(db):
    """Applies every migration before PARTITIONING and records them, and PARTITIONING, as
    `subsave migrate` records what it applied."""
    harness.psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    harness.psql("postgres", f"CREATE DATABASE {db}")
    harness.psql(db, "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
                     "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, "
                     "checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)")
    for name in sorted(os.listdir(MIGRATIONS)):
        version, description = re.match(r"(\d+)_(.*)\.sql$", name).groups()
        if int(version) > PARTITIONING:
            continue
        path = os.path.join(MIGRATIONS, name)
        if int(version) < PARTITIONING:
            subprocess.run(harness.PG + ["-1", "-d", db, "-f", path], check=True, capture_output=True)
        with open(path, "rb") as f:
            checksum = hashlib.sha384(f.read()).hexdigest()
        harness.psql(db, f"INSERT INTO _sqlx_migrations VALUES ({version}, '{description.replace('_', ' ')}', "
                         f"now(), true, '\\x{checksum}', 0)")


COUNTS = {
    "orders": "SELECT COUNT(*) FROM orders",
    "order lines": "SELECT COUNT(*) FROM order_lines",
    "payments": "SELECT COUNT(*) FROM payments",
    "events": "SELECT COUNT(*) FROM subscription_events",
    "outbox": "SELECT COUNT(*) FROM outbox",
    "revenue": "SELECT COALESCE(SUM(total_minor), 0) FROM finance_orders",
}


def counts(db):
    return {what: int(harness.psql(db, sql)) for what, sql in COUNTS.items()}


class Probe(threading.Thread):
    """A daemon's view of the migration: a read and an insert every 20 ms, each timed."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db, self.stop, self.worst, self.runs = db, threading.Event(), 0.0, 0

    def run(self):
        sql = ("BEGIN; SELECT COUNT(*) FROM orders WHERE id = 1; "
               "INSERT INTO bench_probe VALUES (now()); COMMIT;")
        while not self.stop.is_set():
            started = time.time()
            harness.psql(self.db, sql)
            self.worst = max(self.worst, time.time() - started)
            self.runs += 1
            time.sleep(0.02)


def bill(db, label):
    """Bills every due subscription by FILL, from the seeded state; the rate."""
    if FILL == "sql":
        return harness.ceiling(db, N, same_rows=True, label=f"same rows by set-based SQL, {label}")
    return harness.renewals(db, f"one tick, {label}", 1, N)


def main():
    print(f"partitioned history: {MACHINE}; N = {N:,} subscriptions, all due; filled by {FILL}\n")
    schema_before_partitioning(DB)
    harness.seed(DB, N, N)
    harness.psql(DB, "CREATE TABLE bench_probe (at TIMESTAMPTZ)")
    plain = bill(DB, "not partitioned")

    before = counts(DB)
    size = int(harness.psql(DB, "SELECT pg_database_size(current_database())"))
    harness.psql(DB, f"DELETE FROM _sqlx_migrations WHERE version = {PARTITIONING}")
    probe = Probe(DB)
    probe.start()
    time.sleep(0.5)
    started = time.time()
    subprocess.run([BIN, "migrate"], env=harness.env_for(DB), check=True, capture_output=True)
    took = time.time() - started
    time.sleep(0.5)
    probe.stop.set()
    probe.join()
    after = counts(DB)
    keys = {
        "order keys": (int(harness.psql(DB, "SELECT COUNT(*) FROM order_keys")), after["orders"]),
        "payment keys": (int(harness.psql(DB, "SELECT COUNT(*) FROM payment_keys")), after["payments"]),
        "outbox keys": (int(harness.psql(DB, "SELECT COUNT(*) FROM outbox_keys")),
                        int(harness.psql(DB, "SELECT COUNT(*) FROM outbox WHERE kind IN "
                                             "('order_confirmation', 'renewal_reminder')"))),
    }
    complete = all(k == rows for k, rows in keys.values())
    parents = int(harness.psql(DB, "SELECT COUNT(*) FROM pg_partitioned_table"))
    harness.record("migration to partitions", f"{took:.1f} s",
                   f"on {before['orders']:,} orders, {before['order lines']:,} lines, {before['payments']:,} "
                   f"payments, {before['events']:,} events, {before['outbox']:,} messages "
                   f"({size / 2**30:.2f} GiB); counts and revenue "
                   f"{'equal' if before == after else f'WRONG: {before} then {after}'}; "
                   f"keys {'complete' if complete else f'WRONG: {keys}'}; "
                   f"{parents} partitioned tables{'' if parents == 5 else ' (WRONG: 5 expected)'}")
    harness.record("longest wait of a read+insert beside it", f"{probe.worst:.2f} s",
                   f"{probe.runs} probes every 20 ms during the migration")

    partitioned = bill(DB, "partitioned")
    harness.record("partitioned / not partitioned", f"{partitioned / plain:.2f}", "rates in this run")
    harness.finish("partition-", "Partitioned history",
                   f"{MACHINE}; N = {N:,} subscriptions, all due; billed by {FILL}")


if __name__ == "__main__":
    main()
