"""What a learner and a facilitator see after each action (issue 12): read-only submissions, confirmation,
feedback on top, labels and named local times, upload limits, error summaries, the review page's workflow."""
from __future__ import annotations

import re

from urllib3 import encode_multipart_formdata

from conftest import make_app
from lms_bridge.db import connect
from lms_bridge.db import projects as q

from test_projects_flow import ALL_STRONG, PLAN, SCOPE, post_stage, review, status_of


def db_of(app):
    return connect(app.config["DATABASE_URL"])


def page(client, path, token, **args):
    return client.get(path, query_string={"lt": token, **args}).get_data(as_text=True)


def stage_page(client, token, stage="project_plan", **args):
    return page(client, f"/app/projects/stage/{stage}", token, **args)


def test_submit_asks_for_confirmation_then_shows_the_submission_read_only(app, client, lti):
    token = lti.launch(user="5")
    asked = post_stage(client, token, data=PLAN, confirm=False)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Submit your project plan for review?" in html
    assert 'name="from_draft" value="1"' in html and "Accessible water points in Jakarta" in html
    assert status_of(app)["status"] == "draft"  # the typed text is kept as a draft until confirmed
    done = client.post("/app/projects/stage/project_plan",
                       data={"lt": token, "action": "submit", "confirm": "1", "from_draft": "1"})
    assert done.status_code == 303 and status_of(app)["status"] == "submitted"
    shown = stage_page(client, token)
    assert "<textarea" not in shown and 'id="stage-form"' not in shown and 'id="revise"' not in shown
    assert "Accessible water points in Jakarta" in shown and "cannot be changed unless" in shown
    assert 'data-keep-version="' in shown  # the browser copy is discarded on a read-only page
    # even a crafted ?edit=1 does not reopen a submitted stage
    assert "<textarea" not in stage_page(client, token, edit="1")


def test_returned_stage_shows_the_reason_on_top_and_revise_opens_the_returned_text(app, client, lti):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    review(client, lti.launch(user="3"), pid, "return_for_revision", comment="Add indicators by gender.")
    html = stage_page(client, learner)
    top = html.index('id="feedback-top"')
    assert top < html.index('id="submission-status"') < html.index('id="submission"')
    assert "Add indicators by gender." in html[top:html.index('id="submission-status"')]
    assert 'id="revise"' in html and "<textarea" not in html
    form = stage_page(client, learner, edit="1")
    assert "<textarea" in form and "Audit, redesign, pilot</textarea>" in form


def test_released_grade_tops_the_stage_page_with_the_level_chosen_per_criterion(app, client, lti):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    fac = lti.launch(user="3")
    review(client, fac, pid, "grade", comment="Well argued plan.", **ALL_STRONG)
    assert 'id="feedback-top"' not in stage_page(client, learner)  # in marking: nothing yet
    assert "Submitted" in re.search(r'id="stage-status">([^<]*)<', stage_page(client, learner)).group(1)
    review(client, fac, pid, "mark_ready")
    review(client, fac, pid, "release")
    html = stage_page(client, learner)
    top = html[html.index('id="feedback-top"'):html.index('id="submission-status"')]
    assert '<span class="grade-big" id="released-grade">93.33</span> / 100' in top
    assert re.search(r"Quality of indicators</th><td><strong>Developing</strong>", top)
    assert "Well argued plan." in top and "Asia/Jakarta" in top
    workspace = page(client, "/app/projects/", learner)
    assert re.search(r'data-stage="project_plan">.*?<td class="grade"><strong>93.33</strong> / 100', workspace, re.S)


