"""Project stage forms: drafts may be incomplete, submissions must be complete and well formed."""

import pytest

from lms_bridge.projects import forms
from lms_bridge.projects.forms import FormInvalid, validate_form, validate_plan
from lms_bridge.projects.stages import UnknownStage

PLAN = {
    "title": "Inclusive flood early warning for Makassar",
    "city": "Makassar",
    "country": "ID",
    "problem": "Flood warnings do not reach people with disabilities and informal settlements.",
    "affected_groups": "Persons with disabilities, older persons, women-headed households.",
    "hrba_principles": ["participation_inclusion", "equality_non_discrimination"],
    "sdgs": ["11", "13"],
    "sdg_targets": "11.5, 13.1",
    "stakeholders": "Disaster management agency, DPOs, neighbourhood heads.",
    "activities": "July: consultations. August: pilot SMS and sign-language alerts.",
    "indicators": "Share of registered persons with disabilities reached by alerts.",
    "risks": "Low phone ownership; mitigated by neighbourhood focal points.",
}


def test_complete_plan_submits_and_is_cleaned():
    cleaned, errors = validate_form(forms.PLAN_FORM, dict(PLAN, title="  Spaced title \r\n", extra="x"), True)
    assert errors == {}
    assert cleaned["title"] == "Spaced title"
    assert cleaned["sdgs"] == ["11", "13"]
    assert cleaned["sdg_targets"] == ["11.5", "13.1"]
    assert "extra" not in cleaned
    assert forms.clean("project_plan", PLAN, for_submit=True)["country"] == "ID"


def test_empty_draft_is_fine_but_submission_lists_every_required_field():
    assert validate_plan({}, for_submit=False) == {}
    errors = validate_plan({}, for_submit=True)
    required = {f.name for f in forms.PLAN_FORM.fields if f.required}
    assert set(errors) == required
    assert errors["title"] == "Project title is required to submit."
    assert errors["sdgs"] == "Choose at least one option for Sustainable Development Goals."
    assert errors["hrba_principles"] == "Choose at least one option for HRBA principles."
    assert "sdg_targets" not in errors and "country_other" not in errors


def test_drafts_still_check_types_lengths_and_choices():
    errors = validate_plan({"title": "x" * 201, "country": "XX", "sdgs": ["18"], "city": 5}, for_submit=False)
    assert errors == {
        "title": "Project title is 201 characters long; the limit is 200.",
        "country": "Choose a country from the list.",
        "sdgs": "Sustainable Development Goals: '18' is not one of the options.",
        "city": "City / municipality must be text.",
    }
    assert validate_plan({"title": "x" * 200}, for_submit=False) == {}


def test_control_characters_rejected():
    assert validate_plan({"title": "a\x00b"}, for_submit=False) == {
        "title": "Project title contains characters that are not allowed."}


@pytest.mark.parametrize("text,expected", [
    ("11.3, 16.7", ["11.3", "16.7"]),
    ("11.3;16.7 11.3", ["11.3", "16.7"]),
    ("10.A", ["10.a"]),
    ("17.19", ["17.19"]),
    ("", []),
])
def test_valid_targets(text, expected):
    cleaned, errors = validate_form(forms.PLAN_FORM, {"sdg_targets": text}, False)
    assert errors == {} and cleaned["sdg_targets"] == expected


@pytest.mark.parametrize("text,bad", [("18.1", "18.1"), ("11", "11"), ("11.3.2", "11.3.2"),
                                      ("0.1", "0.1"), ("11.ab", "11.ab"), ("goal 11", "goal")])
def test_invalid_targets(text, bad):
    errors = validate_plan({"sdg_targets": text}, for_submit=False)
    assert errors["sdg_targets"].startswith(f"SDG targets: {bad}")
    assert "like 11.3 or 10.a" in errors["sdg_targets"]


def test_targets_must_belong_to_selected_goals_on_submit():
    data = dict(PLAN, sdg_targets="11.5, 16.7")
    assert validate_plan(data, for_submit=False) == {}
    assert validate_plan(data, for_submit=True) == {
        "sdg_targets": "SDG targets: 16.7 belong to goals you have not selected; "
                       "select those goals or remove the targets."}


def test_other_country_needs_a_name():
    assert validate_plan(dict(PLAN, country="OTHER"), True) == {
        "country_other": "Name the country when you choose Other."}
    assert validate_plan(dict(PLAN, country="OTHER", country_other="Kenya"), True) == {}


def test_catalogues():
    assert len(forms.SDGS) == 17
    assert forms.SDGS["16"] == "Peace, Justice and Strong Institutions"
    assert forms.SDGS["5"] == "Gender Equality"
    course_countries = {"Indonesia", "Kiribati", "Maldives", "Malaysia", "Sri Lanka", "Philippines",
                        "Nepal", "Bangladesh", "India", "Republic of Korea"}
    assert course_countries <= set(forms.COUNTRIES.values())
    assert forms.COUNTRIES["OTHER"] == "Other"
    assert set(forms.HRBA_PRINCIPLES.values()) == {
        "Participation and inclusion", "Transparency and accountability", "Equality and non-discrimination"}


def test_multichoice_accepts_single_value_and_orders_by_catalogue():
    cleaned, errors = validate_form(forms.PLAN_FORM, {"sdgs": ["16", "5", "16"], "hrba_principles": "participation_inclusion"}, False)
    assert errors == {}
    assert cleaned["sdgs"] == ["5", "16"]
    assert cleaned["hrba_principles"] == ["participation_inclusion"]


def test_multidict_style_lists_are_unwrapped():
    flat_false = {k: (v if isinstance(v, list) else [v]) for k, v in PLAN.items()}
    assert validate_plan(flat_false, for_submit=True) == {}


def test_progress_update_form():
    assert forms.clean("progress_update", {"progress": "Met DPOs"}, for_submit=False)["progress"] == "Met DPOs"
    with pytest.raises(FormInvalid) as info:
        forms.clean("progress_update", {"progress": "Met DPOs"}, for_submit=True)
    assert set(info.value.errors) == {"challenges", "next_steps"}


def test_report_form_requires_every_section_and_the_library_choice():
    with pytest.raises(FormInvalid) as info:
        forms.clean("project_report", {}, for_submit=True)
    assert set(info.value.errors) == {"what_was_done", "results", "lessons_learned", "next_steps", "action_plan",
                                      "library_consent"}
    assert info.value.errors["results"] == "Results against the indicators is required to submit."


def test_presentation_form_requires_slides_and_limits_summary():
    with pytest.raises(FormInvalid) as info:
        forms.clean("final_presentation", {"summary": "s" * 1501}, for_submit=True)
    assert info.value.errors == {
        "slides": "Attach the slides.",
        "summary": "Short summary is 1501 characters long; the limit is 1500.",
    }
    assert forms.clean("final_presentation", {"slides": "ab12.pptx", "summary": "Findings"}, True) == {
        "slides": "ab12.pptx", "summary": "Findings"}


def test_unknown_stage_form():
    with pytest.raises(UnknownStage):
        forms.clean("essay", {}, for_submit=False)
