"""Single use on PostgreSQL, decided by the database: a login state or an id_token nonce that two sessions
present at the same moment is accepted exactly once (the state row's condition and the nonce's primary key;
the second session waits for the first and then loses, or wins when the first rolls back)."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from conftest import TEST_POSTGRES, TOOL_URL
from lms_bridge.db import connect, utcnow, write_transaction
from lms_bridge.db import lti as lq

pytestmark = pytest.mark.skipif(
    not TEST_POSTGRES, reason="PostgreSQL only: two sessions inside open transactions at once; on SQLite "
                              "BEGIN IMMEDIATE admits one writer at a time, so there is no such race to show")


class RolledBack(Exception):
    pass


@pytest.fixture
def url(app):
    return app.config["DATABASE_URL"]


@pytest.fixture
def sessions(url):
    opened = [connect(url) for _ in range(3)]
    yield opened
    for s in opened:
        s.close()


def _state(url, name="state-raced-1"):
    db = connect(url)
    try:
        platform = lq.find_platform(db, TOOL_URL + "/sandbox")
        lq.save_state(db, state=name, nonce="n-" + name, platform_id=platform["id"], target_link_uri=TOOL_URL,
                      storage_target=None, ttl_seconds=300)
    finally:
        db.close()
    return name


def _wait_until_blocked_by(watch, waiting: int, holder: int, timeout=10.0):
    """Until backend `waiting` waits for a lock that backend `holder` holds (pg_blocking_pids)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        blockers = watch.execute("SELECT pg_blocking_pids(?)", [waiting]).fetchone()[0]
        if holder in blockers:
            return
        time.sleep(0.01)
    raise AssertionError("the second session never waited for the first")


def _race(sessions, step, *, first_commits: bool):
    """`step(db)` in session A's open launch transaction, then in B's while A's is still open; A commits or
    rolls back once B waits for it. Returns (A's answer, B's answer)."""
    a, b, watch = sessions
    pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
    pid_b = b.execute("SELECT pg_backend_pid()").fetchone()[0]
    answers = {}

    def second():
        with lq.launch_transaction(b):
            answers["b"] = step(b)

    thread = threading.Thread(target=second)
    try:
        with lq.launch_transaction(a):
            answers["a"] = step(a)
            thread.start()
            _wait_until_blocked_by(watch, pid_b, pid_a)
            if not first_commits:
                raise RolledBack
    except RolledBack:
        pass
    thread.join(timeout=10)
    assert not thread.is_alive()
    return answers["a"], answers["b"]


def test_a_login_state_presented_by_two_sessions_at_once_is_consumed_once(url, sessions):
    state = _state(url)
    assert _race(sessions, lambda db: lq.consume_state(db, state), first_commits=True) == (True, False)
    assert lq.get_state(sessions[2], state)["used_at"] is not None
    assert lq.consume_state(sessions[2], state) is False  # and never again


def test_a_nonce_presented_by_two_sessions_at_once_is_burnt_once(sessions):
    exp = utcnow() + timedelta(minutes=5)
    step = lambda db: lq.use_nonce(db, TOOL_URL + "/sandbox", "nonce-raced-1", exp)  # noqa: E731
    assert _race(sessions, step, first_commits=True) == (True, False)
    assert sessions[2].execute("SELECT count(*) FROM used_nonces WHERE nonce = 'nonce-raced-1'").fetchone()[0] == 1
    assert lq.use_nonce(sessions[2], TOOL_URL + "/sandbox", "nonce-raced-1", exp) is False


def test_when_the_first_launch_rolls_back_the_waiting_one_takes_the_state_and_the_nonce(url, sessions):
    state = _state(url)
    exp = utcnow() + timedelta(minutes=5)

    def step(db):
        return lq.consume_state(db, state) and lq.use_nonce(db, TOOL_URL + "/sandbox", "nonce-raced-2", exp)

    assert _race(sessions, step, first_commits=False) == (True, True)
    assert lq.get_state(sessions[2], state)["used_at"] is not None
    assert sessions[2].execute("SELECT count(*) FROM used_nonces WHERE nonce = 'nonce-raced-2'").fetchone()[0] == 1


def test_a_launch_does_not_wait_for_the_store_wide_write_lock(url, sessions):
    """Launches on many servers run side by side: the launch transaction takes no advisory lock."""
    state = _state(url)
    a, b, _ = sessions
    with write_transaction(a):  # holds the store-wide lock that registration and settings take
        started = time.monotonic()
        with lq.launch_transaction(b):
            assert lq.consume_state(b, state) is True
        assert time.monotonic() - started < 5
