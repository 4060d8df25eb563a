"""What the Redis store's parts share: the client, the health report, times and key names.

Times are stored as integer microseconds since the epoch (UTC), in hash fields and as sorted
set scores alike: exact both ways (a double holds every microsecond until the year 2255), half
the size of an ISO string, and directly comparable in Lua. They come back as aware UTC
datetimes, as the SQLite store returns them.

Scripts touch keys they find in the data (the old state's index, an item's per-conversation
set): every one of them carries the hash tag of the keys the script was given, so it lives in
the same Redis Cluster slot; those key names are built here (from ``keys.py``) and stored or
passed as arguments, never spelled out in Lua.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from bot.storage.health import StoreHealth
from bot.storage.redis.client import RedisCalls
from bot.storage.redis.keys import SHARDS, conversation_key, shard_key, shard_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
DAY_US = 86_400 * 1_000_000


def to_us(at: datetime) -> int:
    return (at - EPOCH) // MICROSECOND


def from_us(value: int | bytes | str) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def now_us() -> int:
    return to_us(datetime.now(UTC))


# What scripts take as arguments.
ScriptArg = str | int | float


def text(value: Any) -> str:
    """A reply of the client (bytes: ``connect`` does not decode) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def fields(raw: Any) -> dict[str, str]:
    """HGETALL's reply (or a stream entry's fields) with str keys and values."""
    return {text(k): text(v) for k, v in (raw or {}).items()}


def merged(ids_per_shard: Iterable[Iterable[Any]], limit: int | None = None) -> list[int]:
    """Ids read from several shards' sorted sets, in id order, at most ``limit``."""
    ids = sorted(int(text(i)) for shard_ids in ids_per_shard for i in shard_ids)
    return ids if limit is None else ids[:limit]


# --- key names ------------------------------------------------------------------------------------
# Per conversation (in its shard): CONV hash, MSGS stream, LINK hash, QUEUE hash, NOTES list,
# CSAT list, UNREACHABLE hash, INBOX_OF / OUTBOX_OF sorted sets of its pending item ids.
CONV, MSGS, LINK, QUEUE, NOTES, CSAT, UNREACHABLE = (
    "conv", "msgs", "link", "queue", "notes", "csat", "unreachable",
)  # fmt: skip
INBOX_OF = "inbox"


def outbox_of(conversation_id: str, priority: int) -> str:
    return conversation_key(conversation_id, f"outbox{priority}")


# Per shard: the counter ids come from, item hashes and the indexes of cross-conversation reads.
def seq_key(shard: int) -> str:
    return shard_key(shard, "seq")


def inbox_item(shard: int, item_id: int | str) -> str:
    return shard_key(shard, "in-item", str(item_id))


def outbox_item(shard: int, item_id: int | str) -> str:
    return shard_key(shard, "out-item", str(item_id))


def seen_key(shard: int, scope: str, platform_id: str) -> str:
    """Dedupe of the inbox: in the conversation's shard, so recording an inbound and its
    dedupe key is one script (a redelivery always names the same conversation)."""
    return shard_key(shard, "seen", scope, platform_id)


def inbox_pending_key(shard: int) -> str:
    return shard_key(shard, "in-pending")


def inbox_done_key(shard: int) -> str:
    return shard_key(shard, "in-done")


def inbox_failed_key(shard: int) -> str:
    return shard_key(shard, "in-failed")


def lane_key(shard: int, priority: int) -> str:
    return shard_key(shard, f"lane{priority}")


def outbox_finished_key(shard: int) -> str:
    return shard_key(shard, "out-finished")


def state_prefix(shard: int) -> str:
    """``…{s07}:by-state:`` + a state: conversations in that state by last activity."""
    return shard_key(shard, "by-state", "")


def contract_prefix(shard: int) -> str:
    """``…{s07}:by-contract:`` + a contract number: conversations linked to it."""
    return shard_key(shard, "by-contract", "")


def links_key(shard: int) -> str:
    return shard_key(shard, "links")


def unreachable_index(shard: int) -> str:
    return shard_key(shard, "unreachable-idx")


def oldest_key(shard: int, kind: str) -> str:
    """Owners (conversations, receipts) with items of ``kind`` by the time of their oldest
    item: what retention trims, found without scanning every key."""
    return shard_key(shard, "oldest", kind)


def files_key(shard: int) -> str:
    """File ids named by transcript lines, by the newest line naming them (retention)."""
    return shard_key(shard, "files")


def queue_index(shard: int) -> str:
    return shard_key(shard, "queue-idx")


def once_key(scope: str, platform_id: str) -> tuple[int, str]:
    """``remember_once``: spread over the shards' slots by the id itself."""
    shard = shard_of(f"{scope}:{platform_id}")
    return shard, shard_key(shard, "once", scope, platform_id)


def once_index(shard: int) -> str:
    """``remember_once`` keys of the shard by when they were set (retention deletes them)."""
    return shard_key(shard, "once-idx")


def receipts_key(scope: str, platform_message_id: str) -> tuple[int, str]:
    shard = shard_of(f"{scope}:{platform_message_id}")
    return shard, shard_key(shard, "receipts", scope, platform_message_id)


ALL_SHARDS = range(SHARDS)


class RedisPart:
    """The base of every part of ``RedisStore``: one client (shared with the rest of the
    gateway, never closed here), one health report, and every call through ``_calls``."""

    health: StoreHealth

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.health = StoreHealth()
        self._calls = RedisCalls(self.health)
        self._scripts: dict[str, AsyncScript] = {}

    def _script(self, source: str) -> AsyncScript:
        """The script, registered once (EVALSHA, loaded again by redis-py after a restart)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis.register_script(source)
        return script
