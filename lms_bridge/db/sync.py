"""What delivery remembers about the LMS: line item URLs, course-module ids and calendar event ids."""
from __future__ import annotations

from datetime import timedelta

from . import migration_set, row_transaction, ts, utcnow
from .schema import ddl

migrations = migration_set("sync")


@migrations()
def m001_sync_caches(db):
    ddl(db, """
    CREATE TABLE sync_lineitems (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        lineitems_url TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        lineitem_url TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, lineitems_url, resource_id, tag)
    );
    CREATE TABLE sync_cmids (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        instance_id TEXT NOT NULL,
        cmid INTEGER NOT NULL,
        course_id INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, instance_id)
    );
    CREATE TABLE sync_events (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        course_id TEXT NOT NULL,
        key TEXT NOT NULL,
        event_id INTEGER,
        fingerprint TEXT,
        creating TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, course_id, key)
    );
    CREATE TABLE sync_score_times (
        order_key TEXT PRIMARY KEY,
        job_id INTEGER NOT NULL,
        sent_timestamp TEXT NOT NULL
    )
    """)


@migrations()
def m002_lineitem_claims(db):
    ddl(db, """
    CREATE TABLE sync_lineitem_claims (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        lineitems_url TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, lineitems_url, resource_id, tag)
    )
    """)


@migrations()
def m003_link_lineitems(db):
    """The activity's own gradebook column, as the platform named it in a launch (the AGS `lineitem`)."""
    ddl(db, """
    CREATE TABLE sync_link_lineitems (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        context_id TEXT NOT NULL,
        resource_link_id TEXT NOT NULL,
        activity TEXT,
        lineitem_url TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, context_id, resource_link_id)
    )
    """)


def link_lineitem(db, platform_id: int, context_id: str, resource_link_id: str | None) -> str | None:
    if not resource_link_id:
        return None
    row = next(db.query("SELECT lineitem_url FROM sync_link_lineitems WHERE platform_id = ? AND context_id = ?"
                        " AND resource_link_id = ?", [platform_id, str(context_id), str(resource_link_id)]), None)
    return row["lineitem_url"] if row else None


def own_lineitem(db, platform_id: int, context_id: str | None, resource_link_id: str | None,
                 activity: str | None) -> str | None:
    """The column a launch named for this resource link; without the link (jobs queued before links were
    recorded), the one column named for this activity in the course, if there is exactly one."""
    if context_id is None:
        return None
    if resource_link_id:
        return link_lineitem(db, platform_id, context_id, resource_link_id)
    rows = list(db.query("SELECT DISTINCT lineitem_url FROM sync_link_lineitems WHERE platform_id = ?"
                         " AND context_id = ? AND activity = ? LIMIT 2", [platform_id, str(context_id), activity]))
    return rows[0]["lineitem_url"] if len(rows) == 1 else None


def remember_link_lineitem(db, platform_id: int, context_id: str, resource_link_id: str, activity: str | None,
                           lineitem_url: str) -> bool:
    """Store what a launch said; writes only when it changed (a page view stays read-only). True when written."""
    if link_lineitem(db, platform_id, context_id, resource_link_id) == lineitem_url:
        return False
    with row_transaction(db):
        db.execute("INSERT INTO sync_link_lineitems (platform_id, context_id, resource_link_id, activity,"
                   " lineitem_url, updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(platform_id, context_id,"
                   " resource_link_id) DO UPDATE SET activity = COALESCE(excluded.activity, sync_link_lineitems.activity),"
                   " lineitem_url = excluded.lineitem_url, updated_at = excluded.updated_at",
                   [platform_id, str(context_id), str(resource_link_id), activity, lineitem_url, ts()])
    return True


def link_lineitems(db, platform_id: int, context_id: str | None = None) -> list[dict]:
    sql, params = "SELECT * FROM sync_link_lineitems WHERE platform_id = ?", [platform_id]
    if context_id is not None:
        sql += " AND context_id = ?"
        params.append(str(context_id))
    return [dict(r) for r in db.query(sql + " ORDER BY context_id, resource_link_id", params)]


def course_lineitems_urls(db, platform_id: int) -> list[dict]:
    """Each course of a platform with its AGS line items container, as launches gave it."""
    return [dict(r) for r in db.query(
        "SELECT context_id, MAX(lineitems_url) AS lineitems_url FROM course_links WHERE platform_id = ?"
        " AND lineitems_url IS NOT NULL GROUP BY context_id ORDER BY context_id", [platform_id])]


# --- AGS line items ------------------------------------------------------------------------
def get_lineitem(db, platform_id: int, lineitems_url: str, resource_id: str, tag: str) -> str | None:
    row = next(db.query("SELECT lineitem_url FROM sync_lineitems WHERE platform_id = ? AND lineitems_url = ?"
                        " AND resource_id = ? AND tag = ?", [platform_id, lineitems_url, resource_id, tag]), None)
    return row["lineitem_url"] if row else None


def set_lineitem(db, platform_id: int, lineitems_url: str, resource_id: str, tag: str, lineitem_url: str) -> None:
    with row_transaction(db):
        db.execute("INSERT INTO sync_lineitems (platform_id, lineitems_url, resource_id, tag,"
                   " lineitem_url, created_at) VALUES (?,?,?,?,?,?) ON CONFLICT (platform_id, lineitems_url,"
                   " resource_id, tag) DO UPDATE SET lineitem_url = excluded.lineitem_url, created_at = excluded.created_at",
                   [platform_id, lineitems_url, resource_id, tag, lineitem_url, ts()])


@migrations()
def m003_lineitem_claim_lease(db):
    """A claim names the outbox job (and worker) it was taken for: it lasts as long as that job's lease."""
    ddl(db, """
    ALTER TABLE sync_lineitem_claims ADD COLUMN job_id INTEGER;
    ALTER TABLE sync_lineitem_claims ADD COLUMN worker_id TEXT
    """)


