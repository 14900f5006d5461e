"""Landing after a launch, the learner, facilitator and administrator homes, and the health check."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for

from . import activities
from .db import get_db
from .db import lti as q
from .lti.context import current_launch, requires_launch

bp = Blueprint("main", __name__)
HEALTH_PROBES = []  # callables(db) -> dict merged into /healthz (the outbox adds its backlog)
HOME_LINKS = []  # callables(launch) -> [(key, title, description, url)]: extra cards on the home page


@bp.get("/")
def index():
    return render_template("index.html", tool_url=current_app.config["TOOL_URL"])


@bp.get("/app/landing")
@requires_launch()
def landing():
    launch = current_launch()
    from .projects.service import record_launch

    record_launch(get_db(), launch)  # every launch puts its person on the course roster (experts are chosen there)
    if launch.message_type == "LtiDeepLinkingRequest":
        return redirect(url_for("deep_linking.picker", lt=launch.token), 303)
    if launch.message_type == "LtiSubmissionReviewRequest" and activities.endpoint_for("review"):
        return redirect(url_for(activities.endpoint_for("review"), lt=launch.token), 303)
    return redirect(activities.landing_url(launch.activity, launch.token), 303)


@bp.get("/app/home")
@requires_launch()
def home():
    launch = current_launch()
    links = [(key, title, activities.DESCRIPTIONS[key], activities.endpoint_for(key))
             for key, (title, _max) in activities.CATALOGUE.items()]
    health = _sync_health(launch) if launch.role == "admin" else None
    extra = [card for provider in HOME_LINKS for card in provider(launch)]
    return render_template("home.html", launch=launch, links=links, health=health, extra=extra)


def _sync_health(launch) -> dict:
    """What an administrator checks first: is the tool's traffic to the LMS flowing?"""
    from babel.dates import format_timedelta

    from .booking.zones import format_in_zone, resolve_tz
    from .db import outbox
    from .i18n import babel_locale

    health = outbox.sync_health(get_db(), launch.platform_id)
    tz = resolve_tz(launch.timezone, "UTC")
    age = health["oldest_pending_seconds"]
    health["oldest_text"] = format_timedelta(age, locale=babel_locale()) if age is not None else None
    health["last_text"] = format_in_zone(health["last_delivery"], tz) if health["last_delivery"] else None
    health["ok"] = not health["failed"] and (age is None or age < 3600)
    return health


@bp.get("/app/admin/platforms")
@requires_launch("admin")
def platforms():
    """Read-only: this platform's registration as the tool holds it, and the tool's signing keys."""
    from lti_config.keys import jwks

    launch, db = current_launch(), get_db()
    platform = next((p for p in q.list_platforms(db) if p["id"] == launch.platform_id), None)
    published = {k["kid"] for k in jwks(db, current_app.config["KEY_GRACE_DAYS"])["keys"]}
    keys = [dict(k, state="active" if k["retired_at"] is None else ("published" if k["kid"] in published
                                                                    else "expired"))
            for k in reversed(q.all_tool_keys(db))]
    from .booking.zones import resolve_tz

    return render_template("admin_platforms.html", launch=launch, platform=platform, keys=keys,
                           tz=resolve_tz(launch.timezone, "UTC"), tool_url=current_app.config["TOOL_URL"].rstrip("/"))


@bp.get("/healthz")
def healthz():
    from .config import is_postgres
    from .errors import store_unreachable

    store = "postgresql" if is_postgres(current_app.config["DATABASE_URL"]) else "sqlite"
    report = {"database": False, "store": store, "active_key": False}
    status = 200
    try:
        db = get_db()
        db.execute("SELECT 1").fetchone()
        report["database"] = True
        report["active_key"] = q.active_tool_key(db) is not None
        for probe in HEALTH_PROBES:
            report.update(probe(db))
    except Exception as e:  # a health check reports, it does not fail
        report["error"] = type(e).__name__
        if store_unreachable(e):  # the reason (host, port) goes to the log, not to a public page
            report["database"] = False
            current_app.logger.error("healthz: %s", store_unreachable(e))
    if not (report["database"] and report["active_key"]):
        status = 503
    report["ok"] = status == 200
    return jsonify(report), status
