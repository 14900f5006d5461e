"""Several servers and workers on one PostgreSQL store: what only PostgreSQL can show.

Two gunicorn servers (what `lms-bridge serve` runs, with the sandbox LMS mounted as `lms-bridge demo` mounts it)
listen on two ports of 127.0.0.1, and `lms-bridge worker` processes deliver the outbox, all on ONE PostgreSQL
database and one shared data directory (one secret, one signing key), as behind a load balancer. Both servers
are configured with server A's address as the public URL, so the sandbox LMS (issuer A/sandbox) is reached
through A, and B is the second machine behind the balancer.

Runs under `tests/pg_cluster.py` (LMS_BRIDGE_TEST_POSTGRES set); on the SQLite run it is skipped.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import TEST_POSTGRES, form_fields, free_port

pytestmark = pytest.mark.skipif(not TEST_POSTGRES, reason="needs PostgreSQL: several servers share one store")

BIN = Path(sys.executable).with_name("lms-bridge")
# `lms-bridge serve` (ready_to_run, then gunicorn through lms_bridge.server.run) with the sandbox LMS mounted:
# `serve` never mounts it, `demo` does (SANDBOX_ENABLED). Everything else comes from the environment.
SERVER = """
import sys
from lms_bridge import create_app
from lms_bridge.cli import ready_to_run
from lms_bridge.server import run
overrides = {"SANDBOX_ENABLED": True}
ready_to_run(create_app(overrides), False, "serve")
run(lambda: create_app(overrides), host="127.0.0.1", port=int(sys.argv[1]), workers=2, threads=4)
"""
SCORES_PREFIX = "/sandbox/mod/lti/services.php/2/lineitems/"  # per-item paths: scores, not the lineitems list
MESSAGE_FN = "core_message_send_instant_messages"


class Stack:
    """The PostgreSQL database, the shared data directory, servers A and B, and workers started on demand."""

    def __init__(self, base: Path):
        from conftest import _pg_created, fresh_database_url

        self.database_url = fresh_database_url()
        self.db_name = self.database_url.rsplit("/", 1)[1]
        _pg_created.remove(self.db_name)  # kept for the whole module: dropped by the fixture, not per test
        self.base = base
        self.data = base / "data"
        self.port_a, self.port_b = free_port(), free_port()
        self.url_a, self.url_b = f"http://127.0.0.1:{self.port_a}", f"http://127.0.0.1:{self.port_b}"
        self.env = {**os.environ, "LMS_BRIDGE_DATA": str(self.data), "LMS_BRIDGE_URL": self.url_a,
                    "LMS_BRIDGE_DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1"}
        self.procs: list[tuple[subprocess.Popen, object]] = []
        self.workers: list[dict] = []

    def app(self):
        from lms_bridge import create_app

        return create_app({"DATA_DIR": str(self.data), "TOOL_URL": self.url_a, "DATABASE_URL": self.database_url,
                           "SANDBOX_ENABLED": True})

    def db(self):
        from lms_bridge.db import connect

        return connect(self.database_url)

    def _spawn(self, name: str, cmd: list[str], env: dict) -> tuple[subprocess.Popen, Path]:
        log = self.base / f"{name}.log"
        fh = open(log, "w")  # noqa: SIM115  (closed by stop())
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, fh))
        return proc, log

    def start_servers(self) -> None:
        for name, port in (("server_a", self.port_a), ("server_b", self.port_b)):
            self._spawn(name, [sys.executable, "-c", SERVER, str(port)], self.env)
        for name, url in (("server_a", self.url_a), ("server_b", self.url_b)):
            deadline = time.monotonic() + 40
            while True:
                try:
                    if requests.get(url + "/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} did not start:\n" + (self.base / f"{name}.log").read_text()[-3000:])
                time.sleep(0.1)

    def start_worker(self, name: str, **settings) -> dict:
        env = {**self.env, **{f"LMS_BRIDGE_{k}": str(v) for k, v in settings.items()}}
        proc, log = self._spawn(name, [str(BIN), "worker"], env)
        worker = {"name": name, "proc": proc, "log": log}
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for w in self.workers:
            _stop(w["proc"], signal.SIGINT)  # the worker's own clean stop (Ctrl-C)
        self.workers.clear()

    def stop(self) -> None:
        for proc, fh in self.procs:
            _stop(proc, signal.SIGTERM)
            fh.close()
        self.procs.clear()


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def delivered_by(worker: dict) -> int:
    """The worker's own count of jobs it delivered (its last 'delivered N, retrying N, failed N' line)."""
    counts = re.findall(r"^delivered (\d+), retrying", worker["log"].read_text(), re.M)
    return int(counts[-1]) if counts else 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from conftest import _pg_admin
    from lms_bridge.cli import prepare
    from lms_bridge.sandbox.platform import ensure_registered
    from lms_bridge.sandbox.webservice import link_tool

    s = Stack(tmp_path_factory.mktemp("servers"))
    try:
        app = s.app()
        prepare(app)  # the signing key exists before either server starts
        ensure_registered(app)
        db = s.db()
        link_tool(db, s.url_a)
        db.close()
        s.start_servers()
        yield s
    finally:
        s.stop()
        from lms_bridge.db import pg

        pg.dispose_pools()
        _pg_admin(f"DROP DATABASE IF EXISTS {s.db_name} WITH (FORCE)")


