"""Every statement on a hot path searches an index: `EXPLAIN QUERY PLAN` never shows a SCAN of a table
that grows with use (outbox claim, dashboard pages, booking, login + launch), with statistics and without."""
from __future__ import annotations

import contextlib
import random
import re
from datetime import datetime, timedelta, timezone

from urllib.parse import urlsplit

import pytest

import lms_bridge.db as dbmod
from lms_bridge.booking.service import Person, book
from lms_bridge.db import booking as bq
from lms_bridge.db import connect, migrate, ts, upkeep, utcnow, write_transaction
from lms_bridge.db import dashboard as dq
from lms_bridge.db import lti as lq
from lms_bridge.db import outbox as ob
from lms_bridge.db import projects as pq
from lms_bridge.sandbox import LINKS
from tests.conftest import TEST_POSTGRES, form_fields

FIXED = {"dash_stages"}  # one row per project stage: does not grow with courses, people or time
SKIP = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|ANALYZE|--)", re.I)


def scans(db, sql: str) -> list[str]:
    """The lines of a statement's plan that read more than the statement needs: a SCAN of a store table,
    a pending-outbox walk by (state, id) where (order_key, id) answers at once, or a sort of a whole set
    to return a LIMIT of it."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - FIXED
    plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
    found = []
    for line in plan:
        m = re.match(r"SCAN (\w+)", line)
        if m and m.group(1) in tables:
            found.append(line)
        if re.search(r"outbox_state_id \(state=\? AND id[<>]\?\)", line):
            found.append(line)
        if "TEMP B-TREE FOR ORDER BY" in line and re.search(r"\bLIMIT\b", sql, re.I):
            found.append(line)
    return found


@contextlib.contextmanager
def statements(*conns):
    """Every statement the connections run inside the block, with its parameters bound."""
    seen: list[str] = []
    for c in conns:
        c.conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        for c in conns:
            c.conn.set_trace_callback(None)


def assert_no_scans(db, seen: list[str]) -> int:
    checked, bad = 0, {}
    for sql in dict.fromkeys(seen):
        if SKIP.match(sql):
            continue
        checked += 1
        lines = scans(db, sql)
        if lines:
            bad[sql[:300]] = lines
    assert not bad, bad
    return checked


@pytest.fixture
def db(tmp_path):
    db = connect(str(tmp_path / "plans.sqlite3"))
    migrate(db)
    db.pid = lq.add_platform(db, issuer="http://lms", client_id="c", auth_login_url="http://lms/a",
                             auth_token_url="http://lms/t", key_set_url="http://lms/k", deployment_ids=["1"])
    yield db
    db.close()


# --- outbox ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("analyzed", [False, True])
def test_outbox_claim_deliver_and_backlog_search_indexes(db, analyzed):
    with write_transaction(db):
        for i in range(600):
            ob.enqueue(db, platform_id=db.pid, kind="ags_score", payload={"n": i}, order_key=f"score:{i % 200}",
                       dedupe_key=f"cal:{i}" if i % 7 == 0 else None)
        db.execute("UPDATE outbox SET state = 'delivered' WHERE id <= 300")
    if analyzed:
        upkeep.analyze(db)
    with statements(db) as seen:
        jobs = ob.claim(db, "w", limit=16, lease_seconds=60)
        ob.mark_delivered(db, jobs[0]["id"], "w")
        ob.mark_retry(db, jobs[1]["id"], "w", "503", utcnow())
        ob.retry(db, jobs[1]["id"])
        ob.backlog(db)
        with write_transaction(db):
            ob.enqueue(db, platform_id=db.pid, kind="ws_calendar", payload={}, dedupe_key="cal:7")
    assert jobs and assert_no_scans(db, seen) >= 6


def test_the_old_superseded_sweep_would_be_caught(db):
    """The check itself: the claim's former statement walked every delivered job for each pending one."""
    old = ("UPDATE outbox SET state = 'superseded' WHERE state = 'pending' AND order_key IS NOT NULL"
           " AND EXISTS (SELECT 1 FROM outbox later WHERE later.order_key = outbox.order_key"
           " AND later.id > outbox.id AND later.state = 'delivered')")
    plan = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + old)]
    assert not any("outbox_order" in line for line in plan), plan  # it used (state, id), not (order_key, id)
    assert scans(db, "SELECT * FROM outbox") == ["SCAN outbox"]


# --- dashboard ---------------------------------------------------------------------------------------------
STAGES = ["project_plan", "progress_update", "project_report"]


def seed_course(db, n: int) -> tuple:
    scope = (db.pid, "1", "2")
    rng = random.Random(4)
    with write_transaction(db):
        for i in range(n):
            pq.upsert_member(db, scope, f"u{i:04d}", f"Name {rng.randint(0, 99):02d}", "", "learner", from_launch=False)
        for i in range(0, n, 2):
            pid = pq.create_project(db, scope, f"u{i:04d}")
            pq.update_project(db, pid, f"P{pid}", rng.choice(["NP", "ID", "KE"]))
            for stage in STAGES[:rng.randint(0, 3)]:
                pq.save_submission(db, pid, stage, status=rng.choice(["draft", "submitted", "graded"]), attempt=1,
                                   data={}, actor="x", submitted_at=ts() if rng.random() < 0.5 else None,
                                   late=rng.random() < 0.3)
        pq.set_extension(db, scope, "project_plan", "user:u0003", ts(utcnow() + timedelta(days=2)), "3")
        pq.set_extension(db, scope, "progress_update", "project:1", ts(utcnow() - timedelta(days=2)), "3")
    return scope


