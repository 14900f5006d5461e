"""Operations state: the worker heartbeat, and the read-only queries `lms-bridge doctor` asks."""
from __future__ import annotations

import json
from datetime import timedelta

from . import migration_set, one, parse_ts, row_transaction, ts, utcnow
from .schema import ddl

migrations = migration_set("ops")


@migrations()
def m001_worker_heartbeats(db):
    ddl(db, """
    CREATE TABLE worker_heartbeats (
        worker_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        beat_at TEXT NOT NULL,
        passes INTEGER NOT NULL DEFAULT 0,
        delivered INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX worker_heartbeats_beat ON worker_heartbeats(beat_at)
    """)


def beat(db, worker_id: str, *, started_at, delivered: int, failed: int) -> None:
    """One row per worker process, refreshed each pass; rows silent for a day are dropped."""
    now = utcnow()
    with row_transaction(db):  # a worker's own row: no store-wide lock on PostgreSQL
        db.execute("INSERT INTO worker_heartbeats (worker_id, started_at, beat_at, passes, delivered, failed)"
                   " VALUES (?,?,?,1,?,?) ON CONFLICT(worker_id) DO UPDATE SET beat_at = excluded.beat_at,"
                   " passes = worker_heartbeats.passes + 1, delivered = excluded.delivered,"
                   " failed = excluded.failed",
                   [worker_id, ts(started_at), ts(now), delivered, failed])
        db.execute("DELETE FROM worker_heartbeats WHERE beat_at < ?", [ts(now - timedelta(days=1))])


def latest_beat(db) -> dict | None:
    row = one(db, "SELECT * FROM worker_heartbeats ORDER BY beat_at DESC LIMIT 1")
    if row:
        row["age_seconds"] = round((utcnow() - parse_ts(row["beat_at"])).total_seconds(), 1)
    return row


def active_key_count(db) -> int:
    return one(db, "SELECT COUNT(*) AS n FROM tool_keys WHERE retired_at IS NULL")["n"]


def probe_course(db, platform_id: int) -> dict | None:
    """The course the platform launched most recently, with its resource links and one learner:
    what the capability probes of `doctor` call Moodle about."""
    row = one(db, "SELECT context_id, links FROM course_links WHERE platform_id = ? ORDER BY updated_at DESC LIMIT 1",
              [platform_id])
    if not row:
        return None
    learner = one(db, "SELECT user_id FROM roster WHERE platform_id = ? AND context_id = ? AND role = 'learner'"
                      " AND active = 1 LIMIT 1", [platform_id, row["context_id"]])
    return {"context_id": row["context_id"], "links": json.loads(row["links"] or "{}"),
            "learner_id": learner["user_id"] if learner else None}


def postgres_facts(db) -> dict:
    """What `doctor` checks of a PostgreSQL server: its version and the extension the booking constraints need."""
    version = one(db, "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS v")
    gist = one(db, "SELECT extversion FROM pg_extension WHERE extname = 'btree_gist'")
    return {"version_num": int(version["num"]), "version": version["v"].split()[0],
            "btree_gist": gist["extversion"] if gist else None}


def applied_migrations(db) -> list[str]:
    """`set:name` of every applied migration, in order, from either store's record (empty when there is none)."""
    from . import PG_MIGRATIONS, dialect

    if dialect(db) == "postgresql":
        if one(db, "SELECT to_regclass(?) AS t", [PG_MIGRATIONS])["t"] is None:
            return []
        sql = f"SELECT migration_set, name FROM {PG_MIGRATIONS} ORDER BY applied_at, migration_set, name"
    else:
        if not one(db, "SELECT name FROM sqlite_master WHERE name = '_sqlite_migrations'"):
            return []
        sql = "SELECT migration_set, name FROM _sqlite_migrations ORDER BY rowid"
    return [f"{r[0]}:{r[1]}" for r in db.execute(sql).fetchall()]