@pytest.fixture
def workers(stack):
    yield stack
    stack.stop_workers()
    from lms_bridge.db import sandbox as sq

    db = stack.db()
    sq.clear_faults(db)
    db.close()


# --- (a) logins and launches ------------------------------------------------------------------------------
def login_and_auth(login_url: str, tool_url: str) -> dict:
    """The browser's part up to the platform's auto-posting form, with the tool's login answered by `login_url`."""
    browser = requests.Session()
    _, init = form_fields(browser.get(f"{tool_url}/sandbox/launch/5/4", timeout=20).text)
    login = browser.post(f"{login_url}/lti/login", data=init, allow_redirects=False, timeout=20)
    assert login.status_code == 302, login.text
    _, auth = form_fields(browser.get(login.headers["Location"], timeout=20).text)
    browser.close()
    return auth


def test_login_on_one_server_launch_on_the_other_and_a_replay_is_refused_on_either(stack):
    for login_url, launch_url, other_url in ((stack.url_a, stack.url_b, stack.url_a),
                                             (stack.url_b, stack.url_a, stack.url_b)):
        auth = login_and_auth(login_url, stack.url_a)
        launch = requests.post(f"{launch_url}/lti/launch", data=auth, allow_redirects=False, timeout=20)
        assert launch.status_code == 303, launch.text
        token = parse_qs(urlsplit(launch.headers["Location"]).query)["lt"][0]
        home = requests.get(f"{other_url}/app/home", params={"lt": token}, timeout=20)
        assert home.status_code == 200 and "Your course project" in home.text
        replay = requests.post(f"{other_url}/lti/launch", data=auth, allow_redirects=False, timeout=20)
        assert replay.status_code == 400 and 'data-error="replayed"' in replay.text


