"""iCalendar invites parsed back with the icalendar library: stable UID, SEQUENCE, CANCEL, UTC instants."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from lms_bridge.booking.errors import InvalidInvite
from lms_bridge.booking.ics import booking_invite, booking_uid

UTC = timezone.utc
START = datetime(2026, 12, 7, 19, tzinfo=UTC)
STAMP = datetime(2026, 12, 1, 8, tzinfo=UTC)


def invite(**overrides):
    args = dict(uid=booking_uid(42), sequence=0, start_utc=START, end_utc=START + timedelta(minutes=30),
                summary="Consultation: land rights", description="Topic: land rights\nQuestion: who decides; how?",
                organizer_email="expert@example.org", organizer_name="Dr. Ana Expert",
                attendee_email="participant@example.org", attendee_name="Siti, Participant",
                dtstamp=STAMP, url="https://meet.example.org/abc")
    args.update(overrides)
    return booking_invite(**args)


def event_of(data):
    cal = Calendar.from_ical(data)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def test_request_round_trip():
    cal, ev = event_of(invite())
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(ev["UID"]) == "booking-42@lms-bridge"
    assert int(ev["SEQUENCE"]) == 0
    assert ev.decoded("DTSTART") == START and ev.decoded("DTSTART").utcoffset() == timedelta(0)
    assert ev.decoded("DTEND") == START + timedelta(minutes=30)
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert str(ev["DESCRIPTION"]) == "Topic: land rights\nQuestion: who decides; how?"
    assert str(ev["URL"]) == "https://meet.example.org/abc"
    assert str(ev["ORGANIZER"]) == "mailto:expert@example.org"
    assert ev["ATTENDEE"].params["CN"] == "Siti, Participant"


def test_times_are_written_as_utc_whatever_zone_is_passed():
    jakarta = START.astimezone(ZoneInfo("Asia/Jakarta"))
    data = invite(start_utc=jakarta, end_utc=jakarta + timedelta(minutes=30))
    assert b"DTSTART:20261207T190000Z\r\n" in data
    assert b"VTIMEZONE" not in data
    _, ev = event_of(data)
    assert ev.decoded("DTSTART").astimezone(ZoneInfo("Pacific/Kiritimati")).strftime("%a %H:%M") == "Tue 09:00"
    assert ev.decoded("DTSTART").astimezone(ZoneInfo("Pacific/Pago_Pago")).strftime("%a %H:%M") == "Mon 08:00"


def test_update_keeps_uid_and_increments_sequence():
    _, first = event_of(invite())
    moved = START + timedelta(days=1)
    _, second = event_of(invite(sequence=1, start_utc=moved, end_utc=moved + timedelta(minutes=30)))
    assert second["UID"] == first["UID"]
    assert int(second["SEQUENCE"]) == int(first["SEQUENCE"]) + 1
    assert second.decoded("DTSTART") == moved


def test_cancel_has_method_cancel_and_status_cancelled():
    cal, ev = event_of(invite(sequence=2, method="CANCEL"))
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(ev["STATUS"]) == "CANCELLED"
    assert str(ev["UID"]) == "booking-42@lms-bridge"
    assert int(ev["SEQUENCE"]) == 2
    assert ev.decoded("DTSTART") == START


def test_only_the_one_attendee_is_listed():
    _, ev = event_of(invite())
    attendee = ev["ATTENDEE"]
    assert not isinstance(attendee, list)
    assert str(attendee) == "mailto:participant@example.org"


def test_output_is_deterministic_with_crlf_lines():
    assert invite() == invite()
    assert invite() != invite(sequence=1)
    assert invite().startswith(b"BEGIN:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in invite(description="x" * 300).split(b"\r\n"))


def test_optional_location_and_missing_url():
    _, ev = event_of(invite(url=None, location="Online (Zoom)"))
    assert "URL" not in ev
    assert str(ev["LOCATION"]) == "Online (Zoom)"


@pytest.mark.parametrize("overrides, message", [
    ({"method": "PUBLISH"}, "method must be one of REQUEST, CANCEL"),
    ({"sequence": -1}, "sequence must be a whole number"),
    ({"uid": ""}, "uid must be a non-empty"),
    ({"start_utc": datetime(2026, 12, 7, 19)}, "start_utc must be a timezone-aware"),
    ({"end_utc": START}, "is not after start_utc"),
    ({"attendee_email": "nobody"}, "Invalid e-mail address 'nobody'"),
])
def test_bad_arguments_are_refused(overrides, message):
    with pytest.raises(InvalidInvite, match=message):
        invite(**overrides)
