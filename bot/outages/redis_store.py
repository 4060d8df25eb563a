"""Outages and planned works in Redis, shared by every gateway process (``REDIS_URL``).

Key layout (all under the ``{outages}`` hash tag, so every script runs in one Cluster slot):

- ``isp-bot:{outages}:outage:<id>``: a hash: city_id, data (the fields of outages.csv as a JSON
  object, as the SQLite store keeps them), ended_at (UTC ISO, absent while open), updated_at.
- ``isp-bot:{outages}:ids``: every outage id kept.
- ``isp-bot:{outages}:open``: the ids not closed. Every customer's question about outages in
  a city reads the open ones; closed records stay for the retention period (months), so reading
  every record kept would grow with the history rather than with what is going on (the SQLite
  store has an index for the same reason). Every script that opens or closes one keeps it.
- ``isp-bot:{outages}:notices:<id>``: hash ``[contract, event]`` (JSON) -> when told.

What is atomic and how: ``seed`` is one Lua script for the whole list (each id added only if
unknown, so two processes starting at once add each once), ``upsert`` and ``close_outage`` are
one script each (read the old record and write in one step: only one of two DELETEs "ends" an
outage), ``first_notice`` is a single HSETNX (a contract is told an event once, whichever
process sends). Retention decides in Python and deletes with a script that first checks the
outage still ended when it was read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from bot.catalog.catalog import Catalog
from bot.outages.fields import outage_fields, parse_outage
from bot.outages.model import Outage
from bot.outages.store import OutageStore
from bot.storage.health import StoreHealth
from bot.storage.redis.client import reports_failures
from bot.storage.redis.keys import global_key

AREA = "outages"

# KEYS: ids, open, then each outage's key (a script must name every key it touches, or Redis
# Cluster may refuse it).  ARGV: (id, city_id, data, updated_at, ended_at or "") per outage.
_SEED = """
local added = 0
for n = 3, #KEYS do
  local i = (n - 3) * 5 + 1
  local key = KEYS[n]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'city_id', ARGV[i + 1], 'data', ARGV[i + 2],
               'updated_at', ARGV[i + 3])
    if ARGV[i + 4] ~= '' then
      redis.call('HSET', key, 'ended_at', ARGV[i + 4])
    else
      redis.call('SADD', KEYS[2], ARGV[i])
    end
    redis.call('SADD', KEYS[1], ARGV[i])
    added = added + 1
  end
end
return added
"""

# KEYS: outage, ids, open.  ARGV: id, city_id, data, updated_at.  Returns the old
# {data, ended_at}.
_UPSERT = """
local old = redis.call('HMGET', KEYS[1], 'data', 'ended_at')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'city_id', ARGV[2], 'data', ARGV[3], 'updated_at', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
if not old[1] then
  return nil
end
return old
"""

# KEYS: outage, open.  ARGV: id, ended_at.  Returns {data, ended_at, ended by this call (0/1)}.
_CLOSE = """
local row = redis.call('HMGET', KEYS[1], 'data', 'ended_at')
if not row[1] then
  return nil
end
if row[2] then
  return {row[1], row[2], 0}
