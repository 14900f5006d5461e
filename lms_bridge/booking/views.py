"""Expert consultations: experts publish availability, participants book, facilitators oversee.

Views parse the request, call `booking.service`, render. Every query is scoped to the launch's course.
"""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for

from .. import activities
from ..bounds import parse_id
from ..db import booking as q
from ..db import get_db, parse_ts, ts, utcnow, write_transaction
from ..db import lti as lti_q
from ..errors import NotAuthorized, wants_json
from ..i18n import babel_locale, lazy_gettext
from ..i18n import gettext as _
from ..lti.context import current_launch, requires_launch
from ..security import local_target
from . import service
from .errors import BookingError
from .rules import cancel_deadline, check_can_record_attendance, join_link_visible
from .zones import (format_clock, format_day, format_in_zone, format_month, localize, resolve_tz, validate_tz,
                    weekday_names, zone_label)

bp = Blueprint("booking", __name__, url_prefix="/consultations")
COMMON_ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Pacific/Tarawa", "Pacific/Kiritimati",
                "Indian/Maldives", "Asia/Kuala_Lumpur", "Asia/Colombo", "Asia/Manila", "Asia/Kathmandu",
                "Asia/Dhaka", "Asia/Seoul", "Europe/Stockholm", "Europe/Berlin", "Europe/London", "UTC")
# Browsers (ICU) still report some zones by their old names; show the current IANA name.
ICU_LEGACY = {"Asia/Katmandu": "Asia/Kathmandu", "Asia/Calcutta": "Asia/Kolkata", "Asia/Rangoon": "Asia/Yangon",
              "Asia/Saigon": "Asia/Ho_Chi_Minh", "Asia/Dacca": "Asia/Dhaka", "Pacific/Enderbury": "Pacific/Kanton"}
TOPICS = (lazy_gettext("UN human rights mechanisms"), lazy_gettext("HRBA in local planning"),
          lazy_gettext("SDG localisation and voluntary local reviews"), lazy_gettext("Climate adaptation and rights"),
          lazy_gettext("Gender equality"), lazy_gettext("Data and indicators"))
STATUS_WORDS = {"booked": lazy_gettext("Booked"), "cancelled": lazy_gettext("Cancelled"),
                "attended": lazy_gettext("Attended"), "no_show": lazy_gettext("Did not attend")}


def status_word(row: dict) -> str:
    """One word people use for a booking: Booked, Cancelled, Attended or Did not attend."""
    key = "cancelled" if row["status"] == "cancelled" else (row.get("attendance") or row["status"])
    return _(STATUS_WORDS.get(key, STATUS_WORDS["booked"]))


def zone_choices(current: str | None) -> list[str]:
    """The region's zones, plus the one in use when it is not among them."""
    zones = list(COMMON_ZONES)
    if current and current not in zones:
        zones.insert(0, current)
    return zones


def init_app(app):
    app.register_blueprint(bp)
    activities.register("consultations", "booking.index")
    app.jinja_env.filters.setdefault("inzone", lambda value, tz: format_in_zone(parse_ts(value), tz))
    app.jinja_env.filters.setdefault("booking_status", status_word)


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
        raise service.UnknownBooking(_("Missing or invalid %(name)s.", name=name))
    return value


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _parse_month(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value + "-01") if value and len(value) == 7 else None
    except ValueError:
        return None


def day_picker(slots: list[dict], tz: str, day_arg: str | None, month_arg: str | None) -> dict:
    """The month view and the chosen day's times, in the viewer's zone, from the expert's open slots.

    `?day=YYYY-MM-DD` chooses a day (default: the first with free times); `?month=YYYY-MM` pages the grid.
    """
    days: dict[date, list] = {}
    for row in slots:
        start, end = localize(parse_ts(row["start_utc"]), tz), localize(parse_ts(row["end_utc"]), tz)
        days.setdefault(start.date(), []).append({
            "id": row["id"], "start_utc": row["start_utc"], "start": format_clock(start), "end": format_clock(end),
            "seats": row["capacity"] - row["booked"], "capacity": row["capacity"]})
    chosen = _parse_day(day_arg)
    if chosen not in days:
        month = _parse_month(month_arg)
        in_month = [d for d in days if month and (d.year, d.month) == (month.year, month.month)]
        chosen = (in_month or list(days) or [None])[0]
    month = _parse_month(month_arg) or (chosen.replace(day=1) if chosen else None)
    if month is None:
        return {"days": days, "chosen": None, "times": [], "month": None}
    first_day = babel_locale().first_week_day
    weeks = calendar.Calendar(firstweekday=first_day).monthdatescalendar(month.year, month.month)
    names = weekday_names()
    months = sorted({d.replace(day=1) for d in days})
    prev_month = max((m for m in months if m < month), default=None)
    next_month = min((m for m in months if m > month), default=None)
    return {"days": days, "chosen": chosen, "times": days.get(chosen, []), "month": month,
            "month_title": format_month(month), "weeks": weeks,
            "weekdays": [names[(first_day + i) % 7] for i in range(7)],
            "prev_month": prev_month, "next_month": next_month,
            "prev_title": prev_month and format_month(prev_month), "next_title": next_month and format_month(next_month),
            "chosen_title": chosen and format_day(chosen, long=True),
            "labels": {d: format_day(d, long=True) for d in days},
            "zone": zone_label(parse_ts(slots[0]["start_utc"]), tz) if slots else tz}


