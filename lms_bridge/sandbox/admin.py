"""Sandbox pages and controls: gradebook, deep-link return, registration page, fault injection, call counts."""
from __future__ import annotations

import random
import time
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, render_template, request

from ..db import get_db
from ..db import sandbox as sq
from . import CLIENT_ID, COURSE_ID, DEPLOYMENT_ID, issuer
from .registration import registration_token
from .services import AssertionRefused, service_error, verify_tool_jwt

bp = Blueprint("sandbox_admin", __name__, url_prefix="/sandbox")
C = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
FAULTED = ("/sandbox/mod/lti/services.php", "/sandbox/mod/lti/token.php", "/sandbox/webservice")


def call_key(path: str, wsfunction: str | None) -> str:
    """How the sandbox counts a request: token, lineitems, lineitem, scores, results, memberships or ws:<fn>."""
    if path.startswith("/sandbox/webservice"):
        return f"ws:{wsfunction or '?'}"
    if path.endswith("/token.php"):
        return "token"
    for suffix in ("scores", "results", "memberships", "lineitem", "lineitems"):
        if path.rstrip("/").endswith("/" + suffix):
            return suffix
    return "other"


def _fault_response(fault: dict, is_ws: bool):
    kind = fault["kind"]
    if kind == "bad_token":
        if is_ws:
            return jsonify({"exception": "core\\exception\\moodle_exception", "errorcode": "invalidtoken",
                            "message": "Invalid token - token not found"})
        return service_error(401, "Unauthorized")
    if kind == "timeout":
        time.sleep(fault["seconds"] or 0)
        return current_app.response_class("Gateway Timeout", status=504, mimetype="text/plain")
    code = fault["code"] if kind == "status" else 500
    resp = current_app.response_class(f"Sandbox fault: HTTP {code}", status=code, mimetype="text/plain")
    if fault["retry_after"] is not None:
        resp.headers["Retry-After"] = str(fault["retry_after"])
    return resp


def apply_faults():
    """before_request: count the call, then apply the first matching fault rule (consuming its count)."""
    path = request.path
    if not path.startswith(FAULTED):
        return None
    is_ws = path.startswith("/sandbox/webservice")
    wsfunction = request.values.get("wsfunction") if is_ws else None
    db = get_db()
    sq.count_call(db, call_key(path, wsfunction))
    for fault in sq.matching_faults(db, path, wsfunction):
        if fault["kind"] == "latency_ms":
            sq.consume_fault(db, fault["id"])
            time.sleep(fault["seconds"] or 0)
            continue
        if fault["kind"] == "fail_ratio" and random.random() >= (fault["ratio"] or 0):
            continue
        sq.consume_fault(db, fault["id"])
        return _fault_response(fault, is_ws)
    return None


@bp.post("/faults")
def faults():
    """JSON control for benchmarks running a server: {"clear": true} or a rule (target, kind, code, ...)."""
    spec = request.get_json(silent=True) or {}
    db = get_db()
    if spec.get("clear"):
        sq.clear_faults(db)
        return jsonify({"faults": []})
    try:
        sq.set_fault(db, str(spec.get("target", "")), str(spec.get("kind", "")),
                     **{k: spec[k] for k in ("code", "retry_after", "seconds", "ms", "ratio", "count") if k in spec})
    except (sq.InvalidFault, TypeError) as e:
        return jsonify({"error": str(e)}), 400
    return jsonify({"faults": sq.list_faults(db)})


@bp.get("/calls")
def calls():
    return jsonify(sq.call_counts(get_db()))


@bp.get("/gradebook")
def gradebook():
    db = get_db()
    return render_template("sandbox/gradebook.html", rows=sq.gradebook(db), ws_grades=sq.ws_grades(db),
                           completion=sq.completion(db), events=sq.events(db), messages=sq.messages(db),
                           links=sq.links(db), calls=sq.call_counts(db))


@bp.post("/deep-link-return")
def deep_link_return():
    """Moodle's contentitem_return.php: verify the tool's response, then create the links and grade items."""
    iss = issuer(current_app.config["TOOL_URL"])
    problems = []
    try:
        claims = verify_tool_jwt(request.form.get("JWT", ""), [iss])
    except AssertionRefused as e:
        return render_template("sandbox/refused.html", problems=[str(e)]), 400
    if claims.get("iss") != CLIENT_ID:
        problems.append("the response is not from the sandbox's tool (iss)")
    if claims.get(C + "message_type") != "LtiDeepLinkingResponse":
        problems.append("message_type is not LtiDeepLinkingResponse")
    if claims.get(C + "deployment_id") != DEPLOYMENT_ID:
        problems.append("unknown deployment_id")
    items = claims.get(DL + "content_items") or []
    if any(not isinstance(i, dict) or i.get("type") != "ltiResourceLink" for i in items):
        problems.append("only ltiResourceLink items are accepted")
    if problems:
        return render_template("sandbox/refused.html", problems=problems), 400
    db = get_db()
    created = []
    for item in items:
        link_id = sq.add_link(db, item.get("title") or "External tool", item.get("url") or "", item.get("custom") or {})
        line = item.get("lineItem")
        lineitem_id = None
        if isinstance(line, dict) and isinstance(line.get("scoreMaximum"), (int, float)):
            lineitem_id = sq.create_lineitem(db, course_id=COURSE_ID, label=line.get("label") or item.get("title"),
                                             score_maximum=float(line["scoreMaximum"]),
                                             resource_id=line.get("resourceId") or "", tag=line.get("tag") or "",
                                             resource_link_id=link_id)
        created.append({"link_id": link_id, "item": item, "lineitem_id": lineitem_id})
    return render_template("sandbox/deep_link_result.html", created=created, msg=claims.get(DL + "msg"))


@bp.get("/admin/register")
def register_page():
    """Site admin > Manage tools > LTI Advantage: the tool's registration page in an iframe."""
    tool_url = current_app.config["TOOL_URL"].rstrip("/")
    conf = issuer(tool_url) + "/mod/lti/openid-configuration.php"
    src = f"{tool_url}/lti/register?" + urlencode(
        {"openid_configuration": conf, "registration_token": registration_token(current_app.config["DATA_DIR"])})
    return render_template("sandbox/register.html", src=src)


def init_app(app):
    app.register_blueprint(bp)
    app.before_request(apply_faults)
