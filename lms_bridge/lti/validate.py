"""Validate an LTI 1.3 id_token and turn it into a launch record. Plain functions, no Flask."""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import AGS_CLAIM, CLAIM, DL_CLAIM, MESSAGE_TYPES, NRPS_CLAIM
from ..activities import CATALOGUE
from ..db import lti as q
from ..db import registration as reg
from ..db import ts, utcnow
from ..errors import LaunchError
from .identity import role_of  # noqa: F401  (re-exported: the course role lives with the identity rules)

LEEWAY = 5


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _segment(text: str) -> dict:
    if len(text) % 4 == 1 or not _SEGMENT.fullmatch(text):
        raise ValueError("not base64url")
    value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def unverified(id_token: str) -> tuple[dict, dict]:
    """Header and claims, parsed once: they pick the platform and its key, then `verify_signature` checks them."""
    try:
        header_b64, payload_b64, signature = id_token.split(".")
        header, payload = _segment(header_b64), _segment(payload_b64)
        if signature and not _SEGMENT.fullmatch(signature):  # empty with alg "none": refused below
            raise ValueError("signature not base64url")
    except (ValueError, binascii.Error, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LaunchError("The id_token is not a well-formed JWT.", code="malformed_token") from None
    if header.get("alg") != "RS256":
        raise LaunchError(f"The id_token is signed with {header.get('alg')!r}; only RS256 is accepted.",
                          code="bad_signature")
    return header, payload


def audience(payload: dict) -> str:
    aud = payload.get("aud")
    if isinstance(aud, list):
        if len(aud) == 1:
            return aud[0]
        if payload.get("azp") in aud:
            return payload["azp"]
        raise LaunchError("The id_token has several audiences and no authorized party (azp).", code="wrong_audience")
    if not isinstance(aud, str) or not aud:
        raise LaunchError("The id_token has no audience (aud).", code="missing_claim")
    return aud


def find_platform(db, payload: dict) -> dict:
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise LaunchError("The id_token has no issuer (iss).", code="missing_claim")
    deployment = payload.get(CLAIM + "deployment_id")
    platform = q.find_platform(db, iss, audience(payload), deployment if isinstance(deployment, str) else "")
    if platform is None:
        if q.issuer_known(db, iss):
            raise LaunchError("The id_token is addressed to a client id this tool does not know for that platform.",
                              code="wrong_audience")
        raise LaunchError(f"The platform {iss} is not registered with this tool.", code="unknown_issuer")
    check_status(platform)
    return platform


def check_status(platform: dict) -> None:
    """Only an active registration logs anyone in: pending ones wait for `platforms approve`."""
    status = platform.get("status") or "active"
    if status == "pending":
        raise LaunchError(f"This registration of the tool (client id {platform['client_id']}) is pending: the tool's "
                          f"administrator must approve it with `lms-bridge platforms approve {platform['id']}`.",
                          code="platform_pending", status=403)
    if status != "active":
        raise LaunchError(f"This registration of the tool (client id {platform['client_id']}) was removed. Register "
                          "the tool again in the LMS.", code="platform_retired", status=403)


def verify_signature(id_token: str, key, platform: dict, payload: dict) -> dict:
    """RS256 over the token's own bytes, then the registered claims; returns the (now verified) payload.

    `payload` is what `unverified` decoded from the very segment the signature covers.
    """
    signing_input, _, signature = id_token.rpartition(".")
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise LaunchError("The platform's key is not an RSA key of at least 2048 bits.", code="bad_signature")
    try:
        key.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), signing_input.encode("ascii"),
                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        raise LaunchError("The id_token's signature does not verify with the platform's key.",
                          code="bad_signature") from None
    for name in ("exp", "iat", "iss", "aud", "nonce"):
        if payload.get(name) in (None, ""):
            raise LaunchError(f"The id_token lacks the required claim {name!r}.", code="missing_claim")
    times = {name: payload[name] for name in ("exp", "iat", "nbf") if name in payload}
    for name, value in times.items():
        if not _is_time(value):
            raise LaunchError(f"The id_token's {name} claim is not a usable time (seconds since 1970).",
                              code="malformed_claim")
    now = time.time()
    if times["exp"] <= now - LEEWAY:
        raise LaunchError("The launch has expired: the id_token's exp has passed. Please launch again from the LMS.",
                          code="expired")
    if times["iat"] > now + LEEWAY or times.get("nbf", now) > now + LEEWAY:
        raise LaunchError("The id_token is not valid yet (iat in the future).", code="expired")
    if payload["iss"] != platform["issuer"]:
        raise LaunchError("The id_token's issuer does not match the registration.", code="unknown_issuer")
    aud = payload["aud"]
    if platform["client_id"] not in (aud if isinstance(aud, list) else [aud]):
        raise LaunchError("The id_token is not addressed to this tool (wrong audience).", code="wrong_audience")
    return payload


