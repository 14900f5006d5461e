"""On PostgreSQL a dashboard page can be answered by reading about a page of rows, whatever the course's size:
every statement a page runs is run again under `EXPLAIN (ANALYZE)` on a course of thousands of learners with
the planner kept from whole-table strategies (sequential and bitmap scans, hash and merge joins), and the rows
its plan reads from the tables that grow with the course are counted. At a few thousand learners the planner
may still prefer a hash join over a scan of a few thousand rows (cheaper there); what this shows is that an
index path exists for every statement, which is what it takes once the course is large (the SQLite run checks
the same pages' `EXPLAIN QUERY PLAN` in test_query_plans.py)."""
from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from lms_bridge.db import connect, dialect, ts, utcnow, write_transaction
from lms_bridge.db import dashboard as dq
from lms_bridge.db import lti as lq
from lms_bridge.db import projects as pq
from conftest import TEST_POSTGRES, fresh_database_url

pytestmark = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL's plans; test_query_plans.py checks SQLite's")

STAGES = ["project_plan", "progress_update", "project_report"]
GROWING = {"roster", "projects", "project_members", "submissions", "extensions", "dash_facets", "dash_counts"}
LEARNERS = 3000
PER_PAGE = 100
SCANS_OFF = ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")


@pytest.fixture
def db():
    db = connect(fresh_database_url())
    assert dialect(db) == "postgresql"
    db.pid = lq.add_platform(db, issuer="http://lms", client_id="c", auth_login_url="http://lms/a",
                             auth_token_url="http://lms/t", key_set_url="http://lms/k", deployment_ids=["1"])
    yield db
    db.close()


def seed(db, n: int) -> tuple:
    """n learners, half of them owning a project with a few stages saved, a few extensions; then ANALYZE.
    Bulk inserts with the triggers off, then the facets built as a change of stages builds them (the triggers'
    own agreement with that rebuild is test_dashboard_facets.py's)."""
    scope, rng, now = (db.pid, "1", "2"), random.Random(7), ts()
    owners = [f"u{i:05d}" for i in range(0, n, 2)]
    with write_transaction(db):
        db.execute("SET LOCAL session_replication_role = replica")  # no triggers: the rebuild below is set-based
        db.conn.executemany("INSERT INTO roster (platform_id, deployment_id, context_id, user_id, name, email, role,"
                            " active, updated_at) VALUES (?,?,?,?,?,'','learner',1,?)",
                            [(*scope, f"u{i:05d}", f"Name {rng.randint(0, 999):03d}", now) for i in range(n)])
        db.conn.executemany("INSERT INTO projects (id, platform_id, deployment_id, context_id, owner_id, title,"
                            " country, created_at) VALUES (?,?,?,?,?,?,?,?)",
                            [(pid, *scope, u, f"P{pid}", rng.choice(["NP", "ID", "KE"]), now)
                             for pid, u in enumerate(owners, 1)])
        db.conn.executemany("INSERT INTO project_members (project_id, platform_id, deployment_id, context_id, user_id,"
                            " member_role) VALUES (?,?,?,?,?,'owner')",
                            [(pid, *scope, u) for pid, u in enumerate(owners, 1)])
        db.conn.executemany("INSERT INTO submissions (project_id, stage, status, attempt, data, submitted_at, late,"
                            " updated_at, updated_by) VALUES (?,?,?,1,'{}',?,?,?,'x')",
                            [(pid, stage, rng.choice(["draft", "submitted", "graded"]),
                              now if rng.random() < 0.5 else None, int(rng.random() < 0.3), now)
                             for pid in range(1, len(owners) + 1) for stage in STAGES[:rng.randint(0, 3)]])
        for _k in range(n // 10):
            pq.set_extension(db, scope, rng.choice(STAGES), f"user:u{rng.randrange(n):05d}",
                             ts(utcnow() + timedelta(days=rng.choice([-2, 2]))), "3")
    dq.ensure_stages(db, STAGES)
    db.execute("ANALYZE")
    assert db.execute("SELECT COUNT(*) FROM dash_facets WHERE facet = ''").fetchone()[0] == n
    return scope


class Recorder:
    """Every statement (with its parameters) the wrapped connection runs."""

    def __init__(self, db):
        self.db, self.seen = db, []
        self._execute, self._query = db.execute, db.query
        db.execute, db.query = self.execute, self.query

    def execute(self, sql, params=()):
        self.seen.append((sql, params))
        return self._execute(sql, params)

    def query(self, sql, params=()):
        self.seen.append((sql, params))
        return self._query(sql, params)

    def stop(self):
        del self.db.execute, self.db.query


def rows_read(db, sql: str, params) -> dict:
    """Rows each growing table's scans returned or filtered away, over all loops, under EXPLAIN ANALYZE."""
    for knob in SCANS_OFF:
        db._execute(f"SET {knob} = off")
    try:
        plan = db._execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0]
    finally:
        for knob in SCANS_OFF:
            db._execute(f"RESET {knob}")
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read: dict[str, int] = {}

    def walk(node):
        table = node.get("Relation Name")
        if table in GROWING:
            loops = node.get("Actual Loops", 1)
            n = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                 + node.get("Rows Removed by Index Recheck", 0)) * loops
            read[table] = read.get(table, 0) + n
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return read


def test_every_dashboard_statement_reads_about_a_page_not_the_course(db):
    scope = seed(db, LEARNERS)
    due = {"project_plan": ts(utcnow() - timedelta(days=1)), "progress_update": ts(utcnow() + timedelta(days=1))}
    now = ts()
    rec = Recorder(db)
    try:
        rows, total, _c = dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE)
        assert total == LEARNERS and len(rows) == PER_PAGE
        dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE, after=rows[-1]["user_id"], page=2)
        dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE, before=rows[-1]["user_id"])
        dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE, stage="project_plan", status="submitted",
                     country="NP")
        dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE, stage="project_plan", status="late")
        dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE, stage="project_plan", status="missing")
        dq.dashboard(db, scope, STAGES, due, now, per_page=PER_PAGE, stage="progress_update", status="missing",
                     country="KE")
        dq.countries(db, scope)
    finally:
        rec.stop()
    statements = [(sql, params) for sql, params in rec.seen if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(statements) >= 20
    heavy = {}
    for sql, params in statements:
        read = rows_read(rec, sql, params)
        if sum(read.values()) > 6 * PER_PAGE:  # a page, its grid and the counters; a course is 15,000+ facet rows
            heavy[sql[:200]] = read
    assert not heavy, heavy
