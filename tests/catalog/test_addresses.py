from __future__ import annotations

import pytest

from bot.catalog.addresses import (
    AddressIndex,
    AddressLookup,
    AddressLookupKind,
    ParsedAddress,
    StreetRef,
    normalize_house,
    normalize_text,
    parse_address,
    street_core,
    street_kind,
)
from bot.catalog.models import City, CoverageEntry

K = AddressLookupKind

CITIES = (
    City("bratsk", "Братск", ("Bratsk",), "Asia/Irkutsk", "8-800-000-0001"),
    City("chita", "Чита", ("Chita",), "Asia/Chita", "8-800-000-0002"),
    City("ulan-ude", "Улан-Удэ", (), "Asia/Irkutsk", "8-800-000-0003"),
)

# city -> street as in the register -> houses as in the register
REGISTER: dict[str, dict[str, tuple[str, ...]]] = {
    "bratsk": {
        "ул. Мира": ("39а", "10", "5"),
        "пер. Мира": ("3", "5", "39а"),
        "ул. Ленина": ("10", "15"),
        "пр-т Ленина": ("22", "10"),
        "ул. Крупской": ("5 к2", "7"),
        "ул. Комсомольская": ("14",),
        "ул. 8 Марта": ("5",),
        "мкр. Юбилейный": ("3",),
        "бул. Космонавтов": ("4",),
    },
    "chita": {
        "ул. Ленина": ("10", "30"),
        "ул. Бутина": ("10",),
        "ул. Муравьёва-Амурского": ("3",),
        "ул. Карла Маркса": ("12/1", "12"),
    },
    "ulan-ude": {
        "ул. Ленина": ("10",),
        "ул. Бутина": ("2",),
        "пр-д Строителей": ("1",),
        "ул. Набережная": ("1",),
    },
}

ENTRIES = tuple(
    CoverageEntry(city, street, house, "connected", "gpon")
    for city, streets in REGISTER.items()
    for street, houses in streets.items()
    for house in houses
)


@pytest.fixture(scope="module")
def index() -> AddressIndex:
    return AddressIndex(ENTRIES, CITIES)


def found(lookup: AddressLookup) -> tuple[str, str, str]:
    assert lookup.kind == K.FOUND, lookup
    assert lookup.entry is not None
    return lookup.entry.city_id, lookup.entry.street, lookup.entry.house


def refs(lookup: AddressLookup) -> list[tuple[str, str]]:
    return [(ref.city_id, ref.street) for ref in lookup.candidates]


def spanned(text: str, span: tuple[int, int] | None) -> str | None:
    return None if span is None else text[span[0] : span[1]]


# --- normalisation -------------------------------------------------------------------------------


def test_normalize_text() -> None:
    assert normalize_text("  Улица   МИРА — «Ёлочка»\tдом ") == 'улица мира - "елочка" дом'
    assert normalize_text("Муравьёва–Амурского") == "муравьева-амурского"


@pytest.mark.parametrize(
    ("street", "core"),
    [
        ("ул. Муравьёва-Амурского", "муравьева-амурского"),
        ("ул. Мира", "мира"),
        ("улица Мира", "мира"),
        ("у. Мира", "мира"),
        ("Мира ул.", "мира"),
        ("ул.Карла Маркса", "карла маркса"),
        ("пр-т Ленина", "ленина"),
        ("пр. Ленина", "ленина"),
        ("просп. Ленина", "ленина"),
        ("Ленина проспект", "ленина"),
        ("пер. Мира", "мира"),
        ("переулок Мира", "мира"),
        ("бул. Космонавтов", "космонавтов"),
        ("б-р Космонавтов", "космонавтов"),
        ("бульвар Космонавтов", "космонавтов"),
        ("мкр. Юбилейный", "юбилейный"),
        ("микрорайон Юбилейный", "юбилейный"),
        ("мкрн Юбилейный", "юбилейный"),
        ("пр-д Строителей", "строителей"),
        ("проезд Строителей", "строителей"),
        ("ш. Космонавтов", "космонавтов"),
        ("Матвеевское шоссе", "матвеевское"),
        ("пл. Победы", "победы"),
        ("площадь Победы", "победы"),
        ("наб. Ангары", "ангары"),
        ("Иркутский тракт", "иркутский"),
        ("кв-л Энергетиков", "энергетиков"),
        ("квартал Энергетиков", "энергетиков"),
        ("ул. 8 Марта", "8 марта"),
        ("пр-т 60-летия Октября", "60-летия октября"),
        ("ул. 2-я Садовая", "2-я садовая"),
        # A type word that is the whole name stays the name.
        ("ул. Набережная", "набережная"),
        ("Набережная", "набережная"),
    ],
)
def test_street_core(street: str, core: str) -> None:
    assert street_core(street) == core


