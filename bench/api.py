#!/usr/bin/env python3
"""The HTTP API against PostgreSQL itself, in one run on this machine (see docs/benchmarks.md).
Run through bench/api.sh.

Seeds BENCH_N subscriptions (none due, so the daemon's sweeps stay idle), starts `subsave run`,
and measures with wrk (a Lua script per request kind) at 1, 8 and 32 connections:
GET /v1/subscriptions/{random id}, and POST /v1/subscriptions/{random id}/skip with a fresh
Idempotency-Key each (a write transaction, its event, its email and its stored response).
In the same run, pgbench's select-only (-S) and simple-update (-b simple-update) at the same
client counts give PostgreSQL's own ceiling on this machine; the ratios compare the two.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import run as harness  # noqa: E402  (the seeding and psql helpers of the main harness)

N = int(os.environ.get("BENCH_N", "1000000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
BIN = os.environ["BENCH_SUBSAVE_BIN"]
DB = "bench_api"
PORT = 18181
QUICK = harness.QUICK
CONNECTIONS = (1, 8) if QUICK else (1, 8, 32)

# What a skip through the API writes, as plain SQL in one transaction (a pgbench custom script):
# the idempotency key reserved, the subscription locked and moved on a cycle, its event, its
# email in the outbox with a payload of the same size, and the stored response. The ceiling
# for POST .../skip, beside pgbench's simple-update.
SKIP_SQL = """\\set id random(1, %(n)d)
BEGIN;
INSERT INTO idempotency_keys (api_key_id, key, route, fingerprint, created_at, locked_at)
  VALUES (1, 'pgb-' || :client_id || '-' || txid_current(), 'POST /v1/subscriptions/{id}/skip',
          sha256(:id::text::bytea), now(), now());
SELECT s.*, c.email, c.name FROM subscriptions s JOIN customers c ON c.id = s.customer_id
  WHERE s.id = :id FOR UPDATE OF s;
UPDATE subscriptions SET next_cycle = next_cycle + 1, next_renewal_at = next_renewal_at + interval '30 days',
  updated_at = now() WHERE id = :id;
INSERT INTO subscription_events (subscription_id, kind, actor, at, cycle, detail)
  VALUES (:id, 'skip', 'api:bench', now(), 1, jsonb_build_object('before', repeat('x', 300), 'after', repeat('x', 300)));
INSERT INTO outbox (kind, recipient, subscription_id, cycle, payload, next_attempt_at, created_at)
  VALUES ('skipped', 'c' || :id || '@example.com', :id, 1, jsonb_build_object('p', repeat('x', 900)), now(), now());
UPDATE idempotency_keys SET status = 200, response = repeat('x', 700), completed_at = now()
  WHERE api_key_id = 1 AND key = 'pgb-' || :client_id || '-' || txid_current();
COMMIT;
"""

GET_LUA = """
math.randomseed(os.time())
request = function()
  local id = math.random(1, %(n)d)
  return wrk.format("GET", "/v1/subscriptions/" .. id, {["Authorization"] = "Bearer %(key)s"})
end
"""

# Each connection's thread numbers its keys; a skip moves the subscription on a cycle, so any
# subscription can be skipped again (a fresh key each time: every request is a new write).
SKIP_LUA = """
local counter = 0
local thread_id = 0
setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
math.randomseed(os.time())
request = function()
  counter = counter + 1
  local id = math.random(1, %(n)d)
  return wrk.format("POST", "/v1/subscriptions/" .. id .. "/skip", {
    ["Authorization"] = "Bearer %(key)s",
    ["Idempotency-Key"] = "bench-" .. %(run)d .. "-" .. tostring(tid) .. "-" .. counter,
  })
end
"""


def percentile_ms(out, pct):
    """A percentile from wrk's "Latency Distribution" section, in milliseconds."""
    found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not found:
        sys.exit(f"no {pct}% line in wrk's output:\n{out}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(script, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{SECONDS}s",
                          "--latency", "-s", f.name, f"http://127.0.0.1:{PORT}"],
                         check=True, capture_output=True, text=True).stdout
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = percentile_ms(out, 50)
    p99 = percentile_ms(out, 99)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return rps, p50, p99, int(errors.group(1)) if errors else 0, total


def pgbench(mode, clients, db="bench_pgbench"):
    out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", *mode, "-c", str(clients),
                          "-j", str(min(clients, 2)), "-T", str(SECONDS), db],
                         check=True, capture_output=True, text=True).stdout
    tps = float(next(line for line in out.splitlines() if line.startswith("tps")).split()[2])
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return tps, latency


