"""One SQLite file served by one worker thread: the shared plumbing of our SQLite stores.

sqlite3 is synchronous, so every call runs on a dedicated thread: the event loop never blocks
on disk, and one thread serialises writes without extra locking. WAL keeps readers from
blocking the writer; synchronous=NORMAL is durable across a process crash (only an OS crash may
lose the last transaction).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class SqliteDb:
    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        thread_name: str,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """``migrate`` brings a file made by an older version up to ``schema`` (which only
        creates what is missing): added columns, before anything else touches the file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)
        if migrate is not None:
            migrate(self._db)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._db)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` inside BEGIN IMMEDIATE … COMMIT, rolled back if it raises."""

        def q(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self.run(q)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.run(lambda db: db.close())
        self._executor.shutdown(wait=True)
