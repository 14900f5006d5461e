"""Moodle REST web-service client: PHP-style parameters, classified errors, chunked batches.

Moodle answers errors with HTTP 200 and `{"exception", "errorcode", "message"}`; `MoodleError.kind`
turns those into the few cases a caller acts on. Per-item failures inside a 200 answer (calendar
`warnings`, message `msgid: -1`) are returned in a `BatchResult`, never raised, so items that did
succeed are not retried twice.
"""
from __future__ import annotations

import logging

import requests

from lms_bridge.clients.errors import BatchResult, MoodleError, classify, parse_retry_after

__all__ = ["BatchResult", "MoodleClient", "MoodleError", "classify", "flatten_params"]

log = logging.getLogger(__name__)


def _flatten(name: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _flatten(f"{name}[{key}]", item)]
    if isinstance(value, (list, tuple)):
        return [pair for index, item in enumerate(value) for pair in _flatten(f"{name}[{index}]", item)]
    if value is None:
        return []
    if isinstance(value, bool):
        return [(name, "1" if value else "0")]
    return [(name, str(value))]


def flatten_params(params: dict) -> list[tuple[str, str]]:
    """Encode nested dicts/lists as PHP form fields (`events[0][name]`); booleans as 1/0, None omitted."""
    return [pair for key, value in params.items() for pair in _flatten(str(key), value)]


def _merge(results: list):
    if all(isinstance(r, list) for r in results):
        return [item for r in results for item in r]
    if all(isinstance(r, dict) for r in results):
        merged: dict = {}
        for r in results:
            for key, value in r.items():
                if isinstance(value, list) and isinstance(merged.get(key), list):
                    merged[key] = merged[key] + value
                else:
                    merged[key] = value
        return merged
    return results


