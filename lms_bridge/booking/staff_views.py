"""Staff pages of the consultations activity: become an expert, profile and availability, course overview."""
from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from .. import bounds
from ..db import booking as q
from ..db.projects import course_members, roster_member
from ..db import get_db, parse_ts, utcnow, write_transaction
from ..i18n import gettext as _
from ..lti.context import current_launch, requires_launch
from . import forms, service
from .errors import InvalidAvailability, InvalidTimeZone
from .export import overview_csv
from .views import TOPICS, _tz, bp, status_word, zone_choices
from .zones import format_clock, format_day, localize, validate_tz, weekday_names

STAFF = ("facilitator", "admin")
EXPERT_PAGES = STAFF + ("expert",)  # an expert-only member reaches these and nothing else of the staff pages


@bp.post("/expert")
@requires_launch(*STAFF)
def become_expert():
    """"I am an expert for this course": a staff member lists themself (idempotent), if the course allows it."""
    launch, db = current_launch(), get_db()
    if not service.staff_may_be_experts(db, launch.scope) and not q.expert_by_user(db, launch.scope, launch.user_id):
        raise service.ExpertsByInvitation(_("In this course, staff do not list themselves as experts. "
                                            "A facilitator can allow it under Consultations > Overview."))
    with write_transaction(db):
        q.upsert_expert(db, launch.scope, launch.user_id, name=launch.display_name, email=launch.user_email,
                        timezone=_tz(launch))
    return redirect(url_for("booking.profile", lt=launch.token), 303)


def _own_expert(launch, db) -> dict:
    expert = q.expert_by_user(db, launch.scope, launch.user_id)
    if not expert or (launch.role == "expert" and not expert["active"]):  # removed since the launch
        raise service.UnknownBooking(_("You are not listed as an expert in this course yet."))
    return expert


