"""Landing after a launch, the learner and facilitator home, and the health check."""
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
    extra = [card for provider in HOME_LINKS for card in provider(launch)]
    return render_template("home.html", launch=launch, links=links, extra=extra)


@bp.get("/healthz")
def healthz():
    report = {"database": False, "active_key": False}
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
    if not (report["database"] and report["active_key"]):
        status = 503
    report["ok"] = status == 200
    return jsonify(report), status
