"""Booking under contention: many connections (threads and processes) race for the same seats.

Each test runs on the store under test: a SQLite file, or on the PostgreSQL run a fresh PostgreSQL database."""
from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from lms_bridge.booking import Overlap, SlotFull
from lms_bridge.booking.service import Person, book
from lms_bridge.db import booking as bq
from lms_bridge.db import IntegrityError, connect, migrate, ts, write_transaction
from lms_bridge.db import lti as lti_q

from conftest import fresh_database_url

START = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)


def store(tmp_path) -> str:
    return fresh_database_url() or str(tmp_path / "race.sqlite3")


def seed(path: str, capacity: int, experts: int = 1) -> tuple[tuple, list[int]]:
    """A platform, `experts` experts with one slot each at the same time, of `capacity` seats."""
    db = connect(path)
    migrate(db)
    platform = lti_q.add_platform(db, issuer="https://moodle.example", client_id="c", auth_login_url="https://x/a",
                                  auth_token_url="https://x/t", key_set_url="https://x/k", deployment_ids=["1"])
    scope = (platform, "1", "2")
    slots = []
    with write_transaction(db):
        for n in range(experts):
            expert = bq.upsert_expert(db, scope, f"expert{n}", name=f"Expert {n}", email="", timezone="Asia/Seoul")
            bq.insert_slot(db, expert, ts(START), ts(START + timedelta(hours=1)), capacity)
            slots.append(bq.expert_slots(db, expert)[0]["id"])
    db.close()
    return scope, slots


def attempt(path: str, scope: tuple, slot_id: int, user: str, barrier=None) -> str:
    db = connect(path)
    try:
        if barrier is not None:
            barrier.wait()
        book(db, scope, slot_id, Person(user, user, "", "Asia/Jakarta"), datetime.now(timezone.utc),
             topic="t", question="q")
        return "booked"
    except SlotFull:
        return "full"
    except Overlap:
        return "overlap"
    finally:
        db.close()


def test_threads_racing_for_the_last_seats(tmp_path):
    path = store(tmp_path)
    scope, (slot,) = seed(path, capacity=3)
    barrier = threading.Barrier(24)
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda n: attempt(path, scope, slot, f"p{n}", barrier), range(24)))
    assert results.count("booked") == 3 and results.count("full") == 21
    db = connect(path)
    assert bq.get_slot(db, slot)["booked"] == 3
    assert db.execute("SELECT COUNT(*) FROM bookings WHERE status = 'booked'").fetchone()[0] == 3
    db.close()


def test_one_participant_racing_for_overlapping_slots_gets_one(tmp_path):
    path = store(tmp_path)
    scope, slots = seed(path, capacity=5, experts=8)
    barrier = threading.Barrier(len(slots))
    with ThreadPoolExecutor(len(slots)) as pool:
        results = list(pool.map(lambda s: attempt(path, scope, s, "same-person", barrier), slots))
    assert results.count("booked") == 1 and results.count("overlap") == 7
    db = connect(path)
    assert sum(bq.get_slot(db, s)["booked"] for s in slots) == 1
    db.close()


def _process_attempt(args):
    return attempt(*args)


def test_processes_racing_for_the_last_seat(tmp_path):
    path = store(tmp_path)
    scope, (slot,) = seed(path, capacity=1)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        results = pool.map(_process_attempt, [(path, scope, slot, f"p{n}") for n in range(12)])
    assert results.count("booked") == 1 and results.count("full") == 11


def test_an_expert_cannot_get_overlapping_slots(tmp_path):
    path = store(tmp_path)
    scope, (slot,) = seed(path, capacity=1)
    db = connect(path)
    expert = bq.get_slot(db, slot)["expert_id"]
    with write_transaction(db):
        assert not bq.insert_slot(db, expert, ts(START + timedelta(minutes=30)), ts(START + timedelta(minutes=90)), 1)
        assert bq.insert_slot(db, expert, ts(START + timedelta(hours=1)), ts(START + timedelta(hours=2)), 1)
    db.close()


@pytest.mark.parametrize("capacity", [1, 2])
def test_seat_count_never_exceeds_capacity_in_the_schema(tmp_path, capacity):
    path = store(tmp_path)
    _scope, (slot,) = seed(path, capacity=capacity)
    db = connect(path)
    for _ in range(capacity):
        assert bq.take_seat(db, slot)
    assert not bq.take_seat(db, slot)
    with pytest.raises(IntegrityError):
        db.execute("UPDATE booking_slots SET booked = booked + 1 WHERE id = ?", [slot])
    db.close()
