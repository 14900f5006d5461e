"""Form schemas for each project stage and their validation.

Drafts may be incomplete (only types, choices and lengths are checked); a submission must fill
every required field. Errors are one clear message per field.
"""

import re
from dataclasses import dataclass

from ..i18n import N_, _
from .stages import get_stage

TEXT = "text"
TEXTAREA = "textarea"
CHOICE = "choice"
MULTI = "multichoice"
TARGETS = "targets"
ATTACHMENT = "attachment"

COUNTRIES: dict[str, str] = {
    "AF": "Afghanistan", "AU": "Australia", "BD": "Bangladesh", "BT": "Bhutan",
    "BN": "Brunei Darussalam", "KH": "Cambodia", "CN": "China", "FJ": "Fiji", "IN": "India",
    "ID": "Indonesia", "JP": "Japan", "KI": "Kiribati", "LA": "Lao PDR", "MY": "Malaysia",
    "MV": "Maldives", "MH": "Marshall Islands", "FM": "Micronesia", "MN": "Mongolia",
    "MM": "Myanmar", "NR": "Nauru", "NP": "Nepal", "NZ": "New Zealand", "PK": "Pakistan",
    "PW": "Palau", "PG": "Papua New Guinea", "PH": "Philippines", "KR": "Republic of Korea",
    "WS": "Samoa", "SG": "Singapore", "SB": "Solomon Islands", "LK": "Sri Lanka",
    "TH": "Thailand", "TL": "Timor-Leste", "TO": "Tonga", "TV": "Tuvalu", "VU": "Vanuatu",
    "VN": "Viet Nam", "OTHER": N_("Other"),
}

HRBA_PRINCIPLES: dict[str, str] = {
    "participation_inclusion": N_("Participation and inclusion"),
    "transparency_accountability": N_("Transparency and accountability"),
    "equality_non_discrimination": N_("Equality and non-discrimination"),
}

SDGS: dict[str, str] = {
    "1": N_("No Poverty"), "2": N_("Zero Hunger"), "3": N_("Good Health and Well-being"),
    "4": N_("Quality Education"), "5": N_("Gender Equality"), "6": N_("Clean Water and Sanitation"),
    "7": N_("Affordable and Clean Energy"), "8": N_("Decent Work and Economic Growth"),
    "9": N_("Industry, Innovation and Infrastructure"), "10": N_("Reduced Inequalities"),
    "11": N_("Sustainable Cities and Communities"), "12": N_("Responsible Consumption and Production"),
    "13": N_("Climate Action"), "14": N_("Life Below Water"), "15": N_("Life on Land"),
    "16": N_("Peace, Justice and Strong Institutions"), "17": N_("Partnerships for the Goals"),
}

# The library consent asked with the project report (see lms_bridge.practices).
LIBRARY_CONSENT: dict[str, str] = {
    "named": N_("Yes, with my name and city"),
    "anonymous": N_("Yes, anonymised (city and country only)"),
    "none": N_("No, do not share my project"),
}

