"""Tables and queries of monitoring and evaluation: pre/post test grades read from the LMS, participant
profiles (organisation type, tracer contact consent), tracer-study rounds, invitations and answers."""
from __future__ import annotations

import json

from . import migration_set, one, returning_id, ts
from .schema import ddl

migrations = migration_set("evaluation")
SCOPE = "platform_id = ? AND deployment_id = ? AND context_id = ?"


@migrations()
def m001_evaluation(db):
    ddl(db, """
    CREATE TABLE eval_settings (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        pre_item_id INTEGER, post_item_id INTEGER, chosen_by TEXT,
        quiz_items TEXT NOT NULL DEFAULT '[]',
        refreshed_at TEXT, refresh_error TEXT, attempts_note TEXT, queued_at TEXT,
        PRIMARY KEY (platform_id, deployment_id, context_id)
    );
    CREATE INDEX eval_settings_refreshed ON eval_settings(refreshed_at);
    CREATE TABLE eval_grades (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, user_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        pre REAL, pre_max REAL, post REAL, post_max REAL,
        pre_attempt INTEGER, post_attempt INTEGER,
        fetched_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, user_id)
    );
    CREATE TABLE eval_marks (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, user_id TEXT NOT NULL,
        test TEXT NOT NULL, slot INTEGER NOT NULL, mark REAL, maxmark REAL,
        PRIMARY KEY (platform_id, deployment_id, context_id, user_id, test, slot)
    );
    CREATE TABLE eval_profiles (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, user_id TEXT NOT NULL,
        org_type TEXT NOT NULL DEFAULT '',
        tracer_consent INTEGER, consent_at TEXT, consent_wording TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, user_id)
    );
    CREATE TABLE tracer_questions (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        questions TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id)
    );
    CREATE TABLE tracer_rounds (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        title TEXT NOT NULL, opens_at TEXT NOT NULL, closes_at TEXT NOT NULL,
        questions TEXT NOT NULL, link_url TEXT NOT NULL DEFAULT '',
        invited_at TEXT, closed_at TEXT, created_by TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE INDEX tracer_rounds_scope ON tracer_rounds(platform_id, deployment_id, context_id, opens_at);
    CREATE INDEX tracer_rounds_due ON tracer_rounds(invited_at, opens_at);
    CREATE TABLE tracer_invites (
        round_id INTEGER NOT NULL REFERENCES tracer_rounds(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL, messages INTEGER NOT NULL DEFAULT 0,
        first_sent_at TEXT, next_due_at TEXT,
        PRIMARY KEY (round_id, user_id)
    );
    CREATE INDEX tracer_invites_due ON tracer_invites(next_due_at);
    CREATE TABLE tracer_answers (
        round_id INTEGER NOT NULL REFERENCES tracer_rounds(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL, answers TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'draft', submitted_at TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (round_id, user_id)
    );
    CREATE INDEX tracer_answers_status ON tracer_answers(round_id, status, submitted_at)
    """)


def _rows(db, sql: str, params=()) -> list[dict]:
    cur = db.conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


# --- which tests, and when they were read --------------------------------------------------------
def settings(db, scope) -> dict:
    row = one(db, f"SELECT * FROM eval_settings WHERE {SCOPE}", list(scope))
    if not row:
        return {"pre_item_id": None, "post_item_id": None, "chosen_by": None, "quiz_items": [],
                "refreshed_at": None, "refresh_error": None, "attempts_note": None}
    return dict(row, quiz_items=json.loads(row["quiz_items"]))


def _ensure_settings(db, scope) -> None:
    db.execute("INSERT INTO eval_settings (platform_id, deployment_id, context_id) VALUES (?,?,?)"
               " ON CONFLICT DO NOTHING", list(scope))


def choose_tests(db, scope, pre_item_id, post_item_id, chosen_by: str | None) -> None:
    _ensure_settings(db, scope)
    db.execute(f"UPDATE eval_settings SET pre_item_id = ?, post_item_id = ?, chosen_by = ? WHERE {SCOPE}",
               [pre_item_id, post_item_id, chosen_by, *scope])


