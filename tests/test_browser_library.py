"""Headless Chromium: a participant agrees to share, a facilitator curates and publishes, and a learner of
another course of the same Moodle site finds the project by SDG and opens it."""
from __future__ import annotations

from tests.test_practices import graded_project


class Launcher:
    """`lti.launch`-like helper for the live server, used to seed states a browser test does not click through."""

    def __init__(self, app):
        from tests.conftest import LtiActions

        self.client = app.test_client()
        self.lti = LtiActions(self.client)


def open_library(browser, app, user: str, course: str | None = None, viewport=None):
    context = browser.new_context(timezone_id="Asia/Jakarta", viewport=viewport or {"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/5" + (f"?course={course}" if course else ""))
    page.wait_for_url("**/app/home**")
    page.click("li[data-activity=practices_library] a")
    page.wait_for_selector("#library-title")
    return context, page


def test_consent_curate_publish_and_find_from_another_course(live_server, browser, tmp_path):
    seed = Launcher(live_server)
    graded_project(live_server, seed.client, seed.lti, consent="none")

    ctx, learner = open_library(browser, live_server, "5")
    learner.click("text=Your project in the library")
    learner.check("input[name=consent][value=anonymous]")
    learner.click("text=Save my choice")
    learner.wait_for_selector(".flash.ok")

    fctx, fac = open_library(browser, live_server, "3")
    fac.click("text=Curate this course's projects")
    fac.click("text=Create entry")
    fac.wait_for_selector("#edit-title")
    fac.fill("#f-summary", "Ramps and budget lines made every water point accessible.")
    fac.check("input[name=themes][value=disability]")
    fac.click("text=Save and send to the participant")
    fac.wait_for_selector("[data-state=in_review]")

    learner.reload()
    learner.click("text=Approve for publication")
    learner.wait_for_selector("[data-state=approved]")

    fac.reload()
    fac.click("button[value=publish]")
    fac.wait_for_selector("[data-state=published]")

    octx, other = open_library(browser, live_server, "6", course="3", viewport={"width": 390, "height": 844})
    other.select_option("#f-sdg", "6")
    other.click("form.filters button[type=submit]")
    other.wait_for_selector("li[data-entry] h2 a")
    assert "1 project found" in other.inner_text("#result-count")
    other.click("li[data-entry] h2 a")
    other.wait_for_selector("#entry-title")
    body = other.inner_text("article.practice")
    assert "Ramps and budget lines" in body and "Shared anonymously" in body and "Lina" not in body
    assert other.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll on a phone
    other.screenshot(path=str(tmp_path / "library-entry-phone.png"), full_page=True)
    for c in (ctx, fctx, octx):
        c.close()