@bp.get("/")
@requires_launch()
def index():
    launch, db = current_launch(), get_db()
    tz = _tz(launch)
    if launch.is_staff or launch.role == "expert":
        expert = q.expert_by_user(db, launch.scope, launch.user_id)
        upcoming = [b for b in q.expert_bookings(db, expert["id"]) if b["end_utc"] > ts()] if expert else []
        return render_template("booking/staff.html", launch=launch, tz=tz, expert=expert, bookings=upcoming,
                               may_list=service.staff_may_be_experts(db, launch.scope),
                               notices=q.notices(db, launch.scope, launch.user_id))
    topic, language = request.args.get("topic", ""), request.args.get("language", "")
    experts = [e for e in q.list_experts(db, launch.scope)
               if (not topic or topic in e["topics"]) and (not language or language in e["languages"])]
    all_experts = q.list_experts(db, launch.scope)
    now, after = utcnow(), _bookable_after(db, launch.scope)
    mine = [dict(b, join=join_link_visible(parse_ts(b["start_utc"]), parse_ts(b["end_utc"]), now))
            for b in q.participant_bookings(db, launch.scope, launch.user_id)]
    names = {e["id"]: e for e in all_experts}
    return render_template(
        "booking/participant.html", launch=launch, tz=tz, tz_known=bool(launch.timezone), experts=experts,
        topics=sorted({t for e in all_experts for t in e["topics"]}), zones=zone_choices(tz),
        languages=sorted({lang for e in all_experts for lang in e["languages"]}), topic=topic, language=language,
        bookings=mine, experts_by_id=names, notices=q.notices(db, launch.scope, launch.user_id),
        free={e["id"]: len(q.open_slots(db, e["id"], after)) for e in experts}, now=ts(now))


@bp.post("/timezone")
@requires_launch()
def set_timezone():
    launch = current_launch()
    tz = validate_tz(request.form.get("tz_other", "").strip() or request.form.get("tz", ""))
    tz = ICU_LEGACY.get(tz, tz)
    lti_q.set_launch_timezone(get_db(), launch.id, tz)
    if wants_json():
        return jsonify({"ok": True, "tz": tz})
    return redirect(local_target(request.form.get("next"), url_for("booking.index", lt=launch.token)), 303)


def _bookable_after(db, scope) -> str:
    """The earliest start a participant can still book: now plus the course's minimum notice."""
    return ts(utcnow() + timedelta(minutes=service.limits(db, scope).min_notice_minutes))


def _render_expert(expert: dict, *, moving: int | None = None, values: dict | None = None,
                   errors: dict | None = None, status: int = 200):
    launch, db = current_launch(), get_db()
    tz = _tz(launch)
    values = values or {}
    picker = day_picker(q.open_slots(db, expert["id"], _bookable_after(db, launch.scope)), tz, values.get("day") or request.args.get("day"),
                        request.args.get("month"))
    return render_template("booking/expert.html", launch=launch, tz=tz, expert=expert, moving=moving,
                           picker=picker, values=values, errors=errors or {},
                           topics=expert["topics"] or [_(t) for t in TOPICS]), status


@bp.get("/experts/<int:expert_id>")
@requires_launch()
def expert_page(expert_id: int):
    launch, db = current_launch(), get_db()
    expert = q.get_expert(db, launch.scope, expert_id)
    if not expert or not expert["active"]:
        raise service.UnknownBooking(_("This expert is not available in this course."))
    return _render_expert(expert, moving=parse_id(request.args.get("move")))


