"""`lms-bridge doctor`: check an install end to end, each check OK, WARN or FAIL with a one-line fix.

Plain functions over the configuration, a `requests.Session` and the store: the command prints them,
`--json` hands them to monitoring, the tests break one condition at a time against the sandbox LMS.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import sqlite3
import stat
import time
import uuid
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..clients import MoodleClient, MoodleError
from ..config import ConfigError, database_path
from ..db import connect, pending_migrations
from ..db import lti as q
from ..db import ops as opsq
from ..db import outbox as ob

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_FREE_BYTES = 100 * 1024 ** 2  # below this: FAIL (uploads and the WAL need room)
LOW_FREE_BYTES = 1024 ** 3  # below this: WARN
SKEW_WARN, SKEW_FAIL = 5, 30  # seconds; Moodle's id_token lives 60 s
OUTBOX_STALE_SECONDS = 900


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    platform: int | None = None


def _check(name, status, detail, fix="", platform=None) -> Check:
    return Check(name, status, detail, fix if status != OK else "", platform)


class Doctor:
    """Runs every check; `config` is the app's settings, `session` the outbound HTTP session."""

    def __init__(self, config: dict, session: requests.Session, *, min_free_bytes: int = MIN_FREE_BYTES,
                 low_free_bytes: int = LOW_FREE_BYTES):
        self.config, self.session = config, session
        self.url = config["TOOL_URL"].rstrip("/")
        self.timeout = float(config.get("HTTP_TIMEOUT", 15))
        self.min_free_bytes, self.low_free_bytes = min_free_bytes, low_free_bytes
        self.db = None

    def run(self) -> list[Check]:
        checks = self.store()
        if self.db is None:
            return checks + self.data_dir()
        try:
            checks += self.signing_keys() + self.data_dir() + self.public_url() + self.tool_urls()
            checks += self.worker() + self.outbox()
            for platform in q.list_platforms(self.db):
                checks += self.platform(platform)
        finally:
            self.db.close()
        return checks

    # --- the store -------------------------------------------------------------------------
    def store(self) -> list[Check]:
        try:
            path = database_path(self.config["DATABASE_URL"])
        except ConfigError as e:
            return [_check("database", FAIL, str(e), "set LMS_BRIDGE_DATABASE_URL to sqlite:///PATH")]
        if not Path(path).exists():
            return [_check("database", FAIL, f"no database at {path}", "run `lms-bridge init`")]
        try:
            # A plain connection first: the tool's own connect() would switch WAL on and hide the problem.
            raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                raw.execute("SELECT 1").fetchone()
                journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
            finally:
                raw.close()
            self.db = connect(self.config["DATABASE_URL"])
        except sqlite3.Error as e:
            return [_check("database", FAIL, f"{path}: {e}", "check the file's owner and mode (the service user "
                           "must read and write it and its directory)")]
        checks = [_check("database", OK, f"reachable at {path}")]
        pending = pending_migrations(self.db)
        checks.append(_check("migrations", FAIL if pending else OK,
                             f"{len(pending)} pending: {', '.join(pending)}" if pending else "current",
                             "run `lms-bridge init` (the service refuses to start until you do)"))
        checks.append(_check("WAL", OK if journal == "wal" else FAIL, f"journal_mode={journal}",
                             "keep the database on a local filesystem and run `lms-bridge init` to turn WAL on"))
        return checks

    # --- signing keys ----------------------------------------------------------------------
    def signing_keys(self) -> list[Check]:
        from lti_config.keys import key_dir

        active = opsq.active_key_count(self.db)
        if active != 1:
            fix = "run `lms-bridge init`" if active == 0 else "run `lms-bridge keys rotate` to leave one active key"
            return [_check("signing keys", FAIL, f"{active} active keys (exactly one expected)", fix)]
        kid = q.active_tool_key(self.db)["kid"]
        folder = key_dir(self.config["DATA_DIR"])
        pem = folder / f"{kid}.pem"
        if not pem.exists():
            return [_check("signing keys", FAIL, f"active key {kid} has no private key file {pem}",
                           "restore the keys directory from a backup, or `lms-bridge keys rotate`")]
        problems = []
        for path, allowed in ((folder, 0o700), (pem, 0o600)):
            info = path.stat()
            if stat.S_IMODE(info.st_mode) & 0o077:
                problems.append((f"{path} is mode {stat.S_IMODE(info.st_mode):o}, readable by others",
                                 f"chmod {allowed:o} {path}"))
            elif info.st_uid != os.geteuid():
                problems.append((f"{path} belongs to uid {info.st_uid}, not to uid {os.geteuid()} running doctor",
                                 f"chown the data directory to the service user and run doctor as that user"))
        if problems:
            return [_check("signing keys", FAIL, "; ".join(p for p, _ in problems), problems[0][1])]
        return [_check("signing keys", OK, f"one active key {kid}, private key file mode 600")]

    # --- data directory --------------------------------------------------------------------
    def data_dir(self) -> list[Check]:
        folder = Path(self.config["DATA_DIR"])
        probe = folder / f".doctor-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            return [_check("data directory", FAIL, f"{folder} is not writable ({e.strerror or e})",
                           f"chown -R the service user {folder}")]
        free = shutil.disk_usage(folder).free
        status = FAIL if free < self.min_free_bytes else WARN if free < self.low_free_bytes else OK
        return [_check("data directory", status, f"{folder} writable, {free / 1024 ** 3:.1f} GiB free",
                       f"free space on the filesystem of {folder} (uploads, the WAL and backups need room)")]

    # --- public URL ------------------------------------------------------------------------
    def _get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(url, timeout=self.timeout, allow_redirects=False, **kwargs)

    def public_url(self) -> list[Check]:
        checks = []
        parts = urlsplit(self.url)
        health = f"{self.url}/healthz"
        if parts.scheme == "https":
            checks.append(_check("HTTPS", OK, f"LMS_BRIDGE_URL is {self.url}"))
        elif _loopback(parts.hostname or ""):
            checks.append(_check("HTTPS", WARN, f"{self.url} is plain HTTP on loopback: a test site only",
                                 "put the tool behind HTTPS (see `lms-bridge install-service`) and set "
                                 "LMS_BRIDGE_URL=https://..."))
        else:
            checks.append(_check("HTTPS", FAIL, f"{self.url} is plain HTTP on a public host",
                                 "put the tool behind HTTPS (see `lms-bridge install-service`) and set "
                                 "LMS_BRIDGE_URL=https://..."))
        try:
            resp = self._get(health)
            body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
        except (requests.RequestException, ValueError) as e:
            return checks + [_check("public URL", FAIL, f"{health} does not answer ({type(e).__name__})",
                                    "start `lms-bridge serve` and check the reverse proxy and DNS for LMS_BRIDGE_URL")]
        if body.get("tool") != "lms_bridge":
            return checks + [_check("public URL", FAIL, f"{health} answers HTTP {resp.status_code}, but not as "
                                    "lms_bridge", "point the reverse proxy for LMS_BRIDGE_URL at `lms-bridge serve`")]
        kid = (q.active_tool_key(self.db) or {}).get("kid")
        try:
            published = {k.get("kid") for k in self._get(f"{self.url}/.well-known/jwks.json").json().get("keys", [])}
        except (requests.RequestException, ValueError, AttributeError):
            published = set()
        if kid not in published:
            return checks + [_check("public URL", FAIL, f"{self.url} serves another install's keys (no kid {kid})",
                                    "LMS_BRIDGE_URL and LMS_BRIDGE_DATA must belong to the install you serve")]
        if parts.scheme == "https" and body.get("scheme") != "https":
            return checks + [_check("public URL", WARN, f"{health} answers, but the tool sees scheme "
                                    f"{body.get('scheme')!r}", "send X-Forwarded-Proto from the proxy and set "
                                    "LMS_BRIDGE_TRUSTED_PROXIES=1")]
        return checks + [_check("public URL", OK, f"{health} answers with this install (HTTP {resp.status_code})")]

    def tool_urls(self) -> list[Check]:
        """What Moodle is given and will call: the login URL must answer (400 without parameters), not 404."""
        from lti_config.tool import urls

        u = urls(self.url)
        shown = f"login {u['login_url']}, redirect {u['redirect_uri']}, keys {u['jwks_url']}"
        try:
            # A request id that says who asked: the tool logs the refused login it provokes.
            status = self._get(u["login_url"], headers={"X-Request-ID": f"doctor-{uuid.uuid4().hex[:12]}"}).status_code
        except requests.RequestException as e:
            return [_check("tool URLs", FAIL, f"{shown}: {type(e).__name__}", "make LMS_BRIDGE_URL reach the tool")]
        if status == 404 or status >= 500:
            return [_check("tool URLs", FAIL, f"{shown}: login answers HTTP {status}",
                           "the proxy must pass every path under LMS_BRIDGE_URL unchanged (no prefix stripping)")]
        return [_check("tool URLs", OK, shown)]

    # --- worker and outbox -----------------------------------------------------------------
    def worker(self) -> list[Check]:
        beat = opsq.latest_beat(self.db)
        stale = max(60.0, 10 * float(self.config.get("OUTBOX_POLL_SECONDS", 2.0)))
        fix = "start it: `systemctl enable --now lms-bridge-worker` (or run `lms-bridge worker`)"
        if beat is None:
            return [_check("worker", FAIL, "no worker has ever run against this store", fix)]
        detail = f"last heartbeat {beat['age_seconds']:.0f} s ago from {beat['worker_id']}"
        return [_check("worker", FAIL if beat["age_seconds"] > stale else OK, detail, fix)]

    def outbox(self) -> list[Check]:
        b = ob.backlog(self.db)
        detail = (f"{b['outbox_pending']} pending (oldest {b['outbox_oldest_pending_age_seconds']:.0f} s), "
                  f"{b['outbox_failed']} failed")
        if b["outbox_failed"]:
            return [_check("outbox", WARN, detail, "see `lms-bridge outbox --failed`, fix the cause, then "
                           "`lms-bridge outbox retry ID`")]
        if b["outbox_oldest_pending_age_seconds"] > OUTBOX_STALE_SECONDS:
            return [_check("outbox", WARN, detail, "the worker falls behind or waits on the platform: see "
                           "`lms-bridge outbox`")]
        return [_check("outbox", OK, detail)]

    # --- platforms -------------------------------------------------------------------------
    def platform(self, p: dict) -> list[Check]:
        pid = p["id"]
        label = f"platform {pid} ({p['issuer']}, client {p['client_id']})"
        status = p.get("status")  # added by registration approval; absent on older stores
        if status in ("removed", "retired"):
            return [_check(label, OK, "retired", platform=pid)]
        checks = [_check(f"{label}: registration", FAIL if status == "pending" else OK,
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
            return [_check(f"{label}: key set", FAIL, f"{url}: {type(e).__name__}",
                           "check the key set URL and that this host may reach the platform", pid)]
        usable = [k for k in keys or [] if isinstance(k, dict) and k.get("kty") == "RSA" and k.get("kid")
                  and k.get("n") and k.get("e")]
        checks = [_check(f"{label}: key set", OK if usable else FAIL,
                         f"{url}: {len(usable)} RSA keys with kid" if usable else
                         f"{url}: HTTP {resp.status_code}, no RSA key with a kid",
                         "fix the platform's key set URL (`lms-bridge platforms list`)", pid)]
        checks.append(self.clock(resp, label, pid))
        return checks

    def clock(self, resp: requests.Response, label: str, pid: int) -> Check:
        try:
            theirs = parsedate_to_datetime(resp.headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return _check(f"{label}: clock", WARN, "the platform sent no Date header: skew unknown",
                          "keep both clocks synchronised with NTP (systemd-timesyncd or chrony)", pid)
        skew = time.time() - theirs
        status = FAIL if abs(skew) > SKEW_FAIL else WARN if abs(skew) > SKEW_WARN else OK
        return _check(f"{label}: clock", status, f"this host is {skew:+.0f} s from the platform",
                      "synchronise both clocks with NTP: id_tokens live 60 s", pid)

    def web_services(self, p: dict, label: str) -> list[Check]:
        from ..sync.credentials import REQUIRED_FUNCTIONS

        pid = p["id"]
        creds = q.get_moodle_ws(self.db, pid)
        name = f"{label}: web services"
        if not creds:
            return [_check(name, WARN, "no Moodle web-service token: completion, calendar and messages wait",
                           f"`lms-bridge platforms moodle-ws --issuer {p['issuer']} --url WWWROOT --token T`", pid)]
        wwwroot = creds["url"].removesuffix("/webservice/rest/server.php")
        client = MoodleClient(self.session, wwwroot, creds["token"], timeout=(5, self.timeout))
        try:
            info = client.get_site_info()
        except MoodleError as e:
            fix = {"invalid_token": "create a new token in Moodle and attach it with `lms-bridge platforms moodle-ws`",
                   "missing_capability": "give the web-service user webservice/rest:use"}.get(
                e.kind, "check Moodle's wwwroot and that REST is enabled")
            return [_check(name, FAIL, f"{wwwroot}: {e.errorcode or e.kind}: {e.message}", fix, pid)]
        checks = [_check(name, OK, f"token valid for {info.get('username', '?')} on Moodle {info.get('release', '?')}",
                         platform=pid)]
        missing = [f for f in REQUIRED_FUNCTIONS if f not in client.function_names()]
        checks.append(_check(f"{label}: functions", FAIL if missing else OK,
                             f"missing {', '.join(missing)}" if missing else f"all {len(REQUIRED_FUNCTIONS)} present",
                             "add them to the external service (Site administration › Server › Web services › "
                             "External services › Functions)", pid))
        return checks + Capabilities(self.db, client, info, p, label).run()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_REFUSED = {"requireloginerror", "nopermissions", "nopermission", "accessdenied", "accessexception",
            "restrictedcontextexception"}


class Capabilities:
    """One harmless call per capability the README asks for, in a course the platform launched from."""

    def __init__(self, db, client: MoodleClient, site_info: dict, platform: dict, label: str):
        self.db, self.client, self.info, self.platform, self.label = db, client, site_info, platform, label
        self.pid = platform["id"]
        self.cmid: int | None = None

    def check(self, capability: str, status: str, detail: str, fix: str = "") -> Check:
        return _check(f"{self.label}: capability {capability}", status, detail,
                      fix or f"allow {capability} in the web-service user's role (Site administration › Users › "
                             "Permissions › Define roles)", self.pid)

    def run(self) -> list[Check]:
        course = opsq.probe_course(self.db, self.pid)
        if course is None:
            return [_check(f"{self.label}: capabilities", WARN, "no course has launched the tool yet: not probed",
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


def report(checks: list[Check]) -> dict:
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    return {"ok": counts[FAIL] == 0, "counts": counts, "checks": [asdict(c) for c in checks]}


def lines(checks: list[Check]) -> list[str]:
    out = []
    for c in checks:
        out.append(f"{c.status:<4}  {c.name}: {c.detail}")
        if c.fix:
            out.append(f"      fix: {c.fix}")
    counts = report(checks)["counts"]
    out.append(f"{counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed")
    return out
