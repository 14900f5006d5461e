"""The worker's upkeep: expired login states, nonces, launches and tokens purged each pass, in bounded batches."""
from __future__ import annotations

import json
from datetime import timedelta

from lms_bridge.db import dialect, ts, utcnow, write_transaction
from lms_bridge.db import lti as q
from lms_bridge.db import upkeep
from lms_bridge.sync import worker

TABLES = ("oidc_states", "used_nonces", "launches", "access_tokens")


def seed(db, prefix: str, n: int, expires_at) -> None:
    """n rows of each kind a launch leaves behind, all expiring at `expires_at`."""
    pid = db.execute("SELECT id FROM platforms ORDER BY id LIMIT 1").fetchone()[0]
    when = ts(expires_at)
    with write_transaction(db):
        for i in range(n):
            key = f"{prefix}{i}"
            db.execute("INSERT INTO oidc_states (state, nonce, platform_id, target_link_uri, created_at, expires_at)"
                       " VALUES (?,?,?,?,?,?)", [key, key, pid, "http://localhost/", when, when])
            db.execute("INSERT INTO used_nonces (issuer, nonce, expires_at) VALUES (?,?,?)", ["http://lms", key, when])
            db.execute("INSERT INTO launches (id, platform_id, deployment_id, context_id, user_id, role, message_type,"
                       " claims, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       [key, pid, "1", "2", "3", "learner", "LtiResourceLinkRequest", json.dumps({}), when, when])
            db.execute("INSERT INTO access_tokens (platform_id, scopes, token, expires_at) VALUES (?,?,?,?)",
                       [pid, key, "t", when])


def count(db, table: str, prefix: str) -> int:
    column = {"oidc_states": "state", "used_nonces": "nonce", "launches": "id", "access_tokens": "scopes"}[table]
    return db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE ?", [prefix + "%"]).fetchone()[0]


def test_a_worker_pass_purges_expired_launch_data_and_keeps_what_is_still_valid(app, db):
    seed(db, "old", 30, utcnow() - timedelta(minutes=1))
    seed(db, "live", 5, utcnow() + timedelta(hours=1))
    worker.run_worker(app, once=True)
    for table in TABLES:
        assert count(db, table, "old") == 0, table
        assert count(db, table, "live") == 5, table
    assert upkeep.expired_counts(db) == {t: 0 for t in TABLES}


def test_a_purged_launch_no_longer_opens_and_a_live_one_still_does(app, db):
    seed(db, "old", 1, utcnow() - timedelta(seconds=1))
    seed(db, "live", 1, utcnow() + timedelta(hours=1))
    upkeep.purge_expired(db)
    assert q.get_launch(db, "old0") is None and q.get_launch(db, "live0")["id"] == "live0"
    # the nonce of a still-valid id_token survives, so a replay is still refused
    assert not q.use_nonce(db, "http://lms", "live0", utcnow() + timedelta(hours=1))


def test_each_purge_batch_is_bounded_and_the_next_pass_goes_on(app, db):
    seed(db, "old", 25, utcnow() - timedelta(minutes=1))
    first = upkeep.purge_expired(db, batch=10, max_batches=2)
    assert first == {t: 20 for t in TABLES}
    assert upkeep.expired_counts(db) == {t: 5 for t in TABLES}
    assert upkeep.purge_expired(db, batch=10, max_batches=2) == {t: 5 for t in TABLES}
    assert upkeep.expired_counts(db) == {t: 0 for t in TABLES}


def test_the_worker_optimizes_the_store_once_an_hour_not_every_pass(app, monkeypatch):
    calls = []
    monkeypatch.setattr(upkeep, "optimize", lambda db: calls.append(1))
    now = [1000.0]
    keeper = worker.Upkeep()
    keeper.run(app, clock=lambda: now[0])
    now[0] += 60
    keeper.run(app, clock=lambda: now[0])
    assert len(calls) == 1
    now[0] += worker.OPTIMIZE_EVERY_SECONDS
    keeper.run(app, clock=lambda: now[0])
    assert len(calls) == 2


def test_optimize_and_migrations_leave_statistics_for_the_planner(db):
    upkeep.optimize(db)  # must run on a live store without error (on PostgreSQL autovacuum's work: nothing)
    if dialect(db) == "sqlite":
        assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[0] == 1
        return
    upkeep.analyze(db)  # what migrate() runs after new tables or indexes
    # reltuples is -1 for a table never analyzed; ANALYZE sets it (0 for an empty table)
    assert db.execute("SELECT reltuples FROM pg_class WHERE relname = 'outbox'").fetchone()[0] >= 0
