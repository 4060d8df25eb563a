"""Outage test helpers: a catalog copy with many customers on one street, conversations linked
to them, and a gateway with the Telegram channel against the fake Bot API on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels.base import RateLimit
from bot.channels.registry import ChannelDeps
from bot.channels.telegram import SECRET_HEADER, TelegramChannel, create
from bot.config import DEMO_CATALOG, Settings
from bot.intents.nlu import Nlu
from bot.models import Conversation, ConversationKey
from bot.services import Services, build_services
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-token"
SECRET = "test-webhook-secret"
STREET = "ул. Петровская"  # in the demo register; no demo account lives there
FIRST_CHAT = 700_000


def contract_of(n: int) -> str:
    return f"7509{n:08d}"


def catalog_with_customers(directory: Path, count: int, *, houses: int = 10) -> Path:
    """The demo catalog plus ``count`` active internet customers in Chita on ``STREET``
    (houses 1..``houses``), each allowing outage notices in a messenger (the default)."""
    shutil.copytree(DEMO_CATALOG, directory)
    with (directory / "accounts.csv").open("a", encoding="utf-8") as out:
        for n in range(count):
            house = n % houses + 1
            out.write(
                f"{contract_of(n)},chita,Клиент {n},+7914{n:07d},c{n}@example.ru,"
                f'"{STREET}, {house}, кв. {n}",chita-inet-500,500.00,0,active,2026-12-20,'
                "false,,,\n"
            )
    return directory


async def link_chats(services: Services, count: int, channel: str = "telegram") -> None:
    """A conversation per customer, linked to the contract and with a message (so it is the
    customer's last channel)."""
    for n in range(count):
        chat = str(FIRST_CHAT + n)
        key = ConversationKey(channel, chat, chat)
        await services.store.save_conversation(Conversation(key, contract_number=contract_of(n)))
        await services.store.append_message(key.id, "customer", "привет")


@dataclass
class Rig:
    fake: FakeTelegram
    services: Services
    client: TestClient

    async def post_update(self, update: dict[str, Any]) -> int:
        resp = await self.client.post(
            "/webhooks/telegram", json=update, headers={SECRET_HEADER: SECRET}
        )
        return resp.status


MakeRig = Callable[..., Awaitable[Rig]]


async def _close_without_tls_grace(self: AiohttpSession) -> None:
    if self._session is not None and not self._session.closed:
        await self._session.close()


@pytest.fixture
async def make_rig(
    aiohttp_server: Any,
    aiohttp_client: Any,
    settings: Settings,
    demo_nlu: Nlu,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[MakeRig]:
    monkeypatch.setattr(AiohttpSession, "close", _close_without_tls_grace)
    running: list[Services] = []

    async def make(*, data_dir: Path, rate: RateLimit) -> Rig:
        fake = FakeTelegram(token=TOKEN)
        server = await aiohttp_server(fake.app())
        configured = replace(
            settings,
            data_dir=data_dir,
            telegram_token=TOKEN,
            telegram_webhook_secret=SECRET,
            telegram_api_base=str(server.make_url("")).rstrip("/"),
        )
        services = build_services(configured, nlu=demo_nlu)
        channel = create(
            ChannelDeps(configured, services.ingress, services.store, services.translator)
        )
        assert isinstance(channel, TelegramChannel)
        channel.rate_limit = rate
        services.channels[channel.name] = channel
        client = await aiohttp_client(create_app(configured, services=services))
        await services.start()
        running.append(services)
        return Rig(fake, services, client)

    yield make
    for services in running:
        await services.close()
