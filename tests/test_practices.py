"""The library of promising practices: consent, curation, anonymisation, search, access and exports."""
from __future__ import annotations

import json
import re

import pytest

from lms_bridge.db import connect, dialect, write_transaction
from lms_bridge.db import practices as lq
from lms_bridge.db import projects as q
from lms_bridge.practices import rules
from tests.test_projects_flow import ALL_STRONG, PLAN, SCOPE, post_stage, review

REPORT = {"what_was_done": "Audited 40 water points with the DPO network.",
          "results": "12 water points rebuilt with ramps; budget line adopted.",
          "lessons_learned": "Co-design with wheelchair users convinced the water office.",
          "next_steps": "Scale to North Jakarta.", "action_plan": "Budget request 2027."}


def db_of(app):
    return connect(app.config["DATABASE_URL"])


def graded_project(app, client, lti, user="5", consent="named", plan=None):
    """A learner's plan and report submitted (with the library choice), the report graded; returns project id."""
    learner = lti.launch(user=user)
    assert post_stage(client, learner, data=plan or PLAN).status_code == 303
    assert post_stage(client, learner, "project_report", dict(REPORT, library_consent=consent)).status_code == 303
    fac = lti.launch(user="3")
    pid = q.project_of(db_of(app), SCOPE, user)["id"]
    assert review(client, fac, pid, "grade", stage="project_report", comment="Strong report.",
                  **ALL_STRONG).status_code == 303
    return pid


def curate_and_publish(client, lti, pid, learner_user="5", **edits):
    fac = lti.launch(user="3")
    resp = client.post(f"/library/curate/{pid}/start", data={"lt": fac})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    entry_id = int(re.search(r"/curate/entry/(\d+)", resp.headers["Location"]).group(1))
    form = {"lt": fac, "title": "Ramps for every water point", "summary": "Accessible water in Jakarta.",
            "problem": "Water points out of reach.", "approach": "Co-design with DPOs.", "city": "Jakarta",
            "country": "ID", "sdgs": ["6", "10"], "targets": "6.1", "hrba": ["participation_inclusion"],
            "themes": ["disability", "water"], "cohort_year": "2025", "org_type": "local_government", **edits}
    assert client.post(f"/library/curate/entry/{entry_id}", data=dict(form, action="send")).status_code == 303
    learner = lti.launch(user=learner_user)
    assert client.post("/library/mine", data={"lt": learner, "action": "approve"}).status_code == 303
    assert client.post(f"/library/curate/entry/{entry_id}", data=dict(form, action="publish")).status_code == 303
    return entry_id


def search_page(client, token, **args):
    return client.get("/library/", query_string={"lt": token, **args}).get_data(as_text=True)


# --- rules -----------------------------------------------------------------------------------

def test_group_consent_is_the_most_private_choice_of_its_members():
    assert rules.effective_consent(["named", "named"]) == "named"
    assert rules.effective_consent(["named", "anonymous"]) == "anonymous"
    assert rules.effective_consent(["anonymous", "none"]) == "none"
    assert rules.effective_consent([]) == "none"


def test_only_an_approved_entry_can_be_published():
    with pytest.raises(rules.LibraryRefused):
        rules.transition("draft", "facilitator", "publish")
    with pytest.raises(rules.LibraryRefused):
        rules.transition("in_review", "facilitator", "publish")
    assert rules.transition("in_review", "participant", "approve") == "approved"
    assert rules.transition("approved", "facilitator", "publish") == "published"


def test_entry_form_names_every_problem():
    with pytest.raises(rules.EntryInvalid) as info:
        rules.clean_entry({"title": "x" * 201, "sdgs": ["6", "99"], "targets": "11.3", "cohort_year": "1800"},
                          for_send=True)
    assert {"title", "sdgs", "targets", "cohort_year", "summary", "problem", "approach"} <= set(info.value.errors)


def test_search_words_become_a_safe_fts_query():
    assert rules.fts_query('child "labour" OR NEAR(') == '"child" "labour" "OR" "NEAR"*'
    assert rules.fts_query("  ") == ""


# --- consent ---------------------------------------------------------------------------------

def test_consent_is_asked_with_the_report_and_recorded_with_wording_and_date(app, client, lti):
    pid = graded_project(app, client, lti, consent="anonymous")
    [row] = lq.consents(db_of(app), pid).values()
    assert row["choice"] == "anonymous" and row["user_id"] == "5"
    assert "withdrawing removes the entry at once" in row["wording"] and row["decided_at"].startswith("20")
    learner = lti.launch(user="5")
    page = client.get("/library/mine", query_string={"lt": learner}).get_data(as_text=True)
    assert 'value="anonymous" checked' in page


def test_facilitator_cannot_curate_without_consent_or_grade(app, client, lti):
    pid = graded_project(app, client, lti, consent="none")
    fac = lti.launch(user="3")
    assert client.post(f"/library/curate/{pid}/start", data={"lt": fac}).status_code == 409
    assert lq.entry_for_project(db_of(app), pid) is None


# --- curation, search, withdrawal -------------------------------------------------------------

