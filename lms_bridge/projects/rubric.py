"""Marking rubrics: criteria with scored levels, the editing form's draft, and the course's default rubric."""

import re
from dataclasses import dataclass, field
from numbers import Real

from ..i18n import N_, _


class InvalidRubric(ValueError):
    """A rubric definition that cannot be used for marking."""


class InvalidRubricSelection(ValueError):
    """Marking that misses a criterion or picks a level the rubric does not have; `criteria` maps each
    criterion id at fault to its message, so the marking form can mark it."""

    def __init__(self, message: str, criteria: dict[str, str] | None = None):
        super().__init__(message)
        self.criteria = criteria or {}


@dataclass(frozen=True)
class Level:
    id: str
    title: str
    points: float
    description: str = ""


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    description: str
    levels: tuple[Level, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "levels", tuple(self.levels))

    @property
    def max_points(self) -> float:
        return max(level.points for level in self.levels)


@dataclass(frozen=True)
class Rubric:
    criteria: tuple[Criterion, ...]
    title: str = "Rubric"

    def __post_init__(self):
        object.__setattr__(self, "criteria", tuple(self.criteria))

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.criteria)


def validate_rubric(rubric: Rubric) -> Rubric:
    """Raise InvalidRubric listing every problem; return the rubric when usable."""
    problems = []
    if not rubric.criteria:
        problems.append("A rubric needs at least one criterion.")
    seen = set()
    for c in rubric.criteria:
        label = f"Criterion {c.id!r}"
        if not isinstance(c.id, str) or not c.id.strip():
            problems.append("Every criterion needs an id.")
        elif c.id in seen:
            problems.append(f"{label} appears more than once.")
        seen.add(c.id)
        if not c.title or not str(c.title).strip():
            problems.append(f"{label} needs a title.")
        if len(c.levels) < 2:
            problems.append(f"{label} needs at least two levels.")
        level_ids = set()
        for level in c.levels:
            if not isinstance(level.id, str) or not level.id.strip():
                problems.append(f"{label} has a level without an id.")
            elif level.id in level_ids:
                problems.append(f"{label} has level {level.id!r} more than once.")
            level_ids.add(level.id)
            if isinstance(level.points, bool) or not isinstance(level.points, Real) or level.points < 0:
                problems.append(f"{label}, level {level.id!r}: points must be a number of 0 or more.")
    if problems:
        raise InvalidRubric(" ".join(problems))
    return rubric


def score(rubric: Rubric, selections: dict[str, str]) -> tuple[float, float]:
    """(total, maximum) for one level chosen per criterion; every criterion must be marked."""
    problems, at_fault = [], {}
    known = {c.id for c in rubric.criteria}
    for unknown in sorted(set(selections) - known):
        problems.append(f"The rubric has no criterion {unknown!r}.")
    total = 0
    for c in rubric.criteria:
        chosen = selections.get(c.id)
        if chosen is None or chosen == "":
            at_fault[c.id] = _("Choose a level for “%(criterion)s”.", criterion=c.title)
            problems.append(at_fault[c.id])
            continue
        level = next((lv for lv in c.levels if lv.id == chosen), None)
        if level is None:
            at_fault[c.id] = _("“%(criterion)s” has no level %(level)s.", criterion=c.title, level=repr(chosen))
            problems.append(at_fault[c.id])
            continue
        total += level.points
    if problems:
        raise InvalidRubricSelection(" ".join(problems), at_fault)
    return total, rubric.max_points


def chosen_levels(rubric: Rubric, selections: dict[str, str]) -> list[dict]:
    """Per criterion the level chosen (or None), with points: what the learner's feedback shows."""
    rows = []
    for c in rubric.criteria:
        level = next((lv for lv in c.levels if lv.id == (selections or {}).get(c.id)), None)
        rows.append({"criterion": c.title, "description": c.description, "level": level and level.title,
                     "level_description": level and level.description, "points": level and level.points,
                     "max": c.max_points})
    return rows


