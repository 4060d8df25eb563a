"""Message catalogs: the real locales are complete and consistent, broken ones stop start-up with
a message naming the problem, numbers and money read naturally, and no customer-facing Russian
text hides in Python code."""

from __future__ import annotations

import io
import re
import string
import tokenize
from decimal import Decimal
from pathlib import Path

import pytest

from bot.i18n import LocaleError, Translator, load_translator, plural_category
from bot.models import Button, Plural, Raw, RenderedButton, Reply, Text

ROOT = Path(__file__).resolve().parent.parent
NBSP = "\u00a0"


@pytest.fixture(scope="module")
def real() -> Translator:
    return load_translator(ROOT / "locales")


def _placeholders(message: str | dict[str, str]) -> set[str]:
    texts = message.values() if isinstance(message, dict) else [message]
    return {field for text in texts for _, field, _, _ in string.Formatter().parse(text) if field}


# --- the real locales ----------------------------------------------------------------------------
def test_real_locales_load(real: Translator) -> None:
    assert set(real.locales) == {"ru", "en"}
    for locale, catalog in real.catalogs.items():
        assert len(catalog) > 20, locale
        for key, message in catalog.items():
            forms = message.values() if isinstance(message, dict) else [message]
            assert all(form.strip() for form in forms), f"{locale}: {key} is empty"


def test_ru_and_en_have_the_same_messages_and_placeholders(real: Translator) -> None:
    ru, en = real.catalogs["ru"], real.catalogs["en"]
    assert sorted(ru) == sorted(en)
    for key in ru:
        assert _placeholders(ru[key]) == _placeholders(en[key]), key
        assert isinstance(ru[key], dict) == isinstance(en[key], dict), key


def test_real_plural_messages_have_every_form_their_language_needs(real: Translator) -> None:
    plurals = [k for k, v in real.catalogs["ru"].items() if isinstance(v, dict)]
    assert plurals
    for key in plurals:
        ru, en = real.catalogs["ru"][key], real.catalogs["en"][key]
        assert isinstance(ru, dict)
        assert isinstance(en, dict)
        assert {"one", "few", "many"} <= set(ru), key
        assert {"one", "other"} <= set(en), key


# --- plural rules --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "category"),
    [
        (0, "many"), (1, "one"), (2, "few"), (4, "few"), (5, "many"), (11, "many"),
        (12, "many"), (14, "many"), (21, "one"), (22, "few"), (25, "many"), (101, "one"),
        (111, "many"), (112, "many"), (1001, "one"), (-1, "one"), (-22, "few"),
    ],
)  # fmt: skip
def test_russian_plural_categories(n: int, category: str) -> None:
    assert plural_category("ru", n) == category


@pytest.mark.parametrize(
    ("n", "category"), [(0, "other"), (1, "one"), (2, "other"), (11, "other"), (21, "other")]
)
def test_english_plural_categories(n: int, category: str) -> None:
    assert plural_category("en", n) == category


@pytest.mark.parametrize(
    ("n", "ru", "en"),
    [
        (1, "1 бонусный балл", "1 bonus point"),
        (3, "3 бонусных балла", "3 bonus points"),
        (11, "11 бонусных баллов", "11 bonus points"),
        (21, "21 бонусный балл", "21 bonus points"),
    ],
)
def test_plural_renders_the_agreed_noun(n: int, ru: str, en: str) -> None:
    points = Translator(
        {
            "ru": {"points": {"one": "{n} бонусный балл", "few": "{n} бонусных балла",
                              "many": "{n} бонусных баллов"}},
            "en": {"points": {"one": "{n} bonus point", "other": "{n} bonus points"}},
        }
    )  # fmt: skip
    assert points.render("ru", Plural("points", n)) == ru
    assert points.render("en", Plural("points", n)) == en


# --- money ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "ru", "en"),
    [
        (Decimal("1250.50"), f"1{NBSP}250,50", "1,250.50"),
        (Decimal("1250.5"), f"1{NBSP}250,50", "1,250.50"),
        (Decimal("1250"), f"1{NBSP}250", "1,250"),
        (Decimal("1250.00"), f"1{NBSP}250", "1,250"),
        (Decimal("650"), "650", "650"),
        (Decimal("349.90"), "349,90", "349.90"),
        (Decimal("0"), "0", "0"),
        (Decimal("-120.50"), "\u2212120,50", "\u2212120.50"),  # a real minus sign
        (Decimal("1234567.05"), f"1{NBSP}234{NBSP}567,05", "1,234,567.05"),
    ],
)
def test_money(real: Translator, amount: Decimal, ru: str, en: str) -> None:
    assert real.money("ru", amount) == ru
    assert real.money("en", amount) == en


