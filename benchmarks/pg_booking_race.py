"""2,000 participants race for 100 seats of one consultation against TWO `lms-bridge serve` processes on one
PostgreSQL database, as two application servers behind a load balancer.

A throwaway PostgreSQL cluster is started on 127.0.0.1 (tests/pg_cluster.py) and stopped afterwards. The store
is seeded directly as in booking_race.py (a platform, an expert with one published 100-seat slot, one launch per
participant with its signed launch token); both servers share the data directory (one secret) and the database.
Then `--concurrency` client threads send every participant's POST /consultations/book, alternately to server A
and server B. Expected: exactly 100 seats taken, every other attempt a clear "full" (409 slot_full), 0 errors.

    .venv/bin/python benchmarks/pg_booking_race.py [--attempts 2000] [--seats 100] [--concurrency 100]
                                                   [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.booking_race import seed, stop_server  # noqa: E402
from benchmarks.launch import BIN, free_port, pct  # noqa: E402
from pg_cluster import cluster  # noqa: E402


def create_database(admin_url: str, name: str) -> str:
    import psycopg

    from lms_bridge.db.pg import dsn

    with psycopg.connect(dsn(admin_url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def run_server(data: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    """`lms-bridge serve` on the run's store (the environment names it); its log goes to a file, not a pipe
    that a busy server could fill."""
    env = dict(os.environ, LMS_BRIDGE_DATA=data, LMS_BRIDGE_URL=f"http://127.0.0.1:{port}")
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", str(workers)], env=env,
                                stdout=subprocess.DEVNULL, stderr=fh, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited: " + log.read_text()[-2000:])
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    os.killpg(proc.pid, 9)
    raise SystemExit("the server did not start within 60 s")


def race(urls: list[str], tokens: list[str], slot: int, concurrency: int) -> tuple[list[tuple[int, str]], list[float]]:
    """Every token's booking attempt, the i-th sent to urls[i % len(urls)]; (server index, outcome) each."""
    barrier = threading.Barrier(concurrency)
    local = threading.local()

    def attempt(i: int):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False
            barrier.wait(timeout=120)  # every client thread starts at once
        server = i % len(urls)
        t0 = time.perf_counter()
        try:
            resp = local.session.post(urls[server] + "/consultations/book", timeout=120,
                                      headers={"X-Launch-Token": tokens[i]},
                                      json={"slot_id": slot, "topic": "Data and indicators",
                                            "question": "Which indicators?"})
        except requests.RequestException as e:
            return (server, f"network error {type(e).__name__}"), time.perf_counter() - t0
        elapsed = time.perf_counter() - t0
        body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
        if resp.status_code == 201 and body.get("ok"):
            return (server, "booked"), elapsed
        if resp.status_code == 409 and body.get("error") == "slot_full":
            return (server, "full"), elapsed
        if resp.status_code >= 500:
            return (server, "5xx"), elapsed
        return (server, f"other {resp.status_code} {body.get('error')}"), elapsed

    # The first `concurrency` attempts each open one client thread (so the barrier releases them together).
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(attempt, range(len(tokens))))
    return [r for r, _ in results], [t for _, t in results]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=2000)
    ap.add_argument("--seats", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers of each server")
    args = ap.parse_args()
    args.concurrency = max(1, min(args.concurrency, args.attempts))
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with cluster() as admin_url, tempfile.TemporaryDirectory() as data:
        database = create_database(admin_url, "lms_bridge_race")
        # Every process this run starts (the seeding app, both servers) uses this store.
        os.environ["LMS_BRIDGE_DATABASE_URL"] = database
        tokens, slot = seed(data, urls[0], args.attempts, args.seats)
        servers = []
        try:
            for n, port in enumerate(ports):
                servers.append(run_server(data, port, args.workers, Path(data) / f"server{n}.log"))
            started = time.perf_counter()
            outcomes, latencies = race(urls, tokens, slot, args.concurrency)
            elapsed = time.perf_counter() - started
        finally:
            for proc in servers:
                stop_server(proc)
        from lms_bridge.db import connect

        db = connect(database)
        stored = db.execute("SELECT COUNT(*) FROM bookings WHERE status = 'booked'").fetchone()[0]
        seat_count = db.execute("SELECT booked FROM booking_slots WHERE id = ?", [slot]).fetchone()[0]
        per_person = db.execute("SELECT COUNT(*) FROM (SELECT participant_id FROM bookings WHERE status = 'booked'"
                                " GROUP BY participant_id HAVING COUNT(*) > 1) twice").fetchone()[0]
        db.close()
    counts = Counter(o for _, o in outcomes)
    by_server = [Counter(o for s, o in outcomes if s == n) for n in range(len(urls))]
    errors = sum(v for k, v in counts.items() if k not in ("booked", "full"))
    print(f"servers: 2 x lms-bridge serve --workers {args.workers} on one PostgreSQL database; "
          f"{args.concurrency} client threads")
    print(f"attempts: {len(outcomes)}  seats: {args.seats}")
    print(f"seats taken (201): {counts['booked']}  (server A {by_server[0]['booked']}, "
          f"server B {by_server[1]['booked']})")
    print(f"full (409 slot_full): {counts['full']}")
    print(f"errors: {errors}  of which 5xx: {counts['5xx']}" +
          (f"  ({ {k: v for k, v in counts.items() if k not in ('booked', 'full')} })" if errors else ""))
    print(f"stored bookings: {stored}; slot seat count: {seat_count}; participants with two bookings: {per_person}")
    print(f"time: {elapsed:.2f} s = {len(outcomes) / elapsed:.0f} attempts/s; latency p50 {pct(latencies, 50):.1f} ms"
          f"  p95 {pct(latencies, 95):.1f} ms  max {max(latencies) * 1000:.1f} ms")
    ok = (counts["booked"] == stored == seat_count == args.seats and errors == 0 and per_person == 0
          and counts["full"] == args.attempts - args.seats)
    print("result: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
