"""Sandbox Moodle REST web services (`/webservice/rest/server.php`), shaped like tests/fixtures/moodle/ws/*.json.

Errors come back with HTTP 200 and {"exception", "errorcode", "message"}; without moodlewsrestformat=json
the answer is Moodle's XML. Effects are stored in the sandbox tables (events, messages, completion, grades).
"""
from __future__ import annotations

import json
import re
import time
from xml.sax.saxutils import escape

from flask import Blueprint, current_app, request

from ..db import get_db, write_transaction
from ..db import lti as lq
from ..db import sandbox as sq
from . import CLIENT_ID, COURSE_ID, COURSE_LABEL, COURSE_TITLE, USERS, issuer
from .wsdata import (CMS, FUNCTIONS, OTHER_MOODLE_FUNCTIONS, WS_USER_ID, WsError, course_module, grade_items,
                     has_capability, invalid_param, missing_course, require_capability)

bp = Blueprint("sandbox_ws", __name__, url_prefix="/sandbox/webservice")
HANDLERS = {}


def handler(name):
    def wrap(fn):
        HANDLERS[name] = fn
        return fn
    return wrap


def unflatten(pairs) -> dict:
    """PHP form fields (`events[0][name]=x`) to nested dicts; numeric-keyed dicts become lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise WsError("core\\exception\\invalid_parameter_exception", "invalidparameter",
                              "Invalid parameter value detected")
        node[parts[-1]] = value
    return _listify(root)


def _listify(node):
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _int(params: dict, name: str, default=None) -> int:
    value = params.get(name, default)
    if value is None or not re.fullmatch(r"-?\d+", str(value)):
        raise invalid_param()
    return int(value)


def known_user(db, user_id) -> bool:
    return str(user_id) in USERS or sq.synthetic_user(db, str(user_id)) is not None


@handler("core_webservice_get_site_info")
def site_info(db, params):
    from .quiz import site_functions as quiz_functions

    site = issuer(current_app.config["TOOL_URL"])
    return {"sitename": "Sandbox LMS", "username": "lmsbridge", "firstname": "LMS", "lastname": "Bridge",
            "fullname": "LMS Bridge", "lang": "en", "userid": WS_USER_ID, "siteurl": site,
            "userpictureurl": f"{site}/theme/image.php/boost/core/1795424472/u/f1",
            "functions": [{"name": n, "version": "2024100706"} for n in (*FUNCTIONS, *quiz_functions(db))],
            "downloadfiles": 0, "uploadfiles": 0, "release": "4.5.6 (Build: 20250811)", "version": "2024100706",
            "mobilecssurl": "", "advancedfeatures": [{"name": "enablecompletion", "value": 1},
                                                     {"name": "messaging", "value": 1}],
            "usercanmanageownfiles": True, "userquota": 104857600, "usermaxuploadfilesize": 67108864,
            "userhomepage": 1, "siteid": 1, "sitecalendartype": "gregorian", "usercalendartype": "gregorian",
            "userissiteadmin": False, "theme": "boost", "limitconcurrentlogins": 0, "policyagreed": 0}


@handler("core_course_get_course_module_by_instance")
def cm_by_instance(db, params):
    module, instance = params.get("module"), _int(params, "instance")
    cmid = next((c for c, cm in CMS.items() if cm["modname"] == module and cm["instance"] == instance), None)
    if cmid is None and module == "lti":
        cmid = next((int(link["id"]) + 4 for link in sq.links(db) if int(link["id"]) == instance), None)
    if cmid is None:
        raise WsError("dml_missing_record_exception", "invalidrecord",
                      "Can't find data record in database table course_modules.")
    if module == "lti" and not has_capability("mod/lti:view"):  # require_login: the activity is hidden to us
        raise WsError("core\\exception\\require_login_exception", "requireloginerror",
                      "Course or activity not accessible. (Activity is hidden)")
    return {"cm": course_module(db, cmid), "warnings": []}


@handler("core_grades_update_grades")
def update_grades(db, params):
    if _int(params, "courseid") != int(COURSE_ID):
        raise missing_course()
    cmid = _int(params, "activityid")
    cm = course_module(db, cmid, missing_ok=True)
    if cm is None or cm["modname"] != "lti":
        raise WsError("core\\exception\\moodle_exception", "invalidcoursemodule", "Invalid course module ID")
    with write_transaction(db):
        for g in params.get("grades") or []:
            if not isinstance(g, dict) or "studentid" not in g:
                raise invalid_param()
            grade = g.get("grade")
            sq.set_ws_grade(db, cmid, str(_int(g, "studentid")), float(grade) if grade not in (None, "") else None)
    return 0


@handler("core_completion_override_activity_completion_status")
def override_completion(db, params):
    userid, cmid, newstate = _int(params, "userid"), _int(params, "cmid"), _int(params, "newstate")
    cm = course_module(db, cmid, missing_ok=True)
    if cm is None:
        raise WsError("dml_missing_record_exception", "invalidcoursemodule", "Invalid course module ID")
    if newstate not in (0, 1):
        raise WsError("core\\exception\\moodle_exception", "err_system",
                      "An internal error occurred in the completion system. (System administrators can enable "
                      "debugging information to see more detail.)")
    tracking = cm["completion"]
    if tracking == 0:
        return {"cmid": cmid, "userid": userid, "state": 0, "timecompleted": 0, "overrideby": None, "tracking": 0}
    if not has_capability("moodle/course:overridecompletion"):
        raise WsError("core\\exception\\required_capability_exception", "nopermission", "error/nopermission")
    now = int(time.time())
    sq.set_completion(db, cmid, str(userid), newstate, WS_USER_ID, now)
    return {"cmid": cmid, "userid": userid, "state": newstate, "timecompleted": now, "overrideby": WS_USER_ID,
            "tracking": tracking}


@handler("core_completion_get_activities_completion_status")
def completion_status(db, params):
    if _int(params, "courseid") != int(COURSE_ID):
        raise missing_course()
    userid = str(_int(params, "userid"))
    if userid != str(WS_USER_ID):
        require_capability("report/progress:view", "View activity completion reports")
    stored = {c["cmid"]: c for c in sq.completion(db, userid)}
    statuses = []
    for cmid in sorted(CMS):
        cm = course_module(db, cmid)
        tracking = cm["completion"]
        if not tracking:
            continue
        row = stored.get(cmid)
        state = row["state"] if row else 0
        statuses.append({"cmid": cmid, "modname": cm["modname"], "instance": cm["instance"], "state": state,
                         "timecompleted": row["timecompleted"] if row else 0, "tracking": tracking,
                         "overrideby": row["overrideby"] if row else None, "valueused": False, "hascompletion": True,
                         "isautomatic": tracking == 2, "istrackeduser": True, "uservisible": True, "details": [],
                         "isoverallcomplete": state == 1})
    return {"statuses": statuses, "warnings": []}


@handler("core_calendar_create_calendar_events")
def create_events(db, params):
    created, now = [], int(time.time())
    with write_transaction(db):
        for e in params.get("events") or []:
            if not isinstance(e, dict) or not e.get("name") or "timestart" not in e:
                raise invalid_param()
            courseid = _int(e, "courseid", 0)
            if courseid not in (0, int(COURSE_ID)):
                raise missing_course()
            event = {"name": e["name"], "description": e.get("description", ""), "format": _int(e, "format", 1),
                     "courseid": courseid, "groupid": _int(e, "groupid", 0), "userid": WS_USER_ID,
                     "eventtype": e.get("eventtype", "user"), "timestart": _int(e, "timestart"),
                     "timeduration": _int(e, "timeduration", 0), "visible": _int(e, "visible", 1),
                     "timemodified": now}
            ev = sq.add_event(db, event)
            created.append({"id": ev["id"], "name": ev["name"], "description": ev["description"],
                            "format": ev["format"], "courseid": ev["courseid"], "groupid": ev["groupid"],
                            "userid": ev["userid"], "modulename": "", "instance": 0, "eventtype": ev["eventtype"],
                            "timestart": ev["timestart"], "timeduration": ev["timeduration"],
                            "visible": ev["visible"], "uuid": "", "sequence": 1, "timemodified": now,
                            "subscriptionid": None})
    return {"events": created, "warnings": []}


@handler("core_calendar_delete_calendar_events")
def delete_events(db, params):
    with write_transaction(db):
        for e in params.get("events") or []:
            if not isinstance(e, dict) or not sq.delete_event(db, _int(e, "eventid")):
                raise WsError("dml_missing_record_exception", "invalidrecord",
                              "Can't find data record in database table event.")
    return None


@handler("core_calendar_get_calendar_events")
def get_events(db, params):
    spec, options = params.get("events") or {}, params.get("options") or {}
    courseids = [int(c) for c in spec.get("courseids") or []] if isinstance(spec, dict) else []
    start = int(options.get("timestart", time.time())) if isinstance(options, dict) else int(time.time())
    end = int(options["timeend"]) if isinstance(options, dict) and options.get("timeend") else None
    rows = sq.events(db, courseids or None, start, end) if courseids else []
    return {"events": [{"id": r["id"], "name": r["name"], "description": r["description"], "format": r["format"],
                        "courseid": r["courseid"], "categoryid": None, "groupid": r["groupid"] or None,
                        "userid": r["userid"], "repeatid": None, "modulename": None, "instance": None,
                        "eventtype": r["eventtype"], "timestart": r["timestart"], "timeduration": r["timeduration"],
                        "visible": r["visible"], "sequence": 1, "timemodified": r["timemodified"],
                        "subscriptionid": None} for r in rows], "warnings": []}


@handler("core_message_send_instant_messages")
def send_messages(db, params):
    out, now = [], int(time.time())
    with write_transaction(db):
        for m in params.get("messages") or []:
            if not isinstance(m, dict) or "touserid" not in m or "text" not in m:
                raise invalid_param()
            to = _int(m, "touserid")
            ref = {"clientmsgid": m["clientmsgid"]} if m.get("clientmsgid") else {}
            if not known_user(db, to):
                out.append({"msgid": -1, **ref, "errormessage": f"You cannot send a message to a user ID ({to}) "
                            "that doesn't exist.", "candeletemessagesforallusers": False})
                continue
            text = m["text"] if m["text"].lstrip().startswith("<") else f"<p>{m['text']}</p>"
            msgid = sq.add_message(db, str(to), text, m.get("clientmsgid"), now)
            out.append({"msgid": msgid, **ref, "text": text, "timecreated": now, "conversationid": to,
                        "useridfrom": WS_USER_ID, "candeletemessagesforallusers": False})
    return out


@handler("gradereport_user_get_grade_items")
def grade_report(db, params):
    if _int(params, "courseid") != int(COURSE_ID):
        raise missing_course()
    userid = _int(params, "userid", 0)
    users = [str(userid)] if userid else [u for u in ("4", "5", "6", "7")] + [r["user_id"] for r in sq.roster(db)]
    return {"usergrades": [grade_items(db, uid) for uid in users], "warnings": []}


@handler("core_enrol_get_enrolled_users")
def enrolled_users(db, params):
    if _int(params, "courseid") != int(COURSE_ID):
        raise missing_course()
    roles = {"3": (3, "editingteacher"), "4": (4, "teacher")}
    site = issuer(current_app.config["TOOL_URL"])
    people = [(u.id, u.username, u.given, u.family) for u in USERS.values() if u.id != "2"]
    people += [(r["user_id"], r["username"], r["given"], r["family"]) for r in sq.roster(db)]
    out = []
    for uid, username, given, family in people:
        roleid, shortname = roles.get(uid, (5, "student"))
        identity = {"email": f"{username}@example.org"} if has_capability("moodle/site:viewuseridentity") else {}
        out.append({"id": int(uid), "username": username, "firstname": given, "lastname": family,
                    "fullname": f"{given} {family}", **identity, "department": "",
                    "firstaccess": 0, "lastaccess": 0, "lastcourseaccess": 0,
                    "profileimageurlsmall": f"{site}/theme/image.php/boost/core/1795424472/u/f2",
                    "profileimageurl": f"{site}/theme/image.php/boost/core/1795424472/u/f1",
                    "roles": [{"roleid": roleid, "name": "", "shortname": shortname, "sortorder": 0}],
                    "enrolledcourses": [{"id": int(COURSE_ID), "fullname": COURSE_TITLE,
                                         "shortname": COURSE_LABEL}]})
    return out


@handler("core_group_get_course_groups")
def course_groups(db, params):
    if _int(params, "courseid") != int(COURSE_ID):
        raise WsError("moodle_exception", "errorcoursecontextnotvalid",
                      "You cannot execute functions in the course context (course id:"
                      f"{params.get('courseid')}). The error message was: Context does not exist")
    require_capability("moodle/course:managegroups", "Manage groups")
    return []


@handler("core_message_get_messages")
def get_messages(db, params):
    """Only the permission rule matters here: another user's messages need moodle/site:readallmessages."""
    to, sender = _int(params, "useridto"), _int(params, "useridfrom", 0)
    if WS_USER_ID not in (to, sender) and not has_capability("moodle/site:readallmessages"):
        raise WsError("core\\exception\\moodle_exception", "accessdenied", "Access denied")
    return {"messages": [], "warnings": []}


