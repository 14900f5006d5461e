"""Staff pages of the consultations activity: become an expert, profile and availability, course overview."""
from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from .. import bounds
from ..db import booking as q
from ..db import get_db, parse_ts, utcnow, write_transaction
from ..lti.context import current_launch, requires_launch
from . import forms, service
from .errors import InvalidAvailability
from .export import overview_csv
from .views import COMMON_ZONES, TOPICS, _tz, bp
from .zones import validate_tz

STAFF = ("facilitator", "admin")


@bp.post("/expert")
@requires_launch(*STAFF)
def become_expert():
    """"I am an expert for this course": a staff member lists themself (idempotent)."""
    launch, db = current_launch(), get_db()
    with write_transaction(db):
        q.upsert_expert(db, launch.scope, launch.user_id, name=launch.display_name, email=launch.user_email,
                        timezone=_tz(launch))
    return redirect(url_for("booking.profile", lt=launch.token), 303)


def _own_expert(launch, db) -> dict:
    expert = q.expert_by_user(db, launch.scope, launch.user_id)
    if not expert:
        raise service.UnknownBooking("You are not listed as an expert in this course yet.")
    return expert


def _profile_page(launch, db, expert, *, avail=None, error=None):
    avail = avail or expert["availability"] or {
        "tz": expert["timezone"], "slot_minutes": "45", "buffer_minutes": "15", "capacity": "1",
        "weekly": "Mon 09:00-12:00\nWed 14:00-17:00"}
    slots = q.expert_slots(db, expert["id"])
    return render_template("booking/profile.html", launch=launch, tz=_tz(launch), expert=expert, avail=avail,
                           zones=COMMON_ZONES, topics=TOPICS, slots=slots, done=request.args.get("done"),
                           result=request.args.to_dict(), error=error), 400 if error else 200


@bp.get("/profile")
@requires_launch(*STAFF)
def profile():
    launch, db = current_launch(), get_db()
    return _profile_page(launch, db, _own_expert(launch, db))


@bp.post("/profile")
@requires_launch(*STAFF)
def save_profile():
    launch, db = current_launch(), get_db()
    expert = _own_expert(launch, db)
    tz = validate_tz(request.form.get("timezone", expert["timezone"]))
    meeting = request.form.get("meeting_url", "").strip()
    if meeting and not meeting.startswith(("https://", "http://")):
        raise service.InvalidBookingForm("The meeting link must start with https://")
    with write_transaction(db):
        q.update_profile(db, expert["id"], bio=request.form.get("bio", "").strip()[:2000],
                         topics=forms.split_list(request.form.get("topics", "")),
                         languages=forms.split_list(request.form.get("languages", "")), timezone=tz,
                         meeting_url=meeting)
    return redirect(url_for("booking.profile", lt=launch.token, done="profile"), 303)


@bp.post("/availability")
@requires_launch(*STAFF)
def publish():
    """Parse, validate and materialise the expert's slots; booked slots are never removed."""
    launch, db = current_launch(), get_db()
    expert = _own_expert(launch, db)
    try:
        avail = forms.parse_availability(request.form)
    except InvalidAvailability as exc:  # the form again, as typed, with what to fix
        return _profile_page(launch, db, expert, avail=forms.availability_text(request.form), error=str(exc))
    with write_transaction(db):
        q.save_availability(db, expert["id"], forms.availability_text(request.form))
        counts = service.publish(db, expert["id"], avail, utcnow())
    return redirect(url_for("booking.profile", lt=launch.token, done="published", **counts), 303)


def _overview_page(launch, db, *, limits=None, error=None):
    return render_template("booking/overview.html", launch=launch, tz=_tz(launch),
                           rows=q.course_bookings(db, launch.scope), limits=limits or service.limits(db, launch.scope),
                           experts=q.list_experts(db, launch.scope, active_only=False),
                           done=request.args.get("done"), error=error), 400 if error else 200


@bp.get("/overview")
@requires_launch(*STAFF)
def overview():
    launch, db = current_launch(), get_db()
    return _overview_page(launch, db)


@bp.get("/overview.csv")
@requires_launch(*STAFF)
def overview_export():
    launch, db = current_launch(), get_db()
    body = overview_csv(q.course_bookings(db, launch.scope), _tz(launch), parse_ts)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="consultations.csv"'})


@bp.post("/settings")
@requires_launch(*STAFF)
def save_settings():
    launch, db = current_launch(), get_db()
    f = request.form
    try:
        values = {"max_total": forms.optional_int(f.get("max_total"), "Bookings per participant in total", 1),
                  "max_active": forms.optional_int(f.get("max_active"), "Bookings per participant at a time", 1),
                  "cancel_deadline_hours": forms.optional_int(f.get("cancel_deadline_hours"),
                                                              "Cancellation deadline", 0, bounds.MAX_HOURS) or 0,
                  "min_notice_minutes": forms.optional_int(f.get("min_notice_minutes"), "Minimum notice", 0,
                                                           bounds.MAX_MINUTES) or 0}
    except InvalidAvailability as exc:
        typed = {k: str(f.get(k, ""))[:30] for k in ("max_total", "max_active", "cancel_deadline_hours",
                                                      "min_notice_minutes")}
        return _overview_page(launch, db, limits=typed, error=str(exc))
    with write_transaction(db):
        q.save_settings(db, launch.scope, **values)
    return redirect(url_for("booking.overview", lt=launch.token, done="settings"), 303)


@bp.post("/experts/<int:expert_id>/active")
@requires_launch(*STAFF)
def set_active(expert_id: int):
    launch, db = current_launch(), get_db()
    with write_transaction(db):
        q.set_expert_active(db, launch.scope, expert_id, request.form.get("active") == "1")
    return redirect(url_for("booking.overview", lt=launch.token), 303)


