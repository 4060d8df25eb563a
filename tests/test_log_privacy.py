"""Personal data and secrets masked in log lines: what each mask keeps, that the whole process
is covered (any logger, tracebacks, third-party errors), that the masks stay linear in the
text, and that the run-wide scan in conftest.py really catches an unmasked line."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable

import aiohttp
import pytest

from bot.log_privacy import PersonalDataFilter, install, mask
from tests.conftest import LEAKS, PersonalDataLeaks

IVANOV = "750012345678"  # bot/demo_catalog/accounts.csv
IVANOV_PHONE = "+79140000001"
IVANOV_EMAIL = "ivanov@example.ru"
IVANOV_NAME = "Иванов Иван Иванович"
TG_TOKEN = "123456:TEST-token"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("договор 750012345678 не найден", "договор ****5678 не найден"),
        ("call +79140000001 back", "call +7******0001 back"),
        ("телефон 8 (914) 000-00-01", "телефон +7******0001"),
        ("phone +7 914 000 00 01.", "phone +7******0001."),
        # a host named bot… is not a Bot API token
        (
            "webhook registered at https://bot.example.ru/webhooks/telegram",
            "webhook registered at https://bot.example.ru/webhooks/telegram",
        ),
        # an access log line: the query string is URL-encoded
        (
            '"GET /v1/accounts?phone=%2B79140000001&email=ivan%40example.org HTTP/1.1" 200',
            '"GET /v1/accounts?phone=+7******0001&email=i***@example.org HTTP/1.1" 200',
        ),
        ("мобильный (914) 000-00-01", "мобильный +7******0001"),
        ("write to ivanov@example.ru", "write to i***@example.ru"),
        ("ваш код 123456", "ваш код ******"),
        ("code: 654321", "code: ******"),
        ("Иванов Иван Иванович звонил", "И*** И*** И*** звонил"),
        ("Анна Сергеевна Петрова", "А*** С*** П***"),
        ("POST https://api.telegram.org/bot123456:TEST-token/sendMessage",
         "POST https://api.telegram.org/bot<token>/sendMessage"),
        ("token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "token <telegram-token>"),
        ("GET /method/messages.send?access_token=vk1.a.xyz&v=5.199",
         "GET /method/messages.send?access_token=***&v=5.199"),
        ("{'X-Viber-Auth-Token': '445da6az1s345z78-dazcczb2542zv51a'}",
         "{'X-Viber-Auth-Token': '***'}"),
        ('{"name": "Иван", "text": "мой адрес Ленина 1"}', '{"name": "***", "text": "***"}'),
        ("Account(holder_name='Петрова Анна Сергеевна', balance=5)",
         "Account(holder_name='***', balance=5)"),
    ],
)  # fmt: skip
def test_masks_keep_lines_useful(line: str, masked: str) -> None:
    assert mask(line) == masked
    assert mask(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize(
    "line",
    [
        "request 12 (callback) stored",
        "intent model: 1480 examples, cross-validated accuracy 0.912345678, threshold 0.41",
        "outage 2026-1130-ch-01 closed at 2026-11-30T07:40:00+09:00",
        "Gateway on http://127.0.0.1:8080 (store: var/gateway.sqlite3)",
        "outbox: gave up on message 314 via telegram: 403 Forbidden",
    ],
)
def test_lines_without_personal_data_are_left_alone(line: str) -> None:
    assert mask(line) == line


def _logger_with_output(name: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [logging.StreamHandler(out)]
    logger.setLevel(logging.INFO)
    install(logger)
    return logger, out


def test_arguments_and_tracebacks_are_masked_before_any_handler_writes() -> None:
    logger, out = _logger_with_output("test_log_privacy.traceback")
    try:
        raise LookupError(f"no account {IVANOV} for {IVANOV_PHONE} / {IVANOV_EMAIL}")
    except LookupError:
        logger.exception("turn failed for %s (%s)", IVANOV_NAME, IVANOV)
    text = out.getvalue()
    assert "Traceback" in text
    assert "LookupError" in text
    assert "****5678" in text
    assert "+7******0001" in text
    assert "i***@example.ru" in text
    for datum in (IVANOV, IVANOV_PHONE, IVANOV_EMAIL, IVANOV_NAME):
        assert datum not in text


def test_install_is_idempotent_and_covers_every_handler() -> None:
    logger, out = _logger_with_output("test_log_privacy.install")
    second = io.StringIO()
    logger.addHandler(logging.StreamHandler(second))
    first_filter = install(logger)
    assert install(logger) is first_filter
    assert all(
        sum(isinstance(f, PersonalDataFilter) for f in h.filters) == 1 for h in logger.handlers
    )
    logger.info("code sent to %s", IVANOV_PHONE)
    assert IVANOV_PHONE not in out.getvalue() + second.getvalue()
    assert "+7******0001" in second.getvalue()


async def test_a_failed_bot_api_call_logged_by_the_root_logger_hides_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real aiohttp error names the URL, and a Bot API URL carries the bot's token; the root
    handlers (the scan's, installed as the product installs it, then pytest's) see it masked."""
    caplog.set_level(logging.INFO)
    log = logging.getLogger("bot.channels.telegram")
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"http://127.0.0.1:1/bot{TG_TOKEN}/getMe")
        except aiohttp.ClientError:
            log.exception("telegram: getMe to http://127.0.0.1:1/bot%s/getMe failed", TG_TOKEN)
    assert caplog.records
    assert "bot<token>" in caplog.text
    assert TG_TOKEN not in caplog.text


def test_the_run_wide_scan_catches_what_masking_would_miss() -> None:
    """The scan cannot pass trivially: a record that skipped the masking is caught, and the same
    record through the product's filter is not."""
    scan = PersonalDataLeaks()
    raw = f"contract {IVANOV}, phone 8 914 000-00-01, {IVANOV_EMAIL}, {IVANOV_NAME}, {TG_TOKEN}"
    record = logging.LogRecord("bot.x", logging.INFO, __file__, 1, raw, None, None)
    scan.handle(record)  # no filter on this handler
    assert {what for _, what, _ in scan.hits} == {
        IVANOV,
        "9140000001",
        IVANOV_EMAIL,
        IVANOV_NAME,
        TG_TOKEN,
    }
    masked = PersonalDataLeaks()
    masked.addFilter(PersonalDataFilter())
    masked.handle(logging.LogRecord("bot.x", logging.INFO, __file__, 1, raw, None, None))
    assert masked.hits == []


def test_the_run_wide_scan_is_installed_and_sees_this_test() -> None:
    root = logging.getLogger()
    assert root.handlers[0] is LEAKS
    assert any(isinstance(f, PersonalDataFilter) for f in LEAKS.filters)
    assert root.isEnabledFor(logging.INFO)  # the gateway's default level is scanned
    before = len(LEAKS.hits)
    logging.getLogger("bot.anything").info("linked %s to %s", IVANOV_PHONE, IVANOV)
    assert len(LEAKS.hits) == before  # masked on the way: nothing to report


def _cost(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize(
    "unit",
    ["a", "7", "a@", "x.", "key=", "Аб ", '"name": "', "code 1 ", "+7 9", "Иванов Иван "],
)
def test_masking_is_linear_in_the_text(unit: str) -> None:
    """Hostile text of any shape: 8 times the length costs about 8 times as much, a quadratic
    expression 64 times; the bound sits between (caches and a busy machine cost something).
    Compared in one run, not against a clock."""
    short = unit * (8000 // len(unit))
    small, large = _cost(lambda: mask(short)), _cost(lambda: mask(short * 8))
    assert large < small * 32, (small, large)
