"""Every step that reads customer text costs time in proportion to the text, never more.

Nothing here is timed against a clock budget: each step is run on a hostile shape of text at
length n and 8n in the same run, and the CPU time of the longer one must stay within 8 × 2.5
of the shorter (a quadratic step gives about 64). The old ``\\S+@\\S+`` link pattern of the
entity extractor, for one, took 0.1 s on 7 000 letters and 0.76 s on 16 000, a ratio of 50.

Against a busy machine: the CPU time of this thread (not the wall clock), the best of several
runs, the garbage collector paused (a full collection of the whole heap lands in one run or the
other by chance), caches warmed on the long text first, a second longer look before a failure
is reported, and a floor: a step still cheaper than ``FLOOR`` seconds on the long text has its
text doubled until it is not, so the ratio is never judged on timer noise.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable, Iterator
from datetime import date

import pytest

from bot.catalog.addresses import normalize_house, parse_address, street_core
from bot.catalog.catalog import load_catalog
from bot.catalog.models import City
from bot.config import DEMO_CATALOG
from bot.intents import entities as entities_module
from bot.intents.date_ranges import find_date_range
from bot.intents.datetimes import find_dates, find_times
from bot.intents.entities import contact_of, speed_mbps
from bot.intents.nlu import Nlu
from bot.intents.normalize import basic, classifier_view
from bot.untrusted import clean_text

TODAY = date(2026, 11, 21)
GROWTH = 8
SLACK = 2.5  # linear with room for noise; quadratic is 8 × 8 = 64
FLOOR = 0.004  # seconds of CPU on the long text below which a ratio means nothing
SHORT = 875  # the long text is 7 000 characters, Viber's limit
LONGEST = 32_000

# What a hostile client sends: one endless word of letters, digits, separators, and the
# fragments every pattern of the extractor looks for, repeated.
SHAPES: dict[str, str] = {
    "letters": "а",
    "latin": "a",
    "digits": "7",
    "digits and spaces": "12 ",
    "digits and dashes": "1-",
    "dots": "1.",
    "slashes": "5/",
    "at signs": "@",
    "a@ repeated": "a@",
    "e-mails": "a.b@c.d ",
    "links": "http://",
    "commas": ",",
    "street types": "ул ",
    "streets and houses": "ул мира 5, ",
    "house letters": "1а",
    "blocks": "5 к 2 ",
    "flats": "кв 5 ",
    "hours": "в 5 ",
    "hour ranges": "с 10-12 ",
    "clock times": "10:30 ",
    "dates": "1.12 ",
    "day and month": "5 мая ",
    "weekdays": "в пн ",
    "pause ranges": "с 10 по 25 декабря ",
    "phones": "+7 ",
    "contract named": "договор 123456 ",
    "amounts": "5 руб ",
    "cities": "чита ",
    "mixed scripts": "aя1@-. ",
    "transliteration": "balans ",
}


@pytest.fixture(scope="module")
def cities() -> list[City]:
    return list(load_catalog(DEMO_CATALOG).cities.values())


@pytest.fixture
def steps(
    demo_nlu: Nlu, cities: list[City], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Callable[[str], object]]:
    # The extractor reads only the opening of a long message for addresses and dates (a bound
    # on its cost); the steps themselves must be linear, so here they read all of it.
    monkeypatch.setattr(entities_module, "DEEP_WINDOW", LONGEST * 2)
    extractor, classifier = demo_nlu.extractor, demo_nlu.classifier

    def dates_and_times(text: str) -> object:
        spans = [(d.start, d.end) for d in find_dates(text, TODAY)]
        return find_times(text, spans, spans)

    return {
        "clean": lambda t: clean_text(t, LONGEST * 2),
        "normalise": basic,
        "classifier view": classifier_view,
        "classify": lambda t: classifier.classify(t, "ru"),
        "entities": lambda t: extractor.extract(t, today=TODAY),
        "city": extractor.city_of,
        "address": lambda t: parse_address(t, cities),
        "street": street_core,
        "house": normalize_house,
        "dates and times": dates_and_times,
        "date range": lambda t: find_date_range(t, TODAY),
        "contact": contact_of,
        "speed": speed_mbps,
    }


def repeated(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def cpu(step: Callable[[str], object], text: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        step(text)
        best = min(best, time.thread_time() - started)
    return best


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.disable()  # no collection first: that alone costs 0.3 s with the NLU in the heap
    try:
        yield
    finally:
        gc.enable()


def growth(step: Callable[[str], object], unit: str) -> tuple[int, float, float]:
    """(n, cost of n, cost of 8n) for the shortest n whose long text costs above the floor."""
    n = SHORT
    while True:
        short, long = repeated(unit, n), repeated(unit, n * GROWTH)
        step(long)  # warm the caches (lemmas, tags) the short text shares
        small, big = cpu(step, short, 3), cpu(step, long, 3)
        if big >= FLOOR or n * GROWTH * 2 > LONGEST:
            break
        n *= 2
    if big > GROWTH * SLACK * small and big >= FLOOR:
        small, big = cpu(step, short, 9), cpu(step, long, 9)  # a longer look before failing
    return n, small, big


STEP_NAMES = (
    "clean", "normalise", "classifier view", "classify", "entities", "city", "address",
    "street", "house", "dates and times", "date range", "contact", "speed",
)  # fmt: skip


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("step_name", STEP_NAMES)
def test_cost_grows_linearly_with_the_text(
    steps: dict[str, Callable[[str], object]], step_name: str
) -> None:
    step = steps[step_name]
    slow: list[str] = []
    for shape, unit in SHAPES.items():
        n, small, big = growth(step, unit)
        if big >= FLOOR and big > GROWTH * SLACK * small:
            slow.append(
                f"{shape!r}: {n} chars {small * 1000:.2f} ms, {n * GROWTH} chars "
                f"{big * 1000:.2f} ms (×{big / small:.0f})"
            )
    assert not slow, f"{step_name} grows faster than the text:\n" + "\n".join(slow)


@pytest.mark.usefixtures("no_gc")
def test_the_check_catches_a_quadratic_pattern() -> None:
    """The check above on the link pattern the extractor used to have: ``\\S+@\\S+`` tries
    every start of a long word, so 8× the letters cost about 50× the time."""
    old_links = re.compile(r"\S+@\S+|(?:https?://|www\.)\S+", re.I)
    n, small, big = growth(old_links.findall, "a")
    assert big > GROWTH * SLACK * small, (n, small, big)


@pytest.mark.usefixtures("no_gc")
def test_extraction_reads_a_bounded_opening(demo_nlu: Nlu) -> None:
    """With the window in place (as served), 7 000 characters of the worst shapes cost about
    what the window's worth costs: the part past it is read only by the fast patterns."""
    extractor = demo_nlu.extractor
    window = entities_module.DEEP_WINDOW
    for unit in ("1а", "в 5 ", "ул мира 5, ", "с 10-12 "):

        def step(text: str) -> object:
            return extractor.extract(text, today=TODAY)

        step(repeated(unit, 7000))
        at_window = cpu(step, repeated(unit, window), 5)
        at_limit = cpu(step, repeated(unit, 7000), 5)
        assert at_limit < 3 * at_window, (unit, at_window, at_limit)


def test_entities_near_the_start_of_a_long_message_are_found(demo_nlu: Nlu) -> None:
    text = "живу на ленина 10, договор 750012345678, перезвоните завтра в 7 вечера. " + (
        "очень долго рассказываю о проблеме " * 200
    )
    kinds = {e.type for e in demo_nlu.extractor.extract(text, today=TODAY)}
    assert {"street", "house", "contract_number", "date", "time"} <= kinds
    # Numbers with a fast pattern are found anywhere in the message.
    tail = text + " мой номер +7 914 123-45-67"
    phones = [e for e in demo_nlu.extractor.extract(tail, today=TODAY) if e.type == "phone"]
    assert [p.value for p in phones] == ["+79141234567"]
