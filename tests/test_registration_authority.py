"""Registration is authorised (one-time invitations, pending until approved), and it cannot be turned against
the tool's own network (no redirects, no private addresses, bounded size and time, no remote body shown)."""
from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from click.testing import CliRunner

from conftest import TOOL_URL, form_fields, make_app
from lms_bridge.db import connect
from lms_bridge.db import lti as lq
from lms_bridge.db import registration as reg
from lms_bridge.sandbox.registration import registration_token
from lti_config import outbound

MOODLE = "https://moodle.example"
CONF = {"issuer": MOODLE, "authorization_endpoint": MOODLE + "/mod/lti/auth.php",
        "token_endpoint": MOODLE + "/mod/lti/token.php", "jwks_uri": MOODLE + "/mod/lti/certs.php",
        "registration_endpoint": MOODLE + "/mod/lti/openid-registration.php"}
ANSWER = {"client_id": "newClient123456",
          "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": "7"}}
PUBLIC = [ipaddress.ip_address("93.184.216.34")]


@pytest.fixture
def public_dns(monkeypatch):
    """Every name resolves to a public address unless a test says otherwise."""
    table = {}
    monkeypatch.setattr(outbound, "resolve", lambda host, port: table.get(host, PUBLIC))
    return table


@pytest.fixture
def cli(app, monkeypatch):
    import lms_bridge.cli as cli_module

    monkeypatch.setattr(cli_module, "_app", lambda **_: app)
    return lambda *args: CliRunner().invoke(cli_module.main, list(args))


def mock_moodle(rsps, conf=None, answer=None, status=200):
    rsps.add(responses.GET, CONF["issuer"] + "/mod/lti/openid-configuration.php", json=conf or CONF)
    return rsps.add(responses.POST, CONF["registration_endpoint"], json=answer or ANSWER, status=status)


def register(client, path="/lti/register", conf_url=MOODLE + "/mod/lti/openid-configuration.php"):
    return client.get(path, query_string={"openid_configuration": conf_url, "registration_token": "rt"})


def platform(db, client_id="newClient123456"):
    return next((p for p in reg.platforms_overview(db) if p["client_id"] == client_id), None)


