"""visit_slots.csv: optional, strict (file:line), windows on the city's own clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.catalog.catalog import load_catalog
from bot.catalog.csv_rows import CatalogError
from bot.visits.schedule import load_visit_slots, windows_from, windows_on
from tests.conftest import ROOT

DEMO = ROOT / "bot" / "demo_catalog"
HEADER = "city_id,opening_hours,slot_minutes,crews,visit_fee_rub\n"


@pytest.fixture(scope="module")
def cities():  # type: ignore[no-untyped-def]
    return load_catalog(DEMO).cities


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "visit_slots.csv").write_text(HEADER + body, encoding="utf-8")
    return tmp_path


def test_demo_file_loads_for_the_four_cities(cities) -> None:  # type: ignore[no-untyped-def]
    slots = load_visit_slots(DEMO, cities)
    assert sorted(slots) == ["bratsk", "chita", "irkutsk", "khabarovsk"]
    assert str(slots["khabarovsk"].fee_rub) == "300"


def test_the_file_is_optional(tmp_path: Path, cities) -> None:  # type: ignore[no-untyped-def]
    assert load_visit_slots(tmp_path, cities) == {}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("moscow,Mo-Fr 09:00-18:00,120,2,0", "unknown city 'moscow'"),
        ("chita,Mo-Fr 9-18,120,2,0", "column 'opening_hours'"),
        ("chita,Mo-Fr 09:00-18:00,5,2,0", "column 'slot_minutes': must be"),
        ("chita,Mo-Fr 09:00-18:00,120,0,0", "column 'crews': at least 1"),
        ("chita,Mo-Fr 09:00-18:00,120,2,-1", "column 'visit_fee_rub': must not be negative"),
        ("chita,Mo-Fr 09:00-18:00,120,2,1;5", "column 'visit_fee_rub'"),
        ("chita,Mo-Fr 09:00-18:00,120,2,0\nchita,Sa 10:00-14:00,60,1,0", "duplicate city_id"),
    ],
)
def test_mistakes_are_reported_with_file_and_line(
    tmp_path: Path,
    cities,
    row: str,
    problem: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(CatalogError) as caught:
        load_visit_slots(write(tmp_path, row + "\n"), cities)
    message = str(caught.value)
    assert problem in message
    assert "visit_slots.csv:" in message


def test_windows_follow_the_local_clock(cities) -> None:  # type: ignore[no-untyped-def]
    slots = load_visit_slots(DEMO, cities)
    # Saturday in Chita: 10:00-16:00 in 2-hour windows.
    saturday = [(w.starts_at.strftime("%H:%M"), w.ends_at.strftime("%H:%M"))
                for w in windows_on(slots["chita"], date(2026, 3, 14))]  # fmt: skip
    assert saturday == [("10:00", "12:00"), ("12:00", "14:00"), ("14:00", "16:00")]
    assert list(windows_on(slots["bratsk"], date(2026, 3, 14))) == []
    # 23:30 UTC on Monday is already Tuesday 08:30 in Chita: the first window is Tuesday 09:00.
    first = next(windows_from(slots["chita"], datetime(2026, 3, 9, 23, 30, tzinfo=UTC), 3))
    assert first.starts_at.isoformat() == "2026-03-10T09:00:00+09:00"
