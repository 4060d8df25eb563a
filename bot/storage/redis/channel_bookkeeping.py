"""Payload tokens, reachability and delivery receipts on Redis.

Payload tokens: ``{payload}:<token>`` → payload, the token derived from the payload as the
SQLite store derives it (so both stores hand out the same token), kept as long as SQLite keeps
them (for ever: an old button must still work). Reachability: the conversation's
``unreachable`` hash and the shard's ``unreachable-idx`` (retention). Receipts: a list per
platform message in the shard of its id, with the ``oldest`` index retention trims by.
"""

from __future__ import annotations

import hashlib
import json

from bot.storage.base import ChannelBookkeeping
from bot.storage.redis.common import (
    UNREACHABLE,
    RedisPart,
    now_us,
    oldest_key,
    receipts_key,
    text,
    unreachable_index,
)
from bot.storage.redis.keys import conversation_key, global_key, shard_of

RECEIPTS = "receipts"


def payload_key(token: str) -> str:
    return global_key("payload", token)


def receipts_owner(scope: str, platform_message_id: str) -> str:
    """How a message's receipts are named in the ``oldest`` index."""
    return json.dumps([scope, platform_message_id], ensure_ascii=False)


class RedisChannelBookkeeping(RedisPart, ChannelBookkeeping):
    async def payload_token(self, payload: str) -> str:
        token = "~" + hashlib.sha256(payload.encode()).hexdigest()[:20]
        key = payload_key(token)
        await self._calls.run("payload_token", lambda: self._redis.set(key, payload, nx=True))
        return token

    async def payload_for(self, token: str) -> str | None:
        key = payload_key(token)
        found = await self._calls.run("payload_for", lambda: self._redis.get(key))
        return None if found is None else text(found)

    async def set_reachable(self, conversation_id: str, reachable: bool, reason: str = "") -> None:
        key = conversation_key(conversation_id, UNREACHABLE)
        index = unreachable_index(shard_of(conversation_id))

        async def write() -> None:
            pipe = self._redis.pipeline(transaction=True)
            if reachable:
                pipe.delete(key)
                pipe.zrem(index, conversation_id)
            else:
                since = now_us()
                pipe.hset(key, mapping={"reason": reason, "since": since})
                pipe.zadd(index, {conversation_id: since})
            await pipe.execute()

        await self._calls.run("set_reachable", write)

    async def is_reachable(self, conversation_id: str) -> bool:
        key = conversation_key(conversation_id, UNREACHABLE)
        return not await self._calls.run("is_reachable", lambda: self._redis.exists(key))

    async def record_receipt(self, scope: str, platform_message_id: str, event: str) -> None:
        shard, key = receipts_key(scope, platform_message_id)
        index = oldest_key(shard, RECEIPTS)
        at = now_us()
        item = json.dumps({"event": event, "at": at}, ensure_ascii=False)
        owner = receipts_owner(scope, platform_message_id)

        async def write() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.rpush(key, item)
            pipe.zadd(index, {owner: at}, nx=True)
            await pipe.execute()

        await self._calls.run("record_receipt", write)

    async def receipts(self, scope: str, platform_message_id: str) -> list[str]:
        _, key = receipts_key(scope, platform_message_id)
        rows = await self._calls.run("receipts", lambda: self._redis.lrange(key, 0, -1))
        return [str(json.loads(r)["event"]) for r in rows]
