"""Running the tool: `serve` refuses a store with pending migrations (an upgrade without `init`), and its
log is structured, carries request ids, and never holds a token, a name or an e-mail address."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

import lms_bridge.cli as cli
from lms_bridge.db import connect, write_transaction
from lms_bridge.ops import backup as bk
from lms_bridge.ops import logs
from lms_bridge.sandbox import USERS

from conftest import LtiActions, free_port, make_app
from test_db_copy import drop_empty_databases  # noqa: F401  (drops the databases empty_pg_url made)

BIN = Path(sys.executable).with_name("lms-bridge")


@pytest.fixture(autouse=True)
def clean_process_state():
    yield
    logger = logs.logging.getLogger(logs.LOGGER)
    for handler in [h for h in logger.handlers if getattr(h, logs._HANDLER_FLAG, False)]:
        logger.removeHandler(handler)
    while bk._held:
        bk._held.pop().close()


def env_for(data_dir: Path, **extra) -> dict:
    return {"LMS_BRIDGE_DATA": str(data_dir), "LMS_BRIDGE_URL": "http://127.0.0.1:5000", **extra}


def drop_newest_migration(data_dir: Path) -> None:
    """Play an upgrade: the code knows a migration the store has not had yet."""
    db = connect(str(data_dir / "lms_bridge.sqlite3"))
    with write_transaction(db):
        db.execute("DROP TABLE worker_heartbeats")
        db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'ops'")
    db.close()


def test_serve_refuses_pending_migrations_until_init_or_migrate(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("lms_bridge.server.run", lambda *a, **k: started.append(k))
    data = tmp_path / "data"
    for key, value in env_for(data).items():
        monkeypatch.setenv(key, value)
    fresh = CliRunner().invoke(cli.main, ["serve"])
    assert fresh.exit_code == 1 and "run `lms-bridge init` first" in fresh.output and not started
    assert CliRunner().invoke(cli.main, ["init"]).exit_code == 0
    assert CliRunner().invoke(cli.main, ["serve"]).exit_code == 0 and len(started) == 1

    drop_newest_migration(data)
    refused = CliRunner().invoke(cli.main, ["serve"])
    assert refused.exit_code == 1 and len(started) == 1
    assert ("the database needs 1 migrations (ops:m001_worker_heartbeats): run `lms-bridge init` first "
            "(or `lms-bridge serve --migrate`)") in refused.output
    worker = CliRunner().invoke(cli.main, ["worker", "--once"])
    assert worker.exit_code == 1 and "lms-bridge worker --migrate" in worker.output
    migrated = CliRunner().invoke(cli.main, ["serve", "--migrate"])
    assert migrated.exit_code == 0 and len(started) == 2
    db = connect(str(data / "lms_bridge.sqlite3"))
    assert db["worker_heartbeats"].exists()
    db.close()


def test_serve_logs_structured_json_with_request_ids_and_an_access_log_without_query_strings(tmp_path):
    data, port = tmp_path / "data", free_port()
    env = dict(os.environ, **env_for(data, LMS_BRIDGE_URL=f"http://127.0.0.1:{port}", LMS_BRIDGE_LOG_FORMAT="json",
                                     LMS_BRIDGE_ACCESS_LOG="1"))
    proc = subprocess.Popen([str(BIN), "serve", "--migrate", "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        secret = "launchtoken-abcdefghijklmnop.XYZ.signature-abcdefghijklmnop"
        answer = requests.get(f"http://127.0.0.1:{port}/app/home", params={"lt": secret},
                              headers={"X-Request-ID": "req-12345678"}, timeout=5)
        assert answer.headers["X-Request-ID"] == "req-12345678"
        refused = requests.get(f"http://127.0.0.1:{port}/lti/login", params={"iss": "https://x.example"}, timeout=5)
        assert refused.status_code == 400 and len(refused.headers["X-Request-ID"]) == 16
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r["event"].startswith("serving http://127.0.0.1:") for r in lines), err
    access = [r for r in lines if r["logger"] == "lms_bridge.access"]
    home = next(r for r in access if r["route"] == "/app/home")
    assert home["request_id"] == "req-12345678" and home["status"] == answer.status_code and home["method"] == "GET"
    refusal = next(r for r in lines if r["event"] == "launch refused: missing_parameter")
    assert refusal["level"] == "WARNING" and refusal["route"] == "/lti/login" and refusal["status"] == 400
    assert refusal["request_id"] == refused.headers["X-Request-ID"]
    assert secret not in err and "lt=" not in err and "iss=" not in err


def test_a_full_run_logs_refusals_and_outbox_outcomes_but_no_token_name_or_email(tmp_path):
    from lms_bridge.sync.worker import deliver_due

    app = make_app(tmp_path, ACCESS_LOG=True)
    stream = io.StringIO()
    logs.configure(dict(app.config, LOG_FORMAT="kv"), stream=stream)
    client = app.test_client()
    lti = LtiActions(client)
    fields = lti.login_and_auth("/sandbox/launch/5/1")
    first = lti.post_launch(fields)
    learner = first.headers["Location"].split("lt=")[1].split("&")[0]
    assert lti.post_launch(fields).status_code in (400, 401, 403)  # the same id_token again: refused
    plan = {"title": "Water points", "city": "Jakarta", "country": "ID", "problem": "Out of reach.",
            "affected_groups": "People with disabilities", "hrba_principles": ["participation_inclusion"],
            "sdgs": ["6"], "sdg_targets": "6.1", "stakeholders": "Water office", "activities": "Audit",
            "indicators": "Share", "risks": "Budget"}
    assert client.post("/app/projects/stage/project_plan",
                       data={"lt": learner, "action": "submit", "confirm": "1", **plan}).status_code == 303
    fac = lti.launch(user="3")
    db = connect(app.config["DATABASE_URL"])
    pid = db.execute("SELECT id FROM projects").fetchone()[0]
    db.close()
    marks = {f"c_{c}": "strong" for c in ("hrba_principles", "sdg_linkage", "participation", "feasibility",
                                           "indicators")}
    for action, extra in (("grade", {"comment": "Good.", **marks}), ("mark_ready", {}), ("release", {})):
        resp = client.post(f"/app/projects/review/{pid}/project_plan", data={"lt": fac, "action": action, **extra})
        assert resp.status_code == 303, resp.get_data(as_text=True)
    assert deliver_due(app).delivered >= 1
    from lms_bridge.sandbox.registration import registration_token

    reg_token = registration_token(app.config["DATA_DIR"], client_id="dynClient12345a")
    registered = client.get("/lti/register", query_string={
        "openid_configuration": "http://localhost/sandbox/mod/lti/openid-configuration.php",
        "registration_token": reg_token})
    assert registered.status_code == 200
    text = stream.getvalue()
    assert any("registration" in line and "logger=lms_bridge.lti" in line for line in text.splitlines()), text

    assert "launch accepted" in text and "launch refused: replayed" in text and "reason=replayed" in text, text
    assert "outbox job" in text and "outcome=delivered" in text
    assert "route=/lti/launch" in text and "route=/app/projects/review/<int:project_id>/<stage>" in text
    access = [line for line in text.splitlines() if "logger=lms_bridge.access" in line]
    ids = [line.split(" request_id=")[1].split()[0] for line in access]
    assert len(ids) == len(access) == len(set(ids))  # one id per request, nested sandbox calls included
    for secret in (learner, fac, fields["id_token"], fields["state"], reg_token):
        assert secret not in text
    for user in USERS.values():
        for personal in (user.given, user.family, user.email, user.username):
            assert personal not in text, personal


def test_scrub_removes_tokens_and_addresses_from_any_message():
    line = ("calling https://m.example/x?wstoken=abc123&lt=Zm9vYmFyYmF6cXV4MTIzNDU2.aZcD3e.KJHGFDSAqwertyuiop12"
            " for lina.santoso@example.org with eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI1In0.c2lnbmF0dXJl")
    out = logs.scrub(line)
    assert "abc123" not in out and "santoso" not in out and "eyJ" not in out and "KJHGFDSA" not in out
    assert "wstoken=[redacted]" in out and "[email]" in out and "[jwt]" in out


def test_the_readme_sequence_init_serve_worker_doctor_passes_and_restore_waits_for_a_stop(tmp_path):
    data, port = tmp_path / "data", free_port()
    env = dict(os.environ, **env_for(data, LMS_BRIDGE_URL=f"http://127.0.0.1:{port}"))

    def run(*args):
        return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("init").returncode == 0
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        before = run("doctor")
        assert before.returncode == 1 and "FAIL  worker: no worker has ever run" in before.stdout
        assert run("worker", "--once").returncode == 0
        after = run("doctor", "--json")
        body = json.loads(after.stdout)
        assert after.returncode == 0 and body["ok"], after.stdout
        assert {c["name"]: c["status"] for c in body["checks"]}["public URL"] == "OK"
        assert run("backup", "--out", str(tmp_path / "backup")).returncode == 0  # while serving
        restore = run("restore", "--force", str(tmp_path / "backup"))
        assert restore.returncode == 1 and "the install is running" in restore.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.skipif(not os.environ.get("LMS_BRIDGE_TEST_POSTGRES"), reason="PostgreSQL only: needs "
                    "LMS_BRIDGE_TEST_POSTGRES (run under tests/pg_cluster.py)")
def test_the_readme_sequence_on_postgresql_init_serve_worker_doctor_backup(tmp_path):
    """What the README tells an admin, on PostgreSQL: gunicorn's forked workers each open their own pool."""
    from test_db_copy import empty_pg_url

    data, port = tmp_path / "data", free_port()
    url = empty_pg_url()
    env = dict(os.environ, **env_for(data, LMS_BRIDGE_URL=f"http://127.0.0.1:{port}", LMS_BRIDGE_DATABASE_URL=url,
                                     LMS_BRIDGE_SECRET_KEY="readme-sequence-secret-" + "9" * 32))

    def run(*args):
        return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)

    init = run("init")
    assert init.returncode == 0 and "keystore:m001_sealed_private_keys" in init.stdout, init.stderr
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = None
        for _ in range(150):
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if health.ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert health is not None and health.json()["store"] == "postgresql" and health.json()["database"] is True
        for _ in range(20):  # several requests: both forked workers answer from their own pools
            assert requests.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5).ok
        assert run("worker", "--once").returncode == 0
        after = run("doctor", "--json")
        body = json.loads(after.stdout)
        statuses = {c["name"]: c["status"] for c in body["checks"]}
        assert after.returncode == 0 and body["ok"], after.stdout
        assert statuses["database"] == statuses["btree_gist"] == statuses["signing keys"] == "OK"
        assert statuses["secret"] == "OK" and statuses["public URL"] == "OK" and "WAL" not in statuses
        backup = run("backup", "--out", str(tmp_path / "backup"))
        assert backup.returncode == 0 and (tmp_path / "backup" / "database.pgdump").is_file(), backup.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=15)
