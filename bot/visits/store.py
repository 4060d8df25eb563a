"""Where booked visits live: a small interface of its own and its SQLite file.

Capacity is enforced here, not by the caller's earlier look: ``book`` and ``move`` insert or
move a visit only if, in the same transaction, fewer than ``crews`` visits hold that window. Two
customers confirming the last place at once get one visit and one refusal, whatever the dialog
showed them a minute before.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from bot.storage.sqlite_db import SqliteDb

Status = Literal["booked", "cancelled", "done"]
BOOKED: Final = "booked"


@dataclass(frozen=True, slots=True)
class NewVisit:
    op: str  # the confirmation's id: a second «Да» finds the visit instead of booking again
    contract: str
    conversation_id: str
    city_id: str
    starts_at: datetime
    ends_at: datetime
    problem: str
    address: str
    fee_rub: Decimal


@dataclass(frozen=True, slots=True)
class Visit:
    id: int
    op: str
    contract: str
    conversation_id: str
    city_id: str
    starts_at: datetime  # aware UTC
    ends_at: datetime
    problem: str
    address: str
    fee_rub: Decimal
    status: Status
    request_id: int | None  # its record on the request board
    reminded_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Booked:
    visit: Visit
    repeat: bool = False  # this op was carried out before: nothing new happened


class VisitStore(ABC):
    @abstractmethod
    async def book(self, new: NewVisit, *, crews: int, at: datetime) -> Booked | None:
        """None: the window already holds ``crews`` visits."""

    @abstractmethod
    async def move(
        self,
        visit_id: int,
        starts_at: datetime,
        ends_at: datetime,
        *,
        op: str,
        crews: int,
        at: datetime,
    ) -> Booked | None:
        """None: the new window is full (the visit keeps its old one) or it is not booked."""

    @abstractmethod
    async def close(self, visit_id: int, status: Status, *, at: datetime) -> Visit | None:
        """Cancel or finish a booked visit; None when it is not booked (any more)."""

    @abstractmethod
    async def get(self, visit_id: int) -> Visit | None: ...

    @abstractmethod
    async def by_op(self, op: str) -> Visit | None: ...

    @abstractmethod
    async def booked_of(self, contract: str) -> list[Visit]: ...

    @abstractmethod
    async def booked_between(
        self, city_id: str | None, start: datetime, end: datetime
    ) -> list[Visit]:
        """Booked visits starting in [start, end), earliest first; every city for None."""

    @abstractmethod
    async def set_request(self, visit_id: int, request_id: int) -> None: ...

    @abstractmethod
    async def mark_reminded(self, visit_id: int, at: datetime) -> bool:
        """True only for the first call per booking (and per move): the reminder goes once."""

    @abstractmethod
    async def shut(self) -> None: ...

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        """Delete visits that are over: cancelled or done before ``cutoff``, or booked for a
        window that ended before it. How many; ``dry_run`` only counts. Not abstract: a store
        without it keeps everything."""
        raise NotImplementedError(f"{type(self).__name__} does not delete old visits")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS visits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL UNIQUE,
    contract TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    city_id TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    problem TEXT NOT NULL,
    address TEXT NOT NULL,
    fee_rub TEXT NOT NULL,
    status TEXT NOT NULL,
    request_id INTEGER,
    reminded_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS visits_window ON visits (city_id, starts_at, status);
CREATE INDEX IF NOT EXISTS visits_contract ON visits (contract, status);
"""
_COLUMNS = (
    "id, op, contract, conversation_id, city_id, starts_at, ends_at, problem, address, fee_rub, "
    "status, request_id, reminded_at, created_at, updated_at"
)


# Retention: a visit is over when closed (cancelled, done) or when its booked window has ended.
_COUNT_OVER = (
    "SELECT count(*) FROM visits"
    " WHERE (status != ? AND updated_at < ?) OR (status = ? AND ends_at < ?)"
)
_DELETE_OVER = (
    "DELETE FROM visits WHERE (status != ? AND updated_at < ?) OR (status = ? AND ends_at < ?)"
)


def _utc(at: datetime) -> str:
    # One spelling per instant, so equal windows compare equal as text in SQL.
    return at.astimezone(UTC).isoformat()


def _visit(row: Sequence[Any]) -> Visit:
    return Visit(
        id=int(row[0]),
        op=str(row[1]),
        contract=str(row[2]),
        conversation_id=str(row[3]),
        city_id=str(row[4]),
        starts_at=datetime.fromisoformat(row[5]),
        ends_at=datetime.fromisoformat(row[6]),
        problem=str(row[7]),
        address=str(row[8]),
        fee_rub=Decimal(str(row[9])),
        status=row[10],
        request_id=None if row[11] is None else int(row[11]),
        reminded_at=None if row[12] is None else datetime.fromisoformat(row[12]),
        created_at=datetime.fromisoformat(row[13]),
        updated_at=datetime.fromisoformat(row[14]),
    )


