"""The facilitator dashboard at the cost of one page, whatever the course size.

`dash_facets` holds, per active learner, one row per thing a page can be filtered on: the person
(stage '' facet ''), then per stage its status ('not_started' when there is no submission), 'late' and
'unsubmitted' (never submitted: what 'missing' is made of). Triggers on roster, project_members,
projects and submissions keep it and the per-country counters in `dash_counts` up to date, so every
write path stays right without calling anything. A page is a keyset walk of one index, then the full
grid of only the rows on it; the counts are read from `dash_counts`, and 'missing' (which depends on the
time and on extensions) is the unsubmitted count corrected for the few participants with an extension.
"""
from __future__ import annotations

import contextlib
import json
import re

from . import dialect, migration_set, write_transaction
from . import projects as _projects  # noqa: F401  (its tables come first: the triggers below watch them)
from .schema import ddl

migrations = migration_set("dashboard")
COUNTED = ("not_started", "draft", "submitted", "returned", "approved", "graded")
SCOPE = "platform_id = ? AND deployment_id = ? AND context_id = ?"

_PERSON = ("r.platform_id, r.deployment_id, r.context_id, r.user_id")


def _refresh(scope: tuple[str, str, str], users: str, pg: bool = False) -> str:
    """Trigger statements: drop the facets of the learners `users` selects (`= NEW.user_id`, `IN (...)`)
    in the course `scope` (three SQL expressions), then rebuild them from the tables. Every statement is
    a primary-key search of the few people concerned. `pg`: PostgreSQL's spelling (an explicit cross join,
    no unary `+`, which only steers SQLite's planner)."""
    p, d, c = scope
    people = f"r.platform_id = {p} AND r.deployment_id = {d} AND r.context_id = {c} AND r.user_id {users}"
    cells = ("FROM roster r LEFT JOIN project_members m ON m.platform_id = r.platform_id AND"
             " m.deployment_id = r.deployment_id AND m.context_id = r.context_id AND m.user_id = r.user_id"
             " LEFT JOIN projects p ON p.id = m.project_id")
    staged = (f"{cells} {'CROSS JOIN' if pg else 'JOIN'} dash_stages st LEFT JOIN submissions s"
              " ON s.project_id = m.project_id AND s.stage = st.stage")
    plus = "" if pg else "+"
    learner = f"{people} AND {plus}r.role = 'learner' AND {plus}r.active = 1"  # unary +: search by user, not role
    cols = "(platform_id, deployment_id, context_id, user_id, stage, facet, name, country)"
    country = "COALESCE(p.country, '')"
    return f"""
        DELETE FROM dash_facets WHERE platform_id = {p} AND deployment_id = {d} AND context_id = {c}
            AND user_id {users};
        INSERT INTO dash_facets {cols} SELECT {_PERSON}, '', '', r.name, {country} {cells} WHERE {learner};
        INSERT INTO dash_facets {cols} SELECT {_PERSON}, st.stage, COALESCE(s.status, 'not_started'), r.name,
            {country} {staged} WHERE {learner};
        INSERT INTO dash_facets {cols} SELECT {_PERSON}, st.stage, 'late', r.name, {country} {staged}
            WHERE {learner} AND s.late = 1;
        INSERT INTO dash_facets {cols} SELECT {_PERSON}, st.stage, 'unsubmitted', r.name, {country} {staged}
            WHERE {learner} AND s.submitted_at IS NULL;"""


def _one_person(ref: str) -> tuple[tuple[str, str, str], str]:
    return (f"{ref}.platform_id", f"{ref}.deployment_id", f"{ref}.context_id"), f"= {ref}.user_id"


def _project_members(ref: str) -> tuple[tuple[str, str, str], str]:
    """Every member of project `ref`: they share its course (read from the members, which outlive the
    project row for the length of a cascading delete)."""
    scope = tuple(f"(SELECT {col} FROM project_members WHERE project_id = {ref} LIMIT 1)"
                  for col in ("platform_id", "deployment_id", "context_id"))
    return scope, f"IN (SELECT user_id FROM project_members WHERE project_id = {ref})"


