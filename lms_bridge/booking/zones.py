"""IANA time zone helpers: validate names, convert instants and show them with the zone named.

Dates, times, weekday and month names come from Babel for the viewer's locale (`i18n.babel_locale`);
the zone's IANA name and UTC offset are always shown beside them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from babel.dates import format_skeleton, get_day_names

from ..i18n import babel_locale, ngettext
from ..i18n import gettext as _
from .errors import InvalidTimeZone, NaiveDatetime


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_tz(name: object) -> str:
    """Return `name` if it is an IANA zone key; Moodle's "99" and free text are rejected."""
    if not isinstance(name, str) or name.strip() not in _known():
        raise InvalidTimeZone(_("Unknown time zone %(name)s; choose an IANA name such as Asia/Jakarta.",
                                name=repr(name)))
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


def format_day(day: date, locale: str | None = None, *, long: bool = False) -> str:
    """A calendar day in the locale: 'Mon, Dec 7, 2026' (or 'Monday, December 7, 2026' when `long`)."""
    return format_skeleton("yMMMMEEEEd" if long else "yMMMEd", day, locale=babel_locale(locale))


def format_month(day: date, locale: str | None = None) -> str:
    """'December 2026' in the locale."""
    return format_skeleton("yMMMM", day, locale=babel_locale(locale))


def format_clock(dt: datetime, locale: str | None = None) -> str:
    """The wall-clock time of an already localised datetime, 24-hour, in the locale's digits and separator."""
    return format_skeleton("Hm", dt, locale=babel_locale(locale))


def weekday_names(locale: str | None = None, width: str = "abbreviated") -> list[str]:
    """Monday..Sunday in the locale ('Mon'..'Sun' in English)."""
    names = get_day_names(width, locale=babel_locale(locale))
    return [names[i] for i in range(7)]


def zone_label(dt_utc: datetime, tz: str) -> str:
    """'Asia/Jakarta, UTC+07:00': the zone named, with its offset at that instant (UTC at the calendar's edge)."""
    local = localize(dt_utc, tz)
    name = "UTC" if local.tzinfo is timezone.utc else validate_tz(tz)
    return f"{name}, {format_offset(local.utcoffset())}"


def format_in_zone(dt_utc: datetime, tz: str, locale: str | None = None) -> str:
    """E.g. 'Mon, Dec 7, 2026, 09:00 (Asia/Jakarta, UTC+07:00)': day and time in the viewer's locale."""
    local = localize(dt_utc, tz)
    return f"{format_day(local.date(), locale)}, {format_clock(local, locale)} ({zone_label(dt_utc, tz)})"


def format_duration(minutes: int, locale: str | None = None) -> str:
    """Human duration for messages: '24 hours', '1 hour', '90 minutes', in the locale's words."""
    if minutes >= 60 and minutes % 60 == 0:
        return ngettext("%(num)d hour", "%(num)d hours", minutes // 60, locale=locale)
    return ngettext("%(num)d minute", "%(num)d minutes", minutes, locale=locale)
