"""Slot validators (raw customer text → normalised value or None) and suggested answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.catalog.addresses import parse_address
from bot.catalog.catalog import Catalog
from bot.intents.date_ranges import find_date_range
from bot.intents.datetimes import find_dates, find_times
from bot.intents.entities import EntityExtractor, contact_of, normalize_phone
from bot.intents.nlu import make_payload
from bot.models import Button, Raw, Text


@dataclass(frozen=True, slots=True)
class SlotTools:
    catalog: Catalog
    extractor: EntityExtractor


Validator = Callable[[str, SlotTools], Any | None]
Suggester = Callable[[str, SlotTools], tuple[Button, ...]]

_NAME = re.compile(r"^[A-Za-zА-Яа-яЁё][A-Za-zА-Яа-яЁё' .\-]{0,58}[A-Za-zА-Яа-яЁё.]$")


def _city(text: str, tools: SlotTools) -> str | None:
    if text in tools.catalog.cities:
        return text
    city = tools.extractor.city_of(text)
    return city.city_id if city else None


def _phone(text: str, tools: SlotTools) -> str | None:
    return normalize_phone(text) if len(re.sub(r"\D", "", text)) in (10, 11) else None


def _person_name(text: str, tools: SlotTools) -> str | None:
    name = " ".join(text.split())
    return name if _NAME.match(name) else None


def _address(text: str, tools: SlotTools) -> str | None:
    parsed = parse_address(text, list(tools.catalog.cities.values()))
    return text.strip() if parsed.street_text and parsed.house else None


def _contract_or_phone(text: str, tools: SlotTools) -> str | None:
    digits = re.sub(r"\D", "", text)
    if len(digits) in (10, 11) and normalize_phone(text):
        return normalize_phone(text)
    return digits if 6 <= len(digits) <= 16 else None


def _otp_code(text: str, tools: SlotTools) -> str | None:
    digits = re.sub(r"\D", "", text)
    return digits if 4 <= len(digits) <= 8 else None


def _date_range(text: str, tools: SlotTools) -> str | None:
    """Pause dates as typed ("с 10 по 25 декабря", "на две недели"): kept as text and read by
    the action against the customer's own today (the city's time zone)."""
    return text.strip() if find_date_range(text, date.today()) is not None else None


def _contact(text: str, tools: SlotTools) -> str | None:
    return text.strip() if contact_of(text) is not None else None


def _short_text(text: str, tools: SlotTools) -> str | None:
    text = " ".join(text.split())
    return text if 0 < len(text) <= 200 else None


def _long_text(text: str, tools: SlotTools) -> str | None:
    """A complaint or a review: the customer's own words, paragraphs kept, up to 2000 characters
    (the board's comment limit; a longer story is cut, not refused: nothing they say is lost
    from the transcript, where the whole message stays)."""
    text = text.strip()
    return text[:2000] if text else None


def _call_time(text: str, tools: SlotTools) -> str | None:
    """A call-back time as typed ("завтра после 18", "в пн с 10 до 12", even "вчера"): kept as
    text when it names a day or a time; the action reads it against the clock and the
    department's hours and explains what does not fit (a past day, closed hours)."""
    today = date.today()  # only whether a date is there matters here, not which
    dates = find_dates(text, today)
    spans = [(d.start, d.end) for d in dates]
    found = bool(dates) or bool(find_times(text, spans, spans))
    return " ".join(text.split()) if found else None


VALIDATORS: Mapping[str, Validator] = {
    "short_text": _short_text,
    "long_text": _long_text,
    "call_time": _call_time,
    "contract_or_phone": _contract_or_phone,
    "otp_code": _otp_code,
    "city": _city,
    "phone": _phone,
    "person_name": _person_name,
    "address": _address,
    "date_range": _date_range,
    "contact": _contact,
}


def _city_buttons(slot: str, tools: SlotTools) -> tuple[Button, ...]:
    return tuple(
        Button(Raw(city.name), make_payload("inform", {slot: city.city_id}))
        for city in sorted(tools.catalog.cities.values(), key=lambda c: c.name)
    )


def _consent_buttons(slot: str, tools: SlotTools) -> tuple[Button, ...]:
    return (
        Button(Text("consent.button.agree"), make_payload("inform", {slot: "yes"})),
        Button(Text("consent.button.refuse"), make_payload("inform", {slot: "no"})),
    )


def _send_button(slot: str, tools: SlotTools) -> tuple[Button, ...]:
    return (Button(Text("complaint.button.send"), make_payload("inform", {slot: "send"})),)


SUGGESTERS: Mapping[str, Suggester] = {
    "cities": _city_buttons,
    "consent": _consent_buttons,
    "send": _send_button,
}

Hint = Callable[[SlotTools], Mapping[str, Any]]


def _address_example(tools: SlotTools) -> Mapping[str, Any]:
    """A real connected address of the loaded catalog, so the example is never a foreign city."""
    catalog = tools.catalog
    entry = next((e for e in catalog.coverage if e.status == "connected"), None)
    if entry is None:
        return {"example": Raw("")}
    city = catalog.cities[entry.city_id]
    return {"example": Raw(f"{city.name}, {entry.street} {entry.house}")}


def policy_link(catalog: Catalog) -> Mapping[str, Any]:
    """The provider's personal-data policy for the consent question (rules.yml); a catalog
    without one gets the question without a link rather than a dead one."""
    url = catalog.rules.privacy_policy_url
    return {"policy": Text("consent.policy_link", {"url": Raw(url)}) if url else Raw("")}


def _privacy_policy(tools: SlotTools) -> Mapping[str, Any]:
    return policy_link(tools.catalog)


HINTS: Mapping[str, Hint] = {
    "address_example": _address_example,
    "privacy_policy": _privacy_policy,
}
