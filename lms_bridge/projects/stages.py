"""The course project's stages and the activities an LTI link can open."""

from dataclasses import dataclass


class UnknownStage(ValueError):
    """A stage or activity key that the catalogue does not define."""


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    graded: bool
    repeatable: bool
    description: str


STAGES: dict[str, Stage] = {
    s.key: s
    for s in (
        Stage("project_plan", "Project plan", True, False,
              "The local problem, who is affected, the HRBA principles and SDGs it addresses, "
              "stakeholders, activities, indicators and risks."),
        Stage("progress_update", "Progress update", False, True,
              "A short update before each online discussion session."),
        Stage("project_report", "Project report", True, False,
              "What was done, results against the indicators, lessons learned and the action plan."),
        Stage("final_presentation", "Final presentation", True, False,
              "Slides and a short summary presented at the closing workshop."),
    )
}

STAGE_KEYS: tuple[str, ...] = tuple(STAGES)
GRADED_STAGE_KEYS: tuple[str, ...] = tuple(k for k, s in STAGES.items() if s.graded)


@dataclass(frozen=True)
class Activity:
    key: str
    title: str
    stage: str | None  # the stage it opens, None for activities that are not a project stage


ACTIVITIES: dict[str, Activity] = {
    a.key: a
    for a in (
        Activity("project_plan", "Course project: plan", "project_plan"),
        Activity("project_report", "Course project: report", "project_report"),
        Activity("final_presentation", "Course project: final presentation", "final_presentation"),
        Activity("consultations", "Online consultations", None),
    )
}


def get_stage(key: str) -> Stage:
    """The stage for a key, or UnknownStage naming the valid keys."""
    try:
        return STAGES[key]
    except (KeyError, TypeError):
        raise UnknownStage(
            f"Unknown project stage {key!r}; expected one of: {', '.join(STAGE_KEYS)}"
        ) from None


def get_activity(key: str) -> Activity:
    """The activity an LTI link names (custom parameter), or UnknownStage."""
    try:
        return ACTIVITIES[key]
    except (KeyError, TypeError):
        raise UnknownStage(
            f"Unknown activity {key!r}; expected one of: {', '.join(ACTIVITIES)}"
        ) from None
