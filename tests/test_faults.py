"""Fault injection against the sandbox LMS: 500s, timeouts, Retry-After, slow answers, a bad token and a
worker killed mid-delivery. At the end every released grade is in the gradebook once, with its latest value."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from lms_bridge.db import connect, write_transaction
from lms_bridge.db import lti as q
from lms_bridge.db import outbox as ob
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox import CLIENT_ID, issuer
from lms_bridge.sandbox.platform import ensure_registered
from lms_bridge.sandbox.webservice import link_tool
from lms_bridge.sync.worker import deliver_due

SCORES = "/sandbox/mod/lti/services.php"


def setup(app):
    db = connect(app.config["DATABASE_URL"])
    iss = issuer(app.config["TOOL_URL"])
    platform = q.find_platform(db, iss, CLIENT_ID)
    pid = platform["id"] if platform else ensure_registered(app)
    link_tool(db, app.config["TOOL_URL"])
    return db, pid


def release(app, db, pid, user, given, minute):
    lineitems = f"{issuer(app.config['TOOL_URL'])}/mod/lti/services.php/2/lineitems?type_id=1"
    with write_transaction(db):
        return ob.enqueue(db, platform_id=pid, kind="ags_score", payload={
            "lineitems_url": lineitems, "resource_id": "project_report", "tag": "grade", "label": "Project report",
            "score_maximum": 100, "user_id": user, "score_given": given, "comment": None,
            "timestamp": f"2026-11-23T10:{minute:02d}:00.000001+00:00", "grading_progress": "FullyGraded",
            "activity_progress": "Completed"}, order_key=f"score:{pid}:2:project_report:{user}")


def drain(app, db, seconds=30):
    deadline = time.monotonic() + seconds
    def busy():  # pending jobs other than those waiting for an admin's setup
        return db.execute("SELECT count(*) FROM outbox WHERE state = 'pending' AND"
                          " COALESCE(last_error, '') NOT LIKE 'waiting for %'").fetchone()[0]

    while busy() and time.monotonic() < deadline:
        deliver_due(app)
        time.sleep(0.05)


def assert_gradebook(db, expected: dict):
    rows = [r for r in sq.gradebook(db) if r["resource_id"] == "project_report"]
    assert len({r["lineitem_id"] for r in rows}) == 1, "one line item, not one per retry"
    got = {r["user_id"]: round(r["score"], 5) for r in rows}
    assert got == expected and len(rows) == len(expected)


def test_transient_faults_lose_nothing_and_a_bad_token_waits_for_the_admin(app):
    app.config.update(OUTBOX_BACKOFF_SECONDS=0.01, OUTBOX_MAX_ATTEMPTS=25, OUTBOX_CONCURRENCY=4)
    db, pid = setup(app)
    users = sq.seed_roster(db, 12)
    sq.set_fault(db, "/sandbox/mod/lti/token.php", "status", code=500, count=2)
    sq.set_fault(db, SCORES, "status", code=503, retry_after=1, count=1)
    sq.set_fault(db, SCORES, "timeout", seconds=0.05, count=3)
    sq.set_fault(db, SCORES, "latency_ms", ms=20, count=10)
    sq.set_fault(db, SCORES, "fail_ratio", ratio=0.3)
    expected = {}
    for n, user in enumerate(users):
        release(app, db, pid, user, 50 + n, 1)
        release(app, db, pid, user, 60 + n, 2)  # a re-release: the later value must win
        expected[user] = 60 + n
    with write_transaction(db):
        message = ob.enqueue(db, platform_id=pid, kind="ws_message", payload={"user_id": 5, "text": "Grade released"})
    sq.set_fault(db, "core_message_send_instant_messages", "bad_token")
    started = time.monotonic()
    drain(app, db)
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not honoured"
    assert_gradebook(db, expected)
    waiting = ob.get_job(db, message)
    assert waiting["state"] == "pending" and waiting["attempts"] == 0 and ob.is_waiting(waiting)
    assert "platforms moodle-ws" in waiting["last_error"] and ob.backlog(db)["outbox_failed"] == 0
    assert all(j["state"] == "delivered" for j in ob.jobs_for_platform(db, pid, states=("delivered", "pending"))
               if j["kind"] == "ags_score")
    db.close()


WORKER = textwrap.dedent("""
    import sys
    from lms_bridge import create_app
    from lms_bridge.sync.worker import run_worker
    app = create_app({"DATA_DIR": sys.argv[1], "TOOL_URL": sys.argv[2], "DATABASE_URL": sys.argv[3],
                      "OUTBOX_LEASE_SECONDS": 1,
                      "OUTBOX_BACKOFF_SECONDS": 0.05, "OUTBOX_POLL_SECONDS": 0.05, "OUTBOX_CONCURRENCY": 4})
    run_worker(app)
""")


def test_a_worker_killed_mid_delivery_loses_nothing_and_duplicates_nothing(live_server):
    app = live_server
    db, pid = setup(app)
    users = sq.seed_roster(db, 20)
    sq.set_fault(db, SCORES, "latency_ms", ms=150)
    sq.set_fault(db, SCORES, "fail_ratio", ratio=0.2)
    expected = {}
    for n, user in enumerate(users):
        release(app, db, pid, user, 10 + n, 1)
        release(app, db, pid, user, 30 + n, 2)
        expected[user] = 30 + n
    worker = subprocess.Popen([sys.executable, "-c", WORKER, app.config["DATA_DIR"], app.config["TOOL_URL"],
                               app.config["DATABASE_URL"]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            delivered = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'delivered'").fetchone()[0]
            claimed = db.execute("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL").fetchone()[0]
            if delivered >= 8 and claimed:
                break
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    orphaned = db.execute("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"
                          " AND state = 'pending'").fetchone()[0]
    assert orphaned > 0, "the worker was not killed mid-delivery"
    sq.clear_faults(db)
    app.config.update(OUTBOX_BACKOFF_SECONDS=0.01, OUTBOX_MAX_ATTEMPTS=25)
    time.sleep(1.1)  # the dead worker's leases run out
    drain(app, db)
    assert ob.backlog(db) == {"outbox_pending": 0, "outbox_oldest_pending_age_seconds": 0, "outbox_failed": 0}
    assert_gradebook(db, expected)
    db.close()
