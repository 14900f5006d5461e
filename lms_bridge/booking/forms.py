"""The expert's availability and profile forms: rows of day/start/end selects in, domain objects out.

A refusal never loses what was typed: `read_availability` returns the draft exactly as submitted, and
`InvalidAvailabilityForm` carries an error per row or field so the page shows each one beside its input.
Plain-text lines ("Mon 09:00-12:00", "2026-12-03 14:00-16:00", "2026-12-24") are still accepted in the
`weekly`, `one_off` and `exceptions` fields, for clients that post text and for availability stored so.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from .. import bounds
from ..i18n import gettext as _
from .availability import Availability, WeeklyRule, validate_availability
from .errors import InvalidAvailability, InvalidTimeZone
from .zones import validate_tz

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY = re.compile(r"^(\w{3})\w*\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")
_ONE_OFF = re.compile(r"^(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")
TIMES = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30))  # the selects' choices
SLOT_CHOICES = (15, 20, 30, 45, 60, 90, 120)
BUFFER_CHOICES = (0, 5, 10, 15, 30, 60)
SPARE_ROWS = {"weekly": 2, "one_off": 1, "days_off": 1}
MAX_ROWS = 50
MAX_CAPACITY = 100
MAX_RANGE_DAYS = 366


class InvalidAvailabilityForm(InvalidAvailability):
    """The availability form with problems: `errors` maps a field id to its message, `draft` is what was sent."""

    def __init__(self, errors: dict[str, str], draft: dict):
        super().__init__(_("Please correct the marked fields: %(problems)s", problems=" ".join(errors.values())))
        self.errors, self.draft = errors, draft


def _clean(value) -> str:
    return str(value or "").strip()


def _time(value: str) -> time | None:
    try:
        return time.fromisoformat(value.zfill(5)) if value else None
    except ValueError:
        return None


def _date(value: str) -> date | None:
    """A date in the years people plan for (bounds.MIN_YEAR..MAX_YEAR), else None."""
    try:
        day = date.fromisoformat(value) if value and len(value) <= 10 else None
    except ValueError:
        return None
    return day if day and bounds.date_problem(day, "") is None else None


def _rows(form, *names: str) -> list[dict]:
    lists = [form.getlist(n) if hasattr(form, "getlist") else list(form.get(n) or []) for n in names]
    count = min(max((len(x) for x in lists), default=0), MAX_ROWS)
    return [{n: _clean(x[i]) if i < len(x) else "" for n, x in zip(names, lists)} for i in range(count)]


def _text_lines(text) -> list[str]:
    return [line.strip() for line in str(text or "").splitlines() if line.strip()][:MAX_ROWS]


def draft_from_text(stored: dict) -> dict:
    """Availability kept as text lines (the earlier form, or a text client) as a draft of rows."""
    weekly, one_off, bad = [], [], []
    for line in _text_lines(stored.get("weekly")):
        m = _WEEKLY.match(line)
        if m and m.group(1).lower() in DAYS:
            weekly.append({"day": m.group(1).lower(), "start": m.group(2).zfill(5), "end": m.group(3).zfill(5)})
        else:
            bad.append(_("Weekly hours %(line)s: write it like Mon 09:00-12:00.", line=repr(line)))
    for line in _text_lines(stored.get("one_off")):
        m = _ONE_OFF.match(line)
        if m:
            one_off.append({"date": m.group(1), "start": m.group(2).zfill(5), "end": m.group(3).zfill(5)})
        else:
            bad.append(_("One-off time %(line)s: write it like 2026-12-03 14:00-16:00.", line=repr(line)))
    return {"weekly": weekly, "one_off": one_off, "days_off": _text_lines(stored.get("exceptions")),
            "unreadable": bad}


def stored_draft(stored: dict | None, default_tz: str) -> dict:
    """What the availability form shows: the saved draft (rows, or older text lines) or a starting point."""
    if not stored:
        today = date.today()
        return {"tz": default_tz, "valid_from": str(today), "valid_until": str(today + timedelta(days=56)),
                "weekly": [{"day": "mon", "start": "09:00", "end": "12:00"},
                           {"day": "wed", "start": "14:00", "end": "17:00"}],
                "one_off": [], "days_off": [], "slot_minutes": "45", "buffer_minutes": "15", "capacity": "1"}
    draft = {k: _clean(stored.get(k)) for k in ("tz", "valid_from", "valid_until", "slot_minutes",
                                                "buffer_minutes", "capacity")}
    draft["tz"] = draft["tz"] or default_tz
    if isinstance(stored.get("weekly"), list):
        draft.update(weekly=stored["weekly"], one_off=stored.get("one_off") or [],
                     days_off=stored.get("days_off") or [])
    else:
        text = draft_from_text(stored)
        draft.update(weekly=text["weekly"], one_off=text["one_off"], days_off=text["days_off"])
    return draft


def with_spare_rows(draft: dict) -> dict:
    """The draft plus empty rows to type into (no JavaScript needed to add a row)."""
    out = dict(draft)
    out["weekly"] = list(draft.get("weekly") or []) + [{"day": "", "start": "", "end": ""}] * SPARE_ROWS["weekly"]
    out["one_off"] = list(draft.get("one_off") or []) + [{"date": "", "start": "", "end": ""}] * SPARE_ROWS["one_off"]
    out["days_off"] = list(draft.get("days_off") or []) + [""] * SPARE_ROWS["days_off"]
    return out


def read_availability(form) -> dict:
    """The submitted form as a draft: rows from the selects (blank rows dropped) plus any text lines."""
    get = form.get
    tz_other = _clean(get("tz_other"))
    draft = {"tz": tz_other or _clean(get("tz")), "valid_from": _clean(get("valid_from")),
             "valid_until": _clean(get("valid_until")), "slot_minutes": _clean(get("slot_minutes")) or "30",
             "buffer_minutes": _clean(get("buffer_minutes")) or "0", "capacity": _clean(get("capacity")) or "1"}
    text = draft_from_text({k: get(k) for k in ("weekly", "one_off", "exceptions")})
    weekly = [r for r in _rows(form, "weekly_day", "weekly_start", "weekly_end") if any(r.values())]
    draft["weekly"] = [{"day": r["weekly_day"], "start": r["weekly_start"], "end": r["weekly_end"]}
                       for r in weekly] + text["weekly"]
    one_off = [r for r in _rows(form, "oneoff_date", "oneoff_start", "oneoff_end") if any(r.values())]
    draft["one_off"] = [{"date": r["oneoff_date"], "start": r["oneoff_start"], "end": r["oneoff_end"]}
                        for r in one_off] + text["one_off"]
    days = form.getlist("day_off") if hasattr(form, "getlist") else []
    draft["days_off"] = [d for d in (_clean(x) for x in days[:MAX_ROWS]) if d] + text["days_off"]
    draft["unreadable"] = text["unreadable"]
    return draft


def _whole(value: str, lo: int, hi: int) -> int | None:
    try:
        n = int(value) if len(value) <= 12 else None
    except ValueError:
        return None
    if n is None:
        return None
    return n if lo <= n <= hi else None


def parse_availability(draft: dict, today: date | None = None) -> Availability:
    """Validate a draft into an Availability; every problem is reported at once, keyed by field id."""
    today = today or date.today()
    errors: dict[str, str] = {}
    for n, message in enumerate(draft.get("unreadable") or []):
        errors[f"text-{n}"] = message
    try:
        tz = validate_tz(draft["tz"])
    except InvalidTimeZone:
        tz = "UTC"
        errors["av-tz"] = _("Choose a time zone from the list, or type an IANA name such as Asia/Jakarta.")
    slot = _whole(draft["slot_minutes"], 5, 480)
    if slot is None:
        errors["slot_minutes"] = _("Choose a slot length between 5 and 480 minutes.")
    buffer = _whole(draft["buffer_minutes"], 0, 240)
    if buffer is None:
        errors["buffer_minutes"] = _("Choose a buffer between 0 and 240 minutes.")
    capacity = _whole(draft["capacity"], 1, MAX_CAPACITY)
    if capacity is None:
        errors["capacity"] = _("Participants per slot is a whole number from 1 to %(max)d.", max=MAX_CAPACITY)
    length = timedelta(minutes=slot or 0)

    def window(key: str, start: time | None, end: time | None) -> bool:
        if start is None or end is None:
            errors[key] = _("Choose a start and an end time.")
        elif end <= start:
            errors[key] = _("The end (%(end)s) must be after the start (%(start)s).",
                            start=f"{start:%H:%M}", end=f"{end:%H:%M}")
        elif slot and datetime.combine(today, end) - datetime.combine(today, start) < length:
            errors[key] = _("From %(start)s to %(end)s is shorter than one %(minutes)d-minute slot.",
                            start=f"{start:%H:%M}", end=f"{end:%H:%M}", minutes=slot)
        else:
            return True
        return False

    weekly = []
    for n, row in enumerate(draft["weekly"]):
        start, end = _time(row["start"]), _time(row["end"])
        if row["day"] not in DAYS:
            errors[f"weekly-{n}"] = _("Choose a day of the week.")
        elif window(f"weekly-{n}", start, end):
            weekly.append(WeeklyRule(DAYS.index(row["day"]), start, end))
    one_off = []
    for n, row in enumerate(draft["one_off"]):
        day, start, end = _date(row["date"]), _time(row["start"]), _time(row["end"])
        if day is None or abs((day - today).days) > MAX_RANGE_DAYS:
            errors[f"oneoff-{n}"] = _("Choose a date within a year from today.")
        elif window(f"oneoff-{n}", start, end):
            one_off.append((datetime.combine(day, start), datetime.combine(day, end)))
    days_off = []
    for n, value in enumerate(draft["days_off"]):
        day = _date(value)
        if day is None:
            errors[f"dayoff-{n}"] = _("%(value)s is not a date like 2026-12-24.", value=repr(value))
        else:
            days_off.append(day)
    first, last = _date(draft["valid_from"]), _date(draft["valid_until"])
    if weekly or draft["valid_from"] or draft["valid_until"]:
        if first is None:
            errors["valid_from"] = _("Give the first day of these weekly hours.")
        if last is None:
            errors["valid_until"] = _("Give the last day of these weekly hours.")
        elif first and last < first:
            errors["valid_until"] = _("The last day comes before the first day.")
        elif first and (last - first).days > MAX_RANGE_DAYS:
            errors["valid_until"] = _("Weekly hours can be published for up to a year at a time.")
    if errors:
        raise InvalidAvailabilityForm(errors, draft)
    avail = Availability(tz=tz, valid_from=first or today, valid_until=last or first or today, weekly=weekly,
                         one_off=one_off, exceptions=days_off, slot_minutes=slot, buffer_minutes=buffer,
                         capacity=capacity)
    try:
        return validate_availability(avail)
    except InvalidAvailability as exc:
        raise InvalidAvailabilityForm({"form": str(exc)}, draft) from None


def stored_form(draft: dict) -> dict:
    """The part of a draft that is kept so the expert sees the same rows next time."""
    keys = ("tz", "valid_from", "valid_until", "slot_minutes", "buffer_minutes", "capacity", "weekly", "one_off",
            "days_off")
    return {k: draft.get(k) for k in keys}


def split_list(text: str) -> list[str]:
    """Topics and languages: comma or newline separated, trimmed, without duplicates."""
    seen: list[str] = []
    for part in re.split(r"[,\n]", text or ""):
        part = part.strip()
        if part and part.lower() not in (s.lower() for s in seen):
            seen.append(part)
    return seen


def _int(value, where: str, lo: int = 0, hi: int = bounds.MAX_COUNT) -> int:
    text = str(value).strip()
    try:
        n = int(text) if len(text) <= 30 else None
    except ValueError:
        n = None
    if n is None:
        raise InvalidAvailability(_("%(field)s must be a whole number, got %(value)s.", field=where,
                                    value=repr(text[:30])))
    problem = bounds.int_problem(n, lo, hi, where)
    if problem:
        raise InvalidAvailability(problem)
    return n


def optional_int(value, where: str, minimum: int = 0, maximum: int = bounds.MAX_COUNT) -> int | None:
    """A blank limit means unlimited."""
    if value is None or str(value).strip() == "":
        return None
    return _int(value, where, minimum, maximum)
