"""Embedded default store: one SQLite file under ``./var/``, survives restarts.

sqlite3 is synchronous, so every call runs on one dedicated worker thread: the event loop never
blocks on disk, and the single thread serialises writes without extra locking.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from bot.models import (
    Conversation,
    ConversationKey,
    ConversationState,
    Inbound,
    RenderedButton,
    Sender,
    TranscriptEntry,
)
from bot.serialize import (
    buttons_from_json,
    buttons_to_json,
    files_from_json,
    files_to_json,
    inbound_from_json,
    inbound_to_json,
)
from bot.storage.base import (
    IdentityLink,
    Note,
    OutboundItem,
    PendingInbound,
    QueueEntry,
    Store,
    StoredRequest,
    TranscriptLine,
    TurnRecord,
    delivery_priority,
)
from bot.storage.health import StoreHealth
from bot.storage.sqlite_db import SqliteDb

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
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    inbound TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    received_at TEXT NOT NULL,
    UNIQUE (scope, platform_id)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (status, id);
CREATE TABLE IF NOT EXISTS unparsed (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    body TEXT NOT NULL,
    problem TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL,
    buttons TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    platform_message_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',  -- files to send with the text (FileRef JSON)
    priority INTEGER NOT NULL DEFAULT 0,    -- 0 replies, 1 bulk (outage notices)
    sending INTEGER NOT NULL DEFAULT 0      -- 1: handed to the platform, outcome not yet known
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, id);
CREATE TABLE IF NOT EXISTS payload_tokens (
    token TEXT PRIMARY KEY,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unreachable (
    conversation_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    platform_message_id TEXT NOT NULL,
    event TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_by_message ON receipts (scope, platform_message_id);
CREATE TABLE IF NOT EXISTS queue (
    conversation_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    department TEXT NOT NULL,
    reason TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    operator TEXT,
    assigned_at TEXT,
    first_response_at TEXT,
    notified_position INTEGER
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS csat (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    score INTEGER NOT NULL,
    operator TEXT,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a store made by an older version up to the schema above (columns only added)."""
    outbox = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "attachments" not in outbox:
        db.execute("ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]'")
    if "priority" not in outbox:  # rows of older versions are replies
        db.execute("ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
    if "sending" not in outbox:
        db.execute("ALTER TABLE outbox ADD COLUMN sending INTEGER NOT NULL DEFAULT 0")
    # Here, not in the schema: on an older file the column exists only after the line above.
    db.execute("CREATE INDEX IF NOT EXISTS outbox_lanes ON outbox (status, priority, id)")


_SURROGATES = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    """``text`` as valid UTF-8 (lone surrogates become U+FFFD), which SQLite requires."""
    return _SURROGATES.sub("\ufffd", text)


def _now() -> datetime:
    return datetime.now(UTC)


# --- retention: what is old, as SQL over this file (every "?" is the cutoff) ----------------------
# Open conversations (waiting in a queue or with an operator) and everything of theirs are kept
# whatever their age: an operator is reading them.
_OPEN = (
    "SELECT conversation_id FROM queue"
    " UNION SELECT id FROM conversations WHERE state IN ('queued', 'operator')"
)
_OLD_LINE = f"at < ? AND conversation_id NOT IN ({_OPEN})"


_STALE = (
    "{column} NOT IN ({open})"
    " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = {column} AND c.updated_at >= ?)"
    " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = {column} AND m.at >= ?)"
)


def _stale(column: str) -> str:
    """The conversation named by ``column`` had no activity since the cutoff (or is gone).
    ``column`` is qualified with its table: a bare name would mean the subquery's own."""
    return _STALE.format(column=column, open=_OPEN)


# (kind counted on /metrics, table, condition), in this order: a conversation goes after its old
# lines, its identity link after it, so a dry run and a real run count the same.
_RETENTION: tuple[tuple[str, str, str], ...] = (
    ("messages", "messages", _OLD_LINE),
    ("conversations", "conversations", f"updated_at < ? AND {_stale('conversations.id')}"),
    (
        "identity_links",
        "identity_links",
        f"linked_at < ? AND {_stale('identity_links.conversation_id')}",
    ),
    ("unreachable", "unreachable", f"since < ? AND {_stale('unreachable.conversation_id')}"),
    ("notes", "notes", f"at < ? AND conversation_id NOT IN ({_OPEN})"),
    ("csat", "csat", "at < ?"),
    ("inbox", "inbox", "status != 'pending' AND received_at < ?"),
    ("unparsed", "unparsed", "received_at < ?"),
    ("outbox", "outbox", "status != 'pending' AND updated_at < ?"),
    ("dedupe", "dedupe", "seen_at < ?"),
    ("receipts", "receipts", "at < ?"),
    ("legacy_requests", "requests", "created_at < ?"),  # taken over by the request board
)
_RETENTION_BATCH = 2000
# File ids as the stores write them: token_urlsafe(24) in the file store, uuid4().hex in uploads.
_FILE_ID_IN_TEXT = re.compile(r"(?<![\w-])[A-Za-z0-9_-]{32}(?![\w-])")


def _line_meta(line: TranscriptLine) -> dict[str, Any]:
    """A transcript line's meta; its files go in there, so every reader of the transcript
    (REST, the console, the widget's history) finds them without a schema change."""
    meta = dict(line.meta or {})
    if line.attachments:
        meta["attachments"] = files_to_json(line.attachments)
    return meta


_UPSERT_CONVERSATION = (
    "INSERT INTO conversations (id, state, locale, contract_number, dialog, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state=excluded.state,"
    " locale=excluded.locale, contract_number=excluded.contract_number,"
    " dialog=excluded.dialog, updated_at=excluded.updated_at"
)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _queue_entry(row: tuple[Any, ...]) -> QueueEntry:
    return QueueEntry(
        conversation_id=row[0],
        channel=row[1],
        department=row[2],
        reason=row[3],
        queued_at=datetime.fromisoformat(row[4]),
        operator=row[5],
        assigned_at=_when(row[6]),
        first_response_at=_when(row[7]),
        notified_position=row[8],
    )


def _transcript_entry(conversation_id: str, row: tuple[Any, ...]) -> TranscriptEntry:
    """A ``messages`` row (id, sender, text, buttons, meta, at)."""
    return TranscriptEntry(
        id=row[0],
        conversation_id=conversation_id,
        sender=cast(Sender, row[1]),
        text=row[2],
        buttons=buttons_from_json(json.loads(row[3])),
        meta=json.loads(row[4]),
        at=datetime.fromisoformat(row[5]),
    )


def _conversation_row(conversation: Conversation, at: datetime) -> tuple[object, ...]:
    return (
        conversation.id,
        conversation.state,
        conversation.locale,
        conversation.contract_number,
        json.dumps(conversation.dialog, ensure_ascii=False),
        at.isoformat(),
    )


class SqliteStore(Store):
    def __init__(self, *, path: Path) -> None:
        self.health = StoreHealth()
        self._db = SqliteDb(
            path, schema=_SCHEMA, thread_name="sqlite-store", migrate=_migrate, health=self.health
        )
        self._run = self._db.run

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
        values = _conversation_row(conversation, _now())
        await self._run(lambda db: db.execute(_UPSERT_CONVERSATION, values))

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

        return [_transcript_entry(conversation_id, row) for row in await self._run(q)]

    async def last_message(
        self, conversation_id: str, *, sender: Sender | None = None
    ) -> TranscriptEntry | None:
        def q(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            sql = (
                "SELECT id, sender, text, buttons, meta, at FROM messages WHERE conversation_id = ?"
            )
            args: tuple[Any, ...] = (conversation_id,)
            if sender is not None:
                sql += " AND sender = ?"
                args += (sender,)
            row = db.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
            return cast("tuple[Any, ...] | None", row)

        row = await self._run(q)
        return None if row is None else _transcript_entry(conversation_id, row)

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

    async def inbox_put(self, scope: str, platform_id: str, inbound: Inbound) -> int | None:
        body = json.dumps(inbound_to_json(inbound), ensure_ascii=False)

        def q(db: sqlite3.Connection) -> int | None:
            cur = db.execute(
                "INSERT OR IGNORE INTO inbox (scope, platform_id, conversation_id, inbound,"
                " status, received_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                (scope, platform_id, inbound.key.id, body, _now().isoformat()),
            )
            return cur.lastrowid if cur.rowcount == 1 else None

        return await self._run(q)

    async def inbox_pending(self, conversation_id: str | None = None) -> list[PendingInbound]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id, inbound, attempts FROM inbox WHERE status = 'pending'"
                " AND (? IS NULL OR conversation_id = ?) ORDER BY id",
                (conversation_id, conversation_id),
            ).fetchall()
        )
        return [PendingInbound(r[0], inbound_from_json(json.loads(r[1])), r[2]) for r in rows]

    async def inbox_retry_later(self, inbox_id: int, error: str, *, give_up: bool) -> None:
        status = "failed" if give_up else "pending"
        await self._run(
            lambda db: db.execute(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ?, status = ? WHERE id = ?",
                (error[:2000], status, inbox_id),
            )
        )

    async def inbox_forget(self, older_than_days: float) -> int:
        cutoff = (_now() - timedelta(days=older_than_days)).isoformat()

        def q(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "DELETE FROM inbox WHERE status = 'done' AND received_at < ?", (cutoff,)
            )
            return cur.rowcount

        return await self._run(q)

    async def keep_unparsed(self, scope: str, body: str, problem: str) -> None:
        # What we keep here is by definition what we could not read: a lone surrogate in it
        # must not turn "kept for inspection" into a failed webhook.
        body, problem = _storable(body[:1_000_000]), _storable(problem[:2000])
        await self._run(
            lambda db: db.execute(
                "INSERT INTO unparsed (scope, body, problem, received_at) VALUES (?, ?, ?, ?)",
                (scope, body, problem, _now().isoformat()),
            )
        )

    async def commit_turn(self, turn: TurnRecord) -> list[TranscriptEntry]:
        conversation = turn.conversation
        at = _now()
        priority = delivery_priority(turn)  # read here: the context does not reach the thread

        def q(db: sqlite3.Connection) -> list[int]:
            ids: list[int] = []
            db.execute(_UPSERT_CONVERSATION, _conversation_row(conversation, at))
            for line in turn.lines:
                cur = db.execute(
                    "INSERT INTO messages (conversation_id, sender, text, buttons, meta, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        conversation.id, line.sender, line.text,
                        json.dumps(buttons_to_json(line.buttons), ensure_ascii=False),
                        json.dumps(_line_meta(line), ensure_ascii=False),
                        at.isoformat(),
                    ),
                )  # fmt: skip
                ids.append(cast(int, cur.lastrowid))
            for line in turn.deliver:
                buttons = json.dumps(buttons_to_json(line.buttons), ensure_ascii=False)
                files = json.dumps(files_to_json(line.attachments), ensure_ascii=False)
                db.execute(
                    "INSERT INTO outbox (conversation_id, channel, chat_id, text, buttons,"
                    " status, created_at, updated_at, attachments, priority)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
                    (
                        conversation.id, conversation.key.channel, conversation.key.chat_id,
                        line.text, buttons, at.isoformat(), at.isoformat(), files, priority,
                    ),
                )  # fmt: skip
            if turn.inbox_id is not None:
                db.execute("UPDATE inbox SET status = 'done' WHERE id = ?", (turn.inbox_id,))
            return ids

        ids = await self._db.transaction(q)
        return [
            TranscriptEntry(
                id=i,
                conversation_id=conversation.id,
                sender=line.sender,
                text=line.text,
                at=at,
                buttons=line.buttons,
                meta=_line_meta(line),
            )
            for i, line in zip(ids, turn.lines, strict=True)
        ]

    async def outbox_pending(
        self, *, limit: int = 500, conversation_id: str | None = None
    ) -> list[OutboundItem]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id, conversation_id, channel, chat_id, text, buttons, attempts,"
                " attachments, priority, sending FROM outbox WHERE status = 'pending'"
                " AND (? IS NULL OR conversation_id = ?) ORDER BY priority, id LIMIT ?",
                (conversation_id, conversation_id, limit),
            ).fetchall()
        )
        return [
            OutboundItem(
                r[0], r[1], r[2], r[3], r[4], buttons_from_json(json.loads(r[5])), r[6],
                files_from_json(json.loads(r[7])), r[8], uncertain=bool(r[9]),
            )
            for r in rows
        ]  # fmt: skip

    async def outbox_sending(self, item_id: int) -> None:
        await self._run(
            lambda db: db.execute("UPDATE outbox SET sending = 1 WHERE id = ?", (item_id,))
        )

    async def outbox_done(
        self, item_id: int, *, platform_message_id: str | None = None, error: str | None = None
    ) -> None:
        status = "failed" if error is not None else "sent"
        await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET status = ?, platform_message_id = ?, last_error = ?,"
                " updated_at = ?, sending = 0 WHERE id = ?",
                (status, platform_message_id, error, _now().isoformat(), item_id),
            )
        )

    async def outbox_attempt_failed(self, item_id: int, error: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, updated_at = ?,"
                " sending = 0 WHERE id = ?",
                (error[:2000], _now().isoformat(), item_id),
            )
        )

    async def queue_put(
        self, conversation_id: str, channel: str, department: str, reason: str
    ) -> QueueEntry:
        now = _now().isoformat()
        await self._run(
            lambda db: db.execute(
                "INSERT INTO queue (conversation_id, channel, department, reason, queued_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(conversation_id) DO UPDATE SET"
                " department = excluded.department, reason = excluded.reason,"
                " operator = NULL, assigned_at = NULL",
                (conversation_id, channel, department, reason, now),
            )
        )
        entry = await self.queue_get(conversation_id)
        assert entry is not None  # just written
        return entry

    async def queue_get(self, conversation_id: str) -> QueueEntry | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT conversation_id, channel, department, reason, queued_at, operator,"
                " assigned_at, first_response_at, notified_position FROM queue"
                " WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
        )
        return None if row is None else _queue_entry(row)

    async def queue_entries(self) -> list[QueueEntry]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT conversation_id, channel, department, reason, queued_at, operator,"
                " assigned_at, first_response_at, notified_position FROM queue"
                " ORDER BY queued_at, conversation_id"
            ).fetchall()
        )
        return [_queue_entry(r) for r in rows]

    async def queue_assign(
        self, conversation_id: str, operator: str | None, *, only_if_unassigned: bool = False
    ) -> bool:
        sql = "UPDATE queue SET operator = ?, assigned_at = ? WHERE conversation_id = ?"
        if only_if_unassigned:
            sql += " AND operator IS NULL"
        at = _now().isoformat() if operator else None

        def q(db: sqlite3.Connection) -> bool:
            return db.execute(sql, (operator, at, conversation_id)).rowcount == 1

        return await self._run(q)

    async def queue_responded(self, conversation_id: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE queue SET first_response_at = COALESCE(first_response_at, ?)"
                " WHERE conversation_id = ?",
                (_now().isoformat(), conversation_id),
            )
        )

    async def queue_notified(self, conversation_id: str, position: int) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE queue SET notified_position = ? WHERE conversation_id = ?",
                (position, conversation_id),
            )
        )

    async def queue_remove(self, conversation_id: str) -> None:
        await self._run(
            lambda db: db.execute("DELETE FROM queue WHERE conversation_id = ?", (conversation_id,))
        )

    async def add_note(self, conversation_id: str, author: str, text: str) -> Note:
        at = _now()
        await self._run(
            lambda db: db.execute(
                "INSERT INTO notes (conversation_id, author, text, at) VALUES (?, ?, ?, ?)",
                (conversation_id, author, text, at.isoformat()),
            )
        )
        return Note(author, text, at)

    async def notes(self, conversation_id: str) -> list[Note]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT author, text, at FROM notes WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        )
        return [Note(r[0], r[1], datetime.fromisoformat(r[2])) for r in rows]

    async def add_csat(self, conversation_id: str, score: int, operator: str | None) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO csat (conversation_id, score, operator, at) VALUES (?, ?, ?, ?)",
                (conversation_id, score, operator, _now().isoformat()),
            )
        )

    async def recent_conversations(self, *, state: str, limit: int = 50) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id FROM conversations WHERE state = ? ORDER BY updated_at DESC LIMIT ?",
                (state, limit),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    async def conversations_of_contract(self, contract_number: str) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT c.id FROM conversations c WHERE c.contract_number = ?"
                " UNION SELECT l.conversation_id FROM identity_links l"
                " WHERE l.contract_number = ?",
                (contract_number, contract_number),
            ).fetchall()
        )
        ids = [str(r[0]) for r in rows]
        firsts = await self._run(
            lambda db: {
                str(r[0]): int(r[1])
                for r in db.execute(
                    "SELECT conversation_id, MIN(id) FROM messages GROUP BY conversation_id"
                ).fetchall()
            }
        )
        return sorted(ids, key=lambda cid: firsts.get(cid, 1 << 62))

    async def payload_token(self, payload: str) -> str:
        token = "~" + hashlib.sha256(payload.encode()).hexdigest()[:20]
        await self._run(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO payload_tokens (token, payload) VALUES (?, ?)",
                (token, payload),
            )
        )
        return token

    async def payload_for(self, token: str) -> str | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT payload FROM payload_tokens WHERE token = ?", (token,)
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def set_reachable(self, conversation_id: str, reachable: bool, reason: str = "") -> None:
        if reachable:
            await self._run(
                lambda db: db.execute(
                    "DELETE FROM unreachable WHERE conversation_id = ?", (conversation_id,)
                )
            )
            return
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO unreachable (conversation_id, reason, since)"
                " VALUES (?, ?, ?)",
                (conversation_id, reason, _now().isoformat()),
            )
        )

    async def is_reachable(self, conversation_id: str) -> bool:
        row = await self._run(
            lambda db: db.execute(
                "SELECT 1 FROM unreachable WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
        )
        return row is None

    async def record_receipt(self, scope: str, platform_message_id: str, event: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO receipts (scope, platform_message_id, event, at) VALUES (?, ?, ?, ?)",
                (scope, platform_message_id, event, _now().isoformat()),
            )
        )

    async def receipts(self, scope: str, platform_message_id: str) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT event FROM receipts WHERE scope = ? AND platform_message_id = ?"
                " ORDER BY id",
                (scope, platform_message_id),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    async def ping(self) -> bool:
        row: tuple[int] | None = await self._run(lambda db: db.execute("SELECT 1").fetchone())
        return row == (1,)

    async def close(self) -> None:
        await self._db.close()

    # --- retention (bot/retention.py) ---------------------------------------------------------
    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        stamp = cutoff.astimezone(UTC).isoformat()
        counts: dict[str, int] = {}
        for kind, table, where in _RETENTION:
            args = (stamp,) * where.count("?")
            if dry_run:
                sql = f"SELECT COUNT(*) FROM {table} WHERE {where}"  # noqa: S608 - fixed text

                def count(
                    db: sqlite3.Connection, sql: str = sql, args: tuple[str, ...] = args
                ) -> int:
                    return int(db.execute(sql, args).fetchone()[0])

                counts[kind] = await self._run(count)
                continue
            # In batches, each its own transaction: the store's one thread serves turns in
            # between, so a first run over months of history never stalls the conversations.
            sql = (
                f"DELETE FROM {table} WHERE rowid IN"  # noqa: S608 - fixed text of _RETENTION
                f" (SELECT rowid FROM {table} WHERE {where} LIMIT {_RETENTION_BATCH})"
            )

            def batch(db: sqlite3.Connection, sql: str = sql, args: tuple[str, ...] = args) -> int:
                return int(db.execute(sql, args).rowcount)

            counts[kind] = 0
            while (deleted := await self._run(batch)) > 0:
                counts[kind] += deleted
        return counts

    async def files_in_use(self, cutoff: datetime) -> set[str]:
        stamp = cutoff.astimezone(UTC).isoformat()

        def q(db: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            rows = db.execute(
                f"SELECT meta FROM messages WHERE NOT ({_OLD_LINE})"  # noqa: S608 - fixed text
                " AND meta LIKE '%attachments%'",
                (stamp,),
            )
            for (meta,) in rows:
                found.update(_FILE_ID_IN_TEXT.findall(meta))
            for (attachments,) in db.execute(
                "SELECT attachments FROM outbox WHERE status = 'pending' AND attachments != '[]'"
            ):
                found.update(_FILE_ID_IN_TEXT.findall(attachments))
            return found

        return await self._db.run(q)
