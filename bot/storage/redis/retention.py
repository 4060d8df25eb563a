"""Retention (BOT_RETENTION_DAYS) on Redis: what the SQLite store deletes, found through the
per-shard indexes by time (never a SCAN of the key space), deleted by scripts that check again
on the server, so a conversation that becomes active meanwhile is never deleted.

Never an open conversation (in the queue or in state queued/operator) or anything of it.
``remember_once`` ids, answered inbounds and finished outbox items also expire by themselves
(REMEMBER_SECONDS, INBOX_DONE_TTL_SECONDS, OUTBOX_FINISHED_TTL_SECONDS); those still there and
older than the cutoff are deleted here and counted. Transcript lines are trimmed from the oldest
up to the first newer line (lines are appended in time order).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bot.storage.base import PRIORITY_BULK, PRIORITY_REPLY, Store
from bot.storage.redis import lua
from bot.storage.redis.channel_bookkeeping import RECEIPTS
from bot.storage.redis.common import (
    ALL_SHARDS,
    CONV,
    CSAT,
    LINK,
    MSGS,
    NOTES,
    QUEUE,
    UNREACHABLE,
    RedisPart,
    ScriptArg,
    contract_prefix,
    fields,
    files_key,
    inbox_done_key,
    inbox_failed_key,
    inbox_item,
    lane_key,
    links_key,
    oldest_key,
    once_index,
    outbox_finished_key,
    outbox_item,
    queue_index,
    receipts_key,
    state_prefix,
    text,
    to_us,
    unreachable_index,
)
from bot.storage.redis.delivery import _INBOX_FORGET, FORGET_BATCH, UNPARSED_KEY
from bot.storage.redis.keys import conversation_key
from bot.storage.redis.records import REQUESTS

BATCH = 200  # owners per pipeline
STEP = 1000  # entries a script looks at before it hands back (a long transcript's first run)
FILE_ID_IN_TEXT = re.compile(r"(?<![\w-])[A-Za-z0-9_-]{32}(?![\w-])")

# Whether a conversation is open, or had activity since the cutoff (its state or its newest
# line): as the SQLite store's _OPEN and _STALE.
_STALE = (
    lua.ENTRY_FIELDS
    + """
local function open(conv, queue)
  if redis.call('EXISTS', queue) == 1 then return true end
  local state = redis.call('HGET', conv, 'state')
  return state == 'queued' or state == 'operator'
end
local function stale(conv, queue, msgs, cutoff)
  if open(conv, queue) then return false end
  local updated = redis.call('HGET', conv, 'updated')
  if updated and tonumber(updated) >= cutoff then return false end
  local last = redis.call('XREVRANGE', msgs, '+', '-', 'COUNT', 1)[1]
  if last and tonumber(entry_fields(last[2])['a']) >= cutoff then return false end
  return true
end
"""
)

# KEYS: msgs, oldest index, conv, queue. ARGV: cid, cutoff, dry, start ('-' or '(<id>'), step.
# Returns {count, finished (1/0), last id looked at}.
_TRIM_STREAM = (
    _STALE
    + """
local cutoff, dry = tonumber(ARGV[2]), ARGV[3] == '1'
if open(KEYS[3], KEYS[4]) then return {0, 1, ''} end
local entries = redis.call('XRANGE', KEYS[1], ARGV[4], '+', 'COUNT', tonumber(ARGV[5]))
local count, last = 0, ''
for _, e in ipairs(entries) do
  local at = tonumber(entry_fields(e[2])['a'])
  if at >= cutoff then
    if not dry then redis.call('ZADD', KEYS[2], 'XX', at, ARGV[1]) end
    return {count, 1, last}
  end
  count = count + 1
  last = e[1]
  if not dry then redis.call('XDEL', KEYS[1], e[1]) end
end
if #entries == tonumber(ARGV[5]) then return {count, 0, last} end
if not dry then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return {count, 1, last}
"""
)

# KEYS: conv, queue, msgs, link. ARGV: cid, cutoff, dry, state prefix, contract prefix.
_RETIRE_CONVERSATION = (
    _STALE
    + """
