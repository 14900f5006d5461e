"""The durable outbox: every call to the LMS is a row written with the change that caused it."""
from __future__ import annotations

import json

from . import migration_set, ts
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
        " VALUES (?,?,?,?,?,?,?)", [platform_id, kind, json.dumps(payload), dedupe_key, order_key, now, now])
    return cur.lastrowid


def list_jobs(db, failed_only: bool = False, limit: int = 200) -> list[dict]:
    where = "WHERE state = 'failed'" if failed_only else "WHERE state IN ('pending', 'failed')"
    return [dict(r) for r in db.query(f"SELECT * FROM outbox {where} ORDER BY id LIMIT ?", [limit])]


def retry(db, job_id: int) -> bool:
    with db.atomic():
        cur = db.execute("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL"
                         " WHERE id = ? AND state = 'failed'", [ts(), job_id])
    return cur.rowcount == 1
