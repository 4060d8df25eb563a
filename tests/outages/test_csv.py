"""outages.csv: optional, strict, file:line errors; the demo file loads; the board keeps what
the API did to a catalog outage across restarts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.catalog.catalog import load_catalog
from bot.catalog.csv_rows import CatalogError
from bot.config import DEMO_CATALOG
from bot.outages.csv_file import load_outages
from bot.outages.store import SqliteOutageStore

HEADER = "outage_id,city_id,street,houses,services,kind,started_at,expected_end,reason\n"
GOOD = "o-1,chita,ул. Бутина,10;12,internet,accident,2026-12-01T08:10:00+09:00,,Кабель\n"


def catalog_dir(tmp_path: Path, body: str | None) -> Path:
    directory = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, directory)
    (directory / "outages.csv").unlink()
    if body is not None:
        (directory / "outages.csv").write_text(body, encoding="utf-8")
    return directory


def test_the_demo_outages_load() -> None:
    outages = load_outages(DEMO_CATALOG, load_catalog(DEMO_CATALOG))
    assert [(o.kind, o.city_id) for o in outages] == [("accident", "chita"), ("planned", "irkutsk")]


def test_the_file_is_optional(tmp_path: Path) -> None:
    directory = catalog_dir(tmp_path, None)
    assert load_outages(directory, load_catalog(directory)) == []


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (GOOD.replace("chita", "moscow"), "column 'city_id': unknown city 'moscow'"),
        (GOOD.replace("accident", "crash"), "column 'kind'"),
        (GOOD.replace("internet,", "wifi,"), "column 'services': wifi"),
        (GOOD.replace("ул. Бутина", ""), "column 'houses': houses need a street"),
        (GOOD.replace("+09:00", ""), "column 'started_at': '2026-12-01T08:10:00' has no UTC"),
        (GOOD.replace(",,", ",2026-12-01T08:00:00+09:00,"), "column 'expected_end': must be"),
        (GOOD.replace("Кабель", ""), "column 'reason': is empty"),
        (GOOD + GOOD, "duplicate outage_id 'o-1'"),
    ],
)
def test_a_broken_row_is_refused_with_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    directory = catalog_dir(tmp_path, HEADER + row)
    with pytest.raises(CatalogError) as error:
        load_outages(directory, load_catalog(directory))
    line = 3 if "duplicate" in problem else 2
    assert f"outages.csv:{line}: {problem}" in str(error.value)


def test_a_bad_header_is_refused(tmp_path: Path) -> None:
    directory = catalog_dir(tmp_path, HEADER.replace("reason", "why") + GOOD)
    with pytest.raises(CatalogError, match=r"outages\.csv:1: bad header"):
        load_outages(directory, load_catalog(directory))


async def test_a_closed_catalog_outage_stays_closed_after_a_restart(tmp_path: Path) -> None:
    directory = catalog_dir(tmp_path, HEADER + GOOD)
    catalog = load_catalog(directory)
    seed = load_outages(directory, catalog)
    store = SqliteOutageStore(tmp_path / "outages.sqlite3", catalog=catalog)
    assert await store.seed(seed) == 1
    assert await store.close_outage("o-1", datetime.now(UTC)) is not None
    await store.close()
    again = SqliteOutageStore(tmp_path / "outages.sqlite3", catalog=catalog)
    assert await again.seed(seed) == 0
    assert await again.open_outages() == []
    await again.close()