local cutoff = tonumber(ARGV[2])
local c = redis.call('HMGET', KEYS[1], 'state', 'contract')
if not c[1] or not stale(KEYS[1], KEYS[2], KEYS[3], cutoff) then return 0 end
if ARGV[3] == '1' then return 1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[4] .. c[1], ARGV[1])
if c[2] and redis.call('HGET', KEYS[4], 'contract') ~= c[2] then
  redis.call('SREM', ARGV[5] .. c[2], ARGV[1])
end
return 1
"""
)

# KEYS: the record (link / unreachable hash), its index, conv, queue, msgs.
# ARGV: cid, cutoff, dry, time field, contract prefix ('' : not a link).
_RETIRE_RECORD = (
    _STALE
    + """
local cutoff = tonumber(ARGV[2])
local at = redis.call('HGET', KEYS[1], ARGV[4])
if not at then
  if ARGV[3] ~= '1' then redis.call('ZREM', KEYS[2], ARGV[1]) end
  return 0
end
if tonumber(at) >= cutoff or not stale(KEYS[3], KEYS[4], KEYS[5], cutoff) then return 0 end
if ARGV[3] == '1' then return 1 end
local contract = redis.call('HGET', KEYS[1], 'contract')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[5] ~= '' and contract and redis.call('HGET', KEYS[3], 'contract') ~= contract then
  redis.call('SREM', ARGV[5] .. contract, ARGV[1])
end
return 1
"""
)

# KEYS: a list of JSON items with "at" (oldest first), its oldest index, conv, queue.
# ARGV: owner, cutoff, dry, '1' to keep it all while the conversation is open.
_TRIM_LIST = (
    _STALE
    + """
local cutoff, dry = tonumber(ARGV[2]), ARGV[3] == '1'
if ARGV[4] == '1' and open(KEYS[3], KEYS[4]) then return 0 end
local count, i = 0, 0
while true do
  local item = redis.call('LINDEX', KEYS[1], i)
  if not item then
    if not dry then redis.call('ZREM', KEYS[2], ARGV[1]) end
    return count
  end
  local at = tonumber(cjson.decode(item)['at'])
  if at >= cutoff then
    if not dry then redis.call('ZADD', KEYS[2], 'XX', at, ARGV[1]) end
    return count
  end
  count = count + 1
  if dry then i = i + 1 else redis.call('LPOP', KEYS[1]) end
end
"""
)

# KEYS: the unparsed list (newest first). ARGV: cutoff, dry.
_TRIM_UNPARSED = """
local cutoff, dry, count, i = tonumber(ARGV[1]), ARGV[2] == '1', 0, -1
while true do
  local item = redis.call('LINDEX', KEYS[1], i)
  if not item or tonumber(string.match(item, '^(%d+)|')) >= cutoff then return count end
  count = count + 1
  if dry then i = i - 1 else redis.call('RPOP', KEYS[1]) end
end
"""

# KEYS: an index by time. ARGV: key prefix of its members, cutoff, batch: the keys go.
_FORGET_NAMED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""


KeysArgs = tuple[list[str], list[ScriptArg]]


def _conversation_call(rest: list[ScriptArg], cid: str) -> KeysArgs:
    keys = [conversation_key(cid, kind) for kind in (CONV, QUEUE, MSGS, LINK)]
    return keys, [cid, *rest]


def _record_call(record: str, index: str, rest: list[ScriptArg], cid: str) -> KeysArgs:
    """_RETIRE_RECORD's keys and arguments for a link or an unreachable mark."""
    keys = [conversation_key(cid, record), index]
    keys += [conversation_key(cid, kind) for kind in (CONV, QUEUE, MSGS)]
    return keys, [cid, *rest]


