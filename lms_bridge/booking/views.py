"""Expert consultations: experts publish availability, participants book, facilitators oversee.

Views parse the request, call `booking.service`, render. Every query is scoped to the launch's course.
"""
from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for

from .. import activities
from ..bounds import parse_id
from ..security import local_target
from ..db import booking as q
from ..db import get_db, parse_ts, ts, utcnow, write_transaction
from ..db import lti as lti_q
from ..errors import NotAuthorized, wants_json
from ..lti.context import current_launch, requires_launch
from . import service
from .errors import BookingError
from .rules import cancel_deadline, join_link_visible
from .zones import format_in_zone, localize, resolve_tz, validate_tz

bp = Blueprint("booking", __name__, url_prefix="/consultations")
COMMON_ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Pacific/Tarawa", "Pacific/Kiritimati",
                "Indian/Maldives", "Asia/Kuala_Lumpur", "Asia/Colombo", "Asia/Manila", "Asia/Kathmandu",
                "Asia/Dhaka", "Asia/Seoul", "Europe/Stockholm", "Europe/Berlin", "Europe/London", "UTC")
# Browsers (ICU) still report some zones by their old names; show the current IANA name.
ICU_LEGACY = {"Asia/Katmandu": "Asia/Kathmandu", "Asia/Calcutta": "Asia/Kolkata", "Asia/Rangoon": "Asia/Yangon",
              "Asia/Saigon": "Asia/Ho_Chi_Minh", "Asia/Dacca": "Asia/Dhaka", "Pacific/Enderbury": "Pacific/Kanton"}
TOPICS = ("UN human rights mechanisms", "HRBA in local planning", "SDG localisation and voluntary local reviews",
          "Climate adaptation and rights", "Gender equality", "Data and indicators")


def init_app(app):
    app.register_blueprint(bp)
    activities.register("consultations", "booking.index")
    app.jinja_env.filters.setdefault("inzone", lambda value, tz: format_in_zone(parse_ts(value), tz))


@bp.errorhandler(BookingError)
def _refused(err: BookingError):
    code = "".join("_" + c.lower() if c.isupper() else c for c in type(err).__name__).lstrip("_")
    if wants_json():
        return jsonify({"ok": False, "error": code, "message": str(err), "status": err.status}), err.status
    launch = current_launch()
    return render_template("booking/refused.html", launch=launch, code=code, message=str(err)), err.status


def _tz(launch) -> str:
    return resolve_tz(launch.timezone, "UTC")


def _person(launch) -> service.Person:
    return service.Person(launch.user_id, launch.display_name, launch.user_email, _tz(launch))


def _domain() -> str:
    return urlsplit(current_app.config["TOOL_URL"]).hostname or "lms-bridge"


def _int_arg(name: str) -> int:
    value = parse_id(request.values.get(name, ""))
    if value is None:
        raise service.UnknownBooking(f"Missing or invalid {name}.")
    return value


def _by_day(rows, tz):
    days = OrderedDict()
    for row in rows:
        local = localize(parse_ts(row["start_utc"]), tz)
        end = localize(parse_ts(row["end_utc"]), tz)
        days.setdefault(f"{local:%A} {local.day} {local:%B %Y}", []).append((row, local, end))
    return days


@bp.get("/")
@requires_launch()
def index():
    launch, db = current_launch(), get_db()
    tz = _tz(launch)
    if launch.is_staff:
        expert = q.expert_by_user(db, launch.scope, launch.user_id)
        upcoming = [b for b in q.expert_bookings(db, expert["id"]) if b["end_utc"] > ts()] if expert else []
        return render_template("booking/staff.html", launch=launch, tz=tz, expert=expert, bookings=upcoming,
                               notices=q.notices(db, launch.scope, launch.user_id))
    topic, language = request.args.get("topic", ""), request.args.get("language", "")
    experts = [e for e in q.list_experts(db, launch.scope)
               if (not topic or topic in e["topics"]) and (not language or language in e["languages"])]
    all_experts = q.list_experts(db, launch.scope)
    now = utcnow()
    mine = [dict(b, join=join_link_visible(parse_ts(b["start_utc"]), parse_ts(b["end_utc"]), now))
            for b in q.participant_bookings(db, launch.scope, launch.user_id)]
    names = {e["id"]: e for e in all_experts}
    return render_template(
        "booking/participant.html", launch=launch, tz=tz, tz_known=bool(launch.timezone), experts=experts,
        topics=sorted({t for e in all_experts for t in e["topics"]}), zones=COMMON_ZONES,
        languages=sorted({lang for e in all_experts for lang in e["languages"]}), topic=topic, language=language,
        bookings=mine, experts_by_id=names, notices=q.notices(db, launch.scope, launch.user_id),
        free={e["id"]: len(q.open_slots(db, e["id"], ts(now))) for e in experts}, now=ts(now))


@bp.post("/timezone")
@requires_launch()
def set_timezone():
    launch = current_launch()
    tz = validate_tz(request.form.get("tz", ""))
    tz = ICU_LEGACY.get(tz, tz)
    lti_q.set_launch_timezone(get_db(), launch.id, tz)
    if wants_json():
        return jsonify({"ok": True, "tz": tz})
    return redirect(local_target(request.form.get("next"), url_for("booking.index", lt=launch.token)), 303)


