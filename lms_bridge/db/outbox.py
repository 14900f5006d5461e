"""The durable outbox: every call to the LMS is a row written with the change that caused it."""
from __future__ import annotations

import json
from datetime import timedelta

from . import dialect, migration_set, parse_ts, returning_id, row_transaction, ts, utcnow, write_transaction
from .schema import ddl

migrations = migration_set("outbox")


@migrations()
def m001_outbox(db):
    ddl(db, """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        dedupe_key TEXT,
        order_key TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        claimed_by TEXT,
        claimed_until TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE INDEX outbox_order ON outbox(order_key, id)
    """)


def enqueue(db, *, platform_id: int, kind: str, payload: dict, dedupe_key: str | None = None,
            order_key: str | None = None) -> int:
    """Queue a job. Call it inside the caller's write_transaction so change and job commit together.

    `order_key` (e.g. "score:{lineitem}:{user}") keeps jobs with the same key delivered in order;
    `dedupe_key` lets a newer pending job replace an older undelivered one with the same key.
    """
    now = ts()
    if dedupe_key:
        db.execute("UPDATE outbox SET state = 'superseded' WHERE dedupe_key = ? AND state = 'pending'"
                   " AND claimed_by IS NULL", [dedupe_key])
    cur = db.execute(
        "INSERT INTO outbox (platform_id, kind, payload, dedupe_key, order_key, next_attempt_at, created_at)"
        " VALUES (?,?,?,?,?,?,?)" + returning_id(db),
        [platform_id, kind, json.dumps(payload), dedupe_key, order_key, now, now])
    return cur.lastrowid


def list_jobs(db, failed_only: bool = False, limit: int = 200) -> list[dict]:
    where = "WHERE state = 'failed'" if failed_only else "WHERE state IN ('pending', 'failed')"
    return [dict(r) for r in db.query(f"SELECT * FROM outbox {where} ORDER BY id LIMIT ?", [limit])]


def retry(db, job_id: int) -> bool:
    with db.atomic():
        cur = db.execute("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL"
                         " WHERE id = ? AND state = 'failed'", [ts(), job_id])
    return cur.rowcount == 1


# --- delivery: claims, leases and outcomes (the worker's side) ---------------------------
@migrations()
def m002_claims(db):
    ddl(db, """
    CREATE INDEX outbox_state_id ON outbox(state, id);
    CREATE INDEX outbox_dedupe ON outbox(dedupe_key, state)
    """)


def _job(row) -> dict:
    job = dict(row)
    job["payload"] = json.loads(job["payload"])
    return job


