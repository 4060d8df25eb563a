"""A malformed catalog is rejected at load with the file, the physical line and the problem.

Every test copies the bundled demo catalog, breaks exactly one thing and checks the
``CatalogError`` a provider's data engineer would read: which file, which line (1 is the header),
and a message naming the column or value at fault.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.billing.ledger import LedgerBilling, open_ledger
from bot.catalog.catalog import Catalog, load_catalog
from bot.catalog.csv_rows import CatalogError
from bot.config import DEMO_CATALOG

ROOT = Path(__file__).resolve().parent.parent

CATALOG_FILES = ("cities.csv", "tariffs.csv", "offices.csv", "coverage.csv")
BILLING_FILES = ("accounts.csv", "transactions.csv")
ALL_FILES = CATALOG_FILES + BILLING_FILES


# --- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, target)
    return target


def _load(directory: Path) -> tuple[Catalog, LedgerBilling]:
    """Load the way start-up does: reference files first, then the embedded billing."""
    catalog = load_catalog(directory)
    return catalog, open_ledger(directory, catalog, path=":memory:", describe=str)


def _load_error(directory: Path) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        _load(directory)
    return info.value


def _lines(path: Path) -> list[str]:
    """Physical lines: only LF ends one (str.splitlines would also split at U+2028 and others)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", path.read_text(encoding="utf-8"))


def _header(path: Path) -> list[str]:
    return next(csv.reader(io.StringIO(_lines(path)[0])))


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()


def _fields(path: Path, line: int) -> list[str]:
    """Fields of the record on one physical line (not for records spanning several lines)."""
    return next(csv.reader(io.StringIO(_lines(path)[line - 1])))


def _replace_line(path: Path, line: int, text: str) -> None:
    lines = _lines(path)
    lines[line - 1] = text if text.endswith("\n") else text + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def _set_field(path: Path, line: int, column: str, value: str) -> None:
    fields = _fields(path, line)
    fields[_header(path).index(column)] = value
    _replace_line(path, line, _csv_line(fields))


