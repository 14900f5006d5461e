"""Personal data, table by table: what a person's rows are, how they are exported, erased or expire.

`PERSONAL` is the data map in code: every table that holds personal data, with the rows that belong to one
person (`{who}` is `platform_id IN (<that LMS site's registrations>) AND <column> = :sub`) and what erasure
does to them. tests/test_privacy.py checks it against the schema and the README's data map. `{user_in_payload}`
is the outbox payload's `user_id` in the store's JSON functions (payload is TEXT on both stores).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from . import dialect, migration_set, one, ts

migrations = migration_set("privacy")
ERASED = "erased"


@migrations()
def m001_privacy_runs(db):
    db.execute("CREATE TABLE privacy_runs (task TEXT PRIMARY KEY, ran_at TEXT NOT NULL, report TEXT NOT NULL)")


@dataclass(frozen=True)
class Personal:
    table: str
    area: str
    where: str  # rows of one person: `:sub` is the LMS user id, `{pids}` the site's platform ids
    erase: str  # "delete", an UPDATE's SET clause, or "projects" (handled by erase_projects)
    purpose: str
    kept: str


PERSONAL: tuple[Personal, ...] = (
    Personal("launches", "launches", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "the LTI launch: name, e-mail, roles, language and zone the LMS sent", "8 hours (the launch token's life)"),
    Personal("person_locales", "language", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "the interface language, for messages sent after the launch expired", "until erased"),
    Personal("roster", "courses", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "course membership from launches and NRPS", "while the course is active"),
    Personal("dash_facets", "courses", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "the facilitators' dashboard index: name, country, stage statuses (kept from the roster by triggers)",
             "with the roster row"),
    Personal("project_members", "projects", "platform_id IN ({pids}) AND user_id = :sub", "projects",
             "who authors which project", "retention"),
    Personal("projects", "projects", "platform_id IN ({pids}) AND owner_id = :sub", "projects",
             "the course project", "retention"),
    Personal("submissions", "projects", "updated_by = :sub AND project_id IN"
             " (SELECT id FROM projects WHERE platform_id IN ({pids}))", f"updated_by = '{ERASED}'",
             "plan, updates, report, presentation and their marking", "retention"),
    Personal("versions", "projects", "submitted_by = :sub AND submission_id IN (SELECT s.id FROM submissions s"
             " JOIN projects p ON p.id = s.project_id WHERE p.platform_id IN ({pids}))",
             f"submitted_by = '{ERASED}'", "every submitted version", "retention"),
    Personal("attachments", "projects", "uploaded_by = :sub AND project_id IN"
             " (SELECT id FROM projects WHERE platform_id IN ({pids}))", f"uploaded_by = '{ERASED}'",
             "uploaded files (stored under uploads/)", "retention"),
    Personal("feedback", "feedback_given", "author_id = :sub AND submission_id IN (SELECT s.id FROM submissions s"
             " JOIN projects p ON p.id = s.project_id WHERE p.platform_id IN ({pids}))",
             f"author_id = '{ERASED}', author_name = ''", "feedback and grades staff gave", "retention"),
    Personal("audit", "activity_log", "platform_id IN ({pids}) AND actor_id = :sub",
             f"actor_id = '{ERASED}', detail = '{{}}'", "who did what, for accountability", "retention"),
    Personal("extensions", "deadlines", "platform_id IN ({pids}) AND (subject = 'user:' || :sub OR granted_by = :sub)",
             "delete", "deadline extensions for a person", "retention"),
    Personal("booking_experts", "expert_profile", "platform_id IN ({pids}) AND user_id = :sub",
             f"user_id = '{ERASED}:' || id, name = '', email = '', bio = '', meeting_url = '', availability = '{{}}',"
             " active = 0", "an expert's profile and availability", "retention"),
    Personal("bookings", "consultations", "platform_id IN ({pids}) AND participant_id = :sub",
             f"participant_id = '{ERASED}', participant_name = '', participant_email = '', participant_tz = 'UTC',"
             " question = '', project = '', shared_notes = '', follow_up = '', private_note = ''",
             "consultations booked, questions and expert notes", "retention"),
    Personal("booking_notices", "notices", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "notices shown inside the tool", "retention"),
    Personal("outbox", "messages_queued", "platform_id IN ({pids}) AND {user_in_payload} = :sub",
             "delete", "grades, completion and messages on their way to the LMS", "until delivered, then 30 days"),
    Personal("score_clock", "grades_sent", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "the last grade timestamp sent per line item", "retention"),
    Personal("practice_consents", "library_consent", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "the library publication choice, its wording and date", "until changed or erased"),
    Personal("practices", "library_curated", "platform_id IN ({pids}) AND created_by = :sub",
             f"created_by = '{ERASED}'", "library entries a facilitator curated", "while published"),
    Personal("eval_grades", "test_results", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "pre- and post-test grades read from the LMS", "replaced by each daily refresh; retention"),
    Personal("eval_marks", "test_results", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "per-question marks of the pre- and post-test", "replaced by each daily refresh; retention"),
    Personal("eval_profiles", "evaluation_profile", "platform_id IN ({pids}) AND user_id = :sub", "delete",
             "organisation type, and the tracer-study contact consent with its wording and date",
             "until changed or erased"),
    Personal("tracer_rounds", "tracer_scheduled", "platform_id IN ({pids}) AND created_by = :sub",
             f"created_by = '{ERASED}'", "tracer-study rounds a facilitator scheduled", "retention"),
    Personal("tracer_invites", "tracer_study", "user_id = :sub AND round_id IN"
             " (SELECT id FROM tracer_rounds WHERE platform_id IN ({pids}))", "delete",
             "tracer-study invitations and reminders sent", "retention"),
    Personal("tracer_answers", "tracer_study", "user_id = :sub AND round_id IN"
             " (SELECT id FROM tracer_rounds WHERE platform_id IN ({pids}))", "delete",
             "tracer-study answers and drafts", "retention"),
)


def site_platforms(db, issuer: str) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM platforms WHERE issuer = ?", [issuer])]


USER_IN_PAYLOAD = {"sqlite": "json_extract(payload, '$.user_id')", "postgresql": "(payload::json ->> 'user_id')"}


def _where(db, spec: Personal, pids: list[int]) -> str:
    return spec.where.format(pids=",".join(str(int(p)) for p in pids) or "NULL",
                             user_in_payload=USER_IN_PAYLOAD[dialect(db)])


def table_columns(db) -> dict[str, list[str]]:
    """Every table of the store (SQLite's own and FTS5's shadow tables left out) with its column names, for the
    data map's check against the schema."""
    if dialect(db) == "postgresql":
        out: dict[str, list[str]] = {}
        for table, column in db.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t"
                " ON t.table_schema = c.table_schema AND t.table_name = c.table_name WHERE c.table_schema ="
                " current_schema() AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"):
            out.setdefault(table, []).append(column)
        return out
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                                      " AND name NOT LIKE 'practices_fts_%' ORDER BY name")]
    return {t: [r[1] for r in db.execute(f"PRAGMA table_info('{t}')")] for t in names}