def _list_call(kind: str, index: str, rest: list[ScriptArg], cid: str) -> KeysArgs:
    """_TRIM_LIST's keys and arguments for a conversation's notes or scores."""
    keys = [conversation_key(cid, kind), index, conversation_key(cid, CONV)]
    return [*keys, conversation_key(cid, QUEUE)], [cid, *rest]


def _batches(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


class RedisRetention(RedisPart, Store):
    async def _older(self, op: str, index: str, cutoff: int) -> list[str]:
        """Members of ``index`` scored before ``cutoff``."""
        found = await self._calls.run(
            op, lambda: self._redis.zrangebyscore(index, "-inf", f"({cutoff}")
        )
        return [text(m) for m in found]

    async def _each(
        self,
        op: str,
        owners: list[str],
        call: Callable[[str], tuple[list[str], list[Any]]],
        source: str,
    ) -> int:
        """Runs ``source`` for every owner, a pipeline of BATCH at a time; the sum of replies."""
        script = self._script(source)
        total = 0
        for batch in _batches(owners):

            async def run(batch: list[str] = batch) -> list[Any]:
                pipe = self._redis.pipeline(transaction=False)
                for owner in batch:
                    keys, args = call(owner)
                    await script(keys=keys, args=args, client=pipe)
                return await pipe.execute()

            total += sum(int(n) for n in await self._calls.run(op, run))
        return total

    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        at = to_us(cutoff.astimezone(UTC))
        dry = "1" if dry_run else "0"
        op = "delete_older_than"
        counts = dict.fromkeys(
            (
                "messages", "conversations", "identity_links", "unreachable", "notes", "csat",
                "inbox", "unparsed", "outbox", "dedupe", "receipts", "legacy_requests",
            ),
            0,
        )  # fmt: skip
        for shard in ALL_SHARDS:
            counts["messages"] += await self._trim_transcripts(shard, at, dry)
            if not dry_run:
                await self._calls.run(
                    op, partial(self._redis.zremrangebyscore, files_key(shard), "-inf", f"({at}")
                )
            by_state, by_contract = state_prefix(shard), contract_prefix(shard)

            for state in ("bot", "closed"):  # queued and operator are open
                owners = await self._older(op, by_state + state, at)
                call = partial(_conversation_call, [at, dry, by_state, by_contract])
                counts["conversations"] += await self._each(op, owners, call, _RETIRE_CONVERSATION)
            for kind, record, index, field, prefix in (
                ("identity_links", LINK, links_key(shard), "at", by_contract),
                ("unreachable", UNREACHABLE, unreachable_index(shard), "since", ""),
            ):
                counts[kind] += await self._each(
                    op,
                    await self._older(op, index, at),
                    partial(_record_call, record, index, [at, dry, field, prefix]),
                    _RETIRE_RECORD,
                )
            for kind, keep_open in ((NOTES, "1"), (CSAT, "0")):
                index = oldest_key(shard, kind)
                counts[kind] += await self._each(
                    op,
                    await self._older(op, index, at),
                    partial(_list_call, kind, index, [at, dry, keep_open]),
                    _TRIM_LIST,
                )
        for shard in ALL_SHARDS:
            for index in (inbox_done_key(shard), inbox_failed_key(shard)):
                counts["inbox"] += await self._forget(
                    index, inbox_item(shard, ""), at, dry_run, _INBOX_FORGET
                )
            counts["outbox"] += await self._forget(
                outbox_finished_key(shard), outbox_item(shard, ""), at, dry_run, _FORGET_NAMED
            )
            # Members are the keys themselves: no prefix.
            counts["dedupe"] += await self._forget(
                once_index(shard), "", at, dry_run, _FORGET_NAMED
            )
        unparsed = self._script(_TRIM_UNPARSED)
        counts["unparsed"] = int(
            await self._calls.run(op, lambda: unparsed(keys=[UNPARSED_KEY], args=[at, dry]))
        )
        for shard in ALL_SHARDS:
            index = oldest_key(shard, RECEIPTS)

            def receipts(owner: str, index: str = index) -> KeysArgs:
                scope, message = json.loads(owner)
                key = receipts_key(scope, message)[1]
                return [key, index, key, key], [owner, at, dry, "0"]

            counts["receipts"] += await self._each(
                op, await self._older(op, index, at), receipts, _TRIM_LIST
            )
        counts["legacy_requests"] = await self._old_requests(at, dry_run)
        return counts

    async def _trim_transcripts(self, shard: int, at: int, dry: str) -> int:
        index = oldest_key(shard, MSGS)
        script = self._script(_TRIM_STREAM)
        total = 0
        for cid in await self._older("delete_older_than", index, at):
            keys = [
                conversation_key(cid, MSGS), index, conversation_key(cid, CONV),
                conversation_key(cid, QUEUE),
            ]  # fmt: skip
            start = "-"
            while True:
                args: list[ScriptArg] = [cid, at, dry, start, STEP]
                count, finished, last = await self._calls.run(
                    "delete_older_than", partial(script, keys=keys, args=args)
                )
                total += int(count)
                if int(finished):
                    break
                start = f"({text(last)}"
        return total

    async def _forget(self, index: str, prefix: str, at: int, dry_run: bool, source: str) -> int:
        op = "delete_older_than"
        if dry_run:
            return int(
                await self._calls.run(op, lambda: self._redis.zcount(index, "-inf", f"({at}"))
            )
        script = self._script(source)
        total = 0
        while True:
            n = int(
                await self._calls.run(
                    op, lambda: script(keys=[index], args=[prefix, at, FORGET_BATCH])
                )
            )
            total += n
            if n < FORGET_BATCH:
                return total

    async def _old_requests(self, at: int, dry_run: bool) -> int:
        op = "delete_older_than"
        rows = await self._calls.run(op, lambda: self._redis.zrange(REQUESTS, 0, -1))
        old = [text(r) for r in rows if json.loads(text(r))["at"] < at]
        if old and not dry_run:
            await self._calls.run(op, lambda: self._redis.zrem(REQUESTS, *old))
        return len(old)

    async def files_in_use(self, cutoff: datetime) -> set[str]:
        at = to_us(cutoff.astimezone(UTC))
        op = "files_in_use"

        async def read() -> set[str]:
            found: set[str] = set()
            open_ids: set[str] = set()
            pending: list[tuple[int, str]] = []
            for shard in ALL_SHARDS:
                pipe = self._redis.pipeline(transaction=False)
                pipe.zrangebyscore(files_key(shard), at, "+inf")
                pipe.zrange(queue_index(shard), 0, -1)
                pipe.zrange(state_prefix(shard) + "queued", 0, -1)
                pipe.zrange(state_prefix(shard) + "operator", 0, -1)
                pipe.zrange(lane_key(shard, PRIORITY_REPLY), 0, -1)
                pipe.zrange(lane_key(shard, PRIORITY_BULK), 0, -1)
                files, queued, waiting, with_operator, replies, bulk = await pipe.execute()
                found.update(text(f) for f in files)
                open_ids.update(text(c) for c in (*queued, *waiting, *with_operator))
                pending += [(shard, text(i)) for i in (*replies, *bulk)]
            for cid in open_ids:  # whatever the age of their lines: an operator reads them
                start = "-"
                key = conversation_key(cid, MSGS)
                while page := await self._redis.xrange(key, min=start, max="+", count=STEP):
                    for _, raw in page:
                        meta = fields(raw).get("m", "")
                        if "attachments" in meta:
                            found.update(FILE_ID_IN_TEXT.findall(meta))
                    start = f"({text(page[-1][0])}"
            pipe = self._redis.pipeline(transaction=False)
            for shard, item_id in pending:
                pipe.hget(outbox_item(shard, item_id), "files")
            for attachments in await pipe.execute():
                if attachments:
                    found.update(FILE_ID_IN_TEXT.findall(text(attachments)))
            return found

        return await self._calls.run(op, read)
