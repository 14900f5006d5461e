"""Per-platform checks of `doctor`: key set, registration, clock, web-service token, functions and the
capabilities the README asks of the web-service user, each probed with a harmless call."""
from __future__ import annotations

import base64
import time
from email.utils import parsedate_to_datetime

import requests

from ..clients import MoodleClient, MoodleError
from ..db import lti as q
from ..db import ops as opsq
from .checks import FAIL, OK, WARN, Check, check

SKEW_WARN, SKEW_FAIL = 5, 30  # seconds; Moodle's id_token lives 60 s


def _bits(n) -> int:
    """The size of an RSA modulus given as base64url (a launch signed with a smaller key is refused)."""
    try:
        return int.from_bytes(base64.urlsafe_b64decode(str(n) + "=" * (-len(str(n)) % 4)), "big").bit_length()
    except (ValueError, TypeError):
        return 0


class PlatformChecks:
    def __init__(self, db, session: requests.Session, timeout: float):
        self.db, self.session, self.timeout = db, session, timeout

    def _get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(url, timeout=self.timeout, allow_redirects=False, **kwargs)

    def platform(self, p: dict) -> list[Check]:
        pid = p["id"]
        label = f"platform {pid} ({p['issuer']}, client {p['client_id']})"
        status = p.get("status")  # added by registration approval; absent on older stores
        if status in ("removed", "retired"):
            return [check(label, OK, "retired", platform=pid)]
        checks = [check(f"{label}: registration", FAIL if status == "pending" else OK,
                         "pending: launches are refused until approved" if status == "pending"
                         else f"active, deployments {', '.join(p.get('deployments') or []) or 'none yet'}",
                         f"`lms-bridge platforms approve {pid}` (and activate the tool in Moodle's Manage tools)",
                         platform=pid)]
        checks += self.key_set(p, label)
        checks += self.web_services(p, label)
        return checks

    def key_set(self, p: dict, label: str) -> list[Check]:
        pid, url = p["id"], p["key_set_url"]
        try:
            resp = self._get(url)
            keys = resp.json().get("keys") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError) as e:
            return [check(f"{label}: key set", FAIL, f"{url}: {type(e).__name__}",
                           "check the key set URL and that this host may reach the platform", pid)]
        usable = [k for k in keys or [] if isinstance(k, dict) and k.get("kty") == "RSA" and k.get("kid")
                  and _bits(k.get("n")) >= 2048 and k.get("e")]
        checks = [check(f"{label}: key set", OK if usable else FAIL,
                         f"{url}: {len(usable)} RSA keys with kid" if usable else
                         f"{url}: HTTP {resp.status_code}, no RSA key of 2048 bits or more with a kid",
                         "fix the platform's key set URL (`lms-bridge platforms list`)", pid)]
        checks.append(self.clock(resp, label, pid))
        return checks

    def clock(self, resp: requests.Response, label: str, pid: int) -> Check:
        try:
            theirs = parsedate_to_datetime(resp.headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return check(f"{label}: clock", WARN, "the platform sent no Date header: skew unknown",
                          "keep both clocks synchronised with NTP (systemd-timesyncd or chrony)", pid)
        skew = time.time() - theirs
        status = FAIL if abs(skew) > SKEW_FAIL else WARN if abs(skew) > SKEW_WARN else OK
        return check(f"{label}: clock", status, f"this host is {skew:+.0f} s from the platform",
                      "synchronise both clocks with NTP: id_tokens live 60 s", pid)

    def web_services(self, p: dict, label: str) -> list[Check]:
        from ..sync.credentials import REQUIRED_FUNCTIONS

        pid = p["id"]
        creds = q.get_moodle_ws(self.db, pid)
        name = f"{label}: web services"
        if not creds:
            return [check(name, WARN, "no Moodle web-service token: completion, calendar and messages wait",
                           f"`lms-bridge platforms moodle-ws --issuer {p['issuer']} --url WWWROOT --token T`", pid)]
        wwwroot = creds["url"].removesuffix("/webservice/rest/server.php")
        client = MoodleClient(self.session, wwwroot, creds["token"], timeout=(5, self.timeout))
        try:
            info = client.get_site_info()
        except MoodleError as e:
            fix = {"invalid_token": "create a new token in Moodle and attach it with `lms-bridge platforms moodle-ws`",
                   "missing_capability": "give the web-service user webservice/rest:use"}.get(
                e.kind, "check Moodle's wwwroot and that REST is enabled")
            return [check(name, FAIL, f"{wwwroot}: {e.errorcode or e.kind}: {e.message}", fix, pid)]
        checks = [check(name, OK, f"token valid for {info.get('username', '?')} on Moodle {info.get('release', '?')}",
                         platform=pid)]
        missing = [f for f in REQUIRED_FUNCTIONS if f not in client.function_names()]
        checks.append(check(f"{label}: functions", FAIL if missing else OK,
                             f"missing {', '.join(missing)}" if missing else f"all {len(REQUIRED_FUNCTIONS)} present",
                             "add them to the external service (Site administration › Server › Web services › "
                             "External services › Functions)", pid))
        return checks + Capabilities(self.db, client, info, p, label).run()


_REFUSED = {"requireloginerror", "nopermissions", "nopermission", "accessdenied", "accessexception",
            "restrictedcontextexception"}


class Capabilities:
    """One harmless call per capability the README asks for, in a course the platform launched from."""

    def __init__(self, db, client: MoodleClient, site_info: dict, platform: dict, label: str):
        self.db, self.client, self.info, self.platform, self.label = db, client, site_info, platform, label
        self.pid = platform["id"]
        self.cmid: int | None = None

    def check(self, capability: str, status: str, detail: str, fix: str = "") -> Check:
        return check(f"{self.label}: capability {capability}", status, detail,
                      fix or f"allow {capability} in the web-service user's role (Site administration › Users › "
                             "Permissions › Define roles)", self.pid)

    def run(self) -> list[Check]:
        course = opsq.probe_course(self.db, self.pid)
        if course is None:
            return [check(f"{self.label}: capabilities", WARN, "no course has launched the tool yet: not probed",
                           "launch the tool once from a course, then run doctor again", self.pid)]
        self.course = course
        self.courseid = int(course["context_id"]) if str(course["context_id"]).isdigit() else None
        probes = [self.lti_view, self.progress_view, self.manage_groups, self.user_identity, self.read_messages,
                  self.override_completion]
        return [probe() for probe in probes]

    def _call(self, capability: str, function: str, params: dict):
        """The answer, or a Check when Moodle refused (missing capability) or the probe could not run."""
        try:
            return self.client.call(function, params)
        except MoodleError as e:
            if e.kind == "function_not_in_service":
                return self.check(capability, WARN, f"not probed: {function} is not in the external service",
                                  f"add {function} to the external service so doctor can check {capability}")
            if e.errorcode in _REFUSED or e.kind == "missing_capability":
                return self.check(capability, FAIL, f"{function} refused: {e.errorcode}: {e.message}")
            return self.check(capability, WARN, f"not probed: {function} failed: {e.errorcode or e.kind}",
                              "see the message; the course may have been deleted")

    def lti_view(self) -> Check:
        cap = "mod/lti:view"
        links = [v for v in self.course["links"].values() if str(v).isdigit()]
        if not links:
            return self.check(cap, WARN, "no activity of this course is known yet: not probed",
                              "launch one of the tool's activities, then run doctor again")
        answer = self._call(cap, "core_course_get_course_module_by_instance", {"module": "lti", "instance": links[0]})
        if isinstance(answer, Check):
            return answer
        self.cmid = answer.get("cm", {}).get("id")
        return self.check(cap, OK, f"activity {links[0]} visible to the web-service user")

    def progress_view(self) -> Check:
        cap = "report/progress:view"
        if not self.courseid or not self.course["learner_id"]:
            return self.check(cap, WARN, "no learner of this course is known yet: not probed",
                              "run doctor again after a learner launched")
        answer = self._call(cap, "core_completion_get_activities_completion_status",
                            {"courseid": self.courseid, "userid": self.course["learner_id"]})
        return answer if isinstance(answer, Check) else self.check(cap, OK, "reads a learner's completion")

    def manage_groups(self) -> Check:
        cap = "moodle/course:managegroups"
        answer = self._call(cap, "core_group_get_course_groups", {"courseid": self.courseid})
        return answer if isinstance(answer, Check) else self.check(cap, OK, f"lists the course's {len(answer)} groups")

    def user_identity(self) -> Check:
        cap = "moodle/site:viewuseridentity"
        answer = self._call(cap, "core_enrol_get_enrolled_users",
                            {"courseid": self.courseid, "options": [{"name": "limitnumber", "value": 20}]})
        if isinstance(answer, Check):
            return answer
        others = [u for u in answer if u.get("id") != self.info.get("userid")]
        if not others:
            return self.check(cap, WARN, "no enrolled user to look at: not probed", "enrol participants first")
        if not any("email" in u for u in others):
            return self.check(cap, FAIL, "enrolled users come back without e-mail addresses")
        return self.check(cap, OK, "enrolled users come with e-mail addresses")

    def read_messages(self) -> Check:
        cap = "moodle/site:readallmessages"
        # The guest user (id 1) exists on every site and receives nothing: the answer carries no one's messages.
        answer = self._call(cap, "core_message_get_messages", {"useridto": 1, "useridfrom": 0, "type": "both",
                                                               "read": 1, "limitnum": 1})
        return answer if isinstance(answer, Check) else self.check(cap, OK, "may message users with no shared course")

    def override_completion(self) -> Check:
        cap = "moodle/course:overridecompletion"
        if self.cmid is None:
            return self.check(cap, WARN, "no course module found (see mod/lti:view): not probed",
                              "fix mod/lti:view first")
        # Overriding the web-service user's own, unchanged state to 0 is a no-op once the capability is checked.
        answer = self._call(cap, "core_completion_override_activity_completion_status",
                            {"userid": self.info.get("userid"), "cmid": self.cmid, "newstate": 0})
        if isinstance(answer, Check):
            return answer
        if answer.get("tracking") == 0:
            return self.check(cap, WARN, f"activity {self.cmid} has no completion tracking: not probed",
                              "enable completion tracking on the tool's activities")
        return self.check(cap, OK, "may override activity completion")
