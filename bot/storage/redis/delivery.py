"""The durable inbox, the outbox and delivery-id dedupe on Redis.

Inbox: an item hash per inbound (``in-item:<id>``, in the conversation's shard) with its dedupe
key (``seen:<scope>:<platform id>`` → id) in the same slot, written by one script; pending ids
in the shard's ``in-pending`` and the conversation's ``inbox`` sorted sets (score = id). When a
turn answers it (``commit_turn``) the item and its dedupe key get a TTL of
``INBOX_DONE_TTL_SECONDS`` (the window of bot/ingress.py's KEEP_DELIVERY_IDS_DAYS) and the id
moves to ``in-done`` (score = received): ``inbox_forget`` deletes what is older than asked
before that, and returns how many; the TTL bounds memory if it never runs. Given-up inbounds
(``in-failed``) are kept, deduping redeliveries, until retention.

Outbox: an item hash per reply (``out-item:<id>``) and its id in the shard's lane
(``lane0`` replies, ``lane1`` bulk) and the conversation's (``outbox0``/``outbox1``). Sent and
finally failed items leave the lanes and are kept ``OUTBOX_FINISHED_TTL_SECONDS`` for
inspection (``out-finished``, by time), then expire.

Ids come from the shard's counter (``keys.numbered``): unique in the store and increasing in a
conversation. Reads across conversations merge the 16 shards' sorted sets by id, in one
pipeline, at most ``limit`` from each: bounded, never a SCAN. Items are read back with their
status, so a stale index entry is skipped rather than trusted.
"""

from __future__ import annotations

import heapq
import json
import re
from functools import partial
from typing import Any, cast

from bot.models import Inbound
from bot.serialize import buttons_from_json, files_from_json, inbound_from_json, inbound_to_json
from bot.storage.base import PRIORITY_BULK, PRIORITY_REPLY, Delivery, OutboundItem, PendingInbound
from bot.storage.redis.common import (
    ALL_SHARDS,
    DAY_US,
    INBOX_OF,
    RedisPart,
    ScriptArg,
    fields,
    inbox_done_key,
    inbox_failed_key,
    inbox_item,
    inbox_pending_key,
    lane_key,
    merged,
    now_us,
    once_index,
    once_key,
    outbox_finished_key,
    outbox_item,
    outbox_of,
    seen_key,
    seq_key,
    text,
)
from bot.storage.redis.keys import SHARDS, conversation_key, global_key, shard_of, shard_of_id
from bot.storage.redis.lua import NUMBERED

# ``remember_once`` ids are kept this long (SET NX EX): the SQLite store keeps them until
# retention (BOT_RETENTION_DAYS); here they expire after the redelivery window of
# bot/ingress.py (KEEP_DELIVERY_IDS_DAYS), so a Redis without retention stays bounded. What
# they dedupe (VK event answers, Viber receipts) is redelivered within minutes if at all.
REMEMBER_SECONDS = 3 * 86_400
# Sent and failed outbox items stay this long for inspection, then expire.
OUTBOX_FINISHED_TTL_SECONDS = 7 * 86_400
# Unparsed deliveries: the newest ``UNPARSED_KEEP`` (LPUSH + LTRIM), each body cut at
# ``UNPARSED_BODY_CHARS`` (SQLite keeps up to 1 000 000 characters: in memory that is too much).
UNPARSED_KEEP = 10_000
UNPARSED_BODY_CHARS = 65_536
UNPARSED_KEY = global_key("unparsed", "list")
ERROR_CHARS = 2000

_SURROGATES = re.compile("[\ud800-\udfff]")

# KEYS: the id's key, the shard's index of them. ARGV: now, ttl (s). The index (for retention)
# forgets what has expired by itself as it goes.
_REMEMBER_ONCE = """
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf',
  '(' .. string.format('%d', tonumber(ARGV[1]) - tonumber(ARGV[2]) * 1000000))
return 1
"""

# KEYS: seen, seq, shard pending, conversation pending. ARGV: item prefix, shards, shard,
# scope, platform id, conversation id, inbound JSON, now.
_INBOX_PUT = (
    NUMBERED
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = numbered(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]))
redis.call('HSET', ARGV[1] .. id, 'scope', ARGV[4], 'pid', ARGV[5], 'conv', ARGV[6],
  'inbound', ARGV[7], 'status', 'pending', 'attempts', 0, 'received', ARGV[8],
  'seen', KEYS[1], 'cset', KEYS[4])
redis.call('ZADD', KEYS[3], id, id)
redis.call('ZADD', KEYS[4], id, id)
redis.call('SET', KEYS[1], id)
return id
"""
)

# KEYS: item, shard pending, shard failed. ARGV: id, error, give up ('1'/'0').
_INBOX_RETRY = """
local item = redis.call('HMGET', KEYS[1], 'status', 'received', 'cset')
if not item[1] then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'err', ARGV[2])
if ARGV[3] == '1' and item[1] == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'failed')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', item[3], ARGV[1])
  redis.call('ZADD', KEYS[3], item[2], ARGV[1])
