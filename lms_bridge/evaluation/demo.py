"""Demo data for `lms-bridge demo`: pre/post test attempts in the sandbox LMS, read into the tool the way the
worker reads them, and one tracer-study round with answers, so both reports show something at once."""
from __future__ import annotations

import random
from datetime import timedelta

from ..db import evaluation as q
from ..db import lti as lq
from ..db import projects as pq
from ..db import sandbox as sq
from ..db import ts, utcnow, write_transaction
from ..db import sandbox_quiz as qz
from ..sandbox.demo import DemoCourse
from ..sandbox.demo import seed as demo_seed

COHORT = 24  # synthetic alumni besides the sandbox's three learners
COUNTRIES = ("ID", "PH", "NP", "BD", "LK", "MY", "KI", "MV")
ORGS = ("local_government", "local_government", "cso", "nhri", "other")
PLAN = {"title": "Child-friendly budget hearings", "city": "Surakarta", "country": "ID",
        "problem": "Children's needs are missing from the municipal budget.", "affected_groups": "Children in "
        "informal settlements", "hrba_principles": ["participation_inclusion"], "sdgs": ["16"], "sdg_targets": [],
        "stakeholders": "Planning office, CSOs, schools", "activities": "Hearings in four districts",
        "indicators": "1. Four district hearings held with children\n2. 10% of the 2026 social budget "
                      "earmarked for measures children asked for\n3. A child participation regulation drafted",
        "risks": "Budget politics"}


def _marks(rng: random.Random, share: float, slots: int) -> list[float]:
    return [1.0 if rng.random() < share else 0.0 for _ in range(slots)]


def seed(app, db) -> bool:
    """Idempotent: does nothing once the sandbox has quiz attempts. Returns True when it seeded."""
    from ..clients import MoodleClient
    from ..sandbox import COURSE_ID, DEPLOYMENT_ID, issuer, quiz
    from ..sandbox.inprocess import session_for
    from .grades import refresh
    from .tracer import CONSENT_WORDING, DEFAULT_QUESTIONS, way_back

    tool_url = app.config["TOOL_URL"]
    platform = lq.find_platform(db, issuer(tool_url), "sandbox-client")
    if platform is None or qz.flag(db, "quizzes"):
        return False
    scope = (platform["id"], DEPLOYMENT_ID, COURSE_ID)
    rng, slots = random.Random(2021), len(quiz.pool())
    synthetic = sq.seed_roster(db, COHORT)
    people = {"5": "Lina Santoso", "6": "Teuea Tabai", "7": "Asha Gurung",
              **{u: f"Learner No. {u}" for u in synthetic}}
    results = {}
    for n, user in enumerate(people):
        pre_share = rng.uniform(0.2, 0.7)
        post_share = min(1.0, pre_share + rng.uniform(-0.05, 0.4))
        only = n % 9  # a few took one test only
        results[user] = (None if only == 8 else _marks(rng, pre_share, slots),
                         None if only == 7 else _marks(rng, post_share, slots))
    with write_transaction(db):
        quiz.seed(db, results)
        for n, (user, name) in enumerate(people.items()):
            pq.upsert_member(db, scope, user, name, "", "learner", from_launch=False)
            if user in synthetic:  # the sandbox's own learners answer their profile themselves
                q.save_profile(db, scope, user, ORGS[n % len(ORGS)], n % 4 != 3, CONSENT_WORDING)
            if user in synthetic:  # the sandbox's own learners keep an empty workspace to try the project stages
                project = pq.create_project(db, scope, user)
                country = COUNTRIES[n % len(COUNTRIES)]
                plan = dict(PLAN, country=country, title=f"Project of {name}")
                pq.update_project(db, project, plan["title"], country)
                pq.save_submission(db, project, "project_plan", status="submitted", attempt=1, data=plan,
                                   actor=user, submitted_at=ts())
    creds = lq.get_moodle_ws(db, platform["id"])
    client = MoodleClient(session_for(lambda: app, tool_url), creds["url"].removesuffix("/webservice/rest/server.php"),
                          creds["token"])
    refresh(db, client, scope)  # through the web services, as the worker does daily

    now = utcnow()
    with write_transaction(db):
        round_id = q.add_round(db, scope, title="Tracer study, 3 months after the course",
                               opens_at=ts(now - timedelta(days=12)), closes_at=ts(now + timedelta(days=16)),
                               questions=[dict(x) for x in DEFAULT_QUESTIONS],
                               link_url=way_back(db, scope, dict(platform)), created_by="3")
        invited = [r["user_id"] for r in q.consenting_learners(db, scope)]
        q.mark_round_invited(db, round_id, invited, ts(now - timedelta(days=12)))
        for user in invited:
            q.record_message(db, round_id, user, ts(now - timedelta(days=12)), ts(now + timedelta(days=2)))
        for k, user in enumerate(u for u in invited if u != "5"):
            if rng.random() < 0.35:
                continue
            answers = {"implementation": rng.choice(["fully", "partly", "partly", "not"]),
                       "adopted": rng.sample(["policy", "regulation", "budget"], rng.randint(0, 2)) or ["none"],
                       "adopted_detail": "Mayoral decree on participatory budgeting" if k % 3 == 0 else "",
                       "people_reached": str(rng.randint(50, 3000)),
                       "groups_reached": rng.sample(["women_girls", "children_youth", "disabilities", "poverty"], 2),
                       "partners": rng.choice(["Local CSO coalition", "Provincial NHRI office", "University"]),
                       "hrba_applied": rng.sample(["participation_inclusion", "transparency_accountability",
                                                   "equality_non_discrimination"], rng.randint(1, 3)),
                       "indicator_results": "Two of three indicators met; the regulation is in council.",
                       "network_contact": rng.choice(["regular", "occasional", "no"]),
                       "obstacles": rng.choice(["Budget cuts", "Elections changed the leadership", "Staff turnover"]),
                       "support_wanted": rng.choice(["Peer exchange with other cities", "Help with indicators"])}
            q.save_answer(db, round_id, user, answers, submit=True,
                          at=ts(now - timedelta(days=12) + timedelta(days=rng.randint(0, 11), hours=3)))
    return True


@demo_seed("eval_tests_and_tracer")
def _evaluation(course: DemoCourse) -> None:
    from flask import current_app

    seed(current_app._get_current_object(), course.db)
