from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.catalog.opening_hours import OpeningHours, OpeningHoursError, OpenStatus, status_at

MO, TU, WE, TH, FR, SA, SU = range(7)


def at(weekday: int, hour: int, minute: int = 0, *, week: int = 0) -> datetime:
    """Naive local time in the week of Monday 2026-11-16."""
    return datetime(2026, 11, 16, hour, minute) + timedelta(days=weekday + 7 * week)


def parse(spec: str) -> OpeningHours:
    return OpeningHours.parse(spec)


def open_days(spec: str, hour: int = 12) -> list[int]:
    hours = parse(spec)
    return [day for day in range(7) if hours.is_open(at(day, hour))]


# --- syntax ---------------------------------------------------------------------------


def test_weekday_range_with_single_interval() -> None:
    hours = parse("Mo-Fr 09:00-18:00")

    assert hours.spec == "Mo-Fr 09:00-18:00"
    assert hours.intervals_on(MO) == ((time(9), time(18)),)
    assert hours.intervals_on(SA) == ()
    assert open_days("Mo-Fr 09:00-18:00") == [MO, TU, WE, TH, FR]


def test_interval_bounds_are_start_inclusive_end_exclusive() -> None:
    hours = parse("Mo-Fr 09:00-18:00")

    assert not hours.is_open(at(MO, 8, 59))
    assert hours.is_open(at(MO, 9, 0))
    assert hours.is_open(at(MO, 17, 59) + timedelta(seconds=59))
    assert not hours.is_open(at(MO, 18, 0))


def test_weekday_list() -> None:
    assert open_days("Mo,We,Fr 10:00-14:00") == [MO, WE, FR]


def test_weekday_list_mixed_with_ranges() -> None:
    assert open_days("Mo,We-Th,Su 10:00-14:00") == [MO, WE, TH, SU]


def test_weekend_range() -> None:
    assert open_days("Sa-Su 10:00-16:00") == [SA, SU]


def test_wrapping_weekday_range() -> None:
    assert open_days("Fr-Mo 10:00-16:00") == [MO, FR, SA, SU]


def test_full_week_range() -> None:
    assert open_days("Mo-Su 08:00-20:00") == list(range(7))


def test_rule_without_weekdays_applies_every_day() -> None:
    hours = parse("10:00-22:00")

    assert all(hours.intervals_on(day) == ((time(10), time(22)),) for day in range(7))


def test_time_list() -> None:
    hours = parse("Mo-Fr 09:00-13:00,14:00-18:00")

    assert hours.intervals_on(TU) == ((time(9), time(13)), (time(14), time(18)))
    assert hours.is_open(at(TU, 12, 30))
    assert not hours.is_open(at(TU, 13, 30))
    assert hours.is_open(at(TU, 14, 0))


def test_overlapping_and_touching_times_are_merged() -> None:
    hours = parse("Mo 09:00-12:00,11:00-13:00,13:00-14:00")

    assert hours.intervals_on(MO) == ((time(9), time(14)),)


def test_end_at_24_00_renders_as_midnight() -> None:
    hours = parse("Mo-Fr 09:00-24:00")

    assert hours.intervals_on(MO) == ((time(9), time(0)),)
    assert hours.is_open(at(MO, 23, 59))
    assert not hours.is_open(at(TU, 0, 30))


def test_range_over_midnight_belongs_to_next_day_after_midnight() -> None:
    hours = parse("Fr-Sa 22:00-02:00")

    assert hours.intervals_on(FR) == ((time(22), time(2)),)
    assert not hours.is_open(at(FR, 1, 0))  # Thursday night is not covered
    assert hours.is_open(at(FR, 23, 0))
    assert hours.is_open(at(SA, 1, 59))
    assert not hours.is_open(at(SA, 2, 0))
    assert hours.is_open(at(SU, 1, 0))  # Saturday night spills into Sunday


def test_rendering_joins_night_shifts_to_the_day_they_start() -> None:
    hours = parse("Mo-Su 00:00-03:00,09:00-24:00")

    assert all(hours.intervals_on(day) == ((time(9), time(3)),) for day in range(7))


def test_rendering_joins_explicit_next_morning() -> None:
    hours = parse("Mo 18:00-24:00; Tu 00:00-03:00,10:00-12:00")

    assert hours.intervals_on(MO) == ((time(18), time(3)),)
    assert hours.intervals_on(TU) == ((time(10), time(12)),)