def record_refresh(db, scope, *, quiz_items: list | None = None, error: str | None = None,
                   attempts_note: str | None = None) -> None:
    """A successful refresh stores the quiz list and clears the error; a failed one keeps the old grades."""
    _ensure_settings(db, scope)
    if error is not None:
        db.execute(f"UPDATE eval_settings SET refresh_error = ?, refreshed_at = ? WHERE {SCOPE}",
                   [error, ts(), *scope])
        return
    db.execute(f"UPDATE eval_settings SET quiz_items = ?, refresh_error = NULL, attempts_note = ?, refreshed_at = ?"
               f" WHERE {SCOPE}", [json.dumps(quiz_items or []), attempts_note, ts(), *scope])


def courses_due_refresh(db, before: str) -> list[tuple]:
    """Courses whose grades were neither read nor queued for reading since `before` (the daily refresh)."""
    return [(r["platform_id"], r["deployment_id"], r["context_id"]) for r in _rows(
        db, "SELECT platform_id, deployment_id, context_id FROM eval_settings"
            " WHERE (refreshed_at IS NULL OR refreshed_at < ?) AND (queued_at IS NULL OR queued_at < ?)",
        [before, before])]


def mark_queued(db, scope, now: str) -> None:
    db.execute(f"UPDATE eval_settings SET queued_at = ? WHERE {SCOPE}", [now, *scope])


def ensure_settings(db, scope) -> None:
    """A course enters the daily refresh once its report has been opened."""
    if not one(db, f"SELECT 1 AS x FROM eval_settings WHERE {SCOPE}", list(scope)):
        _ensure_settings(db, scope)


# --- grades --------------------------------------------------------------------------------------
def replace_grades(db, scope, rows: list[dict]) -> None:
    """Rows: user_id, name, pre, pre_max, post, post_max, pre_attempt, post_attempt (None when missing)."""
    now = ts()
    db.execute(f"DELETE FROM eval_grades WHERE {SCOPE}", list(scope))
    db.conn.executemany(
        "INSERT INTO eval_grades (platform_id, deployment_id, context_id, user_id, name, pre, pre_max, post,"
        " post_max, pre_attempt, post_attempt, fetched_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [(*scope, r["user_id"], r.get("name") or "", r.get("pre"), r.get("pre_max"), r.get("post"),
          r.get("post_max"), r.get("pre_attempt"), r.get("post_attempt"), now) for r in rows])


def grades(db, scope) -> list[dict]:
    """Every stored participant's grades with country (from the project plan) and organisation type."""
    return _rows(db, f"""
        SELECT g.user_id, COALESCE(NULLIF(r.name, ''), g.name) AS name, g.pre, g.pre_max, g.post, g.post_max,
               COALESCE(p.country, '') AS country, COALESCE(f.org_type, '') AS org_type
        FROM eval_grades g
        LEFT JOIN roster r ON r.platform_id = g.platform_id AND r.deployment_id = g.deployment_id
             AND r.context_id = g.context_id AND r.user_id = g.user_id
        LEFT JOIN project_members m ON m.platform_id = g.platform_id AND m.deployment_id = g.deployment_id
             AND m.context_id = g.context_id AND m.user_id = g.user_id
        LEFT JOIN projects p ON p.id = m.project_id
        LEFT JOIN eval_profiles f ON f.platform_id = g.platform_id AND f.deployment_id = g.deployment_id
             AND f.context_id = g.context_id AND f.user_id = g.user_id
        WHERE g.platform_id = ? AND g.deployment_id = ? AND g.context_id = ?
        AND (r.role IS NULL OR r.role = 'learner')
        ORDER BY name, g.user_id""", list(scope))


def stored_attempts(db, scope) -> dict[str, tuple]:
    """user -> (pre attempt id, post attempt id) from the last refresh: unchanged attempts are not re-read."""
    return {r["user_id"]: (r["pre_attempt"], r["post_attempt"]) for r in _rows(
        db, f"SELECT user_id, pre_attempt, post_attempt FROM eval_grades WHERE {SCOPE}", list(scope))}


