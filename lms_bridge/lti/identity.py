"""Who launched: the course role from LTI roles, and the person's name and e-mail made safe to store.

The name and e-mail claims end up in iCalendar invites, CSV exports and Moodle messages: a line break
there would split a header, so they are cleaned when the launch is stored.
"""
from __future__ import annotations

import re

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
# Facilitator rights come from the course (context) membership only: an institution- or system-level
# Instructor is a teacher somewhere in the institution, not in this course; a Mentor watches learners.
FACILITATOR = frozenset({LIS + "membership#Instructor", "Instructor"})
FACILITATOR_SUBROLE = LIS + "membership/Instructor#"  # TeachingAssistant, Grader, ... of this course
ADMIN = frozenset({LIS + "membership#Administrator", "Administrator", LIS + "institution/person#Administrator",
                   LIS + "system/person#Administrator", LIS + "system/person#SysAdmin"})
LEARNER = frozenset({LIS + "membership#Learner", "Learner"})
LEARNER_SUBROLE = LIS + "membership/Learner#"
STAFF = ("facilitator", "admin")


def role_of(roles) -> str:
    """The tool role of a launch's (or NRPS member's) LTI roles: admin, facilitator, learner, or member
    (in the course without a role the tool acts on: a Mentor, a guest). `expert` is given by the tool."""
    roles = [r for r in roles or [] if isinstance(r, str)] if isinstance(roles, (list, tuple)) else []
    if any(r in ADMIN for r in roles):
        return "admin"
    if any(r in FACILITATOR or r.startswith(FACILITATOR_SUBROLE) for r in roles):
        return "facilitator"
    if any(r in LEARNER or r.startswith(LEARNER_SUBROLE) for r in roles):
        return "learner"
    return "member"

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