end
return 1
"""

# KEYS: done index. ARGV: item prefix, cutoff (µs, exclusive), batch. Deletes answered items
# received before the cutoff with their dedupe keys (unless the key already names a newer item).
_INBOX_FORGET = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local item = ARGV[1] .. id
  local seen = redis.call('HGET', item, 'seen')
  if seen and redis.call('GET', seen) == id then redis.call('DEL', seen) end
  redis.call('DEL', item)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""

# KEYS: item. Marks a send in flight, if the item is still pending.
_OUTBOX_SENDING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'sending', 1)
return 1
"""

# KEYS: item, finished index. ARGV: id, status, platform message id, error, now, ttl (s).
_OUTBOX_DONE = """
local item = redis.call('HMGET', KEYS[1], 'lane', 'cset')
if not item[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'pmid', ARGV[3], 'err', ARGV[4],
  'updated', ARGV[5], 'sending', 0)
redis.call('ZREM', item[1], ARGV[1])
redis.call('ZREM', item[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf',
  '(' .. string.format('%d', tonumber(ARGV[5]) - tonumber(ARGV[6]) * 1000000))
return 1
"""

# KEYS: item. ARGV: error, now.
_OUTBOX_FAILED = """
if not redis.call('HGET', KEYS[1], 'status') then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'err', ARGV[1], 'updated', ARGV[2], 'sending', 0)
return 1
"""

FORGET_BATCH = 500


def _storable(value: str) -> str:
    """``value`` as valid UTF-8 (lone surrogates become U+FFFD): what we could not parse may
    hold anything, and keeping it must not fail."""
    return _SURROGATES.sub("\ufffd", value)


def _outbound(item_id: int, f: dict[str, str]) -> OutboundItem:
    return OutboundItem(
        id=item_id,
        conversation_id=f["conv"],
        channel=f["channel"],
        chat_id=f["chat"],
        text=f["text"],
        buttons=buttons_from_json(json.loads(f["buttons"])),
        attempts=int(f["attempts"]),
        attachments=files_from_json(json.loads(f["files"])),
        priority=int(f["prio"]),
        uncertain=f.get("sending") == "1",
    )


