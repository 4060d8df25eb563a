"""Work across processes: Redis Streams wake whichever process is free to drain a conversation.

The durable truth is the store (the inbox and outbox rows); a stream entry only says "this
conversation has work" (its one field, ``c``, is the conversation id). So an entry can be read
twice, trimmed or lost without losing a message, as long as *some* process drains the
conversation after the work was recorded. That is what this module guarantees.

Keys and groups. Each shard (bot/storage/redis/keys.py) has one stream per kind of work,
``isp-bot:{s07}:stream:inbox`` and ``…:stream:outbox``, so an entry lives in the slot of the
conversation it names. One consumer group, ``workers``, per stream; every process is a consumer
named ``host:pid:random``. ``announce`` is ``XADD … MAXLEN ~ 100000``: bounded, and an entry
trimmed before it was read is covered by the sweep below.

Reading. Each process ``XREADGROUP``s every shard's stream of a kind in one call (``BLOCK`` 1 s;
on Redis Cluster this would need one call per slot) and hands each entry to a local worker for
its conversation, started if there is none (at most ``max_workers`` at once: a full process
stops reading and leaves the entries to the others). The worker takes the conversation's lease
(bot/storage/redis/locks.py: ``ingress`` or ``send``), drains the conversation (the inbox or the
outbox rows, oldest first, until none is left) and only then ``XACK``s the entries it had seen
before the drain began; entries that came during the drain make it drain once more. So:

- no arrival is lost to a release: the work behind an entry was recorded before the ``XADD``,
  hence before the read, hence before the drain that acknowledges it;
- the entries of a process that dies stay in its pending list (PEL). ``XAUTOCLAIM`` (every
  ``ttl / 2``, entries idle longer than the lease ``ttl``) gives them to a live process, whose
  worker waits for the dead holder's lease to expire and drains the conversation. A live
  process's slow entry may be claimed too: the thief's worker waits for the lease and finds
  nothing left, a wasted round trip, never a second answer (the lease and the store decide).

The sweep. Work recorded whose ``XADD`` never happened (the process died between the two, Redis
failed the ``XADD``, the entry was trimmed) is found by a sweep every ``2 × ttl`` (and once at
start): every conversation the store says has pending work and whose lease nobody holds gets a
local worker. A sweep that races a fresh entry only costs an empty drain.

Shutdown (bot/shutdown.py). ``settled`` waits until no local worker is busy and every
conversation with pending work at the moment it was first asked is done or in another live
process's hands (its lease is held); the reader goes on reading meanwhile, so a process that is
alone still answers what it accepted. ``close`` cancels what is left: the leases are released
(compare-and-delete), each unfinished conversation is announced afresh and its old entries
acknowledged, so another process takes it at once instead of after ``XAUTOCLAIM``'s idle time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.metrics import Metrics
from bot.periodic import Periodic
from bot.storage.health import StoreUnavailable
from bot.storage.redis.keys import SHARDS, shard_key, shard_of
from bot.storage.redis.locks import DEFAULT_TTL, ConversationLeases

log = logging.getLogger(__name__)

GROUP = "workers"
STREAM_MAXLEN = 100_000  # per shard and kind: far more than can wait; trimmed ones are swept
READ_COUNT = 100
BLOCK_MS = 1000
# Conversations one process drains (or waits to drain) at once, per stream. Each may have a
# command in flight, and they share the process's one Redis pool with the webhooks (redis-py's
# default pool refuses beyond 100 connections): kept well below that.
MAX_WORKERS = 32
# After a failed drain or lease: soon for a blip, then every 5 s.
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
FIELD = b"c"


def register_metrics(metrics: Metrics) -> None:
    metrics.counter(
        "work_claimed_total",
        "Stream entries taken over from another (dead or slow) process, by stream.",
    )
    metrics.counter(
        "work_swept_total",
        "Conversations with pending work no process held, found by the sweep, by stream.",
    )


def stream_key(kind: str, shard: int) -> str:
    return shard_key(shard, "stream", kind)


def consumer_name() -> str:
    """Unique per process start: a restarted process does not inherit a dead one's PEL (the
    claim takes it over after the idle time, as for any dead consumer)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class WorkConfig:
    """What one process needs to share work on a Redis: the client and the timings. Tests make
    one per simulated process (each with its own client)."""

    redis: Redis
    lease_ttl: float = DEFAULT_TTL  # BOT_CONVERSATION_LEASE_TTL
    consumer: str = field(default_factory=consumer_name)
    max_workers: int = MAX_WORKERS
    metrics: Metrics | None = None

    @property
    def claim_idle(self) -> float:
        """Entries idle this long are taken over: a dead holder's lease has expired by then."""
        return self.lease_ttl

    @property
    def sweep_every(self) -> float:
        return 2 * self.lease_ttl