def rows_of(db, spec: Personal, pids: list[int], sub: str) -> list[dict]:
    cur = db.conn.execute(f"SELECT * FROM {spec.table} WHERE {_where(db, spec, pids)}", {"sub": sub})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def person_projects(db, pids: list[int], sub: str) -> list[dict]:
    """The projects the person authors, each with its members, submissions, versions, feedback and files."""
    out = []
    ids = [r[0] for r in db.conn.execute(
        f"SELECT DISTINCT project_id FROM project_members WHERE platform_id IN ({','.join(map(str, pids)) or 'NULL'})"
        " AND user_id = ?", [sub])]
    for pid in ids:
        project = one(db, "SELECT * FROM projects WHERE id = ?", [pid])
        subs = [dict(r) for r in db.query("SELECT * FROM submissions WHERE project_id = ?", [pid])]
        sids = [s["id"] for s in subs] or [0]
        marks = ",".join("?" * len(sids))
        out.append({
            "project": project,
            "members": [dict(r) for r in db.query("SELECT user_id, member_role FROM project_members WHERE project_id = ?",
                                                  [pid])],
            "submissions": subs,
            "versions": [dict(r) for r in db.query(f"SELECT * FROM versions WHERE submission_id IN ({marks})", sids)],
            "feedback": [dict(r) for r in db.query(f"SELECT * FROM feedback WHERE submission_id IN ({marks})", sids)],
            "attachments": [dict(r) for r in db.query("SELECT * FROM attachments WHERE project_id = ?", [pid])],
        })
    return out


def erase_projects(db, pids: list[int], sub: str) -> tuple[dict, list[str]]:
    """Projects the person authored alone are deleted; group projects keep the work and drop the person.
    Returns (counts, storage names of files to remove once the transaction commits)."""
    counts, files = {"projects_deleted": 0, "group_projects_left": 0}, []
    for p in person_projects(db, pids, sub):
        pid = p["project"]["id"]
        others = [m for m in p["members"] if m["user_id"] != sub]
        if not others:
            files += [a["storage_name"] for a in p["attachments"]]
            entry = one(db, "SELECT id FROM practices WHERE project_id = ?", [pid])
            if entry:
                db.execute("DELETE FROM practices_fts WHERE rowid = ?", [entry["id"]])
            db.execute("DELETE FROM projects WHERE id = ?", [pid])  # cascades to the project's rows
            counts["projects_deleted"] += 1
            continue
        db.execute("DELETE FROM project_members WHERE project_id = ? AND user_id = ?", [pid, sub])
        if p["project"]["owner_id"] == sub:
            heir = others[0]["user_id"]
            db.execute("UPDATE projects SET owner_id = ? WHERE id = ?", [heir, pid])
            db.execute("UPDATE project_members SET member_role = 'owner' WHERE project_id = ? AND user_id = ?",
                       [pid, heir])
        counts["group_projects_left"] += 1
    return counts, files


