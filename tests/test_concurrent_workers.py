"""Concurrency guarantees the database keeps: outbox claims, line-item claims and bookings.

Every thread has its own connection, as separate worker processes and servers would. The tests marked
PostgreSQL-only show what only a store with concurrent writers can: SQLite has one writer at a time, so there
a second worker waits for the first by design, and no two transactions are ever open for writing at once.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from lms_bridge.booking import Overlap
from lms_bridge.booking import service
from lms_bridge.booking.service import Person, book, cancel, reschedule
from lms_bridge.db import booking as bq
from lms_bridge.db import connect, migrate, parse_ts, ts, write_transaction
from lms_bridge.db import lti as lti_q
from lms_bridge.db import outbox as ob
from lms_bridge.db import sync as sq

from conftest import TEST_POSTGRES, fresh_database_url

postgresql_only = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only: SQLite has one writer at a time, "
                                                                "so no two write transactions are ever open at once")
START = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
SECONDS = 2  # what a connection may wait for a lock before the test calls it blocked


@pytest.fixture
def url(tmp_path):
    """The store under test, migrated, with one platform: a SQLite file, or a fresh PostgreSQL database."""
    url = fresh_database_url() or str(tmp_path / "c.sqlite3")
    db = connect(url)
    migrate(db)
    lti_q.add_platform(db, issuer="http://moodle.test", client_id="c", auth_login_url="http://moodle.test/a",
                       auth_token_url="http://moodle.test/t", key_set_url="http://moodle.test/k", deployment_ids=["1"])
    db.close()
    return url


class Connections:
    """One connection per caller; on PostgreSQL each refuses to wait for a lock longer than SECONDS."""

    def __init__(self, url):
        self.url, self.opened, self.lock = url, [], threading.Lock()

    def __call__(self):
        db = connect(self.url)
        if TEST_POSTGRES:
            db.execute(f"SET lock_timeout = '{SECONDS}s'")
        with self.lock:
            self.opened.append(db)
        return db

    def close(self):
        for db in self.opened:
            db.close()


@pytest.fixture
def conns(url):
    c = Connections(url)
    yield c
    c.close()


def pid(db) -> int:
    return db.execute("SELECT id FROM platforms ORDER BY id LIMIT 1").fetchone()[0]


def put(db, n=1, order_key=None) -> list[int]:
    with write_transaction(db):
        return [ob.enqueue(db, platform_id=pid(db), kind="ags_score", payload={"n": i}, order_key=order_key)
                for i in range(n)]


def ids(jobs) -> list[int]:
    return [j["id"] for j in jobs]


# --- outbox claims ---------------------------------------------------------------------------------
@postgresql_only
def test_a_worker_claims_past_the_rows_another_worker_is_claiming_without_waiting(conns):
    a, b = conns(), conns()
    jobs = put(a, 6)
    a.conn.raw.execute("BEGIN")  # worker A's claim, not yet committed: its rows stay locked
    mine = ob.claim(a, "A", limit=3, lease_seconds=60)
    started = time.monotonic()
    theirs = ob.claim(b, "B", limit=10, lease_seconds=60)  # SKIP LOCKED: past A's rows, at once
    assert time.monotonic() - started < 1
    assert ids(mine) == jobs[:3] and ids(theirs) == jobs[3:]
    a.conn.commit()
    assert ob.claim(b, "B", limit=10, lease_seconds=60) == []  # A's claim, committed, holds
    assert {j["claimed_by"] for j in map(ob.get_job, [b] * 6, jobs)} == {"A", "B"}


@postgresql_only
def test_workers_claim_and_finish_while_a_request_holds_the_store_write_lock(conns):
    """A web request inside write_transaction holds the store-wide lock; the worker's path never asks for it."""
    request, worker = conns(), conns()
    jobs = put(request, 2)
    with write_transaction(request):
        request.execute("UPDATE platforms SET client_id = client_id")
        claimed = ob.claim(worker, "W", limit=5, lease_seconds=60)
        assert ids(claimed) == jobs
        assert ob.mark_delivered(worker, jobs[0], "W")
        assert ob.mark_retry(worker, jobs[1], "W", "try later", datetime.now(timezone.utc))
        assert sq.claim_lineitem(worker, pid(worker), "http://m/li", "plan", "t", timedelta(minutes=2),
                                 job_id=jobs[1], worker_id="W")
    assert ob.get_job(worker, jobs[0])["state"] == "delivered"


