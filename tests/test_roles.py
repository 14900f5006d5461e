"""Issue 11 item 4: the course role comes from context membership roles only, and experts are a role the
tool gives: an expert-only member reaches the expert consultation pages and nothing that grades, exports,
edits rubrics or shows learners' projects."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from lms_bridge.db import connect
from lms_bridge.lti.identity import role_of
from test_hardening import launch_as
from test_launch import C
from test_projects_refusals import PDF, post_report

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
M, INST, SYS = LIS + "membership#", LIS + "institution/person#", LIS + "system/person#"


@pytest.mark.parametrize("roles,role", [
    ([M + "Instructor"], "facilitator"),
    (["Instructor"], "facilitator"),  # the simple context role name LTI 1.3 allows
    ([LIS + "membership/Instructor#TeachingAssistant", M + "Instructor"], "facilitator"),
    ([M + "Learner"], "learner"),
    ([M + "Mentor"], "member"),
    ([M + "Mentor", M + "Learner"], "learner"),
    ([INST + "Instructor"], "member"),
    ([SYS + "Instructor"], "member"),
    ([INST + "Instructor", M + "Learner"], "learner"),
    ([M + "ContentDeveloper"], "member"),
    ([INST + "Administrator"], "admin"),
    ([SYS + "Administrator", M + "Instructor", INST + "Administrator"], "admin"),  # Moodle's site admin
    ([M + "Administrator"], "admin"),
    ([LIS + "membership#InstructorX"], "member"),
    ([], "member"), ("Instructor", "member"), ([None, 3], "member"),
])
def test_course_role_comes_from_context_membership_roles_only(roles, role):
    assert role_of(roles) == role


@pytest.mark.parametrize("roles", [[M + "Mentor"], [INST + "Instructor"], [SYS + "Instructor"],
                                   [INST + "Instructor", M + "Learner"]])
def test_mentors_and_institution_instructors_get_no_facilitator_pages(app, client, roles):
    token = launch_as(app, client, **{C + "roles": roles})
    for path in ("/app/projects/dashboard", "/app/projects/export.csv", "/app/projects/rubric",
                 "/consultations/overview"):
        assert client.get(path, query_string={"lt": token}).status_code == 403, path


def test_nrps_roster_roles_follow_the_same_rules():
    from lms_bridge.projects.roster import role_from_nrps

    assert role_from_nrps(["Instructor"]) == "facilitator"
    assert role_from_nrps(["Mentor"]) == "member" and role_from_nrps(["Learner"]) == "learner"
    assert role_from_nrps([INST + "Instructor"]) == "member"


# --- experts ---------------------------------------------------------------------------------------
MENTOR = "7"  # Asha joins as an outside expert: in the course without a teaching role


def mentor_launch(app, client):
    token = launch_as(app, client, sub=MENTOR, **{C + "roles": [M + "Mentor"]})
    client.get("/app/landing", query_string={"lt": token})  # the LMS frame follows the launch's redirect
    return token


def _expert_only(app, client, lti):
    """A facilitator adds a member (who launched once) as expert; returns the member's next launch."""
    mentor_launch(app, client)
    fac = lti.launch(user="3", activity="consultations")
    page = client.get("/consultations/overview", query_string={"lt": fac}).get_data(as_text=True)
    assert re.search(rf'<option value="{MENTOR}">[^<]*\(member\)</option>', page)
    resp = client.post("/consultations/experts", data={"lt": fac, "user_id": MENTOR})
    assert resp.status_code == 303
    return mentor_launch(app, client), fac