def to_xml(value) -> str:
    """Moodle's REST XML: SINGLE for objects, MULTIPLE for lists, VALUE for scalars."""
    if isinstance(value, dict):
        keys = "".join(f'<KEY name="{escape(k)}">{to_xml(v)}</KEY>\n' for k, v in value.items())
        return f"<SINGLE>\n{keys}</SINGLE>\n"
    if isinstance(value, list):
        return "<MULTIPLE>\n" + "".join(to_xml(v) for v in value) + "</MULTIPLE>\n"
    if value is None:
        return '<VALUE null="null"/>\n'
    if isinstance(value, bool):
        value = int(value)
    return f"<VALUE>{escape(str(value))}</VALUE>\n"


def _answer(body, as_json: bool):
    if as_json:
        return current_app.response_class(json.dumps(body), mimetype="application/json")
    head = '<?xml version="1.0" encoding="UTF-8" ?>\n'
    if isinstance(body, dict) and "exception" in body:
        xml = (f'<EXCEPTION class="{escape(body["exception"])}">\n<ERRORCODE>{escape(body["errorcode"])}</ERRORCODE>\n'
               f'<MESSAGE>{escape(body["message"])}</MESSAGE>\n</EXCEPTION>\n')
    else:
        xml = f"<RESPONSE>\n{to_xml(body)}</RESPONSE>\n"
    return current_app.response_class(head + xml, mimetype="application/xml")


