"""Business calendar arithmetic: hand-checked cases plus a property test against a minute-stepping oracle."""

from __future__ import annotations

import dataclasses
import timeit
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.calendar import (
    MAX_CLOSED_DAYS,
    BusinessCalendar,
    Closure,
    parse_duration,
    parse_weekly_hours,
)

UTC = timezone.utc
BNE = ZoneInfo("Australia/Brisbane")
SYD = ZoneInfo("Australia/Sydney")
NYC = ZoneInfo("America/New_York")
H = timedelta(hours=1)
M = timedelta(minutes=1)

WEEKDAYS_9_5 = parse_weekly_hours({"mon-fri": "09:00-17:00"})


def brisbane(**kw) -> BusinessCalendar:
    return BusinessCalendar("bne", "Australia/Brisbane", WEEKDAYS_9_5, "AU", "QLD", **kw)


def bne(*args) -> datetime:
    return datetime(*args, tzinfo=BNE)


# ----------------------------------------------------------------------------------------------------------
# spec parsing


def test_parse_weekly_hours_forms():
    assert parse_weekly_hours({"mon-fri": "08:30-17:00"}) == {d: ((time(8, 30), time(17, 0)),) for d in range(5)}
    hours = parse_weekly_hours(
        {"Monday": ["08:00-12:00", "13:00-17:00"], "tue": "09:00-12:00, 12:00-24:00", "sat-sun": "closed",
         "wed": []}
    )
    assert hours == {
        0: ((time(8), time(12)), (time(13), time(17))),
        1: ((time(9), time(0)),),  # touching intervals merge; time(0, 0) as an end means 24:00
    }
    assert sorted(parse_weekly_hours({"daily": "00:00-24:00"})) == list(range(7))
    assert sorted(parse_weekly_hours({"sun-thu": "09:00-17:00"})) == [0, 1, 2, 3, 6]  # wraps over the week end
    assert sorted(parse_weekly_hours({"mon, wed-thu": "09:00-10:00"})) == [0, 2, 3]
    assert sorted(parse_weekly_hours({"weekends": "10:00-14:00"})) == [5, 6]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mon": ["08:00-12:00", "11:00-13:00"]}, "intervals 08:00-12:00 and 11:00-13:00 overlap"),
        ({"mon": "17:00-08:30"}, "'17:00-08:30' ends at or before it starts"),
        ({"mon": "09:00-09:00"}, "ends at or before it starts"),
        ({"funday": "09:00-17:00"}, "unknown day 'funday'"),
        ({"mon-fry": "09:00-17:00"}, "unknown day 'fry'"),
        ({"mon-fri": "09:00-17:00", "thu": "10:00-12:00"}, "thursday is given twice: in 'mon-fri' and in 'thu'"),
        ({"mon": "25:00-26:00"}, "'25:00' is not a valid time of day"),
        ({"mon": "24:00-24:00"}, "24:00 can only end an interval"),
        ({"mon": "9am-5pm"}, "'9am' is not a time of day"),
        ({"mon": "09:00"}, "is not an interval"),
        ({"mon": 9}, "expected '08:30-17:00'"),
        ({3: "09:00-17:00"}, "day key 3 must be a day name"),
    ],
)
def test_parse_weekly_hours_errors(spec, message):
    with pytest.raises(ValueError) as err:
        parse_weekly_hours(spec)
    assert message in str(err.value)


def test_parse_duration():
    assert parse_duration("4h") == 4 * H
    assert parse_duration("30m") == 30 * M
    assert parse_duration("1h30m") == 90 * M
    assert parse_duration("1h 30 min") == 90 * M
    assert parse_duration("1.5h") == 90 * M
    assert parse_duration("2d") == 48 * H  # d = 24 hours of business time, not a business day
    assert parse_duration("1d4h") == 28 * H
    assert parse_duration(4) == 4 * H
    assert parse_duration(0.25) == 15 * M
    assert parse_duration("8") == 8 * H
    assert parse_duration("0m") == timedelta(0)


@pytest.mark.parametrize("bad", ["", "4x", "h", "30m4h", "-4h", "4h4h", "four hours", -1, float("nan"), True, None,
                                 "99999d"])
