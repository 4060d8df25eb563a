"""Fixtures for the self-service dialog tests: the billing backend (the embedded ledger or
HttpBilling + the fake bridge on 127.0.0.1), the services built on it and a REST ``ask``.

``ss_catalog`` is the catalog both the bot and the fake bridge are seeded from: the demo catalog,
or — parametrised indirectly with a dict of ``rules.yml`` overrides — a copy with the test
account that is blocked with money on it (``tests.fakes.billing.BLOCKED_WITH_MONEY``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import DEMO_CATALOG, Settings
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import Say, identity
from tests.fakes.billing import TOKEN, FakeBilling, make_test_catalog, running_fake_billing


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def ss_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    rules: dict[str, Any] | None = getattr(request, "param", None)
    if rules is None:
        return DEMO_CATALOG
    directory = make_test_catalog(tmp_path / "catalog")
    path = directory / "rules.yml"
    current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    path.write_text(yaml.safe_dump(_merge(current, rules), allow_unicode=True), encoding="utf-8")
    return directory


@pytest.fixture(params=["ledger", "http"])
async def backend(
    request: pytest.FixtureRequest, ss_catalog: Path
) -> AsyncIterator[FakeBilling | None]:
    if request.param == "ledger":
        yield None
        return
    async with running_fake_billing(data_dir=ss_catalog) as fake:
        yield fake


@pytest.fixture
def ss_settings(settings: Settings, ss_catalog: Path, backend: FakeBilling | None) -> Settings:
    settings = replace(settings, data_dir=ss_catalog)
    if backend is not None:
        settings = replace(settings, billing_url=backend.url, billing_token=TOKEN)
    return settings


@pytest.fixture
async def ss_services(ss_settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    built = build_services(ss_settings, nlu=demo_nlu)
    yield built
    await built.close()


@pytest.fixture
async def ss_client(
    aiohttp_client: Any, ss_settings: Settings, ss_services: Services
) -> TestClient:
    return await aiohttp_client(create_app(ss_settings, services=ss_services))  # type: ignore[no-any-return]


@pytest.fixture
def ask(ss_client: TestClient) -> Say:
    """POST one customer message; ``contract=`` adds a signed identity for that contract."""

    async def send(sender: str, text: str | None = None, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"sender": sender, **fields}
        if text is not None:
            body["text"] = text
        if "contract" in fields:
            body.pop("contract")
            body["identity"] = identity(fields["contract"])
        resp = await ss_client.post("/api/v1/messages", json=body)
        assert resp.status == 200, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]

    return send
