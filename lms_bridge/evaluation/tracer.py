"""Tracer studies of alumni: the default question set, answer validation, scheduling rounds, and the
worker's step that sends invitations and reminders through the outbox. Plain functions, no Flask."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..db import evaluation as q
from ..db import outbox, ts, write_transaction
from ..db import lti as lq
from ..i18n import gettext, lazy_gettext as N_

CHOICE, MULTI, TEXT, NUMBER = "choice", "multi", "text", "number"
KINDS = (CHOICE, MULTI, TEXT, NUMBER)
KIND_LABELS = {TEXT: N_("Text"), CHOICE: N_("One choice"), MULTI: N_("Several choices"), NUMBER: N_("A number")}
REMINDER_DAYS = (7, 14)  # after the invitation: one week, two weeks
MAX_TEXT = 4000
MAX_QUESTIONS = 30

VULNERABLE_GROUPS = {
    "women_girls": N_("Women and girls"), "children_youth": N_("Children and youth"),
    "disabilities": N_("Persons with disabilities"), "older": N_("Older persons"),
    "migrants": N_("Migrants, refugees and displaced people"),
    "minorities": N_("Indigenous peoples and ethnic or religious minorities"),
    "poverty": N_("People living in poverty or informal settlements"), "lgbtiq": N_("LGBTIQ+ people"),
    "other": N_("Other"),
}
HRBA = {"participation_inclusion": N_("Participation and inclusion"),
        "transparency_accountability": N_("Transparency and accountability"),
        "equality_non_discrimination": N_("Equality and non-discrimination")}

DEFAULT_QUESTIONS = [
    {"key": "implementation", "kind": CHOICE, "label": N_("Is your course project implemented?"),
     "choices": {"fully": N_("Fully"), "partly": N_("Partly"), "not": N_("Not (yet)")}},
    {"key": "adopted", "kind": MULTI, "label": N_("Was a policy, regulation or budget adopted as a result?"),
     "choices": {"policy": N_("A policy"), "regulation": N_("A regulation"), "budget": N_("A budget line"),
                 "none": N_("None yet")}},
    {"key": "adopted_detail", "kind": TEXT, "label": N_("Which policy, regulation or budget, and when?")},
    {"key": "people_reached", "kind": NUMBER, "label": N_("About how many people has the project reached?")},
    {"key": "groups_reached", "kind": MULTI, "label": N_("Which vulnerable groups did it reach?"),
     "choices": VULNERABLE_GROUPS},
    {"key": "partners", "kind": TEXT, "label": N_("Which partners are involved (CSOs, NHRI, academia, others)?")},
    {"key": "hrba_applied", "kind": MULTI, "label": N_("Which HRBA principles do you apply in practice?"),
     "choices": HRBA},
    {"key": "indicator_results", "kind": TEXT, "indicators": True,
     "label": N_("Results against the indicators you set in your project plan")},
    {"key": "network_contact", "kind": CHOICE,
     "label": N_("Are you still in contact with the course network and the experts?"),
     "choices": {"regular": N_("Yes, regularly"), "occasional": N_("Now and then"), "no": N_("No")}},
    {"key": "obstacles", "kind": TEXT, "label": N_("What obstacles did you meet?")},
    {"key": "support_wanted", "kind": TEXT, "label": N_("What support would help you now?")},
]

CONSENT_WORDING = N_("I agree that the course team may contact me through the LMS after the course, for "
                     "tracer studies of what happened with my course project (for example 3 and 12 months "
                     "after the closing workshop). I can withdraw this at any time in my profile.")


class TracerInvalid(ValueError):
    """Answers, a question set or a schedule that does not validate; `errors` maps field to message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def questions_for(db, scope) -> list[dict]:
    return q.question_set(db, scope) or [dict(x) for x in DEFAULT_QUESTIONS]


