"""The sandbox's token endpoint, AGS and NRPS answer like Moodle 4.5.6 (tests/fixtures/moodle/lti)."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from lms_bridge.clients.errors import LtiServiceError
from lms_bridge.clients.lti_services import LtiServiceClient
from lms_bridge.db import sandbox as sq
from lti_config.keys import signer

from conftest import FIXTURES, TOOL_URL

ISS = TOOL_URL + "/sandbox"
TOKEN_URL = ISS + "/mod/lti/token.php"
LINEITEMS = ISS + "/mod/lti/services.php/2/lineitems?type_id=1"
MEMBERSHIPS = ISS + "/mod/lti/services.php/CourseSection/2/bindings/1/memberships"
SCORE = "application/vnd.ims.lis.v1.score+json"


@pytest.fixture
def http(app):
    return app.extensions["lms_bridge_http"]


@pytest.fixture
def sign(app, db):
    return signer(db, app.config["DATA_DIR"])


@pytest.fixture
def ags(http, sign):
    return LtiServiceClient(http, "sandbox-client", TOKEN_URL, sign)


def assertion(sign, **over):
    now = int(time.time())
    claims = {"iss": "sandbox-client", "sub": "sandbox-client", "aud": TOKEN_URL, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4()), **over}
    return sign(claims)


def token_request(http, client_assertion, scope="https://purl.imsglobal.org/spec/lti-ags/scope/score"):
    return http.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_assertion": client_assertion,
                                      "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                      "scope": scope})


def recorded(name):
    return json.loads((FIXTURES / "lti" / name).read_text())["response"]


def test_token_exchange_with_a_tool_signed_assertion(http, sign, db):
    scope = ("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly "
             "https://example.org/not-a-moodle-scope")
    resp = token_request(http, assertion(sign), scope)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    body = json.loads(resp.text)
    assert set(body) == set(recorded("token-subset-scope.json")["body"])
    assert body["scope"] == "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
    assert body["expires_in"] == 3600 and sq.token_scopes(db, body["access_token"]) == {body["scope"]}


def test_token_refusals_match_the_recordings(http, sign):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode({"iss": "sandbox-client", "sub": "sandbox-client", "aud": TOKEN_URL, "exp": now + 60,
                         "jti": "x"}, stranger, algorithm="RS256", headers={"kid": "nope"})
    resp = token_request(http, forged)
    assert (resp.status_code, json.loads(resp.text)) == (400, recorded("token-error-bad-signature.json")["body"])
    resp = token_request(http, assertion(sign, iss="nosuchclient", sub="nosuchclient"))
    assert json.loads(resp.text) == recorded("token-error-unknown-client.json")["body"]
    resp = token_request(http, assertion(sign), scope="https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting")
    assert json.loads(resp.text) == recorded("token-error-invalid-scope.json")["body"]
    once = assertion(sign)
    assert token_request(http, once).status_code == 200
    assert token_request(http, once).status_code == 400  # stricter than Moodle 4.5.6, which accepted the replay
    assert token_request(http, assertion(sign, aud="http://example.invalid/token")).status_code == 400


def test_line_item_find_or_create_and_filters(ags, http):
    created = ags.find_or_create_line_item(LINEITEMS, "Course project: project plan", 100, "project_plan",
                                           "lms_bridge")
    assert set(created) == set(recorded("ags-lineitems-post-create.json")["body"])
    again = ags.find_or_create_line_item(LINEITEMS, "Course project: project plan", 100, "project_plan",
                                         "lms_bridge")
    assert again["id"] == created["id"]
    ags.create_line_item(LINEITEMS, "Report", 100, "project_report", "lms_bridge")
    assert [i["resourceId"] for i in ags.list_line_items(LINEITEMS, resource_id="project_report")] == \
        ["project_report"]
    assert len(ags.list_line_items(LINEITEMS, limit=1)) == 5  # followed the Link rel="next" (3 seeded activity columns)
    assert ags.get_line_item(created["id"])["scoreMaximum"] == 100
    token = ags.access_token()
    resp = http.get(LINEITEMS, headers={"Authorization": f"Bearer {token}"})
    no_accept = recorded("ags-lineitems-get-no-accept.json")
    assert (resp.status_code, resp.reason) == (400, no_accept["reason"])
    assert set(resp.json()) == set(no_accept["body"])
    updated = ags.update_line_item(created["id"], {**created, "label": "Plan (final)"})
    assert updated["label"] == "Plan (final)" and ags.get_line_item(created["id"])["label"] == "Plan (final)"


def test_score_then_results_rescaled_with_comment(ags, db):
    item = ags.create_line_item(LINEITEMS, "Plan", 100, "project_plan", "lms_bridge")
    now = datetime.now(timezone.utc)
    ags.post_score(item["id"], "5", 8.5, 10, now, comment="Good work on the project")
    ags.post_score(item["id"], "6", 0, 100, now)
    results = {r["userId"]: r for r in ags.get_results(item["id"])}
    assert set(results["5"]) == set(recorded("ags-results-get.json")["body"][0])
    assert results["5"]["resultScore"] == 85 and results["5"]["resultMaximum"] == 100
    assert "resultScore" not in results["6"] and "comment" not in results["6"]
    assert [r["userId"] for r in ags.get_results(item["id"], user_id="6")] == ["6"]
    assert sq.grade_of(db, "project_plan", "5") == 85
    assert sq.call_counts(db)["scores"] == 2


def test_stale_timestamp_answers_409_to_the_second(ags):
    item = ags.create_line_item(LINEITEMS, "Plan", 100, "project_plan", "lms_bridge")
    first = datetime(2030, 1, 1, 9, 12, 0, 3000, tzinfo=timezone.utc)
    ags.post_score(item["id"], "5", 85, 100, first)
    with pytest.raises(LtiServiceError) as err:
        ags.post_score(item["id"], "5", 10, 100, first + timedelta(milliseconds=500))
    assert err.value.status == 409 and err.value.already_applied
    assert err.value.reason == f"Refusing score with an earlier timestamp for item {item['id'].split('/')[-2]} and user 5"
    ags.post_score(item["id"], "5", 90, 100, first + timedelta(seconds=1))
    assert ags.get_results(item["id"])[0]["resultScore"] == 90


def test_pending_score_deletes_the_grade(ags, db):
    item = ags.create_line_item(LINEITEMS, "Plan", 100, "project_plan", "lms_bridge")
    now = datetime.now(timezone.utc)
    ags.post_score(item["id"], "5", 85, 100, now)
    ags.post_score(item["id"], "5", None, 100, now + timedelta(seconds=2), grading_progress="Pending",
                   activity_progress="Submitted")
    assert ags.get_results(item["id"]) == recorded("ags-results-get-after-pending.json")["body"]
    assert sq.grade_of(db, "project_plan", "5") is None


def test_staff_and_malformed_scores_answer_400_with_the_reason(ags, http):
    item = ags.create_line_item(LINEITEMS, "Plan", 100, "project_plan", "lms_bridge")
    for user in ("2", "3"):
        with pytest.raises(LtiServiceError) as err:
            ags.post_score(item["id"], user, 50, 100, datetime.now(timezone.utc))
        assert err.value.status == 400 and err.value.reason.startswith("Incorrect score received{")
        assert err.value.body == "[]"
    ags.post_score(item["id"], "4", 50, 100, datetime.now(timezone.utc))  # non-editing teacher: graded role
    scores = item["id"].replace("/lineitem?", "/lineitem/scores?")
    auth = {"Authorization": f"Bearer {ags.access_token()}"}
    body = json.dumps({"userId": "5", "scoreGiven": 1, "scoreMaximum": 100, "activityProgress": "Completed",
                       "gradingProgress": "FullyGraded"})
    resp = http.post(scores, data=body, headers={**auth, "Content-Type": SCORE})
    assert resp.status_code == 400 and resp.reason == "Incorrect score received" + body
    resp = http.post(scores, data=body, headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.reason.startswith("No handler found for /2/lineitems/")
    resp = http.post(scores, data=body, headers={"Content-Type": SCORE})
    assert resp.status_code == 401 and resp.json()["reason"] == "Unauthorized"


def test_scope_is_enforced(http, sign):
    token = json.loads(token_request(http, assertion(sign), "https://purl.imsglobal.org/spec/lti-ags/scope/score")
                       .text)["access_token"]
    resp = http.get(LINEITEMS, headers={"Authorization": f"Bearer {token}",
                                        "Accept": "application/vnd.ims.lis.v2.lineitemcontainer+json"})
    assert resp.status_code == 401 and set(resp.json()) == set(recorded("ags-error-token-without-ags-scope.json")["body"])


def test_nrps_members_roles_and_paging(ags, http, db):
    full = ags.get_members(MEMBERSHIPS)
    rec = recorded("nrps-membership.json")["body"]
    assert set(full) == set(rec) and full["context"] == rec["context"]
    assert [m["user_id"] for m in full["members"]] == [m["user_id"] for m in rec["members"]]
    assert set(full["members"][0]) == set(rec["members"][0])
    assert {m["user_id"]: m["roles"] for m in full["members"]}["4"] == ["Learner"]
    token = ags.access_token()
    page = http.get(MEMBERSHIPS + "?limit=2", headers={"Authorization": f"Bearer {token}",
                                                       "Accept": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"})
    assert page.headers["Link"] == f'<{MEMBERSHIPS}?limit=2&from=2>; rel="next"'
    assert len(page.json()["members"]) == 2
    assert [m["user_id"] for m in ags.get_members(MEMBERSHIPS, role="Instructor")["members"]] == ["3"]
    wrong = http.get(MEMBERSHIPS, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    assert (wrong.status_code, wrong.reason) == (400, recorded("nrps-error-default-accept.json")["reason"])
    sq.seed_roster(db, 250)
    everyone = ags.get_members(MEMBERSHIPS, limit=100)
    assert len(everyone["members"]) == 255 and everyone["members"][-1]["roles"] == ["Learner"]
