"""Facilitator limits on booking, cancelling and rescheduling; every refusal explains itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Hashable

from .availability import Slot
from .errors import CancellationClosed, LimitReached, Overlap, SlotFull, TooLate
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_can_book(limits: BookingLimits, participant_bookings: list[ExistingBooking], slot: Slot,
                   now: datetime, *, tz: str = "UTC", slot_taken: int = 0) -> None:
    """Raise TooLate, SlotFull, Overlap or LimitReached if this participant may not book `slot` now.

    `tz` is the participant's zone, used to show times in messages. `slot_taken` counts seats already
    booked by others; the store must still enforce capacity atomically against concurrent bookings.
    """
    now = to_utc(now, "now")
    start, end = to_utc(slot.start_utc, "slot.start_utc"), to_utc(slot.end_utc, "slot.end_utc")
    if start <= now:
        raise TooLate(f"This consultation started at {format_in_zone(start, tz)}; it can no longer be booked.")
    if start < now + timedelta(minutes=limits.min_notice_minutes):
        raise TooLate(
            f"Bookings close {format_duration(limits.min_notice_minutes)} before the start; this consultation "
            f"starts {format_in_zone(start, tz)}. Please choose a later time."
        )
    if slot_taken >= slot.capacity:
        raise SlotFull(f"The consultation at {format_in_zone(start, tz)} is fully booked. Please choose another time.")
    for b in participant_bookings:
        if to_utc(b.start_utc) < end and start < to_utc(b.end_utc):
            raise Overlap(
                f"You already have a consultation at {format_in_zone(b.start_utc, tz)}, "
                f"which overlaps the one at {format_in_zone(start, tz)}."
            )
    upcoming = sum(1 for b in participant_bookings if to_utc(b.end_utc) > now)
    if limits.max_active is not None and upcoming >= limits.max_active:
        raise LimitReached(
            f"You already have {_plural(upcoming, 'upcoming consultation')}; the limit is {limits.max_active}. "
            "Cancel one or wait until it has taken place."
        )
    total = len(participant_bookings)
    if limits.max_total is not None and total >= limits.max_total:
        raise LimitReached(
            f"You have already booked {_plural(total, 'consultation')} in this course; "
            f"the limit is {limits.max_total}."
        )


def cancel_deadline(limits: BookingLimits, booking_start: datetime) -> datetime:
    """The last instant (UTC) at which a booking may be cancelled or moved."""
    return to_utc(booking_start, "booking_start") - timedelta(hours=limits.cancel_deadline_hours)


def check_can_cancel(limits: BookingLimits, booking_start: datetime, now: datetime, *, tz: str = "UTC") -> None:
    """Raise CancellationClosed after the deadline; cancelling exactly at the deadline is allowed."""
    deadline = cancel_deadline(limits, booking_start)
    if to_utc(now, "now") > deadline:
        raise CancellationClosed(
            f"Cancellation closed at {format_in_zone(deadline, tz)}, "
            f"{format_duration(limits.cancel_deadline_hours * 60)} before the consultation. "
            "Please contact your facilitator."
        )


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
