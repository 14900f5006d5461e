"""Course project rules: stages, status and marking workflow, deadlines, rubric, groups, CSV export."""

from datetime import datetime, timedelta, timezone
from itertools import product

import pytest

from lms_bridge.projects import deadlines, export, rubric, stages, workflow
from lms_bridge.projects.deadlines import Deadline, InvalidDeadline, SubmissionClosed
from lms_bridge.projects.groups import InvalidGroup, validate_group
from lms_bridge.projects.rubric import (
    DEFAULT_RUBRIC, Criterion, InvalidRubric, InvalidRubricSelection, Level, Rubric,
)
from lms_bridge.projects.workflow import InvalidTransition, StageState, transition

UTC = timezone.utc
DUE = datetime(2021, 7, 9, 16, 59, tzinfo=UTC)  # 23:59 in Jakarta
CUTOFF = DUE + timedelta(days=3)
SECOND = timedelta(seconds=1)


# Stages -------------------------------------------------------------------------------------

def test_stage_catalogue_and_grading():
    assert stages.STAGE_KEYS == ("project_plan", "progress_update", "project_report", "final_presentation")
    assert stages.GRADED_STAGE_KEYS == ("project_plan", "project_report", "final_presentation")
    assert stages.get_stage("progress_update").repeatable
    assert stages.get_stage("project_plan").title == "Project plan"


def test_every_graded_stage_is_a_graded_activity_a_link_can_open():
    from lms_bridge.activities import CATALOGUE

    graded = {key for key, (_title, maximum) in CATALOGUE.items() if maximum is not None}
    assert graded == set(stages.GRADED_STAGE_KEYS)


def test_unknown_stage_names_valid_keys():
    with pytest.raises(stages.UnknownStage, match="project_plan, progress_update"):
        stages.get_stage("essay")


# Status workflow ----------------------------------------------------------------------------

ALLOWED = {
    ("not_started", "save_draft", "learner"): "draft",
    ("draft", "save_draft", "learner"): "draft",
    ("returned", "save_draft", "learner"): "draft",
    ("not_started", "submit", "learner"): "submitted",
    ("draft", "submit", "learner"): "submitted",
    ("returned", "submit", "learner"): "submitted",
    ("submitted", "return_for_revision", "facilitator"): "returned",
    ("approved", "return_for_revision", "facilitator"): "returned",
    ("graded", "return_for_revision", "facilitator"): "returned",
    ("submitted", "approve", "facilitator"): "approved",
    ("submitted", "grade", "facilitator"): "graded",
    ("approved", "grade", "facilitator"): "graded",
    ("graded", "grade", "facilitator"): "graded",
}


@pytest.mark.parametrize("status,action,role", list(product(workflow.STATUSES, workflow.ACTIONS, workflow.ROLES)))
def test_every_transition(status, action, role):
    expected = ALLOWED.get((status, action, role))
    if expected:
        assert transition(status, action, role) == expected
    else:
        with pytest.raises(InvalidTransition):
            transition(status, action, role)


def test_messages_say_why():
    with pytest.raises(InvalidTransition, match="Cannot submit a stage that is approved"):
        transition("approved", "submit", "learner")
    with pytest.raises(InvalidTransition, match="A learner cannot approve a stage; only a facilitator can"):
        transition("submitted", "approve", "learner")
    with pytest.raises(InvalidTransition, match="A facilitator cannot submit"):
        transition("draft", "submit", "facilitator")
    with pytest.raises(InvalidTransition, match="Cannot approve a stage that is draft"):
        transition("draft", "approve", "facilitator")
    with pytest.raises(InvalidTransition, match="Unknown action 'delete'"):
        transition("draft", "delete", "learner")
    with pytest.raises(InvalidTransition, match="Unknown stage status"):
        transition("lost", "submit", "learner")
    with pytest.raises(InvalidTransition, match="Unknown role"):
        transition("draft", "submit", "admin")


def test_progress_updates_cannot_be_graded():
    with pytest.raises(InvalidTransition, match="Progress update is not graded"):
        transition("submitted", "grade", "facilitator", stage="progress_update")
    assert transition("submitted", "approve", "facilitator", stage="progress_update") == "approved"
    assert transition("submitted", "grade", "facilitator", stage="project_report") == "graded"