def test_decimal_parameters_are_rendered_as_money(real: Translator) -> None:
    tr = Translator(
        {"ru": {"balance": "Баланс: {amount} ₽"}, "en": {"balance": "Balance: {amount} ₽"}}
    )
    assert tr.render("ru", Text("balance", {"amount": Decimal("-1250.50")})) == (
        f"Баланс: \u22121{NBSP}250,50 ₽"
    )
    assert tr.render("en", Text("balance", {"amount": Decimal("880")})) == "Balance: 880 ₽"


# --- rendering -----------------------------------------------------------------------------------
CATALOGS: dict[str, dict[str, str | dict[str, str]]] = {
    "ru": {
        "tariffs.list": "Тарифы в городе {city}:\n{items}",
        "tariff.line": "• {name} — {speed} Мбит/с + {channels}, {price} ₽/мес",
        "unit.channels": {"one": "{n} канал", "few": "{n} канала", "many": "{n} каналов"},
        "button.menu": "Главное меню",
        "thanks": "Пожалуйста!",
    },
    "en": {
        "tariffs.list": "Tariffs in {city}:\n{items}",
        "tariff.line": "• {name} — {speed} Mbit/s + {channels}, {price} ₽/month",
        "unit.channels": {"one": "{n} channel", "other": "{n} channels"},
        "button.menu": "Main menu",
        "thanks": "You're welcome!",
    },
}


def _tariff_list() -> Text:
    return Text(
        "tariffs.list",
        {
            "city": Raw("Чита"),
            "items": [
                Text(
                    "tariff.line",
                    {"name": Raw("Интернет + ТВ 300"), "speed": 300,
                     "channels": Plural("unit.channels", 151), "price": Decimal("790.00")},
                ),
                Text(
                    "tariff.line",
                    {"name": Raw("Интернет + ТВ 500"), "speed": 500,
                     "channels": Plural("unit.channels", 1), "price": Decimal("1020.50")},
                ),
            ],
        },
    )  # fmt: skip


def test_render_nested_text_plural_raw_and_lists() -> None:
    tr = Translator(CATALOGS)
    assert tr.render("ru", _tariff_list()) == (
        "Тарифы в городе Чита:\n"
        "• Интернет + ТВ 300 — 300 Мбит/с + 151 канал, 790 ₽/мес\n"
        f"• Интернет + ТВ 500 — 500 Мбит/с + 1 канал, 1{NBSP}020,50 ₽/мес"
    )
    assert tr.render("en", _tariff_list()) == (
        "Tariffs in Чита:\n"
        "• Интернет + ТВ 300 — 300 Mbit/s + 151 channels, 790 ₽/month\n"
        "• Интернет + ТВ 500 — 500 Mbit/s + 1 channel, 1,020.50 ₽/month"
    )


def test_raw_text_is_never_interpreted_as_a_template() -> None:
    tr = Translator(CATALOGS)
    tricky = Raw("ул. {Бутина} 10 {city}")
    assert tr.render("ru", Text("tariffs.list", {"city": tricky, "items": []})) == (
        "Тарифы в городе ул. {Бутина} 10 {city}:\n"
    )


def test_render_reply_joins_paragraphs_and_renders_buttons() -> None:
    tr = Translator(CATALOGS)
    reply = Reply(
        parts=(Text("thanks"), Raw("Договор 750012345678")),
        buttons=(Button(Text("button.menu"), "/menu"), Button(Raw("Чита"), "/city chita")),
    )
    rendered = tr.render_reply("en", reply)
    assert rendered.text == "You're welcome!\n\nДоговор 750012345678"
    assert rendered.buttons == (
        RenderedButton("Main menu", "/menu"),
        RenderedButton("Чита", "/city chita"),
    )
    assert tr.render_reply("ru", reply).buttons[0].title == "Главное меню"


def test_mixing_up_plural_and_plain_messages_is_an_error() -> None:
    tr = Translator(CATALOGS)
    with pytest.raises(LocaleError, match=r"unit\.channels"):
        tr.render("ru", Text("unit.channels"))
    with pytest.raises(LocaleError, match="thanks"):
        tr.render("ru", Plural("thanks", 2))
    with pytest.raises(KeyError, match=r"no\.such\.key"):
        tr.render("ru", Text("no.such.key"))


