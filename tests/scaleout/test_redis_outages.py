"""Redis outages under a real gateway process on REDIS_URL: what Telegram and the customers see.

A private ``redis-server`` with the append-only file on (``durable_redis``: the settings
docs/deploy.md asks for), a real ``python -m bot run`` on it, the fake Bot API
(``tests/fakes/telegram.py``) and this test playing Telegram's webhook delivery: signed updates,
and every update not answered 200 delivered again later, as Telegram does.

Each message is a chat of its own asking for the tariffs of a city, so "answered" is one
``Тарифы в городе …`` reply in that chat, and "twice" is two.

- (a) Redis stopped mid-load: webhooks answer 503 while it is down (never 200 for a message
  that was not recorded), ``/healthz`` fails, ``/metrics`` shows ``store_failing 1``; once it is
  back every acknowledged message is answered, none twice, and the refused ones after Telegram's
  redelivery.
- (b) Redis killed (SIGKILL) and restarted with its AOF, the gateway killed too: what was
  acknowledged is answered by a fresh process, once.
- (c) Redis out of memory (``maxmemory`` + ``noeviction``): webhooks 503, nothing acknowledged
  lost, all answered once the memory is raised.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.channels.telegram import SECRET_HEADER
from bot.storage.health import FORGET_AFTER_SECONDS
from tests.fakes.telegram import FakeTelegram, text_update
from tests.gateway_process import free_port, start_gateway
from tests.redis_server import RedisServer, durable_redis, needs_redis  # noqa: F401  (fixture)

pytestmark = needs_redis

TOKEN = "123456:OUTAGE-token"
SECRET = "outage-webhook-secret"
REPLY = re.compile(r"Тарифы в городе (\S+?):")
QUESTION = "Какие тарифы в Братске?"
LIMIT = 90.0  # seconds: bounds a hang (store health forgets a stray failure after 60 s)
SETTLE = 2.0  # after the last expected reply: a duplicate would arrive now


class SendHold:
    """The fake's ``sendMessage`` held while ``holding``; on ``release`` the held calls are
    turned away unrecorded (502), as if they had never reached Telegram."""

    def __init__(self) -> None:
        self.holding = False
        self._held: list[asyncio.Future[None]] = []

    def release(self) -> None:
        self.holding = False
        for waiting in self._held:
            if not waiting.done():
                waiting.set_result(None)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.holding and request.match_info.get("method") == "sendMessage":
            waiting = asyncio.get_running_loop().create_future()
            self._held.append(waiting)
            await waiting
            return web.Response(status=502)
        return await handler(request)  # type: ignore[no-any-return]


@dataclass
class Rig:
    http: aiohttp.ClientSession
    fake: FakeTelegram
    hold: SendHold
    redis: RedisServer
    settings: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    next_update: int = 5000
    statuses: dict[int, list[int | None]] = field(default_factory=dict)  # chat -> answers

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def start(self) -> None:
        self.process = await start_gateway(
            self.http, port=self.port, settings=self.settings, log=self.log, name="gateway"
        )

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def post(self, chat_id: int) -> int | None:
        """Deliver chat ``chat_id``'s one message (its update id is the chat id: a redelivery
        is the same update); the status, or None when the connection failed."""
        body = json.dumps(text_update(chat_id, chat_id, QUESTION))
        try:
            async with self.http.post(
                self.base + "/webhooks/telegram",
                data=body,
                headers={SECRET_HEADER: SECRET},
                timeout=aiohttp.ClientTimeout(total=15),
            ) as resp:
                status: int | None = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.statuses.setdefault(chat_id, []).append(status)
        return status

    def new_chat(self) -> int:
        self.next_update += 1
        return self.next_update

    def acknowledged(self) -> set[int]:
        return {chat for chat, answers in self.statuses.items() if 200 in answers}

    def refused(self) -> set[int]:
        return set(self.statuses) - self.acknowledged()

    async def redeliver_refused(self) -> None:
        """Telegram's side: every update not yet acknowledged, again, until it is."""
        async with asyncio.timeout(LIMIT):
            while waiting := self.refused():
                for chat in sorted(waiting):
                    await self.post(chat)
                if self.refused():
                    await asyncio.sleep(0.5)

    def replies(self, chat_id: int) -> int:
        return sum(1 for call in self.fake.sent(chat_id) if REPLY.search(str(call.get("text"))))

    async def all_answered_once(self, chats: set[int]) -> None:
        async with asyncio.timeout(LIMIT):
            while any(self.replies(chat) == 0 for chat in chats):
                await asyncio.sleep(0.2)
        await asyncio.sleep(SETTLE)
        counts = {chat: self.replies(chat) for chat in chats}
        assert {chat: n for chat, n in counts.items() if n != 1} == {}, self.logs()[-3000:]

    async def health(self) -> int:
        async with self.http.get(self.base + "/healthz") as resp:
            return resp.status

    async def metric(self, name: str) -> float:
        async with self.http.get(self.base + "/metrics") as resp:
            text = await resp.text()
            assert resp.status == 200, (resp.status, text[:500])  # the operator's eyes on it
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(f"isp_bot_{name}") and not line.startswith("#")
        ]
        assert values, f"no {name} on /metrics"
        return sum(values)

    async def wait_health(self, status: int) -> None:
        async with asyncio.timeout(LIMIT):
            while await self.health() != status:
                await asyncio.sleep(0.1)


