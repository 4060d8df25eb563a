"""Free-text Russian addresses: parse what the customer typed and find it in the coverage register.

Customers write the same house many ways ("пр-т Ленина 22", "ленина проспект, дом 22", "на
ленина 22", "Ленина22", typos, swapped words), while the register has one spelling ("пр-т Ленина",
"22"). Both sides are reduced to the same comparable key: the street-type word dropped, ё folded
to е, hyphens split, words sorted, and a crude stem that ignores Russian case endings. Matching
goes from strict to lenient and stops at the first tier that finds anything, so a fuzzy hit can
never shadow an exact one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from bot.catalog.models import City, CoverageEntry

__all__ = [
    "AddressIndex",
    "AddressLookup",
    "AddressLookupKind",
    "ParsedAddress",
    "StreetRef",
    "normalize_house",
    "normalize_text",
    "parse_address",
    "street_core",
    "street_kind",
]

# --- vocabulary ----------------------------------------------------------------------------------

# Canonical street type -> every spelling seen in registers and chats, including the inflected
# forms people use in sentences ("на улице Мира", "по проспекту Ленина").
_KIND_FORMS: dict[str, str] = {
    "ул": "ул улица улице улицу улицы улицей ул-ца",
    "пр-т": "пр-т пр просп пр-кт пркт проспект проспекте проспекта проспекту проспектом",
    "пер": "пер пер-к переулок переулке переулка переулку переулком",
    "бул": "бул б-р бульв бульвар бульваре бульвара бульвару бульваром",
    "мкр": "мкр мкрн мкр-н мк-н микр микрорайон микрорайоне микрорайона микрорайону",
    "пр-д": "пр-д пр-зд проезд проезде проезда проезду",
    "ш": "ш шоссе",
    "пл": "пл пл-дь площадь площади",
    "наб": "наб набережная набережной набережную",
    "тракт": "тракт тр-т тракте тракта тракту",
    "кв-л": "кв-л квартал квартале квартала",
    "туп": "туп тупик тупике тупика",
}
_KIND_WORDS: dict[str, str] = {
    form: kind for kind, forms in _KIND_FORMS.items() for form in forms.split()
}

# Words that carry no street name: prepositions, the city marker, chat politeness. Keeping them
# out of the street phrase is what lets "хочу подключить на мира 5" find "ул. Мира".
_FILLERS = frozenset(
    {
        "в", "во", "на", "по", "из", "до", "у", "и", "а", "к", "с", "г", "гор", "город", "городе",
        "адрес", "адресу", "я", "мы", "мой", "моя", "мое", "мне", "меня", "нас", "наш", "наша",
        "живу", "живем", "проживаю", "тут", "здесь", "там", "это", "вот", "есть", "ли", "можно",
        "здравствуйте", "здравствуй", "привет", "добрый", "доброе", "день", "вечер", "утро",
        "хочу", "хотим", "хотел", "хотела", "подключить", "подключиться", "подключите",
        "подключение", "проверить", "проверьте", "пожалуйста", "спасибо", "интернет", "тв",
    }
)  # fmt: skip
_CITY_PREPOSITIONS = frozenset({"в", "во", "из", "до", "г", "гор", "город", "городе", "городу"})
_HOUSE_MARKERS = frozenset({"д", "дом", "дома", "доме"})
_FLAT_MARKERS = frozenset({"кв", "квартира", "квартиры", "квартире", "кварт", "квар"})
_KORPUS_MARKERS = frozenset({"к", "k", "корп", "корпус"})
_BUILDING_MARKERS = frozenset({"с", "стр", "строение"})
_LETTER_MARKERS = frozenset({"лит", "литер", "литера"})
# Numbered parts of a building that are not the house: "подъезд 2", "3 этаж", "офис 5".
_INSIDE_MARKERS = frozenset(
    {
        "подъезд", "подъезда", "подъезде", "под", "этаж", "этаже", "эт", "офис", "оф", "комната",
        "комн", "пом", "помещение", "секция", "домофон",
    }
)  # fmt: skip
# Words right after a number that make it an amount or a time, not a house ("500 рублей").
_UNIT_WORDS = frozenset(
    {
        "р", "руб", "рубль", "рубля", "рублей", "тыс", "тысяч", "мбит", "мб", "гб", "тб", "мин",
        "минут", "минуты", "час", "часа", "часов", "сек", "секунд", "дня", "дней", "месяц",
        "месяца", "месяцев", "числа", "год", "года",
    }
)  # fmt: skip
# Single letters that are also prepositions: "39 в Братске" is house 39, not 39в.
_PREPOSITION_LETTERS = frozenset("вискоу")
_HOUSE_LETTERS = frozenset("абвгдежзиклмнопрстуфхцчшщэюя")
# People type house letters on a Latin keyboard: "39a", "10b".
_LATIN_LETTERS = {"a": "а", "b": "б", "v": "в", "g": "г", "d": "д"}
_ORDINAL_SUFFIXES = frozenset({"я", "й", "ая", "ой", "ый", "ий"})
_KEY_STOPWORDS = frozenset({"им", "имени"})
_SEPARATORS = frozenset({",", ";", ":", "!", "?", "(", ")", "\n"})
_MAX_STREET_WORDS = 4
_MAX_HOUSE_DIGITS = 4

# Case endings, longest first, stripped for the stem key: "крупской"/"крупская"/"крупскую" ->
# "крупск", "ленина"/"ленину" -> "ленин".
_STEM_ENDINGS = (
    "ого", "его", "ому", "ему", "ая", "яя", "ое", "ее", "ой", "ей", "ий", "ый", "ую", "юю", "ом",
    "ем", "ым", "им", "ых", "их", "ов", "ев", "а", "я", "о", "е", "у", "ю", "ы", "и", "ь", "й",
)  # fmt: skip
_MIN_STEM = 3

# --- matching thresholds -------------------------------------------------------------------------

_SCORE_EXACT = 1.0
_SCORE_STEM = 0.95  # same words up to case endings
_SCORE_SUBSET = 0.85  # "маркса" for "ул. Карла Маркса"
_SUGGEST_RATIO = 0.7  # difflib ratio for "did you mean" suggestions after every tier failed
_MAX_SUGGESTIONS = 3
_MAX_CANDIDATES = 5


def _typo_budget(length: int) -> int:
    """Edits tolerated in a key of this length: none for tiny names, where one edit is a
    different word, then one, then two ("крупкой" -> "крупской")."""
    if length <= 3:
        return 0
    if length <= 5:
        return 1
    return 2


# --- text folding and tokens ---------------------------------------------------------------------

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_QUOTES = "\"'«»„“”‟‹›‘’‚`´″"
_FOLD = str.maketrans({"ё": "е", **dict.fromkeys(_DASHES, "-"), **dict.fromkeys(_QUOTES, '"')})
_TOKEN_RE = re.compile(r"(?P<w>[a-zа-я]+(?:-[a-zа-я]+)*)|(?P<n>[0-9]+)|(?P<p>\n|[^\w\s\"])")
# Phones, times, dates and amounts: their digit groups are never a house.
_NUMERIC_NOISE_RE = re.compile(
    r"\+?\d[\d\s()-]{5,}\d"  # phone-like runs of 7+ characters
    r"|\d{1,2}:\d{2}"  # 10:30
    r"|\d+[.,]\d+(?:[.,]\d+)?"  # 01.12, 120.50, 1.12.2026
)


def normalize_text(s: str) -> str:
    """Lowercase, ё -> е, one kind of dash and quote, single spaces."""
    return " ".join(_fold(s).split())


def _fold(s: str) -> str:
    """normalize_text without touching white space: every character keeps its offset, so spans
    found in the folded text point into the original."""
    lowered = s.lower()
    if len(lowered) != len(s):  # a few characters lowercase to two ("İ"); keep those as they are
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in s)
    return lowered.translate(_FOLD)


_TokenKind = Literal["w", "n", "o", "p"]  # word, number, ordinal ("2-я"), punctuation


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    start: int
    end: int
    kind: _TokenKind


def _tokenize(folded: str) -> list[_Tok]:
    raw: list[_Tok] = []
    for m in _TOKEN_RE.finditer(folded):
        kind: _TokenKind = "w" if m.lastgroup == "w" else "n" if m.lastgroup == "n" else "p"
        raw.append(_Tok(m.group(), m.start(), m.end(), kind))
    out: list[_Tok] = []
    i = 0
    while i < len(raw):
        ordinal = _ordinal_at(raw, i)
        if ordinal is not None:
            tok, i = ordinal
            out.append(tok)
        else:
            out.append(raw[i])
            i += 1
    return out


def _ordinal_at(raw: Sequence[_Tok], i: int) -> tuple[_Tok, int] | None:
    """One ordinal word of a street name ("2-я", "2я", "7-й" written together), not a house."""
    num = raw[i]
    if num.kind != "n":
        return None
    j = i + 1
    if j < len(raw) and raw[j].text == "-" and raw[j].start == num.end:
        j += 1
    if j >= len(raw) or raw[j].kind != "w" or raw[j].start != raw[j - 1].end:
        return None
    if raw[j].text not in _ORDINAL_SUFFIXES:
        return None
    return _Tok(f"{num.text}-{raw[j].text}", num.start, raw[j].end, "o"), j + 1


def _join(folded: str, toks: Sequence[_Tok]) -> str:
    """Token texts as one string, keeping hyphens that joined them ("60-летия")."""
    parts: list[str] = []
    for k, tok in enumerate(toks):
        if k:
            gap = folded[toks[k - 1].end : tok.start]
            parts.append("-" if gap.strip() == "-" else " ")
        parts.append(tok.text)
    return "".join(parts)


def _kind_at(toks: Sequence[_Tok], i: int) -> str | None:
    """The canonical street type if token i is a street-type word."""
    tok = toks[i]
    if tok.kind != "w":
        return None
    if tok.text == "у":  # "у." is an abbreviation of "улица"; a bare "у" is a preposition
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        return "ул" if nxt is not None and nxt.text == "." and nxt.start == tok.end else None
    return _KIND_WORDS.get(tok.text)


def _skip_dot(toks: Sequence[_Tok], j: int) -> int:
    return j + 1 if j < len(toks) and toks[j].text == "." else j


# --- streets -----------------------------------------------------------------------------------


def _split_street(street: str) -> tuple[str | None, str]:
    """(canonical type, core) of a street as written in the register or by a customer."""
    folded = _fold(street)
    toks = _tokenize(folded)
    words = [i for i, t in enumerate(toks) if t.kind != "p"]
    kinds = {i: k for i in words if (k := _kind_at(toks, i)) is not None}
    if words and len(kinds) == len(words):
        # Every word is a type word ("ул. Набережная", "Набережная"): the full word is the name.
        name = next((i for i in reversed(words) if len(toks[i].text) >= 5), words[-1])
        del kinds[name]
    core = [toks[i] for i in words if i not in kinds]
    kind = kinds[min(kinds)] if kinds else None
    return kind, _join(folded, core)


def street_core(street: str) -> str:
    """The street name without its type word: "ул. Муравьёва-Амурского" -> "муравьева-амурского",
    "Ленина проспект" -> "ленина"."""
    return _split_street(street)[1]


def street_kind(street: str) -> str | None:
    """Canonical street type ("ул", "пр-т", "пер", "бул", "мкр", "пр-д", "ш", "пл", "наб", "тракт",
    "кв-л", "туп"), or None if none is written."""
    return _split_street(street)[0]


def _stem(word: str) -> str:
    if word.isdigit():
        return word
    for ending in _STEM_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_STEM:
            return word[: -len(ending)]
    return word


@dataclass(frozen=True, slots=True)
class _Key:
    """A street name in comparable form; words sorted so "маркса карла" == "карла маркса"."""

    raw: str
    stem: str
    words: frozenset[str]
    has_letters: bool


def _key_parts(toks: Iterable[_Tok]) -> list[str]:
    parts: list[str] = []
    for tok in toks:
        if tok.kind == "w":
            parts += [p for p in tok.text.split("-") if p and p not in _KEY_STOPWORDS]
        elif tok.kind in ("n", "o"):
            # "2-я" / "2я" / "2-ая" all mean 2; leading zeros never matter.
            parts.append(tok.text.split("-")[0].lstrip("0") or "0")
    return parts


def _make_key(toks: Sequence[_Tok]) -> _Key | None:
    parts = _key_parts(toks)
    if not parts:
        return None
    return _Key(
        raw=" ".join(sorted(parts)),
        stem=" ".join(sorted(_stem(p) for p in parts)),
        words=frozenset(parts),
        has_letters=any(not p.isdigit() for p in parts),
    )


def _street_key(street: str) -> _Key | None:
    return _make_key(_tokenize(street_core(street)))


# --- houses ------------------------------------------------------------------------------------


def _read_letter(toks: Sequence[_Tok], j: int, prev_end: int, used: Sequence[bool]) -> int | None:
    """Index of a house-letter token at or just after j ("39а", "39 А", "39-а", "39 лит. А")."""
    n = len(toks)
    attached = False
    if j < n and toks[j].kind == "w" and toks[j].text in _LETTER_MARKERS and not used[j]:
        j = _skip_dot(toks, j + 1)
    elif j + 1 < n and toks[j].text == "-" and toks[j].start == prev_end:
        j += 1
        attached = True
    if j >= n or used[j] or toks[j].kind != "w":
        return None
    tok = toks[j]
    letter = _LATIN_LETTERS.get(tok.text, tok.text)
    if letter not in _HOUSE_LETTERS:
        return None
    after = _skip_dot(toks, j + 1)
    nxt = toks[after] if after < n else None
    if letter in ("к", "с") and nxt is not None and nxt.kind == "n":
        return None  # "5 к2", "5 с1": a block or building number follows, not a letter
    attached = attached or tok.start == prev_end
    # Detached "в"/"и"/"у"... before a word or a number is a preposition or a conjunction:
    # "39 в Братске", "39 в 10:30" (к and с before a number were handled above as blocks).
    if not attached and letter in _PREPOSITION_LETTERS and nxt is not None:
        return None
    return j


def _read_marked_number(
    toks: Sequence[_Tok], j: int, markers: frozenset[str], used: Sequence[bool]
) -> tuple[str, int] | None:
    """("2", index after it) for "к2", "корп. 2", ", корпус 2" starting at j."""
    if j < len(toks) and toks[j].text == ",":  # "дом 39, корпус 2"
        j += 1
    if j >= len(toks) or used[j] or toks[j].kind != "w" or toks[j].text not in markers:
        return None
    k = _skip_dot(toks, j + 1)
    if k < len(toks) and not used[k] and toks[k].kind == "n":
        return toks[k].text, k + 1
    return None


def _read_house(toks: Sequence[_Tok], i: int, used: Sequence[bool]) -> tuple[str, int] | None:
    """(normalized house, index after it) for a house written from token i: number, letter,
    "/number", block ("к2") and building ("стр1") in that order."""
    num = toks[i]
    if num.kind != "n" or len(num.text) > _MAX_HOUSE_DIGITS:
        return None
    out = num.text
    j = i + 1
    letter = _read_letter(toks, j, num.end, used)
    if letter is not None:
        out += _LATIN_LETTERS.get(toks[letter].text, toks[letter].text)
        j = letter + 1
    if j + 1 < len(toks) and toks[j].text == "/" and toks[j + 1].kind == "n" and not used[j + 1]:
        out += "/" + toks[j + 1].text
        j += 2
        letter = _read_letter(toks, j, toks[j - 1].end, used)
        if letter is not None:
            out += _LATIN_LETTERS.get(toks[letter].text, toks[letter].text)
            j = letter + 1
    block = _read_marked_number(toks, j, _KORPUS_MARKERS, used)
    if block is not None:
        out += "к" + block[0]
        j = block[1]
    building = _read_marked_number(toks, j, _BUILDING_MARKERS, used)
    if building is not None:
        out += "стр" + building[0]
        j = building[1]
    return out, j


def normalize_house(house: str) -> str:
    """One spelling per house: "39 А" / "39-а" / "д. 39a" -> "39а"; "5 к2" / "5 корп 2" / "5к.2" ->
    "5к2"; "12/1" stays; "5 стр 1" -> "5стр1"."""
    toks = _tokenize(_fold(house))
    i = 0
    if toks and toks[0].kind == "w" and toks[0].text in _HOUSE_MARKERS:
        i = _skip_dot(toks, 1)
    used = [False] * len(toks)
    if i < len(toks):
        read = _read_house(toks, i, used)
        if read is not None and read[1] == len(toks):
            return read[0]
    # Not a shape we know: compare it literally, minus spacing and dots.
    return re.sub(r"[\s.]", "", normalize_text(house))


# --- cities ------------------------------------------------------------------------------------

_ADJECTIVE_ENDINGS = ("ий", "ый", "ой", "ая", "яя", "ое", "ее")
_ADJECTIVE_CASES = frozenset(
    {"ий", "ый", "ой", "ая", "яя", "ое", "ее", "ого", "его", "ому", "ему", "ом", "ем", "им", "ым",
     "ую", "юю", "ей"}
)  # fmt: skip
# Noun endings by the nominative's last letter: Чита -> Читы/Чите/Читу/Читой, Пермь -> Перми,
# Иваново -> Иванове, Братск -> Братска/Братске/Братском. Adjective-like endings ("-ская") are
# deliberately absent for consonant stems: "Иркутская" is a street, not a case of "Иркутск".
_NOUN_CASES = {
    "а": frozenset({"а", "ы", "и", "е", "у", "ю", "ой", "ою", "ей", "ею"}),
    "я": frozenset({"я", "и", "е", "ю", "ей", "ею"}),
    "ь": frozenset({"ь", "и", "ью", "ем", "е", "я", "ю", "ей"}),
    "о": frozenset({"о", "а", "у", "ом", "е"}),
    "": frozenset({"", "а", "у", "е", "ом", "ым"}),
}


@dataclass(frozen=True, slots=True)
class _NamePart:
    exact: str
    stem: str
    endings: frozenset[str]

    @staticmethod
    def of(word: str) -> _NamePart:
        if word.endswith(_ADJECTIVE_ENDINGS) and len(word) - 2 >= _MIN_STEM:
            return _NamePart(word, word[:-2], _ADJECTIVE_CASES)
        last = word[-1:]
        if last in ("а", "я", "ь", "о") and len(word) - 1 >= _MIN_STEM:
            return _NamePart(word, word[:-1], _NOUN_CASES[last])
        if last and last not in "аеёиоуыэюяйь" and len(word) >= _MIN_STEM:
            return _NamePart(word, word, _NOUN_CASES[""])
        return _NamePart(word, "", frozenset())  # indeclinable ("Улан-Удэ") or too short

    def match(self, text: str) -> int:
        """0: no, 1: exactly as named, 2: an inflected form."""
        if text == self.exact:
            return 1
        if self.stem and text.startswith(self.stem) and text[len(self.stem) :] in self.endings:
            return 2
        return 0


@dataclass(frozen=True, slots=True)
class _CityForm:
    city_id: str
    words: tuple[tuple[_NamePart, ...], ...]  # words, each split on hyphens

    def match(self, toks: Sequence[_Tok], i: int, used: Sequence[bool]) -> int:
        """0: no match at token i, 1: exact, 2: some word inflected."""
        if i + len(self.words) > len(toks):
            return 0
        result = 1
        for k, parts in enumerate(self.words):
            tok = toks[i + k]
            pieces = tok.text.split("-")
            if used[i + k] or tok.kind != "w" or len(pieces) != len(parts):
                return 0
            for part, piece in zip(parts, pieces, strict=True):
                m = part.match(piece)
                if m == 0:
                    return 0
                result = max(result, m)
        return result


def _opening(word: str) -> str:
    return word.split("-")[0][:_MIN_STEM]


class _CityMatcher:
    def __init__(self, cities: Sequence[City]) -> None:
        forms: list[_CityForm] = []
        for city in cities:
            for spelling in (city.name, *city.aliases):
                words = normalize_text(spelling).split()
                if words:
                    parts = tuple(tuple(_NamePart.of(p) for p in w.split("-")) for w in words)
                    forms.append(_CityForm(city.city_id, parts))
        # Any spelling that matches keeps the first three letters of the name (stems are at
        # least that long), so only the forms sharing a word's opening are tried on it.
        # Longest first so "Нижний Новгород" wins over a city called "Новгород".
        self._forms: dict[str, list[_CityForm]] = {}
        for form in sorted(forms, key=lambda f: -len(f.words)):
            self._forms.setdefault(_opening(form.words[0][0].exact), []).append(form)

    def find(self, toks: Sequence[_Tok], used: Sequence[bool]) -> tuple[str, int, int] | None:
        """(city_id, first token, end token) of the first city named in the text."""
        for i, tok in enumerate(toks):
            if used[i] or tok.kind != "w":
                continue
            for form in self._forms.get(_opening(tok.text), ()):
                m = form.match(toks, i, used)
                if m and self._is_city_here(toks, i, i + len(form.words), inflected=m == 2):
                    return form.city_id, i, i + len(form.words)
        return None

    @staticmethod
    def _is_city_here(toks: Sequence[_Tok], start: int, end: int, *, inflected: bool) -> bool:
        """Reject city spellings that are really a street: right after a street type ("ул.
        Кирова"), or an inflected form followed by a house or a type word ("Кирова 5"), unless a
        preposition marks it as a place ("в Кирове")."""
        prev = start - 1
        if prev >= 0 and toks[prev].text == ".":
            prev -= 1
        if prev >= 0 and _kind_at(toks, prev) is not None:
            return False
        if not inflected or (prev >= 0 and toks[prev].text in _CITY_PREPOSITIONS):
            return True
        nxt = toks[end] if end < len(toks) else None
        return nxt is None or not (nxt.kind == "n" or _kind_at(toks, end) is not None)


@lru_cache(maxsize=16)
def _matcher_for(cities: tuple[City, ...]) -> _CityMatcher:
    return _CityMatcher(cities)


# --- parsing -----------------------------------------------------------------------------------

_Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """What could be read from the text. Spans are offsets into the original text."""

    city_id: str | None
    street_text: str | None  # normalized, without the type word ("мира")
    street_kind: str | None  # type word, if the customer wrote one ("пер")
    house: str | None  # normalized ("39а", "5к2", "12/1")
    flat: str | None  # never used for matching
    city_span: _Span | None = None
    street_span: _Span | None = None
    house_span: _Span | None = None
    flat_span: _Span | None = None


@dataclass(frozen=True, slots=True)
class _Parse:
    address: ParsedAddress
    street_toks: tuple[_Tok, ...]  # the street phrase; lookup tries its sub-phrases
    folded: str


@dataclass(frozen=True, slots=True)
class _Found:
    text: str
    start: int  # token indices of the value, end exclusive
    end: int
    lead: int = -1  # index of a marker before it ("кв", the dash of "39-5"), if any


def _span(toks: Sequence[_Tok], start: int, end: int) -> _Span:
    return toks[start].start, toks[end - 1].end


def _mark(used: list[bool], start: int, end: int) -> None:
    for k in range(start, end):
        used[k] = True


def _mask_numeric_noise(folded: str, toks: Sequence[_Tok], used: list[bool]) -> None:
    # Tokens and spans both come in text order and the spans do not overlap, so one walk over
    # both does it: comparing every token with every span was quadratic ("1.1.1.…" has
    # thousands of each).
    spans = iter(m.span() for m in _NUMERIC_NOISE_RE.finditer(folded))
    span = next(spans, None)
    for k, tok in enumerate(toks):
        while span is not None and span[1] < tok.end:
            span = next(spans, None)
        if span is None:
            break
        if tok.kind == "n" and span[0] <= tok.start:
            used[k] = True


def _find_flat(toks: Sequence[_Tok], used: list[bool]) -> _Found | None:
    for i, tok in enumerate(toks):
        if used[i] or tok.kind != "w" or tok.text not in _FLAT_MARKERS:
            continue
        j = _skip_dot(toks, i + 1)
        if j < len(toks) and not used[j] and toks[j].kind == "n":
            flat, end = toks[j].text, j + 1
            letter = toks[end] if end < len(toks) else None
            if (
                letter
                and letter.kind == "w"
                and letter.start == toks[j].end
                and len(letter.text) == 1
            ):
                flat, end = flat + letter.text, end + 1  # "кв 5а"
            _mark(used, i, end)
            return _Found(flat, j, end, lead=i)
    return None


def _mask_inside_parts(toks: Sequence[_Tok], used: list[bool], boundary: list[bool]) -> None:
    """Hide "подъезд 2" / "3 этаж" (the word and its number) from the house and the street."""
    for i, tok in enumerate(toks):
        if tok.kind != "w" or tok.text not in _INSIDE_MARKERS:
            continue
        span = [i]
        after = _skip_dot(toks, i + 1)
        if after < len(toks) and toks[after].kind == "n":
            span.append(after)
        elif i > 0 and toks[i - 1].kind in ("n", "o"):
            span.append(i - 1)
        for k in span:
            used[k] = boundary[k] = True


def _house_marker(toks: Sequence[_Tok], i: int, used: Sequence[bool]) -> int | None:
    """Index of "д"/"дом" written before the number at i ("д. 39", "дом 22")."""
    k = i - 1
    if k >= 0 and toks[k].text == ".":
        k -= 1
    if k >= 0 and not used[k] and toks[k].kind == "w" and toks[k].text in _HOUSE_MARKERS:
        return k
    return None


def _is_content(toks: Sequence[_Tok], i: int, used: Sequence[bool]) -> bool:
    """Could token i be part of a street name?"""
    tok = toks[i]
    if used[i] or tok.kind == "p":
        return False
    if tok.kind == "n":
        return len(tok.text) <= _MAX_HOUSE_DIGITS
    if tok.kind == "o":
        return True
    return (
        tok.text not in _FILLERS
        and tok.text not in _HOUSE_MARKERS
        and tok.text not in _FLAT_MARKERS
        and _kind_at(toks, i) is None
    )


def _find_house(toks: Sequence[_Tok], used: list[bool]) -> _Found | None:
    """The house number. Several numbers may be present ("ул. 8 Марта 5"): one marked "д"/"дом"
    wins, else the last one not followed by a street word, since a number that starts a street
    name ("8 Марта") always has one."""
    hits: list[tuple[_Found, bool]] = []
    i = 0
    while i < len(toks):
        read = None if used[i] else _read_house(toks, i, used)
        if read is None:
            i += 1
            continue
        text, end = read
        nxt = toks[end] if end < len(toks) else None
        if nxt is not None and nxt.kind == "w" and nxt.text in _UNIT_WORDS:
            i = end
            continue
        followed = end < len(toks) and toks[end].kind == "w" and _is_content(toks, end, used)
        hits.append((_Found(text, i, end), not followed))
        # The 5 of "39-5" is a flat, never a house of its own.
        i = end + 2 if _dash_flat(toks, end, used) else end
    for hit, _free in hits:
        if _house_marker(toks, hit.start, used) is not None:
            return hit
    free = [hit for hit, is_free in hits if is_free]
    if free:
        return free[-1]
    return hits[-1][0] if hits else None


def _dash_flat(toks: Sequence[_Tok], end: int, used: Sequence[bool]) -> _Found | None:
    """Flat 5 of "39-5", the usual Russian shorthand for house 39, flat 5."""
    if end + 1 >= len(toks) or toks[end].text != "-" or used[end + 1]:
        return None
    dash, num = toks[end], toks[end + 1]
    if num.kind == "n" and dash.start == toks[end - 1].end and num.start == dash.end:
        return _Found(num.text, end + 1, end + 2, lead=end)
    return None


def _street_phrase(
    toks: Sequence[_Tok], used: Sequence[bool], boundary: Sequence[bool], house: _Found | None
) -> list[int]:
    """Token indices of the street: the nearest words before the house (crossing a comma only
    when there are none: "ленина проспект, дом 22"), else those after it; without a house, the
    last words of the text."""

    def collect(indices: Sequence[int], wanted: Callable[[int], bool]) -> list[int]:
        group: list[int] = []
        for k in indices:
            if boundary[k] and group:
                break
            if wanted(k):
                group.append(k)
                if len(group) == _MAX_STREET_WORDS:
                    break
        return sorted(group)

    def content(k: int) -> bool:
        return _is_content(toks, k, used)

    def type_word_as_name(k: int) -> bool:
        # "Набережная 1": the type word is the whole name; abbreviations never are.
        return not used[k] and _kind_at(toks, k) is not None and len(toks[k].text) >= 5

    if house is None:
        orders = [range(len(toks) - 1, -1, -1)]
    else:
        marker = _house_marker(toks, house.start, used)
        before = house.start if marker is None else marker
        orders = [range(before - 1, -1, -1), range(house.end, len(toks))]
    for wanted in (content, type_word_as_name):
        for order in orders:
            group = collect(order, wanted)
            if group:
                return group
    return []


def _street_type_near(
    toks: Sequence[_Tok], phrase: Sequence[int], used: Sequence[bool], boundary: Sequence[bool]
) -> str | None:
    """The type word next to the street phrase, before or after it ("ул. Мира", "Мира ул.")."""
    for step, origin in ((-1, phrase[0]), (1, phrase[-1])):
        k = origin + step
        while 0 <= k < len(toks) and not boundary[k] and not used[k]:
            kind = _kind_at(toks, k)
            if kind is not None:
                return kind
            if _is_content(toks, k, used):
                break
            k += step
    return None


def _parse(text: str, matcher: _CityMatcher) -> _Parse:
    folded = _fold(text)
    toks = _tokenize(folded)
    used = [False] * len(toks)
    _mask_numeric_noise(folded, toks, used)
    boundary = [t.kind == "p" and t.text in _SEPARATORS for t in toks]

    flat = _find_flat(toks, used)
    _mask_inside_parts(toks, used, boundary)
    city = matcher.find(toks, used)
    if city is not None:
        _mark(used, city[1], city[2])
        _mark(boundary, city[1], city[2])
    if flat is not None:
        _mark(boundary, flat.lead, flat.end)
    house = _find_house(toks, used)
    if house is not None:
        _mark(used, house.start, house.end)
        if flat is None:
            flat = _dash_flat(toks, house.end, used)
            if flat is not None:
                _mark(used, flat.lead, flat.end)

    phrase = _street_phrase(toks, used, boundary, house)
    street_toks = tuple(toks[k] for k in phrase)
    parsed = ParsedAddress(
        city_id=city[0] if city else None,
        street_text=_join(folded, street_toks) if street_toks else None,
        street_kind=_street_type_near(toks, phrase, used, boundary) if phrase else None,
        house=house.text if house else None,
        flat=flat.text if flat else None,
        city_span=_span(toks, city[1], city[2]) if city else None,
        street_span=(street_toks[0].start, street_toks[-1].end) if street_toks else None,
        house_span=_span(toks, house.start, house.end) if house else None,
        flat_span=_span(toks, flat.start, flat.end) if flat else None,
    )
    return _Parse(parsed, street_toks, folded)


def parse_address(text: str, cities: Sequence[City]) -> ParsedAddress:
    """Read city, street, house and flat from a free-text address; missing parts are None."""
    return _parse(text, _matcher_for(tuple(cities))).address


# --- lookup ------------------------------------------------------------------------------------


class AddressLookupKind(StrEnum):
    FOUND = "found"
    HOUSE_NOT_FOUND = "house_not_found"  # the street is known, the house is not in the register
    STREET_NOT_FOUND = "street_not_found"
    # Several streets of the city have the house ("ул. Мира 3", "пер. Мира 3"): pick one of
    # `candidates`, then lookup_street().
    AMBIGUOUS_STREET = "ambiguous_street"
    # The city is unknown and neither the street nor street + house is in exactly one city.
    NEED_CITY = "need_city"
    NO_ADDRESS = "no_address"  # no street or no house in the text


@dataclass(frozen=True, slots=True)
class StreetRef:
    city_id: str
    street: str  # exactly as in the register


@dataclass(frozen=True, slots=True)
class AddressLookup:
    kind: AddressLookupKind
    parsed: ParsedAddress
    entry: CoverageEntry | None = None  # for FOUND
    # The matching streets (distinct city + street, best first, at most 5): the choices for
    # AMBIGUOUS_STREET, the cities' streets for NEED_CITY, the street(s) for HOUSE_NOT_FOUND;
    # for STREET_NOT_FOUND the closest streets, if any are close.
    candidates: tuple[StreetRef, ...] = ()
    city_id: str | None = None  # given, named in the text, or inferred from street + house


@dataclass(frozen=True, slots=True)
class _Street:
    ref: StreetRef
    kind: str | None
    key: _Key
    order: int  # register order, the last tie-breaker
    houses: dict[str, CoverageEntry] = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class _Hit:
    score: float
    street: _Street


@dataclass(frozen=True, slots=True)
class _Match:
    hits: tuple[_Hit, ...]
    toks: tuple[_Tok, ...]  # the sub-phrase that matched


def _bounded_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, or limit + 1 once it is sure to
    exceed limit: a swapped pair of letters is one typo, as people make them."""
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        ca = a[i - 1]
        for j in range(1, len(b) + 1):
            cost = 0 if ca == b[j - 1] else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            cur[j] = value
        if min(cur) > limit:
            return limit + 1
        before, prev = prev, cur
    return min(prev[-1], limit + 1)


def _deletions(word: str, depth: int) -> set[str]:
    """The word and every spelling of it with up to `depth` characters deleted."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def _typo_distance(query: _Key, street: _Key) -> int | None:
    """Edits between the keys if within the typo budget, else None. The plain and the stemmed
    spellings are both tried, each against the budget of its own length, so stems (shorter) get
    no extra slack."""
    found: int | None = None
    for a, b in ((query.raw, street.raw), (query.stem, street.stem)):
        budget = _typo_budget(min(len(a), len(b)))
        edits = _bounded_distance(a, b, budget)
        if edits <= budget and (found is None or edits < found):
            found = edits
    return found


def _sub_phrases(toks: Sequence[_Tok]) -> list[tuple[_Tok, ...]]:
    """Longest first, and at equal length the one nearest the house (rightmost): extra words the
    customer wrote before the street ("подключение мира 5") fall away."""
    n = len(toks)
    return [tuple(toks[a : a + size]) for size in range(n, 0, -1) for a in range(n - size, -1, -1)]


class AddressIndex:
    """The coverage register indexed for free-text lookups; built once, read-only after."""

    def __init__(self, entries: Iterable[CoverageEntry], cities: Sequence[City]) -> None:
        self._matcher = _CityMatcher(cities)
        self._city_order = {c.city_id: n for n, c in enumerate(cities)}
        streets: dict[StreetRef, _Street] = {}
        for entry in entries:
            ref = StreetRef(entry.city_id, entry.street)
            street = streets.get(ref)
            if street is None:
                key = _street_key(entry.street)
                if key is None:
                    continue  # a street with no name at all cannot be matched
                street = _Street(ref, street_kind(entry.street), key, len(streets), {})
                streets[ref] = street
                self._city_order.setdefault(entry.city_id, len(self._city_order))
            street.houses.setdefault(normalize_house(entry.house), entry)
        self._streets = streets
        self._all = tuple(streets.values())
        by_city: dict[str, list[_Street]] = {}
        self._by_raw: dict[str, list[_Street]] = {}
        self._by_stem: dict[str, list[_Street]] = {}
        for street in self._all:
            by_city.setdefault(street.ref.city_id, []).append(street)
            self._by_raw.setdefault(street.key.raw, []).append(street)
            self._by_stem.setdefault(street.key.stem, []).append(street)
        self._by_city = {city: tuple(found) for city, found in by_city.items()}
        # Typo candidates without comparing against every street: two strings within k edits
        # share a spelling reachable by at most k deletions from each (the SymSpell idea).
        self._by_deletion: dict[str, set[int]] = {}
        for n, street in enumerate(self._all):
            for spelling in (street.key.raw, street.key.stem):
                for variant in _deletions(spelling, _typo_budget(len(spelling))):
                    self._by_deletion.setdefault(variant, set()).add(n)

    def streets(self, city_id: str) -> tuple[str, ...]:
        """The register's streets in a city, in register order."""
        return tuple(s.ref.street for s in self._by_city.get(city_id, ()))

    def lookup(self, text: str, city_id: str | None = None) -> AddressLookup:
        """Find a typed address. city_id is the city already known from the conversation; a city
        named in the text wins over it.

        Without a street or a house number the answer is NO_ADDRESS (the parsed parts tell which
        is missing). Streets are matched in tiers (exact, case endings, part of a multi-word name,
        typos) and the first tier with a hit wins; a type word the customer wrote ("пер.") narrows
        the hits when it can. An unknown city is inferred when the street + house, or else the
        street, is in one city only; otherwise NEED_CITY. Within the city one street, or the one
        same-named street that has the house, answers FOUND / HOUSE_NOT_FOUND; several with the
        house are AMBIGUOUS_STREET."""
        parse = _parse(text, self._matcher)
        parsed = parse.address
        city = parsed.city_id or city_id
        if city is None and len(self._by_city) == 1:
            city = next(iter(self._by_city))
        house = parsed.house
        if house is None or not parse.street_toks:
            return AddressLookup(AddressLookupKind.NO_ADDRESS, parsed, city_id=city)
        match = self._match(parse.street_toks, city, parsed.street_kind)
        if match is None:
            suggestions = self._suggest(parse.street_toks, city)
            return AddressLookup(
                AddressLookupKind.STREET_NOT_FOUND, parsed, candidates=suggestions, city_id=city
            )
        # Report the words that actually matched, so "хочу на мира" spans just "мира".
        parsed = replace(
            parsed,
            street_text=_join(parse.folded, match.toks),
            street_span=(match.toks[0].start, match.toks[-1].end),
        )
        return self._decide(parsed, match.hits, city, house)

    def lookup_street(self, street: StreetRef, house: str) -> AddressLookup:
        """Check a house on a street the customer picked from `candidates`."""
        norm = normalize_house(house) if house.strip() else None
        parsed = ParsedAddress(
            city_id=street.city_id,
            street_text=street_core(street.street),
            street_kind=street_kind(street.street),
            house=norm,
            flat=None,
        )
        found = self._streets.get(street)
        if found is None:
            return AddressLookup(AddressLookupKind.STREET_NOT_FOUND, parsed, city_id=street.city_id)
        if norm is None:
            return AddressLookup(AddressLookupKind.NO_ADDRESS, parsed, city_id=street.city_id)
        return self._on_street(parsed, found, norm)

    # --- matching ---

    def _pool(self, city: str | None) -> Sequence[_Street]:
        return self._all if city is None else self._by_city.get(city, ())

    def _match(self, toks: Sequence[_Tok], city: str | None, kind: str | None) -> _Match | None:
        """Streets matching the phrase, from the strictest tier that finds any."""
        queries = [(sub, key) for sub in _sub_phrases(toks) if (key := _make_key(sub)) is not None]
        pool = self._pool(city)
        for tier in (self._exact, self._stemmed, self._subset, self._fuzzy):
            for sub, key in queries:
                hits = [h for h in tier(key, pool) if city is None or h.street.ref.city_id == city]
                if hits:
                    # The type word decides between "ул. Мира" and "пер. Мира"; a wrong one
                    # ("проспект Мира" where only "ул. Мира" exists) is ignored.
                    typed = [h for h in hits if h.street.kind == kind]
                    return _Match(tuple(typed if kind and typed else hits), sub)
        return None

    def _exact(self, key: _Key, pool: Sequence[_Street]) -> list[_Hit]:
        return [_Hit(_SCORE_EXACT, s) for s in self._by_raw.get(key.raw, ())]

    def _stemmed(self, key: _Key, pool: Sequence[_Street]) -> list[_Hit]:
        return [_Hit(_SCORE_STEM, s) for s in self._by_stem.get(key.stem, ())]

    @staticmethod
    def _subset(key: _Key, pool: Sequence[_Street]) -> list[_Hit]:
        """Part of a multi-word name, word for word: "маркса" for "Карла Маркса"."""
        if not key.has_letters or max(len(w) for w in key.words) < _MIN_STEM:
            return []
        return [
            _Hit(_SCORE_SUBSET, s)
            for s in pool
            if len(s.key.words) > len(key.words) and key.words <= s.key.words
        ]

    def _fuzzy(self, key: _Key, pool: Sequence[_Street]) -> list[_Hit]:
        """Streets within the typo budget; only the closest ones, so one typo never ties with
        two."""
        if not key.has_letters:
            return []
        near: set[int] = set()
        for spelling in (key.raw, key.stem):
            for variant in _deletions(spelling, _typo_budget(len(spelling))):
                near |= self._by_deletion.get(variant, set())
        scored: list[tuple[int, _Street]] = []
        for street in (self._all[n] for n in sorted(near)):
            edits = _typo_distance(key, street.key)
            if edits is not None:
                scored.append((edits, street))
        if not scored:
            return []
        best = min(edits for edits, _ in scored)
        return [
            _Hit(1.0 - edits / max(len(key.raw), len(s.key.raw)), s)
            for edits, s in scored
            if edits == best
        ]

    def _suggest(self, toks: Sequence[_Tok], city: str | None) -> tuple[StreetRef, ...]:
        """Close-enough streets to offer after every tier failed ("крупсккаяя")."""
        keys = {
            key.stem for sub in _sub_phrases(toks) if (key := _make_key(sub)) and key.has_letters
        }
        best: dict[int, float] = {}
        for stem in keys:
            # difflib caches its analysis of the second sequence, so the query goes there.
            matcher = SequenceMatcher(None, autojunk=False)
            matcher.set_seq2(stem)
            for n, street in enumerate(self._all):
                if city is not None and street.ref.city_id != city:
                    continue
                matcher.set_seq1(street.key.stem)
                # The quick upper bounds skip most streets without the full comparison.
                if (
                    matcher.real_quick_ratio() >= _SUGGEST_RATIO
                    and matcher.quick_ratio() >= _SUGGEST_RATIO
                ):
                    best[n] = max(best.get(n, 0.0), matcher.ratio())
        close = [n for n, ratio in best.items() if ratio >= _SUGGEST_RATIO]
        close.sort(key=lambda n: (-best[n], self._rank(self._all[n])))
        return tuple(self._all[n].ref for n in close[:_MAX_SUGGESTIONS])

    # --- deciding ---

    def _rank(self, street: _Street) -> tuple[int, int]:
        return self._city_order.get(street.ref.city_id, 0), street.order

    def _ordered(self, hits: Iterable[_Hit], house: str) -> tuple[StreetRef, ...]:
        """Best score first; among equals, streets that have the house, then register order."""
        ranked = sorted(
            hits, key=lambda h: (-h.score, house not in h.street.houses, self._rank(h.street))
        )
        return tuple(h.street.ref for h in ranked[:_MAX_CANDIDATES])

    def _decide(
        self, parsed: ParsedAddress, hits: Sequence[_Hit], city: str | None, house: str
    ) -> AddressLookup:
        if city is None:
            city = self._infer_city(hits, house)
            if city is None:
                # Asking the city beats a list of look-alike addresses in several cities, and
                # the city is needed afterwards anyway (tariffs, phone).
                return AddressLookup(
                    AddressLookupKind.NEED_CITY, parsed, candidates=self._ordered(hits, house)
                )
            hits = [h for h in hits if h.street.ref.city_id == city]
        return self._in_city(parsed, hits, city, house)

    @staticmethod
    def _infer_city(hits: Sequence[_Hit], house: str) -> str | None:
        """The one city that has the street and house, else the one city that has the street."""
        for group in ([h for h in hits if house in h.street.houses], hits):
            cities = {h.street.ref.city_id for h in group}
            if len(cities) == 1:
                return cities.pop()
            if cities:
                return None
        return None

    def _in_city(
        self, parsed: ParsedAddress, hits: Sequence[_Hit], city: str, house: str
    ) -> AddressLookup:
        having = [h for h in hits if house in h.street.houses]
        if len(hits) == 1 or len(having) == 1:
            # One street, or one of the same-named streets ("ул. Мира", "пер. Мира") that has
            # the house: the reply names the full street, so a wrong guess is visible.
            return self._on_street(parsed, (having or hits)[0].street, house)
        if not having:
            # No reading of the street has the house: the answer is the same whichever it is.
            return AddressLookup(
                AddressLookupKind.HOUSE_NOT_FOUND,
                parsed,
                candidates=self._ordered(hits, house),
                city_id=city,
            )
        return AddressLookup(
            AddressLookupKind.AMBIGUOUS_STREET,
            parsed,
            candidates=self._ordered(having, house),
            city_id=city,
        )

    @staticmethod
    def _on_street(parsed: ParsedAddress, street: _Street, house: str) -> AddressLookup:
        entry = street.houses.get(house)
        city = street.ref.city_id
        if entry is None:
            # The one street that matched, so the reply can name it.
            return AddressLookup(
                AddressLookupKind.HOUSE_NOT_FOUND, parsed, candidates=(street.ref,), city_id=city
            )
        return AddressLookup(AddressLookupKind.FOUND, parsed, entry=entry, city_id=city)
