"""Entity extraction with character offsets into the original message.

Cities come from the loaded catalog (names, aliases, any grammatical case), street and house from
the catalog's address parser; the rest are patterns for how Russian customers write phones,
contract numbers, amounts, dates and times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.catalog.addresses import parse_address
from bot.catalog.models import City
from bot.intents.normalize import basic, lemma


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    value: str
    start: int
    end: int
    id: str | None = None  # catalog id for a city

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.type,
            "value": self.value,
            "start": self.start,
            "end": self.end,
        }
        if self.id is not None:
            out["id"] = self.id
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
_TIME = re.compile(r"(?<![\d.:])([01]?\d|2[0-3])[:.]([0-5]\d)(?![\d.:])")
_TIME_WORDS = re.compile(r"\bв\s+(\d{1,2})\s*(утра|дня|вечера|час(?:а|ов)?)\b", re.I)
_DATE_NUMERIC = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})(?:\.(\d{2}|\d{4}))?(?![\d.])")
_RELATIVE_DAYS = {"сегодня": 0, "завтра": 1, "послезавтра": 2, "today": 0, "tomorrow": 1}
_WEEKDAYS = {
    "понедельник": 0, "вторник": 1, "среда": 2, "четверг": 3, "пятница": 4, "суббота": 5,
    "воскресенье": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
    "saturday": 5, "sunday": 6,
}  # fmt: skip
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
        found += self._address(text, taken=found)
        found += self._dates(text, today or date.today())
        found += self._times(text, taken=found)
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
        parsed = parse_address(text, self._cities)
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

    def _dates(self, text: str, today: date) -> list[Entity]:
        out = []
        for m in _TOKEN.finditer(text):
            word = basic(m.group(0))
            if word in _RELATIVE_DAYS:
                day = today + timedelta(days=_RELATIVE_DAYS[word])
                out.append(Entity("date", day.isoformat(), m.start(), m.end()))
                continue
            weekday = _WEEKDAYS.get(lemma(word))
            if weekday is not None:
                ahead = (weekday - today.weekday()) % 7 or 7
                day = today + timedelta(days=ahead)
                out.append(Entity("date", day.isoformat(), m.start(), m.end()))
        for m in _DATE_NUMERIC.finditer(text):
            dd, mm, yy = int(m.group(1)), int(m.group(2)), m.group(3)
            year = today.year if yy is None else (int(yy) + 2000 if len(yy) == 2 else int(yy))
            try:
                day = date(year, mm, dd)
            except ValueError:
                continue
            if yy is None and day < today:
                day = day.replace(year=year + 1)
            out.append(Entity("date", day.isoformat(), m.start(), m.end()))
        return out

    def _times(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        out = []
        for m in _TIME.finditer(text):
            if not _overlaps(m.start(), m.end(), taken):
                out.append(
                    Entity("time", f"{int(m.group(1)):02d}:{m.group(2)}", m.start(), m.end())
                )
        for m in _TIME_WORDS.finditer(text):
            hour = int(m.group(1))
            if m.group(2).lower() in ("дня", "вечера") and hour < 12:
                hour += 12
            if hour < 24 and not _overlaps(m.start(), m.end(), taken):
                out.append(Entity("time", f"{hour:02d}:00", m.start(), m.end()))
        return out


def _overlaps(start: int, end: int, entities: Sequence[Entity]) -> bool:
    return any(start < e.end and e.start < end for e in entities)
