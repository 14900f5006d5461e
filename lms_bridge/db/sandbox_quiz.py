"""The sandbox LMS's quizzes (pre-/post-test attempts with per-slot marks). Test double only."""
from __future__ import annotations

import json

from . import execute_write as _write, returning_id
from . import migration_set, one
from .schema import ddl

migrations = migration_set("sandbox_quiz")


@migrations()
def m001_sandbox_quiz(db):
    ddl(db, """
    CREATE TABLE sb_quiz_flags (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE sb_quiz_attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, quiz INTEGER NOT NULL, userid TEXT NOT NULL,
        attempt INTEGER NOT NULL, state TEXT NOT NULL, timestart INTEGER NOT NULL, timefinish INTEGER NOT NULL,
        marks TEXT NOT NULL);
    CREATE INDEX sb_quiz_attempts_user ON sb_quiz_attempts(quiz, userid, attempt)
    """)


def flag(db, name: str, default: bool = False) -> bool:
    row = one(db, "SELECT value FROM sb_quiz_flags WHERE name = ?", [name])
    return bool(row["value"]) if row else default


def set_flag(db, name: str, value: bool) -> None:
    _write(db, "INSERT INTO sb_quiz_flags VALUES (?,?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [name, int(value)])


def add_attempt(db, quiz: int, userid: str, marks: list[float], timestart: int, timefinish: int,
                state: str = "finished") -> int:
    n = db.execute("SELECT COUNT(*) FROM sb_quiz_attempts WHERE quiz = ? AND userid = ?", [quiz, userid]).fetchone()[0]
    return _write(db, "INSERT INTO sb_quiz_attempts (quiz, userid, attempt, state, timestart, timefinish, marks)"
                      " VALUES (?,?,?,?,?,?,?)" + returning_id(db), [quiz, userid, n + 1, state, timestart, timefinish,
                                                  json.dumps(marks)]).lastrowid


def _attempt(row):
    return dict(row, marks=json.loads(row["marks"])) if row else None


def attempts(db, quiz: int, userid: str) -> list[dict]:
    cur = db.conn.execute("SELECT * FROM sb_quiz_attempts WHERE quiz = ? AND userid = ? ORDER BY attempt",
                          [quiz, userid])
    names = [d[0] for d in cur.description]
    return [_attempt(dict(zip(names, r))) for r in cur.fetchall()]


def get_attempt(db, attempt_id: int) -> dict | None:
    return _attempt(one(db, "SELECT * FROM sb_quiz_attempts WHERE id = ?", [attempt_id]))


def best_attempts(db, quiz: int) -> dict[str, dict]:
    """userid -> the finished attempt with the highest sum (Moodle's default grading method)."""
    best: dict[str, dict] = {}
    cur = db.conn.execute("SELECT * FROM sb_quiz_attempts WHERE quiz = ? AND state = 'finished'", [quiz])
    names = [d[0] for d in cur.description]
    for r in cur.fetchall():
        a = _attempt(dict(zip(names, r)))
        if a["userid"] not in best or sum(a["marks"]) >= sum(best[a["userid"]]["marks"]):
            best[a["userid"]] = a
    return best
