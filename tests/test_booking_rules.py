"""Facilitator limits, minimum notice, overlap, cancellation deadline, rescheduling and the join link."""

from datetime import datetime, timedelta, timezone

import pytest

from lms_bridge.booking.availability import Slot
from lms_bridge.booking.errors import (BookingError, CancellationClosed, LimitReached, NaiveDatetime, Overlap,
                                       SlotFull, TooLate)
from lms_bridge.booking.rules import (BookingLimits, ExistingBooking, cancel_deadline, check_can_book,
                                      check_can_cancel, check_can_reschedule, join_link_visible)

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)


def booking(hours_from_now, minutes=30, booking_id=None):
    start = NOW + timedelta(hours=hours_from_now)
    return ExistingBooking(start, start + timedelta(minutes=minutes), booking_id)


def slot(hours_from_now, minutes=30, capacity=1):
    start = NOW + timedelta(hours=hours_from_now)
    return Slot(start, start + timedelta(minutes=minutes), capacity)


def test_booking_allowed_within_limits():
    limits = BookingLimits(max_total=3, max_active=2, cancel_deadline_hours=24, min_notice_minutes=60)
    assert check_can_book(limits, [booking(48)], slot(72), NOW) is None


def test_active_limit_message():
    limits = BookingLimits(max_active=2)
    with pytest.raises(LimitReached, match=r"^You already have 2 upcoming consultations; the limit is 2\."):
        check_can_book(limits, [booking(24), booking(48)], slot(72), NOW)


def test_active_limit_message_singular():
    with pytest.raises(LimitReached, match=r"^You already have 1 upcoming consultation; the limit is 1\."):
        check_can_book(BookingLimits(max_active=1), [booking(24)], slot(72), NOW)


def test_past_bookings_free_the_active_limit_but_count_toward_total():
    past = [booking(-72), booking(-48)]
    assert check_can_book(BookingLimits(max_active=1), past, slot(72), NOW) is None
    with pytest.raises(LimitReached, match=r"^You have already booked 2 consultations in this course; the limit is 2\.$"):
        check_can_book(BookingLimits(max_total=2), past, slot(72), NOW)


def test_booking_in_progress_still_counts_as_active():
    running = ExistingBooking(NOW - timedelta(minutes=10), NOW + timedelta(minutes=20))
    with pytest.raises(LimitReached, match="1 upcoming consultation"):
        check_can_book(BookingLimits(max_active=1), [running], slot(72), NOW)


def test_no_limits_means_unlimited():
    many = [booking(-100 + i) for i in range(0, 50, 2)] + [booking(10 + i) for i in range(0, 40, 2)]
    assert check_can_book(BookingLimits(), many, slot(200), NOW) is None


def test_minimum_notice_boundary_and_message_in_participant_zone():
    limits = BookingLimits(min_notice_minutes=120)
    assert check_can_book(limits, [], slot(2), NOW) is None
    early = Slot(NOW + 2 * H - timedelta(seconds=1), NOW + 3 * H)
    with pytest.raises(TooLate, match=r"Bookings close 2 hours before the start; this consultation starts "
                                      r"Wed, Dec 2, 2026, 03:59 \(Pacific/Kiritimati, UTC\+14:00\)"):
        check_can_book(limits, [], early, NOW, tz="Pacific/Kiritimati")


def test_started_slot_cannot_be_booked_even_without_notice():
    with pytest.raises(TooLate, match="started at .* it can no longer be booked"):
        check_can_book(BookingLimits(min_notice_minutes=0), [], slot(0), NOW)


def test_overlapping_booking_is_refused_but_adjacent_is_fine():
    held = [booking(24, minutes=60)]
    with pytest.raises(Overlap, match=r"You already have a consultation at Wed, Dec 2, 2026, 19:00 \(Asia/Jakarta"):
        check_can_book(BookingLimits(), held, slot(24.5), NOW, tz="Asia/Jakarta")
    with pytest.raises(Overlap):
        check_can_book(BookingLimits(), held, slot(24), NOW)
    assert check_can_book(BookingLimits(), held, slot(25), NOW) is None
    assert check_can_book(BookingLimits(), held, slot(23.5), NOW) is None


def test_full_slot_is_refused_until_a_seat_frees():
    group = slot(48, capacity=3)
    assert check_can_book(BookingLimits(), [], group, NOW, slot_taken=2) is None
    with pytest.raises(SlotFull, match="is fully booked"):
        check_can_book(BookingLimits(), [], group, NOW, slot_taken=3)


def test_cancellation_deadline_boundary():
    limits = BookingLimits(cancel_deadline_hours=24)
    start = NOW + 24 * H
    assert cancel_deadline(limits, start) == NOW
    assert check_can_cancel(limits, start, NOW) is None
    with pytest.raises(CancellationClosed):
        check_can_cancel(limits, start, NOW + timedelta(seconds=1))


def test_cancellation_message_names_deadline_in_participant_zone():
    limits = BookingLimits(cancel_deadline_hours=48)
    with pytest.raises(CancellationClosed, match=r"^Cancellation closed at Mon, Nov 30, 2026, 01:00 "
                                                 r"\(Pacific/Pago_Pago, UTC-11:00\), 48 hours before the consultation\."):
        check_can_cancel(limits, NOW + 24 * H, NOW, tz="Pacific/Pago_Pago")


def test_reschedule_does_not_count_the_booking_being_moved():
    limits = BookingLimits(max_total=1, max_active=1, cancel_deadline_hours=24)
    current = booking(72, booking_id=7)
    with pytest.raises(LimitReached):
        check_can_book(limits, [current], slot(96), NOW)
    assert check_can_reschedule(limits, current, [current], slot(96), NOW) is None
    assert check_can_reschedule(limits, current, [current], slot(72.25), NOW) is None


def test_reschedule_needs_the_cancellation_deadline_and_the_new_slot_rules():
    limits = BookingLimits(cancel_deadline_hours=24, min_notice_minutes=60)
    other = booking(100)
    with pytest.raises(CancellationClosed):
        check_can_reschedule(limits, booking(12), [booking(12)], slot(96), NOW)
    with pytest.raises(TooLate):
        check_can_reschedule(limits, booking(72), [booking(72)], slot(0.5), NOW)
    with pytest.raises(Overlap):
        check_can_reschedule(limits, booking(72), [booking(72), other], slot(100), NOW)


@pytest.mark.parametrize("minutes_from_start, visible", [(-16, False), (-15, True), (0, True), (29, True), (30, False)])
def test_join_link_visible_near_the_time(minutes_from_start, visible):
    start, end = NOW, NOW + timedelta(minutes=30)
    assert join_link_visible(start, end, NOW + timedelta(minutes=minutes_from_start)) is visible


def test_join_link_window_is_configurable():
    assert join_link_visible(NOW, NOW + H, NOW - timedelta(minutes=30), minutes_before=30) is True


def test_naive_now_is_refused():
    with pytest.raises(NaiveDatetime, match="now"):
        check_can_cancel(BookingLimits(), NOW, datetime(2026, 12, 1))


def test_refusals_are_booking_errors_with_conflict_status():
    for cls in (LimitReached, TooLate, Overlap, SlotFull, CancellationClosed):
        assert issubclass(cls, BookingError) and cls.status == 409
