"""The embedded request board: one SQLite file under ``./var/`` with the records, their history
and the CRM webhook's outbox, so a change and the call that reports it commit together."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from bot.requests.model import (
    BY_BOT,
    Action,
    Change,
    HistoryEntry,
    NewRequest,
    RequestRecord,
    webhook_body,
)
from bot.requests.store import UNSET, Delivery, RequestBoard, _Unset
from bot.storage.base import StoredRequest
from bot.storage.sqlite_db import SqliteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    contract TEXT,
    name TEXT,
    phone TEXT,
    city_id TEXT,
    address TEXT,
    details TEXT NOT NULL,          -- JSON object
    attachments TEXT NOT NULL,      -- JSON list
    comment TEXT,
    assignee TEXT,
    legacy_id INTEGER UNIQUE        -- its id in the conversation store's old requests table
);
CREATE INDEX IF NOT EXISTS requests_newest ON requests (created_at, id);
CREATE TABLE IF NOT EXISTS request_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS history_of_request ON request_history (request_id, id);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS webhook_pending ON webhook_outbox (delivered_at, request_id, id);
"""

_HISTORY_OF = (
    "SELECT request_id, at, by, action, before, after FROM request_history"
    " WHERE request_id IN ({marks}) ORDER BY id"
)
_COLUMNS = (
    "id, kind, status, created_at, updated_at, conversation_id, contract, name, phone, city_id,"
    " address, details, attachments, comment, assignee"
)


# Retention: records over (done or cancelled) before the cutoff whose every webhook call went out
# (the CRM must hear of a record before it is forgotten here), and the calls delivered before it.
_OLD_RECORDS = (
    "SELECT id FROM requests WHERE status IN ('done', 'cancelled') AND updated_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM webhook_outbox w WHERE w.request_id = requests.id"
    "                 AND w.delivered_at IS NULL)"
)
_OLD_CALLS = "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at < ?"
_OF_RECORD = (
    ("request_history", "request_id"),
    ("webhook_outbox", "request_id"),
    ("requests", "id"),
)
# File ids as the file store and the widget's uploads write them (bot/storage/files.py).
_FILE_ID_IN_TEXT = re.compile(r"(?<![\w-])[A-Za-z0-9_-]{32}(?![\w-])")


