"""The facilitators' dashboard as CSV, safe to open in a spreadsheet."""

import csv
import io

from ..i18n import _
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
    """Username and e-mail as the LMS knows them, to match rows with Moodle's gradebook export."""
    header = [_("Participant"), _("Username"), _("Email address"), _("Group")]
    for stage in STAGES.values():
        header.append(_("%(stage)s status", stage=_(stage.title)))
        if stage.graded:
            header.append(_("%(stage)s grade", stage=_(stage.title)))
    return header


def dashboard_csv(rows) -> str:
    """One line per participant: name, LMS username and e-mail, group, and each stage's status (and grade
    when graded).

    Each row is a mapping with "participant", optional "username", "email" and "group", and "stages":
    stage key -> {"status": ..., "grade": ...}; missing stages show as not started.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(dashboard_header())
    for row in rows:
        line = [safe_cell(row.get(k)) for k in ("participant", "username", "email", "group")]
        stages = row.get("stages") or {}
        for key, stage in STAGES.items():
            cell = stages.get(key) or {}
            status = cell.get("status") or NOT_STARTED
            line.append(safe_cell(_(STATUS_LABELS[status]) if status in STATUS_LABELS else status))
            if stage.graded:
                line.append(safe_cell(cell.get("grade")))
        writer.writerow(line)
    return out.getvalue()