def _rewrite_all(path: Path, change: Callable[[list[str], bool], list[str]]) -> None:
    """Apply ``change(fields, is_header)`` to every record of ``path``."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, fields in enumerate(rows):
        writer.writerow(change(fields, number == 0))
    path.write_text(out.getvalue(), encoding="utf-8")


def _assert_names(error: CatalogError, directory: Path, file: str, line: int) -> None:
    assert error.path == directory / file
    assert error.line == line
    if line:
        assert str(error).startswith(f"{directory / file}:{line}: ")
    else:
        assert str(error).startswith(f"{directory / file}: ")


# --- the demo catalog itself ---------------------------------------------------------------------
async def test_demo_catalog_loads_with_enough_data_for_every_dialog(catalog_dir: Path) -> None:
    catalog, billing = _load(catalog_dir)

    assert len(catalog.cities) >= 3
    for city_id in catalog.cities:
        active = catalog.active_tariffs(city_id)
        assert len(active) >= 4, city_id
        assert all(not t.archived and t.city_id == city_id for t in active)
        prices = [t.price_rub for t in active]
        assert prices == sorted(prices), "active tariffs are listed cheapest first"
        archived = [t for t in catalog.tariffs.values() if t.city_id == city_id and t.archived]
        assert archived, f"{city_id}: an archived tariff some customer may still be on"
        assert not set(archived) & set(active), "archived tariffs are never offered"
    assert len(catalog.coverage) >= 300
    assert catalog.offices_in("chita", "office")
    assert catalog.offices_in("chita", "terminal")

    assert len(billing.contracts) >= 20
    accounts = [await billing.account(c) for c in billing.contracts]
    statuses = Counter(a.status for a in accounts if a is not None)
    assert set(statuses) == {"active", "blocked", "suspended"}
    assert any(catalog.tariffs[a.tariff_id].archived for a in accounts if a is not None), (
        "some demo customer is still on an archived tariff"
    )
    histories = [await billing.transactions(c, limit=1000) for c in billing.contracts]
    assert any(histories)
    for history in histories:
        assert [t.at for t in history] == sorted((t.at for t in history), reverse=True)


def test_a_missing_catalog_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path / "nowhere")
    assert info.value.path == tmp_path / "nowhere"
    assert "does not exist" in str(info.value)


# --- whole-file problems -------------------------------------------------------------------------
@pytest.mark.parametrize("file", ALL_FILES)
def test_missing_file(catalog_dir: Path, file: str) -> None:
    (catalog_dir / file).unlink()
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, 0)
    assert "missing" in error.problem


@pytest.mark.parametrize("file", ALL_FILES)
def test_empty_file(catalog_dir: Path, file: str) -> None:
    (catalog_dir / file).write_bytes(b"")
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, 1)
    assert "empty" in error.problem


def test_cities_file_with_only_a_header_is_refused(catalog_dir: Path) -> None:
    (catalog_dir / "cities.csv").write_text(_lines(catalog_dir / "cities.csv")[0])
    error = _load_error(catalog_dir)
    assert error.path == catalog_dir / "cities.csv"
    assert "no cities" in error.problem


def test_file_not_in_utf8_is_refused(catalog_dir: Path) -> None:
    path = catalog_dir / "tariffs.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1251"))
    error = _load_error(catalog_dir)
    assert error.path == path
    assert "UTF-8" in error.problem


def test_file_not_in_utf8_names_the_line_of_the_first_bad_byte(catalog_dir: Path) -> None:
    path = catalog_dir / "tariffs.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1251"))
    error = _load_error(catalog_dir)
    # The header is ASCII; the first Cyrillic tariff name is on line 2.
    _assert_names(error, catalog_dir, "tariffs.csv", 2)


def test_utf8_with_bom_and_crlf_line_endings_is_accepted(catalog_dir: Path) -> None:
    path = catalog_dir / "tariffs.csv"
    text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    catalog, _ = _load(catalog_dir)
    assert catalog.tariffs["chita-inet-500"].name == "Интернет 500"


# --- header problems -----------------------------------------------------------------------------
@pytest.mark.parametrize("file", ALL_FILES)
def test_header_with_a_missing_column(catalog_dir: Path, file: str) -> None:
    path = catalog_dir / file
    dropped = _header(path)[1]
    _rewrite_all(path, lambda fields, _: fields[:1] + fields[2:])
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, 1)
    assert "missing" in error.problem
    assert dropped in error.problem


@pytest.mark.parametrize("file", ALL_FILES)
def test_header_with_an_unknown_column(catalog_dir: Path, file: str) -> None:
    _rewrite_all(catalog_dir / file, lambda fields, head: [*fields, "discount" if head else "5"])
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, 1)
    assert "unknown" in error.problem
    assert "discount" in error.problem


@pytest.mark.parametrize("file", ALL_FILES)
def test_header_with_a_repeated_column(catalog_dir: Path, file: str) -> None:
    _rewrite_all(catalog_dir / file, lambda fields, _: [*fields, fields[-1]])
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, 1)
    assert "repeated" in error.problem


def test_header_with_a_repeated_column_names_it(catalog_dir: Path) -> None:
    _rewrite_all(
        catalog_dir / "tariffs.csv", lambda fields, _: [*fields[:7], fields[6], *fields[7:]]
    )
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, "tariffs.csv", 1)
    assert "price_rub" in error.problem


# --- record structure ----------------------------------------------------------------------------
@pytest.mark.parametrize(("file", "line"), [("tariffs.csv", 10), ("accounts.csv", 6)])
def test_row_with_too_few_fields(catalog_dir: Path, file: str, line: int) -> None:
    path = catalog_dir / file
    columns = len(_header(path))
    _replace_line(path, line, _csv_line(_fields(path, line)[:-1]))
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, line)
    assert f"expected {columns} fields, found {columns - 1}" in error.problem


@pytest.mark.parametrize(("file", "line"), [("tariffs.csv", 10), ("accounts.csv", 6)])
def test_row_with_too_many_fields(catalog_dir: Path, file: str, line: int) -> None:
    path = catalog_dir / file
    columns = len(_header(path))
    # The classic: an address with a comma that somebody forgot to quote.
    _replace_line(path, line, _csv_line(_fields(path, line)).rstrip("\n") + ",кв. 5")
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, line)
    assert f"expected {columns} fields, found {columns + 1}" in error.problem


def test_unterminated_quote_in_the_last_row(catalog_dir: Path) -> None:
    path = catalog_dir / "tariffs.csv"
    last = len(_lines(path))
    text = _lines(path)[last - 1]
    assert text.count('"') == 2
    _replace_line(path, last, text.replace('",', ",", 1))
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, "tariffs.csv", last)
    assert "malformed CSV" in error.problem


def test_unterminated_quote_names_the_line_where_the_quote_opens(catalog_dir: Path) -> None:
    path = catalog_dir / "tariffs.csv"
    text = _lines(path)[5]  # line 6: chita-tv-basic, its description is quoted
    assert text.startswith("chita-tv-basic,")
    assert text.count('"') == 2
    _replace_line(path, 6, text.replace('",', ",", 1))
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, "tariffs.csv", 6)


def test_quoted_multiline_description_is_read_and_later_lines_stay_physical(
    catalog_dir: Path,
) -> None:
    path = catalog_dir / "tariffs.csv"
    _set_field(path, 3, "description", "Безлимитный интернет 500 Мбит/с.\nРоутер в аренду — 0 ₽.")
    assert len(_lines(path)) == 26  # one record now spans physical lines 3 and 4
    catalog, _ = _load(catalog_dir)
    assert catalog.tariffs["chita-inet-500"].description == (
        "Безлимитный интернет 500 Мбит/с.\nРоутер в аренду — 0 ₽."
    )
    assert catalog.tariffs["chita-inet-500"].price_rub == 650

    # The bratsk-inet-300 record was on line 9; it is now physically on line 10.
    assert _fields(path, 10)[0] == "bratsk-inet-300"
    _set_field(path, 10, "price_rub", "abc")
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, "tariffs.csv", 10)
    assert "'abc'" in error.problem


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0c"], ids=["U+2028", "NEL", "FF"])
def test_unicode_line_separator_inside_a_field_is_kept(catalog_dir: Path, separator: str) -> None:
    """Only CR/LF end a record: other Unicode line breaks pasted into a description stay in it,
    and do not shift the line numbers of later rows."""
    path = catalog_dir / "tariffs.csv"
    description = f"Безлимитный интернет{separator}500 Мбит/с"
    _set_field(path, 3, "description", description)
    # A quoted field (it has a comma) with the same character.
    _set_field(path, 6, "description", f"Цифровое ТВ:{separator}120 каналов, без интернета")
    catalog, _ = _load(catalog_dir)
    assert catalog.tariffs["chita-inet-500"].description == description
    assert catalog.tariffs["chita-tv-basic"].description == (
        f"Цифровое ТВ:{separator}120 каналов, без интернета"
    )

    _set_field(path, 9, "price_rub", "abc")  # bratsk-inet-300, physically line 9 (LF count)
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, "tariffs.csv", 9)


# --- bad values ----------------------------------------------------------------------------------
BAD_VALUES = [
    # empty required fields (spaces count as empty)
    pytest.param("tariffs.csv", 5, "name", "", ["'name'", "empty"], id="tariff-empty-name"),
    pytest.param("offices.csv", 4, "address", "  ", ["'address'", "empty"], id="office-empty-addr"),
    pytest.param("cities.csv", 3, "timezone", "", ["'timezone'", "empty"], id="city-empty-tz"),
    pytest.param(
        "accounts.csv", 6, "holder_name", "", ["'holder_name'", "empty"], id="acc-no-name"
    ),
    # numbers
    pytest.param("tariffs.csv", 5, "price_rub", "abc", ["'price_rub'", "'abc'"], id="price-abc"),
    pytest.param(
        "tariffs.csv",
        5,
        "price_rub",
        "650,00",
        ["'price_rub'", "'650,00'", "decimal point"],
        id="price-comma",
    ),
    pytest.param("tariffs.csv", 5, "price_rub", "-10", ["'price_rub'", "negative"], id="price-neg"),
    pytest.param("tariffs.csv", 5, "price_rub", "NaN", ["'price_rub'", "'NaN'"], id="price-nan"),
    pytest.param("tariffs.csv", 10, "speed_mbps", "fast", ["'speed_mbps'", "'fast'"], id="speed"),
    pytest.param("tariffs.csv", 6, "tv_channels", "-5", ["'tv_channels'", "negative"], id="ch-neg"),
    # tariff kinds and flags
    pytest.param("tariffs.csv", 5, "kind", "internet+tv", ["'kind'", "'internet+tv'"], id="kind"),
    pytest.param("tariffs.csv", 5, "archived", "yes", ["'archived'", "'yes'"], id="archived-yes"),
    pytest.param(
        "tariffs.csv", 10, "speed_mbps", "", ["'speed_mbps'", "'internet'"], id="no-speed"
    ),
    pytest.param(
        "tariffs.csv", 5, "speed_mbps", "", ["'speed_mbps'", "'internet_tv'"], id="inettv-no-speed"
    ),
    pytest.param("tariffs.csv", 6, "tv_channels", "", ["'tv_channels'", "'tv'"], id="tv-no-ch"),
    pytest.param(
        "tariffs.csv", 5, "tv_channels", "", ["'tv_channels'", "'internet_tv'"], id="inettv-no-ch"
    ),
    # references to cities
    pytest.param(
        "tariffs.csv", 10, "city_id", "moscow", ["'city_id'", "'moscow'"], id="tariff-city"
    ),
    pytest.param(
        "offices.csv", 7, "city_id", "moscow", ["'city_id'", "'moscow'"], id="office-city"
    ),
    pytest.param("coverage.csv", 50, "city_id", "moscow", ["'city_id'", "'moscow'"], id="cov-city"),
    pytest.param("accounts.csv", 9, "city_id", "moscow", ["'city_id'", "'moscow'"], id="acc-city"),
    # duplicates: the second occurrence is the line at fault
    pytest.param(
        "tariffs.csv",
        10,
        "tariff_id",
        "chita-inet-100",
        ["duplicate", "'chita-inet-100'"],
        id="dup-tariff",
    ),
    pytest.param(
        "offices.csv", 7, "office_id", "chita-1", ["duplicate", "'chita-1'"], id="dup-office"
    ),
    pytest.param("cities.csv", 4, "city_id", "chita", ["duplicate", "'chita'"], id="dup-city"),
    pytest.param(
        "accounts.csv",
        9,
        "contract_number",
        "750012345678",
        ["duplicate", "'750012345678'"],
        id="dup-contract",
    ),
    # cities
    pytest.param(
        "cities.csv", 3, "timezone", "Asia/Nowhere", ["'timezone'", "'Asia/Nowhere'"], id="tz"
    ),
    # offices
    pytest.param("offices.csv", 4, "lat", "95", ["'lat'", "95"], id="lat-95"),
    pytest.param("offices.csv", 4, "lon", "-181", ["'lon'", "-181"], id="lon-181"),
    pytest.param("offices.csv", 4, "lat", "52,03", ["'lat'", "'52,03'"], id="lat-comma"),
    pytest.param("offices.csv", 4, "kind", "kiosk", ["'kind'", "'kiosk'"], id="office-kind"),
    pytest.param(
        "offices.csv", 3, "opening_hours", "Mo-Fx 09:00-18:00", ["'opening_hours'"], id="hours"
    ),
    # coverage
    pytest.param("coverage.csv", 50, "status", "maybe", ["'status'", "'maybe'"], id="cov-status"),
    pytest.param(
        "coverage.csv", 50, "technology", "adsl", ["'technology'", "'adsl'"], id="cov-tech"
    ),
    # accounts
    pytest.param(
        "accounts.csv",
        6,
        "contract_number",
        "7500-4567",
        ["'contract_number'", "'7500-4567'"],
        id="acc-contract",
    ),
    pytest.param(
        "accounts.csv",
        6,
        "tariff_id",
        "chita-inet-9000",
        ["'tariff_id'", "'chita-inet-9000'"],
        id="acc-unknown-tariff",
    ),
    pytest.param(
        "accounts.csv",
        6,
        "tariff_id",
        "bratsk-inet-300",
        ["'bratsk-inet-300'", "'bratsk'"],
        id="acc-tariff-other-city",
    ),
    pytest.param(
        "accounts.csv", 6, "phone", "89141234567", ["'phone'", "'89141234567'"], id="acc-phone"
    ),
    pytest.param("accounts.csv", 6, "status", "closed", ["'status'", "'closed'"], id="acc-status"),
    pytest.param(
        "accounts.csv",
        6,
        "next_charge_date",
        "2026-13-01",
        ["'next_charge_date'", "'2026-13-01'"],
        id="acc-date",
    ),
    pytest.param("accounts.csv", 6, "balance_rub", "-", ["'balance_rub'", "'-'"], id="acc-balance"),
    pytest.param(
        "accounts.csv", 6, "bonus_points", "12.5", ["'bonus_points'", "'12.5'"], id="acc-bonus"
    ),
    # transactions
    pytest.param(
        "transactions.csv",
        40,
        "contract_number",
        "750099999999",
        ["'750099999999'", "unknown"],
        id="tx-contract",
    ),
    pytest.param(
        "transactions.csv", 40, "at", "2026-11-01T00:05:00", ["'at'", "UTC offset"], id="tx-naive"
    ),
    pytest.param("transactions.csv", 40, "at", "01.11.2026", ["'at'", "'01.11.2026'"], id="tx-at"),
    pytest.param(
        "transactions.csv", 40, "amount_rub", "сто", ["'amount_rub'", "'сто'"], id="tx-amount"
    ),
    pytest.param(
        "transactions.csv",
        40,
        "amount_rub",
        "-680,00",
        ["'amount_rub'", "decimal point"],
        id="tx-amount-comma",
    ),
]


@pytest.mark.parametrize(("file", "line", "column", "value", "expected"), BAD_VALUES)
def test_bad_value_is_refused_with_file_line_and_problem(
    catalog_dir: Path, file: str, line: int, column: str, value: str, expected: list[str]
) -> None:
    _set_field(catalog_dir / file, line, column, value)
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, file, line)
    for fragment in expected:
        assert fragment in error.problem


@pytest.mark.parametrize(
    ("street", "house"),
    [("ул. Бутина", "10"), ("УЛ. БУТИНА", "10")],
    ids=["same-spelling", "other-case"],
)
def test_duplicate_coverage_house(catalog_dir: Path, street: str, house: str) -> None:
    path = catalog_dir / "coverage.csv"
    assert _fields(path, 3)[:3] == ["chita", "ул. Бутина", "10"]
    _replace_line(path, 50, _csv_line(["chita", street, house, "planned", "gpon"]))
    error = _load_error(catalog_dir)
    _assert_names(error, catalog_dir, "coverage.csv", 50)
    assert "duplicate" in error.problem
    assert street in error.problem


def test_the_same_house_in_another_city_is_not_a_duplicate(catalog_dir: Path) -> None:
    path = catalog_dir / "coverage.csv"
    _replace_line(path, 50, _csv_line(["bratsk", "ул. Бутина", "10", "planned", "gpon"]))
    catalog, _ = _load(catalog_dir)
    assert sum(1 for e in catalog.coverage if e.street == "ул. Бутина" and e.house == "10") == 2


# --- the command line ----------------------------------------------------------------------------
def test_chat_with_a_broken_catalog_exits_2_naming_file_and_line(
    catalog_dir: Path, tmp_path: Path
) -> None:
    _set_field(catalog_dir / "tariffs.csv", 5, "price_rub", "650,00")
    env = {**os.environ, "BOT_VAR_DIR": str(tmp_path / "var")}
    env.pop("BOT_DATA_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--data", str(catalog_dir)],
        cwd=ROOT,
        input="привет\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "tariffs.csv:5:" in result.stderr
    assert "price_rub" in result.stderr
    assert "Traceback" not in result.stderr
