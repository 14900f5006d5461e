"""Jobs that wait for an admin's setup (web-service credentials, a function, a capability) are not failures:
they wait visibly and go out by themselves once the setup is done, with no retry by hand."""
from __future__ import annotations

from click.testing import CliRunner

from lms_bridge.db import write_transaction
from lms_bridge.db import outbox as ob
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox import issuer
from lms_bridge.sandbox.platform import ensure_registered
from lms_bridge.sync.worker import deliver_due


def queue_completion(db, pid, user="5"):
    with write_transaction(db):
        return ob.enqueue(db, platform_id=pid, kind="ws_completion",
                          payload={"course_id": "2", "lti_instance_id": "1", "user_id": user, "completed": True})


def make_due(db):
    with write_transaction(db):
        db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE state = 'pending'")


def attach(app, monkeypatch):
    import lms_bridge.cli as cli

    monkeypatch.setattr(cli, "_app", lambda **_: app)
    iss = issuer(app.config["TOOL_URL"])
    return CliRunner().invoke(cli.main, ["platforms", "moodle-ws", "--issuer", iss, "--url", iss,
                                         "--token", sq.DEFAULT_WS_TOKEN])


def test_a_job_without_credentials_waits_visibly_then_goes_out_once_they_are_attached(app, db, monkeypatch):
    import lms_bridge.cli as cli

    pid = ensure_registered(app)
    job = queue_completion(db, pid)
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    for _ in range(4):  # more passes than tries allowed: waiting never uses them up
        stats = deliver_due(app)
        assert stats.failed == 0 and stats.waiting == 1
        make_due(db)
    row = ob.get_job(db, job)
    assert row["state"] == "pending" and row["last_error"].startswith("waiting for web-service credentials")
    monkeypatch.setattr(cli, "_app", lambda **_: app)
    listing = CliRunner().invoke(cli.main, ["outbox"])
    assert f"{job}\twaiting\tws_completion" in listing.output
    with write_transaction(db):  # the next check would be far away: attaching must not wait for it
        db.execute("UPDATE outbox SET next_attempt_at = '2999-01-01T00:00:00+00:00' WHERE id = ?", [job])
    result = attach(app, monkeypatch)
    assert result.exit_code == 0 and "1 waiting jobs go out now" in result.output, result.output
    assert deliver_due(app).delivered == 1
    assert ob.get_job(db, job)["state"] == "delivered"
    assert [(c["userid"], c["state"]) for c in sq.completion(db)] == [("5", 1)]


def test_a_refused_token_waits_and_goes_out_by_itself_once_fixed(app, db):
    from lms_bridge.sandbox.webservice import link_tool

    pid = ensure_registered(app)
    link_tool(db, app.config["TOOL_URL"])
    sq.set_fault(db, "core_completion_override_activity_completion_status", "bad_token", count=1)
    job = queue_completion(db, pid)
    stats = deliver_due(app)
    row = ob.get_job(db, job)
    assert stats.failed == 0 and row["state"] == "pending"
    assert row["last_error"].startswith("waiting for working web-service credentials")
    assert row["next_attempt_at"] > ob.get_job(db, job)["created_at"]  # checked again later, not hammered
    make_due(db)  # time passes; the admin fixed the token in Moodle (the fault is spent)
    deliver_due(app)
    assert ob.get_job(db, job)["state"] == "delivered"


def test_jobs_that_failed_for_want_of_credentials_before_are_revived_by_attaching(app, db, monkeypatch):
    pid = ensure_registered(app)
    job = queue_completion(db, pid)
    other = queue_completion(db, pid, user="6")
    with write_transaction(db):
        db.execute("UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?",
                   ["platform http://localhost/sandbox has no Moodle web-service credentials; attach them", job])
        db.execute("UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?",
                   ["core_completion_override_activity_completion_status: invalidparameter (invalid_parameter)", other])
    assert attach(app, monkeypatch).exit_code == 0
    deliver_due(app)
    assert ob.get_job(db, job)["state"] == "delivered"
    assert ob.get_job(db, other)["state"] == "failed"  # a real failure stays one