@pytest.mark.parametrize(
    ("street", "kind"),
    [
        ("ул. Мира", "ул"),
        ("улица Мира", "ул"),
        ("у. Мира", "ул"),
        ("Мира", None),
        ("пр-т Ленина", "пр-т"),
        ("проспект Ленина", "пр-т"),
        ("Ленина просп.", "пр-т"),
        ("пер. Мира", "пер"),
        ("б-р Космонавтов", "бул"),
        ("мкрн Юбилейный", "мкр"),
        ("проезд Строителей", "пр-д"),
        ("ш. Космонавтов", "ш"),
        ("пл. Победы", "пл"),
        ("набережная Ангары", "наб"),
        ("Иркутский тракт", "тракт"),
        ("квартал Энергетиков", "кв-л"),
        ("ул. Набережная", "ул"),
        ("Набережная", None),
    ],
)
def test_street_kind(street: str, kind: str | None) -> None:
    assert street_kind(street) == kind


@pytest.mark.parametrize(
    ("house", "normalized"),
    [
        ("39а", "39а"),
        ("39 А", "39а"),
        ("39-а", "39а"),
        ("39a", "39а"),  # Latin a
        ("10b", "10б"),
        ("10v", "10в"),
        ("д. 39а", "39а"),
        ("дом 39 а", "39а"),
        ("5 к2", "5к2"),
        ("5к2", "5к2"),
        ("5 корп 2", "5к2"),
        ("5 корпус 2", "5к2"),
        ("5к.2", "5к2"),
        ("12/1", "12/1"),
        ("12 / 1", "12/1"),
        ("7 стр 1", "7стр1"),
        ("10 лит. А", "10а"),
        ("22", "22"),
    ],
)
def test_normalize_house(house: str, normalized: str) -> None:
    assert normalize_house(house) == normalized


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "city", "street", "kind", "house", "flat"),
    [
        ("Братск, Мира 39а", "bratsk", "мира", None, "39а", None),
        ("улица мира д 39 А", None, "мира", "ул", "39а", None),
        ("пр-т Ленина 22", None, "ленина", "пр-т", "22", None),
        ("ленина проспект, дом 22", None, "ленина", "пр-т", "22", None),
        ("мира39а", None, "мира", None, "39а", None),
        ("Братск ул.Крупской 5 к2", "bratsk", "крупской", "ул", "5к2", None),
        ("бутина 10 кв 5", None, "бутина", None, "10", "5"),
        ("Карла Маркса 12/1", None, "карла маркса", None, "12/1", None),
        ("муравьева-амурского 3", None, "муравьева-амурского", None, "3", None),
        ("Муравьёва-Амурского 3", None, "муравьева-амурского", None, "3", None),
        ("в Братске на ленина 22", "bratsk", "ленина", None, "22", None),
        ("Мира 39 в Братске", "bratsk", "мира", None, "39", None),
        ("братска мира 5", "bratsk", "мира", None, "5", None),
        ("г. Чита, ул. Ленина, д. 30, кв. 7", "chita", "ленина", "ул", "30", "7"),
        ("в Улан-Удэ ленина 10", "ulan-ude", "ленина", None, "10", None),
        ("Chita, Ленина 10", "chita", "ленина", None, "10", None),
        ("ул. 8 Марта 5", None, "8 марта", "ул", "5", None),
        ("дом 5 по улице мира", None, "мира", "ул", "5", None),
        ("улица мира, дом 39, корпус 2", None, "мира", "ул", "39к2", None),
        ("мира 39-5", None, "мира", None, "39", "5"),
        ("мира 39 а кв. 12", None, "мира", None, "39а", "12"),
        ("кв. 12, мира 39а", None, "мира", None, "39а", "12"),
        ("мира 5, подъезд 2", None, "мира", None, "5", None),
        ("Братск", "bratsk", None, None, None, None),
    ],
)
def test_parse_address(
    text: str,
    city: str | None,
    street: str | None,
    kind: str | None,
    house: str | None,
    flat: str | None,
) -> None:
    parsed = parse_address(text, CITIES)
    assert (parsed.city_id, parsed.street_text, parsed.street_kind, parsed.house, parsed.flat) == (
        city,
        street,
        kind,
        house,
        flat,
    )


