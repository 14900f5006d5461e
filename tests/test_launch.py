"""OIDC login and launch: every refusal says why, with a 4xx page, and changes nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import FIXTURES
from lms_bridge.db import connect
from lms_bridge.db import lti as q
from lms_bridge.sandbox import platform as sp
from lms_bridge.sandbox import issuer
from lti_config.registrations import add_platform

C = "https://purl.imsglobal.org/spec/lti/claim/"


def start_login(client, user="5", rl="1"):
    """Run initiation + tool login; return (state, nonce) the tool asked the platform to use."""
    from conftest import form_fields

    _, init = form_fields(client.get(f"/sandbox/launch/{user}/{rl}").get_data(as_text=True))
    resp = client.post("/lti/login", data=init)
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    return query["state"][0], query["nonce"][0]


def claims_for(app, nonce, user="5", **changes):
    claims = sp.launch_claims(iss=issuer(app.config["TOOL_URL"]), tool_url=app.config["TOOL_URL"], user_id=user,
                              nonce=nonce, hint={"rl": "1"})
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def launch_with(app, client, claims=None, token=None, state=None, **kw):
    s, nonce = start_login(client)
    if token is None:
        token = sp.sign(app.config["DATA_DIR"], claims(nonce) if callable(claims) else claims_for(app, nonce))
    return client.post("/lti/launch", data={"id_token": token, "state": state or s})


def refused(resp, code, status=400):
    body = resp.get_data(as_text=True)
    assert resp.status_code == status, body
    assert f'data-error="{code}"' in body, body
    return body


def launches_count(app):
    db = connect(app.config["DATABASE_URL"])
    return db.execute("SELECT count(*) FROM launches").fetchone()[0]


def test_valid_launch_redirects_with_launch_token(app, client):
    resp = launch_with(app, client)
    assert resp.status_code == 303
    assert "lt=" in resp.headers["Location"]
    assert launches_count(app) == 1


def test_login_redirect_matches_moodle_auth_request(app, client):
    from conftest import form_fields

    _, init = form_fields(client.get("/sandbox/launch/5/1").get_data(as_text=True))
    resp = client.post("/lti/login", data=init)
    target = urlsplit(resp.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert target.path == "/sandbox/mod/lti/auth.php"
    assert query["redirect_uri"] == "http://localhost/lti/launch"
    assert (query["scope"], query["response_type"], query["response_mode"], query["prompt"]) == \
        ("openid", "id_token", "form_post", "none")
    assert query["login_hint"] == "5" and query["lti_message_hint"] == init["lti_message_hint"]


def test_bad_signature_refused(app, client):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())

    def forged(nonce):
        return claims_for(app, nonce)

    s, nonce = start_login(client)
    token = jwt.encode(forged(nonce), pem, algorithm="RS256", headers={"kid": sp.KID})
    refused(client.post("/lti/launch", data={"id_token": token, "state": s}), "bad_signature")
    assert launches_count(app) == 0


def test_alg_none_refused(app, client):
    s, nonce = start_login(client)
    token = jwt.encode(claims_for(app, nonce), key=None, algorithm="none")
    refused(client.post("/lti/launch", data={"id_token": token, "state": s}), "bad_signature")


def test_expired_refused(app, client):
    past = int(time.time()) - 600
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, iat=past, exp=past + 60)), "expired")


def test_wrong_audience_refused(app, client):
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, aud="someone-else")), "wrong_audience")


def test_unknown_issuer_refused(app, client):
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, iss="https://lms.example.org")),
            "unknown_issuer")


def test_unknown_deployment_refused(app, client):
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, **{C + "deployment_id": "99"})),
            "unknown_deployment")


def test_missing_claims_refused(app, client):
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, **{C + "roles": None})), "missing_claim")
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, **{C + "resource_link": None})),
            "missing_claim")


def _b64(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode()


IN_TEN_MINUTES, IN_FIFTEEN_MINUTES = "+600", "+900"  # made times when the test runs, not at collection (long runs)


@pytest.mark.parametrize("changes, code", [
    ({"iat": IN_TEN_MINUTES, "exp": IN_FIFTEEN_MINUTES}, "expired"),  # issued in the future
    ({"nbf": IN_TEN_MINUTES}, "expired"),
    ({"exp": None}, "missing_claim"),
    ({"iat": None}, "missing_claim"),
    ({"exp": "tomorrow"}, "malformed_claim"),
    ({"aud": ["someone-else", "another"], "azp": "someone-else"}, "wrong_audience"),
])
def test_registered_claims_checked(app, client, changes, code):
    changes = {k: int(time.time()) + int(v) if v in (IN_TEN_MINUTES, IN_FIFTEEN_MINUTES) else v
               for k, v in changes.items()}
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, **changes)), code)
    assert launches_count(app) == 0


def test_id_token_without_nonce_refused(app, client):
    def without_nonce(nonce):
        claims = claims_for(app, nonce)
        del claims["nonce"]
        return claims
    refused(launch_with(app, client, claims=without_nonce), "missing_claim")


def test_audience_list_with_authorized_party_accepted(app, client):
    client_id = q.find_platform(connect(app.config["DATABASE_URL"]), issuer(app.config["TOOL_URL"]))["client_id"]
    resp = launch_with(app, client, claims=lambda n: claims_for(app, n, aud=["another-tool", client_id],
                                                                azp=client_id))
    assert resp.status_code == 303


def test_tampered_payload_and_algorithm_confusion_refused(app, client):
    s, nonce = start_login(client)
    good = sp.sign(app.config["DATA_DIR"], claims_for(app, nonce))
    header, _, signature = good.split(".")
    forged = _b64(json.dumps(claims_for(app, nonce, **{C + "roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"]})).encode())
    refused(client.post("/lti/launch", data={"id_token": f"{header}.{forged}.{signature}", "state": s}),
            "bad_signature")
    # HS256 keyed with the platform's published key: the classic algorithm-confusion forgery
    published = json.dumps(sp.jwks(app.config["DATA_DIR"])).encode()
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": sp.KID}).encode())
    mac = hmac.new(published, f"{hs_header}.{forged}".encode(), hashlib.sha256).digest()
    refused(client.post("/lti/launch", data={"id_token": f"{hs_header}.{forged}.{_b64(mac)}", "state": s}),
            "bad_signature")
    assert launches_count(app) == 0
    # the untouched token still launches: the refusals above did not burn the login
    assert client.post("/lti/launch", data={"id_token": good, "state": s}).status_code == 303


def test_short_platform_key_refused(app, client):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    db = connect(app.config["DATABASE_URL"])
    platform = q.find_platform(db, issuer(app.config["TOOL_URL"]))
    numbers = weak.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "weak", "alg": "RS256", "use": "sig",
           "n": _b64(numbers.n.to_bytes(128, "big")), "e": _b64(numbers.e.to_bytes(3, "big"))}
    q.store_keyset(db, platform["id"], {"keys": [jwk]})
    s, nonce = start_login(client)
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        token = jwt.encode(claims_for(app, nonce), weak, algorithm="RS256", headers={"kid": "weak"})
    refused(client.post("/lti/launch", data={"id_token": token, "state": s}), "bad_signature")


def test_unsupported_message_type_refused(app, client):
    refused(launch_with(app, client, claims=lambda n: claims_for(app, n, **{C + "message_type": "LtiStartProctoring"})),
            "unsupported_message_type")


def test_nonce_must_match_login(app, client):
    refused(launch_with(app, client, claims=lambda n: claims_for(app, "not-the-login-nonce")),
            "nonce_mismatch")


def test_replayed_id_token_refused(app, client):
    s, nonce = start_login(client)
    token = sp.sign(app.config["DATA_DIR"], claims_for(app, nonce))
    assert client.post("/lti/launch", data={"id_token": token, "state": s}).status_code == 303
    refused(client.post("/lti/launch", data={"id_token": token, "state": s}), "replayed")
    assert launches_count(app) == 1


def test_unknown_state_refused(app, client):
    refused(launch_with(app, client, state="made-up-state"), "state_mismatch")


def test_state_cookie_mismatch_refused(app, client):
    s, nonce = start_login(client)
    token = sp.sign(app.config["DATA_DIR"], claims_for(app, nonce))
    client.set_cookie(f"lms_bridge_state_{s[:12]}", "another-browser-state", path="/lti/")
    refused(client.post("/lti/launch", data={"id_token": token, "state": s}), "state_mismatch")


def test_launch_without_cookie_still_works(app):
    """Third-party cookies blocked: the state lives in the database, not in the browser."""
    client = app.test_client(use_cookies=False)
    s, nonce = start_login(client)
    token = sp.sign(app.config["DATA_DIR"], claims_for(app, nonce))
    assert client.post("/lti/launch", data={"id_token": token, "state": s}).status_code == 303


@pytest.mark.parametrize("form", [{}, {"state": "x"}, {"id_token": "not-a-jwt", "state": "x"},
                                  {"id_token": "a.b.c", "state": "x"}, {"error": "login_required"}])
def test_garbage_launch_posts_get_4xx(client, form):
    resp = client.post("/lti/launch", data=form)
    assert 400 <= resp.status_code < 500
    assert "data-error=" in resp.get_data(as_text=True)


@pytest.mark.parametrize("form", [{}, {"iss": "http://localhost/sandbox"},
                                  {"iss": "https://unknown.example", "login_hint": "5", "target_link_uri": "x"},
                                  {"iss": "http://localhost/sandbox", "login_hint": "5", "target_link_uri": "x",
                                   "client_id": "sandbox-client", "lti_deployment_id": "42"}])
def test_bad_logins_refused(client, form):
    resp = client.post("/lti/login", data=form)
    assert resp.status_code == 400
    assert "data-error=" in resp.get_data(as_text=True)


def test_json_clients_get_json_errors(client):
    resp = client.post("/lti/launch", data={}, headers={"Accept": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "missing_id_token"


def test_roles_map_moodle_teachers_and_admins(app, client):
    from lms_bridge.lti.validate import role_of

    for name, expected in (("id_token-learner.json", "learner"), ("id_token-instructor.json", "facilitator"),
                           ("id_token-noneditingteacher.json", "facilitator"), ("id_token-admin.json", "admin")):
        payload = json.loads((FIXTURES / "lti" / name).read_text())["payload"]
        assert role_of(payload[C + "roles"]) == expected, name


def test_activity_from_target_link_uri_when_custom_is_lost(app, client):
    claims = lambda n: claims_for(app, n, **{C + "custom": {}, C + "target_link_uri":  # noqa: E731
                                             "http://localhost/lti/launch?activity=consultations"})
    resp = launch_with(app, client, claims=claims)
    assert resp.status_code == 303
    db = connect(app.config["DATABASE_URL"])
    assert db.execute("SELECT activity FROM launches").fetchone()[0] == "consultations"


@responses.activate
def test_real_moodle_login_and_expired_id_token(app):
    """Moodle 4.5.6's recorded login POST is accepted; its recorded id_token verifies but has expired."""
    login = json.loads((FIXTURES / "lti" / "login-initiation-learner.json").read_text())
    launch = json.loads((FIXTURES / "lti" / "id_token-learner.json").read_text())
    certs = json.loads((FIXTURES / "lti" / "platform-jwks.json").read_text())
    certs_body = certs.get("response", {}).get("body", certs)
    iss = login["request"]["form"]["iss"]
    db = connect(app.config["DATABASE_URL"])
    add_platform(db, issuer=iss, client_id=login["request"]["form"]["client_id"],
                 auth_login_url=iss + "/mod/lti/auth.php", auth_token_url=iss + "/mod/lti/token.php",
                 key_set_url=iss + "/mod/lti/certs.php", deployment_id="1")
    app.extensions["lms_bridge_http"] = __import__("requests").Session()
    responses.add(responses.GET, iss + "/mod/lti/certs.php", json=certs_body)
    client = app.test_client()
    resp = client.post("/lti/login", data=login["request"]["form"])
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["client_id"] == [login["request"]["form"]["client_id"]]
    # Make the recorded state/nonce the pending login so only exp stands in the way.
    db.execute("UPDATE oidc_states SET state = ?, nonce = ? WHERE state = ?",
               [launch["state"], launch["payload"]["nonce"], query["state"][0]])
    db.conn.commit()
    resp = client.post("/lti/launch", data={"id_token": launch["id_token"], "state": launch["state"]})
    refused(resp, "expired")
    assert len(responses.calls) == 1
    assert q.get_state(db, launch["state"])["used_at"] is None