@bp.post("/book")
@requires_launch("learner")
def book():
    launch, db = current_launch(), get_db()
    data = request.get_json(silent=True) if request.is_json else request.form
    data = data if isinstance(data, dict) or hasattr(data, "get") else {}
    values = {k: str(data.get(k, "") or "").strip() for k in ("topic", "question", "project", "day")}
    values.update(topic=values["topic"][:200], question=values["question"][:4000], project=values["project"][:300])
    raw_slot = str(data.get("slot_id", "") or "").strip()
    slot_id = parse_id(raw_slot)
    if raw_slot and slot_id is None:
        raise service.UnknownBooking(_("This consultation time does not exist in this course."))
    errors = {}
    if slot_id is None:
        errors["slot_id"] = _("Choose a time to book.")
    if not values["topic"]:
        errors["topic"] = _("Choose the topic, so the expert can prepare.")
    if not values["question"]:
        errors["question"] = _("Write your question, so the expert can prepare.")
    try:
        if errors:
            raise service.InvalidBookingForm(" ".join(errors.values()))
        booking_id = service.book(db, launch.scope, slot_id, _person(launch), utcnow(), topic=values["topic"],
                                  question=values["question"], project=values["project"])
    except BookingError as err:
        slot = q.get_slot(db, slot_id) if slot_id else None
        expert_id = slot["expert_id"] if slot else (None if request.is_json else parse_id(request.form.get("expert_id")))
        expert = q.get_expert(db, launch.scope, expert_id) if expert_id else None
        if wants_json() or not expert or not expert["active"]:
            raise
        return _render_expert(expert, values=values, errors=errors or {"form": str(err)}, status=err.status)
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
    raise service.UnknownBooking(_("This booking does not exist or is not yours."))


def _booking_context(launch, db, booking_id: int) -> dict:
    row, expert, viewer = _visible_booking(launch, db, booking_id)
    tz = _tz(launch)
    start, end, now = parse_ts(row["start_utc"]), parse_ts(row["end_utc"]), utcnow()
    deadline = cancel_deadline(service.limits(db, launch.scope), start)
    return {"launch": launch, "tz": tz, "b": row, "expert": expert, "viewer": viewer,
            "starts": format_in_zone(start, tz), "ends": format_in_zone(end, tz),
            "deadline": format_in_zone(deadline, tz), "status_word": status_word(row),
            "can_change": row["status"] == "booked" and now <= deadline, "started": now >= start,
            "join": join_link_visible(start, end, now) and row["status"] == "booked"}


@bp.get("/bookings/<int:booking_id>")
@requires_launch()
def booking_page(booking_id: int):
    launch, db = current_launch(), get_db()
    return render_template("booking/booking.html", done=request.args.get("done"),
                           **_booking_context(launch, db, booking_id))


@bp.get("/bookings/<int:booking_id>/invite.ics")
@requires_launch()
def invite(booking_id: int):
    launch, db = current_launch(), get_db()
    row, expert, _viewer = _visible_booking(launch, db, booking_id)
    body = service.invite(row, expert, domain=_domain(), now=utcnow())
    method = "CANCEL" if row["status"] == "cancelled" else "REQUEST"
    return Response(body, mimetype=f"text/calendar; method={method}", headers={
        "Content-Disposition": f'attachment; filename="consultation-{booking_id}.ics"'})


@bp.get("/bookings/<int:booking_id>/cancel")
@requires_launch("learner")
def confirm_cancel(booking_id: int):
    """Moodle's pattern: a page that asks once, with an optional reason for the expert."""
    launch, db = current_launch(), get_db()
    context = _booking_context(launch, db, booking_id)
    if context["viewer"] != "participant":
        raise service.UnknownBooking(_("This booking does not exist or is not yours."))
    if not context["can_change"]:
        return redirect(url_for("booking.booking_page", booking_id=booking_id, lt=launch.token), 303)
    return render_template("booking/cancel.html", **context)


@bp.post("/bookings/<int:booking_id>/cancel")
@requires_launch("learner")
def cancel(booking_id: int):
    launch = current_launch()
    data = request.get_json(silent=True) if request.is_json else request.form
    reason = str((data or {}).get("reason", "") or "") if hasattr(data, "get") else ""
    service.cancel(get_db(), launch.scope, booking_id, _person(launch), utcnow(), reason=reason)
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
@requires_launch("facilitator", "admin", "expert")
def outcome(booking_id: int):
    launch, db = current_launch(), get_db()
    row, _expert, viewer = _visible_booking(launch, db, booking_id)
    if viewer != "expert":
        raise NotAuthorized(_("Only the expert of this consultation records its outcome."))
    attendance = request.form.get("attendance") or None
    if attendance not in (None, "attended", "no_show"):
        raise service.InvalidBookingForm(_("Attendance is either attended or did not attend."))
    if attendance != row["attendance"] and attendance is not None:
        check_can_record_attendance(parse_ts(row["start_utc"]), utcnow(), tz=_tz(launch))
    with write_transaction(db):
        q.record_outcome(db, booking_id, attendance=attendance, shared_notes=request.form.get("shared_notes", ""),
                         follow_up=request.form.get("follow_up", ""), private_note=request.form.get("private_note", ""))
        if request.form.get("shared_notes") or request.form.get("follow_up"):
            service.notify(db, launch.scope, row["participant_id"],
                           lambda: _("%(name)s shared notes and follow-up actions from your consultation.",
                                     name=launch.display_name))
    return redirect(url_for("booking.booking_page", booking_id=booking_id, lt=launch.token, done="saved"), 303)


from . import staff_views  # noqa: E402,F401  (expert profile, availability and facilitator overview routes)
