"""Parse the expert's plain-text availability and profile forms into domain objects.

One rule per line keeps the form usable on a slow connection without JavaScript:
weekly "Mon 09:00-12:00", one-off "2026-12-03 14:00-16:00", exception "2026-12-24".
"""
from __future__ import annotations

import re
from datetime import date, datetime, time

from .. import bounds
from .availability import Availability, WeeklyRule, validate_availability
from .errors import InvalidAvailability
from .zones import validate_tz

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY = re.compile(r"^(\w{3})\w*\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")
_ONE_OFF = re.compile(r"^(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")
TEXT_FIELDS = ("tz", "valid_from", "valid_until", "weekly", "one_off", "exceptions",
               "slot_minutes", "buffer_minutes", "capacity")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _time(value: str, where: str) -> time:
    try:
        return time.fromisoformat(value.zfill(5))
    except ValueError:
        raise InvalidAvailability(f"{where}: {value!r} is not a time like 09:30.") from None


def _date(value: str, where: str) -> date:
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidAvailability(f"{where}: {value!r} is not a date like 2026-12-03.") from None
    problem = bounds.date_problem(day, where)
    if problem:
        raise InvalidAvailability(problem)
    return day


def _int(value, where: str, lo: int = 0, hi: int = bounds.MAX_COUNT) -> int:
    text = str(value).strip()
    try:
        n = int(text) if len(text) <= 30 else None
    except ValueError:
        n = None
    if n is None:
        raise InvalidAvailability(f"{where} must be a whole number, got {text[:30]!r}.")
    problem = bounds.int_problem(n, lo, hi, where)
    if problem:
        raise InvalidAvailability(problem)
    return n


def parse_availability(form: dict) -> Availability:
    """Build and validate an Availability from the form's text fields; errors name the line."""
    try:
        tz = validate_tz(form.get("tz", ""))
    except ValueError as exc:
        raise InvalidAvailability(f"Time zone: {exc}") from None
    weekly = []
    for n, line in enumerate(_lines(form.get("weekly", "")), 1):
        m = _WEEKLY.match(line)
        if not m or m.group(1).lower() not in DAYS:
            raise InvalidAvailability(f"Weekly hours line {n} {line!r}: write it like 'Mon 09:00-12:00'.")
        weekly.append(WeeklyRule(DAYS.index(m.group(1).lower()), _time(m.group(2), f"Weekly line {n}"),
                                 _time(m.group(3), f"Weekly line {n}")))
    one_off = []
    for n, line in enumerate(_lines(form.get("one_off", "")), 1):
        m = _ONE_OFF.match(line)
        if not m:
            raise InvalidAvailability(f"One-off line {n} {line!r}: write it like '2026-12-03 14:00-16:00'.")
        day = _date(m.group(1), f"One-off line {n}")
        one_off.append((datetime.combine(day, _time(m.group(2), f"One-off line {n}")),
                        datetime.combine(day, _time(m.group(3), f"One-off line {n}"))))
    exceptions = [_date(line, f"Exception line {n}") for n, line in enumerate(_lines(form.get("exceptions", "")), 1)]
    avail = Availability(
        tz=tz, valid_from=_date(form.get("valid_from", ""), "Valid from"),
        valid_until=_date(form.get("valid_until", ""), "Valid until"),
        weekly=weekly, one_off=one_off, exceptions=exceptions,
        slot_minutes=_int(form.get("slot_minutes", 30), "Slot length", 1, 24 * 60),
        buffer_minutes=_int(form.get("buffer_minutes", 0) or 0, "Buffer", 0, 24 * 60),
        capacity=_int(form.get("capacity", 1), "Capacity", 1, 1000))
    return validate_availability(avail)


def availability_text(form: dict) -> dict:
    """The subset of a submitted form that is stored so the expert sees it again next time."""
    return {k: str(form.get(k, "")) for k in TEXT_FIELDS}


def split_list(text: str) -> list[str]:
    """Topics and languages: comma or newline separated, trimmed, without duplicates."""
    seen: list[str] = []
    for part in re.split(r"[,\n]", text or ""):
        part = part.strip()
        if part and part.lower() not in (s.lower() for s in seen):
            seen.append(part)
    return seen


def optional_int(value, where: str, minimum: int = 0, maximum: int = bounds.MAX_COUNT) -> int | None:
    """A blank limit means unlimited."""
    if value is None or str(value).strip() == "":
        return None
    return _int(value, where, minimum, maximum)
