"""Mirrors every new or changed request to the provider's CRM: ``POST REQUESTS_WEBHOOK_URL``
with the record as JSON, signed ``X-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.

The calls wait in the board's outbox (written with the change itself), so a crash or a restart
loses none: they go out when the sender runs again. A call is repeated until the CRM answers 2xx,
with exponential back-off capped at ``max_delay``; a record's calls go out in order (the next
waits for the previous), while other records go ahead. Delivery is at least once: a CRM that
must not apply a call twice keeps ``delivery_id`` (also in ``X-Delivery-Id``).

No tenacity here although it is pinned: its retry loops live inside one coroutine, and these
retries must outlive the process, so the schedule is a column of the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from bot.requests.store import Delivery, RequestBoard

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
DELIVERY_HEADER = "X-Delivery-Id"
BATCH = 20


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before try number ``attempts + 1``: base·2^(attempts−1), capped, with up to a
    fifth taken off at random so many records failing together do not retry in lockstep."""
    delay = min(cap, base * 2.0 ** max(0, attempts - 1))
    return delay * (1 - random.random() / 5)  # noqa: S311 - spreading retries, not secrecy


class RequestWebhook:
    def __init__(
        self,
        *,
        board: RequestBoard,
        url: str,
        secret: str,
        timeout: float = 10.0,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not secret:
            raise ValueError("REQUESTS_WEBHOOK_SECRET is required with REQUESTS_WEBHOOK_URL")
        self._board = board
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._base = base_delay
        self._cap = max_delay
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def notify(self) -> None:
        """Something was queued: look now rather than at the next scheduled retry."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="requests-webhook")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def deliver_due(self) -> int:
        """One pass over what is due now; how many calls the CRM accepted."""
        due = await self._board.deliveries_due(self._clock(), BATCH)
        if not due:
            return 0
        results = await asyncio.gather(*(self._send(delivery) for delivery in due))
        return sum(results)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.deliver_due() == BATCH:
                    pass
                next_at = await self._board.next_delivery_at()
            except asyncio.CancelledError:
                raise
            except Exception:  # the board's file is busy or broken: try again in a while
                log.exception("requests webhook: the outbox could not be read")
                next_at = self._clock() + timedelta(seconds=self._cap)
            wait = None if next_at is None else (next_at - self._clock()).total_seconds()
            if wait is not None and wait <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def _send(self, delivery: Delivery) -> bool:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: signature(self._secret, delivery.body),
            DELIVERY_HEADER: str(delivery.id),
        }
        error: str
        try:
            async with self._session().post(self._url, data=delivery.body, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    await self._board.delivery_done(delivery.id)
                    log.info(
                        "requests webhook: delivery %d (request %d) accepted",
                        delivery.id, delivery.request_id,
                    )  # fmt: skip
                    return True
                error = f"HTTP {resp.status}"
        except TimeoutError:
            error = "timeout"
        except aiohttp.ClientError as exc:
            error = type(exc).__name__
        delay = backoff(delivery.attempts + 1, base=self._base, cap=self._cap)
        await self._board.delivery_failed(
            delivery.id, error, self._clock() + timedelta(seconds=delay)
        )
        log.warning(
            "requests webhook: delivery %d (request %d) failed (%s), attempt %d, next in %.0f s",
            delivery.id, delivery.request_id, error, delivery.attempts + 1, delay,
        )  # fmt: skip
        return False
