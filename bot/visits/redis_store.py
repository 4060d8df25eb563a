"""Booked visits in Redis, shared by every gateway process (``REDIS_URL``).

Key layout (all under the ``{visits}`` hash tag, so every script runs in one Cluster slot):

- ``isp-bot:{visits}:seq``: the last visit id (INCR inside the booking script).
- ``isp-bot:{visits}:visit:<id>``: a hash with the visit's fields (absent field = NULL).
- ``isp-bot:{visits}:op``: hash confirmation op -> visit id (a move replaces its visit's op,
  as the SQLite ``UPDATE … op = ?`` does).
- ``isp-bot:{visits}:window:<city>:<starts UTC>``: the ids of the visits booked in that window;
  its size is what ``crews`` is checked against.
- ``isp-bot:{visits}:booked``: sorted set of booked ids by start (µs since the epoch).
- ``isp-bot:{visits}:contract:<contract>``: the contract's booked ids.
- ``isp-bot:{visits}:all``: every id kept (retention walks it).

What is atomic and how: ``book`` (op seen? window full? id, insert, indexes), ``move`` (op
seen? still booked? new window full? move between windows), ``close``, ``set_request`` and
``mark_reminded`` (first call only) are each one Lua script, so two processes confirming the
last place of a window get one visit and one refusal, and a reminder goes once. Retention
decides in Python and deletes with a script that first checks the visit is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from redis.asyncio import Redis

from bot.storage.health import StoreHealth
from bot.storage.redis.client import reports_failures
from bot.storage.redis.keys import global_key
from bot.visits.store import BOOKED, Booked, NewVisit, Status, Visit, VisitStore

AREA = "visits"

_FIELDS = (
    "op", "contract", "conversation_id", "city_id", "starts_at", "ends_at", "problem", "address",
    "fee_rub", "status", "request_id", "reminded_at", "created_at", "updated_at",
)  # fmt: skip

# KEYS: op hash, seq, window, booked, contract set, all.  ARGV: visit key prefix, crews, op,
# start score, then field/value pairs. Returns {repeat flag, fields…} or nil when full.
_BOOK = """
local done = redis.call('HGET', KEYS[1], ARGV[3])
if done then
  return {1, done, redis.call('HGETALL', ARGV[1] .. done)}
end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[2]) then
  return nil
end
local id = redis.call('INCR', KEYS[2])
local key = ARGV[1] .. id
redis.call('HSET', key, unpack(ARGV, 5))
redis.call('HSET', KEYS[1], ARGV[3], id)
redis.call('SADD', KEYS[3], id)
redis.call('ZADD', KEYS[4], ARGV[4], id)
redis.call('SADD', KEYS[5], id)
redis.call('SADD', KEYS[6], id)
return {0, tostring(id), redis.call('HGETALL', key)}
"""

# KEYS: op hash, visit, booked.  ARGV: key prefix, visit id, op, crews, start score, starts_at,
# ends_at, updated_at. The windows' keys are built from the visit's city (same hash tag).
_MOVE = """
local done = redis.call('HGET', KEYS[1], ARGV[3])
if done then
  return {1, done, redis.call('HGETALL', ARGV[1] .. 'visit:' .. done)}
end
if redis.call('HGET', KEYS[2], 'status') ~= 'booked' then
  return nil
end
local city = redis.call('HGET', KEYS[2], 'city_id')
local window = ARGV[1] .. 'window:' .. city .. ':' .. ARGV[6]
if redis.call('SCARD', window) >= tonumber(ARGV[4]) then
  return nil
end
local old = ARGV[1] .. 'window:' .. city .. ':' .. redis.call('HGET', KEYS[2], 'starts_at')
redis.call('SREM', old, ARGV[2])
redis.call('SADD', window, ARGV[2])
redis.call('HDEL', KEYS[1], redis.call('HGET', KEYS[2], 'op'))
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[2], 'starts_at', ARGV[6], 'ends_at', ARGV[7], 'op', ARGV[3],
           'updated_at', ARGV[8])
