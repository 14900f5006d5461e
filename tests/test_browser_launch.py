"""Headless Chromium: the demo page launches a learner into the tool inside the LMS frame."""


def test_demo_page_launches_learner_into_home(live_server, browser):
    page = browser.new_page()
    page.goto(live_server.live_url + "/sandbox/")
    page.locator('tr[data-user="learner1"] a[data-activity="home"]').click()
    frame = page.frame_locator('iframe[name="tool"]')
    heading = frame.locator("#home-title")
    heading.wait_for(timeout=15000)
    assert heading.inner_text() == "Your course project"
    # inside the LMS frame: no header of its own (Moodle shows the user), a compact course · role line
    assert frame.locator(".context-line").inner_text().endswith("· Learner")
    assert frame.locator("header.bar").count() == 0


def test_demo_page_launches_facilitator(live_server, browser):
    page = browser.new_page()
    page.goto(live_server.live_url + "/sandbox/")
    page.locator('tr[data-user="facilitator1"] a[data-activity="home"]').click()
    heading = page.frame_locator('iframe[name="tool"]').locator("#home-title")
    heading.wait_for(timeout=15000)
    assert heading.inner_text() == "Facilitator home"
