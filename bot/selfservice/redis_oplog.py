"""The operations log in Redis, shared by every gateway process (``REDIS_URL``).

Key layout (all under the ``{oplog}`` hash tag, so every script runs in one Cluster slot):

- ``isp-bot:{oplog}:seq``: the order entries were begun in (INCR in ``begin``).
- ``isp-bot:{oplog}:op:<id>``: a hash per entry: contract, kind, by, at, status, details (JSON),
  conversation_id (absent = None), seq.
- ``isp-bot:{oplog}:contract:<contract>``: sorted set of the contract's entry ids by seq.
- ``isp-bot:{oplog}:all``: every id kept (retention walks it).

What is atomic and how: ``begin`` is one Lua script (an id seen before returns the earlier entry
unchanged, else numbered and written), so the same confirmation reaching two processes is begun
once and the second learns it is a repeat; ``supersede`` is one script over the contract's
entries; ``finish`` merges details under WATCH (retried if the entry changed meanwhile), since
merging JSON belongs in Python; retention decides in Python and deletes with a script that
checks again that the entry is not ``pending``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from bot.selfservice.oplog import OperationLog, OperationRecord, OperationStatus, _before
from bot.storage.health import StoreHealth
from bot.storage.redis.client import reports_failures
from bot.storage.redis.keys import global_key

AREA = "oplog"

# KEYS: entry, seq, contract's set, all.  ARGV: id, then field/value pairs (no seq).
_BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGETALL', KEYS[1])
end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'seq', seq, unpack(ARGV, 2))
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return nil
"""

# KEYS: contract's set.  ARGV: entry key prefix, kind, keep.
_SUPERSEDE = """
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[3] then
    local key = ARGV[1] .. id
    local kind, status = unpack(redis.call('HMGET', key, 'kind', 'status'))
    if kind == ARGV[2] and (status == 'pending' or status == 'failed') then
      redis.call('HSET', key, 'status', 'superseded')
      n = n + 1
    end
  end
end
return n
"""

# KEYS: entry, contract's set, all.  ARGV: id.
_DELETE_OVER = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'pending' then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _dumps(details: Mapping[str, Any]) -> str:
    return json.dumps(dict(details), ensure_ascii=False, default=str)


def _record(op_id: str, row: Mapping[str, str]) -> OperationRecord:
    return OperationRecord(
        id=op_id,
        contract=row["contract"],
        kind=row["kind"],
        by=row["by"],
        at=datetime.fromisoformat(row["at"]),
        status=cast(OperationStatus, row["status"]),
        details=json.loads(row["details"]),
        conversation_id=row.get("conversation_id"),
    )


def _row(flat: Sequence[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _decoded(row: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in row.items()}


@reports_failures("oplog")
class RedisOperationLog(OperationLog):
    def __init__(self, redis: Redis, *, health: StoreHealth | None = None) -> None:
        # Outages are reported here (``reports_failures``): the main store's, in the wiring.
        self.health = health or StoreHealth()
        self._redis = redis
        self._begin = redis.register_script(_BEGIN)
        self._supersede = redis.register_script(_SUPERSEDE)
        self._delete = redis.register_script(_DELETE_OVER)

    def _key(self, *parts: str) -> str:
        return global_key(AREA, *parts)

    async def begin(self, record: OperationRecord) -> OperationRecord:
        pairs = [
            "contract", record.contract, "kind", record.kind, "by", record.by,
            "at", record.at.isoformat(), "status", record.status,
            "details", _dumps(record.details),
        ]  # fmt: skip
        if record.conversation_id is not None:
            pairs += ["conversation_id", record.conversation_id]
        found = await self._begin(
            keys=[
                self._key("op", record.id), self._key("seq"),
                self._key("contract", record.contract), self._key("all"),
            ],
            args=[record.id, *pairs],
        )  # fmt: skip
        return record if found is None else _record(record.id, _row(found))

    async def finish(
        self, op_id: str, status: OperationStatus, details: Mapping[str, Any] | None = None
    ) -> None:
        key = self._key("op", op_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    stored = await pipe.hget(key, "details")
                    if stored is None:
                        return
                    merged = {**json.loads(stored), **(details or {})}
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, mapping={"status": status, "details": _dumps(merged)})
                    await pipe.execute()
                    return
                except WatchError:
                    continue  # another process changed it between our read and write

    async def get(self, op_id: str) -> OperationRecord | None:
        row = await self._redis.hgetall(self._key("op", op_id))
        return _record(op_id, _decoded(row)) if row else None

    async def supersede(self, contract: str, kind: str, *, keep: str) -> int:
        found = await self._supersede(
            keys=[self._key("contract", contract)], args=[self._key("op") + ":", kind, keep]
        )
        return int(found)

    async def for_contract(self, contract: str, *, limit: int = 50) -> list[OperationRecord]:
        if limit == 0:
            return []
        end = -1 if limit < 0 else limit - 1  # SQLite's LIMIT -1: no limit
        ids = [
            _text(i) for i in await self._redis.zrevrange(self._key("contract", contract), 0, end)
        ]
        return await self._load(ids)

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        ids = sorted(_text(i) for i in await self._redis.smembers(self._key("all")))
        old = [
            r
            for r in await self._load(ids)
            if r.status != "pending" and _before(r.at.isoformat(), cutoff)
        ]
        if dry_run:
            return len(old)
        deleted = 0
        for entry in old:
            done = await self._delete(
                keys=[
                    self._key("op", entry.id),
                    self._key("contract", entry.contract),
                    self._key("all"),
                ],
                args=[entry.id],
            )
            deleted += int(done)
        return deleted

    async def close(self) -> None:
        """The client is shared (services.py closes it last)."""

    async def _load(self, ids: Sequence[str]) -> list[OperationRecord]:
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for op_id in ids:
                pipe.hgetall(self._key("op", op_id))
            rows = await pipe.execute()
        return [_record(i, _decoded(row)) for i, row in zip(ids, rows, strict=True) if row]
