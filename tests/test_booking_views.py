"""Consultation booking end to end: signed sandbox launches for the expert, participants and facilitator."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from lms_bridge.db import IntegrityError
from lms_bridge.db import booking as bq
from lms_bridge.db import lti as lti_q

EXPERT, FACILITATOR, LINA, TEUEA, ASHA = "4", "3", "5", "6", "7"


@pytest.fixture
def scope(db):
    platform = next(iter(lti_q.list_platforms(db)))
    return (platform["id"], "1", "2")


def launch(lti, user):
    return lti.launch(user=user, activity="consultations")


def publish(client, token, *, capacity=1, weekly="", one_off="", days=(3, 10), tz="Asia/Seoul", slot=60, buffer=0):
    today = date.today()
    resp = client.post("/consultations/availability", data={
        "lt": token, "tz": tz, "valid_from": str(today + timedelta(days=days[0])),
        "valid_until": str(today + timedelta(days=days[1])), "weekly": weekly, "one_off": one_off,
        "exceptions": "", "slot_minutes": str(slot), "buffer_minutes": str(buffer), "capacity": str(capacity)})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return resp


def allow_staff_experts(client, lti):
    resp = client.post("/consultations/settings", data={"lt": launch(lti, FACILITATOR), "staff_experts": "1",
                                                        "cancel_deadline_hours": "24", "min_notice_minutes": "0"})
    assert resp.status_code == 303


def become_expert(client, lti, user=EXPERT, **profile):
    allow_staff_experts(client, lti)
    token = launch(lti, user)
    assert client.post("/consultations/expert", data={"lt": token}).status_code == 303
    data = {"lt": token, "bio": "Former OHCHR officer.", "topics": "UN human rights mechanisms, Gender equality",
            "languages": "English, Korean", "timezone": "Asia/Seoul", "meeting_url": "https://meet.example/eunji"}
    data.update(profile)
    assert client.post("/consultations/profile", data=data).status_code == 303
    return token


def one_off_day(offset=5, start="10:00", end="11:00"):
    return f"{date.today() + timedelta(days=offset)} {start}-{end}"


def slot_ids(db, scope, user=EXPERT):
    expert = bq.expert_by_user(db, scope, user)
    return [s["id"] for s in bq.expert_slots(db, expert["id"])]


def book(client, token, slot_id, topic="Gender equality", question="How do we run a gender audit?", **extra):
    return client.post("/consultations/book", data={"lt": token, "slot_id": slot_id, "topic": topic,
                                                   "question": question, **extra})


def ics(client, token, booking_id):
    resp = client.get(f"/consultations/bookings/{booking_id}/invite.ics", query_string={"lt": token})
    assert resp.status_code == 200
    assert resp.mimetype == "text/calendar"
    return Calendar.from_ical(resp.data)


def test_expert_publishes_and_participant_sees_slots_in_own_zone(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "12:00"))  # 10:00 Seoul = 08:00 Jakarta
    ids = slot_ids(db, scope)
    assert len(ids) == 2
    lina = launch(lti, LINA)
    page = client.get("/consultations/", query_string={"lt": lina}).get_data(as_text=True)
    assert "Eun-ji Expert" in page and "Asia/Jakarta" in page and "2 free times" in page
    expert_id = bq.expert_by_user(db, scope, EXPERT)["id"]
    page = client.get(f"/consultations/experts/{expert_id}", query_string={"lt": lina}).get_data(as_text=True)
    assert "08:00–09:00" in page and "09:00–10:00" in page and "Asia/Jakarta" in page


def test_book_download_invite_reschedule_cancel(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "12:00"))
    first, second = slot_ids(db, scope)
    lina = launch(lti, LINA)
    resp = book(client, lina, first, project="Village HRBA plan")
    assert resp.status_code == 303
    booking_id = int(re.search(r"/bookings/(\d+)", resp.headers["Location"]).group(1))
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "08:00 (Asia/Jakarta, UTC+07:00)" in page and "Village HRBA plan" in page

    cal = ics(client, lina, booking_id)
    event = next(iter(cal.walk("VEVENT")))
    assert str(cal["METHOD"]) == "REQUEST" and int(event["SEQUENCE"]) == 0
    uid = str(event["UID"])
    assert event.decoded("DTSTART").astimezone(timezone(timedelta(hours=7))).hour == 8

    assert client.post(f"/consultations/bookings/{booking_id}/reschedule",
                       data={"lt": lina, "slot_id": second}).status_code == 303
    moved = next(iter(ics(client, lina, booking_id).walk("VEVENT")))
    assert str(moved["UID"]) == uid and int(moved["SEQUENCE"]) == 1
    assert [s["booked"] for s in bq.expert_slots(db, bq.expert_by_user(db, scope, EXPERT)["id"])] == [0, 1]

    assert client.post(f"/consultations/bookings/{booking_id}/cancel", data={"lt": lina}).status_code == 303
    cal = ics(client, lina, booking_id)
    event = next(iter(cal.walk("VEVENT")))
    assert str(cal["METHOD"]) == "CANCEL" and str(event["UID"]) == uid and int(event["SEQUENCE"]) == 2
    assert str(event["STATUS"]) == "CANCELLED"
    assert all(s["booked"] == 0 for s in bq.expert_slots(db, bq.expert_by_user(db, scope, EXPERT)["id"]))


def test_full_slot_answers_409_with_clear_message(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    (slot,) = slot_ids(db, scope)
    assert book(client, launch(lti, LINA), slot).status_code == 303
    resp = client.post("/consultations/book", json={"slot_id": slot, "topic": "Gender equality", "question": "Q?"},
                       headers={"X-Launch-Token": launch(lti, TEUEA)})
    assert resp.status_code == 409
    assert resp.get_json()["error"] == "slot_full" and "fully booked" in resp.get_json()["message"]
    html = book(client, launch(lti, ASHA), slot)
    assert html.status_code == 409 and "fully booked" in html.get_data(as_text=True)


def test_limits_set_by_facilitator_apply_with_clear_messages(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "13:00"))
    slots = slot_ids(db, scope)
    fac = launch(lti, FACILITATOR)
    assert client.post("/consultations/settings", data={"lt": fac, "max_total": "2", "max_active": "1",
                                                        "cancel_deadline_hours": "24",
                                                        "min_notice_minutes": "0"}).status_code == 303
    lina = launch(lti, LINA)
    first = book(client, lina, slots[0])
    assert first.status_code == 303
    second = book(client, lina, slots[1])
    assert second.status_code == 409 and "the limit is 1" in second.get_data(as_text=True)
    booking_id = int(re.search(r"/bookings/(\d+)", first.headers["Location"]).group(1))
    client.post(f"/consultations/bookings/{booking_id}/cancel", data={"lt": lina})
    assert book(client, lina, slots[1]).status_code == 303


def test_cancellation_deadline_blocks_cancel(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(3, "10:00", "11:00"))
    (slot,) = slot_ids(db, scope)
    fac = launch(lti, FACILITATOR)
    client.post("/consultations/settings", data={"lt": fac, "cancel_deadline_hours": "240", "min_notice_minutes": "0"})
    lina = launch(lti, LINA)
    resp = book(client, lina, slot)
    booking_id = int(re.search(r"/bookings/(\d+)", resp.headers["Location"]).group(1))
    refused = client.post(f"/consultations/bookings/{booking_id}/cancel", data={"lt": lina})
    assert refused.status_code == 409 and "Cancellation closed" in refused.get_data(as_text=True)
    assert bq.get_booking(db, scope, booking_id)["status"] == "booked"


def test_participant_cannot_hold_overlapping_bookings(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    fac = become_expert(client, lti, FACILITATOR, timezone="Europe/Stockholm")
    publish(client, fac, one_off=one_off_day(5, "02:30", "03:30"), tz="Europe/Stockholm")  # = 10:30 Seoul
    lina = launch(lti, LINA)
    assert book(client, lina, slot_ids(db, scope)[0]).status_code == 303
    resp = book(client, lina, slot_ids(db, scope, FACILITATOR)[0])
    assert resp.status_code == 409 and "overlaps" in resp.get_data(as_text=True)


def test_database_refuses_overbooking_and_overlaps(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    (slot,) = slot_ids(db, scope)
    with pytest.raises(IntegrityError):
        db.execute("UPDATE booking_slots SET booked = 2 WHERE id = ?", [slot])
    expert_id = bq.expert_by_user(db, scope, EXPERT)["id"]
    row = bq.get_slot(db, slot)
    assert not bq.insert_slot(db, expert_id, row["start_utc"][:11] + "01:30:00.000000+00:00",
                              row["start_utc"][:11] + "02:30:00.000000+00:00", 1)


def test_expert_sees_question_and_records_outcome_after_the_start(client, lti, db, scope, monkeypatch):
    from lms_bridge.booking import views

    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    lina = launch(lti, LINA)
    resp = book(client, lina, slot_ids(db, scope)[0], question="Which indicators for SDG 11?", project="Bogor VLR")
    booking_id = int(re.search(r"/bookings/(\d+)", resp.headers["Location"]).group(1))
    home = client.get("/consultations/", query_string={"lt": token}).get_data(as_text=True)
    assert "Which indicators for SDG 11?" in home and "Bogor VLR" in home and "Lina Santoso" in home
    page = client.get(f"/consultations/bookings/{booking_id}", query_string={"lt": token}).get_data(as_text=True)
    assert 'id="attendance-later"' in page and 'name="attendance"' not in page
    early = client.post(f"/consultations/bookings/{booking_id}/outcome", data={"lt": token, "attendance": "attended"})
    assert early.status_code == 409 and "once the consultation has started" in early.get_data(as_text=True)
    assert bq.get_booking(db, scope, booking_id)["attendance"] is None
    start = datetime.fromisoformat(bq.get_booking(db, scope, booking_id)["start_utc"])
    monkeypatch.setattr(views, "utcnow", lambda: start + timedelta(minutes=5))
    page = client.get(f"/consultations/bookings/{booking_id}", query_string={"lt": token}).get_data(as_text=True)
    assert 'name="attendance"' in page
    assert client.post(f"/consultations/bookings/{booking_id}/outcome", data={
        "lt": token, "attendance": "attended", "shared_notes": "Use the UN-Habitat indicators.",
        "follow_up": "Draft 3 indicators by Friday", "private_note": "Needs support on data"}).status_code == 303
    mine = client.get(f"/consultations/bookings/{booking_id}", query_string={"lt": lina}).get_data(as_text=True)
    assert "Draft 3 indicators by Friday" in mine and "Use the UN-Habitat" in mine
    assert "Needs support on data" not in mine
    assert client.post(f"/consultations/bookings/{booking_id}/outcome",
                       data={"lt": lina, "attendance": "no_show"}).status_code == 403

    fac = launch(lti, FACILITATOR)
    overview = client.get("/consultations/overview", query_string={"lt": fac}).get_data(as_text=True)
    assert "Lina Santoso" in overview and "Eun-ji Expert" in overview and "Draft 3 indicators" in overview
    assert "Needs support on data" not in overview
    export = client.get("/consultations/overview.csv", query_string={"lt": fac})
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[1][1:3] == ["Lina Santoso", "Eun-ji Expert"] and rows[1][8] == "attended"
    assert "Needs support on data" not in export.get_data(as_text=True)


def test_other_participants_cannot_see_a_booking(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    resp = book(client, launch(lti, LINA), slot_ids(db, scope)[0])
    booking_id = int(re.search(r"/bookings/(\d+)", resp.headers["Location"]).group(1))
    teuea = launch(lti, TEUEA)
    assert client.get(f"/consultations/bookings/{booking_id}", query_string={"lt": teuea}).status_code == 404
    assert client.get(f"/consultations/bookings/{booking_id}/invite.ics", query_string={"lt": teuea}).status_code == 404
    assert client.post(f"/consultations/bookings/{booking_id}/cancel", data={"lt": teuea}).status_code == 404


def test_forged_post_without_launch_is_refused(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    slot = slot_ids(db, scope)[0]
    assert client.post("/consultations/book", data={"slot_id": slot, "topic": "x", "question": "y"}).status_code == 401
    assert client.post("/consultations/book", data={"lt": "forged", "slot_id": slot, "topic": "x",
                                                    "question": "y"}).status_code == 403
    assert bq.get_slot(db, slot)["booked"] == 0


def test_messages_go_through_the_outbox_never_the_course_calendar(client, lti, db, scope):
    lti_q.set_moodle_ws(db, scope[0], "http://localhost/sandbox/webservice/rest/server.php", "tok", [])
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    assert book(client, launch(lti, LINA), slot_ids(db, scope)[0]).status_code == 303
    kinds = [(r["kind"], r["payload"]) for r in db.query("SELECT kind, payload FROM outbox")]
    assert {k for k, _ in kinds} == {"ws_message"}
    assert any('"user_id": "5"' in p for _, p in kinds) and any('"user_id": "4"' in p for _, p in kinds)


def test_without_ws_credentials_notices_stay_in_the_tool(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "11:00"))
    lina = launch(lti, LINA)
    book(client, lina, slot_ids(db, scope)[0])
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    page = client.get("/consultations/", query_string={"lt": lina}).get_data(as_text=True)
    assert "Consultation with Eun-ji Expert on" in page and ": booked." in page


def test_reminders_are_sent_once_within_a_day_of_the_start(client, lti, db, scope):
    from lms_bridge.booking.service import send_due_reminders

    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(3, "10:00", "11:00"))
    slot = slot_ids(db, scope)[0]
    book(client, launch(lti, LINA), slot)
    start = datetime.fromisoformat(bq.get_slot(db, slot)["start_utc"])
    assert send_due_reminders(db, datetime.now(timezone.utc)) == 0
    assert send_due_reminders(db, start - timedelta(hours=2)) == 1
    assert send_due_reminders(db, start - timedelta(hours=1)) == 0
    texts = [n["text"] for n in bq.notices(db, scope, LINA)]
    assert texts[0].endswith(": reminder.") and "Asia/Jakarta" in texts[0]


def test_worker_pass_queues_due_reminders(app, client, lti, db, scope, monkeypatch):
    from lms_bridge.sync import worker

    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(3, "10:00", "11:00"))
    slot = slot_ids(db, scope)[0]
    book(client, launch(lti, LINA), slot)
    start = datetime.fromisoformat(bq.get_slot(db, slot)["start_utc"])
    monkeypatch.setattr(worker, "utcnow", lambda: start - timedelta(hours=3))
    worker.run_worker(app, once=True)
    assert [n["text"] for n in bq.notices(db, scope, LINA)][0].endswith(": reminder.")


def test_republishing_keeps_booked_slots(client, lti, db, scope):
    token = become_expert(client, lti)
    publish(client, token, one_off=one_off_day(5, "10:00", "12:00"))
    first = slot_ids(db, scope)[0]
    book(client, launch(lti, LINA), first)
    resp = publish(client, token, one_off=one_off_day(6, "10:00", "11:00"))
    assert "kept=1" in resp.headers["Location"]
    slots = bq.expert_slots(db, bq.expert_by_user(db, scope, EXPERT)["id"])
    assert [(s["id"], s["booked"], s["open"]) for s in slots][0] == (first, 1, 0)
    assert len(slots) == 2


def test_weekly_hours_follow_dst_in_the_experts_zone(client, lti, db, scope):
    from zoneinfo import ZoneInfo

    fac = become_expert(client, lti, FACILITATOR, timezone="Europe/Stockholm")
    publish(client, fac, weekly="Mon 09:00-10:00\nThu 09:00-10:00", days=(1, 200), tz="Europe/Stockholm")
    starts = [datetime.fromisoformat(bq.get_slot(db, i)["start_utc"]) for i in slot_ids(db, scope, FACILITATOR)]
    assert len(starts) >= 55
    assert {s.astimezone(ZoneInfo("Europe/Stockholm")).strftime("%a %H:%M") for s in starts} == {"Mon 09:00", "Thu 09:00"}
    assert {s.strftime("%H:%M") for s in starts} == {"07:00", "08:00"}  # CEST and CET both fall in 200 days


def test_invalid_availability_and_timezone_are_explained(client, lti):
    token = become_expert(client, lti)
    resp = client.post("/consultations/availability", data={
        "lt": token, "tz": "Asia/Seoul", "valid_from": "2026-01-01", "valid_until": "2026-02-01",
        "weekly": "Someday 9-10", "slot_minutes": "30", "capacity": "1"})
    assert resp.status_code == 400 and "Mon 09:00-12:00" in resp.get_data(as_text=True)
    bad = client.post("/consultations/timezone", data={"lt": token, "tz": "99"})
    assert bad.status_code == 400 and "IANA" in bad.get_data(as_text=True)
    ok = client.post("/consultations/timezone", data={"lt": token, "tz": "Pacific/Kiritimati"},
                     headers={"Accept": "application/json"})
    assert ok.get_json() == {"ok": True, "tz": "Pacific/Kiritimati"}
    assert "Pacific/Kiritimati" in client.get("/consultations/", query_string={"lt": token}).get_data(as_text=True)


def test_learner_cannot_open_expert_pages(client, lti):
    lina = launch(lti, LINA)
    assert client.post("/consultations/expert", data={"lt": lina}).status_code == 403
    assert client.get("/consultations/overview", query_string={"lt": lina}).status_code == 403
    assert client.get("/consultations/overview.csv", query_string={"lt": lina}).status_code == 403
