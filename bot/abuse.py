"""Abuse limits that hold across conversations: one-time codes per phone and per contract, code
guesses per contract, anonymous identification attempts per client, and the widget's sockets,
frames and uploads per session and per address.

A limit kept in one conversation's memory is no limit against someone who opens a new
conversation for every try (a widget session is a random id the client picks), so these are
keyed by what the attacker cannot multiply: the phone a code goes to, the contract, the client's
address, the platform user.

Rates are counted by the ``limits`` library: an exact moving window for counts, a
sliding-window counter for byte quotas (a moving window keeps one entry per unit counted). The
storage is in-process memory today; ``storage_uri`` takes any async ``limits`` storage
(``async+redis://host:6379``) so several processes can share one set of counters later. What
is counted is never stored as is: every identifier (a phone, a contract, an address) becomes a
keyed hash first, so neither the memory nor a shared Redis holds personal data. Open widget
sockets are a count of live connections, which live in one process: they are counted here, in
memory, per process.

Every refusal says how long until a retry may succeed, and is counted on ``/metrics`` as
``isp_bot_abuse_limited_total{limit="<name>"}``.
"""

from __future__ import annotations

import hashlib
import hmac
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
from limits.storage import storage_from_string

from bot.metrics import Metrics

METRIC = "abuse_limited_total"
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


def register_metrics(metrics: Metrics) -> None:
    metrics.counter(METRIC, "Requests refused by an abuse limit, by limit")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A limit said no: which one, and in how many seconds a retry may succeed."""

    limit: str
    retry_after: int  # whole seconds, at least 1

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
        storage_uri: str = "async+memory://",
        rates: Mapping[str, str] | None = None,
        sockets_per_session: int = DEFAULT_SOCKETS_PER_SESSION,
        sockets_per_address: int = DEFAULT_SOCKETS_PER_ADDRESS,
        secret: str | None = None,
    ) -> None:
        self._metrics = metrics
        if metrics is not None:
            register_metrics(metrics)
        storage = storage_from_string(storage_uri)
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
        for name, who in checks:
            refusal = await self.check(name, who, cost=cost)
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
