"""Every page of every role, rendered in the en_XA pseudo-locale, shows no English outside user data.

The crawler starts at each role's home and follows the tool's own links, so new pages are covered
without listing them here. A word left in plain English is a string that was never marked.
"""
from __future__ import annotations

import re
from pathlib import Path
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from lms_bridge.sandbox import COURSE_TITLE, USERS

ROOT = Path(__file__).resolve().parents[1]

# Words that are not interface text: product and standard names, codes, units, time-zone and language names.
ALLOWED = {
    "lms_bridge", "lms", "bridge", "Moodle", "LTI", "SDG", "SDGs", "HRBA", "UTC", "CSV", "JSON", "iCalendar", "ics",
    "PDF", "docx", "pptx", "odt", "odp", "xlsx", "png", "jpg", "jpeg", "MiB", "MB", "KB", "HTTP", "English",
    "Bahasa", "Indonesia", "Melayu", "Filipino", "Asia", "Europe", "Pacific", "America", "Africa", "Australia",
    "Atlantic", "Indian", "Antarctica", "Etc", "GMT", "Jakarta", "Seoul", "Stockholm", "Tarawa", "Kathmandu",
    "Manila", "Colombo", "Dhaka", "Kuala_Lumpur", "Lumpur", "Kuala", "Male", "Maldives", "lt", "lang", "id", "am", "pm",
    "LMS", "AM", "PM",
}
# The pseudo-locale formats dates with English CLDR data: Babel's names are not catalogue strings.
ALLOWED |= {d for d in "Mon Tue Wed Thu Fri Sat Sun Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()}
ALLOWED |= set("second seconds minute minutes hour hours day days week weeks month months year years".split())
ALLOWED |= set("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec January February March April June July August "
               "September October November December".split())


def _user_words() -> set[str]:
    words = {"Sandbox", "test", "double"}  # the sandbox platform's name, shown on the admin's platform page
    for user in USERS.values():
        words.update(re.findall(r"[A-Za-z]+", f"{user.given} {user.family} {user.name} {user.username} {user.email}"))
    return words


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


RUN_SPLIT = re.compile(r"[^A-Za-z' -]+")


def _runs(text: str) -> list[str]:
    return [_norm(" ".join(re.findall(r"[A-Za-z][A-Za-z']*", run))) for run in RUN_SPLIT.split(text)]


def stored_corpus(app) -> tuple[str, set[str]]:
    """Every text the database holds (what people typed, the demo's content, the LMS's names), the English
    country names Babel gives the pseudo-locale, and the course content: data, never interface text."""
    from babel import Locale

    from lms_bridge.db import connect, dialect

    texts = [COURSE_TITLE]
    db = connect(app.config["DATABASE_URL"])
    try:
        tables = ("SELECT tablename FROM pg_tables WHERE schemaname = 'public'" if dialect(db) == "postgresql"
                  else "SELECT name FROM sqlite_master WHERE type = 'table'")
        for (table,) in db.execute(tables).fetchall():
            texts += [v for row in db.execute(f'SELECT * FROM "{table}"') for v in row if isinstance(v, str)]
    finally:
        db.close()
    texts += list(Locale.parse("en").territories.values())
    texts += [path.read_text(encoding="utf-8") for path in (ROOT / "content_packages" / "course").rglob("*.toml")]
    words_only = (_norm(" ".join(re.findall(r"[A-Za-z][A-Za-z']*", t))) for t in texts)
    return "\n".join(words_only), {r for t in texts for r in _runs(t) if r}


def text_nodes(html: str) -> list[str]:
    html = re.sub(r"(?is)<(script|style|code|pre|textarea)\b.*?</\1>", " ", html)
    attrs = re.findall(r'(?i)\b(?:title|placeholder|aria-label|alt)="([^"]*)"', html)
    attrs += re.findall(r'(?i)<input[^>]*type="(?:submit|button)"[^>]*value="([^"]*)"', html)
    return [unescape(t) for t in re.split(r"(?s)<[^>]+>", html) + attrs if t.strip()]


def english_left(html: str, corpus: tuple[str, set[str]], data_words: set[str]) -> set[str]:
    """Runs of plain English words that are neither translated (pseudo) text nor data stored in the database.
    A run is a piece of one text node between punctuation. It is data when a stored text has the same run, or,
    five words and longer, when it stands inside a stored text (pages shorten long texts); so a common phrase
    of an unmarked sentence is caught even when people also typed it somewhere."""
    text, runs = corpus
    found = set()
    for node in text_nodes(html):
        shortened = node.rstrip().endswith(("...", "…"))  # a long text cut for a chart label or a list
        node = re.sub(r"\[[^\[\]]*~+\]", " | ", node)  # translated (pseudo) segments, innermost first
        node = re.sub(r"\[[^\[\]]*~+\]", " | ", node)
        node = re.sub(r"\[[^\[\]]*$", " | ", node)  # a translated segment cut short
        node = re.sub(r"\w*[^\W\d_A-Za-z]\w*", " | ", node)  # words with accented letters are pseudo text
        node = re.sub(r"https?://\S+|\S+@\S+|\b[\w.-]+/[\w./-]+", " | ", node)  # URLs, e-mails, zone names
        for run in RUN_SPLIT.split(node):
            words = re.findall(r"[A-Za-z][A-Za-z']*", run)
            if not words or all(w in ALLOWED or w in data_words for w in words):
                continue
            joined = _norm(" ".join(words))
            if joined in runs or ((len(words) >= 5 or shortened) and joined in text):
                continue
            found.add(run.strip())
    return found


def crawl(client, start: str, limit: int = 60) -> dict[str, str]:
    """GET the start page and every same-site page it links to (no downloads, no sandbox), breadth first."""
    seen, queue, pages = set(), [start], {}
    while queue and len(pages) < limit:
        url = queue.pop(0)
        parts = urlsplit(url)
        # one page per template: ids in the path and query values do not make a new page
        key = re.sub(r"/[0-9a-f]{6,}|/\d+", "/N", parts.path) + "?" + "&".join(
            sorted(k for k in parse_qs(parts.query) if k != "lt"))
        if key in seen:
            continue
        seen.add(key)
        resp = client.get(url, follow_redirects=True)
        if resp.status_code != 200 or resp.mimetype != "text/html":
            continue
        html = resp.get_data(as_text=True)
        pages[url] = html
        for href in re.findall(r'href="([^"#]+)"', html):
            link = urljoin(url, unescape(href))
            p = urlsplit(link)
            if p.netloc not in ("", "localhost") or p.path.startswith(("/sandbox", "/static", "/lti")):
                continue
            if "lang=" in p.query or p.path.endswith((".csv", ".ics", ".json")) or "/download" in p.path:
                continue
            queue.append(p.path + ("?" + p.query if p.query else ""))
    return pages


@pytest.mark.parametrize("user", ["5", "6", "7", "3", "4", "2"])
def test_every_page_in_the_pseudo_locale_has_no_unmarked_english(app, client, lti, user):
    from lms_bridge.sandbox import seed_demo

    with app.app_context():
        seed_demo(app)  # the living demo course: every page has content in every state
    token = lti.launch(user=user, activity="home", lang="en_XA")
    pages = crawl(client, f"/app/home?lt={token}")
    assert len(pages) >= 2
    corpus, data_words = stored_corpus(app), _user_words()
    leftovers = {url.split("?")[0]: sorted(english_left(html, corpus, data_words)) for url, html in pages.items()}
    leftovers = {k: v for k, v in leftovers.items() if v}
    assert not leftovers, "\n".join(f"{page}: {' | '.join(runs)}" for page, runs in leftovers.items())
