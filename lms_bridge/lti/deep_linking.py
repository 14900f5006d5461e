"""Deep Linking: a facilitator picks the tool's activities; the signed response creates them in the LMS."""
from __future__ import annotations

import secrets
import time

from flask import Blueprint, current_app, render_template, request

from lti_config import keys

from . import CLAIM, DL_CLAIM
from .. import activities
from ..db import get_db
from ..db import lti as q
from ..errors import BridgeError
from .context import current_launch, requires_launch

bp = Blueprint("deep_linking", __name__, url_prefix="/lti/deep-link")
TAG = "lms_bridge"


def content_item(tool_url: str, activity: str) -> dict:
    """An ltiResourceLink whose URL names the activity (custom params can be lost) with its grade column."""
    title, maximum = activities.CATALOGUE[activity]
    item = {"type": "ltiResourceLink", "title": title, "text": activities.DESCRIPTIONS[activity],
            "url": f"{tool_url}/lti/launch?activity={activity}", "custom": {"activity": activity}}
    if maximum:
        item["lineItem"] = {"scoreMaximum": maximum, "label": title, "resourceId": activity, "tag": TAG}
    return item


def response_claims(*, client_id: str, issuer: str, deployment_id: str, settings: dict, items: list[dict],
                    now: int | None = None) -> dict:
    now = now or int(time.time())
    claims = {
        "iss": client_id, "aud": issuer, "iat": now, "exp": now + 600, "nonce": secrets.token_urlsafe(16),
        CLAIM + "message_type": "LtiDeepLinkingResponse", CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": deployment_id, DL_CLAIM + "content_items": items,
        DL_CLAIM + "msg": f"Added {len(items)} activit{'y' if len(items) == 1 else 'ies'} from lms_bridge",
    }
    if settings.get("data"):
        claims[DL_CLAIM + "data"] = settings["data"]
    return claims


@bp.get("")
@requires_launch("facilitator", "admin")
def picker():
    launch = current_launch()
    settings = launch.claims.get(DL_CLAIM + "deep_linking_settings") or {}
    return render_template("lti/deep_link_picker.html", launch=launch, catalogue=activities.CATALOGUE,
                           descriptions=activities.DESCRIPTIONS, multiple=settings.get("accept_multiple", True))


@bp.post("")
@requires_launch("facilitator", "admin")
def respond():
    launch = current_launch()
    if launch.message_type != "LtiDeepLinkingRequest":
        raise BridgeError("Activities can only be placed from the LMS's 'add activity' (deep linking) launch.")
    settings = launch.claims.get(DL_CLAIM + "deep_linking_settings") or {}
    chosen = [a for a in request.form.getlist("activity") if a in activities.CATALOGUE]
    if not chosen:
        raise BridgeError("Choose at least one activity to add to the course.", code="nothing_chosen")
    if len(chosen) > 1 and settings.get("accept_multiple") is False:
        raise BridgeError("This LMS accepts one activity at a time: choose only one.", code="one_only")
    platform = q.get_platform(get_db(), launch.platform_id)
    tool_url = current_app.config["TOOL_URL"]
    claims = response_claims(client_id=platform["client_id"], issuer=platform["issuer"],
                             deployment_id=launch.deployment_id, settings=settings,
                             items=[content_item(tool_url, a) for a in chosen])
    jwt = keys.sign(get_db(), current_app.config["DATA_DIR"], claims)
    return render_template("lti/autopost.html", action=settings["deep_link_return_url"], fields={"JWT": jwt})
