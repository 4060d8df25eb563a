"""Long polling in exactly one process at a time (issue 11): a lease on Redis (bot/leases.py).

The lease itself against a real ``redis-server``: compare-and-set renewal and release never touch
another holder's lease, and a holder whose lease is taken or whose Redis is gone stops its work.
Then two real gateways (``python -m bot run`` subprocesses) on one Redis, both with
``TELEGRAM_POLLING=1`` against one fake Telegram: each process reaches the fake under its own path
prefix (``TELEGRAM_API_BASE=<fake>/a`` and ``/b``), so the fake's calls say which process made them.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from bot.leases import KEY_PREFIX, Lease, Leases, token_id
from bot.metrics import Metrics
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import text_update as update
from tests.gateway_process import free_port, start_gateway
from tests.redis_server import RedisServer

TOKEN = "123456:TEST-token"
TTL = 3.0  # short, so that a SIGKILL's takeover is quick; production default 15 s
RETRY = TTL / 5  # what bot/leases.py derives from the ttl
# Bounds for waits that end as soon as the awaited thing happens; they only stop a hang.
TAKEOVER_LIMIT = TTL + RETRY + 10.0
ANSWER_LIMIT = 30.0


# --- the lease on its own --------------------------------------------------------------------
async def _client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


async def test_renew_and_release_leave_another_holders_lease_alone(redis_url: str) -> None:
    client = await _client(redis_url)
    try:
        first = Lease("test:cas", redis=client, ttl=5.0)
        second = Lease("test:cas", redis=client, ttl=5.0)
        assert await first.acquire()
        assert not await second.acquire()  # NX: one holder
        mine = await client.get(first.key)

        # The first holder's lease "expires" and the second takes it (as after a long pause).
        await client.delete(first.key)
        assert await second.acquire()
        theirs = await client.get(second.key)
        assert theirs != mine

        assert not await first.renew()  # compare-and-set: not ours any more
        await first.release()
        assert await client.get(second.key) == theirs  # untouched by the stale holder
        assert await client.pttl(second.key) > 0

        assert await second.renew()
        await second.release()
        assert await client.get(second.key) is None
    finally:
        await client.aclose()


async def test_the_key_names_the_bot_not_its_token() -> None:
    leases = Leases(None)
    lease = leases.lease(f"telegram-polling:{token_id(TOKEN)}", channel="telegram")
    assert lease.key == KEY_PREFIX + "telegram-polling:123456"
    assert "TEST-token" not in lease.key
    assert (
        "secret"
        not in Leases(None)
        .lease(f"telegram-polling:{token_id('secret-without-id')}", channel="telegram")
        .key
    )
    # Without Redis: one process, the lease is always there.
    assert await lease.acquire()
    assert await lease.renew()


async def _run_until_stopped(lease: Lease, started: asyncio.Event) -> asyncio.Task[None]:
    async def work() -> None:
        started.set()
        await asyncio.Event().wait()  # polls forever, like the real loops

    holder = asyncio.create_task(lease.hold(work))
    async with asyncio.timeout(10):
        await started.wait()
    return holder


def _held(metrics: Metrics, channel: str) -> float:
    prefix = f'isp_bot_polling_lease_held{{channel="{channel}"}} '
    lines = [line for line in metrics.render().splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, metrics.render()
    return float(lines[0].removeprefix(prefix))


async def test_a_holder_whose_lease_is_taken_stops_its_work(redis_url: str) -> None:
    client = await _client(redis_url)
    metrics = Metrics()
    try:
        lease = Lease("test:taken", redis=client, ttl=1.5, metrics=metrics, channel="test")
        started = asyncio.Event()
        holder = await _run_until_stopped(lease, started)
        assert _held(metrics, "test") == 1.0
        started.clear()
        await client.set(lease.key, "someone-else", px=60_000)  # another process holds it now
        async with asyncio.timeout(10):  # the next renewal (ttl/3) finds the foreign token
            while lease.held:
                await asyncio.sleep(0.05)
        assert _held(metrics, "test") == 0.0
        assert not started.is_set()  # waiting, not working, while the other holds it
        assert await client.get(lease.key) == b"someone-else"
        await client.delete(lease.key)  # the other goes away: this one takes over
        async with asyncio.timeout(10):
            await started.wait()
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        assert await client.get(lease.key) is None  # a clean stop releases at once
    finally:
        await client.aclose()


async def test_a_holder_that_cannot_reach_redis_stops_when_its_lease_runs_out(
    own_redis: RedisServer,
) -> None:
    client = await _client(own_redis.url)
    try:
        lease = Lease("test:unreachable", redis=client, ttl=1.5)
        holder = await _run_until_stopped(lease, asyncio.Event())
        own_redis.stop()
        async with asyncio.timeout(10):  # renewals fail until the lease runs out
            while lease.held:
                await asyncio.sleep(0.05)
        assert not holder.done()  # it keeps trying to get the lease back
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
    finally:
        await client.aclose()


# --- two gateway processes on one Redis --------------------------------------------------------
@dataclass
class Process:
    name: str  # its path prefix at the fake Telegram
    var_dir: Path
    api_base: str
    redis_url: str
    log: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        settings = {
            "BOT_VAR_DIR": str(self.var_dir),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_POLLING": "1",
            "TELEGRAM_API_BASE": self.api_base,
            "REDIS_URL": self.redis_url,
            "BOT_POLLING_LEASE_TTL": str(TTL),
            "BOT_SHUTDOWN_TIMEOUT": "5",
        }
        self.process = await start_gateway(
            http, port=self.port, settings=settings, log=self.log, name=self.name
        )

    async def held(self, http: aiohttp.ClientSession) -> float:
        async with http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
            for line in (await resp.text()).splitlines():
                if line.startswith('isp_bot_polling_lease_held{channel="telegram"}'):
                    return float(line.rsplit(" ", 1)[1])
        raise AssertionError("no polling_lease_held on /metrics")

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Pair:
    fake: FakeTelegram
    polls: Counter[str]  # getUpdates calls by process
    first_poll: dict[str, float]  # process -> monotonic time of its first getUpdates
    a: Process
    b: Process
    http: aiohttp.ClientSession

    async def answered(self, chats: range) -> None:
        async with asyncio.timeout(ANSWER_LIMIT):
            while not set(chats) <= {int(s["chat_id"]) for s in self.fake.sent()}:
                await asyncio.sleep(0.05)
            while self.fake.updates:  # and confirmed to Telegram by the next getUpdates
                await asyncio.sleep(0.05)

    async def polled_by(self, name: str, since: float) -> float:
        async with asyncio.timeout(TAKEOVER_LIMIT):
            while name not in self.first_poll or self.first_poll[name] < since:
                await asyncio.sleep(0.02)
        return self.first_poll[name] - since


@pytest.fixture
async def pair(aiohttp_server: Any, tmp_path: Path, redis_url: str) -> AsyncIterator[Pair]:
    fake = FakeTelegram(token=TOKEN)
    polls: Counter[str] = Counter()
    first_poll: dict[str, float] = {}

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.endswith("/getUpdates"):
            name = request.path.split("/")[1]
            polls[name] += 1
            first_poll.setdefault(name, time.monotonic())
        return await handler(request)  # type: ignore[no-any-return]

    app = web.Application(middlewares=[count])
    app.add_subapp("/a/", fake.app())
    app.add_subapp("/b/", fake.app())
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    a, b = (
        Process(n, tmp_path / f"var-{n}", f"{base}/{n}", redis_url, tmp_path / f"{n}.err")
        for n in ("a", "b")
    )
    async with aiohttp.ClientSession() as http:
        try:
            yield Pair(fake, polls, first_poll, a, b, http)
        finally:
            for process in (a, b):
                process.kill()
                if process.process is not None:
                    await process.process.wait()


def _sends_by_chat(fake: FakeTelegram) -> Counter[int]:
    return Counter(int(s["chat_id"]) for s in fake.sent())


async def test_one_process_polls_and_another_takes_over_when_it_dies(pair: Pair) -> None:
    await pair.a.start(pair.http)
    await pair.polled_by("a", 0.0)  # a holds the lease
    await pair.b.start(pair.http)
    # b has tried (it tries at start and every RETRY) and waits; a keeps polling meanwhile.
    await asyncio.sleep(RETRY * 3)
    assert pair.polls["b"] == 0
    assert await pair.a.held(pair.http) == 1.0
    assert await pair.b.held(pair.http) == 0.0

    first = range(8101, 8106)
    pair.fake.push(*(update(100 + n, chat, "привет") for n, chat in enumerate(first)))
    await pair.answered(first)
    assert pair.polls["b"] == 0
    per_answer = _sends_by_chat(pair.fake)[first[0]]
    assert set(_sends_by_chat(pair.fake).values()) == {per_answer}  # every chat answered once

    # SIGKILL: nothing released; b polls once the key expires (ttl) at its next retry.
    killed = time.monotonic()
    pair.a.kill()
    second = range(8201, 8204)
    pair.fake.push(*(update(200 + n, chat, "привет") for n, chat in enumerate(second)))
    takeover = await pair.polled_by("b", killed)
    await pair.answered(second)
    sends = _sends_by_chat(pair.fake)
    assert all(sends[chat] == per_answer for chat in (*first, *second)), sends
    assert takeover <= TTL + RETRY + 2.0, takeover  # a bound on a hang, not a speed test
    print(f"\ntakeover after SIGKILL: {takeover:.2f} s (ttl {TTL} s, retry {RETRY} s)")

    # A clean stop releases at once: the restarted a takes over within one retry, not a ttl.
    assert pair.a.process is not None
    await pair.a.process.wait()
    pair.first_poll.pop("a")
    await pair.a.start(pair.http)
    assert pair.b.process is not None
    stopped = time.monotonic()
    pair.b.process.send_signal(signal.SIGTERM)
    assert await pair.b.process.wait() == 0, pair.b.logs()
    handover = await pair.polled_by("a", stopped)
    third = range(8301, 8303)
    pair.fake.push(*(update(300 + n, chat, "привет") for n, chat in enumerate(third)))
    await pair.answered(third)
    sends = _sends_by_chat(pair.fake)
    assert all(sends[chat] == per_answer for chat in (*first, *second, *third)), sends
    print(f"handover after SIGTERM: {handover:.2f} s")

    logs = pair.a.logs() + pair.b.logs()
    assert "lease isp-bot:lease:telegram-polling:123456: taken by this process" in pair.b.logs()
    assert "telegram-polling:123456: released" in pair.b.logs()
    assert "TEST-token" not in logs


# --- VK Bots Long Poll: the same lease, in-process ----------------------------------------------
async def test_vk_long_poll_runs_in_the_lease_holder_only(
    aiohttp_server: Any, settings: Any, demo_nlu: Any, redis_url: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    from bot.channels.base import RateLimit
    from bot.channels.vk import VkChannel
    from bot.services import build_services
    from tests.channels.test_vk import GROUP_ID, message_new
    from tests.fakes.vk import FakeVk

    fake = FakeVk(group_id=GROUP_ID)
    server = await aiohttp_server(fake.app())
    client = await _client(redis_url)
    built = []
    try:
        for name in ("a", "b"):
            vk_settings = replace(
                settings,
                var_dir=tmp_path / f"vk-{name}",
                vk_group_token=fake.token,
                vk_group_id=GROUP_ID,
                vk_api_base=str(server.make_url("/method")),
                vk_longpoll=True,
            )
            services = build_services(vk_settings, nlu=demo_nlu)
            lease = Lease(f"vk-longpoll:{GROUP_ID}", redis=client, ttl=TTL)
            channel = VkChannel(
                settings=vk_settings, ingress=services.ingress, store=services.store,
                longpoll_wait=1, lease=lease,
            )  # fmt: skip
            channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # type: ignore[misc]
            services.channels[channel.name] = channel
            await services.start()
            built.append((services, channel, lease))
        (_, a_vk, a_lease), (_, b_vk, b_lease) = built
        async with asyncio.timeout(10):
            while not fake.lp_checks:
                await asyncio.sleep(0.02)
        await asyncio.sleep(RETRY * 3)  # b has tried meanwhile
        assert a_lease.held != b_lease.held
        holder = a_vk if a_lease.held else b_vk
        assert len(fake.calls_of("groups.getLongPollServer")) == 1  # one process polls

        fake.push(message_new("привет", event_id="lease-1", peer=301))
        async with asyncio.timeout(ANSWER_LIMIT):
            while not fake.sent_to(301):
                await asyncio.sleep(0.05)
        answered = len(fake.sent_to(301))

        await holder.stop_intake()  # a clean stop: released, the other takes over
        async with asyncio.timeout(TAKEOVER_LIMIT):
            while len(fake.calls_of("groups.getLongPollServer")) < 2:
                await asyncio.sleep(0.02)
        fake.push(message_new("привет", event_id="lease-2", peer=302))
        async with asyncio.timeout(ANSWER_LIMIT):
            while len(fake.sent_to(302)) < answered:
                await asyncio.sleep(0.05)
        await asyncio.sleep(RETRY)
        assert len(fake.sent_to(301)) == answered  # not answered again by the new holder
        assert len(fake.sent_to(302)) == answered
    finally:
        for services, _, _ in built:
            await services.close()
        await client.aclose()
