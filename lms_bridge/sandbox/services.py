"""Sandbox LTI services as Moodle 4.5 answers them: token.php, AGS line items/scores/results, NRPS.

Shapes, media types, status codes and reason phrases follow tests/fixtures/moodle/lti/{token,ags,nrps}-*.json.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from urllib.parse import urlencode

import jwt
from flask import Blueprint, current_app, request

from ..db import get_db
from ..db import sandbox as sq
from . import CLIENT_ID, COURSE_ID, COURSE_LABEL, COURSE_TITLE, LTI_TYPE_ID, OTHER_COURSES, USERS, issuer

bp = Blueprint("sandbox_services", __name__, url_prefix="/sandbox/mod/lti")
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
S_LINEITEM, S_LINEITEM_RO, S_SCORE, S_RESULT = (AGS + s for s in ("lineitem", "lineitem.readonly", "score",
                                                                   "result.readonly"))
S_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
GRANTED = (S_LINEITEM, S_LINEITEM_RO, S_SCORE, S_RESULT, S_NRPS)
T_CONTAINER, T_ITEM = "application/vnd.ims.lis.v2.lineitemcontainer+json", "application/vnd.ims.lis.v2.lineitem+json"
T_SCORE, T_RESULTS = "application/vnd.ims.lis.v1.score+json", "application/vnd.ims.lis.v2.resultcontainer+json"
T_NRPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
NRPS_ORDER = ("4", "3", "6", "7", "5")  # Moodle's order in nrps-membership.json; the admin is not enrolled
STAFF = {"2", "3"}
_jwks_cache: dict[str, dict] = {}


class AssertionRefused(Exception):
    """A JWT from the tool that does not verify against its published key set."""


def tool_key(kid: str | None):
    """The tool's public key for `kid` from {TOOL_URL}/.well-known/jwks.json, refetched on an unknown kid."""
    url = current_app.config["TOOL_URL"].rstrip("/") + "/.well-known/jwks.json"
    for attempt in range(2):
        if attempt or url not in _jwks_cache:
            resp = current_app.extensions["lms_bridge_http"].get(url, timeout=10)
            if resp.status_code != 200:
                raise AssertionRefused(f"the tool's key set at {url} answered HTTP {resp.status_code}")
            _jwks_cache[url] = resp.json()
        keys = [k for k in _jwks_cache[url].get("keys", []) if kid is None or k.get("kid") == kid]
        if keys:
            return jwt.PyJWK(keys[0]).key
    raise AssertionRefused("Signature verification failed")


def verify_tool_jwt(token: str, audiences: list[str]) -> dict:
    """Check a JWT the tool signed (client assertion, deep linking response) against its JWKS."""
    try:
        header = jwt.get_unverified_header(token)
        return jwt.decode(token, tool_key(header.get("kid")), algorithms=["RS256"], audience=audiences,
                          options={"require": ["iss", "exp"]})
    except jwt.ExpiredSignatureError:
        raise AssertionRefused("Expired token") from None
    except jwt.InvalidAudienceError:
        raise AssertionRefused("Invalid audience") from None
    except jwt.PyJWTError:
        raise AssertionRefused("Signature verification failed") from None


def _moodle_json(body: dict, status: int = 200):
    """token.php answers JSON labelled text/html."""
    return current_app.response_class(json.dumps(body), status=status, mimetype="text/html")


@bp.post("/token.php")
def token():
    f = request.form
    if f.get("grant_type") != "client_credentials":
        return _moodle_json({"error": "unsupported_grant_type"}, 400)
    if (f.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            or not f.get("client_assertion") or not f.get("scope")):
        return _moodle_json({"error": "invalid_request"}, 400)
    try:
        unverified = jwt.decode(f["client_assertion"], options={"verify_signature": False})
    except jwt.PyJWTError:
        return _moodle_json({"error": "invalid_request"}, 400)
    if unverified.get("iss") != CLIENT_ID or unverified.get("sub") != CLIENT_ID:
        return _moodle_json({"error": "invalid_client"}, 400)
    iss = issuer(current_app.config["TOOL_URL"])
    try:
        claims = verify_tool_jwt(f["client_assertion"], [iss + "/mod/lti/token.php", iss])
    except AssertionRefused as e:
        return _moodle_json({"error": str(e)}, 400)
    db = get_db()
    if not claims.get("jti") or not sq.use_jti(db, claims["jti"], datetime.fromtimestamp(claims["exp"], timezone.utc)):
        return _moodle_json({"error": "invalid_request: the client assertion's jti was used already"}, 400)
    scopes = [s for s in dict.fromkeys(f["scope"].split()) if s in GRANTED]
    if not scopes:
        return _moodle_json({"error": "invalid_scope"}, 400)
    access = secrets.token_hex(16)
    sq.store_token(db, access, CLIENT_ID, scopes)
    return _moodle_json({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                         "scope": " ".join(scopes)})


