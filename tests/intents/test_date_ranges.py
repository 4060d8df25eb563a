"""Pause periods as customers write them: "с 10 по 25 декабря", "на две недели с понедельника",
"до 20 января", "уезжаю 12 декабря, вернусь 28 декабря", "for two weeks from Monday".

Each case gives the whole expected ``DateRange`` (start, end, days), so a stray start or a wrong
day count fails too.
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.intents.date_ranges import DateRange, find_date_range

SAT = date(2026, 11, 21)  # a Saturday: "с понедельника" is 23 November
DEC20 = date(2026, 12, 20)  # a Sunday, near the year's end
DEC30 = date(2026, 12, 30)  # a Wednesday: the next Monday is in the next year
JAN5 = date(2027, 1, 5)  # just after the new year: last December is still "recent"
MAR25 = date(2027, 3, 25)  # last December is more than three months ago


def d(iso: str) -> date:
    return date.fromisoformat(iso)


def r(start: str | None, end: str | None, days: int | None) -> DateRange:
    return DateRange(d(start) if start else None, d(end) if end else None, days)


RANGES = [
    # Two dates.
    ("с 10 по 25 декабря", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("с 10 декабря по 5 января", SAT, r("2026-12-10", "2027-01-05", 27)),
    ("с 10.12 по 25.12", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("с 10.12.2026 по 10.01.2027", SAT, r("2026-12-10", "2027-01-10", 32)),
    ("10-25 декабря", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("с 1 по 14 июля, уезжаем в отпуск", SAT, r("2027-07-01", "2027-07-14", 14)),
    ("приостановить с 10.12 до 20.12 включительно", SAT, r("2026-12-10", "2026-12-20", 11)),
    ("с 28 декабря по 10 января", SAT, r("2026-12-28", "2027-01-10", 14)),
    ("с 28 декабря по 10 января", DEC20, r("2026-12-28", "2027-01-10", 14)),
    # Said after the new year: last December's start is returned as parsed (in the past).
    ("с 28 декабря по 10 января", JAN5, r("2026-12-28", "2027-01-10", 14)),
    # More than three months after: the next December, as datetimes reads a bare day and month.
    ("с 20 декабря по 10 января", MAR25, r("2027-12-20", "2028-01-10", 22)),
    ("уезжаю 12 декабря, вернусь 28 декабря", SAT, r("2026-12-12", "2026-12-28", 17)),
    ("улетаем 30 декабря, вернемся 8 января", DEC20, r("2026-12-30", "2027-01-08", 10)),
    # Bare days: this month while still ahead, else the next; an earlier end is the next month.
    ("с 10 по 25", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("с 25 по 30", SAT, r("2026-11-25", "2026-11-30", 6)),
    ("с 10 по 25", DEC20, r("2027-01-10", "2027-01-25", 16)),
    ("с 25 по 5", DEC20, r("2026-12-25", "2027-01-05", 12)),
    ("с 31 по 15", SAT, r("2026-12-31", "2027-01-15", 16)),
    ("c 1 числа по 15", SAT, r("2026-12-01", "2026-12-15", 15)),  # a Latin "c"
    ("с 1 числа до 15-го", SAT, r("2026-12-01", "2026-12-15", 15)),
    ("c 10 декабря по 5", SAT, r("2026-12-10", "2027-01-05", 27)),
    ("с 10 до 12", SAT, r("2026-12-10", "2026-12-12", 3)),
    # Weekdays: the end is the first such day after the start.
    ("с понедельника до пятницы", SAT, r("2026-11-23", "2026-11-27", 5)),
    ("с пятницы по понедельник", SAT, r("2026-11-27", "2026-11-30", 4)),
    ("с понедельника до пятницы", date(2026, 11, 25), r("2026-11-30", "2026-12-04", 5)),
    # A duration with a start.
    ("на две недели с понедельника", SAT, r("2026-11-23", "2026-12-06", 14)),
    ("с понедельника на 2 недели", SAT, r("2026-11-23", "2026-12-06", 14)),
    ("на две недели с понедельника", DEC30, r("2027-01-04", "2027-01-17", 14)),
    ("на месяц с 1 января", SAT, r("2027-01-01", "2027-01-31", 31)),
    ("с 15 января на месяц", SAT, r("2027-01-15", "2027-02-14", 31)),
    ("сроком на 3 месяца с 31 января", SAT, r("2027-01-31", "2027-04-30", 90)),
    ("на полгода с 1 декабря", SAT, r("2026-12-01", "2027-05-31", 182)),
    ("на 90 дней с 1.12", SAT, r("2026-12-01", "2027-02-28", 90)),
    ("с завтрашнего дня на месяц", DEC30, r("2026-12-31", "2027-01-30", 31)),
    ("с завтрашнего дня на месяц", date(2026, 12, 31), r("2027-01-01", "2027-01-31", 31)),
    ("с послезавтрашнего дня на неделю", SAT, r("2026-11-23", "2026-11-29", 7)),
    ("со следующей недели на месяц", SAT, r("2026-11-23", "2026-12-22", 30)),
    ("со следующего месяца", SAT, r("2026-12-01", None, None)),
    ("с нового года на 10 дней", SAT, r("2027-01-01", "2027-01-10", 10)),
    ("через неделю на 5 дней", SAT, r("2026-11-28", "2026-12-02", 5)),
    # A duration with an end: the start is counted back.
    ("на 2 недели до 20 января", SAT, r("2027-01-07", "2027-01-20", 14)),
    # A start or an end alone.
    ("с завтрашнего дня", SAT, r("2026-11-22", None, None)),
    ("с завтра", SAT, r("2026-11-22", None, None)),
    ("с 15-го", SAT, r("2026-12-15", None, None)),
    ("начиная с 1 декабря", SAT, r("2026-12-01", None, None)),
    ("до 20 января", SAT, r(None, "2027-01-20", None)),
    ("до 20 января", DEC20, r(None, "2027-01-20", None)),
    ("по 31 декабря", SAT, r(None, "2026-12-31", None)),
    ("неделю назад уехал, вернусь 20 декабря", SAT, r(None, "2026-12-20", None)),
    # English.
    ("from Dec 10 to Dec 25", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("from December 28th to January 3rd", SAT, r("2026-12-28", "2027-01-03", 7)),
    ("from 10 to 25 December", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("Dec 10-25", SAT, r("2026-12-10", "2026-12-25", 16)),
    ("for two weeks from Monday", SAT, r("2026-11-23", "2026-12-06", 14)),
    ("starting Monday for 2 weeks", SAT, r("2026-11-23", "2026-12-06", 14)),
    ("until Jan 20", SAT, r(None, "2027-01-20", None)),
    # Reversed ranges come back as written, with no day count, for the caller to question.
    ("с 25 по 10 декабря", SAT, r("2026-12-25", "2026-12-10", None)),
    ("с 20.12 по 10.12", SAT, r("2026-12-20", "2026-12-10", None)),
]


@pytest.mark.parametrize(("text", "today", "expected"), RANGES)
def test_ranges(text: str, today: date, expected: DateRange) -> None:
    assert find_date_range(text, today) == expected


DURATIONS = [
    ("на 10 дней", 10),
    ("на неделю", 7),
    ("на недельку", 7),
    ("на 14 дн", 14),
    ("на 14 дн.", 14),
    ("на 2 нед", 14),
    ("на две недели", 14),
    ("на три недели", 21),
    ("на одну неделю", 7),
    ("на пару дней", 2),
    ("на двое суток", 2),
    ("на пять дней", 5),
    ("на десять дней", 10),
    ("на пятнадцать дней", 15),
    ("на двадцать дней", 20),
    ("на двадцать пять дней", 25),
    ("на тридцать дней", 30),
    ("в течение двух недель", 14),
    ("в течение десяти дней", 10),
    ("на полторы недели", 11),  # 10.5, rounded up to cover the trip
    ("на 2-3 недели", 21),  # the longer one
    ("на полмесяца", 15),
    ("for 10 days", 10),
    ("for a week", 7),
    ("for a couple of weeks", 14),
    ("for twenty one days", 21),
    # Months are calendar months counted from tomorrow, 22 November: to 21 December...
    ("на месяц", 30),
    ("на 1 мес", 30),
    ("на три месяца", 92),  # to 21 February
    ("на полгода", 181),  # to 21 May
    ("на пол года", 181),
    ("на 6 месяцев", 181),
    ("на 1,5 месяца", 45),  # a month and 15 days
    ("на год", 365),
    ("for a month", 30),
]


@pytest.mark.parametrize(("text", "days"), DURATIONS)
def test_durations_without_a_start(text: str, days: int) -> None:
    assert find_date_range(f"хочу приостановить интернет {text}", SAT) == r(None, None, days)


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        # A month from a day the next month lacks ends on that month's last day.
        (date(2027, 1, 30), "2027-01-31", "2027-02-28"),
        (date(2028, 1, 30), "2028-01-31", "2028-02-29"),  # leap year
        (date(2027, 1, 27), "2027-01-28", "2027-02-27"),
        (date(2026, 12, 30), "2026-12-31", "2027-01-30"),
    ],
)
def test_month_is_calendar_month(today: date, start: str, end: str) -> None:
    found = find_date_range("с завтрашнего дня на месяц", today)
    assert found is not None
    assert (found.start, found.end) == (d(start), d(end))
    assert found.days == (d(end) - d(start)).days + 1


def test_months_without_a_start_count_from_tomorrow() -> None:
    # 31 January + 1 month: through 28 February (29 days), the same as "с завтрашнего дня".
    assert find_date_range("на месяц", date(2027, 1, 30)) == r(None, None, 29)


NO_RANGE = [
    "",
    "интернет не работает",
    "сколько стоит приостановка?",
    "мой телефон 89141234567, договор 12345678",
    "позвоните +7 (914) 123-45-67",
    "номер 8-914-123-45-67, л/с 10122026",
    "лицевой счет 1012 2026",
    "договор 25-12",
    "тариф 100 мбит за 500 руб",
    "2 недели назад",  # a time in the past, not a pause period
    "интернет пропал 2 недели назад",
    "интернет не работает уже 2 недели",  # no "на": how long a fault lasts, not a request
    "на 100 мбит",
    "for 5 minutes",
    "с 10 по 25 лет",
    "с 99 по 100",
    "роутер стоит на 2 этаже",
]


@pytest.mark.parametrize("text", NO_RANGE)
def test_no_range(text: str) -> None:
    assert find_date_range(text, SAT) is None


def test_time_of_day_is_not_a_range_of_days() -> None:
    # "с 10 до 12" next to another date is a time of day; the day alone remains.
    assert find_date_range("завтра с 10 до 12", SAT) == r("2026-11-22", None, None)
    assert find_date_range("с 10 до 18 часов", SAT) is None


def test_numbers_around_a_range_are_not_dates() -> None:
    text = "договор 12345678, тел 89141234567, приостановите с 10 по 25 декабря, кв 15"
    assert find_date_range(text, SAT) == r("2026-12-10", "2026-12-25", 16)


def test_past_weekday_follows_datetimes() -> None:
    # datetimes reads "с понедельника" next to a fault as since the last Monday; the range keeps
    # it (in the past) for the caller to question.
    assert find_date_range("с понедельника не работает", SAT) == r("2026-11-16", None, None)


def test_first_range_wins() -> None:
    text = "с 10 по 15 декабря, а потом ещё с 20 по 25 декабря"
    assert find_date_range(text, SAT) == r("2026-12-10", "2026-12-15", 6)


def test_range_in_a_long_message() -> None:
    filler = "Здравствуйте, интернет нам пока не нужен, договор 12345678. " * 80
    text = filler + "Приостановите с 10 по 25 декабря. " + filler
    assert find_date_range(text, SAT) == r("2026-12-10", "2026-12-25", 16)


@pytest.mark.parametrize(
    "text",
    ["10.12 по 5 " * 450, "1 " * 2500, "на " * 1700, "с 1 по " * 700, "9" * 5000, "а" * 5000],
)
def test_long_dense_messages_parse(text: str) -> None:
    # Only that they finish and return something sensible; the patterns have no nested
    # quantifiers and find_dates reads the text in pieces (see date_ranges._pieces).
    found = find_date_range(text, SAT)
    assert found is None or isinstance(found, DateRange)
