"""Dates and times as Russian customers write them for a technician visit or a call back:
"завтра после 18:00", "в четверг", "25 ноября", "через 2 дня", "с 10 до 12", "в 7 вечера".

Values are normalised (ISO date, ``HH:MM``) relative to ``today``; a time may carry a qualifier
("after", "before", "from", "to") taken from the preposition in front of it.

A whole hour from 1 to 7 with no "утра" is taken as the afternoon or evening ("после 5" is 17:00,
"с 10 до 6" ends at 18:00, "с 7 до 9" is still the morning): nobody asks a technician or a call
back for five in the morning. A clock ("5:30") is taken as written.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

from bot.intents.normalize import basic, lemma, morph
from bot.intents.spans import SpanSet


@dataclass(frozen=True, slots=True)
class Found:
    kind: str  # "date" or "time"
    value: str
    start: int
    end: int
    qualifier: str | None = None


@lru_cache(maxsize=65536)
def morph_tags(word: str) -> tuple[frozenset[str], ...]:
    """Grammemes of the likeliest analyses of a lowercase word, best first (at most three);
    ``UNKN`` alone for a word the dictionary does not know."""
    parses = morph().parse(word)[:3]
    out = []
    for p in parses:
        grammemes = set(p.tag.grammemes)
        if not p.is_known:
            grammemes.add("UNKN")
        out.append(frozenset(grammemes))
    return tuple(out)


# A date without a year this far in the past is still this year's; earlier ones are next year's.
_RECENT = timedelta(days=92)
_RELATIVE = {
    "сегодня": 0, "седня": 0, "сегодн": 0, "завтра": 1, "завтро": 1, "зафтра": 1,
    "послезавтра": 2, "послезавтро": 2, "вчера": -1, "позавчера": -2,
    "today": 0, "tomorrow": 1, "yesterday": -1,
}  # fmt: skip
_WEEKDAYS = {
    "понедельник": 0, "вторник": 1, "среда": 2, "четверг": 3, "пятница": 4, "суббота": 5,
    "воскресенье": 6, "пн": 0, "вт": 1, "ср": 2, "чт": 3, "пт": 4, "сб": 5, "вс": 6,
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6,
}  # fmt: skip
_WEEKDAY_OPENINGS = tuple({w[:3] for w in _WEEKDAYS if len(w) > 2})
# Abbreviations count only after a preposition: "ср" alone is too often something else.
_ABBREVIATED = {"пн", "вт", "ср", "чт", "пт", "сб", "вс"}
_NEXT = {"следующий", "след", "next"}
_LAST = {"прошлый", "прошедший", "last"}
# Words that make "с понедельника" mean since the last Monday, not from the next one.
_PAST_CUE = re.compile(
    r"\b(?:не\s+работа\w*|нет|пропа\w*|отключ\w*|был\w*|перестал\w*|не\s+показыва\w*|"
    r"не\s+груз\w*|сломал\w*|лежит|глючит|тормозит|не\s+могу)\b",
    re.I,
)
# Month names as written after a day: full (any case, via the lemma), abbreviated, English.
_MONTH_NAMES = {
    "январь": 1, "февраль": 2, "март": 3, "апрель": 4, "май": 5, "июнь": 6, "июль": 7,
    "август": 8, "сентябрь": 9, "октябрь": 10, "ноябрь": 11, "декабрь": 12,
}  # fmt: skip
_MONTH_ABBREVIATIONS = {
    "янв": 1, "фев": 2, "февр": 2, "мар": 3, "апр": 4, "мая": 5, "июн": 6, "июл": 7, "авг": 8,
    "сен": 9, "сент": 9, "окт": 10, "ноя": 11, "нояб": 11, "дек": 12, "january": 1, "jan": 1,
    "february": 2, "feb": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
# Genitive forms, the ones typed after a day; misspellings are compared against these.
_MONTH_GENITIVES = {
    "января": 1, "февраля": 2, "марта": 3, "апреля": 4, "мая": 5, "июня": 6, "июля": 7,
    "августа": 8, "сентября": 9, "октября": 10, "ноября": 11, "декабря": 12,
}  # fmt: skip
_QUALIFIERS = {
    "после": "after", "позже": "after", "позднее": "after", "after": "after", "до": "before",
    "к": "before", "before": "before", "by": "before", "с": "from", "from": "from", "со": "from",
    "от": "from", "по": "to",
}  # fmt: skip
_VERSION_WORDS = {"версия", "прошивка", "сборка", "ip", "v", "ver", "version", "модель"}
_PARTS_OF_DAY = {
    "утра": "morning", "утром": "morning", "am": "morning", "дня": "day", "днем": "day",
    "вечера": "evening", "вечером": "evening", "pm": "evening", "ночи": "night", "ночью": "night",
}  # fmt: skip
# Words before "в 8" that make it a time rather than a house or a flat number.
_TIME_TRIGGERS = {
    "позвонить", "перезвонить", "звонить", "прийти", "приходить", "приехать", "приезжать",
    "подъехать", "подойти", "зайти", "заехать", "набрать", "связаться", "удобно", "можно",
    "давайте", "лучше", "только", "дома", "буду", "будем", "ждать", "жду", "ждем", "подойдет",
    "смочь", "сможете", "устроить",
}  # fmt: skip
# Words that may follow a bare hour inside a time range: "с 10 до 12", "с 9 и до 18".
_RANGE_WORDS = {"до", "по", "и", "или", "to", "and", "or", "till", "until"}
_SMALL_NUMBERS = {"один": 1, "одну": 1, "два": 2, "две": 2, "три": 3, "пару": 2, "пять": 5}

_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+")
_IN_DAYS = re.compile(
    r"\bчерез\s+(\d{1,2}|один|одну|два|две|три|пару|пять)?\s*(дн[яейь]+|день|недел[юиь]+)",
    re.I,
)
_DAY_MONTH = re.compile(
    r"(?<![\d.,:])(\d{1,2})(?:-?(?:го|ое|е))?\s*([A-Za-zА-Яа-яЁё]{3,10})\b\.?"
    r"(?:\s+(20\d\d)(?!\d)(?:\s*г(?:ода?)?\b\.?)?)?",
    re.I,
)
# "с 25 по 30 ноября", "25-30 ноября": the first day of a range written before the month.
_RANGE_START = re.compile(r"(?<![\d.,:])(\d{1,2})(?:-?го)?\s*(?:-|–|—|по|до|и|или)\s*$", re.I)
_DAY_OF_MONTH = re.compile(
    r"(?<![\d.,:])(\d{1,2})(?:-?(?:го|ое|е))?\s+числ[аоу]\b|(?<![\d.,:/-])(\d{1,2})-?го\b",
    re.I,
)
_NUMERIC_DATE = re.compile(
    r"(?<![\d.:/,-])(\d{1,2})[./](\d{2})(?:[./](\d{4}|\d{2}))?(?![\d:/]|[.,]\d)"
)
_CLOCK = re.compile(r"(?<![\d.:])([01]?\d|2[0-3])[:.-]([0-5]\d)(?![\d:]|[.,]\d)")
_HOUR_RANGE = re.compile(
    r"\b(с|со|от|в|from)\s+(\d{1,2})(?:-?(?:ти|х))?\s*(?:-|–|—)\s*(\d{1,2})(?:-?(?:ти|х))?"
    r"(?:\s*(?:ч\b|час(?:ам|ов|а)?\b))?(?:\s+(утра|дня|вечера|ночи|утром|днем|днём|вечером|ночью))?"
    r"(?![\d:.\w-])",
    re.I,
)
_HOUR = re.compile(
    r"\b(в|во|к|после|позже|до|с|со|от|at|after|before|by|from)\s+(\d{1,2})(?:-?(?:ти|х))?"
    r"(?!-?[а-яё])"
    r"(?:\s*(ч\b|час(?:ам|ов|а)?\b))?"
    r"(?:\s+(утра|дня|вечера|ночи|утром|днем|днём|вечером|ночью|am|pm)\b)?"
    r"(?![\d:.,/-]\d|\d|\s*[+*/=×])",
    re.I,
)
# "8 утра", "7 часов вечера" with no preposition before.
# "2 дня" and "3 ночи" alone are days and nights, "2 часа дня" is a time.
_HOUR_OF_DAY = re.compile(
    r"(?<![\d:.,/+-])(\d{1,2})(?:-?(?:ти|х))?(?:\s*(?:ч\b|час(?:ам|ов|а)?\b)\.?\s+(дня|ночи)|"
    r"(?:\s*(?:ч\b|час(?:ам|ов|а)?\b)\.?)?\s+(утра|вечера|утром|днем|днём|вечером|ночью))\b",
    re.I,
)
_PART_AFTER = re.compile(r"\s+(утра|дня|вечера|ночи)\b", re.I)
_NOON = re.compile(r"\b(?:в\s+)?(полдень|полночь)\b", re.I)


def _word_before(text: str, start: int) -> str:
    before = _WORD.findall(text[max(0, start - 16) : start])
    return basic(before[-1]) if before else ""


def _qualifier_before(text: str, start: int) -> str | None:
    # Only the word right before the number: "завтра после 18:00", not "после обеда в 3".
    m = re.search(r"([A-Za-zА-Яа-яЁё]+)\s*$", text[max(0, start - 16) : start])
    return _QUALIFIERS.get(basic(m.group(1))) if m else None


def _hour_24(hour: int, part: str | None, *, bare: bool) -> int | None:
    """The hour on a 24-hour clock, given the part of the day written after it ("вечера").
    ``bare``: a whole hour without a part of the day ("в 5", "в 5 часов"), where 1..7 is read as
    the afternoon or evening; a clock ("5:30") is taken as written."""
    period = _PARTS_OF_DAY.get(basic(part)) if part else None
    if hour > 23:
        return None
    if period is not None and hour > 12:
        return hour  # "в 18 часов вечера"
    if period in ("day", "evening") and hour < 12:
        if period == "day" and hour >= 10:  # "в 11 дня" is late morning
            return hour
        return hour + 12
    if period == "night":
        if hour == 12:
            return 0
        return hour + 12 if hour >= 6 else hour  # "в 11 ночи" is 23:00, "в 2 ночи" 02:00
    if period == "morning":
        return 0 if hour == 12 else hour
    if period is None and bare and 1 <= hour <= 7:
        return hour + 12
    return hour


def _distance(a: str, b: str) -> int:
    """Plain Levenshtein distance (short words only)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@lru_cache(maxsize=4096)
