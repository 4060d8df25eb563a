"""Date ranges as customers write them when they ask to pause their internet for a trip:
"с 10 по 25 декабря", "на две недели с понедельника", "до 20 января", "уезжаю 12 декабря,
вернусь 28 декабря", "for two weeks from Monday".

Single dates come from ``datetimes.find_dates`` (one date grammar for the whole bot); this module
adds what only a range needs: bare days paired with a start ("с 10 по 25", "с 1 числа по 15"),
"с завтрашнего дня", English "Dec 10", durations ("на полгода", "for 10 days"), and which date is
the start and which the end.

Conventions, chosen so the caller can validate and ask rather than guess silently:

- A start date is returned as parsed even when it is in the past. A day and month without a year
  follow ``datetimes``: still this year's when at most ~3 months ago, next year's otherwise.
- An end without a year is read after the start: "с 28 декабря по 10 января" ends next January,
  "с понедельника до пятницы" ends on the Friday after that Monday, "с 25 по 5" on the 5th of the
  next month.
- A reversed range ("с 25 по 10 декабря") is returned as written, start after end, with ``days``
  None, so the caller can say so. An end earlier than the start in the same month is reversed; an
  end in an earlier month is next year's only if that keeps the range within half a year.
- "до 20 января" and "вернусь 28 декабря" make that day the (inclusive) end: customers who return
  on a day rarely mind that the pause covers it, and the caller confirms the dates anyway.
- Durations in months are calendar months: the end is the day before the same day N months later
  (the last day of that month when it has no such day: 31 January plus a month ends 28 February).
  Without a start, ``days`` of a month duration is counted from tomorrow, the caller's default.
- "полторы недели" is 11 days and "на 2-3 недели" three weeks: rounded up so a trip is covered.
- "2 недели назад" is not a duration (None for it alone); a duration needs "на", "for",
  "в течение" or "сроком" before it, so "интернет не работает 2 недели" has none either.
- "с 10 до 12" with no other date is the 10th to the 12th (this module is used for pauses); next
  to another date ("завтра с 10 до 12") it is a time of day and is ignored.

All patterns are linear (no nested quantifiers) so a long message costs a few regex passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from bot.intents.datetimes import (
    _MONTH_ABBREVIATIONS,
    _PARTS_OF_DAY,
    _day_of_month,
    _fold,
    _valid_date,
    _weekday,
    counts_something,
    find_dates,
)
from bot.intents.normalize import lemma


@dataclass(frozen=True, slots=True)
class DateRange:
    """A pause period. ``start`` None: not said (the caller defaults to tomorrow or asks);
    ``end`` is the inclusive last day, None when open or not said; ``days`` is a duration said
    without an end ("на две недели"), or end - start + 1 when both are known (None when the range
    is reversed)."""

    start: date | None
    end: date | None
    days: int | None


# How a mention's date is re-read when it ends a range: "fixed" as is (a year was written, or
# "завтра"), "day_month" after the start, "day" (a bare day of a month) in the start's month or
# the next, "weekday" the first such weekday after the start.
_FIXED, _DAY_MONTH, _DAY, _WEEKDAY = "fixed", "day_month", "day", "weekday"


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    value: date
    kind: str


@dataclass(frozen=True, slots=True)
class _Duration:
    months: int
    days: int
    start: int
    end: int


_PIECE = 400
_SENTENCE_END = re.compile(r"[.!?]\s|\n")
_SPACE = re.compile(r"\s")
# The longest an end may be pushed into the next year to come after its start.
_WRAP_LIMIT = timedelta(days=183)

_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+")
_NEXT_WORD = re.compile(r"\s{0,3}([A-Za-zА-Яа-яЁё]+)")
_TOKEN = re.compile(r"\d{1,3}(?:[.,]5)?(?:-?(?:х|е|ти|ух|ех|ое|ого))?|[A-Za-zА-Яа-яЁё]+")
_YEAR_WRITTEN = re.compile(r"\d{4}|\d[./]\d{2}[./]\d{2}")
_DAY_ONLY = re.compile(r"\d{1,2}(?:-?(?:го|ое|е))?(?:\s+числ[аоу])?", re.I)
_DASHES = {"-", "–", "—"}
_SUFFIX = r"(?:-?(?:го|ого|е|ое|st|nd|rd|th))?"
# "с 10 по 25", "from 10 to 25 December": a start day with the end right after it.
_BARE_PAIR = re.compile(
    r"(?<![\w.,:/-])(?:с|со|c|from)\s{1,3}(\d{1,2})" + _SUFFIX
    + r"\s{0,3}(по|до|-|–|—|to|till|until|through)\s{0,3}(\d{1,2})" + _SUFFIX
    + r"(?!\d|[.,:/]\d)",
    re.I,
)  # fmt: skip
# "по 15" right after a date: "с 1 числа по 15", "с понедельника до 20-го", "Dec 10-25".
_FOLLOWER = re.compile(
    r"\s{0,3}(?:по|до|-|–|—|to|till|until|through)\s{0,3}(\d{1,2})" + _SUFFIX
    + r"(?:\s{1,3}числ[аоу])?(?!\d|[.,:/]\d)",
    re.I,
)  # fmt: skip
# English month first: "Dec 10", "December 10th, 2026".
_MONTH_DAY = re.compile(
    r"(?<![\w.])([A-Za-z]{3,9})\.?\s{0,3}(\d{1,2})(?:st|nd|rd|th)?(?:,?\s{1,3}(20\d\d))?"
    r"(?!\d|[:.,]\d)"
)
_SOON = re.compile(r"(?<!\w)(после-?)?(завтрашн|сегодняшн)\w{0,4}(?:\s+дн\w{0,2})?", re.I)
_NEXT_PERIOD = re.compile(
    r"(?<!\w)(?:с|со|c|from)\s+(следующ\w{0,3}\s+(недел|месяц)\w{0,2}|нового\s+года"
    r"|next\s+(week|month))\b",
    re.I,
)

_START_WORDS = {"с", "со", "c", "from", "since", "starting", "beginning", "начиная"}
_END_WORDS = {"по", "до", "to", "till", "til", "until", "through", "thru", "by", "к", "ко"}
_START_CUES = {
    "уезжать", "уехать", "улетать", "улететь", "выезжать", "выехать", "отъезд", "вылет",
    "уезжаем", "leave", "leaving", "away",
}  # fmt: skip
_END_CUES = {
    "вернуться", "возвращаться", "приехать", "прилететь", "возвращение", "приезд", "back",
    "return", "returning",
}  # fmt: skip
_HOUR_WORDS = {"ч", "час", "часа", "часов", "часам", "мин", "am", "pm", "hours", "o"}

_DURATION_TRIGGERS = {"на", "for", "течение", "сроком"}
_FILLERS = {"около", "примерно", "где", "то", "целую", "целых", "целый", "about", "around", "the"}
_PAST = {"назад", "ago", "тому"}
_NUMBERS: dict[str, float] = {
    "один": 1, "два": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7, "восемь": 8,
    "девять": 9, "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13,
    "четырнадцать": 14, "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17,
    "восемнадцать": 18, "девятнадцать": 19, "двадцать": 20, "тридцать": 30, "сорок": 40,
    "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70, "восемьдесят": 80, "девяносто": 90,
    "сто": 100, "пара": 2, "двое": 2, "трое": 3, "четверо": 4, "полтора": 1.5,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90,
    "a": 1, "an": 1, "couple": 2,
}  # fmt: skip
_TENS = {20, 30, 40, 50, 60, 70, 80, 90}


def find_date_range(text: str, today: date) -> DateRange | None:
    """The pause period a message asks for, relative to ``today``; None without any date or
    duration in it. See the module docstring for how ambiguous phrasings are read."""
    mentions: list[_Mention] = []
    for offset, piece in _pieces(text):
        mentions += [_shifted(m, offset) for m in _mentions(piece, today)]
        if all(_assign(text, mentions)):
            break  # the first range is complete; the rest of a long message cannot change it
    duration = _duration(text, mentions)
    if not mentions and duration is None:
        return None
    first, last = _assign(text, mentions)
    start = first.value if first else None
    end = last.value if last else None
    if start is not None and last is not None:
        end = _after(last, start)
    days: int | None = None
    if duration is not None:
        if start is not None and end is None:
            end = _add(start, duration)
        elif end is not None and start is None:
            start = _back(end, duration)
        elif start is None:
            tomorrow = today + timedelta(days=1)
            days = (_add(tomorrow, duration) - tomorrow).days + 1
    if start is not None and end is not None:
        days = (end - start).days + 1 if end >= start else None
    return DateRange(start, end, days)


# --- dates ----------------------------------------------------------------------------------


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """The text in pieces of a few hundred characters, cut after a sentence (or, in a long
    unpunctuated run, at a space), with their offsets. ``find_dates`` costs the square of the
    number of dates in what it reads; pieces keep a long message full of numbers cheap."""
    pos = 0
    while pos < len(text):
        cut = _SENTENCE_END.search(text, pos + _PIECE, pos + 2 * _PIECE)
        if cut is None:
            cut = _SPACE.search(text, pos + 2 * _PIECE)
        end = cut.end() if cut is not None else len(text)
        yield pos, text[pos:end]
        pos = end


def _shifted(m: _Mention, offset: int) -> _Mention:
    return _Mention(m.start + offset, m.end + offset, m.value, m.kind)


def _mentions(text: str, today: date) -> list[_Mention]:
    found = [
        _Mention(f.start, f.end, date.fromisoformat(f.value), _kind(text[f.start : f.end]))
        for f in find_dates(text, today)
    ]

    def add(m: _Mention) -> None:
        if not any(m.start < o.end and o.start < m.end for o in found):
            found.append(m)

    for m in _SOON.finditer(text):
        shift = 0 if m.group(2).lower().startswith("сегодн") else 2 if m.group(1) else 1
        add(_Mention(m.start(), m.end(), today + timedelta(days=shift), _FIXED))
    for m in _NEXT_PERIOD.finditer(text):
        add(_Mention(m.start(1), m.end(1), _next_period(m, today), _FIXED))
    for m in _MONTH_DAY.finditer(text):
        month = _MONTH_ABBREVIATIONS.get(m.group(1).lower())
        day = _valid_date(int(m.group(2)), month, m.group(3), today) if month else None
        if day is not None:
            add(_Mention(m.start(), m.end(), day, _FIXED if m.group(3) else _DAY_MONTH))
    _bare_pairs(text, today, found)
    found.sort(key=lambda m: m.start)
    for mention in list(found):
        follower = _FOLLOWER.match(text, mention.end)
        if follower is not None and _is_day(text, follower.end(), int(follower.group(1))):
            day = _coming_day(int(follower.group(1)), today)
            if day is not None:
                add(_Mention(follower.start(1), follower.end(), day, _DAY))
    found.sort(key=lambda m: m.start)
    return found


def _kind(span: str) -> str:
    """How a date found by ``find_dates`` is re-read as the end of a range (see ``_FIXED``)."""
    words = _WORD.findall(span)
    if _YEAR_WRITTEN.search(span) or (words and _fold(words[0]) == "через"):
        return _FIXED
    if words and _weekday(_fold(words[-1])) is not None:
        return _WEEKDAY
    if span.isdigit():  # "10" of "с 10 по 25 декабря": the month came from the end
        return _DAY_MONTH
    if _DAY_ONLY.fullmatch(span):  # "15-го", "1 числа"
        return _DAY
    return _DAY_MONTH if any(c.isdigit() for c in span) else _FIXED


def _next_period(m: re.Match[str], today: date) -> date:
    unit = _fold(m.group(2) or m.group(3) or "")
    if unit.startswith(("недел", "week")):
        return today + timedelta(days=7 - today.weekday())  # next Monday
    if unit.startswith(("месяц", "month")):
        return date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return date(today.year + 1, 1, 1)  # "с нового года"


def _bare_pairs(text: str, today: date, found: list[_Mention]) -> None:
    """ "с 10 по 25" (days of this month or the next), "from 10 to 25 December"."""
    others = list(found)
    for m in _BARE_PAIR.finditer(text):
        first, second = int(m.group(1)), int(m.group(3))
        if not (1 <= first <= 31 and 1 <= second <= 31):
            continue
        if any(o.start <= m.start(1) < o.end for o in found):
            continue  # "с 10 по 25 декабря": find_dates has it
        ends = [o for o in found if o.start == m.start(3)]
        if ends:  # "from 10 to 25 December": the first day takes the month of the second
            end = ends[0]
            year = str(end.value.year) if end.kind == _FIXED else None
            day = _valid_date(first, end.value.month, year, today)
            if day is not None:
                found.append(_Mention(m.start(1), m.end(1), day, _DAY_MONTH))
            continue
        if not _is_day(text, m.end(), second):
            continue
        if m.group(2).lower() in ("до", "-", "–", "—", "to", "till", "until") and others:
            continue  # "завтра с 10 до 12": a time of day
        start, end_day = _coming_day(first, today), _coming_day(second, today)
        if start is not None and end_day is not None:
            found.append(_Mention(m.start(1), m.end(1), start, _DAY))
            found.append(_Mention(m.start(3), m.end(), end_day, _DAY))


def _coming_day(day: int, today: date) -> date | None:
    """ "с 31": this month's or next month's day as in ``datetimes``, or the month after that
    when the month has no such day (31 in November is the 31st of December)."""
    found = _day_of_month(day, today)
    if found is None:
        first_next = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        found = _day_of_month(day, first_next)
    return found


def _is_day(text: str, end: int, number: int) -> bool:
    """Not a count ("по 25 лет"), a time ("до 18 часов", "до 18:00") or a phone's digits."""
    if not 1 <= number <= 31:
        return False
    word = _NEXT_WORD.match(text, end)
    following = _fold(word.group(1)) if word else ""
    if following in _HOUR_WORDS or following in _PARTS_OF_DAY:
        return False
    return not counts_something(text, end, number)


