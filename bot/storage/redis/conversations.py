"""Conversations, transcripts, identity links and a turn's commit on Redis.

Per conversation, in its shard (``keys.conversation_key``): ``conv`` (hash: state, locale,
contract, dialog JSON, updated), ``msgs`` (a stream: entry id ``<line id>-0``, fields sender,
text, buttons, meta, at), ``link`` (hash). Per shard: the counter ids come from, conversations
by state and last activity (``by-state:<state>``, sorted sets), by contract
(``by-contract:<number>``, sets), the oldest line of each conversation and the files lines name
(retention).

A stream keeps a transcript compactly (entries with the same fields share their names) and
pages by id with XRANGE. Indexes are per shard, not global, so that a turn's commit is one
script in one slot on Redis Cluster; cross-conversation reads (``recent_conversations``,
``conversations_of_contract``) merge the 16 shards' answers, read in one pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from bot.models import (
    Conversation,
    ConversationKey,
    ConversationState,
    RenderedButton,
    Sender,
    TranscriptEntry,
)
from bot.serialize import buttons_from_json, buttons_to_json, files_to_json
from bot.storage.base import (
    Conversations,
    IdentityLink,
    TranscriptLine,
    TurnRecord,
    delivery_priority,
)
from bot.storage.redis import lua
from bot.storage.redis.common import (
    ALL_SHARDS,
    CONV,
    LINK,
    MSGS,
    RedisPart,
    ScriptArg,
    contract_prefix,
    fields,
    files_key,
    from_us,
    inbox_done_key,
    inbox_failed_key,
    inbox_item,
    inbox_pending_key,
    lane_key,
    links_key,
    now_us,
    oldest_key,
    outbox_item,
    outbox_of,
    seq_key,
    state_prefix,
    text,
)
from bot.storage.redis.keys import SHARDS, conversation_key, shard_of, shard_of_id

# Answered inbounds (and their dedupe keys) expire this long after the answer: the window of
# bot/ingress.py KEEP_DELIVERY_IDS_DAYS, so memory stays bounded even if nobody calls
# ``inbox_forget``. A test checks the two agree.
INBOX_DONE_TTL_SECONDS = 3 * 86_400
# File ids as the stores write them (token_urlsafe(24), uuid4().hex): as bot/storage/sqlite.py
# finds them in a line's meta.
FILE_ID_IN_TEXT = re.compile(r"(?<![\w-])[A-Za-z0-9_-]{32}(?![\w-])")


def line_meta(line: TranscriptLine) -> dict[str, Any]:
    """A line's meta with its files (``attachments``), as every transcript reader finds them."""
    meta = dict(line.meta or {})
    if line.attachments:
        meta["attachments"] = files_to_json(line.attachments)
    return meta


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def file_ids(meta_json: str) -> str:
    """The file ids a line's meta names, space-separated for the script ('' for none)."""
    return " ".join(FILE_ID_IN_TEXT.findall(meta_json)) if "attachments" in meta_json else ""


def stream_id(entry_id: bytes | str) -> int:
    return int(text(entry_id).split("-", 1)[0])


def transcript_entry(conversation_id: str, entry: Any) -> TranscriptEntry:
    """An XRANGE entry (id, {field: value})."""
    entry_id, raw = entry
    f = fields(raw)
    return TranscriptEntry(
        id=stream_id(entry_id),
        conversation_id=conversation_id,
        sender=cast(Sender, f["s"]),
        text=f["t"],
        buttons=buttons_from_json(json.loads(f["b"])),
        meta=json.loads(f["m"]),
        at=from_us(f["a"]),
    )


def conversation_args(conversation: Conversation, at: int) -> list[ScriptArg]:
    shard = shard_of(conversation.id)
    return [
        conversation.id, conversation.state, conversation.locale,
        conversation.contract_number or "", dumps(conversation.dialog), at,
        state_prefix(shard), contract_prefix(shard),
    ]  # fmt: skip


