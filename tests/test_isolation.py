"""Course data never crosses a course, a deployment or a platform (issue 11, "tests the suite lacks").

Course A is the sandbox's course 2. Each other scope reuses every id it can: the same user ids, and for
the other deployment and the other platform even the same context id "2". A facilitator there must not
read, grade or release A's projects, download A's files, see A's bookings or grades, or find them in exports.
"""
from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import TOOL_URL, form_fields
from lms_bridge.db import connect
from lms_bridge.db import lti as lq
from lms_bridge.db import projects as q
from lms_bridge.sandbox import issuer
from lms_bridge.sandbox import platform as sp
from lti_config.registrations import add_platform
from test_launch import C, claims_for, start_login
from test_projects_flow import ALL_STRONG, PLAN, post_stage, review
from test_projects_refusals import PDF, post_report

A = (1, "1", "2")
OTHER_ISS = "http://localhost/other-lms"


def text(resp):
    return resp.get_data(as_text=True)


def _token(resp):
    assert resp.status_code == 303, text(resp)
    return parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]


def launch_in(app, client, lti, where: str, user: str) -> str:
    """A launch of `user` into course A or into the other scope `where` (course, deployment, platform)."""
    if where == "A":
        token = lti.launch(user=user)
    elif where == "course":
        token = lti.launch(user=user, course="3")
    elif where == "deployment":
        state, nonce = start_login(client, user)
        claims = claims_for(app, nonce, user=user, **{C + "deployment_id": "2"})
        token = _token(client.post("/lti/launch", data={"id_token": sp.sign(app.config["DATA_DIR"], claims),
                                                        "state": state}))
    else:
        resp = client.post("/lti/login", data={"iss": OTHER_ISS, "login_hint": user, "client_id": "other-client",
                                               "target_link_uri": TOOL_URL + "/lti/launch", "lti_deployment_id": "1"})
        assert resp.status_code == 302, text(resp)
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        claims = claims_for(app, query["nonce"][0], user=user, iss=OTHER_ISS, aud="other-client")
        token = _token(client.post("/lti/launch", data={"id_token": sp.sign(app.config["DATA_DIR"], claims),
                                                        "state": query["state"][0]}))
    client.get("/app/landing", query_string={"lt": token})  # the frame follows the launch: roster, links
    return token


@pytest.fixture
def course_a(app, client, lti, db):
    """Course A: Lina's graded and released plan, her report with a PDF, and a booked consultation."""
    lq.add_deployment(db, 1, "2")
    iss = issuer(app.config["TOOL_URL"])
    add_platform(db, issuer=OTHER_ISS, client_id="other-client", auth_login_url=OTHER_ISS + "/auth",
                 auth_token_url=OTHER_ISS + "/token", key_set_url=iss + "/mod/lti/certs.php", deployment_id="1",
                 name="Another LMS", allow_insecure=True)
    lina = launch_in(app, client, lti, "A", "5")
    assert post_stage(client, lina, data=PLAN).status_code == 303
    assert post_report(client, lti.launch(user="5", activity="project_report"), PDF, "report.pdf").status_code == 303
    fac = launch_in(app, client, lti, "A", "3")
    project = q.project_of(db, A, "5")["id"]
    assert review(client, fac, project, "grade", comment="Strong plan.", **ALL_STRONG).status_code == 303
    review(client, fac, project, "mark_ready")
    assert review(client, fac, project, "release").status_code == 303
    client.post("/consultations/settings", data={"lt": fac, "staff_experts": "1", "cancel_deadline_hours": "0",
                                                 "min_notice_minutes": "0"})
    expert = lti.launch(user="4", activity="consultations")
    client.post("/consultations/expert", data={"lt": expert})
    day = date.today() + timedelta(days=5)
    assert client.post("/consultations/availability", data={
        "lt": expert, "tz": "Asia/Seoul", "valid_from": str(day), "valid_until": str(day), "weekly": "",
        "one_off": f"{day} 10:00-11:00", "exceptions": "", "slot_minutes": "60", "buffer_minutes": "0",
        "capacity": "1"}).status_code == 303
    slot = db.execute("SELECT id FROM booking_slots").fetchone()[0]
    assert client.post("/consultations/book", data={"lt": lina, "slot_id": slot, "topic": "Gender equality",
                                                    "question": "Our audit plan?"}).status_code == 303
    return {"project": project, "attachment": db.execute("SELECT id FROM attachments").fetchone()[0],
            "booking": db.execute("SELECT id FROM bookings").fetchone()[0],
            "expert": db.execute("SELECT id FROM booking_experts").fetchone()[0]}


def snapshot(db):
    """Everything course A owns that another scope could change."""
    return {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in (
        "submissions", "feedback", "attachments", "bookings", "deadlines", "booking_experts", "rubrics")}


SCOPES = ["course", "deployment", "platform"]