def _assign(text: str, mentions: list[_Mention]) -> tuple[_Mention | None, _Mention | None]:
    """The start and the end among the dates, by the word before each: "с", "по", "до", a dash
    between two dates, or "уезжаю" / "вернусь"; a date with none of them is the start, or the
    end once there is a start."""
    first: _Mention | None = None
    last: _Mention | None = None
    prev: _Mention | None = None
    for m in mentions:
        role = _role(text, prev, m)
        prev = m
        if role == "end" and last is None:
            last = m
        elif role in ("start", None) and first is None:
            first = m
        elif role is None and last is None:
            last = m
        if first is not None and last is not None:
            break
    return first, last


def _role(text: str, prev: _Mention | None, m: _Mention) -> str | None:
    gap = text[max(prev.end if prev else 0, m.start - 40) : m.start]
    if prev is not None and gap.strip() in _DASHES:
        return "end"
    words = [_fold(w) for w in _WORD.findall(gap)]
    if words and words[-1] in _START_WORDS:
        return "start"
    if words and words[-1] in _END_WORDS:
        return "end"
    for word in reversed(words[-4:]):
        cue = lemma(word)
        if cue in _START_CUES or word in _START_CUES:
            return "start"
        if cue in _END_CUES or word in _END_CUES:
            return "end"
    return None


