"""The sandbox LMS's own state: tokens, line items, grades, web-service effects, faults and call counts.

Only the sandbox (a test double) uses these tables; tests and benchmarks read them to assert effects.
"""
from __future__ import annotations

import json
from datetime import timedelta

from . import IntegrityError
from . import execute_write as _write, returning_id
from . import migration_set, ts, utcnow, write_transaction
from .schema import ddl

migrations = migration_set("sandbox")
DEFAULT_WS_TOKEN = "sandbox-ws-token"
FIRST_SYNTHETIC_USER = 1000


@migrations()
def m001_sandbox(db):
    ddl(db, """
    CREATE TABLE sb_jtis (jti TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
    CREATE TABLE sb_tokens (token TEXT PRIMARY KEY, client_id TEXT NOT NULL, scopes TEXT NOT NULL,
        expires_at TEXT NOT NULL);
    CREATE TABLE sb_lineitems (id INTEGER PRIMARY KEY AUTOINCREMENT, course_id TEXT NOT NULL, label TEXT NOT NULL,
        score_maximum REAL NOT NULL, resource_id TEXT NOT NULL DEFAULT '', tag TEXT NOT NULL DEFAULT '',
        resource_link_id TEXT, created_at TEXT NOT NULL);
    CREATE TABLE sb_grades (lineitem_id INTEGER NOT NULL REFERENCES sb_lineitems(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL, score REAL, score_maximum REAL NOT NULL, comment TEXT, timestamp TEXT NOT NULL,
        activity_progress TEXT NOT NULL, grading_progress TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (lineitem_id, user_id));
    CREATE TABLE sb_calls (key TEXT PRIMARY KEY, count INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE sb_faults (id INTEGER PRIMARY KEY, target TEXT NOT NULL, kind TEXT NOT NULL,
        code INTEGER, retry_after INTEGER, seconds REAL, ratio REAL, remaining INTEGER, created_at TEXT NOT NULL);
    CREATE TABLE sb_roster (user_id TEXT PRIMARY KEY, username TEXT NOT NULL, given TEXT NOT NULL,
        family TEXT NOT NULL);
    CREATE TABLE sb_ws_tokens (token TEXT PRIMARY KEY, user_id INTEGER NOT NULL);
    CREATE TABLE sb_events (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, description TEXT NOT NULL,
        format INTEGER NOT NULL, courseid INTEGER NOT NULL, groupid INTEGER NOT NULL, userid INTEGER NOT NULL,
        eventtype TEXT NOT NULL, timestart INTEGER NOT NULL, timeduration INTEGER NOT NULL,
        visible INTEGER NOT NULL, timemodified INTEGER NOT NULL);
    CREATE TABLE sb_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, touserid TEXT NOT NULL, text TEXT NOT NULL,
        clientmsgid TEXT, timecreated INTEGER NOT NULL);
    CREATE TABLE sb_completion (cmid INTEGER NOT NULL, userid TEXT NOT NULL, state INTEGER NOT NULL,
        overrideby INTEGER, timecompleted INTEGER NOT NULL, PRIMARY KEY (cmid, userid));
    CREATE TABLE sb_ws_grades (cmid INTEGER NOT NULL, userid TEXT NOT NULL, grade REAL, updated_at TEXT NOT NULL,
        PRIMARY KEY (cmid, userid));
    CREATE TABLE sb_links (id INTEGER PRIMARY KEY, title TEXT NOT NULL, url TEXT NOT NULL, custom TEXT NOT NULL,
        created_at TEXT NOT NULL);
    CREATE TABLE sb_registrations (client_id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL, request TEXT NOT NULL,
        created_at TEXT NOT NULL)
    """)
    db.execute("INSERT INTO sb_ws_tokens (token, user_id) VALUES (?, 8)", [DEFAULT_WS_TOKEN])



