"""The project workflow end to end through signed sandbox launches: submit, return, resubmit, grade, release."""
from __future__ import annotations

import json

import pytest

from lms_bridge.db import connect
from lms_bridge.db import projects as q
from lms_bridge.db import sandbox as sq

PLAN = {"title": "Accessible water points in Jakarta", "city": "Jakarta", "country": "ID",
        "problem": "Water points are out of reach for wheelchair users.", "affected_groups": "People with disabilities",
        "hrba_principles": ["participation_inclusion", "equality_non_discrimination"], "sdgs": ["6", "10"],
        "sdg_targets": "6.1, 10.2", "stakeholders": "City water office, DPO network",
        "activities": "Audit, redesign, pilot", "indicators": "Share of accessible points", "risks": "Budget cuts"}
SCOPE = (1, "1", "2")


def db_of(app):
    return connect(app.config["DATABASE_URL"])


def post_stage(client, token, stage="project_plan", data=None, action="submit", confirm=True, **kw):
    """Save or submit as the stage form does; a submit is the confirmed one unless confirm=False."""
    extra = {"confirm": "1"} if action == "submit" and confirm else {}
    return client.post(f"/app/projects/stage/{stage}", data={"lt": token, "action": action, **extra, **(data or {})},
                       **kw)


def review(client, token, project_id, action, stage="project_plan", **fields):
    return client.post(f"/app/projects/review/{project_id}/{stage}", data={"lt": token, "action": action, **fields})


def status_of(app, user="5", stage="project_plan"):
    db = db_of(app)
    project = q.project_of(db, SCOPE, user)
    return q.submission(db, project["id"], stage) if project else None


def jobs(app, kind):
    return [dict(r, payload=json.loads(r["payload"])) for r in db_of(app).query(
        "SELECT * FROM outbox WHERE kind = ? ORDER BY id", [kind])]


def open_from_course(client, token):
    return client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)


ALL_STRONG = {f"c_{c}": "strong" for c in ("hrba_principles", "sdg_linkage", "participation", "feasibility")} | {
    "c_indicators": "developing"}


def test_launch_opens_stage_form_with_dates_in_the_learners_zone(client, lti):
    fac = lti.launch(user="3")
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": "2026-12-01T17:00",
                                                 "cutoff": "2026-12-08T17:00"})
    token = lti.launch(user="5", activity="project_plan")
    landing = client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)
    assert landing.status_code == 200 and "Project title" in landing.get_data(as_text=True)
    page = client.get("/app/projects/", query_string={"lt": token}).get_data(as_text=True)
    # 17:00 Stockholm (the facilitator's zone) is 23:00 in Jakarta, named
    assert "Dec 1, 2026, 23:00 Asia/Jakarta" in page and "Due next" in page and "Not started" in page
    client.post("/app/projects/timezone", data={"lt": token, "tz": "Pacific/Tarawa"})
    page = client.get("/app/projects/", query_string={"lt": token}).get_data(as_text=True)
    assert "Dec 2, 2026, 04:00 Pacific/Tarawa" in page