def _after(m: _Mention, start: date) -> date:
    """The end date ``m`` re-read so it comes after ``start`` where its text allows."""
    if m.kind == _WEEKDAY:
        return start + timedelta(days=(m.value.weekday() - start.weekday()) % 7 or 7)
    if m.kind == _DAY:
        year, month = start.year, start.month
        if m.value.day < start.day:
            year, month = year + month // 12, month % 12 + 1
        return _safe_date(year, month, m.value.day) or m.value
    if m.kind == _DAY_MONTH:
        same = _safe_date(start.year, m.value.month, m.value.day) or m.value
        if same >= start or same.month == start.month:
            return same  # in the same month an earlier day is a reversed range, as written
        wrapped = _safe_date(start.year + 1, m.value.month, m.value.day)
        return wrapped if wrapped is not None and wrapped - start <= _WRAP_LIMIT else same
    return m.value


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- durations ------------------------------------------------------------------------------


def _duration(text: str, mentions: list[_Mention]) -> _Duration | None:
    """The first "на две недели" / "for 10 days" / "в течение месяца" / "на полгода"."""
    tokens = list(_TOKEN.finditer(text))
    for i, token in enumerate(tokens):
        if _fold(token.group(0)) not in _DURATION_TRIGGERS:
            continue
        found = _duration_at(tokens, i + 1)
        if found is None:
            continue
        if any(found.start < m.end and m.start < found.end for m in mentions):
            continue  # "на 2 мая" is a date
        return found
    return None


