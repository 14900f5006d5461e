"""Facilitator use-cases: review, grade with the course rubric, release to the gradebook, deadlines.

Releasing writes the marking state and the outbox jobs in one transaction, so a grade is never
released without its delivery queued, nor queued without being released.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..activities import CATALOGUE
from ..bounds import date_problem
from ..db import outbox, parse_ts, ts, utcnow, write_transaction
from ..db import projects as q
from ..errors import BridgeError, NotFound
from ..i18n import N_, _
from . import deadlines as dl
from . import rubric as rb
from . import workflow
from .display import when
from .stages import get_stage

SCORE_TAG = "lms_bridge_project"
STAFF = ("facilitator", "admin")


def course_rubric(db, scope, stage: str | None = None) -> rb.Rubric:
    """The rubric that marks `stage`: its own when the course saved one, else the course default
    (the course's edited default, or the built-in one)."""
    data = q.stage_rubric_data(db, scope, stage) if stage else None
    data = data or q.rubric_data(db, scope)
    return rb.from_dict(data) if data else rb.DEFAULT_RUBRIC


def save_rubric(db, launch, rubric: rb.Rubric | None, stage: str | None = None) -> rb.Rubric | None:
    """Store a rubric already built and validated (`rubric.from_draft` or `rubric.from_dict`): the course
    default without `stage`, else that stage's own (None: the stage follows the default again)."""
    with write_transaction(db):
        if stage:
            get_stage(stage)
            q.set_stage_rubric(db, launch.scope, stage, rb.to_dict(rubric) if rubric else None)
        else:
            q.set_rubric(db, launch.scope, rb.to_dict(rubric))
        q.audit(db, launch.scope, launch.user_id, "edit_rubric", stage=stage,
                criteria=[c.id for c in rubric.criteria] if rubric else None)
    return rubric


def _submission(db, launch, project_id: int, stage: str) -> tuple[dict, dict]:
    get_stage(stage)
    project = q.get_project(db, launch.scope, project_id)
    if project is None:
        raise NotFound(_("No such project in this course."))
    sub = q.submission(db, project_id, stage)
    if sub is None:
        raise NotFound(_("Nothing has been saved for this stage yet."))
    return project, sub


def _learners(db, scope, project_id) -> list[str]:
    """Members who get grades: staff accounts are never graded."""
    return [m["user_id"] for m in q.members(db, project_id) if m["role"] not in STAFF]


def _score_time(db, scope, resource_id: str, user_id: str) -> str:
    """Strictly increasing per user and line item, by a whole second (Moodle compares seconds)."""
    now = utcnow()
    last = parse_ts(q.last_score_ts(db, scope[0], scope[2], resource_id, user_id))
    if last is not None and now < last + timedelta(seconds=1):
        now = last + timedelta(seconds=1)
    stamp = ts(now)
    q.set_score_ts(db, scope[0], scope[2], resource_id, user_id, stamp)
    return stamp


def _tell(db, scope, users: list[str], text) -> None:
    """Each learner: a notice inside the tool always, a Moodle message when the site has web-service credentials."""
    from ..booking.service import notify

    for uid in users:
        notify(db, scope, uid, text)


def _completion_jobs(db, scope, stage: str, users: list[str]) -> None:
    link = q.course_links(db, scope)["links"].get(stage)
    if not link:
        return
    for uid in users:
        outbox.enqueue(db, platform_id=scope[0], kind="ws_completion",
                       payload={"course_id": scope[2], "deployment_id": scope[1], "lti_instance_id": link,
                                "user_id": uid, "completed": True},
                       dedupe_key=f"completion:{scope[0]}:{scope[2]}:{link}:{uid}")


def _score_jobs(db, scope, stage: str, sub: dict, users: list[str]) -> int:
    links = q.course_links(db, scope)
    label, maximum = CATALOGUE.get(stage, (get_stage(stage).title, 100))
    jobs = 0
    for uid in users:
        if links["lineitems_url"]:
            outbox.enqueue(db, platform_id=scope[0], kind="ags_score", payload={
                "deployment_id": scope[1], "lineitems_url": links["lineitems_url"], "resource_id": stage,
                "tag": SCORE_TAG, "label": label, "context_id": scope[2], "resource_link_id": links["links"].get(stage),
                "score_maximum": maximum or 100, "user_id": uid, "score_given": sub["grade"],
                "comment": sub["feedback"] or "", "timestamp": _score_time(db, scope, stage, uid),
                "grading_progress": "FullyGraded", "activity_progress": "Completed"},
                order_key=f"score:{scope[0]}:{scope[2]}:{stage}:{uid}")
        elif links["links"].get(stage):
            outbox.enqueue(db, platform_id=scope[0], kind="ws_grade", payload={
                "course_id": scope[2], "deployment_id": scope[1], "lti_instance_id": links["links"][stage], "user_id": uid,
                "grade": sub["grade"]})
        else:
            continue
        jobs += 1
    return jobs


def act(db, launch, project_id: int, stage: str, action: str, *, comment: str = "",
        selections: dict | None = None) -> dict:
    """One facilitator action on a stage: comment, return_for_revision, approve, grade,
    mark_ready, back_to_marking or release. Domain errors are raised before any write."""
    comment = (comment or "").strip()
    with write_transaction(db):
        project, sub = _submission(db, launch, project_id, stage)
        scope, actor = launch.scope, launch.user_id
        detail = {"from": sub["status"], "marking_from": sub["marking_state"]}
        if action == "comment":
            if not comment:
                raise BridgeError(_("Write a comment first."), code="empty_comment")
            q.add_feedback(db, sub["id"], sub["attempt"], actor, launch.user_name, "comment", comment)
            _tell(db, scope, _learners(db, scope, project_id),
                  lambda: _("Feedback is available on your %(stage)s: %(comment)s",
                            stage=_(get_stage(stage).title), comment=comment))
        elif action in ("return_for_revision", "approve"):
            status = workflow.transition(sub["status"], action, workflow.FACILITATOR, stage=stage)
            q.set_review(db, sub["id"], actor, status=status)
            q.add_feedback(db, sub["id"], sub["attempt"], actor, launch.user_name,
                           "returned" if action != "approve" else "approved", comment)
            if action == "approve":
                _completion_jobs(db, scope, stage, _learners(db, scope, project_id))
            else:
                _tell(db, scope, _learners(db, scope, project_id),
                      lambda: _("Your %(stage)s was returned for revision: %(comment)s", stage=_(get_stage(stage).title),
                                comment=comment) if comment else
                      _("Your %(stage)s was returned for revision. See the comments in the tool.",
                        stage=_(get_stage(stage).title)))
        elif action == "grade":
            rubric = course_rubric(db, scope, stage)
            total, maximum = rb.score(rubric, selections or {})
            grade = round(total / maximum * 100, 2) if maximum else 0.0
            status = workflow.transition(sub["status"], "grade", workflow.FACILITATOR, stage=stage)
            marking = workflow.IN_MARKING
            if sub["marking_state"] == workflow.READY_FOR_RELEASE:
                marking = workflow.marking_transition(sub["marking_state"], "back_to_marking")
            q.set_review(db, sub["id"], actor, status=status, grade=grade, grade_max=100,
                         rubric={"selections": selections, "points": total, "max": maximum,
                                 "rubric": rb.to_dict(rubric)},
                         feedback=comment, marking_state=marking)
            q.add_feedback(db, sub["id"], sub["attempt"], actor, launch.user_name, "graded", comment, grade=grade,
                           released=False)
            detail.update(grade=grade, points=total)
        elif action in workflow.MARKING_ACTIONS:
            if sub["grade"] is None:
                raise BridgeError(_("Grade this stage with the rubric first."), code="not_graded")
            marking = workflow.marking_transition(sub["marking_state"] or workflow.IN_MARKING, action)
            q.set_review(db, sub["id"], actor, marking_state=marking)
            if action == "release":
                q.release_feedback(db, sub["id"])
                users = _learners(db, scope, project_id)
                detail["score_jobs"] = _score_jobs(db, scope, stage, sub, users)
                _completion_jobs(db, scope, stage, users)
                title = get_stage(stage).title
                grade, out_of = f"{sub['grade']:g}", f"{sub['grade_max'] or 100:g}"
                _tell(db, scope, users, lambda: _(
                    "Your grade for %(stage)s is released: %(grade)s/%(max)s. Feedback is available in the tool.",
                    stage=_(title), grade=grade, max=out_of) if sub["feedback"] else _(
                    "Your grade for %(stage)s is released: %(grade)s/%(max)s.", stage=_(title), grade=grade, max=out_of))
        else:
            raise BridgeError(_("Unknown review action %(action)s.", action=repr(action)), code="bad_action")
        after = q.submission(db, project_id, stage)
        detail.update(to=after["status"], marking_to=after["marking_state"])
        q.audit(db, scope, actor, action, project_id=project_id, stage=stage, **detail)
    return after


def parse_local(value: str, zone: str) -> datetime | None:
    """A datetime-local field typed in the facilitator's zone, as an aware UTC datetime."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
        tz = ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise dl.InvalidDeadline(f"{value!r} is not a date and time (use YYYY-MM-DD HH:MM).") from None
    problem = date_problem(naive, "A deadline")
    if problem:
        raise dl.InvalidDeadline(problem)
    if naive.tzinfo is not None:
        return naive.astimezone(timezone.utc)
    return naive.replace(tzinfo=tz).astimezone(timezone.utc)


def set_deadline(db, launch, stage: str, due: str, cutoff: str, zone: str) -> dl.Deadline:
    get_stage(stage)
    due_at = parse_local(due, zone)
    if due_at is None:
        raise dl.InvalidDeadline(_("Give a due date."))
    cutoff_at = parse_local(cutoff, zone)
    if cutoff_at is not None and cutoff_at < due_at:  # said in the facilitator's zone, as typed
        raise dl.InvalidDeadline(_("The cut-off date (%(cutoff)s) is before the due date (%(due)s).",
                                   cutoff=when(cutoff_at, zone), due=when(due_at, zone)))
    deadline = dl.Deadline(due_at, cutoff_at)
    with write_transaction(db):
        q.set_deadline(db, launch.scope, stage, ts(deadline.due_utc),
                       ts(deadline.cutoff_utc) if deadline.cutoff_utc else None)
        outbox.enqueue(db, platform_id=launch.scope[0], kind="ws_calendar", payload={
            "course_id": launch.context_id, "deployment_id": launch.deployment_id, "key": f"deadline:{stage}", "name": f"{get_stage(stage).title} due",
            "description": get_stage(stage).description, "timestart": int(deadline.due_utc.timestamp()),
            "timeduration": 0}, dedupe_key=f"calendar:{launch.platform_id}:{launch.context_id}:deadline:{stage}")
        q.audit(db, launch.scope, launch.user_id, "set_deadline", stage=stage, due=ts(deadline.due_utc),
                cutoff=deadline.cutoff_utc and ts(deadline.cutoff_utc))
    return deadline


# Live sessions of the course that facilitators date on the deadlines page; each becomes a course event
# in the LMS calendar. Kept in the deadlines model under "session:<key>" (start as due, end as cut-off).
SESSIONS = {
    "discussion_1": N_("Online discussion session 1"),
    "discussion_2": N_("Online discussion session 2"),
    "discussion_3": N_("Online discussion session 3"),
    "closing_workshop": N_("Closing workshop"),
}
SESSION_PREFIX = "session:"


def set_session(db, launch, key: str, start: str, end: str, zone: str) -> tuple[datetime, datetime]:
    """Date an online discussion session or the closing workshop, typed in the facilitator's zone; the
    course calendar in the LMS gets (or updates) its event through the outbox."""
    if key not in SESSIONS:
        raise dl.InvalidDeadline("Choose a session.")
    start_at, end_at = parse_local(start, zone), parse_local(end, zone)
    if start_at is None or end_at is None:
        raise dl.InvalidDeadline("Give the session's start and end.")
    if not 2000 <= start_at.year <= 2100:
        raise dl.InvalidDeadline("Give a date between the years 2000 and 2100.")
    if not start_at < end_at <= start_at + timedelta(days=3):
        raise dl.InvalidDeadline("A session ends after it starts, within three days.")
    with write_transaction(db):
        q.set_deadline(db, launch.scope, SESSION_PREFIX + key, ts(start_at), ts(end_at))
        outbox.enqueue(db, platform_id=launch.scope[0], kind="ws_calendar", payload={
            "course_id": launch.context_id, "deployment_id": launch.deployment_id, "key": f"session:{key}",
            "name": SESSIONS[key],
            "description": f"{SESSIONS[key]} of the course, online.", "timestart": int(start_at.timestamp()),
            "timeduration": int((end_at - start_at).total_seconds())},
            dedupe_key=f"calendar:{launch.platform_id}:{launch.context_id}:session:{key}")
        q.audit(db, launch.scope, launch.user_id, "set_session", session=key, start=ts(start_at), end=ts(end_at))
    return start_at, end_at


def grant_extension(db, launch, stage: str, subject: str, until: str, zone: str) -> datetime:
    """subject is 'user:<id>' or 'project:<id>' (the whole group)."""
    get_stage(stage)
    kind, _sep, ident = subject.partition(":")
    if kind not in ("user", "project") or not ident:
        raise dl.InvalidDeadline(_("Choose a learner or a group for the extension."))
    until_at = parse_local(until, zone)
    if until_at is None:
        raise dl.InvalidDeadline(_("Give the date the extension runs to."))
    row = q.deadlines(db, launch.scope).get(stage)
    if not row:
        raise dl.InvalidDeadline(_("Set the stage's deadline before granting extensions."))
    if until_at < parse_ts(row["due_at"]):
        raise dl.InvalidDeadline(_("The extension (%(until)s) must be after the due date (%(due)s).",
                                   until=when(until_at, zone), due=when(row["due_at"], zone)))
    dl.effective_deadline(dl.Deadline(parse_ts(row["due_at"]), parse_ts(row["cutoff_at"])), until_at)
    with write_transaction(db):
        q.set_extension(db, launch.scope, stage, subject, ts(until_at), launch.user_id)
        q.audit(db, launch.scope, launch.user_id, "grant_extension", stage=stage, subject=subject, until=ts(until_at))
    return until_at