class RedisDelivery(RedisPart, Delivery):
    async def remember_once(self, scope: str, platform_id: str) -> bool:
        shard, key = once_key(scope, platform_id)
        keys = [key, once_index(shard)]
        args: list[ScriptArg] = [now_us(), REMEMBER_SECONDS]
        script = self._script(_REMEMBER_ONCE)
        return bool(await self._calls.run("remember_once", lambda: script(keys=keys, args=args)))

    async def inbox_put(self, scope: str, platform_id: str, inbound: Inbound) -> int | None:
        cid = inbound.key.id
        shard = shard_of(cid)
        body = json.dumps(inbound_to_json(inbound), ensure_ascii=False)
        keys = [
            seen_key(shard, scope, platform_id), seq_key(shard), inbox_pending_key(shard),
            conversation_key(cid, INBOX_OF),
        ]  # fmt: skip
        args: list[ScriptArg] = [
            inbox_item(shard, ""), SHARDS, shard, scope, platform_id, cid, body, now_us(),
        ]  # fmt: skip
        script = self._script(_INBOX_PUT)
        found = await self._calls.run("inbox_put", lambda: script(keys=keys, args=args))
        return None if found is None else int(found)

    async def inbox_pending(self, conversation_id: str | None = None) -> list[PendingInbound]:
        """Oldest first: a conversation's in id order; across shards by the time received
        (ids of different shards come from different counters), each shard kept in id order,
        so no conversation's inbounds are ever reordered."""

        async def read() -> list[list[tuple[int, int, PendingInbound]]]:
            pipe = self._redis.pipeline(transaction=False)
            if conversation_id is not None:
                pipe.zrange(conversation_key(conversation_id, INBOX_OF), 0, -1)
            else:
                for shard in ALL_SHARDS:
                    pipe.zrange(inbox_pending_key(shard), 0, -1)
            per_shard = [merged([ids]) for ids in await pipe.execute()]
            pipe = self._redis.pipeline(transaction=False)
            for ids in per_shard:
                for item_id in ids:
                    pipe.hmget(
                        inbox_item(shard_of_id(item_id), item_id),
                        ["status", "inbound", "attempts", "received"],
                    )
            rows = iter(await pipe.execute())
            found: list[list[tuple[int, int, PendingInbound]]] = []
            for ids in per_shard:
                shard_found = []
                for item_id in ids:
                    status, body, attempts, received = next(rows)
                    if status is not None and text(status) == "pending":
                        inbound = inbound_from_json(json.loads(body))
                        pending = PendingInbound(item_id, inbound, int(attempts))
                        shard_found.append((int(received), item_id, pending))
                found.append(shard_found)
            return found

        per_shard = await self._calls.run("inbox_pending", read)
        return [p for _, _, p in heapq.merge(*per_shard, key=lambda row: (row[0], row[1]))]

    async def inbox_retry_later(self, inbox_id: int, error: str, *, give_up: bool) -> None:
        shard = shard_of_id(inbox_id)
        keys = [inbox_item(shard, inbox_id), inbox_pending_key(shard), inbox_failed_key(shard)]
        args: list[ScriptArg] = [inbox_id, error[:ERROR_CHARS], "1" if give_up else "0"]
        script = self._script(_INBOX_RETRY)
        await self._calls.run("inbox_retry_later", lambda: script(keys=keys, args=args))

    async def inbox_forget(self, older_than_days: float) -> int:
        cutoff = now_us() - int(older_than_days * DAY_US)
        script = self._script(_INBOX_FORGET)
        forgotten = 0
        for shard in ALL_SHARDS:
            keys = [inbox_done_key(shard)]
            args: list[ScriptArg] = [inbox_item(shard, ""), cutoff, FORGET_BATCH]
            while True:
                n = int(
                    await self._calls.run("inbox_forget", partial(script, keys=keys, args=args))
                )
                forgotten += n
                if n < FORGET_BATCH:
                    break
        return forgotten

    async def keep_unparsed(self, scope: str, body: str, problem: str) -> None:
        record = json.dumps(
            {
                "scope": scope,
                "body": _storable(body[:UNPARSED_BODY_CHARS]),
                "problem": _storable(problem[:ERROR_CHARS]),
            },
            ensure_ascii=False,
        )
        # "<received µs>|<json>": retention reads the time without parsing the JSON.
        entry = f"{now_us()}|{record}"

        async def keep() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.lpush(UNPARSED_KEY, entry)
            pipe.ltrim(UNPARSED_KEY, 0, UNPARSED_KEEP - 1)
            await pipe.execute()

        await self._calls.run("keep_unparsed", keep)

    async def outbox_pending(
        self, *, limit: int = 500, conversation_id: str | None = None
    ) -> list[OutboundItem]:
        if limit <= 0:
            return []

        async def read() -> list[Any]:
            ids: list[int] = []
            for priority in (PRIORITY_REPLY, PRIORITY_BULK):  # replies first
                pipe = self._redis.pipeline(transaction=False)
                if conversation_id is not None:
                    pipe.zrange(outbox_of(conversation_id, priority), 0, limit - len(ids) - 1)
                else:
                    for shard in ALL_SHARDS:
                        pipe.zrange(lane_key(shard, priority), 0, limit - len(ids) - 1)
                ids += merged(await pipe.execute(), limit - len(ids))
                if len(ids) >= limit:
                    break
            pipe = self._redis.pipeline(transaction=False)
            for item_id in ids:
                pipe.hgetall(outbox_item(shard_of_id(item_id), item_id))
            return list(zip(ids, await pipe.execute(), strict=True))

        items: list[OutboundItem] = []
        for item_id, raw in await self._calls.run("outbox_pending", read):
            f = fields(cast(dict[Any, Any], raw))
            if f.get("status") == "pending":
                items.append(_outbound(item_id, f))
        return items

    async def outbox_sending(self, item_id: int) -> None:
        key = outbox_item(shard_of_id(item_id), item_id)
        script = self._script(_OUTBOX_SENDING)
        await self._calls.run("outbox_sending", lambda: script(keys=[key]))

    async def outbox_done(
        self, item_id: int, *, platform_message_id: str | None = None, error: str | None = None
    ) -> None:
        shard = shard_of_id(item_id)
        keys = [outbox_item(shard, item_id), outbox_finished_key(shard)]
        args: list[ScriptArg] = [
            item_id, "failed" if error is not None else "sent", platform_message_id or "",
            (error or "")[:ERROR_CHARS], now_us(), OUTBOX_FINISHED_TTL_SECONDS,
        ]  # fmt: skip
        script = self._script(_OUTBOX_DONE)
        await self._calls.run("outbox_done", lambda: script(keys=keys, args=args))

    async def outbox_attempt_failed(self, item_id: int, error: str) -> None:
        key = outbox_item(shard_of_id(item_id), item_id)
        script = self._script(_OUTBOX_FAILED)
        args: list[ScriptArg] = [error[:ERROR_CHARS], now_us()]
        await self._calls.run("outbox_attempt_failed", lambda: script(keys=[key], args=args))
