"""Consultation booking storage: experts, materialised slots, bookings, in-tool notices, course limits.

The invariants live in the schema, not in the views: a slot's `booked` never exceeds its `capacity`
(CHECK), an expert's slots never overlap, and a participant never holds two overlapping active
bookings (triggers that abort the write). Seats are taken with one conditional UPDATE.
"""
from __future__ import annotations

import contextlib
import json

from . import IntegrityError
from . import dialect, migration_set, returning_id, ts, write_transaction
from .schema import ddl

migrations = migration_set("booking")

# PostgreSQL's form of the two overlap triggers: exclusion constraints over time ranges, which hold under
# any number of concurrent writers on any number of servers (a trigger's EXISTS check would not).
# `lb_utc` reads the stored ISO-8601 UTC text as a timestamp; it is immutable because every stored value
# carries its offset, so no session setting changes its meaning.
PG_NO_OVERLAP = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE OR REPLACE FUNCTION lb_utc(text) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT $1::timestamptz $$;
ALTER TABLE booking_slots ADD CONSTRAINT expert_slot_overlap
    EXCLUDE USING gist (expert_id WITH =, tstzrange(lb_utc(start_utc), lb_utc(end_utc)) WITH &&);
ALTER TABLE bookings ADD CONSTRAINT participant_overlap
    EXCLUDE USING gist (platform_id WITH =, deployment_id WITH =, context_id WITH =, participant_id WITH =,
                        tstzrange(lb_utc(start_utc), lb_utc(end_utc)) WITH &&) WHERE (status = 'booked');
