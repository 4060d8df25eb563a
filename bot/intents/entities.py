"""Entity extraction with character offsets into the original message.

Cities come from the loaded catalog (names, aliases, any grammatical case, Latin spelling), street
and house from the catalog's address parser; the rest are patterns for how Russian customers write
phones, contract numbers, amounts, dates and times.

Order matters: phones, amounts and contract numbers are found first and blanked out for the
later passes, so their digits are never a date, a time or a house; dates and times go before the
address ("перезвоните в 7 вечера" has no house 7).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from bot.catalog.addresses import ParsedAddress, normalize_text, parse_address
from bot.catalog.models import City
from bot.intents.datetimes import counts_something, find_dates, find_times, morph_tags
from bot.intents.normalize import basic, lemma, transliterate
from bot.intents.spans import SpanSet


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


# --- phones, contract numbers, amounts -----------------------------------------------------------

# +7 / 8 / 7, then ten digits with at most two separators between any two ("+7 (914) 123-45-67").
_PHONE = re.compile(r"(?<![\d+])(?:\+\s?7|8|7)[\s\-]*\(?\s*\d(?:[\s\-()]{0,2}\d){9}(?!\d)")
# A mobile number without the country prefix: "9141234567", "914 123 45 67", "(914) 123-45-67".
_MOBILE = re.compile(r"(?<![\d+])\(?9\d\d\)?(?:[\s\-]{0,2}\d){7}(?!\d)")
_CONTRACT = re.compile(r"(?<![\d+])\d{6,16}(?!\d)")
# "7500 1234 5678": a contract number copied with spaces.
_GROUPED_DIGITS = re.compile(r"(?<![\d+.,])\d{2,4}(?:[ \-]\d{2,4}){2,5}(?![\d.,]\d|\d)")
_CONTRACT_DIGITS = 12
# What a number is called in the few words before it; the nearest name wins.
_NUMBER_NAMES = re.compile(
    r"(?P<contract>договор\w*|дог\b|лицев\w*|л\s?/\s?сч?|л\.\s?с\.?|лс\b|счет\w*|"
    r"абонентск\w*|лк\b|contract|account)"
    r"|(?P<weak>номер\w*|№|#|id\b|ид\b)"
    r"|(?P<other>заявк\w*|заказ\w*|ошибк\w*|код\w*|тикет\w*|обращени\w*|телефон\w*|тел\b|"
    r"сотов\w*|мобил\w*|карт[аыу]\b|паспорт\w*|инн\b|снилс\w*|квартир\w*|дом\w*|кв\b|"
    r"подъезд\w*|смс|sms)",
    re.I,
)
_CONTEXT_CHARS = 30
_AMOUNT = re.compile(
    r"(?<![\d.,])(?P<whole>\d{1,3}(?:[ \u00a0\u202f.]\d{3})+|\d+)(?:[.,](?P<frac>\d{1,2}))?\s*"
    r"(?:(?P<thousands>тыс(?:яч[аи]?)?|тр)\b\.?\s*)?"
    r"(?P<currency>руб(?:л[а-яё]*)?(?![а-яё])\.?|р\.|р(?![а-яёa-z-])|₽|rub(?:les?)?\b|rur\b)?"
    r"(?:\s*(?P<kop>\d{1,2})\s*коп(?:еек|ейки|ейка|\.)?(?![а-яё]))?",
    re.I,
)


def normalize_phone(raw: str) -> str | None:
    """Any Russian mobile/landline spelling to E.164 ``+7XXXXXXXXXX``; None if it is not one."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "+7" + digits
    return None


def e164_phone(raw: str) -> str | None:
    """A number a messenger shared, to E.164: as written when it has a "+", Russian spellings
    (8 916…, 916…) as +7…, other digit strings of 11-15 digits as +<digits>; else None."""
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        return "+" + digits if 8 <= len(digits) <= 15 else None
    russian = normalize_phone(raw)
    if russian is not None:
        return russian
    # Without a "+" only a full international number can be told from a national one.
    return "+" + digits if 11 <= len(digits) <= 15 else None


