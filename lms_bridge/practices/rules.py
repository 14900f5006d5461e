"""Library rules as plain functions: consent, curation states, anonymisation, search input, tags."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..i18n import N_, gettext
from ..projects.forms import COUNTRIES, HRBA_PRINCIPLES, LIBRARY_CONSENT, SDGS

NAMED, ANONYMOUS, NONE = "named", "anonymous", "none"
CONSENT_CHOICES = LIBRARY_CONSENT
CONSENT_WORDING = N_(
    "May the course team publish your project in the library of promising practices, where participants of "
    "later cohorts, facilitators and partner cities can learn from it? You can change or withdraw this choice "
    "at any time from your workspace; withdrawing removes the entry at once.")

THEMES = {
    "climate": N_("Climate adaptation"), "child_labour": N_("Child labour"), "participation": N_("Participation"),
    "disability": N_("Disability inclusion"), "gender": N_("Gender equality"), "migration": N_("Migration"),
    "housing": N_("Housing and land"), "water": N_("Water and sanitation"), "health": N_("Health"),
    "education": N_("Education"), "youth": N_("Children and youth"), "elderly": N_("Older persons"),
    "indigenous": N_("Indigenous peoples"), "transparency": N_("Transparency and anti-corruption"),
    "disaster": N_("Disaster risk reduction"), "vlr": N_("Voluntary local review"),
}
ORG_TYPES = {"local_government": N_("Local government"), "cso": N_("Civil society organisation"),
             "nhri": N_("National human rights institution"), "other": N_("Other")}

DRAFT, IN_REVIEW, CHANGES, APPROVED, PUBLISHED = "draft", "in_review", "changes_requested", "approved", "published"
STATE_LABELS = {DRAFT: N_("Draft"), IN_REVIEW: N_("Waiting for the participant"),
                CHANGES: N_("Changes requested"), APPROVED: N_("Approved by the participant"),
                PUBLISHED: N_("Published")}
# (state, actor, action) -> new state. The participant sees the entry before anyone else can.
TRANSITIONS = {
    (DRAFT, "facilitator", "send"): IN_REVIEW,
    (CHANGES, "facilitator", "send"): IN_REVIEW,
    (APPROVED, "facilitator", "send"): IN_REVIEW,
    (IN_REVIEW, "participant", "approve"): APPROVED,
    (IN_REVIEW, "participant", "ask_changes"): CHANGES,
    (APPROVED, "facilitator", "publish"): PUBLISHED,
    (PUBLISHED, "facilitator", "unpublish"): DRAFT,
    (PUBLISHED, "participant", "ask_changes"): CHANGES,
}
TEXT_LIMITS = {"title": 200, "summary": 1500, "problem": 4000, "approach": 4000, "results": 4000,
               "lessons": 4000, "challenges": 4000, "what_next": 4000, "city": 120}
REQUIRED_TO_SEND = ("title", "summary", "problem", "approach")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TARGET = re.compile(r"^(\d{1,2})\.(\d{1,2}|[a-z])$")


class LibraryRefused(ValueError):
    """A library action that the rules do not allow now; the message says why."""


class EntryInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def transition(state: str, actor: str, action: str) -> str:
    try:
        return TRANSITIONS[(state, actor, action)]
    except KeyError:
        raise LibraryRefused(gettext("This entry cannot be changed that way now (it is: %(state)s).",
                                     state=gettext(STATE_LABELS.get(state, state)))) from None


def effective_consent(choices: list[str]) -> str:
    """A group project is shared only as far as every member allows: any 'none' withdraws it, any
    'anonymous' anonymises it, and members who have not chosen yet keep it unpublished."""
    if not choices or NONE in choices:
        return NONE
    return ANONYMOUS if ANONYMOUS in choices else NAMED


def clean_consent(value: object) -> str:
    if value not in CONSENT_CHOICES:
        raise EntryInvalid({"consent": gettext("Choose whether your project may be shared in the library.")})
    return value  # type: ignore[return-value]


def _choices(values, allowed: dict, field: str, errors: dict) -> list[str]:
    values = [values] if isinstance(values, str) else list(values or [])
    bad = [v for v in values if v not in allowed]
    if bad:
        errors[field] = gettext("Choose from the list.")
    return [k for k in allowed if k in values]


def clean_entry(form: dict, *, for_send: bool = False) -> dict:
    """Validated entry fields from a curation form; EntryInvalid names every problem."""
    errors, out = {}, {}
    for key, limit in TEXT_LIMITS.items():
        value = form.get(key, "")
        value = value if isinstance(value, str) else ""
        value = value.replace("\r\n", "\n").strip()
        if _CONTROL.search(value):
            errors[key] = gettext("This text contains characters that are not allowed.")
        elif len(value) > limit:
            errors[key] = gettext("%(count)s characters; the limit is %(limit)s.", count=len(value), limit=limit)
        out[key] = value
    out["hrba"] = _choices(form.get("hrba"), HRBA_PRINCIPLES, "hrba", errors)
    out["sdgs"] = _choices(form.get("sdgs"), SDGS, "sdgs", errors)
    out["themes"] = _choices(form.get("themes"), THEMES, "themes", errors)
    country = form.get("country", "")
    if country and country not in COUNTRIES:
        errors["country"] = gettext("Choose a country from the list.")
    out["country"] = country if country in COUNTRIES else ""
    org = form.get("org_type", "")
    if org and org not in ORG_TYPES:
        errors["org_type"] = gettext("Choose from the list.")
    out["org_type"] = org if org in ORG_TYPES else ""
    targets = []
    for token in filter(None, re.split(r"[,;\s]+", str(form.get("targets", "")).lower())):
        m = _TARGET.match(token)
        if not m or m.group(1) not in out["sdgs"]:
            errors["targets"] = gettext("Targets look like 11.3 or 10.a and belong to a chosen goal.")
        elif token not in targets:
            targets.append(token)
    out["targets"] = targets
    year = str(form.get("cohort_year", "")).strip()
    if year:
        if not year.isdigit() or not 2000 <= int(year) <= 2100:
            errors["cohort_year"] = gettext("A year between 2000 and 2100.")
            out["cohort_year"] = None
        else:
            out["cohort_year"] = int(year)
    else:
        out["cohort_year"] = None
    if for_send:
        for key in REQUIRED_TO_SEND:
            if not out.get(key) and key not in errors:
                errors[key] = gettext("Fill this in before sending the entry to the participant.")
    if errors:
        raise EntryInvalid(errors)
    return out


def draft_from_project(plan: dict, report: dict, updates: list[dict], *, year: int | None) -> dict:
    """A first draft of the entry from the participant's own plan and report, for the facilitator to edit."""
    challenges = "\n\n".join(u.get("challenges", "") for u in updates if u.get("challenges"))
    return {
        "title": plan.get("title", ""), "summary": "", "problem": plan.get("problem", ""),
        "approach": plan.get("activities", ""), "results": report.get("results", ""),
        "lessons": report.get("lessons_learned", ""), "challenges": challenges, "what_next": report.get("next_steps", ""),
        "hrba": plan.get("hrba_principles", []), "sdgs": plan.get("sdgs", []), "targets": plan.get("sdg_targets", []),
        "themes": [], "country": plan.get("country", "") if plan.get("country") in COUNTRIES else "",
        "city": plan.get("city", ""), "cohort_year": year, "org_type": "",
    }


