"""Review actions and their outbox jobs (issue 11, "untested today"): approving a plan completes the
activity in Moodle, and a release commits with all its jobs or not at all."""
from __future__ import annotations

import pytest

from lms_bridge.db import connect
from lms_bridge.db import outbox
from lms_bridge.db import projects as q
from lms_bridge.db import sandbox as sq
from test_projects_flow import ALL_STRONG, PLAN, SCOPE, post_stage, review


def submitted_plan(client, lti, db):
    learner = lti.launch(user="5")
    assert post_stage(client, learner, data=PLAN).status_code == 303
    return lti.launch(user="3"), q.project_of(db, SCOPE, "5")["id"]


def test_approving_a_plan_sends_its_completion_to_moodle(app, client, lti, db):
    from lms_bridge.sandbox.webservice import link_tool
    from lms_bridge.sync.worker import deliver_due

    link_tool(db, app.config["TOOL_URL"])
    fac, project = submitted_plan(client, lti, db)
    assert db.execute("SELECT count(*) FROM outbox WHERE kind = 'ws_completion'").fetchone()[0] == 0
    assert review(client, fac, project, "approve", comment="Go ahead.").status_code == 303
    job = db.execute("SELECT payload FROM outbox WHERE kind = 'ws_completion'").fetchone()
    assert job is not None and '"lti_instance_id": "1"' in job[0] and '"user_id": "5"' in job[0]
    stats = deliver_due(app)
    assert stats.failed == 0, stats.errors
    assert [(c["userid"], c["state"]) for c in sq.completion(db, "5")] == [("5", 1)]


def _state(db, project):
    sub = q.submission(db, project, "project_plan")
    return {"marking": sub["marking_state"], "status": sub["status"],
            "released": [r[0] for r in db.execute("SELECT released FROM feedback WHERE kind = 'graded'")],
            "jobs": db.execute("SELECT count(*) FROM outbox").fetchone()[0],
            "audit": [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id")]}


@pytest.mark.parametrize("fail_on", ["ags_score", "ws_completion"])
def test_a_release_whose_enqueue_fails_changes_nothing(app, client, lti, db, monkeypatch, fail_on):
    fac, project = submitted_plan(client, lti, db)
    assert review(client, fac, project, "grade", comment="Strong.", **ALL_STRONG).status_code == 303
    assert review(client, fac, project, "mark_ready").status_code == 303
    before = _state(db, project)
    real = outbox.enqueue

    def failing(db_, **kw):
        if kw["kind"] == fail_on:
            raise RuntimeError("disk full while queueing")
        return real(db_, **kw)

    monkeypatch.setattr(outbox, "enqueue", failing)
    resp = review(client, fac, project, "release")
    assert resp.status_code == 500
    assert _state(db, project) == before  # not released, feedback hidden, no job, no audit line
    learner = lti.launch(user="5")
    assert "Strong." not in client.get("/app/projects/stage/project_plan", query_string={"lt": learner}).get_data(
        as_text=True)

    monkeypatch.setattr(outbox, "enqueue", real)
    assert review(client, fac, project, "release").status_code == 303
    after = _state(db, project)
    assert after["marking"] == "released" and after["released"] == [1]
    assert db.execute("SELECT count(*) FROM outbox WHERE kind IN ('ags_score', 'ws_completion')").fetchone()[0] == 2
