"""The course project's stages. The activities an LTI link can open are `lms_bridge.activities.CATALOGUE`."""

from dataclasses import dataclass

from ..i18n import N_


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
        Stage("project_plan", N_("Project plan"), True, False,
              N_("The local problem, who is affected, the HRBA principles and SDGs it addresses, "
                 "stakeholders, activities, indicators and risks.")),
        Stage("progress_update", N_("Progress update"), False, True,
              N_("A short update before each online discussion session.")),
        Stage("project_report", N_("Project report"), True, False,
              N_("What was done, results against the indicators, lessons learned and the action plan.")),
        Stage("final_presentation", N_("Final presentation"), True, False,
              N_("Slides and a short summary presented at the closing workshop.")),
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