def test_parse_offsets_point_into_the_original_text() -> None:
    text = "В Братске улица МИРА д 39 А, кв. 5"
    parsed = parse_address(text, CITIES)
    assert spanned(text, parsed.city_span) == "Братске"
    assert spanned(text, parsed.street_span) == "МИРА"
    assert spanned(text, parsed.house_span) == "39 А"
    assert spanned(text, parsed.flat_span) == "5"


def test_parse_offsets_with_typed_yo_and_multiword_street() -> None:
    text = "Чита — ул. Муравьёва-Амурского 3; Карла Маркса 12/1"
    parsed = parse_address(text, CITIES)
    assert spanned(text, parsed.city_span) == "Чита"
    assert spanned(text, parsed.street_span) == "Карла Маркса"
    assert spanned(text, parsed.house_span) == "12/1"


def test_parse_nothing() -> None:
    assert parse_address("", CITIES) == ParsedAddress(None, None, None, None, None)


def test_flat_is_never_the_house() -> None:
    parsed = parse_address("мира, квартира 12", CITIES)
    assert (parsed.house, parsed.flat) == (None, "12")
    parsed = parse_address("кв5 бутина 10", CITIES)
    assert (parsed.street_text, parsed.house, parsed.flat) == ("бутина", "10", "5")


@pytest.mark.parametrize(
    "text",
    ["оплатил 500 рублей", "позвоните +7 914 123-45-67", "завтра в 10:30", "долг 120.50"],
)
def test_amounts_phones_and_times_are_not_houses(text: str) -> None:
    assert parse_address(text, CITIES).house is None


def test_street_named_like_a_city_is_a_street() -> None:
    cities = (*CITIES, City("kirov", "Киров", (), "Europe/Kirov", "8-800"))
    # "Кирова 5" is the street of Kirov, not the city of Kirov.
    parsed = parse_address("Кирова 5", cities)
    assert (parsed.city_id, parsed.street_text, parsed.house) == (None, "кирова", "5")
    parsed = parse_address("ул. Киров 5", cities)
    assert (parsed.city_id, parsed.street_text) == (None, "киров")
    parsed = parse_address("в Кирове, Ленина 5", cities)
    assert (parsed.city_id, parsed.street_text, parsed.house) == ("kirov", "ленина", "5")


# --- lookup: the examples customers type ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "city_id", "expected"),
    [
        ("улица мира д 39 А", "bratsk", ("bratsk", "ул. Мира", "39а")),
        ("пр-т Ленина 22", None, ("bratsk", "пр-т Ленина", "22")),
        ("ленина проспект, дом 22", None, ("bratsk", "пр-т Ленина", "22")),
        ("Братск ул.Крупской 5 к2", None, ("bratsk", "ул. Крупской", "5 к2")),
        ("крупской 5 корп 2", "bratsk", ("bratsk", "ул. Крупской", "5 к2")),
        ("бутина 10 кв 5", None, ("chita", "ул. Бутина", "10")),
        ("Карла Маркса 12/1", None, ("chita", "ул. Карла Маркса", "12/1")),
        ("муравьева-амурского 3", None, ("chita", "ул. Муравьёва-Амурского", "3")),
        ("муравьева амурского 3", None, ("chita", "ул. Муравьёва-Амурского", "3")),
        ("ул. 8 Марта 5", None, ("bratsk", "ул. 8 Марта", "5")),
        ("юбилейный 3", None, ("bratsk", "мкр. Юбилейный", "3")),
        ("Космонавтов бульвар 4", None, ("bratsk", "бул. Космонавтов", "4")),
        ("проезд строителей 1", None, ("ulan-ude", "пр-д Строителей", "1")),
        ("набережная 1", None, ("ulan-ude", "ул. Набережная", "1")),
        ("г. Чита, ул. Ленина, д. 30, кв. 7", None, ("chita", "ул. Ленина", "30")),
        (
            "хочу подключить интернет на крупской 7 пожалуйста",
            None,
            ("bratsk", "ул. Крупской", "7"),
        ),
    ],
)
def test_lookup_found(
    index: AddressIndex, text: str, city_id: str | None, expected: tuple[str, str, str]
) -> None:
    assert found(index.lookup(text, city_id)) == expected


