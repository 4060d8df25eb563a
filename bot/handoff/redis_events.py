"""Console events across gateway processes: an operator connected to process A sees at once
what happened in process B (a customer's message, a chat queued, taken or closed).

Every process publishes each event on one Redis pub/sub channel, ``isp-bot:{console}:events``,
as JSON ``{"origin": <this process's random id>, "event": {...}}``, and listens on it. Its own
consoles get the event directly (no round trip, and they keep getting their own process's
events while Redis is down); events from other origins are handed to the local consoles.

Publishing never waits: callers are synchronous, so an event goes into a bounded queue that
one task sends in order (full: the oldest is dropped, as for a slow console). Pub/sub loses
what is sent while a process is disconnected; consoles refetch the queue on ``{"type":
"queue"}``, so after the connection comes back every local console is sent one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.handoff.events import Event, EventHub
from bot.pubsub import Subscriber
from bot.storage.redis.keys import global_key

log = logging.getLogger(__name__)

CHANNEL = global_key("console", "events")
OUTGOING = 1000  # events waiting to be published; a Redis that is down must not grow memory


class RedisEventHub(EventHub):
    def __init__(self, redis: Redis, *, backlog: int = 200, channel: str = CHANNEL) -> None:
        super().__init__(backlog=backlog)
        self._redis = redis
        self._channel = channel
        self._origin = secrets.token_hex(8)
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(maxsize=OUTGOING)
        self._sender: asyncio.Task[None] | None = None
        self._subscriber = Subscriber(
            redis, self._received, on_resume=self._resumed, name="console events"
        )
        self._closed = False

    def publish(self, event: Event) -> None:
        self.deliver(event)
        if self._closed:
            return
        if self._outgoing.full():
            self._outgoing.get_nowait()
            self._outgoing.task_done()
        self._outgoing.put_nowait(
            json.dumps({"origin": self._origin, "event": event}, ensure_ascii=False).encode()
        )
        if self._sender is None:
            # No loop (a test building services): the next publish in a loop starts it.
            with contextlib.suppress(RuntimeError):
                self._sender = asyncio.get_running_loop().create_task(
                    self._send(), name="console events sender"
                )

    async def start(self) -> None:
        """Listen for the other processes' events (from the first console socket on)."""
        if not self._closed:
            await self._subscriber.add(self._channel)

    async def _send(self) -> None:
        failing = False
        while True:
            data = await self._outgoing.get()
            try:
                await self._redis.publish(self._channel, data)
                failing = False
            except (RedisError, OSError) as exc:
                # Lost for the other processes' consoles; they refetch when their own
                # connection comes back, and the store has every change.
                if not failing:
                    log.warning("console events: publishing failed (%s)", type(exc).__name__)
                failing = True
            finally:
                self._outgoing.task_done()

    async def _received(self, channel: str, data: bytes) -> None:
        try:
            message = json.loads(data)
            origin, event = message["origin"], message["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("console events: a malformed message on %s ignored", channel)
            return
        if origin != self._origin and isinstance(event, dict):
            self.deliver(event)

    async def _resumed(self) -> None:
        self.deliver({"type": "queue"})  # whatever was missed: the consoles refetch

    async def close(self) -> None:
        self._closed = True
        if self._sender is not None:
            # What is queued goes out first (briefly): another process's consoles want it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._outgoing.join()
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        await self._subscriber.close()