def test_one_id_token_posted_to_both_servers_at_once_launches_exactly_once(stack):
    auth = login_and_auth(stack.url_a, stack.url_a)
    barrier = threading.Barrier(8)

    def post(n):
        barrier.wait(timeout=20)
        url = stack.url_a if n % 2 else stack.url_b
        return requests.post(f"{url}/lti/launch", data=auth, allow_redirects=False, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = Counter(pool.map(post, range(8)))
    assert answers == {303: 1, 400: 7}, answers


# --- (b) the booking race across both servers -------------------------------------------------------------
def seed_booking(stack, participants: int, seats: int, overlapping: int) -> tuple[list[str], int, list[int]]:
    """A course with an expert's slot of `seats` seats and `overlapping` other experts' slots at the same hour
    (`participants` seats each); a launch token per participant. Returns tokens, the slot, the other slots."""
    from lms_bridge.db import booking as bq
    from lms_bridge.db import lti as lti_q
    from lms_bridge.db import ts, write_transaction
    from lms_bridge.lti.context import issue_token

    db = stack.db()
    platform = lti_q.add_platform(db, issuer="https://moodle.example", client_id="race", deployment_ids=["1"],
                                  auth_login_url="https://moodle.example/auth",
                                  auth_token_url="https://moodle.example/t", key_set_url="https://moodle.example/jwks")
    scope = (platform, "1", "2")
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(days=7)
    now = datetime.now(timezone.utc)
    slots = []
    with write_transaction(db):
        for n in range(1 + overlapping):
            expert = bq.upsert_expert(db, scope, f"expert{n}", name=f"Expert {n}", email="", timezone="Asia/Seoul")
            bq.insert_slot(db, expert, ts(start), ts(start + timedelta(hours=1)), seats if n == 0 else participants)
            slots.append(bq.expert_slots(db, expert)[0]["id"])
        for n in range(participants):
            db.execute("INSERT INTO launches (id, platform_id, deployment_id, context_id, context_title, user_id,"
                       " user_name, role, message_type, resource_link_id, activity, timezone, claims, created_at,"
                       " expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       [f"race-{n}", platform, "1", "2", "Race course", f"p{n}", f"Participant {n}", "learner",
                        "LtiResourceLinkRequest", "4", "consultations", "Asia/Jakarta", json.dumps({}), ts(now),
                        ts(now + timedelta(hours=2))])
    db.close()
    with stack.app().app_context():
        tokens = [issue_token(f"race-{n}") for n in range(participants)]
    return tokens, slots[0], slots[1:]


def book(url: str, token: str, slot: int) -> str:
    resp = requests.post(url + "/consultations/book", headers={"X-Launch-Token": token}, timeout=60,
                         json={"slot_id": slot, "topic": "Data and indicators", "question": "Which indicators?"})
    if resp.status_code >= 500:
        return f"5xx {resp.status_code}"
    body = resp.json()
    return "booked" if resp.status_code == 201 and body.get("ok") else f"{resp.status_code} {body.get('error')}"


def test_a_booking_race_across_both_servers_fills_exactly_the_seats_and_no_participant_overlaps(stack):
    participants, seats, overlapping = 40, 7, 2
    tokens, slot, others = seed_booking(stack, participants, seats, overlapping)
    # Every participant wants the 7-seat slot; the first 12 also want both other experts' slots at the same hour.
    attempts = [(n, slot) for n in range(participants)] + [(n, s) for n in range(12) for s in others]
    barrier = threading.Barrier(len(attempts))

    def attempt(i):
        n, s = attempts[i]
        barrier.wait(timeout=30)
        return n, s, book(stack.url_a if i % 2 else stack.url_b, tokens[n], s)

    with ThreadPoolExecutor(len(attempts)) as pool:
        results = list(pool.map(attempt, range(len(attempts))))
    answers = Counter(r for _n, _s, r in results)
    assert not [r for r in answers if r.startswith("5xx")], answers
    assert set(answers) <= {"booked", "409 slot_full", "409 overlap"}, answers
    assert sum(1 for _n, s, r in results if s == slot and r == "booked") == seats
    per_participant = Counter(n for n, _s, r in results if r == "booked")
    assert max(per_participant.values()) == 1, "a participant holds two bookings at the same hour"
    assert all(per_participant[n] == 1 for n in range(12)), "each of them got one of the three slots"
    from lms_bridge.db import booking as bq

    db = stack.db()
    assert bq.get_slot(db, slot)["booked"] == seats
    stored = db.query("SELECT slot_id, participant_id FROM bookings WHERE status = 'booked' AND slot_id IN"
                      f" ({','.join('?' * (1 + overlapping))})", [slot, *others])
    stored = list(stored)
    assert sum(1 for r in stored if r["slot_id"] == slot) == seats
    assert len(stored) == sum(per_participant.values())
    assert len({r["participant_id"] for r in stored}) == len(stored)
    for s in others:
        assert bq.get_slot(db, s)["booked"] == sum(1 for r in stored if r["slot_id"] == s)
    db.close()