def replace_marks(db, scope, user_id: str, test: str, marks: list[tuple]) -> None:
    """marks: (slot, mark, maxmark) of one attempt's review."""
    db.execute(f"DELETE FROM eval_marks WHERE {SCOPE} AND user_id = ? AND test = ?", [*scope, user_id, test])
    db.conn.executemany("INSERT INTO eval_marks VALUES (?,?,?,?,?,?,?,?)",
                        [(*scope, user_id, test, slot, mark, maxmark) for slot, mark, maxmark in marks])


def forget_marks(db, scope, keep_users: set[str]) -> None:
    for row in _rows(db, f"SELECT DISTINCT user_id FROM eval_marks WHERE {SCOPE}", list(scope)):
        if row["user_id"] not in keep_users:
            db.execute(f"DELETE FROM eval_marks WHERE {SCOPE} AND user_id = ?", [*scope, row["user_id"]])


@migrations()
def m002_slot_stats(db):
    ddl(db, """
    CREATE TABLE eval_slot_stats (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        test TEXT NOT NULL, slot INTEGER NOT NULL, mean REAL NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, test, slot)
    )
    """)


def update_slot_stats(db, scope) -> None:
    """Per test and slot: the mean share of the mark earned over participants with reviews of both tests (a
    paired comparison). Kept by each refresh, so the report reads a few rows whatever the cohort's size."""
    db.execute(f"DELETE FROM eval_slot_stats WHERE {SCOPE}", list(scope))
    db.execute(f"""INSERT INTO eval_slot_stats
                   SELECT platform_id, deployment_id, context_id, test, slot, AVG(mark / maxmark), COUNT(*)
                   FROM eval_marks WHERE {SCOPE} AND maxmark > 0 AND mark IS NOT NULL AND user_id IN (
                     SELECT user_id FROM eval_marks WHERE {SCOPE} GROUP BY user_id HAVING COUNT(DISTINCT test) = 2)
                   GROUP BY platform_id, deployment_id, context_id, test, slot""", [*scope, *scope])


def slot_means(db, scope) -> list[dict]:
    return _rows(db, f"SELECT test, slot, mean, n FROM eval_slot_stats WHERE {SCOPE} ORDER BY slot, test",
                 list(scope))


@migrations()
def m003_profile_locale(db):
    """The language the participant used when answering: tracer-study messages are written in it."""
    db.execute("ALTER TABLE eval_profiles ADD COLUMN locale TEXT")


# --- profiles ------------------------------------------------------------------------------------
def profile(db, scope, user_id: str) -> dict | None:
    return one(db, f"SELECT * FROM eval_profiles WHERE {SCOPE} AND user_id = ?", [*scope, user_id])


def save_profile(db, scope, user_id: str, org_type: str, consent: bool | None, wording: str,
                 locale: str | None = None) -> None:
    """The consent's date and wording change only when the answer changes (the record of what was agreed)."""
    old = profile(db, scope, user_id)
    now = ts()
    if old and old["tracer_consent"] == (None if consent is None else int(consent)):
        consent_at, text = old["consent_at"], old["consent_wording"]
    else:
        consent_at, text = (now, wording) if consent is not None else (None, None)
    db.execute("INSERT INTO eval_profiles (platform_id, deployment_id, context_id, user_id, org_type, tracer_consent,"
               " consent_at, consent_wording, updated_at, locale) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id, user_id) DO UPDATE"
               " SET org_type = excluded.org_type, tracer_consent = excluded.tracer_consent,"
               " consent_at = excluded.consent_at, consent_wording = excluded.consent_wording,"
               " updated_at = excluded.updated_at, locale = excluded.locale",
               [*scope, user_id, org_type, None if consent is None else int(consent), consent_at, text, now, locale])


def consent_counts(db, scope) -> dict:
    row = one(db, f"""SELECT COUNT(*) FILTER (WHERE f.tracer_consent = 1) AS yes,
                      COUNT(*) FILTER (WHERE f.tracer_consent = 0) AS no,
                      COUNT(*) - COUNT(f.tracer_consent) AS unasked
                      FROM roster r LEFT JOIN eval_profiles f ON f.platform_id = r.platform_id
                      AND f.deployment_id = r.deployment_id AND f.context_id = r.context_id AND f.user_id = r.user_id
                      WHERE r.platform_id = ? AND r.deployment_id = ? AND r.context_id = ? AND r.role = 'learner'
                      AND r.active = 1""", list(scope))
    return {k: row[k] or 0 for k in ("yes", "no", "unasked")}


