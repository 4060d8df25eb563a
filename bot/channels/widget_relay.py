"""Widget replies across gateway processes: a customer's widget socket is held by one process,
but the reply may be produced and sent by another (an operator answering through process A, a
turn processed by whichever process read the inbox).

Each process subscribes, for every widget session with a tab open on it, to the Redis pub/sub
channel ``isp-bot:{widget}:push:<digest>`` (the digest is a SHA-256 of the session id, which is
the visitor's only credential and so is not spelled out in Redis). The widget channel's ``send``
pushes to its own tabs and then publishes an empty nudge on that channel; every process holding
a tab of that session pushes the transcript entries the tab has not seen yet. Redis itself is
the registry of who holds which socket: no keys to keep or expire.

The transcript stays the source of truth: the nudge carries nothing, so a nudge lost (the tab
closed meanwhile, a connection dropped) loses nothing - the next connect sends the history, a
nudge that comes twice pushes nothing twice (each tab has a cursor), and after a lost
connection to Redis every tab is pushed what it missed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.channels.base import SendError
from bot.pubsub import Subscriber
from bot.storage.redis.keys import global_key

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # a nudge that could not be published is tried again by the outbox


def push_channel(session: str) -> str:
    digest = hashlib.sha256(session.encode("utf-8")).hexdigest()[:32]
    return global_key("widget", "push", digest)


class WidgetRelay:
    """``hold(session)`` while this process has a tab of it, ``nudge(session)`` after a reply was
    committed; ``on_nudge(session)`` is called in every process holding the session."""

    def __init__(
        self,
        redis: Redis,
        on_nudge: Callable[[str], Awaitable[None]],
        on_resume: Callable[[], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._on_nudge = on_nudge
        self._sessions: dict[str, str] = {}  # channel -> session, for the sessions held here
        self._subscriber = Subscriber(redis, self._received, on_resume=on_resume, name="widget")
        self._pushing: set[asyncio.Task[None]] = set()

    async def hold(self, session: str) -> None:
        """Listen for the session's nudges; returns once Redis confirmed it, so what the caller
        reads from the transcript afterwards plus the nudges that follow miss nothing."""
        channel = push_channel(session)
        self._sessions[channel] = session
        await self._subscriber.add(channel)

    async def release(self, session: str) -> None:
        channel = push_channel(session)
        self._sessions.pop(channel, None)
        await self._subscriber.remove(channel)

    async def nudge(self, session: str) -> None:
        try:
            await self._redis.publish(push_channel(session), b"")
        except (RedisError, OSError) as exc:
            # The outbox tries again: a tab on another process must not wait for a reconnect.
            raise SendError(
                f"widget relay: {type(exc).__name__}", retry_after=RETRY_SECONDS
            ) from exc

    async def _received(self, channel: str, data: bytes) -> None:
        session = self._sessions.get(channel)
        if session is not None:
            # A task per nudge: one slow tab must not hold up the nudges of every other session.
            task = asyncio.create_task(self._push(session))
            self._pushing.add(task)
            task.add_done_callback(self._pushing.discard)

    async def _push(self, session: str) -> None:
        try:
            await self._on_nudge(session)
        except Exception:  # the store failing: the tab gets it with the next nudge or connect
            log.exception("widget relay: pushing to a tab failed")

    async def close(self) -> None:
        await self._subscriber.close()
        for task in list(self._pushing):
            task.cancel()


def attach_relay(channels: Iterable[object], redis: Redis) -> None:
    """Several processes on one Redis: give it to every channel that holds sockets."""
    for channel in channels:
        attach = getattr(channel, "attach_relay", None)
        if callable(attach):
            attach(redis)