def month_of(word: str) -> int | None:
    """Month number of a month word as typed after a day: "ноября", "дек", "Декабрь", "нояюря"."""
    w = basic(word).rstrip(".")
    if w in _MONTH_ABBREVIATIONS:
        return _MONTH_ABBREVIATIONS[w]
    if w in _MONTH_GENITIVES:
        return _MONTH_GENITIVES[w]
    month = _MONTH_NAMES.get(lemma(w))
    if month is not None or len(w) < 5:
        return month
    # A typo: one edit in a word of up to six letters, two in a longer one; the first two
    # letters must be right ("декодера" is not "декабря").
    for name, number in _MONTH_GENITIVES.items():
        if w[:2] == name[:2] and _distance(w, name) <= (1 if len(name) <= 6 else 2):
            return number
    return None


def find_dates(text: str, today: date) -> list[Found]:
    out: list[Found] = []
    taken = SpanSet()  # the spans of ``out``, searched in log time

    def add(day: date | None, start: int, end: int) -> None:
        if day is not None and not taken.overlaps(start, end):
            out.append(Found("date", day.isoformat(), start, end))
            taken.add(start, end)

    for m in _IN_DAYS.finditer(text):
        count_word = (m.group(1) or "1").lower()
        count = int(count_word) if count_word.isdigit() else _SMALL_NUMBERS.get(count_word, 1)
        days = count * (7 if m.group(2).lower().startswith("недел") else 1)
        add(today + timedelta(days=days), m.start(), m.end())
    for m in _DAY_MONTH.finditer(text):
        month = month_of(m.group(2))
        if month is None:
            continue
        first = _RANGE_START.search(text, max(0, m.start() - 12), m.start())
        if first is not None:
            add(_valid_date(int(first.group(1)), month, m.group(3), today), *first.span(1))
        end = m.end()
        if text[end - 1] == "." and _fold(m.group(2)) not in _MONTH_ABBREVIATIONS:  # "7 марта."
            end -= 1
        add(_valid_date(int(m.group(1)), month, m.group(3), today), m.start(), end)
    for m in _DAY_OF_MONTH.finditer(text):
        group = 1 if m.group(1) else 2
        day = int(m.group(group))
        if group == 2 and counts_something(text, m.end(), day):
            continue  # "из 5-го подъезда"
        add(_day_of_month(day, today), m.start(group), m.end())
    for m in _NUMERIC_DATE.finditer(text):
        if taken.overlaps(m.start(), m.end()):
            continue
        if m.group(3) is None and _looks_like_clock(text, m):
            continue  # "в 10.30", "после 18.00": a time written with a dot
        if m.group(3) is None and lemma(_word_before(text, m.start())) in _VERSION_WORDS:
            continue  # "версия прошивки 2.10"
        add(_valid_date(int(m.group(1)), int(m.group(2)), m.group(3), today), m.start(), m.end())
    words = list(_WORD.finditer(text))
    for i, m in enumerate(words):
        word = _fold(m.group(0))
        if word in _RELATIVE:
            add(today + timedelta(days=_RELATIVE[word]), m.start(), m.end())
            continue
        weekday = _weekday(word)
        if weekday is None:
            continue
        prev = _fold(words[i - 1].group(0)) if i else ""
        if word in _ABBREVIATED and prev not in ("в", "во", "on"):
            continue
        behind = (today.weekday() - weekday) % 7
        if lemma(prev) in _LAST or prev in _LAST:
            # "в прошлую пятницу": the last one before today
            add(today - timedelta(days=behind or 7), words[i - 1].start(), m.end())
            continue
        if prev in ("с", "со", "since") and _PAST_CUE.search(text):
            # "с понедельника не работает": since the last Monday (today, if it is one)
            add(today - timedelta(days=behind), m.start(), m.end())
            continue
        ahead = (weekday - today.weekday()) % 7 or 7
        is_next = lemma(prev) in _NEXT or prev in _NEXT
        # "в следующий вторник" is the Tuesday of next week, which may be the coming one.
        if is_next and ahead < 7 and today.weekday() < weekday:
            ahead += 7
        start = words[i - 1].start() if is_next else m.start()
        add(today + timedelta(days=ahead), start, m.end())
    out.sort(key=lambda f: f.start)
    return out


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е")


