"""Booking use cases over the store: publish availability, book, move, cancel, notify.

Each write runs in one transaction: on SQLite BEGIN IMMEDIATE, so the limit checks and the conditional
seat UPDATE see the same state; on PostgreSQL a participant's own requests queue (their limit checks stay
exact) while other participants book at once. Seats are one conditional UPDATE under a CHECK, and the
schema (SQLite's triggers, PostgreSQL's exclusion constraints) is the last word against overlaps.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import bounds
from ..db import booking as q
from ..db import lti as lti_q
from ..db import outbox, parse_ts, ts, write_transaction
from ..i18n import gettext as _
from ..lti.identity import clean_email, clean_name
from .availability import Availability, Slot, expand_slots
from .errors import BookingError, Overlap, SlotFull
from .ics import booking_invite, booking_uid
from .rules import BookingLimits, ExistingBooking, check_can_book, check_can_cancel, check_can_reschedule
from .zones import format_in_zone

REMINDER_HOURS = 24


class UnknownBooking(BookingError):
    """No such booking, slot or expert in this course (or it belongs to someone else)."""

    status = 404


class InvalidBookingForm(BookingError):
    """A booking or outcome form with a missing or impossible field."""


class ExpertsByInvitation(BookingError):
    """A facilitator offered "I am an expert" where the course does not let staff list themselves."""

    status = 403


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    email: str
    tz: str


def staff_may_be_experts(db, scope) -> bool:
    """The course setting: may facilitators list themselves with "I am an expert for this course"?"""
    row = q.get_settings(db, scope)
    return bool(row and row["staff_experts"])


def limits(db, scope) -> BookingLimits:
    row = q.get_settings(db, scope)
    if not row:
        return BookingLimits()
    # Clamped: a value stored before the forms checked ranges must not overflow every page's date arithmetic.
    return BookingLimits(max_total=row["max_total"], max_active=row["max_active"],
                         cancel_deadline_hours=max(0, min(row["cancel_deadline_hours"], bounds.MAX_HOURS)),
                         min_notice_minutes=max(0, min(row["min_notice_minutes"], bounds.MAX_MINUTES)))


def _slot(row: dict) -> Slot:
    return Slot(parse_ts(row["start_utc"]), parse_ts(row["end_utc"]), row["capacity"])


def _existing(rows: list[dict]) -> list[ExistingBooking]:
    return [ExistingBooking(parse_ts(r["start_utc"]), parse_ts(r["end_utc"]), r["id"]) for r in rows]


def notify(db, scope, user_id: str, text) -> None:
    """In-tool notice always; a Moodle message too when the platform has web-service credentials. `text` is a
    function that builds the words: it runs in the recipient's language (the one of their last launch)."""
    from ..db import i18n as lq
    from ..i18n import using_locale

    with using_locale(lq.person_locale(db, scope[0], user_id)):
        text = text()
    q.add_notice(db, scope, user_id, text)
    if lti_q.get_moodle_ws(db, scope[0]):
        outbox.enqueue(db, platform_id=scope[0], kind="ws_message", payload={"user_id": user_id, "text": text})


def publish(db, expert_id: int, avail: Availability, now: datetime, *, horizon_days: int = 366) -> dict:
    """Replace the expert's unbooked slots with those of `avail`; booked slots are kept as they are.

    Returns counts: created, kept (booked slots that stay), skipped (new slots overlapping kept ones).
    """
    last_day = max([avail.valid_until] + [end.date() for _start, end in avail.one_off])  # one-offs lie anywhere
    end = min(datetime.combine(last_day, datetime.min.time()) + timedelta(days=2),
              datetime.combine(now.date(), datetime.min.time()) + timedelta(days=horizon_days))
    wanted = expand_slots(avail, now, end.replace(tzinfo=now.tzinfo))
    created = skipped = 0
    with write_transaction(db):
        q.delete_unbooked_slots(db, expert_id)
        kept = {(r["start_utc"], r["end_utc"]): r for r in q.expert_slots(db, expert_id)}
        for slot in wanted:
            key = (ts(slot.start_utc), ts(slot.end_utc))
            if key in kept:
                q.reopen_slot(db, kept[key]["id"], slot.capacity)
            elif q.insert_slot(db, expert_id, key[0], key[1], slot.capacity):
                created += 1
            else:
                skipped += 1
    return {"created": created, "kept": len(kept), "skipped": skipped}


