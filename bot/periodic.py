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
            await cancel_and_wait(self._task)
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:  # a broken round must not end the job: the next one tries again
                log.exception(self._failure)
            await asyncio.sleep(self._every)


async def cancel_and_wait(task: asyncio.Task[None], *, every: float = 0.1) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again while it runs on.

    One ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` (which redis-py
    wraps around every command when a socket timeout is set) drops a cancellation that arrives
    just as the awaited call completes, so the task goes back to its loop and a plain ``await``
    of it waits for ever (a shutdown that hung in 6 of 15 timings of a Redis call)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    with contextlib.suppress(asyncio.CancelledError):
        await task
