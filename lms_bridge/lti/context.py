"""The launch a page belongs to, carried as a signed, expiring token instead of a cookie.

Third-party cookies are blocked in many LMS iframes, so every link, form and fetch inside the tool
carries `lt` (query, form field or X-Launch-Token header); the launch itself lives in the database.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from ..db import get_db
from ..db import lti as q
from ..errors import LaunchExpired, NotAuthorized

STAFF = ("facilitator", "admin")


@dataclass
class Launch:
    id: str
    platform_id: int
    deployment_id: str
    context_id: str
    context_title: str
    user_id: str
    user_name: str
    user_email: str
    role: str
    message_type: str
    resource_link_id: str | None
    activity: str | None
    timezone: str | None
    claims: dict
    locale: str | None = None
    token: str = ""

    @property
    def scope(self) -> tuple[int, str, str]:
        """(platform, deployment, context): every query of course data is filtered by it."""
        return (self.platform_id, self.deployment_id, self.context_id)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    @property
    def draft_key(self) -> str:
        """Browser drafts are kept under this: one person on one platform deployment, so the next
        learner on a shared computer never sees the previous one's unsaved text."""
        raw = f"{self.platform_id}\x1f{self.deployment_id}\x1f{self.user_id}".encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    @property
    def display_name(self) -> str:
        return self.user_name or f"User {self.user_id}"


FIELDS = [f for f in Launch.__dataclass_fields__ if f != "token"]


def _signer() -> TimestampSigner:
    return _signer_for(current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _signer_for(secret_key: str) -> TimestampSigner:
    # The launch id is already URL-safe text: sign it as it is (no JSON, no compression).
    return TimestampSigner(secret_key, salt="lms-bridge-launch", digest_method=hashlib.sha256)


def issue_token(launch_id: str) -> str:
    """`<launch id>.<timestamp>.<HMAC-SHA256>`: expires after LAUNCH_TOKEN_TTL, checked by `current_launch`."""
    return _signer().sign(launch_id).decode()


def _presented_token() -> str | None:
    token = request.headers.get("X-Launch-Token") or request.form.get("lt") or request.args.get("lt")
    if not token and request.is_json:
        body = request.get_json(silent=True)
        token = body.get("lt") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None


def current_launch() -> Launch:
    if "launch" in g:
        return g.launch
    token = _presented_token()
    if not token:
        raise LaunchExpired("Open this tool from your course in the LMS: this page needs a launch.",
                            code="no_launch")
    try:
        launch_id = _signer().unsign(token, max_age=current_app.config["LAUNCH_TOKEN_TTL"]).decode()
    except SignatureExpired:
        raise LaunchExpired("Your session in this tool has expired. Open the activity again from your course; "
                            "anything you typed on this page is kept in your browser.") from None
    except BadSignature:
        raise NotAuthorized("This page's launch token is not valid.", code="bad_launch_token") from None
    row = q.get_launch(get_db(), launch_id)
    if row is None:
        raise LaunchExpired("Your session in this tool has expired. Open the activity again from your course.")
    g.launch = Launch(**{f: row[f] for f in FIELDS}, token=token)
    return g.launch


def requires_launch(*roles: str):
    """View decorator: a valid launch, optionally with one of `roles` (learner, facilitator, admin)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            launch = current_launch()
            if roles and launch.role not in roles:
                raise NotAuthorized("This page is for " + " or ".join(roles) + "s of the course.")
            return view(*args, **kwargs)
        return inner
    return wrap
