"""Where outages live: a small interface of its own (not the gateway's ``Store``), and its
embedded SQLite implementation (``var/outages.sqlite3``)."""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Sequence, Set
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.catalog.catalog import Catalog
from bot.outages.fields import outage_fields, parse_outage
from bot.outages.model import Outage
from bot.storage.sqlite_db import SqliteDb


class OutageStore(abc.ABC):
    @abc.abstractmethod
    async def seed(self, outages: Sequence[Outage]) -> int:
        """Add the catalog's outages not known yet (by id); known ones keep what the API did to
        them (a closed accident stays closed after a restart). How many were added."""

    @abc.abstractmethod
    async def upsert(self, outage: Outage) -> Outage | None:
        """Create, or replace the record with the same id (a closed one is open again);
        the previous record, if any."""

    @abc.abstractmethod
    async def get(self, outage_id: str) -> Outage | None: ...

    @abc.abstractmethod
    async def close_outage(self, outage_id: str, at: datetime) -> tuple[Outage, bool] | None:
        """End it at ``at``: (the record, whether this call ended it); None if unknown."""

    @abc.abstractmethod
    async def open_outages(self, city_id: str | None = None) -> list[Outage]:
        """Records not closed (in force, upcoming, or planned works past their end), by start."""

    @abc.abstractmethod
    async def first_notice(self, outage_id: str, contract: str, event: str) -> bool:
        """Record that ``contract`` is told ``event`` ("posted", "ended") of the outage; True
        the first time, so a repeated POST or DELETE never tells anyone twice."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    async def delete_closed_before(
        self, cutoff: datetime, *, keep: Set[str] = frozenset(), dry_run: bool = False
    ) -> dict[str, int]:
        """Delete outages closed before ``cutoff`` and the record of who was told of them
        (contract numbers). Ids in ``keep`` (the catalog's, which ``seed`` would bring back
        open) keep their closed record, not their notices. ``dry_run`` only counts. Not
        abstract: a store without it keeps everything."""
        raise NotImplementedError(f"{type(self).__name__} does not delete old outages")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outages (
    outage_id TEXT PRIMARY KEY,
    city_id TEXT NOT NULL,
    data TEXT NOT NULL,           -- the fields of outages.csv, as text (JSON object)
    started_at TEXT NOT NULL,     -- UTC ISO, for ordering
    ended_at TEXT,                -- UTC ISO; NULL while open
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outages_open ON outages (city_id, ended_at);
CREATE TABLE IF NOT EXISTS outage_notices (
    outage_id TEXT NOT NULL,
    contract_number TEXT NOT NULL,
    event TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (outage_id, contract_number, event)
);
"""


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


class SqliteOutageStore(OutageStore):
    def __init__(self, path: Path, *, catalog: Catalog) -> None:
        self._db = SqliteDb(path, schema=_SCHEMA, thread_name="outages")
        self._catalog = catalog

    def _outage(self, data: str, ended_at: str | None) -> Outage:
        # Written by us after the same validation; read back through it all the same.
        outage = parse_outage(json.loads(data), self._catalog)
        return replace(outage, ended_at=datetime.fromisoformat(ended_at) if ended_at else None)

    @staticmethod
    def _row(outage: Outage) -> tuple[str, str, str, str, str | None, str]:
        return (
            outage.outage_id,
            outage.city_id,
            json.dumps(outage_fields(outage), ensure_ascii=False),
            _utc(outage.started_at),
            _utc(outage.ended_at) if outage.ended_at else None,
            _utc(datetime.now(UTC)),
        )

    async def seed(self, outages: Sequence[Outage]) -> int:
        rows = [self._row(o) for o in outages]

        def q(db: sqlite3.Connection) -> int:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO outages VALUES (?, ?, ?, ?, ?, ?)", rows)
            return db.total_changes - before

        return await self._db.transaction(q)

    async def upsert(self, outage: Outage) -> Outage | None:
        row = self._row(replace(outage, ended_at=None))

        def q(db: sqlite3.Connection) -> tuple[str, str | None] | None:
            old = db.execute(
                "SELECT data, ended_at FROM outages WHERE outage_id = ?", (outage.outage_id,)
            ).fetchone()
            db.execute("INSERT OR REPLACE INTO outages VALUES (?, ?, ?, ?, ?, ?)", row)
            return (old[0], old[1]) if old else None

        old = await self._db.transaction(q)
        return self._outage(*old) if old else None

    async def get(self, outage_id: str) -> Outage | None:
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT data, ended_at FROM outages WHERE outage_id = ?", (outage_id,)
            ).fetchone()
        )
        return self._outage(row[0], row[1]) if row else None

    async def close_outage(self, outage_id: str, at: datetime) -> tuple[Outage, bool] | None:
        def q(db: sqlite3.Connection) -> tuple[str, str | None, bool] | None:
            row = db.execute(
                "SELECT data, ended_at FROM outages WHERE outage_id = ?", (outage_id,)
            ).fetchone()
            if row is None:
                return None
            if row[1] is not None:
                return row[0], row[1], False
            db.execute(
                "UPDATE outages SET ended_at = ?, updated_at = ? WHERE outage_id = ?",
                (_utc(at), _utc(at), outage_id),
            )
            return row[0], _utc(at), True

        found = await self._db.transaction(q)
        if found is None:
            return None
        return self._outage(found[0], found[1]), found[2]

    async def open_outages(self, city_id: str | None = None) -> list[Outage]:
        sql = "SELECT data, ended_at FROM outages WHERE ended_at IS NULL"
        args: tuple[str, ...] = ()
        if city_id is not None:
            sql, args = sql + " AND city_id = ?", (city_id,)
        rows = await self._db.run(
            lambda db: db.execute(sql + " ORDER BY started_at, outage_id", args).fetchall()
        )
        return [self._outage(r[0], r[1]) for r in rows]

    async def first_notice(self, outage_id: str, contract: str, event: str) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT OR IGNORE INTO outage_notices VALUES (?, ?, ?, ?)",
                (outage_id, contract, event, _utc(datetime.now(UTC))),
            )
            return cur.rowcount == 1

        return await self._db.run(q)

    async def delete_closed_before(
        self, cutoff: datetime, *, keep: Set[str] = frozenset(), dry_run: bool = False
    ) -> dict[str, int]:
        stamp = _utc(cutoff)

        def q(db: sqlite3.Connection) -> dict[str, int]:
            closed = [
                row[0]
                for row in db.execute(
                    "SELECT outage_id FROM outages WHERE ended_at IS NOT NULL AND ended_at < ?",
                    (stamp,),
                )
            ]
            notices = gone = 0
            for outage_id in closed:
                found = db.execute(
                    "SELECT count(*) FROM outage_notices WHERE outage_id = ?", (outage_id,)
                ).fetchone()
                notices += int(found[0])
                gone += outage_id not in keep
                if not dry_run:
                    db.execute("DELETE FROM outage_notices WHERE outage_id = ?", (outage_id,))
                    if outage_id not in keep:
                        db.execute("DELETE FROM outages WHERE outage_id = ?", (outage_id,))
            return {"outages": gone, "outage_notices": notices}

        return await (self._db.run(q) if dry_run else self._db.transaction(q))

    async def close(self) -> None:
        await self._db.close()