@pytest.mark.parametrize(
    "text",
    ["Братск, Мира 39а", "мира39а", "МИРА 39А", "мира 39a", "по мира 39а", "Мира 39 а"],
)
def test_mira_without_a_type_is_ambiguous_in_bratsk(index: AddressIndex, text: str) -> None:
    # Both "ул. Мира" and "пер. Мира" have 39а.
    lookup = index.lookup(text, "bratsk")
    assert lookup.kind == K.AMBIGUOUS_STREET
    assert lookup.city_id == "bratsk"
    assert refs(lookup) == [("bratsk", "ул. Мира"), ("bratsk", "пер. Мира")]
    assert lookup.parsed.house == "39а"


def test_the_house_decides_between_same_named_streets(index: AddressIndex) -> None:
    assert found(index.lookup("Мира 10", "bratsk")) == ("bratsk", "ул. Мира", "10")
    assert found(index.lookup("Братск, Мира 3")) == ("bratsk", "пер. Мира", "3")
    ambiguous = index.lookup("в Братске на ленина 10")
    assert ambiguous.kind == K.AMBIGUOUS_STREET
    assert refs(ambiguous) == [("bratsk", "ул. Ленина"), ("bratsk", "пр-т Ленина")]


def test_a_house_on_none_of_the_same_named_streets_is_not_found(index: AddressIndex) -> None:
    lookup = index.lookup("Мира 99", "bratsk")
    assert (lookup.kind, lookup.city_id) == (K.HOUSE_NOT_FOUND, "bratsk")
    assert refs(lookup) == [("bratsk", "ул. Мира"), ("bratsk", "пер. Мира")]


def test_the_type_word_disambiguates(index: AddressIndex) -> None:
    assert found(index.lookup("пер. Мира 5", "bratsk")) == ("bratsk", "пер. Мира", "5")
    assert found(index.lookup("переулок мира 3")) == ("bratsk", "пер. Мира", "3")
    assert found(index.lookup("ул. Мира 5", "bratsk")) == ("bratsk", "ул. Мира", "5")
    assert found(index.lookup("на улице Мира 5")) == ("bratsk", "ул. Мира", "5")


def test_a_wrong_type_word_is_ignored(index: AddressIndex) -> None:
    # There is no "проспект Мира": both Mira streets stay candidates.
    lookup = index.lookup("проспект мира 5", "bratsk")
    assert lookup.kind == K.AMBIGUOUS_STREET
    assert set(refs(lookup)) == {("bratsk", "ул. Мира"), ("bratsk", "пер. Мира")}
    assert found(index.lookup("улица Бутина 10")) == ("chita", "ул. Бутина", "10")


# --- lookup: tolerance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("крупкой 7", ("bratsk", "ул. Крупской", "7")),  # a letter missing
        ("крупскя 7", ("bratsk", "ул. Крупской", "7")),
        ("комсомольска 14", ("bratsk", "ул. Комсомольская", "14")),  # ending dropped
        ("Комсомольской 14", ("bratsk", "ул. Комсомольская", "14")),  # ending changed
        ("на крупской 7", ("bratsk", "ул. Крупской", "7")),
        ("крупская 7", ("bratsk", "ул. Крупской", "7")),
        ("Бутна 10", ("chita", "ул. Бутина", "10")),
        ("бутниа 10", ("chita", "ул. Бутина", "10")),  # swapped letters
        ("комсамальская 14", ("bratsk", "ул. Комсомольская", "14")),  # two typos
        ("муравева-амурского 3", ("chita", "ул. Муравьёва-Амурского", "3")),
        ("маркса карла 12/1", ("chita", "ул. Карла Маркса", "12/1")),  # word order
        ("маркса 12", ("chita", "ул. Карла Маркса", "12")),  # part of the name
        ("КАРЛА  МАРКСА 12", ("chita", "ул. Карла Маркса", "12")),
    ],
)
def test_lookup_tolerates_typos_case_endings_and_word_order(
    index: AddressIndex, text: str, expected: tuple[str, str, str]
) -> None:
    assert found(index.lookup(text)) == expected


def test_ending_changes_in_a_sentence(index: AddressIndex) -> None:
    # "на ленина" is ул. Ленина or пр-т Ленина; only the prospekt has 22.
    assert found(index.lookup("в Братске на ленина 22")) == ("bratsk", "пр-т Ленина", "22")
    assert found(index.lookup("по Комсомольской 14")) == ("bratsk", "ул. Комсомольская", "14")


