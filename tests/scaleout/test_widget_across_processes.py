"""Widget replies across gateway processes (issue 11): the customer's tab is open on process B;
the reply is sent by process A (an operator answering through A, a turn A processed). Two
service sets on one real ``redis-server`` and one data directory stand for the two processes,
each served on its own port; the tab is a real WebSocket client of B."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from bot.channels.base import OutboundMessage
from bot.channels.widget import conversation_key
from bot.channels.widget_relay import push_channel
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.models import Conversation
from bot.services import Services, build_services
from bot.storage.base import TranscriptLine, TurnRecord
from tests.console_browser import serve

SESSION = "tabonprocessb0000001"
FRAME_LIMIT = 10.0  # ends as soon as the frame arrives; only stops a hang


@pytest.fixture
async def two_processes(
    redis_url: str, settings: Settings, demo_nlu: Nlu
) -> AsyncIterator[tuple[Services, Services, str]]:
    """Services A and B on one Redis and one var dir; yields them and B's base URL."""
    shared = replace(settings, redis_url=redis_url)
    a = build_services(shared, nlu=demo_nlu)
    b = build_services(shared, nlu=demo_nlu)
    try:
        async with serve(shared, b) as base_b:
            yield a, b, base_b
    finally:
        await a.close()
        await b.close()


async def _frame(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(FRAME_LIMIT):
        while True:
            frame: dict[str, Any] = json.loads((await ws.receive()).data)
            if frame["type"] == kind:
                return frame


async def _commit_and_send(services: Services, text: str) -> None:
    """What a process does with an operator's reply: commit it, then the outbox sends it."""
    conversation = Conversation(conversation_key(SESSION))
    line = TranscriptLine("operator", text)
    await services.store.commit_turn(TurnRecord(conversation, (line,), ()))
    message = OutboundMessage(SESSION, text, (), idempotency_key=f"test:{text}")
    await services.channels["widget"].send(message)


async def test_a_reply_sent_by_process_a_reaches_the_tab_open_on_process_b(
    two_processes: tuple[Services, Services, str],
) -> None:
    a, _b, base_b = two_processes
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base_b}/ws/widget?session={SESSION}") as tab,
    ):
        await tab.send_json({"type": "hello", "locale": "ru"})
        assert (await _frame(tab, "history"))["messages"] == []
        await _commit_and_send(a, "Здравствуйте, это Анна")
        reply = await _frame(tab, "reply")
        assert reply["message"]["text"] == "Здравствуйте, это Анна"
        assert reply["message"]["from"] == "operator"
        # Sent again (the outbox retrying after an uncertain send): not shown twice.
        await a.channels["widget"].send(OutboundMessage(SESSION, "", (), "again"))
        await _commit_and_send(a, "Чем помочь?")
        assert (await _frame(tab, "reply"))["message"]["text"] == "Чем помочь?"


async def test_a_reply_sent_while_no_tab_is_open_is_in_the_history_of_the_next_connect(
    two_processes: tuple[Services, Services, str], redis_url: str
) -> None:
    a, _b, base_b = two_processes
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{base_b}/ws/widget?session={SESSION}") as tab:
            await tab.send_json({"type": "hello", "locale": "ru"})
            await _frame(tab, "history")
        # The tab is gone: B stops listening for the session (nothing is kept for it).
        checker = a.redis
        assert checker is not None
        async with asyncio.timeout(FRAME_LIMIT):
            while (await checker.pubsub_numsub(push_channel(SESSION)))[0][1] != 0:
                await asyncio.sleep(0.05)
        await _commit_and_send(a, "Вы ещё здесь?")  # nobody listens: no error, nothing lost
        async with http.ws_connect(f"{base_b}/ws/widget?session={SESSION}") as tab:
            await tab.send_json({"type": "hello", "locale": "ru"})
            history = (await _frame(tab, "history"))["messages"]
    assert [m["text"] for m in history] == ["Вы ещё здесь?"]


async def test_the_session_id_is_not_spelled_out_in_redis(
    two_processes: tuple[Services, Services, str],
) -> None:
    a, _b, base_b = two_processes
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base_b}/ws/widget?session={SESSION}") as tab,
    ):
        await tab.send_json({"type": "hello", "locale": "ru"})
        await _frame(tab, "history")
        assert a.redis is not None
        channels = [c.decode() for c in await a.redis.pubsub_channels()]
    assert push_channel(SESSION) in channels
    assert not any(SESSION in c for c in channels)