@migrations()
def m002_activity_grade_items(db):
    """The seeded graded activities have their own gradebook column, as Moodle makes one for an activity
    with "Accept grades from the tool" ticked: no resourceId or tag, tied to the link (see
    tests/fixtures/moodle/lti/ags-lineitem-get.json). Launches from these links carry its URL as `lineitem`."""
    for link_id, label in (("1", "Course project: project plan"), ("2", "Course project: project report"),
                           ("3", "Course project: final presentation")):
        db.execute("INSERT INTO sb_lineitems (course_id, label, score_maximum, resource_id, tag, resource_link_id,"
                   " created_at) VALUES ('2', ?, 100, '', '', ?, ?)", [label, link_id, ts()])

def _rows(db, sql: str, params=()) -> list[dict]:
    return [dict(r) for r in db.query(sql, params)]


# --- OAuth2: assertions and access tokens -----------------------------------------------------
def use_jti(db, jti: str, expires_at) -> bool:
    """False when the client assertion's jti was seen already (a replay)."""
    try:
        _write(db, "INSERT INTO sb_jtis (jti, expires_at) VALUES (?,?)", [jti, ts(expires_at)])
    except IntegrityError:
        return False
    return True


def store_token(db, token: str, client_id: str, scopes: list[str], ttl_seconds: int = 3600) -> None:
    _write(db, "INSERT INTO sb_tokens (token, client_id, scopes, expires_at) VALUES (?,?,?,?)",
           [token, client_id, " ".join(scopes), ts(utcnow() + timedelta(seconds=ttl_seconds))])


def token_scopes(db, token: str) -> set[str] | None:
    """The scopes of a live access token, None when unknown or expired."""
    rows = _rows(db, "SELECT scopes FROM sb_tokens WHERE token = ? AND expires_at > ?", [token, ts()])
    return set(rows[0]["scopes"].split()) if rows else None


# --- AGS line items and grades ------------------------------------------------------------------
def create_lineitem(db, *, course_id: str, label: str, score_maximum: float, resource_id: str = "", tag: str = "",
                    resource_link_id: str | None = None) -> int:
    return _write(db, "INSERT INTO sb_lineitems (course_id, label, score_maximum, resource_id, tag, resource_link_id,"
                      " created_at) VALUES (?,?,?,?,?,?,?)" + returning_id(db),
                  [course_id, label, score_maximum, resource_id or "", tag or "", resource_link_id, ts()]).lastrowid


def get_lineitem(db, course_id: str, item_id) -> dict | None:
    rows = _rows(db, "SELECT * FROM sb_lineitems WHERE id = ? AND course_id = ?", [item_id, course_id])
    return rows[0] if rows else None


