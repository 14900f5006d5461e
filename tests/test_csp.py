"""Issue 11 item 6: every HTML page carries a Content-Security-Policy: framed only by the tool and the
registered platforms, scripts only from the tool or with this response's nonce, no plugins, no <base>."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lms_bridge import security
from lms_bridge.db import connect
from lti_config.registrations import add_platform

TEMPLATES = Path(__file__).resolve().parents[1] / "lms_bridge" / "templates"


def policy(resp) -> dict:
    header = resp.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def test_pages_have_the_policy_and_inline_scripts_carry_its_nonce(client, lti):
    token = lti.launch(user="5")
    resp = client.get("/app/projects/", query_string={"lt": token})
    csp = policy(resp)
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["script-src"][0] == "'self'" and len(csp["script-src"]) == 2
    nonce = csp["script-src"][1][len("'nonce-"):-1]
    scripts = re.findall(r"<script([^>]*)>", resp.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in s or "src=" in s for s in scripts)
    other = policy(client.get("/app/projects/", query_string={"lt": token}))["script-src"][1]
    assert other != csp["script-src"][1]  # a new nonce per response


def test_auto_posting_pages_run_only_with_their_nonce(client):
    resp = client.get("/sandbox/launch/5/1")  # the platform's auto-post to /lti/login
    nonce = policy(resp)["script-src"][1][len("'nonce-"):-1]
    assert f'<script nonce="{nonce}">' in resp.get_data(as_text=True)


def test_no_template_has_inline_event_handlers_or_unnonced_inline_scripts():
    for path in TEMPLATES.rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"\son[a-z]+\s*=", html), path
        for attrs in re.findall(r"<script([^>]*)>", html):
            assert "src=" in attrs or "csp_nonce()" in attrs, (path, attrs)


def test_frame_ancestors_are_the_tool_and_the_registered_platforms(app, client, db):
    csp = policy(client.get("/"))
    assert csp["frame-ancestors"] == ["'self'"]  # the sandbox lives on the tool's own origin
    add_platform(db, issuer="https://moodle.example.org", client_id="c1",
                 auth_login_url="https://login.example.org/mod/lti/auth.php",
                 auth_token_url="https://moodle.example.org/mod/lti/token.php",
                 key_set_url="https://moodle.example.org/mod/lti/certs.php", deployment_id="1")
    assert policy(client.get("/"))["frame-ancestors"] == ["'self'"]  # cached for a minute ...
    security.invalidate_origins()  # ... or until this process changes the platforms
    assert policy(client.get("/"))["frame-ancestors"] == ["'self'", "https://login.example.org",
                                                          "https://moodle.example.org"]


def test_frame_ancestors_cache_expires(app, client, db, monkeypatch):
    client.get("/")
    add_platform(db, issuer="https://lms.example.net", client_id="c2",
                 auth_login_url="https://lms.example.net/auth", auth_token_url="https://lms.example.net/token",
                 key_set_url="https://lms.example.net/certs", deployment_id="1")
    clock = security.time.monotonic() + security.ORIGINS_TTL + 1
    monkeypatch.setattr(security.time, "monotonic", lambda: clock)
    assert "https://lms.example.net" in policy(client.get("/"))["frame-ancestors"]


def test_downloads_keep_their_own_sandbox_policy(client):
    resp = client.get("/.well-known/jwks.json")
    assert "Content-Security-Policy" not in resp.headers  # JSON needs none


def test_a_launch_from_a_platform_the_cache_does_not_know_refreshes_it(app, client, lti, db):
    client.get("/")  # origins cached: the sandbox (platform 1) only
    add_platform(db, issuer="https://other.example.org", client_id="c3",
                 auth_login_url="https://other.example.org/auth", auth_token_url="https://other.example.org/t",
                 key_set_url="https://other.example.org/k", deployment_id="1")
    token = lti.launch(user="5")  # platform 1: still cached, no refresh needed
    assert "https://other.example.org" not in policy(
        client.get("/app/projects/", query_string={"lt": token}))["frame-ancestors"]
    db.execute("UPDATE launches SET platform_id = 2")  # a launch of the newly registered platform
    db.conn.commit()
    assert "https://other.example.org" in policy(
        client.get("/app/projects/", query_string={"lt": token}))["frame-ancestors"]


def test_the_registration_page_can_be_framed_by_the_lms_that_is_registering(client):
    resp = client.get("/lti/register")
    assert resp.status_code == 400 and policy(resp)["frame-ancestors"] == ["*"]
    assert policy(resp)["object-src"] == ["'none'"]