def claim(db, worker_id: str, *, limit: int, lease_seconds: float, now=None) -> list[dict]:
    """Take up to `limit` due jobs for `worker_id` until a lease expires.

    A job is skipped while an earlier job with its order_key is still pending (claimed or not), so a
    later grade never overtakes an earlier one; a job whose order_key has a later delivered job is
    superseded instead of sent. An expired lease (its worker died) makes the job claimable again.

    SQLite has one writer at a time: the claim runs under its write lock. PostgreSQL claims with
    `FOR UPDATE SKIP LOCKED` and no store-wide lock, so any number of workers on any number of machines
    take disjoint jobs at once, none waiting for the rows another is claiming.
    """
    now = now or utcnow()
    if dialect(db) == "postgresql":
        return _claim_postgresql(db, worker_id, limit=limit, lease_seconds=lease_seconds, now=now)
    now_s, until = ts(now), ts(now + timedelta(seconds=lease_seconds))
    with write_transaction(db):
        # Walk due jobs in order on outbox_due; each check below is one probe of outbox_order or
        # outbox_dedupe, so a claim costs what it takes, not what the table holds. A later delivered job
        # can only exist beside a pending one that was retried (or whose lease ran out), so supersession
        # is decided here, for the candidates, instead of by a sweep over every pending job.
        rows = list(db.query(
            "SELECT id, (order_key IS NOT NULL AND EXISTS (SELECT 1 FROM outbox later INDEXED BY outbox_order"
            "  WHERE later.order_key = outbox.order_key AND later.id > outbox.id AND later.state = 'delivered'))"
            "  AS superseded"
            " FROM outbox INDEXED BY outbox_due WHERE state = 'pending' AND next_attempt_at <= ?"
            " AND (claimed_until IS NULL OR claimed_until < ?)"
            " AND (order_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox earlier INDEXED BY outbox_order"
            "  WHERE earlier.order_key = outbox.order_key AND earlier.id < outbox.id AND earlier.state = 'pending'))"
            " AND (dedupe_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox earlier INDEXED BY outbox_dedupe"
            "  WHERE earlier.dedupe_key = outbox.dedupe_key AND earlier.id < outbox.id AND earlier.state = 'pending'))"
            " ORDER BY next_attempt_at, id LIMIT ?", [now_s, now_s, limit]))
        stale = [r["id"] for r in rows if r["superseded"]]
        ids = [r["id"] for r in rows if not r["superseded"]]
        if stale:
            marks = ",".join("?" * len(stale))
            db.execute(f"UPDATE outbox SET state = 'superseded', claimed_by = NULL, claimed_until = NULL"
                       f" WHERE id IN ({marks})", stale)
        if not ids:
            if stale:  # a superseded job may have held back later ones with its order key: look again
                return claim(db, worker_id, limit=limit, lease_seconds=lease_seconds, now=now)
            return []
        marks = ",".join("?" * len(ids))
        db.execute(f"UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1"
                   f" WHERE id IN ({marks})", [worker_id, until, *ids])
        return [_job(r) for r in db.query(f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id", ids)]


# The same rules as SQLite's claim, as one statement: the candidates are locked with SKIP LOCKED (a row
# another worker is claiming, or an enqueue is superseding, is passed over, not waited for), and the lock
# makes PostgreSQL check a row changed since the statement began against its committed version, so a job
# claimed by another worker a moment ago is no longer due. Supersession and the claim are the UPDATE of
# the locked rows; the ordering checks read the statement's snapshot, in which an earlier job of the same
# order_key leaves 'pending' only once its outcome has committed.
_PG_CLAIM = """
WITH candidates AS (
    SELECT id, (order_key IS NOT NULL AND EXISTS (SELECT 1 FROM outbox later
        WHERE later.order_key = outbox.order_key AND later.id > outbox.id AND later.state = 'delivered')) AS superseded
    FROM outbox
    WHERE state = 'pending' AND next_attempt_at <= :now AND (claimed_until IS NULL OR claimed_until < :now)
    AND (order_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox earlier
        WHERE earlier.order_key = outbox.order_key AND earlier.id < outbox.id AND earlier.state = 'pending'))
    AND (dedupe_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox earlier
        WHERE earlier.dedupe_key = outbox.dedupe_key AND earlier.id < outbox.id AND earlier.state = 'pending'))
    ORDER BY next_attempt_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox SET
    state = CASE WHEN candidates.superseded THEN 'superseded' ELSE 'pending' END,
    claimed_by = CASE WHEN candidates.superseded THEN NULL ELSE :worker END,
    claimed_until = CASE WHEN candidates.superseded THEN NULL ELSE :until END,
    attempts = CASE WHEN candidates.superseded THEN outbox.attempts ELSE outbox.attempts + 1 END
FROM candidates WHERE outbox.id = candidates.id
RETURNING outbox.*
"""


def _claim_postgresql(db, worker_id: str, *, limit: int, lease_seconds: float, now) -> list[dict]:
    params = {"now": ts(now), "until": ts(now + timedelta(seconds=lease_seconds)), "worker": worker_id,
              "limit": limit}
    rows = list(db.query(_PG_CLAIM, params))  # one statement: atomic by itself, no store-wide lock
    jobs = sorted((_job(r) for r in rows if r["state"] == "pending"), key=lambda j: j["id"])
    if rows and not jobs:  # superseded jobs may have held back later ones with their order key: look again
        return _claim_postgresql(db, worker_id, limit=limit, lease_seconds=lease_seconds, now=now)
    return jobs


def _finish(db, job_id: int, worker_id: str, sql: str, params: list) -> bool:
    """Apply an outcome only while `worker_id` still holds the claim (a lost lease means another took it).

    One conditional UPDATE: the row lock and the WHERE clause decide, so no store-wide lock is needed."""
    with row_transaction(db):
        cur = db.execute(f"UPDATE outbox SET {sql}, claimed_by = NULL, claimed_until = NULL"
                         " WHERE id = ? AND claimed_by = ? AND state = 'pending'", [*params, job_id, worker_id])
    return cur.rowcount == 1


def mark_delivered(db, job_id: int, worker_id: str, note: str | None = None) -> bool:
    return _finish(db, job_id, worker_id, "state = 'delivered', delivered_at = ?, last_error = ?", [ts(), note])


def mark_retry(db, job_id: int, worker_id: str, error: str, next_attempt_at) -> bool:
    return _finish(db, job_id, worker_id, "next_attempt_at = ?, last_error = ?", [ts(next_attempt_at), error])


def mark_failed(db, job_id: int, worker_id: str, error: str) -> bool:
    return _finish(db, job_id, worker_id, "state = 'failed', last_error = ?", [error])


def get_job(db, job_id: int) -> dict | None:
    row = next(db.query("SELECT * FROM outbox WHERE id = ?", [job_id]), None)
    return _job(row) if row else None


def jobs_for_platform(db, platform_id: int, states=("pending", "failed"), limit: int = 200) -> list[dict]:
    marks = ",".join("?" * len(states))
    return [_job(r) for r in db.query(
        f"SELECT * FROM outbox WHERE platform_id = ? AND state IN ({marks}) ORDER BY id LIMIT ?",
        [platform_id, *states, limit])]


def retry_for_platform(db, platform_id: int, job_id: int) -> bool:
    """Retry from the admin page: only a failed job of the admin's own platform."""
    if not list(db.query("SELECT 1 FROM outbox WHERE id = ? AND platform_id = ?", [job_id, platform_id])):
        return False
    return retry(db, job_id)


def latest_scores(db, platform_id: int, order_prefix: str) -> list[dict]:
    """The newest non-superseded score job per order_key under a prefix: what the tool last released."""
    rows = db.query(
        "SELECT * FROM outbox WHERE id IN (SELECT MAX(id) FROM outbox WHERE platform_id = ? AND kind = 'ags_score'"
        " AND state != 'superseded' AND order_key LIKE ? ESCAPE '\\' GROUP BY order_key) ORDER BY id",
        [platform_id, order_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"])
    return [_job(r) for r in rows]


def backlog(db, now=None) -> dict:
    """What /healthz shows: pending count, age of the oldest pending job, failed count.

    Counted on the (state, id) index: the cost follows the backlog, not the delivered history."""
    pending = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
    failed = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'failed'").fetchone()[0]
    first = db.execute("SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1").fetchone()
    oldest = parse_ts(first[0]) if first else None
    age = round(((now or utcnow()) - oldest).total_seconds(), 1) if oldest else 0
    return {"outbox_pending": pending, "outbox_oldest_pending_age_seconds": age, "outbox_failed": failed}


def sync_health(db, platform_id: int, now=None) -> dict:
    """The admin home's summary for one platform: due, waiting for a retry, failed, oldest open age, last delivery.

    Counts read the (state, next_attempt_at) index; the last delivery looks at the newest delivered rows only."""
    now = now or utcnow()
    row = next(db.query(
        "SELECT COUNT(*) FILTER (WHERE state = 'pending' AND next_attempt_at <= ?) AS due,"
        " COUNT(*) FILTER (WHERE state = 'pending' AND next_attempt_at > ?) AS waiting,"
        " COUNT(*) FILTER (WHERE state = 'failed') AS failed,"
        " MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest"
        " FROM outbox WHERE state IN ('pending', 'failed') AND platform_id = ?", [ts(now), ts(now), platform_id]))
    last = next(db.query(
        "SELECT MAX(delivered_at) AS at FROM (SELECT delivered_at FROM outbox WHERE state = 'delivered'"
        " AND platform_id = ? ORDER BY id DESC LIMIT 100) latest", [platform_id]))
    oldest = parse_ts(row["oldest"])
    return {"due": row["due"] or 0, "waiting": row["waiting"] or 0, "failed": row["failed"] or 0,
            "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
            "last_delivery": parse_ts(last["at"])}


# --- jobs waiting for an admin's setup (web-service credentials, functions, capabilities) ----------------
WAITING_PREFIX = "waiting for "


def mark_waiting(db, job_id: int, worker_id: str, reason: str, next_attempt_at) -> bool:
    """Not a failure and no try used up: checked again at `next_attempt_at`, or at once by `wake_waiting`."""
    return _finish(db, job_id, worker_id, "next_attempt_at = ?, last_error = ?, attempts = 0",
                   [ts(next_attempt_at), reason])


def is_waiting(job: dict) -> bool:
    return job["state"] == "pending" and (job.get("last_error") or "").startswith(WAITING_PREFIX)


def wake_waiting(db, platform_ids: list[int]) -> int:
    """After an admin attached credentials: waiting jobs go out now, and web-service jobs that failed for want
    of that setup (before jobs could wait) are queued again. Returns how many."""
    if not platform_ids:
        return 0
    marks = ",".join("?" * len(platform_ids))
    with write_transaction(db):
        woken = db.execute(
            f"UPDATE outbox SET next_attempt_at = ? WHERE platform_id IN ({marks}) AND state = 'pending'"
            " AND last_error LIKE 'waiting for %'", [ts(), *platform_ids]).rowcount
        revived = db.execute(
            f"UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ? WHERE platform_id IN ({marks})"
            " AND state = 'failed' AND kind LIKE 'ws\\_%' ESCAPE '\\' AND (last_error LIKE '%web-service credentials%'"
            " OR last_error LIKE '%(invalid_token)%' OR last_error LIKE '%(missing_capability)%'"
            " OR last_error LIKE '%(function_not_in_service)%')", [ts(), *platform_ids]).rowcount
    return woken + revived
