"""Dates and times as Russian customers write them for a technician visit or a call back:
"завтра после 18:00", "в четверг", "25 ноября", "через 2 дня", "с 10 до 12", "в 7 вечера".

Values are normalised (ISO date, ``HH:MM``) relative to ``today``; a time may carry a qualifier
("after", "before", "from", "to") taken from the preposition in front of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.intents.normalize import basic, lemma


@dataclass(frozen=True, slots=True)
class Found:
    kind: str  # "date" or "time"
    value: str
    start: int
    end: int
    qualifier: str | None = None


_RELATIVE = {
    "сегодня": 0, "сейчас": 0, "завтра": 1, "послезавтра": 2, "today": 0, "tomorrow": 1,
}  # fmt: skip
_WEEKDAYS = {
    "понедельник": 0, "вторник": 1, "среда": 2, "четверг": 3, "пятница": 4, "суббота": 5,
    "воскресенье": 6, "пн": 0, "вт": 1, "ср": 2, "чт": 3, "пт": 4, "сб": 5, "вс": 6,
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6,
}  # fmt: skip
# Abbreviations count only after a preposition: "ср" alone is too often something else.
_ABBREVIATED = {"пн", "вт", "ср", "чт", "пт", "сб", "вс"}
_MONTHS = {
    "январь": 1, "янв": 1, "февраль": 2, "фев": 2, "март": 3, "мар": 3, "апрель": 4, "апр": 4,
    "май": 5, "мая": 5, "июнь": 6, "июн": 6, "июль": 7, "июл": 7, "август": 8, "авг": 8,
    "сентябрь": 9, "сен": 9, "сент": 9, "октябрь": 10, "окт": 10, "ноябрь": 11, "ноя": 11,
    "нояб": 11, "декабрь": 12, "дек": 12, "january": 1, "february": 2, "march": 3, "april": 4,
    "june": 6, "july": 7, "august": 8, "september": 9, "october": 10, "november": 11,
    "december": 12,
}  # fmt: skip
_QUALIFIERS = {
    "после": "after", "позже": "after", "after": "after", "до": "before", "к": "before",
    "before": "before", "by": "before", "с": "from", "from": "from", "со": "from",
}  # fmt: skip

_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+")
_IN_DAYS = re.compile(
    r"\bчерез\s+(\d{1,2}|один|два|две|три|пару)?\s*(дн[яейь]+|день|недел[юиь]+)", re.I
)
_DAY_MONTH = re.compile(
    r"(?<!\d)(\d{1,2})(?:-?го)?\s+([A-Za-zА-Яа-яЁё]{3,9})\.?(?:\s+(\d{4}))?", re.I
)
_NUMERIC_DATE = re.compile(
    r"(?<![\d.:/])(\d{1,2})[./](\d{1,2})(?:[./](\d{4}|\d{2}))?(?![\d:/]|\.\d)"
)
_CLOCK = re.compile(r"(?<![\d.:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])")
_DOTTED_CLOCK = re.compile(r"(?<![\d.:])([01]?\d|2[0-3])\.([0-5]\d)(?![\d.:])")
_HOUR = re.compile(
    r"\b(в|к|после|до|с|со|at|after|before|by|from)\s+(\d{1,2})(?:\s*(?:ч\b|час(?:а|ов)?\b))?"
    r"(?:\s*(утра|дня|вечера|ночи|am|pm))?(?![\d:.])",
    re.I,
)
# Words that may follow a bare hour inside a time range: "с 10 до 12", "с 9 и до 18".
_RANGE_WORDS = {"до", "по", "и", "или", "to", "and", "or", "till", "until"}
_SMALL_NUMBERS = {"один": 1, "два": 2, "две": 2, "три": 3, "пару": 2}


def _word_before(text: str, start: int) -> str:
    before = _WORD.findall(text[max(0, start - 12) : start])
    return basic(before[-1]) if before else ""


def _qualifier_before(text: str, start: int) -> str | None:
    before = _WORD.findall(text[max(0, start - 12) : start])
    return _QUALIFIERS.get(basic(before[-1])) if before else None


def _hour_24(hour: int, part: str | None) -> int | None:
    part = (part or "").lower()
    if part in ("дня", "вечера", "pm") and hour < 12:
        hour += 12
    if part in ("ночи",) and hour == 12:
        hour = 0
    return hour if 0 <= hour <= 23 else None


def find_dates(text: str, today: date) -> list[Found]:
    out: list[Found] = []
    for m in _IN_DAYS.finditer(text):
        count_word = (m.group(1) or "1").lower()
        count = int(count_word) if count_word.isdigit() else _SMALL_NUMBERS.get(count_word, 1)
        days = count * (7 if m.group(2).lower().startswith("недел") else 1)
        out.append(Found("date", (today + timedelta(days=days)).isoformat(), m.start(), m.end()))
    for m in _DAY_MONTH.finditer(text):
        month = (
            _MONTHS.get(lemma(basic(m.group(2))))
            or _MONTHS.get(basic(m.group(2))[:4])
            or _MONTHS.get(basic(m.group(2))[:3])
        )
        if month is None or _taken(m.start(), m.end(), out):
            continue
        day = _valid_date(int(m.group(1)), month, m.group(3), today)
        if day is not None:
            out.append(Found("date", day.isoformat(), m.start(), m.end()))
    for m in _NUMERIC_DATE.finditer(text):
        if _taken(m.start(), m.end(), out):
            continue
        # "в 18.00" is a time, not the 18th of month 0.
        if m.group(3) is None and _qualifier_before(text, m.start()) and int(m.group(2)) > 12:
            continue
        day = _valid_date(int(m.group(1)), int(m.group(2)), m.group(3), today)
        if day is not None and not (m.group(3) is None and _looks_like_clock(text, m)):
            out.append(Found("date", day.isoformat(), m.start(), m.end()))
    words = list(_WORD.finditer(text))
    for i, m in enumerate(words):
        word = basic(m.group(0))
        if word in _RELATIVE:
            day = today + timedelta(days=_RELATIVE[word])
            out.append(Found("date", day.isoformat(), m.start(), m.end()))
            continue
        weekday = _WEEKDAYS.get(word) if word in _ABBREVIATED else _WEEKDAYS.get(lemma(word))
        if weekday is None:
            continue
        prev = basic(words[i - 1].group(0)) if i else ""
        if word in _ABBREVIATED and prev not in ("в", "во", "on"):
            continue
        ahead = (weekday - today.weekday()) % 7 or 7
        if lemma(prev) == "следующий" or prev == "next":
            ahead += 7 if ahead < 7 and today.weekday() < weekday else 0
        start = words[i - 1].start() if lemma(prev) == "следующий" or prev == "next" else m.start()
        out.append(Found("date", (today + timedelta(days=ahead)).isoformat(), start, m.end()))
    return out


def _looks_like_clock(text: str, m: re.Match[str]) -> bool:
    """ "в 10.30" or "после 18.00": a time written with a dot."""
    return _qualifier_before(text, m.start()) is not None and int(m.group(2)) in (0, 15, 30, 45)


def _valid_date(day: int, month: int, year_text: str | None, today: date) -> date | None:
    year = today.year
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    if year_text is None and found < today - timedelta(days=31):
        found = found.replace(year=year + 1)  # "5 января" said in November is next January
    return found


def find_times(text: str, taken: list[tuple[int, int]]) -> list[Found]:
    out: list[Found] = []

    def add(value: str, start: int, end: int) -> None:
        spans = taken + [(f.start, f.end) for f in out]
        if not any(start < e and s < end for s, e in spans):
            out.append(Found("time", value, start, end, _qualifier_before(text, start)))

    for m in _CLOCK.finditer(text):
        add(f"{int(m.group(1)):02d}:{m.group(2)}", m.start(), m.end())
    for m in _DOTTED_CLOCK.finditer(text):
        if _qualifier_before(text, m.start()) is not None or _word_before(text, m.start()) in (
            "в", "во", "at",
        ):  # fmt: skip
            add(f"{int(m.group(1)):02d}:{m.group(2)}", m.start(), m.end())
    for m in _HOUR.finditer(text):
        has_unit = m.group(0).rstrip().endswith(("ч", "час", "часа", "часов")) or m.group(3)
        prep = m.group(1).lower()
        # "в 5" alone may be a house or a flat; "в 5 вечера", "после 18", "к 9" are times.
        if not has_unit and prep in ("в", "at"):
            continue
        # "после 3 дней", "до 100 мбит": a number of something else, not an hour.
        following = _WORD.match(text[m.end() :].lstrip())
        if not has_unit and following and basic(following.group(0)) not in _RANGE_WORDS:
            continue
        hour = _hour_24(int(m.group(2)), m.group(3))
        if hour is not None:
            add(f"{hour:02d}:00", m.start(2), m.end())
    return out


def _taken(start: int, end: int, found: list[Found]) -> bool:
    return any(start < f.end and f.start < end for f in found)
