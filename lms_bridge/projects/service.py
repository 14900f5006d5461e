"""Learner use-cases: open a workspace, save or submit a stage with attachments, choose co-authors.

Each one combines the database, the domain rules and the outbox in one write transaction.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from ..db import parse_ts, ts, utcnow, write_transaction
from ..db import projects as q
from ..db import sync as sync_cache
from ..errors import NotAuthorized, NotFound
from ..i18n import _
from ..lti import AGS_CLAIM, CLAIM, NRPS_CLAIM
from . import deadlines as dl
from . import display, forms, groups, uploads, workflow
from .stages import STAGES, get_stage

# stage -> {upload field: allowed kinds}; the plan's annex sits outside the plan form schema
ATTACHMENT_FIELDS = {
    "project_plan": {"annex": uploads.DOCUMENTS | uploads.IMAGES},
    "project_report": {"attachment": uploads.DOCUMENTS},
    "final_presentation": {"slides": uploads.SLIDES},
}
SUBMITTED_STATES = (workflow.SUBMITTED, workflow.APPROVED, workflow.GRADED)
EXT_CLAIM = CLAIM + "ext"  # Moodle's extension claim: user_username


@dataclass
class Upload:
    field: str
    filename: str
    stream: object


def lineitem_trusted(url, ags: dict) -> bool:
    """The activity's own column (AGS `lineitem`): kept only when it sits beside the course's `lineitems`."""
    lineitems = ags.get("lineitems") if isinstance(ags, dict) else None
    if not isinstance(url, str) or not isinstance(lineitems, str):
        return False
    a, b = urlsplit(url), urlsplit(lineitems)
    return a.scheme in ("http", "https") and (a.scheme, a.netloc) == (b.scheme, b.netloc)


def record_launch(db, launch) -> None:
    """Keep the roster, the AGS/NRPS URLs and the activity -> resource link map current."""
    ags = launch.claims.get(AGS_CLAIM) or {}
    nrps = launch.claims.get(NRPS_CLAIM) or {}
    activity = launch.activity if launch.message_type == "LtiResourceLinkRequest" else None
    lineitem = ags.get("lineitem") if isinstance(ags, dict) else None
    if launch.resource_link_id and lineitem_trusted(lineitem, ags):
        sync_cache.remember_link_lineitem(db, launch.platform_id, launch.context_id, launch.resource_link_id,
                                          launch.activity, lineitem)
    username = (launch.claims.get(EXT_CLAIM) or {}).get("user_username") or ""
    member, links = q.roster_member(db, launch.scope, launch.user_id), q.course_links(db, launch.scope)
    if (member and member["role"] == launch.role and member["name"] == (launch.user_name or member["name"])
            and member["active"] and member["username"] == (username or member["username"])
            and links["lineitems_url"] == (ags.get("lineitems") or links["lineitems_url"])
            and links["memberships_url"] == (nrps.get("context_memberships_url") or links["memberships_url"])
            and (not activity or links["links"].get(activity) == launch.resource_link_id)):
        return  # nothing new: keep page views read-only
    with write_transaction(db):
        q.upsert_member(db, launch.scope, launch.user_id, launch.user_name, launch.user_email, launch.role,
                        from_launch=True, username=username)
        q.save_course_links(db, launch.scope, lineitems_url=ags.get("lineitems"),
                            memberships_url=nrps.get("context_memberships_url"),
                            activity=activity, resource_link_id=launch.resource_link_id)


def deadline_for(db, scope, stage: str, project_id, user_id) -> tuple[dl.Deadline | None, datetime | None]:
    """The course deadline of a stage and the most generous extension for this learner or group."""
    row = q.deadlines(db, scope).get(stage)
    if not row:
        return None, None
    subjects = [f"user:{user_id}"] + ([f"project:{project_id}"] if project_id else [])
    ext = dl.latest_extension(*(parse_ts(v) for v in q.extensions_for(db, scope, stage, subjects)))
    return dl.Deadline(parse_ts(row["due_at"]), parse_ts(row["cutoff_at"])), ext


def workspace(db, launch, zone: str, now: datetime | None = None) -> dict:
    """Stages with status and dates in the learner's zone, and what is due next."""
    now = now or utcnow()
    project = q.project_of(db, launch.scope, launch.user_id)
    subs = q.submissions(db, project["id"]) if project else {}
    rows, due_next = [], None
    for key, stage in STAGES.items():
        sub = subs.get(key)
        deadline, ext = deadline_for(db, launch.scope, key, project and project["id"], launch.user_id)
        status = learner_status(sub)
        released = sub is not None and sub["grade"] is not None and workflow.grade_visible_to_learner(
            sub["marking_state"])
        row = {"key": key, "title": stage.title, "description": stage.description, "status": status,
               "status_label": workflow.STATUS_LABELS[status], "attempt": sub["attempt"] if sub else 1,
               "due": None, "cutoff": None, "state": None, "graded": stage.graded,
               "grade": sub["grade"] if released else None, "grade_max": (sub["grade_max"] or 100) if released else None}
        if deadline:
            eff = dl.effective_deadline(deadline, ext)
            row.update(due=display.when(eff.due_utc, zone),
                       cutoff=display.when(eff.cutoff_utc, zone) if eff.cutoff_utc else None,
                       state=dl.submission_state(deadline, now, ext), extended=ext is not None)
            if status not in SUBMITTED_STATES and eff.due_utc >= now and (
                    due_next is None or eff.due_utc < due_next[0]):
                due_next = (eff.due_utc, row)
        rows.append(row)
    return {"project": project, "stages": rows, "due_next": due_next[1] if due_next else None,
            "members": q.members(db, project["id"]) if project else []}


