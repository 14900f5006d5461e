"""The course project in the LMS frame: learner workspace and stage forms, facilitator dashboard and review."""
from __future__ import annotations

from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, send_file, url_for
from werkzeug.datastructures import ImmutableMultiDict

from .. import activities
from ..bounds import clamp_page
from ..db import booking as booking_q
from ..db import get_db, ts, utcnow
from ..db import lti as lq
from ..db import dashboard as dq
from ..db import projects as q
from ..errors import BridgeError, NotAuthorized, NotFound
from ..i18n import _, lazy_gettext, ngettext
from ..security import local_target
from ..lti import CLAIM
from ..lti.context import current_launch, requires_launch
from . import deadlines as dl
from . import display, export, forms, groups, rubric, service, uploads, workflow
from . import review as rv
from .stages import GRADED_STAGE_KEYS, STAGE_KEYS, STAGES, UnknownStage

bp = Blueprint("projects", __name__, url_prefix="/app/projects")
STAFF = ("facilitator", "admin")
PER_PAGE = 100
AUDIT_PAGE = 100


def zone_of(launch) -> str:
    try:
        ZoneInfo(launch.timezone or "UTC")
        return launch.timezone or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def _stage(key: str) -> str:
    if key not in STAGES:
        raise NotFound(_("Unknown project stage %(stage)s.", stage=repr(key)))
    return key


def _max_upload_bytes() -> int:
    return current_app.config["MAX_UPLOAD_MB"] * uploads.MiB


@bp.before_request
def _oversized():
    """A body over the request limit is not read: the page answers with its form and the limit instead of
    the bare 413 page (the stage form carries its launch token in the action URL for this)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.method == "POST" and limit and (request.content_length or 0) > limit:
        request.__dict__["form"] = ImmutableMultiDict()
        request.__dict__["files"] = ImmutableMultiDict()
        g.oversized = True


@bp.before_request
def _record_launch():
    """Every launch into the project fills the roster and the course's service URLs (works without NRPS)."""
    from ..errors import LaunchExpired

    try:
        launch = current_launch()
    except (LaunchExpired, NotAuthorized):
        return None  # the view's decorator refuses it with the right message
    service.record_launch(get_db(), launch)
    return None


@bp.get("/open")
@requires_launch()
def open_activity():
    launch = current_launch()
    wanted = request.args.get("stage") or launch.activity  # a home card names its own stage
    stage = wanted if wanted in STAGES else None
    if launch.is_staff:
        return redirect(url_for(".dashboard", lt=launch.token, stage=stage or ""), 303)
    if stage:
        return redirect(url_for(".stage_form", stage=stage, lt=launch.token), 303)
    return redirect(url_for(".workspace", lt=launch.token), 303)


@bp.get("/")
@requires_launch("learner")
def workspace():
    return _workspace_page()


def _workspace_page(problems: list[str] | None = None, chosen: list[str] | None = None):
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    data = service.workspace(db, launch, zone)
    project = data["project"]
    taken = q.memberships(db, launch.scope)
    choices = [dict(m, elsewhere=taken.get(m["user_id"]) not in (None, project and project["id"]))
               for m in q.roster_learners(db, launch.scope) if m["user_id"] != launch.user_id]
    return render_template("projects/workspace.html", launch=launch, zone=zone, **data, roster=choices,
                           is_owner=not project or project["owner_id"] == launch.user_id,
                           saved=request.args.get("saved"), problems=problems or [],
                           chosen=chosen, notices=booking_q.notices(db, launch.scope, launch.user_id)
                           ), 400 if problems else 200


def _safe_next(target: str | None, launch) -> str:
    home = url_for(".dashboard" if launch.is_staff else ".workspace", lt=launch.token)
    target = local_target(target, home)
    if "lt=" not in target:  # pages are reached through their launch token
        target += ("&" if "?" in target else "?") + urlencode({"lt": launch.token})
    return target