def test_curated_entry_is_searchable_by_sdg_and_text_once_published(app, client, lti):
    pid = graded_project(app, client, lti)
    fac = lti.launch(user="3")
    client.post(f"/library/curate/{pid}/start", data={"lt": fac})
    other = lti.launch(user="6")
    assert "Ramps for every water point" not in search_page(client, other, sdg="6")  # nothing before publication
    curate_and_publish(client, lti, pid)
    assert "Ramps for every water point" in search_page(client, other, sdg="6")
    assert "Ramps for every water point" in search_page(client, other, q="accessible co-des")
    assert "Ramps for every water point" not in search_page(client, other, sdg="13")
    assert "Ramps for every water point" not in search_page(client, other, q="fisheries")
    assert "Ramps for every water point" in search_page(client, other, theme="disability", country="ID")


def test_participant_asking_for_changes_takes_a_published_entry_down(app, client, lti):
    pid = graded_project(app, client, lti)
    entry_id = curate_and_publish(client, lti, pid)
    learner = lti.launch(user="5")
    refused = client.post("/library/mine", data={"lt": learner, "action": "ask_changes", "comment": ""})
    assert refused.status_code == 400 and lq.entry(db_of(app), entry_id)["state"] == "published"
    client.post("/library/mine", data={"lt": learner, "action": "ask_changes", "comment": "Use my city's name."})
    assert lq.entry(db_of(app), entry_id)["state"] == "changes_requested"
    assert "Ramps for every water point" not in search_page(client, lti.launch(user="6"), sdg="6")


def test_withdrawn_consent_removes_the_entry_from_search_public_page_and_exports_at_once(app, client, lti):
    app.config["LIBRARY_PUBLIC"] = True
    pid = graded_project(app, client, lti)
    entry_id = curate_and_publish(client, lti, pid)
    public_id = lq.entry(db_of(app), entry_id)["public_id"]
    assert client.get(f"/library/public/e/{public_id}").status_code == 200
    learner = lti.launch(user="5")
    assert client.post("/library/mine", data={"lt": learner, "consent": "none"}).status_code == 303
    assert lq.entry(db_of(app), entry_id) is None
    other = lti.launch(user="6")
    assert "Ramps" not in search_page(client, other)
    assert client.get(f"/library/public/e/{public_id}").status_code == 404
    assert "Ramps" not in client.get("/library/public/export.json").get_data(as_text=True)
    assert "Ramps" not in client.get("/library/export.csv", query_string={"lt": other}).get_data(as_text=True)
    assert db_of(app).execute("SELECT count(*) FROM practices_fts").fetchone()[0] == 0


# --- anonymisation ---------------------------------------------------------------------------

def test_anonymised_entry_shows_no_name_email_or_user_id_anywhere(app, client, lti):
    app.config["LIBRARY_PUBLIC"] = True
    pid = graded_project(app, client, lti, consent="anonymous")
    entry_id = curate_and_publish(client, lti, pid)
    e = lq.entry(db_of(app), entry_id)
    other = lti.launch(user="6")
    outputs = [
        search_page(client, other), client.get(f"/library/e/{e['public_id']}", query_string={"lt": other}).get_data(as_text=True),
        client.get("/library/collection", query_string={"lt": other}).get_data(as_text=True),
        client.get("/library/export.csv", query_string={"lt": other}).get_data(as_text=True),
        client.get("/library/export.json", query_string={"lt": other}).get_data(as_text=True),
        client.get("/library/public/").get_data(as_text=True),
        client.get(f"/library/public/e/{e['public_id']}").get_data(as_text=True),
        client.get("/library/public/export.json").get_data(as_text=True),
    ]
    for out in outputs:
        assert "Ramps for every water point" in out
        for personal in ("Lina", "Santoso", "learner1", "user:5", "owner_id", "user_id"):
            assert personal not in out
        assert not re.search(r"[\w.+-]+@[\w-]+\.\w", out)
    exported = json.loads(outputs[4])["entries"][0]
    assert exported["authors"] == [] and exported["licence"] == "CC BY 4.0" and exported["id"] == e["public_id"]
    from lms_bridge.practices.views import EXPORT_FIELDS

    assert set(exported) == set(EXPORT_FIELDS)  # nothing that identifies a person beyond `authors`


def test_named_entry_credits_its_author(app, client, lti):
    pid = graded_project(app, client, lti, consent="named")
    entry_id = curate_and_publish(client, lti, pid)
    e = lq.entry(db_of(app), entry_id)
    page = client.get(f"/library/e/{e['public_id']}", query_string={"lt": lti.launch(user="6")}).get_data(as_text=True)
    assert "Lina Santoso" in page


# --- who sees it ------------------------------------------------------------------------------

def test_public_library_is_off_by_default_and_noindex_when_on(app, client, lti):
    assert client.get("/library/public/").status_code == 404
    assert client.get("/library/public/export.csv").status_code == 404
    app.config["LIBRARY_PUBLIC"] = True
    resp = client.get("/library/public/")
    assert resp.status_code == 200 and resp.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in resp.get_data(as_text=True)
    app.config["LIBRARY_INDEXABLE"] = True
    assert "X-Robots-Tag" not in client.get("/library/public/").headers


