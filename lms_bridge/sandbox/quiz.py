"""Sandbox quizzes: the cartridge's pre- and post-test as Moodle 4.5 serves them through web services.

No recording of the quiz functions exists among the Moodle 4.5.6 recordings; the shapes follow Moodle 4.5.6's own source
(mod/quiz/classes/external.php: attempt_structure, question_structure, get_attempt_review; db/services.php):
`mod_quiz_get_user_attempts` -> {attempts, warnings}; `mod_quiz_get_attempt_review` -> {grade, attempt,
additionaldata, questions, warnings}, where a question's `mark` is a formatted string and `maxmark` a float.
Quiz grade items in gradereport_user_get_grade_items follow the recorded `mod` items (itemmodule 'quiz').
"""
from __future__ import annotations

import time

from flask import Blueprint, render_template, request, url_for
from markupsafe import escape

from ..db import sandbox_quiz as qz
from .wsdata import WsError, invalid_param
from .webservice import _int, handler, known_user

QUIZ_FUNCTIONS = ("mod_quiz_get_user_attempts", "mod_quiz_get_attempt_review")
GRADE = 10.0  # Moodle's default maximum grade of a quiz
# quiz instance -> (cmid, grade item id, name): the cartridge's two tests, restored into the sandbox course
QUIZZES = {1: (20, 20, "Pre-test: what do you know already?"), 2: (21, 21, "Post-test: what have you learned?")}
QTYPES = {"multiple_choice": "multichoice", "multiple_response": "multichoice", "true_false": "truefalse"}


def pool() -> tuple:
    from content_packages.content import load_course

    quiz = next(i for i in load_course().items() if i.kind == "quiz")
    return quiz.questions


def enabled(db) -> bool:
    return qz.flag(db, "quizzes")


def functions_enabled(db) -> bool:
    return enabled(db) and qz.flag(db, "attempt_functions", default=True)


def _sum(marks) -> float:
    return float(sum(m for m in marks if m is not None))


def grade_of(attempt: dict, slots: int) -> float:
    return round(_sum(attempt["marks"]) * GRADE / slots, 5) if slots else 0.0


def grade_items(db, user_id: str, item) -> list[dict]:
    """The quizzes' grade items of one user for gradereport_user_get_grade_items (empty while disabled)."""
    if not enabled(db):
        return []
    slots = len(pool())
    out = []
    for instance, (cmid, item_id, name) in QUIZZES.items():
        best = qz.best_attempts(db, instance).get(str(user_id))
        grade = grade_of(best, slots) if best else None
        entry = item(item_id, name, "mod", grade, GRADE, itemmodule="quiz", iteminstance=instance, itemnumber=0,
                     idnumber="", categoryid=1, outcomeid=None, scaleid=None, cmid=cmid)
        if best:
            entry["gradedatesubmitted"] = best["timefinish"]
            entry["gradedategraded"] = best["timefinish"]
        out.append(entry)
    return out


def _quiz(db, params) -> int:
    quizid = _int(params, "quizid")
    if quizid not in QUIZZES or not enabled(db):
        raise WsError("dml_missing_record_exception", "invalidrecord", "Can't find data record in database table quiz.")
    return quizid


def _attempt_record(a: dict, slots: int, with_marks: bool = True) -> dict:
    record = {"id": a["id"], "quiz": a["quiz"], "userid": int(a["userid"]), "attempt": a["attempt"],
              "uniqueid": 1000 + a["id"], "layout": ",".join(str(s) for s in range(1, slots + 1)) + ",0",
              "currentpage": 0, "preview": 0, "state": a["state"], "timestart": a["timestart"],
              "timefinish": a["timefinish"], "timemodified": a["timefinish"], "timemodifiedoffline": 0,
              "timecheckstate": None, "sumgrades": _sum(a["marks"]) if with_marks else None,
              "gradednotificationsenttime": None}
    return record


def _require_functions(db, name: str) -> None:
    if not functions_enabled(db):
        raise WsError("webservice_access_exception", "accessexception", "Access control exception")


