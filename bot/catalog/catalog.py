"""The provider's reference data (cities, tariffs, offices and terminals, coverage), loaded once
and queried by the dialog actions. Read-only after loading."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.catalog.addresses import AddressIndex
from bot.catalog.csv_rows import CatalogError, Row, read_rows
from bot.catalog.geo import distance_km
from bot.catalog.models import City, CoverageEntry, Office, OfficeKind, Service, Tariff
from bot.catalog.opening_hours import OpeningHours, OpeningHoursError
from bot.selfservice.rules import Rules, load_rules

CITY_COLUMNS = ("city_id", "name", "aliases", "timezone", "support_phone")
TARIFF_COLUMNS = (
    "tariff_id", "city_id", "name", "kind", "speed_mbps", "tv_channels", "price_rub",
    "description", "archived",
)  # fmt: skip
OFFICE_COLUMNS = (
    "office_id", "city_id", "kind", "name", "address", "lat", "lon", "opening_hours", "services",
)  # fmt: skip
COVERAGE_COLUMNS = ("city_id", "street", "house", "status", "technology")
SERVICE_COLUMNS = (
    "service_id", "city_id", "name", "kind", "price_rub", "period", "description", "archived",
)  # fmt: skip


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NearbyOffice:
    office: Office
    distance_km: float


class Catalog:
    """Indexes over the catalog files; every query answers from the loaded data only."""

    def __init__(
        self,
        *,
        cities: Iterable[City],
        tariffs: Iterable[Tariff],
        offices: Iterable[Office],
        coverage: Iterable[CoverageEntry],
        services: Iterable[Service] = (),
        rules: Rules | None = None,
        source: Path | None = None,
    ) -> None:
        self.source = source
        self.services: Mapping[str, Service] = {s.service_id: s for s in services}
        self.rules = rules or Rules()
        self.cities: Mapping[str, City] = {c.city_id: c for c in cities}
        self.tariffs: Mapping[str, Tariff] = {t.tariff_id: t for t in tariffs}
        self.offices: tuple[Office, ...] = tuple(offices)
        self.coverage: tuple[CoverageEntry, ...] = tuple(coverage)
        self.hours: Mapping[str, OpeningHours] = {
            o.office_id: OpeningHours.parse(o.opening_hours) for o in self.offices
        }
        self.addresses = AddressIndex(self.coverage, list(self.cities.values()))
        by_city: dict[str, list[Tariff]] = defaultdict(list)
        for tariff in self.tariffs.values():
            if not tariff.archived:
                by_city[tariff.city_id].append(tariff)
        self._active = {
            city: sorted(ts, key=lambda t: (t.price_rub, t.name)) for city, ts in by_city.items()
        }

    def city(self, city_id: str) -> City | None:
        return self.cities.get(city_id)

    def timezone(self, city_id: str) -> ZoneInfo:
        return ZoneInfo(self.cities[city_id].timezone)

    def active_tariffs(self, city_id: str) -> list[Tariff]:
        """Tariffs offered in the city, cheapest first; archived ones are never offered."""
        return list(self._active.get(city_id, ()))

    def offered_services(self, city_id: str) -> list[Service]:
        """Extra services a customer of the city can connect, cheapest first."""
        return sorted(
            (s for s in self.services.values() if s.city_id == city_id and not s.archived),
            key=lambda s: (s.kind, s.price_rub, s.name),
        )

    def offices_in(self, city_id: str, kind: OfficeKind | None = None) -> list[Office]:
        return [
            o for o in self.offices if o.city_id == city_id and (kind is None or o.kind == kind)
        ]

    def nearest(
        self, lat: float, lon: float, *, kind: OfficeKind | None = None, limit: int = 3
    ) -> list[NearbyOffice]:
        found = [
            NearbyOffice(o, distance_km(lat, lon, o.lat, o.lon))
            for o in self.offices
            if kind is None or o.kind == kind
        ]
        found.sort(key=lambda n: n.distance_km)
        return found[:limit]


def _city(row: Row) -> City:
    tz = row.text("timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise row.fail(f"column 'timezone': {tz!r} is not an IANA time zone") from None
    return City(
        city_id=row.text("city_id"),
        name=row.text("name"),
        aliases=row.listing("aliases"),
        timezone=tz,
        support_phone=row.text("support_phone"),
    )


def _tariff(row: Row) -> Tariff:
    kind = row.choice("kind", ("internet", "tv", "internet_tv", "phone"))
    speed = row.optional_int("speed_mbps")
    channels = row.optional_int("tv_channels")
    if kind in ("internet", "internet_tv") and speed is None:
        raise row.fail(f"column 'speed_mbps' is required for kind {kind!r}")
    if kind in ("tv", "internet_tv") and channels is None:
        raise row.fail(f"column 'tv_channels' is required for kind {kind!r}")
    if kind in ("tv", "phone") and speed is not None:
        raise row.fail(f"column 'speed_mbps' must be empty for kind {kind!r}")
    if kind in ("internet", "phone") and channels is not None:
        raise row.fail(f"column 'tv_channels' must be empty for kind {kind!r}")
    price = row.decimal("price_rub")
    if price < 0:
        raise row.fail("column 'price_rub': must not be negative")
    return Tariff(
        tariff_id=row.text("tariff_id"),
        city_id=row.text("city_id"),
        name=row.text("name"),
        kind=kind,  # type: ignore[arg-type]  # checked by choice()
        speed_mbps=speed,
        tv_channels=channels,
        price_rub=price,
        description=row.text("description", required=False),
        archived=row.boolean("archived"),
    )


def _coordinate(row: Row, column: str, limit: float) -> float:
    value = row.parsed(column, float, "a decimal number")
    if not -limit <= value <= limit:
        raise row.fail(f"column {column!r}: {value} is outside -{limit}..{limit}")
    return value


def _office(row: Row) -> Office:
    spec = row.text("opening_hours")
    try:
        OpeningHours.parse(spec)
    except OpeningHoursError as exc:
        raise row.fail(f"column 'opening_hours': {exc}") from None
    return Office(
        office_id=row.text("office_id"),
        city_id=row.text("city_id"),
        kind=row.choice("kind", ("office", "terminal")),  # type: ignore[arg-type]
        name=row.text("name"),
        address=row.text("address"),
        lat=_coordinate(row, "lat", 90.0),
        lon=_coordinate(row, "lon", 180.0),
        opening_hours=spec,
        services=row.listing("services"),
    )


def _coverage(row: Row) -> CoverageEntry:
    return CoverageEntry(
        city_id=row.text("city_id"),
        street=row.text("street"),
        house=row.text("house"),
        status=row.choice("status", ("connected", "planned")),  # type: ignore[arg-type]
        technology=row.choice("technology", ("fttb", "gpon", "docsis")),  # type: ignore[arg-type]
    )


def _service(row: Row) -> Service:
    price = row.decimal("price_rub")
    if price < 0:
        raise row.fail("column 'price_rub': must not be negative")
    kinds = ("antivirus", "static_ip", "tv_package", "equipment_rent", "other")
    return Service(
        service_id=row.text("service_id"),
        city_id=row.text("city_id"),
        name=row.text("name"),
        kind=row.choice("kind", kinds),  # type: ignore[arg-type]
        price_rub=price,
        period=row.choice("period", ("month", "once")),  # type: ignore[arg-type]
        description=row.text("description", required=False),
        archived=row.boolean("archived"),
    )


def _city_rows(
    path: Path,
    columns: tuple[str, ...],
    cities: Mapping[str, City],
    parse: Callable[[Row], T],
    *,
    key: Callable[[T], tuple[str, str]],
) -> list[T]:
    """Rows of a per-city file: each names a known city and is unique by ``key``
    (which returns the identity and how to name it in an error)."""
    out: list[T] = []
    seen: set[str] = set()
    for row in read_rows(path, columns):
        _known_city(row, cities)
        item = parse(row)
        identity, what = key(item)
        if identity in seen:
            raise row.fail(f"duplicate {what}")
        seen.add(identity)
        out.append(item)
    return out


def _known_city(row: Row, cities: Mapping[str, City]) -> None:
    city_id = row.text("city_id")
    if city_id not in cities:
        raise row.fail(f"column 'city_id': unknown city {city_id!r} (not in cities.csv)")


def load_catalog(directory: Path) -> Catalog:
    """Read and validate the reference files of a catalog directory (DATA_FORMAT.md)."""
    if not directory.is_dir():
        raise CatalogError(directory, 0, "catalog directory does not exist")
    cities: dict[str, City] = {}
    for row in read_rows(directory / "cities.csv", CITY_COLUMNS):
        city = _city(row)
        if city.city_id in cities:
            raise row.fail(f"duplicate city_id {city.city_id!r}")
        cities[city.city_id] = city
    if not cities:
        raise CatalogError(directory / "cities.csv", 0, "no cities defined")

    tariffs = _city_rows(
        directory / "tariffs.csv", TARIFF_COLUMNS, cities, _tariff,
        key=lambda t: (t.tariff_id, f"tariff_id {t.tariff_id!r}"),
    )  # fmt: skip
    offices = _city_rows(
        directory / "offices.csv", OFFICE_COLUMNS, cities, _office,
        key=lambda o: (o.office_id, f"office_id {o.office_id!r}"),
    )  # fmt: skip
    coverage = _city_rows(
        directory / "coverage.csv", COVERAGE_COLUMNS, cities, _coverage,
        key=lambda e: (
            f"{e.city_id}|{e.street.casefold()}|{e.house.casefold()}",
            f"house {e.street}, {e.house} in {e.city_id}",
        ),
    )  # fmt: skip

    # Optional files (DATA_FORMAT.md, extensions): a catalog without them still loads.
    services: list[Service] = []
    if (directory / "services.csv").exists():
        services = _city_rows(
            directory / "services.csv", SERVICE_COLUMNS, cities, _service,
            key=lambda s: (s.service_id, f"service_id {s.service_id!r}"),
        )  # fmt: skip

    return Catalog(
        cities=cities.values(),
        tariffs=tariffs,
        offices=offices,
        coverage=coverage,
        services=services,
        rules=load_rules(directory),
        source=directory,
    )
