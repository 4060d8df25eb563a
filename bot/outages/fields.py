"""One set of rules for an outage record, whether it comes from ``outages.csv`` or the API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.outages.model import OUTAGE_KINDS, OUTAGE_SERVICES, Outage, ordered_services

FIELDS = (
    "outage_id", "city_id", "street", "houses", "services", "kind", "started_at", "expected_end",
    "reason",
)  # fmt: skip
MAX_ID = 100
MAX_TEXT = 500


class OutageInvalid(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _listing(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(";") if part.strip())


def _moment(field: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise OutageInvalid(field, f"{raw!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise OutageInvalid(field, f"{raw!r} has no UTC offset")
    return value


def parse_outage(values: Mapping[str, str], catalog: Catalog) -> Outage:
    """An outage from text fields (CSV columns; ``houses`` and ``services`` ``;``-separated).
    Raises ``OutageInvalid`` naming the field."""
    text = {name: values.get(name, "").strip() for name in FIELDS}
    for name, value in text.items():
        if len(value) > MAX_TEXT:
            raise OutageInvalid(name, f"longer than {MAX_TEXT} characters")
    outage_id = text["outage_id"]
    if not outage_id:
        raise OutageInvalid("outage_id", "is empty")
    # It is a path segment of the API (/api/v1/outages/{outage_id}).
    if len(outage_id) > MAX_ID or not all(c.isalnum() or c in "-_." for c in outage_id):
        raise OutageInvalid("outage_id", f"up to {MAX_ID} letters, digits, '-', '_', '.'")
    city_id = text["city_id"]
    if city_id not in catalog.cities:
        raise OutageInvalid("city_id", f"unknown city {city_id!r} (not in cities.csv)")
    street, houses = text["street"], _listing(text["houses"])
    if houses and not street:
        raise OutageInvalid("houses", "houses need a street (an empty street is the whole city)")
    services = _listing(text["services"])
    if not services:
        raise OutageInvalid("services", "is empty")
    unknown = [s for s in services if s not in OUTAGE_SERVICES]
    if unknown:
        raise OutageInvalid("services", f"{', '.join(unknown)}: not {', '.join(OUTAGE_SERVICES)}")
    kind = text["kind"]
    if kind not in OUTAGE_KINDS:
        raise OutageInvalid("kind", f"{kind!r} is not one of {', '.join(OUTAGE_KINDS)}")
    if not text["started_at"]:
        raise OutageInvalid("started_at", "is empty")
    started = _moment("started_at", text["started_at"])
    expected = _moment("expected_end", text["expected_end"]) if text["expected_end"] else None
    if expected is not None and expected <= started:
        raise OutageInvalid("expected_end", "must be after started_at")
    if not text["reason"]:
        raise OutageInvalid("reason", "is empty")
    return Outage(
        outage_id=outage_id,
        city_id=city_id,
        street=street,
        houses=houses,
        services=ordered_services(set(services)),
        kind=kind,  # type: ignore[arg-type]  # checked above
        started_at=started,
        expected_end=expected,
        reason=text["reason"],
    )


def outage_fields(outage: Outage) -> dict[str, str]:
    """The record as text fields again (the store keeps them this way)."""
    return {
        "outage_id": outage.outage_id,
        "city_id": outage.city_id,
        "street": outage.street,
        "houses": ";".join(outage.houses),
        "services": ";".join(outage.services),
        "kind": outage.kind,
        "started_at": outage.started_at.isoformat(),
        "expected_end": outage.expected_end.isoformat() if outage.expected_end else "",
        "reason": outage.reason,
    }
