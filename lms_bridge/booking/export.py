"""The facilitator's consultation overview as CSV, safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import io

from ..projects.export import safe_cell
from .zones import format_in_zone

HEADER = ["Booking", "Participant", "Expert", "Start (UTC)", "Start (facilitator's zone)", "Topic", "Project",
          "Status", "Attendance", "Follow-up actions"]


def overview_csv(rows: list[dict], tz: str, parse) -> str:
    """One line per booking: who booked whom, when, attendance and agreed follow-up (never private notes)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for r in rows:
        start = parse(r["start_utc"])
        writer.writerow([safe_cell(v) for v in (
            r["id"], r["participant_name"] or r["participant_id"], r["expert_name"],
            start.strftime("%Y-%m-%d %H:%M"), format_in_zone(start, tz), r["topic"], r["project"],
            r["status"], r["attendance"] or "", r["follow_up"])])
    return out.getvalue()