def test_resubmission_after_return_is_a_new_attempt():
    s = workflow.apply(StageState(), "save_draft", "learner")
    s = workflow.apply(s, "submit", "learner")
    assert s == StageState("submitted", 1)
    s = workflow.apply(s, "return_for_revision", "facilitator")
    assert s == StageState("returned", 1)
    s = workflow.apply(s, "save_draft", "learner")
    assert s == StageState("draft", 2)
    s = workflow.apply(s, "submit", "learner")
    assert s == StageState("submitted", 2)
    s = workflow.apply(s, "return_for_revision", "facilitator")
    assert workflow.apply(s, "submit", "learner") == StageState("submitted", 3)


def test_marking_workflow():
    assert workflow.marking_transition("in_marking", "mark_ready") == "ready_for_release"
    assert workflow.marking_transition("ready_for_release", "back_to_marking") == "in_marking"
    assert workflow.marking_transition("ready_for_release", "release") == "released"
    with pytest.raises(workflow.InvalidMarkingTransition, match="Cannot release a grade that is in marking"):
        workflow.marking_transition("in_marking", "release")
    for action in workflow.MARKING_ACTIONS:
        with pytest.raises(workflow.InvalidMarkingTransition):
            workflow.marking_transition("released", action)
    with pytest.raises(workflow.InvalidMarkingTransition, match="Unknown marking action"):
        workflow.marking_transition("in_marking", "publish")


def test_grade_visible_only_when_released():
    assert workflow.grade_visible_to_learner("released")
    assert not workflow.grade_visible_to_learner(None)
    assert not workflow.grade_visible_to_learner("in_marking")
    assert not workflow.grade_visible_to_learner("ready_for_release")
    with pytest.raises(workflow.InvalidMarkingTransition):
        workflow.grade_visible_to_learner("graded")


def test_review_offers_only_what_the_marking_workflow_allows_now():
    allowed = workflow.allowed_actions
    assert allowed("submitted", None, graded=True, has_grade=False) == ["comment", "grade", "return_for_revision"]
    assert allowed("graded", "in_marking", graded=True, has_grade=True) == [
        "comment", "grade", "return_for_revision", "mark_ready"]
    assert allowed("graded", "ready_for_release", graded=True, has_grade=True)[-2:] == ["back_to_marking", "release"]
    assert "release" not in allowed("graded", "released", graded=True, has_grade=True)
    assert allowed("submitted", None, graded=False, has_grade=False) == ["comment", "approve", "return_for_revision"]
    assert allowed("returned", None, graded=True, has_grade=False) == ["comment"]
    assert allowed("draft", None, graded=False, has_grade=False) == ["comment"]


# Deadlines ----------------------------------------------------------------------------------

def test_submission_state_boundaries_with_cutoff():
    d = Deadline(DUE, CUTOFF)
    assert deadlines.submission_state(d, DUE - SECOND) == "open"
    assert deadlines.submission_state(d, DUE) == "open"
    assert deadlines.submission_state(d, DUE + SECOND) == "late"
    assert deadlines.submission_state(d, CUTOFF) == "late"
    assert deadlines.submission_state(d, CUTOFF + SECOND) == "closed"


def test_without_cutoff_late_forever():
    d = Deadline(DUE)
    assert deadlines.submission_state(d, DUE + timedelta(days=365)) == "late"


def test_extension_moves_due_and_cutoff():
    d = Deadline(DUE, CUTOFF)
    extension = CUTOFF + timedelta(days=7)
    assert deadlines.effective_deadline(d, extension) == Deadline(extension, extension)
    assert deadlines.effective_deadline(d, None) is d
    assert deadlines.submission_state(d, CUTOFF + SECOND, extension) == "open"
    assert deadlines.submission_state(d, extension, extension) == "open"
    assert deadlines.submission_state(d, extension + SECOND, extension) == "closed"
    # An extension shorter than the cut-off still replaces it, as in Moodle.
    short = DUE + timedelta(days=1)
    assert deadlines.submission_state(d, short + SECOND, short) == "closed"