def test_parse_duration_errors(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


# ----------------------------------------------------------------------------------------------------------
# construction errors


def test_construction_errors():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        BusinessCalendar("x", "Mars/Olympus", WEEKDAYS_9_5)
    with pytest.raises(ValueError, match="unknown holiday country 'XX'"):
        BusinessCalendar("x", "UTC", WEEKDAYS_9_5, "XX")
    with pytest.raises(ValueError, match=r"unknown holiday subdivision 'ZZ' for country 'AU': expected one of .*QLD"):
        BusinessCalendar("x", "UTC", WEEKDAYS_9_5, "AU", "ZZ")
    with pytest.raises(ValueError, match="given without a holiday_country"):
        BusinessCalendar("x", "UTC", WEEKDAYS_9_5, None, "QLD")
    with pytest.raises(ValueError, match="calendar has no working hours"):
        BusinessCalendar("x", "UTC", {})
    with pytest.raises(ValueError, match="calendar has no working hours"):
        BusinessCalendar("x", "UTC", parse_weekly_hours({"daily": "closed"}))
    with pytest.raises(ValueError, match="overlap"):
        BusinessCalendar("x", "UTC", {0: ((time(9), time(12)), (time(11), time(13)))})
    with pytest.raises(ValueError, match="weekday keys must be 0"):
        BusinessCalendar("x", "UTC", {7: ((time(9), time(12)),)})
    with pytest.raises(ValueError, match="ends before it starts"):
        Closure(date(2026, 1, 5), time(14), time(12))


def test_naive_inputs_rejected():
    cal = brisbane()
    naive = datetime(2026, 3, 10, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_business_time(naive, 4 * H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.business_time_between(bne(2026, 3, 10, 9), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(naive)
    with pytest.raises(ValueError, match="pause #1 start must be timezone-aware"):
        cal.add_business_time(bne(2026, 3, 10, 9), H, [(naive, None)])
    with pytest.raises(ValueError, match="pause #1 ends"):
        cal.add_business_time(bne(2026, 3, 10, 9), H, [(bne(2026, 3, 10, 12), bne(2026, 3, 10, 11))])
    with pytest.raises(ValueError, match="must not be negative"):
        cal.add_business_time(bne(2026, 3, 10, 9), -H)


def test_calendar_closed_for_years_is_an_error_not_a_hang():
    mondays = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(MAX_CLOSED_DAYS // 7 + 10)]
    cal = BusinessCalendar("x", "UTC", parse_weekly_hours({"mon": "09:00-17:00"}),
                           closures=tuple(Closure(d, name="shut") for d in mondays))
    with pytest.raises(ValueError, match="no open business time in"):
        cal.add_business_time(datetime(2026, 1, 1, tzinfo=UTC), H)
    with pytest.raises(ValueError, match="no open business time in"):
        cal.next_open(datetime(2026, 1, 1, tzinfo=UTC))


def test_calendar_is_frozen_hashable_and_normalized():
    a = brisbane()
    b = brisbane()
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.timezone = "UTC"  # type: ignore[misc]
    assert a.weekly_hours == WEEKDAYS_9_5
    assert a.open_intervals(date(2026, 3, 10)) is a.open_intervals(date(2026, 3, 10))  # cached


# ----------------------------------------------------------------------------------------------------------
# holidays


def test_queensland_public_holidays_from_the_library():
    cal = brisbane()
    qld = holidays.country_holidays("AU", subdiv="QLD", years=[2026, 2027])
    ekka = [d for d, name in qld.items() if name == "The Royal Queensland Show"]
    assert sorted(ekka) == [date(2026, 8, 12), date(2027, 8, 11)]
    assert cal.holiday_name(date(2026, 8, 12)) == "The Royal Queensland Show"
    assert cal.holiday_name(date(2027, 8, 11)) == "The Royal Queensland Show"
    assert cal.holiday_name(date(2026, 12, 28)) == "Boxing Day (observed)"
    assert cal.holiday_name(date(2027, 3, 26)) == "Good Friday"
    assert cal.holiday_name(date(2026, 8, 13)) is None
    assert cal.open_intervals(date(2026, 8, 12)) == ()
    # Ekka is a Brisbane holiday, not a New South Wales one
    nsw = BusinessCalendar("syd", "Australia/Sydney", WEEKDAYS_9_5, "AU", "NSW")
    assert nsw.holiday_name(date(2026, 8, 12)) is None
    assert len(nsw.open_intervals(date(2026, 8, 12))) == 1
    # every library public holiday on a weekday closes the day
    for d in qld:
        assert cal.open_intervals(d) == ()


def test_ekka_closes_the_day():
    cal = brisbane()
    # Tue 15:00 -> 2h on Tuesday, Wednesday is the Ekka holiday, 2h on Thursday
    assert cal.add_business_time(bne(2026, 8, 11, 15), 4 * H) == bne(2026, 8, 13, 11)
    assert cal.add_business_time(bne(2026, 8, 12, 10), 2 * H) == bne(2026, 8, 13, 11)  # starts on the holiday


def test_christmas_hand_checked():
    # Thu 2026-12-24 16:00 Brisbane, 4 business hours, Mon-Fri 09:00-17:00 with QLD holidays:
    #   Thu 16:00-17:00 = 1h; Fri 25 Christmas Day; Sat 26, Sun 27 weekend; Mon 28 Boxing Day (observed);
    #   Tue 29 09:00 + 3h = 12:00.
    cal = brisbane()
    due = cal.add_business_time(bne(2026, 12, 24, 16), 4 * H)
    assert due == bne(2026, 12, 29, 12)
    assert due.tzinfo == BNE and due.utcoffset() == 10 * H
    assert cal.business_time_between(bne(2026, 12, 24, 16), due) == 4 * H


def test_easter_multi_day():
    cal = brisbane()
    # Thu before Easter 09:00 + 16h: Thu 8h, Good Friday, weekend, Easter Monday, Tue 8h -> Tue 17:00
    assert cal.add_business_time(bne(2026, 4, 2, 9), 16 * H) == bne(2026, 4, 7, 17)


# ----------------------------------------------------------------------------------------------------------
# weekends, after hours, multi-day


def test_weekend_and_friday_evening():
    cal = brisbane()
    assert cal.add_business_time(bne(2026, 3, 13, 15), 4 * H) == bne(2026, 3, 16, 11)  # Fri 15:00
    assert cal.add_business_time(bne(2026, 3, 13, 19), 4 * H) == bne(2026, 3, 16, 13)  # Fri evening
    assert cal.add_business_time(bne(2026, 3, 14, 10), 2 * H) == bne(2026, 3, 16, 11)  # Saturday
    assert cal.business_time_between(bne(2026, 3, 13, 15), bne(2026, 3, 16, 11)) == 4 * H


def test_clock_starts_outside_hours():
    cal = brisbane()
    assert cal.add_business_time(bne(2026, 3, 10, 7), H) == bne(2026, 3, 10, 10)  # before opening
    assert cal.add_business_time(bne(2026, 3, 10, 18, 30), H) == bne(2026, 3, 11, 10)  # after closing
    assert cal.add_business_time(bne(2026, 3, 10, 17), H) == bne(2026, 3, 11, 10)  # exactly at closing
    assert cal.next_open(bne(2026, 3, 10, 18, 30)) == bne(2026, 3, 11, 9)
    assert cal.next_open(bne(2026, 3, 13, 17)) == bne(2026, 3, 16, 9)
    assert cal.next_open(bne(2026, 3, 10, 11)) == bne(2026, 3, 10, 11)
    assert cal.next_open(bne(2026, 12, 24, 17)) == bne(2026, 12, 29, 9)
    assert cal.is_open(bne(2026, 3, 10, 9)) and not cal.is_open(bne(2026, 3, 10, 17))
    assert not cal.is_open(bne(2026, 3, 14, 12)) and not cal.is_open(bne(2026, 8, 12, 12))


def test_duration_ends_at_closing_time_not_next_opening():
    cal = brisbane()
    assert cal.add_business_time(bne(2026, 3, 10, 13), 4 * H) == bne(2026, 3, 10, 17)


def test_zero_duration_is_the_start():
    cal = brisbane()
    saturday = datetime(2026, 3, 14, 2, tzinfo=UTC)
    due = cal.add_business_time(saturday, timedelta(0))
    assert due == saturday and due.tzinfo == BNE


def test_multi_day_40_hours():
    cal = brisbane()
    assert cal.add_business_time(bne(2026, 3, 9, 9), 40 * H) == bne(2026, 3, 13, 17)
    assert cal.add_business_time(bne(2026, 3, 9, 10), 40 * H) == bne(2026, 3, 16, 10)
    assert cal.business_time_between(bne(2026, 3, 9, 10), bne(2026, 3, 16, 10)) == 40 * H
    assert cal.business_time_between(bne(2026, 3, 16, 10), bne(2026, 3, 9, 10)) == -40 * H
    # two full weeks plus Ekka week (one holiday): 8h/day
    assert cal.business_time_between(bne(2026, 8, 3), bne(2026, 8, 17)) == 9 * 8 * H


def test_start_in_another_time_zone():
    cal = brisbane()
    start = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)  # Tue 2026-03-10 09:00 in Brisbane
    due = cal.add_business_time(start, 4 * H)
    assert due == bne(2026, 3, 10, 13) and due.tzinfo == BNE
    assert due.isoformat() == "2026-03-10T13:00:00+10:00"
    late_utc = datetime(2026, 3, 10, 6, 30, tzinfo=UTC)  # 16:30 Brisbane
    assert cal.add_business_time(late_utc, H) == bne(2026, 3, 11, 9, 30)
    ny_start = datetime(2026, 3, 9, 19, 0, tzinfo=NYC)  # 2026-03-10 09:00 Brisbane (NY is on EDT)
    assert cal.add_business_time(ny_start, 2 * H) == bne(2026, 3, 10, 11)


# ----------------------------------------------------------------------------------------------------------
# closures and pauses


def test_partial_and_whole_day_closures():
    cal = brisbane(closures=(
        Closure(date(2026, 3, 11), time(12), time(14), "all hands"),
        Closure(date(2026, 3, 12), start=time(15), name="early close"),  # 15:00-24:00
        Closure(date(2026, 3, 13), name="office move"),
        Closure(date(2026, 3, 17), end=time(11)),  # 00:00-11:00
    ))
    assert cal.add_business_time(bne(2026, 3, 11, 10), 4 * H) == bne(2026, 3, 11, 16)
    assert cal.add_business_time(bne(2026, 3, 12, 14), 2 * H) == bne(2026, 3, 16, 10)
    assert cal.holiday_name(date(2026, 3, 13)) == "office move"
    assert cal.holiday_name(date(2026, 3, 11)) is None  # partial closure is not a day off
    assert cal.next_open(bne(2026, 3, 17, 8)) == bne(2026, 3, 17, 11)
    assert cal.business_time_between(bne(2026, 3, 11), bne(2026, 3, 18)) == (6 + 6 + 0 + 8 + 6) * H


def test_pause_spanning_the_night():
    cal = brisbane()
    start = bne(2026, 3, 9, 16)
    pauses = [(bne(2026, 3, 9, 16, 30), bne(2026, 3, 10, 10))]
    assert cal.add_business_time(start, 4 * H, pauses) == bne(2026, 3, 10, 13, 30)
    assert cal.business_time_between(start, bne(2026, 3, 10, 13, 30), pauses) == 4 * H


def test_pause_starting_before_the_clock_and_overlapping_pauses():
    cal = brisbane()
    pauses = [(bne(2026, 3, 9, 8), bne(2026, 3, 9, 11)), (bne(2026, 3, 9, 10), bne(2026, 3, 9, 11, 30)),
              (datetime(2026, 3, 9, 4, tzinfo=UTC), datetime(2026, 3, 9, 5, tzinfo=UTC))]  # 14:00-15:00 local
    assert cal.add_business_time(bne(2026, 3, 9, 10), 2 * H, pauses) == bne(2026, 3, 9, 13, 30)
    assert cal.add_business_time(bne(2026, 3, 9, 10), 4 * H, pauses) == bne(2026, 3, 9, 16, 30)


def test_open_ended_pause():
    cal = brisbane()
    start = bne(2026, 3, 9, 10)
    pauses = [(bne(2026, 3, 9, 12), None)]
    assert cal.add_business_time(start, 4 * H, pauses) is None  # clock paused, no due date
    assert cal.add_business_time(start, H, pauses) == bne(2026, 3, 9, 11)  # due before the pause began
    assert cal.add_business_time(start, 2 * H, pauses) == bne(2026, 3, 9, 12)
    assert cal.business_time_between(start, bne(2026, 3, 20), pauses) == 2 * H
    already = [(bne(2026, 3, 1), None)]
    assert cal.add_business_time(start, M, already) is None
    assert cal.add_business_time(start, timedelta(0), already) == start


def test_long_pause_is_skipped_quickly():
    cal = brisbane()
    start = bne(2026, 1, 5, 9)
    pauses = [(bne(2026, 1, 5, 10), bne(2029, 1, 2, 10))]
    assert cal.add_business_time(start, 2 * H, pauses) == bne(2029, 1, 2, 11)


# ----------------------------------------------------------------------------------------------------------
# DST


def test_sydney_dst_start_first_sunday_of_october():
    daily = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "09:00-17:00"}))
    (a, b), = daily.open_intervals(date(2026, 10, 4))  # clocks go 02:00 -> 03:00
    assert b - a == 8 * H
    due = daily.add_business_time(datetime(2026, 10, 3, 16, tzinfo=SYD), 4 * H)
    assert due == datetime(2026, 10, 4, 12, tzinfo=SYD) and due.utcoffset() == 11 * H
    assert daily.business_time_between(datetime(2026, 10, 3, 9, tzinfo=SYD), datetime(2026, 10, 4, 17, tzinfo=SYD)) == 16 * H
    around = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "00:00-24:00"}))
    (a, b), = around.open_intervals(date(2026, 10, 4))
    assert b - a == 23 * H
    night = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "01:00-05:00"}))
    (a, b), = night.open_intervals(date(2026, 10, 4))
    assert b - a == 3 * H
    gap = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "02:15-02:45"}))
    assert gap.open_intervals(date(2026, 10, 4)) == ()  # wall times that do not exist
    starts_in_gap = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "02:30-04:00"}))
    (a, b), = starts_in_gap.open_intervals(date(2026, 10, 4))
    assert a == datetime(2026, 10, 4, 3, tzinfo=SYD) and b - a == H  # shifted forward to the transition


