"""Tables and queries of the course project: roster, projects, submissions, versions, feedback, files."""
from __future__ import annotations

import json

from . import IntegrityError
from . import migration_set, returning_id, ts
from .schema import ddl

migrations = migration_set("projects")
STAFF = ("facilitator", "admin", "expert")


@migrations()
def m001_projects(db):
    ddl(db, """
    CREATE TABLE course_links (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        lineitems_url TEXT, memberships_url TEXT, links TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id)
    );
    CREATE TABLE roster (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, user_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '', role TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1, updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, user_id)
    );
    CREATE INDEX roster_role ON roster(platform_id, deployment_id, context_id, role, name);
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, owner_id TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '', country TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL
    );
    CREATE INDEX projects_scope ON projects(platform_id, deployment_id, context_id, country);
    CREATE TABLE project_members (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        platform_id INTEGER NOT NULL, deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        user_id TEXT NOT NULL, member_role TEXT NOT NULL,
        PRIMARY KEY (project_id, user_id),
        UNIQUE (platform_id, deployment_id, context_id, user_id)
    );
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        stage TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,
        data TEXT NOT NULL DEFAULT '{}', submitted_at TEXT, late INTEGER NOT NULL DEFAULT 0,
        grade REAL, grade_max REAL, rubric TEXT, feedback TEXT, marking_state TEXT,
        updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
        UNIQUE (project_id, stage)
    );
    CREATE INDEX submissions_stage ON submissions(stage, status, project_id);
    CREATE TABLE versions (
        id INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL, data TEXT NOT NULL, files TEXT NOT NULL DEFAULT '[]',
        submitted_by TEXT NOT NULL, submitted_at TEXT NOT NULL, late INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX versions_submission ON versions(submission_id, id);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL, author_id TEXT NOT NULL, author_name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL, text TEXT NOT NULL DEFAULT '', grade REAL, released INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE INDEX feedback_submission ON feedback(submission_id, id);
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        stage TEXT NOT NULL, field TEXT NOT NULL, storage_name TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL, kind TEXT NOT NULL, size INTEGER NOT NULL,
        uploaded_by TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE INDEX attachments_project ON attachments(project_id, stage);
    CREATE TABLE deadlines (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, stage TEXT NOT NULL,
        due_at TEXT NOT NULL, cutoff_at TEXT,
        PRIMARY KEY (platform_id, deployment_id, context_id, stage)
    );
    CREATE TABLE extensions (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, stage TEXT NOT NULL,
        subject TEXT NOT NULL, until_at TEXT NOT NULL, granted_by TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, stage, subject)
    );
    CREATE TABLE rubrics (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, data TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id)
    );
    CREATE TABLE score_clock (
        platform_id INTEGER NOT NULL, context_id TEXT NOT NULL, resource_id TEXT NOT NULL, user_id TEXT NOT NULL,
        last_ts TEXT NOT NULL,
        PRIMARY KEY (platform_id, context_id, resource_id, user_id)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL, deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        project_id INTEGER, stage TEXT, actor_id TEXT NOT NULL, action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL
    );
    CREATE INDEX audit_scope ON audit(platform_id, deployment_id, context_id, project_id, id)
    """)


@migrations()
def m002_stage_rubrics_and_usernames(db):
    """A rubric per graded stage (each starts from the course's default) and the LMS username for exports."""
    ddl(db, """
    ALTER TABLE roster ADD COLUMN username TEXT NOT NULL DEFAULT '';
    CREATE TABLE stage_rubrics (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL, context_id TEXT NOT NULL, stage TEXT NOT NULL,
        data TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, stage)
    )
    """)


def _one(db, sql, params):
    row = next(db.query(sql, params), None)
    return dict(row) if row else None


SCOPE = "platform_id = ? AND deployment_id = ? AND context_id = ?"


# --- course links and roster ----------------------------------------------------------------
def save_course_links(db, scope, *, lineitems_url, memberships_url, activity, resource_link_id) -> None:
    row = _one(db, f"SELECT links FROM course_links WHERE {SCOPE}", list(scope))
    links = json.loads(row["links"]) if row else {}
    if activity and resource_link_id:
        links[activity] = resource_link_id
    db.execute("INSERT INTO course_links (platform_id, deployment_id, context_id, lineitems_url, memberships_url,"
               " links, updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id) DO UPDATE SET"
               " lineitems_url = COALESCE(excluded.lineitems_url, course_links.lineitems_url),"
               " memberships_url = COALESCE(excluded.memberships_url, course_links.memberships_url),"
               " links = excluded.links, updated_at = excluded.updated_at",
               [*scope, lineitems_url, memberships_url, json.dumps(links), ts()])


