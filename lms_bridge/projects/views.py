"""The course project in the LMS frame: learner workspace and stage forms, facilitator dashboard and review."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, current_app, redirect, render_template, request, send_file, url_for

from .. import activities
from ..bounds import clamp_page
from ..security import local_target
from ..db import get_db, parse_ts, ts
from ..db import booking as booking_q
from ..db import lti as lq
from ..db import dashboard as dq
from ..db import projects as q
from ..errors import BridgeError, Conflict, NotAuthorized, NotFound
from ..lti import CLAIM
from ..lti.context import current_launch, requires_launch
from . import deadlines as dl
from . import export, forms, groups, rubric, service, uploads, workflow
from . import review as rv
from .stages import GRADED_STAGE_KEYS, STAGE_KEYS, STAGES, UnknownStage

bp = Blueprint("projects", __name__, url_prefix="/app/projects")
STAFF = ("facilitator", "admin")
PER_PAGE = 100


def zone_of(launch) -> str:
    try:
        ZoneInfo(launch.timezone or "UTC")
        return launch.timezone or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def _stage(key: str) -> str:
    if key not in STAGES:
        raise NotFound(f"Unknown project stage {key!r}.")
    return key


def _refuse(exc: Exception, status: int = 400, code: str = "refused"):
    raise BridgeError(str(exc), code=code, status=status)


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
    stage = launch.activity if launch.activity in STAGES else None
    if launch.is_staff:
        return redirect(url_for(".dashboard", lt=launch.token, stage=stage or ""), 303)
    if stage:
        return redirect(url_for(".stage_form", stage=stage, lt=launch.token), 303)
    return redirect(url_for(".workspace", lt=launch.token), 303)


@bp.get("/")
@requires_launch("learner")
def workspace():
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    data = service.workspace(db, launch, zone)
    project = data["project"]
    choices = [m for m in q.roster_learners(db, launch.scope) if m["user_id"] != launch.user_id]
    return render_template("projects/workspace.html", launch=launch, zone=zone, **data, roster=choices,
                           is_owner=not project or project["owner_id"] == launch.user_id,
                           notices=booking_q.notices(db, launch.scope, launch.user_id))


@bp.post("/timezone")
@requires_launch()
def set_timezone():
    launch = current_launch()
    tz = (request.form.get("tz") or "").strip()
    try:
        ZoneInfo(tz)
        if "/" not in tz and tz != "UTC":
            raise ValueError
    except (ZoneInfoNotFoundError, ValueError):
        raise BridgeError(f"{tz!r} is not an IANA time zone such as Asia/Jakarta.", code="bad_timezone") from None
    lq.set_launch_timezone(get_db(), launch.id, tz)
    return redirect(local_target(request.form.get("next"), url_for(".workspace", lt=launch.token)), 303)


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


@bp.route("/stage/<stage>", methods=["GET", "POST"])
@requires_launch("learner")
def stage_form(stage):
    launch, db = current_launch(), get_db()
    stage = _stage(stage)
    project = service.learner_project(db, launch)
    sub = q.submission(db, project["id"], stage) if project else None
    values, errors, status = _display(stage, sub["data"] if sub else {}), {}, 200
    if request.method == "POST":
        submit = request.form.get("action") == "submit"
        values = _form_values(stage)
        files = [service.Upload(name, f.filename, f.stream) for name, f in request.files.items(multi=True)
                 if f and f.filename]
        try:
            service.save_stage(db, launch, stage, values, files, submit=submit,
                                        data_dir=current_app.config["DATA_DIR"],
                                        max_bytes=current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024)
        except forms.FormInvalid as exc:
            errors, status = exc.errors, 400
        except uploads.UploadRejected as exc:
            errors, status = {"_file": str(exc)}, 400
        except dl.SubmissionClosed as exc:
            errors, status = {"_form": str(exc)}, 403
        except workflow.InvalidTransition as exc:
            errors, status = {"_form": str(exc)}, 409
        else:
            _close(files)
            note = "submitted" if submit else "saved as a draft"
            return redirect(url_for(".stage_form", stage=stage, lt=launch.token, saved=note), 303)
        _close(files)
        values = _display(stage, values)
        project = service.learner_project(db, launch)
        sub = q.submission(db, project["id"], stage) if project else None
    hist = service.history(db, project["id"], stage, staff=False) if project else service.history(db, 0, stage,
                                                                                                  staff=False)
    deadline, ext = service.deadline_for(db, launch.scope, stage, project and project["id"], launch.user_id)
    zone = zone_of(launch)
    eff = dl.effective_deadline(deadline, ext) if deadline else None
    return render_template("projects/stage.html", launch=launch, stage=STAGES[stage], form=forms.FORMS.get(stage),
                           values=values, errors=errors, sub=sub, hist=hist, zone=zone, forms=forms,
                           attach_fields=service.ATTACHMENT_FIELDS.get(stage, {}), saved=request.args.get("saved"),
                           due=eff and dl.format_time(eff.due_utc, zone),
                           cutoff=eff and eff.cutoff_utc and dl.format_time(eff.cutoff_utc, zone),
                           status_labels=workflow.STATUS_LABELS, kinds=uploads.KINDS), status


@bp.post("/group")
@requires_launch("learner")
def set_group():
    launch = current_launch()
    try:
        service.set_group(get_db(), launch, [u for u in request.form.getlist("coauthor") if u])
    except groups.InvalidGroup as exc:
        raise BridgeError(" ".join(exc.problems), code="invalid_group") from None
    return redirect(url_for(".workspace", lt=launch.token), 303)


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
    rows, total, counts = q.dashboard(db, launch.scope, stages, _due_map(db, launch.scope), ts(),
                                      stage=stage if stage in STAGES else None, status=status,
                                      country=country or None, page=page, per_page=PER_PAGE,
                                      after=after, before=before)
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    return render_template("projects/dashboard.html", launch=launch, rows=rows, total=total, counts=counts,
                           stages=stages, STAGES=STAGES, page=page, pages=pages, stage=stage, status=status,
                           country=country, countries=q.countries(db, launch.scope),
                           labels=workflow.STATUS_LABELS, marking=workflow.MARKING_LABELS,
                           country_names=forms.COUNTRIES)


@bp.get("/export.csv")
@requires_launch(*STAFF)
def export_csv():
    launch, db = current_launch(), get_db()
    stages = list(STAGE_KEYS)
    rows = dq.grid(db, launch.scope, stages, _due_map(db, launch.scope), ts())
    lines = [{"participant": r["name"] or r["user_id"], "group": r["title"] or (r["project_id"] or ""),
              "stages": {k: {"status": r[f"status_{i}"], "grade": r[f"grade_{i}"]
                             if r[f"marking_{i}"] == workflow.RELEASED or k not in GRADED_STAGE_KEYS
                             else (f"{r[f'grade_{i}']:g} ({r[f'marking_{i}']})" if r[f"grade_{i}"] is not None else None)}
                         for i, k in enumerate(stages)}} for r in rows]
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
        count = sync(db, launch.scope, current_app.extensions["lms_bridge_http"],
                     signer(db, current_app.config["DATA_DIR"]))
    except (LookupError, LtiServiceError) as exc:
        raise BridgeError(f"The roster could not be read from the LMS: {exc}", code="nrps_failed",
                          status=502) from None
    return redirect(url_for(".dashboard", lt=launch.token, synced=count), 303)


@bp.get("/review-request")
@requires_launch(*STAFF)
def review_request():
    """LtiSubmissionReviewRequest from the gradebook: that learner's submission for that stage."""
    launch, db = current_launch(), get_db()
    for_user = (launch.claims.get(CLAIM + "for_user") or {}).get("user_id")
    stage = launch.activity if launch.activity in STAGES else "project_plan"
    project = q.project_of(db, launch.scope, str(for_user)) if for_user else None
    if project is None:
        raise NotFound("This learner has not started a project yet.")
    return redirect(url_for(".review", project_id=project["id"], stage=stage, lt=launch.token), 303)


