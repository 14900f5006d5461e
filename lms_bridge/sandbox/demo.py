"""The demo course's content, so a newcomer who runs `make demo` sees every page with something in it.

Seeds are plain functions registered with `@seed("name")`; `run_seeds` runs each one once (recorded in
`demo_seeds`), in registration order, through the tool's domain functions as the sandbox's users would.
To add content for your own part of the tool, write a function taking a `DemoCourse` and decorate it:

    @seed("eval_tests")
    def _pre_post_tests(course): ...

and import its module from `SEED_MODULES` (or put it here). Dates are relative to the day of seeding.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from . import COURSE_ID, COURSE_TITLE, DEPLOYMENT_ID, LINKS, USERS, issuer

SEEDS: list[tuple[str, Callable[["DemoCourse"], None]]] = []
SEED_MODULES: list[str] = [  # other modules holding @seed functions, imported before seeding
    "lms_bridge.sandbox.demo_library",
    "lms_bridge.evaluation.demo",
]
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


def seed(name: str):
    """Register a seed function under a stable name (renaming it makes it run again)."""
    def register(fn):
        if all(n != name for n, _ in SEEDS):
            SEEDS.append((name, fn))
        return fn
    return register


@dataclass
class DemoCourse:
    """The sandbox course as the tool sees it: its scope, a clock, and launches for its people."""

    db: object
    tool_url: str
    platform_id: int
    data_dir: str
    now: datetime

    @property
    def scope(self) -> tuple[int, str, str]:
        return (self.platform_id, DEPLOYMENT_ID, COURSE_ID)

    def launch(self, user_id: str, activity: str = "home"):
        """A launch for a sandbox user, shaped like one the tool accepted (for domain functions)."""
        from ..lti.context import Launch
        from ..lti.validate import role_of
        from .platform import service_urls

        user = USERS[user_id]
        urls = service_urls(issuer(self.tool_url))
        link = next((rl for rl, (a, _t) in LINKS.items() if a == activity), None)
        values = {
            "id": f"demo-{user_id}-{activity}", "platform_id": self.platform_id, "deployment_id": DEPLOYMENT_ID,
            "context_id": COURSE_ID, "context_title": COURSE_TITLE, "user_id": user.id, "user_name": user.name,
            "user_email": user.email, "role": role_of(list(user.roles)), "message_type": "LtiResourceLinkRequest",
            "resource_link_id": link, "activity": activity, "timezone": user.timezone,
            "claims": {AGS: {"lineitems": urls["lineitems"]}, NRPS: {"context_memberships_url": urls["memberships"]}},
        }
        return Launch(**{f.name: values.get(f.name, None if f.default is dataclasses.MISSING else f.default)
                         for f in dataclasses.fields(Launch)})

    def at(self, days: int, hour: int, minute: int = 0, tz: str = "UTC") -> datetime:
        """A wall-clock time `days` from today in `tz`, as an aware datetime."""
        from zoneinfo import ZoneInfo

        day = self.now.astimezone(ZoneInfo(tz)).date() + timedelta(days=days)
        return datetime.combine(day, time(hour, minute), ZoneInfo(tz))


def run_seeds(app, now: datetime | None = None) -> list[str]:
    """Run every seed not yet run against the app's database; returns the names that ran."""
    from ..db import connect, write_transaction
    from ..db import demo as dq
    from ..db import lti as lq

    for module in SEED_MODULES:
        importlib.import_module(module)
    db = connect(app.config["DATABASE_URL"])
    ran = []
    try:
        platform = lq.find_platform(db, issuer(app.config["TOOL_URL"]), "sandbox-client")
        course = DemoCourse(db, app.config["TOOL_URL"], platform["id"], app.config["DATA_DIR"],
                            now or datetime.now(timezone.utc))
        done = dq.seeded(db)
        for name, fn in SEEDS:
            if name in done:
                continue
            with app.test_request_context():
                fn(course)
            with write_transaction(db):
                dq.mark_seeded(db, name)
            ran.append(name)
    finally:
        db.close()
    return ran


# --- the course's own content ---------------------------------------------------------------------

PLAN = {"city": "Jakarta", "country": "ID", "problem": "Public water points are out of reach for wheelchair users.",
        "affected_groups": "People with disabilities, older people", "sdgs": ["6", "10"],
        "hrba_principles": ["participation_inclusion", "equality_non_discrimination"], "sdg_targets": "6.1, 10.2",
        "stakeholders": "City water office, organisations of persons with disabilities",
        "activities": "Accessibility audit with residents, redesign, pilot in two districts",
        "indicators": "Share of water points with step-free access", "risks": "Budget cuts after the election"}


@seed("roster")
def _roster(course: DemoCourse) -> None:
    """Everyone has opened the course once, as after a first launch."""
    from ..projects import service

    for user_id in USERS:
        service.record_launch(course.db, course.launch(user_id))