def _published(slots: list[dict], tz: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The expert's upcoming times grouped by day in the viewer's zone: (day, [(time, state)])."""
    days: dict = {}
    now = utcnow()
    for s in slots:
        start = parse_ts(s["start_utc"])
        if start < now or (not s["open"] and not s["booked"]):
            continue
        local = localize(start, tz)
        state = "booked" if s["booked"] >= s["capacity"] else ("partly" if s["booked"] else "open")
        days.setdefault(local.date(), []).append((format_clock(local), state))
    return [(format_day(d), times) for d, times in sorted(days.items())]


def _render_profile(expert: dict, *, draft: dict | None = None, errors: dict | None = None,
                    profile_errors: dict | None = None, profile_values: dict | None = None, status: int = 200):
    launch, db = current_launch(), get_db()
    tz = _tz(launch)
    draft = draft if draft is not None else forms.stored_draft(expert["availability"], expert["timezone"])
    return render_template(
        "booking/profile.html", launch=launch, tz=tz, expert=expert, draft=forms.with_spare_rows(draft),
        errors=errors or {}, profile_errors=profile_errors or {}, pv=profile_values or {},
        zones=zone_choices(draft.get("tz") or expert["timezone"]), topics=[_(t) for t in TOPICS],
        times=forms.TIMES, days=forms.DAYS, day_names=weekday_names(width="wide"), slot_choices=forms.SLOT_CHOICES, buffer_choices=forms.BUFFER_CHOICES,
        published=_published(q.expert_slots(db, expert["id"]), tz), done=request.args.get("done"),
        result=request.args.to_dict()), status


@bp.get("/profile")
@requires_launch(*EXPERT_PAGES)
def profile():
    launch, db = current_launch(), get_db()
    return _render_profile(_own_expert(launch, db))


@bp.post("/profile")
@requires_launch(*EXPERT_PAGES)
def save_profile():
    launch, db = current_launch(), get_db()
    expert = _own_expert(launch, db)
    f = request.form
    values = {k: f.get(k, "").strip() for k in ("bio", "topics", "languages", "meeting_url")}
    values["timezone"] = f.get("tz_other", "").strip() or f.get("timezone", expert["timezone"])
    errors = {}
    try:
        tz = validate_tz(values["timezone"])
    except InvalidTimeZone:
        errors["timezone"] = _("Choose a time zone from the list, or type an IANA name such as Asia/Jakarta.")
    if values["meeting_url"] and not values["meeting_url"].startswith(("https://", "http://")):
        errors["meeting_url"] = _("The meeting link must start with https://")
    if errors:
        return _render_profile(expert, profile_errors=errors, profile_values=values, status=400)
    with write_transaction(db):
        q.update_profile(db, expert["id"], bio=values["bio"][:2000], topics=forms.split_list(values["topics"]),
                         languages=forms.split_list(values["languages"]), timezone=tz,
                         meeting_url=values["meeting_url"])
    return redirect(url_for("booking.profile", lt=launch.token, done="profile"), 303)


@bp.post("/availability")
@requires_launch(*EXPERT_PAGES)
def publish():
    """Validate the rows and materialise the expert's slots; booked slots are never removed.

    A problem re-shows the form with every row as typed and the message beside it (400), nothing saved."""
    launch, db = current_launch(), get_db()
    expert = _own_expert(launch, db)
    draft = forms.read_availability(request.form)
    try:
        avail = forms.parse_availability(draft)
    except forms.InvalidAvailabilityForm as exc:
        return _render_profile(expert, draft=exc.draft, errors=exc.errors, status=400)
    with write_transaction(db):
        q.save_availability(db, expert["id"], forms.stored_form(draft))
        counts = service.publish(db, expert["id"], avail, utcnow())
    return redirect(url_for("booking.profile", lt=launch.token, done="published", **counts) + "#availability", 303)


def _overview_page(launch, db, *, limits=None, staff_experts=None, error=None):
    rows = [dict(r, status_word=status_word(r)) for r in q.course_bookings(db, launch.scope)]
    return render_template("booking/overview.html", launch=launch, tz=_tz(launch), rows=rows,
                           limits=limits or service.limits(db, launch.scope),
                           staff_experts=service.staff_may_be_experts(db, launch.scope)
                           if staff_experts is None else staff_experts,
                           experts=q.list_experts(db, launch.scope, active_only=False),
                           members=course_members(db, launch.scope),
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
        values = {"max_total": forms.optional_int(f.get("max_total"), _("Bookings per participant in total"), 1),
                  "max_active": forms.optional_int(f.get("max_active"), _("Bookings per participant at a time"), 1),
                  "cancel_deadline_hours": forms.optional_int(f.get("cancel_deadline_hours"),
                                                              _("Cancellation deadline"), 0, bounds.MAX_HOURS) or 0,
                  "min_notice_minutes": forms.optional_int(f.get("min_notice_minutes"), _("Minimum notice"), 0,
                                                           bounds.MAX_MINUTES) or 0}
    except InvalidAvailability as exc:
        typed = {k: str(f.get(k, ""))[:30] for k in ("max_total", "max_active", "cancel_deadline_hours",
                                                      "min_notice_minutes")}
        return _overview_page(launch, db, limits=typed, staff_experts=f.get("staff_experts") == "1", error=str(exc))
    values["staff_experts"] = f.get("staff_experts") == "1"
    with write_transaction(db):
        q.save_settings(db, launch.scope, **values)
    return redirect(url_for("booking.overview", lt=launch.token, done="settings"), 303)


@bp.post("/experts")
@requires_launch(*STAFF)
def add_expert():
    """A facilitator makes a member of the course an expert: from their next launch they reach the expert
    pages (profile, availability, their consultations) and, unless they are staff, nothing else."""
    launch, db = current_launch(), get_db()
    member = roster_member(db, launch.scope, request.form.get("user_id", ""))
    if member is None:
        raise service.UnknownBooking(_("Choose a member of this course."))
    with write_transaction(db):
        q.upsert_expert(db, launch.scope, member["user_id"], name=member["name"], email=member["email"],
                        timezone="UTC")
    return redirect(url_for("booking.overview", lt=launch.token, done="expert"), 303)


@bp.post("/experts/<int:expert_id>/active")
@requires_launch(*STAFF)
def set_active(expert_id: int):
    launch, db = current_launch(), get_db()
    with write_transaction(db):
        q.set_expert_active(db, launch.scope, expert_id, request.form.get("active") == "1")
    return redirect(url_for("booking.overview", lt=launch.token), 303)