@pytest.mark.parametrize("where", SCOPES)
def test_another_scopes_facilitator_cannot_read_grade_release_or_download_course_a(app, client, lti, db, course_a,
                                                                                    where):
    before = snapshot(db)
    fac = launch_in(app, client, lti, where, "3")
    pid, att = course_a["project"], course_a["attachment"]
    dashboard = text(client.get("/app/projects/dashboard", query_string={"lt": fac}))
    assert "Accessible water points" not in dashboard and f"/review/{pid}/" not in dashboard
    export = text(client.get("/app/projects/export.csv", query_string={"lt": fac}))
    assert "Lina" not in export and "Submitted" not in export and "Graded" not in export
    for stage in ("project_plan", "project_report"):
        assert client.get(f"/app/projects/review/{pid}/{stage}", query_string={"lt": fac}).status_code == 404
        for action in ("return_for_revision", "approve", "grade", "mark_ready", "back_to_marking", "release",
                       "comment"):
            resp = review(client, fac, pid, action, stage=stage, comment="From another course", **ALL_STRONG)
            assert resp.status_code == 404, (stage, action, resp.status_code)
    resp = client.get(f"/app/projects/file/{att}", query_string={"lt": fac})
    assert resp.status_code == 404 and b"%PDF" not in resp.data
    audit = text(client.get("/app/projects/audit", query_string={"lt": fac}))
    assert "release" not in audit and "grade" not in audit.lower().replace("grades", "")
    assert client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan",
                                                       "due": "2026-12-01T17:00"}).status_code == 303
    after = snapshot(db)
    assert after["deadlines"] != before["deadlines"]  # the other scope's own deadline ...
    assert all(r[:3] != A for r in after["deadlines"])  # ... not course A's
    after.pop("deadlines"), before.pop("deadlines")
    assert after == before


@pytest.mark.parametrize("where", SCOPES)
def test_the_same_learner_elsewhere_sees_nothing_of_her_course_a_work(app, client, lti, db, course_a, where):
    before = snapshot(db)
    lina = launch_in(app, client, lti, where, "5")
    for path in ("/app/projects/", "/app/projects/stage/project_plan", "/app/projects/stage/project_report"):
        page = text(client.get(path, query_string={"lt": lina}))
        assert "Accessible water points" not in page and "Strong plan." not in page and "report.pdf" not in page
    resp = client.get(f"/app/projects/file/{course_a['attachment']}", query_string={"lt": lina})
    assert resp.status_code == 404 and b"%PDF" not in resp.data
    assert snapshot(db) == before


@pytest.mark.parametrize("where", SCOPES)
def test_bookings_and_experts_stay_in_their_course(app, client, lti, db, course_a, where):
    before = snapshot(db)
    booking, expert = course_a["booking"], course_a["expert"]
    lina = launch_in(app, client, lti, where, "5")
    for path in (f"/consultations/bookings/{booking}", f"/consultations/bookings/{booking}/invite.ics",
                 f"/consultations/experts/{expert}", f"/consultations/bookings/{booking}/cancel"):
        assert client.get(path, query_string={"lt": lina}).status_code == 404, path
    page = text(client.get("/consultations/", query_string={"lt": lina}))
    assert "Eun-ji" not in page and "Our audit plan?" not in page
    for path in (f"/consultations/bookings/{booking}/cancel", f"/consultations/bookings/{booking}/reschedule"):
        assert client.post(path, data={"lt": lina, "reason": "x", "slot_id": "1"}).status_code == 404, path
    fac = launch_in(app, client, lti, where, "3")
    for path in (f"/consultations/bookings/{booking}", "/consultations/overview", "/consultations/overview.csv"):
        resp = client.get(path, query_string={"lt": fac})
        assert "Our audit plan?" not in text(resp) and "Gender equality" not in text(resp), path
    assert client.post(f"/consultations/experts/{expert}/active", data={"lt": fac, "active": "0"}).status_code in (
        303, 404)
    assert client.post(f"/consultations/bookings/{booking}/outcome",
                       data={"lt": fac, "shared_notes": "leak"}).status_code == 404
    assert snapshot(db) == before


@pytest.mark.parametrize("where", SCOPES)
def test_grades_and_jobs_of_course_a_are_not_shown_elsewhere(app, client, lti, db, course_a, where):
    """Course A's released grade queued an AGS job; another scope's staff pages do not list it."""
    assert db.execute("SELECT count(*) FROM outbox WHERE kind = 'ags_score'").fetchone()[0] == 1
    fac = launch_in(app, client, lti, where, "3")
    page = text(client.get("/app/sync/outbox", query_string={"lt": fac}))
    assert "Grade (AGS)" not in page
    if where == "platform":  # an administrator of another platform does not see it either
        admin = launch_in(app, client, lti, where, "2")
        assert "Grade (AGS)" not in text(client.get("/app/sync/outbox", query_string={"lt": admin}))


def test_a_grade_released_in_the_second_course_reaches_that_courses_gradebook_only(app, client, lti, db):
    from lms_bridge.db import sandbox as sq
    from lms_bridge.sync.worker import deliver_due

    lina = launch_in(app, client, lti, "course", "5")
    assert post_stage(client, lina, data=PLAN).status_code == 303
    fac = launch_in(app, client, lti, "course", "3")
    project = q.project_of(db, (1, "1", "3"), "5")["id"]
    review(client, fac, project, "grade", comment="Other cohort.", **ALL_STRONG)
    review(client, fac, project, "mark_ready")
    assert review(client, fac, project, "release").status_code == 303
    deliver_due(app)
    assert sq.grade_of(db, "project_plan", "5", course="3") is not None
    assert sq.grade_of(db, "project_plan", "5", course="2") is None
