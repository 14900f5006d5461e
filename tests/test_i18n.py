"""Interface language: chosen from the launch, Accept-Language or the switcher; catalogues kept fresh."""
from __future__ import annotations

import re

import pytest

from lms_bridge import i18n
from lms_bridge.i18n_tools import pseudo


@pytest.mark.parametrize("sent, expected", [
    ("id", "id"), ("en-US", "en"), ("ko_KR", "ko"), ("fil_PH", "fil"), ("tl", "fil"), ("DV", "dv"),
    ("en_XA", "en_XA"), ("pt_br", None), ("", None), (None, None), ("x" * 80, None),
])
def test_normalize_maps_lms_and_browser_codes_to_supported_locales(sent, expected):
    assert i18n.normalize(sent) == expected


def _html_lang(html: str) -> tuple[str, str]:
    m = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', html)
    return m.group(1), m.group(2)


def test_launch_locale_claim_chooses_the_page_language(client, lti):
    token = lti.launch(lang="ko")
    html = client.get("/app/home", query_string={"lt": token}).get_data(as_text=True)
    assert _html_lang(html) == ("ko", "ltr")


def test_dhivehi_pages_are_right_to_left(client, lti):
    token = lti.launch(lang="dv")
    html = client.get("/app/home", query_string={"lt": token}).get_data(as_text=True)
    assert _html_lang(html) == ("dv", "rtl")


def test_accept_language_is_used_when_the_lms_language_is_not_offered(client, lti):
    token = lti.launch(lang="pt_br")
    html = client.get("/app/home", query_string={"lt": token},
                      headers={"Accept-Language": "ne-NP,ne;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert _html_lang(html)[0] == "ne"


def test_switcher_choice_is_remembered_with_the_launch(client, lti):
    token = lti.launch(lang="en")
    first = client.get("/app/home", query_string={"lt": token, "lang": "si"}).get_data(as_text=True)
    assert _html_lang(first)[0] == "si"
    later = client.get("/app/home", query_string={"lt": token}).get_data(as_text=True)
    assert _html_lang(later)[0] == "si"


def test_switcher_lists_every_language_with_links_keeping_the_launch(client, lti):
    token = lti.launch()
    html = client.get("/app/home", query_string={"lt": token}).get_data(as_text=True)
    for code in i18n.LANGUAGES:
        assert f'hreflang="{code}"' in html
    assert re.search(r'href="/app/home\?lt=[^"]+&amp;lang=ta"', html)


def test_pseudo_keeps_placeholders_and_markup():
    out = pseudo("Submit %(stage)s before <strong>%(date)s</strong> &amp; save")
    assert out.startswith("[") and out.endswith("]")
    for kept in ("%(stage)s", "<strong>", "%(date)s", "</strong>", "&amp;"):
        assert kept in out
    assert "Submit" not in out


def test_dhivehi_dates_use_dhivehi_month_and_weekday_names():
    import datetime

    from babel.dates import format_skeleton

    text = format_skeleton("yMMMEd", datetime.date(2026, 12, 7), locale=i18n.babel_locale("dv"))
    assert "ޑިސެމްބަރު" in text and "ހޯމަ" in text and "M12" not in text and "Mon" not in text


def test_babel_formats_indonesian_dates_and_numbers():
    import datetime

    from babel.dates import format_skeleton

    assert format_skeleton("yMMMMd", datetime.date(2026, 12, 7), locale=i18n.babel_locale("id")) == "7 Desember 2026"
    assert i18n.number(1234.5, "id") == "1.234,5"


def test_messages_to_a_learner_are_written_in_the_learners_language(app, client, lti):
    """The facilitator works in English; the notice (and Moodle message) reaches the learner in hers."""
    from lms_bridge.db import connect
    from lms_bridge.db import projects as q
    from tests.test_projects_flow import PLAN, SCOPE, post_stage, review

    learner = lti.launch(user="5", lang="en_XA")
    client.get("/app/landing", query_string={"lt": learner})
    assert post_stage(client, learner, data=PLAN).status_code == 303
    fac = lti.launch(user="3", lang="en")
    pid = q.project_of(connect(app.config["DATABASE_URL"]), SCOPE, "5")["id"]
    assert review(client, fac, pid, "return_for_revision", comment="Add indicators by gender.").status_code == 303
    db = connect(app.config["DATABASE_URL"])
    [text] = [r[0] for r in db.execute("SELECT text FROM booking_notices WHERE user_id = '5'")]
    assert text.startswith("[") and "Add indicators by gender." in text and "returned for revision" not in text


# --- the shipped catalogues ---------------------------------------------------------------------

SHIPPED = [code for code in i18n.LANGUAGES if code != "en"]


def test_every_interface_language_has_a_catalogue_and_a_glossary():
    for code in SHIPPED:
        folder = i18n.TRANSLATIONS_DIR / code
        assert (folder / "LC_MESSAGES" / "messages.po").is_file(), code
        assert (folder / "glossary.md").is_file(), code


@pytest.mark.parametrize("code", SHIPPED)
def test_catalogue_is_complete_with_identical_placeholders(code):
    """No message missing, untranslated or fuzzy; `%(name)s` placeholders as in the English."""
    from lms_bridge import i18n_tools

    assert i18n_tools.problems(code) == []


@pytest.mark.parametrize("code", SHIPPED)
def test_compiled_catalogue_is_not_stale(code):
    """messages.mo holds exactly what messages.po says: run `make i18n-compile` when this fails."""
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = i18n.TRANSLATIONS_DIR / code / "LC_MESSAGES"
    def pairs(messages):
        tup = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # noqa: E731  (plural entries)
        return {tup(m.id): tup(m.string) for m in messages if m.id and not m.fuzzy and m.string}

    with open(folder / "messages.po", "rb") as f:
        source = pairs(read_po(f))
    with open(folder / "messages.mo", "rb") as f:
        compiled = pairs(read_mo(f))
    assert compiled == source


def test_translation_is_used_for_a_launch_in_that_language(client, lti):
    token = lti.launch(lang="ko")
    html = client.get("/app/home", query_string={"lt": token}).get_data(as_text=True)
    assert i18n.gettext("Language", locale="ko") != "Language"
    assert i18n.gettext("Language", locale="ko") in html