# --- tracer question sets and rounds -------------------------------------------------------------
def question_set(db, scope) -> list[dict] | None:
    row = one(db, f"SELECT questions FROM tracer_questions WHERE {SCOPE}", list(scope))
    return json.loads(row["questions"]) if row else None


def save_question_set(db, scope, questions: list[dict]) -> None:
    db.execute("INSERT INTO tracer_questions VALUES (?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id) DO UPDATE SET"
               " questions = excluded.questions, updated_at = excluded.updated_at",
               [*scope, json.dumps(questions), ts()])


def add_round(db, scope, *, title: str, opens_at: str, closes_at: str, questions: list[dict], link_url: str,
              created_by: str) -> int:
    return db.execute("INSERT INTO tracer_rounds (platform_id, deployment_id, context_id, title, opens_at, closes_at,"
                      " questions, link_url, created_by, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)" + returning_id(db),
                      [*scope, title, opens_at, closes_at, json.dumps(questions), link_url, created_by,
                       ts()]).lastrowid


def _round(row: dict | None) -> dict | None:
    return dict(row, questions=json.loads(row["questions"])) if row else None


def rounds(db, scope) -> list[dict]:
    return [_round(r) for r in _rows(db, f"SELECT * FROM tracer_rounds WHERE {SCOPE} ORDER BY opens_at, id",
                                     list(scope))]


def get_round(db, scope, round_id: int) -> dict | None:
    return _round(one(db, f"SELECT * FROM tracer_rounds WHERE id = ? AND {SCOPE}", [round_id, *scope]))


def close_round(db, scope, round_id: int) -> None:
    db.execute(f"UPDATE tracer_rounds SET closed_at = ? WHERE id = ? AND {SCOPE} AND closed_at IS NULL",
               [ts(), round_id, *scope])


def delete_round(db, scope, round_id: int) -> bool:
    """Only a round nobody was invited to yet may be removed."""
    return db.execute(f"DELETE FROM tracer_rounds WHERE id = ? AND {SCOPE} AND invited_at IS NULL",
                      [round_id, *scope]).rowcount == 1


def rounds_to_open(db, now: str) -> list[dict]:
    return [_round(r) for r in _rows(db, "SELECT * FROM tracer_rounds WHERE invited_at IS NULL AND opens_at <= ?"
                                         " AND closed_at IS NULL", [now])]


def open_rounds_for(db, scope, now: str) -> list[dict]:
    return [_round(r) for r in _rows(db, f"SELECT * FROM tracer_rounds WHERE {SCOPE} AND opens_at <= ?"
                                         " AND closes_at > ? AND closed_at IS NULL ORDER BY opens_at",
                                     [*scope, now, now])]


def consenting_learners(db, scope) -> list[dict]:
    return _rows(db, f"""SELECT r.user_id, r.name FROM roster r JOIN eval_profiles f ON f.platform_id = r.platform_id
                        AND f.deployment_id = r.deployment_id AND f.context_id = r.context_id AND f.user_id = r.user_id
                        WHERE r.platform_id = ? AND r.deployment_id = ? AND r.context_id = ? AND r.role = 'learner'
                        AND r.active = 1 AND f.tracer_consent = 1 ORDER BY r.user_id""", list(scope))


def mark_round_invited(db, round_id: int, user_ids: list[str], now: str) -> None:
    db.execute("UPDATE tracer_rounds SET invited_at = ? WHERE id = ?", [now, round_id])
    db.conn.executemany("INSERT INTO tracer_invites (round_id, user_id, next_due_at) VALUES (?,?,?)"
                        " ON CONFLICT DO NOTHING", [(round_id, u, now) for u in user_ids])


