"""`lms-bridge worker`: claim due outbox jobs, deliver them on a thread pool, record each outcome.

Several workers may run at once (a claim is a lease held by one worker) and any may be killed at
any moment: a job whose lease ran out is claimed again, and handlers are idempotent.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from ..db import connect, row_transaction, utcnow
from ..db import lti as q
from ..db import outbox as ob
from .handlers import HANDLERS, Delivery, GiveUp, Retry, Waiting, explain

log = logging.getLogger("lms_bridge.sync")

DEFAULTS = {"OUTBOX_CONCURRENCY": 8, "OUTBOX_MAX_ATTEMPTS": 10, "OUTBOX_LEASE_SECONDS": 120,
            "OUTBOX_BACKOFF_SECONDS": 2.0, "OUTBOX_BACKOFF_MAX_SECONDS": 3600, "OUTBOX_POLL_SECONDS": 2.0, "OUTBOX_WAIT_RECHECK_SECONDS": 600}


def setting(app, name: str):
    return app.config.get(name, DEFAULTS[name])


def backoff(attempts: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential with jitter (between half and all of base * 2^(n-1)); never sooner than Retry-After."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    return max(delay, retry_after or 0.0)


@dataclass
class Stats:
    delivered: int = 0
    already_applied: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0
    lost_lease: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.delivered + self.retried + self.failed


class Deliverer:
    """Delivers claimed jobs; each pool thread gets its own database connection."""

    def __init__(self, app, worker_id: str | None = None):
        self.app = app
        self.url, self.data_dir = app.config["DATABASE_URL"], app.config["DATA_DIR"]
        self.session = app.extensions["lms_bridge_http"]
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.max_attempts = int(setting(app, "OUTBOX_MAX_ATTEMPTS"))
        self.base = float(setting(app, "OUTBOX_BACKOFF_SECONDS"))
        self.cap = float(setting(app, "OUTBOX_BACKOFF_MAX_SECONDS"))
        self.lease = float(setting(app, "OUTBOX_LEASE_SECONDS"))
        self.timeout = float(app.config.get("HTTP_TIMEOUT", 15))
        self.wait_recheck = float(setting(app, "OUTBOX_WAIT_RECHECK_SECONDS"))
        self._dbs: dict[int, object] = {}
        self._platforms: dict[int, dict] = {}
        self.stats, self._stats_lock = Stats(), threading.Lock()

    def db(self):
        key = threading.get_ident()
        if key not in self._dbs:
            self._dbs[key] = connect(self.url)
        return self._dbs[key]

    def close(self) -> None:
        """Close every thread's connection (the pool's threads are gone by now)."""
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()
        self._platforms.clear()

    def platform(self, db, platform_id: int) -> dict:
        if platform_id not in self._platforms:
            self._platforms[platform_id] = dict(q.get_platform(db, platform_id))
        return self._platforms[platform_id]

    def claim(self, limit: int) -> list[dict]:
        return ob.claim(self.db(), self.worker_id, limit=limit, lease_seconds=self.lease)

    def deliver(self, job: dict) -> str:
        """Run the job's handler and record the outcome; returns 'delivered', 'retry' or 'failed'."""
        from lti_config.keys import signer

        db = self.db()
        try:
            platform = self.platform(db, job["platform_id"])
            handler = HANDLERS.get(job["kind"])
            if handler is None:
                raise GiveUp(f"unknown job kind {job['kind']!r}")
            delivery = Delivery(db, self.session, platform, signer(db, self.data_dir), timeout=self.timeout,
                                worker_id=self.worker_id)
            try:
                note = handler(delivery, job)
            except Exception as exc:
                raise explain(exc) from None
        except Waiting as exc:
            owned = ob.mark_waiting(db, job["id"], self.worker_id, str(exc),
                                    utcnow() + timedelta(seconds=self.wait_recheck))
            return self._record(db, job, "waiting", owned, str(exc))
        except Retry as exc:
            return self._retry(db, job, str(exc), exc.retry_after)
        except GiveUp as exc:
            return self._record(db, job, "failed", ob.mark_failed(db, job["id"], self.worker_id, str(exc)), str(exc))
        except Exception as exc:  # a bug or an unexpected answer: retry with backoff, then fail visibly
            return self._retry(db, job, f"{type(exc).__name__}: {exc}", None)
        with row_transaction(db):  # the outcome and what the handler learned commit together
            owned = ob.mark_delivered(db, job["id"], self.worker_id, note)
            if owned:
                for remember in delivery.on_delivered:
                    remember()
        if note and owned:
            with self._stats_lock:
                self.stats.already_applied += 1
        return self._record(db, job, "delivered", owned, note)

    def _retry(self, db, job: dict, error: str, retry_after: float | None) -> str:
        if job["attempts"] >= self.max_attempts:
            message = f"gave up after {job['attempts']} tries; last error: {error}"
            return self._record(db, job, "failed", ob.mark_failed(db, job["id"], self.worker_id, message), message)
        delay = backoff(job["attempts"], self.base, self.cap, retry_after)
        owned = ob.mark_retry(db, job["id"], self.worker_id, error, utcnow() + timedelta(seconds=delay))
        return self._record(db, job, "retry", owned, error)

    def _record(self, db, job: dict, outcome: str, owned: bool, message: str | None) -> str:
        with self._stats_lock:
            if not owned:
                self.stats.lost_lease += 1
            elif outcome == "delivered":
                self.stats.delivered += 1
            elif outcome == "retry":
                self.stats.retried += 1
            elif outcome == "waiting":
                self.stats.waiting += 1
            else:
                self.stats.failed += 1
                self.stats.errors.append(f"job {job['id']}: {message}")
        fields = {"job": job["id"], "kind": job["kind"], "platform": job["platform_id"], "outcome": outcome,
                  "attempt": job["attempts"], **({"lost_lease": True} if not owned else {})}
        if outcome == "failed":
            log.warning("outbox job %s (%s) failed: %s", job["id"], job["kind"], message, extra={"kv": fields})
        elif outcome == "retry":
            log.info("outbox job %s (%s) will be retried: %s", job["id"], job["kind"], message, extra={"kv": fields})
        elif outcome == "waiting":
            log.info("outbox job %s (%s) is %s", job["id"], job["kind"], (message or "")[:300], extra={"kv": fields})
        else:
            log.info("outbox job %s (%s) delivered", job["id"], job["kind"], extra={"kv": fields})
        return outcome