def tags(entry: dict) -> list[tuple[str, str]]:
    """The filter tags of a published entry."""
    out = [("sdg", g) for g in entry["sdgs"]] + [("target", t) for t in entry["targets"]]
    out += [("hrba", h) for h in entry["hrba"]] + [("theme", t) for t in entry["themes"]]
    if entry["country"]:
        out.append(("country", entry["country"]))
    if entry["city"]:
        out.append(("city", entry["city"].strip().casefold()))
    if entry["cohort_year"]:
        out.append(("year", str(entry["cohort_year"])))
    if entry["org_type"]:
        out.append(("org", entry["org_type"]))
    return out


def fts_query(text: str) -> str:
    """User words as a safe FTS5 query: every word must appear, the last one as a prefix."""
    words = re.findall(r"\w+", text or "")[:12]
    if not words:
        return ""
    quoted = ['"' + w.replace('"', "") + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


FILTER_KINDS = ("sdg", "target", "hrba", "theme", "country", "city", "year", "org")


def clean_filters(args: dict) -> dict[str, str]:
    """Only known filter kinds with short values; an unknown value simply matches nothing."""
    out = {}
    for kind in FILTER_KINDS:
        value = args.get(kind)
        if isinstance(value, str) and value.strip() and len(value) <= 120:
            out[kind] = value.strip().casefold() if kind == "city" else value.strip()
    return out


@dataclass(frozen=True)
class Authorship:
    """Who an entry names: nobody when anonymised (no name, e-mail or user id anywhere in the output)."""
    names: tuple[str, ...]
    anonymised: bool


def authorship(consent: str, member_names: list[str]) -> Authorship:
    if consent == NAMED:
        return Authorship(tuple(n for n in member_names if n), False)
    return Authorship((), True)