# --- (c) and (d): the outbox shared by two workers -----------------------------------------------------------
def release(db, pid: int, tool_url: str, user: str, given: float, minute: int) -> int:
    from lms_bridge.db import outbox as ob
    from lms_bridge.db import write_transaction
    from lms_bridge.sandbox import issuer

    lineitems = f"{issuer(tool_url)}/mod/lti/services.php/2/lineitems?type_id=1"
    with write_transaction(db):
        return ob.enqueue(db, platform_id=pid, kind="ags_score", order_key=f"score:{pid}:2:project_report:{user}",
                          payload={"lineitems_url": lineitems, "resource_id": "project_report", "tag": "grade",
                                   "label": "Project report", "score_maximum": 100, "user_id": user,
                                   "score_given": given, "comment": None,
                                   "timestamp": f"2026-11-23T10:{minute:02d}:00.000001+00:00",
                                   "grading_progress": "FullyGraded", "activity_progress": "Completed"})


def sandbox_platform(db, tool_url: str) -> int:
    from lms_bridge.db import lti as q
    from lms_bridge.sandbox import CLIENT_ID, issuer

    return q.find_platform(db, issuer(tool_url), CLIENT_ID)["id"]


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_workers_deliver_every_job_exactly_once_through_lms_faults(workers):
    from lms_bridge.db import outbox as ob
    from lms_bridge.db import sandbox as sq

    stack = workers
    db = stack.db()
    pid = sandbox_platform(db, stack.url_a)
    users = sq.seed_roster(db, 12)
    expected = {}
    score_jobs = []
    for n, user in enumerate(users):
        score_jobs.append(release(db, pid, stack.url_a, user, 50 + n, 1))
        score_jobs.append(release(db, pid, stack.url_a, user, 60 + n, 2))  # a re-release: the later value wins
        expected[user] = 60 + n
    texts = [f"Grade released {n}" for n in range(8)]
    from lms_bridge.db import write_transaction

    with write_transaction(db):
        message_jobs = [ob.enqueue(db, platform_id=pid, kind="ws_message", payload={"user_id": 5, "text": t})
                        for t in texts]
    # Counted faults (each use is counted, so the calls the LMS received can be accounted for exactly) on the
    # score and message calls; random failures only on the token endpoint.
    counted = {}
    for target, kind, extra, count in ((SCORES_PREFIX, "status", {"code": 429, "retry_after": 1}, 2),
                                       (SCORES_PREFIX, "status", {"code": 500}, 3),
                                       (SCORES_PREFIX, "timeout", {"seconds": 0.05}, 2),
                                       (MESSAGE_FN, "status", {"code": 503}, 2),
                                       (MESSAGE_FN, "timeout", {"seconds": 0.05}, 1)):
        counted[sq.set_fault(db, target, kind, count=count, **extra)] = (target, count)
    sq.set_fault(db, SCORES_PREFIX, "latency_ms", ms=20, count=10)
    sq.set_fault(db, "/sandbox/mod/lti/token.php", "fail_ratio", ratio=0.2)
    sq.reset_call_counts(db)
    settings = {"OUTBOX_LEASE_SECONDS": 30, "OUTBOX_POLL_SECONDS": 0.05, "OUTBOX_BACKOFF_SECONDS": 0.05,
                "OUTBOX_MAX_ATTEMPTS": 25, "OUTBOX_CONCURRENCY": 4}
    first, second = stack.start_worker("worker_1", **settings), stack.start_worker("worker_2", **settings)
    jobs = score_jobs + message_jobs

    def settled():
        return all(ob.get_job(db, j)["state"] in ("delivered", "superseded", "failed") for j in jobs)

    wait_until(settled, 45, "the outbox to drain")
    # Each worker prints its running total after a pass, once the pass's outcomes are recorded.
    wait_until(lambda: delivered_by(first) + delivered_by(second) >= len(jobs), 15, "the workers' pass reports")
    stack.stop_workers()
    states = Counter(ob.get_job(db, j)["state"] for j in jobs)
    assert states == {"delivered": len(jobs)}, states
    notes = [ob.get_job(db, j)["last_error"] for j in jobs]
    assert not any(notes), f"a job was sent twice and found already applied: {notes}"
    # Both workers took part, and together they delivered each job once.
    assert delivered_by(first) > 0 and delivered_by(second) > 0
    assert delivered_by(first) + delivered_by(second) == len(jobs)
    # The LMS received each job's call once, plus one call per fault it answered with. (Concurrent calls may both
    # take a rule's last use: the sandbox decrements `remaining` once per use, below zero then, so it counts them.)
    faults = {f["id"]: f for f in sq.list_faults(db)}
    used = {target: 0 for target in (SCORES_PREFIX, MESSAGE_FN)}
    for fault_id, (target, count) in counted.items():
        assert faults[fault_id]["remaining"] <= 0, "every counted fault was used up"
        used[target] += count - faults[fault_id]["remaining"]
    calls = sq.call_counts(db)
    assert calls["scores"] == len(score_jobs) + used[SCORES_PREFIX], calls
    assert calls[f"ws:{MESSAGE_FN}"] == len(message_jobs) + used[MESSAGE_FN], calls
    # ...and holds each grade once with its latest value, in one line item, and each message once.
    rows = [r for r in sq.gradebook(db) if r["resource_id"] == "project_report"]
    assert len({r["lineitem_id"] for r in rows}) == 1
    assert len(sq.list_lineitems(db, "2", resource_id="project_report")) == 1, "created once, by one of the workers"
    assert {r["user_id"]: round(r["score"], 5) for r in rows} == expected and len(rows) == len(expected)
    received = [m for m in sq.messages(db, "5") if m["clientmsgid"] in {f"outbox-{j}" for j in message_jobs}]
    assert sorted(m["clientmsgid"] for m in received) == sorted(f"outbox-{j}" for j in message_jobs)
    assert sorted(m["text"] for m in received) == sorted(f"<p>{t}</p>" for t in texts)
    db.close()


