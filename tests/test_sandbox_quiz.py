"""The sandbox's quizzes answer like Moodle 4.5.6. No recording of mod_quiz_* exists among the recordings: the key
lists below are copied from Moodle 4.5.6's mod/quiz/classes/external.php (attempt_structure, question_structure,
get_attempt_review_returns); the grade item keys from the recorded gradereport_user_get_grade_items."""
from __future__ import annotations

import json

import pytest

from lms_bridge.clients import MoodleClient, MoodleError
from lms_bridge.db import sandbox_quiz as qz
from lms_bridge.evaluation import grades
from lms_bridge.sandbox import quiz
from lms_bridge.sandbox.inprocess import session_for

from conftest import FIXTURES as RECORDED
from conftest import TOOL_URL

WS = "/sandbox/webservice/rest/server.php"
ATTEMPT_KEYS = {"id", "quiz", "userid", "attempt", "uniqueid", "layout", "currentpage", "preview", "state",
                "timestart", "timefinish", "timemodified", "timemodifiedoffline", "timecheckstate", "sumgrades",
                "gradeitemmarks", "gradednotificationsenttime"}
QUESTION_KEYS = {"slot", "type", "page", "questionnumber", "number", "html", "responsefileareas", "sequencecheck",
                 "lastactiontime", "hasautosavedstep", "flagged", "state", "stateclass", "status",
                 "blockedbyprevious", "mark", "maxmark", "settings"}
QUESTION_REQUIRED = {"slot", "type", "page", "questionnumber", "html", "flagged"}


def call(client, fn, **params):
    resp = client.post(WS, query_string={"moodlewsrestformat": "json"},
                       data={"wstoken": "sandbox-ws-token", "wsfunction": fn, **params})
    assert resp.status_code == 200
    return resp.get_json()


@pytest.fixture
def quizzes(app, db):
    from lms_bridge.sandbox.webservice import link_tool

    link_tool(db, app.config["TOOL_URL"])
    quiz.seed(db, {"5": ([1.0] * 9 + [0.0] * 9, [1.0] * 18), "6": (None, [0.5] * 18)})
    return db


def test_user_attempts_have_moodles_attempt_structure(client, quizzes):
    body = call(client, "mod_quiz_get_user_attempts", quizid="1", userid="5")
    assert set(body) == {"attempts", "warnings"}
    (attempt,) = body["attempts"]
    assert set(attempt) <= ATTEMPT_KEYS and {"id", "quiz", "userid", "state", "sumgrades"} <= set(attempt)
    assert attempt["state"] == "finished" and attempt["sumgrades"] == 9.0 and attempt["userid"] == 5
    assert call(client, "mod_quiz_get_user_attempts", quizid="1", userid="6")["attempts"] == []


def test_attempt_review_has_moodles_shape_with_marks_as_strings(client, quizzes):
    attempt_id = call(client, "mod_quiz_get_user_attempts", quizid="2", userid="6")["attempts"][0]["id"]
    body = call(client, "mod_quiz_get_attempt_review", attemptid=str(attempt_id))
    assert set(body) == {"grade", "attempt", "additionaldata", "questions", "warnings"}
    assert set(body["attempt"]) <= ATTEMPT_KEYS and body["attempt"]["gradeitemmarks"] == []
    assert body["grade"] == pytest.approx(5.0)
    assert len(body["questions"]) == 18
    for question in body["questions"]:
        assert QUESTION_REQUIRED <= set(question) <= QUESTION_KEYS
        assert isinstance(question["mark"], str) and isinstance(question["maxmark"], float)
    assert body["questions"][0]["mark"] == "0.50" and body["questions"][0]["state"] == "gradedpartial"
    assert body["questions"][1]["type"] == "truefalse"


def test_quiz_grade_items_appear_in_the_grade_report_like_recorded_mod_items(client, quizzes):
    recorded = json.loads((RECORDED / "ws" / "gradereport_user_get_grade_items__all_users.json").read_text())
    recorded_item = recorded["response"]["usergrades"][0]["gradeitems"][0]
    items = call(client, "gradereport_user_get_grade_items", courseid="2", userid="5")["usergrades"][0]["gradeitems"]
    pre = next(i for i in items if i.get("itemmodule") == "quiz" and i["iteminstance"] == 1)
    assert set(recorded_item) - {"weightraw", "weightformatted"} <= set(pre)
    assert pre["graderaw"] == 5.0 and pre["grademax"] == 10.0 and pre["cmid"] == 20


@pytest.mark.parametrize("fn, params, code", [
    ("mod_quiz_get_user_attempts", {"quizid": "99", "userid": "5"}, "invalidrecord"),
    ("mod_quiz_get_user_attempts", {"quizid": "1", "userid": "4242"}, "invalidrecord"),
    ("mod_quiz_get_user_attempts", {"quizid": "1", "userid": "5", "status": "odd"}, "invalidparameter"),
    ("mod_quiz_get_attempt_review", {"attemptid": "999"}, "invalidrecord"),
    ("mod_quiz_get_attempt_review", {"attemptid": "x"}, "invalidparameter"),
])
def test_quiz_refusals_are_moodle_error_bodies(client, quizzes, fn, params, code):
    assert call(client, fn, **params)["errorcode"] == code


def test_without_the_functions_in_the_service_they_are_refused_and_not_listed(client, quizzes):
    qz.set_flag(quizzes, "attempt_functions", False)
    assert call(client, "mod_quiz_get_user_attempts", quizid="1", userid="5")["errorcode"] == "accessexception"
    names = {f["name"] for f in call(client, "core_webservice_get_site_info")["functions"]}
    assert not names & set(grades.QUIZ_FUNCTIONS)


def test_the_recorded_course_has_no_quiz_so_no_test_is_picked():
    recorded = json.loads((RECORDED / "ws" / "gradereport_user_get_grade_items__all_users.json").read_text())
    items = grades.quiz_items(recorded["response"]["usergrades"])
    assert items == [] and grades.pick_tests(items) == (None, None)


def test_tests_are_found_by_the_cartridge_titles_then_by_prefix():
    titles = grades.cartridge_tests()
    items = [{"id": 7, "name": "Post-test: What have you learned?"}, {"id": 8, "name": titles.pre_title},
             {"id": 9, "name": "Quiz on module 2"}]
    pre, post = grades.pick_tests(items)
    assert (pre["id"], post["id"]) == (8, 7)
    assert grades.pick_tests([{"id": 1, "name": "Pretest 2025"}, {"id": 2, "name": "POST-TEST"}]) == \
        ({"id": 1, "name": "Pretest 2025"}, {"id": 2, "name": "POST-TEST"})
    assert grades.pick_tests(items, pre_id=9)[0]["id"] == 9
    assert len(titles.slot_module) == 18 and titles.slot_module[1] == "m1"


def test_the_client_raises_a_named_error_for_a_refused_quiz_call(app, quizzes):
    client = MoodleClient(session_for(lambda: app, TOOL_URL), TOOL_URL + "/sandbox", "sandbox-ws-token")
    assert client.quiz_user_attempts(1, 5)[0]["sumgrades"] == 9.0
    with pytest.raises(MoodleError) as err:
        client.quiz_attempt_review(999)
    assert err.value.kind == "not_found" and err.value.errorcode == "invalidrecord"