def _message(expert: dict, start: str, tz: str, what: str) -> str:
    return _("Consultation with %(expert)s on %(when)s: %(what)s.", expert=expert["name"],
             when=format_in_zone(parse_ts(start), tz), what=what)


def _someone(name: str) -> str:
    return name or _("a participant")


def book(db, scope, slot_id: int, who: Person, now: datetime, *, topic: str, question: str,
         project: str = "") -> int:
    """Take one seat atomically; raises SlotFull, Overlap, LimitReached or TooLate with a clear message."""
    with q.participant_transaction(db, scope, who.user_id):
        slot = q.get_slot(db, slot_id)
        expert = q.get_expert(db, scope, slot["expert_id"]) if slot else None
        if not slot or not expert or not expert["active"]:
            raise UnknownBooking(_("This consultation time does not exist in this course."))
        mine = q.participant_bookings(db, scope, who.user_id, active_only=True)
        check_can_book(limits(db, scope), _existing(mine), _slot(slot), now, tz=who.tz, slot_taken=slot["booked"])
        if not q.take_seat(db, slot_id):
            raise SlotFull(_("The consultation at %(start)s is fully booked. Please choose another time.",
                             start=format_in_zone(parse_ts(slot["start_utc"]), who.tz)))
        try:
            booking_id = q.insert_booking(db, scope, {
                "slot_id": slot_id, "expert_id": expert["id"], "participant_id": who.user_id,
                "participant_name": who.name, "participant_email": who.email, "participant_tz": who.tz,
                "start_utc": slot["start_utc"], "end_utc": slot["end_utc"], "topic": topic,
                "question": question, "project": project})
        except q.BookingOverlap:
            raise Overlap(_("You already have a consultation overlapping this time.")) from None
        notify(db, scope, who.user_id, lambda: _message(expert, slot["start_utc"], who.tz, _("booked")))
        notify(db, scope, expert["user_id"], lambda: _message(
            expert, slot["start_utc"], expert["timezone"],
            _("booked by %(name)s (%(topic)s)", name=_someone(who.name), topic=topic)))
    return booking_id


def _own_booking(db, scope, booking_id: int, user_id: str) -> dict:
    row = q.get_booking(db, scope, booking_id)
    if not row or row["participant_id"] != user_id:
        raise UnknownBooking(_("This booking does not exist or is not yours."))
    return row


def cancel(db, scope, booking_id: int, who: Person, now: datetime, reason: str = "") -> None:
    """Cancel and free the seat; the optional `reason` goes to the expert in the notice and the invite."""
    reason = " ".join((reason or "").split())[:500]
    with q.participant_transaction(db, scope, who.user_id):
        row = _own_booking(db, scope, booking_id, who.user_id)
        if row["status"] != "booked":
            raise UnknownBooking(_("This booking is already cancelled."))
        check_can_cancel(limits(db, scope), parse_ts(row["start_utc"]), now, tz=who.tz)
        if not q.cancel_booking(db, booking_id, reason):  # the row decides: a seat is freed once
            raise UnknownBooking(_("This booking is already cancelled."))
        q.release_seat(db, row["slot_id"])
        expert = q.get_expert(db, scope, row["expert_id"])
        notify(db, scope, who.user_id, lambda: _message(expert, row["start_utc"], who.tz, _("cancelled")))

        def to_expert():
            what = (_("cancelled by %(name)s, who wrote: %(reason)s", name=_someone(who.name), reason=reason)
                    if reason else _("cancelled by %(name)s", name=_someone(who.name)))
            return _message(expert, row["start_utc"], expert["timezone"], what)

        notify(db, scope, expert["user_id"], to_expert)


