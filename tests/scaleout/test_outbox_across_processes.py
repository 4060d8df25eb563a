"""Several outboxes on one Redis: each chat's replies are sent once, in order, by one process at
a time; a sender killed mid-send is taken over, and the message whose send has no recorded
outcome is sent again: with the same VK random_id (VK drops the copy), elsewhere counted as a
possible duplicate.

Each "process" is an ``Outbox`` with its own Redis client and work streams, all on one
``RedisStore``; the channels are small recording implementations of our ``Channel`` interface
(the VK adapter's random_id is computed from what it is handed, as bot/channels/vk.py does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from redis.asyncio import Redis

from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit
from bot.channels.vk import random_id
from bot.metrics import Metrics
from bot.models import Conversation, ConversationKey
from bot.outbox import Outbox
from bot.storage.base import TranscriptLine, TurnRecord
from bot.storage.redis.store import RedisStore
from bot.storage.redis.streams import WorkConfig
from tests.redis_server import needs_redis

pytestmark = needs_redis

TTL = 1.0


class Platform:
    """Every message any process handed over, as the platform saw it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, OutboundMessage]] = []  # (channel, chat, message)


class Recording(Channel):
    rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)
    capabilities = Capabilities(max_text=4096)

    def __init__(self, name: str, platform: Platform, *, hang: bool = False) -> None:
        self.name = name
        self.platform = platform
        self.hang = hang  # the platform takes the message, its answer never comes

    def routes(self, app: web.Application) -> None:
        return None

    async def send(self, message: OutboundMessage) -> str | None:
        self.platform.sent.append((self.name, message.chat_id, message))
        if self.hang:
            await asyncio.Event().wait()
        return str(len(self.platform.sent))


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    client = Redis.from_url(redis_url)
    built = RedisStore(client)
    try:
        yield built
    finally:
        await built.close()
        await client.aclose()


async def queue(store: RedisStore, channel: str, chat: str, *texts: str) -> None:
    key = ConversationKey(channel, chat, chat)
    await store.commit_turn(
        TurnRecord(
            conversation=Conversation(key=key),
            lines=tuple(TranscriptLine("bot", t) for t in texts),
            deliver=tuple(TranscriptLine("bot", t) for t in texts),
        )
    )


class Process:
    def __init__(self, redis_url: str, store: RedisStore, channels: list[Channel]) -> None:
        self.redis = Redis.from_url(redis_url)
        self.metrics = Metrics()
        self.work = WorkConfig(self.redis, lease_ttl=TTL, metrics=self.metrics)
        self.outbox = Outbox(
            store=store,
            channels={c.name: c for c in channels},
            metrics=self.metrics,
            work=self.work,
        )

    async def close(self) -> None:
        await self.outbox.close()
        await self.redis.aclose()

    async def die(self) -> None:
        """SIGKILL, as far as the outbox goes: tasks cancelled where they are; nothing recorded,
        released, acknowledged or announced again."""
        stream = self.outbox._stream
        assert stream is not None
        stream.leases._release = _never  # type: ignore[method-assign]
        await stream._claimer.close()
        await stream._sweeper.close()
        tasks = [
            self.outbox._dispatcher,
            stream._reader,
            *(w.task for w in stream._workers.values()),
        ]
        stream._workers.clear()
        stream._reader = None
        self.outbox._dispatcher = None
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)


async def _never(*args: object, **kwargs: object) -> None:
    return None


async def sent_all(store: RedisStore) -> None:
    async with asyncio.timeout(30):
        while await store.outbox_pending(limit=1):
            await asyncio.sleep(0.05)


async def test_replies_queued_anywhere_are_sent_once_and_in_order(
    redis_url: str, store: RedisStore
) -> None:
    platform = Platform()
    processes = [Process(redis_url, store, [Recording("test", platform)]) for _ in range(3)]
    for process in processes:
        await process.outbox.start()
    try:
        chats = [f"c{i}" for i in range(10)]
        for n in range(5):
            for i, chat in enumerate(chats):
                await queue(store, "test", chat, f"{chat} reply {n}")
                # The committing process announces; any process may send it.
                processes[(n + i) % 3].outbox.notify(f"test:{chat}:{chat}")
        await sent_all(store)
    finally:
        for process in processes:
            await process.close()
    for chat in chats:
        texts = [m.text for _, to, m in platform.sent if to == chat]
        assert texts == [f"{chat} reply {n}" for n in range(5)]
    assert all(p.metrics.value("outbox_uncertain_total", channel="test") == 0 for p in processes)


@pytest.mark.parametrize("channel", ["test", "vk"])
async def test_a_send_cut_off_by_a_dead_sender_is_sent_again_once_and_accounted(
    redis_url: str, store: RedisStore, channel: str
) -> None:
    platform = Platform()
    doomed = Process(redis_url, store, [Recording(channel, platform, hang=True)])
    survivor = Process(redis_url, store, [Recording(channel, platform)])
    await doomed.outbox.start()
    try:
        await queue(store, channel, "42", "first", "second")
        doomed.outbox.notify(f"{channel}:42:42")
        async with asyncio.timeout(10):
            while not platform.sent:  # the platform has "first"; the sender never hears back
                await asyncio.sleep(0.02)
        await doomed.die()
        [item, _] = await store.outbox_pending(conversation_id=f"{channel}:42:42")
        assert item.uncertain  # marked sending, no outcome recorded

        await survivor.outbox.start()
        await sent_all(store)
    finally:
        await survivor.close()
        await doomed.close()

    texts = [m.text for _, _, m in platform.sent]
    assert texts == ["first", "first", "second"]  # sent again, never dropped; order kept
    first, again = (m for _, _, m in platform.sent[:2])
    if channel == "vk":
        # The same random_id: VK drops the copy, the customer sees "first" once.
        assert random_id("42", first.idempotency_key) == random_id("42", again.idempotency_key)
        assert survivor.metrics.value("outbox_resent_idempotent_total", channel="vk") == 1
        assert survivor.metrics.value("outbox_uncertain_total", channel="vk") == 0
    else:
        # No platform key: a possible duplicate, counted (and logged by item id).
        assert survivor.metrics.value("outbox_uncertain_total", channel="test") == 1
    # Only the one message in flight at the kill is uncertain.
    assert survivor.metrics.value("outbox_sent_total", channel=channel) == 2