def test_a_facilitator_makes_a_member_an_expert_who_reaches_the_expert_pages(app, client, lti):
    token, _fac = _expert_only(app, client, lti)
    db = connect(app.config["DATABASE_URL"])
    assert db.execute("SELECT role FROM launches WHERE user_id = ? ORDER BY created_at DESC",
                      [MENTOR]).fetchone()[0] == "expert"
    home = client.get("/consultations/", query_string={"lt": token}).get_data(as_text=True)
    assert 'id="profile-link"' in home and 'id="overview-link"' not in home
    assert client.get("/consultations/profile", query_string={"lt": token}).status_code == 200
    day = date.today() + timedelta(days=4)
    resp = client.post("/consultations/availability", data={
        "lt": token, "tz": "Asia/Kathmandu", "valid_from": str(day), "valid_until": str(day), "weekly": "",
        "one_off": f"{day} 10:00-11:00", "exceptions": "", "slot_minutes": "60", "buffer_minutes": "0",
        "capacity": "1"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM booking_slots").fetchone()[0] == 1


def test_an_expert_only_member_is_refused_everything_that_grades_exports_or_shows_projects(app, client, lti):
    learner = lti.launch(user="5", activity="project_report")
    assert post_report(client, learner, PDF, "report.pdf").status_code == 303
    db = connect(app.config["DATABASE_URL"])
    project_id = db.execute("SELECT id FROM projects").fetchone()[0]
    attachment_id = db.execute("SELECT id FROM attachments").fetchone()[0]
    token, _fac = _expert_only(app, client, lti)
    refused = {"get": ["/app/projects/dashboard", "/app/projects/export.csv", "/app/projects/rubric",
                       "/app/projects/deadlines", "/app/projects/audit", f"/app/projects/review/{project_id}/project_report",
                       "/app/projects/", "/app/projects/stage/project_plan", "/consultations/overview",
                       "/consultations/overview.csv", "/app/sync/outbox"],
               "post": [f"/app/projects/review/{project_id}/project_report", "/app/projects/rubric",
                        "/app/projects/deadlines", "/app/projects/roster/sync", "/consultations/settings",
                        "/consultations/experts", "/consultations/expert"]}
    for method, paths in refused.items():
        for path in paths:
            resp = getattr(client, method)(path, query_string={"lt": token}) if method == "get" else \
                client.post(path, data={"lt": token, "action": "grade", "user_id": "5"})
            assert resp.status_code == 403, (method, path, resp.status_code)
            body = resp.get_data(as_text=True)
            assert 'data-error="expert_only"' in body and "as an expert" in body, (method, path)
    resp = client.get(f"/app/projects/file/{attachment_id}", query_string={"lt": token})
    assert resp.status_code in (403, 404) and b"%PDF" not in resp.data
    assert client.get("/app/projects/open", query_string={"lt": token}, follow_redirects=True).status_code == 403


def test_a_removed_expert_loses_the_expert_pages(app, client, lti):
    token, fac = _expert_only(app, client, lti)
    db = connect(app.config["DATABASE_URL"])
    expert_id = db.execute("SELECT id FROM booking_experts WHERE user_id = ?", [MENTOR]).fetchone()[0]
    assert client.post(f"/consultations/experts/{expert_id}/active", data={"lt": fac, "active": "0"}).status_code == 303
    assert client.get("/consultations/profile", query_string={"lt": token}).status_code == 404
    again = mentor_launch(app, client)
    assert db.execute("SELECT role FROM launches WHERE user_id = ? ORDER BY created_at DESC",
                      [MENTOR]).fetchone()[0] == "member"
    assert client.get("/consultations/profile", query_string={"lt": again}).status_code == 403


def test_only_members_of_this_course_can_be_made_experts(app, client, lti):
    fac = lti.launch(user="3", activity="consultations")
    other = lti.launch(user="6", activity="consultations", course="3")  # on another course's roster only
    client.get("/app/landing", query_string={"lt": other})
    for user in ("6", "999", ""):
        resp = client.post("/consultations/experts", data={"lt": fac, "user_id": user})
        assert resp.status_code == 404, user
    assert connect(app.config["DATABASE_URL"]).execute("SELECT count(*) FROM booking_experts").fetchone()[0] == 0
