"""Live events for operator consoles: every connected console gets every event (they are few
and small); a slow console loses old events rather than holding the server back.

``EventHub`` is one process's hub (the embedded default). With several gateway processes on one
Redis (``REDIS_URL``) ``bot.handoff.redis_events.RedisEventHub`` also carries every event to
the consoles connected to the other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

Event = dict[str, Any]


class EventHub:
    def __init__(self, *, backlog: int = 200) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._backlog = backlog

    def publish(self, event: Event) -> None:
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to this process's consoles (never waits: publishers are sync)."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the oldest: consoles refetch on "queue" anyway
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        await self.start()
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=self._backlog)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def start(self) -> None:
        """Background work, if any (idempotent; a subscriber starts it)."""

    async def close(self) -> None:
        """Stop background work (the services close it)."""
