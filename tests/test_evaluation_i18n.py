"""Every string of the evaluation pages is marked for translation: rendered in the en_XA pseudo-locale, no text
node is left in plain English except data (names, titles, numbers, dates)."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from lms_bridge.db import evaluation as eq
from lms_bridge.evaluation.grades import cartridge_tests
from lms_bridge.projects.forms import COUNTRIES
from lms_bridge.sandbox import COURSE_TITLE, seed_demo

DATA = re.compile(r"^[\s\d.,:;%+\-–…()/·|=—\[\]]*$")
DATE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}$")  # Babel's English dates (en_XA formats as English)


class Text(HTMLParser):
    """Text nodes outside the page's chrome (header, language switcher) and outside SVG, options and scripts."""

    SKIP = ("script", "style", "svg", "title", "option", "header", "nav")

    def __init__(self):
        super().__init__()
        self.stack, self.out = [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP or (tag == "a" and any(k == "hreflang" for k, _ in attrs)):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if not self.stack and data.strip():
            self.out.append(data.strip())


def untranslated(html: str, data: set[str]) -> list[str]:
    parser = Text()
    parser.feed(html)
    left = []
    for text in parser.out:
        if DATA.match(text) or DATE.match(text) or text.lstrip("·|( \n").startswith("[") or text in data:
            continue
        if text.startswith(": "):  # an alumnus's own answer after their name
            continue
        if any(d and d in text for d in data):
            continue
        left.append(text)
    return left


def test_evaluation_pages_in_the_pseudo_locale_have_no_unmarked_text(app, client, lti, db):
    seed_demo(app)
    staff = lti.launch("3", activity="project_plan", lang="en_XA")
    learner = lti.launch("5", activity="project_plan", lang="en_XA")
    names = {r["name"] for r in db.query("SELECT name FROM roster")} | {r["title"] for r in db.query(
        "SELECT title FROM tracer_rounds")}
    names |= {json.loads(r["data"]).get("indicators", "") for r in db.query("SELECT data FROM submissions")}
    round_id = eq.rounds(db, (1, "1", "2"))[0]["id"]
    data = names | {"Pre-test: what do you know already?", "Post-test: what have you learned?", "n=", "(n=",
                    "Europe/Stockholm", "Asia/Jakarta", COURSE_TITLE} | set(COUNTRIES.values()) | set(cartridge_tests().module_titles.values())
    pages = [(staff, "/app/evaluation/gain"), (staff, "/app/evaluation/tracer"),
             (staff, "/app/evaluation/tracer/questions"), (staff, f"/app/evaluation/tracer/{round_id}"),
             (learner, "/app/evaluation/profile"), (learner, f"/app/evaluation/survey/{round_id}")]
    for token, path in pages:
        html = client.get(path, query_string={"lt": token}).get_data(as_text=True)
        assert untranslated(html, data) == [], path
