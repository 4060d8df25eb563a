"""Whether the store works, as its own calls find it.

A full disk or a database another process holds locked past the busy timeout is not a bug in
one request: it is the whole gateway unable to remember anything. Every store call that fails
that way raises ``StoreUnavailable`` and is reported here, and the gateway reacts as one: the
outbox holds its sends (a send it cannot record would be sent again), webhooks answer 503 (the
platform delivers again later), ``/healthz`` fails and ``/metrics`` shows ``store_failing``.

The state is per operation: ``outbox_done`` failing is cleared by the next ``outbox_done`` that
works, not by a read that happens to succeed on a full disk. An operation that failed once and
is never called again (a daily clean-up) stops counting as failing after ``forget_after``
seconds without another failure, so one stray error cannot keep ``/healthz`` red for ever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.metrics import Metrics

log = logging.getLogger(__name__)

FORGET_AFTER_SECONDS = 60.0


class StoreUnavailable(Exception):
    """The store could not read or write just now (disk full, locked past the busy timeout, an
    I/O error): nothing was changed, and the same call may work later. ``op`` names the store
    method, ``reason`` the backend's error name; neither carries customer data."""

    def __init__(self, op: str, reason: str) -> None:
        super().__init__(f"store unavailable: {op} failed ({reason})")
        self.op = op
        self.reason = reason


def register_metrics(metrics: Metrics) -> None:
    metrics.gauge("store_failing", "1 while store calls fail (disk full, locked), else 0.")
    metrics.counter("store_errors_total", "Store calls that failed, by store operation.")
    metrics.set("store_failing", 0)


class StoreHealth:
    def __init__(
        self,
        *,
        forget_after: float = FORGET_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._forget_after = forget_after
        self._clock = clock
        self._failing: dict[str, float] = {}  # operation -> when it last failed
        self._unreached: set[str] = set()  # of those, the ones that failed to reach the store
        self._since: float | None = None  # start of the current episode
        self._metrics: Metrics | None = None

    def attach(self, metrics: Metrics) -> None:
        """Report on ``metrics`` from now on (the store is built before the registry)."""
        register_metrics(metrics)
        self._metrics = metrics
        self.refresh()

    @property
    def failing(self) -> bool:
        self._expire()
        return bool(self._failing)

    def failed(self, op: str, reason: str, *, unreachable: bool = False) -> None:
        """``unreachable``: the store could not be reached at all (connection refused, lost,
        timed out), as opposed to reached and refusing (a full disk, Redis out of memory)."""
        self._expire()
        if unreachable:
            self._unreached.add(op)
        else:
            self._unreached.discard(op)
        if not self._failing:
            # Once per episode: under a full disk every webhook and every send fails, and a
            # line each would bury the one that says what happened.
            self._since = self._clock()
            log.error(
                "store: %s failed (%s); sends are held and webhooks refused until it works",
                op,
                reason,
            )
        self._failing[op] = self._clock()
        if self._metrics is not None:
            self._metrics.inc("store_errors_total", op=op)
        self.refresh()

    def reached(self) -> None:
        """A call has just reached the store: operations that failed only because it could not
        be reached would reach it now too. Without this, one that failed during a Redis outage
        and is not called again soon (a periodic sweep) would keep ``/healthz`` red for
        ``forget_after`` seconds after Redis is back, and a load balancer would keep every
        process out for that long."""
        if not self._unreached:
            return
        cleared = [op for op in self._unreached if self._failing.pop(op, None) is not None]
        self._unreached.clear()
        if cleared and not self._failing:
            self._recovered()
        self.refresh()

    def succeeded(self, op: str) -> None:
        self._unreached.discard(op)
        if op in self._failing:
            del self._failing[op]
            if not self._failing:
                self._recovered()
            self.refresh()

    def refresh(self) -> None:
        """Bring the gauge up to date (a failure may have been forgotten since)."""
        failing = self.failing
        if self._metrics is not None:
            self._metrics.set("store_failing", 1 if failing else 0)

    def _expire(self) -> None:
        if not self._failing:
            return
        now = self._clock()
        for op, at in list(self._failing.items()):
            if now - at >= self._forget_after:
                del self._failing[op]
                self._unreached.discard(op)
        if not self._failing:
            self._recovered()

    def _recovered(self) -> None:
        lasted = self._clock() - self._since if self._since is not None else 0.0
        self._since = None
        log.warning("store: working again after %.1f s of failures", lasted)