def test_sydney_dst_end_first_sunday_of_april():
    around = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "00:00-24:00"}))
    (a, b), = around.open_intervals(date(2026, 4, 5))  # clocks go 03:00 -> 02:00
    assert b - a == 25 * H
    night = BusinessCalendar("syd", "Australia/Sydney", parse_weekly_hours({"daily": "02:30-05:00"}))
    (a, b), = night.open_intervals(date(2026, 4, 5))
    assert a.astimezone(SYD).utcoffset() == 11 * H  # the first 02:30
    assert b - a == timedelta(hours=3, minutes=30)
    work = BusinessCalendar("syd", "Australia/Sydney", WEEKDAYS_9_5, "AU", "NSW")
    # Thu 2026-04-02 15:00 AEDT; Good Friday, weekend (DST ends), Easter Monday: 2h Thu + 2h Tue AEST
    due = work.add_business_time(datetime(2026, 4, 2, 15, tzinfo=SYD), 4 * H)
    assert due == datetime(2026, 4, 7, 11, tzinfo=SYD) and due.utcoffset() == 10 * H


def test_sydney_working_weekend_over_dst_and_nsw_labour_day():
    work = BusinessCalendar("syd", "Australia/Sydney", WEEKDAYS_9_5, "AU", "NSW")
    assert work.holiday_name(date(2026, 10, 5)) == holidays.country_holidays("AU", subdiv="NSW", years=2026)[date(2026, 10, 5)]
    due = work.add_business_time(datetime(2026, 10, 2, 15, tzinfo=SYD), 4 * H)
    assert due == datetime(2026, 10, 6, 11, tzinfo=SYD) and due.utcoffset() == 11 * H