def start_daemon(db, key_name="bench", **extra):
    """`subsave run` on `db` serving the API on PORT without limits, and a write key named
    `key_name` for it: (the process, the key), once it listens."""
    env = harness.env_for(db, SUBSAVE_WEB__LISTEN=f"127.0.0.1:{PORT}", SUBSAVE_HTTP__LISTEN="127.0.0.1:18180",
                          SUBSAVE_API__REQUESTS_PER_MINUTE="100000000", SUBSAVE_WEB__REQUESTS_PER_MINUTE="100000000",
                          SUBSAVE_WEB__LINK_KEYS="k1:bench-link-key-bench-link-key-bench-link-key",
                          SUBSAVE_MAIL__TRANSPORT="log", SUBSAVE_HTTP__MAX_CONNECTIONS="256",
                          SUBSAVE_DATABASE__MAX_CONNECTIONS="16", RUST_LOG="error", **extra)
    key = subprocess.run([BIN, "api-keys", "create", "--name", key_name, "--scope", "write", "--json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    key = re.search(r'"key":\s*"([^"]+)"', key).group(1)
    daemon = subprocess.Popen([BIN, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness.wait_port(PORT)
    time.sleep(1)
    return daemon, key


def main():
    machine = f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"
    print(f"subsave API benchmark: {machine}; N = {N:,}; {SECONDS} s per measure\n")
    harness.fresh_db(DB)
    # Nothing due for a year: the daemon's sweeps find no work while wrk runs.
    secs = harness.seed(DB, N, 0, rest_from="2027-06-06T00:00:00Z")
    harness.record("seed", f"{N:,} subscriptions", f"{secs:.0f} s")
    daemon, key = start_daemon(DB)
    try:
        harness.psql("postgres", "DROP DATABASE IF EXISTS bench_pgbench WITH (FORCE)")
        harness.psql("postgres", "CREATE DATABASE bench_pgbench")
        subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-i", "-s", "10", "-q", "bench_pgbench"],
                       check=True, capture_output=True)
        results = {}
        for c in CONNECTIONS:
            rps, p50, p99, bad, _ = wrk(GET_LUA % {"n": N, "key": key}, c)
            if bad:
                harness.record(f"GET, {c} conn.", "WRONG", f"{bad} responses were not 2xx")
            tps, lat = pgbench(["-S"], c)
            results[("get", c)] = (rps, p99)
            harness.record(f"GET /v1/subscriptions/{{id}}, {c} conn.", f"{rps:,.0f} req/s",
                   f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; non-2xx {bad}")
            harness.record(f"pgbench select-only, {c} client(s)", f"{tps:,.0f} tps", f"latency avg {lat:.2f} ms")
            harness.record(f"ratio GET / select-only, {c}", f"{rps / tps:.2f}", "target ≥ 0.6 at 8")
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(SKIP_SQL % {"n": N})
            skip_script = f.name
        for run, c in enumerate(CONNECTIONS):
            before = skips()
            rps, p50, p99, bad, total = wrk(SKIP_LUA % {"n": N, "key": key, "run": run}, c)
            # Every 2xx skip wrote exactly one `skip` event; nothing else writes one meanwhile. wrk
            # counts answered requests: up to one per connection may be cut off at the end after
            # the server committed it.
            skipped = skips() - before
            ok = "" if bad == 0 and total <= skipped <= total + c else f"WRONG: {skipped:,} skips written for {total:,} requests; "
            tps, lat = pgbench(["-b", "simple-update"], c)
            same, same_lat = pgbench(["-n", "-f", skip_script], c, db=DB)
            results[("skip", c)] = (rps, p99)
            harness.record(f"POST /v1/subscriptions/{{id}}/skip, {c} conn.", f"{rps:,.0f} req/s",
                   f"{ok}p50 {p50:.2f} ms, p99 {p99:.2f} ms; non-2xx {bad}")
            harness.record(f"pgbench simple-update, {c} client(s)", f"{tps:,.0f} tps", f"latency avg {lat:.2f} ms")
            harness.record(f"pgbench writing a skip's rows, {c} client(s)", f"{same:,.0f} tps", f"latency avg {same_lat:.2f} ms")
            harness.record(f"ratio POST / simple-update, {c}", f"{rps / tps:.2f}", "for comparison with earlier runs")
            harness.record(f"ratio POST / a skip's rows in SQL, {c}", f"{rps / same:.2f}", "target ≥ 0.6")
        os.unlink(skip_script)
        with open(f"/proc/{daemon.pid}/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM")).split()[1]
        harness.record("subsave run peak RSS", f"{int(hwm) / 1024:.0f} MiB", "target < 64 MiB")
        harness.record("p99 at 8 connections", f"GET {results[('get', 8)][1]:.2f} ms, POST {results[('skip', 8)][1]:.2f} ms",
               "target < 20 ms")
    finally:
        daemon.terminate()
        daemon.wait()
    if not QUICK:
        harness.write_results("api-", "subsave API benchmark", f"{machine}\n\nN = {N:,}, {SECONDS} s per measure", harness.rows)
    if harness.wrong:
        sys.exit(f"WRONG counts in: {'; '.join(harness.wrong)}")


def skips():
    return int(harness.psql(DB, "SELECT COUNT(*) FROM subscription_events WHERE kind = 'skip'"))


if __name__ == "__main__":
    main()