@pytest.mark.parametrize("analyzed", [False, True])
def test_dashboard_pages_search_indexes(db, analyzed):
    scope = seed_course(db, 400)
    dq.ensure_stages(db, STAGES)  # the one-off rebuild is not a page
    if analyzed:
        upkeep.analyze(db)
    due = {"project_plan": ts(utcnow() - timedelta(days=1)), "progress_update": ts(utcnow() + timedelta(days=1))}
    now = ts()
    with statements(db) as seen:
        rows, _t, _c = dq.dashboard(db, scope, STAGES, due, now)
        dq.dashboard(db, scope, STAGES, due, now, after=rows[-1]["user_id"], page=2)
        dq.dashboard(db, scope, STAGES, due, now, before=rows[-1]["user_id"])
        dq.dashboard(db, scope, STAGES, due, now, stage="project_plan", status="submitted", country="NP")
        dq.dashboard(db, scope, STAGES, due, now, stage="project_plan", status="late")
        dq.dashboard(db, scope, STAGES, due, now, stage="project_plan", status="missing")
        dq.dashboard(db, scope, STAGES, due, now, stage="progress_update", status="missing", country="KE")
        dq.dashboard(db, scope, STAGES, due, now, country="ID", page=2)
        dq.countries(db, scope)
    assert assert_no_scans(db, seen) >= 8


def _bind(body: str, values: dict) -> list[str]:
    for ref, value in values.items():
        body = body.replace(ref, value)
    return [s for s in body.split(";") if s.strip()]


def test_the_triggers_that_keep_the_dashboard_search_by_person_and_project(db):
    """Trigger bodies are not traced: their statements are checked with the values a write binds."""
    seed_course(db, 200)
    dq.ensure_stages(db, STAGES)
    person = {"NEW.platform_id": str(db.pid), "NEW.deployment_id": "'1'", "NEW.context_id": "'2'",
              "NEW.user_id": "'u0001'"}
    bodies = _bind(dq._refresh(*dq._one_person("NEW")), person) + _bind(dq._refresh(*dq._project_members("NEW.id")),
                                                                        {"NEW.id": "1"})
    for sql in bodies:
        assert not scans(db, sql), sql
        for line in (row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)):
            if re.match(r"SEARCH (r|dash_facets) ", line):  # one person's rows, never a course's
                assert "user_id=?" in line, (sql, line)


# --- booking -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("analyzed", [False, True])
def test_booking_a_seat_searches_indexes(db, analyzed):
    scope = (db.pid, "1", "2")
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
    with write_transaction(db):
        experts = [bq.upsert_expert(db, scope, f"e{n}", name=f"E{n}", email="", timezone="UTC") for n in range(5)]
        for n, expert in enumerate(experts):
            for k in range(40):
                at = start + timedelta(hours=k)
                bq.insert_slot(db, expert, ts(at), ts(at + timedelta(minutes=30)), 3)
    slots = [s["id"] for s in bq.expert_slots(db, experts[0])]
    for k, slot in enumerate(slots[:30]):
        book(db, scope, slot, Person(f"p{k}", "P", "", "UTC"), datetime.now(timezone.utc), topic="t", question="q")
    if analyzed:
        upkeep.analyze(db)
    with statements(db) as seen:
        book(db, scope, slots[35], Person("p1", "P", "", "UTC"), datetime.now(timezone.utc), topic="t",
             question="q")
    assert assert_no_scans(db, seen) >= 4


# --- login and launch --------------------------------------------------------------------------------------
@pytest.mark.skipif(bool(TEST_POSTGRES), reason="reads SQLite's EXPLAIN QUERY PLAN of the app's own store, which is"
                    " PostgreSQL in this run (test_pg_dashboard_work.py bounds PostgreSQL's dashboard work)")
def test_login_and_launch_search_indexes(app, client, lti, monkeypatch):
    lti.launch(user="5")  # the first launch fetches the key set: not the hot path
    for user in ["3", "5", "7"] * 10:  # launches, states and nonces already stored
        lti.launch(user=user)
    db = connect(app.config["DATABASE_URL"])
    upkeep.analyze(db)
    seen: list[str] = []
    made = dbmod.connect

    def traced(url):
        conn = made(url)
        conn.conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(dbmod, "connect", traced)
    dbmod._local.__dict__.pop("pool", None)  # new pooled connections, traced
    _, init = form_fields(client.get(f"/sandbox/launch/7/{next(iter(LINKS))}").get_data(as_text=True))
    seen.clear()
    login = client.post("/lti/login", data=init)
    login_sql = list(seen)
    loc = urlsplit(login.headers["Location"])
    fields = form_fields(client.get(loc.path, query_string=loc.query).get_data(as_text=True))[1]
    seen.clear()
    assert client.post("/lti/launch", data=fields).status_code == 303
    launch_sql = list(seen)
    assert any("INSERT INTO oidc_states" in s for s in login_sql)
    assert any("INSERT INTO launches" in s for s in launch_sql)
    assert assert_no_scans(db, login_sql + launch_sql) >= 6
    db.close()