def test_history_and_review_show_labels_not_stored_keys(app, client, lti):
    learner = lti.launch(user="5")
    post_stage(client, learner, data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    fac = lti.launch(user="3")
    for html in (stage_page(client, learner), page(client, f"/app/projects/review/{pid}/project_plan", fac)):
        assert "<dt>Country</dt><dd>Indonesia</dd>" in html
        assert "SDG 6: Clean Water and Sanitation; SDG 10: Reduced Inequalities" in html
        assert "Participation and inclusion; Equality and non-discrimination" in html
        assert "hrba principles" not in html and "participation_inclusion</dd>" not in html
        assert not re.search(r"\d{4}-\d\d-\d\dT?\s?\d\d:\d\d(:\d\d)?\s+UTC", html)  # no raw UTC times
    form = stage_page(client, lti.launch(user="6"))
    assert "SDG 6: Clean Water and Sanitation</label>" in form


def test_upload_limits_are_shown_and_an_oversized_request_gets_the_form_back(tmp_path):
    app = make_app(tmp_path, MAX_UPLOAD_MB=1)
    client = app.test_client()
    from conftest import LtiActions

    token = LtiActions(client).launch(user="5", activity="project_report")
    form = stage_page(client, token, "project_report")
    assert 'accept=".docx,.odt,.pdf"' in form and f'data-max-bytes="{1024 * 1024}"' in form
    assert ".docx, .odt, .pdf files, up to 1 MB" in form
    assert f'action="/app/projects/stage/project_report?lt={token}"' in form  # the token survives a 413
    body, ctype = encode_multipart_formdata({"lt": token, "action": "save_draft", "what_was_done": "Audit",
                                             "attachment": ("big.pdf", b"%PDF-" + b"0" * (3 * 1024 * 1024),
                                                            "application/pdf")})
    resp = client.post(f"/app/projects/stage/project_report?lt={token}", data=body, content_type=ctype)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 413 and "larger than the 1 MB limit, so nothing was saved" in html
    assert 'id="stage-form"' in html and "Request Entity Too Large" not in html


def test_error_summary_links_each_message_to_its_field(app, client, lti):
    token = lti.launch(user="5")
    resp = post_stage(client, token, data={"title": "Only a title", "sdg_targets": "99.9"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-summary" role="alert" tabindex="-1"' in html
    assert '<a href="#f_city">City / municipality is required to submit.</a>' in html
    assert '<a href="#f_sdgs_0">Choose at least one option for Sustainable Development Goals.</a>' in html
    assert re.search(r'<input type="text" id="f_city"[^>]*aria-invalid="true" aria-describedby="err_city"', html)
    assert re.search(r'<fieldset class="choices invalid" id="f_sdgs" aria-describedby="err_sdgs">\s*<legend>', html)
    assert 'value="Only a title"' in html
    assert '<a class="skip" href="#main">' in html


def test_grading_with_a_missing_criterion_shows_the_form_again_with_everything_kept(app, client, lti):
    post_stage(client, lti.launch(user="5"), data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    fac = lti.launch(user="3")
    partial = {k: v for k, v in ALL_STRONG.items() if k != "c_feasibility"}
    resp = review(client, fac, pid, "grade", comment="Almost there, see the indicators.", **partial)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Already changed" not in html
    assert '<a href="#c_feasibility_0">Choose a level for “Feasibility”.</a>' in html
    assert '<fieldset class="criterion invalid" id="crit_feasibility"' in html
    assert ">Almost there, see the indicators.</textarea>" in html
    assert re.search(r'name="c_sdg_linkage" value="strong"[^>]*checked', html)
    assert 'id="rubric-total">11</span> / 15' in html  # the running total of what is chosen so far
    assert status_of(app)["status"] == "submitted"


def test_review_offers_only_the_actions_the_marking_workflow_allows_now(app, client, lti):
    post_stage(client, lti.launch(user="5"), data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    fac = lti.launch(user="3")

    def buttons():
        return re.findall(r'<button name="action" value="([a-z_]+)"',
                          page(client, f"/app/projects/review/{pid}/project_plan", fac))

    assert buttons() == ["grade", "return_for_revision", "comment"]
    review(client, fac, pid, "grade", **ALL_STRONG)
    assert buttons() == ["grade", "mark_ready", "return_for_revision", "comment"]
    review(client, fac, pid, "mark_ready")
    assert buttons() == ["grade", "release", "back_to_marking", "return_for_revision", "comment"]
    review(client, fac, pid, "release")
    assert "release" not in buttons() and "mark_ready" not in buttons()


def test_review_has_previous_next_and_the_earlier_attempt_beside_the_current(app, client, lti):
    for user in ("5", "6", "7"):
        post_stage(client, lti.launch(user=user), data=dict(PLAN, title=f"Plan of {user}"))
    fac = lti.launch(user="3")
    ids = {u: q.project_of(db_of(app), SCOPE, u)["id"] for u in ("5", "6", "7")}
    # roster order by name: Asha Gurung (7), Lina Santoso (5), Teuea Tabai (6)
    middle = page(client, f"/app/projects/review/{ids['5']}/project_plan", fac)
    assert f'/review/{ids["7"]}/project_plan' in re.search(r'<a href="([^"]*)" id="prev"', middle).group(1)
    assert f'/review/{ids["6"]}/project_plan' in re.search(r'<a href="([^"]*)" id="next"', middle).group(1)
    assert "2 of 3" in middle
    review(client, fac, ids["5"], "return_for_revision", comment="More detail")
    post_stage(client, lti.launch(user="5"), data=dict(PLAN, title="Plan of 5", indicators="By gender"))
    html = page(client, f"/app/projects/review/{ids['5']}/project_plan", fac)
    assert "Attempt 2 (current)" in html and ">Attempt 1</th>" in html
    assert re.search(r'<tr class="changed"><th scope="row">Indicators of success.*?<td>By gender</td>'
                     r'<td>Share of accessible points</td>', html, re.S)


def test_each_graded_stage_has_its_own_rubric_starting_from_the_course_default(app, client, lti):
    fac = lti.launch(user="3")
    start = page(client, "/app/projects/rubric", fac, stage="project_report")
    assert 'value="HRBA principles applied"' in start and "uses the course default until you save" in start
    own = {"lt": fac, "action": "save", "title": "Report rubric", "c0_id": "", "c0_title": "Evidence of results",
           "c0_l0_title": "Thin", "c0_l0_points": "0", "c0_l1_title": "Solid", "c0_l1_points": "5"}
    assert client.post("/app/projects/rubric?stage=project_report", data=own).status_code == 303
    assert q.stage_rubric_data(db_of(app), SCOPE, "project_report")["title"] == "Report rubric"
    assert q.rubric_data(db_of(app), SCOPE) is None  # the course default is untouched
    learner = lti.launch(user="5", activity="project_report")
    post_stage(client, learner, "project_report", {"what_was_done": "Audit", "results": "Good",
                                                   "lessons_learned": "Many", "next_steps": "More",
                                                   "action_plan": "Scale up", "library_consent": "none"})
    post_stage(client, learner, data=PLAN)
    pid = q.project_of(db_of(app), SCOPE, "5")["id"]
    report = page(client, f"/app/projects/review/{pid}/project_report", fac)
    plan = page(client, f"/app/projects/review/{pid}/project_plan", fac)
    assert 'name="c_evidence_of_results"' in report and 'name="c_hrba_principles"' not in report
    assert 'name="c_hrba_principles"' in plan and 'name="c_evidence_of_results"' not in plan
    assert review(client, fac, pid, "grade", "project_report", c_evidence_of_results="solid").status_code == 303
    assert status_of(app, stage="project_report")["grade"] == 100
    client.post("/app/projects/rubric?stage=project_report", data={"lt": fac, "action": "use_default"})
    assert q.stage_rubric_data(db_of(app), SCOPE, "project_report") is None


def test_roster_sync_says_what_it_did_and_never_lists_staff(app, client, lti):
    fac = lti.launch(user="3")
    client.get("/app/landing", query_string={"lt": lti.launch(user="4")}, follow_redirects=True)
    db = db_of(app)
    q.upsert_member(db, SCOPE, "u999", "Gone Learner", "", "learner", from_launch=False)
    from lms_bridge.db import booking as bq
    bq.upsert_expert(db, SCOPE, "7", name="Asha Gurung", email="", timezone="Asia/Kathmandu")  # a learner made expert
    db.conn.commit()
    resp = client.post("/app/projects/roster/sync", data={"lt": fac}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "Roster synced from the LMS: 2 participants added, 1 left the course" in html
    assert "Gone Learner" not in html and "Eun-ji" not in html and "Fatima" not in html and "Asha" not in html
    choices = page(client, "/app/projects/", lti.launch(user="5"))
    assert 'value="coauthor"' not in choices
    assert re.findall(r'name="coauthor" value="([^"]+)"', choices) == ["6"]  # learners only: no staff, no expert


def test_roster_sync_written_one_member_per_transaction_counts_the_same(app, client, lti, monkeypatch):
    from lms_bridge.projects import roster

    monkeypatch.setattr(roster, "ROSTER_BATCH", 1)  # every member its own transaction, as a large course's batches
    fac = lti.launch(user="3")
    client.get("/app/landing", query_string={"lt": lti.launch(user="4")}, follow_redirects=True)
    db = db_of(app)
    q.upsert_member(db, SCOPE, "u999", "Gone Learner", "", "learner", from_launch=False)
    db.conn.commit()
    html = client.post("/app/projects/roster/sync", data={"lt": fac}, follow_redirects=True).get_data(as_text=True)
    assert "Roster synced from the LMS: 3 participants added, 1 left the course" in html
    roles = q.roster_roles(db, SCOPE)
    assert roles["4"] == "facilitator" and roles["5"] == roles["6"] == roles["7"] == "learner"


def test_dashboard_past_the_last_page_shows_the_last_page(app, client, lti):
    fac = lti.launch(user="3")
    post_stage(client, lti.launch(user="5"), data=PLAN)
    html = page(client, "/app/projects/dashboard", fac, page="2")
    assert "Page 2 of 1" not in html and 'data-user="5"' in html
    assert 'class="scroll" role="region"' in html


def test_deadlines_extensions_and_audit_show_names_local_times_and_say_saved(app, client, lti):
    fac = lti.launch(user="3")
    post_stage(client, lti.launch(user="5"), data=PLAN, action="save_draft")
    saved = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan",
                                                          "due": "2026-12-01T17:00"}, follow_redirects=True)
    assert "Deadline saved." in saved.get_data(as_text=True)
    granted = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "subject": "user:5",
                                                            "until": "2026-12-05T17:00"}, follow_redirects=True)
    html = granted.get_data(as_text=True)
    assert "Extension granted." in html
    listed = html[html.index('id="extensions"'):]
    assert "Lina Santoso · until Dec 5, 2026, 17:00 Europe/Stockholm" in listed and "user:5" not in listed
    refused = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "subject": "user:5",
                                                            "until": "2020-01-01T10:00"})
    assert refused.status_code == 400 and 'value="2020-01-01T10:00"' in refused.get_data(as_text=True)
    trail = page(client, "/app/projects/audit", fac)
    assert "<td>Fatima Facilitator</td><td>Granted an extension</td>" in trail
    assert "Lina Santoso" in trail and '"subject"' not in trail and "Europe/Stockholm" in trail