# --- authorised registration -------------------------------------------------------------------------------
def test_invite_url_registers_an_active_platform_once(app, client, db, cli, public_dns):
    result = cli("platforms", "invite")
    assert result.exit_code == 0, result.output
    url = result.stdout.strip().splitlines()[0]
    assert url.startswith(TOOL_URL + "/lti/register/") and len(url.rsplit("/", 1)[1]) >= 24
    path = urlsplit(url).path
    with responses.RequestsMock() as rsps:
        mock_moodle(rsps)
        page = register(client, path)
    assert page.status_code == 200 and 'data-status="active"' in page.get_data(as_text=True)
    assert platform(db)["status"] == "active" and platform(db)["deployments"] == ["7"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_moodle(rsps, answer=dict(ANSWER, client_id="secondClient999"))
        again = register(client, path)
        assert len(rsps.calls) == 0  # a spent code calls nobody
    assert again.status_code == 403 and platform(db, "secondClient999") is None


def test_an_expired_or_unknown_invitation_is_refused(app, client, db, public_dns):
    reg.add_invite(db, "expired-code-123", hours=0.1)
    db.execute("UPDATE registration_invites SET expires_at = '2000-01-01T00:00:00+00:00'")
    db.conn.commit()
    for code in ("expired-code-123", "never-issued"):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            mock_moodle(rsps)
            assert register(client, f"/lti/register/{code}").status_code == 403
            assert len(rsps.calls) == 0


def test_plain_registration_is_pending_and_logs_nobody_in_until_approved(app, client, db, cli, public_dns):
    with responses.RequestsMock() as rsps:
        mock_moodle(rsps)
        page = register(client)
    html = page.get_data(as_text=True)
    pid = platform(db)["id"]
    assert page.status_code == 200 and 'data-status="pending"' in html
    assert f"lms-bridge platforms approve {pid}" in html
    assert platform(db)["status"] == "pending"
    listing = cli("platforms", "list")
    assert f"{pid}\tpending\t{MOODLE}\tclient newClient123456\tdeployments 7\tlast launch never" in listing.stdout
    login = {"iss": MOODLE, "login_hint": "5", "target_link_uri": TOOL_URL + "/lti/launch",
             "client_id": "newClient123456", "lti_deployment_id": "7"}
    refused = client.post("/lti/login", data=login)
    assert refused.status_code == 403 and "pending" in refused.get_data(as_text=True)
    assert cli("platforms", "approve", str(pid)).exit_code == 0
    assert platform(db)["status"] == "active"
    assert client.post("/lti/login", data=login).status_code == 302


def test_removed_platform_is_retired_or_deleted(app, client, db, cli, public_dns):
    with responses.RequestsMock() as rsps:
        mock_moodle(rsps)
        register(client)
    pid = platform(db)["id"]
    assert "deleted" in cli("platforms", "remove", str(pid)).stdout  # never launched: nothing to keep
    assert platform(db) is None
    sandbox = lq.find_platform(db, TOOL_URL + "/sandbox")
    reg.touch_last_launch(db, sandbox["id"])
    assert "retired" in cli("platforms", "remove", str(sandbox["id"])).stdout
    _, init = form_fields(client.get("/sandbox/launch/5/1").get_data(as_text=True))
    refused = client.post("/lti/login", data=init)
    assert refused.status_code in (400, 403)
    assert cli("platforms", "remove", "999").exit_code != 0
    assert cli("platforms", "approve", "999").exit_code != 0


def test_sandbox_registers_freely(app, client, db):
    token = registration_token(app.config["DATA_DIR"], client_id="dynClient12345a")
    page = register(client, conf_url=TOOL_URL + "/sandbox/mod/lti/openid-configuration.php")
    page = client.get("/lti/register", query_string={
        "openid_configuration": TOOL_URL + "/sandbox/mod/lti/openid-configuration.php", "registration_token": token})
    assert page.status_code == 200 and platform(db, "dynClient12345a")["status"] == "active"


# --- what a registration may call ------------------------------------------------------------------------
def test_registration_checks_issuer_origin_and_https(client, db, public_dns):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_moodle(rsps, conf=dict(CONF, issuer="https://other.example"))
        page = register(client)
        assert page.status_code == 400 and "does not match" in page.get_data(as_text=True)
        plain = register(client, conf_url="http://moodle.example/mod/lti/openid-configuration.php")
        assert plain.status_code == 400 and "HTTPS" in plain.get_data(as_text=True)
        mock_moodle(rsps, conf=dict(CONF, token_endpoint="http://moodle.example/mod/lti/token.php"))
        insecure_endpoint = register(client)
        assert insecure_endpoint.status_code == 400 and "token_endpoint" in insecure_endpoint.get_data(as_text=True)
    assert platform(db) is None


@pytest.fixture
def public_app(tmp_path):
    """A tool on a public URL: loopback and private addresses are off limits for its registration."""
    return make_app(tmp_path, TOOL_URL="https://tool.example")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::1", "::ffff:127.0.0.1"])
def test_registration_refuses_private_addresses_after_resolution(public_app, public_dns, address):
    public_dns["moodle.example"] = [ipaddress.ip_address(address)]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_moodle(rsps)
        page = register(public_app.test_client())
        assert len(rsps.calls) == 0
    assert page.status_code == 400 and "private" in page.get_data(as_text=True)


def test_registration_allows_the_configured_test_platform_and_insecure_mode(tmp_path, public_dns):
    public_dns["moodle.example"] = [ipaddress.ip_address("127.0.0.1")]
    for overrides in ({"TEST_PLATFORM": "https://moodle.example"}, {"ALLOW_INSECURE_PLATFORMS": True}):
        app = make_app(tmp_path / str(len(overrides)) / next(iter(overrides)), TOOL_URL="https://tool.example",
                       **overrides)
        with responses.RequestsMock() as rsps:
            mock_moodle(rsps)
            assert register(app.test_client()).status_code == 200


def test_registration_follows_no_redirect(client, db, public_dns):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, MOODLE + "/mod/lti/openid-configuration.php", status=302,
                 headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        target = rsps.add(responses.GET, "http://169.254.169.254/latest/meta-data/", json=CONF)
        page = register(client)
        assert target.call_count == 0
    assert page.status_code == 400 and "redirect" in page.get_data(as_text=True)


def test_a_refusal_never_shows_the_remote_body(client, db, public_dns):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, MOODLE + "/mod/lti/openid-configuration.php", json=CONF)
        rsps.add(responses.POST, CONF["registration_endpoint"], status=400,
                 body="<html>internal SECRET-BODY-TEXT {token}</html>")
        page = register(client)
    assert page.status_code == 400 and "SECRET-BODY-TEXT" not in page.get_data(as_text=True)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, MOODLE + "/mod/lti/openid-configuration.php", json=CONF)
        rsps.add(responses.POST, CONF["registration_endpoint"], status=400,
                 json={"error": "invalid_client_metadata", "error_description": "SECRET-DESCRIPTION"})
        page = register(client)
    html = page.get_data(as_text=True)
    assert "invalid_client_metadata" in html and "SECRET-DESCRIPTION" not in html