"""
SCOPE = "platform_id = ? AND deployment_id = ? AND context_id = ?"


@migrations()
def m001_booking(db):
    ddl(db, """
    CREATE TABLE booking_settings (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL,
        context_id TEXT NOT NULL,
        max_total INTEGER,
        max_active INTEGER,
        cancel_deadline_hours INTEGER NOT NULL DEFAULT 24,
        min_notice_minutes INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id)
    );
    CREATE TABLE booking_experts (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL,
        context_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        bio TEXT NOT NULL DEFAULT '',
        topics TEXT NOT NULL DEFAULT '[]',
        languages TEXT NOT NULL DEFAULT '[]',
        timezone TEXT NOT NULL DEFAULT 'UTC',
        meeting_url TEXT NOT NULL DEFAULT '',
        availability TEXT,
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        UNIQUE (platform_id, deployment_id, context_id, user_id)
    );
    CREATE TABLE booking_slots (
        id INTEGER PRIMARY KEY,
        expert_id INTEGER NOT NULL REFERENCES booking_experts(id) ON DELETE CASCADE,
        start_utc TEXT NOT NULL,
        end_utc TEXT NOT NULL,
        capacity INTEGER NOT NULL CHECK (capacity >= 1),
        booked INTEGER NOT NULL DEFAULT 0,
        open INTEGER NOT NULL DEFAULT 1,
        CHECK (booked >= 0 AND booked <= capacity),
        CHECK (end_utc > start_utc),
        UNIQUE (expert_id, start_utc)
    );
    CREATE INDEX booking_slots_time ON booking_slots(expert_id, start_utc, end_utc);
    CREATE TRIGGER booking_slots_no_overlap BEFORE INSERT ON booking_slots
    WHEN EXISTS (SELECT 1 FROM booking_slots s WHERE s.expert_id = NEW.expert_id
                 AND s.start_utc < NEW.end_utc AND NEW.start_utc < s.end_utc)
    BEGIN SELECT RAISE(ABORT, 'expert_slot_overlap'); END;
    CREATE TABLE bookings (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL,
        context_id TEXT NOT NULL,
        slot_id INTEGER NOT NULL REFERENCES booking_slots(id),
        expert_id INTEGER NOT NULL REFERENCES booking_experts(id) ON DELETE CASCADE,
        participant_id TEXT NOT NULL,
        participant_name TEXT NOT NULL DEFAULT '',
        participant_email TEXT NOT NULL DEFAULT '',
        participant_tz TEXT NOT NULL DEFAULT 'UTC',
        start_utc TEXT NOT NULL,
        end_utc TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        question TEXT NOT NULL DEFAULT '',
        project TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
        sequence INTEGER NOT NULL DEFAULT 0,
        attendance TEXT CHECK (attendance IS NULL OR attendance IN ('attended', 'no_show')),
        shared_notes TEXT NOT NULL DEFAULT '',
        follow_up TEXT NOT NULL DEFAULT '',
        private_note TEXT NOT NULL DEFAULT '',
        reminded_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX bookings_participant ON bookings(platform_id, deployment_id, context_id, participant_id, status);
    CREATE INDEX bookings_slot ON bookings(slot_id, status);
    CREATE UNIQUE INDEX bookings_one_seat ON bookings(slot_id, participant_id) WHERE status = 'booked';
    CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings
    WHEN NEW.status = 'booked' AND EXISTS (
        SELECT 1 FROM bookings b WHERE b.platform_id = NEW.platform_id AND b.deployment_id = NEW.deployment_id
        AND b.context_id = NEW.context_id AND b.participant_id = NEW.participant_id AND b.status = 'booked'
        AND b.start_utc < NEW.end_utc AND NEW.start_utc < b.end_utc)
    BEGIN SELECT RAISE(ABORT, 'participant_overlap'); END;
    CREATE TRIGGER bookings_no_overlap_update BEFORE UPDATE OF status, start_utc, end_utc ON bookings
    WHEN NEW.status = 'booked' AND EXISTS (
        SELECT 1 FROM bookings b WHERE b.id != NEW.id AND b.platform_id = NEW.platform_id
        AND b.deployment_id = NEW.deployment_id AND b.context_id = NEW.context_id
        AND b.participant_id = NEW.participant_id AND b.status = 'booked'
        AND b.start_utc < NEW.end_utc AND NEW.start_utc < b.end_utc)
    BEGIN SELECT RAISE(ABORT, 'participant_overlap'); END;
    CREATE TABLE booking_notices (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL,
        context_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX booking_notices_user ON booking_notices(platform_id, deployment_id, context_id, user_id, id)
    """, postgresql=PG_NO_OVERLAP)


@migrations()
def m002_cancel_reason_and_staff_experts(db):
    """The participant's optional reason for cancelling; whether course staff may list themselves as experts."""
    ddl(db, """
    ALTER TABLE bookings ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE booking_settings ADD COLUMN staff_experts INTEGER NOT NULL DEFAULT 0
    """)


def _scope(scope) -> list:
    return list(scope)


def _expert(row) -> dict | None:
    if row is None:
        return None
    row = dict(row)
    row["topics"] = json.loads(row["topics"])
    row["languages"] = json.loads(row["languages"])
    row["availability"] = json.loads(row["availability"]) if row["availability"] else None
    return row


# --- settings -----------------------------------------------------------------------------
def get_settings(db, scope) -> dict | None:
    return next(db.query(f"SELECT * FROM booking_settings WHERE {SCOPE}", _scope(scope)), None)


def save_settings(db, scope, *, max_total, max_active, cancel_deadline_hours, min_notice_minutes,
                  staff_experts: bool = False) -> None:
    db.execute(
        "INSERT INTO booking_settings (platform_id, deployment_id, context_id, max_total, max_active,"
        " cancel_deadline_hours, min_notice_minutes, staff_experts, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(platform_id, deployment_id, context_id) DO UPDATE SET max_total = excluded.max_total,"
        " max_active = excluded.max_active, cancel_deadline_hours = excluded.cancel_deadline_hours,"
        " min_notice_minutes = excluded.min_notice_minutes, staff_experts = excluded.staff_experts,"
        " updated_at = excluded.updated_at",
        _scope(scope) + [max_total, max_active, cancel_deadline_hours, min_notice_minutes, int(staff_experts), ts()])


# --- experts ------------------------------------------------------------------------------
def upsert_expert(db, scope, user_id: str, *, name: str, email: str, timezone: str) -> int:
    """Mark a staff member as expert (idempotent; re-activates a removed expert)."""
    db.execute(
        "INSERT INTO booking_experts (platform_id, deployment_id, context_id, user_id, name, email, timezone,"
        " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(platform_id, deployment_id, context_id, user_id)"
        " DO UPDATE SET active = 1, name = excluded.name, email = excluded.email",
        _scope(scope) + [user_id, name, email, timezone, ts()])
    return expert_by_user(db, scope, user_id)["id"]


def set_expert_active(db, scope, expert_id: int, active: bool) -> None:
    db.execute(f"UPDATE booking_experts SET active = ? WHERE id = ? AND {SCOPE}",
               [int(active), expert_id] + _scope(scope))


def update_profile(db, expert_id: int, *, bio: str, topics: list[str], languages: list[str],
                   timezone: str, meeting_url: str) -> None:
    db.execute("UPDATE booking_experts SET bio = ?, topics = ?, languages = ?, timezone = ?, meeting_url = ?"
               " WHERE id = ?", [bio, json.dumps(topics), json.dumps(languages), timezone, meeting_url, expert_id])


def save_availability(db, expert_id: int, availability: dict) -> None:
    db.execute("UPDATE booking_experts SET availability = ? WHERE id = ?", [json.dumps(availability), expert_id])


def expert_by_user(db, scope, user_id: str) -> dict | None:
    return _expert(next(db.query(f"SELECT * FROM booking_experts WHERE {SCOPE} AND user_id = ?",
                                 _scope(scope) + [user_id]), None))


def get_expert(db, scope, expert_id: int) -> dict | None:
    return _expert(next(db.query(f"SELECT * FROM booking_experts WHERE {SCOPE} AND id = ?",
                                 _scope(scope) + [expert_id]), None))


def list_experts(db, scope, *, active_only: bool = True) -> list[dict]:
    extra = " AND active = 1" if active_only else ""
    return [_expert(r) for r in db.query(f"SELECT * FROM booking_experts WHERE {SCOPE}{extra} ORDER BY name",
                                         _scope(scope))]


# --- slots --------------------------------------------------------------------------------
def expert_slots(db, expert_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM booking_slots WHERE expert_id = ? ORDER BY start_utc", [expert_id]))


def open_slots(db, expert_id: int, after: str) -> list[dict]:
    return list(db.query("SELECT * FROM booking_slots WHERE expert_id = ? AND open = 1 AND booked < capacity"
                         " AND start_utc >= ? ORDER BY start_utc", [expert_id, after]))


def get_slot(db, slot_id: int) -> dict | None:
    return next(db.query("SELECT * FROM booking_slots WHERE id = ?", [slot_id]), None)


def delete_unbooked_slots(db, expert_id: int) -> None:
    db.execute("DELETE FROM booking_slots WHERE expert_id = ? AND booked = 0 AND id NOT IN"
               " (SELECT slot_id FROM bookings WHERE expert_id = ?)", [expert_id, expert_id])
    db.execute("UPDATE booking_slots SET open = 0 WHERE expert_id = ?", [expert_id])


def insert_slot(db, expert_id: int, start_utc: str, end_utc: str, capacity: int) -> bool:
    """False when the slot would overlap one the expert keeps (it has bookings)."""
    try:
        db.execute("INSERT INTO booking_slots (expert_id, start_utc, end_utc, capacity) VALUES (?,?,?,?)",
                   [expert_id, start_utc, end_utc, capacity])
    except IntegrityError:
        return False
    return True


def reopen_slot(db, slot_id: int, capacity: int) -> None:
    db.execute("UPDATE booking_slots SET open = 1, capacity = CASE WHEN ? > booked THEN ? ELSE booked END WHERE id = ?",
               [capacity, capacity, slot_id])


def lock_slots(db, slot_ids) -> None:
    """Before a move takes a seat on one slot and frees one on another: lock both rows in id order, so two
    moves between the same two slots in opposite directions queue instead of deadlocking (PostgreSQL;
    SQLite's single writer has nothing to order)."""
    if dialect(db) == "postgresql":
        ids = sorted(set(slot_ids))
        db.execute(f"SELECT id FROM booking_slots WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id FOR UPDATE",
                   ids).fetchall()


def take_seat(db, slot_id: int) -> bool:
    """The atomic seat grab: one conditional UPDATE; False when the slot is full or withdrawn."""
    cur = db.execute("UPDATE booking_slots SET booked = booked + 1 WHERE id = ? AND open = 1 AND booked < capacity",
                     [slot_id])
    return cur.rowcount == 1


def release_seat(db, slot_id: int) -> None:
    db.execute("UPDATE booking_slots SET booked = booked - 1 WHERE id = ? AND booked > 0", [slot_id])


# --- bookings -----------------------------------------------------------------------------
PARTICIPANT_LOCKS = 0x4C4D42  # the namespace of participant_transaction's advisory locks (two-key form)


@contextlib.contextmanager
def participant_transaction(db, scope, participant_id: str):
    """The transaction of one participant's booking, cancellation or move.

    SQLite: `write_transaction` (one writer at a time). PostgreSQL: a lock on this participant only, so
    their limit checks (bookings in total, upcoming) read what their own earlier requests wrote, while
    other participants book at the same moment: seats are then decided by the conditional UPDATE and
    overlaps by the exclusion constraints, never by a store-wide lock."""
    if dialect(db) == "sqlite":
        with write_transaction(db):
            yield db
        return
    with db.atomic():
        db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))",
                   [PARTICIPANT_LOCKS, "\x1f".join(map(str, [*scope, participant_id]))]).fetchall()
        yield db


