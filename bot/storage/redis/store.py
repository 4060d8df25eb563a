"""``RedisStore``: the gateway's whole ``Store`` on one Redis (REDIS_URL), shared by every
gateway process. One mixin per interface (conversations.py, delivery.py, handoff_queue.py,
channel_bookkeeping.py, records.py, retention.py); each keeps its key layout in its docstring.

Every call goes through ``RedisCalls``: Redis down, out of memory or read-only raises
``StoreUnavailable`` and is reported to ``health``, as a full disk is on SQLite. The client is
the one ``bot/services.py`` shares with every Redis-backed part: ``close`` leaves it open.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.storage.base import Store
from bot.storage.redis.channel_bookkeeping import RedisChannelBookkeeping
from bot.storage.redis.common import RedisPart
from bot.storage.redis.conversations import RedisConversations
from bot.storage.redis.delivery import RedisDelivery
from bot.storage.redis.handoff_queue import RedisHandoffQueue
from bot.storage.redis.records import RedisRecords
from bot.storage.redis.retention import RedisRetention


class RedisStore(
    RedisConversations,
    RedisDelivery,
    RedisHandoffQueue,
    RedisChannelBookkeeping,
    RedisRecords,
    RedisRetention,
    Store,
):
    def __init__(self, redis: Redis) -> None:
        RedisPart.__init__(self, redis)

    async def ping(self) -> bool:
        return bool(await self._calls.run("ping", lambda: self._redis.ping()))

    async def close(self) -> None:
        """Nothing of its own to release: the shared client is closed by its owner."""