def apply_erase(db, spec: Personal, pids: list[int], sub: str) -> int:
    where = _where(db, spec, pids)
    if spec.erase == "delete":
        return db.conn.execute(f"DELETE FROM {spec.table} WHERE {where}", {"sub": sub}).rowcount
    return db.conn.execute(f"UPDATE {spec.table} SET {spec.erase} WHERE {where}", {"sub": sub}).rowcount


# --- retention --------------------------------------------------------------------------------

COURSE_ACTIVITY = """
SELECT platform_id, deployment_id, context_id, MAX(at) AS last_activity FROM (
  SELECT platform_id, deployment_id, context_id, created_at AS at FROM launches
  UNION ALL SELECT platform_id, deployment_id, context_id, updated_at FROM roster
  UNION ALL SELECT platform_id, deployment_id, context_id, created_at FROM audit
  UNION ALL SELECT platform_id, deployment_id, context_id, updated_at FROM bookings
  UNION ALL SELECT p.platform_id, p.deployment_id, p.context_id, s.updated_at FROM submissions s
            JOIN projects p ON p.id = s.project_id
) activity GROUP BY platform_id, deployment_id, context_id
"""
COURSE_TABLES = ("roster", "launches", "bookings", "booking_notices", "booking_settings", "deadlines", "extensions",
                 "rubrics", "audit", "course_links", "practice_consents", "eval_settings", "eval_grades",
                 "eval_marks", "eval_slot_stats", "eval_profiles", "tracer_questions", "tracer_rounds")


def courses_inactive_since(db, before: str) -> list[dict]:
    """Courses whose last activity of any kind is older than `before`."""
    return [dict(r) for r in db.query(f"SELECT * FROM ({COURSE_ACTIVITY}) courses WHERE last_activity < ?"
                                      " ORDER BY last_activity", [before])]


def course_counts(db, scope) -> dict[str, int]:
    out = {}
    for table in ("projects", "roster", "bookings", "booking_experts", "audit"):
        out[table] = db.execute(f"SELECT count(*) FROM {table} WHERE platform_id = ? AND deployment_id = ?"
                                " AND context_id = ?", list(scope)).fetchone()[0]
    return out


def purge_course(db, scope) -> tuple[dict, list[str]]:
    """Delete a finished course's data. Published library entries stay, anonymised, with their files."""
    counts, files = {}, []
    params = list(scope)
    kept = {r[0] for r in db.execute("SELECT project_id FROM practices WHERE state = 'published' AND platform_id = ?"
                                     " AND deployment_id = ? AND context_id = ?", params)}
    published_files = set()
    for pid in kept:
        entry = one(db, "SELECT attachments FROM practices WHERE project_id = ?", [pid])
        published_files |= {int(a) for a in json.loads(entry["attachments"])}
        db.execute("UPDATE practices SET retained_at = ?, created_by = ? WHERE project_id = ?", [ts(), ERASED, pid])
    for row in db.query("SELECT id, project_id, storage_name FROM attachments WHERE project_id IN (SELECT id FROM"
                        " projects WHERE platform_id = ? AND deployment_id = ? AND context_id = ?)", params):
        if row["id"] not in published_files:
            files.append(row["storage_name"])
    db.execute("DELETE FROM practices_fts WHERE rowid IN (SELECT id FROM practices WHERE platform_id = ? AND"
               " deployment_id = ? AND context_id = ? AND state != 'published')", params)
    counts["projects"] = db.conn.execute(
        f"DELETE FROM projects WHERE platform_id = ? AND deployment_id = ? AND context_id = ?"
        f" AND id NOT IN ({','.join(map(str, kept)) or 'NULL'})", params).rowcount
    for pid in kept:  # the library entry's anchor: no members, no work, only the published files
        db.execute("DELETE FROM project_members WHERE project_id = ?", [pid])
        db.execute("DELETE FROM submissions WHERE project_id = ?", [pid])
        db.execute(f"DELETE FROM attachments WHERE project_id = ? AND id NOT IN "
                   f"({','.join(map(str, published_files)) or 'NULL'})", [pid])
        db.execute("UPDATE attachments SET uploaded_by = ? WHERE project_id = ?", [ERASED, pid])
        db.execute("UPDATE projects SET owner_id = ? WHERE id = ?", [ERASED, pid])
    for table in COURSE_TABLES + ("booking_experts",):
        counts[table] = db.conn.execute(f"DELETE FROM {table} WHERE platform_id = ? AND deployment_id = ?"
                                        " AND context_id = ?", params).rowcount
    return counts, files


def last_run(db, task: str) -> dict | None:
    return one(db, "SELECT * FROM privacy_runs WHERE task = ?", [task])


def record_run(db, task: str, report: dict) -> None:
    db.execute("INSERT INTO privacy_runs (task, ran_at, report) VALUES (?,?,?) ON CONFLICT (task) DO UPDATE"
               " SET ran_at = excluded.ran_at, report = excluded.report", [task, ts(), json.dumps(report)])
