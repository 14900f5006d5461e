"""Fixed LTI endpoints: JWKS, OIDC login, launch, dynamic registration."""
from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

from lti_config import keys
from lti_config.dynamic import RegistrationFailed, register
from lti_config.outbound import Policy
from lti_config.registrations import InvalidRegistration, is_loopback, origin

from . import validate
from ..db import get_db
from ..db import lti as q
from ..db import registration as reg
from ..db import write_transaction
from ..errors import LaunchError
from ..i18n import gettext as _
from .context import issue_token
from .keyset import PlatformKeys

bp = Blueprint("lti", __name__)
log = logging.getLogger("lms_bridge.lti")
STATE_COOKIE = "lms_bridge_state"


def http():
    return current_app.extensions["lms_bridge_http"]


@bp.get("/.well-known/jwks.json")
def jwks():
    resp = jsonify(keys.jwks(get_db(), current_app.config["KEY_GRACE_DAYS"]))
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def _param(name: str) -> str | None:
    value = request.values.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


@bp.route("/lti/login", methods=["GET", "POST"])
def login():
    iss, login_hint, target = _param("iss"), _param("login_hint"), _param("target_link_uri")
    for name, value in (("iss", iss), ("login_hint", login_hint), ("target_link_uri", target)):
        if not value:
            raise LaunchError(f"The login request lacks {name}.", code="missing_parameter")
    db = get_db()
    deployment = _param("lti_deployment_id")
    platform = q.find_platform(db, iss, _param("client_id"), deployment)
    if platform is None:
        code = "unknown_client" if _param("client_id") and q.issuer_known(db, iss) else "unknown_issuer"
        raise LaunchError(f"The platform {iss} is not registered with this tool (or not with this client id).",
                          code=code)
    validate.check_status(platform)
    if deployment and not platform["deployment_known"]:
        raise LaunchError(f"Deployment {deployment!r} of this platform is not registered with this tool.",
                          code="unknown_deployment")
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    storage_target = _param("lti_storage_target")
    q.save_state(db, state=state, nonce=nonce, platform_id=platform["id"], target_link_uri=target,
                 storage_target=storage_target, ttl_seconds=current_app.config["STATE_TTL"])
    params = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
              "client_id": platform["client_id"], "redirect_uri": current_app.config["TOOL_URL"] + "/lti/launch",
              "login_hint": login_hint, "state": state, "nonce": nonce}
    if _param("lti_message_hint"):
        params["lti_message_hint"] = _param("lti_message_hint")
    auth_url = platform["auth_login_url"] + ("&" if "?" in platform["auth_login_url"] else "?") + urlencode(params)
    if storage_target:
        resp = current_app.make_response(render_template(
            "lti/login_storage.html", auth_url=auth_url, state=state, nonce=nonce, target=storage_target,
            platform_origin=origin(platform["auth_login_url"])))
    else:
        resp = redirect(auth_url, 302)
    secure = current_app.config["TOOL_URL"].startswith("https://")
    resp.set_cookie(f"{STATE_COOKIE}_{state[:12]}", state, max_age=current_app.config["STATE_TTL"], httponly=True,
                    secure=secure, samesite="None" if secure else "Lax", path="/lti/")
    return resp


@bp.post("/lti/launch")
def launch():
    id_token, state = _param("id_token"), _param("state")
    if request.form.get("error"):
        raise LaunchError(f"The platform refused the login: {request.form.get('error_description') or request.form['error']}.",
                          code="platform_error")
    if not id_token:
        raise LaunchError("The launch has no id_token.", code="missing_id_token")
    if not state:
        raise LaunchError("The launch has no state.", code="state_mismatch")
    db = get_db()
    row = q.get_state(db, state)
    if row is None:
        raise LaunchError("The login state is unknown or has expired. Please launch again from the LMS.",
                          code="state_mismatch")
    cookie = request.cookies.get(f"{STATE_COOKIE}_{state[:12]}")
    if cookie is not None and not hmac.compare_digest(cookie, state):
        raise LaunchError("The login state does not match this browser's.", code="state_mismatch")
    if cookie is None and row["storage_target"]:
        stored = request.form.get("lti_storage_state")
        if stored is None:
            # No cookie reached us (third-party cookies blocked): ask the platform's storage instead.
            return render_template("lti/launch_storage.html", id_token=id_token, state=state,
                                   target=row["storage_target"],
                                   platform_origin=origin(q.get_platform(db, row["platform_id"])["auth_login_url"]))
        if not hmac.compare_digest(stored, state):
            raise LaunchError("The login state kept by the platform does not match.", code="state_mismatch")
    launch = validate.validate_launch(
        db, id_token=id_token, state_row=row, ttl_seconds=current_app.config["LAUNCH_TOKEN_TTL"],
        keys_for=lambda platform: PlatformKeys(db, http(), platform, current_app.config["PLATFORM_KEYS_TTL"],
                                               current_app.config["HTTP_TIMEOUT"]))
    if log.isEnabledFor(logging.INFO) and log.hasHandlers():  # no record built for a log nobody prints
        log.info("launch accepted: platform=%s type=%s role=%s", launch["platform_id"], launch["message_type"],
                 launch["role"])
    token = issue_token(launch["id"])
    # main.landing, without url_for's rule lookup: the token is URL-safe (base64url and dots)
    resp = redirect(f"{request.script_root}/app/landing?lt={token}", 303)
    resp.delete_cookie(f"{STATE_COOKIE}_{state[:12]}", path="/lti/")
    return resp


