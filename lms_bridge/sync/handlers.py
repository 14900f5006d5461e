"""One delivery function per job kind, over the clients. No Flask: the worker passes a Delivery.

Each function returns a short note when the LMS already had the change, raises Retry for what may
succeed later and GiveUp for what an admin must fix first.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from ..clients import LtiServiceClient, LtiServiceError, MoodleClient, MoodleError
from ..db import lti as q
from ..db import sync as cache
from ..lti.services import service_client

FIX_HINTS = {
    "invalid_token": "Moodle refused the web-service token; attach a valid one with "
                     "`lms-bridge platforms moodle-ws --issuer ... --url ... --token ...`.",
    "missing_capability": "the web-service user lacks a capability for this function; give its role the "
                          "capability named in the message (Site administration > Users > Define roles).",
    "function_not_in_service": "add this function to the tool's external service (Site administration > "
                               "Server > Web services > External services > Functions).",
    "invalid_parameter": "Moodle rejected the parameters; the job's payload does not fit this Moodle.",
    "not_found": "Moodle does not know the course, activity or user any more.",
}


WAITS_FOR = {"invalid_token": "working web-service credentials", "missing_capability": "a capability",
             "function_not_in_service": "a web-service function"}


class Retry(Exception):
    """Worth trying again later (timeout, 5xx, throttling); `retry_after` from the LMS when it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class GiveUp(Exception):
    """Retrying cannot help; the message says what to do."""


class Waiting(Exception):
    """Not a failure: the job waits for something an admin sets up (web-service credentials, a function in the
    service, a capability). It is checked again now and then, and at once when `platforms moodle-ws` attaches
    credentials; it never runs out of tries. The message starts with "waiting for"."""


@dataclass
class Delivery:
    """What a handler needs: this thread's connection, the HTTP session and the platform row."""

    db: object
    session: requests.Session
    platform: dict
    signer: object
    timeout: float = 15
    worker_id: str | None = None  # whose outbox lease a line-item claim is tied to
    on_delivered: list = field(default_factory=list)  # run in the transaction that marks the job delivered
    _moodle: MoodleClient | None = field(default=None, repr=False)

    def ags(self) -> LtiServiceClient:
        p = self.platform
        return service_client(self.db, self.session, p, self.signer, timeout=self.timeout)

    def moodle(self) -> MoodleClient:
        if self._moodle is None:
            creds = q.get_moodle_ws(self.db, self.platform["id"])
            if not creds:
                raise Waiting(f"waiting for web-service credentials: attach them to {self.platform['issuer']} with "
                              "`lms-bridge platforms moodle-ws --issuer ... --url ... --token ...`; the job then "
                              "goes out by itself.")
            wwwroot = creds["url"].removesuffix("/webservice/rest/server.php")  # either form may be stored
            self._moodle = MoodleClient(self.session, wwwroot, creds["token"], timeout=(5, self.timeout))
        return self._moodle


def explain(exc: Exception) -> Exception:
    """Turn a client error into Retry or GiveUp with a message an admin can act on (never the token)."""
    if isinstance(exc, MoodleError):
        if exc.transient:
            return Retry(str(exc), exc.retry_after)
        hint = FIX_HINTS.get(exc.kind, "see Moodle's message.")
        if exc.kind in WAITS_FOR:
            return Waiting(f"waiting for {WAITS_FOR[exc.kind]}: {exc} -> {hint}")
        return GiveUp(f"{exc} -> {hint}")
    if isinstance(exc, LtiServiceError):
        if exc.transient:
            return Retry(str(exc), exc.retry_after)
        if exc.status in (400, 401) and "token" in exc.message:
            return GiveUp(f"{exc} -> the LMS refused the tool's service token: check the registration's client "
                          "id and that the tool's JWKS is reachable from the LMS.")
        if exc.status == 403:
            return GiveUp(f"{exc} -> the tool lacks the AGS scope: enable 'IMS LTI Assignment and Grade "
                          "Services' for the tool in the LMS.")
        return GiveUp(f"{exc} -> {exc.reason or 'the LMS refused the score'}")
    return exc


# --- AGS scores ------------------------------------------------------------------------------
_LINEITEM_LOCK = threading.Lock()
LINEITEM_CLAIM_STALE = timedelta(minutes=2)  # for a claim not tied to an outbox job's lease


def score_context(job: dict) -> str | None:
    """The course of a score job; jobs queued before payloads named it carry it in `score:{pid}:{ctx}:...`."""
    if job["payload"].get("context_id"):
        return str(job["payload"]["context_id"])
    parts = (job.get("order_key") or "").split(":")
    return parts[2] if len(parts) >= 5 and parts[0] == "score" else None


def _lineitem_url(d: Delivery, client: LtiServiceClient, p: dict, context: str | None = None,
                  job_id: int | None = None) -> str:
    """The activity's own column: the `lineitem` its launches named; else found (by resource link and
    resourceId) or created once, cached per (lineitems URL, resourceId, link). Found or created by one worker
    at a time: a process lock for this process's threads and a claim row for other processes. Neither is the
    database write lock, which must not be held over HTTP: the LMS may be this very app (the sandbox)."""
    pid = d.platform["id"]
    link = p.get("resource_link_id")
    own = cache.own_lineitem(d.db, pid, context, link, p["resource_id"])
    if own:
        return own
    key = (pid, p["lineitems_url"], p["resource_id"], f"link:{link}" if link else "resource")
    url = cache.get_lineitem(d.db, *key)
    if url:
        return url
    with _LINEITEM_LOCK:
        url = cache.get_lineitem(d.db, *key)
        if url:
            return url
        if not cache.claim_lineitem(d.db, *key, stale_after=LINEITEM_CLAIM_STALE, job_id=job_id,
                                    worker_id=d.worker_id):
            raise Retry("another worker process is finding or creating this line item", retry_after=2)
        try:
            item = client.find_or_create_activity_line_item(p["lineitems_url"], p.get("label") or p["resource_id"],
                                                            p["score_maximum"], p["resource_id"], link, p["tag"])
            url = item["id"]
            cache.set_lineitem(d.db, *key, url)
        finally:
            cache.release_lineitem(d.db, *key)
    return url


