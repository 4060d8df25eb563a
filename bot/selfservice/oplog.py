"""The operations log: every account action, who did it (the bot or an operator's login), when,
what, and how it ended. Its own small interface (not a part of ``Store``), with the embedded
SQLite implementation in its own file under ``var/``.

An entry is written *before* the billing is asked (``pending``) and finished after, so an action
interrupted by a crash is found as ``pending`` and retried with the same id, which the billing
applies at most once.
"""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.storage.sqlite_db import SqliteDb

# pending: the billing is being asked; failed: it did not answer (may be retried under the same
# id for a while); superseded: a newer attempt of the same kind replaced it, never to be retried.
OperationStatus = Literal["pending", "done", "refused", "failed", "superseded"]


@dataclass(frozen=True, slots=True)
class OperationRecord:
    id: str
    contract: str
    kind: str
    by: str  # "bot" or an operator's login
    at: datetime
    status: OperationStatus = "pending"
    details: Mapping[str, Any] = field(default_factory=dict)
    conversation_id: str | None = None


class OperationLog(abc.ABC):
    @abc.abstractmethod
    async def begin(self, record: OperationRecord) -> OperationRecord:
        """Record an operation about to be carried out; an id seen before returns the earlier
        record unchanged (the caller then knows it is a repeat)."""

    @abc.abstractmethod
    async def finish(
        self, op_id: str, status: OperationStatus, details: Mapping[str, Any] | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def get(self, op_id: str) -> OperationRecord | None: ...

    @abc.abstractmethod
    async def supersede(self, contract: str, kind: str, *, keep: str) -> int:
        """Mark the contract's unanswered (pending/failed) attempts of ``kind`` other than
        ``keep`` as superseded; how many."""

    @abc.abstractmethod
    async def for_contract(self, contract: str, *, limit: int = 50) -> list[OperationRecord]:
        """Newest first."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        """Delete entries begun before ``cutoff`` (aware) that are over; a ``pending`` one is
        kept (a crash interrupted it, the next attempt finds it). How many; ``dry_run`` counts.
        Not abstract: a log without it keeps everything."""
        raise NotImplementedError(f"{type(self).__name__} does not delete old entries")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    contract TEXT NOT NULL,
    kind TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    conversation_id TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_contract ON operations (contract, seq);
"""


def _row(row: tuple[Any, ...]) -> OperationRecord:
    op_id, contract, kind, by, at, status, details, conversation_id = row
    return OperationRecord(
        id=op_id,
        contract=contract,
        kind=kind,
        by=by,
        at=datetime.fromisoformat(at),
        status=status,
        details=json.loads(details),
        conversation_id=conversation_id,
    )


class SqliteOperationLog(OperationLog):
    def __init__(self, path: Path | str) -> None:
        self._db = SqliteDb(Path(path), schema=_SCHEMA, thread_name="oplog")

    async def begin(self, record: OperationRecord) -> OperationRecord:
        def q(db: sqlite3.Connection) -> OperationRecord:
            row = db.execute(
                "SELECT id, contract, kind, by, at, status, details, conversation_id "
                "FROM operations WHERE id = ?",
                (record.id,),
            )
            found = row.fetchone()
            if found is not None:
                return _row(found)
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM operations").fetchone()[0]
            db.execute(
                "INSERT INTO operations (id, contract, kind, by, at, status, details, "
                "conversation_id, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.contract,
                    record.kind,
                    record.by,
                    record.at.isoformat(),
                    record.status,
                    json.dumps(dict(record.details), ensure_ascii=False, default=str),
                    record.conversation_id,
                    seq,
                ),
            )
            return record

        return await self._db.transaction(q)

    async def finish(
        self, op_id: str, status: OperationStatus, details: Mapping[str, Any] | None = None
    ) -> None:
        def q(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT details FROM operations WHERE id = ?", (op_id,)).fetchone()
            if row is None:
                return
            merged = {**json.loads(row[0]), **(details or {})}
            db.execute(
                "UPDATE operations SET status = ?, details = ? WHERE id = ?",
                (status, json.dumps(merged, ensure_ascii=False, default=str), op_id),
            )

        await self._db.transaction(q)

    async def supersede(self, contract: str, kind: str, *, keep: str) -> int:
        def q(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "UPDATE operations SET status = 'superseded' WHERE contract = ? AND kind = ? "
                "AND status IN ('pending', 'failed') AND id != ?",
                (contract, kind, keep),
            )
            return cursor.rowcount

        return await self._db.transaction(q)

    async def get(self, op_id: str) -> OperationRecord | None:
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT id, contract, kind, by, at, status, details, conversation_id "
                "FROM operations WHERE id = ?",
                (op_id,),
            ).fetchone()
        )
        return _row(row) if row else None

    async def for_contract(self, contract: str, *, limit: int = 50) -> list[OperationRecord]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT id, contract, kind, by, at, status, details, conversation_id "
                "FROM operations "
                "WHERE contract = ? ORDER BY seq DESC LIMIT ?",
                (contract, limit),
            ).fetchall()
        )
        return [_row(r) for r in rows]

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        # Entries are stamped with the caller's clock (isoformat, any offset): compared as
        # instants in Python, since their text need not order like time.
        def q(db: sqlite3.Connection) -> int:
            old = [
                op_id
                for op_id, at in db.execute(
                    "SELECT id, at FROM operations WHERE status != 'pending'"
                )
                if _before(at, cutoff)
            ]
            if not dry_run:
                db.executemany("DELETE FROM operations WHERE id = ?", [(i,) for i in old])
            return len(old)

        return await (self._db.run(q) if dry_run else self._db.transaction(q))

    async def close(self) -> None:
        await self._db.close()


def _before(at: str, cutoff: datetime) -> bool:
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:  # written without an offset: taken as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment < cutoff
