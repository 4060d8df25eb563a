"""Russian text normalisation for the classifier: case, ё, Latin transliteration, lemmas.

Customers write "Баланс?", "баланс", "balans" and "балансе" for the same thing; the classifier
sees one form.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pymorphy3

_WORD = re.compile(r"[a-zа-я0-9]+(?:-[a-zа-я0-9]+)*")
_LATIN = re.compile(r"[a-z]")
_CYRILLIC = re.compile(r"[а-я]")

# Longest first: "shch" before "sh" before "s". Covers the usual phone-keyboard transliterations
# (GOST-like and informal: "ya"/"ja", "zh", "ch", "kh"/"h").
_TRANSLIT = (
    ("shch", "щ"), ("sch", "щ"), ("yo", "ё"), ("jo", "ё"), ("zh", "ж"), ("kh", "х"),
    ("ts", "ц"), ("ch", "ч"), ("sh", "ш"), ("yu", "ю"), ("ju", "ю"), ("ya", "я"),
    ("ja", "я"), ("ye", "е"), ("a", "а"), ("b", "б"), ("v", "в"), ("w", "в"), ("g", "г"),
    ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"), ("j", "й"), ("y", "ы"), ("k", "к"),
    ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"),
    ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"), ("c", "к"), ("q", "к"), ("x", "кс"),
    ("'", "ь"),
)  # fmt: skip
_TRANSLIT_RE = re.compile("|".join(re.escape(src) for src, _ in _TRANSLIT))
_TRANSLIT_MAP = dict(_TRANSLIT)


def basic(text: str) -> str:
    """Lowercase, ё→е, unify dashes, collapse white space."""
    text = text.lower().replace("ё", "е")
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def transliterate(text: str) -> str:
    """Latin spelling of Russian ("balans", "internet ne rabotaet") to Cyrillic."""
    return _TRANSLIT_RE.sub(lambda m: _TRANSLIT_MAP[m.group(0)], text).replace("ё", "е")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


@lru_cache(maxsize=1)
def morph() -> pymorphy3.MorphAnalyzer:
    """The one pymorphy3 analyser of the process (its dictionaries take ~50 ms and MBs)."""
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    if not _CYRILLIC.search(word):
        return word
    return str(morph().parse(word)[0].normal_form).replace("ё", "е")


def classifier_view(text: str) -> tuple[str, str]:
    """The two strings the classifier reads: surface text and lemmas.

    Latin-only words are also given in transliteration, so "balans" meets "баланс" while an
    English "balance" still matches the English training examples.
    """
    surface = basic(text)
    tokens = words(surface)
    extra = [transliterate(t) for t in tokens if _LATIN.search(t) and not _CYRILLIC.search(t)]
    if extra:
        surface = f"{surface} {' '.join(extra)}"
        tokens = tokens + extra
    return surface, " ".join(lemma(t) for t in tokens)
