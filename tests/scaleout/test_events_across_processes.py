"""Console events across gateway processes (issue 11): two ``RedisEventHub`` instances, each
with its own client on one real ``redis-server``, stand for two processes. An event published
in one reaches a console subscribed in the other at once; a console that never reads does not
hold back publishing; the embedded ``EventHub`` stays what it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from bot.handoff.events import Event, EventHub
from bot.handoff.redis_events import RedisEventHub
from bot.storage.redis.client import connect
from tests.redis_server import RedisServer

ARRIVAL_LIMIT = 10.0  # ends as soon as the event arrives; only stops a hang


@pytest.fixture
async def two_hubs(redis_url: str) -> AsyncIterator[tuple[RedisEventHub, RedisEventHub]]:
    clients = [connect(redis_url), connect(redis_url)]
    hubs = (RedisEventHub(clients[0]), RedisEventHub(clients[1]))
    yield hubs
    for hub in hubs:
        await hub.close()
    for client in clients:
        await client.aclose()


async def _next(queue: asyncio.Queue[Event]) -> Event:
    async with asyncio.timeout(ARRIVAL_LIMIT):
        return await queue.get()


async def test_an_event_in_process_a_reaches_a_console_on_process_b(
    two_hubs: tuple[RedisEventHub, RedisEventHub],
) -> None:
    a, b = two_hubs
    async with b.subscribe() as console_on_b, a.subscribe() as console_on_a:
        message = {"type": "message", "conversation_id": "widget:x", "message": {"text": "Алло"}}
        a.publish(message)
        assert await _next(console_on_b) == message
        # A's own console got it once, directly; B's publishing reaches A the same way.
        assert await _next(console_on_a) == message
        b.publish({"type": "queue"})
        assert await _next(console_on_a) == {"type": "queue"}
        assert await _next(console_on_b) == {"type": "queue"}
        # Nothing came twice: a duplicate would arrive before the marker.
        a.publish({"type": "marker"})
        assert await _next(console_on_a) == {"type": "marker"}
        assert await _next(console_on_b) == {"type": "marker"}


async def test_events_keep_their_order_across_processes(
    two_hubs: tuple[RedisEventHub, RedisEventHub],
) -> None:
    a, b = two_hubs
    async with b.subscribe() as console_on_b:
        for n in range(50):
            a.publish({"type": "queue", "n": n})
        got = [(await _next(console_on_b))["n"] for _ in range(50)]
    assert got == list(range(50))


async def test_a_console_that_never_reads_does_not_hold_back_publishing(
    two_hubs: tuple[RedisEventHub, RedisEventHub],
) -> None:
    a, b = two_hubs
    async with AsyncExitStack() as stack:
        stuck = await stack.enter_async_context(b.subscribe())  # never read
        live = await stack.enter_async_context(b.subscribe())
        started = time.monotonic()
        for n in range(2000):  # ten times the backlog of a console
            a.publish({"type": "queue", "n": n})
        publishing = time.monotonic() - started
        # The live console on the same process still gets the newest events.
        seen: set[int] = set()
        async with asyncio.timeout(ARRIVAL_LIMIT):
            while 1999 not in seen:
                seen.add((await live.get())["n"])
        # The stuck one holds its backlog of the newest events, the oldest dropped.
        assert stuck.full()
        assert stuck.get_nowait()["n"] > 0
    # Publishing is a queue put: synchronous, never awaiting a console or Redis. Compared with
    # the embedded hub in the same run rather than against a fixed time.
    embedded = EventHub()
    async with embedded.subscribe():
        started = time.monotonic()
        for n in range(2000):
            embedded.publish({"type": "queue", "n": n})
        baseline = time.monotonic() - started
    assert publishing < max(1.0, baseline * 50)


async def test_a_redis_that_is_down_loses_remote_events_but_not_local_ones(
    own_redis: RedisServer,
) -> None:
    client = connect(own_redis.url)
    hub = RedisEventHub(client)
    try:
        async with hub.subscribe() as console:
            own_redis.stop()
            hub.publish({"type": "queue"})  # no exception, no wait
            assert await _next(console) == {"type": "queue"}
    finally:
        await hub.close()
        await client.aclose()