class MoodleClient:
    """Calls `{base_url}/webservice/rest/server.php` with a web-service token (sent in the body only)."""

    def __init__(self, session: requests.Session, base_url: str, token: str, timeout=(5, 30),
                 max_input_vars: int = 1000):
        self.session, self.base_url, self.timeout = session, base_url.rstrip("/"), timeout
        self.url = f"{self.base_url}/webservice/rest/server.php"
        self.max_input_vars = max_input_vars
        self._token = token
        self._functions: set[str] | None = None

    def __repr__(self) -> str:
        return f"MoodleClient({self.base_url!r})"

    def _scrub(self, text: str | None) -> str | None:
        return text.replace(self._token, "[token]") if text and self._token else text

    def _fail(self, message: str, kind: str, wsfunction: str, **details) -> MoodleError:
        body = self._scrub(details.pop("body", None))
        return MoodleError(self._scrub(message), kind=kind, url=self.url, wsfunction=wsfunction, body=body,
                           **details)

    def call(self, wsfunction: str, params: dict | None = None):
        """POST one function call and return the parsed JSON; raise MoodleError on any failure."""
        data = [("wstoken", self._token), ("wsfunction", wsfunction), *flatten_params(params or {})]
        log.debug("moodle call %s (%d fields) to %s", wsfunction, len(data) - 2, self.url)
        try:
            response = self.session.post(self.url, params={"moodlewsrestformat": "json"}, data=data,
                                         timeout=self.timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise self._fail(f"{type(exc).__name__}: {exc}", "transient", wsfunction) from None
        except requests.RequestException as exc:
            raise self._fail(f"{type(exc).__name__}: {exc}", "other", wsfunction) from None
        return self._parse(wsfunction, response)

    def _parse(self, wsfunction: str, response: requests.Response):
        status, text = response.status_code, response.text
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        transient = status >= 500 or status == 429
        try:
            body = response.json()
        except ValueError:
            if transient:
                raise self._fail(f"Moodle answered HTTP {status} {response.reason}", "transient", wsfunction,
                                 status=status, body=text, retry_after=retry_after) from None
            if text.lstrip().startswith("<?xml") or "<RESPONSE>" in text or "<EXCEPTION" in text:
                raise self._fail("Moodle answered XML, not JSON: the request lost moodlewsrestformat=json",
                                 "other", wsfunction, status=status, body=text, errorcode="xmlresponse") from None
            raise self._fail(f"Moodle answered HTTP {status} with a body that is not JSON", "other", wsfunction,
                             status=status, body=text, errorcode="invalidresponse") from None
        if isinstance(body, dict) and "exception" in body:
            kind = "transient" if transient else classify(body.get("errorcode"), body["exception"],
                                                          body.get("message", ""))
            if body.get("errorcode") == "accessexception" and not transient:
                kind = self._refine_access(wsfunction)
            raise self._fail(body.get("message") or body.get("errorcode") or "error", kind, wsfunction,
                             status=status, body=text, errorcode=body.get("errorcode"),
                             exception=body["exception"], debuginfo=self._scrub(body.get("debuginfo")),
                             retry_after=retry_after)
        if transient or status >= 400:
            raise self._fail(f"Moodle answered HTTP {status} {response.reason}", "transient" if transient
                             else "other", wsfunction, status=status, body=text, retry_after=retry_after)
        return body

    def _refine_access(self, wsfunction: str) -> str:
        """Moodle says `accessexception` both for a function outside the service and for a user
        without webservice/rest:use; the site's function list tells them apart."""
        if wsfunction == "core_webservice_get_site_info":
            return "missing_capability"
        try:
            functions = self.function_names()
        except MoodleError:
            return "missing_capability"
        return "missing_capability" if wsfunction in functions else "function_not_in_service"

    def call_chunked(self, wsfunction: str, list_key: str, items: list, chunk_size: int | None = None,
                     params: dict | None = None):
        """Send `items` under `list_key` in as many calls as PHP's max_input_vars needs; concatenate results.

        Lists are concatenated, dicts merged key by key (list values concatenated); other answers come
        back as a list with one entry per chunk. A failing chunk raises after earlier chunks were applied.
        """
        items, params = list(items), dict(params or {})
        if not items:
            return []
        if chunk_size is None:
            per_item = max(len(flatten_params({list_key: [item]})) for item in items)
            budget = self.max_input_vars - len(flatten_params(params)) - 3
            chunk_size = max(1, budget // max(1, per_item))
        results = [self.call(wsfunction, {**params, list_key: items[start:start + chunk_size]})
                   for start in range(0, len(items), chunk_size)]
        return _merge(results)

    # Typed helpers for the functions the tool uses.

    def get_site_info(self) -> dict:
        info = self.call("core_webservice_get_site_info")
        self._functions = {f["name"] for f in info.get("functions", [])}
        return info

    def function_names(self) -> set[str]:
        """Functions the token's service exposes (cached after the first site-info call)."""
        if self._functions is None:
            self.get_site_info()
        return self._functions

    def missing_functions(self, required: list[str]) -> list[str]:
        """Required functions the service does not expose, in the order given (fresh site info)."""
        self.get_site_info()
        return [name for name in required if name not in self._functions]

    def course_module_by_instance(self, module: str, instance: int) -> dict:
        """The course module (`id` is the cmid) for an activity instance, e.g. an LTI resource_link.id."""
        return self.call("core_course_get_course_module_by_instance",
                         {"module": module, "instance": instance})["cm"]

    def update_grades(self, courseid: int, cmid: int, grades: list[tuple], source: str = "lms_bridge") -> None:
        """Write the LTI activity's own grade item; grades are (userid, grade) or (userid, grade, feedback)."""
        rows = [{"studentid": g[0], "grade": g[1], **({"str_feedback": g[2]} if len(g) > 2 else {})}
                for g in grades]
        base = {"source": source, "courseid": courseid, "component": "mod_lti", "activityid": cmid,
                "itemnumber": 0}
        for status in self.call_chunked("core_grades_update_grades", "grades", rows, params=base):
            if status:  # GRADE_UPDATE_FAILED = 1, GRADE_UPDATE_ITEM_LOCKED = 4...
                code = "gradeitemlocked" if status == 4 else "gradeupdatefailed"
                raise self._fail(f"core_grades_update_grades returned status {status}", "other",
                                 "core_grades_update_grades", status=200, errorcode=code)

    def override_completion(self, userid: int, cmid: int, completed: bool) -> dict:
        """Set another user's activity completion; raises when Moodle silently ignored it (no tracking)."""
        result = self.call("core_completion_override_activity_completion_status",
                           {"userid": userid, "cmid": cmid, "newstate": 1 if completed else 0})
        if result.get("tracking") == 0:
            raise self._fail(f"course module {cmid} has no completion tracking; Moodle ignored the override",
                             "other", "core_completion_override_activity_completion_status", status=200,
                             errorcode="nocompletiontracking", item={"userid": userid, "cmid": cmid})
        return result

    def create_calendar_events(self, events: list[dict]) -> BatchResult:
        """Create events as the token's user; refused events come back in `failed` (from `warnings`)."""
        if not events:
            return BatchResult()
        result = self.call_chunked("core_calendar_create_calendar_events", "events", events)
        failed = [self._fail(w.get("message", ""), classify(w.get("warningcode")),
                             "core_calendar_create_calendar_events", status=200, errorcode=w.get("warningcode"),
                             item={"item": w.get("item"), "itemid": w.get("itemid")})
                  for w in result.get("warnings", [])]
        return BatchResult(done=result.get("events", []), failed=failed)

    def delete_calendar_events(self, event_ids: list[int]) -> None:
        """Delete events (single occurrences); needs core_calendar_delete_calendar_events in the service."""
        self.call_chunked("core_calendar_delete_calendar_events", "events",
                          [{"eventid": event_id, "repeat": False} for event_id in event_ids])

    def send_instant_messages(self, messages: list[tuple]) -> BatchResult:
        """Send (touserid, text[, clientmsgid]) as the token's user; `msgid: -1` entries land in `failed`."""
        rows = [{"touserid": m[0], "text": m[1], "textformat": 1, **({"clientmsgid": m[2]} if len(m) > 2 else {})}
                for m in messages]
        outcome = BatchResult()
        for row, sent in zip(rows, self.call_chunked("core_message_send_instant_messages", "messages", rows)):
            if sent.get("msgid", -1) == -1:
                text = sent.get("errormessage", "")
                kind = "not_found" if "exist" in text else ("missing_capability" if "message" in text else "other")
                outcome.failed.append(self._fail(text, kind, "core_message_send_instant_messages", status=200,
                                                 errorcode="messagenotsent",
                                                 item={"touserid": row["touserid"],
                                                       "clientmsgid": row.get("clientmsgid")}))
            else:
                outcome.done.append(sent)
        return outcome

    def get_grade_items(self, courseid: int, userid: int = 0) -> list[dict]:
        """gradereport_user_get_grade_items `usergrades` (every user when userid is 0)."""
        params = {"courseid": courseid, **({"userid": userid} if userid else {})}
        return self.call("gradereport_user_get_grade_items", params)["usergrades"]

    def quiz_user_attempts(self, quizid: int, userid: int, status: str = "finished") -> list[dict]:
        """mod_quiz_get_user_attempts `attempts` of another user (needs mod/quiz:viewreports in the course)."""
        return self.call("mod_quiz_get_user_attempts", {"quizid": quizid, "userid": userid, "status": status,
                                                        "includepreviews": False})["attempts"]

    def quiz_attempt_review(self, attemptid: int) -> dict:
        """mod_quiz_get_attempt_review of a finished attempt, every page: `questions` carry slot, mark, maxmark."""
        return self.call("mod_quiz_get_attempt_review", {"attemptid": attemptid, "page": -1})
