"""Opening hours of offices in the OpenStreetMap ``opening_hours`` syntax.

Only the subset that provider catalogs actually use is supported:

* rules separated by ``;`` — a later rule replaces the hours of the weekdays it names;
* weekday selectors: ``Mo``, ``Mo-Fr``, ``Mo,We,Fr``, wrapping ranges like ``Fr-Mo``;
  a rule without weekdays applies to every day;
* time lists ``09:00-13:00,14:00-18:00``, ``24:00`` as an end, ranges over midnight
  (``22:00-02:00``: the part after midnight is open time of the next calendar day);
* ``off`` / ``closed`` and ``24/7``;
* ``PH`` (public holidays) is accepted and ignored, see ``_PUBLIC_HOLIDAY``.

Anything else (months, week numbers, sunrise/sunset, comments, open-ended ``+`` times,
``,``/``||`` rule separators) raises ``OpeningHoursError`` instead of being guessed at:
a wrong "we are open" answer is worse for support than a catalog validation error. For
the same reason a bare ``Mo-Fr`` (OSM: open all day) and empty rules (``;;``, a trailing
``;``) are rejected as likely typos.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal, TypeAlias, cast
from zoneinfo import ZoneInfo

__all__ = ["OpenStatus", "OpeningHours", "OpeningHoursError", "status_at"]

MINUTES_PER_DAY = 24 * 60
# A closed office reopens within a week and an open one closes within a week unless it
# is open round the clock, so 8 days ahead is always enough to see the next change.
_SEARCH_DAYS = 8

# (start, end) in minutes from a midnight. In a parsed rule ``end`` may exceed
# MINUTES_PER_DAY for ranges over midnight: 22:00-02:00 is (1320, 1560).
_Interval: TypeAlias = tuple[int, int]
_DayIntervals: TypeAlias = tuple[_Interval, ...]

_WEEKDAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_WEEKDAY_INDEX = {name.lower(): index for index, name in enumerate(_WEEKDAYS)}
_ALL_DAYS = frozenset(range(7))
# Public holidays differ per region and year and are not modelled: a "PH" selector
# matches no day, so "PH off" is a no-op and "Sa,PH 10:00-14:00" means "Sa 10:00-14:00".
_PUBLIC_HOLIDAY = "ph"
_OFF_WORDS = frozenset({"off", "closed"})

# Words that are valid OSM but outside the supported subset, mapped to a precise reason
# so a catalog editor knows the syntax is not a typo but simply not supported.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_UNSUPPORTED_WORDS = {
    **{month: "month selectors are not supported" for month in _MONTHS},
    "week": "week numbers are not supported",
    "sh": "school holidays (SH) are not supported",
    "easter": "easter dates are not supported",
    **{
        solar: "sunrise/sunset times are not supported"
        for solar in ("sunrise", "sunset", "dawn", "dusk")
    },
    "open": "'open' is not supported, give explicit times",
    "unknown": "'unknown' state is not supported",
}
_UNSUPPORTED_SYMBOLS = {
    "+": "open-ended times ('+') are not supported",
    "|": "fallback rules ('||') are not supported",
    "/": "repeating times ('/') are not supported",
    "[": "nth weekday of month ('[..]') is not supported",
    "(": "variable times ('(..)') are not supported",
}

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<time>\d{1,2}:\d{2})
    | (?P<number>\d+)
    | (?P<word>[^\W\d_]+)
    | (?P<comment>"[^"]*"?)
    | (?P<symbol>.)
    """,
    re.VERBOSE,
)

_TokenKind = Literal["time", "number", "word", "comment", "symbol"]


