"""Where a launch lands: each workflow blueprint registers the view for its activity keys."""
from __future__ import annotations

from flask import url_for

from .i18n import N_

# activity key -> (title, score maximum or None when the activity is not graded)
CATALOGUE = {
    "project_plan": (N_("Course project: project plan"), 100),
    "project_report": (N_("Course project: project report"), 100),
    "final_presentation": (N_("Course project: final presentation"), 100),
    "consultations": (N_("Expert consultations"), None),
    "practices_library": (N_("Library of promising practices"), None),
}
DESCRIPTIONS = {
    "project_plan": N_("Submit the plan for your course project in your city; facilitators review and grade it."),
    "project_report": N_("Report what your project did, its results against your indicators, and your action plan."),
    "final_presentation": N_("Upload the slides you present at the closing workshop."),
    "consultations": N_("Book an online consultation with a human rights expert."),
    "practices_library": N_("Course projects alumni carried out in their cities, searchable by SDG, principle and country."),
}
_ENDPOINTS: dict[str, str] = {}


def register(activity: str, endpoint: str) -> None:
    _ENDPOINTS[activity] = endpoint


def endpoint_for(activity: str | None) -> str | None:
    return _ENDPOINTS.get(activity or "")


def landing_url(activity: str | None, token: str) -> str:
    endpoint = endpoint_for(activity)
    return url_for(endpoint, lt=token) if endpoint else url_for("main.home", lt=token)