def test_validation_error_keeps_typed_values_and_changes_nothing(app, client, lti):
    token = lti.launch(user="5")
    assert post_stage(client, token, data={"title": "Draft title"}, action="save_draft").status_code == 303
    assert status_of(app)["status"] == "draft"
    resp = post_stage(client, token, data={"title": "New title typed", "city": "Jakarta", "sdg_targets": "99.9"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "New title typed" in html and "Local problem is required to submit." in html
    assert "99.9 is not a target number" in html
    sub = status_of(app)
    assert sub["status"] == "draft" and sub["data"]["title"] == "Draft title"


def test_return_resubmit_grade_release_reaches_the_sandbox_gradebook(app, client, lti):
    from lms_bridge.sync.worker import deliver_due

    learner = lti.launch(user="5")
    assert post_stage(client, learner, data=PLAN).status_code == 303
    sub = status_of(app)
    assert (sub["status"], sub["attempt"]) == ("submitted", 1)
    fac = lti.launch(user="3")
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    assert review(client, fac, pid, "return_for_revision", comment="Add indicators by gender.").status_code == 303
    page = client.get("/app/projects/stage/project_plan", query_string={"lt": learner}).get_data(as_text=True)
    assert "Returned for revision" in page and "Add indicators by gender." in page
    assert post_stage(client, learner, data=dict(PLAN, indicators="Share by gender")).status_code == 303
    assert (status_of(app)["status"], status_of(app)["attempt"]) == ("submitted", 2)

    assert review(client, fac, pid, "grade", comment="Well argued plan.", **ALL_STRONG).status_code == 303
    sub = status_of(app)
    assert sub["status"] == "graded" and sub["marking_state"] == "in_marking" and sub["grade"] == pytest.approx(93.33)
    hidden = client.get("/app/projects/stage/project_plan", query_string={"lt": learner}).get_data(as_text=True)
    assert "Well argued plan." not in hidden and "93.33" not in hidden
    assert review(client, fac, pid, "release").status_code == 409  # still in marking
    assert jobs(app, "ags_score") == []
    review(client, fac, pid, "mark_ready")
    assert review(client, fac, pid, "release").status_code == 303
    score_jobs = jobs(app, "ags_score")
    assert len(score_jobs) == 1
    p = score_jobs[0]["payload"]
    assert p["user_id"] == "5" and p["score_given"] == pytest.approx(93.33) and p["score_maximum"] == 100
    assert p["grading_progress"] == "FullyGraded" and p["comment"] == "Well argued plan." and p["resource_id"] == "project_plan"
    assert p["lineitems_url"].endswith("/mod/lti/services.php/2/lineitems?type_id=1")
    assert [j["payload"]["lti_instance_id"] for j in jobs(app, "ws_completion")] == ["1"]
    shown = client.get("/app/projects/stage/project_plan", query_string={"lt": learner}).get_data(as_text=True)
    assert "Well argued plan." in shown and "93.33" in shown
    assert shown.count("Attempt ") >= 2  # both versions in the history

    deliver_due(app)
    db = db_of(app)
    # the grade lands in the activity's own column (the one its launch named), and in no other column
    own = sq.link_lineitems(db, "1")
    assert len(own) == 1 and sq.get_grade(db, own[0]["id"], "5")["score"] == pytest.approx(93.33)
    assert [r["lineitem_id"] for r in sq.gradebook(db) if r["user_id"] == "5"] == [own[0]["id"]]
    actions = [a["action"] for a in q.audit_trail(db, SCOPE, pid)]
    assert actions[::-1] == ["submit", "return_for_revision", "submit", "grade", "mark_ready", "release"]


def test_score_timestamps_strictly_increase_per_learner_and_line_item(app, client, lti):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3")
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    for _ in range(2):
        review(client, fac, pid, "grade", **ALL_STRONG)
        review(client, fac, pid, "mark_ready")
        assert review(client, fac, pid, "release").status_code == 303
    a, b = (j["payload"]["timestamp"] for j in jobs(app, "ags_score"))
    from datetime import datetime
    assert (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() >= 1


def test_group_shares_one_submission_and_every_member_gets_the_grade(app, client, lti):
    open_from_course(client, lti.launch(user="6"))  # learner2 joins the roster through a launch
    owner = lti.launch(user="5")
    assert client.post("/app/projects/group", data={"lt": owner, "coauthor": "6"}).status_code == 303
    refused = client.post("/app/projects/group", data={"lt": owner, "coauthor": "3"})
    assert refused.status_code == 400 and "User 3 is not enrolled in this course." in refused.get_data(as_text=True)
    assert [m["user_id"] for m in q.members(db_of(app), q.project_of(db_of(app), SCOPE, "5")["id"])] == ["5", "6"]
    post_stage(client, owner, data=PLAN, action="save_draft")
    coauthor = lti.launch(user="6")
    page = client.get("/app/projects/stage/project_plan", query_string={"lt": coauthor}).get_data(as_text=True)
    assert "Accessible water points in Jakarta" in page
    assert post_stage(client, coauthor, data=PLAN).status_code == 303
    assert status_of(app, "5")["status"] == "submitted" == status_of(app, "6")["status"]
    fac = lti.launch(user="3")
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    # a member who became staff later is never graded
    db = db_of(app)
    q.upsert_member(db, SCOPE, "4", "Eun-ji Expert", "", "facilitator", from_launch=True)
    db.execute("INSERT INTO project_members VALUES (?,?,?,?,?, 'coauthor')", [pid, *SCOPE, "4"])
    db.conn.commit()
    review(client, fac, pid, "grade", **ALL_STRONG)
    review(client, fac, pid, "mark_ready")
    review(client, fac, pid, "release")
    assert sorted(j["payload"]["user_id"] for j in jobs(app, "ags_score")) == ["5", "6"]


def test_review_request_from_gradebook_opens_that_learners_submission(app, client, lti):
    from urllib.parse import parse_qs, urlsplit

    from conftest import TOOL_URL, form_fields
    from lms_bridge.sandbox.platform import initiation_fields

    post_stage(client, lti.launch(user="5"), data=PLAN)
    resp = client.post("/lti/login", data=initiation_fields(TOOL_URL, "3", "1", "LtiSubmissionReviewRequest", "5"))
    loc = urlsplit(resp.headers["Location"])
    fields = form_fields(client.get(loc.path, query_string=loc.query).get_data(as_text=True))[1]
    token = parse_qs(urlsplit(lti.post_launch(fields).headers["Location"]).query)["lt"][0]
    page = client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    assert page.status_code == 200 and f"/app/projects/review/{pid}/project_plan" in page.request.path
    assert "Accessible water points in Jakarta" in page.get_data(as_text=True)


def test_roster_sync_through_nrps_keeps_staff_as_staff(app, client, lti):
    fac = lti.launch(user="3")
    open_from_course(client, lti.launch(user="4"))  # expert1: Instructor on launch, "Learner" in Moodle's NRPS answer
    assert client.post("/app/projects/roster/sync", data={"lt": fac}).status_code == 303
    roles = q.roster_roles(db_of(app), SCOPE)
    assert roles["4"] == "facilitator" and roles["5"] == roles["6"] == roles["7"] == "learner"
    page = client.get("/app/projects/dashboard", query_string={"lt": fac}).get_data(as_text=True)
    assert "Lina Santoso" in page and "Eun-ji" not in page


def test_progress_updates_repeat_and_group_extensions_cover_every_member(app, client, lti):
    owner = lti.launch(user="5")
    open_from_course(client, lti.launch(user="7"))
    client.post("/app/projects/group", data={"lt": owner, "coauthor": "7"})
    update = {"progress": "Mapped 12 water points", "challenges": "Rain", "next_steps": "Consult DPOs"}
    for n in (1, 2):
        assert post_stage(client, owner, "progress_update", update).status_code == 303
        sub = status_of(app, stage="progress_update")
        assert (sub["status"], sub["attempt"]) == ("submitted", n)
    assert len(q.versions(db_of(app), sub["id"])) == 2

    fac = lti.launch(user="3")
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": "2020-01-01T10:00",
                                                 "cutoff": "2020-01-02T10:00"})
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    page = client.get("/app/projects/deadlines", query_string={"lt": fac}).get_data(as_text=True)
    assert f'value="project:{pid}"' in page
    closed = post_stage(client, lti.launch(user="7"), data=PLAN)
    assert closed.status_code == 403
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "subject": f"project:{pid}",
                                                 "until": "2099-01-01T10:00"})
    assert post_stage(client, lti.launch(user="7"), data=PLAN).status_code == 303
    assert status_of(app, "5")["status"] == "submitted" and status_of(app, "5")["late"] == 0  # due moved too