# --- service plumbing --------------------------------------------------------------------------------
def _relative_url() -> str:
    path = request.path[len("/sandbox"):]
    return path + ("?" + request.query_string.decode() if request.query_string else "")


def service_error(status: int, reason: str, content_type: str | None = None):
    """Moodle's error body for services.php: status, reason and the request echoed."""
    echo = {"method": request.method, "url": _relative_url(), "accept": request.headers.get("Accept", "*/*")}
    if content_type:
        echo["contentType"] = content_type
    resp = current_app.response_class(json.dumps({"status": status, "reason": reason, "request": echo}),
                                      mimetype="application/json")
    resp.status = f"{status} {reason.strip()}"
    return resp


def _reason_only(status: int, reason: str):
    """Score errors: the detail travels only in the HTTP reason phrase, the body is []."""
    resp = current_app.response_class("[]", mimetype=T_SCORE)
    resp.status = f"{status} {' '.join(reason.split())}"
    return resp


def _accepts(media_type: str) -> bool:
    return media_type in [p.split(";")[0].strip() for p in request.headers.get("Accept", "").split(",")]


def _authorized(*any_of: str) -> bool:
    header = request.headers.get("Authorization", "")
    scopes = sq.token_scopes(get_db(), header[7:].strip()) if header.startswith("Bearer ") else None
    return bool(scopes and scopes.intersection(any_of))


def _typed(body, media_type: str, status: int = 200, headers: dict | None = None):
    text = "" if body is None else json.dumps(body)
    return current_app.response_class(text, status=status, mimetype=media_type, headers=headers or {})


def _base() -> str:
    return issuer(current_app.config["TOOL_URL"]) + "/mod/lti/services.php"


def item_url(course: str, item_id) -> str:
    return f"{_base()}/{course}/lineitems/{item_id}/lineitem?type_id={LTI_TYPE_ID}"


def item_json(row: dict) -> dict:
    out = {"id": item_url(row["course_id"], row["id"]), "label": row["label"],
           "scoreMaximum": _number(row["score_maximum"]), "resourceId": row["resource_id"], "tag": row["tag"]}
    if row["resource_link_id"]:
        out["resourceLinkId"] = out["ltiLinkId"] = row["resource_link_id"]
    return out


def _number(value):
    return int(value) if value is not None and float(value).is_integer() else value


def _body() -> dict | None:
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- AGS -----------------------------------------------------------------------------------------------
@bp.route("/services.php/<course>/lineitems", methods=["GET", "POST"])
def lineitems(course):
    db = get_db()
    if request.method == "POST":
        ctype = request.mimetype
        if ctype != T_ITEM:
            return service_error(400, f"No handler found for /{course}/lineitems {ctype}", ctype)
        if not _authorized(S_LINEITEM):
            return service_error(401, "Unauthorized")
        body = _body()
        if course != COURSE_ID and course not in OTHER_COURSES:
            return service_error(404, "Not Found")
        if not body or not body.get("label") or not isinstance(body.get("scoreMaximum"), (int, float)):
            return service_error(400, "Bad Request")
        item_id = sq.create_lineitem(db, course_id=course, label=str(body["label"]),
                                     score_maximum=float(body["scoreMaximum"]),
                                     resource_id=str(body.get("resourceId") or ""), tag=str(body.get("tag") or ""),
                                     resource_link_id=body.get("resourceLinkId"))
        answer = {k: v for k, v in body.items() if k != "id"} | {"id": item_url(course, item_id)}
        return _typed(answer, T_ITEM, 201)
    if not _accepts(T_CONTAINER):
        return service_error(400, "No context or unsupported content type")
    if not _authorized(S_LINEITEM, S_LINEITEM_RO):
        return service_error(401, "Unauthorized")
    a = request.args
    rows = sq.list_lineitems(db, course, resource_id=a.get("resource_id"), tag=a.get("tag"),
                             resource_link_id=a.get("resource_link_id"))
    return _paged([item_json(r) for r in rows], T_CONTAINER, f"{_base()}/{course}/lineitems",
                  {"type_id": LTI_TYPE_ID, **{k: a[k] for k in ("resource_id", "tag", "resource_link_id") if k in a}})