def _key(label: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", label.casefold()).strip("_")[:30] or "question"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def edit_questions(current: list[dict], labels: dict[str, str], keep: set[str], new: list[tuple[str, str, str]]
                   ) -> list[dict]:
    """The course's set after an edit: reworded labels, unticked questions dropped, new ones appended.

    new: (label, kind, comma-separated choices) rows; empty labels are ignored.
    """
    errors, out = {}, []
    for question in current:
        if question["key"] not in keep:
            continue
        label = (labels.get(question["key"]) or "").strip()
        if not label:
            errors[f"label_{question['key']}"] = gettext("A question needs its text; untick it to drop it.")
            continue
        if len(label) > 500:
            errors[f"label_{question['key']}"] = gettext("Keep a question under 500 characters.")
            continue
        out.append(dict(question, label=label))
    taken = {x["key"] for x in current}
    for i, (label, kind, choices) in enumerate(new):
        label = (label or "").strip()
        if not label:
            continue
        if kind not in KINDS:
            errors[f"new_kind_{i}"] = gettext("Choose the kind of answer.")
            continue
        if len(label) > 500:
            errors[f"new_label_{i}"] = gettext("Keep a question under 500 characters.")
            continue
        question = {"key": _key(label, taken), "kind": kind, "label": label, "custom": True}
        taken.add(question["key"])
        if kind in (CHOICE, MULTI):
            options = [c.strip() for c in (choices or "").split(",") if c.strip()]
            if len(options) < 2:
                errors[f"new_choices_{i}"] = gettext("Give at least two choices, separated by commas.")
                continue
            question["choices"] = {f"c{n}": text[:200] for n, text in enumerate(options, start=1)}
        out.append(question)
    if not out and not errors:
        errors["_form"] = gettext("Keep at least one question.")
    if len(out) > MAX_QUESTIONS:
        errors["_form"] = gettext("At most %(n)s questions.", n=MAX_QUESTIONS)
    if errors:
        raise TracerInvalid(errors)
    return out


def label(question: dict) -> str:
    """Default questions are translated; a facilitator's own wording is shown as written."""
    return question["label"] if question.get("custom") else gettext(question["label"])


def choice_label(question: dict, key: str) -> str:
    text = (question.get("choices") or {}).get(key, key)
    return text if question.get("custom") else gettext(text)


def clean_answers(questions: list[dict], form: dict, submit: bool) -> dict:
    """Answers by question key. A draft may be partial; a submission needs every question answered
    (an explicit 'none' or '0' counts)."""
    answers, errors, missing = {}, {}, {}
    for question in questions:
        key, kind = question["key"], question["kind"]
        raw = form.get(key)
        if kind == MULTI:
            values = [v for v in (raw if isinstance(raw, list) else [raw] if raw else []) if v]
            unknown = [v for v in values if v not in question.get("choices", {})]
            if unknown:
                errors[key] = gettext("Choose from the list.")
                continue
            value = sorted(set(values), key=list(question["choices"]).index)
        else:
            value = (raw[0] if isinstance(raw, list) and raw else raw if isinstance(raw, str) else "") or ""
            value = value.replace("\r\n", "\n").strip()
            if kind == CHOICE and value and value not in question.get("choices", {}):
                errors[key] = gettext("Choose from the list.")
                continue
            if kind == NUMBER and value:
                if not re.fullmatch(r"\d{1,9}", value.replace(",", "").replace(" ", "")):
                    errors[key] = gettext("Write a whole number, e.g. 250.")
                    continue
                value = str(int(value.replace(",", "").replace(" ", "")))
            if len(value) > MAX_TEXT:
                errors[key] = gettext("Keep this under %(n)s characters.", n=MAX_TEXT)
                continue
        answers[key] = value
        if value in ("", []):
            missing[key] = gettext("Answer this question to submit (you can save a draft without it).")
    if errors or (submit and missing):
        raise TracerInvalid({**(missing if submit else {}), **errors})
    return answers


