"""Which outages reach an address. Addresses are read with the catalog's address machinery
(``bot/catalog/addresses.py``), and streets compared as the coverage matcher compares them: the
type word dropped (but "ул." and "пер." of the same name stay different when both are written),
case, ё/е, word order and hyphens ignored, houses in one spelling ("14 А" = "14а")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.catalog.addresses import (
    _KEY_STOPWORDS,  # "им", "имени": the register's own list, so both sides drop the same words
    AddressLookupKind,
    normalize_house,
    street_core,
    street_kind,
)
from bot.catalog.catalog import Catalog
from bot.outages.model import Outage

_NAME_NOISE = _KEY_STOPWORDS  # "ул. им. Ленина" is "ул. Ленина"


@dataclass(frozen=True, slots=True)
class Place:
    """An address as far as it is known: ``street`` as in the coverage register when it could be
    found there (else as written), ``house`` normalised ("" = unknown)."""

    city_id: str
    street: str
    house: str


def _words(street: str) -> frozenset[str]:
    return frozenset(w for w in re.split(r"[\s\-]+", street_core(street)) if w) - _NAME_NOISE


def same_street(a: str, b: str) -> bool:
    words = _words(a)
    if not words or words != _words(b):
        return False
    kind_a, kind_b = street_kind(a), street_kind(b)
    return kind_a is None or kind_b is None or kind_a == kind_b


def place_of(catalog: Catalog, city_id: str, text: str) -> Place | None:
    """Read a free-text address ("ул. Бутина, 10, кв. 5", "на бутина 10") in a city; the
    register's spelling of the street when the coverage matcher finds it (typos, endings)."""
    lookup = catalog.addresses.lookup(text, city_id)
    if lookup.city_id not in (None, city_id):
        return None  # the text names another city
    parsed = lookup.parsed
    house = parsed.house or ""
    if lookup.kind == AddressLookupKind.FOUND and lookup.entry is not None:
        return Place(city_id, lookup.entry.street, normalize_house(lookup.entry.house))
    if lookup.kind == AddressLookupKind.HOUSE_NOT_FOUND and len(lookup.candidates) == 1:
        return Place(city_id, lookup.candidates[0].street, house)
    if not parsed.street_text:
        return None
    written = f"{parsed.street_kind} {parsed.street_text}" if parsed.street_kind else None
    return Place(city_id, written or parsed.street_text, house)


def covers(outage: Outage, place: Place) -> bool:
    if outage.city_id != place.city_id:
        return False
    if not outage.street:
        return True  # the whole city
    if not same_street(outage.street, place.street):
        return False
    if not outage.houses:
        return True  # the whole street
    return bool(place.house) and place.house in {normalize_house(h) for h in outage.houses}


def affecting(outages: Iterable[Outage], place: Place, at: datetime) -> list[Outage]:
    """The outages in force at ``at`` that reach ``place``."""
    return [o for o in outages if o.in_force(at) and covers(o, place)]
