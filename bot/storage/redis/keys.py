"""Every Redis key the gateway's store uses, built in one place.

Keys are grouped by *shard*: a conversation belongs to one of ``SHARDS`` shards (CRC-32 of its
id), and every key of that conversation carries the shard's hash tag, ``{s07}``. Redis Cluster
puts all keys with one hash tag in one slot, so a turn's commit (the conversation, its
transcript, its outbox items, its inbox item, the shard's streams) is one Lua script or MULTI
even on a cluster. A tag per shard rather than per conversation keeps the streams that wake
workers (one per shard) in the same slot as the data they point at.

``SHARDS`` is part of the stored format: changing it moves conversations to other keys. Keys
that belong to no conversation (payload tokens, dedupe of deliveries that name none, the queue
index, leases) carry their own tags.
"""

from __future__ import annotations

import zlib

PREFIX = "isp-bot"
SHARDS = 16


def shard_of(conversation_id: str) -> int:
    return zlib.crc32(conversation_id.encode("utf-8")) % SHARDS


def tag(shard: int) -> str:
    return f"{{s{shard:02d}}}"


def shard_key(shard: int, *parts: str) -> str:
    """``isp-bot:{s07}:part:part``: a key in ``shard``'s slot."""
    return ":".join((PREFIX, tag(shard), *parts))


def conversation_key(conversation_id: str, kind: str) -> str:
    """``isp-bot:{s07}:<kind>:<conversation id>``: one of the conversation's keys."""
    return shard_key(shard_of(conversation_id), kind, conversation_id)


def global_key(area: str, *parts: str) -> str:
    """``isp-bot:{area}:…``: a key outside the conversation shards, tagged by its area so a
    script touching several keys of one area stays in one slot."""
    return ":".join((PREFIX, f"{{{area}}}", *parts))


def numbered(shard: int, seq: int) -> int:
    """An id unique across the store, increasing within a shard (each shard counts on its
    own, so numbering never needs a key outside the shard's slot)."""
    return seq * SHARDS + shard


def shard_of_id(item_id: int) -> int:
    """The shard an id from ``numbered`` was made in."""
    return item_id % SHARDS
