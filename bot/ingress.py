"""One durable ingress for every messenger channel.

A webhook records the inbound (with its platform id) before answering 200 and hands it here;
processing runs in the background, strictly in order per conversation and in parallel across
conversations. A redelivery (same platform id) is acknowledged and ignored. Inbounds recorded
but not answered when the process stopped are picked up again at start.

A channel may register a preparer: work on an inbound that must not delay the webhook's answer
(fetching the customer's files from the platform: bot/channels/inbound_files.py). It runs here,
in the background and in the conversation's order, just before the dialog sees the message.

Every inbound passes the untrusted-input boundary here, before anything is stored: its text is
cleaned and capped at the channel's limit (bot/untrusted.py), and the platform's raw JSON kept
with it is held to the same rules (no lone surrogate reaches SQLite, no megabyte string is kept).
Authentic deliveries a channel could not use are counted here too (``refused``).

A store that cannot be written (``StoreUnavailable``: disk full, locked) is not the inbound's
fault: ``accept`` raises it (the webhook answers 503 and the platform delivers again), and a
turn that cannot be committed is retried in place, with a backoff, for as long as the store
fails, never given up: the message was acknowledged and must be answered.

Several processes on one Redis (``work``: REDIS_URL with a shared store). ``accept`` records the
inbound and announces its conversation on the inbox stream (bot/storage/redis/streams.py);
whichever process reads the entry drains the conversation under its ``ingress`` lease
(bot/storage/redis/locks.py): every pending inbound of it, in id order, until none is left, each
through the same ``_process`` as the embedded path. So a conversation is answered in one process
at a time and in order; a process killed mid-turn leaves its entries unacknowledged and its
lease to expire, and another process drains the conversation: the dead turn was not committed
(its inbound is still pending) or was (it is done, and not answered again).
Without ``work`` (embedded, one process) the queues are in memory as before.

Shutting down (SIGTERM, bot/shutdown.py) the ingress drains: ``accept`` refuses with
``Draining`` (the webhook answers 503 and the platform delivers again, to another process or
after the restart), while the inbounds already accepted are still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from bot.gateway import Gateway
from bot.metrics import Metrics
from bot.models import Inbound
from bot.outbox import Outbox
from bot.periodic import Periodic
from bot.shutdown import Draining
from bot.storage.base import Store
from bot.storage.health import StoreUnavailable
from bot.storage.redis.streams import WorkConfig, WorkStream
from bot.untrusted import DEFAULT_TEXT_LIMIT, MAX_JSON_DEPTH, clean_inbound, clean_text

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Long enough for any platform's redelivery window (Telegram retries for about a day), short
# enough that a reused id (Telegram after a quiet week) is not taken for a redelivery.
KEEP_DELIVERY_IDS_DAYS = 3.0
RETRY_SECONDS = (0.5, 2.0, 5.0, 15.0)
# While the store fails: soon for a short lock, then every 5 s (no attempt is counted).
STORE_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)

Preparer = Callable[[Inbound], Awaitable[Inbound]]

# The platform JSON kept with an inbound is for people to inspect: strings in it are cut at twice
# the longest message any platform allows, a level deeper than any platform nests is dropped.
RAW_STRING_LIMIT = 2 * 7000
RAW_MAX_DEPTH = MAX_JSON_DEPTH


def storable_raw(value: Any, depth: int = 0) -> Any:
    """``value`` (parsed platform JSON) with every string, key included, cleaned and capped.
    Depth-bounded recursion: the value came through ``untrusted.loads`` or a platform SDK."""
    if isinstance(value, str):
        return clean_text(value, RAW_STRING_LIMIT)
    if depth >= RAW_MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {
            clean_text(str(k), DEFAULT_TEXT_LIMIT): storable_raw(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [storable_raw(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value), RAW_STRING_LIMIT)


def register_metrics(metrics: Metrics) -> None:
    metrics.counter("inbound_duplicates_total", "Redelivered platform updates ignored.")
    metrics.counter("inbound_failed_total", "Inbounds that could not be processed.")
    metrics.counter(
        "inbound_refused_total",
        "Deliveries not taken as a customer message, by channel and reason (authentic but "
        "unusable ones are acknowledged and kept for inspection).",
    )


class Ingress:
    def __init__(
        self,
        *,
        store: Store,
        gateway: Gateway,
        outbox: Outbox,
        metrics: Metrics,
        work: WorkConfig | None = None,
    ) -> None:
        """``work``: share the inbox with other processes on that Redis (the store must be
        shared too); None: one process, queues in memory."""
        self._store = store
        self._gateway = gateway
        self._outbox = outbox
        self._metrics = metrics
        self._queues: dict[str, deque[tuple[int, Inbound, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._preparers: dict[str, Preparer] = {}
        self._draining = False
        self._janitor = Periodic(
            "ingress-janitor",
            self._forget_old,
            every=3600.0,
            failure="ingress: forgetting old delivery ids failed",
        )
        self._stream = (
            None
            if work is None
            else WorkStream(
                work,
                "inbox",
                lease="ingress",
                drain=self._drain_conversation,
                pending=self._pending_conversations,
            )
        )

    @property
    def draining(self) -> bool:
        """True from SIGTERM on: no new inbound is taken."""
        return self._draining

    def stop_taking(self) -> None:
        """Refuse every new inbound from now on; those already accepted are still answered."""
        self._draining = True

    def add_preparer(self, channel: str, prepare: Preparer) -> None:
        """``prepare`` runs on each of ``channel``'s inbounds before the dialog sees it."""
        self._preparers[channel] = prepare

    def refused(self, channel: str, reason: str, delivery: str | None = None) -> None:
        """Count (and log, by its platform id only) a delivery a channel did not take: forged,
        or authentic but unusable (not JSON, nested too deep, a shape we cannot read).
        ``reason`` is a word from the channel's own vocabulary, never the sender's text."""
        self._metrics.inc("inbound_refused_total", channel=channel, reason=reason)
        shown = clean_text(delivery, 64) if delivery else "(no id)"
        log.warning("%s: delivery %s refused: %s", channel, shown, reason)

    async def accept(self, inbound: Inbound, *, scope: str, platform_id: str) -> bool:
        """Record an authentic, parsed inbound; False for a redelivery. Returns once durable.
        Raises ``Draining`` (nothing recorded) once the process is shutting down."""
        if self._draining:
            # Checked here as well as at the door (bot/app.py): a webhook or a long-poll batch
            # already past it at SIGTERM records nothing new either, so the work left to finish
            # is exactly what was accepted before.
            raise Draining()
        platform_id = clean_text(platform_id, 256)
        key = inbound.key
        if any(clean_text(part, 256) != part for part in (key.channel, key.chat_id, key.user_id)):
            # A conversation id is never repaired: a replaced character would name another one.
            self.refused(key.channel, "bad_sender", platform_id)
            return False
        inbound = clean_inbound(inbound)
        inbound = replace(
            inbound,
            message_id=clean_text(inbound.message_id, 256),
            attachments=tuple(
                replace(a, ref=clean_text(a.ref, 2048)) if a.ref else a for a in inbound.attachments
            ),
            raw=storable_raw(inbound.raw),
        )
        inbox_id = await self._store.inbox_put(scope, platform_id, inbound)
        if inbox_id is None:
            self._metrics.inc("inbound_duplicates_total", channel=inbound.key.channel)
            return False
        if self._stream is not None:
            # Recorded: from here on losing the process loses nothing (a failed announce is
            # drained here, a crash before it is found by the other processes' sweep).
            await self._stream.announce(inbound.key.id)
        else:
            self._schedule(inbox_id, inbound, 0)
        return True

    async def start(self) -> None:
        if self._stream is not None:
            await self._stream.start()  # its first sweep takes what was left pending
        else:
            for pending in await self._store.inbox_pending():
                self._schedule(pending.id, pending.inbound, pending.attempts)
        self._janitor.start()

    async def _forget_old(self) -> None:
        await self._store.inbox_forget(KEEP_DELIVERY_IDS_DAYS)

    async def close(self) -> None:
        await self._janitor.close()
        if self._stream is not None:
            await self._stream.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait until every accepted inbound has been processed (tests, shutdown). With other
        processes: until what was pending when asked is answered or in a live process's hands."""
        if self._stream is not None:
            await self._stream.settled()
        else:
            await self._idle.wait()

    async def _pending_conversations(self) -> list[str]:
        return [p.inbound.key.id for p in await self._store.inbox_pending()]

    async def _drain_conversation(self, conversation_id: str) -> None:
        """With the conversation's ingress lease held: answer its pending inbounds, oldest
        first, until none is left (ones recorded meanwhile included)."""
        tried: set[int] = set()
        while True:
            pending = [
                p for p in await self._store.inbox_pending(conversation_id) if p.id not in tried
            ]
            if not pending:
                return
            for item in pending:
                # Once per drain: an inbound still pending after its turn (given up, kept for
                # inspection by a store that lists it) must not be answered in a loop.
                tried.add(item.id)
                await self._process(item.id, item.inbound, item.attempts)

    def _schedule(self, inbox_id: int, inbound: Inbound, attempts: int) -> None:
        conversation_id = inbound.key.id
        queue = self._queues.get(conversation_id)
        if queue is not None:
            queue.append((inbox_id, inbound, attempts))
            return  # its worker takes it in turn
        self._queues[conversation_id] = deque([(inbox_id, inbound, attempts)])
        self._idle.clear()
        task = asyncio.create_task(self._work(conversation_id), name=f"ingress-{inbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, conversation_id: str) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue:
                inbox_id, inbound, attempts = queue[0]
                await self._process(inbox_id, inbound, attempts)
                queue.popleft()
        finally:
            self._queues.pop(conversation_id, None)
            if not self._queues:
                self._idle.set()

    async def _answered(self, inbox_id: int, conversation_id: str) -> bool:
        """True when the store no longer lists the inbound as pending (answered or given up)."""
        try:
            pending = await self._store.inbox_pending(conversation_id)
        except StoreUnavailable:
            return False  # cannot tell yet: the retry finds out
        return all(p.id != inbox_id for p in pending)

    async def _process(self, inbox_id: int, inbound: Inbound, attempts: int) -> None:
        """Answer one inbound; on failure retry in place, so later messages keep their order."""
        store_failures = 0
        while True:
            try:
                prepare = self._preparers.get(inbound.key.channel)
                ready = inbound if prepare is None else await prepare(inbound)
                await self._gateway.handle(ready, inbox_id=inbox_id, deliver=True)
                self._outbox.notify(inbound.key.id)
                return
            except StoreUnavailable:
                # Logged and counted by the store's health; the turn is retried whole (its
                # commit is one transaction, so nothing of it was kept)...
                delay = STORE_RETRY_SECONDS[min(store_failures, len(STORE_RETRY_SECONDS) - 1)]
                store_failures += 1
                await asyncio.sleep(delay)
                # ...unless the commit did land and only its answer was lost: a Redis reply cut
                # off by a timeout, or a lost lease cancelling the wait for it (LeaseLost).
                # Answering again would send every reply twice.
                if await self._answered(inbox_id, inbound.key.id):
                    return
            except Exception as exc:
                attempts += 1
                give_up = attempts >= MAX_ATTEMPTS
                log.exception("ingress: inbound %s failed (attempt %d)", inbox_id, attempts)
                with contextlib.suppress(Exception):
                    await self._store.inbox_retry_later(inbox_id, repr(exc), give_up=give_up)
                if give_up:
                    self._metrics.inc("inbound_failed_total", channel=inbound.key.channel)
                    return
                await asyncio.sleep(RETRY_SECONDS[min(attempts - 1, len(RETRY_SECONDS) - 1)])
