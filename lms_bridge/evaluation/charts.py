"""Chart geometry for server-rendered SVG (templates/evaluation/_charts.html draws it; no JavaScript).

Each function returns plain numbers in a fixed viewBox; the SVG scales to the page width, and every chart
is shown next to a table with the same numbers for screen readers.
"""
from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 320, 160, 28, 22, 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    value: float
    text: str


def _scale_max(values) -> float:
    top = max([v for v in values if v is not None] + [0])
    return top if top > 0 else 1.0  # a cohort of zeros still draws (flat) instead of dividing by zero


def columns(items: list[tuple[str, float]], fmt=lambda v: f"{v:g}") -> dict:
    """Vertical bars (e.g. the gain distribution): items are (label, count)."""
    top = _scale_max(v for _l, v in items)
    inner_w, inner_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = inner_w / max(1, len(items))
    bars = []
    for i, (label, value) in enumerate(items):
        h = inner_h * (value or 0) / top
        bars.append(Bar(PAD_LEFT + i * step + 1, PAD_TOP + inner_h - h, max(1.0, step - 2), h, label, value,
                        fmt(value)))
    return {"bars": bars, "width": WIDTH, "height": HEIGHT, "base": PAD_TOP + inner_h, "left": PAD_LEFT,
            "top_label": fmt(top), "top": PAD_TOP, "label_every": max(1, len(items) // 5)}


def rows(items: list[tuple[str, float | None]], lo: float = 0.0, hi: float | None = None, fmt=lambda v: f"{v:g}") -> dict:
    """Horizontal bars (group means, answer counts); negative values grow left of the zero line."""
    values = [v for _l, v in items if v is not None]
    lo = min([lo] + values)
    hi = max([hi if hi is not None else 0.0] + values)
    if hi == lo:
        hi = lo + 1.0
    row_h, bar_h, width = 30, 12, WIDTH - 40  # label above each bar, room for the value after it
    zero = width * (0 - lo) / (hi - lo)
    bars = []
    for i, (label, value) in enumerate(items):
        v = value or 0.0
        x1, x2 = sorted((zero, width * (v - lo) / (hi - lo)))
        bars.append(Bar(x1, i * row_h + 14, max(x2 - x1, 0.5 if value is not None else 0), bar_h, label,
                        value, "–" if value is None else fmt(value)))
    return {"bars": bars, "width": WIDTH, "height": max(1, len(items)) * row_h, "zero": zero}


def line(points: list[tuple[str, float]], hi: float = 100.0) -> dict:
    """A step line of a rate over time (response rate): points are (label, percent)."""
    inner_w, inner_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    n = max(1, len(points) - 1)
    coords = [(PAD_LEFT + inner_w * i / n, PAD_TOP + inner_h * (1 - min(v, hi) / hi)) for i, (_l, v) in
              enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
    return {"path": path, "points": coords, "width": WIDTH, "height": HEIGHT, "base": PAD_TOP + inner_h,
            "left": PAD_LEFT, "top": PAD_TOP, "first": points[0][0] if points else "",
            "last": points[-1][0] if points else ""}