@pytest.fixture
async def rig(tmp_path: Path, durable_redis: RedisServer) -> AsyncIterator[Rig]:  # noqa: F811
    fake = FakeTelegram(token=TOKEN, poll_wait=0.2)
    hold = SendHold()
    app = fake.app()
    app.middlewares.append(hold.middleware)
    runner = web.AppRunner(app)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    settings = {
        "BOT_VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": durable_redis.url,
        "BOT_IDENTITY_SECRET": "test-identity-secret",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": f"http://127.0.0.1:{fake_port}",
        "BOT_POLLING_LEASE_TTL": "3",
        "BOT_CONVERSATION_LEASE_TTL": "3",
        "BOT_SHUTDOWN_TIMEOUT": "5",
    }
    async with aiohttp.ClientSession() as http:
        rig = Rig(http, fake, hold, durable_redis, settings, tmp_path / "gateway.log")
        try:
            await rig.start()
            yield rig
        finally:
            hold.release()
            rig.kill()
            if rig.process is not None:
                await rig.process.wait()
            await runner.cleanup()


async def _load(rig: Rig, stop: asyncio.Event) -> None:
    """New chats one after another until ``stop``: Telegram under steady traffic."""
    while not stop.is_set():
        await rig.post(rig.new_chat())
        await asyncio.sleep(0.01)


async def test_redis_stopped_mid_load_refuses_webhooks_and_loses_nothing(rig: Rig) -> None:
    before = {rig.new_chat() for _ in range(3)}
    for chat in before:
        assert await rig.post(chat) == 200
    await rig.all_answered_once(before)

    stop = asyncio.Event()
    load = asyncio.create_task(_load(rig, stop))
    await asyncio.sleep(0.5)
    rig.redis.stop()  # mid-load: updates are arriving and being answered
    try:
        await rig.wait_health(503)
        assert await rig.metric("store_failing") == 1
        down = [rig.new_chat() for _ in range(5)]
        for chat in down:  # the store cannot record them: Telegram must keep them
            assert await rig.post(chat) == 503
    finally:
        stop.set()
        await load
    answers = {status for statuses in rig.statuses.values() for status in statuses}
    assert answers <= {200, 503}, answers  # never a 500, never a dropped connection

    rig.redis.restart()  # same port, same AOF
    back = time.monotonic()
    await rig.wait_health(200)
    healthy_after = time.monotonic() - back
    # Healthy again because calls get through, not because the failures of the outage were
    # forgotten (FORGET_AFTER_SECONDS): a load balancer must not keep every process out of
    # rotation for a minute after a Redis blip.
    assert healthy_after < FORGET_AFTER_SECONDS / 2
    assert await rig.metric("store_failing") == 0
    acknowledged_while_up = rig.acknowledged()
    await rig.redeliver_refused()
    await rig.all_answered_once(set(rig.statuses))
    print(
        f"redis stopped: {len(acknowledged_while_up)} acknowledged, "
        f"{sum(s.count(503) for s in rig.statuses.values())} refused with 503 then redelivered, "
        f"{len(rig.statuses)} chats answered once each; /healthz 200 again "
        f"{healthy_after:.1f} s after Redis"
    )


async def test_acknowledged_work_survives_a_redis_crash_with_aof(rig: Rig) -> None:
    # Replies are held at Telegram, so they are still queued (in Redis) at the crash.
    rig.hold.holding = True
    chats = {rig.new_chat() for _ in range(10)}
    for chat in chats:
        assert await rig.post(chat) == 200
    await asyncio.sleep(1.0)  # turns run; replies wait in the outbox
    rig.kill()  # nothing of this process's memory may help below
    assert rig.process is not None
    await rig.process.wait()
    rig.redis.crash()  # SIGKILL: no shutdown save; only the AOF is left
    rig.hold.release()  # the held sends never reached Telegram
    assert rig.fake.sent() == []

    rig.redis.restart()
    with rig.redis.client() as direct:
        assert direct.dbsize() > 0  # the AOF was loaded
    await rig.start()  # a fresh process: all it knows comes from Redis
    await rig.all_answered_once(chats)
    print(f"redis crash + gateway kill: {len(chats)} acknowledged messages answered once each")


async def test_redis_out_of_memory_refuses_webhooks_then_recovers(rig: Rig) -> None:
    before = {rig.new_chat() for _ in range(2)}
    for chat in before:
        assert await rig.post(chat) == 200
    await rig.all_answered_once(before)

    with rig.redis.client() as direct:
        used = int(direct.info("memory")["used_memory"])
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("maxmemory", str(used + 64 * 1024))  # a few more turns, then full
    refused_at = None
    for n in range(400):
        status = await rig.post(rig.new_chat())
        assert status in (200, 503), status
        if status == 503:
            refused_at = n
            break
    assert refused_at is not None, "Redis never filled up"
    assert await rig.health() == 503
    assert await rig.metric("store_failing") == 1
    more = [rig.new_chat() for _ in range(3)]
    for chat in more:
        assert await rig.post(chat) == 503

    with rig.redis.client() as direct:
        direct.config_set("maxmemory", "0")  # the operator adds memory
    await rig.redeliver_refused()
    await rig.wait_health(200)
    await rig.all_answered_once(set(rig.statuses))
    print(
        f"redis full after {refused_at} more chats: "
        f"{sum(s.count(503) for s in rig.statuses.values())} webhooks refused, "
        f"{len(rig.statuses)} chats answered once each after the memory was raised"
    )