def deliver_due(app, limit: int | None = None, deliverer: Deliverer | None = None) -> Stats:
    """Deliver every job due now (at most `limit` claims) with the configured concurrency, then return.

    Jobs are claimed in batches of twice the concurrency so one claim feeds many deliveries.
    """
    d = deliverer or Deliverer(app)
    concurrency = max(1, int(setting(app, "OUTBOX_CONCURRENCY")))
    claimed, queue, running = 0, deque(), set()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="outbox") as pool:
        while True:
            if not queue and len(running) < concurrency and (limit is None or claimed < limit):
                batch = 2 * concurrency if limit is None else min(2 * concurrency, limit - claimed)
                queue.extend(d.claim(batch))
                claimed += len(queue)
            while queue and len(running) < concurrency:
                running.add(pool.submit(d.deliver, queue.popleft()))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
    d.close()
    return d.stats


def queue_reminders(app) -> int:
    """Consultation reminders become outbox messages here, so they need no scheduler of their own."""
    from ..booking.service import send_due_reminders

    db = connect(app.config["DATABASE_URL"])
    try:
        return send_due_reminders(db, utcnow())
    finally:
        db.close()


def queue_evaluation(app) -> dict:
    """Tracer-study invitations and reminders, and each course's daily pre/post grade refresh."""
    from ..evaluation.jobs import queue_due

    return queue_due(app)


OPTIMIZE_EVERY_SECONDS = 3600


@dataclass
class Upkeep:
    """The store's upkeep riding on the worker's passes: expired launch data purged every pass (in
    bounded batches), `PRAGMA optimize` once an hour so the query planner keeps fresh statistics."""

    last_optimize: float | None = None
    purged: dict = field(default_factory=dict)

    def run(self, app, clock=time.monotonic) -> dict:
        from ..db import upkeep

        db = connect(app.config["DATABASE_URL"])
        try:
            deleted = upkeep.purge_expired(db)
            for table, n in deleted.items():
                self.purged[table] = self.purged.get(table, 0) + n
            if self.last_optimize is None or clock() - self.last_optimize >= OPTIMIZE_EVERY_SECONDS:
                upkeep.optimize(db)
                self.last_optimize = clock()
            return deleted
        finally:
            db.close()


def retention_pass(app) -> None:
    """Personal data of courses past RETENTION_DAYS goes once a day (see lms_bridge.privacy)."""
    from ..privacy.service import retention_pass as run

    run(app)


def heartbeat(app, d: Deliverer, started) -> None:
    """A row `lms-bridge doctor` reads to tell a live worker from a dead one."""
    from ..db import ops

    db = connect(app.config["DATABASE_URL"])
    try:
        ops.beat(db, d.worker_id, started_at=started, delivered=d.stats.delivered, failed=d.stats.failed)
    finally:
        db.close()


def run_worker(app, once: bool = False, echo=None, stop: threading.Event | None = None) -> Stats:
    """Loop forever (or once): deliver what is due, sleep a poll interval, again. Ctrl-C stops cleanly."""
    say = echo or (lambda _msg: None)
    d = Deliverer(app)
    say(f"outbox worker {d.worker_id}: concurrency {setting(app, 'OUTBOX_CONCURRENCY')}")
    stop = stop or threading.Event()
    poll = float(setting(app, "OUTBOX_POLL_SECONDS"))
    upkeep = Upkeep()
    started = utcnow()
    try:
        while not stop.is_set():
            before = (d.stats.delivered, d.stats.retried, d.stats.failed)
            try:
                queue_reminders(app)
                queue_evaluation(app)
                retention_pass(app)
                deliver_due(app, deliverer=d)
                upkeep.run(app)
                heartbeat(app, d, started)
            except Exception as exc:  # e.g. the database briefly unavailable: claims expire, so try again
                if once:
                    raise
                log.exception("outbox pass failed")
                say(f"outbox pass failed: {type(exc).__name__}: {exc}")
            after = (d.stats.delivered, d.stats.retried, d.stats.failed)
            if after != before:
                say(f"delivered {after[0]}, retrying {after[1]}, failed {after[2]}")
            if once:
                break
            stop.wait(poll)
    except KeyboardInterrupt:
        say("stopped")
    for error in d.stats.errors:
        say(f"failed: {error}")
    return d.stats