@bp.route("/rest/server.php", methods=["GET", "POST"])
def server():
    values = request.values
    as_json = values.get("moodlewsrestformat") == "json"
    db = get_db()
    try:
        if sq.ws_token_user(db, values.get("wstoken", "")) is None:
            raise WsError("core\\exception\\moodle_exception", "invalidtoken", "Invalid token - token not found")
        name = values.get("wsfunction", "")
        if name not in HANDLERS:
            if name in FUNCTIONS or name in OTHER_MOODLE_FUNCTIONS:
                raise WsError("webservice_access_exception", "accessexception", "Access control exception")
            raise WsError("dml_missing_record_exception", "invalidrecord",
                          "Can't find data record in database table external_functions.")
        skip = {"wstoken", "wsfunction", "moodlewsrestformat"}
        params = unflatten([(k, v) for k, v in values.items(multi=True) if k not in skip])
        return _answer(HANDLERS[name](db, params), as_json)
    except WsError as e:
        return _answer(e.body(), as_json)


def link_tool(db, tool_url: str, token: str = sq.DEFAULT_WS_TOKEN) -> int | None:
    """Give the tool the sandbox's web-service URL and token (what `platforms moodle-ws` does for Moodle)."""
    platform = lq.find_platform(db, issuer(tool_url), CLIENT_ID)
    if not platform:
        return None
    sq.set_ws_token(db, token)
    lq.set_moodle_ws(db, platform["id"], issuer(tool_url) + "/webservice/rest/server.php", token, [])
    return platform["id"]


def init_app(app):
    from . import quiz  # registers the mod_quiz_* handlers

    app.register_blueprint(bp)
    app.register_blueprint(quiz.view_bp)
