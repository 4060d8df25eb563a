"""The request board in Redis, shared by every gateway process (``REDIS_URL``).

Key layout (all under the ``{requests}`` hash tag, so every script and MULTI runs in one
Cluster slot):

- ``isp-bot:{requests}:seq:request`` / ``seq:delivery``: the last record / webhook call id.
- ``isp-bot:{requests}:request:<id>``: a hash with the record's columns (absent = NULL; details
  and attachments as JSON; ``legacy_id`` for a record taken over from the conversation store).
- ``isp-bot:{requests}:history:<id>``: list of the record's history entries (JSON), oldest first.
- ``isp-bot:{requests}:records``: every record id; ``legacy``: hash legacy id -> record id.
- ``isp-bot:{requests}:delivery:<id>``: a webhook call: request_id, body (the exact bytes sent),
  attempts, next_at (+ ``due`` in µs), last_error, created_at, delivered_at, claimed_until.
- ``isp-bot:{requests}:pending:<request id>``: list of the record's undelivered calls, in order
  (its head is the only one that may go out); ``deliveries:<request id>``: all its calls.
- ``isp-bot:{requests}:heads``: sorted set request id -> when its head call is due (µs);
  ``undelivered``: set of undelivered call ids; ``delivered``: call id -> when delivered (µs).

What is atomic and how: a new record, a change and a take-over are each one MULTI with their
webhook call (written together, as in the SQLite transaction); ``change`` and ``import_legacy``
read under WATCH and retry when another process wrote meanwhile, so two operators' changes
each see the other's and a legacy row is taken over once however many processes start at once.
Ids come from INCR. ``deliveries_due`` is one Lua script that picks the due head calls and
*claims* them (their due time moves to now + ``claim``), so two processes' senders never take
the same call; ``delivery_done``/``delivery_failed`` are scripts that settle the call and
move the record's head on. A sender that dies mid-call leaves the claim to expire, and another
process sends the call again (delivery is at least once, as documented in webhook.py). This
claim is the one difference from the SQLite board, whose single process needs none: on Redis a
call handed out by ``deliveries_due`` is not handed out again for ``claim`` unless settled.
Retention decides in Python and deletes each record with a script that checks again that it is
over and has nothing left to deliver.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from bot.requests.model import (
    BY_BOT,
    Action,
    Change,
    HistoryEntry,
    NewRequest,
    RequestRecord,
    webhook_body,
)
from bot.requests.sqlite import _FILE_ID_IN_TEXT, _legacy_request, _stamp, _text
from bot.requests.store import UNSET, Delivery, RequestBoard, _Unset
from bot.storage.base import StoredRequest
from bot.storage.health import StoreHealth
from bot.storage.redis.client import reports_failures
from bot.storage.redis.keys import global_key

AREA = "requests"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Longer than the sender's HTTP timeout (10 s), so a slow CRM is not called twice at once.
CLAIM = timedelta(seconds=60)

# After the record's head call changed: its due time (or claim) in ``heads``, or no entry.
_REFRESH_HEAD = """
local function refresh_head(prefix, heads, rid)
  local head = redis.call('LINDEX', prefix .. 'pending:' .. rid, 0)
  if not head then
    redis.call('ZREM', heads, rid)
    return
  end
  local h = redis.call('HMGET', prefix .. 'delivery:' .. head, 'due', 'claimed_until')
  local due = tonumber(h[1])
  if h[2] and tonumber(h[2]) > due then
    due = tonumber(h[2])
  end
  redis.call('ZADD', heads, due, rid)
end
"""

# KEYS: heads.  ARGV: prefix, now (µs), limit, claimed until (µs).
_DUE = """
local heads = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local id = redis.call('LINDEX', ARGV[1] .. 'pending:' .. rid, 0)
  if id then
    table.insert(heads, id)
  else
    redis.call('ZREM', KEYS[1], rid)
  end