_SAVE = (
    lua.UPSERT_CONVERSATION
    + """
upsert(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"""
)

_APPEND = (
    lua.NUMBERED
    + lua.ADD_LINE
    + """
return add_line(KEYS[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[1]), tonumber(ARGV[2]),
  ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
"""
)

# KEYS: conv, link, msgs, seq, oldest lines, files, inbox item (or conv again), inbox pending,
# inbox done, inbox failed, outbox lane of the shard, outbox lane of the conversation.
# ARGV: the 8 of upsert, shards, shard, #lines, #deliver, inbox id ('' none), done TTL (s),
# outbox item prefix, priority, channel, chat id; then 5 per line; then 3 per delivery.
_COMMIT = (
    lua.NUMBERED
    + lua.UPSERT_CONVERSATION
    + lua.ADD_LINE
    + """
local cid, now = ARGV[1], ARGV[6]  -- strings: a Lua number would be printed inexactly
local shards, shard = tonumber(ARGV[9]), tonumber(ARGV[10])
local n_lines, n_deliver, inbox_id = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local ttl, item_prefix = tonumber(ARGV[14]), ARGV[15]
local priority, channel, chat = ARGV[16], ARGV[17], ARGV[18]
upsert(KEYS[1], KEYS[2], cid, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
local ids = {}
local at = 19
for i = 1, n_lines do
  ids[i] = add_line(KEYS[3], KEYS[4], KEYS[5], KEYS[6], shards, shard, cid,
    ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], now, ARGV[at + 4])
  at = at + 5
end
for i = 1, n_deliver do
  local id = numbered(KEYS[4], shards, shard)
  redis.call('HSET', item_prefix .. id, 'conv', cid, 'channel', channel, 'chat', chat,
    'text', ARGV[at], 'buttons', ARGV[at + 1], 'files', ARGV[at + 2], 'prio', priority,
    'attempts', 0, 'status', 'pending', 'sending', 0, 'created', now, 'updated', now,
    'lane', KEYS[11], 'cset', KEYS[12])
  redis.call('ZADD', KEYS[11], id, id)
  redis.call('ZADD', KEYS[12], id, id)
  at = at + 3
end
if inbox_id ~= '' then
  local item = redis.call('HMGET', KEYS[7], 'status', 'received', 'seen', 'cset')
  if item[1] and item[1] ~= 'done' then
    redis.call('HSET', KEYS[7], 'status', 'done')
    redis.call('ZREM', KEYS[8], inbox_id)
    redis.call('ZREM', KEYS[10], inbox_id)
    if item[4] then redis.call('ZREM', item[4], inbox_id) end
    redis.call('ZADD', KEYS[9], item[2], inbox_id)
    -- Kept (deduping redeliveries) for the window, then gone by itself.
    redis.call('EXPIRE', KEYS[7], ttl)
    if item[3] then redis.call('EXPIRE', item[3], ttl) end
    redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf',
      '(' .. string.format('%d', tonumber(now) - ttl * 1000000))
  end
end
return ids
"""
)

_LINK = """
local old = redis.call('HGET', KEYS[1], 'contract')
redis.call('HSET', KEYS[1], 'contract', ARGV[2], 'method', ARGV[3], 'at', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if old and old ~= ARGV[2] and redis.call('HGET', KEYS[2], 'contract') ~= old then
  redis.call('SREM', ARGV[5] .. old, ARGV[1])
end
redis.call('SADD', ARGV[5] .. ARGV[2], ARGV[1])
"""

_REVOKE = """
local old = redis.call('HGET', KEYS[1], 'contract')
if not old then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], 'contract') ~= old then
  redis.call('SREM', ARGV[2] .. old, ARGV[1])
end
return 1
"""

LAST_MESSAGE_PAGE = 50


