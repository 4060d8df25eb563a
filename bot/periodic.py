"""A job that runs in the background now and then every so many seconds, until closed.

Five services had the same loop (handoff ticks, visit reminders, the outage sweep, the ingress
janitor, retention): run, log a failure without ending the loop, sleep, again; plus the same
start/cancel/await bookkeeping. This is that loop once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(
        self, name: str, job: Callable[[], Awaitable[object]], *, every: float, failure: str
    ) -> None:
        """``failure`` is the log line when a round raises ("visit reminders failed")."""
        self.name = name
        self._job = job
        self._every = every
        self._failure = failure
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:  # a broken round must not end the job: the next one tries again
                log.exception(self._failure)
            await asyncio.sleep(self._every)