end
table.sort(heads, function(a, b) return tonumber(a) < tonumber(b) end)
local out = {}
for i = 1, math.min(#heads, tonumber(ARGV[3])) do
  local key = ARGV[1] .. 'delivery:' .. heads[i]
  local d = redis.call('HMGET', key, 'request_id', 'body', 'attempts', 'next_at')
  redis.call('HSET', key, 'claimed_until', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[4], d[1])
  table.insert(out, {heads[i], d[1], d[2], d[3], d[4]})
end
return out
"""

# KEYS: delivery, heads, undelivered, delivered.  ARGV: prefix, id, at, at (µs).
_DONE = (
    _REFRESH_HEAD
    + """
local rid = redis.call('HGET', KEYS[1], 'request_id')
if not rid then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'delivered_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'last_error', 'claimed_until')
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('LREM', ARGV[1] .. 'pending:' .. rid, 0, ARGV[2])
refresh_head(ARGV[1], KEYS[2], rid)
return 1
"""
)

# KEYS: delivery, heads.  ARGV: prefix, id, error, retry at, retry at (µs).
_FAILED = (
    _REFRESH_HEAD
    + """
local rid = redis.call('HGET', KEYS[1], 'request_id')
if not rid then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[3], 'next_at', ARGV[4], 'due', ARGV[5])
redis.call('HDEL', KEYS[1], 'claimed_until')
refresh_head(ARGV[1], KEYS[2], rid)
return 1
"""
)

# KEYS: records.  ARGV: prefix, history entry (JSON), record ids.  The first id that exists.
_ACCESS = """
local first = false
for i = 3, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. 'request:' .. ARGV[i]) == 1 then
    redis.call('RPUSH', ARGV[1] .. 'history:' .. ARGV[i], ARGV[2])
    if not first then
      first = ARGV[i]
    end
  end
end
return first
"""

# KEYS: request, history, its calls, its pending calls, records, legacy, delivered, heads.
# ARGV: prefix, id, cutoff.  1 if deleted: over before the cutoff with nothing to deliver.
_DELETE_RECORD = """
local status, updated, legacy = unpack(redis.call('HMGET', KEYS[1], 'status', 'updated_at',
                                                  'legacy_id'))
if (status ~= 'done' and status ~= 'cancelled') or updated >= ARGV[3]
   or redis.call('LLEN', KEYS[4]) > 0 then
  return 0
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('DEL', ARGV[1] .. 'delivery:' .. id)
  redis.call('ZREM', KEYS[7], id)
end
if legacy then
  redis.call('HDEL', KEYS[6], legacy)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[8], ARGV[2])
return 1
"""

# KEYS: delivered.  ARGV: prefix, cutoff (µs).  Calls delivered before the cutoff.
_DELETE_CALLS = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
for _, id in ipairs(ids) do
  local key = ARGV[1] .. 'delivery:' .. id
  local rid = redis.call('HGET', key, 'request_id')
  if rid then
    redis.call('SREM', ARGV[1] .. 'deliveries:' .. rid, id)
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""


def _micros(at: datetime) -> int:
    """Microseconds since the epoch: exact in a sorted set's double up to year 2255."""
    delta = at.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _entry(raw: Any) -> HistoryEntry:
    data = json.loads(_str(raw))
    return HistoryEntry(
        datetime.fromisoformat(data["at"]), data["by"], data["action"], data["from"], data["to"]
    )


def _entry_json(entry: HistoryEntry) -> str:
    return json.dumps(
        {"at": _stamp(entry.at), "by": entry.by, "action": entry.action,
         "from": entry.before, "to": entry.after},
        ensure_ascii=False,
    )  # fmt: skip