def test_rendering_does_not_join_when_end_would_be_ambiguous() -> None:
    # Joined, 09:00 to Saturday 10:00 would render as (09:00, 10:00).
    hours = parse("Fr 09:00-24:00; Sa 00:00-10:00")

    assert hours.intervals_on(FR) == ((time(9), time(0)),)
    assert hours.intervals_on(SA) == ((time(0), time(10)),)
    assert hours.next_change(at(FR, 12, 0)) == at(SA, 10, 0)


def test_end_at_00_00_means_midnight() -> None:
    hours = parse("Mo 18:00-00:00")

    assert hours.is_open(at(MO, 23, 0))
    assert not hours.is_open(at(TU, 0, 0))
    assert hours.next_change(at(MO, 20, 0)) == at(TU, 0, 0)


def test_off_and_closed_close_the_named_days() -> None:
    assert open_days("Mo-Su 10:00-20:00; Su off") == [MO, TU, WE, TH, FR, SA]
    assert open_days("Mo-Su 10:00-20:00; Sa,Su closed") == [MO, TU, WE, TH, FR]


def test_later_rule_overrides_earlier_one_for_its_days() -> None:
    hours = parse("Mo-Fr 09:00-18:00; We 12:00-20:00")

    assert hours.intervals_on(TU) == ((time(9), time(18)),)
    assert hours.intervals_on(WE) == ((time(12), time(20)),)
    assert not hours.is_open(at(WE, 10, 0))


def test_override_replaces_the_whole_day_not_merges() -> None:
    hours = parse("Mo-Fr 09:00-13:00,14:00-18:00; Fr 09:00-16:00")

    assert hours.intervals_on(FR) == ((time(9), time(16)),)
    assert hours.is_open(at(FR, 13, 30))


def test_rule_order_matters() -> None:
    assert open_days("Mo-Su 10:00-20:00; Su off") == [MO, TU, WE, TH, FR, SA]
    assert open_days("Su off; Mo-Su 10:00-20:00") == list(range(7))


def test_later_everyday_rule_overrides_everything() -> None:
    hours = parse("Mo-Fr 09:00-18:00; 10:00-12:00")

    assert all(hours.intervals_on(day) == ((time(10), time(12)),) for day in range(7))


def test_override_of_next_day_also_closes_the_night_running_into_it() -> None:
    # As in opening_hours.js: the part after midnight belongs to Saturday.
    hours = parse("Mo-Fr 20:00-02:00; Sa off")

    assert hours.is_open(at(FR, 23, 0))
    assert not hours.is_open(at(SA, 1, 0))
    assert hours.next_change(at(FR, 23, 0)) == at(SA, 0, 0)
    assert hours.intervals_on(FR) == ((time(20), time(0)),)


def test_override_of_start_day_keeps_the_night_after_it() -> None:
    # As in opening_hours.js: replacing Friday keeps Saturday's early hours but drops
    # Friday's early hours (Thursday's night), because those belong to Friday.
    hours = parse("Mo-Su 15:00-03:00; Fr 15:00-24:00")

    assert hours.is_open(at(SA, 2, 0))
    assert not hours.is_open(at(FR, 2, 0))
    assert hours.intervals_on(TH) == ((time(15), time(0)),)
    assert hours.intervals_on(FR) == ((time(15), time(3)),)


def test_night_shift_of_the_same_rule_survives_its_own_days() -> None:
    hours = parse("Mo-Su 10:00-20:00; Fr-Sa 20:00-04:00")

    assert hours.is_open(at(SA, 3, 0))  # Friday night, added to Saturday by the same rule
    assert hours.is_open(at(SU, 3, 0))
    assert not hours.is_open(at(SA, 12, 0))  # Saturday daytime was overridden
    assert hours.is_open(at(SU, 12, 0))


def test_public_holiday_rules_are_ignored() -> None:
    hours = parse("Mo-Fr 09:00-18:00; PH off")

    assert hours.intervals_on(MO) == ((time(9), time(18)),)
    assert parse("PH 10:00-14:00").intervals_on(MO) == ()


def test_public_holiday_in_weekday_list_is_ignored() -> None:
    assert open_days("Mo-Fr 09:00-18:00; Sa,PH 10:00-14:00") == [MO, TU, WE, TH, FR, SA]


