"""Several gateways on one Redis share the inbox: each message is answered once, in order per
conversation, whichever process took it; a process that dies mid-work is taken over.

Each "process" is a full ``build_services`` on the same REDIS_URL with its own Redis client
(its own connection pool) and var dir, as separate processes have. The channel is a small
recording implementation of our ``Channel`` interface, one per process, all writing to one
list: what the customers would see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from redis.asyncio import Redis

from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.models import ConversationKey, Inbound
from bot.services import Services, build_services
from tests.redis_server import needs_redis

pytestmark = needs_redis

TTL = 1.0  # BOT_CONVERSATION_LEASE_TTL in these tests: takeovers within seconds


class SharedChannel(Channel):
    """What every process sends lands in one list, as on one platform."""

    name = "test"
    rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)
    capabilities = Capabilities(max_text=4096)

    def __init__(self, seen: list[tuple[str, str]], process: int) -> None:
        self.seen = seen
        self.process = process
        self.by_process: list[OutboundMessage] = []

    def routes(self, app: web.Application) -> None:
        return None

    async def send(self, message: OutboundMessage) -> str | None:
        self.seen.append((message.chat_id, message.text))
        self.by_process.append(message)
        return str(len(self.seen))


def customer(chat: str, n: int) -> Inbound:
    # "тарифы в Чите" answers with the city's tariffs: one reply per message, and the
    # transcript shows which message each answer belongs to (the customer line comes first).
    return Inbound(
        ConversationKey("test", chat, chat), f"m{n}", "text", text=f"тарифы в Чите {n}",
        received_at=datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture
def make_process(
    tmp_path: Path, redis_url: str, demo_nlu: Nlu
) -> Callable[[int, list[tuple[str, str]]], Services]:
    def make(n: int, seen: list[tuple[str, str]]) -> Services:
        settings = replace(
            Settings(),
            var_dir=tmp_path / f"var-{n}",
            identity_secret="test-identity-secret",
            redis_url=redis_url,
            conversation_lease_ttl=TTL,
        )
        services = build_services(settings, nlu=demo_nlu)
        services.channels["test"] = SharedChannel(seen, n)
        return services

    return make


@pytest.fixture
async def processes(
    make_process: Callable[[int, list[tuple[str, str]]], Services],
) -> AsyncIterator[tuple[list[Services], list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    started = [make_process(n, seen) for n in range(3)]
    for services in started:
        await services.start()
    try:
        yield started, seen
    finally:
        for services in started:
            await services.close()


async def transcript_order(services: Services, chat: str) -> list[str]:
    """The customer's messages as the conversation recorded them, each followed by its answer."""
    lines = await services.store.messages(f"test:{chat}:{chat}")
    return [line.text for line in lines if line.sender == "customer"]


async def answered(services: Services, chats: list[str], per_chat: int) -> None:
    async with asyncio.timeout(60):
        while True:
            counts = [len(await transcript_order(services, chat)) for chat in chats]
            if all(c >= per_chat for c in counts) and not await services.store.inbox_pending():
                return
            await asyncio.sleep(0.05)


async def test_messages_taken_by_several_processes_are_answered_once_and_in_order(
    processes: tuple[list[Services], list[tuple[str, str]]],
) -> None:
    started, seen = processes
    chats = [f"c{i}" for i in range(12)]
    per_chat = 6
    platform_id = 0
    for n in range(per_chat):
        for chat in chats:
            platform_id += 1
            # The load balancer sends each delivery to whichever process: here, round robin.
            door = started[platform_id % len(started)]
            assert await door.ingress.accept(
                customer(chat, n), scope="t", platform_id=str(platform_id)
            )
    # A platform redelivery to another process is still one message.
    assert not await started[0].ingress.accept(customer("c0", 0), scope="t", platform_id="1")
    await answered(started[0], chats, per_chat)
    for services in started:
        async with asyncio.timeout(30):
            await services.outbox.drain()

    for chat in chats:
        assert await transcript_order(started[1], chat) == [
            f"тарифы в Чите {n}" for n in range(per_chat)
        ]
        replies = [text for to, text in seen if to == chat]
        assert len(replies) == per_chat  # one answer per message, none twice
    # The work was shared, not done by one process that happened to read everything.
    workers = [len(s.channels["test"].by_process) for s in started]  # type: ignore[attr-defined]
    assert sum(1 for w in workers if w) >= 2, workers


async def test_a_process_that_dies_mid_work_is_taken_over_and_nothing_is_answered_twice(
    make_process: Callable[[int, list[tuple[str, str]]], Services], redis_url: str
) -> None:
    seen: list[tuple[str, str]] = []
    doomed = make_process(0, seen)
    survivor = make_process(1, seen)
    chats = [f"d{i}" for i in range(5)]
    await doomed.start()
    # Stop the doomed one's work mid-turn without any goodbye: its turns hang in the dialog
    # (an engine step that never ends), holding the conversations' leases.
    stuck = asyncio.Event()

    async def hang(*args: object, **kwargs: object) -> None:
        stuck.set()
        await asyncio.Event().wait()

    doomed.gateway._engine.step = hang  # type: ignore[method-assign]
    for n in range(3):
        for chat in chats:
            assert await doomed.ingress.accept(
                customer(chat, n), scope="t", platform_id=f"{chat}-{n}"
            )
    async with asyncio.timeout(10):
        await stuck.wait()
    client = Redis.from_url(redis_url)
    try:
        pel = await pending_entries(client)
        assert pel > 0  # read by the doomed process, not acknowledged
        await die(doomed)  # SIGKILL: tasks gone, leases not released, entries not acked
        assert await pending_entries(client) == pel

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await survivor.start()
        await answered(survivor, chats, 3)
        took = loop.time() - killed_at
        async with asyncio.timeout(30):
            await survivor.outbox.drain()
        for chat in chats:
            assert await transcript_order(survivor, chat) == [
                f"тарифы в Чите {n}" for n in range(3)
            ]
            assert len([t for to, t in seen if to == chat]) == 3
        assert took >= TTL * 0.5  # it waited for the dead holder's leases
        # Taken over from the dead consumer's pending list, not found by luck.
        assert survivor.metrics.value("work_claimed_total", stream="inbox") > 0
        async with asyncio.timeout(10):  # and the dead consumer's entries were acknowledged
            while await pending_entries(client):
                await asyncio.sleep(0.1)
    finally:
        await client.aclose()
        await survivor.close()
        await doomed.close()  # what is left of it: nothing to hand over any more


async def pending_entries(client: Redis) -> int:
    total = 0
    for key in await client.keys("isp-bot:*:stream:inbox"):
        summary = await client.xpending(key, "workers")
        total += int(summary["pending"])
    return total


async def die(services: Services) -> None:
    """Like SIGKILL for this process's ingress and outbox: their tasks are cancelled where they
    are, and nothing is acknowledged, released or announced again (the leases stay until their
    ttl, the entries in the dead consumer's pending list)."""
    services.locks.leases._release = _never  # type: ignore[attr-defined]
    dispatcher = services.outbox._dispatcher
    if dispatcher is not None:
        dispatcher.cancel()
    for part in (services.ingress._stream, services.outbox._stream):
        assert part is not None
        part.leases._release = _never  # type: ignore[method-assign]
        await part._claimer.close()
        await part._sweeper.close()
        tasks = [part._reader, *(w.task for w in part._workers.values())]
        part._workers.clear()
        part._reader = None
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)


async def _never(*args: object, **kwargs: object) -> None:
    return None