@pytest.mark.parametrize("text", ["холодильник 5", "кирпичная 5", "садовая 10", "ленинградская 5"])
def test_unrelated_words_match_no_street(index: AddressIndex, text: str) -> None:
    lookup = index.lookup(text, "bratsk")
    assert lookup.kind == K.STREET_NOT_FOUND
    assert lookup.entry is None
    assert lookup.candidates == ()


def test_a_different_street_of_a_similar_name_is_only_a_suggestion(index: AddressIndex) -> None:
    lookup = index.lookup("Мирная 5", "bratsk")
    assert lookup.kind == K.STREET_NOT_FOUND
    assert lookup.entry is None
    assert ("bratsk", "ул. Мира") in refs(lookup)


def test_greeting_with_a_number_is_no_address(index: AddressIndex) -> None:
    lookup = index.lookup("привет 5", "bratsk")
    assert lookup.kind == K.NO_ADDRESS
    assert lookup.entry is None
    assert lookup.parsed.street_text is None


def test_street_not_found_suggests_close_streets(index: AddressIndex) -> None:
    lookup = index.lookup("крупсккаяяя 7")  # three typos: beyond the fuzzy tier
    assert lookup.kind == K.STREET_NOT_FOUND
    assert refs(lookup) == [("bratsk", "ул. Крупской")]


def test_lookup_reports_the_words_that_matched(index: AddressIndex) -> None:
    text = "здравствуйте хочу подключить семья мира 39а"
    lookup = index.lookup(text, "bratsk")
    assert lookup.parsed.street_text == "мира"
    assert spanned(text, lookup.parsed.street_span) == "мира"


# --- lookup: kinds and cities --------------------------------------------------------------------


def test_house_not_found_names_the_street(index: AddressIndex) -> None:
    lookup = index.lookup("Крупской 99", "bratsk")
    assert lookup.kind == K.HOUSE_NOT_FOUND
    assert lookup.entry is None
    assert lookup.city_id == "bratsk"
    assert refs(lookup) == [("bratsk", "ул. Крупской")]
    # Only the letter differs: still another house.
    assert index.lookup("Крупской 5", "bratsk").kind == K.HOUSE_NOT_FOUND


def test_same_street_and_house_in_several_cities_needs_the_city(index: AddressIndex) -> None:
    lookup = index.lookup("ул. Ленина 10")
    assert lookup.kind == K.NEED_CITY
    assert lookup.city_id is None
    assert refs(lookup) == [
        ("bratsk", "ул. Ленина"),
        ("chita", "ул. Ленина"),
        ("ulan-ude", "ул. Ленина"),
    ]
    # Once the city is known the same text is decided.
    assert found(index.lookup("ул. Ленина 10", "chita")) == ("chita", "ул. Ленина", "10")


def test_street_in_several_cities_without_the_house_needs_the_city(index: AddressIndex) -> None:
    lookup = index.lookup("Бутина 7")
    assert lookup.kind == K.NEED_CITY
    assert lookup.city_id is None
    assert refs(lookup) == [("chita", "ул. Бутина"), ("ulan-ude", "ул. Бутина")]


def test_city_is_inferred_from_street_and_house(index: AddressIndex) -> None:
    lookup = index.lookup("Бутина 10")
    assert found(lookup) == ("chita", "ул. Бутина", "10")
    assert lookup.city_id == "chita"
    assert index.lookup("Бутина 2").city_id == "ulan-ude"
    # The street exists in one city only: its city even when the house is missing there.
    lookup = index.lookup("Карла Маркса 99")
    assert (lookup.kind, lookup.city_id) == (K.HOUSE_NOT_FOUND, "chita")


def test_known_city_restricts_the_search(index: AddressIndex) -> None:
    assert found(index.lookup("Ленина 10", "chita")) == ("chita", "ул. Ленина", "10")
    lookup = index.lookup("Комсомольская 14", "chita")
    assert (lookup.kind, lookup.city_id) == (K.STREET_NOT_FOUND, "chita")


def test_city_named_in_the_text_wins(index: AddressIndex) -> None:
    lookup = index.lookup("Братск, Крупской 7", "chita")
    assert found(lookup) == ("bratsk", "ул. Крупской", "7")
    assert lookup.city_id == "bratsk"
    assert found(index.lookup("Ленина 30, Чита", "bratsk")) == ("chita", "ул. Ленина", "30")