class RedisConversations(RedisPart, Conversations):
    async def load_conversation(self, key: ConversationKey) -> Conversation | None:
        conv = conversation_key(key.id, CONV)
        row = await self._calls.run(
            "load_conversation",
            lambda: self._redis.hmget(conv, ["state", "locale", "contract", "dialog"]),
        )
        state, locale, contract, dialog = row
        if state is None:
            return None
        return Conversation(
            key=key,
            state=cast(ConversationState, text(state)),
            locale=text(locale),
            contract_number=None if contract is None else text(contract),
            dialog=json.loads(text(dialog)),
        )

    async def save_conversation(self, conversation: Conversation) -> None:
        script = self._script(_SAVE)
        keys = [conversation_key(conversation.id, CONV), conversation_key(conversation.id, LINK)]
        args = conversation_args(conversation, now_us())
        await self._calls.run("save_conversation", lambda: script(keys=keys, args=args))

    async def append_message(
        self,
        conversation_id: str,
        sender: Sender,
        text: str,
        *,
        buttons: Sequence[RenderedButton] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> TranscriptEntry:
        at = now_us()
        shard = shard_of(conversation_id)
        meta_json = dumps(dict(meta or {}))
        script = self._script(_APPEND)
        keys = [
            conversation_key(conversation_id, MSGS), seq_key(shard),
            oldest_key(shard, MSGS), files_key(shard),
        ]  # fmt: skip
        args: list[ScriptArg] = [
            SHARDS, shard, conversation_id, sender, text, dumps(buttons_to_json(tuple(buttons))),
            meta_json, at, file_ids(meta_json),
        ]  # fmt: skip
        line_id = await self._calls.run("append_message", lambda: script(keys=keys, args=args))
        return TranscriptEntry(
            id=int(line_id),
            conversation_id=conversation_id,
            sender=sender,
            text=text,
            at=from_us(at),
            buttons=tuple(buttons),
            meta=dict(meta or {}),
        )

    async def messages(
        self, conversation_id: str, *, after: int = 0, limit: int = 200
    ) -> list[TranscriptEntry]:
        if limit <= 0:
            return []
        start = f"({after}-0" if after > 0 else "-"
        msgs = conversation_key(conversation_id, MSGS)
        entries = await self._calls.run(
            "messages", lambda: self._redis.xrange(msgs, min=start, max="+", count=limit)
        )
        return [transcript_entry(conversation_id, e) for e in entries or []]

    async def last_message(
        self, conversation_id: str, *, sender: Sender | None = None
    ) -> TranscriptEntry | None:
        msgs = conversation_key(conversation_id, MSGS)
        top = "+"
        while True:
            page = (
                await self._calls.run(
                    "last_message",
                    lambda top=top: self._redis.xrevrange(  # type: ignore[misc]
                        msgs, max=top, min="-", count=LAST_MESSAGE_PAGE
                    ),
                )
                or []
            )
            for entry in page:
                found = transcript_entry(conversation_id, entry)
                if sender is None or found.sender == sender:
                    return found
            if len(page) < LAST_MESSAGE_PAGE:
                return None
            top = f"({text(page[-1][0])}"

    async def commit_turn(self, turn: TurnRecord) -> list[TranscriptEntry]:
        conversation = turn.conversation
        cid = conversation.id
        shard = shard_of(cid)
        at = now_us()
        priority = delivery_priority(turn)
        inbox_id = turn.inbox_id
        # The inbound was recorded in this conversation's shard (``inbox_put``), so its item is
        # in this slot too.
        inbox_shard = shard if inbox_id is None else shard_of_id(inbox_id)
        keys = [
            conversation_key(cid, CONV), conversation_key(cid, LINK), conversation_key(cid, MSGS),
            seq_key(shard), oldest_key(shard, MSGS), files_key(shard),
            conversation_key(cid, CONV) if inbox_id is None else inbox_item(inbox_shard, inbox_id),
            inbox_pending_key(inbox_shard), inbox_done_key(inbox_shard),
            inbox_failed_key(inbox_shard), lane_key(shard, priority), outbox_of(cid, priority),
        ]  # fmt: skip
        args = conversation_args(conversation, at)
        args += [
            SHARDS, shard, len(turn.lines), len(turn.deliver),
            "" if inbox_id is None else inbox_id, INBOX_DONE_TTL_SECONDS,
            outbox_item(shard, ""), priority, conversation.key.channel, conversation.key.chat_id,
        ]  # fmt: skip
        metas = [line_meta(line) for line in turn.lines]
        for line, meta in zip(turn.lines, metas, strict=True):
            meta_json = dumps(meta)
            args += [
                line.sender, line.text, dumps(buttons_to_json(line.buttons)), meta_json,
                file_ids(meta_json),
            ]  # fmt: skip
        for line in turn.deliver:
            args += [
                line.text, dumps(buttons_to_json(line.buttons)),
                dumps(files_to_json(line.attachments)),
            ]  # fmt: skip
        script = self._script(_COMMIT)
        ids = await self._calls.run("commit_turn", lambda: script(keys=keys, args=args))
        return [
            TranscriptEntry(
                id=int(line_id),
                conversation_id=cid,
                sender=line.sender,
                text=line.text,
                at=from_us(at),
                buttons=line.buttons,
                meta=meta,
            )
            for line_id, line, meta in zip(ids, turn.lines, metas, strict=True)
        ]

    async def recent_conversations(self, *, state: str, limit: int = 50) -> list[str]:
        if limit <= 0:
            return []

        async def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for shard in ALL_SHARDS:
                pipe.zrevrange(state_prefix(shard) + state, 0, limit - 1, withscores=True)
            return await pipe.execute()

        per_shard = await self._calls.run("recent_conversations", read)
        found = [(score, text(cid)) for rows in per_shard for cid, score in rows]
        found.sort(key=lambda row: (-row[0], row[1]))
        return [cid for _, cid in found[:limit]]

    async def conversations_of_contract(self, contract_number: str) -> list[str]:
        async def members() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for shard in ALL_SHARDS:
                pipe.smembers(contract_prefix(shard) + contract_number)
            return await pipe.execute()

        ids = sorted(
            {
                text(c)
                for found in await self._calls.run("conversations_of_contract", members)
                for c in found
            }
        )
        if not ids:
            return []

        async def firsts() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for cid in ids:
                pipe.xrange(conversation_key(cid, MSGS), min="-", max="+", count=1)
            return await pipe.execute()

        first = await self._calls.run("conversations_of_contract", firsts)
        order = {
            cid: stream_id(e[0][0]) if e else 1 << 62 for cid, e in zip(ids, first, strict=True)
        }
        return sorted(ids, key=lambda cid: order[cid])

    async def link_identity(self, key: ConversationKey, contract_number: str, method: str) -> None:
        shard = shard_of(key.id)
        script = self._script(_LINK)
        keys = [conversation_key(key.id, LINK), conversation_key(key.id, CONV), links_key(shard)]
        args: list[ScriptArg] = [key.id, contract_number, method, now_us(), contract_prefix(shard)]
        await self._calls.run("link_identity", lambda: script(keys=keys, args=args))

    async def identity(self, key: ConversationKey) -> IdentityLink | None:
        link = conversation_key(key.id, LINK)
        contract, method, at = await self._calls.run(
            "identity", lambda: self._redis.hmget(link, ["contract", "method", "at"])
        )
        if contract is None:
            return None
        return IdentityLink(key, text(contract), text(method), from_us(text(at)))

    async def revoke_identity(self, key: ConversationKey) -> bool:
        shard = shard_of(key.id)
        script = self._script(_REVOKE)
        keys = [conversation_key(key.id, LINK), conversation_key(key.id, CONV), links_key(shard)]
        args = [key.id, contract_prefix(shard)]
        return bool(await self._calls.run("revoke_identity", lambda: script(keys=keys, args=args)))
