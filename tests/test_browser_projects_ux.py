"""Headless Chromium, as learners and facilitators click: submit with confirmation and a read-only result,
a return with its feedback on top, grading that keeps everything when a criterion is missing, and the
lti.frameResize message a parent page (Moodle) receives."""
from __future__ import annotations

from conftest import LtiActions
from lms_bridge.db import connect
from lms_bridge.db import projects as q

from test_browser_projects import fill_plan
from test_projects_flow import ALL_STRONG, PLAN, SCOPE


def open_as(browser, app, user: str, rl: str = "1", **context):
    ctx = browser.new_context(timezone_id="Asia/Jakarta", **context)
    page = ctx.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/{rl}")
    page.wait_for_url("**/app/projects/**")
    return ctx, page


def submission(app, user="5", stage="project_plan"):
    db = connect(app.config["DATABASE_URL"])
    project = q.project_of(db, SCOPE, user)
    return q.submission(db, project["id"], stage) if project else None


def test_learner_confirms_the_submission_and_then_sees_it_read_only(live_server, browser):
    ctx, page = open_as(browser, live_server, "5")
    fill_plan(page, "Share of accessible water points")
    page.click("#submit")
    page.wait_for_selector("#confirm-dialog[open]")
    assert "You cannot change it unless it is returned" in page.inner_text("#confirm-dialog")
    page.click("#confirm-dialog [data-confirm-no]")
    assert not page.is_visible("#confirm-dialog") and submission(live_server) is None  # nothing sent
    page.click("#submit")
    page.click("#confirm-yes")
    page.wait_for_selector("#saved")
    assert page.inner_text("#stage-status") == "Submitted"
    assert page.locator("#stage-form").count() == 0 and page.locator("textarea").count() == 0
    assert "Share of accessible water points" in page.inner_text("#answers")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('lms_bridge:draft:')).length") == 0
    page.reload()  # the browser's copy does not come back as if unsaved
    assert page.locator("textarea").count() == 0
    assert submission(live_server)["status"] == "submitted"
    ctx.close()

    # without JavaScript the server asks on a page of its own
    token = LtiActions(live_server.test_client()).launch(user="6")
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    page.goto(f"{live_server.live_url}/app/projects/stage/project_plan?lt={token}")
    fill_plan(page, "Indicators")
    page.click("#submit")
    page.wait_for_selector("#confirm")
    assert "Submit your project plan for review?" in page.inner_text("#confirm")
    assert submission(live_server, "6")["status"] == "draft"
    page.click("#confirm-submit")
    page.wait_for_selector("#saved")
    assert submission(live_server, "6")["status"] == "submitted"
    ctx.close()


def test_returned_plan_shows_the_reason_on_top_and_revise_opens_the_returned_text(live_server, browser):
    client = live_server.test_client()
    lti = LtiActions(client)
    client.post("/app/projects/stage/project_plan",
                data={"lt": lti.launch(user="5"), "action": "submit", "confirm": "1", **PLAN})
    pid = q.project_of(connect(live_server.config["DATABASE_URL"]), SCOPE, "5")["id"]
    client.post(f"/app/projects/review/{pid}/project_plan",
                data={"lt": lti.launch(user="3"), "action": "return_for_revision",
                      "comment": "Please disaggregate the indicators by gender."})

    ctx, page = open_as(browser, live_server, "5")
    top = page.locator("#feedback-top")
    assert "Returned for revision" in top.inner_text() and "disaggregate the indicators by gender" in top.inner_text()
    assert "Asia/Jakarta" in top.inner_text()
    assert top.bounding_box()["y"] < page.locator("#submission-status").bounding_box()["y"] < \
        page.locator("#submission").bounding_box()["y"]
    assert page.locator("textarea").count() == 0
    page.click("#revise")
    page.wait_for_selector("#stage-form")
    assert page.input_value("#f_indicators") == "Share of accessible points"  # the returned text
    page.fill("#f_indicators", "Share of accessible points, by gender")
    page.click("#submit")
    page.click("#confirm-yes")
    page.wait_for_selector("#saved")
    assert page.inner_text("#attempt") == "2" and page.locator("textarea").count() == 0
    ctx.close()