def claim_lineitem(db, platform_id: int, lineitems_url: str, resource_id: str, tag: str,
                   stale_after: timedelta, *, job_id: int | None = None, worker_id: str | None = None,
                   now=None) -> bool:
    """Only one worker, in any process, finds or creates a given line item at a time.

    The claim is the row itself: its primary key lets one INSERT win, on SQLite under the store's single
    writer and on PostgreSQL under any number of concurrent workers (no store-wide lock is taken there; a
    second INSERT waits for the first to commit and then does nothing). A claim taken for an outbox job holds exactly while that worker holds the job's lease: once the lease
    runs out (the worker died mid-call) or the job is finished, the next worker takes the claim over at
    once. A claim without a job is taken over after `stale_after`."""
    now = now or utcnow()
    key = [platform_id, lineitems_url, resource_id, tag]
    with row_transaction(db):
        db.execute("DELETE FROM sync_lineitem_claims WHERE platform_id = ? AND lineitems_url = ? AND resource_id = ?"
                   " AND tag = ? AND CASE WHEN job_id IS NULL THEN claimed_at < ? ELSE NOT EXISTS ("
                   "  SELECT 1 FROM outbox o WHERE o.id = sync_lineitem_claims.job_id AND o.state = 'pending'"
                   "  AND o.claimed_by = sync_lineitem_claims.worker_id AND o.claimed_until >= ?) END",
                   key + [ts(now - stale_after), ts(now)])
        cur = db.execute("INSERT INTO sync_lineitem_claims (platform_id, lineitems_url, resource_id, tag,"
                         " claimed_at, job_id, worker_id) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                         key + [ts(now), job_id, worker_id])
        return cur.rowcount == 1


def release_lineitem(db, platform_id: int, lineitems_url: str, resource_id: str, tag: str) -> None:
    with row_transaction(db):
        db.execute("DELETE FROM sync_lineitem_claims WHERE platform_id = ? AND lineitems_url = ? AND resource_id = ?"
                   " AND tag = ?", [platform_id, lineitems_url, resource_id, tag])


def forget_lineitem(db, platform_id: int, lineitem_url: str) -> None:
    """A cached line item the LMS no longer has (deleted column): find or create it again next time."""
    with row_transaction(db):
        db.execute("DELETE FROM sync_lineitems WHERE platform_id = ? AND lineitem_url = ?", [platform_id, lineitem_url])
        db.execute("DELETE FROM sync_link_lineitems WHERE platform_id = ? AND lineitem_url = ?",
                   [platform_id, lineitem_url])


# --- course modules --------------------------------------------------------------------------
def get_cmid(db, platform_id: int, instance_id: str) -> int | None:
    row = next(db.query("SELECT cmid FROM sync_cmids WHERE platform_id = ? AND instance_id = ?",
                        [platform_id, str(instance_id)]), None)
    return row["cmid"] if row else None


def set_cmid(db, platform_id: int, instance_id: str, cmid: int, course_id: int) -> None:
    with row_transaction(db):
        db.execute("INSERT INTO sync_cmids (platform_id, instance_id, cmid, course_id, created_at)"
                   " VALUES (?,?,?,?,?) ON CONFLICT (platform_id, instance_id) DO UPDATE SET cmid = excluded.cmid,"
                   " course_id = excluded.course_id, created_at = excluded.created_at", [platform_id, str(instance_id), cmid, course_id, ts()])


# --- calendar events -------------------------------------------------------------------------
def get_event(db, platform_id: int, course_id, key: str) -> dict | None:
    return next(db.query("SELECT * FROM sync_events WHERE platform_id = ? AND course_id = ? AND key = ?",
                         [platform_id, str(course_id), key]), None)


def mark_event_creating(db, platform_id: int, course_id, key: str, fingerprint: str) -> None:
    """Written before the create call: a retry after a crash looks the event up instead of duplicating it."""
    with row_transaction(db):
        db.execute("INSERT INTO sync_events (platform_id, course_id, key, creating, updated_at) VALUES (?,?,?,?,?)"
                   " ON CONFLICT(platform_id, course_id, key) DO UPDATE SET creating = excluded.creating,"
                   " updated_at = excluded.updated_at", [platform_id, str(course_id), key, fingerprint, ts()])


def set_event(db, platform_id: int, course_id, key: str, event_id: int, fingerprint: str) -> None:
    with row_transaction(db):
        db.execute("INSERT INTO sync_events (platform_id, course_id, key, event_id, fingerprint, updated_at)"
                   " VALUES (?,?,?,?,?,?) ON CONFLICT(platform_id, course_id, key) DO UPDATE SET"
                   " event_id = excluded.event_id, fingerprint = excluded.fingerprint, creating = NULL,"
                   " updated_at = excluded.updated_at", [platform_id, str(course_id), key, event_id, fingerprint, ts()])


# --- score timestamps actually sent ------------------------------------------------------------
def last_score_sent(db, order_key: str) -> dict | None:
    return next(db.query("SELECT * FROM sync_score_times WHERE order_key = ?", [order_key]), None)


def set_score_sent(db, order_key: str, job_id: int, sent_timestamp: str) -> None:
    """Only move forward: a late duplicate of an older job never rewinds what was sent."""
    with row_transaction(db):
        db.execute("INSERT INTO sync_score_times (order_key, job_id, sent_timestamp) VALUES (?,?,?)"
                   " ON CONFLICT(order_key) DO UPDATE SET job_id = excluded.job_id,"
                   " sent_timestamp = excluded.sent_timestamp WHERE excluded.job_id >= sync_score_times.job_id",
                   [order_key, job_id, sent_timestamp])
