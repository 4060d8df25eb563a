"""Abuse limits that hold across conversations: one-time codes per phone and per contract, code
guesses per contract, anonymous identification attempts per client, and the widget's sockets,
frames and uploads per session and per address.

A limit kept in one conversation's memory is no limit against someone who opens a new
conversation for every try (a widget session is a random id the client picks), so these are
keyed by what the attacker cannot multiply: the phone a code goes to, the contract, the client's
address, the platform user.

Rates are counted by the ``limits`` library: an exact moving window for counts, a
sliding-window counter for byte quotas (a moving window keeps one entry per unit counted). The
storage is in-process memory unless ``REDIS_URL`` is set: then the counters live in Redis (keys
under ``isp-bot:limits:``) and every gateway process on it shares them, so a second process is
not a second allowance. Processes sharing a Redis must share ``BOT_IDENTITY_SECRET`` too (the
hashes below are keyed with it). What is counted is never stored as is: every identifier (a
phone, a contract, an address) becomes a keyed hash first, so neither the memory nor Redis
holds personal data. Open widget sockets are a count of live connections, which live in one
process: they stay counted here, in memory, per process, with or without Redis.

When the shared storage cannot be reached, no exception leaves this module (a turn or a
webhook must not fail because a counter did): the limits that guard one-time codes and the
look-ups that lead to them fail closed (a polite "cannot send a code right now"), because a
code sent uncounted is exactly what they exist to stop and no customer can be identified
without a code anyway; every other limit fails open (see ``FAIL_CLOSED``). Each such failure
is counted as ``isp_bot_abuse_store_errors_total{limit}`` and logged once per outage.

Every refusal says how long until a retry may succeed, and is counted on ``/metrics`` as
``isp_bot_abuse_limited_total{limit="<name>"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bot.metrics import Metrics

log = logging.getLogger(__name__)

METRIC = "abuse_limited_total"
STORE_ERRORS = "abuse_store_errors_total"
KEY_PREFIX = "isp-bot:limits"  # the library adds ":"; keys read isp-bot:limits:LIMITER/<name>/...
MEMORY = "async+memory://"
EXTRA = "abuse"  # the dialog engine's extras key under which actions find the limits
CLIENT_FIELD = "client"  # Inbound.raw field: the keyed hash of the sender's network address

MIB = 1024 * 1024
EXACT_UP_TO = 10_000  # rates above this many units (bytes) are counted approximately

# name -> rates in the ``limits`` notation (several separated by ";": each must hold). Chosen so
# a person never meets them: a customer asks for a code or two, guesses a few times, chats in one
# or two tabs, sends a handful of photos.
DEFAULT_RATES: Mapping[str, str] = {
    # One-time codes, counted wherever they are asked for (every channel, every session).
    "otp_per_phone": "3/hour;10/day",
    "otp_per_email": "3/hour;10/day",
    "otp_per_contract": "5/day",
    "otp_guesses_per_contract": "6/hour;20/day",  # two codes wrong three times each
    # Contract or phone look-ups by someone not yet identified: per address (widget) or per
    # platform user (messengers, REST sender).
    "id_lookups_per_client": "10/hour",
    # Widget frames: the old per-tab bucket (burst 30, 2 a second) now holds per session.
    "widget_frames_per_session": "30/15 seconds;600/hour",
    "widget_frames_per_address": "120/minute;3000/hour",
    # Widget uploads: how many and how many bytes.
    "widget_uploads_per_session": "10/hour",
    "widget_upload_bytes_per_session": f"{30 * MIB}/hour",
    "widget_uploads_per_address": "30/hour",
    "widget_upload_bytes_per_address": f"{100 * MIB}/hour",
}

# Open widget sockets at once (tabs of one browser; every visitor behind one address).
DEFAULT_SOCKETS_PER_SESSION = 5
DEFAULT_SOCKETS_PER_ADDRESS = 20

SOCKET_LIMITS = ("widget_sockets_per_session", "widget_sockets_per_address")

# Limits that refuse when their storage is unreachable. Codes: an uncounted code is the abuse
# itself (SMS pumping, spamming a stranger's phone). Look-ups: they tell whether a phone or a
# contract is a customer, unbounded they enumerate; and refusing them costs no customer more than
# the refused code would. Everything else fails open: widget frames and uploads keep their
# per-process socket limits and the transport's own sizes, and wrong guesses stay bounded by
# each code's three attempts (no new code can be sent meanwhile).
FAIL_CLOSED = frozenset(
    {"otp_per_phone", "otp_per_email", "otp_per_contract", "id_lookups_per_client"}
)
UNAVAILABLE_RETRY = 60  # seconds suggested when the storage is down: a blip or a restart
# A dead Redis must cost a frame milliseconds, not redis-py's default ten retries (~4 s of
# backoff); a command is tried twice, and a connection that hangs gives up after 2 s.
REDIS_OPTIONS: Mapping[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
REDIS_RETRIES = 1


def register_metrics(metrics: Metrics) -> None:
    metrics.counter(METRIC, "Requests refused by an abuse limit, by limit")
    metrics.counter(
        STORE_ERRORS, "Abuse limits whose shared storage failed (refused or let through), by limit"
    )


def _uri(redis_url: str | None) -> str:
    """The ``limits`` storage for ``REDIS_URL`` (``redis://``, ``rediss://``, ``redis+unix://``
    or already ``async+...``); in-process memory when unset."""
    if not redis_url:
        return MEMORY
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


def _storage(uri: str) -> Any:
    # wrap_exceptions: every client failure arrives as limits' StorageError, one thing to catch.
    if "redis" not in uri.split("://", 1)[0]:
        return storage_from_string(uri, wrap_exceptions=True)
    options: dict[str, Any] = {
        **REDIS_OPTIONS,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), REDIS_RETRIES),
    }
    if "sentinel" in uri.split("://", 1)[0]:
        # Counters are read from the master too: a replica lags, and a limit checked on a stale
        # count lets a burst through.
        options["use_replicas"] = False
    # redispy: the pinned ``redis`` client (the library's default, coredis, is not installed).
    return storage_from_string(
        uri, implementation="redispy", key_prefix=KEY_PREFIX, wrap_exceptions=True, **options
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A limit said no: which one, and in how many seconds a retry may succeed."""

    limit: str
    retry_after: int  # whole seconds, at least 1
    unavailable: bool = False  # not a limit reached: its storage could not be asked (fail closed)

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


