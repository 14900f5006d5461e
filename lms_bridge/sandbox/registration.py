"""Dynamic registration with the sandbox as the platform: openid-configuration.php and openid-registration.php.

Shapes follow tests/fixtures/moodle/lti/openid-configuration.json and registration-response.json.
"""
from __future__ import annotations

import json
import secrets
import string
import time
from urllib.parse import urlsplit

import jwt
from flask import Blueprint, current_app, request

from ..db import get_db
from ..db import sandbox as sq
from . import issuer
from .platform import KID, jwks, sign

bp = Blueprint("sandbox_registration", __name__, url_prefix="/sandbox/mod/lti")
TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
SCOPE_ORDER = ("https://purl.imsglobal.org/spec/lti-ags/scope/score",
               "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
               "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
               "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
               "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly")


class RegistrationRefused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def registration_token(data_dir: str, client_id: str | None = None, ttl: int = 3600) -> str:
    """The JWT Moodle puts in the registration URL (scope "reg"); its `sub` becomes the new client id."""
    now = int(time.time())
    sub = client_id or "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(15))
    return sign(data_dir, {"sub": sub, "scope": "reg", "iat": now, "exp": now + ttl})


def configuration(iss: str) -> dict:
    return {
        "issuer": iss, "token_endpoint": f"{iss}/mod/lti/token.php",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"], "jwks_uri": f"{iss}/mod/lti/certs.php",
        "authorization_endpoint": f"{iss}/mod/lti/auth.php",
        "registration_endpoint": f"{iss}/mod/lti/openid-registration.php",
        "scopes_supported": ["https://purl.imsglobal.org/spec/lti-bo/scope/basicoutcome", *SCOPE_ORDER[2::-1],
                             SCOPE_ORDER[3], SCOPE_ORDER[4], "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting",
                             "openid"],
        "response_types_supported": ["id_token"], "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "moodle", "version": "4.5.6 (Build: 20250811)",
            "messages_supported": [{"type": "LtiResourceLinkRequest"},
                                   {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]}],
            "variables": ["Context.id", "Context.title", "Context.label", "ResourceLink.id", "ResourceLink.title",
                          "User.id", "User.username", "Person.name.full", "Person.name.given",
                          "Person.name.family", "Person.email.primary", "Person.address.timezone",
                          "Membership.role"]},
    }


@bp.get("/openid-configuration.php")
def openid_configuration():
    iss = issuer(current_app.config["TOOL_URL"])
    return current_app.response_class(json.dumps(configuration(iss)), mimetype="application/json")


def _client_id_from_token(header: str) -> str:
    if not header.startswith("Bearer "):
        raise RegistrationRefused("Missing registration token", 401)
    key = jwt.PyJWK(next(k for k in jwks(current_app.config["DATA_DIR"])["keys"] if k["kid"] == KID)).key
    try:
        claims = jwt.decode(header[7:].strip(), key, algorithms=["RS256"])
    except jwt.PyJWTError:
        raise RegistrationRefused("Invalid registration token", 401) from None
    if claims.get("scope") != "reg" or not claims.get("sub"):
        raise RegistrationRefused("Invalid registration token", 401)
    return str(claims["sub"])


def check_request(body) -> dict:
    """Moodle's checks of the client registration body; returns the tool configuration part."""
    if not isinstance(body, dict):
        raise RegistrationRefused("Invalid request: the body is not a JSON object")
    if "id_token" not in (body.get("response_types") or []):
        raise RegistrationRefused("Must support the id_token response type")
    if not isinstance(body.get("redirect_uris"), list) or not body["redirect_uris"]:
        raise RegistrationRefused("Missing or invalid redirect_uris")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        raise RegistrationRefused("Must use private_key_jwt for token_endpoint_auth_method")
    if body.get("application_type") != "web":
        raise RegistrationRefused("Must use web for application_type")
    for key in ("initiate_login_uri", "jwks_uri"):
        if not body.get(key):
            raise RegistrationRefused(f"Missing {key}")
    conf = body.get(TOOL_CONF)
    if not isinstance(conf, dict) or not conf.get("domain"):
        raise RegistrationRefused("Missing Domain")
    target = conf.get("target_link_uri") or ""
    if not target or urlsplit(target).netloc != conf["domain"]:
        raise RegistrationRefused("Domain does not match target_link_uri")
    return conf


@bp.post("/openid-registration.php")
def openid_registration():
    try:
        client_id = _client_id_from_token(request.headers.get("Authorization", ""))
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            body = None
        conf = check_request(body)
    except RegistrationRefused as e:
        return current_app.response_class(str(e), status=e.status, mimetype="text/plain")
    deployment_id = sq.add_registration(get_db(), client_id, body)
    requested = set((body.get("scope") or "").split())
    claims = ["sub", "iss"] + [c for c in conf.get("claims") or [] if c not in ("sub", "iss")]
    answer = {
        "client_id": client_id, "response_types": ["id_token"], "jwks_uri": body["jwks_uri"],
        "initiate_login_uri": body["initiate_login_uri"], "grant_types": ["client_credentials", "implicit"],
        "redirect_uris": body["redirect_uris"], "application_type": "web",
        "token_endpoint_auth_method": "private_key_jwt", "client_name": body.get("client_name", ""),
        "logo_uri": body.get("logo_uri", ""), "scope": " ".join(s for s in SCOPE_ORDER if s in requested),
        TOOL_CONF: {"version": "1.3.0", "deployment_id": deployment_id, "target_link_uri": conf["target_link_uri"],
                    "domain": conf["domain"], "description": conf.get("description", ""),
                    "messages": [{"type": m["type"], "target_link_uri": m.get("target_link_uri", "")}
                                 for m in conf.get("messages") or []
                                 if isinstance(m, dict) and m.get("type") == "LtiDeepLinkingRequest"],
                    "custom_parameters": conf.get("custom_parameters") or {}, "claims": claims},
    }
    return current_app.response_class(json.dumps(answer), mimetype="application/json")


def init_app(app):
    app.register_blueprint(bp)
