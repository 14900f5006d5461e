"""Moodle's default time zone ("99") or none: every page, staff pages included, falls back to the browser's
zone (sent once by JavaScript and kept with the launch); without JavaScript a named UTC with a chooser; a
deadline typed by a teacher means the teacher's own zone, named on the form."""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

from conftest import form_fields
from lms_bridge.db import connect
from lms_bridge.db import projects as pq

SCOPE = (1, "1", "2")


def launch_99(client, user="3", rl="1"):
    _, init = form_fields(client.get(f"/sandbox/launch/{user}/{rl}?tz=99").get_data(as_text=True))
    resp = client.post("/lti/login", data=init)
    loc = urlsplit(resp.headers["Location"])
    fields = form_fields(client.get(loc.path, query_string=loc.query).get_data(as_text=True))[1]
    resp = client.post("/lti/launch", data=fields)
    return parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]


def test_staff_page_without_a_zone_names_utc_offers_a_chooser_and_the_browser_detection(client):
    token = launch_99(client)
    for path in ("/app/projects/dashboard", "/app/projects/deadlines", "/app/sync/outbox", "/app/projects/audit"):
        html = client.get(path, query_string={"lt": token}).get_data(as_text=True)
        assert html.count("data-tz-detect=") == 1, path  # one detection per page, read by frame.js
        assert re.search(r"shown in (<strong[^>]*>)?UTC", html), path
        assert 'id="change-tz"' in html, path
    assert "Due (UTC)" in client.get("/app/projects/deadlines", query_string={"lt": token}).get_data(as_text=True)


def test_a_deadline_typed_by_a_teacher_means_the_zone_the_browser_gave(app, client):
    token = launch_99(client)
    resp = client.post("/app/projects/timezone", data={"lt": token, "tz": "Asia/Kathmandu",
                                                        "next": "/app/projects/deadlines"})
    assert resp.status_code == 303
    page = client.get("/app/projects/deadlines", query_string={"lt": token}).get_data(as_text=True)
    assert "data-tz-detect" not in page and "Due (Asia/Kathmandu)" in page
    resp = client.post("/app/projects/deadlines", data={"lt": token, "stage": "project_plan",
                                                        "due": "2026-12-01T17:00", "cutoff": ""})
    assert resp.status_code == 303
    row = pq.deadlines(connect(app.config["DATABASE_URL"]), SCOPE)["project_plan"]
    assert row["due_at"].startswith("2026-12-01T11:15")  # 17:00 in Kathmandu (UTC+05:45)


def test_a_launch_with_a_real_zone_gets_no_detection_form(client, lti):
    token = lti.launch(user="3")
    html = client.get("/app/projects/dashboard", query_string={"lt": token}).get_data(as_text=True)
    assert "data-tz-detect" not in html


def test_browser_zone_is_sent_once_and_kept_with_the_launch(live_server, browser):
    db = connect(live_server.config["DATABASE_URL"])
    context = browser.new_context(timezone_id="Pacific/Tarawa")
    page = context.new_page()
    page.goto(f"{live_server.live_url}/sandbox/launch/3/1?tz=99")
    page.wait_for_url("**/app/projects/**")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        zones = [r["timezone"] for r in db.query("SELECT timezone FROM launches WHERE user_id = '3'")]
        if zones == ["Pacific/Tarawa"]:
            break
        time.sleep(0.2)
    db.close()
    assert zones == ["Pacific/Tarawa"]
    page.locator("[data-tz-detect]").wait_for(state="detached")  # shown again in that zone, no detection left
    context.close()
