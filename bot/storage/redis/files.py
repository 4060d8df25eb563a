"""Files in Redis, shared by every gateway process (``REDIS_URL``): the invoice a turn on one
process made is sent by the outbox of another, and an operator on any machine opens a file a
customer uploaded to any other.

Key layout (all under the ``{files}`` hash tag, so the commit script runs in one Cluster slot):

- ``isp-bot:{files}:chunk:<id>:<n>``: the bytes, cut into strings of at most ``CHUNK_SIZE``.
- ``isp-bot:{files}:meta:<id>``: a hash: name, content_type, size, chunks, at (epoch seconds).
- ``isp-bot:{files}:index``: sorted set of the ids by when they were stored (retention walks it).

Ids are ``secrets.token_urlsafe(24)`` as in ``FilesystemFileStore``, checked against
``FILE_ID_RE`` before any key is built from one.

Written so a crash halfway never leaves a file ``get`` would serve half-written: the chunks are
written first, each with an expiry (``PENDING_TTL``), and one Lua script then checks that every
chunk is there, removes their expiry and writes the metadata and the index entry. ``get`` needs
the metadata, so a file whose writer died between chunks is never served, and its chunks expire
by themselves instead of waiting for retention. Deleting goes the other way: the metadata first.

Why chunks: Redis runs one command at a time, so one ``SET`` of 50 MB holds every other client
(every webhook, every turn of every process) for as long as it takes to copy 50 MB in and
allocate it; strings of 1 MB keep each command short. ``CHUNK_SIZE`` is 64 bytes short of 1 MiB
so a chunk with Redis's string header fits jemalloc's 1 MiB size class exactly: a chunk of a
full 1 MiB would take the next class, 1.25 MiB, wasting a quarter of the memory.

Memory (measured with ``INFO memory`` on Redis 7.0 over thousands of puts): a file costs its
size, plus about 530 bytes (metadata hash, index entry, chunk keys), plus the allocator's rounding
of its last chunk up to a jemalloc size class (at most a quarter of that chunk: a 60 KB invoice
takes 64.5 KB in all; each full chunk costs only ~170 bytes more than its 1 MiB). 10 000
invoices of 60 KB need about 650 MB: set ``maxmemory`` with room to spare, and
``BOT_RETENTION_DAYS`` so old files go. A file Redis has no room for is refused (503), nothing
else is evicted (``noeviction``, docs/deploy.md).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Set
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from redis.asyncio import Redis

from bot.models import FileRef
from bot.storage.files import FILE_ID_RE, FileStore, display_name
from bot.storage.health import StoreHealth
from bot.storage.redis.client import RedisCalls
from bot.storage.redis.keys import global_key

T = TypeVar("T")

AREA = "files"
MB = 1024 * 1024
# 1 MiB less room for Redis's string header: see the module docstring.
CHUNK_SIZE = MB - 64
# A guard against a caller's bug, above what any caller keeps: a customer's video from a
# messenger is at most 50 MB (bot/channels/inbound_files.py MEDIA_LIMIT), what operators send
# 20 MB, widget uploads 10 MB, invoices far less; a file just above a platform's 50 MB upload
# limit (sent as a link instead) must still fit.
MAX_FILE_SIZE = 64 * MB
# How long the chunks of a file being written live without their metadata: far longer than
# writing 50 MB takes, short enough that a crashed write does not hold memory for days.
PENDING_TTL_SECONDS = 3600
# Retention deletes in batches of this many ids: one short script per file, never one long one.
DELETE_BATCH = 100

# KEYS: meta, index, chunk 0 … chunk n-1.  ARGV: id, at, name, content_type, size.
_COMMIT = """
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    return 0
  end
end
for i = 3, #KEYS do
  redis.call('PERSIST', KEYS[i])
