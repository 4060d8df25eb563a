"""Embedded default store: one SQLite file under ``./var/``, survives restarts.

sqlite3 is synchronous, so every call runs on one dedicated worker thread: the event loop never
blocks on disk, and the single thread serialises writes without extra locking.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from bot.models import (
    Conversation,
    ConversationKey,
    ConversationState,
    RenderedButton,
    Sender,
    TranscriptEntry,
)
from bot.storage.base import IdentityLink, Store, StoredRequest

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    locale TEXT NOT NULL,
    contract_number TEXT,
    dialog TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    buttons TEXT NOT NULL,
    meta TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS dedupe (
    scope TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (scope, platform_id)
);
CREATE TABLE IF NOT EXISTS identity_links (
    conversation_id TEXT PRIMARY KEY,
    contract_number TEXT NOT NULL,
    method TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def _now() -> datetime:
    return datetime.now(UTC)


class SqliteStore(Store):
    def __init__(self, *, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        # WAL keeps readers from blocking the writer; synchronous=NORMAL is durable across a
        # process crash (only an OS crash may lose the last transaction).
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._db)

    async def load_conversation(self, key: ConversationKey) -> Conversation | None:
        def q(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            return cast(
                "tuple[Any, ...] | None",
                db.execute(
                    "SELECT state, locale, contract_number, dialog FROM conversations WHERE id = ?",
                    (key.id,),
                ).fetchone(),
            )

        row = await self._run(q)
        if row is None:
            return None
        state, locale, contract, dialog = row
        return Conversation(
            key=key,
            state=cast(ConversationState, state),
            locale=locale,
            contract_number=contract,
            dialog=json.loads(dialog),
        )

    async def save_conversation(self, conversation: Conversation) -> None:
        values = (
            conversation.id,
            conversation.state,
            conversation.locale,
            conversation.contract_number,
            json.dumps(conversation.dialog, ensure_ascii=False),
            _now().isoformat(),
        )
        await self._run(
            lambda db: db.execute(
                "INSERT INTO conversations (id, state, locale, contract_number, dialog, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state=excluded.state,"
                " locale=excluded.locale, contract_number=excluded.contract_number,"
                " dialog=excluded.dialog, updated_at=excluded.updated_at",
                values,
            )
        )

    async def append_message(
        self,
        conversation_id: str,
        sender: Sender,
        text: str,
        *,
        buttons: Sequence[RenderedButton] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> TranscriptEntry:
        at = _now()
        buttons_json = json.dumps(
            [{"title": b.title, "payload": b.payload} for b in buttons], ensure_ascii=False
        )
        meta_json = json.dumps(dict(meta or {}), ensure_ascii=False)

        def q(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO messages (conversation_id, sender, text, buttons, meta, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, sender, text, buttons_json, meta_json, at.isoformat()),
            )
            return cast(int, cur.lastrowid)

        msg_id = await self._run(q)
        return TranscriptEntry(
            id=msg_id,
            conversation_id=conversation_id,
            sender=sender,
            text=text,
            at=at,
            buttons=tuple(buttons),
            meta=dict(meta or {}),
        )

    async def messages(
        self, conversation_id: str, *, after: int = 0, limit: int = 200
    ) -> list[TranscriptEntry]:
        def q(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(
                "SELECT id, sender, text, buttons, meta, at FROM messages"
                " WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?",
                (conversation_id, after, limit),
            ).fetchall()

        rows = await self._run(q)
        return [
            TranscriptEntry(
                id=row[0],
                conversation_id=conversation_id,
                sender=cast(Sender, row[1]),
                text=row[2],
                buttons=tuple(RenderedButton(b["title"], b["payload"]) for b in json.loads(row[3])),
                meta=json.loads(row[4]),
                at=datetime.fromisoformat(row[5]),
            )
            for row in rows
        ]

    async def remember_once(self, scope: str, platform_id: str) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT OR IGNORE INTO dedupe (scope, platform_id, seen_at) VALUES (?, ?, ?)",
                (scope, platform_id, _now().isoformat()),
            )
            return cur.rowcount == 1

        return await self._run(q)

    async def link_identity(self, key: ConversationKey, contract_number: str, method: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO identity_links (conversation_id, contract_number, method, linked_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(conversation_id) DO UPDATE SET"
                " contract_number=excluded.contract_number, method=excluded.method,"
                " linked_at=excluded.linked_at",
                (key.id, contract_number, method, _now().isoformat()),
            )
        )

    async def identity(self, key: ConversationKey) -> IdentityLink | None:
        def q(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            return cast(
                "tuple[Any, ...] | None",
                db.execute(
                    "SELECT contract_number, method, linked_at FROM identity_links"
                    " WHERE conversation_id = ?",
                    (key.id,),
                ).fetchone(),
            )

        row = await self._run(q)
        if row is None:
            return None
        return IdentityLink(key, row[0], row[1], datetime.fromisoformat(row[2]))

    async def revoke_identity(self, key: ConversationKey) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute("DELETE FROM identity_links WHERE conversation_id = ?", (key.id,))
            return cur.rowcount > 0

        return await self._run(q)

    async def add_request(
        self, kind: str, conversation_id: str, data: Mapping[str, Any]
    ) -> StoredRequest:
        at = _now()
        payload = json.dumps(dict(data), ensure_ascii=False)

        def q(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO requests (kind, conversation_id, data, created_at)"
                " VALUES (?, ?, ?, ?)",
                (kind, conversation_id, payload, at.isoformat()),
            )
            return cast(int, cur.lastrowid)

        req_id = await self._run(q)
        return StoredRequest(req_id, kind, conversation_id, dict(data), at)

    async def requests(self, kind: str | None = None) -> list[StoredRequest]:
        def q(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            sql = "SELECT id, kind, conversation_id, data, created_at FROM requests"
            if kind is None:
                return db.execute(sql + " ORDER BY id").fetchall()
            return db.execute(sql + " WHERE kind = ? ORDER BY id", (kind,)).fetchall()

        rows = await self._run(q)
        return [
            StoredRequest(r[0], r[1], r[2], json.loads(r[3]), datetime.fromisoformat(r[4]))
            for r in rows
        ]

    async def ping(self) -> bool:
        row: tuple[int] | None = await self._run(lambda db: db.execute("SELECT 1").fetchone())
        return row == (1,)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._run(lambda db: db.close())
        self._executor.shutdown(wait=True)
