"""Who may co-author a group project: learners on the roster, in no other project, at most six."""

from ..i18n import _
from .workflow import APPROVED, GRADED, SUBMITTED

MAX_GROUP_SIZE = 6
LEARNER_ROLES = frozenset({"learner", "student"})
_LOCKED = frozenset({SUBMITTED, APPROVED, GRADED})


class InvalidGroup(ValueError):
    """A group that breaks a membership rule; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def validate_group(owner_id, coauthor_ids, roster: dict, existing_memberships: dict,
                   plan_status: str | None = None, *, project_id=None, names: dict | None = None,
                   max_size: int = MAX_GROUP_SIZE) -> tuple:
    """The co-authors, checked; raise InvalidGroup listing every problem.

    `roster` maps user id to course role; `existing_memberships` maps user id to the project
    they already belong to (their membership of `project_id` itself is fine). The group is
    locked while the project plan is submitted, approved or graded.
    """
    names = names or {}

    def who(user_id) -> str:
        return names.get(user_id) or _("User %(id)s", id=user_id)

    problems = []
    if plan_status in _LOCKED:
        problems.append(_("The group cannot change once the project plan is submitted; "
                          "ask a facilitator to return it for revision."))
    coauthors = list(coauthor_ids)
    if str(roster.get(owner_id, "")).lower() not in LEARNER_ROLES:
        problems.append(_("%(name)s is not a learner in this course and cannot own a project.", name=who(owner_id)))
    if owner_id in coauthors:
        problems.append(_("%(name)s owns the project and cannot also be a co-author.", name=who(owner_id)))
    seen = set()
    for user_id in coauthors:
        if user_id in seen:
            problems.append(_("%(name)s is listed more than once.", name=who(user_id)))
            continue
        seen.add(user_id)
        if user_id == owner_id:
            continue
        role = roster.get(user_id)
        if role is None:
            problems.append(_("%(name)s is not enrolled in this course.", name=who(user_id)))
        elif str(role).lower() not in LEARNER_ROLES:
            problems.append(_("%(name)s is course staff (%(role)s) and cannot be a co-author.", name=who(user_id),
                              role=role))
        other = existing_memberships.get(user_id)
        if other is not None and other != project_id:
            problems.append(_("%(name)s is already in another project's group.", name=who(user_id)))
    size = len(seen | {owner_id})
    if size > max_size:
        problems.append(_("A group has at most %(max)s members including the owner; this one has %(size)s.",
                          max=max_size, size=size))
    if problems:
        raise InvalidGroup(problems)
    return tuple(coauthors)