def test_whitespace_is_tolerated() -> None:
    messy = parse("  Mo - Fr   09:00 - 13:00 , 14:00-18:00 ;Sa 10:00-14:00;  Su off ")
    clean = parse("Mo-Fr 09:00-13:00,14:00-18:00; Sa 10:00-14:00; Su off")

    assert all(messy.intervals_on(day) == clean.intervals_on(day) for day in range(7))


def test_single_digit_hours_and_lowercase_weekdays_are_accepted() -> None:
    assert parse("mo-fr 9:00-18:00").intervals_on(TH) == ((time(9), time(18)),)


def test_intervals_on_rejects_bad_weekday() -> None:
    with pytest.raises(ValueError, match=r"weekday must be 0\.\.6"):
        parse("Mo 10:00-12:00").intervals_on(7)


# --- 24/7 and never open ----------------------------------------------------------------


def test_24_7_is_always_open_and_never_changes() -> None:
    hours = parse("24/7")

    assert hours.always_open
    assert hours.is_open(at(SU, 3, 0))
    assert hours.next_change(at(SU, 3, 0)) is None
    assert hours.intervals_on(WE) == ((time(0), time(0)),)


def test_full_days_every_day_count_as_always_open() -> None:
    assert parse("Mo-Su 00:00-24:00").always_open
    assert parse("00:00-12:00,12:00-24:00").always_open


def test_24_7_with_override_is_not_always_open() -> None:
    hours = parse("24/7; Su off")

    assert not hours.always_open
    assert not hours.is_open(at(SU, 12, 0))
    assert hours.next_change(at(SA, 12, 0)) == at(SU, 0, 0)
    assert hours.next_change(at(SU, 12, 0)) == at(MO, 0, 0, week=1)


def test_regular_schedule_is_not_always_open() -> None:
    assert not parse("Mo-Fr 09:00-18:00").always_open


def test_never_open_has_no_next_change() -> None:
    hours = parse("off")

    assert not hours.is_open(at(MO, 12, 0))
    assert hours.next_change(at(MO, 12, 0)) is None
    assert parse("PH 10:00-12:00").next_change(at(MO, 12, 0)) is None


# --- next_change ------------------------------------------------------------------------

LUNCH = "Mo-Fr 09:00-13:00,14:00-18:00"


def test_lunch_break_closing_time() -> None:
    assert parse(LUNCH).next_change(at(MO, 10, 15)) == at(MO, 13, 0)


def test_lunch_break_reopening_time() -> None:
    assert parse(LUNCH).next_change(at(MO, 13, 30)) == at(MO, 14, 0)


def test_exactly_at_closing_reports_reopening() -> None:
    assert parse(LUNCH).next_change(at(MO, 13, 0)) == at(MO, 14, 0)


def test_before_opening_reports_same_day_opening() -> None:
    assert parse(LUNCH).next_change(at(WE, 7, 45)) == at(WE, 9, 0)


def test_after_closing_reports_next_day_opening() -> None:
    assert parse(LUNCH).next_change(at(WE, 19, 0)) == at(TH, 9, 0)


def test_friday_evening_opens_on_monday() -> None:
    assert parse("Mo-Fr 09:00-18:00").next_change(at(FR, 18, 30)) == at(MO, 9, 0, week=1)


def test_saturday_override_is_seen_by_next_change() -> None:
    hours = parse("Mo-Fr 09:00-20:00; Sa 10:00-16:00")

    assert hours.next_change(at(FR, 21, 0)) == at(SA, 10, 0)
    assert hours.next_change(at(SA, 16, 0)) == at(MO, 9, 0, week=1)


def test_opening_a_week_later_is_found() -> None:
    hours = parse("We 10:00-12:00")

    assert hours.next_change(at(WE, 12, 0)) == at(WE, 10, 0, week=1)


def test_seconds_before_closing_still_open() -> None:
    hours = parse(LUNCH)
    moment = at(MO, 12, 59) + timedelta(seconds=30)

    assert hours.is_open(moment)
    assert hours.next_change(moment) == at(MO, 13, 0)


def test_over_midnight_closing_time() -> None:
    hours = parse("Fr-Sa 22:00-02:00")

    assert hours.next_change(at(FR, 23, 0)) == at(SA, 2, 0)
    assert hours.next_change(at(SA, 1, 0)) == at(SA, 2, 0)
    assert hours.next_change(at(SA, 3, 0)) == at(SA, 22, 0)


