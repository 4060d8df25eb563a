"""Per-conversation leases on Redis: one process at a time works on a conversation.

Several gateway processes share one Redis. Three things about a conversation must happen in one
place at a time, each under its own lease (a lease is one key in the conversation's shard,
``isp-bot:{s07}:lease-<kind>:<conversation id>``):

- ``turn``: the state is read, changed and committed (``Gateway.handle``, the handoff service,
  customer notices): ``RedisLocks``, the multi-process ``Locks``;
- ``ingress``: the conversation's inbox is drained in order (bot/ingress.py); a separate key,
  because the drain calls ``Gateway.handle``, which takes ``turn`` (a lease is not re-entrant);
- ``send``: the conversation's outbox is sent in order (bot/outbox.py).

A lease is ``SET key token NX PX ttl``; the token is random per holding, and renewing and
releasing compare it first (bot/leases.py's Lua scripts, shared here): a holder that lost its
lease never extends or deletes the next holder's. A process killed with SIGKILL leaves its keys
to expire after ``ttl`` (BOT_CONVERSATION_LEASE_TTL), then the others take over.

Waiting: a conversation is busy only for a turn, so a waiter polls ``SET NX`` with a short
backoff (5 ms doubling up to ``ttl / 10``, at most 250 ms) rather than subscribing to releases.

Losing a lease while inside: the holder renews every ``ttl / 3``. When a renewal finds another
token (or none), or Redis has not confirmed the lease by the time it would have expired (the
deadline is counted from before each command was sent, so it is never later than Redis's own),
the task inside is *cancelled* at its current ``await`` and ``hold`` raises ``LeaseLost``: a
turn stops before its commit instead of committing under another process's lease. ``LeaseLost``
is a ``StoreUnavailable`` (the turn was not kept and may be tried again; Redis too slow to keep a
lease is Redis unavailable), so callers already do the right thing: the ingress retries the turn,
a webhook answers 503. Counted in ``conversation_lease_lost_total{lease}``.

What cancellation cannot cover: a commit *already sent* to Redis just before the local deadline
and executed after the key expired (a stall of more than ``ttl`` between the two). A store can
close that too by checking the lease in its commit script: ``fencing(conversation_id)`` gives
the turn lease's key and token held by the current task for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.leases import _RELEASE, _RENEW
from bot.metrics import Metrics
from bot.storage.base import Locks
from bot.storage.health import StoreUnavailable
from bot.storage.redis.keys import conversation_key

log = logging.getLogger(__name__)

DEFAULT_TTL = 15.0  # seconds: BOT_CONVERSATION_LEASE_TTL
LOST_METRIC = "conversation_lease_lost_total"
FIRST_WAIT = 0.005
LONGEST_WAIT = 0.25

# The turn leases the current task holds: conversation id -> (key, token), for fencing.
_HELD: ContextVar[dict[str, tuple[str, str]] | None] = ContextVar("held_leases", default=None)


def register_metrics(metrics: Metrics) -> None:
    metrics.counter(
        LOST_METRIC,
        "Conversation leases lost while inside (renewal refused or too late): the work inside "
        "was stopped before committing, by lease (turn, ingress, send).",
    )


def fencing(conversation_id: str) -> tuple[str, str] | None:
    """(key, token) of the turn lease the current task holds on ``conversation_id``, if any: a
    store's commit may check it atomically, so a holder that lost its lease commits nothing."""
    held = _HELD.get()
    return None if held is None else held.get(conversation_id)


