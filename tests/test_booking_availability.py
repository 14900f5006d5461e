"""Availability expansion: wall-clock rules across DST and the date line, exceptions, one-offs, buffers."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from lms_bridge.booking.availability import (Availability, Slot, WeeklyRule, expand_slots,
                                             format_in_zone, localize, resolve_tz, validate_availability,
                                             validate_tz)
from lms_bridge.booking.errors import InvalidAvailability, InvalidTimeZone, NaiveDatetime

UTC = timezone.utc
MON, TUE, FRI, SUN = 0, 1, 4, 6


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def avail(tz, weekly=(), **kw):
    kw.setdefault("valid_from", date(2026, 1, 1))
    kw.setdefault("valid_until", date(2026, 12, 31))
    kw.setdefault("slot_minutes", 60)
    return Availability(tz=tz, weekly=list(weekly), **kw)


def starts(slots):
    return [s.start_utc for s in slots]


def local_starts(slots, tz):
    return [s.start_utc.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M") for s in slots]


# --- DST -------------------------------------------------------------------------------------------

def test_stockholm_rule_keeps_wall_clock_across_spring_forward():
    a = avail("Europe/Stockholm", [WeeklyRule(MON, time(9), time(10))])
    slots = expand_slots(a, utc(2026, 3, 23), utc(2026, 4, 1))
    assert starts(slots) == [utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)]
    assert local_starts(slots, "Europe/Stockholm") == ["Mon 2026-03-23 09:00", "Mon 2026-03-30 09:00"]


def test_stockholm_rule_keeps_wall_clock_across_fall_back():
    a = avail("Europe/Stockholm", [WeeklyRule(MON, time(9), time(10))])
    slots = expand_slots(a, utc(2026, 10, 19), utc(2026, 10, 28))
    assert starts(slots) == [utc(2026, 10, 19, 7), utc(2026, 10, 26, 8)]


def test_window_starting_in_spring_forward_gap_shifts_forward():
    """02:30 does not exist on 29 March 2026 in Stockholm; fold=0 moves it to 03:30 CEST."""
    a = avail("Europe/Stockholm", [WeeklyRule(SUN, time(2, 30), time(4))], slot_minutes=30)
    slots = expand_slots(a, utc(2026, 3, 28), utc(2026, 3, 30))
    assert starts(slots) == [utc(2026, 3, 29, 1, 30)]
    assert local_starts(slots, "Europe/Stockholm") == ["Sun 2026-03-29 03:30"]


def test_window_inside_the_gap_yields_no_slot():
    a = avail("Europe/Stockholm", [WeeklyRule(SUN, time(2), time(3))], slot_minutes=30)
    assert expand_slots(a, utc(2026, 3, 28), utc(2026, 3, 30)) == []


def test_ambiguous_fall_back_hour_uses_first_occurrence_and_real_durations():
    a = avail("Europe/Stockholm", [WeeklyRule(SUN, time(2), time(3))], slot_minutes=30)
    slots = expand_slots(a, utc(2026, 10, 24), utc(2026, 10, 26))
    # 02:00 CEST (fold=0) is 00:00Z; 03:00 CET is 02:00Z: the repeated hour gives four real half hours.
    assert starts(slots) == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30),
                             utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 30)]
    assert all(s.end_utc - s.start_utc == timedelta(minutes=30) for s in slots)


def test_new_york_rule_across_both_transitions():
    a = avail("America/New_York", [WeeklyRule(FRI, time(13), time(14))])
    spring = expand_slots(a, utc(2026, 3, 6), utc(2026, 3, 14))
    autumn = expand_slots(a, utc(2026, 10, 30), utc(2026, 11, 7))
    assert starts(spring) == [utc(2026, 3, 6, 18), utc(2026, 3, 13, 17)]
    assert starts(autumn) == [utc(2026, 10, 30, 17), utc(2026, 11, 6, 18)]


def test_stockholm_slot_seen_from_new_york_moves_while_only_one_side_changed_clocks():
    a = avail("Europe/Stockholm", [WeeklyRule(MON, time(15), time(16))])
    slots = expand_slots(a, utc(2026, 3, 2), utc(2026, 4, 7))
    shown = [format_in_zone(s.start_utc, "America/New_York") for s in slots]
    assert shown[0] == "Mon, Mar 2, 2026, 09:00 (America/New_York, UTC-05:00)"
    assert shown[2] == "Mon, Mar 16, 2026, 10:00 (America/New_York, UTC-04:00)"
    assert shown[-1] == "Mon, Apr 6, 2026, 09:00 (America/New_York, UTC-04:00)"


# --- the date line ---------------------------------------------------------------------------------

def test_kiritimati_tuesday_is_pago_pago_monday():
    kiritimati = avail("Pacific/Kiritimati", [WeeklyRule(TUE, time(9), time(10))])
    pago = avail("Pacific/Pago_Pago", [WeeklyRule(MON, time(8), time(9))])
    lo, hi = utc(2026, 12, 7), utc(2026, 12, 8)
    k, p = expand_slots(kiritimati, lo, hi), expand_slots(pago, lo, hi)
    assert starts(k) == starts(p) == [utc(2026, 12, 7, 19)]
    assert format_in_zone(k[0].start_utc, "Pacific/Kiritimati") == "Tue, Dec 8, 2026, 09:00 (Pacific/Kiritimati, UTC+14:00)"
    assert format_in_zone(k[0].start_utc, "Pacific/Pago_Pago") == "Mon, Dec 7, 2026, 08:00 (Pacific/Pago_Pago, UTC-11:00)"


def test_tight_window_still_finds_slot_on_next_local_day():
    a = avail("Pacific/Kiritimati", [WeeklyRule(TUE, time(9), time(10))])
    assert starts(expand_slots(a, utc(2026, 12, 7, 19), utc(2026, 12, 7, 20))) == [utc(2026, 12, 7, 19)]


def test_valid_range_is_in_the_experts_local_dates():
    rule = [WeeklyRule(TUE, time(9), time(10))]
    lo, hi = utc(2026, 12, 7), utc(2026, 12, 8)
    ends_monday = avail("Pacific/Kiritimati", rule, valid_until=date(2026, 12, 7))
    starts_tuesday = avail("Pacific/Kiritimati", rule, valid_from=date(2026, 12, 8))
    assert expand_slots(ends_monday, lo, hi) == []
    assert starts(expand_slots(starts_tuesday, lo, hi)) == [utc(2026, 12, 7, 19)]


def test_exception_removes_the_local_day_not_the_utc_day():
    rule = [WeeklyRule(TUE, time(9), time(10))]
    lo, hi = utc(2026, 12, 7), utc(2026, 12, 8)
    assert expand_slots(avail("Pacific/Kiritimati", rule, exceptions=[date(2026, 12, 8)]), lo, hi) == []
    assert len(expand_slots(avail("Pacific/Kiritimati", rule, exceptions=[date(2026, 12, 7)]), lo, hi)) == 1


# --- exceptions, one-offs, buffers, windows --------------------------------------------------------

def test_exception_removes_weekly_and_one_off_slots_of_that_day_only():
    a = avail("Asia/Jakarta", [WeeklyRule(MON, time(9), time(10))], exceptions=[date(2026, 12, 7)],
              one_off=[(datetime(2026, 12, 7, 14), datetime(2026, 12, 7, 15))])
    slots = expand_slots(a, utc(2026, 12, 6), utc(2026, 12, 15))
    assert local_starts(slots, "Asia/Jakarta") == ["Mon 2026-12-14 09:00"]


def test_one_off_adds_slots_even_outside_the_weekly_range():
    a = avail("Asia/Jakarta", valid_until=date(2026, 6, 30),
              one_off=[(datetime(2026, 9, 2, 20), datetime(2026, 9, 2, 22))])
    slots = expand_slots(a, utc(2026, 9, 1), utc(2026, 9, 3))
    assert local_starts(slots, "Asia/Jakarta") == ["Wed 2026-09-02 20:00", "Wed 2026-09-02 21:00"]


def test_one_off_overlapping_weekly_hours_merges_without_overlapping_slots():
    a = avail("Asia/Seoul", [WeeklyRule(MON, time(9), time(11))], slot_minutes=60,
              one_off=[(datetime(2026, 12, 7, 10), datetime(2026, 12, 7, 12))])
    slots = expand_slots(a, utc(2026, 12, 6), utc(2026, 12, 8))
    assert local_starts(slots, "Asia/Seoul") == ["Mon 2026-12-07 09:00", "Mon 2026-12-07 10:00",
                                                 "Mon 2026-12-07 11:00"]
    assert all(a.end_utc <= b.start_utc for a, b in zip(slots, slots[1:]))


def test_duplicate_rules_give_sorted_unique_slots():
    rule = WeeklyRule(MON, time(9), time(10))
    a = avail("Europe/Berlin", [WeeklyRule(TUE, time(9), time(10)), rule, rule])
    slots = expand_slots(a, utc(2026, 12, 7), utc(2026, 12, 9))
    assert starts(slots) == [utc(2026, 12, 7, 8), utc(2026, 12, 8, 8)]


@pytest.mark.parametrize("buffer, expected", [
    (0, ["09:00", "09:30", "10:00", "10:30"]),
    (15, ["09:00", "09:45", "10:30"]),
    (20, ["09:00", "09:50"]),
])
def test_buffer_separates_slots_and_no_slot_passes_the_window_end(buffer, expected):
    a = avail("Asia/Jakarta", [WeeklyRule(MON, time(9), time(11))], slot_minutes=30, buffer_minutes=buffer)
    slots = expand_slots(a, utc(2026, 12, 7), utc(2026, 12, 8))
    assert [localize(s.start_utc, "Asia/Jakarta").strftime("%H:%M") for s in slots] == expected
    assert all(localize(s.end_utc, "Asia/Jakarta").time() <= time(11) for s in slots)


def test_partial_last_slot_is_dropped():
    a = avail("Asia/Jakarta", [WeeklyRule(MON, time(9), time(10, 45))], slot_minutes=30)
    slots = expand_slots(a, utc(2026, 12, 7), utc(2026, 12, 8))
    assert [localize(s.start_utc, "Asia/Jakarta").strftime("%H:%M") for s in slots] == ["09:00", "09:30", "10:00"]


def test_query_window_keeps_only_whole_slots_and_keeps_the_grid():
    a = avail("UTC", [WeeklyRule(MON, time(9), time(12))])
    slots = expand_slots(a, utc(2026, 12, 7, 9, 30), utc(2026, 12, 7, 11, 30))
    assert starts(slots) == [utc(2026, 12, 7, 10)]


def test_capacity_is_carried_on_each_slot():
    a = avail("Asia/Colombo", [WeeklyRule(MON, time(9), time(10))], capacity=4)
    assert expand_slots(a, utc(2026, 12, 7), utc(2026, 12, 8)) == [Slot(utc(2026, 12, 7, 3, 30), utc(2026, 12, 7, 4, 30), 4)]


def test_naive_window_is_refused():
    a = avail("UTC", [WeeklyRule(MON, time(9), time(10))])
    with pytest.raises(NaiveDatetime, match="window_start_utc"):
        expand_slots(a, datetime(2026, 12, 7), utc(2026, 12, 8))


# --- zones -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tz, expected", [
    ("Asia/Jakarta", "Mon, Dec 7, 2026, 09:00 (Asia/Jakarta, UTC+07:00)"),
    ("Asia/Kathmandu", "Mon, Dec 7, 2026, 07:45 (Asia/Kathmandu, UTC+05:45)"),
    ("Indian/Maldives", "Mon, Dec 7, 2026, 07:00 (Indian/Maldives, UTC+05:00)"),
    ("Europe/Stockholm", "Mon, Dec 7, 2026, 03:00 (Europe/Stockholm, UTC+01:00)"),
])
def test_format_in_zone_names_the_zone_and_offset(tz, expected):
    assert format_in_zone(utc(2026, 12, 7, 2), tz) == expected


def test_localize_returns_the_same_instant_in_the_zone():
    local = localize(utc(2026, 12, 7, 2), "Asia/Manila")
    assert (local.hour, local.utcoffset(), local) == (10, timedelta(hours=8), utc(2026, 12, 7, 2))
    with pytest.raises(NaiveDatetime):
        localize(datetime(2026, 12, 7, 2), "Asia/Manila")


@pytest.mark.parametrize("bad", ["99", "", "Mars/Olympus", None, "asia/jakarta"])
def test_validate_tz_rejects_non_iana_names(bad):
    with pytest.raises(InvalidTimeZone, match="Unknown time zone"):
        validate_tz(bad)


def test_resolve_tz_treats_moodle_99_as_unknown():
    assert validate_tz("Pacific/Kiritimati") == "Pacific/Kiritimati"
    assert resolve_tz("99", "Asia/Jakarta") == "Asia/Jakarta"
    assert resolve_tz("Asia/Dhaka", "Asia/Jakarta") == "Asia/Dhaka"
    with pytest.raises(InvalidTimeZone):
        resolve_tz("99", "99")


# --- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"tz": "99"}, "Unknown time zone '99'"),
    ({"valid_from": date(2026, 5, 1), "valid_until": date(2026, 4, 1)},
     "The dates are reversed: the first day 2026-05-01 is after the last day 2026-04-01."),
    ({"capacity": 0}, "Participants per slot must be at least 1."),
    ({"slot_minutes": 0}, "The slot length must be a whole number of minutes, at least 1"),
    ({"buffer_minutes": -5}, "The buffer must be a whole number of minutes, 0 or more"),
    ({"weekly": [WeeklyRule(3, time(14), time(13))]}, r"Weekly hours, row 1 \(Thu 14:00–13:00\): the end is not after the start."),
    ({"weekly": [WeeklyRule(7, time(9), time(10))]}, "row 1: choose a day of the week"),
    ({"weekly": [WeeklyRule(0, time(9), time(9, 20))]}, r"Weekly hours, row 1 \(Mon 09:00–09:20\) is shorter than one 30-minute slot."),
    ({"weekly": [WeeklyRule(0, time(9, tzinfo=UTC), time(10))]}, "must be wall-clock times in Asia/Jakarta"),
    ({"one_off": [(datetime(2026, 5, 2, 10), datetime(2026, 5, 2, 9))]}, "One-off time 1 .*the end is not after the start"),
    ({"one_off": [(datetime(2026, 5, 2, 10), datetime(2026, 5, 2, 10, 10))]}, "shorter than one 30-minute slot"),
    ({"exceptions": ["2026-05-01"]}, "must be a date"),
])
def test_validate_availability_names_the_problem(changes, message):
    fields = {"tz": "Asia/Jakarta", "valid_from": date(2026, 1, 1), "valid_until": date(2026, 12, 31),
              "weekly": [WeeklyRule(0, time(9), time(10))], "slot_minutes": 30}
    fields.update(changes)
    with pytest.raises(InvalidAvailability, match=message):
        validate_availability(Availability(**fields))


def test_valid_availability_passes_and_expand_validates_first():
    good = avail("Asia/Jakarta", [WeeklyRule(0, time(9), time(10))])
    assert validate_availability(good) is good
    with pytest.raises(InvalidAvailability, match="Participants per slot"):
        expand_slots(avail("Asia/Jakarta", capacity=0), utc(2026, 1, 1), utc(2026, 1, 2))


@pytest.mark.parametrize("locale, day_part", [("id", "Sen, 7 Des 2026"), ("ko", "2026년 12월 7일 (월)")])
def test_format_in_zone_uses_the_locale_and_keeps_the_zone_and_offset(locale, day_part):
    shown = format_in_zone(utc(2026, 12, 7, 2), "Asia/Jakarta", locale=locale)
    assert shown.startswith(day_part) and shown.endswith("(Asia/Jakarta, UTC+07:00)")