def _number_name(text: str, start: int) -> str | None:
    """ "contract", "weak" (номер, №) or "other" (заявка, телефон…): what the nearest word
    before a number calls it; None if nothing does."""
    window = basic(text[max(0, start - _CONTEXT_CHARS) : start])
    kind = None
    for m in _NUMBER_NAMES.finditer(window):
        if m.start() == 0 or not window[m.start() - 1].isalpha():
            kind = m.lastgroup
    return kind


def _amount_value(m: re.Match[str]) -> str:
    whole = re.sub(r"[^\d]", "", m.group("whole"))
    value = Decimal(whole)
    if m.group("frac"):
        value = Decimal(f"{whole}.{m.group('frac')}")
    if m.group("thousands"):
        value *= 1000
    elif m.group("kop"):
        value += Decimal(m.group("kop")) / 100
    if value == value.to_integral_value():
        return str(int(value))
    return f"{value:.2f}"


# --- cities --------------------------------------------------------------------------------------

# Case endings by the nominative's last letter (Чита -> Читы/Чите/Читу/Читой, Братск ->
# Братска/Братске/Братском), as in the catalog's address parser.
_ADJECTIVE_ENDINGS = ("ий", "ый", "ой", "ая", "яя", "ое", "ее")
_ADJECTIVE_CASES = (
    "ий", "ый", "ой", "ая", "яя", "ое", "ее", "ого", "его", "ому", "ему", "ом", "ем", "им", "ым",
    "ую", "юю", "ей",
)  # fmt: skip
_NOUN_CASES = {
    "а": ("а", "ы", "и", "е", "у", "ю", "ой", "ою", "ей", "ею"),
    "я": ("я", "и", "е", "ю", "ей", "ею"),
    "ь": ("ь", "и", "ью", "ем", "е", "я", "ю", "ей"),
    "о": ("о", "а", "у", "ом", "е"),
    "": ("", "а", "у", "е", "ом", "ым"),
}
_MIN_STEM = 3
_CITY_PREPOSITIONS = frozenset({"в", "во", "из", "до", "г", "гор", "город", "городе", "городу"})
_CITY_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+")
_CITY_JOINER = re.compile(r"[\s\-\u2010-\u2015]*")
_CYRILLIC = re.compile(r"[а-я]")


def _inflections(word: str) -> frozenset[str]:
    """The word and its case forms, by its ending."""
    if not _CYRILLIC.search(word):
        return frozenset({word})
    if word.endswith(_ADJECTIVE_ENDINGS) and len(word) - 2 >= _MIN_STEM:
        return frozenset({word, *(word[:-2] + e for e in _ADJECTIVE_CASES)})
    last = word[-1:]
    if last in ("а", "я", "ь", "о") and len(word) - 1 >= _MIN_STEM:
        return frozenset({word, *(word[:-1] + e for e in _NOUN_CASES[last])})
    if last and last not in "аеиоуыэюяйь" and len(word) >= _MIN_STEM:
        return frozenset(word + e for e in _NOUN_CASES[""])
    return frozenset({word})  # indeclinable ("Улан-Удэ") or too short


@dataclass(frozen=True, slots=True)
class _Spelling:
    city: City
    words: tuple[str, ...]  # as written in the catalog, lowercase, "тс" as "ц" (see _sound)
    forms: tuple[frozenset[str], ...]  # accepted forms of each word, likewise


@dataclass(frozen=True, slots=True)
class _Token:
    text: str  # lowercase, ё folded, "тс" as "ц"
    alt: str | None  # the same transliterated to Cyrillic, for a word in Latin letters
    start: int
    end: int


# --- addresses -----------------------------------------------------------------------------------


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


