"""Hypothesis strategies for hostile outside input: text a client can send (lone surrogates,
controls, bidi marks, huge runs), JSON of any shape and depth, and the real platform payloads of
``shared/payloads`` with fields replaced, deleted or nested deeper."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.conftest import SHARED

PAYLOADS = SHARED / "payloads"

# Characters that broke something somewhere once: lone surrogates (no UTF-8 form), NUL and other
# controls, bidi overrides, BOM and non-characters, combining marks, line separators.
NASTY_CHARS = [
    "\ud800", "\udfff", "\udbff\udc00", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u202e",
    "\ufeff", "\ufffe", "\uffff", "\u0301", "\r", "\t", "\U0001f600", "ё", "Ё", "@", "%", "\\",
    '"', "'", "{", "[", "/", "~", " ",
]  # fmt: skip

any_char = st.characters(codec=None, exclude_categories=())  # every code point, surrogates too


def hostile_text(max_size: int = 64) -> st.SearchStrategy[str]:
    """Short strings mixing every code point with the known troublemakers."""
    piece = st.one_of(st.sampled_from(NASTY_CHARS), any_char, st.text(max_size=8))
    return st.lists(piece, max_size=max_size).map("".join)


def long_text() -> st.SearchStrategy[str]:
    """One piece repeated up to tens of thousands of characters (a single token, digits, an
    address-like run): what makes a careless regular expression quadratic."""
    unit = st.sampled_from(["a", "1", "@", "a@", " ", "улица ", "9" * 7, "x.", "\ud800"])
    return st.builds(lambda u, n: u * n, unit, st.integers(min_value=1, max_value=20_000))


def strings() -> st.SearchStrategy[str]:
    return st.one_of(hostile_text(), long_text())


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text(16),
)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON-shaped value (dicts, lists, scalars), including NaN and huge integers."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(hostile_text(8), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def nested(depth: int, leaf: Any = 1, *, in_dict: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if in_dict else [value]
    return value


def deep_values() -> st.SearchStrategy[Any]:
    """A value nested from a few to a few hundred levels: past our JSON depth limit, within
    what ``json.loads`` itself can build (a parser never sees a deeper value)."""
    return st.builds(
        nested, st.integers(min_value=1, max_value=400), st.just(1), in_dict=st.booleans()
    )


def replacement_values() -> st.SearchStrategy[Any]:
    """What a mutated field becomes."""
    return st.one_of(scalars, strings(), json_values(6), deep_values())


def fixture_files(platform: str) -> list[Path]:
    return sorted((PAYLOADS / platform).glob("*.json"))


def load_fixture(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside ``value`` a mutation can hit (the root is the empty path)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _apply(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action != "wrap" else [doc]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "wrap":
        parent[last] = {"x": parent[last]} if isinstance(last, str) else [parent[last]]
    else:
        parent[last] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, docs: Sequence[Any]) -> Any:
    """One of ``docs`` with one to four fields replaced by hostile values, deleted, or wrapped
    one level deeper; a string field is sometimes kept with hostile text appended."""
    doc = copy.deepcopy(draw(st.sampled_from(list(docs))))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "append"]))
        if action == "delete" and not path:
            continue
        value: Any = None
        if action == "append":
            current = doc
            for step in path:
                current = current[step]
            if not isinstance(current, str):
                continue
            value = current + draw(strings())
            action = "replace"
        elif action == "replace":
            value = draw(replacement_values())
        doc = _apply(doc, path, action, value)
    return doc


def platform_payloads(platform: str) -> st.SearchStrategy[Any]:
    """Real payloads of ``platform``, mutated, or any JSON at all."""
    docs = [load_fixture(p) for p in fixture_files(platform)]
    return st.one_of(mutated(docs), json_values(), st.sampled_from(docs))