@postgresql_only
def test_a_later_job_of_an_order_key_waits_while_an_earlier_one_is_being_claimed(conns):
    a, b = conns(), conns()
    first, second = put(a, 2, order_key="score:1:2:plan:5")
    a.conn.raw.execute("BEGIN")
    assert ids(ob.claim(a, "A", limit=5, lease_seconds=60)) == [first]
    assert ob.claim(b, "B", limit=5, lease_seconds=60) == []  # the first is locked, the second held back
    a.conn.commit()
    assert ob.claim(b, "B", limit=5, lease_seconds=60) == []  # the first is still pending, claimed by A
    assert ob.mark_delivered(a, first, "A")
    assert ids(ob.claim(b, "B", limit=5, lease_seconds=60)) == [second]


def test_many_workers_deliver_every_job_exactly_once_and_each_order_key_in_order(conns):
    """Four workers drain one queue: no job claimed twice, and never two jobs of one order key in flight."""
    db = conns()
    keys = [f"score:1:2:plan:{n}" for n in range(30)]
    for round_ in range(3):
        for key in keys:
            put(db, 1, order_key=key)
        put(db, 20)
    total = 3 * (30 + 20)
    lock, in_flight, delivered, claimed_by = threading.Lock(), set(), [], Counter()
    overtaken = []
    barrier = threading.Barrier(4)

    def work(name):
        mine = conns()
        barrier.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = ob.claim(mine, name, limit=7, lease_seconds=60)
            with lock:
                if not jobs and len(delivered) == total:
                    return
                for job in jobs:
                    claimed_by[job["id"]] += 1
                    if job["order_key"] and job["order_key"] in in_flight:
                        overtaken.append(job["id"])
                    in_flight.add(job["order_key"])
            if not jobs:
                time.sleep(0.01)
            for job in jobs:
                with lock:
                    in_flight.discard(job["order_key"])  # before the outcome commits: the next may go then
                assert ob.mark_delivered(mine, job["id"], name)
                with lock:
                    delivered.append(job["id"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, ["W1", "W2", "W3", "W4"]))
    assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == total
    assert set(claimed_by.values()) == {1} and overtaken == []
    by_key = defaultdict(list)
    for row in db.query("SELECT id, order_key, delivered_at FROM outbox WHERE order_key IS NOT NULL ORDER BY id"):
        by_key[row["order_key"]].append(parse_ts(row["delivered_at"]))
    assert all(times == sorted(times) for times in by_key.values())  # delivered in the order they were queued


def test_one_of_many_concurrent_workers_gets_the_line_item_claim(conns):
    """The claim is a row with a primary key: one INSERT wins, whatever the number of workers."""
    db = conns()
    platform = pid(db)
    put(db, 12)
    jobs = [ob.claim(db, f"W{n}", limit=1, lease_seconds=60)[0]["id"] for n in range(12)]  # each holds a lease
    barrier = threading.Barrier(12)

    def attempt(n):
        mine = conns()
        barrier.wait()
        return sq.claim_lineitem(mine, platform, "http://m/lineitems", "plan", "tool", timedelta(minutes=2),
                                 job_id=jobs[n], worker_id=f"W{n}")

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(attempt, range(12)))
    assert results.count(True) == 1


# --- bookings --------------------------------------------------------------------------------------
def experts(db, *starts_per_expert) -> tuple[tuple, list[list[int]]]:
    """One expert per argument, with one single-seat slot per start offset (hours after START)."""
    scope = (pid(db), "1", "2")
    slots = []
    with write_transaction(db):
        for n, starts in enumerate(starts_per_expert):
            expert = bq.upsert_expert(db, scope, f"expert{n}", name=f"Expert {n}", email="", timezone="UTC")
            for hours in starts:
                start = START + timedelta(hours=hours)
                assert bq.insert_slot(db, expert, ts(start), ts(start + timedelta(hours=1)), 1)
            slots.append([s["id"] for s in bq.expert_slots(db, expert)])
    return scope, slots


def booking_row(db, slot_id: int, participant: str) -> dict:
    slot = bq.get_slot(db, slot_id)
    return {"slot_id": slot_id, "expert_id": slot["expert_id"], "participant_id": participant,
            "start_utc": slot["start_utc"], "end_utc": slot["end_utc"]}


@postgresql_only
def test_overlapping_bookings_written_at_once_are_refused_by_the_exclusion_constraint(conns):
    """No store-wide lock and no check in Python: the second transaction waits for the first, then is refused."""
    a, b = conns(), conns()
    scope, ((one,), (other,)) = experts(a, [0], [0.5])
    a.conn.raw.execute("BEGIN")
    bq.insert_booking(a, scope, booking_row(a, one, "p1"))
    outcome = {}

    def second():
        b.conn.raw.execute("BEGIN")
        try:
            bq.insert_booking(b, scope, booking_row(b, other, "p1"))
            outcome["result"] = "booked"
        except bq.BookingOverlap as e:
            outcome["result"] = str(e)
        b.conn.commit()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # waiting for the first transaction's row, as the constraint requires
    a.conn.commit()
    thread.join(timeout=SECONDS + 1)
    assert "participant_overlap" in outcome["result"]
    assert a.execute("SELECT COUNT(*) FROM bookings WHERE participant_id = 'p1'").fetchone()[0] == 1