def test_extension_before_due_is_refused():
    with pytest.raises(InvalidDeadline, match="must be after the due date"):
        deadlines.effective_deadline(Deadline(DUE, CUTOFF), DUE - SECOND)


def test_latest_extension_between_learner_and_group():
    later = DUE + timedelta(days=5)
    assert deadlines.latest_extension(None, later, DUE + SECOND) == later
    assert deadlines.latest_extension(None, None) is None


def test_deadline_validation():
    with pytest.raises(InvalidDeadline, match="timezone-aware"):
        Deadline(datetime(2021, 7, 9))
    with pytest.raises(InvalidDeadline, match="cut-off date .* is before the due date"):
        Deadline(DUE, DUE - SECOND)
    with pytest.raises(InvalidDeadline, match="timezone-aware"):
        deadlines.submission_state(Deadline(DUE), datetime(2021, 7, 9))
    jakarta = Deadline(datetime(2021, 7, 9, 23, 59, tzinfo=deadlines.ZoneInfo("Asia/Jakarta")))
    assert jakarta.due_utc == DUE and jakarta.due_utc.tzinfo == UTC


def test_check_can_submit_names_the_cutoff():
    d = Deadline(DUE, CUTOFF)
    assert deadlines.check_can_submit(d, DUE) == "open"
    assert deadlines.check_can_submit(d, CUTOFF) == "late"
    with pytest.raises(SubmissionClosed) as info:
        deadlines.check_can_submit(d, CUTOFF + SECOND, zone="Asia/Jakarta")
    assert str(info.value).startswith(
        "Submissions closed at Mon, Jul 12, 2021, 23:59 (Asia/Jakarta, UTC+07:00) (the cut-off date)")
    assert info.value.closed_at == CUTOFF
    extension = CUTOFF + timedelta(days=1)
    with pytest.raises(SubmissionClosed, match=r"Tue, Jul 13, 2021, 16:59 \(UTC, UTC\+00:00\) \(your extension\)"):
        deadlines.check_can_submit(d, extension + SECOND, extension)


def test_is_late_after_the_due_time_unless_extended():
    d = Deadline(DUE, CUTOFF)
    assert not deadlines.is_late(d, DUE)
    assert deadlines.is_late(d, DUE + SECOND)
    assert not deadlines.is_late(d, DUE + SECOND, CUTOFF)


# Rubric -------------------------------------------------------------------------------------

def test_default_rubric_covers_course_principles():
    ids = [c.id for c in DEFAULT_RUBRIC.criteria]
    assert ids == ["hrba_principles", "sdg_linkage", "participation", "feasibility", "indicators"]
    assert all([lv.points for lv in c.levels] == [0, 1, 2, 3] for c in DEFAULT_RUBRIC.criteria)
    assert DEFAULT_RUBRIC.max_points == 15


def test_score_totals():
    best = {c.id: "strong" for c in DEFAULT_RUBRIC.criteria}
    assert rubric.score(DEFAULT_RUBRIC, best) == (15, 15)
    mixed = dict(best, feasibility="emerging", indicators="not_evident")
    assert rubric.score(DEFAULT_RUBRIC, mixed) == (10, 15)
    assert rubric.score(DEFAULT_RUBRIC, {c.id: "not_evident" for c in DEFAULT_RUBRIC.criteria}) == (0, 15)


def test_score_rejects_missing_and_unknown_selections():
    selections = {c.id: "strong" for c in DEFAULT_RUBRIC.criteria}
    del selections["sdg_linkage"]
    with pytest.raises(InvalidRubricSelection, match="Choose a level for “SDG linkage”"):
        rubric.score(DEFAULT_RUBRIC, selections)
    with pytest.raises(InvalidRubricSelection, match="“SDG linkage” has no level 'perfect'"):
        rubric.score(DEFAULT_RUBRIC, dict(selections, sdg_linkage="perfect"))
    with pytest.raises(InvalidRubricSelection, match="no criterion 'style'"):
        rubric.score(DEFAULT_RUBRIC, dict(selections, sdg_linkage="strong", style="strong"))