end
redis.call('HSET', KEYS[1], 'ended_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
return {row[1], ARGV[2], 1}
"""

# KEYS: outage, its notices, ids, open.  ARGV: id, ended_at as read, delete the outage (0/1).
# Returns the number of notices deleted, or -1 if the outage changed since it was read.
_DELETE_CLOSED = """
if redis.call('HGET', KEYS[1], 'ended_at') ~= ARGV[2] then
  return -1
end
local notices = redis.call('HLEN', KEYS[2])
redis.call('DEL', KEYS[2])
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[1])
end
return notices
"""


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@reports_failures("outages")
class RedisOutageStore(OutageStore):
    def __init__(
        self, redis: Redis, *, catalog: Catalog, health: StoreHealth | None = None
    ) -> None:
        # Outages are reported here (``reports_failures``): the main store's, in the wiring.
        self.health = health or StoreHealth()
        self._redis = redis
        self._catalog = catalog
        self._seed = redis.register_script(_SEED)
        self._upsert = redis.register_script(_UPSERT)
        self._close = redis.register_script(_CLOSE)
        self._delete = redis.register_script(_DELETE_CLOSED)

    def _key(self, *parts: str) -> str:
        return global_key(AREA, *parts)

    def _outage(self, data: Any, ended_at: Any) -> Outage:
        # Written by us after the same validation; read back through it all the same.
        outage = parse_outage(json.loads(_text(data)), self._catalog)
        ended = datetime.fromisoformat(_text(ended_at)) if ended_at else None
        return replace(outage, ended_at=ended)

    @staticmethod
    def _data(outage: Outage) -> str:
        return json.dumps(outage_fields(outage), ensure_ascii=False)

    async def seed(self, outages: Sequence[Outage]) -> int:
        if not outages:
            return 0
        now = _utc(datetime.now(UTC))
        keys = [self._key("ids"), self._key("open")]
        args: list[str] = []
        for outage in outages:
            ended = _utc(outage.ended_at) if outage.ended_at else ""
            keys.append(self._key("outage", outage.outage_id))
            args += [outage.outage_id, outage.city_id, self._data(outage), now, ended]
        return int(await self._seed(keys=keys, args=args))

    async def upsert(self, outage: Outage) -> Outage | None:
        # The CSV fields carry no end: a replaced record is open again, as in SQLite.
        old = await self._upsert(
            keys=[self._key("outage", outage.outage_id), self._key("ids"), self._key("open")],
            args=[
                outage.outage_id, outage.city_id, self._data(replace(outage, ended_at=None)),
                _utc(datetime.now(UTC)),
            ],
        )  # fmt: skip
        return None if old is None else self._outage(old[0], old[1])

    async def get(self, outage_id: str) -> Outage | None:
        data, ended_at = await self._redis.hmget(
            self._key("outage", outage_id), ["data", "ended_at"]
        )
        return None if data is None else self._outage(data, ended_at)

    async def close_outage(self, outage_id: str, at: datetime) -> tuple[Outage, bool] | None:
        found = await self._close(
            keys=[self._key("outage", outage_id), self._key("open")], args=[outage_id, _utc(at)]
        )
        if found is None:
            return None
        return self._outage(found[0], found[1]), bool(int(found[2]))

    async def open_outages(self, city_id: str | None = None) -> list[Outage]:
        rows = await self._rows(self._key("open"))
        found = [
            self._outage(row["data"], None)
            for row in rows.values()
            if "ended_at" not in row and (city_id is None or row["city_id"] == city_id)
        ]
        return sorted(found, key=lambda o: (o.started_at, o.outage_id))

    async def first_notice(self, outage_id: str, contract: str, event: str) -> bool:
        field = json.dumps([contract, event], ensure_ascii=False)
        added = await self._redis.hsetnx(
            self._key("notices", outage_id), field, _utc(datetime.now(UTC))
        )
        return bool(added)

    async def delete_closed_before(
        self, cutoff: datetime, *, keep: Set[str] = frozenset(), dry_run: bool = False
    ) -> dict[str, int]:
        rows = await self._rows()
        closed = {
            outage_id: row["ended_at"]
            for outage_id, row in rows.items()
            if "ended_at" in row and datetime.fromisoformat(row["ended_at"]) < cutoff
        }
        notices = gone = 0
        if dry_run:
            async with self._redis.pipeline(transaction=False) as pipe:
                for outage_id in closed:
                    pipe.hlen(self._key("notices", outage_id))
                counts = await pipe.execute()
            return {"outages": sum(i not in keep for i in closed), "outage_notices": sum(counts)}
        for outage_id, ended_at in closed.items():
            found = int(
                await self._delete(
                    keys=[
                        self._key("outage", outage_id), self._key("notices", outage_id),
                        self._key("ids"), self._key("open"),
                    ],
                    args=[outage_id, ended_at, "0" if outage_id in keep else "1"],
                )
            )  # fmt: skip
            if found >= 0:  # else reopened meanwhile (an upsert): kept whole
                notices += found
                gone += outage_id not in keep
        return {"outages": gone, "outage_notices": notices}

    async def _rows(self, index: str | None = None) -> dict[str, Mapping[str, str]]:
        """The records whose ids ``index`` holds (every record kept by default)."""
        members = await self._redis.smembers(index or self._key("ids"))
        ids = sorted(_text(i) for i in members)
        if not ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for outage_id in ids:
                pipe.hgetall(self._key("outage", outage_id))
            rows = await pipe.execute()
        return {
            outage_id: {_text(k): _text(v) for k, v in row.items()}
            for outage_id, row in zip(ids, rows, strict=True)
            if row
        }