def course_links(db, scope) -> dict:
    row = _one(db, f"SELECT * FROM course_links WHERE {SCOPE}", list(scope))
    if not row:
        return {"lineitems_url": None, "memberships_url": None, "links": {}}
    return dict(row, links=json.loads(row["links"]))


def upsert_member(db, scope, user_id, name, email, role, *, from_launch: bool, username: str = "") -> None:
    """A launch states the role the tool acts on; NRPS never downgrades staff (Moodle lists
    non-editing teachers as Learner there)."""
    keep = "excluded.role" if from_launch else f"CASE WHEN roster.role IN {STAFF} THEN roster.role ELSE excluded.role END"
    db.execute("INSERT INTO roster (platform_id, deployment_id, context_id, user_id, name, email, role, active,"
               " updated_at, username) VALUES (?,?,?,?,?,?,?,1,?,?)"
               " ON CONFLICT (platform_id, deployment_id, context_id, user_id) DO UPDATE SET"
               " name = CASE WHEN excluded.name != '' THEN excluded.name ELSE roster.name END,"
               " email = CASE WHEN excluded.email != '' THEN excluded.email ELSE roster.email END,"
               " username = CASE WHEN excluded.username != '' THEN excluded.username ELSE roster.username END,"
               f" role = {keep}, active = 1, updated_at = excluded.updated_at",
               [*scope, user_id, name or "", email or "", role, ts(), username or ""])


def roster_state(db, scope) -> dict:
    """user id -> (role, active): what a roster sync compares against."""
    return {r["user_id"]: (r["role"], r["active"]) for r in db.query(
        f"SELECT user_id, role, active FROM roster WHERE {SCOPE}", list(scope))}


def deactivate_learners(db, scope, user_ids) -> None:
    """Learners the LMS no longer lists have left the course: kept for the record, no longer shown."""
    for uid in user_ids:
        db.execute(f"UPDATE roster SET active = 0, updated_at = ? WHERE {SCOPE} AND user_id = ? AND role = 'learner'",
                   [ts(), *scope, uid])


def roster_member(db, scope, user_id) -> dict | None:
    return _one(db, f"SELECT * FROM roster WHERE {SCOPE} AND user_id = ?", [*scope, user_id])


def roster_learners(db, scope) -> list[dict]:
    return [dict(r) for r in db.query(f"SELECT user_id, name, role FROM roster WHERE {SCOPE} AND role = 'learner'"
                                      " AND active = 1 ORDER BY name", list(scope))]


def course_members(db, scope) -> list[dict]:
    """Everyone on the roster who is not already an expert of the course (for "add an expert")."""
    return [dict(r) for r in db.query(
        f"SELECT user_id, name, role FROM roster r WHERE {SCOPE} AND active = 1 AND NOT EXISTS (SELECT 1 FROM"
        " booking_experts e WHERE e.platform_id = r.platform_id AND e.deployment_id = r.deployment_id"
        " AND e.context_id = r.context_id AND e.user_id = r.user_id AND e.active = 1) ORDER BY name",
        list(scope))]


def roster_roles(db, scope) -> dict:
    return {r["user_id"]: r["role"] for r in db.query(f"SELECT user_id, role FROM roster WHERE {SCOPE}", list(scope))}


# --- projects and members -------------------------------------------------------------------
def project_of(db, scope, user_id) -> dict | None:
    return _one(db, "SELECT p.* FROM project_members m JOIN projects p ON p.id = m.project_id"
                    " WHERE m.platform_id = ? AND m.deployment_id = ? AND m.context_id = ? AND m.user_id = ?",
                [*scope, user_id])


def get_project(db, scope, project_id) -> dict | None:
    return _one(db, f"SELECT * FROM projects WHERE id = ? AND {SCOPE}", [project_id, *scope])


def create_project(db, scope, owner_id) -> int:
    cur = db.execute("INSERT INTO projects (platform_id, deployment_id, context_id, owner_id, created_at)"
                     " VALUES (?,?,?,?,?)" + returning_id(db), [*scope, owner_id, ts()])
    db.execute("INSERT INTO project_members (project_id, platform_id, deployment_id, context_id, user_id, member_role)"
               " VALUES (?,?,?,?,?,'owner')", [cur.lastrowid, *scope, owner_id])
    return cur.lastrowid


