"""Signed launches with odd claim shapes are 400s naming the claim; an expired login state is refused; the
submission-review launch opens the learner it names when several have submitted."""
from __future__ import annotations

import pytest

from lms_bridge.db import connect, write_transaction
from lms_bridge.db import projects as pq
from test_launch import C, claims_for, launch_with, launches_count, refused, start_login

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


@pytest.mark.parametrize("changes, named", [
    ({C + "context": "2"}, "context"),
    ({C + "resource_link": "1"}, "resource_link"),
    ({C + "custom": ["activity"]}, "custom"),
    ({C + "roles": "Learner"}, "roles"),
    ({C + "roles": [{"role": "Learner"}]}, "roles"),
    ({C + "launch_presentation": "iframe"}, "launch_presentation"),
    ({AGS: "https://lms.example/lineitems"}, "endpoint (AGS)"),
    ({AGS: {"lineitems": ["x"]}}, "endpoint (AGS).lineitems"),
    ({C + "context": {"id": {"nested": 1}}}, "context.id"),
    ({C + "context": {"id": True}}, "context.id"),
    ({C + "resource_link": {"id": 1.5}}, "resource_link.id"),
    ({"sub": 5}, "sub"),
    ({"email": ["a@b"]}, "email"),
    ({"exp": 1e400}, "exp"),
    ({"exp": float("nan")}, "exp"),
    ({"iat": -1}, "iat"),
    ({"exp": 10 ** 30}, "exp"),
])
def test_a_claim_of_the_wrong_type_is_a_400_naming_it(app, client, changes, named):
    body = refused(launch_with(app, client, claims=lambda n: claims_for(app, n, **changes)), "malformed_claim")
    assert f"{named} claim" in body
    assert launches_count(app) == 0


def test_an_expired_login_state_is_refused(app, client):
    state, nonce = start_login(client)
    db = connect(app.config["DATABASE_URL"])
    with write_transaction(db):
        db.execute("UPDATE oidc_states SET expires_at = '2000-01-01T00:00:00+00:00' WHERE state = ?", [state])
    resp = launch_with(app, client, claims=lambda n: claims_for(app, nonce), state=state)
    assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    assert launches_count(app) == 0


def test_submission_review_opens_the_named_learner_among_several(app, client, lti):
    from urllib.parse import parse_qs, urlsplit

    from conftest import TOOL_URL, form_fields
    from lms_bridge.sandbox.platform import initiation_fields
    from test_projects_flow import PLAN, SCOPE, post_stage

    titles = {"5": "Water points in Jakarta", "6": "Sea walls in Tarawa", "7": "Schools in Kathmandu"}
    for user, title in titles.items():
        assert post_stage(client, lti.launch(user=user), data=dict(PLAN, title=title)).status_code == 303
    db = connect(app.config["DATABASE_URL"])
    for user in ("6", "7", "5"):
        resp = client.post("/lti/login", data=initiation_fields(TOOL_URL, "3", "1", "LtiSubmissionReviewRequest",
                                                                 user))
        loc = urlsplit(resp.headers["Location"])
        fields = form_fields(client.get(loc.path, query_string=loc.query).get_data(as_text=True))[1]
        token = parse_qs(urlsplit(lti.post_launch(fields).headers["Location"]).query)["lt"][0]
        page = client.get("/app/landing", query_string={"lt": token}, follow_redirects=True)
        pid = pq.project_of(db, SCOPE, user)["id"]
        html = page.get_data(as_text=True)
        assert f"/app/projects/review/{pid}/project_plan" in page.request.path
        assert titles[user] in html and all(t not in html for u, t in titles.items() if u != user)