def test_unknown_time_zone_is_refused_and_the_zone_stays(client, lti):
    token = lti.launch(user="5")
    resp = client.post("/app/projects/timezone", data={"lt": token, "tz": "Mars/Olympus"})
    assert resp.status_code == 400 and "not an IANA time zone" in resp.get_data(as_text=True)
    assert "Asia/Jakarta" in client.get("/app/projects/", query_string={"lt": token}).get_data(as_text=True)


def test_facilitator_edits_the_rubric_in_a_form_and_marks_with_it(app, client, lti):
    fac = lti.launch(user="3")
    page = client.get(f"/app/projects/rubric?lt={fac}").get_data(as_text=True)
    assert 'value="HRBA principles applied"' in page and 'data-criterion="new"' in page
    # "Add a criterion" keeps what was typed, adds a blank row and saves nothing
    typed = {"lt": fac, "title": "Short rubric", "c0_id": "", "c0_title": "Local ownership",
             "c0_l0_title": "Weak", "c0_l0_points": "0", "c0_l1_title": "Strong", "c0_l1_points": "4",
             "c1_id": "", "c1_title": "Budget", "c1_l0_title": "Missing", "c1_l0_points": "0",
             "c1_l1_title": "Costed", "c1_l1_points": "2"}
    more = client.post("/app/projects/rubric", data=dict(typed, action="add_criterion")).get_data(as_text=True)
    assert 'value="Local ownership"' in more and more.count('data-criterion="new"') == 3
    assert q.rubric_data(db_of(app), SCOPE) is None
    saved = client.post("/app/projects/rubric", data=dict(typed, action="save"))
    assert saved.status_code == 303
    stored = q.rubric_data(db_of(app), SCOPE)
    assert [c["id"] for c in stored["criteria"]] == ["local_ownership", "budget"] and stored["title"] == "Short rubric"
    # the marking page offers the new criteria and totals them
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    marking = client.get(f"/app/projects/review/{pid}/project_plan?lt={fac}").get_data(as_text=True)
    assert 'name="c_local_ownership" value="strong"' in marking and "hrba_principles" not in marking
    graded = review(client, fac, pid, "grade", c_local_ownership="strong", c_budget="costed")
    assert graded.status_code == 303
    assert status_of(app)["rubric"]["points"] == 6 and status_of(app)["rubric"]["max"] == 6
