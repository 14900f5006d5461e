"""The facilitators' dashboard as CSV, safe to open in a spreadsheet."""

import csv
import io

from .stages import STAGES
from .workflow import NOT_STARTED, STATUS_LABELS

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection): prefix risky cells with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:g}"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def dashboard_header() -> list[str]:
    header = ["Participant", "Group"]
    for stage in STAGES.values():
        header.append(f"{stage.title} status")
        if stage.graded:
            header.append(f"{stage.title} grade")
    return header


def dashboard_csv(rows) -> str:
    """One line per participant: name, group, and each stage's status (and grade when graded).

    Each row is a mapping with "participant", optional "group", and "stages": stage key ->
    {"status": ..., "grade": ...}; missing stages show as not started.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(dashboard_header())
    for row in rows:
        line = [safe_cell(row.get("participant")), safe_cell(row.get("group"))]
        stages = row.get("stages") or {}
        for key, stage in STAGES.items():
            cell = stages.get(key) or {}
            status = cell.get("status") or NOT_STARTED
            line.append(safe_cell(STATUS_LABELS.get(status, status)))
            if stage.graded:
                line.append(safe_cell(cell.get("grade")))
        writer.writerow(line)
    return out.getvalue()
