"""The dashboard's maintained facets and counters agree with the full grid after any sequence of writes."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from lms_bridge.db import connect, migrate, ts, utcnow, write_transaction
from lms_bridge.db import dashboard as dq
from lms_bridge.db import lti as lq
from lms_bridge.db import projects as q
from conftest import fresh_database_url

SCOPE = (1, "1", "2")
OTHER = (1, "1", "9")  # a second course on the same platform must never leak into the first
STAGES = ["project_plan", "progress_update", "project_report"]
STATUSES = ("draft", "submitted", "returned", "approved", "graded")


@pytest.fixture
def db(tmp_path):
    """The run's store: SQLite's triggers, or PostgreSQL's PL/pgSQL ones in the PostgreSQL run."""
    db = connect(fresh_database_url() or str(tmp_path / "d.sqlite3"))
    migrate(db)
    lq.add_platform(db, issuer="http://lms", client_id="c", auth_login_url="http://lms/a",
                    auth_token_url="http://lms/t", key_set_url="http://lms/k")
    yield db
    db.close()


def reference(db, scope, due, now, *, stage=None, status=None, country=None):
    """What the dashboard must show, computed from the full grid (the pre-facet implementation)."""
    rows = dq.grid(db, scope, STAGES, due, now)
    if country:
        rows = [r for r in rows if r["country"] == country]
    everyone = rows
    if stage in STAGES and status:
        i = STAGES.index(stage)
        test = {"late": lambda r: r[f"late_{i}"] == 1, "missing": lambda r: bool(r[f"missing_{i}"]),
                "not_started": lambda r: r[f"status_{i}"] is None}.get(status, lambda r: r[f"status_{i}"] == status)
        rows = [r for r in rows if test(r)]
    counts = {"everyone": len(everyone)}
    for i, key in enumerate(STAGES):
        c = counts[key] = {st: sum((r[f"status_{i}"] or "not_started") == st for r in everyone) for st in dq.COUNTED}
        c["late"] = sum(r[f"late_{i}"] == 1 for r in everyone)
        c["missing"] = sum(bool(r[f"missing_{i}"]) for r in everyone)
    return [r["user_id"] for r in rows], counts


def all_pages(db, scope, due, now, per_page, **filters):
    """Every page by following the Next cursor, and the first pages' totals and counts."""
    seen, after, page = [], None, 1
    while True:
        rows, total, counts = dq.dashboard(db, scope, STAGES, due, now, per_page=per_page, after=after, page=page,
                                           **filters)
        seen += [r["user_id"] for r in rows]
        if len(rows) < per_page:
            return seen, total, counts
        after, page = rows[-1]["user_id"], page + 1