@bp.route("/review/<int:project_id>/<stage>", methods=["GET", "POST"])
@requires_launch(*STAFF)
def review(project_id, stage):
    launch, db = current_launch(), get_db()
    stage = _stage(stage)
    project = q.get_project(db, launch.scope, project_id)
    if project is None:
        raise NotFound("No such project in this course.")
    course_rubric = rv.course_rubric(db, launch.scope)
    if request.method == "POST":
        action = request.form.get("action") or ""
        selections = {c.id: request.form.get(f"c_{c.id}", "") for c in course_rubric.criteria}
        try:
            rv.act(db, launch, project_id, stage, action, comment=request.form.get("comment", ""),
                   selections=selections if action == "grade" else None)
        except (workflow.InvalidTransition, rubric.InvalidRubricSelection) as exc:
            raise Conflict(str(exc), code="invalid_action") from None
        return redirect(url_for(".review", project_id=project_id, stage=stage, lt=launch.token, done=action), 303)
    hist = service.history(db, project_id, stage, staff=True)
    return render_template("projects/review.html", launch=launch, project=project, stage=STAGES[stage],
                           hist=hist, members=q.members(db, project_id), rubric=course_rubric,
                           form=forms.FORMS.get(stage), labels=workflow.STATUS_LABELS,
                           marking=workflow.MARKING_LABELS, done=request.args.get("done"),
                           trail=q.audit_trail(db, launch.scope, project_id, limit=50), zone=zone_of(launch))