def test_a_worker_killed_mid_delivery_leaves_the_job_to_the_other_after_its_lease(workers):
    from lms_bridge.db import outbox as ob
    from lms_bridge.db import sandbox as sq

    stack = workers
    db = stack.db()
    pid = sandbox_platform(db, stack.url_a)
    (user,) = sq.seed_roster(db, 1)
    lease = 3
    settings = {"OUTBOX_LEASE_SECONDS": lease, "OUTBOX_POLL_SECONDS": 0.05, "OUTBOX_BACKOFF_SECONDS": 0.05,
                "OUTBOX_CONCURRENCY": 2}
    # The LMS hangs on the first score call for longer than the lease, then answers 504 (nothing stored).
    hang = sq.set_fault(db, SCORES_PREFIX, "timeout", seconds=lease + 1.5, count=1)
    sq.reset_call_counts(db)
    ws = {w["name"]: w for w in (stack.start_worker("worker_3", **settings),
                                 stack.start_worker("worker_4", **settings))}
    job = release(db, pid, stack.url_a, user, 77, 3)
    wait_until(lambda: next(f for f in sq.list_faults(db) if f["id"] == hang)["remaining"] == 0, 30,
               "the score call to reach the hanging LMS")
    held = ob.get_job(db, job)
    claimant = int(held["claimed_by"].split(":")[1])
    victim = next(w for w in ws.values() if w["proc"].pid == claimant)
    survivor = next(w for w in ws.values() if w is not victim)
    os.kill(victim["proc"].pid, signal.SIGKILL)
    victim["proc"].wait(timeout=10)
    killed_at = time.monotonic()
    assert ob.get_job(db, job)["state"] == "pending" and ob.get_job(db, job)["claimed_by"] == held["claimed_by"]

    wait_until(lambda: ob.get_job(db, job)["state"] != "pending", 30, "the other worker to deliver the job")
    done = ob.get_job(db, job)
    assert done["state"] == "delivered" and not done["last_error"]
    assert done["attempts"] == 2, "claimed twice: by the killed worker, then by the other after the lease"
    assert done["delivered_at"] >= held["claimed_until"], "delivered before the killed worker's lease ran out"
    assert time.monotonic() - killed_at > 0.5
    wait_until(lambda: delivered_by(survivor) >= 1, 15, "the other worker's pass report")
    assert delivered_by(survivor) == 1 and delivered_by(victim) == 0
    assert sq.call_counts(db)["scores"] == 2  # the call that hung, and the one that delivered
    assert sq.grade_of(db, "project_report", user) == 77
    db.close()
