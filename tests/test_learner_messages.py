"""Learners are told: "returned for revision" with the comment, "feedback available", "grade released" with the
grade — as notices inside the tool always, and as Moodle messages through the outbox when the site has
web-service credentials."""
from __future__ import annotations

from lms_bridge.db import projects as q
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox.webservice import link_tool
from lms_bridge.sync.worker import deliver_due
from test_projects_flow import ALL_STRONG, PLAN, SCOPE, post_stage, review


def workspace(client, token):
    return client.get("/app/projects/", query_string={"lt": token}).get_data(as_text=True)


def test_learners_get_notices_and_moodle_messages_for_return_feedback_and_grade(app, client, lti, db):
    link_tool(db, app.config["TOOL_URL"])
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3")
    pid = q.project_of(db, SCOPE, "5")["id"]
    review(client, fac, pid, "return_for_revision", comment="Add indicators by gender.")
    assert "returned for revision: Add indicators by gender." in workspace(client, learner)
    post_stage(client, learner, data=dict(PLAN, indicators="Share by gender"))
    review(client, fac, pid, "comment", comment="Much better.")
    assert "Feedback is available on your" in workspace(client, learner)
    review(client, fac, pid, "grade", comment="Well argued.", **ALL_STRONG)
    review(client, fac, pid, "mark_ready")
    review(client, fac, pid, "release")
    page = workspace(client, learner)
    assert "is released: 93.33/100" in page
    deliver_due(app)
    texts = [m["text"] for m in sq.messages(db, "5")]
    assert any("returned for revision: Add indicators by gender." in t for t in texts)
    assert any("Feedback is available" in t and "Much better." in t for t in texts)
    assert any("is released: 93.33/100" in t for t in texts)
    assert sq.messages(db, "3") == []  # staff are not told about their own actions


def test_without_web_service_credentials_only_the_notice_is_kept(app, client, lti, db):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3")
    review(client, fac, q.project_of(db, SCOPE, "5")["id"], "return_for_revision", comment="Add a budget.")
    assert "Add a budget." in workspace(client, learner)
    assert db.execute("SELECT count(*) FROM outbox WHERE kind = 'ws_message'").fetchone()[0] == 0


def test_facilitators_date_discussion_sessions_and_the_workshop_and_the_course_calendar_gets_them(app, client, lti, db):
    link_tool(db, app.config["TOOL_URL"])
    fac = lti.launch(user="3")  # Europe/Stockholm
    page = client.get("/app/projects/deadlines", query_string={"lt": fac}).get_data(as_text=True)
    assert "Closing workshop" in page and "Starts (Europe/Stockholm)" in page
    for key, start, end in (("discussion_1", "2026-12-03T14:00", "2026-12-03T15:30"),
                            ("closing_workshop", "2027-02-10T09:00", "2027-02-10T17:00")):
        resp = client.post("/app/projects/deadlines", data={"lt": fac, "session": key, "start": start, "end": end})
        assert resp.status_code == 303, resp.get_data(as_text=True)
    bad = client.post("/app/projects/deadlines", data={"lt": fac, "session": "discussion_2",
                                                       "start": "2026-12-03T14:00", "end": "2026-12-03T13:00"})
    assert bad.status_code == 400 and "ends after it starts" in bad.get_data(as_text=True)
    page = client.get("/app/projects/deadlines", query_string={"lt": fac}).get_data(as_text=True)
    assert 'data-session="closing_workshop"' in page
    # moved: the event is replaced, not doubled
    client.post("/app/projects/deadlines", data={"lt": fac, "session": "discussion_1", "start": "2026-12-04T14:00",
                                                 "end": "2026-12-04T15:30"})
    deliver_due(app)
    events = {e["name"]: e for e in sq.events(db)}
    assert set(events) == {"Online discussion session 1", "Closing workshop"}
    assert events["Online discussion session 1"]["timestart"] == 1796389200  # 2026-12-04 14:00 Stockholm
    assert events["Online discussion session 1"]["timeduration"] == 5400 and events["Closing workshop"]["eventtype"] == "course"
