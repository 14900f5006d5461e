"""One check's outcome (OK, WARN or FAIL with its one-line fix) and how `doctor` reports a list of them."""
from __future__ import annotations

from dataclasses import asdict, dataclass

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    platform: int | None = None


def check(name, status, detail, fix="", platform=None) -> Check:
    return Check(name, status, detail, fix if status != OK else "", platform)


def report(checks: list[Check]) -> dict:
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    return {"ok": counts[FAIL] == 0, "counts": counts, "checks": [asdict(c) for c in checks]}


def lines(checks: list[Check]) -> list[str]:
    out = []
    for c in checks:
        out.append(f"{c.status:<4}  {c.name}: {c.detail}")
        if c.fix:
            out.append(f"      fix: {c.fix}")
    counts = report(checks)["counts"]
    out.append(f"{counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed")
    return out
