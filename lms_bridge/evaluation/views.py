"""Monitoring and evaluation pages in the LMS frame: learning gain (facilitators), the participant's profile,
tracer-study scheduling and results (facilitators), and the alumni survey (learners)."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from .. import activities
from ..clients import MoodleClient, MoodleError
from ..db import evaluation as q
from ..db import get_db, parse_ts, ts, utcnow, write_transaction
from ..db import lti as lq
from ..errors import BridgeError, NotFound
from ..i18n import babel_locale, gettext as _
from ..lti.context import STAFF, Launch, current_launch, requires_launch
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


def zone_of(launch: Launch) -> str:
    try:
        ZoneInfo(launch.timezone or "UTC")
        return launch.timezone or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


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
    data = report.learning_gain(db, launch.scope, _int("page", 1))
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
                q.save_profile(db, launch.scope, launch.user_id, org, consent, _(tracer.CONSENT_WORDING))
            return redirect(url_for(".profile", lt=launch.token, saved=1), 303)
    row = q.profile(db, launch.scope, launch.user_id) or {}
    return render_template("evaluation/profile.html", launch=launch, row=row, errors=errors, saved=saved,
                           orgs=[(k, report.org_label(k)) for k in ORG_TYPES], wording=_(tracer.CONSENT_WORDING),
                           consent_at=when(row.get("consent_at"), zone_of(launch))), status


# --- tracer study: facilitator -------------------------------------------------------------------
@bp.get("/tracer")
@requires_launch(*STAFF)
def tracer_overview():
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    rows = []
    for rnd in q.rounds(db, launch.scope):
        invited, answered = len(q.invites(db, rnd["id"])), len(q.answers(db, rnd["id"]))
        rows.append({"r": rnd, "opens": when(rnd["opens_at"], zone), "closes": when(rnd["closes_at"], zone),
                     "invited": invited, "answered": answered})
    return render_template("evaluation/tracer.html", launch=launch, rows=rows, zone=zone,
                           consent=q.consent_counts(db, launch.scope), errors={}, form={},
                           questions=tracer.questions_for(db, launch.scope), label=tracer.label)


@bp.post("/tracer/schedule")
@requires_launch(*STAFF)
def tracer_schedule():
    launch, db = current_launch(), get_db()
    zone = zone_of(launch)
    try:
        try:
            closing = date.fromisoformat(request.form.get("closing", ""))
        except ValueError:
            raise tracer.TracerInvalid({"closing": _("Give the date of the closing workshop.")}) from None
        planned = tracer.schedule(closing, tracer.parse_months(request.form.get("months", "")),
                                  _int("weeks", 4), zone)
    except tracer.TracerInvalid as exc:
        return render_template("evaluation/tracer.html", launch=launch, rows=[], zone=zone, errors=exc.errors,
                               consent=q.consent_counts(db, launch.scope), form=request.form,
                               questions=tracer.questions_for(db, launch.scope), label=tracer.label), 400
    questions, link = tracer.questions_for(db, launch.scope), tracer.way_back(db, launch.scope, _platform(db, launch))
    with write_transaction(db):
        for title, opens, closes in planned:
            q.add_round(db, launch.scope, title=title, opens_at=ts(opens), closes_at=ts(closes), questions=questions,
                        link_url=link, created_by=launch.user_id)
    return redirect(url_for(".tracer_overview", lt=launch.token), 303)


@bp.route("/tracer/questions", methods=["GET", "POST"])
@requires_launch(*STAFF)
def tracer_questions():
    launch, db = current_launch(), get_db()
    current, errors, status = tracer.questions_for(db, launch.scope), {}, 200
    if request.method == "POST":
        if request.form.get("action") == "reset":
            with write_transaction(db):
                q.save_question_set(db, launch.scope, [dict(x) for x in tracer.DEFAULT_QUESTIONS])
            return redirect(url_for(".tracer_questions", lt=launch.token, saved=1), 303)
        labels = {x["key"]: request.form.get(f"label_{x['key']}", "") for x in current}
        keep = set(request.form.getlist("keep"))
        new = [(request.form.get(f"new_label_{i}", ""), request.form.get(f"new_kind_{i}", ""),
                request.form.get(f"new_choices_{i}", "")) for i in range(2)]
        try:
            edited = tracer.edit_questions(current, labels, keep, new)
        except tracer.TracerInvalid as exc:
            errors, status = exc.errors, 400
        else:
            with write_transaction(db):
                q.save_question_set(db, launch.scope, edited)
            return redirect(url_for(".tracer_questions", lt=launch.token, saved=1), 303)
    return render_template("evaluation/questions.html", launch=launch, questions=current, errors=errors,
                           label=tracer.label, choice_label=tracer.choice_label, kinds=tracer.KINDS,
                           saved=request.args.get("saved"),
                           form=request.form), status


def _round_or_404(db, launch, round_id: int) -> dict:
    rnd = q.get_round(db, launch.scope, round_id)
    if rnd is None:
        raise NotFound(_("There is no such tracer study round in this course."))
    return rnd


@bp.post("/tracer/<int:round_id>/close")
@requires_launch(*STAFF)
def tracer_close(round_id):
    launch, db = current_launch(), get_db()
    _round_or_404(db, launch, round_id)
    with write_transaction(db):
        if request.form.get("action") == "delete":
            if not q.delete_round(db, launch.scope, round_id):
                raise BridgeError(_("Alumni were already invited to this round: close it instead."),
                                  code="round_started", status=409)
        else:
            q.close_round(db, launch.scope, round_id)
    return redirect(url_for(".tracer_overview", lt=launch.token), 303)


@bp.get("/tracer/<int:round_id>")
@requires_launch(*STAFF)
def tracer_results(round_id):
    launch, db = current_launch(), get_db()
    data = report.tracer_results(db, launch.scope, round_id)
    if data is None:
        raise NotFound(_("There is no such tracer study round in this course."))
    zone = zone_of(launch)
    return render_template("evaluation/results.html", launch=launch, **data, zone=zone,
                           opens=when(data["round"]["opens_at"], zone), closes=when(data["round"]["closes_at"], zone),
                           day=lambda d: format_date(d, "medium", locale=babel_locale()))


@bp.get("/tracer/<int:round_id>.csv")
@requires_launch(*STAFF)
def tracer_csv(round_id):
    launch = current_launch()
    text = report.tracer_csv(get_db(), launch.scope, round_id)
    if text is None:
        raise NotFound(_("There is no such tracer study round in this course."))
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=tracer-{round_id}.csv"})


@bp.get("/participant/<user_id>")
@requires_launch(*STAFF)
def participant(user_id):
    launch, db = current_launch(), get_db()
    record = report.project_record(db, launch.scope, user_id)
    if record["member"] is None and not record["tracer"]:
        raise NotFound(_("This person is not on the course's roster."))
    from ..projects.forms import FORMS

    return render_template("evaluation/participant.html", launch=launch, **record, forms=FORMS, zone=zone_of(launch),
                           when=when, label=tracer.label, choice_label=tracer.choice_label)


# --- tracer study: the alumnus -------------------------------------------------------------------
def _survey_rounds(db, launch) -> list[dict]:
    now = ts()
    return q.open_rounds_for(db, launch.scope, now)


@bp.get("/open")
@requires_launch()
def open_activity():
    """Landing of a `tracer_study` link: facilitators get the overview, alumni the open survey."""
    launch = current_launch()
    if launch.is_staff:
        return redirect(url_for(".tracer_overview", lt=launch.token), 303)
    return redirect(url_for(".survey_list", lt=launch.token), 303)


@bp.get("/survey")
@requires_launch("learner")
def survey_list():
    launch, db = current_launch(), get_db()
    rounds = _survey_rounds(db, launch)
    if len(rounds) == 1:
        return redirect(url_for(".survey", round_id=rounds[0]["id"], lt=launch.token), 303)
    mine = q.answers_of(db, launch.scope, launch.user_id)
    return render_template("evaluation/survey_list.html", launch=launch, rounds=rounds, mine=mine,
                           zone=zone_of(launch), when=when)


@bp.route("/survey/<int:round_id>", methods=["GET", "POST"])
@requires_launch("learner")
def survey(round_id):
    launch, db = current_launch(), get_db()
    rnd = _round_or_404(db, launch, round_id)
    now = ts()
    is_open = rnd["opens_at"] <= now < rnd["closes_at"] and not rnd["closed_at"]
    mine = q.answer(db, round_id, launch.user_id)
    if not is_open and not mine:
        raise NotFound(_("This tracer study is not open."))
    values, errors, status = (mine or {}).get("answers", {}), {}, 200
    if request.method == "POST":
        if not is_open:
            raise BridgeError(_("This tracer study is closed; your answers can no longer change."),
                              code="round_closed", status=409)
        submit = request.form.get("action") == "submit"
        form = {k: request.form.getlist(k) for k in request.form}
        try:
            answers = tracer.clean_answers(rnd["questions"], form, submit)
        except tracer.TracerInvalid as exc:
            errors, status = exc.errors, 400
            values = {x["key"]: (form.get(x["key"], []) if x["kind"] == tracer.MULTI else
                                 (form.get(x["key"]) or [""])[0]) for x in rnd["questions"]}
        else:
            with write_transaction(db):
                q.save_answer(db, round_id, launch.user_id, answers, submit)
            return redirect(url_for(".survey", round_id=round_id, lt=launch.token,
                                    saved="submitted" if submit else "draft"), 303)
    zone = zone_of(launch)
    return render_template("evaluation/survey.html", launch=launch, rnd=rnd, values=values, errors=errors,
                           mine=mine, is_open=is_open, indicators=report.plan_indicators(db, launch.scope,
                                                                                          launch.user_id),
                           closes=when(rnd["closes_at"], zone), saved=request.args.get("saved"),
                           label=tracer.label, choice_label=tracer.choice_label, kinds=tracer), status


# --- the home page and the worker ----------------------------------------------------------------
def home_links(launch: Launch) -> list[tuple]:
    """Cards on the tool's home page: reports for facilitators; profile and open surveys for learners."""
    if launch.is_staff:
        return [("learning_gain", _("Learning gain"), _("Pre- and post-test results side by side, per cohort, "
                                                        "country, organisation type and module."),
                 url_for("evaluation.gain_report", lt=launch.token)),
                ("tracer_study", _("Tracer studies"), _("Follow alumni months after the course: schedule, "
                                                        "questions, response rate and answers."),
                 url_for("evaluation.tracer_overview", lt=launch.token))]
    if launch.role != "learner":
        return []
    links = [("profile", _("Your profile"), _("Your organisation type, and whether the course team may contact "
                                               "you after the course."),
              url_for("evaluation.profile", lt=launch.token))]
    if _survey_rounds(get_db(), launch):
        links.insert(0, ("tracer_survey", _("Tracer study"), _("Tell the course team what happened with your "
                                                                "project since the course."),
                         url_for("evaluation.survey_list", lt=launch.token)))
    return links