def churn(db, rng: random.Random, scope, n: int) -> None:
    """Random writes through the same query functions the app uses."""
    users = [f"u{i:03d}" for i in range(n)]
    with write_transaction(db):
        for u in users:
            q.upsert_member(db, scope, u, rng.choice(["Ana", "Bo", "Cy", "Di"]) + f" {rng.randint(0, 9)}", "",
                            "learner" if rng.random() < 0.9 else "facilitator", from_launch=False)
        free = list(users)
        rng.shuffle(free)
        while len(free) > n // 5:
            owner = free.pop()
            pid = q.create_project(db, scope, owner)
            co = [free.pop() for _ in range(rng.choice([0, 0, 1, 2])) if len(free) > n // 5]
            q.set_coauthors(db, scope, pid, co)
            q.update_project(db, pid, f"P{pid}", rng.choice(["NP", "ID", "KE", ""]))
            for stage in rng.sample(STAGES, rng.randint(0, len(STAGES))):
                submitted = rng.random() < 0.6
                q.save_submission(db, pid, stage, status=rng.choice(STATUSES), attempt=1, data={}, actor=owner,
                                  submitted_at=ts() if submitted else None, late=rng.random() < 0.3)
            if rng.random() < 0.2:
                q.set_extension(db, scope, "project_plan", f"project:{pid}",
                                ts(utcnow() + timedelta(days=rng.choice([-3, 3]))), "3")
        for u in rng.sample(users, n // 10):
            q.set_extension(db, scope, rng.choice(STAGES), f"user:{u}",
                            ts(utcnow() + timedelta(days=rng.choice([-3, 3]))), "3")
        # later changes: renames, a learner leaving, country and status edits, a project dissolved
        for u in rng.sample(users, n // 10):
            q.upsert_member(db, scope, u, "Zed " + u, "", "learner", from_launch=True)
        db.execute(f"UPDATE roster SET active = 0 WHERE {q.SCOPE} AND user_id = ?", [*scope, users[1]])
        for pid, in db.execute(f"SELECT id FROM projects WHERE {q.SCOPE} LIMIT 5", list(scope)).fetchall():
            q.update_project(db, pid, f"P{pid}", "KE")
            sub = q.submission(db, pid, "project_plan")
            if sub:
                q.set_review(db, sub["id"], "3", status="graded", grade=80)
        victim = db.execute(f"SELECT id FROM projects WHERE {q.SCOPE} ORDER BY id DESC LIMIT 1", list(scope)).fetchone()
        db.execute("DELETE FROM projects WHERE id = ?", [victim[0]])


@pytest.mark.parametrize("seed", [1, 2])
def test_every_filter_and_page_matches_the_full_grid_after_random_writes(db, seed):
    rng = random.Random(seed)
    dq.ensure_stages(db, STAGES)
    churn(db, rng, SCOPE, 120)
    churn(db, random.Random(seed + 100), OTHER, 30)
    now = ts()
    due = {"project_plan": ts(utcnow() - timedelta(days=1)), "progress_update": ts(utcnow() + timedelta(days=1))}
    for country in (None, "NP", "KE"):
        for stage, status in [(None, None), *[(s, st) for s in STAGES for st in
                                              (*dq.COUNTED, "late", "missing")]]:
            want, counts = reference(db, SCOPE, due, now, stage=stage, status=status, country=country)
            got, total, got_counts = all_pages(db, SCOPE, due, now, 7, stage=stage, status=status, country=country)
            assert got == want, (country, stage, status)
            assert total == len(want), (country, stage, status)
            assert got_counts == counts, (country, stage, status)


def test_facets_built_by_a_rebuild_equal_those_kept_by_the_triggers(db):
    dq.ensure_stages(db, STAGES)
    churn(db, random.Random(5), SCOPE, 80)
    kept = db.execute("SELECT * FROM dash_facets ORDER BY 1, 2, 3, 4, 5, 6").fetchall()
    counts = db.execute("SELECT * FROM dash_counts WHERE n > 0 ORDER BY 1, 2, 3, 4, 5, 6").fetchall()
    dq.ensure_stages(db, STAGES[:1])  # the stages changed: everything is rebuilt from the tables
    dq.ensure_stages(db, STAGES)
    assert db.execute("SELECT * FROM dash_facets ORDER BY 1, 2, 3, 4, 5, 6").fetchall() == kept
    assert db.execute("SELECT * FROM dash_counts WHERE n > 0 ORDER BY 1, 2, 3, 4, 5, 6").fetchall() == counts


def test_previous_link_walks_back_to_the_same_pages(db):
    dq.ensure_stages(db, STAGES)
    churn(db, random.Random(3), SCOPE, 60)
    now, pages, after = ts(), [], None
    while True:
        rows, _t, _c = dq.dashboard(db, SCOPE, STAGES, {}, now, per_page=10, after=after)
        pages.append([r["user_id"] for r in rows])
        if len(rows) < 10:
            break
        after = rows[-1]["user_id"]
    for earlier, later in zip(pages, pages[1:]):
        back, _t, _c = dq.dashboard(db, SCOPE, STAGES, {}, now, per_page=10, before=later[0])
        assert [r["user_id"] for r in back] == earlier
