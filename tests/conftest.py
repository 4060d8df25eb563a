"""Shared fixtures: one trained NLU per test session, a fresh store and gateway per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
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
from bot.services import Services, build_nlu, build_services

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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings(), var_dir=tmp_path / "var", identity_secret=IDENTITY_SECRET)


@pytest.fixture
async def services(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    built = build_services(settings, nlu=demo_nlu)
    yield built
    await built.close()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, services: Services) -> TestClient:
    return await aiohttp_client(create_app(settings, services=services))  # type: ignore[no-any-return]


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
