"""Sane ranges for numbers and dates people type or send, checked where they are parsed.

SQLite stores 64-bit integers; Python's dates end in year 9999 and overflow when shifted by a zone.
Plain functions, no Flask: each parser raises its own named error with the message returned here.
"""
from __future__ import annotations

from datetime import date, datetime

from .i18n import gettext as _

INT64_MAX = 2 ** 63 - 1
MIN_YEAR, MAX_YEAR = 1900, 2200
MAX_ID = INT64_MAX
MAX_PAGE = 1_000_000
MAX_MINUTES = 366 * 24 * 60  # notice, slot and buffer lengths: a year at most
MAX_HOURS = 366 * 24
MAX_COUNT = 100_000  # capacities and per-participant limits


def int_problem(value: int, lo: int, hi: int, what: str) -> str | None:
    """None when lo <= value <= hi, else a message naming the allowed range."""
    if lo <= value <= hi:
        return None
    if abs(value) < 10 ** 15:
        return _("%(what)s must be between %(lo)s and %(hi)s, got %(value)s.", what=what, lo=format(lo, ","),
                 hi=format(hi, ","), value=format(value, ","))
    return _("%(what)s must be between %(lo)s and %(hi)s; the number given is far too large.", what=what,
             lo=format(lo, ","), hi=format(hi, ","))


def date_problem(value: date | datetime, what: str) -> str | None:
    """None for years MIN_YEAR..MAX_YEAR, else a message."""
    if MIN_YEAR <= value.year <= MAX_YEAR:
        return None
    return _("%(what)s must be between the years %(lo)s and %(hi)s, got %(year)s.", what=what, lo=MIN_YEAR,
             hi=MAX_YEAR, year=value.year)


def parse_id(raw) -> int | None:
    """A positive row id that fits SQLite, or None for anything else (the caller answers 404/400)."""
    try:
        n = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= MAX_ID else None


def clamp_page(raw, last: int = MAX_PAGE) -> int:
    """A page number from a query string: garbage or out-of-range values land on 1 or `last`."""
    try:
        n = int(str(raw).strip())
    except (TypeError, ValueError):
        return 1
    return max(1, min(n, last, MAX_PAGE))
