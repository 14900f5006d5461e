"""What the facilitator's reports show, assembled from stored data (no HTTP): learning gain and tracer results."""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta

from ..db import evaluation as q
from ..db import parse_ts, utcnow
from ..db import projects as pq
from ..i18n import gettext, lazy_gettext as N_
from ..projects.export import safe_cell  # CSV cells a spreadsheet will not run as formulas
from ..projects.forms import COUNTRIES
from . import charts, gain, tracer
from .grades import cartridge_tests

ORG_LABELS = {"local_government": N_("Local government"), "cso": N_("Civil society organisation (CSO)"),
              "nhri": N_("National human rights institution (NHRI)"), "other": N_("Other")}
PER_PAGE = 20
CHART_GROUPS = 10  # bars per group chart (the largest groups); the table beside lists all
TEXTS_SHOWN = 12  # per question on the page; the CSV has them all


ORG_SHORT = {"local_government": N_("Local government"), "cso": N_("CSO"), "nhri": N_("NHRI"), "other": N_("Other")}


def org_short(key: str) -> str:
    """For the participants table: the abbreviations the course uses."""
    return gettext(ORG_SHORT[key]) if key in ORG_SHORT else ""


def org_label(key: str) -> str:
    return gettext(ORG_LABELS[key]) if key in ORG_LABELS else gettext("Not stated")


def country_label(key: str) -> str:
    return COUNTRIES.get(key, key) if key else gettext("Not stated")


def results(db, scope) -> list[gain.Result]:
    return [gain.result(r["user_id"], r["name"], r["pre"], r["pre_max"], r["post"], r["post_max"], r["country"],
                        r["org_type"]) for r in q.grades(db, scope)]


def _group_rows(groups, labeller) -> list[dict]:
    return [{"key": k, "label": labeller(k), "s": s} for k, s in groups]