def test_adjacent_intervals_across_midnight_are_one_stretch() -> None:
    hours = parse("Mo-Fr 09:00-24:00; Tu 00:00-03:00,09:00-24:00")

    assert hours.next_change(at(MO, 20, 0)) == at(TU, 3, 0)
    assert hours.next_change(at(TU, 20, 0)) == at(WE, 0, 0)


def test_night_shift_chain_closes_at_real_closing_time() -> None:
    # Open from Friday 09:00 non-stop until Sunday 02:00.
    hours = parse("Mo-Fr 09:00-18:00; Fr 09:00-24:00; Sa 00:00-24:00; Su 00:00-02:00")

    assert hours.next_change(at(FR, 10, 0)) == at(SU, 2, 0)
    assert hours.next_change(at(SA, 12, 0)) == at(SU, 2, 0)


def test_everyday_over_midnight_shifts() -> None:
    hours = parse("10:00-24:00; Mo-Su 00:00-02:00,10:00-24:00")

    assert hours.next_change(at(SA, 23, 0)) == at(SU, 2, 0)
    assert hours.next_change(at(SU, 23, 0)) == at(MO, 2, 0, week=1)


def test_next_change_keeps_timezone_of_input() -> None:
    chita = ZoneInfo("Asia/Chita")
    moment = at(MO, 10, 0).replace(tzinfo=chita)

    change = parse(LUNCH).next_change(moment)

    assert change == at(MO, 13, 0).replace(tzinfo=chita)
    assert change is not None
    assert change.tzinfo is chita


# --- status_at --------------------------------------------------------------------------

OFFICE = "Mo-Fr 09:00-20:00; Sa 10:00-16:00"


def test_status_at_converts_utc_to_office_zone_across_date_line() -> None:
    # Friday 23:30 UTC is already Saturday 08:30 in Chita (+09:00).
    status = status_at(parse(OFFICE), datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "Asia/Chita")

    chita = ZoneInfo("Asia/Chita")
    assert status == OpenStatus(
        is_open=False, changes_at=datetime(2026, 11, 21, 10, 0, tzinfo=chita)
    )
    assert status.changes_at is not None
    assert status.changes_at.utcoffset() == timedelta(hours=9)
    assert status.changes_at.astimezone(UTC) == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