def test_new_york_dst_march_and_november():
    work = BusinessCalendar("ny", "America/New_York", WEEKDAYS_9_5, "US")
    fri = datetime(2026, 3, 6, 16, tzinfo=NYC)  # EST
    due = work.add_business_time(fri, 4 * H)
    assert due == datetime(2026, 3, 9, 12, tzinfo=NYC) and due.utcoffset() == -4 * H  # EDT
    assert work.business_time_between(fri, due) == 4 * H
    daily = BusinessCalendar("ny", "America/New_York", parse_weekly_hours({"daily": "09:00-17:00"}))
    for d in (date(2026, 3, 8), date(2026, 11, 1)):
        (a, b), = daily.open_intervals(d)
        assert b - a == 8 * H
    assert daily.add_business_time(datetime(2026, 3, 7, 16, tzinfo=NYC), 2 * H) == datetime(2026, 3, 8, 10, tzinfo=NYC)
    night = BusinessCalendar("ny", "America/New_York", parse_weekly_hours({"daily": "01:00-02:00"}))
    (a, b), = night.open_intervals(date(2026, 11, 1))  # 01:00 EDT (first occurrence) to 02:00 EST
    assert b - a == 2 * H
    spring = BusinessCalendar("ny", "America/New_York", parse_weekly_hours({"daily": "02:00-04:00"}))
    (a, b), = spring.open_intervals(date(2026, 3, 8))
    assert b - a == H and a == datetime(2026, 3, 8, 3, tzinfo=NYC)
    # a whole-day calendar counts the real elapsed time of the 23h / 25h days
    around = BusinessCalendar("ny", "America/New_York", parse_weekly_hours({"daily": "00:00-24:00"}))
    assert around.business_time_between(datetime(2026, 3, 8, tzinfo=NYC), datetime(2026, 3, 9, tzinfo=NYC)) == 23 * H
    assert around.business_time_between(datetime(2026, 11, 1, tzinfo=NYC), datetime(2026, 11, 2, tzinfo=NYC)) == 25 * H
    due = around.add_business_time(datetime(2026, 11, 1, tzinfo=NYC), 2 * H)  # lands in the repeated hour
    assert (due.hour, due.fold, due.utcoffset()) == (1, 1, -5 * H)  # the second 01:00, EST
    assert due.astimezone(UTC) == datetime(2026, 11, 1, 6, tzinfo=UTC)


