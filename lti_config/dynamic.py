"""LTI Dynamic Registration: fetch and check the platform's configuration, register, store the result.

Every outbound call goes through `outbound.call`: the caller names the configuration URL, so no redirects,
no private addresses, bounded size and time, and the remote body is never shown.
"""
from __future__ import annotations

from urllib.parse import urlparse

import requests

from lms_bridge.db import lti as q
from lms_bridge.db import write_transaction
from lms_bridge.db import registration as reg

from . import tool
from .outbound import OutboundRefused, Policy, call, parse_json
from .registrations import InvalidRegistration, check_url, origin


class RegistrationFailed(Exception):
    """The platform's configuration or its answer to our registration was not usable."""


def fetch_configuration(session: requests.Session, url: str, *, allow_insecure=False, timeout=15,
                        policy: Policy | None = None) -> dict:
    """GET the openid-configuration and check it: issuer on the URL's origin, HTTPS unless loopback."""
    policy = policy or Policy(allow_private=allow_insecure, deadline=timeout)
    try:
        check_url("openid_configuration", url, allow_insecure)
        answer = call(session, "GET", url, policy, what="the platform configuration",
                      headers={"Accept": "application/json"})
        if answer.status != 200:
            raise RegistrationFailed(f"the platform configuration at {url} answered HTTP {answer.status}")
        conf = parse_json(answer.body, "the platform configuration")
    except (InvalidRegistration, OutboundRefused) as e:
        raise RegistrationFailed(str(e)) from None
    if not isinstance(conf, dict):
        raise RegistrationFailed("the platform configuration is not a JSON object")
    keys = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
    missing = [k for k in keys if not conf.get(k)]
    if missing:
        raise RegistrationFailed(f"the platform configuration lacks {', '.join(missing)}")
    wrong = [k for k in keys if not isinstance(conf[k], str)]
    if wrong:
        raise RegistrationFailed(f"the platform configuration's {', '.join(wrong)} must be text")
    if origin(conf["issuer"]) != origin(url):
        raise RegistrationFailed(f"issuer {conf['issuer']} does not match the configuration URL's origin {origin(url)}")
    for key in keys[1:]:
        try:
            check_url(key, conf[key], allow_insecure)
        except InvalidRegistration as e:
            raise RegistrationFailed(str(e)) from None
    return conf


def register(session: requests.Session, db, *, openid_configuration: str, registration_token: str | None,
             tool_url: str, allow_insecure=False, timeout=15, status: str = "active",
             policy: Policy | None = None) -> dict:
    """Run the whole exchange; returns the stored platform row with its deployment id and status.

    `status` is what a new registration gets: 'active' through an invitation, 'pending' otherwise.
    """
    policy = policy or Policy(allow_private=allow_insecure, deadline=timeout)
    conf = fetch_configuration(session, openid_configuration, allow_insecure=allow_insecure, timeout=timeout,
                               policy=policy)
    body = tool.registration_request(tool_url, urlparse(tool_url).netloc)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        resp = call(session, "POST", conf["registration_endpoint"], policy, what="the platform's registration answer",
                    json=body, headers=headers)
    except OutboundRefused as e:
        raise RegistrationFailed(str(e)) from None
    try:
        answer = parse_json(resp.body, "the registration answer")
    except OutboundRefused:
        answer = None
    if resp.status not in (200, 201) or not isinstance(answer, dict) or not answer.get("client_id"):
        detail = "no client_id in the answer"
        if isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"].isidentifier():
            detail = answer["error"][:60]  # an OAuth error code, never free text from the remote side
        raise RegistrationFailed(f"the platform refused the registration (HTTP {resp.status}): {detail}")
    lti = answer.get("https://purl.imsglobal.org/spec/lti-tool-configuration")
    lti = lti if isinstance(lti, dict) else {}
    deployment_id = str(lti.get("deployment_id") or "1")[:255]
    client_id = str(answer["client_id"])[:255]
    with write_transaction(db):  # stored with its status at once: never briefly active
        existing = q.find_platform(db, conf["issuer"], client_id)
        if existing:
            platform_id = existing["id"]
            if status == "active":
                reg.set_status(db, platform_id, "active")
        else:
            platform_conf = conf.get("https://purl.imsglobal.org/spec/lti-platform-configuration")
            name = platform_conf.get("product_family_code", "") if isinstance(platform_conf, dict) else ""
            audience = conf.get("authorization_server")
            platform_id = q.add_platform(
                db, issuer=conf["issuer"], client_id=client_id, name=str(name)[:100],
                auth_login_url=conf["authorization_endpoint"], auth_token_url=conf["token_endpoint"],
                key_set_url=conf["jwks_uri"], auth_audience=audience if isinstance(audience, str) else None)
            reg.set_status(db, platform_id, status)
        q.add_deployment(db, platform_id, deployment_id)
    return {"platform_id": platform_id, "issuer": conf["issuer"], "client_id": client_id,
            "deployment_id": deployment_id, "status": q.get_platform(db, platform_id)["status"]}