def _weekday(word: str) -> int | None:
    """0..6 for a weekday in any case ("в среду", "с понедельника"), or an abbreviation."""
    if word in _ABBREVIATED:
        return _WEEKDAYS[word]
    # The dictionary only for words that may be one: most words are not.
    if len(word) < 4 or not word.startswith(_WEEKDAY_OPENINGS):
        return None
    return _WEEKDAYS.get(lemma(word))


def _looks_like_clock(text: str, m: re.Match[str]) -> bool:
    """ "в 10.30" or "после 18.00": a time written with a dot, after a preposition."""
    if int(m.group(2)) > 12:
        return True
    prep = _word_before(text, m.start())
    return (prep in _QUALIFIERS or prep in ("в", "во", "at")) and m.group(2) in (
        "00", "15", "30", "45",
    )  # fmt: skip


def _valid_date(day: int, month: int, year_text: str | None, today: date) -> date | None:
    if year_text:
        try:
            return date(int(year_text) + (2000 if len(year_text) == 2 else 0), month, day)
        except ValueError:
            return None
    # No year: the next such day, or a recent one ("с 1 октября не работает" said in November);
    # "5 января" said in November is next January.
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            found = date(year, month, day)
        except ValueError:  # 29 February, 31 April
            continue
        if found >= today - _RECENT:
            return found
    return None