def _record(row: Mapping[str, str], history: Sequence[Any]) -> RequestRecord:
    return RequestRecord(
        id=int(row["id"]),
        kind=row["kind"],
        status=row["status"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        conversation_id=row["conversation_id"],
        contract=row.get("contract"),
        name=row.get("name"),
        phone=row.get("phone"),
        city_id=row.get("city_id"),
        address=row.get("address"),
        details=json.loads(row["details"]),
        attachments=tuple(json.loads(row["attachments"])),
        comment=row.get("comment"),
        assignee=row.get("assignee"),
        history=tuple(_entry(raw) for raw in history),
    )


def _columns(
    request_id: int, new: NewRequest, at: datetime, legacy_id: int | None
) -> dict[str, str]:
    columns = {
        "id": str(request_id),
        "kind": new.kind,
        "status": "new",
        "created_at": _stamp(at),
        "updated_at": _stamp(at),
        "conversation_id": new.conversation_id,
        "contract": _text(new.contract),
        "name": _text(new.name),
        "phone": _text(new.phone),
        "city_id": _text(new.city_id),
        "address": _text(new.address),
        "details": json.dumps(dict(new.details), ensure_ascii=False),
        "attachments": json.dumps([dict(a) for a in new.attachments], ensure_ascii=False),
        "legacy_id": None if legacy_id is None else str(legacy_id),
    }
    return {key: value for key, value in columns.items() if value is not None}


@reports_failures("requests")
class RedisRequestBoard(RequestBoard):
    def __init__(
        self,
        redis: Redis,
        *,
        health: StoreHealth | None = None,
        webhooks: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        claim: timedelta = CLAIM,
    ) -> None:
        # Outages are reported here (``reports_failures``): the main store's, in the wiring.
        self.health = health or StoreHealth()
        """``webhooks`` as for ``SqliteRequestBoard``; ``claim``: how long a call handed to a
        sender is kept from the others (see the module's docstring)."""
        self._redis = redis
        self._webhooks = webhooks
        self._clock = clock
        self._claim = claim
        self._prefix = global_key(AREA) + ":"
        self._due = redis.register_script(_DUE)
        self._done = redis.register_script(_DONE)
        self._failed = redis.register_script(_FAILED)
        self._access = redis.register_script(_ACCESS)
        self._delete_record = redis.register_script(_DELETE_RECORD)
        self._delete_calls = redis.register_script(_DELETE_CALLS)

    def _key(self, *parts: str | int) -> str:
        return global_key(AREA, *(str(p) for p in parts))

    # --- records -------------------------------------------------------------------------------
    async def add(self, new: NewRequest, *, by: str = BY_BOT) -> RequestRecord:
        at = self._clock()
        request_id = int(await self._redis.incr(self._key("seq", "request")))
        entry = HistoryEntry(at, by, "created", None, "new")
        columns = _columns(request_id, new, at, None)
        record = _record(columns, [_entry_json(entry)])
        delivery_id = await self._next_delivery_id()
        async with self._redis.pipeline(transaction=True) as pipe:
            self._write_new(pipe, columns, entry)
            self._queue(pipe, delivery_id, "created", record, (entry,), at)
            await pipe.execute()
        return record

    async def get(self, request_id: int) -> RequestRecord | None:
        found = await self._load([request_id])
        return found[0] if found else None

    async def find(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        city_id: str | None = None,
    ) -> list[RequestRecord]:
        ids = await self._redis.smembers(self._key("records"))
        records = [
            r
            for r in await self._load([int(_str(i)) for i in ids])
            if (kind is None or r.kind == kind)
            and (status is None or r.status == status)
            and (city_id is None or r.city_id == city_id)
        ]
        return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)

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
        key, history = self._key("request", request_id), self._key("history", request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key, history)
                    before = await self._read(pipe, request_id)
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
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return Change(before, ())
                    changed = tuple(
                        HistoryEntry(at, by, cast(Action, column), getattr(before, column), value)
                        for column, value in updates.items()
                    )
                    after = replace(
                        before,
                        **updates,  # type: ignore[arg-type]
                        updated_at=datetime.fromisoformat(_stamp(at)),
                        history=before.history + changed,
                    )
                    delivery_id = await self._next_delivery_id()
                    pipe.multi()  # type: ignore[no-untyped-call]
                    sets = {c: v for c, v in updates.items() if v is not None}
                    pipe.hset(key, mapping=cast(Any, {**sets, "updated_at": _stamp(at)}))
                    if cleared := [c for c, v in updates.items() if v is None]:
                        pipe.hdel(key, *cleared)
                    pipe.rpush(history, *(_entry_json(e) for e in changed))
                    self._queue(pipe, delivery_id, "updated", after, changed, at)
                    await pipe.execute()
                    return Change(after, changed)
                except WatchError:
                    continue  # another process changed the record meanwhile: compare again

    async def record_access(
        self, request_ids: Sequence[int], *, by: str, action: str
    ) -> RequestRecord | None:
        if not request_ids:
            return None
        entry = HistoryEntry(self._clock(), by, cast(Action, action))
        first = await self._access(
            keys=[self._key("records")],
            args=[self._prefix, _entry_json(entry), *request_ids],
        )
        return None if first is None else await self.get(int(first))

    async def import_legacy(self, rows: Sequence[StoredRequest]) -> int:
        at = self._clock()
        imported = 0
        for row in rows:
            imported += await self._import_one(row, at)
        return imported

    async def _import_one(self, row: StoredRequest, at: datetime) -> int:
        legacy, seq = self._key("legacy"), self._key("seq", "request")
        own = self._key("request", row.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # Watched: another process taking the same row over, or numbering a record.
                    await pipe.watch(legacy, seq, own)
                    if await pipe.hexists(legacy, str(row.id)):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return 0
                    last = int(await pipe.get(seq) or 0)
                    # Under the number the customer was told when it is free; as AUTOINCREMENT
                    # does, the counter then moves past it.
                    request_id = last + 1 if await pipe.exists(own) else row.id
                    entry = HistoryEntry(at, BY_BOT, "imported", None, "new")
                    columns = _columns(request_id, _legacy_request(row), row.created_at, row.id)
                    record = _record(columns, [_entry_json(entry)])
                    delivery_id = await self._next_delivery_id()
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(seq, max(last, request_id))
                    pipe.hset(legacy, str(row.id), str(request_id))
                    self._write_new(pipe, columns, entry)
                    self._queue(pipe, delivery_id, "created", record, (entry,), at)
                    await pipe.execute()
                    return 1
                except WatchError:
                    continue

    # --- the webhook outbox --------------------------------------------------------------------
    async def deliveries_due(self, now: datetime, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        rows = await self._due(
            keys=[self._key("heads")],
            args=[self._prefix, _micros(now), limit, _micros(now + self._claim)],
        )
        return [
            Delivery(
                id=int(_str(r[0])),
                request_id=int(_str(r[1])),
                body=r[2] if isinstance(r[2], bytes) else _str(r[2]).encode("utf-8"),
                attempts=int(_str(r[3])),
                next_at=datetime.fromisoformat(_str(r[4])),
            )
            for r in rows
        ]

    async def next_delivery_at(self) -> datetime | None:
        first = await self._redis.zrange(self._key("heads"), 0, 0, withscores=True)
        if not first:
            return None
        return EPOCH + timedelta(microseconds=int(first[0][1]))

    async def delivery_done(self, delivery_id: int) -> None:
        at = self._clock()
        await self._done(
            keys=[
                self._key("delivery", delivery_id), self._key("heads"),
                self._key("undelivered"), self._key("delivered"),
            ],
            args=[self._prefix, delivery_id, _stamp(at), _micros(at)],
        )  # fmt: skip

    async def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime) -> None:
        await self._failed(
            keys=[self._key("delivery", delivery_id), self._key("heads")],
            args=[self._prefix, delivery_id, error[:500], _stamp(retry_at), _micros(retry_at)],
        )

    async def undelivered(self) -> int:
        return int(await self._redis.scard(self._key("undelivered")))

    async def close(self) -> None:
        """The client is shared (services.py closes it last)."""

    # --- retention -----------------------------------------------------------------------------
    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        calls = int(await self._redis.zcount(self._key("delivered"), "-inf", f"({_micros(cutoff)}"))
        ids = [int(_str(i)) for i in await self._redis.smembers(self._key("records"))]
        stamp = _stamp(cutoff)
        async with self._redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hmget(self._key("request", request_id), ["status", "updated_at"])
                pipe.llen(self._key("pending", request_id))
            found = await pipe.execute()
        old = [
            request_id
            for request_id, (status, updated), pending in zip(
                ids, found[0::2], found[1::2], strict=True
            )
            if status is not None
            and _str(status) in ("done", "cancelled")
            and _str(updated) < stamp
            and not pending
        ]
        if dry_run:
            return {"requests": len(old), "request_webhooks": calls}
        deleted = 0
        for request_id in old:
            done = await self._delete_record(
                keys=[
                    self._key("request", request_id), self._key("history", request_id),
                    self._key("deliveries", request_id), self._key("pending", request_id),
                    self._key("records"), self._key("legacy"), self._key("delivered"),
                    self._key("heads"),
                ],
                args=[self._prefix, request_id, stamp],
            )  # fmt: skip
            deleted += int(done)
        await self._delete_calls(
            keys=[self._key("delivered")], args=[self._prefix, _micros(cutoff)]
        )
        return {"requests": deleted, "request_webhooks": calls}

    async def files_in_use(self) -> set[str]:
        ids = [_str(i) for i in await self._redis.smembers(self._key("records"))]
        if not ids:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hget(self._key("request", request_id), "attachments")
            found = await pipe.execute()
        return {
            file_id
            for attachments in found
            if attachments is not None and _str(attachments) != "[]"
            for file_id in _FILE_ID_IN_TEXT.findall(_str(attachments))
        }

    # --- helpers -------------------------------------------------------------------------------
    async def _next_delivery_id(self) -> int:
        """An id for the call a write queues (a gap when the write is retried or fails, as
        AUTOINCREMENT leaves after a rollback); 0 when webhooks are off."""
        if not self._webhooks:
            return 0
        return int(await self._redis.incr(self._key("seq", "delivery")))

    def _write_new(self, pipe: Pipeline, columns: Mapping[str, str], entry: HistoryEntry) -> None:
        request_id = columns["id"]
        pipe.hset(self._key("request", request_id), mapping=cast(Any, dict(columns)))
        pipe.rpush(self._key("history", request_id), _entry_json(entry))
        pipe.sadd(self._key("records"), request_id)

    def _queue(
        self,
        pipe: Pipeline,
        delivery_id: int,
        event: str,
        record: RequestRecord,
        changed: tuple[HistoryEntry, ...],
        at: datetime,
    ) -> None:
        if not self._webhooks:
            return
        # The body is fixed now: a retry sends the very bytes (and signature) of the first try,
        # and each call tells the record as it was after its own change.
        body = json.dumps(webhook_body(delivery_id, event, record, changed), ensure_ascii=False)
        pipe.hset(
            self._key("delivery", delivery_id),
            mapping={
                "request_id": str(record.id), "body": body, "attempts": "0",
                "next_at": _stamp(at), "due": str(_micros(at)), "created_at": _stamp(at),
            },
        )  # fmt: skip
        pipe.rpush(self._key("pending", record.id), str(delivery_id))
        pipe.sadd(self._key("deliveries", record.id), str(delivery_id))
        pipe.sadd(self._key("undelivered"), str(delivery_id))
        # The record's first call waiting becomes its head; later ones wait behind it.
        pipe.zadd(self._key("heads"), {str(record.id): _micros(at)}, nx=True)

    async def _read(self, client: Redis | Pipeline, request_id: int) -> RequestRecord | None:
        row = await client.hgetall(self._key("request", request_id))
        if not row:
            return None
        history = await client.lrange(self._key("history", request_id), 0, -1)
        return _record({_str(k): _str(v) for k, v in row.items()}, history)

    async def _load(self, ids: Sequence[int]) -> list[RequestRecord]:
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hgetall(self._key("request", request_id))
                pipe.lrange(self._key("history", request_id), 0, -1)
            found = await pipe.execute()
        return [
            _record({_str(k): _str(v) for k, v in row.items()}, history)
            for row, history in zip(found[0::2], found[1::2], strict=True)
            if row
        ]
