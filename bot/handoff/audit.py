"""The audit log of what operators do: who logged in (or failed to, from where and why), who
opened which customer's card or transcript, claimed, transferred or closed a chat, acted on an
account, changed a request or a visit, exported records.

Kept in its own SQLite file (default ``var/audit.sqlite3``, ``SqliteAuditLog``) with the time of
each entry as seconds since the epoch, so the retention task deletes old entries with one
indexed query (``delete_older_than``); with REDIS_URL in the shared Redis (``RedisAuditLog``,
bot/handoff/redis_audit.py) so every process writes to one log. Readable by supervisors only:

- ``GET /api/v1/operator/audit?login=&action=&since=&limit=`` newest first;
- ``GET /api/v1/operator/audit.csv`` the same for spreadsheets (the export is itself audited).

Nothing secret is written: no passwords, session or CSRF tokens, one-time codes. A failed
login names the account as typed only when such an operator exists; otherwise a short digest
(people type their password into the login field more often than one would think).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from bot.client_address import client_address
from bot.config import IPNetwork, Settings
from bot.http import csv_download, json_response, spreadsheet_cell
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.sqlite_db import SqliteDb
from bot.untrusted import UntrustedInput, bounded_int, clean_text

log = logging.getLogger(__name__)

AUDIT_PATH = "/api/v1/operator/audit"
MAX_LIMIT = 1000
MAX_EXPORT = 100_000
# Values in entries are short by nature (logins, ids, reasons); anything longer is cut.
_VALUE_LIMIT = 300
_NO_STORE = {"Cache-Control": "no-store"}
# Detail keys that must never reach the log, whatever a caller passes by mistake.
_SECRET_KEYS = frozenset({"password", "token", "csrf", "csrf_token", "code", "otp", "secret"})

# What is written down (``action``); the API filters by these names.
ACTIONS: tuple[str, ...] = (
    "login",
    "login_failed",
    "login_throttled",
    "logout",
    "conversation.open",
    "conversation.claim",
    "conversation.transfer",
    "conversation.release",
    "conversation.close",
    "customer.card",
    "customer.action",
    "request.open",
    "request.change",
    "requests.export",
    "visit.move",
    "visit.cancel",
    "audit.export",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,                -- seconds since the epoch (UTC)
    login TEXT NOT NULL,             -- the operator, or a digest of an unknown login
    action TEXT NOT NULL,
    target TEXT,                     -- a conversation id, contract, request or visit id
    address TEXT,                    -- the client's address (trusted proxies honoured)
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_by_at ON audit (at);
CREATE INDEX IF NOT EXISTS audit_by_login ON audit (login, at);
CREATE INDEX IF NOT EXISTS audit_by_action ON audit (action, at);
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    login: str
    action: str
    target: str | None
    address: str | None
    details: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "login": self.login,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "details": dict(self.details),
        }


def unknown_login(login: str) -> str:
    """How a login that names no operator is written: a digest, never the text."""
    digest = hashlib.sha256(login.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"unknown:{digest}"


def _value(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return clean_text(str(value), _VALUE_LIMIT)


def _details(details: Mapping[str, Any]) -> dict[str, Any]:
    return {
        clean_text(str(key), 64): _value(value)
        for key, value in details.items()
        if str(key).lower() not in _SECRET_KEYS
    }


def action_filter(action: str | Sequence[str] | None) -> tuple[set[str], set[str]]:
    """``find``'s ``action`` as (codes, families): a family ends in ``.`` or ``*``
    (``conversation.*`` is kept as ``conversation.``)."""
    codes: set[str] = set()
    families: set[str] = set()
    for one in (action,) if isinstance(action, str) else action or ():
        family = one.rstrip("*")
        if family.endswith("."):
            families.add(family)
        else:
            codes.add(one)
    return codes, families


class AuditLog(ABC):
    """Where the entries are kept: a SQLite file (``SqliteAuditLog``, the embedded default) or
    the shared Redis (``bot.handoff.redis_audit``, several processes). What is written (no
    secrets, bounded values) is decided here, the same for both."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def record(
        self,
        action: str,
        *,
        login: str,
        target: str | None = None,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        await self._write(
            AuditEntry(
                0,
                self._clock(),
                clean_text(login, _VALUE_LIMIT),
                clean_text(action, 64),
                None if target is None else clean_text(target, _VALUE_LIMIT),
                None if address is None else clean_text(address, 64),
                _details(details or {}),
            )
        )

    @abstractmethod
    async def _write(self, entry: AuditEntry) -> None:
        """Keep ``entry`` (already cleaned) under a new id (``entry.id`` is a placeholder)."""

    @abstractmethod
    async def find(
        self,
        *,
        login: str | None = None,
        action: str | Sequence[str] | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        """Entries newest first (by time, then id). ``action`` is a code, a family (ending in
        ``.`` or ``*``: ``conversation.*``) or several of either (any of them matches)."""

    async def delete_older_than(self, days: float) -> int:
        """Delete entries older than ``days`` days; returns how many (for the retention task)."""
        return await self._delete_before(self._clock() - days * 86400)

    @abstractmethod
    async def _delete_before(self, cutoff: float) -> int:
        """Delete entries with ``at < cutoff``; returns how many."""

    @abstractmethod
    async def close(self) -> None: ...


class SqliteAuditLog(AuditLog):
    """Entries in a SQLite file, one worker thread (like the other stores)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # who read which customer's card is nobody else's business
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = SqliteDb(path, schema=_SCHEMA, thread_name="audit-log")

    async def _write(self, entry: AuditEntry) -> None:
        row = (
            entry.at, entry.login, entry.action, entry.target, entry.address,
            json.dumps(dict(entry.details), ensure_ascii=False),
        )  # fmt: skip
        await self._db.run(
            lambda db: db.execute(
                "INSERT INTO audit (at, login, action, target, address, details)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    async def find(
        self,
        *,
        login: str | None = None,
        action: str | Sequence[str] | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        if login:
            where.append("login = ?")
            args.append(login)
        either: list[str] = []
        codes, families = action_filter(action)
        for family in sorted(families):
            either.append("substr(action, 1, ?) = ?")
            args += [len(family), family]
        for code in sorted(codes):
            either.append("action = ?")
            args.append(code)
        if either:
            where.append("(" + " OR ".join(either) + ")")
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        sql = "SELECT id, at, login, action, target, address, details FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        args.append(limit)
        rows = await self._db.run(lambda db: db.execute(sql, args).fetchall())
        return [
            AuditEntry(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6]))
            for r in rows
        ]

    async def _delete_before(self, cutoff: float) -> int:
        def q(db: sqlite3.Connection) -> int:
            deleted: int = db.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount
            return deleted

        return await self._db.run(q)

    async def close(self) -> None:
        await self._db.close()


def default_audit_path(settings: Settings) -> Path:
    return settings.var_dir / "audit.sqlite3"


def open_audit_log(
    settings: Settings, redis: Redis | None = None, *, health: StoreHealth | None = None
) -> AuditLog:
    """With ``redis`` (the gateway's shared client) one log in Redis for every process, else
    the SQLite file."""
    if redis is not None:
        from bot.handoff.redis_audit import RedisAuditLog  # imports this module

        return RedisAuditLog(redis, health=health)
    return SqliteAuditLog(default_audit_path(settings))


# --- in handlers ---------------------------------------------------------------------------------
AUDIT = web.AppKey("operator_audit", AuditLog)
TRUSTED_PROXIES: web.AppKey[tuple[IPNetwork, ...]] = web.AppKey("audit_trusted_proxies")


def request_address(request: web.Request) -> str:
    """The client's address as the audit and the login throttle see it."""
    proxies: tuple[IPNetwork, ...] = request.config_dict.get(TRUSTED_PROXIES) or ()
    return client_address(request, proxies)


async def audit(
    request: web.Request,
    action: str,
    *,
    login: str,
    target: str | None = None,
    **details: Any,
) -> None:
    """Write an entry for this request; a gateway without an audit log writes nothing. A write
    that fails is logged, not raised: the operator's work goes on and the log says what is
    missing."""
    log_ = request.config_dict.get(AUDIT)
    if log_ is None:
        return
    try:
        await log_.record(
            action, login=login, target=target, address=request_address(request), details=details
        )
    except StoreUnavailable:
        # Redis (or the disk) failing: the store's health has logged the episode once.
        log.warning("audit entry %s could not be written: the store is unavailable", action)
    except (sqlite3.Error, OSError, RuntimeError):
        log.exception("audit entry %s could not be written", action)


# --- the supervisor's API ------------------------------------------------------------------------
def _bad_request(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type="application/json",
        headers=_NO_STORE,
    )


def _since(raw: str | None) -> float | None:
    """``since`` as an ISO date or date-time (UTC unless it says otherwise)."""
    if not raw:
        return None
    if len(raw) > 40:
        raise _bad_request("'since' must be an ISO date or date-time")
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))  # a "+" in a query is a space
    except ValueError:
        raise _bad_request("'since' must be an ISO date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _filters(request: web.Request, *, highest: int) -> dict[str, Any]:
    query = request.query
    try:
        limit = bounded_int(
            query.get("limit"), default=min(200, highest), lowest=1, highest=highest, name="limit"
        )
    except UntrustedInput as exc:
        raise _bad_request(str(exc)) from None
    # One code, one family ("conversation.*"), or several of either separated by commas
    # (the console's «Входы» is login, login_failed, login_throttled and logout).
    actions = tuple(a.strip() for a in (query.get("action") or "").split(",")[:20] if a.strip())
    families = sorted({a.split(".")[0] + ".*" for a in ACTIONS if "." in a})
    for action in actions:
        if action not in ACTIONS and action.rstrip("*") not in {f[:-1] for f in families}:
            raise _bad_request(f"action must be one of {', '.join(ACTIONS + tuple(families))}")
    login = query.get("login") or None
    return {
        "login": clean_text(login.strip().lower(), _VALUE_LIMIT) if login else None,
        "action": actions or None,
        "since": _since(query.get("since")),
        "limit": limit,
    }


CSV_COLUMNS = ("at", "login", "action", "target", "address", "details")


def add_audit_routes(app: web.Application, authorized: Callable[..., Any]) -> None:
    """The supervisor's read routes; ``authorized`` is ``bot.handoff.auth.authorized`` (passed
    in, as auth imports this module)."""

    async def listing(request: web.Request) -> web.StreamResponse:
        await authorized(request, write=False, supervisor=True)
        entries = await request.config_dict[AUDIT].find(**_filters(request, highest=MAX_LIMIT))
        response = json_response({"entries": [e.as_json() for e in entries]})
        response.headers.update(_NO_STORE)
        return response

    async def export(request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=False, supervisor=True)
        filters = _filters(request, highest=MAX_EXPORT)
        entries = await request.config_dict[AUDIT].find(**filters)
        await audit(
            request,
            "audit.export",
            login=operator.login,
            rows=len(entries),
            **{
                f"filter_{k}": ",".join(v) if isinstance(v, tuple) else v
                for k, v in filters.items()
                if k != "limit" and v is not None
            },
        )
        rows = []
        for entry in entries:
            row = entry.as_json()
            row["details"] = json.dumps(row["details"], ensure_ascii=False)
            # A login or target starting with "=" is text to a spreadsheet, not a formula.
            rows.append([spreadsheet_cell(row[c]) for c in CSV_COLUMNS])
        return csv_download(CSV_COLUMNS, rows, name="audit")

    app.router.add_get(AUDIT_PATH, listing)
    app.router.add_get(AUDIT_PATH + ".csv", export)


def setup_audit(app: web.Application, audit_log: AuditLog, *, close: bool = False) -> None:
    app[AUDIT] = audit_log
    if close:

        async def lifetime(app: web.Application) -> AsyncIterator[None]:
            yield
            await audit_log.close()

        app.cleanup_ctx.append(lifetime)