MAX_TIME = 32503680000  # 3000-01-01: far beyond any token, far from datetime's limits
_OBJECTS = {"context": CLAIM + "context", "resource_link": CLAIM + "resource_link", "custom": CLAIM + "custom",
            "launch_presentation": CLAIM + "launch_presentation", "tool_platform": CLAIM + "tool_platform",
            "lis": CLAIM + "lis", "for_user": CLAIM + "for_user", "ext": CLAIM + "ext",
            "deep_linking_settings": DL_CLAIM + "deep_linking_settings", "endpoint (AGS)": AGS_CLAIM,
            "namesroleservice (NRPS)": NRPS_CLAIM}
_TEXTS = ("sub", "name", "given_name", "family_name", "email", CLAIM + "target_link_uri")
_NESTED = {  # claim -> {member: allowed types}
    "context": {"id": (str, int), "title": (str,), "label": (str,), "type": (list,)},
    "resource_link": {"id": (str, int), "title": (str,), "description": (str,)},
    "for_user": {"user_id": (str, int)},
    "launch_presentation": {"locale": (str,), "return_url": (str,), "document_target": (str,)},
    "deep_linking_settings": {"deep_link_return_url": (str,), "accept_multiple": (bool,), "data": (str,)},
    "endpoint (AGS)": {"lineitems": (str,), "lineitem": (str,), "scope": (list,)},
    "namesroleservice (NRPS)": {"context_memberships_url": (str,)},
}


def _is_time(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 <= value <= MAX_TIME)


def _wrong(name: str, expected: str):
    return LaunchError(f"The launch's {name} claim has the wrong type: it must be {expected}.", code="malformed_claim")


