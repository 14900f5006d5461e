"""Library search semantics, the same on both stores: SQLite's FTS5 MATCH and PostgreSQL's tsquery over tsvectors.

Words come from `rules.fts_query` (every word must appear, the last one as a prefix, a word's parts as a
phrase); these tests pin what that means on the store the suite runs on, so both runs agree.
"""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from lms_bridge.db import practices as pq
from lms_bridge.db import projects as q
from lms_bridge.db import ts, utcnow, write_transaction
from lms_bridge.practices import rules

SITE = "https://moodle.example.org"
OTHER_SITE = "https://other.example.org"
SCOPE = (1, "1", "2")
_authors = itertools.count()


def publish(db, *entries: dict, issuer: str = SITE) -> list[int]:
    """Published, indexed entries (the first is the newest); each dict gives text fields and optional tags."""
    ids, now = [], utcnow()
    with write_transaction(db):
        for i, fields in enumerate(entries):
            project = q.create_project(db, SCOPE, f"u{next(_authors)}")
            fields = {"summary": "", "problem": "", "approach": "", **fields}
            entry_id = pq.create_entry(db, issuer, SCOPE, project, fields, "3")
            pq.set_state(db, entry_id, "published")
            db.execute("UPDATE practices SET published_at = ? WHERE id = ?", [ts(now - timedelta(minutes=i)), entry_id])
            e = pq.entry(db, entry_id)
            pq.index_entry(db, e, rules.tags(e), fields.get("place", ""))
            ids.append(entry_id)
    return ids


def titles(db, text: str = "", *, issuer: str | None = SITE, raw: str | None = None, ranked: bool = False,
           **filters) -> list[str]:
    """The titles found (sorted, unless the order is what the test is about)."""
    found, total = pq.search(db, issuer, query=raw if raw is not None else rules.fts_query(text), filters=filters)
    assert total == len(found)
    out = [e["title"] for e in found]
    return out if ranked else sorted(out)


def test_every_word_must_appear_and_only_the_last_is_a_prefix(app, db):
    publish(db, {"title": "Sanitation for water points"}, {"title": "Water kiosks"}, {"title": "Sanitary pads"})
    assert titles(db, "water") == ["Sanitation for water points", "Water kiosks"]
    assert titles(db, "sanit") == ["Sanitary pads", "Sanitation for water points"]
    assert titles(db, "water sanit") == ["Sanitation for water points"]
    assert titles(db, "sanit water") == []  # 'sanit' is not the last word: a whole word, not a prefix
    assert titles(db, "water fisheries") == []


def test_a_word_joined_by_underscore_is_a_phrase_within_one_column(app, db):
    publish(db, {"title": "A child labour pledge"}, {"title": "Labour rights of every child"},
            {"title": "Schools for every child", "summary": "Labour inspectors visit markets."})
    assert titles(db, "child labour") == ["A child labour pledge", "Labour rights of every child",
                                          "Schools for every child"]
    assert titles(db, "child_labour") == ["A child labour pledge"]  # adjacent, in order, never across columns
    assert titles(db, "child_lab") == ["A child labour pledge"]  # the phrase's last word as a prefix


def test_case_and_diacritics_do_not_matter(app, db):
    publish(db, {"title": "Écoles inclusives à São Paulo"}, {"title": "Naïve budgeting in Medellin"})
    assert titles(db, "ecoles sao paulo") == ["Écoles inclusives à São Paulo"]
    assert titles(db, "ÉCOLES São") == ["Écoles inclusives à São Paulo"]
    assert titles(db, "naive medellín") == ["Naïve budgeting in Medellin"]
    assert titles(db, "MEDELL") == ["Naïve budgeting in Medellin"]


def test_punctuation_separates_words_as_the_unicode61_tokenizer_does(app, db):
    publish(db, {"title": "Co-design with DPOs", "summary": "Report at www.water-office.example.org; 3.5 km of pipes."})
    for text in ("design", "co design", "water office", "example org", "office example", "3 5 km", "DPOs"):
        assert titles(db, text) == ["Co-design with DPOs"], text
    assert titles(db, "codesign") == []
    assert titles(db, "co-design") == ["Co-design with DPOs"]


