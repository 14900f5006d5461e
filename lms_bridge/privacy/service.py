"""Export everything the tool holds about one person, erase it, and remove finished courses' data.

A person is an LMS user on an LMS site: (issuer, sub). Grades already delivered stay in the LMS, which is
the record of truth; erasing here does not reach into the LMS.
"""
from __future__ import annotations

import json
import shutil
from datetime import timedelta
from html import escape
from pathlib import Path

from ..db import parse_ts, ts, utcnow, write_transaction
from ..db import privacy as q
from ..errors import NotFound

LMS_NOTE = ("Grades, completion and messages already delivered to the LMS stay there: the LMS is the record of "
            "truth. Ask its administrators (Moodle: Site administration › Users › Privacy and policies › "
            "Data requests) to export or delete them.")


def _platforms(db, issuer: str) -> list[int]:
    pids = q.site_platforms(db, issuer)
    if not pids:
        raise NotFound(f"No LMS with issuer {issuer!r} is registered.")
    return pids


def collect(db, issuer: str, sub: str) -> dict:
    """Every area's rows about the person, plus their projects with everything in them."""
    pids = _platforms(db, issuer)
    areas: dict[str, list] = {}
    for spec in q.PERSONAL:
        if spec.erase == "projects":
            continue
        rows = q.rows_of(db, spec, pids, sub)
        for row in rows:
            for key in ("claims", "payload", "data", "detail", "availability", "rubric"):
                if isinstance(row.get(key), str) and row[key][:1] in "{[":
                    row[key] = json.loads(row[key])
        if rows:
            areas.setdefault(spec.area, []).extend({"table": spec.table, **r} for r in rows)
    areas["projects"] = q.person_projects(db, pids, sub)
    return {"issuer": issuer, "user": sub, "exported_at": ts(), "note": LMS_NOTE, "areas": areas}


def export(db, issuer: str, sub: str, out: Path, data_dir: str) -> dict:
    """JSON per area, the person's uploaded files, and a readable summary.html, written into `out`."""
    data = collect(db, issuer, sub)
    out.mkdir(parents=True, exist_ok=True)
    files_dir = out / "files"
    copied = []
    for project in data["areas"]["projects"]:
        for att in project["attachments"]:
            src = Path(data_dir) / "uploads" / att["storage_name"]
            if src.is_file():
                files_dir.mkdir(exist_ok=True)
                target = files_dir / f"{att['id']}-{Path(att['display_name']).name}"
                shutil.copyfile(src, target)
                copied.append(target.name)
    for area, rows in data["areas"].items():
        (out / f"{area}.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
    (out / "summary.html").write_text(_summary_html(data, copied), encoding="utf-8")
    return {"areas": {a: len(r) for a, r in data["areas"].items()}, "files": len(copied), "out": str(out)}


def _summary_html(data: dict, files: list[str]) -> str:
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>Personal data export</title>"
             f"<h1>What lms_bridge holds about user {escape(data['user'])}</h1>"
             f"<p>LMS site: {escape(data['issuer'])}. Exported {escape(data['exported_at'])}.</p>"
             f"<p>{escape(data['note'])}</p>"]
    for area, rows in data["areas"].items():
        parts.append(f"<h2>{escape(area.replace('_', ' ').capitalize())} ({len(rows)})</h2>"
                     f"<p>In <code>{escape(area)}.json</code>.</p>")
        if area == "projects":
            for p in rows:
                parts.append(f"<h3>{escape(p['project']['title'] or 'Untitled project')}</h3><ul>")
                for s in p["submissions"]:
                    parts.append(f"<li>{escape(s['stage'])}: {escape(s['status'])}</li>")
                parts.append("</ul>")
    if files:
        parts.append("<h2>Files</h2><ul>" + "".join(f"<li>files/{escape(f)}</li>" for f in files) + "</ul>")
    return "\n".join(parts) + "</html>"


def erase(db, issuer: str, sub: str, data_dir: str) -> dict:
    """Delete or anonymise the person everywhere, in one transaction; files go once it committed."""
    from ..practices import service as library

    pids = _platforms(db, issuer)
    with write_transaction(db):
        group_projects = [p["project"]["id"] for p in q.person_projects(db, pids, sub) if len(p["members"]) > 1]
        counts, files = q.erase_projects(db, pids, sub)
        for spec in q.PERSONAL:
            if spec.erase != "projects":
                n = q.apply_erase(db, spec, pids, sub)
                if n:
                    counts[f"{spec.table} ({'deleted' if spec.erase == 'delete' else 'anonymised'})"] = n
        for project_id in group_projects:  # the group's consent changed without this member
            entry = library.q.entry_for_project(db, project_id)
            if entry:
                library._refresh(db, entry)
    for name in files:
        (Path(data_dir) / "uploads" / name).unlink(missing_ok=True)
    counts["files_removed"] = len(files)
    return {"issuer": issuer, "user": sub, "done": counts, "note": LMS_NOTE}


def retention_plan(db, days: int, now=None) -> list[dict]:
    """Courses whose last activity is older than `days`: what the next retention pass removes."""
    before = ts((now or utcnow()) - timedelta(days=days))
    plan = []
    for course in q.courses_inactive_since(db, before):
        scope = (course["platform_id"], course["deployment_id"], course["context_id"])
        plan.append({**course, "counts": q.course_counts(db, scope)})
    return plan


def apply_retention(db, days: int, data_dir: str, now=None) -> list[dict]:
    done, files = [], []
    with write_transaction(db):
        for course in retention_plan(db, days, now):
            scope = (course["platform_id"], course["deployment_id"], course["context_id"])
            counts, course_files = q.purge_course(db, scope)
            files += course_files
            done.append({"course": list(scope), "last_activity": course["last_activity"], "removed": counts})
        q.record_run(db, "retention", {"courses": len(done)})
    for name in files:
        (Path(data_dir) / "uploads" / name).unlink(missing_ok=True)
    return done


def retention_due(db, now=None) -> bool:
    """Once a day is enough: the worker asks before each pass."""
    last = q.last_run(db, "retention")
    return last is None or parse_ts(last["ran_at"]) < (now or utcnow()) - timedelta(days=1)


def retention_pass(app) -> list[dict] | None:
    """The worker's daily retention run: removes what expired, at most once a day."""
    from ..db import connect

    db = connect(app.config["DATABASE_URL"])
    try:
        if not retention_due(db):
            return None
        return apply_retention(db, int(app.config["RETENTION_DAYS"]), app.config["DATA_DIR"])
    finally:
        db.close()
