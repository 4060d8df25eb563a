"""Generate the bundled demo catalog (bot/demo_catalog/*.csv) described in DATA_FORMAT.md.

The output is fully deterministic: hand-written reference data plus a seeded filler for the
coverage register. Re-running the script rewrites the same bytes.

    python scripts/make_demo_catalog.py [--out DIR]

Everything here is demo data: the streets are real streets of the four cities, but the houses
in coverage, the offices, terminals, tariffs, prices and accounts are invented. Account holders,
phone numbers (+7XXX000XXXX) and e-mails (@example.ru) are fictional.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

# The column lists are the loader's, so the generator and the validator cannot drift apart.
from bot.billing.csv_seed import (
    ACCOUNT_COLUMNS,
    ACCOUNT_OPTIONAL_COLUMNS,
    ACCOUNT_SERVICE_COLUMNS,
    EQUIPMENT_COLUMNS,
    TRANSACTION_COLUMNS,
)
from bot.catalog.catalog import (
    CITY_COLUMNS,
    COVERAGE_COLUMNS,
    OFFICE_COLUMNS,
    SERVICE_COLUMNS,
    TARIFF_COLUMNS,
)
from bot.outages.fields import FIELDS as OUTAGE_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bot" / "demo_catalog"
SEED = 20261101


FEDERAL_PHONE = "8-800-333-7000"
ROUTER_RENT = Decimal("100.00")
ROUTER_RENT_TEXT = "Аренда роутера"
CARD = "Оплата банковской картой"
SBP = "Оплата через СБП"
TERMINAL = "Оплата в терминале"
YEAR = 2026


# --------------------------------------------------------------------------------------------
# cities


@dataclass(frozen=True, slots=True)
class CitySpec:
    city_id: str
    name: str
    aliases: tuple[str, ...]
    timezone: str
    utc_offset_hours: int
    support_phone: str


CITIES: tuple[CitySpec, ...] = (
    CitySpec(
        "chita", "Чита", ("Chita", "Читы", "Чите", "Читу", "Читой"), "Asia/Chita", 9,
        FEDERAL_PHONE,
    ),
    CitySpec(
        "bratsk", "Братск", ("Bratsk", "Братска", "Братске", "Братском"), "Asia/Irkutsk", 8,
        FEDERAL_PHONE,
    ),
    CitySpec(
        "irkutsk", "Иркутск", ("Irkutsk", "Иркутска", "Иркутске", "Иркутском"), "Asia/Irkutsk",
        8, FEDERAL_PHONE,
    ),
    CitySpec(
        "khabarovsk", "Хабаровск",
        ("Khabarovsk", "Хабаровска", "Хабаровске", "Хабаровском", "Хабар"), "Asia/Vladivostok",
        10, FEDERAL_PHONE,
    ),
)  # fmt: skip
CITY_BY_ID = {c.city_id: c for c in CITIES}


# --------------------------------------------------------------------------------------------
# tariffs


@dataclass(frozen=True, slots=True)
class TariffSpec:
    tariff_id: str
    city_id: str
    name: str
    kind: str
    speed_mbps: int | None
    tv_channels: int | None
    price_rub: Decimal
    description: str
    archived: bool = False


def _inet(city: str, speed: int, price: str, *, archived: bool = False) -> TariffSpec:
    if archived:
        name = "Домашний 50" if speed == 50 else f"Интернет {speed}"
        text = (
            f"Архивный тариф: безлимитный интернет {speed} Мбит/с, новым абонентам не подключается"
        )
    else:
        name = f"Интернет {speed}"
        text = f"Безлимитный интернет {speed} Мбит/с"
    return TariffSpec(
        f"{city}-inet-{speed}", city, name, "internet", speed, None, Decimal(price), text, archived
    )


def _game(city: str, price: str) -> TariffSpec:
    return TariffSpec(
        f"{city}-game-1000", city, "Игровой 1000", "internet", 1000, None, Decimal(price),
        "Интернет 1 Гбит/с с низким пингом и выделенным IP-адресом",
    )  # fmt: skip


def _bundle(
    city: str, speed: int, channels: int, price: str, *, archived: bool = False
) -> TariffSpec:
    text = f"Интернет {speed} Мбит/с и {channels} каналов цифрового ТВ"
    if archived:
        text = (
            f"Архивный тариф: интернет {speed} Мбит/с и {channels} каналов ТВ, "
            "новым абонентам не подключается"
        )
    return TariffSpec(
        f"{city}-inettv-{speed}", city, f"Интернет + ТВ {speed}", "internet_tv", speed, channels,
        Decimal(price), text, archived,
    )  # fmt: skip


def _tv(city: str, channels: int, price: str) -> TariffSpec:
    return TariffSpec(
        f"{city}-tv-basic", city, "ТВ Базовый", "tv", None, channels, Decimal(price),
        f"Цифровое ТВ: {channels} каналов, из них 20 в HD, без интернета",
    )  # fmt: skip


TARIFFS: tuple[TariffSpec, ...] = (
    _inet("chita", 100, "450.00"),
    _inet("chita", 500, "650.00"),
    _game("chita", "950.00"),
    _bundle("chita", 300, 150, "790.00"),
    _tv("chita", 120, "320.00"),
    _inet("chita", 50, "390.00", archived=True),
    _inet("bratsk", 100, "430.00"),
    _inet("bratsk", 300, "530.00"),
    _inet("bratsk", 500, "630.00"),
    _bundle("bratsk", 500, 180, "860.00"),
    _tv("bratsk", 120, "300.00"),
    _bundle("bratsk", 100, 100, "570.00", archived=True),
    _inet("irkutsk", 300, "570.00"),
    _inet("irkutsk", 500, "680.00"),
    _game("irkutsk", "990.00"),
    _bundle("irkutsk", 500, 180, "920.00"),
    _tv("irkutsk", 130, "340.00"),
    _inet("irkutsk", 100, "420.00", archived=True),
    _inet("khabarovsk", 100, "490.00"),
    _inet("khabarovsk", 500, "700.00"),
    _game("khabarovsk", "1020.00"),
    _bundle("khabarovsk", 300, 150, "850.00"),
    _tv("khabarovsk", 120, "349.90"),
    _inet("khabarovsk", 50, "420.00", archived=True),
)
TARIFF_BY_ID = {t.tariff_id: t for t in TARIFFS}


# --------------------------------------------------------------------------------------------
# offices and payment terminals

FULL = "sales;support;payment;equipment"


@dataclass(frozen=True, slots=True)
class OfficeSpec:
    office_id: str
    city_id: str
    kind: str
    name: str
    address: str
    lat: float
    lon: float
    opening_hours: str
    services: str


OFFICES: tuple[OfficeSpec, ...] = (
    # Чита
    OfficeSpec("chita-1", "chita", "office", "Офис продаж на Бутина", "ул. Бутина, 10",
               52.0336, 113.4994, "Mo-Fr 09:00-20:00; Sa 10:00-16:00", FULL),
    OfficeSpec("chita-2", "chita", "office", "Офис на Богомягкова", "ул. Богомягкова, 23",
               52.0372, 113.5035, "Mo-Sa 10:00-19:00", "sales;support;payment"),
    OfficeSpec("chita-t1", "chita", "terminal", "Терминал в торговом центре на Ленина",
               "ул. Ленина, 100", 52.0344, 113.5162, "Mo-Su 10:00-22:00", "payment"),
    OfficeSpec("chita-t2", "chita", "terminal", "Терминал на Амурской", "ул. Амурская, 41",
               52.0298, 113.4952, "24/7", "payment"),
    OfficeSpec("chita-t3", "chita", "terminal", "Терминал в супермаркете на Чкалова",
               "ул. Чкалова, 120", 52.0431, 113.4878, "Mo-Su 08:00-23:00", "payment"),
    # Братск
    OfficeSpec("bratsk-1", "bratsk", "office", "Офис продаж на Мира", "ул. Мира, 35",
               56.1518, 101.6162, "Mo-Fr 09:00-19:00; Sa 10:00-15:00", FULL),
    OfficeSpec("bratsk-2", "bratsk", "office", "Офис на проспекте Ленина", "пр-т Ленина, 14",
               56.1553, 101.6281, "Mo-Sa 10:00-19:00", "sales;support;payment"),
    OfficeSpec("bratsk-3", "bratsk", "office", "Офис в Энергетике", "ул. Наймушина, 30",
               56.2638, 101.7362, "Mo-Fr 10:00-18:00", FULL),
    OfficeSpec("bratsk-t1", "bratsk", "terminal", "Терминал в торговом центре на Мира",
               "ул. Мира, 52", 56.1497, 101.6205, "Mo-Su 10:00-21:00", "payment"),
    OfficeSpec("bratsk-t2", "bratsk", "terminal", "Терминал на Крупской", "ул. Крупской, 25",
               56.1579, 101.6118, "24/7", "payment"),
    OfficeSpec("bratsk-t3", "bratsk", "terminal", "Терминал в супермаркете на Комсомольской",
               "ул. Комсомольская, 50", 56.1602, 101.6230, "Mo-Su 08:00-23:00", "payment"),
    # Иркутск
    OfficeSpec("irkutsk-1", "irkutsk", "office", "Офис продаж на Карла Маркса",
               "ул. Карла Маркса, 24", 52.2847, 104.2832, "Mo-Fr 09:00-20:00; Sa-Su 10:00-17:00",
               FULL),
    OfficeSpec("irkutsk-2", "irkutsk", "office", "Офис на Байкальской", "ул. Байкальская, 180",
               52.2738, 104.3147, "Mo-Sa 10:00-19:00", FULL),
    OfficeSpec("irkutsk-3", "irkutsk", "office", "Пункт обслуживания в Академгородке",
               "ул. Лермонтова, 279", 52.2562, 104.2636, "Mo-Fr 09:00-13:00,14:00-18:00",
               "support;payment"),
    OfficeSpec("irkutsk-t1", "irkutsk", "terminal", "Терминал в торговом центре на Сухэ-Батора",
               "ул. Сухэ-Батора, 7", 52.2885, 104.2818, "Mo-Su 10:00-22:00", "payment"),
    OfficeSpec("irkutsk-t2", "irkutsk", "terminal", "Терминал на Ленина", "ул. Ленина, 6",
               52.2862, 104.2797, "24/7", "payment"),
    OfficeSpec("irkutsk-t3", "irkutsk", "terminal", "Терминал в мкр. Юбилейный",
               "мкр. Юбилейный, 100", 52.2316, 104.3034, "Mo-Su 09:00-22:00", "payment"),
    OfficeSpec("irkutsk-t4", "irkutsk", "terminal", "Терминал на Партизанской",
               "ул. Партизанская, 112", 52.2651, 104.2868, "24/7", "payment"),
    # Хабаровск
    OfficeSpec("khabarovsk-1", "khabarovsk", "office", "Офис продаж на Муравьёва-Амурского",
               "ул. Муравьёва-Амурского, 15", 48.4762, 135.0648,
               "Mo-Fr 09:00-20:00; Sa 10:00-16:00", FULL),
    OfficeSpec("khabarovsk-2", "khabarovsk", "office", "Офис на Карла Маркса",
               "ул. Карла Маркса, 76", 48.4927, 135.0874, "Mo-Sa 10:00-19:00", FULL),
    OfficeSpec("khabarovsk-3", "khabarovsk", "office", "Офис на Тихоокеанской",
               "ул. Тихоокеанская, 73", 48.5105, 135.0622, "Mo-Fr 09:00-18:00; Sa 10:00-14:00",
               "sales;support;payment"),
    OfficeSpec("khabarovsk-t1", "khabarovsk", "terminal",
               "Терминал в торговом центре на Карла Маркса", "ул. Карла Маркса, 91",
               48.4951, 135.0902, "Mo-Su 10:00-22:00", "payment"),
    OfficeSpec("khabarovsk-t2", "khabarovsk", "terminal", "Терминал на Серышева",
               "ул. Серышева, 47", 48.4688, 135.0745, "24/7", "payment"),
    OfficeSpec("khabarovsk-t3", "khabarovsk", "terminal", "Терминал на 60-летия Октября",
               "пр-т 60-летия Октября, 150", 48.4398, 135.1196, "Mo-Su 08:00-22:00", "payment"),
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# coverage register


@dataclass(frozen=True, slots=True)
class StreetSpec:
    street: str
    technology: str
    houses: int  # total number of houses on the street in the register
    max_number: int  # house numbers are drawn from 1..max_number
    planned_share: float = 0.22  # chance that a drawn house is only planned
    fixed: tuple[tuple[str, str], ...] = ()  # (house, status) always present


C = "connected"
P = "planned"

STREETS: dict[str, tuple[StreetSpec, ...]] = {
    "chita": (
        StreetSpec("ул. Бутина", "fttb", 7, 120, fixed=(("10", C), ("14б", C))),
        StreetSpec("ул. Ленина", "gpon", 8, 160, fixed=(("10", C), ("100", C))),
        StreetSpec("ул. Амурская", "fttb", 6, 120, fixed=(("91 к2", C), ("41", C))),
        StreetSpec("ул. Чкалова", "gpon", 6, 160, fixed=(("139а", C),)),
        StreetSpec("ул. Бабушкина", "fttb", 6, 180, fixed=(("66", C),)),
        StreetSpec("ул. Богомягкова", "gpon", 5, 140, fixed=(("23", C),)),
        StreetSpec("ул. Петровская", "fttb", 4, 40),
        StreetSpec("ул. Журавлёва", "gpon", 6, 120, fixed=(("77", C),)),
        StreetSpec("ул. Анохина", "gpon", 4, 120),
        StreetSpec("ул. Курнатовского", "fttb", 4, 100),
        StreetSpec("ул. Костюшко-Григоровича", "docsis", 4, 40),
        StreetSpec("ул. Калинина", "docsis", 4, 140),
        StreetSpec("ул. Новобульварная", "gpon", 4, 170),
        StreetSpec("ул. Шилова", "gpon", 5, 100),
        StreetSpec("мкр. Октябрьский", "gpon", 5, 40, fixed=(("12", C),)),
        StreetSpec("мкр. Северный", "gpon", 6, 60, planned_share=0.6),
        StreetSpec("ул. Генерала Белика", "docsis", 3, 40),
        StreetSpec("ул. Кастринская", "gpon", 3, 12, planned_share=1.0, fixed=(("3", P),)),
    ),
    "bratsk": (
        StreetSpec("ул. Мира", "fttb", 8, 120, fixed=(("39а", C), ("3", C), ("35", C))),
        StreetSpec("пер. Мира", "fttb", 3, 9, planned_share=0.0, fixed=(("3", C),)),
        StreetSpec("пр-т Ленина", "gpon", 7, 60, fixed=(("22", C), ("14", C))),
        StreetSpec("ул. Крупской", "fttb", 6, 50, fixed=(("14б", C),)),
        StreetSpec("ул. Комсомольская", "gpon", 6, 80, fixed=(("45", C),)),
        StreetSpec("ул. Кирова", "docsis", 5, 40, fixed=(("12/1", C),)),
        StreetSpec("ул. Енисейская", "gpon", 5, 80),
        StreetSpec("ул. Депутатская", "fttb", 5, 40),
        StreetSpec("бул. Космонавтов", "gpon", 6, 60, fixed=(("8", C),)),
        StreetSpec("ул. Рябикова", "gpon", 5, 60),
        StreetSpec("ул. Советская", "docsis", 4, 20),
        StreetSpec("ул. Гагарина", "gpon", 4, 60),
        StreetSpec("ул. Подбельского", "fttb", 4, 60),
        StreetSpec("ул. Наймушина", "docsis", 5, 40, fixed=(("30", C),)),
        StreetSpec("ул. Курчатова", "gpon", 4, 80),
        StreetSpec("ул. Янгеля", "gpon", 4, 140),
        StreetSpec("ул. Обручева", "gpon", 4, 50, planned_share=0.7, fixed=(("21", P),)),
        StreetSpec("ул. Юбилейная", "gpon", 3, 30, planned_share=0.5),
    ),
    "irkutsk": (
        StreetSpec("ул. Карла Маркса", "fttb", 7, 60, fixed=(("15", C), ("24", C))),
        StreetSpec("ул. Ленина", "fttb", 6, 50, fixed=(("10", C), ("6", C))),
        StreetSpec("ул. Лермонтова", "gpon", 7, 350, fixed=(("281", C), ("279", C))),
        StreetSpec("ул. Байкальская", "gpon", 8, 300, fixed=(("202", C), ("180", C))),
        StreetSpec("ул. Советская", "gpon", 6, 180, fixed=(("55", C),)),
        StreetSpec("ул. Партизанская", "fttb", 5, 150, fixed=(("49", C), ("112", C))),
        StreetSpec("мкр. Юбилейный", "gpon", 7, 120, fixed=(("19", C), ("100", C))),
        StreetSpec("ул. Трилиссера", "docsis", 4, 120, fixed=(("5 к2", C),)),
        StreetSpec("ул. Горького", "fttb", 4, 45),
        StreetSpec("ул. Сухэ-Батора", "fttb", 4, 20, fixed=(("7", C),)),
        StreetSpec("ул. Декабрьских Событий", "gpon", 5, 120),
        StreetSpec("ул. Депутатская", "gpon", 4, 90),
        StreetSpec("ул. Тимирязева", "fttb", 4, 50),
        StreetSpec("ул. Красноармейская", "docsis", 3, 20),
        StreetSpec("бул. Гагарина", "gpon", 4, 70),
        StreetSpec("пер. Волконского", "fttb", 2, 10, planned_share=0.0),
        StreetSpec("пр-д Угольный", "gpon", 3, 70),
        StreetSpec("мкр. Университетский", "gpon", 5, 110),
        StreetSpec("мкр. Первомайский", "gpon", 4, 80, planned_share=0.8, fixed=(("75", P),)),
        StreetSpec("ул. Пискунова", "gpon", 3, 160),
    ),
    "khabarovsk": (
        StreetSpec("ул. Муравьёва-Амурского", "fttb", 7, 60, fixed=(("23", C), ("15", C))),
        StreetSpec("ул. Ким Ю Чена", "gpon", 6, 90, fixed=(("44", C),)),
        StreetSpec("ул. Серышева", "fttb", 6, 80, fixed=(("31", C), ("47", C))),
        StreetSpec("ул. Карла Маркса", "gpon", 8, 160, fixed=(("15", C), ("96а", C), ("76", C))),
        StreetSpec("ул. Пушкина", "docsis", 5, 60, fixed=(("38", C),)),
        StreetSpec("ул. Дикопольцева", "gpon", 5, 70, fixed=(("28", C),)),
        StreetSpec("ул. Ленина", "fttb", 5, 80, fixed=(("10", C),)),
        StreetSpec("ул. Шеронова", "gpon", 4, 120),
        StreetSpec("ул. Запарина", "fttb", 4, 120),
        StreetSpec("ул. Фрунзе", "docsis", 4, 120),
        StreetSpec("ул. Калинина", "gpon", 4, 150),
        StreetSpec("ул. Волочаевская", "gpon", 4, 180),
        StreetSpec("ул. Тихоокеанская", "gpon", 5, 200, fixed=(("73", C),)),
        StreetSpec("пр-т 60-летия Октября", "gpon", 5, 200, fixed=(("150", C),)),
        StreetSpec("бул. Амурский", "fttb", 3, 60),
        StreetSpec("ш. Матвеевское", "gpon", 4, 40, planned_share=1.0, fixed=(("22", P),)),
        StreetSpec("ул. Краснодарская", "gpon", 4, 60),
        StreetSpec("ул. Павла Морозова", "docsis", 3, 120, planned_share=0.7),
    ),
}

HOUSE_SUFFIXES = ("а", "а", "б", "б", "в", "/1", "/2", " к1", " к2")


@dataclass(frozen=True, slots=True)
class CoverageRow:
    city_id: str
    street: str
    house: str
    status: str
    technology: str


def _house_key(house: str) -> tuple[int, str]:
    match = re.match(r"\d+", house)
    number = int(match.group()) if match else 0
    return number, house[match.end() if match else 0 :]


def build_coverage(rng: random.Random) -> list[CoverageRow]:
    rows: list[CoverageRow] = []
    for city in CITIES:
        for spec in STREETS[city.city_id]:
            houses: dict[str, str] = dict(spec.fixed)
            while len(houses) < spec.houses:
                house = str(rng.randint(1, spec.max_number))
                if rng.random() < 0.14:
                    house += rng.choice(HOUSE_SUFFIXES)
                status = P if rng.random() < spec.planned_share else C
                houses.setdefault(house, status)
            for house in sorted(houses, key=_house_key):
                rows.append(
                    CoverageRow(city.city_id, spec.street, house, houses[house], spec.technology)
                )
    return rows


# --------------------------------------------------------------------------------------------
# demo accounts and their recent transactions


@dataclass(frozen=True, slots=True)
class Payment:
    when: str  # "MM-DD HH:MM", local time of the account's city
    amount: str
    method: str


@dataclass(frozen=True, slots=True)
class AccountSpec:
    contract_number: str
    city_id: str
    holder_name: str
    phone: str
    email: str
    street: str
    house: str
    flat: int
    tariff_id: str
    status: str
    bonus_points: int
    opening_balance: str  # balance just before the first charge of September
    payments: tuple[Payment, ...]
    charge_months: tuple[int, ...] = (9, 10, 11)  # months with a subscription charge
    charge_day: int = 1
    router: bool = False
    note: str = field(default="", compare=False)  # for the generator's own documentation only

    @property
    def address(self) -> str:
        return f"{self.street}, {self.house}, кв. {self.flat}"


def _p(when: str, amount: str, method: str) -> Payment:
    return Payment(when, amount, method)


ACCOUNTS: tuple[AccountSpec, ...] = (
    # ---- Чита
    AccountSpec(
        "750012345678", "chita", "Иванов Иван Иванович", "+79140000001", "ivanov@example.ru",
        "ул. Бутина", "10", 5, "chita-inet-500", "active", 340, "880.50",
        (_p("09-28 19:12", "650.00", CARD), _p("10-29 20:41", "650.00", CARD),
         _p("11-27 18:03", "650.00", CARD)),
        note="simple active account of the DATA_FORMAT example",
    ),
    AccountSpec(
        "750012345691", "chita", "Петрова Анна Сергеевна", "+79140000002", "petrova@example.ru",
        "ул. Ленина", "10", 41, "chita-inettv-300", "active", 1250, "920.00",
        (_p("09-15 12:30", "1500.00", SBP), _p("10-20 09:47", "1500.00", SBP)),
        router=True,
    ),
    AccountSpec(
        "750023456702", "chita", "Смирнов Алексей Викторович", "+79140000003",
        "smirnov@example.ru", "ул. Журавлёва", "77", 12, "chita-game-1000", "active", 1980,
        "120.00", (_p("09-10 21:15", "3000.00", CARD),), charge_day=15,
        note="paid ahead once; 270.00 left, not enough for the December charge",
    ),
    AccountSpec(
        "750034567813", "chita", "Кузнецова Ольга Петровна", "+79140000004",
        "kuznetsova@example.ru", "ул. Чкалова", "139а", 8, "chita-inet-50", "active", 75, "400.00",
        (_p("09-05 11:20", "400.00", TERMINAL), _p("10-03 16:05", "400.00", TERMINAL),
         _p("11-02 10:48", "400.00", TERMINAL)),
        note="archived tariff",
    ),
    AccountSpec(
        "750045678924", "chita", "Соколов Дмитрий Андреевич", "+79140000005",
        "sokolov@example.ru", "ул. Амурская", "91 к2", 54, "chita-inet-100", "blocked", 120,
        "500.00", (_p("09-25 17:33", "400.00", TERMINAL),),
        note="blocked on 1 Nov for a negative balance",
    ),
    AccountSpec(
        "750056789035", "chita", "Попова Елена Николаевна", "+79140000006", "popova@example.ru",
        "мкр. Октябрьский", "12", 88, "chita-tv-basic", "blocked", 0, "350.00",
        (_p("09-12 13:02", "149.50", SBP),), charge_months=(9, 10),
        note="blocked on 1 Oct for a negative balance",
    ),
    AccountSpec(
        "750067890146", "chita", "Лебедев Сергей Игоревич", "+79140000007", "lebedev@example.ru",
        "ул. Бабушкина", "66", 3, "chita-inet-500", "suspended", 560, "700.00",
        (_p("09-26 08:55", "650.00", CARD), _p("10-18 14:10", "1000.00", SBP)),
        charge_months=(9, 10), note="voluntary suspension since 20 Oct",
    ),
    # ---- Братск
    AccountSpec(
        "380300112233", "bratsk", "Новиков Андрей Павлович", "+79020000011",
        "novikov@example.ru", "ул. Мира", "39а", 14, "bratsk-inet-300", "active", 430, "600.00",
        (_p("09-22 19:40", "530.00", CARD), _p("10-24 20:15", "600.00", CARD),
         _p("11-25 18:22", "530.00", SBP)),
    ),
    AccountSpec(
        "380300223344", "bratsk", "Морозова Татьяна Владимировна", "+79020000012",
        "morozova@example.ru", "пр-т Ленина", "22", 7, "bratsk-inettv-500", "active", 1720,
        "1000.00", (_p("09-18 12:14", "2000.00", TERMINAL), _p("11-10 15:36", "1000.00", TERMINAL)),
        router=True,
    ),
    AccountSpec(
        "380300334455", "bratsk", "Волков Михаил Сергеевич", "+79020000013", "volkov@example.ru",
        "ул. Крупской", "14б", 30, "bratsk-inettv-100", "active", 890, "600.00",
        (_p("09-29 10:05", "1200.00", SBP), _p("11-28 11:50", "600.00", SBP)),
        note="archived tariff",
    ),
    AccountSpec(
        "380300445566", "bratsk", "Алексеева Наталья Юрьевна", "+79020000014",
        "alekseeva@example.ru", "ул. Комсомольская", "45", 2, "bratsk-inet-100", "blocked", 40,
        "450.00", (_p("09-30 18:18", "430.00", TERMINAL),),
        note="blocked on 1 Nov for a negative balance",
    ),
    AccountSpec(
        "380300556677", "bratsk", "Семёнов Виктор Олегович", "+79020000015",
        "semenov@example.ru", "бул. Космонавтов", "8", 101, "bratsk-inet-500", "blocked", 300,
        "800.00", (_p("09-27 21:07", "700.00", CARD),), router=True,
        note="blocked on 1 Nov for a negative balance",
    ),
    AccountSpec(
        "380300667788", "bratsk", "Егорова Светлана Михайловна", "+79020000016",
        "egorova@example.ru", "ул. Кирова", "12/1", 9, "bratsk-tv-basic", "suspended", 150,
        "310.00", (_p("09-20 12:44", "300.00", TERMINAL), _p("10-05 17:29", "500.00", TERMINAL)),
        charge_months=(9, 10), note="voluntary suspension since November",
    ),
    AccountSpec(
        "380300778899", "bratsk", "Павлов Николай Евгеньевич", "+79020000017",
        "pavlov@example.ru", "пер. Мира", "3", 1, "bratsk-inet-500", "suspended", 610, "650.00",
        (_p("09-03 09:15", "630.00", CARD), _p("10-15 22:01", "300.00", SBP)),
        charge_months=(9, 10), note="voluntary suspension since 20 Oct",
    ),
    # ---- Иркутск
    AccountSpec(
        "380100123456", "irkutsk", "Козлов Артём Дмитриевич", "+79500000021", "kozlov@example.ru",
        "ул. Карла Маркса", "15", 21, "irkutsk-inet-500", "active", 510, "700.00",
        (_p("09-25 19:00", "700.00", CARD), _p("10-25 19:02", "700.00", CARD),
         _p("11-25 19:01", "700.00", CARD)),
    ),
    AccountSpec(
        "380100234567", "irkutsk", "Степанова Юлия Андреевна", "+79500000022",
        "stepanova@example.ru", "ул. Лермонтова", "281", 45, "irkutsk-game-1000", "active", 1400,
        "1000.00", (_p("09-30 20:20", "1000.00", SBP), _p("10-30 21:45", "1000.00", SBP),
                    _p("11-09 23:10", "1000.00", SBP)),
        charge_day=10,
    ),
    AccountSpec(
        "380100345678", "irkutsk", "Николаев Павел Ильич", "+79500000023",
        "nikolaev@example.ru", "мкр. Юбилейный", "19", 64, "irkutsk-inettv-500", "active", 980,
        "1100.00", (_p("09-14 10:10", "1100.00", CARD), _p("10-12 11:34", "1000.00", CARD)),
        router=True, note="140.00 left, not enough for the December charge",
    ),
    AccountSpec(
        "380100456789", "irkutsk", "Орлова Мария Константиновна", "+79500000024",
        "orlova@example.ru", "ул. Байкальская", "202", 17, "irkutsk-inet-100", "active", 220,
        "900.00", (_p("10-07 13:13", "1000.00", TERMINAL),), note="archived tariff",
    ),
    AccountSpec(
        "380100567890", "irkutsk", "Андреев Роман Викторович", "+79500000025",
        "andreev@example.ru", "ул. Партизанская", "49", 8, "irkutsk-inet-300", "blocked", 0,
        "600.00", (_p("09-29 18:48", "500.00", SBP),), charge_months=(9, 10),
        note="blocked on 1 Oct for a negative balance",
    ),
    AccountSpec(
        "380100678901", "irkutsk", "Макарова Екатерина Олеговна", "+79500000026",
        "makarova@example.ru", "ул. Советская", "55", 70, "irkutsk-tv-basic", "suspended", 90,
        "400.00", (_p("09-15 16:16", "400.00", TERMINAL),), charge_months=(9, 10),
        note="voluntary suspension since November",
    ),
    AccountSpec(
        "380100789012", "irkutsk", "Захаров Игорь Станиславович", "+79500000027",
        "zakharov@example.ru", "ул. Трилиссера", "5 к2", 11, "irkutsk-inettv-500", "suspended",
        770, "950.00", (_p("09-20 12:00", "1000.00", CARD), _p("10-08 08:30", "500.00", SBP)),
        charge_months=(9, 10), note="voluntary suspension since 10 Oct",
    ),
    # ---- Хабаровск
    AccountSpec(
        "270000111222", "khabarovsk", "Васильев Константин Романович", "+79240000031",
        "vasiliev@example.ru", "ул. Муравьёва-Амурского", "23", 6, "khabarovsk-inet-500",
        "active", 650, "750.00",
        (_p("09-24 18:30", "700.00", CARD), _p("10-23 19:11", "700.00", CARD),
         _p("11-26 17:57", "700.00", CARD)),
    ),
    AccountSpec(
        "270000222333", "khabarovsk", "Фёдорова Дарья Игоревна", "+79240000032",
        "fedorova@example.ru", "ул. Ким Ю Чена", "44", 19, "khabarovsk-inettv-300", "active",
        2000, "1000.00", (_p("09-30 09:09", "1500.00", SBP), _p("10-31 10:20", "1000.00", SBP)),
        charge_day=5, router=True,
    ),
    AccountSpec(
        "270000333444", "khabarovsk", "Михайлов Евгений Александрович", "+79240000033",
        "mikhailov@example.ru", "ул. Карла Маркса", "96а", 52, "khabarovsk-inet-50", "active",
        310, "430.00", (_p("09-02 15:40", "1300.00", TERMINAL),), note="archived tariff",
    ),
    AccountSpec(
        "270000444555", "khabarovsk", "Беляева Ксения Сергеевна", "+79240000034",
        "belyaeva@example.ru", "ул. Серышева", "31", 40, "khabarovsk-inet-100", "blocked", 60,
        "500.00", (_p("09-28 20:02", "490.00", SBP),),
        note="blocked on 1 Nov for a negative balance",
    ),
    AccountSpec(
        "270000555666", "khabarovsk", "Тарасов Владимир Григорьевич", "+79240000035",
        "tarasov@example.ru", "ул. Дикопольцева", "28", 77, "khabarovsk-game-1000", "blocked",
        1150, "1200.00", (_p("09-30 22:22", "1030.00", CARD),), charge_months=(9, 10),
        router=True, note="blocked on 1 Oct: the router rent took the balance below zero",
    ),
    AccountSpec(
        "270000666777", "khabarovsk", "Комарова Алина Денисовна", "+79240000036",
        "komarova@example.ru", "пр-т 60-летия Октября", "150", 13, "khabarovsk-tv-basic",
        "suspended", 0, "400.00",
        (_p("09-15 11:11", "349.90", TERMINAL), _p("10-16 12:25", "349.90", TERMINAL)),
        charge_months=(9, 10), note="voluntary suspension since November",
    ),
    AccountSpec(
        "270000777888", "khabarovsk", "Жуков Геннадий Валерьевич", "+79240000037",
        "zhukov@example.ru", "ул. Пушкина", "38", 2, "khabarovsk-inettv-300", "suspended", 480,
        "900.00", (_p("09-10 19:19", "900.00", CARD), _p("10-25 20:40", "500.00", SBP)),
        charge_months=(9, 10), note="voluntary suspension since November",
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TransactionRow:
    contract_number: str
    at: datetime
    amount: Decimal
    description: str


def build_transactions(account: AccountSpec) -> list[TransactionRow]:
    city = CITY_BY_ID[account.city_id]
    tz = timezone(timedelta(hours=city.utc_offset_hours))
    tariff = TARIFF_BY_ID[account.tariff_id]
    rows: list[TransactionRow] = []
    for month in account.charge_months:
        at = datetime(YEAR, month, account.charge_day, 0, 5, tzinfo=tz)
        rows.append(
            TransactionRow(
                account.contract_number, at, -tariff.price_rub,
                f"Абонентская плата {tariff.name}",
            )
        )  # fmt: skip
        if account.router:
            rows.append(
                TransactionRow(
                    account.contract_number, at + timedelta(minutes=1), -ROUTER_RENT,
                    ROUTER_RENT_TEXT,
                )
            )  # fmt: skip
    for payment in account.payments:
        day, clock = payment.when.split(" ")
        month, dom = (int(x) for x in day.split("-"))
        hour, minute = (int(x) for x in clock.split(":"))
        at = datetime(YEAR, month, dom, hour, minute, tzinfo=tz)
        rows.append(
            TransactionRow(account.contract_number, at, Decimal(payment.amount), payment.method)
        )
    rows.sort(key=lambda r: r.at)
    return rows


def final_balance(account: AccountSpec, transactions: Sequence[TransactionRow]) -> Decimal:
    """Balance after the transactions, checking that the story matches the account status."""
    balance = Decimal(account.opening_balance)
    went_negative = False
    for tx in transactions:
        balance += tx.amount
        if balance < 0:
            went_negative = True
            if account.status != "blocked":
                raise SystemExit(f"{account.contract_number}: negative balance while not blocked")
        elif went_negative:
            raise SystemExit(f"{account.contract_number}: recovered after being blocked")
    if account.status == "blocked" and balance >= 0:
        raise SystemExit(f"{account.contract_number}: blocked account must end negative")
    return balance


# --------------------------------------------------------------------------------------------
# output


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _coord(value: float) -> str:
    return f"{value:.4f}"


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            if len(row) != len(columns):
                raise SystemExit(f"{path.name}: row {row!r} does not match the header")
            writer.writerow(row)
            count += 1
    return count


def check_accounts(coverage: Sequence[CoverageRow]) -> None:
    connected = {(r.city_id, r.street, r.house) for r in coverage if r.status == C}
    contracts: set[str] = set()
    for account in ACCOUNTS:
        if account.contract_number in contracts:
            raise SystemExit(f"duplicate contract {account.contract_number}")
        contracts.add(account.contract_number)
        if (account.city_id, account.street, account.house) not in connected:
            raise SystemExit(f"{account.contract_number}: address is not a connected house")
        if TARIFF_BY_ID[account.tariff_id].city_id != account.city_id:
            raise SystemExit(f"{account.contract_number}: tariff of another city")


# --------------------------------------------------------------------------------------------
# extra services, equipment, rules (DATA_FORMAT.md extensions)

# (suffix, name, kind, price, period, description, archived)
SERVICES: tuple[tuple[str, str, str, str, str, str, bool], ...] = (
    ("antivirus", "Антивирус", "antivirus", "99.00", "month", "Защита для 3 устройств", False),
    ("static-ip", "Статический IP-адрес", "static_ip", "150.00", "month",
     "Постоянный внешний адрес для камер и удалённого доступа", False),
    ("tv-kino", "Пакет «Кино»", "tv_package", "199.00", "month", "20 каналов фильмов и сериалов",
     False),
    ("router-rent", ROUTER_RENT_TEXT, "equipment_rent", "100.00", "month",
     "Wi-Fi роутер двухдиапазонный", False),
    ("wifi-setup", "Настройка Wi-Fi мастером", "other", "300.00", "once",
     "Выезд мастера и настройка сети дома", False),
    ("tv-sport-old", "Пакет «Спорт» (архив)", "tv_package", "149.00", "month",
     "Больше не подключается", True),
)  # fmt: skip
# Accounts that also have the antivirus; a suspended account's pause (from, to or "").
WITH_ANTIVIRUS = ("750012345691", "380300223344", "380100234567", "270000222333")
AUTOPAY = ("750012345691", "380100234567", "270000111222")
PAUSES = {
    "750067890146": ("2026-11-20", "2026-12-20"),
    "380300667788": ("2026-11-25", "2027-01-10"),
}
# Fictional payee; the bank's BIC and correspondent account are a real bank's public ones, so
# bank apps accept the QR code (the settlement account's control digit matches the BIC).
RULES_YML = """\
# The provider's self-service rules (DATA_FORMAT.md). Every key is optional.
billing_day: 1
unblock_at_balance_rub: 0
promised_payment:
  max_debt_rub: 1500
  days: 5
  cooldown_days: 30
  fee_rub: 0
  statuses: [active, blocked]
