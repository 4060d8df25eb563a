"""A store that cannot write is not a send loop (issue 11).

The real gateway with the Telegram channel (aiogram against ``tests/fakes/telegram.py``, webhooks
through the real aiohttp application) on its real SQLite file, broken two ways:

- disk full: SQLite's own ``PRAGMA max_page_count`` on the gateway's connection, with the free
  space filled, so every write that needs a page fails with SQLITE_FULL;
- locked: another process holds ``BEGIN EXCLUSIVE`` past the busy timeout while the platform is
  accepting a reply, so the reply cannot be marked as sent.

The test sends like Telegram does: an update answered with anything but 200 is delivered again
later, and a chat's later updates wait behind it. What a customer would notice is checked: no
reply reaches them twice, every acknowledged message is answered once and in order, and
meanwhile the webhook refuses (so nothing is lost) and ``/healthz`` and ``/metrics`` say why.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels.base import OutboundMessage, RateLimit
from bot.channels.registry import ChannelDeps
from bot.channels.telegram import SECRET_HEADER, TelegramChannel, create
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from bot.storage.sqlite import SqliteStore
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import text_update as update

TOKEN = "123456:TEST-token"
SECRET = "test-webhook-secret"
CHATS = (5101, 5102, 5103)
# Short for the test (the gateway waits 5 s): how long a write waits for another process's lock.
BUSY_TIMEOUT_MS = 300
# Long enough (with the raw update kept beside it) that recording it always needs new pages.
PADDING = " Подскажите, пожалуйста, какие у вас тарифы в Братске?" * 40


@dataclass
class Platform:
    """Telegram's side of the webhook: keeps each chat's updates in order and delivers one again
    until it is answered 200."""

    client: TestClient
    next_id: int = 1000
    queued: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    acknowledged: dict[int, list[str]] = field(default_factory=dict)  # chat -> texts, in order
    refusals: list[int] = field(default_factory=list)  # statuses other than 200

    def write(self, chat_id: int, text: str) -> None:
        self.next_id += 1
        self.queued.setdefault(chat_id, []).append(update(self.next_id, chat_id, text))

    async def deliver(self) -> None:
        """One round: each chat's oldest waiting update, then the ones behind it if taken."""
        for chat_id, waiting in self.queued.items():
            while waiting:
                status = await self._post(waiting[0])
                if status != 200:
                    self.refusals.append(status)
                    break  # Telegram tries this one again later; the chat's others wait
                self.acknowledged.setdefault(chat_id, []).append(waiting[0]["message"]["text"])
                waiting.pop(0)

    async def _post(self, body: dict[str, Any]) -> int:
        resp = await self.client.post(
            "/webhooks/telegram", data=json.dumps(body), headers={SECRET_HEADER: SECRET}
        )
        return resp.status