def _duration_at(tokens: list[re.Match[str]], i: int) -> _Duration | None:
    """A duration starting at ``tokens[i]``: [filler] [number [number]] unit, not "... назад"."""
    n = len(tokens)
    while i < n and _fold(tokens[i].group(0)) in _FILLERS:
        i += 1
    if i >= n:
        return None
    first = i
    count: float | None = None
    counts: list[float] = []
    while i < n and len(counts) < 3:  # "на 2-3 недели", "двадцать пять дней", "a couple of"
        value = _number(tokens[i].group(0))
        if value is None:
            break
        counts.append(value)
        i += 1
        if i < n and _fold(tokens[i].group(0)) == "of":
            i += 1
    if counts:
        count = _combine(counts)
        if count is None:
            return None
    if i >= n:
        return None
    unit = _unit(tokens[i].group(0))
    if unit is None and _fold(tokens[i].group(0)) == "пол" and i + 1 < n:  # "на пол года"
        i += 1
        unit = _unit("пол" + _fold(tokens[i].group(0)))
    if unit is None:
        return None
    if i + 1 < n and _fold(tokens[i + 1].group(0)) in _PAST:
        return None  # "2 недели назад"
    months, days = _scale(unit, 1 if count is None else count)
    if months == 0 and days == 0:
        return None
    return _Duration(months, days, tokens[first].start(), tokens[i].end())