def queue_due(app) -> dict:
    """The worker's pass step: tracer invitations and reminders, and the daily grade refresh of each course."""
    from datetime import timedelta

    from ..db import connect
    from ..db import outbox

    db = connect(app.config["DATABASE_URL"])
    try:
        now = utcnow()
        sent = tracer.queue_due(db, now)
        queued = 0
        with write_transaction(db):
            for scope in q.courses_due_refresh(db, ts(now - timedelta(days=1))):
                if lq.get_moodle_ws(db, scope[0]):
                    outbox.enqueue(db, platform_id=scope[0], kind="eval_refresh",
                                   payload={"deployment_id": scope[1], "context_id": scope[2]},
                                   dedupe_key=f"eval_refresh:{scope[0]}:{scope[1]}:{scope[2]}")
                    queued += 1
                q.mark_queued(db, scope, ts(now))
        return {"messages": sent, "refreshes": queued}
    finally:
        db.close()


def eval_refresh(d, job) -> str | None:
    """Outbox handler: re-read one course's pre/post grades (the daily refresh)."""
    p = job["payload"]
    grades.refresh(d.db, d.moodle(), (d.platform["id"], p["deployment_id"], p["context_id"]))
    return None


def init_app(app) -> None:
    from .. import main
    from ..sync import handlers

    app.register_blueprint(bp)
    from ..sync.views import KIND_LABELS

    KIND_LABELS.setdefault("eval_refresh", "Pre/post test grades")
    activities.register("tracer_study", "evaluation.open_activity")
    handlers.HANDLERS.setdefault("eval_refresh", eval_refresh)
    if home_links not in main.HOME_LINKS:
        main.HOME_LINKS.append(home_links)
