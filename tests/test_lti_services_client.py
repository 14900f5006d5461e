"""LtiServiceClient (AGS, NRPS, OAuth2 tokens) against Moodle 4.5.6 recordings in tests/fixtures/moodle/lti."""
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from responses import matchers

from lms_bridge.clients.lti_services import (
    ALL_SCOPES, SCOPE_NRPS, LtiServiceClient, LtiServiceError, MemoryTokenStore, iso_timestamp, service_url)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "moodle" / "lti"
TOKEN_URL = "http://127.0.0.1:8080/mod/lti/token.php"
CLIENT_ID = "1gwz9ZLHdUKAOqF"
LINEITEMS = "http://127.0.0.1:8080/mod/lti/services.php/2/lineitems?type_id=1"
LINEITEM = "http://127.0.0.1:8080/mod/lti/services.php/2/lineitems/2/lineitem?type_id=1"
MEMBERSHIPS = "http://127.0.0.1:8080/mod/lti/services.php/CourseSection/2/bindings/1/memberships"
NOW = 1795425119.0


def load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


class Reasoned(responses.Response):
    """A mocked answer with Moodle's own HTTP reason phrase (where AGS puts its error detail)."""

    def __init__(self, *args, reason=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.reason_phrase = reason

    def get_response(self, request):
        response = super().get_response(request)
        if self.reason_phrase:
            response.reason = self.reason_phrase
        return response


def replay(rsps, name, check_request=True):
    """Answer the recorded response; with check_request, insist on the recorded media types and body."""
    fixture = load(name)
    request, answer = fixture["request"], fixture["response"]
    match = []
    if check_request:
        headers = {k: v for k, v in request["headers"].items() if k in ("Accept", "Content-Type", "Authorization")}
        match.append(matchers.header_matcher(headers))
        if request["body"] is not None:
            match.append(matchers.json_params_matcher(request["body"]))
    body = answer["body"] if isinstance(answer["body"], str) else json.dumps(answer["body"])
    headers = {k: v for k, v in answer["headers"].items() if k == "Link"}
    rsps.add(Reasoned(request["method"], request["url"], status=answer["status"], reason=answer["reason"],
                      body=body, content_type=answer["content_type"], headers=headers, match=match))
    return fixture


def token_answer(rsps, name="token-response"):
    answer = load(name)["response"]
    rsps.add(Reasoned("POST", TOKEN_URL, status=answer["status"], reason=answer["reason"],
                      body=json.dumps(answer["body"]), content_type=answer["content_type"]))


@pytest.fixture(scope="module")
def key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, private.public_key()


@pytest.fixture
def signer(key):
    return lambda claims: jwt.encode(claims, key[0], algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def clock():
    class Clock:
        now = NOW
        def __call__(self):
            return self.now
    return Clock()


@pytest.fixture
def client(signer, clock):
    return LtiServiceClient(requests.Session(), CLIENT_ID, TOKEN_URL, signer, clock=clock)


def token_calls(rsps):
    return [c for c in rsps.calls if c.request.url == TOKEN_URL]


@pytest.mark.parametrize("url,suffix,expected", [
    (LINEITEM, "scores", "http://127.0.0.1:8080/mod/lti/services.php/2/lineitems/2/lineitem/scores?type_id=1"),
    (LINEITEM, "results", "http://127.0.0.1:8080/mod/lti/services.php/2/lineitems/2/lineitem/results?type_id=1"),
    ("https://lms.example/ags/items/7/", "scores", "https://lms.example/ags/items/7/scores"),
    ("https://lms.example/ags/items/7?a=1&b=2#f", "results", "https://lms.example/ags/items/7/results?a=1&b=2#f"),
])
def test_service_url_inserts_suffix_before_query(url, suffix, expected):
    assert service_url(url, suffix) == expected


def test_token_request_is_an_rfc7523_client_assertion(rsps, client, key):
    token_answer(rsps)
    assert client.access_token() == "REDACTED"
    recorded = load("token-request")["request"]
    form = {k: v[0] for k, v in parse_qs(rsps.calls[0].request.body).items()}
    assert set(form) == set(recorded["form"])
    assert form["grant_type"] == "client_credentials" and form["scope"] == recorded["form"]["scope"]
    assert form["client_assertion_type"] == recorded["form"]["client_assertion_type"]
    assert rsps.calls[0].request.headers["Accept"] == "application/json"
    claims = jwt.decode(form["client_assertion"], key[1], algorithms=["RS256"], audience=TOKEN_URL,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert (claims["iat"], claims["exp"] - claims["iat"]) == (int(NOW), 300) and claims["jti"]


def test_token_is_cached_until_near_expiry(rsps, client, clock):
    token_answer(rsps)
    token_answer(rsps)
    client.access_token()
    clock.now += 3600 - 61
    client.access_token()
    assert len(rsps.calls) == 1
    clock.now += 2
    client.access_token()
    assert len(rsps.calls) == 2
    first = {k: v[0] for k, v in parse_qs(rsps.calls[0].request.body).items()}
    second = {k: v[0] for k, v in parse_qs(rsps.calls[1].request.body).items()}
    assert first["client_assertion"] != second["client_assertion"]


def test_token_store_is_injected_and_keyed_by_scopes(rsps, signer, clock):
    store = MemoryTokenStore()
    token_answer(rsps, "token-subset-scope")
    nrps_only = LtiServiceClient(requests.Session(), CLIENT_ID, TOKEN_URL, signer, scopes=[SCOPE_NRPS],
                                 token_store=store, clock=clock)
    nrps_only.access_token()
    key = nrps_only.token_key([SCOPE_NRPS])
    assert store.get(key) == ("REDACTED", NOW + 3600)
    assert CLIENT_ID in key and SCOPE_NRPS in key and nrps_only.token_key(ALL_SCOPES) != key
    other = LtiServiceClient(requests.Session(), CLIENT_ID, TOKEN_URL, signer, scopes=[SCOPE_NRPS],
                             token_store=store, clock=clock)
    assert other.access_token() == "REDACTED" and len(rsps.calls) == 1


@pytest.mark.parametrize("name,error", [
    ("token-error-bad-signature", "Signature verification failed"),
    ("token-error-invalid-scope", "invalid_scope"),
    ("token-error-unknown-client", "invalid_client"),
])
def test_token_errors(rsps, client, name, error):
    token_answer(rsps, name)
    with pytest.raises(LtiServiceError) as err:
        client.access_token()
    e = err.value
    assert (e.status, e.error, e.url, e.permanent) == (400, error, TOKEN_URL, True)
    assert error in str(e) and json.loads(e.body) == {"error": error}


def test_list_line_items_and_filters(rsps, client):
    token_answer(rsps)
    full = replay(rsps, "ags-lineitems-get")
    by_resource = replay(rsps, "ags-lineitems-get-filter-resource_id")
    by_tag = replay(rsps, "ags-lineitems-get-filter-tag")
    by_link = replay(rsps, "ags-lineitems-get-resource_link_id")
    assert client.list_line_items(LINEITEMS) == full["response"]["body"]
    assert client.list_line_items(LINEITEMS, resource_id="report") == by_resource["response"]["body"]
    assert client.list_line_items(LINEITEMS, tag="blc") == by_tag["response"]["body"]
    assert client.list_line_items(LINEITEMS, resource_link_id="1") == by_link["response"]["body"]
    assert len(token_calls(rsps)) == 1


def test_list_line_items_follows_link_next(rsps, client):
    token_answer(rsps)
    items = load("ags-lineitems-get-after-create")["response"]["body"]
    nxt = LINEITEMS + "&limit=2&from=2"
    rsps.add(responses.GET, LINEITEMS + "&limit=2", json=items[:2], headers={"Link": f'<{nxt}>; rel="next"'})
    rsps.add(responses.GET, nxt, json=items[2:])
    assert client.list_line_items(LINEITEMS, limit=2) == items


def test_get_line_item_uses_lineitem_media_type(rsps, client):
    token_answer(rsps)
    fixture = replay(rsps, "ags-lineitem-get-deeplinked")
    assert client.get_line_item(fixture["request"]["url"])["resourceLinkId"] == "2"


def test_find_or_create_finds_existing_item(rsps, client):
    token_answer(rsps)
    replay(rsps, "ags-lineitems-get-filter-resource_id")
    item = client.find_or_create_line_item(LINEITEMS, "Project report", 100, "report", "blc")
    assert item["id"].endswith("/lineitems/5/lineitem?type_id=1")
    assert [c.request.method for c in rsps.calls] == ["POST", "GET"]


def test_find_or_create_creates_missing_item(rsps, client):
    token_answer(rsps)
    rsps.add(responses.GET, LINEITEMS + "&resource_id=report", json=[
        {**load("ags-lineitems-get-filter-resource_id")["response"]["body"][0], "tag": "other"}])
    created = replay(rsps, "ags-lineitems-post-create")
    item = client.find_or_create_line_item(LINEITEMS, "Project report", 100, "report", "blc")
    assert item == created["response"]["body"]


def test_update_line_item_puts(rsps, client):
    token_answer(rsps)
    fixture = replay(rsps, "ags-lineitem-put-created")
    assert client.update_line_item(fixture["request"]["url"], fixture["request"]["body"])["label"] == \
        "Project report (final)"


def recorded_time(fixture):
    return datetime.fromisoformat(fixture["request"]["body"]["timestamp"].replace("Z", "+00:00"))


@pytest.mark.parametrize("name", ["ags-score-post-learner1-fullygraded", "ags-score-post-learner2-rescaled",
                                  "ags-score-post-created-lineitem"])
def test_post_score_matches_recording(rsps, client, name):
    token_answer(rsps)
    fixture = replay(rsps, name)
    body = fixture["request"]["body"]
    lineitem = fixture["request"]["url"].replace("/scores?", "?")
    assert client.post_score(lineitem, int(body["userId"]), body["scoreGiven"], body["scoreMaximum"],
                             recorded_time(fixture), comment=body.get("comment")) is None
    assert json.loads(rsps.calls[1].request.body) == body


def test_post_score_pending_omits_score_given(rsps, client):
    token_answer(rsps)
    fixture = replay(rsps, "ags-score-post-learner1-pending", check_request=False)
    client.post_score(LINEITEM, 5, 40, 100, recorded_time(fixture), grading_progress="Pending",
                      activity_progress="Submitted")
    sent = json.loads(rsps.calls[1].request.body)
    assert "scoreGiven" not in sent
    assert sent == {k: v for k, v in fixture["request"]["body"].items() if k != "scoreGiven"}
    assert rsps.calls[1].request.headers["Content-Type"] == "application/vnd.ims.lis.v1.score+json"


def test_stale_timestamp_409_is_already_applied(rsps, client):
    token_answer(rsps)
    fixture = replay(rsps, "ags-score-post-stale-timestamp-409")
    with pytest.raises(LtiServiceError) as err:
        client.post_score(LINEITEM, 5, 10, 100, recorded_time(fixture), comment="Good work on the project")
    e = err.value
    assert (e.status, e.already_applied, e.permanent) == (409, True, True)
    assert e.reason == "Refusing score with an earlier timestamp for item 2 and user 5"
    assert e.reason in str(e)


@pytest.mark.parametrize("name", ["ags-score-error-instructor-user", "ags-score-error-missing-timestamp",
                                  "ags-score-error-wrong-content-type"])
def test_score_errors_keep_the_reason_phrase(rsps, client, name):
    token_answer(rsps)
    fixture = replay(rsps, name, check_request=False)
    with pytest.raises(LtiServiceError) as err:
        client.post_score(LINEITEM, 3, 50, 100, datetime.now(timezone.utc))
    e = err.value
    assert (e.status, e.reason, e.already_applied, e.transient) == (400, fixture["response"]["reason"], False, False)
    assert e.url == fixture["request"]["url"]
    assert rsps.calls[1].request.headers["Content-Type"] == "application/vnd.ims.lis.v1.score+json"


def test_score_timestamp_must_be_aware_and_is_iso_utc():
    with pytest.raises(ValueError):
        iso_timestamp(datetime(2026, 11, 23, 9, 12))
    jakarta = timezone(timedelta(hours=7))
    assert iso_timestamp(datetime(2026, 11, 23, 16, 12, 5, 161000, tzinfo=jakarta)) == "2026-11-23T09:12:05.161Z"


def test_get_results(rsps, client):
    token_answer(rsps)
    every = replay(rsps, "ags-results-get-after-ws-update-grades")
    one = replay(rsps, "ags-results-get-user")
    assert client.get_results(LINEITEM) == every["response"]["body"]
    assert client.get_results(LINEITEM, user_id=5) == one["response"]["body"]


@pytest.mark.parametrize("name", ["ags-error-token-without-ags-scope", "nrps-error-no-token"])
def test_unauthorized_refetches_token_once_then_fails(rsps, client, name):
    token_answer(rsps)
    token_answer(rsps)
    fixture = replay(rsps, name, check_request=False)
    call = client.get_line_item if name.startswith("ags") else client.get_members
    with pytest.raises(LtiServiceError) as err:
        call(fixture["request"]["url"])
    assert (err.value.status, err.value.reason, err.value.permanent) == (401, "Unauthorized", True)
    assert len(token_calls(rsps)) == 2 and len(rsps.calls) == 4
    assert "REDACTED" not in str(err.value)


def test_wrong_accept_answers_are_errors(rsps, client):
    token_answer(rsps)
    fixture = replay(rsps, "nrps-error-default-accept", check_request=False)
    with pytest.raises(LtiServiceError) as err:
        client.get_members(MEMBERSHIPS)
    assert err.value.reason == fixture["response"]["reason"]
    assert rsps.calls[1].request.headers["Accept"] == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@pytest.mark.parametrize("name,kwargs", [
    ("nrps-membership", {}),
    ("nrps-membership-rlid", {"rlid": "1"}),
    ("nrps-membership-role-instructor", {"role": "Instructor"}),
    ("nrps-membership-role-learner", {"role": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"}),
])
def test_get_members(rsps, client, name, kwargs):
    token_answer(rsps)
    fixture = replay(rsps, name)
    assert client.get_members(MEMBERSHIPS, **kwargs) == fixture["response"]["body"]


def test_get_members_follows_link_pages(rsps, client):
    token_answer(rsps)
    replay(rsps, "nrps-membership-limit2")
    replay(rsps, "nrps-membership-limit2-page2")
    everyone = load("nrps-membership")["response"]["body"]
    seen = load("nrps-membership-limit2")["response"]["body"]["members"] + \
        load("nrps-membership-limit2-page2")["response"]["body"]["members"]
    rest = [m for m in everyone["members"] if m not in seen]
    rsps.add(responses.GET, MEMBERSHIPS + "?limit=2&from=4", json={**everyone, "members": rest})
    members = client.get_members(MEMBERSHIPS, limit=2)
    assert sorted(m["user_id"] for m in members["members"]) == sorted(m["user_id"] for m in everyone["members"])
    assert members["context"] == everyone["context"] and len(rsps.calls) == 4


def test_network_failure_is_transient(rsps, client):
    token_answer(rsps)
    rsps.add(responses.GET, LINEITEM, body=requests.ConnectTimeout("timed out"))
    rsps.add(responses.GET, LINEITEM, status=503, body="busy", headers={"Retry-After": "30"})
    with pytest.raises(LtiServiceError) as err:
        client.get_line_item(LINEITEM)
    assert (err.value.status, err.value.transient) == (None, True)
    with pytest.raises(LtiServiceError) as err:
        client.get_line_item(LINEITEM)
    assert (err.value.status, err.value.transient, err.value.retry_after) == (503, True, 30.0)
