"""Named errors with an HTTP status, handled in one place: an HTML page in the LMS frame or JSON."""
from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .i18n import N_, gettext

log = logging.getLogger("lms_bridge")


class BridgeError(Exception):
    """Base of every refusal the tool explains to a person or a platform."""

    status = 400
    code = "bad_request"
    title = N_("Request refused")

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class LaunchError(BridgeError):
    """An LTI login or launch failed validation; `code` names the reason (logged without personal data)."""

    title = N_("This launch could not be accepted")


class NotAuthorized(BridgeError):
    status = 403
    code = "forbidden"
    title = N_("Not allowed")


class LaunchExpired(BridgeError):
    status = 401
    code = "launch_expired"
    title = N_("Your session in this tool has expired")


class NotFound(BridgeError):
    status = 404
    code = "not_found"
    title = N_("Not found")


class Conflict(BridgeError):
    status = 409
    code = "conflict"
    title = N_("Already changed")


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, title: str, message: str):
    if wants_json():
        return jsonify({"ok": False, "error": code, "title": title, "message": message, "status": status}), status
    # Titles and fixed messages are marked where they are defined; translate them for the reader here.
    return render_template("error.html", status=status, code=code, title=gettext(title),
                           message=gettext(message) if message else message), status


def store_unreachable(err: BaseException) -> str | None:
    """Why the store cannot be reached, when `err` says so (PostgreSQL down or unreachable), else None."""
    import sys

    pg = sys.modules.get("lms_bridge.db.pg")  # only a PostgreSQL store raises these, and it imported them
    if pg is None:
        return None
    import psycopg

    if isinstance(err, pg.Unreachable):
        return str(err)
    if isinstance(err, psycopg.OperationalError):  # the server went away after the connection was made
        lines = str(err).strip().splitlines()
        return f"lost the connection to PostgreSQL: {lines[0] if lines else type(err).__name__}"
    return None


def init_app(app):
    @app.errorhandler(BridgeError)
    def _bridge(err: BridgeError):
        if isinstance(err, LaunchError):
            route = request.url_rule.rule if request.url_rule else "-"  # never the path: it may carry a code
            log.warning("launch refused: %s", err.code, extra={"kv": {"status": err.status, "reason": err.code,
                                                                      "detail": err.message, "route": route}})
        return error_response(err.status, err.code, err.title, err.message)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        return error_response(err.code or 500, (err.name or "error").lower().replace(" ", "_"),
                              err.name or "Error", err.description or "")

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if store_unreachable(err):
            # The server or the network is down, not the tool: one log line, and a page that says try again.
            log.error("store unreachable on %s: %s", request.path, store_unreachable(err))
            response, status = error_response(503, "store_unavailable", N_("Something went wrong"), N_(
                "The tool hit an unexpected problem. Nothing you submitted was lost; please try again."))
            response = app.make_response((response, status))
            response.headers["Retry-After"] = "30"
            return response
        log.exception("unexpected error on %s", request.path)
        return error_response(500, "internal_error", N_("Something went wrong"),
                              N_("The tool hit an unexpected problem. Nothing you submitted was lost; please try again."))
