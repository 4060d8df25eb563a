"""The Redis connection every Redis-backed part of the gateway shares, and the translation of
Redis failures into ``StoreUnavailable`` (the gateway's single notion of "the store cannot
answer just now": bot/storage/health.py).

Redis that is restarting, unreachable or out of memory (``maxmemory`` with ``noeviction``
answers writes with an OOM error) is not a bug in one request: every call reports it to the
store's health, and the callers react as they do to a full SQLite disk (webhooks 503, the
outbox holds, ``/healthz`` fails). redis-py reconnects by itself on the next call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.storage.health import StoreHealth, StoreUnavailable

if TYPE_CHECKING:
    from bot.config import Settings

T = TypeVar("T")

# Every command must answer well within a webhook's timeout: a Redis that hangs is down.
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": COMMAND_TIMEOUT_SECONDS,
        "health_check_interval": 30,
        **options,  # a caller with a tighter budget (the polling lease) overrides the defaults
    }


# Connections one process may open. Each conversation being worked on holds leases that are
# renewed in the background, each waiter polls, the work streams block on XREADGROUP: under a
# burst of a few hundred conversations redis-py's default pool (100, then MaxConnectionsError)
# refused calls, renewals failed and leases were lost by the dozen (the SIGKILL fault
# harness). A blocking pool waits for a free connection instead, up to the command timeout.
MAX_CONNECTIONS = 400


def connect(url: str, **options: Any) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``) that returns bytes.
    Timeouts bound every call; redis-py retries a dropped connection once by itself. Past
    ``MAX_CONNECTIONS`` a call waits for a connection (``BlockingConnectionPool``) rather than
    failing."""
    settings = _options(options)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.pop("max_connections", MAX_CONNECTIONS),
        timeout=COMMAND_TIMEOUT_SECONDS,
        **settings,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def connect_sentinel(sentinels: tuple[tuple[str, int], ...], master: str, **options: Any) -> Redis:
    """A client for the master the Sentinels name ``master`` now. It asks them again whenever a
    connection is made, so after a failover (the old master gone, or answering READONLY, which
    ``RedisCalls`` reports as the store unavailable) the next call reaches the new master."""
    timeouts = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": CONNECT_TIMEOUT_SECONDS,
    }
    # redis-py leaves Sentinel's constructor unannotated; master_for returns a Redis.
    sentinel = Sentinel(list(sentinels), sentinel_kwargs=timeouts, **_options(options))  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(master, redis_class=Redis)
    return client


def connect_from_settings(settings: Settings, **options: Any) -> Redis | None:
    """The Redis of these settings: REDIS_URL, or the master the Sentinels of REDIS_SENTINELS
    know as REDIS_SENTINEL_MASTER; None when neither is set (the embedded default)."""
    if settings.redis_url:
        return connect(settings.redis_url, **options)
    if settings.redis_sentinels and settings.redis_sentinel_master:
        return connect_sentinel(settings.redis_sentinels, settings.redis_sentinel_master, **options)
    return None


def limits_uri(settings: Settings) -> str | None:
    """The same Redis as a URI for a library that takes one (the abuse limits' ``limits``):
    REDIS_URL as it is, or ``redis+sentinel://host:port,host:port/master``."""
    if settings.redis_url:
        return settings.redis_url
    if settings.redis_sentinels and settings.redis_sentinel_master:
        hosts = ",".join(
            f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            for host, port in settings.redis_sentinels
        )
        return f"redis+sentinel://{hosts}/{settings.redis_sentinel_master}"
    return None


# Answers of a Redis that cannot take the call just now: a replica after a failover (READONLY),
# loading its AOF after a restart (LOADING), a long script (BUSY), a master that sees too few
# replicas under ``min-replicas-to-write`` (NOREPLICAS) or a replica cut off from its master
# (MASTERDOWN).
UNAVAILABLE_ERRORS = ("READONLY", "LOADING", "BUSY", "NOREPLICAS", "MASTERDOWN")


# redis-py raises these answers as their own classes with the code cut off the message
# ("command not allowed when used memory > 'maxmemory'"), so the code is told by the class.
_UNAVAILABLE_CLASSES: tuple[tuple[type[ResponseError], str], ...] = (
    (OutOfMemoryError, "OOM"),
    (ReadOnlyError, "READONLY"),
    (MasterDownError, "MASTERDOWN"),
)


def _unavailable_code(exc: ResponseError) -> str | None:
    for cls, code in _UNAVAILABLE_CLASSES:
        if isinstance(exc, cls):
            return code
    text = str(exc)
    if text.startswith("OOM"):
        return "OOM"
    return text.split(" ", 1)[0] if text.startswith(UNAVAILABLE_ERRORS) else None


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and _unavailable_code(exc) == "OOM"


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
            code = _unavailable_code(exc)
            if code is not None:
                self.health.failed(op, type(exc).__name__)
                raise StoreUnavailable(op, "out of memory" if code == "OOM" else code) from exc
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Not reached at all (OSError: a socket error redis-py did not wrap): the next call
            # that gets through shows every operation that failed this way would work again.
            self.health.failed(op, type(exc).__name__, unreachable=True)
            raise StoreUnavailable(op, type(exc).__name__) from exc
        except RedisError as exc:
            self.health.failed(op, type(exc).__name__)
            raise StoreUnavailable(op, type(exc).__name__) from exc
        self.health.succeeded(op)
        self.health.reached()
        return result


C = TypeVar("C", bound=type)


def reports_failures(area: str) -> Callable[[C], C]:
    """Class decorator for a Redis-backed store: every public coroutine method runs through
    ``RedisCalls(self.health)``, so a Redis outage in any of them is ``StoreUnavailable``
    (the ingress retries the turn instead of giving the message up after five attempts, HTTP
    doors answer 503) and shows on ``/healthz``. The operation is named ``<area>.<method>``.

    For stores whose calls are spread over scripts and pipelines: one wrapper per method
    instead of one per Redis call."""

    def decorate(cls: C) -> C:
        for name, method in list(vars(cls).items()):
            if name.startswith("_") or not inspect.iscoroutinefunction(method):
                continue
            setattr(cls, name, _reported(f"{area}.{name}", method))
        return cls

    return decorate


def _reported(op: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls = RedisCalls(self.health)
        return await calls.run(op, lambda: method(self, *args, **kwargs))

    return run
