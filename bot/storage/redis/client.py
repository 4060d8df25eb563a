"""The Redis connection every Redis-backed part of the gateway shares, and the translation of
Redis failures into ``StoreUnavailable`` (the gateway's single notion of "the store cannot
answer just now": bot/storage/health.py).

Redis that is restarting, unreachable or out of memory (``maxmemory`` with ``noeviction``
answers writes with an OOM error) is not a bug in one request: every call reports it to the
store's health, and the callers react as they do to a full SQLite disk (webhooks 503, the
outbox holds, ``/healthz`` fails). redis-py reconnects by itself on the next call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.storage.health import StoreHealth, StoreUnavailable

T = TypeVar("T")

# Every command must answer well within a webhook's timeout: a Redis that hangs is down.
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0


def connect(url: str, **options: Any) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``) that returns bytes.
    Timeouts bound every call; redis-py retries a dropped connection once by itself."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        health_check_interval=30,
        **options,
    )


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("OOM")


class RedisCalls:
    """Runs store operations and reports their outcome to ``health``: a ``RedisError``
    (connection refused or lost, timeout, OOM, read-only replica after a failover) becomes
    ``StoreUnavailable(op, reason)``; a script error that is a bug in our code stays what it
    is, so it is not mistaken for an outage."""

    def __init__(self, health: StoreHealth) -> None:
        self.health = health

    async def run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await call()
        except ResponseError as exc:
            if is_out_of_memory(exc) or str(exc).startswith(("READONLY", "LOADING", "BUSY")):
                self.health.failed(op, type(exc).__name__)
                raise StoreUnavailable(
                    op, "out of memory" if is_out_of_memory(exc) else str(exc).split(" ", 1)[0]
                ) from exc
            raise
        except RedisError as exc:
            self.health.failed(op, type(exc).__name__)
            raise StoreUnavailable(op, type(exc).__name__) from exc
        except OSError as exc:  # a socket error redis-py did not wrap
            self.health.failed(op, type(exc).__name__)
            raise StoreUnavailable(op, type(exc).__name__) from exc
        self.health.succeeded(op)
        return result