def _day_of_month(day: int, today: date) -> date | None:
    """ "25 числа", "до 20-го": this month's day, or next month's once it has passed."""
    month, year = today.month, today.year
    if day < today.day:
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_times(
    text: str, taken: Sequence[tuple[int, int]], dates: Sequence[tuple[int, int]] = ()
) -> list[Found]:
    """Times of day in text, outside the ``taken`` spans. ``dates`` (spans of dates found in the
    text) make a bare "в 10" after them a time: "завтра в 10"."""
    out: list[Found] = []
    covered = SpanSet(taken)  # ``taken`` and the times found so far
    date_ends = sorted(end for _, end in dates)

    def add(value: str, start: int, end: int, qualifier: str | None) -> None:
        if not covered.overlaps(start, end):
            out.append(Found("time", value, start, end, qualifier))
            covered.add(start, end)

    for m in _CLOCK.finditer(text):
        sep = text[m.end(1)]
        if sep != ":":
            # "10.30" / "18-00" only after a preposition; "Бутина 10-5", "1.30 гб" are not times.
            prep = _word_before(text, m.start())
            if not (_qualifier_before(text, m.start()) or prep in ("в", "во", "at")):
                continue
            if sep == "-" and m.group(2) not in ("00", "15", "30", "45"):
                continue  # "с 10-12" is a range of hours
        after = _PART_AFTER.match(text, m.end())  # "5:30 вечера" is 17:30
        hour = _hour_24(int(m.group(1)), after.group(1) if after else None, bare=False)
        if hour is not None:
            qualifier = _qualifier_before(text, m.start())
            add(f"{hour:02d}:{m.group(2)}", m.start(), m.end(), qualifier)
    for m in _HOUR_RANGE.finditer(text):
        if counts_something(text, m.end(), int(m.group(3))):
            continue  # "с 10-12 лет"
        first = _hour_24(int(m.group(2)), m.group(4), bare=m.group(4) is None)
        second = _hour_24(int(m.group(3)), m.group(4), bare=m.group(4) is None)
        if first is None or second is None:
            continue
        if first > second and first >= 12 and int(m.group(2)) <= 7:
            first -= 12  # "с 7-9": from seven in the morning
        if first < second:
            add(f"{first:02d}:00", m.start(2), m.end(2), "from")
            add(f"{second:02d}:00", m.start(3), m.end(), "to")
    for m in _NOON.finditer(text):
        value = "12:00" if m.group(1).lower() == "полдень" else "00:00"
        add(value, m.start(1), m.end(1), _qualifier_before(text, m.start(1)))
    for m in _HOUR.finditer(text):
        prep = basic(m.group(1))
        unit, part = m.group(3), m.group(4)
        if not (unit or part):
            if counts_something(text, m.end(), int(m.group(2))):
                continue  # "после 3 дней", "до 100 мбит", "в 5 подъезде"
            # "в 5" alone may be a house or a flat; after "позвоните" or "завтра" it is a time.
            if prep in ("в", "во", "at") and not _time_context(text, m.start(), date_ends):
                continue
            if prep == "от" and _next_word(text, m.end()) not in _RANGE_WORDS:
                continue  # "от 5" is a time only in "от 10 до 12"
        hour = _hour_24(int(m.group(2)), part, bare=part is None)
        if hour is not None:
            add(f"{hour:02d}:00", m.start(2), m.end(), _QUALIFIERS.get(prep))
    for m in _HOUR_OF_DAY.finditer(text):
        hour = _hour_24(int(m.group(1)), m.group(2) or m.group(3), bare=False)
        if hour is not None:
            add(f"{hour:02d}:00", m.start(), m.end(), _qualifier_before(text, m.start()))
    out.sort(key=lambda f: f.start)
    return _ranges(text, out)