PG_COUNTS = """
CREATE FUNCTION dash_count_in() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO dash_counts (platform_id, deployment_id, context_id, country, stage, facet, n)
    VALUES (NEW.platform_id, NEW.deployment_id, NEW.context_id, NEW.country, NEW.stage, NEW.facet, 1)
    ON CONFLICT (platform_id, deployment_id, context_id, stage, facet, country) DO UPDATE SET n = dash_counts.n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER dash_count_in AFTER INSERT ON dash_facets FOR EACH ROW EXECUTE FUNCTION dash_count_in();
CREATE FUNCTION dash_count_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    UPDATE dash_counts SET n = n - 1 WHERE platform_id = OLD.platform_id AND deployment_id = OLD.deployment_id
    AND context_id = OLD.context_id AND stage = OLD.stage AND facet = OLD.facet AND country = OLD.country;
    RETURN NULL;
END $$;
CREATE TRIGGER dash_count_out AFTER DELETE ON dash_facets FOR EACH ROW EXECUTE FUNCTION dash_count_out();
"""


def _trigger(name: str, event: str, table: str, body: str, when: str = "") -> str:
    return f"CREATE TRIGGER {name} AFTER {event} ON {table} {('WHEN ' + when) if when else ''} BEGIN {body} END;"


@migrations()
def m001_dashboard_facets(db):
    ddl(db, """
    CREATE TABLE dash_stages (stage TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE dash_facets (
        platform_id INTEGER NOT NULL, deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        user_id TEXT NOT NULL, stage TEXT NOT NULL, facet TEXT NOT NULL,
        name TEXT NOT NULL, country TEXT NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, user_id, stage, facet)
    ) WITHOUT ROWID;
    CREATE INDEX dash_facets_page ON dash_facets(platform_id, deployment_id, context_id, stage, facet, name, user_id);
    CREATE INDEX dash_facets_country ON dash_facets(platform_id, deployment_id, context_id, stage, facet, country,
                                                    name, user_id);
    CREATE TABLE dash_counts (
        platform_id INTEGER NOT NULL, deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        country TEXT NOT NULL, stage TEXT NOT NULL, facet TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (platform_id, deployment_id, context_id, stage, facet, country)
    ) WITHOUT ROWID;
    CREATE TRIGGER dash_count_in AFTER INSERT ON dash_facets BEGIN
        INSERT INTO dash_counts (platform_id, deployment_id, context_id, country, stage, facet, n)
        VALUES (NEW.platform_id, NEW.deployment_id, NEW.context_id, NEW.country, NEW.stage, NEW.facet, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER dash_count_out AFTER DELETE ON dash_facets BEGIN
        UPDATE dash_counts SET n = n - 1 WHERE platform_id = OLD.platform_id AND deployment_id = OLD.deployment_id
        AND context_id = OLD.context_id AND stage = OLD.stage AND facet = OLD.facet AND country = OLD.country;
    END
    """, postgresql=PG_COUNTS)
    ddl(db, "\n".join(_triggers(pg=False)), postgresql="\n".join(_triggers(pg=True)))


def _pg_trigger(name: str, event: str, table: str, body: str, when: str = "") -> str:
    """PostgreSQL's form of `_trigger`: a PL/pgSQL function per trigger, run for each row."""
    when = re.sub(r" IS NOT (?!NULL)", " IS DISTINCT FROM ", when)
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$;"
            f" CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {('WHEN (' + when + ')') if when else ''}"
            f" EXECUTE FUNCTION {name}();")


