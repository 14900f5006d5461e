"""200 participants race for 10 seats of one consultation against `lms-bridge serve --workers 2`.

The store is seeded directly (a platform, an expert with one published 10-seat slot, one launch per
participant with its signed launch token); then every participant POSTs /consultations/book at once.
Expected: exactly 10 bookings, 190 clear "full" answers (409 slot_full), 0 server errors.

    .venv/bin/python benchmarks/booking_race.py [--attempts 200] [--seats 10] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.launch import BIN, free_port, pct  # noqa: E402
from lms_bridge import create_app  # noqa: E402
from lms_bridge.cli import prepare  # noqa: E402
from lms_bridge.db import booking as bq  # noqa: E402
from lms_bridge.db import connect, ts, write_transaction  # noqa: E402
from lms_bridge.db import lti as lti_q  # noqa: E402
from lms_bridge.lti.context import issue_token  # noqa: E402


def seed(data: str, tool_url: str, attempts: int, seats: int) -> tuple[list[str], int]:
    """Returns the participants' launch tokens and the slot id."""
    app = create_app({"DATA_DIR": data, "TOOL_URL": tool_url})
    prepare(app)
    db = connect(app.config["DATABASE_URL"])
    platform = lti_q.add_platform(db, issuer="https://moodle.example", client_id="bench",
                                  auth_login_url="https://moodle.example/auth", auth_token_url="https://moodle.example/t",
                                  key_set_url="https://moodle.example/jwks", deployment_ids=["1"])
    scope = (platform, "1", "2")
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(days=7)
    now, expires = datetime.now(timezone.utc), datetime.now(timezone.utc) + timedelta(hours=2)
    with write_transaction(db):
        expert = bq.upsert_expert(db, scope, "expert", name="Eun-ji Expert", email="expert@example.org",
                                  timezone="Asia/Seoul")
        bq.insert_slot(db, expert, ts(start), ts(start + timedelta(hours=1)), seats)
        slot = bq.expert_slots(db, expert)[0]["id"]
        for n in range(attempts):
            db.execute("INSERT INTO launches (id, platform_id, deployment_id, context_id, context_title, user_id,"
                       " user_name, role, message_type, resource_link_id, activity, timezone, claims, created_at,"
                       " expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       [f"bench-{n}", platform, "1", "2", "Benchmark course", f"p{n}", f"Participant {n}", "learner",
                        "LtiResourceLinkRequest", "4", "consultations", "Asia/Jakarta", json.dumps({}), ts(now),
                        ts(expires)])
    db.close()
    with app.app_context():
        tokens = [issue_token(f"bench-{n}") for n in range(attempts)]
    return tokens, slot


def run_server(data: str, port: int, workers: int) -> subprocess.Popen:
    env = dict(os.environ, LMS_BRIDGE_DATA=data, LMS_BRIDGE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen([str(BIN), "serve", "--migrate", "--port", str(port), "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited: " + proc.stderr.read().decode()[-2000:])
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start within 30 s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not gone after 15 s."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def race(tool_url: str, tokens: list[str], slot: int) -> tuple[Counter, list[float]]:
    barrier = threading.Barrier(len(tokens))

    def attempt(token: str):
        session = requests.Session()
        barrier.wait(timeout=60)
        t0 = time.perf_counter()
        try:
            resp = session.post(tool_url + "/consultations/book", timeout=60, headers={"X-Launch-Token": token},
                                json={"slot_id": slot, "topic": "Data and indicators", "question": "Which indicators?"})
        except requests.RequestException as e:
            return f"network error {type(e).__name__}", time.perf_counter() - t0
        elapsed = time.perf_counter() - t0
        body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
        if resp.status_code == 201 and body.get("ok"):
            return "booked", elapsed
        if resp.status_code == 409 and body.get("error") == "slot_full":
            return "full", elapsed
        if resp.status_code >= 500:
            return "server error", elapsed
        return f"other {resp.status_code} {body.get('error')}", elapsed

    with ThreadPoolExecutor(len(tokens)) as pool:
        results = list(pool.map(attempt, tokens))
    return Counter(r for r, _ in results), [t for _, t in results]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attempts", type=int, default=200)
    ap.add_argument("--seats", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    port = free_port()
    tool_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        tokens, slot = seed(data, tool_url, args.attempts, args.seats)
        proc = run_server(data, port, args.workers)
        try:
            counts, latencies = race(tool_url, tokens, slot)
        finally:
            stop_server(proc)
        db = connect(str(Path(data) / "lms_bridge.sqlite3"))
        stored = db.execute("SELECT COUNT(*) FROM bookings WHERE status = 'booked'").fetchone()[0]
        seat_count = db.execute("SELECT booked FROM booking_slots WHERE id = ?", [slot]).fetchone()[0]
        db.close()
    other = {k: v for k, v in counts.items() if k not in ("booked", "full", "server error")}
    print(f"server: lms-bridge serve --workers {args.workers}; {args.attempts} concurrent booking attempts "
          f"for {args.seats} seats")
    print(f"booked (201): {counts['booked']}")
    print(f"full (409 slot_full): {counts['full']}")
    print(f"server errors (5xx): {counts['server error']}")
    if other:
        print(f"other answers: {other}")
    print(f"stored bookings: {stored}; slot seat count: {seat_count}")
    print(f"latency p50 {pct(latencies, 50):.1f} ms  p95 {pct(latencies, 95):.1f} ms  max {max(latencies) * 1000:.1f} ms")
    ok = (counts["booked"] == stored == seat_count == args.seats and counts["full"] == args.attempts - args.seats
          and counts["server error"] == 0 and not other)
    print("result: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