def test_entries_of_another_site_are_not_visible(app, client, lti):
    pid = graded_project(app, client, lti)
    entry_id = curate_and_publish(client, lti, pid)
    db = db_of(app)
    with write_transaction(db):  # the same entry as if it had been published on another Moodle site
        db.execute("UPDATE practices SET issuer = 'https://other-moodle.example.org' WHERE id = ?", [entry_id])
        e = lq.entry(db, entry_id)
        lq.index_entry(db, e, rules.tags(e), "Jakarta")
    public_id = e["public_id"]
    other = lti.launch(user="6")
    assert "Ramps" not in search_page(client, other)
    assert client.get(f"/library/e/{public_id}", query_string={"lt": other}).status_code == 404


def test_learners_of_another_course_of_the_same_site_find_published_entries(app, client, lti):
    pid = graded_project(app, client, lti)
    entry_id = curate_and_publish(client, lti, pid)
    elsewhere = lti.launch(user="6", activity="home", course="3")
    page = search_page(client, elsewhere, sdg="6")
    public_id = lq.entry(db_of(app), entry_id)["public_id"]
    assert f'data-entry="{public_id}"' in page
    assert client.get(f"/library/e/{public_id}", query_string={"lt": elsewhere}).status_code == 200
    # ...while that course's facilitator cannot curate a project of the first course
    other_fac = lti.launch(user="3", activity="home", course="3")
    assert client.get(f"/library/curate/entry/{entry_id}", query_string={"lt": other_fac}).status_code == 404


def test_learners_cannot_curate(app, client, lti):
    pid = graded_project(app, client, lti)
    learner = lti.launch(user="6")
    assert client.get("/library/curate", query_string={"lt": learner}).status_code == 403
    assert client.post(f"/library/curate/{pid}/start", data={"lt": learner}).status_code == 403


def test_printable_collection_has_a_cover_contents_and_one_page_per_entry(app, client, lti):
    pid = graded_project(app, client, lti)
    curate_and_publish(client, lti, pid)
    html = client.get("/library/collection", query_string={"lt": lti.launch(user="6"), "sdg": "6"}).get_data(as_text=True)
    assert 'class="cover"' in html and 'class="toc"' in html and html.count('<article class="practice"') == 1
    assert "break-after: page" in html


def test_library_is_a_deep_linkable_activity_with_a_home_card(app, client, lti):
    from lms_bridge import activities

    assert "practices_library" in activities.CATALOGUE and activities.endpoint_for("practices_library")
    home = client.get("/app/home", query_string={"lt": lti.launch(user="5")}).get_data(as_text=True)
    assert 'data-activity="practices_library"' in home and "/library/" in home


def test_library_queries_use_indexes_not_scans(app, client, lti):
    db = db_of(app)
    issuer = db.execute("SELECT issuer FROM platforms WHERE id = 1").fetchone()[0]
    if dialect(db) == "postgresql":
        return assert_postgresql_library_plans(db, issuer)
    plan = " ".join(r[3] for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM practices WHERE issuer = ? AND state = 'published'"
        " ORDER BY published_at DESC, id DESC LIMIT 20", [issuer]))
    assert "USING INDEX practices_site" in plan and "TEMP B-TREE" not in plan
    plan = " ".join(r[3] for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT rowid FROM practices_fts WHERE practices_fts MATCH 'water' ORDER BY rank LIMIT 20"))
    assert "VIRTUAL TABLE INDEX" in plan


def assert_postgresql_library_plans(db, issuer):
    """PostgreSQL: the newest-first page walks practices_site, the words and the tokens go through their GIN
    indexes. A test database holds a few rows, so sequential scans are switched off to ask whether the indexes
    serve these queries at all (the planner rightly scans a tiny table)."""
    db.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT * FROM practices WHERE issuer = ? AND state = 'published'"
        " ORDER BY published_at DESC, id DESC LIMIT 20", [issuer]))
    assert "practices_site" in plan and not re.search(r"(?<!Incremental )Sort\b", plan), plan
    for column, config, query in (("words", "lb_words", lq.pg_tsquery('"water"*')),
                                  ("tokens", "simple", lq.site_token(issuer))):
        plan = "\n".join(r[0] for r in db.execute(
            f"EXPLAIN SELECT rowid FROM practices_fts WHERE {column} @@ to_tsquery('{config}', ?)", [query]))
        assert f"Bitmap Index Scan on practices_fts_{column}" in plan, plan


def test_demo_library_has_published_alumni_entries_to_find(app, client, lti):
    from lms_bridge.sandbox import seed_demo

    with app.app_context():
        seed_demo(app)
    page = search_page(client, lti.launch(user="5", activity="home"), sdg="8")
    assert "A child-labour-free pledge for every trade licence" in page
    everything = search_page(client, lti.launch(user="5", activity="home"))
    assert "4 projects found" in everything and "Dewi Lestari" not in everything  # anonymised alumni stay so