def _triggers(pg: bool) -> list[str]:
    make = _pg_trigger if pg else _trigger
    new, old = _one_person("NEW"), _one_person("OLD")
    members_new, members_old = _project_members("NEW.project_id"), _project_members("OLD.project_id")
    return [
        make("dash_roster_in", "INSERT", "roster", _refresh(*new, pg=pg)),
        make("dash_roster_up", "UPDATE", "roster", _refresh(*old, pg=pg) + _refresh(*new, pg=pg),
             "OLD.name IS NOT NEW.name OR OLD.role IS NOT NEW.role OR OLD.active IS NOT NEW.active"
             " OR OLD.user_id IS NOT NEW.user_id"),
        make("dash_roster_out", "DELETE", "roster", _refresh(*old, pg=pg)),
        make("dash_member_in", "INSERT", "project_members", _refresh(*new, pg=pg)),
        make("dash_member_up", "UPDATE", "project_members", _refresh(*old, pg=pg) + _refresh(*new, pg=pg)),
        make("dash_member_out", "DELETE", "project_members", _refresh(*old, pg=pg)),
        make("dash_project_up", "UPDATE OF country", "projects", _refresh(*_project_members("NEW.id"), pg=pg),
             "OLD.country IS NOT NEW.country"),
        make("dash_submission_in", "INSERT", "submissions", _refresh(*members_new, pg=pg)),
        make("dash_submission_up", "UPDATE", "submissions", _refresh(*members_new, pg=pg),
             "OLD.status IS NOT NEW.status OR OLD.late IS NOT NEW.late OR OLD.stage IS NOT NEW.stage"
             " OR (OLD.submitted_at IS NULL) IS NOT (NEW.submitted_at IS NULL)"
             " OR OLD.project_id IS NOT NEW.project_id"),
        make("dash_submission_out", "DELETE", "submissions", _refresh(*members_old, pg=pg)),
    ]


def ensure_stages(db, stages) -> None:
    """The facets cover `stages`; when the stages change (or on first use), rebuild every course's facets."""
    have = [r[0] for r in db.execute("SELECT stage FROM dash_stages ORDER BY stage")]
    if have == sorted(stages):
        return
    with write_transaction(db):
        have = [r[0] for r in db.execute("SELECT stage FROM dash_stages ORDER BY stage")]
        if have == sorted(stages):
            return
        db.execute("DELETE FROM dash_stages")
        db.conn.executemany("INSERT INTO dash_stages (stage) VALUES (?)", [(s,) for s in stages])
        if dialect(db) == "postgresql":  # rebuilt with the counters counted once, not rewritten per facet row
            with bulk_load(db):
                pass
            return
        db.execute("DELETE FROM dash_facets")
        db.execute("DELETE FROM dash_counts")
        courses = db.execute("SELECT DISTINCT platform_id, deployment_id, context_id FROM roster").fetchall()
        for course in courses:
            for statement in _refresh(("?", "?", "?"), "IS NOT NULL", pg=dialect(db) == "postgresql").split(";"):
                if statement.strip():
                    db.execute(statement, list(course))


# The per-row triggers that keep the facets (on the tables they watch) and the counters (on dash_facets).
TRIGGERS = (("roster", "dash_roster_in"), ("roster", "dash_roster_up"), ("roster", "dash_roster_out"),
            ("project_members", "dash_member_in"), ("project_members", "dash_member_up"),
            ("project_members", "dash_member_out"), ("projects", "dash_project_up"),
            ("submissions", "dash_submission_in"), ("submissions", "dash_submission_up"),
            ("submissions", "dash_submission_out"), ("dash_facets", "dash_count_in"), ("dash_facets", "dash_count_out"))


