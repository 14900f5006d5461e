"""Booking as people use it: the day picker without JavaScript, confirmations, availability rows that keep
what was typed, course-controlled expert listing, status words, the admin home, and the living demo."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from lms_bridge.db import booking as bq
from lms_bridge.db import lti as lti_q
from lms_bridge.db import outbox

EXPERT, FACILITATOR, LINA, TEUEA, ADMIN = "4", "3", "5", "6", "2"


@pytest.fixture
def scope(db):
    return (lti_q.list_platforms(db)[0]["id"], "1", "2")


def launch(lti, user, activity="consultations"):
    return lti.launch(user=user, activity=activity)


def html(resp) -> str:
    return resp.get_data(as_text=True)


def allow_staff_experts(client, lti, allowed=True):
    data = {"lt": launch(lti, FACILITATOR), "cancel_deadline_hours": "24", "min_notice_minutes": "0"}
    if allowed:
        data["staff_experts"] = "1"
    assert client.post("/consultations/settings", data=data).status_code == 303


def expert_with_times(client, lti, *days, start="10:00", end="12:00"):
    """Eun-ji (Asia/Seoul) with one-off hours on each of `days` (offsets from today), published as rows."""
    allow_staff_experts(client, lti)
    token = launch(lti, EXPERT)
    assert client.post("/consultations/expert", data={"lt": token}).status_code == 303
    data = {"lt": token, "tz": "Asia/Seoul", "valid_from": "", "valid_until": "", "slot_minutes": "60",
            "buffer_minutes": "0", "capacity": "1", "oneoff_date": [str(date.today() + timedelta(days=d)) for d in days],
            "oneoff_start": [start] * len(days), "oneoff_end": [end] * len(days)}
    resp = client.post("/consultations/availability", data=data)
    assert resp.status_code == 303, html(resp)[:2000]
    return token


def expert_id(db, scope, user=EXPERT):
    return bq.expert_by_user(db, scope, user)["id"]


def book(client, token, slot_id, **extra):
    data = {"lt": token, "slot_id": slot_id, "topic": "Data and indicators", "question": "Which indicators?"}
    data.update(extra)
    return client.post("/consultations/book", data=data)


# --- the day picker --------------------------------------------------------------------------------

def test_day_picker_links_only_days_with_free_times_and_day_param_chooses_the_times(client, lti, db, scope):
    expert_with_times(client, lti, 3, 4)
    first, second = date.today() + timedelta(days=3), date.today() + timedelta(days=4)
    lina = launch(lti, LINA)
    page = html(client.get(f"/consultations/experts/{expert_id(db, scope)}", query_string={"lt": lina}))
    linked = set(re.findall(r'data-day="([\d-]+)"', page))
    assert linked == {str(first), str(second)}
    assert f'data-day="{first}" aria-label=' in page and 'aria-current="date"' in page
    assert page.count('name="slot_id"') == 2  # only the chosen (first) day's times: 08:00 and 09:00 Jakarta
    chosen = html(client.get(f"/consultations/experts/{expert_id(db, scope)}",
                             query_string={"lt": lina, "day": str(second)}))
    slot_ids = [s["id"] for s in bq.expert_slots(db, expert_id(db, scope))]
    assert f'name="slot_id" value="{slot_ids[2]}"' in chosen and f'name="slot_id" value="{slot_ids[0]}"' not in chosen
    assert "08:00–09:00" in chosen and "Asia/Jakarta, UTC+07:00" in chosen
    # works without JavaScript: besides frame.js (lti.frameResize) only the base page's address-bar script
    own_scripts = chosen.replace('<script src="/static/frame.js" defer></script>', "")
    assert len(chosen.encode()) < 30_000 and own_scripts.count("<script") == 1


def test_day_picker_ignores_nonsense_day_and_month_and_pages_months(client, lti, db, scope):
    expert_with_times(client, lti, 3, 40)
    lina = launch(lti, LINA)
    url = f"/consultations/experts/{expert_id(db, scope)}"
    for query in ({"day": "2026-02-30"}, {"day": "x" * 500}, {"month": "9999-99"}, {"day": "9999-12-31"}):
        assert client.get(url, query_string={"lt": lina, **query}).status_code == 200
    later = date.today() + timedelta(days=40)
    page = html(client.get(url, query_string={"lt": lina, "month": later.strftime("%Y-%m")}))
    assert f'data-day="{later}"' in page and 'rel="prev"' in page


def test_missing_question_shows_the_picker_again_with_the_choice_kept(client, lti, db, scope):
    expert_with_times(client, lti, 3)
    slot = bq.expert_slots(db, expert_id(db, scope))[0]["id"]
    resp = book(client, launch(lti, LINA), slot, question="", project="Bogor VLR")
    page = html(resp)
    assert resp.status_code == 400 and 'id="question-error"' in page and 'aria-invalid="true"' in page
    assert 'value="Bogor VLR"' in page and '<option selected>Data and indicators</option>' in page
    assert bq.get_slot(db, slot)["booked"] == 0


# --- the booking page and cancelling ---------------------------------------------------------------

def test_booking_page_names_the_zone_for_start_and_end_and_uses_status_words(client, lti, db, scope):
    expert_with_times(client, lti, 3)
    slot = bq.expert_slots(db, expert_id(db, scope))[0]["id"]
    lina = launch(lti, LINA)
    location = book(client, lina, slot).headers["Location"]
    page = html(client.get(location))
    when = re.search(r'id="when">([^<]+)<', page).group(1)
    ends = re.search(r'id="ends">([^<]+)<', page).group(1)
    assert when.endswith("08:00 (Asia/Jakarta, UTC+07:00)") and ends.endswith("09:00 (Asia/Jakarta, UTC+07:00)")
    assert '<span class="status" id="status">Booked</span>' in page
    listing = html(client.get("/consultations/", query_string={"lt": lina}))
    assert '<span class="status">Booked</span>' in listing and ">booked<" not in listing


def test_cancel_asks_first_and_passes_the_reason_to_the_expert(client, lti, db, scope):
    token = expert_with_times(client, lti, 3)
    slot = bq.expert_slots(db, expert_id(db, scope))[0]["id"]
    lina = launch(lti, LINA)
    booking_id = int(re.search(r"/bookings/(\d+)", book(client, lina, slot).headers["Location"]).group(1))
    page = html(client.get(f"/consultations/bookings/{booking_id}", query_string={"lt": lina}))
    assert f'href="/consultations/bookings/{booking_id}/cancel?lt=' in page  # a link to a question, not a POST
    confirm = client.get(f"/consultations/bookings/{booking_id}/cancel", query_string={"lt": lina})
    assert confirm.status_code == 200 and 'id="confirm-cancel"' in html(confirm) and 'name="reason"' in html(confirm)
    assert bq.get_booking(db, scope, booking_id)["status"] == "booked"  # asking changes nothing

    done = client.post(f"/consultations/bookings/{booking_id}/cancel",
                       data={"lt": lina, "reason": "My field visit\nmoved to that day."})
    assert done.status_code == 303
    assert bq.get_booking(db, scope, booking_id)["cancel_reason"] == "My field visit moved to that day."
    notices = [n["text"] for n in bq.notices(db, scope, EXPERT)]
    assert "who wrote: My field visit moved to that day." in notices[0]
    event = next(iter(Calendar.from_ical(client.get(f"/consultations/bookings/{booking_id}/invite.ics",
                                                    query_string={"lt": token}).data).walk("VEVENT")))
    assert "Reason for cancelling: My field visit moved to that day." in str(event["DESCRIPTION"])
    after = html(client.get(f"/consultations/bookings/{booking_id}", query_string={"lt": token}))
    assert '<span class="status" id="status">Cancelled</span>' in after and 'id="cancel-reason"' in after
    # a cancelled booking has nothing to confirm: the question page sends back to the booking
    again = client.get(f"/consultations/bookings/{booking_id}/cancel", query_string={"lt": lina})
    assert again.status_code == 303


def test_other_people_cannot_open_the_cancel_question(client, lti, db, scope):
    expert_with_times(client, lti, 3)
    slot = bq.expert_slots(db, expert_id(db, scope))[0]["id"]
    booking_id = int(re.search(r"/bookings/(\d+)", book(client, launch(lti, LINA), slot).headers["Location"]).group(1))
    assert client.get(f"/consultations/bookings/{booking_id}/cancel",
                      query_string={"lt": launch(lti, TEUEA)}).status_code == 404


# --- availability rows -----------------------------------------------------------------------------

def test_availability_error_is_shown_beside_its_row_and_everything_typed_is_kept(client, lti, db, scope):
    allow_staff_experts(client, lti)
    token = launch(lti, EXPERT)
    client.post("/consultations/expert", data={"lt": token})
    start = date.today() + timedelta(days=1)
    resp = client.post("/consultations/availability", data={
        "lt": token, "tz": "Asia/Seoul", "valid_from": str(start), "valid_until": str(start + timedelta(days=20)),
        "weekly_day": ["tue", "thu", ""], "weekly_start": ["10:00", "16:00", ""], "weekly_end": ["12:00", "15:00", ""],
        "oneoff_date": [""], "oneoff_start": [""], "oneoff_end": [""], "day_off": [str(start + timedelta(days=7))],
        "slot_minutes": "45", "buffer_minutes": "15", "capacity": "2"})
    page = html(resp)
    assert resp.status_code == 400
    assert 'id="weekly-1-error"' in page and "must be after the start (16:00)" in page
    assert 'id="weekly-0-error"' not in page and 'href="#weekly-1"' in page
    assert '<option value="thu" selected>' in page and "<option selected>16:00" in page
    assert f'value="{start + timedelta(days=7)}"' in page and 'name="capacity" value="2"' in page
    assert 'value="45" selected' in page and "Error" not in page.split("<h1>")[0]  # the same page, not an error page
    assert bq.expert_slots(db, expert_id(db, scope)) == []


def test_availability_rows_publish_weekly_hours_and_come_back_as_rows(client, lti, db, scope):
    allow_staff_experts(client, lti)
    token = launch(lti, EXPERT)
    client.post("/consultations/expert", data={"lt": token})
    start = date.today() + timedelta(days=1)
    resp = client.post("/consultations/availability", data={
        "lt": token, "tz": "Asia/Seoul", "valid_from": str(start), "valid_until": str(start + timedelta(days=13)),
        "weekly_day": ["mon", ""], "weekly_start": ["09:00", ""], "weekly_end": ["10:00", ""],
        "slot_minutes": "60", "buffer_minutes": "0", "capacity": "1"})
    assert resp.status_code == 303 and "created=2" in resp.headers["Location"]
    page = html(client.get("/consultations/profile", query_string={"lt": token}))
    assert '<option value="mon" selected>' in page and "<option selected>09:00" in page


def test_availability_stored_as_text_lines_still_shows_as_rows(client, lti, db, scope):
    allow_staff_experts(client, lti)
    token = launch(lti, EXPERT)
    client.post("/consultations/expert", data={"lt": token})
    bq.save_availability(db, expert_id(db, scope), {"tz": "Asia/Seoul", "valid_from": "2026-01-05",
                                                    "valid_until": "2026-02-05", "weekly": "Wed 14:00-17:00",
                                                    "one_off": "", "exceptions": "2026-01-14", "slot_minutes": "30",
                                                    "buffer_minutes": "0", "capacity": "1"})
    db.conn.commit()
    page = html(client.get("/consultations/profile", query_string={"lt": token}))
    assert '<option value="wed" selected>' in page and "<option selected>17:00" in page
    assert 'value="2026-01-14"' in page


# --- who may be an expert --------------------------------------------------------------------------

def test_staff_are_offered_i_am_an_expert_only_when_the_course_allows_it(client, lti, db, scope):
    token = launch(lti, EXPERT)
    page = html(client.get("/consultations/", query_string={"lt": token}))
    assert 'id="become-expert"' not in page and 'id="experts-by-invitation"' in page
    assert client.post("/consultations/expert", data={"lt": token}).status_code == 403
    assert bq.expert_by_user(db, scope, EXPERT) is None
    allow_staff_experts(client, lti)
    assert 'id="become-expert"' in html(client.get("/consultations/", query_string={"lt": token}))
    assert client.post("/consultations/expert", data={"lt": token}).status_code == 303
    allow_staff_experts(client, lti, allowed=False)  # an expert already listed keeps the profile
    assert client.get("/consultations/profile", query_string={"lt": token}).status_code == 200


# --- the administrator's home ----------------------------------------------------------------------

def test_admin_home_shows_sync_health_and_links_to_outbox_and_platforms(client, lti, db, scope):
    now = datetime.now(timezone.utc)
    with db.atomic():
        due = outbox.enqueue(db, platform_id=scope[0], kind="ws_message", payload={"user_id": "5", "text": "x"})
        later = outbox.enqueue(db, platform_id=scope[0], kind="ws_message", payload={"user_id": "6", "text": "y"})
        failed = outbox.enqueue(db, platform_id=scope[0], kind="ws_message", payload={"user_id": "7", "text": "z"})
        done = outbox.enqueue(db, platform_id=scope[0], kind="ws_message", payload={"user_id": "7", "text": "w"})
        db.execute("UPDATE outbox SET created_at = ? WHERE id = ?", [(now - timedelta(minutes=90)).isoformat(), due])
        db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?",
                   [(now + timedelta(minutes=5)).isoformat(), later])
        db.execute("UPDATE outbox SET state = 'failed' WHERE id = ?", [failed])
        db.execute("UPDATE outbox SET state = 'delivered', delivered_at = ? WHERE id = ?",
                   ["2026-03-02T08:00:00+00:00", done])
    admin = launch(lti, ADMIN, activity="home")
    page = html(client.get("/app/home", query_string={"lt": admin}))
    assert "<title>Administration</title>" in page and 'id="home-title">Administration<' in page
    assert 'id="h-due">1<' in page and 'id="h-waiting">1<' in page and 'id="h-failed">1<' in page
    assert re.search(r'id="h-oldest">(1 hour|2 hours|90 minutes)<', page)
    assert "2026" in re.search(r'id="h-last">([^<]+)<', page).group(1)
    assert 'data-ok="no"' in page
    outbox_link = re.search(r'id="outbox-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert client.get(outbox_link).status_code == 200
    platforms_link = re.search(r'id="platforms-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    platforms = html(client.get(platforms_link))
    assert "sandbox-client" in platforms and 'data-state="active"' in platforms
    fac = launch(lti, FACILITATOR, activity="home")
    assert "Facilitator home" in html(client.get("/app/home", query_string={"lt": fac}))
    assert "sync-health" not in html(client.get("/app/home", query_string={"lt": fac}))
    assert client.get("/app/admin/platforms", query_string={"lt": fac}).status_code == 403


# --- the living demo -------------------------------------------------------------------------------

def test_demo_seeds_a_course_with_content_once(app, client, lti, db, scope):
    from lms_bridge.db import projects as pq
    from lms_bridge.sandbox import seed_demo
    from lms_bridge.sandbox.demo import SEEDS

    with app.app_context():
        ran = seed_demo(app)
        assert ran == [name for name, _fn in SEEDS] and seed_demo(app) == []
    experts = bq.list_experts(db, scope)
    assert {e["timezone"] for e in experts} == {"Asia/Seoul", "Europe/Stockholm"}
    assert all(bq.open_slots(db, e["id"], datetime.now(timezone.utc).isoformat()) for e in experts)
    assert len(bq.course_bookings(db, scope)) == 1
    assert set(pq.deadlines(db, scope)) == {"project_plan", "project_report", "final_presentation"}
    states = {(user, stage): pq.submission(db, pq.project_of(db, scope, user)["id"], stage)
              for user, stage in (("5", "project_plan"), ("5", "project_report"), ("6", "project_plan"),
                                  ("7", "project_plan"))}
    assert {k: v["status"] for k, v in states.items()} == {
        ("5", "project_plan"): "graded", ("5", "project_report"): "draft", ("6", "project_plan"): "submitted",
        ("7", "project_plan"): "returned"}
    assert states[("5", "project_plan")]["marking_state"] == "released" and states[("5", "project_plan")]["grade"]
    lina = launch(lti, LINA)
    assert "Eun-ji Expert" in html(client.get("/consultations/", query_string={"lt": lina}))


def test_demo_seeds_are_an_extension_point(app, db):
    from lms_bridge.sandbox import demo, seed_demo

    calls = []
    demo.seed("test_extra")(lambda course: calls.append(course.scope))
    try:
        with app.app_context():
            seed_demo(app)
            seed_demo(app)
    finally:
        demo.SEEDS[:] = [s for s in demo.SEEDS if s[0] != "test_extra"]
    assert len(calls) == 1 and calls[0][1:] == ("1", "2")


def test_sandbox_hop_pages_are_titled_for_what_they_do(client):
    page = html(client.get("/sandbox/launch/5/4"))
    assert "<title>Opening the tool…</title>" in page


def test_free_time_counts_leave_out_times_inside_the_minimum_notice(client, lti, db, scope):
    expert_with_times(client, lti, 2, 9)
    lina = launch(lti, LINA)
    assert "4 free times" in html(client.get("/consultations/", query_string={"lt": lina}))
    client.post("/consultations/settings", data={"lt": launch(lti, FACILITATOR), "staff_experts": "1",
                                                 "cancel_deadline_hours": "24", "min_notice_minutes": str(5 * 24 * 60)})
    assert "2 free times" in html(client.get("/consultations/", query_string={"lt": lina}))