def update_project(db, project_id, title: str, country: str) -> None:
    db.execute("UPDATE projects SET title = ?, country = ? WHERE id = ?", [title, country, project_id])


def members(db, project_id) -> list[dict]:
    return [dict(r) for r in db.query(
        "SELECT m.user_id, m.member_role, COALESCE(r.name, '') AS name, COALESCE(r.role, 'learner') AS role"
        " FROM project_members m LEFT JOIN roster r ON r.platform_id = m.platform_id AND"
        " r.deployment_id = m.deployment_id AND r.context_id = m.context_id AND r.user_id = m.user_id"
        " WHERE m.project_id = ? ORDER BY m.member_role DESC, name", [project_id])]


def memberships(db, scope) -> dict:
    return {r["user_id"]: r["project_id"] for r in db.query(
        f"SELECT user_id, project_id FROM project_members WHERE {SCOPE}", list(scope))}


def set_coauthors(db, scope, project_id, user_ids) -> None:
    db.execute("DELETE FROM project_members WHERE project_id = ? AND member_role = 'coauthor'", [project_id])
    for uid in user_ids:
        try:
            db.execute("INSERT INTO project_members (project_id, platform_id, deployment_id, context_id, user_id,"
                       " member_role) VALUES (?,?,?,?,?,'coauthor')", [project_id, *scope, uid])
        except IntegrityError:
            raise ValueError(f"User {uid} joined another project meanwhile.") from None


# --- submissions, versions, feedback ----------------------------------------------------------
def _decode(row):
    if row is None:
        return None
    row = dict(row)
    row["data"] = json.loads(row["data"])
    row["rubric"] = json.loads(row["rubric"]) if row.get("rubric") else None
    return row


def submission(db, project_id, stage) -> dict | None:
    return _decode(_one(db, "SELECT * FROM submissions WHERE project_id = ? AND stage = ?", [project_id, stage]))


def submissions(db, project_id) -> dict:
    return {r["stage"]: _decode(r) for r in db.query("SELECT * FROM submissions WHERE project_id = ?", [project_id])}


def save_submission(db, project_id, stage, *, status, attempt, data, actor, submitted_at=None, late=None) -> int:
    db.execute("INSERT INTO submissions (project_id, stage, status, attempt, data, submitted_at, late, updated_at,"
               " updated_by) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (project_id, stage) DO UPDATE SET"
               " status = excluded.status, attempt = excluded.attempt, data = excluded.data,"
               " submitted_at = COALESCE(excluded.submitted_at, submissions.submitted_at),"
               " late = CASE WHEN excluded.submitted_at IS NULL THEN submissions.late ELSE excluded.late END,"
               " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
               [project_id, stage, status, attempt, json.dumps(data), submitted_at, int(bool(late)), ts(), actor])
    return submission(db, project_id, stage)["id"]


def set_review(db, submission_id, actor, **fields) -> None:
    """Update status, grade, rubric, feedback or marking_state of a submission."""
    if "rubric" in fields and fields["rubric"] is not None:
        fields["rubric"] = json.dumps(fields["rubric"])
    sets = ", ".join(f"{k} = ?" for k in fields)
    db.execute(f"UPDATE submissions SET {sets}, updated_at = ?, updated_by = ? WHERE id = ?",
               [*fields.values(), ts(), actor, submission_id])


def add_version(db, submission_id, attempt, data, files, actor, late) -> None:
    db.execute("INSERT INTO versions (submission_id, attempt, data, files, submitted_by, submitted_at, late)"
               " VALUES (?,?,?,?,?,?,?)", [submission_id, attempt, json.dumps(data), json.dumps(files), actor,
                                            ts(), int(bool(late))])


def versions(db, submission_id) -> list[dict]:
    return [dict(r, data=json.loads(r["data"]), files=json.loads(r["files"])) for r in db.query(
        "SELECT * FROM versions WHERE submission_id = ? ORDER BY id DESC", [submission_id])]


def add_feedback(db, submission_id, attempt, author_id, author_name, kind, text, grade=None, released=True) -> None:
    db.execute("INSERT INTO feedback (submission_id, attempt, author_id, author_name, kind, text, grade, released,"
               " created_at) VALUES (?,?,?,?,?,?,?,?,?)",
               [submission_id, attempt, author_id, author_name, kind, text, grade, int(released), ts()])


def release_feedback(db, submission_id) -> None:
    db.execute("UPDATE feedback SET released = 1 WHERE submission_id = ? AND released = 0", [submission_id])


