"""The sandbox course as Moodle's web services see it: course modules, the service's functions, grade items."""
from __future__ import annotations

from . import COURSE_ID, COURSE_LABEL, LINKS, USERS
from ..db import sandbox as sq

WS_USER_ID = 8
# Functions of the sandbox's "lms_bridge" service that it implements (site_info lists exactly these).
FUNCTIONS = (
    "core_webservice_get_site_info", "core_course_get_course_module_by_instance", "core_enrol_get_enrolled_users",
    "core_completion_get_activities_completion_status", "core_completion_override_activity_completion_status",
    "core_grades_update_grades", "gradereport_user_get_grade_items", "core_calendar_create_calendar_events",
    "core_calendar_delete_calendar_events", "core_calendar_get_calendar_events", "core_message_send_instant_messages",
    "core_group_get_course_groups", "core_message_get_messages",
)
# What the README asks of the web-service user's role; a test removes one through the app config
# `SANDBOX_WS_CAPABILITIES` to see `lms-bridge doctor` notice.
CAPABILITIES = ("mod/lti:view", "report/progress:view", "moodle/course:managegroups", "moodle/site:viewuseridentity",
                "moodle/site:readallmessages", "moodle/course:overridecompletion")
# Real Moodle functions outside the sandbox's service: Moodle answers accessexception for these.
OTHER_MOODLE_FUNCTIONS = (
    "core_course_get_courses_by_field", "core_course_get_contents", "core_course_get_course_module",
    "core_user_get_users_by_field", "core_completion_get_course_completion_status",
    "core_completion_update_activity_completion_status_manually", "core_grades_get_gradeitems",
    "mod_lti_get_tool_types_and_proxies", "mod_lti_get_ltis_by_courses",
    "core_user_create_users",
)
# cmid -> module; pages as in the recorded course, then the four LTI activities (instance n -> cmid n + 4).
CMS = {
    2: {"modname": "page", "instance": 1, "name": "Module 1: Human rights basics (manual completion)",
        "completion": 1, "module": 16, "section": 2, "sectionnum": 1},
    3: {"modname": "page", "instance": 2, "name": "Module 2: SDG localisation (completion on view)",
        "completion": 2, "module": 16, "section": 3, "sectionnum": 2},
    4: {"modname": "page", "instance": 3, "name": "Course information (no completion)", "completion": 0,
        "module": 16, "section": 1, "sectionnum": 0},
    **{int(i) + 4: {"modname": "lti", "instance": int(i), "name": title, "completion": 2, "module": 15,
                    "section": 4, "sectionnum": 3} for i, (_a, title) in LINKS.items()},
}


class WsError(Exception):
    """A web-service failure, answered with HTTP 200 and Moodle's exception body."""

    def __init__(self, exception: str, errorcode: str, message: str):
        super().__init__(message)
        self.exception, self.errorcode, self.message = exception, errorcode, message

    def body(self) -> dict:
        return {"exception": self.exception, "errorcode": self.errorcode, "message": self.message}


def require_capability(capability: str, what: str) -> None:
    """Moodle's required_capability_exception when the web-service user's role lacks `capability`."""
    from flask import current_app

    if capability not in current_app.config.get("SANDBOX_WS_CAPABILITIES", CAPABILITIES):
        raise WsError("core\\exception\\required_capability_exception", "nopermissions",
                      f"Sorry, but you do not currently have permissions to do that ({what}).")


def has_capability(capability: str) -> bool:
    from flask import current_app

    return capability in current_app.config.get("SANDBOX_WS_CAPABILITIES", CAPABILITIES)


def invalid_param() -> WsError:
    return WsError("core\\exception\\invalid_parameter_exception", "invalidparameter",
                   "Invalid parameter value detected")


def missing_course() -> WsError:
    return WsError("dml_missing_record_exception", "invalidrecord", "Can't find data record in database table course.")


def course_module(db, cmid: int, missing_ok: bool = False) -> dict | None:
    """The `cm` record of core_course_get_course_module_by_instance; deep-linked links have no completion."""
    cm = CMS.get(cmid)
    if cm is None:
        link = next((lk for lk in sq.links(db) if int(lk["id"]) + 4 == cmid), None)
        if link:
            cm = {"modname": "lti", "instance": int(link["id"]), "name": link["title"], "completion": 0,
                  "module": 15, "section": 4, "sectionnum": 3}
    if cm is None:
        if missing_ok:
            return None
        raise WsError("dml_missing_record_exception", "invalidcoursemodule", "Invalid course module ID")
    return {"id": cmid, "course": int(COURSE_ID), "module": cm["module"], "name": cm["name"],
            "modname": cm["modname"], "instance": cm["instance"], "section": cm["section"],
            "sectionnum": cm["sectionnum"], "groupmode": 0, "groupingid": 0, "completion": cm["completion"],
            "downloadcontent": 1}


def _item(item_id: int, name, itemtype: str, grade, grademax: float, feedback: str = "", **extra) -> dict:
    fmt = (lambda v: f"{v:.2f}")
    item = {"id": item_id, "itemname": name, "itemtype": itemtype, **extra, "locked": False,
            "graderaw": grade, "gradedatesubmitted": None, "gradedategraded": None, "gradehiddenbydate": False,
            "gradeneedsupdate": False, "gradeishidden": False, "gradeislocked": False, "gradeisoverridden": False,
            "gradeformatted": fmt(grade) if grade is not None else "-", "grademin": 0, "grademax": grademax,
            "rangeformatted": f"0&ndash;{grademax:g}",
            "percentageformatted": f"{grade / grademax * 100:.2f} %" if grade is not None and grademax else "-",
            "feedback": feedback, "feedbackformat": 2}
    if grade is None:
        item["status"] = "novalue"
    return item


def grade_items(db, user_id: str) -> dict:
    """One `usergrades` entry of gradereport_user_get_grade_items: LTI activity items, AGS items, course total."""
    user = USERS.get(user_id)
    synthetic = None if user else sq.synthetic_user(db, user_id)
    fullname = user.name if user else (f"{synthetic['given']} {synthetic['family']}" if synthetic else "")
    ws = {g["cmid"]: g["grade"] for g in sq.ws_grades(db, user_id)}
    items = []
    for cmid, cm in CMS.items():
        if cm["modname"] == "lti":
            items.append(_item(cmid, cm["name"], "mod", ws.get(cmid), 100.0, itemmodule="lti",
                               iteminstance=cm["instance"], itemnumber=0, cmid=cmid))
    for row in sq.list_lineitems(db, COURSE_ID):
        grade = sq.get_grade(db, row["id"], user_id)
        score = grade["score"] if grade else None
        items.append(_item(100 + row["id"], row["label"], "manual", score, row["score_maximum"],
                           (grade or {}).get("comment") or "", itemmodule=None, iteminstance=None, itemnumber=0))
    from .quiz import grade_items as quiz_items

    items += quiz_items(db, user_id, _item)
    graded = [i for i in items if i["graderaw"] is not None]
    total = sum(i["graderaw"] for i in graded) if graded else None
    items.append(_item(1, None, "course", total, sum(i["grademax"] for i in items), itemmodule=None,
                       iteminstance=1, itemnumber=None))
    return {"courseid": int(COURSE_ID), "courseidnumber": COURSE_LABEL, "userid": int(user_id),
            "userfullname": fullname, "useridnumber": "", "maxdepth": 2, "gradeitems": items}