_STREET_TYPES = _words(
    """ул ул-ца улица улице улицу улицы улицей пр-т пр просп пр-кт пркт проспект проспекте
    проспекта проспекту проспектом пер пер-к переулок переулке переулка переулку переулком бул б-р
    бульв бульвар бульваре бульвара бульвару бульваром мкр мкрн мкр-н мк-н микр микрорайон
    микрорайоне микрорайона микрорайону пр-д пр-зд проезд проезде проезда проезду ш шоссе пл пл-дь
    площадь площади наб набережная набережной набережную тракт тр-т тракте тракта тракту кв-л
    квартал квартале квартала туп тупик тупике тупика"""
)
_HOUSE_WORDS = _words(
    """д дом дома доме кв квартира квартиры квартире кварт квар корп корпус к стр строение лит
    литер литера подъезд подъезда подъезде под этаж этаже эт офис оф комната комн пом помещение
    секция домофон"""
)
# Words that are never part of a street name, even when pymorphy has no opinion.
_NOT_STREET_WORDS = _words(
    """в во на по из до у и а к с г гор город городе адрес адресу я мы мой моя мое мне меня нас
    наш наша живу живем проживаю тут здесь там это вот есть ли можно здравствуйте привет добрый
    доброе день вечер утро хочу подключить подключите подключение проверить проверьте пожалуйста
    спасибо интернет тв wifi вайфай"""
)
# Lemmas of words customers put next to numbers that are not addresses: "тариф 500",
# "ошибка 651", "уже 3 дня", "звонил 3 раза", "скорость 100".
_NOT_STREET_LEMMAS = _words(
    """интернет тариф договор счет лицевой роутер модем приставка скорость ошибка код канал пакет
    плата оплата номер пароль логин баланс сумма долг рубль копейка услуга подключение абонент
    мастер техник заявка сигнал связь сеть кабель провод компьютер ноутбук телефон телевизор
    устройство порт год лет раз день неделя месяц час минута секунда утро вечер ночь человек
    ребенок квартира дом подъезд этаж мбит мегабит гигабит гб мб процент штука"""
)
_NOT_NAME_POS = frozenset(
    {"VERB", "INFN", "NPRO", "PREP", "CONJ", "PRCL", "ADVB", "PRED", "INTJ", "NUMR", "COMP", "GRND"}
)
_PROPER = frozenset({"Surn", "Name", "Patr", "Geox", "Orgn"})
_STREET_TOKEN = re.compile(r"[0-9A-Za-zА-Яа-яЁё]+(?:[-\u2010-\u2015][0-9A-Za-zА-Яа-яЁё]+)*")
_TYPE_BEFORE = re.compile(r"(?:^|[^\w-])([\w-]+)\.?\s*$")
_TYPE_AFTER = re.compile(r"^\s*,?\s*([\w-]+)")
# Between a bare street and its house: nothing, a comma, "д.", "дом", "№".
_STREET_HOUSE_GAP = re.compile(r"^[\s,]*(?:(?:д|дом)\b\.?)?[\s.№]*$", re.I)
_HOUSE_MARKER = re.compile(r"(?:^|[^\w-])(?:д|дом|дома|доме)\.?\s*№?\s*$", re.I)
_ORDINAL_HOUSE = re.compile(r"\d-(?:х|й|м|е|я|го)$", re.I)
_ORDINAL_SUFFIX = re.compile(r"-?(?:го|х|й|м|ти|ый|ий|ой|ая|ое)\b", re.I)
# E-mail addresses and links: "test3@gmail.com" has no house 3. An e-mail is the whole
# white-space-delimited word around an "@"; the look-behind starts the try only where a word
# starts, so a long word without "@" is scanned once, not once per character (``\S+@\S+`` alone
# is quadratic: 16 000 letters took half a second).
_LINKS = re.compile(r"(?<!\S)\S+@\S+|(?:https?://|www\.)\S+", re.I)
_DIGIT = re.compile(r"\d")
_LOOSE_LETTER = re.compile(r"(\d+)\s+[вискоу]", re.I)
_MAX_ADDRESSES = 3
# How much of a message is read for cities, dates, times and addresses (see extract).
DEEP_WINDOW = 1000
_FULL_TYPE_WORD = 5
# An untyped, unmarked "street" before a bigger number is a tariff ("Игровой 1000"), not a house.
_MAX_BARE_HOUSE = 400