@postgresql_only
def test_overlapping_slots_written_at_once_are_refused_by_the_exclusion_constraint(conns):
    a, b = conns(), conns()
    scope, _ = experts(a, [])
    expert = bq.expert_by_user(a, scope, "expert0")["id"]
    a.conn.raw.execute("BEGIN")
    assert bq.insert_slot(a, expert, ts(START), ts(START + timedelta(hours=1)), 1)
    result = []
    thread = threading.Thread(target=lambda: result.append(bq.insert_slot(
        b, expert, ts(START + timedelta(minutes=30)), ts(START + timedelta(minutes=90)), 1)))
    thread.start()
    time.sleep(0.3)
    a.conn.commit()
    thread.join(timeout=SECONDS + 1)
    assert result == [False] and len(bq.expert_slots(a, expert)) == 1


def test_threads_booking_one_slot_get_exactly_its_seats(conns):
    db = conns()
    scope = (pid(db), "1", "2")
    with write_transaction(db):
        expert = bq.upsert_expert(db, scope, "e", name="E", email="", timezone="UTC")
        assert bq.insert_slot(db, expert, ts(START), ts(START + timedelta(hours=1)), 5)
    (slot,) = [s["id"] for s in bq.expert_slots(db, expert)]
    barrier = threading.Barrier(20)

    def attempt(n):
        mine = conns()
        barrier.wait()
        try:
            book(mine, scope, slot, Person(f"p{n}", "", "", "UTC"), datetime.now(timezone.utc), topic="t", question="")
            return "booked"
        except service.SlotFull:
            return "full"

    with ThreadPoolExecutor(20) as pool:
        results = Counter(pool.map(attempt, range(20)))
    assert results == {"booked": 5, "full": 15}
    assert bq.get_slot(db, slot)["booked"] == 5


def test_an_overlap_only_the_database_catches_gets_the_same_refusal_when_booking_and_moving(conns, monkeypatch):
    """With the service's own checks out of the way, the trigger (SQLite) or the exclusion constraint (PostgreSQL)
    refuses, and the participant reads the same sentence; the refused write leaves the seats as they were."""
    monkeypatch.setattr(service, "check_can_book", lambda *a, **k: None)
    monkeypatch.setattr(service, "check_can_reschedule", lambda *a, **k: None)
    db = conns()
    scope, ((first,), (same_time, later)) = experts(db, [0], [0.5, 3])
    lina, now = Person("lina", "Lina", "", "UTC"), datetime.now(timezone.utc)
    held = book(db, scope, first, lina, now, topic="t", question="")
    with pytest.raises(Overlap, match="You already have a consultation overlapping this time"):
        book(db, scope, same_time, lina, now, topic="t", question="")
    moved = book(db, scope, later, lina, now, topic="t", question="")
    with pytest.raises(Overlap, match="You already have a consultation overlapping the new time"):
        reschedule(db, scope, moved, same_time, lina, now)
    assert [bq.get_slot(db, s)["booked"] for s in (first, same_time, later)] == [1, 0, 1]
    cancel(db, scope, held, lina, now)  # a cancelled booking no longer counts
    reschedule(db, scope, moved, same_time, lina, now)
    assert [bq.get_slot(db, s)["booked"] for s in (first, same_time, later)] == [0, 1, 0]


@postgresql_only
def test_a_participant_books_while_another_participants_booking_is_still_open(conns):
    """A booking locks its participant and its slot's row, not the store: others book at the same moment."""
    a, b = conns(), conns()
    scope = (pid(a), "1", "2")
    with write_transaction(a):
        expert = bq.upsert_expert(a, scope, "e", name="E", email="", timezone="UTC")
        assert bq.insert_slot(a, expert, ts(START), ts(START + timedelta(hours=1)), 1)
        assert bq.insert_slot(a, expert, ts(START + timedelta(hours=2)), ts(START + timedelta(hours=3)), 1)
    first, second = [s["id"] for s in bq.expert_slots(a, expert)]
    now = datetime.now(timezone.utc)
    with bq.participant_transaction(a, scope, "p1"):
        assert bq.take_seat(a, second)  # p1's booking, not yet committed
        started = time.monotonic()
        book(b, scope, first, Person("p2", "", "", "UTC"), now, topic="t", question="")  # lock_timeout: never waits
        assert time.monotonic() - started < 1
        assert bq.get_slot(b, first)["booked"] == 1 and bq.get_slot(b, second)["booked"] == 0  # p1's still open
    with pytest.raises(service.SlotFull):
        book(b, scope, second, Person("p3", "", "", "UTC"), now, topic="t", question="")
    assert bq.get_slot(b, second)["booked"] == 1