def test_performance_is_microseconds_scale():
    cal = brisbane()
    start = bne(2026, 3, 10, 10)
    cal.add_business_time(start, 40 * H)  # warm the per-date cache
    n = 2000
    per_call = timeit.timeit(lambda: cal.add_business_time(start, 4 * H), number=n) / n
    assert per_call < 500e-6  # generous: typically ~10 µs
    per_call = timeit.timeit(lambda: cal.add_business_time(start, 40 * H), number=n) / n
    assert per_call < 1e-3


# ----------------------------------------------------------------------------------------------------------
# independent oracle: minute stepping over wall-clock tables built by scanning UTC minutes
#
# The oracle shares no code with engine.calendar. For each (zone, local date) it scans UTC minutes and
# records, for every wall-clock minute W of the day (and 24:00), the FIRST UTC minute whose local wall time
# is >= W: that is the documented DST rule (gap -> first instant after the gap, overlap -> first occurrence)
# stated as a search rather than computed. Open time is then counted one minute at a time.

_FIRST_INSTANT: dict[tuple[str, date], list[datetime]] = {}


def _first_instant_table(zone_name: str, day: date) -> list[datetime]:
    key = (zone_name, day)
    table = _FIRST_INSTANT.get(key)
    if table is not None:
        return table
    zone = ZoneInfo(zone_name)
    midnight = datetime(day.year, day.month, day.day)
    u = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=15)
    table = []
    while len(table) <= 1440:
        wall = u.astimezone(zone).replace(tzinfo=None)
        while len(table) <= 1440 and midnight + timedelta(minutes=len(table)) <= wall:
            table.append(u)
        u += M
    _FIRST_INSTANT[key] = table
    return table


