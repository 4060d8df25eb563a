"""Entity extraction with character offsets into the original message.

Cities come from the loaded catalog (names, aliases, any grammatical case), street and house from
the catalog's address parser; the rest are patterns for how Russian customers write phones,
contract numbers, amounts, dates and times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot.catalog.addresses import parse_address
from bot.catalog.models import City
from bot.intents.datetimes import find_dates, find_times
from bot.intents.normalize import basic, lemma


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    value: str
    start: int
    end: int
    id: str | None = None  # catalog id for a city
    qualifier: str | None = None  # for a time: "after", "before", "from", "to"

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.type,
            "value": self.value,
            "start": self.start,
            "end": self.end,
        }
        if self.id is not None:
            out["id"] = self.id
        if self.qualifier is not None:
            out["qualifier"] = self.qualifier
        return out


_PHONE = re.compile(
    r"(?<![\d+])(?:\+7|8|7)[\s\-]?\(?\d{3}\)?[\s\-]?\d{3}[\s\-]?\d{2}[\s\-]?\d{2}(?!\d)"
)
_CONTRACT = re.compile(r"(?<!\d)\d{6,16}(?!\d)")
_CONTRACT_CONTEXT = re.compile(r"(договор|лицев|л/с|лс|счет|contract|account|номер)", re.I)
_AMOUNT = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:[ \u00a0]\d{3})+|\d+)(?:[.,](\d{1,2}))?\s*"
    r"(?:руб(?:лей|ля|ль|\.)?|р\.|р\b|₽|rub\b|rubles?\b)",
    re.I,
)
_TOKEN = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)*")


def normalize_phone(raw: str) -> str | None:
    """Any Russian mobile/landline spelling to E.164 ``+7XXXXXXXXXX``; None if it is not one."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "+7" + digits
    return None


class EntityExtractor:
    def __init__(self, cities: Sequence[City]) -> None:
        self._cities = tuple(cities)
        names: dict[str, City] = {}
        for city in cities:
            for name in (city.name, *city.aliases):
                norm = basic(name)
                names[norm] = city
                names[" ".join(lemma(w) for w in norm.replace("-", " ").split())] = city
                names[norm.replace("-", " ")] = city
        self._city_names = names

    def extract(self, text: str, *, today: date | None = None) -> list[Entity]:
        found: list[Entity] = []
        found += self._phones(text)
        found += self._contracts(text, taken=found)
        found += self._amounts(text, taken=found)
        found += self._cities_in(text)
        # Dates and times before the address: "перезвоните в 7 вечера" has no house 7.
        found += self._dates_and_times(text, today or date.today(), taken=found)
        found += self._address(text, taken=found)
        found.sort(key=lambda e: (e.start, e.end))
        return found

    def city_of(self, text: str) -> City | None:
        hits = self._cities_in(text)
        if not hits:
            return None
        return next(c for c in self._cities if c.city_id == hits[0].id)

    def _cities_in(self, text: str) -> list[Entity]:
        """Catalog cities, longest name first: "Улан Удэ", "Нижний Новгород", "в Братске"."""
        tokens = list(_TOKEN.finditer(text))
        out: list[Entity] = []
        i = 0
        while i < len(tokens):
            for size in (3, 2, 1):
                window = tokens[i : i + size]
                if len(window) < size:
                    continue
                city = self._city_named([basic(m.group(0)) for m in window])
                if city is not None:
                    start, end = window[0].start(), window[-1].end()
                    out.append(Entity("city", city.name, start, end, id=city.city_id))
                    i += size
                    break
            else:
                i += 1
        return out

    def _city_named(self, words: list[str]) -> City | None:
        for joined in (" ".join(words), "-".join(words)):
            city = self._city_names.get(joined)
            if city is not None:
                return city
        # Inflected: every word lemmatised ("нижнем новгороде" -> "нижний новгород").
        return self._city_names.get(" ".join(lemma(w) for w in words))

    def _phones(self, text: str) -> list[Entity]:
        out = []
        for m in _PHONE.finditer(text):
            phone = normalize_phone(m.group(0))
            if phone:
                out.append(Entity("phone", phone, m.start(), m.end()))
        return out

    def _contracts(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        out = []
        for m in _CONTRACT.finditer(text):
            if _overlaps(m.start(), m.end(), taken):
                continue
            # 12 digits is the contract format; shorter numbers count only when named as one.
            context = text[max(0, m.start() - 30) : m.start()]
            if len(m.group(0)) == 12 or _CONTRACT_CONTEXT.search(context):
                out.append(Entity("contract_number", m.group(0), m.start(), m.end()))
        return out

    def _amounts(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        out = []
        for m in _AMOUNT.finditer(text):
            if _overlaps(m.start(), m.end(), taken):
                continue
            whole = re.sub(r"\s", "", m.group(1))
            value = f"{whole}.{m.group(2)}" if m.group(2) else whole
            out.append(Entity("amount", value, m.start(), m.end()))
        return out

    def _address(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        # Blank out what is already known (a time, a phone) so its digits are not a house;
        # same length, so offsets stay those of the original text.
        masked = text
        for e in taken:
            if e.type != "city":
                masked = masked[: e.start] + " " * (e.end - e.start) + masked[e.end :]
        parsed = parse_address(masked, self._cities)
        out: list[Entity] = []
        # A street alone is too easily a false hit ("мой тариф"); one with a house number is not.
        if not (parsed.street_span and parsed.house_span and parsed.street_text and parsed.house):
            return out
        # "заплачу 1 500 рублей": the "house" is an amount, so there is no address at all.
        if _overlaps(*parsed.house_span, taken) or _overlaps(*parsed.street_span, taken):
            return out
        out.append(Entity("street", parsed.street_text, *parsed.street_span))
        out.append(Entity("house", parsed.house, *parsed.house_span))
        if parsed.flat and parsed.flat_span is not None:
            out.append(Entity("flat", parsed.flat, *parsed.flat_span))
        return out

    def _dates_and_times(self, text: str, today: date, *, taken: Sequence[Entity]) -> list[Entity]:
        dates = [d for d in find_dates(text, today) if not _overlaps(d.start, d.end, taken)]
        spans = [(e.start, e.end) for e in taken] + [(d.start, d.end) for d in dates]
        found = dates + find_times(text, spans)
        return [Entity(f.kind, f.value, f.start, f.end, qualifier=f.qualifier) for f in found]


def _overlaps(start: int, end: int, entities: Sequence[Entity]) -> bool:
    return any(start < e.end and e.start < end for e in entities)