def reschedule(db, scope, booking_id: int, new_slot_id: int, who: Person, now: datetime) -> None:
    """Move a booking to another slot of the same expert: same UID, SEQUENCE + 1."""
    with q.participant_transaction(db, scope, who.user_id):
        row = _own_booking(db, scope, booking_id, who.user_id)
        new = q.get_slot(db, new_slot_id)
        if row["status"] != "booked" or not new or new["expert_id"] != row["expert_id"] or new["id"] == row["slot_id"]:
            raise UnknownBooking(_("Choose another free time of the same expert for an active booking."))
        mine = q.participant_bookings(db, scope, who.user_id, active_only=True)
        current = next(b for b in _existing(mine) if b.booking_id == booking_id)
        check_can_reschedule(limits(db, scope), current, _existing(mine), _slot(new), now, tz=who.tz,
                             slot_taken=new["booked"])
        q.lock_slots(db, [row["slot_id"], new_slot_id])
        if not q.take_seat(db, new_slot_id):
            raise SlotFull(_("That time has just been fully booked. Please choose another time."))
        q.release_seat(db, row["slot_id"])
        try:
            q.move_booking(db, booking_id, new)
        except q.BookingOverlap:
            raise Overlap(_("You already have a consultation overlapping the new time.")) from None
        expert = q.get_expert(db, scope, row["expert_id"])
        notify(db, scope, who.user_id, lambda: _message(expert, new["start_utc"], who.tz, _("moved to this time")))
        notify(db, scope, expert["user_id"], lambda: _message(
            expert, new["start_utc"], expert["timezone"], _("moved here by %(name)s", name=_someone(who.name))))


def invite(booking: dict, expert: dict, *, domain: str, now: datetime) -> bytes:
    """The participant's .ics: stable UID per booking, SEQUENCE from the row, CANCEL once cancelled."""
    cancelled = booking["status"] == "cancelled"
    description = f"{booking['topic']}\n\n{booking['question']}"
    if cancelled and booking.get("cancel_reason"):
        description = _("Reason for cancelling: %(reason)s", reason=booking["cancel_reason"]) + "\n\n" + description
    return booking_invite(
        uid=booking_uid(booking["id"], domain), sequence=booking["sequence"],
        start_utc=parse_ts(booking["start_utc"]), end_utc=parse_ts(booking["end_utc"]),
        summary=_("Consultation with %(expert)s", expert=expert["name"]), description=description,
        organizer_email=clean_email(expert["email"]) or f"expert-{expert['id']}@{domain}",
        organizer_name=clean_name(expert["name"]),
        attendee_email=clean_email(booking["participant_email"]) or f"participant-{booking['participant_id']}@{domain}",
        attendee_name=clean_name(booking["participant_name"]), dtstamp=parse_ts(booking["updated_at"]) or now,
        method="CANCEL" if cancelled else "REQUEST", url=expert["meeting_url"] or None)


def send_due_reminders(db, now: datetime, hours: int = REMINDER_HOURS) -> int:
    """Remind participants of consultations starting within `hours`; the outbox worker calls this."""
    sent = 0
    with write_transaction(db):
        for row in q.due_reminders(db, ts(now + timedelta(hours=hours)), ts(now)):
            scope = (row["platform_id"], row["deployment_id"], row["context_id"])
            expert = q.get_expert(db, scope, row["expert_id"])
            notify(db, scope, row["participant_id"],
                   lambda: _message(expert, row["start_utc"], row["participant_tz"], _("reminder")))
            q.mark_reminded(db, row["id"])
            sent += 1
    return sent