class SqliteVisitStore(VisitStore):
    def __init__(self, path: Path) -> None:
        self._db = SqliteDb(Path(path), schema=_SCHEMA, thread_name="visits")

    @staticmethod
    def _load(db: sqlite3.Connection, where: str, args: Sequence[Any]) -> Visit | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM visits WHERE {where}", args).fetchone()  # noqa: S608 - fixed text
        return None if row is None else _visit(row)

    @staticmethod
    def _held(db: sqlite3.Connection, city_id: str, starts_at: str) -> int:
        row = db.execute(
            "SELECT count(*) FROM visits WHERE city_id = ? AND starts_at = ? AND status = ?",
            (city_id, starts_at, BOOKED),
        ).fetchone()
        return int(row[0])

    async def book(self, new: NewVisit, *, crews: int, at: datetime) -> Booked | None:
        def q(db: sqlite3.Connection) -> Booked | None:
            done = self._load(db, "op = ?", (new.op,))
            if done is not None:
                return Booked(done, repeat=True)
            starts = _utc(new.starts_at)
            if self._held(db, new.city_id, starts) >= crews:
                return None
            cursor = db.execute(
                "INSERT INTO visits (op, contract, conversation_id, city_id, starts_at, ends_at,"
                " problem, address, fee_rub, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new.op, new.contract, new.conversation_id, new.city_id, starts,
                 _utc(new.ends_at), new.problem, new.address, str(new.fee_rub), BOOKED,
                 _utc(at), _utc(at)),
            )  # fmt: skip
            visit = self._load(db, "id = ?", (cursor.lastrowid,))
            assert visit is not None
            return Booked(visit)

        return await self._db.transaction(q)

    async def move(
        self, visit_id: int, starts_at: datetime, ends_at: datetime, *, op: str, crews: int,
        at: datetime,
    ) -> Booked | None:  # fmt: skip
        def q(db: sqlite3.Connection) -> Booked | None:
            done = self._load(db, "op = ?", (op,))
            if done is not None:
                return Booked(done, repeat=True)
            visit = self._load(db, "id = ? AND status = ?", (visit_id, BOOKED))
            if visit is None:
                return None
            starts = _utc(starts_at)
            if self._held(db, visit.city_id, starts) >= crews:
                return None
            # The new time needs its own reminder; the op is the move's, so its «Да» is idempotent.
            db.execute(
                "UPDATE visits SET starts_at = ?, ends_at = ?, op = ?, reminded_at = NULL,"
                " updated_at = ? WHERE id = ?",
                (starts, _utc(ends_at), op, _utc(at), visit_id),
            )
            moved = self._load(db, "id = ?", (visit_id,))
            assert moved is not None
            return Booked(moved)

        return await self._db.transaction(q)

    async def close(self, visit_id: int, status: Status, *, at: datetime) -> Visit | None:
        def q(db: sqlite3.Connection) -> Visit | None:
            cursor = db.execute(
                "UPDATE visits SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                (status, _utc(at), visit_id, BOOKED),
            )
            return self._load(db, "id = ?", (visit_id,)) if cursor.rowcount else None

        return await self._db.transaction(q)

    async def get(self, visit_id: int) -> Visit | None:
        return await self._db.run(lambda db: self._load(db, "id = ?", (visit_id,)))

    async def by_op(self, op: str) -> Visit | None:
        return await self._db.run(lambda db: self._load(db, "op = ?", (op,)))

    async def booked_of(self, contract: str) -> list[Visit]:
        def q(db: sqlite3.Connection) -> list[Visit]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM visits WHERE contract = ? AND status = ?"  # noqa: S608
                " ORDER BY starts_at",
                (contract, BOOKED),
            ).fetchall()
            return [_visit(row) for row in rows]

        return await self._db.run(q)

    async def booked_between(
        self, city_id: str | None, start: datetime, end: datetime
    ) -> list[Visit]:
        def q(db: sqlite3.Connection) -> list[Visit]:
            sql = f"SELECT {_COLUMNS} FROM visits WHERE status = ? AND starts_at >= ? AND starts_at < ?"  # noqa: S608, E501
            args: list[Any] = [BOOKED, _utc(start), _utc(end)]
            if city_id is not None:
                sql += " AND city_id = ?"
                args.append(city_id)
            return [_visit(row) for row in db.execute(sql + " ORDER BY starts_at", args)]

        return await self._db.run(q)

    async def set_request(self, visit_id: int, request_id: int) -> None:
        await self._db.transaction(
            lambda db: db.execute(
                "UPDATE visits SET request_id = ? WHERE id = ?", (request_id, visit_id)
            )
        )

    async def mark_reminded(self, visit_id: int, at: datetime) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE visits SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL"
                " AND status = ?",
                (_utc(at), visit_id, BOOKED),
            )
            return cursor.rowcount == 1

        return await self._db.transaction(q)

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        args = (BOOKED, _utc(cutoff), BOOKED, _utc(cutoff))

        def q(db: sqlite3.Connection) -> int:
            if dry_run:
                return int(db.execute(_COUNT_OVER, args).fetchone()[0])
            return int(db.execute(_DELETE_OVER, args).rowcount)

        return await (self._db.run(q) if dry_run else self._db.transaction(q))

    async def shut(self) -> None:
        await self._db.close()