def test_status_at_same_instant_differs_by_city() -> None:
    instant = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # Friday
    hours = parse(OFFICE)

    moscow = status_at(hours, instant, "Europe/Moscow")  # 18:00, open
    vladivostok = status_at(hours, instant, "Asia/Vladivostok")  # Sat 01:00, closed

    assert moscow == OpenStatus(
        True, datetime(2026, 11, 20, 20, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    )
    assert vladivostok == OpenStatus(
        False, datetime(2026, 11, 21, 10, 0, tzinfo=ZoneInfo("Asia/Vladivostok"))
    )


def test_status_at_accepts_any_aware_datetime() -> None:
    plus_three = datetime(2026, 11, 16, 12, 0, tzinfo=ZoneInfo("Europe/Moscow"))

    status = status_at(parse(OFFICE), plus_three, "Asia/Yekaterinburg")  # 14:00 local

    assert status.is_open
    assert status.changes_at == datetime(2026, 11, 16, 20, 0, tzinfo=ZoneInfo("Asia/Yekaterinburg"))


def test_status_at_wall_clock_across_dst_change() -> None:
    # Saturday 21:00 CET; Sunday 09:00 is already summer time (+02:00).
    status = status_at(
        parse("Mo-Su 09:00-18:00"), datetime(2026, 3, 28, 20, 0, tzinfo=UTC), "Europe/Berlin"
    )

    assert not status.is_open
    assert status.changes_at is not None
    assert status.changes_at.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_status_at_24_7() -> None:
    status = status_at(parse("24/7"), datetime(2026, 11, 20, 3, 0, tzinfo=UTC), "Europe/Moscow")

    assert status == OpenStatus(is_open=True, changes_at=None)


def test_status_at_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        status_at(parse(OFFICE), datetime(2026, 11, 20, 23, 30), "Asia/Chita")


# --- malformed input --------------------------------------------------------------------


def test_error_is_a_value_error() -> None:
    assert issubclass(OpeningHoursError, ValueError)


def test_unknown_weekday_message_names_the_part_and_rule() -> None:
    with pytest.raises(OpeningHoursError) as error:
        parse("Mx-Fr 09:00-18:00")

    assert str(error.value) == "unknown weekday 'Mx' in 'Mx-Fr 09:00-18:00'"


def test_error_names_the_offending_rule_not_the_whole_spec() -> None:
    with pytest.raises(OpeningHoursError, match=r"invalid time '25:00' in 'Sa 10:00-25:00'$"):
        parse("Mo-Fr 09:00-18:00; Sa 10:00-25:00")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "opening_hours is empty"),
        ("   ", "opening_hours is empty"),
        ("Пн-Пт 09:00-18:00", "unknown weekday 'Пн'"),
        ("Mo-Fx 09:00-18:00", "unknown weekday 'Fx'"),
        ("Jan-Mar Mo-Fr 10:00-12:00", "month selectors are not supported: 'Jan'"),
        ("Mo-Fr 10:00-18:00; Dec off", "month selectors are not supported: 'Dec'"),
        ("week 01-10 Mo 10:00-12:00", "week numbers are not supported: 'week'"),
        ("Mo-Fr sunrise-sunset", "sunrise/sunset times are not supported: 'sunrise'"),
        ("Mo-Fr 10:00-sunset", "sunrise/sunset times are not supported: 'sunset'"),
        ("Mo-Fr (sunrise+01:00)-18:00", r"variable times \('\(\.\.\)'\) are not supported"),
        ("SH off", r"school holidays \(SH\) are not supported"),
        ('Mo-Fr 09:00-18:00 "по записи"', 'comments are not supported: "по записи"'),
        ('"closed for renovation"', "comments are not supported"),
        ("Mo-Fr 25:00-26:00", "invalid time '25:00'"),
        ("Mo-Fr 09:60-18:00", "invalid time '09:60'"),
        ("Mo-Fr 09:00-24:30", "invalid time '24:30'"),
        ("Mo-Fr 24:00-02:00", "'24:00' can only end a time range"),
        ("Mo-Fr 9-18", "expected a time like '09:00', got '9'"),
        ("Mo-Fr 9.00-18.00", "expected a time like '09:00', got '9'"),
        ("Mo-Fr 09:00", "expected '-' after '09:00', got end of rule"),
        ("Mo-Fr 09:00-", "expected a time like '09:00', got end of rule"),
        ("Mo-Fr 09:00-13:00,", "expected a time like '09:00', got end of rule"),
        ("Mo-Fr", r"missing times \(use '00:00-24:00' for all day\)"),
        ("Mo-Fr 10:00-10:00", "empty time range '10:00-10:00'"),
        ("Mo-Fr 09:00-18:00;;Sa 10:00-14:00", r"empty rule \(stray ';'\)"),
        ("Mo-Fr 09:00-18:00;", r"empty rule \(stray ';'\)"),
        ("Mo-Fr 10:00+", r"open-ended times \('\+'\) are not supported"),
        ("Mo-Fr 10:00-16:00/30", r"repeating times \('/'\) are not supported"),
        ("Mo-Fr 10:00-18:00 || Sa off", r"fallback rules \('\|\|'\) are not supported"),
        ("Mo[1] 10:00-12:00", r"nth weekday of month \('\[\.\.\]'\) is not supported"),
        ("Mo-Fr 09:00-18:00 Sa 10:00-14:00", r"unexpected 'Sa' \(use ';' to separate rules\)"),
        ("Mo-Fr 09:00-18:00, Sa 10:00-14:00", r"unexpected ',' \(use ';' to separate rules\)"),
        ("Mo Fr 10:00-11:00", r"got 'Fr' \(missing ',' or ';'\?\)"),
        ("Mo- 09:00-18:00", "expected a weekday after 'Mo-', got '09:00'"),
        ("PH-Fr 10:00-12:00", "'PH' cannot be part of a weekday range"),
        ("Mo-Fr 12:00-13:00 off", "'off' after times is not supported"),
        ("off 10:00-12:00", "unexpected '10:00'"),
        ("Mo-Fr open", "'open' is not supported, give explicit times"),
        ("24/7 Mo", "expected a time like '09:00', got '24'"),
        ("2026 Mo-Fr 10:00-12:00", "expected a time like '09:00', got '2026'"),
    ],
)
def test_malformed_input_raises_with_useful_message(spec: str, message: str) -> None:
    with pytest.raises(OpeningHoursError, match=message):
        parse(spec)