def _send_timestamp(d: Delivery, job: dict) -> datetime:
    """Moodle compares timestamps to the second: a newer job in the same second is moved one second on.
    Deterministic from the previous job's record, so a redelivered job sends the same timestamp again
    and Moodle answers 409 (already applied)."""
    stamp = datetime.fromisoformat(job["payload"]["timestamp"].replace("Z", "+00:00"))
    last = cache.last_score_sent(d.db, job["order_key"]) if job.get("order_key") else None
    if last is None:
        return stamp
    sent = datetime.fromisoformat(last["sent_timestamp"])
    if last["job_id"] == job["id"]:
        return sent
    if last["job_id"] < job["id"] and int(stamp.timestamp()) <= int(sent.timestamp()):
        return sent.replace(microsecond=0) + timedelta(seconds=1)
    return stamp


def ags_score(d: Delivery, job: dict) -> str | None:
    p = job["payload"]
    client = d.ags()
    url = _lineitem_url(d, client, p, score_context(job), job["id"])
    stamp = _send_timestamp(d, job)
    if job.get("order_key"):
        d.on_delivered.append(lambda: cache.set_score_sent(d.db, job["order_key"], job["id"], stamp.isoformat()))
    try:
        client.post_score(url, p["user_id"], p.get("score_given"), p["score_maximum"], stamp,
                          grading_progress=p.get("grading_progress", "FullyGraded"),
                          activity_progress=p.get("activity_progress", "Completed"), comment=p.get("comment"))
    except LtiServiceError as exc:
        if exc.already_applied:
            return "already applied (409: the LMS holds this or a later score)"
        if exc.status == 404:
            cache.forget_lineitem(d.db, d.platform["id"], url)
            raise Retry(f"{exc} (line item gone; it will be found or created again)") from None
        raise
    return None


# --- Moodle web services ---------------------------------------------------------------------
def _cmid(d: Delivery, p: dict) -> int:
    pid = d.platform["id"]
    cmid = cache.get_cmid(d.db, pid, p["lti_instance_id"])
    if cmid is None:
        cm = d.moodle().course_module_by_instance("lti", int(p["lti_instance_id"]))
        cmid = int(cm["id"])
        cache.set_cmid(d.db, pid, p["lti_instance_id"], cmid, int(cm["course"]))
    return cmid


def ws_completion(d: Delivery, job: dict) -> str | None:
    p = job["payload"]
    d.moodle().override_completion(int(p["user_id"]), _cmid(d, p), bool(p["completed"]))
    return None


def ws_grade(d: Delivery, job: dict) -> str | None:
    p = job["payload"]
    d.moodle().update_grades(int(p["course_id"]), _cmid(d, p), [(int(p["user_id"]), p["grade"])])
    return None


def ws_message(d: Delivery, job: dict) -> str | None:
    result = d.moodle().send_instant_messages([(int(job["payload"]["user_id"]), job["payload"]["text"],
                                                f"outbox-{job['id']}")])
    if result.failed:
        raise result.failed[0]
    return None


def _fingerprint(p: dict) -> str:
    fields = {k: p.get(k) for k in ("name", "description", "timestart", "timeduration")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _adopt_orphan(d: Delivery, p: dict) -> int | None:
    """After a crash between creating an event and recording its id, find that event instead of a twin."""
    found = d.moodle().call("core_calendar_get_calendar_events", {
        "events": {"courseids": [int(p["course_id"])]},
        "options": {"userevents": 0, "siteevents": 0, "timestart": int(p["timestart"]) - 1,
                    "timeend": int(p["timestart"]) + 1}})
    for event in found.get("events", []):
        if event.get("name") == p["name"] and int(event.get("timestart", -1)) == int(p["timestart"]):
            return int(event["id"])
    return None


def ws_calendar(d: Delivery, job: dict) -> str | None:
    """One Moodle event per key: unchanged -> nothing; changed -> the old event is replaced, not joined."""
    p, pid = job["payload"], d.platform["id"]
    fingerprint, moodle = _fingerprint(p), d.moodle()
    known = cache.get_event(d.db, pid, p["course_id"], p["key"])
    if known and known["event_id"] and known["fingerprint"] == fingerprint:
        return "already applied (event unchanged)"
    new_id = _adopt_orphan(d, p) if known and known["creating"] == fingerprint else None
    if new_id is None:
        cache.mark_event_creating(d.db, pid, p["course_id"], p["key"], fingerprint)
        if known and known["event_id"]:
            try:  # delete first: a crash now leaves no event, and the retry creates it; never two
                moodle.delete_calendar_events([known["event_id"]])
            except MoodleError as exc:
                if exc.kind != "not_found":
                    raise
        result = moodle.create_calendar_events([{
            "name": p["name"], "description": p.get("description", ""), "format": 1,
            "courseid": int(p["course_id"]), "eventtype": "course", "timestart": int(p["timestart"]),
            "timeduration": int(p.get("timeduration") or 0), "visible": 1}])
        if result.failed:
            raise result.failed[0]
        new_id = int(result.done[0]["id"])
    cache.set_event(d.db, pid, p["course_id"], p["key"], new_id, fingerprint)
    return None


HANDLERS = {"ags_score": ags_score, "ws_completion": ws_completion, "ws_grade": ws_grade,
            "ws_message": ws_message, "ws_calendar": ws_calendar}
