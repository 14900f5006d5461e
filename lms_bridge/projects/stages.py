"""The course project's stages. The activities an LTI link can open are `lms_bridge.activities.CATALOGUE`."""

from dataclasses import dataclass


class UnknownStage(ValueError):
    """A stage key that the catalogue does not define."""


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


def get_stage(key: str) -> Stage:
    """The stage for a key, or UnknownStage naming the valid keys."""
    try:
        return STAGES[key]
    except (KeyError, TypeError):
        raise UnknownStage(
            f"Unknown project stage {key!r}; expected one of: {', '.join(STAGE_KEYS)}"
        ) from None