def to_dict(rubric: Rubric) -> dict:
    """A JSON-able form of the rubric (for storage and for the marking page)."""
    return {
        "title": rubric.title,
        "criteria": [
            {
                "id": c.id,
                "title": c.title,
                "description": c.description,
                "levels": [
                    {"id": lv.id, "title": lv.title, "points": lv.points, "description": lv.description}
                    for lv in c.levels
                ],
            }
            for c in rubric.criteria
        ],
    }


def from_dict(data: dict) -> Rubric:
    """Rebuild and validate a rubric from `to_dict` output; InvalidRubric on malformed input."""
    try:
        rubric = Rubric(
            title=data.get("title", "Rubric"),
            criteria=tuple(
                Criterion(
                    id=c["id"],
                    title=c["title"],
                    description=c.get("description", ""),
                    levels=tuple(
                        Level(lv["id"], lv["title"], lv["points"], lv.get("description", ""))
                        for lv in c["levels"]
                    ),
                )
                for c in data["criteria"]
            ),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidRubric(f"Malformed rubric data: missing or wrong field ({exc}).") from None
    return validate_rubric(rubric)


# --- the editing form -------------------------------------------------------------------------
# A draft is what the form shows: criteria and levels as the facilitator typed them (strings), so a
# refused save shows every field again. Fields are c<i>_title, c<i>_l<j>_points, and so on.

def to_draft(rubric: Rubric) -> dict:
    return {"title": rubric.title, "criteria": [
        {"id": c.id, "title": c.title, "description": c.description, "remove": False,
         "levels": [{"id": lv.id, "title": lv.title, "points": f"{lv.points:g}", "description": lv.description}
                    for lv in c.levels]}
        for c in rubric.criteria]}


def draft_from_form(form) -> dict:
    """The posted form as a draft, rows in their order; blank rows are kept (they are the form's spares)."""
    def indices(pattern):
        return sorted({int(m.group(1)) for k in form for m in [re.fullmatch(pattern, k)] if m})

    criteria = []
    for i in indices(r"c(\d+)_title"):
        levels = [{"id": form.get(f"c{i}_l{j}_id", "").strip(), "title": form.get(f"c{i}_l{j}_title", "").strip(),
                   "points": form.get(f"c{i}_l{j}_points", "").strip(),
                   "description": form.get(f"c{i}_l{j}_description", "").strip()}
                  for j in indices(rf"c{i}_l(\d+)_title")]
        criteria.append({"id": form.get(f"c{i}_id", "").strip(), "title": form.get(f"c{i}_title", "").strip(),
                         "description": form.get(f"c{i}_description", "").strip(),
                         "remove": bool(form.get(f"c{i}_remove")), "levels": levels})
    return {"title": (form.get("title") or "").strip() or "Rubric", "criteria": criteria}


def _typed(row: dict, keys=("title", "points", "description")) -> bool:
    return any(row.get(k) for k in keys)


def with_spares(draft: dict, add_criterion: bool = False) -> dict:
    """Blank rows to type into, so the form works without JavaScript: one spare level under each criterion,
    and one blank criterion (one more each time "Add a criterion" is pressed)."""
    blank_level = {"id": "", "title": "", "points": "", "description": ""}
    typed = [c for c in draft["criteria"] if c["id"] or _typed(c, ("title", "description")) or
             any(_typed(lv) for lv in c["levels"])]
    spares = (len(draft["criteria"]) - len(typed)) + 1 if add_criterion else 1
    out = {"title": draft["title"], "criteria": []}
    for c in typed:
        levels = [lv for lv in c["levels"] if lv["id"] or _typed(lv)]
        out["criteria"].append(dict(c, levels=levels + [dict(blank_level)]))
    for _ in range(spares):
        out["criteria"].append({"id": "", "title": "", "description": "", "remove": False,
                                "levels": [dict(blank_level) for _ in range(4)]})
    return out


def _slug(text: str, taken: set, fallback: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or fallback
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}_{n}", n + 1
    taken.add(slug)
    return slug


def from_draft(draft: dict) -> Rubric:
    """The rubric a draft describes; blank rows and removed criteria are left out. Existing ids are kept
    (marks already given refer to them); new criteria and levels get ids from their titles."""
    problems, criteria = [], []
    taken = {c["id"] for c in draft["criteria"] if c["id"]}
    for n, c in enumerate(draft["criteria"], start=1):
        levels_typed = [lv for lv in c["levels"] if _typed(lv)]
        if c["remove"] or not (c["title"] or c["description"] or levels_typed):
            continue
        name = c["title"] or f"Criterion {n}"
        level_ids = {lv["id"] for lv in levels_typed if lv["id"]}
        levels = []
        for m, lv in enumerate(levels_typed, start=1):
            try:
                points = float(lv["points"].replace(",", "."))
            except ValueError:
                problems.append(f"“{name}”, level {lv['title'] or m}: points must be a number.")
                continue
            if points != points or points in (float("inf"), float("-inf")):
                problems.append(f"“{name}”, level {lv['title'] or m}: points must be a number.")
                continue
            if not lv["title"]:
                problems.append(f"“{name}”, level {m} needs a title.")
            levels.append(Level(lv["id"] or _slug(lv["title"], level_ids, f"level_{m}"), lv["title"], points,
                                lv["description"]))
        criteria.append(Criterion(c["id"] or _slug(c["title"], taken, f"criterion_{n}"), c["title"],
                                  c["description"], tuple(levels)))
    rubric = Rubric(title=draft["title"], criteria=tuple(criteria))
    try:
        validate_rubric(rubric)
    except InvalidRubric as exc:
        problems.append(str(exc))
    if problems:
        raise InvalidRubric(" ".join(problems))
    return rubric


def _levels(*descriptions: str) -> tuple[Level, ...]:
    titles = (N_("Not evident"), N_("Emerging"), N_("Developing"), N_("Strong"))
    ids = ("not_evident", "emerging", "developing", "strong")
    return tuple(Level(i, t, p, d) for p, (i, t, d) in enumerate(zip(ids, titles, descriptions)))


DEFAULT_RUBRIC = validate_rubric(Rubric(title=N_("Course project (HRBA and SDGs)"), criteria=(
    Criterion("hrba_principles", N_("HRBA principles applied"),
              N_("Participation and inclusion, transparency and accountability, equality and "
              "non-discrimination shape the project, not only its wording."),
              _levels(N_("Principles are not mentioned."),
                      N_("Principles are named but do not shape the activities."),
                      N_("Some principles shape the activities."),
                      N_("All three principles shape design, delivery and follow-up."))),
    Criterion("sdg_linkage", N_("SDG linkage"),
              N_("The project is linked to relevant SDGs and targets, and explains the link."),
              _levels(N_("No SDG link."),
                      N_("Goals are listed without explanation."),
                      N_("Goals and targets are relevant and partly explained."),
                      N_("Goals and targets are precise and the contribution is explained."))),
    Criterion("participation", N_("Participation of affected groups"),
              N_("Rights holders and vulnerable groups take part in planning, delivery and review."),
              _levels(N_("Affected groups are not identified."),
                      N_("Affected groups are identified but only informed."),
                      N_("Affected groups are consulted at some steps."),
                      N_("Affected groups take part in decisions from planning to evaluation."))),
    Criterion("feasibility", N_("Feasibility"),
              N_("Activities, timeline, stakeholders and resources are realistic for the local government."),
              _levels(N_("No workable plan."),
                      N_("Activities are vague or unrealistic."),
                      N_("Mostly realistic, with gaps in timeline or resources."),
                      N_("Realistic, with responsibilities, timeline, resources and risks addressed."))),
    Criterion("indicators", N_("Quality of indicators"),
              N_("Indicators of success are measurable, disaggregated where relevant and tied to the goals."),
              _levels(N_("No indicators."),
                      N_("Indicators are vague or not measurable."),
                      N_("Measurable indicators for some results."),
                      N_("Measurable, disaggregated indicators for every expected result."))),
)))