@contextlib.contextmanager
def bulk_load(db):
    """Load many rows inside the caller's transaction (`lms-bridge db copy`). SQLite's triggers keep the facets as
    the rows arrive. On PostgreSQL they are off meanwhile: in one transaction every counter row would be rewritten
    thousands of times (each version kept until COMMIT, each update walking them all); the facets are then rebuilt
    per course by the triggers' own statements and the counters counted from them, in the same transaction."""
    if dialect(db) != "postgresql":
        yield
        return
    for table, name in TRIGGERS:
        db.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
    yield
    db.execute("DELETE FROM dash_facets")
    db.execute("DELETE FROM dash_counts")
    for course in db.execute("SELECT DISTINCT platform_id, deployment_id, context_id FROM roster").fetchall():
        for statement in _refresh(("?", "?", "?"), "IS NOT NULL", pg=True).split(";"):
            if statement.strip():
                db.execute(statement, list(course))
    db.execute("INSERT INTO dash_counts (platform_id, deployment_id, context_id, country, stage, facet, n)"
               " SELECT platform_id, deployment_id, context_id, country, stage, facet, count(*) FROM dash_facets"
               " GROUP BY platform_id, deployment_id, context_id, country, stage, facet")
    for table, name in TRIGGERS:
        db.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")


# --- one page --------------------------------------------------------------------------------------
def _grid_sql(stages, has_deadlines: dict, only: str = "", pg: bool = False) -> str:
    """The full grid (statuses, flags, grades per stage) for the learners `only` selects, or every one.
    `pg`: PostgreSQL groups by every column of `people` (it knows no key of a CTE); SQLite by the key."""
    cols = []
    for i, key in enumerate(stages):
        cols += [f"MAX(CASE WHEN s.stage = :s{i} THEN s.status END) AS status_{i}",
                 f"MAX(CASE WHEN s.stage = :s{i} THEN s.late END) AS late_{i}",
                 f"MAX(CASE WHEN s.stage = :s{i} THEN s.grade END) AS grade_{i}",
                 f"MAX(CASE WHEN s.stage = :s{i} THEN s.marking_state END) AS marking_{i}",
                 f"MAX(CASE WHEN s.stage = :s{i} THEN s.submitted_at END) AS submitted_{i}"]
    missing = []
    for i, key in enumerate(stages):
        if has_deadlines.get(key):
            missing.append(f"(g.submitted_{i} IS NULL AND :now > COALESCE({_extension(f':s{i}', 'g')}, :due{i}))"
                           f" AS missing_{i}")
        else:
            missing.append(f"0 AS missing_{i}")
    return f"""
    WITH people AS (
        SELECT r.user_id, r.name, r.email, r.username, m.project_id, m.member_role, COALESCE(p.country, '') AS country,
               COALESCE(p.title, '') AS title
        FROM roster r
        LEFT JOIN project_members m ON m.platform_id = r.platform_id AND m.deployment_id = r.deployment_id
             AND m.context_id = r.context_id AND m.user_id = r.user_id
        LEFT JOIN projects p ON p.id = m.project_id
        WHERE r.platform_id = :p AND r.deployment_id = :d AND r.context_id = :c AND r.role = 'learner'
              AND r.active = 1 {only}
    ), g AS (
        SELECT people.*, {', '.join(cols)}
        FROM people LEFT JOIN submissions s ON s.project_id = people.project_id
        GROUP BY {PEOPLE_COLUMNS if pg else 'people.user_id'}
    ), grid AS (
        SELECT g.*, {', '.join(missing)} FROM g
    )"""


PEOPLE_COLUMNS = ", ".join(f"people.{c}" for c in ("user_id", "name", "email", "username", "project_id",
                                                   "member_role", "country", "title"))


def _extension(stage: str, ref: str) -> str:
    """The latest extension of `ref`'s user or project for a stage (NULL without one)."""
    return (f"(SELECT MAX(e.until_at) FROM extensions e WHERE e.platform_id = :p AND e.deployment_id = :d"
            f" AND e.context_id = :c AND e.stage = {stage} AND e.subject IN ('user:' || {ref}.user_id,"
            f" 'project:' || {ref}.project_id))")


def _params(scope, stages, due: dict, now: str) -> dict:
    params = {"p": scope[0], "d": scope[1], "c": scope[2], "now": now}
    for i, key in enumerate(stages):
        params[f"s{i}"] = key
        if due.get(key):
            params[f"due{i}"] = due[key]
    return params


