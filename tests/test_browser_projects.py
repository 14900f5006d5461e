"""Headless Chromium: a learner submits a plan, a facilitator returns it, the learner resubmits, the
facilitator grades with the rubric and releases, and the sandbox gradebook shows the score."""
from __future__ import annotations

import pytest

from lms_bridge.db import connect
from lms_bridge.db import sandbox as sq

CRITERIA = ("hrba_principles", "sdg_linkage", "participation", "feasibility", "indicators")


def launch(browser, app, user: str, rl: str = "1"):
    context = browser.new_context(timezone_id="Asia/Jakarta")
    page = context.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/{rl}")
    page.wait_for_url("**/app/projects/**")
    return context, page


def fill_plan(page, indicators: str) -> None:
    page.fill("#f_title", "Accessible water points")
    page.fill("#f_city", "Jakarta")
    page.select_option("#f_country", "ID")
    for name in ("problem", "affected_groups", "stakeholders", "activities", "risks"):
        page.fill(f"#f_{name}", f"Our {name.replace('_', ' ')}")
    page.fill("#f_indicators", indicators)
    page.check("input[name=hrba_principles][value=participation_inclusion]")
    page.check("input[name=sdgs][value='6']")
    page.fill("#f_sdg_targets", "6.1")


def test_plan_return_resubmit_grade_release_reaches_gradebook(live_server, browser):
    from lms_bridge.sync.worker import deliver_due

    ctx, learner = launch(browser, live_server, "5")
    learner.fill("#f_title", "Typed before the launch expired")
    again = ctx.new_page()
    again.goto(f"{live_server.live_url}/sandbox/launch/5/1")
    again.wait_for_url("**/app/projects/stage/project_plan**")
    assert again.input_value("#f_title") == "Typed before the launch expired"  # kept in localStorage
    again.close()

    fill_plan(learner, "Share of accessible water points")
    learner.click("#submit")
    learner.click("#confirm-yes")
    learner.wait_for_selector("#saved")
    assert learner.inner_text("#stage-status") == "Submitted"
    assert "Asia/Jakarta" in learner.inner_text("#tz-line")

    fctx, fac = launch(browser, live_server, "3")
    fac.click("#dashboard tr[data-user='5'] a")
    fac.fill("#comment", "Please disaggregate the indicators by gender.")
    fac.click("#return")
    fac.wait_for_selector("text=Returned for revision")

    lctx, learner2 = launch(browser, live_server, "5")
    assert "Please disaggregate the indicators by gender." in learner2.inner_text("#feedback")
    learner2.click("#revise")
    fill_plan(learner2, "Share of accessible points, by gender")
    learner2.click("#submit")
    learner2.click("#confirm-yes")
    learner2.wait_for_selector("#saved")
    assert learner2.inner_text("#attempt") == "2"

    fac.reload()
    for c in CRITERIA:
        fac.check(f"input[name=c_{c}][value=strong]")
    fac.fill("#comment", "A strong, participatory plan.")
    fac.click("#grade-btn")
    fac.wait_for_selector("#marking")
    assert fac.inner_text("#grade") == "100" and fac.inner_text("#marking") == "In marking"
    fac.click("#ready")
    fac.wait_for_selector("text=Ready for release")
    fac.click("#release")
    fac.wait_for_selector("#marking:has-text('Released')")

    stats = deliver_due(live_server)
    assert stats.handled >= 1
    db = connect(live_server.config["DATABASE_URL"])
    own = sq.link_lineitems(db, "1")[0]  # the plan activity's own column, named in its launches
    assert sq.get_grade(db, own["id"], "5")["score"] == pytest.approx(100)
    learner2.reload()
    assert "A strong, participatory plan." in learner2.inner_text("#feedback")
    for c in (ctx, fctx, lctx):
        c.close()


def test_facilitator_adds_and_removes_a_rubric_criterion(live_server, browser):
    ctx, fac = launch(browser, live_server, "3")
    fac.click("text=Rubrics")
    fac.wait_for_selector("#rubric-form")
    new = "fieldset[data-criterion=new]"
    fac.fill(f"{new} input[name$=_title] >> nth=0", "Local ownership")
    fac.fill(f"{new} input[name$=_l0_title]", "Weak")
    fac.fill(f"{new} input[name$=_l0_points]", "0")
    fac.fill(f"{new} input[name$=_l1_title]", "Strong")
    fac.fill(f"{new} input[name$=_l1_points]", "3")
    fac.click("text=Add a criterion")
    fac.wait_for_selector(f"{new} >> nth=1")
    assert fac.input_value(f"{new} input[name$=_title] >> nth=0") == "Local ownership"  # kept, not saved yet
    fac.click("text=Save rubric")
    fac.wait_for_selector("#rubric-saved")
    assert fac.locator("fieldset[data-criterion=local_ownership]").count() == 1
    fac.check("fieldset[data-criterion=hrba_principles] input[type=checkbox]")
    fac.fill("fieldset[data-criterion=sdg_linkage] input[name$=_l0_points]", "lots")
    fac.click("text=Save rubric")
    fac.wait_for_selector("#rubric-error")
    assert "points must be a number" in fac.inner_text("#rubric-error")
    assert fac.input_value("fieldset[data-criterion=sdg_linkage] input[name$=_l0_points]") == "lots"
    assert fac.is_checked("fieldset[data-criterion=hrba_principles] input[type=checkbox]")
    fac.fill("fieldset[data-criterion=sdg_linkage] input[name$=_l0_points]", "0")
    fac.click("text=Save rubric")
    fac.wait_for_selector("#rubric-saved")
    assert fac.locator("fieldset[data-criterion=hrba_principles]").count() == 0
    ctx.close()