def test_words_never_match_the_site_and_filter_tokens(app, db):
    publish(db, {"title": "Ramps", "sdgs": ["6"]})
    assert titles(db, pq.site_token(SITE)) == []
    assert titles(db, pq.tag_token("sdg", "6")) == []
    assert titles(db, "ramps", sdg="6") == ["Ramps"] and titles(db, "ramps", sdg="7") == []


def test_a_site_sees_its_own_entries_and_the_public_library_every_site(app, db):
    publish(db, {"title": "Water at home", "sdgs": ["6"]})
    publish(db, {"title": "Water elsewhere", "sdgs": ["6"]}, issuer=OTHER_SITE)
    assert titles(db, "water") == ["Water at home"] and titles(db, sdg="6") == ["Water at home"]
    assert sorted(titles(db, "water", issuer=None)) == ["Water at home", "Water elsewhere"]
    assert sorted(titles(db, issuer=None, sdg="6")) == ["Water at home", "Water elsewhere"]


def test_title_matches_rank_above_body_matches_and_filters_alone_list_newest_first(app, db):
    publish(db, {"title": "Market vendors", "problem": "Flood risk along the river.", "sdgs": ["11"]},
            {"title": "Flood adaptation plan", "sdgs": ["11"]},
            {"title": "Housing", "what_next": "A flood study.", "sdgs": ["11"]})
    assert titles(db, "flood", ranked=True) == ["Flood adaptation plan", "Market vendors", "Housing"]
    assert titles(db, sdg="11", ranked=True) == ["Market vendors", "Flood adaptation plan", "Housing"]


def test_pages_and_totals_agree(app, db):
    publish(db, *[{"title": f"Water point {i}"} for i in range(7)])
    first, total = pq.search(db, SITE, query=rules.fts_query("water"), limit=3)
    rest, again = pq.search(db, SITE, query=rules.fts_query("water"), limit=10, offset=3)
    assert total == again == 7 and len(first) == 3 and len(rest) == 4
    assert {e["id"] for e in first} | {e["id"] for e in rest} == {e["id"] for e in pq.course_entries(db, SCOPE)}


@pytest.mark.parametrize("expression, expected", [
    ('"water" OR "fisheries"', ["Fisheries council", "Water kiosks"]),
    ('"water" NOT "kiosks"', []),
    ('("kiosks" OR "council") AND "water"', ["Water kiosks"]),
    ('"_"*', []),  # a phrase without a letter or digit finds nothing, as in FTS5
    ('"_" "fisheries"', ["Fisheries council"]),  # and is ignored beside other words
])
def test_fts_expressions_mean_the_same_on_both_stores(app, db, expression, expected):
    publish(db, {"title": "Water kiosks"}, {"title": "Fisheries council"})
    assert titles(db, raw=expression) == expected


def test_fts_expression_becomes_an_equivalent_tsquery():
    assert pq.pg_tsquery(rules.fts_query("accessible co-des")) == "'accessible' & 'co' & 'des':*"
    assert pq.pg_tsquery('"child_labour" "pledg"*') == "('child' <-> 'labour') & 'pledg':*"
    assert pq.pg_tsquery('"child_lab"*') == "('child' <-> 'lab':*)"
    assert pq.pg_tsquery('"a" OR "b" NOT "c"') == "'a' | 'b' & ! 'c'"
    assert pq.pg_tsquery('("a" OR "b") "c"*') == "( 'a' | 'b' ) & 'c':*"
    assert pq.pg_tsquery('"_"*') == "" and pq.pg_tsquery('() AND OR "a" (') == "'a'"
    assert pq.pg_tsquery('"it\'s"') == "('it' <-> 's')"  # no quote ever reaches to_tsquery
