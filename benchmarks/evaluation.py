"""Learning-gain report for a MOOC: 5,000 participants with stored pre/post grades and per-question marks.

Run: .venv/bin/python benchmarks/evaluation.py [--participants N] [--runs R]
Prints the median render time of the report's first page and of a later page, and of the CSV export.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.dashboard import facilitator_token  # noqa: E402  (the same facilitator launch)
from lms_bridge import create_app  # noqa: E402
from lms_bridge.cli import prepare  # noqa: E402
from lms_bridge.db import connect, ts, utcnow, write_transaction  # noqa: E402
from lms_bridge.db import evaluation as eq  # noqa: E402
from lms_bridge.evaluation.gain import ORG_TYPES  # noqa: E402
from lms_bridge.projects.forms import COUNTRIES  # noqa: E402

SCOPE = (1, "1", "2")
SLOTS = 18


def seed(db, n: int, rng: random.Random) -> None:
    """n learners on the roster, most with a project (country) and a profile; grades as a refresh stores them:
    10% took only one test; 18 question marks per test taken."""
    now = ts(utcnow())
    countries = list(COUNTRIES)
    with write_transaction(db):
        db.conn.executemany("INSERT INTO roster (platform_id, deployment_id, context_id, user_id, name, email, role,"
                            " active, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                            [(*SCOPE, str(1000 + i), f"Participant {i:05d}", "", "learner", 1, now) for i in range(n)])
        grades, marks = [], []
        for i in range(n):
            uid = str(1000 + i)
            if rng.random() < 0.9:
                db.execute("INSERT INTO projects (id, platform_id, deployment_id, context_id, owner_id, title, country,"
                           " created_at) VALUES (?,?,?,?,?,?,?,?)", [i + 1, *SCOPE, uid, f"P{i}", rng.choice(countries),
                                                                     now])
                db.execute("INSERT INTO project_members VALUES (?,?,?,?,?,?)", [i + 1, *SCOPE, uid, "owner"])
            if rng.random() < 0.8:
                db.execute("INSERT INTO eval_profiles (platform_id, deployment_id, context_id, user_id, org_type,"
                           " tracer_consent, updated_at) VALUES (?,?,?,?,?,?,?)", [*SCOPE, uid, rng.choice(ORG_TYPES),
                                                                                 1, now])
            share = rng.uniform(0.1, 0.8)
            tests = {"pre": [float(rng.random() < share) for _ in range(SLOTS)],
                     "post": [float(rng.random() < min(1, share + 0.25)) for _ in range(SLOTS)]}
            if rng.random() < 0.1:
                tests.pop(rng.choice(["pre", "post"]))
            pre, post = (sum(tests[t]) * 10 / SLOTS if t in tests else None for t in ("pre", "post"))
            grades.append((*SCOPE, uid, f"Participant {i:05d}", pre, 10.0, post, 10.0, 1, 2, now))
            marks += [(*SCOPE, uid, t, slot, m, 1.0) for t, ms in tests.items() for slot, m in enumerate(ms, 1)]
        db.conn.executemany("INSERT INTO eval_grades VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", grades)
        db.conn.executemany("INSERT INTO eval_marks VALUES (?,?,?,?,?,?,?,?)", marks)
        eq.update_slot_stats(db, SCOPE)  # what each refresh does after storing the marks
        db.execute("INSERT INTO eval_settings (platform_id, deployment_id, context_id, quiz_items, refreshed_at)"
                   " VALUES (?,?,?,?,?)", [*SCOPE, '[{"id": 20, "name": "Pre-test: what do you know already?"},'
                                           ' {"id": 21, "name": "Post-test: what have you learned?"}]', now])


def measure(client, url: str, runs: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        resp = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.status_code
        size = len(resp.data)
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
        db.conn.commit()
        db.close()
        client = app.test_client()
        client.get(f"/app/evaluation/gain?lt={token}")  # warm-up: templates compiled, cartridge read
        worst = 0.0
        for label, query in (("first page", ""), ("page 100", "&page=100")):
            median, size = measure(client, f"/app/evaluation/gain?lt={token}{query}", args.runs)
            worst = max(worst, median)
            print(f"learning-gain report [{label}]: {args.participants} participants, {size} bytes, "
                  f"median {median:.1f} ms")
        median, size = measure(client, f"/app/evaluation/gain.csv?lt={token}", max(5, args.runs // 3))
        print(f"CSV export: {size} bytes, median {median:.1f} ms")
        print(f"worst report median {worst:.1f} ms (target < 300 ms): {'OK' if worst < 300 else 'TOO SLOW'}")
    return 0 if worst < 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())