def list_lineitems(db, course_id: str, *, resource_id=None, tag=None, resource_link_id=None) -> list[dict]:
    where, params = ["course_id = ?"], [course_id]
    for column, value in (("resource_id", resource_id), ("tag", tag), ("resource_link_id", resource_link_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return _rows(db, f"SELECT * FROM sb_lineitems WHERE {' AND '.join(where)} ORDER BY id", params)


def link_lineitems(db, resource_link_id: str) -> list[dict]:
    """The line items tied to one activity (mod_lti instance): Moodle's launch names the item when there is one."""
    return _rows(db, "SELECT * FROM sb_lineitems WHERE resource_link_id = ? ORDER BY id", [str(resource_link_id)])


def columns_for_link(db, resource_link_id: str) -> list[dict]:
    """Every gradebook column a learner sees for one activity: its own and any the tool made with its name."""
    own = link_lineitems(db, resource_link_id)
    labels = [r["label"] for r in own]
    if not labels:
        return own
    marks = ",".join("?" * len(labels))
    return _rows(db, f"SELECT * FROM sb_lineitems WHERE resource_link_id = ? OR (label IN ({marks})"
                     " AND (resource_link_id IS NULL OR resource_link_id != ?)) ORDER BY id",
                 [str(resource_link_id), *labels, str(resource_link_id)])


def update_lineitem(db, item_id, *, label, score_maximum, resource_id, tag) -> None:
    _write(db, "UPDATE sb_lineitems SET label = ?, score_maximum = ?, resource_id = ?, tag = ? WHERE id = ?",
           [label, score_maximum, resource_id or "", tag or "", item_id])


def delete_lineitem(db, item_id) -> None:
    _write(db, "DELETE FROM sb_lineitems WHERE id = ?", [item_id])


def get_grade(db, item_id, user_id: str) -> dict | None:
    rows = _rows(db, "SELECT * FROM sb_grades WHERE lineitem_id = ? AND user_id = ?", [item_id, str(user_id)])
    return rows[0] if rows else None


def put_grade(db, *, item_id, user_id: str, score, score_maximum, comment, timestamp: str, activity_progress: str,
              grading_progress: str) -> None:
    """Store a score; `score` None clears the grade but keeps the timestamp (Moodle deletes the grade)."""
    _write(db, "INSERT INTO sb_grades (lineitem_id, user_id, score, score_maximum, comment, timestamp,"
               " activity_progress, grading_progress, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
               " ON CONFLICT (lineitem_id, user_id) DO UPDATE SET score = excluded.score,"
               " score_maximum = excluded.score_maximum, comment = excluded.comment, timestamp = excluded.timestamp,"
               " activity_progress = excluded.activity_progress, grading_progress = excluded.grading_progress,"
               " updated_at = excluded.updated_at",
           [item_id, str(user_id), score, score_maximum, comment, timestamp, activity_progress, grading_progress,
            ts()])


def results(db, item_id, user_id: str | None = None) -> list[dict]:
    sql, params = "SELECT * FROM sb_grades WHERE lineitem_id = ? AND score IS NOT NULL", [item_id]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(str(user_id))
    return _rows(db, sql + " ORDER BY updated_at, user_id", params)


def gradebook(db) -> list[dict]:
    """Every line item with its stored scores (score None = deleted by a non-FullyGraded score)."""
    return _rows(db, "SELECT i.id AS lineitem_id, i.label, i.resource_id, i.tag, i.resource_link_id,"
                     " i.score_maximum AS item_maximum, g.user_id, g.score, g.comment, g.timestamp,"
                     " g.grading_progress, g.activity_progress FROM sb_lineitems i"
                     " LEFT JOIN sb_grades g ON g.lineitem_id = i.id ORDER BY i.id, g.user_id")


def grade_of(db, resource_id: str, user_id: str, tag: str | None = None, course: str | None = None) -> float | None:
    """The stored score of a user on the line item with this resourceId (tests and benchmarks)."""
    sql = ("SELECT g.score FROM sb_grades g JOIN sb_lineitems i ON i.id = g.lineitem_id"
           " WHERE i.resource_id = ? AND g.user_id = ?")
    params = [resource_id, str(user_id)]
    if course is not None:
        sql += " AND i.course_id = ?"
        params.append(course)
    if tag is not None:
        sql += " AND i.tag = ?"
        params.append(tag)
    rows = _rows(db, sql, params)
    return rows[0]["score"] if rows else None


# --- call counts and faults ---------------------------------------------------------------------
def count_call(db, key: str) -> None:
    _write(db, "INSERT INTO sb_calls (key, count) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET count = sb_calls.count + 1",
           [key])


def call_counts(db) -> dict[str, int]:
    """Requests the sandbox received, by kind: "token", "lineitems", "scores", "results", "memberships", "ws:<fn>"."""
    return {r["key"]: r["count"] for r in db.query("SELECT key, count FROM sb_calls ORDER BY key")}


def reset_call_counts(db) -> None:
    _write(db, "DELETE FROM sb_calls")


FAULT_KINDS = ("status", "timeout", "latency_ms", "fail_ratio", "bad_token")


class InvalidFault(ValueError):
    """A fault rule the sandbox cannot apply."""


def set_fault(db, target: str, kind: str, *, code: int | None = None, retry_after: int | None = None,
              seconds: float | None = None, ms: float | None = None, ratio: float | None = None,
              count: int | None = None) -> int:
    """Add a fault rule. `target`: a path prefix ("/sandbox/mod/lti/services.php") or a wsfunction name.

    kinds: status (code, retry_after), timeout (seconds, then 504), latency_ms (ms), fail_ratio (ratio of 500s),
    bad_token. `count` None = unlimited, else the rule fires that many times.
    """
    if kind not in FAULT_KINDS:
        raise InvalidFault(f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")
    if kind == "status" and not code:
        raise InvalidFault("a status fault needs code")
    if kind == "latency_ms":
        seconds = (ms if ms is not None else seconds * 1000 if seconds else 0) / 1000
    return _write(db, "INSERT INTO sb_faults (target, kind, code, retry_after, seconds, ratio, remaining, created_at)"
                      " VALUES (?,?,?,?,?,?,?,?)" + returning_id(db),
                  [target, kind, code, retry_after, seconds, ratio, count, ts()]).lastrowid


def clear_faults(db) -> None:
    _write(db, "DELETE FROM sb_faults")


def list_faults(db) -> list[dict]:
    return _rows(db, "SELECT * FROM sb_faults ORDER BY id")


def matching_faults(db, path: str, wsfunction: str | None) -> list[dict]:
    return [f for f in list_faults(db) if (f["remaining"] is None or f["remaining"] > 0)
            and (path.startswith(f["target"]) if f["target"].startswith("/") else f["target"] == wsfunction)]


def consume_fault(db, fault_id: int) -> None:
    _write(db, "UPDATE sb_faults SET remaining = remaining - 1 WHERE id = ? AND remaining IS NOT NULL", [fault_id])


# --- people -----------------------------------------------------------------------------------------
def seed_roster(db, n: int) -> list[str]:
    """Add n synthetic learners (ids from 1000) to the course, e.g. for the 5,000-participant benchmark."""
    start = FIRST_SYNTHETIC_USER + (db.execute("SELECT COUNT(*) FROM sb_roster").fetchone()[0])
    ids = [str(start + i) for i in range(n)]
    with write_transaction(db):
        db.conn.executemany("INSERT INTO sb_roster (user_id, username, given, family) VALUES (?,?,?,?)",
                            [(uid, f"learner{uid}", "Learner", f"No. {uid}") for uid in ids])
    return ids


def roster(db, offset: int = 0, limit: int | None = None) -> list[dict]:
    return _rows(db, "SELECT * FROM sb_roster ORDER BY CAST(user_id AS INTEGER) LIMIT ? OFFSET ?",
                 [2**62 if limit is None else limit, offset])  # no limit (PostgreSQL refuses -1)


def roster_size(db) -> int:
    return db.execute("SELECT COUNT(*) FROM sb_roster").fetchone()[0]


def synthetic_user(db, user_id: str) -> dict | None:
    rows = _rows(db, "SELECT * FROM sb_roster WHERE user_id = ?", [str(user_id)])
    return rows[0] if rows else None


# --- web services ---------------------------------------------------------------------------------
def set_ws_token(db, token: str, user_id: int = 8) -> None:
    _write(db, "INSERT INTO sb_ws_tokens (token, user_id) VALUES (?,?)"
               " ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id", [token, user_id])


def ws_token_user(db, token: str) -> int | None:
    rows = _rows(db, "SELECT user_id FROM sb_ws_tokens WHERE token = ?", [token])
    return rows[0]["user_id"] if rows else None


def add_event(db, event: dict) -> dict:
    cols = ("name", "description", "format", "courseid", "groupid", "userid", "eventtype", "timestart",
            "timeduration", "visible", "timemodified")
    cur = db.execute(f"INSERT INTO sb_events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                     + returning_id(db), [event[c] for c in cols])
    return {"id": cur.lastrowid, **event}


def events(db, course_ids: list[int] | None = None, timestart: int | None = None, timeend: int | None = None):
    rows = _rows(db, "SELECT * FROM sb_events ORDER BY timestart, id")
    return [r for r in rows if (course_ids is None or r["courseid"] in course_ids)
            and (timestart is None or r["timestart"] >= timestart) and (timeend is None or r["timestart"] <= timeend)]


def delete_event(db, event_id: int) -> bool:
    return db.execute("DELETE FROM sb_events WHERE id = ?", [event_id]).rowcount == 1


def add_message(db, touserid: str, text: str, clientmsgid: str | None, timecreated: int) -> int:
    return db.execute("INSERT INTO sb_messages (touserid, text, clientmsgid, timecreated) VALUES (?,?,?,?)"
                      + returning_id(db),
                      [str(touserid), text, clientmsgid, timecreated]).lastrowid


def messages(db, touserid: str | None = None) -> list[dict]:
    if touserid is None:
        return _rows(db, "SELECT * FROM sb_messages ORDER BY id")
    return _rows(db, "SELECT * FROM sb_messages WHERE touserid = ? ORDER BY id", [str(touserid)])


def set_completion(db, cmid: int, userid: str, state: int, overrideby: int | None, timecompleted: int) -> None:
    _write(db, "INSERT INTO sb_completion (cmid, userid, state, overrideby, timecompleted)"
               " VALUES (?,?,?,?,?) ON CONFLICT (cmid, userid) DO UPDATE SET state = excluded.state,"
               " overrideby = excluded.overrideby, timecompleted = excluded.timecompleted", [cmid, str(userid), state, overrideby, timecompleted])


def completion(db, userid: str | None = None) -> list[dict]:
    if userid is None:
        return _rows(db, "SELECT * FROM sb_completion ORDER BY cmid, userid")
    return _rows(db, "SELECT * FROM sb_completion WHERE userid = ? ORDER BY cmid", [str(userid)])


def set_ws_grade(db, cmid: int, userid: str, grade) -> None:
    db.execute("INSERT INTO sb_ws_grades (cmid, userid, grade, updated_at) VALUES (?,?,?,?) ON CONFLICT (cmid, userid)"
               " DO UPDATE SET grade = excluded.grade, updated_at = excluded.updated_at",
               [cmid, str(userid), grade, ts()])


def ws_grades(db, userid: str | None = None) -> list[dict]:
    if userid is None:
        return _rows(db, "SELECT * FROM sb_ws_grades ORDER BY cmid, userid")
    return _rows(db, "SELECT * FROM sb_ws_grades WHERE userid = ? ORDER BY cmid", [str(userid)])


# --- deep-linked resource links and dynamic registrations ------------------------------------------
def add_link(db, title: str, url: str, custom: dict) -> str:
    """A new mod_lti instance; ids continue after the four seeded links."""
    with write_transaction(db):
        next_id = max(4, db.execute("SELECT COALESCE(MAX(id), 0) FROM sb_links").fetchone()[0]) + 1
        db.execute("INSERT INTO sb_links (id, title, url, custom, created_at) VALUES (?,?,?,?,?)",
                   [next_id, title, url, json.dumps(custom), ts()])
    return str(next_id)


def get_link(db, link_id: str) -> dict | None:
    rows = _rows(db, "SELECT * FROM sb_links WHERE id = ?", [str(link_id)])
    return {**rows[0], "custom": json.loads(rows[0]["custom"])} if rows else None


def links(db) -> list[dict]:
    return [{**r, "custom": json.loads(r["custom"])} for r in _rows(db, "SELECT * FROM sb_links ORDER BY id")]


def add_registration(db, client_id: str, request: dict) -> str:
    """A new tool type; its id is the deployment id (the seeded tool is type 1)."""
    with write_transaction(db):
        deployment = str(db.execute("SELECT COUNT(*) FROM sb_registrations").fetchone()[0] + 2)
        db.execute("INSERT INTO sb_registrations (client_id, deployment_id, request, created_at) VALUES (?,?,?,?)",
                   [client_id, deployment, json.dumps(request), ts()])
    return deployment


def registrations(db) -> list[dict]:
    return _rows(db, "SELECT * FROM sb_registrations ORDER BY created_at")