@dataclass(eq=False)
class SocketLease:
    """One open widget socket, counted until ``release`` (idempotent)."""

    _owner: AbuseLimits
    session: str
    address: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._owner._release_socket(self)


@dataclass
class _Open:
    by_session: dict[str, int] = field(default_factory=dict)
    by_address: dict[str, int] = field(default_factory=dict)


def _down(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


class AbuseLimits:
    """The gateway's abuse limits; one instance per process, shared by every door."""

    def __init__(
        self,
        *,
        metrics: Metrics | None = None,
        storage_uri: str | None = None,  # REDIS_URL or a limits URI; None: process memory
        rates: Mapping[str, str] | None = None,
        sockets_per_session: int = DEFAULT_SOCKETS_PER_SESSION,
        sockets_per_address: int = DEFAULT_SOCKETS_PER_ADDRESS,
        secret: str | None = None,
    ) -> None:
        self._metrics = metrics
        if metrics is not None:
            register_metrics(metrics)
        uri = _uri(storage_uri)
        self.shared = uri != MEMORY
        storage = _storage(uri)
        self._storage = storage
        self._storage_failing = False
        self._exact: RateLimiter = MovingWindowRateLimiter(storage)
        self._approximate: RateLimiter = SlidingWindowCounterRateLimiter(storage)
        merged = {**DEFAULT_RATES, **(rates or {})}
        self._rates: dict[str, tuple[RateLimitItem, ...]] = {
            name: tuple(parse_many(spec)) for name, spec in merged.items()
        }
        self.sockets_per_session = sockets_per_session
        self.sockets_per_address = sockets_per_address
        self._open = _Open()
        # Processes sharing a storage must hash alike: derive the key from the deployment's
        # secret when there is one; otherwise a random key (the counters are per process then).
        if secret:
            self._key = hashlib.sha256(b"isp-bot abuse limits\0" + secret.encode()).digest()
        else:
            self._key = secrets.token_bytes(32)
            if self.shared:
                log.warning(
                    "abuse limits: shared storage without BOT_IDENTITY_SECRET: each process "
                    "hashes differently, so the counters are not shared between processes"
                )

    async def aclose(self) -> None:
        """Close the Redis connections (memory has none). The library has no close of its own,
        so this reaches the redis-py client it holds; a later call would reconnect."""
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()

    # --- identifiers ------------------------------------------------------------------------
    def tag(self, value: str) -> str:
        """A stable, keyed, non-reversible stand-in for an identifier (an address, a phone)."""
        data = value.encode("utf-8", errors="replace")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]

    def rates(self, name: str) -> tuple[RateLimitItem, ...]:
        return self._rates[name]

    def _limiter(self, item: RateLimitItem) -> RateLimiter:
        return self._exact if item.amount <= EXACT_UP_TO else self._approximate

    # --- rates --------------------------------------------------------------------------------
    async def check(self, name: str, who: str, *, cost: int = 1) -> Refusal | None:
        """Would ``cost`` more of ``name`` for ``who`` be allowed? Consumes nothing."""
        try:
            refusal = await self._check(name, who, cost=cost)
        except (StorageError, OSError) as exc:
            return self._storage_failed((name,), exc)
        self._storage_answered()
        return refusal

    async def _check(self, name: str, who: str, *, cost: int) -> Refusal | None:
        ident = self.tag(who)
        for item in self._rates[name]:
            if not await self._limiter(item).test(item, name, ident, cost=cost):
                return await self._refuse(name, item, ident)
        return None

    async def hit(self, name: str, who: str, *, cost: int = 1) -> Refusal | None:
        """Count ``cost`` of ``name`` for ``who`` unless a rate is used up (then nothing is
        counted and the refusal is returned, and counted on /metrics)."""
        return await self.hit_all(((name, who),), cost=cost)

    async def hit_all(self, checks: Sequence[tuple[str, str]], *, cost: int = 1) -> Refusal | None:
        """Several limits for one action (a code: per phone and per contract): all are checked
        before any is counted, so a refusal by one does not use up the others."""
        try:
            refusal = await self._hit_all(checks, cost=cost)
        except (StorageError, OSError) as exc:
            return self._storage_failed([name for name, _ in checks], exc)
        self._storage_answered()
        return refusal

    async def _hit_all(self, checks: Sequence[tuple[str, str]], *, cost: int) -> Refusal | None:
        for name, who in checks:
            refusal = await self._check(name, who, cost=cost)
            if refusal is not None:
                return refusal
        for name, who in checks:
            ident = self.tag(who)
            for item in self._rates[name]:
                if not await self._limiter(item).hit(item, name, ident, cost=cost):
                    # Taken meanwhile by a concurrent request: refuse this one.
                    return await self._refuse(name, item, ident)
        return None

    async def _refuse(self, name: str, item: RateLimitItem, ident: str) -> Refusal:
        stats = await self._limiter(item).get_window_stats(item, name, ident)
        wait = stats.reset_time - time.time()
        if not math.isfinite(wait) or wait < 1:
            wait = 1
        self.count(name)
        return Refusal(name, min(math.ceil(wait), item.get_expiry()))

    def _storage_failed(self, names: Sequence[str], exc: BaseException) -> Refusal | None:
        """The policy of ``FAIL_CLOSED``: a polite refusal for codes and look-ups, a pass for
        the rest; counted either way, logged at the start of an outage only (a dead Redis under
        a busy widget would otherwise log every frame)."""
        closed = [name for name in names if name in FAIL_CLOSED]
        name = closed[0] if closed else names[0]
        if self._metrics is not None:
            self._metrics.inc(STORE_ERRORS, limit=name)
        if not self._storage_failing:
            self._storage_failing = True
            log.warning(
                "abuse limits: storage unreachable (%s: %s); codes and look-ups are refused, "
                "other limits let requests through until it answers",
                type(exc).__name__,
                exc,
            )
        if closed:
            return Refusal(name, UNAVAILABLE_RETRY, unavailable=True)
        return None

    def _storage_answered(self) -> None:
        if self._storage_failing:
            self._storage_failing = False
            log.warning("abuse limits: storage answers again; limits enforced")

    def count(self, name: str) -> None:
        if self._metrics is not None:
            self._metrics.inc(METRIC, limit=name)

    # --- open sockets -------------------------------------------------------------------------
    def open_socket(self, session: str, address: str) -> SocketLease | Refusal:
        """Count one more open widget socket of ``session`` from ``address``, or refuse."""
        by_session, by_address = self._open.by_session, self._open.by_address
        if by_session.get(session, 0) >= self.sockets_per_session:
            self.count(SOCKET_LIMITS[0])
            return Refusal(SOCKET_LIMITS[0], 30)
        address_key = self.tag(address)
        if by_address.get(address_key, 0) >= self.sockets_per_address:
            self.count(SOCKET_LIMITS[1])
            return Refusal(SOCKET_LIMITS[1], 30)
        by_session[session] = by_session.get(session, 0) + 1
        by_address[address_key] = by_address.get(address_key, 0) + 1
        return SocketLease(self, session, address_key)

    def _release_socket(self, lease: SocketLease) -> None:
        _down(self._open.by_session, lease.session)
        _down(self._open.by_address, lease.address)

    def open_sockets(self, session: str) -> int:
        return self._open.by_session.get(session, 0)


def requester(raw: Mapping[str, Any], channel: str, user_id: str) -> str:
    """Who is asking, for limits on the not yet identified: the client's address when the
    channel knows it (the widget puts its keyed hash in ``raw["client"]``), otherwise the
    platform user (a messenger account, the REST sender)."""
    client = raw.get(CLIENT_FIELD)
    if isinstance(client, str) and client:
        return f"address:{client}"
    return f"user:{channel}:{user_id}"


def attach_abuse(channels: Iterable[object], limits: AbuseLimits) -> None:
    """Give the process's limits to every channel that enforces some (``attach_abuse``)."""
    for channel in channels:
        attach = getattr(channel, "attach_abuse", None)
        if callable(attach):
            attach(limits)
