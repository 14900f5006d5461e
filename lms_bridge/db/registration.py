"""Registration authority: one-time invitation codes, platform status (active, pending, retired), the last
launch of each client id, and Moodle web-service credentials held per site (issuer)."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from . import execute_write as _write
from . import migration_set, one, ts, utcnow, write_transaction
from .schema import ddl

migrations = migration_set("registration")
STATUSES = ("active", "pending", "retired")


@migrations()
def m001_registration_authority(db):
    ddl(db, """
    ALTER TABLE platforms ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
    ALTER TABLE platforms ADD COLUMN last_launch_at TEXT;
    CREATE TABLE registration_invites (
        code_hash TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        platform_id INTEGER
    );
    CREATE TABLE site_ws (
        issuer TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        token TEXT NOT NULL,
        checked_at TEXT,
        missing_functions TEXT NOT NULL DEFAULT '[]'
    );
    INSERT INTO site_ws (issuer, url, token, checked_at, missing_functions)
        SELECT p.issuer, w.url, w.token, w.checked_at, w.missing_functions FROM platform_ws w
        JOIN platforms p ON p.id = w.platform_id ORDER BY w.checked_at ON CONFLICT DO NOTHING
    """)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


# --- invitations ------------------------------------------------------------------------------
def add_invite(db, code: str, hours: float) -> str:
    """Only the code's hash is stored: the database alone never lets anyone register. Returns the expiry."""
    now = utcnow()
    expires = ts(now + timedelta(hours=hours))
    _write(db, "INSERT INTO registration_invites (code_hash, created_at, expires_at) VALUES (?,?,?)",
           [_hash(code), ts(now), expires])
    return expires


def invite_usable(db, code: str) -> bool:
    return one(db, "SELECT 1 AS ok FROM registration_invites WHERE code_hash = ? AND used_at IS NULL"
                   " AND expires_at > ?", [_hash(code), ts()]) is not None


def use_invite(db, code: str, platform_id: int) -> bool:
    """Single use: True for the one registration that spends the code."""
    now = ts()
    cur = _write(db, "UPDATE registration_invites SET used_at = ?, platform_id = ? WHERE code_hash = ?"
                     " AND used_at IS NULL AND expires_at > ?", [now, platform_id, _hash(code), now])
    return cur.rowcount == 1


# --- platform status ------------------------------------------------------------------------------
def set_status(db, platform_id: int, status: str) -> bool:
    assert status in STATUSES
    cur = _write(db, "UPDATE platforms SET status = ? WHERE id = ?", [status, platform_id])
    return cur.rowcount == 1


def touch_last_launch(db, platform_id: int) -> None:
    _write(db, "UPDATE platforms SET last_launch_at = ? WHERE id = ?", [ts(), platform_id])


def platforms_overview(db) -> list[dict]:
    rows = [dict(r) for r in db.query("SELECT id, issuer, client_id, name, status, last_launch_at, created_at"
                                      " FROM platforms ORDER BY issuer, id")]
    for r in rows:
        r["deployments"] = [d["deployment_id"] for d in db.query(
            "SELECT deployment_id FROM deployments WHERE platform_id = ? ORDER BY id", [r["id"]])]
    return rows


def remove_platform(db, platform_id: int) -> str | None:
    """A registration never used for a launch is deleted; one with launches is retired (its courses' data
    stays, nothing logs in through it). Returns 'deleted', 'retired' or None when unknown."""
    with write_transaction(db):
        row = one(db, "SELECT id, last_launch_at FROM platforms WHERE id = ?", [platform_id])
        if row is None:
            return None
        if row["last_launch_at"] is None and one(
                db, "SELECT 1 AS used FROM outbox WHERE platform_id = ? LIMIT 1", [platform_id]) is None:
            db.execute("DELETE FROM platforms WHERE id = ?", [platform_id])
            return "deleted"
        db.execute("UPDATE platforms SET status = 'retired' WHERE id = ?", [platform_id])
        return "retired"


# --- Moodle web-service credentials, per site --------------------------------------------------------
def set_site_ws(db, issuer: str, url: str, token: str, missing: list[str]) -> None:
    _write(db, "INSERT INTO site_ws (issuer, url, token, checked_at, missing_functions) VALUES (?,?,?,?,?)"
               " ON CONFLICT(issuer) DO UPDATE SET url = excluded.url, token = excluded.token,"
               " checked_at = excluded.checked_at, missing_functions = excluded.missing_functions",
               [issuer, url, token, ts(), json.dumps(missing)])


def get_site_ws(db, issuer: str) -> dict | None:
    return one(db, "SELECT * FROM site_ws WHERE issuer = ?", [issuer])