@bp.route("/timezone", methods=["GET", "POST"])
@requires_launch()
def set_timezone():
    """Choose the zone times are shown in: a select of IANA zones grouped by region (type to search)."""
    launch = current_launch()
    error, status = None, 200
    target = _safe_next(request.values.get("next"), launch)
    if request.method == "POST":
        tz = (request.form.get("tz") or "").strip()
        try:
            ZoneInfo(tz)
            if "/" not in tz and tz != "UTC":
                raise ValueError
        except (ZoneInfoNotFoundError, ValueError):
            error = _("%(zone)s is not an IANA time zone such as Asia/Jakarta; choose one from the list.",
                      zone=repr(tz))
            status = 400
        else:
            lq.set_launch_timezone(get_db(), launch.id, tz)
            return redirect(target, 303)
    zone = zone_of(launch)
    return render_template("projects/timezone.html", launch=launch, zone=zone, groups=display.zone_groups(zone),
                           error=error, target=target), status


def _form_values(stage: str) -> dict:
    form = forms.FORMS.get(stage)
    raw = request.form.to_dict(flat=False)
    if not form:
        return {}
    values = {}
    for f in form.fields:
        if f.kind == forms.ATTACHMENT:
            continue
        v = raw.get(f.name)
        values[f.name] = v if f.kind == forms.MULTI else (v[0] if v else "")
    return values


def _display(stage: str, data: dict) -> dict:
    out = dict(data or {})
    if isinstance(out.get("sdg_targets"), list):
        out["sdg_targets"] = ", ".join(out["sdg_targets"])
    return out


def _close(files) -> None:
    for up in files:
        up.stream.close()


def _error_links(stage: str, errors: dict) -> list[tuple[str | None, str]]:
    """The error summary: (id of the field to jump to, message), in the form's order."""
    links = [(None, errors["_form"])] if errors.get("_form") else []
    form = forms.FORMS.get(stage)
    attach = service.ATTACHMENT_FIELDS.get(stage, {})
    for f in form.fields if form else ():
        if f.name in errors and f.kind != forms.ATTACHMENT:
            anchor = f"f_{f.name}_0" if f.kind == forms.MULTI else f"f_{f.name}"
            links.append((anchor, errors[f.name]))
    for field in attach:
        if field in errors:
            links.append((f"file_{field}", errors[field]))
    if errors.get("_file"):
        links.append((f"file_{next(iter(attach))}" if attach else None, errors["_file"]))
    return links


def _stage_page(stage: str, *, mode: str, values: dict, errors: dict, status: int = 200):
    launch, db = current_launch(), get_db()
    project = service.learner_project(db, launch)
    hist = service.history(db, project["id"] if project else 0, stage, staff=False)
    sub = hist["submission"]
    deadline, ext = service.deadline_for(db, launch.scope, stage, project and project["id"], launch.user_id)
    zone = zone_of(launch)
    eff = dl.effective_deadline(deadline, ext) if deadline else None
    state = dl.submission_state(deadline, utcnow(), ext) if deadline else None
    shown_status = service.learner_status(sub)
    attach = {field: display.accepted(kinds) for field, kinds in service.ATTACHMENT_FIELDS.get(stage, {}).items()}
    return render_template(
        "projects/stage.html", launch=launch, stage=STAGES[stage], form=forms.FORMS.get(stage), forms=forms,
        values=values, errors=errors, error_links=_error_links(stage, errors), sub=sub, hist=hist, zone=zone,
        mode=mode, status=shown_status, status_labels=workflow.STATUS_LABELS,
        fb=service.learner_feedback(sub, hist["feedback"]),
        rows=display.field_rows(stage, sub["data"] if sub else {}, hist["attachments"]),
        rows_of=lambda data: display.field_rows(stage, data, hist["attachments"]),
        when=lambda value: display.when(value, zone), display=display, attach=attach,
        max_mb=current_app.config["MAX_UPLOAD_MB"], max_bytes=_max_upload_bytes(),
        saved=request.args.get("saved"), due=eff and display.when(eff.due_utc, zone), extended=ext is not None,
        cutoff=eff and eff.cutoff_utc and display.when(eff.cutoff_utc, zone), deadline_state=state,
        keep_version=(sub["updated_at"] if sub else "")), status


