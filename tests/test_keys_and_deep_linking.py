"""Signing keys, JWKS, rotation with a grace period, and deep-linking responses verified with the JWKS."""
from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from conftest import form_fields
from lms_bridge.cli import main as cli
from lms_bridge.db import connect, ts, utcnow
from lti_config import keys

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


def verify_with_jwks(client, token, audience):
    published = client.get("/.well-known/jwks.json").get_json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in published["keys"] if k["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience)


def test_jwks_publishes_rsa_keys_with_kid(client):
    body = client.get("/.well-known/jwks.json").get_json()
    assert len(body["keys"]) == 1
    key = body["keys"][0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["kid"]
    assert "d" not in key and "p" not in key  # never the private part
    assert jwt.PyJWK(key).key.key_size >= 2048


def test_rotation_keeps_old_tokens_verifying_during_grace(app, client, db):
    old = keys.sign(db, app.config["DATA_DIR"], {"aud": "x", "sub": "before"})
    new_kid = keys.rotate(db, app.config["DATA_DIR"])
    new = keys.sign(db, app.config["DATA_DIR"], {"aud": "x", "sub": "after"})
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert verify_with_jwks(client, old, "x")["sub"] == "before"
    assert verify_with_jwks(client, new, "x")["sub"] == "after"
    # Past the grace period the retired key leaves the JWKS.
    db.execute("UPDATE tool_keys SET retired_at = ? WHERE kid != ?",
               [ts(utcnow() - timedelta(days=app.config["KEY_GRACE_DAYS"] + 1)), new_kid])
    db.conn.commit()
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]] == [new_kid]
    with pytest.raises(StopIteration):
        verify_with_jwks(client, old, "x")


def test_private_keys_are_pem_files_of_mode_600_on_sqlite_and_sealed_in_the_database_on_postgresql(app, db):
    folder = keys.key_dir(app.config["DATA_DIR"])
    pems = list(folder.glob("*.pem"))
    kid = keys.active_signing_key(db, app.config["DATA_DIR"])[0]
    if keys.in_database(db):  # several servers share the database, not the data directory
        from lms_bridge.db import keystore

        assert pems == [] and "PRIVATE KEY" not in keystore.sealed(db, kid)
        return
    assert [p.stem for p in pems] == [kid]
    assert pems[0].stat().st_mode & 0o077 == 0


def test_deep_linking_picker_and_signed_response(app, client, lti):
    token = lti.deep_link(user="3")
    picker = client.get("/lti/deep-link", query_string={"lt": token})
    assert picker.status_code == 200
    page = picker.get_data(as_text=True)
    for activity in ("project_plan", "project_report", "final_presentation", "consultations"):
        assert f'value="{activity}"' in page
    resp = client.post("/lti/deep-link", data={"lt": token, "activity": ["project_plan", "consultations"]})
    action, fields = form_fields(resp.get_data(as_text=True))
    assert action == "http://localhost/sandbox/deep-link-return"
    claims = verify_with_jwks(client, fields["JWT"], "http://localhost/sandbox")
    assert claims["iss"] == "sandbox-client"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "1"
    plan, consult = claims[DL + "content_items"]
    assert plan["type"] == "ltiResourceLink"
    assert plan["url"] == "http://localhost/lti/launch?activity=project_plan"
    assert plan["custom"] == {"activity": "project_plan"}
    assert plan["lineItem"] == {"scoreMaximum": 100, "label": plan["title"], "resourceId": "project_plan",
                                "tag": "lms_bridge"}
    assert "lineItem" not in consult  # consultations are not graded


def test_deep_linking_refuses_learners_and_empty_choice(client, lti):
    learner = lti.launch(user="5")
    assert client.get("/lti/deep-link", query_string={"lt": learner}).status_code == 403
    staff = lti.deep_link(user="3")
    resp = client.post("/lti/deep-link", data={"lt": staff})
    assert resp.status_code == 400 and "nothing_chosen" in resp.get_data(as_text=True)


def test_forged_launch_token_refused(client, lti):
    token = lti.launch(user="5")
    assert client.get("/app/home", query_string={"lt": token}).status_code == 200
    assert client.get("/app/home", query_string={"lt": token[:-2] + "xx"}).status_code == 403
    assert client.get("/app/home").status_code == 401


def test_cli_keys_rotate_and_list(app, monkeypatch):
    from click.testing import CliRunner

    monkeypatch.setenv("LMS_BRIDGE_DATA", app.config["DATA_DIR"])
    runner = CliRunner()
    assert runner.invoke(cli, ["keys", "rotate"]).exit_code == 0
    listing = runner.invoke(cli, ["keys", "list"]).output
    assert listing.count("\tactive\t") == 1 and listing.count("\tpublished\t") == 1


def test_cli_platforms_add_validates_and_lists(app, monkeypatch):
    from click.testing import CliRunner

    monkeypatch.setenv("LMS_BRIDGE_DATA", app.config["DATA_DIR"])
    runner = CliRunner()
    bad = runner.invoke(cli, ["platforms", "add", "--issuer", "http://moodle.example.org", "--client-id", "c",
                              "--auth-login-url", "https://m/a", "--auth-token-url", "https://m/t",
                              "--key-set-url", "https://m/k", "--deployment-id", "1"])
    assert bad.exit_code != 0 and "HTTPS" in bad.output
    ok = runner.invoke(cli, ["platforms", "add", "--issuer", "https://moodle.example.org", "--client-id", "abc",
                             "--auth-login-url", "https://moodle.example.org/mod/lti/auth.php",
                             "--auth-token-url", "https://moodle.example.org/mod/lti/token.php",
                             "--key-set-url", "https://moodle.example.org/mod/lti/certs.php",
                             "--deployment-id", "3"])
    assert ok.exit_code == 0, ok.output
    listing = runner.invoke(cli, ["platforms", "list"]).output
    assert "https://moodle.example.org\tclient abc\tdeployments 3" in listing


def test_cli_config_prints_moodle_form_values(monkeypatch, tmp_path):
    from click.testing import CliRunner

    monkeypatch.setenv("LMS_BRIDGE_URL", "https://tool.example.org/")
    monkeypatch.setenv("LMS_BRIDGE_DATA", str(tmp_path))
    out = CliRunner().invoke(cli, ["config"]).output
    assert "Redirection URI(s): https://tool.example.org/lti/launch" in out
    assert "Initiate login URL: https://tool.example.org/lti/login" in out
    assert "Public keyset: https://tool.example.org/.well-known/jwks.json" in out
    assert "Dynamic registration URL: https://tool.example.org/lti/register" in out
