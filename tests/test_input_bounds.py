"""Issue 11 item 7: out-of-range integers and dates are refused where they are parsed (a clear 4xx with the
form shown again), and pages tolerate what is already stored (a deadline in year 9999, a huge notice)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from lms_bridge.cli import main as cli
from lms_bridge.db import lti as lti_q

HUGE = "99999999999999999999999"
FACILITATOR, EXPERT, LINA, TEUEA = "3", "4", "5", "6"


@pytest.fixture
def scope(db):
    return (lti_q.list_platforms(db)[0]["id"], "1", "2")


def text(resp):
    return resp.get_data(as_text=True)


@pytest.mark.parametrize("due", ["9999-12-31T23:59", "0001-01-01", "0001-01-01T00:00", "2201-01-01T10:00"])
def test_deadline_outside_sane_years_is_refused_with_the_form_shown_again(client, lti, db, due):
    fac = lti.launch(user=FACILITATOR)
    resp = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "due": due})
    assert resp.status_code == 400
    assert 'id="form-error"' in text(resp) and "between the years 1900 and 2200" in text(resp)
    assert f'value="{due}"' in text(resp)  # what was typed comes back
    assert db.execute("SELECT count(*) FROM deadlines").fetchone()[0] == 0


def test_extension_outside_sane_years_is_refused(client, lti):
    fac = lti.launch(user=FACILITATOR)
    assert client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan",
                                                       "due": "2026-12-01T17:00"}).status_code == 303
    resp = client.post("/app/projects/deadlines", data={"lt": fac, "stage": "project_plan", "subject": "user:5",
                                                       "until": "9999-12-31T23:59"})
    assert resp.status_code == 400 and "between the years" in text(resp)


def test_stored_deadline_in_year_9999_does_not_break_any_page(client, lti, db, scope):
    """A value stored before the check (or by hand) must not 500 every learner's workspace."""
    for stage, due in (("project_plan", "9999-12-31T23:59:59.000000+00:00"),
                       ("project_report", "0001-01-01T00:00:00.000000+00:00")):
        db.execute("INSERT INTO deadlines (platform_id, deployment_id, context_id, stage, due_at, cutoff_at)"
                   " VALUES (?,?,?,?,?,?)", [*scope, stage, due, due])
    db.conn.commit()
    for user in (LINA, TEUEA):  # Asia/Jakarta and Pacific/Tarawa: both east of UTC, past year 9999
        token = lti.launch(user=user)
        for path in ("/app/projects/", "/app/projects/stage/project_plan", "/app/projects/stage/project_report"):
            resp = client.get(path, query_string={"lt": token})
            assert resp.status_code == 200, (path, text(resp)[:500])
        assert "Dec 31, 9999, 23:59 UTC" in text(client.get("/app/projects/", query_string={"lt": token}))
    fac = lti.launch(user=FACILITATOR)
    for path in ("/app/projects/dashboard", "/app/projects/deadlines", "/app/projects/export.csv"):
        assert client.get(path, query_string={"lt": fac}).status_code == 200, path


@pytest.mark.parametrize("field,value", [("max_total", HUGE), ("max_active", "100001"),
                                         ("min_notice_minutes", "999999999999"),
                                         ("cancel_deadline_hours", "99999999"), ("max_total", "1" * 5000)])
def test_huge_booking_limits_are_refused_with_the_form_shown_again(client, lti, db, field, value):
    fac = lti.launch(user=FACILITATOR, activity="consultations")
    resp = client.post("/consultations/settings", data={"lt": fac, field: value})
    assert resp.status_code == 400
    assert 'id="form-error"' in text(resp) and 'id="limits-form"' in text(resp)
    assert db.execute("SELECT count(*) FROM booking_settings").fetchone()[0] == 0


def _become_expert(client, lti):
    fac = lti.launch(user=FACILITATOR, activity="consultations")
    assert client.post("/consultations/settings", data={"lt": fac, "staff_experts": "1"}).status_code == 303
    token = lti.launch(user=EXPERT, activity="consultations")
    assert client.post("/consultations/expert", data={"lt": token}).status_code == 303
    return token


def _availability(token, **changes):
    today = date.today()
    data = {"lt": token, "tz": "Asia/Seoul", "valid_from": str(today + timedelta(days=2)),
            "valid_until": str(today + timedelta(days=9)), "weekly": "", "exceptions": "",
            "one_off": f"{today + timedelta(days=4)} 10:00-12:00", "slot_minutes": "60", "buffer_minutes": "0",
            "capacity": "1"}
    data.update(changes)
    return data


