"""Headless Chromium: an expert publishes availability; a participant in Asia/Jakarta books, sees the time
in her zone, downloads the invite and cancels, all inside the sandbox LMS frame."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path


def open_activity(page, live_server, username: str):
    page.goto(live_server.live_url + "/sandbox/")
    page.locator(f'tr[data-user="{username}"] a[data-activity="consultations"]').click()
    return page.frame_locator('iframe[name="tool"]')


def test_expert_publishes_participant_books_downloads_invite_and_cancels(live_server, browser, tmp_path):
    day = date.today() + timedelta(days=5)
    expert_page = browser.new_page(timezone_id="Asia/Seoul")
    frame = open_activity(expert_page, live_server, "expert1")
    frame.locator("#become-expert").click()
    frame.locator("#bio").fill("Former treaty-body secretariat officer.")
    frame.locator("#topics").fill("UN human rights mechanisms, Data and indicators")
    frame.locator("#languages").fill("English, Korean")
    frame.locator("#profile-form button[type=submit]").click()
    frame.locator("#done", has_text="Profile saved").wait_for(timeout=15000)
    frame.locator("#av-tz").fill("Asia/Seoul")
    frame.locator("#valid_from").fill(str(day))
    frame.locator("#valid_until").fill(str(day + timedelta(days=1)))
    frame.locator("#weekly").fill("")
    frame.locator("#one_off").fill(f"{day} 10:00-12:00")
    frame.locator("#slot_minutes").fill("60")
    frame.locator("#buffer_minutes").fill("0")
    frame.locator("#publish").click()
    frame.locator("#done", has_text="2 new free times").wait_for(timeout=15000)

    page = browser.new_page(timezone_id="Asia/Jakarta", accept_downloads=True)
    frame = open_activity(page, live_server, "learner1")
    assert "Asia/Jakarta" in frame.locator("#tz-name").inner_text(timeout=15000)
    frame.locator("#experts a").first.click()
    slots = frame.locator("#book-form")
    assert "08:00–09:00" in slots.inner_text(timeout=15000)
    assert "Asia/Jakarta" in frame.locator("#tz-name").inner_text()
    frame.locator("input[name=slot_id]").first.check()
    frame.locator("#topic").select_option("Data and indicators")
    frame.locator("#question").fill("Which indicators fit a voluntary local review?")
    frame.locator("#book-button").click()
    frame.locator("#done", has_text="Booked").wait_for(timeout=15000)
    assert "08:00 (Asia/Jakarta, UTC+07:00)" in frame.locator("#when").inner_text()

    with page.expect_download() as info:
        frame.locator("#invite").click()
    invite = Path(tmp_path / "invite.ics")
    info.value.save_as(invite)
    text = invite.read_text()
    assert "METHOD:REQUEST" in text and "SEQUENCE:0" in text and "UID:booking-" in text

    frame.locator("#cancel-button").click()
    frame.locator("#status", has_text="cancelled").wait_for(timeout=15000)
    with page.expect_download() as info:
        frame.locator("#invite").click()
    info.value.save_as(tmp_path / "cancel.ics")
    text = (tmp_path / "cancel.ics").read_text()
    assert "METHOD:CANCEL" in text and "SEQUENCE:1" in text and "STATUS:CANCELLED" in text


def test_browser_zone_is_used_when_the_lms_sends_none(live_server, browser):
    from lms_bridge.db import connect

    page = browser.new_page(timezone_id="Asia/Kathmandu")
    frame = open_activity(page, live_server, "learner3")
    frame.locator("#tz-name").wait_for(timeout=15000)
    db = connect(live_server.config["DATABASE_URL"])
    with db.conn:
        db.execute("UPDATE launches SET timezone = NULL")
    db.close()
    frame.locator("form.filters button[type=submit]").click()  # any page of the tool, now without a zone
    frame.locator("#tz-name", has_text="Asia/Kathmandu").wait_for(timeout=15000)
    frame.locator("#tz-input").fill("Pacific/Kiritimati")
    frame.locator("form.zone button[type=submit]").click()
    frame.locator("#tz-name", has_text="Pacific/Kiritimati").wait_for(timeout=15000)