def test_platform_storage_replaces_blocked_cookies(app):
    """With lti_storage_target the state is kept in the platform's frame and checked at launch."""
    from conftest import form_fields

    client = app.test_client(use_cookies=False)
    _, init = form_fields(client.get("/sandbox/launch/5/1").get_data(as_text=True))
    page = client.post("/lti/login", data=dict(init, lti_storage_target="_parent"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "lti.put_data" in html
    auth_url = re.search(r'window.location.href = "([^"]+)"', html).group(1).replace("\\u0026", "&")
    query = parse_qs(urlsplit(auth_url).query)
    state, nonce = query["state"][0], query["nonce"][0]
    token = sp.sign(app.config["DATA_DIR"], claims_for(app, nonce))
    first = client.post("/lti/launch", data={"id_token": token, "state": state})
    assert first.status_code == 200 and "lti.get_data" in first.get_data(as_text=True)
    refused(client.post("/lti/launch", data={"id_token": token, "state": state, "lti_storage_state": "other"}),
            "state_mismatch")
    ok = client.post("/lti/launch", data={"id_token": token, "state": state, "lti_storage_state": state})
    assert ok.status_code == 303


def test_key_set_cached_and_refetched_once_for_unknown_kid(app, client):
    calls = []
    session = app.extensions["lms_bridge_http"]
    original = session.get

    def counting_get(url, **kw):
        calls.append(url)
        return original(url, **kw)

    session.get = counting_get
    for _ in range(3):
        assert launch_with(app, client).status_code == 303
    assert [u for u in calls if u.endswith("/certs.php")] == ["http://localhost/sandbox/mod/lti/certs.php"]
    # A token under a kid the platform does not publish: one refetch (after the cooldown), then refusal.
    db = connect(app.config["DATABASE_URL"])
    from datetime import timedelta

    from lms_bridge.db import ts, utcnow

    # Still fresh (within the TTL) but fetched longer ago than the refetch cooldown.
    db.execute("UPDATE platform_keysets SET fetched_at = ?", [ts(utcnow() - timedelta(seconds=60))])
    db.conn.commit()
    s, nonce = start_login(client)
    token = jwt.encode(claims_for(app, nonce), sp._loaded(app.config["DATA_DIR"]), algorithm="RS256",
                       headers={"kid": "rotated-away"})
    calls.clear()
    refused(client.post("/lti/launch", data={"id_token": token, "state": s}), "bad_signature")
    assert len([u for u in calls if u.endswith("/certs.php")]) == 1


def test_launch_token_is_signed_and_expires(app, client, lti, monkeypatch):
    lt = lti.launch(user="5")
    assert client.get(f"/app/home?lt={lt}").status_code == 200
    launch_id, stamp, signature = lt.split(".")
    forged = f"{launch_id[:-1]}{'A' if launch_id[-1] != 'A' else 'B'}.{stamp}.{signature}"
    refused(client.get(f"/app/home?lt={forged}"), "bad_launch_token", status=403)
    refused(client.get(f"/app/home?lt={launch_id}"), "bad_launch_token", status=403)  # the bare id is not enough
    later = time.time() + app.config["LAUNCH_TOKEN_TTL"] + 5
    monkeypatch.setattr(time, "time", lambda: later)
    refused(client.get(f"/app/home?lt={lt}"), "launch_expired", status=401)
