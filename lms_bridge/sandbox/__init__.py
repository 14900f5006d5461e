"""The sandbox LMS: a small LTI 1.3 platform and Moodle web-service double for `demo` and the tests.

It is a test double, never mounted by `serve`. It answers with the shapes recorded from Moodle 4.5.6.
"""
from __future__ import annotations

from dataclasses import dataclass

CLIENT_ID = "sandbox-client"
DEPLOYMENT_ID = "1"
COURSE_ID = "2"
COURSE_TITLE = "Blended Learning Course: Localizing Human Rights and SDGs"
COURSE_LABEL = "BLC2021"
# Other courses of the same sandbox site (context id -> title, label): `?course=` on a sandbox launch.
OTHER_COURSES = {"3": ("Blended Learning Course: the next cohort", "BLC2027")}
LTI_TYPE_ID = "1"

MEMBER = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"


@dataclass(frozen=True)
class User:
    id: str
    username: str
    given: str
    family: str
    roles: tuple[str, ...]
    nrps_role: str
    timezone: str

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}"

    @property
    def email(self) -> str:
        return f"{self.username}@example.org"


USERS = {u.id: u for u in (
    User("2", "admin", "Site", "Admin", (INSTITUTION + "Administrator", MEMBER + "Instructor", SYSTEM + "Administrator"),
         "Instructor", "Europe/Stockholm"),
    User("3", "facilitator1", "Fatima", "Facilitator", (MEMBER + "Instructor",), "Instructor", "Europe/Stockholm"),
    User("4", "expert1", "Eun-ji", "Expert", (MEMBER + "Instructor",), "Learner", "Asia/Seoul"),
    User("5", "learner1", "Lina", "Santoso", (MEMBER + "Learner",), "Learner", "Asia/Jakarta"),
    User("6", "learner2", "Teuea", "Tabai", (MEMBER + "Learner",), "Learner", "Pacific/Tarawa"),
    User("7", "learner3", "Asha", "Gurung", (MEMBER + "Learner",), "Learner", "Asia/Kathmandu"),
)}

# mod_lti instance id -> (activity, title); Moodle sends the instance id as resource_link.id
LINKS = {
    "1": ("project_plan", "Course project: project plan"),
    "2": ("project_report", "Course project: project report"),
    "3": ("final_presentation", "Course project: final presentation"),
    "4": ("consultations", "Expert consultations"),
    "5": ("home", "lms_bridge: course home"),
}


def issuer(tool_url: str) -> str:
    return tool_url.rstrip("/") + "/sandbox"


def init_app(app):
    from . import admin, platform, registration, services, webservice

    for part in (platform, services, webservice, registration, admin):
        part.init_app(app)

    @app.after_request
    def _date_header(resp):
        # Moodle's web server sends Date; `SANDBOX_CLOCK_OFFSET` (seconds) plays a platform whose clock is off.
        from flask import request

        if request.path.startswith("/sandbox"):
            import time
            from email.utils import formatdate

            offset = float(app.config.get("SANDBOX_CLOCK_OFFSET", 0))
            resp.headers["Date"] = formatdate(time.time() + offset, usegmt=True)
        return resp


def seed_demo(app) -> list[str]:
    """Register the sandbox as a platform of the tool (idempotent) so launches work at once, then add the
    demo course's content (`sandbox.demo`: each seed function runs once). Returns the seeds that ran."""
    from ..db import connect
    from .demo import run_seeds
    from .platform import ensure_registered
    from .webservice import link_tool

    ensure_registered(app)
    db = connect(app.config["DATABASE_URL"])
    try:
        link_tool(db, app.config["TOOL_URL"])  # the demo's Moodle web-service credentials
    finally:
        db.close()
    return run_seeds(app)