# Common nouns that name streets in the genitive; other common nouns before a number are more
# often something counted or numbered ("список задач 1", "до уровня 2").
_STREET_GENITIVES = _words(
    """мира победы октября революции свободы труда коммуны мая марта января февраля июля
    единства дружбы молодежи комсомола просвещения профсоюзов партизан гвардии пионеров
    пограничников"""
)
_NO, _PART, _NAME = 0, 1, 2  # not in a street name / may be part of one / names a street


@lru_cache(maxsize=16384)
def _street_level(word: str, typed: bool) -> int:
    """Can this word be part of a street name? ``_NAME`` for words that name a street on their
    own: surnames, names and places in any form ("Ленина", "Чена"), adjectives ("Юбилейная",
    "Декабрьских"), groups of people ("Строителей"), unknown words ("Сухэ-Батора") and the usual
    common nouns ("Мира", "Октября"). ``_PART`` for other nouns in the genitive ("Событий"),
    numbers and single letters ("8 Марта", "Ким Ю Чена"). After a street type word ("ул.",
    "проспект") any noun or adjective will do, even in Latin letters."""
    w = basic(word)
    if w.isdigit():
        return _PART  # "8 Марта"
    if any(c.isdigit() for c in w):
        return _NAME if _CYRILLIC.search(w) else _NO  # "60-летия", not "2-D"
    if not _CYRILLIC.search(w):
        return _PART if typed else _NO  # "S1", "PS4", "BBC 4"
    if w in _NOT_STREET_WORDS or w in _STREET_TYPES or w in _HOUSE_WORDS:
        return _NO
    if len(w) == 1:
        return _PART
    if lemma(w) in _NOT_STREET_LEMMAS:
        return _NO
    tags = morph_tags(w)
    if not tags or "UNKN" in tags[0]:
        return _NAME if len(w) >= _MIN_STEM else _PART
    if any(t & _PROPER for t in tags) or w in _STREET_GENITIVES:
        return _NAME
    if tags[0] & _NOT_NAME_POS or tags[0] & {"Apro", "Infr", "Supr"}:
        return _NO
    if typed:
        return _PART
    level = _NO
    for t in tags:
        if "ADJF" in t and "Apro" not in t and ("gent" in t or "femn" in t):
            return _NAME
        if "NOUN" in t and "gent" in t:
            if {"anim", "plur"} <= t:
                return _NAME
            level = _PART
    return level


