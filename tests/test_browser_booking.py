"""Headless Chromium: an expert publishes availability as rows of selects; a participant in Asia/Jakarta on a
390x844 phone books through the day picker, sees start and end in her zone, downloads the invite and cancels
after confirming with a reason the expert then reads; an administrator reaches the outbox from home."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

PHONE = {"width": 390, "height": 844}


def open_activity(page, live_server, username: str, activity: str = "consultations"):
    page.goto(live_server.live_url + "/sandbox/")
    page.locator(f'tr[data-user="{username}"] a[data-activity="{activity}"]').click()
    return page.frame_locator('iframe[name="tool"]')


def allow_staff_experts(browser, live_server):
    page = browser.new_page(timezone_id="Europe/Stockholm")
    frame = open_activity(page, live_server, "facilitator1")
    frame.locator("#overview-link").click()
    frame.locator("#staff_experts").check()
    frame.locator("#limits-form button[type=submit]").click()
    frame.locator("#done").wait_for(timeout=15000)
    page.close()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_expert_publishes_rows_participant_books_on_a_phone_and_cancels_with_a_reason(live_server, browser, tmp_path):
    day = date.today() + timedelta(days=5)
    allow_staff_experts(browser, live_server)
    expert_page = browser.new_page(timezone_id="Asia/Seoul")
    frame = open_activity(expert_page, live_server, "expert1")
    frame.locator("#become-expert").click()
    frame.locator("#bio").fill("Former treaty-body secretariat officer.")
    frame.locator("#topics").fill("UN human rights mechanisms, Data and indicators")
    frame.locator("#languages").fill("English, Korean")
    frame.locator("#profile-form button[type=submit]").click()
    frame.locator("#done", has_text="Profile saved").wait_for(timeout=15000)
    frame.locator("#av-tz").select_option("Asia/Seoul")
    for n in range(4):  # clear the suggested weekly hours
        frame.locator("select[name=weekly_day]").nth(n).select_option("")
        frame.locator("select[name=weekly_start]").nth(n).select_option("")
        frame.locator("select[name=weekly_end]").nth(n).select_option("")
    frame.locator("input[name=oneoff_date]").first.fill(str(day))
    frame.locator("select[name=oneoff_start]").first.select_option("10:00")
    frame.locator("select[name=oneoff_end]").first.select_option("09:00")  # a slip: end before start
    frame.locator("#slot_minutes").select_option("60")
    frame.locator("#buffer_minutes").select_option("0")
    frame.locator("#publish").click()
    frame.locator("#oneoff-0-error").wait_for(timeout=15000)
    assert frame.locator("input[name=oneoff_date]").first.input_value() == str(day)  # kept as typed
    assert frame.locator("#slot_minutes").input_value() == "60"
    frame.locator("select[name=oneoff_end]").first.select_option("12:00")
    frame.locator("#publish").click()
    frame.locator("#done", has_text="2 new free times").wait_for(timeout=15000)

    page = browser.new_page(viewport=PHONE, timezone_id="Asia/Jakarta", accept_downloads=True)
    frame = open_activity(page, live_server, "learner1")
    assert "Asia/Jakarta" in frame.locator("#tz-name").inner_text(timeout=15000)
    frame.locator("#experts a").first.click()
    frame.locator(f'#month a[data-day="{day}"]').click()  # the day in the month view, then its times
    page.frame(name="tool").wait_for_url(f"**day={day}**")  # the chosen day's page, not the one before it
    times = frame.locator("#times")
    assert "08:00–09:00" in times.inner_text(timeout=15000) and "09:00–10:00" in times.inner_text()
    frame.locator("#times label.slot").first.click()
    frame.locator("#topic").select_option("Data and indicators")
    frame.locator("#question").fill("Which indicators fit a voluntary local review?")
    frame.locator("#book-button").click()
    frame.locator("#done", has_text="Booked").wait_for(timeout=15000)
    assert "08:00 (Asia/Jakarta, UTC+07:00)" in frame.locator("#when").inner_text()
    assert "09:00 (Asia/Jakarta, UTC+07:00)" in frame.locator("#ends").inner_text()
    tool = page.frame(name="tool")
    assert tool.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    with page.expect_download() as info:
        frame.locator("#invite").click()
    invite = Path(tmp_path / "invite.ics")
    info.value.save_as(invite)
    text = invite.read_text()
    assert "METHOD:REQUEST" in text and "SEQUENCE:0" in text and "UID:booking-" in text

    frame.locator("#cancel-button").click()  # asks first
    frame.locator("#confirm-title").wait_for(timeout=15000)
    frame.locator("#keep").click()  # changing one's mind keeps the booking
    frame.locator("#status", has_text="Booked").wait_for(timeout=15000)
    frame.locator("#cancel-button").click()
    frame.locator("#reason").fill("My field visit moved to that day.")
    frame.locator("#confirm-cancel").click()
    frame.locator("#status", has_text="Cancelled").wait_for(timeout=15000)
    with page.expect_download() as info:
        frame.locator("#invite").click()
    info.value.save_as(tmp_path / "cancel.ics")
    text = (tmp_path / "cancel.ics").read_text()
    assert "METHOD:CANCEL" in text and "SEQUENCE:1" in text and "STATUS:CANCELLED" in text
    assert "My field visit moved to that day." in text

    frame = open_activity(expert_page, live_server, "expert1")
    assert "My field visit moved to that day." in frame.locator(".notices").inner_text(timeout=15000)


def test_browser_zone_is_used_when_the_lms_sends_none(live_server, browser):
    from lms_bridge.db import connect

    page = browser.new_page(timezone_id="Asia/Kathmandu")
    frame = open_activity(page, live_server, "learner3")
    frame.locator("#tz-name").wait_for(timeout=15000)
    db = connect(live_server.config["DATABASE_URL"])
    with db.atomic():
        db.execute("UPDATE launches SET timezone = NULL")
    db.close()
    frame.locator("form.filters button[type=submit]").click()  # any page of the tool, now without a zone
    frame.locator("#tz-name", has_text="Asia/Kathmandu").wait_for(timeout=15000)
    # the page sent the browser's zone and shows itself again: wait for that page before opening the form
    frame.locator("form.zone[data-tz-known='yes']").wait_for(timeout=15000)
    frame.locator("form.zone summary").click()
    frame.locator("#tz-input").select_option("Pacific/Kiritimati")
    frame.locator("form.zone button[type=submit]").click()
    frame.locator("#tz-name", has_text="Pacific/Kiritimati").wait_for(timeout=15000)


def test_admin_reaches_the_outbox_from_home(live_server, browser):
    page = browser.new_page(timezone_id="Europe/Stockholm")
    frame = open_activity(page, live_server, "admin", activity="home")
    assert frame.locator("#home-title").inner_text(timeout=15000) == "Administration"
    assert frame.locator("#h-failed").inner_text() == "0"
    frame.locator("#outbox-link").click()
    frame.locator("#outbox-title").wait_for(timeout=15000)
    frame = open_activity(page, live_server, "admin", activity="home")
    frame.locator("#platforms-link").click()
    assert "sandbox-client" in frame.locator("#platform").inner_text(timeout=15000)