suspension:
  min_days: 7
  max_days: 90
  fee_per_day_rub: 0
tariff_change:
  effective: next_charge
payment:
  link: ""
  autopay_link: ""
requisites:
  name: ООО «Демо Телеком» (демо)
  inn: "7700000000"
  kpp: "770001001"
  bank: ПАО Сбербанк
  bic: "044525225"
  correspondent_account: "30101810400000000225"
  settlement_account: "40702810938000012345"
"""


# Outages (outages.csv): one accident going on (no end known, so it stays current until closed
# through the API) on a street where no demo account lives, so the demo customers' answers do
# not change; and planned works later on. Fixed dates keep the file the same on every run.
OUTAGES: tuple[tuple[str, ...], ...] = (
    (
        "2026-1130-ch-01", "chita", "ул. Курнатовского", "", "internet;tv", "accident",
        "2026-11-30T07:40:00+09:00", "",
        "Повреждение магистрального кабеля при земляных работах",
    ),
    (
        "2027-0315-irk-01", "irkutsk", "ул. Горького", "17;19;21", "internet;tv;phone", "planned",
        "2027-03-15T01:00:00+08:00", "2027-03-15T05:00:00+08:00",
        "Замена коммутатора в узле связи",
    ),
)  # fmt: skip


# Technician visits (visit_slots.csv): when crews can come, in each city's local time. Chita and
# Khabarovsk are busier (more crews); a visit is free except in Khabarovsk (a paid call-out).
VISIT_SLOT_COLUMNS = ("city_id", "opening_hours", "slot_minutes", "crews", "visit_fee_rub")
VISIT_SLOTS: tuple[tuple[str, ...], ...] = (
    ("chita", "Mo-Fr 09:00-19:00; Sa 10:00-16:00", "120", "3", "0"),
    ("bratsk", "Mo-Fr 09:00-18:00", "180", "2", "0"),
    ("irkutsk", "Mo-Fr 09:00-21:00; Sa,Su 10:00-16:00", "120", "2", "0"),
    ("khabarovsk", "Mo-Sa 09:00-19:00", "120", "3", "300"),
)


def check_outages(coverage: Sequence[CoverageRow]) -> None:
    """The demo outages reach no demo account (their tests keep their answers) and name
    streets the register has."""
    streets = {(r.city_id, r.street) for r in coverage}
    for outage_id, city_id, street, *_ in OUTAGES:
        if (city_id, street) not in streets:
            raise SystemExit(f"outage {outage_id}: {street} is not in coverage of {city_id}")
        if any(a.city_id == city_id and a.address.startswith(f"{street},") for a in ACCOUNTS):
            raise SystemExit(f"outage {outage_id}: a demo account lives on {street}")


def generate(out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    coverage = build_coverage(random.Random(SEED))
    check_accounts(coverage)
    check_outages(coverage)
    counts: dict[str, int] = {}
    counts["cities.csv"] = write_csv(
        out / "cities.csv",
        CITY_COLUMNS,
        ([c.city_id, c.name, ";".join(c.aliases), c.timezone, c.support_phone] for c in CITIES),
    )
    counts["tariffs.csv"] = write_csv(
        out / "tariffs.csv",
        TARIFF_COLUMNS,
        (
            [
                t.tariff_id, t.city_id, t.name, t.kind, _opt(t.speed_mbps), _opt(t.tv_channels),
                _money(t.price_rub), t.description, "true" if t.archived else "false",
            ]
            for t in TARIFFS
        ),
    )  # fmt: skip
    counts["offices.csv"] = write_csv(
        out / "offices.csv",
        OFFICE_COLUMNS,
        (
            [
                o.office_id, o.city_id, o.kind, o.name, o.address, _coord(o.lat), _coord(o.lon),
                o.opening_hours, o.services,
            ]
            for o in OFFICES
        ),
    )  # fmt: skip
    counts["coverage.csv"] = write_csv(
        out / "coverage.csv",
        COVERAGE_COLUMNS,
        ([r.city_id, r.street, r.house, r.status, r.technology] for r in coverage),
    )
    account_rows: list[list[str]] = []
    transactions: list[TransactionRow] = []
    for account in ACCOUNTS:
        history = build_transactions(account)
        if not 3 <= len(history) <= 8:
            raise SystemExit(f"{account.contract_number}: {len(history)} transactions")
        transactions.extend(history)
        account_rows.append(
            [
                account.contract_number, account.city_id, account.holder_name, account.phone,
                account.email, account.address, account.tariff_id,
                _money(final_balance(account, history)), str(account.bonus_points),
                account.status, date(YEAR, 12, account.charge_day).isoformat(),
                "true" if account.contract_number in AUTOPAY else "false",
                max((t.at.date() for t in history if t.amount > 0), default=None) or "",
                *PAUSES.get(account.contract_number, ("", "")),
            ]
        )  # fmt: skip
    account_rows = [[str(v) for v in row] for row in account_rows]
    counts["accounts.csv"] = write_csv(
        out / "accounts.csv", (*ACCOUNT_COLUMNS, *ACCOUNT_OPTIONAL_COLUMNS), account_rows
    )
    counts["services.csv"] = write_csv(
        out / "services.csv",
        SERVICE_COLUMNS,
        (
            [f"{c.city_id}-{suffix}", c.city_id, name, kind, price, period, text,
             "true" if archived else "false"]
            for c in CITIES
            for suffix, name, kind, price, period, text, archived in SERVICES
        ),
    )  # fmt: skip
    counts["account_services.csv"] = write_csv(
        out / "account_services.csv",
        ACCOUNT_SERVICE_COLUMNS,
        [
            *([a.contract_number, f"{a.city_id}-router-rent", "2026-01-15"]
              for a in ACCOUNTS if a.router),
            *([a.contract_number, f"{a.city_id}-antivirus", "2026-03-01"]
              for a in ACCOUNTS if a.contract_number in WITH_ANTIVIRUS),
        ],
    )  # fmt: skip
    counts["equipment.csv"] = write_csv(
        out / "equipment.csv",
        EQUIPMENT_COLUMNS,
        (
            [a.contract_number, "router", "TP-Link Archer C6", f"2231A{a.contract_number[-7:]}",
             "rented", "true"]
            for a in ACCOUNTS if a.router
        ),
    )  # fmt: skip
    counts["outages.csv"] = write_csv(out / "outages.csv", OUTAGE_COLUMNS, OUTAGES)
    counts["visit_slots.csv"] = write_csv(out / "visit_slots.csv", VISIT_SLOT_COLUMNS, VISIT_SLOTS)
    (out / "rules.yml").write_text(RULES_YML, encoding="utf-8")
    counts["rules.yml"] = 1
    transactions.sort(key=lambda t: (t.contract_number, t.at))
    counts["transactions.csv"] = write_csv(
        out / "transactions.csv",
        TRANSACTION_COLUMNS,
        (
            [t.contract_number, t.at.isoformat(), _money(t.amount), t.description]
            for t in transactions
        ),
    )
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    for name, count in generate(args.out).items():
        print(f"{args.out / name}: {count} rows")


if __name__ == "__main__":
    main()
