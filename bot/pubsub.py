"""One Redis pub/sub connection of this process, for what several gateway processes tell each
other at once (console events, "a widget reply is waiting" nudges).

Pub/sub is fire-and-forget: a message published while a process is not listening (its
connection dropped, it was starting) is gone. So nothing depends on it alone: the store stays the
source of truth and every user of ``Subscriber`` catches up when ``on_resume`` says the
connection came back (consoles refetch the queue, widget sockets push what they have not sent).

Channels may be added and removed while the subscriber runs (one per open widget session);
``add`` returns once Redis confirmed the subscription, so a caller that reads the store after
``add`` cannot miss a message published after that read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # between reconnect attempts while Redis is unreachable
POLL_SECONDS = 1.0  # a read waits at most this long, so a new channel is noticed promptly
CONFIRM_SECONDS = 2.0  # how long ``add`` waits for Redis to confirm a subscription

OnMessage = Callable[[str, bytes], Awaitable[None]]


class Subscriber:
    """Listens on a changing set of channels; ``on_message(channel, data)`` for each message,
    ``on_resume()`` after the connection was lost and is back (messages may have been missed)."""

    def __init__(
        self,
        redis: Redis,
        on_message: OnMessage,
        *,
        on_resume: Callable[[], Awaitable[None]] | None = None,
        name: str = "pubsub",
    ) -> None:
        self._redis = redis
        self._on_message = on_message
        self._on_resume = on_resume
        self._name = name
        self._channels: set[str] = set()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._pubsub: PubSub | None = None
        self._changed = asyncio.Event()  # a channel was added: the reader may have work
        self._lock = asyncio.Lock()  # subscribe/unsubscribe vs. replacing the connection
        self._task: asyncio.Task[None] | None = None
        self._broken = False  # a subscribe failed: the reader reconnects and resubscribes

    async def add(self, channel: str) -> None:
        """Listen on ``channel`` (idempotent); returns once subscribed, or after
        ``CONFIRM_SECONDS`` when Redis does not answer (the reader keeps trying)."""
        self._ensure_started()
        if channel in self._channels:
            return
        self._channels.add(channel)
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        async with self._lock:
            try:
                await self._connection().subscribe(channel)
            except (RedisError, OSError):
                self._broken = True
        self._changed.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONFIRM_SECONDS):
                await confirmed.wait()

    async def remove(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        self._confirmed.pop(channel, None)
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(channel)

    def _connection(self) -> PubSub:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub()
        return self._pubsub

    def _ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        lost = False
        while True:
            try:
                if lost or self._broken:
                    self._broken = False
                    await self._reconnect()
                    lost = False
                    if self._on_resume is not None:
                        await self._on_resume()
                await self._read()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not lost:
                    log.warning("%s: Redis connection lost (%s)", self._name, type(exc).__name__)
                lost = True
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:
                log.exception("%s: handling a message failed", self._name)

    async def _reconnect(self) -> None:
        async with self._lock:
            old, self._pubsub = self._pubsub, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.aclose()  # type: ignore[no-untyped-call]
            if self._channels:
                await self._connection().subscribe(*self._channels)
        log.info("%s: Redis connection back", self._name)

    async def _read(self) -> None:
        pubsub = self._pubsub
        if pubsub is None or not pubsub.subscribed:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._changed.wait()
            return
        message = await pubsub.get_message(timeout=POLL_SECONDS)
        if message is None:
            return
        channel = _text(message.get("channel"))
        if message["type"] == "subscribe":
            event = self._confirmed.get(channel)
            if event is not None:
                event.set()
        elif message["type"] == "message" and channel in self._channels:
            await self._on_message(channel, message["data"])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value) if value is not None else ""