def feedback(db, submission_id, released_only: bool) -> list[dict]:
    extra = " AND released = 1" if released_only else ""
    return [dict(r) for r in db.query(f"SELECT * FROM feedback WHERE submission_id = ?{extra} ORDER BY id DESC",
                                      [submission_id])]


# --- attachments -------------------------------------------------------------------------------
def add_attachment(db, project_id, stage, field, storage_name, display_name, kind, size, actor) -> int:
    return db.execute("INSERT INTO attachments (project_id, stage, field, storage_name, display_name, kind, size,"
                      " uploaded_by, created_at) VALUES (?,?,?,?,?,?,?,?,?)" + returning_id(db),
                      [project_id, stage, field, storage_name, display_name, kind, size, actor, ts()]).lastrowid


def attachment(db, attachment_id) -> dict | None:
    return _one(db, "SELECT a.*, p.platform_id, p.deployment_id, p.context_id FROM attachments a"
                    " JOIN projects p ON p.id = a.project_id WHERE a.id = ?", [attachment_id])


def attachments(db, project_id, stage) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM attachments WHERE project_id = ? AND stage = ? ORDER BY id",
                                      [project_id, stage])]


# --- deadlines, extensions, rubric ---------------------------------------------------------------
def set_deadline(db, scope, stage, due_at, cutoff_at) -> None:
    db.execute("INSERT INTO deadlines (platform_id, deployment_id, context_id, stage, due_at, cutoff_at)"
               " VALUES (?,?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id, stage) DO UPDATE SET due_at = excluded.due_at, cutoff_at = excluded.cutoff_at",
               [*scope, stage, due_at, cutoff_at])


def deadlines(db, scope) -> dict:
    return {r["stage"]: dict(r) for r in db.query(f"SELECT * FROM deadlines WHERE {SCOPE}", list(scope))}


def set_extension(db, scope, stage, subject, until_at, actor) -> None:
    db.execute("INSERT INTO extensions (platform_id, deployment_id, context_id, stage, subject, until_at, granted_by,"
               " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id, stage, subject) DO UPDATE SET until_at = excluded.until_at,"
               " granted_by = excluded.granted_by, created_at = excluded.created_at",
               [*scope, stage, subject, until_at, actor, ts()])


def extensions_for(db, scope, stage, subjects) -> list[str]:
    marks = ",".join("?" * len(subjects))
    return [r["until_at"] for r in db.query(f"SELECT until_at FROM extensions WHERE {SCOPE} AND stage = ?"
                                            f" AND subject IN ({marks})", [*scope, stage, *subjects])]


def list_extensions(db, scope) -> list[dict]:
    """Extensions with who they cover by name: the learner's, or the group's project title."""
    return [dict(r) for r in db.query(
        "SELECT e.*, COALESCE(r.name, '') AS learner_name, p.title AS project_title, p.id AS project_id,"
        " COALESCE(g.name, '') AS granted_by_name FROM extensions e"
        " LEFT JOIN roster r ON r.platform_id = e.platform_id AND r.deployment_id = e.deployment_id"
        "  AND r.context_id = e.context_id AND e.subject = 'user:' || r.user_id"
        " LEFT JOIN projects p ON e.subject = 'project:' || p.id"
        " LEFT JOIN roster g ON g.platform_id = e.platform_id AND g.deployment_id = e.deployment_id"
        "  AND g.context_id = e.context_id AND g.user_id = e.granted_by"
        " WHERE e.platform_id = ? AND e.deployment_id = ? AND e.context_id = ? ORDER BY e.stage, e.subject",
        list(scope))]


def rubric_data(db, scope) -> dict | None:
    row = _one(db, f"SELECT data FROM rubrics WHERE {SCOPE}", list(scope))
    return json.loads(row["data"]) if row else None


def stage_rubric_data(db, scope, stage) -> dict | None:
    row = _one(db, f"SELECT data FROM stage_rubrics WHERE {SCOPE} AND stage = ?", [*scope, stage])
    return json.loads(row["data"]) if row else None


def set_stage_rubric(db, scope, stage, data: dict | None) -> None:
    """Store a stage's own rubric; None removes it, so the stage uses the course default again."""
    if data is None:
        db.execute(f"DELETE FROM stage_rubrics WHERE {SCOPE} AND stage = ?", [*scope, stage])
        return
    db.execute("INSERT INTO stage_rubrics (platform_id, deployment_id, context_id, stage, data, updated_at)"
               " VALUES (?,?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id, stage) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
               [*scope, stage, json.dumps(data), ts()])


