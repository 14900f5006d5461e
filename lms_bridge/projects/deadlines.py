"""Due dates, cut-offs and extensions with Moodle assignment semantics.

Submitting at the due instant is on time; after it is late; after the cut-off is closed.
An extension replaces both the due date and the cut-off for that learner or group.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from ..i18n import _

OPEN = "open"
LATE = "late"
CLOSED = "closed"


class InvalidDeadline(ValueError):
    """A deadline or extension that cannot be applied (naive time, cut-off before due...)."""


class SubmissionClosed(Exception):
    """The cut-off (or the extension) has passed: the stage no longer accepts submissions."""

    def __init__(self, message: str, closed_at: datetime):
        super().__init__(message)
        self.closed_at = closed_at


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidDeadline(f"{name} must be a datetime, not {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidDeadline(f"{name} must be timezone-aware (store times in UTC).")
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class Deadline:
    due_utc: datetime
    cutoff_utc: datetime | None = None

    def __post_init__(self):
        object.__setattr__(self, "due_utc", _aware(self.due_utc, "The due date"))
        if self.cutoff_utc is not None:
            cutoff = _aware(self.cutoff_utc, "The cut-off date")
            if cutoff < self.due_utc:
                raise InvalidDeadline(
                    f"The cut-off date ({format_time(cutoff)}) is before the due date "
                    f"({format_time(self.due_utc)})."
                )
            object.__setattr__(self, "cutoff_utc", cutoff)


def format_time(value: datetime, zone: str = "UTC") -> str:
    """A time in the viewer's IANA zone and language (Babel) with the zone named, e.g.
    'Fri, Jul 9, 2021, 23:59 (Asia/Jakarta, UTC+07:00)'. A stored time at the edge of the calendar
    (year 9999) is shown in UTC rather than overflowing."""
    from ..booking.zones import format_in_zone

    try:
        return format_in_zone(value, zone)
    except (OverflowError, ValueError):
        return f"{value:%Y-%m-%d %H:%M} UTC"


def latest_extension(*extensions: datetime | None) -> datetime | None:
    """The most generous of a learner's own and their group's extensions, if any."""
    found = [_aware(e, "An extension") for e in extensions if e is not None]
    return max(found) if found else None


def effective_deadline(deadline: Deadline, extension_utc: datetime | None = None) -> Deadline:
    """The deadline for one learner or group: an extension moves due and cut-off to its date."""
    if extension_utc is None:
        return deadline
    extension = _aware(extension_utc, "The extension date")
    if extension < deadline.due_utc:
        raise InvalidDeadline(
            f"The extension ({format_time(extension)}) must be after the due date "
            f"({format_time(deadline.due_utc)})."
        )
    return Deadline(extension, extension)


def submission_state(deadline: Deadline, now: datetime, extension: datetime | None = None) -> str:
    """'open' up to and including the due time, 'late' up to the cut-off, then 'closed'."""
    now = _aware(now, "The current time")
    d = effective_deadline(deadline, extension)
    if now <= d.due_utc:
        return OPEN
    if d.cutoff_utc is not None and now > d.cutoff_utc:
        return CLOSED
    return LATE


def check_can_submit(deadline: Deadline, now: datetime, extension: datetime | None = None,
                     zone: str = "UTC") -> str:
    """Return 'open' or 'late', or raise SubmissionClosed naming the cut-off in `zone`."""
    state = submission_state(deadline, now, extension)
    if state == CLOSED:
        d = effective_deadline(deadline, extension)
        what = _("your extension") if extension is not None else _("the cut-off date")
        raise SubmissionClosed(
            _("Submissions closed at %(when)s (%(what)s); ask a facilitator for an extension.",
              when=format_time(d.cutoff_utc, zone), what=what),
            d.cutoff_utc,
        )
    return state


def is_late(deadline: Deadline, submitted_at: datetime, extension: datetime | None = None) -> bool:
    """A submission is late when made after the (extended) due time."""
    return _aware(submitted_at, "The submission time") > effective_deadline(deadline, extension).due_utc