class EntityExtractor:
    def __init__(self, cities: Sequence[City]) -> None:
        self._cities = tuple(cities)
        self._by_first: dict[str, list[_Spelling]] = {}
        spellings: list[_Spelling] = []
        for city in cities:
            name_words = _split_name(city.name)
            name_forms = [_inflections(w) for w in name_words]
            for written in dict.fromkeys((city.name, *city.aliases)):
                words = _split_name(written)
                if not words:
                    continue
                # An alias that is already a case of the name ("Братске") is taken as written;
                # others are inflected like the name ("Хабар" -> "в Хабаре").
                is_case = (
                    written != city.name
                    and len(words) == len(name_words)
                    and all(w in f for w, f in zip(words, name_forms, strict=True))
                )
                forms = tuple(frozenset({w}) if is_case else _inflections(w) for w in words)
                spellings.append(_Spelling(city, words, forms))
        for spelling in sorted(spellings, key=lambda s: -len(s.words)):  # longest first
            for form in spelling.forms[0]:
                self._by_first.setdefault(form, []).append(spelling)

    def extract(self, text: str, *, today: date | None = None) -> list[Entity]:
        found: list[Entity] = []
        found += self._phones(text)
        found += self._amounts(text, taken=found)
        found += self._contracts(text, taken=found)
        # Cities, dates, times and addresses are read word by word in Python (the dictionary,
        # five address passes), about 10 µs a character on the worst text: only the opening of
        # a long message, where people put them, is read for them.
        window = _opening(text, DEEP_WINDOW)
        near = [e for e in found if e.start < len(window)]
        found += self._cities_in(window)
        # Dates and times before the address: "перезвоните в 7 вечера" has no house 7.
        found += self._dates_and_times(window, today or date.today(), taken=near)
        near = [e for e in found if e.start < len(window)]
        found += self._addresses(window, taken=near)
        found.sort(key=lambda e: (e.start, e.end))
        return found

    def city_of(self, text: str) -> City | None:
        hits = self._cities_in(text)
        if not hits:
            return None
        return next(c for c in self._cities if c.city_id == hits[0].id)

    # --- cities ---

    def _cities_in(self, text: str) -> list[Entity]:
        """Catalog cities, longest name first: "Улан Удэ", "Нижний Новгород", "в Братске"."""
        tokens = _city_tokens(text)
        out: list[Entity] = []
        i = 0
        while i < len(tokens):
            hit = self._city_at(text, tokens, i)
            if hit is None:
                i += 1
                continue
            city, size = hit
            out.append(Entity("city", city.name, tokens[i].start, tokens[i + size - 1].end,
                              id=city.city_id))  # fmt: skip
            i += size
        return out

    def _city_at(self, text: str, tokens: Sequence[_Token], i: int) -> tuple[City, int] | None:
        first = tokens[i]
        for key in (first.text, first.alt):
            if key is None:
                continue
            for spelling in self._by_first.get(key, ()):
                matched = _match_spelling(text, tokens, i, spelling, alt=key is first.alt)
                if matched is None:
                    continue
                if _is_city_here(text, tokens, i, len(spelling.words), inflected=matched):
                    return spelling.city, len(spelling.words)
        return None

    # --- numbers ---

    def _phones(self, text: str) -> list[Entity]:
        out: list[Entity] = []
        spans = SpanSet()  # those of ``out``
        for pattern in (_PHONE, _MOBILE):
            for m in pattern.finditer(text):
                if spans.overlaps(m.start(), m.end()):
                    continue
                # "л/с 9001234567": a ten-digit number named as an account is not a phone.
                if pattern is _MOBILE and _number_name(text, m.start()) == "contract":
                    continue
                phone = normalize_phone(m.group(0))
                if phone:
                    out.append(Entity("phone", phone, m.start(), m.end()))
                    spans.add(m.start(), m.end())
        return out

    def _contracts(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        out: list[Entity] = []
        spans = SpanSet((e.start, e.end) for e in taken)  # and those of ``out``
        for pattern in (_CONTRACT, _GROUPED_DIGITS):
            for m in pattern.finditer(text):
                if spans.overlaps(m.start(), m.end()):
                    continue
                digits = re.sub(r"\D", "", m.group(0))
                if not 6 <= len(digits) <= 16:
                    continue
                # 12 digits is the contract format; other numbers count only when named as one.
                name = _number_name(text, m.start())
                named = name == "contract" or (name == "weak" and pattern is _CONTRACT)
                if named or (name in ("weak", None) and len(digits) == _CONTRACT_DIGITS):
                    out.append(Entity("contract_number", digits, m.start(), m.end()))
                    spans.add(m.start(), m.end())
        return out

    def _amounts(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        out = []
        spans = SpanSet((e.start, e.end) for e in taken)
        for m in _AMOUNT.finditer(text):
            if not (m.group("currency") or m.group("thousands")):
                continue  # "тариф 500": a number, not money
            end = m.end()
            while end > m.start() and text[end - 1].isspace():
                end -= 1
            if spans.overlaps(m.start(), end):
                continue
            out.append(Entity("amount", _amount_value(m), m.start(), end))
        return out

    # --- dates and times ---

    def _dates_and_times(self, text: str, today: date, *, taken: Sequence[Entity]) -> list[Entity]:
        # Phones, contracts and amounts blanked out: "1 500 рублей 5 декабря" keeps its date.
        masked = _masked(text, (e for e in taken if e.type != "city"))
        masked = _LINKS.sub(lambda m: " " * len(m.group(0)), masked)
        # "ул. 8 Марта 5" is a street named after a date.
        dates = [d for d in find_dates(masked, today) if not _type_before(text, d.start)]
        date_spans = [(d.start, d.end) for d in dates]
        spans = [(e.start, e.end) for e in taken] + date_spans
        found = dates + find_times(masked, spans, date_spans)
        return [Entity(f.kind, f.value, f.start, f.end, qualifier=f.qualifier) for f in found]

    # --- addresses ---

    def _addresses(self, text: str, *, taken: Sequence[Entity]) -> list[Entity]:
        """Street, house and flat. The parser reads one address at a time; what it finds (or a
        number it wrongly took for a house) is blanked out and the rest read again, so "с мира 5
        на ленина 10" gives both and "звонил 3 раза, живу на ленина 10" finds the address."""
        # Blank out what is already known (a time, a phone) so its digits are not a house;
        # same length, so offsets stay those of the original text.
        masked = _masked(text, (e for e in taken if e.type != "city"))
        masked = _LINKS.sub(lambda m: " " * len(m.group(0)), masked)
        out: list[Entity] = []
        for _ in range(_MAX_ADDRESSES + 2):
            if not _DIGIT.search(masked):
                break
            parsed = parse_address(masked, self._cities)
            if parsed.house_span is None or parsed.house is None:
                break
            found = self._address_of(text, masked, parsed, taken=[*taken, *out])
            out += found
            blank = [parsed.house_span, *((e.start, e.end) for e in found)]
            masked = _masked(masked, (Entity("", "", s, e) for s, e in blank))
            if len([e for e in out if e.type == "house"]) >= _MAX_ADDRESSES:
                break
        return out

    def _address_of(
        self, text: str, masked: str, parsed: ParsedAddress, *, taken: Sequence[Entity]
    ) -> list[Entity]:
        """The address the parser read from ``masked`` (``text`` with the entities found so far
        blanked out), if it is one."""
        if parsed.street_span is None or parsed.house_span is None or parsed.house is None:
            return []
        house, (house_start, house_end) = parsed.house, parsed.house_span
        # The parser reads "мира 39 в 10:30" as house "39в"; a preposition before a number
        # (here a time) is no house letter.
        loose = _LOOSE_LETTER.fullmatch(text, house_start, house_end)
        if loose and re.match(r"\s*\d", text[house_end:]):
            house, house_end = loose.group(1), loose.end(1)
        if _overlaps(house_start, house_end, taken) or house.startswith("0"):
            return []  # "радио07": house numbers have no leading zero
        if _ORDINAL_SUFFIX.match(text, house_end) or _ORDINAL_HOUSE.search(
            text, house_start, house_end
        ):
            return []  # "12-го", "90-х": an ordinal, not a house
        street = _street_in(masked, parsed.street_span, parsed.house_span)
        if street is None:
            return []
        start, end, typed = street
        if _overlaps(start, end, taken):
            return []
        if end == house_start and not re.fullmatch(r"[а-яё-]{4,}", basic(text[start:end])):
            return []  # "S1", "PS4": a word glued to a number is a street only if a real one
        # "д. 5", "дом 5" or a flat makes the number a house whatever follows it.
        marked = parsed.flat is not None or bool(
            _HOUSE_MARKER.search(text[max(0, house_start - 8) : house_start])
        )
        if not typed:
            # A bare street must stand right before its house ("мира 39а", "мира, д. 5"), and a
            # number that counts something ("25 лет", "2 роутера") is no house.
            if end > house_start or not _STREET_HOUSE_GAP.match(text[end:house_start]):
                return []
            leading = re.match(r"\d+", house)
            number = int(leading[0]) if leading else 0
            if not marked and (
                number > _MAX_BARE_HOUSE or counts_something(text, house_end, number)
            ):
                return []
        out = [
            Entity("street", normalize_text(text[start:end]), start, end),
            Entity("house", house, house_start, house_end),
        ]
        if parsed.flat and parsed.flat_span and not _overlaps(*parsed.flat_span, taken):
            out.append(Entity("flat", parsed.flat, *parsed.flat_span))
        return out


def _split_name(name: str) -> tuple[str, ...]:
    return tuple(_sound(w) for w in _CITY_WORD.findall(basic(name)))


def _sound(word: str) -> str:
    """ "тс" is said (and often typed) "ц": "Брацк", "в Иркуцке", and "Irkutske" transliterated."""
    return word.replace("тс", "ц")


def _city_tokens(text: str) -> list[_Token]:
    out = []
    for m in _CITY_WORD.finditer(text):
        word = m.group(0).lower().replace("ё", "е")
        alt = None if _CYRILLIC.search(word) else _sound(transliterate(word))
        out.append(_Token(_sound(word), alt, m.start(), m.end()))
    return out


def _match_spelling(
    text: str, tokens: Sequence[_Token], i: int, spelling: _Spelling, *, alt: bool
) -> bool | None:
    """None if the spelling is not at token i; else whether a word was inflected (or read from
    a Latin transliteration) rather than written as in the catalog."""
    size = len(spelling.words)
    if i + size > len(tokens):
        return None
    inflected = False
    for k in range(size):
        tok = tokens[i + k]
        if k and not _CITY_JOINER.fullmatch(text, tokens[i + k - 1].end, tok.start):
            return None
        word = tok.alt if alt and tok.alt is not None else tok.text
        if word not in spelling.forms[k]:
            return None
        inflected = inflected or word != spelling.words[k] or alt
    # The name must end where the word ends: "Читаю" is not "Чита".
    return inflected


def _is_city_here(
    text: str, tokens: Sequence[_Token], i: int, size: int, *, inflected: bool
) -> bool:
    """Reject city spellings that are really a street: right after a street type word ("ул.
    Кирова"), or an inflected form followed by a house number or a type word ("Кирова 5"),
    unless a preposition marks it as a place ("в Кирове")."""
    if _type_before(text, tokens[i].start):
        return False
    prev = tokens[i - 1].text if i else ""
    if not inflected or prev in _CITY_PREPOSITIONS:
        return True
    after = text[tokens[i + size - 1].end :]
    nxt = _TYPE_AFTER.match(after)
    return nxt is None or not (nxt.group(1)[0].isdigit() or basic(nxt.group(1)) in _STREET_TYPES)


def _street_in(
    text: str, span: tuple[int, int], house: tuple[int, int]
) -> tuple[int, int, bool] | None:
    """The street name within the parser's street phrase, as (start, end, typed): the words
    nearest the house that can be a street name. The parser takes up to four words before the
    house ("работает утра договор бутина"); only "бутина" is the street. ``typed``: a street type
    word stands right next to it ("ул. Мира", "Ленина проспект")."""
    start, end = span
    tokens = [(m.start() + start, m.end() + start) for m in _STREET_TOKEN.finditer(text[start:end])]
    types = [k for k, (s, e) in enumerate(tokens) if basic(text[s:e]) in _STREET_TYPES]
    if types:
        last = types[-1]
        named = tokens[last + 1 :] or tokens[:last]
        if not named:
            s, e = tokens[last]
            # "Набережная 1": the type word is the whole name; abbreviations never are.
            return (s, e, True) if e - s >= _FULL_TYPE_WORD else None
        tokens = named
    before_house = tokens[-1][1] <= house[0]
    typed = _typed(text, tokens[0][0], tokens[-1][1])
    if not before_house and not typed:
        return None  # "5 лет": a word after the number is a street only with its type word
    # Walk away from the house, keeping street-like words, stopping at a comma or anything else.
    order = range(len(tokens) - 1, -1, -1) if before_house else range(len(tokens))
    kept: list[tuple[int, int, int]] = []
    for k in order:
        s, e = tokens[k]
        if kept:
            gap = text[e : kept[-1][0]] if before_house else text[kept[-1][1] : s]
            if not re.fullmatch(r"[\s.]*|-", gap):
                break
        level = _street_level(text[s:e], typed)
        if level == _NO:
            break
        kept.append((s, e, level))
    # A single letter or a bare number only inside a name ("Ким Ю Чена", "8 Марта").
    while kept and _loose_end(text[kept[-1][0] : kept[-1][1]], typed):
        kept.pop()
    if not kept or not (typed or any(level == _NAME for _, _, level in kept)):
        return None  # "список задач 1"
    first, last_end = min(s for s, _, _ in kept), max(e for _, e, _ in kept)
    return first, last_end, typed or _typed(text, first, last_end)


def _loose_end(word: str, typed: bool) -> bool:
    """A single letter, or a number not after a type word, cannot start a street name."""
    return (len(word) == 1 and word.isalpha()) or (not typed and word.isdigit())


def _type_before(text: str, start: int) -> bool:
    """Is the word right before ``start`` a street type ("ул.", "проспект")?"""
    before = _TYPE_BEFORE.search(text[max(0, start - 24) : start])
    return before is not None and basic(before.group(1)) in _STREET_TYPES


def _typed(text: str, start: int, end: int) -> bool:
    if _type_before(text, start):
        return True
    after = _TYPE_AFTER.match(text[end : end + 24])
    return after is not None and basic(after.group(1)) in _STREET_TYPES


def _masked(text: str, entities: Iterable[Entity]) -> str:
    chars = list(text)
    for e in entities:
        end = min(e.end, len(chars))  # an entity running past a window is cut with it
        chars[e.start : end] = " " * (end - e.start)
    return "".join(chars)


def _opening(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, ending at white space when there is some in
    the last tenth, so no number or word is cut in two ("мира 12" read as "мира 1")."""
    if len(text) <= limit:
        return text
    cut = max(
        text.rfind(" ", limit - limit // 10, limit), text.rfind("\n", limit - limit // 10, limit)
    )
    return text[: cut if cut > 0 else limit]


def _overlaps(start: int, end: int, entities: Sequence[Entity]) -> bool:
    return any(start < e.end and e.start < end for e in entities)


def speed_mbps(text: str) -> int | None:
    """A connection speed named in a message ("до 1 гигабита", "500 мбит") in Mbit/s."""
    if re.search(r"(?<!\w)(1\s*)?(гигабит|гбит|gbit|гиг\b)", text):
        return 1000
    found = re.search(r"(?<!\d)(\d{2,4})\s*(мбит|мегабит|mbit|мб\b)", text)
    return int(found.group(1)) if found else None


# The look-behind tries a local part only from its first character: the same matches, in one
# pass instead of one per character of a long run of letters.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def contact_of(text: str) -> tuple[str, str] | None:
    """("email", "a@b.ru") or ("phone", "+79991234567") from what the customer typed."""
    email = _EMAIL.search(text)
    if email:
        return "email", email.group(0).lower()
    if len(re.sub(r"\D", "", text)) in (10, 11):
        phone = normalize_phone(text)
        if phone:
            return "phone", phone
    return None
