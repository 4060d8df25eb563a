"""Shared fixtures: one trained NLU per test session, a fresh store and gateway per test."""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.catalog.catalog import load_catalog
from bot.config import DEMO_CATALOG, Settings
from bot.identity import sign_contract
from bot.intents.nlu import Nlu
from bot.log_privacy import PersonalDataFilter
from bot.services import Services, build_nlu, build_services
from tests.redis_server import own_redis, redis_server, redis_url  # noqa: F401  (fixtures)

IDENTITY_SECRET = "test-identity-secret"
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

Say = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture(scope="session")
def demo_nlu() -> Nlu:
    settings = Settings()
    return build_nlu(
        load_catalog(DEMO_CATALOG), flows_dir=settings.flows_dir, threshold=settings.nlu_threshold
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=("sqlite", "redis"),
        default="sqlite",
        help="backend of the gateway the `settings` fixture builds: the embedded SQLite "
        "(default) or a private Redis (REDIS_URL), to run the same dialog suites on both",
    )


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    built = replace(Settings(), var_dir=tmp_path / "var", identity_secret=IDENTITY_SECRET)
    if request.config.getoption("--store") == "redis":
        # A fresh, emptied Redis per test (tests/redis_server.py), like a fresh var dir.
        built = replace(built, redis_url=request.getfixturevalue("redis_url"))
    return built


@pytest.fixture
async def services(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    built = build_services(settings, nlu=demo_nlu)
    yield built
    await built.close()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, services: Services) -> TestClient:
    return await aiohttp_client(create_app(settings, services=services))  # type: ignore[no-any-return]


@pytest.fixture
async def started_services(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    """Services with their background work running (the widget's sockets, the outbox, ingress)."""
    built = build_services(settings, nlu=demo_nlu)
    await built.start()
    yield built
    await built.close()


@pytest.fixture
async def started_client(
    aiohttp_client: Any, settings: Settings, started_services: Services
) -> TestClient:
    return await aiohttp_client(create_app(settings, services=started_services))  # type: ignore[no-any-return]


def identity(contract: str, secret: str = IDENTITY_SECRET) -> dict[str, str]:
    return {"contract_number": contract, "hash": sign_contract(secret, contract)}


@pytest.fixture
def say(client: TestClient) -> Say:
    """POST one customer message through the REST channel and return the JSON answer."""

    async def send(sender: str, text: str | None = None, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"sender": sender, **fields}
        if text is not None:
            body["text"] = text
        resp = await client.post("/api/v1/messages", json=body)
        assert resp.status == 200, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]

    return send


def texts(answer: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in answer["replies"])


def buttons(answer: dict[str, Any]) -> list[dict[str, str]]:
    return [b for r in answer["replies"] for b in r["buttons"]]


# --- personal data in the logs of the whole run ---------------------------------------------------
# Secrets the tests hand to the product (they must never reach a log line as they are).
TEST_SECRETS = (
    "123456:TEST-token", "fake-billing-token-5f2b", "rest-token-for-files", IDENTITY_SECRET,
    "test-webhook-secret", "test-billing-webhook-secret", "inbound-files-secret",
    "vk-inbound-secret", "crm-shared-secret", "operator-files-secret",
)  # fmt: skip
_NUMBERISH = re.compile(r"\+?\d[\d\s()-]{6,24}\d")


class PersonalDataLeaks(logging.Handler):
    """Every record of the run, after the product's own masking (``PersonalDataFilter`` on
    this handler, the first on the root logger), checked for the demo catalog's phones, e-mails,
    contract numbers and holder names and for the tests' secrets. Hits are kept with the test
    that logged them; the test fails at teardown, and the run at its end."""

    def __init__(self, accounts: Path = DEMO_CATALOG / "accounts.csv") -> None:
        super().__init__(logging.NOTSET)
        with accounts.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        self.phones = {re.sub(r"\D", "", r["phone"])[-10:] for r in rows if r["phone"]}
        self.contracts = {r["contract_number"] for r in rows}
        self.strings = (
            {r["email"] for r in rows if r["email"]}
            | {r["holder_name"] for r in rows if r["holder_name"]}
            | set(TEST_SECRETS)
        )
        self.where = "(outside a test)"
        self.hits: list[tuple[str, str, str]] = []  # (where, what, the line)

    def leaks(self, text: str) -> list[str]:
        found = [s for s in self.strings if s in text]
        for match in _NUMBERISH.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            found += [c for c in self.contracts if c in digits]
            found += [p for p in self.phones if p in digits]
        return found

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + "\n" + (record.exc_text or "") + (record.stack_info or "")
        for what in self.leaks(text):
            self.hits.append((self.where, what, f"{record.name}: {text.strip()[:300]}"))


LEAKS = PersonalDataLeaks()


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    LEAKS.addFilter(PersonalDataFilter())  # the product's masking is what is scanned
    root.handlers.insert(0, LEAKS)  # first: it masks the shared record for pytest's handlers
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)  # what the gateway logs by default (BOT_LOG_LEVEL)


@pytest.fixture(autouse=True)
def _no_personal_data_logged(request: pytest.FixtureRequest) -> Iterator[None]:
    LEAKS.where, before = request.node.nodeid, len(LEAKS.hits)
    yield
    LEAKS.where = "(outside a test)"
    mine = LEAKS.hits[before:]
    if mine:
        del LEAKS.hits[before:]
        lines = "\n".join(f"  {what!r} in {line}" for _, what, line in mine[:10])
        pytest.fail(f"personal data or a secret logged unmasked:\n{lines}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if LEAKS.hits and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for where, what, line in LEAKS.hits[:20]:
        terminalreporter.write_line(f"personal data logged unmasked {where}: {what!r} in {line}")