@bp.route("/deadlines", methods=["GET", "POST"])
@requires_launch(*STAFF)
def deadlines():
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    error = None
    if request.method == "POST":
        try:
            if request.form.get("session"):
                rv.set_session(db, launch, request.form["session"], request.form.get("start", ""),
                               request.form.get("end", ""), zone)
            elif request.form.get("subject"):
                rv.grant_extension(db, launch, request.form.get("stage", ""), request.form["subject"],
                                   request.form.get("until", ""), zone)
            else:
                rv.set_deadline(db, launch, request.form.get("stage", ""), request.form.get("due", ""),
                                request.form.get("cutoff", ""), zone)
        except (dl.InvalidDeadline, UnknownStage) as exc:
            error = str(exc)  # the page again, with the values typed and what to fix
        else:
            return redirect(url_for(".deadlines", lt=launch.token), 303)
    shown = {k: {"due": dl.format_time(parse_ts(r["due_at"]), zone),
                 "cutoff": r["cutoff_at"] and dl.format_time(parse_ts(r["cutoff_at"]), zone)}
             for k, r in q.deadlines(db, launch.scope).items()}
    sessions = {k: shown.get(rv.SESSION_PREFIX + k) for k in rv.SESSIONS}
    return render_template("projects/deadlines.html", launch=launch, stages=STAGES, shown=shown, zone=zone,
                           sessions=sessions, session_titles=rv.SESSIONS,
                           extensions=q.list_extensions(db, launch.scope), error=error,
                           typed={k: request.form.get(k, "")[:40] for k in ("due", "cutoff", "until", "start", "end")},
                           learners=q.roster_learners(db, launch.scope),
                           groups=q.list_projects(db, launch.scope)), 400 if error else 200


@bp.route("/rubric", methods=["GET", "POST"])
@requires_launch(*STAFF)
def edit_rubric():
    """Criteria and levels in a form. "Add a criterion" redraws the form with another blank row without
    saving; "Save" saves, or shows the form again as typed with what to fix."""
    launch, db = current_launch(), get_db()
    error = None
    draft = rubric.to_draft(rv.course_rubric(db, launch.scope))
    if request.method == "POST":
        draft = rubric.draft_from_form(request.form)
        if request.form.get("action") == "add_criterion":
            return render_template("projects/rubric.html", launch=launch,
                                   draft=rubric.with_spares(draft, add_criterion=True))
        try:
            rv.save_rubric(db, launch, rubric.from_draft(draft))
            return redirect(url_for(".edit_rubric", lt=launch.token, saved=1), 303)
        except rubric.InvalidRubric as exc:
            error = str(exc)
    return render_template("projects/rubric.html", launch=launch, draft=rubric.with_spares(draft), error=error,
                           saved=request.args.get("saved")), 400 if error else 200


@bp.get("/audit")
@requires_launch(*STAFF)
def audit():
    launch = current_launch()
    return render_template("projects/audit.html", launch=launch, trail=q.audit_trail(get_db(), launch.scope))


def init_app(app):
    app.register_blueprint(bp)
    for key in ("project_plan", "project_report", "final_presentation"):
        activities.register(key, "projects.open_activity")
    activities.register("review", "projects.review_request")
