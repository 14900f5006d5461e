"""Headless Chromium: the demo page launches a learner into the tool inside the LMS frame."""


def test_demo_page_launches_learner_into_home(live_server, browser):
    page = browser.new_page()
    page.goto(live_server.live_url + "/sandbox/")
    page.locator('tr[data-user="learner1"] a[data-activity="home"]').click()
    frame = page.frame_locator('iframe[name="tool"]')
    heading = frame.locator("#home-title")
    heading.wait_for(timeout=15000)
    assert heading.inner_text() == "Your course project"
    assert "Lina Santoso" in frame.locator(".who").inner_text()


def test_demo_page_launches_facilitator(live_server, browser):
    page = browser.new_page()
    page.goto(live_server.live_url + "/sandbox/")
    page.locator('tr[data-user="facilitator1"] a[data-activity="home"]').click()
    heading = page.frame_locator('iframe[name="tool"]').locator("#home-title")
    heading.wait_for(timeout=15000)
    assert heading.inner_text() == "Facilitator home"