def test_home_cards_open_their_own_stage(app, client, lti):
    token = lti.launch(user="5", activity_rl="5")
    home = client.get("/app/landing", query_string={"lt": token}, follow_redirects=True).get_data(as_text=True)
    report = re.search(r'data-activity="project_report">\s*<a href="([^"]+)"', home).group(1).replace("&amp;", "&")
    assert client.get(report, follow_redirects=True).request.path == "/app/projects/stage/project_report"
    update = re.search(r'data-activity="progress_update">\s*<a href="([^"]+)"', home).group(1).replace("&amp;", "&")
    assert client.get(update, follow_redirects=True).request.path == "/app/projects/stage/progress_update"


def test_time_zone_is_chosen_from_a_select_of_zones(app, client, lti):
    token = lti.launch(user="5")
    html = page(client, "/app/projects/timezone", token, next="/app/projects/stage/project_plan")
    assert '<select id="tz" name="tz"' in html and "<option selected>Asia/Jakarta</option>" in html
    assert '<optgroup label="Pacific">' in html and "<option>Pacific/Tarawa</option>" in html
    done = client.post("/app/projects/timezone", data={"lt": token, "tz": "Pacific/Tarawa",
                                                        "next": "/app/projects/stage/project_plan"})
    assert done.status_code == 303
    assert done.headers["Location"].startswith("/app/projects/stage/project_plan?lt=")  # back, with its launch
    assert "Pacific/Tarawa" in stage_page(client, token)
    outside = client.post("/app/projects/timezone", data={"lt": token, "tz": "UTC", "next": "https://evil.example/"})
    assert "evil" not in outside.headers["Location"]