@pytest.mark.parametrize("text", ["", "привет", "Братск", "39а", "мира", "мира, кв 5"])
def test_no_address(index: AddressIndex, text: str) -> None:
    lookup = index.lookup(text)
    assert lookup.kind == K.NO_ADDRESS
    assert lookup.entry is None


def test_no_address_keeps_the_city(index: AddressIndex) -> None:
    assert index.lookup("в Братске").city_id == "bratsk"
    assert index.lookup("мира", "chita").city_id == "chita"


def test_candidates_are_at_most_five() -> None:
    kinds = ("ул.", "пер.", "пр-т", "бул.", "пл.", "наб.", "ш.")
    entries = [CoverageEntry("chita", f"{k} Мира", "1", "connected", "fttb") for k in kinds]
    lookup = AddressIndex(entries, CITIES).lookup("Мира 1")
    assert lookup.kind == K.AMBIGUOUS_STREET
    assert [ref.street for ref in lookup.candidates] == [f"{k} Мира" for k in kinds[:5]]

    cities = [City(f"c{n}", f"Город{n}", (), "Asia/Irkutsk", "8-800") for n in range(7)]
    entries = [CoverageEntry(c.city_id, "ул. Ленина", "1", "connected", "fttb") for c in cities]
    lookup = AddressIndex(entries, cities).lookup("Ленина 1")
    assert lookup.kind == K.NEED_CITY
    assert [ref.city_id for ref in lookup.candidates] == ["c0", "c1", "c2", "c3", "c4"]


def test_single_city_register_needs_no_city() -> None:
    entries = [CoverageEntry("chita", "ул. Бутина", "10", "planned", "gpon")]
    lookup = AddressIndex(entries, CITIES[1:2]).lookup("бутина 10")
    assert found(lookup) == ("chita", "ул. Бутина", "10")
    assert lookup.entry is not None
    assert lookup.entry.status == "planned"


# --- after the customer picked a candidate -------------------------------------------------------


def test_lookup_street(index: AddressIndex) -> None:
    lookup = index.lookup_street(StreetRef("bratsk", "пер. Мира"), "5")
    assert found(lookup) == ("bratsk", "пер. Мира", "5")
    assert (lookup.parsed.street_text, lookup.parsed.street_kind) == ("мира", "пер")
    lookup = index.lookup_street(StreetRef("bratsk", "ул. Крупской"), "5 корп. 2")
    assert found(lookup) == ("bratsk", "ул. Крупской", "5 к2")
    lookup = index.lookup_street(StreetRef("bratsk", "пер. Мира"), "10")
    assert (lookup.kind, lookup.city_id) == (K.HOUSE_NOT_FOUND, "bratsk")
    lookup = index.lookup_street(StreetRef("chita", "пер. Мира"), "5")
    assert lookup.kind == K.STREET_NOT_FOUND


def test_candidates_round_trip_through_lookup_street(index: AddressIndex) -> None:
    lookup = index.lookup("Мира 39а", "bratsk")
    first = lookup.candidates[0]
    assert found(index.lookup_street(first, lookup.parsed.house or "")) == (
        "bratsk",
        "ул. Мира",
        "39а",
    )


def test_streets(index: AddressIndex) -> None:
    assert index.streets("chita") == (
        "ул. Ленина",
        "ул. Бутина",
        "ул. Муравьёва-Амурского",
        "ул. Карла Маркса",
    )
    assert index.streets("nowhere") == ()


# --- speed ---------------------------------------------------------------------------------------

_NAMES = (
    "Ленина", "Мира", "Гагарина", "Кирова", "Советская", "Комсомольская", "Пушкина", "Лермонтова",
    "Чкалова", "Калинина", "Крупской", "Горького", "Набережная", "Садовая", "Школьная", "Лесная",
    "Молодёжная", "Октябрьская", "Первомайская", "Заводская", "Строителей", "Энтузиастов",
    "Победы", "Космонавтов", "Юбилейная", "Байкальская", "Партизанская", "Трилиссера",
    "Декабрьских Событий", "Карла Маркса", "Муравьёва-Амурского", "Бабушкина", "Шилова",
    "Амурская", "Анохина", "Богомягкова", "Журавлёва", "Курнатовского", "Петровская", "Фрунзе",
    "Серышева", "Запарина", "Тимирязева", "Подбельского", "Наймушина", "Обручева", "Янгеля",
    "Рябикова", "Депутатская", "Енисейская",
)  # fmt: skip
