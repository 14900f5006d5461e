"""What the evaluation adds outside its pages: home-page cards, the worker's pass step and the refresh job."""
from __future__ import annotations

from datetime import timedelta

from flask import url_for

from ..db import evaluation as q
from ..db import get_db, ts, utcnow, write_transaction
from ..db import lti as lq
from ..i18n import gettext as _
from ..lti.context import Launch
from . import grades, tracer


def home_links(launch: Launch) -> list[tuple]:
    """Cards on the tool's home page: reports for facilitators; profile and open surveys for learners."""
    if launch.is_staff:
        return [("learning_gain", _("Learning gain"), _("Pre- and post-test results side by side, per cohort, "
                                                        "country, organisation type and module."),
                 url_for("evaluation.gain_report", lt=launch.token)),
                ("tracer_study", _("Tracer studies"), _("Follow alumni months after the course: schedule, "
                                                        "questions, response rate and answers."),
                 url_for("evaluation.tracer_overview", lt=launch.token))]
    if launch.role != "learner":
        return []
    links = [("profile", _("Your profile"), _("Your organisation type, and whether the course team may contact "
                                               "you after the course."),
              url_for("evaluation.profile", lt=launch.token))]
    if q.open_rounds_for(get_db(), launch.scope, ts()):
        links.insert(0, ("tracer_survey", _("Tracer study"), _("Tell the course team what happened with your "
                                                                "project since the course."),
                         url_for("evaluation.survey_list", lt=launch.token)))
    return links


def queue_due(app) -> dict:
    """The worker's pass step: tracer invitations and reminders, and the daily grade refresh of each course."""
    from ..db import connect
    from ..db import outbox

    db = connect(app.config["DATABASE_URL"])
    try:
        now = utcnow()
        sent = tracer.queue_due(db, now)
        queued = 0
        with write_transaction(db):
            for scope in q.courses_due_refresh(db, ts(now - timedelta(days=1))):
                if lq.get_moodle_ws(db, scope[0]):
                    outbox.enqueue(db, platform_id=scope[0], kind="eval_refresh",
                                   payload={"deployment_id": scope[1], "context_id": scope[2]},
                                   dedupe_key=f"eval_refresh:{scope[0]}:{scope[1]}:{scope[2]}")
                    queued += 1
                q.mark_queued(db, scope, ts(now))
        return {"messages": sent, "refreshes": queued}
    finally:
        db.close()


def eval_refresh(d, job) -> str | None:
    """Outbox handler: re-read one course's pre/post grades (the daily refresh)."""
    p = job["payload"]
    grades.refresh(d.db, d.moodle(), (d.platform["id"], p["deployment_id"], p["context_id"]))
    return None


def init_app(app) -> None:
    from .. import activities, main
    from ..sync import handlers
    from ..sync.views import KIND_LABELS

    KIND_LABELS.setdefault("eval_refresh", "Pre/post test grades")
    activities.register("tracer_study", "evaluation.open_activity")
    handlers.HANDLERS.setdefault("eval_refresh", eval_refresh)
    if home_links not in main.HOME_LINKS:
        main.HOME_LINKS.append(home_links)
