"""The facilitator dashboard: every roster participant, late/missing flags, filters, counts, pages, CSV."""
from __future__ import annotations

import csv
import io
import re

from lms_bridge.db import connect, ts, utcnow
from lms_bridge.db import projects as q
from lms_bridge.projects.stages import STAGE_KEYS

SCOPE = (1, "1", "2")
PLAN = {"title": "Safe routes to school", "city": "Kathmandu", "country": "NP", "problem": "Traffic",
        "affected_groups": "Children", "hrba_principles": ["participation_inclusion"], "sdgs": ["11"],
        "stakeholders": "Schools", "activities": "Mapping", "indicators": "Accidents", "risks": "Funding"}


def db_of(app):
    return connect(app.config["DATABASE_URL"])


def seed_cohort(app, n: int) -> None:
    """n roster learners without projects, as NRPS would list them."""
    db = db_of(app)
    for i in range(n):
        q.upsert_member(db, SCOPE, f"u{i:03d}", f"Zed Learner {i:03d}", "", "learner", from_launch=False)
    db.conn.commit()


def rows_of(html: str) -> list[str]:
    return re.findall(r'<tr data-user="([^"]+)"', html)


def test_dashboard_lists_roster_with_statuses_flags_and_counts(app, client, lti):
    fac = lti.launch(user="3")
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": "2020-01-01T10:00",
                                                 "cutoff": "2099-01-01T10:00"})
    lina = lti.launch(user="5")
    client.post("/app/projects/stage/project_plan", data={"lt": lina, "action": "submit", "confirm": "1", **PLAN})
    asha = lti.launch(user="7")
    client.get("/app/projects/", query_string={"lt": asha})
    seed_cohort(app, 3)
    page = client.get("/app/projects/dashboard", query_string={"lt": fac}).get_data(as_text=True)
    assert sorted(rows_of(page)) == ["5", "7", "u000", "u001", "u002"]
    assert re.search(r'<tr data-user="5">.*?Submitted.*?status late', page, re.S)
    assert re.search(r'<tr data-user="7">.*?Not started.*?status missing', page, re.S)
    late = client.get("/app/projects/dashboard", query_string={"lt": fac, "stage": "project_plan",
                                                               "status": "late"}).get_data(as_text=True)
    assert rows_of(late) == ["5"] and '<strong id="total">1</strong> of 5' in late
    missing = client.get("/app/projects/dashboard", query_string={"lt": fac, "stage": "project_plan",
                                                                  "status": "missing"}).get_data(as_text=True)
    assert sorted(rows_of(missing)) == ["7", "u000", "u001", "u002"]
    nepal = client.get("/app/projects/dashboard", query_string={"lt": fac, "country": "NP"}).get_data(as_text=True)
    assert rows_of(nepal) == ["5"] and "Nepal" in nepal
    rows, total, counts = q.dashboard(db_of(app), SCOPE, list(STAGE_KEYS), {"project_plan": "2020-01-01T00:00:00"},
                                      ts(utcnow()))
    assert total == 5 and counts["everyone"] == 5
    assert counts["project_plan"]["submitted"] == 1 and counts["project_plan"]["not_started"] == 4
    assert counts["project_plan"]["late"] == 1 and counts["project_plan"]["missing"] == 4


def test_dashboard_pages_a_large_cohort_with_counts_over_the_whole_set(app, client, lti):
    fac = lti.launch(user="3")
    seed_cohort(app, 250)
    first = client.get("/app/projects/dashboard", query_string={"lt": fac}).get_data(as_text=True)
    third = client.get("/app/projects/dashboard", query_string={"lt": fac, "page": 3}).get_data(as_text=True)
    assert len(rows_of(first)) == 100 and len(rows_of(third)) == 50
    assert "Page 3 of 3" in third and '<strong id="total">250</strong>' in third
    assert not set(rows_of(first)) & set(rows_of(third))


def test_csv_export_carries_lms_username_and_email_marks_unreleased_grades_and_is_injection_safe(app, client, lti):
    lina = lti.launch(user="5")
    client.post("/app/projects/stage/project_plan",
                data={"lt": lina, "action": "submit", "confirm": "1", **dict(PLAN, title="=HYPERLINK(1)")})
    fac = lti.launch(user="3")
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    sel = {f"c_{c}": "strong" for c in ("hrba_principles", "sdg_linkage", "participation", "feasibility",
                                          "indicators")}
    client.post(f"/app/projects/review/{pid}/project_plan", data={"lt": fac, "action": "grade", **sel})

    def exported():
        body = client.get("/app/projects/export.csv", query_string={"lt": fac}).get_data(as_text=True)
        [header, row] = list(csv.reader(io.StringIO(body)))
        return dict(zip(header, row))

    row = exported()
    assert row["Participant"] == "Lina Santoso" and row["Group"] == "'=HYPERLINK(1)"
    assert row["Username"] == "learner1" and row["Email address"] == "learner1@example.org"
    assert row["Project plan status"] == "Graded"
    assert row["Project plan grade"] == "100 (In marking)"  # not released: says so
    for action in ("mark_ready", "release"):
        client.post(f"/app/projects/review/{pid}/project_plan", data={"lt": fac, "action": action})
    assert exported()["Project plan grade"] == "100"  # released: the plain number, as the gradebook has it
