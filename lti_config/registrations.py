"""Platform registrations stored in the database, exposed through pylti1p3's tool-config interface."""
from __future__ import annotations

from urllib.parse import urlparse

from pylti1p3.deployment import Deployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract

from lms_bridge.db import lti as q


class InvalidRegistration(Exception):
    """A registration value an LMS could never work with."""


def check_url(name: str, url: str, allow_insecure: bool = False) -> str:
    parts = urlparse(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRegistration(f"{name} must be an absolute http(s) URL, not {url!r}")
    if parts.scheme == "http" and not (allow_insecure or is_loopback(parts.hostname)):
        raise InvalidRegistration(f"{name} must use HTTPS (plain HTTP is accepted only on loopback): {url}")
    return url


def origin(url: str) -> str:
    p = urlparse(url)
    return f"{p.scheme}://{p.netloc}"


def is_loopback(host: str | None) -> bool:
    return host in ("localhost", "::1") or (host or "").startswith("127.")


def add_platform(db, *, issuer, client_id, auth_login_url, auth_token_url, key_set_url, deployment_id,
                 name="", auth_audience=None, allow_insecure=False) -> int:
    """Manual registration: every URL checked before anything is stored."""
    for label, url in (("issuer", issuer), ("auth login URL", auth_login_url),
                       ("auth token URL", auth_token_url), ("key set URL", key_set_url)):
        check_url(label, url, allow_insecure)
    if not client_id or not str(deployment_id):
        raise InvalidRegistration("client id and deployment id are required")
    existing = q.find_platform(db, issuer, client_id)
    if existing:
        q.add_deployment(db, existing["id"], str(deployment_id))
        return existing["id"]
    return q.add_platform(db, issuer=issuer, client_id=client_id, name=name, auth_login_url=auth_login_url,
                          auth_token_url=auth_token_url, key_set_url=key_set_url, auth_audience=auth_audience,
                          deployment_ids=[str(deployment_id)])


def to_registration(row: dict) -> Registration:
    reg = Registration()
    reg.set_issuer(row["issuer"]).set_client_id(row["client_id"]).set_auth_login_url(row["auth_login_url"])
    reg.set_auth_token_url(row["auth_token_url"]).set_key_set_url(row["key_set_url"])
    if row.get("auth_audience"):
        reg.set_auth_audience(row["auth_audience"])
    return reg


class DatabaseToolConf(ToolConfAbstract):
    """pylti1p3's ToolConf backed by the platforms and deployments tables (several of each)."""

    def __init__(self, db):
        super().__init__()
        self.db = db

    def check_iss_has_one_client(self, iss: str) -> bool:
        return q.find_platform(self.db, iss) is not None

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return not self.check_iss_has_one_client(iss)

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        row = q.find_platform(self.db, iss)
        return to_registration(row) if row else None

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        row = q.find_platform(self.db, iss, client_id)
        return to_registration(row) if row else None

    def find_deployment(self, iss, deployment_id):
        row = q.find_platform(self.db, iss)
        return self._deployment(row, deployment_id)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        return self._deployment(q.find_platform(self.db, iss, client_id), deployment_id)

    def _deployment(self, row, deployment_id):
        if row and q.has_deployment(self.db, row["id"], deployment_id):
            return Deployment().set_deployment_id(deployment_id)
        return None