class Oracle:
    def __init__(self, zone_name, weekly_minutes, country, subdiv, closures_minutes):
        self.zone_name = zone_name
        self.zone = ZoneInfo(zone_name)
        self.weekly = weekly_minutes  # weekday -> [(start_min, end_min)] with end <= 1440
        self.holidays = holidays.country_holidays(country, subdiv=subdiv) if country else {}
        self.closures = closures_minutes  # [(date, start_min, end_min)]
        self._day_cache: dict[date, list[tuple[datetime, datetime]]] = {}

    def day_intervals(self, day):
        hit = self._day_cache.get(day)
        if hit is not None:
            return hit
        open_minutes = set()
        if day not in self.holidays:
            for s, e in self.weekly.get(day.weekday(), []):
                open_minutes.update(range(s, e))
            for cday, s, e in self.closures:
                if cday == day:
                    open_minutes.difference_update(range(s, e))
        table = _first_instant_table(self.zone_name, day)
        out = []
        m = 0
        while m < 1440:
            if m in open_minutes:
                e = m
                while e < 1440 and e in open_minutes:
                    e += 1
                if table[m] < table[e]:
                    out.append((table[m], table[e]))
                m = e
            else:
                m += 1
        self._day_cache[day] = out
        return out

    def is_open(self, u):
        d = u.astimezone(self.zone).date()
        return any(a <= u < b for day in (d - timedelta(days=1), d, d + timedelta(days=1))
                   for a, b in self.day_intervals(day))

    @staticmethod
    def paused(u, pauses):
        return any(ps <= u and (pe is None or u < pe) for ps, pe in pauses)

    def add(self, start, minutes, pauses, limit=40 * 1440):
        u = start.astimezone(UTC)
        if minutes == 0:
            return u
        open_end = min((ps for ps, pe in pauses if pe is None), default=None)
        count = 0
        for _ in range(limit):
            if open_end is not None and u >= open_end:
                return None
            if self.is_open(u) and not self.paused(u, pauses):
                count += 1
                if count == minutes:
                    return u + M
            u += M
        raise AssertionError("oracle step limit")

    def between(self, start, end, pauses):
        u, v = start.astimezone(UTC), end.astimezone(UTC)
        n = 0
        while u < v:
            if self.is_open(u) and not self.paused(u, pauses):
                n += 1
            u += M
        return n * M

    def next_open(self, at):
        u = at.astimezone(UTC)
        while not self.is_open(u):
            u += M
        return u


