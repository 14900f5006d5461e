"""Structured log lines (key=value or JSON) with a request id; tokens and e-mail addresses scrubbed.

Messages name ids and reasons, never people: a test runs a full flow and searches the log for the
launch token, the id_token and every name and e-mail address of the sandbox course.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import has_request_context, request

LOGGER = "lms_bridge"
_HANDLER_FLAG = "_lms_bridge_handler"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_SCRUBS = (
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), "[jwt]"),
    (re.compile(r"(?i)\b(lt|id_token|token|wstoken|access_token|state|nonce|code|registration_token|login_hint"
                r"|lti_message_hint|client_assertion)=([^&\s\"']+)"), r"\1=[redacted]"),
    (re.compile(r"[\w-]{16,}\.[\w-]{4,}\.[\w-]{16,}"), "[token]"),  # a signed launch token (`lt`)
    (re.compile(r"[\w.%+-]+@[\w-]+(\.[\w-]+)+"), "[email]"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


_RID, _STARTED = "lms_bridge.request_id", "lms_bridge.started"


def request_id() -> str | None:
    # On the request's environ, not `g`: a request nested in another (the in-process sandbox) shares `g`.
    return request.environ.get(_RID) if has_request_context() else None


class StructuredFormatter(logging.Formatter):
    """`ts level logger request_id event` plus the record's `kv` fields, as key=value or one JSON object."""

    def __init__(self, style: str = "kv"):
        super().__init__()
        self.json = style == "json"

    def fields(self, record: logging.LogRecord) -> dict:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name}
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        out["event"] = scrub(record.getMessage())
        for key, value in (getattr(record, "kv", None) or {}).items():
            out[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return out

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        if self.json:
            return json.dumps(fields, default=str, ensure_ascii=False)
        return " ".join(f"{k}={_kv_value(v)}" for k, v in fields.items())


def _kv_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or re.search(r'[\s"=\\]', text):
        return json.dumps(text, ensure_ascii=False)
    return text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id()
        return True


def configure(config: dict, stream=None) -> logging.Handler:
    """Send the `lms_bridge` loggers to stderr (or `stream`) in the configured format; idempotent."""
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(StructuredFormatter(str(config.get("LOG_FORMAT", "kv")).lower()))
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)
    logger.setLevel(str(config.get("LOG_LEVEL", "INFO")).upper())
    return handler


def init_app(app) -> None:
    access = logging.getLogger(LOGGER + ".access")
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)

    @app.before_request
    def _request_id():
        given = request.headers.get("X-Request-ID", "")
        request.environ[_RID] = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        request.environ[_STARTED] = time.perf_counter()

    @app.after_request
    def _access(resp):
        rid = request_id()
        if rid:
            resp.headers.setdefault("X-Request-ID", rid)
        if app.config.get("ACCESS_LOG"):
            # The route pattern, never the path or query string: both can carry launch tokens and codes.
            route = request.url_rule.rule if request.url_rule else "-"
            ms = round((time.perf_counter() - request.environ.get(_STARTED, time.perf_counter())) * 1000, 1)
            access.info("%s %s %s", request.method, route, resp.status_code,
                        extra={"kv": {"method": request.method, "route": route, "status": resp.status_code,
                                      "ms": ms, "bytes": resp.calculate_content_length()}})
        return resp

    from .. import main

    if _identity not in main.HEALTH_PROBES:
        main.HEALTH_PROBES.append(_identity)


def _identity(_db) -> dict:
    """Lets `doctor` see that the public URL reaches this tool and whether the proxy's scheme got through."""
    return {"tool": "lms_bridge", "scheme": request.scheme}