def _number(token: str) -> float | None:
    word = _fold(token)
    if word[0].isdigit():
        digits = re.match(r"\d+(?:[.,]5)?", word)
        return float(digits.group(0).replace(",", ".")) if digits else None
    if word in _NUMBERS:
        return _NUMBERS[word]
    return _NUMBERS.get(lemma(word))


def _combine(counts: list[float]) -> float | None:
    """ "двадцать пять" is 25, "2 3" (from "2-3") is 3, "a couple" is 2."""
    if len(counts) == 1:
        return counts[0]
    if len(counts) == 2 and counts[0] in _TENS and 0 < counts[1] < 10:
        return counts[0] + counts[1]
    if len(counts) == 2 and counts[0] == 1 and counts[1] == 2:  # "a couple"
        return 2
    if len(counts) == 2 and counts[0] < counts[1]:
        return counts[1]  # a span: the longer one covers the whole trip
    return None


def _unit(token: str) -> str | None:
    word = _fold(token)
    if word in ("полгода", "полугода", "полгодика"):
        return "half_year"
    if word in ("полмесяца", "полумесяца"):
        return "half_month"
    if word in ("полнедели",):
        return "half_week"
    if word in ("дн", "day", "days", "денек", "денька", "деньков", "сутки", "суток"):
        return "day"
    if word.startswith("недел") or word in ("нед", "week", "weeks", "wk", "wks"):
        return "week"
    if word.startswith("месяц") or word in ("мес", "month", "months", "mo", "mos"):
        return "month"
    if word in ("year", "years", "лет", "годик"):
        return "year"
    form = lemma(word)
    if form == "день":
        return "day"
    if form == "год":
        return "year"
    return None


def _scale(unit: str, count: float) -> tuple[int, int]:
    """(months, days) of ``count`` units; fractions are rounded up to cover a whole trip."""
    if unit == "half_year":
        return 6, 0
    if unit == "half_month":
        return 0, 15
    if unit == "half_week":
        return 0, 4
    if unit == "day":
        return 0, math.ceil(count)
    if unit == "week":
        return 0, math.ceil(count * 7)
    if unit == "year":
        return math.ceil(count * 12), 0
    whole = math.floor(count)
    return whole, 15 if count > whole else 0


def _add(start: date, d: _Duration) -> date:
    """The last day of a pause of ``d`` from ``start`` (inclusive)."""
    return _plus_months(start, d.months) + timedelta(days=d.days - 1)


def _back(end: date, d: _Duration) -> date:
    """The first day of a pause of ``d`` ending on ``end``."""
    return _plus_months(end + timedelta(days=1) - timedelta(days=d.days), -d.months)


def _plus_months(day: date, months: int) -> date:
    """The same day ``months`` later; the first of the month after when that month is too short,
    so the day before it is that month's last day."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    found = _safe_date(year, month0 + 1, day.day)
    if found is not None:
        return found
    following_year, following0 = divmod(year * 12 + month0 + 1, 12)
    return date(following_year, following0 + 1, 1)
