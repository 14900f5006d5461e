"""1,000 released grades delivered to the sandbox LMS through the outbox, under latency and failures.

The sandbox runs in its own server process on 127.0.0.1 with 50 ms added to every AGS/token call and
20% of them answering 500; this process is the worker. Prints total time, worker CPU per grade, calls
made, grades lost and duplicates, and checks the time against 2 x (grades x latency / concurrency). Stops by itself.

    .venv/bin/python benchmarks/sync.py [--grades 1000] [--concurrency 8] [--latency-ms 50] [--fail-ratio 0.2]
    .venv/bin/python benchmarks/sync.py --grades 100000 --latency-ms 5 --no-time-limit   # CPU per grade
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import requests

from lms_bridge import create_app
from lms_bridge.cli import prepare
from lms_bridge.db import connect, write_transaction
from lms_bridge.db import outbox as ob
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox import issuer
from lms_bridge.sandbox.platform import ensure_registered
from lms_bridge.sandbox.webservice import link_tool
from lms_bridge.sync.worker import deliver_due

SERVER = textwrap.dedent("""
    import sys
    from lms_bridge import create_app
    from lms_bridge.server import run
    config = {"DATA_DIR": sys.argv[1], "TOOL_URL": sys.argv[2], "SANDBOX_ENABLED": True}
    run(lambda: create_app(config), host="127.0.0.1", port=int(sys.argv[3]), workers=1, threads=64)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the sandbox server at {url} did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grades", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--fail-ratio", type=float, default=0.2)
    ap.add_argument("--time-limit", action=argparse.BooleanOptionalAction, default=True,
                    help="fail beyond 2 x ideal (off for a CPU-per-grade run such as --latency-ms 5)")
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="lms-bridge-sync-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app({"DATA_DIR": data, "TOOL_URL": url, "SANDBOX_ENABLED": True,
                      "OUTBOX_CONCURRENCY": args.concurrency, "OUTBOX_BACKOFF_SECONDS": 0.05,
                      "OUTBOX_MAX_ATTEMPTS": 30})
    prepare(app)
    pid = ensure_registered(app)
    db = connect(app.config["DATABASE_URL"])
    link_tool(db, url)
    users = sq.seed_roster(db, args.grades)
    lineitems = f"{issuer(url)}/mod/lti/services.php/2/lineitems?type_id=1"
    expected = {}
    with write_transaction(db):
        for n, user in enumerate(users):
            expected[user] = float(n % 101)
            ob.enqueue(db, platform_id=pid, kind="ags_score", order_key=f"score:{pid}:2:final_presentation:{user}",
                       payload={"lineitems_url": lineitems, "resource_id": "final_presentation", "tag": "grade",
                                "label": "Final presentation", "score_maximum": 100, "user_id": user,
                                "score_given": expected[user], "comment": None,
                                "timestamp": "2026-11-23T12:00:00.000001+00:00",
                                "grading_progress": "FullyGraded", "activity_progress": "Completed"})
    for target in ("/sandbox/mod/lti/services.php", "/sandbox/mod/lti/token.php"):
        sq.set_fault(db, target, "latency_ms", ms=args.latency_ms)
        sq.set_fault(db, target, "fail_ratio", ratio=args.fail_ratio)

    server = subprocess.Popen([sys.executable, "-c", SERVER, data, url, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url)
        sq.reset_call_counts(db)
        give_up = max(600.0, 5 * 2 * args.grades * args.latency_ms / 1000 / args.concurrency)
        started, cpu_started = time.monotonic(), time.process_time()
        while ob.backlog(db)["outbox_pending"] and time.monotonic() - started < give_up:
            deliver_due(app)
            time.sleep(0.005)
        elapsed, worker_cpu = time.monotonic() - started, time.process_time() - cpu_started
    finally:
        server.terminate()
        server.wait(timeout=10)

    calls = sq.call_counts(db)
    rows = [r for r in sq.gradebook(db) if r["resource_id"] == "final_presentation"]
    got = {}
    for r in rows:
        got.setdefault(r["user_id"], []).append(r["score"])
    lost = sum(1 for u, v in expected.items() if not got.get(u) or abs(got[u][0] - v) > 1e-6)
    duplicates = (len({r["lineitem_id"] for r in rows}) - 1 if rows else 0) + sum(len(v) - 1 for v in got.values())
    failed = ob.backlog(db)["outbox_failed"]
    bound = 2 * args.grades * args.latency_ms / 1000 / args.concurrency
    print(f"grades: {args.grades}  concurrency: {args.concurrency}  latency: {args.latency_ms:g} ms  "
          f"transient failures: {args.fail_ratio:.0%}")
    print(f"total time: {elapsed:.2f} s  (limit {bound:.2f} s = 2 x {args.grades} x "
          f"{args.latency_ms:g} ms / {args.concurrency})")
    print(f"worker CPU: {worker_cpu:.2f} s = {worker_cpu / args.grades * 1000:.3f} ms per grade"
          " (this process only: the sandbox LMS runs in its own process)")
    print(f"calls made: {sum(calls.values())}  ({', '.join(f'{k} {v}' for k, v in calls.items())})")
    print(f"grades lost: {lost}  duplicates: {duplicates}  failed jobs: {failed}")
    db.close()
    shutil.rmtree(data, ignore_errors=True)
    ok = lost == 0 and duplicates == 0 and failed == 0 and (elapsed <= bound or not args.time_limit)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