@bp.get("/experts/<int:expert_id>")
@requires_launch()
def expert_page(expert_id: int):
    launch, db = current_launch(), get_db()
    expert = q.get_expert(db, launch.scope, expert_id)
    if not expert or not expert["active"]:
        raise service.UnknownBooking("This expert is not available in this course.")
    tz = _tz(launch)
    notice = service.limits(db, launch.scope).min_notice_minutes
    after = ts(utcnow() + timedelta(minutes=notice))
    moving = parse_id(request.args.get("move"))
    return render_template("booking/expert.html", launch=launch, tz=tz, expert=expert, moving=moving,
                           days=_by_day(q.open_slots(db, expert_id, after), tz),
                           topics=expert["topics"] or list(TOPICS))


@bp.post("/book")
@requires_launch("learner")
def book():
    launch, db = current_launch(), get_db()
    data = request.get_json(silent=True) if request.is_json else request.form
    data = data if isinstance(data, dict) or hasattr(data, "get") else {}
    slot_id = parse_id(data.get("slot_id", ""))
    if slot_id is None:
        raise service.UnknownBooking("Choose a time to book.")
    topic = str(data.get("topic", "")).strip()[:200]
    question = str(data.get("question", "")).strip()[:4000]
    if not topic or not question:
        raise service.InvalidBookingForm("Please give a topic and your question, so the expert can prepare.")
    booking_id = service.book(db, launch.scope, slot_id, _person(launch), utcnow(), topic=topic,
                              question=question, project=str(data.get("project", "")).strip()[:300])
    if wants_json():
        return jsonify({"ok": True, "booking_id": booking_id}), 201
    return redirect(url_for("booking.booking_page", booking_id=booking_id, lt=launch.token, done="booked"), 303)


def _visible_booking(launch, db, booking_id: int) -> tuple[dict, dict, str]:
    """The booking and its expert, plus who is looking: participant, expert or facilitator."""
    row = q.get_booking(db, launch.scope, booking_id)
    if row:
        expert = q.get_expert(db, launch.scope, row["expert_id"])
        if row["participant_id"] == launch.user_id:
            return row, expert, "participant"
        if expert["user_id"] == launch.user_id:
            return row, expert, "expert"
        if launch.is_staff:
            return row, expert, "facilitator"
    raise service.UnknownBooking("This booking does not exist or is not yours.")


@bp.get("/bookings/<int:booking_id>")
@requires_launch()
def booking_page(booking_id: int):
    launch, db = current_launch(), get_db()
    row, expert, viewer = _visible_booking(launch, db, booking_id)
    tz = _tz(launch)
    start, end, now = parse_ts(row["start_utc"]), parse_ts(row["end_utc"]), utcnow()
    deadline = cancel_deadline(service.limits(db, launch.scope), start)
    return render_template("booking/booking.html", launch=launch, tz=tz, b=row, expert=expert, viewer=viewer,
                           deadline=format_in_zone(deadline, tz), can_change=row["status"] == "booked" and now <= deadline,
                           join=join_link_visible(start, end, now) and row["status"] == "booked",
                           done=request.args.get("done"))


@bp.get("/bookings/<int:booking_id>/invite.ics")
@requires_launch()
def invite(booking_id: int):
    launch, db = current_launch(), get_db()
    row, expert, _viewer = _visible_booking(launch, db, booking_id)
    body = service.invite(row, expert, domain=_domain(), now=utcnow())
    method = "CANCEL" if row["status"] == "cancelled" else "REQUEST"
    return Response(body, mimetype=f"text/calendar; method={method}", headers={
        "Content-Disposition": f'attachment; filename="consultation-{booking_id}.ics"'})


@bp.post("/bookings/<int:booking_id>/cancel")
@requires_launch("learner")
def cancel(booking_id: int):
    launch = current_launch()
    service.cancel(get_db(), launch.scope, booking_id, _person(launch), utcnow())
    if wants_json():
        return jsonify({"ok": True})
    return redirect(url_for("booking.booking_page", booking_id=booking_id, lt=launch.token, done="cancelled"), 303)


@bp.post("/bookings/<int:booking_id>/reschedule")
@requires_launch("learner")
def reschedule(booking_id: int):
    launch = current_launch()
    service.reschedule(get_db(), launch.scope, booking_id, _int_arg("slot_id"), _person(launch), utcnow())
    if wants_json():
        return jsonify({"ok": True})
    return redirect(url_for("booking.booking_page", booking_id=booking_id, lt=launch.token, done="moved"), 303)


@bp.post("/bookings/<int:booking_id>/outcome")
@requires_launch("facilitator", "admin")
def outcome(booking_id: int):
    launch, db = current_launch(), get_db()
    row, _expert, viewer = _visible_booking(launch, db, booking_id)
    if viewer != "expert":
        raise NotAuthorized("Only the expert of this consultation records its outcome.")
    attendance = request.form.get("attendance") or None
    if attendance not in (None, "attended", "no_show"):
        raise service.InvalidBookingForm("Attendance is 'attended' or 'no_show'.")
    with write_transaction(db):
        q.record_outcome(db, booking_id, attendance=attendance, shared_notes=request.form.get("shared_notes", ""),
                         follow_up=request.form.get("follow_up", ""), private_note=request.form.get("private_note", ""))
        if request.form.get("shared_notes") or request.form.get("follow_up"):
            service.notify(db, launch.scope, row["participant_id"],
                           f"{launch.display_name} shared notes and follow-up actions from your consultation.")
    return redirect(url_for("booking.booking_page", booking_id=booking_id, lt=launch.token, done="saved"), 303)


from . import staff_views  # noqa: E402,F401  (expert profile, availability and facilitator overview routes)
