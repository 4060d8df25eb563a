"""RedisLocks: the per-conversation lock several gateway processes share (each test client
stands for one process with its own connection pool)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.metrics import Metrics
from bot.storage.redis.locks import LOST_METRIC, LeaseLost, RedisLocks, fencing
from tests.redis_server import needs_redis

pytestmark = needs_redis

CONVERSATION = "telegram:100:100"


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[Redis]]:
    made = [Redis.from_url(redis_url) for _ in range(2)]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


async def test_two_processes_never_hold_one_conversation_at_once(clients: list[Redis]) -> None:
    first, second = (RedisLocks(client, ttl=5.0) for client in clients)
    inside = 0
    most = 0
    order: list[int] = []

    async def turn(locks: RedisLocks, n: int) -> None:
        nonlocal inside, most
        async with locks.hold(CONVERSATION):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)  # a turn's awaits: the other process gets every chance
            order.append(n)
            inside -= 1

    await asyncio.gather(*(turn(first if n % 2 else second, n) for n in range(20)))
    assert most == 1
    assert sorted(order) == list(range(20))
    # Other conversations are not held up by this one.
    async with first.hold(CONVERSATION), second.hold("telegram:200:200"):
        pass


async def test_a_dead_holder_is_taken_over_after_the_ttl(clients: list[Redis]) -> None:
    dead, alive = (RedisLocks(client, ttl=1.0) for client in clients)
    key = dead.leases.key(CONVERSATION)
    # The "dead" process took the lease and never renews or releases it (SIGKILL).
    await clients[0].set(key, "dead-token", px=1000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with alive.hold(CONVERSATION):
        waited = loop.time() - started
        assert await clients[1].get(key) != b"dead-token"
    assert 0.5 < waited < 3.0  # not before the dead holder's lease ran out, and soon after
    assert await clients[1].get(key) is None  # released on the way out


async def test_a_holder_that_loses_its_lease_is_stopped_before_committing(
    clients: list[Redis],
) -> None:
    metrics = Metrics()
    locks = RedisLocks(clients[0], ttl=0.6, metrics=metrics)
    other = RedisLocks(clients[1], ttl=5.0)
    committed: list[str] = []
    key = locks.leases.key(CONVERSATION)

    async def turn() -> None:
        async with locks.hold(CONVERSATION):
            assert fencing(CONVERSATION) is not None
            # Another process overwrote it (say the holder stalled past the ttl and the lease
            # was taken): the next renewal finds a foreign token.
            await clients[1].set(key, "someone-else")
            await asyncio.sleep(2.0)  # the turn's slow work; it must not get past this
            committed.append("turn")

    with pytest.raises(LeaseLost):
        await turn()
    assert committed == []
    assert metrics.value(LOST_METRIC, lease="turn") == 1
    assert fencing(CONVERSATION) is None
    # The foreign holder's key was left alone (compare-and-delete).
    assert await clients[1].get(key) == b"someone-else"
    await clients[1].delete(key)
    async with other.hold(CONVERSATION):  # and the conversation is free for others again
        pass


async def test_a_holder_cancelled_from_outside_hands_over_at_once(clients: list[Redis]) -> None:
    first, second = (RedisLocks(client, ttl=30.0) for client in clients)
    entered = asyncio.Event()

    async def long_turn() -> None:
        async with first.hold(CONVERSATION):
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(long_turn())
    await entered.wait()
    task.cancel()  # a shutdown cancels the turn: not a lost lease, a release
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(2.0):  # far less than the 30 s ttl
        async with second.hold(CONVERSATION):
            pass
