"""Expand an expert's availability, written in the expert's own zone, into bookable UTC slots.

Wall-clock rules stay on the wall clock: a 09:00 Europe/Stockholm rule is 09:00 local all year and its
UTC instant moves with DST. Boundaries are resolved with fold=0 (PEP 495): an ambiguous fall-back time is
its first occurrence, a time inside a spring-forward gap is shifted forward by the gap (02:30 -> 03:30).
Slots are then cut in real elapsed time, so every slot lasts exactly `slot_minutes`, even on DST nights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from ..i18n import gettext as _
from .errors import InvalidAvailability, InvalidTimeZone
from .zones import format_in_zone, localize, resolve_tz, to_utc, validate_tz, weekday_names  # noqa: F401


@dataclass(frozen=True)
class WeeklyRule:
    """Recurring hours: `weekday` 0=Monday..6=Sunday, naive wall-clock `start` < `end`, same day."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True)
class Availability:
    """An expert's hours in their IANA zone; `valid_from`/`valid_until` bound the weekly rules (inclusive).

    One-off windows are naive local datetimes and apply regardless of the date range. `exceptions` are
    whole local days off and remove every slot starting on them, one-offs included.
    """

    tz: str
    valid_from: date
    valid_until: date
    weekly: list[WeeklyRule] = field(default_factory=list)
    one_off: list[tuple[datetime, datetime]] = field(default_factory=list)
    exceptions: list[date] = field(default_factory=list)
    slot_minutes: int = 30
    buffer_minutes: int = 0
    capacity: int = 1


@dataclass(frozen=True, order=True)
class Slot:
    """One bookable slot; `capacity` is 1 for one-to-one, more for a small group."""

    start_utc: datetime
    end_utc: datetime
    capacity: int = 1


def _fail(message: str) -> None:
    raise InvalidAvailability(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_availability(avail: Availability) -> Availability:
    """Reject availability that would expand to nonsense, with a message naming the offending part."""
    try:
        validate_tz(avail.tz)
    except InvalidTimeZone as exc:
        raise InvalidAvailability(_("Availability time zone: %(problem)s", problem=exc)) from None
    if not isinstance(avail.valid_from, date) or not isinstance(avail.valid_until, date):
        _fail(_("The first and last day must be dates."))
    if avail.valid_from > avail.valid_until:
        _fail(_("The dates are reversed: the first day %(first)s is after the last day %(last)s.",
                first=avail.valid_from, last=avail.valid_until))
    if not _is_int(avail.slot_minutes) or avail.slot_minutes < 1:
        _fail(_("The slot length must be a whole number of minutes, at least 1."))
    if not _is_int(avail.buffer_minutes) or avail.buffer_minutes < 0:
        _fail(_("The buffer must be a whole number of minutes, 0 or more."))
    if not _is_int(avail.capacity) or avail.capacity < 1:
        _fail(_("Participants per slot must be at least 1."))
    slot = timedelta(minutes=avail.slot_minutes)
    for n, rule in enumerate(avail.weekly, 1):
        if not _is_int(rule.weekday) or not 0 <= rule.weekday <= 6:
            _fail(_("Weekly hours, row %(n)d: choose a day of the week.", n=n))
        if not isinstance(rule.start, time) or not isinstance(rule.end, time):
            _fail(_("Weekly hours, row %(n)d: start and end must be times.", n=n))
        if rule.start.tzinfo is not None or rule.end.tzinfo is not None:
            _fail(_("Weekly hours, row %(n)d: times must be wall-clock times in %(tz)s.", n=n, tz=avail.tz))
        label = _("Weekly hours, row %(n)d (%(day)s %(start)s–%(end)s)", n=n, day=weekday_names()[rule.weekday],
                  start=f"{rule.start:%H:%M}", end=f"{rule.end:%H:%M}")
        if rule.end <= rule.start:
            _fail(_("%(label)s: the end is not after the start.", label=label))
        length = datetime.combine(date.min, rule.end) - datetime.combine(date.min, rule.start)
        if length < slot:
            _fail(_("%(label)s is shorter than one %(minutes)d-minute slot.", label=label, minutes=avail.slot_minutes))
    for n, pair in enumerate(avail.one_off, 1):
        if len(pair) != 2 or not all(isinstance(x, datetime) for x in pair):
            _fail(_("One-off time %(n)d must have a start and an end.", n=n))
        start, end = pair
        if start.tzinfo is not None or end.tzinfo is not None:
            _fail(_("One-off time %(n)d: times must be wall-clock times in %(tz)s.", n=n, tz=avail.tz))
        label = _("One-off time %(n)d (%(start)s to %(end)s)", n=n, start=f"{start:%Y-%m-%d %H:%M}",
                  end=f"{end:%Y-%m-%d %H:%M}")
        if end <= start:
            _fail(_("%(label)s: the end is not after the start.", label=label))
        if end - start < slot:
            _fail(_("%(label)s is shorter than one %(minutes)d-minute slot.", label=label, minutes=avail.slot_minutes))
    for day in avail.exceptions:
        if not isinstance(day, date) or isinstance(day, datetime):
            _fail(_("Each day off must be a date."))
    return avail


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


def _windows(avail: Availability, zone: ZoneInfo, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """UTC windows of weekly rules on local days first..last, plus every one-off, merged where they touch."""
    raw = []
    day = max(first, avail.valid_from)
    while day <= min(last, avail.valid_until):
        for rule in avail.weekly:
            if rule.weekday == day.weekday():
                raw.append((_instant(datetime.combine(day, rule.start), zone),
                            _instant(datetime.combine(day, rule.end), zone)))
        day += timedelta(days=1)
    raw.extend((_instant(s, zone), _instant(e, zone)) for s, e in avail.one_off)
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(w for w in raw if w[1] > w[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def expand_slots(avail: Availability, window_start_utc: datetime, window_end_utc: datetime) -> list[Slot]:
    """Slots lying wholly inside [window_start_utc, window_end_utc], sorted and without duplicates.

    Overlapping or touching windows are merged before cutting, so one expert never gets overlapping slots.
    """
    validate_availability(avail)
    lo = to_utc(window_start_utc, "window_start_utc")
    hi = to_utc(window_end_utc, "window_end_utc")
    zone = ZoneInfo(avail.tz)
    first = lo.astimezone(zone).date() - timedelta(days=1)
    last = hi.astimezone(zone).date() + timedelta(days=1)
    length = timedelta(minutes=avail.slot_minutes)
    step = length + timedelta(minutes=avail.buffer_minutes)
    days_off = set(avail.exceptions)
    slots = set()
    for start, end in _windows(avail, zone, first, last):
        t = start
        while t + length <= end:
            if lo <= t and t + length <= hi and t.astimezone(zone).date() not in days_off:
                slots.add(Slot(t, t + length, avail.capacity))
            t += step
    return sorted(slots)
