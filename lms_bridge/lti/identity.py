"""Who launched: the course role from LTI roles, and the person's name and e-mail made safe to store.

The name and e-mail claims end up in iCalendar invites, CSV exports and Moodle messages: a line break
there would split a header, so they are cleaned when the launch is stored.
"""
from __future__ import annotations

import re

_EMAIL = re.compile(r"[^\s@<>\"',;:()\[\]\\]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z0-9-]{2,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def clean_email(value) -> str:
    """The address when it is one plain address, else "" (the tool then uses no e-mail for this person)."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value if len(value) <= 254 and _EMAIL.fullmatch(value) else ""


def clean_name(value, limit: int = 200) -> str:
    """A display name on one line: control characters and line breaks become single spaces."""
    if not isinstance(value, str):
        return ""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]
