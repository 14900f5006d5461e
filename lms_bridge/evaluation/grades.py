"""Read the pre- and post-test grades of a course from Moodle web services and store them.

Every HTTP call happens before the write transaction (the LMS may be this very app, the sandbox, which
writes while we wait). The quiz attempt functions are optional: without them the report says what to enable.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..clients import MoodleClient, MoodleError
from ..db import evaluation as q
from ..db import write_transaction

QUIZ_FUNCTIONS = ("mod_quiz_get_user_attempts", "mod_quiz_get_attempt_review")
GRADE_FUNCTION = "gradereport_user_get_grade_items"


@dataclass(frozen=True)
class CartridgeTests:
    pre_title: str
    post_title: str
    slot_module: dict  # quiz slot (1-based, the pool's order) -> course section id
    module_titles: dict  # section id -> title


@lru_cache(maxsize=1)
def cartridge_tests() -> CartridgeTests:
    """Titles of the cartridge's pre- and post-test and which module each question slot tests."""
    from content_packages.content import load_course

    course = load_course()
    quizzes = [i for i in course.items() if i.kind == "quiz"]
    pre = next((i for i in quizzes if i.id == "pre-test"), quizzes[0] if quizzes else None)
    post = next((i for i in quizzes if i.id == "post-test"), quizzes[-1] if quizzes else None)
    pool = pre.questions if pre else ()
    return CartridgeTests(pre.title if pre else "", post.title if post else "",
                          {n: qn.module for n, qn in enumerate(pool, start=1) if qn.module},
                          {s.id: s.title for s in course.sections})


def quiz_items(usergrades: list[dict]) -> list[dict]:
    """The course's quiz grade items (the same for every user), as id, name, cmid, instance, grademax."""
    seen: dict[int, dict] = {}
    for user in usergrades:
        for item in user.get("gradeitems") or []:
            if item.get("itemmodule") == "quiz" and item["id"] not in seen:
                seen[item["id"]] = {"id": item["id"], "name": item.get("itemname") or "", "cmid": item.get("cmid"),
                                    "instance": item.get("iteminstance"), "grademax": item.get("grademax")}
        if seen:
            break
    return list(seen.values())


def _norm(title: str) -> str:
    return " ".join((title or "").casefold().split())


def pick_tests(items: list[dict], pre_id=None, post_id=None, titles: CartridgeTests | None = None):
    """(pre item, post item): the facilitator's choice if still in the course, else the cartridge's titles,
    else a title starting with 'pre-test' / 'post-test'."""
    by_id = {i["id"]: i for i in items}
    titles = titles or cartridge_tests()

    def find(chosen, title, prefixes):
        if chosen in by_id:
            return by_id[chosen]
        exact = [i for i in items if _norm(i["name"]) == _norm(title)]
        if exact:
            return exact[0]
        return next((i for i in items if _norm(i["name"]).replace(" ", "").startswith(prefixes)), None)

    return (find(pre_id, titles.pre_title, ("pre-test", "pretest")),
            find(post_id, titles.post_title, ("post-test", "posttest")))


def _grade_of(user: dict, item_id: int):
    item = next((i for i in user.get("gradeitems") or [] if i["id"] == item_id), None)
    if item is None or item.get("graderaw") is None:
        return None, item.get("grademax") if item else None
    return float(item["graderaw"]), float(item["grademax"])


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _best_attempt(attempts: list[dict]) -> dict | None:
    """Moodle's default grading method is the highest grade; a tie keeps the later attempt."""
    finished = [a for a in attempts if a.get("state") == "finished"]
    if not finished:
        return None
    return max(finished, key=lambda a: (_float(a.get("sumgrades")) or 0.0, a.get("attempt") or 0))


def attempts_hint(exc: MoodleError | None) -> str:
    """A code for the report's note on what to enable for per-question results."""
    return "functions_missing" if exc is None else f"refused:{exc.errorcode or exc.kind}"


@dataclass
class Refreshed:
    participants: int
    pre: dict | None
    post: dict | None
    attempts_note: str | None


def refresh(db, client: MoodleClient, scope, *, with_attempts: bool = True) -> Refreshed:
    """Read grades (and, where allowed, quiz attempt reviews) and replace what is stored for the course.

    Raises MoodleError when the grade report itself cannot be read; the error is recorded for the page.
    """
    course_id = int(scope[2])  # Moodle's context.id is the course id
    try:
        usergrades = client.get_grade_items(course_id)
    except MoodleError as exc:
        with write_transaction(db):
            q.record_refresh(db, scope, error=str(exc.message or exc.kind))
        raise
    items = quiz_items(usergrades)
    chosen = q.settings(db, scope)
    pre, post = pick_tests(items, chosen["pre_item_id"], chosen["post_item_id"])
    rows = []
    for user in usergrades:
        row = {"user_id": str(user["userid"]), "name": user.get("userfullname") or ""}
        for test, item in (("pre", pre), ("post", post)):
            grade, grade_max = _grade_of(user, item["id"]) if item else (None, None)
            row[test], row[f"{test}_max"] = grade, grade_max
        if row["pre"] is not None or row["post"] is not None:
            rows.append(row)

    note, reviews = None, {}
    if with_attempts and rows and (pre or post):
        note, reviews = _read_attempts(db, client, scope, rows, pre, post)
    with write_transaction(db):
        for row in rows:
            for test in ("pre", "post"):
                attempt_id, marks = reviews.get((row["user_id"], test), (None, []))
                row[f"{test}_attempt"] = attempt_id
                if marks is not None:  # None: the same attempt as last time, its marks are kept
                    q.replace_marks(db, scope, row["user_id"], test, marks)
        q.replace_grades(db, scope, rows)
        q.forget_marks(db, scope, {r["user_id"] for r in rows} if note is None else set())
        q.update_slot_stats(db, scope)
        q.record_refresh(db, scope, quiz_items=items, attempts_note=note)
    return Refreshed(len(rows), pre, post, note)


def _read_attempts(db, client: MoodleClient, scope, rows, pre, post):
    """{(user, test): (attempt id, marks or None when unchanged since last time)}, or a note what to enable."""
    try:
        available = client.function_names()
    except MoodleError as exc:
        return attempts_hint(exc), {}
    if not all(f in available for f in QUIZ_FUNCTIONS):
        return attempts_hint(None), {}
    stored = q.stored_attempts(db, scope)
    reviews = {}
    try:
        for row in rows:
            for n, (test, item) in enumerate((("pre", pre), ("post", post))):
                if not item or row[test] is None or not item.get("instance"):
                    continue
                best = _best_attempt(client.quiz_user_attempts(int(item["instance"]), int(row["user_id"])))
                if best is None:
                    continue
                if stored.get(row["user_id"], (None, None))[n] == best["id"]:
                    reviews[(row["user_id"], test)] = (best["id"], None)
                    continue
                review = client.quiz_attempt_review(int(best["id"]))
                marks = [(int(qn["slot"]), _float(qn.get("mark")), _float(qn.get("maxmark")))
                         for qn in review.get("questions") or [] if qn.get("maxmark") is not None]
                reviews[(row["user_id"], test)] = (best["id"], marks)
    except MoodleError as exc:
        if exc.transient:
            raise
        return attempts_hint(exc), {}
    return None, reviews