def due_invites(db, now: str, limit: int = 500) -> list[dict]:
    """Invitations whose next message is due (index on next_due_at), with their round."""
    return _rows(db, """SELECT i.round_id, i.user_id, i.messages, r.platform_id, r.deployment_id, r.context_id,
                        r.title, r.closes_at, r.closed_at, r.link_url,
                        (SELECT locale FROM eval_profiles f WHERE f.platform_id = r.platform_id
                         AND f.deployment_id = r.deployment_id AND f.context_id = r.context_id
                         AND f.user_id = i.user_id) AS locale,
                        (SELECT status FROM tracer_answers a WHERE a.round_id = i.round_id AND a.user_id = i.user_id)
                        AS status FROM tracer_invites i JOIN tracer_rounds r ON r.id = i.round_id
                        WHERE i.next_due_at IS NOT NULL AND i.next_due_at <= ? ORDER BY i.next_due_at LIMIT ?""",
                 [now, limit])


def record_message(db, round_id: int, user_id: str, now: str, next_due_at: str | None) -> None:
    db.execute("UPDATE tracer_invites SET messages = messages + 1, first_sent_at = COALESCE(first_sent_at, ?),"
               " next_due_at = ? WHERE round_id = ? AND user_id = ?", [now, next_due_at, round_id, user_id])


def stop_invite(db, round_id: int, user_id: str) -> None:
    db.execute("UPDATE tracer_invites SET next_due_at = NULL WHERE round_id = ? AND user_id = ?", [round_id, user_id])


def invites(db, round_id: int) -> list[dict]:
    return _rows(db, "SELECT * FROM tracer_invites WHERE round_id = ? ORDER BY user_id", [round_id])


# --- answers -------------------------------------------------------------------------------------
def answer(db, round_id: int, user_id: str) -> dict | None:
    row = one(db, "SELECT * FROM tracer_answers WHERE round_id = ? AND user_id = ?", [round_id, user_id])
    return dict(row, answers=json.loads(row["answers"])) if row else None


def save_answer(db, round_id: int, user_id: str, answers: dict, submit: bool, at: str | None = None) -> None:
    now = at or ts()
    db.execute("INSERT INTO tracer_answers (round_id, user_id, answers, status, submitted_at, updated_at)"
               " VALUES (?,?,?,?,?,?) ON CONFLICT (round_id, user_id) DO UPDATE SET answers = excluded.answers,"
               " status = CASE WHEN excluded.status = 'submitted' THEN 'submitted' ELSE tracer_answers.status END,"
               " submitted_at = CASE WHEN excluded.status = 'submitted' THEN excluded.submitted_at"
               " ELSE tracer_answers.submitted_at END, updated_at = excluded.updated_at",
               [round_id, user_id, json.dumps(answers), "submitted" if submit else "draft", now if submit else None,
                now])
    if submit:
        stop_invite(db, round_id, user_id)


def answers(db, round_id: int, submitted_only: bool = True) -> list[dict]:
    where = " AND a.status = 'submitted'" if submitted_only else ""
    rows = _rows(db, f"""SELECT a.*, COALESCE(r.name, '') AS name FROM tracer_answers a
                        JOIN tracer_rounds t ON t.id = a.round_id
                        LEFT JOIN roster r ON r.platform_id = t.platform_id AND r.deployment_id = t.deployment_id
                        AND r.context_id = t.context_id AND r.user_id = a.user_id
                        WHERE a.round_id = ?{where} ORDER BY name, a.user_id""", [round_id])
    return [dict(r, answers=json.loads(r["answers"])) for r in rows]


def answers_of(db, scope, user_id: str) -> list[dict]:
    """One participant's answers in every round of the course (their project record)."""
    rows = _rows(db, f"""SELECT a.*, t.title, t.questions FROM tracer_answers a JOIN tracer_rounds t ON t.id = a.round_id
                        WHERE t.platform_id = ? AND t.deployment_id = ? AND t.context_id = ? AND a.user_id = ?
                        ORDER BY t.opens_at""", [*scope, user_id])
    return [dict(r, answers=json.loads(r["answers"]), questions=json.loads(r["questions"])) for r in rows]
