"""IANA time zone helpers: validate names, convert instants and show them with the zone named."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import InvalidTimeZone, NaiveDatetime

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_tz(name: object) -> str:
    """Return `name` if it is an IANA zone key; Moodle's "99" and free text are rejected."""
    if not isinstance(name, str) or name.strip() not in _known():
        raise InvalidTimeZone(f"Unknown time zone {name!r}; expected an IANA name such as 'Asia/Jakarta'.")
    return name.strip()


def resolve_tz(candidate: object, fallback: str) -> str:
    """Use `candidate` when it is a real zone, else `fallback` (Moodle sends "99" for the site default)."""
    try:
        return validate_tz(candidate)
    except InvalidTimeZone:
        return validate_tz(fallback)


def require_aware(dt: datetime, what: str = "datetime") -> datetime:
    """Refuse naive datetimes: an instant without a zone is ambiguous by up to 26 hours."""
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise NaiveDatetime(f"{what} must be a timezone-aware datetime, got {dt!r}.")
    return dt


def to_utc(dt: datetime, what: str = "datetime") -> datetime:
    """Normalise an aware datetime to UTC for storage and comparison."""
    return require_aware(dt, what).astimezone(timezone.utc)


def localize(dt_utc: datetime, tz: str) -> datetime:
    """The same instant as an aware datetime in `tz` (in UTC when the zone's offset would leave the calendar)."""
    zone = ZoneInfo(validate_tz(tz))
    try:
        return require_aware(dt_utc, "dt_utc").astimezone(zone)
    except OverflowError:
        return dt_utc.astimezone(timezone.utc)


def format_offset(offset: timedelta) -> str:
    """'UTC+05:45' style offset, minutes always shown."""
    total = int(offset.total_seconds()) // 60
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def format_in_zone(dt_utc: datetime, tz: str) -> str:
    """E.g. 'Mon 7 Dec 2026, 09:00 (Asia/Jakarta, UTC+07:00)'; English names, independent of locale."""
    local = localize(dt_utc, tz)
    name = "UTC" if local.tzinfo is timezone.utc else validate_tz(tz)
    return (
        f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local:%H:%M} ({name}, {format_offset(local.utcoffset())})"
    )


def format_duration(minutes: int) -> str:
    """Human duration for messages: '24 hours', '1 hour', '90 minutes'."""
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
