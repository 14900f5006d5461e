"""A store that cannot be reached: /healthz and every page answer 503 readably, every command one line."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import TEST_POSTGRES, free_port
from lms_bridge import create_app
from lms_bridge.cli import main


@pytest.fixture
def closed_url() -> str:
    """A PostgreSQL URL on a port nothing listens on: refused at once."""
    return f"postgresql://lms:secret@127.0.0.1:{free_port()}/lms"


@pytest.fixture
def down_app(tmp_path, closed_url):
    return create_app({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": closed_url, "TESTING": True})


def test_healthz_names_the_store_and_keeps_its_keys(client):
    resp = client.get("/healthz")
    body = resp.get_json()
    assert resp.status_code == 200 and body["ok"] is True
    assert body["store"] == ("postgresql" if TEST_POSTGRES else "sqlite")
    assert body["database"] is True and body["active_key"] is True
    assert {"outbox_pending", "outbox_oldest_pending_age_seconds"} <= set(body)


def test_healthz_answers_503_json_when_postgresql_is_unreachable(down_app, closed_url, caplog):
    resp = down_app.test_client().get("/healthz")
    body = resp.get_json()
    assert resp.status_code == 503
    assert body["database"] is False and body["store"] == "postgresql" and body["ok"] is False
    assert "127.0.0.1" not in resp.get_data(as_text=True) and "secret" not in resp.get_data(as_text=True)
    assert any("unreachable" in r.getMessage() for r in caplog.records)  # the reason is in the log


def test_pages_answer_503_with_a_readable_page_when_postgresql_is_unreachable(down_app):
    client = down_app.test_client()
    login = client.post("/lti/login", data={"iss": "https://moodle.example.org", "login_hint": "5",
                                            "target_link_uri": "http://localhost/lti/launch", "client_id": "c"})
    text = login.get_data(as_text=True)
    assert login.status_code == 503 and login.headers["Retry-After"] == "30"
    assert "please try again" in text and "store_unavailable" in text and "127.0.0.1" not in text
    assert client.get("/.well-known/jwks.json").status_code == 503
    api = client.get("/.well-known/jwks.json", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"] == "store_unavailable"


@pytest.mark.parametrize("args", [["init"], ["serve"], ["worker", "--once"], ["outbox"], ["keys", "list"],
                                  ["keys", "rotate"], ["platforms", "list"], ["outbox", "retry", "1"],
                                  ["backup", "--out", "{tmp}/backup"], ["privacy", "retention"]])
def test_commands_say_in_one_line_that_postgresql_is_unreachable(tmp_path, closed_url, args):
    env = {"LMS_BRIDGE_DATA": str(tmp_path / "data"), "LMS_BRIDGE_DATABASE_URL": closed_url}
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args], env=env)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"Error: PostgreSQL at 127.0.0.1:{closed_url.split(':')[-1].split('/')[0]}/lms is unreachable:"
                     " Connection refused"], result.output
    assert "secret" not in result.output

    assert not (tmp_path / "backup").exists()


def test_doctor_reports_an_unreachable_postgresql_as_a_failed_check(tmp_path, closed_url):
    env = {"LMS_BRIDGE_DATA": str(tmp_path / "data"), "LMS_BRIDGE_DATABASE_URL": closed_url}
    result = CliRunner().invoke(main, ["doctor"], env=env)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "FAIL  database: PostgreSQL at 127.0.0.1:" in result.output and "Connection refused" in result.output
    assert "secret" not in result.output.split("fix:")[0]  # never the password
