"""The operators' queue, assignment, notes and scores on Redis.

Per conversation (its shard): ``queue`` (hash: channel, department, reason, queued, operator,
assigned, first, notified), ``notes`` and ``csat`` (lists of JSON, oldest first). Per shard:
``queue-idx`` (conversations with people by queued time) and the ``oldest`` indexes retention
trims notes and scores by. Claiming (``queue_assign(only_if_unassigned=True)``) is a
compare-and-set in one script: of any number of operators claiming at once exactly one wins.
"""

from __future__ import annotations

import json
from typing import Any, cast

from bot.storage.base import HandoffQueue, Note, QueueEntry
from bot.storage.redis.common import (
    ALL_SHARDS,
    CSAT,
    NOTES,
    QUEUE,
    RedisPart,
    ScriptArg,
    fields,
    from_us,
    now_us,
    oldest_key,
    queue_index,
    text,
)
from bot.storage.redis.keys import conversation_key, shard_of

# KEYS: queue hash, queue index. ARGV: conversation id, channel, department, reason, now.
# A conversation already queued moves (department, reason) and is unassigned; it keeps its
# place (queued time), channel and first response, as the SQLite store's upsert does.
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'department', ARGV[3], 'reason', ARGV[4])
  redis.call('HDEL', KEYS[1], 'operator', 'assigned')
else
  redis.call('HSET', KEYS[1], 'channel', ARGV[2], 'department', ARGV[3], 'reason', ARGV[4],
    'queued', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
"""

# KEYS: queue hash. ARGV: operator ('' clears), now, only if unassigned ('1'/'0').
_ASSIGN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[1], 'operator') == 1 then return 0 end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'operator', 'assigned')
else
  redis.call('HSET', KEYS[1], 'operator', ARGV[1], 'assigned', ARGV[2])
end
return 1
"""

# KEYS: queue hash. ARGV: field, value, only if not set ('1'/'0'). Never creates an entry.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] == '1' then return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def _optional(f: dict[str, str], name: str) -> str | None:
    return f.get(name) or None


def queue_entry(conversation_id: str, f: dict[str, str]) -> QueueEntry:
    assigned, first, notified = f.get("assigned"), f.get("first"), f.get("notified")
    return QueueEntry(
        conversation_id=conversation_id,
        channel=f["channel"],
        department=f["department"],
        reason=f["reason"],
        queued_at=from_us(f["queued"]),
        operator=_optional(f, "operator"),
        assigned_at=None if assigned is None else from_us(assigned),
        first_response_at=None if first is None else from_us(first),
        notified_position=None if notified is None else int(notified),
    )


class RedisHandoffQueue(RedisPart, HandoffQueue):
    async def queue_put(
        self, conversation_id: str, channel: str, department: str, reason: str
    ) -> QueueEntry:
        keys = [conversation_key(conversation_id, QUEUE), queue_index(shard_of(conversation_id))]
        args: list[ScriptArg] = [conversation_id, channel, department, reason, now_us()]
        script = self._script(_PUT)
        await self._calls.run("queue_put", lambda: script(keys=keys, args=args))
        entry = await self.queue_get(conversation_id)
        assert entry is not None  # just written
        return entry

    async def queue_get(self, conversation_id: str) -> QueueEntry | None:
        key = conversation_key(conversation_id, QUEUE)
        raw = await self._calls.run("queue_get", lambda: self._redis.hgetall(key))
        return queue_entry(conversation_id, fields(raw)) if raw else None

    async def queue_entries(self) -> list[QueueEntry]:
        async def read() -> list[tuple[float, str, dict[Any, Any]]]:
            pipe = self._redis.pipeline(transaction=False)
            for shard in ALL_SHARDS:
                pipe.zrange(queue_index(shard), 0, -1, withscores=True)
            queued = sorted(
                (score, text(cid)) for rows in await pipe.execute() for cid, score in rows
            )
            pipe = self._redis.pipeline(transaction=False)
            for _, cid in queued:
                pipe.hgetall(conversation_key(cid, QUEUE))
            rows = cast(list[dict[Any, Any]], await pipe.execute())
            return [(score, cid, raw) for (score, cid), raw in zip(queued, rows, strict=True)]

        found = await self._calls.run("queue_entries", read)
        return [queue_entry(cid, fields(raw)) for _, cid, raw in found if raw]

    async def queue_assign(
        self, conversation_id: str, operator: str | None, *, only_if_unassigned: bool = False
    ) -> bool:
        key = conversation_key(conversation_id, QUEUE)
        args: list[ScriptArg] = [operator or "", now_us(), "1" if only_if_unassigned else "0"]
        script = self._script(_ASSIGN)
        return bool(await self._calls.run("queue_assign", lambda: script(keys=[key], args=args)))

    async def _update(self, op: str, conversation_id: str, *args: ScriptArg) -> None:
        key = conversation_key(conversation_id, QUEUE)
        script = self._script(_UPDATE)
        await self._calls.run(op, lambda: script(keys=[key], args=list(args)))

    async def queue_responded(self, conversation_id: str) -> None:
        await self._update("queue_responded", conversation_id, "first", now_us(), "1")

    async def queue_notified(self, conversation_id: str, position: int) -> None:
        await self._update("queue_notified", conversation_id, "notified", position, "0")

    async def queue_remove(self, conversation_id: str) -> None:
        key = conversation_key(conversation_id, QUEUE)
        index = queue_index(shard_of(conversation_id))

        async def remove() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(key)
            pipe.zrem(index, conversation_id)
            await pipe.execute()

        await self._calls.run("queue_remove", remove)

    async def _append(self, op: str, conversation_id: str, kind: str, item: dict[str, Any]) -> None:
        """An item appended to one of the conversation's lists (notes, scores); the conversation
        enters the kind's ``oldest`` index if it was not in it (retention)."""
        key = conversation_key(conversation_id, kind)
        index = oldest_key(shard_of(conversation_id), kind)

        async def append() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.rpush(key, json.dumps(item, ensure_ascii=False))
            pipe.zadd(index, {conversation_id: item["at"]}, nx=True)
            await pipe.execute()

        await self._calls.run(op, append)

    async def add_note(self, conversation_id: str, author: str, text: str) -> Note:
        at = now_us()
        await self._append(
            "add_note", conversation_id, NOTES, {"author": author, "text": text, "at": at}
        )
        return Note(author, text, from_us(at))

    async def notes(self, conversation_id: str) -> list[Note]:
        key = conversation_key(conversation_id, NOTES)
        rows = await self._calls.run("notes", lambda: self._redis.lrange(key, 0, -1))
        return [
            Note(n["author"], n["text"], from_us(n["at"])) for n in (json.loads(r) for r in rows)
        ]

    async def add_csat(self, conversation_id: str, score: int, operator: str | None) -> None:
        item = {"score": score, "operator": operator, "at": now_us()}
        await self._append("add_csat", conversation_id, CSAT, item)
