"""One SQLite file served by one worker thread: the shared plumbing of our SQLite stores.

sqlite3 is synchronous, so every call runs on a dedicated thread: the event loop never blocks
on disk, and one thread serialises writes without extra locking. WAL keeps readers from
blocking the writer; synchronous=NORMAL is durable across a process crash (only an OS crash may
lose the last transaction).

A database another process holds locked is waited for up to ``BUSY_TIMEOUT_SECONDS`` (SQLite's
busy handler), never failed at once. With a ``StoreHealth`` given, what still fails for reasons
outside our code (locked past that, disk full, an I/O error: ``sqlite3.OperationalError``) is
raised as ``StoreUnavailable`` naming the operation, and reported to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bot.storage.health import StoreHealth, StoreUnavailable

T = TypeVar("T")

# Long enough to wait out a backup or another process's short write, short enough that a
# webhook still answers (503) well within the platform's own timeout.
BUSY_TIMEOUT_SECONDS = 5.0


def operation(fn: Callable[..., object]) -> str:
    """The store method a query function belongs to (``outbox_done`` for the ``q`` or lambda
    defined inside ``SqliteStore.outbox_done``): a bounded name for logs and metric labels."""
    parts = getattr(fn, "__qualname__", "").split(".")
    if "<locals>" in parts and parts.index("<locals>") > 0:
        return parts[parts.index("<locals>") - 1]
    return "other"


class SqliteDb:
    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        thread_name: str,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        """``migrate`` brings a file made by an older version up to ``schema`` (which only
        creates what is missing): added columns, before anything else touches the file.
        ``health`` turns operational failures into ``StoreUnavailable`` and is told of each
        call's outcome; without it they are raised as sqlite3 raised them."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._health = health
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)
        if migrate is not None:
            migrate(self._db)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(fn, fn)

    async def _run(self, fn: Callable[[sqlite3.Connection], T], named: Callable[..., object]) -> T:
        loop = asyncio.get_running_loop()
        health = self._health
        if health is None:
            return await loop.run_in_executor(self._executor, fn, self._db)
        op = operation(named)
        try:
            result = await loop.run_in_executor(self._executor, fn, self._db)
        except sqlite3.OperationalError as exc:
            reason = getattr(exc, "sqlite_errorname", None) or "OperationalError"
            health.failed(op, reason)
            raise StoreUnavailable(op, reason) from exc
        health.succeeded(op)
        return result

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` inside BEGIN IMMEDIATE … COMMIT, rolled back if it raises."""

        def q(db: sqlite3.Connection) -> T:
            if db.in_transaction:  # left open by a failure we could not roll back: start clean
                db.execute("ROLLBACK")
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
                # A COMMIT can fail too (disk full, busy): then the transaction is still open
                # and must be rolled back, or every later BEGIN fails long after the disk has
                # room again.
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back by itself (SQLITE_FULL)
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
            return result

        return await self._run(q, fn)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.run(lambda db: db.close())
        self._executor.shutdown(wait=True)