@dataclass
class _Worker:
    entries: list[tuple[str, str]] = field(default_factory=list)  # (stream key, entry id)
    draining: list[tuple[str, str]] = field(default_factory=list)  # seen before this drain
    again: bool = True
    task: asyncio.Task[None] | None = None


class WorkStream:
    """One kind of work (``inbox``, ``outbox``) across processes. ``drain(conversation_id)``
    is called with the conversation's lease held and must leave no work of it pending;
    ``pending()`` lists the conversations with pending work (the sweep)."""

    def __init__(
        self,
        config: WorkConfig,
        kind: str,
        *,
        lease: str,
        drain: Callable[[str], Awaitable[None]],
        pending: Callable[[], Awaitable[Iterable[str]]],
    ) -> None:
        self.kind = kind
        self._config = config
        self._redis = config.redis
        self._drain = drain
        self._pending = pending
        self._metrics = config.metrics
        if self._metrics is not None:
            register_metrics(self._metrics)
        self.leases = ConversationLeases(
            config.redis, lease, ttl=config.lease_ttl, metrics=config.metrics
        )
        self._keys = [stream_key(kind, shard) for shard in range(SHARDS)]
        self._workers: dict[str, _Worker] = {}
        self._room = asyncio.Event()
        self._room.set()
        self._background: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._claimer = Periodic(
            f"{kind}-claim",
            self._claim,
            every=config.claim_idle / 2,
            failure=f"{kind} stream: taking over idle entries failed",
        )
        self._sweeper = Periodic(
            f"{kind}-sweep",
            self.sweep,
            every=config.sweep_every,
            failure=f"{kind} stream: the sweep failed",
        )
        self._settling: set[str] | None = None

    # --- producing -------------------------------------------------------------------------
    async def announce(self, conversation_id: str) -> None:
        """Wake some process for this conversation's work (already recorded in the store). If
        Redis refuses, a local worker takes it (it waits for Redis like any other)."""
        key = stream_key(self.kind, shard_of(conversation_id))
        try:
            await self._redis.xadd(
                key, {FIELD: conversation_id}, maxlen=STREAM_MAXLEN, approximate=True
            )
        except (RedisError, OSError) as exc:
            log.warning("%s stream: announce failed (%s); drained here", self.kind, exc)
            self.wake(conversation_id)

    def announce_soon(self, conversation_id: str) -> None:
        """``announce`` from synchronous code."""
        self._spawn(self.announce(conversation_id))

    def wake(self, conversation_id: str) -> None:
        """Drain the conversation in this process (no stream entry: the sweep, a local scan)."""
        self._feed(conversation_id, None)

    async def wake_unheld(self, conversation_ids: Iterable[str]) -> int:
        """``wake`` each conversation nobody works on now (neither here nor elsewhere)."""
        ids = [c for c in dict.fromkeys(conversation_ids) if c not in self._workers]
        held = await self.leases.held(ids)
        woken = [c for c in ids if not held[c] and c not in self._workers]
        for conversation_id in woken:
            self.wake(conversation_id)
        return len(woken)

    # --- consuming -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._ensure_groups()
        await self.sweep()  # what a previous run (of any process) left unannounced
        self._reader = asyncio.create_task(self._read_forever(), name=f"{self.kind}-stream")
        self._claimer.start()
        self._sweeper.start()

    async def _ensure_groups(self) -> None:
        for key in self._keys:
            try:
                await self._redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def sweep(self) -> None:
        woken = await self.wake_unheld(await self._pending())
        if woken and self._metrics is not None:
            self._metrics.inc("work_swept_total", woken, stream=self.kind)

    @property
    def busy(self) -> int:
        """Conversations this process is draining (or waiting to drain)."""
        return len(self._workers)

    async def _read_forever(self) -> None:
        failures = 0
        streams: dict[Any, Any] = {key: ">" for key in self._keys}
        while True:
            await self._room.wait()
            try:
                answer = await self._redis.xreadgroup(
                    GROUP,
                    self._config.consumer,
                    streams,
                    count=READ_COUNT,
                    block=BLOCK_MS,
                )
                failures = 0
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted (FLUSHALL): make it again
                    with contextlib.suppress(RedisError, OSError):
                        await self._ensure_groups()
                    continue
                raise
            except (RedisError, OSError) as exc:
                if failures == 0:
                    log.warning("%s stream: reading failed (%s)", self.kind, type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                continue
            for key, entries in _stream_entries(answer):
                for entry_id, fields in entries:
                    self._take(key, entry_id, fields)

    def _take(self, key: Any, entry_id: Any, fields: Any) -> None:
        key_s, entry_s = _text(key), _text(entry_id)
        value = (fields or {}).get(FIELD)
        if value is None:  # trimmed (XAUTOCLAIM) or not ours: nothing to drain
            self._spawn(self._ack([(key_s, entry_s)]))
            return
        self._feed(_text(value), (key_s, entry_s))

    async def _claim(self) -> None:
        idle_ms = int(self._config.claim_idle * 1000)
        for key in self._keys:
            start = "0-0"
            while True:
                answer = await self._redis.xautoclaim(
                    key, GROUP, self._config.consumer, idle_ms, start_id=start, count=READ_COUNT
                )
                start, claimed = _text(answer[0]), answer[1]
                for entry_id, fields in claimed:
                    if self._metrics is not None:
                        self._metrics.inc("work_claimed_total", stream=self.kind)
                    self._take(key, entry_id, fields)
                if start == "0-0":
                    break

    def _feed(self, conversation_id: str, entry: tuple[str, str] | None) -> None:
        worker = self._workers.get(conversation_id)
        if worker is None:
            worker = self._workers[conversation_id] = _Worker()
            worker.task = asyncio.create_task(
                self._work(conversation_id, worker), name=f"{self.kind}-worker"
            )
            if len(self._workers) >= self._config.max_workers:
                self._room.clear()
        if entry is not None:
            worker.entries.append(entry)
        worker.again = True

    async def _work(self, conversation_id: str, worker: _Worker) -> None:
        try:
            while worker.again:
                worker.again = False
                worker.draining, worker.entries = worker.entries, []
                await self._drain_held(conversation_id)
                seen, worker.draining = worker.draining, []
                await self._ack(seen)
        except Exception:  # a bug: its entries stay pending and are claimed again later
            log.exception("%s stream: draining a conversation failed", self.kind)
        finally:
            if self._workers.get(conversation_id) is worker:
                del self._workers[conversation_id]
            if len(self._workers) < self._config.max_workers:
                self._room.set()

    async def _drain_held(self, conversation_id: str) -> None:
        failures = 0
        while True:
            try:
                async with self.leases.hold(conversation_id):
                    await self._drain(conversation_id)
                return
            except StoreUnavailable:  # Redis or the store down, or the lease lost: again later
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1

    async def _ack(self, entries: list[tuple[str, str]]) -> None:
        by_key: dict[str, list[str]] = {}
        for key, entry_id in entries:
            by_key.setdefault(key, []).append(entry_id)
        for key, ids in by_key.items():
            try:
                await self._redis.xack(key, GROUP, *ids)
            except (RedisError, OSError) as exc:  # claimed again later: one empty drain
                log.warning("%s stream: ack failed (%s)", self.kind, type(exc).__name__)

    # --- stopping --------------------------------------------------------------------------
    async def settled(self) -> None:
        """Wait until this process has nothing left to do of what was pending when first
        asked (see the module docstring); callers bound it with ``asyncio.timeout``."""
        if self._settling is None:
            self._settling = set(await self._pending())
        while True:
            if not self._workers:
                still = set(await self._pending()) & self._settling
                held = await self.leases.held(still)
                self._settling = {c for c in still if not held[c]}
                if not self._settling:
                    return
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self._claimer.close()
        await self._sweeper.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        workers = list(self._workers.items())
        for _, worker in workers:
            if worker.task is not None:
                worker.task.cancel()
        for _, worker in workers:
            if worker.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
        for task in list(self._background):
            task.cancel()
        # Hand the unfinished conversations over now rather than after the claim's idle time.
        for conversation_id, worker in workers:
            try:
                key = stream_key(self.kind, shard_of(conversation_id))
                await self._redis.xadd(
                    key, {FIELD: conversation_id}, maxlen=STREAM_MAXLEN, approximate=True
                )
            except (RedisError, OSError):
                continue  # the entries stay pending: claimed after the idle time
            await self._ack([*worker.draining, *worker.entries])
        self._workers.clear()

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_entries(answer: Any) -> list[tuple[Any, list[tuple[Any, Any]]]]:
    """XREADGROUP's answer as (stream, entries) pairs, from RESP2 (a list) or RESP3 (a map)."""
    if not answer:
        return []
    if isinstance(answer, dict):
        return [(key, value[0] if value and isinstance(value[0], list) else value)
                for key, value in answer.items()]  # fmt: skip
    return [(key, entries) for key, entries in answer]