def grid(db, scope, stages, due: dict, now: str, user_ids=None) -> list[dict]:
    """Grid rows in name order: of `user_ids` only, or of the whole course (the CSV export)."""
    pg = dialect(db) == "postgresql"
    users = ("= ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(:users AS jsonb))))" if pg  # a probe of the key per id
             else "IN (SELECT value FROM json_each(:users))")
    only = f"AND r.user_id {users}" if user_ids is not None else ""
    params = _params(scope, stages, due, now)
    if user_ids is not None:
        params["users"] = json.dumps(list(user_ids))
    return [dict(r) for r in db.query(f"{_grid_sql(stages, due, only, pg)} SELECT * FROM grid ORDER BY name, user_id",
                                      params)]


def _counts(db, scope, stages, country) -> dict:
    where, params = (SCOPE + " AND country = ?", [*scope, country]) if country else (SCOPE, list(scope))
    found = {(r[0], r[1]): r[2] for r in db.execute(
        f"SELECT stage, facet, SUM(n) FROM dash_counts WHERE {where} GROUP BY stage, facet", params)}
    return found


def _extended(db, scope, stage: str, country, due: str, now: str) -> list[dict]:
    """Unsubmitted learners with an extension for `stage`: the only ones whose 'missing' differs from the
    stage's own deadline. As many as there are extensions, not as the course."""
    params = {"p": scope[0], "d": scope[1], "c": scope[2], "stage": stage, "due": due, "now": now,
              "country": country}
    return [dict(r) for r in db.query(
        "WITH subjects AS ("
        " SELECT substr(e.subject, 6) AS user_id FROM extensions e WHERE e.platform_id = :p AND e.deployment_id = :d"
        "  AND e.context_id = :c AND e.stage = :stage AND e.subject LIKE 'user:%'"
        " UNION SELECT m.user_id FROM extensions e JOIN project_members m ON m.project_id ="
        "  CAST(substr(e.subject, 9) AS INTEGER) WHERE e.platform_id = :p AND e.deployment_id = :d"
        "  AND e.context_id = :c AND e.stage = :stage AND e.subject LIKE 'project:%'"
        "), ext AS ("
        " SELECT f.user_id, f.name, m.project_id FROM subjects JOIN dash_facets f ON f.platform_id = :p"
        "  AND f.deployment_id = :d AND f.context_id = :c AND f.user_id = subjects.user_id AND f.stage = :stage"
        "  AND f.facet = 'unsubmitted' AND (CAST(:country AS TEXT) IS NULL OR f.country = :country)"
        " LEFT JOIN project_members m ON m.platform_id = :p AND m.deployment_id = :d AND m.context_id = :c"
        "  AND m.user_id = f.user_id"
        ") SELECT user_id, name, :now > COALESCE(" + _extension(":stage", "ext") + ", :due) AS missing FROM ext",
        params)]


def _page_keys(db, scope, stage: str, facet: str, country, *, after=None, before=None, offset=0,
               limit=100, missing_due=None, now=None) -> list[str]:
    """User ids of one page, walked in (name, user id) order on dash_facets_page / dash_facets_country."""
    where = [SCOPE.replace("platform_id", "f.platform_id").replace("deployment_id", "f.deployment_id")
             .replace("context_id", "f.context_id"), "f.stage = ?", "f.facet = ?"]
    params = [*scope, stage, facet]
    if country:
        where.append("f.country = ?")
        params.append(country)
    if missing_due is not None:  # the unsubmitted, less those an extension still covers
        project = ("(SELECT m.project_id FROM project_members m WHERE m.platform_id = f.platform_id"
                   " AND m.deployment_id = f.deployment_id AND m.context_id = f.context_id AND m.user_id = f.user_id)")
        where.append("? > COALESCE((SELECT MAX(e.until_at) FROM extensions e WHERE e.platform_id = f.platform_id"
                     " AND e.deployment_id = f.deployment_id AND e.context_id = f.context_id AND e.stage = f.stage"
                     f" AND e.subject IN ('user:' || f.user_id, 'project:' || {project})), ?)")
        params += [now, missing_due]
    order = "ASC"
    cursor = after or before
    if cursor:
        row = db.execute(f"SELECT name FROM dash_facets WHERE {SCOPE} AND user_id = ? AND stage = '' AND facet = ''",
                         [*scope, cursor]).fetchone()
        if row is not None:
            where.append("(f.name, f.user_id) " + (">" if after else "<") + " (?, ?)")
            params += [row[0], cursor]
            order = "ASC" if after else "DESC"
            offset = 0
    sql = (f"SELECT f.user_id FROM dash_facets f WHERE {' AND '.join(where)}"
           f" ORDER BY f.name {order}, f.user_id {order} LIMIT ? OFFSET ?")
    keys = [r[0] for r in db.execute(sql, [*params, limit, offset])]
    return keys[::-1] if order == "DESC" else keys


