"""Delivery of replies through their channels: durable (rows in the store until sent), in order
per chat, under each platform's rate limits, retried on 429/5xx with the platform's retry-after,
and recorded as failed (never dropped silently) when it finally cannot be delivered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from bot.channels.base import Channel, OutboundMessage, RateLimit, SendError
from bot.channels.fit import fit_message
from bot.metrics import Metrics
from bot.storage.base import OutboundItem, Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)


def register_metrics(metrics: Metrics) -> None:
    metrics.counter("outbox_sent_total", "Platform messages delivered, by channel.")
    metrics.counter("outbox_retries_total", "Send attempts that will be retried, by channel.")
    metrics.counter("outbox_failed_total", "Replies that could not be delivered, by channel.")


class _Pacer:
    """Spacing between sends: per chat and per channel (a simple next-slot scheduler)."""

    def __init__(self, limit: RateLimit) -> None:
        self._chat_gap = 1.0 / limit.per_chat
        self._overall_gap = 1.0 / limit.overall
        self._next_overall = 0.0
        self._next_chat: dict[str, float] = {}

    async def wait(self, chat_id: str) -> None:
        now = time.monotonic()
        slot = max(now, self._next_overall, self._next_chat.get(chat_id, 0.0))
        self._next_overall = slot + self._overall_gap
        self._next_chat[chat_id] = slot + self._chat_gap
        if len(self._next_chat) > 10_000:  # forget chats idle for a while
            self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
        if slot > now:
            await asyncio.sleep(slot - now)


class Outbox:
    def __init__(self, *, store: Store, channels: Mapping[str, Channel], metrics: Metrics) -> None:
        self._store = store
        self._channels = channels
        self._metrics = metrics
        self._pacers: dict[str, _Pacer] = {}
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """New rows were committed: look for them."""
        self._wake.set()

    async def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name="outbox-dispatch")
        self.notify()  # rows left pending by a previous run

    async def close(self) -> None:
        tasks = [t for t in (self._dispatcher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> None:
        """Wait until nothing is pending or in flight (tests, graceful shutdown); callers bound
        it with ``asyncio.timeout``. Polls the store, the truth about what is pending."""
        while True:  # the condition lives in the store, so poll it
            if not self._busy and not await self._store.outbox_pending(limit=1):
                return
            await asyncio.sleep(0.02)

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                pending = await self._store.outbox_pending()
            except Exception:
                log.exception("outbox: reading pending rows failed")
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            chats: dict[tuple[str, str], list[OutboundItem]] = {}
            for item in pending:
                chats.setdefault((item.channel, item.chat_id), []).append(item)
            for chat, items in chats.items():
                if chat in self._busy:
                    continue  # its worker re-reads when done
                self._busy.add(chat)
                task = asyncio.create_task(self._deliver_chat(chat, items))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver_chat(self, chat: tuple[str, str], items: list[OutboundItem]) -> None:
        try:
            for item in items:
                await self._deliver(item)
        finally:
            self._busy.discard(chat)
            self._wake.set()  # more rows may have arrived for this chat meanwhile

    async def _deliver(self, item: OutboundItem) -> None:
        channel = self._channels.get(item.channel)
        if channel is None:
            await self._store.outbox_done(item.id, error=f"no channel {item.channel!r} configured")
            self._metrics.inc("outbox_failed_total", channel=item.channel)
            return
        if not await self._store.is_reachable(item.conversation_id):
            await self._store.outbox_done(item.id, error="customer unreachable (blocked the bot)")
            self._metrics.inc("outbox_failed_total", channel=item.channel)
            return
        parts = fit_message(item.text, item.buttons, item.attachments, channel.capabilities)
        platform_ids: list[str] = []
        for index, part in enumerate(parts):
            message = OutboundMessage(
                item.chat_id, part.text, part.buttons, f"{item.id}:{index}", part.attachments
            )
            platform_id, error = await self._send_with_retries(channel, message, item)
            if error is not None:
                await self._store.outbox_done(item.id, error=error)
                self._metrics.inc("outbox_failed_total", channel=item.channel)
                log.warning(
                    "outbox: gave up on message %s via %s: %s", item.id, item.channel, error
                )
                return
            if platform_id:
                platform_ids.append(platform_id)
            self._metrics.inc("outbox_sent_total", channel=item.channel)
        await self._store.outbox_done(item.id, platform_message_id=",".join(platform_ids) or None)

    async def _send_with_retries(
        self, channel: Channel, message: OutboundMessage, item: OutboundItem
    ) -> tuple[str | None, str | None]:
        """(platform message id, None) when sent; (None, final error) when it cannot be."""
        attempts = item.attempts
        while True:
            pacer = self._pacers.get(channel.name)
            if pacer is None:
                pacer = self._pacers[channel.name] = _Pacer(channel.rate_limit)
            await pacer.wait(message.chat_id)
            try:
                return await channel.send(message), None
            except SendError as exc:
                attempts += 1
                if exc.permanent or attempts >= MAX_ATTEMPTS:
                    return None, str(exc)
                delay = exc.retry_after
                if delay is None:
                    delay = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
                self._metrics.inc("outbox_retries_total", channel=channel.name)
                await self._store.outbox_attempt_failed(item.id, str(exc))
                await asyncio.sleep(delay)