@seed("experts")
def _experts(course: DemoCourse) -> None:
    """Two experts in different zones (Seoul, Stockholm) with weekly hours for the next four weeks."""
    from ..booking import service
    from ..booking.availability import Availability, WeeklyRule
    from ..db import booking as bq
    from ..db import write_transaction

    today = course.now.date()
    people = [
        ("4", "Former secretariat officer of a UN treaty body; advises cities on rights-based indicators.",
         ["UN human rights mechanisms", "Data and indicators"], ["English", "Korean"], "Asia/Seoul",
         [WeeklyRule(1, time(10), time(12)), WeeklyRule(3, time(14), time(16, 30))]),
        ("3", "Works with Swedish municipalities on voluntary local reviews and gender budgeting.",
         ["SDG localisation and voluntary local reviews", "Gender equality"], ["English", "Bahasa Indonesia"],
         "Europe/Stockholm", [WeeklyRule(0, time(8), time(10)), WeeklyRule(4, time(7, 30), time(9, 30))]),
    ]
    with write_transaction(course.db):
        bq.save_settings(course.db, course.scope, max_total=None, max_active=3, cancel_deadline_hours=24,
                         min_notice_minutes=60, staff_experts=True)
    for user_id, bio, topics, languages, tz, weekly in people:
        user = USERS[user_id]
        with write_transaction(course.db):
            expert_id = bq.upsert_expert(course.db, course.scope, user_id, name=user.name, email=user.email,
                                         timezone=tz)
            bq.update_profile(course.db, expert_id, bio=bio, topics=topics, languages=languages, timezone=tz,
                              meeting_url=f"https://meet.example.org/{user.username}")
            rows = [{"day": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[r.weekday],
                     "start": f"{r.start:%H:%M}", "end": f"{r.end:%H:%M}"} for r in weekly]
            bq.save_availability(course.db, expert_id, {
                "tz": tz, "valid_from": str(today), "valid_until": str(today + timedelta(days=28)), "weekly": rows,
                "one_off": [], "days_off": [], "slot_minutes": "45", "buffer_minutes": "15", "capacity": "1"})
        service.publish(course.db, expert_id, Availability(
            tz=tz, valid_from=today, valid_until=today + timedelta(days=28), weekly=weekly, slot_minutes=45,
            buffer_minutes=15), course.now)


@seed("deadlines")
def _deadlines(course: DemoCourse) -> None:
    from ..projects import review

    fac = course.launch("3")
    zone = "Europe/Stockholm"
    for stage, days in (("project_plan", 6), ("project_report", 35), ("final_presentation", 49)):
        due = course.at(days, 17, tz=zone)
        review.set_deadline(course.db, fac, stage, due.strftime("%Y-%m-%dT%H:%M"),
                            (due + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"), zone)


@seed("submissions")
def _submissions(course: DemoCourse) -> None:
    """Lina: plan graded and released, report in draft; Teuea: plan submitted; Asha: plan returned."""
    from ..projects import review, service
    from ..projects.rubric import Rubric

    def plan(user_id: str, title: str, submit: bool = True, **changes):
        launch = course.launch(user_id, "project_plan")
        return service.save_stage(course.db, launch, "project_plan", dict(PLAN, title=title, **changes), [],
                                  submit=submit, data_dir=course.data_dir, max_bytes=10 << 20)

    fac = course.launch("3", "project_plan")
    lina = plan("5", "Accessible water points in Jakarta")
    rubric: Rubric = review.course_rubric(course.db, course.scope)
    best = {c.id: max(c.levels, key=lambda level: level.points).id for c in rubric.criteria}
    best[rubric.criteria[-1].id] = sorted(rubric.criteria[-1].levels, key=lambda level: level.points)[-2].id
    review.act(course.db, fac, lina["project_id"], "project_plan", "grade", selections=best,
               comment="A clear, rights-based plan. Name who collects the indicator data and how often.")
    review.act(course.db, fac, lina["project_id"], "project_plan", "mark_ready")
    review.act(course.db, fac, lina["project_id"], "project_plan", "release")
    service.save_stage(course.db, course.launch("5", "project_report"), "project_report",
                       {"what_was_done": "An accessibility audit of 40 water points in two districts, with residents."}, [], submit=False,
                       data_dir=course.data_dir, max_bytes=10 << 20)
    plan("6", "Safe drinking water for outer-island schools in Tarawa", city="South Tarawa", country="KI")
    asha = plan("7", "Inclusive ward budgeting in Pokhara", city="Pokhara", country="NP", sdgs=["5", "16"],
                sdg_targets="5.5, 16.7")
    review.act(course.db, fac, asha["project_id"], "project_plan", "return_for_revision",
               comment="Please say which groups take part in the ward meetings and how you reach them.")


@seed("booking")
def _booking(course: DemoCourse) -> None:
    """Lina books Eun-ji's first free time for a question about her indicators."""
    from ..booking import service
    from ..db import booking as bq
    from ..db import ts

    expert = bq.expert_by_user(course.db, course.scope, "4")
    after = ts(course.now + timedelta(days=1))
    slot = next(iter(bq.open_slots(course.db, expert["id"], after)), None)
    if slot is None:
        return
    user = USERS["5"]
    service.book(course.db, course.scope, slot["id"], service.Person(user.id, user.name, user.email, user.timezone),
                 course.now, topic="Data and indicators",
                 question="Which indicators would show that the new water points are accessible in practice?",
                 project="Accessible water points in Jakarta")