def schedule(closing: date, months: list[int], weeks_open: int, zone: str) -> list[tuple[str, datetime, datetime]]:
    """(title, opens, closes) per offset: 09:00 in the facilitator's zone, `months` after the closing workshop."""
    if not months:
        raise TracerInvalid({"months": gettext("Give at least one number of months, e.g. 3, 12.")})
    if not 1 <= weeks_open <= 26:
        raise TracerInvalid({"weeks": gettext("Keep a round open between 1 and 26 weeks.")})
    out = []
    for m in months:
        if not 1 <= m <= 120:
            raise TracerInvalid({"months": gettext("Months after the closing workshop go from 1 to 120.")})
        y, mo = divmod(closing.month - 1 + m, 12)
        day = min(closing.day, 28 if mo + 1 == 2 else 30 if mo + 1 in (4, 6, 9, 11) else 31)
        opens = datetime.combine(date(closing.year + y, mo + 1, day), time(9, 0), ZoneInfo(zone))
        out.append((gettext("Tracer study, %(n)s months after the course", n=m), opens,
                    opens + timedelta(weeks=weeks_open)))
    return out


def parse_months(text: str) -> list[int]:
    try:
        return sorted({int(p) for p in re.split(r"[,;\s]+", text or "") if p})
    except ValueError:
        raise TracerInvalid({"months": gettext("Write numbers of months separated by commas, e.g. 3, 12.")}) from None


def way_back(db, scope, platform: dict) -> str:
    """The course's tool activity in the LMS (Moodle's mod/lti/view.php?l=instance): home first, else any link."""
    from ..db import projects as pq

    links = pq.course_links(db, scope)["links"]
    instance = links.get("tracer_study") or links.get("home") or next(iter(links.values()), None)
    base = platform["issuer"].rstrip("/")
    return f"{base}/mod/lti/view.php?l={instance}" if instance else f"{base}/course/view.php?id={scope[2]}"


def message_text(title: str, link: str, reminder: int, locale: str | None = None) -> str:
    from markupsafe import escape

    head = (gettext("Reminder: %(title)s is waiting for your answers.", locale=locale, title=title) if reminder
            else gettext("%(title)s: tell the course team what happened with your course project since the course.",
                         locale=locale, title=title))
    action = gettext("Open the survey from the course's tool activity", locale=locale)
    return f"<p>{escape(head)}</p><p><a href=\"{escape(link)}\">{escape(action)}</a></p>"


def queue_due(db, now: datetime) -> int:
    """Open rounds that reached their date (invite consenting alumni) and queue due invitations and reminders
    as outbox messages. Answered, closed or ended rounds get no more messages. Returns messages queued."""
    now_s, sent = ts(now), 0
    with write_transaction(db):
        for rnd in q.rounds_to_open(db, now_s):
            scope = (rnd["platform_id"], rnd["deployment_id"], rnd["context_id"])
            q.mark_round_invited(db, rnd["id"], [r["user_id"] for r in q.consenting_learners(db, scope)], now_s)
        for inv in q.due_invites(db, now_s):
            ended = inv["closed_at"] or inv["closes_at"] <= now_s
            if inv["status"] == "submitted" or ended or not lq.get_moodle_ws(db, inv["platform_id"]):
                q.stop_invite(db, inv["round_id"], inv["user_id"])
                continue
            n = inv["messages"]
            outbox.enqueue(db, platform_id=inv["platform_id"], kind="ws_message",
                           payload={"user_id": inv["user_id"],
                                    "text": message_text(inv["title"], inv["link_url"], n, inv["locale"])},
                           dedupe_key=f"tracer:{inv['round_id']}:{inv['user_id']}:{n}")
            following = REMINDER_DAYS[n] - (REMINDER_DAYS[n - 1] if n else 0) if n < len(REMINDER_DAYS) else None
            q.record_message(db, inv["round_id"], inv["user_id"], now_s,
                             ts(now + timedelta(days=following)) if following else None)
            sent += 1
    return sent
