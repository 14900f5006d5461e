"""How project data reads to a person: labels instead of stored keys, times in the viewer's named zone.

The one place the project pages format dates (Babel, the viewer's locale) and turn stored values
(country codes, SDG numbers, principle keys, attachment ids) into words.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_skeleton

from ..db import parse_ts
from ..i18n import _, babel_locale, lazy_gettext
from . import forms, uploads

# upload fields outside the form schemas (the plan's annex) and their labels
ATTACHMENT_LABELS = {"annex": lazy_gettext("Plan annex"), "attachment": lazy_gettext("Report document"),
                     "slides": lazy_gettext("Slides")}

ROLE_LABELS = {"learner": lazy_gettext("Learner"), "facilitator": lazy_gettext("Facilitator"),
               "admin": lazy_gettext("Administrator"), "expert": lazy_gettext("Expert")}

ACTION_LABELS = {
    "save_draft": lazy_gettext("Saved a draft"), "submit": lazy_gettext("Submitted"),
    "comment": lazy_gettext("Commented"), "return_for_revision": lazy_gettext("Returned for revision"),
    "approve": lazy_gettext("Approved"), "grade": lazy_gettext("Graded (in marking)"),
    "mark_ready": lazy_gettext("Marked ready for release"), "back_to_marking": lazy_gettext("Sent back to marking"),
    "release": lazy_gettext("Released the grade"), "set_group": lazy_gettext("Changed the group"),
    "set_deadline": lazy_gettext("Set a deadline"), "grant_extension": lazy_gettext("Granted an extension"),
    "edit_rubric": lazy_gettext("Edited a rubric"), "roster_sync": lazy_gettext("Synced the roster"),
    "set_session": lazy_gettext("Dated a session"),
    "library_consent": lazy_gettext("Chose how the project is shared in the library"),
}


def action_label(action: str) -> str:
    """An audit action in words; one this module does not know reads as its words, not its key."""
    return _(ACTION_LABELS[action]) if action in ACTION_LABELS else action.replace("_", " ").capitalize()

FEEDBACK_LABELS = {"comment": lazy_gettext("Comment"), "returned": lazy_gettext("Returned for revision"),
                   "approved": lazy_gettext("Approved"), "graded": lazy_gettext("Graded")}


def when(value, zone: str) -> str:
    """A stored UTC time (ISO text or aware datetime) in `zone`, e.g. 'Dec 1, 2026, 23:00 Asia/Jakarta'."""
    if value is None or value == "":
        return ""
    moment = parse_ts(value) if isinstance(value, str) else value
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = ZoneInfo("UTC"), "UTC"
    locale = babel_locale()

    def fmt(tzinfo):
        return locale.datetime_formats["medium"].format(format_skeleton("Hm", moment, tzinfo=tzinfo, locale=locale),
                                                        format_skeleton("yMMMd", moment, tzinfo=tzinfo, locale=locale))
    try:
        return f"{fmt(tz)} {zone}"
    except (OverflowError, ValueError):  # a stored time at the calendar's edge (year 9999): shown in UTC
        return f"{fmt(ZoneInfo('UTC'))} UTC"


def role_label(role: str) -> str:
    return _(ROLE_LABELS[role]) if role in ROLE_LABELS else (role or "").capitalize()


def country_name(code: str, other: str = "") -> str:
    """The country's name in the viewer's language (Babel); 'Other' shows what the learner typed."""
    if not code:
        return ""
    if code == "OTHER":
        return other or _("Other")
    return babel_locale().territories.get(code) or forms.COUNTRIES.get(code, code)


def sdg_label(number: str) -> str:
    name = forms.SDGS.get(str(number))
    return _("SDG %(number)s: %(name)s", number=number, name=_(name)) if name else str(number)


def choice_label(field: forms.Field, key: str) -> str:
    if field.name == "country":
        return country_name(key)
    if field.name == "sdgs":
        return sdg_label(key)
    return _(field.choices.get(key, key)) if field.choices else key


def field_label(stage: str, name: str) -> str:
    if name in ATTACHMENT_LABELS:  # upload fields: the short name (the form says "optional" and the types itself)
        return _(ATTACHMENT_LABELS[name])
    form = forms.FORMS.get(stage)
    if form and any(f.name == name for f in form.fields):
        return _(form.field(name).label)
    return name.replace("_", " ").capitalize()


def field_rows(stage: str, data: dict, attachments: dict) -> list[dict]:
    """The answers of a stage as (label, text or file) rows in the form's order, empty answers left out."""
    data = data or {}
    form = forms.FORMS.get(stage)
    order = [f.name for f in form.fields] if form else []
    order += [k for k in data if k not in order]
    rows = []
    for name in order:
        value = data.get(name)
        if value in (None, "", []) or name == "country_other":
            continue
        field = form.field(name) if form and name in {f.name for f in form.fields} else None
        row = {"name": name, "label": field_label(stage, name), "text": "", "file": None}
        if name in ATTACHMENT_LABELS or (field and field.kind == forms.ATTACHMENT):
            row["file"] = attachments.get(str(value))
            row["text"] = row["file"]["display_name"] if row["file"] else _("(file no longer stored)")
        elif field and field.kind == forms.CHOICE:
            row["text"] = (country_name(value, data.get("country_other", "")) if name == "country"
                           else choice_label(field, value))
        elif field and field.kind == forms.MULTI:
            row["text"] = "; ".join(choice_label(field, v) for v in value)
        elif isinstance(value, list):
            row["text"] = ", ".join(map(str, value))
        else:
            row["text"] = str(value)
        rows.append(row)
    return rows


def accepted(kinds) -> dict:
    """What an upload field takes: words for people, `accept=` for the browser."""
    kinds = sorted(kinds)
    extensions = sorted({f".{uploads.KINDS[k][1]}" for k in kinds} |
                        ({".jpeg"} if "jpeg" in kinds else set()))
    return {"accept": ",".join(extensions), "types": ", ".join(f".{uploads.KINDS[k][1]}" for k in kinds)}


@lru_cache(maxsize=1)
def _canonical_zones() -> tuple[str, ...]:
    """IANA zones people live in (zone1970.tab), not the aliases; all of them when the table is missing."""
    for path in (Path("/usr/share/zoneinfo/zone1970.tab"),):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        names = {line.split("\t")[2] for line in lines if line and not line.startswith("#")}
        return tuple(sorted(names | {"UTC"}))
    return tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))))


def zone_groups(current: str) -> list[tuple[str, list[str]]]:
    """Zones grouped by region for a <select>; the current zone is always among them."""
    names = set(_canonical_zones()) | ({current} if current else set())
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(name.split("/", 1)[0] if "/" in name else "UTC", []).append(name)
    return sorted(groups.items(), key=lambda kv: (kv[0] != "UTC", kv[0]))