def check_types(claims: dict) -> None:
    """Every claim the tool reads has the shape the specification gives it; anything else is a 400 naming it."""
    for name, key in _OBJECTS.items():
        if key in claims and not isinstance(claims[key], dict):
            raise _wrong(name, "a JSON object")
    for key in _TEXTS:
        if key in claims and not isinstance(claims[key], str):
            raise _wrong(key.rsplit("/", 1)[-1], "text")
    roles = claims.get(CLAIM + "roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise _wrong("roles", "a list of texts")
    for name, members in _NESTED.items():
        value = claims.get(_OBJECTS[name])
        if not isinstance(value, dict):
            continue
        for member, types in members.items():
            if member in value and value[member] is not None and (
                    not isinstance(value[member], types) or (bool not in types and isinstance(value[member], bool))):
                raise _wrong(f"{name}.{member}", "text" if str in types else types[0].__name__)
            if isinstance(value.get(member), str) and len(value[member]) > 4096:
                raise _wrong(f"{name}.{member}", "at most 4096 characters")
    scope = (claims.get(AGS_CLAIM) or {}).get("scope")
    if scope is not None and not all(isinstance(x, str) for x in scope):
        raise _wrong("endpoint (AGS).scope", "a list of texts")


def check_claims(claims: dict, platform: dict) -> str:
    """Deployment, version, message type and per-type required claims. Returns the message type.

    `platform` comes from `find_platform`, which looked up these claims' deployment id.
    """
    check_types(claims)
    deployment = claims.get(CLAIM + "deployment_id")
    if not isinstance(deployment, str) or not deployment:
        raise LaunchError("The id_token has no deployment_id claim.", code="missing_claim")
    if not platform["deployment_known"]:
        raise LaunchError(f"Deployment {deployment!r} of this platform is not registered with this tool.",
                          code="unknown_deployment")
    if claims.get(CLAIM + "version") != "1.3.0":
        raise LaunchError("The launch is not LTI version 1.3.0.", code="missing_claim")
    mtype = claims.get(CLAIM + "message_type")
    if mtype not in MESSAGE_TYPES:
        raise LaunchError(f"Message type {mtype!r} is not supported by this tool.", code="unsupported_message_type")
    required = {"sub": claims.get("sub"), "roles": claims.get(CLAIM + "roles"),
                "context": (claims.get(CLAIM + "context") or {}).get("id")}
    if mtype in ("LtiResourceLinkRequest", "LtiSubmissionReviewRequest"):
        required["resource_link"] = (claims.get(CLAIM + "resource_link") or {}).get("id")
    if mtype == "LtiDeepLinkingRequest":
        required["deep_linking_settings"] = (claims.get(DL_CLAIM + "deep_linking_settings") or {}).get(
            "deep_link_return_url")
    if mtype == "LtiSubmissionReviewRequest":
        required["for_user"] = (claims.get(CLAIM + "for_user") or {}).get("user_id")
    for name, value in required.items():
        if value in (None, "", []) or (name == "roles" and not isinstance(value, list)):
            raise LaunchError(f"The launch lacks the required {name} claim.", code="missing_claim")
    return mtype


def activity_of(claims: dict) -> str | None:
    """Custom claim first; else the target link URI's ?activity= (cartridge imports drop custom params)."""
    custom = claims.get(CLAIM + "custom") or {}
    value = custom.get("activity") if isinstance(custom, dict) else None
    if not value:
        query = parse_qs(urlparse(str(claims.get(CLAIM + "target_link_uri") or "")).query)
        value = (query.get("activity") or [None])[0]
    return value if value in CATALOGUE else None


def timezone_hint(claims: dict) -> str | None:
    custom = claims.get(CLAIM + "custom") or {}
    tz = custom.get("user_tz") or custom.get("timezone") if isinstance(custom, dict) else None
    return tz if isinstance(tz, str) and "/" in tz else None  # Moodle's "99" means the site default


def launch_record(claims: dict, platform: dict, mtype: str, ttl_seconds: int) -> dict:
    context = claims.get(CLAIM + "context") or {}
    now = utcnow()
    keep = {k: claims[k] for k in (AGS_CLAIM, NRPS_CLAIM, DL_CLAIM + "deep_linking_settings", CLAIM + "for_user",
                                   CLAIM + "custom", CLAIM + "resource_link", CLAIM + "launch_presentation",
                                   CLAIM + "roles", CLAIM + "target_link_uri", CLAIM + "ext") if k in claims}
    return {
        "id": secrets.token_urlsafe(24),
        "platform_id": platform["id"],
        "deployment_id": claims[CLAIM + "deployment_id"],
        "context_id": str(context["id"]),
        "context_title": str(context.get("title") or context.get("label") or ""),
        "user_id": str(claims["sub"]),
        "user_name": str(claims.get("name") or " ".join(filter(None, [claims.get("given_name"),
                                                                        claims.get("family_name")])) or ""),
        "user_email": str(claims.get("email") or ""),
        "role": role_of(claims[CLAIM + "roles"]),
        "message_type": mtype,
        "resource_link_id": str((claims.get(CLAIM + "resource_link") or {}).get("id") or "") or None,
        "activity": activity_of(claims),
        "timezone": timezone_hint(claims),
        "claims": keep,
        "created_at": ts(now),
        "expires_at": ts(now + timedelta(seconds=ttl_seconds)),
    }


def validate_launch(db, *, id_token: str, state_row: dict, keys_for, ttl_seconds: int) -> dict:
    """Every check of an id_token against the login state it answers. Returns the stored launch."""
    header, payload = unverified(id_token)
    platform = find_platform(db, payload)
    if platform["id"] != state_row["platform_id"]:
        raise LaunchError("The id_token comes from a different platform than the login that started it.",
                          code="state_mismatch")
    claims = verify_signature(id_token, keys_for(platform).key_for(header.get("kid")), platform, payload)
    if not secrets.compare_digest(str(claims.get("nonce")), state_row["nonce"]):
        raise LaunchError("The id_token's nonce does not match the login.", code="nonce_mismatch")
    mtype = check_claims(claims, platform)
    exp = utcnow() + timedelta(seconds=max(60, int(claims["exp"]) - int(utcnow().timestamp()) + LEEWAY))
    launch = launch_record(claims, platform, mtype, ttl_seconds)
    with q.launch_transaction(db):  # one commit: state used, nonce burnt and launch stored together
        if not q.consume_state(db, state_row["state"]):
            raise LaunchError("This login was already used or has expired. Please launch again from the LMS.",
                              code="replayed")
        if not q.use_nonce(db, platform["issuer"], claims["nonce"], exp):
            raise LaunchError("This id_token was already used (replayed nonce).", code="replayed")
        q.save_launch(db, launch)
        if _stale(platform.get("last_launch_at")):
            reg.touch_last_launch(db, platform["id"])
    return launch


def _stale(last: str | None) -> bool:
    """`platforms list` shows the last launch to the minute or so: write it at most every 5 minutes."""
    return last is None or last < ts(utcnow() - timedelta(minutes=5))
