"""The outbox page for administrators (retry failed jobs) and the /healthz backlog probe."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from ..db import get_db
from ..db import outbox as ob
from ..errors import NotFound
from ..i18n import N_
from ..lti.context import current_launch, requires_launch

bp = Blueprint("sync", __name__, url_prefix="/app/sync")
KIND_LABELS = {"ags_score": N_("Grade (AGS)"), "ws_grade": N_("Grade (web service)"), "ws_completion": N_("Completion"),
               "ws_calendar": N_("Calendar event"), "ws_message": N_("Message")}
STATE_LABELS = {"pending": N_("Waiting"), "claimed": N_("Being delivered"), "delivered": N_("Delivered"),
                "failed": N_("Failed"), "superseded": N_("Replaced by a newer job"), "waiting": N_("Waiting for set-up")}


def health_probe(db) -> dict:
    return ob.backlog(db)


def in_course(job: dict, platform_id: int, context_id: str, deployment_id: str | None = None) -> bool:
    """Grades carry the context in their order key; web-service jobs name the Moodle course (= context id).
    Jobs that name their deployment belong to that deployment's course only."""
    named = job["payload"].get("deployment_id")
    if deployment_id is not None and named is not None and str(named) != str(deployment_id):
        return False
    if (job.get("order_key") or "").startswith(f"score:{platform_id}:{context_id}:"):
        return True
    return str(job["payload"].get("course_id", "")) == str(context_id)


@bp.get("/outbox")
@requires_launch("admin", "facilitator")
def outbox():
    """Admins see and retry the platform's jobs; facilitators see their course's backlog, read-only."""
    launch = current_launch()
    show = request.args.get("show", "open")
    states = ("failed",) if show == "failed" else ("pending", "failed")
    jobs = ob.jobs_for_platform(get_db(), launch.platform_id, states=states)
    if launch.role != "admin":
        jobs = [j for j in jobs if in_course(j, launch.platform_id, launch.context_id, launch.deployment_id)]
    retried = request.args.get("retried", type=int)
    return render_template("sync/outbox.html", launch=launch, jobs=jobs, show=show, labels=KIND_LABELS, states=STATE_LABELS,
                           backlog=ob.backlog(get_db()), can_retry=launch.role == "admin", retried=retried)


@bp.post("/outbox/<int:job_id>/retry")
@requires_launch("admin")
def retry(job_id: int):
    launch = current_launch()
    if not ob.retry_for_platform(get_db(), launch.platform_id, job_id):
        raise NotFound(f"Job {job_id} is not a failed job of this platform.", code="job_not_failed")
    # A query parameter, not a flashed message: flashing needs a cookie, which LMS iframes often block.
    return redirect(url_for("sync.outbox", lt=launch.token, retried=job_id), 303)


def init_app(app):
    from .. import main

    app.register_blueprint(bp)
    if health_probe not in main.HEALTH_PROBES:
        main.HEALTH_PROBES.append(health_probe)
