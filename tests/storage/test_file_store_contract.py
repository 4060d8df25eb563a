"""The file store's contract, once per backend: the filesystem under ``var/files`` (the embedded
default) and Redis (``REDIS_URL``: bot/storage/redis/files.py), on a real Redis server.

Each backend has a ``Backend`` that opens stores on the test's data (two opened stores reach the
same files, as two gateway processes do) and can do what only a test does: make a file look
old, and leave the bytes of a write that a crash interrupted."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.storage.files import FileStore, FilesystemFileStore
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.redis.client import connect
from bot.storage.redis.files import CHUNK_SIZE, MAX_FILE_SIZE, RedisFileStore
from bot.storage.redis.keys import global_key
from tests.redis_server import RedisServer

PDF = b"%PDF-1.4 invoice for May"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DAY = timedelta(days=1)


class Backend:
    def __init__(self) -> None:
        self.clients: list[Redis] = []

    def open(self) -> FileStore:
        raise NotImplementedError

    async def age(self, file_id: str, days: float) -> None:
        """Make the file look stored ``days`` ago."""
        raise NotImplementedError

    async def crash_midway(self, file_id: str, data: bytes) -> None:
        """What a write of ``data`` under ``file_id`` leaves when the process dies before the
        metadata: the bytes only."""
        raise NotImplementedError

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


class Filesystem(Backend):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def open(self) -> FileStore:
        return FilesystemFileStore(self.folder)

    async def age(self, file_id: str, days: float) -> None:
        then = time.time() - days * 86400
        for suffix in (".bin", ".json"):
            os.utime(self.folder / f"{file_id}{suffix}", (then, then))

    async def crash_midway(self, file_id: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{file_id}.bin").write_bytes(data)


class InRedis(Backend):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.health = StoreHealth()
        self.admin = self._client()

    def _client(self) -> Redis:
        client = connect(self.url)
        self.clients.append(client)
        return client

    def open(self) -> FileStore:
        return RedisFileStore(self._client(), self.health)

    async def age(self, file_id: str, days: float) -> None:
        # The index's score is when the file was stored (retention walks the index).
        await self.admin.zadd(global_key("files", "index"), {file_id: time.time() - days * 86400})

    async def crash_midway(self, file_id: str, data: bytes) -> None:
        # Chunks written as put writes them, then the process died before the commit script.
        for n, at in enumerate(range(0, len(data), CHUNK_SIZE)):
            key = global_key("files", "chunk", file_id, str(n))
            await self.admin.set(key, data[at : at + CHUNK_SIZE], ex=3600)


@pytest.fixture(params=["filesystem", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened: Backend
    if request.param == "filesystem":
        opened = Filesystem(tmp_path / "files")
    else:
        opened = InRedis(request.getfixturevalue("redis_url"))
    yield opened
    await opened.close()


@pytest.fixture
def files(backend: Backend) -> FileStore:
    return backend.open()


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_file_comes_back_as_it_was_put_also_through_another_store(
    backend: Backend, files: FileStore
) -> None:
    ref = await files.put(PDF, "invoice-2024-05.pdf", "application/pdf")
    assert (ref.name, ref.content_type, ref.size) == ("invoice-2024-05.pdf", "application/pdf", 24)
    assert await files.get(ref.file_id) == (ref, PDF)
    # Another process (another store on the same data) serves the same file.
    assert await backend.open().get(ref.file_id) == (ref, PDF)


async def test_ids_are_random_url_safe_and_32_characters(files: FileStore) -> None:
    first = await files.put(PDF, "a.pdf", "application/pdf")
    second = await files.put(PDF, "a.pdf", "application/pdf")
    assert first.file_id != second.file_id
    for ref in (first, second):
        assert len(ref.file_id) == 32
        assert ref.file_id.replace("-", "").replace("_", "").isalnum()


async def test_an_empty_file_round_trips(files: FileStore) -> None:
    ref = await files.put(b"", "empty.txt", "text/plain")
    assert await files.get(ref.file_id) == (ref, b"")


async def test_unknown_and_malformed_ids_are_none(files: FileStore) -> None:
    ref = await files.put(PDF, "a.pdf", "application/pdf")
    assert await files.get(secrets.token_urlsafe(24)) is None
    for bad in ("", "x", "../" + ref.file_id, ref.file_id + "x", ref.file_id[:-1] + "*",
                ref.file_id + "\n", "*" * 32, "a:b" + ref.file_id[3:]):  # fmt: skip
        assert await files.get(bad) is None, bad


async def test_names_are_cleaned_for_people_and_headers(files: FileStore) -> None:
    ref = await files.put(PDF, '../../etc/Счёт\n "за май".pdf', "application/pdf")
    assert ref.name == "Счёт за май.pdf"  # no path, no control characters, no quotes
    found = await files.get(ref.file_id)
    assert found is not None
    assert found[0].name == "Счёт за май.pdf"
    assert (await files.put(PDF, "C:\\Users\\me\\", "application/pdf")).name == "file"
    assert len((await files.put(PDF, "ы" * 500, "application/pdf")).name) == 200


async def test_a_large_file_is_kept_whole(backend: Backend, files: FileStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 512 * 1024)  # 3.5 MB: four chunks in Redis
    ref = await files.put(data, "scan.pdf", "application/pdf")
    assert ref.size == len(data)
    found = await backend.open().get(ref.file_id)
    assert found is not None
    assert found[1] == data


async def test_a_write_a_crash_interrupted_is_never_served(
    backend: Backend, files: FileStore
) -> None:
    file_id = secrets.token_urlsafe(24)
    await backend.crash_midway(file_id, os.urandom(2 * 1024 * 1024 + 10))
    assert await files.get(file_id) is None
    assert await backend.open().get(file_id) is None


async def test_delete_older_than_deletes_old_files_not_kept_ones_nor_new_ones(
    backend: Backend, files: FileStore
) -> None:
    old = await files.put(PDF, "old.pdf", "application/pdf")
    named = await files.put(PNG, "photo.png", "image/png")  # still named by an open request
    new = await files.put(PDF, "new.pdf", "application/pdf")
    for ref in (old, named):
        await backend.age(ref.file_id, days=40)
    cutoff = now() - 30 * DAY

    assert await files.delete_older_than(cutoff, keep={named.file_id}, dry_run=True) == 1
    assert await files.get(old.file_id) == (old, PDF)  # a dry run only counts

    assert await files.delete_older_than(cutoff, keep={named.file_id}) == 1
    assert await files.get(old.file_id) is None
    assert await backend.open().get(old.file_id) is None
    assert await files.get(named.file_id) == (named, PNG)
    assert await files.get(new.file_id) == (new, PDF)
    assert await files.delete_older_than(cutoff, keep={named.file_id}) == 0


async def test_delete_older_than_goes_through_many_files_in_batches(
    backend: Backend, files: FileStore
) -> None:
    refs = [await files.put(b"%d" % n, f"{n}.txt", "text/plain") for n in range(250)]
    for ref in refs:
        await backend.age(ref.file_id, days=40)
    keep = {ref.file_id for ref in refs[::7]}  # scattered through every batch
    cutoff = now() - 30 * DAY

    assert await files.delete_older_than(cutoff, keep=keep, dry_run=True) == 250 - len(keep)
    assert await files.delete_older_than(cutoff, keep=keep) == 250 - len(keep)
    for n, ref in enumerate(refs):
        expected = (ref, b"%d" % n) if ref.file_id in keep else None
        assert await files.get(ref.file_id) == expected


# --- Redis only -------------------------------------------------------------------------------


async def test_redis_keeps_a_large_file_in_chunks_of_at_most_one_megabyte(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        store = RedisFileStore(client, StoreHealth())
        data = os.urandom(3 * 1024 * 1024 + 512 * 1024)
        ref = await store.put(data, "scan.pdf", "application/pdf")
        chunks = sorted(
            [key async for key in client.scan_iter(match=global_key("files", "chunk", "*"))]
        )
        assert len(chunks) == 4
        for key in chunks:
            assert await client.strlen(key) <= 1024 * 1024
            assert await client.ttl(key) == -1  # committed: no expiry left
        assert await store.get(ref.file_id) == (ref, data)
        with pytest.raises(ValueError, match="above"):
            await store.put(b"x" * (MAX_FILE_SIZE + 1), "huge.bin", "application/octet-stream")
    finally:
        await client.aclose()


async def test_a_file_redis_cannot_take_is_refused_and_its_chunks_expire(
    own_redis: RedisServer,
) -> None:
    """Redis full halfway through a file: the put fails as the store being unavailable (the
    webhook or upload answers 503, the turn is retried), the health says so, nothing is
    served, and the chunks already written expire instead of holding memory."""
    client = connect(own_redis.url)
    health = StoreHealth()
    store = RedisFileStore(client, health)
    try:
        kept = await store.put(PDF, "before.pdf", "application/pdf")
        used = int((await client.info("memory"))["used_memory"])
        # Room for a chunk or two of the four (noeviction: writes are refused with OOM).
        await client.config_set("maxmemory", str(used + 2560 * 1024))
        await client.config_set("maxmemory-policy", "noeviction")
        with pytest.raises(StoreUnavailable):
            await store.put(os.urandom(3 * 1024 * 1024), "scan.pdf", "application/pdf")
        assert health.failing
        await client.config_set("maxmemory", "0")
        metas = [key async for key in client.scan_iter(match=global_key("files", "meta", "*"))]
        assert len(metas) == 1  # only the file stored before
        chunks = [key async for key in client.scan_iter(match=global_key("files", "chunk", "*"))]
        ttls = sorted([await client.ttl(key) for key in chunks])
        assert ttls[0] == -1  # the committed file's chunk
        pending = ttls[1:]  # the interrupted write's chunks: some, never all four
        assert 1 <= len(pending) < 4, ttls
        assert all(0 < ttl <= 3600 for ttl in pending), ttls
        assert await store.get(kept.file_id) == (kept, PDF)
        after = await store.put(PDF, "after.pdf", "application/pdf")
        assert not health.failing  # the next put that works clears it
        assert await store.get(after.file_id) == (after, PDF)
    finally:
        await client.aclose()


async def test_redis_down_is_reported_as_the_store_unavailable(own_redis: RedisServer) -> None:
    client = connect(own_redis.url)
    health = StoreHealth()
    store = RedisFileStore(client, health)
    try:
        ref = await store.put(PDF, "a.pdf", "application/pdf")
        own_redis.stop()
        with pytest.raises(StoreUnavailable):
            await store.get(ref.file_id)
        with pytest.raises(StoreUnavailable):
            await store.put(PDF, "b.pdf", "application/pdf")
        assert health.failing
    finally:
        await client.aclose()