# each zone with its own DST transition dates (and a few holiday / ordinary dates)
ZONE_DATES = {
    "Australia/Sydney": [date(2026, 10, 4), date(2026, 4, 5), date(2027, 4, 4), date(2026, 12, 24)],
    "Australia/Lord_Howe": [date(2026, 10, 4), date(2026, 4, 5)],  # a 30-minute DST shift
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1), date(2026, 7, 3)],
    "Europe/London": [date(2026, 3, 29), date(2026, 10, 25)],
    "Australia/Brisbane": [date(2026, 8, 12), date(2026, 12, 24), date(2026, 4, 3), date(2026, 6, 17)],
}
ZONES = sorted(ZONE_DATES)
BASE_DATES = sorted({d for ds in ZONE_DATES.values() for d in ds})
REGIONS = [None, ("AU", "QLD"), ("AU", "NSW"), ("US", None)]
INPUT_ZONES = [UTC, BNE, NYC, timezone(timedelta(hours=5, minutes=45)), None]  # None = the calendar's own zone


@st.composite
def day_hours(draw):
    # boundaries on a 30-minute grid, biased towards 00:30-03:30 where the DST transitions of ZONES happen
    point = st.one_of(st.sampled_from(range(30, 211, 30)), st.sampled_from(range(0, 1441, 30)))
    points = sorted(draw(st.sets(point, max_size=4)))
    if len(points) % 2:
        points = points[:-1]
    return [(points[k], points[k + 1]) for k in range(0, len(points), 2)]