_NEXT_WORD = re.compile(r"\s*([A-Za-zА-Яа-яЁё]+)")
# Units after a number, often missing from the dictionary.
_COUNTED = frozenset(
    {
        "мбит", "мб", "гб", "тб", "кб", "кбит", "гбит", "мбс", "ггц", "мгц", "гц", "ghz", "mhz",
        "mbps", "mb", "gb", "р", "руб", "лет", "раз", "шт", "мин", "сек", "км", "см", "мм", "кг",
        "ч",
    }
)  # fmt: skip


def _next_word(text: str, end: int) -> str:
    m = _NEXT_WORD.match(text, end)
    return basic(m.group(1)) if m else ""


def counts_something(text: str, end: int, number: int) -> bool:
    """Is the number a count of something ("после 3 дней", "до 100 мбит", "в 5 подъезде")?
    A noun in the nominative is not counted unless the number ends in 1 ("после 6 интернет
    пропадает" is a time)."""
    word = _next_word(text, end)
    if not word or word in _RANGE_WORDS or word in _PARTS_OF_DAY:
        return False
    if word in _COUNTED:
        return True
    for tags in morph_tags(word)[:2]:
        if "NOUN" not in tags:
            return False
        if not tags & {"nomn", "accs"} or (number % 10 == 1 and number != 11):
            return True
    return False


_HOUR_AFTER = re.compile(r"\w+\s+\d{1,2}(?:-?(?:ти|х))?")


def _time_context(text: str, start: int, date_ends: Sequence[int]) -> bool:
    """A call-back or visit word, or a date (``date_ends``: where each ends, sorted), right
    before "в 8"."""
    before = text[max(0, start - 24) : start]
    k = bisect_left(date_ends, start - 12)  # a search, not a scan: a message may hold thousands
    if k < len(date_ends) and date_ends[k] <= start:
        return True
    words = _WORD.findall(before)
    if words and lemma(basic(words[-1])) in _TIME_TRIGGERS:
        return True
    m = _HOUR_AFTER.match(text, start)
    return m is not None and lemma(_next_word(text, m.end())) in _TIME_TRIGGERS


def _ranges(text: str, times: list[Found]) -> list[Found]:
    """ "с 10 до 12", "10:00-12:00": the end of a range is "to", its start "from"."""
    out = list(times)
    for k in range(1, len(out)):
        a, b = out[k - 1], out[k]
        between = basic(text[a.end : b.start])
        dash = between in ("-", "–", "—")
        if dash or (a.qualifier == "from" and between in ("до", "по", "и до", "- до")):
            if a.qualifier is None and dash:
                out[k - 1] = replace(a, qualifier="from")
            if out[k - 1].qualifier == "from":
                out[k] = replace(b, qualifier="to")
                start, end = int(out[k - 1].value[:2]), int(b.value[:2])
                bare = text[a.start : a.end].isdigit()
                if bare and start > end and 13 <= start <= 19 and start - 12 < end:
                    # "с 7 до 9": the bare 7 read as evening starts a morning range after all
                    out[k - 1] = replace(out[k - 1], value=f"{start - 12:02d}{a.value[2:]}")
    return out