redis.call('HDEL', KEYS[2], 'reminded_at')
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
return {0, ARGV[2], redis.call('HGETALL', KEYS[2])}
"""

# KEYS: visit, booked.  ARGV: key prefix, id, status, updated_at.
_CLOSE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'booked' then
  return nil
end
local city = redis.call('HGET', KEYS[1], 'city_id')
redis.call('SREM', ARGV[1] .. 'window:' .. city .. ':' .. redis.call('HGET', KEYS[1], 'starts_at'),
           ARGV[2])
redis.call('SREM', ARGV[1] .. 'contract:' .. redis.call('HGET', KEYS[1], 'contract'), ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: visit.  ARGV: request id.
_SET_REQUEST = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'request_id', ARGV[1])
end
return 0
"""

# KEYS: visit.  ARGV: reminded_at.
_MARK_REMINDED = """
if redis.call('HGET', KEYS[1], 'status') == 'booked'
   and redis.call('HEXISTS', KEYS[1], 'reminded_at') == 0 then
  redis.call('HSET', KEYS[1], 'reminded_at', ARGV[1])
  return 1
end
return 0
"""

# KEYS: visit, op hash, booked, all.  ARGV: key prefix, id, status and updated_at as read.
_DELETE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[3]
   or redis.call('HGET', KEYS[1], 'updated_at') ~= ARGV[4] then
  return 0
end
local city = redis.call('HGET', KEYS[1], 'city_id')
redis.call('SREM', ARGV[1] .. 'window:' .. city .. ':' .. redis.call('HGET', KEYS[1], 'starts_at'),
           ARGV[2])
redis.call('SREM', ARGV[1] .. 'contract:' .. redis.call('HGET', KEYS[1], 'contract'), ARGV[2])
redis.call('HDEL', KEYS[2], redis.call('HGET', KEYS[1], 'op'))
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""


def _utc(at: datetime) -> str:
    # The spelling the SQLite store uses, so both name a window alike.
    return at.astimezone(UTC).isoformat()


