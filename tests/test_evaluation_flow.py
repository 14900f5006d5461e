"""Monitoring and evaluation end to end through signed sandbox launches: grades read from the sandbox's Moodle
web services, the learning-gain report and CSV, the daily refresh by the worker, tracer-study scheduling,
messages with reminders through the outbox, the survey with drafts, results and who may see them."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from lms_bridge.db import evaluation as eq
from lms_bridge.db import outbox, returning_id, utcnow
from lms_bridge.db import sandbox as sq
from lms_bridge.db import sandbox_quiz as qz
from lms_bridge.evaluation import tracer
from lms_bridge.evaluation.jobs import queue_due
from lms_bridge.sandbox import quiz
from lms_bridge.sandbox.webservice import link_tool
from lms_bridge.sync.worker import deliver_due

SCOPE = (1, "1", "2")
RIGHT, WRONG = 1.0, 0.0


def marks(right: int, total: int = 18) -> list[float]:
    return [RIGHT] * right + [WRONG] * (total - right)


@pytest.fixture
def course(app, db, lti):
    """The sandbox course with web-service credentials, three learners launched, quizzes taken."""
    link_tool(db, app.config["TOOL_URL"])
    for user in ("5", "6", "7"):
        lti.launch(user)
    # learner1 9 -> 15 of 18, learner2 0 -> 9, learner3 only the pre-test, at the maximum
    quiz.seed(db, {"5": (marks(9), marks(15)), "6": (marks(0), marks(9)), "7": (marks(18), None)})
    return db


def facilitator(lti) -> str:
    return lti.launch("3")


def refresh(client, token):
    resp = client.post("/app/evaluation/gain/refresh", data={"lt": token})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return client.get(resp.headers["Location"]).get_data(as_text=True)


def test_refresh_reads_both_tests_from_moodle_and_reports_gain_per_participant(client, lti, course):
    token = facilitator(lti)
    html = refresh(client, token)
    assert "Grades read for 3 participants" in html
    assert "Pre-test: what do you know already?" in html and "Post-test: what have you learned?" in html
    rows = {r["user_id"]: r for r in eq.grades(course, SCOPE)}
    assert (rows["5"]["pre"], rows["5"]["pre_max"], rows["5"]["post"]) == (5.0, 10.0, pytest.approx(8.33333))
    assert rows["7"]["post"] is None
    assert re.search(r'id="both">2<', html) and re.search(r'id="mean-gain">\+41\.7<', html)
    assert "only the pre-test" in html
    row7 = re.search(r'<tr data-user="7">.*?</tr>', html, re.S).group(0)
    assert "only the pre-test" in row7


def test_per_module_results_come_from_the_attempt_reviews_least_improved_first(client, lti, course):
    html = refresh(client, facilitator(lti))
    table = re.search(r'<table id="modules">.*?</table>', html, re.S).group(0)
    modules = re.findall(r'<th scope="row">([^<]+)</th>', table)
    # paired learners 5 and 6: slots 1-15 improve by 50 points, 16-18 (m4's second, m1's last, launch) by none
    assert [m.split(":")[0] for m in modules] == ["Launching seminar", "Module 4", "Module 1", "Module 2",
                                                  "Module 3", "Module 5"]
    assert re.search(r"Launching seminar</th><td>1</td><td>0.0%</td><td>0.0%</td><td>0.0</td>", table)
    assert re.search(r"Module 1: [^<]+</th><td>5</td><td>40.0%</td><td>80.0%</td><td>\+40.0</td>", table)
    assert 'id="attempts-note"' not in html
    stored = eq.slot_means(course, SCOPE)
    assert {r["test"] for r in stored} == {"pre", "post"} and max(r["slot"] for r in stored) == 18


def test_without_the_quiz_functions_the_report_says_what_to_enable(client, lti, course):
    qz.set_flag(course, "attempt_functions", False)
    html = refresh(client, facilitator(lti))
    note = re.search(r'<p class="flash" id="attempts-note">(.*?)</p>', html, re.S).group(1)
    assert "mod_quiz_get_user_attempts" in note and "mod_quiz_get_attempt_review" in note
    assert "mod/quiz:viewreports" in note
    assert eq.slot_means(course, SCOPE) == []
    assert 'id="both">2<' in html  # the grades themselves still come from the grade report


def test_unchanged_attempts_are_not_reviewed_again(app, client, lti, course):
    token = facilitator(lti)
    refresh(client, token)
    sq.reset_call_counts(course)
    refresh(client, token)
    calls = sq.call_counts(course)
    assert calls.get("ws:mod_quiz_get_user_attempts") == 5 and not calls.get("ws:mod_quiz_get_attempt_review")


def test_the_facilitator_may_choose_other_quizzes_and_a_bad_choice_is_refused(client, lti, course):
    token = facilitator(lti)
    refresh(client, token)
    resp = client.post("/app/evaluation/gain/tests", data={"lt": token, "pre": "21", "post": "20"})
    assert resp.status_code == 303
    rows = {r["user_id"]: r for r in eq.grades(course, SCOPE)}
    assert rows["5"]["pre"] == pytest.approx(8.33333) and rows["5"]["post"] == 5.0  # swapped
    assert client.post("/app/evaluation/gain/tests", data={"lt": token, "pre": "2", "post": "20"}).status_code == 400
    assert client.post("/app/evaluation/gain/tests", data={"lt": token, "pre": "20", "post": "20"}).status_code == 400
    assert client.post("/app/evaluation/gain/tests", data={"lt": token, "pre": "x" * 40}).status_code in (303, 400)


def test_a_moodle_refusal_is_explained_not_a_500(client, lti, course):
    token = facilitator(lti)
    sq.set_fault(course, "gradereport_user_get_grade_items", "bad_token")
    resp = client.post("/app/evaluation/gain/refresh", data={"lt": token})
    assert resp.status_code == 502
    assert "gradereport_user_get_grade_items" in resp.get_data(as_text=True)
    page = client.get("/app/evaluation/gain", query_string={"lt": token}).get_data(as_text=True)
    assert "The last reading of grades from the LMS failed" in page


def test_csv_export_has_one_row_per_participant(client, lti, course):
    token = facilitator(lti)
    refresh(client, token)
    resp = client.get("/app/evaluation/gain.csv", query_string={"lt": token})
    assert resp.mimetype == "text/csv"
    rows = {r["user_id"]: r for r in csv.DictReader(io.StringIO(resp.get_data(as_text=True)))}
    assert rows["6"]["gain_points"] == "50.0" and rows["6"]["normalised_gain"] == "0.500"
    assert rows["7"]["took_only"] == "pre" and rows["7"]["normalised_gain"] == ""


def test_country_comes_from_the_plan_and_organisation_type_from_the_profile(client, lti, course):
    learner = lti.launch("5")
    assert client.post("/app/evaluation/profile", data={"lt": learner, "org_type": "nhri", "consent": "no"}
                       ).status_code == 303
    pid = course.execute("INSERT INTO projects (platform_id, deployment_id, context_id, owner_id, title, country,"
                         " created_at) VALUES (1, '1', '2', '5', 'T', 'ID', 'now')" + returning_id(course)).lastrowid
    course.execute("INSERT INTO project_members VALUES (?, 1, '1', '2', '5', 'owner')", [pid])
    course.conn.commit()
    html = refresh(client, facilitator(lti))
    by_country = re.search(r'<table id="by-country">.*?</table>', html, re.S).group(0)
    assert "Indonesia" in by_country and "Not stated" in by_country
    by_org = re.search(r'<table id="by-org">.*?</table>', html, re.S).group(0)
    assert "National human rights institution (NHRI)" in by_org


def test_reports_are_for_facilitators_only(client, lti, course):
    learner = lti.launch("5")
    for path in ("/app/evaluation/gain", "/app/evaluation/gain.csv", "/app/evaluation/tracer",
                 "/app/evaluation/participant/6"):
        assert client.get(path, query_string={"lt": learner}).status_code == 403
    assert client.post("/app/evaluation/gain/refresh", data={"lt": learner}).status_code == 403
    assert client.get("/app/evaluation/gain").status_code == 401


def test_the_facilitator_home_links_to_both_reports(client, lti, course):
    html = client.get("/app/home", query_string={"lt": facilitator(lti)}).get_data(as_text=True)
    assert 'data-activity="learning_gain"' in html and 'data-activity="tracer_study"' in html


def test_the_worker_refreshes_grades_daily_through_the_outbox(app, client, lti, course):
    client.get("/app/evaluation/gain", query_string={"lt": facilitator(lti)})  # the course joins the refresh
    assert queue_due(app)["refreshes"] == 1
    assert queue_due(app)["refreshes"] == 0  # queued once a day, not every pass
    stats = deliver_due(app)
    assert stats.delivered >= 1 and not stats.errors
    assert len(eq.grades(course, SCOPE)) == 3
    assert eq.settings(course, SCOPE)["refreshed_at"]


# --- tracer study --------------------------------------------------------------------------------
def consent(client, lti, user: str, answer: str = "yes") -> str:
    token = lti.launch(user)
    assert client.post("/app/evaluation/profile", data={"lt": token, "org_type": "cso", "consent": answer}
                       ).status_code == 303
    return token


def schedule(client, token, days_ago: int = 95, months: str = "3, 12"):
    closing = (utcnow() - timedelta(days=days_ago)).date().isoformat()
    resp = client.post("/app/evaluation/tracer/schedule", data={"lt": token, "closing": closing, "months": months,
                                                                "weeks": "4"})
    assert resp.status_code == 303, resp.get_data(as_text=True)


def test_consent_is_recorded_with_date_and_wording_and_kept_until_it_changes(client, lti, course):
    token = consent(client, lti, "5")
    first = eq.profile(course, SCOPE, "5")
    assert first["tracer_consent"] == 1 and first["consent_at"]
    assert first["consent_wording"] == tracer.CONSENT_WORDING
    client.post("/app/evaluation/profile", data={"lt": token, "org_type": "nhri", "consent": "yes"})
    assert eq.profile(course, SCOPE, "5")["consent_at"] == first["consent_at"]
    client.post("/app/evaluation/profile", data={"lt": token, "org_type": "nhri", "consent": "no"})
    assert eq.profile(course, SCOPE, "5")["tracer_consent"] == 0
    page = client.get("/app/evaluation/profile", query_string={"lt": token}).get_data(as_text=True)
    assert 'id="consent-record"' in page and tracer.CONSENT_WORDING[:40] in page
    assert client.post("/app/evaluation/profile", data={"lt": token, "org_type": "pirate"}).status_code == 400


def test_on_the_date_consenting_alumni_get_a_moodle_message_then_two_weekly_reminders(app, client, lti, course):
    consent(client, lti, "5")
    consent(client, lti, "6")
    consent(client, lti, "7", "no")
    schedule(client, facilitator(lti))
    now = utcnow()
    assert tracer.queue_due(course, now) == 2
    assert tracer.queue_due(course, now + timedelta(minutes=5)) == 0
    deliver_due(app)
    sent = sq.messages(course)
    assert sorted(m["touserid"] for m in sent) == ["5", "6"]
    assert "/sandbox/mod/lti/view.php?l=" in sent[0]["text"]
    assert tracer.queue_due(course, now + timedelta(days=7, minutes=1)) == 2
    assert tracer.queue_due(course, now + timedelta(days=14, minutes=2)) == 2
    assert tracer.queue_due(course, now + timedelta(days=21, minutes=3)) == 0  # two reminders at most
    deliver_due(app)
    assert [m["touserid"] for m in sq.messages(course)].count("5") == 3
    assert "Reminder" in sq.messages(course, "5")[-1]["text"]


def test_answering_stops_ones_own_reminders_and_closing_stops_everyones(client, lti, course):
    learner = consent(client, lti, "5")
    consent(client, lti, "6")
    fac = facilitator(lti)
    schedule(client, fac, months="3")
    now = utcnow()
    tracer.queue_due(course, now)
    round_id = eq.rounds(course, SCOPE)[0]["id"]
    client.post(f"/app/evaluation/survey/{round_id}", data={"lt": learner, **full_answers(), "action": "submit"})
    assert tracer.queue_due(course, now + timedelta(days=7, minutes=1)) == 1  # only learner2 is reminded
    assert [j["payload"] for j in outbox.list_jobs(course) if j["kind"] == "ws_message"][-1].count('"6"') == 1
    client.post(f"/app/evaluation/tracer/{round_id}/close", data={"lt": fac, "action": "close"})
    assert tracer.queue_due(course, now + timedelta(days=14, minutes=2)) == 0
    assert all(i["next_due_at"] is None for i in eq.invites(course, round_id))


def full_answers() -> dict:
    return {"implementation": "partly", "adopted": ["policy", "budget"], "adopted_detail": "Decree 4/2025",
            "people_reached": "1,200", "groups_reached": ["children_youth"], "partners": "UCLG ASPAC",
            "hrba_applied": ["participation_inclusion"], "indicator_results": "Two of three met",
            "network_contact": "regular", "obstacles": "Budget politics", "support_wanted": "Peer exchange"}


def test_the_survey_shows_the_plans_indicators_saves_drafts_and_refuses_an_incomplete_submission(client, lti,
                                                                                                course):
    learner = consent(client, lti, "5")
    pid = course.execute("INSERT INTO projects (platform_id, deployment_id, context_id, owner_id, title, country,"
                         " created_at) VALUES (1, '1', '2', '5', 'T', 'ID', 'now')" + returning_id(course)).lastrowid
    course.execute("INSERT INTO project_members VALUES (?, 1, '1', '2', '5', 'owner')", [pid])
    course.execute("INSERT INTO submissions (project_id, stage, status, data, updated_at, updated_by) VALUES"
                   " (?, 'project_plan', 'submitted', ?, 'now', '5')", [pid, '{"indicators": "Four hearings held"}'])
    course.conn.commit()
    schedule(client, facilitator(lti), months="3")
    resp = client.get("/app/evaluation/survey", query_string={"lt": learner})
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert '<aside id="indicators">' in page and "Four hearings held" in page
    round_id = int(re.search(r"/survey/(\d+)", resp.headers["Location"]).group(1))
    draft = client.post(f"/app/evaluation/survey/{round_id}", data={"lt": learner, "obstacles": "Elections",
                                                                    "action": "draft"})
    assert draft.status_code == 303
    assert eq.answer(course, round_id, "5")["status"] == "draft"
    incomplete = client.post(f"/app/evaluation/survey/{round_id}", data={"lt": learner, "obstacles": "Elections",
                                                                         "action": "submit"})
    assert incomplete.status_code == 400
    assert "Elections" in incomplete.get_data(as_text=True)  # what was typed is shown again
    bad = client.post(f"/app/evaluation/survey/{round_id}", data={"lt": learner, "people_reached": "many",
                                                                  "implementation": "maybe", "action": "draft"})
    assert bad.status_code == 400
    ok = client.post(f"/app/evaluation/survey/{round_id}", data={"lt": learner, **full_answers(), "action": "submit"})
    assert ok.status_code == 303
    stored = eq.answer(course, round_id, "5")
    assert stored["status"] == "submitted" and stored["answers"]["people_reached"] == "1200"


def test_answers_are_seen_by_the_participant_and_course_staff_only(client, lti, course):
    lina = consent(client, lti, "5")
    teuea = consent(client, lti, "6")
    fac = facilitator(lti)
    schedule(client, fac, months="3")
    round_id = eq.rounds(course, SCOPE)[0]["id"]
    client.post(f"/app/evaluation/survey/{round_id}", data={"lt": lina, **full_answers(), "action": "submit"})
    other = client.get(f"/app/evaluation/survey/{round_id}", query_string={"lt": teuea}).get_data(as_text=True)
    assert "Decree 4/2025" not in other
    for path in (f"/app/evaluation/tracer/{round_id}", f"/app/evaluation/tracer/{round_id}.csv",
                 "/app/evaluation/participant/5"):
        assert client.get(path, query_string={"lt": teuea}).status_code == 403
        assert "Decree 4/2025" in client.get(path, query_string={"lt": fac}).get_data(as_text=True)


def test_results_show_response_rate_counts_per_question_and_the_project_record(client, lti, course):
    lina = consent(client, lti, "5")
    consent(client, lti, "6")
    fac = facilitator(lti)
    schedule(client, fac, months="3")
    tracer.queue_due(course, utcnow())
    round_id = eq.rounds(course, SCOPE)[0]["id"]
    client.post(f"/app/evaluation/survey/{round_id}", data={"lt": lina, **full_answers(), "action": "submit",
                                                            "obstacles": '=HYPERLINK("http://x")'})
    html = client.get(f"/app/evaluation/tracer/{round_id}", query_string={"lt": fac}).get_data(as_text=True)
    assert re.search(r'id="answered">1<', html) and "from 2 invited alumni" in html
    assert re.search(r"<td>50%</td>", html)  # one of two invited answered
    section = re.search(r'<section class="question" id="q-implementation">.*?</section>', html, re.S).group(0)
    assert "<svg" in section and re.search(r"<td>Partly</td><td>1</td>", section)
    record = client.get("/app/evaluation/participant/5", query_string={"lt": fac}).get_data(as_text=True)
    assert record.index('id="plan"') < record.index('id="report"') < record.index('id="tracer"')
    assert "HYPERLINK" in record
    rows = list(csv.DictReader(io.StringIO(client.get(f"/app/evaluation/tracer/{round_id}.csv",
                                                      query_string={"lt": fac}).get_data(as_text=True))))
    assert rows[0]["adopted"] == "policy; budget"
    assert rows[0]["obstacles"] == "'=HYPERLINK(\"http://x\")"  # never run as a formula in a spreadsheet


def test_question_sets_are_editable_per_course_and_a_round_keeps_its_own(client, lti, course):
    fac = facilitator(lti)
    keep = [x["key"] for x in tracer.DEFAULT_QUESTIONS if x["key"] != "partners"]
    form = {"lt": fac, "keep": keep, **{f"label_{x['key']}": x["label"] for x in tracer.DEFAULT_QUESTIONS},
            "label_obstacles": "What stood in the way?", "new_label_0": "Did the city join a network?",
            "new_kind_0": "choice", "new_choices_0": "Yes, No"}
    assert client.post("/app/evaluation/tracer/questions", data=form).status_code == 303
    questions = eq.question_set(course, SCOPE)
    keys = [x["key"] for x in questions]
    assert "partners" not in keys and keys[-1].startswith("did_the_city")
    assert next(x for x in questions if x["key"] == "obstacles")["label"] == "What stood in the way?"
    schedule(client, fac, months="3")
    assert client.post("/app/evaluation/tracer/questions", data={"lt": fac, "action": "reset"}).status_code == 303
    assert [x["key"] for x in eq.rounds(course, SCOPE)[0]["questions"]] == keys
    bad = client.post("/app/evaluation/tracer/questions", data={"lt": fac, "keep": ["obstacles"], "label_obstacles": "",
                                                                 "new_label_0": "Pick", "new_kind_0": "multi",
                                                                 "new_choices_0": "only one"})
    assert bad.status_code == 400


@pytest.mark.parametrize("form", [{"closing": "", "months": "3"}, {"closing": "2026-13-40", "months": "3"},
                                  {"closing": "2026-01-01", "months": "three"}, {"closing": "2026-01-01", "months": ""},
                                  {"closing": "2026-01-01", "months": "3", "weeks": "0"},
                                  {"closing": "2026-01-01", "months": "999"}])
def test_a_bad_schedule_is_refused_with_a_reason(client, lti, course, form):
    resp = client.post("/app/evaluation/tracer/schedule", data={"lt": facilitator(lti), **form})
    assert resp.status_code == 400 and 'class="field-error"' in resp.get_data(as_text=True)


def test_a_round_with_invitations_can_be_closed_but_not_removed(client, lti, course):
    fac = facilitator(lti)
    schedule(client, fac, months="3, 12")
    first, later = eq.rounds(course, SCOPE)
    consent(client, lti, "5")
    tracer.queue_due(course, utcnow())
    assert client.post(f"/app/evaluation/tracer/{first['id']}/close", data={"lt": fac, "action": "delete"}
                       ).status_code == 409
    assert client.post(f"/app/evaluation/tracer/{later['id']}/close", data={"lt": fac, "action": "delete"}
                       ).status_code == 303
    assert client.post("/app/evaluation/tracer/99999/close", data={"lt": fac}).status_code == 404
    assert [r["id"] for r in eq.rounds(course, SCOPE)] == [first["id"]]


def test_a_tracer_study_link_lands_alumni_on_the_survey_and_staff_on_the_overview(client, lti, course):
    resp = client.get("/app/evaluation/open", query_string={"lt": lti.launch("5")})
    assert resp.headers["Location"].startswith("/app/evaluation/survey")
    resp = client.get("/app/evaluation/open", query_string={"lt": facilitator(lti)})
    assert resp.headers["Location"].startswith("/app/evaluation/tracer")


def test_the_sandbox_way_back_offers_a_launch_of_that_activity(client):
    page = client.get("/sandbox/mod/lti/view.php", query_string={"l": "5"}).get_data(as_text=True)
    assert "/sandbox/launch/5/5" in page
    assert client.get("/sandbox/mod/lti/view.php", query_string={"l": "nope"}).status_code == 404


def test_outbox_message_jobs_use_the_existing_message_kind(client, lti, course):
    consent(client, lti, "5")
    schedule(client, facilitator(lti), months="3")
    tracer.queue_due(course, utcnow())
    jobs = [j for j in outbox.list_jobs(course) if j["kind"] == "ws_message"]
    assert len(jobs) == 1 and '"user_id": "5"' in jobs[0]["payload"]


def test_a_persons_test_results_consent_and_tracer_answers_are_exported_and_erased(app, client, lti, course):
    from lms_bridge.privacy import service as privacy
    from lms_bridge.sandbox import issuer

    learner = consent(client, lti, "5")
    refresh(client, facilitator(lti))
    schedule(client, facilitator(lti), months="3")
    round_id = eq.rounds(course, SCOPE)[0]["id"]
    client.post(f"/app/evaluation/survey/{round_id}", data={"lt": learner, **full_answers(), "action": "submit"})
    areas = privacy.collect(course, issuer(app.config["TOOL_URL"]), "5")["areas"]
    assert {"test_results", "evaluation_profile", "tracer_study"} <= set(areas)
    privacy.erase(course, issuer(app.config["TOOL_URL"]), "5", app.config["DATA_DIR"])
    assert eq.answer(course, round_id, "5") is None and eq.profile(course, SCOPE, "5") is None
    assert "5" not in {r["user_id"] for r in eq.grades(course, SCOPE)}


def test_an_expert_only_member_sees_no_report_and_no_answers(app, client, lti, course):
    from test_roles import _expert_only

    lina = consent(client, lti, "5")
    fac = facilitator(lti)
    schedule(client, fac, months="3")
    round_id = eq.rounds(course, SCOPE)[0]["id"]
    client.post(f"/app/evaluation/survey/{round_id}", data={"lt": lina, **full_answers(), "action": "submit"})
    expert, _fac = _expert_only(app, client, lti)
    for path in ("/app/evaluation/gain", "/app/evaluation/gain.csv", "/app/evaluation/tracer",
                 f"/app/evaluation/tracer/{round_id}", f"/app/evaluation/tracer/{round_id}.csv",
                 "/app/evaluation/participant/5", f"/app/evaluation/survey/{round_id}", "/app/evaluation/survey"):
        resp = client.get(path, query_string={"lt": expert})
        assert resp.status_code == 403 and "Decree 4/2025" not in resp.get_data(as_text=True), path
    assert client.post("/app/evaluation/gain/refresh", data={"lt": expert}).status_code == 403
    home = client.get("/app/home", query_string={"lt": expert}).get_data(as_text=True)
    assert 'data-activity="learning_gain"' not in home and 'data-activity="tracer_survey"' not in home


def test_tracer_messages_are_written_in_the_language_the_alumnus_answered_the_profile_in(app, client, lti, course):
    token = lti.launch("5", lang="id")
    client.post("/app/evaluation/profile", data={"lt": token, "org_type": "cso", "consent": "yes"})
    record = eq.profile(course, SCOPE, "5")
    assert record["locale"] == "id"
    assert record["consent_wording"] != tracer.CONSENT_WORDING  # the wording the person read, in Indonesian
    schedule(client, facilitator(lti), months="3")
    tracer.queue_due(course, utcnow())
    deliver_due(app)
    assert "Buka survei" in sq.messages(course, "5")[0]["text"]
