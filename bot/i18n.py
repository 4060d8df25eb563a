"""Message catalogs from ``locales/<lang>/*.yml``, checked at start-up.

Customer-facing wording lives only in those files. A message is a string with ``{name}``
placeholders, or (for counted nouns) a mapping of CLDR plural categories ``one``/``few``/``many``/
``other``. Start-up fails if a locale misses a message the default locale has, or if the
placeholders of a message differ between locales: a typo in a translation must not reach a
customer as a ``KeyError``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.models import (
    Button,
    Number,
    Plural,
    Raw,
    RenderedButton,
    RenderedReply,
    Reply,
    Text,
)

DEFAULT_LOCALE = "ru"


class LocaleError(ValueError):
    """A message catalog is broken (missing message, mismatched placeholders, bad YAML)."""


def _flatten(prefix: str, node: Any, out: dict[str, str | dict[str, str]], origin: str) -> None:
    if isinstance(node, Mapping) and node and set(node) <= {"one", "few", "many", "other"}:
        out[prefix] = {str(k): str(v) for k, v in node.items()}
        return
    if isinstance(node, Mapping):
        for k, v in node.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, origin)
        return
    if not isinstance(node, str):
        raise LocaleError(f"{origin}: message {prefix!r} must be text, got {type(node).__name__}")
    out[prefix] = node


def _placeholders(message: str | dict[str, str]) -> set[str]:
    """Named ``{fields}`` of a message; ValueError for "{amount" or a positional "{}"."""
    texts = message.values() if isinstance(message, dict) else [message]
    names: set[str] = set()
    for text in texts:
        for _, field, _, _ in string.Formatter().parse(text):
            if field is None:
                continue
            name = field.split(".")[0].split("[")[0]
            if not name.isidentifier():
                raise ValueError(f"placeholder {{{field}}} must be a name like {{amount}}")
            names.add(name)
    return names


# Which plural categories a locale's messages must give (CLDR, integers only).
PLURAL_FORMS = {"ru": ("one", "few", "many"), "en": ("one", "other")}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"message {key!r} is defined twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def plural_category(locale: str, n: int) -> str:
    """CLDR cardinal category for integers (Russian rules; English one/other)."""
    n = abs(n)
    if locale == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "other"


@dataclass(frozen=True, slots=True)
class Translator:
    """Renders ``Reply`` values into text for one locale, falling back to the default locale."""

    catalogs: Mapping[str, Mapping[str, str | dict[str, str]]]

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self.catalogs)

    def has(self, key: str) -> bool:
        return key in self.catalogs[DEFAULT_LOCALE]

    def resolve_locale(self, locale: str | None) -> str:
        if locale:
            short = locale.lower().replace("_", "-").split("-")[0]
            if short in self.catalogs:
                return short
        return DEFAULT_LOCALE

    def message(self, locale: str, key: str) -> str | dict[str, str]:
        catalog = self.catalogs.get(locale, self.catalogs[DEFAULT_LOCALE])
        try:
            return catalog[key]
        except KeyError:
            raise KeyError(f"unknown message id {key!r}") from None

    def render(self, locale: str, value: Any) -> str:
        if isinstance(value, Text):
            template = self.message(locale, value.key)
            if isinstance(template, dict):
                raise LocaleError(f"message {value.key!r} is a plural; use Plural")
            params = {k: self.render(locale, v) for k, v in value.params.items()}
            return template.format_map(params)
        if isinstance(value, Plural):
            forms = self.message(locale, value.key)
            if not isinstance(forms, dict):
                raise LocaleError(f"message {value.key!r} is not a plural")
            form = forms.get(plural_category(locale, value.n)) or forms.get("other") or ""
            return form.format(n=value.n)
        if isinstance(value, Raw):
            return value.value
        if isinstance(value, Number):
            text = f"{value.value.normalize():f}"
            return text.replace(".", ",") if locale == "ru" else text
        if isinstance(value, Decimal):
            return self.money(locale, value)
        if isinstance(value, list | tuple):
            return "\n".join(self.render(locale, v) for v in value)
        return str(value)

    def money(self, locale: str, amount: Decimal) -> str:
        """Rubles the way people write them: 1 250,50 in Russian, 1,250.50 in English."""
        q = amount.quantize(Decimal("0.01"))
        text = f"{q:,.2f}"
        if text.endswith(".00"):
            text = text[:-3]
        if locale == "ru":
            text = text.replace(",", "\u00a0").replace(".", ",")
        return text.replace("-", "\u2212")  # a real minus sign, as in the transaction lines

    def render_reply(self, locale: str, reply: Reply) -> RenderedReply:
        text = "\n\n".join(self.render(locale, part) for part in reply.parts)
        return RenderedReply(
            text=text,
            buttons=tuple(self.render_button(locale, b) for b in reply.buttons),
            sender=reply.sender,
            attachments=reply.attachments,
        )

    def render_button(self, locale: str, button: Button) -> RenderedButton:
        return RenderedButton(self.render(locale, button.title), button.payload)


def load_translator(root: Path, locales: Iterable[str] = ("ru", "en")) -> Translator:
    catalogs: dict[str, dict[str, str | dict[str, str]]] = {}
    for locale in locales:
        folder = root / locale
        if not folder.is_dir():
            raise LocaleError(f"{folder}: locale folder is missing")
        merged: dict[str, str | dict[str, str]] = {}
        for path in sorted(folder.glob("*.yml")):
            try:
                data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # noqa: S506
            except yaml.YAMLError as exc:
                raise LocaleError(f"{path}: {exc}") from exc
            flat: dict[str, str | dict[str, str]] = {}
            _flatten("", data, flat, str(path))
            for key, message in flat.items():
                try:
                    _placeholders(message)
                except ValueError as exc:
                    raise LocaleError(f"{path}: message {key!r}: {exc}") from None
                if isinstance(message, dict):
                    needed = PLURAL_FORMS.get(locale, ("other",))
                    lacking = [f for f in needed if f not in message and "other" not in message]
                    if lacking:
                        raise LocaleError(
                            f"{path}: plural message {key!r} lacks form(s) {', '.join(lacking)}"
                        )
            for key in flat.keys() & merged.keys():
                raise LocaleError(f"{path}: message {key!r} is defined twice")
            merged.update(flat)
        catalogs[locale] = merged
    _check_consistent(catalogs)
    return Translator(catalogs)


def _check_consistent(catalogs: Mapping[str, Mapping[str, str | dict[str, str]]]) -> None:
    base = catalogs[DEFAULT_LOCALE]
    for locale, catalog in catalogs.items():
        missing = sorted(base.keys() - catalog.keys())
        extra = sorted(catalog.keys() - base.keys())
        if missing or extra:
            raise LocaleError(f"locale {locale!r}: missing {missing}, unknown {extra}")
        for key, message in catalog.items():
            if isinstance(message, dict) != isinstance(base[key], dict):
                raise LocaleError(
                    f"locale {locale!r}: message {key!r} is a plural in one locale and plain "
                    "text in another"
                )
            if _placeholders(message) != _placeholders(base[key]):
                raise LocaleError(
                    f"locale {locale!r}: message {key!r} placeholders "
                    f"{sorted(_placeholders(message))} differ from "
                    f"{DEFAULT_LOCALE!r} {sorted(_placeholders(base[key]))}"
                )