@handler("mod_quiz_get_user_attempts")
def user_attempts(db, params):
    _require_functions(db, "mod_quiz_get_user_attempts")
    quizid = _quiz(db, params)
    userid = _int(params, "userid", 0)
    status = params.get("status", "finished")
    if status not in ("all", "finished", "unfinished"):
        raise invalid_param()
    if not userid or not known_user(db, userid):
        raise WsError("dml_missing_record_exception", "invalidrecord", "Can't find data record in database table user.")
    slots = len(pool())
    rows = [a for a in qz.attempts(db, quizid, str(userid))
            if status == "all" or (status == "finished") == (a["state"] in ("finished", "abandoned"))]
    return {"attempts": [_attempt_record(a, slots) for a in rows], "warnings": []}


@handler("mod_quiz_get_attempt_review")
def attempt_review(db, params):
    _require_functions(db, "mod_quiz_get_attempt_review")
    attempt = qz.get_attempt(db, _int(params, "attemptid"))
    if attempt is None or not enabled(db):
        raise WsError("dml_missing_record_exception", "invalidrecord",
                      "Can't find data record in database table quiz_attempts.")
    if attempt["state"] != "finished":
        raise WsError("moodle_exception", "noreviewattempt", "You are not allowed to review this attempt.")
    questions, slots = [], pool()
    for slot, (question, mark) in enumerate(zip(slots, attempt["marks"]), start=1):
        right = mark is not None and mark >= 1
        partial = mark is not None and 0 < mark < 1
        state, cls, status = (("gradedright", "correct", "Correct") if right else
                              ("gradedpartial", "partiallycorrect", "Partially correct") if partial else
                              ("gradedwrong", "incorrect", "Incorrect"))
        questions.append({
            "slot": slot, "type": QTYPES.get(question.kind, "multichoice"), "page": 0,
            "questionnumber": str(slot), "number": slot,
            "html": f'<div id="question-{1000 + attempt["id"]}-{slot}" class="que {QTYPES.get(question.kind)} '
                    f'deferredfeedback {cls}"><div class="qtext">{question.text}</div></div>',
            "responsefileareas": [], "sequencecheck": 2, "lastactiontime": attempt["timefinish"],
            "hasautosavedstep": False, "flagged": False, "state": state, "stateclass": cls, "status": status,
            "blockedbyprevious": False, "mark": f"{(mark or 0):.2f}", "maxmark": 1.0, "settings": None})
    record = dict(_attempt_record(attempt, len(slots)), gradeitemmarks=[])
    return {"grade": grade_of(attempt, len(slots)), "attempt": record, "additionaldata": [],
            "questions": questions, "warnings": []}


def site_functions(db) -> list[str]:
    """The quiz functions the sandbox's service lists in core_webservice_get_site_info right now."""
    return list(QUIZ_FUNCTIONS) if functions_enabled(db) else []


def seed(db, results: dict[str, tuple], now: int | None = None) -> None:
    """Turn the quizzes on and store finished attempts: user id -> (pre marks or None, post marks or None)."""
    now = now or int(time.time())
    qz.set_flag(db, "quizzes", True)
    for user_id, (pre, post) in results.items():
        for instance, marks, back in ((1, pre, 60 * 86400), (2, post, 86400)):
            if marks is not None:
                qz.add_attempt(db, instance, str(user_id), list(marks), now - back, now - back + 1200)



# Moodle's mod/lti/view.php?l=<instance>: the way back a tracer-study message links to. The sandbox has no
# login, so it asks which of its users follows the link, then launches as that user.
view_bp = Blueprint("sandbox_view", __name__, url_prefix="/sandbox/mod/lti")


@view_bp.get("/view.php")
def lti_view():
    from . import LINKS, USERS

    rl = request.args.get("l", "")
    if rl not in LINKS:
        return render_template("sandbox/refused.html", problems=["unknown activity"]), 404
    links = "".join(f'<li><a href="{url_for("sandbox.start_launch", user_id=u.id, rl=rl)}">{escape(u.name)}</a></li>'
                    for u in USERS.values())
    return (f'<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>Sandbox LMS</title><h1>{escape(LINKS[rl][1])}</h1><p>Sandbox LMS: open the activity as</p>'
            f'<ul>{links}</ul>')