def test_grading_with_a_missing_criterion_keeps_the_comment_and_every_choice(live_server, browser):
    client = live_server.test_client()
    lti = LtiActions(client)
    client.post("/app/projects/stage/project_plan",
                data={"lt": lti.launch(user="5"), "action": "submit", "confirm": "1", **PLAN})
    ctx, fac = open_as(browser, live_server, "3")
    fac.click("#dashboard tr[data-user='5'] a")
    fac.wait_for_selector("#review-form")
    for name, level in ALL_STRONG.items():
        if name != "c_feasibility":
            fac.check(f"input[name={name}][value={level}]")
    assert fac.inner_text("#rubric-total") == "11"  # running total while marking
    fac.fill("#comment", "Strong on participation; see the indicators.")
    fac.click("#grade-btn")
    fac.wait_for_selector("#error-summary")
    assert fac.evaluate("document.activeElement.id") == "error-summary"
    assert "Choose a level for “Feasibility”." in fac.inner_text("#error-summary")
    assert fac.input_value("#comment") == "Strong on participation; see the indicators."
    assert fac.is_checked("input[name=c_sdg_linkage][value=strong]")
    assert fac.is_checked("input[name=c_indicators][value=developing]")
    assert fac.get_attribute("#crit_feasibility", "class") == "criterion invalid"
    fac.click("#error-summary a")
    assert fac.evaluate("document.activeElement.id") == "c_feasibility_0"
    fac.check("input[name=c_feasibility][value=strong]")
    assert fac.inner_text("#rubric-total") == "14"
    fac.click("#grade-btn")
    fac.wait_for_selector("#done")
    assert fac.inner_text("#grade") == "93.33" and fac.inner_text("#marking") == "In marking"
    assert [b.get_attribute("value") for b in fac.locator("#review-form button").all()] == [
        "grade", "mark_ready", "return_for_revision", "comment"]
    ctx.close()


def test_the_tool_tells_the_parent_frame_its_height_on_load_and_when_it_grows(live_server, browser):
    token = LtiActions(live_server.test_client()).launch(user="5")
    ctx = browser.new_context(viewport={"width": 1000, "height": 700})
    page = ctx.new_page()
    # the parent is a page of the sandbox LMS (an origin the tool's frame-ancestors allows)
    page.goto(f"{live_server.live_url}/sandbox/")
    page.evaluate("""src => { window.msgs = []; addEventListener('message', e => msgs.push(e.data));
        const f = document.createElement('iframe'); f.src = src; f.style.cssText = 'width:900px;height:200px';
        document.body.prepend(f); }""", f"{live_server.live_url}/app/projects/?lt={token}")
    def received(check, seconds=15):  # polled: the sandbox's CSP forbids wait_for_function's eval
        for _ in range(seconds * 10):
            msgs = page.evaluate("() => window.msgs")
            if check(msgs):
                return msgs
            page.wait_for_timeout(100)
        raise AssertionError(f"no such lti.frameResize message: {msgs}")

    first = received(lambda msgs: msgs)[0]
    assert first["subject"] == "lti.frameResize" and first["height"] > 200  # the page is taller than the frame
    frame = next(f for f in page.frames if "/app/projects/" in f.url)
    frame.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', "
                   "'<div style=\"height:1500px\">more</div>')")
    received(lambda msgs: any(m["height"] >= first["height"] + 1500 for m in msgs))
    ctx.close()


def test_time_zone_select_narrows_to_what_is_typed(live_server, browser):
    token = LtiActions(live_server.test_client()).launch(user="5")
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{live_server.live_url}/app/projects/timezone?lt={token}&next=/app/projects/")
    page.fill("#tz-search", "taraw")
    assert page.evaluate("[...document.querySelectorAll('#tz option')].filter(o => !o.hidden).map(o => o.value)") \
        == ["Pacific/Tarawa"]
    assert page.input_value("#tz") == "Pacific/Tarawa"
    page.click("text=Save time zone")
    page.wait_for_url("**/app/projects/?**")
    assert page.inner_text("#tz-line strong") == "Pacific/Tarawa"
    ctx.close()


def test_an_oversized_file_is_stopped_in_the_browser_before_it_is_sent(live_server, browser):
    ctx, page = open_as(browser, live_server, "5", "2")  # the report
    limit = live_server.config["MAX_UPLOAD_MB"] * 1024 * 1024
    assert page.get_attribute("#file_attachment", "accept") == ".docx,.odt,.pdf"
    page.fill("#f_what_was_done", "Audit of 40 water points")
    page.set_input_files("#file_attachment", files=[{"name": "big.pdf", "mimeType": "application/pdf",
                                                     "buffer": b"%PDF-" + b"0" * limit}])
    assert "larger than the 20 MB limit" in page.inner_text("#file_attachment_check")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.click("#save-draft")
    page.wait_for_timeout(500)
    assert sent == [] and submission(live_server, stage="project_report") is None
    page.set_input_files("#file_attachment", files=[])
    assert page.inner_text("#file_attachment_check") == ""
    page.click("#save-draft")
    page.wait_for_selector("#saved")
    ctx.close()
