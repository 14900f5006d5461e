"""Dynamic registration and deep linking with the sandbox as the platform; the gradebook page."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit


from lms_bridge.db import lti as lq
from lms_bridge.db import sandbox as sq
from lms_bridge.sandbox.registration import registration_token

from conftest import FIXTURES, TOOL_URL, form_fields

CONF_URL = TOOL_URL + "/sandbox/mod/lti/openid-configuration.php"


def test_openid_configuration_has_moodles_shape(client):
    conf = client.get("/sandbox/mod/lti/openid-configuration.php").get_json()
    rec = json.loads((FIXTURES / "lti" / "openid-configuration.json").read_text())["response"]["body"]
    assert set(conf) == set(rec) and conf["scopes_supported"] == rec["scopes_supported"]
    assert conf["registration_endpoint"] == TOOL_URL + "/sandbox/mod/lti/openid-registration.php"


def test_tool_registers_through_the_sandbox(app, client, db):
    token = registration_token(app.config["DATA_DIR"], client_id="dynClient12345a")
    page = client.get("/lti/register", query_string={"openid_configuration": CONF_URL, "registration_token": token})
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    assert "org.imsglobal.lti.close" in html
    stored = [p for p in lq.list_platforms(db) if p["client_id"] == "dynClient12345a"]
    assert stored and stored[0]["issuer"] == TOOL_URL + "/sandbox"
    assert lq.has_deployment(db, stored[0]["id"], "2")
    request = json.loads(sq.registrations(db)[0]["request"])
    assert request["token_endpoint_auth_method"] == "private_key_jwt"


def test_registration_refuses_bad_tokens_and_bodies(client):
    endpoint = "/sandbox/mod/lti/openid-registration.php"
    assert client.post(endpoint, json={}).status_code == 401
    assert client.post(endpoint, json={}, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401


def test_registration_checks_the_body_like_moodle(app, client):
    body = json.loads((FIXTURES / "lti" / "registration-request.json").read_text())["body"]
    endpoint = "/sandbox/mod/lti/openid-registration.php"

    def post(b):
        token = registration_token(app.config["DATA_DIR"])
        return client.post(endpoint, json=b, headers={"Authorization": f"Bearer {token}"})

    ok = post(body)
    rec = json.loads((FIXTURES / "lti" / "registration-response.json").read_text())["body"]
    assert ok.status_code == 200 and set(ok.get_json()) == set(rec)
    assert len(ok.get_json()["client_id"]) == 15
    conf = "https://purl.imsglobal.org/spec/lti-tool-configuration"
    assert set(ok.get_json()[conf]) == set(rec[conf])
    for broken in ({**body, "redirect_uris": "http://127.0.0.1:5050/launch"},
                   {**body, "token_endpoint_auth_method": "client_secret_basic"},
                   {**body, "application_type": "native"},
                   {**body, conf: {**body[conf], "domain": "elsewhere.example"}}):
        assert post(broken).status_code == 400


def test_admin_register_page_frames_the_tool(client):
    html = client.get("/sandbox/admin/register").get_data(as_text=True)
    src = re.search(r'<iframe id="registration"[^>]*src="([^"]*)"', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(src).query)
    assert src.startswith(TOOL_URL + "/lti/register?") and query["openid_configuration"] == [CONF_URL]
    assert "org.imsglobal.lti.close" in html


def test_deep_link_return_creates_links_and_line_items(client, lti, db):
    lt = lti.deep_link(user="3")
    resp = client.post("/lti/deep-link", data={"lt": lt, "activity": ["project_plan", "consultations"]})
    action, fields = form_fields(resp.get_data(as_text=True))
    assert action == TOOL_URL + "/sandbox/deep-link-return"
    page = client.post(urlsplit(action).path, data=fields)
    assert page.status_code == 200, page.get_data(as_text=True)
    assert [lk["custom"].get("activity") for lk in sq.links(db)] == ["project_plan", "consultations"]
    items = [i for i in sq.list_lineitems(db, "2") if i["resource_link_id"] not in ("1", "2", "3")]  # seeded
    assert [(i["resource_id"], i["tag"], i["resource_link_id"]) for i in items] == [("project_plan", "lms_bridge", "5")]
    forged = client.post(urlsplit(action).path, data={"JWT": fields["JWT"][:-4] + "AAAA"})
    assert forged.status_code == 400


def test_gradebook_page_lists_scores(client, db):
    item = sq.create_lineitem(db, course_id="2", label="Plan", score_maximum=100, resource_id="project_plan",
                              tag="lms_bridge")
    sq.put_grade(db, item_id=item, user_id="5", score=85, score_maximum=100, comment="Good",
                 timestamp="2030-01-01T00:00:00+00:00", activity_progress="Completed", grading_progress="FullyGraded")
    html = client.get("/sandbox/gradebook").get_data(as_text=True)
    row = re.search(rf'<tr data-lineitem="{item}" data-resource="project_plan" data-user="5">(.*?)</tr>', html, re.S)
    assert row and "85 / 100" in row.group(1)