def _paged(items: list, media_type: str, url: str, params: dict, key: str | None = None, envelope=None):
    limit = request.args.get("limit", type=int)
    start = request.args.get("from", 0, type=int)
    headers = {}
    if limit and limit > 0:
        if start + limit < len(items):
            headers["Link"] = f'<{url}?{urlencode({**params, "limit": limit, "from": start + limit})}>; rel="next"'
        items = items[start:start + limit]
    return _typed(envelope(items) if envelope else items, media_type, headers=headers)


def _item_or_404(course, item_id):
    row = sq.get_lineitem(get_db(), course, item_id)
    return row, (None if row else service_error(404, "Not Found"))


@bp.route("/services.php/<course>/lineitems/<int:item_id>/lineitem", methods=["GET", "PUT", "DELETE"])
def lineitem(course, item_id):
    db = get_db()
    if request.method == "GET":
        if not _accepts(T_ITEM):
            return service_error(400, "No context or unsupported content type")
        if not _authorized(S_LINEITEM, S_LINEITEM_RO):
            return service_error(401, "Unauthorized")
        row, missing = _item_or_404(course, item_id)
        return missing or _typed(item_json(row), T_ITEM)
    if request.method == "PUT" and request.mimetype != T_ITEM:
        return service_error(400, f"No handler found for /{course}/lineitems/{item_id}/lineitem {request.mimetype}",
                             request.mimetype)
    if not _authorized(S_LINEITEM):
        return service_error(401, "Unauthorized")
    row, missing = _item_or_404(course, item_id)
    if missing:
        return missing
    if request.method == "DELETE":
        sq.delete_lineitem(db, item_id)
        return current_app.response_class("", status=204)
    body = _body()
    if not body or not body.get("label") or not isinstance(body.get("scoreMaximum"), (int, float)):
        return service_error(400, "Bad Request")
    sq.update_lineitem(db, item_id, label=str(body["label"]), score_maximum=float(body["scoreMaximum"]),
                       resource_id=body.get("resourceId", row["resource_id"]), tag=body.get("tag", row["tag"]))
    return _typed({k: v for k, v in body.items() if k != "id"} | {"id": item_url(course, item_id)}, T_ITEM)


def enrolled_learner(db, user_id: str) -> bool:
    """Users with a graded role: the course's learners (the non-editing teacher too) and the synthetic roster."""
    user = USERS.get(user_id)
    if user:
        return user_id not in STAFF
    return sq.synthetic_user(db, user_id) is not None