end
redis.call('HSET', KEYS[1], 'name', ARGV[3], 'content_type', ARGV[4], 'size', ARGV[5],
           'chunks', #KEYS - 2, 'at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: meta, index, chunk 0 … chunk n-1.  ARGV: id.  The metadata goes first, so ``get`` never
# serves a half-deleted file; UNLINK frees the chunks' memory off Redis's main thread.
_DELETE = """
redis.call('DEL', KEYS[1])
for i = 3, #KEYS do
  redis.call('UNLINK', KEYS[i])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisFileStore(FileStore):
    """``FileStore`` on a shared Redis client; failures are reported to ``health`` (the main
    store's, so a file that cannot be kept refuses the webhook or upload with 503 and the turn
    is retried, as when the store itself cannot write)."""

    def __init__(self, redis: Redis, health: StoreHealth) -> None:
        self._redis = redis
        self._calls = RedisCalls(health)
        self._commit = redis.register_script(_COMMIT)
        self._delete = redis.register_script(_DELETE)

    @staticmethod
    def _key(*parts: str) -> str:
        return global_key(AREA, *parts)

    def _chunk(self, file_id: str, n: int) -> str:
        return self._key("chunk", file_id, str(n))

    async def _run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        return await self._calls.run(f"files_{op}", call)

    async def put(self, data: bytes, name: str, content_type: str) -> FileRef:
        if len(data) > MAX_FILE_SIZE:
            raise ValueError(f"a file of {len(data)} bytes is above {MAX_FILE_SIZE} bytes")
        ref = FileRef(secrets.token_urlsafe(24), display_name(name), content_type, len(data))
        pieces = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)] or [b""]
        chunks = [self._chunk(ref.file_id, n) for n in range(len(pieces))]
        for key, piece in zip(chunks, pieces, strict=True):
            # One command per chunk (no MULTI around them, which would run as one long command).
            await self._run(
                "put",
                partial(self._redis.set, key, piece, ex=PENDING_TTL_SECONDS),
            )
        committed = await self._run(
            "put",
            lambda: self._commit(
                keys=[self._key("meta", ref.file_id), self._key("index"), *chunks],
                args=[ref.file_id, repr(time.time()), ref.name, ref.content_type, ref.size],
            ),
        )
        if committed != 1:  # a chunk expired or was deleted under us: nothing was kept
            raise RuntimeError("file chunks vanished before the file was committed")
        return ref

    async def get(self, file_id: str) -> tuple[FileRef, bytes] | None:
        if not FILE_ID_RE.fullmatch(file_id):  # never let a request build a key
            return None
        raw = await self._run("get", lambda: self._redis.hgetall(self._key("meta", file_id)))
        if not raw:
            return None
        meta = {_text(k): _text(v) for k, v in raw.items()}
        ref = FileRef(file_id, meta["name"], meta["content_type"], int(meta["size"]))

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for n in range(int(meta["chunks"])):
                    pipe.get(self._chunk(file_id, n))
                return list(await pipe.execute())

        pieces = await self._run("get", read)
        if any(piece is None for piece in pieces):
            return None  # deleted between the metadata and the bytes
        data = b"".join(pieces)
        return (ref, data) if len(data) == ref.size else None

    async def delete_older_than(
        self, cutoff: datetime, *, keep: Set[str] = frozenset(), dry_run: bool = False
    ) -> int:
        """By the time the commit script ran. Walks the index in batches; kept ids stay at the
        front of the range, so the next batch starts after them."""
        index = self._key("index")
        ceiling = f"({cutoff.timestamp()!r}"  # stored strictly before the cutoff
        deleted = 0
        skipped = 0
        while True:
            batch = await self._run(
                "delete_older_than",
                partial(
                    self._redis.zrangebyscore,
                    index,
                    "-inf",
                    ceiling,
                    start=skipped,
                    num=DELETE_BATCH,
                ),
            )
            if not batch:
                return deleted
            ids = [_text(found) for found in batch]
            going = [file_id for file_id in ids if file_id not in keep]
            skipped += len(ids) - len(going)
            deleted += len(going)
            if dry_run:
                skipped += len(going)
            elif going:
                await self._run("delete_older_than", partial(self._remove, going))
            if len(ids) < DELETE_BATCH:
                return deleted

    async def _remove(self, ids: list[str]) -> None:
        """One short script per file (its keys named, as Redis Cluster wants), pipelined. The
        number of chunks never changes once a file is committed, so reading it first is safe."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for file_id in ids:
                pipe.hget(self._key("meta", file_id), "chunks")
            counts = await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            for file_id, count in zip(ids, counts, strict=True):
                chunks = [self._chunk(file_id, n) for n in range(int(count or 0))]
                await self._delete(
                    keys=[self._key("meta", file_id), self._key("index"), *chunks],
                    args=[file_id],
                    client=pipe,
                )
            await pipe.execute()