def learner_project(db, launch, create: bool = False) -> dict | None:
    project = q.project_of(db, launch.scope, launch.user_id)
    if project is None and create:
        if launch.is_staff:
            raise NotAuthorized(_("Course staff do not own projects; open the facilitator dashboard instead."))
        q.create_project(db, launch.scope, launch.user_id)
        project = q.project_of(db, launch.scope, launch.user_id)
    return project


def _store(data_dir: str, kind: str, stream) -> tuple[str, int]:
    folder = Path(data_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    name = uploads.storage_name(kind)
    stream.seek(0)
    blob = stream.read()
    (folder / name).write_bytes(blob)
    return name, len(blob)


def upload_path(data_dir: str, storage_name: str) -> Path:
    return Path(data_dir) / "uploads" / storage_name


def save_stage(db, launch, stage: str, form_data: dict, files: list[Upload], *, submit: bool, data_dir: str,
               max_bytes: int, now: datetime | None = None, check_submit: bool = False) -> dict:
    """Save a draft or submit. Refusals (FormInvalid, UploadRejected, SubmissionClosed,
    InvalidTransition) are raised before anything is written, so a refusal changes nothing.

    `check_submit` saves a draft only if it could be submitted now (complete, before the cut-off): the
    step before the learner confirms the submission."""
    get_stage(stage)
    now = now or utcnow()
    allowed = ATTACHMENT_FIELDS.get(stage, {})
    checked = []
    for up in files:
        if up.field not in allowed:
            continue
        kind = uploads.check_upload(up.filename, up.stream, allowed_kinds=tuple(sorted(allowed[up.field])),
                                    max_bytes=max_bytes)
        checked.append((up, kind))
    stored: list[str] = []
    try:
        with write_transaction(db):
            project = learner_project(db, launch, create=True)
            sub = q.submission(db, project["id"], stage)
            previous = sub["data"] if sub else {}
            state = workflow.StageState(sub["status"], sub["attempt"]) if sub else workflow.StageState()
            if get_stage(stage).repeatable and state.status in (workflow.SUBMITTED, workflow.APPROVED):
                state = workflow.StageState(workflow.RETURNED, state.attempt)  # each update is a new attempt
            new_state = workflow.apply(state, "submit" if submit else "save_draft", workflow.LEARNER, stage=stage)
            data = dict(form_data)
            for field in allowed:
                data.setdefault(field, previous.get(field, ""))
            late = False
            if submit or check_submit:
                deadline, ext = deadline_for(db, launch.scope, stage, project["id"], launch.user_id)
                if deadline:
                    dl.check_can_submit(deadline, now, ext, zone=launch.timezone or "UTC")
                    late = dl.is_late(deadline, now, ext)
            attached = []
            for up, kind in checked:
                name, size = _store(data_dir, kind, up.stream)
                stored.append(name)
                display = uploads.safe_display_name(up.filename)
                att_id = q.add_attachment(db, project["id"], stage, up.field, name, display, kind, size, launch.user_id)
                data[up.field] = str(att_id)
                attached.append({"id": att_id, "name": display})
            cleaned = forms.clean(stage, data, for_submit=submit or check_submit) if stage in forms.FORMS else {}
            for field in allowed:
                cleaned[field] = data.get(field, "")
            sub_id = q.save_submission(db, project["id"], stage, status=new_state.status, attempt=new_state.attempt,
                                       data=cleaned, actor=launch.user_id,
                                       submitted_at=ts(now) if submit else None, late=late)
            if stage == "project_plan":
                q.update_project(db, project["id"], cleaned.get("title", ""), cleaned.get("country", ""))
            if submit:
                files_now = [{"field": f, "id": cleaned[f]} for f in allowed if cleaned.get(f)]
                q.add_version(db, sub_id, new_state.attempt, cleaned, files_now, launch.user_id, late)
            if submit and stage == "project_report" and cleaned.get("library_consent"):
                from ..i18n import current_locale
                from ..practices.service import record_consent

                record_consent(db, launch, project["id"], cleaned["library_consent"], current_locale())
            q.audit(db, launch.scope, launch.user_id, "submit" if submit else "save_draft", project_id=project["id"],
                    stage=stage, status=new_state.status, attempt=new_state.attempt, late=late, files=attached)
    except BaseException:
        for name in stored:
            upload_path(data_dir, name).unlink(missing_ok=True)
        raise
    return {"status": new_state.status, "attempt": new_state.attempt, "late": late, "project_id": project["id"]}


def set_group(db, launch, coauthor_ids: list[str]) -> tuple:
    """The owner chooses co-authors from the course roster; InvalidGroup lists every problem."""
    with write_transaction(db):
        project = learner_project(db, launch, create=True)
        if project["owner_id"] != launch.user_id:
            raise NotAuthorized(_("Only the project's owner can change its group."))
        plan = q.submission(db, project["id"], "project_plan")
        roster = q.roster_roles(db, launch.scope)
        names = {r["user_id"]: r["name"] for r in q.roster_learners(db, launch.scope)}
        chosen = groups.validate_group(launch.user_id, coauthor_ids, roster, q.memberships(db, launch.scope),
                                       plan["status"] if plan else None, project_id=project["id"], names=names)
        q.set_coauthors(db, launch.scope, project["id"], chosen)
        q.audit(db, launch.scope, launch.user_id, "set_group", project_id=project["id"], coauthors=list(chosen))
    return chosen


def readable_attachment(db, launch, attachment_id: int, data_dir: str) -> tuple[dict, Path]:
    """The file when this launch may see it: staff of the course or a member of the project."""
    att = q.attachment(db, attachment_id)
    if att is None or (att["platform_id"], att["deployment_id"], att["context_id"]) != launch.scope:
        raise NotFound(_("No such file in this course."))
    if not launch.is_staff:
        project = q.project_of(db, launch.scope, launch.user_id)
        if project is None or project["id"] != att["project_id"]:
            raise NotAuthorized(_("This file belongs to another learner's project."))
    path = upload_path(data_dir, att["storage_name"])
    if not path.is_file() or os.path.islink(path):
        raise NotFound(_("The file is no longer stored."))
    return att, path


def history(db, project_id: int, stage: str, *, staff: bool) -> dict:
    """Every submitted version and every piece of feedback; unreleased grades only for staff."""
    sub = q.submission(db, project_id, stage)
    if not sub:
        return {"submission": None, "versions": [], "feedback": [], "attachments": {}}
    fb = q.feedback(db, sub["id"], released_only=not staff)
    atts = {str(a["id"]): a for a in q.attachments(db, project_id, stage)}
    return {"submission": sub, "versions": q.versions(db, sub["id"]), "feedback": fb, "attachments": atts}


def learner_status(sub: dict | None) -> str:
    """The status a learner sees: a grade still in marking reads as submitted until it is released."""
    if not sub:
        return workflow.NOT_STARTED
    if sub["status"] == workflow.GRADED and not workflow.grade_visible_to_learner(sub["marking_state"]):
        return workflow.SUBMITTED
    return sub["status"]


def learner_feedback(sub: dict | None, feedback: list[dict]) -> dict | None:
    """What the top of a learner's stage page says about the review: the reason for a return, the
    approval, or the released grade with the level chosen per rubric criterion. None before any review."""
    status = learner_status(sub)
    if status in (workflow.NOT_STARTED, workflow.DRAFT, workflow.SUBMITTED):
        return None
    wanted = {workflow.RETURNED: "returned", workflow.APPROVED: "approved", workflow.GRADED: "graded"}[status]
    latest = next((f for f in feedback if f["kind"] == wanted), None)
    out = {"status": status, "text": latest["text"] if latest else "", "at": latest and latest["created_at"],
           "author": latest and (latest["author_name"] or ""), "grade": None, "criteria": []}
    if status == workflow.GRADED:
        from . import rubric as rb

        marks = sub["rubric"] or {}
        out.update(grade=sub["grade"], grade_max=sub["grade_max"] or 100, text=sub["feedback"] or out["text"],
                   points=marks.get("points"), max_points=marks.get("max"))
        if marks.get("rubric"):
            try:
                out["criteria"] = rb.chosen_levels(rb.from_dict(marks["rubric"]), marks.get("selections") or {})
            except rb.InvalidRubric:
                out["criteria"] = []
    return out
