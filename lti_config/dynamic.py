"""LTI Dynamic Registration: fetch and check the platform's configuration, register, store the result."""
from __future__ import annotations

from urllib.parse import urlparse

import requests

from lms_bridge.db import lti as q

from . import tool
from .registrations import InvalidRegistration, check_url, origin


class RegistrationFailed(Exception):
    """The platform's configuration or its answer to our registration was not usable."""


def fetch_configuration(session: requests.Session, url: str, *, allow_insecure=False, timeout=15) -> dict:
    """GET the openid-configuration and check it: issuer on the URL's origin, HTTPS unless loopback."""
    try:
        check_url("openid_configuration", url, allow_insecure)
    except InvalidRegistration as e:
        raise RegistrationFailed(str(e)) from None
    try:
        resp = session.get(url, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as e:
        raise RegistrationFailed(f"could not fetch the platform configuration at {url}: {type(e).__name__}") from None
    if resp.status_code != 200:
        raise RegistrationFailed(f"the platform configuration at {url} answered HTTP {resp.status_code}")
    try:
        conf = resp.json()
    except ValueError:
        raise RegistrationFailed(f"the platform configuration at {url} is not JSON") from None
    if not isinstance(conf, dict):
        raise RegistrationFailed("the platform configuration is not a JSON object")
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                           "registration_endpoint") if not conf.get(k)]
    if missing:
        raise RegistrationFailed(f"the platform configuration lacks {', '.join(missing)}")
    if origin(conf["issuer"]) != origin(url):
        raise RegistrationFailed(f"issuer {conf['issuer']} does not match the configuration URL's origin {origin(url)}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        try:
            check_url(key, conf[key], allow_insecure)
        except InvalidRegistration as e:
            raise RegistrationFailed(str(e)) from None
    return conf


def register(session: requests.Session, db, *, openid_configuration: str, registration_token: str | None,
             tool_url: str, allow_insecure=False, timeout=15) -> dict:
    """Run the whole exchange; returns the stored platform row with its deployment id."""
    conf = fetch_configuration(session, openid_configuration, allow_insecure=allow_insecure, timeout=timeout)
    body = tool.registration_request(tool_url, urlparse(tool_url).netloc)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        resp = session.post(conf["registration_endpoint"], json=body, headers=headers, timeout=timeout)
    except requests.RequestException as e:
        raise RegistrationFailed(f"the platform's registration endpoint did not answer: {type(e).__name__}") from None
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if resp.status_code not in (200, 201) or not isinstance(answer, dict) or not answer.get("client_id"):
        if isinstance(answer, dict):
            detail = answer.get("error_description") or answer.get("error") or "no client_id in the answer"
        else:
            detail = resp.text[:200]
        raise RegistrationFailed(f"the platform refused the registration (HTTP {resp.status_code}): {detail}")
    lti = answer.get("https://purl.imsglobal.org/spec/lti-tool-configuration") or {}
    deployment_id = str(lti.get("deployment_id") or "1")
    client_id = str(answer["client_id"])
    existing = q.find_platform(db, conf["issuer"], client_id)
    if existing:
        platform_id = existing["id"]
    else:
        platform_conf = conf.get("https://purl.imsglobal.org/spec/lti-platform-configuration") or {}
        platform_id = q.add_platform(
            db, issuer=conf["issuer"], client_id=client_id, name=platform_conf.get("product_family_code", ""),
            auth_login_url=conf["authorization_endpoint"], auth_token_url=conf["token_endpoint"],
            key_set_url=conf["jwks_uri"], auth_audience=conf.get("authorization_server"))
    q.add_deployment(db, platform_id, deployment_id)
    return {"platform_id": platform_id, "issuer": conf["issuer"], "client_id": client_id,
            "deployment_id": deployment_id}
