"""Facilitator dashboard for a MOOC: 5,000 participants with projects, rendered through the app.

Run: .venv/bin/python benchmarks/dashboard.py [--participants N] [--runs R]
Prints the median render time of the first page and of a filtered page, with the row count.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lms_bridge import create_app  # noqa: E402
from lms_bridge.cli import prepare  # noqa: E402
from lms_bridge.db import connect, ts, utcnow, write_transaction  # noqa: E402
from lms_bridge.db import lti as lq  # noqa: E402
from lms_bridge.lti.context import issue_token  # noqa: E402
from lms_bridge.projects.forms import COUNTRIES  # noqa: E402
from lms_bridge.projects.stages import STAGE_KEYS  # noqa: E402

SCOPE = (1, "1", "2")
STATUSES = ("draft", "submitted", "returned", "approved", "graded")


def seed(db, n: int, rng: random.Random) -> None:
    """n learners; most with a project (some in groups of 3), stages at various statuses, deadlines set."""
    now = utcnow()
    countries = list(COUNTRIES)
    with write_transaction(db):
        for stage_i, stage in enumerate(STAGE_KEYS):
            db.execute("INSERT INTO deadlines VALUES (?,?,?,?,?,?)",
                       [*SCOPE, stage, ts(now + timedelta(days=stage_i * 20 - 10)), None])
        roster = [(*SCOPE, str(1000 + i), f"Participant {i:05d}", f"p{i}@example.org", "learner", 1, ts(now))
                  for i in range(n)]
        db.conn.executemany("INSERT INTO roster VALUES (?,?,?,?,?,?,?,?,?)", roster)
        uid = 1000
        pid = 0
        while uid < 1000 + n:
            if rng.random() < 0.1:
                uid += 1
                continue
            pid += 1
            size = 3 if rng.random() < 0.2 else 1
            owners = [str(u) for u in range(uid, min(uid + size, 1000 + n))]
            db.execute("INSERT INTO projects VALUES (?,?,?,?,?,?,?,?)",
                       [pid, *SCOPE, owners[0], f"Project {pid}", rng.choice(countries), ts(now)])
            db.conn.executemany("INSERT INTO project_members VALUES (?,?,?,?,?,?)",
                                [(pid, *SCOPE, u, "owner" if k == 0 else "coauthor") for k, u in enumerate(owners)])
            for stage in STAGE_KEYS[:rng.randint(0, len(STAGE_KEYS))]:
                status = rng.choice(STATUSES)
                graded = status == "graded"
                db.execute("INSERT INTO submissions (project_id, stage, status, attempt, data, submitted_at, late,"
                           " grade, grade_max, marking_state, updated_at, updated_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           [pid, stage, status, 1, json.dumps({"title": f"Project {pid}"}),
                            None if status == "draft" else ts(now), int(rng.random() < 0.2),
                            rng.randint(40, 100) if graded else None, 100 if graded else None,
                            rng.choice(("in_marking", "ready_for_release", "released")) if graded else None,
                            ts(now), owners[0]])
            uid += size


def facilitator_token(app, db) -> str:
    now = utcnow()
    lq.save_launch(db, {"id": "bench-launch", "platform_id": 1, "deployment_id": "1", "context_id": "2",
                        "context_title": "MOOC", "user_id": "3", "user_name": "Fatima Facilitator", "user_email": "",
                        "role": "facilitator", "message_type": "LtiResourceLinkRequest", "resource_link_id": "1",
                        "activity": "project_plan", "timezone": "Europe/Stockholm", "claims": {},
                        "created_at": ts(now), "expires_at": ts(now + timedelta(hours=8))})
    db.execute("INSERT INTO roster VALUES (?,?,?,?,?,?,?,?,?)", [*SCOPE, "3", "Fatima Facilitator", "", "facilitator",
                                                                 1, ts(now)])
    db.conn.commit()
    with app.test_request_context():
        return issue_token("bench-launch")


def measure(client, url: str, runs: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        resp = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.status_code
        size = resp.data.count(b"<tr data-user=")
    return statistics.median(times), size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATA_DIR": tmp, "TOOL_URL": "http://localhost", "SANDBOX_ENABLED": True})
        prepare(app)
        db = connect(app.config["DATABASE_URL"])
        seed(db, args.participants, random.Random(7))
        token = facilitator_token(app, db)
        db.execute("ANALYZE")
        total = db.execute("SELECT COUNT(*) FROM roster WHERE role = 'learner'").fetchone()[0]
        db.close()
        client = app.test_client()
        worst = 0.0
        for label, query in (("first page", ""), ("stage=project_plan&status=submitted", "&stage=project_plan&status=submitted"),
                             ("stage=project_plan&status=missing", "&stage=project_plan&status=missing"),
                             ("country=ID, page 2", "&country=ID&page=2")):
            median, shown = measure(client, f"/app/projects/dashboard?lt={token}{query}", args.runs)
            worst = max(worst, median)
            print(f"dashboard [{label}]: {total} participants, {shown} rows on the page, median {median:.1f} ms")
        print(f"worst median {worst:.1f} ms (target < 300 ms): {'OK' if worst < 300 else 'TOO SLOW'}")
    return 0 if worst < 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())