@dataclass
class Rig:
    fake: FakeTelegram
    services: Services
    client: TestClient
    settings: Settings
    platform: Platform
    gate: asyncio.Event  # cleared: the fake Telegram holds its answer to sendMessage
    # How often the outbox handed each reply to the channel. The Telegram channel also skips a
    # step it remembers sending, which would hide a resend from the fake: counted before that.
    handed: dict[str, int] = field(default_factory=dict)

    @property
    def store(self) -> SqliteStore:
        assert isinstance(self.services.store, SqliteStore)
        return self.services.store

    async def on_connection(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn`` on the gateway's own SQLite connection (its PRAGMAs are per connection)."""
        return await self.store._db.run(fn)

    async def settle(self) -> None:
        async with asyncio.timeout(15):
            await self.services.ingress.idle()
            await self.services.outbox.drain()

    async def health(self) -> tuple[int, dict[str, Any]]:
        resp = await self.client.get("/healthz")
        return resp.status, await resp.json()

    async def metric(self, name: str) -> str:
        resp = await self.client.get("/metrics")
        text = await resp.text()
        return "\n".join(line for line in text.splitlines() if line.startswith(f"isp_bot_{name}"))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.settings.sqlite_path) as db:
            return db.execute(sql).fetchall()

    def check_answered_once_in_order(self) -> int:
        """Every acknowledged message answered once, in order; returns the duplicate sends."""
        # One sendMessage per reply (short texts, no files): any extra one is a duplicate.
        rows = self.rows("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0]
        duplicates = len(self.fake.sent()) - int(rows)
        for chat_id in CHATS:
            customer = [
                text
                for (text,) in self.rows(
                    "SELECT text FROM messages WHERE sender = 'customer'"
                    f" AND conversation_id LIKE 'telegram:{chat_id}:%' ORDER BY id"
                )
            ]
            assert customer == self.platform.acknowledged.get(chat_id, [])
            replies = [
                text
                for (text,) in self.rows(
                    "SELECT text FROM outbox WHERE status = 'sent'"
                    f" AND chat_id = '{chat_id}' ORDER BY id"
                )
            ]
            assert replies, "the chat got no answer"
            assert [s["text"] for s in self.fake.sent(chat_id)] == replies
        assert self.rows("SELECT count(*) FROM inbox WHERE status != 'done'") == [(0,)]
        assert self.rows("SELECT count(*) FROM outbox WHERE status != 'sent'") == [(0,)]
        resent = {key: n for key, n in self.handed.items() if n > 1}
        return duplicates + sum(n - 1 for n in resent.values())


async def _close_without_tls_grace(self: AiohttpSession) -> None:
    if self._session is not None and not self._session.closed:
        await self._session.close()


@pytest.fixture
async def rig(
    aiohttp_server: Any,
    aiohttp_client: Any,
    settings: Settings,
    demo_nlu: Nlu,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Rig]:
    monkeypatch.setattr(AiohttpSession, "close", _close_without_tls_grace)
    fake = FakeTelegram(token=TOKEN)
    gate = asyncio.Event()
    gate.set()

    @web.middleware
    async def held(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)  # the fake has taken (and counted) the message
        if request.match_info.get("method") == "sendMessage":
            await gate.wait()
        return response  # type: ignore[no-any-return]

    app = fake.app()
    app.middlewares.append(held)
    server = await aiohttp_server(app)
    configured = replace(
        settings,
        telegram_token=TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_base=str(server.make_url("")).rstrip("/"),
    )
    services = build_services(configured, nlu=demo_nlu)
    channel = create(ChannelDeps(configured, services.ingress, services.store, services.translator))
    assert isinstance(channel, TelegramChannel)
    channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # no pacing waits here
    services.channels[channel.name] = channel
    handed: dict[str, int] = {}
    send = channel.send

    async def counted(message: OutboundMessage) -> str | None:
        handed[message.idempotency_key] = handed.get(message.idempotency_key, 0) + 1
        return await send(message)

    channel.send = counted  # type: ignore[method-assign]
    client = await aiohttp_client(create_app(configured, services=services))
    await services.start()
    built = Rig(fake, services, client, configured, Platform(client), gate, handed)
    await built.on_connection(lambda db: db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
    yield built
    gate.set()
    await services.close()


def _fill(db: sqlite3.Connection) -> None:
    """The disk is full: the file may not grow, and its free pages are taken."""
    db.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")
    size = 4096
    while size >= 1:
        try:
            db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError:
            size //= 2


def _make_room(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_disk_refuses_webhooks_and_sends_nothing_twice(rig: Rig) -> None:
    for chat_id in CHATS:
        rig.platform.write(chat_id, "какие тарифы в Братске?")
    await rig.platform.deliver()
    await rig.settle()
    assert await rig.health() == (200, {"status": "ok", "checks": {"store": True, "engine": True}})

    await rig.on_connection(_fill)
    for chat_id in CHATS:
        rig.platform.write(chat_id, f"первое, пока диск полон.{PADDING}")
        rig.platform.write(chat_id, "второе, пока диск полон")
    await rig.platform.deliver()
    await rig.platform.deliver()  # Telegram tries again: still full
    assert rig.platform.refusals
    assert set(rig.platform.refusals) == {503}
    status, body = await rig.health()
    assert (status, body["checks"]["store"]) == (503, False)
    assert await rig.metric("store_failing") == "isp_bot_store_failing 1"
    assert 'isp_bot_store_errors_total{op="inbox_put"}' in await rig.metric("store_errors_total")

    await rig.on_connection(_make_room)
    for chat_id in CHATS:
        rig.platform.write(chat_id, "а в Иркутске?")
    await rig.platform.deliver()  # the refused ones first, then the rest
    await rig.settle()
    assert all(not waiting for waiting in rig.platform.queued.values())
    duplicates = rig.check_answered_once_in_order()
    print(f"disk full: {len(rig.platform.refusals)} webhooks refused, {duplicates} duplicate sends")
    assert duplicates == 0
    assert (await rig.health())[0] == 200
    assert await rig.metric("store_failing") == "isp_bot_store_failing 0"


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()  # held until the test lets go
db.execute("ROLLBACK")
"""


async def _until(condition: Callable[[], Awaitable[bool] | bool]) -> None:
    async with asyncio.timeout(10):
        while True:
            result = condition()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.02)


async def test_b_a_database_locked_by_another_process_holds_the_outbox(rig: Rig) -> None:
    for chat_id in CHATS:
        rig.platform.write(chat_id, "какие тарифы в Братске?")
    await rig.platform.deliver()
    await rig.settle()
    sent_before = len(rig.fake.sent())

    # The platform takes the next replies but holds its answers while another process locks
    # the database: the outbox cannot mark them as sent.
    rig.gate.clear()
    for chat_id in CHATS:
        rig.platform.write(chat_id, "а в Иркутске?")
    await rig.platform.deliver()
    await _until(lambda: len(rig.fake.calls_to("sendMessage")) > sent_before)
    locker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCKER,
        str(rig.settings.sqlite_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdin is not None
        assert await locker.stdout.readline() == b"locked\n"
        rig.gate.set()
        await _until(lambda: rig.services.outbox.held)
        for chat_id in CHATS:
            rig.platform.write(chat_id, "где ближайший офис в Братске?")
        await rig.platform.deliver()
        assert rig.platform.refusals
        assert set(rig.platform.refusals) == {503}
        status, body = await rig.health()
        assert (status, body["checks"]["store"]) == (503, False)
        assert await rig.metric("store_failing") == "isp_bot_store_failing 1"
        errors = await rig.metric("store_errors_total")
        assert 'op="outbox_done"' in errors
        assert 'op="inbox_put"' in errors
        sends_while_locked = len(rig.fake.sent())
    finally:
        if locker.stdin is not None:
            locker.stdin.write(b"go\n")
            await locker.stdin.drain()
        await locker.wait()

    await rig.platform.deliver()  # the refused ones again
    await rig.settle()
    assert all(not waiting for waiting in rig.platform.queued.values())
    duplicates = rig.check_answered_once_in_order()
    print(
        f"locked: {len(rig.platform.refusals)} webhooks refused, {sends_while_locked - sent_before}"
        f" sends while locked, {duplicates} duplicate sends"
    )
    assert duplicates == 0
    assert (await rig.health())[0] == 200
    assert await rig.metric("store_failing") == "isp_bot_store_failing 0"