class OpeningHoursError(ValueError):
    """An ``opening_hours`` string that is malformed or outside the supported subset."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    text: str


@dataclass(frozen=True, slots=True)
class _Rule:
    days: frozenset[int]
    intervals: _DayIntervals


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Parsed weekly schedule; build it with :meth:`parse`, not the constructor."""

    spec: str
    # Seven entries, Monday first: open time within each calendar day, all inside
    # [0, MINUTES_PER_DAY]. The after-midnight part of "Fr 22:00-02:00" is stored on
    # Saturday, so a later "Sa off" closes it — the same semantics as opening_hours.js.
    _week: tuple[_DayIntervals, ...] = field(repr=False)

    @classmethod
    def parse(cls, spec: str) -> OpeningHours:
        if not spec.strip():
            raise OpeningHoursError("opening_hours is empty")
        week: list[list[_Interval]] = [[] for _ in range(7)]
        for rule_text in spec.split(";"):
            _apply_rule(week, _parse_rule(rule_text.strip(), spec))
        return cls(spec=spec, _week=tuple(_merge(day) for day in week))

    @property
    def always_open(self) -> bool:
        # Checked on coverage rather than on the literal "24/7" so that equivalent
        # spellings like "Mo-Su 00:00-24:00" are recognised as round the clock too.
        return all(day == ((0, MINUTES_PER_DAY),) for day in self._week)

    def is_open(self, at: datetime) -> bool:
        """Whether the office is open at ``at``, a wall-clock time in the office's zone."""
        minute = _minutes_since_midnight(at)
        return any(start <= minute < end for start, end in self._week[at.weekday()])

    def next_change(self, at: datetime) -> datetime | None:
        """Closing time if open at ``at``, next opening time if closed, else ``None``.

        ``None`` means nothing changes within the search window: open round the clock or
        never open. The result keeps ``at``'s tzinfo (wall-clock arithmetic).
        """
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        minute = _minutes_since_midnight(at)
        horizon = (_SEARCH_DAYS + 1) * MINUTES_PER_DAY
        for start, end in self._timeline(at.weekday(), _SEARCH_DAYS + 1):
            if start <= minute < end:
                # Open through the whole window means there is no closing to report.
                return None if end >= horizon else midnight + timedelta(minutes=end)
            if start > minute:
                return midnight + timedelta(minutes=start)
        return None

    def intervals_on(self, weekday: int) -> tuple[tuple[time, time], ...]:
        """Intervals that start on ``weekday`` (0 = Monday), for rendering a schedule.

        A night shift is shown once, on the day it starts: for "Fr 22:00-02:00" Friday
        gives ``(22:00, 02:00)`` and Saturday gives nothing. An end that is not after the
        start therefore means "past midnight"; ``(09:00, 00:00)`` is 09:00-24:00.
        """
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {weekday}")
        return tuple(
            (_minute_to_time(start), _minute_to_time(end))
            for start, end in self._display_intervals(weekday)
        )

    def _display_intervals(self, weekday: int) -> _DayIntervals:
        intervals = list(self._week[weekday])
        if self._night_continues(weekday - 1):
            intervals.pop(0)  # already shown as the previous day's night shift
        if self._night_continues(weekday):
            start, _ = intervals[-1]
            intervals[-1] = (start, MINUTES_PER_DAY + self._week[(weekday + 1) % 7][0][1])
        return tuple(intervals)

    def _night_continues(self, weekday: int) -> bool:
        """Whether the evening of ``weekday`` runs into a morning of the next day.

        Only joined when the morning ends before the evening starts, so the joined end
        is unambiguous on a clock; "24/7" and "09:00-24:00; 00:00-10:00" stay unjoined.
        """
        today, tomorrow = self._week[weekday % 7], self._week[(weekday + 1) % 7]
        if not today or not tomorrow:
            return False
        (evening_start, evening_end), (morning_start, morning_end) = today[-1], tomorrow[0]
        return (
            evening_end == MINUTES_PER_DAY
            and evening_start > 0
            and morning_start == 0
            and morning_end < evening_start
        )

    def _timeline(self, first_weekday: int, days: int) -> _DayIntervals:
        """Open stretches over ``days`` consecutive days, in minutes from the first midnight.

        Merging across midnights turns "…-24:00" followed by "00:00-…" into one stretch,
        so the reported closing time is the real one and not a fake midnight closing.
        """
        shifted = (
            (offset * MINUTES_PER_DAY + start, offset * MINUTES_PER_DAY + end)
            for offset in range(days)
            for start, end in self._week[(first_weekday + offset) % 7]
        )
        return _merge(shifted)


@dataclass(frozen=True, slots=True)
class OpenStatus:
    is_open: bool
    changes_at: datetime | None  # closes at (if open) / opens at (if closed), office-local


def status_at(hours: OpeningHours, when_utc: datetime, tz: str) -> OpenStatus:
    """Convert an aware UTC datetime to the office's IANA time zone and evaluate.

    ``changes_at`` is an aware datetime in the office's zone. An unknown ``tz`` raises
    ``zoneinfo.ZoneInfoNotFoundError`` (a catalog error the caller should surface).
    """
    if when_utc.tzinfo is None or when_utc.utcoffset() is None:
        # A naive value here would silently be read as server-local time.
        raise ValueError("when_utc must be timezone-aware")
    local = when_utc.astimezone(ZoneInfo(tz))
    return OpenStatus(is_open=hours.is_open(local), changes_at=hours.next_change(local))