def learning_gain(db, scope, page: int = 1, fmt=lambda v: f"{v:.1f}") -> dict:
    """Everything the learning-gain page shows; the participant table is one page of PER_PAGE rows."""
    res = results(db, scope)
    summary = gain.summarise(res)
    by_country = _group_rows(gain.by_group(res, lambda r: r.country), country_label)
    by_org = _group_rows(gain.by_group(res, lambda r: r.org_type), org_label)
    tests = cartridge_tests()
    modules = gain.module_gains(q.slot_means(db, scope), tests.slot_module)
    module_rows = [{"label": tests.module_titles.get(m.module) or gettext("Questions without a module"), "m": m}
                   for m in modules]
    pages = max(1, -(-len(res) // PER_PAGE))
    page = min(max(1, page), pages)
    return {
        "summary": summary, "by_country": by_country, "by_org": by_org, "modules": module_rows,
        "participants": res[(page - 1) * PER_PAGE: page * PER_PAGE], "page": page, "pages": pages,
        "total": len(res),
        "dist_chart": charts.columns([(f"{lo:+d}", n) for lo, n in summary.bins]),
        "country_chart": charts.rows([(g["label"], g["s"].mean_gain) for g in by_country if g["s"].both][:CHART_GROUPS],
                                     fmt=fmt),
        "org_chart": charts.rows([(g["label"], g["s"].mean_gain) for g in by_org if g["s"].both], fmt=fmt),
        "chart_groups": CHART_GROUPS,
        "module_chart": charts.rows([(r["label"], r["m"].change) for r in module_rows], fmt=fmt),
    }


def _num(v, digits=1) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def gain_csv(db, scope) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["user_id", "name", "country", "organisation_type", "pre_percent", "post_percent", "gain_points",
                "normalised_gain", "took_only"])
    for r in results(db, scope):
        w.writerow([safe_cell(r.user_id), safe_cell(r.name), r.country, r.org_type, _num(r.pre), _num(r.post),
                    _num(r.gain), _num(r.normalised, 3), r.only or ""])
    return out.getvalue()


# --- tracer results ------------------------------------------------------------------------------
def response_rate(invites: list[dict], answers: list[dict], opens: datetime, until: datetime) -> list[tuple]:
    """(date, percent of invited who had submitted by the end of that day), one point per day (at most 120)."""
    invited = len(invites)
    days = max(1, min(120, (until.date() - opens.date()).days + 1))
    step = max(1, -(-days // 60))
    submitted = sorted(parse_ts(a["submitted_at"]) for a in answers if a["submitted_at"])
    points, i = [], 0
    for d in range(0, days, step):
        day_end = datetime.combine(opens.date() + timedelta(days=d + 1), datetime.min.time(), opens.tzinfo)
        while i < len(submitted) and submitted[i] < day_end:
            i += 1
        points.append((opens.date() + timedelta(days=d), 100.0 * i / invited if invited else 0.0))
    return points


def tracer_results(db, scope, round_id: int) -> dict | None:
    rnd = q.get_round(db, scope, round_id)
    if rnd is None:
        return None
    invites, answers = q.invites(db, round_id), q.answers(db, round_id)
    opens, closes = parse_ts(rnd["opens_at"]), parse_ts(rnd["closes_at"])
    until = min(utcnow(), parse_ts(rnd["closed_at"]) if rnd["closed_at"] else closes)
    rate = response_rate(invites, answers, opens, max(until, opens))
    per_question = []
    for question in rnd["questions"]:
        key, kind = question["key"], question["kind"]
        entry = {"q": question, "label": tracer.label(question), "kind": kind}
        if kind in (tracer.CHOICE, tracer.MULTI):
            counts = Counter()
            for a in answers:
                value = a["answers"].get(key)
                counts.update(value if isinstance(value, list) else [value] if value else [])
            items = [(tracer.choice_label(question, c), counts.get(c, 0)) for c in question.get("choices", {})]
            entry.update(counts=items, chart=charts.rows(items, fmt=lambda v: f"{v:g}"))
        elif kind == tracer.NUMBER:
            nums = sorted(int(a["answers"][key]) for a in answers if str(a["answers"].get(key, "")).isdigit())
            entry.update(n=len(nums), total=sum(nums), median=nums[len(nums) // 2] if nums else None)
        else:
            texts = [(a["name"] or a["user_id"], a["user_id"], a["answers"].get(key, "")) for a in answers
                     if a["answers"].get(key)]
            entry.update(texts=texts[:TEXTS_SHOWN], more=max(0, len(texts) - TEXTS_SHOWN))
        per_question.append(entry)
    return {"round": rnd, "invited": len(invites), "answered": len(answers),
            "rate": rate, "rate_chart": charts.line([(d.isoformat(), v) for d, v in rate]),
            "questions": per_question, "answers": answers}


def tracer_csv(db, scope, round_id: int) -> str | None:
    rnd = q.get_round(db, scope, round_id)
    if rnd is None:
        return None
    out = io.StringIO()
    w = csv.writer(out)
    keys = [x["key"] for x in rnd["questions"]]
    w.writerow(["user_id", "name", "status", "submitted_at", *keys])
    for a in q.answers(db, round_id, submitted_only=False):
        w.writerow([safe_cell(a["user_id"]), safe_cell(a["name"]), a["status"], a["submitted_at"] or "",
                    *[safe_cell("; ".join(v) if isinstance(v := a["answers"].get(k, ""), list) else v)
                      for k in keys]])
    return out.getvalue()


def project_record(db, scope, user_id: str) -> dict:
    """Plan -> report -> tracer answers of one participant, for the facilitator."""
    project = pq.project_of(db, scope, user_id)
    plan = pq.submission(db, project["id"], "project_plan") if project else None
    report = pq.submission(db, project["id"], "project_report") if project else None
    return {"member": pq.roster_member(db, scope, user_id), "project": project, "plan": plan, "report": report,
            "tracer": q.answers_of(db, scope, user_id)}


def plan_indicators(db, scope, user_id: str) -> str:
    project = pq.project_of(db, scope, user_id)
    plan = pq.submission(db, project["id"], "project_plan") if project else None
    return ((plan or {}).get("data") or {}).get("indicators", "") if plan else ""