def outbound_policy() -> Policy:
    """Registration may only call out where an admin would expect: see `lti_config.outbound`."""
    cfg = current_app.config
    trusted = {origin(u.strip()).lower() for u in str(cfg.get("TEST_PLATFORM") or "").split(",") if u.strip()}
    if cfg.get("SANDBOX_ENABLED") or is_loopback(urlsplit(cfg["TOOL_URL"]).hostname):
        trusted.add(origin(cfg["TOOL_URL"]).lower())  # the sandbox, or a trial install beside its LMS
    return Policy(allow_private=bool(cfg["ALLOW_INSECURE_PLATFORMS"]), trusted_origins=frozenset(trusted),
                  allow_loopback=is_loopback(urlsplit(cfg["TOOL_URL"]).hostname), deadline=float(cfg["HTTP_TIMEOUT"]))


def _sandbox_registration(config_url: str) -> bool:
    """The sandbox LMS (demo and tests only) may register freely."""
    sandbox = origin(current_app.config["TOOL_URL"]) + "/sandbox/"
    return bool(current_app.config.get("SANDBOX_ENABLED")) and config_url.startswith(sandbox)


def _register(status: str):
    config_url, token = _param("openid_configuration"), _param("registration_token")
    if not config_url:
        raise LaunchError(_("Dynamic registration needs the openid_configuration parameter: start it from the "
                            "LMS (Moodle: Site administration > Plugins > External tool > Manage tools)."),
                          code="missing_parameter")
    try:
        result = register(http(), get_db(), openid_configuration=config_url, registration_token=token,
                          tool_url=current_app.config["TOOL_URL"],
                          allow_insecure=current_app.config["ALLOW_INSECURE_PLATFORMS"],
                          timeout=current_app.config["HTTP_TIMEOUT"], status=status, policy=outbound_policy())
    except (RegistrationFailed, InvalidRegistration) as e:
        log.warning("dynamic registration failed: %s", e)
        return None, (render_template("lti/registered.html", error=str(e)), 400)
    return result, None


@bp.get("/lti/register/<code>")
def invited_registration(code):
    """Through a one-time code from `lms-bridge platforms invite`: the platform is active at once."""
    db = get_db()
    if len(code) > 100 or not reg.invite_usable(db, code):
        log.warning("dynamic registration refused: unknown, used or expired invitation")
        return render_template("lti/registered.html", error=_(
            "This registration link is unknown, was used already or has expired. Ask the tool's administrator "
            "for a new one (lms-bridge platforms invite).")), 403
    result, failure = _register("pending")
    if failure:
        return failure
    with write_transaction(db):
        if reg.use_invite(db, code, result["platform_id"]):
            reg.set_status(db, result["platform_id"], "active")
            result["status"] = "active"
    log.info("dynamic registration by invitation: platform %s client %s deployment %s, %s", result["issuer"],
             result["client_id"], result["deployment_id"], result["status"])
    return render_template("lti/registered.html", result=result)


@bp.get("/lti/register")
def dynamic_registration():
    """Without an invitation the platform is stored as pending until `lms-bridge platforms approve ID`."""
    config_url = _param("openid_configuration") or ""
    result, failure = _register("active" if _sandbox_registration(config_url) else "pending")
    if failure:
        return failure
    log.info("dynamic registration: platform %s client %s deployment %s, %s", result["issuer"], result["client_id"],
             result["deployment_id"], result["status"])
    return render_template("lti/registered.html", result=result)
