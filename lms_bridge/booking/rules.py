"""Facilitator limits on booking, cancelling and rescheduling; every refusal explains itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Hashable

from .availability import Slot
from ..i18n import gettext as _
from ..i18n import ngettext
from .errors import AttendanceTooEarly, CancellationClosed, LimitReached, Overlap, SlotFull, TooLate
from .zones import format_duration, format_in_zone, to_utc


@dataclass(frozen=True)
class BookingLimits:
    """`None` means unlimited; the deadline and notice are measured back from the slot's start."""

    max_total: int | None = None
    max_active: int | None = None
    cancel_deadline_hours: int = 24
    min_notice_minutes: int = 0


@dataclass(frozen=True)
class ExistingBooking:
    """A participant's booking that still stands (callers leave cancelled bookings out)."""

    start_utc: datetime
    end_utc: datetime
    booking_id: Hashable | None = None


def check_can_book(limits: BookingLimits, participant_bookings: list[ExistingBooking], slot: Slot,
                   now: datetime, *, tz: str = "UTC", slot_taken: int = 0) -> None:
    """Raise TooLate, SlotFull, Overlap or LimitReached if this participant may not book `slot` now.

    `tz` is the participant's zone, used to show times in messages. `slot_taken` counts seats already
    booked by others; the store must still enforce capacity atomically against concurrent bookings.
    """
    now = to_utc(now, "now")
    start, end = to_utc(slot.start_utc, "slot.start_utc"), to_utc(slot.end_utc, "slot.end_utc")
    if start <= now:
        raise TooLate(_("This consultation started at %(start)s; it can no longer be booked.",
                        start=format_in_zone(start, tz)))
    if start < now + timedelta(minutes=limits.min_notice_minutes):
        raise TooLate(_("Bookings close %(notice)s before the start; this consultation starts %(start)s. "
                        "Please choose a later time.", notice=format_duration(limits.min_notice_minutes),
                        start=format_in_zone(start, tz)))
    if slot_taken >= slot.capacity:
        raise SlotFull(_("The consultation at %(start)s is fully booked. Please choose another time.",
                         start=format_in_zone(start, tz)))
    for b in participant_bookings:
        if to_utc(b.start_utc) < end and start < to_utc(b.end_utc):
            raise Overlap(_("You already have a consultation at %(mine)s, which overlaps the one at %(start)s.",
                            mine=format_in_zone(b.start_utc, tz), start=format_in_zone(start, tz)))
    upcoming = sum(1 for b in participant_bookings if to_utc(b.end_utc) > now)
    if limits.max_active is not None and upcoming >= limits.max_active:
        raise LimitReached(ngettext(
            "You already have %(num)d upcoming consultation; the limit is %(limit)d. "
            "Cancel one or wait until it has taken place.",
            "You already have %(num)d upcoming consultations; the limit is %(limit)d. "
            "Cancel one or wait until it has taken place.", upcoming, limit=limits.max_active))
    total = len(participant_bookings)
    if limits.max_total is not None and total >= limits.max_total:
        raise LimitReached(ngettext(
            "You have already booked %(num)d consultation in this course; the limit is %(limit)d.",
            "You have already booked %(num)d consultations in this course; the limit is %(limit)d.",
            total, limit=limits.max_total))


def cancel_deadline(limits: BookingLimits, booking_start: datetime) -> datetime:
    """The last instant (UTC) at which a booking may be cancelled or moved."""
    return to_utc(booking_start, "booking_start") - timedelta(hours=limits.cancel_deadline_hours)


def check_can_cancel(limits: BookingLimits, booking_start: datetime, now: datetime, *, tz: str = "UTC") -> None:
    """Raise CancellationClosed after the deadline; cancelling exactly at the deadline is allowed."""
    deadline = cancel_deadline(limits, booking_start)
    if to_utc(now, "now") > deadline:
        raise CancellationClosed(_(
            "Cancellation closed at %(deadline)s, %(before)s before the consultation. "
            "Please contact your facilitator.", deadline=format_in_zone(deadline, tz),
            before=format_duration(limits.cancel_deadline_hours * 60)))


def check_can_reschedule(limits: BookingLimits, current: ExistingBooking,
                         participant_bookings: list[ExistingBooking], new_slot: Slot, now: datetime,
                         *, tz: str = "UTC", slot_taken: int = 0) -> None:
    """Moving = cancelling `current` (deadline applies) + booking `new_slot` without counting `current`."""
    check_can_cancel(limits, current.start_utc, now, tz=tz)
    others = list(participant_bookings)
    if current in others:
        others.remove(current)
    check_can_book(limits, others, new_slot, now, tz=tz, slot_taken=slot_taken)


def join_link_visible(start: datetime, end: datetime, now: datetime, minutes_before: int = 15) -> bool:
    """Show the join link from `minutes_before` the start until the end, not earlier, not after."""
    now = to_utc(now, "now")
    return to_utc(start, "start") - timedelta(minutes=minutes_before) <= now < to_utc(end, "end")


def check_can_record_attendance(start: datetime, now: datetime, *, tz: str = "UTC") -> None:
    """Attendance is a fact about a consultation that has begun: refuse it before the start."""
    if to_utc(now, "now") < to_utc(start, "start"):
        raise AttendanceTooEarly(_("Attendance can be recorded once the consultation has started, at %(start)s.",
                                   start=format_in_zone(start, tz)))
