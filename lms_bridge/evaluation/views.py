"""Monitoring and evaluation in the LMS frame: the blueprint and its helpers, the learning-gain report
(facilitators) and the participant's profile. Tracer-study pages are in `tracer_views`."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from ..clients import MoodleClient, MoodleError
from ..db import evaluation as q
from ..db import get_db, parse_ts, write_transaction
from ..db import lti as lq
from ..errors import BridgeError
from ..i18n import babel_locale, current_locale, gettext as _
from ..lti.context import STAFF, current_launch, requires_launch
from ..projects.views import zone_of
from . import grades, report, tracer
from .gain import ORG_TYPES

bp = Blueprint("evaluation", __name__, url_prefix="/app/evaluation")


@bp.before_request
def _record_launch():
    """A launch into these pages fills the course roster too (tracer invitations go to its learners)."""
    from ..errors import LaunchExpired, NotAuthorized
    from ..projects.service import record_launch

    try:
        launch = current_launch()
    except (LaunchExpired, NotAuthorized):
        return None  # the view's decorator refuses it with the right message
    record_launch(get_db(), launch)
    return None


def when(value: str | None, zone: str) -> str:
    """A stored UTC time in the viewer's zone and locale, with the zone named."""
    if not value:
        return ""
    return f"{format_datetime(parse_ts(value), 'medium', tzinfo=ZoneInfo(zone), locale=babel_locale())} ({zone})"


def num(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    return format_decimal(round(value, digits), format=f"#,##0.{'0' * digits}" if digits else "#,##0",
                          locale=babel_locale())


def signed(value, digits: int = 1) -> str:
    return "–" if value is None else ("+" if value > 0 else "") + num(value, digits)


@bp.app_context_processor
def _helpers():
    return {"ev_num": num, "ev_signed": signed}


def _int(name: str, default: int = 0) -> int:
    try:
        return int(request.values.get(name, default))
    except (TypeError, ValueError):
        return default


def _platform(db, launch) -> dict:
    return dict(lq.get_platform(db, launch.platform_id))


def moodle_client(db, launch) -> MoodleClient | None:
    creds = lq.get_moodle_ws(db, launch.platform_id)
    if not creds:
        return None
    wwwroot = creds["url"].removesuffix("/webservice/rest/server.php")
    timeout = float(current_app.config.get("HTTP_TIMEOUT", 15))
    return MoodleClient(current_app.extensions["lms_bridge_http"], wwwroot, creds["token"], timeout=(5, timeout))


def attempts_message(note: str | None) -> str | None:
    if not note:
        return None
    text = _("Per-question results need the functions %(functions)s in the tool's external service, and the "
             "web-service user needs the capability mod/quiz:viewreports in the course.",
             functions=", ".join(grades.QUIZ_FUNCTIONS))
    if note.startswith("refused:"):
        text += " " + _("Moodle answered: %(code)s.", code=note.split(":", 1)[1])
    return text


# --- learning gain -------------------------------------------------------------------------------
@bp.get("/gain")
@requires_launch(*STAFF)
def gain_report():
    launch, db = current_launch(), get_db()
    q.ensure_settings(db, launch.scope)
    data = report.learning_gain(db, launch.scope, _int("page", 1), fmt=signed)
    settings = q.settings(db, launch.scope)
    pre, post = grades.pick_tests(settings["quiz_items"], settings["pre_item_id"], settings["post_item_id"])
    zone = zone_of(launch)
    return render_template("evaluation/gain.html", launch=launch, **data, settings=settings, pre=pre, post=post,
                           refreshed=when(settings["refreshed_at"], zone), org_label=report.org_label,
                           org_short=report.org_short, country_label=report.country_label,
                           attempts_note=attempts_message(settings["attempts_note"]),
                           has_ws=lq.get_moodle_ws(db, launch.platform_id) is not None,
                           notice=request.args.get("notice"))


@bp.post("/gain/refresh")
@requires_launch(*STAFF)
def gain_refresh():
    launch, db = current_launch(), get_db()
    client = moodle_client(db, launch)
    if client is None:
        raise BridgeError(_("This LMS has no web-service credentials in the tool yet: an administrator attaches "
                            "them with `lms-bridge platforms moodle-ws`."), code="no_moodle_ws", status=409)
    try:
        done = grades.refresh(db, client, launch.scope)
    except MoodleError as exc:
        hint = _("Check that %(function)s is in the tool's external service and the web-service user may read "
                 "the course's grades.", function=grades.GRADE_FUNCTION)
        raise BridgeError(_("Moodle did not return the grades: %(reason)s.", reason=exc.message or exc.kind) + " "
                          + hint, code="grades_unavailable", status=502) from None
    notice = _("Grades read for %(n)s participants.", n=done.participants)
    return redirect(url_for(".gain_report", lt=launch.token, notice=notice), 303)


@bp.post("/gain/tests")
@requires_launch(*STAFF)
def gain_tests():
    launch, db = current_launch(), get_db()
    items = {i["id"] for i in q.settings(db, launch.scope)["quiz_items"]}
    pre, post = _int("pre") or None, _int("post") or None
    if (pre and pre not in items) or (post and post not in items):
        raise BridgeError(_("Choose the tests from the list of the course's quizzes."), code="unknown_quiz")
    if pre and pre == post:
        raise BridgeError(_("The pre-test and the post-test must be two different quizzes."), code="same_quiz")
    with write_transaction(db):
        q.choose_tests(db, launch.scope, pre, post, launch.user_id)
    return gain_refresh() if lq.get_moodle_ws(db, launch.platform_id) else redirect(
        url_for(".gain_report", lt=launch.token), 303)


@bp.get("/gain.csv")
@requires_launch(*STAFF)
def gain_csv():
    launch = current_launch()
    return Response(report.gain_csv(get_db(), launch.scope), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=learning-gain.csv"})


# --- participant profile -------------------------------------------------------------------------
@bp.route("/profile", methods=["GET", "POST"])
@requires_launch()
def profile():
    launch, db = current_launch(), get_db()
    errors, status, saved = {}, 200, request.args.get("saved")
    if request.method == "POST":
        org = request.form.get("org_type", "")
        consent = {"yes": True, "no": False}.get(request.form.get("consent", ""))
        if org not in ORG_TYPES and org != "":
            errors["org_type"], status = _("Choose an organisation type from the list."), 400
        else:
            with write_transaction(db):
                q.save_profile(db, launch.scope, launch.user_id, org, consent, _(tracer.CONSENT_WORDING),
                               current_locale())
            return redirect(url_for(".profile", lt=launch.token, saved=1), 303)
    row = q.profile(db, launch.scope, launch.user_id) or {}
    return render_template("evaluation/profile.html", launch=launch, row=row, errors=errors, saved=saved,
                           orgs=[(k, report.org_label(k)) for k in ORG_TYPES], wording=_(tracer.CONSENT_WORDING),
                           consent_at=when(row.get("consent_at"), zone_of(launch))), status


def init_app(app) -> None:
    from . import jobs, tracer_views  # noqa: F401  (tracer_views adds its routes to bp)

    app.register_blueprint(bp)
    jobs.init_app(app)
