"""When technicians can come: ``visit_slots.csv`` read strictly, and the windows it yields.

A window is ``slot_minutes`` long and starts at the opening of an interval of the city's
``opening_hours`` (local wall-clock time) and every ``slot_minutes`` after, as long as it ends
inside the interval. Its id is its start in UTC (``2026-03-12T01:00:00+00:00``): the same on
every server, and a button made before a clock change still names the same moment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from bot.catalog.csv_rows import CatalogError, Row, read_rows
from bot.catalog.models import City
from bot.catalog.opening_hours import OpeningHours, OpeningHoursError

FILE_NAME: Final = "visit_slots.csv"
COLUMNS: Final = ("city_id", "opening_hours", "slot_minutes", "crews", "visit_fee_rub")
# A window shorter than this is no visit; longer than a day is a typo in minutes.
_MIN_SLOT, _MAX_SLOT = 15, 24 * 60


@dataclass(frozen=True, slots=True)
class CitySlots:
    city_id: str
    timezone: ZoneInfo
    hours: OpeningHours
    slot_minutes: int
    crews: int  # visits bookable in the same window
    fee_rub: Decimal  # 0: free


@dataclass(frozen=True, slots=True)
class Window:
    city_id: str
    starts_at: datetime  # aware, in the city's zone
    ends_at: datetime

    @property
    def id(self) -> str:
        return window_id(self.starts_at)


def window_id(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def parse_window_id(raw: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def load_visit_slots(directory: Path, cities: Mapping[str, City]) -> dict[str, CitySlots]:
    """The file is optional: without it no city offers visits (the flow hands over to a person).
    Anything wrong in it stops start-up with file:line."""
    path = directory / FILE_NAME
    if not path.exists():
        return {}
    out: dict[str, CitySlots] = {}
    for row in read_rows(path, COLUMNS):
        slots = _row(row, cities)
        if slots.city_id in out:
            raise row.fail(f"duplicate city_id {slots.city_id!r} (one row per city)")
        out[slots.city_id] = slots
    return out


def _row(row: Row, cities: Mapping[str, City]) -> CitySlots:
    city_id = row.text("city_id")
    city = cities.get(city_id)
    if city is None:
        raise row.fail(f"column 'city_id': unknown city {city_id!r} (not in cities.csv)")
    try:
        hours = OpeningHours.parse(row.text("opening_hours"))
    except OpeningHoursError as exc:
        raise row.fail(f"column 'opening_hours': {exc}") from None
    minutes = _whole(row, "slot_minutes")
    if not _MIN_SLOT <= minutes <= _MAX_SLOT:
        raise row.fail(f"column 'slot_minutes': must be {_MIN_SLOT}..{_MAX_SLOT}")
    crews = _whole(row, "crews")
    if crews < 1:
        raise row.fail("column 'crews': at least 1 (a city without visits has no row)")
    fee = row.decimal("visit_fee_rub")
    if fee < 0:
        raise row.fail("column 'visit_fee_rub': must not be negative")
    return CitySlots(city_id, ZoneInfo(city.timezone), hours, minutes, crews, fee)


def _whole(row: Row, column: str) -> int:
    value = row.optional_int(column)
    if value is None:
        raise CatalogError(row.path, row.line, f"column {column!r} is empty")
    return value


def windows_on(slots: CitySlots, day: date) -> Iterator[Window]:
    """The windows starting on ``day`` (the city's calendar), earliest first."""
    tz = slots.timezone
    step = timedelta(minutes=slots.slot_minutes)
    for opens, closes in slots.hours.intervals_on(day.weekday()):
        start = datetime.combine(day, opens)
        end = datetime.combine(day, closes)
        if end <= start:  # "22:00-02:00" or "09:00-24:00": the end is on the next day
            end += timedelta(days=1)
        while start + step <= end:
            # Wall-clock arithmetic, then the zone: a window is "10:00-12:00" whatever the offset.
            yield Window(slots.city_id, start.replace(tzinfo=tz), (start + step).replace(tzinfo=tz))
            start += step


def windows_from(slots: CitySlots, now: datetime, days: int) -> Iterator[Window]:
    """Windows that start after ``now`` (never one already begun), over ``days`` local days
    from today."""
    today = now.astimezone(slots.timezone).date()
    for offset in range(days):
        for window in windows_on(slots, today + timedelta(days=offset)):
            if window.starts_at > now:
                yield window


def window_at(slots: CitySlots, starts_at: datetime) -> Window | None:
    """The window of this schedule that starts at ``starts_at`` (a button's id), if any."""
    local = starts_at.astimezone(slots.timezone)
    for window in windows_on(slots, local.date()):
        if window.starts_at == local:
            return window
    return None