def _score(at: datetime) -> int:
    """Microseconds since the epoch: exact in a sorted set's double up to year 2255."""
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _visit(visit_id: Any, flat: Sequence[Any]) -> Visit:
    row = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return Visit(
        id=int(_text(visit_id)),
        op=row["op"],
        contract=row["contract"],
        conversation_id=row["conversation_id"],
        city_id=row["city_id"],
        starts_at=datetime.fromisoformat(row["starts_at"]),
        ends_at=datetime.fromisoformat(row["ends_at"]),
        problem=row["problem"],
        address=row["address"],
        fee_rub=Decimal(row["fee_rub"]),
        status=cast(Status, row["status"]),
        request_id=int(row["request_id"]) if "request_id" in row else None,
        reminded_at=datetime.fromisoformat(row["reminded_at"]) if "reminded_at" in row else None,
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _booked(found: Any) -> Booked | None:
    if found is None:
        return None
    repeat, visit_id, flat = found
    return Booked(_visit(visit_id, flat), repeat=bool(int(repeat)))


@reports_failures("visits")
class RedisVisitStore(VisitStore):
    def __init__(self, redis: Redis, *, health: StoreHealth | None = None) -> None:
        # Outages are reported here (``reports_failures``): the main store's, in the wiring.
        self.health = health or StoreHealth()
        self._redis = redis
        self._prefix = global_key(AREA) + ":"
        self._book = redis.register_script(_BOOK)
        self._move = redis.register_script(_MOVE)
        self._close = redis.register_script(_CLOSE)
        self._set_request = redis.register_script(_SET_REQUEST)
        self._mark_reminded = redis.register_script(_MARK_REMINDED)
        self._delete = redis.register_script(_DELETE_IF_UNCHANGED)

    def _key(self, *parts: str) -> str:
        return global_key(AREA, *parts)

    def _window(self, city_id: str, starts_at: str) -> str:
        return self._key("window", city_id, starts_at)

    async def book(self, new: NewVisit, *, crews: int, at: datetime) -> Booked | None:
        starts = _utc(new.starts_at)
        values = (
            new.op, new.contract, new.conversation_id, new.city_id, starts, _utc(new.ends_at),
            new.problem, new.address, str(new.fee_rub), BOOKED, None, None, _utc(at), _utc(at),
        )  # fmt: skip
        pairs = [item for f, v in zip(_FIELDS, values, strict=True) if v is not None
                 for item in (f, v)]  # fmt: skip
        found = await self._book(
            keys=[
                self._key("op"), self._key("seq"), self._window(new.city_id, starts),
                self._key("booked"), self._key("contract", new.contract), self._key("all"),
            ],
            args=[self._prefix + "visit:", crews, new.op, _score(new.starts_at), *pairs],
        )  # fmt: skip
        return _booked(found)

    async def move(
        self, visit_id: int, starts_at: datetime, ends_at: datetime, *, op: str, crews: int,
        at: datetime,
    ) -> Booked | None:  # fmt: skip
        found = await self._move(
            keys=[self._key("op"), self._key("visit", str(visit_id)), self._key("booked")],
            args=[
                self._prefix,
                visit_id,
                op,
                crews,
                _score(starts_at),
                _utc(starts_at),
                _utc(ends_at),
                _utc(at),
            ],
        )
        return _booked(found)

    async def close(self, visit_id: int, status: Status, *, at: datetime) -> Visit | None:
        flat = await self._close(
            keys=[self._key("visit", str(visit_id)), self._key("booked")],
            args=[self._prefix, visit_id, status, _utc(at)],
        )
        return None if flat is None else _visit(visit_id, flat)

    async def get(self, visit_id: int) -> Visit | None:
        found = await self._load([visit_id])
        return found[0] if found else None

    async def by_op(self, op: str) -> Visit | None:
        visit_id = await self._redis.hget(self._key("op"), op)
        return None if visit_id is None else await self.get(int(visit_id))

    async def booked_of(self, contract: str) -> list[Visit]:
        ids = await self._redis.smembers(self._key("contract", contract))
        visits = [v for v in await self._load([int(i) for i in ids]) if v.status == BOOKED]
        return sorted(visits, key=lambda v: (v.starts_at, v.id))

    async def booked_between(
        self, city_id: str | None, start: datetime, end: datetime
    ) -> list[Visit]:
        ids = await self._redis.zrangebyscore(self._key("booked"), _score(start), f"({_score(end)}")
        visits = [
            v
            for v in await self._load([int(_text(i)) for i in ids])
            if v.status == BOOKED and (city_id is None or v.city_id == city_id)
        ]
        return sorted(visits, key=lambda v: (v.starts_at, v.id))

    async def set_request(self, visit_id: int, request_id: int) -> None:
        await self._set_request(keys=[self._key("visit", str(visit_id))], args=[request_id])

    async def mark_reminded(self, visit_id: int, at: datetime) -> bool:
        done = await self._mark_reminded(keys=[self._key("visit", str(visit_id))], args=[_utc(at)])
        return bool(done)

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        ids = await self._redis.smembers(self._key("all"))
        over = [
            v
            for v in await self._load(sorted(int(i) for i in ids))
            if (v.status != BOOKED and v.updated_at < cutoff)
            or (v.status == BOOKED and v.ends_at < cutoff)
        ]
        if dry_run:
            return len(over)
        deleted = 0
        for visit in over:  # each only if no one changed it since it was read
            done = await self._delete(
                keys=[
                    self._key("visit", str(visit.id)),
                    self._key("op"),
                    self._key("booked"),
                    self._key("all"),
                ],
                args=[self._prefix, visit.id, visit.status, _utc(visit.updated_at)],
            )
            deleted += int(done)
        return deleted

    async def shut(self) -> None:
        """The client is shared (services.py closes it last)."""

    async def _load(self, ids: Sequence[int]) -> list[Visit]:
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for visit_id in ids:
                pipe.hgetall(self._key("visit", str(visit_id)))
            rows = await pipe.execute()
        return [
            _visit(visit_id, [x for pair in row.items() for x in pair])
            for visit_id, row in zip(ids, rows, strict=True)
            if row
        ]
