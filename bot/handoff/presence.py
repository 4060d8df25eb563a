"""Which operators are online ("на линии"): routing gives chats only to them, and the queue
notice counts them.

``MemoryPresence`` is one process's memory (the embedded default). ``RedisPresence`` is shared
by every gateway process on ``REDIS_URL``, so an operator who went online through process A
counts for a chat queued in process B:

- ``isp-bot:{presence}:op:<login>`` holds the random id of the process that set it online, with
  a TTL (``PRESENCE_TTL``). That process renews it every ``ttl / 3`` (a compare-and-set, as for
  the polling leases in ``bot/leases.py``); a process that dies stops renewing, so its operators
  fall offline within the TTL instead of being given chats nobody will answer.
- Going online in another process takes the key over (the first process's renewal then fails
  and it forgets the login); going away deletes it wherever it was set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.storage.health import StoreUnavailable
from bot.storage.redis.keys import global_key

log = logging.getLogger(__name__)

PRESENCE_TTL = 30.0  # seconds an operator stays online after their process stopped renewing

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class Presence(Protocol):
    async def set_online(self, login: str, online: bool) -> None: ...

    async def online_of(self, logins: Iterable[str]) -> set[str]:
        """Those of ``logins`` online now."""
        ...

    async def close(self) -> None: ...


class MemoryPresence:
    def __init__(self) -> None:
        self._online: set[str] = set()

    async def set_online(self, login: str, online: bool) -> None:
        if online:
            self._online.add(login)
        else:
            self._online.discard(login)

    async def online_of(self, logins: Iterable[str]) -> set[str]:
        return {login for login in logins if login in self._online}

    async def close(self) -> None:
        pass


def presence_key(login: str) -> str:
    return global_key("presence", "op", login)


class RedisPresence:
    def __init__(self, redis: Redis, *, ttl: float = PRESENCE_TTL) -> None:
        self._redis = redis
        self.ttl = ttl
        self._token = secrets.token_hex(8)  # this process, as the holder of its operators' keys
        self._held: set[str] = set()  # logins this process set online and keeps renewing
        self._renew = redis.register_script(_RENEW)
        self._heartbeat: asyncio.Task[None] | None = None

    async def set_online(self, login: str, online: bool) -> None:
        try:
            if online:
                await self._redis.set(presence_key(login), self._token, px=self._ttl_ms)
                self._held.add(login)
                self._start()
            else:
                self._held.discard(login)
                await self._redis.delete(presence_key(login))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("presence.set", type(exc).__name__) from exc

    async def online_of(self, logins: Iterable[str]) -> set[str]:
        wanted = sorted(set(logins))
        if not wanted:
            return set()
        try:
            values = await self._redis.mget([presence_key(login) for login in wanted])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("presence.online", type(exc).__name__) from exc
        return {login for login, value in zip(wanted, values, strict=True) if value is not None}

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def _start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="operator presence")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self.renew()

    async def renew(self) -> None:
        """Extend the keys of the operators this process holds; forget those another process
        took over or that expired meanwhile (they went online again elsewhere, or away)."""
        for login in list(self._held):
            try:
                kept = await self._renew(
                    keys=[presence_key(login)], args=[self._token, self._ttl_ms]
                )
            except (RedisError, OSError) as exc:
                # Tried again in ttl/3; after the ttl the operator is offline everywhere, which
                # is what a process that cannot reach Redis should look like.
                log.warning("operator presence: renewing failed (%s)", type(exc).__name__)
                return
            if not kept:
                self._held.discard(login)

    async def close(self) -> None:
        """Stop renewing. The keys are left to expire: a restarting process (the usual reason
        to close) must not flash its operators offline; a stopped one loses them after the TTL."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
