"""The operators' audit log in Redis (REDIS_URL): every gateway process writes to one log and a
supervisor reads all of it, whichever process answers. Behaves like ``SqliteAuditLog``.

Keys (``P`` = ``isp-bot:{audit}``, one Redis Cluster slot, so a write and its indexes are one
script):

- ``P:seq`` the id counter; ``P:entries`` hash id -> the entry as JSON.
- ``P:at`` sorted set of every id, scored by the entry's time; ``P:login:<h>``,
  ``P:action:<h>`` and ``P:login_action:<h>:<h>`` the same for one login, one action and
  both (``<h>``: SHA-1 of the value, so no separator inside a login can make two keys one).
  Members are ids zero-padded to 15 digits: equal times then order by id, as in SQLite.
- ``P:actions`` set of every action written (a family filter, ``conversation.*``, reads the
  indexes of the actions it names).

``find`` reads at most ``limit`` ids from each index it needs, newest first, and merges them;
no scan of the whole log. ``delete_older_than`` removes entries in batches (one script each),
so retention never blocks Redis for long.

A Redis outage raises ``StoreUnavailable`` (``RedisCalls``, reported to the store's health):
the supervisor's read answers 503; a write from an operator's action is logged as missing and
the action goes on (``bot.handoff.audit.audit``), as with a failing SQLite file.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis

from bot.handoff.audit import AuditEntry, AuditLog, action_filter
from bot.storage.health import StoreHealth
from bot.storage.redis.client import RedisCalls
from bot.storage.redis.keys import global_key

T = TypeVar("T")

AREA = "audit"
_ID_DIGITS = 15
DELETE_BATCH = 500

# KEYS: seq, entries, at, login, action, login_action, actions.
# ARGV: at, the entry as JSON (its id is added here), action.
_RECORD = """
local id = string.format('%015d', redis.call('incr', KEYS[1]))
redis.call('hset', KEYS[2], id, ARGV[2])
for i = 3, 6 do redis.call('zadd', KEYS[i], ARGV[1], id) end
redis.call('sadd', KEYS[7], ARGV[3])
return id
"""

# KEYS: entries, at. ARGV: prefix, cutoff (exclusive), batch size.
# The index keys of each entry are derived from it, with the same hash tag: still one slot.
_DELETE_BEFORE = """
local ids = redis.call('zrangebyscore', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local raw = redis.call('hget', KEYS[1], id)
  if raw then
    local entry = cjson.decode(raw)
    local login, action = redis.sha1hex(entry['login']), redis.sha1hex(entry['action'])
    redis.call('zrem', ARGV[1] .. ':login:' .. login, id)
    redis.call('zrem', ARGV[1] .. ':action:' .. action, id)
    redis.call('zrem', ARGV[1] .. ':login_action:' .. login .. ':' .. action, id)
    redis.call('hdel', KEYS[1], id)
  end
  redis.call('zrem', KEYS[2], id)
end
return #ids
"""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _h(value: str) -> str:
    # Not a secret: only a fixed-length name for a key part (Lua's redis.sha1hex does the same).
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()


class RedisAuditLog(AuditLog):
    """Entries in the shared Redis; ``redis`` is the gateway's one client (not closed here)."""

    def __init__(
        self,
        redis: Redis,
        *,
        health: StoreHealth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self._redis = redis
        self._calls = RedisCalls(health or StoreHealth())
        self._prefix = global_key(AREA)
        self._record = redis.register_script(_RECORD)
        self._delete = redis.register_script(_DELETE_BEFORE)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _index(self, login: str | None, action: str | None) -> str:
        if login is not None and action is not None:
            return self._key("login_action", _h(login), _h(action))
        if login is not None:
            return self._key("login", _h(login))
        if action is not None:
            return self._key("action", _h(action))
        return self._key("at")

    async def _run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        return await self._calls.run(op, call)

    async def _write(self, entry: AuditEntry) -> None:
        body = json.dumps(
            {
                "at": entry.at,
                "login": entry.login,
                "action": entry.action,
                "target": entry.target,
                "address": entry.address,
                "details": dict(entry.details),
            },
            ensure_ascii=False,
        )
        keys = [
            self._key("seq"),
            self._key("entries"),
            self._index(None, None),
            self._index(entry.login, None),
            self._index(None, entry.action),
            self._index(entry.login, entry.action),
            self._key("actions"),
        ]
        await self._run(
            "record", lambda: self._record(keys=keys, args=[repr(entry.at), body, entry.action])
        )

    async def find(
        self,
        *,
        login: str | None = None,
        action: str | Sequence[str] | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        login = login or None  # SQLite's "if login": an empty login filters nothing
        codes, families = action_filter(action)
        low = "-inf" if since is None else repr(since)

        async def read() -> list[tuple[bytes, bytes | str | None, float]]:
            indexes = [self._index(login, None)]
            if codes or families:
                actions = set(codes)
                if families:
                    stored = await self._redis.smembers(self._key("actions"))
                    known = (_text(x) for x in stored)
                    actions |= {a for a in known if any(a.startswith(f) for f in families)}
                indexes = [self._index(login, a) for a in sorted(actions)]
            if not indexes:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.zrevrangebyscore(index, "+inf", low, start=0, num=limit, withscores=True)
                pages: list[list[tuple[bytes, float]]] = await pipe.execute()
            # Newest first by (time, id) across the indexes: each page is already in that order.
            merged = heapq.merge(*pages, key=lambda m: (m[1], m[0]), reverse=True)
            chosen = [m for _, m in zip(range(limit), merged, strict=False)]
            if not chosen:
                return []
            bodies = await self._redis.hmget(self._key("entries"), [i for i, _ in chosen])
            return [(i, b, at) for (i, at), b in zip(chosen, bodies, strict=True)]

        found = await self._run("find", read)
        entries = []
        for entry_id, body, at in found:
            if body is None:  # deleted by retention between the two reads
                continue
            data: dict[str, Any] = json.loads(body)
            entries.append(
                AuditEntry(int(entry_id), at, data["login"], data["action"], data["target"],
                           data["address"], data["details"])
            )  # fmt: skip
        return entries

    async def _delete_before(self, cutoff: float) -> int:
        keys = [self._key("entries"), self._key("at")]
        total = 0
        while True:
            deleted = int(
                await self._run(
                    "delete_older_than",
                    lambda: self._delete(keys=keys, args=[self._prefix, repr(cutoff),
                                                          DELETE_BATCH]),
                )
            )  # fmt: skip
            total += deleted
            if deleted < DELETE_BATCH:
                return total

    async def close(self) -> None:
        """Nothing of its own to close: the Redis client is the gateway's."""
