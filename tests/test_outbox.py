"""The outbox claim protocol: leases, order per key, superseding, retry and the backlog numbers."""
from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import fresh_database_url
from lms_bridge.db import connect, migrate, utcnow, write_transaction
from lms_bridge.db import lti as q
from lms_bridge.db import outbox as ob


@pytest.fixture
def db(tmp_path):
    """A store of its own: a SQLite file, or on the PostgreSQL run a fresh PostgreSQL database."""
    db = connect(fresh_database_url() or str(tmp_path / "o.sqlite3"))
    migrate(db)
    pid = q.add_platform(db, issuer="http://moodle.test", client_id="c", auth_login_url="http://moodle.test/a",
                         auth_token_url="http://moodle.test/t", key_set_url="http://moodle.test/k")
    db.pid = pid
    yield db
    db.close()


def put(db, kind="ags_score", order_key=None, dedupe_key=None, **payload):
    with write_transaction(db):
        return ob.enqueue(db, platform_id=db.pid, kind=kind, payload=payload, order_key=order_key,
                          dedupe_key=dedupe_key)


def test_enqueue_rolls_back_with_the_change(db):
    with pytest.raises(RuntimeError):
        with write_transaction(db):
            ob.enqueue(db, platform_id=db.pid, kind="ws_message", payload={"user_id": 5, "text": "hi"})
            raise RuntimeError("the change failed")
    assert ob.list_jobs(db) == []


def test_a_claimed_job_is_not_claimed_by_a_second_worker(db):
    a, b = put(db), put(db)
    first = ob.claim(db, "w1", limit=1, lease_seconds=60)
    second = ob.claim(db, "w2", limit=5, lease_seconds=60)
    assert [j["id"] for j in first] == [a] and [j["id"] for j in second] == [b]
    assert first[0]["attempts"] == 1 and first[0]["payload"] == {}
    assert ob.claim(db, "w3", limit=5, lease_seconds=60) == []


def test_an_expired_lease_is_claimed_again_and_the_dead_worker_cannot_finish(db):
    job = put(db)
    ob.claim(db, "dead", limit=1, lease_seconds=30)
    later = utcnow() + timedelta(seconds=31)
    again = ob.claim(db, "alive", limit=1, lease_seconds=30, now=later)
    assert [j["id"] for j in again] == [job] and again[0]["attempts"] == 2
    assert not ob.mark_delivered(db, job, "dead")
    assert ob.mark_delivered(db, job, "alive")
    assert ob.get_job(db, job)["state"] == "delivered"


def test_jobs_with_one_order_key_go_one_at_a_time_in_order(db):
    first = put(db, order_key="score:1:2:plan:5")
    second = put(db, order_key="score:1:2:plan:5")
    other = put(db, order_key="score:1:2:plan:6")
    claimed = [j["id"] for j in ob.claim(db, "w", limit=10, lease_seconds=60)]
    assert claimed == [first, other]
    # a failed retry keeps the earlier job pending, so the later one still waits
    ob.mark_retry(db, first, "w", "HTTP 500", utcnow())
    assert [j["id"] for j in ob.claim(db, "w", limit=10, lease_seconds=60)] == [first]
    ob.mark_delivered(db, first, "w")
    assert [j["id"] for j in ob.claim(db, "w", limit=10, lease_seconds=60)] == [second]


def test_an_earlier_job_retried_after_a_later_one_was_delivered_is_superseded(db):
    first = put(db, order_key="k")
    ob.claim(db, "w", limit=1, lease_seconds=60)
    ob.mark_failed(db, first, "w", "bad token")
    second = put(db, order_key="k")
    ob.claim(db, "w", limit=1, lease_seconds=60)
    ob.mark_delivered(db, second, "w")
    assert ob.retry(db, first)
    assert ob.claim(db, "w", limit=5, lease_seconds=60) == []
    assert ob.get_job(db, first)["state"] == "superseded"


def test_a_newer_calendar_job_replaces_an_unclaimed_one_and_waits_for_a_claimed_one(db):
    old = put(db, kind="ws_calendar", dedupe_key="calendar:1:2:deadline")
    newer = put(db, kind="ws_calendar", dedupe_key="calendar:1:2:deadline")
    assert ob.get_job(db, old)["state"] == "superseded"
    ob.claim(db, "w", limit=5, lease_seconds=60)
    newest = put(db, kind="ws_calendar", dedupe_key="calendar:1:2:deadline")
    assert ob.get_job(db, newer)["state"] == "pending"
    assert ob.claim(db, "w2", limit=5, lease_seconds=60) == []
    ob.mark_delivered(db, newer, "w")
    assert [j["id"] for j in ob.claim(db, "w2", limit=5, lease_seconds=60)] == [newest]


def test_a_job_in_backoff_is_not_due(db):
    job = put(db)
    ob.claim(db, "w", limit=1, lease_seconds=60)
    ob.mark_retry(db, job, "w", "HTTP 503", utcnow() + timedelta(seconds=30))
    assert ob.claim(db, "w", limit=1, lease_seconds=60) == []
    due = ob.claim(db, "w", limit=1, lease_seconds=60, now=utcnow() + timedelta(seconds=31))
    assert [j["id"] for j in due] == [job]


def test_backlog_counts_pending_and_failed_and_ages_the_oldest(db):
    assert ob.backlog(db) == {"outbox_pending": 0, "outbox_oldest_pending_age_seconds": 0, "outbox_failed": 0}
    a = put(db)
    put(db)
    ob.claim(db, "w", limit=1, lease_seconds=60)
    ob.mark_failed(db, a, "w", "bad token")
    report = ob.backlog(db, now=utcnow() + timedelta(seconds=90))
    assert report["outbox_pending"] == 1 and report["outbox_failed"] == 1
    assert 89 <= report["outbox_oldest_pending_age_seconds"] <= 91
    assert ob.retry(db, a) and ob.backlog(db)["outbox_failed"] == 0
