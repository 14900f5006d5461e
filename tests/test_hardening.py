"""Issue 11 items 9, 10: the time-zone forms redirect only inside the tool; an e-mail or name claim with a
line break is cleaned when the launch is stored, so invites and exports never break."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from icalendar import Calendar

from lms_bridge.db import connect
from lms_bridge.sandbox import platform as sp
from test_launch import C, claims_for, start_login


@pytest.mark.parametrize("form", ["/consultations/timezone", "/app/projects/timezone"])
@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "/consultations/\r\nSet-Cookie: x=1",
                                    "/sandbox/", "/app/../sandbox/", " //evil.example"])
def test_time_zone_forms_never_redirect_outside_the_tool(client, lti, form, target):
    token = lti.launch(user="5", activity="consultations")
    resp = client.post(form, data={"lt": token, "tz": "Asia/Jakarta", "next": target})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location.startswith(("/consultations/", "/app/projects/")) and "evil" not in location
    assert "sandbox" not in location


def test_time_zone_form_returns_to_the_page_it_came_from(client, lti):
    token = lti.launch(user="5", activity="consultations")
    target = f"/consultations/experts/1?lt={token}"
    resp = client.post("/consultations/timezone", data={"lt": token, "tz": "Asia/Jakarta", "next": target})
    assert resp.headers["Location"] == target


def launch_as(app, client, **changes):
    state, nonce = start_login(client)
    token = sp.sign(app.config["DATA_DIR"], claims_for(app, nonce, **changes))
    resp = client.post("/lti/launch", data={"id_token": token, "state": state})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return resp.headers["Location"].split("lt=")[1]


def test_email_and_name_claims_with_line_breaks_are_cleaned_and_invites_work(app, client, lti):
    fac = lti.launch(user="3", activity="consultations")
    client.post("/consultations/settings", data={"lt": fac, "staff_experts": "1"})
    expert = lti.launch(user="4", activity="consultations")
    client.post("/consultations/expert", data={"lt": expert})
    day = date.today() + timedelta(days=5)
    assert client.post("/consultations/availability", data={
        "lt": expert, "tz": "Asia/Seoul", "valid_from": str(day), "valid_until": str(day), "weekly": "",
        "one_off": f"{day} 10:00-11:00", "exceptions": "", "slot_minutes": "60", "buffer_minutes": "0",
        "capacity": "1"}).status_code == 303
    learner = launch_as(app, client, email="lina@example.org\r\nATTENDEE:mailto:spy@evil.example",
                        name="Lina\r\nX-INJECTED:1 Santoso")
    db = connect(app.config["DATABASE_URL"])
    row = db.execute("SELECT user_email, user_name FROM launches WHERE user_id = '5'").fetchone()
    assert row[0] == "" and row[1] == "Lina X-INJECTED:1 Santoso"
    slot = db.execute("SELECT id FROM booking_slots").fetchone()[0]
    resp = client.post("/consultations/book", data={"lt": learner, "slot_id": slot, "topic": "t", "question": "q"})
    assert resp.status_code == 303
    booking = db.execute("SELECT id FROM bookings").fetchone()[0]
    ics = client.get(f"/consultations/bookings/{booking}/invite.ics", query_string={"lt": learner})
    assert ics.status_code == 200
    assert b"spy@evil.example" not in ics.data and b"\nX-INJECTED" not in ics.data
    attendee = Calendar.from_ical(ics.data).walk("VEVENT")[0]["ATTENDEE"]
    assert str(attendee) == "mailto:participant-5@localhost"


@pytest.mark.parametrize("email,stored", [(" lina@example.org ", "lina@example.org"),
                                          ("lina@example.org", "lina@example.org"),
                                          ("lina@example.org\nBCC:x@y.org", ""), ("not an address", "")])
def test_plain_email_claims_are_kept_and_others_dropped(app, client, email, stored):
    launch_as(app, client, email=email)
    db = connect(app.config["DATABASE_URL"])
    assert db.execute("SELECT user_email FROM launches").fetchone()[0] == stored