class BookingOverlap(Exception):
    """The database refused a booking that overlaps another active booking of the participant."""


def insert_booking(db, scope, row: dict) -> int:
    now = ts()
    row = dict(row, created_at=now, updated_at=now)
    cols = ["platform_id", "deployment_id", "context_id", *row]
    try:
        cur = db.execute(f"INSERT INTO bookings ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                         + returning_id(db), _scope(scope) + list(row.values()))
    except IntegrityError as e:
        raise BookingOverlap(str(e)) from None
    return cur.lastrowid


def move_booking(db, booking_id: int, slot: dict) -> None:
    try:
        db.execute("UPDATE bookings SET slot_id = ?, start_utc = ?, end_utc = ?, sequence = sequence + 1,"
                   " updated_at = ? WHERE id = ? AND status = 'booked'",
                   [slot["id"], slot["start_utc"], slot["end_utc"], ts(), booking_id])
    except IntegrityError as e:
        raise BookingOverlap(str(e)) from None


def cancel_booking(db, booking_id: int, reason: str = "") -> bool:
    cur = db.execute("UPDATE bookings SET status = 'cancelled', cancel_reason = ?, sequence = sequence + 1,"
                     " updated_at = ? WHERE id = ? AND status = 'booked'", [reason, ts(), booking_id])
    return cur.rowcount == 1


def record_outcome(db, booking_id: int, *, attendance, shared_notes, follow_up, private_note) -> None:
    db.execute("UPDATE bookings SET attendance = ?, shared_notes = ?, follow_up = ?, private_note = ?,"
               " updated_at = ? WHERE id = ?", [attendance, shared_notes, follow_up, private_note, ts(), booking_id])


def get_booking(db, scope, booking_id: int) -> dict | None:
    return next(db.query(f"SELECT * FROM bookings WHERE {SCOPE} AND id = ?", _scope(scope) + [booking_id]), None)


def participant_bookings(db, scope, participant_id: str, *, active_only: bool = False) -> list[dict]:
    extra = " AND status = 'booked'" if active_only else ""
    return list(db.query(f"SELECT * FROM bookings WHERE {SCOPE} AND participant_id = ?{extra} ORDER BY start_utc",
                         _scope(scope) + [participant_id]))


def expert_bookings(db, expert_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM bookings WHERE expert_id = ? ORDER BY start_utc", [expert_id]))


def course_bookings(db, scope) -> list[dict]:
    return list(db.query(
        "SELECT b.*, e.name AS expert_name FROM bookings b JOIN booking_experts e ON e.id = b.expert_id"
        " WHERE b.platform_id = ? AND b.deployment_id = ? AND b.context_id = ? ORDER BY b.start_utc",
        _scope(scope)))


def due_reminders(db, starts_before: str, now: str) -> list[dict]:
    return list(db.query("SELECT * FROM bookings WHERE status = 'booked' AND reminded_at IS NULL"
                         " AND start_utc > ? AND start_utc <= ? ORDER BY start_utc", [now, starts_before]))


def mark_reminded(db, booking_id: int) -> None:
    db.execute("UPDATE bookings SET reminded_at = ? WHERE id = ?", [ts(), booking_id])


# --- in-tool notices ----------------------------------------------------------------------
def add_notice(db, scope, user_id: str, text: str) -> None:
    db.execute("INSERT INTO booking_notices (platform_id, deployment_id, context_id, user_id, text, created_at)"
               " VALUES (?,?,?,?,?,?)", _scope(scope) + [user_id, text, ts()])


def notices(db, scope, user_id: str, limit: int = 10) -> list[dict]:
    return list(db.query(f"SELECT * FROM booking_notices WHERE {SCOPE} AND user_id = ? ORDER BY id DESC LIMIT ?",
                         _scope(scope) + [user_id, limit]))