@pytest.mark.parametrize(
    ("requested", "resolved"),
    [
        ("en-US", "en"), ("en_GB", "en"), ("EN", "en"), ("en", "en"), ("ru-RU", "ru"),
        ("ru", "ru"), ("de-DE", "ru"), ("uk", "ru"), ("", "ru"), (None, "ru"),
    ],
)  # fmt: skip
def test_resolve_locale(real: Translator, requested: str | None, resolved: str) -> None:
    assert real.resolve_locale(requested) == resolved


# --- broken catalogs -----------------------------------------------------------------------------
RU_OK = 'balance:\n  line: "Баланс: {amount} ₽"\n  none: "Нет данных."\n'
EN_OK = 'balance:\n  line: "Balance: {amount} ₽"\n  none: "No data."\n'


def _locales(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "locales"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _locale_error(root: Path) -> str:
    with pytest.raises(LocaleError) as info:
        load_translator(root)
    return str(info.value)


def test_minimal_valid_catalogs_load(tmp_path: Path) -> None:
    tr = load_translator(_locales(tmp_path, {"ru/messages.yml": RU_OK, "en/messages.yml": EN_OK}))
    assert tr.render("ru", Text("balance.line", {"amount": Decimal("5")})) == "Баланс: 5 ₽"


def test_a_locale_missing_a_message(tmp_path: Path) -> None:
    en = 'balance:\n  line: "Balance: {amount} ₽"\n'
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": RU_OK, "en/m.yml": en}))
    assert "'en'" in message
    assert "balance.none" in message


def test_a_locale_with_a_message_the_default_lacks(tmp_path: Path) -> None:
    en = EN_OK + '  extra: "Extra"\n'
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": RU_OK, "en/m.yml": en}))
    assert "'en'" in message
    assert "balance.extra" in message


def test_placeholder_mismatch(tmp_path: Path) -> None:
    en = EN_OK.replace("{amount}", "{sum}")
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": RU_OK, "en/m.yml": en}))
    assert "balance.line" in message
    assert "amount" in message
    assert "sum" in message


def test_plural_placeholder_mismatch(tmp_path: Path) -> None:
    ru = RU_OK + 'points:\n  one: "{n} балл"\n  few: "{n} балла"\n  many: "{n} баллов"\n'
    en = EN_OK + 'points:\n  one: "{n} point"\n  other: "{count} points"\n'
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": ru, "en/m.yml": en}))
    assert "points" in message
    assert "count" in message


def test_a_message_defined_twice_across_two_files(tmp_path: Path) -> None:
    root = _locales(
        tmp_path,
        {
            "ru/a_main.yml": RU_OK,
            "ru/b_extra.yml": 'balance:\n  none: "Данных нет."\n',
            "en/messages.yml": EN_OK,
        },
    )
    message = _locale_error(root)
    assert "balance.none" in message
    assert "twice" in message
    assert "b_extra.yml" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    ru = 'balance:\n  line: "Баланс: {amount} ₽\n  none: [unclosed\n'
    message = _locale_error(_locales(tmp_path, {"ru/messages.yml": ru, "en/messages.yml": EN_OK}))
    assert "ru/messages.yml" in message or "ru\\messages.yml" in message


def test_a_message_that_is_not_text(tmp_path: Path) -> None:
    ru = RU_OK + "menu:\n  items: [tariffs, balance]\n"
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": ru, "en/m.yml": EN_OK}))
    assert "menu.items" in message
    assert "must be text" in message


def test_a_missing_locale_folder(tmp_path: Path) -> None:
    message = _locale_error(_locales(tmp_path, {"ru/messages.yml": RU_OK}))
    assert "en" in message
    assert "missing" in message


@pytest.mark.parametrize("broken", ["{amount ₽", "{amount} ₽ {}"], ids=["unclosed", "positional"])
def test_a_malformed_placeholder_is_a_locale_error(tmp_path: Path, broken: str) -> None:
    # The same mistake in both locales, so it is not caught as a mismatch between them.
    ru = RU_OK.replace("{amount} ₽", broken)
    en = EN_OK.replace("{amount} ₽", broken)
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": ru, "en/m.yml": en}))
    assert "balance.line" in message


def test_a_message_defined_twice_in_one_file(tmp_path: Path) -> None:
    ru = RU_OK + '  none: "Данных нет."\n'  # balance.none a second time
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": ru, "en/m.yml": EN_OK}))
    assert "m.yml" in message
    assert "none" in message


def test_plural_in_one_locale_and_plain_text_in_another(tmp_path: Path) -> None:
    ru = RU_OK + 'points:\n  one: "{n} балл"\n  few: "{n} балла"\n  many: "{n} баллов"\n'
    en = EN_OK + 'points: "{n} points"\n'
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": ru, "en/m.yml": en}))
    assert "points" in message


def test_a_russian_plural_without_the_few_form(tmp_path: Path) -> None:
    ru = RU_OK + 'points:\n  one: "{n} балл"\n  many: "{n} баллов"\n'
    en = EN_OK + 'points:\n  one: "{n} point"\n  other: "{n} points"\n'
    message = _locale_error(_locales(tmp_path, {"ru/m.yml": ru, "en/m.yml": en}))
    assert "points" in message
    assert "few" in message


# --- no customer-facing Russian in Python --------------------------------------------------------
CYRILLIC = re.compile("[\u0400-\u04ff]")

# Modules whose Russian literals are language data the bot reads (address and intent lexicons,
# transliteration tables, entity regexes), never text it says.
LEXICON_MODULES = {
    "bot/catalog/addresses.py",
    "bot/intents/datetimes.py",
    "bot/intents/date_ranges.py",
    "bot/intents/entities.py",
    "bot/intents/normalize.py",
}
# Single literals that are not customer-facing, with the reason.
ALLOWED_LITERALS = {
    ("bot/app.py", '"привет"'): "health check: a probe phrase fed to the classifier",
    (
        "bot/dialog/slots.py",
        'r"^[A-Za-zА-Яа-яЁё][A-Za-zА-Яа-яЁё\' .\\-]{0,58}[A-Za-zА-Яа-яЁё.]$"',
    ): "regex validating a typed name",
    (
        "bot/__main__.py",
        '"(Ctrl-D — выход; цифра — нажать кнопку; /geo LAT LON — отправить геопозицию)\\n"',
    ): "developer terminal hint of `python -m bot chat`, not a customer channel",
}

_SKIP = {tokenize.NL, tokenize.COMMENT}
_STATEMENT_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
_FSTRING_MIDDLE = getattr(tokenize, "FSTRING_MIDDLE", None)  # Python 3.12+


def cyrillic_literals(source: str) -> list[tuple[int, str]]:
    """(line, literal) for string literals with Cyrillic letters. Comments are not literals;
    a string that is a whole statement (a docstring) is documentation and is skipped."""
    tokens = [
        t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in _SKIP
    ]
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        if tokens[i].type != tokenize.STRING and tokens[i].type != _FSTRING_MIDDLE:
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and tokens[j + 1].type == tokenize.STRING:
            j += 1  # implicitly concatenated literals
        before = tokens[i - 1].type if i else tokenize.ENCODING
        after = tokens[j + 1].type if j + 1 < len(tokens) else tokenize.ENDMARKER
        docstring = before in _STATEMENT_START and after in (tokenize.NEWLINE, tokenize.ENDMARKER)
        if not docstring:
            found.extend(
                (t.start[0], t.string) for t in tokens[i : j + 1] if CYRILLIC.search(t.string)
            )
        i = j + 1
    return found


def test_the_scanner_tells_docstrings_and_comments_from_literals() -> None:
    source = (
        '"""Модуль."""\n'
        "# комментарий\n"
        "def f() -> str:\n"
        '    """Функция."""\n'
        '    x = "ответ"  # ещё комментарий\n'
        '    return x + f"{x} и ещё"\n'
        "class C:\n"
        "    '''Класс.'''\n"
        '    y = ("a" "б")\n'
    )
    literals = [text for _, text in cyrillic_literals(source)]
    assert '"ответ"' in literals
    assert any("и ещё" in text for text in literals)
    assert '"б"' in literals
    assert not any(word in " ".join(literals) for word in ("Модуль", "Функция", "Класс", "коммент"))


def test_no_customer_facing_russian_in_python() -> None:
    offenders: list[str] = []
    lexicon_hits = 0
    for path in sorted((ROOT / "bot").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for line, literal in cyrillic_literals(path.read_text(encoding="utf-8")):
            if name in LEXICON_MODULES:
                lexicon_hits += 1
            elif (name, literal) not in ALLOWED_LITERALS:
                offenders.append(f"{name}:{line}: {literal[:80]}")
    assert lexicon_hits, "the scan found nothing at all; is it reading bot/?"
    assert offenders == [], "customer-facing text belongs in locales/:\n" + "\n".join(offenders)