def test_validate_rubric_lists_problems():
    two = (Level("a", "A", 0), Level("b", "B", 1))
    with pytest.raises(InvalidRubric, match="at least one criterion"):
        rubric.validate_rubric(Rubric(()))
    with pytest.raises(InvalidRubric, match="'x' appears more than once"):
        rubric.validate_rubric(Rubric((Criterion("x", "X", "", two), Criterion("x", "Y", "", two))))
    with pytest.raises(InvalidRubric, match="at least two levels"):
        rubric.validate_rubric(Rubric((Criterion("x", "X", "", two[:1]),)))
    with pytest.raises(InvalidRubric, match="level 'a' more than once"):
        rubric.validate_rubric(Rubric((Criterion("x", "X", "", (two[0], two[0])),)))
    with pytest.raises(InvalidRubric, match="points must be a number of 0 or more"):
        rubric.validate_rubric(Rubric((Criterion("x", "X", "", (two[0], Level("n", "N", -1))),)))
    with pytest.raises(InvalidRubric, match="needs a title"):
        rubric.validate_rubric(Rubric((Criterion("x", "", "", two),)))


def form_of(draft: dict) -> dict:
    """The fields a browser posts for a draft."""
    form = {"title": draft["title"]}
    for i, c in enumerate(draft["criteria"]):
        form.update({f"c{i}_id": c["id"], f"c{i}_title": c["title"], f"c{i}_description": c["description"]})
        if c["remove"]:
            form[f"c{i}_remove"] = "1"
        for j, lv in enumerate(c["levels"]):
            form.update({f"c{i}_l{j}_{k}": lv[k] for k in ("id", "title", "points", "description")})
    return form


def test_rubric_form_round_trips_and_ignores_blank_spare_rows():
    shown = rubric.with_spares(rubric.to_draft(DEFAULT_RUBRIC))
    assert len(shown["criteria"]) == len(DEFAULT_RUBRIC.criteria) + 1  # one blank criterion to type into
    assert all(c["levels"][-1]["title"] == "" for c in shown["criteria"])  # and a blank level under each
    assert rubric.from_draft(rubric.draft_from_form(form_of(shown))) == DEFAULT_RUBRIC


def test_rubric_form_adds_removes_and_edits():
    draft = rubric.with_spares(rubric.to_draft(DEFAULT_RUBRIC))
    new = draft["criteria"][-1]
    new.update(title="Local ownership", description="The city owns the project after the course.")
    new["levels"][0].update(title="Weak", points="0")
    new["levels"][1].update(title="Strong", points="2,5")  # a decimal comma is read as a point
    draft["criteria"][0]["remove"] = True
    sdg = draft["criteria"][1]
    sdg["title"] = "SDG targets"
    sdg["levels"][0].update(title="", points="", description="")  # emptied: the level goes
    result = rubric.from_draft(rubric.draft_from_form(form_of(draft)))
    ids = [c.id for c in result.criteria]
    assert ids == ["sdg_linkage", "participation", "feasibility", "indicators", "local_ownership"]
    assert result.criteria[0].title == "SDG targets" and [lv.id for lv in result.criteria[0].levels] == [
        "emerging", "developing", "strong"]
    assert [(lv.id, lv.points) for lv in result.criteria[-1].levels] == [("weak", 0), ("strong", 2.5)]


def test_rubric_form_names_every_problem():
    draft = {"title": "R", "criteria": [
        {"id": "", "title": "Feasibility", "description": "", "remove": False, "levels": [
            {"id": "", "title": "Low", "points": "a lot", "description": ""},
            {"id": "", "title": "", "points": "2", "description": ""}]},
        {"id": "", "title": "Feasibility", "description": "", "remove": False, "levels": [
            {"id": "", "title": "Only", "points": "1", "description": ""}]}]}
    with pytest.raises(InvalidRubric) as exc:
        rubric.from_draft(draft)
    message = str(exc.value)
    assert "“Feasibility”, level Low: points must be a number." in message
    assert "level 2 needs a title" in message and "needs at least two levels" in message
    # two criteria with the same title still get distinct ids
    draft["criteria"][0]["levels"] = [{"id": "", "title": t, "points": p, "description": ""}
                                      for t, p in (("Low", "0"), ("High", "1"))]
    draft["criteria"][1]["levels"] = draft["criteria"][0]["levels"]
    assert [c.id for c in rubric.from_draft(draft).criteria] == ["feasibility", "feasibility_2"]