@bp.route("/stage/<stage>", methods=["GET", "POST"])
@requires_launch("learner")
def stage_form(stage):
    """A stage as Moodle's assignment shows it: the form while drafting; after submitting, the submission
    read-only with its status (editable again only when returned: "Revise"); feedback at the top.
    Submit asks once: the typed text is saved as a draft, then a confirmation page (or dialog) submits it."""
    launch, db = current_launch(), get_db()
    stage = _stage(stage)
    project = service.learner_project(db, launch)
    sub = q.submission(db, project["id"], stage) if project else None
    status = service.learner_status(sub)
    repeatable = STAGES[stage].repeatable
    editing = request.args.get("edit") == "1"
    if g.get("oversized"):
        limit = f"{current_app.config['MAX_UPLOAD_MB']} MB"
        return _stage_page(stage, mode="form", values=_display(stage, sub["data"] if sub else {}), status=413,
                           errors={"_file": _("The upload is larger than the %(limit)s limit, so nothing was saved. "
                                              "Choose a smaller file, or save your text without it.", limit=limit)})
    if request.method == "POST":
        action = request.form.get("action")
        submit = action == "submit"
        confirmed = request.form.get("confirm") == "1"
        from_draft = confirmed and request.form.get("from_draft") == "1" and sub is not None
        values = _display(stage, sub["data"]) if from_draft else _form_values(stage)
        files = [] if from_draft else [service.Upload(name, f.filename, f.stream)
                                       for name, f in request.files.items(multi=True) if f and f.filename]
        errors, code = {}, 200
        try:
            service.save_stage(db, launch, stage, values, files, submit=submit and confirmed,
                               check_submit=submit and not confirmed, data_dir=current_app.config["DATA_DIR"],
                               max_bytes=_max_upload_bytes())
        except forms.FormInvalid as exc:
            errors, code = exc.errors, 400
        except uploads.UploadRejected as exc:
            errors, code = {"_file": str(exc)}, 400
        except dl.SubmissionClosed as exc:
            errors, code = {"_form": str(exc)}, 403
        except workflow.InvalidTransition as exc:
            errors, code = {"_form": str(exc)}, 409
        finally:
            _close(files)
        if errors:
            return _stage_page(stage, mode="form", values=_display(stage, values), errors=errors, status=code)
        if submit and not confirmed:
            return _stage_page(stage, mode="confirm", values={}, errors={})
        return redirect(url_for(".stage_form", stage=stage, lt=launch.token,
                                saved="submitted" if submit else "draft"), 303)
    can_edit = status in (workflow.NOT_STARTED, workflow.DRAFT) or (editing and (
        status == workflow.RETURNED or (repeatable and status in (workflow.SUBMITTED, workflow.APPROVED))))
    if not can_edit:
        return _stage_page(stage, mode="view", values={}, errors={})
    fresh = repeatable and status in (workflow.SUBMITTED, workflow.APPROVED)  # the next update starts empty
    return _stage_page(stage, mode="form", values={} if fresh else _display(stage, sub["data"] if sub else {}),
                       errors={})


@bp.post("/group")
@requires_launch("learner")
def set_group():
    launch = current_launch()
    chosen = [u for u in request.form.getlist("coauthor") if u]
    try:
        service.set_group(get_db(), launch, chosen)
    except groups.InvalidGroup as exc:
        return _workspace_page(problems=exc.problems, chosen=chosen)  # the choices ticked are kept
    return redirect(url_for(".workspace", lt=launch.token, saved="group"), 303)


@bp.get("/file/<int:attachment_id>")
@requires_launch()
def download(attachment_id):
    att, path = service.readable_attachment(get_db(), current_launch(), attachment_id, current_app.config["DATA_DIR"])
    mime = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg", "text": "text/plain"}.get(
        att["kind"], "application/octet-stream")
    resp = send_file(path, mimetype=mime, as_attachment=True, download_name=att["display_name"])
    resp.headers["Content-Security-Policy"] = "sandbox"
    return resp


