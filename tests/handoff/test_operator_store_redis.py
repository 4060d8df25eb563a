"""Operators on Redis across processes: two clients stand for two gateway processes sharing one
Redis. A session ended through one is refused through the other at once, login failures count
across both, and a Redis that is gone is a ``StoreUnavailable`` the store's health hears of.
(The store's behaviour itself runs on both backends in tests/handoff/test_auth.py.)"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.handoff.operators import LoginThrottled, Operator, token_digest
from bot.handoff.redis_operators import RedisOperatorStore
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.redis.client import connect
from tests.conftest import ROOT
from tests.redis_server import RedisServer

PASSWORD = "correct horse battery"
WRONG = "another long secret"
IVAN = Operator("ivan", "Иван Петров", ("billing",), 3)
PATIENCE = 10.0  # seconds: only stops a broken test from hanging; a message arrives in ms


def NOW() -> float:  # a clock that stands still
    return 1_800_000_000.0


@pytest.fixture
async def two(redis_url: str) -> AsyncIterator[tuple[RedisOperatorStore, RedisOperatorStore]]:
    """The same accounts as two processes see them: two clients, two stores. Their clock
    stands still, so no wait can run out during a test however slow the machine is."""
    first, second = connect(redis_url), connect(redis_url)
    yield RedisOperatorStore(first, clock=NOW), RedisOperatorStore(second, clock=NOW)
    await first.aclose()
    await second.aclose()


Ending = Callable[[RedisOperatorStore, str], Awaitable[object]]


@pytest.mark.parametrize(
    "end",
    [
        lambda store, token: store.delete_session(token),
        lambda store, token: store.delete_sessions("ivan"),
        lambda store, token: store.disable("ivan"),
        lambda store, token: store.remove("ivan"),
        lambda store, token: store.set_password("ivan", WRONG),
    ],
    ids=["logout", "end_all", "disable", "remove", "new_password"],
)
async def test_a_session_ended_in_one_process_is_refused_in_the_other_at_once(
    two: tuple[RedisOperatorStore, RedisOperatorStore], end: Ending
) -> None:
    here, there = two
    await here.add(IVAN, PASSWORD)
    token, csrf = await here.create_session("ivan")
    assert await there.session(token) == (IVAN, csrf)  # valid everywhere at once
    await end(here, token)
    assert await there.session(token) is None
    assert await there.session(token, touch=False) is None


async def test_failures_count_across_processes(
    two: tuple[RedisOperatorStore, RedisOperatorStore],
) -> None:
    here, there = two
    await here.add(IVAN, PASSWORD)
    for store in (here, there, here):  # three free failures, wherever they happen
        assert await store.verify("ivan", WRONG, ip="10.0.0.1") is None
    for store in (here, there):
        with pytest.raises(LoginThrottled):
            await store.verify("ivan", PASSWORD, ip="10.0.0.1")
    # … and a success in one process forgets that address's failures in both.
    assert await there.verify("ivan", PASSWORD, ip="10.0.0.2") == IVAN


async def test_parallel_guesses_through_two_processes_cannot_pass_the_limit(
    two: tuple[RedisOperatorStore, RedisOperatorStore],
) -> None:
    here, there = two
    await here.add(IVAN, PASSWORD)
    results = await asyncio.gather(
        *(store.verify("ivan", WRONG, ip="10.0.0.1") for store in (here, there) * 5),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 3, results
    assert sum(isinstance(r, LoginThrottled) for r in results) == 7


async def test_redis_gone_is_store_unavailable_and_reported(own_redis: RedisServer) -> None:
    client = connect(own_redis.url)
    health = StoreHealth()
    store = RedisOperatorStore(client, health=health)
    try:
        await store.add(IVAN, PASSWORD)
        token, _ = await store.create_session("ivan")
        own_redis.stop()
        with pytest.raises(StoreUnavailable) as failed:
            await store.session(token)
        assert failed.value.op == "session"
        assert token not in str(failed.value)
        with pytest.raises(StoreUnavailable):
            await store.verify("ivan", PASSWORD, ip="10.0.0.1")
        assert health.failing
    finally:
        await client.aclose()


async def _cli(redis_url: str, var: Path, *argv: str, stdin: str = "") -> str:
    env = {**os.environ, "BOT_VAR_DIR": str(var), "REDIS_URL": redis_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "operators", *argv,
        cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(stdin.encode())
    assert process.returncode == 0, (out, err)
    return out.decode()


async def test_the_operators_commands_work_on_the_gateways_redis(
    redis_url: str, tmp_path: Path
) -> None:
    """``python -m bot operators …`` with REDIS_URL (a real process) changes the accounts every
    gateway process reads: an account added there logs in here; disabled there, its session
    here is refused at once."""
    var = tmp_path / "var"
    await _cli(redis_url, var, "add", "olga", "--name", "Ольга", stdin=PASSWORD + "\n")
    client = connect(redis_url)
    try:
        gateway = RedisOperatorStore(client)
        olga = await gateway.verify("olga", PASSWORD, ip="10.0.0.1")
        assert olga == Operator("olga", "Ольга")
        token, _ = await gateway.create_session("olga")
        assert '"login": "olga"' in await _cli(redis_url, var, "list", "--json")
        await _cli(redis_url, var, "disable", "olga")
        assert await gateway.session(token) is None
        await _cli(redis_url, var, "enable", "olga")
        await _cli(redis_url, var, "passwd", "olga", stdin=WRONG + "\n")
        assert await gateway.verify("olga", WRONG, ip="10.0.0.1") == olga
        await _cli(redis_url, var, "remove", "olga")
        assert await gateway.get("olga") is None
    finally:
        await client.aclose()
    assert not (var / "operators.sqlite3").exists()  # nothing went to the embedded file


Heard = list[tuple[str | None, str | None]]


async def _hear(store: RedisOperatorStore) -> tuple[Heard, asyncio.Event]:
    heard: Heard = []
    arrived = asyncio.Event()

    def listener(login: str | None, digest: str | None) -> None:
        heard.append((login, digest))
        arrived.set()

    store.on_sessions_ended(listener)
    await store.listen()
    return heard, arrived


async def test_sessions_ended_in_another_process_are_heard_at_once(
    two: tuple[RedisOperatorStore, RedisOperatorStore],
) -> None:
    """What closes the console sockets of the other processes without waiting for their
    periodic re-check: the listeners there are told, with the token's digest, never the token."""
    here, there = two
    heard, arrived = await _hear(there)
    mine, _ = await _hear(here)
    await here.add(IVAN, PASSWORD)
    token, _ = await here.create_session("ivan")
    await here.delete_session(token)
    async with asyncio.timeout(PATIENCE):
        await arrived.wait()
    assert heard == [(None, token_digest(token))]
    assert mine == [(None, token_digest(token))]  # told once, locally, not again via Redis
    arrived.clear()
    await here.disable("ivan")
    async with asyncio.timeout(PATIENCE):
        await arrived.wait()
    assert heard[-1] == ("ivan", None)
    assert mine == [(None, token_digest(token)), ("ivan", None)]  # never echoed back
    await there.close()
    await here.close()


async def test_the_cli_in_another_process_is_heard_at_once(redis_url: str, tmp_path: Path) -> None:
    client = connect(redis_url)
    gateway = RedisOperatorStore(client)
    try:
        heard, arrived = await _hear(gateway)
        await gateway.add(IVAN, PASSWORD)
        await _cli(redis_url, tmp_path / "var", "disable", "ivan")
        async with asyncio.timeout(PATIENCE):
            await arrived.wait()
        assert heard == [("ivan", None)]
    finally:
        await gateway.close()
        await client.aclose()
