"""Entities in messages as customers type them in messengers: short, lowercase, misspelled,
without punctuation, several facts in one line.

Every case lists *all* entities expected in the message as (type, value, surface text), so a
false extra entity (a house in "5 лет", a phone that is also a contract) fails the test too.
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import pytest

from bot.catalog.addresses import parse_address
from bot.catalog.catalog import load_catalog
from bot.catalog.models import City
from bot.config import DEMO_CATALOG
from bot.intents.entities import Entity, EntityExtractor, normalize_phone

# A Saturday; "в четверг" is 2026-11-26, "завтра" 2026-11-22.
TODAY = date(2026, 11, 21)
CITY_IDS = {"Чита": "chita", "Братск": "bratsk", "Иркутск": "irkutsk", "Хабаровск": "khabarovsk"}

Expected = list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(list(load_catalog(DEMO_CATALOG).cities.values()))


def found(extractor: EntityExtractor, text: str, today: date = TODAY) -> Expected:
    entities = extractor.extract(text, today=today)
    assert entities == sorted(entities, key=lambda e: (e.start, e.end)), "sorted by start"
    for e in entities:
        assert 0 <= e.start < e.end <= len(text), e
        assert text[e.start : e.end] == text[e.start : e.end].strip(), f"untrimmed span {e}"
        if e.type == "city":
            assert e.id == CITY_IDS[e.value], e
    return [(e.type, e.value, text[e.start : e.end]) for e in entities]


def check(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    assert found(extractor, text) == expected, text


# --- phone ---------------------------------------------------------------------------------------
PHONES: list[tuple[str, Expected]] = [
    ("мой номер +7 914 123-45-67 перезвоните", [("phone", "+79141234567", "+7 914 123-45-67")]),
    ("звоните 8(914)1234567", [("phone", "+79141234567", "8(914)1234567")]),
    ("номер для связи 8 914 123 45 67 спасибо", [("phone", "+79141234567", "8 914 123 45 67")]),
    ("9141234567", [("phone", "+79141234567", "9141234567")]),
    ("+7-914-123-45-67 это мой", [("phone", "+79141234567", "+7-914-123-45-67")]),
    ("мой номер 79141234567", [("phone", "+79141234567", "79141234567")]),
    ("звоните на сотовый 914 123 45 67", [("phone", "+79141234567", "914 123 45 67")]),
    (
        "Перезвоните пожалуйста по номеру +7 (924) 765-43-21, Анна",
        [("phone", "+79247654321", "+7 (924) 765-43-21")],
    ),
    (
        "мой тел +7 (924) 765-43-21 а жены 89141234567",
        [
            ("phone", "+79247654321", "+7 (924) 765-43-21"),
            ("phone", "+79141234567", "89141234567"),
        ],
    ),
    ("тел. 8-914-1234567", [("phone", "+79141234567", "8-914-1234567")]),
    ("городской 8 (3022) 12-34-56", [("phone", "+73022123456", "8 (3022) 12-34-56")]),
    (
        "смените номер в договоре на 89997776655 старый не актуален",
        [("phone", "+79997776655", "89997776655")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), PHONES)
def test_phone(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


@pytest.mark.parametrize(
    ("raw", "phone"),
    [
        ("+7 914 123-45-67", "+79141234567"),
        ("8(914)1234567", "+79141234567"),
        ("8 914 123 45 67", "+79141234567"),
        ("9141234567", "+79141234567"),
        ("+7-914-123-45-67", "+79141234567"),
        ("79141234567", "+79141234567"),
        ("12345", None),
        ("+1 202 555 0100", None),
        ("750012345678", None),
    ],
)
def test_normalize_phone(raw: str, phone: str | None) -> None:
    assert normalize_phone(raw) == phone


# --- contract number -----------------------------------------------------------------------------
CONTRACTS: list[tuple[str, Expected]] = [
    ("баланс по договору 750012345678", [("contract_number", "750012345678", "750012345678")]),
    (
        "Договор №750012345691, почему списали деньги",
        [("contract_number", "750012345691", "750012345691")],
    ),
    ("проверьте 750012345678 пожалуйста", [("contract_number", "750012345678", "750012345678")]),
    ("мой лицевой счёт 12345678", [("contract_number", "12345678", "12345678")]),
    ("л/с 123456 не могу оплатить", [("contract_number", "123456", "123456")]),
    ("Л/С: 7500123456", [("contract_number", "7500123456", "7500123456")]),
    ("лс123456789 баланс скажите", [("contract_number", "123456789", "123456789")]),
    (
        "номер договора 7500 1234 5678",
        [("contract_number", "750012345678", "7500 1234 5678")],
    ),
    ("абонентский номер 1234567", [("contract_number", "1234567", "1234567")]),
    # A ten-digit number named as an account is not a mobile phone.
    ("по л/с 9001234567 не проходит оплата", [("contract_number", "9001234567", "9001234567")]),
    (
        "договор 750012345678 телефон 89141234567 оплатил 500 р",
        [
            ("contract_number", "750012345678", "750012345678"),
            ("phone", "+79141234567", "89141234567"),
            ("amount", "500", "500 р"),
        ],
    ),
    (
        "положила 1000руб на счет 750012345678 а баланс 0",
        [("amount", "1000", "1000руб"), ("contract_number", "750012345678", "750012345678")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CONTRACTS)
def test_contract_number(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


# --- amount --------------------------------------------------------------------------------------
AMOUNTS: list[tuple[str, Expected]] = [
    ("оплатил 500 рублей", [("amount", "500", "500 рублей")]),
    (
        "Оплатила 1 500 руб вчера, а интернета нет",
        [("amount", "1500", "1 500 руб"), ("date", "2026-11-20", "вчера")],
    ),
    ("списали 349,90 ₽ за что", [("amount", "349.90", "349,90 ₽")]),
    ("закинул 500р", [("amount", "500", "500р")]),
    ("внес 500 р. на счет", [("amount", "500", "500 р.")]),
    ("пополнил на 2000 руб.", [("amount", "2000", "2000 руб.")]),
    ("заплатил 5 тысяч а интернета нет", [("amount", "5000", "5 тысяч")]),
    ("оплатил 299 руб 90 коп", [("amount", "299.90", "299 руб 90 коп")]),
    ("мне вернули 100₽", [("amount", "100", "100₽")]),
    ("оплачу 10 000 рублей за год вперед", [("amount", "10000", "10 000 рублей")]),
    ("у меня тариф 500 за 650 рублей в месяц", [("amount", "650", "650 рублей")]),
    ("долг 1234,5 руб", [("amount", "1234.50", "1234,5 руб")]),
    (
        "заплачу 1 500 рублей 5 декабря",
        [("amount", "1500", "1 500 рублей"), ("date", "2026-12-05", "5 декабря")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), AMOUNTS)
def test_amount(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


# --- city ----------------------------------------------------------------------------------------
CITIES: list[tuple[str, Expected]] = [
    ("какие тарифы в Братске", [("city", "Братск", "Братске")]),
    ("подключите интернет в чите", [("city", "Чита", "чите")]),
    ("а в Иркутске?", [("city", "Иркутск", "Иркутске")]),
    ("я из братска", [("city", "Братск", "братска")]),
    ("по Хабаровску есть акции", [("city", "Хабаровск", "Хабаровску")]),
    ("живу в Хабаре", [("city", "Хабаровск", "Хабаре")]),
    ("хабаровск", [("city", "Хабаровск", "хабаровск")]),
    ("Chita tarify", [("city", "Чита", "Chita")]),
    ("v Irkutske est optika?", [("city", "Иркутск", "Irkutske")]),
    ("офисы в Иркуцке", [("city", "Иркутск", "Иркуцке")]),
    ("г. Братск", [("city", "Братск", "Братск")]),
    (
        "переезжаю из Хабаровска в Читу",
        [("city", "Хабаровск", "Хабаровска"), ("city", "Чита", "Читу")],
    ),
    ("ЧИТА ТАРИФЫ", [("city", "Чита", "ЧИТА")]),
]


@pytest.mark.parametrize(("text", "expected"), CITIES)
def test_city(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


@pytest.mark.parametrize(
    "text",
    [
        "читаю инструкцию",
        "братские народы",  # an adjective, also "brotherly": adjectives are not cities
        "читинский тариф",
        "иркутская область",
    ],
)
def test_no_city(extractor: EntityExtractor, text: str) -> None:
    assert found(extractor, text) == []


def test_street_named_like_a_city_is_no_city(extractor: EntityExtractor) -> None:
    # "Братской" is a case of the alias "Братска", and also of the street "ул. Братская".
    assert found(extractor, "на Братской 5") == [
        ("street", "братской", "Братской"),
        ("house", "5", "5"),
    ]
    assert found(extractor, "ул Братская 5") == [
        ("street", "братская", "Братская"),
        ("house", "5", "5"),
    ]


def test_city_of(extractor: EntityExtractor) -> None:
    city = extractor.city_of("а в хабаре что по тарифам")
    assert city is not None
    assert city.city_id == "khabarovsk"
    assert extractor.city_of("тарифы") is None


def test_multiword_city_names_from_another_catalog() -> None:
    extractor = EntityExtractor(
        [
            City("ulan-ude", "Улан-Удэ", ("Ulan-Ude", "Улан Удэ", "Уланудэ"), "Asia/Irkutsk", "1"),
            City("nn", "Нижний Новгород", ("Нижний",), "Europe/Moscow", "2"),
            City("yakutsk", "Якутск", (), "Asia/Yakutsk", "3"),
        ]
    )

    def cities(text: str) -> list[tuple[str, str]]:
        return [(e.value, text[e.start : e.end]) for e in extractor.extract(text, today=TODAY)]

    assert cities("офисы в Улан-Удэ") == [("Улан-Удэ", "Улан-Удэ")]
    assert cities("тарифы в улан удэ") == [("Улан-Удэ", "улан удэ")]
    assert cities("ulan-ude") == [("Улан-Удэ", "ulan-ude")]
    assert cities("в Нижнем Новгороде") == [("Нижний Новгород", "Нижнем Новгороде")]
    assert cities("из Якутска в Уланудэ") == [("Якутск", "Якутска"), ("Улан-Удэ", "Уланудэ")]
    assert cities("тарифы в Чите") == []  # not this provider's city


# --- street, house, flat -------------------------------------------------------------------------
ADDRESSES: list[tuple[str, Expected]] = [
    (
        "ул. Мира д. 39а кв. 12",
        [("street", "мира", "Мира"), ("house", "39а", "39а"), ("flat", "12", "12")],
    ),
    (
        "Бутина 10-5",
        [("street", "бутина", "Бутина"), ("house", "10", "10"), ("flat", "5", "5")],
    ),
    (
        "Братск, Мира 39а",
        [("city", "Братск", "Братск"), ("street", "мира", "Мира"), ("house", "39а", "39а")],
    ),
    (
        "подключите пожалуйста интернет по адресу г Чита ул Бутина д 10 кв 5",
        [
            ("city", "Чита", "Чита"),
            ("street", "бутина", "Бутина"),
            ("house", "10", "10"),
            ("flat", "5", "5"),
        ],
    ),
    ("на Мира 39а есть подключение?", [("street", "мира", "Мира"), ("house", "39а", "39а")]),
    ("пр-т Ленина 22", [("street", "ленина", "Ленина"), ("house", "22", "22")]),
    ("ленина проспект, дом 22", [("street", "ленина", "ленина"), ("house", "22", "22")]),
    (
        "Хабаровск, ул. Муравьева-Амурского 3",
        [
            ("city", "Хабаровск", "Хабаровск"),
            ("street", "муравьева-амурского", "Муравьева-Амурского"),
            ("house", "3", "3"),
        ],
    ),
    (
        "ул Карла Маркса 12/1",
        [("street", "карла маркса", "Карла Маркса"), ("house", "12/1", "12/1")],
    ),
    (
        "ул 60-летия Октября 5",
        [("street", "60-летия октября", "60-летия Октября"), ("house", "5", "5")],
    ),
    ("ул 8 марта 5", [("street", "8 марта", "8 марта"), ("house", "5", "5")]),
    (
        "живу на Юбилейной 10 квартира 3",
        [("street", "юбилейной", "Юбилейной"), ("house", "10", "10"), ("flat", "3", "3")],
    ),
    (
        "мкр Северный 12 кв 40",
        [("street", "северный", "Северный"), ("house", "12", "12"), ("flat", "40", "40")],
    ),
    ("Набережная 1", [("street", "набережная", "Набережная"), ("house", "1", "1")]),
    (
        "Братск Мира 39 а",
        [("city", "Братск", "Братск"), ("street", "мира", "Мира"), ("house", "39а", "39 а")],
    ),
    ("ленина22", [("street", "ленина", "ленина"), ("house", "22", "22")]),
    ("дом 5 по улице Мира", [("house", "5", "5"), ("street", "мира", "Мира")]),
    (
        "у меня не работает интернет ул мира 5",
        [("street", "мира", "мира"), ("house", "5", "5")],
    ),
    (
        "хочу подключить интернет в квартиру на бутина 17 кв 8",
        [("street", "бутина", "бутина"), ("house", "17", "17"), ("flat", "8", "8")],
    ),
    ("ленина 10 интернет не работает", [("street", "ленина", "ленина"), ("house", "10", "10")]),
    # Two addresses in one message.
    (
        "переезжаю с мира 5 на ленина 10",
        [
            ("street", "мира", "мира"),
            ("house", "5", "5"),
            ("street", "ленина", "ленина"),
            ("house", "10", "10"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), ADDRESSES)
def test_address(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


# --- date ----------------------------------------------------------------------------------------
DATES: list[tuple[str, Expected]] = [
    ("завтра дома буду", [("date", "2026-11-22", "завтра")]),
    ("давайте послезавтра", [("date", "2026-11-23", "послезавтра")]),
    ("можно в четверг", [("date", "2026-11-26", "четверг")]),
    # Said on a Saturday: the Tuesday of next week, which is also the coming one.
    ("в следующий вторник", [("date", "2026-11-24", "следующий вторник")]),
    ("приходите 25 ноября", [("date", "2026-11-25", "25 ноября")]),
    ("пусть мастер придет 01.12", [("date", "2026-12-01", "01.12")]),
    ("через 2 дня", [("date", "2026-11-23", "через 2 дня")]),
    ("в пн", [("date", "2026-11-23", "пн")]),
    ("во вторник", [("date", "2026-11-24", "вторник")]),
    ("через неделю", [("date", "2026-11-28", "через неделю")]),
    ("оплатил вчера", [("date", "2026-11-20", "вчера")]),
    ("завтро", [("date", "2026-11-22", "завтро")]),
    ("нет интернета с 18.11", [("date", "2026-11-18", "18.11")]),
    ("до 25 числа оплачу", [("date", "2026-11-25", "25 числа")]),
    ("оплачу до 20-го", [("date", "2026-12-20", "20-го")]),  # the 20th has passed
    ("25.12.2026", [("date", "2026-12-25", "25.12.2026")]),
    ("1 января", [("date", "2027-01-01", "1 января")]),  # next January
    ("отключили 1 октября", [("date", "2026-10-01", "1 октября")]),  # last month
    ("приходите 5 нобря", [("date", "2026-11-05", "5 нобря")]),  # a typo
    (
        "с 25 по 30 ноября меня не будет",
        [("date", "2026-11-25", "25"), ("date", "2026-11-30", "30 ноября")],
    ),
    ("приходите 22 июня.", [("date", "2027-06-22", "22 июня")]),  # the dot ends the sentence
    ("до 5 дек. оплачу", [("date", "2026-12-05", "5 дек.")]),
    # Since the last Monday, not from the next one.
    ("интернет не работает с понедельника", [("date", "2026-11-16", "понедельника")]),
    ("с понедельника подключите", [("date", "2026-11-23", "понедельника")]),
    ("в прошлую пятницу оплатил", [("date", "2026-11-20", "прошлую пятницу")]),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_date(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


def test_next_weekday_depends_on_today(extractor: EntityExtractor) -> None:
    monday = date(2026, 11, 23)
    assert found(extractor, "в четверг", monday) == [("date", "2026-11-26", "четверг")]
    assert found(extractor, "в следующий четверг", monday) == [
        ("date", "2026-12-03", "следующий четверг")
    ]
    # On a Thursday "в четверг" is next week's.
    assert found(extractor, "в четверг", date(2026, 11, 26)) == [("date", "2026-12-03", "четверг")]


# --- time ----------------------------------------------------------------------------------------
# (type, value, surface, qualifier)
TIMES: list[tuple[str, list[tuple[str, str, str, str | None]]]] = [
    (
        "завтра после 18:00",
        [("date", "2026-11-22", "завтра", None), ("time", "18:00", "18:00", "after")],
    ),
    ("с 10 до 12", [("time", "10:00", "10", "from"), ("time", "12:00", "12", "to")]),
    ("в 7 вечера", [("time", "19:00", "7 вечера", None)]),
    ("перезвоните к 9 утра", [("time", "09:00", "9 утра", "before")]),
    ("в 10.30 удобно", [("time", "10:30", "10.30", None)]),
    ("в 18 часов буду дома", [("time", "18:00", "18 часов", None)]),
    ("в 11 ночи", [("time", "23:00", "11 ночи", None)]),
    ("в 2 часа ночи пропал интернет", [("time", "02:00", "2 часа ночи", None)]),
    ("позвоните в 5", [("time", "17:00", "5", None)]),
    (
        "завтра в 10",
        [("date", "2026-11-22", "завтра", None), ("time", "10:00", "10", None)],
    ),
    ("с 10:00-12:00", [("time", "10:00", "10:00", "from"), ("time", "12:00", "12:00", "to")]),
    ("с 7 до 9", [("time", "07:00", "7", "from"), ("time", "09:00", "9", "to")]),
    ("с 10 до 6", [("time", "10:00", "10", "from"), ("time", "18:00", "6", "to")]),
    ("в 14-16", [("time", "14:00", "14", "from"), ("time", "16:00", "16", "to")]),
    ("после 6 интернет пропадает", [("time", "18:00", "6", "after")]),
    (
        "на 5 декабря в 15-00",
        [("date", "2026-12-05", "5 декабря", None), ("time", "15:00", "15-00", None)],
    ),
    ("в полдень", [("time", "12:00", "полдень", None)]),
    (
        "01.12 в 10.30",
        [("date", "2026-12-01", "01.12", None), ("time", "10:30", "10.30", None)],
    ),
    ("мастер придет 5:30 вечера", [("time", "17:30", "5:30", None)]),
    ("к 2 часам дня", [("time", "14:00", "2 часам дня", "before")]),
    ("2 часа дня", [("time", "14:00", "2 часа дня", None)]),
    ("с 5 до 7 вечера", [("time", "17:00", "5", "from"), ("time", "19:00", "7 вечера", "to")]),
    (
        "в пятницу в 5 часов",
        [("date", "2026-11-27", "пятницу", None), ("time", "17:00", "5 часов", None)],
    ),
    (
        "мира 39 к 10",  # "к 10" is a time, not block 10 of house 39
        [
            ("street", "мира", "мира", None),
            ("house", "39", "39", None),
            ("time", "10:00", "10", "before"),
        ],
    ),
    (
        "ленина 10 в 10.30",
        [
            ("street", "ленина", "ленина", None),
            ("house", "10", "10", None),
            ("time", "10:30", "10.30", None),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_time(
    extractor: EntityExtractor, text: str, expected: list[tuple[str, str, str, str | None]]
) -> None:
    entities = extractor.extract(text, today=TODAY)
    got = [(e.type, e.value, text[e.start : e.end], e.qualifier) for e in entities]
    assert got == expected, text


# --- several entities in one long message -------------------------------------------------------
LONG: list[tuple[str, Expected]] = [
    (
        "Добрый вечер! Я из Братска, живу на Мира 39а кв 12, договор 750012345678. Интернет не "
        "работает с 18.11, мастера можно завтра после 18:00, тел +7 914 123-45-67",
        [
            ("city", "Братск", "Братска"),
            ("street", "мира", "Мира"),
            ("house", "39а", "39а"),
            ("flat", "12", "12"),
            ("contract_number", "750012345678", "750012345678"),
            ("date", "2026-11-18", "18.11"),
            ("date", "2026-11-22", "завтра"),
            ("time", "18:00", "18:00"),
            ("phone", "+79141234567", "+7 914 123-45-67"),
        ],
    ),
    (
        "здравствуйте у меня не работает интернет с утра договор 750012345678 адрес бутина 10 "
        "кв 5 тел 89141234567",
        [
            ("contract_number", "750012345678", "750012345678"),
            ("street", "бутина", "бутина"),
            ("house", "10", "10"),
            ("flat", "5", "5"),
            ("phone", "+79141234567", "89141234567"),
        ],
    ),
    (
        "здрасте хочу подключить интернет в читу на бутина 10 кв 5 мастер может в четверг с 10 "
        "до 12 мой номер 89141234567",
        [
            ("city", "Чита", "читу"),
            ("street", "бутина", "бутина"),
            ("house", "10", "10"),
            ("flat", "5", "5"),
            ("date", "2026-11-26", "четверг"),
            ("time", "10:00", "10"),
            ("time", "12:00", "12"),
            ("phone", "+79141234567", "89141234567"),
        ],
    ),
    (
        "оплатил вчера 500р по договору 750012345678 а деньги не пришли",
        [
            ("date", "2026-11-20", "вчера"),
            ("amount", "500", "500р"),
            ("contract_number", "750012345678", "750012345678"),
        ],
    ),
    (
        "переезжаю из Иркутска в Хабаровск 1 декабря, адрес новый ул Ленина 10 кв 41",
        [
            ("city", "Иркутск", "Иркутска"),
            ("city", "Хабаровск", "Хабаровск"),
            ("date", "2026-12-01", "1 декабря"),
            ("street", "ленина", "Ленина"),
            ("house", "10", "10"),
            ("flat", "41", "41"),
        ],
    ),
    (
        "интернет не работает уже 3 день звонила на горячую линию 3 раза никто не берет трубку "
        "мой номер 89141234567 адрес бутина 10 кв 5",
        [
            ("phone", "+79141234567", "89141234567"),
            ("street", "бутина", "бутина"),
            ("house", "10", "10"),
            ("flat", "5", "5"),
        ],
    ),
    (
        "перезвоните мне на 8-914-123-45-67 после 18",
        [("phone", "+79141234567", "8-914-123-45-67"), ("time", "18:00", "18")],
    ),
    (
        "добрый день подскажите почему списали 300 р за октябрь если я отключался с 1 октября",
        [("amount", "300", "300 р"), ("date", "2026-10-01", "1 октября")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), LONG)
def test_several_entities(extractor: EntityExtractor, text: str, expected: Expected) -> None:
    check(extractor, text, expected)


# --- nothing to find -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "у меня не работает интернет",
        "скорость до 100 мбит",
        "тариф 500",
        "тариф 500 мбит",
        "я живу тут 5 лет",
        "позвоните мне",
        "в 5 подъезде",
        "на 5 этаже в 3 подъезде",
        "у меня 2 роутера",
        "нет интернета 3 день",
        "оплатил 500 за интернет",
        "скорость 100 мбит а обещали 500",
        "ошибка 651",
        "тариф за 500 не устраивает",
        "хочу Игровой 1000",
        "тариф Домашний 50",
        "звонил 3 раза",
        "номер заявки 123456",
        "код подтверждения 123456 не приходит",
        "инн 123456789012",
        "меня зовут Иван мне 25 лет",
        "дети 5 и 7 лет",
        "в доме 5 не работает интернет",
        "я в 3 классе",
        "с 5 лет пользуюсь",
        "обещали до 100 мбит",
        "5 раз звонил",
        "3 рубашки",
        "у меня договор 12345 кажется",  # too short for a contract number
        "какой у меня баланс",
        "сейчас не работает",
        "29 февраля",  # not in 2026 nor 2027
        "уже 3 дня нет интернета",
        "не работает уже неделю",
        "мой email test3@gmail.com",
        "на 3-м этаже",
        "в 90-х",
        "у меня роутер Ростелеком 5 ггц не ловит",
        "версия прошивки 2.10",
        "PS4 не видит вайфай",
        "приставка 2 шт",
        "канал 5 не показывает",
        "пароль от вайфая 12345678",
        "скидка 10%",
        "3 месяца не платил",
        "2 р-на",
    ],
)
def test_no_entities(extractor: EntityExtractor, text: str) -> None:
    assert found(extractor, text) == []


def test_numbers_are_one_entity_each(extractor: EntityExtractor) -> None:
    """A phone is not also a contract or an amount, an amount not a house, a date not a time."""
    text = "тел 89141234567 договор 750012345678 оплатил 1 500 руб 01.12 в 10.30 мира 5"
    types = [e.type for e in extractor.extract(text, today=TODAY)]
    assert types == [
        "phone", "contract_number", "amount", "date", "time", "street", "house",
    ]  # fmt: skip
    spans = [(e.start, e.end) for e in extractor.extract(text, today=TODAY)]
    assert all(a[1] <= b[0] for a, b in pairwise(spans)), "no overlaps"


def test_as_json() -> None:
    assert Entity("city", "Братск", 9, 16, id="bratsk").as_json() == {
        "type": "city", "value": "Братск", "start": 9, "end": 16, "id": "bratsk",
    }  # fmt: skip
    assert Entity("time", "18:00", 0, 5, qualifier="after").as_json() == {
        "type": "time", "value": "18:00", "start": 0, "end": 5, "qualifier": "after",
    }  # fmt: skip
    assert Entity("house", "5", 0, 1).as_json() == {
        "type": "house", "value": "5", "start": 0, "end": 1,
    }  # fmt: skip


def test_parser_preposition_before_a_time_is_no_house_letter() -> None:
    cities = list(load_catalog(DEMO_CATALOG).cities.values())
    assert parse_address("мира 39 в 10:30", cities).house == "39"
