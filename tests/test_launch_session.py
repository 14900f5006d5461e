"""Issue 11 item 5: the launch token is a short-lived, renewed credential that stays out of URLs where a
cookie can carry it, and state-changing requests from other sites are refused."""
from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import TimestampSigner

from conftest import make_app
from lms_bridge.db import connect, ts, utcnow


def text(resp):
    return resp.get_data(as_text=True)


def launch_at(lti, monkeypatch, seconds_ago: int, user="5") -> str:
    """A launch whose token was signed `seconds_ago` (the row is as fresh as the token says)."""
    real = time.time
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(real()) - seconds_ago)
    token = lti.launch(user=user)
    monkeypatch.undo()
    return token


def test_idle_lifetime_is_one_hour_by_default(app):
    assert app.config["LAUNCH_TOKEN_TTL"] == 3600


def test_a_token_idle_for_longer_than_the_lifetime_is_refused_and_a_new_launch_works(client, lti, monkeypatch):
    stale = launch_at(lti, monkeypatch, 3601)
    client._cookies.clear()
    resp = client.get("/app/projects/", query_string={"lt": stale})
    assert resp.status_code == 401 and 'data-error="launch_expired"' in text(resp)
    fresh = lti.launch(user="5")
    assert client.get("/app/projects/", query_string={"lt": fresh}).status_code == 200


def test_an_active_person_gets_a_renewed_token_and_the_launch_lives_on(app, client, lti, monkeypatch):
    old = launch_at(lti, monkeypatch, 3000)  # 50 minutes without a request, still inside the hour
    db = connect(app.config["DATABASE_URL"])
    before = db.execute("SELECT expires_at FROM launches").fetchone()[0]
    page = text(client.get("/app/projects/", query_string={"lt": old}))
    after = db.execute("SELECT expires_at FROM launches").fetchone()[0]
    assert after > before and after > ts(utcnow() + timedelta(minutes=59))
    cookie = next(c for c in client._cookies.values() if c.key.startswith("lmsb_"))
    assert cookie.value != old  # the renewed token went into the cookie
    assert TimestampSigner(app.config["SECRET_KEY"], salt="lms-bridge-launch",
                           digest_method=hashlib.sha256).unsign(cookie.value, max_age=60)
    i = page.find(old); assert i < 0, page[max(0, i - 300):i + 100]


def test_a_launch_older_than_the_maximum_age_is_refused_even_when_active(app, client, lti):
    token = lti.launch(user="5")
    db = connect(app.config["DATABASE_URL"])
    db.execute("UPDATE launches SET created_at = ?", [ts(utcnow() - timedelta(hours=12, minutes=1))])
    db.conn.commit()
    db.close()
    assert client.get("/app/projects/", query_string={"lt": token}).status_code == 401


def _links_lt(html: str) -> set[str]:
    return {parse_qs(urlsplit(m.replace("&amp;", "&")).query).get("lt", [""])[0]
            for m in re.findall(r'(?:href|action)="([^"]*lt=[^"]*)"', html)} | set(
        re.findall(r'name="lt" value="([^"]*)"', html))


def test_with_the_cookie_links_and_forms_carry_only_a_reference(client, lti):
    token = lti.launch(user="3")
    resp = client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)
    assert resp.status_code == 200
    html = text(resp)
    refs = _links_lt(html)
    assert refs and all(r.startswith("c.") for r in refs), refs
    assert token not in html
    ref = refs.pop()
    # the reference works in this browser (it sends the cookie) ...
    assert client.get("/app/projects/dashboard", query_string={"lt": ref}).status_code == 200
    # ... and is worthless anywhere else
    other = client.application.test_client()
    resp = other.get("/app/projects/dashboard", query_string={"lt": ref})
    assert resp.status_code == 401 and "no longer holds" in text(resp)


def test_without_the_cookie_the_token_stays_in_links_and_the_page_drops_it_from_the_address_bar(app, lti):
    client = lti.client
    token = lti.launch(user="3")
    client._cookies.clear()  # a browser that refuses the tool's cookie in the LMS frame
    html = text(client.get("/app/projects/dashboard", query_string={"lt": token}))
    assert token in _links_lt(html)
    assert "var ref = \"\";" in html and "searchParams.delete('lt')" in html
    assert "history.replaceState" in html


def test_launch_cookie_is_partitioned_secure_and_cross_site_on_https(tmp_path):
    app = make_app(tmp_path, TOOL_URL="https://localhost")
    from conftest import LtiActions

    client = app.test_client()
    token = LtiActions(client).launch(user="5")
    resp = client.get("/app/projects/", query_string={"lt": token}, base_url="https://localhost")
    header = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("lmsb_"))
    for part in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/", "Max-Age=3600"):
        assert part in header, header


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"}])
def test_state_changing_posts_from_another_site_are_refused(app, client, lti, headers):
    token = lti.launch(user="3")
    resp = client.post("/app/projects/deadlines", headers=headers,
                       data={"lt": token, "stage": "project_plan", "due": "2026-12-01T17:00"})
    assert resp.status_code == 403 and 'data-error="cross_site_request"' in text(resp)
    assert connect(app.config["DATABASE_URL"]).execute("SELECT count(*) FROM deadlines").fetchone()[0] == 0


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}])
def test_the_tools_own_posts_are_accepted(client, lti, headers):
    token = lti.launch(user="3")
    resp = client.post("/app/projects/deadlines", headers=headers,
                       data={"lt": token, "stage": "project_plan", "due": "2026-12-01T17:00"})
    assert resp.status_code == 303


def test_lti_login_and_launch_stay_open_to_the_platforms_cross_site_posts(client, lti):
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://moodle.example.org"}
    from conftest import form_fields

    _, init = form_fields(text(client.get("/sandbox/launch/5/1")))
    resp = client.post("/lti/login", data=init, headers=cross)
    assert resp.status_code == 302
    loc = urlsplit(resp.headers["Location"])
    fields = form_fields(text(client.get(loc.path, query_string=loc.query)))[1]
    assert client.post("/lti/launch", data=fields, headers=cross).status_code == 303
