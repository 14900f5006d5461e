"""`lms-bridge doctor` against the sandbox LMS: a healthy install passes, and each check fails when its
condition is broken (one condition per test)."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import lms_bridge.cli as cli
from lms_bridge.db import connect, write_transaction
from lms_bridge.db import outbox as ob
from lms_bridge.ops.doctor import Doctor, report
from lms_bridge.sandbox import issuer
from lms_bridge.sandbox.platform import ensure_registered
from lms_bridge.sandbox.webservice import link_tool
from lms_bridge.sandbox.wsdata import CAPABILITIES
from lms_bridge.sync.worker import run_worker

from conftest import TEST_POSTGRES, free_port, make_app

postgres_only = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only: needs LMS_BRIDGE_TEST_POSTGRES "
                                   "(run under tests/pg_cluster.py)")


def healthy(app, lti):
    """A used install: the sandbox launched a learner, web services attached, the worker ran once."""
    token = lti.launch(user="5")
    page = lti.client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)
    assert page.status_code == 200  # the project page records the course, its links and the learner
    db = connect(app.config["DATABASE_URL"])
    try:
        link_tool(db, app.config["TOOL_URL"])
    finally:
        db.close()
    run_worker(app, once=True)
    return app


def run(app, **kwargs) -> dict[str, tuple[str, str]]:
    checks = Doctor(app.config, app.extensions["lms_bridge_http"], **kwargs).run()
    return {c.name: (c.status, c.detail, c.fix) for c in checks}


def status(checks: dict, suffix: str) -> str:
    found = [v[0] for k, v in checks.items() if k.endswith(suffix)]
    assert len(found) == 1, (suffix, list(checks))
    return found[0]


@pytest.fixture
def used(app, lti):
    return healthy(app, lti)


def sql(app, statement, params=()):
    db = connect(app.config["DATABASE_URL"])
    try:
        with write_transaction(db):
            db.execute(statement, params)
    finally:
        db.close()


def test_a_healthy_install_has_no_failures_and_the_command_exits_0(used, monkeypatch):
    checks = run(used)
    assert [k for k, v in checks.items() if v[0] == "FAIL"] == []
    store_checks = ("PostgreSQL version", "btree_gist") if TEST_POSTGRES else ("WAL",)
    for name in ("database", "migrations", *store_checks, "signing keys", "data directory", "public URL", "tool URLs",
                 "worker", "outbox", ": registration", ": key set", ": clock", ": web services", ": functions"):
        assert status(checks, name) == "OK", (name, checks)
    for cap in CAPABILITIES:
        assert status(checks, f"capability {cap}") == "OK", (cap, checks)
    assert checks["HTTPS"][0] == "WARN"  # http://localhost: loopback is a test site
    monkeypatch.setattr(cli, "_app", lambda **_: used)
    result = CliRunner().invoke(cli.main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "OK    worker: last heartbeat" in result.output and "fix: put the tool behind HTTPS" in result.output
    result = CliRunner().invoke(cli.main, ["doctor", "--json"])
    body = json.loads(result.output)
    assert result.exit_code == 0 and body["ok"] is True and body["counts"]["FAIL"] == 0


def test_a_failing_check_makes_the_command_exit_1_with_the_fix(used, monkeypatch):
    sql(used, "DELETE FROM worker_heartbeats")
    monkeypatch.setattr(cli, "_app", lambda **_: used)
    result = CliRunner().invoke(cli.main, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL  worker: no worker has ever run" in result.output
    assert "fix: start it: `systemctl enable --now lms-bridge-worker`" in result.output
    body = json.loads(CliRunner().invoke(cli.main, ["doctor", "--json"]).output)
    assert body["ok"] is False and any(c["name"] == "worker" and c["status"] == "FAIL" for c in body["checks"])


def test_public_url_fails_when_nothing_answers_there(tmp_path, lti):
    app = make_app(tmp_path)
    healthy(app, lti)
    app.config["TOOL_URL"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert run(app)["public URL"][0] == "FAIL"


def test_public_url_fails_when_another_install_answers(used, tmp_path):
    other = make_app(tmp_path / "other")  # its own data directory and keys, while the URL reaches `used`
    checks = {c.name: (c.status, c.detail) for c in Doctor(other.config, used.extensions["lms_bridge_http"]).run()}
    assert checks["public URL"] == ("FAIL", f"{other.config['TOOL_URL']} serves another install's keys "
                                            f"(no kid {_active_kid(other)})")


def _active_kid(app):
    db = connect(app.config["DATABASE_URL"])
    try:
        return db.execute("SELECT kid FROM tool_keys WHERE retired_at IS NULL").fetchone()[0]
    finally:
        db.close()


def test_https_is_ok_on_https_and_fails_for_plain_http_on_a_public_host(tmp_path):
    assert run(make_app(tmp_path / "a", TOOL_URL="https://tool.example.org"))["HTTPS"][0] == "OK"
    assert run(make_app(tmp_path / "b", TOOL_URL="http://tool.example.org"))["HTTPS"][0] == "FAIL"


@pytest.mark.skipif(bool(TEST_POSTGRES), reason="SQLite only: key files and their modes; on PostgreSQL the private "
                    "keys are sealed in the database (test_signing_keys_on_postgresql_...)")
def test_signing_keys_fail_when_readable_by_others_missing_or_not_exactly_one(used):
    keys = Path(used.config["DATA_DIR"]) / "keys"
    pem = next(keys.glob("*.pem"))
    pem.chmod(0o644)
    assert run(used)["signing keys"][0] == "FAIL" and f"chmod 600 {pem}" == run(used)["signing keys"][2]
    pem.chmod(0o600)
    keys.chmod(0o755)
    assert run(used)["signing keys"][0] == "FAIL"
    keys.chmod(0o700)
    assert run(used)["signing keys"][0] == "OK"
    sql(used, "UPDATE tool_keys SET retired_at = created_at")
    assert run(used)["signing keys"][:2] == ("FAIL", "0 active keys (exactly one expected)")
    sql(used, "UPDATE tool_keys SET retired_at = NULL")
    sql(used, "INSERT INTO tool_keys (kid, public_jwk, created_at) VALUES ('x', '{}', '2026-01-01')")
    assert run(used)["signing keys"][:2] == ("FAIL", "2 active keys (exactly one expected)")
    sql(used, "DELETE FROM tool_keys WHERE kid = 'x'")
    pem.unlink()
    assert run(used)["signing keys"][0] == "FAIL"


@postgres_only
def test_signing_keys_on_postgresql_fail_when_the_sealed_key_is_missing_or_does_not_open(app, monkeypatch):
    used = app
    monkeypatch.setenv("LMS_BRIDGE_SECRET_KEY", "not-the-secret-the-key-was-sealed-with")
    checks = run(used)
    assert checks["signing keys"][0] == "FAIL" and checks["signing keys"][2] == (
        "set the same LMS_BRIDGE_SECRET_KEY on every server")
    assert checks["secret"][0] == "OK"
    monkeypatch.delenv("LMS_BRIDGE_SECRET_KEY")
    assert run(used)["signing keys"][0] == "OK" and run(used)["secret"][0] == "WARN"
    sql(used, "UPDATE tool_keys SET retired_at = created_at")
    assert run(used)["signing keys"][:2] == ("FAIL", "0 active keys (exactly one expected)")
    sql(used, "UPDATE tool_keys SET retired_at = NULL")
    sql(used, "DELETE FROM tool_private_keys")
    assert run(used)["signing keys"][0] == "FAIL"


@postgres_only
def test_postgresql_version_and_btree_gist_are_checked(app, monkeypatch):
    used = app
    from lms_bridge.db import ops as opsq

    checks = run(used)
    assert checks["PostgreSQL version"][0] == "OK" and checks["btree_gist"][0] == "OK"
    assert "secret" not in checks["database"][1] and checks["database"][1].startswith("reachable at 127.0.0.1:")
    monkeypatch.setattr(opsq, "postgres_facts", lambda db: {"version_num": 120015, "version": "12.15",
                                                            "btree_gist": None})
    checks = run(used)
    assert checks["PostgreSQL version"][:2] == ("FAIL", "12.15") and checks["btree_gist"][0] == "FAIL"
    assert "CREATE EXTENSION btree_gist" in checks["btree_gist"][2]


def test_database_fails_when_postgresql_is_unreachable(tmp_path):
    from lms_bridge.config import load

    config = load({"DATA_DIR": str(tmp_path), "DATABASE_URL": f"postgresql://lms:pw@127.0.0.1:{free_port()}/lms"})
    checks = run_config(config)
    assert checks["database"][0] == "FAIL" and "unreachable: Connection refused" in checks["database"][1]
    assert "LMS_BRIDGE_DATABASE_URL" in checks["database"][2] and "pw" not in checks["database"][1]
    assert checks["data directory"][0] in ("OK", "WARN")


def run_config(config: dict) -> dict:
    import requests

    with requests.Session() as session:
        return {c.name: (c.status, c.detail, c.fix) for c in Doctor(config, session).run()}


@pytest.mark.skipif(bool(TEST_POSTGRES), reason="SQLite only: removes the SQLite file "
                    "(PostgreSQL: test_database_fails_when_postgresql_is_unreachable)")
def test_database_fails_when_missing(tmp_path):
    app = make_app(tmp_path)
    Path(app.config["DATABASE_URL"]).unlink()
    checks = run(app)
    assert checks["database"][0] == "FAIL" and checks["database"][2] == "run `lms-bridge init`"


def test_migrations_fail_when_one_is_pending(used):
    record = "_lms_bridge_migrations" if TEST_POSTGRES else "_sqlite_migrations"
    sql(used, f"DELETE FROM {record} WHERE migration_set = 'ops'")
    checks = run(used)
    assert checks["migrations"][:2] == ("FAIL", "1 pending: ops:m001_worker_heartbeats")


@pytest.mark.skipif(bool(TEST_POSTGRES), reason="SQLite only: WAL is SQLite's journal mode")
def test_wal_fails_when_the_database_is_not_in_wal_mode(used):
    from lms_bridge import db as store

    for conn in store._local.__dict__.pop("pool", {}).values():  # the request pool of this thread
        conn.close()
    raw = sqlite3.connect(used.config["DATABASE_URL"])
    raw.execute("PRAGMA journal_mode = DELETE")
    raw.close()
    assert run(used)["WAL"][:2] == ("FAIL", "journal_mode=delete")


def test_data_directory_fails_when_not_writable_or_full(used, monkeypatch):
    assert run(used, min_free_bytes=1 << 60, low_free_bytes=1 << 61)["data directory"][0] == "FAIL"
    assert run(used, min_free_bytes=0, low_free_bytes=1 << 61)["data directory"][0] == "WARN"

    def refuse(self, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", refuse)  # root ignores modes, so break the write itself
    assert run(used)["data directory"][:2] == ("FAIL", f"{used.config['DATA_DIR']} is not writable "
                                                      "(Permission denied)")


def test_worker_fails_when_its_heartbeat_is_stale(used):
    sql(used, "UPDATE worker_heartbeats SET beat_at = '2026-01-01T00:00:00.000000+00:00'")
    assert run(used)["worker"][0] == "FAIL"


def test_outbox_warns_on_failed_jobs(used):
    db = connect(used.config["DATABASE_URL"])
    with write_transaction(db):
        job = ob.enqueue(db, platform_id=1, kind="nothing", payload={})
        db.execute("UPDATE outbox SET state = 'failed' WHERE id = ?", [job])
    db.close()
    checks = run(used)
    assert checks["outbox"][0] == "WARN" and "1 failed" in checks["outbox"][1]


def test_platform_key_set_fails_when_unreachable_or_empty(used):
    sql(used, "UPDATE platforms SET key_set_url = key_set_url || '-gone'")
    assert status(run(used), ": key set") == "FAIL"
    sql(used, "UPDATE platforms SET key_set_url = replace(key_set_url, '/mod/lti/certs.php-gone', '/healthz')")
    assert status(run(used), ": key set") == "FAIL"


def test_platform_registration_fails_while_pending(used):
    sql(used, "UPDATE platforms SET status = 'pending'")
    assert status(run(used), ": registration") == "FAIL"


def test_clock_skew_against_the_platform_date_header(used):
    used.config["SANDBOX_CLOCK_OFFSET"] = 120
    assert status(run(used), ": clock") == "FAIL"
    used.config["SANDBOX_CLOCK_OFFSET"] = -12
    assert status(run(used), ": clock") == "WARN"


def test_web_services_fail_on_an_invalid_token(used):
    sql(used, "UPDATE site_ws SET token = 'not-the-token'")  # credentials belong to the Moodle site (issuer)
    checks = run(used)
    assert status(checks, ": web services") == "FAIL"
    assert "not-the-token" not in json.dumps(checks)


def test_functions_fail_when_the_service_lacks_one(used, monkeypatch):
    from lms_bridge.sandbox import webservice, wsdata

    reduced = tuple(f for f in wsdata.FUNCTIONS if f != "core_calendar_delete_calendar_events")
    monkeypatch.setattr(webservice, "FUNCTIONS", reduced)
    checks = run(used)
    assert status(checks, ": functions")[0] == "F"
    assert [v[1] for k, v in checks.items() if k.endswith(": functions")] == [
        "missing core_calendar_delete_calendar_events"]


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_each_capability_probe_fails_when_the_role_lacks_it(used, capability):
    used.config["SANDBOX_WS_CAPABILITIES"] = tuple(c for c in CAPABILITIES if c != capability)
    checks = run(used)
    failed = [k.split("capability ")[1] for k, v in checks.items() if "capability " in k and v[0] == "FAIL"]
    # override_completion is probed on the course module that mod/lti:view finds
    expected = [capability]
    assert failed == expected
    if capability == "mod/lti:view":
        assert status(checks, "capability moodle/course:overridecompletion") == "WARN"


def test_capabilities_are_not_probed_before_a_course_launched(app):
    ensure_registered(app)
    db = connect(app.config["DATABASE_URL"])
    link_tool(db, app.config["TOOL_URL"])
    db.close()
    checks = run(app)
    assert status(checks, ": capabilities") == "WARN"


def test_doctor_reports_without_a_token_or_personal_data(used):
    text = json.dumps(report(Doctor(used.config, used.extensions["lms_bridge_http"]).run()))
    assert "@example.org" not in text and "Santoso" not in text
    assert issuer(used.config["TOOL_URL"]) in text
    assert os.environ.get("LMS_BRIDGE_SECRET_KEY", "unset") not in text


class BehindAProxy:
    """A TLS-terminating proxy in front of the in-process app: https outside, http inside, and the
    X-Forwarded-* headers only when `forward` is set."""

    def __init__(self, app, forward: bool):
        from lms_bridge.sandbox.inprocess import WSGIAdapter

        self.inner, self.forward = WSGIAdapter(lambda: app), forward

    def send(self, request, **kwargs):
        request.url = request.url.replace("https://", "http://", 1)
        if self.forward:
            request.headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example.org"})
        return self.inner.send(request, **kwargs)

    def close(self):
        pass


@pytest.mark.parametrize("trusted,forward,expected", [(0, True, "WARN"), (1, False, "WARN"), (1, True, "OK")])
def test_public_url_warns_when_the_proxy_scheme_does_not_reach_the_tool(tmp_path, trusted, forward, expected):
    import requests

    app = make_app(tmp_path, TOOL_URL="https://tool.example.org", TRUSTED_PROXIES=trusted)
    session = requests.Session()
    session.mount("https://tool.example.org/", BehindAProxy(app, forward))
    checks = {c.name: c for c in Doctor(app.config, session).run()}
    assert checks["public URL"].status == expected, checks["public URL"]
    if expected == "WARN":
        assert checks["public URL"].fix == ("send X-Forwarded-Proto from the proxy and set "
                                            "LMS_BRIDGE_TRUSTED_PROXIES=1")


def test_tool_urls_fail_when_the_login_url_is_not_served_there(tmp_path, lti):
    app = make_app(tmp_path)
    healthy(app, lti)
    app.config["TOOL_URL"] = "http://localhost/lms-bridge"  # a proxy prefix the tool does not serve
    checks = run(app)
    assert checks["tool URLs"][:2] == ("FAIL", "login http://localhost/lms-bridge/lti/login, redirect "
                                       "http://localhost/lms-bridge/lti/launch, keys http://localhost/lms-bridge/"
                                       ".well-known/jwks.json: login answers HTTP 404")
    assert checks["public URL"][0] == "FAIL"


def test_outbox_warns_when_the_oldest_pending_job_waits_too_long(used):
    db = connect(used.config["DATABASE_URL"])
    with write_transaction(db):
        job = ob.enqueue(db, platform_id=1, kind="nothing", payload={})
        db.execute("UPDATE outbox SET created_at = '2026-01-01T00:00:00+00:00', next_attempt_at = '2099-01-01'"
                   " WHERE id = ?", [job])
    db.close()
    assert run(used)["outbox"][0] == "WARN"


def test_platform_key_set_fails_when_its_only_key_is_too_small(used, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from lms_bridge.sandbox import platform
    from lti_config.keys import public_jwk

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    monkeypatch.setattr(platform, "jwks", lambda _data_dir: {"keys": [public_jwk(weak, "weak")]})
    checks = run(used)
    assert status(checks, ": key set") == "FAIL"
    assert [v[1] for k, v in checks.items() if k.endswith(": key set")][0].endswith(
        "no RSA key of 2048 bits or more with a kid")
