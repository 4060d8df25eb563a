"""Delivery of replies through their channels: durable (rows in the store until sent), in order
per chat, under each platform's rate limits, retried on 429/5xx with the platform's retry-after,
and recorded as failed (never dropped silently) when it finally cannot be delivered.

Two lanes share each channel's budget. Replies (``PRIORITY_REPLY``) reserve send slots as they
come, one worker per chat. Bulk items (``PRIORITY_BULK``: an outage notice to every affected
customer) go through one lane per channel that takes a slot only when it is free *now*, so a
fan-out of thousands never books the channel's future: a reply written in the middle of it waits
at most one slot, not for the whole broadcast (``benchmarks/outage_fanout.py``).

A store that cannot be written (disk full, locked past the busy timeout) holds the whole outbox:
a message the platform accepted but the store could not mark as sent would otherwise be read as
pending and sent again, over and over (893 duplicates in one measured trial). Such a message is
remembered here as sent (``_unrecorded``) and never sent again by this process; no further send
starts; the marks are retried with a backoff, and sending resumes, in order, once they are
written. Only a restart while held can send such a message twice (the in-flight case).

A send whose outcome nobody recorded. Each item is marked ``outbox_sending`` just before it is
handed to the platform; ``outbox_done`` (or a failed attempt) clears the mark. An item read back
still marked (``OutboundItem.uncertain``: the sender was killed, or the store failed, between the
platform call and the record) may or may not have reached the customer. It is sent again, never
dropped: on VK with the same ``random_id`` (derived from the item id and part:
bot/channels/vk.py), so VK itself drops the copy (``outbox_resent_idempotent_total``); on every
other platform, which has no such key, the customer may see it twice: counted in
``outbox_uncertain_total{channel}`` and logged by item id. At most one such item per chat: a
chat's items are sent one at a time, so only the one in flight can be uncertain.

Several processes on one Redis (``work``). Every chat's items are sent by the process holding the
conversation's ``send`` lease (bot/storage/redis/locks.py), in order, through the outbox stream
(bot/storage/redis/streams.py): ``notify(conversation_id)`` (a turn just committed, from the
ingress) announces the conversation there; a bare ``notify()`` (the handoff service, notices)
makes this process look for pending rows and drain the conversations nobody sends now; the
stream's claim and sweep take over a dead sender's chats after the lease ttl. The announce is an
``XADD`` after the commit, not inside it: a crash between the two leaves rows that only the sweep
(every ``2 × ttl``) finds, a delay, never a loss; a store that ``XADD``s in its commit script
would make it immediate (bot/storage/redis/streams.py ``stream_key``).

Rate limits are kept per process (``_Pacer``): with N processes sending, a channel's overall
budget is up to N × ``RateLimit.overall``, and one chat's spacing holds within a drain but not
across a hand-over to another process. Set the channel's overall limit to the platform's divided
by the number of processes (a shared Redis limiter is the better fix: not done yet). The bulk
lane keeps its rule (a bulk item takes a slot only when it is free now) but runs inside each
conversation's drain: at most ``max_workers`` conversations per process at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping

from bot.channels.base import Channel, OutboundMessage, RateLimit, SendError
from bot.channels.fit import fit_message
from bot.metrics import Metrics
from bot.storage.base import PRIORITY_BULK, OutboundItem, Store
from bot.storage.health import StoreUnavailable
from bot.storage.redis.streams import WorkConfig, WorkStream

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)
# Bulk sends of one channel in flight at once: enough to use the budget when the platform
# answers slowly, few enough that waiting bulk senders do not crowd the event loop.
BULK_IN_FLIGHT = 4
# Retrying a failing store while held: soon for a short lock, then no more than every 5 s so
# a full disk is not hammered (each try of a locked database already waits the busy timeout).
STORE_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
# Channels whose platform drops a repeated send by our idempotency key (VK's ``random_id``):
# sending an uncertain item again cannot show it twice.
IDEMPOTENT_CHANNELS = frozenset({"vk"})


def register_metrics(metrics: Metrics) -> None:
    metrics.counter("outbox_sent_total", "Platform messages delivered, by channel.")
    metrics.counter("outbox_retries_total", "Send attempts that will be retried, by channel.")
    metrics.counter("outbox_failed_total", "Replies that could not be delivered, by channel.")
    metrics.counter(
        "outbox_uncertain_total",
        "Messages sent again after a send whose outcome was never recorded (a killed sender): "
        "the customer may see them twice, by channel.",
    )
    metrics.counter(
        "outbox_resent_idempotent_total",
        "Messages sent again after an unrecorded send with the platform's idempotency key (VK "
        "random_id): the platform drops the copy, by channel.",
    )


class _Pacer:
    """Spacing between sends: per chat and per channel (a next-slot scheduler). Replies book the
    next free slot, even one in the future; bulk sends take a slot only when it is free now, so
    they never stand in front of a reply that comes later."""

    def __init__(self, limit: RateLimit) -> None:
        self._chat_gap = 1.0 / limit.per_chat
        self._overall_gap = 1.0 / limit.overall
        self._next_overall = 0.0
        self._next_chat: dict[str, float] = {}

    def _book(self, chat_id: str, slot: float, now: float) -> None:
        self._next_overall = slot + self._overall_gap
        self._next_chat[chat_id] = slot + self._chat_gap
        if len(self._next_chat) > 10_000:  # forget chats idle for a while
            self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}

    async def wait(self, chat_id: str) -> None:
        now = time.monotonic()
        slot = max(now, self._next_overall, self._next_chat.get(chat_id, 0.0))
        self._book(chat_id, slot, now)
        if slot > now:
            await asyncio.sleep(slot - now)

    async def wait_bulk(self, chat_id: str) -> None:
        while True:
            now = time.monotonic()
            due = max(self._next_overall, self._next_chat.get(chat_id, 0.0))
            slot = max(now, due)
            if slot <= now:
                # Book the slot that was due, not "now": a sender that woke a little late must
                # not push every later slot back by its lateness (that cost a third of the
                # budget). Never more than one gap back, so an idle channel gives no burst.
                self._book(chat_id, max(due, now - self._overall_gap), now)
                return
            # Booked by a reply (or another bulk send) meanwhile: look again when it is due.
            await asyncio.sleep(slot - now)


class Outbox:
    def __init__(
        self,
        *,
        store: Store,
        channels: Mapping[str, Channel],
        metrics: Metrics,
        work: WorkConfig | None = None,
    ) -> None:
        """``work``: send with other processes on that Redis (the store must be shared too)."""
        register_metrics(metrics)  # idempotent: the counters below exist whoever wired us
        self._store = store
        self._channels = channels
        self._metrics = metrics
        self._pacers: dict[str, _Pacer] = {}
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, str]] = set()  # chats with a send in flight
        self._bulk_lanes: set[str] = set()  # channels whose bulk lane is running
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        # Held while the store fails: set = sends may start.
        self._store_ok = asyncio.Event()
        self._store_ok.set()
        self._recovery: asyncio.Task[None] | None = None
        # Outcomes the platform knows but the store does not yet: id -> (platform ids, error).
        self._unrecorded: dict[int, tuple[str | None, str | None]] = {}
        self._stream = (
            None
            if work is None
            else WorkStream(
                work,
                "outbox",
                lease="send",
                drain=self._drain_conversation,
                pending=self._pending_conversations,
            )
        )

    def notify(self, conversation_id: str | None = None) -> None:
        """New rows were committed (for ``conversation_id``, if the caller knows): send them."""
        if self._stream is not None and conversation_id is not None:
            self._stream.announce_soon(conversation_id)
            return
        self._wake.set()

    async def start(self) -> None:
        if self._stream is not None:
            await self._stream.start()  # its first sweep takes rows left pending
        self._dispatcher = asyncio.create_task(self._dispatch(), name="outbox-dispatch")
        self.notify()  # rows left pending by a previous run

    @property
    def held(self) -> bool:
        """True while sends wait for the store to work again."""
        return not self._store_ok.is_set()

    @property
    def in_flight(self) -> int:
        """Chats with a send under way (a shutdown's deadline cuts these off)."""
        return len(self._busy)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        tasks = [t for t in (self._dispatcher, self._recovery, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._unrecorded:
            # One last try: what stays unrecorded is sent again after the restart.
            with contextlib.suppress(StoreUnavailable):
                await self._record_unrecorded()
            if self._unrecorded:
                log.warning(
                    "outbox: %d sent message(s) could not be recorded and may be sent again",
                    len(self._unrecorded),
                )

    async def drain(self) -> None:
        """Wait until nothing is pending or in flight (tests, graceful shutdown); callers bound
        it with ``asyncio.timeout``. Polls the store, the truth about what is pending. With other
        processes: until what was pending when asked is sent or in a live process's hands."""
        if self._stream is not None:
            await self._stream.settled()
            while True:  # sent, but not yet recorded: the recovery records them
                if not self._unrecorded:
                    return
                await asyncio.sleep(0.02)
        while True:  # the condition lives in the store, so poll it
            if (
                not self._busy
                and not self._unrecorded
                and not await self._store.outbox_pending(limit=1)
            ):
                return
            await asyncio.sleep(0.02)

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.held:
                continue  # the recovery wakes us
            try:
                pending = await self._store.outbox_pending()
                if self._stream is not None:
                    # Each conversation is sent by its send lease's holder: start a local
                    # drain for those nobody sends now (the stream covers the rest).
                    await self._stream.wake_unheld(item.conversation_id for item in pending)
                    continue
            except StoreUnavailable:
                self._hold()
                continue
            except Exception:
                log.exception("outbox: reading pending rows failed")
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            chats: dict[tuple[str, str], list[OutboundItem]] = {}
            bulk: dict[str, list[OutboundItem]] = {}
            for item in pending:  # replies first, then bulk (the store's order)
                if item.id in self._unrecorded:
                    continue  # sent: only its mark is missing
                if item.priority >= PRIORITY_BULK:
                    bulk.setdefault(item.channel, []).append(item)
                else:
                    chats.setdefault((item.channel, item.chat_id), []).append(item)
            for chat, items in chats.items():
                if chat in self._busy:
                    continue  # its worker re-reads when done
                self._busy.add(chat)
                self._spawn(self._deliver_chat(chat, items))
            for channel, items in bulk.items():
                if channel not in self._bulk_lanes:
                    self._bulk_lanes.add(channel)
                    self._spawn(self._bulk_lane(channel, items))

    async def _pending_conversations(self) -> list[str]:
        return [item.conversation_id for item in await self._store.outbox_pending()]

    async def _drain_conversation(self, conversation_id: str) -> None:
        """With the conversation's send lease held: send its pending items in order (replies,
        then bulk) until none is left. A store failure holds the outbox and goes up: the
        stream's worker tries the conversation again later."""
        while True:
            await self._store_ok.wait()
            items = [
                item
                for item in await self._store.outbox_pending(conversation_id=conversation_id)
                if item.id not in self._unrecorded
            ]
            if not items:
                return
            chat = (items[0].channel, items[0].chat_id)
            self._busy.add(chat)
            try:
                for item in items:
                    if self.held:
                        break  # read again once the store works
                    await self._deliver(item)
            except StoreUnavailable:
                self._hold()
                raise
            finally:
                self._busy.discard(chat)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_chat(self, chat: tuple[str, str], items: list[OutboundItem]) -> None:
        try:
            for item in items:
                if self.held:
                    return  # read again after the recovery
                await self._deliver(item)
        except StoreUnavailable:
            self._hold()
        finally:
            self._busy.discard(chat)
            self._wake.set()  # more rows may have arrived for this chat meanwhile

    async def _bulk_lane(self, channel: str, items: list[OutboundItem]) -> None:
        """Send a channel's bulk items, a few at a time, each when the budget has a slot free
        now. A chat busy with a reply is skipped this round (its reply goes first; the item is
        read again next round), which also keeps one chat's bulk items in order."""
        in_flight = asyncio.Semaphore(BULK_IN_FLIGHT)
        sends: set[asyncio.Task[None]] = set()
        skipped: set[tuple[str, str]] = set()
        sent = False

        async def send(chat: tuple[str, str], item: OutboundItem) -> None:
            try:
                await self._deliver(item)
            except StoreUnavailable:
                self._hold()
            finally:
                self._busy.discard(chat)
                in_flight.release()

        try:
            for item in items:
                chat = (item.channel, item.chat_id)
                if chat in self._busy:
                    skipped.add(chat)
                    continue
                await in_flight.acquire()
                if self.held:  # the rest waits for the recovery, which reads it again
                    in_flight.release()
                    break
                if chat in self._busy:  # a reply arrived while we waited
                    in_flight.release()
                    skipped.add(chat)
                    continue
                sent = True
                self._busy.add(chat)
                task = asyncio.create_task(send(chat, item))
                sends.add(task)
                task.add_done_callback(sends.discard)
            if sends:
                await asyncio.gather(*sends)
        finally:
            for task in sends:
                task.cancel()
            self._bulk_lanes.discard(channel)
            # Read again for the rest of the backlog. If nothing was sent, only a skipped chat
            # that is free by now is worth it (busy ones wake us when done): no idle spinning.
            if sent or any(chat not in self._busy for chat in skipped):
                self._wake.set()

    async def _deliver(self, item: OutboundItem) -> None:
        """Send one item and record the outcome. A store failure before the send raises
        ``StoreUnavailable`` with nothing sent; one after it is remembered (``_record``)."""
        channel = self._channels.get(item.channel)
        if channel is None:
            await self._record(item, error=f"no channel {item.channel!r} configured")
            self._metrics.inc("outbox_failed_total", channel=item.channel)
            return
        if not await self._store.is_reachable(item.conversation_id):
            await self._record(item, error="customer unreachable (blocked the bot)")
            self._metrics.inc("outbox_failed_total", channel=item.channel)
            return
        parts = fit_message(item.text, item.buttons, item.attachments, channel.capabilities)
        # Before the platform has it: a sender killed from here on leaves the item uncertain.
        # Raises (nothing sent) if the store cannot say so.
        await self._store.outbox_sending(item.id)
        if item.uncertain:
            self._count_uncertain(item)
        platform_ids: list[str] = []
        for index, part in enumerate(parts):
            # The idempotency key is the item's id and part: the same on every resend, which
            # is what VK's random_id is made from.
            message = OutboundMessage(
                item.chat_id, part.text, part.buttons, f"{item.id}:{index}", part.attachments
            )
            platform_id, error = await self._send_with_retries(channel, message, item)
            if error is not None:
                # Parts before this one may have gone out: never to be sent again either.
                await self._record(item, error=error)
                self._metrics.inc("outbox_failed_total", channel=item.channel)
                log.warning(
                    "outbox: gave up on message %s via %s: %s", item.id, item.channel, error
                )
                return
            if platform_id:
                platform_ids.append(platform_id)
            self._metrics.inc("outbox_sent_total", channel=item.channel)
        await self._record(item, platform_message_id=",".join(platform_ids) or None)

    def _count_uncertain(self, item: OutboundItem) -> None:
        """An earlier send of ``item`` has no recorded outcome: it is sent again (ids only)."""
        if item.channel in IDEMPOTENT_CHANNELS:
            self._metrics.inc("outbox_resent_idempotent_total", channel=item.channel)
            log.info(
                "outbox: message %s via %s sent again with its idempotency key (an earlier "
                "send's outcome is unknown)", item.id, item.channel,
            )  # fmt: skip
            return
        self._metrics.inc("outbox_uncertain_total", channel=item.channel)
        log.warning(
            "outbox: message %s via %s sent again; an earlier send's outcome is unknown, so the "
            "customer may see it twice", item.id, item.channel,
        )  # fmt: skip

    async def _record(
        self,
        item: OutboundItem,
        *,
        platform_message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Mark ``item`` sent (or failed). If the store cannot, the outcome is kept here, the
        outbox holds, and ``StoreUnavailable`` goes on up: the caller starts nothing more."""
        try:
            await self._store.outbox_done(
                item.id, platform_message_id=platform_message_id, error=error
            )
        except StoreUnavailable:
            self._unrecorded[item.id] = (platform_message_id, error)
            self._hold()
            raise

    def _hold(self) -> None:
        """Stop starting sends until the store works again (the store's health logs and
        counts the failure; this only makes sure nothing is sent twice meanwhile)."""
        self._store_ok.clear()
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover(), name="outbox-recovery")

    async def _recover(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(STORE_RETRY_SECONDS[min(attempt, len(STORE_RETRY_SECONDS) - 1)])
            attempt += 1
            try:
                await self._record_unrecorded()
                await self._store.outbox_pending(limit=1)  # what sending starts with works too
            except StoreUnavailable:
                continue
            break
        log.info("outbox: the store works again; sending resumes")
        self._store_ok.set()
        self._wake.set()

    async def _record_unrecorded(self) -> None:
        # Until empty: a send in flight when the outbox was held may add one meanwhile.
        while self._unrecorded:
            item_id, (platform_message_id, error) = next(iter(self._unrecorded.items()))
            await self._store.outbox_done(
                item_id, platform_message_id=platform_message_id, error=error
            )
            self._unrecorded.pop(item_id, None)

    async def _send_with_retries(
        self, channel: Channel, message: OutboundMessage, item: OutboundItem
    ) -> tuple[str | None, str | None]:
        """(platform message id, None) when sent; (None, final error) when it cannot be."""
        attempts = item.attempts
        while True:
            pacer = self._pacers.get(channel.name)
            if pacer is None:
                pacer = self._pacers[channel.name] = _Pacer(channel.rate_limit)
            if item.priority >= PRIORITY_BULK:
                await pacer.wait_bulk(message.chat_id)
            else:
                await pacer.wait(message.chat_id)
            try:
                return await channel.send(message), None
            except SendError as exc:
                attempts += 1
                if exc.permanent or attempts >= MAX_ATTEMPTS:
                    return None, str(exc)
                delay = exc.retry_after
                if delay is None:
                    delay = BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
                self._metrics.inc("outbox_retries_total", channel=channel.name)
                # Only a count for people to read: a store failure here must not abandon a
                # message whose earlier parts may have gone out (``attempts`` counts on here).
                with contextlib.suppress(StoreUnavailable):
                    await self._store.outbox_attempt_failed(item.id, str(exc))
                await asyncio.sleep(delay)
                # The failed attempt cleared the mark; the retry is in flight again. Best
                # effort: earlier parts may be out, so a store failure must not abandon it.
                with contextlib.suppress(StoreUnavailable):
                    await self._store.outbox_sending(item.id)
