"""Load the course from plain files (TOML metadata, HTML fragments) and check it before anything is built."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

DEFAULT_CONTENT_DIR = Path(__file__).resolve().parent / "course"
ACTIVITIES = ("project_plan", "project_report", "final_presentation", "consultations")
ITEM_KINDS = ("page", "discussion", "lti", "quiz")
QUESTION_KINDS = ("multiple_choice", "multiple_response", "true_false")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class ContentError(ValueError):
    """The course content folder is incomplete or inconsistent; the message names the offending file."""


@dataclass(frozen=True)
class Choice:
    id: str
    text: str
    correct: bool


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    text: str
    choices: tuple[Choice, ...]
    feedback: str = ""
    module: str = ""  # the section id the question tests, for learning gain per module

    @property
    def correct_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.choices if c.correct)


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    title: str
    body: str = ""
    activity: str = ""
    questions: tuple[Question, ...] = ()


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    description: str
    language: str
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]


def load_course(content_dir: Path | str | None = None) -> Course:
    """Read course.toml and every file it names; raise ContentError at the first problem."""
    root = Path(content_dir) if content_dir is not None else DEFAULT_CONTENT_DIR
    meta_path = root / "course.toml"
    meta = _read_toml(meta_path, root)
    where = _rel(meta_path, root)
    seen: dict[str, str] = {}
    course_id = _ident(_required(meta, "id", where), where, seen)
    sections = []
    for s_index, raw in enumerate(meta.get("sections") or []):
        s_where = f"{where} (sections[{s_index}])"
        sid = _ident(_required(raw, "id", s_where), s_where, seen)
        items = tuple(_load_item(root, entry, f"{s_where}.items[{i}]", seen) for i, entry in enumerate(raw.get("items") or []))
        if not items:
            raise ContentError(f"{s_where}: section {sid!r} has no items")
        sections.append(Section(sid, _required(raw, "title", s_where), items))
    if not sections:
        raise ContentError(f"{where}: no [[sections]] defined")
    section_ids = {s.id for s in sections}
    for item in (i for s in sections for i in s.items):
        for question in item.questions:
            if question.module and question.module not in section_ids:
                raise ContentError(f"question {question.id!r} (quiz {item.id!r}): module {question.module!r} is not a "
                                   f"section id of {where}")
    return Course(
        id=course_id,
        title=_required(meta, "title", where),
        description=str(meta.get("description", "")).strip(),
        language=str(meta.get("language", "en")),
        sections=tuple(sections),
    )


def _load_item(root: Path, raw: dict, where: str, seen: dict[str, str]) -> Item:
    item_id = _ident(_required(raw, "id", where), where, seen)
    kind = _required(raw, "type", where)
    if kind not in ITEM_KINDS:
        raise ContentError(f"{where}: item {item_id!r} has unknown type {kind!r} (expected one of {', '.join(ITEM_KINDS)})")
    title = _required(raw, "title", where)
    if kind in ("page", "discussion"):
        return Item(item_id, kind, title, body=_read_fragment(root, _required(raw, "file", where), where))
    if kind == "lti":
        activity = _required(raw, "activity", where)
        if activity not in ACTIVITIES:
            raise ContentError(f"{where}: item {item_id!r} has unknown activity {activity!r} (expected one of {', '.join(ACTIVITIES)})")
        return Item(item_id, kind, title, body=str(raw.get("description", "")).strip(), activity=activity)
    pool_path = root / _required(raw, "pool", where)
    questions = _load_pool(pool_path, root)
    return Item(item_id, kind, title, body=str(raw.get("description", "")).strip(), questions=questions)


def _load_pool(path: Path, root: Path) -> tuple[Question, ...]:
    where = _rel(path, root)
    data = _read_toml(path, root)
    questions, ids = [], set()
    for index, raw in enumerate(data.get("questions") or []):
        q_where = f"{where} (questions[{index}])"
        qid = _required(raw, "id", q_where)
        if not _IDENT.match(qid):
            raise ContentError(f"{q_where}: identifier {qid!r} must start with a letter and use only letters, digits, '_' or '-'")
        if qid in ids:
            raise ContentError(f"{q_where}: duplicate question identifier {qid!r}")
        ids.add(qid)
        questions.append(_question(raw, qid, q_where))
    if not questions:
        raise ContentError(f"{where}: the question pool has no [[questions]]")
    return tuple(questions)


def _question(raw: dict, qid: str, where: str) -> Question:
    kind = _required(raw, "type", where)
    if kind not in QUESTION_KINDS:
        raise ContentError(f"{where}: question {qid!r} has unknown type {kind!r} (expected one of {', '.join(QUESTION_KINDS)})")
    text, feedback = _required(raw, "text", where), str(raw.get("feedback", "")).strip()
    module = str(raw.get("module", "")).strip()
    if kind == "true_false":
        answer = raw.get("answer")
        if not isinstance(answer, bool):
            raise ContentError(f"{where}: true/false question {qid!r} has no correct answer (set answer = true or false)")
        choices = (Choice("true", "True", answer), Choice("false", "False", not answer))
        return Question(qid, kind, text, choices, feedback, module)
    choices, choice_ids = [], set()
    for c_index, c in enumerate(raw.get("choices") or []):
        cid = _required(c, "id", f"{where}.choices[{c_index}]")
        if cid in choice_ids or not _IDENT.match(cid):
            raise ContentError(f"{where}: question {qid!r} has a duplicate or invalid choice identifier {cid!r}")
        choice_ids.add(cid)
        choices.append(Choice(cid, _required(c, "text", f"{where}.choices[{c_index}]"), bool(c.get("correct", False))))
    correct = sum(c.correct for c in choices)
    if len(choices) < 2:
        raise ContentError(f"{where}: question {qid!r} needs at least two choices")
    if correct == 0:
        raise ContentError(f"{where}: question {qid!r} has no correct answer")
    if kind == "multiple_choice" and correct != 1:
        raise ContentError(f"{where}: multiple choice question {qid!r} must have exactly one correct answer, not {correct}")
    return Question(qid, kind, text, tuple(choices), feedback, module)


def _read_toml(path: Path, root: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ContentError(f"{_rel(path, root)}: file not found (content folder {root})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{_rel(path, root)}: invalid TOML: {exc}") from None


def _read_fragment(root: Path, name: str, where: str) -> str:
    path = root / name
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ContentError(f"{name}: file not found (referenced from {where})") from None
    except UnicodeDecodeError:
        raise ContentError(f"{name}: not UTF-8 text") from None
    if not text:
        raise ContentError(f"{name}: file is empty")
    try:
        etree.fromstring(f"<div>{text}</div>")
    except etree.XMLSyntaxError as exc:
        raise ContentError(f"{name}: not a well-formed HTML fragment: {exc}") from None
    return text


def _required(raw: dict, key: str, where: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{where}: missing or empty {key!r}")
    return value.strip()


def _ident(value: str, where: str, seen: dict[str, str]) -> str:
    if not _IDENT.match(value):
        raise ContentError(f"{where}: identifier {value!r} must start with a letter and use only letters, digits, '_' or '-'")
    if value in seen:
        raise ContentError(f"{where}: duplicate identifier {value!r} (first used at {seen[value]})")
    seen[value] = where
    return value


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
