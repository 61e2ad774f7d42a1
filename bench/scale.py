#!/usr/bin/env python3
"""Measured limits at scale, in one run on this machine (see docs/scaling.md and
docs/benchmarks.md). Run through bench/scale.sh.

Seeds BENCH_N subscriptions (default 10,000,000), BENCH_D of them due (default 1,000,000),
then measures: the seed's duration and the database's size; the renewal sweep of the due ones
by one `subsave tick` (exactly one order each, checked); the database's growth per order and,
from it, its size per 1,000,000 subscriptions a year at the seeded plan mix; an export of the
new orders (rows checked, peak memory); the API's GET and POST rates with wrk at 8 connections
(`subsave run` on the same database); and the connections a replica holds. All of it twice
in one run: with history partitioned (PostgreSQL migration 19), then on the tables as they were
before partitioning (BENCH_SCHEMAS picks; bench/partition.sh measures the migration itself).
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import run as harness  # noqa: E402  (seeding, psql, ticks, records)
import api  # noqa: E402  (wrk and its request scripts)
import partition  # noqa: E402  (the schema before partitioning)

N = int(os.environ.get("BENCH_N", "10000000"))
# Which histories to measure, one after the other: BENCH_SCHEMAS=partitioned for one.
SCHEMAS = os.environ.get("BENCH_SCHEMAS", "partitioned,not partitioned").split(",")
D = int(os.environ.get("BENCH_D", "1000000"))
DB = "bench_scale"
BIN = os.environ["BENCH_SUBSAVE_BIN"]
# The seeded plan mix: 30, 60, 90 and 180 days in equal parts (bench/run.py's seed).
RENEWALS_PER_YEAR = sum(365 / d for d in (30, 60, 90, 180)) / 4


def size(db):
    return int(harness.psql(db, "SELECT pg_database_size(current_database())"))


def gib(b):
    return f"{b / 2**30:.2f} GiB"


def export_orders(db):
    """`orders export` of the sweep's billing day: (rows, seconds, peak RSS MiB)."""
    started = time.time()
    child = subprocess.Popen([BIN, "orders", "export", "--from", "2026-06-01", "--to", "2026-06-01"],
                             env=harness.env_for(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rows = sum(1 for _ in child.stdout) - 1
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"export failed: {child.stderr.read().decode()}")
    return rows, time.time() - started, usage.ru_maxrss / 1024


def main():
    machine = f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"
    print(f"subsave at scale: {machine}; N = {N:,} subscriptions, D = {D:,} due\n")
    for schema in SCHEMAS:
        measure(schema)
    harness.finish("scale-", "subsave at scale", f"{machine}\n\nN = {N:,}, D = {D:,}; history "
                   + " and ".join(SCHEMAS) + ", one after the other on one database name")


def measure(schema):
    """Every measure on a fresh database whose history is `schema`: "partitioned" (every
    migration), or "not partitioned" (bench/partition.py's schema before partitioning, with
    the partitioning migration recorded so this build runs on it)."""
    def record(what, value, note):
        harness.record(f"{what} ({schema})", value, note)

    if schema == "partitioned":
        harness.fresh_db(DB)
    else:
        partition.schema_before_partitioning(DB)
    empty = size(DB)
    # The rest renew from mid-2027, so the API's daemon finds nothing due by the wall clock.
    secs = harness.seed(DB, N, D, rest_from="2027-06-06T00:00:00Z")
    seeded = size(DB)
    record("seed", f"{N:,} subscriptions", f"{secs:.0f} s; database {gib(seeded)}")

    secs, rss = harness.run_ticks(DB, 1)
    got = harness.orders(DB)
    ok = "exactly" if got == D else f"WRONG: {got:,}"
    record("sweep, 1 `subsave tick`", f"{D / secs:,.0f} renewals/s",
                   f"{D:,} due in {secs:.0f} s; {ok} {D:,} orders; peak RSS {rss:.0f} MiB")
    grown = size(DB) - seeded
    per_order = grown / max(got, 1)
    record("database growth per order", f"{per_order:,.0f} bytes",
                   "order, lines, payment, events and outbox row, with their indexes")
    per_subscription = (seeded - empty) / N
    record("database size per 1,000,000 subscriptions a year",
                   gib(1_000_000 * (per_subscription + RENEWALS_PER_YEAR * per_order)),
                   f"{per_subscription:,.0f} bytes per subscription and customer + "
                   f"{RENEWALS_PER_YEAR:.2f} orders a year each (the seeded 30/60/90/180-day mix), "
                   "outbox kept (no purge)")

    rows, secs, rss = export_orders(DB)
    ok = "" if rows == D else f"WRONG: {rows:,} rows; "
    record("orders export (CSV)", f"{rows / secs:,.0f} rows/s", f"{ok}{rows:,} rows in {secs:.0f} s; peak RSS {rss:.0f} MiB")

    # The sweep's confirmations count as delivered: the daemon below serves the API only.
    harness.psql(DB, "UPDATE outbox SET status = 'sent', sent_at = now() WHERE status = 'pending'")
    # Its sweep is yearly: nothing runs beside the API's requests.
    daemon, key = api.start_daemon(DB, SUBSAVE_ENGINE__SWEEP="0 0 0 1 1 *")
    try:
        rps, p50, p99, bad, _ = api.wrk(api.GET_LUA % {"n": N, "key": key}, 8)
        record("GET /v1/subscriptions/{id}, 8 conn.", f"{rps:,.0f} req/s",
                       f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; " + (f"WRONG: {bad} non-2xx" if bad else "non-2xx 0"))
        rps, p50, p99, bad, _ = api.wrk(api.SKIP_LUA % {"n": N, "key": key, "run": 0}, 8)
        record("POST /v1/subscriptions/{id}/skip, 8 conn.", f"{rps:,.0f} req/s",
                       f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; " + (f"WRONG: {bad} non-2xx" if bad else "non-2xx 0"))
        held = int(harness.psql("postgres", f"SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{DB}' "
                                            "AND application_name = 'subsave'"))
        record("connections held by one `subsave run`", f"{held}",
                       "database.max_connections = 16; the pool opens them as work needs them")
    finally:
        daemon.terminate()
        daemon.wait()
        # Gigabytes at full size: the database goes when the run ends.
        harness.psql("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
