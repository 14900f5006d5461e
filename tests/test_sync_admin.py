"""The outbox page for administrators, its retry button, /healthz backlog and `platforms moodle-ws`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import responses
from click.testing import CliRunner

from lms_bridge.db import connect, write_transaction
from lms_bridge.db import lti as q
from lms_bridge.db import outbox as ob
from lms_bridge.sandbox import issuer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "moodle" / "ws"


def failed_job(app, platform_id: int) -> int:
    db = connect(app.config["DATABASE_URL"])
    with write_transaction(db):
        job = ob.enqueue(db, platform_id=platform_id, kind="ws_message", payload={"user_id": 5, "text": "hi"})
    ob.claim(db, "w", limit=1, lease_seconds=60)
    ob.mark_failed(db, job, "w", "ws_message: invalidtoken -> attach a valid token")
    db.close()
    return job


def platform_id(app) -> int:
    db = connect(app.config["DATABASE_URL"])
    try:
        return q.find_platform(db, issuer(app.config["TOOL_URL"]))["id"]
    finally:
        db.close()


def test_an_admin_sees_failed_jobs_and_retries_one(client, lti, app):
    lt = lti.launch(user="2")
    job = failed_job(app, platform_id(app))
    page = client.get(f"/app/sync/outbox?lt={lt}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'data-job="{job}" data-state="failed"' in html
    assert "attach a valid token" in html and "1 failed" in html
    assert client.post(f"/app/sync/outbox/{job}/retry").status_code in (401, 403)  # no launch token
    done = client.post(f"/app/sync/outbox/{job}/retry", data={"lt": lt})
    assert done.status_code == 303
    notice = client.get(done.headers["Location"]).get_data(as_text=True)  # no cookie needed for the notice
    assert f"Job {job} is queued again." in notice
    db = connect(app.config["DATABASE_URL"])
    assert ob.get_job(db, job)["state"] == "pending"
    db.close()
    assert client.post(f"/app/sync/outbox/{job}/retry", data={"lt": lt}).status_code == 404


def test_facilitators_see_their_course_read_only_and_learners_nothing(client, lti, app):
    lt = lti.launch(user="3")
    pid = platform_id(app)
    db = connect(app.config["DATABASE_URL"])
    with write_transaction(db):
        mine = ob.enqueue(db, platform_id=pid, kind="ws_calendar", payload={"course_id": "2", "key": "k"})
        other = ob.enqueue(db, platform_id=pid, kind="ws_calendar", payload={"course_id": "9", "key": "k"})
    db.close()
    html = client.get(f"/app/sync/outbox?lt={lt}").get_data(as_text=True)
    assert f'data-job="{mine}"' in html and f'data-job="{other}"' not in html
    failed = failed_job(app, pid)
    assert client.post(f"/app/sync/outbox/{failed}/retry", data={"lt": lt}).status_code == 403
    assert client.get(f"/app/sync/outbox?lt={lti.launch(user='5')}").status_code == 403


def test_healthz_reports_the_backlog(client, lti, app):
    lti.launch(user="2")
    failed_job(app, platform_id(app))
    body = client.get("/healthz").get_json()
    assert body["outbox_failed"] == 1 and body["outbox_pending"] == 0
    assert body["outbox_oldest_pending_age_seconds"] == 0


def recorded(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def test_moodle_ws_credentials_are_checked_and_missing_functions_listed(app, monkeypatch):
    import lms_bridge.cli as cli

    lti_issuer = "http://moodle.test"
    db = connect(app.config["DATABASE_URL"])
    q.add_platform(db, issuer=lti_issuer, client_id="c1", auth_login_url=f"{lti_issuer}/a",
                   auth_token_url=f"{lti_issuer}/t", key_set_url=f"{lti_issuer}/k")
    monkeypatch.setattr(cli, "_app", lambda **_: app)
    run = CliRunner()
    with responses.RequestsMock() as rsps:
        rsps.post(f"{lti_issuer}/webservice/rest/server.php",
                  json=recorded("core_webservice_get_site_info__invalid_token"))
        bad = run.invoke(cli.main, ["platforms", "moodle-ws", "--issuer", lti_issuer, "--url", lti_issuer,
                                    "--token", "s3cret-token-value"])
    assert bad.exit_code != 0 and "refused" in bad.output and "s3cret-token-value" not in bad.output
    assert q.get_moodle_ws(db, 1) is None or q.get_moodle_ws(db, 1)["token"] != "s3cret-token-value"
    info = recorded("core_webservice_get_site_info")
    info["functions"] = [f for f in info["functions"] if f["name"] != "core_calendar_delete_calendar_events"]
    with responses.RequestsMock() as rsps:
        rsps.post(f"{lti_issuer}/webservice/rest/server.php", json=info)
        good = run.invoke(cli.main, ["platforms", "moodle-ws", "--issuer", lti_issuer, "--url", lti_issuer,
                                     "--token", "s3cret-token-value"])
    assert good.exit_code == 0, good.output
    assert re.search(r"missing functions .*core_calendar_delete_calendar_events", good.output)
    pid = q.find_platform(db, lti_issuer)["id"]
    assert q.get_moodle_ws(db, pid)["token"] == "s3cret-token-value"
    assert "s3cret-token-value" not in good.output
    db.close()