# --- evaluation helpers -------------------------------------------------------------


def _apply_rule(week: list[list[_Interval]], rule: _Rule) -> None:
    """Replace the named calendar days with the rule's hours (OSM override semantics)."""
    # Clear every named day before adding, so that in "Fr-Sa 22:00-02:00" clearing
    # Saturday does not wipe the Friday night that was just added to it.
    for day in rule.days:
        week[day] = []
    for day in rule.days:
        for start, end in rule.intervals:
            week[day].append((start, min(end, MINUTES_PER_DAY)))
            if end > MINUTES_PER_DAY:
                # The part after midnight belongs to the next calendar day; a later rule
                # naming that day overrides it, while overriding only this day keeps it.
                week[(day + 1) % 7].append((0, end - MINUTES_PER_DAY))


def _minutes_since_midnight(at: datetime) -> float:
    # Fractional so that 12:59:30 is still before a 13:00 closing.
    return at.hour * 60 + at.minute + (at.second + at.microsecond / 1_000_000) / 60


def _minute_to_time(minute: int) -> time:
    hours, minutes = divmod(minute % MINUTES_PER_DAY, 60)
    return time(hours, minutes)


def _merge(intervals: Iterable[_Interval]) -> _DayIntervals:
    """Sort and join overlapping or touching intervals."""
    merged: list[_Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


# --- parsing ------------------------------------------------------------------------


class _Cursor:
    """Position in the tokens of one rule; knows the rule text for error messages."""

    def __init__(self, tokens: list[_Token], rule: str) -> None:
        self._tokens = tokens
        self._pos = 0
        self.rule = rule

    def peek(self, ahead: int = 0) -> _Token | None:
        index = self._pos + ahead
        return self._tokens[index] if index < len(self._tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end")
        self._pos += 1
        return token

    def at_end(self) -> bool:
        return self._pos >= len(self._tokens)

    def error(self, message: str) -> OpeningHoursError:
        return OpeningHoursError(f"{message} in '{self.rule}'")


def _tokenize(rule: str) -> Iterator[_Token]:
    for match in _TOKEN_RE.finditer(rule):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "comment":
            raise OpeningHoursError(f"comments are not supported: {match.group()} in '{rule}'")
        # The remaining group names are exactly the _TokenKind literals.
        yield _Token(cast(_TokenKind, kind), match.group())


def _parse_rule(rule: str, spec: str) -> _Rule:
    if not rule:
        raise OpeningHoursError(f"empty rule (stray ';') in '{spec}'")
    if re.sub(r"\s+", "", rule) == "24/7":
        return _Rule(_ALL_DAYS, ((0, MINUTES_PER_DAY),))
    cursor = _Cursor(list(_tokenize(rule)), rule)
    days = _parse_weekdays(cursor)
    if _is_off_word(cursor.peek()):
        cursor.take()
        intervals: _DayIntervals = ()
    elif cursor.at_end():
        # OSM reads a bare "Mo-Fr" as open all day; in a catalog it is almost always
        # a forgotten time, so demand an explicit "00:00-24:00".
        raise cursor.error("missing times (use '00:00-24:00' for all day)")
    else:
        intervals = _parse_time_ranges(cursor)
    _expect_end(cursor)
    return _Rule(_ALL_DAYS if days is None else days, intervals)


def _parse_weekdays(cursor: _Cursor) -> frozenset[int] | None:
    """Weekday selector, or ``None`` when the rule has none (applies to every day)."""
    days: set[int] = set()
    seen_selector = False
    while (token := cursor.peek()) is not None and token.kind == "word":
        if _is_off_word(token):
            break
        seen_selector = True
        days |= _parse_weekday_item(cursor)
        if not (_is_symbol(cursor.peek(), ",") and _is_word(cursor.peek(1))):
            break
        cursor.take()
    return frozenset(days) if seen_selector else None


def _parse_weekday_item(cursor: _Cursor) -> set[int]:
    """One ``Mo`` / ``Mo-Fr`` / ``PH`` element of a weekday list."""
    first = cursor.take()
    if not _is_symbol(cursor.peek(), "-"):
        day = _weekday(first, cursor)
        return set() if day is None else {day}
    cursor.take()
    last = cursor.peek()
    if last is None or last.kind != "word":
        raise _unexpected(cursor, last, f"expected a weekday after '{first.text}-'")
    cursor.take()
    start, end = _weekday(first, cursor), _weekday(last, cursor)
    if start is None or end is None:
        raise cursor.error("'PH' cannot be part of a weekday range")
    span = (end - start) % 7  # wrapping ranges: Fr-Mo is Fr, Sa, Su, Mo
    return {(start + step) % 7 for step in range(span + 1)}


def _weekday(token: _Token, cursor: _Cursor) -> int | None:
    """Index of a weekday name, ``None`` for a public holiday selector."""
    word = token.text.lower()
    if word == _PUBLIC_HOLIDAY:
        return None
    if word in _WEEKDAY_INDEX:
        return _WEEKDAY_INDEX[word]
    if word in _UNSUPPORTED_WORDS:
        raise cursor.error(f"{_UNSUPPORTED_WORDS[word]}: '{token.text}'")
    raise cursor.error(f"unknown weekday '{token.text}'")


def _parse_time_ranges(cursor: _Cursor) -> _DayIntervals:
    intervals = [_parse_time_range(cursor)]
    while _is_symbol(cursor.peek(), ",") and not _is_word(cursor.peek(1)):
        cursor.take()
        intervals.append(_parse_time_range(cursor))
    return _merge(intervals)


def _parse_time_range(cursor: _Cursor) -> _Interval:
    start_token = cursor.peek()
    start = _parse_time(cursor, is_end=False)
    dash = cursor.peek()
    if not _is_symbol(dash, "-"):
        raise _unexpected(cursor, dash, f"expected '-' after '{_text(start_token)}'")
    cursor.take()
    end_token = cursor.peek()
    end = _parse_time(cursor, is_end=True)
    if end == start:
        raise cursor.error(
            f"empty time range '{_text(start_token)}-{_text(end_token)}'"
            " (use '00:00-24:00' for all day)"
        )
    # An end not after the start runs past midnight into the next day.
    return (start, end if end > start else end + MINUTES_PER_DAY)


def _parse_time(cursor: _Cursor, *, is_end: bool) -> int:
    token = cursor.peek()
    if token is None or token.kind != "time":
        raise _unexpected(cursor, token, "expected a time like '09:00'")
    cursor.take()
    hours, minutes = (int(part) for part in token.text.split(":"))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes != 0):
        raise cursor.error(f"invalid time '{token.text}'")
    if hours == 24 and not is_end:
        raise cursor.error("'24:00' can only end a time range")
    return hours * 60 + minutes


def _expect_end(cursor: _Cursor) -> None:
    token = cursor.peek()
    if token is None:
        return
    if _is_off_word(token):
        # OSM "12:00-13:00 off" closes only part of a day; list open intervals instead.
        raise cursor.error(f"'{token.text}' after times is not supported")
    if _is_symbol(token, ",") or (_is_word(token) and token.text.lower() in _WEEKDAY_INDEX):
        # "Mo 10:00-12:00, Sa ..." is an OSM additional rule; we only support ';'.
        raise cursor.error(f"unexpected '{token.text}' (use ';' to separate rules)")
    raise _unexpected(cursor, token)


def _unexpected(
    cursor: _Cursor, token: _Token | None, expected: str | None = None
) -> OpeningHoursError:
    """Error for ``token`` that prefers a specific "not supported" reason if known."""
    if token is None:
        return cursor.error(f"{expected or 'unexpected token'}, got end of rule")
    reason = (
        _UNSUPPORTED_WORDS.get(token.text.lower())
        if token.kind == "word"
        else _UNSUPPORTED_SYMBOLS.get(token.text)
    )
    if reason is not None:
        return cursor.error(f"{reason}: '{token.text}'")
    # A weekday where a time should be is nearly always a missing separator.
    hint = " (missing ',' or ';'?)" if token.text.lower() in _WEEKDAY_INDEX else ""
    if expected is None:
        return cursor.error(f"unexpected '{token.text}'{hint}")
    return cursor.error(f"{expected}, got '{token.text}'{hint}")


def _is_symbol(token: _Token | None, symbol: str) -> bool:
    return token is not None and token.kind == "symbol" and token.text == symbol


def _is_word(token: _Token | None) -> bool:
    return token is not None and token.kind == "word"


def _is_off_word(token: _Token | None) -> bool:
    return token is not None and token.kind == "word" and token.text.lower() in _OFF_WORDS


def _text(token: _Token | None) -> str:
    return "" if token is None else token.text
