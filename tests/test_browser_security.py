"""Headless Chromium: what a person on a shared computer and an attacker's page would see (issue 11)."""
from __future__ import annotations


def launch(context, app, user: str, rl: str = "1"):
    page = context.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/{rl}")
    page.wait_for_url("**/app/projects/**")
    return page


def test_browser_drafts_are_kept_per_user_on_a_shared_computer(live_server, browser):
    context = browser.new_context(timezone_id="Asia/Jakarta")
    lina = launch(context, live_server, "5")
    lina.fill("#f_title", "Lina's unsaved title")
    lina.fill("#f_problem", "Lina's private notes")
    # A draft kept under the old per-course key (before drafts were per user) is dropped on load.
    lina.evaluate("localStorage.setItem('lms_bridge:draft:1:99:project_plan', JSON.stringify({title: 'old'}))")
    lina.close()

    teuea = launch(context, live_server, "6")  # the next learner, same browser
    assert teuea.input_value("#f_title") == "" and teuea.input_value("#f_problem") == ""
    assert teuea.evaluate("localStorage.getItem('lms_bridge:draft:1:99:project_plan')") is None
    teuea.close()

    again = launch(context, live_server, "5")  # Lina comes back: her draft is still there
    assert again.input_value("#f_title") == "Lina's unsaved title"
    context.close()
