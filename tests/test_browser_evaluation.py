"""Headless Chromium over the demo data: a facilitator reads the learning-gain and tracer reports (charts with
their tables, on a phone and without JavaScript); an alumnus saves a survey draft and submits it."""
from __future__ import annotations

from lms_bridge.sandbox import seed_demo

PHONE = {"width": 390, "height": 844}


def open_home(browser, app, user: str, **context):
    ctx = browser.new_context(timezone_id="Asia/Jakarta", **context)
    page = ctx.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/5")  # the tool's course home link
    page.wait_for_url("**/app/home**")
    return ctx, page


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_facilitator_reads_both_reports_with_charts_and_tables(live_server, browser):
    seed_demo(live_server)
    ctx, page = open_home(browser, live_server, "3", viewport=PHONE)
    page.click("[data-activity=learning_gain] a")
    page.wait_for_selector("#cohort")
    assert int(page.inner_text("#both")) > 10
    assert page.locator("svg.chart").count() >= 4
    assert page.locator("#distribution tbody tr").count() >= 2  # the table beside the chart
    assert page.locator("#modules tbody tr").count() >= 5
    assert page.get_attribute("svg.chart >> nth=0", "aria-hidden") == "true"
    assert no_sideways_scroll(page)
    assert len(page.content().encode()) < 24_000  # leaves room for the one (shared, cached) stylesheet
    page.click("#refresh")
    page.wait_for_selector("text=Grades read for")
    report_url = page.url

    page.click("nav.evnav >> text=Tracer studies")
    page.click("#rounds tbody tr a")
    page.wait_for_selector("#rate")
    assert int(page.inner_text("#answered")) > 3
    assert page.locator("section.question svg.chart").count() >= 5
    assert page.locator("#rate tbody tr").count() >= 2
    assert no_sideways_scroll(page)
    assert len(page.content().encode()) < 24_000  # leaves room for the one (shared, cached) stylesheet
    page.click("#q-obstacles li a >> nth=0")
    page.wait_for_selector("#tracer dl")
    assert page.locator("#plan dt").count() > 3  # plan -> report -> tracer side by side
    state = ctx.storage_state()  # the launch cookie, where the browser keeps one
    ctx.close()

    plain = browser.new_context(java_script_enabled=False, storage_state=state)
    no_js = plain.new_page()
    no_js.goto(report_url.split("&notice")[0])
    assert no_js.locator("svg.chart").count() >= 4 and int(no_js.inner_text("#both")) > 10
    plain.close()


def test_alumnus_saves_a_draft_then_submits_the_survey(live_server, browser):
    seed_demo(live_server)
    ctx, page = open_home(browser, live_server, "5", viewport=PHONE)
    page.click("[data-activity=tracer_survey] a")
    page.wait_for_selector("#indicators")
    assert len(page.inner_text("#indicators")) > len("Your indicators") + 5  # the plan's or a note there are none
    page.check("input[name=implementation][value=partly]")
    page.fill("textarea[name=obstacles]", "Budget politics after the election")
    page.click("button[value=draft]")
    page.wait_for_selector("text=Draft saved")
    assert page.input_value("textarea[name=obstacles]") == "Budget politics after the election"
    page.click("button[value=submit]")
    page.wait_for_selector("text=Some answers need attention")
    assert page.input_value("textarea[name=obstacles]") == "Budget politics after the election"
    page.check("input[name=adopted][value=regulation]")
    page.fill("textarea[name=adopted_detail]", "Child participation regulation")
    page.fill("input[name=people_reached]", "400")
    page.check("input[name=groups_reached][value=children_youth]")
    page.fill("textarea[name=partners]", "Local CSO coalition")
    page.check("input[name=hrba_applied][value=participation_inclusion]")
    page.fill("textarea[name=indicator_results]", "Hearings held in all four districts")
    page.check("input[name=network_contact][value=occasional]")
    page.fill("textarea[name=support_wanted]", "Peer exchange")
    page.click("button[value=submit]")
    page.wait_for_selector("#status")
    assert no_sideways_scroll(page)
    ctx.close()