@pytest.mark.parametrize("body", ["[" * 100000 + "]" * 100000, '{"a":' * 5000 + "1" + "}" * 5000, "\xff\xfe",
                                  "not json", json.dumps(dict(CONF, issuer=["x"]))])
def test_malformed_or_deeply_nested_configuration_is_a_4xx(client, public_dns, body):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, MOODLE + "/mod/lti/openid-configuration.php", body=body.encode("latin-1")
                 if body == "\xff\xfe" else body)
        page = register(client)
    assert 400 <= page.status_code < 500


# --- size and time, over a real socket ------------------------------------------------------------------
class Dripping:
    """A server on loopback that sends headers, then `body` in `chunk` pieces every `gap` seconds."""

    def __init__(self, chunk: bytes, gap: float, total: int | None = None, length: int | None = None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.chunk, self.gap, self.total, self.length = chunk, gap, total, length
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/conf"

    def serve(self):
        conn, _ = self.sock.accept()
        try:
            conn.recv(65536)
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if self.length is not None:
                head += f"Content-Length: {self.length}\r\n"
            conn.sendall((head + "\r\n").encode())
            sent = 0
            while not self.stop.is_set() and (self.total is None or sent < self.total):
                conn.sendall(self.chunk)
                sent += len(self.chunk)
                if self.gap:
                    time.sleep(self.gap)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def test_a_dripping_answer_is_cut_at_one_overall_deadline():
    server = Dripping(b" ", gap=0.2, total=40)  # each gap is far below any per-read timeout; 8 s in all
    started = time.monotonic()
    try:
        with pytest.raises(outbound.OutboundRefused, match="longer than"):
            outbound.call(requests.Session(), "GET", server.url, outbound.Policy(allow_private=True, deadline=1.5),
                          what="the platform configuration")
    finally:
        server.close()
    assert time.monotonic() - started < 3


def test_a_huge_answer_is_refused_after_64_kib_without_reading_it_all():
    server = Dripping(b"x" * 65536, gap=0, total=200 * 1024 * 1024)
    try:
        with pytest.raises(outbound.OutboundRefused, match="larger than 64 KiB"):
            outbound.call(requests.Session(), "GET", server.url, outbound.Policy(allow_private=True, deadline=10),
                          what="the platform configuration")
    finally:
        server.close()
    declared = Dripping(b"", gap=0, total=0, length=200 * 1024 * 1024)
    try:
        with pytest.raises(outbound.OutboundRefused, match="larger than"):
            outbound.call(requests.Session(), "GET", declared.url, outbound.Policy(allow_private=True),
                          what="the platform configuration")
    finally:
        declared.close()


def test_parse_json_refuses_depth_before_parsing():
    assert outbound.parse_json(b'{"a": [1, {"b": "[[[[" }]}', "x") == {"a": [1, {"b": "[[[["}]}
    with pytest.raises(outbound.OutboundRefused, match="nested"):
        outbound.parse_json(b"[" * 33 + b"]" * 33, "x")


def test_a_tool_on_loopback_may_register_the_lms_beside_it_on_any_port_but_not_private_ones():
    loop = [ipaddress.ip_address("127.0.0.1")]
    policy = outbound.Policy(allow_loopback=True)
    outbound.check_destination("http://127.0.0.1:8080/mod/lti/openid-configuration.php", policy, lambda h, p: loop)
    with pytest.raises(outbound.OutboundRefused):
        outbound.check_destination("http://10.0.0.8/x", policy, lambda h, p: [ipaddress.ip_address("10.0.0.8")])
    with pytest.raises(outbound.OutboundRefused):
        outbound.check_destination("http://127.0.0.1:8080/x", outbound.Policy(), lambda h, p: loop)


def test_a_registration_url_with_a_broken_port_is_a_400(client):
    page = register(client, conf_url="https://moodle.example:99999999/mod/lti/openid-configuration.php")
    assert page.status_code == 400


# --- web-service credentials belong to the Moodle site ------------------------------------------------------
def test_moodle_ws_credentials_serve_every_client_id_of_the_site(app, client, db, cli, public_dns):
    from lms_bridge.db import sandbox as sq
    from lms_bridge.sandbox import issuer

    iss = issuer(TOOL_URL)
    first = lq.find_platform(db, iss)["id"]
    second = lq.add_platform(db, issuer=iss, client_id="registered-again", auth_login_url=iss + "/mod/lti/auth.php",
                             auth_token_url=iss + "/mod/lti/token.php", key_set_url=iss + "/mod/lti/certs.php",
                             deployment_ids=["3"])
    result = cli("platforms", "moodle-ws", "--issuer", iss, "--url", iss, "--token", sq.DEFAULT_WS_TOKEN)
    assert result.exit_code == 0, result.output
    assert lq.get_moodle_ws(db, first)["token"] == lq.get_moodle_ws(db, second)["token"] == sq.DEFAULT_WS_TOKEN
    listing = cli("platforms", "list").stdout
    assert f"{first}\tactive\t{iss}\tclient sandbox-client" in listing
    assert f"{second}\tactive\t{iss}\tclient registered-again\tdeployments 3\tlast launch never" in listing
    ambiguous = cli("reconcile", "--issuer", iss, "--context", "2")
    assert ambiguous.exit_code != 0 and "--client-id" in ambiguous.output
    assert cli("reconcile", "--issuer", iss, "--client-id", "sandbox-client", "--context", "2").exit_code == 0


def test_only_active_registrations_may_frame_the_tool(app, client, db, cli, public_dns, lti):
    with responses.RequestsMock() as rsps:
        mock_moodle(rsps)
        assert 'data-status="pending"' in register(client).get_data(as_text=True)
    token = lti.launch(user="5")

    def ancestors():
        from lms_bridge import security

        security._origins_cache.clear()
        csp = client.get("/app/projects/", query_string={"lt": token}).headers["Content-Security-Policy"]
        return csp.split("frame-ancestors", 1)[1].split(";")[0].split()

    assert MOODLE not in ancestors()  # pending: it may not frame the tool
    assert cli("platforms", "approve", str(platform(db)["id"])).exit_code == 0
    assert MOODLE in ancestors()


def test_platforms_list_shows_the_last_launch(app, cli, lti):
    assert "last launch never" in cli("platforms", "list").stdout
    lti.launch(user="5")
    line = next(x for x in cli("platforms", "list").stdout.splitlines() if "client sandbox-client" in x)
    assert "last launch never" not in line and "\tlast launch 20" in line
