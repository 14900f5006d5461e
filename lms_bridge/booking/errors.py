"""Named booking errors; each carries the HTTP status a view should answer with."""


class BookingError(Exception):
    """Base of every booking error, so one handler can render them all."""

    status = 400


class InvalidTimeZone(BookingError, ValueError):
    """A zone name that is not an IANA key (Moodle's "99" included)."""


class InvalidAvailability(BookingError, ValueError):
    """An expert's availability that cannot be expanded into slots."""


class NaiveDatetime(BookingError, ValueError):
    """A datetime without tzinfo where an instant is required."""


class InvalidInvite(BookingError, ValueError):
    """Arguments that would produce a wrong iCalendar invite."""


class LimitReached(BookingError):
    """The facilitator's per-participant booking limit is reached."""

    status = 409


class TooLate(BookingError):
    """The slot starts too soon (minimum notice) or has already started."""

    status = 409


class Overlap(BookingError):
    """The participant already holds a booking overlapping the slot."""

    status = 409


class SlotFull(BookingError):
    """Every seat of the slot is taken."""

    status = 409


class CancellationClosed(BookingError):
    """The cancellation deadline has passed."""

    status = 409


class AttendanceTooEarly(BookingError):
    """Attendance recorded before the consultation started."""

    status = 409
