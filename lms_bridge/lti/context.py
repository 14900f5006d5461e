"""The launch a page belongs to: a signed token with an idle lifetime, renewed while the person is active.

Where the browser keeps a partitioned cookie for the tool inside the LMS frame, the token travels in
that cookie and links carry only `lt=c.<ref>`, a reference that is useless without the cookie. Where
third-party cookies are blocked, links, forms and fetches carry the token itself (query, form field or
X-Launch-Token header) and the page takes it out of the address bar. The launch lives in the database.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import timedelta
from dataclasses import dataclass

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from ..db import get_db, ts, utcnow
from ..db import lti as q
from ..errors import LaunchExpired, NotAuthorized
from ..i18n import gettext as _

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


class _KeptKeySigner(TimestampSigner):
    """Derives its HMAC key once, not for every token it signs or checks."""

    def derive_key(self, secret_key=None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        key = self.__dict__.get("_derived")
        if key is None:
            key = self._derived = super().derive_key()
        return key


@functools.lru_cache(maxsize=8)
def _signer_for(secret_key: str) -> TimestampSigner:
    # The launch id is already URL-safe text: sign it as it is (no JSON, no compression).
    return _KeptKeySigner(secret_key, salt="lms-bridge-launch", digest_method=hashlib.sha256)


def issue_token(launch_id: str) -> str:
    """`<launch id>.<timestamp>.<HMAC-SHA256>`: expires after LAUNCH_TOKEN_TTL, checked by `current_launch`."""
    return _signer().sign(launch_id).decode()


COOKIE_PREFIX = "lmsb_"
REF_PREFIX = "c."


def launch_ref(row) -> str:
    """Names the cookie of one person's launches of one link: stable across relaunches (so cookies do not
    pile up), unguessable without the secret (so a link with it is no use to anyone else)."""
    key = current_app.config["SECRET_KEY"].encode()
    ident = "\x1f".join(str(row[f]) for f in ("platform_id", "deployment_id", "context_id", "user_id",
                                               "resource_link_id", "message_type"))
    return hmac.new(key, ident.encode(), hashlib.sha256).hexdigest()[:24]


def _presented_token() -> str | None:
    token = request.headers.get("X-Launch-Token") or request.form.get("lt") or request.args.get("lt")
    if not token and request.is_json:
        body = request.get_json(silent=True)
        token = body.get("lt") if isinstance(body, dict) else None
    if not isinstance(token, str):
        return None
    if token.startswith(REF_PREFIX):
        token = request.cookies.get(COOKIE_PREFIX + token[len(REF_PREFIX):])
        if not token:
            raise LaunchExpired("Your browser no longer holds this tool's session. Open the activity again from "
                                "your course; anything you typed on this page is kept in your browser.")
    return token


def current_launch() -> Launch:
    if "launch" in g:
        return g.launch
    token = _presented_token()
    if not token:
        raise LaunchExpired("Open this tool from your course in the LMS: this page needs a launch.",
                            code="no_launch")
    idle = current_app.config["LAUNCH_TOKEN_TTL"]
    try:
        launch_id, signed_at = _signer().unsign(token, max_age=idle, return_timestamp=True)
    except SignatureExpired:
        raise LaunchExpired("Your session in this tool has expired. Open the activity again from your course; "
                            "anything you typed on this page is kept in your browser.") from None
    except BadSignature:
        raise NotAuthorized("This page's launch token is not valid.", code="bad_launch_token") from None
    db, now = get_db(), utcnow()
    row = q.get_launch(db, launch_id.decode())
    if row is None or row["created_at"] < ts(now - timedelta(seconds=current_app.config["LAUNCH_MAX_AGE"])):
        raise LaunchExpired("Your session in this tool has expired. Open the activity again from your course.")
    if (now - signed_at).total_seconds() > min(300, idle / 4):
        # Active: a fresh token, and the launch row lives another idle period (one write per few minutes).
        token = issue_token(row["id"])
        q.touch_launch(db, row["id"], ts(now + timedelta(seconds=idle)))
    ref = launch_ref(row)
    cookie = request.cookies.get(COOKIE_PREFIX + ref)
    if cookie != token:
        g.launch_cookie = (COOKIE_PREFIX + ref, token)
    # A browser that sent the cookie keeps it: links then carry the reference, not the credential.
    g.launch = Launch(**{f: row[f] for f in FIELDS}, token=REF_PREFIX + ref if cookie else token)
    return g.launch


def set_launch_cookie(response):
    """after_request: store the (renewed) token in the tool's cookie, partitioned by the LMS site on HTTPS."""
    pending = g.pop("launch_cookie", None)
    if pending is None:
        return response
    name, token = pending
    secure = current_app.config["TOOL_URL"].startswith("https://")
    response.set_cookie(name, token, max_age=current_app.config["LAUNCH_TOKEN_TTL"], path="/", httponly=True,
                        secure=secure, samesite="None" if secure else "Lax", partitioned=secure)
    return response


def requires_launch(*roles: str):
    """View decorator: a valid launch, optionally with one of `roles` (learner, facilitator, admin)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            launch = current_launch()
            if roles and launch.role not in roles:
                if launch.role == "expert":
                    raise NotAuthorized(_("You take part in this course as an expert: you can open the "
                                          "consultation pages for experts (your profile, availability and "
                                          "consultations), not grading, exports, rubrics or learners' projects."),
                                        code="expert_only")
                raise NotAuthorized(_("This page is not open to your role in this course."))
            return view(*args, **kwargs)
        return inner
    return wrap
