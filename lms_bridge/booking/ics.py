"""iCalendar (RFC 5545/5546) invites for one participant's consultation.

Times are written in UTC ("Z"), which every client converts to its viewer's zone, so no VTIMEZONE is
needed. One attendee per invite: group consultations never reveal who else booked. Output is
deterministic for the same arguments (DTSTAMP is passed in), so a resend is byte-identical.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event, vCalAddress, vText

from .errors import InvalidInvite, NaiveDatetime
from .zones import to_utc

PRODID = "-//lms_bridge//Consultation booking//EN"
METHODS = ("REQUEST", "CANCEL")


def booking_uid(booking_id: object, domain: str = "lms-bridge") -> str:
    """The UID that stays with a booking for life, so updates and cancellations replace the same event."""
    return f"booking-{booking_id}@{domain}"


def _address(email: str, name: str | None, **params: str) -> vCalAddress:
    if not email or "@" not in email:
        raise InvalidInvite(f"Invalid e-mail address {email!r} for the invite.")
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["cn"] = vText(name)
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def booking_invite(*, uid: str, sequence: int, start_utc: datetime, end_utc: datetime, summary: str,
                   description: str, organizer_email: str, organizer_name: str | None,
                   attendee_email: str, attendee_name: str | None, dtstamp: datetime,
                   method: str = "REQUEST", location: str | None = None, url: str | None = None) -> bytes:
    """The .ics bytes for a new/changed booking (REQUEST) or a cancelled one (CANCEL, STATUS:CANCELLED).

    The caller keeps `uid` stable and raises `sequence` on every change, as RFC 5546 requires.
    """
    if method not in METHODS:
        raise InvalidInvite(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    if not uid or any(c in uid for c in "\r\n"):
        raise InvalidInvite(f"uid must be a non-empty single line, got {uid!r}.")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise InvalidInvite(f"sequence must be a whole number >= 0, got {sequence!r}.")
    try:
        start, end, stamp = to_utc(start_utc, "start_utc"), to_utc(end_utc, "end_utc"), to_utc(dtstamp, "dtstamp")
    except NaiveDatetime as exc:
        raise InvalidInvite(str(exc)) from None
    if end <= start:
        raise InvalidInvite(f"end_utc {end.isoformat()} is not after start_utc {start.isoformat()}.")

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)

    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PRIVATE")
    if location:
        event.add("location", location)
    if url:
        event.add("url", url)
    event.add("organizer", _address(organizer_email, organizer_name))
    partstat = "DECLINED" if method == "CANCEL" else "ACCEPTED"
    event.add("attendee", _address(attendee_email, attendee_name, role="REQ-PARTICIPANT",
                                   partstat=partstat, rsvp="FALSE"))
    cal.add_component(event)
    return cal.to_ical()