def test_audit_trail_pages_older_entries(app, client, lti):
    fac = lti.launch(user="3")
    db = db_of(app)
    for n in range(105):
        q.audit(db, SCOPE, "3", "set_deadline", stage="project_plan", due=f"2026-12-01T10:{n % 60:02d}:00+00:00")
    db.conn.commit()
    first = page(client, "/app/projects/audit", fac)
    assert first.count("<td>Set a deadline</td>") == 100
    older = re.search(r'href="([^"]+)" id="older"', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert second.count("<td>Set a deadline</td>") == 5 and 'id="older"' not in second


def test_a_submitted_progress_update_is_read_only_and_the_next_update_starts_empty(app, client, lti):
    token = lti.launch(user="5")
    update = {"progress": "Mapped 12 water points", "challenges": "Rain", "next_steps": "Consult DPOs"}
    post_stage(client, token, "progress_update", update)
    shown = stage_page(client, token, "progress_update")
    assert "<textarea" not in shown and "Mapped 12 water points" in shown and 'id="next-update"' in shown
    blank = stage_page(client, token, "progress_update", edit="1")
    assert '<textarea id="f_progress" name="progress" maxlength="4000"></textarea>' in blank
    assert post_stage(client, token, "progress_update", dict(update, progress="Second"),
                      action="save_draft").status_code == 303
    sub = status_of(app, stage="progress_update")
    assert (sub["status"], sub["attempt"]) == ("draft", 2)  # the next update is a new attempt
    assert "Second</textarea>" in stage_page(client, token, "progress_update")


def test_deadline_refusals_name_times_in_the_facilitators_zone(app, client, lti):
    fac = lti.launch(user="3")  # Europe/Stockholm
    bad = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": "2026-12-08T10:00",
                                                       "cutoff": "2026-12-01T10:00"}).get_data(as_text=True)
    assert ("The cut-off date (Dec 1, 2026, 10:00 Europe/Stockholm) is before the due date "
            "(Dec 8, 2026, 10:00 Europe/Stockholm).") in bad
    client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": "2026-12-08T10:00"})
    early = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "subject": "user:5",
                                                         "until": "2026-12-07T10:00"}).get_data(as_text=True)
    assert "The extension (Dec 7, 2026, 10:00 Europe/Stockholm) must be after the due date" in early
    assert "UTC" not in early.split('id="form-error"')[1].split("</p>")[0]