_TARGET = re.compile(r"^(\d{1,2})\.(\d{1,2}|[a-z])$")
_SEPARATORS = re.compile(r"[,;\s]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FormInvalid(ValueError):
    """A form that does not validate; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str
    required: bool = True
    max_length: int = 2000
    choices: dict[str, str] | None = None
    help: str = ""


@dataclass(frozen=True)
class Form:
    stage: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


PLAN_FORM = Form("project_plan", (
    Field("title", N_("Project title"), TEXT, max_length=200),
    Field("city", N_("City / municipality"), TEXT, max_length=120),
    Field("country", N_("Country"), CHOICE, choices=COUNTRIES),
    Field("country_other", N_("Country (if Other)"), TEXT, required=False, max_length=120),
    Field("problem", N_("Local problem"), TEXTAREA, max_length=4000),
    Field("affected_groups", N_("Who is affected (vulnerable groups)"), TEXTAREA),
    Field("hrba_principles", N_("HRBA principles"), MULTI, choices=HRBA_PRINCIPLES),
    Field("sdgs", N_("Sustainable Development Goals"), MULTI, choices=SDGS),
    Field("sdg_targets", N_("SDG targets"), TARGETS, required=False, max_length=300,
          help=N_("Target numbers separated by commas, e.g. 11.3, 16.7 or 10.a")),
    Field("stakeholders", N_("Stakeholders"), TEXTAREA),
    Field("activities", N_("Activities and timeline"), TEXTAREA, max_length=4000),
    Field("indicators", N_("Indicators of success"), TEXTAREA),
    Field("risks", N_("Risks and how to manage them"), TEXTAREA),
))

PROGRESS_FORM = Form("progress_update", (
    Field("progress", N_("What has been done since the last update"), TEXTAREA, max_length=4000),
    Field("challenges", N_("Challenges"), TEXTAREA),
    Field("support_needed", N_("Questions for the discussion session"), TEXTAREA, required=False),
    Field("next_steps", N_("Next steps"), TEXTAREA),
))

REPORT_FORM = Form("project_report", (
    Field("what_was_done", N_("What was done"), TEXTAREA, max_length=6000),
    Field("results", N_("Results against the indicators"), TEXTAREA, max_length=6000),
    Field("lessons_learned", N_("Lessons learned"), TEXTAREA, max_length=4000),
    Field("next_steps", N_("Next steps"), TEXTAREA, max_length=3000),
    Field("action_plan", N_("Action plan"), TEXTAREA, max_length=6000),
    Field("attachment", N_("Report document (optional)"), ATTACHMENT, required=False, max_length=200),
    Field("library_consent", N_("Share this project in the library of promising practices?"), CHOICE,
          choices=LIBRARY_CONSENT,
          help=N_("Later cohorts, facilitators and partner cities learn from shared projects. "
                  "You can change or withdraw your choice at any time from your workspace.")),
))

PRESENTATION_FORM = Form("final_presentation", (
    Field("slides", N_("Slides (PDF, PowerPoint or OpenDocument)"), ATTACHMENT, max_length=200),
    Field("summary", N_("Short summary"), TEXTAREA, max_length=1500),
))

FORMS: dict[str, Form] = {f.stage: f for f in (PLAN_FORM, PROGRESS_FORM, REPORT_FORM, PRESENTATION_FORM)}


def _single(value):
    """Accept a one-item list, as from MultiDict.to_dict(flat=False)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


def _text(f: Field, value):
    value = _single(value)
    if value is None:
        return "", None
    if not isinstance(value, str):
        return None, _("%(field)s must be text.", field=_(f.label))
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _CONTROL.search(value):
        return None, _("%(field)s contains characters that are not allowed.", field=_(f.label))
    if len(value) > f.max_length:
        return None, _("%(field)s is %(length)s characters long; the limit is %(limit)s.", field=_(f.label),
                      length=len(value), limit=f.max_length)
    return value, None


def _choice(f: Field, value):
    value = _single(value)
    if value is None or value == "":
        return "", None
    if not isinstance(value, str) or value not in f.choices:
        return None, _("Choose a %(field)s from the list.", field=_(f.label).lower())
    return value, None


def _multi(f: Field, value):
    if value is None or value == "":
        return [], None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return None, _("%(field)s: choose from the list.", field=_(f.label))
    unknown = [v for v in value if v not in f.choices]
    if unknown:
        return None, _("%(field)s: %(values)s is not one of the options.", field=_(f.label),
                      values=', '.join(map(repr, unknown)))
    order = list(f.choices)
    return sorted(set(value), key=order.index), None


def _targets(f: Field, value):
    text, error = _text(f, value)
    if error:
        return None, error
    targets, bad = [], []
    for token in filter(None, _SEPARATORS.split(text.lower())):
        m = _TARGET.match(token)
        if not m or not 1 <= int(m.group(1)) <= 17:
            bad.append(token)
        elif token not in targets:
            targets.append(token)
    if bad:
        return None, _("%(field)s: %(values)s is not a target number; write targets like 11.3 or 10.a "
                       "(goal 1 to 17), separated by commas.", field=_(f.label), values=", ".join(bad))
    return targets, None


_CLEANERS = {TEXT: _text, TEXTAREA: _text, CHOICE: _choice, MULTI: _multi,
             TARGETS: _targets, ATTACHMENT: _text}


def _empty(value) -> bool:
    return value in ("", None, [])


def validate_form(form: Form, data: dict, for_submit: bool) -> tuple[dict, dict[str, str]]:
    """(cleaned data, errors by field); unknown keys in `data` are dropped."""
    cleaned, errors = {}, {}
    for f in form.fields:
        value, error = _CLEANERS[f.kind](f, data.get(f.name))
        if error:
            errors[f.name] = error
            continue
        cleaned[f.name] = value
        if for_submit and f.required and _empty(value):
            errors[f.name] = (_("Attach the %(file)s.", file=_(f.label).split(" (")[0].lower())
                              if f.kind == ATTACHMENT
                              else _("Choose at least one option for %(field)s.", field=_(f.label)) if f.kind == MULTI
                              else _("%(field)s is required to submit.", field=_(f.label)))
    if form is PLAN_FORM:
        _check_plan(cleaned, errors, for_submit)
    return cleaned, errors


def _check_plan(cleaned: dict, errors: dict, for_submit: bool) -> None:
    if not for_submit:
        return
    if cleaned.get("country") == "OTHER" and not cleaned.get("country_other") and "country_other" not in errors:
        errors["country_other"] = _("Name the country when you choose Other.")
    if "sdg_targets" in errors or "sdgs" in errors:
        return
    goals = set(cleaned.get("sdgs") or [])
    stray = [t for t in cleaned.get("sdg_targets") or [] if t.split(".")[0] not in goals]
    if stray and goals:
        errors["sdg_targets"] = _("SDG targets: %(targets)s belong to goals you have not selected; select those "
                                  "goals or remove the targets.", targets=", ".join(stray))


def validate_plan(data: dict, for_submit: bool) -> dict[str, str]:
    """Errors by field for the project plan (empty when valid)."""
    return validate_form(PLAN_FORM, data, for_submit)[1]


def clean(stage: str, data: dict, for_submit: bool) -> dict:
    """Cleaned data for a stage's form, or FormInvalid carrying the per-field errors."""
    if stage not in FORMS:
        get_stage(stage)
    cleaned, errors = validate_form(FORMS[stage], data, for_submit)
    if errors:
        raise FormInvalid(errors)
    return cleaned
