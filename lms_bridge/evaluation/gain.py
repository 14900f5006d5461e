"""Learning gain arithmetic: plain functions over pre/post test scores, no Flask, no database.

Scores are compared as percentages of each test's maximum, so a pre-test out of 10 and a post-test out
of 20 still compare. Gain is in percentage points; normalised gain is (post - pre) / (100 - pre), Hake's
g, undefined when the pre-test was already at the maximum.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

ORG_TYPES = ("local_government", "cso", "nhri", "other")
BIN_WIDTH = 10  # percentage points per bar of the gain distribution


def percent(grade: float | None, grade_max: float | None) -> float | None:
    """A grade as a percentage of its maximum; None when missing or the maximum is not positive."""
    if grade is None or grade_max is None or grade_max <= 0:
        return None
    return 100.0 * grade / grade_max


class Result:
    """One participant: pre and post in percent (None when not taken), gain and normalised gain worked out once."""

    __slots__ = ("user_id", "name", "pre", "post", "country", "org_type", "gain", "normalised", "only")

    def __init__(self, user_id: str, name: str, pre: float | None, post: float | None, country: str = "",
                 org_type: str = ""):
        self.user_id, self.name, self.pre, self.post = user_id, name, pre, post
        self.country, self.org_type = country, org_type
        self.gain = post - pre if pre is not None and post is not None else None
        self.normalised = normalised_gain(pre, post)
        # 'pre' or 'post' when the participant took just that test, else None
        self.only = "pre" if post is None and pre is not None else "post" if pre is None and post is not None else None

    @property
    def complete(self) -> bool:
        return self.gain is not None

    def __repr__(self) -> str:
        return f"Result({self.user_id!r}, pre={self.pre}, post={self.post})"


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


def summarise(results: list[Result], with_bins: bool = True) -> Summary:
    """One pass over the cohort; the distribution only when asked (groups do not draw one)."""
    gains, normalised, pres, posts, only_pre, only_post = [], [], [], [], 0, 0
    for r in results:
        if r.pre is not None:
            pres.append(r.pre)
        if r.post is not None:
            posts.append(r.post)
        if r.gain is not None:
            gains.append(r.gain)
            if r.normalised is not None:
                normalised.append(r.normalised)
        elif r.only == "pre":
            only_pre += 1
        elif r.only == "post":
            only_post += 1
    mean = _mean(gains)
    return Summary(
        participants=len(results), both=len(gains), only_pre=only_pre, only_post=only_post,
        mean_pre=_mean(pres), mean_post=_mean(posts), mean_gain=mean,
        median_gain=statistics.median(gains) if gains else None,
        stdev_gain=math.sqrt(max(0.0, math.fsum((g - mean) ** 2 for g in gains) / len(gains))) if gains else None,
        mean_normalised=_mean(normalised), normalised_n=len(normalised),
        bins=histogram(gains) if with_bins else [])


def by_group(results: list[Result], key) -> list[tuple[str, Summary]]:
    """Summaries per value of `key(result)` ('' = not stated), largest group first."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(key(r) or "", []).append(r)
    return sorted(((k, summarise(v, with_bins=False)) for k, v in groups.items()), key=lambda kv: (-kv[1].participants, kv[0]))


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