def stage_rubric_keys(db, scope) -> set[str]:
    return {r["stage"] for r in db.query(f"SELECT stage FROM stage_rubrics WHERE {SCOPE}", list(scope))}


def set_rubric(db, scope, data: dict) -> None:
    db.execute("INSERT INTO rubrics (platform_id, deployment_id, context_id, data, updated_at) VALUES (?,?,?,?,?)"
               " ON CONFLICT (platform_id, deployment_id, context_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
               [*scope, json.dumps(data), ts()])


# --- score clock and audit -----------------------------------------------------------------------
def last_score_ts(db, platform_id, context_id, resource_id, user_id) -> str | None:
    row = _one(db, "SELECT last_ts FROM score_clock WHERE platform_id = ? AND context_id = ? AND resource_id = ?"
                   " AND user_id = ?", [platform_id, context_id, resource_id, user_id])
    return row["last_ts"] if row else None


def set_score_ts(db, platform_id, context_id, resource_id, user_id, value: str) -> None:
    db.execute("INSERT INTO score_clock VALUES (?,?,?,?,?) ON CONFLICT (platform_id, context_id, resource_id, user_id) DO UPDATE SET last_ts = excluded.last_ts",
               [platform_id, context_id, resource_id, user_id, value])


def audit(db, scope, actor, action, *, project_id=None, stage=None, **detail) -> None:
    db.execute("INSERT INTO audit (platform_id, deployment_id, context_id, project_id, stage, actor_id, action,"
               " detail, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
               [*scope, project_id, stage, actor, action, json.dumps(detail, default=str), ts()])


def audit_trail(db, scope, project_id=None, limit=500, before: int | None = None) -> list[dict]:
    """Newest first (older than entry `before` when given), with the actor's name and the project's title."""
    extra, params = ("AND a.project_id = ?", [project_id]) if project_id is not None else ("", [])
    if before is not None:
        extra, params = extra + " AND a.id < ?", [*params, before]
    return [dict(r, detail=json.loads(r["detail"])) for r in db.query(
        "SELECT a.*, COALESCE(r.name, '') AS actor_name, p.title AS project_title FROM audit a"
        " LEFT JOIN roster r ON r.platform_id = a.platform_id AND r.deployment_id = a.deployment_id"
        "  AND r.context_id = a.context_id AND r.user_id = a.actor_id"
        " LEFT JOIN projects p ON p.id = a.project_id"
        f" WHERE a.platform_id = ? AND a.deployment_id = ? AND a.context_id = ? {extra}"
        " ORDER BY a.id DESC LIMIT ?", [*scope, *params, limit])]


def names(db, scope) -> dict:
    """user id -> name for everyone on the course roster (names instead of ids on staff pages)."""
    return {r["user_id"]: r["name"] for r in db.query(f"SELECT user_id, name FROM roster WHERE {SCOPE}", list(scope))}


def review_queue(db, scope, stage) -> list[dict]:
    """Projects with something saved for `stage`, in the dashboard's order: the review page's previous/next."""
    return [dict(r) for r in db.query(
        "SELECT p.id AS project_id, COALESCE(r.name, '') AS name, p.owner_id FROM submissions s"
        " JOIN projects p ON p.id = s.project_id"
        " LEFT JOIN roster r ON r.platform_id = p.platform_id AND r.deployment_id = p.deployment_id"
        "  AND r.context_id = p.context_id AND r.user_id = p.owner_id"
        " WHERE s.stage = ? AND p.platform_id = ? AND p.deployment_id = ? AND p.context_id = ?"
        " ORDER BY name, p.owner_id", [stage, *scope])]


# --- facilitator dashboard: see db/dashboard.py (a page costs a page, not the course) ---------------
def dashboard(db, scope, stages, due: dict, now: str, **filters) -> tuple[list[dict], int, dict]:
    from .dashboard import dashboard as page

    return page(db, scope, stages, due, now, **filters)


def countries(db, scope) -> list[str]:
    from .dashboard import countries as listed

    return listed(db, scope)


def list_projects(db, scope) -> list[dict]:
    """Projects with more than one member: the groups an extension can cover."""
    return [dict(r) for r in db.query(
        "SELECT p.id, p.title, COUNT(m.user_id) AS size FROM projects p JOIN project_members m ON m.project_id = p.id"
        " WHERE p.platform_id = ? AND p.deployment_id = ? AND p.context_id = ? GROUP BY p.id, p.title HAVING COUNT(m.user_id) > 1"
        " ORDER BY p.title, p.id", list(scope))]
