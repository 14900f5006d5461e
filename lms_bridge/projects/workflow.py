"""Stage status and marking workflow, modelled on Moodle's assignment module.

A learner drafts and submits; a facilitator returns for revision, approves or grades. Grades
reach learners only once the marking workflow says "released".
"""

from dataclasses import dataclass

from ..i18n import N_, gettext
from .stages import get_stage

NOT_STARTED = "not_started"
DRAFT = "draft"
SUBMITTED = "submitted"
RETURNED = "returned"
APPROVED = "approved"
GRADED = "graded"

STATUS_LABELS = {
    NOT_STARTED: N_("Not started"),
    DRAFT: N_("Draft"),
    SUBMITTED: N_("Submitted"),
    RETURNED: N_("Returned for revision"),
    APPROVED: N_("Approved"),
    GRADED: N_("Graded"),
}
STATUSES = tuple(STATUS_LABELS)

LEARNER = "learner"
FACILITATOR = "facilitator"
ROLES = (LEARNER, FACILITATOR)

# action -> (role allowed, statuses it may start from, resulting status)
ACTIONS: dict[str, tuple[str, frozenset[str], str]] = {
    "save_draft": (LEARNER, frozenset({NOT_STARTED, DRAFT, RETURNED}), DRAFT),
    "submit": (LEARNER, frozenset({NOT_STARTED, DRAFT, RETURNED}), SUBMITTED),
    "return_for_revision": (FACILITATOR, frozenset({SUBMITTED, APPROVED, GRADED}), RETURNED),
    "approve": (FACILITATOR, frozenset({SUBMITTED}), APPROVED),
    "grade": (FACILITATOR, frozenset({SUBMITTED, APPROVED, GRADED}), GRADED),
}

_VERBS = {
    "save_draft": "save a draft of",
    "submit": "submit",
    "return_for_revision": "return for revision",
    "approve": "approve",
    "grade": "grade",
}


# What a person reads when the workflow refuses an action (one sentence each, so translators see it whole).
_REFUSED = {
    "save_draft": N_("Cannot save a draft of a stage that is %(status)s."),
    "submit": N_("Cannot submit a stage that is %(status)s."),
    "return_for_revision": N_("Cannot return for revision a stage that is %(status)s."),
    "approve": N_("Cannot approve a stage that is %(status)s."),
    "grade": N_("Cannot grade a stage that is %(status)s."),
}


class InvalidTransition(ValueError):
    """An action that the current status or the actor's role does not allow."""


def transition(current_status: str, action: str, actor_role: str, *, stage: str | None = None) -> str:
    """The status after `action`, or InvalidTransition saying why not.

    With `stage`, grading a stage that is not graded (progress updates) is refused.
    """
    if current_status not in STATUS_LABELS:
        raise InvalidTransition(f"Unknown stage status {current_status!r}.")
    if action not in ACTIONS:
        raise InvalidTransition(
            f"Unknown action {action!r}; expected one of: {', '.join(ACTIONS)}."
        )
    if actor_role not in ROLES:
        raise InvalidTransition(f"Unknown role {actor_role!r}; expected learner or facilitator.")
    role, sources, target = ACTIONS[action]
    verb = _VERBS[action]
    if actor_role != role:
        raise InvalidTransition(
            f"A {actor_role} cannot {verb} a stage; only a {role} can."
        )
    if current_status not in sources:
        raise InvalidTransition(gettext(_REFUSED[action], status=gettext(STATUS_LABELS[current_status]).lower()))
    if action == "grade" and stage is not None and not get_stage(stage).graded:
        raise InvalidTransition(gettext("%(stage)s is not graded; approve or return it instead.",
                                        stage=gettext(get_stage(stage).title)))
    return target


@dataclass(frozen=True)
class StageState:
    status: str = NOT_STARTED
    attempt: int = 1


def apply(state: StageState, action: str, actor_role: str, *, stage: str | None = None) -> StageState:
    """Apply an action, opening attempt n+1 when the learner works on a returned stage.

    Like Moodle's "attempts reopened manually": the returned attempt keeps its feedback, the
    revision is a new attempt.
    """
    status = transition(state.status, action, actor_role, stage=stage)
    attempt = state.attempt
    if state.status == RETURNED and action in ("save_draft", "submit"):
        attempt += 1
    return StageState(status, attempt)


# Marking workflow ---------------------------------------------------------------------------

IN_MARKING = "in_marking"
READY_FOR_RELEASE = "ready_for_release"
RELEASED = "released"

MARKING_LABELS = {
    IN_MARKING: N_("In marking"),
    READY_FOR_RELEASE: N_("Ready for release"),
    RELEASED: N_("Released"),
}
MARKING_STATES = tuple(MARKING_LABELS)

MARKING_ACTIONS: dict[str, tuple[str, str]] = {
    "mark_ready": (IN_MARKING, READY_FOR_RELEASE),
    "back_to_marking": (READY_FOR_RELEASE, IN_MARKING),
    "release": (READY_FOR_RELEASE, RELEASED),
}


class InvalidMarkingTransition(InvalidTransition):
    """A marking-workflow step out of order (e.g. releasing a grade still in marking)."""


_MARKING_REFUSED = {
    "mark_ready": N_("Cannot mark ready a grade that is %(state)s; it must be %(needed)s."),
    "back_to_marking": N_("Cannot send back to marking a grade that is %(state)s; it must be %(needed)s."),
    "release": N_("Cannot release a grade that is %(state)s; it must be %(needed)s."),
}


def marking_transition(state: str, action: str) -> str:
    """The marking state after `action`: in_marking -> ready_for_release -> released."""
    if state not in MARKING_LABELS:
        raise InvalidMarkingTransition(f"Unknown marking state {state!r}.")
    if action not in MARKING_ACTIONS:
        raise InvalidMarkingTransition(
            f"Unknown marking action {action!r}; expected one of: {', '.join(MARKING_ACTIONS)}."
        )
    source, target = MARKING_ACTIONS[action]
    if state != source:
        raise InvalidMarkingTransition(gettext(
            _MARKING_REFUSED[action], state=gettext(MARKING_LABELS[state]).lower(),
            needed=gettext(MARKING_LABELS[source]).lower()))
    return target


def grade_visible_to_learner(marking_state: str | None) -> bool:
    """Learners see a grade and its feedback only once it is released (None: never graded)."""
    if marking_state is None:
        return False
    if marking_state not in MARKING_LABELS:
        raise InvalidMarkingTransition(f"Unknown marking state {marking_state!r}.")
    return marking_state == RELEASED


def allowed_actions(status: str, marking_state: str | None, *, graded: bool, has_grade: bool) -> list[str]:
    """What a facilitator may do now, in the order the review page offers it (Moodle offers only the
    marking workflow states reachable from the current one)."""
    actions = ["comment"] if status != NOT_STARTED else []
    for action in ("approve", "grade", "return_for_revision"):
        _role, sources, _target = ACTIONS[action]
        if status in sources and (action != "grade" or graded) and (action != "approve" or not graded):
            actions.append(action)
    if graded and has_grade:
        state = marking_state or IN_MARKING
        actions += [a for a, (source, _t) in MARKING_ACTIONS.items() if source == state]
    return actions