def dashboard(db, scope, stages, due: dict, now: str, *, stage=None, status=None, country=None,
              page=1, per_page=100, after=None, before=None) -> tuple[list[dict], int, dict]:
    """(rows of this page, total rows matching, counts[stage][status] over the country-filtered set).

    `due` maps stage -> due timestamp (UTC ISO) for the missing flag; status may be a workflow status or
    the flags 'late' / 'missing'. `after` / `before` (a user id on the previous page) page by keyset;
    `page` alone skips (page - 1) * per_page entries of the index.
    """
    ensure_stages(db, stages)
    found = _counts(db, scope, stages, country)
    counts = {"everyone": found.get(("", ""), 0)}
    extended = {}
    for key in stages:
        c = counts[key] = {st: found.get((key, st), 0) for st in COUNTED}
        c["late"] = found.get((key, "late"), 0)
        c["missing"] = 0
        if due.get(key):
            base = now > due[key]
            extended[key] = _extended(db, scope, key, country, due[key], now)
            c["missing"] = (found.get((key, "unsubmitted"), 0) if base else 0) + sum(
                int(bool(e["missing"])) - int(base) for e in extended[key])
    walk = {"country": country, "after": after, "before": before, "offset": (max(page, 1) - 1) * per_page,
            "limit": per_page}
    if stage in stages and status == "missing":
        total = counts[stage]["missing"]
        if not due.get(stage):
            keys = []
        elif now > due[stage]:
            keys = _page_keys(db, scope, stage, "unsubmitted", **walk, missing_due=due[stage], now=now)
        else:  # before the deadline only an expired extension makes someone missing: a short list
            late = sorted((e["name"], e["user_id"]) for e in extended[stage] if e["missing"])
            keys = [u for _n, u in _slice(late, walk)]
    elif stage in stages and status:
        keys = _page_keys(db, scope, stage, status, **walk)
        total = sum(n for (st, facet), n in found.items() if st == stage and facet == status)
    else:
        keys = _page_keys(db, scope, "", "", **walk)
        total = counts["everyone"]
    rows = grid(db, scope, stages, due, now, keys) if keys else []
    return rows, total, counts


def _slice(ordered: list[tuple[str, str]], walk: dict) -> list[tuple[str, str]]:
    """One page of an in-memory (name, user id) list, by the same cursor rules as `_page_keys`."""
    for cursor, forward in ((walk["after"], True), (walk["before"], False)):
        if cursor:
            at = next((i for i, (_n, u) in enumerate(ordered) if u == cursor), None)
            if at is not None:
                return ordered[at + 1:at + 1 + walk["limit"]] if forward else ordered[max(0, at - walk["limit"]):at]
    return ordered[walk["offset"]:walk["offset"] + walk["limit"]]


def countries(db, scope) -> list[str]:
    """Countries of the course's learners' projects, from the counters (not a walk of every project)."""
    return [r[0] for r in db.execute(
        f"SELECT DISTINCT country FROM dash_counts WHERE {SCOPE} AND stage = '' AND facet = '' AND n > 0"
        " AND country != '' ORDER BY country", list(scope))]