def _parse_timestamp(value) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@bp.post("/services.php/<course>/lineitems/<int:item_id>/lineitem/scores")
def scores(course, item_id):
    db = get_db()
    raw = request.get_data(as_text=True)
    if request.mimetype != T_SCORE:
        return service_error(400, f"No handler found for /{course}/lineitems/{item_id}/lineitem/scores "
                                  f" {request.mimetype}", request.mimetype)
    if not _authorized(S_SCORE):
        return service_error(401, "Unauthorized")
    row, missing = _item_or_404(course, item_id)
    if missing:
        return missing
    body = _body()
    needed = ("userId", "timestamp", "gradingProgress", "activityProgress")
    moment = _parse_timestamp(body.get("timestamp")) if body else None
    if not body or any(body.get(k) in (None, "") for k in needed) or moment is None \
            or not enrolled_learner(db, str(body["userId"])):
        return _reason_only(400, "Incorrect score received" + raw)
    user_id = str(body["userId"])
    stored = sq.get_grade(db, item_id, user_id)
    if stored and int(moment.timestamp()) <= int(_parse_timestamp(stored["timestamp"]).timestamp()):
        return _reason_only(409, f"Refusing score with an earlier timestamp for item {item_id} and user {user_id}")
    score = None
    if body["gradingProgress"] == "FullyGraded" and body.get("scoreGiven") is not None:
        given, maximum = float(body["scoreGiven"]), float(body.get("scoreMaximum") or row["score_maximum"])
        score = given / maximum * row["score_maximum"] if maximum else given
    sq.put_grade(db, item_id=item_id, user_id=user_id, score=score, score_maximum=row["score_maximum"],
                 comment=body.get("comment") if score is not None else None, timestamp=moment.isoformat(),
                 activity_progress=body["activityProgress"], grading_progress=body["gradingProgress"])
    return current_app.response_class("", mimetype=T_SCORE)


@bp.get("/services.php/<course>/lineitems/<int:item_id>/lineitem/results")
def results(course, item_id):
    if not _accepts(T_RESULTS):
        return service_error(400, "No context or unsupported content type")
    if not _authorized(S_RESULT):
        return service_error(401, "Unauthorized")
    row, missing = _item_or_404(course, item_id)
    if missing:
        return missing
    base = f"{_base()}/{course}/lineitems/{item_id}/lineitem"
    out = []
    for g in sq.results(get_db(), item_id, request.args.get("user_id")):
        r = {"id": f"{base}/results?type_id={LTI_TYPE_ID}&user_id={g['user_id']}", "userId": g["user_id"]}
        if g["score"]:
            r["resultScore"] = _number(round(g["score"], 5))
        r["resultMaximum"] = _number(row["score_maximum"])
        if g["comment"]:
            r["comment"] = g["comment"]
        r |= {"scoreOf": item_url(course, item_id),
              "timestamp": _parse_timestamp(g["timestamp"]).replace(microsecond=0).isoformat()}
        out.append(r)
    return _paged(out, T_RESULTS, f"{base}/results", {"type_id": LTI_TYPE_ID})


# --- NRPS ----------------------------------------------------------------------------------------------
def members(db) -> list[dict]:
    core = [USERS[u] for u in NRPS_ORDER]
    out = [{"status": "Active", "roles": [u.nrps_role], "user_id": u.id, "lis_person_sourcedid": "", "name": u.name,
            "given_name": u.given, "family_name": u.family, "email": u.email, "ext_user_username": u.username}
           for u in core]
    for r in sq.roster(db):
        out.append({"status": "Active", "roles": ["Learner"], "user_id": r["user_id"], "lis_person_sourcedid": "",
                    "name": f"{r['given']} {r['family']}", "given_name": r["given"], "family_name": r["family"],
                    "email": f"{r['username']}@example.org", "ext_user_username": r["username"]})
    return out


@bp.get("/services.php/CourseSection/<course>/bindings/<type_id>/memberships")
def memberships(course, type_id):
    if not _accepts(T_NRPS):
        accept = request.headers.get("Accept", "")
        return service_error(400, f"No handler found for /CourseSection/{course}/bindings/{type_id}/memberships "
                                  f"{accept} ")
    if not _authorized(S_NRPS):
        return service_error(401, "Unauthorized")
    if course != COURSE_ID and course not in OTHER_COURSES:
        return service_error(404, "Not Found")
    everyone = members(get_db())
    role = request.args.get("role")
    if role:
        short = role.rsplit("#", 1)[-1]
        everyone = [m for m in everyone if short in m["roles"]]
    url = f"{_base()}/CourseSection/{course}/bindings/{type_id}/memberships"
    title, label = OTHER_COURSES.get(course, (COURSE_TITLE, COURSE_LABEL))
    context = {"id": course, "label": label, "title": title}
    return _paged(everyone, T_NRPS, url, {"role": role} if role else {},
                  envelope=lambda page: {"id": url, "context": context, "members": page})


def init_app(app):
    app.register_blueprint(bp)
