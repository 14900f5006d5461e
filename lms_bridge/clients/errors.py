"""Named errors of the outbound clients, and how Moodle's error codes map to what a caller does."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

ERROR_KINDS = ("invalid_token", "missing_capability", "function_not_in_service", "invalid_parameter",
               "not_found", "transient", "other")
PERMANENT_KINDS = frozenset({"invalid_token", "missing_capability", "function_not_in_service", "invalid_parameter"})

_CODE_KINDS = {
    "invalidtoken": "invalid_token",
    "accessexception": "missing_capability",
    "nopermissions": "missing_capability",
    "nopermission": "missing_capability",
    "requireloginerror": "missing_capability",
    "servicenotavailable": "function_not_in_service",
    "invalidparameter": "invalid_parameter",
    "invalidrecord": "not_found",
    "invalidrecordunknown": "not_found",
    "invalidcoursemodule": "not_found",
    "invalidcourseid": "not_found",
    "invaliduser": "not_found",
    "invaliduserid": "not_found",
    "sitemaintenance": "transient",
}
_EXCEPTION_KINDS = {
    "webservice_access_exception": "missing_capability",
    "required_capability_exception": "missing_capability",
    "invalid_parameter_exception": "invalid_parameter",
    "dml_missing_record_exception": "not_found",
}


def classify(errorcode: str | None, exception: str | None = None, message: str = "") -> str:
    """Map a Moodle errorcode (or exception class) to one of ERROR_KINDS."""
    if errorcode == "invalidrecord" and "external_functions" in (message or ""):
        return "function_not_in_service"
    if errorcode in _CODE_KINDS:
        return _CODE_KINDS[errorcode]
    short = (exception or "").rsplit("\\", 1)[-1]
    return _EXCEPTION_KINDS.get(short, "other")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class MoodleError(Exception):
    """A failed web-service call; `kind` says what to do, the token never appears in it."""

    def __init__(self, message: str, *, kind: str, url: str, wsfunction: str | None = None,
                 status: int | None = None, body: str | None = None, errorcode: str | None = None,
                 exception: str | None = None, debuginfo: str | None = None,
                 retry_after: float | None = None, item: object = None):
        self.message, self.kind, self.url, self.wsfunction = message, kind, url, wsfunction
        self.status, self.body, self.errorcode, self.exception = status, body, errorcode, exception
        self.debuginfo, self.retry_after, self.item = debuginfo, retry_after, item
        super().__init__(str(self))

    @property
    def permanent(self) -> bool:
        """True when retrying cannot help until an admin fixes token, service or role."""
        return self.kind in PERMANENT_KINDS

    @property
    def transient(self) -> bool:
        return self.kind == "transient"

    def __str__(self) -> str:
        code = self.errorcode or self.kind
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"{self.wsfunction or 'moodle'}: {code} ({self.kind}): {self.message} [{status}, {self.url}]"

    def __repr__(self) -> str:
        return f"MoodleError(kind={self.kind!r}, errorcode={self.errorcode!r}, wsfunction={self.wsfunction!r})"


@dataclass
class BatchResult:
    """Outcome of a batch call: what Moodle did, and one MoodleError per item it refused."""

    done: list = field(default_factory=list)
    failed: list[MoodleError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class LtiServiceError(Exception):
    """A failed token or service call; `reason` holds Moodle's explanation (the HTTP reason phrase)."""

    def __init__(self, message: str, *, url: str, status: int | None = None, reason: str | None = None,
                 body: str | None = None, error: str | None = None, retry_after: float | None = None,
                 already_applied: bool = False):
        self.message, self.url, self.status, self.reason, self.body = message, url, status, reason, body
        self.error, self.retry_after, self.already_applied = error, retry_after, already_applied
        super().__init__(str(self))

    @property
    def transient(self) -> bool:
        """No answer, a server error or throttling: worth retrying later."""
        return self.status is None or self.status >= 500 or self.status == 429

    @property
    def permanent(self) -> bool:
        return not self.transient

    def __str__(self) -> str:
        status = f"HTTP {self.status} {self.reason or ''}".strip() if self.status is not None else "no response"
        return f"{self.message} [{status}, {self.url}]"
