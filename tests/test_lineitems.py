"""Grades land in the activity's own gradebook column (the AGS `lineitem` its launches name), never a twin.

Real Moodle 4.5.6: a launch from an activity with one line item carries that item's URL as `lineitem`;
a score posted to another line item the tool created shows as a second column of the same name.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import form_fields
from lms_bridge.db import connect, write_transaction
from lms_bridge.db import outbox as ob
from lms_bridge.db import projects as q
from lms_bridge.db import sandbox as sq
from lms_bridge.db import sync as cache
from lms_bridge.sandbox import issuer
from lms_bridge.sandbox.platform import ensure_registered
from lms_bridge.sync.worker import deliver_due
from test_projects_flow import ALL_STRONG, PLAN, SCOPE, post_stage, review

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


_opened = []


def db_of(app):
    db = connect(app.config["DATABASE_URL"])
    _opened.append(db)
    return db


@pytest.fixture(autouse=True)
def _close_connections():
    """Each test's connections are closed when it ends (PostgreSQL's warn when collected open)."""
    yield
    while _opened:
        _opened.pop().close()


def launch_claims(db, token_lt):
    launch_id = token_lt.rsplit(".", 2)[0]
    return json.loads(next(db.query("SELECT claims FROM launches WHERE id = ?", [launch_id]))["claims"])


def grade_and_release(client, fac, pid, stage="project_plan"):
    assert review(client, fac, pid, "grade", stage=stage, comment="Good.", **ALL_STRONG).status_code == 303
    assert review(client, fac, pid, "mark_ready", stage=stage).status_code == 303
    assert review(client, fac, pid, "release", stage=stage).status_code == 303


def test_sandbox_launch_names_the_activitys_own_column_like_moodle(app, lti):
    db = db_of(app)
    token = lti.launch(user="5", activity="project_plan")
    ags = launch_claims(db, token)[AGS]
    own = sq.link_lineitems(db, "1")
    assert len(own) == 1
    assert ags["lineitem"] == f"http://localhost/sandbox/mod/lti/services.php/2/lineitems/{own[0]['id']}/lineitem?type_id=1"
    # consultations have no column: no lineitem in the claim
    assert "lineitem" not in launch_claims(db, lti.launch(user="5", activity="consultations"))[AGS]


def test_released_grade_lands_in_the_launched_activitys_column_and_no_other(app, client, lti):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3")
    db = db_of(app)
    pid = q.project_of(db, SCOPE, "5")["id"]
    grade_and_release(client, fac, pid)
    deliver_due(app)
    assert {r["state"] for r in db.query("SELECT state FROM outbox WHERE kind = 'ags_score'")} == {"delivered"}
    own = sq.link_lineitems(db, "1")[0]
    assert sq.get_grade(db, own["id"], "5")["score"] == pytest.approx(93.33)
    assert len(sq.columns_for_link(db, "1")) == 1  # no second column of the same name
    assert sq.call_counts(db).get("lineitems", 0) == 0  # nothing had to be looked up or created


def test_deep_linked_activity_gets_its_grade_in_the_column_deep_linking_created(app, client, lti):
    staff = lti.deep_link(user="3")
    resp = client.post("/lti/deep-link", data={"lt": staff, "activity": ["project_plan"]})
    action, fields = form_fields(resp.get_data(as_text=True))
    assert client.post("/sandbox/deep-link-return", data=fields).status_code == 200
    db = db_of(app)
    link = sq.links(db)[-1]["id"]
    created = sq.link_lineitems(db, link)
    assert [(i["resource_id"], i["tag"]) for i in created] == [("project_plan", "lms_bridge")]
    learner = lti.launch(user="5", activity_rl=link)
    assert launch_claims(db, learner)[AGS]["lineitem"].endswith(f"/lineitems/{created[0]['id']}/lineitem?type_id=1")
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3", activity_rl=link)
    grade_and_release(client, fac, q.project_of(db, SCOPE, "5")["id"])
    deliver_due(app)
    assert sq.get_grade(db, created[0]["id"], "5")["score"] == pytest.approx(93.33)
    assert [r["lineitem_id"] for r in sq.gradebook(db) if r["user_id"] == "5"] == [created[0]["id"]]


def test_sandbox_shows_a_score_on_another_tool_created_item_as_a_second_column(app, db):
    """What real Moodle did to the old tool: the twin is visible, so a regression cannot hide."""
    own = sq.link_lineitems(db, "1")[0]
    twin = sq.create_lineitem(db, course_id="2", label=own["label"], score_maximum=100, resource_id="project_plan",
                              tag="lms_bridge_project")
    sq.put_grade(db, item_id=twin, user_id="5", score=80, score_maximum=100, comment=None,
                 timestamp="2026-11-23T10:00:00Z", activity_progress="Completed", grading_progress="FullyGraded")
    assert [c["id"] for c in sq.columns_for_link(db, "1")] == [own["id"], twin]
    html = app.test_client().get("/sandbox/gradebook").get_data(as_text=True)
    assert html.count(own["label"]) >= 2


def _queue_old_style_job(app, db, pid, user="5"):
    """A score job queued before payloads named the course and link (what an existing install holds)."""
    lineitems = f"{issuer(app.config['TOOL_URL'])}/mod/lti/services.php/2/lineitems?type_id=1"
    with write_transaction(db):
        return ob.enqueue(db, platform_id=pid, kind="ags_score", payload={
            "lineitems_url": lineitems, "resource_id": "project_plan", "tag": "lms_bridge_project",
            "label": "Course project: project plan", "score_maximum": 100, "user_id": user, "score_given": 70,
            "comment": "", "timestamp": "2026-11-23T10:00:00.000001+00:00", "grading_progress": "FullyGraded",
            "activity_progress": "Completed"}, order_key=f"score:{pid}:2:project_plan:{user}")


def test_a_job_queued_before_the_fix_goes_to_the_column_the_launch_named(app, lti):
    token = lti.launch(user="5", activity="project_plan")
    app.test_client().get("/app/landing", query_string={"lt": token}, follow_redirects=True)  # records link 1's lineitem
    db = db_of(app)
    _queue_old_style_job(app, db, ensure_registered(app))
    assert deliver_due(app).failed == 0
    own = sq.link_lineitems(db, "1")[0]
    assert sq.get_grade(db, own["id"], "5")["score"] == 70
    assert len(sq.columns_for_link(db, "1")) == 1


def test_without_a_lineitem_in_the_launch_the_column_is_found_by_link_then_created_once(app, client, lti):
    db = db_of(app)
    own = sq.link_lineitems(db, "1")[0]
    sq.delete_lineitem(db, own["id"])  # an activity without "Accept grades from the tool"
    learner = lti.launch(user="5")
    assert "lineitem" not in launch_claims(db, learner)[AGS]
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3")
    pid = q.project_of(db, SCOPE, "5")["id"]
    grade_and_release(client, fac, pid)
    deliver_due(app)
    created = sq.link_lineitems(db, "1")
    assert len(created) == 1 and created[0]["resource_id"] == "project_plan"
    # the next release, from a fresh cache, finds that column by its resource link instead of making another
    with write_transaction(db):
        db.execute("DELETE FROM sync_lineitems")
    grade_and_release(client, fac, pid)
    deliver_due(app)
    assert len(sq.link_lineitems(db, "1")) == 1 and len(sq.columns_for_link(db, "1")) == 1


def test_reconcile_compares_the_activitys_own_column(app, client, lti, monkeypatch):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    fac = lti.launch(user="3")
    db = db_of(app)
    grade_and_release(client, fac, q.project_of(db, SCOPE, "5")["id"])
    deliver_due(app)
    own = sq.link_lineitems(db, "1")[0]
    with write_transaction(db):
        db.execute("UPDATE sb_grades SET score = 50 WHERE lineitem_id = ? AND user_id = '5'", [own["id"]])
    import lms_bridge.cli as cli

    monkeypatch.setattr(cli, "_app", lambda **_: app)
    result = CliRunner().invoke(cli.main, ["reconcile", "--issuer", issuer(app.config["TOOL_URL"]), "--context", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["user 5\tproject_plan\ttool 93.33/100\tLMS 50\t(job delivered)"]


def test_lineitem_claim_on_another_origin_is_not_remembered(app, lti):
    from lms_bridge.projects.service import lineitem_trusted

    lineitems = "https://moodle.example/mod/lti/services.php/2/lineitems?type_id=1"
    assert lineitem_trusted("https://moodle.example/mod/lti/services.php/2/lineitems/2/lineitem?type_id=1",
                            {"lineitems": lineitems})
    assert not lineitem_trusted("https://evil.example/x", {"lineitems": lineitems})
    assert not lineitem_trusted(["x"], {"lineitems": lineitems})
    assert not lineitem_trusted("https://moodle.example/x", {})


def test_twins_command_finds_the_tools_second_column_and_resend_fills_the_own_column(app, lti, monkeypatch):
    import lms_bridge.cli as cli

    token = lti.launch(user="5", activity="project_plan")
    app.test_client().get("/app/landing", query_string={"lt": token}, follow_redirects=True)
    db = db_of(app)
    pid = ensure_registered(app)
    # what the old release path did: a column of its own, tagged privately, holding the grade
    twin = sq.create_lineitem(db, course_id="2", label="Course project: project plan", score_maximum=100,
                              resource_id="project_plan", tag="lms_bridge_project")
    sq.put_grade(db, item_id=twin, user_id="5", score=70, score_maximum=100, comment=None,
                 timestamp="2026-11-23T10:00:00Z", activity_progress="Completed", grading_progress="FullyGraded")
    job = _queue_old_style_job(app, db, pid)
    with write_transaction(db):
        db.execute("UPDATE outbox SET state = 'delivered' WHERE id = ?", [job])
    monkeypatch.setattr(cli, "_app", lambda **_: app)
    own = sq.link_lineitems(db, "1")[0]
    result = CliRunner().invoke(cli.main, ["lineitems", "twins", "--issuer", issuer(app.config["TOOL_URL"])])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"lineitems/{twin}/lineitem" in lines[0] and "(1 grades)" in lines[0]
    assert f"lineitems/{own['id']}/lineitem" in lines[0] and "--resend" in lines[1]
    result = CliRunner().invoke(cli.main, ["lineitems", "twins", "--resend"])
    assert result.exit_code == 0 and "queued 1 grades" in result.output, result.output
    deliver_due(app)
    assert sq.get_grade(db, own["id"], "5")["score"] == 70
    # only the tool's own twin is reported; a deep-linked activity's own column is not a twin
    assert CliRunner().invoke(cli.main, ["lineitems", "twins", "--client-id", "nope"]).exit_code != 0
