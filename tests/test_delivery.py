"""Durable ingress and outbox: order, redelivery, crashes, retries, fitting to the channel.

The channel here is a small recording implementation of our own ``Channel`` interface (the
real platform adapters are tested against fake platform servers in their own test modules).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit, SendError
from bot.channels.fit import fit, split_text
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.models import ConversationKey, Inbound, RenderedButton
from bot.services import Services, build_services


class RecordingChannel(Channel):
    name = "test"
    rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self.sent: list[OutboundMessage] = []
        self.failures: list[SendError] = []  # raised, in order, before sends succeed

    def routes(self, app: web.Application) -> None:
        return None

    async def send(self, message: OutboundMessage) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return str(len(self.sent))


def inbound(chat: str, text: str, n: int) -> Inbound:
    return Inbound(
        ConversationKey("test", chat, chat), f"m{n}", "text", text=text,
        received_at=datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel(Capabilities(max_text=4096))


@pytest.fixture
async def running(
    settings: Settings, demo_nlu: Nlu, channel: RecordingChannel
) -> AsyncIterator[Services]:
    services = build_services(settings, nlu=demo_nlu)
    services.channels[channel.name] = channel
    await services.start()
    yield services
    await services.close()
    await services.store.close()


async def settle(services: Services) -> None:
    async with asyncio.timeout(20):
        await services.ingress.idle()
        await services.outbox.drain()


async def test_an_inbound_is_answered_through_the_channel(
    running: Services, channel: RecordingChannel
) -> None:
    assert await running.ingress.accept(
        inbound("c1", "тарифы в Чите", 1), scope="t", platform_id="1"
    )
    await settle(running)
    assert len(channel.sent) == 1
    assert "Тарифы в городе Чита" in channel.sent[0].text
    assert channel.sent[0].chat_id == "c1"
    transcript = await running.store.messages("test:c1:c1")
    assert [m.sender for m in transcript] == ["customer", "bot"]


async def test_a_redelivery_is_processed_once(running: Services, channel: RecordingChannel) -> None:
    first = await running.ingress.accept(inbound("c2", "привет", 1), scope="t", platform_id="42")
    again = await running.ingress.accept(inbound("c2", "привет", 1), scope="t", platform_id="42")
    await settle(running)
    assert (first, again) == (True, False)
    assert len(channel.sent) == 1
    assert len(await running.store.messages("test:c2:c2")) == 2


async def test_one_conversation_in_order_and_others_in_parallel(
    running: Services, channel: RecordingChannel
) -> None:
    cities = ["Чите", "Братске", "Иркутске", "Хабаровске"]
    for n, city in enumerate(cities):
        await running.ingress.accept(
            inbound("c3", f"тарифы в {city}", n), scope="t", platform_id=f"o{n}"
        )
        await running.ingress.accept(inbound("c4", "привет", n), scope="t", platform_id=f"p{n}")
    await settle(running)
    names = ("Чита", "Братск", "Иркутск", "Хабаровск")
    mine = [m.text for m in channel.sent if m.chat_id == "c3"]
    assert [next(c for c in names if c in text) for text in mine] == list(names)
    assert len([m for m in channel.sent if m.chat_id == "c4"]) == 4


async def test_inbound_recorded_before_a_crash_is_answered_after_restart(
    settings: Settings, demo_nlu: Nlu
) -> None:
    first = build_services(settings, nlu=demo_nlu)  # never started: the process "crashed"
    await first.ingress.accept(inbound("c5", "тарифы в Братске", 1), scope="t", platform_id="9")
    await first.ingress.close()
    await first.store.close()

    channel = RecordingChannel(Capabilities(max_text=4096))
    second = build_services(settings, nlu=demo_nlu)
    second.channels[channel.name] = channel
    await second.start()
    try:
        await settle(second)
        assert len(channel.sent) == 1
        assert "Братск" in channel.sent[0].text
        assert not await second.store.inbox_pending()
    finally:
        await second.close()
        await second.store.close()


async def test_replies_committed_before_a_crash_are_sent_once_after_restart(
    settings: Settings, demo_nlu: Nlu
) -> None:
    first = build_services(settings, nlu=demo_nlu)
    # Answer the inbound (turn committed with its replies in the outbox) but send nothing.
    await first.ingress.accept(inbound("c6", "привет", 1), scope="t", platform_id="10")
    async with asyncio.timeout(20):
        await first.ingress.idle()
    await first.close()
    await first.store.close()

    channel = RecordingChannel(Capabilities(max_text=4096))
    second = build_services(settings, nlu=demo_nlu)
    second.channels[channel.name] = channel
    await second.start()
    try:
        await settle(second)
        assert len(channel.sent) == 1
        assert len(await second.store.messages("test:c6:c6")) == 2  # not answered twice
    finally:
        await second.close()
        await second.store.close()


async def test_rate_limited_send_is_retried_after_the_platform_delay(
    running: Services, channel: RecordingChannel, settings: Settings
) -> None:
    channel.failures = [SendError("429 Too Many Requests", retry_after=0.05)]
    await running.ingress.accept(inbound("c7", "привет", 1), scope="t", platform_id="11")
    await settle(running)
    assert len(channel.sent) == 1
    db = sqlite3.connect(settings.sqlite_path)
    assert db.execute("SELECT status, attempts FROM outbox").fetchall() == [("sent", 1)]


async def test_a_reply_that_cannot_be_delivered_is_recorded_not_dropped(
    running: Services, channel: RecordingChannel, settings: Settings
) -> None:
    channel.failures = [SendError("403 Forbidden: bot was blocked by the user", permanent=True)]
    await running.ingress.accept(inbound("c8", "привет", 1), scope="t", platform_id="12")
    await settle(running)
    await running.ingress.accept(inbound("c8", "тарифы в Чите", 2), scope="t", platform_id="13")
    await settle(running)
    db = sqlite3.connect(settings.sqlite_path)
    rows = db.execute("SELECT status, last_error FROM outbox ORDER BY id").fetchall()
    assert rows[0] == ("failed", "403 Forbidden: bot was blocked by the user")
    assert rows[1][0] == "sent"
    assert len(channel.sent) == 1


def test_buttons_become_a_numbered_list_where_a_channel_has_none() -> None:
    caps = Capabilities(max_text=4096, buttons=False)
    buttons = (RenderedButton("Тарифы", "/tariffs"), RenderedButton("Офисы", "/offices"))
    [(text, shown)] = fit("Чем помочь?", buttons, caps)
    assert text == "Чем помочь?\n\n1. Тарифы\n2. Офисы"
    assert shown == ()


def test_too_many_buttons_spill_into_a_numbered_list() -> None:
    caps = Capabilities(max_text=4096, max_buttons=2, max_button_title=8)
    buttons = tuple(RenderedButton(f"Кнопка номер {n}", f"/b{n}") for n in range(1, 5))
    [(text, shown)] = fit("Выберите", buttons, caps)
    assert [b.title for b in shown] == ["Кнопка…", "Кнопка…"]
    assert text.endswith("3. Кнопка номер 3\n4. Кнопка номер 4")


def test_long_text_is_split_at_the_platform_limit_on_boundaries() -> None:
    paragraphs = [f"Абзац {n}: " + "слово " * 30 for n in range(10)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_text(text, 500)
    assert all(len(p) <= 500 for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())  # nothing lost
    assert all(p.startswith("Абзац") for p in parts)  # cut between paragraphs


def test_buttons_travel_with_the_last_part() -> None:
    caps = Capabilities(max_text=50)
    buttons = (RenderedButton("Да", "/yes"),)
    parts = fit("Первое предложение довольно длинное. Второе тоже длинное весьма.", buttons, caps)
    assert len(parts) == 2
    assert parts[0][1] == ()
    assert parts[1][1] == buttons
