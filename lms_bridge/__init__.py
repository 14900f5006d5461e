"""lms_bridge: an LTI 1.3 tool for the course project workflow and expert consultations."""
from __future__ import annotations

import logging
from pathlib import Path

import requests
from flask import Flask, Response
from flask.sessions import SessionInterface
from werkzeug.routing import IntegerConverter, ValidationError

from . import config as settings


class NoSessions(SessionInterface):
    """The tool keeps no cookie session: pages carry a signed launch token (see `lti.context`), because
    LMS iframes often block third-party cookies. Skipping Flask's cookie session saves work on every request."""

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response):
        return None


class BoundedInt(IntegerConverter):
    """`<int:...>` in every route: ids that fit SQLite's int64, else 404 (not an OverflowError and a 500)."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        from .bounds import INT64_MAX

        super().__init__(map, fixed_digits, 0 if min is None else min, INT64_MAX if max is None else max, signed)

    def to_python(self, value: str):
        if len(value) > 19:
            raise ValidationError()
        return super().to_python(value)


class ToolResponse(Response):
    """Every answer carries these headers from the moment it is made (cheaper than an after-request hook).
    The tool lives inside the LMS iframe: framing is allowed, but pages stay out of shared caches."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Constant, valid values appended to werkzeug's header list as they are: Headers.setdefault would
        # re-validate each one and cost twice the response itself.
        items = self.headers._list
        present = {name.lower() for name, _value in items}
        if "x-content-type-options" not in present:
            items.append(("X-Content-Type-Options", "nosniff"))
        if "referrer-policy" not in present:
            items.append(("Referrer-Policy", "no-referrer"))
        if "cache-control" not in present and self.headers.get("Content-Type", "").startswith("text/html"):
            items.append(("Cache-Control", "no-store"))


def create_app(config: dict | None = None) -> Flask:
    """Application factory: defaults, environment, then `config` (tests and `demo` pass overrides)."""
    app = Flask(__name__, instance_relative_config=False)
    values = settings.load(config)
    Path(values["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    if not values.get("SECRET_KEY"):
        values["SECRET_KEY"] = settings.secret_key(values["DATA_DIR"])
    app.config.from_mapping(values)
    app.session_interface = NoSessions()
    app.response_class = ToolResponse
    app.url_map.converters["int"] = BoundedInt
    app.config["MAX_CONTENT_LENGTH"] = (values["MAX_UPLOAD_MB"] + 1) * 1024 * 1024
    app.extensions["lms_bridge_http"] = (config or {}).get("HTTP_SESSION") or requests.Session()
    logging.getLogger("lms_bridge").setLevel(logging.INFO)

    from . import db, errors, i18n, main, ops, security
    from .booking import views as booking_views
    from .evaluation import views as evaluation_views
    from .lti import deep_linking, views
    from .practices import views as practice_views
    from .privacy import views as privacy_views
    from .projects import views as project_views
    from .sync import views as sync_views

    db.init_app(app)
    errors.init_app(app)
    security.init_app(app)  # same-site check, CSP with nonces, the launch cookie
    i18n.init_app(app)
    # Pages with their own time-zone form (and booking's participant page, which passes tz_known); every other
    # page offers base.html's (browser zone, else named UTC).
    app.jinja_env.globals["TZ_FORM_PAGES"] = ("projects.workspace", "projects.stage", "projects.deadlines", "projects.audit")
    ops.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(deep_linking.bp)
    app.register_blueprint(main.bp)
    for workflow in (project_views, booking_views, sync_views, practice_views, privacy_views, evaluation_views):
        workflow.init_app(app)
    if app.config["SANDBOX_ENABLED"]:
        from .sandbox import init_app as init_sandbox

        init_sandbox(app)

    return app