class LeaseLost(StoreUnavailable):
    """The lease was lost while inside: the work was cancelled before it could commit."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} lease", "lost")
        self.kind = kind


class ConversationLeases:
    """Leases of one kind, keyed by conversation, on ``redis``."""

    def __init__(
        self,
        redis: Redis,
        kind: str,
        *,
        ttl: float = DEFAULT_TTL,
        metrics: Metrics | None = None,
        fence: bool = False,
    ) -> None:
        self.kind = kind
        self.ttl = ttl
        self._redis = redis
        self._metrics = metrics
        self._fence = fence
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        if metrics is not None:
            register_metrics(metrics)

    def key(self, conversation_id: str) -> str:
        return conversation_key(conversation_id, f"lease-{self.kind}")

    async def held(self, conversation_ids: Iterable[str]) -> dict[str, bool]:
        """Whether someone holds each conversation's lease now (one round trip)."""
        ids = list(dict.fromkeys(conversation_ids))
        if not ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for conversation_id in ids:
                pipe.exists(self.key(conversation_id))
            found = await pipe.execute()
        return {c: bool(n) for c, n in zip(ids, found, strict=True)}

    async def _acquire(self, key: str) -> tuple[str, float]:
        """Wait for the lease; (token, monotonic deadline). Raises ``StoreUnavailable`` when
        Redis does not answer (the caller's retry, or a 503, deals with an outage)."""
        token = secrets.token_hex(16)
        wait = FIRST_WAIT
        longest = min(LONGEST_WAIT, self.ttl / 10)
        while True:
            sent = time.monotonic()
            try:
                taken = await self._redis.set(key, token, nx=True, px=int(self.ttl * 1000))
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"{self.kind} lease", type(exc).__name__) from exc
            if taken:
                return token, sent + self.ttl
            await asyncio.sleep(wait)
            wait = min(wait * 2, longest)

    async def _keep(self, key: str, token: str, valid_until: float) -> None:
        """Renew every ttl/3; return as soon as the lease is lost (see the module docstring)."""
        while True:
            await asyncio.sleep(min(self.ttl / 3, max(0.0, valid_until - time.monotonic())))
            left = valid_until - time.monotonic()
            if left <= 0:
                return  # Redis did not confirm it in time
            sent = time.monotonic()
            try:
                async with asyncio.timeout(left):
                    renewed = await self._renew(keys=[key], args=[token, int(self.ttl * 1000)])
            except (RedisError, OSError, TimeoutError):
                continue  # tried again until the lease runs out
            if not renewed:
                return  # another process holds it (or nobody: it expired)
            valid_until = sent + self.ttl

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        """Inside: this process holds the conversation's lease. Raises ``LeaseLost`` if it is
        lost meanwhile (the body was cancelled at its current ``await``)."""
        key = self.key(conversation_id)
        token, valid_until = await self._acquire(key)
        task = asyncio.current_task()
        assert task is not None
        inside = True
        lost = False

        async def keep() -> None:
            nonlocal lost
            await self._keep(key, token, valid_until)
            if inside:  # single-threaded: the body has not resumed past its last await
                lost = True
                task.cancel()

        keeper = asyncio.create_task(keep(), name=f"lease-{self.kind}")
        held = _HELD.get()
        fenced = None
        if self._fence:
            fenced = _HELD.set({**(held or {}), conversation_id: (key, token)})
        try:
            yield
        except asyncio.CancelledError:
            inside = False
            if lost:
                task.uncancel()  # our own cancellation: turned into LeaseLost below
                self._lost()
                raise LeaseLost(self.kind) from None
            raise
        finally:
            inside = False
            keeper.cancel()
            if fenced is not None:
                _HELD.reset(fenced)
            with contextlib.suppress(RedisError, OSError):
                # Compare-and-delete, so harmless after a loss; shielded: a holder cancelled
                # from outside (shutdown) still hands the conversation over at once.
                await asyncio.shield(self._release(keys=[key], args=[token]))
            await asyncio.wait([keeper])  # never swallows a cancellation of this task

    def _lost(self) -> None:
        if self._metrics is not None:
            self._metrics.inc(LOST_METRIC, lease=self.kind)
        # The kind only: the key names the customer's chat.
        log.warning("conversation %s lease lost while inside: stopped before committing", self.kind)


class RedisLocks(Locks):
    """``Locks`` across processes: the ``turn`` lease of each conversation."""

    def __init__(
        self, redis: Redis, *, ttl: float = DEFAULT_TTL, metrics: Metrics | None = None
    ) -> None:
        self.leases = ConversationLeases(redis, "turn", ttl=ttl, metrics=metrics, fence=True)

    def hold(self, conversation_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self.leases.hold(conversation_id)
