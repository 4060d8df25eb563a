"""Leases on Redis: work that only one gateway process at a time may do.

Telegram's ``getUpdates`` and VK's Bots Long Poll have one consumer each: a second process
polling the same bot makes Telegram answer 409 Conflict (and both processes see the same
updates) and VK hand the same events to whichever ``a_check`` comes first. So every polling
process asks for a lease first and polls only while it holds it; the others wait and try again
every ``retry`` seconds.

A lease is one Redis key, ``isp-bot:lease:<name>``, set with ``SET key token NX PX ttl``; the
token is random per holding, so renewing and releasing compare it first (one Lua script each:
a holder whose lease expired and was taken must not extend or delete the new holder's). The
holder renews every ``ttl / 3``. It stops its work at once when it loses the lease: a renewal
finds another token (or none), or Redis could not confirm the lease before it expired. A holder
killed with SIGKILL leaves the key to expire: another process takes over within ``ttl`` plus
one ``retry``; a clean stop deletes it at once.

Without ``REDIS_URL`` there is one process: the lease is not kept anywhere and always held.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.metrics import Metrics

log = logging.getLogger(__name__)

KEY_PREFIX = "isp-bot:lease:"
METRIC = "polling_lease_held"
DEFAULT_TTL = 15.0  # seconds: how long a dead holder keeps the others waiting
# A lease command must answer well within the ttl; a Redis that hangs is a Redis that is down.
REDIS_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def register_metrics(metrics: Metrics) -> None:
    metrics.gauge(METRIC, "1 while this process holds the channel's polling lease, else 0")


class Lease:
    """One named lease. ``hold(work)`` runs ``work`` only while the lease is held, starting it
    again after every new acquisition, until ``work`` returns or the caller is cancelled (both
    release the lease). ``redis`` None: no Redis, always held."""

    def __init__(
        self,
        name: str,
        *,
        redis: Redis | None,
        ttl: float = DEFAULT_TTL,
        retry: float | None = None,
        metrics: Metrics | None = None,
        channel: str = "",
    ) -> None:
        self.key = KEY_PREFIX + name
        self._redis = redis
        self.ttl = ttl
        self.retry = ttl / 5 if retry is None else retry
        self._metrics = metrics
        self._channel = channel or name
        self._token: str | None = None
        self._valid_until = 0.0  # monotonic: when the lease runs out unless renewed
        self.held = False
        if metrics is not None:
            register_metrics(metrics)  # idempotent: one gauge, a label per channel
        self._set_held(False)
        if redis is not None:
            self._renew_script = redis.register_script(_RENEW)
            self._release_script = redis.register_script(_RELEASE)

    def _set_held(self, held: bool) -> None:
        self.held = held
        if self._metrics is not None:
            self._metrics.set(METRIC, 1.0 if held else 0.0, channel=self._channel)

    # --- the three Redis operations -----------------------------------------------------
    async def acquire(self) -> bool:
        if self._redis is None:
            self._set_held(True)
            return True
        token = secrets.token_hex(16)
        sent = time.monotonic()
        if not await self._redis.set(self.key, token, nx=True, px=int(self.ttl * 1000)):
            return False
        self._token = token
        self._valid_until = sent + self.ttl  # counted from before the command: never too long
        self._set_held(True)
        return True

    async def renew(self) -> bool:
        """Extend the lease if it is still ours; False when another token (or none) is there."""
        if self._redis is None:
            return True
        if self._token is None:
            return False
        sent = time.monotonic()
        renewed = await self._renew_script(
            keys=[self.key], args=[self._token, int(self.ttl * 1000)]
        )
        if renewed:
            self._valid_until = sent + self.ttl
        return bool(renewed)

    async def release(self) -> None:
        """Delete the key if it is still ours (a lease taken over meanwhile is left alone)."""
        token, self._token = self._token, None
        was_held = self.held
        self._set_held(False)
        if self._redis is None or token is None:
            return
        try:
            await self._release_script(keys=[self.key], args=[token])
        except (RedisError, OSError) as exc:  # it expires by itself after the ttl
            reason = type(exc).__name__
            log.warning("lease %s: could not release (%s); it expires", self.key, reason)
            return
        if was_held:
            log.info("lease %s: released", self.key)

    # --- holding it while working -------------------------------------------------------
    async def hold(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            while True:
                await self._wait_for_lease()
                if self._redis is None:  # nothing to keep or lose: one process
                    await work()
                    return
                log.info("lease %s: taken by this process, starting its work", self.key)
                runner = asyncio.ensure_future(work())
                keeper = asyncio.ensure_future(self._keep())
                try:
                    done, _ = await asyncio.wait(
                        {runner, keeper}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for task in (runner, keeper):
                        task.cancel()
                    for task in (runner, keeper):
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                if runner in done:
                    runner.result()  # work's own exception, if any, goes to the caller
                    return  # work is over (intake stopped): released below
                # The keeper ended: the lease is lost; the work was stopped above.
                self._token = None
                self._set_held(False)
        finally:
            await asyncio.shield(self.release())

    async def _wait_for_lease(self) -> None:
        failures = 0
        while True:
            try:
                if await self.acquire():
                    return
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                if failures == 1:  # once per outage
                    log.warning("lease %s: Redis unreachable (%s)", self.key, type(exc).__name__)
            await asyncio.sleep(self.retry)

    async def _keep(self) -> None:
        """Renew every ttl/3; return as soon as the lease is lost."""
        while True:
            await asyncio.sleep(min(self.ttl / 3, max(0.0, self._valid_until - time.monotonic())))
            left = self._valid_until - time.monotonic()
            if left <= 0:
                log.warning("lease %s: lost (Redis did not confirm it in time)", self.key)
                return
            try:
                async with asyncio.timeout(left):
                    renewed = await self.renew()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("lease %s: renewal failed (%s)", self.key, type(exc).__name__)
                continue  # tried again until the lease runs out
            if not renewed:
                log.warning("lease %s: lost (another process holds it)", self.key)
                return


def token_id(token: str) -> str:
    """What names a bot in a lease key without its token: the bot id Telegram puts before the
    colon, or else a short hash."""
    head = token.split(":", 1)[0]
    if head.isdigit():
        return head
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Leases:
    """Makes the leases of one process, all on one Redis connection pool (or none)."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        ttl: float = DEFAULT_TTL,
        metrics: Metrics | None = None,
        client: Redis | None = None,  # instead of redis_url (Sentinel); closed by aclose
    ) -> None:
        self.ttl = ttl
        self._metrics = metrics
        self._redis: Redis | None = (
            Redis.from_url(redis_url, **REDIS_OPTIONS) if redis_url else client
        )
        if metrics is not None:
            register_metrics(metrics)

    def lease(self, name: str, *, channel: str) -> Lease:
        """``name`` follows ``isp-bot:lease:``; it must hold no secret (keys are visible to
        anyone with access to Redis, and in its logs)."""
        return Lease(name, redis=self._redis, ttl=self.ttl, metrics=self._metrics, channel=channel)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
