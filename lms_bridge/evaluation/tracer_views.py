"""Tracer studies in the LMS frame: scheduling, questions and results for facilitators; the survey for alumni."""
from __future__ import annotations

from datetime import date

from babel.dates import format_date
from flask import Response, redirect, render_template, request, url_for

from ..db import evaluation as q
from ..db import get_db, ts, write_transaction
from ..errors import BridgeError, NotFound
from ..i18n import babel_locale, gettext as _
from ..lti.context import STAFF, current_launch, requires_launch
from ..projects.display import field_rows
from . import report, tracer
from .views import _int, _platform, bp, when, zone_of


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
                           label=tracer.label, choice_label=tracer.choice_label, kind_labels=tracer.KIND_LABELS,
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
                           field_rows=field_rows,
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


