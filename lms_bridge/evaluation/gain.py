"""Learning gain arithmetic: plain functions over pre/post test scores, no Flask, no database.

Scores are compared as percentages of each test's maximum, so a pre-test out of 10 and a post-test out
of 20 still compare. Gain is in percentage points; normalised gain is (post - pre) / (100 - pre), Hake's
g, undefined when the pre-test was already at the maximum.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

ORG_TYPES = ("local_government", "cso", "nhri", "other")
BIN_WIDTH = 10  # percentage points per bar of the gain distribution


def percent(grade: float | None, grade_max: float | None) -> float | None:
    """A grade as a percentage of its maximum; None when missing or the maximum is not positive."""
    if grade is None or grade_max is None or grade_max <= 0:
        return None
    return 100.0 * grade / grade_max


@dataclass(frozen=True)
class Result:
    user_id: str
    name: str
    pre: float | None  # percent
    post: float | None  # percent
    country: str = ""
    org_type: str = ""

    @property
    def complete(self) -> bool:
        return self.pre is not None and self.post is not None

    @property
    def only(self) -> str | None:
        """'pre' or 'post' when the participant took just that test, else None."""
        if self.pre is not None and self.post is None:
            return "pre"
        if self.post is not None and self.pre is None:
            return "post"
        return None

    @property
    def gain(self) -> float | None:
        return self.post - self.pre if self.complete else None

    @property
    def normalised(self) -> float | None:
        return normalised_gain(self.pre, self.post)


def normalised_gain(pre: float | None, post: float | None, maximum: float = 100.0) -> float | None:
    """(post - pre) / (max - pre); None when a test is missing or pre is already the maximum."""
    if pre is None or post is None or pre >= maximum:
        return None
    return (post - pre) / (maximum - pre)


def result(user_id: str, name: str, pre, pre_max, post, post_max, country: str = "", org_type: str = "") -> Result:
    return Result(user_id, name, percent(pre, pre_max), percent(post, post_max), country, org_type)


@dataclass
class Summary:
    """A cohort (or one group of it): counts, mean and median gain, mean normalised gain, distribution."""

    participants: int = 0
    both: int = 0
    only_pre: int = 0
    only_post: int = 0
    mean_pre: float | None = None
    mean_post: float | None = None
    mean_gain: float | None = None
    median_gain: float | None = None
    stdev_gain: float | None = None
    mean_normalised: float | None = None
    normalised_n: int = 0
    bins: list[tuple[int, int]] = field(default_factory=list)  # (lower edge, count)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def histogram(gains: list[float], width: int = BIN_WIDTH) -> list[tuple[int, int]]:
    """Counts per `width`-point bin from -100 to 100; a gain on an edge goes to the bin above, +100 to the last."""
    edges = list(range(-100, 100, width))
    counts = dict.fromkeys(edges, 0)
    for g in gains:
        lower = min(max(int((g + 100) // width) * width - 100, -100), 100 - width)
        counts[lower] += 1
    return list(counts.items())


def summarise(results: list[Result]) -> Summary:
    complete = [r for r in results if r.complete]
    gains = [r.gain for r in complete]
    normalised = [r.normalised for r in complete if r.normalised is not None]
    return Summary(
        participants=len(results), both=len(complete),
        only_pre=sum(r.only == "pre" for r in results), only_post=sum(r.only == "post" for r in results),
        mean_pre=_mean([r.pre for r in results if r.pre is not None]),
        mean_post=_mean([r.post for r in results if r.post is not None]),
        mean_gain=_mean(gains), median_gain=statistics.median(gains) if gains else None,
        stdev_gain=statistics.pstdev(gains) if gains else None,
        mean_normalised=_mean(normalised), normalised_n=len(normalised), bins=histogram(gains))


def by_group(results: list[Result], key) -> list[tuple[str, Summary]]:
    """Summaries per value of `key(result)` ('' = not stated), largest group first."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(key(r) or "", []).append(r)
    return sorted(((k, summarise(v)) for k, v in groups.items()), key=lambda kv: (-kv[1].participants, kv[0]))


@dataclass(frozen=True)
class ModuleGain:
    module: str
    questions: int
    pre: float | None  # mean share of marks, percent
    post: float | None

    @property
    def change(self) -> float | None:
        return self.post - self.pre if self.pre is not None and self.post is not None else None


def module_gains(slot_means: list[dict], slot_module: dict[int, str]) -> list[ModuleGain]:
    """Per module: mean pre and post share of marks over its questions; least improved first.

    `slot_means` rows: test ('pre'/'post'), slot, mean (0..1). Slots without a module go to ''.
    """
    acc: dict[str, dict[str, list[float]]] = {}
    slots: dict[str, set[int]] = {}
    for row in slot_means:
        module = slot_module.get(row["slot"], "")
        acc.setdefault(module, {"pre": [], "post": []})[row["test"]].append(100.0 * row["mean"])
        slots.setdefault(module, set()).add(row["slot"])
    out = [ModuleGain(m, len(slots[m]), _mean(v["pre"]), _mean(v["post"])) for m, v in acc.items()]
    return sorted(out, key=lambda g: (g.change is None, g.change if g.change is not None else 0, g.module))