# --- facilitator ---------------------------------------------------------------------------------
def _due_map(db, scope) -> dict:
    return {k: v["due_at"] for k, v in q.deadlines(db, scope).items()}


def _sync_message(args) -> str | None:
    if "added" not in args:
        return None
    try:
        added, left, staff = (int(args.get(k) or 0) for k in ("added", "left", "staff"))
    except ValueError:
        return None
    parts = [ngettext("%(num)d participant added", "%(num)d participants added", added),
             ngettext("%(num)d left the course", "%(num)d left the course", left)]
    if staff:
        parts.append(ngettext("%(num)d staff member not listed as a participant",
                              "%(num)d staff members not listed as participants", staff))
    return _("Roster synced from the LMS: %(changes)s.", changes=", ".join(parts))


@bp.get("/dashboard")
@requires_launch(*STAFF)
def dashboard():
    launch, db = current_launch(), get_db()
    stage = request.args.get("stage") or ""
    status = request.args.get("status") or ""
    country = request.args.get("country") or ""
    page = clamp_page(request.args.get("page") or 1)
    stages = list(STAGE_KEYS)
    after, before = request.args.get("after") or None, request.args.get("before") or None
    query = dict(stage=stage if stage in STAGES else None, status=status, country=country or None,
                 per_page=PER_PAGE, after=after, before=before)
    rows, total, counts = q.dashboard(db, launch.scope, stages, _due_map(db, launch.scope), ts(), page=page, **query)
    pages = max(1, -(-total // PER_PAGE))
    if page > pages:  # an old link past the last page shows the last page, never "Page 2 of 1"
        page = pages
        query.update(after=None, before=None)
        rows, total, counts = q.dashboard(db, launch.scope, stages, _due_map(db, launch.scope), ts(), page=page,
                                          **query)
    return render_template("projects/dashboard.html", launch=launch, rows=rows, total=total, counts=counts,
                           stages=stages, STAGES=STAGES, page=page, pages=pages, stage=stage, status=status,
                           country=country, countries=q.countries(db, launch.scope),
                           labels=workflow.STATUS_LABELS, marking=workflow.MARKING_LABELS,
                           country_name=display.country_name, synced=_sync_message(request.args))


@bp.get("/export.csv")
@requires_launch(*STAFF)
def export_csv():
    """One line per participant with the LMS username and e-mail, to match Moodle's gradebook export.
    Grades not yet released say so: "93.33 (In marking)"."""
    launch, db = current_launch(), get_db()
    stages = list(STAGE_KEYS)
    rows = dq.grid(db, launch.scope, stages, _due_map(db, launch.scope), ts())

    def grade(r, i, key):
        value = r[f"grade_{i}"]
        if value is None or key not in GRADED_STAGE_KEYS or r[f"marking_{i}"] == workflow.RELEASED:
            return value
        return f"{value:g} ({_(workflow.MARKING_LABELS.get(r[f'marking_{i}'], r[f'marking_{i}']))})"

    lines = [{"participant": r["name"] or r["user_id"], "username": r["username"], "email": r["email"],
              "group": r["title"] or (r["project_id"] or ""),
              "stages": {k: {"status": r[f"status_{i}"], "grade": grade(r, i, k)} for i, k in enumerate(stages)}}
             for r in rows]
    return Response(export.dashboard_csv(lines), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=project-statuses.csv"})


@bp.post("/roster/sync")
@requires_launch(*STAFF)
def sync_roster():
    from lti_config.keys import signer

    from ..clients.errors import LtiServiceError
    from .roster import sync_roster as sync

    launch, db = current_launch(), get_db()
    try:
        done = sync(db, launch.scope, current_app.extensions["lms_bridge_http"],
                    signer(db, current_app.config["DATA_DIR"]), actor=launch.user_id)
    except (LookupError, LtiServiceError) as exc:
        raise BridgeError(_("The roster could not be read from the LMS: %(reason)s", reason=str(exc)),
                          code="nrps_failed", status=502) from None
    return redirect(url_for(".dashboard", lt=launch.token, added=done["added"], left=done["left"],
                            staff=done["staff"]), 303)


@bp.get("/review-request")
@requires_launch(*STAFF)
def review_request():
    """LtiSubmissionReviewRequest from the gradebook: that learner's submission for that stage."""
    launch, db = current_launch(), get_db()
    for_user = (launch.claims.get(CLAIM + "for_user") or {}).get("user_id")
    stage = launch.activity if launch.activity in STAGES else "project_plan"
    project = q.project_of(db, launch.scope, str(for_user)) if for_user else None
    if project is None:
        raise NotFound(_("This learner has not started a project yet."))
    return redirect(url_for(".review", project_id=project["id"], stage=stage, lt=launch.token), 303)


DONE_MESSAGES = {
    "comment": lazy_gettext("Comment saved; the learner sees it on the stage page."),
    "return_for_revision": lazy_gettext("Returned for revision; the learner can revise and submit a new attempt."),
    "approve": lazy_gettext("Approved."),
    "grade": lazy_gettext("Grade saved, in marking. Mark it ready for release when marking is done."),
    "mark_ready": lazy_gettext("Marked ready for release."),
    "back_to_marking": lazy_gettext("Back in marking."),
    "release": lazy_gettext("Released: the learner sees the grade and feedback, and the grade is on its way to the LMS gradebook."),
}


def _compare(stage: str, sub: dict, versions: list[dict], attachments: dict) -> tuple[dict | None, list[dict]]:
    """The learner's latest earlier attempt beside the current one, field by field."""
    earlier = next((v for v in versions if v["attempt"] < sub["attempt"]), None)
    current = {r["name"]: r for r in display.field_rows(stage, sub["data"], attachments)}
    before = {r["name"]: r for r in display.field_rows(stage, earlier["data"], attachments)} if earlier else {}
    names = list(current) + [n for n in before if n not in current]
    rows = [{"label": (current.get(n) or before.get(n))["label"], "now": current.get(n), "before": before.get(n),
             "changed": bool(earlier) and (current.get(n) or {}).get("text") != (before.get(n) or {}).get("text")}
            for n in names]
    return earlier, rows


def _review_page(project: dict, stage: str, *, errors: dict | None = None, kept: dict | None = None,
                 status: int = 200):
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    stage_rubric = rv.course_rubric(db, launch.scope, stage)
    hist = service.history(db, project["id"], stage, staff=True)
    sub = hist["submission"]
    selections = (kept or {}).get("selections") or ((sub or {}).get("rubric") or {}).get("selections") or {}
    points = sum(next((lv.points for lv in c.levels if lv.id == selections.get(c.id)), 0)
                 for c in stage_rubric.criteria)
    queue = q.review_queue(db, launch.scope, stage)
    ids = [r["project_id"] for r in queue]
    at = ids.index(project["id"]) if project["id"] in ids else None
    earlier, compare = _compare(stage, sub, hist["versions"], hist["attachments"]) if sub else (None, [])
    allowed = workflow.allowed_actions(sub["status"], sub["marking_state"], graded=STAGES[stage].graded,
                                       has_grade=sub["grade"] is not None) if sub else []
    return render_template(
        "projects/review.html", launch=launch, project=project, stage=STAGES[stage], hist=hist, sub=sub,
        members=q.members(db, project["id"]), rubric=stage_rubric, selections=selections, points=points,
        labels=workflow.STATUS_LABELS, marking=workflow.MARKING_LABELS, allowed=allowed,
        done=_(DONE_MESSAGES[request.args["done"]]) if request.args.get("done") in DONE_MESSAGES else None,
        errors=errors or {}, comment=(kept or {}).get("comment", ""), zone=zone, earlier=earlier,
        compare=compare, rows_of=lambda data: display.field_rows(stage, data, hist["attachments"]),
        when=lambda value: display.when(value, zone), display=display,
        previous=queue[at - 1] if at else None, following=queue[at + 1] if at is not None and at + 1 < len(queue)
        else None, position=(at + 1) if at is not None else None, queue_size=len(queue),
        trail=q.audit_trail(db, launch.scope, project["id"], limit=50), stages=STAGES), status


@bp.route("/review/<int:project_id>/<stage>", methods=["GET", "POST"])
@requires_launch(*STAFF)
def review(project_id, stage):
    """Marking as in Moodle's grader: the submission (earlier attempt beside it), the rubric with a running
    total, only the actions the marking workflow allows now, and previous/next participant. A refused
    action shows the same form again with everything kept and what to fix marked."""
    launch, db = current_launch(), get_db()
    stage = _stage(stage)
    project = q.get_project(db, launch.scope, project_id)
    if project is None:
        raise NotFound(_("No such project in this course."))
    if request.method == "POST":
        action = request.form.get("action") or ""
        stage_rubric = rv.course_rubric(db, launch.scope, stage)
        selections = {c.id: request.form.get(f"c_{c.id}", "") for c in stage_rubric.criteria}
        comment = request.form.get("comment", "")
        kept = {"comment": comment, "selections": selections}
        try:
            rv.act(db, launch, project_id, stage, action, comment=comment,
                   selections=selections if action == "grade" else None)
        except rubric.InvalidRubricSelection as exc:
            return _review_page(project, stage, errors={"_form": str(exc), "criteria": exc.criteria}, kept=kept,
                                status=400)
        except workflow.InvalidTransition as exc:
            return _review_page(project, stage, errors={"_form": str(exc)}, kept=kept, status=409)
        except BridgeError as exc:
            if isinstance(exc, (NotFound, NotAuthorized)):
                raise
            return _review_page(project, stage, errors={"_form": exc.message}, kept=kept, status=exc.status)
        return redirect(url_for(".review", project_id=project_id, stage=stage, lt=launch.token, done=action), 303)
    return _review_page(project, stage)


def _deadlines_page(error: str | None = None, typed: dict | None = None, status: int = 200):
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    shown = {k: {"due": display.when(r["due_at"], zone), "cutoff": r["cutoff_at"] and display.when(r["cutoff_at"], zone)}
             for k, r in q.deadlines(db, launch.scope).items()}
    return render_template("projects/deadlines.html", launch=launch, stages=STAGES, shown=shown, zone=zone,
                           extensions=q.list_extensions(db, launch.scope), when=lambda v: display.when(v, zone),
                           learners=q.roster_learners(db, launch.scope), groups=q.list_projects(db, launch.scope),
                           sessions={k: shown.get(rv.SESSION_PREFIX + k) for k in rv.SESSIONS}, session_titles=rv.SESSIONS,
                           error=error, typed=typed or {}, saved=request.args.get("saved")), status


@bp.route("/deadlines", methods=["GET", "POST"])
@requires_launch(*STAFF)
def deadlines():
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    error = None
    if request.method == "POST":
        extension = bool(request.form.get("subject"))
        try:
            if request.form.get("session"):
                rv.set_session(db, launch, request.form["session"], request.form.get("start", ""),
                               request.form.get("end", ""), zone)
            elif extension:
                rv.grant_extension(db, launch, request.form.get("stage", ""), request.form["subject"],
                                   request.form.get("until", ""), zone)
            else:
                rv.set_deadline(db, launch, request.form.get("stage", ""), request.form.get("due", ""),
                                request.form.get("cutoff", ""), zone)
        except (dl.InvalidDeadline, UnknownStage) as exc:
            typed = {k: v[:40] for k, v in request.form.items() if k != "lt"}  # shown again as typed
            typed["form"] = "session" if request.form.get("session") else "extension" if extension else "deadline"
            return _deadlines_page(str(exc), typed, 400)
        return redirect(url_for(".deadlines", lt=launch.token, saved="session" if request.form.get("session")
                                else "extension" if extension else "deadline"), 303)
    return _deadlines_page()


@bp.route("/rubric", methods=["GET", "POST"])
@requires_launch(*STAFF)
def edit_rubric():
    """Criteria and levels in a form, for the course default or one graded stage (which starts from the
    default). "Add a criterion" redraws the form with another blank row without saving; "Save" saves, or
    shows the form again as typed with what to fix."""
    launch, db = current_launch(), get_db()
    stage = request.values.get("stage") or ""
    if stage and stage not in GRADED_STAGE_KEYS:
        raise NotFound(_("Only graded stages have a rubric."))
    own = q.stage_rubric_keys(db, launch.scope)
    page = dict(launch=launch, stage=stage, stages=[(k, STAGES[k].title) for k in GRADED_STAGE_KEYS], own=own)
    error = None
    draft = rubric.to_draft(rv.course_rubric(db, launch.scope, stage or None))
    if request.method == "POST":
        if request.form.get("action") == "use_default" and stage:
            rv.save_rubric(db, launch, None, stage=stage)
            return redirect(url_for(".edit_rubric", lt=launch.token, stage=stage, saved=1), 303)
        draft = rubric.draft_from_form(request.form)
        if request.form.get("action") == "add_criterion":
            return render_template("projects/rubric.html", draft=rubric.with_spares(draft, add_criterion=True), **page)
        try:
            rv.save_rubric(db, launch, rubric.from_draft(draft), stage=stage or None)
            return redirect(url_for(".edit_rubric", lt=launch.token, stage=stage, saved=1), 303)
        except rubric.InvalidRubric as exc:
            error = str(exc)
    return render_template("projects/rubric.html", draft=rubric.with_spares(draft), error=error,
                           saved=request.args.get("saved"), **page), 400 if error else 200


def _audit_detail(a: dict, zone: str, names: dict) -> str:
    """An audit entry's detail in words (grade, due date, who an extension covers), not raw JSON."""
    d = a["detail"] or {}
    parts = []
    if d.get("grade") is not None:
        parts.append(_("grade %(grade)s", grade="%g" % d["grade"]))
    if d.get("attempt"):
        parts.append(_("attempt %(n)s", n=d["attempt"]))
    if d.get("late"):
        parts.append(_("late"))
    if d.get("due"):
        parts.append(_("due %(when)s", when=display.when(d["due"], zone)))
    if d.get("start"):
        parts.append(_("from %(when)s", when=display.when(d["start"], zone)))
    if d.get("until"):
        parts.append(_("until %(when)s", when=display.when(d["until"], zone)))
    subject = d.get("subject") or ""
    if subject.startswith("user:"):
        parts.append(names.get(subject[5:]) or subject[5:])
    elif subject.startswith("project:"):
        parts.append(_("group of project %(id)s", id=subject[8:]))
    if d.get("coauthors") is not None:
        parts.append(", ".join(names.get(u) or u for u in d["coauthors"]) or _("no co-authors"))
    if a["action"] == "roster_sync":
        parts.append(_("%(added)s added, %(left)s left", added=d.get("added", 0), left=d.get("left", 0)))
    return "; ".join(str(p) for p in parts)


@bp.get("/audit")
@requires_launch(*STAFF)
def audit():
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    names = q.names(db, launch.scope)
    before = request.args.get("before", type=int)
    rows = q.audit_trail(db, launch.scope, limit=AUDIT_PAGE + 1, before=before)
    older = rows[AUDIT_PAGE - 1]["id"] if len(rows) > AUDIT_PAGE else None
    trail = [dict(a, when=display.when(a["created_at"], zone), what=display.action_label(a["action"]),
                  who=a["actor_name"] or names.get(a["actor_id"]) or a["actor_id"],
                  stage_title=STAGES[a["stage"]].title if a["stage"] in STAGES else (a["stage"] or ""),
                  summary=_audit_detail(a, zone, names)) for a in rows[:AUDIT_PAGE]]
    return render_template("projects/audit.html", launch=launch, trail=trail, zone=zone, older=older,
                           newest=before is not None)


def init_app(app):
    app.register_blueprint(bp)
    for key in ("project_plan", "project_report", "final_presentation"):
        activities.register(key, "projects.open_activity")
    activities.register("review", "projects.review_request")
