"""End to end with the sandbox LMS: released grades reach its gradebook once; reconcile finds overrides."""
from __future__ import annotations

from click.testing import CliRunner

from lms_bridge.db import connect, write_transaction
from lms_bridge.db import outbox as ob
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox import issuer
from lms_bridge.sandbox.platform import ensure_registered
from lms_bridge.sync.worker import deliver_due


def release(app, db, pid, user, given, stamp):
    lineitems = f"{issuer(app.config['TOOL_URL'])}/mod/lti/services.php/2/lineitems?type_id=1"
    with write_transaction(db):
        return ob.enqueue(db, platform_id=pid, kind="ags_score", payload={
            "lineitems_url": lineitems, "resource_id": "project_plan", "tag": "grade", "label": "Project plan",
            "score_maximum": 100, "user_id": user, "score_given": given, "comment": None, "timestamp": stamp,
            "grading_progress": "FullyGraded", "activity_progress": "Completed"},
            order_key=f"score:{pid}:2:project_plan:{user}")


def test_released_grades_reach_the_sandbox_gradebook_once_with_the_latest_value(app):
    pid = ensure_registered(app)
    db = connect(app.config["DATABASE_URL"])
    release(app, db, pid, "5", 40, "2026-11-23T10:00:00.000001+00:00")
    release(app, db, pid, "5", 85, "2026-11-23T10:05:00.000001+00:00")
    release(app, db, pid, "6", 70, "2026-11-23T10:00:00.000001+00:00")
    stats = deliver_due(app)
    assert stats.delivered == 3 and stats.failed == 0
    # a worker that died after delivering but before recording: the job is delivered again
    job = release(app, db, pid, "7", 55, "2026-11-23T10:00:00.000001+00:00")
    deliver_due(app)
    with write_transaction(db):
        db.execute("UPDATE outbox SET state = 'pending' WHERE id = ?", [job])
    again = deliver_due(app)
    assert again.already_applied == 1
    items = [r for r in sq.gradebook(db) if r["resource_id"] == "project_plan"]
    assert len({r["lineitem_id"] for r in items}) == 1
    assert sorted((r["user_id"], round(r["score"], 5)) for r in items) == [("5", 85), ("6", 70), ("7", 55)]
    db.close()


def test_reconcile_reports_a_grade_overridden_in_the_lms_without_changing_it(app, monkeypatch):
    pid = ensure_registered(app)
    db = connect(app.config["DATABASE_URL"])
    release(app, db, pid, "5", 85, "2026-11-23T10:00:00.000001+00:00")
    release(app, db, pid, "6", 70, "2026-11-23T10:00:00.000001+00:00")
    deliver_due(app)
    with write_transaction(db):
        db.execute("UPDATE sb_grades SET score = 92 WHERE user_id = '5'")
    import lms_bridge.cli as cli

    monkeypatch.setattr(cli, "_app", lambda **_: app)
    result = CliRunner().invoke(cli.main, ["reconcile", "--issuer", issuer(app.config["TOOL_URL"]), "--context", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["user 5\tproject_plan\ttool 85/100\tLMS 92\t(job delivered)"]
    assert sq.grade_of(db, "project_plan", "5") == 92
    db.close()


def test_completion_calendar_and_messages_reach_the_sandbox_moodle(app):
    from lms_bridge.sandbox.webservice import link_tool

    pid = ensure_registered(app)
    db = connect(app.config["DATABASE_URL"])
    link_tool(db, app.config["TOOL_URL"])

    def event(timestart):
        with write_transaction(db):
            ob.enqueue(db, platform_id=pid, kind="ws_calendar",
                       dedupe_key=f"calendar:{pid}:2:deadline:project_plan", payload={"course_id": "2", "key": "deadline:project_plan", "name": "Project plan due",
                                "description": "Stage 1", "timestart": timestart, "timeduration": 0})

    with write_transaction(db):
        ob.enqueue(db, platform_id=pid, kind="ws_completion",
                   payload={"course_id": "2", "lti_instance_id": "1", "user_id": "5", "completed": True})
        ob.enqueue(db, platform_id=pid, kind="ws_message", payload={"user_id": "5", "text": "Feedback available"})
    event(1796030007)
    assert deliver_due(app).delivered == 3
    event(1796030007)
    event(1796116407)
    stats = deliver_due(app)
    assert stats.failed == 0, stats.errors
    events = [e for e in sq.events(db, [2], 0, None) if e["name"] == "Project plan due"]
    assert [e["timestart"] for e in events] == [1796116407]
    assert [(c["userid"], c["state"]) for c in sq.completion(db, "5")] == [("5", 1)]
    assert [m["text"] for m in sq.messages(db, "5")] == ["<p>Feedback available</p>"]
    db.close()
