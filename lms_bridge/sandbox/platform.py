"""Sandbox platform core: its signing key and JWKS, the OIDC authorization endpoint, launch buttons."""
from __future__ import annotations

import json
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, current_app, render_template, request

from lti_config.keys import public_jwk
from lti_config.registrations import add_platform

from ..db import get_db
from ..db import sandbox as sq
from ..i18n import gettext as _
from . import (CLIENT_ID, COURSE_ID, COURSE_LABEL, COURSE_TITLE, DEPLOYMENT_ID, LINKS, LTI_TYPE_ID, OTHER_COURSES, USERS,
               issuer)
from .services import item_url

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox", template_folder="../templates")
KID = "sandbox-key-1"
C = "https://purl.imsglobal.org/spec/lti/claim/"


class SandboxRefusal(Exception):
    """What Moodle's auth.php would refuse (it answers an error page, not a launch)."""


def _key_path(data_dir: str) -> Path:
    return Path(data_dir) / "sandbox" / "platform.pem"


def private_key(data_dir: str) -> bytes:
    path = _key_path(data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


@lru_cache(maxsize=8)
def _loaded(data_dir: str):
    return serialization.load_pem_private_key(private_key(data_dir), None)


def jwks(data_dir: str) -> dict:
    return {"keys": [public_jwk(_loaded(data_dir), KID)]}


def sign(data_dir: str, claims: dict, kid: str = KID) -> str:
    return jwt.encode(claims, _loaded(data_dir), algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


def ensure_registered(app) -> int:
    """The sandbox's registration in the tool, as an admin would paste it."""
    iss = issuer(app.config["TOOL_URL"])
    from ..db import connect, migrate

    db = connect(app.config["DATABASE_URL"])
    try:
        migrate(db)
        return add_platform(db, issuer=iss, client_id=CLIENT_ID, auth_login_url=iss + "/mod/lti/auth.php",
                            auth_token_url=iss + "/mod/lti/token.php", key_set_url=iss + "/mod/lti/certs.php",
                            deployment_id=DEPLOYMENT_ID, name="Sandbox LMS (test double)", allow_insecure=True)
    finally:
        db.close()


def service_urls(iss: str, course: str = COURSE_ID) -> dict:
    """Each course has its own gradebook and roster URLs, as in Moodle."""
    return {"lineitems": f"{iss}/mod/lti/services.php/{course}/lineitems?type_id={LTI_TYPE_ID}",
            "memberships": f"{iss}/mod/lti/services.php/CourseSection/{course}/bindings/{LTI_TYPE_ID}/memberships"}


def _context(course: object) -> dict:
    if isinstance(course, str) and course in OTHER_COURSES:
        title, label = OTHER_COURSES[course]
        return {"id": course, "label": label, "title": title, "type": ["CourseSection"]}
    return {"id": COURSE_ID, "label": COURSE_LABEL, "title": COURSE_TITLE, "type": ["CourseSection"]}


def launch_claims(*, iss: str, tool_url: str, user_id: str, nonce: str, hint: dict, now: int | None = None,
                  link: tuple[str, str] | None = None, lineitem: str | None = None) -> dict:
    """An id_token payload shaped like Moodle 4.5's (see tests/fixtures/moodle/lti/id_token-*.json).

    `link` is the launched activity (activity key, title) when it is not one of the seeded LINKS;
    `lineitem` the URL of the activity's single gradebook column, which Moodle sends in the AGS claim."""
    user = USERS.get(str(user_id))
    if user is None:
        raise SandboxRefusal("login_hint is not a user of this site")
    now = now or int(time.time())
    context = _context(hint.get("course"))
    urls = service_urls(iss, context["id"])
    mtype = hint.get("type", "LtiResourceLinkRequest")
    claims = {
        "nonce": nonce, "iat": now, "exp": now + 60, "iss": iss, "aud": CLIENT_ID,
        C + "deployment_id": DEPLOYMENT_ID, C + "target_link_uri": tool_url + "/lti/launch", "sub": user.id,
        C + "lis": {"person_sourcedid": "", "course_section_sourcedid": COURSE_LABEL},
        C + "roles": list(user.roles),
        C + "context": context,
        C + "message_type": mtype,
        "given_name": user.given, "family_name": user.family, "name": user.name, "email": user.email,
        C + "ext": {"user_username": user.username, "lms": "moodle-2"},
        C + "launch_presentation": {"locale": str(hint.get("lang") or "en"), "document_target": "iframe",
                                     "return_url": f"{iss}/course/view.php?id={COURSE_ID}"},
        C + "tool_platform": {"product_family_code": "moodle", "version": "2024100706", "guid": "sandbox",
                              "name": "sandbox", "description": "Sandbox LMS (test double)"},
        C + "version": "1.3.0",
        C + "custom": {"user_tz": str(hint.get("tz") or user.timezone)},  # "99": Moodle's site default zone
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": urls["lineitems"]},
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": urls["memberships"], "service_versions": ["1.0", "2.0"]},
    }
    if mtype == "LtiDeepLinkingRequest":
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
            "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["frame", "iframe", "window"],
            "accept_copy_advice": False, "accept_multiple": True, "accept_unsigned": False, "auto_create": False,
            "can_confirm": False, "deep_link_return_url": f"{iss}/deep-link-return", "title": "", "text": ""}
    else:
        rl = str(hint.get("rl", "1"))
        activity, title = link or LINKS.get(rl, ("project_plan", "Activity"))
        claims[C + "resource_link"] = {"title": title, "description": "", "id": rl}
        claims[C + "custom"]["activity"] = activity
        claims[C + "target_link_uri"] = f"{tool_url}/lti/launch?activity={activity}"
        if lineitem:
            claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitem"] = lineitem
        if mtype == "LtiSubmissionReviewRequest":
            claims[C + "for_user"] = {"user_id": str(hint.get("for_user", "5"))}
    return claims


def _data_dir() -> str:
    return current_app.config["DATA_DIR"]


@bp.get("/mod/lti/certs.php")
def certs():
    return current_app.response_class(json.dumps(jwks(_data_dir())), mimetype="application/json")


def _deep_linked(rl: str) -> tuple[str, str] | None:
    """(activity, title) of a link created by a deep-linking response, None when there is none."""
    row = sq.get_link(get_db(), rl) if rl not in LINKS else None
    if row is None:
        return None
    activity = (row["custom"] or {}).get("activity") or parse_qs(urlsplit(row["url"]).query).get("activity", [""])[0]
    return activity, row["title"]


def _link_and_lineitem(hint: dict) -> tuple[tuple[str, str] | None, str | None]:
    """Like Moodle: a launch of an activity with exactly one line item names it (`lineitem`); with none or
    several it names none."""
    if hint.get("type", "LtiResourceLinkRequest") == "LtiDeepLinkingRequest":
        return None, None
    rl = str(hint.get("rl", "1"))
    course = _context(hint.get("course"))["id"]
    items = [i for i in sq.link_lineitems(get_db(), rl) if i["course_id"] == course]
    lineitem = item_url(items[0]["course_id"], items[0]["id"]) if len(items) == 1 else None
    return _deep_linked(rl), lineitem


@bp.route("/mod/lti/auth.php", methods=["GET", "POST"])
def auth():
    """Moodle's auth.php: checks the request, then form-posts the signed id_token to the redirect URI."""
    p = request.values
    tool_url = current_app.config["TOOL_URL"]
    problems = []
    if p.get("scope") != "openid" or p.get("response_type") != "id_token":
        problems.append("invalid_request: scope/response_type")
    if p.get("response_mode") != "form_post" or p.get("prompt") != "none":
        problems.append("invalid_request: response_mode form_post and prompt none are required")
    if p.get("client_id") != CLIENT_ID:
        problems.append("unauthorized_client")
    if p.get("redirect_uri") != tool_url + "/lti/launch":
        problems.append("invalid_request: redirect_uri is not registered")
    if not p.get("nonce") or not p.get("state"):
        problems.append("invalid_request: nonce and state are required")
    try:
        hint = json.loads(p.get("lti_message_hint") or "{}")
    except ValueError:
        hint = None
    if not isinstance(hint, dict):
        problems.append("invalid_request: lti_message_hint")
    if problems:
        return render_template("sandbox/refused.html", problems=problems), 400
    link, lineitem = _link_and_lineitem(hint)
    try:
        claims = launch_claims(iss=issuer(tool_url), tool_url=tool_url, user_id=p.get("login_hint"),
                               nonce=p["nonce"], hint=hint, link=link, lineitem=lineitem)
    except SandboxRefusal as e:
        return render_template("sandbox/refused.html", problems=[str(e)]), 400
    return render_template("lti/autopost.html", action=p["redirect_uri"], title=_("Opening the tool…"),
                           fields={"id_token": sign(_data_dir(), claims), "state": p["state"]})


def initiation_fields(tool_url: str, user_id: str, rl: str | None = None, mtype: str = "LtiResourceLinkRequest",
                      for_user: str | None = None, lang: str | None = None, course: str | None = None,
                      activity: str | None = None, tz: str | None = None) -> dict:
    """What Moodle auto-POSTs to the tool's login URL (see login-initiation-*.json)."""
    hint = {"type": mtype, "launchid": secrets.token_hex(6)}
    target = tool_url + "/lti/launch"
    if rl:
        hint["rl"] = rl
        target += "?activity=" + (activity or LINKS[rl][0])
    if for_user:
        hint["for_user"] = for_user
    if lang:  # Moodle sends the user's language as launch_presentation.locale
        hint["lang"] = lang
    if course:
        hint["course"] = course
    if tz:  # a user on Moodle's default zone gets "99"
        hint["tz"] = tz
    return {"iss": issuer(tool_url), "target_link_uri": target, "login_hint": user_id,
            "lti_message_hint": json.dumps(hint), "client_id": CLIENT_ID, "lti_deployment_id": DEPLOYMENT_ID}


@bp.get("/launch/<user_id>/<rl>")
def start_launch(user_id, rl):
    tool_url = current_app.config["TOOL_URL"]
    deep_linked = _deep_linked(rl)
    if user_id not in USERS or (rl not in LINKS and deep_linked is None):
        return render_template("sandbox/refused.html", problems=["unknown user or activity"]), 404
    return render_template("lti/autopost.html", action=tool_url + "/lti/login", title=_("Opening the tool…"),
                           fields=initiation_fields(tool_url, user_id, rl, lang=request.args.get("lang"),
                                                    course=request.args.get("course"), tz=request.args.get("tz"),
                                                    activity=deep_linked[0] if deep_linked else None))


@bp.get("/deep-link/<user_id>")
def start_deep_link(user_id):
    tool_url = current_app.config["TOOL_URL"]
    if user_id not in USERS:
        return render_template("sandbox/refused.html", problems=["unknown user"]), 404
    return render_template("lti/autopost.html", action=tool_url + "/lti/login", title=_("Opening the tool…"),
                           fields=initiation_fields(tool_url, user_id, mtype="LtiDeepLinkingRequest"))


@bp.get("/")
def index():
    return render_template("sandbox/index.html", users=USERS, links=LINKS, course_title=COURSE_TITLE,
                           tool_url=current_app.config["TOOL_URL"])


def init_app(app):
    app.register_blueprint(bp)
    ensure_registered(app)