def _to_time(minutes):
    return time(0, 0) if minutes == 1440 else time(minutes // 60, minutes % 60)


@st.composite
def scenarios(draw):
    zone_name = draw(st.sampled_from(ZONES))
    base = draw(st.sampled_from(ZONE_DATES[zone_name]))
    weekly = {wd: draw(day_hours()) for wd in range(7)}
    weekly = {wd: ivs for wd, ivs in weekly.items() if ivs}
    assume(weekly)
    region = draw(st.sampled_from(REGIONS))
    closures = []
    for _ in range(draw(st.integers(0, 2))):
        cday = base + timedelta(days=draw(st.integers(-1, 4)))
        if draw(st.booleans()):
            closures.append((cday, 0, 1440))
        else:
            s, e = sorted(draw(st.sets(st.sampled_from(range(0, 1441, 30)), min_size=2, max_size=2)))
            closures.append((cday, s, e))
    start = (datetime(base.year, base.month, base.day, tzinfo=UTC) - timedelta(days=1)
             + draw(st.integers(0, 3 * 1440)) * M)
    input_zone = draw(st.sampled_from(INPUT_ZONES)) or ZoneInfo(zone_name)
    start = start.astimezone(input_zone)
    weekly_open = sum(e - s for ivs in weekly.values() for s, e in ivs)
    minutes = draw(st.integers(0, min(12 * 60, weekly_open)))
    pauses = []
    for _ in range(draw(st.integers(0, 2))):
        ps = start + draw(st.integers(-600, 3000)) * M
        pe = None if draw(st.integers(0, 5)) == 0 else ps + draw(st.integers(0, 2000)) * M
        pauses.append((ps, pe))
    return zone_name, weekly, region, closures, start, minutes, pauses


def _build(zone_name, weekly, region, closures):
    country, subdiv = region or (None, None)
    cal = BusinessCalendar(
        "prop", zone_name,
        {wd: tuple((_to_time(s), _to_time(e)) for s, e in ivs) for wd, ivs in weekly.items()},
        country, subdiv,
        tuple(Closure(d, None if (s, e) == (0, 1440) else _to_time(s), None if (s, e) == (0, 1440) else _to_time(e))
              for d, s, e in closures),
    )
    return cal, Oracle(zone_name, weekly, country, subdiv, closures)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenarios())
def test_matches_minute_stepping_oracle(scenario):
    zone_name, weekly, region, closures, start, minutes, pauses = scenario
    cal, oracle = _build(zone_name, weekly, region, closures)
    duration = minutes * M

    due = cal.add_business_time(start, duration, pauses)
    expected = oracle.add(start, minutes, pauses)
    # compare in UTC: an ambiguous local time never compares == to another zone's datetime (PEP 495)
    assert (due and due.astimezone(UTC)) == expected
    if due is not None:
        assert due.tzinfo == cal.zone
        assert cal.business_time_between(start, due, pauses) == duration
        assert oracle.between(start, due, pauses) == duration

    end = start + timedelta(minutes=minutes * 2 + 90)
    between = cal.business_time_between(start, end, pauses)
    assert between == oracle.between(start, end, pauses)
    assert cal.business_time_between(end, start, pauses) == -between
    back = cal.add_business_time(start, between, pauses)
    # instants, not wall clocks: `end` is wall-clock arithmetic in the input zone, so it can name a local time
    # a DST gap skips (02:00 on a spring-forward day), which same-zone comparisons order by its wall time
    assert back is not None and back.astimezone(UTC) <= end.astimezone(UTC)

    assert cal.next_open(start).astimezone(UTC) == oracle.next_open(start)
    assert cal.is_open(start) == oracle.is_open(start.astimezone(UTC))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.sampled_from(BASE_DATES),
    st.integers(0, 3 * 1440),
    st.integers(0, 60 * 60),
)
def test_round_trip_on_a_working_week(zone_name, base, offset, minutes):
    cal = BusinessCalendar("rt", zone_name, WEEKDAYS_9_5, "AU", "QLD")
    start = datetime(base.year, base.month, base.day, tzinfo=UTC) + offset * M
    due = cal.add_business_time(start, minutes * M)
    assert cal.business_time_between(start, due) == minutes * M
    if minutes:
        assert cal.is_open(due - M)