@pytest.mark.parametrize("field,value", [("slot_minutes", HUGE), ("buffer_minutes", "999999999999"),
                                         ("capacity", HUGE), ("capacity", "1001"), ("slot_minutes", "1441"),
                                         ("valid_until", "9999-12-31"), ("valid_from", "0001-01-01"),
                                         ("exceptions", "9999-12-31"), ("one_off", "9999-12-31 10:00-12:00")])
def test_out_of_range_availability_is_refused_with_the_form_as_typed(client, lti, db, field, value):
    token = _become_expert(client, lti)
    resp = client.post("/consultations/availability", data=_availability(token, **{field: value}))
    assert resp.status_code == 400, text(resp)[:500]
    assert 'id="form-error"' in text(resp) and 'id="availability-form"' in text(resp)
    assert value.split(" ")[0][:30] in text(resp)  # one-off lines come back as rows: their date is shown
    assert db.execute("SELECT count(*) FROM booking_slots").fetchone()[0] == 0


def test_stored_huge_notice_does_not_break_expert_or_booking_pages(client, lti, db, scope):
    token = _become_expert(client, lti)
    assert client.post("/consultations/availability", data=_availability(token)).status_code == 303
    db.execute("INSERT INTO booking_settings (platform_id, deployment_id, context_id, cancel_deadline_hours,"
               " min_notice_minutes, updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT (platform_id, deployment_id, context_id) DO UPDATE SET"
               " cancel_deadline_hours = excluded.cancel_deadline_hours, min_notice_minutes = excluded.min_notice_minutes",
               [*scope, 999999999999, 999999999999, "2026-01-01T00:00:00+00:00"])
    db.conn.commit()
    expert_id = db.execute("SELECT id FROM booking_experts").fetchone()[0]
    slot_id = db.execute("SELECT id FROM booking_slots").fetchone()[0]
    lina = lti.launch(user=LINA, activity="consultations")
    assert client.get(f"/consultations/experts/{expert_id}", query_string={"lt": lina}).status_code == 200
    assert client.get("/consultations/", query_string={"lt": lina}).status_code == 200
    resp = client.post("/consultations/book", data={"lt": lina, "slot_id": slot_id, "topic": "t", "question": "q"})
    assert resp.status_code == 409 and "Bookings close" in text(resp)
    fac = lti.launch(user=FACILITATOR, activity="consultations")
    assert client.get("/consultations/overview", query_string={"lt": fac}).status_code == 200


def test_huge_ids_and_page_numbers_answer_4xx_not_500(client, lti):
    lina = lti.launch(user=LINA, activity="consultations")
    for data in ({"slot_id": HUGE}, {"slot_id": "-1"}, {"slot_id": "9223372036854775808"}):
        resp = client.post("/consultations/book", data={"lt": lina, "topic": "t", "question": "q", **data})
        assert resp.status_code == 404, text(resp)[:300]
    resp = client.post("/consultations/bookings/1/reschedule", data={"lt": lina, "slot_id": HUGE})
    assert resp.status_code == 404
    for path in (f"/consultations/bookings/{HUGE}", f"/consultations/experts/{HUGE}",
                 f"/consultations/bookings/{'9' * 5000}/invite.ics"):
        assert client.get(path, query_string={"lt": lina}).status_code == 404, path
    assert client.get("/consultations/experts/9", query_string={"lt": lina, "move": HUGE}).status_code == 404
    fac = lti.launch(user=FACILITATOR)
    for path in (f"/app/projects/review/{HUGE}/project_plan", f"/app/projects/file/{HUGE}",
                 "/app/projects/review/9223372036854775808/project_plan"):
        assert client.get(path, query_string={"lt": fac}).status_code == 404, path
    for page in (HUGE, "-5", "x", "1" * 5000):
        assert client.get("/app/projects/dashboard", query_string={"lt": fac, "page": page}).status_code == 200
    admin = lti.launch(user="2")
    assert client.post(f"/app/sync/outbox/{HUGE}/retry", data={"lt": admin}).status_code == 404


def test_outbox_retry_with_a_huge_id_is_a_clean_cli_error(app, monkeypatch):
    monkeypatch.setenv("LMS_BRIDGE_DATA", app.config["DATA_DIR"])
    result = CliRunner().invoke(cli, ["outbox", "retry", HUGE])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is not in the range" in result.output