def _stamp(at: datetime) -> str:
    # Fixed width, so text order is time order in SQL.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class SqliteRequestBoard(RequestBoard):
    def __init__(
        self,
        path: Path,
        *,
        webhooks: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``webhooks``: every new or changed record also queues a call to the CRM (off when no
        ``REQUESTS_WEBHOOK_URL`` is set, so nothing piles up for nobody)."""
        self._db = SqliteDb(Path(path), schema=_SCHEMA, thread_name="request-board")
        self._webhooks = webhooks
        self._clock = clock

    # --- records -------------------------------------------------------------------------------
    async def add(self, new: NewRequest, *, by: str = BY_BOT) -> RequestRecord:
        at = self._clock()

        def q(db: sqlite3.Connection) -> RequestRecord:
            request_id = self._insert(db, new, at, legacy_id=None, request_id=None)
            entry = self._log(db, request_id, at, by, "created", None, "new")
            record = self._load(db, request_id)
            assert record is not None
            self._queue(db, "created", record, (entry,), at)
            return record

        return await self._db.transaction(q)

    async def get(self, request_id: int) -> RequestRecord | None:
        return await self._db.run(lambda db: self._load(db, request_id))

    async def find(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        city_id: str | None = None,
    ) -> list[RequestRecord]:
        where, args = [], []
        for column, value in (("kind", kind), ("status", status), ("city_id", city_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM requests"  # noqa: S608 - fixed names, values bound
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"

        def q(db: sqlite3.Connection) -> list[RequestRecord]:
            rows = db.execute(sql, args).fetchall()
            history = self._histories(db, [row[0] for row in rows])
            return [self._record(row, history.get(row[0], ())) for row in rows]

        return await self._db.run(q)

    async def change(
        self,
        request_id: int,
        *,
        by: str,
        status: str | None = None,
        comment: str | None = None,
        assignee: str | _Unset | None = UNSET,
    ) -> Change | None:
        at = self._clock()

        def q(db: sqlite3.Connection) -> Change | None:
            before = self._load(db, request_id)
            if before is None:
                return None
            updates: dict[str, str | None] = {}
            if status is not None and status != before.status:
                updates["status"] = status
            if comment is not None and _text(comment) != before.comment:
                updates["comment"] = _text(comment)
            if not isinstance(assignee, _Unset) and _text(assignee) != before.assignee:
                updates["assignee"] = _text(assignee)
            if not updates:
                return Change(before, ())
            sets = ", ".join(f"{column} = ?" for column in updates)
            db.execute(
                f"UPDATE requests SET {sets}, updated_at = ? WHERE id = ?",  # noqa: S608 - fixed names
                (*updates.values(), _stamp(at), request_id),
            )
            changed = tuple(
                self._log(db, request_id, at, by, cast(Action, column),
                          getattr(before, column), value)
                for column, value in updates.items()
            )  # fmt: skip
            after = self._load(db, request_id)
            assert after is not None
            self._queue(db, "updated", after, changed, at)
            return Change(after, changed)

        return await self._db.transaction(q)

    async def record_access(
        self, request_ids: Sequence[int], *, by: str, action: str
    ) -> RequestRecord | None:
        at = self._clock()
        kind = cast(Action, action)

        def q(db: sqlite3.Connection) -> RequestRecord | None:
            first: RequestRecord | None = None
            for request_id in request_ids:
                if db.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone():
                    self._log(db, request_id, at, by, kind, None, None)
                    if first is None:
                        first = self._load(db, request_id)
            return first

        return await self._db.transaction(q)

    async def import_legacy(self, rows: Sequence[StoredRequest]) -> int:
        at = self._clock()

        def q(db: sqlite3.Connection) -> int:
            imported = 0
            for row in rows:
                if db.execute("SELECT 1 FROM requests WHERE legacy_id = ?", (row.id,)).fetchone():
                    continue
                taken = db.execute("SELECT 1 FROM requests WHERE id = ?", (row.id,)).fetchone()
                new = _legacy_request(row)
                request_id = self._insert(
                    db, new, row.created_at, legacy_id=row.id,
                    request_id=None if taken else row.id,
                )  # fmt: skip
                entry = self._log(db, request_id, at, BY_BOT, "imported", None, "new")
                record = self._load(db, request_id)
                assert record is not None
                self._queue(db, "created", record, (entry,), at)  # the CRM never heard of it
                imported += 1
            return imported

        return await self._db.transaction(q)

    # --- the webhook outbox --------------------------------------------------------------------
    async def deliveries_due(self, now: datetime, limit: int) -> list[Delivery]:
        def q(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(
                "SELECT id, request_id, body, attempts, next_at FROM webhook_outbox"
                " WHERE id IN (SELECT MIN(id) FROM webhook_outbox WHERE delivered_at IS NULL"
                "              GROUP BY request_id)"
                " AND next_at <= ? ORDER BY id LIMIT ?",
                (_stamp(now), limit),
            ).fetchall()

        rows = await self._db.run(q)
        return [
            Delivery(r[0], r[1], r[2].encode("utf-8"), r[3], datetime.fromisoformat(r[4]))
            for r in rows
        ]

    async def next_delivery_at(self) -> datetime | None:
        def q(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT MIN(next_at) FROM webhook_outbox WHERE id IN (SELECT MIN(id)"
                " FROM webhook_outbox WHERE delivered_at IS NULL GROUP BY request_id)"
            ).fetchone()
            return cast(str | None, row[0])

        found = await self._db.run(q)
        return datetime.fromisoformat(found) if found else None

    async def delivery_done(self, delivery_id: int) -> None:
        at = _stamp(self._clock())
        await self._db.run(
            lambda db: db.execute(
                "UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (at, delivery_id),
            )
        )

    async def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime) -> None:
        await self._db.run(
            lambda db: db.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, next_at = ?"
                " WHERE id = ?",
                (error[:500], _stamp(retry_at), delivery_id),
            )
        )

    async def undelivered(self) -> int:
        def q(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL"
            ).fetchone()
            return int(row[0])

        return await self._db.run(q)

    async def close(self) -> None:
        await self._db.close()

    # --- retention -----------------------------------------------------------------------------
    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        stamp = _stamp(cutoff)

        def q(db: sqlite3.Connection) -> dict[str, int]:
            ids = [row[0] for row in db.execute(_OLD_RECORDS, (stamp,))]
            calls = db.execute(_OLD_CALLS, (stamp,)).fetchone()[0]
            if dry_run:
                return {"requests": len(ids), "request_webhooks": int(calls)}
            for start in range(0, len(ids), 500):  # SQLite's limit on bound variables
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                for table, column in _OF_RECORD:
                    sql = f"DELETE FROM {table} WHERE {column} IN ({marks})"  # noqa: S608 - ours
                    db.execute(sql, chunk)
            db.execute("DELETE FROM webhook_outbox WHERE delivered_at < ?", (stamp,))
            return {"requests": len(ids), "request_webhooks": int(calls)}

        return await (self._db.run(q) if dry_run else self._db.transaction(q))

    async def files_in_use(self) -> set[str]:
        def q(db: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for (attachments,) in db.execute(
                "SELECT attachments FROM requests WHERE attachments != '[]'"
            ):
                found.update(_FILE_ID_IN_TEXT.findall(attachments))
            return found

        return await self._db.run(q)

    # --- inside a transaction ------------------------------------------------------------------
    @staticmethod
    def _insert(
        db: sqlite3.Connection,
        new: NewRequest,
        at: datetime,
        *,
        legacy_id: int | None,
        request_id: int | None,
    ) -> int:
        cur = db.execute(
            "INSERT INTO requests (id, kind, status, created_at, updated_at, conversation_id,"
            " contract, name, phone, city_id, address, details, attachments, legacy_id)"
            " VALUES (?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id, new.kind, _stamp(at), _stamp(at), new.conversation_id,
                _text(new.contract), _text(new.name), _text(new.phone), _text(new.city_id),
                _text(new.address), json.dumps(dict(new.details), ensure_ascii=False),
                json.dumps([dict(a) for a in new.attachments], ensure_ascii=False), legacy_id,
            ),
        )  # fmt: skip
        return cast(int, cur.lastrowid)

    @staticmethod
    def _log(
        db: sqlite3.Connection,
        request_id: int,
        at: datetime,
        by: str,
        action: Action,
        before: str | None,
        after: str | None,
    ) -> HistoryEntry:
        db.execute(
            "INSERT INTO request_history (request_id, at, by, action, before, after)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (request_id, _stamp(at), by, action, before, after),
        )
        return HistoryEntry(at, by, action, before, after)

    def _queue(
        self,
        db: sqlite3.Connection,
        event: str,
        record: RequestRecord,
        changed: tuple[HistoryEntry, ...],
        at: datetime,
    ) -> None:
        if not self._webhooks:
            return
        cur = db.execute(
            "INSERT INTO webhook_outbox (request_id, body, next_at, created_at)"
            " VALUES (?, '', ?, ?)",
            (record.id, _stamp(at), _stamp(at)),
        )
        delivery_id = cast(int, cur.lastrowid)
        # The body is fixed now: a retry sends the very bytes (and signature) of the first try,
        # and each call tells the record as it was after its own change.
        body = json.dumps(webhook_body(delivery_id, event, record, changed), ensure_ascii=False)
        db.execute("UPDATE webhook_outbox SET body = ? WHERE id = ?", (body, delivery_id))

    def _load(self, db: sqlite3.Connection, request_id: int) -> RequestRecord | None:
        sql = f"SELECT {_COLUMNS} FROM requests WHERE id = ?"  # noqa: S608 - fixed names
        row = db.execute(sql, (request_id,)).fetchone()
        if row is None:
            return None
        return self._record(row, self._histories(db, [request_id]).get(request_id, ()))

    @staticmethod
    def _histories(
        db: sqlite3.Connection, request_ids: Sequence[int]
    ) -> dict[int, tuple[HistoryEntry, ...]]:
        out: dict[int, list[HistoryEntry]] = {}
        for start in range(0, len(request_ids), 500):  # SQLite's limit on bound variables
            chunk = list(request_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            sql = _HISTORY_OF.format(marks=marks)  # only "?" marks go in
            for row in db.execute(sql, chunk):
                out.setdefault(row[0], []).append(
                    HistoryEntry(datetime.fromisoformat(row[1]), row[2], row[3], row[4], row[5])
                )
        return {key: tuple(value) for key, value in out.items()}

    @staticmethod
    def _record(row: Sequence[Any], history: tuple[HistoryEntry, ...]) -> RequestRecord:
        return RequestRecord(
            id=row[0],
            kind=row[1],
            status=row[2],
            created_at=datetime.fromisoformat(row[3]),
            updated_at=datetime.fromisoformat(row[4]),
            conversation_id=row[5],
            contract=row[6],
            name=row[7],
            phone=row[8],
            city_id=row[9],
            address=row[10],
            details=json.loads(row[11]),
            attachments=tuple(json.loads(row[12])),
            comment=row[13],
            assignee=row[14],
            history=history,
        )


def _legacy_request(row: StoredRequest) -> NewRequest:
    """An old row's free-form ``data`` spread over the record's columns; whatever has no column
    stays in ``details``, so nothing the customer left is dropped."""
    data: Mapping[str, Any] = row.data
    rest = {k: v for k, v in data.items() if k not in ("name", "phone", "contract", "city_id")}
    address = rest.get("address")
    if address is None and rest.get("street"):
        address = f"{rest['street']}, {rest.get('house', '')}".rstrip(", ")
    details = {k: v for k, v in rest.items() if k not in ("street", "house", "address")}
    if "status" in details:  # the house's status in the register, not the request's
        details["house_status"] = details.pop("status")
    return NewRequest(
        kind=row.kind,
        conversation_id=row.conversation_id,
        contract=_text(data.get("contract")),
        name=_text(data.get("name")),
        phone=_text(data.get("phone")),
        city_id=_text(data.get("city_id")),
        address=_text(address),
        details=details,
    )
