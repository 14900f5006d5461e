"""Consultation booking domain: availability, limits and invites. Plain functions, no Flask, no database."""

from .availability import (Availability, Slot, WeeklyRule, expand_slots,
                           validate_availability)
from .errors import (BookingError, CancellationClosed, InvalidAvailability, InvalidInvite,
                     InvalidTimeZone, LimitReached, NaiveDatetime, Overlap, SlotFull, TooLate)
from .ics import booking_invite, booking_uid
from .rules import (BookingLimits, ExistingBooking, cancel_deadline, check_can_book, check_can_cancel,
                    check_can_reschedule, join_link_visible)
from .zones import format_in_zone, localize, resolve_tz, validate_tz

__all__ = [
    "Availability", "BookingError", "BookingLimits", "CancellationClosed", "ExistingBooking",
    "InvalidAvailability", "InvalidInvite", "InvalidTimeZone", "LimitReached", "NaiveDatetime", "Overlap",
    "Slot", "SlotFull", "TooLate", "WeeklyRule", "booking_invite", "booking_uid",
    "cancel_deadline", "check_can_book", "check_can_cancel", "check_can_reschedule", "expand_slots",
    "format_in_zone", "join_link_visible", "localize", "resolve_tz", "validate_availability", "validate_tz",
]