def test_rubric_round_trips_through_json():
    import json
    data = json.loads(json.dumps(rubric.to_dict(DEFAULT_RUBRIC)))
    assert rubric.from_dict(data) == DEFAULT_RUBRIC
    with pytest.raises(InvalidRubric, match="Malformed rubric data"):
        rubric.from_dict({"criteria": [{"id": "x"}]})
    del data["criteria"][0]["levels"][1:]
    with pytest.raises(InvalidRubric, match="at least two levels"):
        rubric.from_dict(data)


# Groups -------------------------------------------------------------------------------------

ROSTER = {1: "Learner", 2: "Learner", 3: "Learner", 4: "learner", 5: "Learner", 6: "Learner",
          7: "Learner", 9: "Instructor"}


def test_valid_group():
    assert validate_group(1, [2, 3], ROSTER, {}) == (2, 3)
    assert validate_group(1, [], ROSTER, {}) == ()
    # Re-validating one's own project is fine.
    assert validate_group(1, [2], ROSTER, {2: "p1"}, project_id="p1") == (2,)


@pytest.mark.parametrize("owner,coauthors,memberships,status,message", [
    (1, [8], {}, None, "User 8 is not enrolled in this course"),
    (1, [9], {}, None, r"User 9 is course staff \(Instructor\)"),
    (1, [2], {2: "p2"}, None, "User 2 is already in another project's group"),
    (1, [2, 2], {}, None, "User 2 is listed more than once"),
    (1, [1], {}, None, "User 1 owns the project and cannot also be a co-author"),
    (9, [2], {}, None, "User 9 is not a learner in this course and cannot own a project"),
    (1, [2, 3, 4, 5, 6, 7], {}, None, "at most 6 members including the owner; this one has 7"),
    (1, [2], {}, "submitted", "cannot change once the project plan is submitted"),
])
def test_invalid_groups(owner, coauthors, memberships, status, message):
    with pytest.raises(InvalidGroup, match=message):
        validate_group(owner, coauthors, ROSTER, memberships, status, project_id="p1")


def test_group_of_six_is_allowed_and_names_are_used():
    assert validate_group(1, [2, 3, 4, 5, 6], ROSTER, {}, "returned") == (2, 3, 4, 5, 6)
    with pytest.raises(InvalidGroup) as info:
        validate_group(1, [8, 9], ROSTER, {}, names={8: "Ana", 9: "Dr Lee"})
    assert info.value.problems == ["Ana is not enrolled in this course.",
                                   "Dr Lee is course staff (Instructor) and cannot be a co-author."]


# Export -------------------------------------------------------------------------------------

def test_dashboard_csv_columns_and_values():
    import csv
    text = export.dashboard_csv([
        {"participant": "Siti Rahma", "username": "siti", "email": "siti@example.org", "group": "Makassar", "stages": {
            "project_plan": {"status": "graded", "grade": 12.5},
            "progress_update": {"status": "submitted"},
            "project_report": {"status": "returned"},
        }},
    ])
    header, row = list(csv.reader(text.splitlines()))
    assert header == ["Participant", "Username", "Email address", "Group", "Project plan status", "Project plan grade",
                      "Progress update status", "Project report status", "Project report grade",
                      "Final presentation status", "Final presentation grade"]
    assert row == ["Siti Rahma", "siti", "siti@example.org", "Makassar", "Graded", "12.5", "Submitted",
                   "Returned for revision", "", "Not started", ""]


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd"])
def test_dashboard_csv_neutralises_formulas(name):
    import csv
    text = export.dashboard_csv([{"participant": name, "group": "=evil()", "stages": {}}])
    row = list(csv.reader(text.splitlines()))[1]
    assert row[0] == "'" + name
    assert row[3] == "'=evil()"


def test_safe_cell_leaves_ordinary_values():
    assert export.safe_cell("Dewi") == "Dewi"
    assert export.safe_cell(None) == ""
    assert export.safe_cell(3) == "3"
    assert export.safe_cell("a=b") == "a=b"
