#!/usr/bin/env python3
"""The console's overview on a large database, in one run on this machine (see
docs/benchmarks.md). Run through bench/console.sh [N].

Seeds N subscriptions (default 1,000,000) with their `created` events (the history the
metrics read), bills BENCH_D of them (default N / 4) with one real `subsave tick` 20 days
ago (the others renew over the next 170 days, so about half fall in the units forecast's 90
days), starts `subsave run` with the console (its system clock; the sweep yearly, so it idles),
signs in with an admin key and times GET / over HTTP: how long after the start the overview
is ready (the daemon computes the default period in the background; meanwhile the page
answers 503 within 5 s and reloads itself), the kept views after it, and a period nobody
asked for before (until it is shown: the computation's own time) and again (kept); then
restarts the daemon and times its first view (the report kept in the database). Checks the
counts the overview shows: the billed subscriptions at the end of the period, 200 answers,
and no 503 after the restart. Drops the database at the end.
"""

import datetime
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import run as harness  # noqa: E402  (seeding, psql, ticks, records)
import api  # noqa: E402  (the daemon)

N = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_N", "1000000"))
D = int(os.environ.get("BENCH_D", str(N // 4)))
DB = "bench_console"
BIN = os.environ["BENCH_SUBSAVE_BIN"]
CONSOLE = 18182
WARM = 5


def request(method, path, cookie="", body=None):
    """(status, headers, body, seconds) of one request to the console."""
    conn = http.client.HTTPConnection("127.0.0.1", CONSOLE, timeout=600)
    headers = {"cookie": cookie} if cookie else {}
    if body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    text = answer.read().decode()
    secs = time.perf_counter() - started
    conn.close()
    return answer.status, answer.getheaders(), text, secs


def cookie_of(headers, name):
    for key, value in headers:
        if key.lower() == "set-cookie" and value.startswith(f"{name}="):
            return value.split(";")[0]
    sys.exit(f"no {name} cookie")


def sign_in(key):
    _, headers, form, _ = request("GET", "/sign-in")
    pre = cookie_of(headers, "subsave_console_sign_in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "key": key})
    status, headers, _, _ = request("POST", "/sign-in", pre, body)
    if status != 303:
        sys.exit(f"sign-in answered {status}")
    return cookie_of(headers, "subsave_console")


def ready(path, session):
    """GETs `path` every second until it answers 200: (page, requests answered 503 before, the
    slowest answer's seconds). Anything but 200 or 503 is wrong."""
    tries, slowest = 0, 0.0
    while True:
        status, _, page, secs = request("GET", path, session)
        slowest = max(slowest, secs)
        if status == 200:
            return page, tries, slowest
        if status != 503 or tries > 600:
            harness.record(f"GET {path}", "WRONG", f"answered {status} after {tries} tries")
            return page, tries, slowest
        tries += 1
        time.sleep(1)


def ms(secs):
    return f"{secs * 1000:,.0f} ms"


def main():
    machine = f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"
    print(f"the console's overview: {machine}; N = {N:,} subscriptions, {D:,} billed\n")
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=11, minute=0, second=0, microsecond=0)
    due = today - datetime.timedelta(days=20)
    harness.fresh_db(DB)
    try:
        secs = harness.seed(DB, N, D, due_at=due.isoformat(), rest_from=(today + datetime.timedelta(days=1)).isoformat())
        # Each subscription's `created` event, as the store writes it (the state after it).
        harness.psql(DB, """
INSERT INTO subscription_events (subscription_id, kind, actor, at, cycle, detail)
SELECT id, 'created', 'bench', created_at, NULL, jsonb_build_object('after', jsonb_build_object(
  'id', id, 'status', status, 'plan', plan_id, 'quantity', quantity,
  'interval', interval_count || ' ' || interval_unit || 's'), 'detail', jsonb_build_object('coupon', NULL))
FROM subscriptions;
ANALYZE;
""")
        harness.record("seed", f"{N:,} subscriptions", f"{secs:.0f} s, with their `created` events")
        secs, _ = harness.run_ticks(DB, 1, now=(due + datetime.timedelta(hours=1)).isoformat())
        got = harness.orders(DB)
        ok = "exactly" if got == D else f"WRONG: {got:,}"
        harness.record("orders billed by one `subsave tick`", f"{got:,}", f"{ok} {D:,} due; {secs:.0f} s")
        harness.record("database", f"{int(harness.psql(DB, 'SELECT pg_database_size(current_database())')) / 2**30:.2f} GiB")

        # The tick's confirmations count as delivered: the daemon below serves the console only.
        harness.psql(DB, "UPDATE outbox SET status = 'sent', sent_at = now() WHERE status = 'pending'")
        env = harness.env_for(DB)
        key = subprocess.run([BIN, "api-keys", "create", "--name", "console", "--scope", "admin", "--json"],
                             env=env, check=True, capture_output=True, text=True).stdout
        key = re.search(r'"key":\s*"([^"]+)"', key).group(1)
        started = time.perf_counter()
        daemon, _ = api.start_daemon(DB, SUBSAVE_ADMIN__LISTEN=f"127.0.0.1:{CONSOLE}",
                                     SUBSAVE_ENGINE__SWEEP="0 0 0 1 1 *")
        try:
            harness.wait_port(CONSOLE)
            session = sign_in(key)
            # The page answers 503 (and reloads itself) while the daemon computes the default
            # period in the background: asked again every second until it shows the report.
            page, tries, slowest = ready("/", session)
            waited = time.perf_counter() - started
            # The billed subscriptions at the end of the period, in the MRR table.
            shown = f'<td class="num">{D}</td>' in page
            harness.record("overview ready after the daemon starts", f"{waited:,.1f} s",
                           f"the background computation of the default period; {tries} requests before, "
                           f"each answered within {ms(slowest)}; "
                           + (f"shows {D:,} subscriptions" if shown else f"WRONG: {D:,} subscriptions not shown"))
            kept = []
            for _ in range(WARM):
                status, _, page, secs = request("GET", "/", session)
                if status != 200 or f'<td class="num">{D}</td>' not in page:
                    harness.record("overview, kept", "WRONG", f"answered {status}")
                kept.append(secs)
            harness.record(f"overview, kept metrics ({WARM} views)", f"median {ms(statistics.median(kept))}",
                           f"max {ms(max(kept))}; {len(page):,} bytes of HTML")
            other = f"/?from={(today - datetime.timedelta(days=90)).date()}&to={today.date()}"
            asked = time.perf_counter()
            _, tries, slowest = ready(other, session)
            computed = time.perf_counter() - asked
            status, _, _, warm = request("GET", other, session)
            harness.record("overview of another period, first asked", f"{computed:,.1f} s until shown",
                           f"{tries} requests answered 503 within {ms(slowest)} meanwhile; then kept: {ms(warm)}"
                           + ("" if status == 200 else f"; WRONG: {status}"))
            status, _, _, secs = request("GET", "/queues", session)
            harness.record("queues page", ms(secs), "" if status == 200 else f"WRONG: {status}")
        finally:
            daemon.terminate()
            daemon.wait()
        # A restarted daemon shows the report the one before it kept in the database at once
        # (it is younger than half its life), without computing it again.
        started = time.perf_counter()
        daemon, _ = api.start_daemon(DB, key_name="bench-restart", SUBSAVE_ADMIN__LISTEN=f"127.0.0.1:{CONSOLE}",
                                     SUBSAVE_ENGINE__SWEEP="0 0 0 1 1 *")
        try:
            harness.wait_port(CONSOLE)
            session = sign_in(key)
            signed_in = time.perf_counter()
            page, tries, slowest = ready("/", session)
            shown = f'<td class="num">{D}</td>' in page
            harness.record("overview after a restart", ms(time.perf_counter() - signed_in),
                           f"first view, from the report kept in the database "
                           f"({ms(signed_in - started)} from the start to a session)"
                           + ("" if tries == 0 else f"; WRONG: {tries} requests answered 503 first")
                           + ("" if shown else f"; WRONG: {D:,} subscriptions not shown"))
        finally:
            daemon.terminate()
            daemon.wait()
    finally:
        # About a gigabyte at full size: the database goes when the run ends.
        harness.psql("postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    harness.finish("console-", "the console's overview", f"{machine}\n\nN = {N:,}, billed {D:,}")


if __name__ == "__main__":
    main()
